#!/usr/bin/python3
"""The live tail with only a kubeconfig: the lab's cluster objects are served by the fake API server (TLS, bearer
token), the tail lists and watches them instead of reading --state, and attributes the lab's drops the same way.
A pod relabelled while the tail runs changes the attribution of its next new flow.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import Lab, Tail, check, main  # noqa: E402

FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fake-apiserver", "fake_apiserver.py")
LABEL_MISMATCH_SRC = "shop/checkout-6f8d7c9b5-k8j7h"


class FakeApiServer:
    def __init__(self, workdir):
        self.dir = workdir
        self.proc = None

    def __enter__(self):
        certs = os.path.join(self.dir, "certs")
        subprocess.run([sys.executable, FAKE, "--gen-certs", certs], check=True, capture_output=True)
        ready = os.path.join(self.dir, "api-ready")
        self.proc = subprocess.Popen([sys.executable, FAKE, "--certs", certs, "--ready-file", ready,
                                      "--token", "lab-token=sre", "--exit-with-parent"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready):
            check(self.proc.poll() is None, "the fake API server exited at start")
            check(time.monotonic() < deadline, "the fake API server did not start")
            time.sleep(0.05)
        with open(ready) as f:
            self.port = int(f.read().strip())
        self.ca = os.path.join(certs, "ca.crt")
        self.server = f"https://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return False

    def control(self, op, body):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(f"{self.server}/_control/{op}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            check(r.status == 200, f"/_control/{op}: {r.status}")

    def kubeconfig(self):
        path = os.path.join(self.dir, "kubeconfig")
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
current-context: lab
clusters:
- name: lab
  cluster: {{server: "{self.server}", certificate-authority: "{self.ca}"}}
users:
- name: sre
  user: {{token: lab-token}}
contexts:
- name: lab
  context: {{cluster: lab, user: sre}}
""")
        return path


def run():
    with tempfile.TemporaryDirectory(prefix="npt-kube-") as work, FakeApiServer(work) as api, \
            Lab("kube-router", "npttail-kube", 239) as lab:
        with open(lab.state) as f:
            state = json.load(f)
        api.control("apply", state)
        args = ["-o", "json", "--kubeconfig", api.kubeconfig(), "--node", lab.config["node"], "-n", "databases",
                "--duration", "60"]
        with Tail(args, "kube") as tail:
            flows = lab.traffic("label-mismatch", family="4")
            # Fix the drift on the live pod: the policy now selects it, and the informer's next snapshot says so.
            pod = next(i for i in state["items"] if i["kind"] == "Pod"
                       and f'{i["metadata"]["namespace"]}/{i["metadata"]["name"]}' == LABEL_MISMATCH_SRC)
            pod["metadata"]["labels"]["app"] = pod["metadata"]["labels"].get("app.kubernetes.io/name", "checkout")
            api.control("apply", pod)
            time.sleep(2.5)  # the informer rebuilds its snapshot at most once a second
            lab.traffic("label-mismatch", family="6")
            lines = tail.stop()
            stderr = tail.stderr()
        check("waiting for the cluster state" in stderr, f"no waiting notice: {stderr}")
        drops = [l for l in lines if l["event"] == "drop"]
        check(len(drops) == 2, f"expected 2 dropped flows (IPv4, IPv6), got {len(drops)}: {drops}")
        v4 = next(l for l in drops if ":" not in l["src"]["ip"])
        v6 = next(l for l in drops if ":" in l["src"]["ip"])
        for line in (v4, v6):
            check(line["src"]["pod"] == LABEL_MISMATCH_SRC, f"source not attributed from the API: {line['src']}")
            check(line["dst"]["pod"] and line["dst"]["pod"].startswith("databases/"), f"destination: {line['dst']}")
        codes4 = [h["code"] for h in v4["hints"]]
        check(v4["verdict"] == "denied" and "LABEL_MISMATCH" in codes4, f"before the relabel: {v4['verdict']} {codes4}")
        codes6 = [h["code"] for h in v6["hints"]]
        check(v6["verdict"] == "allowed" and "NOT_EXPLAINED_BY_POLICY" in codes6,
              f"after the relabel the policy allows it and the dataplane (not updated) still drops it: "
              f"{v6['verdict']} {codes6}")
        for f in flows:
            check(f["sent"] == f["count"], f"the lab did not send everything: {f}")
        summaries = [l for l in lines if l["event"] == "summary"]
        check(sorted(l["count"] for l in summaries) == [3, 3], f"summary counts: {[l['count'] for l in summaries]}")


if __name__ == "__main__":
    main(run, "tail_kubeconfig_test")

#!/usr/bin/python3
"""The live tail with only a kubeconfig: the lab's cluster objects are served by the fake API server (TLS, bearer
token), the tail lists and watches them instead of reading --state, and attributes the lab's drops the same way.
A pod relabelled while the tail runs changes the attribution of its next new flow.
"""
import json
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import FakeApiServer, Lab, Tail, check, main, test_octet, test_prefix  # noqa: E402

LABEL_MISMATCH_SRC = "shop/checkout-6f8d7c9b5-k8j7h"


def run():
    with tempfile.TemporaryDirectory(prefix="npt-kube-") as work, FakeApiServer(work) as api, \
            Lab("kube-router", test_prefix("npttail-kube"), test_octet(239)) as lab:
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

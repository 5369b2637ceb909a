#!/usr/bin/python3
"""The agent image, run as the DaemonSet runs it, on the network-namespace lab.

Builds the image with scripts/image from deploy/Dockerfile: its runtime stage around this build's binary (the build
stage's result given as a build context; the layers stay in podman's storage, the next run's cache). Starts the agent
container with the DaemonSet's privileges and limits (scripts/image run reads them from deploy/daemonset.yaml) in the
lab's node namespace, with the lab's cluster state mounted read-only, and checks:
  - from inside the container: the agent (pid 1) has exactly CAP_BPF, CAP_PERFMON, CAP_SYSLOG and CAP_SYS_RESOURCE
    (effective, permitted, bounding; none inheritable or ambient), no_new_privs, a read-only root, the DaemonSet's
    memory and CPU limits;
  - /healthz and /readyz answer; drops sent between the lab's pods are counted exactly in /metrics under the pod,
    direction, reason and policy that dropped them, and streamed on /events once per flow, attributed;
  - SIGTERM stops it with exit status 0;
  - the host's network namespace is as it was (no podman or CNI chains, the same ip_forward).
The container is removed at the end, also on failure. Skipped (exit 77) where podman cannot run, except under CI=true.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (BINARY, OCTETS, ROOT, SKIP, Lab, TestFailure, check, main, test_prefix)  # noqa: E402

IMAGE_SCRIPT = os.path.join(ROOT, "scripts", "image")
TAG = "localhost/netpol-trace:" + test_prefix("npt-test")
NODE = "lab-image"
DENIED_SERIES = {"namespace": "databases", "pod": "postgres-0", "direction": "ingress", "reason": "NETFILTER_DROP",
                 "policy": "postgres-allow-checkout"}
# CAP_SYS_RESOURCE (24), CAP_SYSLOG (34), CAP_PERFMON (38), CAP_BPF (39): the DaemonSet's four.
DAEMONSET_CAPS = (1 << 24) | (1 << 34) | (1 << 38) | (1 << 39)
PODMAN = ["podman", "--runtime", "runc"]

# An HTTP client run in the lab's node namespace, where the container's port is: GET prints {"status", "body"};
# STREAM prints the body's lines as they come.
CLIENT = r"""
import json, sys, urllib.error, urllib.request
mode, url = sys.argv[1], sys.argv[2]
try:
    r = urllib.request.urlopen(url, timeout=60 if mode == "STREAM" else 10)
except urllib.error.HTTPError as e:
    r = e
except OSError as e:
    print(json.dumps({"status": 0, "body": str(e)})); sys.exit(0)
if mode == "GET":
    print(json.dumps({"status": r.status if hasattr(r, "status") else r.code, "body": r.read().decode()}))
else:
    for line in r:
        sys.stdout.write(line.decode()); sys.stdout.flush()
"""


def podman_usable():
    """None when podman can run containers here, else why not."""
    if not shutil.which("podman") or not shutil.which("runc"):
        return "podman or runc is not installed (scripts/setup installs them)"
    r = subprocess.run([*PODMAN, "info"], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else f"podman cannot run: {(r.stderr.strip().splitlines() or ['?'])[-1]}"


def host_network_facts():
    """What podman's bridge network would change in the host's namespace."""
    forward = open("/proc/sys/net/ipv4/ip_forward").read().strip()
    rules = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    rules += subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
    marks = sorted({m.lower() for m in re.findall(r"\b(CNI-\S*|NETAVARK\S*|podman\S*)", rules, re.I)})
    return {"ip_forward": forward, "podman/CNI rules": marks}


class Node:
    """HTTP to the agent from the lab's node namespace (the container shares it)."""

    def __init__(self, netns):
        self.netns = netns

    def get(self, path):
        r = subprocess.run(["ip", "netns", "exec", self.netns, "/usr/bin/python3", "-c", CLIENT, "GET",
                            f"http://127.0.0.1:9842{path}"], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, f"GET {path}: {r.stderr}")
        out = json.loads(r.stdout)
        return out["status"], out["body"]

    def drops(self, series):
        _, text = self.get("/metrics")
        for line in text.splitlines():
            m = re.match(r"netpol_trace_drops_total\{(.*)\} (\d+)$", line)
            if m and dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1))) == series:
                return int(m.group(2))
        return 0


class EventStream:
    """/events?QUERY read from the node namespace in a thread."""

    def __init__(self, node, query):
        self.lines = []
        self.proc = subprocess.Popen(["ip", "netns", "exec", node.netns, "/usr/bin/python3", "-u", "-c", CLIENT,
                                      "STREAM", f"http://127.0.0.1:9842/events?{query}"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for raw in self.proc.stdout:
            if raw.strip():
                self.lines.append(json.loads(raw))

    def wait_for(self, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(l) for l in self.lines):
                return [l for l in self.lines if pred(l)]
            time.sleep(0.1)
        raise TestFailure(f"/events: no {what} within {timeout} s; got {self.lines}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)


def container_status(name):
    r = subprocess.run([*PODMAN, "exec", name, "cat", "/proc/1/status", "/proc/1/mountinfo",
                        "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
                        "/sys/fs/cgroup/cpu/cpu.cfs_period_us"], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:  # cgroup v2 paths
        r = subprocess.run([*PODMAN, "exec", name, "cat", "/proc/1/status", "/proc/1/mountinfo",
                            "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/cpu.max"], capture_output=True, text=True,
                           timeout=30)
    check(r.returncode == 0, f"podman exec {name} cat ...: {r.stderr}")
    return r.stdout


def check_privileges(name):
    """From inside the container: what the agent process holds."""
    text = container_status(name)
    fields = dict(re.findall(r"^(\w+):\s+(\S+)$", text, re.M))
    # A host whose root lacks one of them (this project's machines have no CAP_SYS_RESOURCE) cannot give it.
    host = dict(re.findall(r"^(\w+):\s+(\S+)$", open("/proc/self/status").read(), re.M))
    want = DAEMONSET_CAPS & int(host["CapBnd"], 16)
    for cap in ("CapEff", "CapPrm", "CapBnd"):
        check(int(fields[cap], 16) == want,
              f"{cap} {fields[cap]}: want the DaemonSet's BPF, PERFMON, SYSLOG, SYS_RESOURCE that this host's "
              f"bounding set has, {want:016x}")
    check(int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0,
          f"inheritable/ambient capabilities: {fields['CapInh']} {fields['CapAmb']}")
    check(fields["NoNewPrivs"] == "1", f"no_new_privs: {fields['NoNewPrivs']}")
    root = [l.split() for l in text.splitlines() if len(l.split()) > 5 and l.split()[4] == "/"]
    check(root and "ro" in root[0][5].split(","), f"the root filesystem is not read-only: {root}")
    r = subprocess.run([*PODMAN, "exec", name, "touch", "/probe"], capture_output=True, text=True)
    check(r.returncode != 0 and "Read-only file system" in r.stderr, f"touch /probe in the container: {r}")
    # The cgroup files' values (v1: limit, quota, period; v2: memory.max, "quota period").
    limits = " ".join(l.strip() for l in text.splitlines() if re.fullmatch(r"\d+( \d+)?", l.strip()))
    check(limits == "268435456 50000 100000",
          f"memory and CPU limits {limits!r}: want 256 MiB and 0.5 CPU (deploy/daemonset.yaml)")


def run_container(lab, name):
    netns = lab.config["node"]  # the node's network namespace
    state_dir = os.path.dirname(lab.state)
    r = subprocess.run([IMAGE_SCRIPT, "run", "--tag", TAG, "--name", name, "--network", f"ns:/run/netns/{netns}",
                        "-v", f"{state_dir}:/state:ro", "--", "agent", "--listen=0.0.0.0:9842",
                        f"--state=/state/{os.path.basename(lab.state)}", f"--node={NODE}", "--debug"],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 0, f"scripts/image run: exit {r.returncode}: {r.stdout}{r.stderr}")
    return Node(netns)


def logs(name):
    return subprocess.run([*PODMAN, "logs", name], capture_output=True, text=True).stdout[-3000:]


def run():
    why = podman_usable()
    if why:
        if os.environ.get("CI") == "true":
            raise TestFailure(f"{why}; CI=true forbids skipping the image test")
        print(f"image_test: skipped: {why}")
        sys.exit(SKIP)
    before = host_network_facts()
    started = time.monotonic()
    r = subprocess.run([IMAGE_SCRIPT, "build", "--binary", BINARY, "--tag", TAG], capture_output=True, text=True,
                       timeout=900)
    check(r.returncode == 0, f"scripts/image build: exit {r.returncode}\n{r.stdout[-4000:]}{r.stderr[-4000:]}")
    size = int(subprocess.run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", TAG], capture_output=True,
                              text=True).stdout.strip())
    print(f"  image {TAG} built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB", flush=True)

    name = test_prefix("npt-image-agent")
    subprocess.run([*PODMAN, "rm", "--force", "--time", "0", name], capture_output=True)  # a killed run's
    with Lab("kube-router", test_prefix("nptimage"), OCTETS["image"]) as lab:
        try:
            node = run_container(lab, name)
            deadline = time.monotonic() + 30
            while node.get("/readyz")[0] != 200:
                state = subprocess.run([*PODMAN, "inspect", "--format", "{{.State.Running}}", name],
                                       capture_output=True, text=True).stdout.strip()
                check(state == "true" and time.monotonic() < deadline, f"the agent is not ready: {logs(name)}")
                time.sleep(0.2)
            check(node.get("/healthz")[0] == 200, "/healthz")
            check_privileges(name)
            print("  privileges: exactly the DaemonSet's (capabilities, no_new_privs, read-only root, limits)",
                  flush=True)
            check_drops(lab, node, name)
            subprocess.run([*PODMAN, "stop", "--time", "10", name], capture_output=True, timeout=60)
            code = subprocess.run([*PODMAN, "inspect", "--format", "{{.State.ExitCode}}", name], capture_output=True,
                                  text=True).stdout.strip()
            check(code == "0", f"the agent exited {code} on SIGTERM: {logs(name)}")
        finally:
            subprocess.run([*PODMAN, "rm", "--force", "--time", "0", name], capture_output=True, timeout=60)
    after = host_network_facts()
    check(after == before, f"the host's network namespace changed: before {before}, after {after}")


def check_drops(lab, node, name):
    stream = EventStream(node, "namespace=databases")
    try:
        time.sleep(1.0)  # the stream is open
        for family, count, total in (("4", 3, 3), ("6", 2, 5)):
            flows = lab.traffic("label-mismatch", family=family, count=count)
            check(flows[0]["sent"] == count, f"the lab did not send its {count} packets: {flows}")
            deadline = time.monotonic() + 10
            while node.drops(DENIED_SERIES) != total and time.monotonic() < deadline:
                time.sleep(0.2)
            got = node.drops(DENIED_SERIES)
            check(got == total, f"netpol_trace_drops_total{DENIED_SERIES} = {got} after IPv{family}, want {total}\n"
                                f"{logs(name)}")
        v6 = lambda l: ":" in l["src"]["ip"]  # noqa: E731
        for is_v6, count in ((False, 3), (True, 2)):
            try:
                # The flow's count reaches the stream: in its drop line when the agent read the event after every
                # packet was dropped (a busy node), otherwise in a later update line.
                stream.wait_for(lambda l: l["event"] in ("drop", "update") and v6(l) == is_v6 and l["count"] == count,
                                f"drop or update line with count {count} (IPv{6 if is_v6 else 4})")
            except TestFailure as e:
                metrics = [l for l in node.get("/metrics")[1].splitlines()
                           if l.startswith(("netpol_trace_drops_total", "netpol_trace_event"))]
                raise TestFailure(f"{e}\n/metrics: {metrics}\nthe agent's log: {logs(name)}") from None
        drops = [l for l in stream.lines if l["event"] == "drop"]
        check(sorted(v6(l) for l in drops) == [False, True], f"one drop line per flow: {drops}")
        for drop in drops:
            check(drop["node"] == NODE and drop["src"]["pod"] == "shop/checkout-6f8d7c9b5-k8j7h" and
                  drop["dst"]["pod"] == "databases/postgres-0" and drop["verdict"] == "denied" and
                  drop["reason"] == "NETFILTER_DROP" and
                  drop["ingress"]["policies"] == ["databases/postgres-allow-checkout"] and
                  any(h["code"] == "LABEL_MISMATCH" for h in drop["hints"]), f"attribution: {drop}")
        print(f"  drops: 5 counted in /metrics, 2 flows streamed on /events, attributed", flush=True)
    finally:
        stream.close()


if __name__ == "__main__":
    main(run, "image_test")

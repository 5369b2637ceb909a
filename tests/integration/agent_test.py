#!/usr/bin/python3
"""The node agent and the cluster-wide tail, end to end on the network-namespace lab.

Two agents (nodes lab-a and lab-b) watch the lab's cluster objects through the fake API server. The test checks:
  - /readyz is 503 while the first list of the cluster state fails, then 200; /healthz is 200;
  - /events streams the tail's drop objects, filtered per stream (namespace=), while a client that never reads
    stays connected;
  - /metrics counts exactly the drops the lab sent under the pod, direction, reason and policy that dropped them,
    and passes `promtool check metrics`;
  - a real Prometheus server scraping both agents on loopback answers a query for netpol_trace_drops_total;
  - `netpol-trace -n databases` with only a kubeconfig finds the agents by label, streams /events from each through
    the API server's pod proxy, merges them (each line names its node), and follows an agent that joins and one
    that goes away; in plain lines it prints what the local tail prints for a drop (its denying side, the closest
    rule's miss, the hint) and the summary rows.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (BINARY, Agent, FakeApiServer, Lab, Tail, TestFailure, check, main, test_octet,  # noqa: E402
                          test_prefix)

AGENT_NS = "netpol-trace"
LABELS = {"app.kubernetes.io/name": "netpol-trace", "app.kubernetes.io/component": "agent"}
DENIED_SERIES = {"namespace": "databases", "pod": "postgres-0", "direction": "ingress", "reason": "NETFILTER_DROP",
                 "policy": "postgres-allow-checkout"}


class EventStream:
    """One /events stream read in a thread: `lines` grows as drops arrive."""

    def __init__(self, agent, query):
        self.lines, self.error = [], None
        self.conn = http.client.HTTPConnection("127.0.0.1", agent.port, timeout=60)
        self.conn.request("GET", f"/events?{query}")
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, f"/events?{query}: {self.resp.status}")
        check(self.resp.headers.get("Content-Type", "").startswith("application/x-ndjson"),
              f"/events content type: {self.resp.headers.get('Content-Type')}")
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            for raw in self.resp:
                if raw.strip():
                    self.lines.append(json.loads(raw))
        except Exception as e:  # the stream ends when the agent stops
            self.error = e

    def wait_for(self, pred, what, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [l for l in self.lines if pred(l)]
            if found:
                return found
            time.sleep(0.1)
        raise TestFailure(f"/events: no {what} within {timeout} s; got {self.lines}")

    def close(self):
        # Not resp.close(): it would wait for the reader thread's blocked read.
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=10)


def agent_pod(name, node):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": AGENT_NS, "uid": f"uid-{name}", "labels": dict(LABELS)},
            "spec": {"nodeName": node, "containers": [{"name": "agent", "ports": [{"name": "http",
                                                                                  "containerPort": 9842}]}]},
            "status": {"phase": "Running", "podIP": "127.0.0.1"}}


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, text=True, capture_output=True, timeout=30)
    check(r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_query(work, agents):
    """Starts Prometheus scraping the agents every second; returns {node: value} of netpol_trace_drops_total for the
    denied series once every agent's is there."""
    port = free_port()
    config = os.path.join(work, "prometheus.yml")
    targets = ", ".join(f'"127.0.0.1:{a.port}"' for a in agents)
    with open(config, "w") as f:
        f.write(f"global: {{scrape_interval: 1s, scrape_timeout: 1s}}\n"
                f"scrape_configs:\n- job_name: netpol-trace\n  static_configs:\n  - targets: [{targets}]\n")
    data = os.path.join(work, "prometheus-data")
    log = open(os.path.join(work, "prometheus.log"), "w")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        query = urllib.parse.quote('sum by (instance) (netpol_trace_drops_total{namespace="databases",'
                                   'pod="postgres-0",direction="ingress",policy="postgres-allow-checkout"})')
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            check(proc.poll() is None, f"prometheus exited: {open(log.name).read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5) as r:
                    last = json.load(r)
                got = {res["metric"]["instance"]: float(res["value"][1]) for res in last["data"]["result"]}
                if len(got) == len(agents):
                    return got
            except (urllib.error.URLError, ConnectionError, KeyError):
                pass
            time.sleep(0.5)
        raise TestFailure(f"Prometheus did not scrape netpol_trace_drops_total from every agent: {last}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run():
    check(shutil.which("promtool") and shutil.which("prometheus"), "promtool/prometheus missing (scripts/setup)")
    with tempfile.TemporaryDirectory(prefix="npt-agent-") as work, FakeApiServer(work) as api, \
            Lab("kube-router", test_prefix("nptagent"), test_octet(241)) as lab:
        with open(lab.state) as f:
            api.control("apply", json.load(f))
        kubeconfig = api.kubeconfig()
        # The first two lists of namespaces fail: the agent serves but is not ready until the state syncs.
        api.control("config", {"fail": {"/api/v1/namespaces": [503, 2]}})
        with Agent(work, "lab-a", kubeconfig) as a:
            status, body = a.get("/readyz")
            check(status == 503 and "not ready" in body, f"/readyz before the sync: {status} {body!r}")
            check(a.get("/healthz")[0] == 200, "/healthz while syncing")
            a.wait_ready()
            print(f"  agent lab-a ready", flush=True)
            check(a.get("/readyz") == (200, "ready\n"), f"/readyz once synced: {a.get('/readyz')}")
            with Agent(work, "lab-b", kubeconfig) as b:
                b.wait_ready()
                for stage in (lambda: check_streams_and_metrics(a, b, lab), lambda: check_prometheus(work, a, b),
                              lambda: check_no_agents_unprivileged(work, kubeconfig),
                              lambda: check_cluster_wide_tail(api, kubeconfig, a, b, lab),
                              lambda: check_cluster_wide_text(kubeconfig, lab)):
                    started = time.monotonic()
                    stage()
                    print(f"  stage done in {time.monotonic() - started:.1f} s", flush=True)
                b.stop()
            a.stop()


def check_streams_and_metrics(a, b, lab):
    databases = EventStream(a, "namespace=databases")
    billing = EventStream(a, "namespace=billing&reason=netfilter_drop")
    stuck = socket.create_connection(("127.0.0.1", a.port))  # asks for a stream and never reads it
    stuck.sendall(b"GET /events HTTP/1.1\r\nHost: agent\r\n\r\n")
    try:
        flows = lab.traffic("label-mismatch", family="4")
        check(flows[0]["sent"] == 3, f"the lab did not send its 3 packets: {flows}")
        drop = databases.wait_for(lambda l: l["event"] == "drop", "drop line")[0]
        check(drop["node"] == "lab-a", f"node: {drop['node']}")
        check(drop["src"]["pod"] == "shop/checkout-6f8d7c9b5-k8j7h" and drop["dst"]["pod"] == "databases/postgres-0",
              f"attribution: {drop['src']} -> {drop['dst']}")
        check(drop["verdict"] == "denied" and any(h["code"] == "LABEL_MISMATCH" for h in drop["hints"]),
              f"explanation: {drop['verdict']} {drop['hints']}")
        check(drop["reason"] == "NETFILTER_DROP" and drop["ingress"]["policies"] == ["databases/postgres-allow-checkout"],
              f"reason/policies: {drop['reason']} {drop['ingress']}")
        # Metrics: exactly the 3 drops sent, under the pod, direction and policy that dropped them (both agents see
        # the host's drops).
        for agent in (a, b):
            deadline = time.monotonic() + 10
            while agent.drops(DENIED_SERIES) != 3 and time.monotonic() < deadline:
                time.sleep(0.2)
            check(agent.drops(DENIED_SERIES) == 3,
                  f"{agent.name}: netpol_trace_drops_total{DENIED_SERIES} = {agent.drops(DENIED_SERIES)}, want 3")
        _, text = a.get("/metrics")
        promtool_check(text)
        for name in ("netpol_trace_flows_tracked", "netpol_trace_ringbuf_lost_events_total",
                     "netpol_trace_lru_evictions_total", "netpol_trace_informer_staleness_seconds",
                     "netpol_trace_build_info", "process_resident_memory_bytes"):
            check(re.search(rf"^{name}[{{ ]", text, re.M), f"/metrics has no {name}")
        check(re.search(r"^netpol_trace_event_streams 3$", text, re.M), "three /events streams are open")
        # The count of the flow reaches its stream: in an "update" line, or already in the "drop" line when the
        # agent read the event after all three packets were dropped (a busy node).
        databases.wait_for(lambda l: l["event"] in ("drop", "update") and l["count"] == 3,
                           "drop or update line with count 3")
        time.sleep(0.5)
        check(not [l for l in billing.lines if l["event"] == "drop"],
              f"namespace=billing got another namespace's drop: {billing.lines}")
    finally:
        stuck.close()
        databases.close()
        billing.close()
    status, body = a.get("/events?pod=postgres-0")
    check(status == 400 and "namespace" in body, f"pod=NAME without namespace=: {status} {body!r}")


def check_prometheus(work, a, b):
    got = prometheus_query(work, [a, b])
    check(got == {f"127.0.0.1:{a.port}": 3.0, f"127.0.0.1:{b.port}": 3.0}, f"Prometheus query: {got}")


def check_no_agents_unprivileged(work, kubeconfig):
    """No agent pods and no privileges: the tail says what is missing and how to deploy the agents."""
    binary = os.path.join(work, "netpol-trace")
    shutil.copy(BINARY, binary)
    for path in (work, os.path.join(work, "certs")):
        os.chmod(path, 0o755)
    for path in (binary, kubeconfig, os.path.join(work, "certs", "ca.crt")):
        os.chmod(path, 0o755 if path == binary else 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "NODE_NAME"))}
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", binary, "--kubeconfig",
                        kubeconfig, "-n", "databases", "--duration", "1"], text=True, capture_output=True, timeout=60,
                       env=env, cwd=work)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    check(r.returncode == 1, f"unprivileged tail without agents: exit {r.returncode}, want 1: {r.stderr}")
    check(lines and "CAP_BPF" in lines[-1] and "kubectl apply -k deploy/" in lines[-1] and
          f"namespace {AGENT_NS}" in lines[-1], f"the last line does not say how to deploy the agents: {lines}")
    print(f"  unprivileged, no agents: {lines[-1]}", flush=True)


def check_cluster_wide_tail(api, kubeconfig, a, b, lab):
    api.control("apply", [agent_pod("agent-a", "lab-a")])
    api.control("config", {"proxy_targets": {f"{AGENT_NS}/agent-a": f"127.0.0.1:{a.port}",
                                             f"{AGENT_NS}/agent-b": f"127.0.0.1:{b.port}"}})
    args = ["-o", "json", "--kubeconfig", kubeconfig, "-n", "databases", "--agent-refresh", "0.5", "--duration", "60"]
    with Tail(args, "remote") as tail:
        # agent-a only: the IPv6 flow is new to both agents, but only lab-a is streamed.
        lab.traffic("label-mismatch", family="6")
        wait_stderr(tail, "streaming drops from agent netpol-trace/agent-a on node lab-a")
        wait_lines(tail, lambda ls: any(l["event"] == "drop" and ":" in l["src"]["ip"] for l in ls), "IPv6 drop")
        # agent-b joins: its stream opens within the refresh interval.
        api.control("apply", [agent_pod("agent-b", "lab-b")])
        wait_stderr(tail, "streaming drops from agent netpol-trace/agent-b on node lab-b")
        time.sleep(1.0)  # the proxied stream is open
        # The IPv4 flow both agents know already drops again: each reports it resumed, and both lines arrive.
        lab.traffic("label-mismatch", family="4", count=2)
        try:
            wait_lines(tail, lambda ls: {l["node"] for l in ls if l["event"] == "resumed" and ":" not in l["src"]["ip"]}
                       == {"lab-a", "lab-b"}, "resumed IPv4 lines from both agents")
        except TestFailure as e:
            raise TestFailure(f"{e}\nagent lab-a: {a.stderr()}\nagent lab-b: {b.stderr()}\n"
                              f"lab-a metrics: {a.get('/metrics')[1]}")
        # agent-a goes away.
        api.control("delete", {"kind": "Pod", "namespace": AGENT_NS, "name": "agent-a"})
        wait_stderr(tail, "agent agent-a (node lab-a) is gone")
        lines = tail.stop()
    drops = [l for l in lines if l["event"] == "drop"]
    v6 = [l for l in drops if ":" in l["src"]["ip"]]
    check([l["node"] for l in v6] == ["lab-a"], f"IPv6 flow: lines from {[l['node'] for l in v6]}, want lab-a only")
    check(all(l["dst"]["pod"] == "databases/postgres-0" and l["verdict"] == "denied" for l in drops),
          f"merged lines keep the agents' attribution: {drops}")
    summaries = [l for l in lines if l["event"] == "summary"]
    check(summaries and all(l["node"] in ("lab-a", "lab-b") for l in summaries), f"summary lines: {summaries}")


def check_cluster_wide_text(kubeconfig, lab):
    """The cluster-wide tail's plain lines (stdout not a terminal) from agent-b: the text the local tail prints for
    the same flow, details included, and its summary row."""
    args = ["-o", "table", "--kubeconfig", kubeconfig, "-n", "shop", "--agent-refresh", "0.5", "--duration", "60"]
    with Tail(args, "remote-text") as tail:
        wait_stderr(tail, "streaming drops from agent netpol-trace/agent-b on node lab-b")
        time.sleep(1.0)  # the proxied stream is open
        lab.traffic("egress-port", family="4")
        deadline = time.monotonic() + 15
        while "denied: isolated by" not in open(tail.stdout_path).read():
            check(tail.proc.poll() is None, f"the tail exited: {tail.stderr()}")
            check(time.monotonic() < deadline, f"no detailed drop line within 15 s: {open(tail.stdout_path).read()}")
            time.sleep(0.1)
        time.sleep(0.5)
        tail.proc.send_signal(signal.SIGINT)
        rc = tail.proc.wait(timeout=30)
        check(rc == 0, f"the cluster-wide tail exited {rc}: {tail.stderr()}")
        text = open(tail.stdout_path).read()
    frontend = r"shop/frontend-[a-z0-9-]+ \([0-9.]+\)"
    api = r"payments/api-[a-z0-9-]+ \([0-9.]+\)"
    check(re.search(rf"^\S+ lab-b TCP {frontend} -> {api}:9090 NETFILTER_DROP at netfilter/\S+ ct=new x\d+  "
                    r"policy: denied$", text, re.M), f"no drop line for the egress-port flow:\n{text}")
    check(re.search(r"^    egress of shop/frontend-[a-z0-9-]+ denied: isolated by shop/\S+", text, re.M),
          f"no denying side under the drop line:\n{text}")
    check(re.search(r"^      shop/\S+: .*9090", text, re.M), f"no closest rule's miss naming the port:\n{text}")
    check(re.search(r"^    [A-Z_]+: ", text, re.M), f"no hint line:\n{text}")
    # The summary also lists the flows agent-b reported earlier that are still updated (the stage before's).
    check(re.search(r"^summary: \d+ dropped flows? on 1 node, ", text, re.M), f"no summary:\n{text}")
    check(re.search(rf"^ +\d+  lab-b TCP {frontend} -> {api}:9090 NETFILTER_DROP at netfilter/\S+  \(denied\)$",
                    text, re.M), f"no summary row:\n{text}")
    print("  cluster-wide tail, plain lines: the drop, its denying side, miss and hint, and the summary row",
          flush=True)


def wait_stderr(tail, text, timeout=15):
    deadline = time.monotonic() + timeout
    while text not in tail.stderr():
        check(tail.proc.poll() is None, f"the tail exited: {tail.stderr()}")
        check(time.monotonic() < deadline, f"no {text!r} on stderr within {timeout} s: {tail.stderr()}")
        time.sleep(0.1)


def wait_lines(tail, pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = tail.lines()
        except TestFailure:
            lines = []  # a line being written
        if pred(lines):
            return lines
        check(time.monotonic() < deadline, f"no {what} from the cluster-wide tail within {timeout} s: {lines}")
        time.sleep(0.1)


if __name__ == "__main__":
    main(run, "agent_test")

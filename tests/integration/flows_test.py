#!/usr/bin/python3
"""The working connections, end to end on the network-namespace lab (kube-router flavour).

The test runs in the lab node's network namespace, as an agent of a node with hostNetwork does: the agent (its
connection recorder: the TCP program on sock:inet_sock_set_state and the node's conntrack events), the fake API
server and `netpol-trace flows` all live there. Servers listen in the pods' namespaces. It checks:
  - TCP pod -> pod and pod -> Service address (DNAT), IPv4 and IPv6: exact counts on both sides; the client side
    keeps the address it dialled and names the Service, the server side counts the connections made through it;
  - UDP DNS through the kube-dns Service, from conntrack: each answered query once, both sides, the Service named;
    a query without an answer and a refused TCP connection are not working connections;
  - pods, namespaces and workloads (Deployment through the pod's ReplicaSet) resolved from the state;
  - /flows filters (namespace=, pod=, since=), a bad one answered 400 with its message;
  - `netpol-trace flows` through the API server's pod proxy lists what the agent's /flows lists;
  - the journal: a restarted agent lists the same connections with the same counts;
  - a burst of 50,000 distinct connections: the table stays at --max-connections and counts what it evicted.
"""
import ctypes
import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (BINARY, Agent, FakeApiServer, Lab, TestFailure, check, main, test_octet,  # noqa: E402
                          test_prefix)

AGENT_NS = "netpol-trace"
MAX_CONNECTIONS = 10_000
BURST = 50_000

# Servers in the pods' namespaces: TCP accept-and-close on the given ports, UDP echo on 53 (silent for "noreply").
TCP_SERVER = r"""
import socket, sys, threading, time
def serve(family, addr, port):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()
for spec in sys.argv[1:]:
    addr, port = spec.rsplit("/", 1)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    threading.Thread(target=serve, args=(family, addr, int(port)), daemon=True).start()
print("listening", flush=True)
time.sleep(3600)
"""
UDP_SERVER = r"""
import select, socket, sys, time
socks = []
for addr in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    socks.append(s)
print("listening", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        data, peer = s.recvfrom(512)
        if data != b"noreply":
            s.sendto(data, peer)
"""
CLIENT = r"""
import json, socket, sys
results = []
for kind, addr, port, n in json.loads(sys.argv[1]):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for _ in range(n):
        if kind == "tcp":
            s = socket.socket(family)
            s.settimeout(2)
            try:
                s.connect((addr, port))
                results.append("connected")
            except OSError as e:
                results.append(type(e).__name__)
            s.close()
        else:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(2)
            s.sendto(b"noreply" if kind == "udp-noreply" else b"query", (addr, port))
            if kind == "udp":
                results.append(s.recvfrom(512)[0].decode())
            s.close()
print(json.dumps(results))
"""
BURST_CLIENT = r"""
import socket, struct, sys
addr, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ok = 0
for port in range(first, first + n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST: no TIME_WAIT
    try:
        s.connect((addr, port))
        ok += 1
    except OSError:
        pass
    s.close()
print(ok)
"""


class Netns:
    """Moves this process (and what it starts) into a named network namespace, and back."""
    CLONE_NEWNET = 0x40000000

    def __init__(self, name):
        self.name = name
        self.libc = ctypes.CDLL(None, use_errno=True)

    def _setns(self, path):
        fd = os.open(path, os.O_RDONLY)
        try:
            if self.libc.setns(fd, self.CLONE_NEWNET) != 0:
                raise TestFailure(f"setns {path}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        self._setns(f"/run/netns/{self.name}")
        return self

    def __exit__(self, *exc):
        fd = self.home
        if self.libc.setns(fd, self.CLONE_NEWNET) != 0:
            raise TestFailure(f"setns back: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
        return False


class Process:
    """A helper process in a pod's namespace, ended with the test."""

    def __init__(self, netns, script, *args):
        self.cmd = ["ip", "netns", "exec", netns, sys.executable, "-c", script, *args]

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "listening":
            self.proc.kill()
            raise TestFailure(f"{self.cmd[3]}: server did not start: {line}{self.proc.stderr.read()}")
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def run_in(netns, script, *args, timeout=120):
    r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", script, *args], text=True,
                       capture_output=True, timeout=timeout)
    check(r.returncode == 0, f"client in {netns}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def agent_pod(name, node):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": AGENT_NS,
                         "labels": {"app.kubernetes.io/name": "netpol-trace", "app.kubernetes.io/component": "agent"}},
            "spec": {"nodeName": node}, "status": {"phase": "Running", "podIP": "127.0.0.1"}}


def lab_networks(octet):
    return [ipaddress.ip_network(n) for n in (f"10.{octet}.0.0/16", f"10.96.{octet}.0/24", f"fd00:{octet}::/32",
                                              f"fd00:96:{octet}::/112")]


def key(line):
    """(side, client, server, port, protocol, family): pods by name, other ends by address."""
    dst = line["dst"]["pod"] or line["dst"]["ip"]
    family = 6 if ":" in line["src"]["ip"] else 4
    return (line["side"], line["src"]["pod"] or line["src"]["ip"], dst, line["dst"]["port"], line["protocol"], family)


def lab_lines(body, octet, exclude_port_range=None):
    nets = lab_networks(octet)
    out = []
    for text in body.splitlines():
        if not text.strip():
            continue
        line = json.loads(text)
        ip = ipaddress.ip_address(line["src"]["ip"])
        if not any(ip in n for n in nets):
            continue
        out.append(line)
    return out


def counts(lines):
    return {key(l): l["count"] for l in lines}


def wait_flows(agent, query, octet, want, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        status, body = agent.get("/flows" + query)
        check(status == 200, f"/flows{query}: {status} {body}")
        got = counts(lab_lines(body, octet))
        if got == want:
            return lab_lines(body, octet)
        if time.monotonic() > deadline:
            missing = {k: v for k, v in want.items() if got.get(k) != v}
            extra = {k: v for k, v in got.items() if k not in want}
            raise TestFailure(f"/flows{query}:\n  wrong or missing: {missing}\n  got for them: "
                              f"{ {k: got.get(k) for k in missing} }\n  unexpected: {extra}\n{agent.stderr()}")
        time.sleep(0.3)


def run():
    octet = test_octet(229)
    with Lab("kube-router", test_prefix("nptflows"), octet) as lab:
        status = lab.status()
        pods = {p["pod"].split("/")[1].split("-")[0]: p for p in status["pods"]}
        node = lab.config["node"]
        with open(lab.state) as f:
            state = json.load(f)
        with Netns(node), tempfile.TemporaryDirectory(prefix="npt-flows-") as work, FakeApiServer(work) as api:
            api.control("apply", state)
            kubeconfig = api.kubeconfig()
            journal = os.path.join(work, "journal", "flows.jsonl")
            os.makedirs(os.path.dirname(journal))
            agent_args = ["--max-connections", str(MAX_CONNECTIONS), "--flows-journal", journal]
            api_pod, dns_pod = pods["api"], pods["coredns"]
            with Process(api_pod["netns"], TCP_SERVER, f"{api_pod['ipv4']}/8443", f"{api_pod['ipv6']}/8443"), \
                    Process(dns_pod["netns"], UDP_SERVER, dns_pod["ipv4"], dns_pod["ipv6"]), \
                    Process(dns_pod["netns"], TCP_SERVER, f"{dns_pod['ipv4']}/8080"):
                with Agent(work, node, kubeconfig, agent_args) as agent:
                    agent.wait_ready()
                    check("UDP and SCTP through conntrack events" in agent.stderr(),
                          f"the agent does not see conntrack: {agent.stderr()}")
                    want = check_connections(agent, api, kubeconfig, lab, pods, octet)
                    check_filters(agent, want, pods, octet)
                    check_remote_flows(agent, api, kubeconfig, node, octet)
                    agent.stop()
                with Agent(work, node, kubeconfig, agent_args) as agent:
                    agent.wait_ready()
                    check("connections read back from" in agent.stderr(), f"no journal read: {agent.stderr()}")
                    wait_flows(agent, "", octet, want, timeout=5)
                    print("  restarted agent: the journal's connections, same counts", flush=True)
                    check_burst(agent, pods, octet)
                    agent.stop()


def check_connections(agent, api, kubeconfig, lab, pods, octet):
    fe, co, inv, api_pod, dns = pods["frontend"], pods["checkout"], pods["invoicer"], pods["api"], pods["coredns"]
    svc = {s["metadata"]["name"]: s["spec"]["clusterIPs"] for s in json.load(open(lab.state))["items"]
           if s["kind"] == "Service"}
    api_vip4, api_vip6 = svc["api"]
    dns_vip4, dns_vip6 = svc["kube-dns"]
    sent = run_in(fe["netns"], CLIENT, json.dumps([["tcp", api_pod["ipv4"], 8443, 3], ["tcp", api_pod["ipv6"], 8443, 2],
                                                   ["tcp", api_vip4, 443, 2], ["tcp", api_vip6, 443, 1]]))
    check(json.loads(sent) == ["connected"] * 8, f"frontend's connections: {sent}")
    sent = run_in(co["netns"], CLIENT, json.dumps([["udp", dns_vip4, 53, 2], ["udp", dns_vip6, 53, 2],
                                                   ["udp-noreply", dns_vip4, 53, 1],
                                                   ["udp-noreply", dns_vip6, 53, 1]]))
    check(json.loads(sent) == ["query"] * 4, f"checkout's DNS queries: {sent}")
    # Nothing listens on the DNS pod's TCP 53: refused, not a working connection.
    sent = run_in(inv["netns"], CLIENT, json.dumps([["tcp", dns["ipv4"], 53, 2]]))
    check(json.loads(sent) == ["ConnectionRefusedError"] * 2, f"invoicer's refused connections: {sent}")

    F, C, A, D = fe["pod"], co["pod"], api_pod["pod"], dns["pod"]
    want = {
        ("client", F, A, 8443, "TCP", 4): 3,
        ("client", F, A, 8443, "TCP", 6): 2,
        ("client", F, api_vip4, 443, "TCP", 4): 2,
        ("client", F, api_vip6, 443, "TCP", 6): 1,
        # The server side sees the endpoint: its count includes the connections made through the Service.
        ("server", F, A, 8443, "TCP", 4): 3 + 2,
        ("server", F, A, 8443, "TCP", 6): 2 + 1,
        ("client", C, dns_vip4, 53, "UDP", 4): 2,
        ("client", C, dns_vip6, 53, "UDP", 6): 2,
        ("server", C, D, 53, "UDP", 4): 2,
        ("server", C, D, 53, "UDP", 6): 2,
    }
    lines = wait_flows(agent, "", octet, want)
    for l in lines:
        if l["dst"]["ip"] in (api_vip4, api_vip6):
            check(l["dst"]["service"] == "payments/api", f"the Service dialled is named: {l}")
        if l["dst"]["ip"] in (dns_vip4, dns_vip6):
            check(l["dst"]["service"] == "kube-system/kube-dns" and l["observed_by"] == "conntrack",
                  f"DNS through the Service, from conntrack: {l}")
        if l["side"] == "server":
            check(l["dst"]["service"] is None, f"the server side sees the endpoint: {l}")
        if l["src"]["pod"] == F:
            check(l["src"]["namespace"] == "shop" and l["src"]["workload"] == "Deployment/frontend" and
                  l["src"]["labels"].get("app") == "frontend" and l["node"] == lab.config["node"],
                  f"the client resolved: {l}")
        check(l["first_seen"] and l["last_seen"] and l["first_seen"] <= l["last_seen"], f"times: {l}")
    check(not [l for l in lines if l["src"]["pod"] == inv["pod"]], "a refused connection is listed")
    print(f"  {len(lines)} connections with exact counts (TCP direct and through the Service, DNS through "
          f"conntrack, IPv4 and IPv6)", flush=True)
    return {key(l): l["count"] for l in lines}


def check_filters(agent, want, pods, octet):
    payments = {k: v for k, v in want.items() if pods["api"]["pod"] in k}
    wait_flows(agent, "?namespace=payments", octet, payments, timeout=2)
    checkout = {k: v for k, v in want.items() if pods["checkout"]["pod"] in k}
    wait_flows(agent, "?pod=" + pods["checkout"]["pod"], octet, checkout, timeout=2)
    name = pods["checkout"]["pod"].split("/")[1]
    wait_flows(agent, f"?namespace=shop&pod={name}", octet, checkout, timeout=2)
    wait_flows(agent, "?since=1h", octet, want, timeout=2)
    time.sleep(1.5)
    status, body = agent.get("/flows?since=1s")
    check(status == 200 and not lab_lines(body, octet), f"?since=1s after 1.5 s of silence: {body}")
    for query, message in (("?since=yesterday", "since=yesterday: expected a duration"),
                           ("?pod=" + name, "pod=NAME needs exactly one namespace="),
                           ("?since=1h&since=2h", "at most one since=")):
        status, body = agent.get("/flows" + query)
        check(status == 400 and message in body and body.count("\n") == 1, f"/flows{query}: {status} {body!r}")
    tracked = agent.metric("netpol_trace_connections_tracked")
    check(tracked is not None and tracked >= len(want), f"netpol_trace_connections_tracked {tracked}")
    check(agent.metric("netpol_trace_conntrack_visible") == 1, "netpol_trace_conntrack_visible")
    check(agent.metric("netpol_trace_connections_observed_total", {"observed_by": "conntrack"}) >= 4,
          "conntrack entries counted")
    print("  /flows filters and metrics", flush=True)


def check_remote_flows(agent, api, kubeconfig, node, octet):
    api.control("apply", [agent_pod("agent-a", node)])
    api.control("config", {"proxy_targets": {f"{AGENT_NS}/agent-a": f"127.0.0.1:{agent.port}"}})
    r = subprocess.run([BINARY, "flows", "--kubeconfig", kubeconfig, "-n", "shop", "-o", "json"], text=True,
                       capture_output=True, timeout=30)
    check(r.returncode == 0, f"flows through the pod proxy: exit {r.returncode}: {r.stderr}")
    _, direct = agent.get("/flows?namespace=shop")
    check(counts(lab_lines(r.stdout, octet)) == counts(lab_lines(direct, octet)),
          f"flows -n shop:\n{r.stdout}\n/flows?namespace=shop:\n{direct}")
    r = subprocess.run([BINARY, "flows", "--kubeconfig", kubeconfig], text=True, capture_output=True, timeout=30)
    check(r.returncode == 0 and r.stdout.split()[:3] == ["SRC", "DST", "PORT"], f"flows -o table: {r.stdout}{r.stderr}")
    r = subprocess.run([BINARY, "flows", "--kubeconfig", kubeconfig, "--pod", "frontend"], text=True,
                       capture_output=True, timeout=30)
    check(r.returncode == 2 and r.stderr.count("\n") == 1 and "--namespace" in r.stderr, f"flows --pod NAME: {r.stderr}")
    print("  netpol-trace flows through the API server's pod proxy", flush=True)


def check_burst(agent, pods, octet):
    dns = pods["coredns"]
    # Every port of 10000-59999 of the DNS pod reaches its server on 8080: 50,000 distinct client-side keys.
    subprocess.run(["ip", "netns", "exec", dns["netns"], "nft", "-f", "-"], text=True, check=True, input=f"""
table ip npt_flows_burst {{
  chain pre {{ type nat hook prerouting priority dstnat; tcp dport 10000-{10000 + BURST - 1} redirect to :8080; }}
}}
""")
    before = agent.metric("netpol_trace_connections_tracked") + agent.metric("netpol_trace_connections_evicted_total")
    started = time.monotonic()
    ok = int(run_in(pods["prometheus"]["netns"], BURST_CLIENT, dns["ipv4"], "10000", str(BURST), timeout=600))
    elapsed = time.monotonic() - started
    check(ok == BURST, f"burst: {ok} of {BURST} connected")
    deadline = time.monotonic() + 15
    while True:
        tracked = agent.metric("netpol_trace_connections_tracked")
        evicted = agent.metric("netpol_trace_connections_evicted_total")
        # 50,000 client-side keys and the server's one (redirected to 8080); on a busy machine a few others.
        if tracked + evicted - before >= BURST + 1:
            break
        check(time.monotonic() < deadline, f"burst: tracked {tracked}, evicted {evicted}, before {before}")
        time.sleep(0.5)
    check(tracked == MAX_CONNECTIONS, f"the table holds --max-connections: {tracked}")
    check(tracked + evicted - before <= BURST + 1 + 100, f"burst: more keys than connections: {tracked + evicted}")
    _, body = agent.get("/flows?namespace=monitoring", timeout=30)
    burst = [l for l in lab_lines(body, octet) if l["side"] == "client" and 10000 <= l["dst"]["port"] < 10000 + BURST]
    check(len(burst) > MAX_CONNECTIONS - 100 and all(l["count"] == 1 for l in burst),
          f"the most recent burst connections are kept: {len(burst)}")
    print(f"  burst of {BURST} connections in {elapsed:.1f} s: table {int(tracked)}, evicted {int(evicted)}",
          flush=True)


if __name__ == "__main__":
    main(run, "flows_test")

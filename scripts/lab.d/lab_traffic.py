"""The runbook cases as bounded traffic, and the dataplane-vs-policy consistency check."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import lab_sockets
from lab_cluster import Cluster

TCP_TIMEOUT = 0.3  # well under the kernel's first SYN retransmission (1 s): one SYN per attempt

CASES = {
    "dns": "runbook issue 1, DNS blocked: shop/frontend queries the kube-dns Service (UDP/53); shop's egress "
           "policies allow no DNS",
    "egress-port": "runbook issue 2, egress port blocked: shop/frontend connects to payments/api's metrics port "
                   "9090; its egress policy allows TCP/8443 only",
    "ingress": "runbook issue 3, ingress blocked at the destination: monitoring/prometheus (no egress policy) "
               "scrapes payments/api:9090; the api's ingress policy admits the shop frontend on https only",
    "label-mismatch": "runbook issue 4, pod labels do not match: shop/checkout (app.kubernetes.io/name=checkout) "
                      "connects to databases/postgres-0:5432; the database policy admits app=checkout",
    "stale-established": "runbook issue 5, established connection still blocked: billing/invoicer's DNS flow to "
                         "coredns is answered once, then the dataplane drops it per packet (rules of the policy "
                         "before billing/allow-dns); the state's policies allow it",
}
# Not in "all" (other tests count the flows of "all"): the Service DNAT cases, on TCP.
EXTRA_CASES = {
    "service-dnat": "a Service on TCP, denied at its endpoint: monitoring/prometheus connects to the payments/api "
                    "Service (ClusterIP:443); kube-proxy DNATs it to the api pod's 8443, whose ingress policy admits "
                    "the shop frontend only",
    "api-server": "runbook issue 6, API access blocked: ops/operator connects to default/kubernetes (the first "
                  "Service IP, 443); its egress policy allows ipBlock <Service IP>/32 port 443, but the dataplane "
                  "sees the control plane endpoint (an address of the node, TCP 6443) after DNAT",
    "admin-deny": "a ClusterNetworkPolicy of the Admin tier denies what NetworkPolicies allow: monitoring/prometheus "
                  "connects to ops/operator:8080; ops-lockdown's rule deny-ingress-from-workloads closes ops "
                  "(dataplanes that enforce the policy API: kube-network-policies, Calico v3.29+)",
    "admin-pass": "an Admin tier Pass hands a flow to a NetworkPolicy that denies it: monitoring/prometheus connects "
                  "to databases/postgres-0:5432; databases-delegate-monitoring passes it, postgres-allow-checkout "
                  "admits the checkout only",
    "baseline-deny": "the Baseline tier denies for a pod no NetworkPolicy isolates: monitoring/prometheus connects to "
                     "kube-system/coredns' metrics port 9153; monitoring-baseline's deny-kube-system-metrics",
    "noise": "64 UDP flows monitoring/prometheus -> payments/api ports 20000-20063 (dropped, unrelated to shop)",
    "allowed": "flows the policies allow (frontend -> api:8443, checkout -> kube-dns, invoicer -> coredns): no drop",
}
COUNT = 3
# The cases of the ClusterNetworkPolicy tiers: dataplanes that do not enforce them let these flows through.
CLUSTER_POLICY_CASES = ("admin-deny", "admin-pass", "baseline-deny")


Flow = dict  # case, family, src, src_ip, dst, dst_ip, protocol, port, count; after sending: sent, errors


def plan(c: Cluster, case: str, family: int, count: int = COUNT) -> list:
    """The flows a case sends: src/dst pods (or Service), the address dialled, protocol, port, packets."""
    def flow(src, dst, proto, port, n=count, dst_ip=None, **kw):
        return Flow(case=case, family=family, src=src.id, src_ip=src.ip(family), dst=dst.id,
                    dst_ip=dst_ip or dst.ip(family), protocol=proto, port=port, count=n, **kw)

    pod, svc = c.pod, c.service
    if case == "dns":
        dns = svc("kube-system/kube-dns")
        return [flow(pod("frontend"), dns, "udp", 53, dst_ip=dns.ip(family), endpoint=pod("coredns").id,
                     endpoint_ip=pod("coredns").ip(family))]
    if case == "egress-port":
        return [flow(pod("frontend"), pod("api"), "tcp", 9090)]
    if case == "ingress":
        return [flow(pod("prometheus"), pod("api"), "tcp", 9090)]
    if case == "label-mismatch":
        return [flow(pod("checkout"), pod("postgres"), "tcp", 5432)]
    if case == "stale-established":
        return [flow(pod("invoicer"), pod("coredns"), "udp", 53, established=True)]
    if case == "service-dnat":
        api = svc("payments/api")
        return [flow(pod("prometheus"), api, "tcp", 443, dst_ip=api.ip(family), endpoint=pod("api").id,
                     endpoint_ip=pod("api").ip(family), endpoint_port=8443)]
    if case == "api-server":
        k8s, cp = svc("default/kubernetes"), c.control_plane
        return [flow(pod("operator"), k8s, "tcp", 443, dst_ip=k8s.ip(family), endpoint=None,
                     endpoint_ip=cp.ip(family), endpoint_port=6443)]
    if case == "admin-deny":
        return [flow(pod("prometheus"), pod("operator"), "tcp", 8080)]
    if case == "admin-pass":
        return [flow(pod("prometheus"), pod("postgres"), "tcp", 5432)]
    if case == "baseline-deny":
        return [flow(pod("prometheus"), pod("coredns"), "tcp", 9153)]
    if case == "noise":
        return [flow(pod("prometheus"), pod("api"), "udp", 20000, n=64, port_step=True)]
    if case == "allowed":
        dns = svc("kube-system/kube-dns")
        return [flow(pod("frontend"), pod("api"), "tcp", 8443, n=1, expect="connected"),
                flow(pod("checkout"), dns, "udp", 53, n=1, dst_ip=dns.ip(family), expect="answered"),
                flow(pod("invoicer"), pod("coredns"), "udp", 53, n=1, expect="answered")]
    raise KeyError(case)


def _send(c: Cluster, f: Flow):
    ns = c.netns(c.pod(f["src"]))
    if f["protocol"] == "udp":
        r = lab_sockets.send_udp(ns, f["dst_ip"], f["port"], f["count"], port_step=f.get("port_step", False))
    else:
        r = lab_sockets.tcp_attempts(ns, f["dst_ip"], f["port"], f["count"], TCP_TIMEOUT)
    f.update(r)


def _established(c: Cluster, dataplane, f: Flow, lock: threading.Lock):
    src, dst = c.pod(f["src"]), c.pod(f["dst"])
    flow = lab_sockets.EstablishedUdp(c.netns(src), f["dst_ip"], f["port"])
    try:
        if not flow.establish():
            raise RuntimeError(f"{f['src']} -> {f['dst_ip']}:{f['port']}: no answer to the first request")
        f["sport"] = flow.sport
        with lock:  # concurrent rule updates in one netns may fail (iptables-legacy's lock, nft generations)
            dataplane.stale_rule(src, dst, f["family"], f["protocol"], f["port"], add=True)
        try:
            f.update(flow.send(f["count"]))
        finally:
            with lock:
                dataplane.stale_rule(src, dst, f["family"], f["protocol"], f["port"], add=False)
    finally:
        flow.close()


def _allowed(c: Cluster, f: Flow):
    f["reachable"] = lab_sockets.reachable(c.netns(c.pod(f["src"])), f["dst_ip"], f["protocol"], f["port"], 1.0)
    f["sent"] = 1


def run_cases(c: Cluster, dataplane, cases: list, families: list, count: int = COUNT) -> list:
    """Sends every flow of the cases at once (each flow's packets in order); returns the flows with what was sent."""
    flows = [f for case in cases for fam in families for f in plan(c, case, fam, count)]
    servers = {}

    def listen(ns, proto, port):
        if (proto, port) not in servers.setdefault(ns, []):
            servers[ns].append((proto, port))

    if any(f.get("established") or f.get("expect") for f in flows):
        listen(c.netns(c.pod("coredns")), "udp", 53)
    if any(f.get("expect") for f in flows):
        listen(c.netns(c.pod("api")), "tcp", 8443)
    # The Service endpoints listen, as they would in a cluster: a connection the dataplane let through connects.
    if any(f["case"] == "service-dnat" for f in flows):
        listen(c.netns(c.pod("api")), "tcp", 8443)
    if any(f["case"] == "api-server" for f in flows):
        listen(c.node, "tcp", 6443)
    for f in flows:
        if f["case"] in CLUSTER_POLICY_CASES:
            listen(c.netns(c.pod(f["dst"])), "tcp", f["port"])
    lock = threading.Lock()

    def one(f):
        if f.get("established"):
            _established(c, dataplane, f, lock)
        elif f.get("expect"):
            _allowed(c, f)
        else:
            _send(c, f)

    with lab_sockets.Servers(servers):
        results = lab_sockets.parallel(one, flows)
    errors = [r["error"] for r in results if r and "error" in r]
    if errors:
        raise RuntimeError("; ".join(errors))
    return flows


# ------------------------------------------------------------------ consistency: dataplane vs netpol-trace explain

def check(c: Cluster, state_path: str, binary: str, families=(4, 6), out=sys.stdout) -> int:
    """Probes every pod -> every other pod's declared ports and every Service port, and compares what the dataplane
    let through with netpol-trace explain's verdict. Returns the number of disagreements."""
    servers = {c.netns(p): [(x.protocol.lower(), x.number) for x in p.ports] for p in c.pods}
    # The control plane behind default/kubernetes: addresses of the node namespace.
    servers[c.node] = [(sp.protocol.lower(), sp.target_port) for s in c.services if s.external for sp in s.ports]
    targets = []  # (src pod, dst label, dst ip, proto, port)
    for src in c.pods:
        for family in families:
            for dst in c.pods:
                if dst is src:
                    continue
                for x in dst.ports:
                    targets.append((src, dst.id, dst.ip(family), x.protocol.lower(), x.number))
            for s in c.services:
                if any(ep is src for ep in c.endpoints(s)):
                    continue
                for sp in s.ports:
                    targets.append((src, s.id, s.ip(family), sp.protocol.lower(), sp.port))
    with lab_sockets.Servers(servers):
        results = lab_sockets.parallel(lambda t: lab_sockets.reachable(c.netns(t[0]), t[2], t[3], t[4], 0.5), targets)
    errors = [r["error"] for r in results if isinstance(r, dict)]
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    # One batch of the engine's verdicts (explain --probes: one JSON line per probe, in order).
    probes = "".join(json.dumps({"from": t[0].id, "to": t[2], "port": t[4], "protocol": t[3].upper()}) + "\n"
                     for t in targets)
    r = subprocess.run([binary, "explain", "--state", state_path, "--probes", "-", "-o", "json"], input=probes,
                       text=True, capture_output=True)
    verdicts = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    if r.returncode not in (0, 1) or len(verdicts) != len(targets):
        raise RuntimeError(f"netpol-trace explain --probes failed (exit {r.returncode}): {r.stderr.strip()} "
                           f"{[v for v in verdicts if 'error' in v][:3]}")
    mismatches = 0
    for i, (src, dst_label, dst_ip, proto, port) in enumerate(targets):
        verdict = verdicts[i]["verdict"]
        reachable = results[i]
        agree = reachable == (verdict == "allowed")
        mismatches += 0 if agree else 1
        out.write(f"{'ok      ' if agree else 'MISMATCH'} {src.id} -> {dst_label} {dst_ip}:{port}/{proto}: "
                  f"dataplane {'passes' if reachable else 'blocks'}, policy {verdict}\n")
    out.write(f"{len(targets)} flows probed, {mismatches} disagreements\n")
    return mismatches

#!/usr/bin/python3
"""--rule-trace and --nflog-group: the rule that dropped a flow, on CNI-shaped rulesets of the lab.

The tail runs in the lab's node namespace (where the CNI's rules are, as the agent runs in the node's host network
namespace) and traces the watched pods' packets from a table of its own.

1. kube-router v2.6 (iptables-nft; k3s's base), with k3s's NFLOG prefix (group 100, "DROP by policy ns/name"): each
   dropped flow names the REJECT rule of the pod's firewall chain (table filter, the chain, the handle nft shows, its
   comment), kube-router as the CNI, the pod and the policies the packet was run through; the NFLOG record of the
   packet is joined (group, prefix, the policy it names). A second tail asking for the same group is told another
   listener holds it and goes on. While tracing, the tool's table exists; after the tail exits, normally or killed
   (SIGKILL), no table of the tool's is left. A stalled reader (the tail stopped with SIGSTOP while the traffic runs,
   resumed 5 s later) still names every flow's rule: traces are joined by the drop's kernel time, not by the time
   they are read.
2. Calico (iptables-nft): drops are the "End of tier" rule of the pod's cali-tw-/cali-fw- chain: the pod (from the
   hashed interface name) and direction, and the Kubernetes policies whose hashed cali-pi-/cali-po- chains the packet
   went through (and the cluster policies' of the Admin tier before them). A Calico GlobalNetworkPolicy-shaped chain
   (cali-po-default.deny-dns) dropping DNS the state's policies allow: the engine says allowed, and the line names the unmodelled policy (UNMODELLED_POLICY).
3. kube-router through iptables-legacy: the drop has no rule, and the line says nftables tracing cannot see it.

NPT_TEST_LAB_PREFIX and NPT_TEST_OCTET_SHIFT move the labs (tail_support's test_prefix and test_octet).
"""
import base64
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (BINARY, Lab, Tail, check, index_lines, lab_ips, lab_tail_args, main, norm_ip,  # noqa: E402
                          test_octet, test_prefix)

OCTETS = {k: test_octet(v) for k, v in {"kube-router": 239, "calico": 241, "kube-router-legacy": 243}.items()}
# pkg/controllers/netpol's sync version of the lab's one sync (scripts/lab.d/lab_kube_router.py): in the chain hashes.
SYNC_VERSION = "1723456789012345678"
CASES = ("ingress", "label-mismatch", "egress-port")


def in_node(lab, *cmd):
    r = subprocess.run(["ip", "netns", "exec", f"{lab.prefix}-node", *cmd], text=True, capture_output=True)
    check(r.returncode == 0, f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def tool_tables(lab):
    return re.findall(r"table inet (netpol_trace_\d+)", in_node(lab, "nft", "list", "tables"))


def wait_no_tool_tables(lab, what):
    deadline = time.monotonic() + 5
    while tool_tables(lab):
        check(time.monotonic() < deadline, f"{what}: the tool's table is still there: {tool_tables(lab)}")
        time.sleep(0.1)


def pods_by_ip(lab):
    out = {}
    for p in lab.status()["pods"]:
        for fam in ("ipv4", "ipv6"):
            out[norm_ip(p[fam])] = p["pod"]
    return out


def reject_handle(lab, family, chain):
    """The handle nft shows for the last rule of a chain that rejects or drops (the pod chain's verdict rule)."""
    listing = json.loads(in_node(lab, "nft", "-j", "-a", "list", "chain", family, "filter", chain))
    handles = []
    for item in listing["nftables"]:
        rule = item.get("rule")
        if not rule:
            continue
        text = json.dumps(rule["expr"])
        if '"reject"' in text or '"drop"' in text or '"REJECT"' in text or '"DROP"' in text:
            handles.append(rule["handle"])
    check(handles, f"no reject/drop rule in {family} filter {chain}")
    return handles[-1]


def nflog_prefix_of(lab, family, chain):
    save = in_node(lab, "iptables-nft-save" if family == "ip" else "ip6tables-nft-save", "-t", "filter")
    for line in save.splitlines():
        if line.startswith(f"-A {chain} ") and "NFLOG" in line:
            m = re.search(r'--nflog-prefix "([^"]*)"', line) or re.search(r"--nflog-prefix (\S+)", line)
            return m.group(1) if m else None
    return None


def drops(lines, ips, flows):
    by_key = index_lines(lines, ips)
    out = []
    for f in flows:
        dst_ip = f.get("endpoint_ip") or f["dst_ip"]
        key = (norm_ip(f["src_ip"]), norm_ip(dst_ip), f["protocol"].upper(), int(f.get("endpoint_port") or f["port"]))
        got = by_key.get(key)
        check(got and len(got["drop"]) == 1, f"{f['case']} {key}: expected one drop line, got {got}")
        out.append((f, got["drop"][0], got["summary"][0] if got["summary"] else None))
    return out


def kube_router_case():
    with Lab("kube-router@2.6", test_prefix("nptrt-kr"), OCTETS["kube-router"], env={"NPT_LAB_NFLOG": "k3s"}) as lab:
        ips, pods = lab_ips(lab), pods_by_ip(lab)
        node = f"{lab.prefix}-node"
        with Tail(lab_tail_args(lab, extra=["--rule-trace", "--nflog-group", "100", "--debug"]), name="rt-kr",
                  netns=node) as tail:
            tables = tool_tables(lab)
            check(tables == [f"netpol_trace_{tail.proc.pid}"], f"the tool's trace table while tracing: {tables}")
            # The group is ours now: a second tail is told so, and runs without it.
            second = subprocess.run(["ip", "netns", "exec", node, BINARY, *lab_tail_args(lab),
                                            "--nflog-group", "100", "--duration", "0.5"],
                                    text=True, capture_output=True, timeout=30)
            check(second.returncode == 0 and "--nflog-group" in second.stderr and "another listener" in
                  second.stderr and "continuing without NFLOG records" in second.stderr,
                  f"a second listener of group 100: exit {second.returncode}: {second.stderr!r}")
            flows = lab.traffic(*CASES, count=3)
            lines = tail.stop()
        wait_no_tool_tables(lab, "after the tail exited")
        for f, line, summary in drops(lines, ips, flows):
            rule = line["rule"]
            what = f"{f['case']} IPv{f['family']}"
            check(rule and rule["via"] == "nftrace", f"{what}: no traced rule: {rule}")
            fam = "ip" if f["family"] == 4 else "ip6"
            check(rule["table"] == "filter" and rule["family"] == fam, f"{what}: table {rule}")
            check(rule["cni"] == "kube-router", f"{what}: cni {rule}")
            # The pod whose firewall chain rejected it is one end of the flow, named by the comment and the chain.
            ends = {pods.get(norm_ip(line["src"]["ip"])), pods.get(norm_ip(line["dst"]["ip"]))}
            check(rule["pod"] in ends, f"{what}: pod {rule.get('pod')} is not an end of the flow {ends}")
            ns, name = rule["pod"].split("/")
            chain = "KUBE-POD-FW-" + base64.b32encode(hashlib.sha256((ns + name + SYNC_VERSION).encode())
                                                       .digest()).decode()[:16]
            check(rule["chain"] == chain, f"{what}: chain {rule['chain']}, the pod's is {chain}")
            check(rule["comment"] == f"rule to REJECT traffic destined for POD name:{name} namespace: {ns}",
                  f"{what}: comment {rule['comment']!r}")
            check(rule["handle"] == reject_handle(lab, fam, chain), f"{what}: handle {rule['handle']}")
            check(rule["path"][-1] == chain and rule["path"][0] == "FORWARD", f"{what}: path {rule['path']}")
            side = "ingress" if rule["pod"] == pods.get(norm_ip(line["dst"]["ip"])) else "egress"
            check(set(rule.get("evaluated_policies", [])) == set(line[side]["policies"]),
                  f"{what}: evaluated {rule.get('evaluated_policies')} vs {side} policies {line[side]['policies']}")
            prefix = nflog_prefix_of(lab, fam, chain)
            check(prefix and rule.get("nflog") == {"group": 100, "prefix": prefix},
                  f"{what}: nflog {rule.get('nflog')}, the rule logs with prefix {prefix!r}")
            check(rule["policy"] == prefix.split()[-1], f"{what}: policy {rule['policy']} from prefix {prefix!r}")
            check(summary and summary["rule"] == rule,
                  f"{what}: the summary's rule differs: {summary and summary['rule']}")

        # A stalled reader: stopped while the traffic runs, resumed 5 s later. The trace messages wait in their
        # socket meanwhile and are read seconds after the drops; each still names its flow's rule.
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name="rt-stall", netns=node) as tail:
            tail.proc.send_signal(signal.SIGSTOP)
            try:
                flows = lab.traffic("ingress", count=2)
                time.sleep(5)
            finally:
                tail.proc.send_signal(signal.SIGCONT)
            lines = tail.stop(grace=1.0)
        for f, line, _ in drops(lines, ips, flows):
            what = f"stalled reader: {f['case']} IPv{f['family']}"
            rule = line["rule"]
            check(line.get("rule_trace") == "traced" and rule and rule["via"] == "nftrace" and
                  rule["cni"] == "kube-router" and rule["chain"].startswith("KUBE-POD-FW-"),
                  f"{what}: rule_trace {line.get('rule_trace')}, rule {rule}")

        # Killed: the kernel removes the owner's table with its socket.
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name="rt-kill", netns=node) as tail:
            check(tool_tables(lab) == [f"netpol_trace_{tail.proc.pid}"], "trace table of the second tail")
            tail.proc.send_signal(signal.SIGKILL)
            tail.proc.wait()
        wait_no_tool_tables(lab, "after SIGKILL")


def calico_case():
    with Lab("calico", test_prefix("nptrt-cal"), OCTETS["calico"]) as lab:
        ips, pods = lab_ips(lab), pods_by_ip(lab)
        iface = {p: "cali" + hashlib.sha1(p.replace("/", ".").encode()).hexdigest()[:11] for p in pods.values()}
        node = f"{lab.prefix}-node"
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name="rt-cal", netns=node) as tail:
            flows = lab.traffic(*CASES, count=3)
            lines = tail.stop()
        for f, line, _ in drops(lines, ips, flows):
            rule = line["rule"]
            what = f"{f['case']} IPv{f['family']}"
            check(rule and rule["via"] == "nftrace" and rule["cni"] == "calico", f"{what}: rule {rule}")
            check(rule["comment"] == "End of tier default. Drop if no policies passed packet",
                  f"{what}: comment {rule['comment']!r}")
            m = re.fullmatch(r"cali-(tw|fw)-(\w+)", rule["chain"])
            check(m, f"{what}: chain {rule['chain']}")
            direction = "ingress" if m.group(1) == "tw" else "egress"
            pod = pods[norm_ip(line["dst"]["ip"] if direction == "ingress" else line["src"]["ip"])]
            check(rule["pod"] == pod and rule["direction"] == direction,
                  f"{what}: pod {rule.get('pod')} {rule.get('direction')}, the chain is {pod}'s {direction}")
            check(m.group(2) == iface[pod] or m.group(2).startswith("veth"), f"{what}: interface of {pod}")
            check(rule["policy"] is None, f"{what}: End of tier names no policy: {rule['policy']}")
            # The NetworkPolicies (the Admin tier's cluster policies, named without a namespace, come before them).
            evaluated = [p for p in rule.get("evaluated_policies", []) if "/" in p]
            check(sorted(evaluated) == line[direction]["policies"],
                  f"{what}: evaluated {rule.get('evaluated_policies')} vs {line[direction]['policies']}")
            check(line["verdict"] != "allowed", f"{what}: verdict {line['verdict']}")

        # A GlobalNetworkPolicy the engine does not model: invoicer's DNS to coredns, allowed by billing/allow-dns.
        invoicer = next(ip for ip, p in pods.items() if p.startswith("billing/invoicer") and ":" not in ip)
        inv_chain = next(c for c in re.findall(r"^:(cali-fw-\S+)", in_node(lab, "iptables-nft-save", "-t", "filter"),
                                               re.M)
                         if f"-A cali-FORWARD -s {invoicer}/32 -j {c}" in in_node(lab, "iptables-nft-save"))
        gnp = "cali-po-default.deny-dns"
        in_node(lab, "iptables-nft", "-N", gnp)
        in_node(lab, "iptables-nft", "-A", gnp, "-p", "udp", "--dport", "53", "-m", "comment", "--comment",
                "cali:gnp-deny-dns-01", "-j", "DROP")
        in_node(lab, "iptables-nft", "-I", inv_chain, "1", "-j", gnp)
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name="rt-gnp", netns=node) as tail:
            lab.traffic("allowed", family="4")
            lines = tail.stop()
        dns = [l for l in lines if l["event"] == "drop" and norm_ip(l["src"]["ip"]) == invoicer and l["port"] == 53]
        check(len(dns) == 1, f"the GlobalNetworkPolicy's drop: {len(dns)} lines of {len(lines)}")
        line, rule = dns[0], dns[0]["rule"]
        check(line["verdict"] == "allowed", f"the state's policies allow the DNS flow: {line['verdict']}")
        check(rule and rule["chain"] == gnp and rule["comment"] == "cali:gnp-deny-dns-01"
              and rule["policy"] == "default.deny-dns" and rule.get("policy_kind") == "GlobalNetworkPolicy"
              and rule.get("policy_in_state") is False, f"the GNP drop's rule: {rule}")
        codes = {h["code"]: h for h in line["hints"]}
        check("UNMODELLED_POLICY" in codes and codes["UNMODELLED_POLICY"]["policy"] == "default.deny-dns"
              and "default.deny-dns" in codes["UNMODELLED_POLICY"]["message"], f"hints: {line['hints']}")


def legacy_case():
    with Lab("kube-router-legacy", test_prefix("nptrt-leg"), OCTETS["kube-router-legacy"]) as lab:
        ips = lab_ips(lab)
        node = f"{lab.prefix}-node"
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name="rt-leg", netns=node) as tail:
            flows = lab.traffic("ingress", count=2)
            lines = tail.stop()
        for f, line, _ in drops(lines, ips, flows):
            check(line["backend"] == "iptables-legacy" and line["rule"] is None,
                  f"legacy IPv{f['family']}: {line['backend']} {line['rule']}")
            check(line.get("rule_trace") == "not_visible", f"legacy: rule_trace {line.get('rule_trace')}")
        wait_no_tool_tables(lab, "legacy")


def run():
    kube_router_case()
    calico_case()
    legacy_case()


if __name__ == "__main__":
    main(run, "npt_tail_rule_trace_test")

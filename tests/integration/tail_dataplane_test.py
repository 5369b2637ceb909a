#!/usr/bin/python3
"""The live tail against one CNI flavour of the lab: every runbook case, IPv4 and IPv6.

  tail_dataplane_test.py --dataplane kube-router|kube-router-legacy|calico|nftables|tc|pod

1. The lab's dataplane and netpol-trace's engine agree on every pod-to-pod and pod-to-Service flow
   (scripts/lab check): the rules implement the state file's policies.
2. With the tail running on all lab namespaces, each case's flow is reported by exactly one "drop" line and one
   "summary" line whose count is what the sender sent, with the pods, kernel reason, enforcement point, backend,
   conntrack state, verdict, isolating policies and hint codes this dataplane implies; no other lab flow drops.
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (OCTETS, Lab, Tail, TestFailure, check, flow_key, index_lines, lab_ips,  # noqa: E402
                          lab_tail_args, main, norm_ip)

NODE_FLAVOURS = ("kube-router", "kube-router-legacy", "calico", "nftables")

# Where each case's packet dies, per flavour. Node flavours: kube-proxy's DNAT of the kube-dns Service to a pod on the
# same bridge makes br_netfilter bridge the packet, so the DNS drop is in the bridge's FORWARD hook; the established
# DNS flow is bridged too. The pod flavour enforces egress in the sender's OUTPUT, ingress in the receiver's INPUT.
ENFORCEMENT = {
    "node": {"dns": "netfilter/FORWARD(bridge)", "egress-port": "netfilter/FORWARD", "ingress": "netfilter/FORWARD",
             "label-mismatch": "netfilter/FORWARD", "stale-established": "netfilter/FORWARD(bridge)"},
    "tc": {case: "tc/ingress" for case in ("dns", "egress-port", "ingress", "label-mismatch", "stale-established")},
    "pod": {"dns": "netfilter/OUTPUT", "egress-port": "netfilter/OUTPUT", "ingress": "netfilter/INPUT",
            "label-mismatch": "netfilter/INPUT", "stale-established": "netfilter/OUTPUT"},
}


def kind(dataplane):
    return "node" if dataplane in NODE_FLAVOURS else dataplane


def expected_for(dataplane, flow):
    """What the tail must say about one flow the lab sent."""
    k = kind(dataplane)
    case = flow["case"]
    e = {
        "reason": "TC_INGRESS" if k == "tc" else "NETFILTER_DROP",
        "enforcement": ENFORCEMENT[k][case],
        # iptables-legacy drops in nf_hook_slow after ipt_do_table returned: see the report on backend naming.
        "backend": {"tc": "tc", "kube-router-legacy": "iptables-legacy"}.get(dataplane, "nftables"),
        # tc ingress of the host veth runs before the node's conntrack: the skb carries none.
        "ct_state": "none" if k == "tc" else ("established" if case == "stale-established" else "new"),
        "src_pod": flow["src"],
        "dst_ip": flow["dst_ip"],
        "dst_pod": flow["dst"],
        "dst_service": None,
        "original_dst": None,
    }
    if case == "dns":
        if k == "node":  # after kube-proxy's DNAT: the endpoint, and conntrack remembers the Service
            e["dst_ip"], e["dst_pod"] = flow["endpoint_ip"], flow["endpoint"]
            e["original_dst"] = {"ip": norm_ip(flow["dst_ip"]), "port": 53, "service": "kube-system/kube-dns"}
        else:  # before DNAT: the Service IP itself
            e["dst_pod"], e["dst_service"] = None, "kube-system/kube-dns"
    return e


def check_semantics(case, line, where):
    hints = {(h["code"], h["direction"], h.get("policy")) for h in line["hints"]}
    codes = {h[0] for h in hints}
    eg, ing = line["egress"], line["ingress"]
    if case == "dns":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(not eg["allowed"] and eg["isolated"], f"{where}: egress {eg}")
        check(eg["policies"] == ["shop/allow-frontend-to-payments", "shop/default-deny"], f"{where}: {eg['policies']}")
        check("DNS_EGRESS_BLOCKED" in codes, f"{where}: hints {sorted(hints)}")
    elif case == "egress-port":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(not eg["allowed"], f"{where}: egress {eg}")
        check(("PORT_NOT_ALLOWED", "egress", "shop/allow-frontend-to-payments") in hints, f"{where}: {sorted(hints)}")
    elif case == "ingress":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(eg["allowed"] and not eg["isolated"], f"{where}: egress {eg}")
        check(not ing["allowed"] and ing["policies"] == ["payments/api-allow-frontend"], f"{where}: ingress {ing}")
    elif case == "label-mismatch":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(eg["allowed"] and eg["allowed_by"] == ["shop/allow-checkout-egress"], f"{where}: egress {eg}")
        check(not ing["allowed"] and ing["policies"] == ["databases/postgres-allow-checkout"], f"{where}: {ing}")
        check(("LABEL_MISMATCH", "ingress", "databases/postgres-allow-checkout") in hints, f"{where}: {sorted(hints)}")
    elif case == "stale-established":
        check(line["verdict"] == "allowed", f"{where}: verdict {line['verdict']}")
        check("billing/allow-dns" in eg["allowed_by"], f"{where}: egress {eg}")
        check("NOT_EXPLAINED_BY_POLICY" in codes, f"{where}: hints {sorted(hints)}")


def check_flow(dataplane, flow, lines, failures):
    e = expected_for(dataplane, flow)
    key = flow_key(flow["src_ip"], e["dst_ip"], flow["protocol"], flow["port"])
    where = f"{dataplane} {flow['case']} IPv{flow['family']} {flow['src']} -> {e['dst_ip']}:{flow['port']}"
    seen = lines.pop(key, None)
    if seen is None:
        failures.append(f"{where}: not reported")
        return
    try:
        check(flow.get("sent") == flow["count"], f"{where}: the lab sent {flow.get('sent')} of {flow['count']} "
                                                   f"({flow.get('errors')})")
        check(len(seen["drop"]) == 1, f"{where}: {len(seen['drop'])} drop lines, want exactly 1")
        check(len(seen["summary"]) == 1, f"{where}: {len(seen['summary'])} summary lines, want 1")
        for event in ("drop", "summary"):
            line = seen[event][0]
            w = f"{where} ({event})"
            check(line["src"].get("pod") == e["src_pod"], f"{w}: src.pod {line['src'].get('pod')}")
            check(line["dst"].get("pod") == e["dst_pod"], f"{w}: dst.pod {line['dst'].get('pod')}")
            if e["dst_service"]:
                check(line["dst"].get("service") == e["dst_service"], f"{w}: dst.service {line['dst']}")
            for field in ("reason", "enforcement", "backend", "ct_state"):
                check(line[field] == e[field], f"{w}: {field} {line[field]!r}, want {e[field]!r}")
            od = line.get("original_dst")
            if e["original_dst"]:
                check(od and norm_ip(od["ip"]) == e["original_dst"]["ip"] and od["port"] == 53 and
                      od["service"] == e["original_dst"]["service"], f"{w}: original_dst {od}")
            else:
                check(od is None, f"{w}: unexpected original_dst {od}")
            check_semantics(flow["case"], line, w)
        count = seen["summary"][0]["count"]
        check(count == flow["sent"], f"{where}: summary count {count}, sent {flow['sent']}")
        check(seen["drop"][0]["count"] >= 1, f"{where}: drop line count {seen['drop'][0]['count']}")
    except AssertionError as err:
        failures.append(str(err))


def record(lab, tail):
    """tail_teardown_test: what this run created, to prove it is gone after an injected failure."""
    path = os.environ.get("NPT_TAIL_TEST_RECORD")
    if not path:
        return
    with open(path, "w") as f:
        json.dump({"tail_pid": tail.proc.pid, "prefix": lab.prefix, "node": lab.config["node"],
                   "netns": [p["netns"] for p in lab.status()["pods"]] + [lab.config["node"]]}, f)


def run(dataplane):
    prefix = os.environ.get("NPT_TAIL_TEST_PREFIX", f"npttail-{dataplane}"[:24])
    octet = int(os.environ.get("NPT_TAIL_TEST_OCTET", OCTETS[dataplane]))
    with Lab(dataplane, prefix, octet) as lab:
        r = lab.run("check", "--bin", os.environ.get("NPT_BINARY", "build/netpol-trace"), check_rc=False)
        check(r.returncode == 0, f"{dataplane}: the dataplane and the engine disagree:\n{r.stdout}{r.stderr}")
        ips = lab_ips(lab)
        with Tail(lab_tail_args(lab, extra=["--duration", "60"]), name=dataplane) as tail:
            record(lab, tail)
            flows = lab.traffic("all")
            if os.environ.get("NPT_TAIL_TEST_INJECT") == "fail":
                raise TestFailure("injected failure (tail_teardown_test)")
            lines = tail.stop()
        seen = index_lines(lines, ips)
        failures = []
        for flow in flows:
            check_flow(dataplane, flow, seen, failures)
        for key, events in seen.items():
            failures.append(f"{dataplane}: unexpected drop of a lab flow {key}: "
                            f"{[(x['reason'], x['enforcement'], x['count']) for x in events['summary']]}")
        check(not failures, "\n  " + "\n  ".join(failures))
        print(f"{dataplane}: {len(flows)} flows, each reported once with the exact count")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataplane", required=True)
    args = ap.parse_args()
    main(lambda: run(args.dataplane), f"tail_dataplane_test[{args.dataplane}]")

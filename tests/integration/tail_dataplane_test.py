#!/usr/bin/python3
"""The live tail against one CNI flavour of the lab: every runbook case and the Service DNAT cases, IPv4 and IPv6.

  tail_dataplane_test.py --dataplane kube-router|kube-router-legacy|calico|nftables|tc|pod

1. The lab's dataplane and netpol-trace's engine agree on every pod-to-pod and pod-to-Service flow
   (scripts/lab check): the rules implement the state file's policies.
2. netpol-trace explain over the lab's state says what the runbook's API-server case needs: ops/operator -> the
   default/kubernetes Service IP:443 is denied by ops/allow-k8s-api-egress, SERVICE_VIP_DNAT naming that policy.
3. With the tail running on all lab namespaces, each case's flow is reported by exactly one "drop" line and one
   "summary" line whose count is what the sender sent, with the pods, kernel reason, enforcement point, backend,
   conntrack state, the Service the client dialled (original_dst), verdict, isolating policies and hint codes this
   dataplane implies; no other lab flow drops.
"""
import argparse
import json
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import (BINARY, OCTETS, Lab, Tail, TestFailure, check, flow_key, index_lines,  # noqa: E402
                          lab_ips, lab_tail_args, main, norm_ip, test_prefix)

NODE_FLAVOURS = ("kube-router", "kube-router-legacy", "calico", "nftables")
# Not in "scripts/lab traffic all": the Service DNAT cases on TCP.
DNAT_CASES = ("service-dnat", "api-server")
API_POLICY = "ops/allow-k8s-api-egress"

# Where each case's packet dies, per flavour. Node flavours: kube-proxy's DNAT of the kube-dns Service to a pod on the
# same bridge makes br_netfilter bridge the packet, so the DNS drop is in the bridge's FORWARD hook; the established
# DNS flow is bridged too. The pod flavour enforces egress in the sender's OUTPUT, ingress in the receiver's INPUT.
# service-dnat (prometheus -> the payments/api Service, TCP 443 -> 8443, denied by the api's ingress policy): node
# flavours drop the DNATed SYN in FORWARD (routed pods); the pod flavour in the api's INPUT, in another network
# namespace than the DNAT, where nothing knows the Service any more. api-server (the operator -> default/kubernetes
# 443 -> the control plane's 6443, an address of the node): node flavours drop it in INPUT, after the DNAT, on the
# operator's egress policy; the pod flavour in the operator's OUTPUT, before the DNAT, deciding on the endpoint.
ENFORCEMENT = {
    "node": {"dns": "netfilter/FORWARD(bridge)", "egress-port": "netfilter/FORWARD", "ingress": "netfilter/FORWARD",
             "label-mismatch": "netfilter/FORWARD", "stale-established": "netfilter/FORWARD(bridge)",
             "service-dnat": "netfilter/FORWARD", "api-server": "netfilter/INPUT"},
    "tc": {case: "tc/ingress" for case in ("dns", "egress-port", "ingress", "label-mismatch", "stale-established",
                                           *DNAT_CASES)},
    "pod": {"dns": "netfilter/OUTPUT", "egress-port": "netfilter/OUTPUT", "ingress": "netfilter/INPUT",
            "label-mismatch": "netfilter/INPUT", "stale-established": "netfilter/OUTPUT",
            "service-dnat": "netfilter/INPUT", "api-server": "netfilter/OUTPUT"},
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
        "dst_port": flow["port"],
        "dst_pod": flow["dst"],
        "dst_service": None,
        "original_dst": None,
        "vip_dnat_hint": None,  # (SERVICE_VIP_DNAT, direction, policy) on the DNAT cases
    }
    if case in ("dns", *DNAT_CASES):
        after_dnat = k == "node" or (k == "pod" and case == "service-dnat")
        if after_dnat:  # the endpoint (a pod, or the control plane for api-server)
            e["dst_ip"], e["dst_port"], e["dst_pod"] = flow["endpoint_ip"], flow.get("endpoint_port", flow["port"]), \
                flow["endpoint"]
        else:  # before DNAT: the Service IP itself
            e["dst_pod"], e["dst_service"] = None, flow["dst"]
        if k == "node":  # the drop is in the DNAT's network namespace: conntrack remembers the Service dialled
            e["original_dst"] = {"ip": norm_ip(flow["dst_ip"]), "port": flow["port"], "service": flow["dst"]}
        # Known whenever the tail sees the Service: dialled (dst.service) or in conntrack (original_dst). Either way
        # the tail names the policy written for the Service IP/port (ops/allow-k8s-api-egress), as explain does.
        if case in DNAT_CASES and (e["dst_service"] or e["original_dst"]):
            named = API_POLICY if case == "api-server" else None
            e["vip_dnat_hint"] = ("SERVICE_VIP_DNAT", "egress", named)
    return e


def check_semantics(case, line, where, e):
    hints = {(h["code"], h["direction"], h.get("policy")) for h in line["hints"]}
    codes = {h[0] for h in hints}
    eg, ing = line["egress"], line["ingress"]
    if case in DNAT_CASES:
        want = {e["vip_dnat_hint"]} if e["vip_dnat_hint"] else set()
        got = {h for h in hints if h[0] == "SERVICE_VIP_DNAT"}
        check(got == want, f"{where}: SERVICE_VIP_DNAT hints {sorted(got, key=str)}, want {sorted(want, key=str)}")
        check(line["dst"]["port"] == e["dst_port"] and line["dst"].get("service") == e["dst_service"],
              f"{where}: dst {line['dst']}, want port {e['dst_port']}, service {e['dst_service']}")
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
    elif case == "service-dnat":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(eg["allowed"] and not eg["isolated"], f"{where}: egress {eg}")
        check(not ing["allowed"] and ing["policies"] == ["payments/api-allow-frontend"], f"{where}: ingress {ing}")
        check("NOT_EXPLAINED_BY_POLICY" not in codes, f"{where}: hints {sorted(hints)}")
    elif case == "api-server":
        check(line["verdict"] == "denied", f"{where}: verdict {line['verdict']}")
        check(eg["isolated"] and not eg["allowed"] and eg["policies"] == [API_POLICY] and not eg["allowed_by"],
              f"{where}: egress {eg}")
        check(ing["allowed"] and not ing["isolated"], f"{where}: ingress {ing}")
        check(line["dst"]["pod"] is None and not line["dst"].get("node"), f"{where}: dst {line['dst']}")
        check("NOT_EXPLAINED_BY_POLICY" not in codes, f"{where}: hints {sorted(hints)}")


def check_flow(dataplane, flow, lines, failures):
    e = expected_for(dataplane, flow)
    key = flow_key(flow["src_ip"], e["dst_ip"], flow["protocol"], e["dst_port"])
    where = f"{dataplane} {flow['case']} IPv{flow['family']} {flow['src']} -> {e['dst_ip']}:{e['dst_port']}"
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
                check(od and norm_ip(od["ip"]) == e["original_dst"]["ip"] and od["port"] == e["original_dst"]["port"]
                      and od["service"] == e["original_dst"]["service"], f"{w}: original_dst {od}, want "
                                                                        f"{e['original_dst']}")
            else:
                check(od is None, f"{w}: unexpected original_dst {od}")
            check_semantics(flow["case"], line, w, e)
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


def check_explain_api_server(lab):
    """The runbook's API-server case offline: explain over the lab's state, both families."""
    with open(lab.state) as f:
        items = json.load(f)["items"]
    operator = next(f'{i["metadata"]["namespace"]}/{i["metadata"]["name"]}' for i in items
                    if i["kind"] == "Pod" and i["metadata"]["namespace"] == "ops")
    svc = next(i for i in items if i["kind"] == "Service" and i["metadata"]["name"] == "kubernetes")
    for vip in svc["spec"]["clusterIPs"]:
        r = subprocess.run([os.environ.get("NPT_BINARY", BINARY), "explain", "--state", lab.state, "--from", operator,
                            "--to", vip, "--port", "443", "-o", "json"], text=True, capture_output=True)
        where = f"explain {operator} -> {vip}:443"
        check(r.returncode == 1, f"{where}: exit {r.returncode}, want 1 (denied): {r.stdout}{r.stderr}")
        x = json.loads(r.stdout)
        check(x["verdict"] == "denied", f"{where}: verdict {x['verdict']}")
        check(x["egress"]["policies"] == [API_POLICY] and not x["egress"]["allowed"], f"{where}: egress {x['egress']}")
        check(x["dst"].get("service") == "default/kubernetes", f"{where}: dst {x['dst']}")
        check(("SERVICE_VIP_DNAT", "egress", API_POLICY) in {(h["code"], h["direction"], h.get("policy"))
                                                             for h in x["hints"]}, f"{where}: hints {x['hints']}")
        eps = (x.get("service") or {}).get("endpoints", [])
        check(len(eps) == 1 and eps[0]["dst"]["port"] == 6443 and eps[0]["dst"]["pod"] is None and
              eps[0]["verdict"] == "denied", f"{where}: endpoints {eps}")


def run(dataplane):
    prefix = os.environ.get("NPT_TAIL_TEST_PREFIX", test_prefix(f"npttail-{dataplane}"))
    octet = int(os.environ.get("NPT_TAIL_TEST_OCTET", OCTETS[dataplane]))
    with Lab(dataplane, prefix, octet) as lab:
        r = lab.run("check", "--bin", os.environ.get("NPT_BINARY", "build/netpol-trace"), check_rc=False)
        check(r.returncode == 0, f"{dataplane}: the dataplane and the engine disagree:\n{r.stdout}{r.stderr}")
        check_explain_api_server(lab)
        ips = lab_ips(lab)
        with Tail(lab_tail_args(lab, extra=["--duration", "60"]), name=dataplane) as tail:
            record(lab, tail)
            flows = lab.traffic("all", *DNAT_CASES)
            if os.environ.get("NPT_TAIL_TEST_INJECT") == "fail":
                raise TestFailure("injected failure (tail_teardown_test)")
            lines = tail.stop()
        seen = index_lines(lines, ips)
        check(len(flows) == 14, f"{dataplane}: the lab sent {len(flows)} flows, want 14 (7 cases x IPv4/IPv6)")
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

#!/usr/bin/python3
"""--rule-trace on every version of a CNI's ruleset as its source writes it (scripts/lab.d/lab_kube_router.py,
lab_calico.py): one lab per version, IPv4 and IPv6, ingress and egress and the runbook's API-server case.

  tail_rule_versions_test.py --cni kube-router|calico|calico-nft [--versions 2.6,2.11]

For every dropped flow, the rule object names: the chain that dropped it, the handle nft shows for the rule at that
position of `iptables -S` (nftables mode: the rule with that comment), the rule's comments and the one chosen as its
comment (Felix's text, not its id), the pod whose chain it is and the direction, the policy (kube-router's REJECT
after a single policy chain; a cluster policy's Deny in Calico, with its rule's name), the policies evaluated, and
where the naming names no policy, the versions it looks like. kube-router v1.6 polices IPv4 only: its IPv6 flows
pass.
"""
import argparse
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "scripts", "lab.d"))
from tail_support import (Lab, Tail, TestFailure, check, index_lines, lab_ips, lab_tail_args, main, norm_ip,  # noqa
                          test_octet, test_prefix)
import lab_dataplane  # noqa: E402,F401  (first: it registers the flavours of the two below)
import lab_calico  # noqa: E402
import lab_kube_router  # noqa: E402

OCTETS = {"kube-router": 245, "calico": 246, "calico-nft": 247}
CASES = ("ingress", "egress-port", "label-mismatch", "api-server")
CLUSTER_CASES = ("admin-deny", "baseline-deny")

# Which pod's chain drops each case's flow, in which direction.
DROPPED_BY = {"ingress": ("dst", "ingress"), "egress-port": ("src", "egress"), "label-mismatch": ("dst", "ingress"),
              "api-server": ("src", "egress"), "admin-deny": ("dst", "ingress"), "baseline-deny": ("src", "egress")}
# The cluster policies (lab_cluster.CLUSTER_POLICIES) whose chains a case's packet goes through before the drop.
CLUSTER_EVALUATED = {"label-mismatch": ["databases-delegate-monitoring"], "admin-deny": ["ops-lockdown"],
                     "baseline-deny": ["monitoring-baseline"]}
DENY_RULES = {"ops-lockdown": "deny-ingress-from-workloads", "monitoring-baseline": "deny-kube-system-metrics"}


def vkey(v):
    return tuple(int(x) for x in v.split("."))


def in_node(lab, *cmd):
    r = subprocess.run(["ip", "netns", "exec", f"{lab.prefix}-node", *cmd], text=True, capture_output=True)
    check(r.returncode == 0, f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def pods_by_ip(lab):
    return {norm_ip(p[f]): p["pod"] for p in lab.status()["pods"] for f in ("ipv4", "ipv6")}


# --- what the lab's dataplane wrote, read back from the kernel ---

def ipt_rules(lab, family, chain):
    tool = "iptables-nft" if family == 4 else "ip6tables-nft"
    return [x for x in in_node(lab, tool, "-S", chain).splitlines() if x.startswith("-A ")]


def nft_rules(lab, family, table, chain):
    fam = "ip" if family == 4 else "ip6"
    listing = json.loads(in_node(lab, "nft", "-j", "-a", "list", "chain", fam, table, chain))
    return [x["rule"] for x in listing["nftables"] if "rule" in x]


def kernel_rule(lab, cni, family, chain, pick_ipt, pick_nft):
    """(handle, comments) of the dropping rule: the index `pick_*` finds among the chain's rules, in iptables -S
    order (its handle is the nth of nft -a), or among nft's rules in nftables mode."""
    if cni == "calico-nft":
        rules = nft_rules(lab, family, "calico", chain)
        i = pick_nft(rules)
        return rules[i]["handle"], [rules[i]["comment"]] if rules[i].get("comment") else []
    rules = ipt_rules(lab, family, chain)
    i = pick_ipt(rules)
    comments = re.findall(r'--comment "([^"]*)"', rules[i]) or re.findall(r"--comment (\S+)", rules[i])
    return nft_rules(lab, family, "filter", chain)[i]["handle"], comments


def first(rules, want, after=0):
    """The index of the first rule from `after` on that `want` picks."""
    for i in range(after, len(rules)):
        if want(rules[i]):
            return i
    raise TestFailure(f"no rule matches among {rules}")


def meaningful(comments):
    """Felix's text an SRE reads: after its "cali:<id>" (nftables: "cali:<id>; "), not an annotation if possible."""
    texts = [c.split("; ", 1)[1] if c.startswith("cali:") and "; " in c else c for c in comments
             if not (c.startswith("cali:") and "; " not in c)]
    return next((t for t in texts if "=" not in t.split(" ")[0]), texts[0] if texts else None)


# --- the expected rule ---

def kube_router_expected(lab, version, flow, line, pods):
    dp = lab_kube_router.KubeRouter(None, {}, "", version)
    end, direction = DROPPED_BY[flow["case"]]
    pod = pods[norm_ip(line[end]["ip"])]
    ns, name = pod.split("/")
    p = type("P", (), {"namespace": ns, "name": name})()
    chain = dp.pod_chain(p)
    comment = dp.pod_comment(p, "reject")
    handle, comments = kernel_rule(lab, "kube-router", flow["family"], chain,
                                   lambda rules: first(rules, lambda x: f'"{comment}"' in x and "-j REJECT" in x), None)
    evaluated = line[direction]["policies"]
    guess = "v2.11+" if vkey(version) >= (2, 11) else "v2.6-v2.10" if vkey(version) >= (2, 6) else "v1.6-v2.5"
    return {"table": "filter", "chain": chain, "handle": handle, "comment": comment, "comments": comments,
            "pod": pod, "direction": direction, "evaluated": sorted(evaluated),
            "policy": evaluated[0] if len(evaluated) == 1 else None, "guess": guess}


def cluster_name(version, name):
    """A lab cluster policy as the engine names it, in the objects the Calico version converts."""
    if vkey(version) >= (3, 32):
        return name
    if name == "monitoring-baseline":
        return "BaselineAdminNetworkPolicy/default"
    return f"AdminNetworkPolicy/{name}"


def calico_expected(lab, cni, version, flow, line, pods):
    dp = (lab_calico.CalicoNft if cni == "calico-nft" else lab_calico.Calico)(None, {}, "", version)
    case, family = flow["case"], flow["family"]
    end, direction = DROPPED_BY[case]
    pod = pods[norm_ip(line[end]["ip"])]
    ns, name = pod.split("/")
    p = type("P", (), {"namespace": ns, "name": name})()
    layer = "filter-" if cni == "calico-nft" else ""
    # Before v3.29 Calico converts none of the policy API's objects (the lab's state has none then).
    cluster = [cluster_name(version, x) for x in CLUSTER_EVALUATED.get(case, [])] if vkey(version) >= (3, 29) else []
    e = {"table": "calico" if cni == "calico-nft" else "filter", "pod": pod, "direction": direction,
         "evaluated": sorted(cluster + line[direction]["policies"])}
    if case in CLUSTER_CASES:
        cnp = CLUSTER_EVALUATED[case][0]
        kind = "ClusterNetworkPolicy" if vkey(version) >= (3, 32) else \
            "BaselineAdminNetworkPolicy" if cnp == "monitoring-baseline" else "AdminNetworkPolicy"
        policy = {"kind": kind, "name": "default" if kind == "BaselineAdminNetworkPolicy" else cnp, "namespace": "",
                  "tier": dp.tiers()["Baseline" if cnp == "monitoring-baseline" else "Admin"]}
        chain = layer + dp.policy_chain(policy, direction)
        rule_name = DENY_RULES[cnp]
        # The Deny's match of the flow's peer: its DROP (v3.29), or the DROP after its mark (v3.30+).
        peer = str(norm_ip(line["src" if direction == "ingress" else "dst"]["ip"]))
        step = 0 if vkey(version) < (3, 30) else 1
        handle, comments = kernel_rule(
            lab, cni, family, chain,
            lambda rules: first(rules, lambda x: re.search(rf" -[sd] {re.escape(peer)}/", x)) + step,
            lambda rules: first(rules, lambda r: peer in json.dumps(r["expr"])) + step)
        e.update(chain=chain, comment=meaningful(comments), policy=cluster[0], policy_kind=kind, rule_name=rule_name,
                 guess=None)
    else:
        chain = layer + ("cali-tw-" if direction == "ingress" else "cali-fw-") + lab_calico.iface(p)
        text = dp.end_of_tier("default")
        handle, comments = kernel_rule(lab, cni, family, chain,
                                       lambda rules: first(rules, lambda x: f'"{text}"' in x),
                                       lambda rules: first(rules, lambda r: r.get("comment", "").endswith("; " + text)))
        guess = "v3.26-v3.28" if vkey(version) < (3, 29) else "v3.29" if vkey(version) < (3, 30) else \
            "v3.30-v3.31" if vkey(version) < (3, 32) else "v3.32+"
        e.update(chain=chain, comment=text, policy=None, guess=guess)
    e.update(handle=handle, comments=comments)
    return e


def check_rule(what, rule, e):
    check(rule and rule["via"] == "nftrace", f"{what}: no traced rule: {rule}")
    for key in ("table", "chain", "handle", "comment", "pod", "direction", "policy"):
        check(rule.get(key) == e[key], f"{what}: {key} {rule.get(key)!r}, expected {e[key]!r} (rule {rule})")
    check(rule.get("comments", [rule["comment"]]) == e["comments"],
          f"{what}: comments {rule.get('comments')}, the rule has {e['comments']}")
    check(sorted(rule.get("evaluated_policies", [])) == e["evaluated"],
          f"{what}: evaluated {rule.get('evaluated_policies')}, expected {e['evaluated']}")
    for key in ("policy_kind", "rule_name"):
        if key in e:
            check(rule.get(key) == e[key], f"{what}: {key} {rule.get(key)!r}, expected {e[key]!r}")
    if e["policy"]:
        check(rule.get("policy_in_state") is True, f"{what}: policy_in_state {rule.get('policy_in_state')}")
    else:
        check(rule.get("cni_version_guess") == e["guess"],
              f"{what}: cni_version_guess {rule.get('cni_version_guess')!r}, expected {e['guess']!r}")


def one_version(cni, version):
    base = "kube-router" if cni == "kube-router" else "calico"
    dataplane = f"{cni}@{version}"
    cases = CASES + (CLUSTER_CASES if base == "calico" and vkey(version) >= (3, 30) else
                     ("admin-deny",) if base == "calico" and vkey(version) >= (3, 29) else ())
    with Lab(dataplane, test_prefix(f"nptver-{cni}")[:24], test_octet(OCTETS[cni])) as lab:
        ips, pods = lab_ips(lab), pods_by_ip(lab)
        with Tail(lab_tail_args(lab, extra=["--rule-trace"]), name=f"ver-{cni}",
                  netns=f"{lab.prefix}-node") as tail:
            flows = lab.traffic(*cases, count=2)
            lines = tail.stop()
        by_key = index_lines(lines, ips)
        for f in flows:
            dst_ip = f.get("endpoint_ip") or f["dst_ip"]
            key = (norm_ip(f["src_ip"]), norm_ip(dst_ip), f["protocol"].upper(),
                   int(f.get("endpoint_port") or f["port"]))
            got = by_key.get(key, {"drop": []})
            what = f"{dataplane} {f['case']} IPv{f['family']}"
            if base == "kube-router" and vkey(version) < (2, 0) and f["family"] == 6:
                check(not got["drop"], f"{what}: v1.6 writes no IPv6 rules, yet the flow dropped: {got['drop']}")
                continue
            check(len(got["drop"]) == 1, f"{what}: expected one drop line, got {got['drop']}")
            line = got["drop"][0]
            e = (kube_router_expected(lab, version, f, line, pods) if base == "kube-router"
                 else calico_expected(lab, cni, version, f, line, pods))
            check_rule(what, line["rule"], e)
        return len(flows)


def run(cni, versions):
    cls = {"kube-router": lab_kube_router.KubeRouter, "calico": lab_calico.Calico,
           "calico-nft": lab_calico.CalicoNft}[cni]
    for version in versions or cls.versions:
        one_version(cni, version)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--cni", required=True, choices=sorted(OCTETS))
    ap.add_argument("--versions", default="", help="comma-separated (default: every version the lab renders)")
    a = ap.parse_args()
    main(lambda: run(a.cni, [v for v in a.versions.split(",") if v]), f"npt_tail_rule_versions_{a.cni}")

"""kube-router's network policy rules (iptables backend), version by version, as pkg/controllers/netpol writes them
(docs/rule-attribution.md lists the source file of each shape; docs/lab.md what the lab does differently).

Every actionable local pod gets a KUBE-POD-FW-<hash> chain, isolated or not: the jumps into it from the top-level
KUBE-ROUTER-INPUT/FORWARD/OUTPUT chains, the jumps to its policies' KUBE-NWPLCY-<hash> chains (which mark 0x10000 and
return), or to KUBE-NWPLCY-DEFAULT for a direction no policy selects, then NFLOG and REJECT of what no policy marked.
The chain names hash a sync version, kube-router's nanosecond timestamp of the sync, renamed at every sync: the lab
syncs once, at LAB_SYNC_VERSION.
"""
from __future__ import annotations

import base64
import hashlib
import os

from lab_cluster import CompiledPod
from lab_dataplane import IptablesDataplane, _b32, _ipt_match

VERSIONS = ["1.6", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "2.8", "2.9", "2.10", "2.11"]
LAB_SYNC_VERSION = "1723456789012345678"  # strconv.FormatInt(time.Now().UnixNano(), 10) of one sync
SERVICE_CIDRS = {4: "10.96.{octet}.0/24", 6: "fd00:96:{octet}::/112"}
NODE_PORTS = "30000:32767"


def _vkey(v: str) -> tuple:
    return tuple(int(x) for x in v.split("."))


def pod_firewall_chain(namespace: str, pod: str, sync_version: str) -> str:
    """podFirewallChainName (pod.go)."""
    return "KUBE-POD-FW-" + _b32(namespace + pod + sync_version)


def network_policy_chain(namespace: str, name: str, sync_version: str, family: str = "") -> str:
    """networkPolicyChainName (policy.go): the family ("IPv4", "IPv6") is hashed too from v2.0."""
    return "KUBE-NWPLCY-" + _b32(namespace + name + sync_version + family)


def uuid_comment(chain: str, spec: list) -> str:
    """addUUIDForRuleSpec: base32(sha256(chain + the rule's arguments joined))[:16], appended to its comment."""
    return base64.b32encode(hashlib.sha256((chain + "".join(spec)).encode()).digest()).decode()[:16]


class KubeRouter(IptablesDataplane):
    name = "kube-router"
    versions = VERSIONS
    default_version = "2.11"

    # --- what the version writes ---

    def at_least(self, v: str) -> bool:
        return _vkey(self.version) >= _vkey(v)

    @property
    def v211(self) -> bool:
        return self.at_least("2.11")

    def families(self) -> tuple:
        # v1.6 programs one address per pod (pod.ip), IPv4: its IPv6 traffic is not policed at all.
        return (4, 6) if self.at_least("2.0") else (4,)

    def pod_chain(self, pod) -> str:
        return pod_firewall_chain(pod.namespace, pod.name, LAB_SYNC_VERSION)

    def policy_chain(self, ident: str, family: int) -> str:
        ns, name = ident.split("/")
        fam = ("IPv4" if family == 4 else "IPv6") if self.at_least("2.0") else ""
        return network_policy_chain(ns, name, LAB_SYNC_VERSION, fam)

    def pod_comment(self, pod, kind: str) -> str:
        """kind: in, out, log-drop, reject."""
        if self.v211:
            return f"{pod.namespace}/{pod.name} {kind}"
        who = f"POD name:{pod.name} namespace: {pod.namespace}"
        return {"in": f"rule to jump traffic destined to {who} to chain {self.pod_chain(pod)}",
                "out": f"rule to jump traffic from {who} to chain {self.pod_chain(pod)}",
                "log-drop": f"rule to log dropped traffic {who}",
                "reject": f"rule to REJECT traffic destined for {who}"}[kind]

    def policy_jump_comment(self, ident: str) -> str:
        return f"{ident} policy" if self.v211 else f"run through nw policy {ident.split('/')[1]}"

    def default_comment(self, direction: str) -> str:
        if self.v211:
            return f"default {direction}"
        return f"run through default {direction} network policy {' ' if not self.at_least('2.0') else ''}chain"

    def rule_comment(self, ident: str, direction: str, atom) -> str:
        """The comment on both rules (mark, return) of one allowed match of a policy's chain (policy.go)."""
        ns, name = ident.split("/")
        if self.v211:
            kind = atom.peer_kind
            named = atom.named_port and (direction, kind) != ("egress", "cidr")  # comments.go has no "egress cidr np"
            return f"{ns}/{name} {direction} {kind}{' np' if named else ''}"
        if atom.peer_kind == "pods":
            return f"rule to ACCEPT traffic from source pods to dest pods selected by policy name {name} namespace {ns}"
        what = {("ingress", "any"): "from all sources to dest pods",
                ("ingress", "cidr"): "from specified ipBlocks to dest pods",
                ("egress", "any"): "from source pods to all destinations",
                ("egress", "cidr"): "from source pods to specified ipBlocks"}[direction, atom.peer_kind]
        return f"rule to ACCEPT traffic {what} selected by policy name: {name} namespace {ns}"

    def explicit_accept_comment(self) -> str | None:
        """The top-level chains' last rule, ACCEPT on 0x20000 (v2.10 moved it into KUBE-NWPLCY-TAIL only)."""
        if not self.at_least("2.0"):
            return "explicitly ACCEPT traffic that complies with network policies"
        if self.version == "2.10":
            return None
        return "rule to explicitly ACCEPT traffic that comply to network policies"

    # --- the ruleset ---

    def stale_spec(self, src):
        return ("KUBE-ROUTER-FORWARD", "REJECT",
                f"rule to REJECT traffic from POD name:{src.name} namespace:{src.namespace} (policy sync pending)")

    def icmp_rules(self, chain: str, family: int) -> list:
        """utils.CommonICMPRules."""
        proto, flag = ("icmp", "--icmp-type") if family == 4 else ("ipv6-icmp", "--icmpv6-type")
        types = [("echo-request", "allow icmp echo requests"),
                 ("destination-unreachable", "allow icmp destination unreachable messages"),
                 ("time-exceeded", "allow icmp time exceeded messages")]
        if family == 6:
            types += [("neighbor-solicitation", "allow icmp neighbor solicitation messages"),
                      ("neighbor-advertisement", "allow icmp neighbor advertisement messages"),
                      ("echo-reply", "allow icmp echo reply messages")]
        return [f'-A {chain} -m comment --comment "{c}" -p {proto} {flag} {t} -j ACCEPT' for t, c in types]

    def top_level(self, family: int) -> tuple:
        """The jumps of INPUT, FORWARD, OUTPUT (first in their chains) and KUBE-ROUTER-INPUT's exemptions."""
        rules = []
        for builtin in ("INPUT", "FORWARD", "OUTPUT"):
            target = f"KUBE-ROUTER-{builtin}"
            uuid = uuid_comment(builtin, ["-m", "comment", "--comment", "kube-router netpol", "-j", target])
            rules.append(f'-A {builtin} -m comment --comment "kube-router netpol - {uuid}" -j {target}')
        exempt = []
        cidr = SERVICE_CIDRS[family].format(octet=self.c.octet)
        text = ("allow traffic to primary/secondary cluster IP range" if self.at_least("2.0")
                else "allow traffic to cluster IP")
        spec = ["-m", "comment", "--comment", text, "-d", cidr, "-j", "RETURN"]
        exempt.append(f'-A KUBE-ROUTER-INPUT -m comment --comment "{text} - {uuid_comment("KUBE-ROUTER-INPUT", spec)}" '
                      f'-d {cidr} -j RETURN')
        for proto in ("tcp", "udp") + (("sctp",) if self.at_least("2.8") else ()):
            text = f"allow LOCAL {proto.upper()} traffic to node ports"
            spec = ["-p", proto, "-m", "comment", "--comment", text, "-m", "addrtype", "--dst-type", "LOCAL", "-m",
                    "multiport", "--dports", NODE_PORTS, "-j", "RETURN"]
            exempt.append(f'-A KUBE-ROUTER-INPUT -p {proto} -m comment --comment "{text} - '
                          f'{uuid_comment("KUBE-ROUTER-INPUT", spec)}" -m addrtype --dst-type LOCAL -m multiport '
                          f'--dports {NODE_PORTS} -j RETURN')
        return rules, exempt

    def pod_chain_rules(self, cp: CompiledPod, family: int, policy_order: list) -> list:
        """setupPodNetpolRules writes with -I 1 (the chain ends up in reverse order), then the NFLOG, REJECT and
        mark rules are appended."""
        p, fw, ip = cp.pod, self.pod_chain(cp.pod), cp.pod.ip(family)
        inserted = []  # in the order the source inserts them at position 1
        for ident in policy_order:
            ingress, egress = ident in cp.ingress.policies, ident in cp.egress.policies
            if not (ingress or egress):
                continue
            match = "" if ingress and egress else f"-d {ip} " if ingress else f"-s {ip} "
            inserted.append(f'-A {fw} {match}-m comment --comment "{self.policy_jump_comment(ident)}" '
                            f'-j {self.policy_chain(ident, family)}')
        if not cp.ingress.isolated:
            inserted.append(f'-A {fw} -d {ip} -m comment --comment "{self.default_comment("ingress")}" '
                            f'-j KUBE-NWPLCY-DEFAULT')
        if not cp.egress.isolated:
            inserted.append(f'-A {fw} -s {ip} -m comment --comment "{self.default_comment("egress")}" '
                            f'-j KUBE-NWPLCY-DEFAULT')
        local = "rule to permit the traffic to pods when source is the pod's local node"
        if self.v211:
            local = "from local node"
        elif self.at_least("2.0"):
            local = local.replace("the traffic", "the traffic traffic")  # v2.0-v2.10's wording
        inserted.append(f'-A {fw} -d {ip} -m comment --comment "{local}" -m addrtype --src-type LOCAL -j ACCEPT')
        if self.at_least("2.6"):
            common = "common netpol rules" if self.v211 else "common bi-directional traffic policy rules"
            inserted.append(f'-A {fw} -m comment --comment "{common}" -j KUBE-NWPLCY-COMMON')
        else:
            inserted.append(f'-A {fw} -m comment --comment "rule to drop invalid state for pod" '
                            f'-m conntrack --ctstate INVALID -j DROP')
            inserted.append(f'-A {fw} -m comment --comment "rule for stateful firewall for pod" '
                            f'-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
        rules = list(reversed(inserted))
        unmarked = "-m mark ! --mark 0x10000/0x10000"
        prefix = ""
        if os.environ.get("NPT_LAB_NFLOG") == "k3s":
            # k3s's fork logs with a prefix naming a policy of the pod (see docs/lab.md: the fork puts it on an NFLOG
            # rule of each policy chain instead).
            named = list(cp.ingress.policies) + [x for x in cp.egress.policies if x not in cp.ingress.policies]
            prefix = f' --nflog-prefix "DROP by policy {named[0]}"' if named else ""
        rules.append(f'-A {fw} -m comment --comment "{self.pod_comment(p, "log-drop")}" {unmarked} -m limit --limit '
                     f'10/minute --limit-burst 10 -j NFLOG --nflog-group 100{prefix}')
        rules.append(f'-A {fw} -m comment --comment "{self.pod_comment(p, "reject")}" {unmarked} -j REJECT')
        rules.append(f'-A {fw} -j MARK --set-xmark 0x0/0x10000')
        ok = "set netpol-ok mark" if self.v211 else "set mark to ACCEPT traffic that comply to network policies"
        rules.append(f'-A {fw} -m comment --comment "{ok}" -j MARK --set-xmark 0x20000/0x20000')
        return rules

    def jumps(self, cp: CompiledPod, family: int) -> list:
        """interceptPodInboundTraffic, interceptPodOutboundTraffic (defaultChains' order is Go map order: the lab
        takes INPUT, FORWARD, OUTPUT)."""
        p, fw, ip = cp.pod, self.pod_chain(cp.pod), cp.pod.ip(family)
        inbound, outbound = self.pod_comment(p, "in"), self.pod_comment(p, "out")
        return [f'-A KUBE-ROUTER-FORWARD -d {ip} -m comment --comment "{inbound}" -j {fw}',
                f'-A KUBE-ROUTER-OUTPUT -d {ip} -m comment --comment "{inbound}" -j {fw}',
                f'-A KUBE-ROUTER-FORWARD -d {ip} -m physdev --physdev-is-bridged -m comment --comment "{inbound}" '
                f'-j {fw}',
                *[f'-A KUBE-ROUTER-{chain} -s {ip} -m comment --comment "{outbound}" -j {fw}'
                  for chain in ("INPUT", "FORWARD", "OUTPUT")],
                f'-A KUBE-ROUTER-FORWARD -s {ip} -m physdev --physdev-is-bridged -m comment --comment "{outbound}" '
                f'-j {fw}']

    def policy_chain_rules(self, family: int, policy_order: list) -> dict:
        """syncNetworkPolicyChains: one chain per policy (and family), each allowed match a pair of rules carrying
        the same comment, the mark and the return (appendRuleToPolicyChain). The members of kube-router's ipsets
        (KUBE-SRC-/KUBE-DST-) are written as addresses."""
        chains = {ident: [] for ident in policy_order}
        for cp in self.compiled.values():
            for direction, flag, peer_flag in (("ingress", "-d", "-s"), ("egress", "-s", "-d")):
                side = cp.side(direction)
                for rule in side.rules:
                    pc = self.policy_chain(rule.policy, family)
                    for atom in rule.atoms[family]:
                        match = f"{flag} {cp.pod.ip(family)} {_ipt_match(atom, family, peer_flag)}".rstrip()
                        comment = self.rule_comment(rule.policy, direction, atom)
                        chains[rule.policy].append(f'-A {pc} {match} -m comment --comment "{comment}" '
                                                   f'-j MARK --set-xmark 0x10000/0x10000')
                        chains[rule.policy].append(f'-A {pc} {match} -m comment --comment "{comment}" '
                                                   f'-m mark --mark 0x10000/0x10000 -j RETURN')
        return chains

    def filter_rules(self, family: int) -> list:
        if family not in self.families():
            return ["*filter", "COMMIT"]
        policy_order = [f"{x['namespace']}/{x['name']}" for x in self.c.policies]  # npLister order
        top, exempt = self.top_level(family)
        chains = ["KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT", "KUBE-NWPLCY-DEFAULT"]
        rules = []
        if family == 6 and not self.at_least("2.6"):
            # Before v2.6 no kube-router rule accepts neighbour discovery for an isolated pod (v2.2-v2.5 accept ICMP
            # only in KUBE-NWPLCY-DEFAULT, for a direction no policy selects): the lab's pods need it, between
            # bridged pods (FORWARD) and with the node (INPUT, OUTPUT), ahead of kube-router's jumps.
            rules += [f'-A {chain} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -m comment --comment "lab: neighbour '
                      f'discovery" -j ACCEPT' for chain in ("INPUT", "FORWARD", "OUTPUT")
                      for t in ("neighbour-solicitation", "neighbour-advertisement")]
        rules += top + exempt
        default = self.icmp_rules("KUBE-NWPLCY-DEFAULT", family) if self.at_least("2.2") and not self.at_least("2.6") \
            else []
        default.append('-A KUBE-NWPLCY-DEFAULT -j MARK -m comment --comment "rule to mark traffic matching a network '
                       'policy" --set-xmark 0x10000/0x10000')
        body = default
        if self.at_least("2.6"):
            chains.append("KUBE-NWPLCY-COMMON")
            body += ['-A KUBE-NWPLCY-COMMON -m comment --comment "rule to drop invalid state for pod" '
                     '-m conntrack --ctstate INVALID -j DROP',
                     '-A KUBE-NWPLCY-COMMON -m comment --comment "rule for stateful firewall for pod" '
                     '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
                     *self.icmp_rules("KUBE-NWPLCY-COMMON", family)]
        # The policy chains first (syncNetworkPolicyChains runs before syncPodFirewallChains).
        for ident, policy_rules in self.policy_chain_rules(family, policy_order).items():
            chains.append(self.policy_chain(ident, family))
            body += policy_rules
        for cp in self.compiled.values():
            chains.append(self.pod_chain(cp.pod))
            body += self.pod_chain_rules(cp, family, policy_order)
            rules += self.jumps(cp, family)
        if self.at_least("2.10"):
            chains.append("KUBE-NWPLCY-TAIL")
            accept = "accept netpol-ok" if self.v211 else \
                "rule to explicitly ACCEPT traffic that comply to network policies"
            body.append(f'-A KUBE-NWPLCY-TAIL -m comment --comment "{accept}" -m mark --mark 0x20000/0x20000 '
                        f'-j ACCEPT')
            rules += [f'-A KUBE-ROUTER-{c} -m comment --comment "rule to explicitly handle traffic for network '
                      f'policies ACCEPT/REJECT decision" -j KUBE-NWPLCY-TAIL' for c in ("INPUT", "FORWARD", "OUTPUT")]
        if accept := self.explicit_accept_comment():
            rules += [f'-A KUBE-ROUTER-{c} -m comment --comment "{accept}" -m mark --mark 0x20000/0x20000 -j ACCEPT'
                      for c in ("INPUT", "FORWARD", "OUTPUT")]
        return ["*filter"] + [f":{ch} - [0:0]" for ch in dict.fromkeys(chains)] + rules + body + ["COMMIT"]


class KubeRouterLegacy(KubeRouter):
    name = "kube-router-legacy"
    legacy = True

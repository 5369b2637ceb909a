"""Calico's Felix, version by version, in its iptables dataplane and in its nftables dataplane (felix/rules:
endpoints.go, policy.go, static.go; felix/iptables and felix/nftables renderers; docs/rule-attribution.md lists the
source of each shape, docs/lab.md what the lab does differently).

Each workload has a chain per direction, cali-tw-<iface> (to the workload: ingress) and cali-fw-<iface> (from it:
egress), that jumps tier by tier to the policies' cali-pi-/cali-po-<id> chains (Felix's GetLengthLimitedID: hashed past
28 characters in iptables) and drops at the end of a tier no policy passed, then to the namespace's and service
account's profiles. Felix gives every rule an id comment, "cali:<hash of the chain's rules so far>", before its texts:
separate -m comment matches in iptables, one "cali:<hash>; <texts>" comment in nftables, where every chain is in table
ip/ip6 "calico" with the iptables table's name in front ("filter-cali-tw-...").

The policy API's objects are policies of their own tiers: AdminNetworkPolicy and BaselineAdminNetworkPolicy in
v3.29-v3.31 (tiers adminnetworkpolicy and baselineadminnetworkpolicy), ClusterNetworkPolicy from v3.32 (kube-admin and
kube-baseline), all with default action Pass: no drop at their tier's end.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field

from lab_cluster import Cluster, matches
from lab_dataplane import CommandError, IptablesDataplane, in_ns, kube_proxy_rules, run

VERSIONS = ["3.26", "3.27", "3.28", "3.29", "3.30", "3.31", "3.32"]
NFT_VERSIONS = ["3.29", "3.30", "3.31", "3.32"]
ACCEPT, PASS = 0x10000, 0x20000


def _vkey(v: str) -> tuple:
    return tuple(int(x) for x in v.split("."))


def limited_id(prefix: str, ident: str, max_len: int = 28) -> str:
    """GetLengthLimitedID (felix/hashutils/id.go, libcalico-go/lib/hash/unique_id.go)."""
    if len(prefix) + len(ident) > max_len or (len(prefix) + len(ident) == max_len and ident.startswith("_")):
        digest = base64.urlsafe_b64encode(hashlib.sha256(ident.encode()).digest()).decode().rstrip("=")
        return prefix + "_" + digest[:max_len - 1 - len(prefix)]
    return prefix + ident


def iface(pod) -> str:
    """VethNameForWorkload: "cali" + sha1("<ns>.<pod>")[:11], the name of a workload's endpoint chains (the lab's
    bridged pods, on cni0, keep their veth names but get Calico's chains)."""
    return "cali" + hashlib.sha1(f"{pod.namespace}.{pod.name}".encode()).hexdigest()[:11]


def _escape(comment: str) -> str:
    return re.sub(r"[^\w @%+=:,./-]", "_", comment)


@dataclass
class Rule:
    """One of Felix's rules, rendered for iptables or nftables: matches, an action, its texts."""
    match: dict = field(default_factory=dict)  # ct, mark_clear, mark_set, mark_not_clear, src, dst, proto, dport,
    #                                            proto_num, iif, oif, icmp6
    action: tuple | None = None  # ("accept",), ("drop",), ("return",), ("jump", c), ("goto", c), ("set", bits),
    #                              ("clear", mask)
    comments: list = field(default_factory=list)
    felix: bool = True  # False: the lab's own rule (no Felix id), where the lab's node differs from Calico's

    def ipt(self) -> str:
        return self._render(0, 4)

    def nft(self, family: int) -> str:
        return self._render(1, family) or "continue"

    def _render(self, syntax: int, family: int) -> str:
        ip = "ip" if family == 4 else "ip6"
        out = [fmt[syntax](self.match[key], ip) for key, *fmt in _MATCHES if key in self.match]
        if self.action:
            kind, *arg = self.action
            out += ["counter"] * syntax + [_ACTIONS[kind][syntax](*arg)]
        return " ".join(out)


def _iface(name: str) -> str:
    return '"' + name.replace("+", "*") + '"'


# How each match renders: (key, iptables, nftables); `ip` is nft's family keyword.
_MATCHES = [
    ("src", lambda v, ip: f"-s {v}", lambda v, ip: f"{ip} saddr {v}"),
    ("dst", lambda v, ip: f"-d {v}", lambda v, ip: f"{ip} daddr {v}"),
    ("iif", lambda v, ip: f"-i {v}", lambda v, ip: f"iifname {_iface(v)}"),
    ("oif", lambda v, ip: f"-o {v}", lambda v, ip: f"oifname {_iface(v)}"),
    ("proto", lambda v, ip: f"-p {v}", lambda v, ip: f"meta l4proto {v}"),
    ("dport", lambda v, ip: f"-m multiport --dports {v}", lambda v, ip: f"th dport {v}"),
    ("proto_num", lambda v, ip: f"-p {v}", lambda v, ip: f"meta l4proto {v}"),
    ("icmp6", lambda v, ip: f"-p ipv6-icmp -m icmp6 --icmpv6-type {v}", lambda v, ip: f"icmpv6 type {v}"),
    ("ct", lambda v, ip: f"-m conntrack --ctstate {v}", lambda v, ip: f"ct state {v.lower()}"),
    ("mark_clear", lambda v, ip: f"-m mark --mark 0x0/{v:#x}", lambda v, ip: f"meta mark & {v:#010x} == 0x00000000"),
    ("mark_set", lambda v, ip: f"-m mark --mark {v:#x}/{v:#x}", lambda v, ip: f"meta mark & {v:#010x} == {v:#010x}"),
    ("mark_not_clear", lambda v, ip: f"-m mark ! --mark 0x0/{v:#x}",
     lambda v, ip: f"meta mark & {v:#010x} != 0x00000000"),
]
# How each action renders: (iptables, nftables).
_ACTIONS = {
    "accept": (lambda: "-j ACCEPT", lambda: "accept"),
    "drop": (lambda: "-j DROP", lambda: "drop"),
    "return": (lambda: "-j RETURN", lambda: "return"),
    "jump": (lambda c: f"-j {c}", lambda c: f"jump filter-{c}"),
    "goto": (lambda c: f"-g {c}", lambda c: f"goto filter-{c}"),
    "set": (lambda b: f"-j MARK --set-xmark {b:#x}/{b:#x}", lambda b: f"meta mark set mark | {b:#x}"),
    "clear": (lambda b: f"-j MARK --set-xmark 0x0/{b:#x}", lambda b: f"meta mark set mark & {0xffffffff & ~b:#010x}"),
}


def rule_hashes(chain: str, rendered: list) -> list:
    """Felix's rule ids: a chained SHA-224 over the chain's name and each rule (generictables.RuleHashes)."""
    h, out = hashlib.sha224(chain.encode()).digest(), []
    for r in rendered:
        h = hashlib.sha224(h + r.encode()).digest()
        out.append(base64.urlsafe_b64encode(h).decode()[:16])
    return out


class Calico(IptablesDataplane):
    name = "calico"
    versions = VERSIONS
    default_version = "3.32"
    nft = False

    # --- what the version writes ---

    @classmethod
    def cluster_args(cls, version: str) -> dict:
        """The policy API's objects the version turns into policies (libcalico-go/lib/backend/k8s/conversion)."""
        v = _vkey(version)
        if v < (3, 29):
            return {}
        if v < (3, 32):
            return {"cluster_policies": True, "cluster_policy_api": "v1alpha1", "baseline": v >= (3, 30)}
        return {"cluster_policies": True, "cluster_policy_api": "v1alpha2"}

    def at_least(self, v: str) -> bool:
        return _vkey(self.version) >= _vkey(v)

    @property
    def drop_mark(self) -> int | None:
        return 0x40000 if self.at_least("3.30") else None  # v3.30+ denies by mark, then drops

    def max_chain(self) -> int:
        return 256 if self.nft and self.at_least("3.30") else 28

    def tiers(self) -> dict:
        """Tier name and order by cluster policy tier."""
        if self.at_least("3.32"):
            return {"Admin": "kube-admin", "Baseline": "kube-baseline"}
        return {"Admin": "adminnetworkpolicy", "Baseline": "baselineadminnetworkpolicy"}

    def policy_name(self, policy: dict) -> str:
        """PolicyID.Name before v3.32 (the tier is not in it): "<ns>/knp.default.<name>", a cluster policy's
        prefixed name."""
        if policy["kind"] == "NetworkPolicy":
            return f"{policy['namespace']}/knp.default.{policy['name']}"
        prefix = {"AdminNetworkPolicy": "kanp.adminnetworkpolicy.",
                  "BaselineAdminNetworkPolicy": "kbanp.baselineadminnetworkpolicy."}.get(policy["kind"], "")
        return prefix + policy["name"]

    def policy_id(self, policy: dict) -> str:
        """The id in the chain name: PolicyKey.Name (v3.26-v3.28), tier/name (v3.29-v3.31), kind/[ns/]name (v3.32)."""
        if self.at_least("3.32"):
            if policy["kind"] == "NetworkPolicy":
                return f"knp/{policy['namespace']}/{policy['name']}"
            return f"kcnp/{policy['name']}"
        if self.at_least("3.29"):
            return f"{policy['tier']}/{self.policy_name(policy)}"
        return self.policy_name(policy)

    def policy_chain(self, policy: dict, direction: str) -> str:
        return limited_id("cali-pi-" if direction == "ingress" else "cali-po-", self.policy_id(policy),
                          self.max_chain())

    def chain_comment(self, policy: dict, direction: str) -> str:
        if self.at_least("3.32"):
            if policy["kind"] == "NetworkPolicy":
                return f"KubernetesNetworkPolicy {policy['namespace']}/{policy['name']} {direction}"
            return f"KubernetesClusterNetworkPolicy {policy['name']} {direction}"
        return f"Policy {self.policy_name(policy)} {direction}"

    def end_of_tier(self, tier: str) -> str:
        return f"End of tier {tier}. Drop if no policies passed packet" if self.at_least("3.30") else \
            "Drop if no policies passed packet"

    # --- the policies of each endpoint, by tier ---

    def endpoint_policies(self, c: Cluster) -> dict:
        """{(pod key, direction): [(tier name, default action, [policy])]} in Felix's order: tiers by order,
        policies by order then name. A policy: kind, name, namespace, tier, selector (for grouping), rules
        [(action, rule name, index, {family: [atom]})]."""
        out = {}
        for cp in self.compiled.values():
            for direction in ("ingress", "egress"):
                tiers = []
                admin, baseline = self._cluster_policies(c, cp.pod, direction)
                if admin:
                    tiers.append((self.tiers()["Admin"], "Pass", admin))
                side = cp.side(direction)
                if side.isolated:
                    pols = []
                    for ident in sorted(side.policies):
                        ns, name = ident.split("/")
                        spec = next(x["spec"] for x in c.policies if x["namespace"] == ns and x["name"] == name)
                        rules = [("Allow", "", r.index, r.atoms) for r in side.rules if r.policy == ident]
                        pols.append({"kind": "NetworkPolicy", "namespace": ns, "name": name, "tier": "default",
                                     "selector": json.dumps([ns, spec.get("podSelector") or {}], sort_keys=True),
                                     "rules": rules})
                    tiers.append(("default", "Deny", pols))
                if baseline:
                    tiers.append((self.tiers()["Baseline"], "Pass", baseline))
                out[cp.pod.key, direction] = tiers
        return out

    def _cluster_policies(self, c: Cluster, pod, direction: str) -> tuple:
        """The cluster policies whose subject is the pod, with rules in this direction, as Admin and Baseline
        tier policies (ordered by priority, then name)."""
        admin, baseline = [], []
        for pol in sorted(c.cluster_policies, key=lambda p: (p["spec"].get("priority", 0), p["name"])):
            spec = pol["spec"]
            if not self._subject(c, spec.get("subject") or {}, pod):
                continue
            tier = spec.get("tier") or ("Baseline" if pol["kind"] == "BaselineAdminNetworkPolicy" else "Admin")
            rules = []
            for index, rule in enumerate(spec.get(direction) or []):
                atoms = {4: [], 6: []}
                for peer in rule.get("from" if direction == "ingress" else "to") or []:
                    for other in self._peer_pods(c, peer):
                        dst = pod if direction == "ingress" else other
                        for proto, port in self._ports(rule, dst):
                            for family in (4, 6):
                                atoms[family].append((other.ip(family), proto, port))
                action = {"Accept": "Allow"}.get(rule["action"], rule["action"])
                rules.append((action, rule.get("name", ""), index, atoms))
            if not rules:
                continue
            entry = {"kind": pol["kind"], "name": pol["name"], "namespace": "", "tier": self.tiers()[tier],
                     "selector": json.dumps(spec.get("subject"), sort_keys=True), "rules": rules}
            (admin if tier == "Admin" else baseline).append(entry)
        return admin, baseline

    @staticmethod
    def _subject(c: Cluster, subject: dict, pod) -> bool:
        ns_labels = c.namespaces[pod.namespace]
        if subject.get("namespaces") is not None:
            return matches(subject["namespaces"], ns_labels)
        pods = subject.get("pods")
        return pods is not None and matches(pods.get("namespaceSelector") or {}, ns_labels) and \
            matches(pods.get("podSelector") or {}, pod.labels)

    @staticmethod
    def _peer_pods(c: Cluster, peer: dict) -> list:
        if set(peer) - {"namespaces", "pods"}:
            raise NotImplementedError(f"cluster policy peer {sorted(peer)}: the lab renders namespaces and pods")
        return [p for p in c.pods if Calico._subject(c, peer, p)]

    @staticmethod
    def _ports(rule: dict, dst) -> list:
        """(protocol, port) of a rule's protocols (v1alpha2) or ports (v1alpha1), named ports on the destination."""
        entries = rule.get("protocols") or rule.get("ports")
        if not entries:
            return [(None, None)]
        out = []
        for e in entries:
            named = e.get("destinationNamedPort") or e.get("namedPort")
            if named:
                out += [(x.protocol.lower(), x.number) for x in dst.ports if x.name == named]
            elif "portNumber" in e:
                out.append((e["portNumber"]["protocol"].lower(), e["portNumber"]["port"]))
            else:
                for proto, body in e.items():
                    out.append((proto, body["destinationPort"]["number"]))
        return out

    # --- chains ---

    def policy_rules(self, policy: dict, direction: str, family: int, own: str | None) -> list:
        """ProtoRulesToIptablesRules: each rule's matches, then allow (mark accept, return), pass (mark pass,
        return) or deny (v3.30+: mark drop, then drop); a return at the chain's end is left out; the first rule
        carries the chain's comment (an empty rule when there is none)."""
        peer_key = "src" if direction == "ingress" else "dst"
        own_key = "dst" if direction == "ingress" else "src"
        out = []
        for action, rule_name, _, atoms in policy["rules"]:
            annotations = [f"name={rule_name}"] if rule_name else []
            for atom in dict.fromkeys(atoms[family]):
                peer, proto, port = (atom.peer, atom.protocol, atom.port) if hasattr(atom, "peer") else atom
                m = {}
                if own:
                    m[own_key] = own
                if peer:
                    m[peer_key] = str(ipaddress.ip_network(peer, strict=False))
                if proto:
                    m["proto"] = proto
                    if port is not None:
                        m["dport"] = port
                if action == "Deny" and self.drop_mark:
                    out += [Rule(m, ("set", self.drop_mark), list(annotations)),
                            Rule({"mark_set": self.drop_mark}, ("drop",), list(annotations))]
                elif action == "Deny":
                    out.append(Rule(m, ("drop",), list(annotations)))
                else:
                    bit = ACCEPT if action == "Allow" else PASS
                    out += [Rule(m, ("set", bit), list(annotations)),
                            Rule({"mark_set": bit}, ("return",), list(annotations))]
        while out and out[-1].action == ("return",):
            out.pop()
        if not out:
            out.append(Rule())
        out[0].comments.append(self.chain_comment(policy, direction))
        return out

    def group_chain(self, tier: str, direction: str, group: list) -> str:
        """PolicyGroup.ChainName: cali-gi-/cali-go- + base64url(sha3-224(tier, selector, direction, count,
        names))[:20]."""
        h = hashlib.sha3_224()
        for part in (tier, group[0]["selector"], "inbound" if direction == "ingress" else "outbound", str(len(group)),
                     *[self.policy_name(p) for p in group]):
            h.update(part.encode() + b"\n")
        return ("cali-gi-" if direction == "ingress" else "cali-go-") + \
            base64.urlsafe_b64encode(h.digest()).decode()[:20]

    def endpoint_chain(self, pod, direction: str, tiers: list, chains: dict) -> list:
        """endpointIptablesChain; policy and group chains it needs are added to `chains`."""
        r = [Rule({"ct": "RELATED,ESTABLISHED"}, ("accept",)), Rule({"ct": "INVALID"}, ("drop",))]
        if self.at_least("3.28"):
            r.append(Rule({}, ("clear", ACCEPT | PASS)))
        else:
            r.append(Rule({}, ("clear", ACCEPT)))
        if direction == "egress":  # AllowVXLANPacketsFromWorkloads / AllowIPIPPacketsFromWorkloads default false
            r.append(Rule({"proto": "udp", "dport": 4789}, ("drop",),
                          ["Drop VXLAN encapped packets originating in workloads"]))
            r.append(Rule({"proto_num": 4}, ("drop",), ["Drop IPinIP encapped packets originating in workloads"]))
        prefix = "cali-pi-" if direction == "ingress" else "cali-po-"
        for tier, default_action, policies in tiers:
            if self.at_least("3.29"):
                r.append(Rule({}, ("clear", PASS), [f"Start of tier {tier}"]))
            elif not self.at_least("3.28"):
                r.append(Rule({}, ("clear", PASS), ["Start of policies"]))
            groups = []  # consecutive policies with one selector
            for p in policies:
                if groups and groups[-1][0]["selector"] == p["selector"] and self.at_least("3.28"):
                    groups[-1].append(p)
                else:
                    groups.append([p])
            for group in groups:
                for p in group:
                    chains.setdefault(self.policy_chain(p, direction), (p, direction))
                if len(group) > 1:
                    targets = [self.group_chain(tier, direction, group)]
                    chains.setdefault(targets[0], ("group", [self.policy_chain(p, direction) for p in group]))
                else:
                    targets = [self.policy_chain(group[0], direction)]
                for t in targets:
                    r.append(Rule({"mark_clear": PASS}, ("jump", t)))
                    r.append(Rule({"mark_set": ACCEPT}, ("return",), ["Return if policy accepted"]))
            if default_action != "Pass":
                r.append(Rule({"mark_clear": PASS}, ("drop",), [self.end_of_tier(tier)]))
        pfx = "cali-pri-" if direction == "ingress" else "cali-pro-"
        for profile in (f"kns.{pod.namespace}", f"ksa.{pod.namespace}.default"):
            chains.setdefault(limited_id(pfx, profile, self.max_chain()), ("profile", profile, direction))
            r.append(Rule({}, ("jump", limited_id(pfx, profile, self.max_chain()))))
            r.append(Rule({"mark_set": ACCEPT}, ("return",), ["Return if profile accepted"]))
        r.append(Rule({}, ("drop",), ["Drop if no profiles matched"]))
        return r

    def group_rules(self, targets: list) -> list:
        """PolicyGroupToIptablesChains: a jump per policy, the later ones only while no verdict is marked, and a
        return on a verdict every 5 jumps."""
        out = []
        for i, t in enumerate(targets):
            if i and i % 5 == 0:
                out.append(Rule({"mark_not_clear": ACCEPT | PASS}, ("return",), ["Return on verdict"]))
            out.append(Rule({} if i % 5 == 0 else {"mark_clear": ACCEPT | PASS}, ("jump", t)))
        return out

    def ruleset(self, family: int) -> dict:
        """{chain: [Rule]} of the filter table (iptables) or the filter layer (nftables), base chains included."""
        c = self.c
        chains = {"FORWARD": [Rule({}, ("jump", "cali-FORWARD"))], "INPUT": [Rule({}, ("jump", "cali-INPUT"))]}
        fwd = [Rule({}, ("clear", 0x1e0000 if self.at_least("3.30") else 0xe0000))]
        if family == 6:
            # Real Calico never bridges its workloads; the lab's bridged pods reach each other through FORWARD.
            fwd += [Rule({"icmp6": t}, ("accept",), ["lab: bridged neighbour discovery"], felix=False)
                    for t in (135, 136)]
        fwd.append(Rule({"iif": "cali+"}, ("jump", "cali-from-wl-dispatch")))
        # Calico dispatches by interface; the lab's bridged pods share cni0, so they are dispatched by address.
        fwd += [Rule({"src": cp.pod.ip(family)}, ("jump", f"cali-fw-{iface(cp.pod)}"), felix=False)
                for cp in self.compiled.values() if cp.pod.attach == "bridge"]
        fwd.append(Rule({"oif": "cali+"}, ("jump", "cali-to-wl-dispatch")))
        fwd += [Rule({"dst": cp.pod.ip(family)}, ("jump", f"cali-tw-{iface(cp.pod)}"), felix=False)
                for cp in self.compiled.values() if cp.pod.attach == "bridge"]
        fwd.append(Rule({"mark_set": ACCEPT}, ("accept",), ["Policy explicitly accepted packet."]))
        chains["cali-FORWARD"] = fwd
        from_wl, to_wl = [], []
        for cp in self.compiled.values():
            ep = iface(cp.pod)
            if cp.pod.attach == "routed":
                from_wl.append(Rule({"iif": ep}, ("goto", f"cali-fw-{ep}")))
                to_wl.append(Rule({"oif": ep}, ("goto", f"cali-tw-{ep}")))
        chains["cali-from-wl-dispatch"] = from_wl + [Rule({}, ("drop",), ["Unknown interface"])]
        chains["cali-to-wl-dispatch"] = to_wl + [Rule({}, ("drop",), ["Unknown interface"])]
        # Workload to host (the control plane behind default/kubernetes): the workload's egress policy in INPUT.
        chains["cali-INPUT"] = [Rule({"iif": "cali+"}, ("goto", "cali-wl-to-host")),
                                Rule({"iif": "cni0"}, ("goto", "cali-wl-to-host"), felix=False)]
        wl_to_host = [Rule({"icmp6": t}, ("accept",)) for t in (130, 131, 132, 133, 135, 136)] if family == 6 else []
        wl_to_host.append(Rule({"iif": "cali+"}, ("jump", "cali-from-wl-dispatch")))
        wl_to_host += [Rule({"src": cp.pod.ip(family)}, ("jump", f"cali-fw-{iface(cp.pod)}"), felix=False)
                       for cp in self.compiled.values() if cp.pod.attach == "bridge"]
        wl_to_host.append(Rule({}, ("accept",), ["Configured DefaultEndpointToHostAction"]))
        chains["cali-wl-to-host"] = wl_to_host
        needed = {}
        for (key, direction), tiers in self.endpoint_policies(c).items():
            pod = c.pod(key)
            prefix = "cali-tw-" if direction == "ingress" else "cali-fw-"
            chains[prefix + iface(pod)] = self.endpoint_chain(pod, direction, tiers, needed)
        for name, what in needed.items():
            if what[0] == "group":
                chains[name] = self.group_rules(what[1])
            elif what[0] == "profile":
                chains[name] = [Rule({}, ("set", ACCEPT), [f"Profile {what[1]} {what[2]}"])]
            else:
                policy, direction = what
                chains[name] = self.shared_policy_rules(policy, direction, family)
        return chains

    def shared_policy_rules(self, policy: dict, direction: str, family: int) -> list:
        """A policy's chain serves every endpoint it selects. The lab resolves selectors and named ports per
        endpoint; where that gives the endpoints different matches (a named port), each match is kept to its own
        endpoint's address."""
        if policy["kind"] != "NetworkPolicy":
            return self.policy_rules(policy, direction, family, None)
        ident = f"{policy['namespace']}/{policy['name']}"
        per_target = {}
        for cp in self.compiled.values():
            side = cp.side(direction)
            if ident in side.policies:
                atoms = [a for r in side.rules if r.policy == ident for a in r.atoms[family]]
                per_target[cp.pod.ip(family)] = atoms
        if len({tuple(a) for a in per_target.values()}) <= 1:
            return self.policy_rules(policy, direction, family, None)
        out = []
        for own in per_target:
            out += [x for x in self.policy_rules(policy, direction, family, own) if x.action]
        while out and out[-1].action == ("return",):
            out.pop()
        out[0].comments.append(self.chain_comment(policy, direction))
        return out

    def stale_spec(self, src):
        return ("cali-FORWARD", "DROP", f"cali:stale-{iface(src)} policy sync pending")

    # --- iptables ---

    def filter_rules(self, family: int) -> list:
        chains = self.ruleset(family)
        lines, declared = [], []
        for chain, rules in chains.items():
            if chain not in ("FORWARD", "INPUT"):
                declared.append(chain)
            rendered = [r.ipt() for r in rules]
            for text, h, r in zip(rendered, rule_hashes(chain, rendered), rules):
                texts = [f"cali:{h}", *r.comments] if r.felix else r.comments
                comments = "".join(f' -m comment --comment "{_escape(x)[:256]}"' for x in texts)
                lines.append(f"-A {chain}{comments} {text}".rstrip())
        return ["*filter"] + [f":{ch} - [0:0]" for ch in declared] + lines + ["COMMIT"]


class CalicoNft(Calico):
    """Felix's nftables dataplane (v3.29 preview, v3.30+): tables ip/ip6 calico."""
    name = "calico-nft"
    versions = NFT_VERSIONS
    default_version = "3.32"
    nft = True
    table = "calico"

    def nft_ruleset(self, family: int) -> str:
        fam = "ip" if family == 4 else "ip6"
        lines = [f"table {fam} {self.table} {{"]
        hooks = {"FORWARD": "forward", "INPUT": "input"}
        for chain, rules in self.ruleset(family).items():
            lines.append(f"  chain filter-{chain} {{")
            if chain in hooks:
                lines.append(f"    type filter hook {hooks[chain]} priority filter; policy accept;")
            rendered = [r.nft(family) for r in rules]
            for text, h, r in zip(rendered, rule_hashes(f"filter-{chain}", rendered), rules):
                # nftRenderer.comment: "cali:<hash>;" and the texts, each cut to its share of 128 bytes.
                share = (128 - len(f"cali:{h};")) // len(r.comments) if r.comments else 0
                comment = " ".join([f"cali:{h};"] * r.felix + [_escape(x)[:share] for x in r.comments])[:128]
                lines.append(f'    {text} comment "{comment}"' if comment else f"    {text}")
            lines.append("  }")
        return "\n".join(lines + ["}"]) + "\n"

    def apply(self):
        for family in (4, 6):
            run(in_ns(self.c.node, "nft", "-f", "-"), self.nft_ruleset(family))
            tool = "iptables" if family == 4 else "ip6tables"
            run(in_ns(self.c.node, f"{tool}-nft-restore"), "\n".join(kube_proxy_rules(self.c, family)) + "\n")

    def describe(self) -> str:
        return "".join(run(in_ns(self.c.node, "nft", "list", "table", fam, self.table)).stdout for fam in ("ip", "ip6"))

    def stale_rule(self, src, dst, family, proto, port, add):
        fam = "ip" if family == 4 else "ip6"
        comment = f"cali:stale-{iface(src)} policy sync pending"
        chain = "filter-cali-FORWARD"
        if add:
            run(in_ns(self.c.node, "nft", "insert", "rule", fam, self.table, chain, fam, "saddr", src.ip(family), fam,
                      "daddr", dst.ip(family), proto, "dport", str(port), "counter", "drop", "comment", f'"{comment}"'))
            return
        listing = json.loads(run(in_ns(self.c.node, "nft", "-j", "-a", "list", "chain", fam, self.table, chain)).stdout)
        for item in listing["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") == comment:
                run(in_ns(self.c.node, "nft", "delete", "rule", fam, self.table, chain, "handle", str(rule["handle"])))
                return
        raise CommandError(f"the stale rule of {src.id} is not in {chain}")


FLAVOURS = (Calico, CalicoNft)

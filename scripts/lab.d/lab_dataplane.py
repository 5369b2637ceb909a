"""The lab's node: network namespaces, links, addresses, kube-proxy's DNAT, and the policy rules of one CNI flavour.

Everything lives inside the lab's own network namespaces (nothing in the host's): deleting them removes every link,
rule, qdisc and BPF program the lab created.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

from lab_cluster import Cluster

CALICO_GW4 = "169.254.1.1"
CALICO_MAC = "ee:ee:ee:ee:ee:ee"
CALICO_GW6 = "fe80::ecee:eeff:feee:eeee"  # the EUI-64 link-local address of ee:ee:ee:ee:ee:ee
TC_BLOCK = 1

DATAPLANES = {
    "kube-router": "kube-router's iptables rules (nf_tables backend), v1.6 and v2.0-v2.11 (@VERSION, default 2.11): "
                   "KUBE-POD-FW- chains, REJECT",
    "kube-router-legacy": "the same rules through iptables-legacy (x_tables)",
    "calico": "Calico's iptables dataplane, v3.26-v3.32 (@VERSION, default 3.32): endpoint chains cali-fw-/cali-tw-, "
              "tiers, policy chains cali-pi-/cali-po-, DROP",
    "calico-nft": "Calico's nftables dataplane, v3.29-v3.32 (@VERSION, default 3.32): tables ip/ip6 calico",
    "nftables": "a plain nftables table: per-pod ingress/egress chains ending in drop",
    "tc": "an eBPF program at tc ingress of every pod veth (eBPF-CNI-style), TC_ACT_SHOT",
    "pod": "nftables inside each pod: egress in the sender's OUTPUT, ingress in the receiver's INPUT",
    "kube-network-policies": "kube-network-policies' nftables table queueing packets to NFQUEUE 100 and its verdict "
                             "agent (NetworkPolicy and ClusterNetworkPolicy tiers decided in userspace), NF_DROP; "
                             "v1.1 (@1.1)",
}


class CommandError(RuntimeError):
    pass


def run(cmd, input_text=None, check=True, capture=True):
    r = subprocess.run(cmd, input=input_text, text=True, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise CommandError(f"{' '.join(cmd)}: exit {r.returncode}: {(r.stderr or '').strip()}")
    return r


def in_ns(ns: str, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def ip_batch(ns: str, lines):
    if lines:
        run(["ip", "-n", ns, "-batch", "-"], "\n".join(lines) + "\n")


def sysctl(ns: str, settings: dict):
    run(in_ns(ns, "sysctl", "-q", "-w", *[f"{k}={v}" for k, v in settings.items()]))


def _b32(text: str, n: int = 16) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:n]


def host_veth(pod) -> str:
    """The pod's interface in the node namespace: Calico names it cali + sha1("ns.pod")[:11], flannel vethXXXXXXXX."""
    digest = hashlib.sha1(f"{pod.namespace}.{pod.name}".encode()).hexdigest()
    return ("cali" + digest[:11]) if pod.attach == "routed" else ("veth" + digest[:8])


def proto_number(proto: str) -> int:
    return {"tcp": 6, "udp": 17, "sctp": 132}[proto]


# ------------------------------------------------------------------------------------------ topology

def create_topology(c: Cluster):
    for ns in c.all_netns():
        run(["ip", "netns", "add", ns])
    no_dad = {"net.ipv6.conf.all.accept_dad": 0, "net.ipv6.conf.default.accept_dad": 0,
              "net.ipv6.conf.all.dad_transmits": 0, "net.ipv6.conf.default.dad_transmits": 0}
    sysctl(c.node, {**no_dad, "net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1,
                    # Flannel's bridge: bridged pod-to-pod traffic goes through iptables/nftables (br_netfilter).
                    "net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1})
    node = ["link set lo up",
            # The node's own interface (this kernel has no dummy driver): a veth whose peer stands for the uplink.
            "link add name eth0 type veth peer name uplink0", "link set uplink0 up", "link set eth0 up",
            f"addr add {c.node_ip4}/24 dev eth0", f"addr add {c.node_ip6}/64 dev eth0 nodad",
            # The control plane (default/kubernetes' endpoint), outside the pod network: pods reach it through the
            # node's INPUT hook, after kube-proxy's DNAT, as they would reach an API server on the node's network.
            f"addr add {c.control_plane.ip4}/32 dev eth0", f"addr add {c.control_plane.ip6}/128 dev eth0 nodad",
            # Proxy ARP answers for Calico's 169.254.1.1 only when the node routes it elsewhere: a default route, as
            # every node has (nothing answers there; the lab sends nothing to it).
            f"route add default via 10.{c.octet}.0.254 dev eth0",
            "link add name cni0 type bridge", "link set cni0 up",
            f"addr add {c.bridge_gw4}/24 dev cni0", f"addr add {c.bridge_gw6}/64 dev cni0 nodad"]
    for p in c.pods:
        node.append(f"link add name {host_veth(p)} type veth peer name eth0 netns {c.netns(p)}")
    ip_batch(c.node, node)
    routed = []
    for p in c.pods:
        ns, veth = c.netns(p), host_veth(p)
        sysctl(ns, no_dad)
        if p.attach == "bridge":
            routed += [f"link set {veth} master cni0", f"link set {veth} up"]
            ip_batch(ns, ["link set lo up", "link set eth0 up", f"addr add {p.ip4}/24 dev eth0",
                          f"addr add {p.ip6}/64 dev eth0 nodad", f"route add default via {c.bridge_gw4}",
                          f"route add ::/0 via {c.bridge_gw6}"])
        else:
            # Calico: a /32 on the pod side, a link-scoped gateway the host answers by proxy ARP, host routes.
            routed += [f"link set {veth} address {CALICO_MAC}", f"link set {veth} up",
                       f"route add {p.ip4}/32 dev {veth} scope link", f"route add {p.ip6}/128 dev {veth}"]
            ip_batch(ns, ["link set lo up", "link set eth0 up", f"addr add {p.ip4}/32 dev eth0",
                          f"addr add {p.ip6}/128 dev eth0 nodad", f"route add {CALICO_GW4} dev eth0 scope link",
                          f"route add default via {CALICO_GW4} dev eth0",
                          f"route add ::/0 via {CALICO_GW6} dev eth0"])
    ip_batch(c.node, routed)
    # Calico also answers proxy ARP at once (the default delays replies by up to 0.8 s).
    routed_settings = {}
    for p in c.pods:
        if p.attach == "routed":
            routed_settings[f"net.ipv4.conf.{host_veth(p)}.proxy_arp"] = 1
            routed_settings[f"net.ipv4.neigh.{host_veth(p)}.proxy_delay"] = 0
    sysctl(c.node, routed_settings)


# ------------------------------------------------------------------------------------------ kube-proxy

def kube_proxy_rules(c: Cluster, family: int) -> list:
    """iptables-restore lines of kube-proxy's iptables mode for the lab's Services (one endpoint each: a pod, or the
    control plane for default/kubernetes)."""
    chains, rules = ["KUBE-SERVICES"], []
    rules.append('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    rules.append('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES')
    plen = 32 if family == 4 else 128
    for s in c.services:
        for sp in s.ports:
            spn = f"{s.namespace}/{s.name}:{sp.name}"
            proto = sp.protocol.lower()
            svc_chain = "KUBE-SVC-" + _b32(spn + sp.protocol + str(family))
            chains.append(svc_chain)
            rules.append(f'-A KUBE-SERVICES -d {s.ip(family)}/{plen} -p {proto} -m comment --comment "{spn} cluster '
                         f'IP" -m {proto} --dport {sp.port} -j {svc_chain}')
            for ep in c.all_endpoints(s):
                target = ep.ip(family) if family == 4 else f"[{ep.ip(family)}]"
                sep = "KUBE-SEP-" + _b32(spn + sp.protocol + ep.ip(family))
                chains.append(sep)
                rules.append(f'-A {svc_chain} -m comment --comment "{spn} -> {target}:{sp.target_port}" -j {sep}')
                rules.append(f'-A {sep} -s {ep.ip(family)}/{plen} -m comment --comment "{spn}" -j KUBE-MARK-MASQ')
                rules.append(f'-A {sep} -p {proto} -m comment --comment "{spn}" -m {proto} -j DNAT '
                             f'--to-destination {target}:{sp.target_port}')
    chains.append("KUBE-MARK-MASQ")
    rules.append("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000")
    return ["*nat"] + [f":{ch} - [0:0]" for ch in chains] + rules + ["COMMIT"]


# ------------------------------------------------------------------------------------------ flavours

def _ipt_match(atom, family: int, peer_flag: str) -> str:
    parts = []
    if atom.peer:
        net = ipaddress.ip_network(atom.peer, strict=False)
        parts.append(f"{peer_flag} {net}")
    if atom.protocol:
        parts.append(f"-p {atom.protocol} -m {atom.protocol}")
        if atom.port is not None:
            parts.append(f"--dport {atom.port}")
    return " ".join(parts)


class Dataplane:
    name = ""
    cluster_policies = False  # whether it enforces ClusterNetworkPolicies (and its state carries them)
    versions: list = []  # the CNI versions it renders (--dataplane NAME@VERSION), oldest first
    default_version = ""

    def __init__(self, c: Cluster, compiled: dict, run_dir: str, version: str = ""):
        self.c, self.compiled, self.run_dir = c, compiled, run_dir
        self.version = version or self.default_version

    @classmethod
    def cluster_args(cls, version: str) -> dict:
        """How the cluster's state carries the policy API's objects for this version (lab_cluster.Cluster)."""
        return {"cluster_policies": cls.cluster_policies}

    def apply(self):
        raise NotImplementedError

    def stale_rule(self, src, dst, family: int, proto: str, port: int, add: bool):
        """Adds (or removes) a per-packet drop of src -> dst:port that ignores connection state: the rules of an
        older policy still programmed (the established-connection case)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class IptablesDataplane(Dataplane):
    legacy = False

    def ipt(self, family: int) -> str:
        base = "iptables" if family == 4 else "ip6tables"
        return f"{base}-legacy" if self.legacy else f"{base}-nft"

    def lock_wait(self) -> list:
        # iptables-legacy serialises on the host-wide xtables lock (any namespace): wait for it instead of failing.
        return ["-w", "10"] if self.legacy else []

    def restore(self, family: int, lines: list):
        run(in_ns(self.c.node, f"{self.ipt(family)}-restore", *self.lock_wait()), "\n".join(lines) + "\n")

    def filter_rules(self, family: int) -> list:
        raise NotImplementedError

    def apply(self):
        for family in (4, 6):
            self.restore(family, kube_proxy_rules(self.c, family) + self.filter_rules(family))

    def describe(self) -> str:
        out = []
        for family in (4, 6):
            out.append(run(in_ns(self.c.node, f"{self.ipt(family)}-save")).stdout)
        return "".join(out)

    def stale_rule(self, src, dst, family, proto, port, add):
        chain, target, comment = self.stale_spec(src)
        cmd = [self.ipt(family), *self.lock_wait(), "-I" if add else "-D", chain] + (["1"] if add else [])
        cmd += ["-s", src.ip(family), "-d", dst.ip(family), "-p", proto, "-m", proto, "--dport", str(port),
                "-m", "comment", "--comment", comment, "-j", target]
        run(in_ns(self.c.node, *cmd))


def _nft_match(atom, family: int, peer_key: str) -> str:
    parts = []
    if atom.peer:
        parts.append(f"{'ip' if family == 4 else 'ip6'} {peer_key} {ipaddress.ip_network(atom.peer, strict=False)}")
    if atom.protocol:
        parts.append(f"meta l4proto {atom.protocol}")
        if atom.port is not None:
            parts.append(f"th dport {atom.port}")
    return " ".join(parts)


def _chain_name(direction: str, pod) -> str:
    return f"{direction}_{pod.namespace}_{pod.name}".replace("-", "_")


class Nftables(Dataplane):
    name = "nftables"
    table = "netpol_lab"

    def apply(self):
        lines = [f"table inet {self.table} {{",
                 "  chain forward {", "    type filter hook forward priority filter; policy accept;",
                 '    ct state established,related accept comment "replies and established connections"',
                 '    ct state invalid drop',
                 '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "bridged neighbour '
                 'discovery"']
        chains, to_node = [], []
        for cp in self.compiled.values():
            p = cp.pod
            if cp.egress.isolated:
                for family in (4, 6):
                    to_node.append(f"    {'ip' if family == 4 else 'ip6'} saddr {p.ip(family)} jump "
                                   f"{_chain_name('egress', p)}")
            for direction, key in (("egress", "saddr"), ("ingress", "daddr")):
                side = cp.side(direction)
                if not side.isolated:
                    continue
                name = _chain_name(direction, p)
                for family in (4, 6):
                    lines.append(f"    {'ip' if family == 4 else 'ip6'} {key} {p.ip(family)} jump {name}")
                peer_key = "daddr" if direction == "egress" else "saddr"
                body = [f"  chain {name} {{"]
                for rule in side.rules:
                    for family in (4, 6):
                        for atom in rule.atoms[family]:
                            body.append(f'    {_nft_match(atom, family, peer_key)} return comment '
                                        f'"{rule.policy} {direction}[{rule.index}]"')
                body.append(f'    counter drop comment "{p.namespace}/{p.name} {direction} isolated by '
                            f'{", ".join(side.policies)}: no rule allows it"')
                body.append("  }")
                chains += body
        lines.append("  }")
        # Pod to an address of the node (the control plane behind default/kubernetes): the pod's egress, after DNAT.
        lines += ["  chain input {", "    type filter hook input priority filter; policy accept;",
                  '    ct state established,related accept comment "replies and established connections"',
                  '    ct state invalid drop',
                  '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "neighbour discovery"',
                  *to_node, "  }"]
        lines += chains + ["}"]
        run(in_ns(self.c.node, "nft", "-f", "-"), "\n".join(lines) + "\n")
        for family in (4, 6):
            run(in_ns(self.c.node, f"{'iptables' if family == 4 else 'ip6tables'}-nft-restore"),
                "\n".join(kube_proxy_rules(self.c, family)) + "\n")

    def describe(self) -> str:
        return run(in_ns(self.c.node, "nft", "list", "table", "inet", self.table)).stdout

    def stale_rule(self, src, dst, family, proto, port, add):
        fam = "ip" if family == 4 else "ip6"
        comment = f"stale: {src.namespace}/{src.name} policy sync pending"
        if add:
            run(in_ns(self.c.node, "nft", "insert", "rule", "inet", self.table, "forward", fam, "saddr",
                      src.ip(family), fam, "daddr", dst.ip(family), proto, "dport", str(port), "drop", "comment",
                      f'"{comment}"'))
            return
        listing = json.loads(run(in_ns(self.c.node, "nft", "-j", "-a", "list", "chain", "inet", self.table,
                                       "forward")).stdout)
        for item in listing["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") == comment:
                run(in_ns(self.c.node, "nft", "delete", "rule", "inet", self.table, "forward", "handle",
                          str(rule["handle"])))


class NodeFirewall:
    """The conntrack rule every node has (and kube-proxy): the tc and pod flavours add no FORWARD rules of their
    own, yet conntrack must track the node's flows, as on real nodes."""

    @staticmethod
    def apply(c: Cluster):
        for family in (4, 6):
            tool = "iptables" if family == 4 else "ip6tables"
            lines = kube_proxy_rules(c, family) + [
                "*filter", '-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "node '
                'firewall: established connections" -j ACCEPT', "COMMIT"]
            run(in_ns(c.node, f"{tool}-nft-restore"), "\n".join(lines) + "\n")


def _addr16(ip: str) -> bytes:
    a = ipaddress.ip_address(ip)
    return a.packed + bytes(16 - len(a.packed))


def _fam(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


class TcBpf(Dataplane):
    """eBPF-CNI-style: bpf/lab_tc_deny.bpf.c on a shared tc block of every pod's host-side veth."""
    name = "tc"

    def object_file(self) -> str:
        obj = os.environ.get("NPT_LAB_TC_OBJ")
        if obj and os.path.exists(obj):
            return obj
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        src = os.path.join(root, "bpf", "lab_tc_deny.bpf.c")
        obj = os.path.join(self.run_dir, "lab_tc_deny.bpf.o")
        arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, "x86")
        run(["clang", "-g", "-O2", "-target", "bpf", f"-D__TARGET_ARCH_{arch}",
             "-I", os.path.join(root, "bpf", "vmlinux", arch), "-c", src, "-o", obj])
        return obj

    def maps(self) -> dict:
        shown = json.loads(run(in_ns(self.c.node, "tc", "-j", "filter", "show", "block", str(TC_BLOCK),
                                     "ingress")).stdout)
        prog_id = next(f["options"]["prog"]["id"] for f in shown if "options" in f)
        prog = json.loads(run(["bpftool", "-j", "prog", "show", "id", str(prog_id)]).stdout)
        out = {}
        for map_id in prog.get("map_ids", []):
            m = json.loads(run(["bpftool", "-j", "map", "show", "id", str(map_id)]).stdout)
            out[m["name"]] = map_id
        return out

    def map_update(self, updates: list):
        """updates: (map name, key bytes, value bytes)."""
        ids = self.maps()
        with tempfile.NamedTemporaryFile("w", dir=self.run_dir, suffix=".bpftool", delete=False) as f:
            for name, key, value in updates:
                f.write(f"map update id {ids[name]} key hex {_hex(key)} value hex {_hex(value)}\n")
            path = f.name
        try:
            run(["bpftool", "batch", "file", path])
        finally:
            os.unlink(path)

    def apply(self):
        NodeFirewall.apply(self.c)
        obj = self.object_file()
        for p in self.c.pods:
            run(in_ns(self.c.node, "tc", "qdisc", "add", "dev", host_veth(p), "ingress_block", str(TC_BLOCK),
                      "clsact"))
        run(in_ns(self.c.node, "tc", "filter", "add", "block", str(TC_BLOCK), "ingress", "bpf", "direct-action",
                  "object-file", obj, "section", "tc"))
        updates = []
        for cp in self.compiled.values():
            for family in (4, 6):
                ip = cp.pod.ip(family)
                updates.append(("lab_endpoints", _addr16(ip) + struct.pack("<B3x", family),
                                struct.pack("<BB2x", int(cp.ingress.isolated), int(cp.egress.isolated))))
                for direction, code in (("ingress", 1), ("egress", 2)):
                    for rule in cp.side(direction).rules:
                        for atom in rule.atoms[family]:
                            if atom.peer and "/" in atom.peer and not atom.peer.endswith(("/32", "/128")):
                                raise NotImplementedError("the tc dataplane allows single addresses, not CIDRs")
                            peer = _addr16(atom.peer.split("/")[0]) if atom.peer else bytes(16)
                            key = (_addr16(ip) + peer + struct.pack("<BBBxH2x", family, code,
                                   proto_number(atom.protocol) if atom.protocol else 0, atom.port or 0))
                            updates.append(("lab_allow", key, b"\x01"))
        for s in self.c.services:
            eps = self.c.all_endpoints(s)
            if not eps:
                continue
            for family in (4, 6):
                for sp in s.ports:
                    key = _addr16(s.ip(family)) + struct.pack("<BBH", family, proto_number(sp.protocol.lower()),
                                                              sp.port)
                    updates.append(("lab_services", key, _addr16(eps[0].ip(family)) + struct.pack("<H2x",
                                                                                                   sp.target_port)))
        self.map_update(updates)

    def describe(self) -> str:
        out = [run(in_ns(self.c.node, "tc", "filter", "show", "block", str(TC_BLOCK), "ingress")).stdout]
        for name, map_id in self.maps().items():
            if name in ("lab_endpoints", "lab_allow", "lab_services", "lab_stale"):
                n = len(json.loads(run(["bpftool", "-j", "map", "dump", "id", str(map_id)]).stdout))
                out.append(f"map {name} (id {map_id}): {n} entries\n")
        return "".join(out)

    def stale_rule(self, src, dst, family, proto, port, add):
        key = (_addr16(src.ip(family)) + _addr16(dst.ip(family)) +
               struct.pack("<BBH", family, proto_number(proto), port))
        if add:
            self.map_update([("lab_stale", key, b"\x01")])
        else:
            run(["bpftool", "map", "delete", "id", str(self.maps()["lab_stale"]), "key", "hex", *_hex(key).split()])


class PodNftables(Dataplane):
    """Policy enforced inside the pods: egress in the sender's OUTPUT hook, ingress in the receiver's INPUT hook.
    Egress runs before kube-proxy's DNAT on the node, so a Service IP is decided on its endpoint (IP and target port),
    as NetworkPolicy requires: a rule naming the Service IP or port allows nothing."""
    name = "pod"
    table = "pod_policy"

    def service_rules(self, cp, family: int) -> list:
        """The sender's verdict on each Service port, from its endpoint, ahead of the rules for direct peers."""
        out = []
        side = cp.egress
        for s in self.c.services:
            for sp in s.ports:
                proto = sp.protocol.lower()
                eps = self.c.all_endpoints(s)
                if not eps:
                    continue
                ep_ip = ipaddress.ip_address(eps[0].ip(family))
                allowed_by = next((rule for rule in side.rules for atom in rule.atoms[family]
                                   if (atom.peer is None or ep_ip in ipaddress.ip_network(atom.peer, strict=False))
                                   and atom.protocol in (None, proto) and atom.port in (None, sp.target_port)), None)
                m = f"{'ip' if family == 4 else 'ip6'} daddr {s.ip(family)} meta l4proto {proto} th dport {sp.port}"
                # (nft comments: 128 characters at most)
                if allowed_by:
                    out.append(f'    {m} accept comment "{allowed_by.policy} egress[{allowed_by.index}] (Service '
                               f'{s.id}, endpoint port {sp.target_port})"')
                else:
                    out.append(f'    {m} counter drop comment "egress: no rule allows Service {s.id}\'s endpoint '
                               f'(port {sp.target_port})"')
        return out

    def apply(self):
        NodeFirewall.apply(self.c)
        for cp in self.compiled.values():
            p = cp.pod
            lines = [f"table inet {self.table} {{"]
            for direction, hook, peer_key, lo in (("egress", "output", "daddr", "oifname"),
                                                  ("ingress", "input", "saddr", "iifname")):
                side = cp.side(direction)
                lines += [f"  chain {hook} {{", f"    type filter hook {hook} priority filter; policy accept;",
                          '    ct state established,related accept', f'    {lo} "lo" accept']
                if side.isolated:
                    if direction == "egress":
                        for family in (4, 6):
                            lines += self.service_rules(cp, family)
                    for rule in side.rules:
                        for family in (4, 6):
                            for atom in rule.atoms[family]:
                                m = _nft_match(atom, family, peer_key)
                                if not atom.peer:  # keep the rule to this family
                                    m = f"meta nfproto {'ipv4' if family == 4 else 'ipv6'} {m}"
                                lines.append(f'    {m} accept comment "{rule.policy} {direction}[{rule.index}]"')
                    lines.append(f'    meta l4proto {{ tcp, udp, sctp }} counter drop comment "{direction} isolated '
                                 f'by {", ".join(side.policies)}: no rule allows it"')
                lines.append("  }")
            lines.append("}")
            run(in_ns(self.c.netns(p), "nft", "-f", "-"), "\n".join(lines) + "\n")

    def describe(self) -> str:
        out = []
        for p in self.c.pods:
            out.append(f"# {p.id} (netns {self.c.netns(p)})\n")
            out.append(run(in_ns(self.c.netns(p), "nft", "list", "table", "inet", self.table)).stdout)
        return "".join(out)

    def stale_rule(self, src, dst, family, proto, port, add):
        fam = "ip" if family == 4 else "ip6"
        ns = self.c.netns(src)
        comment = "stale: policy sync pending"
        if add:
            run(in_ns(ns, "nft", "insert", "rule", "inet", self.table, "output", fam, "daddr", dst.ip(family), proto,
                      "dport", str(port), "drop", "comment", f'"{comment}"'))
            return
        listing = json.loads(run(in_ns(ns, "nft", "-j", "-a", "list", "chain", "inet", self.table, "output")).stdout)
        for item in listing["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment") == comment:
                run(in_ns(ns, "nft", "delete", "rule", "inet", self.table, "output", "handle", str(rule["handle"])))


KNP_QUEUE = 100  # --nfqueue-id default
# Config.CTLabelAccept 100 as the source encodes it (generateLabelMask): nft's and xt_connlabel's label 28 on the
# little-endian hosts the lab runs on (x86-64, arm64), see lab_nfqueue.CT_LABEL_ACCEPT.
KNP_LABEL = 28
# The verdict's label without the kernel's conntrack glue (see lab_nfqueue): a packet mark bit no other part of the
# lab uses (kube-proxy: 0x4000, 0x8000), turned into the label by the table below and cleared.
KNP_LABEL_MARK = 0x01000000
KNP_LABEL_TABLE = "netpol-lab-ct-label"
KNP_ND_TYPES = ("nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-redirect")


class KubeNetworkPolicies(Dataplane):
    """kubernetes-sigs/kube-network-policies as v1.1 (npa-v1alpha2 binary) runs on a node, with its defaults
    (--fail-open, --netfilter-bug-1766-fix, --nfqueue-id 100): nftables only diverts packets to NFQUEUE 100
    (pkg/dataplane/controller.go, syncNFTablesRules and addDNSRacersWorkaroundRules) and the agent
    (scripts/lab.d/lab_nfqueue.py) decides each in userspace. The ClusterNetworkPolicy evaluators make the source
    divert every packet (ManagedIPs: divertAll), so the table has no podips-v4/-v6 sets and the queue rules no
    address match. The source writes no comments.

    A kernel without nft's queue expression (CONFIG_NFT_QUEUE) cannot hold the queue statements: the table is then
    programmed without them and iptables-nft's NFQUEUE target queues the same packets from the mangle table's
    built-in chains (priority -150; iptables-nft creates no chain at another priority): POSTROUTING with the
    postrouting chain's accept rules in front, INPUT for new connections, and FORWARD for DNS (the prerouting
    chain's queue at dstnat + 5 sees packets after kube-proxy's DNAT; no iptables-nft chain of PREROUTING runs
    after it, FORWARD is the first that does). The xt chains run before the table's: a packet the agent accepts
    goes on to the table's postrouting chain, whose last rule (ct label set) labels its connection.

    A kernel without CONFIG_NETFILTER_NETLINK_GLUE_CT ignores the label in the agent's verdicts: the agent then also
    marks the packets it accepts and the lab's table inet netpol-lab-ct-label (postrouting and input, after the
    source's chains) turns the mark into the label, so replies and later packets skip the queue as
    kube-network-policies means them to: without it, the reply to an accepted DNS query (queued in prerouting or
    FORWARD, never reaching the ct label set rule) or the node's TIME_WAIT answer to a pod would be judged as a new
    packet against the client's ingress and dropped."""
    name = "kube-network-policies"
    cluster_policies = True
    versions = ["1.1"]
    default_version = "1.1"
    table = "kube-network-policies"

    def agent_path(self, what: str) -> str:
        return os.path.join(self.run_dir, {"sock": "knp.sock", "pid": "knp-agent.pid", "log": "knp-agent.log",
                                           "mode": "knp-mode"}[what])

    def native_queue(self) -> bool:
        """Whether the kernel takes nft's queue statement (a check-only transaction: nothing is created)."""
        probe = (f"table inet {self.table}-probe {{\n  chain postrouting {{\n    type filter hook postrouting "
                 f"priority srcnat - 5;\n    queue flags bypass to {KNP_QUEUE}\n  }}\n}}\n")
        r = run(in_ns(self.c.node, "nft", "-c", "-f", "-"), probe, check=False)
        if r.returncode == 0:
            return True
        if "No such file or directory" in r.stderr:  # the kernel has no "queue" expression type
            return False
        raise CommandError(f"nft -c (queue probe): {r.stderr.strip()}")

    def ruleset(self, native: bool) -> str:
        queue = [f"queue flags bypass to {KNP_QUEUE}"] if native else []
        chains = {
            # After DNAT and before SNAT, so IPVS's path is covered too (kube-network-policies#46).
            "postrouting": ("postrouting", "srcnat - 5", [
                "udp dport 53 accept",  # DNS is queued in prerouting (netfilter bug 1766)
                *[f"meta nfproto ipv6 icmpv6 type {t} accept" for t in KNP_ND_TYPES],
                "meta skuid 0 counter accept",
                f"ct label {KNP_LABEL} ct state established,related counter accept",
                *queue,
                f"ct label set {KNP_LABEL}"]),  # enables the conntrack label extension for the agent's verdicts
            # After IPVS's LOCAL_IN hooks (srcnat - 2, srcnat - 1): pod to an address of the node. srcnat + 1,
            # which nft (1.0.6) only takes as a number at this hook.
            "input": ("input", "101", ['iifname "lo" accept', *[f"ct state new {q}" for q in queue]]),
            "prerouting": ("prerouting", "dstnat + 5", ["meta l4proto != udp accept", "udp dport != 53 accept",
                                                        *queue]),
        }
        lines = [f"table inet {self.table} {{"]
        for name, (hook, priority, rules) in chains.items():
            lines += [f"  chain {name} {{", f"    type filter hook {hook} priority {priority}; policy accept;",
                      *[f"    {r}" for r in rules], "  }"]
        return "\n".join(lines + ["}"]) + "\n"

    @staticmethod
    def label_table() -> str:
        """The label the agent's verdict means to set, from its mark, after each hook that queues: postrouting
        (which FORWARD's DNS passes too) and input (pod to node: the node's last ACK leaves from a TIME_WAIT socket,
        which `meta skuid 0` does not see, and would be queued as a new packet)."""
        keep = 0xffffffff & ~KNP_LABEL_MARK
        rule = (f"meta mark & {KNP_LABEL_MARK:#010x} == {KNP_LABEL_MARK:#010x} ct label set {KNP_LABEL} meta mark set "
                f"meta mark & {keep:#010x} comment \"accepted by the verdict agent: its label (no conntrack glue in "
                f"this kernel)\"")
        lines = [f"table inet {KNP_LABEL_TABLE} {{"]
        for hook, priority in (("postrouting", "srcnat - 4"), ("input", "102")):  # right after the source's chains
            lines += [f"  chain {hook} {{", f"    type filter hook {hook} priority {priority}; policy accept;",
                      f"    {rule}", "  }"]
        return "\n".join(lines + ["}"]) + "\n"

    @staticmethod
    def xt_queue_rules(family: int) -> list:
        """iptables-restore lines queueing what the table's queue statements would (see the class comment)."""
        q = f"-j NFQUEUE --queue-num {KNP_QUEUE} --queue-bypass"
        icmp = [f"-A POSTROUTING -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j ACCEPT" for t in range(133, 138)]
        return ["*mangle",
                "-A POSTROUTING -p udp -m udp --dport 53 -j ACCEPT",
                *(icmp if family == 6 else []),
                "-A POSTROUTING -m owner --uid-owner 0 -j ACCEPT",
                f"-A POSTROUTING -m connlabel --label {KNP_LABEL} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                f"-A POSTROUTING {q}",
                "-A INPUT -i lo -j ACCEPT",
                f"-A INPUT -m conntrack --ctstate NEW {q}",
                f"-A FORWARD -p udp -m udp --dport 53 {q}",
                "COMMIT"]

    def start_agent(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab_nfqueue.py")
        with open(self.agent_path("log"), "w") as log:
            proc = subprocess.Popen(in_ns(self.c.node, sys.executable, "-B", script, "--prefix", self.c.prefix,
                                          "--octet", str(self.c.octet), "--run-dir", self.run_dir, "--queue",
                                          str(KNP_QUEUE), "--label-mark", hex(KNP_LABEL_MARK)),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # outlives `scripts/lab up`; `down` ends it
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                with open(self.agent_path("log")) as f:
                    raise CommandError(f"the verdict agent exited ({proc.returncode}): {f.read().strip()}")
            if os.path.exists(self.agent_path("pid")):
                try:
                    self.agent({"op": "ping"})
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise CommandError("the verdict agent did not bind its queue within 15 s")
            time.sleep(0.05)

    def agent(self, request: dict) -> dict:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(self.agent_path("sock"))
            s.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        answer = json.loads(data)
        if not answer.get("ok"):
            raise CommandError(f"verdict agent: {answer.get('error')}")
        return answer

    def apply(self):
        native = self.native_queue()
        with open(self.agent_path("mode"), "w") as f:
            f.write("nft queue\n" if native else "xt NFQUEUE\n")
        self.start_agent()
        ruleset = self.ruleset(native)
        if not self.agent({"op": "ping"})["ct_glue"]:
            ruleset += self.label_table()
        run(in_ns(self.c.node, "nft", "-f", "-"), ruleset)
        for family in (4, 6):
            tool = "iptables" if family == 4 else "ip6tables"
            rules = kube_proxy_rules(self.c, family) + ([] if native else self.xt_queue_rules(family))
            run(in_ns(self.c.node, f"{tool}-nft-restore"), "\n".join(rules) + "\n")

    def describe(self) -> str:
        out = [run(in_ns(self.c.node, "nft", "list", "table", "inet", self.table)).stdout]
        label = run(in_ns(self.c.node, "nft", "list", "table", "inet", KNP_LABEL_TABLE), check=False)
        if label.returncode == 0:
            out.append(label.stdout)
        with open(self.agent_path("mode")) as f:
            native = f.read().strip() == "nft queue"
        if not native:
            out.append("# the queue statements, as iptables-nft's NFQUEUE (the kernel has no nft queue expression)\n")
            for tool in ("iptables", "ip6tables"):
                out.append(run(in_ns(self.c.node, f"{tool}-nft-save", "-t", "mangle")).stdout)
        a = self.agent({"op": "ping"})
        out.append(f"# verdict agent (pid file {self.agent_path('pid')}): queue {a['queue']}, {a['accepted']} "
                   f"accepted, {a['dropped']} dropped; labels by verdict: "
                   f"{'yes' if a['ct_glue'] else 'no (no conntrack glue in this kernel)'}\n")
        return "".join(out)

    def stale_rule(self, src, dst, family, proto, port, add):
        # kube-network-policies has no rule to leave behind: the stale decision is its agent's (a policy view
        # older than the state), applied to every queued packet of the flow.
        self.agent({"op": "stale", "add": add, "src": src.ip(family), "dst": dst.ip(family), "protocol": proto,
                    "port": port})


import lab_calico  # noqa: E402  (they build on the classes above)
import lab_kube_router  # noqa: E402

FLAVOURS = {cls.name: cls for cls in (lab_kube_router.KubeRouter, lab_kube_router.KubeRouterLegacy,
                                      *lab_calico.FLAVOURS, Nftables, TcBpf, PodNftables, KubeNetworkPolicies)}


def flavour(name: str) -> tuple:
    """(class, version) of "NAME" or "NAME@VERSION"; ValueError for one the lab does not render."""
    base, _, version = name.partition("@")
    cls = FLAVOURS.get(base)
    if cls is None:
        raise ValueError(f"unknown dataplane {base!r} (one of: {', '.join(FLAVOURS)})")
    if version and version not in cls.versions:
        known = ", ".join(cls.versions) if cls.versions else "none"
        raise ValueError(f"dataplane {base} has no version {version!r} (versions: {known})")
    return cls, version or cls.default_version


def make(name: str, c: Cluster, run_dir: str) -> Dataplane:
    cls, version = flavour(name)
    return cls(c, c.compile(), run_dir, version)

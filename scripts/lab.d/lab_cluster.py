"""The lab's cluster: namespaces, pods, Services and NetworkPolicies of one node, the state file netpol-trace reads,
and a small NetworkPolicy compiler (selectors -> pod IPs, ports -> numbers) the dataplanes render from.

The compiler is deliberately independent of netpol-trace's engine: it is what a CNI does (kube-router, Calico), so
the integration tests compare two implementations of NetworkPolicy, the dataplane's and the engine's.
"""
from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

# Addresses: pods 10.<octet>.1.0/24 on the bridge, 10.<octet>.2.x/32 routed, node 10.<octet>.0.1, Services
# 10.96.<octet>.0/24; IPv6 fd00:<octet>:1::/64, fd00:<octet>:2::x/128, fd00:<octet>::1, fd00:96:<octet>::/112.
# The control plane (the endpoint of default/kubernetes, not a pod): 10.<octet>.0.11 and fd00:<octet>::11, addresses
# of the node namespace listening on TCP 6443 while the lab probes or sends to it.
# The octet keeps lab instances (tests, the demo, other engineers' labs) apart: the tail attributes by IP.


@dataclass
class Port:
    name: str
    number: int
    protocol: str = "TCP"


@dataclass(eq=False)  # identity: pods are dict keys
class Pod:
    key: str  # short name: netns suffix, interface names
    namespace: str
    name: str
    labels: dict
    ports: list
    attach: str  # "bridge" (flannel-style, cni0) or "routed" (Calico-style /32 veth)
    host: int  # last address byte/group
    ip4: str = ""
    ip6: str = ""

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def ips(self, family: int) -> list:
        return [self.ip4] if family == 4 else [self.ip6]

    def ip(self, family: int) -> str:
        return self.ip4 if family == 4 else self.ip6


@dataclass
class ServicePort:
    name: str
    port: int
    target_port: int
    protocol: str = "TCP"


@dataclass(eq=False)
class External:
    """A Service endpoint that is not a pod (the API server's control plane): an address outside the pod network."""
    name: str
    host: int
    ip4: str = ""
    ip6: str = ""

    @property
    def id(self) -> str:
        return self.name

    def ip(self, family: int) -> str:
        return self.ip4 if family == 4 else self.ip6


@dataclass(eq=False)
class Service:
    namespace: str
    name: str
    selector: dict  # {}: no selector, endpoints from `external` (as the API server's own Service)
    ports: list
    host: int
    ip4: str = ""
    ip6: str = ""
    external: list = field(default_factory=list)  # External endpoints of a Service without selector

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def ip(self, family: int) -> str:
        return self.ip4 if family == 4 else self.ip6


NAMESPACES = {
    "kube-system": {},
    "shop": {"team": "web"},
    "billing": {"team": "finance"},
    "payments": {"team": "finance"},
    "databases": {},
    "monitoring": {},
    "ops": {},
    "default": {},
}

PODS = [
    Pod("coredns", "kube-system", "coredns-5d78c9869d-8xk2p", {"k8s-app": "kube-dns"},
        [Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"), Port("metrics", 9153, "TCP")], "bridge", 10),
    Pod("frontend", "shop", "frontend-7d9f8b6c5-q2w8x", {"app": "frontend", "tier": "web"},
        [Port("http", 8080)], "bridge", 21),
    # The runbook's label drift: the Deployment moved to the recommended labels, the database policy did not.
    Pod("checkout", "shop", "checkout-6f8d7c9b5-k8j7h", {"app.kubernetes.io/name": "checkout", "tier": "backend"},
        [Port("http", 8080)], "bridge", 22),
    Pod("invoicer", "billing", "invoicer-6c5b8d7f9-h4t6z", {"app": "invoicer"}, [Port("http", 8080)], "bridge", 61),
    Pod("api", "payments", "api-5b7c9d8f4-m3n4p", {"app": "payments-api"},
        [Port("https", 8443), Port("metrics", 9090)], "routed", 31),
    Pod("postgres", "databases", "postgres-0", {"app": "postgres", "role": "primary"},
        [Port("postgresql", 5432)], "routed", 41),
    Pod("prometheus", "monitoring", "prometheus-0", {"app": "prometheus"}, [Port("web", 9090)], "routed", 51),
    # Runbook issue 6: an operator talking to the API server, on the bridge (a flannel node, as k3s runs it).
    Pod("operator", "ops", "operator-7c6d9f5b8-w2x9r", {"app": "operator"}, [Port("metrics", 8080)], "bridge", 71),
]

# The API server, reached from pods through default/kubernetes: an address of the node namespace that is neither a
# pod's nor the Node's (a control plane machine), TCP 6443.
CONTROL_PLANE = External("control-plane", 11)

SERVICES = [
    Service("kube-system", "kube-dns", {"k8s-app": "kube-dns"},
            [ServicePort("dns", 53, 53, "UDP"), ServicePort("dns-tcp", 53, 53, "TCP"),
             ServicePort("metrics", 9153, 9153, "TCP")], 10),
    Service("payments", "api", {"app": "payments-api"}, [ServicePort("https", 443, 8443, "TCP")], 31),
    # The first address of the Service range, as 10.43.0.1 on k3s; no selector, its EndpointSlices name the control
    # plane.
    Service("default", "kubernetes", {}, [ServicePort("https", 443, 6443, "TCP")], 1, external=[CONTROL_PLANE]),
]


def _ns_selector(name):
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


POLICIES = [
    {"namespace": "shop", "name": "default-deny",
     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    # The frontend may call the payments API, and nothing else: no DNS (runbook issue 1), no metrics port
    # (issue 2).
    {"namespace": "shop", "name": "allow-frontend-to-payments",
     "spec": {"podSelector": {"matchLabels": {"app": "frontend"}}, "policyTypes": ["Egress"],
              "egress": [{"to": [_ns_selector("payments")], "ports": [{"protocol": "TCP", "port": 8443}]}]}},
    {"namespace": "shop", "name": "allow-checkout-egress",
     "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}}, "policyTypes": ["Egress"],
              "egress": [{"to": [_ns_selector("databases")], "ports": [{"protocol": "TCP", "port": 5432}]},
                         {"to": [_ns_selector("kube-system")],
                          "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}},
    # Ingress at the destination (issue 3): only the shop frontend, only the https port (named).
    {"namespace": "payments", "name": "api-allow-frontend",
     "spec": {"podSelector": {"matchLabels": {"app": "payments-api"}}, "policyTypes": ["Ingress"],
              "ingress": [{"from": [{**_ns_selector("shop"), "podSelector": {"matchLabels": {"app": "frontend"}}}],
                           "ports": [{"protocol": "TCP", "port": "https"}]}]}},
    # Selects the checkout pods by the old label (issue 4).
    {"namespace": "databases", "name": "postgres-allow-checkout",
     "spec": {"podSelector": {"matchLabels": {"app": "postgres"}}, "policyTypes": ["Ingress"],
              "ingress": [{"from": [{**_ns_selector("shop"), "podSelector": {"matchLabels": {"app": "checkout"}}}],
                           "ports": [{"protocol": "TCP", "port": 5432}]}]}},
    {"namespace": "billing", "name": "default-deny",
     "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
    # The fix of issue 5, applied after the invoicer's DNS flow was already broken.
    {"namespace": "billing", "name": "allow-dns",
     "spec": {"podSelector": {}, "policyTypes": ["Egress"],
              "egress": [{"to": [_ns_selector("kube-system")],
                          "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}},
]


def octet_policies(api_vip4: str, api_vip6: str) -> list:
    """Policies naming the lab's own addresses."""
    # Runbook issue 6 as people write it: the Service IP of the API server and its port, 443. Every dataplane
    # enforces egress after kube-proxy's DNAT, on the endpoint (the control plane, TCP 6443): nothing matches.
    return [{"namespace": "ops", "name": "allow-k8s-api-egress",
             "spec": {"podSelector": {}, "policyTypes": ["Egress"],
                      "egress": [{"to": [{"ipBlock": {"cidr": f"{api_vip4}/32"}},
                                         {"ipBlock": {"cidr": f"{api_vip6}/128"}}],
                                  "ports": [{"protocol": "TCP", "port": 443}]}]}}]


class Cluster:
    def __init__(self, prefix: str, octet: int):
        if not 1 <= octet <= 255:
            raise ValueError(f"octet {octet} out of range 1..255")
        self.prefix = prefix
        self.octet = octet
        self.node = f"{prefix}-node"
        self.node_ip4 = f"10.{octet}.0.1"
        self.node_ip6 = f"fd00:{octet}::1"
        self.bridge_gw4 = f"10.{octet}.1.1"
        self.bridge_gw6 = f"fd00:{octet}:1::1"
        self.pods = []
        for p in PODS:
            pod = Pod(p.key, p.namespace, p.name, dict(p.labels), list(p.ports), p.attach, p.host)
            subnet = 1 if pod.attach == "bridge" else 2
            pod.ip4 = f"10.{octet}.{subnet}.{pod.host}"
            pod.ip6 = f"fd00:{octet}:{subnet}::{pod.host}"
            self.pods.append(pod)
        self.control_plane = External(CONTROL_PLANE.name, CONTROL_PLANE.host, f"10.{octet}.0.{CONTROL_PLANE.host}",
                                      f"fd00:{octet}::{CONTROL_PLANE.host}")
        self.services = []
        for s in SERVICES:
            svc = Service(s.namespace, s.name, dict(s.selector), list(s.ports), s.host,
                          external=[self.control_plane for x in s.external if x is CONTROL_PLANE])
            svc.ip4 = f"10.96.{octet}.{svc.host}"
            svc.ip6 = f"fd00:96:{octet}::{svc.host:x}"
            self.services.append(svc)
        self.namespaces = {name: {"kubernetes.io/metadata.name": name, **labels} for name, labels in NAMESPACES.items()}
        api = self.service("default/kubernetes")
        self.policies = POLICIES + octet_policies(api.ip4, api.ip6)

    # --- lookups ---
    def pod(self, key: str) -> Pod:
        for p in self.pods:
            if p.key == key or p.id == key or p.name == key:
                return p
        raise KeyError(key)

    def service(self, ident: str) -> Service:
        for s in self.services:
            if s.id == ident or s.name == ident:
                return s
        raise KeyError(ident)

    def netns(self, pod: Pod) -> str:
        return f"{self.prefix}-{pod.key}"

    def all_netns(self) -> list:
        return [self.node] + [self.netns(p) for p in self.pods]

    def endpoints(self, svc: Service) -> list:
        """The Service's endpoint pods (its selector's); a Service without selector has none."""
        if not svc.selector:
            return []
        selector = {"matchLabels": svc.selector}
        return [p for p in self.pods if p.namespace == svc.namespace and matches(selector, p.labels)]

    def all_endpoints(self, svc: Service) -> list:
        """Pods and External addresses (both have .ip(family) and .id)."""
        return self.endpoints(svc) + list(svc.external)

    def pod_by_ip(self, ip: str):
        ip = str(ipaddress.ip_address(ip))
        for p in self.pods:
            if ip in (p.ip4, p.ip6):
                return p
        return None

    # --- the state file ---
    def state(self) -> dict:
        items = [{"apiVersion": "v1", "kind": "Node",
                  "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node}},
                  "spec": {"podCIDRs": [f"10.{self.octet}.1.0/24", f"fd00:{self.octet}:1::/64"]},
                  "status": {"addresses": [{"type": "InternalIP", "address": self.node_ip4},
                                           {"type": "InternalIP", "address": self.node_ip6},
                                           {"type": "Hostname", "address": self.node}]}}]
        for name, labels in self.namespaces.items():
            items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels},
                          "status": {"phase": "Active"}})
        for p in self.pods:
            items.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels},
                "spec": {"nodeName": self.node,
                         "containers": [{"name": p.name.split("-")[0],
                                         "ports": [{"name": x.name, "containerPort": x.number, "protocol": x.protocol}
                                                   for x in p.ports]}]},
                "status": {"phase": "Running", "hostIP": self.node_ip4,
                           "hostIPs": [{"ip": self.node_ip4}, {"ip": self.node_ip6}],
                           "podIP": p.ip4, "podIPs": [{"ip": p.ip4}, {"ip": p.ip6}]}})
        for s in self.services:
            spec = {"type": "ClusterIP", "selector": s.selector, "clusterIP": s.ip4, "clusterIPs": [s.ip4, s.ip6],
                    "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack",
                    "ports": [{"name": x.name, "port": x.port, "targetPort": x.target_port,
                               "protocol": x.protocol} for x in s.ports]}
            if not s.selector:
                del spec["selector"]  # endpoints maintained by their owner (the API server for default/kubernetes)
            items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": s.name, "namespace": s.namespace},
                          "spec": spec})
            for family in (4, 6):
                endpoints = [{"addresses": [p.ip(family)], "conditions": {"ready": True}, "nodeName": self.node,
                              "targetRef": {"kind": "Pod", "namespace": p.namespace, "name": p.name}}
                             for p in self.endpoints(s)]
                endpoints += [{"addresses": [x.ip(family)], "conditions": {"ready": True}} for x in s.external]
                items.append({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"name": f"{s.name}-ipv{family}", "namespace": s.namespace,
                                 "labels": {"kubernetes.io/service-name": s.name}},
                    "addressType": f"IPv{family}",
                    "endpoints": endpoints,
                    "ports": [{"name": x.name, "port": x.target_port, "protocol": x.protocol} for x in s.ports]})
        for pol in self.policies:
            items.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                          "metadata": {"name": pol["name"], "namespace": pol["namespace"]}, "spec": pol["spec"]})
        return {"apiVersion": "v1", "kind": "List", "items": items}

    def write_state(self, path: str):
        with open(path, "w") as f:
            json.dump(self.state(), f, indent=1)
            f.write("\n")

    # --- the compiled policies ---
    def compile(self):
        return compile_policies(self)


# ---------------------------------------------------------------- NetworkPolicy compiler (the CNI's view)

def matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels + matchExpressions); an empty selector matches everything."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Atom:
    """One allowed (peer, protocol, port) of a rule; None = any."""
    peer: str | None  # an address or CIDR; None: any peer
    protocol: str | None  # "tcp", "udp", "sctp"; None: any protocol (and port)
    port: int | None


@dataclass
class CompiledRule:
    policy: str  # "ns/name"
    index: int
    atoms: dict = field(default_factory=lambda: {4: [], 6: []})


@dataclass
class CompiledSide:
    isolated: bool = False
    policies: list = field(default_factory=list)  # ns/name of the isolating policies
    rules: list = field(default_factory=list)  # CompiledRule


@dataclass
class CompiledPod:
    pod: Pod
    ingress: CompiledSide = field(default_factory=CompiledSide)
    egress: CompiledSide = field(default_factory=CompiledSide)

    def side(self, direction: str) -> CompiledSide:
        return self.ingress if direction == "ingress" else self.egress


def _policy_types(spec: dict) -> list:
    if "policyTypes" in spec:
        return spec["policyTypes"]
    return ["Ingress"] + (["Egress"] if "egress" in spec else [])


def _peer_pods(cluster: Cluster, policy_ns: str, peer: dict) -> list:
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    out = []
    for p in cluster.pods:
        if ns_sel is None:
            if p.namespace != policy_ns:
                continue
        elif not matches(ns_sel, cluster.namespaces[p.namespace]):
            continue
        if pod_sel is not None and not matches(pod_sel, p.labels):
            continue
        out.append(p)
    return out


def _resolve_port(port, protocol: str, pod: Pod):
    """A NetworkPolicyPort's port on one pod: numbers as they are, names through the pod's containerPorts."""
    if port is None or isinstance(port, int):
        return port
    for x in pod.ports:
        if x.name == port and x.protocol == protocol:
            return x.number
    return -1  # the pod has no such named port: matches nothing


def compile_policies(cluster: Cluster) -> dict:
    out = {p.key: CompiledPod(p) for p in cluster.pods}
    for pol in cluster.policies:
        ns, spec = pol["namespace"], pol["spec"]
        ident = f"{ns}/{pol['name']}"
        selected = [p for p in cluster.pods if p.namespace == ns and matches(spec.get("podSelector") or {}, p.labels)]
        for direction in ("ingress", "egress"):
            if direction.capitalize() not in _policy_types(spec):
                continue
            for target in selected:
                side = out[target.key].side(direction)
                side.isolated = True
                side.policies.append(ident)
                for index, rule in enumerate(spec.get(direction) or []):
                    peers_key = "from" if direction == "ingress" else "to"
                    compiled = CompiledRule(ident, index)
                    ports = rule.get("ports") or [None]
                    if rule.get(peers_key):
                        peers = []  # (pod or None, cidr)
                        for peer in rule[peers_key]:
                            if "ipBlock" in peer:
                                if peer["ipBlock"].get("except"):
                                    raise NotImplementedError("ipBlock.except is not rendered by the lab")
                                peers.append((None, peer["ipBlock"]["cidr"]))
                            else:
                                peers += [(p, None) for p in _peer_pods(cluster, ns, peer)]
                    else:
                        peers = [(None, None)]  # any peer
                    for peer_pod, cidr in peers:
                        # Named ports resolve on the destination pod: the target for ingress, the peer for egress.
                        port_pod = target if direction == "ingress" else peer_pod
                        for port in ports:
                            protocol = (port or {}).get("protocol", "TCP") if port else None
                            number = None
                            if port and port.get("port") is not None:
                                if isinstance(port["port"], str) and port_pod is None:
                                    continue  # a named port towards a non-pod peer matches nothing
                                number = _resolve_port(port["port"], protocol, port_pod)
                                if number == -1:
                                    continue
                            proto = protocol.lower() if protocol else None
                            for family in (4, 6):
                                if peer_pod is not None:
                                    peer_ip = peer_pod.ip(family)
                                elif cidr is not None:
                                    net = ipaddress.ip_network(cidr, strict=False)
                                    if net.version != family:
                                        continue
                                    peer_ip = str(net)
                                else:
                                    peer_ip = None
                                compiled.atoms[family].append(Atom(peer_ip, proto, number))
                    side.rules.append(compiled)
    return out

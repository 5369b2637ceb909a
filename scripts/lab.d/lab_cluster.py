"""The lab's cluster: namespaces, pods, Services, NetworkPolicies and (for the flavours that enforce them)
ClusterNetworkPolicies of one node, the state file netpol-trace reads, a small NetworkPolicy compiler (selectors ->
pod IPs, ports -> numbers) the rule-based dataplanes render from, and a per-packet evaluator of NetworkPolicy and the
cluster policy tiers as kube-network-policies decides in userspace.

Both are deliberately independent of netpol-trace's engine: they are what a CNI does (kube-router, Calico,
kube-network-policies), so the integration tests compare two implementations of the policy APIs, the dataplane's and
the engine's.
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


def owner_reference(pod_name: str) -> dict:
    """The controller ownerReference a pod of this name has: a ReplicaSet (name minus the pod's suffix) for
    Deployment pods (name-<pod-template-hash>-<suffix>), a StatefulSet for name-<ordinal>."""
    base, _, last = pod_name.rpartition("-")
    if last.isdigit():
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": base, "controller": True,
                "blockOwnerDeletion": True}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": base, "controller": True,
            "blockOwnerDeletion": True}


def pod_labels(pod_name: str, labels: dict) -> dict:
    """A pod's labels as its controller sets them: a Deployment's pods also carry pod-template-hash (the suffix of
    their ReplicaSet's name). Policies never select on it."""
    owner = owner_reference(pod_name)
    if owner["kind"] != "ReplicaSet":
        return labels
    return {**labels, "pod-template-hash": owner["name"].rpartition("-")[2]}


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


def _ns(name):
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


# ClusterNetworkPolicies (policy.networking.k8s.io/v1alpha2), one per tier, in the state of the flavours that enforce
# them (kube-network-policies) only: the other flavours' rules know nothing of them. Each decides flows that no other
# case sends, so the runbook cases keep their explanations.
CLUSTER_POLICIES = [
    # Admin Deny over NetworkPolicies that allow it: the ops namespace is closed to every workload whatever its own
    # NetworkPolicy (egress only) says. Case admin-deny: monitoring/prometheus -> ops/operator:8080.
    {"name": "ops-lockdown",
     "spec": {"tier": "Admin", "priority": 10, "subject": {"namespaces": _ns("ops")},
              "ingress": [{"name": "deny-ingress-from-workloads", "action": "Deny", "from": [{"namespaces": {}}]}]}},
    # Admin Pass: who reaches PostgreSQL from monitoring is left to the databases namespace's own NetworkPolicies,
    # which admit the shop checkout only. Case admin-pass: monitoring/prometheus -> databases/postgres-0:5432.
    {"name": "databases-delegate-monitoring",
     "spec": {"tier": "Admin", "priority": 20, "subject": {"namespaces": _ns("databases")},
              "ingress": [{"name": "pass-monitoring-to-namespace-owners", "action": "Pass",
                           "from": [{"namespaces": _ns("monitoring")}],
                           "protocols": [{"tcp": {"destinationPort": {"number": 5432}}}]}]}},
    # Baseline Deny, overridable by a NetworkPolicy of monitoring (there is none): monitoring does not scrape
    # kube-system's metrics ports. Case baseline-deny: monitoring/prometheus -> kube-system/coredns:9153 ("metrics").
    {"name": "monitoring-baseline",
     "spec": {"tier": "Baseline", "priority": 10,
              "subject": {"pods": {"namespaceSelector": _ns("monitoring"), "podSelector": {}}},
              "egress": [{"name": "deny-kube-system-metrics", "action": "Deny",
                          "to": [{"namespaces": _ns("kube-system")}],
                          "protocols": [{"destinationNamedPort": "metrics"}]}]}},
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


def as_v1alpha1(cnp: dict) -> dict:
    """A ClusterNetworkPolicy of CLUSTER_POLICIES as its v1alpha1 predecessor: AdminNetworkPolicy (Admin tier) or the
    singleton BaselineAdminNetworkPolicy "default" (Baseline tier), for the dataplanes that enforce those (Calico
    v3.29-v3.31)."""
    spec = cnp["spec"]
    baseline = spec["tier"] == "Baseline"
    out = {"kind": "BaselineAdminNetworkPolicy" if baseline else "AdminNetworkPolicy",
           "name": "default" if baseline else cnp["name"], "spec": {"subject": spec["subject"]}}
    if not baseline:
        out["spec"]["priority"] = spec["priority"]
    for direction in ("ingress", "egress"):
        rules = []
        for rule in spec.get(direction) or []:
            r = {k: v for k, v in rule.items() if k not in ("protocols",)}
            r["action"] = {"Accept": "Allow"}.get(rule["action"], rule["action"])
            ports = []
            for proto in rule.get("protocols") or []:
                if "destinationNamedPort" in proto:
                    ports.append({"namedPort": proto["destinationNamedPort"]})
                    continue
                for name, body in proto.items():
                    ports.append({"portNumber": {"protocol": name.upper(), "port": body["destinationPort"]["number"]}})
            if ports:
                r["ports"] = ports
            rules.append(r)
        if rules:
            out["spec"][direction] = rules
    return out


class Cluster:
    def __init__(self, prefix: str, octet: int, cluster_policies: bool = False, cluster_policy_api: str = "v1alpha2",
                 baseline: bool = True):
        """`cluster_policy_api`: the cluster policies as ClusterNetworkPolicies ("v1alpha2") or as their v1alpha1
        predecessors ("v1alpha1"); `baseline`: with the Baseline tier's (Calico v3.29 has no
        BaselineAdminNetworkPolicy)."""
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
        self.cluster_policies = [dict(x, kind="ClusterNetworkPolicy") for x in CLUSTER_POLICIES
                                 if baseline or x["spec"]["tier"] != "Baseline"] if cluster_policies else []
        if cluster_policy_api == "v1alpha1":
            self.cluster_policies = [as_v1alpha1(x) for x in self.cluster_policies]

    def apply_policies(self, objects: list):
        """NetworkPolicy objects (`kubectl get -o json` shape) added to the lab's, replacing one of the same
        namespace and name: what `scripts/lab up --policies` programs into the dataplane and writes to the state."""
        for obj in objects:
            meta = obj.get("metadata") or {}
            pol = {"namespace": meta.get("namespace") or "default", "name": meta["name"], "spec": obj.get("spec") or {}}
            self.policies = [x for x in self.policies
                             if (x["namespace"], x["name"]) != (pol["namespace"], pol["name"])] + [pol]

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
        """The cluster objects as `kubectl get -o json` lists them (pods with their controllers' ownerReferences:
        name-<hash>-<suffix> a Deployment's ReplicaSet, with its pod-template-hash label, name-<n> a StatefulSet's)."""
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
                "metadata": {"name": p.name, "namespace": p.namespace, "labels": pod_labels(p.name, p.labels),
                             "ownerReferences": [owner_reference(p.name)]},
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
        for pol in self.cluster_policies:
            version = "v1alpha2" if pol["kind"] == "ClusterNetworkPolicy" else "v1alpha1"
            items.append({"apiVersion": f"policy.networking.k8s.io/{version}", "kind": pol["kind"],
                          "metadata": {"name": pol["name"]}, "spec": pol["spec"]})
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
    peer_kind: str = "any"  # what the rule named: "pods" (selectors), "cidr" (ipBlock), "any" (no peers)
    named_port: bool = False  # the port was a name, resolved on the destination pod


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
                            kind = "pods" if peer_pod is not None else "cidr" if cidr is not None else "any"
                            named = bool(port) and isinstance(port.get("port"), str)
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
                                compiled.atoms[family].append(Atom(peer_ip, proto, number, kind, named))
                    side.rules.append(compiled)
    return out


# ---------------------------------------------------------------- per-packet evaluation (kube-network-policies)
#
# kube-network-policies compiles nothing into the kernel: it queues packets to userspace and runs, per packet, the
# egress pipeline and then the ingress pipeline of its evaluators (pkg/networkpolicy/engine.go, EvaluatePacket). The
# npa-v1alpha2 binary (cmd/kube-network-policies/npa-v1alpha2/main.go) runs, in this order, the Admin tier of
# ClusterNetworkPolicy, NetworkPolicy, the Baseline tier (plugins/npa-v1alpha2/clusternetworkpolicy.go,
# pkg/networkpolicy/networkpolicy.go). The first evaluator that says Accept or Deny decides the direction; none: Accept.
# What follows re-implements that from the API objects of the state, including where it differs from the API's
# wording (marked "as upstream").

ACCEPT, DENY, NEXT = "Accept", "Deny", "Next"


@dataclass
class PacketPod:
    namespace: str
    name: str
    labels: dict
    ns_labels: dict
    ports: list  # (name, number, protocol)

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Decision:
    allowed: bool
    direction: str = ""  # the denying direction
    evaluator: str = ""  # "ClusterNetworkPolicy Admin", "NetworkPolicy", "ClusterNetworkPolicy Baseline"
    why: str = ""

    def __str__(self):
        return "accept" if self.allowed else f"drop: {self.direction} denied by {self.evaluator}: {self.why}"


def _selects(selector, labels: dict) -> bool:
    """metav1.LabelSelectorAsSelector(s).Matches(labels) for a present selector (an empty one matches all)."""
    return matches(selector or {}, labels or {})


def _in_cidr(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


class PacketEvaluator:
    """Decides one packet (addresses, protocol "TCP"/"UDP"/"SCTP" or None, destination port) over the state's
    objects: `PacketEvaluator(cluster.state()["items"]).evaluate(...)`."""

    def __init__(self, items: list):
        self.namespaces, self.pods, self.policies, self.cluster_policies, self.nodes = {}, {}, [], [], []
        for it in items:
            kind, meta = it.get("kind"), it.get("metadata", {})
            if kind == "Namespace":
                self.namespaces[meta["name"]] = meta.get("labels") or {}
            elif kind == "NetworkPolicy":
                self.policies.append(it)
            elif kind == "ClusterNetworkPolicy":
                self.cluster_policies.append(it)
            elif kind == "Node":
                self.nodes.append(it)
        for it in items:
            if it.get("kind") != "Pod" or it["spec"].get("hostNetwork") or not it["status"].get("podIP"):
                continue  # podinfo.getPodByIP: host-network pods and pods without an IP are no pods
            meta = it["metadata"]
            ports = [(p.get("name"), p["containerPort"], p.get("protocol", "TCP"))
                     for c in it["spec"].get("containers", []) for p in c.get("ports", [])]
            pod = PacketPod(meta["namespace"], meta["name"], meta.get("labels") or {},
                            self.namespaces.get(meta["namespace"], {}), ports)
            for x in it["status"].get("podIPs") or [{"ip": it["status"]["podIP"]}]:
                self.pods[str(ipaddress.ip_address(x["ip"]))] = pod

    def pod(self, ip: str):
        return self.pods.get(str(ipaddress.ip_address(ip)))

    def evaluate(self, src_ip: str, dst_ip: str, proto, dport: int) -> Decision:
        src, dst = self.pod(src_ip), self.pod(dst_ip)
        for direction in ("egress", "ingress"):
            for name, fn in (("ClusterNetworkPolicy Admin", lambda d: self._cluster_tier("Admin", d, src, dst,
                                                                                         dst_ip, proto, dport)),
                             ("NetworkPolicy", lambda d: self._network_policies(d, src, dst, src_ip, dst_ip, proto,
                                                                                dport)),
                             ("ClusterNetworkPolicy Baseline", lambda d: self._cluster_tier("Baseline", d, src, dst,
                                                                                            dst_ip, proto, dport))):
                verdict, why = fn(direction)
                if verdict == ACCEPT:
                    break
                if verdict == DENY:
                    return Decision(False, direction, name, why)
        return Decision(True)

    # --- NetworkPolicy (StandardNetworkPolicy) ---

    def _network_policies(self, direction, src, dst, src_ip, dst_ip, proto, dport):
        pod, peer, peer_ip = (dst, src, src_ip) if direction == "ingress" else (src, dst, dst_ip)
        if pod is None:
            return NEXT, ""
        # getNetworkPoliciesForPod: every policy selecting the pod, whatever its policyTypes. As upstream, a pod that
        # only other-direction policies select is Accepted here (EvaluatePolicyDirection starts from true), so the
        # Baseline tier is not consulted for it in this direction.
        selecting = [p for p in self.policies if p["metadata"]["namespace"] == pod.namespace
                     and _selects(p["spec"].get("podSelector"), pod.labels)]
        if not selecting:
            return NEXT, ""
        want = direction.capitalize()
        isolating = []
        for pol in selecting:
            ident = f"{pol['metadata']['namespace']}/{pol['metadata']['name']}"
            for ptype in pol["spec"].get("policyTypes") or []:
                if ptype != want:
                    continue
                isolating.append(ident)
                # A policy without rules in this direction allows nothing. (Objects reach kube-network-policies as
                # protobuf, where an empty list and an absent one are both nil.)
                rules = pol["spec"].get(direction) or None
                if rules is None:
                    continue
                if self._np_rules(direction, pol["metadata"]["namespace"], rules, pod, peer, peer_ip, proto, dport):
                    return ACCEPT, f"allowed by {ident}"
        if not isolating:
            return ACCEPT, "selected, not isolated in this direction"
        return DENY, f"isolated by {', '.join(isolating)}: no rule allows it"

    def _np_rules(self, direction, policy_ns, rules, pod, peer, peer_ip, proto, dport) -> bool:
        # Named ports resolve on the packet's destination pod: the policy's pod for ingress, the peer for egress.
        port_pod = pod if direction == "ingress" else peer
        for rule in rules:
            if not self._np_ports(rule.get("ports"), port_pod, dport, proto):
                continue
            peers = rule.get("from" if direction == "ingress" else "to")
            if not peers:
                return True
            for p in peers:
                if "ipBlock" in p:
                    block = p["ipBlock"]
                    if _in_cidr(block["cidr"], peer_ip) and not any(_in_cidr(x, peer_ip)
                                                                    for x in block.get("except") or []):
                        return True
                    continue
                if peer is None:  # selectors match pods only
                    continue
                if self._np_selectors(p.get("podSelector"), p.get("namespaceSelector"), peer, policy_ns):
                    return True
        return False

    @staticmethod
    def _np_selectors(pod_sel, ns_sel, peer: PacketPod, policy_ns: str) -> bool:
        if pod_sel is not None:
            if not _selects(pod_sel, peer.labels):
                return False
            if ns_sel is None:
                return peer.namespace == policy_ns
        if ns_sel is not None:
            return _selects(ns_sel, peer.ns_labels)
        return True

    @staticmethod
    def _np_ports(ports, pod, dport, proto) -> bool:
        if not ports:
            return True
        for pp in ports:
            if proto != pp.get("protocol", "TCP"):
                continue
            port = pp.get("port")
            if port is None:
                return True
            if isinstance(port, int) and port == dport:
                return True
            if isinstance(port, str) and pod is not None and any(
                    n == port and num == dport and pr == proto for n, num, pr in pod.ports):
                return True
            if isinstance(port, int) and pp.get("endPort") is not None and port < dport <= pp["endPort"]:
                return True
        return False

    # --- ClusterNetworkPolicy, one tier ---

    def _cluster_tier(self, tier, direction, src, dst, dst_ip, proto, dport):
        pod = dst if direction == "ingress" else src
        if pod is None:
            return NEXT, ""
        selecting = sorted((p for p in self.cluster_policies if p["spec"].get("tier") == tier
                            and self._cnp_subject(p["spec"].get("subject") or {}, pod)),
                           key=lambda p: (p["spec"].get("priority", 0), p["metadata"]["name"]))
        if not selecting:
            return NEXT, ""
        if direction == "ingress" and src is None:
            return NEXT, ""  # ingress peers are pods: traffic from elsewhere passes the tier
        for pol in selecting:
            for index, rule in enumerate(pol["spec"].get(direction) or []):
                if rule.get("protocols") is not None and not self._cnp_protocols(rule["protocols"], dst, dport,
                                                                                  proto):
                    continue
                peers = rule.get("from" if direction == "ingress" else "to") or []
                if any(self._cnp_peer(p, src if direction == "ingress" else dst, dst_ip, direction) for p in peers):
                    action = rule.get("action")
                    named = f" ({rule['name']})" if rule.get("name") else ""
                    why = f"{pol['metadata']['name']} {direction}[{index}]{named} {action}"
                    return {"Accept": ACCEPT, "Deny": DENY}.get(action, NEXT), why
        return NEXT, ""  # no rule matched: Pass

    @staticmethod
    def _cnp_subject(subject, pod: PacketPod) -> bool:
        if subject.get("namespaces") is not None and _selects(subject["namespaces"], pod.ns_labels):
            return True
        pods = subject.get("pods")
        return pods is not None and _selects(pods.get("namespaceSelector"), pod.ns_labels) and \
            _selects(pods.get("podSelector"), pod.labels)

    def _cnp_peer(self, peer, remote, dst_ip, direction) -> bool:
        if peer.get("namespaces") is not None and remote is not None and _selects(peer["namespaces"],
                                                                                 remote.ns_labels):
            return True
        pods = peer.get("pods")
        if pods is not None and remote is not None and _selects(pods.get("namespaceSelector"), remote.ns_labels) \
                and _selects(pods.get("podSelector"), remote.labels):
            return True
        if direction == "egress":
            if peer.get("nodes") is not None:
                for node in self.nodes:
                    if not _selects(peer["nodes"], node["metadata"].get("labels") or {}):
                        continue
                    for a in node.get("status", {}).get("addresses", []):
                        if a.get("type") in ("InternalIP", "ExternalIP") and \
                                ipaddress.ip_address(a["address"]) == ipaddress.ip_address(dst_ip):
                            return True
            # Networks match any address, pods' too. domainNames need the DNS snooping the lab does not run: no match.
            if any(_in_cidr(c, dst_ip) for c in peer.get("networks") or []):
                return True
        return False

    @staticmethod
    def _cnp_protocols(protocols, dst, dport, proto) -> bool:
        if not protocols:
            return True

        def port_ok(p):
            if p is None:
                return True
            if p.get("number") and p["number"] == dport:
                return True
            r = p.get("range")
            return r is not None and r["start"] <= dport <= r["end"]

        for pp in protocols:
            if pp.get("destinationNamedPort"):
                if dst is not None and any(n == pp["destinationNamedPort"] and pr == proto and num == dport
                                           for n, num, pr in dst.ports):
                    return True
            elif pp.get("tcp") is not None and proto == "TCP":
                if port_ok(pp["tcp"].get("destinationPort")):
                    return True
            elif pp.get("udp") is not None and proto == "UDP":
                if port_ok(pp["udp"].get("destinationPort")):
                    return True
            elif pp.get("sctp") is not None and proto == "SCTP":
                if port_ok(pp["sctp"].get("destinationPort")):
                    return True
        return False

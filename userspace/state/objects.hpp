// Kubernetes objects as the engine needs them: trimmed to what policy matching and Service
// resolution read. Loaders (files, the API) produce these; ClusterState indexes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/ip_addr.hpp"
#include "common/string_pool.hpp"

namespace npt {

// TCP, UDP and SCTP are what NetworkPolicy ports name; the others appear in dropped packets and are
// matched only by rules without ports.
enum class Protocol : uint8_t { TCP = 6, UDP = 17, SCTP = 132, ICMP = 1, ICMPv6 = 58, Other = 255 };

const char* protocol_name(Protocol p);
std::optional<Protocol> parse_protocol(std::string_view text);  // case-insensitive TCP/UDP/SCTP

using LabelMap = std::vector<std::pair<std::string, std::string>>;  // sorted by key, unique keys

struct ContainerPort {
    std::string name;  // empty when unnamed
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
};

struct NamespaceInfo {
    std::string name;
    LabelMap labels;
};

struct PodInfo {
    std::string ns;
    std::string name;
    LabelMap labels;
    std::vector<IpAddr> ips;  // status.podIPs (or podIP); at most one per family in practice
    std::optional<IpAddr> host_ip;
    std::string node;
    bool host_network = false;
    std::string phase;                 // Pending, Running, Succeeded, Failed, Unknown (empty when absent)
    std::vector<ContainerPort> ports;  // all containers' (and init sidecars') declared ports
    // The controller among metadata.ownerReferences (ReplicaSet, StatefulSet, DaemonSet, Job, ...), if any.
    std::string owner_kind;
    std::string owner_name;
};

// apps/v1 ReplicaSet, trimmed to what names a pod's workload: the Deployment that owns it.
struct ReplicaSetInfo {
    std::string ns;
    std::string name;
    std::string owner_kind;  // "Deployment" when a Deployment manages it
    std::string owner_name;
};

// ---- NetworkPolicy (networking.k8s.io/v1) ----

struct LabelRequirement {
    enum class Op : uint8_t { In, NotIn, Exists, DoesNotExist };
    std::string key;
    Op op = Op::In;
    std::vector<std::string> values;
    bool from_match_labels = false;  // written as matchLabels key: value (for explanations)

    // Filled by ClusterState so matching compares interned ids.
    StrId key_id = kNoStr;
    std::vector<StrId> value_ids;
};

struct LabelSelector {
    std::vector<LabelRequirement> requirements;  // ANDed; empty selects everything
    bool empty() const { return requirements.empty(); }
};

struct IpBlock {
    Cidr cidr;
    std::vector<Cidr> except;
};

// One element of from[] / to[]. The API allows podSelector, namespaceSelector (either or both,
// ANDed) or ipBlock alone.
struct Peer {
    std::optional<LabelSelector> pod_selector;
    std::optional<LabelSelector> namespace_selector;
    std::optional<IpBlock> ip_block;
};

struct PolicyPort {
    Protocol protocol = Protocol::TCP;
    std::optional<uint16_t> port;      // absent: every port of the protocol
    std::string port_name;             // set for a named port (then port is absent)
    std::optional<uint16_t> end_port;  // range port..end_port (numeric port only)
};

struct PolicyRule {
    std::vector<PolicyPort> ports;  // empty: all ports
    std::vector<Peer> peers;        // empty: all peers
};

struct NetworkPolicy {
    std::string ns;
    std::string name;
    LabelSelector pod_selector;
    bool affects_ingress = true;
    bool affects_egress = false;
    std::vector<PolicyRule> ingress;
    std::vector<PolicyRule> egress;

    std::string id() const { return ns + "/" + name; }
};

// ---- Services and their endpoints ----

struct ServicePort {
    std::string name;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;
    uint16_t node_port = 0;
    uint16_t target_port = 0;      // numeric targetPort (0 when named or absent)
    std::string target_port_name;  // named targetPort
};

struct ServiceInfo {
    std::string ns;
    std::string name;
    std::string type;                 // ClusterIP, NodePort, LoadBalancer, ExternalName
    std::vector<IpAddr> cluster_ips;  // empty for headless (clusterIP: None)
    std::vector<IpAddr> external_ips;
    std::vector<ServicePort> ports;
    std::optional<LabelMap> selector;  // absent: endpoints are managed by hand (EndpointSlices)

    std::string id() const { return ns + "/" + name; }
};

struct EndpointPort {
    std::string name;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;
};

struct EndpointAddress {
    IpAddr ip;
    bool ready = true;
    std::string pod_ns;  // targetRef of kind Pod, when present
    std::string pod_name;
};

// discovery.k8s.io/v1 EndpointSlice, or a core/v1 Endpoints subset converted into one.
struct EndpointSliceInfo {
    std::string ns;
    std::string name;
    std::string service;  // kubernetes.io/service-name
    std::vector<EndpointAddress> endpoints;
    std::vector<EndpointPort> ports;
};

struct NodeInfo {
    std::string name;
    std::vector<IpAddr> addresses;  // InternalIP and ExternalIP
    LabelMap labels;                // for the `nodes` peers of cluster policies
};

// ---- Cluster-scoped policy tiers (policy.networking.k8s.io) ----
//
// ClusterNetworkPolicy (v1alpha2, v1beta1) and its predecessors AdminNetworkPolicy and
// BaselineAdminNetworkPolicy (v1alpha1) share one model: a tier, a priority, a subject, and ordered
// rules whose action (Accept, Deny, Pass) decides a connection before (Admin) or after (Baseline)
// the NetworkPolicies. A v1alpha1 Allow is an Accept.

enum class PolicyTier : uint8_t { Admin, Baseline };
enum class RuleAction : uint8_t { Accept, Deny, Pass };
const char* rule_action_name(RuleAction a);  // "Accept", "Deny", "Pass"

// Which API object a cluster policy was read from: it names the policy in every output.
enum class ClusterPolicyKind : uint8_t { ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy };
const char* cluster_policy_kind_name(ClusterPolicyKind k);  // the API kind, "ClusterNetworkPolicy", ...

// A subject or a peer selecting pods: `namespaces` (every pod of the selected namespaces) or `pods`
// (namespaceSelector AND podSelector).
struct PodSetSelector {
    LabelSelector namespaces;
    std::optional<LabelSelector> pods;  // absent for a `namespaces` selector
};

struct ClusterPeer {
    enum class Kind : uint8_t {
        Namespaces,
        Pods,
        Nodes,        // node label selector: the nodes' addresses
        Networks,     // CIDRs; they match pod IPs too
        DomainNames,  // FQDNs (egress, Accept only): not decidable from an IP
        Unknown,      // no field this model knows (a newer API): fails closed
    };
    Kind kind = Kind::Unknown;
    PodSetSelector pods;  // Namespaces, Pods
    LabelSelector nodes;
    std::vector<Cidr> networks;
    std::vector<std::string> domain_names;

    // Filled by ClusterState: the namespaces `pods.namespaces` selects, precomputed (Namespaces, Pods).
    uint32_t namespace_set = UINT32_MAX;
};

// One protocols[] entry (v1alpha2+) or ports[] entry (v1alpha1): a protocol with a destination port or
// an inclusive range, or a named port (any protocol the destination pod names it with).
struct ClusterPort {
    enum class Kind : uint8_t { Port, NamedPort, Unknown };  // Unknown: fails closed, like a peer
    Kind kind = Kind::Port;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;      // 0: every port of the protocol
    uint16_t end_port = 0;  // a range port..end_port; 0 for a single port
    std::string name;       // NamedPort
};

struct ClusterPolicyRule {
    std::string name;  // may be empty
    RuleAction action = RuleAction::Deny;
    std::vector<ClusterPeer> peers;  // from / to: at least one
    std::vector<ClusterPort> ports;  // empty: every port and protocol
};

struct ClusterNetworkPolicy {
    ClusterPolicyKind kind = ClusterPolicyKind::ClusterNetworkPolicy;
    std::string name;
    PolicyTier tier = PolicyTier::Admin;
    int32_t priority = 0;  // 0-1000, lower first; a BaselineAdminNetworkPolicy has none (0)
    PodSetSelector subject;
    std::vector<ClusterPolicyRule> ingress;
    std::vector<ClusterPolicyRule> egress;

    // How outputs name it: a ClusterNetworkPolicy by its name, the v1alpha1 objects as
    // "AdminNetworkPolicy/<name>" and "BaselineAdminNetworkPolicy/<name>".
    std::string id() const;
};

// Everything a loader produced, before indexing.
struct ClusterObjects {
    std::vector<NamespaceInfo> namespaces;
    std::vector<PodInfo> pods;
    std::vector<NetworkPolicy> policies;
    std::vector<ServiceInfo> services;
    std::vector<EndpointSliceInfo> endpoint_slices;
    std::vector<NodeInfo> nodes;
    std::vector<ClusterNetworkPolicy> cluster_policies;
    std::vector<ReplicaSetInfo> replica_sets;
};

}  // namespace npt

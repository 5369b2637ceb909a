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
    std::string phase;  // Pending, Running, Succeeded, Failed, Unknown (empty when absent)
    std::vector<ContainerPort> ports;  // all containers' (and init sidecars') declared ports
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
    uint16_t target_port = 0;        // numeric targetPort (0 when named or absent)
    std::string target_port_name;    // named targetPort
};

struct ServiceInfo {
    std::string ns;
    std::string name;
    std::string type;  // ClusterIP, NodePort, LoadBalancer, ExternalName
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
};

// Everything a loader produced, before indexing.
struct ClusterObjects {
    std::vector<NamespaceInfo> namespaces;
    std::vector<PodInfo> pods;
    std::vector<NetworkPolicy> policies;
    std::vector<ServiceInfo> services;
    std::vector<EndpointSliceInfo> endpoint_slices;
    std::vector<NodeInfo> nodes;
};

}  // namespace npt

// Why a rule does not match a flow, as data: what the rule asked for and what the remote end has. The engine
// fills these; output/miss_text words them (the same Miss reads the same in every output).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/ip_addr.hpp"
#include "state/cluster_state.hpp"
#include "state/objects.hpp"

namespace npt {

enum class MissKind : uint8_t {
    PodLabels,        // podSelector does not match the remote pod's labels
    NamespaceLabels,  // namespaceSelector does not match the remote pod's namespace
    PodNamespace,     // podSelector alone selects only the policy's namespace
    NotAPod,          // selector peer, but the remote end is not a pod
    IpBlockRange,     // remote IP outside the ipBlock cidr (or other family)
    IpBlockExcept,    // remote IP inside the cidr but in an except range
    Port,             // no port entry matches the port/protocol
    NamedPort,        // a named port the destination pod does not define
    NodeLabels,       // (cluster policies) a nodes peer's selector does not match the node's labels
    NotANode,         // (cluster policies) a nodes peer, but the remote end is not a node's address
    DomainName,       // (cluster policies) a domainNames peer: cannot be decided from an IP
    UnknownPeer,      // (cluster policies) a peer or port of a newer API: fails closed
};
const char* miss_kind_name(MissKind k);

// The remote end a peer was tested against, by what the state knows of its address.
struct RemoteEnd {
    IpAddr ip;
    std::optional<std::string> pod;               // "ns/name" (a pod IP)
    std::optional<std::string> host_network_pod;  // the address is a hostNetwork pod's (its node's)
    std::optional<std::string> node;              // the address is a node's

    friend bool operator==(const RemoteEnd&, const RemoteEnd&) = default;
};

// The selector field a label requirement comes from.
enum class SelectorField : uint8_t {
    PodSelector,            // NetworkPolicy peer podSelector
    NamespaceSelector,      // NetworkPolicy peer namespaceSelector
    PodsPodSelector,        // cluster policy peer pods.podSelector
    PodsNamespaceSelector,  // cluster policy peer pods.namespaceSelector
    Namespaces,             // cluster policy peer namespaces
    Nodes,                  // cluster policy peer nodes
};
const char* selector_field_name(SelectorField f);

// A requirement of a selector, a label set and what was found for it.
struct LabelMiss {
    // Whose labels were tested.
    enum class Subject : uint8_t {
        Pod,           // the remote pod (name: "ns/name")
        Namespace,     // the remote pod's namespace (name: the namespace)
        PodNamespace,  // the namespace (name) of the remote pod (pod), named with the pod
        Node,          // the remote node (name)
    };
    // What the label set has instead.
    enum class Found : uint8_t {
        Value,           // the key, with value (empty when it has no such label: NotIn / DoesNotExist)
        ValueElsewhere,  // not the key, but one of the values under another key (label)
        SimilarKey,      // a key a small edit away with a fitting value (label)
        Labels,          // none of that: all its labels (labels)
    };
    SelectorField field = SelectorField::PodSelector;
    LabelRequirement::Op op = LabelRequirement::Op::In;
    std::string key;
    std::vector<std::string> values;
    Subject subject = Subject::Pod;
    std::string name;
    std::string pod;
    Found found = Found::Value;
    std::string value;                                        // Found::Value
    std::pair<std::string, std::string> label;                // Found::ValueElsewhere, Found::SimilarKey
    std::vector<std::pair<std::string, std::string>> labels;  // Found::Labels, in the state's order

    friend bool operator==(const LabelMiss&, const LabelMiss&) = default;
};

// A podSelector without namespaceSelector, and a remote pod in another namespace.
struct NamespaceScopeMiss {
    std::string policy_namespace;
    std::string pod;  // "ns/name"
    std::string pod_namespace;

    friend bool operator==(const NamespaceScopeMiss&, const NamespaceScopeMiss&) = default;
};

// A peer that matches pods (NotAPod) or nodes (NotANode) and a remote end that is neither.
struct NotAnEndpointMiss {
    enum class Peer : uint8_t { Selector, Pods, Namespaces, Nodes };  // Selector: a NetworkPolicy's
    Peer peer = Peer::Selector;
    RemoteEnd remote;

    friend bool operator==(const NotAnEndpointMiss&, const NotAnEndpointMiss&) = default;
};

// An ipBlock (one cidr) or a networks peer (its cidrs) that does not contain the remote address.
struct RangeMiss {
    bool networks = false;  // a cluster policy's networks peer
    std::vector<Cidr> cidrs;
    IpAddr ip;

    friend bool operator==(const RangeMiss&, const RangeMiss&) = default;
};

struct ExceptMiss {
    Cidr cidr;
    Cidr except;
    IpAddr ip;

    friend bool operator==(const ExceptMiss&, const ExceptMiss&) = default;
};

// One entry of a rule's ports.
struct PortEntry {
    enum class Kind : uint8_t { Number, Named, Unknown };  // Unknown: a protocol entry of a newer API
    Kind kind = Kind::Number;
    std::optional<Protocol> protocol;  // none: a cluster policy's named port (any protocol)
    uint16_t port = 0;                 // 0: all ports
    uint16_t end_port = 0;             // 0: a single port
    std::string name;
    std::optional<uint16_t> resolved;  // a named port, as the destination pod defines it

    friend bool operator==(const PortEntry&, const PortEntry&) = default;
};

struct PortMiss {
    bool cluster = false;  // a cluster policy's protocols
    std::vector<PortEntry> entries;
    Protocol protocol = Protocol::TCP;  // the connection's
    uint16_t port = 0;

    friend bool operator==(const PortMiss&, const PortMiss&) = default;
};

struct NamedPortMiss {
    bool cluster = false;
    Protocol protocol = Protocol::TCP;  // the entry's (a NetworkPolicy's), the connection's (a cluster policy's)
    std::string name;
    std::optional<std::string> pod;  // the destination pod; none: the destination is not a pod
    IpAddr ip;                       // the destination's address
    struct Defined {
        std::string name;
        Protocol protocol = Protocol::TCP;
        uint16_t port = 0;
        friend bool operator==(const Defined&, const Defined&) = default;
    };
    std::vector<Defined> defined;  // the named ports the pod defines

    friend bool operator==(const NamedPortMiss&, const NamedPortMiss&) = default;
};

struct DomainNameMiss {
    std::vector<std::string> names;
    IpAddr ip;

    friend bool operator==(const DomainNameMiss&, const DomainNameMiss&) = default;
};

struct Miss {
    MissKind kind = MissKind::PodLabels;
    bool near = false;          // a near miss (label drift, small edit)
    bool other_family = false;  // IpBlockRange: the block is of the other IP family (farther than a range miss)
    Direction direction = Direction::Ingress;  // the remote end is the source (ingress) or the destination
    std::variant<std::monostate, LabelMiss, NamespaceScopeMiss, NotAnEndpointMiss, RangeMiss, ExceptMiss, PortMiss,
                 NamedPortMiss, DomainNameMiss>
        detail;  // by kind; monostate: UnknownPeer

    friend bool operator==(const Miss&, const Miss&) = default;
};

}  // namespace npt

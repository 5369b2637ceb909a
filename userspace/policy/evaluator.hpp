// The NetworkPolicy semantics (networking.k8s.io/v1), as pure functions of a ClusterState.
//
// A connection is allowed iff the source's egress allows it and the destination's ingress allows
// it. A pod is isolated in a direction iff a policy selecting it affects that direction; an
// isolated pod admits exactly the union of what the rules of its selecting policies allow.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/ip_addr.hpp"
#include "state/cluster_state.hpp"

namespace npt {

// One end of a connection as the policy hook sees it: an IP and, when the IP is a pod's, the pod.
struct FlowEndpoint {
    IpAddr ip;
    std::optional<uint32_t> pod;  // a non-hostNetwork pod: policies select it and peers match it
    std::optional<uint32_t> host_network_pod;  // the IP is a hostNetwork pod's (i.e. its node's)
};

// A connection after Service DNAT: what every CNI's policy hook sees.
struct Flow {
    FlowEndpoint src;
    FlowEndpoint dst;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;  // destination port
};

// Why a side is allowed without consulting rules.
enum class Exemption : uint8_t {
    None,
    NotIsolated,   // no policy selecting the pod affects this direction
    NoPod,         // this end is not a pod (external IP, node, hostNetwork pod)
    SamePod,       // a pod cannot block traffic to itself
    LocalNode,     // traffic between a pod and the node it runs on is always allowed
};

struct SideVerdict {
    bool isolated = false;
    bool allowed = true;
    Exemption exemption = Exemption::NotIsolated;
    std::vector<uint32_t> policies;    // isolating policies (indexes into state.policies())
    std::vector<uint32_t> allowed_by;  // those with a rule matching the flow
};

struct Verdict {
    SideVerdict egress;
    SideVerdict ingress;
    bool allowed() const { return egress.allowed && ingress.allowed; }
};

// Resolves an IP to the endpoint the policy engine matches against.
FlowEndpoint resolve_endpoint(const ClusterState& state, const IpAddr& ip);

// Evaluates one direction. `out` is overwritten; its vectors keep their capacity, so a caller
// evaluating many flows can reuse one SideVerdict without allocating.
void evaluate_side(const ClusterState& state, const Flow& flow, Direction dir, SideVerdict& out);
void evaluate(const ClusterState& state, const Flow& flow, Verdict& out);

// Building blocks, shared with the explainer.
struct PortMatch {
    bool matches = false;
    bool named_unresolved = false;       // a named port the destination pod does not define
    std::optional<uint16_t> resolved;    // the number a named port resolved to
};
PortMatch match_port(const ClusterState& state, const PolicyPort& port, const Flow& flow);
bool rule_ports_match(const ClusterState& state, const PolicyRule& rule, const Flow& flow);
bool peer_matches(const ClusterState& state, const NetworkPolicy& policy, const Peer& peer, const FlowEndpoint& remote);
bool ip_block_matches(const IpBlock& block, const IpAddr& ip);
bool rule_matches(const ClusterState& state, const NetworkPolicy& policy, const PolicyRule& rule, const Flow& flow,
                  Direction dir);

}  // namespace npt

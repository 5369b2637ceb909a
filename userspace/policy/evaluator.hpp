// The policy semantics as pure functions of a ClusterState: NetworkPolicy (networking.k8s.io/v1) and the
// cluster tiers around it (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy).
//
// A connection is allowed iff the source's egress allows it and the destination's ingress allows
// it. Each direction is decided by the first tier that decides:
//   1. Admin: the cluster policies selecting the pod, by priority, each one's rules in order: the first rule
//      whose peers and ports match decides (Accept, Deny), or a Pass skips the rest of the tier;
//   2. NetworkPolicy: a pod is isolated in a direction iff a policy selecting it affects that direction; an
//      isolated pod admits exactly the union of what the rules of its selecting policies allow;
//   3. Baseline (only for pods no NetworkPolicy isolates): as the Admin tier;
//   4. otherwise the connection is allowed.
// A pod's traffic to its own IP is exempt from the cluster tiers (not through a Service that loops back).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/ip_addr.hpp"
#include "state/cluster_state.hpp"

namespace npt {

// One end of a connection as the policy hook sees it: an IP and, when the IP is a pod's, the pod.
struct FlowEndpoint {
    IpAddr ip;
    std::optional<uint32_t> pod;               // a non-hostNetwork pod: policies select it and peers match it
    std::optional<uint32_t> host_network_pod;  // the IP is a hostNetwork pod's (i.e. its node's)
};

// A connection after Service DNAT: what every CNI's policy hook sees.
struct Flow {
    FlowEndpoint src;
    FlowEndpoint dst;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;         // destination port
    bool via_service = false;  // dst is a Service's endpoint after DNAT (a hairpin is then not exempt)
};

// Why a side is allowed without consulting rules.
enum class Exemption : uint8_t {
    None,
    NotIsolated,  // no policy selecting the pod affects this direction
    NoPod,        // this end is not a pod (external IP, node, hostNetwork pod)
    SamePod,      // a pod cannot block traffic to itself
    LocalNode,    // traffic between a pod and the node it runs on is always allowed
};

// The tier whose policies decided a direction.
enum class DecidingTier : uint8_t { None, Admin, NetworkPolicy, Baseline };
const char* tier_name(DecidingTier t);  // "none", "admin", "networkpolicy", "baseline"

struct TierDecision {
    DecidingTier tier = DecidingTier::None;
    uint32_t policy = kNone;  // Admin/Baseline: index into state.cluster_policies()
    int rule = -1;            // index in the policy's ingress/egress rules
    RuleAction action = RuleAction::Accept;
};

// A cluster policy rule with a domainNames peer that the flow reached in its tier: whether it accepts the
// flow depends on what the name resolves to, which the state does not say.
struct DomainRule {
    uint32_t policy = kNone;
    int rule = -1;
};

struct SideVerdict {
    // NetworkPolicy meaning: whether policies isolate the pod, which, and which allow the flow.
    bool isolated = false;
    Exemption exemption = Exemption::NotIsolated;
    std::vector<uint32_t> policies;    // isolating policies (indexes into state.policies())
    std::vector<uint32_t> allowed_by;  // those with a rule matching the flow
    // The answer across every tier.
    bool allowed = true;
    TierDecision decided_by;
    // Cluster policies selecting the pod in this direction, evaluation order: a view into the state's index.
    std::span<const uint32_t> cluster_policies;
    std::vector<TierDecision> passes;      // the Pass rules that sent the flow to the next tier (action Pass)
    std::vector<uint32_t> tied;            // policies of the decider's tier and priority with a matching rule too
    std::vector<DomainRule> domain_rules;  // domainNames rules reached before the decision
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
    bool named_unresolved = false;     // a named port the destination pod does not define
    std::optional<uint16_t> resolved;  // the number a named port resolved to
};
PortMatch match_port(const ClusterState& state, const PolicyPort& port, const Flow& flow);
bool rule_ports_match(const ClusterState& state, const PolicyRule& rule, const Flow& flow);
bool peer_matches(const ClusterState& state, const NetworkPolicy& policy, const Peer& peer, const FlowEndpoint& remote);
bool ip_block_matches(const IpBlock& block, const IpAddr& ip);
bool rule_matches(const ClusterState& state, const NetworkPolicy& policy, const PolicyRule& rule, const Flow& flow,
                  Direction dir);

// Cluster policy rules. A peer or port entry this model does not know fails closed: it matches nothing in
// an Accept rule and everything in a Deny or Pass rule. A domainNames peer is Undecided.
enum class PeerMatch : uint8_t { No, Yes, Undecided };
bool cluster_port_matches(const ClusterState& state, const ClusterPort& port, RuleAction action, const Flow& flow);
bool cluster_ports_match(const ClusterState& state, const ClusterPolicyRule& rule, const Flow& flow);
PeerMatch cluster_peer_matches(const ClusterState& state, const ClusterPeer& peer, RuleAction action,
                               const FlowEndpoint& remote);
PeerMatch cluster_rule_matches(const ClusterState& state, const ClusterPolicyRule& rule, const Flow& flow,
                               Direction dir);
// Whether the flow is a pod's traffic to its own IP (exempt from the cluster tiers).
bool is_hairpin_to_own_ip(const Flow& flow);

}  // namespace npt

#include "policy/evaluator.hpp"

#include <algorithm>

namespace npt {

FlowEndpoint resolve_endpoint(const ClusterState& state, const IpAddr& ip) {
    FlowEndpoint ep;
    ep.ip = ip;
    ep.pod = state.pod_by_ip(ip);
    return ep;
}

namespace {

const FlowEndpoint& local_end(const Flow& flow, Direction dir) {
    return dir == Direction::Ingress ? flow.dst : flow.src;
}
const FlowEndpoint& remote_end(const Flow& flow, Direction dir) {
    return dir == Direction::Ingress ? flow.src : flow.dst;
}

bool is_local_node_ip(const ClusterState& state, uint32_t pod, const IpAddr& ip) {
    const auto& rec = state.pods()[pod];
    if (rec.host_ip && *rec.host_ip == ip) return true;
    if (rec.node == kNoStr) return false;
    auto node = state.node_by_ip(ip);
    return node && state.nodes()[*node].name == state.str(rec.node);
}

}  // namespace

bool ip_block_matches(const IpBlock& block, const IpAddr& ip) {
    if (!block.cidr.contains(ip)) return false;
    return std::none_of(block.except.begin(), block.except.end(), [&](const Cidr& c) { return c.contains(ip); });
}

PortMatch match_port(const ClusterState& state, const PolicyPort& port, const Flow& flow) {
    PortMatch m;
    if (port.protocol != flow.protocol) return m;
    if (!port.port_name.empty()) {
        // A named port is resolved against the destination pod's container ports (ingress: the
        // selected pod; egress: the peer), by name and protocol.
        if (!flow.dst.pod) {
            m.named_unresolved = true;
            return m;
        }
        for (const auto& cp : state.ports(state.pods()[*flow.dst.pod].ports)) {
            if (cp.protocol == port.protocol && cp.name == port.port_name) {
                m.resolved = cp.port;
                m.matches = cp.port == flow.port;
                return m;
            }
        }
        m.named_unresolved = true;
        return m;
    }
    if (!port.port) {
        m.matches = true;
        return m;
    }
    const uint16_t hi = port.end_port.value_or(*port.port);
    m.matches = flow.port >= *port.port && flow.port <= hi;
    return m;
}

bool rule_ports_match(const ClusterState& state, const PolicyRule& rule, const Flow& flow) {
    if (rule.ports.empty()) return true;
    return std::any_of(rule.ports.begin(), rule.ports.end(),
                       [&](const PolicyPort& p) { return match_port(state, p, flow).matches; });
}

bool peer_matches(const ClusterState& state, const NetworkPolicy& policy, const Peer& peer,
                  const FlowEndpoint& remote) {
    if (peer.ip_block) return ip_block_matches(*peer.ip_block, remote.ip);
    if (!remote.pod) return false;  // selectors select pods only
    const auto& pod = state.pods()[*remote.pod];
    if (peer.namespace_selector) {
        if (!state.selector_matches(*peer.namespace_selector, state.namespaces()[pod.ns].labels)) return false;
    } else if (state.pod_namespace(*remote.pod) != policy.ns) {
        return false;  // a podSelector alone selects pods in the policy's own namespace
    }
    return !peer.pod_selector || state.selector_matches(*peer.pod_selector, pod.labels);
}

bool rule_matches(const ClusterState& state, const NetworkPolicy& policy, const PolicyRule& rule, const Flow& flow,
                  Direction dir) {
    if (!rule_ports_match(state, rule, flow)) return false;
    if (rule.peers.empty()) return true;
    const FlowEndpoint& remote = remote_end(flow, dir);
    return std::any_of(rule.peers.begin(), rule.peers.end(),
                       [&](const Peer& p) { return peer_matches(state, policy, p, remote); });
}

namespace {

// The NetworkPolicy tier: isolation and the union of the isolating policies' rules.
void evaluate_network_policies(const ClusterState& state, const Flow& flow, Direction dir, uint32_t local_pod,
                               SideVerdict& out) {
    const auto isolating = state.isolating_policies(local_pod, dir);
    out.policies.assign(isolating.begin(), isolating.end());
    out.isolated = !out.policies.empty();
    if (!out.isolated) {
        out.exemption = Exemption::NotIsolated;
        return;
    }
    const FlowEndpoint& remote = remote_end(flow, dir);
    if (remote.pod && *remote.pod == local_pod) {
        out.exemption = Exemption::SamePod;
        return;
    }
    if (is_local_node_ip(state, local_pod, remote.ip)) {
        out.exemption = Exemption::LocalNode;
        return;
    }
    out.exemption = Exemption::None;
    for (uint32_t p : out.policies) {
        const auto& pol = state.policies()[p];
        const auto& rules = dir == Direction::Ingress ? pol.ingress : pol.egress;
        if (std::any_of(rules.begin(), rules.end(),
                        [&](const PolicyRule& r) { return rule_matches(state, pol, r, flow, dir); }))
            out.allowed_by.push_back(p);
    }
}

// The cluster rule matchers, inlined into the tier walk (the public wrappers below serve the explainer).
inline bool port_matches_impl(const ClusterState& state, const ClusterPort& port, RuleAction action, const Flow& flow) {
    switch (port.kind) {
        case ClusterPort::Kind::Unknown:
            return action != RuleAction::Accept;
        case ClusterPort::Kind::NamedPort:
            // Resolved on the destination pod, for the flow's protocol.
            if (!flow.dst.pod) return false;
            for (const auto& cp : state.ports(state.pods()[*flow.dst.pod].ports))
                if (cp.name == port.name && cp.protocol == flow.protocol) return cp.port == flow.port;
            return false;
        case ClusterPort::Kind::Port:
            if (port.protocol != flow.protocol) return false;
            if (port.port == 0) return true;
            return flow.port >= port.port && flow.port <= (port.end_port ? port.end_port : port.port);
    }
    return false;
}

[[gnu::always_inline]] inline bool ports_match_impl(const ClusterState& state, const ClusterPolicyRule& rule,
                                                    const Flow& flow) {
    if (rule.ports.empty()) return true;
    return std::any_of(rule.ports.begin(), rule.ports.end(),
                       [&](const ClusterPort& p) { return port_matches_impl(state, p, rule.action, flow); });
}

[[gnu::always_inline]] inline PeerMatch peer_matches_impl(const ClusterState& state, const ClusterPeer& peer,
                                                          RuleAction action, const FlowEndpoint& remote) {
    const auto yes = [](bool b) { return b ? PeerMatch::Yes : PeerMatch::No; };
    switch (peer.kind) {
        case ClusterPeer::Kind::Namespaces:
        case ClusterPeer::Kind::Pods:
            return yes(remote.pod && state.cluster_peer_selects(peer, *remote.pod));
        case ClusterPeer::Kind::Nodes: {
            const auto node = state.node_by_ip(remote.ip);
            return yes(node && state.selector_matches(peer.nodes, state.node_labels(*node)));
        }
        case ClusterPeer::Kind::Networks:
            return yes(std::any_of(peer.networks.begin(), peer.networks.end(),
                                   [&](const Cidr& c) { return c.contains(remote.ip); }));
        case ClusterPeer::Kind::DomainNames:
            return PeerMatch::Undecided;
        case ClusterPeer::Kind::Unknown:
            return yes(action != RuleAction::Accept);
    }
    return PeerMatch::No;
}

[[gnu::always_inline]] inline PeerMatch rule_matches_impl(const ClusterState& state, const ClusterPolicyRule& rule,
                                                          const Flow& flow, Direction dir) {
    if (!ports_match_impl(state, rule, flow)) return PeerMatch::No;
    const FlowEndpoint& remote = remote_end(flow, dir);
    PeerMatch best = PeerMatch::No;
    for (const auto& peer : rule.peers) {
        const PeerMatch m = peer_matches_impl(state, peer, rule.action, remote);
        if (m == PeerMatch::Yes) return m;
        if (m == PeerMatch::Undecided) best = m;
    }
    return best;
}

const std::vector<ClusterPolicyRule>& cluster_rules(const ClusterNetworkPolicy& p, Direction dir) {
    return dir == Direction::Ingress ? p.ingress : p.egress;
}

bool has_matching_rule(const ClusterState& state, const ClusterNetworkPolicy& p, const Flow& flow, Direction dir) {
    const auto& rules = cluster_rules(p, dir);
    return std::any_of(rules.begin(), rules.end(), [&](const ClusterPolicyRule& r) {
        return rule_matches_impl(state, r, flow, dir) == PeerMatch::Yes;
    });
}

// Walks one tier's policies (a run of `out.cluster_policies`) until a rule decides or passes. Returns
// whether a rule decided (Accept or Deny) and records it.
bool walk_tier(const ClusterState& state, const Flow& flow, Direction dir, PolicyTier tier, DecidingTier deciding,
               SideVerdict& out) {
    const auto& all = state.cluster_policies();
    const auto& selecting = out.cluster_policies;
    const FlowEndpoint& remote = remote_end(flow, dir);
    for (size_t i = 0; i < selecting.size(); ++i) {
        const auto& pol = all[selecting[i]];
        if (pol.tier != tier) continue;
        if (!state.cluster_policy_may_match(state.cluster_policy_filter(selecting[i], dir), flow.protocol, flow.port,
                                            remote.pod, remote.ip))
            continue;
        const auto& rules = cluster_rules(pol, dir);
        for (size_t r = 0; r < rules.size(); ++r) {
            const PeerMatch m = rule_matches_impl(state, rules[r], flow, dir);
            if (m == PeerMatch::Undecided) out.domain_rules.push_back({selecting[i], static_cast<int>(r)});
            if (m != PeerMatch::Yes) continue;
            // The API leaves the order of equal priorities to the implementation: name the other candidates.
            for (size_t j = i + 1; j < selecting.size(); ++j) {
                const auto& other = all[selecting[j]];
                if (other.tier != tier || other.priority != pol.priority ||
                    other.kind == ClusterPolicyKind::BaselineAdminNetworkPolicy)
                    break;
                if (has_matching_rule(state, other, flow, dir)) out.tied.push_back(selecting[j]);
            }
            if (rules[r].action == RuleAction::Pass) {
                out.passes.push_back(TierDecision{deciding, selecting[i], static_cast<int>(r), RuleAction::Pass});
                return false;
            }
            out.decided_by = TierDecision{deciding, selecting[i], static_cast<int>(r), rules[r].action};
            out.allowed = rules[r].action == RuleAction::Accept;
            return true;
        }
    }
    return false;
}

}  // namespace

const char* tier_name(DecidingTier t) {
    switch (t) {
        case DecidingTier::None:
            return "none";
        case DecidingTier::Admin:
            return "admin";
        case DecidingTier::NetworkPolicy:
            return "networkpolicy";
        case DecidingTier::Baseline:
            return "baseline";
    }
    return "none";
}

bool is_hairpin_to_own_ip(const Flow& flow) {
    return !flow.via_service && flow.src.pod && flow.dst.pod && *flow.src.pod == *flow.dst.pod;
}

bool cluster_port_matches(const ClusterState& state, const ClusterPort& port, RuleAction action, const Flow& flow) {
    return port_matches_impl(state, port, action, flow);
}

bool cluster_ports_match(const ClusterState& state, const ClusterPolicyRule& rule, const Flow& flow) {
    return ports_match_impl(state, rule, flow);
}

PeerMatch cluster_peer_matches(const ClusterState& state, const ClusterPeer& peer, RuleAction action,
                               const FlowEndpoint& remote) {
    return peer_matches_impl(state, peer, action, remote);
}

PeerMatch cluster_rule_matches(const ClusterState& state, const ClusterPolicyRule& rule, const Flow& flow,
                               Direction dir) {
    return rule_matches_impl(state, rule, flow, dir);
}

void evaluate_side(const ClusterState& state, const Flow& flow, Direction dir, SideVerdict& out) {
    out.policies.clear();
    out.allowed_by.clear();
    out.cluster_policies = {};
    out.passes.clear();
    out.tied.clear();
    out.domain_rules.clear();
    out.isolated = false;
    out.allowed = true;
    out.decided_by = TierDecision{};
    const FlowEndpoint& local = local_end(flow, dir);
    if (!local.pod) {
        out.exemption = Exemption::NoPod;
        return;
    }
    evaluate_network_policies(state, flow, dir, *local.pod, out);
    out.cluster_policies = state.cluster_policies_for(*local.pod, dir);
    // Most flows match no rule of the pod's cluster policies: one test of a tier's union of filters says so.
    const FlowEndpoint& remote = remote_end(flow, dir);
    const bool hairpin = is_hairpin_to_own_ip(flow);
    const auto tier_may_match = [&](PolicyTier tier) {
        const ClusterPolicyFilter* f = state.cluster_tier_filter(*local.pod, dir, tier);
        return f && !hairpin && state.cluster_policy_may_match(*f, flow.protocol, flow.port, remote.pod, remote.ip);
    };
    if (!out.cluster_policies.empty() && tier_may_match(PolicyTier::Admin) &&
        walk_tier(state, flow, dir, PolicyTier::Admin, DecidingTier::Admin, out)) {
        out.exemption = Exemption::None;  // rules were consulted
        return;
    }
    if (out.isolated) {
        out.decided_by.tier = DecidingTier::NetworkPolicy;
        out.allowed = out.exemption != Exemption::None || !out.allowed_by.empty();
        return;
    }
    if (!out.cluster_policies.empty() && tier_may_match(PolicyTier::Baseline) &&
        walk_tier(state, flow, dir, PolicyTier::Baseline, DecidingTier::Baseline, out))
        out.exemption = Exemption::None;
}

void evaluate(const ClusterState& state, const Flow& flow, Verdict& out) {
    evaluate_side(state, flow, Direction::Egress, out.egress);
    evaluate_side(state, flow, Direction::Ingress, out.ingress);
}

}  // namespace npt

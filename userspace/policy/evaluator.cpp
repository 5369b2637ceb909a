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

const FlowEndpoint& local_end(const Flow& flow, Direction dir) { return dir == Direction::Ingress ? flow.dst : flow.src; }
const FlowEndpoint& remote_end(const Flow& flow, Direction dir) { return dir == Direction::Ingress ? flow.src : flow.dst; }

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

bool peer_matches(const ClusterState& state, const NetworkPolicy& policy, const Peer& peer, const FlowEndpoint& remote) {
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

void evaluate_side(const ClusterState& state, const Flow& flow, Direction dir, SideVerdict& out) {
    out.policies.clear();
    out.allowed_by.clear();
    out.isolated = false;
    out.allowed = true;
    const FlowEndpoint& local = local_end(flow, dir);
    if (!local.pod) {
        out.exemption = Exemption::NoPod;
        return;
    }
    const auto isolating = state.isolating_policies(*local.pod, dir);
    out.policies.assign(isolating.begin(), isolating.end());
    out.isolated = !out.policies.empty();
    if (!out.isolated) {
        out.exemption = Exemption::NotIsolated;
        return;
    }
    const FlowEndpoint& remote = remote_end(flow, dir);
    if (remote.pod && *remote.pod == *local.pod) {
        out.exemption = Exemption::SamePod;
        return;
    }
    if (is_local_node_ip(state, *local.pod, remote.ip)) {
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
    out.allowed = !out.allowed_by.empty();
}

void evaluate(const ClusterState& state, const Flow& flow, Verdict& out) {
    evaluate_side(state, flow, Direction::Egress, out.egress);
    evaluate_side(state, flow, Direction::Ingress, out.ingress);
}

}  // namespace npt

#include "policy/explainer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "policy/near_miss.hpp"

namespace npt {

const char* miss_kind_name(MissKind k) {
    switch (k) {
        case MissKind::PodLabels:
            return "pod_labels";
        case MissKind::NamespaceLabels:
            return "namespace_labels";
        case MissKind::PodNamespace:
            return "pod_namespace";
        case MissKind::NotAPod:
            return "not_a_pod";
        case MissKind::IpBlockRange:
            return "ipblock_range";
        case MissKind::IpBlockExcept:
            return "ipblock_except";
        case MissKind::Port:
            return "port";
        case MissKind::NamedPort:
            return "named_port";
        case MissKind::NodeLabels:
            return "node_labels";
        case MissKind::NotANode:
            return "not_a_node";
        case MissKind::DomainName:
            return "domain_name";
        case MissKind::UnknownPeer:
            return "unknown_peer";
    }
    return "unknown";
}

const char* selector_field_name(SelectorField f) {
    switch (f) {
        case SelectorField::PodSelector:
            return "podSelector";
        case SelectorField::NamespaceSelector:
            return "namespaceSelector";
        case SelectorField::PodsPodSelector:
            return "pods.podSelector";
        case SelectorField::PodsNamespaceSelector:
            return "pods.namespaceSelector";
        case SelectorField::Namespaces:
            return "namespaces";
        case SelectorField::Nodes:
            return "nodes";
    }
    return "selector";
}

namespace {

// Costs rank rules by how close they came: a near miss is cheap, a plain mismatch is not.
constexpr int kNearCost = 1;
constexpr int kFarCost = 3;
constexpr int kPortCost = 2;
constexpr int kNamedPortCost = 1;
constexpr int kExceptCost = 1;
constexpr int kNotAPodCost = 4;
constexpr int kRangeCost = 4;

const FlowEndpoint& local_end(const Flow& f, Direction d) {
    return d == Direction::Ingress ? f.dst : f.src;
}
const FlowEndpoint& remote_end(const Flow& f, Direction d) {
    return d == Direction::Ingress ? f.src : f.dst;
}
RemoteEnd remote_of(const ClusterState& s, const FlowEndpoint& ep) {
    RemoteEnd r;
    r.ip = ep.ip;
    if (ep.pod) r.pod = s.pod_id(*ep.pod);
    if (ep.host_network_pod) r.host_network_pod = s.pod_id(*ep.host_network_pod);
    if (auto node = s.node_by_ip(ep.ip)) r.node = s.nodes()[*node].name;
    return r;
}

Miss make_miss(MissKind kind, Direction dir) {
    Miss m;
    m.kind = kind;
    m.direction = dir;
    return m;
}

// Fills `m` with why one requirement fails on a label set; near when the label drifted. `proto` names the selector
// field and whose labels these are.
void requirement_miss(const ClusterState& s, const LabelRequirement& req, LabelSetId set, MissKind kind, Direction dir,
                      LabelMiss&& proto, Miss& m) {
    m.kind = kind;
    m.direction = dir;
    LabelMiss& lm = m.detail.emplace<LabelMiss>(std::move(proto));
    lm.op = req.op;
    lm.key = req.key;
    lm.values = req.values;
    auto have = s.label_value(set, req.key_id);
    auto all_labels = [&] {
        lm.found = LabelMiss::Found::Labels;
        for (const auto& l : s.labels(set)) lm.labels.emplace_back(s.str(l.key), s.str(l.value));
    };
    auto value_elsewhere = [&] {
        for (const auto& l : s.labels(set)) {
            if (l.key == req.key_id) continue;
            const auto v = s.str(l.value);
            if (std::find(req.values.begin(), req.values.end(), v) != req.values.end()) {
                lm.found = LabelMiss::Found::ValueElsewhere;
                lm.label = {std::string(s.str(l.key)), std::string(v)};
                return true;
            }
        }
        return false;
    };
    auto near_key = [&] {
        for (const auto& l : s.labels(set)) {
            if (!is_near_key(req.key, s.str(l.key))) continue;
            const auto v = s.str(l.value);
            const bool value_ok = req.op == LabelRequirement::Op::Exists ||
                                  std::any_of(req.values.begin(), req.values.end(),
                                              [&](const std::string& w) { return w == v || is_near_string(w, v); });
            if (value_ok) {
                lm.found = LabelMiss::Found::SimilarKey;
                lm.label = {std::string(s.str(l.key)), std::string(v)};
                return true;
            }
        }
        return false;
    };
    switch (req.op) {
        case LabelRequirement::Op::In:
            if (have) {
                lm.value = s.str(*have);
                m.near = std::any_of(req.values.begin(), req.values.end(),
                                     [&](const std::string& w) { return is_near_string(w, lm.value); });
            } else if (value_elsewhere() || near_key()) {
                m.near = true;
            } else {
                all_labels();
            }
            break;
        case LabelRequirement::Op::Exists:
            if (near_key())
                m.near = true;
            else
                all_labels();
            break;
        case LabelRequirement::Op::NotIn:
        case LabelRequirement::Op::DoesNotExist:
            if (have) lm.value = s.str(*have);
            break;
    }
}

void selector_misses(const ClusterState& s, const LabelSelector& sel, LabelSetId set, MissKind kind, Direction dir,
                     LabelMiss&& proto, std::vector<Miss>& out) {
    // Each failing requirement's miss starts from a copy of proto; the last takes proto itself.
    out.reserve(out.size() + sel.requirements.size());
    const LabelRequirement* pending = nullptr;
    for (const auto& req : sel.requirements) {
        if (s.requirement_matches(req, set)) continue;
        if (pending) requirement_miss(s, *pending, set, kind, dir, LabelMiss(proto), out.emplace_back());
        pending = &req;
    }
    if (pending) requirement_miss(s, *pending, set, kind, dir, std::move(proto), out.emplace_back());
}

int misses_cost(const std::vector<Miss>& misses) {
    int cost = 0;
    for (const auto& m : misses) {
        switch (m.kind) {
            case MissKind::PodLabels:
            case MissKind::NamespaceLabels:
                cost += m.near ? kNearCost : kFarCost;
                break;
            case MissKind::PodNamespace:
                cost += kFarCost;
                break;
            case MissKind::NotAPod:
                cost += kNotAPodCost;
                break;
            case MissKind::IpBlockRange:
                cost += m.other_family ? kRangeCost + kFarCost : kRangeCost;
                break;
            case MissKind::IpBlockExcept:
                cost += kExceptCost;
                break;
            case MissKind::Port:
                cost += kPortCost;
                break;
            case MissKind::NamedPort:
                cost += kNamedPortCost;
                break;
            case MissKind::NodeLabels:
                cost += m.near ? kNearCost : kFarCost;
                break;
            case MissKind::NotANode:
            case MissKind::UnknownPeer:
                cost += kNotAPodCost;
                break;
            case MissKind::DomainName:
                cost += kFarCost;
                break;
        }
    }
    return cost;
}

std::vector<Miss> peer_misses(const ClusterState& s, const NetworkPolicy& pol, const Peer& peer,
                              const FlowEndpoint& remote, Direction dir) {
    std::vector<Miss> out;
    if (peer.ip_block) {
        const auto& b = *peer.ip_block;
        if (!b.cidr.contains(remote.ip)) {
            Miss m = make_miss(MissKind::IpBlockRange, dir);
            m.other_family = b.cidr.base.family != remote.ip.family;
            m.detail = RangeMiss{false, {b.cidr}, remote.ip};
            out.push_back(std::move(m));
        } else {
            for (const auto& ex : b.except) {
                if (ex.contains(remote.ip)) {
                    Miss m = make_miss(MissKind::IpBlockExcept, dir);
                    m.detail = ExceptMiss{b.cidr, ex, remote.ip};
                    out.push_back(std::move(m));
                    break;
                }
            }
        }
        return out;
    }
    if (!remote.pod) {
        Miss m = make_miss(MissKind::NotAPod, dir);
        m.detail = NotAnEndpointMiss{NotAnEndpointMiss::Peer::Selector, remote_of(s, remote)};
        out.push_back(std::move(m));
        return out;
    }
    const auto& pod = s.pods()[*remote.pod];
    auto fails = [&](const LabelSelector& sel, LabelSetId set) {
        return std::any_of(sel.requirements.begin(), sel.requirements.end(),
                           [&](const LabelRequirement& req) { return !s.requirement_matches(req, set); });
    };
    if (peer.namespace_selector) {
        const auto& ns = s.namespaces()[pod.ns];
        if (fails(*peer.namespace_selector, ns.labels)) {
            LabelMiss proto;
            proto.field = SelectorField::NamespaceSelector;
            proto.subject = LabelMiss::Subject::Namespace;
            proto.name = s.str(ns.name);
            selector_misses(s, *peer.namespace_selector, ns.labels, MissKind::NamespaceLabels, dir, std::move(proto),
                            out);
        }
    } else if (s.pod_namespace(*remote.pod) != pol.ns) {
        Miss m = make_miss(MissKind::PodNamespace, dir);
        m.detail =
            NamespaceScopeMiss{pol.ns, std::string(s.pod_id(*remote.pod)), std::string(s.pod_namespace(*remote.pod))};
        out.push_back(std::move(m));
    }
    if (peer.pod_selector && fails(*peer.pod_selector, pod.labels)) {
        LabelMiss proto;
        proto.field = SelectorField::PodSelector;
        proto.subject = LabelMiss::Subject::Pod;
        proto.name = s.pod_id(*remote.pod);
        selector_misses(s, *peer.pod_selector, pod.labels, MissKind::PodLabels, dir, std::move(proto), out);
    }
    return out;
}

PortEntry port_entry(const ClusterState& s, const PolicyPort& p, const Flow& flow) {
    PortEntry e;
    e.protocol = p.protocol;
    if (!p.port_name.empty()) {
        e.kind = PortEntry::Kind::Named;
        e.name = p.port_name;
        if (auto m = match_port(s, p, flow); m.resolved) e.resolved = *m.resolved;
        return e;
    }
    e.port = p.port.value_or(0);
    e.end_port = p.end_port.value_or(0);
    return e;
}

std::vector<NamedPortMiss::Defined> defined_ports(const ClusterState& s, uint32_t pod) {
    std::vector<NamedPortMiss::Defined> out;
    for (const auto& cp : s.ports(s.pods()[pod].ports))
        if (!cp.name.empty()) out.push_back({cp.name, cp.protocol, cp.port});
    return out;
}

Miss named_port_miss(const ClusterState& s, bool cluster, Protocol protocol, const std::string& name,
                     const Flow& flow) {
    Miss m = make_miss(MissKind::NamedPort, Direction::Ingress);
    NamedPortMiss d;
    d.cluster = cluster;
    d.protocol = protocol;
    d.name = name;
    d.ip = flow.dst.ip;
    if (flow.dst.pod) {
        d.pod = s.pod_id(*flow.dst.pod);
        d.defined = defined_ports(s, *flow.dst.pod);
    }
    m.detail = std::move(d);
    return m;
}

std::vector<Miss> port_misses(const ClusterState& s, const PolicyRule& rule, const Flow& flow, Direction dir) {
    std::vector<Miss> out;
    if (rule_ports_match(s, rule, flow)) return out;
    PortMiss pm{false, {}, flow.protocol, flow.port};
    pm.entries.reserve(rule.ports.size());
    for (const auto& p : rule.ports) {
        pm.entries.push_back(port_entry(s, p, flow));
        if (p.port_name.empty() || !match_port(s, p, flow).named_unresolved) continue;
        out.push_back(named_port_miss(s, false, p.protocol, p.port_name, flow));
        out.back().direction = dir;
    }
    Miss& m = out.emplace_back(make_miss(MissKind::Port, dir));
    m.detail = std::move(pm);
    return out;
}

// The peer of a rule that misses least (the first that matches): its misses join the rule's.
template <typename MissesOf>
void closest_peer(size_t peers, MissesOf&& misses_of, RuleDiagnosis& d) {
    int best_cost = INT32_MAX;
    std::vector<Miss> best;
    for (size_t i = 0; i < peers; ++i) {
        auto misses = misses_of(i);
        const int cost = misses_cost(misses);
        if (cost < best_cost) {
            best_cost = cost;
            best = std::move(misses);
            d.peer = static_cast<int>(i);
        }
        if (cost == 0) break;
    }
    d.peers_match = best.empty();
    d.misses.insert(d.misses.end(), std::make_move_iterator(best.begin()), std::make_move_iterator(best.end()));
}

// The misses of a rule's ports and of each of its peers: what both its diagnosis and its hints read.
struct RuleMisses {
    std::vector<Miss> ports;
    std::vector<std::vector<Miss>> peers;
};

RuleMisses rule_misses(const ClusterState& s, const NetworkPolicy& pol, const PolicyRule& rule, const Flow& flow,
                       Direction dir) {
    RuleMisses m;
    m.ports = port_misses(s, rule, flow, dir);
    const FlowEndpoint& remote = remote_end(flow, dir);
    m.peers.reserve(rule.peers.size());
    for (const auto& peer : rule.peers) m.peers.push_back(peer_misses(s, pol, peer, remote, dir));
    return m;
}

// How close a rule came: its closest peer (the first that misses least) and the cost of its misses, read without
// copying them (most rules are not the closest of their policy).
struct RuleScore {
    int peer = -1;
    bool ports_match = true;
    bool peers_match = true;
    int cost = 0;
};

RuleScore score_rule(const RuleMisses& m) {
    RuleScore sc;
    int best = 0;
    for (size_t i = 0; i < m.peers.size(); ++i) {
        const int cost = misses_cost(m.peers[i]);
        if (sc.peer < 0 || cost < best) {
            best = cost;
            sc.peer = static_cast<int>(i);
        }
        if (cost == 0) break;
    }
    sc.ports_match = m.ports.empty();
    sc.peers_match = sc.peer < 0 || m.peers[sc.peer].empty();
    sc.cost = misses_cost(m.ports) + best;
    return sc;
}

// The rule's diagnosis, taking the misses of its ports and of its closest peer.
RuleDiagnosis diagnose_rule(RuleMisses&& m, const RuleScore& sc, int index) {
    RuleDiagnosis d;
    d.rule = index;
    d.peer = sc.peer;
    d.ports_match = sc.ports_match;
    d.peers_match = sc.peers_match;
    d.cost = sc.cost;
    d.misses = std::move(m.ports);
    if (sc.peer >= 0) {
        auto& peer = m.peers[sc.peer];
        d.misses.insert(d.misses.end(), std::make_move_iterator(peer.begin()), std::make_move_iterator(peer.end()));
    }
    return d;
}

bool has_hint(const std::vector<Hint>& hints, std::string_view code, Direction dir,
              std::optional<std::string_view> policy) {
    return std::any_of(hints.begin(), hints.end(),
                       [&](const Hint& h) { return h.code == code && h.direction == dir && h.policy == policy; });
}

void add_hint(std::vector<Hint>& hints, Hint h) {
    const auto policy = h.policy ? std::optional<std::string_view>(*h.policy) : std::nullopt;
    if (!has_hint(hints, h.code, h.direction, policy)) hints.push_back(std::move(h));
}

// A hint about a miss at rule `rule` (and peer `peer`, -1: its ports) of policy `id`.
void add_miss_hint(std::vector<Hint>& hints, const char* code, Direction dir, const std::string& id, int rule, int peer,
                   const Miss& miss) {
    if (has_hint(hints, code, dir, id)) return;
    Hint& h = hints.emplace_back();
    h.code = code;
    h.direction = dir;
    h.policy = id;
    h.miss = miss;
    h.rule = rule;
    h.peer = peer;
}

// Hints for one rule of a denying policy: each applies only when the rest of the rule matches.
void rule_hints(const ClusterState& s, const std::string& id, const PolicyRule& rule, int index, const Flow& flow,
                Direction dir, const RuleMisses& rule_result, std::vector<Hint>& hints) {
    const FlowEndpoint& remote = remote_end(flow, dir);
    const std::vector<Miss>& port_result = rule_result.ports;
    const bool ports_match = port_result.empty();
    const std::vector<std::vector<Miss>>& peer_results = rule_result.peers;
    const bool peers_match = rule.peers.empty() || std::any_of(peer_results.begin(), peer_results.end(),
                                                               [](const auto& m) { return m.empty(); });

    if (peers_match && !ports_match) {
        // port_misses lists the unresolved named ports first, then the port mismatch.
        for (const auto& m : port_result) {
            if (m.kind == MissKind::NamedPort)
                add_miss_hint(hints, hint::kNamedPortUnresolved, dir, id, index, -1, m);
            else if (m.kind == MissKind::Port)
                add_miss_hint(hints, hint::kPortNotAllowed, dir, id, index, -1, m);
        }
    }
    for (size_t i = 0; i < rule.peers.size(); ++i) {
        const auto& misses = peer_results[i];
        if (misses.empty()) continue;
        const int peer = static_cast<int>(i);
        if (misses.size() == 1 && misses[0].kind == MissKind::IpBlockExcept) {
            add_miss_hint(hints, hint::kIpBlockExcept, dir, id, index, peer, misses[0]);
            continue;
        }
        if (!ports_match) continue;
        const bool all_near = std::all_of(misses.begin(), misses.end(), [](const Miss& m) {
            return m.near && (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels);
        });
        if (all_near) {
            add_miss_hint(hints, hint::kLabelMismatch, dir, id, index, peer, misses[0]);
        } else if (misses.size() == 1 && misses[0].kind == MissKind::PodNamespace) {
            // The podSelector itself matches: the author forgot the namespaceSelector.
            add_miss_hint(hints, hint::kNamespaceScope, dir, id, index, peer, misses[0]);
        } else if (misses.size() == 1 && misses[0].kind == MissKind::NotAPod &&
                   (remote.host_network_pod || s.node_by_ip(remote.ip))) {
            // Selecting the pods of a node or the control plane (hostNetwork) by label is the classic
            // trap: their traffic carries the node's IP, which only an ipBlock matches.
            add_miss_hint(hints, hint::kNotAPod, dir, id, index, peer, misses[0]);
        }
    }
}

// Fills `pd` (a new one) with what `policy` does for the flow on this side.
void diagnose_policy(const ClusterState& s, uint32_t policy, const Flow& flow, Direction dir, std::vector<Hint>& hints,
                     PolicyDiagnosis& pd) {
    const auto& pol = s.policies()[policy];
    const auto& rules = dir == Direction::Ingress ? pol.ingress : pol.egress;
    pd.policy = s.policy_id(policy);
    pd.summary.direction = dir;
    if (rules.empty()) {
        pd.summary.kind = PolicySummary::Kind::NoRules;
        pd.summary.pod = s.pod_id(*local_end(flow, dir).pod);
        return;
    }
    for (size_t i = 0; i < rules.size(); ++i) {
        const int index = static_cast<int>(i);
        auto misses = rule_misses(s, pol, rules[i], flow, dir);
        const RuleScore score = score_rule(misses);
        if (score.ports_match && score.peers_match) {
            pd.allows = true;
            pd.closest = diagnose_rule(std::move(misses), score, index);
            pd.summary.kind = PolicySummary::Kind::Allows;
            return;
        }
        rule_hints(s, pd.policy, rules[i], index, flow, dir, misses, hints);
        if (!pd.closest || score.cost < pd.closest->cost) pd.closest = diagnose_rule(std::move(misses), score, index);
    }
    pd.summary.kind = PolicySummary::Kind::NoRuleMatches;
    pd.summary.rules = rules.size();
}

// ---- Cluster policy tiers ----

ClusterRuleRef cluster_rule_ref(const ClusterState& s, uint32_t policy, Direction dir, int rule) {
    const auto& pol = s.cluster_policies()[policy];
    ClusterRuleRef r;
    r.policy = pol.id();
    r.rule = rule;
    const auto& rules = dir == Direction::Ingress ? pol.ingress : pol.egress;
    if (rule >= 0 && static_cast<size_t>(rule) < rules.size() && !rules[rule].name.empty())
        r.rule_name = rules[rule].name;
    if (pol.kind != ClusterPolicyKind::BaselineAdminNetworkPolicy) r.priority = pol.priority;
    return r;
}

DecidingTier deciding_tier(PolicyTier t) {
    return t == PolicyTier::Admin ? DecidingTier::Admin : DecidingTier::Baseline;
}

std::vector<Miss> cluster_peer_misses(const ClusterState& s, const ClusterPeer& peer, RuleAction action,
                                      const FlowEndpoint& remote, Direction dir) {
    std::vector<Miss> out;
    switch (peer.kind) {
        case ClusterPeer::Kind::Namespaces:
        case ClusterPeer::Kind::Pods: {
            const bool pods = peer.kind == ClusterPeer::Kind::Pods;
            if (!remote.pod) {
                Miss m = make_miss(MissKind::NotAPod, dir);
                m.detail = NotAnEndpointMiss{pods ? NotAnEndpointMiss::Peer::Pods : NotAnEndpointMiss::Peer::Namespaces,
                                             remote_of(s, remote)};
                out.push_back(std::move(m));
                break;
            }
            const auto& pod = s.pods()[*remote.pod];
            const auto& ns = s.namespaces()[pod.ns];
            LabelMiss proto;
            proto.field = pods ? SelectorField::PodsNamespaceSelector : SelectorField::Namespaces;
            proto.subject = LabelMiss::Subject::PodNamespace;
            proto.name = s.str(ns.name);
            proto.pod = s.pod_id(*remote.pod);
            selector_misses(s, peer.pods.namespaces, ns.labels, MissKind::NamespaceLabels, dir, LabelMiss(proto), out);
            if (peer.pods.pods) {
                proto.field = SelectorField::PodsPodSelector;
                proto.subject = LabelMiss::Subject::Pod;
                proto.name = std::move(proto.pod);
                proto.pod.clear();
                selector_misses(s, *peer.pods.pods, pod.labels, MissKind::PodLabels, dir, std::move(proto), out);
            }
            break;
        }
        case ClusterPeer::Kind::Nodes: {
            const auto node = s.node_by_ip(remote.ip);
            if (!node) {
                Miss m = make_miss(MissKind::NotANode, dir);
                m.detail = NotAnEndpointMiss{NotAnEndpointMiss::Peer::Nodes, remote_of(s, remote)};
                out.push_back(std::move(m));
                break;
            }
            LabelMiss proto;
            proto.field = SelectorField::Nodes;
            proto.subject = LabelMiss::Subject::Node;
            proto.name = s.nodes()[*node].name;
            selector_misses(s, peer.nodes, s.node_labels(*node), MissKind::NodeLabels, dir, std::move(proto), out);
            break;
        }
        case ClusterPeer::Kind::Networks: {
            if (std::any_of(peer.networks.begin(), peer.networks.end(),
                            [&](const Cidr& c) { return c.contains(remote.ip); }))
                break;
            Miss m = make_miss(MissKind::IpBlockRange, dir);
            m.other_family = std::all_of(peer.networks.begin(), peer.networks.end(),
                                         [&](const Cidr& c) { return c.base.family != remote.ip.family; });
            m.detail = RangeMiss{true, peer.networks, remote.ip};
            out.push_back(std::move(m));
            break;
        }
        case ClusterPeer::Kind::DomainNames: {
            Miss m = make_miss(MissKind::DomainName, dir);
            m.detail = DomainNameMiss{peer.domain_names, remote.ip};
            out.push_back(std::move(m));
            break;
        }
        case ClusterPeer::Kind::Unknown:
            if (action == RuleAction::Accept) out.push_back(make_miss(MissKind::UnknownPeer, dir));
            break;
    }
    return out;
}

PortEntry cluster_port_entry(const ClusterPort& p) {
    PortEntry e;
    switch (p.kind) {
        case ClusterPort::Kind::Unknown:
            e.kind = PortEntry::Kind::Unknown;
            break;
        case ClusterPort::Kind::NamedPort:
            e.kind = PortEntry::Kind::Named;
            e.name = p.name;
            break;
        case ClusterPort::Kind::Port:
            e.protocol = p.protocol;
            e.port = p.port;
            e.end_port = p.end_port;
            break;
    }
    return e;
}

std::vector<Miss> cluster_port_misses(const ClusterState& s, const ClusterPolicyRule& rule, const Flow& flow,
                                      Direction dir) {
    std::vector<Miss> out;
    if (cluster_ports_match(s, rule, flow)) return out;
    PortMiss pm{true, {}, flow.protocol, flow.port};
    for (const auto& p : rule.ports) {
        pm.entries.push_back(cluster_port_entry(p));
        if (p.kind != ClusterPort::Kind::NamedPort) continue;
        const bool defined =
            flow.dst.pod &&
            std::any_of(s.ports(s.pods()[*flow.dst.pod].ports).begin(), s.ports(s.pods()[*flow.dst.pod].ports).end(),
                        [&](const ContainerPort& cp) { return cp.name == p.name && cp.protocol == flow.protocol; });
        if (defined) continue;
        out.push_back(named_port_miss(s, true, flow.protocol, p.name, flow));
        out.back().direction = dir;
    }
    Miss m = make_miss(MissKind::Port, dir);
    m.detail = std::move(pm);
    out.push_back(std::move(m));
    return out;
}

RuleDiagnosis diagnose_cluster_rule(const ClusterState& s, const ClusterPolicyRule& rule, int index, const Flow& flow,
                                    Direction dir) {
    RuleDiagnosis d;
    d.rule = index;
    if (!rule.name.empty()) d.rule_name = rule.name;
    d.action = rule.action;
    d.misses = cluster_port_misses(s, rule, flow, dir);
    d.ports_match = d.misses.empty();
    const FlowEndpoint& remote = remote_end(flow, dir);
    closest_peer(
        rule.peers.size(), [&](size_t i) { return cluster_peer_misses(s, rule.peers[i], rule.action, remote, dir); },
        d);
    d.cost = misses_cost(d.misses);
    return d;
}

// The near-miss hints of a cluster rule that would have changed the answer: as for NetworkPolicy rules.
void cluster_rule_hints(const ClusterState& s, const std::string& id, const ClusterPolicyRule& rule, int index,
                        const Flow& flow, Direction dir, std::vector<Hint>& hints) {
    const FlowEndpoint& remote = remote_end(flow, dir);
    const std::vector<Miss> port_result = cluster_port_misses(s, rule, flow, dir);
    const bool ports_match = port_result.empty();
    std::vector<std::vector<Miss>> peer_results;
    for (const auto& peer : rule.peers) peer_results.push_back(cluster_peer_misses(s, peer, rule.action, remote, dir));
    const bool peers_match =
        std::any_of(peer_results.begin(), peer_results.end(), [](const auto& m) { return m.empty(); });
    if (peers_match && !ports_match) {
        for (const auto& m : port_result) {
            if (m.kind == MissKind::NamedPort)
                add_miss_hint(hints, hint::kNamedPortUnresolved, dir, id, index, -1, m);
            else if (m.kind == MissKind::Port)
                add_miss_hint(hints, hint::kPortNotAllowed, dir, id, index, -1, m);
        }
    }
    if (!ports_match) return;
    for (size_t i = 0; i < rule.peers.size(); ++i) {
        const auto& misses = peer_results[i];
        if (misses.empty()) continue;
        const bool all_near = std::all_of(misses.begin(), misses.end(), [](const Miss& m) {
            return m.near && (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels ||
                              m.kind == MissKind::NodeLabels);
        });
        if (all_near) {
            add_miss_hint(hints, hint::kLabelMismatch, dir, id, index, static_cast<int>(i), misses[0]);
        } else if (misses.size() == 1 && misses[0].kind == MissKind::NotAPod &&
                   (remote.host_network_pod || s.node_by_ip(remote.ip))) {
            add_miss_hint(hints, hint::kNotAPod, dir, id, index, static_cast<int>(i), misses[0]);
        }
    }
}

// A cluster rule "looks right" for the flow when it misses on one count only and narrowly: the port (its peers
// match), or a label a small edit away or a CIDR of the flow's family (its ports match). Cluster rules are
// exceptions an administrator wrote for some traffic; a rule for other traffic entirely is no near miss.
bool looks_right(const RuleDiagnosis& d) {
    if (d.peers_match) return !d.ports_match;
    if (!d.ports_match) return false;
    const bool near_labels = std::all_of(d.misses.begin(), d.misses.end(), [](const Miss& m) {
        return m.near &&
               (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels || m.kind == MissKind::NodeLabels);
    });
    const bool cidr = d.misses.size() == 1 && d.misses[0].kind == MissKind::IpBlockRange && !d.misses[0].other_family;
    return near_labels || cidr;
}

// The Accept (and, where one would have changed the answer, Pass) rules the flow reached before its tier decided,
// closest first per policy, when they look right: the cluster rules that "should" have let the flow through.
void diagnose_cluster_tiers(const ClusterState& s, const Flow& flow, Direction dir, const SideVerdict& v,
                            SideExplanation& side, std::vector<Hint>& hints) {
    const auto& all = s.cluster_policies();
    // Where evaluation stopped in the Admin tier (its decision or its Pass), and in the Baseline tier.
    std::optional<std::pair<uint32_t, int>> admin_stop, baseline_stop;
    if (v.decided_by.tier == DecidingTier::Admin) admin_stop = std::pair{v.decided_by.policy, v.decided_by.rule};
    if (v.decided_by.tier == DecidingTier::Baseline) baseline_stop = std::pair{v.decided_by.policy, v.decided_by.rule};
    for (const auto& p : v.passes) {
        auto& stop = p.tier == DecidingTier::Admin ? admin_stop : baseline_stop;
        stop = std::pair{p.policy, p.rule};
    }
    const bool baseline_reached = v.decided_by.tier == DecidingTier::Baseline;
    // A Pass helps where the next tier would answer differently: past an Admin Deny, or a Baseline Deny (default
    // allow).
    const bool pass_helps = v.decided_by.action == RuleAction::Deny &&
                            (v.decided_by.tier == DecidingTier::Admin || v.decided_by.tier == DecidingTier::Baseline);
    bool admin_done = false, baseline_done = false;
    for (uint32_t p : v.cluster_policies) {
        const auto& pol = all[p];
        const bool admin = pol.tier == PolicyTier::Admin;
        if (admin ? admin_done : (baseline_done || !baseline_reached)) continue;
        const auto& stop = admin ? admin_stop : baseline_stop;
        const auto& rules = dir == Direction::Ingress ? pol.ingress : pol.egress;
        int end = static_cast<int>(rules.size());
        if (stop && stop->first == p) {
            end = stop->second;
            (admin ? admin_done : baseline_done) = true;
        }
        PolicyDiagnosis pd;
        pd.policy = pol.id();
        pd.tier = deciding_tier(pol.tier);
        size_t candidates = 0;
        for (int r = 0; r < end; ++r) {
            const auto& rule = rules[r];
            if (rule.action == RuleAction::Deny || (rule.action == RuleAction::Pass && !pass_helps)) continue;
            ++candidates;
            auto d = diagnose_cluster_rule(s, rule, r, flow, dir);
            if (!pd.closest || d.cost < pd.closest->cost) pd.closest = std::move(d);
            cluster_rule_hints(s, pd.policy, rule, r, flow, dir, hints);
        }
        if (!pd.closest || !looks_right(*pd.closest)) continue;
        pd.summary.kind = PolicySummary::Kind::ClusterNoRuleMatches;
        pd.summary.direction = dir;
        pd.summary.rules = candidates;
        pd.summary.with_pass = pass_helps;
        if (pol.kind != ClusterPolicyKind::BaselineAdminNetworkPolicy) pd.summary.priority = pol.priority;
        side.cluster_diagnoses.push_back(std::move(pd));
    }
}

// A hint not about a miss: its code, direction and policy, and the detail its words come from.
template <typename Detail>
Hint detail_hint(const char* code, Direction dir, std::optional<std::string> policy, Detail detail) {
    Hint h;
    h.code = code;
    h.direction = dir;
    h.policy = std::move(policy);
    h.detail = std::move(detail);
    return h;
}

void tier_hints(const ClusterState& s, const Flow& flow, Direction dir, const SideVerdict& v,
                const SideExplanation& side, std::vector<Hint>& hints) {
    const std::string pod = side.pod.value_or("?");
    const auto admin_passes = [&] {
        std::vector<ClusterRuleRef> refs;
        for (const auto& p : v.passes)
            if (p.tier == DecidingTier::Admin) refs.push_back(cluster_rule_ref(s, p.policy, dir, p.rule));
        return refs;
    };
    if (!v.allowed && (v.decided_by.tier == DecidingTier::Admin || v.decided_by.tier == DecidingTier::Baseline)) {
        const bool admin = v.decided_by.tier == DecidingTier::Admin;
        TierDenyHint d{v.decided_by.tier, cluster_rule_ref(s, v.decided_by.policy, dir, v.decided_by.rule), pod, {}};
        if (!admin) d.passed = admin_passes();
        std::string policy = d.rule.policy;
        add_hint(hints, detail_hint(admin ? hint::kAdminTierDeny : hint::kBaselineTierDeny, dir, std::move(policy),
                                    std::move(d)));
    }
    if (!v.allowed && v.decided_by.tier == DecidingTier::NetworkPolicy) {
        auto passed = admin_passes();
        if (!passed.empty())
            add_hint(hints,
                     detail_hint(hint::kAdminTierPassToDeny, dir, s.cluster_policies()[v.passes.front().policy].id(),
                                 PassToDenyHint{std::move(passed), pod, side.policies}));
    }
    if (!v.tied.empty()) {
        // The rule that matched first: the decision, or the Pass that ended its tier.
        std::optional<TierDecision> first;
        if (v.decided_by.tier == DecidingTier::Admin || v.decided_by.tier == DecidingTier::Baseline)
            first = v.decided_by;
        for (const auto& p : v.passes)
            if (!first || (first->tier == DecidingTier::Baseline && p.tier == DecidingTier::Admin)) first = p;
        if (first) {
            const auto& pol = s.cluster_policies()[first->policy];
            PriorityTieHint d{pol.id(), {}, pol.priority, first->tier, pod, first->action};
            for (uint32_t t : v.tied) d.others.push_back(s.cluster_policies()[t].id());
            add_hint(hints, detail_hint(hint::kClusterPolicyPriorityTie, dir, pol.id(), std::move(d)));
        }
    }
    if (!v.allowed && !v.domain_rules.empty()) {
        const auto& d = v.domain_rules.front();
        const auto& pol = s.cluster_policies()[d.policy];
        const auto& rule = (dir == Direction::Ingress ? pol.ingress : pol.egress)[d.rule];
        DomainNameHint h{
            deciding_tier(pol.tier), cluster_rule_ref(s, d.policy, dir, d.rule), {}, remote_end(flow, dir).ip};
        for (const auto& peer : rule.peers)
            for (const auto& n : peer.domain_names) h.names.push_back(n);
        std::string policy = h.rule.policy;
        add_hint(hints, detail_hint(hint::kDomainNameUndecided, dir, std::move(policy), std::move(h)));
    }
}

// Fills `side` (a new one) for one direction. `v` is the side's evaluation, overwritten (a caller's, to reuse its
// vectors).
void explain_side(const ClusterState& s, const Flow& flow, Direction dir, SideVerdict& v, std::vector<Hint>& hints,
                  SideExplanation& side) {
    evaluate_side(s, flow, dir, v);
    side.direction = dir;
    const FlowEndpoint& local = local_end(flow, dir);
    if (local.pod) side.pod = s.pod_id(*local.pod);
    side.isolated = v.isolated;
    side.allowed = v.allowed;
    side.exemption = v.exemption;
    side.policies.reserve(v.policies.size());
    for (uint32_t p : v.policies) side.policies.push_back(s.policy_id(p));
    side.allowed_by.reserve(v.allowed_by.size());
    for (uint32_t p : v.allowed_by) side.allowed_by.push_back(s.policy_id(p));
    side.decided_by.tier = v.decided_by.tier;
    if (v.decided_by.tier == DecidingTier::Admin || v.decided_by.tier == DecidingTier::Baseline) {
        side.decided_by.rule = cluster_rule_ref(s, v.decided_by.policy, dir, v.decided_by.rule);
        side.decided_by.action = v.decided_by.action;
    }
    for (uint32_t p : v.cluster_policies) side.cluster_policies.push_back(s.cluster_policies()[p].id());
    for (const auto& p : v.passes) side.passed_by.push_back(cluster_rule_ref(s, p.policy, dir, p.rule));
    if (!v.cluster_policies.empty()) tier_hints(s, flow, dir, v, side, hints);
    if (v.allowed) return;

    if (!v.cluster_policies.empty()) diagnose_cluster_tiers(s, flow, dir, v, side, hints);
    if (v.decided_by.tier == DecidingTier::NetworkPolicy) {
        side.diagnoses.reserve(v.policies.size());
        for (uint32_t p : v.policies) diagnose_policy(s, p, flow, dir, hints, side.diagnoses.emplace_back());
        const bool all_default_deny = std::all_of(v.policies.begin(), v.policies.end(), [&](uint32_t p) {
            const auto& pol = s.policies()[p];
            return (dir == Direction::Ingress ? pol.ingress : pol.egress).empty();
        });
        if (all_default_deny) {
            add_hint(hints, detail_hint(hint::kDefaultDeny, dir,
                                        side.policies.size() == 1 ? std::optional(side.policies[0]) : std::nullopt,
                                        DefaultDenyHint{side.pod.value_or("?"), side.policies}));
        }
    }
    if (dir == Direction::Egress && flow.port == 53 &&
        (flow.protocol == Protocol::UDP || flow.protocol == Protocol::TCP)) {
        std::optional<std::string> about;
        DnsHint d{flow.protocol, flow.dst.ip, std::nullopt, std::nullopt, side.pod.value_or("?")};
        if (side.decided_by.rule) {
            about = side.decided_by.rule->policy;
            d.tier = side.decided_by.tier;
            d.rule = side.decided_by.rule;
        } else {
            for (const auto& diag : side.diagnoses)
                if (diag.closest && (!about || diag.closest->cost == 0)) about = diag.policy;
            if (!about && side.policies.size() == 1) about = side.policies[0];
        }
        add_hint(hints, detail_hint(hint::kDnsEgressBlocked, dir, about, std::move(d)));
    }
}

EndpointRef endpoint_ref(const ClusterState& s, const FlowEndpoint& ep) {
    EndpointRef r;
    r.ip = ep.ip;
    if (ep.pod) r.pod = s.pod_id(*ep.pod);
    if (ep.host_network_pod) {
        r.pod = s.pod_id(*ep.host_network_pod);
        r.host_network = true;
    }
    if (auto n = s.node_by_ip(ep.ip)) r.node = s.nodes()[*n].name;
    return r;
}

std::optional<Note> exemption_note(const Flow& flow, const SideExplanation& side) {
    switch (side.exemption) {
        case Exemption::SamePod:
            return Note{Exemption::SamePod, side.direction, {}, {}};
        case Exemption::LocalNode:
            return Note{Exemption::LocalNode, side.direction, side.pod.value_or("?"),
                        remote_end(flow, side.direction).ip};
        default:
            return std::nullopt;
    }
}

struct ServicePick {
    uint32_t service;
    const ServicePort* port = nullptr;
};

std::optional<uint32_t> find_service(const ClusterState& s, const IpAddr& ip, uint16_t port, Protocol proto,
                                     bool* via_node_port) {
    *via_node_port = false;
    if (auto svc = s.service_by_ip(ip)) return svc;
    if (!s.node_by_ip(ip)) return std::nullopt;
    for (uint32_t i = 0; i < s.services().size(); ++i)
        for (const auto& p : s.services()[i].ports)
            if (p.node_port == port && p.protocol == proto) {
                *via_node_port = true;
                return i;
            }
    return std::nullopt;
}

void merge_sorted_unique(std::vector<std::string>& into, const std::vector<std::string>& from) {
    into.insert(into.end(), from.begin(), from.end());
    std::sort(into.begin(), into.end());
    into.erase(std::unique(into.begin(), into.end()), into.end());
}

}  // namespace

Explanation explain_resolved(const ClusterState& s, const Flow& flow, std::string from_text, std::string to_text) {
    Explanation e;
    e.from = std::move(from_text);
    e.to = std::move(to_text);
    e.port = flow.port;
    e.protocol = flow.protocol;
    e.src = endpoint_ref(s, flow.src);
    e.dst = endpoint_ref(s, flow.dst);
    e.dst.port = flow.port;
    SideVerdict verdict;  // both sides' evaluation, in the same vectors
    explain_side(s, flow, Direction::Egress, verdict, e.hints, e.egress);
    explain_side(s, flow, Direction::Ingress, verdict, e.hints, e.ingress);
    for (const auto* side : {&e.egress, &e.ingress})
        if (auto note = exemption_note(flow, *side)) e.notes.push_back(std::move(*note));
    e.verdict = e.egress.allowed && e.ingress.allowed ? "allowed" : "denied";
    return e;
}

namespace {

Explanation explain_from(const ClusterState& s, const FlowEndpoint& src, const IpAddr& dst_ip, Protocol protocol,
                         uint16_t port, const std::string& from_text, const std::string& to_text) {
    const IpAddr& src_ip = src.ip;
    Flow flow;
    flow.src = src;
    flow.dst = resolve_endpoint(s, dst_ip);
    flow.protocol = protocol;
    flow.port = port;
    bool via_node_port = false;
    const auto svc_idx = flow.dst.pod ? std::nullopt : find_service(s, dst_ip, port, protocol, &via_node_port);
    if (!svc_idx) return explain_resolved(s, flow, from_text, to_text);

    const auto& svc = s.services()[*svc_idx];
    const ServicePort* sp = nullptr;
    for (const auto& p : svc.ports)
        if ((via_node_port ? p.node_port : p.port) == port && p.protocol == protocol) sp = &p;

    // The question as asked (to the VIP), evaluated as if no DNAT happened, is the frame; the
    // verdict comes from the endpoints.
    Explanation top = explain_resolved(s, flow, from_text, to_text);
    top.hints.clear();
    top.dst.service = svc.id();
    ServiceExplanation se;
    se.name = svc.id();
    se.port = port;
    if (!sp) {
        ServicePortHint d{svc.id(), protocol, port, {}};
        for (const auto& p : svc.ports) d.ports.emplace_back(p.protocol, via_node_port ? p.node_port : p.port);
        top.verdict = "denied";
        top.hints.push_back(detail_hint(hint::kServicePortUnknown, Direction::Egress, std::nullopt, std::move(d)));
        top.service.push_back(std::move(se));
        return top;
    }
    se.port_name = sp->name;
    const auto endpoints = s.service_endpoints(*svc_idx, *sp, src_ip.family);
    if (endpoints.empty()) {
        top.verdict = "denied";
        top.hints.push_back(detail_hint(hint::kServiceNoEndpoints, Direction::Egress, std::nullopt,
                                        ServiceNoEndpointsHint{svc.id(), src_ip.is_v4(), protocol, port}));
        top.service.push_back(std::move(se));
        return top;
    }

    top.egress = SideExplanation{};
    top.egress.direction = Direction::Egress;
    top.ingress = SideExplanation{};
    top.ingress.direction = Direction::Ingress;
    top.notes.clear();
    size_t allowed = 0;
    bool first = true;
    std::vector<std::pair<IpAddr, uint16_t>> endpoint_addrs;
    for (const auto& ep : endpoints) {
        Flow ef = flow;
        ef.dst = FlowEndpoint{ep.ip, ep.pod, std::nullopt};
        ef.via_service = true;
        if (ep.pod && s.pods()[*ep.pod].host_network) {
            ef.dst.host_network_pod = ep.pod;
            ef.dst.pod.reset();
        }
        ef.port = ep.port;
        const std::string to = ef.dst.pod ? std::string(s.pod_id(*ef.dst.pod)) : ep.ip.str();
        endpoint_addrs.emplace_back(ep.ip, ep.port);
        Explanation ee = explain_resolved(s, ef, from_text, to);
        if (ee.allowed()) ++allowed;
        for (const auto& [agg, one] : {std::pair{&top.egress, &ee.egress}, std::pair{&top.ingress, &ee.ingress}}) {
            // The decision shown for the Service: the first endpoint's, or the first denying one's.
            if (first || (agg->allowed && !one->allowed)) agg->decided_by = one->decided_by;
            agg->isolated = agg->isolated || one->isolated;
            agg->allowed = first ? one->allowed : (agg->allowed && one->allowed);
            merge_sorted_unique(agg->policies, one->policies);
            merge_sorted_unique(agg->allowed_by, one->allowed_by);
            for (const auto& c : one->cluster_policies)
                if (std::find(agg->cluster_policies.begin(), agg->cluster_policies.end(), c) ==
                    agg->cluster_policies.end())
                    agg->cluster_policies.push_back(c);
            for (const auto& p : one->passed_by)
                if (std::none_of(agg->passed_by.begin(), agg->passed_by.end(),
                                 [&](const ClusterRuleRef& x) { return x.policy == p.policy && x.rule == p.rule; }))
                    agg->passed_by.push_back(p);
        }
        top.egress.pod = ee.egress.pod;
        top.egress.exemption = ee.egress.exemption;
        for (const auto& h : ee.hints) add_hint(top.hints, h);
        for (const auto& n : ee.notes)
            if (std::find(top.notes.begin(), top.notes.end(), n) == top.notes.end()) top.notes.push_back(n);
        se.endpoints.push_back(std::move(ee));
        first = false;
    }
    top.ingress.exemption = top.ingress.isolated ? Exemption::None : Exemption::NotIsolated;
    top.verdict = allowed == endpoints.size() ? "allowed" : allowed == 0 ? "denied" : "partial";
    if (!top.allowed()) {
        // Find the rule that "looks right": one written for the VIP (its IP or its Service port).
        std::optional<std::string> about;
        if (flow.src.pod) {
            for (uint32_t p : s.isolating_policies(*flow.src.pod, Direction::Egress)) {
                const auto& pol = s.policies()[p];
                for (const auto& rule : pol.egress) {
                    const bool names_vip = std::any_of(rule.peers.begin(), rule.peers.end(), [&](const Peer& peer) {
                        return peer.ip_block && peer.ip_block->cidr.contains(dst_ip);
                    });
                    const bool names_port =
                        std::any_of(rule.ports.begin(), rule.ports.end(), [&](const PolicyPort& pp) {
                            return pp.port && *pp.port == port && pp.protocol == protocol && sp->target_port != port;
                        });
                    if ((names_vip || names_port) && !about) about = pol.id();
                }
            }
        }
        std::vector<std::string> targets;
        for (const auto& ep : se.endpoints) targets.push_back(ep.dst.port ? std::to_string(ep.dst.port) : "?");
        std::sort(targets.begin(), targets.end());
        targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
        const Hint dnat =
            detail_hint(hint::kServiceVipDnat, Direction::Egress, about,
                        ServiceDnatHint{dst_ip, port, svc.id(), std::move(endpoint_addrs), std::move(targets)});
        add_hint(top.hints, dnat);
        // Each endpoint result stands alone (scripts read them one by one): the denied ones carry it too.
        for (auto& ep : se.endpoints)
            if (!ep.allowed()) add_hint(ep.hints, dnat);
    }
    top.service.push_back(std::move(se));
    return top;
}

}  // namespace

Explanation explain_flow(const ClusterState& s, const IpAddr& src_ip, const IpAddr& dst_ip, Protocol protocol,
                         uint16_t port, const std::string& from_text, const std::string& to_text) {
    return explain_from(s, resolve_endpoint(s, src_ip), dst_ip, protocol, port, from_text, to_text);
}

Result<Explanation> explain_query(const ClusterState& s, ExplainQuery q) {
    struct Side {
        std::optional<uint32_t> pod;
        std::optional<IpAddr> ip;
    };
    auto parse_side = [&](const std::string& text, const char* what) -> Result<Side> {
        if (auto ip = IpAddr::parse(text)) return Side{std::nullopt, *ip};
        const auto slash = text.find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
            text.find('/', slash + 1) != std::string::npos)
            return Error{fmt::format("--{} {:?}: expected NAMESPACE/POD or an IP address", what, text)};
        const auto ns = std::string_view(text).substr(0, slash), name = std::string_view(text).substr(slash + 1);
        auto pod = s.find_pod(ns, name);
        if (!pod) {
            if (!s.find_namespace(ns))
                return Error{fmt::format("--{} {}: namespace {:?} is not in the cluster state", what, text, ns)};
            return Error{fmt::format("--{} {}: no pod {:?} in namespace {} (pods that finished are not kept)", what,
                                     text, name, ns)};
        }
        return Side{pod, std::nullopt};
    };
    auto from = parse_side(q.from, "from");
    if (!from) return from.error();
    auto to = parse_side(q.to, "to");
    if (!to) return to.error();

    // The address family: an IP literal decides; otherwise IPv4 when both pods have one.
    std::optional<IpFamily> family = q.family;
    for (const auto* side : {&*from, &*to}) {
        if (side->ip) {
            if (family && *family != side->ip->family)
                return Error{
                    fmt::format("--from and --to are of different address families ({} and {})", q.from, q.to)};
            family = side->ip->family;
        }
    }
    if (!family) {
        const auto& a = s.pods()[*from->pod];
        const auto& b = s.pods()[*to->pod];
        if (a.ip4 && b.ip4)
            family = IpFamily::V4;
        else if (a.ip6 && b.ip6)
            family = IpFamily::V6;
        else
            family = IpFamily::V4;
    }
    auto ip_of = [&](const Side& side, const std::string& text) -> Result<IpAddr> {
        if (side.ip) return *side.ip;
        const auto& ip = s.pods()[*side.pod].ip(*family);
        if (!ip)
            return Error{
                fmt::format("pod {} has no {} address in the cluster state (not scheduled yet, or single-stack)", text,
                            *family == IpFamily::V4 ? "IPv4" : "IPv6")};
        return *ip;
    };
    auto src_ip = ip_of(*from, q.from);
    if (!src_ip) return src_ip.error();
    auto dst_ip = ip_of(*to, q.to);
    if (!dst_ip) return dst_ip.error();

    if (to->pod || from->pod) {
        // Named pods are taken as named, even when their IP is shared (hostNetwork pods).
        Flow flow;
        flow.src = from->pod ? FlowEndpoint{*src_ip, from->pod, std::nullopt} : resolve_endpoint(s, *src_ip);
        flow.dst = to->pod ? FlowEndpoint{*dst_ip, to->pod, std::nullopt} : resolve_endpoint(s, *dst_ip);
        for (auto* ep : {&flow.src, &flow.dst}) {
            if (ep->pod && s.pods()[*ep->pod].host_network) {
                ep->host_network_pod = ep->pod;
                ep->pod.reset();
            }
        }
        flow.protocol = q.protocol;
        flow.port = q.port;
        if (!to->pod) return explain_from(s, flow.src, *dst_ip, q.protocol, q.port, q.from, q.to);
        return explain_resolved(s, flow, std::move(q.from), std::move(q.to));
    }
    return explain_flow(s, *src_ip, *dst_ip, q.protocol, q.port, q.from, q.to);
}

}  // namespace npt

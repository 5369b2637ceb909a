#include "policy/explainer.hpp"

#include <fmt/format.h>

#include <algorithm>
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
const char* remote_role(Direction d) {
    return d == Direction::Ingress ? "source" : "destination";
}
const char* peers_field(Direction d) {
    return d == Direction::Ingress ? "from" : "to";
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

std::string requirement_text(const LabelRequirement& r) {
    switch (r.op) {
        case LabelRequirement::Op::In:
            if (r.values.size() == 1) return r.key + "=" + r.values[0];
            return r.key + " in (" + join(r.values, ", ") + ")";
        case LabelRequirement::Op::NotIn:
            return r.key + " notin (" + join(r.values, ", ") + ")";
        case LabelRequirement::Op::Exists:
            return r.key + " (exists)";
        case LabelRequirement::Op::DoesNotExist:
            return "no " + r.key + " label";
    }
    return r.key;
}

std::string labels_text(const ClusterState& s, LabelSetId set) {
    std::vector<std::string> parts;
    for (const auto& l : s.labels(set)) parts.push_back(fmt::format("{}={}", s.str(l.key), s.str(l.value)));
    std::sort(parts.begin(), parts.end());
    return parts.empty() ? "no labels" : join(parts, ", ");
}

std::string endpoint_text(const ClusterState& s, const FlowEndpoint& ep) {
    if (ep.pod) return "pod " + s.pod_id(*ep.pod);
    if (ep.host_network_pod) return fmt::format("{} (hostNetwork pod {})", ep.ip.str(), s.pod_id(*ep.host_network_pod));
    if (s.node_by_ip(ep.ip)) return fmt::format("{} (node {})", ep.ip.str(), s.nodes()[*s.node_by_ip(ep.ip)].name);
    return ep.ip.str();
}

// Explains why one requirement fails on a label set; near when the label drifted.
Miss requirement_miss(const ClusterState& s, const LabelRequirement& req, LabelSetId set, MissKind kind,
                      const std::string& subject, const std::string& selector_name) {
    Miss m;
    m.kind = kind;
    auto have = s.label_value(set, req.key_id);
    const std::string need = requirement_text(req);
    auto find_value_elsewhere = [&]() -> std::optional<std::string> {
        for (const auto& l : s.labels(set)) {
            if (l.key == req.key_id) continue;
            const auto v = s.str(l.value);
            if (std::find(req.values.begin(), req.values.end(), v) != req.values.end())
                return fmt::format("{}={}", s.str(l.key), v);
        }
        return std::nullopt;
    };
    auto find_near_key = [&]() -> std::optional<std::string> {
        for (const auto& l : s.labels(set)) {
            if (!is_near_key(req.key, s.str(l.key))) continue;
            const auto v = s.str(l.value);
            const bool value_ok = req.op == LabelRequirement::Op::Exists ||
                                  std::any_of(req.values.begin(), req.values.end(),
                                              [&](const std::string& w) { return w == v || is_near_string(w, v); });
            if (value_ok) return fmt::format("{}={}", s.str(l.key), v);
        }
        return std::nullopt;
    };
    switch (req.op) {
        case LabelRequirement::Op::In:
            if (have) {
                const auto v = s.str(*have);
                m.near = std::any_of(req.values.begin(), req.values.end(),
                                     [&](const std::string& w) { return is_near_string(w, v); });
                m.message = fmt::format("{} needs {}; {} has {}={}{}", selector_name, need, subject, req.key, v,
                                        m.near ? " (a small edit away)" : "");
            } else if (auto other = find_value_elsewhere()) {
                m.near = true;
                m.message = fmt::format("{} needs {}; {} has no {} label but carries the value as {}", selector_name,
                                        need, subject, req.key, *other);
            } else if (auto other_key = find_near_key()) {
                m.near = true;
                m.message =
                    fmt::format("{} needs {}; {} has {} (a similar key)", selector_name, need, subject, *other_key);
            } else {
                m.message = fmt::format("{} needs {}; {} has no {} label ({})", selector_name, need, subject, req.key,
                                        labels_text(s, set));
            }
            break;
        case LabelRequirement::Op::NotIn:
            m.message = fmt::format("{} needs {}; {} has {}={}", selector_name, need, subject, req.key,
                                    have ? std::string(s.str(*have)) : std::string());
            break;
        case LabelRequirement::Op::Exists:
            if (auto other_key = find_near_key()) {
                m.near = true;
                m.message = fmt::format("{} needs label {}; {} has {} (a similar key)", selector_name, req.key, subject,
                                        *other_key);
            } else {
                m.message =
                    fmt::format("{} needs label {}; {} has {}", selector_name, req.key, subject, labels_text(s, set));
            }
            break;
        case LabelRequirement::Op::DoesNotExist:
            m.message = fmt::format("{} needs {}; {} has {}={}", selector_name, need, subject, req.key,
                                    have ? std::string(s.str(*have)) : std::string());
            break;
    }
    return m;
}

void selector_misses(const ClusterState& s, const LabelSelector& sel, LabelSetId set, MissKind kind,
                     const std::string& subject, const std::string& selector_name, std::vector<Miss>& out) {
    for (const auto& req : sel.requirements)
        if (!s.requirement_matches(req, set))
            out.push_back(requirement_miss(s, req, set, kind, subject, selector_name));
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
    const char* role = remote_role(dir);
    if (peer.ip_block) {
        const auto& b = *peer.ip_block;
        if (!b.cidr.contains(remote.ip)) {
            const bool other_family = b.cidr.base.family != remote.ip.family;
            out.push_back({MissKind::IpBlockRange, false,
                           fmt::format("ipBlock {} does not contain {} {}", b.cidr.str(), role, remote.ip.str()),
                           other_family});
        } else {
            for (const auto& ex : b.except) {
                if (ex.contains(remote.ip)) {
                    out.push_back({MissKind::IpBlockExcept, false,
                                   fmt::format("{} {} is inside ipBlock {} but excluded by its except {}", role,
                                               remote.ip.str(), b.cidr.str(), ex.str())});
                    break;
                }
            }
        }
        return out;
    }
    if (!remote.pod) {
        out.push_back({MissKind::NotAPod, false,
                       fmt::format("pod/namespace selectors match pods only; {} {} is not a pod IP (only an ipBlock "
                                   "can allow it)",
                                   role, endpoint_text(s, remote))});
        return out;
    }
    const auto& pod = s.pods()[*remote.pod];
    // Most peers are tried and rejected or matched without a miss naming the pod: its text is built on the first.
    std::string pod_subject_text;
    auto pod_subject = [&]() -> const std::string& {
        if (pod_subject_text.empty()) pod_subject_text = fmt::format("{} pod {}", role, s.pod_id(*remote.pod));
        return pod_subject_text;
    };
    auto fails = [&](const LabelSelector& sel, LabelSetId set) {
        return std::any_of(sel.requirements.begin(), sel.requirements.end(),
                           [&](const LabelRequirement& req) { return !s.requirement_matches(req, set); });
    };
    if (peer.namespace_selector) {
        const auto& ns = s.namespaces()[pod.ns];
        if (fails(*peer.namespace_selector, ns.labels))
            selector_misses(s, *peer.namespace_selector, ns.labels, MissKind::NamespaceLabels,
                            fmt::format("its namespace {}", s.str(ns.name)), "namespaceSelector", out);
    } else if (s.pod_namespace(*remote.pod) != pol.ns) {
        out.push_back({MissKind::PodNamespace, false,
                       fmt::format("a podSelector without namespaceSelector selects only pods in namespace {}; {} is "
                                   "in namespace {}",
                                   pol.ns, pod_subject(), s.pod_namespace(*remote.pod))});
    }
    if (peer.pod_selector && fails(*peer.pod_selector, pod.labels))
        selector_misses(s, *peer.pod_selector, pod.labels, MissKind::PodLabels, pod_subject(), "podSelector", out);
    return out;
}

std::string port_entry_text(const ClusterState& s, const PolicyPort& p, const Flow& flow) {
    const char* proto = protocol_name(p.protocol);
    if (!p.port_name.empty()) {
        auto m = match_port(s, p, flow);
        if (m.resolved) return fmt::format("{}/{} (= {})", proto, p.port_name, *m.resolved);
        return fmt::format("{}/{}", proto, p.port_name);
    }
    if (!p.port) return fmt::format("{} (all ports)", proto);
    if (p.end_port) return fmt::format("{}/{}-{}", proto, *p.port, *p.end_port);
    return fmt::format("{}/{}", proto, *p.port);
}

std::string defined_ports_text(const ClusterState& s, uint32_t pod) {
    std::vector<std::string> parts;
    for (const auto& cp : s.ports(s.pods()[pod].ports)) {
        if (cp.name.empty()) continue;
        parts.push_back(fmt::format("{}={}/{}", cp.name, protocol_name(cp.protocol), cp.port));
    }
    return parts.empty() ? "no named ports" : join(parts, ", ");
}

std::vector<Miss> port_misses(const ClusterState& s, const PolicyRule& rule, const Flow& flow) {
    std::vector<Miss> out;
    if (rule_ports_match(s, rule, flow)) return out;
    std::vector<std::string> entries;
    for (const auto& p : rule.ports) entries.push_back(port_entry_text(s, p, flow));
    for (const auto& p : rule.ports) {
        if (p.port_name.empty()) continue;
        auto m = match_port(s, p, flow);
        if (!m.named_unresolved) continue;
        std::string where = flow.dst.pod ? fmt::format("destination pod {} ({})", s.pod_id(*flow.dst.pod),
                                                       defined_ports_text(s, *flow.dst.pod))
                                         : fmt::format("destination {} is not a pod", flow.dst.ip.str());
        out.push_back(
            {MissKind::NamedPort, false,
             fmt::format("named port {}/{} is not defined by {}", protocol_name(p.protocol), p.port_name, where)});
    }
    out.push_back({MissKind::Port, false,
                   fmt::format("ports allow {}; the connection is {}/{}", join(entries, ", "),
                               protocol_name(flow.protocol), flow.port)});
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
    d.misses.insert(d.misses.end(), best.begin(), best.end());
}

// The misses of a rule's ports and of each of its peers: what both its diagnosis and its hints read.
struct RuleMisses {
    std::vector<Miss> ports;
    std::vector<std::vector<Miss>> peers;
};

RuleMisses rule_misses(const ClusterState& s, const NetworkPolicy& pol, const PolicyRule& rule, const Flow& flow,
                       Direction dir) {
    RuleMisses m;
    m.ports = port_misses(s, rule, flow);
    const FlowEndpoint& remote = remote_end(flow, dir);
    m.peers.reserve(rule.peers.size());
    for (const auto& peer : rule.peers) m.peers.push_back(peer_misses(s, pol, peer, remote, dir));
    return m;
}

RuleDiagnosis diagnose_rule(const RuleMisses& m, int index) {
    RuleDiagnosis d;
    d.rule = index;
    d.misses = m.ports;
    d.ports_match = d.misses.empty();
    if (m.peers.empty()) {
        d.peers_match = true;
    } else {
        closest_peer(
            m.peers.size(), [&](size_t i) { return m.peers[i]; }, d);
    }
    d.cost = misses_cost(d.misses);
    return d;
}

void add_hint(std::vector<Hint>& hints, Hint h) {
    for (const auto& existing : hints)
        if (existing.code == h.code && existing.direction == h.direction && existing.policy == h.policy) return;
    hints.push_back(std::move(h));
}

std::string rule_ref(Direction dir, int rule) {
    return fmt::format("spec.{}[{}]", direction_name(dir), rule);
}

// Hints for one rule of a denying policy: each applies only when the rest of the rule matches.
void rule_hints(const ClusterState& s, const NetworkPolicy& pol, const PolicyRule& rule, int index, const Flow& flow,
                Direction dir, const RuleMisses& rule_result, std::vector<Hint>& hints) {
    const std::string id = pol.id();
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
                add_hint(hints, {hint::kNamedPortUnresolved, dir, id,
                                 fmt::format("{} {}: {}", id, rule_ref(dir, index), m.message)});
            else if (m.kind == MissKind::Port)
                add_hint(hints, {hint::kPortNotAllowed, dir, id,
                                 fmt::format("{} {} matches the {} but not the port: {}", id, rule_ref(dir, index),
                                             remote_role(dir), m.message)});
        }
    }
    for (size_t i = 0; i < rule.peers.size(); ++i) {
        const auto& misses = peer_results[i];
        if (misses.empty()) continue;
        const std::string where = fmt::format("{} {}.{}[{}]", id, rule_ref(dir, index), peers_field(dir), i);
        if (misses.size() == 1 && misses[0].kind == MissKind::IpBlockExcept) {
            add_hint(hints, {hint::kIpBlockExcept, dir, id, fmt::format("{}: {}", where, misses[0].message)});
            continue;
        }
        if (!ports_match) continue;
        const bool all_near = std::all_of(misses.begin(), misses.end(), [](const Miss& m) {
            return m.near && (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels);
        });
        if (all_near) {
            add_hint(hints, {hint::kLabelMismatch, dir, id, fmt::format("{}: {}", where, misses[0].message)});
        } else if (misses.size() == 1 && misses[0].kind == MissKind::PodNamespace) {
            // The podSelector itself matches: the author forgot the namespaceSelector.
            add_hint(hints, {hint::kNamespaceScope, dir, id,
                             fmt::format("{}: {} (add a namespaceSelector for it)", where, misses[0].message)});
        } else if (misses.size() == 1 && misses[0].kind == MissKind::NotAPod &&
                   (remote.host_network_pod || s.node_by_ip(remote.ip))) {
            // Selecting the pods of a node or the control plane (hostNetwork) by label is the classic
            // trap: their traffic carries the node's IP, which only an ipBlock matches.
            add_hint(hints, {hint::kNotAPod, dir, id, fmt::format("{}: {}", where, misses[0].message)});
        }
    }
}

PolicyDiagnosis diagnose_policy(const ClusterState& s, uint32_t policy, const Flow& flow, Direction dir,
                                std::vector<Hint>& hints) {
    const auto& pol = s.policies()[policy];
    const auto& rules = dir == Direction::Ingress ? pol.ingress : pol.egress;
    PolicyDiagnosis pd;
    pd.policy = pol.id();
    const std::string local = s.pod_id(*local_end(flow, dir).pod);
    if (rules.empty()) {
        pd.summary = fmt::format("selects {} for {} and has no {} rules: it allows no {} at all", local,
                                 direction_name(dir), direction_name(dir), direction_name(dir));
        return pd;
    }
    for (size_t i = 0; i < rules.size(); ++i) {
        const auto misses = rule_misses(s, pol, rules[i], flow, dir);
        auto d = diagnose_rule(misses, static_cast<int>(i));
        if (d.misses.empty()) {
            pd.allows = true;
            pd.closest = std::move(d);
            pd.summary = fmt::format("allows it ({})", rule_ref(dir, static_cast<int>(i)));
            return pd;
        }
        if (!pd.closest || d.cost < pd.closest->cost) pd.closest = std::move(d);
        rule_hints(s, pol, rules[i], static_cast<int>(i), flow, dir, misses, hints);
    }
    pd.summary = fmt::format("none of its {} {} rule{} matches; closest is {}", rules.size(), direction_name(dir),
                             rules.size() == 1 ? "" : "s", rule_ref(dir, pd.closest->rule));
    return pd;
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

const char* tier_word(DecidingTier t) {
    return t == DecidingTier::Baseline ? "baseline" : "admin";
}

DecidingTier deciding_tier(PolicyTier t) {
    return t == PolicyTier::Admin ? DecidingTier::Admin : DecidingTier::Baseline;
}

// "rule 2 "block-databases", priority 10"
std::string cluster_rule_detail(const ClusterRuleRef& r) {
    std::string s = fmt::format("rule {}", r.rule);
    if (r.rule_name) s += fmt::format(" \"{}\"", *r.rule_name);
    if (r.priority) s += fmt::format(", priority {}", *r.priority);
    return s;
}

// "admin policy deny-db-egress (rule 2 "block-databases", priority 10)"
std::string cluster_rule_text(DecidingTier tier, const ClusterRuleRef& r) {
    return fmt::format("{} policy {} ({})", tier_word(tier), r.policy, cluster_rule_detail(r));
}

std::vector<Miss> cluster_peer_misses(const ClusterState& s, const ClusterPeer& peer, RuleAction action,
                                      const FlowEndpoint& remote, Direction dir) {
    std::vector<Miss> out;
    const char* role = remote_role(dir);
    switch (peer.kind) {
        case ClusterPeer::Kind::Namespaces:
        case ClusterPeer::Kind::Pods: {
            if (!remote.pod) {
                out.push_back(
                    {MissKind::NotAPod, false,
                     fmt::format("a {} peer matches pods only; {} {} is not a pod IP{}",
                                 peer.kind == ClusterPeer::Kind::Pods ? "pods" : "namespaces", role,
                                 endpoint_text(s, remote),
                                 dir == Direction::Egress ? " (a nodes or networks peer can match it)" : "")});
                break;
            }
            const auto& pod = s.pods()[*remote.pod];
            const auto& ns = s.namespaces()[pod.ns];
            const std::string ns_field = peer.kind == ClusterPeer::Kind::Pods ? "pods.namespaceSelector" : "namespaces";
            selector_misses(s, peer.pods.namespaces, ns.labels, MissKind::NamespaceLabels,
                            fmt::format("the namespace {} of {} pod {}", s.str(ns.name), role, s.pod_id(*remote.pod)),
                            ns_field, out);
            if (peer.pods.pods)
                selector_misses(s, *peer.pods.pods, pod.labels, MissKind::PodLabels,
                                fmt::format("{} pod {}", role, s.pod_id(*remote.pod)), "pods.podSelector", out);
            break;
        }
        case ClusterPeer::Kind::Nodes: {
            const auto node = s.node_by_ip(remote.ip);
            if (!node) {
                out.push_back({MissKind::NotANode, false,
                               fmt::format("a nodes peer matches node addresses; {} {} is not one", role,
                                           endpoint_text(s, remote))});
                break;
            }
            selector_misses(s, peer.nodes, s.node_labels(*node), MissKind::NodeLabels,
                            fmt::format("{} node {}", role, s.nodes()[*node].name), "nodes", out);
            break;
        }
        case ClusterPeer::Kind::Networks: {
            if (std::any_of(peer.networks.begin(), peer.networks.end(),
                            [&](const Cidr& c) { return c.contains(remote.ip); }))
                break;
            std::vector<std::string> nets;
            bool other_family = true;
            for (const auto& c : peer.networks) {
                nets.push_back(c.str());
                other_family = other_family && c.base.family != remote.ip.family;
            }
            out.push_back({MissKind::IpBlockRange, false,
                           fmt::format("networks {} do not contain {} {}", join(nets, ", "), role, remote.ip.str()),
                           other_family});
            break;
        }
        case ClusterPeer::Kind::DomainNames:
            out.push_back({MissKind::DomainName, false,
                           fmt::format("domainNames {}: whether {} {} is one of them depends on DNS, which the state "
                                       "does not record",
                                       join(peer.domain_names, ", "), role, remote.ip.str())});
            break;
        case ClusterPeer::Kind::Unknown:
            if (action == RuleAction::Accept)
                out.push_back({MissKind::UnknownPeer, false,
                               "a peer with no field this version of netpol-trace knows (a newer API): an Accept rule "
                               "treats it as matching nothing"});
            break;
    }
    return out;
}

std::string cluster_port_text(const ClusterPort& p) {
    switch (p.kind) {
        case ClusterPort::Kind::Unknown:
            return "a protocol entry of a newer API";
        case ClusterPort::Kind::NamedPort:
            return "named port " + p.name;
        case ClusterPort::Kind::Port:
            if (p.port == 0) return fmt::format("{} (all ports)", protocol_name(p.protocol));
            if (p.end_port) return fmt::format("{}/{}-{}", protocol_name(p.protocol), p.port, p.end_port);
            return fmt::format("{}/{}", protocol_name(p.protocol), p.port);
    }
    return "?";
}

std::vector<Miss> cluster_port_misses(const ClusterState& s, const ClusterPolicyRule& rule, const Flow& flow) {
    std::vector<Miss> out;
    if (cluster_ports_match(s, rule, flow)) return out;
    std::vector<std::string> entries;
    for (const auto& p : rule.ports) {
        entries.push_back(cluster_port_text(p));
        if (p.kind != ClusterPort::Kind::NamedPort) continue;
        const bool defined =
            flow.dst.pod &&
            std::any_of(s.ports(s.pods()[*flow.dst.pod].ports).begin(), s.ports(s.pods()[*flow.dst.pod].ports).end(),
                        [&](const ContainerPort& cp) { return cp.name == p.name && cp.protocol == flow.protocol; });
        if (defined) continue;
        const std::string where = flow.dst.pod ? fmt::format("destination pod {} ({})", s.pod_id(*flow.dst.pod),
                                                             defined_ports_text(s, *flow.dst.pod))
                                               : fmt::format("destination {} is not a pod", flow.dst.ip.str());
        out.push_back(
            {MissKind::NamedPort, false,
             fmt::format("named port {} is not defined for {} by {}", p.name, protocol_name(flow.protocol), where)});
    }
    out.push_back({MissKind::Port, false,
                   fmt::format("protocols allow {}; the connection is {}/{}", join(entries, ", "),
                               protocol_name(flow.protocol), flow.port)});
    return out;
}

RuleDiagnosis diagnose_cluster_rule(const ClusterState& s, const ClusterPolicyRule& rule, int index, const Flow& flow,
                                    Direction dir) {
    RuleDiagnosis d;
    d.rule = index;
    if (!rule.name.empty()) d.rule_name = rule.name;
    d.action = rule.action;
    d.misses = cluster_port_misses(s, rule, flow);
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
    const std::vector<Miss> port_result = cluster_port_misses(s, rule, flow);
    const bool ports_match = port_result.empty();
    std::vector<std::vector<Miss>> peer_results;
    for (const auto& peer : rule.peers) peer_results.push_back(cluster_peer_misses(s, peer, rule.action, remote, dir));
    const bool peers_match =
        std::any_of(peer_results.begin(), peer_results.end(), [](const auto& m) { return m.empty(); });
    const std::string ref = fmt::format("{} {}", id, rule_ref(dir, index));
    if (peers_match && !ports_match) {
        for (const auto& m : port_result) {
            if (m.kind == MissKind::NamedPort)
                add_hint(hints, {hint::kNamedPortUnresolved, dir, id, fmt::format("{}: {}", ref, m.message)});
            else if (m.kind == MissKind::Port)
                add_hint(hints,
                         {hint::kPortNotAllowed, dir, id,
                          fmt::format("{} matches the {} but not the port: {}", ref, remote_role(dir), m.message)});
        }
    }
    if (!ports_match) return;
    for (size_t i = 0; i < rule.peers.size(); ++i) {
        const auto& misses = peer_results[i];
        if (misses.empty()) continue;
        const std::string where = fmt::format("{}.{}[{}]", ref, peers_field(dir), i);
        const bool all_near = std::all_of(misses.begin(), misses.end(), [](const Miss& m) {
            return m.near && (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels ||
                              m.kind == MissKind::NodeLabels);
        });
        if (all_near) {
            add_hint(hints, {hint::kLabelMismatch, dir, id, fmt::format("{}: {}", where, misses[0].message)});
        } else if (misses.size() == 1 && misses[0].kind == MissKind::NotAPod &&
                   (remote.host_network_pod || s.node_by_ip(remote.ip))) {
            add_hint(hints, {hint::kNotAPod, dir, id, fmt::format("{}: {}", where, misses[0].message)});
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
        const std::string prio = pol.kind == ClusterPolicyKind::BaselineAdminNetworkPolicy
                                     ? std::string()
                                     : fmt::format(", priority {}", pol.priority);
        pd.summary =
            fmt::format("{} policy{}: none of its {} {} rule{} before the decision matches; closest is {}{}",
                        tier_word(*pd.tier), prio, candidates, pass_helps ? "Accept/Pass" : "Accept",
                        candidates == 1 ? "" : "s", rule_ref(dir, pd.closest->rule),
                        pd.closest->rule_name ? fmt::format(" \"{}\"", *pd.closest->rule_name) : std::string());
        side.cluster_diagnoses.push_back(std::move(pd));
    }
}

void tier_hints(const ClusterState& s, const Flow& flow, Direction dir, const SideVerdict& v,
                const SideExplanation& side, std::vector<Hint>& hints) {
    const std::string pod = side.pod.value_or("?");
    const char* dir_name = direction_name(dir);
    const auto passes_text = [&](DecidingTier tier) {
        std::vector<std::string> parts;
        for (const auto& p : v.passes)
            if (p.tier == tier) parts.push_back(cluster_rule_text(tier, cluster_rule_ref(s, p.policy, dir, p.rule)));
        return join(parts, ", ");
    };
    if (!v.allowed && v.decided_by.tier == DecidingTier::Admin) {
        const auto ref = cluster_rule_ref(s, v.decided_by.policy, dir, v.decided_by.rule);
        add_hint(hints,
                 {hint::kAdminTierDeny, dir, ref.policy,
                  fmt::format("the {} of {} is denied by {}: the Admin tier is evaluated before NetworkPolicies, "
                              "so no NetworkPolicy can allow it; only a cluster administrator can change it (edit "
                              "or delete that rule, or add an Accept or Pass rule that takes precedence)",
                              dir_name, pod, cluster_rule_text(DecidingTier::Admin, ref))});
    }
    if (!v.allowed && v.decided_by.tier == DecidingTier::Baseline) {
        const auto ref = cluster_rule_ref(s, v.decided_by.policy, dir, v.decided_by.rule);
        const std::string passed = passes_text(DecidingTier::Admin);
        add_hint(hints,
                 {hint::kBaselineTierDeny, dir, ref.policy,
                  fmt::format("the {} of {} is denied by {}{} because no NetworkPolicy selects {} for {}: a "
                              "NetworkPolicy in namespace {} that selects it and allows this {} overrides the Baseline "
                              "tier",
                              dir_name, pod, cluster_rule_text(DecidingTier::Baseline, ref),
                              passed.empty() ? "" : " (after " + passed + " passed it on)", pod, dir_name,
                              pod.substr(0, pod.find('/')), dir_name)});
    }
    if (!v.allowed && v.decided_by.tier == DecidingTier::NetworkPolicy) {
        const std::string passed = passes_text(DecidingTier::Admin);
        if (!passed.empty())
            add_hint(hints, {hint::kAdminTierPassToDeny, dir, s.cluster_policies()[v.passes.front().policy].id(),
                             fmt::format("{} passed the {} of {} to the NetworkPolicy tier, where {} isolate{} it and "
                                         "allow{} nothing that matches",
                                         passed, dir_name, pod, join(side.policies, ", "),
                                         side.policies.size() == 1 ? "s" : "", side.policies.size() == 1 ? "s" : "")});
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
            std::vector<std::string> others;
            for (uint32_t t : v.tied) others.push_back(s.cluster_policies()[t].id());
            add_hint(hints,
                     {hint::kClusterPolicyPriorityTie, dir, pol.id(),
                      fmt::format("{} and {} share priority {} in the {} tier and each has a rule matching the {} of "
                                  "{}: the API lets an implementation apply either, so the dataplane may not do what "
                                  "netpol-trace reports ({} {} it, by name order); give them distinct priorities",
                                  pol.id(), join(others, ", "), pol.priority, tier_word(first->tier), dir_name, pod,
                                  pol.id(),
                                  first->action == RuleAction::Accept ? "accepts"
                                  : first->action == RuleAction::Deny ? "denies"
                                                                      : "passes")});
        }
    }
    if (!v.allowed && !v.domain_rules.empty()) {
        const auto& d = v.domain_rules.front();
        const auto ref = cluster_rule_ref(s, d.policy, dir, d.rule);
        const auto& rule = (dir == Direction::Ingress ? s.cluster_policies()[d.policy].ingress
                                                      : s.cluster_policies()[d.policy].egress)[d.rule];
        std::vector<std::string> names;
        for (const auto& peer : rule.peers)
            for (const auto& n : peer.domain_names) names.push_back(n);
        add_hint(hints, {hint::kDomainNameUndecided, dir, ref.policy,
                         fmt::format("{} accepts the domain names {}; whether {} is one of their addresses depends on "
                                     "DNS, which the state does not record: netpol-trace treats the rule as not "
                                     "matching and cannot decide whether it accepts this connection",
                                     cluster_rule_text(deciding_tier(s.cluster_policies()[d.policy].tier), ref),
                                     join(names, ", "), remote_end(flow, dir).ip.str())});
    }
}

SideExplanation explain_side(const ClusterState& s, const Flow& flow, Direction dir, std::vector<Hint>& hints) {
    SideVerdict v;
    evaluate_side(s, flow, dir, v);
    SideExplanation side;
    side.direction = dir;
    const FlowEndpoint& local = local_end(flow, dir);
    if (local.pod) side.pod = s.pod_id(*local.pod);
    side.isolated = v.isolated;
    side.allowed = v.allowed;
    side.exemption = v.exemption;
    for (uint32_t p : v.policies) side.policies.push_back(s.policies()[p].id());
    for (uint32_t p : v.allowed_by) side.allowed_by.push_back(s.policies()[p].id());
    side.decided_by.tier = v.decided_by.tier;
    if (v.decided_by.tier == DecidingTier::Admin || v.decided_by.tier == DecidingTier::Baseline) {
        side.decided_by.rule = cluster_rule_ref(s, v.decided_by.policy, dir, v.decided_by.rule);
        side.decided_by.action = v.decided_by.action;
    }
    for (uint32_t p : v.cluster_policies) side.cluster_policies.push_back(s.cluster_policies()[p].id());
    for (const auto& p : v.passes) side.passed_by.push_back(cluster_rule_ref(s, p.policy, dir, p.rule));
    if (!v.cluster_policies.empty()) tier_hints(s, flow, dir, v, side, hints);
    if (v.allowed) return side;

    if (!v.cluster_policies.empty()) diagnose_cluster_tiers(s, flow, dir, v, side, hints);
    if (v.decided_by.tier == DecidingTier::NetworkPolicy) {
        for (uint32_t p : v.policies) side.diagnoses.push_back(diagnose_policy(s, p, flow, dir, hints));
        const bool all_default_deny = std::all_of(v.policies.begin(), v.policies.end(), [&](uint32_t p) {
            const auto& pol = s.policies()[p];
            return (dir == Direction::Ingress ? pol.ingress : pol.egress).empty();
        });
        if (all_default_deny) {
            add_hint(
                hints,
                {hint::kDefaultDeny, dir, side.policies.size() == 1 ? std::optional(side.policies[0]) : std::nullopt,
                 fmt::format("{} is isolated for {} only by policies without {} rules ({}): no policy allows "
                             "any {} {} it",
                             *side.pod, direction_name(dir), direction_name(dir), join(side.policies, ", "),
                             direction_name(dir), dir == Direction::Ingress ? "to" : "from")});
        }
    }
    if (dir == Direction::Egress && flow.port == 53 &&
        (flow.protocol == Protocol::UDP || flow.protocol == Protocol::TCP)) {
        std::optional<std::string> about;
        std::string by;
        if (side.decided_by.rule) {
            about = side.decided_by.rule->policy;
            by = cluster_rule_text(side.decided_by.tier, *side.decided_by.rule);
        } else {
            for (const auto& d : side.diagnoses)
                if (d.closest && (!about || d.closest->cost == 0)) about = d.policy;
            if (!about && side.policies.size() == 1) about = side.policies[0];
            by = "the egress isolation of " + *side.pod;
        }
        add_hint(hints, {hint::kDnsEgressBlocked, dir, about,
                         fmt::format("DNS ({}/53 to {}) is blocked by {}: {}", protocol_name(flow.protocol),
                                     flow.dst.ip.str(), by,
                                     side.decided_by.tier == DecidingTier::Admin
                                         ? "an Admin-tier Deny is changed by the cluster administrator (an Accept rule "
                                           "for UDP and TCP port 53 to the cluster DNS pods at a higher precedence)"
                                         : "add an egress rule allowing UDP and TCP port 53 to the cluster DNS pods "
                                           "(e.g. namespaceSelector kubernetes.io/metadata.name=kube-system)")});
    }
    return side;
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

std::string exemption_note(const ClusterState& s, const Flow& flow, const SideExplanation& side) {
    switch (side.exemption) {
        case Exemption::SamePod:
            return fmt::format("{}: a pod cannot block traffic to itself", direction_name(side.direction));
        case Exemption::LocalNode:
            return fmt::format("{}: traffic between pod {} and its own node ({}) is always allowed",
                               direction_name(side.direction), *side.pod, remote_end(flow, side.direction).ip.str());
        default:
            (void)s;
            return {};
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

Explanation explain_resolved(const ClusterState& s, const Flow& flow, const std::string& from_text,
                             const std::string& to_text) {
    Explanation e;
    e.from = from_text;
    e.to = to_text;
    e.port = flow.port;
    e.protocol = flow.protocol;
    e.src = endpoint_ref(s, flow.src);
    e.dst = endpoint_ref(s, flow.dst);
    e.dst.port = flow.port;
    e.egress = explain_side(s, flow, Direction::Egress, e.hints);
    e.ingress = explain_side(s, flow, Direction::Ingress, e.hints);
    for (const auto* side : {&e.egress, &e.ingress})
        if (auto note = exemption_note(s, flow, *side); !note.empty()) e.notes.push_back(note);
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
        std::vector<std::string> ports;
        for (const auto& p : svc.ports)
            ports.push_back(fmt::format("{}/{}", protocol_name(p.protocol), via_node_port ? p.node_port : p.port));
        top.verdict = "denied";
        top.hints.push_back(
            {hint::kServicePortUnknown, Direction::Egress, std::nullopt,
             fmt::format("Service {} has no port {}/{} (it serves {})", svc.id(), protocol_name(protocol), port,
                         ports.empty() ? "no ports" : join(ports, ", "))});
        top.service.push_back(std::move(se));
        return top;
    }
    se.port_name = sp->name;
    const auto endpoints = s.service_endpoints(*svc_idx, *sp, src_ip.family);
    if (endpoints.empty()) {
        top.verdict = "denied";
        top.hints.push_back({hint::kServiceNoEndpoints, Direction::Egress, std::nullopt,
                             fmt::format("Service {} has no {} endpoints for port {}/{}: connections to it fail "
                                         "whatever the policies say",
                                         svc.id(), src_ip.is_v4() ? "IPv4" : "IPv6", protocol_name(protocol), port)});
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
    std::vector<std::string> endpoint_texts;
    for (const auto& ep : endpoints) {
        Flow ef = flow;
        ef.dst = FlowEndpoint{ep.ip, ep.pod, std::nullopt};
        ef.via_service = true;
        if (ep.pod && s.pods()[*ep.pod].host_network) {
            ef.dst.host_network_pod = ep.pod;
            ef.dst.pod.reset();
        }
        ef.port = ep.port;
        const std::string to = ef.dst.pod ? s.pod_id(*ef.dst.pod) : ep.ip.str();
        endpoint_texts.push_back(fmt::format("{}:{}", ep.ip.host_str(), ep.port));
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
        const Hint dnat{
            hint::kServiceVipDnat, Direction::Egress, about,
            fmt::format("{}:{} is Service {}; policies see its endpoints after DNAT ({}), so rules must allow "
                        "the endpoint IPs and target port {}, not the Service IP and port{}",
                        dst_ip.host_str(), port, svc.id(), join(endpoint_texts, ", "), join(targets, "/"),
                        about ? fmt::format(" ({} allows the Service IP/port)", *about) : "")};
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

Result<Explanation> explain_query(const ClusterState& s, const ExplainQuery& q) {
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
        const auto ns = text.substr(0, slash), name = text.substr(slash + 1);
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
        return explain_resolved(s, flow, q.from, q.to);
    }
    return explain_flow(s, *src_ip, *dst_ip, q.protocol, q.port, q.from, q.to);
}

}  // namespace npt

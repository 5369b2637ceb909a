#include "policy/reach.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "policy/evaluator.hpp"

namespace npt {

namespace {

bool eligible(const ClusterState& s, uint32_t pod) {
    const auto& rec = s.pods()[pod];
    return rec.running && !rec.host_network && s.primary_ip(pod).has_value();
}

// The pods of `ns` a selector selects (in snapshot `s`).
void add_selected(const ClusterState& s, const std::string& ns, const LabelSelector& selector,
                  std::vector<uint32_t>& out) {
    const auto idx = s.find_namespace(ns);
    if (!idx) return;
    for (uint32_t p = 0; p < s.pods().size(); ++p)
        if (s.pods()[p].ns == *idx && s.selector_matches(selector, s.pods()[p].labels)) out.push_back(p);
}

void add_subject(const ClusterState& s, const PodSetSelector& subject, std::vector<uint32_t>& out) {
    for (uint32_t p = 0; p < s.pods().size(); ++p)
        if (s.pod_set_selects(subject, p)) out.push_back(p);
}

const NetworkPolicy* find_policy(const ClusterState& s, std::string_view ns, std::string_view name) {
    for (const auto& p : s.policies())
        if (p.ns == ns && p.name == name) return &p;
    return nullptr;
}

const ClusterNetworkPolicy* find_cluster_policy(const ClusterState& s, ClusterPolicyKind kind, std::string_view name) {
    for (const auto& p : s.cluster_policies())
        if (p.kind == kind && p.name == name) return &p;
    return nullptr;
}

void add_policy_scope(const ClusterState& s, const NetworkPolicy& p, ReachScope& scope) {
    std::vector<uint32_t> selected;
    add_selected(s, p.ns, p.pod_selector, selected);
    if (p.affects_ingress) scope.destinations.insert(scope.destinations.end(), selected.begin(), selected.end());
    if (p.affects_egress) scope.sources.insert(scope.sources.end(), selected.begin(), selected.end());
}

void add_cluster_policy_scope(const ClusterState& s, const ClusterNetworkPolicy& p, ReachScope& scope) {
    std::vector<uint32_t> selected;
    add_subject(s, p.subject, selected);
    if (!p.ingress.empty()) scope.destinations.insert(scope.destinations.end(), selected.begin(), selected.end());
    if (!p.egress.empty()) scope.sources.insert(scope.sources.end(), selected.begin(), selected.end());
}

void sort_unique(std::vector<uint32_t>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

}  // namespace

ReachScope change_scope(const ClusterState& before, const ClusterState& after, const StateChange& change) {
    ReachScope scope;
    // A policy's pods before (the old spec, old labels) and after (the new spec, new labels).
    const auto both = [&](std::string_view ns, std::string_view name) {
        for (const ClusterState* s : {&before, &after})
            if (const auto* p = find_policy(*s, ns, name)) add_policy_scope(*s, *p, scope);
    };
    for (const auto& p : change.upsert_policies) both(p.ns, p.name);
    for (const auto& [ns, name] : change.delete_policies) both(ns, name);
    const auto both_cluster = [&](ClusterPolicyKind kind, std::string_view name) {
        for (const ClusterState* s : {&before, &after})
            if (const auto* p = find_cluster_policy(*s, kind, name)) add_cluster_policy_scope(*s, *p, scope);
    };
    for (const auto& p : change.upsert_cluster_policies) both_cluster(p.kind, p.name);
    for (const auto& [kind, name] : change.delete_cluster_policies) both_cluster(kind, name);
    // A relabelled pod is another peer to every policy: both of its roles.
    for (const auto& [pod, labels] : change.pod_labels) {
        scope.sources.push_back(pod);
        scope.destinations.push_back(pod);
    }
    for (const auto& [ns, labels] : change.namespace_labels) {
        const auto idx = before.find_namespace(ns);
        if (!idx) continue;
        for (uint32_t p = 0; p < before.pods().size(); ++p) {
            if (before.pods()[p].ns != *idx) continue;
            scope.sources.push_back(p);
            scope.destinations.push_back(p);
        }
    }
    // Policies selecting a relabelled pod's new or old labels changed too: they are already covered, as the
    // relabelled pod is in both roles.
    sort_unique(scope.sources);
    sort_unique(scope.destinations);
    return scope;
}

Reach measure_reach(const ClusterState& before, const ClusterState& after, const ReachScope& scope,
                    size_t max_examples) {
    Reach reach;
    if (scope.sources.empty() && scope.destinations.empty()) return reach;

    // Every CIDR a policy of either snapshot names: a pod's membership in each is part of its class.
    std::vector<Cidr> cidrs;
    for (const ClusterState* s : {&before, &after}) {
        for (const auto& p : s->policies())
            for (const auto* rules : {&p.ingress, &p.egress})
                for (const auto& r : *rules)
                    for (const auto& peer : r.peers)
                        if (peer.ip_block) {
                            cidrs.push_back(peer.ip_block->cidr);
                            cidrs.insert(cidrs.end(), peer.ip_block->except.begin(), peer.ip_block->except.end());
                        }
        for (const auto& p : s->cluster_policies())
            for (const auto* rules : {&p.ingress, &p.egress})
                for (const auto& r : *rules)
                    for (const auto& peer : r.peers)
                        cidrs.insert(cidrs.end(), peer.networks.begin(), peer.networks.end());
    }
    std::sort(cidrs.begin(), cidrs.end(),
              [](const Cidr& a, const Cidr& b) { return std::tie(a.base, a.prefix) < std::tie(b.base, b.prefix); });
    cidrs.erase(std::unique(cidrs.begin(), cidrs.end()), cidrs.end());

    // The ports a container or a policy entry of either snapshot names.
    std::set<std::pair<Protocol, uint16_t>> port_set;
    for (const ClusterState* s : {&before, &after}) {
        for (uint32_t p = 0; p < s->pods().size(); ++p)
            for (const auto& cp : s->ports(s->pods()[p].ports)) port_set.emplace(cp.protocol, cp.port);
        for (const auto& pol : s->policies())
            for (const auto* rules : {&pol.ingress, &pol.egress})
                for (const auto& r : *rules)
                    for (const auto& port : r.ports) {
                        if (port.port) port_set.emplace(port.protocol, *port.port);
                        if (port.end_port) port_set.emplace(port.protocol, *port.end_port);
                    }
        for (const auto& pol : s->cluster_policies())
            for (const auto* rules : {&pol.ingress, &pol.egress})
                for (const auto& r : *rules)
                    for (const auto& port : r.ports) {
                        if (port.kind != ClusterPort::Kind::Port || port.port == 0) continue;
                        port_set.emplace(port.protocol, port.port);
                        if (port.end_port) port_set.emplace(port.protocol, port.end_port);
                    }
    }
    const std::vector<std::pair<Protocol, uint16_t>> ports(port_set.begin(), port_set.end());

    // Classes of pods that answer alike.
    struct Class {
        std::vector<uint32_t> pods;  // a few representatives and the count
        uint64_t count = 0;
        bool source = false, destination = false;
    };
    std::vector<Class> classes;
    std::map<std::tuple<uint32_t, uint32_t, PortSetId, bool, std::vector<bool>>, uint32_t> class_of;
    std::vector<char> is_source(before.pods().size()), is_destination(before.pods().size());
    for (uint32_t p : scope.sources) is_source[p] = 1;
    for (uint32_t p : scope.destinations) is_destination[p] = 1;
    for (uint32_t p = 0; p < before.pods().size(); ++p) {
        if (!eligible(before, p)) continue;
        const auto& ip = *before.primary_ip(p);
        std::vector<bool> in(cidrs.size());
        for (size_t i = 0; i < cidrs.size(); ++i) in[i] = cidrs[i].contains(ip);
        const auto key = std::make_tuple(before.pods()[p].selection, after.pods()[p].selection, before.pods()[p].ports,
                                         before.pods()[p].primary_v6, std::move(in));
        auto [it, fresh] = class_of.emplace(key, static_cast<uint32_t>(classes.size()));
        if (fresh) classes.emplace_back();
        Class& c = classes[it->second];
        if (c.pods.size() < 2) c.pods.push_back(p);
        ++c.count;
        // Membership in the scope follows the class: the pods of a class are selected alike.
        c.source = c.source || is_source[p];
        c.destination = c.destination || is_destination[p];
    }

    std::vector<ReachExample> allowed_examples, denied_examples;
    Verdict vb, va;
    for (const auto& a : classes) {
        for (const auto& b : classes) {
            if (!a.source && !b.destination) continue;
            const bool same = &a == &b;
            const uint64_t pairs = same ? a.count * (a.count - 1) : a.count * b.count;
            if (pairs == 0) continue;
            const uint32_t src = a.pods[0], dst = same ? b.pods[1] : b.pods[0];
            const auto& src_ip = *before.primary_ip(src);
            const auto& dst_ip = before.pods()[dst].ip(src_ip.family);
            if (!dst_ip) continue;
            Flow flow;
            flow.src = FlowEndpoint{src_ip, src, std::nullopt};
            flow.dst = FlowEndpoint{*dst_ip, dst, std::nullopt};
            for (const auto& [protocol, port] : ports) {
                flow.protocol = protocol;
                flow.port = port;
                evaluate(before, flow, vb);
                evaluate(after, flow, va);
                if (vb.allowed() == va.allowed()) continue;
                const ReachExample ex{src, dst, port, protocol, va.allowed()};
                if (va.allowed()) {
                    reach.newly_allowed += pairs;
                    if (allowed_examples.size() < max_examples) allowed_examples.push_back(ex);
                } else {
                    reach.newly_denied += pairs;
                    if (denied_examples.size() < max_examples) denied_examples.push_back(ex);
                }
            }
        }
    }
    // Up to max_examples, at least one of each kind that occurred (denials first: they break something).
    size_t take_denied = std::min(denied_examples.size(), max_examples);
    if (!allowed_examples.empty() && take_denied == max_examples && max_examples > 0) --take_denied;
    reach.examples.assign(denied_examples.begin(), denied_examples.begin() + static_cast<long>(take_denied));
    for (const auto& ex : allowed_examples) {
        if (reach.examples.size() >= max_examples) break;
        reach.examples.push_back(ex);
    }
    return reach;
}

}  // namespace npt

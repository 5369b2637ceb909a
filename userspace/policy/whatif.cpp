#include "policy/whatif.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "policy/manifest.hpp"

namespace npt {

namespace {

std::string end_text(const ClusterState& s, const IpAddr& ip) {
    auto pod = s.pod_by_ip(ip);
    return pod ? std::string(s.pod_id(*pod)) : ip.str();
}

// The verdict of an observed connection: through the Service it dialled, or as the packet went.
Explanation explain_observed(const ClusterState& s, const Connection& f) {
    return explain_flow(s, f.src.ip, f.dst.ip, f.protocol, f.port, end_text(s, f.src.ip), end_text(s, f.dst.ip));
}

// A cheap verdict where no Service is involved; the explanation otherwise.
bool allowed(const ClusterState& s, const Connection& f) {
    if (s.service_by_ip(f.dst.ip) || !s.pod_by_ip(f.dst.ip)) return explain_observed(s, f).allowed();
    Flow flow;
    flow.src = resolve_endpoint(s, f.src.ip);
    flow.dst = resolve_endpoint(s, f.dst.ip);
    flow.protocol = f.protocol;
    flow.port = f.port;
    Verdict v;
    evaluate(s, flow, v);
    return v.allowed();
}

// The destinations the policy hooks see for an observed connection: a Service's endpoints after DNAT (address,
// pod, target port), else the address dialled.
std::vector<std::tuple<IpAddr, std::optional<uint32_t>, uint16_t>> policy_ends(const ClusterState& s,
                                                                               const Connection& f) {
    std::vector<std::tuple<IpAddr, std::optional<uint32_t>, uint16_t>> ends;
    if (auto svc = s.service_by_ip(f.dst.ip)) {
        for (const auto& sp : s.services()[*svc].ports)
            if (sp.port == f.port && sp.protocol == f.protocol)
                for (const auto& ep : s.service_endpoints(*svc, sp, f.src.ip.family))
                    ends.emplace_back(ep.ip, ep.pod, ep.port);
    } else {
        ends.emplace_back(f.dst.ip, s.pod_by_ip(f.dst.ip), f.port);
    }
    return ends;
}

}  // namespace

WhatIfReport what_if(const ClusterState& before, const ClusterState& after, const StateChange& change,
                     const std::vector<Connection>& observed, size_t max_examples) {
    WhatIfReport report;
    std::set<std::tuple<IpAddr, IpAddr, uint16_t, Protocol>> seen;
    for (const auto& f : observed) {
        if (!seen.emplace(f.src.ip, f.dst.ip, f.port, f.protocol).second) continue;
        ++report.observed;
        const bool was = allowed(before, f), is = allowed(after, f);
        if (was && !is) report.breaks.push_back({&f, "allowed", explain_observed(after, f)});
        if (!was && is) report.newly_allowed_observed.push_back(&f);
    }
    report.reach = measure_reach(before, after, change_scope(before, after, change), max_examples);
    return report;
}

Advice advise(const ClusterState& s, const std::string& ns, const std::vector<Connection>& observed) {
    Advice advice;
    const auto ns_index = s.find_namespace(ns);
    if (!ns_index) return advice;
    struct Rules {
        uint32_t pod = 0;  // a pod of the workload: its stable labels select the workload
        std::vector<Peer> peers_in, peers_out;
        std::map<std::string, PolicyRule> in, out;  // by peer key: the peer and its ports
    };
    std::map<std::pair<std::string, std::string>, Rules> workloads;  // (kind, name)
    const auto peer_of = [&](uint32_t pod) {
        Peer p;
        p.namespace_selector = match_labels({{std::string(kNamespaceNameLabel), std::string(s.pod_namespace(pod))}});
        p.pod_selector = match_labels(stable_labels(s, pod));
        return p;
    };
    const auto address_peer = [](const IpAddr& ip) {
        Peer p;
        p.ip_block = IpBlock{Cidr{ip, static_cast<uint8_t>(ip.bit_width())}, {}};
        return p;
    };
    const auto port_of = [&](std::optional<uint32_t> dst_pod, uint16_t port, Protocol protocol) {
        PolicyPort p;
        p.protocol = protocol;
        if (dst_pod)
            for (const auto& cp : s.ports(s.pods()[*dst_pod].ports))
                if (cp.port == port && cp.protocol == protocol && !cp.name.empty()) {
                    p.port_name = cp.name;
                    return p;
                }
        p.port = port;
        return p;
    };
    const auto add = [&](std::map<std::string, PolicyRule>& rules, const std::string& key, const Peer& peer,
                         const PolicyPort& port) {
        PolicyRule& r = rules[key];
        if (r.peers.empty()) r.peers.push_back(peer);
        const bool have = std::any_of(r.ports.begin(), r.ports.end(), [&](const PolicyPort& q) {
            return q.protocol == port.protocol && q.port == port.port && q.port_name == port.port_name;
        });
        if (!have) r.ports.push_back(port);
    };
    const auto key_of = [&](std::optional<uint32_t> pod, const IpAddr& ip) {
        if (!pod) return ip.str();
        const auto wl = s.workload_of(*pod);
        return fmt::format("{}/{}/{}", s.pod_namespace(*pod), wl.kind, wl.name);
    };
    for (const auto& f : observed) {
        const auto src = s.pod_by_ip(f.src.ip);
        for (const auto& [ip, dst, port] : policy_ends(s, f)) {
            if (src && s.pods()[*src].ns == *ns_index && !s.pods()[*src].host_network) {
                const auto wl = s.workload_of(*src);
                auto& w = workloads[{wl.kind, wl.name}];
                w.pod = *src;
                add(w.out, key_of(dst, ip), dst ? peer_of(*dst) : address_peer(ip), port_of(dst, port, f.protocol));
            }
            if (dst && s.pods()[*dst].ns == *ns_index && !s.pods()[*dst].host_network) {
                const auto wl = s.workload_of(*dst);
                auto& w = workloads[{wl.kind, wl.name}];
                w.pod = *dst;
                add(w.in, key_of(src, f.src.ip), src ? peer_of(*src) : address_peer(f.src.ip),
                    port_of(dst, port, f.protocol));
            }
        }
    }
    const auto unique_name = [&](std::string base) {
        const auto taken = [&](const std::string& n) {
            if (std::any_of(advice.policies.begin(), advice.policies.end(),
                            [&](const NetworkPolicy& p) { return p.name == n; }))
                return true;
            return std::any_of(s.policies().begin(), s.policies().end(),
                               [&](const NetworkPolicy& p) { return p.ns == ns && p.name == n; });
        };
        if (!taken(base)) return base;
        for (int i = 2;; ++i)
            if (auto n = fmt::format("{}-{}", base, i); !taken(n)) return n;
    };
    for (auto& [id, w] : workloads) {
        for (const Direction dir : {Direction::Ingress, Direction::Egress}) {
            auto& rules = dir == Direction::Ingress ? w.in : w.out;
            if (rules.empty()) continue;
            NetworkPolicy np;
            np.ns = ns;
            np.name = unique_name(fmt::format("{}-{}", id.second, direction_name(dir)));
            np.pod_selector = match_labels(stable_labels(s, w.pod));
            np.affects_ingress = dir == Direction::Ingress;
            np.affects_egress = dir == Direction::Egress;
            for (auto& [key, rule] : rules) (dir == Direction::Ingress ? np.ingress : np.egress).push_back(rule);
            advice.policies.push_back(std::move(np));
        }
    }
    NetworkPolicy deny;
    deny.ns = ns;
    deny.name = unique_name("default-deny");
    deny.affects_ingress = deny.affects_egress = true;
    advice.policies.push_back(std::move(deny));

    StateChange change;
    change.upsert_policies = advice.policies;
    const auto after = s.derive(change);
    advice.verification = what_if(s, *after, change, observed);

    // How far the policies reach beyond what was observed: what they alone allow for the namespace's pods (the
    // namespace's other policies deleted and the default deny applied, against that plus the advice), and how
    // many of those connections were observed.
    StateChange deny_all;
    for (const auto& p : s.policies())
        if (p.ns == ns) deny_all.delete_policies.emplace_back(p.ns, p.name);
    deny_all.upsert_policies.push_back(advice.policies.back());
    const auto denied = s.derive(deny_all);
    StateChange advised;
    advised.upsert_policies = advice.policies;
    const auto alone = denied->derive(advised);
    advice.allowed = measure_reach(*denied, *alone, change_scope(*denied, *alone, advised), 0).newly_allowed;
    std::set<std::tuple<uint32_t, uint32_t, uint16_t, Protocol>> pairs;
    for (const auto& f : observed) {
        const auto a = s.pod_by_ip(f.src.ip);
        if (!a) continue;
        for (const auto& [ip, b, port] : policy_ends(s, f)) {
            if (!b || *a == *b) continue;
            if (s.pods()[*a].ns != *ns_index && s.pods()[*b].ns != *ns_index) continue;
            Flow flow;
            flow.src = resolve_endpoint(*alone, f.src.ip);
            flow.dst = resolve_endpoint(*alone, ip);
            flow.protocol = f.protocol;
            flow.port = port;
            Verdict v;
            evaluate(*alone, flow, v);
            if (v.allowed()) pairs.emplace(*a, *b, port, f.protocol);
        }
    }
    advice.observed_pairs = pairs.size();
    return advice;
}

}  // namespace npt

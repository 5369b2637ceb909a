// A synthetic cluster for benchmarks: namespaces of workloads (pods sharing label sets, as
// ReplicaSets make them), a default-deny plus allow policies per namespace, Services.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "state/objects.hpp"

namespace npt::bench {

struct ClusterShape {
    uint32_t namespaces = 100;
    uint32_t pods = 10'000;
    uint32_t policies = 1'000;
    uint32_t pods_per_workload = 10;
    uint32_t cluster_policies = 0;  // ClusterNetworkPolicies: 60% Admin, 40% Baseline, each selecting a team
    uint64_t seed = 42;
};

inline LabelRequirement match_label(std::string k, std::string v) {
    LabelRequirement r;
    r.key = std::move(k);
    r.op = LabelRequirement::Op::In;
    r.values = {std::move(v)};
    r.from_match_labels = true;
    return r;
}

inline ClusterObjects generate_cluster(const ClusterShape& shape) {
    ClusterObjects c;
    std::mt19937_64 rng(shape.seed);
    const uint32_t workloads = std::max(1u, shape.pods / shape.pods_per_workload);
    const uint32_t workloads_per_ns = std::max(1u, workloads / shape.namespaces);
    for (uint32_t n = 0; n < shape.namespaces; ++n) {
        NamespaceInfo ns;
        ns.name = "ns-" + std::to_string(n);
        ns.labels = {{"team", "team-" + std::to_string(n % 17)}, {"env", n % 3 ? "prod" : "staging"}};
        c.namespaces.push_back(std::move(ns));
    }
    for (uint32_t i = 0; i < shape.pods; ++i) {
        const uint32_t w = i / shape.pods_per_workload;
        const uint32_t n = (w / workloads_per_ns) % shape.namespaces;
        PodInfo p;
        p.ns = "ns-" + std::to_string(n);
        p.name = "app-" + std::to_string(w) + "-7d9f8b6c5-" + std::to_string(100000 + i);
        p.labels = {{"app", "app-" + std::to_string(w % workloads_per_ns)},
                    {"app.kubernetes.io/part-of", "suite-" + std::to_string(w % 7)},
                    {"pod-template-hash", "7d9f8b6c5" + std::to_string(w)},
                    {"tier", w % 2 ? "backend" : "frontend"}};
        p.ips = {IpAddr::v4((10u << 24) | (1u << 16) | (i + 2))};
        p.host_ip = IpAddr::v4((10u << 24) | (255u << 16) | (i % 50 + 1));
        p.node = "node-" + std::to_string(i % 50);
        p.phase = "Running";
        p.ports = {{"http", 8080, Protocol::TCP}, {"metrics", 9090, Protocol::TCP}};
        c.pods.push_back(std::move(p));
    }
    const uint32_t per_ns = std::max(1u, shape.policies / shape.namespaces);
    for (uint32_t n = 0; n < shape.namespaces; ++n) {
        for (uint32_t k = 0; k < per_ns; ++k) {
            NetworkPolicy pol;
            pol.ns = "ns-" + std::to_string(n);
            pol.name = "policy-" + std::to_string(k);
            if (k == 0) {  // default deny both ways
                pol.affects_egress = true;
                c.policies.push_back(std::move(pol));
                continue;
            }
            pol.pod_selector.requirements.push_back(match_label("app", "app-" + std::to_string(k % workloads_per_ns)));
            PolicyRule in;
            Peer same_ns;
            same_ns.pod_selector = LabelSelector{{match_label("tier", "frontend")}};
            Peer other_ns;
            other_ns.namespace_selector = LabelSelector{{match_label("env", "prod")}};
            other_ns.pod_selector = LabelSelector{{match_label("tier", "frontend")}};
            in.peers = {same_ns, other_ns};
            in.ports = {PolicyPort{Protocol::TCP, 8080, "", std::nullopt},
                        PolicyPort{Protocol::TCP, std::nullopt, "metrics", std::nullopt}};
            pol.ingress.push_back(in);
            PolicyRule out;
            Peer any_ns;
            any_ns.namespace_selector = LabelSelector{};
            out.peers = {any_ns};
            out.ports = {PolicyPort{Protocol::TCP, 8000, "", uint16_t{8100}}};
            PolicyRule dns;
            dns.ports = {PolicyPort{Protocol::UDP, 53, "", std::nullopt}};
            pol.egress = {out, dns};
            pol.affects_egress = true;
            c.policies.push_back(std::move(pol));
        }
    }
    // Guardrails as platform teams write them: per team, an Admin policy denying staging's access to databases,
    // accepting the nodes' network and passing same-team traffic to the namespace owners; Baseline policies
    // denying ingress from other teams. Each pod is selected by ~1/17 of them.
    const uint32_t admin = shape.cluster_policies * 3 / 5;
    for (uint32_t i = 0; i < shape.cluster_policies; ++i) {
        ClusterNetworkPolicy cnp;
        cnp.name = "guard-" + std::to_string(i);
        cnp.tier = i < admin ? PolicyTier::Admin : PolicyTier::Baseline;
        cnp.priority = static_cast<int32_t>(i < admin ? i : i - admin);
        const std::string team = "team-" + std::to_string(i % 17);
        cnp.subject.namespaces = LabelSelector{{match_label("team", team)}};
        ClusterPeer staging;
        staging.kind = ClusterPeer::Kind::Namespaces;
        staging.pods.namespaces = LabelSelector{{match_label("env", "staging")}};
        ClusterPeer same_team;
        same_team.kind = ClusterPeer::Kind::Namespaces;
        same_team.pods.namespaces = LabelSelector{{match_label("team", team)}};
        ClusterPeer nodes;
        nodes.kind = ClusterPeer::Kind::Networks;
        nodes.networks = {*Cidr::parse("10.255.0.0/16")};
        ClusterPort db{ClusterPort::Kind::Port, Protocol::TCP, 5432, 0, {}};
        if (cnp.tier == PolicyTier::Admin) {
            cnp.ingress.push_back({"no-staging-db", RuleAction::Deny, {staging}, {db}});
            cnp.egress.push_back({"nodes", RuleAction::Accept, {nodes}, {}});
            cnp.egress.push_back({"own-team", RuleAction::Pass, {same_team}, {}});
        } else {
            ClusterPeer any;
            any.kind = ClusterPeer::Kind::Namespaces;
            cnp.ingress.push_back({"own-team", RuleAction::Accept, {same_team}, {}});
            cnp.ingress.push_back({"others", RuleAction::Deny, {any}, {}});
        }
        c.cluster_policies.push_back(std::move(cnp));
    }
    return c;
}

}  // namespace npt::bench

// whatif and advise over the runbook's example cluster, before shop was locked down: a default deny for shop breaks
// exactly the observed connections from and to shop's pods, each explained by the policy that now isolates; the
// runbook's allow-dns policy un-breaks the DNS ones; advised policies break no observed connection and deny what was
// never observed.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "policy/whatif.hpp"
#include "state/cluster_state.hpp"
#include "flows/connection.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_EXAMPLES_DIR
#error "NPT_EXAMPLES_DIR must name examples/"
#endif

namespace npt {
namespace {

std::shared_ptr<const ClusterState> load_file(const std::string& path) {
    auto objects = load_state_files({path});
    EXPECT_TRUE(objects.ok()) << objects.error().message;
    return ClusterState::build(std::move(*objects));
}

ClusterObjects load_text(const std::string& text) {
    ClusterObjects o;
    auto err = load_state_text(text, "manifest", o);
    EXPECT_FALSE(err.has_value()) << err->message;
    return o;
}

std::vector<Connection> read_flows(const std::string& text) {
    std::istringstream in(text);
    auto flows = read_connections(in, "flows");
    EXPECT_TRUE(flows.ok()) << flows.error().message;
    return flows ? *flows : std::vector<Connection>{};
}

std::string flow_line(const std::string& src, const std::string& dst, int port, const std::string& protocol = "TCP") {
    return R"({"src":{"ip":")" + src + R"("},"dst":{"ip":")" + dst + R"(","port":)" + std::to_string(port) +
           R"(},"protocol":")" + protocol + R"(","side":"client","count":3})" + "\n";
}

// The example cluster as it was before shop's policies: every one of them deleted.
std::shared_ptr<const ClusterState> before_lockdown() {
    auto runbook = load_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml");
    StateChange open;
    for (const auto& p : runbook->policies())
        if (p.ns == "shop") open.delete_policies.emplace_back(p.ns, p.name);
    EXPECT_FALSE(open.delete_policies.empty());
    return runbook->derive(open);
}

constexpr const char* kFrontend = "10.42.0.21";
constexpr const char* kCheckout = "10.42.0.22";
constexpr const char* kApi = "10.42.0.31";
constexpr const char* kPostgres = "10.42.0.41";
constexpr const char* kPrometheus = "10.42.0.51";
constexpr const char* kCoreDns = "10.42.0.10";
constexpr const char* kDnsVip = "10.43.0.10";

// What worked before the lockdown: shop's pods talking to DNS, to each other, to monitoring and the internet; and
// connections between other namespaces' pods that a shop policy cannot touch.
std::string observed_text() {
    return flow_line(kFrontend, kDnsVip, 53, "UDP") + flow_line(kFrontend, kDnsVip, 53, "TCP") +
           flow_line(kCheckout, kDnsVip, 53, "UDP") + flow_line(kFrontend, kCheckout, 8080) +
           flow_line(kCheckout, kPrometheus, 9091) + flow_line(kFrontend, "93.184.216.34", 443) +
           flow_line(kPrometheus, kFrontend, 8080) + flow_line(kApi, kDnsVip, 53, "UDP") +
           flow_line(kPostgres, kDnsVip, 53, "UDP") + flow_line(kPrometheus, kCoreDns, 9153);
}

bool touches_shop(const ClusterState& s, const Connection& f) {
    for (const auto& ip : {f.src.ip, f.dst.ip})
        if (auto pod = s.pod_by_ip(ip); pod && s.pod_namespace(*pod) == "shop") return true;
    return false;
}

bool is_dns(const Connection& f) {
    return f.port == 53 && f.dst.ip.str() == kDnsVip;
}

std::set<std::string> break_lines(const WhatIfReport& r) {
    std::set<std::string> out;
    for (const auto& b : r.breaks) out.insert(b.flow->line);
    return out;
}

WhatIfReport whatif_text(const ClusterState& before, const std::string& manifests,
                         const std::vector<Connection>& flows) {
    auto objects = load_text(manifests);
    StateChange change;
    change.upsert_policies = objects.policies;
    return what_if(before, *before.derive(change), change, flows);
}

constexpr const char* kDefaultDeny = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
)";

constexpr const char* kAllowDns = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: kube-system}
    ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
)";

TEST(WhatIf, TheObservedConnectionsWorkedBeforeTheLockdown) {
    auto before = before_lockdown();
    for (const auto& f : read_flows(observed_text())) {
        auto e = explain_flow(*before, f.src.ip, f.dst.ip, f.protocol, f.port, f.src.ip.str(), f.dst.ip.str());
        EXPECT_TRUE(e.allowed()) << f.line;
    }
}

TEST(WhatIf, DefaultDenyBreaksExactlyTheObservedConnectionsOfShopPods) {
    auto before = before_lockdown();
    const auto flows = read_flows(observed_text());
    const auto report = whatif_text(*before, kDefaultDeny, flows);
    EXPECT_EQ(report.observed, flows.size());
    std::set<std::string> expected;
    for (const auto& f : flows)
        if (touches_shop(*before, f)) expected.insert(f.line);
    EXPECT_EQ(expected.size(), 7u);
    EXPECT_EQ(break_lines(report), expected);
    for (const auto& b : report.breaks) {
        EXPECT_EQ(b.before, "allowed");
        EXPECT_FALSE(b.after.allowed()) << b.flow->line;
        // Each break names the policy that now isolates the shop side.
        bool names_default_deny = false;
        for (const auto* side : {&b.after.egress, &b.after.ingress})
            for (const auto& p : side->policies) names_default_deny |= p == "shop/default-deny";
        EXPECT_TRUE(names_default_deny) << b.flow->line;
    }
    EXPECT_TRUE(report.newly_allowed_observed.empty());
    EXPECT_EQ(report.reach.newly_allowed, 0u);
    EXPECT_GT(report.reach.newly_denied, 0u);
}

TEST(WhatIf, AllowDnsUnbreaksTheDnsConnections) {
    auto before = before_lockdown();
    const auto flows = read_flows(observed_text());
    const auto report = whatif_text(*before, std::string(kDefaultDeny) + "---\n" + kAllowDns, flows);
    std::set<std::string> expected;
    for (const auto& f : flows)
        if (touches_shop(*before, f) && !is_dns(f)) expected.insert(f.line);
    EXPECT_EQ(expected.size(), 4u);
    EXPECT_EQ(break_lines(report), expected);
}

TEST(WhatIf, DeletingTheFixBreaksWhatItAllowed) {
    // The runbook's example cluster as it is: deleting checkout's egress policy breaks its DNS, and only that.
    auto s = load_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml");
    const auto flows = read_flows(flow_line(kCheckout, kDnsVip, 53, "UDP") + flow_line(kApi, kDnsVip, 53, "UDP") +
                                  flow_line(kFrontend, "93.184.216.34", 443));
    StateChange change;
    change.delete_policies.emplace_back("shop", "allow-checkout-egress");
    const auto report = what_if(*s, *s->derive(change), change, flows);
    ASSERT_EQ(report.breaks.size(), 1u);
    EXPECT_EQ(report.breaks[0].flow->src.ip.str(), kCheckout);
    EXPECT_EQ(report.breaks[0].after.egress.policies, std::vector<std::string>({"shop/default-deny"}));
    EXPECT_EQ(report.reach.newly_allowed, 0u);
}

TEST(WhatIf, ANewlyAllowedObservedConnectionIsReportedNotABreak) {
    auto s = load_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml");
    const auto flows = read_flows(flow_line(kFrontend, kDnsVip, 53, "UDP"));  // denied today (the runbook's case 1)
    const auto report = whatif_text(*s, kAllowDns, flows);
    EXPECT_TRUE(report.breaks.empty());
    ASSERT_EQ(report.newly_allowed_observed.size(), 1u);
    EXPECT_GT(report.reach.newly_allowed, 0u);
}

TEST(WhatIf, OneConnectionSeenByBothEndsIsEvaluatedOnce) {
    auto before = before_lockdown();
    const std::string line = flow_line(kFrontend, kCheckout, 8080);
    const auto flows = read_flows(line + line);
    const auto report = whatif_text(*before, kDefaultDeny, flows);
    EXPECT_EQ(report.observed, 1u);
    EXPECT_EQ(report.breaks.size(), 1u);
}

// advise: what it writes allows every observed connection and nothing of shop's that was never observed.
TEST(Advise, BreaksNoObservedConnectionAndDeniesTheUnobserved) {
    auto before = before_lockdown();
    const auto flows = read_flows(observed_text());
    const Advice advice = advise(*before, "shop", flows);
    EXPECT_EQ(advice.verification.observed, flows.size());
    EXPECT_TRUE(advice.verification.breaks.empty());
    ASSERT_FALSE(advice.policies.empty());
    EXPECT_EQ(advice.policies.back().name, "default-deny");
    EXPECT_TRUE(advice.policies.back().affects_ingress && advice.policies.back().affects_egress);

    StateChange change;
    change.upsert_policies = advice.policies;
    auto after = before->derive(change);
    for (const auto& f : flows) {
        auto e = explain_flow(*after, f.src.ip, f.dst.ip, f.protocol, f.port, f.src.ip.str(), f.dst.ip.str());
        EXPECT_TRUE(e.allowed()) << f.line;
    }
    // Never observed: prometheus scraping checkout, checkout reaching postgres, frontend's DNS over port 5353,
    // checkout calling frontend back.
    const std::vector<std::tuple<const char*, const char*, uint16_t, Protocol>> unobserved = {
        {kPrometheus, kCheckout, 8080, Protocol::TCP},
        {kCheckout, kPostgres, 5432, Protocol::TCP},
        {kFrontend, kDnsVip, 5353, Protocol::UDP},
        {kCheckout, kFrontend, 8080, Protocol::TCP},
    };
    for (const auto& [src, dst, port, proto] : unobserved) {
        auto e = explain_flow(*after, *IpAddr::parse(src), *IpAddr::parse(dst), proto, port, src, dst);
        EXPECT_FALSE(e.allowed()) << src << " -> " << dst << ":" << port;
    }
    EXPECT_GE(advice.allowed, advice.observed_pairs);
    EXPECT_GT(advice.observed_pairs, 0u);
}

TEST(Advise, PeersAreWorkloadsAndNamedPortsWhereThePodNamesThem) {
    auto before = before_lockdown();
    const auto advice = advise(*before, "shop", read_flows(observed_text()));
    const NetworkPolicy* checkout_in = nullptr;
    const NetworkPolicy* frontend_out = nullptr;
    for (const auto& p : advice.policies) {
        if (p.name == "checkout-ingress") checkout_in = &p;
        if (p.name == "frontend-egress") frontend_out = &p;
    }
    ASSERT_NE(checkout_in, nullptr);
    ASSERT_NE(frontend_out, nullptr);
    ASSERT_EQ(checkout_in->ingress.size(), 1u);
    const auto& rule = checkout_in->ingress[0];
    ASSERT_EQ(rule.ports.size(), 1u);
    EXPECT_EQ(rule.ports[0].port_name, "http");  // checkout names 8080 "http"
    ASSERT_EQ(rule.peers.size(), 1u);
    ASSERT_TRUE(rule.peers[0].pod_selector.has_value());
    ASSERT_TRUE(rule.peers[0].namespace_selector.has_value());
    // The workload's stable labels, never the ReplicaSet's pod-template-hash.
    ASSERT_FALSE(rule.peers[0].pod_selector->empty());
    for (const auto& req : rule.peers[0].pod_selector->requirements) EXPECT_NE(req.key, "pod-template-hash");
    // frontend's egress: DNS to the DNS pods on their named ports, the internet address as a /32 ipBlock.
    bool dns = false, internet = false;
    for (const auto& r : frontend_out->egress)
        for (const auto& peer : r.peers) {
            if (peer.namespace_selector && peer.pod_selector) {
                for (const auto& req : peer.namespace_selector->requirements)
                    dns |= req.key == "kubernetes.io/metadata.name" &&
                           req.values == std::vector<std::string>({"kube-system"});
            }
            if (peer.ip_block) internet |= peer.ip_block->cidr.str() == "93.184.216.34/32";
        }
    EXPECT_TRUE(dns);
    EXPECT_TRUE(internet);
}

TEST(Advise, NamesDoNotCollideWithTheNamespacesPolicies) {
    auto s = load_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml");  // shop has a default-deny already
    const auto advice = advise(*s, "shop", read_flows(flow_line(kCheckout, kDnsVip, 53, "UDP")));
    ASSERT_FALSE(advice.policies.empty());
    EXPECT_EQ(advice.policies.back().name, "default-deny-2");
    EXPECT_TRUE(advice.verification.breaks.empty());
}

}  // namespace
}  // namespace npt

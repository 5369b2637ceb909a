// The cluster policy tiers (ClusterNetworkPolicy v1alpha2/v1beta1, AdminNetworkPolicy and
// BaselineAdminNetworkPolicy v1alpha1) as the policy API's types and docs state them
// (kubernetes-sigs/network-policy-api apis/ and site-src/api-overview.md): each case loads manifests
// through load_state_text, builds the snapshot and checks explain_query's verdict, who decided each side,
// the Pass chain and the hints. The upstream conformance suite is replayed separately
// (cluster_policy_conformance_test.cpp).
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policy/explainer.hpp"
#include "output/miss_text.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_CLUSTER_POLICY_FIXTURES
#error "NPT_CLUSTER_POLICY_FIXTURES must name tests/fixtures/cluster-policy"
#endif

namespace npt {
namespace {

using Strings = std::vector<std::string>;

std::string read_fixture(const std::string& name) {
    std::ifstream in(std::string(NPT_CLUSTER_POLICY_FIXTURES) + "/" + name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A ClusterNetworkPolicy manifest; `body` is the indented rest of spec after tier and priority.
std::string cnp(const std::string& name, const std::string& tier, int priority, const std::string& body,
                const std::string& version = "v1alpha2") {
    return "apiVersion: policy.networking.k8s.io/" + version +
           "\nkind: ClusterNetworkPolicy\nmetadata:\n  name: " + name + "\nspec:\n  tier: " + tier +
           "\n  priority: " + std::to_string(priority) + "\n" + body + "---\n";
}

std::string anp(const std::string& name, int priority, const std::string& body) {
    return "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata:\n  name: " + name +
           "\nspec:\n  priority: " + std::to_string(priority) + "\n" + body + "---\n";
}

std::string banp(const std::string& body) {
    return "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata:\n  name: "
           "default\nspec:\n" +
           body + "---\n";
}

std::string np(const std::string& ns, const std::string& name, const std::string& spec) {
    return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: " + name +
           "\n  namespace: " + ns + "\nspec:\n" + spec + "---\n";
}

// Subjects and rules, as YAML fragments at the indentation of spec's fields.
const std::string subject_ns_a = "  subject:\n    namespaces:\n      matchLabels: {kubernetes.io/metadata.name: a}\n";
const std::string subject_all = "  subject:\n    namespaces: {}\n";
const std::string subject_pod_x =
    "  subject:\n    pods:\n      namespaceSelector: {}\n      podSelector:\n        matchLabels: {app: x}\n";

std::string egress_rule(const std::string& name, const std::string& action, const std::string& to,
                        const std::string& protocols = "") {
    return "  - name: " + name + "\n    action: " + action + "\n    to:\n" + to + protocols;
}
std::string ingress_rule(const std::string& name, const std::string& action, const std::string& from,
                         const std::string& protocols = "") {
    return "  - name: " + name + "\n    action: " + action + "\n    from:\n" + from + protocols;
}
std::string to_ns(const std::string& ns) {
    return "    - namespaces:\n        matchLabels: {kubernetes.io/metadata.name: " + ns + "}\n";
}
const std::string any_ns = "    - namespaces: {}\n";
std::string tcp_port(int port) {
    return "    protocols:\n    - tcp:\n        destinationPort:\n          number: " + std::to_string(port) + "\n";
}

const std::string np_x_allow_from_y =  // a/x isolated for ingress, allows a/y on any port
    "  podSelector:\n    matchLabels: {app: x}\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {app: "
    "\"y\"}\n";
const std::string np_x_deny_all = "  podSelector:\n    matchLabels: {app: x}\n  policyTypes: [Ingress]\n";
const std::string np_y_egress_to_z =  // a/y isolated for egress, allows b/z
    "  podSelector:\n    matchLabels: {app: \"y\"}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - "
    "namespaceSelector:\n        matchLabels: {team: blue}\n";

struct Decision {
    std::string tier;
    std::optional<std::string> policy = std::nullopt;
    std::optional<int> rule = std::nullopt;
    std::optional<std::string> action = std::nullopt;
};

struct TierCase {
    std::string name;
    std::string manifests;
    ExplainQuery q;
    std::string verdict;
    std::optional<Decision> egress = std::nullopt;
    std::optional<Decision> ingress = std::nullopt;
    Strings hints = {};         // codes that must be present
    Strings absent_hints = {};  // codes that must not be
    std::optional<Strings> egress_passed_by = std::nullopt;
    std::optional<Strings> ingress_passed_by = std::nullopt;
    std::optional<Strings> ingress_cluster_policies = std::nullopt;
    std::optional<Strings> egress_cluster_policies = std::nullopt;
};

void PrintTo(const TierCase& c, std::ostream* os) {
    *os << c.name;
}

ExplainQuery Q(std::string from, std::string to, uint16_t port, Protocol proto = Protocol::TCP,
               std::optional<IpFamily> family = std::nullopt) {
    return ExplainQuery{std::move(from), std::move(to), port, proto, family};
}

std::string tier_of(const SideExplanation& s) {
    return tier_name(s.decided_by.tier);
}

void expect_decision(const SideExplanation& s, const Decision& d, const char* side) {
    SCOPED_TRACE(side);
    EXPECT_EQ(tier_of(s), d.tier);
    if (d.policy) {
        ASSERT_TRUE(s.decided_by.rule.has_value());
        EXPECT_EQ(s.decided_by.rule->policy, *d.policy);
    }
    if (d.rule) {
        ASSERT_TRUE(s.decided_by.rule.has_value());
        EXPECT_EQ(s.decided_by.rule->rule, *d.rule);
    }
    if (d.action) {
        ASSERT_TRUE(s.decided_by.action.has_value());
        EXPECT_EQ(rule_action_name(*s.decided_by.action), *d.action);
    }
    if (d.tier == "networkpolicy" || d.tier == "none") {
        EXPECT_FALSE(s.decided_by.rule.has_value());
        EXPECT_FALSE(s.decided_by.action.has_value());
    }
}

Strings pass_names(const SideExplanation& s) {
    Strings out;
    for (const auto& p : s.passed_by) out.push_back(p.policy);
    return out;
}

class ClusterPolicyTiers : public ::testing::TestWithParam<TierCase> {};

TEST_P(ClusterPolicyTiers, Decide) {
    const auto& c = GetParam();
    ClusterObjects objs;
    const std::string cluster = read_fixture("cluster.yaml");
    ASSERT_FALSE(cluster.empty()) << "fixture cluster.yaml not found under " << NPT_CLUSTER_POLICY_FIXTURES;
    auto err = load_state_text(cluster, "cluster.yaml", objs);
    ASSERT_FALSE(err.has_value()) << err->message;
    err = load_state_text(c.manifests, "policies.yaml", objs);
    ASSERT_FALSE(err.has_value()) << err->message;
    auto state = ClusterState::build(std::move(objs));
    auto r = explain_query(*state, c.q);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::ostringstream trace;
    trace << "verdict=" << r->verdict << " egress=" << tier_of(r->egress) << " ingress=" << tier_of(r->ingress)
          << " hints:";
    for (const auto& h : r->hints) trace << " " << h.code << "(" << h.policy.value_or("-") << ")";
    SCOPED_TRACE(trace.str());
    EXPECT_EQ(r->verdict, c.verdict);
    if (c.egress) expect_decision(r->egress, *c.egress, "egress");
    if (c.ingress) expect_decision(r->ingress, *c.ingress, "ingress");
    if (c.egress_passed_by) {
        EXPECT_EQ(pass_names(r->egress), *c.egress_passed_by);
    }
    if (c.ingress_passed_by) {
        EXPECT_EQ(pass_names(r->ingress), *c.ingress_passed_by);
    }
    if (c.egress_cluster_policies) {
        EXPECT_EQ(r->egress.cluster_policies, *c.egress_cluster_policies);
    }
    if (c.ingress_cluster_policies) {
        EXPECT_EQ(r->ingress.cluster_policies, *c.ingress_cluster_policies);
    }
    const auto has = [&](const std::string& code) {
        return std::any_of(r->hints.begin(), r->hints.end(), [&](const Hint& h) { return h.code == code; });
    };
    for (const auto& h : c.hints) EXPECT_TRUE(has(h)) << "missing hint " << h;
    for (const auto& h : c.absent_hints) EXPECT_FALSE(has(h)) << "unexpected hint " << h;
}

const std::string admin_deny_to_b =
    cnp("deny-to-b", "Admin", 10, subject_ns_a + "  egress:\n" + egress_rule("no-b", "Deny", to_ns("b")));

std::vector<TierCase> tier_cases() {
    const std::string ingress_deny_all_to_x =
        cnp("deny-x", "Admin", 20, subject_pod_x + "  ingress:\n" + ingress_rule("all", "Deny", any_ns));
    return {
        // ---- the Admin tier ----
        {"AdminDenyDecidesEgress",
         admin_deny_to_b,
         Q("a/x", "b/z", 9090),
         "denied",
         Decision{"admin", "deny-to-b", 0, "Deny"},
         Decision{"none"},
         {hint::kAdminTierDeny}},
        {"AdminDenyOverridesAnAllowingNetworkPolicy",
         admin_deny_to_b + np("a", "y-egress", np_y_egress_to_z),
         Q("a/y", "b/z", 9090),
         "denied",
         Decision{"admin", "deny-to-b", 0, "Deny"},
         std::nullopt,
         {hint::kAdminTierDeny}},
        {"AdminDenyLeavesOtherPeers",
         admin_deny_to_b,
         Q("a/x", "c/w", 80),
         "allowed",
         Decision{"none"},
         Decision{"none"},
         {},
         {hint::kAdminTierDeny}},
        {"AdminDenyNotForOtherSubjects", admin_deny_to_b, Q("c/w", "b/z", 80), "allowed", Decision{"none"}},
        {"AdminAcceptOverridesNetworkPolicyIsolation",
         cnp("allow-x", "Admin", 5, subject_all + "  ingress:\n" + ingress_rule("from-z", "Accept", to_ns("b"))) +
             np("a", "x-deny", np_x_deny_all),
         Q("b/z", "a/x", 8080), "allowed", Decision{"none"}, Decision{"admin", "allow-x", 0, "Accept"}},
        // An egress Accept still leaves the destination's ingress to decide.
        {"EgressAcceptThenIngressDecides",
         cnp("allow-egress", "Admin", 5, subject_all + "  egress:\n" + egress_rule("all", "Accept", any_ns)) +
             np("a", "x-deny", np_x_deny_all),
         Q("b/z", "a/x", 8080), "denied", Decision{"admin", "allow-egress", 0, "Accept"}, Decision{"networkpolicy"}},
        {"LowerPriorityValueFirst",
         cnp("p10-deny", "Admin", 10, subject_ns_a + "  egress:\n" + egress_rule("d", "Deny", to_ns("b"))) +
             cnp("p5-accept", "Admin", 5, subject_ns_a + "  egress:\n" + egress_rule("a", "Accept", to_ns("b"))),
         Q("a/x", "b/z", 9090),
         "allowed",
         Decision{"admin", "p5-accept", 0, "Accept"},
         std::nullopt,
         {},
         {hint::kClusterPolicyPriorityTie},
         std::nullopt,
         std::nullopt,
         std::nullopt,
         Strings{"p5-accept", "p10-deny"}},
        {"RulesInOrderWithinAPolicy",
         cnp("ordered", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("first-port-80", "Accept", to_ns("b"), tcp_port(80)) +
                 egress_rule("then-all", "Deny", to_ns("b"))),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "ordered", 1, "Deny"}},
        {"RulesInOrderFirstMatchWins",
         cnp("ordered", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("first-port-80", "Accept", to_ns("b"), tcp_port(80)) +
                 egress_rule("then-all", "Deny", to_ns("b"))),
         Q("a/x", "b/z", 80), "allowed", Decision{"admin", "ordered", 0, "Accept"}},
        {"ProtocolMustMatch",
         cnp("udp-only", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("dns", "Deny", any_ns,
                             "    protocols:\n    - udp:\n        destinationPort:\n          number: 53\n")),
         Q("a/y", "a/x", 53), "allowed", Decision{"none"}},
        {"PortRange",
         cnp("range", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("r", "Deny", any_ns,
                             "    protocols:\n    - tcp:\n        destinationPort:\n          range: {start: 9000, "
                             "end: 9100}\n")),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "range", 0, "Deny"}},
        {"NamedPortResolvedOnTheDestination",
         cnp("named", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("http", "Deny", any_ns, "    protocols:\n    - destinationNamedPort: http\n")),
         Q("a/y", "b/z", 9090), "denied", Decision{"admin", "named", 0, "Deny"}},
        {"NamedPortOtherNumberDoesNotMatch",
         cnp("named", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("http", "Deny", any_ns, "    protocols:\n    - destinationNamedPort: http\n")),
         Q("a/y", "b/z", 8080), "allowed", Decision{"none"}},
        // ---- Pass ----
        {"PassHandsToAllowingNetworkPolicy",
         cnp("delegate", "Admin", 5, subject_all + "  ingress:\n" + ingress_rule("to-owners", "Pass", any_ns)) +
             cnp("deny-later", "Admin", 50, subject_all + "  ingress:\n" + ingress_rule("all", "Deny", any_ns)) +
             np("a", "x-from-y", np_x_allow_from_y),
         Q("a/y", "a/x", 8080),
         "allowed",
         std::nullopt,
         Decision{"networkpolicy"},
         {},
         {},
         std::nullopt,
         Strings{"delegate"}},
        {"PassToDenyingNetworkPolicy",
         cnp("delegate", "Admin", 5, subject_all + "  ingress:\n" + ingress_rule("to-owners", "Pass", any_ns)) +
             np("a", "x-from-y", np_x_allow_from_y),
         Q("b/z", "a/x", 8080),
         "denied",
         std::nullopt,
         Decision{"networkpolicy"},
         {hint::kAdminTierPassToDeny},
         {hint::kAdminTierDeny},
         std::nullopt,
         Strings{"delegate"}},
        {"PassToBaselineDeny",
         cnp("delegate", "Admin", 5, subject_all + "  egress:\n" + egress_rule("to-owners", "Pass", any_ns)) +
             cnp("deny-all", "Baseline", 5, subject_all + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090),
         "denied",
         Decision{"baseline", "deny-all", 0, "Deny"},
         std::nullopt,
         {hint::kBaselineTierDeny},
         {},
         Strings{"delegate"}},
        {"PassToDefaultAllow",
         cnp("delegate", "Admin", 5, subject_all + "  egress:\n" + egress_rule("to-owners", "Pass", any_ns)) +
             cnp("deny-later", "Admin", 9, subject_all + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090),
         "allowed",
         Decision{"none"},
         std::nullopt,
         {},
         {},
         Strings{"delegate"}},
        // ---- the Baseline tier ----
        {"BaselineDenyForPodsNoNetworkPolicySelects",
         cnp("baseline-deny", "Baseline", 10, subject_all + "  ingress:\n" + ingress_rule("all", "Deny", any_ns)),
         Q("b/z", "a/x", 8080),
         "denied",
         Decision{"none"},
         Decision{"baseline", "baseline-deny", 0, "Deny"},
         {hint::kBaselineTierDeny}},
        {"NetworkPolicyOverridesBaseline",
         cnp("baseline-deny", "Baseline", 10, subject_all + "  ingress:\n" + ingress_rule("all", "Deny", any_ns)) +
             np("a", "x-from-y", np_x_allow_from_y),
         Q("a/y", "a/x", 8080),
         "allowed",
         std::nullopt,
         Decision{"networkpolicy"},
         {},
         {hint::kBaselineTierDeny}},
        {"BaselineNotReachedForIsolatedPodEvenWhenDenied",
         cnp("baseline-accept", "Baseline", 10, subject_all + "  ingress:\n" + ingress_rule("all", "Accept", any_ns)) +
             np("a", "x-deny", np_x_deny_all),
         Q("b/z", "a/x", 8080), "denied", std::nullopt, Decision{"networkpolicy"}},
        {"BaselineAccept",
         cnp("baseline-accept", "Baseline", 10,
             subject_all + "  ingress:\n" + ingress_rule("from-b", "Accept", to_ns("b")) +
                 ingress_rule("rest", "Deny", any_ns)),
         Q("b/z", "a/x", 8080), "allowed", std::nullopt, Decision{"baseline", "baseline-accept", 0, "Accept"}},
        {"BaselinePassIsDefaultAllow",
         cnp("baseline-pass", "Baseline", 1, subject_all + "  ingress:\n" + ingress_rule("p", "Pass", any_ns)) +
             cnp("baseline-deny", "Baseline", 10, subject_all + "  ingress:\n" + ingress_rule("all", "Deny", any_ns)),
         Q("b/z", "a/x", 8080),
         "allowed",
         std::nullopt,
         Decision{"none"},
         {},
         {},
         std::nullopt,
         Strings{"baseline-pass"}},
        // ---- peers ----
        {"NetworksMatchPodIps",
         cnp("no-internal", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("rfc1918", "Deny", "    - networks: [10.0.0.0/8]\n")),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "no-internal", 0, "Deny"}},
        {"NetworksIpv6",
         cnp("no-internal", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("ula", "Deny", "    - networks: [\"fd00::/8\"]\n")),
         Q("a/x", "b/z", 9090, Protocol::TCP, IpFamily::V6), "denied", Decision{"admin", "no-internal", 0, "Deny"}},
        {"NetworksOtherFamilyDoNotMatch",
         cnp("no-internal", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("rfc1918", "Deny", "    - networks: [10.0.0.0/8]\n")),
         Q("a/x", "b/z", 9090, Protocol::TCP, IpFamily::V6), "allowed", Decision{"none"}},
        {"NodesPeerByLabel",
         cnp("no-control-plane", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("cp", "Deny",
                             "    - nodes:\n        matchExpressions:\n        - {key: "
                             "node-role.kubernetes.io/control-plane, operator: Exists}\n")),
         Q("a/x", "192.168.0.1", 6443), "denied", Decision{"admin", "no-control-plane", 0, "Deny"}},
        {"NodesPeerOtherNode",
         cnp("no-control-plane", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("cp", "Deny",
                             "    - nodes:\n        matchExpressions:\n        - {key: "
                             "node-role.kubernetes.io/control-plane, operator: Exists}\n")),
         Q("a/x", "192.168.0.2", 6443), "allowed", Decision{"none"}},
        // A pod's own node is no exemption from the cluster tiers (it is from NetworkPolicies).
        {"OwnNodeIsNotExempt",
         cnp("no-nodes", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("all-nodes", "Deny", "    - nodes: {}\n")),
         Q("a/x", "192.168.0.1", 10250), "denied", Decision{"admin", "no-nodes", 0, "Deny"}},
        {"HostNetworkPodIsNeverAPeer",
         cnp("deny-pods", "Admin", 5, subject_ns_a + "  egress:\n" + egress_rule("all-pods", "Deny", any_ns)),
         Q("a/x", "c/h", 80), "allowed", Decision{"none"}},
        {"HostNetworkPodIsNeverASubject",
         cnp("deny-from-c", "Admin", 5, subject_all + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("c/h", "a/x", 8080),
         "allowed",
         Decision{"none"},
         std::nullopt,
         {},
         {},
         std::nullopt,
         std::nullopt,
         std::nullopt,
         Strings{}},
        {"PodsPeerNeedsBothSelectors",
         cnp("deny-z", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("z", "Deny",
                             "    - pods:\n        namespaceSelector:\n          matchLabels: {team: blue}\n        "
                             "podSelector:\n          matchLabels: {app: z}\n")),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "deny-z", 0, "Deny"}},
        {"PodsSubjectSelectsOnlyItsPods",
         ingress_deny_all_to_x,
         Q("b/z", "a/y", 80),
         "allowed",
         std::nullopt,
         Decision{"none"},
         {},
         {},
         std::nullopt,
         std::nullopt,
         Strings{}},
        {"PodsSubjectSelectsItsPod",
         ingress_deny_all_to_x,
         Q("b/z", "a/x", 8080),
         "denied",
         std::nullopt,
         Decision{"admin", "deny-x", 0, "Deny"},
         {},
         {},
         std::nullopt,
         std::nullopt,
         Strings{"deny-x"}},
        // ---- fail closed: a peer of a newer API ----
        {"UnknownPeerInAcceptMatchesNothing",
         cnp("future", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("f", "Accept", "    - serviceAccounts: {name: x}\n")) +
             cnp("then-deny", "Admin", 6, subject_ns_a + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "then-deny", 0, "Deny"}},
        // A named port written inside tcp (it is a protocol entry of its own): not every TCP port.
        {"UnknownProtocolFieldInAcceptMatchesNothing",
         cnp("future", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("f", "Accept", any_ns, "    protocols:\n    - tcp: {destinationNamedPort: http}\n")) +
             cnp("then-deny", "Admin", 6, subject_ns_a + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "then-deny", 0, "Deny"}},
        {"UnknownPeerInDenyMatchesEverything",
         cnp("future", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("f", "Deny", "    - serviceAccounts: {name: x}\n")),
         Q("a/x", "192.0.2.1", 443), "denied", Decision{"admin", "future", 0, "Deny"}},
        // ---- v1alpha1 objects ----
        {"AdminNetworkPolicyAllowIsAccept",
         anp("allow-z", 5, subject_all + "  ingress:\n  - name: z\n    action: Allow\n    from:\n" + to_ns("b")) +
             np("a", "x-deny", np_x_deny_all),
         Q("b/z", "a/x", 8080), "allowed", std::nullopt, Decision{"admin", "AdminNetworkPolicy/allow-z", 0, "Accept"}},
        {"AdminNetworkPolicySharesThePriorityOrder",
         anp("anp-deny", 5, subject_ns_a + "  egress:\n  - name: d\n    action: Deny\n    to:\n" + to_ns("b")) +
             cnp("cnp-accept", "Admin", 10, subject_ns_a + "  egress:\n" + egress_rule("a", "Accept", to_ns("b"))),
         Q("a/x", "b/z", 9090),
         "denied",
         Decision{"admin", "AdminNetworkPolicy/anp-deny", 0, "Deny"},
         std::nullopt,
         {hint::kAdminTierDeny},
         {},
         std::nullopt,
         std::nullopt,
         std::nullopt,
         Strings{"AdminNetworkPolicy/anp-deny", "cnp-accept"}},
        {"BaselineAdminNetworkPolicyDeny",
         banp(subject_all + "  ingress:\n  - name: d\n    action: Deny\n    from:\n" + any_ns),
         Q("b/z", "a/x", 8080),
         "denied",
         std::nullopt,
         Decision{"baseline", "BaselineAdminNetworkPolicy/default", 0, "Deny"},
         {hint::kBaselineTierDeny}},
        {"V1beta1SameShape",
         cnp("deny-to-b", "Admin", 10, subject_ns_a + "  egress:\n" + egress_rule("no-b", "Deny", to_ns("b")),
             "v1beta1"),
         Q("a/x", "b/z", 9090), "denied", Decision{"admin", "deny-to-b", 0, "Deny"}},
        // ---- ambiguity, hairpin, Services ----
        {"EqualPrioritiesBothMatchingAreReported",
         cnp("tie-a", "Admin", 7, subject_ns_a + "  egress:\n" + egress_rule("a", "Accept", to_ns("b"))) +
             cnp("tie-b", "Admin", 7, subject_ns_a + "  egress:\n" + egress_rule("d", "Deny", to_ns("b"))),
         Q("a/x", "b/z", 9090),
         "allowed",
         Decision{"admin", "tie-a", 0, "Accept"},
         std::nullopt,
         {hint::kClusterPolicyPriorityTie}},
        {"EqualPrioritiesOneMatchingIsNoTie",
         cnp("tie-a", "Admin", 7, subject_ns_a + "  egress:\n" + egress_rule("a", "Accept", to_ns("b"))) +
             cnp("tie-b", "Admin", 7, subject_ns_a + "  egress:\n" + egress_rule("d", "Deny", to_ns("c"))),
         Q("a/x", "b/z", 9090),
         "allowed",
         Decision{"admin", "tie-a", 0, "Accept"},
         std::nullopt,
         {},
         {hint::kClusterPolicyPriorityTie}},
        {"OwnPodIpIsExempt", ingress_deny_all_to_x, Q("a/x", "a/x", 8080), "allowed", std::nullopt, Decision{"none"}},
        {"ServiceLoopingBackIsNotExempt", ingress_deny_all_to_x, Q("a/x", "10.96.0.10", 80), "denied"},
        {"ServiceEndpointsDecide", admin_deny_to_b, Q("b/z", "10.96.0.10", 80), "allowed"},
        // ---- domain names ----
        {"DomainNamesAreUndecided",
         cnp("fqdn", "Admin", 5,
             subject_ns_a + "  egress:\n" +
                 egress_rule("allow-example", "Accept", "    - domainNames: [example.com]\n") +
                 egress_rule("rest", "Deny", "    - networks: [0.0.0.0/0]\n")),
         Q("a/x", "203.0.113.7", 443),
         "denied",
         Decision{"admin", "fqdn", 1, "Deny"},
         std::nullopt,
         {hint::kDomainNameUndecided}},
        // ---- near misses of cluster rules ----
        {"NearMissOfAnAdminAcceptRule",
         cnp("allow-dns", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("dns", "Accept", to_ns("kube-systen"))) +
             cnp("deny-rest", "Admin", 9, subject_ns_a + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090),
         "denied",
         Decision{"admin", "deny-rest", 0, "Deny"},
         std::nullopt,
         {hint::kAdminTierDeny}},
        {"PortNearMissOfAnAdminAcceptRule",
         cnp("allow-b-80", "Admin", 5,
             subject_ns_a + "  egress:\n" + egress_rule("b80", "Accept", to_ns("b"), tcp_port(80))) +
             cnp("deny-rest", "Admin", 9, subject_ns_a + "  egress:\n" + egress_rule("all", "Deny", any_ns)),
         Q("a/x", "b/z", 9090),
         "denied",
         Decision{"admin", "deny-rest", 0, "Deny"},
         std::nullopt,
         {hint::kAdminTierDeny, hint::kPortNotAllowed}},
    };
}

std::string tier_case_name(const ::testing::TestParamInfo<TierCase>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Tiers, ClusterPolicyTiers, ::testing::ValuesIn(tier_cases()), tier_case_name);

// The diagnosis of a denying side names the Accept rule that "looks right" and exactly why it misses.
TEST(ClusterPolicyDiagnosis, ClosestAcceptRuleAndItsMiss) {
    ClusterObjects objs;
    ASSERT_FALSE(load_state_text(read_fixture("cluster.yaml"), "cluster.yaml", objs));
    const std::string manifests =
        cnp("allow-dns", "Admin", 5,
            subject_ns_a + "  egress:\n" +
                egress_rule("dns", "Accept", "    - namespaces:\n        matchLabels: {team: blues}\n")) +
        cnp("deny-rest", "Admin", 9, subject_ns_a + "  egress:\n" + egress_rule("all", "Deny", any_ns));
    ASSERT_FALSE(load_state_text(manifests, "p.yaml", objs));
    auto state = ClusterState::build(std::move(objs));
    auto r = explain_query(*state, Q("a/x", "b/z", 9090));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->egress.cluster_diagnoses.size(), 1u);
    const auto& d = r->egress.cluster_diagnoses[0];
    EXPECT_EQ(d.policy, "allow-dns");
    ASSERT_TRUE(d.tier.has_value());
    EXPECT_EQ(*d.tier, DecidingTier::Admin);
    ASSERT_TRUE(d.closest.has_value());
    EXPECT_EQ(d.closest->rule, 0);
    EXPECT_EQ(d.closest->rule_name, "dns");
    EXPECT_TRUE(d.closest->ports_match);
    EXPECT_FALSE(d.closest->peers_match);
    ASSERT_EQ(d.closest->misses.size(), 1u);
    EXPECT_EQ(d.closest->misses[0].kind, MissKind::NamespaceLabels);
    EXPECT_TRUE(d.closest->misses[0].near);
    EXPECT_EQ(miss_message(d.closest->misses[0]),
              "namespaces needs team=blues; the namespace b of destination pod b/z has team=blue (a small edit away)");
    // The deny rule that decided is not a "near miss": it matched.
    EXPECT_TRUE(r->egress.diagnoses.empty());
    const auto hint =
        std::find_if(r->hints.begin(), r->hints.end(), [](const Hint& h) { return h.code == hint::kLabelMismatch; });
    ASSERT_NE(hint, r->hints.end());
    EXPECT_EQ(hint->policy, "allow-dns");
}

// Without cluster policies every side reports the NetworkPolicy tier or none: the fields are always there.
TEST(ClusterPolicyDiagnosis, NetworkPolicyOnlyClusters) {
    ClusterObjects objs;
    ASSERT_FALSE(load_state_text(read_fixture("cluster.yaml"), "cluster.yaml", objs));
    ASSERT_FALSE(load_state_text(np("a", "x-from-y", np_x_allow_from_y), "p.yaml", objs));
    auto state = ClusterState::build(std::move(objs));
    auto r = explain_query(*state, Q("b/z", "a/x", 8080));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->verdict, "denied");
    EXPECT_EQ(tier_of(r->egress), "none");
    EXPECT_EQ(tier_of(r->ingress), "networkpolicy");
    EXPECT_TRUE(r->ingress.cluster_policies.empty());
    EXPECT_TRUE(r->ingress.passed_by.empty());
    EXPECT_EQ(r->ingress.diagnoses.size(), 1u);
}

}  // namespace
}  // namespace npt

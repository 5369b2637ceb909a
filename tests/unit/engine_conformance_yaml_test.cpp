// Conformance cases written as manifests: the part of the NetworkPolicy semantics that lives in
// the API server's defaulting (policyTypes, protocol: TCP, kubernetes.io/metadata.name), checked
// end to end through load_state_text -> ClusterState::build -> explain_query.
//
// policyTypes defaulting (networking/v1 SetDefaults_NetworkPolicy): when policyTypes is empty or
// absent it becomes [Ingress], plus Egress iff spec.egress has at least one rule (an explicit
// `egress: []` does not add it).
#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policy/explainer.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_CONFORMANCE_FIXTURES
#error "NPT_CONFORMANCE_FIXTURES must name tests/fixtures/conformance"
#endif

namespace npt {
namespace {

using Strings = std::vector<std::string>;

std::string read_fixture(const std::string& name) {
    std::ifstream in(std::string(NPT_CONFORMANCE_FIXTURES) + "/" + name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A NetworkPolicy manifest in namespace x named p; `spec` is the indented body of spec:.
std::string policy(const std::string& spec, const std::string& name = "p") {
    return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: " + name +
           "\n  namespace: x\nspec:\n" + spec;
}

struct YamlCase {
    std::string name;
    std::string policies;  // YAML documents (may be several, separated by ---)
    ExplainQuery q;
    std::string verdict;
    std::optional<Strings> egress_policies;
    std::optional<Strings> ingress_policies;
    std::optional<std::string> hint;  // a code that must be present
    std::optional<std::string> hint_policy;
};

void PrintTo(const YamlCase& c, std::ostream* os) {
    *os << c.name;
}

class YamlConformance : public ::testing::TestWithParam<YamlCase> {};

TEST_P(YamlConformance, Holds) {
    const auto& c = GetParam();
    ClusterObjects objs;
    const std::string cluster = read_fixture("cluster.yaml");
    ASSERT_FALSE(cluster.empty()) << "fixture cluster.yaml not found under " << NPT_CONFORMANCE_FIXTURES;
    auto err = load_state_text(cluster, "cluster.yaml", objs);
    ASSERT_FALSE(err.has_value()) << err->message;
    err = load_state_text(c.policies, "policies.yaml", objs);
    ASSERT_FALSE(err.has_value()) << err->message;
    auto state = ClusterState::build(std::move(objs));
    auto r = explain_query(*state, c.q);
    ASSERT_TRUE(r.ok()) << r.error().message;
    std::ostringstream trace;
    trace << "verdict=" << r->verdict << " egress.policies=" << r->egress.policies.size()
          << " ingress.policies=" << r->ingress.policies.size() << " hints:";
    for (const auto& h : r->hints) trace << " " << h.code << "(" << h.policy.value_or("-") << ")";
    SCOPED_TRACE(trace.str());
    EXPECT_EQ(r->verdict, c.verdict);
    if (c.egress_policies) {
        EXPECT_EQ(r->egress.policies, *c.egress_policies);
    }
    if (c.ingress_policies) {
        EXPECT_EQ(r->ingress.policies, *c.ingress_policies);
    }
    if (c.hint) {
        bool found = false;
        for (const auto& h : r->hints)
            if (h.code == *c.hint && (!c.hint_policy || h.policy == c.hint_policy)) found = true;
        EXPECT_TRUE(found) << "missing hint " << *c.hint;
    }
}

ExplainQuery Q(std::string from, std::string to, uint16_t port, Protocol proto = Protocol::TCP) {
    return ExplainQuery{std::move(from), std::move(to), port, proto, std::nullopt};
}

const Strings none{};
const Strings p_only{"x/p"};

const std::string ingress_from_b =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          pod: b\n";
const std::string egress_to_b =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  egress:\n  - to:\n    - podSelector:\n        matchLabels:\n          pod: b\n";
const std::string empty_egress_list =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  egress: []\n";
const std::string explicit_empty_types =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: []\n"
    "  egress:\n  - to:\n    - podSelector:\n        matchLabels:\n          pod: b\n";
const std::string egress_type_with_ingress_rules =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: [Egress]\n"
    "  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          pod: b\n";
const std::string both_types_no_egress =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: [Ingress, Egress]\n"
    "  ingress:\n  - {}\n";
const std::string default_deny = "  podSelector: {}\n";
const std::string port_without_protocol =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - ports:\n    - port: 80\n";
const std::string from_and_ports_empty_lists =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - from: []\n    ports: []\n";
const std::string named_udp_port =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - ports:\n    - port: serve-80-udp\n      protocol: UDP\n";
const std::string egress_named_http_any_ns =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: [Egress]\n"
    "  egress:\n  - to:\n    - namespaceSelector: {}\n    ports:\n    - port: http\n";
const std::string end_port =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - ports:\n    - port: 8000\n      endPort: 8010\n";
const std::string ns_metadata_name =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n          "
    "kubernetes.io/metadata.name: \"y\"\n";
const std::string ns_notin_expression =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n"
    "        - key: ns\n          operator: NotIn\n          values: [x]\n";
const std::string runbook_apiserver =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: [Egress]\n"
    "  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.43.0.1/32\n    ports:\n    - port: 443\n      "
    "protocol: TCP\n";
const std::string except_with_host_bits =
    "  podSelector:\n    matchLabels:\n      pod: a\n"
    "  policyTypes: [Egress]\n"
    "  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.0.1.1/4\n        except:\n        - 10.0.1.2/32\n";

std::vector<YamlCase> yaml_cases() {
    return {
        {"NoTypesIngressRulesOnlyDoesNotIsolateEgress", policy(ingress_from_b), Q("x/a", "y/a", 80), "allowed", none,
         none},
        {"NoTypesIngressRulesIsolateIngress", policy(ingress_from_b), Q("y/a", "x/a", 80), "denied", none, p_only},
        {"NoTypesEgressRulesIsolateEgress", policy(egress_to_b), Q("x/a", "y/a", 80), "denied", p_only, none},
        {"NoTypesEgressRulesAllowTheirPeers", policy(egress_to_b), Q("x/a", "x/b", 80), "allowed", p_only, none},
        // Ingress is always implied: the egress-only-looking policy denies all ingress to x/a.
        {"NoTypesEgressRulesStillIsolateIngress", policy(egress_to_b), Q("x/b", "x/a", 80), "denied", none, p_only,
         hint::kDefaultDeny, "x/p"},
        {"NoTypesEmptyEgressListDoesNotIsolateEgress", policy(empty_egress_list), Q("x/a", "y/a", 80), "allowed", none,
         none},
        {"NoTypesEmptyEgressListIsolatesIngress", policy(empty_egress_list), Q("x/b", "x/a", 80), "denied", none,
         p_only},
        {"ExplicitEmptyPolicyTypesIsDefaulted", policy(explicit_empty_types), Q("x/a", "y/a", 80), "denied", p_only,
         none},
        {"EgressTypeIgnoresIngressRules", policy(egress_type_with_ingress_rules), Q("y/a", "x/a", 80), "allowed", none,
         none},
        {"EgressTypeWithoutEgressRulesDeniesEgress", policy(egress_type_with_ingress_rules), Q("x/a", "x/b", 80),
         "denied", p_only, none},
        {"BothTypesNoEgressRulesDeniesEgress", policy(both_types_no_egress), Q("x/a", "x/b", 80), "denied", p_only,
         none},
        {"BothTypesIngressEmptyRuleAllowsAll", policy(both_types_no_egress), Q("y/a", "x/a", 80), "allowed", none,
         p_only},
        {"DefaultDenyManifestIsolatesAllPodsOfNamespace", policy(default_deny), Q("x/a", "x/b", 80), "denied", none,
         p_only, hint::kDefaultDeny, "x/p"},
        {"DefaultDenyManifestNotOtherNamespaces", policy(default_deny), Q("x/a", "y/a", 80), "allowed", none, none},
        {"PortWithoutProtocolIsTcp", policy(port_without_protocol), Q("y/a", "x/a", 80), "allowed"},
        {"PortWithoutProtocolIsNotUdp", policy(port_without_protocol), Q("y/a", "x/a", 80, Protocol::UDP), "denied",
         std::nullopt, std::nullopt, hint::kPortNotAllowed, "x/p"},
        {"EmptyFromAndPortsListsAllowEverything", policy(from_and_ports_empty_lists),
         Q("y/a", "x/a", 4242, Protocol::UDP), "allowed"},
        {"NamedUdpPortFromManifest", policy(named_udp_port), Q("y/a", "x/a", 80, Protocol::UDP), "allowed"},
        {"NamedUdpPortFromManifestNotTcp", policy(named_udp_port), Q("y/a", "x/a", 80), "denied"},
        {"EgressNamedPortPeerXB", policy(egress_named_http_any_ns), Q("x/a", "x/b", 8080), "allowed"},
        {"EgressNamedPortPeerYA", policy(egress_named_http_any_ns), Q("x/a", "y/a", 9090), "allowed"},
        {"EgressNamedPortPeerYAOtherNumber", policy(egress_named_http_any_ns), Q("x/a", "y/a", 8080), "denied"},
        {"EndPortUpperBound", policy(end_port), Q("y/a", "x/a", 8010), "allowed"},
        {"EndPortAbove", policy(end_port), Q("y/a", "x/a", 8011), "denied"},
        {"NamespaceMetadataNameAddedByApiServer", policy(ns_metadata_name), Q("y/a", "x/a", 80), "allowed"},
        {"NamespaceNotInExpression", policy(ns_notin_expression), Q("y/a", "x/a", 80), "allowed"},
        {"NamespaceNotInExpressionExcluded", policy(ns_notin_expression), Q("x/b", "x/a", 80), "denied"},
        {"RunbookApiserverVipDenied", policy(runbook_apiserver, "allow-apiserver"), Q("x/a", "10.43.0.1", 443),
         "denied", Strings{"x/allow-apiserver"}, std::nullopt, hint::kServiceVipDnat, "x/allow-apiserver"},
        // upstream e2e: cidr = podIP/4 (host bits set), except = other pod's IP /32.
        {"ExceptClauseCidrWithHostBitsDenied", policy(except_with_host_bits), Q("x/a", "x/b", 80), "denied", p_only,
         std::nullopt, hint::kIpBlockExcept, "x/p"},
        {"ExceptClauseCidrWithHostBitsAllowed", policy(except_with_host_bits), Q("x/a", "y/a", 80), "allowed", p_only},
    };
}

std::string yaml_case_name(const ::testing::TestParamInfo<YamlCase>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Manifests, YamlConformance, ::testing::ValuesIn(yaml_cases()), yaml_case_name);

}  // namespace
}  // namespace npt

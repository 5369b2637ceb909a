// Loading ClusterNetworkPolicy (v1alpha2, v1beta1), AdminNetworkPolicy and BaselineAdminNetworkPolicy
// (v1alpha1): the decoded model, and what the CRDs' OpenAPI and CEL rules reject, with the API server's
// wording, one line naming the object and the field.
#include <gtest/gtest.h>

#include <string>

#include "state/state_loader.hpp"

namespace npt {
namespace {

std::string cnp_json(std::string_view spec, std::string_view name = "guard",
                     std::string_view api = "policy.networking.k8s.io/v1alpha2") {
    return std::string(R"({"apiVersion":")") + std::string(api) +
           R"(","kind":"ClusterNetworkPolicy","metadata":{"name":")" + std::string(name) + R"("},"spec":)" +
           std::string(spec) + "}";
}

std::string kind_json(std::string_view kind, std::string_view name, std::string_view spec) {
    return std::string(R"({"apiVersion":"policy.networking.k8s.io/v1alpha1","kind":")") + std::string(kind) +
           R"(","metadata":{"name":")" + std::string(name) + R"("},"spec":)" + std::string(spec) + "}";
}

std::string load_error(const std::string& text) {
    ClusterObjects out;
    const auto err = load_state_text(text, "state.json", out);
    if (!err) return "<no error>";
    EXPECT_TRUE(out.cluster_policies.empty()) << "out changed on error";
    return err->message;
}

ClusterNetworkPolicy load_one(const std::string& text) {
    ClusterObjects out;
    const auto err = load_state_text(text, "state.json", out);
    EXPECT_FALSE(err.has_value()) << err->message;
    EXPECT_EQ(out.cluster_policies.size(), 1u);
    return out.cluster_policies.empty() ? ClusterNetworkPolicy{} : out.cluster_policies[0];
}

const char* kSubject = R"("subject":{"namespaces":{}})";

std::string spec(std::string_view rest, std::string_view head = R"("tier":"Admin","priority":10,)") {
    return "{" + std::string(head) + kSubject + (rest.empty() ? "" : ",") + std::string(rest) + "}";
}

TEST(ClusterPolicyLoader, DecodesEveryField) {
    const auto p = load_one(cnp_json(spec(
        R"("egress":[{"name":"r0","action":"Deny","to":[{"networks":["10.0.0.1/8","fd00::/8"]},{"nodes":{"matchLabels":{"role":"cp"}}},)"
        R"({"pods":{"namespaceSelector":{},"podSelector":{"matchLabels":{"app":"db"}}}},{"domainNames":["*.example.com"]}],)"
        R"("protocols":[{"tcp":{"destinationPort":{"number":80}}},{"udp":{"destinationPort":{"range":{"start":5000,"end":5010}}}},)"
        R"({"sctp":{"destinationPort":{"number":9}}}]}],)"
        R"("ingress":[{"action":"Pass","from":[{"namespaces":{"matchLabels":{"team":"a"}}}],"protocols":[{"destinationNamedPort":"http"}]}])")));
    EXPECT_EQ(p.kind, ClusterPolicyKind::ClusterNetworkPolicy);
    EXPECT_EQ(p.id(), "guard");
    EXPECT_EQ(p.tier, PolicyTier::Admin);
    EXPECT_EQ(p.priority, 10);
    EXPECT_FALSE(p.subject.pods.has_value());
    ASSERT_EQ(p.egress.size(), 1u);
    const auto& e = p.egress[0];
    EXPECT_EQ(e.name, "r0");
    EXPECT_EQ(e.action, RuleAction::Deny);
    ASSERT_EQ(e.peers.size(), 4u);
    EXPECT_EQ(e.peers[0].kind, ClusterPeer::Kind::Networks);
    ASSERT_EQ(e.peers[0].networks.size(), 2u);
    EXPECT_EQ(e.peers[0].networks[0].str(), "10.0.0.0/8");  // host bits masked
    EXPECT_EQ(e.peers[1].kind, ClusterPeer::Kind::Nodes);
    EXPECT_EQ(e.peers[2].kind, ClusterPeer::Kind::Pods);
    ASSERT_TRUE(e.peers[2].pods.pods.has_value());
    EXPECT_EQ(e.peers[3].kind, ClusterPeer::Kind::DomainNames);
    EXPECT_EQ(e.peers[3].domain_names, std::vector<std::string>{"*.example.com"});
    ASSERT_EQ(e.ports.size(), 3u);
    EXPECT_EQ(e.ports[0].protocol, Protocol::TCP);
    EXPECT_EQ(e.ports[0].port, 80);
    EXPECT_EQ(e.ports[0].end_port, 0);
    EXPECT_EQ(e.ports[1].protocol, Protocol::UDP);
    EXPECT_EQ(e.ports[1].port, 5000);
    EXPECT_EQ(e.ports[1].end_port, 5010);
    EXPECT_EQ(e.ports[2].protocol, Protocol::SCTP);
    EXPECT_EQ(e.ports[2].port, 9);
    ASSERT_EQ(p.ingress.size(), 1u);
    EXPECT_EQ(p.ingress[0].action, RuleAction::Pass);
    ASSERT_EQ(p.ingress[0].ports.size(), 1u);
    EXPECT_EQ(p.ingress[0].ports[0].kind, ClusterPort::Kind::NamedPort);
    EXPECT_EQ(p.ingress[0].ports[0].name, "http");
}

TEST(ClusterPolicyLoader, V1alpha1Kinds) {
    const auto a = load_one(kind_json(
        "AdminNetworkPolicy", "anp",
        R"({"priority":3,"subject":{"pods":{"namespaceSelector":{},"podSelector":{}}},"egress":[{"action":"Allow","to":[{"namespaces":{}}],)"
        R"("ports":[{"portNumber":{"port":53,"protocol":"UDP"}},{"portRange":{"start":1,"end":1024}},{"namedPort":"dns"}]}]})"));
    EXPECT_EQ(a.kind, ClusterPolicyKind::AdminNetworkPolicy);
    EXPECT_EQ(a.id(), "AdminNetworkPolicy/anp");
    EXPECT_EQ(a.tier, PolicyTier::Admin);
    EXPECT_EQ(a.priority, 3);
    ASSERT_EQ(a.egress.size(), 1u);
    EXPECT_EQ(a.egress[0].action, RuleAction::Accept);
    ASSERT_EQ(a.egress[0].ports.size(), 3u);
    EXPECT_EQ(a.egress[0].ports[0].protocol, Protocol::UDP);
    EXPECT_EQ(a.egress[0].ports[1].protocol, Protocol::TCP);  // defaulted
    EXPECT_EQ(a.egress[0].ports[1].end_port, 1024);
    EXPECT_EQ(a.egress[0].ports[2].kind, ClusterPort::Kind::NamedPort);

    const auto b = load_one(
        kind_json("BaselineAdminNetworkPolicy", "default",
                  R"({"subject":{"namespaces":{}},"ingress":[{"action":"Deny","from":[{"namespaces":{}}]}]})"));
    EXPECT_EQ(b.id(), "BaselineAdminNetworkPolicy/default");
    EXPECT_EQ(b.tier, PolicyTier::Baseline);
}

TEST(ClusterPolicyLoader, ThreeKindsOfOneNameAreThreeObjects) {
    ClusterObjects out;
    const std::string body = R"({"priority":1,"subject":{"namespaces":{}}})";
    ASSERT_FALSE(load_state_text("[" + kind_json("AdminNetworkPolicy", "default", body) + "," +
                                     cnp_json(spec(""), "default") + "," + cnp_json(spec(""), "default") + "]",
                                 "s.json", out));
    EXPECT_EQ(out.cluster_policies.size(), 2u);  // the second ClusterNetworkPolicy "default" replaced the first
}

TEST(ClusterPolicyLoader, UnknownPeerFieldsFailClosed) {
    const auto p = load_one(cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"serviceAccount":{"name":"x"}}]}])")));
    ASSERT_EQ(p.egress.size(), 1u);
    EXPECT_EQ(p.egress[0].peers[0].kind, ClusterPeer::Kind::Unknown);
}

// A protocol body with fields this version does not know (alone, or beside destinationPort) narrows the match
// in a newer API: it fails closed like an unknown peer rather than matching every port of the protocol.
TEST(ClusterPolicyLoader, UnknownProtocolFieldsFailClosed) {
    const auto p = load_one(cnp_json(spec(
        R"("egress":[{"action":"Accept","to":[{"namespaces":{}}],"protocols":[{"tcp":{"destinationNamedPort":"m"}},)"
        R"({"udp":{"destinationPort":{"number":53},"sourcePort":{"number":5353}}},)"
        R"({"tcp":{"destinationPort":{"number":80}}}]}])")));
    ASSERT_EQ(p.egress.size(), 1u);
    ASSERT_EQ(p.egress[0].ports.size(), 3u);
    EXPECT_EQ(p.egress[0].ports[0].kind, ClusterPort::Kind::Unknown);
    EXPECT_EQ(p.egress[0].ports[1].kind, ClusterPort::Kind::Unknown);
    EXPECT_EQ(p.egress[0].ports[2].kind, ClusterPort::Kind::Port);
    EXPECT_EQ(p.egress[0].ports[2].port, 80);
}

TEST(ClusterPolicyLoader, OtherVersionsAndGroupsAreNotOurs) {
    ClusterObjects out;
    LoadStats stats;
    ASSERT_FALSE(load_state_text(cnp_json(spec(""), "x", "policy.networking.k8s.io/v9"), "s.json", out, &stats));
    EXPECT_TRUE(out.cluster_policies.empty());
    EXPECT_EQ(stats.ignored_kinds, 1u);
    ASSERT_FALSE(load_state_text(cnp_json(spec(""), "x", "policy.networking.k8s.io/v1beta1"), "s.json", out));
    EXPECT_EQ(out.cluster_policies.size(), 1u);
}

struct ErrorCase {
    std::string text;
    std::string message;
};

TEST(ClusterPolicyLoader, ValidationErrors) {
    const std::string p = "state.json: ClusterNetworkPolicy guard: ";
    std::string rules26;
    for (int i = 0; i < 26; ++i) rules26 += std::string(i ? "," : "") + R"({"action":"Deny","to":[{"nodes":{}}]})";
    const ErrorCase cases[] = {
        {cnp_json(R"({"tier":"Cluster","priority":1,"subject":{"namespaces":{}}})"),
         p + R"(spec.tier: Unsupported value: "Cluster": supported values: "Admin", "Baseline")"},
        {cnp_json(R"({"priority":1,"subject":{"namespaces":{}}})"), p + "spec.tier: Required value"},
        {cnp_json(R"({"tier":"Admin","subject":{"namespaces":{}}})"), p + "spec.priority: Required value"},
        {cnp_json(R"({"tier":"Admin","priority":1001,"subject":{"namespaces":{}}})"),
         p + "spec.priority: Invalid value: 1001: should be less than or equal to 1000"},
        {cnp_json(R"({"tier":"Admin","priority":-1,"subject":{"namespaces":{}}})"),
         p + "spec.priority: Invalid value: -1: should be greater than or equal to 0"},
        {cnp_json(R"({"tier":"Admin","priority":1})"), p + "spec.subject: Required value"},
        {cnp_json(R"({"tier":"Admin","priority":1,"subject":{}})"),
         p + "spec.subject: Required value: exactly one of namespaces or pods"},
        {cnp_json(R"({"tier":"Admin","priority":1,"subject":{"namespaces":{},"pods":{"podSelector":{}}}})"),
         p + "spec.subject: Invalid value: namespaces and pods are both set: exactly one is allowed"},
        {cnp_json(R"({"tier":"Admin","priority":1,"subject":{"pods":{"namespaceSelector":{}}}})"),
         p + "spec.subject.pods.podSelector: Required value"},
        {cnp_json(spec(R"("egress":[)" + rules26 + "]")), p + "spec.egress: Too many: 26: must have at most 25 items"},
        {cnp_json(spec(R"("ingress":[{"action":"Allow","from":[{"namespaces":{}}]}])")),
         p + R"(spec.ingress[0].action: Unsupported value: "Allow": supported values: "Accept", "Deny", "Pass")"},
        {cnp_json(spec(R"("ingress":[{"from":[{"namespaces":{}}]}])")), p + "spec.ingress[0].action: Required value"},
        {cnp_json(spec(R"("ingress":[{"action":"Deny"}])")), p + "spec.ingress[0].from: Required value"},
        {cnp_json(spec(R"("ingress":[{"action":"Deny","from":[]}])")),
         p + "spec.ingress[0].from: Required value: must have at least 1 item"},
        {cnp_json(spec(R"("ingress":[{"action":"Deny","from":[{"networks":["10.0.0.0/8"]}]}])")),
         p + "spec.ingress[0].from[0].networks: Forbidden: not an ingress peer (ingress peers are namespaces or pods)"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"namespaces":{},"nodes":{}}]}])")),
         p + "spec.egress[0].to[0]: Too many: 2: must have at most 1 items"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{}]}])")),
         p + "spec.egress[0].to[0]: Required value: must have at least 1 items"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"networks":["10.0.0.0/33"]}]}])")),
         p + R"(spec.egress[0].to[0].networks[0]: Invalid value: "10.0.0.0/33": Invalid CIDR format provided)"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"networks":[]}]}])")),
         p + "spec.egress[0].to[0].networks: Required value: must have at least 1 item"},
        {cnp_json(spec(R"("egress":[{"action":"Accept","to":[{"domainNames":["-bad-.com"]}]}])")),
         p + R"(spec.egress[0].to[0].domainNames[0]: Invalid value: "-bad-.com": not a domain name (an exact name or *.suffix))"},
        {cnp_json(
             spec(R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[{"destinationNamedPort":"http"}]}])")),
         p + "spec.egress[0]: Invalid value: networks/nodes/domainNames peer cannot be set with namedPorts since "
             "there are no namedPorts for networks/nodes/domainNames"},
        {cnp_json(spec(
             R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[{"tcp":{"destinationPort":{"number":0}}}]}])")),
         p + "spec.egress[0].protocols[0].tcp.destinationPort.number: Invalid value: 0: should be greater than or "
             "equal to 1"},
        {cnp_json(spec(
             R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[{"udp":{"destinationPort":{"range":{"start":90,"end":80}}}}]}])")),
         p + "spec.egress[0].protocols[0].udp.destinationPort.range: Invalid value: Start port must be less than "
             "End port"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[{"tcp":{},"udp":{}}]}])")),
         p + "spec.egress[0].protocols[0]: Too many: 2: must have at most 1 items"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[{"sctp":{}}]}])")),
         p + "spec.egress[0].protocols[0].sctp: Required value: must have at least 1 items"},
        {cnp_json(spec(R"("egress":[{"action":"Deny","to":[{"nodes":{}}],"protocols":[]}])")),
         p + "spec.egress[0].protocols: Required value: must have at least 1 item"},
        {cnp_json(
             spec(R"("egress":[{"name":")" + std::string(101, 'r') + R"(","action":"Deny","to":[{"nodes":{}}]}])")),
         p + "spec.egress[0].name: Too long: may not be more than 100 bytes"},
        // v1alpha1
        {kind_json("BaselineAdminNetworkPolicy", "other", R"({"subject":{"namespaces":{}}})"),
         R"(state.json: BaselineAdminNetworkPolicy other: metadata.name: Invalid value: "other": Only one baseline )"
         R"(admin network policy with metadata.name="default" can be created in the cluster)"},
        {kind_json("BaselineAdminNetworkPolicy", "default",
                   R"({"subject":{"namespaces":{}},"egress":[{"action":"Pass","to":[{"namespaces":{}}]}]})"),
         R"(state.json: BaselineAdminNetworkPolicy default: spec.egress[0].action: Unsupported value: "Pass": )"
         R"(supported values: "Allow", "Deny")"},
        {kind_json(
             "AdminNetworkPolicy", "a",
             R"({"priority":1,"subject":{"namespaces":{}},"ingress":[{"action":"Accept","from":[{"namespaces":{}}]}]})"),
         R"(state.json: AdminNetworkPolicy a: spec.ingress[0].action: Unsupported value: "Accept": supported values: )"
         R"("Allow", "Deny", "Pass")"},
        {kind_json(
             "AdminNetworkPolicy", "a",
             R"({"priority":1,"subject":{"namespaces":{}},"egress":[{"action":"Deny","to":[{"nodes":{}}],"ports":[{"portNumber":{"port":80,"protocol":"ICMP"}}]}]})"),
         R"(state.json: AdminNetworkPolicy a: spec.egress[0].ports[0].portNumber.protocol: unsupported protocol )"
         R"("ICMP" (must be TCP, UDP or SCTP))"},
    };
    for (const auto& c : cases) EXPECT_EQ(load_error(c.text), c.message) << c.text;
}

// 100 rules are allowed in a v1alpha1 AdminNetworkPolicy (25 in a ClusterNetworkPolicy).
TEST(ClusterPolicyLoader, V1alpha1RuleLimit) {
    std::string rules;
    for (int i = 0; i < 100; ++i) rules += std::string(i ? "," : "") + R"({"action":"Deny","to":[{"nodes":{}}]})";
    const auto a = load_one(
        kind_json("AdminNetworkPolicy", "a", R"({"priority":1,"subject":{"namespaces":{}},"egress":[)" + rules + "]}"));
    EXPECT_EQ(a.egress.size(), 100u);
    EXPECT_EQ(load_error(kind_json("AdminNetworkPolicy", "a",
                                   R"({"priority":1,"subject":{"namespaces":{}},"egress":[)" + rules +
                                       R"(,{"action":"Deny","to":[{"nodes":{}}]}]})")),
              "state.json: AdminNetworkPolicy a: spec.egress: Too many: 101: must have at most 100 items");
}

TEST(ClusterPolicyLoader, NodeLabelsAreKept) {
    ClusterObjects out;
    ASSERT_FALSE(load_state_text(
        R"({"kind":"Node","apiVersion":"v1","metadata":{"name":"n1","labels":{"zone":"a"}},"status":{"addresses":[{"type":"InternalIP","address":"10.1.0.1"}]}})",
        "n.json", out));
    ASSERT_EQ(out.nodes.size(), 1u);
    EXPECT_EQ(out.nodes[0].labels, (LabelMap{{"zone", "a"}}));
}

}  // namespace
}  // namespace npt

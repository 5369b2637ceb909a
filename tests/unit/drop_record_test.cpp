// The tail's verdict on a kernel drop, without a kernel: a drop the policies explain keeps the
// engine's reasons; one they allow gets NOT_EXPLAINED_BY_POLICY with the likely cause.
#include "output/drop_record.hpp"

#include <gtest/gtest.h>

#include "policy/explainer.hpp"
#include "state/state_loader.hpp"

namespace {

std::shared_ptr<const npt::ClusterState> example_state() {
    auto objects = npt::load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"});
    EXPECT_TRUE(objects.ok());
    return npt::ClusterState::build(std::move(*objects));
}

npt::DropRecord record(const npt::ClusterState& s, const char* src, const char* dst, uint16_t port,
                       const std::string& ct_state, const std::string& reason = "NETFILTER_DROP") {
    npt::DropRecord r;
    r.reason = reason;
    r.enforcement = "netfilter/FORWARD";
    r.ct_state = ct_state;
    r.protocol_name = "TCP";
    r.count = 3;
    r.attributed = true;
    r.explanation = npt::explain_flow(s, *npt::IpAddr::parse(src), *npt::IpAddr::parse(dst), npt::Protocol::TCP,
                                      port, src, dst);
    npt::annotate_drop(r);
    return r;
}

bool has(const npt::DropRecord& r, const char* code) {
    for (const auto& h : r.explanation.hints)
        if (h.code == code) return true;
    return false;
}

}  // namespace

TEST(DropRecord, DeniedDropKeepsThePolicyExplanation) {
    auto s = example_state();
    auto r = record(*s, "10.42.0.22", "10.42.0.41", 5432, "new");  // checkout -> postgres, label drift
    EXPECT_EQ(r.explanation.verdict, "denied");
    EXPECT_TRUE(has(r, "LABEL_MISMATCH"));
    EXPECT_FALSE(has(r, "NOT_EXPLAINED_BY_POLICY"));
    auto j = npt::drop_json(r, "drop");
    EXPECT_EQ(j["event"], "drop");
    EXPECT_EQ(j["reason"], "NETFILTER_DROP");
    EXPECT_EQ(j["count"], 3);
    EXPECT_EQ(j["ct_state"], "new");
    EXPECT_EQ(j["src"]["pod"], "shop/checkout-6f8d7c9b5-k8j7h");
    EXPECT_EQ(j["ingress"]["policies"], nlohmann::ordered_json({"databases/allow-app-to-postgres"}));
}

TEST(DropRecord, AllowedButDroppedEstablishedIsAStaleConnection) {
    auto s = example_state();
    auto r = record(*s, "10.42.0.21", "93.184.216.34", 443, "established");  // frontend -> internet: allowed
    ASSERT_EQ(r.explanation.verdict, "allowed");
    ASSERT_TRUE(has(r, "NOT_EXPLAINED_BY_POLICY"));
    EXPECT_NE(r.explanation.hints.back().message.find("established"), std::string::npos);
}

TEST(DropRecord, AllowedButDroppedForANonPolicyReasonSaysSo) {
    auto s = example_state();
    auto r = record(*s, "10.42.0.21", "93.184.216.34", 443, "new", "NO_SOCKET");
    ASSERT_TRUE(has(r, "NOT_EXPLAINED_BY_POLICY"));
    EXPECT_NE(r.explanation.hints.back().message.find("not a policy enforcement point"), std::string::npos);
}

TEST(DropRecord, ConntrackDnatAddsTheServiceTheClientDialled) {
    auto s = example_state();
    npt::DropRecord r = record(*s, "10.42.0.61", "10.0.40.101", 6443, "new");  // operator -> API endpoint
    r.explanation.hints.clear();
    r.original_dst = npt::OriginalDestination{*npt::IpAddr::parse("10.43.0.1"), 443, std::string("default/kubernetes")};
    npt::annotate_drop(r);
    ASSERT_TRUE(has(r, "SERVICE_VIP_DNAT"));
    auto j = npt::drop_json(r, "drop");
    EXPECT_EQ(j["original_dst"]["ip"], "10.43.0.1");
    EXPECT_EQ(j["original_dst"]["port"], 443);
    EXPECT_EQ(j["original_dst"]["service"], "default/kubernetes");
}

TEST(DropRule, KubeRouterCommentsNameThePolicy) {
    auto r = npt::make_drop_rule("filter", "KUBE-NWPLCY-ABCDEF", 42, std::string("shop/allow-web policy"));
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.policy, "shop/allow-web");
    // A rule in a chain of no known CNI with such a comment is still kube-router's naming.
    r = npt::make_drop_rule("filter", "FORWARD", 7, std::string("db/allow-api policy"));
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.policy, "db/allow-api");
}

TEST(DropRule, CalicoChainsAndUnknownRules) {
    auto r = npt::make_drop_rule("filter", "cali-tw-cali1234", 9, std::string("cali:abc; End of tier default"));
    EXPECT_EQ(r.cni, "calico");
    EXPECT_FALSE(r.policy);
    r = npt::make_drop_rule("inet lab", "forward", std::nullopt, std::nullopt);
    EXPECT_FALSE(r.cni);
    EXPECT_FALSE(r.policy);
    auto j = npt::drop_json(npt::DropRecord{}, "drop");
    EXPECT_TRUE(j.contains("rule") && j["rule"].is_null());  // the key is always there
}

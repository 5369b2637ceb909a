// The tail's verdict on a kernel drop, without a kernel: a drop the policies explain keeps the
// engine's reasons; one they allow gets NOT_EXPLAINED_BY_POLICY with the likely cause.
#include "output/drop_record.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

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
    r.explanation =
        npt::explain_flow(s, *npt::IpAddr::parse(src), *npt::IpAddr::parse(dst), npt::Protocol::TCP, port, src, dst);
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

// ---- the rule that dropped it: hints, JSON, text ----------------------------------------------------------

namespace {

// An allowed flow (shop/frontend -> the internet, 443) dropped by `rule`.
npt::DropRecord allowed_drop(const npt::ClusterState& s, npt::DropRule rule, const std::string& ct_state = "new") {
    npt::DropRecord r = record(s, "10.42.0.21", "93.184.216.34", 443, ct_state);
    EXPECT_EQ(r.explanation.verdict, "allowed");
    r.explanation.hints.clear();
    npt::attribute_drop_rule(rule, &s);
    r.rule = std::move(rule);
    npt::annotate_drop(r);
    return r;
}

const npt::Hint* find_hint(const npt::DropRecord& r, const char* code) {
    for (const auto& h : r.explanation.hints)
        if (h.code == code) return &h;
    return nullptr;
}

npt::DropRule calico_gnp_drop() {
    npt::DropRule rule;
    rule.table = "filter";
    rule.chain = "cali-po-default.deny-egress";
    rule.handle = 12;
    rule.comment = "cali:Q1w2";
    rule.via = "nftrace";
    rule.family = "ip";
    rule.path = {"cali-FORWARD", "cali-from-wl-dispatch", "cali-fw-calib07053a3f11", "cali-po-default.deny-egress"};
    return rule;
}

std::vector<std::string> keys(const npt::Json& j) {
    std::vector<std::string> out;
    for (const auto& [k, v] : j.items()) out.push_back(k);
    return out;
}

}  // namespace

TEST(DropRecord, AGlobalNetworkPolicyDropIsAnUnmodelledPolicy) {
    auto s = example_state();
    auto r = allowed_drop(*s, calico_gnp_drop());
    const auto* h = find_hint(r, "UNMODELLED_POLICY");
    ASSERT_TRUE(h);
    EXPECT_FALSE(has(r, "NOT_EXPLAINED_BY_POLICY"));  // the drop is explained: by a policy the engine does not see
    EXPECT_EQ(h->direction, npt::Direction::Egress);
    EXPECT_EQ(h->policy, "default.deny-egress");
    for (const char* part : {"GlobalNetworkPolicy default.deny-egress",
                             "calico chain filter/cali-po-default.deny-egress", "rule 12", "does not model"})
        EXPECT_NE(h->message.find(part), std::string::npos) << part << " in " << h->message;
    // A Calico NetworkPolicy, and a kube-router comment naming a NetworkPolicy the state does not have.
    auto rule = calico_gnp_drop();
    rule.chain = rule.path.back() = "cali-po-np/shop/block-egress";
    r = allowed_drop(*s, rule);
    ASSERT_TRUE(find_hint(r, "UNMODELLED_POLICY"));
    EXPECT_NE(find_hint(r, "UNMODELLED_POLICY")->message.find("CalicoNetworkPolicy shop/block-egress"),
              std::string::npos);
    r = allowed_drop(*s, npt::make_drop_rule("filter", "KUBE-NWPLCY-ABC", 3, std::string("shop/legacy-block policy")));
    ASSERT_TRUE(find_hint(r, "UNMODELLED_POLICY"));
    EXPECT_EQ(find_hint(r, "UNMODELLED_POLICY")->policy, "shop/legacy-block");
    EXPECT_NE(find_hint(r, "UNMODELLED_POLICY")->message.find("not in the cluster state"), std::string::npos);
}

TEST(DropRecord, NoUnmodelledPolicyWhenTheEngineDeniesOrThePolicyIsInTheState) {
    auto s = example_state();
    // checkout -> postgres is denied by the NetworkPolicies: their explanation stands.
    auto r = record(*s, "10.42.0.22", "10.42.0.41", 5432, "new");
    ASSERT_EQ(r.explanation.verdict, "denied");
    auto rule = calico_gnp_drop();
    npt::attribute_drop_rule(rule, s.get());
    r.rule = rule;
    npt::annotate_drop(r);
    EXPECT_FALSE(has(r, "UNMODELLED_POLICY"));
    EXPECT_FALSE(has(r, "NOT_EXPLAINED_BY_POLICY"));
    // The rule is the CNI's for a NetworkPolicy the state has (and which allows the flow): CNI lag.
    npt::DropRule nflog;
    nflog.via = "nflog";
    nflog.nflog_group = 100;
    nflog.nflog_prefix = "DROP by policy shop/allow-internet-egress";
    r = allowed_drop(*s, nflog);
    EXPECT_FALSE(has(r, "UNMODELLED_POLICY"));
    const auto* h = find_hint(r, "NOT_EXPLAINED_BY_POLICY");
    ASSERT_TRUE(h);
    EXPECT_NE(h->message.find("NetworkPolicy shop/allow-internet-egress"), std::string::npos) << h->message;
    EXPECT_NE(h->message.find("CNI lag"), std::string::npos) << h->message;
    // Established: still the stale connection, naming the policy's rule.
    r = allowed_drop(*s, nflog, "established");
    h = find_hint(r, "NOT_EXPLAINED_BY_POLICY");
    ASSERT_TRUE(h);
    EXPECT_NE(h->message.find("established"), std::string::npos);
    EXPECT_NE(h->message.find("shop/allow-internet-egress"), std::string::npos);
}

TEST(DropRecord, NotExplainedNamesTheCnisChainAndPod) {
    auto s = example_state();
    // Calico's End of tier for the frontend's egress, and a hashed policy chain of no policy of the state.
    const std::string end_of_tier = "End of tier default. Drop if no policies passed packet";
    auto r = allowed_drop(*s, npt::make_drop_rule("filter", "cali-fw-calib07053a3f11", 9, end_of_tier));
    auto* h = find_hint(r, "NOT_EXPLAINED_BY_POLICY");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->direction, npt::Direction::Egress);
    EXPECT_NE(h->message.find("calico chain filter/cali-fw-calib07053a3f11"), std::string::npos) << h->message;
    EXPECT_NE(h->message.find("for the egress of pod shop/frontend-7d9f8b6c5-q2w8x"), std::string::npos) << h->message;
    r = allowed_drop(*s, npt::make_drop_rule("filter", "cali-po-_AAAAAAAAAAAAAAAAAAA", 9, std::nullopt));
    h = find_hint(r, "NOT_EXPLAINED_BY_POLICY");
    ASSERT_TRUE(h);
    EXPECT_NE(h->message.find("a policy that is not in the state"), std::string::npos) << h->message;
    std::ostringstream text;
    npt::write_drop_text(text, r, true);
    EXPECT_NE(text.str().find("(calico, the chain of a policy not in the state)"), std::string::npos) << text.str();
}

TEST(DropRecord, KubeRouterRejectTakesTheFlowsDirection) {
    // kube-router's REJECT says "destined for" in a pod chain that serves both directions: the frontend is the
    // flow's source, so the drop is its egress.
    auto s = example_state();
    auto r = allowed_drop(*s, npt::make_drop_rule("filter", "KUBE-POD-FW-4X5TBXAQ2KYYTOD6", 12,
                                                  std::string("rule to REJECT traffic destined for POD "
                                                              "name:frontend-7d9f8b6c5-q2w8x namespace:shop")));
    EXPECT_EQ(r.rule->direction, "egress");
    EXPECT_EQ(find_hint(r, "NOT_EXPLAINED_BY_POLICY")->direction, npt::Direction::Egress);
    std::ostringstream text;
    npt::write_drop_text(text, r, true);
    EXPECT_NE(text.str().find("    rule: filter/KUBE-POD-FW-4X5TBXAQ2KYYTOD6 handle 12 \"rule to REJECT traffic "
                              "destined for POD name:frontend-7d9f8b6c5-q2w8x namespace:shop\" (kube-router, "
                              "pod shop/frontend-7d9f8b6c5-q2w8x egress)\n"),
              std::string::npos)
        << text.str();
}

TEST(DropRecord, RuleJsonShape) {
    auto s = example_state();
    auto r = allowed_drop(*s, calico_gnp_drop());
    auto j = npt::drop_json(r, "drop");
    EXPECT_EQ(keys(j["rule"]),
              (std::vector<std::string>{"table", "chain", "handle", "comment", "cni", "policy", "via", "family", "path",
                                        "pod", "direction", "policy_kind", "policy_in_state", "evaluated_policies"}));
    EXPECT_EQ(j["rule"]["table"], "filter");
    EXPECT_EQ(j["rule"]["handle"], 12);
    EXPECT_EQ(j["rule"]["cni"], "calico");
    EXPECT_EQ(j["rule"]["policy"], "default.deny-egress");
    EXPECT_EQ(j["rule"]["policy_kind"], "GlobalNetworkPolicy");
    EXPECT_EQ(j["rule"]["policy_in_state"], false);
    EXPECT_EQ(j["rule"]["pod"], "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_EQ(j["rule"]["direction"], "egress");
    EXPECT_EQ(j["rule"]["evaluated_policies"], npt::Json({"default.deny-egress"}));
    EXPECT_EQ(j["rule"]["path"].size(), 4u);
    // Only an NFLOG record: table, chain, handle and comment are null; the nflog object; a base chain's policy.
    npt::DropRule nflog;
    nflog.via = "nflog";
    nflog.nflog_group = 100;
    nflog.nflog_prefix = "DROP by policy shop/default-deny";
    r = allowed_drop(*s, nflog);
    j = npt::drop_json(r, "drop");
    EXPECT_EQ(keys(j["rule"]), (std::vector<std::string>{"table", "chain", "handle", "comment", "cni", "policy", "via",
                                                         "policy_kind", "policy_in_state", "nflog"}));
    EXPECT_TRUE(j["rule"]["table"].is_null());
    EXPECT_TRUE(j["rule"]["chain"].is_null());
    EXPECT_TRUE(j["rule"]["handle"].is_null());
    EXPECT_TRUE(j["rule"]["comment"].is_null());
    EXPECT_EQ(j["rule"]["via"], "nflog");
    EXPECT_EQ(j["rule"]["policy"], "shop/default-deny");
    EXPECT_EQ(j["rule"]["policy_in_state"], true);
    EXPECT_EQ(j["rule"]["nflog"], (npt::Json{{"group", 100}, {"prefix", "DROP by policy shop/default-deny"}}));
    npt::DropRule chain_policy;
    chain_policy.table = "lab";
    chain_policy.chain = "forward";
    chain_policy.family = "inet";
    chain_policy.chain_policy = true;
    chain_policy.via = "nftrace";
    r = allowed_drop(*s, chain_policy);
    j = npt::drop_json(r, "drop");
    EXPECT_EQ(keys(j["rule"]), (std::vector<std::string>{"table", "chain", "handle", "comment", "cni", "policy", "via",
                                                         "family", "chain_policy"}));
    EXPECT_EQ(j["rule"]["chain_policy"], true);
    EXPECT_TRUE(j["rule"]["cni"].is_null());
    EXPECT_TRUE(j["rule"]["policy"].is_null());
}

TEST(DropRecord, RuleTextLine) {
    auto s = example_state();
    auto r = allowed_drop(*s, calico_gnp_drop());
    std::ostringstream text;
    npt::write_drop_text(text, r, true);
    EXPECT_NE(text.str().find("    rule: filter/cali-po-default.deny-egress handle 12 \"cali:Q1w2\" (calico, "
                              "GlobalNetworkPolicy default.deny-egress, pod shop/frontend-7d9f8b6c5-q2w8x egress; "
                              "policies evaluated: default.deny-egress)\n"),
              std::string::npos)
        << text.str();
    EXPECT_NE(text.str().find("    UNMODELLED_POLICY: "), std::string::npos);
    std::ostringstream brief;
    npt::write_drop_text(brief, r, false);  // one line
    const std::string line = brief.str();
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

TEST(DropRecord, CalicoEndpointChainOfAnUnknownInterfaceIsTheFlowsEnd) {
    // The chain's interface is not Calico's "cali" + sha1 name (the lab's bridged pods): the to-workload chain is
    // still the destination's, the from-workload chain the source's.
    auto s = example_state();
    auto r = record(*s, "10.42.0.22", "10.42.0.41", 5432, "new");  // checkout -> postgres, denied
    r.rule = npt::make_drop_rule("filter", "cali-tw-veth1234abcd", 9, std::string("End of tier default"), s.get());
    ASSERT_FALSE(r.rule->pod);
    npt::annotate_drop(r);
    EXPECT_EQ(r.rule->pod, "databases/postgres-0");
    EXPECT_EQ(r.rule->direction, "ingress");
    auto rule = calico_gnp_drop();
    rule.path = {"cali-FORWARD", "cali-fw-veth0000aaaa", "cali-po-default.deny-egress"};
    r = allowed_drop(*s, rule);
    EXPECT_EQ(r.rule->pod, "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_EQ(r.rule->direction, "egress");
    // No endpoint chain on the way (fexit: no path): no pod is guessed.
    rule.path.clear();
    r = allowed_drop(*s, rule);
    EXPECT_FALSE(r.rule->pod);
}

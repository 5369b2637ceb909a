// One text renderer for a dropped flow: the local tail renders its DropRecord, the cluster-wide tail the JSON line
// an agent streamed for the same record (drop_json). Both must read the same: every case below goes through both
// paths and compares what they would print, for denials by each tier, a Pass, NetworkPolicy diagnoses, hints,
// fixes, the netfilter rule and flows no cluster state explained.
#include "output/drop_text.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "policy/explainer.hpp"
#include "policy/fix.hpp"
#include "state/state_loader.hpp"

namespace {

std::shared_ptr<const npt::ClusterState> cluster() {
    auto objects = npt::load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml",
                                          std::string(NPT_EXAMPLES_DIR) + "/cluster-policies.yaml"});
    EXPECT_TRUE(objects.ok());
    return npt::ClusterState::build(std::move(*objects));
}

npt::DropRecord drop(const npt::ClusterState& s, const char* src, const char* dst, uint16_t port, bool fixes) {
    npt::DropRecord r;
    r.first_seen = r.last_seen = std::chrono::system_clock::time_point(std::chrono::seconds(1'765'000'000));
    r.node = "node-a";
    r.reason = "NETFILTER_DROP";
    r.enforcement = "netfilter/FORWARD";
    r.backend = "nftables";
    r.ct_state = "new";
    r.protocol_name = "TCP";
    r.count = 7;
    r.attributed = true;
    r.explanation =
        npt::explain_flow(s, *npt::IpAddr::parse(src), *npt::IpAddr::parse(dst), npt::Protocol::TCP, port, src, dst);
    if (fixes) npt::add_fixes(s, r.explanation);
    npt::annotate_drop(r);
    return r;
}

std::string render(const npt::DropText& d, bool details) {
    std::ostringstream out;
    npt::write_drop_text(out, d, details);
    npt::write_drop_summary_row(out, d);
    return out.str();
}

// What the local tail prints and what the cluster-wide tail prints from the agent's line, compared.
void expect_same_text(const npt::DropRecord& r, const char* event) {
    const npt::DropText local = npt::drop_text(r, event);
    auto remote = npt::drop_text_from_json(npt::drop_json(r, event));
    ASSERT_TRUE(remote.ok()) << remote.error().message;
    EXPECT_EQ(render(local, true), render(*remote, true));
    EXPECT_EQ(local, *remote);
}

TEST(DropText, LocalAndClusterWideTailsPrintTheSame) {
    auto s = cluster();
    // checkout -> postgres: the Admin tier denies it (deny-db-egress), with its fixes.
    auto admin = drop(*s, "10.42.0.22", "10.42.0.41", 5432, true);
    expect_same_text(admin, "drop");
    // frontend -> payments-api on a port its NetworkPolicy does not open: the Admin tier passes it on.
    expect_same_text(drop(*s, "10.42.0.21", "10.42.0.31", 9999, true), "drop");
    // checkout -> monitoring: the Baseline tier denies it.
    expect_same_text(drop(*s, "10.42.0.22", "10.42.0.51", 9090, false), "resumed");
    // operators -> the internet: NetworkPolicy isolation with a diagnosis per policy.
    expect_same_text(drop(*s, "10.42.0.61", "203.0.113.7", 443, true), "drop");
    // An allowed flow the kernel dropped, with the rule that did it.
    auto allowed = drop(*s, "10.42.0.10", "10.42.0.41", 53, false);
    allowed.rule = npt::make_drop_rule("filter", "KUBE-NWPLCY-ABCDEFGHIJKLMNOP", 4,
                                       std::string("rule to ACCEPT traffic from all sources"), s.get());
    npt::annotate_drop(allowed);
    expect_same_text(allowed, "drop");
    // No cluster state: no verdict and no details, whatever the rule.
    auto unattributed = admin;
    unattributed.attributed = false;
    unattributed.rule_trace = "not_visible";
    unattributed.backend = "iptables-legacy";
    expect_same_text(unattributed, "drop");
}

TEST(DropText, TheDenialsReadAsTheEngineDecidedThem) {
    auto s = cluster();
    const auto admin = npt::drop_text(drop(*s, "10.42.0.22", "10.42.0.41", 5432, true), "drop");
    ASSERT_FALSE(admin.denied_sides.empty());
    EXPECT_EQ(admin.denied_sides[0].direction, "egress");  // egress first, as the engine evaluates
    EXPECT_EQ(admin.denied_sides[0].pod, "shop/checkout-6f8d7c9b5-k8j7h");
    EXPECT_EQ(admin.denied_sides[0].denied.rfind("denied by admin policy deny-db-egress (rule ", 0), 0u)
        << admin.denied_sides[0].denied;
    EXPECT_FALSE(admin.fixes.empty());
    const std::string text = render(admin, true);
    EXPECT_NE(text.find("x7  policy: denied\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\n    fix (egress): "), std::string::npos) << text;
    EXPECT_NE(text.find("\n         7  node-a TCP shop/checkout-6f8d7c9b5-k8j7h (10.42.0.22) -> "
                        "databases/postgres-0 (10.42.0.41):5432 NETFILTER_DROP at netfilter/FORWARD  (denied)\n"),
              std::string::npos)
        << text;

    const auto baseline = npt::drop_text(drop(*s, "10.42.0.22", "10.42.0.51", 9090, false), "resumed");
    ASSERT_FALSE(baseline.denied_sides.empty());
    EXPECT_EQ(baseline.denied_sides.back().denied.rfind("denied by baseline policy monitoring-baseline (rule ", 0), 0u)
        << baseline.denied_sides.back().denied;
    EXPECT_EQ(render(baseline, false).rfind("(resumed) ", 0), 0u);

    const auto passed = npt::drop_text(drop(*s, "10.42.0.21", "10.42.0.31", 9999, false), "drop");
    bool passed_on = false;
    for (const auto& side : passed.denied_sides)
        for (const auto& p : side.passed_on) passed_on |= p.rfind("policy deny-db-egress (rule ", 0) == 0;
    EXPECT_TRUE(passed_on) << render(passed, true);
}

TEST(DropText, AnAgentLineWithoutItsFieldsIsAnError) {
    EXPECT_FALSE(npt::drop_text_from_json(npt::Json::array()).ok());
    auto line = npt::drop_json(npt::DropRecord{}, "drop");
    line.erase("enforcement");
    auto d = npt::drop_text_from_json(line);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message.find("\"enforcement\""), std::string::npos) << d.error().message;
}

}  // namespace

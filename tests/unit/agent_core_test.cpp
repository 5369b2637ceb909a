// The agent's metrics (labels, the series cap, the text format) and its /events fan-out (filters, a slow
// client cut off without ever blocking the publisher), and --listen parsing.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "agent/agent_command.hpp"
#include "agent/drop_metrics.hpp"
#include "agent/event_hub.hpp"

namespace npt::agent {
namespace {

DropRecord denied_ingress(const std::string& src_pod, const std::string& dst_pod, std::vector<std::string> policies) {
    DropRecord r;
    r.attributed = true;
    r.reason = "NETFILTER_DROP";
    auto& e = r.explanation;
    e.verdict = "denied";
    e.src.pod = src_pod;
    e.dst.pod = dst_pod;
    e.egress.direction = Direction::Egress;
    e.egress.pod = src_pod;
    e.ingress.direction = Direction::Ingress;
    e.ingress.pod = dst_pod;
    e.ingress.isolated = true;
    e.ingress.allowed = false;
    e.ingress.policies = std::move(policies);
    return r;
}

TEST(DropLabels, IngressDenialNamesTheDestinationAndItsPolicies) {
    auto r = denied_ingress("shop/web", "db/postgres-0", {"db/zeta", "db/allow-api"});
    const auto l = drop_labels(r);
    EXPECT_EQ(l.namespace_, "db");
    EXPECT_EQ(l.pod, "postgres-0");
    EXPECT_EQ(l.direction, "ingress");
    EXPECT_EQ(l.reason, "NETFILTER_DROP");
    EXPECT_EQ(l.policy, "allow-api,zeta");  // names, sorted
}

TEST(DropLabels, EgressDenialWinsBecauseItsHookRunsFirst) {
    auto r = denied_ingress("shop/web", "db/postgres-0", {"db/allow-api"});
    r.explanation.egress.isolated = true;
    r.explanation.egress.allowed = false;
    r.explanation.egress.policies = {"shop/default-deny"};
    const auto l = drop_labels(r);
    EXPECT_EQ(l.direction, "egress");
    EXPECT_EQ(l.namespace_, "shop");
    EXPECT_EQ(l.pod, "web");
    EXPECT_EQ(l.policy, "default-deny");
}

TEST(DropLabels, AllowedFlowsAndUnattributedDropsAreNoneAndUnknown) {
    auto r = denied_ingress("shop/web", "db/postgres-0", {});
    r.explanation.ingress.allowed = true;
    r.explanation.verdict = "allowed";
    auto l = drop_labels(r);
    EXPECT_EQ(l.direction, "none");
    EXPECT_EQ(l.pod, "postgres-0");  // the destination
    EXPECT_EQ(l.policy, "");
    r.attributed = false;
    r.explanation.dst.pod.reset();
    l = drop_labels(r);
    EXPECT_EQ(l.direction, "unknown");
    EXPECT_EQ(l.pod, "web");  // the source when the destination is not a pod
}

TEST(DropMetrics, CountsAddUpPerSeries) {
    DropMetrics m(100);
    m.add(denied_ingress("a/x", "b/y", {"b/p"}), 3);
    m.add(denied_ingress("a/x2", "b/y", {"b/p"}), 2);  // another source, same labels
    m.add(denied_ingress("a/x", "b/z", {"b/p"}), 1);
    EXPECT_EQ(m.series(), 2u);
    std::string out;
    m.render(out);
    EXPECT_NE(out.find("# TYPE netpol_trace_drops_total counter\n"), std::string::npos);
    EXPECT_NE(out.find("netpol_trace_drops_total{namespace=\"b\",pod=\"y\",direction=\"ingress\",reason=\"NETFILTER_"
                       "DROP\",policy=\"p\"} 5\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("pod=\"z\",direction=\"ingress\",reason=\"NETFILTER_DROP\",policy=\"p\"} 1\n"),
              std::string::npos);
}

TEST(DropMetrics, SeriesBeyondTheCapGoToOneOverflowSeries) {
    DropMetrics m(4);  // 3 real series + the overflow one
    for (int i = 0; i < 10; ++i) m.add(denied_ingress("a/x", "b/pod-" + std::to_string(i), {"b/p"}), 1);
    EXPECT_EQ(m.series(), 4u);
    EXPECT_EQ(m.overflowed(), 7u);
    std::string out;
    m.render(out);
    EXPECT_NE(out.find("namespace=\"_other\",pod=\"_other\",direction=\"ingress\",reason=\"NETFILTER_DROP\","
                       "policy=\"_other\"} 7\n"),
              std::string::npos)
        << out;
    // A series that exists keeps counting after the cap is reached.
    m.add(denied_ingress("a/x", "b/pod-0", {"b/p"}), 5);
    out.clear();
    m.render(out);
    EXPECT_NE(out.find("pod=\"pod-0\",direction=\"ingress\",reason=\"NETFILTER_DROP\",policy=\"p\"} 6\n"),
              std::string::npos);
}

// A drop an Admin-tier rule denied is counted in netpol_trace_drops_total as before (its NetworkPolicy labels) and
// under the deciding rule in netpol_trace_cluster_policy_drops_total.
TEST(DropMetrics, ClusterPolicyDecisionsHaveTheirOwnFamily) {
    DropMetrics m(100);
    auto admin = denied_ingress("a/x", "db/postgres-0", {});
    admin.explanation.ingress.decided_by.tier = DecidingTier::Admin;
    admin.explanation.ingress.decided_by.rule = ClusterRuleRef{"deny-db", 2, std::string("block-databases"), 10};
    admin.explanation.ingress.decided_by.action = RuleAction::Deny;
    m.add(admin, 3);
    auto unnamed = admin;
    unnamed.explanation.ingress.decided_by.rule->rule_name.reset();
    unnamed.explanation.ingress.decided_by.rule->rule = 0;
    m.add(unnamed, 1);
    m.add(denied_ingress("a/x", "b/y", {"b/p"}), 2);  // a NetworkPolicy's: not in the new family
    std::string out;
    m.render(out);
    EXPECT_NE(out.find("# TYPE netpol_trace_cluster_policy_drops_total counter\n"), std::string::npos);
    EXPECT_NE(out.find("netpol_trace_cluster_policy_drops_total{tier=\"admin\",policy=\"deny-db\",rule=\"block-"
                       "databases\",direction=\"ingress\"} 3\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("netpol_trace_cluster_policy_drops_total{tier=\"admin\",policy=\"deny-db\",rule=\"0\","
                       "direction=\"ingress\"} 1\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("netpol_trace_drops_total{namespace=\"db\",pod=\"postgres-0\",direction=\"ingress\",reason="
                       "\"NETFILTER_DROP\",policy=\"\"} 4\n"),
              std::string::npos)
        << out;
    EXPECT_EQ(out.find("policy=\"b/p\""), std::string::npos);
}

TEST(DropMetrics, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

EventFilter filter(std::vector<std::string> namespaces, std::string pod = {}, std::vector<std::string> reasons = {}) {
    EventFilter f;
    f.scope.namespaces = std::move(namespaces);
    f.scope.pod = std::move(pod);
    f.reasons = std::move(reasons);
    return f;
}

TEST(EventHub, EachStreamGetsTheDropsItsFilterSelects) {
    EventHub hub(8);
    auto db = hub.subscribe(filter({"db"}));
    auto shop = hub.subscribe(filter({"shop"}, "web"));
    auto other = hub.subscribe(filter({"billing"}));
    auto tc = hub.subscribe(filter({}, {}, {"TC_INGRESS"}));
    auto all = hub.subscribe(filter({}));
    hub.publish(denied_ingress("shop/web", "db/postgres-0", {}), "line1\n");
    hub.publish(denied_ingress("shop/api", "db/postgres-0", {}), "line2\n");
    using std::chrono::milliseconds;
    EXPECT_EQ(db->take(milliseconds(10)), (std::vector<std::string>{"line1\n", "line2\n"}));
    EXPECT_EQ(shop->take(milliseconds(10)), (std::vector<std::string>{"line1\n"}));
    EXPECT_TRUE(other->take(milliseconds(10)).empty());
    EXPECT_TRUE(tc->take(milliseconds(10)).empty());  // NETFILTER_DROP only
    EXPECT_EQ(all->take(milliseconds(10)).size(), 2u);
}

// fix=1 streams get the line with fixes, computed only when such a stream wants the drop.
TEST(EventHub, StreamsThatAskForFixesGetTheLineWithThem) {
    EventHub hub(8);
    auto plain = hub.subscribe(filter({"db"}));
    auto with_fixes_filter = filter({"db"});
    with_fixes_filter.fix = true;
    auto with_fixes = hub.subscribe(with_fixes_filter);
    const auto r = denied_ingress("shop/web", "db/postgres-0", {});
    EXPECT_TRUE(hub.wants_fixes(r));
    EXPECT_FALSE(hub.wants_fixes(denied_ingress("shop/web", "billing/x", {})));
    const std::string fixed = "line-with-fixes\n";
    hub.publish(r, "line\n", &fixed);
    hub.publish(r, "update\n");  // no fix line: everyone gets the plain one
    using std::chrono::milliseconds;
    EXPECT_EQ(plain->take(milliseconds(10)), (std::vector<std::string>{"line\n", "update\n"}));
    EXPECT_EQ(with_fixes->take(milliseconds(10)), (std::vector<std::string>{"line-with-fixes\n", "update\n"}));
}

TEST(EventHub, ASlowStreamIsCutOffAndNeverBlocksThePublisher) {
    EventHub hub(8, /*max_queued=*/16);
    auto slow = hub.subscribe(filter({}));
    auto fast = hub.subscribe(filter({}));
    const auto r = denied_ingress("shop/web", "db/postgres-0", {});
    size_t fast_got = 0;
    for (int i = 0; i < 1000; ++i) {
        hub.publish(r, "x\n");  // returns at once whatever the streams do
        fast_got += fast->take(std::chrono::milliseconds(0)).size();
    }
    EXPECT_EQ(fast_got, 1000u);
    EXPECT_TRUE(slow->cut_off());
    EXPECT_TRUE(slow->closed());
    EXPECT_TRUE(slow->take(std::chrono::milliseconds(0)).empty());  // its backlog is dropped
    EXPECT_EQ(hub.cut_off(), 1u);
    EXPECT_EQ(hub.subscribers(), 1u);
}

TEST(EventHub, StreamsAreCappedAndEndWhenTheAgentStops) {
    EventHub hub(2);
    auto a = hub.subscribe(filter({}));
    auto b = hub.subscribe(filter({}));
    EXPECT_EQ(hub.subscribe(filter({})), nullptr);
    hub.unsubscribe(b);
    auto c = hub.subscribe(filter({}));
    ASSERT_NE(c, nullptr);
    std::thread waiter([&] {
        // Wakes on close_all, long before its timeout.
        EXPECT_TRUE(a->take(std::chrono::seconds(30)).empty());
    });
    hub.close_all();
    waiter.join();
    EXPECT_TRUE(a->closed());
    EXPECT_FALSE(a->cut_off());
    EXPECT_EQ(hub.subscribe(filter({})), nullptr);
}

TEST(EventHub, ReasonsAreNormalized) {
    EXPECT_EQ(normalize_reason("netfilter_drop"), "NETFILTER_DROP");
    EXPECT_EQ(normalize_reason("SKB_DROP_REASON_TC_INGRESS"), "TC_INGRESS");
}

TEST(ListenAddress, Forms) {
    auto a = parse_listen_address("0.0.0.0:9842");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "0.0.0.0");
    EXPECT_EQ(a->port, 9842);
    a = parse_listen_address(":9000");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "0.0.0.0");
    a = parse_listen_address("[::1]:0");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "::1");
    EXPECT_EQ(a->port, 0);
    EXPECT_FALSE(parse_listen_address("9842"));
    const auto bad_port = parse_listen_address("host:70000");
    ASSERT_FALSE(bad_port);
    EXPECT_NE(bad_port.error().message.find("0 to 65535"), std::string::npos);
    EXPECT_FALSE(parse_listen_address("host:http"));
}

}  // namespace
}  // namespace npt::agent

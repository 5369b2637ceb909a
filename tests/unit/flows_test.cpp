// The working connections room: the JSON line contract (written, read back, every bad field one line), the agent's
// table (its bounds and eviction counter under a burst of 50,000 distinct connections, age, what changed), the
// journal (read back after a restart, rotation within its budget), filters and resolution against the state.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "flows/connection.hpp"
#include "flows/connection_table.hpp"
#include "flows/flows_journal.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

namespace npt {
namespace {

using namespace std::chrono_literals;

std::vector<Connection> read_flows(const std::string& text) {
    std::istringstream in(text);
    auto flows = read_connections(in, "flows");
    EXPECT_TRUE(flows.ok()) << flows.error().message;
    return flows ? *flows : std::vector<Connection>{};
}

std::string flow_line(const std::string& src, const std::string& dst, int port) {
    return R"({"src":{"ip":")" + src + R"("},"dst":{"ip":")" + dst + R"(","port":)" + std::to_string(port) + "}}\n";
}

Connection conn(uint32_t n, Side side = Side::Client, TimePoint seen = TimePoint(std::chrono::seconds(1'800'000'000))) {
    Connection c;
    c.src.ip = IpAddr::v4(0x0a000000u + n);
    c.dst.ip = IpAddr::v4(0x0a640001u);
    c.port = 8080;
    c.side = side;
    c.count = 1;
    c.first_seen = c.last_seen = seen;
    c.node = "node-1";
    c.observed_by = ObservedBy::TcpState;
    return c;
}

TEST(Connections, WritesTheContractLine) {
    Connection c;
    c.src.ip = *IpAddr::parse("10.42.0.22");
    c.src.pod = "shop/checkout-6f8d7c9b5-k8j7h";
    c.src.ns = "shop";
    c.src.workload = "Deployment/checkout";
    c.src.labels = {{"app.kubernetes.io/name", "checkout"}};
    c.dst.ip = *IpAddr::parse("10.43.0.10");
    c.port = 53;
    c.protocol = Protocol::UDP;
    c.service = "kube-system/kube-dns";
    c.side = Side::Client;
    c.count = 3;
    c.first_seen = parse_rfc3339("2026-12-07T01:00:00Z");
    c.last_seen = parse_rfc3339("2026-12-07T01:02:03.7Z");
    c.node = "node-1";
    c.observed_by = ObservedBy::Conntrack;
    EXPECT_EQ(connection_json(c),
              R"({"src":{"ip":"10.42.0.22","pod":"shop/checkout-6f8d7c9b5-k8j7h","namespace":"shop",)"
              R"("workload":"Deployment/checkout","labels":{"app.kubernetes.io/name":"checkout"}},)"
              R"("dst":{"ip":"10.43.0.10","pod":null,"namespace":null,"workload":null,"labels":{},"port":53,)"
              R"("service":"kube-system/kube-dns"},"protocol":"UDP","side":"client","count":3,)"
              R"("first_seen":"2026-12-07T01:00:00Z","last_seen":"2026-12-07T01:02:03Z","node":"node-1",)"
              R"("observed_by":"conntrack"})");
    auto back = parse_connection(connection_json(c));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(ConnectionKey::of(*back), ConnectionKey::of(c));
    EXPECT_EQ(back->src.labels, c.src.labels);
    EXPECT_EQ(back->service, c.service);
    EXPECT_FALSE(back->dst.pod.has_value());
}

TEST(Connections, ReadsTheContractFields) {
    const auto flows = read_flows(
        R"({"src":{"ip":"10.42.0.21","pod":"shop/frontend-1","namespace":"shop","workload":"Deployment/frontend","labels":{"app":"web"}},)"
        R"("dst":{"ip":"10.43.0.10","port":53,"service":"kube-system/kube-dns"},"protocol":"UDP","side":"client","count":12,)"
        R"("first_seen":"2026-12-07T01:00:00Z","last_seen":"2026-12-07T01:02:03.5Z","node":"node-1","observed_by":"conntrack"})"
        "\n\n"
        R"({"src":{"ip":"fd00::1"},"dst":{"ip":"fd00::2","port":8080}})");
    ASSERT_EQ(flows.size(), 2u);
    EXPECT_EQ(flows[0].src.ip.str(), "10.42.0.21");
    EXPECT_EQ(flows[0].port, 53);
    EXPECT_EQ(flows[0].protocol, Protocol::UDP);
    EXPECT_EQ(flows[0].service.value_or(""), "kube-system/kube-dns");
    EXPECT_EQ(flows[0].src.pod.value_or(""), "shop/frontend-1");
    EXPECT_EQ(flows[0].src.workload.value_or(""), "Deployment/frontend");
    EXPECT_EQ(flows[0].src.labels, (LabelMap{{"app", "web"}}));
    EXPECT_EQ(flows[0].observed_by, ObservedBy::Conntrack);
    EXPECT_EQ(flows[0].side, Side::Client);
    EXPECT_EQ(flows[0].count, 12u);
    EXPECT_EQ(flows[0].node, "node-1");
    ASSERT_TRUE(flows[0].last_seen.has_value());
    EXPECT_EQ(*flows[0].last_seen, *parse_rfc3339("2026-12-07T01:02:03.500Z"));
    EXPECT_EQ(flows[1].protocol, Protocol::TCP);  // the default
    EXPECT_FALSE(flows[1].last_seen.has_value());
}

TEST(Connections, EachBadFieldIsOneLineNamingTheLineAndField) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not json", "flows line 2: invalid JSON"},
        {"[1,2]", "flows line 2: expected a JSON object"},
        {R"({"dst":{"ip":"10.0.0.1","port":80}})", "flows line 2: src:"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"port":80}})", "flows line 2: dst.ip: required"},
        {R"({"src":{"ip":"10.0.0.300"},"dst":{"ip":"10.0.0.1","port":80}})",
         "flows line 2: src.ip: invalid IP address"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"fd00::1","port":80}})", "different address families"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":0}})", "dst.port: expected a number 1-65535"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":"80"}})", "dst.port: expected a number 1-65535"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80},"protocol":"ICMP"})", "protocol: \"ICMP\""},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80},"side":"both"})", "side: \"both\""},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80},"last_seen":"yesterday"})",
         "last_seen: \"yesterday\" is not an RFC 3339 time"},
        {R"({"src":{"ip":"10.0.0.1","labels":{"a":"1","a":"2"}},"dst":{"ip":"10.0.0.2","port":80}})",
         "src.labels: key \"a\" given twice"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80,"labels":{"a":1}}})",
         "dst.labels[\"a\"]: expected a string"},
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80},"observed_by":"ebpf"})",
         "observed_by: \"ebpf\""},
        // A value echoed in the error is escaped: still one line.
        {R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.0.0.2","port":80},"side":"cli\nent"})",
         R"(side: "cli\nent" is not client or server)"},
    };
    for (const auto& [line, expected] : cases) {
        std::istringstream in(flow_line("10.0.0.1", "10.0.0.2", 80) + line + "\n");
        auto r = read_connections(in, "flows");
        ASSERT_FALSE(r.ok()) << line;
        EXPECT_NE(r.error().message.find(expected), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
    }
}

TEST(Connections, Rfc3339AndDurations) {
    EXPECT_EQ(parse_rfc3339("2026-12-07T01:02:03Z"), parse_rfc3339("2026-12-07T02:02:03+01:00"));
    EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:10Z")->time_since_epoch(), std::chrono::seconds(10));
    for (const char* bad :
         {"2026-12-07", "2026-12-07T01:02:03", "2026-13-07T01:02:03Z", "2026-12-07T01:02:03.Z",
          "2026-12-07T01:02:03+0100", "2026-12-07 01:02:03Z", "2026-12-07T01:02:03Zjunk", "4052-01-01T00:00:00Z"})
        EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
    EXPECT_EQ(parse_duration("90s"), std::chrono::seconds(90));
    EXPECT_EQ(parse_duration("1h30m"), std::chrono::seconds(5400));
    EXPECT_EQ(parse_duration("7d"), std::chrono::seconds(7 * 86400));
    EXPECT_EQ(parse_duration("36500d"), std::chrono::seconds(36500LL * 86400));
    for (const char* bad : {"", "10", "h", "5w", "-5m", "5m3", "36501d", "9223372036854775807d", "36500d1s"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
}

TEST(ConnectionTable, ABurstOf50000DistinctConnectionsStaysWithinItsBoundsAndCountsEvictions) {
    ConnectionTable table({10'000, std::chrono::hours(24)});
    for (uint32_t i = 0; i < 50'000; ++i) table.add(conn(i));
    EXPECT_EQ(table.size(), 10'000u);
    EXPECT_EQ(table.evicted(), 40'000u);
    // The most recent stay: the last 10,000 added.
    const auto kept = table.select({});
    ASSERT_EQ(kept.size(), 10'000u);
    EXPECT_EQ(kept.front().src.ip, IpAddr::v4(0x0a000000u + 49'999));
    EXPECT_EQ(kept.back().src.ip, IpAddr::v4(0x0a000000u + 40'000));
    // A connection seen again moves to the front and is not the next evicted.
    table.add(conn(40'000));
    table.add(conn(50'000));
    EXPECT_EQ(table.evicted(), 40'001u);
    const auto after = table.select({});
    EXPECT_EQ(after.back().src.ip, IpAddr::v4(0x0a000000u + 40'002));
}

TEST(ConnectionTable, CountsAddUpAndSidesStayApart) {
    ConnectionTable table({100, std::chrono::hours(24)});
    auto a = conn(1);
    a.count = 3;
    table.add(a);
    auto b = conn(1);
    b.count = 2;
    b.last_seen = *b.last_seen + 5s;
    table.add(b);
    table.add(conn(1, Side::Server));
    ASSERT_EQ(table.size(), 2u);
    const auto all = table.select({});
    const auto& client = all[0].side == Side::Client ? all[0] : all[1];
    EXPECT_EQ(client.count, 5u);
    EXPECT_EQ(*client.last_seen, *a.last_seen + 5s);
    EXPECT_EQ(*client.first_seen, *a.first_seen);
}

TEST(ConnectionTable, ResolutionRunsOnNewEntriesAndRetriesUnresolvedOnes) {
    ConnectionTable table({100, std::chrono::hours(24)});
    int calls = 0;
    const auto unresolved = [&](Connection&) { ++calls; };
    table.add(conn(1), unresolved);
    table.add(conn(1), unresolved);
    EXPECT_EQ(calls, 2);  // still no pod: tried again
    const auto resolves = [&](Connection& c) {
        ++calls;
        c.dst.pod = "shop/x";
    };
    table.add(conn(1), resolves);
    table.add(conn(1), resolves);
    EXPECT_EQ(calls, 3);
}

TEST(ConnectionTable, ExpiresByAgeAndReportsWhatChanged) {
    ConnectionTable table({100, std::chrono::hours(1)});
    const TimePoint t0(std::chrono::seconds(1'800'000'000));
    table.add(conn(1, Side::Client, t0));
    table.add(conn(2, Side::Client, t0 + 30min));
    EXPECT_EQ(table.take_changed().size(), 2u);
    EXPECT_TRUE(table.take_changed().empty());
    table.add(conn(2, Side::Client, t0 + 40min));
    EXPECT_EQ(table.take_changed().size(), 1u);
    EXPECT_EQ(table.expire(t0 + 61min), 1u);
    EXPECT_EQ(table.size(), 1u);
    EXPECT_EQ(table.expired(), 1u);
    EXPECT_EQ(table.evicted(), 0u);
}

TEST(ConnectionFilter, NamespacePodAndSince) {
    Connection c = conn(1);
    c.src.ns = "shop";
    c.src.pod = "shop/web-1";
    c.dst.ns = "payments";
    c.dst.pod = "payments/api-1";
    EXPECT_TRUE(ConnectionFilter{}.matches(c));
    EXPECT_TRUE((ConnectionFilter{{"payments"}, "", {}}.matches(c)));
    EXPECT_TRUE((ConnectionFilter{{"kube-system", "shop"}, "", {}}.matches(c)));
    EXPECT_FALSE((ConnectionFilter{{"kube-system"}, "", {}}.matches(c)));
    EXPECT_TRUE((ConnectionFilter{{}, "payments/api-1", {}}.matches(c)));
    EXPECT_TRUE((ConnectionFilter{{"shop"}, "web-1", {}}.matches(c)));
    EXPECT_FALSE((ConnectionFilter{{"shop"}, "api-1", {}}.matches(c)));
    EXPECT_TRUE((ConnectionFilter{{}, "", *c.last_seen - 1s}.matches(c)));
    EXPECT_FALSE((ConnectionFilter{{}, "", *c.last_seen + 1s}.matches(c)));
}

TEST(Connections, ResolvedAgainstTheStateAtTheTimeSeen) {
    auto objects = load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"});
    ASSERT_TRUE(objects.ok()) << objects.error().message;
    auto state = ClusterState::build(std::move(*objects));
    Connection c;
    c.src.ip = *IpAddr::parse("10.42.0.22");
    c.dst.ip = *IpAddr::parse("10.43.0.10");
    c.port = 53;
    c.side = Side::Client;
    resolve_connection(*state, c);
    EXPECT_EQ(c.src.pod.value_or(""), "shop/checkout-6f8d7c9b5-k8j7h");
    EXPECT_EQ(c.src.ns.value_or(""), "shop");
    EXPECT_EQ(c.src.workload.value_or(""), "Deployment/checkout");  // through its ReplicaSet
    EXPECT_FALSE(c.dst.pod.has_value());
    EXPECT_EQ(c.service.value_or(""), "kube-system/kube-dns");
    // The server side sees the endpoint: no Service.
    Connection s = c;
    s.service.reset();
    s.side = Side::Server;
    s.dst.ip = *IpAddr::parse("10.42.0.10");
    resolve_connection(*state, s);
    EXPECT_EQ(s.dst.pod.value_or(""), "kube-system/coredns-6799fbcd5-x7k2p");
    EXPECT_FALSE(s.service.has_value());
}

class JournalDir : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            std::filesystem::temp_directory_path() / ("npt-journal-" + std::to_string(::getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::string path() const { return dir_ / "flows.jsonl"; }
    std::filesystem::path dir_;
};

TEST_F(JournalDir, ARestartReadsBackTheLatestOfEachConnection) {
    ConnectionTable table({100, std::chrono::hours(24)});
    auto journal = FlowsJournal::open(path(), 1 << 20);
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    for (uint32_t i = 0; i < 5; ++i) table.add(conn(i));
    ASSERT_TRUE(journal->append(table.take_changed(), [&] { return table.all(); }).ok());
    auto again = conn(2);
    again.count = 10;
    again.last_seen = *again.last_seen + 1h;
    table.add(again);
    ASSERT_TRUE(journal->append(table.take_changed(), [&] { return table.all(); }).ok());

    // A restart: a new table from the journal.
    const auto loaded = FlowsJournal::open(path(), 1 << 20)->load();
    EXPECT_EQ(loaded.bad_lines, 0u);
    ASSERT_EQ(loaded.connections.size(), 5u);
    EXPECT_EQ(loaded.connections.back().src.ip, IpAddr::v4(0x0a000002u));  // the most recently seen last
    EXPECT_EQ(loaded.connections.back().count, 11u);
    ConnectionTable restored({100, std::chrono::hours(24)});
    for (auto c : loaded.connections) restored.restore(std::move(c));
    EXPECT_EQ(restored.size(), 5u);
    EXPECT_EQ(restored.select({}).front().count, 11u);
}

TEST_F(JournalDir, RotatesWithinItsBudgetAndKeepsEveryConnection) {
    ConnectionTable table({1000, std::chrono::hours(24)});
    const uint64_t budget = 64 * 1024;
    auto journal = FlowsJournal::open(path(), budget);
    ASSERT_TRUE(journal.ok());
    for (int round = 0; round < 200; ++round) {
        for (uint32_t i = 0; i < 20; ++i) {
            auto c = conn(i);
            c.last_seen = *c.last_seen + std::chrono::seconds(round);
            table.add(c);
        }
        ASSERT_TRUE(journal->append(table.take_changed(), [&] { return table.all(); }).ok());
    }
    EXPECT_GT(journal->rotations(), 0u);
    const auto size = std::filesystem::file_size(path()) + std::filesystem::file_size(path() + ".1");
    EXPECT_LE(size, budget);
    const auto loaded = journal->load();
    ASSERT_EQ(loaded.connections.size(), 20u);
    for (const auto& c : loaded.connections) EXPECT_EQ(c.count, 200u) << connection_json(c);
}

TEST_F(JournalDir, ALineCutShortByACrashIsSkippedAndCounted) {
    {
        std::ofstream out(path());
        out << connection_json(conn(1)) << "\n" << connection_json(conn(2)).substr(0, 40);
    }
    const auto loaded = FlowsJournal::open(path(), 1 << 20)->load();
    EXPECT_EQ(loaded.connections.size(), 1u);
    EXPECT_EQ(loaded.bad_lines, 1u);
}

TEST_F(JournalDir, AnUnwritablePathIsOneLine) {
    auto j = FlowsJournal::open((dir_ / "missing" / "flows.jsonl").string(), 1 << 20);
    ASSERT_FALSE(j.ok());
    EXPECT_NE(j.error().message.find("--flows-journal"), std::string::npos);
    EXPECT_EQ(j.error().message.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace npt

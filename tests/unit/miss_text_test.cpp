// The words for structured misses and the hints about them (output/miss_text): every way a rule can miss,
// through the engine on a cluster built for it (tests/fixtures/explain/miss-wording.yaml, one isolating policy
// per way), and the misses that no diagnosis shows today (cluster rules that do not "look right") built by hand.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "output/miss_text.hpp"
#include "policy/explainer.hpp"
#include "state/state_loader.hpp"

namespace npt {
namespace {

const std::string kFixtures = NPT_FIXTURES_DIR "/explain";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// One line per miss of each closest rule and per hint, as miss-wording.expected lists them.
std::string render(const Explanation& e) {
    std::string out = "== " + e.from + " -> " + e.to + " " + protocol_name(e.protocol) + "/" + std::to_string(e.port) +
                      ": " + e.verdict + "\n";
    for (const auto* side : {&e.egress, &e.ingress}) {
        for (const auto* diags : {&side->cluster_diagnoses, &side->diagnoses}) {
            for (const auto& d : *diags) {
                if (!d.closest) continue;
                for (const auto& m : d.closest->misses)
                    out += std::string(direction_name(side->direction)) + " " + d.policy + " " +
                           miss_kind_name(m.kind) + (m.near ? " (near)" : "") + ": " + miss_message(m) + "\n";
            }
        }
    }
    for (const auto& h : e.hints)
        out += "hint " + h.code + " " + direction_name(h.direction) + ": " + hint_message(h) + "\n";
    return out;
}

TEST(MissText, EveryWayToMissReadsAsDocumented) {
    auto objects = load_state_files({kFixtures + "/miss-wording.yaml"});
    ASSERT_TRUE(objects) << objects.error().message;
    auto state = ClusterState::build(std::move(*objects));
    std::ifstream probes(kFixtures + "/miss-wording-probes.jsonl");
    std::string got;
    size_t n = 0;
    for (std::string line; std::getline(probes, line);) {
        const auto j = nlohmann::json::parse(line);
        ExplainQuery q;
        q.from = j.at("from").get<std::string>();
        q.to = j.at("to").get<std::string>();
        q.port = j.at("port").get<uint16_t>();
        q.protocol = *parse_protocol(j.value("protocol", "TCP"));
        auto e = explain_query(*state, q);
        ASSERT_TRUE(e) << line << ": " << e.error().message;
        got += render(*e);
        ++n;
    }
    EXPECT_EQ(n, 8u);
    const std::string want = read_file(kFixtures + "/miss-wording.expected");
    std::istringstream w(want), g(got);
    size_t line_no = 1;
    for (std::string a, b; std::getline(w, a) && std::getline(g, b); ++line_no)
        ASSERT_EQ(b, a) << "miss-wording.expected line " << line_no;
    EXPECT_EQ(got, want);
}

Miss miss(MissKind kind, Direction dir) {
    Miss m;
    m.kind = kind;
    m.direction = dir;
    return m;
}

IpAddr ip(const char* text) {
    return *IpAddr::parse(text);
}

TEST(MissText, MissesNoDiagnosisShowsToday) {
    Miss domains = miss(MissKind::DomainName, Direction::Egress);
    domains.detail = DomainNameMiss{{"example.com", "*.example.org"}, ip("192.0.2.7")};
    EXPECT_EQ(miss_message(domains),
              "domainNames example.com, *.example.org: whether destination 192.0.2.7 is one of them depends on DNS, "
              "which the state does not record");

    EXPECT_EQ(miss_message(miss(MissKind::UnknownPeer, Direction::Ingress)),
              "a peer with no field this version of netpol-trace knows (a newer API): an Accept rule treats it as "
              "matching nothing");

    Miss not_a_node = miss(MissKind::NotANode, Direction::Egress);
    not_a_node.detail = NotAnEndpointMiss{NotAnEndpointMiss::Peer::Nodes, RemoteEnd{ip("10.1.0.9"), "back/server"}};
    EXPECT_EQ(miss_message(not_a_node), "a nodes peer matches node addresses; destination pod back/server is not one");
    not_a_node.detail = NotAnEndpointMiss{NotAnEndpointMiss::Peer::Nodes, RemoteEnd{ip("198.51.100.1")}};
    EXPECT_EQ(miss_message(not_a_node), "a nodes peer matches node addresses; destination 198.51.100.1 is not one");

    // Ingress: no "nodes or networks" advice, which is for egress peers.
    Miss not_a_pod = miss(MissKind::NotAPod, Direction::Ingress);
    not_a_pod.detail = NotAnEndpointMiss{NotAnEndpointMiss::Peer::Pods, RemoteEnd{ip("198.51.100.1")}};
    EXPECT_EQ(miss_message(not_a_pod), "a pods peer matches pods only; source 198.51.100.1 is not a pod IP");

    // Labels are listed sorted as text ("a-b=2" before "a=3"), and an empty set says so.
    Miss labels = miss(MissKind::PodLabels, Direction::Ingress);
    LabelMiss lm;
    lm.field = SelectorField::PodsPodSelector;
    lm.op = LabelRequirement::Op::In;
    lm.key = "app";
    lm.values = {"web", "api"};
    lm.subject = LabelMiss::Subject::Pod;
    lm.name = "front/client";
    lm.found = LabelMiss::Found::Labels;
    lm.labels = {{"z", "1"}, {"a-b", "2"}, {"a", "3"}};
    labels.detail = lm;
    EXPECT_EQ(miss_message(labels),
              "pods.podSelector needs app in (web, api); source pod front/client has no app label (a-b=2, a=3, z=1)");
    lm.field = SelectorField::Nodes;
    lm.op = LabelRequirement::Op::Exists;
    lm.subject = LabelMiss::Subject::Node;
    lm.name = "worker-1";
    lm.labels.clear();
    labels.kind = MissKind::NodeLabels;
    labels.detail = lm;
    EXPECT_EQ(miss_message(labels), "nodes needs label app; source node worker-1 has no labels");

    Miss ports = miss(MissKind::Port, Direction::Egress);
    PortEntry unknown;
    unknown.kind = PortEntry::Kind::Unknown;
    PortEntry all_udp;
    all_udp.protocol = Protocol::UDP;
    ports.detail = PortMiss{true, {unknown, all_udp}, Protocol::TCP, 80};
    EXPECT_EQ(miss_message(ports),
              "protocols allow a protocol entry of a newer API, UDP (all ports); the connection is TCP/80");

    Miss named = miss(MissKind::NamedPort, Direction::Egress);
    named.detail = NamedPortMiss{true, Protocol::TCP, "metrics", std::nullopt, ip("198.51.100.1"), {}};
    EXPECT_EQ(miss_message(named),
              "named port metrics is not defined for TCP by destination 198.51.100.1 is not a pod");

    // A hint about a cluster rule's ports, on egress: the rule matches the destination.
    Hint h;
    h.code = hint::kPortNotAllowed;
    h.direction = Direction::Egress;
    h.policy = "egress-guard";
    h.miss = ports;
    h.rule = 3;
    EXPECT_EQ(hint_message(h),
              "egress-guard spec.egress[3] matches the destination but not the port: protocols allow a protocol "
              "entry of a newer API, UDP (all ports); the connection is TCP/80");
    // A hint without a miss is its own message.
    h.miss.reset();
    h.message = "as written";
    EXPECT_EQ(hint_message(h), "as written");
}

// A policy's one line for a side, every kind: the forms the engine's diagnoses read in text and JSON.
TEST(MissText, PolicySummaries) {
    PolicyDiagnosis d;
    d.policy = "shop/default-deny";
    d.summary = {PolicySummary::Kind::NoRules, Direction::Ingress, "shop/frontend-1"};
    EXPECT_EQ(summary_message(d),
              "selects shop/frontend-1 for ingress and has no ingress rules: it allows no ingress at all");

    RuleDiagnosis closest;
    closest.rule = 2;
    d.closest = closest;
    d.summary = {PolicySummary::Kind::Allows, Direction::Egress};
    EXPECT_EQ(summary_message(d), "allows it (spec.egress[2])");
    d.summary = {PolicySummary::Kind::NoRuleMatches, Direction::Egress, "", 1};
    EXPECT_EQ(summary_message(d), "none of its 1 egress rule matches; closest is spec.egress[2]");
    d.summary.rules = 3;
    EXPECT_EQ(summary_message(d), "none of its 3 egress rules matches; closest is spec.egress[2]");

    // Cluster policies: the tier, an Admin policy's priority, Pass rules when one would have helped, and the
    // closest rule's name.
    d.tier = DecidingTier::Admin;
    d.closest->rule_name = "allow-dns";
    d.summary = {PolicySummary::Kind::ClusterNoRuleMatches, Direction::Egress, "", 1, false, 10};
    EXPECT_EQ(summary_message(d),
              "admin policy, priority 10: none of its 1 Accept rule before the decision matches; closest is "
              "spec.egress[2] \"allow-dns\"");
    d.tier = DecidingTier::Baseline;
    d.closest->rule_name.reset();
    d.summary = {PolicySummary::Kind::ClusterNoRuleMatches, Direction::Ingress, "", 2, true, std::nullopt};
    EXPECT_EQ(summary_message(d),
              "baseline policy: none of its 2 Accept/Pass rules before the decision matches; closest is "
              "spec.ingress[2]");
}

}  // namespace
}  // namespace npt

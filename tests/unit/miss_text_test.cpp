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

// The hints that are not about a miss, from their details; the forms no fixture reaches are here (a Baseline
// deny after Admin passes, a Service without ports, a tie on a Pass rule), the rest read as the example and
// conformance clusters show them.
Hint detail_hint(const char* code, Direction dir, Hint::Detail detail) {
    Hint h;
    h.code = code;
    h.direction = dir;
    h.detail = std::move(detail);
    return h;
}

TEST(MissText, HintsNotAboutAMiss) {
    const ClusterRuleRef deny_all{"monitoring-baseline", 0, "deny-all", 50};
    const ClusterRuleRef delegate{"deny-db-egress", 1, "delegate-payments", 10};
    const ClusterRuleRef unnamed{"guard", 3, std::nullopt, std::nullopt};

    EXPECT_EQ(hint_message(detail_hint(hint::kDefaultDeny, Direction::Egress,
                                       DefaultDenyHint{"shop/web", {"shop/a", "shop/b"}})),
              "shop/web is isolated for egress only by policies without egress rules (shop/a, shop/b): no policy "
              "allows any egress from it");
    EXPECT_EQ(
        hint_message(detail_hint(hint::kDnsEgressBlocked, Direction::Egress,
                                 DnsHint{Protocol::TCP, ip("10.42.0.10"), std::nullopt, std::nullopt, "shop/web"})),
        "DNS (TCP/53 to 10.42.0.10) is blocked by the egress isolation of shop/web: add an egress rule allowing "
        "UDP and TCP port 53 to the cluster DNS pods (e.g. namespaceSelector "
        "kubernetes.io/metadata.name=kube-system)");
    EXPECT_EQ(
        hint_message(detail_hint(hint::kDnsEgressBlocked, Direction::Egress,
                                 DnsHint{Protocol::UDP, ip("10.42.0.10"), DecidingTier::Baseline, unnamed, ""})),
        "DNS (UDP/53 to 10.42.0.10) is blocked by baseline policy guard (rule 3): add an egress rule allowing UDP "
        "and TCP port 53 to the cluster DNS pods (e.g. namespaceSelector kubernetes.io/metadata.name=kube-system)");
    EXPECT_EQ(hint_message(detail_hint(
                  hint::kBaselineTierDeny, Direction::Ingress,
                  TierDenyHint{DecidingTier::Baseline, deny_all, "monitoring/prom-0", {delegate, unnamed}})),
              "the ingress of monitoring/prom-0 is denied by baseline policy monitoring-baseline (rule 0 \"deny-all\", "
              "priority 50) (after admin policy deny-db-egress (rule 1 \"delegate-payments\", priority 10), admin "
              "policy guard (rule 3) passed it on) because no NetworkPolicy selects monitoring/prom-0 for ingress: a "
              "NetworkPolicy in namespace monitoring that selects it and allows this ingress overrides the Baseline "
              "tier");
    EXPECT_EQ(hint_message(detail_hint(hint::kAdminTierPassToDeny, Direction::Egress,
                                       PassToDenyHint{{delegate}, "shop/web", {"shop/only"}})),
              "admin policy deny-db-egress (rule 1 \"delegate-payments\", priority 10) passed the egress of shop/web "
              "to the NetworkPolicy tier, where shop/only isolates it and allows nothing that matches");
    EXPECT_EQ(
        hint_message(detail_hint(
            hint::kClusterPolicyPriorityTie, Direction::Ingress,
            PriorityTieHint{"tie-one", {"tie-two", "tie-three"}, 7, DecidingTier::Baseline, "a/x", RuleAction::Pass})),
        "tie-one and tie-two, tie-three share priority 7 in the baseline tier and each has a rule matching the "
        "ingress of a/x: the API lets an implementation apply either, so the dataplane may not do what "
        "netpol-trace reports (tie-one passes it, by name order); give them distinct priorities");
    EXPECT_EQ(hint_message(detail_hint(hint::kDomainNameUndecided, Direction::Egress,
                                       DomainNameHint{DecidingTier::Admin,
                                                      ClusterRuleRef{"fqdn", 0, "allow-example", 5},
                                                      {"example.com", "*.example.org"},
                                                      ip("2001:db8::7")})),
              "admin policy fqdn (rule 0 \"allow-example\", priority 5) accepts the domain names example.com, "
              "*.example.org; whether 2001:db8::7 is one of their addresses depends on DNS, which the state does not "
              "record: netpol-trace treats the rule as not matching and cannot decide whether it accepts this "
              "connection");
    EXPECT_EQ(hint_message(detail_hint(hint::kServicePortUnknown, Direction::Egress,
                                       ServicePortHint{"web/none", Protocol::TCP, 80, {}})),
              "Service web/none has no port TCP/80 (it serves no ports)");
    EXPECT_EQ(hint_message(detail_hint(
                  hint::kServicePortUnknown, Direction::Egress,
                  ServicePortHint{"web/two", Protocol::UDP, 53, {{Protocol::TCP, 80}, {Protocol::SCTP, 9000}}})),
              "Service web/two has no port UDP/53 (it serves TCP/80, SCTP/9000)");
    EXPECT_EQ(
        hint_message(detail_hint(hint::kServiceNoEndpoints, Direction::Egress,
                                 ServiceNoEndpointsHint{"web/v6", false, Protocol::TCP, 443})),
        "Service web/v6 has no IPv6 endpoints for port TCP/443: connections to it fail whatever the policies say");
    Hint dnat = detail_hint(hint::kServiceVipDnat, Direction::Egress,
                            ServiceDnatHint{ip("fd00::1"),
                                            443,
                                            "default/kubernetes",
                                            {{ip("fd00::10"), 6443}, {ip("10.0.0.2"), 8443}},
                                            {"6443", "8443"}});
    dnat.policy = "shop/allow-vip";  // the policy with a rule for the Service IP or port
    EXPECT_EQ(hint_message(dnat),
              "[fd00::1]:443 is Service default/kubernetes; policies see its endpoints after DNAT ([fd00::10]:6443, "
              "10.0.0.2:8443), so rules must allow the endpoint IPs and target port 6443/8443, not the Service IP and "
              "port (shop/allow-vip allows the Service IP/port)");

    // A hint made by an output itself (the tail's) has only its message.
    Hint own;
    own.code = hint::kNotExplainedByPolicy;
    own.message = "dropped by something else";
    EXPECT_EQ(hint_message(own), "dropped by something else");
}

}  // namespace
}  // namespace npt

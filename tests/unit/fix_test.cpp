// `explain --fix`: for every denied probe of the runbook's example cluster and of edge cases, the best fix of each
// denying side, applied to the state by this test (the manifest loaded over the state's objects, a merge patch
// applied as kubectl applies it, labels set on the workload's pods) and not by the engine's own apply code, makes
// the probe allowed; nothing is newly denied where a fix can avoid it; and the reach counts equal an independent
// count over every pod pair and port.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "policy/explainer.hpp"
#include "policy/fix.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_EXAMPLES_DIR
#error "NPT_EXAMPLES_DIR must name examples/"
#endif

namespace npt {
namespace {

using Json = nlohmann::json;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ClusterObjects load(const std::string& text) {
    ClusterObjects o;
    auto err = load_state_text(text, "state", o);
    EXPECT_FALSE(err.has_value()) << err->message;
    return o;
}

Json yaml_to_json(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: {
            Json j = Json::object();
            for (const auto& kv : n) j[kv.first.as<std::string>()] = yaml_to_json(kv.second);
            return j;
        }
        case YAML::NodeType::Sequence: {
            Json j = Json::array();
            for (const auto& item : n) j.push_back(yaml_to_json(item));
            return j;
        }
        case YAML::NodeType::Scalar: {
            // Plain scalars resolved as kubectl's YAML reader does for the fields of these objects; quoted stay
            // strings.
            const std::string v = n.Scalar();
            const bool plain = n.Tag() != "!";
            if (plain && !v.empty() && v.find_first_not_of("0123456789") == std::string::npos) return std::stoll(v);
            if (plain && (v == "true" || v == "false")) return v == "true";
            return v;
        }
        default:
            return nullptr;
    }
}

// The state as the objects a kubectl user edits: each document of the state text as JSON.
std::vector<Json> documents(const std::string& text) {
    std::vector<Json> docs;
    for (const auto& doc : YAML::LoadAll(text)) {
        Json j = yaml_to_json(doc);
        if (j.is_object() && j.value("kind", "") == "List") {
            for (auto& item : j["items"]) docs.push_back(item);
        } else if (j.is_object()) {
            docs.push_back(j);
        }
    }
    return docs;
}

std::string to_text(const std::vector<Json>& docs) {
    Json list = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", docs}};
    return list.dump();
}

std::string owner_of(const Json& obj) {
    for (const auto& ref : obj["metadata"].value("ownerReferences", Json::array()))
        if (ref.value("controller", false)) return ref.value("kind", "") + "/" + ref.value("name", "");
    return "";
}

// Applies the fix to the documents as a user would: kubectl apply of its manifest, kubectl patch of a label.
void apply_fix(std::vector<Json>& docs, const Fix& fix) {
    if (fix.kind == "label") {
        ASSERT_TRUE(fix.target && fix.patch);
        const std::string target = *fix.target;
        const Json patch = Json::parse(*fix.patch);
        const auto first = target.find('/');
        const std::string kind = target.substr(0, first);
        if (kind == "Namespace") {
            for (auto& d : docs)
                if (d.value("kind", "") == "Namespace" && d["metadata"].value("name", "") == target.substr(first + 1))
                    d.merge_patch(patch);
            return;
        }
        const auto second = target.find('/', first + 1);
        const std::string ns = target.substr(first + 1, second - first - 1), name = target.substr(second + 1);
        const Json labels =
            kind == "Pod" ? patch["metadata"]["labels"] : patch["spec"]["template"]["metadata"]["labels"];
        // The pods of the workload: a Deployment's through its ReplicaSets.
        std::set<std::string> owners = {kind + "/" + name};
        for (const auto& d : docs)
            if (d.value("kind", "") == "ReplicaSet" && d["metadata"].value("namespace", "") == ns &&
                owner_of(d) == kind + "/" + name)
                owners.insert("ReplicaSet/" + d["metadata"].value("name", ""));
        for (auto& d : docs) {
            if (d.value("kind", "") != "Pod" || d["metadata"].value("namespace", "") != ns) continue;
            const bool selected =
                kind == "Pod" ? d["metadata"].value("name", "") == name : owners.contains(owner_of(d));
            if (selected)
                for (const auto& [k, v] : labels.items()) d["metadata"]["labels"][k] = v;
        }
        return;
    }
    ASSERT_TRUE(fix.manifest) << fix.kind;
    // The JSON object is the YAML manifest's one document.
    ASSERT_TRUE(fix.object) << fix.kind;
    ASSERT_EQ(YAML::LoadAll(*fix.manifest).size(), 1u);
    EXPECT_EQ(Json::parse(*fix.object), yaml_to_json(YAML::Load(*fix.manifest)));
    for (const auto& doc : YAML::LoadAll(*fix.manifest)) {
        Json obj = yaml_to_json(doc);
        const std::string kind = obj.value("kind", ""), ns = obj["metadata"].value("namespace", ""),
                          name = obj["metadata"].value("name", "");
        std::erase_if(docs, [&](const Json& d) {
            return d.value("kind", "") == kind && d["metadata"].value("namespace", "") == ns &&
                   d["metadata"].value("name", "") == name;
        });
        docs.push_back(obj);
    }
    if (fix.kind == "patch") {
        // The merge patch says the same as the whole object: applied to the original as kubectl patch does.
        ASSERT_TRUE(fix.patch && fix.target);
        const auto slash = fix.target->find('/');
        bool patched = false;
        for (auto& d : docs) {
            if (d.value("kind", "") != "NetworkPolicy" ||
                d["metadata"].value("namespace", "") != fix.target->substr(0, slash) ||
                d["metadata"].value("name", "") != fix.target->substr(slash + 1))
                continue;
            Json copy = d;
            copy.merge_patch(Json::parse(*fix.patch));
            EXPECT_EQ(copy["spec"], d["spec"]) << "the merge patch and the whole object disagree";
            patched = true;
        }
        EXPECT_TRUE(patched);
    }
}

std::string verdict_of(const ClusterState& s, const ExplainQuery& q) {
    auto r = explain_query(s, q);
    return r ? r->verdict : "error: " + r.error().message;
}

// Every ordered pair of distinct Running non-hostNetwork pods on the source's primary family, times the ports any
// container or policy entry of either state names.
std::pair<uint64_t, uint64_t> count_changes(const ClusterObjects& before_objects, const ClusterObjects& after_objects) {
    std::set<std::pair<Protocol, uint16_t>> ports;
    for (const auto* o : {&before_objects, &after_objects}) {
        for (const auto& p : o->pods)
            for (const auto& cp : p.ports) ports.emplace(cp.protocol, cp.port);
        for (const auto& pol : o->policies)
            for (const auto* rules : {&pol.ingress, &pol.egress})
                for (const auto& r : *rules)
                    for (const auto& p : r.ports) {
                        if (p.port) ports.emplace(p.protocol, *p.port);
                        if (p.end_port) ports.emplace(p.protocol, *p.end_port);
                    }
        for (const auto& pol : o->cluster_policies)
            for (const auto* rules : {&pol.ingress, &pol.egress})
                for (const auto& r : *rules)
                    for (const auto& p : r.ports) {
                        if (p.kind != ClusterPort::Kind::Port || p.port == 0) continue;
                        ports.emplace(p.protocol, p.port);
                        if (p.end_port) ports.emplace(p.protocol, p.end_port);
                    }
    }
    auto before = ClusterState::build(before_objects);
    auto after = ClusterState::build(after_objects);
    uint64_t allowed = 0, denied = 0;
    for (const auto& a : before_objects.pods) {
        if (a.host_network || a.ips.empty() || !(a.phase.empty() || a.phase == "Running")) continue;
        for (const auto& b : before_objects.pods) {
            if (&a == &b || b.host_network || b.ips.empty() || !(b.phase.empty() || b.phase == "Running")) continue;
            const IpFamily family = a.ips.front().family;
            if (std::none_of(b.ips.begin(), b.ips.end(), [&](const IpAddr& ip) { return ip.family == family; }))
                continue;
            for (const auto& [protocol, port] : ports) {
                ExplainQuery q{a.ns + "/" + a.name, b.ns + "/" + b.name, port, protocol, family};
                const bool was = verdict_of(*before, q) == "allowed", is = verdict_of(*after, q) == "allowed";
                if (!was && is) ++allowed;
                if (was && !is) ++denied;
            }
        }
    }
    return {allowed, denied};
}

struct FixCase {
    std::string name;
    std::string extra;  // YAML documents added to the runbook's cluster
    ExplainQuery q;
    std::optional<std::string> best_kind_egress = std::nullopt;  // the kind of the best fix, per denying side
    std::optional<std::string> best_kind_ingress = std::nullopt;
    bool none = false;  // only a cluster administrator can fix it: no applicable fix
};

void PrintTo(const FixCase& c, std::ostream* os) {
    *os << c.name;
}

class Fixes : public ::testing::TestWithParam<FixCase> {};

TEST_P(Fixes, BestFixOfEachSideLetsTheProbeThrough) {
    const auto& c = GetParam();
    const std::string base = read_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml");
    ASSERT_FALSE(base.empty());
    std::vector<Json> docs = documents(base);
    if (!c.extra.empty())
        for (auto& d : documents(c.extra)) docs.push_back(d);
    const ClusterObjects objects = load(to_text(docs));
    auto state = ClusterState::build(objects);
    auto e = explain_query(*state, c.q);
    ASSERT_TRUE(e.ok()) << e.error().message;
    ASSERT_NE(e->verdict, "allowed");
    add_fixes(*state, *e);
    ASSERT_TRUE(e->fixes.has_value());
    ASSERT_FALSE(e->fixes->empty());
    if (c.none) {
        EXPECT_EQ(e->fixes->front().kind, "none");
        return;
    }
    std::vector<Json> fixed = docs;
    for (const Direction dir : {Direction::Egress, Direction::Ingress}) {
        const auto& side = dir == Direction::Egress ? e->egress : e->ingress;
        const auto best =
            std::find_if(e->fixes->begin(), e->fixes->end(), [&](const Fix& f) { return f.direction == dir; });
        const auto& expected = dir == Direction::Egress ? c.best_kind_egress : c.best_kind_ingress;
        if (side.allowed && e->service.empty()) {
            EXPECT_EQ(best, e->fixes->end()) << "a fix for a side that allows";
            continue;
        }
        if (best == e->fixes->end()) continue;  // a Service whose endpoints deny on the other side only
        SCOPED_TRACE(std::string(direction_name(dir)) + ": " + best->summary);
        if (expected) {
            EXPECT_EQ(best->kind, *expected);
        }
        EXPECT_TRUE(best->verified);
        EXPECT_EQ(best->newly_denied, 0u);
        // This fix alone, applied by the test: the side allows, and the reach is what an exhaustive count finds.
        std::vector<Json> alone = docs;
        apply_fix(alone, *best);
        const ClusterObjects after_objects = load(to_text(alone));
        auto after = ClusterState::build(after_objects);
        auto r = explain_query(*after, c.q);
        ASSERT_TRUE(r.ok());
        const auto& after_side = dir == Direction::Egress ? r->egress : r->ingress;
        EXPECT_TRUE(after_side.allowed);
        const auto [allowed, denied] = count_changes(objects, after_objects);
        EXPECT_EQ(best->newly_allowed, allowed);
        EXPECT_EQ(best->newly_denied, denied);
        EXPECT_EQ(best->examples.empty(), allowed + denied == 0);
        apply_fix(fixed, *best);
    }
    // Every side's best fix together: the probe is allowed.
    auto all = ClusterState::build(load(to_text(fixed)));
    EXPECT_EQ(verdict_of(*all, c.q), "allowed");
}

ExplainQuery Q(std::string from, std::string to, uint16_t port, Protocol p = Protocol::TCP) {
    return ExplainQuery{std::move(from), std::move(to), port, p, std::nullopt};
}

const char* kFrontend = "shop/frontend-7d9f8b6c5-q2w8x";
const char* kCheckout = "shop/checkout-6f8d7c9b5-k8j7h";
const char* kApi = "payments/api-5b7c9d8f4-m3n4p";
const char* kOperator = "operators/pg-operator-7c8b9d6f5-t5r4e";

// An Admin-tier guard on pods labelled app=checkout: relabelling the checkout pods with it would cut their DNS,
// which works today.
const char* kCheckoutGuard = R"(
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: checkout-no-dns}
spec:
  tier: Admin
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: checkout}}}}
  egress: [{name: dns, action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}}]}]
)";

const char* kAdminDeny = R"(
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: no-databases}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}}
  egress: [{name: db, action: Deny, to: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: databases}}}]}]
)";

const char* kBaselineDeny = R"(
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: monitoring-closed}
spec:
  tier: Baseline
  priority: 1
  subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
)";

std::vector<FixCase> fix_cases() {
    return {
        // The runbook's cases (scripts/demo).
        {"DnsBlocked", "", Q(kFrontend, "10.43.0.10", 53, Protocol::UDP), "policy"},
        {"EgressPortBlocked", "", Q(kFrontend, kApi, 8443)},
        {"IngressNamedPortAndNamespaceLabel", "", Q("monitoring/prometheus-0", kApi, 9090)},
        {"LabelMismatch", "", Q(kCheckout, "databases/postgres-0", 5432), std::nullopt, "patch"},
        {"ApiServerBehindItsVip", "", Q(kOperator, "10.43.0.1", 443), "policy"},
        {"ExternalExcluded", "", Q(kFrontend, "10.0.40.50", 443), "patch"},
        // A relabel that would isolate the workload is ranked after the fixes that break nothing.
        {"LabelFixThatBreaksIsNotBest", kCheckoutGuard, Q(kCheckout, "databases/postgres-0", 5432), std::nullopt,
         "patch"},
        // The tiers: a Baseline deny is overridden by a NetworkPolicy; an Admin deny by none.
        {"BaselineDenyOverriddenByANetworkPolicy", kBaselineDeny, Q(kOperator, "monitoring/prometheus-0", 9090)},
        {"AdminDenyHasNoNetworkPolicyFix", kAdminDeny, Q(kCheckout, "databases/postgres-0", 5432), std::nullopt,
         std::nullopt, true},
    };
}

std::string fix_case_name(const ::testing::TestParamInfo<FixCase>& info) {
    return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Runbook, Fixes, ::testing::ValuesIn(fix_cases()), fix_case_name);

TEST(FixRanking, ABreakingFixIsLastAndSaysSo) {
    std::vector<Json> docs = documents(read_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"));
    for (auto& d : documents(kCheckoutGuard)) docs.push_back(d);
    auto state = ClusterState::build(load(to_text(docs)));
    auto e = explain_query(*state, Q(kCheckout, "databases/postgres-0", 5432));
    ASSERT_TRUE(e.ok());
    add_fixes(*state, *e);
    ASSERT_TRUE(e->fixes);
    const auto label = std::find_if(e->fixes->begin(), e->fixes->end(), [](const Fix& f) { return f.kind == "label"; });
    ASSERT_NE(label, e->fixes->end());
    EXPECT_GT(label->newly_denied, 0u);
    EXPECT_EQ(label->summary.rfind("BREAKS ", 0), 0u) << label->summary;
    EXPECT_TRUE(
        std::any_of(label->examples.begin(), label->examples.end(), [](const FixExample& x) { return !x.allowed; }));
    EXPECT_EQ(label->target, "Deployment/shop/checkout");
    EXPECT_EQ(std::prev(e->fixes->end())->kind, "label");
}

TEST(FixManifests, StringsAYaml11ReaderWouldMisreadAreQuoted) {
    std::vector<Json> docs = documents(read_file(std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"));
    auto state = ClusterState::build(load(to_text(docs)));
    auto e = explain_query(*state, Q(kCheckout, "databases/postgres-0", 5432));
    ASSERT_TRUE(e.ok());
    add_fixes(*state, *e);
    for (const auto& f : *e->fixes) {
        if (!f.manifest) continue;
        // Loaded by a YAML reader that resolves plain scalars (as kubectl does): every value stays a string.
        EXPECT_NE(f.manifest->find("namespace: \"databases\""), std::string::npos) << *f.manifest;
        ClusterObjects o;
        EXPECT_FALSE(load_state_text(*f.manifest, "fix.yaml", o).has_value());
        EXPECT_EQ(o.policies.size(), 1u);
    }
}

}  // namespace
}  // namespace npt

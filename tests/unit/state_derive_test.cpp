// A snapshot with a change applied (ClusterState::derive): what --fix, whatif and advise evaluate. The derived
// snapshot must answer exactly as one built from the changed objects would, keep every pod's index, and leave
// the original untouched.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>

#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

namespace npt {
namespace {

const char* kCluster = R"(
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: red}}
---
apiVersion: v1
kind: Namespace
metadata: {name: b}
---
apiVersion: v1
kind: Pod
metadata: {name: x, namespace: a, labels: {app: x}}
spec: {containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: "y", namespace: b, labels: {app: "y"}}
spec: {containers: [{name: c}]}
status: {phase: Running, podIP: 10.0.0.2}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-ingress, namespace: a}
spec:
  podSelector: {matchLabels: {app: x}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
)";

ClusterObjects objects(const std::string& extra = "") {
    ClusterObjects o;
    auto err = load_state_text(kCluster, "cluster.yaml", o);
    EXPECT_FALSE(err.has_value()) << err->message;
    if (!extra.empty()) {
        err = load_state_text(extra, "extra.yaml", o);
        EXPECT_FALSE(err.has_value()) << err->message;
    }
    return o;
}

std::string verdict(const ClusterState& s, const char* from, const char* to, uint16_t port) {
    auto r = explain_query(s, ExplainQuery{from, to, port, Protocol::TCP, std::nullopt});
    return r ? r->verdict : "error: " + r.error().message;
}

NetworkPolicy load_policy(const std::string& yaml) {
    ClusterObjects o;
    EXPECT_FALSE(load_state_text(yaml, "p.yaml", o).has_value());
    EXPECT_EQ(o.policies.size(), 1u);
    return o.policies.empty() ? NetworkPolicy{} : o.policies[0];
}

TEST(StateDerive, PolicyReplacedAddedAndDeleted) {
    auto base = ClusterState::build(objects());
    ASSERT_EQ(verdict(*base, "b/y", "a/x", 8080), "denied");

    StateChange allow_b;  // the namespaceSelector widened to namespace b by name
    allow_b.upsert_policies.push_back(load_policy(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-ingress, namespace: a}
spec:
  podSelector: {matchLabels: {app: x}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: b}}}]
)"));
    auto fixed = base->derive(allow_b);
    EXPECT_EQ(verdict(*fixed, "b/y", "a/x", 8080), "allowed");
    EXPECT_EQ(fixed->policies().size(), 1u);                     // replaced, not added
    EXPECT_EQ(verdict(*base, "b/y", "a/x", 8080), "denied");     // the original is untouched
    EXPECT_EQ(fixed->pod_id(*base->find_pod("a", "x")), "a/x");  // indexes kept

    StateChange deny_y_egress;  // a new policy in a namespace that had none: isolates y for egress
    deny_y_egress.upsert_policies.push_back(load_policy(R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: b}
spec: {podSelector: {}, policyTypes: [Egress]}
)"));
    auto isolated = fixed->derive(deny_y_egress);
    EXPECT_EQ(verdict(*isolated, "b/y", "a/x", 8080), "denied");
    EXPECT_EQ(isolated->policies().size(), 2u);

    StateChange undo;
    undo.delete_policies.emplace_back("b", "deny-egress");
    EXPECT_EQ(verdict(*isolated->derive(undo), "b/y", "a/x", 8080), "allowed");
}

TEST(StateDerive, RelabelledPodsAndNamespacesChangeWhatSelectorsMatch) {
    auto base = ClusterState::build(objects());
    StateChange ns_label;
    ns_label.namespace_labels.emplace_back("b", LabelMap{{"team", "blue"}});
    auto blue = base->derive(ns_label);
    EXPECT_EQ(verdict(*blue, "b/y", "a/x", 8080), "allowed");
    const auto b = blue->find_namespace("b");
    ASSERT_TRUE(b);
    bool name_label = false;
    for (const auto& l : blue->labels(blue->namespaces()[*b].labels))
        name_label |= blue->str(l.key) == "kubernetes.io/metadata.name" && blue->str(l.value) == "b";
    EXPECT_TRUE(name_label) << "the API server's name label stays";

    StateChange relabel;  // x no longer selected by x-ingress: not isolated
    relabel.pod_labels.emplace_back(*base->find_pod("a", "x"), LabelMap{{"app", "x2"}});
    auto moved = base->derive(relabel);
    EXPECT_EQ(verdict(*moved, "b/y", "a/x", 8080), "allowed");
    EXPECT_TRUE(moved->isolating_policies(*moved->find_pod("a", "x"), Direction::Ingress).empty());
    EXPECT_EQ(verdict(*base, "b/y", "a/x", 8080), "denied");
}

// A derived snapshot names and finds its pods by itself: it outlives the snapshot it came from (the tail replaces
// its base while a whatif answer is still being rendered).
TEST(StateDerive, ADerivedSnapshotFindsPodsAfterItsBaseIsGone) {
    auto base = ClusterState::build(objects());
    StateChange relabel;
    relabel.pod_labels.emplace_back(*base->find_pod("a", "x"), LabelMap{{"app", "x2"}});
    auto derived = base->derive(relabel);
    const uint32_t x = *base->find_pod("a", "x");
    base.reset();
    ASSERT_EQ(derived->find_pod("a", "x"), x);
    EXPECT_EQ(derived->pod_id(x), "a/x");
    EXPECT_FALSE(derived->find_pod("a", "nope"));
    EXPECT_FALSE(derived->find_pod("a/x", ""));
    EXPECT_EQ(verdict(*derived, "b/y", "a/x", 8080), "allowed");
}

// Pods asked by name, in a state with enough pods that its index probes past full slots: every pod is found
// as itself, names that are not a pod (another namespace, a prefix, a longer name, the separator moved) are not,
// and a derived snapshot answers the same.
TEST(StateDerive, EveryPodIsFoundByNameAndNothingElse) {
    std::string yaml;
    for (int n = 0; n < 40; ++n) {
        yaml += fmt::format("apiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{}}}\n---\n", n);
        for (int p = 0; p < 75; ++p)
            yaml += fmt::format(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: pod-{}, namespace: ns-{}}}\n"
                "status: {{phase: Running, podIP: 10.{}.{}.{}}}\n---\n",
                p, n, n, p / 250, p % 250 + 1);
    }
    ClusterObjects o;
    ASSERT_FALSE(load_state_text(yaml, "many.yaml", o).has_value());
    auto state = ClusterState::build(std::move(o));
    ASSERT_EQ(state->pods().size(), 3000u);
    auto copy = state->derive(StateChange{});  // a copy of the snapshot
    for (const ClusterState* s : {state.get(), copy.get()}) {
        for (int n = 0; n < 40; ++n) {
            for (int p = 0; p < 75; ++p) {
                const std::string ns = fmt::format("ns-{}", n), name = fmt::format("pod-{}", p);
                const auto found = s->find_pod(ns, name);
                ASSERT_TRUE(found) << ns << "/" << name;
                EXPECT_EQ(s->pod_id(*found), ns + "/" + name);
            }
        }
        EXPECT_FALSE(s->find_pod("ns-0", "pod-75"));
        EXPECT_FALSE(s->find_pod("ns-40", "pod-0"));
        EXPECT_FALSE(s->find_pod("ns-1", "pod-"));
        EXPECT_FALSE(s->find_pod("ns-1", "pod-10x"));
        EXPECT_FALSE(s->find_pod("ns-1/pod-1", ""));
        EXPECT_FALSE(s->find_pod("ns", "1/pod-1"));
        EXPECT_FALSE(s->find_pod("", ""));
    }
}

TEST(StateDerive, ClusterPoliciesUpsertedAndDeleted) {
    auto base = ClusterState::build(objects());
    ClusterObjects o;
    ASSERT_FALSE(load_state_text(R"(
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: admit-b}
spec:
  tier: Admin
  priority: 1
  subject: {namespaces: {matchLabels: {team: red}}}
  ingress: [{action: Accept, from: [{namespaces: {}}]}]
)",
                                 "cnp.yaml", o));
    StateChange add;
    add.upsert_cluster_policies = o.cluster_policies;
    auto admitted = base->derive(add);
    EXPECT_EQ(verdict(*admitted, "b/y", "a/x", 8080), "allowed");
    StateChange remove;
    remove.delete_cluster_policies.emplace_back(ClusterPolicyKind::ClusterNetworkPolicy, "admit-b");
    EXPECT_EQ(verdict(*admitted->derive(remove), "b/y", "a/x", 8080), "denied");
}

// A derived snapshot answers what one built from the changed objects answers, for every pod pair and port.
TEST(StateDerive, SameAnswersAsABuildFromTheChangedObjects) {
    const std::string extra_policy = R"(
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: y-egress, namespace: b}
spec:
  podSelector: {}
  egress: [{to: [{podSelector: {}}]}]
)";
    auto base = ClusterState::build(objects());
    StateChange change;
    change.upsert_policies.push_back(load_policy(extra_policy));
    auto derived = base->derive(change);
    auto built = ClusterState::build(objects(extra_policy));
    for (const char* from : {"a/x", "b/y"})
        for (const char* to : {"a/x", "b/y"})
            for (uint16_t port : {80, 8080})
                EXPECT_EQ(verdict(*derived, from, to, port), verdict(*built, from, to, port));
}

}  // namespace
}  // namespace npt

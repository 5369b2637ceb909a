// The CNI naming conventions the tail maps dataplane names back to Kubernetes objects with. Expected hashed
// names are literals computed independently with Python's hashlib (the lab's scripts/lab.d/lab_dataplane.py
// renders them the same way):
//   "cali" + hashlib.sha1(f"{ns}.{pod}".encode()).hexdigest()[:11]
//   prefix + "_" + base64.urlsafe_b64encode(hashlib.sha256(id.encode()).digest()).decode()[:28 - 8 - 1]
// and, where the CNIs' own tests and fixtures show real names, those (cited at each).
#include "state/cni_naming.hpp"

#include <gtest/gtest.h>

#include "common/base64.hpp"
#include "output/drop_record.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

namespace {

// The runbook cluster (pods shop/frontend-7d9f8b6c5-q2w8x, shop/checkout-6f8d7c9b5-k8j7h,
// databases/postgres-0, payments/api-5b7c9d8f4-m3n4p, ...; policies shop/default-deny,
// shop/allow-frontend-to-payments, databases/allow-app-to-postgres, payments/allow-checkout, ...) plus
// `extra` policies.
std::shared_ptr<const npt::ClusterState> state(std::vector<std::pair<std::string, std::string>> extra = {}) {
    auto objects = npt::load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"});
    EXPECT_TRUE(objects.ok());
    for (auto& [ns, name] : extra) {
        npt::NetworkPolicy p;
        p.ns = ns;
        p.name = name;
        objects->policies.push_back(std::move(p));
    }
    return npt::ClusterState::build(std::move(*objects));
}

// The runbook cluster plus cluster policies (kind, name): ClusterNetworkPolicy, AdminNetworkPolicy, ...
std::shared_ptr<const npt::ClusterState> state_with_cluster_policies(
    std::vector<std::pair<npt::ClusterPolicyKind, std::string>> cluster) {
    auto objects = npt::load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"});
    EXPECT_TRUE(objects.ok());
    for (auto& [kind, name] : cluster) {
        npt::ClusterNetworkPolicy p;
        p.kind = kind;
        p.name = name;
        p.tier = kind == npt::ClusterPolicyKind::BaselineAdminNetworkPolicy ? npt::PolicyTier::Baseline
                                                                            : npt::PolicyTier::Admin;
        objects->cluster_policies.push_back(std::move(p));
    }
    return npt::ClusterState::build(std::move(*objects));
}

npt::DropRule rule(const std::string& chain, std::optional<std::string> comment, const npt::ClusterState* s,
                   std::vector<std::string> path = {}, std::vector<std::string> jumps = {}) {
    npt::DropRule r;
    r.table = "filter";
    r.chain = chain;
    r.handle = 12;
    r.comment = std::move(comment);
    r.via = "nftrace";
    r.path = std::move(path);
    for (auto& j : jumps) r.jump_comments.push_back(j.empty() ? std::vector<std::string>{} : std::vector{j});
    npt::attribute_drop_rule(r, s);
    return r;
}

using Strings = std::vector<std::string>;

// A Calico policy chain and the policy it must name.
struct PolicyChainCase {
    const char* chain;
    const char* policy;
    const char* kind;
    bool in_state;
};

void expect_policy_chains(const npt::ClusterState* s, std::initializer_list<PolicyChainCase> cases) {
    for (const auto& c : cases) {
        auto r = rule(c.chain, std::nullopt, s);
        EXPECT_EQ(r.cni, "calico") << c.chain;
        EXPECT_EQ(r.policy, c.policy) << c.chain;
        EXPECT_EQ(r.policy_kind, c.kind) << c.chain;
        EXPECT_EQ(r.policy_in_state, c.in_state) << c.chain;
    }
}

}  // namespace

// ---- the names themselves ------------------------------------------------------------------------------

TEST(CniNaming, CalicoInterfaceIsCaliAndElevenHexDigitsOfSha1) {
    EXPECT_EQ(npt::cni::calico_interface("shop", "frontend-7d9f8b6c5-q2w8x"), "calib07053a3f11");
    EXPECT_EQ(npt::cni::calico_interface("databases", "postgres-0"), "cali6c832f5207c");
}

TEST(CniNaming, NamesFromTheCnisOwnTests) {
    // libcalico-go/lib/backend/k8s/conversion/conversion_test.go (v3.32.0): pod default/podA on cali7f94ce7c295,
    // default/podB on cali92cf1f5e9f6.
    EXPECT_EQ(npt::cni::calico_interface("default", "podA"), "cali7f94ce7c295");
    EXPECT_EQ(npt::cni::calico_interface("default", "podB"), "cali92cf1f5e9f6");
    // libcalico-go/lib/hash/unique_id_test.go (v3.32.0), GetLengthLimitedID.
    EXPECT_EQ(npt::cni::calico_limited_id("felix", "1234", 10), "felix1234");
    EXPECT_EQ(npt::cni::calico_limited_id("felix", "123456", 11), "felix123456");
    EXPECT_EQ(npt::cni::calico_limited_id("felix", "_2345", 10), "felix_kMQI");
    EXPECT_EQ(npt::cni::calico_limited_id("felix", "12345678910", 13), "felix_Y2QCZIS");
    // felix/rules/policy_test.go: v3.32.0's GlobalNetworkPolicy long-policy-name-that-gets-hashed (id
    // "gnp/<name>"), v3.30.0's PolicyID without a tier (id "/<name>").
    EXPECT_EQ(npt::cni::calico_limited_id("cali-pi-", "gnp/long-policy-name-that-gets-hashed"),
              "cali-pi-_PymyFHQQg3808jiz1OJ");
    EXPECT_EQ(npt::cni::calico_limited_id("cali-po-", "/long-policy-name-that-gets-hashed"),
              "cali-po-_FJ9yUkNpzshVDh2n7mg");
}

TEST(CniNaming, FelixLengthLimitedIds) {
    // Fits: as is. Too long: "_" + base64url(sha256(id)) filling 28 characters.
    EXPECT_EQ(npt::cni::calico_limited_id("cali-pi-", "knp/db/x"), "cali-pi-knp/db/x");
    EXPECT_EQ(npt::cni::calico_limited_id("cali-pi-", "shop/knp.default.allow-frontend-to-payments"),
              "cali-pi-_ttpRVyHVa9v9wilofUu");
    EXPECT_EQ(npt::cni::calico_limited_id("cali-po-", "knp/operators/default-deny-egress"),
              "cali-po-_u8uPDfEmzEn38W8YXy8");
    // Exactly 28 with an id starting with "_" is hashed too (it could clash with a hashed name).
    EXPECT_EQ(npt::cni::calico_limited_id("cali-pi-", std::string(20, '_')), "cali-pi-_nM85pGI1k8Sg46fpSBH");
    // A longer limit (nftables mode) keeps more of the hash.
    EXPECT_EQ(npt::cni::calico_limited_id("cali-pi-", "default/shop/knp.default.allow-frontend-to-payments", 40),
              "cali-pi-_ZSeJ9iWRoLt0vLZGIacJX_GkevrqBrj");
    const unsigned char bytes[] = {0xfb, 0xff, 0xfe, 'a', 'b'};
    const auto url = [&](size_t at, size_t n) {
        return npt::base64_encode(std::string_view(reinterpret_cast<const char*>(bytes) + at, n),
                                  npt::Base64::UrlNoPadding);
    };
    EXPECT_EQ(url(0, 3), "-__-");
    EXPECT_EQ(url(3, 2), "YWI");
    EXPECT_EQ(url(3, 1), "YQ");
}

// ---- kube-router ---------------------------------------------------------------------------------------

TEST(CniNaming, KubeRouterOlderRejectCommentsNameThePodAndDirection) {
    auto s = state();
    auto r = rule("KUBE-POD-FW-4X5TBXAQ2KYYTOD6",
                  "rule to REJECT traffic destined for POD name:postgres-0 namespace: databases", s.get());
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.pod, "databases/postgres-0");
    // The pod chain's one REJECT serves both directions (pod.go): its "destined for" says none.
    EXPECT_FALSE(r.direction);
    EXPECT_FALSE(r.policy);
    EXPECT_FALSE(r.policy_kind);
    // "from", any case of POD, trailing text (the lab's stale rule in KUBE-ROUTER-FORWARD).
    r = rule("KUBE-ROUTER-FORWARD",
             "rule to REJECT traffic from pod name:frontend-7d9f8b6c5-q2w8x namespace:shop (policy sync pending)",
             s.get());
    EXPECT_EQ(r.pod, "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_EQ(r.direction, "egress");
    // No state: the pod is still what the comment says.
    r = rule("KUBE-POD-FW-X", "rule to REJECT traffic destined for POD name:web namespace:blog", nullptr);
    EXPECT_EQ(r.pod, "blog/web");
}

TEST(CniNaming, KubeRouterJumpIntoThePodChainSaysTheDirection) {
    // kube-router writes "destined for" in the REJECT rule of a chain that serves both directions; the jump
    // that led the packet there says "from POD": egress.
    auto s = state();
    auto r = rule("KUBE-POD-FW-ABC", "rule to REJECT traffic destined for POD name:postgres-0 namespace:databases",
                  s.get(), {"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-ABC"},
                  {"", "kube-router netpol - TEMCG2JMHZYE7H7T",
                   "rule to jump traffic from POD name:postgres-0 namespace:databases to chain KUBE-POD-FW-ABC"});
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.direction, "egress");
    // A rule without a comment in the pod chain: the pod from the jump.
    r = rule("KUBE-POD-FW-ABC", std::nullopt, s.get(), {"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-ABC"},
             {"", "",
              "rule to jump traffic destined to POD name:postgres-0 namespace: databases to chain "
              "KUBE-POD-FW-ABC"});
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.direction, "ingress");
}

TEST(CniNaming, KubeRouterPolicyComments) {
    auto s = state();
    // 2026+: "<ns>/<name> policy" and "<ns>/<pod> reject".
    auto r = rule("KUBE-NWPLCY-XYZ", "databases/allow-app-to-postgres policy", s.get());
    EXPECT_EQ(r.policy, "databases/allow-app-to-postgres");
    EXPECT_EQ(r.policy_kind, "NetworkPolicy");
    EXPECT_TRUE(r.policy_in_state);
    r = rule("KUBE-POD-FW-XYZ", "shop/frontend-7d9f8b6c5-q2w8x reject", s.get());
    EXPECT_EQ(r.pod, "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_FALSE(r.policy);
    // Older: the ACCEPT rule of a policy chain.
    r = rule("KUBE-NWPLCY-XYZ",
             "rule to ACCEPT traffic from source pods to dest pods selected by policy name: allow-checkout "
             "namespace payments",
             s.get());
    EXPECT_EQ(r.policy, "payments/allow-checkout");
    EXPECT_TRUE(r.policy_in_state);
    // A policy the state does not have.
    r = rule("KUBE-NWPLCY-XYZ", "shop/legacy-block policy", s.get());
    EXPECT_EQ(r.policy, "shop/legacy-block");
    EXPECT_FALSE(r.policy_in_state);
    // Not a convention: nothing invented.
    for (const char* c : {"allow web policy", "shop/x deny", "rule to REJECT traffic", "cali:abc; shop/x policy now"}) {
        r = rule("FORWARD", c, s.get());
        EXPECT_FALSE(r.cni) << c;
        EXPECT_FALSE(r.policy) << c;
        EXPECT_FALSE(r.pod) << c;
    }
}

TEST(CniNaming, KubeRouterRunThroughJumpsAreTheEvaluatedPolicies) {
    auto s = state({{"payments", "default-deny"}});  // "default-deny" now in shop and payments
    const Strings path = {"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-ABC", "KUBE-NWPLCY-DEF"};
    // Older kube-router wrote the bare name: the namespace is the pod's.
    auto r = rule("KUBE-NWPLCY-DEF", std::nullopt, s.get(), path,
                  {"", "kube-router netpol - TEMCG2JMHZYE7H7T",
                   "rule to jump traffic destined to POD name:postgres-0 namespace:databases to chain KUBE-POD-FW-ABC",
                   "run through nw policy allow-app-to-postgres"});
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.evaluated_policies, Strings{"databases/allow-app-to-postgres"});
    EXPECT_EQ(r.policy, "databases/allow-app-to-postgres");  // the drop is inside that policy's chain
    // Without a pod: a name the state has once resolves, an ambiguous one stays as written, ns/name as is.
    r = rule("KUBE-POD-FW-ABC", "rule to REJECT traffic", s.get(),
             {"KUBE-ROUTER-FORWARD", "KUBE-POD-FW-ABC", "X", "Y", "Z"},
             {"", "", "run through nw policy allow-checkout", "run through nw policy default-deny",
              "run through nw policy shop/default-deny"});
    EXPECT_EQ(r.evaluated_policies, (Strings{"payments/allow-checkout", "default-deny", "shop/default-deny"}));
    EXPECT_FALSE(r.policy);
}

TEST(CniNaming, K3sNflogPrefixNamesThePolicy) {
    auto s = state();
    npt::DropRule r;
    r.via = "nflog";
    r.nflog_group = 100;
    r.nflog_prefix = "DROP by policy shop/default-deny ";
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.policy, "shop/default-deny");
    EXPECT_TRUE(r.policy_in_state);
    r.nflog_prefix = "calico-drop: ";  // an unknown prefix names nothing
    npt::attribute_drop_rule(r, s.get());
    EXPECT_FALSE(r.cni);
    EXPECT_FALSE(r.policy);
}

// ---- Calico --------------------------------------------------------------------------------------------

TEST(CniNaming, CalicoEndpointChainsNameThePod) {
    auto s = state();
    struct Case {
        const char* chain;
        const char* pod;
        const char* direction;
    };
    for (const auto& c : {Case{"cali-tw-calib07053a3f11", "shop/frontend-7d9f8b6c5-q2w8x", "ingress"},
                          Case{"cali-fw-cali6bdd132581c", "shop/checkout-6f8d7c9b5-k8j7h", "egress"},
                          Case{"cali-tw-cali6c832f5207c", "databases/postgres-0", "ingress"},
                          Case{"cali-fw-cali58561be5eb0", "payments/api-5b7c9d8f4-m3n4p", "egress"},
                          Case{"filter-cali-tw-cali6c832f5207c", "databases/postgres-0", "ingress"}}) {
        auto r = rule(c.chain, "End of tier default. Drop if no policies passed packet", s.get());
        EXPECT_EQ(r.cni, "calico") << c.chain;
        EXPECT_EQ(r.pod, c.pod) << c.chain;
        EXPECT_EQ(r.direction, c.direction) << c.chain;
        EXPECT_FALSE(r.policy) << c.chain;  // the endpoint's implicit drop: no policy
    }
    // An interface no pod of the state has, the profile's drop: Calico's, with the direction, no pod.
    auto r = rule("cali-tw-cali00000000000", "Drop if no profiles matched", s.get());
    EXPECT_EQ(r.cni, "calico");
    EXPECT_FALSE(r.pod);
    EXPECT_EQ(r.direction, "ingress");
    r = rule("cali-pro-kns.shop", std::nullopt, s.get());
    EXPECT_FALSE(r.pod);
    EXPECT_EQ(r.direction, "egress");
}

TEST(CniNaming, CalicoHashedPolicyChainsFromEveryIdFormat) {
    auto s = state();
    struct Case {
        const char* chain;
        const char* policy;
        const char* direction;
    };
    for (const auto& c : {
             Case{"cali-pi-_ttpRVyHVa9v9wilofUu", "shop/allow-frontend-to-payments", "ingress"},  // v3.x
             Case{"cali-po-_ZSeJ9iWRoLt0vLZGIac", "shop/allow-frontend-to-payments", "egress"},   // tier/name
             Case{"cali-pi-_MTC9MZpUnEgGOd_EFio", "shop/allow-frontend-to-payments", "ingress"},  // knp/ns/name
             Case{"cali-pi-_vkzIU_062pOWTyjUpMQ", "databases/allow-app-to-postgres", "ingress"},
             Case{"cali-po-_u8uPDfEmzEn38W8YXy8", "operators/default-deny-egress", "egress"},
             Case{"cali-pi-_ZSeJ9iWRoLt0vLZGIacJX_GkevrqBrj", "shop/allow-frontend-to-payments", "ingress"},  // 40
         }) {
        auto r = rule(c.chain, "cali:Xyz", s.get());
        EXPECT_EQ(r.cni, "calico") << c.chain;
        EXPECT_EQ(r.policy, c.policy) << c.chain;
        EXPECT_EQ(r.policy_kind, "NetworkPolicy") << c.chain;
        EXPECT_TRUE(r.policy_in_state) << c.chain;
        EXPECT_EQ(r.direction, c.direction) << c.chain;
    }
    // A hash no policy of the state has (a Calico policy, a NetworkPolicy not in the state), or no state.
    for (const auto* st : {s.get(), static_cast<const npt::ClusterState*>(nullptr)}) {
        auto r = rule("cali-pi-_AAAAAAAAAAAAAAAAAAA", std::nullopt, st);
        EXPECT_EQ(r.cni, "calico");
        EXPECT_FALSE(r.policy);
        EXPECT_FALSE(r.policy_kind);
        EXPECT_FALSE(r.policy_in_state);
    }
    // A state built again from the same objects (another ClusterState): the same answers.
    auto again = state();
    EXPECT_EQ(rule("cali-pi-_MTC9MZpUnEgGOd_EFio", std::nullopt, again.get()).policy,
              "shop/allow-frontend-to-payments");
}

TEST(CniNaming, CalicoUnhashedPolicyChains) {
    auto s = state();
    using Case = PolicyChainCase;
    expect_policy_chains(
        s.get(),
        {
            Case{"cali-pi-db/knp.default.web", "db/web", "NetworkPolicy", false},
            Case{"cali-pi-knp/db/x", "db/x", "NetworkPolicy", false},
            Case{"cali-pi-shop/knp.default.default-deny", "shop/default-deny", "NetworkPolicy", true},  // nftables
            Case{"cali-po-default/shop/knp.default.default-deny", "shop/default-deny", "NetworkPolicy", true},
            Case{"cali-pi-knp/shop/default-deny", "shop/default-deny", "NetworkPolicy", true},
            Case{"cali-pi-gnp/deny-all", "deny-all", "GlobalNetworkPolicy", false},
            Case{"cali-po-default.deny-all", "default.deny-all", "GlobalNetworkPolicy", false},
            Case{"cali-po-default/default.deny-all", "default.deny-all", "GlobalNetworkPolicy", false},
            Case{"cali-pi-np/shop/allow-x", "shop/allow-x", "CalicoNetworkPolicy", false},
            Case{"cali-pi-shop/default.allow", "shop/default.allow", "CalicoNetworkPolicy", false},
            Case{"cali-pi-snp/shop/try", "shop/try", "StagedNetworkPolicy", false},
            Case{"cali-pi-sgnp/try", "try", "StagedGlobalNetworkPolicy", false},
            Case{"cali-pi-sknp/shop/try", "shop/try", "StagedKubernetesNetworkPolicy", false},
        });
    // Calico's other chains name no policy.
    for (const char* chain : {"cali-FORWARD", "cali-from-wl-dispatch", "cali-pi-", "cali-pi-a//b"}) {
        auto r = rule(chain, std::nullopt, s.get());
        EXPECT_EQ(r.cni, "calico") << chain;
        EXPECT_FALSE(r.policy) << chain;
    }
}

TEST(CniNaming, CalicoPathGivesTheEvaluatedPoliciesAndThePod) {
    auto s = state();
    // A GlobalNetworkPolicy's deny rule dropped it after the pod's own policies were evaluated.
    auto r = rule("cali-po-default.deny-egress", "cali:Q1w2", s.get(),
                  {"cali-FORWARD", "cali-from-wl-dispatch", "cali-fw-calib07053a3f11", "cali-po-_ZFjibTxb9j7SjgJ2hzN",
                   "cali-po-knp/shop/allow-internet-egress", "cali-po-_AAAAAAAAAAAAAAAAAAA",
                   "cali-po-_ZFjibTxb9j7SjgJ2hzN", "cali-po-default.deny-egress"});
    EXPECT_EQ(r.pod, "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_EQ(r.direction, "egress");
    EXPECT_EQ(r.policy, "default.deny-egress");
    EXPECT_EQ(r.policy_kind, "GlobalNetworkPolicy");
    EXPECT_FALSE(r.policy_in_state);
    EXPECT_EQ(r.evaluated_policies,
              (Strings{"shop/default-deny", "shop/allow-internet-egress", "default.deny-egress"}));
    // Without a path (fexit): the dropping policy chain alone.
    r = rule("cali-pi-_vkzIU_062pOWTyjUpMQ", std::nullopt, s.get());
    EXPECT_EQ(r.evaluated_policies, Strings{"databases/allow-app-to-postgres"});
}

TEST(CniNaming, AttributingAgainReplacesTheDerivedFields) {
    auto s = state();
    auto r = rule("cali-tw-cali6c832f5207c", "End of tier default", s.get());
    ASSERT_EQ(r.pod, "databases/postgres-0");
    r.chain = "KUBE-NWPLCY-X";
    r.comment = "shop/default-deny policy";
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.policy, "shop/default-deny");
    EXPECT_FALSE(r.pod);
    EXPECT_FALSE(r.direction);
}

TEST(CniNaming, EvaluatedPoliciesAreThoseOfThePodWhoseChainDropped) {
    // The packet passed the source's egress chain (its policies accepted) before the destination's ingress
    // chain dropped it: only the destination's policies are the ones evaluated for this drop.
    auto s = state();
    auto r = rule("cali-tw-cali6c832f5207c", "End of tier default. Drop if no policies passed packet", s.get(),
                  {"cali-FORWARD", "cali-fw-cali6bdd132581c", "cali-po-_MTC9MZpUnEgGOd_EFio", "cali-fw-cali6bdd132581c",
                   "cali-FORWARD", "cali-to-wl-dispatch", "cali-tw-cali6c832f5207c", "cali-pi-_vkzIU_062pOWTyjUpMQ",
                   "cali-tw-cali6c832f5207c"});
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.evaluated_policies, Strings{"databases/allow-app-to-postgres"});
    r = rule(
        "KUBE-POD-FW-B", "rule to REJECT traffic destined for POD name:postgres-0 namespace:databases", s.get(),
        {"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-A", "KUBE-NWPLCY-1", "KUBE-POD-FW-A", "KUBE-ROUTER-FORWARD",
         "KUBE-POD-FW-B", "KUBE-NWPLCY-2", "KUBE-POD-FW-B", "KUBE-NWPLCY-3", "KUBE-POD-FW-B"},
        {"", "kube-router netpol - TEMCG2JMHZYE7H7T",
         "rule to jump traffic from POD name:checkout-6f8d7c9b5-k8j7h namespace:shop to chain KUBE-POD-FW-A",
         "run through nw policy shop/allow-checkout-egress", "", "",
         "rule to jump traffic destined to POD name:postgres-0 namespace:databases to chain KUBE-POD-FW-B",
         "run through nw policy databases/allow-app-to-postgres", "", "run through nw policy databases/other", ""});
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.direction, "ingress");
    EXPECT_EQ(r.evaluated_policies, (Strings{"databases/allow-app-to-postgres", "databases/other"}));
}

TEST(CniNaming, AStateBuiltWhereAFreedOneWasIsNotConfusedWithIt) {
    // States of the same shape, one after the other: the allocator tends to put each where the previous one was.
    // The maps cached for a freed state must not answer (or fail to answer) for the new one.
    for (bool registered : {false, true}) {
        for (int round = 0; round < 6; ++round) {
            npt::ClusterObjects objects;
            const std::string ns = "round" + std::to_string(round);
            for (int i = 0; i < 50; ++i) {
                npt::PodInfo pod;
                pod.ns = ns;
                pod.name = "web-" + std::to_string(i);
                objects.pods.push_back(pod);
                npt::NetworkPolicy policy;
                policy.ns = ns;
                policy.name = "allow-web-from-the-frontend-" + std::to_string(i);
                objects.policies.push_back(policy);
            }
            auto s = npt::ClusterState::build(std::move(objects));
            if (registered) npt::cni::prepare_naming_index(s);
            for (int i : {0, 17, 49}) {
                const std::string pod = "web-" + std::to_string(i);
                const std::string policy = "allow-web-from-the-frontend-" + std::to_string(i);
                auto r = rule("cali-tw-" + npt::cni::calico_interface(ns, pod), std::nullopt, s.get());
                EXPECT_EQ(r.pod, ns + "/" + pod) << registered << " " << round;
                r = rule(npt::cni::calico_limited_id("cali-po-", "knp/" + ns + "/" + policy), std::nullopt, s.get());
                EXPECT_EQ(r.policy, ns + "/" + policy) << registered << " " << round;
                EXPECT_EQ(*npt::cni::resolve_policy_name(policy, "", s.get()), ns + "/" + policy);
            }
        }
    }
}

// ---- every version's shapes ------------------------------------------------------------------------------

TEST(CniNaming, KubeRouterCommentsOfEveryVersion) {
    // The texts of pod.go, policy.go and network_policy_controller.go / npc_iptables.go at v1.6.1, v2.0.0-v2.10.0
    // and v2.11.1 (comments.go).
    struct Case {
        const char* comment;
        const char* pod;
        const char* direction;
        const char* policy;
        bool jump_to_policy, jump_to_pod;
        const char* versions;
    };
    const Case cases[] = {
        {"rule to jump traffic destined to POD name:postgres-0 namespace: databases to chain KUBE-POD-FW-X",
         "databases/postgres-0", "ingress", "", false, true, "v1.6-v2.10"},
        {"rule to jump traffic from POD name:postgres-0 namespace: databases to chain KUBE-POD-FW-X",
         "databases/postgres-0", "egress", "", false, true, "v1.6-v2.10"},
        {"rule to REJECT traffic destined for POD name:postgres-0 namespace: databases", "databases/postgres-0", "", "",
         false, false, "v1.6-v2.10"},
        {"rule to log dropped traffic POD name:postgres-0 namespace: databases", "databases/postgres-0", "", "", false,
         false, "v1.6-v2.10"},
        {"run through nw policy postgres-allow-checkout", "", "", "postgres-allow-checkout", true, false, "v1.6-v2.10"},
        {"rule to ACCEPT traffic from source pods to dest pods selected by policy name postgres-allow-checkout "
         "namespace databases",
         "", "", "databases/postgres-allow-checkout", false, false, "v1.6-v2.10"},
        {"rule to ACCEPT traffic from all sources to dest pods selected by policy name: x namespace db", "", "ingress",
         "db/x", false, false, "v1.6-v2.10"},
        {"rule to ACCEPT traffic from source pods to specified ipBlocks selected by policy name: x namespace db", "",
         "egress", "db/x", false, false, "v1.6-v2.10"},
        {"run through default ingress network policy  chain", "", "ingress", "", false, false, "v1.6"},
        {"run through default egress network policy chain", "", "egress", "", false, false, "v2.0-v2.10"},
        {"rule to permit the traffic traffic to pods when source is the pod's local node", "", "ingress", "", false,
         false, "v2.0-v2.10"},
        {"explicitly ACCEPT traffic that complies with network policies", "", "", "", false, false, "v1.6"},
        {"common bi-directional traffic policy rules", "", "", "", false, false, "v2.6-v2.10"},
        {"rule to explicitly handle traffic for network policies ACCEPT/REJECT decision", "", "", "", false, false,
         "v2.10+"},
        {"databases/postgres-0 in", "databases/postgres-0", "ingress", "", false, true, "v2.11+"},
        {"databases/postgres-0 out", "databases/postgres-0", "egress", "", false, true, "v2.11+"},
        {"databases/postgres-0 reject", "databases/postgres-0", "", "", false, false, "v2.11+"},
        {"databases/postgres-0 log-drop", "databases/postgres-0", "", "", false, false, "v2.11+"},
        {"databases/postgres-allow-checkout policy", "", "", "databases/postgres-allow-checkout", true, false,
         "v2.11+"},
        {"databases/postgres-allow-checkout ingress pods", "", "ingress", "databases/postgres-allow-checkout", false,
         false, "v2.11+"},
        {"shop/allow-dns egress any np", "", "egress", "shop/allow-dns", false, false, "v2.11+"},
        {"shop/x except-dst", "", "egress", "shop/x", false, false, "v2.11+"},
        {"common netpol rules", "", "", "", false, false, "v2.11+"},
    };
    for (const auto& c : cases) {
        const auto k = npt::cni::parse_kube_router_comment(c.comment);
        EXPECT_EQ(k.pod, c.pod) << c.comment;
        EXPECT_EQ(k.direction, c.direction) << c.comment;
        EXPECT_EQ(k.policy, c.policy) << c.comment;
        EXPECT_EQ(k.jump_to_policy, c.jump_to_policy) << c.comment;
        EXPECT_EQ(k.jump_to_pod, c.jump_to_pod) << c.comment;
        EXPECT_EQ(npt::cni::version_guess(npt::cni::Cni::KubeRouter, k.versions), c.versions) << c.comment;
    }
    // A cut or unknown kind is not v2.11's.
    EXPECT_FALSE(npt::cni::parse_kube_router_comment("shop/x ingr").recognized);
    EXPECT_FALSE(npt::cni::parse_kube_router_comment("shop/x ingress").recognized);
}

namespace {

// kube-router's drop of a packet of shop/checkout's egress (to databases/postgres-0) in the pod's chain, as the
// trace sees it in `version`'s comments: the jump into the pod chain, the policy chains left before the REJECT.
npt::DropRule kube_router_reject(const npt::ClusterState* s, bool v211, bool common) {
    npt::DropRule r;
    r.table = "filter";
    r.chain = "KUBE-POD-FW-L7IE2XPU3BPZSABE";
    r.handle = 31;
    r.via = "nftrace";
    r.comments = {v211 ? "shop/checkout-6f8d7c9b5-k8j7h reject"
                       : "rule to REJECT traffic destined for POD name:checkout-6f8d7c9b5-k8j7h namespace: shop"};
    r.path = {"FORWARD", "KUBE-ROUTER-FORWARD", r.chain};
    r.jump_comments = {{},
                       {"kube-router netpol - TEMCG2JMHZYE7H7T"},
                       {v211 ? "shop/checkout-6f8d7c9b5-k8j7h out"
                             : "rule to jump traffic from POD name:checkout-6f8d7c9b5-k8j7h namespace: shop to chain "
                               "KUBE-POD-FW-L7IE2XPU3BPZSABE"}};
    if (common) {
        r.returned_from.push_back("KUBE-NWPLCY-COMMON");
        r.returned_comments.push_back({v211 ? "common netpol rules" : "common bi-directional traffic policy rules"});
    }
    r.returned_from.push_back("KUBE-NWPLCY-OSZ6G7GFKH56Q4RI");
    r.returned_comments.push_back(
        {v211 ? "shop/allow-checkout-egress policy" : "run through nw policy allow-checkout-egress"});
    npt::attribute_drop_rule(r, s);
    return r;
}

}  // namespace

TEST(CniNaming, KubeRouterRejectOfEveryVersion) {
    auto s = state({{"shop", "allow-checkout-egress"}});
    struct Case {
        bool v211, common;
        const char* versions;
    };
    for (const auto& c :
         {Case{false, false, "v1.6-v2.5"}, Case{false, true, "v2.6-v2.10"}, Case{true, true, "v2.11+"}}) {
        const auto r = kube_router_reject(s.get(), c.v211, c.common);
        EXPECT_EQ(r.cni, "kube-router") << c.versions;
        EXPECT_EQ(r.pod, "shop/checkout-6f8d7c9b5-k8j7h") << c.versions;
        EXPECT_EQ(r.direction, "egress") << c.versions;  // from the jump into the pod's chain
        EXPECT_EQ(r.evaluated_policies, Strings{"shop/allow-checkout-egress"}) << c.versions;
        // One policy chain, left without the accept mark: the policy that did not allow it.
        EXPECT_EQ(r.policy, "shop/allow-checkout-egress") << c.versions;
        EXPECT_EQ(r.policy_kind, "NetworkPolicy") << c.versions;
        EXPECT_TRUE(r.policy_in_state) << c.versions;
        EXPECT_EQ(r.cni_version_guess, c.versions);
        EXPECT_EQ(r.comment, r.comments.front());
    }
    // Two policies evaluated: neither alone dropped it.
    auto r = kube_router_reject(s.get(), true, true);
    r.returned_from.push_back("KUBE-NWPLCY-DEFAULT2");
    r.returned_comments.push_back({"shop/default-deny policy"});
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.evaluated_policies, (Strings{"shop/allow-checkout-egress", "shop/default-deny"}));
    EXPECT_FALSE(r.policy);
    const auto j = npt::drop_json(npt::DropRecord{.rule = r}, "drop");
    EXPECT_EQ(j["rule"]["cni_version_guess"], "v2.11+");
}

TEST(CniNaming, CalicoPolicyIdsOfEveryVersion) {
    struct Case {
        const char* id;
        const char* policy;
        const char* kind;
        const char* versions;
    };
    const Case cases[] = {
        {"shop/knp.default.allow-x", "shop/allow-x", "NetworkPolicy", "v3.26-v3.28"},
        {"default/shop/knp.default.allow-x", "shop/allow-x", "NetworkPolicy", "v3.29-v3.31"},
        {"knp/shop/allow-x", "shop/allow-x", "NetworkPolicy", "v3.32+"},
        {"default.deny-all", "default.deny-all", "GlobalNetworkPolicy", "v3.26-v3.28"},
        {"default/default.deny-all", "default.deny-all", "GlobalNetworkPolicy", "v3.29-v3.31"},
        {"default/deny-all", "deny-all", "GlobalNetworkPolicy", "v3.30-v3.31"},
        {"gnp/deny-all", "deny-all", "GlobalNetworkPolicy", "v3.32+"},
        {"shop/default.np1", "shop/default.np1", "CalicoNetworkPolicy", "v3.26-v3.28"},
        {"default/shop/np1", "shop/np1", "CalicoNetworkPolicy", "v3.29-v3.31"},
        {"np/shop/np1", "shop/np1", "CalicoNetworkPolicy", "v3.32+"},
        {"adminnetworkpolicy/kanp.adminnetworkpolicy.deny-ops", "AdminNetworkPolicy/deny-ops", "AdminNetworkPolicy",
         "v3.29-v3.31"},
        {"baselineadminnetworkpolicy/kbanp.baselineadminnetworkpolicy.default", "BaselineAdminNetworkPolicy/default",
         "BaselineAdminNetworkPolicy", "v3.30-v3.31"},
        {"kcnp/ops-lockdown", "ops-lockdown", "ClusterNetworkPolicy", "v3.32+"},
    };
    for (const auto& c : cases) {
        const auto p = npt::cni::parse_calico_policy_id(c.id);
        ASSERT_TRUE(p) << c.id;
        EXPECT_EQ(p->name, c.policy) << c.id;
        EXPECT_EQ(p->kind, c.kind) << c.id;
        EXPECT_EQ(npt::cni::version_guess(npt::cni::Cni::Calico, p->versions), c.versions) << c.id;
    }
    EXPECT_FALSE(npt::cni::parse_calico_policy_id("baselineadminnetworkpolicy/kanp.adminnetworkpolicy.x"));
}

TEST(CniNaming, CalicoClusterPolicyChains) {
    using K = npt::ClusterPolicyKind;
    auto s = state_with_cluster_policies({{K::AdminNetworkPolicy, "deny-ops"},
                                          {K::BaselineAdminNetworkPolicy, "default"},
                                          {K::ClusterNetworkPolicy, "databases-delegate-monitoring"},
                                          {K::ClusterNetworkPolicy, "ops-lockdown"}});
    using Case = PolicyChainCase;
    expect_policy_chains(
        s.get(),
        {
            // v3.29-v3.31 iptables: hashed (python: the sha256 of the ids in the comment of calico_cluster_policy_id)
            Case{"cali-pi-_c6xQqZexk9rdFmHED36", "AdminNetworkPolicy/deny-ops", "AdminNetworkPolicy", true},
            Case{"cali-po-_Bmx5rU_QtHBNk46xFZL", "BaselineAdminNetworkPolicy/default", "BaselineAdminNetworkPolicy",
                 true},
            // v3.30-v3.31 nftables: unhashed
            Case{"filter-cali-pi-adminnetworkpolicy/kanp.adminnetworkpolicy.deny-ops", "AdminNetworkPolicy/deny-ops",
                 "AdminNetworkPolicy", true},
            // v3.32: kcnp/<name>, hashed past 28 characters
            Case{"cali-pi-_gvAUdhfpiWzrgIRgNAY", "databases-delegate-monitoring", "ClusterNetworkPolicy", true},
            Case{"cali-pi-kcnp/ops-lockdown", "ops-lockdown", "ClusterNetworkPolicy", true},
            Case{"cali-pi-kcnp/gone", "gone", "ClusterNetworkPolicy", false},
        });
    // The named rule of a Deny, as Felix comments it (iptables: separate comments; nftables: one).
    npt::DropRule r;
    r.table = "filter";
    r.chain = "cali-pi-kcnp/ops-lockdown";
    r.comments = {"cali:Xx1", "name=deny-ingress-from-workloads"};
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.rule_name, "deny-ingress-from-workloads");
    EXPECT_EQ(r.comment, "name=deny-ingress-from-workloads");
    r.comments = {"cali:Xx1; name=deny-ingress-from-workloads KubernetesClusterNetworkPolicy ops-lockdown ingress"};
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.rule_name, "deny-ingress-from-workloads");
    EXPECT_EQ(r.policy, "ops-lockdown");
}

TEST(CniNaming, FelixCommentsOfEveryVersion) {
    struct Case {
        std::vector<std::string> comments;
        const char* meaningful;
        bool end_of_tier;
        const char* policy;
        const char* versions;
    };
    const Case cases[] = {
        {{"cali:Zq2O8uV4sBxNvYHa", "End of tier default. Drop if no policies passed packet"},
         "End of tier default. Drop if no policies passed packet",
         true,
         "",
         "v3.30+"},
        {{"cali:Zq2O8uV4sBxNvYHa; End of tier default. Drop if no policies passed packet"},
         "End of tier default. Drop if no policies passed packet",
         true,
         "",
         "v3.30+"},
        {{"cali:Zq2O8uV4sBxNvYHa", "Drop if no policies passed packet"},
         "Drop if no policies passed packet",
         true,
         "",
         "v3.26-v3.29"},
        {{"cali:Zq2O8uV4sBxNvYHa", "Start of policies"}, "Start of policies", false, "", "v3.26-v3.27"},
        {{"cali:Zq2O8uV4sBxNvYHa", "Policy shop/knp.default.allow-x ingress"},
         "Policy shop/knp.default.allow-x ingress",
         false,
         "shop/allow-x",
         "v3.26-v3.28"},
        {{"cali:A", "KubernetesNetworkPolicy shop/allow-x egress"},
         "KubernetesNetworkPolicy shop/allow-x egress",
         false,
         "shop/allow-x",
         "v3.32+"},
        {{"cali:A", "name=deny-x", "Policy kanp.adminnetworkpolicy.deny-ops ingress"},
         "Policy kanp.adminnetworkpolicy.deny-ops ingress",
         false,
         "AdminNetworkPolicy/deny-ops",
         "v3.29-v3.31"},
        {{"cali:A"}, "", false, "", ""},
    };
    for (const auto& c : cases) {
        const auto f = npt::cni::parse_calico_comments(c.comments);
        EXPECT_TRUE(f.recognized) << c.comments.back();
        EXPECT_EQ(f.id, c.comments.front().substr(0, c.comments.front().find(';'))) << c.comments.back();
        EXPECT_EQ(f.meaningful.value_or(""), c.meaningful) << c.comments.back();
        EXPECT_EQ(f.end_of_tier, c.end_of_tier) << c.comments.back();
        EXPECT_EQ(f.policy ? f.policy->name : "", c.policy) << c.comments.back();
        EXPECT_EQ(npt::cni::version_guess(npt::cni::Cni::Calico, f.versions), c.versions) << c.comments.back();
    }
    // The drop at the end of a tier: its text, not Felix's id, is the rule's comment; both are kept.
    auto s = state();
    npt::DropRule r;
    r.table = "filter";
    r.chain = "cali-tw-cali6c832f5207c";
    r.comments = {"cali:Zq2O8uV4sBxNvYHa", "End of tier default. Drop if no policies passed packet"};
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.comment, "End of tier default. Drop if no policies passed packet");
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.cni_version_guess, "v3.30+");
    const auto j = npt::drop_json(npt::DropRecord{.rule = r}, "drop");
    EXPECT_EQ(j["rule"]["comments"], npt::Json(r.comments));
    // A policy chain's first rule names a policy the state does not have, even behind a hashed name.
    r.chain = "cali-po-_AAAAAAAAAAAAAAAAAAA";
    r.comments = {"cali:B", "GlobalNetworkPolicy deny-egress egress"};
    npt::attribute_drop_rule(r, s.get());
    EXPECT_EQ(r.policy, "deny-egress");
    EXPECT_EQ(r.policy_kind, "GlobalNetworkPolicy");
    EXPECT_FALSE(r.policy_in_state);
}

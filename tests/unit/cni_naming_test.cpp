// The CNI naming conventions the tail maps dataplane names back to Kubernetes objects with. Expected hashed
// names are literals computed independently with Python's hashlib (the lab's scripts/lab.d/lab_dataplane.py
// renders them the same way):
//   "cali" + hashlib.sha1(f"{ns}.{pod}".encode()).hexdigest()[:11]
//   prefix + "_" + base64.urlsafe_b64encode(hashlib.sha256(id.encode()).digest()).decode()[:28 - 8 - 1]
#include "output/cni_naming.hpp"

#include <gtest/gtest.h>

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

}  // namespace

// ---- the names themselves ------------------------------------------------------------------------------

TEST(CniNaming, CalicoInterfaceIsCaliAndElevenHexDigitsOfSha1) {
    EXPECT_EQ(npt::cni::calico_interface("shop", "frontend-7d9f8b6c5-q2w8x"), "calib07053a3f11");
    EXPECT_EQ(npt::cni::calico_interface("databases", "postgres-0"), "cali6c832f5207c");
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
    EXPECT_EQ(
        npt::cni::calico_limited_id("cali-pi-", "default/shop/knp.default.allow-frontend-to-payments", 40),
        "cali-pi-_ZSeJ9iWRoLt0vLZGIacJX_GkevrqBrj");
    const unsigned char bytes[] = {0xfb, 0xff, 0xfe, 'a', 'b'};
    EXPECT_EQ(npt::cni::base64url_nopad(bytes, 3), "-__-");
    EXPECT_EQ(npt::cni::base64url_nopad(bytes + 3, 2), "YWI");
    EXPECT_EQ(npt::cni::base64url_nopad(bytes + 3, 1), "YQ");
}

// ---- kube-router ---------------------------------------------------------------------------------------

TEST(CniNaming, KubeRouterOlderRejectCommentsNameThePodAndDirection) {
    auto s = state();
    auto r = rule("KUBE-POD-FW-4X5TBXAQ2KYYTOD6",
                  "rule to REJECT traffic destined for POD name:postgres-0 namespace: databases", s.get());
    EXPECT_EQ(r.cni, "kube-router");
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.direction, "ingress");
    EXPECT_FALSE(r.policy);
    EXPECT_FALSE(r.policy_kind);
    // "from", any case of POD, trailing text (the lab's stale rule in KUBE-ROUTER-FORWARD).
    r = rule(
        "KUBE-ROUTER-FORWARD",
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
    auto r =
        rule("KUBE-POD-FW-ABC", "rule to REJECT traffic destined for POD name:postgres-0 namespace:databases",
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
    for (const char* c :
         {"allow web policy", "shop/x deny", "rule to REJECT traffic", "cali:abc; shop/x policy now"}) {
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
    auto r = rule(
        "KUBE-NWPLCY-DEF", std::nullopt, s.get(), path,
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
    EXPECT_EQ(r.evaluated_policies,
              (Strings{"payments/allow-checkout", "default-deny", "shop/default-deny"}));
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
             Case{"cali-pi-_MTC9MZpUnEgGOd_EFio", "shop/allow-frontend-to-payments",
                  "ingress"},  // knp/ns/name
             Case{"cali-pi-_vkzIU_062pOWTyjUpMQ", "databases/allow-app-to-postgres", "ingress"},
             Case{"cali-po-_u8uPDfEmzEn38W8YXy8", "operators/default-deny-egress", "egress"},
             Case{"cali-pi-_ZSeJ9iWRoLt0vLZGIacJX_GkevrqBrj", "shop/allow-frontend-to-payments",
                  "ingress"},  // 40
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
    struct Case {
        const char* chain;
        const char* policy;
        const char* kind;
        bool in_state;
    };
    for (const auto& c : {
             Case{"cali-pi-db/knp.default.web", "db/web", "NetworkPolicy", false},
             Case{"cali-pi-knp/db/x", "db/x", "NetworkPolicy", false},
             Case{"cali-pi-shop/knp.default.default-deny", "shop/default-deny", "NetworkPolicy",
                  true},  // nftables
             Case{"cali-po-default/shop/knp.default.default-deny", "shop/default-deny", "NetworkPolicy",
                  true},
             Case{"cali-pi-knp/shop/default-deny", "shop/default-deny", "NetworkPolicy", true},
             Case{"cali-pi-gnp/deny-all", "deny-all", "GlobalNetworkPolicy", false},
             Case{"cali-po-default.deny-all", "default.deny-all", "GlobalNetworkPolicy", false},
             Case{"cali-po-default/default.deny-all", "default.deny-all", "GlobalNetworkPolicy", false},
             Case{"cali-pi-np/shop/allow-x", "shop/allow-x", "CalicoNetworkPolicy", false},
             Case{"cali-pi-shop/default.allow", "shop/default.allow", "CalicoNetworkPolicy", false},
             Case{"cali-pi-snp/shop/try", "shop/try", "StagedNetworkPolicy", false},
             Case{"cali-pi-sgnp/try", "try", "StagedGlobalNetworkPolicy", false},
             Case{"cali-pi-sknp/shop/try", "shop/try", "StagedKubernetesNetworkPolicy", false},
         }) {
        auto r = rule(c.chain, std::nullopt, s.get());
        EXPECT_EQ(r.cni, "calico") << c.chain;
        EXPECT_EQ(r.policy, c.policy) << c.chain;
        EXPECT_EQ(r.policy_kind, c.kind) << c.chain;
        EXPECT_EQ(r.policy_in_state, c.in_state) << c.chain;
    }
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
    auto r =
        rule("cali-po-default.deny-egress", "cali:Q1w2", s.get(),
             {"cali-FORWARD", "cali-from-wl-dispatch", "cali-fw-calib07053a3f11",
              "cali-po-_ZFjibTxb9j7SjgJ2hzN", "cali-po-knp/shop/allow-internet-egress",
              "cali-po-_AAAAAAAAAAAAAAAAAAA", "cali-po-_ZFjibTxb9j7SjgJ2hzN", "cali-po-default.deny-egress"});
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
    auto r =
        rule("cali-tw-cali6c832f5207c", "End of tier default. Drop if no policies passed packet", s.get(),
             {"cali-FORWARD", "cali-fw-cali6bdd132581c", "cali-po-_MTC9MZpUnEgGOd_EFio",
              "cali-fw-cali6bdd132581c", "cali-FORWARD", "cali-to-wl-dispatch", "cali-tw-cali6c832f5207c",
              "cali-pi-_vkzIU_062pOWTyjUpMQ", "cali-tw-cali6c832f5207c"});
    EXPECT_EQ(r.pod, "databases/postgres-0");
    EXPECT_EQ(r.evaluated_policies, Strings{"databases/allow-app-to-postgres"});
    r = rule(
        "KUBE-POD-FW-B", "rule to REJECT traffic destined for POD name:postgres-0 namespace:databases",
        s.get(),
        {"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-A", "KUBE-NWPLCY-1", "KUBE-POD-FW-A",
         "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-B", "KUBE-NWPLCY-2", "KUBE-POD-FW-B", "KUBE-NWPLCY-3",
         "KUBE-POD-FW-B"},
        {"", "kube-router netpol - TEMCG2JMHZYE7H7T",
         "rule to jump traffic from POD name:checkout-6f8d7c9b5-k8j7h namespace:shop to chain KUBE-POD-FW-A",
         "run through nw policy shop/allow-checkout-egress", "", "",
         "rule to jump traffic destined to POD name:postgres-0 namespace:databases to chain KUBE-POD-FW-B",
         "run through nw policy databases/allow-app-to-postgres", "", "run through nw policy databases/other",
         ""});
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

// The informers against the fake API server (tests/fake-apiserver): list + watch into snapshots the policy
// engine explains, relabels, delete/recreate with a reused IP, the deleted-pod grace period, disconnects
// resumed from the last resourceVersion, and 410 Gone answered by a relist with no update lost.
// Each test starts its own server on a free port of 127.0.0.1; no root needed.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "fake_apiserver.hpp"
#include "k8s/cluster_informer.hpp"
#include "k8s/fetch_cluster_state.hpp"
#include "k8s_test_objects.hpp"
#include "policy/explainer.hpp"

namespace npt::k8s {
namespace {

using namespace std::chrono_literals;
using npt::testing::eventually;
using npt::testing::FakeApiServer;
using npt::testing::items;
using npt::testing::pod_json;

std::string pod_at(const std::shared_ptr<const ClusterState>& s, std::string_view ip) {
    if (!s) return "";
    auto idx = s->pod_by_ip(*IpAddr::parse(ip));
    return idx ? std::string(s->pod_id(*idx)) : "";
}

std::string verdict(const std::shared_ptr<const ClusterState>& s, const std::string& from, const std::string& to,
                    uint16_t port) {
    ExplainQuery q;
    q.from = from;
    q.to = to;
    q.port = port;
    auto e = explain_query(*s, q);
    return e ? e->verdict : "error: " + e.error().message;
}

const ResourceStats& stats_of(const InformerStats& s, std::string_view resource) {
    for (const auto& r : s.resources)
        if (r.resource == resource) return r;
    throw std::runtime_error("no stats for " + std::string(resource));
}

// A small shop: web may reach db on 5432 (db-ingress), other/x may not.
void apply_shop(FakeApiServer& srv) {
    using namespace npt::testing;
    srv.apply(items({namespace_json("shop", R"({"team":"a"})"), namespace_json("other"),
                     pod_json("shop", "web-1", "10.0.0.1", R"({"app":"web"})"),
                     pod_json("shop", "db-1", "10.0.0.2", R"({"app":"db"})"),
                     pod_json("other", "x", "10.0.1.1", R"({"app":"web"})"),
                     policy_json("shop", "db-ingress", "db", "web", 5432),
                     service_json("shop", "db", "10.96.0.10", "db", 5432),
                     endpoint_slice_json("shop", "db", "10.0.0.2", "db-1", 5432), node_json("node-1", "192.168.0.1")}));
}

std::unique_ptr<ClusterInformer> start_informer(FakeApiServer& srv,
                                                InformerOptions o = npt::testing::fast_informer_options()) {
    auto informer = std::make_unique<ClusterInformer>(std::make_shared<ApiClient>(srv.token_config("test-token")), o);
    informer->start();
    return informer;
}

TEST(K8sInformer, ListWatchAndExplain) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    auto synced = informer->wait_synced(10s);
    ASSERT_TRUE(synced) << synced.error().message;
    auto s = *synced;
    EXPECT_TRUE(informer->synced());
    EXPECT_EQ(pod_at(s, "10.0.0.2"), "shop/db-1");
    EXPECT_EQ(verdict(s, "shop/web-1", "shop/db-1", 5432), "allowed");
    EXPECT_EQ(verdict(s, "other/x", "shop/db-1", 5432), "denied");
    EXPECT_EQ(verdict(s, "shop/web-1", "10.96.0.10", 5432), "allowed");  // through the Service's endpoints
    EXPECT_TRUE(s->node_by_ip(*IpAddr::parse("192.168.0.1")));

    // A policy added while watching: web is now isolated too.
    srv.apply(npt::testing::policy_json("shop", "web-ingress", "web", "nobody", 80));
    ASSERT_TRUE(eventually([&] { return informer->snapshot()->policies().size() == 2; }));
    const auto st = informer->stats();
    EXPECT_TRUE(st.synced);
    EXPECT_EQ(stats_of(st, "pods").objects, 3u);
    EXPECT_EQ(stats_of(st, "networkpolicies").events, 1u);
    EXPECT_GE(st.snapshots, 2u);
    for (const auto& r : st.resources) {
        EXPECT_TRUE(r.synced) << r.resource;
        EXPECT_TRUE(r.staleness) << r.resource;
        EXPECT_TRUE(r.last_error.empty()) << r.resource << ": " << r.last_error;
    }

    // The one-shot fetch (what `explain` uses) sees the same cluster.
    auto fetched = fetch_cluster_objects(*std::make_unique<ApiClient>(srv.token_config("test-token")));
    ASSERT_TRUE(fetched) << fetched.error().message;
    EXPECT_EQ(fetched->pods.size(), 3u);
    EXPECT_EQ(fetched->policies.size(), 2u);
    EXPECT_EQ(fetched->endpoint_slices.size(), 1u);
    EXPECT_EQ(fetched->nodes.size(), 1u);
}

// sig-network's policy API is CRDs: absent on most clusters (404 = none), served at v1beta1 or v1alpha2, installed
// or removed while the informer runs.
const std::string kAdminDenyOther =
    R"({"apiVersion":"policy.networking.k8s.io/v1beta1","kind":"ClusterNetworkPolicy","metadata":{"name":"deny-other"},)"
    R"("spec":{"tier":"Admin","priority":5,"subject":{"namespaces":{"matchLabels":{"kubernetes.io/metadata.name":"shop"}}},)"
    R"("ingress":[{"name":"no-other","action":"Deny","from":[{"namespaces":{"matchLabels":{"kubernetes.io/metadata.name":"other"}}}]}]}})";
const std::string kBaselineDeny =
    R"({"apiVersion":"policy.networking.k8s.io/v1alpha1","kind":"BaselineAdminNetworkPolicy","metadata":{"name":"default"},)"
    R"("spec":{"subject":{"namespaces":{}},"ingress":[{"action":"Deny","from":[{"namespaces":{}}]}]}})";

std::string decided_by(const std::shared_ptr<const ClusterState>& s, const std::string& from, const std::string& to,
                       uint16_t port) {
    ExplainQuery q{from, to, port, Protocol::TCP, std::nullopt};
    auto e = explain_query(*s, q);
    if (!e) return "error: " + e.error().message;
    const auto& d = e->ingress.decided_by;
    return std::string(tier_name(d.tier)) + (d.rule ? " " + d.rule->policy : std::string());
}

TEST(K8sInformer, PolicyApiCrdsAbsentInstalledAndRemoved) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    auto s = informer->wait_synced(10s);
    ASSERT_TRUE(s) << s.error().message;  // no CRD: synced all the same, with none of their objects
    EXPECT_TRUE((*s)->cluster_policies().empty());
    for (const auto& r : informer->stats().resources) EXPECT_TRUE(r.last_error.empty()) << r.resource << r.last_error;
    ASSERT_TRUE(fetch_cluster_objects(*std::make_unique<ApiClient>(srv.token_config("test-token"))));

    // Installed later (ClusterNetworkPolicy at v1beta1 only): picked up without a restart.
    srv.control("config", R"({"crds":{"clusternetworkpolicies":"v1beta1","baselineadminnetworkpolicies":"v1alpha1"}})");
    srv.apply(kAdminDenyOther);
    srv.apply(kBaselineDeny);
    ASSERT_TRUE(eventually([&] { return informer->snapshot()->cluster_policies().size() == 2; }));
    auto snap = informer->snapshot();
    EXPECT_EQ(decided_by(snap, "other/x", "shop/db-1", 5432), "admin deny-other");
    EXPECT_EQ(decided_by(snap, "other/x", "shop/web-1", 80), "admin deny-other");
    EXPECT_EQ(verdict(snap, "shop/web-1", "other/x", 80), "denied");  // the Baseline tier: other/x is not isolated
    EXPECT_EQ(decided_by(snap, "shop/web-1", "other/x", 80), "baseline BaselineAdminNetworkPolicy/default");
    EXPECT_EQ(decided_by(snap, "shop/web-1", "shop/db-1", 5432), "networkpolicy");  // db-ingress allows it

    // Watched: a policy removed.
    srv.remove("BaselineAdminNetworkPolicy", "", "default");
    ASSERT_TRUE(eventually([&] { return informer->snapshot()->cluster_policies().size() == 1; }));
    EXPECT_EQ(verdict(informer->snapshot(), "shop/web-1", "other/x", 80), "allowed");

    // The one-shot fetch of `explain` reads them too.
    auto fetched = fetch_cluster_objects(*std::make_unique<ApiClient>(srv.token_config("test-token")));
    ASSERT_TRUE(fetched) << fetched.error().message;
    ASSERT_EQ(fetched->cluster_policies.size(), 1u);
    EXPECT_EQ(fetched->cluster_policies[0].name, "deny-other");

    // The CRD removed: its objects go with it.
    srv.control("config", R"({"crds":{}})");
    srv.control("drop-watches");
    ASSERT_TRUE(eventually([&] { return informer->snapshot()->cluster_policies().empty(); }));
    EXPECT_EQ(verdict(informer->snapshot(), "other/x", "shop/db-1", 5432), "denied");  // db-ingress alone
    EXPECT_EQ(decided_by(informer->snapshot(), "other/x", "shop/db-1", 5432), "networkpolicy");
}

TEST(K8sInformer, PaginatedListIsComplete) {
    FakeApiServer srv;
    std::string all = "[";
    for (int i = 0; i < 1050; ++i) {
        if (i) all += ",";
        all += pod_json("bulk", fmt::format("p-{}", i), fmt::format("10.9.{}.{}", i / 250, i % 250 + 1));
    }
    srv.apply(all + "]");
    auto informer = start_informer(srv);  // page_size 100: 11 pages
    auto s = informer->wait_synced(20s);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ((*s)->pods().size(), 1050u);
    EXPECT_NE(srv.stats().find("\"pods\":{\"lists\":11,"), std::string::npos) << srv.stats();
}

TEST(K8sInformer, RelabelMidWatchChangesWhatSelectorsMatch) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    auto s = informer->wait_synced(10s);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_EQ(verdict(*s, "shop/web-1", "shop/db-1", 5432), "allowed");

    // web-1 is relabelled: db-ingress no longer admits it.
    srv.apply(pod_json("shop", "web-1", "10.0.0.1", R"({"app":"frontend"})"));
    ASSERT_TRUE(eventually([&] { return verdict(informer->snapshot(), "shop/web-1", "shop/db-1", 5432) == "denied"; }));
    // db-1 is relabelled: no policy selects it any more.
    srv.apply(pod_json("shop", "db-1", "10.0.0.2", R"({"app":"cache"})"));
    ASSERT_TRUE(
        eventually([&] { return verdict(informer->snapshot(), "shop/web-1", "shop/db-1", 5432) == "allowed"; }));
    auto snap = informer->snapshot();
    auto db = snap->find_pod("shop", "db-1");
    ASSERT_TRUE(db);
    EXPECT_TRUE(snap->isolating_policies(*db, Direction::Ingress).empty());
}

TEST(K8sInformer, RecreatedPodWithReusedIpResolvesToTheNewPod) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    ASSERT_TRUE(informer->wait_synced(10s));
    srv.remove("Pod", "shop", "db-1");
    srv.apply(pod_json("shop", "db-2", "10.0.0.2", R"({"app":"db"})"));
    ASSERT_TRUE(eventually([&] { return pod_at(informer->snapshot(), "10.0.0.2") == "shop/db-2"; }));
    auto s = informer->snapshot();
    // The deleted pod is still known by name (grace period) but does not hold the IP.
    EXPECT_TRUE(s->find_pod("shop", "db-1"));
    EXPECT_EQ(informer->stats().deleted_pods, 1u);
}

TEST(K8sInformer, DeletedPodResolvableForTheGracePeriod) {
    FakeApiServer srv;
    apply_shop(srv);
    auto o = npt::testing::fast_informer_options();
    o.deleted_pod_grace = 1500ms;
    auto informer = start_informer(srv, o);
    ASSERT_TRUE(informer->wait_synced(10s));
    srv.remove("Pod", "shop", "web-1");
    ASSERT_TRUE(eventually([&] { return informer->stats().deleted_pods == 1; }));
    const auto deleted_at = std::chrono::steady_clock::now();
    auto s = informer->snapshot_now();
    EXPECT_EQ(pod_at(s, "10.0.0.1"), "shop/web-1");
    EXPECT_EQ(verdict(s, "shop/web-1", "shop/db-1", 5432),
              "allowed");  // drops still explained with its labels
    // The builder forgets it when the grace period ends, without any further event.
    ASSERT_TRUE(eventually([&] { return pod_at(informer->snapshot(), "10.0.0.1").empty(); }, 5s));
    EXPECT_GE(std::chrono::steady_clock::now() - deleted_at, 1200ms);
    EXPECT_EQ(informer->stats().deleted_pods, 0u);
}

TEST(K8sInformer, DroppedWatchesResumeFromTheLastResourceVersion) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    ASSERT_TRUE(informer->wait_synced(10s));
    for (int round = 0; round < 3; ++round) {
        srv.control("drop-watches");
        srv.apply(pod_json("shop", fmt::format("late-{}", round), fmt::format("10.0.2.{}", round + 1)));
    }
    ASSERT_TRUE(eventually([&] { return informer->snapshot()->pods().size() == 6; }));
    for (int round = 0; round < 3; ++round) {
        EXPECT_EQ(pod_at(informer->snapshot(), fmt::format("10.0.2.{}", round + 1)),
                  fmt::format("shop/late-{}", round));
    }
    const auto st = informer->stats();
    EXPECT_GE(stats_of(st, "pods").reconnects, 1u);
    EXPECT_EQ(stats_of(st, "pods").relists, 0u);  // resumed, never listed again
    EXPECT_EQ(stats_of(st, "pods").lists, 1u);
}

// While watches are refused, changes happen and the history is compacted: the informer's resourceVersion is
// too old when it comes back, so it must list again and lose nothing.
void gone_recovery(bool gone_as_status) {
    FakeApiServer::Options so;
    so.gone_as_status = gone_as_status;
    FakeApiServer srv(so);
    apply_shop(srv);
    auto informer = start_informer(srv);
    ASSERT_TRUE(informer->wait_synced(10s));
    srv.control("config", R"({"refuse_watches": true})");
    srv.control("drop-watches");
    srv.apply(pod_json("shop", "web-1", "10.0.0.1", R"({"app":"frontend"})"));  // relabel
    srv.remove("Pod", "other", "x");                                            // delete
    srv.apply(pod_json("shop", "new-1", "10.0.0.9", R"({"app":"web"})"));       // create
    srv.control("compact");
    srv.control("config", R"({"refuse_watches": false})");
    ASSERT_TRUE(eventually([&] {
        auto s = informer->snapshot();
        return pod_at(s, "10.0.0.9") == "shop/new-1" && verdict(s, "shop/web-1", "shop/db-1", 5432) == "denied" &&
               !s->find_pod("shop", "x") && informer->stats().deleted_pods == 1;
    })) << srv.stats();
    const auto st = informer->stats();
    EXPECT_GE(stats_of(st, "pods").relists, 1u);
    EXPECT_NE(srv.stats().find("\"gone\":"), std::string::npos);
    // The deleted pod, seen only as missing from the relist, is still in its grace period.
    EXPECT_EQ(pod_at(informer->snapshot(), "10.0.1.1"), "other/x");
}

TEST(K8sInformer, GoneAsErrorEventRelistsWithNoLostUpdate) {
    gone_recovery(false);
}
TEST(K8sInformer, GoneAsHttpStatusRelistsWithNoLostUpdate) {
    gone_recovery(true);
}

TEST(K8sInformer, BookmarksKeepStalenessLow) {
    FakeApiServer srv;  // bookmarks every 0.2 s
    apply_shop(srv);
    auto informer = start_informer(srv);
    ASSERT_TRUE(informer->wait_synced(10s));
    ASSERT_TRUE(eventually([&] { return stats_of(informer->stats(), "nodes").bookmarks >= 2; }));
    const auto st = stats_of(informer->stats(), "nodes");
    ASSERT_TRUE(st.staleness);
    EXPECT_LT(*st.staleness, 1s);
    EXPECT_FALSE(st.resource_version.empty());
}

TEST(K8sInformer, BadObjectsAreCountedAndSkipped) {
    FakeApiServer srv;
    apply_shop(srv);
    srv.apply(pod_json("shop", "broken-list", "10.0.0.300"));
    auto informer = start_informer(srv);
    auto s = informer->wait_synced(10s);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_EQ(stats_of(informer->stats(), "pods").decode_errors, 1u);
    srv.apply(pod_json("shop", "broken-watch", "not-an-ip"));
    srv.apply(pod_json("shop", "fine", "10.0.0.50"));
    ASSERT_TRUE(eventually([&] { return pod_at(informer->snapshot(), "10.0.0.50") == "shop/fine"; }));
    EXPECT_EQ(stats_of(informer->stats(), "pods").decode_errors, 2u);
    EXPECT_EQ(informer->snapshot()->pods().size(), 4u);
}

TEST(K8sInformer, StopIsPrompt) {
    FakeApiServer srv;
    apply_shop(srv);
    auto informer = start_informer(srv);
    ASSERT_TRUE(informer->wait_synced(10s));
    std::this_thread::sleep_for(100ms);  // every reflector is now inside a watch
    const auto start = std::chrono::steady_clock::now();
    informer->stop();
    // The open watches last up to 30 s (watch_timeout): stopping must cancel them, not wait them out.
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
    informer.reset();
}

}  // namespace
}  // namespace npt::k8s

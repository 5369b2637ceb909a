// Decoding list pages and watch events, and the informer store: deleted pods kept for a grace period, a live
// pod winning an IP a deleted one held, relists counting missing objects as deleted.
#include <gtest/gtest.h>

#include <string>

#include "k8s/api_decode.hpp"
#include "k8s/object_store.hpp"
#include "state/cluster_state.hpp"

namespace npt::k8s {
namespace {

using Clock = ObjectStore::Clock;
using namespace std::chrono_literals;

PodInfo pod(std::string ns, std::string name, std::string ip, LabelMap labels = {}) {
    PodInfo p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.ips.push_back(*IpAddr::parse(ip));
    p.labels = std::move(labels);
    p.phase = "Running";
    return p;
}

std::string pod_at(const ClusterState& s, std::string_view ip) {
    auto idx = s.pod_by_ip(*IpAddr::parse(ip));
    return idx ? std::string(s.pod_id(*idx)) : "";
}

TEST(ApiDecode, WatchEvents) {
    ApiDecoder d;
    auto added = d.decode_watch_event(Resource::Pods, R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1",
        "metadata":{"name":"web-1","namespace":"shop","resourceVersion":"42","labels":{"app":"web"}},
        "status":{"podIP":"10.0.0.5"}}})");
    ASSERT_TRUE(added) << added.error().message;
    EXPECT_EQ(added->type, WatchEventType::Added);
    EXPECT_EQ(added->resource_version, "42");
    ASSERT_TRUE(added->object);
    const auto& p = std::get<PodInfo>(*added->object);
    EXPECT_EQ(p.ns, "shop");
    EXPECT_EQ(p.ips.at(0).str(), "10.0.0.5");

    auto bookmark = d.decode_watch_event(
        Resource::NetworkPolicies,
        R"({"type":"BOOKMARK","object":{"kind":"NetworkPolicy","metadata":{"resourceVersion":"77"}}})");
    ASSERT_TRUE(bookmark);
    EXPECT_EQ(bookmark->type, WatchEventType::Bookmark);
    EXPECT_EQ(bookmark->resource_version, "77");

    auto gone = d.decode_watch_event(Resource::Pods, R"j({"type":"ERROR","object":{"kind":"Status","code":410,
        "reason":"Expired","message":"too old resource version: 5 (9)"}})j");
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->type, WatchEventType::Error);
    EXPECT_EQ(gone->status_code, 410);
    EXPECT_EQ(gone->status_message, "too old resource version: 5 (9)");

    // An object our decoder refuses still names itself, so a DELETED can be applied and the rest skipped.
    auto bad = d.decode_watch_event(Resource::Pods, R"({"type":"MODIFIED","object":{"metadata":{"name":"x",
        "namespace":"shop","resourceVersion":"43"},"status":{"podIP":"10.0.0.300"}}})");
    ASSERT_TRUE(bad);
    EXPECT_FALSE(bad->object);
    EXPECT_EQ(bad->name, "x");
    EXPECT_EQ(bad->resource_version, "43");
    EXPECT_EQ(bad->decode_error, "Pod shop/x: status.podIP: invalid IP address \"10.0.0.300\"");

    EXPECT_FALSE(d.decode_watch_event(Resource::Pods, "{not json"));
    EXPECT_FALSE(d.decode_watch_event(Resource::Pods, R"({"type":"SIDEWAYS","object":{}})"));
}

TEST(ApiDecode, ListPages) {
    ApiDecoder d;
    auto page = d.decode_list(Resource::Namespaces, R"({"kind":"NamespaceList","apiVersion":"v1",
        "metadata":{"resourceVersion":"100","continue":"abc"},
        "items":[{"metadata":{"name":"a","labels":{"team":"x"}}},{"metadata":{"name":"B_A_D"}}]})");
    ASSERT_TRUE(page) << page.error().message;
    EXPECT_EQ(page->resource_version, "100");
    EXPECT_EQ(page->continue_token, "abc");
    ASSERT_EQ(page->items.size(), 1u);
    ASSERT_EQ(page->errors.size(), 1u);
    EXPECT_NE(page->errors[0].find("metadata.name"), std::string::npos);

    auto empty = d.decode_list(Resource::Pods, R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":null})");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->items.empty());
    EXPECT_FALSE(d.decode_list(Resource::Pods, R"({"kind":"Status","code":500})"));
}

TEST(ObjectStore, DeletedPodStaysResolvableButALivePodWinsItsIp) {
    ObjectStore store(30s);
    const auto t0 = Clock::now();
    store.upsert(pod("shop", "old", "10.0.0.7"));
    store.remove(Resource::Pods, "shop/old", std::nullopt, t0);
    EXPECT_EQ(store.size(Resource::Pods), 0u);
    EXPECT_EQ(store.deleted_pods(), 1u);
    {
        auto s = ClusterState::build(store.collect());
        EXPECT_EQ(pod_at(*s, "10.0.0.7"), "shop/old");
    }
    store.upsert(pod("shop", "new", "10.0.0.7"));
    auto s = ClusterState::build(store.collect());
    EXPECT_EQ(pod_at(*s, "10.0.0.7"), "shop/new");
    EXPECT_TRUE(s->find_pod("shop", "old"));  // still known by name during the grace period
}

TEST(ObjectStore, GraceEndsAndRecreatedNamesAreLive) {
    ObjectStore store(1s);
    const auto t0 = Clock::now();
    store.upsert(pod("db", "pg-0", "10.0.1.1"));
    store.remove(Resource::Pods, "db/pg-0", ApiObject(pod("db", "pg-0", "10.0.1.1")), t0);
    ASSERT_EQ(store.next_expiry(), t0 + 1s);
    EXPECT_FALSE(store.expire(t0 + 500ms));
    EXPECT_TRUE(store.expire(t0 + 1s));
    EXPECT_EQ(store.deleted_pods(), 0u);

    // A StatefulSet pod deleted and recreated under the same name: only the live one remains.
    store.upsert(pod("db", "pg-1", "10.0.1.2"));
    store.remove(Resource::Pods, "db/pg-1", std::nullopt, t0);
    store.upsert(pod("db", "pg-1", "10.0.1.3"));
    EXPECT_EQ(store.deleted_pods(), 0u);
    auto s = ClusterState::build(store.collect());
    EXPECT_EQ(pod_at(*s, "10.0.1.3"), "db/pg-1");
    EXPECT_EQ(pod_at(*s, "10.0.1.2"), "");
}

TEST(ObjectStore, RelistCountsMissingPodsAsDeleted) {
    ObjectStore store(30s);
    store.upsert(pod("a", "stays", "10.1.0.1"));
    store.upsert(pod("a", "goes", "10.1.0.2"));
    const uint64_t before = store.generation();
    std::vector<ApiObject> fresh;
    fresh.emplace_back(pod("a", "stays", "10.1.0.1", {{"v", "2"}}));
    fresh.emplace_back(pod("a", "arrives", "10.1.0.3"));
    store.replace(Resource::Pods, std::move(fresh), Clock::now());
    EXPECT_NE(store.generation(), before);
    EXPECT_EQ(store.size(Resource::Pods), 2u);
    EXPECT_EQ(store.deleted_pods(), 1u);
    auto s = ClusterState::build(store.collect());
    EXPECT_EQ(pod_at(*s, "10.1.0.2"), "a/goes");
    EXPECT_EQ(pod_at(*s, "10.1.0.3"), "a/arrives");
}

TEST(ObjectStore, NoGracePeriodForgetsAtOnce) {
    ObjectStore store(0ms);
    store.upsert(pod("a", "p", "10.2.0.1"));
    store.remove(Resource::Pods, "a/p", std::nullopt, Clock::now());
    EXPECT_EQ(store.deleted_pods(), 0u);
}

TEST(ObjectStore, OtherResources) {
    ObjectStore store(30s);
    NetworkPolicy np;
    np.ns = "shop";
    np.name = "deny";
    store.upsert(np);
    NamespaceInfo ns{"shop", {{"team", "x"}}};
    store.upsert(ns);
    EXPECT_EQ(store.size(Resource::NetworkPolicies), 1u);
    auto objs = store.collect();
    EXPECT_EQ(objs.policies.size(), 1u);
    EXPECT_EQ(objs.namespaces.size(), 1u);
    store.remove(Resource::NetworkPolicies, "shop/deny", std::nullopt, Clock::now());
    EXPECT_EQ(store.collect().policies.size(), 0u);
}

}  // namespace
}  // namespace npt::k8s

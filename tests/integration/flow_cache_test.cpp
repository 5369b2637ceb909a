// The per-CPU flow cache as userspace reads it, over pages built in memory (no root, no BPF): the drops a slot
// still holds back are added to the flows map's value of the same flow, slots of a flow the map lost count only
// in the current generation, and the times of a slot are converted from ticks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "flow_cache.hpp"

namespace npt::capture {
namespace {

FlowKey key(uint16_t dport) {
    FlowKey k{};
    k.family = NPT_AF_INET;
    k.protocol = 17;
    k.dport = dport;
    k.reason = 14;
    k.netns_inum = 4026532000u;
    k.location = 0xffffffff81f81cee;
    const uint8_t src[4] = {10, 201, 1, 2};
    const uint8_t dst[4] = {10, 201, 2, 2};
    std::memcpy(k.saddr, src, 4);
    std::memcpy(k.daddr, dst, 4);
    return k;
}

class FlowCacheTest : public ::testing::Test {
  protected:
    static constexpr uint32_t kCpus = 2;
    static constexpr uint64_t kNsPerTick = 4'000'000;  // HZ 250

    void SetUp() override {
        pages_ = std::make_unique<npt_flow_cache_page[]>(kCpus * NPT_FLOW_CACHE_PAGES);
        std::memset(pages_.get(), 0, sizeof(npt_flow_cache_page) * kCpus * NPT_FLOW_CACHE_PAGES);
        view_.attach(pages_.get(), kCpus);
        view_.set_ns_per_tick(kNsPerTick);
        npt_hot_settings hs{};
        hs.generation = 7;
        view_.set_settings(hs);
    }

    // A slot of `cpu` holding `pending` drops of `k`, claimed at base_ns, the last drop `ticks` ticks later.
    npt_flow_cache_slot& hold(uint32_t cpu, const FlowKey& k, uint64_t pending, uint64_t base_ns, uint64_t ticks,
                              uint32_t generation, int way = 0) {
        const uint32_t set = npt_flow_cache_set_of(&k);
        npt_flow_cache_page& page = pages_[cpu * NPT_FLOW_CACHE_PAGES + set / NPT_FLOW_CACHE_SETS_PER_PAGE];
        npt_flow_cache_slot& s = page.sets[set % NPT_FLOW_CACHE_SETS_PER_PAGE].ways[way];
        s.key = k;
        s.generation = generation;
        s.valid = 1;
        s.pending = pending;
        s.base_ns = base_ns;
        s.base_tick = 1000;
        s.last_tick = 1000 + ticks;
        return s;
    }

    std::unique_ptr<npt_flow_cache_page[]> pages_;
    FlowCacheView view_;
};

TEST_F(FlowCacheTest, SettingsReachEveryPageOfEveryCpu) {
    for (uint32_t i = 0; i < kCpus * NPT_FLOW_CACHE_PAGES; ++i) {
        EXPECT_EQ(pages_[i].settings.generation, 7u) << "page " << i;
    }
    view_.bump_generation();
    EXPECT_EQ(view_.generation(), 8u);
    for (uint32_t i = 0; i < kCpus * NPT_FLOW_CACHE_PAGES; ++i) {
        EXPECT_EQ(pages_[i].settings.generation, 8u) << "page " << i;
    }
}

TEST_F(FlowCacheTest, MapValuePlusTheSlotsOfEveryCpu) {
    const FlowKey k = key(9999);
    npt_flow_value in_map{};
    in_map.count = 5;
    in_map.first_ns = 1'000'000'000;
    in_map.last_ns = 2'000'000'000;
    in_map.last_sport = 40001;
    in_map.tcp_flags = 0x02;
    hold(0, k, 3, 3'000'000'000, 10, 7).last_sport = 40002;
    hold(1, k, 2, 2'500'000'000, 0, 7).tcp_flags = 0x10;

    const auto v = view_.value_of(k, in_map);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->count, 10u);
    EXPECT_EQ(v->first_ns, 1'000'000'000u);  // the map's: it saw the flow first
    EXPECT_EQ(v->last_ns, 3'000'000'000u + 10 * kNsPerTick);
    EXPECT_EQ(v->last_sport, 40002);  // of the latest drop
    EXPECT_EQ(v->tcp_flags, 0x12);    // OR over map and slots
}

TEST_F(FlowCacheTest, SlotsOfAnotherFlowInTheSameSetDoNotCount) {
    const FlowKey k = key(9999);
    FlowKey other = k;
    other.dport = 1;  // a different flow, placed by hand in k's set
    hold(0, other, 4, 1, 0, 7, 1);
    npt_flow_value in_map{};
    in_map.count = 5;
    EXPECT_EQ(view_.value_of(k, in_map)->count, 5u);
}

TEST_F(FlowCacheTest, SlotOnlyFlowCountsInTheCurrentGenerationOnly) {
    const FlowKey k = key(9998);
    hold(0, k, 3, 5'000, 0, 7);
    auto v = view_.value_of(k, std::nullopt);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->count, 3u);
    EXPECT_EQ(v->first_ns, 5'000u);

    view_.bump_generation();  // the flow was purged: its slot must not bring it back
    EXPECT_FALSE(view_.value_of(k, std::nullopt).has_value());

    npt_flow_value in_map{};
    in_map.count = 1;  // a flow the map still has keeps an older slot's drops
    EXPECT_EQ(view_.value_of(k, in_map)->count, 4u);
}

TEST_F(FlowCacheTest, EmptyOrUnusedSlotsAreNotHeld) {
    const FlowKey k = key(9997);
    hold(0, k, 0, 1, 0, 7);            // nothing pending
    hold(1, k, 2, 1, 0, 7).valid = 0;  // never claimed
    EXPECT_TRUE(view_.held(npt_flow_cache_set_of(&k)).empty());
    EXPECT_FALSE(view_.value_of(k, std::nullopt).has_value());
}

TEST_F(FlowCacheTest, MergeAddsSlotsToMapFlowsAndKeepsFlowsOnlySlotsHold) {
    const FlowKey a = key(1001), b = key(1002), c = key(1003), d = key(1004);
    npt_flow_value va{}, vb{};
    va.count = 10;
    vb.count = 20;
    hold(0, a, 1, 1, 0, 7);
    hold(1, a, 2, 1, 0, 7);
    hold(0, c, 3, 1, 0, 7);  // evicted from the map while a slot held drops
    hold(1, d, 4, 1, 0, 6);  // a purged flow's stale slot
    auto merged = view_.merge({{a, va}, {b, vb}});

    const auto count_of = [&](const FlowKey& k) -> std::optional<uint64_t> {
        auto it = std::find_if(merged.begin(), merged.end(), [&](const auto& f) { return f.first == k; });
        if (it == merged.end()) {
            return std::nullopt;
        }
        return it->second.count;
    };
    EXPECT_EQ(merged.size(), 3u);
    EXPECT_EQ(count_of(a), 13u);
    EXPECT_EQ(count_of(b), 20u);
    EXPECT_EQ(count_of(c), 3u);
    EXPECT_FALSE(count_of(d).has_value());
}

TEST_F(FlowCacheTest, TicksAreNanosecondsWhenHzIsUnknown) {
    view_.set_ns_per_tick(0);
    const FlowKey k = key(1005);
    hold(0, k, 1, 1'000, 250, 7);
    EXPECT_EQ(view_.value_of(k, std::nullopt)->last_ns, 1'250u);
}

}  // namespace
}  // namespace npt::capture

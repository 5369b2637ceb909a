// The per-CPU flow cache (include/netpol_trace/drop_event.h: npt_flow_cache_page) as userspace sees it, and how
// the drops its slots still hold back are added to the flows map's counts. The program keeps a known flow's drops
// in a slot of its CPU and folds them into the map later, so every count userspace reports is "map value + the
// matching slots". The merge is plain code over pages in memory: the tests build pages by hand, the capture maps
// the BPF array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "drop_event.hpp"
#include "netpol_trace/drop_event.h"

namespace npt::capture {

class FlowCacheView {
  public:
    FlowCacheView() = default;
    FlowCacheView(const FlowCacheView&) = delete;
    FlowCacheView& operator=(const FlowCacheView&) = delete;
    ~FlowCacheView() { unmap(); }

    // The BPF_F_MMAPABLE array `fd` of NPT_FLOW_CACHE_PAGES pages per possible CPU, mapped shared.
    Result<bool> map(int fd, uint32_t cpus);
    // Pages the caller owns (tests): `pages` holds cpus * NPT_FLOW_CACHE_PAGES elements and outlives the view.
    void attach(npt_flow_cache_page* pages, uint32_t cpus);

    uint32_t cpus() const { return cpus_; }
    uint32_t generation() const { return generation_; }
    // Nanoseconds per tick of the slots' times; 0: the slots count in nanoseconds (HZ unknown).
    void set_ns_per_tick(uint64_t ns) { ns_per_tick_ = ns; }

    // Before attach: the program reads nothing else for a drop.
    void set_settings(const npt_hot_settings& hs);
    // After purging flows: every slot of an older generation stops counting for new drops.
    void bump_generation();

    // The slots of set `index` (< NPT_FLOW_CACHE_SETS), its ways on every CPU, that hold drops back. Each set
    // is copied once: the program may be updating it. A slot of an older generation still counts for a flow
    // the map has (the program folds it into flows still present and drops it for purged ones).
    std::vector<npt_flow_cache_slot> held(uint32_t index) const;
    // Adds the drops one slot holds back to a flow's map value (read without stopping the programs: a slot
    // being flushed at that instant can be missed or counted twice for that read).
    void add_pending(const npt_flow_cache_slot& slot, npt_flow_value& value) const;

    // One flow's value: the map's (nullopt when the map has no entry) plus its slots; nullopt when neither
    // holds the flow. A slot of a flow the map lost counts only in the current generation.
    std::optional<npt_flow_value> value_of(const FlowKey& key, std::optional<npt_flow_value> in_map) const;
    // Every flow: the map's entries plus their slots, then the flows only slots hold (evicted from the map
    // while a slot held drops: the program puts them back). A vector, not a map keyed by flow: at 65,536 flows
    // the tail and the agent read it every second.
    std::vector<std::pair<FlowKey, npt_flow_value>> merge(std::vector<std::pair<FlowKey, npt_flow_value>> flows) const;

  private:
    npt_flow_cache_set read(uint32_t cpu, uint32_t index) const;
    void unmap();

    npt_flow_cache_page* pages_ = nullptr;
    size_t mapped_len_ = 0;  // 0: not mapped by this view
    uint32_t cpus_ = 0;
    uint32_t generation_ = 0;
    uint64_t ns_per_tick_ = 0;
};

}  // namespace npt::capture

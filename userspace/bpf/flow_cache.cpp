#include "flow_cache.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

namespace npt::capture {

Result<bool> FlowCacheView::map(int fd, uint32_t cpus) {
    unmap();
    const size_t bytes = sizeof(npt_flow_cache_page) * NPT_FLOW_CACHE_PAGES * cpus;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return Error{std::string("cannot map the flow cache: ") + std::strerror(errno)};
    }
    pages_ = static_cast<npt_flow_cache_page*>(p);
    mapped_len_ = bytes;
    cpus_ = cpus;
    return true;
}

void FlowCacheView::attach(npt_flow_cache_page* pages, uint32_t cpus) {
    unmap();
    pages_ = pages;
    cpus_ = cpus;
}

void FlowCacheView::unmap() {
    if (pages_ && mapped_len_) {
        munmap(pages_, mapped_len_);
    }
    pages_ = nullptr;
    mapped_len_ = 0;
    cpus_ = 0;
}

void FlowCacheView::set_settings(const npt_hot_settings& hs) {
    generation_ = hs.generation;
    for (size_t i = 0; i < size_t(cpus_) * NPT_FLOW_CACHE_PAGES; ++i) {
        pages_[i].settings = hs;
    }
}

void FlowCacheView::bump_generation() {
    ++generation_;
    for (size_t i = 0; i < size_t(cpus_) * NPT_FLOW_CACHE_PAGES; ++i) {
        __atomic_store_n(&pages_[i].settings.generation, generation_, __ATOMIC_SEQ_CST);
    }
}

npt_flow_cache_set FlowCacheView::read(uint32_t cpu, uint32_t index) const {
    const npt_flow_cache_page& page = pages_[size_t(cpu) * NPT_FLOW_CACHE_PAGES + index / NPT_FLOW_CACHE_SETS_PER_PAGE];
    npt_flow_cache_set set;
    std::memcpy(&set, &page.sets[index % NPT_FLOW_CACHE_SETS_PER_PAGE], sizeof(set));
    return set;
}

std::vector<npt_flow_cache_slot> FlowCacheView::held(uint32_t index) const {
    std::vector<npt_flow_cache_slot> slots;
    for (uint32_t cpu = 0; cpu < cpus_; ++cpu) {
        const npt_flow_cache_set set = read(cpu, index);
        for (const auto& c : set.ways) {
            if (c.valid && c.pending != 0) {
                slots.push_back(c);
            }
        }
    }
    return slots;
}

void FlowCacheView::add_pending(const npt_flow_cache_slot& c, npt_flow_value& v) const {
    const uint64_t last_ns = c.base_ns + (c.last_tick - c.base_tick) * (ns_per_tick_ ? ns_per_tick_ : 1);
    if (v.count == 0) {
        v.first_ns = c.base_ns;
    }
    v.count += c.pending;
    if (last_ns >= v.last_ns) {
        v.last_ns = last_ns;
        v.last_sport = c.last_sport;
        v.icmp_type = c.icmp_type;
        v.icmp_code = c.icmp_code;
    }
    v.tcp_flags |= c.tcp_flags;
}

std::optional<npt_flow_value> FlowCacheView::value_of(const FlowKey& key, std::optional<npt_flow_value> in_map) const {
    npt_flow_value v = in_map.value_or(npt_flow_value{});
    bool in_slot = false;
    for (const auto& c : held(npt_flow_cache_set_of(&key))) {
        if (c.key == key && (in_map || c.generation == generation_)) {
            add_pending(c, v);
            in_slot = true;
        }
    }
    if (!in_map && !in_slot) {
        return std::nullopt;
    }
    return v;
}

std::vector<std::pair<FlowKey, npt_flow_value>> FlowCacheView::merge(
    std::vector<std::pair<FlowKey, npt_flow_value>> flows) const {
    // At most NPT_FLOW_CACHE_SETS * ways slots per CPU hold drops: index those, not the flows.
    std::unordered_map<FlowKey, std::vector<npt_flow_cache_slot>, FlowKeyHash> slots_of;
    for (uint32_t i = 0; i < NPT_FLOW_CACHE_SETS; ++i) {
        for (const auto& c : held(i)) {
            slots_of[c.key].push_back(c);
        }
    }
    if (slots_of.empty()) {
        return flows;
    }
    for (auto& [k, v] : flows) {
        auto it = slots_of.find(k);
        if (it == slots_of.end()) {
            continue;
        }
        for (const auto& c : it->second) {
            add_pending(c, v);
        }
        slots_of.erase(it);
    }
    for (const auto& [k, slots] : slots_of) {
        npt_flow_value v{};
        bool any = false;
        for (const auto& c : slots) {
            if (c.generation == generation_) {
                add_pending(c, v);
                any = true;
            }
        }
        if (any) {
            flows.emplace_back(k, v);
        }
    }
    return flows;
}

}  // namespace npt::capture

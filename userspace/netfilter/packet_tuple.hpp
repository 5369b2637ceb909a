// The 5-tuple of a packet as netfilter hands it to userspace (trace messages, NFLOG records), and a
// short-lived table of such records keyed by it, which the tail joins to the kernel's drop events.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <unordered_map>

#include "common/ip_addr.hpp"

namespace npt::netfilter {

struct PacketTuple {
    IpAddr src;
    IpAddr dst;
    uint8_t protocol = 0;  // IPPROTO_*
    uint16_t sport = 0;    // TCP/UDP/SCTP/UDP-Lite; 0 for other protocols
    uint16_t dport = 0;

    friend bool operator==(const PacketTuple&, const PacketTuple&) = default;
};

struct PacketTupleHash {
    size_t operator()(const PacketTuple& t) const noexcept;
};

// Parses an IPv4 or IPv6 header and the transport header behind it. `transport`, when not empty, is the
// transport header given separately (nftables trace messages carry the two apart); otherwise it is read
// from `network` after the IP header (NFLOG payloads). IPv6 extension headers are followed (hop-by-hop,
// routing, destination options, fragment: a non-first fragment has no ports). Null when the bytes are not
// an IP packet. Never reads outside the spans.
std::optional<PacketTuple> parse_packet(std::span<const uint8_t> network, std::span<const uint8_t> transport = {});

// Monotonic nanoseconds (CLOCK_MONOTONIC, the kernel's bpf_ktime_get_ns clock).
uint64_t monotonic_ns();

// Records of recent packets by tuple, for joining: the newest `per_tuple` records of each tuple, none older
// than `max_age_ns`, at most `max_tuples` tuples (the oldest forgotten first).
template <typename Record>
class RecentPackets {
public:
    RecentPackets(uint64_t max_age_ns, size_t max_tuples, size_t per_tuple = 4)
        : max_age_ns_(max_age_ns), max_tuples_(max_tuples), per_tuple_(per_tuple == 0 ? 1 : per_tuple) {}

    void add(const PacketTuple& tuple, uint64_t at_ns, Record record) {
        auto& q = by_tuple_[tuple];
        q.push_back({at_ns, std::move(record)});
        if (q.size() > per_tuple_) q.pop_front();
        order_.push_back({at_ns, tuple});
        prune(at_ns);
        // Records dropped by the per-tuple cap leave their entry in order_; a busy tuple would grow it with
        // the packet rate. Rebuild it from the live records once it is clearly larger than they are.
        if (order_.size() > 2 * live_records_bound() + 64) compact();
    }

    // Forgets the records older than `max_age_ns` (add() does this too; call it when no packets arrive).
    void expire(uint64_t now_ns) { prune(now_ns); }

    // The record of `tuple` received closest to `at_ns` within `window_ns` either side.
    const Record* find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns) const {
        auto it = by_tuple_.find(tuple);
        if (it == by_tuple_.end()) return nullptr;
        const Record* best = nullptr;
        uint64_t best_distance = 0;
        for (const auto& e : it->second) {
            const uint64_t d = e.at_ns > at_ns ? e.at_ns - at_ns : at_ns - e.at_ns;
            if (d <= window_ns && (best == nullptr || d <= best_distance)) best = &e.record, best_distance = d;
        }
        return best;
    }

    size_t size() const { return by_tuple_.size(); }

private:
    struct Entry {
        uint64_t at_ns;
        Record record;
    };
    void prune(uint64_t now_ns) {
        while (!order_.empty() && (too_old(order_.front().first, now_ns) || by_tuple_.size() > max_tuples_)) {
            const auto [at, tuple] = order_.front();
            order_.pop_front();
            auto it = by_tuple_.find(tuple);
            if (it == by_tuple_.end()) continue;
            auto& q = it->second;
            while (!q.empty() && q.front().at_ns <= at) q.pop_front();
            if (q.empty()) by_tuple_.erase(it);
        }
    }
    bool too_old(uint64_t at_ns, uint64_t now_ns) const { return now_ns > at_ns && now_ns - at_ns > max_age_ns_; }
    size_t live_records_bound() const { return by_tuple_.size() * per_tuple_; }
    void compact() {
        std::deque<std::pair<uint64_t, PacketTuple>> rebuilt;
        for (const auto& [tuple, q] : by_tuple_) {
            for (const auto& e : q) rebuilt.push_back({e.at_ns, tuple});
        }
        std::stable_sort(rebuilt.begin(), rebuilt.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        order_ = std::move(rebuilt);
    }

    uint64_t max_age_ns_;
    size_t max_tuples_;
    size_t per_tuple_;
    std::unordered_map<PacketTuple, std::deque<Entry>, PacketTupleHash> by_tuple_;
    // One entry per add(), oldest first: what prune() forgets next.
    std::deque<std::pair<uint64_t, PacketTuple>> order_;
};

}  // namespace npt::netfilter

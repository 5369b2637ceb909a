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

// When the kernel sent a record, on the CLOCK_MONOTONIC clock the drop events are stamped with (bpf_ktime_get_ns).
// Netlink messages carry no such time (nftables trace messages none at all; sockets of this family give no receive
// timestamp, measured on 6.18): a reader knows only that a message was sent after its last read that found the
// socket empty and before the read that returned it. A reader that falls behind (a stalled consumer, a slow node)
// widens the span but never moves it away from the drop, as stamping at the time of reading would.
struct SentWithin {
    uint64_t after_ns = 0;
    uint64_t before_ns = 0;

    static SentWithin at(uint64_t ns) { return {ns, ns}; }  // known to the nanosecond (a kernel timestamp)
    // How far `t` lies outside the span (0 inside it).
    uint64_t distance(uint64_t t) const { return t < after_ns ? after_ns - t : t > before_ns ? t - before_ns : 0; }
};

// Records of recent packets by tuple, for joining: the newest `per_tuple` records of each tuple, none older
// than `max_age_ns`, at most `max_tuples` tuples (the oldest forgotten first).
template <typename Record>
class RecentPackets {
  public:
    RecentPackets(uint64_t max_age_ns, size_t max_tuples, size_t per_tuple = 4)
        : max_age_ns_(max_age_ns), max_tuples_(max_tuples), per_tuple_(per_tuple == 0 ? 1 : per_tuple) {}

    void add(const PacketTuple& tuple, SentWithin sent, Record record) {
        auto& q = by_tuple_[tuple];
        q.push_back({sent, std::move(record)});
        if (q.size() > per_tuple_) q.pop_front();
        order_.push_back({sent.before_ns, tuple});
        prune(sent.before_ns);
        // Records dropped by the per-tuple cap leave their entry in order_; a busy tuple would grow it with
        // the packet rate. Rebuild it from the live records once it is clearly larger than they are.
        if (order_.size() > 2 * live_records_bound() + 64) compact();
    }
    void add(const PacketTuple& tuple, uint64_t at_ns, Record record) {
        add(tuple, SentWithin::at(at_ns), std::move(record));
    }

    // Forgets the records older than `max_age_ns` (add() does this too; call it when no packets arrive).
    void expire(uint64_t now_ns) { prune(now_ns); }

    // The record of `tuple` sent closest to `at_ns` (a drop's kernel time), at most `window_ns` outside its span.
    const Record* find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns) const {
        auto it = by_tuple_.find(tuple);
        if (it == by_tuple_.end()) return nullptr;
        const Record* best = nullptr;
        uint64_t best_distance = 0;
        for (const auto& e : it->second) {
            const uint64_t d = e.sent.distance(at_ns);
            if (d <= window_ns && (best == nullptr || d <= best_distance)) best = &e.record, best_distance = d;
        }
        return best;
    }

    size_t size() const { return by_tuple_.size(); }

  private:
    struct Entry {
        SentWithin sent;
        Record record;
    };
    void prune(uint64_t now_ns) {
        while (!order_.empty() && (too_old(order_.front().first, now_ns) || by_tuple_.size() > max_tuples_)) {
            const auto [at, tuple] = order_.front();
            order_.pop_front();
            auto it = by_tuple_.find(tuple);
            if (it == by_tuple_.end()) continue;
            auto& q = it->second;
            while (!q.empty() && q.front().sent.before_ns <= at) q.pop_front();
            if (q.empty()) by_tuple_.erase(it);
        }
    }
    bool too_old(uint64_t at_ns, uint64_t now_ns) const { return now_ns > at_ns && now_ns - at_ns > max_age_ns_; }
    size_t live_records_bound() const { return by_tuple_.size() * per_tuple_; }
    void compact() {
        std::deque<std::pair<uint64_t, PacketTuple>> rebuilt;
        for (const auto& [tuple, q] : by_tuple_) {
            for (const auto& e : q) rebuilt.push_back({e.sent.before_ns, tuple});
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

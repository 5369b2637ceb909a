// The agent's table of working connections: one entry per (client, server, port, protocol, side), resolved to
// pods, workloads and Services when first seen. Bounded: at most max_entries (the least recently seen go first)
// and none older than max_age; what was evicted is counted.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <vector>

#include "flows/connection.hpp"

namespace npt {

struct ConnectionKey {
    IpAddr src;
    IpAddr dst;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    Side side = Side::Unknown;
    friend bool operator==(const ConnectionKey&, const ConnectionKey&) = default;
    static ConnectionKey of(const Connection& c) { return {c.src.ip, c.dst.ip, c.port, c.protocol, c.side}; }
};

struct ConnectionKeyHash {
    size_t operator()(const ConnectionKey& k) const noexcept;
};

class ConnectionTable {
  public:
    struct Limits {
        size_t max_entries = 50'000;
        std::chrono::seconds max_age = std::chrono::hours(24);
    };
    explicit ConnectionTable(Limits limits);

    // Adds `count` connections of `c`'s key seen from first to last. A new entry is `c` itself, with `init` called
    // on it first (resolution); an existing one grows its count and last_seen. Returns the entry.
    const Connection& add(Connection c, const std::function<void(Connection&)>& init = {});
    // Takes an entry as recorded (a journal's line): replaces the entry of its key.
    void restore(Connection c);

    // Forgets entries last seen before now - max_age. Returns how many.
    size_t expire(TimePoint now);

    size_t size() const { return entries_.size(); }
    uint64_t evicted() const { return evicted_; }  // for room (max_entries)
    uint64_t expired() const { return expired_; }  // for age
    const Limits& limits() const { return limits_; }

    // The entries the filter selects, most recently seen first.
    std::vector<Connection> select(const ConnectionFilter& filter) const;
    // Every entry, least recently seen first (the journal's snapshot).
    std::vector<Connection> all() const;
    // Entries added to or changed since the last call.
    std::vector<Connection> take_changed();

  private:
    using List = std::list<Connection>;  // most recently seen at the front
    void touch(List::iterator it);
    void evict_to(size_t n);

    Limits limits_;
    List entries_;
    std::unordered_map<ConnectionKey, List::iterator, ConnectionKeyHash> index_;
    std::unordered_map<ConnectionKey, bool, ConnectionKeyHash> changed_;
    uint64_t evicted_ = 0;
    uint64_t expired_ = 0;
};

}  // namespace npt

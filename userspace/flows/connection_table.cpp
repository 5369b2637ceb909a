#include "flows/connection_table.hpp"

namespace npt {

size_t ConnectionKeyHash::operator()(const ConnectionKey& k) const noexcept {
    const IpAddrHash h;
    size_t v = h(k.src) * 31 + h(k.dst);
    v = v * 31 + k.port;
    v = v * 31 + static_cast<size_t>(k.protocol);
    return v * 31 + static_cast<size_t>(k.side);
}

ConnectionTable::ConnectionTable(Limits limits) : limits_(limits) {}

void ConnectionTable::touch(List::iterator it) {
    entries_.splice(entries_.begin(), entries_, it);
}

void ConnectionTable::evict_to(size_t n) {
    while (entries_.size() > n) {
        const auto key = ConnectionKey::of(entries_.back());
        index_.erase(key);
        changed_.erase(key);
        entries_.pop_back();
        ++evicted_;
    }
}

const Connection& ConnectionTable::add(Connection c, const std::function<void(Connection&)>& init) {
    const auto key = ConnectionKey::of(c);
    if (auto it = index_.find(key); it != index_.end()) {
        Connection& e = *it->second;
        e.count += c.count;
        if (c.last_seen && (!e.last_seen || *c.last_seen > *e.last_seen)) e.last_seen = c.last_seen;
        if (c.first_seen && (!e.first_seen || *c.first_seen < *e.first_seen)) e.first_seen = c.first_seen;
        // Resolution failed when first seen (the pod was not in the state yet): try again.
        if (init && ((!e.src.pod && !e.dst.pod) || (!e.dst.pod && !e.service))) init(e);
        touch(it->second);
        changed_[key] = true;
        return e;
    }
    if (init) init(c);
    entries_.push_front(std::move(c));
    index_[key] = entries_.begin();
    changed_[key] = true;
    evict_to(limits_.max_entries);
    return entries_.front();
}

void ConnectionTable::restore(Connection c) {
    const auto key = ConnectionKey::of(c);
    if (auto it = index_.find(key); it != index_.end()) {
        *it->second = std::move(c);
        touch(it->second);
    } else {
        entries_.push_front(std::move(c));
        index_[key] = entries_.begin();
        evict_to(limits_.max_entries);
    }
}

size_t ConnectionTable::expire(TimePoint now) {
    const TimePoint cutoff = now - limits_.max_age;
    size_t n = 0;
    // Least recently seen at the back.
    while (!entries_.empty() && entries_.back().last_seen && *entries_.back().last_seen < cutoff) {
        const auto key = ConnectionKey::of(entries_.back());
        index_.erase(key);
        changed_.erase(key);
        entries_.pop_back();
        ++n;
    }
    expired_ += n;
    return n;
}

std::vector<Connection> ConnectionTable::select(const ConnectionFilter& filter) const {
    std::vector<Connection> out;
    for (const auto& c : entries_)
        if (filter.matches(c)) out.push_back(c);
    return out;
}

std::vector<Connection> ConnectionTable::all() const {
    return {entries_.rbegin(), entries_.rend()};
}

std::vector<Connection> ConnectionTable::take_changed() {
    std::vector<Connection> out;
    out.reserve(changed_.size());
    for (const auto& [key, _] : changed_)
        if (auto it = index_.find(key); it != index_.end()) out.push_back(*it->second);
    changed_.clear();
    return out;
}

}  // namespace npt

// Fan-out of drop lines to the /events streams. The capture loop publishes without ever waiting for a
// client: each subscriber has a bounded queue, and one that falls behind (its queue full) is cut off and
// counted, so a slow or stuck client can cost only its own stream, never the capture.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "live/pod_scope.hpp"
#include "output/drop_record.hpp"

namespace npt::agent {

// What a stream asked for: pods (namespace=, pod=) and kernel drop reasons (reason=).
struct EventFilter {
    live::PodScope scope;
    std::vector<std::string> reasons;  // upper-case names without SKB_DROP_REASON_; empty = all
    bool fix = false;                  // fix=1: drop lines carry their verified fixes

    bool matches(const DropRecord& record) const;
};

class Subscriber {
  public:
    Subscriber(EventFilter filter, size_t max_queued) : filter_(std::move(filter)), max_queued_(max_queued) {}

    // Waits up to `timeout` for lines; returns them (possibly none). Empty with closed() true: the
    // stream is over (cut off as too slow, or the agent is stopping).
    std::vector<std::string> take(std::chrono::milliseconds timeout);
    bool closed() const;
    bool cut_off() const;

  private:
    friend class EventHub;
    // Called by the hub with its lock held; returns false when the subscriber was cut off now.
    bool offer(const std::string& line);
    void close();

    const EventFilter filter_;
    const size_t max_queued_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> queue_;
    bool closed_ = false;
    bool cut_off_ = false;
};

class EventHub {
  public:
    explicit EventHub(size_t max_subscribers, size_t max_queued = 4096)
        : max_subscribers_(max_subscribers), max_queued_(max_queued) {}

    // Null when max_subscribers streams are open already.
    std::shared_ptr<Subscriber> subscribe(EventFilter filter);
    void unsubscribe(const std::shared_ptr<Subscriber>& s);

    // Sends a drop (serialized once, as one NDJSON line) to every matching stream; streams that asked for fixes
    // get `fix_line` instead when there is one.
    void publish(const DropRecord& record, const std::string& line, const std::string* fix_line = nullptr);
    // Whether a stream matching the record asked for fixes (worth computing them).
    bool wants_fixes(const DropRecord& record) const;

    // Ends every stream (the agent stops).
    void close_all();

    size_t subscribers() const;
    uint64_t cut_off() const;    // streams ended because they fell behind
    uint64_t published() const;  // lines queued to streams

  private:
    const size_t max_subscribers_;
    const size_t max_queued_;
    mutable std::mutex mu_;
    std::vector<std::shared_ptr<Subscriber>> subs_;
    uint64_t cut_off_ = 0;
    uint64_t published_ = 0;
    bool closed_ = false;
};

// A reason as given by a user ("netfilter_drop", "SKB_DROP_REASON_NETFILTER_DROP") in the form
// events carry ("NETFILTER_DROP").
std::string normalize_reason(std::string_view reason);

}  // namespace npt::agent

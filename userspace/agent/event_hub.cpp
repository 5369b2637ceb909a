#include "agent/event_hub.hpp"

#include <algorithm>
#include <cctype>

namespace npt::agent {

std::string normalize_reason(std::string_view reason) {
    std::string out(reason);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
    constexpr std::string_view kPrefix = "SKB_DROP_REASON_";
    if (out.rfind(kPrefix, 0) == 0) out.erase(0, kPrefix.size());
    return out;
}

bool EventFilter::matches(const DropRecord& r) const {
    if (!reasons.empty() && std::find(reasons.begin(), reasons.end(), r.reason) == reasons.end()) return false;
    return scope.flow_in_scope(r.explanation);
}

std::vector<std::string> Subscriber::take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || closed_; });
    std::vector<std::string> out;
    if (cut_off_) return out;  // a stream that fell behind ends without its backlog
    out.reserve(queue_.size());
    for (auto& line : queue_) out.push_back(std::move(line));
    queue_.clear();
    return out;
}

bool Subscriber::closed() const {
    std::lock_guard lock(mu_);
    return closed_ && queue_.empty();
}

bool Subscriber::cut_off() const {
    std::lock_guard lock(mu_);
    return cut_off_;
}

bool Subscriber::offer(const std::string& line) {
    std::lock_guard lock(mu_);
    if (closed_) return true;
    if (queue_.size() >= max_queued_) {
        closed_ = cut_off_ = true;
        queue_.clear();
        cv_.notify_all();
        return false;
    }
    queue_.push_back(line);
    cv_.notify_all();
    return true;
}

void Subscriber::close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
}

std::shared_ptr<Subscriber> EventHub::subscribe(EventFilter filter) {
    std::lock_guard lock(mu_);
    if (closed_ || subs_.size() >= max_subscribers_) return nullptr;
    subs_.push_back(std::make_shared<Subscriber>(std::move(filter), max_queued_));
    return subs_.back();
}

void EventHub::unsubscribe(const std::shared_ptr<Subscriber>& s) {
    std::lock_guard lock(mu_);
    std::erase(subs_, s);
}

bool EventHub::wants_fixes(const DropRecord& record) const {
    std::lock_guard lock(mu_);
    return std::any_of(subs_.begin(), subs_.end(),
                       [&](const auto& s) { return s->filter_.fix && s->filter_.matches(record); });
}

void EventHub::publish(const DropRecord& record, const std::string& line, const std::string* fix_line) {
    std::lock_guard lock(mu_);
    for (auto it = subs_.begin(); it != subs_.end();) {
        auto& s = *it;
        if (!s->filter_.matches(record)) {
            ++it;
            continue;
        }
        if (s->offer(s->filter_.fix && fix_line ? *fix_line : line)) {
            ++published_;
            ++it;
        } else {
            ++cut_off_;
            it = subs_.erase(it);
        }
    }
}

void EventHub::close_all() {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto& s : subs_) s->close();
    subs_.clear();
}

size_t EventHub::subscribers() const {
    std::lock_guard lock(mu_);
    return subs_.size();
}

uint64_t EventHub::cut_off() const {
    std::lock_guard lock(mu_);
    return cut_off_;
}

uint64_t EventHub::published() const {
    std::lock_guard lock(mu_);
    return published_;
}

}  // namespace npt::agent

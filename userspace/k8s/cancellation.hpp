// Stops in-flight requests and backoff sleeps from another thread: cancel() wakes every transfer waiting
// on the network (curl_multi_wakeup) and every sleeper at once, so stop() returns promptly.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace npt::k8s {

class Cancellation {
  public:
    Cancellation() = default;
    Cancellation(const Cancellation&) = delete;
    Cancellation& operator=(const Cancellation&) = delete;

    void cancel();
    bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
    // Sleeps unless cancelled; returns false when cancelled (before or during the sleep).
    bool sleep_for(std::chrono::milliseconds d) const;

    // For the HTTP client: a libcurl multi handle to wake on cancel().
    void attach(void* multi) const;
    void detach(void* multi) const;

  private:
    std::atomic<bool> cancelled_{false};
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    mutable std::vector<void*> multis_;
};

}  // namespace npt::k8s

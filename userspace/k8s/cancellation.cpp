#include "k8s/cancellation.hpp"

#include <curl/curl.h>

#include <algorithm>

namespace npt::k8s {

void Cancellation::cancel() {
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
    for (void* m : multis_) curl_multi_wakeup(static_cast<CURLM*>(m));
    cv_.notify_all();
}

bool Cancellation::sleep_for(std::chrono::milliseconds d) const {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return cancelled(); });
}

void Cancellation::attach(void* multi) const {
    std::lock_guard lock(mu_);
    multis_.push_back(multi);
    if (cancelled()) curl_multi_wakeup(static_cast<CURLM*>(multi));
}

void Cancellation::detach(void* multi) const {
    std::lock_guard lock(mu_);
    multis_.erase(std::remove(multis_.begin(), multis_.end(), multi), multis_.end());
}

}  // namespace npt::k8s

// One resource's list+watch loop, as client-go's reflector runs it: list, then watch from the list's
// resourceVersion with bookmarks; after a disconnect, watch again from the last resourceVersion seen, with
// exponential backoff and jitter; after 410 Gone (the HTTP status or an ERROR event), list again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <string_view>

#include "k8s/api_client.hpp"
#include "k8s/api_decode.hpp"
#include "k8s/api_resources.hpp"
#include "k8s/cancellation.hpp"
#include "k8s/object_store.hpp"

namespace npt::k8s {

struct ReflectorOptions {
    uint32_t page_size = 500;
    std::chrono::seconds watch_timeout{300};  // server-side timeoutSeconds, randomized within [t, 2t)
    std::chrono::milliseconds backoff_initial{800};
    std::chrono::milliseconds backoff_max{30000};
    std::function<void(std::string_view)> log;  // warnings; may be empty
};

// What other threads may read about a reflector.
struct ReflectorStatus {
    std::atomic<bool> synced{false};  // the first list completed
    std::atomic<uint64_t> events{0}, bookmarks{0}, lists{0}, relists{0}, reconnects{0}, decode_errors{0};
    std::atomic<int64_t> last_activity_ns{0};  // steady_clock of the last list, event or bookmark; 0: never

    mutable std::mutex mu;
    std::string resource_version;
    std::string last_error;             // the latest failure, cleared by the next success
    bool last_error_permanent = false;  // retrying will not fix it (401, 403, TLS verification, ...)
};

class Reflector {
  public:
    Reflector(Resource r, ApiClient& client, ObjectStore& store, const ReflectorOptions& options,
              const Cancellation& cancel, std::function<void()> on_change, std::function<void()> on_status);

    void run();  // until the cancellation fires

    // One line of a watch stream, applied to the store. Returns false when the watch must end (an ERROR
    // event; after 410 the next round lists again). Public for the benchmarks.
    bool handle_watch_line(std::string_view line);

    Resource resource() const { return resource_; }
    const ReflectorStatus& status() const { return status_; }

  private:
    enum class WatchEnd { Clean, Gone, Failed, Cancelled };

    bool list();
    WatchEnd watch();
    void touch();
    void fail(const Error& e, bool permanent);
    void succeed();
    void backoff();
    void log(const std::string& msg) const;

    const Resource resource_;
    ApiClient& client_;
    ObjectStore& store_;
    const ReflectorOptions options_;
    const Cancellation& cancel_;
    std::function<void()> on_change_;
    std::function<void()> on_status_;
    ApiDecoder decoder_;
    ReflectorStatus status_;
    std::string resource_version_;  // the last seen; the reflector thread's own copy
    bool alt_ = false;              // the resource is served at its alternative API version
    bool gone_ = false;
    std::string watch_error_;
    std::chrono::milliseconds delay_;
    std::mt19937_64 rng_;
};

}  // namespace npt::k8s

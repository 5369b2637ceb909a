// Live cluster state from the Kubernetes API: a list+watch reflector per resource (pods, namespaces,
// networkpolicies, services, endpointslices, nodes) feeding one store, and ClusterState snapshots rebuilt
// from it in the background, at most every `min_rebuild_interval` (a rebuild of 100k pods takes ~0.3 s, so
// bursts of events coalesce). Callers take the latest snapshot; it is immutable and stays valid for as long
// as they hold it.
//
// Threads (one per resource, one builder) belong to the informer: stop() or the destructor cancels the
// requests in flight and joins them.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "k8s/api_client.hpp"
#include "k8s/cancellation.hpp"
#include "k8s/object_store.hpp"
#include "k8s/reflector.hpp"
#include "state/cluster_state.hpp"

namespace npt::k8s {

struct InformerOptions {
    std::chrono::milliseconds min_rebuild_interval{1000};
    std::chrono::milliseconds deleted_pod_grace{30000};  // deleted pods stay resolvable this long (0: not at all)
    std::chrono::seconds watch_timeout{300};
    std::chrono::milliseconds backoff_initial{800};
    std::chrono::milliseconds backoff_max{30000};
    uint32_t page_size = 500;
    // wait_synced() returns at once when a first list fails in a way retrying will not fix (401, 403,
    // certificate verification); otherwise it waits for its timeout while the reflectors retry.
    bool fail_fast = true;
    std::function<void(std::string_view message)> log;  // warnings (reconnects, relists, skipped objects)
};

struct ResourceStats {
    std::string resource;  // "pods"
    bool synced = false;   // its first list completed
    size_t objects = 0;
    uint64_t events = 0, bookmarks = 0, lists = 0, relists = 0, reconnects = 0, decode_errors = 0;
    // Time since the last list, event or bookmark: how stale this resource may be. Absent before the first.
    std::optional<std::chrono::steady_clock::duration> staleness;
    std::string resource_version;
    std::string last_error;
};

struct InformerStats {
    bool synced = false;
    std::vector<ResourceStats> resources;  // in kAllResources order
    uint64_t snapshots = 0;                // snapshots built
    std::chrono::steady_clock::duration last_build{};
    size_t deleted_pods = 0;  // in their grace period
};

class ClusterInformer {
  public:
    explicit ClusterInformer(std::shared_ptr<ApiClient> client, InformerOptions options = {});
    ~ClusterInformer();
    ClusterInformer(const ClusterInformer&) = delete;
    ClusterInformer& operator=(const ClusterInformer&) = delete;

    void start();
    void stop();  // idempotent; also done by the destructor

    // Whether the first list of every resource has completed.
    bool synced() const;
    // Waits until synced and the first snapshot is built, and returns it. Errors: the first list failed for
    // good (with fail_fast), the timeout passed (the error names the resources still missing and their
    // latest failure), or stop().
    Result<std::shared_ptr<const ClusterState>> wait_synced(std::chrono::milliseconds timeout);

    // The error of a first list that failed in a way retrying will not fix (401, 403, certificate
    // verification), if any resource has one.
    std::optional<std::string> permanent_failure() const;

    // The latest snapshot (nullptr before the first sync). Cheap: no rebuild.
    std::shared_ptr<const ClusterState> snapshot() const;
    // A snapshot of everything received so far, rebuilt now if anything changed (ignores the interval).
    std::shared_ptr<const ClusterState> snapshot_now();

    InformerStats stats() const;

    // For benchmarks: the reflector of a resource (valid after start()).
    Reflector* reflector(Resource r);

  private:
    void notify_change();
    void notify_status();
    bool all_synced() const;
    void build_loop();
    void rebuild();

    std::shared_ptr<ApiClient> client_;
    const InformerOptions options_;
    Cancellation cancel_;
    ObjectStore store_;
    std::vector<std::unique_ptr<Reflector>> reflectors_;
    std::vector<std::thread> threads_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<bool> dirty_{false};
    bool started_ = false;
    bool stopping_ = false;
    std::shared_ptr<const ClusterState> snapshot_;
    uint64_t built_generation_ = 0;
    uint64_t snapshots_ = 0;
    std::chrono::steady_clock::time_point last_build_start_{};
    std::chrono::steady_clock::duration last_build_{};
    std::mutex build_mu_;  // one rebuild at a time (the builder thread or snapshot_now)
};

}  // namespace npt::k8s

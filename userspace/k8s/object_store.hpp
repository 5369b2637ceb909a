// The informers' store: the trimmed objects of every resource keyed by "ns/name", plus recently deleted
// pods kept for a grace period so that drops of terminating pods are still attributed. Thread-safe; the
// reflectors write, the snapshot builder copies out.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "k8s/api_decode.hpp"
#include "k8s/api_resources.hpp"
#include "state/objects.hpp"

namespace npt::k8s {

class ObjectStore {
  public:
    using Clock = std::chrono::steady_clock;

    explicit ObjectStore(std::chrono::milliseconds deleted_pod_grace);

    void upsert(ApiObject obj);
    // A DELETED event. `last_state` is the object as deleted (when it decoded); otherwise the stored copy is
    // what a deleted pod is remembered as.
    void remove(Resource r, const std::string& key, std::optional<ApiObject> last_state, Clock::time_point now);
    // A (re)list: the resource's objects become exactly these; the ones missing count as deleted.
    void replace(Resource r, std::vector<ApiObject> objects, Clock::time_point now);
    // Forgets deleted pods whose grace period ended; returns whether any was forgotten.
    bool expire(Clock::time_point now);
    std::optional<Clock::time_point> next_expiry() const;

    // Changes with every change of the contents.
    uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

    // A copy of everything for ClusterState::build. Pods in their grace period come first, oldest deletion
    // first, then the live pods: build() gives an IP to the later pod, so a live pod that reuses the IP of a
    // deleted one wins. A deleted pod whose name is live again (a StatefulSet pod recreated) is left out.
    ClusterObjects collect() const;

    size_t size(Resource r) const;
    size_t deleted_pods() const;

  private:
    struct DeletedPod {
        std::shared_ptr<const PodInfo> pod;
        Clock::time_point deleted_at;
    };
    // Objects are immutable once stored and shared, so collect() holds the lock only to copy pointers; the
    // deep copy ClusterState::build needs happens outside it, without stalling the reflectors.
    template <typename T>
    using Map = std::unordered_map<std::string, std::shared_ptr<const T>>;

    void bury(std::shared_ptr<const PodInfo> pod, const std::string& key, Clock::time_point now);
    void bump() { generation_.fetch_add(1, std::memory_order_acq_rel); }

    const std::chrono::milliseconds grace_;
    mutable std::mutex mu_;
    std::atomic<uint64_t> generation_{0};
    Map<NamespaceInfo> namespaces_;
    Map<PodInfo> pods_;
    Map<NetworkPolicy> policies_;
    Map<ServiceInfo> services_;
    Map<EndpointSliceInfo> slices_;
    Map<NodeInfo> nodes_;
    // Per resource: ClusterNetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies.
    std::array<Map<ClusterNetworkPolicy>, 3> cluster_policies_;
    std::unordered_map<std::string, DeletedPod> deleted_pods_;

    static size_t cluster_slot(Resource r);  // index into cluster_policies_
};

}  // namespace npt::k8s

#include "k8s/object_store.hpp"

#include <algorithm>
#include <type_traits>

namespace npt::k8s {

namespace {

template <typename T>
using Shared = std::shared_ptr<const T>;

// Pointers to the values, in key order (deterministic snapshots); taken under the store's lock.
template <typename T>
std::vector<Shared<T>> sorted_refs(const std::unordered_map<std::string, Shared<T>>& m) {
    std::vector<const std::pair<const std::string, Shared<T>>*> entries;
    entries.reserve(m.size());
    for (const auto& e : m) entries.push_back(&e);
    std::sort(entries.begin(), entries.end(), [](auto* a, auto* b) { return a->first < b->first; });
    std::vector<Shared<T>> out;
    out.reserve(entries.size());
    for (auto* e : entries) out.push_back(e->second);
    return out;
}

template <typename T>
std::vector<T> deep_copy(const std::vector<Shared<T>>& refs) {
    std::vector<T> out;
    out.reserve(refs.size());
    for (const auto& r : refs) out.push_back(*r);
    return out;
}

}  // namespace

ObjectStore::ObjectStore(std::chrono::milliseconds deleted_pod_grace) : grace_(deleted_pod_grace) {}

size_t ObjectStore::cluster_slot(Resource r) {
    switch (r) {
        case Resource::AdminNetworkPolicies:
            return static_cast<size_t>(ClusterPolicyKind::AdminNetworkPolicy);
        case Resource::BaselineAdminNetworkPolicies:
            return static_cast<size_t>(ClusterPolicyKind::BaselineAdminNetworkPolicy);
        default:
            return static_cast<size_t>(ClusterPolicyKind::ClusterNetworkPolicy);
    }
}

void ObjectStore::bury(std::shared_ptr<const PodInfo> pod, const std::string& key, Clock::time_point now) {
    if (grace_.count() <= 0 || !pod) return;
    deleted_pods_.insert_or_assign(key, DeletedPod{std::move(pod), now});
}

void ObjectStore::upsert(ApiObject obj) {
    std::string key = object_key(obj);
    std::visit(
        [&](auto&& o) {
            using T = std::decay_t<decltype(o)>;
            auto value = std::make_shared<const T>(std::move(o));
            std::lock_guard lock(mu_);
            if constexpr (std::is_same_v<T, NamespaceInfo>) {
                namespaces_.insert_or_assign(std::move(key), std::move(value));
            } else if constexpr (std::is_same_v<T, PodInfo>) {
                deleted_pods_.erase(key);
                pods_.insert_or_assign(std::move(key), std::move(value));
            } else if constexpr (std::is_same_v<T, NetworkPolicy>) {
                policies_.insert_or_assign(std::move(key), std::move(value));
            } else if constexpr (std::is_same_v<T, ServiceInfo>) {
                services_.insert_or_assign(std::move(key), std::move(value));
            } else if constexpr (std::is_same_v<T, EndpointSliceInfo>) {
                slices_.insert_or_assign(std::move(key), std::move(value));
            } else if constexpr (std::is_same_v<T, ClusterNetworkPolicy>) {
                cluster_policies_[static_cast<size_t>(value->kind)].insert_or_assign(std::move(key), std::move(value));
            } else {
                nodes_.insert_or_assign(std::move(key), std::move(value));
            }
        },
        std::move(obj));
    bump();
}

void ObjectStore::remove(Resource r, const std::string& key, std::optional<ApiObject> last_state,
                         Clock::time_point now) {
    std::shared_ptr<const PodInfo> last_pod;
    if (last_state && std::holds_alternative<PodInfo>(*last_state)) {
        last_pod = std::make_shared<const PodInfo>(std::get<PodInfo>(std::move(*last_state)));
    }
    std::lock_guard lock(mu_);
    switch (r) {
        case Resource::Namespaces:
            namespaces_.erase(key);
            break;
        case Resource::Pods: {
            auto it = pods_.find(key);
            if (last_pod) {
                bury(std::move(last_pod), key, now);
            } else if (it != pods_.end()) {
                bury(it->second, key, now);
            }
            if (it != pods_.end()) pods_.erase(it);
            break;
        }
        case Resource::NetworkPolicies:
            policies_.erase(key);
            break;
        case Resource::Services:
            services_.erase(key);
            break;
        case Resource::EndpointSlices:
            slices_.erase(key);
            break;
        case Resource::Nodes:
            nodes_.erase(key);
            break;
        case Resource::ClusterNetworkPolicies:
        case Resource::AdminNetworkPolicies:
        case Resource::BaselineAdminNetworkPolicies:
            cluster_policies_[cluster_slot(r)].erase(key);
            break;
    }
    bump();
}

void ObjectStore::replace(Resource r, std::vector<ApiObject> objects, Clock::time_point now) {
    // Built before taking the lock: a relist of 100k pods must not stall the other reflectors.
    auto fill = [&](auto* tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        Map<T> fresh;
        fresh.reserve(objects.size());
        for (auto& o : objects) {
            if (auto* v = std::get_if<T>(&o)) {
                std::string key = object_key(o);
                fresh.insert_or_assign(std::move(key), std::make_shared<const T>(std::move(*v)));
            }
        }
        return fresh;
    };
    switch (r) {
        case Resource::Namespaces: {
            auto fresh = fill(static_cast<NamespaceInfo*>(nullptr));
            std::lock_guard lock(mu_);
            namespaces_.swap(fresh);
            break;
        }
        case Resource::Pods: {
            auto fresh = fill(static_cast<PodInfo*>(nullptr));
            std::lock_guard lock(mu_);
            for (auto& [key, pod] : pods_) {
                if (!fresh.contains(key)) bury(pod, key, now);  // deleted while we were not watching
            }
            for (const auto& [key, _] : fresh) deleted_pods_.erase(key);
            pods_.swap(fresh);
            break;
        }
        case Resource::NetworkPolicies: {
            auto fresh = fill(static_cast<NetworkPolicy*>(nullptr));
            std::lock_guard lock(mu_);
            policies_.swap(fresh);
            break;
        }
        case Resource::Services: {
            auto fresh = fill(static_cast<ServiceInfo*>(nullptr));
            std::lock_guard lock(mu_);
            services_.swap(fresh);
            break;
        }
        case Resource::EndpointSlices: {
            auto fresh = fill(static_cast<EndpointSliceInfo*>(nullptr));
            std::lock_guard lock(mu_);
            slices_.swap(fresh);
            break;
        }
        case Resource::Nodes: {
            auto fresh = fill(static_cast<NodeInfo*>(nullptr));
            std::lock_guard lock(mu_);
            nodes_.swap(fresh);
            break;
        }
        case Resource::ClusterNetworkPolicies:
        case Resource::AdminNetworkPolicies:
        case Resource::BaselineAdminNetworkPolicies: {
            auto fresh = fill(static_cast<ClusterNetworkPolicy*>(nullptr));
            std::lock_guard lock(mu_);
            cluster_policies_[cluster_slot(r)].swap(fresh);
            break;
        }
    }
    bump();
}

bool ObjectStore::expire(Clock::time_point now) {
    std::lock_guard lock(mu_);
    const size_t before = deleted_pods_.size();
    std::erase_if(deleted_pods_, [&](const auto& e) { return e.second.deleted_at + grace_ <= now; });
    if (deleted_pods_.size() == before) return false;
    bump();
    return true;
}

std::optional<ObjectStore::Clock::time_point> ObjectStore::next_expiry() const {
    std::lock_guard lock(mu_);
    std::optional<Clock::time_point> next;
    for (const auto& [_, d] : deleted_pods_) {
        const auto t = d.deleted_at + grace_;
        if (!next || t < *next) next = t;
    }
    return next;
}

ClusterObjects ObjectStore::collect() const {
    std::vector<Shared<PodInfo>> pods;
    std::vector<Shared<NamespaceInfo>> namespaces;
    std::vector<Shared<NetworkPolicy>> policies;
    std::vector<Shared<ServiceInfo>> services;
    std::vector<Shared<EndpointSliceInfo>> slices;
    std::vector<Shared<NodeInfo>> nodes;
    std::vector<Shared<ClusterNetworkPolicy>> cluster_policies;
    {
        std::lock_guard lock(mu_);
        std::vector<const DeletedPod*> deleted;
        deleted.reserve(deleted_pods_.size());
        for (const auto& [key, d] : deleted_pods_) {
            if (!pods_.contains(key)) deleted.push_back(&d);
        }
        std::sort(deleted.begin(), deleted.end(), [](auto* a, auto* b) { return a->deleted_at < b->deleted_at; });
        pods.reserve(deleted.size() + pods_.size());
        for (const auto* d : deleted) pods.push_back(d->pod);
        for (const auto& [_, p] : pods_) pods.push_back(p);
        namespaces = sorted_refs(namespaces_);
        policies = sorted_refs(policies_);
        services = sorted_refs(services_);
        slices = sorted_refs(slices_);
        nodes = sorted_refs(nodes_);
        for (const auto& m : cluster_policies_) {
            auto refs = sorted_refs(m);
            cluster_policies.insert(cluster_policies.end(), refs.begin(), refs.end());
        }
    }
    ClusterObjects out;
    out.pods = deep_copy(pods);
    out.namespaces = deep_copy(namespaces);
    out.policies = deep_copy(policies);
    out.services = deep_copy(services);
    out.endpoint_slices = deep_copy(slices);
    out.nodes = deep_copy(nodes);
    out.cluster_policies = deep_copy(cluster_policies);
    return out;
}

size_t ObjectStore::size(Resource r) const {
    std::lock_guard lock(mu_);
    switch (r) {
        case Resource::Namespaces:
            return namespaces_.size();
        case Resource::Pods:
            return pods_.size();
        case Resource::NetworkPolicies:
            return policies_.size();
        case Resource::Services:
            return services_.size();
        case Resource::EndpointSlices:
            return slices_.size();
        case Resource::Nodes:
            return nodes_.size();
        case Resource::ClusterNetworkPolicies:
        case Resource::AdminNetworkPolicies:
        case Resource::BaselineAdminNetworkPolicies:
            return cluster_policies_[cluster_slot(r)].size();
    }
    return 0;
}

size_t ObjectStore::deleted_pods() const {
    std::lock_guard lock(mu_);
    return deleted_pods_.size();
}

}  // namespace npt::k8s

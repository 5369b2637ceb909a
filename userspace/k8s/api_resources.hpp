// The API resources netpol-trace reads, and the list and watch requests for them.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "state/k8s_decode.hpp"

namespace npt::k8s {

enum class Resource : uint8_t {
    Namespaces,
    Pods,
    NetworkPolicies,
    Services,
    EndpointSlices,
    Nodes,
    ClusterNetworkPolicies,  // CRDs of sig-network's policy API: absent on most clusters
    AdminNetworkPolicies,
    BaselineAdminNetworkPolicies,
};

inline constexpr std::array<Resource, 9> kAllResources = {Resource::Namespaces,
                                                          Resource::Pods,
                                                          Resource::NetworkPolicies,
                                                          Resource::Services,
                                                          Resource::EndpointSlices,
                                                          Resource::Nodes,
                                                          Resource::ClusterNetworkPolicies,
                                                          Resource::AdminNetworkPolicies,
                                                          Resource::BaselineAdminNetworkPolicies};

struct ResourceInfo {
    Resource resource;
    std::string_view name;        // "networkpolicies"
    std::string_view group;       // "networking.k8s.io"; empty for core
    std::string_view collection;  // "/apis/networking.k8s.io/v1/networkpolicies" (all namespaces)
    ObjectKind kind;
    bool namespaced;
    // Another API version to list when the cluster does not serve `collection` (404), or empty.
    std::string_view alt_collection = {};
    // A CRD: when no version is served (404), the cluster has none of these objects. Listed again now and
    // then, so a CRD installed later is picked up.
    bool optional = false;
};

const ResourceInfo& resource_info(Resource r);
inline size_t resource_index(Resource r) {
    return static_cast<size_t>(r);
}

// "/api/v1/pods?limit=500&continue=..." (empty continue_token: the first page). `alt`: the alternative
// version's collection.
std::string list_path(Resource r, uint32_t limit, std::string_view continue_token, bool alt = false);
// "/api/v1/pods?watch=1&resourceVersion=...&allowWatchBookmarks=true&timeoutSeconds=..."
std::string watch_path(Resource r, std::string_view resource_version, std::chrono::seconds timeout, bool alt = false);

// "list pods at the cluster scope", for 403/404 messages.
std::string list_action(Resource r);
// "needs get, list and watch on networkpolicies.networking.k8s.io"
std::string rbac_remedy(Resource r);

// Query-string escaping of a continue token or resourceVersion.
std::string url_escape(std::string_view s);

}  // namespace npt::k8s

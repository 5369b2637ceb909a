#include "k8s/api_resources.hpp"

#include <fmt/format.h>

namespace npt::k8s {

namespace {

constexpr std::array<ResourceInfo, 9> kInfo = {{
    {Resource::Namespaces, "namespaces", "", "/api/v1/namespaces", ObjectKind::Namespace, false},
    {Resource::Pods, "pods", "", "/api/v1/pods", ObjectKind::Pod, true},
    {Resource::NetworkPolicies, "networkpolicies", "networking.k8s.io", "/apis/networking.k8s.io/v1/networkpolicies",
     ObjectKind::NetworkPolicy, true},
    {Resource::Services, "services", "", "/api/v1/services", ObjectKind::Service, true},
    {Resource::EndpointSlices, "endpointslices", "discovery.k8s.io", "/apis/discovery.k8s.io/v1/endpointslices",
     ObjectKind::EndpointSlice, true},
    {Resource::Nodes, "nodes", "", "/api/v1/nodes", ObjectKind::Node, false},
    // v1beta1 where the cluster serves it, else v1alpha2: the same shape.
    {Resource::ClusterNetworkPolicies, "clusternetworkpolicies", "policy.networking.k8s.io",
     "/apis/policy.networking.k8s.io/v1beta1/clusternetworkpolicies", ObjectKind::ClusterNetworkPolicy, false,
     "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", true},
    {Resource::AdminNetworkPolicies,
     "adminnetworkpolicies",
     "policy.networking.k8s.io",
     "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
     ObjectKind::AdminNetworkPolicy,
     false,
     {},
     true},
    {Resource::BaselineAdminNetworkPolicies,
     "baselineadminnetworkpolicies",
     "policy.networking.k8s.io",
     "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
     ObjectKind::BaselineAdminNetworkPolicy,
     false,
     {},
     true},
}};

std::string_view collection_of(Resource r, bool alt) {
    const auto& info = kInfo[resource_index(r)];
    return alt && !info.alt_collection.empty() ? info.alt_collection : info.collection;
}

}  // namespace

const ResourceInfo& resource_info(Resource r) {
    return kInfo[resource_index(r)];
}

std::string url_escape(std::string_view s) {
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '~') {
            out += ch;
        } else {
            out += fmt::format("%{:02X}", c);
        }
    }
    return out;
}

std::string list_path(Resource r, uint32_t limit, std::string_view continue_token, bool alt) {
    std::string p = fmt::format("{}?limit={}", collection_of(r, alt), limit);
    if (!continue_token.empty()) p += "&continue=" + url_escape(continue_token);
    return p;
}

std::string watch_path(Resource r, std::string_view resource_version, std::chrono::seconds timeout, bool alt) {
    return fmt::format("{}?watch=1&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds={}",
                       collection_of(r, alt), url_escape(resource_version), timeout.count());
}

std::string list_action(Resource r) {
    const auto& info = resource_info(r);
    return fmt::format("list {} at the cluster scope", info.name);
}

std::string rbac_remedy(Resource r) {
    const auto& info = resource_info(r);
    if (info.group.empty()) return fmt::format("needs get, list and watch on {}", info.name);
    return fmt::format("needs get, list and watch on {}.{}", info.name, info.group);
}

}  // namespace npt::k8s

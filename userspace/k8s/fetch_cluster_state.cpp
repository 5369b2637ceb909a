#include "k8s/fetch_cluster_state.hpp"

#include <fmt/format.h>

#include <type_traits>

#include "k8s/list_resource.hpp"

namespace npt::k8s {

Result<ClusterObjects> fetch_cluster_objects(ApiClient& client, uint32_t page_size,
                                             std::vector<std::string>* warnings) {
    ClusterObjects out;
    ApiDecoder decoder;
    for (Resource r : kAllResources) {
        ListOutcome list = list_resource(client, r, page_size, decoder);
        if (!list.ok) {
            if (r == Resource::EndpointSlices && list.failure.status == 404) {
                if (warnings) warnings->push_back(list.error.message + " (continuing without EndpointSlices)");
                continue;
            }
            if (resource_info(r).optional && list.failure.status == 404) continue;  // no such CRD: none

            return list.error;
        }
        if (warnings) {
            for (auto& e : list.decode_errors) {
                warnings->push_back(
                    fmt::format("{}: skipped an object that does not decode: {}", client.config().describe(), e));
            }
        }
        for (auto& item : list.items) {
            std::visit(
                [&](auto&& o) {
                    using T = std::decay_t<decltype(o)>;
                    if constexpr (std::is_same_v<T, NamespaceInfo>) {
                        out.namespaces.push_back(std::move(o));
                    } else if constexpr (std::is_same_v<T, PodInfo>) {
                        out.pods.push_back(std::move(o));
                    } else if constexpr (std::is_same_v<T, NetworkPolicy>) {
                        out.policies.push_back(std::move(o));
                    } else if constexpr (std::is_same_v<T, ServiceInfo>) {
                        out.services.push_back(std::move(o));
                    } else if constexpr (std::is_same_v<T, EndpointSliceInfo>) {
                        out.endpoint_slices.push_back(std::move(o));
                    } else if constexpr (std::is_same_v<T, ClusterNetworkPolicy>) {
                        out.cluster_policies.push_back(std::move(o));
                    } else {
                        out.nodes.push_back(std::move(o));
                    }
                },
                std::move(item));
        }
    }
    return out;
}

Result<std::shared_ptr<const ClusterState>> fetch_cluster_state(const ClientOptions& options,
                                                                std::vector<std::string>* warnings,
                                                                const FetchOptions& fetch) {
    auto config = load_client_config(options);
    if (!config) return config.error();
    ApiClient client(std::move(*config), fetch.client);
    auto objects = fetch_cluster_objects(client, fetch.page_size, warnings);
    if (!objects) return objects.error();
    return ClusterState::build(std::move(*objects));
}

}  // namespace npt::k8s

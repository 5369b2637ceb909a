// One list of every resource, no watch: the cluster state for a one-shot command (`explain`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "k8s/api_client.hpp"
#include "k8s/client_config.hpp"
#include "state/cluster_state.hpp"
#include "state/objects.hpp"

namespace npt::k8s {

struct FetchOptions {
    uint32_t page_size = 500;
    ApiClientOptions client;
};

// Objects that did not decode are skipped and described in `warnings` (one line each), not fatal: the API
// server already accepted them. A cluster without discovery.k8s.io/v1 EndpointSlices (older than 1.21) is
// read without them, with a warning.
Result<ClusterObjects> fetch_cluster_objects(ApiClient& client, uint32_t page_size = 500,
                                             std::vector<std::string>* warnings = nullptr);

Result<std::shared_ptr<const ClusterState>> fetch_cluster_state(const ClientOptions& options,
                                                                std::vector<std::string>* warnings = nullptr,
                                                                const FetchOptions& fetch = {});

}  // namespace npt::k8s

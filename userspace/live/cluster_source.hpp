// Where a command's cluster state comes from: --state files when given (offline), else the
// Kubernetes API through the kubeconfig (or the in-cluster service account).
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "k8s/api_client.hpp"
#include "state/cluster_state.hpp"

namespace npt::live {

// One snapshot: files, or one list of every resource from the API server. Warnings (objects the
// API server accepted but the decoders reject) go to `err`.
Result<std::shared_ptr<const ClusterState>> load_cluster_state(const std::vector<std::string>& state_files,
                                                               const std::string& kubeconfig,
                                                               const std::string& context, std::ostream& err);

// A client of the API server of --kubeconfig/--context (default: $KUBECONFIG, ~/.kube/config, or the
// in-cluster service account), for commands that watch or stream. Error: the configuration is unusable.
Result<std::shared_ptr<k8s::ApiClient>> connect_api(const std::string& kubeconfig, const std::string& context);

}  // namespace npt::live

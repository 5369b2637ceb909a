// Where a command's cluster state comes from: --state files when given (offline), else the
// Kubernetes API through the kubeconfig (or the in-cluster service account).
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "state/cluster_state.hpp"

namespace npt::cli {

// One snapshot: files, or one list of every resource from the API server. Warnings (objects the
// API server accepted but the decoders reject) go to `err`.
Result<std::shared_ptr<const ClusterState>> load_cluster_state(const std::vector<std::string>& state_files,
                                                               const std::string& kubeconfig,
                                                               const std::string& context, std::ostream& err);

}  // namespace npt::cli

#include "live/cluster_source.hpp"

#include <ostream>

#include "k8s/client_config.hpp"
#include "k8s/fetch_cluster_state.hpp"
#include "state/state_loader.hpp"

namespace npt::live {

Result<std::shared_ptr<const ClusterState>> load_cluster_state(const std::vector<std::string>& state_files,
                                                               const std::string& kubeconfig,
                                                               const std::string& context, std::ostream& err) {
    if (!state_files.empty()) {
        auto objects = load_state_files(state_files);
        if (!objects) return objects.error();
        return ClusterState::build(std::move(*objects));
    }
    k8s::ClientOptions opts;
    opts.kubeconfig = kubeconfig;
    opts.context = context;
    std::vector<std::string> warnings;
    auto state = k8s::fetch_cluster_state(opts, &warnings);
    for (const auto& w : warnings) err << "netpol-trace: warning: " << w << '\n';
    if (!state)
        return Error{state.error().message +
                     " (or pass --state FILE with kubectl get namespaces,pods,networkpolicies,services,endpointslices "
                     "-A -o json)"};
    return state;
}

Result<std::shared_ptr<k8s::ApiClient>> connect_api(const std::string& kubeconfig, const std::string& context) {
    k8s::ClientOptions opts;
    opts.kubeconfig = kubeconfig;
    opts.context = context;
    auto config = k8s::load_client_config(opts);
    if (!config) return config.error();
    return std::make_shared<k8s::ApiClient>(std::move(*config));
}

}  // namespace npt::live

// `netpol-trace flows`: the working connections — from every node's agent through the API server's pod proxy (as
// the cluster-wide tail), or recorded on this machine with --local (root) for --duration seconds. `-o json` lines
// are the input of `whatif --flows` and `advise --flows` (the contract is in flows/connection.hpp).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace npt::cli {

struct FlowsOptions {
    std::vector<std::string> namespaces;
    std::string pod;
    std::string since;
    std::string output = "table";
    double duration = 10;  // --local
    bool local = false;
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    bool no_kubernetes = false;
    std::string node;
    size_t max_connections = 50'000;
    std::string agent_namespace = "netpol-trace";
    std::string agent_selector = "app.kubernetes.io/name=netpol-trace,app.kubernetes.io/component=agent";
    int agent_port = 9842;
    std::string ready_file;
    bool debug = false;
};

void register_flows(CLI::App& app, FlowsOptions& opts);

// Exit status: 0, 1 when nothing could be recorded or no agent answered, 2 usage or input error.
int run_flows(const FlowsOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace npt::cli

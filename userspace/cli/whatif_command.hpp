// `netpol-trace whatif`: which observed working connections a policy change breaks (exit 1 when any would), and
// `netpol-trace advise`: least-privilege NetworkPolicies for a namespace from its observed connections.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "cli/agent_client.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace npt::cli {

struct WhatIfOptions {
    std::vector<std::string> apply;   // manifests: files, directories, "-"
    std::vector<std::string> remove;  // KIND/NAMESPACE/NAME (KIND/NAME for cluster-scoped kinds)
    std::string flows;                // observed connections (JSON lines), "-" = stdin; "": the agents' (cluster)
    std::string since;                // only connections seen within this duration
    std::vector<std::string> namespaces;
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    AgentLocator agents;
    std::string output = "text";
};

struct AdviseOptions {
    std::string ns;
    std::string flows;
    std::string since;
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    AgentLocator agents;
    std::string output = "yaml";
};

void register_whatif(CLI::App& app, WhatIfOptions& opts);
void register_advise(CLI::App& app, AdviseOptions& opts);

// Exit status: 0 no observed connection breaks, 1 some would, 2 usage or input error.
int run_whatif(const WhatIfOptions& opts, std::ostream& out, std::ostream& err);
// Exit status: 0 the advice breaks no observed connection, 1 it would (it cannot: a bug), 2 usage or input error.
int run_advise(const AdviseOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace npt::cli

// `netpol-trace agent`: the node agent a DaemonSet runs. It captures this node's drops, attributes them
// with the cluster state it watches, and serves them over HTTP: /metrics (Prometheus), /events (NDJSON
// stream of the tail's drop objects, filterable), /flows (the working connections of the node), /healthz and
// /readyz.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace npt::agent {

struct AgentOptions {
    std::string listen = "0.0.0.0:9842";
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    bool no_kubernetes = false;
    std::string node;
    std::string reasons;
    bool all_reasons = false;
    size_t max_pod_series = 2000;
    size_t max_clients = 16;
    size_t max_flows = 20000;
    double flow_idle = 600;  // seconds
    double quiet_gap = 1.0;
    std::string ready_file;
    bool debug = false;
    // Working connections (/flows).
    bool no_flows = false;
    size_t max_connections = 50'000;
    std::string connection_max_age = "24h";
    std::string flows_journal;
    size_t flows_journal_mib = 64;
};

void register_agent(CLI::App& app, AgentOptions& opts);

// Runs until SIGINT/SIGTERM. Exit status: 0 after a clean stop, 1 when the capture or the HTTP listener
// cannot run, 2 usage or input error (bad flags, kubeconfig, state files, credentials refused).
int run_agent(const AgentOptions& opts, std::ostream& err);

// "HOST:PORT", "[V6]:PORT" or ":PORT" (every address). Port 0 picks a free one.
struct ListenAddress {
    std::string host;
    int port = 0;
};
Result<ListenAddress> parse_listen_address(const std::string& text);

}  // namespace npt::agent

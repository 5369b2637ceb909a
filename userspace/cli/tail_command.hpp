// The live tail (the default command): every packet this node drops for the watched pods, each
// flow once when first seen, with the engine's explanation of why it is (not) allowed.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace npt::cli {

struct TailOptions {
    std::vector<std::string> namespaces;
    std::string pod;
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    bool no_kubernetes = false;  // neither --state nor the API: drops without attribution
    double sync_timeout = 60;
    std::string output = "table";  // table, wide (the table without fitting it to the terminal) or json
    bool wide = false;             // --wide: -o wide
    double duration = 0;           // seconds; 0 = until interrupted
    uint64_t count = 0;            // stop after this many flows; 0 = no limit
    std::string reasons;           // comma-separated kernel drop reason names
    bool all_reasons = false;
    bool debug = false;
    bool fix = false;  // every denied flow's line carries its verified fixes
    std::string node;
    std::string ready_file;
    // Rule attribution beyond fexit: an nftables trace of the watched pods' packets, the CNI's NFLOG records.
    bool rule_trace = false;
    uint32_t rule_trace_rate = 100;  // traced packets per second
    int nflog_group = -1;            // -1: off
    double quiet_gap = 1.0;          // seconds without drops after which a flow's next drop is reported again
    // The cluster-wide tail: agents found by label in a namespace, streamed through the pod proxy.
    bool local = false;  // capture on this machine even when agents run in the cluster
    std::string agent_namespace = "netpol-trace";
    std::string agent_selector = "app.kubernetes.io/name=netpol-trace,app.kubernetes.io/component=agent";
    int agent_port = 9842;
    double agent_refresh = 10;  // seconds between lists of the agents
};

void register_tail(CLI::App& app, TailOptions& opts);

// Exit status: 0 after a clean stop, 1 when the kernel capture cannot run, 2 usage or input error.
int run_tail(const TailOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace npt::cli

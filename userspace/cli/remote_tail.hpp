// The cluster-wide tail: from a laptop, with only a kubeconfig. It finds the netpol-trace agents (the
// DaemonSet's pods, by label), streams each one's /events through the API server's pod proxy, and prints
// the merged drops (every line names its node). Agents that start or go away are followed.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "cli/agent_client.hpp"
#include "live/signal_watch.hpp"
#include "cli/tail_command.hpp"
#include "common/error.hpp"
#include "k8s/api_client.hpp"
#include "k8s/cancellation.hpp"

namespace npt::cli {

inline Result<std::vector<AgentPod>> list_agents(k8s::ApiClient& client, const TailOptions& o,
                                                 const k8s::Cancellation* cancel = nullptr) {
    return list_agents(client, o.agent_namespace, o.agent_selector, cancel);
}

// The /events path of one agent through the pod proxy, with the tail's filters as its query.
std::string agent_events_path(const TailOptions& o, const AgentPod& agent);

// Runs until a signal, --duration or --count. Exit status as run_tail.
int run_remote_tail(const TailOptions& o, std::shared_ptr<k8s::ApiClient> client, std::vector<AgentPod> agents,
                    live::SignalWatch& signals, std::ostream& out, std::ostream& err);

}  // namespace npt::cli

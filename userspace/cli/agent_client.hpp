// The netpol-trace agents of a cluster, seen from a laptop with a kubeconfig: finding them (the DaemonSet's pods, by
// label) and asking each one through the API server's pod proxy. Used by the cluster-wide tail, `flows`, `whatif`
// and `advise`.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "flows/connection.hpp"
#include "k8s/api_client.hpp"
#include "k8s/cancellation.hpp"

namespace npt::cli {

struct AgentLocator {
    std::string ns = "netpol-trace";
    std::string selector = "app.kubernetes.io/name=netpol-trace,app.kubernetes.io/component=agent";
    int port = 9842;
};

struct AgentPod {
    std::string name;
    std::string node;
    friend bool operator==(const AgentPod&, const AgentPod&) = default;
};

// The running agent pods (phase Running, not being deleted), by name. Error: the list failed (403, unreachable).
Result<std::vector<AgentPod>> list_agents(k8s::ApiClient& client, const std::string& ns, const std::string& selector,
                                          const k8s::Cancellation* cancel = nullptr);

// The path of an agent's endpoint (e.g. "flows") through the pod proxy; `query` is "" or starts with '?'.
std::string agent_proxy_path(const AgentLocator& where, const AgentPod& agent, std::string_view endpoint,
                             std::string_view query);

// Every agent's working connections (/flows with `query`), merged. An agent that cannot answer is one line on `err`
// and left out. Error: no agent runs, none answered, or the query was refused (400: its message).
Result<std::vector<Connection>> fetch_agent_connections(k8s::ApiClient& client, const AgentLocator& where,
                                                        const std::string& query, std::ostream& err);

}  // namespace npt::cli

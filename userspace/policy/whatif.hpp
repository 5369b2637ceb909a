// `whatif`: which observed working connections a policy change breaks, and the change's static reach — the
// pre-merge check of a GitOps pipeline. `advise`: least-privilege NetworkPolicies for a namespace from its observed
// connections, verified the same way.
#pragma once

#include <string>
#include <vector>

#include "policy/explanation.hpp"
#include "policy/reach.hpp"
#include "state/cluster_state.hpp"
#include "flows/connection.hpp"

namespace npt {

struct WhatIfBreak {
    const Connection* flow = nullptr;
    std::string before;  // the verdict before the change ("allowed")
    Explanation after;   // the full explanation after it: who now denies, the closest rule and why it misses
};

struct WhatIfReport {
    std::vector<WhatIfBreak> breaks;                        // observed connections the change would deny
    std::vector<const Connection*> newly_allowed_observed;  // observed, denied before and allowed after
    size_t observed = 0;                                    // observed connections evaluated
    Reach reach;                                            // between pods, as --fix measures it
};

// Evaluates every observed connection before and after the change (`after` is before.derive(change)).
WhatIfReport what_if(const ClusterState& before, const ClusterState& after, const StateChange& change,
                     const std::vector<Connection>& observed, size_t max_examples = 5);

struct Advice {
    std::vector<NetworkPolicy> policies;  // per workload an ingress and an egress policy, then a default deny
    WhatIfReport verification;            // what_if of applying them all
    // Generalising from observed pods to their workloads' labels and namespaces widens the reach: the connections
    // between pods (as --fix counts them) the advised policies alone allow for the namespace's pods, and how many
    // of those were observed.
    uint64_t allowed = 0;
    uint64_t observed_pairs = 0;
};

// Least-privilege policies for the pods of `ns` from the observed connections touching them: per workload, an
// ingress policy allowing exactly its observed clients (their namespace by name and workload's stable labels, or
// their address) on the observed ports (named where the pod names them), an egress policy allowing exactly its
// observed destinations (a Service's endpoints and target ports; DNS to the cluster DNS pods), and a default deny
// for the namespace; verified with what_if.
Advice advise(const ClusterState& state, const std::string& ns, const std::vector<Connection>& observed);

}  // namespace npt

// The reach of a change: the connections between pods whose verdict (both directions) differs between a snapshot
// and the snapshot with the change applied. What `--fix` reports as newly_allowed / newly_denied, and what
// `whatif` reports beside the observed connections it breaks.
//
// Connections are ordered pairs of distinct Running, non-hostNetwork pods with an IP, each on its primary address
// (the destination on its address of the source's family), times every (port, protocol) a container port or a
// policy port entry of either snapshot names (a range's port and endPort). Pods are counted by classes: pods with
// the same namespace and labels in both snapshots, the same ports and the same membership in every CIDR a policy
// names get the same verdicts, so one pair of representatives stands for every pair of two classes.
#pragma once

#include <cstdint>
#include <vector>

#include "state/cluster_state.hpp"

namespace npt {

struct ReachExample {
    uint32_t from = 0;  // pod indexes (the same in both snapshots)
    uint32_t to = 0;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    bool allowed_after = false;  // true: newly allowed; false: newly denied
};

struct Reach {
    uint64_t newly_allowed = 0;
    uint64_t newly_denied = 0;
    std::vector<ReachExample> examples;  // at most the asked number, one of each non-zero count at least
};

// The pods whose verdicts the change can move: pairs (source, any pod) and (any pod, destination) are evaluated.
struct ReachScope {
    std::vector<uint32_t> sources;       // their egress may change (or they are relabelled)
    std::vector<uint32_t> destinations;  // their ingress may change (or they are relabelled)
};

// The scope of a change made to `before` (`after` is before.derive(change)).
ReachScope change_scope(const ClusterState& before, const ClusterState& after, const StateChange& change);

Reach measure_reach(const ClusterState& before, const ClusterState& after, const ReachScope& scope,
                    size_t max_examples = 5);

}  // namespace npt

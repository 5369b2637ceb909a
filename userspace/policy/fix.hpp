// The runbook's "Fix" step: for every side of a connection that denies it, the changes that would let it
// through, each verified on the snapshot with that change alone applied and measured by its reach (the
// connections between pods it opens or closes), ranked best first: verified, nothing newly denied, fewest newly
// allowed, smallest edit.
//
// Kinds: `patch` (an edit of the closest rule of an isolating NetworkPolicy: a port, a peer for the remote end as
// it really is, an endPort extended), `policy` (a new NetworkPolicy in the isolated pod's namespace allowing exactly
// this flow), `label` (relabel the remote workload or namespace a selector nearly matches), `dns` (the runbook's
// allow-dns for the source's namespace), `command` (a drop no policy explains: clear the stale connection), `none`
// (a cluster administrator's policy decides: no NetworkPolicy can change it).
#pragma once

#include <vector>

#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"

namespace npt {

struct FixOptions {
    size_t max_examples = 5;
};

// Fills e.fixes (and each Service endpoint's) for every denying side of `e`, an explanation of `state`. A tail
// explanation marked NOT_EXPLAINED_BY_POLICY or UNMODELLED_POLICY gets its `command` or `none` fix.
void add_fixes(const ClusterState& state, Explanation& e, const FixOptions& options = {});

}  // namespace npt

// The human rendering of an Explanation: a verdict line, then each direction with its isolating
// policies, and for a denying side the closest rule of each policy and why it misses; hints last.
#pragma once

#include <ostream>

#include "policy/explanation.hpp"

namespace npt {

void write_explanation_text(std::ostream& out, const Explanation& e);

// "prod/web (10.0.0.5)" or "10.0.0.5"; the short form the tail also uses.
std::string endpoint_label(const EndpointRef& r);

// The cluster policy rule that decided a side: "admin policy deny-db (rule 2 "block-db", priority 10)"; the
// tier's name when no cluster rule decided.
std::string cluster_rule_label(const DecidedBy& d);

// `explain --fix -o yaml`: the best fix of each denying side, as YAML documents for `kubectl apply -f -` (the new
// or the whole patched object); what is not an object to apply (a relabel, a command, a policy only a cluster
// administrator can change) as comment lines.
void write_fixes_yaml(std::ostream& out, const Explanation& e);

}  // namespace npt

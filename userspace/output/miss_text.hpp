// The words for a structured miss (policy/miss.hpp), for a hint about one and for a policy's summary: every
// output (text, JSON, the tail's lines, the agent's events) reads them through these.
#pragma once

#include <string>

#include "policy/explanation.hpp"

namespace npt {

// "podSelector needs app=web; source pod shop/cart-1 has app=wbe (a small edit away)"
void append_miss_message(std::string& out, const Miss& m);
std::string miss_message(const Miss& m);

// A policy's one line for a side: "none of its 2 ingress rules matches; closest is spec.ingress[1]"
void append_summary_message(std::string& out, const PolicyDiagnosis& d);
std::string summary_message(const PolicyDiagnosis& d);

// A note: "ingress: a pod cannot block traffic to itself".
std::string note_message(const Note& n);

// A cluster policy's rule: "rule 2 "block-db", priority 10" (detail), and with its tier and policy: "admin policy
// deny-db (rule 2 "block-db", priority 10)".
void append_rule_detail(std::string& out, const ClusterRuleRef& r);
void append_cluster_rule_text(std::string& out, DecidingTier tier, const ClusterRuleRef& r);

// A hint's message: the words for its miss at its rule ("shop/allow-web spec.ingress[0].from[1]: ..."), for its
// detail, or its own.
void append_hint_message(std::string& out, const Hint& h);
std::string hint_message(const Hint& h);

}  // namespace npt

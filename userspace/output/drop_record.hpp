// A dropped flow as the tail reports it: what the kernel saw (reason, enforcement point, conntrack
// state, counts) joined with the engine's explanation of the flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "output/json_output.hpp"
#include "policy/explanation.hpp"

namespace npt {

struct OriginalDestination {
    IpAddr ip;
    uint16_t port = 0;
    std::optional<std::string> service;  // "ns/name" when the state knows the VIP
};

// The netfilter rule that returned the DROP verdict: the JSON `rule` object. Learnt from fexit on the
// rule evaluators ("fexit"), an nftables trace (--rule-trace: "nftrace") or only an NFLOG record
// (--nflog-group: "nflog", then table and chain are unknown).
struct DropRule {
    std::string table;                   // "" when unknown (JSON null)
    std::string chain;                   // "" when unknown (JSON null)
    std::optional<uint64_t> handle;      // nftables rule handle
    std::optional<std::string> comment;  // the meaningful one of `comments`, chosen per CNI (Calico's text, not
                                         // its "cali:<hash>" id); as given when `comments` is empty
    std::vector<std::string> comments;   // every comment of the rule as read, in rule order (native, then
                                         // iptables-nft's -m comment matches)
    std::optional<std::string> cni;      // "kube-router", "calico": from the chain's naming convention
    std::optional<std::string> cni_version_guess;  // the CNI versions that write these names: "v2.6-v2.10";
                                                   // in the JSON where the naming named no policy
    std::optional<std::string> policy;             // the policy the CNI's naming names: "ns/name", a Calico global
                                                   // policy's name ("default.deny-all"), a cluster policy as the engine
                                                   // names it; policy_kind says which kind
    std::optional<std::string> rule_name;          // the name of the policy's rule (Calico: "name=<rule>" of the policy
                                                   // API's named rules)
    std::string via;                               // "fexit", "nftrace", "nflog"
    std::optional<std::string> family;             // nftables family of the table: "ip", "ip6", "inet", "bridge"
    bool chain_policy = false;                     // the base chain's policy dropped it (no rule)
    std::vector<std::string> path;                 // chains traversed, entry first (nftrace)
    std::vector<std::vector<std::string>> jump_comments;  // comments of the jump/goto rules that led into each
                                                          // chain of `path`, same order; not rendered
    std::vector<std::string> returned_from;               // chains entered and left again before the drop, in the order
                                                          // they returned (a policy chain that did not accept)
    std::vector<std::vector<std::string>> returned_comments;  // of the rules that jumped into them, same order
    std::optional<std::string> pod;                           // "ns/name": the pod whose firewall chain dropped it
    std::optional<std::string> direction;    // "ingress" | "egress": which of the pod's directions that chain is
    std::optional<std::string> policy_kind;  // "NetworkPolicy" (Kubernetes), "GlobalNetworkPolicy",
                                             // "CalicoNetworkPolicy", "ClusterNetworkPolicy", ...
    bool policy_in_state = false;            // `policy` is a NetworkPolicy or a cluster policy of the cluster state
    std::vector<std::string> evaluated_policies;  // policies whose chains the packet went through ("ns/name"):
                                                  // those of the pod whose chain dropped it when the path says
    std::optional<uint16_t> nflog_group;          // an NFLOG record of the packet was joined (--nflog-group)
    std::optional<std::string> nflog_prefix;
};

class ClusterState;

// A DropRule with cni, policy, pod, direction and evaluated_policies filled where the chain, the comments
// and the NFLOG prefix follow a CNI's conventions (kube-router's comments of v1.6 to v2.11 and k3s's
// prefixes; Calico's endpoint chains cali-tw-/cali-fw- + cali + sha1("ns.pod"), policy chains cali-pi-/cali-po-
// with hashed names recomputed from the state's policies and cluster policies, Felix's comments, v3.26 to
// v3.32). `state` may be null. Pure but for the reverse maps, built once per state and cached (thread-safe;
// see state/cni_naming.hpp).
DropRule make_drop_rule(std::string table, std::string chain, std::optional<uint64_t> handle,
                        std::optional<std::string> comment, const ClusterState* state = nullptr);
// Fills the derived fields (comment, cni, policy, pod, ...) of a rule whose raw fields are set (table, chain,
// handle, comments or else comment, path, jump_comments, returned_from, nflog_prefix), replacing earlier ones:
// call it again when more is learnt.
void attribute_drop_rule(DropRule& rule, const ClusterState* state);

struct DropRecord {
    std::chrono::system_clock::time_point first_seen;
    std::chrono::system_clock::time_point last_seen;
    std::string node;
    std::string reason;         // kernel enum name without SKB_DROP_REASON_, e.g. NETFILTER_DROP
    std::string enforcement;    // netfilter/FORWARD, tc/ingress, ...
    std::string backend;        // nftables, iptables-legacy, tc, cgroup, xdp, unknown
    std::string ct_state;       // new, established, related, reply, untracked, none, ...
    std::string interface;      // ingress interface name (or ifindex) where known
    std::string protocol_name;  // as the kernel saw it: TCP, UDP, SCTP, ICMP, ...
    uint64_t count = 0;
    uint16_t sport = 0;
    uint8_t tcp_flags = 0;
    std::optional<std::pair<uint8_t, uint8_t>> icmp;  // type, code
    std::optional<OriginalDestination> original_dst;
    std::optional<DropRule> rule;  // known where the kernel allows rule attribution (fexit)
    // With --rule-trace: "traced" (the trace named the rule), "not_visible" (the drop came from iptables-legacy,
    // tc, a cgroup or XDP program: nftables tracing does not see those), "not_traced" (no trace of its packets
    // yet: the rate limit, or a hook the trace table does not cover). Unset without --rule-trace.
    std::optional<std::string> rule_trace;
    bool attributed = false;  // false when no cluster state was available
    Explanation explanation;
};

// Adds the tail's verdict on a drop to its explanation: NOT_EXPLAINED_BY_POLICY when the engine
// allows what the kernel dropped (stale connection, CNI lag, a drop that is not a policy's),
// UNMODELLED_POLICY instead when the rule is a policy's the engine does not evaluate (a Calico policy,
// a NetworkPolicy the state lacks), and SERVICE_VIP_DNAT when conntrack shows the client dialled a
// Service. Completes the rule's pod and direction from the flow where the chain cannot tell them.
void annotate_drop(DropRecord& record);

std::string format_time(std::chrono::system_clock::time_point t);  // RFC 3339, UTC, milliseconds

// The JSON line: explain's fields plus time, node, reason, enforcement, ct_state, count,
// interface (and event: "drop", "resumed" or "summary").
Json drop_json(const DropRecord& record, const char* event);

// One plain text line (non-TTY tail output), then indented reasons when denied (drop_text.hpp renders it).
void write_drop_text(std::ostream& out, const DropRecord& record, bool with_details);

// "filter/cali-po-x handle 12 \"comment\" (calico, policy ns/name, pod ns/p egress)": the text of a rule line.
std::string rule_text(const DropRule& rule, bool attributed);
// The `rule` object of drop_json, read back (what the cluster-wide tail gets from the agents).
DropRule rule_from_json(const Json& rule);

}  // namespace npt

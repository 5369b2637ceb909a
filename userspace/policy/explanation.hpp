// The answer netpol-trace gives for one connection: a plain value that renderers read. It says
// which policies isolate each end, which allow the flow, and for a denied side the closest rule of
// each isolating policy with the exact reason it misses, plus hints for the "looks right but is
// still blocked" cases.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/ip_addr.hpp"
#include "policy/evaluator.hpp"
#include "policy/miss.hpp"
#include "state/cluster_state.hpp"

namespace npt {

// Hint codes are a contract: scripts match on them.
namespace hint {
inline constexpr const char* kLabelMismatch = "LABEL_MISMATCH";
inline constexpr const char* kNamedPortUnresolved = "NAMED_PORT_UNRESOLVED";
inline constexpr const char* kPortNotAllowed = "PORT_NOT_ALLOWED";
inline constexpr const char* kDnsEgressBlocked = "DNS_EGRESS_BLOCKED";
inline constexpr const char* kServiceVipDnat = "SERVICE_VIP_DNAT";
inline constexpr const char* kIpBlockExcept = "IPBLOCK_EXCEPT";
inline constexpr const char* kDefaultDeny = "DEFAULT_DENY";             // isolated by policies without rules
inline constexpr const char* kNamespaceScope = "PEER_NAMESPACE_SCOPE";  // podSelector alone: own namespace only
inline constexpr const char* kNotAPod = "PEER_NOT_A_POD";               // selector peers cannot match this IP
inline constexpr const char* kServiceNoEndpoints = "SERVICE_NO_ENDPOINTS";
inline constexpr const char* kServicePortUnknown = "SERVICE_PORT_UNKNOWN";
inline constexpr const char* kNotExplainedByPolicy = "NOT_EXPLAINED_BY_POLICY";
inline constexpr const char* kUnmodelledPolicy = "UNMODELLED_POLICY";   // (tail) the dropping rule is a policy's
                                                                        // the engine does not evaluate
inline constexpr const char* kAdminTierDeny = "ADMIN_TIER_DENY";        // an Admin-tier rule denies: no
                                                                        // NetworkPolicy can allow it
inline constexpr const char* kBaselineTierDeny = "BASELINE_TIER_DENY";  // a Baseline rule denies a pod no
                                                                        // NetworkPolicy selects
inline constexpr const char* kAdminTierPassToDeny = "ADMIN_TIER_PASS_TO_DENY";  // an Admin Pass handed it to
                                                                                // NetworkPolicies that deny it
inline constexpr const char* kClusterPolicyPriorityTie = "CLUSTER_POLICY_PRIORITY_TIE";
inline constexpr const char* kDomainNameUndecided = "DOMAIN_NAME_UNDECIDED";
}  // namespace hint

// A rule of a cluster policy, as outputs name it.
struct ClusterRuleRef {
    std::string policy;  // the policy's id: its name, or "AdminNetworkPolicy/<name>", ...
    int rule = -1;       // index in spec.ingress / spec.egress
    std::optional<std::string> rule_name;
    std::optional<int32_t> priority;  // none for a BaselineAdminNetworkPolicy

    friend bool operator==(const ClusterRuleRef&, const ClusterRuleRef&) = default;
};

// The hints that are not about a miss, as data: output/miss_text words them (hint_message).
struct DefaultDenyHint {  // DEFAULT_DENY: isolated only by policies without rules of the direction
    std::string pod;
    std::vector<std::string> policies;
    friend bool operator==(const DefaultDenyHint&, const DefaultDenyHint&) = default;
};

struct DnsHint {  // DNS_EGRESS_BLOCKED
    Protocol protocol = Protocol::UDP;
    IpAddr ip;                         // the destination
    std::optional<DecidingTier> tier;  // a cluster policy rule denies it (rule)...
    std::optional<ClusterRuleRef> rule;
    std::string pod;  // ...or the pod's own egress isolation
    friend bool operator==(const DnsHint&, const DnsHint&) = default;
};

struct TierDenyHint {  // ADMIN_TIER_DENY, BASELINE_TIER_DENY
    DecidingTier tier = DecidingTier::Admin;
    ClusterRuleRef rule;
    std::string pod;
    std::vector<ClusterRuleRef> passed;  // Baseline: the Admin tier's Pass rules that passed it on
    friend bool operator==(const TierDenyHint&, const TierDenyHint&) = default;
};

struct PassToDenyHint {                  // ADMIN_TIER_PASS_TO_DENY
    std::vector<ClusterRuleRef> passed;  // the Admin tier's Pass rules
    std::string pod;
    std::vector<std::string> policies;  // the NetworkPolicies that isolate it
    friend bool operator==(const PassToDenyHint&, const PassToDenyHint&) = default;
};

struct PriorityTieHint {  // CLUSTER_POLICY_PRIORITY_TIE
    std::string policy;   // the one applied (by name order)
    std::vector<std::string> others;
    int32_t priority = 0;
    DecidingTier tier = DecidingTier::Admin;
    std::string pod;
    RuleAction action = RuleAction::Accept;  // what the applied one does
    friend bool operator==(const PriorityTieHint&, const PriorityTieHint&) = default;
};

struct DomainNameHint {  // DOMAIN_NAME_UNDECIDED
    DecidingTier tier = DecidingTier::Admin;
    ClusterRuleRef rule;
    std::vector<std::string> names;
    IpAddr ip;  // the remote end
    friend bool operator==(const DomainNameHint&, const DomainNameHint&) = default;
};

struct ServicePortHint {  // SERVICE_PORT_UNKNOWN
    std::string service;
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;
    std::vector<std::pair<Protocol, uint16_t>> ports;  // the ones it serves
    friend bool operator==(const ServicePortHint&, const ServicePortHint&) = default;
};

struct ServiceNoEndpointsHint {  // SERVICE_NO_ENDPOINTS
    std::string service;
    bool v4 = true;  // the family asked
    Protocol protocol = Protocol::TCP;
    uint16_t port = 0;
    friend bool operator==(const ServiceNoEndpointsHint&, const ServiceNoEndpointsHint&) = default;
};

struct ServiceDnatHint {  // SERVICE_VIP_DNAT
    IpAddr ip;            // the Service's
    uint16_t port = 0;
    std::string service;
    std::vector<std::pair<IpAddr, uint16_t>> endpoints;
    std::vector<std::string> target_ports;  // the hint's policy, if any, has a rule for the Service IP or port
    friend bool operator==(const ServiceDnatHint&, const ServiceDnatHint&) = default;
};

// A hint's text: the words for its miss at a rule or peer of `policy`, for its detail, or else its own message
// (hints made by outputs themselves); output/miss_text's hint_message.
struct Hint {
    using Detail = std::variant<std::monostate, DefaultDenyHint, DnsHint, TierDenyHint, PassToDenyHint, PriorityTieHint,
                                DomainNameHint, ServicePortHint, ServiceNoEndpointsHint, ServiceDnatHint>;
    std::string code;
    Direction direction = Direction::Ingress;
    std::optional<std::string> policy;  // "ns/name"
    std::string message;
    std::optional<Miss> miss;  // the miss the hint is about
    int rule = -1;             // with miss: the rule's index in spec.ingress / spec.egress...
    int peer = -1;             // ...and its peer's in from/to (-1: the rule's ports)
    Detail detail;             // a hint not about a miss: what its words say

    friend bool operator==(const Hint&, const Hint&) = default;
};

struct RuleDiagnosis {
    int rule = -1;                         // index in spec.ingress / spec.egress
    std::optional<std::string> rule_name;  // cluster policy rules: the rule's name
    std::optional<RuleAction> action;      // cluster policy rules: its action
    int peer = -1;                         // index of the closest peer in from/to; -1 when the rule has no peers
    bool ports_match = false;
    bool peers_match = false;
    std::vector<Miss> misses;
    int cost = 0;
};

// What a policy does for one side, as data: output/miss_text words it (summary_message), reading the rule it
// names from the diagnosis's closest rule.
struct PolicySummary {
    enum class Kind : uint8_t {
        NoRules,               // it selects `pod` for the direction and has no rules of it: it allows none of it
        Allows,                // its closest rule allows the flow
        NoRuleMatches,         // none of its `rules` rules matches; the closest is named
        ClusterNoRuleMatches,  // a cluster policy: none of its `rules` Accept (with_pass: and Pass) rules before
                               // the decision matches; the closest is named
    };
    Kind kind = Kind::NoRules;
    Direction direction = Direction::Ingress;
    std::string pod;  // NoRules: the selected pod ("ns/name")
    size_t rules = 0;
    bool with_pass = false;
    std::optional<int32_t> priority;  // ClusterNoRuleMatches: the policy's (none for a Baseline policy)
};

struct PolicyDiagnosis {
    std::string policy;                // "ns/name" (a cluster policy: its name, or "AdminNetworkPolicy/<name>")
    std::optional<DecidingTier> tier;  // cluster policies: admin or baseline
    bool allows = false;
    PolicySummary summary;  // one line on what the policy does for this side
    std::optional<RuleDiagnosis> closest;
};

// Which tier decided a direction, and with which rule.
struct DecidedBy {
    DecidingTier tier = DecidingTier::None;
    std::optional<ClusterRuleRef> rule;  // Admin and Baseline
    std::optional<RuleAction> action;    // Accept or Deny (Admin and Baseline)
};

struct SideExplanation {
    Direction direction = Direction::Egress;
    std::optional<std::string> pod;  // the local end's pod ("ns/name")
    bool isolated = false;
    bool allowed = true;
    Exemption exemption = Exemption::NotIsolated;
    std::vector<std::string> policies;
    std::vector<std::string> allowed_by;
    std::vector<PolicyDiagnosis> diagnoses;  // per isolating policy, when the NetworkPolicy tier denies
    DecidedBy decided_by;
    std::vector<std::string> cluster_policies;       // selecting this end in this direction, evaluation order
    std::vector<ClusterRuleRef> passed_by;           // the Pass rules that sent it on
    std::vector<PolicyDiagnosis> cluster_diagnoses;  // when the side denies: per cluster policy evaluated before
                                                     // the decision, its Accept/Pass rule closest to matching
};

// A change that would let a denied flow through (`--fix`), verified against the snapshot with the change applied.
struct FixExample {
    std::string from;  // "ns/pod"
    std::string to;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    bool allowed = false;  // the connection's verdict after the fix (it was the opposite before)
};

struct Fix {
    std::string kind;  // "patch" | "policy" | "label" | "dns" | "command" | "none"
    Direction direction = Direction::Ingress;
    std::optional<std::string> target;  // "ns/name" of the policy, "Kind/ns/name" of the object to relabel
    std::string summary;
    std::optional<std::string> manifest;  // YAML document(s): the new or the whole patched object
    std::optional<std::string> object;    // the same object as JSON text (for tools that do not read YAML)
    std::optional<std::string> patch;     // JSON text: the merge patch of the target
    std::optional<std::string> command;   // a kubectl (or conntrack) command line
    bool verified = false;                // the side it fixes allows the flow once the fix alone is applied
    uint64_t newly_allowed = 0;           // connections between pods the fix opens...
    uint64_t newly_denied = 0;            // ...and closes
    std::vector<FixExample> examples;
    int edit_size = 0;  // ranking: the smaller edit first among equals
};

struct EndpointRef {
    IpAddr ip;
    std::optional<std::string> pod;      // "ns/name"
    bool host_network = false;           // the pod runs in its node's network namespace
    std::optional<std::string> node;     // a node IP
    std::optional<std::string> service;  // the IP is a Service's (ClusterIP or external IP)
    uint16_t port = 0;
};

// A fact about the flow that is not a problem: a side no policy can block (output/miss_text's note_message).
struct Note {
    Exemption exemption = Exemption::SamePod;  // SamePod (traffic to itself) or LocalNode (with its own node)
    Direction direction = Direction::Egress;
    std::string pod;  // LocalNode: the pod...
    IpAddr node_ip;   // ...and its node's address

    friend bool operator==(const Note&, const Note&) = default;
};

struct Explanation;

struct ServiceExplanation {
    std::string name;  // "ns/name"
    std::string port_name;
    uint16_t port = 0;
    std::vector<Explanation> endpoints;
};

struct Explanation {
    std::string from;  // as asked
    std::string to;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    std::string verdict;  // "allowed" | "denied" | "partial"
    EndpointRef src;
    EndpointRef dst;
    SideExplanation egress;
    SideExplanation ingress;
    std::vector<Hint> hints;
    std::vector<Note> notes;                  // facts that are not problems (e.g. traffic to itself)
    std::vector<ServiceExplanation> service;  // zero or one: set when the destination is a Service
    std::optional<std::vector<Fix>> fixes;    // with --fix: per denying side, best first

    bool allowed() const { return verdict == "allowed"; }
};

}  // namespace npt

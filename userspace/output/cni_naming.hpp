// The names CNIs give their netfilter chains, rule comments and NFLOG prefixes, mapped back to the
// Kubernetes objects they stand for.
//
// kube-router: chains KUBE-ROUTER-{FORWARD,INPUT,OUTPUT}, KUBE-POD-FW-<hash>, KUBE-NWPLCY-<hash> (the hashes
// include a sync timestamp: not recomputable), so the objects come from the comments: "rule to REJECT traffic
// destined for POD name:X namespace:Y", "rule to jump traffic from POD name:X namespace:Y to chain ...",
// "run through nw policy [ns/]name", "rule to ACCEPT traffic ... selected by policy name: X namespace Y", and
// the 2026+ "ns/name policy" / "ns/pod reject"; k3s logs "DROP by policy ns/name" as the NFLOG prefix.
//
// Calico: endpoint chains cali-tw-/cali-fw-<iface> where iface = "cali" + sha1("ns.pod")[:11] hex, profile
// chains cali-pri-/cali-pro-, policy chains cali-pi-/cali-po-<id> with Felix's GetLengthLimitedID: ids too
// long for 28 characters become "_" + base64url(sha256(id)) cut to fit. The hashed names are recomputed from
// the state's NetworkPolicies (three id formats across Calico versions) into reverse maps built once per
// ClusterState.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace npt {

class ClusterState;

namespace cni {

inline constexpr size_t kCalicoMaxChainName = 28;  // iptables; Calico's nftables mode allows longer names

// Calico's host side interface of a pod: "cali" + the first 11 hex digits of sha1("<namespace>.<pod>").
std::string calico_interface(std::string_view ns, std::string_view pod);
// Felix's GetLengthLimitedID(prefix, id, max_len): prefix + id, or prefix + "_" + base64url-without-padding
// of sha256(id), cut so the whole is max_len characters, when prefix + id is longer than max_len (or exactly
// max_len and id starts with "_").
std::string calico_limited_id(std::string_view prefix, std::string_view id,
                              size_t max_len = kCalicoMaxChainName);
// The policy ids Calico versions give the Kubernetes NetworkPolicy ns/name: "<ns>/knp.default.<name>" (v3.x),
// "default/<ns>/knp.default.<name>" (older: tier/name), "knp/<ns>/<name>" (current: kind/namespace/name).
std::array<std::string, 3> calico_knp_ids(std::string_view ns, std::string_view name);
std::string base64url_nopad(const unsigned char* data, size_t size);

struct NamingIndex;

// The reverse maps of a state (pods by Calico interface, NetworkPolicies by hashed chain id, policies by
// name) for a series of lookups, such as one drop's rule: fetched at the first lookup that needs them from a
// cache that builds them once per state (each map when first needed) and shares them between threads. A state
// registered with prepare_naming_index() is recognised at once; for one known only by its address, answers
// are checked against the state, and a miss against the pod and policy names the maps were built from
// (O(pods), no hashing).
class NamingContext {
public:
    explicit NamingContext(const ClusterState* state);  // may be null: no maps
    const ClusterState* state() const { return state_; }
    NamingIndex* index() const;  // null without a state
    // For a miss: makes sure the maps are the state's (not those of a freed state at the same address); true
    // when they were not and have been replaced (look again).
    bool recheck() const;

private:
    const ClusterState* state_;
    mutable std::shared_ptr<NamingIndex> index_;
    mutable bool sure_ = false;
};

// Registers a state (kept by a weak_ptr: its maps are dropped with it) and builds its maps now instead of at
// its first drop. The tail calls it when it installs a new state.
void prepare_naming_index(const std::shared_ptr<const ClusterState>& state);

// A policy a dataplane name designates.
struct PolicyRef {
    std::string name;  // "ns/name"; a global policy's name as written ("default.deny-all")
    std::string kind;  // "NetworkPolicy" (Kubernetes), "GlobalNetworkPolicy", "CalicoNetworkPolicy", ...
};

enum class CalicoChainKind : uint8_t { None, Endpoint, Profile, Policy, Other };

struct CalicoChain {
    CalicoChainKind kind = CalicoChainKind::None;  // None: not a Calico chain
    std::string direction;                         // "ingress" | "egress" | "" (Endpoint, Profile, Policy)
    std::string pod;                               // Endpoint: "ns/name" when the state has the pod
    std::optional<PolicyRef> policy;               // Policy: resolved (hashed names through the state)
    bool hashed = false;                           // Policy: the name is a hash of the id
};
// Also accepts the table-prefixed names of Calico's nftables mode ("filter-cali-tw-...").
CalicoChain parse_calico_chain(std::string_view chain, const NamingContext& naming);
CalicoChain parse_calico_chain(std::string_view chain, const ClusterState* state);
// The policy id after cali-pi-/cali-po- when it is not hashed; nullopt for a form it does not know.
std::optional<PolicyRef> parse_calico_policy_id(std::string_view id);

struct KubeRouterComment {
    bool recognized = false;  // one of kube-router's formats (then the CNI is kube-router)
    std::string pod;          // "ns/name"
    std::string direction;    // "ingress" | "egress" | "" when the comment does not say
    std::string policy;       // as written: "ns/name", or a bare name (older "run through nw policy <name>")
    bool jump_to_policy = false;  // "run through nw policy ...": a jump into the policy's chain
};
KubeRouterComment parse_kube_router_comment(std::string_view comment);
// k3s's NFLOG prefix "DROP by policy <ns>/<name>": the policy as written; nullopt for another prefix.
std::optional<std::string> parse_k3s_nflog_prefix(std::string_view prefix);

// A kube-router policy as written, made "ns/name": a bare name takes the pod's namespace when known, else the
// namespace of the one policy of the state with that name; nullopt when neither decides.
std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const NamingContext& naming);
std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const ClusterState* state);
// `ns_name` ("ns/name") is a NetworkPolicy of the state.
bool policy_in_state(const ClusterState* state, std::string_view ns_name);

}  // namespace cni
}  // namespace npt

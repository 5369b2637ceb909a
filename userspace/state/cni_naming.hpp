// The names CNIs give their netfilter chains, rule comments and NFLOG prefixes, mapped back to the
// Kubernetes objects they stand for, for every version netpol-trace knows (docs/rule-attribution.md has the
// table, with the source file each shape comes from).
//
// kube-router: chains KUBE-ROUTER-{FORWARD,INPUT,OUTPUT}, KUBE-POD-FW-<hash>, KUBE-NWPLCY-<hash> (the hashes
// include the sync's nanosecond timestamp: not recomputable), so the objects come from the comments, whose
// wording changed twice: v1.6 ("rule to REJECT traffic destined for POD name:X namespace: Y", "run through nw
// policy <name>", ...), v2.0-v2.10 (the same with small rewordings), v2.11 ("<ns>/<pod> reject",
// "<ns>/<name> policy", "<ns>/<pod> in", ...). k3s logs "DROP by policy ns/name" as an NFLOG prefix.
//
// Calico: endpoint chains cali-tw-/cali-fw-<iface> where iface = "cali" + sha1("ns.pod")[:11] hex, profile
// chains cali-pri-/cali-pro-, policy chains cali-pi-/cali-po-<id> with Felix's GetLengthLimitedID: ids too
// long for 28 characters become "_" + base64url(sha256(id)) cut to fit. The id changed with the versions
// ("<ns>/knp.default.<name>", "<tier>/<ns>/knp.default.<name>", "<kind>/<ns>/<name>"), and the policy API's
// objects became policies of their own tiers. The hashed names are recomputed from the state's
// NetworkPolicies and cluster policies into reverse maps the ClusterState owns (built once, when first needed). Felix
// writes its rule id
// ("cali:<hash>") and each text as separate comments (iptables), or all of them in one ("cali:<hash>; text",
// nftables).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace npt {

class ClusterState;

namespace cni {

inline constexpr size_t kCalicoMaxChainName = 28;  // iptables; Calico's nftables mode allows longer names

// Calico's host side interface of a pod: "cali" + the first 11 hex digits of sha1("<namespace>.<pod>").
std::string calico_interface(std::string_view ns, std::string_view pod);
// Felix's GetLengthLimitedID(prefix, id, max_len): prefix + id, or prefix + "_" + base64url-without-padding
// of sha256(id), cut so the whole is max_len characters, when prefix + id is longer than max_len (or exactly
// max_len and id starts with "_").
std::string calico_limited_id(std::string_view prefix, std::string_view id, size_t max_len = kCalicoMaxChainName);
// The policy ids Calico versions give the Kubernetes NetworkPolicy ns/name: "<ns>/knp.default.<name>" (v3.x),
// "default/<ns>/knp.default.<name>" (older: tier/name), "knp/<ns>/<name>" (current: kind/namespace/name).
std::array<std::string, 3> calico_knp_ids(std::string_view ns, std::string_view name);

// The reverse maps of a state (pods by Calico interface, NetworkPolicies by hashed chain id, policies by name):
// owned by the state (ClusterState::naming_index()), each built by the first lookup that needs it.
struct NamingIndex;

// Builds a state's maps now instead of at its first drop. The tail calls it when it installs a new state.
void prepare_naming_index(const std::shared_ptr<const ClusterState>& state);

// The versions of one CNI that write a shape: a range of indexes into cni_versions(). Evidence narrows it; evidence
// that would leave nothing is ignored (a hand-made rule, a version this table does not know).
struct VersionRange {
    uint8_t lo = 0;
    uint8_t hi = UINT8_MAX;
    bool any() const { return lo == 0 && hi == UINT8_MAX; }
    void narrow(VersionRange other) {
        const VersionRange both{std::max(lo, other.lo), std::min(hi, other.hi)};
        if (both.lo <= both.hi) *this = both;
    }
};
enum class Cni : uint8_t { KubeRouter, Calico, KubeNetworkPolicies };
// The minor versions netpol-trace knows, oldest first: kube-router "1.6", "2.0" ... "2.11"; Calico "3.26" ...
// "3.32"; kube-network-policies "0.9", "1.0", "1.1".
const std::vector<std::string_view>& cni_versions(Cni cni);
// The range from `first` to `last` (empty `last`: the newest); unconstrained for a version it does not know.
VersionRange versions(Cni cni, std::string_view first, std::string_view last = {});
// "v2.11", "v2.6-v2.10", "v3.30+" (up to the newest known: later versions may keep the shape); "" when
// unconstrained.
std::string version_guess(Cni cni, VersionRange range);

// A policy a dataplane name designates.
struct PolicyRef {
    std::string name;       // "ns/name"; a global policy's name as written ("default.deny-all"); a cluster policy
                            // as the engine names it ("<name>", "AdminNetworkPolicy/<name>", ...)
    std::string kind;       // "NetworkPolicy" (Kubernetes), "GlobalNetworkPolicy", "CalicoNetworkPolicy",
                            // "ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy", ...
    VersionRange versions;  // the Calico versions that write this id
};

enum class CalicoChainKind : uint8_t { None, Endpoint, Profile, Policy, Other };

struct CalicoChain {
    CalicoChainKind kind = CalicoChainKind::None;  // None: not a Calico chain
    std::string direction;                         // "ingress" | "egress" | "" (Endpoint, Profile, Policy)
    std::string pod;                               // Endpoint: "ns/name" when the state has the pod
    std::optional<PolicyRef> policy;               // Policy: resolved (hashed names through the state)
    bool hashed = false;                           // Policy: the name is a hash of the id
    bool group = false;                            // a policy group's chain (cali-gi-/cali-go-, v3.28+)
    VersionRange versions;                         // what the name alone says of Calico's version
};
// Also accepts the table-prefixed names of Calico's nftables mode ("filter-cali-tw-...").
// `state` may be null: no hashed name is resolved then.
CalicoChain parse_calico_chain(std::string_view chain, const ClusterState* state);
// The policy id after cali-pi-/cali-po- when it is not hashed; nullopt for a form it does not know.
std::optional<PolicyRef> parse_calico_policy_id(std::string_view id);

// What the comments of one Calico rule say: Felix's rule id, its texts, and what they name.
struct CalicoComments {
    bool recognized = false;                // a "cali:" id or one of Felix's texts
    std::string id;                         // "cali:<hash>"
    std::vector<std::string> texts;         // the other comments; in nftables mode the one text after "cali:<hash>; "
    std::optional<std::string> meaningful;  // the text an SRE reads: not an annotation ("k=v") if there is one
    std::optional<std::string> rule_name;   // "name=<rule>": a named rule of an AdminNetworkPolicy or a
                                            // ClusterNetworkPolicy
    std::optional<PolicyRef> policy;        // the first rule of a policy chain names its policy
    std::string direction;                  // of that policy chain: "ingress" | "egress"
    std::optional<std::string> tier;        // "End of tier <tier>. ..." / "Start of tier <tier>"
    bool end_of_tier = false;               // the implicit drop of a tier ("End of tier" or, before v3.30, "Drop if
                                            // no policies passed packet")
    VersionRange versions;
};
CalicoComments parse_calico_comments(const std::vector<std::string>& comments);

struct KubeRouterComment {
    bool recognized = false;      // one of kube-router's formats (then the CNI is kube-router)
    std::string pod;              // "ns/name"
    std::string direction;        // "ingress" | "egress" | "" when the comment does not say
    std::string policy;           // as written: "ns/name", or a bare name (v1.6-v2.10 "run through nw policy <name>")
    bool jump_to_policy = false;  // "run through nw policy <name>", "<ns>/<name> policy": into the policy's chain
    bool jump_to_pod = false;     // "rule to jump traffic ... POD ...", "<ns>/<pod> in|out": into the pod's chain
    VersionRange versions;        // the kube-router versions that write it
};
KubeRouterComment parse_kube_router_comment(std::string_view comment);
// What a kube-router chain or table name says of the version (KUBE-NWPLCY-COMMON: v2.6+, KUBE-NWPLCY-TAIL:
// v2.10+, the nftables tables: v2.11+).
VersionRange kube_router_name_versions(std::string_view name);
// k3s's NFLOG prefix "DROP by policy <ns>/<name>": the policy as written; nullopt for another prefix.
std::optional<std::string> parse_k3s_nflog_prefix(std::string_view prefix);

// A kube-router policy as written, made "ns/name": a bare name takes the pod's namespace when known, else the
// namespace of the one policy of the state with that name; nullopt when neither decides.
std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const ClusterState* state);
// `ns_name` ("ns/name") is a NetworkPolicy of the state.
bool policy_in_state(const ClusterState* state, std::string_view ns_name);
// `name` (as ClusterNetworkPolicy::id() writes it) is a cluster policy of the state of that kind
// ("ClusterNetworkPolicy", "AdminNetworkPolicy", "BaselineAdminNetworkPolicy").
bool cluster_policy_in_state(const ClusterState* state, std::string_view name, std::string_view kind);
// The Calico ids of a cluster policy: v3.29-v3.31 "adminnetworkpolicy/kanp.adminnetworkpolicy.<name>",
// "baselineadminnetworkpolicy/kbanp.baselineadminnetworkpolicy.<name>"; v3.32 "kcnp/<name>".
std::string calico_cluster_policy_id(std::string_view kind, std::string_view name);

}  // namespace cni
}  // namespace npt

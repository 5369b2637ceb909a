#include "state/cni_naming.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/base64.hpp"
#include "state/cluster_state.hpp"

namespace npt::cni {

namespace {

// ---- digests --------------------------------------------------------------------------------------------

// One digest context per thread, reused: EVP_Digest would allocate one per call, and the reverse maps hash
// every pod of the state.
class Digester {
  public:
    Digester()
        : ctx_(EVP_MD_CTX_new()),
          sha1_(EVP_MD_fetch(nullptr, "SHA1", nullptr)),
          sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {}
    ~Digester() {
        EVP_MD_free(sha1_);
        EVP_MD_free(sha256_);
        EVP_MD_CTX_free(ctx_);
    }
    Digester(const Digester&) = delete;
    Digester& operator=(const Digester&) = delete;

    // Returns the digest's length (0 on failure).
    unsigned sha1(std::string_view a, std::string_view b, std::string_view c, unsigned char* out) {
        return digest(sha1_ ? sha1_ : EVP_sha1(), a, b, c, out);
    }
    unsigned sha256(std::string_view a, std::string_view b, std::string_view c, unsigned char* out) {
        return digest(sha256_ ? sha256_ : EVP_sha256(), a, b, c, out);
    }

  private:
    unsigned digest(const EVP_MD* md, std::string_view a, std::string_view b, std::string_view c, unsigned char* out) {
        unsigned len = 0;
        if (!ctx_ || EVP_DigestInit_ex(ctx_, md, nullptr) != 1 || EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
            EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1 || EVP_DigestUpdate(ctx_, c.data(), c.size()) != 1 ||
            EVP_DigestFinal_ex(ctx_, out, &len) != 1)
            return 0;
        return len;
    }

    EVP_MD_CTX* ctx_;
    EVP_MD* sha1_;
    EVP_MD* sha256_;
};

Digester& digester() {
    thread_local Digester d;
    return d;
}

constexpr char kHex[] = "0123456789abcdef";
constexpr size_t kIfaceHex = 11;   // "cali" + 11 hex digits
constexpr size_t kHashKey = 19;    // base64 characters of a hashed iptables policy chain: 28 - 8 - 1
constexpr size_t kSha256B64 = 43;  // base64url without padding of 32 bytes
constexpr uint32_t kAmbiguous = UINT32_MAX;

// The first 44 bits of sha1("ns.pod"): the 11 hex digits of the interface name as a number.
uint64_t pod_key(const unsigned char* digest) {
    uint64_t v = 0;
    for (int i = 0; i < 6; ++i) v = (v << 8) | digest[i];
    return v >> 4;
}

std::optional<uint64_t> parse_iface_key(std::string_view iface) {
    if (iface.size() != 4 + kIfaceHex || iface.substr(0, 4) != "cali") return std::nullopt;
    uint64_t v = 0;
    for (char c : iface.substr(4)) {
        const int d = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
        if (d < 0) return std::nullopt;
        v = (v << 4) | static_cast<uint64_t>(d);
    }
    return v;
}

std::string sha256_b64(std::string_view id) {
    unsigned char d[EVP_MAX_MD_SIZE];
    const unsigned n = digester().sha256(id, {}, {}, d);
    return base64_encode(std::string_view(reinterpret_cast<const char*>(d), n), Base64::UrlNoPadding);
}

// ---- the reverse maps, once per state ---------------------------------------------------------

struct HashEntry {
    std::array<char, kHashKey> key;
    uint32_t policy;  // into policies(), or cluster_policies() when form is kClusterForm
    uint8_t form;     // index into calico_knp_ids(), or kClusterForm
};
constexpr uint8_t kClusterForm = UINT8_MAX;

// The Calico id a hash entry stands for.
std::string hashed_id(const ClusterState& s, const HashEntry& e) {
    if (e.form == kClusterForm) {
        const auto& p = s.cluster_policies()[e.policy];
        return calico_cluster_policy_id(cluster_policy_kind_name(p.kind), p.name);
    }
    const auto& p = s.policies()[e.policy];
    return calico_knp_ids(p.ns, p.name)[e.form];
}

}  // namespace

// The reverse maps of one state, owned by it (ClusterState::naming_index()). Holds indexes into the state, never
// pointers into it; each map is built once, by the first lookup that needs it.
struct NamingIndex {
    std::once_flag pods_once, hashes_once, names_once;
    std::vector<std::pair<uint64_t, uint32_t>> pods;    // sorted by key; kAmbiguous on a collision
    std::vector<HashEntry> hashes;                      // sorted by key
    std::unordered_map<std::string, uint32_t> by_name;  // policy name -> policy, kAmbiguous when several

    void build_pods(const ClusterState& s) {
        std::call_once(pods_once, [&] {
            pods.reserve(s.pods().size());
            unsigned char d[EVP_MAX_MD_SIZE];
            for (uint32_t i = 0; i < s.pods().size(); ++i) {
                if (digester().sha1(s.pod_namespace(i), ".", s.str(s.pods()[i].name), d) < 6) continue;
                pods.emplace_back(pod_key(d), i);
            }
            std::sort(pods.begin(), pods.end());
            size_t out = 0;
            for (size_t i = 0; i < pods.size(); ++i) {
                if (out > 0 && pods[out - 1].first == pods[i].first) {
                    pods[out - 1].second = kAmbiguous;
                    continue;
                }
                pods[out++] = pods[i];
            }
            pods.resize(out);
        });
    }

    void build_hashes(const ClusterState& s) {
        std::call_once(hashes_once, [&] {
            hashes.reserve(s.policies().size() * 3 + s.cluster_policies().size());
            const auto add = [&](uint32_t policy, uint8_t form) {
                HashEntry e{};
                e.policy = policy;
                e.form = form;
                const std::string b64 = sha256_b64(hashed_id(s, e));
                if (b64.size() < kHashKey) return;
                std::copy_n(b64.begin(), kHashKey, e.key.begin());
                hashes.push_back(e);
            };
            for (uint32_t i = 0; i < s.policies().size(); ++i)
                for (uint8_t f = 0; f < 3; ++f) add(i, f);
            for (uint32_t i = 0; i < s.cluster_policies().size(); ++i) add(i, kClusterForm);
            std::sort(hashes.begin(), hashes.end(),
                      [](const HashEntry& a, const HashEntry& b) { return a.key < b.key; });
        });
    }

    void build_names(const ClusterState& s) {
        std::call_once(names_once, [&] {
            by_name.reserve(s.policies().size());
            for (uint32_t i = 0; i < s.policies().size(); ++i) {
                auto [it, added] = by_name.emplace(s.policies()[i].name, i);
                if (!added) it->second = kAmbiguous;
            }
        });
    }
};

}  // namespace npt::cni

namespace npt {

NamingSlot::NamingSlot() : index_(std::make_unique<cni::NamingIndex>()) {}
NamingSlot::~NamingSlot() = default;
NamingSlot::NamingSlot(const NamingSlot&) : NamingSlot() {}
NamingSlot& NamingSlot::operator=(const NamingSlot& other) {
    if (this != &other) index_ = std::make_unique<cni::NamingIndex>();
    return *this;
}

}  // namespace npt

namespace npt::cni {

namespace {

// The pod behind a Calico interface name; every answer is checked against the state.
std::optional<std::string> pod_of_interface(std::string_view iface, const ClusterState* state) {
    const auto key = parse_iface_key(iface);
    if (!key || !state) return std::nullopt;
    const ClusterState& s = *state;
    std::string lowered(iface);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(), [](unsigned char c) { return std::tolower(c); });
    auto& index = s.naming_index();
    index.build_pods(s);
    const auto it = std::lower_bound(index.pods.begin(), index.pods.end(), std::pair{*key, uint32_t{0}});
    if (it == index.pods.end() || it->first != *key || it->second == kAmbiguous) return std::nullopt;
    const uint32_t pod = it->second;
    // The key is 44 bits of the digest: the whole name decides.
    if (calico_interface(s.pod_namespace(pod), s.str(s.pods()[pod].name)) != lowered) return std::nullopt;
    return std::string(s.pod_id(pod));
}

// What the id a hash entry stands for names, and the Calico versions that write that id.
PolicyRef hashed_policy(const ClusterState& s, const HashEntry& e) {
    if (e.form == kClusterForm) {
        const auto& p = s.cluster_policies()[e.policy];
        const std::string kind = cluster_policy_kind_name(p.kind);
        return PolicyRef{p.id(), kind, parse_calico_policy_id(calico_cluster_policy_id(kind, p.name))->versions};
    }
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kForms = {
        {{"3.26", "3.28"}, {"3.29", "3.31"}, {"3.32", ""}}};
    return PolicyRef{s.policies()[e.policy].id(), "NetworkPolicy",
                     versions(Cni::Calico, kForms[e.form].first, kForms[e.form].second)};
}

// The NetworkPolicy or cluster policy whose Calico id hashes to `hash` (the characters after "_"; 19 for
// iptables, more for longer limits).
std::optional<PolicyRef> policy_of_hash(std::string_view hash, const ClusterState* state) {
    if (hash.size() < kHashKey || hash.size() > kSha256B64 || !state) return std::nullopt;
    const ClusterState& s = *state;
    std::array<char, kHashKey> key{};
    std::copy_n(hash.begin(), kHashKey, key.begin());
    auto& index = s.naming_index();
    index.build_hashes(s);
    auto [lo, hi] = std::equal_range(index.hashes.begin(), index.hashes.end(), HashEntry{key, 0, 0},
                                     [](const HashEntry& a, const HashEntry& b) { return a.key < b.key; });
    std::optional<HashEntry> found;
    bool ambiguous = false;
    for (auto it = lo; it != hi; ++it) {
        // The key is the id's first characters: the longer hash of an nftables chain decides.
        if (!sha256_b64(hashed_id(s, *it)).starts_with(hash)) continue;
        // Two policies: do not guess. (One policy under two forms cannot collide: the forms differ.)
        ambiguous |=
            found && (found->policy != it->policy || (found->form == kClusterForm) != (it->form == kClusterForm));
        found = *it;
    }
    if (found && !ambiguous) return hashed_policy(s, *found);
    return std::nullopt;
}

// ---- text --------------------------------------------------------------------------------------------

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// Kubernetes object names and namespaces: DNS labels and subdomains.
bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// A name token at the start of s (after spaces); advances s past it.
std::string_view take_name(std::string_view& s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    size_t n = 0;
    while (n < s.size() && name_char(s[n])) ++n;
    auto out = s.substr(0, n);
    s.remove_prefix(n);
    return out;
}

// Consumes `word` (case-insensitive) after spaces, then an optional ':'.
bool take_word(std::string_view& s, std::string_view word) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    if (!iequals_prefix(s, word)) return false;
    s.remove_prefix(word.size());
    if (!s.empty() && s.front() == ':') s.remove_prefix(1);
    return true;
}

// "name:X namespace:Y" (the colons optional) at the start of s: "Y/X", or "" when it is not there.
std::string take_name_and_namespace(std::string_view s) {
    if (!take_word(s, "name")) return {};
    const auto name = take_name(s);
    if (name.empty() || !take_word(s, "namespace")) return {};
    const auto ns = take_name(s);
    return ns.empty() ? std::string() : std::string(ns) + "/" + std::string(name);
}

bool is_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), name_char);
}

// "ns/name" with both parts names.
bool is_ns_name(std::string_view s) {
    const auto slash = s.find('/');
    return slash != std::string_view::npos && is_name(s.substr(0, slash)) && is_name(s.substr(slash + 1));
}

// A policy as kube-router writes it: "ns/name" or a bare name.
bool is_policy_token(std::string_view s) {
    return is_name(s) || is_ns_name(s);
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------------------

std::string calico_interface(std::string_view ns, std::string_view pod) {
    unsigned char d[EVP_MAX_MD_SIZE];
    if (digester().sha1(ns, ".", pod, d) < 6) return {};
    std::string out = "cali";
    for (size_t i = 0; i < kIfaceHex; ++i) out += kHex[(d[i / 2] >> (i % 2 ? 0 : 4)) & 15];
    return out;
}

std::string calico_limited_id(std::string_view prefix, std::string_view id, size_t max_len) {
    const size_t total = prefix.size() + id.size();
    if (total > max_len || (total == max_len && id.starts_with('_'))) {
        const size_t room = max_len > prefix.size() + 1 ? max_len - prefix.size() - 1 : 0;
        return std::string(prefix) + "_" + sha256_b64(id).substr(0, room);
    }
    return std::string(prefix) + std::string(id);
}

std::array<std::string, 3> calico_knp_ids(std::string_view ns, std::string_view name) {
    const std::string n(ns), p(name);
    return {n + "/knp.default." + p, "default/" + n + "/knp.default." + p, "knp/" + n + "/" + p};
}

std::optional<PolicyRef> parse_calico_policy_id(std::string_view id) {
    if (id.empty() || id.starts_with('_')) return std::nullopt;
    std::vector<std::string_view> segs;
    for (size_t start = 0;;) {
        const auto slash = id.find('/', start);
        segs.push_back(id.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    for (auto s : segs)
        if (s.empty()) return std::nullopt;
    const auto ns_name = [](std::string_view ns, std::string_view name) {
        return std::string(ns) + "/" + std::string(name);
    };
    const auto ref = [](std::string name, std::string_view kind, VersionRange v) {
        return PolicyRef{std::move(name), std::string(kind), v};
    };
    // v3.32: <kind>/<namespace>/<name> or <kind>/<name> (felix/types/policy_id.go).
    struct KindForm {
        std::string_view short_name;
        bool namespaced;
        std::string_view kind;
    };
    static constexpr KindForm kKinds[] = {
        {"knp", true, "NetworkPolicy"},
        {"np", true, "CalicoNetworkPolicy"},
        {"gnp", false, "GlobalNetworkPolicy"},
        {"snp", true, "StagedNetworkPolicy"},
        {"sgnp", false, "StagedGlobalNetworkPolicy"},
        {"sknp", true, "StagedKubernetesNetworkPolicy"},
        {"kcnp", false, "ClusterNetworkPolicy"},
    };
    const VersionRange current = versions(Cni::Calico, "3.32");
    for (const auto& k : kKinds) {
        if (segs[0] != k.short_name) continue;
        if (k.namespaced && segs.size() == 3) return ref(ns_name(segs[1], segs[2]), k.kind, current);
        if (!k.namespaced && segs.size() == 2) return ref(std::string(segs[1]), k.kind, current);
    }
    // v3.29-v3.31: the policy API's objects are GlobalNetworkPolicies of their own tiers, named with a prefix
    // (libcalico-go/lib/names/policy.go); the tier may be left out where the name alone is the id.
    struct ClusterForm {
        std::string_view tier;
        std::string_view prefix;
        std::string_view kind;
        std::string_view first;
    };
    static constexpr ClusterForm kCluster[] = {
        {"adminnetworkpolicy", "kanp.adminnetworkpolicy.", "AdminNetworkPolicy", "3.29"},
        {"baselineadminnetworkpolicy", "kbanp.baselineadminnetworkpolicy.", "BaselineAdminNetworkPolicy", "3.30"},
    };
    const auto last = segs.back();
    for (const auto& c : kCluster) {
        if (!last.starts_with(c.prefix) || last.size() == c.prefix.size()) continue;
        if (segs.size() > 2 || (segs.size() == 2 && segs[0] != c.tier)) return std::nullopt;
        return ref(std::string(c.kind) + "/" + std::string(last.substr(c.prefix.size())), c.kind,
                   versions(Cni::Calico, c.first, "3.31"));
    }
    constexpr std::string_view kKnp = "knp.default.";
    // v3.26-v3.28 "<ns>/knp.default.<name>", v3.29-v3.31 "<tier>/<ns>/knp.default.<name>".
    if (last.starts_with(kKnp) && last.size() > kKnp.size() && (segs.size() == 2 || segs.size() == 3))
        return ref(ns_name(segs[segs.size() - 2], last.substr(kKnp.size())), "NetworkPolicy",
                   segs.size() == 2 ? versions(Cni::Calico, "3.26", "3.28") : versions(Cni::Calico, "3.29", "3.31"));
    if (last.starts_with(kKnp)) return std::nullopt;
    // Calico's own policies. Before v3.30 their names were stored with the tier in front ("<tier>.<name>").
    const bool tier_prefixed = last.find('.') != std::string_view::npos && last.find('.') > 0;
    switch (segs.size()) {
        case 1:  // v3.26-v3.28 GlobalNetworkPolicy, named with its tier: "default.deny-all"
            return ref(std::string(last), "GlobalNetworkPolicy", versions(Cni::Calico, "3.26", "3.28"));
        case 2:
            // v3.29-v3.31 "<tier>/<tier>.<name>" GlobalNetworkPolicy
            if (last.size() > segs[0].size() + 1 && last.starts_with(segs[0]) && last[segs[0].size()] == '.')
                return ref(std::string(last), "GlobalNetworkPolicy", versions(Cni::Calico, "3.29", "3.31"));
            // v3.26-v3.28 "<ns>/<tier>.<name>" NetworkPolicy
            if (tier_prefixed)
                return ref(ns_name(segs[0], last), "CalicoNetworkPolicy", versions(Cni::Calico, "3.26", "3.28"));
            // v3.30-v3.31 "<tier>/<name>": a GlobalNetworkPolicy stored under the name it was given
            return ref(std::string(last), "GlobalNetworkPolicy", versions(Cni::Calico, "3.30", "3.31"));
        case 3:  // v3.29-v3.31 "<tier>/<ns>/<name>" (before v3.30 "<tier>.<name>")
            return ref(ns_name(segs[1], last), "CalicoNetworkPolicy", versions(Cni::Calico, "3.29", "3.31"));
        default:
            return std::nullopt;
    }
}

CalicoChain parse_calico_chain(std::string_view chain, const ClusterState* state) {
    CalicoChain out;
    bool nft = false;
    for (std::string_view table : {"filter-", "raw-", "mangle-", "nat-"}) {  // nftables mode: "<table>-cali-..."
        if (chain.starts_with(table) && chain.substr(table.size()).starts_with("cali-")) {
            chain.remove_prefix(table.size());
            nft = true;
            break;
        }
    }
    if (!chain.starts_with("cali-")) return out;
    out.kind = CalicoChainKind::Other;
    if (nft) out.versions.narrow(versions(Cni::Calico, "3.29"));
    struct Form {
        std::string_view prefix;
        CalicoChainKind kind;
        std::string_view direction;
    };
    static constexpr Form kForms[] = {
        {"cali-tw-", CalicoChainKind::Endpoint, "ingress"}, {"cali-fw-", CalicoChainKind::Endpoint, "egress"},
        {"cali-pri-", CalicoChainKind::Profile, "ingress"}, {"cali-pro-", CalicoChainKind::Profile, "egress"},
        {"cali-pi-", CalicoChainKind::Policy, "ingress"},   {"cali-po-", CalicoChainKind::Policy, "egress"},
        {"cali-gi-", CalicoChainKind::Other, "ingress"},    {"cali-go-", CalicoChainKind::Other, "egress"},
    };
    for (const auto& f : kForms) {
        if (!chain.starts_with(f.prefix) || chain.size() == f.prefix.size()) continue;
        out.kind = f.kind;
        out.direction = std::string(f.direction);
        const auto rest = chain.substr(f.prefix.size());
        if (f.prefix.starts_with("cali-g")) {
            out.group = true;
            out.versions.narrow(versions(Cni::Calico, "3.28"));
        } else if (f.kind == CalicoChainKind::Endpoint) {
            out.pod = pod_of_interface(rest, state).value_or("");
        } else if (f.kind == CalicoChainKind::Policy) {
            const auto hash = rest.substr(rest.empty() ? 0 : 1);
            const bool b64 = std::all_of(hash.begin(), hash.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
            });
            // Hashed: "_" + the hash filling the name to the limit (28 with iptables, more in nftables mode).
            if (rest.starts_with('_') && chain.size() >= kCalicoMaxChainName && hash.size() >= kHashKey && b64) {
                out.hashed = true;
                out.policy = policy_of_hash(hash, state);
                // nftables mode hashes at 28 characters in v3.29 only, ids past 256 from v3.30 on.
                if (nft && chain.size() == kCalicoMaxChainName)
                    out.versions.narrow(versions(Cni::Calico, "3.29", "3.29"));
            } else {
                out.policy = parse_calico_policy_id(rest);
                if (nft && chain.size() > kCalicoMaxChainName) out.versions.narrow(versions(Cni::Calico, "3.30"));
            }
            if (out.policy) out.versions.narrow(out.policy->versions);
        }
        break;
    }
    return out;
}

namespace {

// A comment kube-router writes with fixed text: what it says and the versions that write it (pod.go, policy.go,
// network_policy_controller.go / npc_iptables.go / npc_nftables.go of each tag).
struct FixedKubeRouterComment {
    std::string_view text;
    std::string_view direction;
    std::string_view first, last;
    bool distinctive;  // names kube-router by itself (a short generic text needs a kube-router chain too)
};
constexpr FixedKubeRouterComment kFixedKubeRouter[] = {
    {"run through default ingress network policy  chain", "ingress", "1.6", "1.6", true},
    {"run through default egress network policy  chain", "egress", "1.6", "1.6", true},
    {"run through default ingress network policy chain", "ingress", "2.0", "2.10", true},
    {"run through default egress network policy chain", "egress", "2.0", "2.10", true},
    {"rule to permit the traffic to pods when source is the pod's local node", "ingress", "1.6", "1.6", true},
    {"rule to permit the traffic traffic to pods when source is the pod's local node", "ingress", "2.0", "2.10", true},
    {"explicitly ACCEPT traffic that complies with network policies", "", "1.6", "1.6", true},
    {"rule to explicitly ACCEPT traffic that comply to network policies", "", "2.0", "", true},
    {"rule to explicitly handle traffic for network policies ACCEPT/REJECT decision", "", "2.10", "", true},
    {"set mark to ACCEPT traffic that comply to network policies", "", "1.6", "2.10", true},
    {"common bi-directional traffic policy rules", "", "2.6", "2.10", true},
    {"rule for stateful firewall for pod", "", "1.6", "", true},
    {"rule to drop invalid state for pod", "", "1.6", "", true},
    {"rule to mark traffic matching a network policy", "", "1.6", "", true},
    {"REJECT traffic to/from local pods without a programmed firewall chain (--netpol-default-deny is enabled)", "",
     "2.10", "2.10", true},
    {"REJECT traffic before NetPol is applied (--netpol-default-deny is enabled)", "", "2.10", "2.10", true},
    {"reject unprogrammed local pod (default-deny)", "", "2.11", "", true},
    {"reject pre-netpol (default-deny)", "", "2.11", "", true},
    {"common netpol rules", "", "2.11", "", false},
    {"default ingress", "ingress", "2.11", "", false},
    {"default egress", "egress", "2.11", "", false},
    {"from local node", "ingress", "2.11", "", false},
    {"set netpol-ok mark", "", "2.11", "", false},
    {"accept netpol-ok", "", "2.11", "", false},
    {"clear netpol mark", "", "2.11", "", false},
    {"netpol accept/reject", "", "2.11", "", false},
    {"mark netpol match", "", "2.11", "", false},
    {"drop invalid state", "", "2.11", "", false},
    {"accept established/related", "", "2.11", "", false},
};

// v2.11's "<ns>/<name> <kind>" (comments.go): the kinds after the identity.
struct IdKind {
    std::string_view kind;
    enum What : uint8_t { PodIn, PodOut, Pod, Policy, PolicyJump } what;
    std::string_view direction;
};
constexpr IdKind kIdKinds[] = {
    {"in", IdKind::PodIn, "ingress"},
    {"out", IdKind::PodOut, "egress"},
    {"log-drop", IdKind::Pod, ""},
    {"reject", IdKind::Pod, ""},
    {"policy", IdKind::PolicyJump, ""},
    {"ipblock", IdKind::Policy, ""},
    {"except-src", IdKind::Policy, "ingress"},
    {"except-dst", IdKind::Policy, "egress"},
    {"ingress pods", IdKind::Policy, "ingress"},
    {"ingress any", IdKind::Policy, "ingress"},
    {"ingress cidr", IdKind::Policy, "ingress"},
    {"egress pods", IdKind::Policy, "egress"},
    {"egress any", IdKind::Policy, "egress"},
    {"egress cidr", IdKind::Policy, "egress"},
};

}  // namespace

KubeRouterComment parse_kube_router_comment(std::string_view comment) {
    KubeRouterComment out;
    const std::string_view c = trim(comment);
    const std::string lc = lower(c);
    const auto legacy = versions(Cni::KubeRouter, "1.6", "2.10");
    // v1.6-v2.10 "... POD name:X namespace: Y ...", the direction from the words before it: "destined to" and
    // "from" on the jumps into the pod's chain; the REJECT's "destined for" serves both directions.
    if (const auto at = lc.find("pod name"); at != std::string::npos) {
        if (auto pod = take_name_and_namespace(c.substr(at + 3)); !pod.empty()) {
            out.recognized = true;
            out.pod = std::move(pod);
            out.versions = legacy;
            const std::string_view before = trim(std::string_view(lc).substr(0, at));
            out.jump_to_pod = before.starts_with("rule to jump traffic");
            if (before.ends_with(" from") || before == "from")
                out.direction = "egress";
            else if (before.ends_with("destined to") || (before.ends_with(" to") && !before.ends_with("destined for")))
                out.direction = "ingress";
        }
    }
    // "run through nw policy <name>" (the bare name, v1.6-v2.10): the jump into the policy's chain.
    if (const auto at = lc.find("run through nw policy"); at != std::string::npos) {
        const auto token = trim(c.substr(at + std::string_view("run through nw policy").size()));
        if (is_policy_token(token)) {
            out.recognized = true;
            out.jump_to_policy = true;
            out.policy = std::string(token);
            out.versions = legacy;
        }
    }
    // The rules of a policy's chain: "rule to ACCEPT traffic from all sources to dest pods selected by policy
    // name: X namespace Y"; "from source pods to dest pods" serves ingress and egress rules alike.
    if (const auto at = lc.find("selected by policy name"); at != std::string::npos && out.policy.empty()) {
        if (auto policy = take_name_and_namespace(c.substr(at + std::string_view("selected by policy ").size()));
            !policy.empty()) {
            out.recognized = true;
            out.policy = std::move(policy);
            out.versions = legacy;
            const std::string_view what = std::string_view(lc).substr(0, at);
            if (what.find("from all sources") != std::string_view::npos ||
                what.find("from specified ipblocks") != std::string_view::npos)
                out.direction = "ingress";
            else if (what.find("to all destinations") != std::string_view::npos ||
                     what.find("to specified ipblocks") != std::string_view::npos)
                out.direction = "egress";
        }
    }
    for (const auto& f : kFixedKubeRouter) {
        if (c != f.text) continue;
        out.recognized = f.distinctive;
        out.direction = std::string(f.direction);
        out.versions = versions(Cni::KubeRouter, f.first, f.last);
        return out;
    }
    // v2.11+: "<ns>/<name> <kind>" (clamped to 120 bytes; a cut kind is not read).
    if (const auto space = c.find(' '); space != std::string_view::npos && is_ns_name(c.substr(0, space))) {
        const std::string head(c.substr(0, space));
        std::string kind = lower(c.substr(space + 1));
        if (kind.ends_with(" np")) kind.resize(kind.size() - 3);  // a named port's rule
        for (const auto& k : kIdKinds) {
            if (kind != k.kind) continue;
            out.recognized = true;
            out.versions = versions(Cni::KubeRouter, "2.11");
            out.direction = std::string(k.direction);
            const bool pod = k.what == IdKind::PodIn || k.what == IdKind::PodOut || k.what == IdKind::Pod;
            (pod ? out.pod : out.policy) = head;
            out.jump_to_pod = k.what == IdKind::PodIn || k.what == IdKind::PodOut;
            out.jump_to_policy = k.what == IdKind::PolicyJump;
            break;
        }
    }
    if (lc.starts_with("kube-router netpol")) {  // "kube-router netpol - <hash>": the top-level jumps
        out.recognized = true;
        out.versions = {};
    }
    return out;
}

VersionRange kube_router_name_versions(std::string_view name) {
    if (name == "KUBE-NWPLCY-COMMON") return versions(Cni::KubeRouter, "2.6");
    if (name == "KUBE-NWPLCY-TAIL") return versions(Cni::KubeRouter, "2.10");
    if (name == "kube-router-filter-ipv4" || name == "kube-router-filter-ipv6")
        return versions(Cni::KubeRouter, "2.11");
    return {};
}

CalicoComments parse_calico_comments(const std::vector<std::string>& comments) {
    CalicoComments out;
    for (const auto& raw : comments) {
        std::string_view c = raw;
        if (c.starts_with("cali:")) {
            out.recognized = true;
            // nftables mode: "cali:<hash>; <text> <text>" in one comment (felix/nftables/render.go).
            const auto semi = c.find(';');
            out.id = std::string(c.substr(0, semi));
            if (semi == std::string_view::npos) continue;
            c = trim(c.substr(semi + 1));
            if (c.empty()) continue;
        }
        out.texts.emplace_back(c);
    }
    const auto annotation = [](std::string_view t) {
        const auto eq = t.find('=');
        return eq != std::string_view::npos && eq > 0 && t.substr(0, eq).find(' ') == std::string_view::npos;
    };
    for (const auto& t : out.texts)
        if (!out.meaningful && !annotation(t)) out.meaningful = t;
    if (!out.meaningful && !out.texts.empty()) out.meaningful = out.texts.front();
    for (const auto& t : out.texts) {
        // "name=<rule>" alone (iptables) or among the texts joined by spaces (nftables).
        for (size_t at = t.find("name="); at != std::string::npos && !out.rule_name; at = t.find("name=", at + 1)) {
            if (at > 0 && t[at - 1] != ' ') continue;
            const auto value = std::string_view(t).substr(at + 5);
            out.rule_name = std::string(value.substr(0, value.find(' ')));
        }
        std::string_view v = t;
        // "End of tier <tier>. Drop if no policies passed packet" (v3.30+), "Drop if no policies passed packet"
        // (before; "Reject" with FilterDenyAction=REJECT), "Start of tier <tier>" (v3.29+).
        if (const auto at = v.find("End of tier "); at != std::string_view::npos) {
            const auto tier = v.substr(at + 12);
            const auto dot = tier.find(". ");
            if (dot != std::string_view::npos && tier.ends_with(" if no policies passed packet")) {
                out.recognized = out.end_of_tier = true;
                out.tier = std::string(tier.substr(0, dot));
                out.versions.narrow(versions(Cni::Calico, "3.30"));
            }
        } else if (v.find("Drop if no policies passed packet") != std::string_view::npos ||
                   v.find("Reject if no policies passed packet") != std::string_view::npos) {
            out.recognized = out.end_of_tier = true;
            out.versions.narrow(versions(Cni::Calico, "3.26", "3.29"));
        }
        if (const auto at = v.find("Start of tier "); at != std::string_view::npos) {
            out.recognized = true;
            out.tier = std::string(trim(v.substr(at + 14)).substr(0, trim(v.substr(at + 14)).find(' ')));
            out.versions.narrow(versions(Cni::Calico, "3.29"));
        }
        if (v.find("Start of policies") != std::string_view::npos)
            out.versions.narrow(versions(Cni::Calico, "3.26", "3.27"));
        if (v.find("Return on verdict") != std::string_view::npos) out.versions.narrow(versions(Cni::Calico, "3.28"));
        // The first rule of a policy chain: "Policy <id name> ingress" (v3.26-v3.31), "<Kind> [<ns>/]<name>
        // ingress" (v3.32, felix/rules/policy.go). In nftables mode it may follow other texts.
        for (const std::string_view dir : {"ingress", "egress"}) {
            const std::string suffix = " " + std::string(dir);
            const auto end = v.rfind(suffix);
            if (end == std::string_view::npos || end + suffix.size() != v.size()) continue;
            auto head = v.substr(0, end);
            const auto name_at = head.rfind(' ');
            if (name_at == std::string_view::npos) continue;
            const auto name = head.substr(name_at + 1);
            head = head.substr(0, name_at);
            const auto kind = head.substr(head.rfind(' ') == std::string_view::npos ? 0 : head.rfind(' ') + 1);
            std::optional<PolicyRef> policy;
            if (kind == "Policy") {
                policy = parse_calico_policy_id(name);
                if (policy) policy->versions.narrow(versions(Cni::Calico, "3.26", "3.31"));
            } else {
                static constexpr std::pair<std::string_view, std::string_view> kKinds[] = {
                    {"KubernetesNetworkPolicy", "NetworkPolicy"},
                    {"NetworkPolicy", "CalicoNetworkPolicy"},
                    {"GlobalNetworkPolicy", "GlobalNetworkPolicy"},
                    {"KubernetesClusterNetworkPolicy", "ClusterNetworkPolicy"},
                    {"StagedNetworkPolicy", "StagedNetworkPolicy"},
                    {"StagedGlobalNetworkPolicy", "StagedGlobalNetworkPolicy"},
                    {"StagedKubernetesNetworkPolicy", "StagedKubernetesNetworkPolicy"},
                };
                for (const auto& [felix, ours] : kKinds)
                    if (kind == felix && !name.empty())
                        policy = PolicyRef{std::string(name), std::string(ours), versions(Cni::Calico, "3.32")};
            }
            if (!policy) continue;
            out.recognized = true;
            out.versions.narrow(policy->versions);
            out.policy = std::move(policy);
            out.direction = std::string(dir);
        }
    }
    return out;
}

std::optional<std::string> parse_k3s_nflog_prefix(std::string_view prefix) {
    const auto p = trim(prefix);
    constexpr std::string_view kWords = "drop by policy";
    if (!iequals_prefix(p, kWords) || p.size() == kWords.size() || p[kWords.size()] != ' ') return std::nullopt;
    const auto token = trim(p.substr(kWords.size()));
    if (!is_policy_token(token)) return std::nullopt;
    return std::string(token);
}

std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const ClusterState* state) {
    if (written.find('/') != std::string_view::npos) return std::string(written);
    if (written.empty()) return std::nullopt;
    if (!pod_namespace.empty()) return std::string(pod_namespace) + "/" + std::string(written);
    if (!state) return std::nullopt;
    const ClusterState& s = *state;
    auto& index = s.naming_index();
    index.build_names(s);
    const auto it = index.by_name.find(std::string(written));
    if (it == index.by_name.end() || it->second == kAmbiguous) return std::nullopt;
    return s.policies()[it->second].id();
}

bool policy_in_state(const ClusterState* state, std::string_view ns_name) {
    if (!state) return false;
    const auto slash = ns_name.find('/');
    if (slash == std::string_view::npos) return false;
    const auto ns = state->find_namespace(ns_name.substr(0, slash));
    if (!ns) return false;
    const auto name = ns_name.substr(slash + 1);
    const auto& list = state->namespaces()[*ns].policies;
    return std::any_of(list.begin(), list.end(), [&](uint32_t i) { return state->policies()[i].name == name; });
}

bool cluster_policy_in_state(const ClusterState* state, std::string_view name, std::string_view kind) {
    if (!state) return false;
    return std::any_of(state->cluster_policies().begin(), state->cluster_policies().end(),
                       [&](const auto& p) { return p.id() == name && kind == cluster_policy_kind_name(p.kind); });
}

std::string calico_cluster_policy_id(std::string_view kind, std::string_view name) {
    const std::string n(name);
    if (kind == "AdminNetworkPolicy") return "adminnetworkpolicy/kanp.adminnetworkpolicy." + n;
    if (kind == "BaselineAdminNetworkPolicy") return "baselineadminnetworkpolicy/kbanp.baselineadminnetworkpolicy." + n;
    return "kcnp/" + n;
}

const std::vector<std::string_view>& cni_versions(Cni cni) {
    static const std::vector<std::string_view> kKubeRouter = {"1.6", "2.0", "2.1", "2.2", "2.3",  "2.4", "2.5",
                                                              "2.6", "2.7", "2.8", "2.9", "2.10", "2.11"};
    static const std::vector<std::string_view> kCalico = {"3.26", "3.27", "3.28", "3.29", "3.30", "3.31", "3.32"};
    static const std::vector<std::string_view> kKnp = {"0.9", "1.0", "1.1"};
    switch (cni) {
        case Cni::KubeRouter:
            return kKubeRouter;
        case Cni::Calico:
            return kCalico;
        case Cni::KubeNetworkPolicies:
            break;
    }
    return kKnp;
}

VersionRange versions(Cni cni, std::string_view first, std::string_view last) {
    const auto& all = cni_versions(cni);
    const auto at = [&](std::string_view v) -> std::optional<uint8_t> {
        const auto it = std::find(all.begin(), all.end(), v);
        if (it == all.end()) return std::nullopt;
        return static_cast<uint8_t>(it - all.begin());
    };
    const auto lo = at(first);
    const auto hi = last.empty() ? std::optional<uint8_t>(UINT8_MAX) : at(last);
    if (!lo || !hi) return {};
    return VersionRange{*lo, *hi};
}

std::string version_guess(Cni cni, VersionRange range) {
    const auto& all = cni_versions(cni);
    if (range.any() || range.lo >= all.size()) return {};
    const auto v = [](std::string_view s) { return "v" + std::string(s); };
    if (range.hi >= all.size() - 1) return v(all[range.lo]) + "+";
    if (range.lo == range.hi) return v(all[range.lo]);
    return v(all[range.lo]) + "-" + v(all[range.hi]);
}

void prepare_naming_index(const std::shared_ptr<const ClusterState>& state) {
    if (!state) return;
    auto& index = state->naming_index();
    index.build_pods(*state);
    index.build_hashes(*state);
    index.build_names(*state);
}

}  // namespace npt::cni

#include "output/cni_naming.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

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
    unsigned digest(const EVP_MD* md, std::string_view a, std::string_view b, std::string_view c,
                    unsigned char* out) {
        unsigned len = 0;
        if (!ctx_ || EVP_DigestInit_ex(ctx_, md, nullptr) != 1 ||
            EVP_DigestUpdate(ctx_, a.data(), a.size()) != 1 ||
            EVP_DigestUpdate(ctx_, b.data(), b.size()) != 1 ||
            EVP_DigestUpdate(ctx_, c.data(), c.size()) != 1 || EVP_DigestFinal_ex(ctx_, out, &len) != 1)
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
    return base64url_nopad(d, n);
}

// ---- the reverse maps, once per state ---------------------------------------------------------

struct HashEntry {
    std::array<char, kHashKey> key;
    uint32_t policy;
    uint8_t form;  // index into calico_knp_ids()
};

}  // namespace

// The reverse maps of one state. Holds indexes into the state, never pointers into it; every hit is verified
// against the state anyway.
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
            hashes.reserve(s.policies().size() * 3);
            for (uint32_t i = 0; i < s.policies().size(); ++i) {
                const auto& p = s.policies()[i];
                const auto ids = calico_knp_ids(p.ns, p.name);
                for (uint8_t f = 0; f < ids.size(); ++f) {
                    const std::string b64 = sha256_b64(ids[f]);
                    if (b64.size() < kHashKey) continue;
                    HashEntry e{};
                    std::copy_n(b64.begin(), kHashKey, e.key.begin());
                    e.policy = i;
                    e.form = f;
                    hashes.push_back(e);
                }
            }
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

namespace {

// What the maps are computed from: every pod's and policy's namespace and name, in order. A state known only
// by its address (another may have been built where a freed one was) is checked against it before a miss in
// its maps is believed.
class Identity {
public:
    explicit Identity(const ClusterState& s) : pods_(s.pods().size()), policies_(s.policies().size()) {
        visit(s, [&](std::string_view v) {
            text_ += v;
            text_ += '\0';
            return true;
        });
    }
    bool matches(const ClusterState& s) const {
        if (s.pods().size() != pods_ || s.policies().size() != policies_) return false;
        size_t at = 0;
        const std::string_view text = text_;
        return visit(s,
                     [&](std::string_view v) {
                         if (text.size() < at + v.size() + 1 || text.substr(at, v.size()) != v ||
                             text[at + v.size()] != '\0')
                             return false;
                         at += v.size() + 1;
                         return true;
                     }) &&
               at == text.size();
    }

private:
    template <class F>
    static bool visit(const ClusterState& s, F&& f) {
        for (uint32_t i = 0; i < s.pods().size(); ++i)
            if (!f(s.pod_namespace(i)) || !f(s.str(s.pods()[i].name))) return false;
        for (const auto& p : s.policies())
            if (!f(p.ns) || !f(p.name)) return false;
        return true;
    }

    size_t pods_, policies_;
    std::string text_;
};

// The maps of a few recent states (the tail's current one, the previous one while flows explained against it
// are still attributed). A state registered with its shared_ptr is recognised by a weak_ptr: its address
// cannot be another state's while it lives. One known only by its address may be a new state built where a
// freed one was: a hit is verified against the state anyway, and a miss checks the entry's Identity before it
// is believed.
class IndexCache {
public:
    static IndexCache& instance() {
        static IndexCache cache;
        return cache;
    }

    struct Found {
        std::shared_ptr<NamingIndex> index;
        bool sure = false;  // the maps are this state's (registered, or just made or checked)
    };

    Found get(const ClusterState& s) {
        std::lock_guard lock(mutex_);
        if (auto* e = find(s)) return {e->index, e->registered};
        return {add(s, nullptr).index, true};
    }

    // The maps of this state for sure: the entry's Identity checked, and replaced when it is another state's.
    std::shared_ptr<NamingIndex> checked(const ClusterState& s) {
        std::lock_guard lock(mutex_);
        if (auto* e = find(s); e && (e->registered || e->identity->matches(s))) return e->index;
        drop(s);
        return add(s, nullptr).index;
    }

    std::shared_ptr<NamingIndex> enrol(const std::shared_ptr<const ClusterState>& s) {
        std::lock_guard lock(mutex_);
        if (auto* e = find(*s); e && (e->registered || e->identity->matches(*s))) {
            e->owner = s;
            e->registered = true;
            e->identity.reset();
            return e->index;
        }
        drop(*s);
        return add(*s, s).index;
    }

private:
    struct Entry {
        const ClusterState* state = nullptr;
        bool registered = false;
        std::weak_ptr<const ClusterState> owner;
        std::unique_ptr<Identity> identity;  // when not registered
        std::shared_ptr<NamingIndex> index;
    };

    // The entry at this state's address, made the most recent; a registered one whose state is gone is
    // dropped.
    Entry* find(const ClusterState& s) {
        for (size_t i = entries_.size(); i-- > 0;) {
            if (entries_[i].state != &s) continue;
            const auto at = entries_.begin() + static_cast<std::ptrdiff_t>(i);
            if (entries_[i].registered && entries_[i].owner.lock().get() != &s) {
                entries_.erase(at);
                return nullptr;
            }
            std::rotate(at, at + 1, entries_.end());
            return &entries_.back();
        }
        return nullptr;
    }

    void drop(const ClusterState& s) {
        std::erase_if(entries_, [&](const Entry& e) { return e.state == &s; });
    }

    Entry& add(const ClusterState& s, const std::shared_ptr<const ClusterState>& owner) {
        constexpr size_t kKeep = 4;
        if (entries_.size() >= kKeep) entries_.erase(entries_.begin());
        Entry e;
        e.state = &s;
        e.registered = owner != nullptr;
        e.owner = owner;
        if (!owner) e.identity = std::make_unique<Identity>(s);
        e.index = std::make_shared<NamingIndex>();
        entries_.push_back(std::move(e));
        return entries_.back();
    }

    std::mutex mutex_;
    std::vector<Entry> entries_;  // least recently used first
};

}  // namespace

NamingContext::NamingContext(const ClusterState* state) : state_(state) {}

NamingIndex* NamingContext::index() const {
    if (!state_) return nullptr;
    if (!index_) {
        auto found = IndexCache::instance().get(*state_);
        index_ = std::move(found.index);
        sure_ = found.sure;
    }
    return index_.get();
}

bool NamingContext::recheck() const {
    if (!state_ || sure_) return false;
    auto checked = IndexCache::instance().checked(*state_);
    sure_ = true;
    if (checked == index_) return false;
    index_ = std::move(checked);
    return true;
}

namespace {

// The pod behind a Calico interface name; every answer is checked against the state.
std::optional<std::string> pod_of_interface(std::string_view iface, const NamingContext& naming) {
    const auto key = parse_iface_key(iface);
    if (!key || !naming.state()) return std::nullopt;
    const ClusterState& s = *naming.state();
    std::string lowered(iface);
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    do {
        auto* index = naming.index();
        index->build_pods(s);
        const auto it =
            std::lower_bound(index->pods.begin(), index->pods.end(), std::pair{*key, uint32_t{0}});
        if (it == index->pods.end() || it->first != *key || it->second == kAmbiguous ||
            it->second >= s.pods().size())
            continue;
        const uint32_t pod = it->second;
        if (calico_interface(s.pod_namespace(pod), s.str(s.pods()[pod].name)) == lowered)
            return s.pod_id(pod);
    } while (naming.recheck());
    return std::nullopt;
}

// The NetworkPolicy whose id hashes to `hash` (the characters after "_"; 19 for iptables, more for longer
// limits).
std::optional<PolicyRef> policy_of_hash(std::string_view hash, const NamingContext& naming) {
    if (hash.size() < kHashKey || hash.size() > kSha256B64 || !naming.state()) return std::nullopt;
    const ClusterState& s = *naming.state();
    std::array<char, kHashKey> key{};
    std::copy_n(hash.begin(), kHashKey, key.begin());
    do {
        auto* index = naming.index();
        index->build_hashes(s);
        auto [lo, hi] =
            std::equal_range(index->hashes.begin(), index->hashes.end(), HashEntry{key, 0, 0},
                             [](const HashEntry& a, const HashEntry& b) { return a.key < b.key; });
        std::optional<uint32_t> found;
        bool ambiguous = false;
        for (auto it = lo; it != hi; ++it) {
            if (it->policy >= s.policies().size()) continue;
            const auto& p = s.policies()[it->policy];
            if (!sha256_b64(calico_knp_ids(p.ns, p.name)[it->form]).starts_with(hash)) continue;
            ambiguous |= found && *found != it->policy;  // two policies: do not guess
            found = it->policy;
        }
        if (found && !ambiguous) return PolicyRef{s.policies()[*found].id(), "NetworkPolicy"};
    } while (naming.recheck());
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

std::string base64url_nopad(const unsigned char* data, size_t size) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((size * 4 + 2) / 3);
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
        for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
    }
    if (size - i == 1) {
        const uint32_t v = uint32_t{data[i]} << 16;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
    } else if (size - i == 2) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
    }
    return out;
}

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
        segs.push_back(
            id.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    for (auto s : segs)
        if (s.empty()) return std::nullopt;
    const auto ns_name = [](std::string_view ns, std::string_view name) {
        return std::string(ns) + "/" + std::string(name);
    };
    // Current: <kind>/<namespace>/<name> or <kind>/<name>.
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
    };
    for (const auto& k : kKinds) {
        if (segs[0] != k.short_name) continue;
        if (k.namespaced && segs.size() == 3)
            return PolicyRef{ns_name(segs[1], segs[2]), std::string(k.kind)};
        if (!k.namespaced && segs.size() == 2) return PolicyRef{std::string(segs[1]), std::string(k.kind)};
    }
    constexpr std::string_view kKnp = "knp.default.";
    const auto last = segs.back();
    // v3.x "<ns>/knp.default.<name>", older "<tier>/<ns>/knp.default.<name>".
    if (last.starts_with(kKnp) && last.size() > kKnp.size() && (segs.size() == 2 || segs.size() == 3))
        return PolicyRef{ns_name(segs[segs.size() - 2], last.substr(kKnp.size())), "NetworkPolicy"};
    if (last.starts_with(kKnp)) return std::nullopt;
    switch (segs.size()) {
        case 1:  // v3.x GlobalNetworkPolicy, named with its tier: "default.deny-all"
            return PolicyRef{std::string(last), "GlobalNetworkPolicy"};
        case 2:  // older "<tier>/<tier>.<name>" GlobalNetworkPolicy, else v3.x "<ns>/<tier>.<name>"
                 // NetworkPolicy
            if (last.size() > segs[0].size() + 1 && last.starts_with(segs[0]) && last[segs[0].size()] == '.')
                return PolicyRef{std::string(last), "GlobalNetworkPolicy"};
            return PolicyRef{ns_name(segs[0], last), "CalicoNetworkPolicy"};
        case 3:  // older "<tier>/<ns>/<tier>.<name>"
            return PolicyRef{ns_name(segs[1], last), "CalicoNetworkPolicy"};
        default:
            return std::nullopt;
    }
}

CalicoChain parse_calico_chain(std::string_view chain, const ClusterState* state) {
    return parse_calico_chain(chain, NamingContext(state));
}

CalicoChain parse_calico_chain(std::string_view chain, const NamingContext& naming) {
    CalicoChain out;
    for (std::string_view table :
         {"filter-", "raw-", "mangle-", "nat-"}) {  // nftables mode: "<table>-cali-..."
        if (chain.starts_with(table) && chain.substr(table.size()).starts_with("cali-")) {
            chain.remove_prefix(table.size());
            break;
        }
    }
    if (!chain.starts_with("cali-")) return out;
    out.kind = CalicoChainKind::Other;
    struct Form {
        std::string_view prefix;
        CalicoChainKind kind;
        std::string_view direction;
    };
    static constexpr Form kForms[] = {
        {"cali-tw-", CalicoChainKind::Endpoint, "ingress"}, {"cali-fw-", CalicoChainKind::Endpoint, "egress"},
        {"cali-pri-", CalicoChainKind::Profile, "ingress"}, {"cali-pro-", CalicoChainKind::Profile, "egress"},
        {"cali-pi-", CalicoChainKind::Policy, "ingress"},   {"cali-po-", CalicoChainKind::Policy, "egress"},
    };
    for (const auto& f : kForms) {
        if (!chain.starts_with(f.prefix) || chain.size() == f.prefix.size()) continue;
        out.kind = f.kind;
        out.direction = std::string(f.direction);
        const auto rest = chain.substr(f.prefix.size());
        if (f.kind == CalicoChainKind::Endpoint) {
            out.pod = pod_of_interface(rest, naming).value_or("");
        } else if (f.kind == CalicoChainKind::Policy) {
            const auto hash = rest.substr(rest.empty() ? 0 : 1);
            const bool b64 = std::all_of(hash.begin(), hash.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
            });
            // Hashed: "_" + the hash filling the name to the limit (28 with iptables, more in nftables mode).
            if (rest.starts_with('_') && chain.size() >= kCalicoMaxChainName && hash.size() >= kHashKey &&
                b64) {
                out.hashed = true;
                out.policy = policy_of_hash(hash, naming);
            } else {
                out.policy = parse_calico_policy_id(rest);
            }
        }
        break;
    }
    return out;
}

KubeRouterComment parse_kube_router_comment(std::string_view comment) {
    KubeRouterComment out;
    const std::string_view c = trim(comment);
    const std::string lc = lower(c);
    // "... POD name:X namespace:Y ...", the direction from the words before it.
    if (const auto at = lc.find("pod name"); at != std::string::npos) {
        if (auto pod = take_name_and_namespace(c.substr(at + 3)); !pod.empty()) {
            out.recognized = true;
            out.pod = std::move(pod);
            const std::string_view before = trim(std::string_view(lc).substr(0, at));
            if (before.ends_with(" from") || before == "from")
                out.direction = "egress";
            else if (before.ends_with("destined for") || before.ends_with("destined to") || before.ends_with(" to"))
                out.direction = "ingress";
        }
    }
    // "run through nw policy <ns>/<name>" (older: "<name>"): the jump into the policy's chain.
    if (const auto at = lc.find("run through nw policy"); at != std::string::npos) {
        const auto token = trim(c.substr(at + std::string_view("run through nw policy").size()));
        if (is_policy_token(token)) {
            out.recognized = true;
            out.jump_to_policy = true;
            out.policy = std::string(token);
        }
    }
    // "rule to ACCEPT traffic from source pods to dest pods selected by policy name: X namespace Y".
    if (const auto at = lc.find("selected by policy name"); at != std::string::npos && out.policy.empty()) {
        if (auto policy = take_name_and_namespace(c.substr(at + std::string_view("selected by policy ").size()));
            !policy.empty()) {
            out.recognized = true;
            out.policy = std::move(policy);
        }
    }
    // 2026+: "<ns>/<name> policy", "<ns>/<pod> reject".
    if (const auto space = c.find(' ');
        space != std::string_view::npos && c.find(' ', space + 1) == std::string_view::npos) {
        const auto head = c.substr(0, space);
        const std::string word = lower(c.substr(space + 1));
        if (is_ns_name(head) && (word == "policy" || word == "reject")) {
            out.recognized = true;
            (word == "policy" ? out.policy : out.pod) = std::string(head);
        }
    }
    if (lc.starts_with("kube-router"))
        out.recognized = true;  // "kube-router netpol - <hash>": its jump rules
    return out;
}

std::optional<std::string> parse_k3s_nflog_prefix(std::string_view prefix) {
    const auto p = trim(prefix);
    constexpr std::string_view kWords = "drop by policy";
    if (!iequals_prefix(p, kWords) || p.size() == kWords.size() || p[kWords.size()] != ' ')
        return std::nullopt;
    const auto token = trim(p.substr(kWords.size()));
    if (!is_policy_token(token)) return std::nullopt;
    return std::string(token);
}

std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const ClusterState* state) {
    return resolve_policy_name(written, pod_namespace, NamingContext(state));
}

std::optional<std::string> resolve_policy_name(std::string_view written, std::string_view pod_namespace,
                                               const NamingContext& naming) {
    if (written.find('/') != std::string_view::npos) return std::string(written);
    if (written.empty()) return std::nullopt;
    if (!pod_namespace.empty()) return std::string(pod_namespace) + "/" + std::string(written);
    if (!naming.state()) return std::nullopt;
    const ClusterState& s = *naming.state();
    naming.recheck();  // a hit alone cannot tell the name is still unique: the maps must be this state's
    auto* index = naming.index();
    index->build_names(s);
    const auto it = index->by_name.find(std::string(written));
    if (it == index->by_name.end() || it->second == kAmbiguous || it->second >= s.policies().size() ||
        s.policies()[it->second].name != written)
        return std::nullopt;
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
    return std::any_of(list.begin(), list.end(),
                       [&](uint32_t i) { return state->policies()[i].name == name; });
}

void prepare_naming_index(const std::shared_ptr<const ClusterState>& state) {
    if (!state) return;
    auto index = IndexCache::instance().enrol(state);
    index->build_pods(*state);
    index->build_hashes(*state);
    index->build_names(*state);
}

}  // namespace npt::cni

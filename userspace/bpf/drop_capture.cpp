#include "drop_capture.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <set>
#include <unordered_map>

#include "common/ip_addr.hpp"
#include "drop.skel.h"
#include "drop_reasons.hpp"
#include "enforcement.hpp"
#include "kernel_symbolizer.hpp"
#include "map_walk.hpp"
#include "netns_inspector.hpp"

namespace npt::capture {
namespace {

// Frames between the program and the drop site (measured on 6.18): tp_btf/raw_tp see bpf_trace_runN,
// __bpf_trace_kfree_skb and the function holding the tracepoint; the perf path of the classic tracepoint
// starts at that function. Userspace also trims at the drop location, so a wrong guess on another kernel
// costs frames, not correctness.
constexpr uint32_t kStackSkipBtf = 3;
constexpr uint32_t kStackSkipTracepoint = 1;
// Longest a per-CPU flow cache slot holds drops back from the flows map (also bounded by quiet_gap_ns / 4).
constexpr uint64_t kFlushIntervalNs = 250'000'000;

struct SkeletonDeleter {
    void operator()(drop* s) const { drop__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingBufferDeleter {
    void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};
struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
};

// The flow cache map through mmap: CPU n's pages are elements n * NPT_FLOW_CACHE_PAGES and on. Userspace writes
// the settings of every page (before attach, and the generation after a purge) and reads the slots.
class FlowCacheView {
  public:
    FlowCacheView() = default;
    FlowCacheView(const FlowCacheView&) = delete;
    FlowCacheView& operator=(const FlowCacheView&) = delete;
    ~FlowCacheView() { unmap(); }

    // Returns "" or why the map could not be mapped.
    std::string map(int fd, uint32_t cpus) {
        unmap();
        const size_t bytes = sizeof(npt_flow_cache_page) * NPT_FLOW_CACHE_PAGES * cpus;
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            return std::strerror(errno);
        }
        pages_ = static_cast<npt_flow_cache_page*>(p);
        len_ = bytes;
        cpus_ = cpus;
        return "";
    }
    uint32_t cpus() const { return cpus_; }
    uint32_t generation() const { return generation_; }

    // Before attach: the program reads nothing else for a drop.
    void set_settings(const npt_hot_settings& hs) {
        generation_ = hs.generation;
        for (size_t i = 0; i < size_t(cpus_) * NPT_FLOW_CACHE_PAGES; ++i) {
            pages_[i].settings = hs;
        }
    }
    // After purging flows: every slot of an older generation stops counting for new drops.
    void bump_generation() {
        ++generation_;
        for (size_t i = 0; i < size_t(cpus_) * NPT_FLOW_CACHE_PAGES; ++i) {
            __atomic_store_n(&pages_[i].settings.generation, generation_, __ATOMIC_SEQ_CST);
        }
    }
    // Set `index` (< NPT_FLOW_CACHE_SETS) of a CPU, copied once (the program may be updating it).
    npt_flow_cache_set read(uint32_t cpu, uint32_t index) const {
        const npt_flow_cache_page& page =
            pages_[size_t(cpu) * NPT_FLOW_CACHE_PAGES + index / NPT_FLOW_CACHE_SETS_PER_PAGE];
        npt_flow_cache_set set;
        std::memcpy(&set, &page.sets[index % NPT_FLOW_CACHE_SETS_PER_PAGE], sizeof(set));
        return set;
    }

  private:
    void unmap() {
        if (pages_) {
            munmap(pages_, len_);
        }
        pages_ = nullptr;
        len_ = 0;
        cpus_ = 0;
    }
    npt_flow_cache_page* pages_ = nullptr;
    size_t len_ = 0;
    uint32_t cpus_ = 0;
    uint32_t generation_ = 0;
};

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::chrono::system_clock::time_point to_wall_clock(uint64_t mono_ns) {
    const uint64_t now_mono = clock_ns(CLOCK_MONOTONIC);
    const uint64_t now_real = clock_ns(CLOCK_REALTIME);
    const int64_t age = static_cast<int64_t>(now_mono) - static_cast<int64_t>(mono_ns);
    const int64_t wall = static_cast<int64_t>(now_real) - age;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(wall)));
}

uint32_t own_netns_inum() {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0) {
        return 0;
    }
    return static_cast<uint32_t>(st.st_ino);
}

// Mounts tracefs for the classic tracepoint fallback only, and unmounts what it mounted.
class TracefsMount {
  public:
    TracefsMount() = default;
    TracefsMount(const TracefsMount&) = delete;
    TracefsMount& operator=(const TracefsMount&) = delete;
    ~TracefsMount() {
        if (mounted_) {
            ::umount2("/sys/kernel/tracing", MNT_DETACH);
        }
    }
    Result<bool> ensure() {
        if (!tracefs_dir().empty()) {
            return true;
        }
        if (::mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
            return Error{"tracefs is not mounted and mounting it failed: " + errno_text(errno)};
        }
        mounted_ = true;
        return true;
    }

  private:
    bool mounted_ = false;
};

struct Attribution {
    Enforcement enforcement;
    std::string location_symbol;
    std::vector<std::string> stack;
};

// Visits every (key, value) of the flows map (batched where the kernel allows it: map_walk.hpp).
template <typename Fn>
void visit_flows(int fd, Fn&& fn) {
    walk_map<FlowKey, npt_flow_value>(fd, std::forward<Fn>(fn));
}

// Where libbpf's messages go: nowhere unless debug, then the caller's sink or stderr.
DebugSink debug_sink_of(const CaptureOptions& options) {
    if (!options.debug) {
        return {};
    }
    if (options.debug_sink) {
        return options.debug_sink;
    }
    return [](std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); };
}

FlowCounts to_counts(const npt_flow_value& v) {
    FlowCounts c;
    c.count = v.count;
    c.first_ns = v.first_ns;
    c.last_ns = v.last_ns;
    c.first_seen = to_wall_clock(v.first_ns);
    c.last_seen = to_wall_clock(v.last_ns);
    c.last_sport = v.last_sport;
    c.tcp_flags = v.tcp_flags;
    c.icmp_type = v.icmp_type;
    c.icmp_code = v.icmp_code;
    c.ct_state = std::string(ct_state_name(v.ct_state));
    return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Small value types

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    std::string s(text);
    IpAddress ip;
    if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = NPT_AF_INET;
        return ip;
    }
    if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
        ip.family = NPT_AF_INET6;
        return ip;
    }
    return std::nullopt;
}

IpAddress IpAddress::from_raw(uint8_t family, const uint8_t* bytes) {
    IpAddress ip;
    ip.family = family;
    if (family == NPT_AF_INET) {
        std::memcpy(ip.bytes.data(), bytes, 4);
    } else if (family == NPT_AF_INET6) {
        std::memcpy(ip.bytes.data(), bytes, NPT_ADDR_LEN);
    } else {
        ip.family = NPT_AF_UNSPEC;
    }
    return ip;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family == NPT_AF_INET) {
        ::inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
    } else if (family == NPT_AF_INET6) {
        ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
    }
    return buf;
}

std::string Endpoint::to_string() const {
    return IpAddr::bracket_host(ip.to_string()) + ":" + std::to_string(port);
}

size_t FlowKeyHash::operator()(const FlowKey& k) const {
    // FNV-1a over the bytes: the key is padding-free and zero-initialised on both sides.
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof(FlowKey); ++i) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return static_cast<size_t>(h);
}

std::string_view ct_state_name(uint8_t state) {
    switch (state) {
        case NPT_CT_NONE:
            return "none";
        case NPT_CT_NEW:
            return "new";
        case NPT_CT_ESTABLISHED:
            return "established";
        case NPT_CT_RELATED:
            return "related";
        case NPT_CT_REPLY:
            return "reply";
        case NPT_CT_RELATED_REPLY:
            return "related-reply";
        case NPT_CT_UNTRACKED:
            return "untracked";
        case NPT_CT_INVALID:
            return "invalid";
        case NPT_CT_UNAVAILABLE:
            return "unavailable";
        default:
            return "none";
    }
}

std::string protocol_name(uint8_t protocol) {
    switch (protocol) {
        case 1:
            return "icmp";
        case 6:
            return "tcp";
        case 17:
            return "udp";
        case 58:
            return "icmpv6";
        case 132:
            return "sctp";
        case 136:
            return "udplite";
        default:
            return std::to_string(protocol);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// DropCapture

struct DropCapture::Impl {
    CaptureOptions options;
    KernelFeatures features;
    ReasonTable reasons;
    ReasonSelection selection;
    // Functions whose frees are NFQUEUE verdict drops, kept with the policy drops (npt_hot_settings).
    std::vector<TextRange> queue_fns;
    // Loaded by open(), which returns only once it is (symbols()).
    std::optional<KernelSymbolizer> symbolizer;
    AttachMode mode = AttachMode::kTpBtf;
    uint32_t netns_inum = 0;
    uint64_t ns_per_tick = 0;  // 0: the BPF flow cache counts time in nanoseconds

    // Destroyed in reverse: ring buffer, link, skeleton, then tracefs.
    TracefsMount tracefs;
    std::unique_ptr<drop, SkeletonDeleter> skel;
    FlowCacheView cache;  // unmapped before the skeleton closes the map
    bpf_program* program = nullptr;
    std::unique_ptr<bpf_link, LinkDeleter> link;
    std::unique_ptr<ring_buffer, RingBufferDeleter> ring;
    std::unique_ptr<RuleAttribution> rules;  // null where fexit is refused or turned off
    std::string rules_status;

    std::set<IpAddress> watched;
    uint64_t deleted_flows = 0;
    // Attribution depends on the stack, the reason, the drop site and (iptables-legacy) the netns, not on the
    // addresses: flows dropped at the same place share one. Resumed events carry no stack: by flow key.
    struct SiteKey {
        std::vector<uint64_t> stack;
        uint32_t reason;
        uint32_t netns_inum;
        uint64_t location;
        bool operator==(const SiteKey&) const = default;
    };
    struct SiteKeyHash {
        size_t operator()(const SiteKey& k) const {
            uint64_t h = k.location ^ (uint64_t(k.reason) << 16) ^ k.netns_inum;
            for (uint64_t ip : k.stack) {
                h = (h ^ ip) * 0x9e3779b97f4a7c15ULL;
            }
            return std::hash<uint64_t>()(h);
        }
    };
    std::unordered_map<SiteKey, std::shared_ptr<const Attribution>, SiteKeyHash> site_attributions;
    std::unordered_map<FlowKey, std::shared_ptr<const Attribution>, FlowKeyHash> flow_attributions;
    NetnsInspector netns;

    const std::function<void(const DropEvent&)>* on_event = nullptr;
    int handled = 0;

    std::string try_load(AttachMode m);
    const KernelSymbolizer* symbols();
    Attribution attribute(const npt_drop_event& e, const std::string& reason, std::vector<uint64_t> ips);
    static std::vector<uint64_t> stack_of(const npt_drop_event& e);
    DropEvent decode(const npt_drop_event& e);
    int flows_fd() const { return bpf_map__fd(skel->maps.flows); }
    uint32_t generation() const { return cache.generation(); }
    std::vector<npt_flow_cache_slot> read_set(uint32_t index) const;
    void add_pending(const npt_flow_cache_slot& slot, npt_flow_value& v) const;
    std::vector<std::pair<FlowKey, npt_flow_value>> snapshot() const;
    uint64_t counter(uint32_t index) const;  // summed over the CPUs
    size_t delete_flows_outside(const std::set<IpAddress>& watched);
};

// Slots of one set (its ways on every CPU) holding drops back. A slot of an older generation still counts for
// a flow the map has: the program folds it into flows still present and drops it for purged ones.
std::vector<npt_flow_cache_slot> DropCapture::Impl::read_set(uint32_t index) const {
    std::vector<npt_flow_cache_slot> slots;
    for (uint32_t cpu = 0; cpu < cache.cpus(); ++cpu) {
        const npt_flow_cache_set set = cache.read(cpu, index);
        for (const auto& c : set.ways) {
            if (c.valid && c.pending != 0) {
                slots.push_back(c);
            }
        }
    }
    return slots;
}

// Adds the drops a CPU's slot still holds back to a flow's map value (read without stopping the programs: a
// slot being flushed at that instant can be missed or counted twice for that read).
void DropCapture::Impl::add_pending(const npt_flow_cache_slot& c, npt_flow_value& v) const {
    const uint64_t last_ns = c.base_ns + (c.last_tick - c.base_tick) * (ns_per_tick ? ns_per_tick : 1);
    if (v.count == 0) {
        v.first_ns = c.base_ns;
    }
    v.count += c.pending;
    if (last_ns >= v.last_ns) {
        v.last_ns = last_ns;
        v.last_sport = c.last_sport;
        v.icmp_type = c.icmp_type;
        v.icmp_code = c.icmp_code;
    }
    v.tcp_flags |= c.tcp_flags;
}

// The map's flows with the drops the CPUs' slots hold. A vector, not a map keyed by flow: at 65,536 flows the
// tail and the agent read it every second, and building a hash map of it was most of their CPU in a wide storm.
std::vector<std::pair<FlowKey, npt_flow_value>> DropCapture::Impl::snapshot() const {
    std::vector<std::pair<FlowKey, npt_flow_value>> flows;
    visit_flows(flows_fd(), [&](const FlowKey& k, const npt_flow_value& v) { flows.emplace_back(k, v); });
    // At most NPT_FLOW_CACHE_SETS * ways slots per CPU hold drops: index those, not the flows.
    std::unordered_map<FlowKey, std::vector<npt_flow_cache_slot>, FlowKeyHash> held;
    for (uint32_t i = 0; i < NPT_FLOW_CACHE_SETS; ++i) {
        for (const auto& c : read_set(i)) {
            held[c.key].push_back(c);
        }
    }
    if (held.empty()) {
        return flows;
    }
    for (auto& [k, v] : flows) {
        auto it = held.find(k);
        if (it == held.end()) {
            continue;
        }
        for (const auto& c : it->second) {
            add_pending(c, v);
        }
        held.erase(it);
    }
    const uint32_t gen = generation();
    for (const auto& [k, slots] : held) {
        npt_flow_value v{};
        bool any = false;
        for (const auto& c : slots) {
            if (c.generation == gen) {  // evicted while a slot held drops: the program puts it back
                add_pending(c, v);
                any = true;
            }
        }
        if (any) {
            flows.emplace_back(k, v);
        }
    }
    return flows;
}

size_t DropCapture::Impl::delete_flows_outside(const std::set<IpAddress>& keep) {
    std::vector<FlowKey> stale;
    const int fd = flows_fd();
    visit_flows(fd, [&](const FlowKey& k, const npt_flow_value&) {
        if (!keep.count(IpAddress::from_raw(k.family, k.saddr)) &&
            !keep.count(IpAddress::from_raw(k.family, k.daddr))) {
            stale.push_back(k);
        }
    });
    size_t deleted = 0;
    for (const auto& k : stale) {
        deleted += bpf_map_delete_elem(fd, &k) == 0;
    }
    return deleted;
}

// Opens, configures, loads and attaches the skeleton for one attach mode. Returns "" on success or why not.
std::string DropCapture::Impl::try_load(AttachMode m) {
    LibbpfLogCapture log(debug_sink_of(options));
    const auto fail = [&](const std::string& what, int err) {
        std::string msg = what + ": " + errno_text(err);
        if (!log.best_error().empty()) {
            msg += " (" + log.best_error() + ")";
        }
        return msg;
    };

    std::unique_ptr<drop, SkeletonDeleter> s(drop__open());
    if (!s) {
        return fail("opening the BPF object", errno);
    }
    bpf_program* progs[] = {s->progs.npt_kfree_skb_btf, s->progs.npt_kfree_skb_btf_compat, s->progs.npt_kfree_skb_raw,
                            s->progs.npt_kfree_skb_tp};
    bpf_program* chosen = nullptr;
    switch (m) {
        case AttachMode::kTpBtf:
            chosen = options.use_rdonly_cast && features.rdonly_cast && features.nf_conn_btf_id
                         ? s->progs.npt_kfree_skb_btf
                         : s->progs.npt_kfree_skb_btf_compat;
            break;
        case AttachMode::kRawTp:
            chosen = s->progs.npt_kfree_skb_raw;
            break;
        case AttachMode::kTracepoint:
            chosen = s->progs.npt_kfree_skb_tp;
            break;
    }
    for (bpf_program* p : progs) {
        bpf_program__set_autoload(p, p == chosen);
    }
    // The kernel copies map values into buffers sized from drop_event.h: refuse an object built from another
    // version of it (a stale skeleton) rather than let it overrun them.
    if (bpf_map__key_size(s->maps.flows) != sizeof(npt_flow_key) ||
        bpf_map__value_size(s->maps.flows) != sizeof(npt_flow_value) ||
        bpf_map__value_size(s->maps.flow_cache) != sizeof(npt_flow_cache_page) ||
        bpf_map__key_size(s->maps.watched_ips) != sizeof(npt_ip_key)) {
        return "the BPF object does not match include/netpol_trace/drop_event.h (stale build?)";
    }

    s->rodata->ip_filter_enabled = options.ip_filter;
    s->rodata->nf_conn_btf_id = chosen == s->progs.npt_kfree_skb_btf ? features.nf_conn_btf_id : 0;
    s->rodata->stack_skip = m == AttachMode::kTracepoint ? kStackSkipTracepoint : kStackSkipBtf;
    npt_hot_settings hs{};
    for (size_t i = 0; i < selection.bitmap.size(); ++i) {
        hs.reason_mask[i] = selection.bitmap[i];
    }
    hs.subsys_mask = selection.subsys_mask;
    hs.keep_high_reasons = selection.high_reasons;
    for (size_t i = 0; i < queue_fns.size() && i < NPT_QUEUE_FNS; ++i) {
        hs.queue_fn_start[i] = queue_fns[i].start;
        hs.queue_fn_len[i] = queue_fns[i].len;
    }
    // Without a reason argument nothing can be filtered by reason: keep everything, report "unknown".
    hs.keep_unknown_reason = 1;
    hs.quiet_gap_ns = options.quiet_gap_ns;
    // Flow cache timing: in jiffies when HZ is known (an inlined load), else in nanoseconds.
    const uint64_t flush_ns =
        options.quiet_gap_ns ? std::min<uint64_t>(kFlushIntervalNs, options.quiet_gap_ns / 4) : kFlushIntervalNs;
    hs.ns_per_tick = ns_per_tick;
    const uint64_t tick = ns_per_tick ? ns_per_tick : 1;
    hs.gap_ticks = std::max<uint64_t>(1, (options.quiet_gap_ns + tick - 1) / tick);
    hs.flush_ticks = std::max<uint64_t>(1, flush_ns / tick);
    if (int err = bpf_map__set_max_entries(s->maps.flows, std::max<uint32_t>(options.max_flows, 16)); err) {
        return fail("sizing the flow map", err);
    }
    const int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) {
        return fail("counting the possible CPUs", cpus);
    }
    if (int err = bpf_map__set_max_entries(s->maps.flow_cache, NPT_FLOW_CACHE_PAGES * uint32_t(cpus)); err) {
        return fail("sizing the flow cache", err);
    }

    if (m == AttachMode::kTracepoint) {
        if (auto mounted = tracefs.ensure(); !mounted) {
            return mounted.error().message;
        }
    }
    if (int err = drop__load(s.get()); err) {
        return fail("loading", err);
    }
    if (std::string e = cache.map(bpf_map__fd(s->maps.flow_cache), uint32_t(cpus)); !e.empty()) {
        return "cannot map the flow cache: " + e;
    }
    cache.set_settings(hs);
    std::unique_ptr<bpf_link, LinkDeleter> l(bpf_program__attach(chosen));
    if (!l) {
        return fail("attaching", errno);
    }
    skel = std::move(s);
    program = chosen;
    link = std::move(l);
    mode = m;
    return "";
}

const KernelSymbolizer* DropCapture::Impl::symbols() {
    return symbolizer ? &*symbolizer : nullptr;
}

std::vector<uint64_t> DropCapture::Impl::stack_of(const npt_drop_event& e) {
    const size_t n = std::min<size_t>(e.stack_len, NPT_STACK_DEPTH);
    std::vector<uint64_t> ips(e.stack, e.stack + n);
    ips.erase(std::find(ips.begin(), ips.end(), 0), ips.end());
    return ips;
}

// `ips`: the event's stack (stack_of), innermost first.
Attribution DropCapture::Impl::attribute(const npt_drop_event& e, const std::string& reason,
                                         std::vector<uint64_t> ips) {
    Attribution a;
    // Start at the drop site: the location is the return address into the function that freed the skb.
    auto at = std::find(ips.begin(), ips.end(), e.key.location);
    if (at != ips.end()) {
        ips.erase(ips.begin(), at);
    } else {
        ips.insert(ips.begin(), e.key.location);
    }
    const KernelSymbolizer* sym = symbols();
    std::vector<std::string_view> names;
    for (uint64_t ip : ips) {
        if (sym) {
            if (auto r = sym->resolve(ip)) {
                names.push_back(r->name);
            }
            a.stack.push_back(sym->describe(ip));
        }
    }
    a.location_symbol = sym ? sym->describe(e.key.location) : KernelSymbolizer().describe(e.key.location);
    NetnsHints hints;
    hints.ip_packet = e.key.family == NPT_AF_INET || e.key.family == NPT_AF_INET6;
    if (needs_legacy_probe(reason, names)) {
        hints.iptables_legacy_tables = netns.has_iptables_legacy_tables(e.key.netns_inum).value_or(false);
        if (!hints.iptables_legacy_tables) {
            hints.nftables_tables = netns.has_nftables_tables(e.key.netns_inum).value_or(false);
        }
    }
    a.enforcement = classify_enforcement(reason, names, hints);
    return a;
}

DropEvent DropCapture::Impl::decode(const npt_drop_event& e) {
    DropEvent out;
    out.kind = e.kind == NPT_EVENT_RESUMED ? EventKind::kResumed : EventKind::kNewFlow;
    out.key = e.key;
    out.src = IpAddress::from_raw(e.key.family, e.key.saddr);
    out.dst = IpAddress::from_raw(e.key.family, e.key.daddr);
    out.protocol = e.key.protocol;
    out.protocol_name = e.key.family == NPT_AF_UNSPEC ? "" : protocol_name(e.key.protocol);
    out.sport = e.sport;
    out.dport = e.key.dport;
    out.tcp_flags = e.tcp_flags;
    out.icmp_type = e.icmp_type;
    out.icmp_code = e.icmp_code;
    out.l3_proto = e.key.l3_proto;
    out.reason_value = e.key.reason;
    out.reason = reasons.name_of(e.key.reason);
    out.location = e.key.location;

    std::shared_ptr<const Attribution> attribution;
    if (e.kind == NPT_EVENT_NEW_FLOW) {
        SiteKey site{stack_of(e), e.key.reason, e.key.netns_inum, e.key.location};
        if (site_attributions.size() > 16384) {
            site_attributions.clear();  // pod churn across many netns: start over rather than grow
        }
        auto& cached = site_attributions[site];
        if (!cached) {
            cached = std::make_shared<const Attribution>(attribute(e, out.reason, site.stack));
        }
        attribution = cached;
        // Bounded: the LRU bounds live flows; forget everything when far beyond (resumed events then fall
        // back to the drop location).
        if (flow_attributions.size() > 2 * static_cast<size_t>(options.max_flows)) {
            flow_attributions.clear();
        }
        flow_attributions[e.key] = attribution;
    } else if (auto it = flow_attributions.find(e.key); it != flow_attributions.end()) {
        attribution = it->second;
    } else {
        attribution = std::make_shared<const Attribution>(attribute(e, out.reason, stack_of(e)));
        flow_attributions[e.key] = attribution;
    }
    out.enforcement = attribution->enforcement.point;
    out.backend = attribution->enforcement.backend;
    out.location_symbol = attribution->location_symbol;
    if (e.kind == NPT_EVENT_NEW_FLOW) {
        out.stack = attribution->stack;
    }

    if (rules && (e.key.family == NPT_AF_INET || e.key.family == NPT_AF_INET6)) {
        npt_rule_key rk{};
        rk.family = e.key.family;
        rk.protocol = e.key.protocol;
        rk.dport = e.key.dport;
        rk.netns_inum = e.key.netns_inum;
        std::memcpy(rk.saddr, e.key.saddr, sizeof(rk.saddr));
        std::memcpy(rk.daddr, e.key.daddr, sizeof(rk.daddr));
        out.rule = rules->lookup(rk);
        // The verdict names the backend where the stack could not (a drop freed by nf_hook_slow).
        if (out.rule && out.backend == "unknown") {
            out.backend = out.rule->backend;
        }
    }

    out.ct_state = std::string(ct_state_name(e.ct_state));
    if (e.orig_dst_family != NPT_AF_UNSPEC) {
        out.original_dst = Endpoint{IpAddress::from_raw(e.orig_dst_family, e.orig_daddr), e.orig_dport};
    }
    out.ifindex = e.dev_ifindex;
    out.ingress_ifindex = e.skb_iif;
    out.netns_inum = e.key.netns_inum;
    out.netns_from_socket = (e.key.path & NPT_PATH_NETNS_FROM_SOCK) != 0;
    if (out.ifindex != 0 && out.netns_inum != 0) {
        if (out.netns_inum == netns_inum) {
            char name[IF_NAMESIZE] = {};
            if (::if_indextoname(out.ifindex, name) != nullptr) {
                out.ifname = name;
            }
        } else {
            out.ifname = netns.interface_name(out.netns_inum, out.ifindex);
        }
    }
    out.count = e.count;
    out.first_ns = e.first_ns;
    out.last_ns = e.ts_ns;
    out.first_seen = to_wall_clock(e.first_ns);
    out.last_seen = to_wall_clock(e.ts_ns);
    return out;
}

DropCapture::DropCapture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DropCapture::~DropCapture() = default;

Result<std::unique_ptr<DropCapture>> DropCapture::open(const CaptureOptions& options) {
    auto impl = std::make_unique<Impl>();
    impl->options = options;

    if (::access(kVmlinuxBtfPath, R_OK) != 0) {
        return Error{std::string("kernel BTF not found at ") + kVmlinuxBtfPath +
                     ": this kernel was built without CONFIG_DEBUG_INFO_BTF"};
    }
    // Reading kallsyms takes ~0.3 s here and seconds in a slow guest or on a loaded node: it runs while BTF is
    // parsed, and open() returns only once it is done. A first event that waited for it instead would be read
    // seconds after its drop, and so would the witnesses joined to it (--rule-trace, --nflog-group).
    std::future<Result<KernelSymbolizer>> kallsyms;
    if (options.symbolize) {
        kallsyms = std::async(std::launch::async, [] { return KernelSymbolizer::from_kallsyms("/proc/kallsyms"); });
    }
    // Every return below waits for it (a future of std::async joins its thread when destroyed).
    std::unique_ptr<btf, BtfDeleter> vmlinux;
    {
        LibbpfLogCapture log(debug_sink_of(options));
        vmlinux.reset(btf__load_vmlinux_btf());
    }
    if (!vmlinux) {
        return Error{std::string("cannot parse kernel BTF at ") + kVmlinuxBtfPath + ": " + errno_text(errno)};
    }
    impl->features = probe_kernel_features(vmlinux.get());
    impl->reasons = ReasonTable::from_btf(vmlinux.get());
    vmlinux.reset();

    if (impl->reasons.empty() && !options.all_reasons && options.reasons.empty()) {
        // Before 5.17 drops carry no reason: the default set cannot be expressed, keep everything.
        impl->selection = *select_reasons(impl->reasons, {}, true);
    } else {
        auto sel = select_reasons(impl->reasons, options.reasons, options.all_reasons);
        if (!sel) {
            return sel.error();
        }
        impl->selection = std::move(*sel);
    }

    if (!impl->features.privileged) {
        return Error{"loading BPF needs root or CAP_BPF+CAP_PERFMON (run with sudo)"};
    }
    // NFQUEUE dataplanes (kube-network-policies) decide in userspace: the kernel frees what their listener
    // drops without a specific reason (NOT_SPECIFIED, in the verdict handler), which is a policy drop all the
    // same (measured on 6.18: nfqnl_reinject, in the listener's sendto; older kernels: nf_reinject). Without
    // kallsyms addresses those drops stay filtered out with the other NOT_SPECIFIED ones.
    const auto& kept = impl->selection.names;
    if (kallsyms.valid()) {
        if (auto sym = kallsyms.get()) {
            impl->symbolizer = std::move(*sym);
        }
    }
    if (!impl->selection.all && std::find(kept.begin(), kept.end(), "NETFILTER_DROP") != kept.end()) {
        const std::vector<std::string_view> queue_fns = {"nfqnl_reinject", "nf_reinject", "nfqnl_recv_verdict",
                                                         "nfqnl_recv_verdict_batch", "nf_queue"};
        if (impl->symbolizer) {
            impl->queue_fns = impl->symbolizer->function_ranges(queue_fns);
        } else if (auto found = find_function_ranges("/proc/kallsyms", queue_fns)) {
            impl->queue_fns = std::move(*found);
        }
    }
    impl->features.hz = detect_kernel_hz().value_or(0);
    impl->ns_per_tick = impl->features.hz ? 1'000'000'000ULL / impl->features.hz : 0;

    std::vector<AttachMode> modes =
        options.force_mode ? std::vector<AttachMode>{*options.force_mode} : impl->features.candidate_modes();
    std::string failures;
    bool loaded = false;
    for (AttachMode m : modes) {
        std::string why = impl->try_load(m);
        if (why.empty()) {
            loaded = true;
            break;
        }
        failures += (failures.empty() ? "" : "; ") + std::string(to_string(m)) + ": " + why;
    }
    if (!loaded) {
        if (failures.find("Operation not permitted") != std::string::npos && !has_bpf_privileges()) {
            return Error{"loading BPF needs root or CAP_BPF+CAP_PERFMON (run with sudo)"};
        }
        return Error{"cannot attach to skb:kfree_skb: " + failures};
    }

    impl->ring.reset(ring_buffer__new(
        bpf_map__fd(impl->skel->maps.events),
        [](void* ctx, void* data, size_t size) -> int {
            auto* self = static_cast<Impl*>(ctx);
            if (size < sizeof(npt_drop_event) || self->on_event == nullptr) {
                return 0;
            }
            npt_drop_event e;
            std::memcpy(&e, data, sizeof(e));
            (*self->on_event)(self->decode(e));
            ++self->handled;
            return 0;
        },
        impl.get(), nullptr));
    if (!impl->ring) {
        return Error{"cannot create the ring buffer reader: " + errno_text(errno)};
    }

    if (options.rule_attribution) {
        if (auto rules = RuleAttribution::open(debug_sink_of(options))) {
            impl->rules = std::move(*rules);
            impl->rules_status = impl->rules->description();
        } else {
            impl->rules_status = "off: " + rules.error().message;
        }
    } else {
        impl->rules_status = "off";
    }

    impl->netns_inum = own_netns_inum();
    return std::unique_ptr<DropCapture>(new DropCapture(std::move(impl)));
}

std::string DropCapture::attach_mode() const {
    return std::string(to_string(impl_->mode));
}

std::string DropCapture::program_name() const {
    return impl_->program ? bpf_program__name(impl_->program) : "";
}

std::string DropCapture::rule_attribution_status() const {
    return impl_->rules_status;
}

const KernelFeatures& DropCapture::features() const {
    return impl_->features;
}

std::vector<std::string> DropCapture::selected_reasons() const {
    return impl_->selection.names;
}

int DropCapture::program_fd() const {
    return impl_->program ? bpf_program__fd(impl_->program) : -1;
}

Result<bool> DropCapture::set_watched_ips(const std::vector<IpAddress>& ips) {
    if (!impl_->options.ip_filter) {
        return Error{"the IP filter is off (open the capture with ip_filter = true)"};
    }
    const int fd = bpf_map__fd(impl_->skel->maps.watched_ips);
    std::set<IpAddress> wanted;
    for (const auto& ip : ips) {
        if (ip.family == NPT_AF_INET || ip.family == NPT_AF_INET6) {
            wanted.insert(ip);
        }
    }
    const auto to_key = [](const IpAddress& ip) {
        npt_ip_key k{};
        k.family = ip.family;
        std::memcpy(k.addr, ip.bytes.data(), NPT_ADDR_LEN);
        return k;
    };
    for (const auto& ip : impl_->watched) {
        if (!wanted.count(ip)) {
            npt_ip_key k = to_key(ip);
            bpf_map_delete_elem(fd, &k);
        }
    }
    bool removed_any = false;
    for (const auto& ip : impl_->watched) {
        removed_any |= !wanted.count(ip);
    }
    const uint8_t one = 1;
    for (const auto& ip : wanted) {
        if (!impl_->watched.count(ip)) {
            npt_ip_key k = to_key(ip);
            if (bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0) {
                return Error{"cannot add " + ip.to_string() + " to the IP filter: " + errno_text(errno)};
            }
        }
    }
    impl_->watched = std::move(wanted);

    if (removed_any) {
        // Known flows skip the filter in the kernel: forget those no longer watched. Delete, then invalidate
        // the per-CPU slots (a stale slot only folds into flows still present), then delete what a slot
        // flushed back in between.
        impl_->deleted_flows += impl_->delete_flows_outside(impl_->watched);
        impl_->cache.bump_generation();
        impl_->deleted_flows += impl_->delete_flows_outside(impl_->watched);
    }
    return true;
}

int DropCapture::poll(int timeout_ms, const std::function<void(const DropEvent&)>& on_event) {
    // The program wakes the reader at most every 10 ms and submits the events in between silently: wait in
    // slices of at most 100 ms and read whatever is there after each, so no event waits for a later one.
    constexpr int kSliceMs = 100;
    impl_->on_event = &on_event;
    impl_->handled = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    int rc = 0;
    for (;;) {
        int slice = kSliceMs;
        if (timeout_ms >= 0) {
            // Rounded up: a remainder under 1 ms must still sleep, not spin on zero-timeout polls.
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            slice = static_cast<int>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
        }
        rc = ring_buffer__poll(impl_->ring.get(), slice);
        if (rc < 0 && rc != -EINTR) {
            break;
        }
        rc = ring_buffer__consume(impl_->ring.get());
        if (rc < 0 || impl_->handled > 0 || (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline)) {
            break;
        }
    }
    impl_->on_event = nullptr;
    if (rc < 0 && rc != -EINTR) {
        return rc;
    }
    return impl_->handled;
}

std::optional<DropEvent> DropCapture::recover_event(const FlowKey& key) {
    npt_flow_value v{};
    if (bpf_map_lookup_elem(impl_->flows_fd(), &key, &v) != 0) {
        return std::nullopt;
    }
    npt_drop_event e{};
    e.key = key;
    e.count = v.count;
    e.first_ns = v.first_ns;
    e.ts_ns = v.last_ns;
    e.sport = v.last_sport;
    e.kind = NPT_EVENT_NEW_FLOW;
    e.ct_state = v.ct_state;
    e.tcp_flags = v.tcp_flags;
    e.icmp_type = v.icmp_type;
    e.icmp_code = v.icmp_code;
    DropEvent out = impl_->decode(e);
    if (auto c = counts(key)) {
        out.count = c->count;  // with the drops still pending in the per-CPU cache
    }
    return out;
}

std::optional<FlowCounts> DropCapture::counts(const FlowKey& key) const {
    npt_flow_value v{};
    const bool in_map = bpf_map_lookup_elem(impl_->flows_fd(), &key, &v) == 0;
    if (!in_map) {
        v = npt_flow_value{};
    }
    bool in_slot = false;
    const uint32_t gen = impl_->generation();
    for (const auto& c : impl_->read_set(npt_flow_cache_set_of(&key))) {
        if (c.key == key && (in_map || c.generation == gen)) {
            impl_->add_pending(c, v);
            in_slot = true;
        }
    }
    if (!in_map && !in_slot) {
        return std::nullopt;
    }
    return to_counts(v);
}

void DropCapture::for_each_flow(const std::function<void(const FlowKey&, const FlowCounts&)>& fn) const {
    // A snapshot first: the callback may change the map (a deleted key restarts get_next_key).
    for (const auto& [k, v] : impl_->snapshot()) {
        fn(k, to_counts(v));
    }
}

uint64_t DropCapture::Impl::counter(uint32_t index) const {
    const int ncpus = libbpf_num_possible_cpus();
    uint64_t total = 0;
    if (ncpus > 0) {
        std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
        if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &index, per_cpu.data()) == 0) {
            for (uint64_t v : per_cpu) {
                total += v;
            }
        }
    }
    return total;
}

uint64_t DropCapture::lost_events() const {
    return impl_->counter(NPT_CTR_LOST_EVENTS);
}

CaptureStats DropCapture::stats() const {
    CaptureStats s;
    uint64_t totals[NPT_CTR_MAX] = {};
    for (uint32_t i = 0; i < NPT_CTR_MAX; ++i) {
        totals[i] = impl_->counter(i);
    }
    s.lost_events = totals[NPT_CTR_LOST_EVENTS];
    s.flows_inserted = totals[NPT_CTR_FLOWS_INSERTED];
    s.events = totals[NPT_CTR_EVENTS];
    s.update_errors = totals[NPT_CTR_UPDATE_ERRORS];
    s.stack_errors = totals[NPT_CTR_STACK_ERRORS];
    s.ip_filtered = totals[NPT_CTR_IP_FILTERED];

    visit_flows(impl_->flows_fd(), [&](const FlowKey&, const npt_flow_value&) { ++s.flows_tracked; });
    // Every flow ever inserted is either still there, deleted by us, or was evicted by the LRU.
    const uint64_t accounted = s.flows_tracked + impl_->deleted_flows;
    s.lru_evictions = s.flows_inserted > accounted ? s.flows_inserted - accounted : 0;
    return s;
}

}  // namespace npt::capture

bool operator==(const npt_flow_key& a, const npt_flow_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}

#include "drop_capture.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <future>
#include <set>

#include "drop.skel.h"
#include "drop_decoder.hpp"
#include "drop_reasons.hpp"
#include "enforcement.hpp"
#include "flow_cache.hpp"
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

std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
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

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// DropCapture

struct DropCapture::Impl {
    CaptureOptions options;
    KernelFeatures features;
    ReasonTable reasons;
    ReasonSelection selection;
    // Functions whose frees are NFQUEUE verdict drops, kept with the policy drops (npt_hot_settings).
    std::vector<TextRange> queue_fns;
    // Loaded by open(), which returns only once it is.
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

    std::set<IpAddr> watched;
    uint64_t deleted_flows = 0;
    NetnsInspector netns;
    std::optional<DropDecoder> decoder;  // set by open() once the symbols, the rules and the netns are known
    const std::function<void(const DropEvent&)>* on_event = nullptr;
    int handled = 0;

    Result<bool> try_load(AttachMode m);
    int flows_fd() const { return bpf_map__fd(skel->maps.flows); }
    std::vector<std::pair<FlowKey, npt_flow_value>> snapshot() const;
    uint64_t counter(uint32_t index) const;  // summed over the CPUs
    size_t delete_flows_outside(const std::set<IpAddr>& watched);
};

// The map's flows with the drops the CPUs' slots still hold back.
std::vector<std::pair<FlowKey, npt_flow_value>> DropCapture::Impl::snapshot() const {
    std::vector<std::pair<FlowKey, npt_flow_value>> flows;
    visit_flows(flows_fd(), [&](const FlowKey& k, const npt_flow_value& v) { flows.emplace_back(k, v); });
    return cache.merge(std::move(flows));
}

size_t DropCapture::Impl::delete_flows_outside(const std::set<IpAddr>& keep) {
    std::vector<FlowKey> stale;
    const int fd = flows_fd();
    visit_flows(fd, [&](const FlowKey& k, const npt_flow_value&) {
        const auto watched = [&](const uint8_t* bytes) {
            const auto ip = ip_of(k.family, bytes);
            return ip && keep.count(*ip);
        };
        if (!watched(k.saddr) && !watched(k.daddr)) {
            stale.push_back(k);
        }
    });
    size_t deleted = 0;
    for (const auto& k : stale) {
        deleted += bpf_map_delete_elem(fd, &k) == 0;
    }
    return deleted;
}

// Opens, configures, loads and attaches the skeleton for one attach mode; the error says why it did not.
Result<bool> DropCapture::Impl::try_load(AttachMode m) {
    LibbpfLogCapture log(debug_sink_of(options));
    const auto fail = [&](const std::string& what, int err) {
        std::string msg = what + ": " + errno_text(err);
        if (!log.best_error().empty()) {
            msg += " (" + log.best_error() + ")";
        }
        return Error{msg};
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
        return Error{"the BPF object does not match include/netpol_trace/drop_event.h (stale build?)"};
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
            return mounted.error();
        }
    }
    if (int err = drop__load(s.get()); err) {
        return fail("loading", err);
    }
    if (auto mapped = cache.map(bpf_map__fd(s->maps.flow_cache), uint32_t(cpus)); !mapped) {
        return mapped.error();
    }
    cache.set_ns_per_tick(ns_per_tick);
    cache.set_settings(hs);
    std::unique_ptr<bpf_link, LinkDeleter> l(bpf_program__attach(chosen));
    if (!l) {
        return fail("attaching", errno);
    }
    skel = std::move(s);
    program = chosen;
    link = std::move(l);
    mode = m;
    return true;
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
        auto attached = impl->try_load(m);
        if (attached) {
            loaded = true;
            break;
        }
        failures += (failures.empty() ? "" : "; ") + std::string(to_string(m)) + ": " + attached.error().message;
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
            (*self->on_event)(self->decoder->decode(e));
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
    DropDecoder::Sources sources;
    sources.reasons = &impl->reasons;
    sources.symbols = impl->symbolizer ? &*impl->symbolizer : nullptr;
    sources.rules = impl->rules.get();
    sources.netns = &impl->netns;
    sources.own_netns_inum = impl->netns_inum;
    sources.max_flows = options.max_flows;
    impl->decoder.emplace(sources);
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

Result<bool> DropCapture::set_watched_ips(const std::vector<IpAddr>& ips) {
    if (!impl_->options.ip_filter) {
        return Error{"the IP filter is off (open the capture with ip_filter = true)"};
    }
    const int fd = bpf_map__fd(impl_->skel->maps.watched_ips);
    const std::set<IpAddr> wanted(ips.begin(), ips.end());
    const auto to_key = [](const IpAddr& ip) {
        npt_ip_key k{};
        k.family = npt_family_of(ip);
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
                return Error{"cannot add " + ip.str() + " to the IP filter: " + errno_text(errno)};
            }
        }
    }
    impl_->watched = wanted;

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
    DropEvent out = impl_->decoder->decode(DropDecoder::record_of(key, v));
    if (auto c = counts(key)) {
        out.count = c->count;  // with the drops still pending in the per-CPU cache
    }
    return out;
}

std::optional<FlowCounts> DropCapture::counts(const FlowKey& key) const {
    npt_flow_value v{};
    std::optional<npt_flow_value> in_map;
    if (bpf_map_lookup_elem(impl_->flows_fd(), &key, &v) == 0) {
        in_map = v;
    }
    auto merged = impl_->cache.value_of(key, in_map);
    if (!merged) {
        return std::nullopt;
    }
    return to_counts(*merged);
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

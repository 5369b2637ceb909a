// Kernel drop capture: loads bpf/drop.bpf.c on skb:kfree_skb, reads one event per new (or resumed) flow from
// the ring buffer and per-flow counts from the in-kernel LRU map. This file owns the skeleton's lifetime; the
// events are decoded by drop_decoder.hpp and the per-CPU flow cache is read through flow_cache.hpp.
//
//   auto capture = npt::capture::DropCapture::open({});
//   if (!capture) { std::cerr << "netpol-trace: " << capture.error().message << "\n"; return 1; }
//   while (running) (*capture)->poll(500, [](const npt::capture::DropEvent& e) { ... });
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "drop_event.hpp"
#include "kernel_features.hpp"
#include "libbpf_log.hpp"
#include "netpol_trace/drop_event.h"
#include "rule_attribution.hpp"

namespace npt::capture {

struct CaptureOptions {
    // Drop reasons to keep: names with or without SKB_DROP_REASON_, any case; empty: NETFILTER_DROP,
    // TC_INGRESS, TC_EGRESS, BPF_CGROUP_EGRESS and XDP*; "all" (or all_reasons) keeps every reason.
    std::vector<std::string> reasons;
    bool all_reasons = false;
    bool debug = false;  // libbpf messages to debug_sink (stderr when debug_sink is empty)
    DebugSink debug_sink;
    bool ip_filter = false;                 // keep only drops whose source or destination is in set_watched_ips()
    uint64_t quiet_gap_ns = 1'000'000'000;  // a flow quiet this long emits a "resumed" event; 0: never
    uint32_t max_flows = 65536;             // LRU size
    std::optional<AttachMode> force_mode;   // tests and troubleshooting; default: best that loads
    bool symbolize = true;                  // read /proc/kallsyms for enforcement points and stacks
    bool use_rdonly_cast = true;            // tp_btf: read conntrack via bpf_rdonly_cast when the kernel has it
    // Name the netfilter rule of DROP verdicts with fexit programs (rule_attribution.hpp) where the kernel
    // allows them; silently off where it does not.
    bool rule_attribution = true;
};

class DropCapture {
  public:
    // Probes, loads and attaches. The error is one line, e.g. "loading BPF needs root or CAP_BPF+CAP_PERFMON (run
    // with sudo)".
    static Result<std::unique_ptr<DropCapture>> open(const CaptureOptions& options);
    ~DropCapture();
    DropCapture(const DropCapture&) = delete;
    DropCapture& operator=(const DropCapture&) = delete;

    std::string attach_mode() const;   // "tp_btf", "raw_tp", "tracepoint"
    std::string program_name() const;  // the loaded program, e.g. "npt_kfree_skb_btf"
    // "fexit on nft_do_chain, ..." when rule attribution runs, else "off: <why>".
    std::string rule_attribution_status() const;
    const KernelFeatures& features() const;
    std::vector<std::string> selected_reasons() const;

    // Replaces the IP filter set (adds and removes the difference) and forgets flows no longer matching it.
    // An error when the capture was opened without ip_filter or the kernel refused an address.
    Result<bool> set_watched_ips(const std::vector<IpAddr>& ips);

    // Returns once events were handled (on_event called for each) or timeout_ms passed (-1: no limit).
    // Returns the number handled, or -errno. The kernel wakes the reader at most every 10 ms (a wakeup costs
    // µs per event in a storm); the rest is picked up in 100 ms slices, so an event is seen within ~100 ms.
    int poll(int timeout_ms, const std::function<void(const DropEvent&)>& on_event);

    // A new-flow event rebuilt from the kernel's flow map, for a flow whose event the full ring buffer lost:
    // no stack (the enforcement point comes from the drop location), no interface, no pre-DNAT destination.
    std::optional<DropEvent> recover_event(const FlowKey& key);
    std::optional<FlowCounts> counts(const FlowKey& key) const;
    void for_each_flow(const std::function<void(const FlowKey&, const FlowCounts&)>& fn) const;
    CaptureStats stats() const;    // walks the flow map (flows_tracked): not for every second at 65,536 flows
    uint64_t lost_events() const;  // CaptureStats::lost_events alone: counters only

    // File descriptor of the loaded program (for BPF_ENABLE_STATS figures), -1 if none.
    int program_fd() const;

    struct Impl;

  private:
    explicit DropCapture(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace npt::capture

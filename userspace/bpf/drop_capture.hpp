// Kernel drop capture: loads bpf/drop.bpf.c on skb:kfree_skb, reads one event per new (or resumed) flow from
// the ring buffer and per-flow counts from the in-kernel LRU map.
//
//   std::string error;
//   auto capture = npt::capture::DropCapture::open({}, &error);
//   if (!capture) { std::cerr << "netpol-trace: " << error << "\n"; return 1; }
//   while (running) capture->poll(500, [](const npt::capture::DropEvent& e) { ... });
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "kernel_features.hpp"
#include "libbpf_log.hpp"
#include "netpol_trace/drop_event.h"
#include "rule_attribution.hpp"

namespace npt::capture {

struct IpAddress {
    uint8_t family = NPT_AF_UNSPEC;             // NPT_AF_INET or NPT_AF_INET6
    std::array<uint8_t, NPT_ADDR_LEN> bytes{};  // network order; IPv4 in the first 4 bytes

    static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress from_raw(uint8_t family, const uint8_t* bytes);
    std::string to_string() const;  // "" for NPT_AF_UNSPEC
    bool operator==(const IpAddress&) const = default;
    auto operator<=>(const IpAddress&) const = default;
};

struct Endpoint {
    IpAddress ip;
    uint16_t port = 0;
    std::string to_string() const;  // "10.96.0.10:53", "[fd00::1]:80"
    bool operator==(const Endpoint&) const = default;
};

// The C key itself: what the kernel aggregates on (see include/netpol_trace/drop_event.h). Equality is
// bytewise (operator== below, at global scope so argument-dependent lookup finds it for the C struct).
using FlowKey = npt_flow_key;
struct FlowKeyHash {
    size_t operator()(const FlowKey& k) const;
};

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

enum class EventKind { kNewFlow, kResumed };

struct DropEvent {
    EventKind kind = EventKind::kNewFlow;
    FlowKey key{};  // pass to DropCapture::counts()

    IpAddress src;
    IpAddress dst;
    uint8_t protocol = 0;       // IPPROTO_*
    std::string protocol_name;  // "tcp", "udp", "icmp", "icmpv6", "sctp", or the number
    uint16_t sport = 0;         // last seen
    uint16_t dport = 0;
    uint8_t tcp_flags = 0;  // of this drop
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
    uint16_t l3_proto = 0;  // ethertype; the only L3 information when src.family is NPT_AF_UNSPEC

    uint32_t reason_value = 0;
    std::string reason;       // "NETFILTER_DROP"; "unknown" when the kernel passes no reason
    std::string enforcement;  // "netfilter/FORWARD", "tc/ingress", ... (see enforcement.hpp)
    std::string backend;      // "nftables", "iptables-legacy", "tc", "cgroup", "xdp", "unknown"
    uint64_t location = 0;
    std::string location_symbol;     // "nf_hook_slow+0x9e" ("0x..." without kallsyms)
    std::vector<std::string> stack;  // drop site first; new flows only, empty without kallsyms

    std::string ct_state;  // "new", "established", "related", "reply", "related-reply", "untracked", "none",
                           // "unavailable" ("none" also covers packets conntrack found invalid)
    std::optional<Endpoint> original_dst;  // pre-DNAT destination (the Service VIP:port) when conntrack DNATed

    uint32_t ifindex = 0;          // skb->dev at the drop (bridged FORWARD: the egress port)
    std::string ifname;            // only when the drop's netns is this process's netns
    uint32_t ingress_ifindex = 0;  // skb_iif
    uint32_t netns_inum = 0;       // of skb->dev, or of the socket when there is no device
    bool netns_from_socket = false;

    std::optional<RuleVerdict> rule;  // the netfilter rule that returned the DROP (rule attribution on)

    uint64_t count = 0;     // drops of this flow so far
    uint64_t first_ns = 0;  // kernel monotonic clock
    uint64_t last_ns = 0;
    std::chrono::system_clock::time_point first_seen;
    std::chrono::system_clock::time_point last_seen;
};

struct FlowCounts {
    uint64_t count = 0;
    uint64_t first_ns = 0;
    uint64_t last_ns = 0;
    std::chrono::system_clock::time_point first_seen;
    std::chrono::system_clock::time_point last_seen;
    uint16_t last_sport = 0;
    uint8_t tcp_flags = 0;  // OR of all dropped segments
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
    std::string ct_state;  // at first sight
};

struct CaptureStats {
    uint64_t lost_events = 0;    // ring buffer full (flows still counted in the map)
    uint64_t lru_evictions = 0;  // flows inserted - flows present - flows deleted by userspace
    uint64_t flows_tracked = 0;  // flows in the LRU now
    uint64_t flows_inserted = 0;
    uint64_t events = 0;        // events submitted by the kernel
    uint64_t stack_errors = 0;  // new flows without a stack
    uint64_t update_errors = 0;
    uint64_t ip_filtered = 0;  // drops of new, non-watched flows skipped by the IP filter
};

class DropCapture {
  public:
    // Probes, loads and attaches. On failure returns null and sets `error` to one line, e.g.
    // "loading BPF needs root or CAP_BPF+CAP_PERFMON (run with sudo)".
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
    // Returns false with `error` set when the capture was opened without ip_filter.
    Result<bool> set_watched_ips(const std::vector<IpAddress>& ips);

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

// "new", "established", ... for an enum npt_ct_state value.
std::string_view ct_state_name(uint8_t state);
std::string protocol_name(uint8_t protocol);

}  // namespace npt::capture

bool operator==(const npt_flow_key& a, const npt_flow_key& b);

// What the drop capture reports, as plain values: the addresses, the flow key the kernel aggregates on, one drop
// event per new (or resumed) flow and a flow's counts. No libbpf here: the decoder and its tests, the flow tracker
// and the renderers use these types without the skeleton.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_addr.hpp"
#include "netpol_trace/drop_event.h"
#include "rule_attribution.hpp"

namespace npt::capture {

// An address of the kernel's records (family NPT_AF_INET or NPT_AF_INET6, bytes in network order) as the
// project's address type; nullopt for NPT_AF_UNSPEC (a packet that is not IP).
std::optional<IpAddr> ip_of(uint8_t family, const uint8_t* bytes);
// The other way, for the kernel's keys.
uint8_t npt_family_of(const IpAddr& ip);

struct Endpoint {
    IpAddr ip;
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

enum class EventKind { kNewFlow, kResumed };

struct DropEvent {
    EventKind kind = EventKind::kNewFlow;
    FlowKey key{};  // pass to DropCapture::counts()

    std::optional<IpAddr> src;  // nullopt: not an IP packet (l3_proto says what it was)
    std::optional<IpAddr> dst;
    uint8_t protocol = 0;       // IPPROTO_*
    std::string protocol_name;  // "tcp", "udp", "icmp", "icmpv6", "sctp", or the number
    uint16_t sport = 0;         // last seen
    uint16_t dport = 0;
    uint8_t tcp_flags = 0;  // of this drop
    uint8_t icmp_type = 0;
    uint8_t icmp_code = 0;
    uint16_t l3_proto = 0;  // ethertype; the only L3 information when src is nullopt

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

// "new", "established", ... for an enum npt_ct_state value.
std::string_view ct_state_name(uint8_t state);
std::string protocol_name(uint8_t protocol);

// Kernel monotonic nanoseconds (what BPF timestamps are) as wall-clock time, through the clocks' offset now.
std::chrono::system_clock::time_point to_wall_clock(uint64_t mono_ns);

// A flow map value as counts (wall-clock times, state name).
FlowCounts to_counts(const npt_flow_value& v);

}  // namespace npt::capture

bool operator==(const npt_flow_key& a, const npt_flow_key& b);

// A dropped flow as the tail reports it: what the kernel saw (reason, enforcement point, conntrack
// state, counts) joined with the engine's explanation of the flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "output/json_output.hpp"
#include "policy/explanation.hpp"

namespace npt {

struct OriginalDestination {
    IpAddr ip;
    uint16_t port = 0;
    std::optional<std::string> service;  // "ns/name" when the state knows the VIP
};

// The netfilter rule that returned the DROP verdict: the JSON `rule` object.
struct DropRule {
    std::string table;
    std::string chain;
    std::optional<uint64_t> handle;       // nftables rule handle
    std::optional<std::string> comment;
    std::optional<std::string> cni;       // "kube-router", "calico": from the chain's naming convention
    std::optional<std::string> policy;    // "ns/name", when the comment names it (kube-router)
};

// A DropRule with cni and policy filled where the chain and comment follow a CNI's conventions. Pure.
DropRule make_drop_rule(std::string table, std::string chain, std::optional<uint64_t> handle,
                        std::optional<std::string> comment);

struct DropRecord {
    std::chrono::system_clock::time_point first_seen;
    std::chrono::system_clock::time_point last_seen;
    std::string node;
    std::string reason;       // kernel enum name without SKB_DROP_REASON_, e.g. NETFILTER_DROP
    std::string enforcement;  // netfilter/FORWARD, tc/ingress, ...
    std::string backend;      // nftables, iptables-legacy, tc, cgroup, xdp, unknown
    std::string ct_state;     // new, established, related, reply, untracked, none, ...
    std::string interface;    // ingress interface name (or ifindex) where known
    std::string protocol_name;  // as the kernel saw it: TCP, UDP, SCTP, ICMP, ...
    uint64_t count = 0;
    uint16_t sport = 0;
    uint8_t tcp_flags = 0;
    std::optional<std::pair<uint8_t, uint8_t>> icmp;  // type, code
    std::optional<OriginalDestination> original_dst;
    std::optional<DropRule> rule;  // known where the kernel allows rule attribution (fexit)
    bool attributed = false;  // false when no cluster state was available
    Explanation explanation;
};

// Adds the tail's verdict on a drop to its explanation: NOT_EXPLAINED_BY_POLICY when the engine
// allows what the kernel dropped (stale connection, CNI lag, a drop that is not a policy's), and
// SERVICE_VIP_DNAT when conntrack shows the client dialled a Service.
void annotate_drop(DropRecord& record);

std::string format_time(std::chrono::system_clock::time_point t);  // RFC 3339, UTC, milliseconds

// The JSON line: explain's fields plus time, node, reason, enforcement, ct_state, count,
// interface (and event: "drop", "resumed" or "summary").
Json drop_json(const DropRecord& record, const char* event);

// One plain text line (non-TTY tail output), then indented reasons when denied.
void write_drop_text(std::ostream& out, const DropRecord& record, bool with_details);

}  // namespace npt

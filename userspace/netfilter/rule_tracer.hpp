// --rule-trace: which nftables rule dropped a packet, from the kernel's own trace messages.
//
// The tracer owns a table (`inet netpol_trace_<pid>`, flags owner: the kernel deletes it when the
// process's netlink socket closes, so a killed tail leaves nothing behind) with a prerouting and an output
// chain at priority -350 that set `meta nftrace` on packets from or to the watched pod IPs, under one
// shared rate limit. The kernel then reports every rule those packets meet (NFNLGRP_NFTRACE); the tracer
// follows each packet's trace to its DROP verdict and asks the kernel for that rule (NFT_MSG_GETRULE by
// handle) to read its comment. Works for nftables and iptables-nft rulesets; iptables-legacy (x_tables)
// and tc/eBPF dataplanes are not traced by nftables and produce no verdicts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/ip_addr.hpp"
#include "netfilter/packet_tuple.hpp"

namespace npt::netfilter {

// Every comment of one rule, in rule order (nft_rule_comments): empty when it has none.
using RuleComments = std::vector<std::string>;

// A chain the packet jumped to and that returned before the drop (kube-router evaluates each policy in a
// chain of its own that marks and returns, and rejects afterwards in the pod's firewall chain).
struct ReturnedChain {
    std::string chain;
    RuleComments jump_comments;  // of the jump/goto rule that entered it

    friend bool operator==(const ReturnedChain&, const ReturnedChain&) = default;
};

// The rule (or base chain policy) that returned DROP for one traced packet.
struct TracedDrop {
    std::string family;  // "ip", "ip6", "inet", "bridge", "netdev", "arp"
    std::string table;
    std::string chain;
    std::optional<uint64_t> handle;           // null when the base chain's policy dropped it
    RuleComments comments;                    // native nft comment (rule userdata), then iptables-nft's `-m comment`s
    bool chain_policy = false;                // the chain's policy dropped it (no rule)
    std::vector<std::string> path;            // chains the packet went through in that table, entry first, drop last
    std::vector<RuleComments> jump_comments;  // of the jump/goto rules that led there, same order as path
                                              // (jump_comments[i] entered path[i + 1])
    std::vector<ReturnedChain> returned;      // chains left again before the drop, in return order (at most 16)
    uint32_t iif = 0;
    uint32_t oif = 0;
};

struct RuleTracerOptions {
    uint32_t rate_per_second = 100;  // traced packets per second, for all watched pods together
    std::string table;               // default: netpol_trace_<pid>
};

class RuleTracer {
  public:
    // Installs the trace table (tracing every packet until set_watched() narrows it) and subscribes to
    // trace messages. Errors are one line: no CAP_NET_ADMIN, nf_tables missing, ...
    static Result<std::unique_ptr<RuleTracer>> open(const RuleTracerOptions& options);
    ~RuleTracer();  // deletes the table
    RuleTracer(const RuleTracer&) = delete;
    RuleTracer& operator=(const RuleTracer&) = delete;

    // Traces packets from or to these IPs only; `everything` traces every packet (still rate-limited).
    Result<bool> set_watched(const std::vector<IpAddr>& ips, bool everything);

    // Installs (armed) or removes (disarmed) the trace rules, keeping the table, its sets and chains. While any
    // rule sets nftrace the kernel checks every rule it evaluates, in every table, for tracing: the tail pauses
    // tracing under a drop storm whose flows are all named already. Armed after open().
    Result<bool> set_armed(bool armed);
    bool armed() const;

    int fd() const;  // readable when trace messages wait
    // Reads every queued message without blocking; returns how many drop verdicts were completed.
    size_t drain();
    // The drop verdict of the packet with this tuple whose trace was sent nearest `at_ns`, the drop's kernel time
    // (CLOCK_MONOTONIC, as bpf_ktime_get_ns stamps it), at most `window_ns` away (SentWithin: not the time the
    // trace was read, which a slow reader puts seconds after the drop).
    const TracedDrop* find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns = 2'000'000'000) const;

    const std::string& table_name() const;
    struct Stats {
        uint64_t messages = 0;      // trace messages read
        uint64_t drops = 0;         // drop verdicts completed
        uint64_t overruns = 0;      // times the socket's buffer overflowed (messages lost)
        uint64_t rule_lookups = 0;  // NFT_MSG_GETRULE requests
        uint64_t lookup_failures = 0;
    };
    Stats stats() const;

    struct Impl;

  private:
    explicit RuleTracer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace npt::netfilter

// --nflog-group N: the CNI's NFLOG records (nfnetlink_log), joined to drops by 5-tuple and time.
// kube-router logs the packets it rejects to group 100 (k3s with a "DROP by policy ns/name" prefix);
// Calico and others can be configured to. One listener per group and network namespace: when another
// process (the CNI's own logger, ulogd) holds the group, open() says so and the tail continues without it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "netfilter/packet_tuple.hpp"

struct nlmsghdr;

namespace npt::netfilter {

struct NflogRecord {
    uint16_t group = 0;
    std::string prefix;  // the rule's --nflog-prefix / `log prefix` ("" when none)
    uint32_t indev = 0;
    uint32_t outdev = 0;
    // NFULA_TIMESTAMP, CLOCK_REALTIME ns, microsecond resolution: the packet's receive time, or the time it was
    // logged. 0 when the kernel sent none (output and postrouting hooks; older kernels also leave it out for
    // packets that have no receive timestamp).
    uint64_t realtime_ns = 0;
};

// Parses one nfnetlink_log message. False when it is not an NFULNL_MSG_PACKET record (or its attributes do
// not parse); otherwise fills `record` and `tuple` (null when the record carries no IP packet).
// `nlh->nlmsg_len` must lie within the buffer.
bool parse_nflog_packet(const nlmsghdr* nlh, NflogRecord& record, std::optional<PacketTuple>& tuple);

class NflogListener {
  public:
    // Binds the group with a short flush timeout and a queue threshold of 1 (records arrive within
    // microseconds, not the kernel's default second). `*busy` is set when another listener holds it.
    static Result<std::unique_ptr<NflogListener>> open(uint16_t group, bool* busy = nullptr);
    ~NflogListener();  // unbinds
    NflogListener(const NflogListener&) = delete;
    NflogListener& operator=(const NflogListener&) = delete;

    int fd() const;
    size_t drain();  // reads every queued record without blocking; returns how many
    const NflogRecord* find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns = 2'000'000'000) const;
    uint16_t group() const;

    struct Stats {
        uint64_t records = 0;
        uint64_t unparsed = 0;  // records without an IP payload
        uint64_t overruns = 0;
    };
    Stats stats() const;

    struct Impl;

  private:
    explicit NflogListener(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace npt::netfilter

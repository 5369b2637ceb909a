// Working UDP and SCTP flows from the node's connection tracking: ctnetlink update events (NFNLGRP_CONNTRACK_UPDATE)
// of entries that saw a reply, each entry counted once however many events it produces. A datagram sent without a
// reply is not a working flow. TCP comes from the kernel program on sock:inet_sock_set_state instead.
//
// Conntrack events are per network namespace: the listener sees the entries of the namespace it was opened in (the
// node's, where forwarded pod traffic and Service DNAT are tracked), and subscribing needs CAP_NET_ADMIN there.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include "common/error.hpp"
#include "common/ip_addr.hpp"

struct nlmsghdr;

namespace npt::netfilter {

struct ConntrackFlow {
    IpAddr client;       // the original direction's source
    IpAddr dialled;      // its destination: a Service address before DNAT
    uint16_t dport = 0;  // host order
    IpAddr server;       // the reply's source: the endpoint after DNAT
    uint16_t server_port = 0;
    uint8_t protocol = 0;  // IPPROTO_UDP or IPPROTO_SCTP
    uint32_t id = 0;       // the entry's id (CTA_ID)
    uint32_t status = 0;   // IPS_* bits
};

// Parses one ctnetlink message. False when it is not a conntrack entry of UDP or SCTP over IPv4/IPv6 (or does not
// parse). `nlh->nlmsg_len` must lie within the buffer.
bool parse_conntrack_event(const nlmsghdr* nlh, ConntrackFlow& flow);

// Entries counted already, by (id, tuple): bounded, the oldest forgotten first.
class SeenEntries {
  public:
    explicit SeenEntries(size_t capacity = 65536) : capacity_(capacity) {}
    // True the first time an entry is offered.
    bool first(const ConntrackFlow& f);
    size_t size() const { return order_.size(); }

  private:
    size_t capacity_;
    std::deque<std::string> order_;
    std::unordered_set<std::string> set_;
};

class ConntrackListener {
  public:
    // Subscribes to the update events of UDP and SCTP entries in this network namespace. The error is one line;
    // without CAP_NET_ADMIN, or without conntrack in the kernel, the flows are "not visible".
    static Result<std::unique_ptr<ConntrackListener>> open();
    ~ConntrackListener();
    ConntrackListener(const ConntrackListener&) = delete;
    ConntrackListener& operator=(const ConntrackListener&) = delete;

    int fd() const;
    // Reads every queued event without blocking; calls fn once per entry that saw a reply. Returns the events read.
    size_t drain(const std::function<void(const ConntrackFlow&)>& fn);

    struct Stats {
        uint64_t events = 0;
        uint64_t flows = 0;     // entries counted (saw a reply, first time)
        uint64_t overruns = 0;  // the socket's buffer overflowed: events lost (ENOBUFS)
    };
    Stats stats() const;

    struct Impl;

  private:
    explicit ConntrackListener(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace npt::netfilter

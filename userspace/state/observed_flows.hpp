// Observed working connections: the JSON lines `netpol-trace flows -o json` writes and the agents' `/flows`
// streams, read back by `whatif` and `advise` (`--flows FILE`).
//
// One object per line: {"src": {"ip", "pod", "namespace", "workload", "labels"}, "dst": {"ip", "pod", "namespace",
// "workload", "labels", "port", "service"}, "protocol", "side": "client" | "server", "count", "first_seen",
// "last_seen" (RFC 3339), "node", "observed_by": "tcp_state" | "conntrack"}. Only src.ip, dst.ip, dst.port and
// protocol are required; the rest is what the observer knew, kept for reports. A client-side line carries the
// address the client dialled (a Service VIP, with dst.service "ns/name"); a server-side line the endpoint.
#pragma once

#include <chrono>
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/ip_addr.hpp"
#include "state/objects.hpp"

namespace npt {

struct ObservedFlow {
    IpAddr src_ip;
    IpAddr dst_ip;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    std::optional<std::string> src_pod;   // "ns/name" as observed
    std::optional<std::string> dst_pod;
    std::optional<std::string> service;   // "ns/name": the client dialled the Service
    std::string side;                     // "client", "server" or ""
    uint64_t count = 0;
    std::optional<std::chrono::system_clock::time_point> last_seen;
    std::string node;
    std::string line;  // the line as read (reports echo it)
};

// Reads JSON lines (empty lines skipped). The first bad line stops the read: "<source> line N: <field>: <what is
// wrong>".
Result<std::vector<ObservedFlow>> read_observed_flows(std::istream& in, std::string_view source);

// "2026-12-07T01:02:03Z" or with fractional seconds or an offset; nothing when it is not RFC 3339 or its year is
// outside 1678-2261 (what the clock represents).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// "90s", "15m", "24h", "7d" (a sum like "1h30m" too); nothing when malformed or longer than 36500d.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace npt

// A working connection as netpol-trace records it: who connected to whom, on which port, how often, seen by which
// end. The JSON line below is a contract: `netpol-trace flows -o json` and the agents' /flows write it, the agents'
// journal keeps it, and whatif/advise read it (--flows FILE).
//
// {"src": {"ip", "pod", "namespace", "workload", "labels"},
//  "dst": {"ip", "pod", "namespace", "workload", "labels", "port", "service"},
//  "protocol": "TCP" | "UDP" | "SCTP", "side": "client" | "server", "count", "first_seen", "last_seen",
//  "node", "observed_by": "tcp_state" | "conntrack"}
//
// `pod` is "ns/name", `workload` "Kind/name" (a ReplicaSet's pod reports its Deployment), `service` "ns/name" when
// the client dialled a Service's address (client side only), null where unknown; times RFC 3339 UTC. A client-side
// line carries the address the client dialled, a server-side line the connection as it arrived (after DNAT). When
// reading, only src.ip, dst.ip and dst.port are required.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/ip_addr.hpp"
#include "state/objects.hpp"

namespace npt {

class ClusterState;

enum class Side : uint8_t { Unknown, Client, Server };
enum class ObservedBy : uint8_t { Unknown, TcpState, Conntrack };
const char* side_name(Side s);               // "client", "server", "" for Unknown
const char* observed_by_name(ObservedBy o);  // "tcp_state", "conntrack", ""

using TimePoint = std::chrono::system_clock::time_point;

struct ConnectionEnd {
    IpAddr ip;
    std::optional<std::string> pod;  // "ns/name"
    std::optional<std::string> ns;
    std::optional<std::string> workload;  // "Kind/name"
    LabelMap labels;
};

struct Connection {
    ConnectionEnd src;  // the client
    ConnectionEnd dst;  // the server, or the address the client dialled
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    std::optional<std::string> service;  // "ns/name": the client dialled this Service's address
    Side side = Side::Unknown;
    uint64_t count = 0;
    std::optional<TimePoint> first_seen;
    std::optional<TimePoint> last_seen;
    std::string node;
    ObservedBy observed_by = ObservedBy::Unknown;
    std::string line;  // the line as read (reports echo it); empty for a connection recorded here
};

// The JSON line of the contract (no trailing newline).
std::string connection_json(const Connection& c);

// Reads JSON lines (empty lines skipped). The first bad line stops the read: "<source> line N: <field>: <what is
// wrong>".
Result<std::vector<Connection>> read_connections(std::istream& in, std::string_view source);
// One line; the error names `source` and `lineno`.
Result<Connection> parse_connection(std::string_view line, std::string_view source = "line", size_t lineno = 1);

// Fills the ends' pod, namespace, workload and labels, and the Service a client dialled, from the state (at the
// time the connection is seen). Leaves what the state does not know unset.
void resolve_connection(const ClusterState& state, Connection& c);

// What /flows and `flows` select: connections touching a namespace (either end), one pod, seen since a time.
struct ConnectionFilter {
    std::vector<std::string> namespaces;
    std::string pod;  // "ns/name", or "name" with exactly one namespace
    std::optional<TimePoint> since;
    bool matches(const Connection& c) const;
};

// "2026-12-07T01:02:03Z" or with fractional seconds or an offset; nothing when it is not RFC 3339 or its year is
// outside 1678-2261 (what the clock represents).
std::optional<TimePoint> parse_rfc3339(std::string_view text);
std::string format_rfc3339(TimePoint t);  // UTC, to the second: "2026-12-07T01:02:03Z"

// "90s", "15m", "24h", "7d" (a sum like "1h30m" too); nothing when malformed or longer than 36500d.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);

}  // namespace npt

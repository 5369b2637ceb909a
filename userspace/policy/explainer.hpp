// Turns a connection question into an Explanation: resolves the ends, follows a Service VIP to its
// endpoints, evaluates both directions and diagnoses every denying policy.
#pragma once

#include <optional>
#include <string>

#include "common/error.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"

namespace npt {

struct ExplainQuery {
    std::string from;  // "ns/pod" or an IP literal
    std::string to;    // "ns/pod", a pod IP, a Service ClusterIP or any IP
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    std::optional<IpFamily> family;  // for pod names on dual-stack pods; default: IPv4 when both have it
};

// Errors: unknown pod or namespace, a pod without an IP of the requested family, bad literals.
// The query's texts become the result's from and to.
Result<Explanation> explain_query(const ClusterState& state, ExplainQuery query);

// Explains a flow that is already resolved (the live tail: the IPs come from the packet). When
// dst is a Service IP, it is followed to its endpoints.
Explanation explain_flow(const ClusterState& state, const IpAddr& src, const IpAddr& dst, Protocol protocol,
                         uint16_t port, const std::string& from_text, const std::string& to_text);

// The diagnosis of one flow against its already-resolved endpoints (no Service handling).
Explanation explain_resolved(const ClusterState& state, const Flow& flow, std::string from_text, std::string to_text);

}  // namespace npt

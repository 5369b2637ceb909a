// Which pods a tail or an /events stream watches, by namespace and pod name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"

namespace npt::live {

// Which pods a tail or a stream client watches: none given = every drop of the node.
struct PodScope {
    std::vector<std::string> namespaces;
    std::string pod;  // NAME (with exactly one namespace) or NAMESPACE/NAME

    bool everything() const { return namespaces.empty() && pod.empty(); }
    bool pod_in_scope(const ClusterState& state, uint32_t index) const;
    // A pod named "ns/name" (as explanations name them).
    bool pod_id_in_scope(std::string_view id) const;
    // Whether a flow touches a watched pod (by the explanation's src and dst).
    bool flow_in_scope(const Explanation& e) const;
};

// Comma-separated list, trimmed, empty items dropped.
std::vector<std::string> split_list(const std::string& text);

}  // namespace npt::live

// netpol_trace_drops_total: dropped packets by the pod whose policy dropped them, the direction, the
// kernel's reason and the isolating policies, with a cap on the number of series so that a storm of
// distinct pods cannot grow the agent's memory or a Prometheus server's index without bound: label sets
// beyond the cap are counted in one overflow series whose namespace, pod and policy are "_other".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "output/drop_record.hpp"

namespace npt::agent {

struct DropLabels {
    std::string namespace_;  // of the pod whose policy dropped it ("" for a non-pod endpoint)
    std::string pod;
    std::string direction;  // egress | ingress | none (the state allows it) | unknown (no state)
    std::string reason;     // kernel drop reason
    std::string policy;     // isolating policies of that pod and direction, by name, comma-separated

    auto tie() const { return std::tie(namespace_, pod, direction, reason, policy); }
    friend bool operator<(const DropLabels& a, const DropLabels& b) { return a.tie() < b.tie(); }
    friend bool operator==(const DropLabels& a, const DropLabels& b) { return a.tie() == b.tie(); }
};

// The labels a dropped flow is counted under: the egress side when the source's egress denies it (that
// hook runs first), else the ingress side when the destination's ingress denies it, else "none".
DropLabels drop_labels(const DropRecord& record);

// netpol_trace_cluster_policy_drops_total: the drops a cluster policy rule (ClusterNetworkPolicy,
// AdminNetworkPolicy, BaselineAdminNetworkPolicy) decided, by tier, policy, rule and direction.
struct ClusterPolicyDropLabels {
    std::string tier;       // admin | baseline
    std::string policy;     // as outputs name it: "deny-db", "AdminNetworkPolicy/x"
    std::string rule;       // the rule's name, or its index when it has none
    std::string direction;  // egress | ingress

    auto tie() const { return std::tie(tier, policy, rule, direction); }
    friend bool operator<(const ClusterPolicyDropLabels& a, const ClusterPolicyDropLabels& b) {
        return a.tie() < b.tie();
    }
};

// The cluster policy rule that denied the flow, on the side drop_labels() counts it under; none when no
// cluster policy decided that side.
std::optional<ClusterPolicyDropLabels> cluster_policy_drop_labels(const DropRecord& record);

class DropMetrics {
  public:
    explicit DropMetrics(size_t max_series) : max_series_(max_series) {}

    void add(const DropRecord& record, uint64_t drops);
    void add(const DropLabels& labels, uint64_t drops);
    void add(const ClusterPolicyDropLabels& labels, uint64_t drops);

    size_t series() const { return counts_.size(); }
    uint64_t overflowed() const { return overflowed_; }  // drops counted in the overflow series

    // Appends the families in Prometheus text format (HELP, TYPE, one line per series).
    void render(std::string& out) const;

    static constexpr const char* kOther = "_other";

  private:
    size_t max_series_;
    std::map<DropLabels, uint64_t> counts_;
    // Bounded by the policies' rules (at most 25 or 100 per direction each), not by pods: no cap.
    std::map<ClusterPolicyDropLabels, uint64_t> cluster_counts_;
    uint64_t overflowed_ = 0;
};

// A label value escaped for the Prometheus text format (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace npt::agent

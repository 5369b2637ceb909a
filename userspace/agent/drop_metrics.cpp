#include "agent/drop_metrics.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace npt::agent {

namespace {

void set_pod(DropLabels& l, const std::optional<std::string>& id) {
    if (!id) return;
    const auto slash = id->find('/');
    if (slash == std::string::npos) return;
    l.namespace_ = id->substr(0, slash);
    l.pod = id->substr(slash + 1);
}

std::string policy_names(const std::vector<std::string>& ids) {
    std::vector<std::string> names;
    for (const auto& id : ids) {
        const auto slash = id.find('/');
        names.push_back(slash == std::string::npos ? id : id.substr(slash + 1));
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return fmt::format("{}", fmt::join(names, ","));
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

DropLabels drop_labels(const DropRecord& r) {
    DropLabels l;
    l.reason = r.reason;
    const auto& e = r.explanation;
    const SideExplanation* side = nullptr;
    if (!r.attributed) {
        l.direction = "unknown";
    } else if (!e.egress.allowed) {
        side = &e.egress;
    } else if (!e.ingress.allowed) {
        side = &e.ingress;
    } else {
        l.direction = "none";
    }
    if (side) {
        l.direction = direction_name(side->direction);
        set_pod(l, side->pod);
        l.policy = policy_names(side->policies);
    } else {
        set_pod(l, e.dst.pod ? e.dst.pod : e.src.pod);
    }
    return l;
}

std::optional<ClusterPolicyDropLabels> cluster_policy_drop_labels(const DropRecord& r) {
    if (!r.attributed) return std::nullopt;
    const auto& e = r.explanation;
    const SideExplanation* side = !e.egress.allowed ? &e.egress : !e.ingress.allowed ? &e.ingress : nullptr;
    if (!side || !side->decided_by.rule) return std::nullopt;
    const auto& rule = *side->decided_by.rule;
    return ClusterPolicyDropLabels{tier_name(side->decided_by.tier), rule.policy,
                                   rule.rule_name.value_or(std::to_string(rule.rule)), direction_name(side->direction)};
}

void DropMetrics::add(const DropRecord& record, uint64_t drops) {
    add(drop_labels(record), drops);
    if (auto c = cluster_policy_drop_labels(record)) add(*c, drops);
}

void DropMetrics::add(const ClusterPolicyDropLabels& labels, uint64_t drops) {
    if (drops) cluster_counts_[labels] += drops;
}

void DropMetrics::add(const DropLabels& labels, uint64_t drops) {
    if (drops == 0) return;
    if (auto it = counts_.find(labels); it != counts_.end()) {
        it->second += drops;
        return;
    }
    // The overflow series takes one slot of the cap, so that the total stays at max_series.
    if (counts_.size() + 1 < max_series_) {
        counts_.emplace(labels, drops);
        return;
    }
    DropLabels other{kOther, kOther, labels.direction, labels.reason, kOther};
    counts_[other] += drops;
    overflowed_ += drops;
}

void DropMetrics::render(std::string& out) const {
    out +=
        "# HELP netpol_trace_drops_total Packets dropped by this node, by the pod whose NetworkPolicy dropped them "
        "(namespace, pod), the direction that denied them (egress, ingress; none: the policies allow the flow; "
        "unknown: no cluster state), the kernel's drop reason and the isolating policies.\n";
    out += "# TYPE netpol_trace_drops_total counter\n";
    for (const auto& [l, n] : counts_) {
        out += fmt::format(
            "netpol_trace_drops_total{{namespace=\"{}\",pod=\"{}\",direction=\"{}\",reason=\"{}\",policy=\"{}\"}} {}\n",
            escape_label_value(l.namespace_), escape_label_value(l.pod), escape_label_value(l.direction),
            escape_label_value(l.reason), escape_label_value(l.policy), n);
    }
    out +=
        "# HELP netpol_trace_cluster_policy_drops_total Packets dropped by this node that a cluster policy rule "
        "denied (ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy), by tier (admin, baseline), "
        "policy, rule (its name, or its index) and direction.\n";
    out += "# TYPE netpol_trace_cluster_policy_drops_total counter\n";
    for (const auto& [l, n] : cluster_counts_) {
        out += fmt::format(
            "netpol_trace_cluster_policy_drops_total{{tier=\"{}\",policy=\"{}\",rule=\"{}\",direction=\"{}\"}} {}\n",
            escape_label_value(l.tier), escape_label_value(l.policy), escape_label_value(l.rule),
            escape_label_value(l.direction), n);
    }
}

}  // namespace npt::agent

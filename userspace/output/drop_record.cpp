#include "output/drop_record.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "output/text_output.hpp"

namespace npt {

namespace {

bool is_policy_enforcement_reason(const std::string& reason) {
    return reason == "NETFILTER_DROP" || reason == "TC_INGRESS" || reason == "TC_EGRESS" ||
           reason == "BPF_CGROUP_EGRESS" || reason == "BPF_CGROUP_INGRESS" || reason.rfind("XDP", 0) == 0 ||
           reason == "unknown";
}

std::string tcp_flags_text(uint8_t flags) {
    static constexpr const char* kNames[] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
    std::string out;
    for (int i = 0; i < 8; ++i)
        if (flags & (1u << i)) out += (out.empty() ? "" : "|") + std::string(kNames[i]);
    return out;
}

}  // namespace

DropRule make_drop_rule(std::string table, std::string chain, std::optional<uint64_t> handle,
                        std::optional<std::string> comment) {
    DropRule r{std::move(table), std::move(chain), handle, std::move(comment), std::nullopt, std::nullopt};
    const auto starts = [&](std::string_view prefix) { return r.chain.rfind(prefix, 0) == 0; };
    if (starts("KUBE-NWPLCY-") || starts("KUBE-POD-FW-") || starts("KUBE-ROUTER-")) {
        r.cni = "kube-router";
    } else if (starts("cali-")) {
        r.cni = "calico";
    }
    // kube-router names the policy in its rule comments: "<namespace>/<name> policy".
    if (r.comment) {
        const std::string_view c = *r.comment;
        constexpr std::string_view kSuffix = " policy";
        const auto slash = c.find('/');
        if (c.size() > kSuffix.size() && c.substr(c.size() - kSuffix.size()) == kSuffix &&
            slash != std::string_view::npos && slash > 0 && c.find(' ') == c.size() - kSuffix.size()) {
            r.policy = std::string(c.substr(0, c.size() - kSuffix.size()));
            r.cni = r.cni.value_or("kube-router");
        }
    }
    return r;
}

std::string format_time(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", ms);
}

void annotate_drop(DropRecord& r) {
    const auto host = [](const IpAddr& ip) { return ip.is_v4() ? ip.str() : "[" + ip.str() + "]"; };
    auto& e = r.explanation;
    if (r.original_dst && !r.explanation.dst.service) {
        const auto& od = *r.original_dst;
        if (std::none_of(e.hints.begin(), e.hints.end(), [](const Hint& h) { return h.code == hint::kServiceVipDnat; })) {
            e.hints.push_back(
                {hint::kServiceVipDnat, Direction::Egress, std::nullopt,
                 fmt::format("the client dialled {}:{}{}; conntrack translated it to {}:{} before the policy hook, so "
                             "policies see the endpoint, not the Service IP and port",
                             host(od.ip), od.port, od.service ? " (Service " + *od.service + ")" : std::string(),
                             host(e.dst.ip), e.dst.port)});
        }
    }
    if (!r.attributed || !e.allowed()) return;
    std::string why;
    if (!is_policy_enforcement_reason(r.reason)) {
        why = fmt::format("the kernel dropped it for {}, which is not a policy enforcement point", r.reason);
    } else if (r.ct_state == "established" || r.ct_state == "reply" || r.ct_state == "related") {
        why = fmt::format("the packet belongs to a connection conntrack already knew ({}); a policy change does "
                          "not reset existing connections and the dataplane still drops this one: restart the "
                          "client (or delete the conntrack entry) to reconnect",
                          r.ct_state);
    } else {
        why = "the NetworkPolicies in the state allow it: the CNI may not have synced a policy change yet, or a "
              "rule outside NetworkPolicy (a CNI-specific policy, a host firewall) dropped it";
    }
    e.hints.push_back({hint::kNotExplainedByPolicy, Direction::Ingress, std::nullopt,
                       fmt::format("NetworkPolicy allows this flow but {} dropped it: {}", r.enforcement, why)});
}

Json drop_json(const DropRecord& r, const char* event) {
    Json j;
    j["event"] = event;
    j["time"] = format_time(r.first_seen);
    j["last_seen"] = format_time(r.last_seen);
    j["node"] = r.node;
    Json body = explanation_json(r.explanation);
    if (!r.attributed) body["verdict"] = "unknown";
    for (auto& [k, v] : body.items()) j[k] = v;
    j["protocol"] = r.protocol_name;
    j["reason"] = r.reason;
    j["enforcement"] = r.enforcement;
    j["backend"] = r.backend;
    j["ct_state"] = r.ct_state;
    j["count"] = r.count;
    j["interface"] = r.interface;
    j["src"]["port"] = r.sport;
    if (r.tcp_flags) j["tcp_flags"] = tcp_flags_text(r.tcp_flags);
    if (r.icmp) j["icmp"] = Json{{"type", r.icmp->first}, {"code", r.icmp->second}};
    if (r.rule) {
        const auto& rule = *r.rule;
        const auto opt = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
        j["rule"] = Json{{"table", rule.table},
                         {"chain", rule.chain},
                         {"handle", rule.handle ? Json(*rule.handle) : Json(nullptr)},
                         {"comment", opt(rule.comment)},
                         {"cni", opt(rule.cni)},
                         {"policy", opt(rule.policy)}};
    } else {
        j["rule"] = nullptr;
    }
    if (r.original_dst) {
        j["original_dst"] = Json{{"ip", r.original_dst->ip.str()},
                                 {"port", r.original_dst->port},
                                 {"service", r.original_dst->service ? Json(*r.original_dst->service) : Json(nullptr)}};
    }
    return j;
}

void write_drop_text(std::ostream& out, const DropRecord& r, bool with_details) {
    const auto& e = r.explanation;
    std::string port = e.port ? fmt::format(":{}", e.port) : std::string();
    std::string verdict = !r.attributed ? "" : e.allowed() ? "  policy: allowed" : "  policy: " + e.verdict;
    out << fmt::format("{} {} {} {} -> {}{} {} at {} ct={} x{}{}\n", format_time(r.first_seen), r.node, r.protocol_name,
                       endpoint_label(e.src), endpoint_label(e.dst), port, r.reason, r.enforcement, r.ct_state, r.count,
                       verdict);
    if (!with_details || !r.attributed) return;
    for (const auto* side : {&e.egress, &e.ingress}) {
        if (side->allowed) continue;
        out << fmt::format("    {} of {} denied: isolated by {}\n", direction_name(side->direction),
                           side->pod ? *side->pod : std::string("?"), fmt::join(side->policies, ", "));
        for (const auto& d : side->diagnoses) {
            if (!d.closest) {
                out << "      " << d.policy << ": " << d.summary << '\n';
                continue;
            }
            for (const auto& m : d.closest->misses) out << "      " << d.policy << ": " << m.message << '\n';
        }
    }
    for (const auto& h : e.hints) out << "    " << h.code << ": " << h.message << '\n';
}

}  // namespace npt

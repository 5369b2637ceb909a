#include "output/drop_text.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "output/miss_text.hpp"
#include "output/text_output.hpp"

namespace npt {

namespace {

std::string not_visible_text(const std::string& backend) {
    return "not visible to --rule-trace: " + backend + " drops are not traced by nftables";
}

std::string pass_text(const std::string& policy, int rule) {
    return fmt::format("policy {} (rule {})", policy, rule);
}

std::string fix_text(const std::string& summary, const std::string& kind, uint64_t newly_allowed,
                     uint64_t newly_denied) {
    if (kind == "none" || kind == "command") return summary;
    return fmt::format("{} [{} newly allowed, {} newly denied]", summary, newly_allowed, newly_denied);
}

// JSON accessors that never throw (and json_string below): the agents' lines come from the network.
const Json& member(const Json& j, const char* key) {
    static const Json null;
    auto it = j.find(key);
    return it != j.end() ? *it : null;
}

template <typename T>
T number(const Json& j, const char* key, T fallback = 0) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<T>() : fallback;
}

std::string endpoint_label_json(const Json& e) {
    const std::string ip = json_string(e, "ip");
    if (auto pod = json_string(e, "pod"); !pod.empty())
        return fmt::format("{}{} ({})", pod, e.value("host_network", false) ? " [hostNetwork]" : "", ip);
    if (auto svc = json_string(e, "service"); !svc.empty()) return fmt::format("{} (Service {})", ip, svc);
    if (auto node = json_string(e, "node"); !node.empty()) return fmt::format("{} (node {})", ip, node);
    return ip;
}

void add_misses_json(std::vector<std::string>& out, const Json& diagnoses, bool summaries) {
    if (!diagnoses.is_array()) return;
    for (const auto& d : diagnoses) {
        const Json& closest = member(d, "closest_rule");
        if (!closest.is_object()) {
            if (summaries) out.push_back(json_string(d, "policy") + ": " + json_string(d, "summary"));
            continue;
        }
        const Json& misses = member(closest, "misses");
        if (!misses.is_array()) continue;
        for (const auto& m : misses) out.push_back(json_string(d, "policy") + ": " + json_string(m, "message"));
    }
}

}  // namespace

DropText drop_text(const DropRecord& r, std::string_view event) {
    const Explanation& e = r.explanation;
    DropText d;
    d.resumed = event == "resumed";
    d.time = format_time(r.first_seen);
    d.node = r.node;
    d.protocol = r.protocol_name;
    d.src = endpoint_label(e.src);
    d.dst = endpoint_label(e.dst);
    d.port = e.port;
    d.reason = r.reason;
    d.enforcement = r.enforcement;
    d.ct_state = r.ct_state;
    d.count = r.count;
    d.verdict = r.attributed ? e.verdict : "";
    if (r.rule)
        d.rule = rule_text(*r.rule, r.attributed);
    else if (r.rule_trace == "not_visible")
        d.rule = not_visible_text(r.backend);
    if (!r.attributed) return d;
    for (const auto* side : {&e.egress, &e.ingress}) {
        if (side->allowed) continue;
        DropText::DeniedSide s;
        s.direction = direction_name(side->direction);
        s.pod = side->pod ? *side->pod : "?";
        s.denied = side->decided_by.rule ? "denied by " + cluster_rule_label(side->decided_by)
                                         : fmt::format("denied: isolated by {}", fmt::join(side->policies, ", "));
        for (const auto& p : side->passed_by) s.passed_on.push_back(pass_text(p.policy, p.rule));
        for (const auto& c : side->cluster_diagnoses) {
            if (!c.closest) continue;
            for (const auto& m : c.closest->misses) s.misses.push_back(c.policy + ": " + miss_message(m));
        }
        for (const auto& c : side->diagnoses) {
            if (!c.closest) {
                s.misses.push_back(c.policy + ": " + summary_message(c));
                continue;
            }
            for (const auto& m : c.closest->misses) s.misses.push_back(c.policy + ": " + miss_message(m));
        }
        d.denied_sides.push_back(std::move(s));
    }
    for (const auto& h : e.hints) d.hints.emplace_back(h.code, hint_message(h));
    if (e.fixes) {
        for (const Direction dir : {Direction::Egress, Direction::Ingress}) {
            const auto best =
                std::find_if(e.fixes->begin(), e.fixes->end(), [&](const Fix& f) { return f.direction == dir; });
            if (best == e.fixes->end()) continue;
            d.fixes.push_back({direction_name(dir),
                               fix_text(best->summary, best->kind, best->newly_allowed, best->newly_denied),
                               best->command});
        }
    }
    return d;
}

Result<DropText> drop_text_from_json(const Json& j) {
    if (!j.is_object()) return Error{"a drop line is not a JSON object"};
    for (const char* key : {"event", "time", "reason", "enforcement"})
        if (!member(j, key).is_string()) return Error{fmt::format("a drop line has no \"{}\" string", key)};
    DropText d;
    d.resumed = json_string(j, "event") == "resumed";
    d.time = json_string(j, "time");
    d.node = json_string(j, "node");
    d.protocol = json_string(j, "protocol");
    d.src = endpoint_label_json(member(j, "src"));
    d.dst = endpoint_label_json(member(j, "dst"));
    d.port = number<uint16_t>(j, "port");
    d.reason = json_string(j, "reason");
    d.enforcement = json_string(j, "enforcement");
    d.ct_state = json_string(j, "ct_state");
    d.count = number<uint64_t>(j, "count");
    const std::string verdict = json_string(j, "verdict");
    const bool attributed = !verdict.empty() && verdict != "unknown";
    d.verdict = attributed ? verdict : "";
    if (const Json& rule = member(j, "rule"); rule.is_object())
        d.rule = rule_text(rule_from_json(rule), attributed);
    else if (json_string(j, "rule_trace") == "not_visible")
        d.rule = not_visible_text(json_string(j, "backend"));
    if (!attributed) return d;
    for (const char* dir : {"egress", "ingress"}) {
        const Json& side = member(j, dir);
        if (!side.is_object() || side.value("allowed", true)) continue;
        const std::string pod = json_string(member(j, std::string_view(dir) == "egress" ? "src" : "dst"), "pod");
        DropText::DeniedSide s;
        s.direction = dir;
        s.pod = pod.empty() ? "?" : pod;
        const Json& decided = member(side, "decided_by");
        if (std::string by = json_string(decided, "policy"); !by.empty()) {
            ClusterRuleRef rule{std::move(by), number<int>(decided, "rule", -1), std::nullopt, std::nullopt};
            if (auto name = json_string(decided, "rule_name"); !name.empty()) rule.rule_name = std::move(name);
            if (decided.contains("priority")) rule.priority = number<int>(decided, "priority");
            s.denied = "denied by ";
            append_cluster_rule_text(
                s.denied, json_string(decided, "tier") == "baseline" ? DecidingTier::Baseline : DecidingTier::Admin,
                rule);
        } else {
            std::vector<std::string> policies;
            if (const Json& p = member(side, "policies"); p.is_array())
                for (const auto& x : p)
                    if (x.is_string()) policies.push_back(x.get<std::string>());
            s.denied = fmt::format("denied: isolated by {}", fmt::join(policies, ", "));
        }
        if (const Json& passed = member(side, "passed_by_rules"); passed.is_array())
            for (const auto& p : passed)
                s.passed_on.push_back(pass_text(json_string(p, "policy"), number<int>(p, "rule", -1)));
        add_misses_json(s.misses, member(side, "cluster_diagnosis"), false);
        add_misses_json(s.misses, member(side, "diagnosis"), true);
        d.denied_sides.push_back(std::move(s));
    }
    if (const Json& hints = member(j, "hints"); hints.is_array())
        for (const auto& h : hints) d.hints.emplace_back(json_string(h, "code"), json_string(h, "message"));
    if (const Json& fixes = member(j, "fixes"); fixes.is_array()) {
        for (const char* dir : {"egress", "ingress"}) {
            for (const auto& f : fixes) {
                if (json_string(f, "direction") != dir) continue;
                std::optional<std::string> command;
                if (const Json& c = member(f, "command"); c.is_string()) command = c.get<std::string>();
                d.fixes.push_back({dir,
                                   fix_text(json_string(f, "summary"), json_string(f, "kind"),
                                            number<uint64_t>(f, "newly_allowed"), number<uint64_t>(f, "newly_denied")),
                                   command});
                break;
            }
        }
    }
    return d;
}

void write_drop_text(std::ostream& out, const DropText& d, bool with_details) {
    out << fmt::format("{}{} {} {} {} -> {}{} {} at {} ct={} x{}{}\n", d.resumed ? "(resumed) " : "", d.time, d.node,
                       d.protocol, d.src, d.dst, d.port ? fmt::format(":{}", d.port) : "", d.reason, d.enforcement,
                       d.ct_state, d.count, d.verdict.empty() ? "" : "  policy: " + d.verdict);
    if (!with_details) return;
    if (d.rule) out << "    rule: " << *d.rule << '\n';
    for (const auto& s : d.denied_sides) {
        out << fmt::format("    {} of {} {}\n", s.direction, s.pod, s.denied);
        for (const auto& p : s.passed_on) out << "      passed on by " << p << '\n';
        for (const auto& m : s.misses) out << "      " << m << '\n';
    }
    for (const auto& [code, message] : d.hints) out << "    " << code << ": " << message << '\n';
    for (const auto& f : d.fixes) {
        out << fmt::format("    fix ({}): {}\n", f.direction, f.text);
        if (f.command) out << "      $ " << *f.command << '\n';
    }
}

void write_drop_summary_row(std::ostream& out, const DropText& d) {
    out << fmt::format("  {:>8}  {} {} {} -> {}{} {} at {}{}\n", d.count, d.node, d.protocol, d.src, d.dst,
                       d.port ? fmt::format(":{}", d.port) : "", d.reason, d.enforcement,
                       d.verdict.empty()        ? ""
                       : d.verdict == "allowed" ? "  (policy allows it)"
                                                : "  (" + d.verdict + ")");
}

void write_drop_text(std::ostream& out, const DropRecord& record, bool with_details) {
    write_drop_text(out, drop_text(record, "drop"), with_details);
}

std::string json_string(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace npt

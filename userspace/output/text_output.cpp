#include "output/text_output.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <string>

#include "output/miss_text.hpp"

namespace npt {

std::string endpoint_label(const EndpointRef& r) {
    const std::string ip = r.ip.str();
    if (r.pod) return fmt::format("{}{} ({})", *r.pod, r.host_network ? " [hostNetwork]" : "", ip);
    if (r.service) return fmt::format("{} (Service {})", ip, *r.service);
    if (r.node) return fmt::format("{} (node {})", ip, *r.node);
    return ip;
}

namespace {

std::string upper_verdict(const std::string& v) {
    if (v == "allowed") return "ALLOWED";
    if (v == "denied") return "DENIED";
    if (v == "partial") return "PARTIAL";
    return v;
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
}

}  // namespace

std::string cluster_rule_label(const DecidedBy& d) {
    if (!d.rule) return tier_name(d.tier);
    std::string out;
    append_cluster_rule_text(out, d.tier, *d.rule);
    return out;
}

namespace {

// A Pass rule: the Admin tier's, unless it is a Baseline policy's.
std::string cluster_pass_label(const ClusterRuleRef& r) {
    std::string out = fmt::format("policy {} (", r.policy);
    append_rule_detail(out, r);
    out += ", action Pass)";
    return out;
}

void write_side(std::ostream& out, const SideExplanation& s, const EndpointRef& local, const std::string& indent) {
    const bool ingress = s.direction == Direction::Ingress;
    const std::string head = fmt::format("{}{:<8}{} {}", indent, ingress ? "ingress" : "egress",
                                         ingress ? "to  " : "from", s.pod ? *s.pod : local.ip.str());
    std::string state;
    switch (s.exemption) {
        case Exemption::NoPod:
            state = local.host_network ? "allowed: a hostNetwork pod, policies do not apply"
                                       : "allowed: not a pod, no policy applies";
            break;
        case Exemption::NotIsolated:
            state = "allowed: not isolated (no policy selects it for " + std::string(direction_name(s.direction)) + ")";
            break;
        case Exemption::SamePod:
            state = "allowed: a pod cannot block traffic to itself";
            break;
        case Exemption::LocalNode:
            state = "allowed: traffic with its own node is always allowed";
            break;
        case Exemption::None:
            state = s.allowed ? fmt::format("allowed by {}", join(s.allowed_by))
                              : fmt::format("DENIED: isolated by {}", join(s.policies));
            break;
    }
    if (s.decided_by.rule) {
        state = fmt::format("{} by {}", s.allowed ? "allowed" : "DENIED", cluster_rule_label(s.decided_by));
    } else if (s.decided_by.tier == DecidingTier::None && !s.passed_by.empty()) {
        state = "allowed: no policy decides (default allow)";
    }
    out << head << "  " << state << '\n';
    for (const auto& p : s.passed_by) out << indent << "    passed on by " << cluster_pass_label(p) << '\n';
    for (const auto* diags : {&s.cluster_diagnoses, &s.diagnoses}) {
        for (const auto& d : *diags) {
            out << indent << "    " << d.policy << ": " << summary_message(d) << '\n';
            if (!d.closest) continue;
            for (const auto& m : d.closest->misses) out << indent << "      - " << miss_message(m) << '\n';
        }
    }
}

// What makes two endpoint results read the same: verdicts, policies and the kinds of misses.
std::string signature(const Explanation& e) {
    std::string sig = e.verdict;
    for (const auto* side : {&e.egress, &e.ingress}) {
        sig += side->allowed ? "|a" : "|d";
        for (const auto& p : side->policies) sig += "," + p;
        for (const auto& d : side->diagnoses) {
            sig += ";" + d.policy + ":" + (d.closest ? std::to_string(d.closest->rule) : "-");
            if (d.closest)
                for (const auto& m : d.closest->misses) sig += miss_kind_name(m.kind);
        }
    }
    return sig;
}

void write_body(std::ostream& out, const Explanation& e, const std::string& indent) {
    out << indent
        << fmt::format("{} {} {} -> {}:{}", upper_verdict(e.verdict), protocol_name(e.protocol), endpoint_label(e.src),
                       endpoint_label(e.dst), e.dst.port)
        << '\n';
    if (!e.service.empty()) {
        const auto& svc = e.service.front();
        write_side(out, e.egress, e.src, indent);
        if (svc.endpoints.empty()) {
            out << indent << "  Service " << svc.name << " has no endpoints for this port\n";
        }
        // Endpoints that fail for the same reasons are listed once in full, then by address.
        std::vector<std::string> shown;
        for (const auto& ep : svc.endpoints) {
            const std::string sig = signature(ep);
            const bool seen = std::find(shown.begin(), shown.end(), sig) != shown.end();
            out << indent
                << fmt::format("  endpoint {}: {}{}\n", endpoint_label(ep.dst) + ":" + std::to_string(ep.dst.port),
                               upper_verdict(ep.verdict), seen ? ", for the same reasons as above" : "");
            if (seen) continue;
            shown.push_back(sig);
            if (!ep.egress.allowed) write_side(out, ep.egress, ep.src, indent + "    ");
            write_side(out, ep.ingress, ep.dst, indent + "    ");
        }
    } else {
        write_side(out, e.egress, e.src, indent);
        write_side(out, e.ingress, e.dst, indent);
    }
    for (const auto& n : e.notes) out << indent << "  note: " << note_message(n) << '\n';
}

}  // namespace

namespace {

std::string fix_counts(const Fix& f) {
    if (f.kind == "none" || f.kind == "command") return f.kind;
    return fmt::format("{}, {}, {} newly allowed, {} newly denied", f.kind, f.verified ? "verified" : "NOT verified",
                       f.newly_allowed, f.newly_denied);
}

void write_fixes_text(std::ostream& out, const Explanation& e) {
    if (!e.fixes || e.fixes->empty()) return;
    for (const Direction dir : {Direction::Egress, Direction::Ingress}) {
        int n = 0;
        for (const auto& f : *e.fixes) {
            if (f.direction != dir) continue;
            if (n == 0) out << fmt::format("fix ({}, best first):\n", direction_name(dir));
            out << fmt::format("  {}. [{}] {}\n", ++n, fix_counts(f), f.summary);
            for (const auto& ex : f.examples)
                out << fmt::format("       {} {} -> {} {}/{}\n",
                                   ex.allowed ? "newly allowed:" : "newly denied: ", ex.from, ex.to,
                                   protocol_name(ex.protocol), ex.port);
            if (f.command) out << "     $ " << *f.command << '\n';
            if (f.manifest && f.kind != "patch") {
                std::istringstream lines(*f.manifest);
                for (std::string line; std::getline(lines, line);) out << "     " << line << '\n';
            }
        }
    }
}

}  // namespace

void write_fixes_yaml(std::ostream& out, const Explanation& e) {
    out << fmt::format("# {} {} {} -> {}:{}\n", upper_verdict(e.verdict), protocol_name(e.protocol),
                       endpoint_label(e.src), endpoint_label(e.dst), e.dst.port);
    if (!e.fixes) return;
    for (const Direction dir : {Direction::Egress, Direction::Ingress}) {
        const auto best =
            std::find_if(e.fixes->begin(), e.fixes->end(), [&](const Fix& f) { return f.direction == dir; });
        if (best == e.fixes->end()) continue;
        out << fmt::format("# {}: {} ({})\n", direction_name(dir), best->summary, fix_counts(*best));
        if (best->command) out << "# " << *best->command << '\n';
        if (best->manifest) out << "---\n" << *best->manifest;
    }
}

void write_explanation_text(std::ostream& out, const Explanation& e) {
    write_body(out, e, "");
    if (!e.hints.empty()) {
        out << "hints:\n";
        for (const auto& h : e.hints) {
            out << fmt::format("  {} [{}{}]\n      {}\n", h.code, direction_name(h.direction),
                               h.policy ? ", " + *h.policy : std::string(), hint_message(h));
        }
    }
    write_fixes_text(out, e);
}

}  // namespace npt

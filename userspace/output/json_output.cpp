#include "output/json_output.hpp"

namespace npt {

const char* exemption_name(Exemption e) {
    switch (e) {
        case Exemption::None: return nullptr;
        case Exemption::NotIsolated: return "not_isolated";
        case Exemption::NoPod: return "not_a_pod";
        case Exemption::SamePod: return "same_pod";
        case Exemption::LocalNode: return "local_node";
    }
    return nullptr;
}

namespace {

Json nullable(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

Json endpoint_json(const EndpointRef& r, bool with_port) {
    Json j;
    j["ip"] = r.ip.str();
    j["pod"] = nullable(r.pod);
    if (with_port) j["port"] = r.port;
    if (r.host_network) j["host_network"] = true;
    if (r.node) j["node"] = *r.node;
    if (r.service) j["service"] = *r.service;
    return j;
}

Json diagnoses_json(const std::vector<PolicyDiagnosis>& diagnoses) {
    Json diags = Json::array();
    for (const auto& d : diagnoses) {
        Json dj;
        dj["policy"] = d.policy;
        if (d.tier) dj["tier"] = tier_name(*d.tier);
        dj["summary"] = d.summary;
        if (d.closest) {
            Json cj;
            cj["rule"] = d.closest->rule;
            if (d.closest->action) {
                cj["rule_name"] = nullable(d.closest->rule_name);
                cj["action"] = rule_action_name(*d.closest->action);
            }
            cj["peer"] = d.closest->peer >= 0 ? Json(d.closest->peer) : Json(nullptr);
            cj["ports_match"] = d.closest->ports_match;
            cj["peers_match"] = d.closest->peers_match;
            Json misses = Json::array();
            for (const auto& m : d.closest->misses)
                misses.push_back(Json{{"kind", miss_kind_name(m.kind)}, {"near", m.near}, {"message", m.message}});
            cj["misses"] = std::move(misses);
            dj["closest_rule"] = std::move(cj);
        } else {
            dj["closest_rule"] = nullptr;
        }
        diags.push_back(std::move(dj));
    }
    return diags;
}

Json decided_by_json(const DecidedBy& d) {
    Json j;
    j["tier"] = tier_name(d.tier);
    j["policy"] = d.rule ? Json(d.rule->policy) : Json(nullptr);
    j["rule"] = d.rule ? Json(d.rule->rule) : Json(nullptr);
    j["rule_name"] = d.rule ? nullable(d.rule->rule_name) : Json(nullptr);
    j["action"] = d.action ? Json(rule_action_name(*d.action)) : Json(nullptr);
    if (d.rule && d.rule->priority) j["priority"] = *d.rule->priority;
    return j;
}

Json side_json(const SideExplanation& s) {
    Json j;
    j["isolated"] = s.isolated;
    j["allowed"] = s.allowed;
    j["policies"] = s.policies;
    j["allowed_by"] = s.allowed_by;
    if (const char* ex = exemption_name(s.exemption)) j["exemption"] = ex;
    j["decided_by"] = decided_by_json(s.decided_by);
    j["cluster_policies"] = s.cluster_policies;
    Json passed = Json::array();
    for (const auto& p : s.passed_by) passed.push_back(p.policy);
    j["passed_by"] = std::move(passed);
    if (!s.diagnoses.empty()) j["diagnosis"] = diagnoses_json(s.diagnoses);
    if (!s.cluster_diagnoses.empty()) j["cluster_diagnosis"] = diagnoses_json(s.cluster_diagnoses);
    return j;
}

Json fix_json(const Fix& f) {
    Json j;
    j["kind"] = f.kind;
    j["direction"] = direction_name(f.direction);
    j["target"] = nullable(f.target);
    j["summary"] = f.summary;
    j["manifest"] = nullable(f.manifest);
    j["object"] = f.object ? Json::parse(*f.object) : Json(nullptr);
    j["patch"] = f.patch ? Json::parse(*f.patch) : Json(nullptr);
    j["command"] = nullable(f.command);
    j["verified"] = f.verified;
    j["newly_allowed"] = f.newly_allowed;
    j["newly_denied"] = f.newly_denied;
    Json examples = Json::array();
    for (const auto& ex : f.examples) {
        examples.push_back(Json{{"from", ex.from},
                                {"to", ex.to},
                                {"port", ex.port},
                                {"protocol", protocol_name(ex.protocol)},
                                {"change", ex.allowed ? "allowed" : "denied"}});
    }
    j["examples"] = std::move(examples);
    return j;
}

}  // namespace

Json explanation_json(const Explanation& e) {
    Json j;
    j["from"] = e.from;
    j["to"] = e.to;
    j["port"] = e.port;
    j["protocol"] = protocol_name(e.protocol);
    j["verdict"] = e.verdict;
    j["src"] = endpoint_json(e.src, false);
    j["dst"] = endpoint_json(e.dst, true);
    j["egress"] = side_json(e.egress);
    j["ingress"] = side_json(e.ingress);
    Json hints = Json::array();
    for (const auto& h : e.hints) {
        hints.push_back(Json{{"code", h.code},
                             {"direction", direction_name(h.direction)},
                             {"policy", nullable(h.policy)},
                             {"message", h.message}});
    }
    j["hints"] = std::move(hints);
    if (!e.notes.empty()) j["notes"] = e.notes;
    if (e.fixes) {
        Json fixes = Json::array();
        for (const auto& f : *e.fixes) fixes.push_back(fix_json(f));
        j["fixes"] = std::move(fixes);
    }
    if (!e.service.empty()) {
        const auto& s = e.service.front();
        Json sj;
        sj["name"] = s.name;
        sj["port"] = s.port;
        if (!s.port_name.empty()) sj["port_name"] = s.port_name;
        Json eps = Json::array();
        for (const auto& ep : s.endpoints) eps.push_back(explanation_json(ep));
        sj["endpoints"] = std::move(eps);
        j["service"] = std::move(sj);
    }
    return j;
}

void write_json_line(std::ostream& out, const Json& j) {
    out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
}

}  // namespace npt

#include "output/json_output.hpp"

#include "common/json_writer.hpp"
#include "output/miss_text.hpp"

namespace npt {

const char* exemption_name(Exemption e) {
    switch (e) {
        case Exemption::None:
            return nullptr;
        case Exemption::NotIsolated:
            return "not_isolated";
        case Exemption::NoPod:
            return "not_a_pod";
        case Exemption::SamePod:
            return "same_pod";
        case Exemption::LocalNode:
            return "local_node";
    }
    return nullptr;
}

namespace {

Json nullable(const std::optional<std::string>& s) {
    return s ? Json(*s) : Json(nullptr);
}

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
        dj["summary"] = summary_message(d);
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
                misses.push_back(
                    Json{{"kind", miss_kind_name(m.kind)}, {"near", m.near}, {"message", miss_message(m)}});
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
    if (!s.passed_by.empty()) {
        Json rules = Json::array();
        for (const auto& p : s.passed_by) {
            Json r{{"policy", p.policy}, {"rule", p.rule}, {"rule_name", nullable(p.rule_name)}};
            if (p.priority) r["priority"] = *p.priority;
            rules.push_back(std::move(r));
        }
        j["passed_by_rules"] = std::move(rules);
    }
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
                             {"message", hint_message(h)}});
    }
    j["hints"] = std::move(hints);
    if (!e.notes.empty()) {
        Json notes = Json::array();
        for (const auto& n : e.notes) notes.push_back(note_message(n));
        j["notes"] = std::move(notes);
    }
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

namespace {

// The streaming form of the functions above: the same members in the same order, so the bytes are those of
// the DOM's dump (json_writer_test compares them over generated explanations).

// Where a miss or a hint is worded before it is written: one buffer per thread, reused.
std::string& scratch() {
    thread_local std::string buffer;
    return buffer;
}

void stream_endpoint(JsonWriter& w, const EndpointRef& r, bool with_port) {
    w.begin_object();
    w.member("ip", r.ip.str());
    w.member("pod", r.pod);
    if (with_port) w.member("port", r.port);
    if (r.host_network) w.member("host_network", true);
    if (r.node) w.member("node", *r.node);
    if (r.service) w.member("service", *r.service);
    w.end_object();
}

void stream_diagnoses(JsonWriter& w, const std::vector<PolicyDiagnosis>& diagnoses) {
    w.begin_array();
    for (const auto& d : diagnoses) {
        w.begin_object();
        w.member("policy", d.policy);
        if (d.tier) w.member("tier", tier_name(*d.tier));
        std::string& words = scratch();
        words.clear();
        append_summary_message(words, d);
        w.member("summary", words);
        w.key("closest_rule");
        if (d.closest) {
            const auto& c = *d.closest;
            w.begin_object();
            w.member("rule", c.rule);
            if (c.action) {
                w.member("rule_name", c.rule_name);
                w.member("action", rule_action_name(*c.action));
            }
            w.key("peer");
            c.peer >= 0 ? w.number(c.peer) : w.null();
            w.member("ports_match", c.ports_match);
            w.member("peers_match", c.peers_match);
            w.key("misses");
            w.begin_array();
            for (const auto& m : c.misses) {
                w.begin_object();
                w.member("kind", miss_kind_name(m.kind));
                w.member("near", m.near);
                std::string& words = scratch();
                words.clear();
                append_miss_message(words, m);
                w.member("message", words);
                w.end_object();
            }
            w.end_array();
            w.end_object();
        } else {
            w.null();
        }
        w.end_object();
    }
    w.end_array();
}

void stream_decided_by(JsonWriter& w, const DecidedBy& d) {
    w.begin_object();
    w.member("tier", tier_name(d.tier));
    w.key("policy");
    d.rule ? w.string(d.rule->policy) : w.null();
    w.key("rule");
    d.rule ? w.number(d.rule->rule) : w.null();
    w.key("rule_name");
    d.rule ? w.optional_string(d.rule->rule_name) : w.null();
    w.key("action");
    d.action ? w.string(rule_action_name(*d.action)) : w.null();
    if (d.rule && d.rule->priority) w.member("priority", *d.rule->priority);
    w.end_object();
}

void stream_side(JsonWriter& w, const SideExplanation& s) {
    w.begin_object();
    w.member("isolated", s.isolated);
    w.member("allowed", s.allowed);
    w.member("policies", s.policies);
    w.member("allowed_by", s.allowed_by);
    if (const char* ex = exemption_name(s.exemption)) w.member("exemption", ex);
    w.key("decided_by");
    stream_decided_by(w, s.decided_by);
    w.member("cluster_policies", s.cluster_policies);
    w.key("passed_by");
    w.begin_array();
    for (const auto& p : s.passed_by) w.string(p.policy);
    w.end_array();
    if (!s.passed_by.empty()) {
        w.key("passed_by_rules");
        w.begin_array();
        for (const auto& p : s.passed_by) {
            w.begin_object();
            w.member("policy", p.policy);
            w.member("rule", p.rule);
            w.key("rule_name");
            w.optional_string(p.rule_name);
            if (p.priority) w.member("priority", *p.priority);
            w.end_object();
        }
        w.end_array();
    }
    if (!s.diagnoses.empty()) {
        w.key("diagnosis");
        stream_diagnoses(w, s.diagnoses);
    }
    if (!s.cluster_diagnoses.empty()) {
        w.key("cluster_diagnosis");
        stream_diagnoses(w, s.cluster_diagnoses);
    }
    w.end_object();
}

void stream_explanation(JsonWriter& w, const Explanation& e) {
    w.begin_object();
    w.member("from", e.from);
    w.member("to", e.to);
    w.member("port", e.port);
    w.member("protocol", protocol_name(e.protocol));
    w.member("verdict", e.verdict);
    w.key("src");
    stream_endpoint(w, e.src, false);
    w.key("dst");
    stream_endpoint(w, e.dst, true);
    w.key("egress");
    stream_side(w, e.egress);
    w.key("ingress");
    stream_side(w, e.ingress);
    w.key("hints");
    w.begin_array();
    for (const auto& h : e.hints) {
        w.begin_object();
        w.member("code", h.code);
        w.member("direction", direction_name(h.direction));
        w.member("policy", h.policy);
        std::string& words = scratch();
        words.clear();
        append_hint_message(words, h);
        w.member("message", words);
        w.end_object();
    }
    w.end_array();
    if (!e.notes.empty()) {
        w.key("notes");
        w.begin_array();
        for (const auto& n : e.notes) w.string(note_message(n));
        w.end_array();
    }
    if (e.fixes) {
        // Fixes carry JSON documents of their own (parsed and re-dumped) and cost milliseconds each to find:
        // their DOM is not what a batch pays for.
        w.key("fixes");
        w.begin_array();
        for (const auto& f : *e.fixes) w.raw(fix_json(f).dump(-1, ' ', false, Json::error_handler_t::replace));
        w.end_array();
    }
    if (!e.service.empty()) {
        const auto& s = e.service.front();
        w.key("service");
        w.begin_object();
        w.member("name", s.name);
        w.member("port", s.port);
        if (!s.port_name.empty()) w.member("port_name", s.port_name);
        w.key("endpoints");
        w.begin_array();
        for (const auto& ep : s.endpoints) stream_explanation(w, ep);
        w.end_array();
        w.end_object();
    }
    w.end_object();
}

}  // namespace

void append_explanation_json_line(std::string& out, const Explanation& e) {
    JsonWriter w(out);
    stream_explanation(w, e);
    out += '\n';
}

void write_json_line(std::ostream& out, const Json& j) {
    out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
}

}  // namespace npt

#include "policy/manifest.hpp"

#include <yaml-cpp/yaml.h>

namespace npt {

namespace {

const char* op_name(LabelRequirement::Op op) {
    switch (op) {
        case LabelRequirement::Op::In:
            return "In";
        case LabelRequirement::Op::NotIn:
            return "NotIn";
        case LabelRequirement::Op::Exists:
            return "Exists";
        case LabelRequirement::Op::DoesNotExist:
            return "DoesNotExist";
    }
    return "In";
}

void emit(YAML::Emitter& out, const ManifestJson& v) {
    switch (v.type()) {
        case ManifestJson::value_t::object:
            if (v.empty()) out << YAML::Flow;  // "podSelector: {}"
            out << YAML::BeginMap;
            for (const auto& [k, item] : v.items()) {
                out << YAML::Key << k << YAML::Value;
                emit(out, item);
            }
            out << YAML::EndMap;
            break;
        case ManifestJson::value_t::array:
            if (v.empty()) out << YAML::Flow;
            out << YAML::BeginSeq;
            for (const auto& item : v) emit(out, item);
            out << YAML::EndSeq;
            break;
        case ManifestJson::value_t::string:
            out << YAML::DoubleQuoted << v.get<std::string>();
            break;
        case ManifestJson::value_t::boolean:
            out << (v.get<bool>() ? "true" : "false");
            break;
        case ManifestJson::value_t::number_integer:
        case ManifestJson::value_t::number_unsigned:
            out << v.get<int64_t>();
            break;
        case ManifestJson::value_t::null:
            out << YAML::Null;
            break;
        default:
            out << v.dump();
    }
}

}  // namespace

LabelSelector match_labels(const LabelMap& labels) {
    LabelSelector sel;
    for (const auto& [k, v] : labels) {
        LabelRequirement r;
        r.key = k;
        r.op = LabelRequirement::Op::In;
        r.values = {v};
        r.from_match_labels = true;
        sel.requirements.push_back(std::move(r));
    }
    return sel;
}

ManifestJson selector_json(const LabelSelector& selector) {
    ManifestJson labels = ManifestJson::object(), expressions = ManifestJson::array();
    for (const auto& r : selector.requirements) {
        if (r.from_match_labels && r.op == LabelRequirement::Op::In && r.values.size() == 1) {
            labels[r.key] = r.values[0];
            continue;
        }
        ManifestJson e;
        e["key"] = r.key;
        e["operator"] = op_name(r.op);
        if (r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn) e["values"] = r.values;
        expressions.push_back(std::move(e));
    }
    ManifestJson out = ManifestJson::object();
    if (!labels.empty()) out["matchLabels"] = std::move(labels);
    if (!expressions.empty()) out["matchExpressions"] = std::move(expressions);
    return out;
}

ManifestJson policy_rule_json(const PolicyRule& rule, Direction dir) {
    ManifestJson out = ManifestJson::object();
    if (!rule.peers.empty()) {
        ManifestJson peers = ManifestJson::array();
        for (const auto& peer : rule.peers) {
            ManifestJson p = ManifestJson::object();
            if (peer.ip_block) {
                ManifestJson b;
                b["cidr"] = peer.ip_block->cidr.str();
                if (!peer.ip_block->except.empty()) {
                    b["except"] = ManifestJson::array();
                    for (const auto& e : peer.ip_block->except) b["except"].push_back(e.str());
                }
                p["ipBlock"] = std::move(b);
            }
            if (peer.namespace_selector) p["namespaceSelector"] = selector_json(*peer.namespace_selector);
            if (peer.pod_selector) p["podSelector"] = selector_json(*peer.pod_selector);
            peers.push_back(std::move(p));
        }
        out[dir == Direction::Ingress ? "from" : "to"] = std::move(peers);
    }
    if (!rule.ports.empty()) {
        ManifestJson ports = ManifestJson::array();
        for (const auto& port : rule.ports) {
            ManifestJson p;
            p["protocol"] = protocol_name(port.protocol);
            if (!port.port_name.empty())
                p["port"] = port.port_name;
            else if (port.port)
                p["port"] = *port.port;
            if (port.end_port) p["endPort"] = *port.end_port;
            ports.push_back(std::move(p));
        }
        out["ports"] = std::move(ports);
    }
    return out;
}

ManifestJson policy_rules_json(const std::vector<PolicyRule>& rules, Direction dir) {
    ManifestJson out = ManifestJson::array();
    for (const auto& r : rules) out.push_back(policy_rule_json(r, dir));
    return out;
}

ManifestJson network_policy_json(const NetworkPolicy& policy) {
    ManifestJson out;
    out["apiVersion"] = "networking.k8s.io/v1";
    out["kind"] = "NetworkPolicy";
    out["metadata"] = {{"name", policy.name}, {"namespace", policy.ns}};
    ManifestJson spec;
    spec["podSelector"] = selector_json(policy.pod_selector);
    ManifestJson types = ManifestJson::array();
    if (policy.affects_ingress) types.push_back("Ingress");
    if (policy.affects_egress) types.push_back("Egress");
    spec["policyTypes"] = std::move(types);
    if (!policy.ingress.empty()) spec["ingress"] = policy_rules_json(policy.ingress, Direction::Ingress);
    if (!policy.egress.empty()) spec["egress"] = policy_rules_json(policy.egress, Direction::Egress);
    out["spec"] = std::move(spec);
    return out;
}

std::string manifest_yaml(const ManifestJson& value) {
    YAML::Emitter out;
    out.SetIndent(2);
    out.SetMapFormat(YAML::Block);
    out.SetSeqFormat(YAML::Block);
    emit(out, value);
    return std::string(out.c_str()) + "\n";
}

LabelMap pod_labels(const ClusterState& s, uint32_t pod) {
    LabelMap out;
    for (const auto& l : s.labels(s.pods()[pod].labels)) out.emplace_back(s.str(l.key), s.str(l.value));
    return out;
}

LabelMap stable_labels(const ClusterState& s, uint32_t pod) {
    const auto unstable = [](std::string_view key) {
        return key == "pod-template-hash" || key == "controller-revision-hash" ||
               key == "statefulset.kubernetes.io/pod-name" || key == "apps.kubernetes.io/pod-index" ||
               key == "pod-template-generation";
    };
    LabelMap all = pod_labels(s, pod), stable;
    for (const auto& kv : all)
        if (!unstable(kv.first)) stable.push_back(kv);
    return stable.empty() ? all : stable;
}

}  // namespace npt

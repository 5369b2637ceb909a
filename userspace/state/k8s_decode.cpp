// The decoders are templates over the TreeNode concept (node_adapter.hpp), instantiated for
// simdjson and yaml-cpp: one set of rules for both formats.
#include "state/k8s_decode.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "state/k8s_validation.hpp"
#include "state/node_adapter.hpp"

namespace npt {

using detail::JsonNode;
using detail::node_type_phrase;
using detail::NodeType;
using detail::TreeNode;
using detail::YamlNode;

const char* object_kind_name(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Namespace:
            return "Namespace";
        case ObjectKind::Pod:
            return "Pod";
        case ObjectKind::NetworkPolicy:
            return "NetworkPolicy";
        case ObjectKind::Service:
            return "Service";
        case ObjectKind::EndpointSlice:
            return "EndpointSlice";
        case ObjectKind::Endpoints:
            return "Endpoints";
        case ObjectKind::Node:
            return "Node";
        case ObjectKind::ClusterNetworkPolicy:
            return "ClusterNetworkPolicy";
        case ObjectKind::AdminNetworkPolicy:
            return "AdminNetworkPolicy";
        case ObjectKind::BaselineAdminNetworkPolicy:
            return "BaselineAdminNetworkPolicy";
        case ObjectKind::ReplicaSet:
            return "ReplicaSet";
    }
    return "?";
}

bool is_namespaced(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Namespace:
        case ObjectKind::Node:
        case ObjectKind::ClusterNetworkPolicy:
        case ObjectKind::AdminNetworkPolicy:
        case ObjectKind::BaselineAdminNetworkPolicy:
            return false;
        default:
            return true;
    }
}

std::optional<ObjectKind> known_object_kind(std::string_view api_version, std::string_view kind) {
    const bool any = api_version.empty();
    const bool core = any || api_version == "v1";
    if (kind == "Pod" && core) return ObjectKind::Pod;
    if (kind == "Namespace" && core) return ObjectKind::Namespace;
    if (kind == "Service" && core) return ObjectKind::Service;
    if (kind == "Endpoints" && core) return ObjectKind::Endpoints;
    if (kind == "Node" && core) return ObjectKind::Node;
    // extensions/v1beta1 is the pre-1.16 home of the same NetworkPolicy schema.
    if (kind == "NetworkPolicy" &&
        (any || api_version == "networking.k8s.io/v1" || api_version == "extensions/v1beta1")) {
        return ObjectKind::NetworkPolicy;
    }
    if (kind == "EndpointSlice" &&
        (any || api_version == "discovery.k8s.io/v1" || api_version == "discovery.k8s.io/v1beta1")) {
        return ObjectKind::EndpointSlice;
    }
    // sig-network's policy API: ClusterNetworkPolicy since v1alpha2 (v1beta1 has the same shape), the
    // v1alpha1 AdminNetworkPolicy and BaselineAdminNetworkPolicy before it.
    if (kind == "ClusterNetworkPolicy" && (any || api_version == "policy.networking.k8s.io/v1alpha2" ||
                                           api_version == "policy.networking.k8s.io/v1beta1")) {
        return ObjectKind::ClusterNetworkPolicy;
    }
    if (kind == "AdminNetworkPolicy" && (any || api_version == "policy.networking.k8s.io/v1alpha1"))
        return ObjectKind::AdminNetworkPolicy;
    if (kind == "BaselineAdminNetworkPolicy" && (any || api_version == "policy.networking.k8s.io/v1alpha1"))
        return ObjectKind::BaselineAdminNetworkPolicy;
    if (kind == "ReplicaSet" && (any || api_version == "apps/v1")) return ObjectKind::ReplicaSet;
    return std::nullopt;
}

namespace {

constexpr size_t kMaxQuoted = 80;

// A string as it appears in an error: quoted, control characters escaped (messages are one line),
// long values cut.
std::string quote_value(std::string_view s) {
    std::string out = "\"";
    const bool cut = s.size() > kMaxQuoted;
    for (char ch : cut ? s.substr(0, kMaxQuoted) : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);
        } else {
            out += ch;
        }
    }
    out += cut ? "\"..." : "\"";
    return out;
}

// A field path built on the stack as the decoder descends; rendered only for an error.
// A Path refers to its parent, so it must not outlive it (use it within the call that made it).
struct Path {
    enum class Kind : uint8_t { Root, Field, Index, Key };
    const Path* parent = nullptr;
    Kind kind = Kind::Root;
    std::string_view name;
    size_t index = 0;

    Path field(std::string_view n) const { return {this, Kind::Field, n, 0}; }
    Path at(size_t i) const { return {this, Kind::Index, {}, i}; }
    Path key(std::string_view k) const { return {this, Kind::Key, k, 0}; }

    void render(std::string& out) const {
        if (parent) parent->render(out);
        switch (kind) {
            case Kind::Root:
                break;
            case Kind::Field:
                if (!out.empty()) out += '.';
                out += name;
                break;
            case Kind::Index:
                out += fmt::format("[{}]", index);
                break;
            case Kind::Key: {
                // k8s field paths write map keys in brackets, unquoted: metadata.labels[app]
                const std::string q = quote_value(name);
                out += '[';
                out.append(q, 1, q.size() - 2);
                out += ']';
                break;
            }
        }
    }
};

class Ctx {
  public:
    explicit Ctx(size_t* budget) : budget_(budget) {}

    bool fail(const Path& at, std::string_view message) {
        error.clear();
        at.render(error);
        if (!error.empty()) error += ": ";
        error += message;
        return false;
    }

    bool visit(const Path& at) {
        if (!budget_) return true;
        if (*budget_ == 0) return fail(at, "document expands to too many nodes (YAML aliases?)");
        --*budget_;
        return true;
    }

    std::string error;

  private:
    size_t* budget_;
};

template <TreeNode N>
bool expect(Ctx& c, const N& n, NodeType want, const Path& p) {
    const NodeType t = n.type();
    if (t == want || t == NodeType::Missing) return true;
    return c.fail(p, fmt::format("expected {}, got {}", node_type_phrase(want), node_type_phrase(t)));
}

// Readers leave `out` as it was when the field is absent or null.
template <TreeNode N>
bool read_sv(Ctx& c, const N& n, const Path& p, std::string_view& out) {
    if (!expect(c, n, NodeType::String, p)) return false;
    if (n.type() == NodeType::String) out = n.string();
    return true;
}

template <TreeNode N>
bool read_string(Ctx& c, const N& n, const Path& p, std::string& out) {
    if (!expect(c, n, NodeType::String, p)) return false;
    if (n.type() == NodeType::String) out.assign(n.string());
    return true;
}

template <TreeNode N>
bool read_int(Ctx& c, const N& n, const Path& p, std::optional<int64_t>& out) {
    if (!expect(c, n, NodeType::Int, p)) return false;
    if (n.type() == NodeType::Int) out = n.integer();
    return true;
}

template <TreeNode N>
bool read_bool(Ctx& c, const N& n, const Path& p, bool& out) {
    if (!expect(c, n, NodeType::Bool, p)) return false;
    if (n.type() == NodeType::Bool) out = n.boolean();
    return true;
}

// f(item, path) for each item of a list field; absent or null is an empty list.
template <TreeNode N, typename F>
bool each_item(Ctx& c, const N& list, const Path& p, F&& f) {
    if (!expect(c, list, NodeType::List, p)) return false;
    return list.for_each_item([&](size_t i, const N& item) {
        const Path ip = p.at(i);
        return c.visit(ip) && f(item, ip);
    });
}

// Like each_item, for a list whose items are objects: a null item is an empty object, as in Go.
template <TreeNode N, typename F>
bool each_map_item(Ctx& c, const N& list, const Path& p, F&& f) {
    return each_item(c, list, p,
                     [&](const N& item, const Path& ip) { return expect(c, item, NodeType::Map, ip) && f(item, ip); });
}

bool port_number_ok(Ctx& c, int64_t v, const Path& p) {
    if (v >= 1 && v <= 65535) return true;
    return c.fail(p, fmt::format("invalid port number {} (must be 1-65535)", v));
}

template <TreeNode N>
bool read_port_number(Ctx& c, const N& n, const Path& p, bool required, uint16_t& out) {
    std::optional<int64_t> v;
    if (!read_int(c, n, p, v)) return false;
    if (!v) return required ? c.fail(p, "required") : true;
    if (!port_number_ok(c, *v, p)) return false;
    out = static_cast<uint16_t>(*v);
    return true;
}

template <TreeNode N>
bool read_port_name(Ctx& c, const N& n, const Path& p, std::string& out) {
    if (!read_string(c, n, p, out)) return false;
    if (out.empty()) return true;
    if (auto why = port_name_problem(out))
        return c.fail(p, fmt::format("invalid port name {}: {}", quote_value(out), *why));
    return true;
}

// Core v1 ports (Pod, Service, Endpoints) default an absent or empty protocol to TCP; a
// NetworkPolicy port defaults only an absent one (its protocol is a pointer in the API).
template <TreeNode N>
bool read_protocol(Ctx& c, const N& n, const Path& p, bool empty_is_tcp, Protocol& out) {
    out = Protocol::TCP;
    std::string_view s;
    if (!read_sv(c, n, p, s)) return false;
    if (n.type() == NodeType::Missing || (s.empty() && empty_is_tcp)) return true;
    const auto proto = parse_api_protocol(s);
    if (!proto) return c.fail(p, fmt::format("unsupported protocol {} (must be TCP, UDP or SCTP)", quote_value(s)));
    out = *proto;
    return true;
}

template <TreeNode N>
bool read_ip(Ctx& c, const N& n, const Path& p, std::optional<IpAddr>& out) {
    std::string_view s;
    if (!read_sv(c, n, p, s)) return false;
    if (s.empty()) return true;
    out = IpAddr::parse(s);
    if (!out) return c.fail(p, fmt::format("invalid IP address {}", quote_value(s)));
    return true;
}

void add_unique(std::vector<IpAddr>& ips, const IpAddr& ip) {
    if (std::find(ips.begin(), ips.end(), ip) == ips.end()) ips.push_back(ip);
}

// Sorted by key; for a key given twice the later value wins, as in Go's map decoding.
void normalize_label_map(LabelMap& m) {
    std::stable_sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto out = m.begin();
    for (auto it = m.begin(); it != m.end(); ++it) {
        auto next = std::next(it);
        if (next != m.end() && next->first == it->first) continue;
        if (out != it) *out = std::move(*it);
        ++out;
    }
    m.erase(out, m.end());
}

bool check_label_key(Ctx& c, std::string_view key, const Path& p) {
    if (auto why = label_key_problem(key))
        return c.fail(p, fmt::format("invalid label key {}: {}", quote_value(key), *why));
    return true;
}

bool check_label_value(Ctx& c, std::string_view value, const Path& p) {
    if (auto why = label_value_problem(value)) {
        return c.fail(p, fmt::format("invalid label value {}: {}", quote_value(value), *why));
    }
    return true;
}

// A string-to-string map of labels (metadata.labels, matchLabels, a Service selector).
template <TreeNode N>
bool read_label_map(Ctx& c, const N& n, const Path& p, LabelMap& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    out.reserve(out.size() + n.field_count());
    const bool ok = n.for_each_field([&](std::string_view key, const N& v) {
        const Path kp = p.key(key);
        if (!c.visit(kp) || !check_label_key(c, key, p)) return false;
        std::string value;
        if (!read_string(c, v, kp, value) || !check_label_value(c, value, kp)) return false;
        out.emplace_back(std::string(key), std::move(value));
        return true;
    });
    if (!ok) return false;
    normalize_label_map(out);
    return true;
}

template <TreeNode N>
bool decode_selector(Ctx& c, const N& n, const Path& p, LabelSelector& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    LabelMap match_labels;
    if (!read_label_map(c, n.get("matchLabels"), p.field("matchLabels"), match_labels)) return false;
    for (auto& [key, value] : match_labels) {
        LabelRequirement& r = out.requirements.emplace_back();
        r.key = std::move(key);
        r.op = LabelRequirement::Op::In;
        r.values.push_back(std::move(value));
        r.from_match_labels = true;
    }
    return each_map_item(c, n.get("matchExpressions"), p.field("matchExpressions"), [&](const N& e, const Path& ep) {
        LabelRequirement r;
        const Path kp = ep.field("key");
        if (!read_string(c, e.get("key"), kp, r.key) || !check_label_key(c, r.key, kp)) return false;
        std::string_view op;
        const Path op_path = ep.field("operator");
        if (!read_sv(c, e.get("operator"), op_path, op)) return false;
        if (op == "In") {
            r.op = LabelRequirement::Op::In;
        } else if (op == "NotIn") {
            r.op = LabelRequirement::Op::NotIn;
        } else if (op == "Exists") {
            r.op = LabelRequirement::Op::Exists;
        } else if (op == "DoesNotExist") {
            r.op = LabelRequirement::Op::DoesNotExist;
        } else {
            return c.fail(op_path, fmt::format("unsupported operator {} (must be In, NotIn, Exists or DoesNotExist)",
                                               quote_value(op)));
        }
        const Path vp = ep.field("values");
        const bool ok = each_item(c, e.get("values"), vp, [&](const N& v, const Path& ip) {
            std::string value;
            if (!read_string(c, v, ip, value) || !check_label_value(c, value, ip)) return false;
            r.values.push_back(std::move(value));
            return true;
        });
        if (!ok) return false;
        const bool set_op = r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn;
        if (set_op && r.values.empty()) return c.fail(vp, "must be specified when operator is In or NotIn");
        if (!set_op && !r.values.empty()) {
            return c.fail(vp, "may not be specified when operator is Exists or DoesNotExist");
        }
        out.requirements.push_back(std::move(r));
        return true;
    });
}

// ---- NetworkPolicy ----

template <TreeNode N>
bool decode_cidr(Ctx& c, const N& n, const Path& p, std::string_view& text, std::optional<Cidr>& out) {
    if (!read_sv(c, n, p, text)) return false;
    if (text.empty()) return c.fail(p, "required");
    out = Cidr::parse(text);  // host bits set are accepted and masked, as the API server does
    if (!out) return c.fail(p, fmt::format("invalid CIDR {}", quote_value(text)));
    return true;
}

template <TreeNode N>
bool decode_ip_block(Ctx& c, const N& n, const Path& p, IpBlock& out) {
    std::string_view cidr_text;
    std::optional<Cidr> cidr;
    if (!decode_cidr(c, n.get("cidr"), p.field("cidr"), cidr_text, cidr)) return false;
    out.cidr = *cidr;
    return each_item(c, n.get("except"), p.field("except"), [&](const N& e, const Path& ep) {
        std::string_view text;
        std::optional<Cidr> except;
        if (!decode_cidr(c, e, ep, text, except)) return false;
        if (except->base.family != out.cidr.base.family) {
            return c.fail(
                ep, fmt::format("{} is not of the IP family of cidr {}", quote_value(text), quote_value(cidr_text)));
        }
        if (except->prefix <= out.cidr.prefix || !out.cidr.contains(*except)) {
            return c.fail(
                ep, fmt::format("{} must be a strict subset of cidr {}", quote_value(text), quote_value(cidr_text)));
        }
        out.except.push_back(*except);
        return true;
    });
}

template <TreeNode N>
bool decode_peer(Ctx& c, const N& n, const Path& p, Peer& out) {
    const N pod_sel = n.get("podSelector");
    const N ns_sel = n.get("namespaceSelector");
    const N ip_block = n.get("ipBlock");
    if (pod_sel.type() != NodeType::Missing) {
        if (!decode_selector(c, pod_sel, p.field("podSelector"), out.pod_selector.emplace())) return false;
    }
    if (ns_sel.type() != NodeType::Missing) {
        if (!decode_selector(c, ns_sel, p.field("namespaceSelector"), out.namespace_selector.emplace())) return false;
    }
    if (ip_block.type() != NodeType::Missing) {
        const Path bp = p.field("ipBlock");
        if (!expect(c, ip_block, NodeType::Map, bp)) return false;
        if (!decode_ip_block(c, ip_block, bp, out.ip_block.emplace())) return false;
    }
    if (!out.pod_selector && !out.namespace_selector && !out.ip_block) {
        return c.fail(p, "must specify a peer (podSelector, namespaceSelector or ipBlock)");
    }
    if (out.ip_block && (out.pod_selector || out.namespace_selector)) {
        return c.fail(p, "may not specify both ipBlock and another peer");
    }
    return true;
}

template <TreeNode N>
bool decode_policy_port(Ctx& c, const N& n, const Path& p, PolicyPort& out) {
    if (!read_protocol(c, n.get("protocol"), p.field("protocol"), false, out.protocol)) return false;
    const N port = n.get("port");
    const Path pp = p.field("port");
    switch (port.type()) {
        case NodeType::Missing:
            break;
        case NodeType::Int:
            if (!port_number_ok(c, *port.integer(), pp)) return false;
            out.port = static_cast<uint16_t>(*port.integer());
            break;
        case NodeType::String:
            // An IntOrString given as a string is a name, even when it is all digits.
            if (auto why = port_name_problem(port.string())) {
                return c.fail(pp, fmt::format("invalid port name {}: {}", quote_value(port.string()), *why));
            }
            out.port_name.assign(port.string());
            break;
        default:
            return c.fail(pp, fmt::format("expected an integer or a string, got {}", node_type_phrase(port.type())));
    }
    std::optional<int64_t> end_port;
    const Path ep = p.field("endPort");
    if (!read_int(c, n.get("endPort"), ep, end_port)) return false;
    if (end_port) {
        if (!out.port_name.empty()) return c.fail(ep, "may not be specified when port is a named port");
        if (!out.port) return c.fail(ep, "may not be specified when port is not specified");
        if (*end_port < *out.port) {
            return c.fail(ep, fmt::format("{} must be greater than or equal to port ({})", *end_port, *out.port));
        }
        if (!port_number_ok(c, *end_port, ep)) return false;
        out.end_port = static_cast<uint16_t>(*end_port);
    }
    return true;
}

template <TreeNode N>
bool decode_policy_rules(Ctx& c, const N& list, const Path& p, std::string_view peers_field,
                         std::vector<PolicyRule>& out) {
    return each_map_item(c, list, p, [&](const N& rule_node, const Path& rp) {
        PolicyRule& rule = out.emplace_back();
        // The API server validates a rule's ports before its peers; keep its order of complaints.
        const bool ports_ok = each_map_item(
            c, rule_node.get("ports"), rp.field("ports"),
            [&](const N& port, const Path& pp) { return decode_policy_port(c, port, pp, rule.ports.emplace_back()); });
        if (!ports_ok) return false;
        return each_map_item(c, rule_node.get(peers_field), rp.field(peers_field), [&](const N& peer, const Path& pp) {
            return decode_peer(c, peer, pp, rule.peers.emplace_back());
        });
    });
}

template <TreeNode N>
bool decode_policy_body(Ctx& c, const N& obj, NetworkPolicy& np) {
    const Path root;
    const N spec = obj.get("spec");
    const Path sp = root.field("spec");
    if (!expect(c, spec, NodeType::Map, sp)) return false;
    // podSelector is required by the API but is a struct there: absent decodes as {}, every pod.
    if (!decode_selector(c, spec.get("podSelector"), sp.field("podSelector"), np.pod_selector)) return false;
    const N egress = spec.get("egress");
    if (!decode_policy_rules(c, spec.get("ingress"), sp.field("ingress"), "from", np.ingress)) return false;
    if (!decode_policy_rules(c, egress, sp.field("egress"), "to", np.egress)) return false;

    const N types = spec.get("policyTypes");
    const Path tp = sp.field("policyTypes");
    bool ingress = false, egress_type = false;
    size_t count = 0;
    const bool ok = each_item(c, types, tp, [&](const N& t, const Path& ip) {
        if (++count > 2) return c.fail(tp, "may not specify more than two policyTypes");
        std::string_view s;
        if (!read_sv(c, t, ip, s)) return false;
        if (s == "Ingress") {
            ingress = true;
        } else if (s == "Egress") {
            egress_type = true;
        } else {
            return c.fail(ip, fmt::format("unsupported policy type {} (must be Ingress or Egress)", quote_value(s)));
        }
        return true;
    });
    if (!ok) return false;
    if (count == 0) {
        // SetDefaults_NetworkPolicy: always Ingress; Egress only when egress has rules (an
        // explicit empty `egress: []` does not make the policy affect egress).
        np.affects_ingress = true;
        np.affects_egress = !np.egress.empty();
    } else {
        np.affects_ingress = ingress;
        np.affects_egress = egress_type;
    }
    return true;
}

// ---- ClusterNetworkPolicy (v1alpha2, v1beta1), AdminNetworkPolicy and BaselineAdminNetworkPolicy
// (v1alpha1) ----
//
// The CRDs' OpenAPI and CEL rules, with the API server's wording for what they reject. Fields the schema
// does not know are pruned by the API server: a peer (or a protocol entry) left with none of the fields
// this model knows was written for a newer API and fails closed, as the API asks of implementations.

// What differs between the API generations.
struct ClusterPolicyDialect {
    ClusterPolicyKind kind;
    size_t max_rules;  // per direction
    size_t max_peers;  // per rule
    size_t max_ports;  // per rule
    bool v1alpha1;     // ports[] of portNumber/portRange/namedPort; actions Allow/Deny/Pass
    bool allows_pass;  // BaselineAdminNetworkPolicy has Allow and Deny only
};

constexpr ClusterPolicyDialect kClusterNetworkPolicyDialect{
    ClusterPolicyKind::ClusterNetworkPolicy, 25, 25, 25, false, true};
constexpr ClusterPolicyDialect kAdminNetworkPolicyDialect{
    ClusterPolicyKind::AdminNetworkPolicy, 100, 100, 100, true, true};
constexpr ClusterPolicyDialect kBaselineAdminNetworkPolicyDialect{
    ClusterPolicyKind::BaselineAdminNetworkPolicy, 100, 100, 100, true, false};

bool too_many(Ctx& c, size_t n, size_t max, const Path& p) {
    if (n <= max) return true;
    return c.fail(p, fmt::format("Too many: {}: must have at most {} items", n, max));
}

template <TreeNode N>
bool read_list_size(Ctx& c, const N& n, const Path& p, size_t min, size_t max, bool required) {
    if (!expect(c, n, NodeType::List, p)) return false;
    size_t count = 0;
    n.for_each_item([&](size_t, const N&) {
        ++count;
        return true;
    });
    if (n.type() == NodeType::Missing) return required ? c.fail(p, "Required value") : true;
    if (count < min)
        return c.fail(p, fmt::format("Required value: must have at least {} item{}", min, min == 1 ? "" : "s"));
    return too_many(c, count, max, p);
}

template <TreeNode N>
bool decode_pod_set(Ctx& c, const N& n, const Path& p, bool pods, PodSetSelector& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    if (!pods) return decode_selector(c, n, p, out.namespaces);
    // NamespacedPod: namespaceSelector may be empty (every namespace); podSelector is required.
    if (!decode_selector(c, n.get("namespaceSelector"), p.field("namespaceSelector"), out.namespaces)) return false;
    const N pod_sel = n.get("podSelector");
    if (pod_sel.type() == NodeType::Missing) return c.fail(p.field("podSelector"), "Required value");
    return decode_selector(c, pod_sel, p.field("podSelector"), out.pods.emplace());
}

// The subject: exactly one of namespaces and pods.
template <TreeNode N>
bool decode_subject(Ctx& c, const N& n, const Path& p, PodSetSelector& out) {
    if (n.type() == NodeType::Missing) return c.fail(p, "Required value");
    if (!expect(c, n, NodeType::Map, p)) return false;
    const N ns = n.get("namespaces"), pods = n.get("pods");
    const bool has_ns = ns.type() != NodeType::Missing, has_pods = pods.type() != NodeType::Missing;
    if (has_ns && has_pods) return c.fail(p, "Invalid value: namespaces and pods are both set: exactly one is allowed");
    if (!has_ns && !has_pods) return c.fail(p, "Required value: exactly one of namespaces or pods");
    return has_ns ? decode_pod_set(c, ns, p.field("namespaces"), false, out)
                  : decode_pod_set(c, pods, p.field("pods"), true, out);
}

// A CIDR as isCIDR() accepts it: an address and a prefix length (host bits are kept by the API and masked here).
template <TreeNode N>
bool decode_network(Ctx& c, const N& n, const Path& p, std::vector<Cidr>& out) {
    std::string_view text;
    if (!read_sv(c, n, p, text)) return false;
    if (text.size() > 43) return c.fail(p, fmt::format("Too long: may not be more than 43 bytes"));
    auto cidr = Cidr::parse(text);
    if (!cidr) return c.fail(p, fmt::format("Invalid value: {}: Invalid CIDR format provided", quote_value(text)));
    out.push_back(*cidr);
    return true;
}

bool domain_name_ok(std::string_view d) {
    // ^(\*\.)?([a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$
    if (d.starts_with("*.")) d.remove_prefix(2);
    if (d.ends_with('.')) d.remove_suffix(1);
    size_t labels = 0;
    while (!d.empty()) {
        const size_t dot = d.find('.');
        const std::string_view label = d.substr(0, dot);
        if (label.empty()) return false;
        const auto alnum = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; };
        if (!alnum(label.front()) || !alnum(label.back())) return false;
        for (char ch : label)
            if (!alnum(ch) && ch != '-' && ch != '_') return false;
        ++labels;
        if (dot == std::string_view::npos) break;
        d.remove_prefix(dot + 1);
        if (d.empty()) return false;
    }
    return labels >= 2;
}

template <TreeNode N>
bool decode_cluster_peer(Ctx& c, const N& n, const Path& p, bool egress, const ClusterPolicyDialect& dialect,
                         ClusterPeer& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    size_t known = 0, unknown = 0;
    std::string_view misplaced;
    n.for_each_field([&](std::string_view key, const N&) {
        const bool any_direction = key == "namespaces" || key == "pods";
        const bool egress_only =
            key == "nodes" || key == "networks" ||
            (key == "domainNames" && dialect.kind != ClusterPolicyKind::BaselineAdminNetworkPolicy);
        if (any_direction || (egress && egress_only))
            ++known;
        else if (egress_only)
            misplaced = key;
        else
            ++unknown;
        return true;
    });
    if (!misplaced.empty())
        return c.fail(p.field(misplaced), "Forbidden: not an ingress peer (ingress peers are namespaces or pods)");
    if (known > 1) return c.fail(p, fmt::format("Too many: {}: must have at most 1 items", known));
    if (known == 0) {
        if (unknown == 0) return c.fail(p, "Required value: must have at least 1 items");
        out.kind = ClusterPeer::Kind::Unknown;
        return true;
    }
    if (const N v = n.get("namespaces"); v.type() != NodeType::Missing) {
        out.kind = ClusterPeer::Kind::Namespaces;
        return decode_pod_set(c, v, p.field("namespaces"), false, out.pods);
    }
    if (const N v = n.get("pods"); v.type() != NodeType::Missing) {
        out.kind = ClusterPeer::Kind::Pods;
        return decode_pod_set(c, v, p.field("pods"), true, out.pods);
    }
    if (const N v = n.get("nodes"); v.type() != NodeType::Missing) {
        out.kind = ClusterPeer::Kind::Nodes;
        return decode_selector(c, v, p.field("nodes"), out.nodes);
    }
    if (const N v = n.get("networks"); v.type() != NodeType::Missing) {
        out.kind = ClusterPeer::Kind::Networks;
        const Path np = p.field("networks");
        return read_list_size(c, v, np, 1, 25, true) &&
               each_item(c, v, np, [&](const N& e, const Path& ep) { return decode_network(c, e, ep, out.networks); });
    }
    const N v = n.get("domainNames");
    out.kind = ClusterPeer::Kind::DomainNames;
    const Path dp = p.field("domainNames");
    return read_list_size(c, v, dp, 1, 25, true) && each_item(c, v, dp, [&](const N& e, const Path& ep) {
               std::string name;
               if (!read_string(c, e, ep, name)) return false;
               if (!domain_name_ok(name))
                   return c.fail(ep, fmt::format("Invalid value: {}: not a domain name (an exact name or *.suffix)",
                                                 quote_value(name)));
               out.domain_names.push_back(std::move(name));
               return true;
           });
}

template <TreeNode N>
bool read_port_bound(Ctx& c, const N& n, const Path& p, uint16_t& out) {
    std::optional<int64_t> v;
    if (!read_int(c, n, p, v)) return false;
    if (!v) return c.fail(p, "Required value");
    if (*v < 1) return c.fail(p, fmt::format("Invalid value: {}: should be greater than or equal to 1", *v));
    if (*v > 65535) return c.fail(p, fmt::format("Invalid value: {}: should be less than or equal to 65535", *v));
    out = static_cast<uint16_t>(*v);
    return true;
}

template <TreeNode N>
bool read_port_range(Ctx& c, const N& n, const Path& p, ClusterPort& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    if (!read_port_bound(c, n.get("start"), p.field("start"), out.port) ||
        !read_port_bound(c, n.get("end"), p.field("end"), out.end_port))
        return false;
    if (out.port >= out.end_port) return c.fail(p, "Invalid value: Start port must be less than End port");
    return true;
}

// A cluster policy port is a union of `members`, one set: more is an error, none (or an unknown member only) is a
// port this version does not know. Decides the named-port member too; nothing when the caller decodes the others.
template <TreeNode N>
std::optional<bool> decode_port_union(Ctx& c, const N& n, const Path& p,
                                      std::initializer_list<std::string_view> members, std::string_view named_member,
                                      ClusterPort& out) {
    size_t known = 0;
    n.for_each_field([&](std::string_view key, const N&) {
        known += std::find(members.begin(), members.end(), key) != members.end();
        return true;
    });
    if (known > 1) return c.fail(p, fmt::format("Too many: {}: must have at most 1 items", known));
    if (known == 0) {
        if (n.field_count() == 0) return c.fail(p, "Required value: must have at least 1 items");
        out.kind = ClusterPort::Kind::Unknown;
        return true;
    }
    if (const N named = n.get(named_member); named.type() != NodeType::Missing) {
        out.kind = ClusterPort::Kind::NamedPort;
        const Path np = p.field(named_member);
        if (!read_port_name(c, named, np, out.name)) return false;
        return out.name.empty() ? c.fail(np, "Required value") : true;
    }
    return std::nullopt;
}

// v1alpha2+: {tcp|udp|sctp: {destinationPort: {number | range}}} or {destinationNamedPort: name}.
template <TreeNode N>
bool decode_cluster_protocol(Ctx& c, const N& n, const Path& p, ClusterPort& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    static constexpr std::array<std::pair<std::string_view, Protocol>, 3> kProtocols = {
        {{"tcp", Protocol::TCP}, {"udp", Protocol::UDP}, {"sctp", Protocol::SCTP}}};
    if (const auto done =
            decode_port_union(c, n, p, {"tcp", "udp", "sctp", "destinationNamedPort"}, "destinationNamedPort", out))
        return *done;
    for (const auto& [key, proto] : kProtocols) {
        const N body = n.get(key);
        if (body.type() == NodeType::Missing) continue;
        const Path bp = p.field(key);
        if (!expect(c, body, NodeType::Map, bp)) return false;
        out.kind = ClusterPort::Kind::Port;
        out.protocol = proto;
        const N dest = body.get("destinationPort");
        const Path dp = bp.field("destinationPort");
        // The API requires at least one field here (MinProperties=1) and knows one, destinationPort: an empty
        // body is not an object the API server stores, and other fields are a newer API's narrowing of the
        // match, which fails closed like an unknown peer (an Accept rule does not match on it, a Deny does).
        if (body.field_count() == 0) return c.fail(bp, "Required value: must have at least 1 items");
        if (dest.type() == NodeType::Missing || body.field_count() > 1) {
            out.kind = ClusterPort::Kind::Unknown;
            return true;
        }
        if (!expect(c, dest, NodeType::Map, dp)) return false;
        const N number = dest.get("number"), range = dest.get("range");
        const bool has_number = number.type() != NodeType::Missing, has_range = range.type() != NodeType::Missing;
        if (has_number && has_range) return c.fail(dp, "Too many: 2: must have at most 1 items");
        if (!has_number && !has_range) return c.fail(dp, "Required value: number or range");
        if (has_number) return read_port_bound(c, number, dp.field("number"), out.port);
        return read_port_range(c, range, dp.field("range"), out);
    }
    return true;
}

// v1alpha1: {portNumber: {protocol, port}} | {portRange: {protocol, start, end}} | {namedPort: name}.
template <TreeNode N>
bool decode_v1alpha1_port(Ctx& c, const N& n, const Path& p, ClusterPort& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    if (const auto done = decode_port_union(c, n, p, {"portNumber", "portRange", "namedPort"}, "namedPort", out))
        return *done;
    out.kind = ClusterPort::Kind::Port;
    if (const N num = n.get("portNumber"); num.type() != NodeType::Missing) {
        const Path np = p.field("portNumber");
        if (!expect(c, num, NodeType::Map, np)) return false;
        return read_protocol(c, num.get("protocol"), np.field("protocol"), true, out.protocol) &&
               read_port_bound(c, num.get("port"), np.field("port"), out.port);
    }
    const N range = n.get("portRange");
    const Path rp = p.field("portRange");
    if (!expect(c, range, NodeType::Map, rp)) return false;
    return read_protocol(c, range.get("protocol"), rp.field("protocol"), true, out.protocol) &&
           read_port_range(c, range, rp, out);
}

template <TreeNode N>
bool decode_cluster_action(Ctx& c, const N& n, const Path& p, const ClusterPolicyDialect& dialect, RuleAction& out) {
    std::string_view s;
    if (!read_sv(c, n, p, s)) return false;
    if (n.type() == NodeType::Missing) return c.fail(p, "Required value");
    const std::string_view accept = dialect.v1alpha1 ? "Allow" : "Accept";
    if (s == accept) {
        out = RuleAction::Accept;
    } else if (s == "Deny") {
        out = RuleAction::Deny;
    } else if (s == "Pass" && dialect.allows_pass) {
        out = RuleAction::Pass;
    } else {
        return c.fail(p, fmt::format("Unsupported value: {}: supported values: \"{}\", \"Deny\"{}", quote_value(s),
                                     accept, dialect.allows_pass ? ", \"Pass\"" : ""));
    }
    return true;
}

template <TreeNode N>
bool decode_cluster_rules(Ctx& c, const N& list, const Path& p, bool egress, const ClusterPolicyDialect& dialect,
                          std::vector<ClusterPolicyRule>& out) {
    if (!read_list_size(c, list, p, 0, dialect.max_rules, false)) return false;
    const std::string_view peers_field = egress ? "to" : "from";
    const std::string_view ports_field = dialect.v1alpha1 ? "ports" : "protocols";
    return each_map_item(c, list, p, [&](const N& rn, const Path& rp) {
        ClusterPolicyRule& rule = out.emplace_back();
        const Path name_path = rp.field("name");
        if (!read_string(c, rn.get("name"), name_path, rule.name)) return false;
        if (rule.name.size() > 100) return c.fail(name_path, "Too long: may not be more than 100 bytes");
        if (!decode_cluster_action(c, rn.get("action"), rp.field("action"), dialect, rule.action)) return false;
        const N peers = rn.get(peers_field);
        const Path pp = rp.field(peers_field);
        if (!read_list_size(c, peers, pp, 1, dialect.max_peers, true)) return false;
        if (!each_map_item(c, peers, pp, [&](const N& peer, const Path& ip) {
                return decode_cluster_peer(c, peer, ip, egress, dialect, rule.peers.emplace_back());
            }))
            return false;
        const N ports = rn.get(ports_field);
        const Path portp = rp.field(ports_field);
        if (!read_list_size(c, ports, portp, 1, dialect.max_ports, false)) return false;
        if (!each_map_item(c, ports, portp, [&](const N& port, const Path& ip) {
                ClusterPort& cp = rule.ports.emplace_back();
                return dialect.v1alpha1 ? decode_v1alpha1_port(c, port, ip, cp)
                                        : decode_cluster_protocol(c, port, ip, cp);
            }))
            return false;
        // A named port exists only on pods.
        const bool named = std::any_of(rule.ports.begin(), rule.ports.end(),
                                       [](const ClusterPort& x) { return x.kind == ClusterPort::Kind::NamedPort; });
        const bool non_pod_peer = std::any_of(rule.peers.begin(), rule.peers.end(), [](const ClusterPeer& x) {
            return x.kind == ClusterPeer::Kind::Nodes || x.kind == ClusterPeer::Kind::Networks ||
                   x.kind == ClusterPeer::Kind::DomainNames;
        });
        if (named && non_pod_peer)
            return c.fail(rp,
                          "Invalid value: networks/nodes/domainNames peer cannot be set with namedPorts since there "
                          "are no namedPorts for networks/nodes/domainNames");
        return true;
    });
}

template <TreeNode N>
bool decode_cluster_policy_body(Ctx& c, const N& obj, const ClusterPolicyDialect& dialect, ClusterNetworkPolicy& cnp) {
    const Path root;
    const N spec = obj.get("spec");
    const Path sp = root.field("spec");
    if (spec.type() == NodeType::Missing) return c.fail(sp, "Required value");
    if (!expect(c, spec, NodeType::Map, sp)) return false;
    cnp.kind = dialect.kind;
    if (dialect.kind == ClusterPolicyKind::BaselineAdminNetworkPolicy) {
        cnp.tier = PolicyTier::Baseline;
        if (cnp.name != "default")
            return c.fail(root.field("metadata").field("name"),
                          fmt::format("Invalid value: {}: Only one baseline admin network policy with "
                                      "metadata.name=\"default\" can be created in the cluster",
                                      quote_value(cnp.name)));
    } else if (dialect.kind == ClusterPolicyKind::AdminNetworkPolicy) {
        cnp.tier = PolicyTier::Admin;
    } else {
        std::string_view tier;
        const N t = spec.get("tier");
        const Path tp = sp.field("tier");
        if (!read_sv(c, t, tp, tier)) return false;
        if (t.type() == NodeType::Missing) return c.fail(tp, "Required value");
        if (tier == "Admin")
            cnp.tier = PolicyTier::Admin;
        else if (tier == "Baseline")
            cnp.tier = PolicyTier::Baseline;
        else
            return c.fail(
                tp, fmt::format("Unsupported value: {}: supported values: \"Admin\", \"Baseline\"", quote_value(tier)));
    }
    if (dialect.kind != ClusterPolicyKind::BaselineAdminNetworkPolicy) {
        std::optional<int64_t> priority;
        const Path pp = sp.field("priority");
        if (!read_int(c, spec.get("priority"), pp, priority)) return false;
        if (!priority) return c.fail(pp, "Required value");
        if (*priority < 0)
            return c.fail(pp, fmt::format("Invalid value: {}: should be greater than or equal to 0", *priority));
        if (*priority > 1000)
            return c.fail(pp, fmt::format("Invalid value: {}: should be less than or equal to 1000", *priority));
        cnp.priority = static_cast<int32_t>(*priority);
    }
    return decode_subject(c, spec.get("subject"), sp.field("subject"), cnp.subject) &&
           decode_cluster_rules(c, spec.get("ingress"), sp.field("ingress"), false, dialect, cnp.ingress) &&
           decode_cluster_rules(c, spec.get("egress"), sp.field("egress"), true, dialect, cnp.egress);
}

// ---- Pod ----

template <TreeNode N>
bool decode_container_ports(Ctx& c, const N& containers, const Path& p, std::vector<ContainerPort>& out) {
    return each_map_item(c, containers, p, [&](const N& ctr, const Path& cp) {
        return each_map_item(c, ctr.get("ports"), cp.field("ports"), [&](const N& port, const Path& pp) {
            ContainerPort& cport = out.emplace_back();
            return read_port_name(c, port.get("name"), pp.field("name"), cport.name) &&
                   read_port_number(c, port.get("containerPort"), pp.field("containerPort"), true, cport.port) &&
                   read_protocol(c, port.get("protocol"), pp.field("protocol"), true, cport.protocol);
        });
    });
}

template <TreeNode N>
bool decode_pod_body(Ctx& c, const N& obj, PodInfo& pod) {
    const Path root;
    const N spec = obj.get("spec");
    const Path sp = root.field("spec");
    if (!expect(c, spec, NodeType::Map, sp)) return false;
    if (!read_bool(c, spec.get("hostNetwork"), sp.field("hostNetwork"), pod.host_network)) return false;
    if (!read_string(c, spec.get("nodeName"), sp.field("nodeName"), pod.node)) return false;
    if (!decode_container_ports(c, spec.get("containers"), sp.field("containers"), pod.ports)) return false;
    // Init containers' ports matter for sidecars (restartPolicy: Always), which keep serving.
    if (!decode_container_ports(c, spec.get("initContainers"), sp.field("initContainers"), pod.ports)) return false;

    const N status = obj.get("status");
    const Path st = root.field("status");
    if (!expect(c, status, NodeType::Map, st)) return false;
    if (!read_string(c, status.get("phase"), st.field("phase"), pod.phase)) return false;
    std::optional<IpAddr> pod_ip;
    if (!read_ip(c, status.get("podIP"), st.field("podIP"), pod_ip)) return false;
    const bool ok = each_map_item(c, status.get("podIPs"), st.field("podIPs"), [&](const N& e, const Path& ep) {
        std::optional<IpAddr> ip;
        if (!read_ip(c, e.get("ip"), ep.field("ip"), ip)) return false;
        if (ip) add_unique(pod.ips, *ip);
        return true;
    });
    if (!ok) return false;
    if (pod_ip) add_unique(pod.ips, *pod_ip);  // podIPs[0] is podIP; older objects have podIP only
    return read_ip(c, status.get("hostIP"), st.field("hostIP"), pod.host_ip);
}

// ---- Service ----

template <TreeNode N>
bool read_cluster_ip(Ctx& c, const N& n, const Path& p, std::vector<IpAddr>& out, bool& headless) {
    std::string_view s;
    if (!read_sv(c, n, p, s)) return false;
    if (s == "None") {
        headless = true;
        return true;
    }
    std::optional<IpAddr> ip;
    if (!read_ip(c, n, p, ip)) return false;
    if (ip) add_unique(out, *ip);
    return true;
}

template <TreeNode N>
bool decode_service_body(Ctx& c, const N& obj, ServiceInfo& svc) {
    const Path root;
    const N spec = obj.get("spec");
    const Path sp = root.field("spec");
    if (!expect(c, spec, NodeType::Map, sp)) return false;
    svc.type = "ClusterIP";
    if (!read_string(c, spec.get("type"), sp.field("type"), svc.type)) return false;
    if (svc.type.empty()) svc.type = "ClusterIP";

    bool headless = false;
    if (!read_cluster_ip(c, spec.get("clusterIP"), sp.field("clusterIP"), svc.cluster_ips, headless)) return false;
    const bool ok = each_item(c, spec.get("clusterIPs"), sp.field("clusterIPs"), [&](const N& e, const Path& ep) {
        return read_cluster_ip(c, e, ep, svc.cluster_ips, headless);
    });
    if (!ok) return false;
    if (headless) svc.cluster_ips.clear();
    const bool ext_ok = each_item(c, spec.get("externalIPs"), sp.field("externalIPs"), [&](const N& e, const Path& ep) {
        std::optional<IpAddr> ip;
        if (!read_ip(c, e, ep, ip)) return false;
        if (ip) add_unique(svc.external_ips, *ip);
        return true;
    });
    if (!ext_ok) return false;

    const bool ports_ok = each_map_item(c, spec.get("ports"), sp.field("ports"), [&](const N& n, const Path& pp) {
        ServicePort& port = svc.ports.emplace_back();
        if (!read_string(c, n.get("name"), pp.field("name"), port.name)) return false;
        if (!read_protocol(c, n.get("protocol"), pp.field("protocol"), true, port.protocol)) return false;
        if (!read_port_number(c, n.get("port"), pp.field("port"), true, port.port)) return false;
        std::optional<int64_t> node_port;
        const Path np_path = pp.field("nodePort");
        if (!read_int(c, n.get("nodePort"), np_path, node_port)) return false;
        if (node_port && *node_port != 0) {
            if (!port_number_ok(c, *node_port, np_path)) return false;
            port.node_port = static_cast<uint16_t>(*node_port);
        }
        const N target = n.get("targetPort");
        const Path tp = pp.field("targetPort");
        switch (target.type()) {
            case NodeType::Missing:
                break;
            case NodeType::Int:
                // 0 is defaulted to port, like an absent targetPort.
                if (*target.integer() != 0) {
                    if (!port_number_ok(c, *target.integer(), tp)) return false;
                    port.target_port = static_cast<uint16_t>(*target.integer());
                }
                break;
            case NodeType::String:
                if (!read_port_name(c, target, tp, port.target_port_name)) return false;
                break;
            default:
                return c.fail(tp,
                              fmt::format("expected an integer or a string, got {}", node_type_phrase(target.type())));
        }
        if (port.target_port == 0 && port.target_port_name.empty()) port.target_port = port.port;
        return true;
    });
    if (!ports_ok) return false;

    // Absent and empty selectors both mean endpoints are not managed from pods.
    LabelMap selector;
    if (!read_label_map(c, spec.get("selector"), sp.field("selector"), selector)) return false;
    if (!selector.empty()) svc.selector = std::move(selector);
    return true;
}

// ---- EndpointSlice and Endpoints ----

template <TreeNode N>
bool decode_endpoint_ports(Ctx& c, const N& list, const Path& p, std::vector<EndpointPort>& out) {
    return each_map_item(c, list, p, [&](const N& n, const Path& pp) {
        EndpointPort& port = out.emplace_back();
        // A slice port without a number stands for every port; it stays 0.
        return read_string(c, n.get("name"), pp.field("name"), port.name) &&
               read_protocol(c, n.get("protocol"), pp.field("protocol"), true, port.protocol) &&
               read_port_number(c, n.get("port"), pp.field("port"), false, port.port);
    });
}

template <TreeNode N>
bool read_target_ref(Ctx& c, const N& n, const Path& p, std::string_view default_ns, EndpointAddress& out) {
    if (!expect(c, n, NodeType::Map, p)) return false;
    std::string_view kind, ns, name;
    if (!read_sv(c, n.get("kind"), p.field("kind"), kind) ||
        !read_sv(c, n.get("namespace"), p.field("namespace"), ns) ||
        !read_sv(c, n.get("name"), p.field("name"), name)) {
        return false;
    }
    if (kind == "Pod" && !name.empty()) {
        out.pod_ns.assign(ns.empty() ? default_ns : ns);
        out.pod_name.assign(name);
    }
    return true;
}

template <TreeNode N>
bool decode_endpoint_slice_body(Ctx& c, const N& obj, EndpointSliceInfo& slice) {
    const Path root;
    std::string_view address_type;
    if (!read_sv(c, obj.get("addressType"), root.field("addressType"), address_type)) return false;
    const bool fqdn = address_type == "FQDN";  // hostnames, not IPs: nothing the engine can match
    const bool ok = each_map_item(c, obj.get("endpoints"), root.field("endpoints"), [&](const N& e, const Path& ep) {
        EndpointAddress proto_addr;
        const N conditions = e.get("conditions");
        const Path cp = ep.field("conditions");
        if (!expect(c, conditions, NodeType::Map, cp)) return false;
        if (!read_bool(c, conditions.get("ready"), cp.field("ready"), proto_addr.ready)) return false;
        if (!read_target_ref(c, e.get("targetRef"), ep.field("targetRef"), slice.ns, proto_addr)) return false;
        return each_item(c, e.get("addresses"), ep.field("addresses"), [&](const N& a, const Path& ap) {
            if (fqdn) return expect(c, a, NodeType::String, ap);
            std::optional<IpAddr> ip;
            if (!read_ip(c, a, ap, ip)) return false;
            if (!ip) return c.fail(ap, "required");
            EndpointAddress& addr = slice.endpoints.emplace_back(proto_addr);
            addr.ip = *ip;
            return true;
        });
    });
    return ok && decode_endpoint_ports(c, obj.get("ports"), root.field("ports"), slice.ports);
}

template <TreeNode N>
bool decode_endpoints_body(Ctx& c, const N& obj, EndpointsInfo& eps) {
    const Path root;
    return each_map_item(c, obj.get("subsets"), root.field("subsets"), [&](const N& subset, const Path& sp) {
        EndpointSliceInfo& slice = eps.slices.emplace_back();
        slice.ns = eps.ns;
        slice.name = fmt::format("{}/subsets[{}]", eps.name, sp.index);
        slice.service = eps.name;
        auto addresses = [&](std::string_view field, bool ready) {
            return each_map_item(c, subset.get(field), sp.field(field), [&](const N& a, const Path& ap) {
                EndpointAddress addr;
                addr.ready = ready;
                std::optional<IpAddr> ip;
                const Path ip_path = ap.field("ip");
                if (!read_ip(c, a.get("ip"), ip_path, ip)) return false;
                if (!ip) return c.fail(ip_path, "required");
                addr.ip = *ip;
                if (!read_target_ref(c, a.get("targetRef"), ap.field("targetRef"), eps.ns, addr)) return false;
                slice.endpoints.push_back(std::move(addr));
                return true;
            });
        };
        return addresses("addresses", true) && addresses("notReadyAddresses", false) &&
               decode_endpoint_ports(c, subset.get("ports"), sp.field("ports"), slice.ports);
    });
}

// ---- Node ----

template <TreeNode N>
bool decode_node_body(Ctx& c, const N& obj, NodeInfo& node) {
    const Path root;
    const N status = obj.get("status");
    const Path st = root.field("status");
    if (!expect(c, status, NodeType::Map, st)) return false;
    return each_map_item(c, status.get("addresses"), st.field("addresses"), [&](const N& a, const Path& ap) {
        std::string_view type;
        if (!read_sv(c, a.get("type"), ap.field("type"), type)) return false;
        if (type != "InternalIP" && type != "ExternalIP") return true;  // Hostname, InternalDNS, ...
        std::optional<IpAddr> ip;
        if (!read_ip(c, a.get("address"), ap.field("address"), ip)) return false;
        if (ip) add_unique(node.addresses, *ip);
        return true;
    });
}

// ---- Objects ----

struct Meta {
    std::string name;
    std::string ns;
    LabelMap labels;
    std::string owner_kind;  // the controller owner reference
    std::string owner_name;
};

// The ownerReferences entry with controller: true (a pod's ReplicaSet, StatefulSet, ...).
template <TreeNode N>
bool read_controller_owner(Ctx& c, const N& refs, const Path& p, Meta& meta) {
    return each_map_item(c, refs, p, [&](const N& ref, const Path& rp) {
        bool controller = false;
        if (!read_bool(c, ref.get("controller"), rp.field("controller"), controller)) return false;
        if (!controller) return true;
        return read_string(c, ref.get("kind"), rp.field("kind"), meta.owner_kind) &&
               read_string(c, ref.get("name"), rp.field("name"), meta.owner_name);
    });
}

std::string object_label(ObjectKind kind, std::string_view ns, std::string_view name) {
    if (!is_namespaced(kind)) return fmt::format("{} {}", object_kind_name(kind), name);
    return fmt::format("{} {}/{}", object_kind_name(kind), ns, name);
}

template <TreeNode N>
Result<DecodedObject> decode_known(const N& obj, ObjectKind kind, const DecodeContext& dc) {
    Ctx c(dc.node_budget);
    std::string label = object_kind_name(kind);
    if (!dc.where.empty()) fmt::format_to(std::back_inserter(label), " {}", dc.where);
    auto failed = [&] { return Error{fmt::format("{}: {}", label, c.error)}; };

    if (obj.type() != NodeType::Map) {
        return Error{fmt::format("{}: expected a map, got {}", label, node_type_phrase(obj.type()))};
    }
    const Path root;
    const N meta_node = obj.get("metadata");
    const Path mp = root.field("metadata");
    Meta meta;
    if (!expect(c, meta_node, NodeType::Map, mp) ||
        !read_string(c, meta_node.get("name"), mp.field("name"), meta.name) ||
        !read_string(c, meta_node.get("namespace"), mp.field("namespace"), meta.ns)) {
        return failed();
    }
    if (meta.name.empty()) {
        c.fail(mp.field("name"), "required");
        return failed();
    }
    if (auto why = object_name_problem(meta.name)) {
        c.fail(mp.field("name"), fmt::format("invalid name {}: {}", quote_value(meta.name), *why));
        return failed();
    }
    if (is_namespaced(kind)) {
        if (meta.ns.empty()) meta.ns = "default";
        if (auto why = namespace_name_problem(meta.ns)) {
            c.fail(mp.field("namespace"), fmt::format("invalid namespace {}: {}", quote_value(meta.ns), *why));
            return failed();
        }
    } else {
        meta.ns.clear();
    }
    label = object_label(kind, meta.ns, meta.name);
    if (!read_label_map(c, meta_node.get("labels"), mp.field("labels"), meta.labels)) return failed();
    if ((kind == ObjectKind::Pod || kind == ObjectKind::ReplicaSet) &&
        !read_controller_owner(c, meta_node.get("ownerReferences"), mp.field("ownerReferences"), meta))
        return failed();

    auto finish = [&](auto&& value, bool ok) -> Result<DecodedObject> {
        if (!ok) return failed();
        return DecodedObject(std::forward<decltype(value)>(value));
    };
    switch (kind) {
        case ObjectKind::Namespace: {
            NamespaceInfo ns{std::move(meta.name), std::move(meta.labels)};
            return finish(std::move(ns), true);
        }
        case ObjectKind::Pod: {
            PodInfo pod;
            pod.ns = std::move(meta.ns);
            pod.name = std::move(meta.name);
            pod.labels = std::move(meta.labels);
            pod.owner_kind = std::move(meta.owner_kind);
            pod.owner_name = std::move(meta.owner_name);
            const bool ok = decode_pod_body(c, obj, pod);
            return finish(std::move(pod), ok);
        }
        case ObjectKind::NetworkPolicy: {
            NetworkPolicy np;
            np.ns = std::move(meta.ns);
            np.name = std::move(meta.name);
            const bool ok = decode_policy_body(c, obj, np);
            return finish(std::move(np), ok);
        }
        case ObjectKind::Service: {
            ServiceInfo svc;
            svc.ns = std::move(meta.ns);
            svc.name = std::move(meta.name);
            const bool ok = decode_service_body(c, obj, svc);
            return finish(std::move(svc), ok);
        }
        case ObjectKind::EndpointSlice: {
            EndpointSliceInfo slice;
            slice.ns = std::move(meta.ns);
            slice.name = std::move(meta.name);
            for (auto& [k, v] : meta.labels) {
                if (k == "kubernetes.io/service-name") slice.service = std::move(v);
            }
            const bool ok = decode_endpoint_slice_body(c, obj, slice);
            return finish(std::move(slice), ok);
        }
        case ObjectKind::Endpoints: {
            EndpointsInfo eps;
            eps.ns = std::move(meta.ns);
            eps.name = std::move(meta.name);
            const bool ok = decode_endpoints_body(c, obj, eps);
            return finish(std::move(eps), ok);
        }
        case ObjectKind::Node: {
            NodeInfo node;
            node.name = std::move(meta.name);
            node.labels = std::move(meta.labels);
            const bool ok = decode_node_body(c, obj, node);
            return finish(std::move(node), ok);
        }
        case ObjectKind::ClusterNetworkPolicy:
        case ObjectKind::AdminNetworkPolicy:
        case ObjectKind::BaselineAdminNetworkPolicy: {
            ClusterNetworkPolicy cnp;
            cnp.name = std::move(meta.name);
            const auto& dialect = kind == ObjectKind::ClusterNetworkPolicy ? kClusterNetworkPolicyDialect
                                  : kind == ObjectKind::AdminNetworkPolicy ? kAdminNetworkPolicyDialect
                                                                           : kBaselineAdminNetworkPolicyDialect;
            const bool ok = decode_cluster_policy_body(c, obj, dialect, cnp);
            return finish(std::move(cnp), ok);
        }
        case ObjectKind::ReplicaSet: {
            ReplicaSetInfo rs{std::move(meta.ns), std::move(meta.name), std::move(meta.owner_kind),
                              std::move(meta.owner_name)};
            return finish(std::move(rs), true);
        }
    }
    return Error{label + ": unsupported kind"};
}

template <TreeNode N>
Result<DecodedObject> decode_any(const N& obj, const DecodeContext& dc) {
    const std::string where = dc.where.empty() ? std::string() : fmt::format("{}: ", dc.where);
    if (obj.type() != NodeType::Map) {
        return Error{
            fmt::format("{}expected a Kubernetes object (a map), got {}", where, node_type_phrase(obj.type()))};
    }
    Ctx c(nullptr);
    const Path root;
    std::string_view kind, api_version;
    if (!read_sv(c, obj.get("kind"), root.field("kind"), kind) ||
        !read_sv(c, obj.get("apiVersion"), root.field("apiVersion"), api_version)) {
        return Error{where + c.error};
    }
    if (kind.empty()) kind = dc.default_kind;
    if (api_version.empty()) api_version = dc.default_api_version;
    if (kind.empty()) return Error{where + "kind: required"};
    const auto known = known_object_kind(api_version, kind);
    if (!known) return DecodedObject(IgnoredObject{std::string(api_version), std::string(kind)});
    return decode_known(obj, *known, dc);
}

template <typename T>
Result<T> decode_json_as(simdjson::dom::element obj, ObjectKind kind) {
    auto r = decode_known(JsonNode(obj), kind, DecodeContext{});
    if (!r) return r.error();
    return std::get<T>(std::move(*r));
}

}  // namespace

Result<DecodedObject> decode_object(simdjson::dom::element obj, const DecodeContext& ctx) {
    return decode_any(JsonNode(obj), ctx);
}

Result<DecodedObject> decode_object(const YAML::Node& obj, const DecodeContext& ctx) {
    try {
        return decode_any(YamlNode(obj), ctx);
    } catch (const std::exception& e) {
        // yaml-cpp throws on misuse only; keep the no-throw contract if it ever does.
        return Error{
            fmt::format("{}internal YAML error: {}", ctx.where.empty() ? "" : std::string(ctx.where) + ": ", e.what())};
    }
}

Result<NamespaceInfo> decode_namespace(simdjson::dom::element obj) {
    return decode_json_as<NamespaceInfo>(obj, ObjectKind::Namespace);
}
Result<PodInfo> decode_pod(simdjson::dom::element obj) {
    return decode_json_as<PodInfo>(obj, ObjectKind::Pod);
}
Result<NetworkPolicy> decode_network_policy(simdjson::dom::element obj) {
    return decode_json_as<NetworkPolicy>(obj, ObjectKind::NetworkPolicy);
}
Result<ServiceInfo> decode_service(simdjson::dom::element obj) {
    return decode_json_as<ServiceInfo>(obj, ObjectKind::Service);
}
Result<EndpointSliceInfo> decode_endpoint_slice(simdjson::dom::element obj) {
    return decode_json_as<EndpointSliceInfo>(obj, ObjectKind::EndpointSlice);
}
Result<NodeInfo> decode_node(simdjson::dom::element obj) {
    return decode_json_as<NodeInfo>(obj, ObjectKind::Node);
}
Result<ClusterNetworkPolicy> decode_cluster_policy(simdjson::dom::element obj, ObjectKind kind) {
    return decode_json_as<ClusterNetworkPolicy>(obj, kind);
}

}  // namespace npt

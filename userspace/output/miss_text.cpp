#include "output/miss_text.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <type_traits>

namespace npt {

namespace {

// The words are appended piece by piece: text as it is, an integer in decimal.
void append_piece(std::string& out, std::string_view text) {
    out.append(text);
}
void append_piece(std::string& out, char c) {
    out.push_back(c);
}
template <typename N>
requires std::is_integral_v<N>
void append_piece(std::string& out, N n) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
    out.append(buf, static_cast<size_t>(end - buf));
}
template <typename... Pieces>
void append(std::string& out, const Pieces&... pieces) {
    (append_piece(out, pieces), ...);
}
template <typename... Pieces>
std::string append_text(const Pieces&... pieces) {
    std::string out;
    append(out, pieces...);
    return out;
}

// A cluster policy's tier as the words name it: the Baseline tier's, or the Admin tier's.
const char* cluster_tier_word(DecidingTier t) {
    return t == DecidingTier::Baseline ? "baseline" : "admin";
}

const char* remote_role(Direction d) {
    return d == Direction::Ingress ? "source" : "destination";
}

template <typename T, typename Each>
void append_list(std::string& out, const std::vector<T>& items, Each&& each) {
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        each(items[i]);
    }
}

void append_requirement(std::string& out, const LabelMiss& m) {
    auto values = [&] { append_list(out, m.values, [&](const std::string& v) { out += v; }); };
    switch (m.op) {
        case LabelRequirement::Op::In:
            if (m.values.size() == 1) {
                append(out, m.key, '=', m.values[0]);
            } else {
                append(out, m.key, " in (");
                values();
                out += ')';
            }
            return;
        case LabelRequirement::Op::NotIn:
            append(out, m.key, " notin (");
            values();
            out += ')';
            return;
        case LabelRequirement::Op::Exists:
            append(out, m.key, " (exists)");
            return;
        case LabelRequirement::Op::DoesNotExist:
            append(out, "no ", m.key, " label");
            return;
    }
}

void append_subject(std::string& out, const LabelMiss& m, Direction dir) {
    switch (m.subject) {
        case LabelMiss::Subject::Pod:
            append(out, remote_role(dir), " pod ", m.name);
            return;
        case LabelMiss::Subject::Namespace:
            append(out, "its namespace ", m.name);
            return;
        case LabelMiss::Subject::PodNamespace:
            append(out, "the namespace ", m.name, " of ", remote_role(dir), " pod ", m.pod);
            return;
        case LabelMiss::Subject::Node:
            append(out, remote_role(dir), " node ", m.name);
            return;
    }
}

// "a=1, b=2" sorted as text, or "no labels".
void append_labels(std::string& out, const LabelMiss& m) {
    std::vector<std::string> parts;
    parts.reserve(m.labels.size());
    for (const auto& [k, v] : m.labels) parts.push_back(k + "=" + v);
    std::sort(parts.begin(), parts.end());
    if (parts.empty()) out += "no labels";
    append_list(out, parts, [&](const std::string& p) { out += p; });
}

void append_label_miss(std::string& out, const LabelMiss& m, const Miss& miss) {
    out += selector_field_name(m.field);
    const bool exists = m.op == LabelRequirement::Op::Exists;
    if (exists) {
        append(out, " needs label ", m.key, "; ");
    } else {
        out += " needs ";
        append_requirement(out, m);
        out += "; ";
    }
    append_subject(out, m, miss.direction);
    switch (m.found) {
        case LabelMiss::Found::Value:
            append(out, " has ", m.key, '=', m.value);
            if (m.op == LabelRequirement::Op::In && miss.near) out += " (a small edit away)";
            return;
        case LabelMiss::Found::ValueElsewhere:
            append(out, " has no ", m.key, " label but carries the value as ", m.label.first, '=', m.label.second);
            return;
        case LabelMiss::Found::SimilarKey:
            append(out, " has ", m.label.first, '=', m.label.second, " (a similar key)");
            return;
        case LabelMiss::Found::Labels:
            if (exists) {
                out += " has ";
                append_labels(out, m);
            } else {
                append(out, " has no ", m.key, " label (");
                append_labels(out, m);
                out += ')';
            }
            return;
    }
}

// "10.0.0.5 (node worker-1)", "pod shop/cart-1", ...
void append_remote(std::string& out, const RemoteEnd& r) {
    if (r.pod) {
        append(out, "pod ", *r.pod);
    } else if (r.host_network_pod) {
        append(out, r.ip.str(), " (hostNetwork pod ", *r.host_network_pod, ')');
    } else if (r.node) {
        append(out, r.ip.str(), " (node ", *r.node, ')');
    } else {
        out += r.ip.str();
    }
}

void append_not_an_endpoint(std::string& out, const NotAnEndpointMiss& m, Direction dir) {
    const char* role = remote_role(dir);
    switch (m.peer) {
        case NotAnEndpointMiss::Peer::Selector:
            append(out, "pod/namespace selectors match pods only; ", role, ' ');
            append_remote(out, m.remote);
            out += " is not a pod IP (only an ipBlock can allow it)";
            return;
        case NotAnEndpointMiss::Peer::Pods:
        case NotAnEndpointMiss::Peer::Namespaces:
            append(out, "a ", m.peer == NotAnEndpointMiss::Peer::Pods ? "pods" : "namespaces",
                   " peer matches pods only; ", role, ' ');
            append_remote(out, m.remote);
            out += " is not a pod IP";
            if (dir == Direction::Egress) out += " (a nodes or networks peer can match it)";
            return;
        case NotAnEndpointMiss::Peer::Nodes:
            append(out, "a nodes peer matches node addresses; ", role, ' ');
            append_remote(out, m.remote);
            out += " is not one";
            return;
    }
}

void append_port_entry(std::string& out, const PortEntry& e, bool cluster) {
    const char* proto = e.protocol ? protocol_name(*e.protocol) : "";
    switch (e.kind) {
        case PortEntry::Kind::Unknown:
            out += "a protocol entry of a newer API";
            return;
        case PortEntry::Kind::Named:
            if (cluster)
                append(out, "named port ", e.name);
            else if (e.resolved)
                append(out, proto, '/', e.name, " (= ", *e.resolved, ')');
            else
                append(out, proto, '/', e.name);
            return;
        case PortEntry::Kind::Number:
            if (e.port == 0)
                append(out, proto, " (all ports)");
            else if (e.end_port)
                append(out, proto, '/', e.port, '-', e.end_port);
            else
                append(out, proto, '/', e.port);
            return;
    }
}

void append_named_port(std::string& out, const NamedPortMiss& m) {
    if (m.cluster)
        append(out, "named port ", m.name, " is not defined for ", protocol_name(m.protocol), " by ");
    else
        append(out, "named port ", protocol_name(m.protocol), '/', m.name, " is not defined by ");
    if (!m.pod) {
        append(out, "destination ", m.ip.str(), " is not a pod");
        return;
    }
    append(out, "destination pod ", *m.pod, " (");
    if (m.defined.empty()) out += "no named ports";
    append_list(out, m.defined, [&](const NamedPortMiss::Defined& d) {
        append(out, d.name, '=', protocol_name(d.protocol), '/', d.port);
    });
    out += ')';
}

}  // namespace

void append_miss_message(std::string& out, const Miss& m) {
    const char* role = remote_role(m.direction);
    if (const auto* d = std::get_if<LabelMiss>(&m.detail)) {
        append_label_miss(out, *d, m);
    } else if (const auto* d = std::get_if<NamespaceScopeMiss>(&m.detail)) {
        append(out, "a podSelector without namespaceSelector selects only pods in namespace ", d->policy_namespace,
               "; ", role, " pod ", d->pod, " is in namespace ", d->pod_namespace);
    } else if (const auto* d = std::get_if<NotAnEndpointMiss>(&m.detail)) {
        append_not_an_endpoint(out, *d, m.direction);
    } else if (const auto* d = std::get_if<RangeMiss>(&m.detail)) {
        out += d->networks ? "networks " : "ipBlock ";
        append_list(out, d->cidrs, [&](const Cidr& c) { out += c.str(); });
        append(out, ' ', d->networks ? "do not" : "does not", " contain ", role, ' ', d->ip.str());
    } else if (const auto* d = std::get_if<ExceptMiss>(&m.detail)) {
        append(out, role, ' ', d->ip.str(), " is inside ipBlock ", d->cidr.str(), " but excluded by its except ",
               d->except.str());
    } else if (const auto* d = std::get_if<PortMiss>(&m.detail)) {
        out += d->cluster ? "protocols allow " : "ports allow ";
        append_list(out, d->entries, [&](const PortEntry& e) { append_port_entry(out, e, d->cluster); });
        append(out, "; the connection is ", protocol_name(d->protocol), '/', d->port);
    } else if (const auto* d = std::get_if<NamedPortMiss>(&m.detail)) {
        append_named_port(out, *d);
    } else if (const auto* d = std::get_if<DomainNameMiss>(&m.detail)) {
        out += "domainNames ";
        append_list(out, d->names, [&](const std::string& n) { out += n; });
        append(out, ": whether ", role, ' ', d->ip.str(),
               " is one of them depends on DNS, which the state does not record");
    } else {
        out +=
            "a peer with no field this version of netpol-trace knows (a newer API): an Accept rule treats it as "
            "matching nothing";
    }
}

std::string miss_message(const Miss& m) {
    std::string out;
    append_miss_message(out, m);
    return out;
}

void append_summary_message(std::string& out, const PolicyDiagnosis& d) {
    const PolicySummary& s = d.summary;
    const std::string_view dir = direction_name(s.direction);
    const int rule = d.closest ? d.closest->rule : -1;
    switch (s.kind) {
        case PolicySummary::Kind::NoRules:
            append(out, "selects ", s.pod, " for ", dir, " and has no ", dir, " rules: it allows no ", dir, " at all");
            return;
        case PolicySummary::Kind::Allows:
            append(out, "allows it (spec.", dir, '[', rule, "])");
            return;
        case PolicySummary::Kind::NoRuleMatches:
            append(out, "none of its ", s.rules, ' ', dir, s.rules == 1 ? " rule" : " rules",
                   " matches; closest is spec.", dir, '[', rule, ']');
            return;
        case PolicySummary::Kind::ClusterNoRuleMatches:
            append(out, cluster_tier_word(d.tier.value_or(DecidingTier::Admin)), " policy");
            if (s.priority) append(out, ", priority ", *s.priority);
            append(out, ": none of its ", s.rules, ' ', s.with_pass ? "Accept/Pass" : "Accept",
                   s.rules == 1 ? " rule" : " rules", " before the decision matches; closest is spec.", dir, '[', rule,
                   ']');
            if (d.closest && d.closest->rule_name) append(out, " \"", *d.closest->rule_name, '"');
            return;
    }
}

std::string summary_message(const PolicyDiagnosis& d) {
    std::string out;
    append_summary_message(out, d);
    return out;
}

std::string note_message(const Note& n) {
    if (n.exemption == Exemption::LocalNode)
        return append_text(direction_name(n.direction), ": traffic between pod ", n.pod, " and its own node (",
                           n.node_ip.str(), ") is always allowed");
    return append_text(direction_name(n.direction), ": a pod cannot block traffic to itself");
}

void append_rule_detail(std::string& out, const ClusterRuleRef& r) {
    append(out, "rule ", r.rule);
    if (r.rule_name) append(out, " \"", *r.rule_name, '\"');
    if (r.priority) append(out, ", priority ", *r.priority);
}

void append_cluster_rule_text(std::string& out, DecidingTier tier, const ClusterRuleRef& r) {
    append(out, cluster_tier_word(tier), " policy ", r.policy, " (");
    append_rule_detail(out, r);
    out += ')';
}

namespace {

void append_names(std::string& out, const std::vector<std::string>& names) {
    append_list(out, names, [&](const std::string& n) { out += n; });
}

void append_admin_passes(std::string& out, const std::vector<ClusterRuleRef>& passed) {
    append_list(out, passed, [&](const ClusterRuleRef& r) { append_cluster_rule_text(out, DecidingTier::Admin, r); });
}

// The words for a hint's detail, by its kind; the hint gives the direction and (Service DNAT) the policy.
struct DetailWords {
    std::string& out;
    const Hint& hint;
    const char* dir;

    void operator()(const std::monostate&) const {}
    void operator()(const DefaultDenyHint& d) const {
        append(out, d.pod, " is isolated for ", dir, " only by policies without ", dir, " rules (");
        append_names(out, d.policies);
        append(out, "): no policy allows any ", dir, ' ', hint.direction == Direction::Ingress ? "to" : "from", " it");
    }
    void operator()(const DnsHint& d) const {
        append(out, "DNS (", protocol_name(d.protocol), "/53 to ", d.ip.str(), ") is blocked by ");
        if (d.rule)
            append_cluster_rule_text(out, d.tier.value_or(DecidingTier::Admin), *d.rule);
        else
            append(out, "the egress isolation of ", d.pod);
        out +=
            d.tier == DecidingTier::Admin
                ? ": an Admin-tier Deny is changed by the cluster administrator (an Accept rule for UDP and TCP "
                  "port 53 to the cluster DNS pods at a higher precedence)"
                : ": add an egress rule allowing UDP and TCP port 53 to the cluster DNS pods (e.g. namespaceSelector "
                  "kubernetes.io/metadata.name=kube-system)";
    }
    void operator()(const TierDenyHint& d) const {
        append(out, "the ", dir, " of ", d.pod, " is denied by ");
        append_cluster_rule_text(out, d.tier, d.rule);
        if (d.tier == DecidingTier::Admin) {
            out +=
                ": the Admin tier is evaluated before NetworkPolicies, so no NetworkPolicy can allow it; only a "
                "cluster administrator can change it (edit or delete that rule, or add an Accept or Pass rule that "
                "takes precedence)";
            return;
        }
        if (!d.passed.empty()) {
            out += " (after ";
            append_admin_passes(out, d.passed);
            out += " passed it on)";
        }
        append(out, " because no NetworkPolicy selects ", d.pod, " for ", dir, ": a NetworkPolicy in namespace ",
               std::string_view(d.pod).substr(0, d.pod.find('/')), " that selects it and allows this ", dir,
               " overrides the Baseline tier");
    }
    void operator()(const PassToDenyHint& d) const {
        append_admin_passes(out, d.passed);
        append(out, " passed the ", dir, " of ", d.pod, " to the NetworkPolicy tier, where ");
        append_names(out, d.policies);
        const char* s = d.policies.size() == 1 ? "s" : "";
        append(out, " isolate", s, " it and allow", s, " nothing that matches");
    }
    void operator()(const PriorityTieHint& d) const {
        append(out, d.policy, " and ");
        append_names(out, d.others);
        append(out, " share priority ", d.priority, " in the ", cluster_tier_word(d.tier),
               " tier and each has a rule matching the ", dir, " of ", d.pod,
               ": the API lets an implementation apply either, so the dataplane may not do what netpol-trace reports (",
               d.policy, ' ',
               d.action == RuleAction::Accept ? "accepts"
               : d.action == RuleAction::Deny ? "denies"
                                              : "passes",
               " it, by name order); give them distinct priorities");
    }
    void operator()(const DomainNameHint& d) const {
        append_cluster_rule_text(out, d.tier, d.rule);
        out += " accepts the domain names ";
        append_names(out, d.names);
        append(out, "; whether ", d.ip.str(),
               " is one of their addresses depends on DNS, which the state does not record: netpol-trace treats the "
               "rule as not matching and cannot decide whether it accepts this connection");
    }
    void operator()(const ServicePortHint& d) const {
        append(out, "Service ", d.service, " has no port ", protocol_name(d.protocol), '/', d.port, " (it serves ");
        if (d.ports.empty()) out += "no ports";
        append_list(out, d.ports, [&](const std::pair<Protocol, uint16_t>& p) {
            append(out, protocol_name(p.first), '/', p.second);
        });
        out += ')';
    }
    void operator()(const ServiceNoEndpointsHint& d) const {
        append(out, "Service ", d.service, " has no ", d.v4 ? "IPv4" : "IPv6", " endpoints for port ",
               protocol_name(d.protocol), '/', d.port, ": connections to it fail whatever the policies say");
    }
    void operator()(const ServiceDnatHint& d) const {
        append(out, d.ip.host_str(), ':', d.port, " is Service ", d.service,
               "; policies see its endpoints after DNAT (");
        append_list(out, d.endpoints,
                    [&](const std::pair<IpAddr, uint16_t>& e) { append(out, e.first.host_str(), ':', e.second); });
        out += "), so rules must allow the endpoint IPs and target port ";
        for (size_t i = 0; i < d.target_ports.size(); ++i) {
            if (i) out += '/';
            out += d.target_ports[i];
        }
        out += ", not the Service IP and port";
        if (hint.policy) append(out, " (", *hint.policy, " allows the Service IP/port)");
    }
};

}  // namespace

void append_hint_message(std::string& out, const Hint& h) {
    if (!h.miss) {
        if (std::holds_alternative<std::monostate>(h.detail))
            out += h.message;
        else
            std::visit(DetailWords{out, h, direction_name(h.direction)}, h.detail);
        return;
    }
    append(out, h.policy ? std::string_view(*h.policy) : std::string_view(), " spec.", direction_name(h.direction), '[',
           h.rule, ']');
    if (h.peer >= 0) append(out, '.', h.direction == Direction::Ingress ? "from" : "to", '[', h.peer, ']');
    if (h.code == hint::kPortNotAllowed)
        append(out, " matches the ", remote_role(h.direction), " but not the port: ");
    else
        out += ": ";
    append_miss_message(out, *h.miss);
    if (h.code == hint::kNamespaceScope) out += " (add a namespaceSelector for it)";
}

std::string hint_message(const Hint& h) {
    std::string out;
    append_hint_message(out, h);
    return out;
}

}  // namespace npt

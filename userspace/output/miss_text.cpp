#include "output/miss_text.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace npt {

namespace {

using Out = std::back_insert_iterator<std::string>;

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
                fmt::format_to(Out(out), FMT_COMPILE("{}={}"), m.key, m.values[0]);
            } else {
                fmt::format_to(Out(out), FMT_COMPILE("{} in ("), m.key);
                values();
                out += ')';
            }
            return;
        case LabelRequirement::Op::NotIn:
            fmt::format_to(Out(out), FMT_COMPILE("{} notin ("), m.key);
            values();
            out += ')';
            return;
        case LabelRequirement::Op::Exists:
            fmt::format_to(Out(out), FMT_COMPILE("{} (exists)"), m.key);
            return;
        case LabelRequirement::Op::DoesNotExist:
            fmt::format_to(Out(out), FMT_COMPILE("no {} label"), m.key);
            return;
    }
}

void append_subject(std::string& out, const LabelMiss& m, Direction dir) {
    switch (m.subject) {
        case LabelMiss::Subject::Pod:
            fmt::format_to(Out(out), FMT_COMPILE("{} pod {}"), remote_role(dir), m.name);
            return;
        case LabelMiss::Subject::Namespace:
            fmt::format_to(Out(out), FMT_COMPILE("its namespace {}"), m.name);
            return;
        case LabelMiss::Subject::PodNamespace:
            fmt::format_to(Out(out), FMT_COMPILE("the namespace {} of {} pod {}"), m.name, remote_role(dir), m.pod);
            return;
        case LabelMiss::Subject::Node:
            fmt::format_to(Out(out), FMT_COMPILE("{} node {}"), remote_role(dir), m.name);
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
        fmt::format_to(Out(out), FMT_COMPILE(" needs label {}; "), m.key);
    } else {
        out += " needs ";
        append_requirement(out, m);
        out += "; ";
    }
    append_subject(out, m, miss.direction);
    switch (m.found) {
        case LabelMiss::Found::Value:
            fmt::format_to(Out(out), FMT_COMPILE(" has {}={}"), m.key, m.value);
            if (m.op == LabelRequirement::Op::In && miss.near) out += " (a small edit away)";
            return;
        case LabelMiss::Found::ValueElsewhere:
            fmt::format_to(Out(out), FMT_COMPILE(" has no {} label but carries the value as {}={}"), m.key,
                           m.label.first, m.label.second);
            return;
        case LabelMiss::Found::SimilarKey:
            fmt::format_to(Out(out), FMT_COMPILE(" has {}={} (a similar key)"), m.label.first, m.label.second);
            return;
        case LabelMiss::Found::Labels:
            if (exists) {
                out += " has ";
                append_labels(out, m);
            } else {
                fmt::format_to(Out(out), FMT_COMPILE(" has no {} label ("), m.key);
                append_labels(out, m);
                out += ')';
            }
            return;
    }
}

// "10.0.0.5 (node worker-1)", "pod shop/cart-1", ...
void append_remote(std::string& out, const RemoteEnd& r) {
    if (r.pod) {
        fmt::format_to(Out(out), FMT_COMPILE("pod {}"), *r.pod);
    } else if (r.host_network_pod) {
        fmt::format_to(Out(out), FMT_COMPILE("{} (hostNetwork pod {})"), r.ip.str(), *r.host_network_pod);
    } else if (r.node) {
        fmt::format_to(Out(out), FMT_COMPILE("{} (node {})"), r.ip.str(), *r.node);
    } else {
        out += r.ip.str();
    }
}

void append_not_an_endpoint(std::string& out, const NotAnEndpointMiss& m, Direction dir) {
    const char* role = remote_role(dir);
    switch (m.peer) {
        case NotAnEndpointMiss::Peer::Selector:
            fmt::format_to(Out(out), FMT_COMPILE("pod/namespace selectors match pods only; {} "), role);
            append_remote(out, m.remote);
            out += " is not a pod IP (only an ipBlock can allow it)";
            return;
        case NotAnEndpointMiss::Peer::Pods:
        case NotAnEndpointMiss::Peer::Namespaces:
            fmt::format_to(Out(out), FMT_COMPILE("a {} peer matches pods only; {} "),
                           m.peer == NotAnEndpointMiss::Peer::Pods ? "pods" : "namespaces", role);
            append_remote(out, m.remote);
            out += " is not a pod IP";
            if (dir == Direction::Egress) out += " (a nodes or networks peer can match it)";
            return;
        case NotAnEndpointMiss::Peer::Nodes:
            fmt::format_to(Out(out), FMT_COMPILE("a nodes peer matches node addresses; {} "), role);
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
                fmt::format_to(Out(out), FMT_COMPILE("named port {}"), e.name);
            else if (e.resolved)
                fmt::format_to(Out(out), FMT_COMPILE("{}/{} (= {})"), proto, e.name, *e.resolved);
            else
                fmt::format_to(Out(out), FMT_COMPILE("{}/{}"), proto, e.name);
            return;
        case PortEntry::Kind::Number:
            if (e.port == 0)
                fmt::format_to(Out(out), FMT_COMPILE("{} (all ports)"), proto);
            else if (e.end_port)
                fmt::format_to(Out(out), FMT_COMPILE("{}/{}-{}"), proto, e.port, e.end_port);
            else
                fmt::format_to(Out(out), FMT_COMPILE("{}/{}"), proto, e.port);
            return;
    }
}

void append_named_port(std::string& out, const NamedPortMiss& m) {
    if (m.cluster)
        fmt::format_to(Out(out), FMT_COMPILE("named port {} is not defined for {} by "), m.name,
                       protocol_name(m.protocol));
    else
        fmt::format_to(Out(out), FMT_COMPILE("named port {}/{} is not defined by "), protocol_name(m.protocol), m.name);
    if (!m.pod) {
        fmt::format_to(Out(out), FMT_COMPILE("destination {} is not a pod"), m.ip.str());
        return;
    }
    fmt::format_to(Out(out), FMT_COMPILE("destination pod {} ("), *m.pod);
    if (m.defined.empty()) out += "no named ports";
    append_list(out, m.defined, [&](const NamedPortMiss::Defined& d) {
        fmt::format_to(Out(out), FMT_COMPILE("{}={}/{}"), d.name, protocol_name(d.protocol), d.port);
    });
    out += ')';
}

}  // namespace

void append_miss_message(std::string& out, const Miss& m) {
    const char* role = remote_role(m.direction);
    if (const auto* d = std::get_if<LabelMiss>(&m.detail)) {
        append_label_miss(out, *d, m);
    } else if (const auto* d = std::get_if<NamespaceScopeMiss>(&m.detail)) {
        fmt::format_to(
            Out(out),
            FMT_COMPILE("a podSelector without namespaceSelector selects only pods in namespace {}; {} pod {} is in "
                        "namespace {}"),
            d->policy_namespace, role, d->pod, d->pod_namespace);
    } else if (const auto* d = std::get_if<NotAnEndpointMiss>(&m.detail)) {
        append_not_an_endpoint(out, *d, m.direction);
    } else if (const auto* d = std::get_if<RangeMiss>(&m.detail)) {
        out += d->networks ? "networks " : "ipBlock ";
        append_list(out, d->cidrs, [&](const Cidr& c) { out += c.str(); });
        fmt::format_to(Out(out), FMT_COMPILE(" {} contain {} {}"), d->networks ? "do not" : "does not", role,
                       d->ip.str());
    } else if (const auto* d = std::get_if<ExceptMiss>(&m.detail)) {
        fmt::format_to(Out(out), FMT_COMPILE("{} {} is inside ipBlock {} but excluded by its except {}"), role,
                       d->ip.str(), d->cidr.str(), d->except.str());
    } else if (const auto* d = std::get_if<PortMiss>(&m.detail)) {
        out += d->cluster ? "protocols allow " : "ports allow ";
        append_list(out, d->entries, [&](const PortEntry& e) { append_port_entry(out, e, d->cluster); });
        fmt::format_to(Out(out), FMT_COMPILE("; the connection is {}/{}"), protocol_name(d->protocol), d->port);
    } else if (const auto* d = std::get_if<NamedPortMiss>(&m.detail)) {
        append_named_port(out, *d);
    } else if (const auto* d = std::get_if<DomainNameMiss>(&m.detail)) {
        out += "domainNames ";
        append_list(out, d->names, [&](const std::string& n) { out += n; });
        fmt::format_to(Out(out),
                       FMT_COMPILE(": whether {} {} is one of them depends on DNS, which the state does not record"),
                       role, d->ip.str());
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
    const char* dir = direction_name(s.direction);
    const int rule = d.closest ? d.closest->rule : -1;
    switch (s.kind) {
        case PolicySummary::Kind::NoRules:
            fmt::format_to(Out(out), FMT_COMPILE("selects {} for {} and has no {} rules: it allows no {} at all"),
                           s.pod, dir, dir, dir);
            return;
        case PolicySummary::Kind::Allows:
            fmt::format_to(Out(out), FMT_COMPILE("allows it (spec.{}[{}])"), dir, rule);
            return;
        case PolicySummary::Kind::NoRuleMatches:
            fmt::format_to(Out(out), FMT_COMPILE("none of its {} {} rule{} matches; closest is spec.{}[{}]"), s.rules,
                           dir, s.rules == 1 ? "" : "s", dir, rule);
            return;
        case PolicySummary::Kind::ClusterNoRuleMatches:
            out += d.tier == DecidingTier::Baseline ? "baseline policy" : "admin policy";
            if (s.priority) fmt::format_to(Out(out), FMT_COMPILE(", priority {}"), *s.priority);
            fmt::format_to(
                Out(out), FMT_COMPILE(": none of its {} {} rule{} before the decision matches; closest is spec.{}[{}]"),
                s.rules, s.with_pass ? "Accept/Pass" : "Accept", s.rules == 1 ? "" : "s", dir, rule);
            if (d.closest && d.closest->rule_name)
                fmt::format_to(Out(out), FMT_COMPILE(" \"{}\""), *d.closest->rule_name);
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
        return fmt::format(FMT_COMPILE("{}: traffic between pod {} and its own node ({}) is always allowed"),
                           direction_name(n.direction), n.pod, n.node_ip.str());
    return fmt::format(FMT_COMPILE("{}: a pod cannot block traffic to itself"), direction_name(n.direction));
}

void append_rule_detail(std::string& out, const ClusterRuleRef& r) {
    fmt::format_to(Out(out), FMT_COMPILE("rule {}"), r.rule);
    if (r.rule_name) fmt::format_to(Out(out), FMT_COMPILE(" \"{}\""), *r.rule_name);
    if (r.priority) fmt::format_to(Out(out), FMT_COMPILE(", priority {}"), *r.priority);
}

void append_cluster_rule_text(std::string& out, DecidingTier tier, const ClusterRuleRef& r) {
    fmt::format_to(Out(out), FMT_COMPILE("{} policy {} ("), tier == DecidingTier::Baseline ? "baseline" : "admin",
                   r.policy);
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
        fmt::format_to(Out(out), FMT_COMPILE("{} is isolated for {} only by policies without {} rules ("), d.pod, dir,
                       dir);
        append_names(out, d.policies);
        fmt::format_to(Out(out), FMT_COMPILE("): no policy allows any {} {} it"), dir,
                       hint.direction == Direction::Ingress ? "to" : "from");
    }
    void operator()(const DnsHint& d) const {
        fmt::format_to(Out(out), FMT_COMPILE("DNS ({}/53 to {}) is blocked by "), protocol_name(d.protocol),
                       d.ip.str());
        if (d.rule)
            append_cluster_rule_text(out, d.tier.value_or(DecidingTier::Admin), *d.rule);
        else
            fmt::format_to(Out(out), FMT_COMPILE("the egress isolation of {}"), d.pod);
        out +=
            d.tier == DecidingTier::Admin
                ? ": an Admin-tier Deny is changed by the cluster administrator (an Accept rule for UDP and TCP "
                  "port 53 to the cluster DNS pods at a higher precedence)"
                : ": add an egress rule allowing UDP and TCP port 53 to the cluster DNS pods (e.g. namespaceSelector "
                  "kubernetes.io/metadata.name=kube-system)";
    }
    void operator()(const TierDenyHint& d) const {
        fmt::format_to(Out(out), FMT_COMPILE("the {} of {} is denied by "), dir, d.pod);
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
        fmt::format_to(Out(out),
                       FMT_COMPILE(" because no NetworkPolicy selects {} for {}: a NetworkPolicy in namespace {} that "
                                   "selects it and allows this {} overrides the Baseline tier"),
                       d.pod, dir, std::string_view(d.pod).substr(0, d.pod.find('/')), dir);
    }
    void operator()(const PassToDenyHint& d) const {
        append_admin_passes(out, d.passed);
        fmt::format_to(Out(out), FMT_COMPILE(" passed the {} of {} to the NetworkPolicy tier, where "), dir, d.pod);
        append_names(out, d.policies);
        const char* s = d.policies.size() == 1 ? "s" : "";
        fmt::format_to(Out(out), FMT_COMPILE(" isolate{} it and allow{} nothing that matches"), s, s);
    }
    void operator()(const PriorityTieHint& d) const {
        fmt::format_to(Out(out), FMT_COMPILE("{} and "), d.policy);
        append_names(out, d.others);
        fmt::format_to(Out(out),
                       FMT_COMPILE(" share priority {} in the {} tier and each has a rule matching the {} of {}: the "
                                   "API lets an implementation apply either, so the dataplane may not do what "
                                   "netpol-trace reports ({} {} it, by name order); give them distinct priorities"),
                       d.priority, d.tier == DecidingTier::Baseline ? "baseline" : "admin", dir, d.pod, d.policy,
                       d.action == RuleAction::Accept ? "accepts"
                       : d.action == RuleAction::Deny ? "denies"
                                                      : "passes");
    }
    void operator()(const DomainNameHint& d) const {
        append_cluster_rule_text(out, d.tier, d.rule);
        out += " accepts the domain names ";
        append_names(out, d.names);
        fmt::format_to(Out(out),
                       FMT_COMPILE("; whether {} is one of their addresses depends on DNS, which the state does not "
                                   "record: netpol-trace treats the rule as not matching and cannot decide whether it "
                                   "accepts this connection"),
                       d.ip.str());
    }
    void operator()(const ServicePortHint& d) const {
        fmt::format_to(Out(out), FMT_COMPILE("Service {} has no port {}/{} (it serves "), d.service,
                       protocol_name(d.protocol), d.port);
        if (d.ports.empty()) out += "no ports";
        append_list(out, d.ports, [&](const std::pair<Protocol, uint16_t>& p) {
            fmt::format_to(Out(out), FMT_COMPILE("{}/{}"), protocol_name(p.first), p.second);
        });
        out += ')';
    }
    void operator()(const ServiceNoEndpointsHint& d) const {
        fmt::format_to(Out(out),
                       FMT_COMPILE("Service {} has no {} endpoints for port {}/{}: connections to it fail whatever the "
                                   "policies say"),
                       d.service, d.v4 ? "IPv4" : "IPv6", protocol_name(d.protocol), d.port);
    }
    void operator()(const ServiceDnatHint& d) const {
        fmt::format_to(Out(out), FMT_COMPILE("{}:{} is Service {}; policies see its endpoints after DNAT ("),
                       d.ip.host_str(), d.port, d.service);
        append_list(out, d.endpoints, [&](const std::pair<IpAddr, uint16_t>& e) {
            fmt::format_to(Out(out), FMT_COMPILE("{}:{}"), e.first.host_str(), e.second);
        });
        out += "), so rules must allow the endpoint IPs and target port ";
        for (size_t i = 0; i < d.target_ports.size(); ++i) {
            if (i) out += '/';
            out += d.target_ports[i];
        }
        out += ", not the Service IP and port";
        if (hint.policy) fmt::format_to(Out(out), FMT_COMPILE(" ({} allows the Service IP/port)"), *hint.policy);
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
    fmt::format_to(Out(out), FMT_COMPILE("{} spec.{}[{}]"), h.policy.value_or(""), direction_name(h.direction), h.rule);
    if (h.peer >= 0)
        fmt::format_to(Out(out), FMT_COMPILE(".{}[{}]"), h.direction == Direction::Ingress ? "from" : "to", h.peer);
    if (h.code == hint::kPortNotAllowed)
        fmt::format_to(Out(out), FMT_COMPILE(" matches the {} but not the port: "), remote_role(h.direction));
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

#include "policy/fix.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "policy/evaluator.hpp"
#include "policy/manifest.hpp"
#include "policy/reach.hpp"

namespace npt {

namespace {

// What the fix deals with: one denying direction of one or more flows (a Service's endpoints) with the same
// local pod's policies.
struct SideGroup {
    Direction dir = Direction::Ingress;
    const SideExplanation* side = nullptr;  // of the first flow
    std::vector<Flow> flows;
    std::string service;  // "ns/name" when the flows are a Service's endpoints
};

uint32_t local_pod(const Flow& f, Direction dir) {
    return dir == Direction::Ingress ? *f.dst.pod : *f.src.pod;
}
const FlowEndpoint& remote_of(const Flow& f, Direction dir) {
    return dir == Direction::Ingress ? f.src : f.dst;
}

std::optional<FlowEndpoint> endpoint_of(const ClusterState& s, const EndpointRef& r) {
    FlowEndpoint ep;
    ep.ip = r.ip;
    if (r.pod) {
        const auto slash = r.pod->find('/');
        auto pod = s.find_pod(r.pod->substr(0, slash), r.pod->substr(slash + 1));
        if (!pod) return std::nullopt;
        (r.host_network ? ep.host_network_pod : ep.pod) = pod;
    }
    return ep;
}

std::optional<Flow> flow_of(const ClusterState& s, const Explanation& e, bool via_service) {
    auto src = endpoint_of(s, e.src), dst = endpoint_of(s, e.dst);
    if (!src || !dst) return std::nullopt;
    Flow f;
    f.src = *src;
    f.dst = *dst;
    f.protocol = e.protocol;
    f.port = e.dst.port ? e.dst.port : e.port;
    f.via_service = via_service;
    return f;
}

// The port as the destination pod names it (a policy on a named port survives a port change), else its number.
PolicyPort port_entry(const ClusterState& s, const Flow& f) {
    PolicyPort p;
    p.protocol = f.protocol;
    if (f.dst.pod) {
        for (const auto& cp : s.ports(s.pods()[*f.dst.pod].ports)) {
            if (cp.port == f.port && cp.protocol == f.protocol && !cp.name.empty()) {
                p.port_name = cp.name;
                return p;
            }
        }
    }
    p.port = f.port;
    return p;
}

bool same_port(const PolicyPort& a, const PolicyPort& b) {
    return a.protocol == b.protocol && a.port == b.port && a.port_name == b.port_name && a.end_port == b.end_port;
}

LabelSelector name_selector(std::string_view ns) {
    return match_labels({{std::string(kNamespaceNameLabel), std::string(ns)}});
}

Peer host_peer(const IpAddr& ip) {
    Peer p;
    p.ip_block = IpBlock{Cidr{ip, static_cast<uint8_t>(ip.bit_width())}, {}};
    return p;
}

// The remote end exactly: its namespace by name and its workload's stable labels, or its address.
Peer exact_peer(const ClusterState& s, const FlowEndpoint& remote) {
    if (!remote.pod) return host_peer(remote.ip);
    Peer p;
    p.namespace_selector = name_selector(s.pod_namespace(*remote.pod));
    p.pod_selector = match_labels(stable_labels(s, *remote.pod));
    return p;
}

bool same_selector(const std::optional<LabelSelector>& a, const std::optional<LabelSelector>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    if (a->requirements.size() != b->requirements.size()) return false;
    for (size_t i = 0; i < a->requirements.size(); ++i) {
        const auto &x = a->requirements[i], &y = b->requirements[i];
        if (x.key != y.key || x.op != y.op || x.values != y.values) return false;
    }
    return true;
}

bool same_peer(const Peer& a, const Peer& b) {
    if (a.ip_block.has_value() != b.ip_block.has_value()) return false;
    if (a.ip_block && (!(a.ip_block->cidr == b.ip_block->cidr) || a.ip_block->except != b.ip_block->except))
        return false;
    return same_selector(a.pod_selector, b.pod_selector) && same_selector(a.namespace_selector, b.namespace_selector);
}

void add_peer(std::vector<Peer>& peers, Peer p) {
    if (std::none_of(peers.begin(), peers.end(), [&](const Peer& q) { return same_peer(p, q); }))
        peers.push_back(std::move(p));
}

void add_port(std::vector<PolicyPort>& ports, PolicyPort p) {
    if (std::none_of(ports.begin(), ports.end(), [&](const PolicyPort& q) { return same_port(p, q); }))
        ports.push_back(std::move(p));
}

// A name no policy of the namespace has: base, base-2, base-3, ...
std::string unique_policy_name(const ClusterState& s, std::string_view ns, std::string base) {
    std::string clean;
    for (char c : base) {
        const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        clean += std::isalnum(static_cast<unsigned char>(l)) || l == '-' || l == '.' ? l : '-';
    }
    if (clean.size() > 200) clean.resize(200);
    while (!clean.empty() && (clean.back() == '-' || clean.back() == '.')) clean.pop_back();
    const auto taken = [&](const std::string& name) {
        return std::any_of(s.policies().begin(), s.policies().end(),
                           [&](const NetworkPolicy& p) { return p.ns == ns && p.name == name; });
    };
    if (!taken(clean)) return clean;
    for (int i = 2;; ++i)
        if (const std::string n = fmt::format("{}-{}", clean, i); !taken(n)) return n;
}

std::string remote_word(const ClusterState& s, const FlowEndpoint& remote) {
    if (remote.pod) return s.workload_of(*remote.pod).name;
    std::string ip = remote.ip.str();
    std::replace(ip.begin(), ip.end(), ':', '-');
    std::replace(ip.begin(), ip.end(), '.', '-');
    return ip;
}

// A shell word: single-quoted.
std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

// What a candidate changes, before it is measured.
struct Candidate {
    Fix fix;
    StateChange change;
    bool measurable = true;  // command/none fixes change nothing the engine evaluates
};

const std::vector<PolicyRule>& rules_of(const NetworkPolicy& p, Direction d) {
    return d == Direction::Ingress ? p.ingress : p.egress;
}
std::vector<PolicyRule>& rules_of(NetworkPolicy& p, Direction d) {
    return d == Direction::Ingress ? p.ingress : p.egress;
}

const NetworkPolicy* policy_by_id(const ClusterState& s, const std::string& id) {
    for (const auto& p : s.policies())
        if (p.id() == id) return &p;
    return nullptr;
}

Candidate patch_candidate(const NetworkPolicy& original, Direction dir, int rule_index, PolicyRule new_rule,
                          std::string summary, int edit_size) {
    NetworkPolicy patched = original;
    rules_of(patched, dir)[rule_index] = std::move(new_rule);
    Candidate c;
    c.fix.kind = "patch";
    c.fix.direction = dir;
    c.fix.target = original.id();
    c.fix.summary = std::move(summary);
    ManifestJson patch;
    patch["spec"][direction_name(dir)] = policy_rules_json(rules_of(patched, dir), dir);
    c.fix.patch = patch.dump();
    c.fix.command = fmt::format("kubectl patch networkpolicy {} -n {} --type merge -p {}", original.name, original.ns,
                                shell_quote(*c.fix.patch));
    c.fix.manifest = manifest_yaml(network_policy_json(patched));
    c.fix.object = network_policy_json(patched).dump();
    c.fix.edit_size = edit_size;
    c.change.upsert_policies.push_back(std::move(patched));
    return c;
}

// The edits of the closest rule of an isolating policy that let the group's flows through.
void patch_candidates(const ClusterState& s, const SideGroup& g, const PolicyDiagnosis& d,
                      std::vector<Candidate>& out) {
    const NetworkPolicy* pol = policy_by_id(s, d.policy);
    if (!pol || !d.closest || d.closest->rule < 0) return;
    const auto& rules = rules_of(*pol, g.dir);
    const int ri = d.closest->rule;
    if (static_cast<size_t>(ri) >= rules.size()) return;
    const PolicyRule& rule = rules[ri];
    const std::string where = fmt::format("{} spec.{}[{}]", pol->id(), direction_name(g.dir), ri);
    if (d.closest->peers_match && !d.closest->ports_match) {
        PolicyRule add = rule;
        std::vector<std::string> names;
        for (const auto& f : g.flows) {
            PolicyPort p = port_entry(s, f);
            names.push_back(p.port_name.empty() ? fmt::format("{}/{}", protocol_name(p.protocol), f.port)
                                                : fmt::format("{}/{}", protocol_name(p.protocol), p.port_name));
            add_port(add.ports, std::move(p));
        }
        std::sort(names.begin(), names.end());
        names.erase(std::unique(names.begin(), names.end()), names.end());
        out.push_back(patch_candidate(*pol, g.dir, ri, std::move(add),
                                      fmt::format("add port {} to {}", fmt::join(names, ", "), where), 1));
        // A range just short of the port: extend its endPort instead.
        for (size_t i = 0; i < rule.ports.size(); ++i) {
            const auto& p = rule.ports[i];
            if (!p.end_port || !p.port || p.protocol != g.flows[0].protocol) continue;
            uint16_t hi = *p.end_port;
            for (const auto& f : g.flows) hi = std::max(hi, f.port);
            if (hi == *p.end_port ||
                std::any_of(g.flows.begin(), g.flows.end(), [&](const Flow& f) { return f.port < *p.port; }))
                continue;
            PolicyRule extended = rule;
            extended.ports[i].end_port = hi;
            out.push_back(patch_candidate(*pol, g.dir, ri, std::move(extended),
                                          fmt::format("extend {}.ports[{}] to endPort {}", where, i, hi), 1));
        }
        return;
    }
    if (!(d.closest->ports_match && !d.closest->peers_match)) return;
    PolicyRule add = rule;
    const bool near = !d.closest->misses.empty() &&
                      std::all_of(d.closest->misses.begin(), d.closest->misses.end(),
                                  [](const Miss& m) { return m.near && m.kind == MissKind::PodLabels; });
    std::vector<std::string> what;
    for (const auto& f : g.flows) {
        const FlowEndpoint& remote = remote_of(f, g.dir);
        if (near && remote.pod && d.closest->peer >= 0 && static_cast<size_t>(d.closest->peer) < rule.peers.size()) {
            // The peer as written, its failing requirements on the keys and values the remote pod carries.
            Peer p = rule.peers[d.closest->peer];
            const auto labels = pod_labels(s, *remote.pod);
            if (p.pod_selector) {
                for (auto& req : p.pod_selector->requirements) {
                    if (s.requirement_matches(req, s.pods()[*remote.pod].labels)) continue;
                    for (const auto& [k, v] : labels) {
                        const bool value_elsewhere =
                            std::find(req.values.begin(), req.values.end(), v) != req.values.end();
                        if (k == req.key || value_elsewhere) {
                            req = match_labels({{k, v}}).requirements[0];
                            break;
                        }
                    }
                }
            }
            if (!p.namespace_selector && s.pod_namespace(*remote.pod) != pol->ns)
                p.namespace_selector = name_selector(s.pod_namespace(*remote.pod));
            what.push_back(fmt::format("a peer for {} as labelled", s.pod_id(*remote.pod)));
            add_peer(add.peers, std::move(p));
        } else {
            what.push_back(remote.pod ? fmt::format("a peer for {}", s.pod_id(*remote.pod)) : remote.ip.str());
            add_peer(add.peers, exact_peer(s, remote));
        }
    }
    std::sort(what.begin(), what.end());
    what.erase(std::unique(what.begin(), what.end()), what.end());
    out.push_back(
        patch_candidate(*pol, g.dir, ri, std::move(add), fmt::format("add {} to {}", fmt::join(what, ", "), where), 1));
}

Candidate new_policy_candidate(const ClusterState& s, const SideGroup& g) {
    const uint32_t local = local_pod(g.flows[0], g.dir);
    NetworkPolicy np;
    np.ns = std::string(s.pod_namespace(local));
    const FlowEndpoint& remote0 = remote_of(g.flows[0], g.dir);
    // Egress to a Service's endpoints is named after the Service (its endpoints may be addresses, not pods).
    const std::string remote_name = g.dir == Direction::Egress && !g.service.empty()
                                        ? g.service.substr(g.service.find('/') + 1)
                                        : remote_word(s, remote0);
    np.name = unique_policy_name(
        s, np.ns,
        fmt::format("allow-{}-{}-{}", g.dir == Direction::Ingress ? "from" : "to", remote_name, g.flows[0].port));
    np.pod_selector = match_labels(stable_labels(s, local));
    np.affects_ingress = g.dir == Direction::Ingress;
    np.affects_egress = g.dir == Direction::Egress;
    PolicyRule rule;
    for (const auto& f : g.flows) {
        add_peer(rule.peers, exact_peer(s, remote_of(f, g.dir)));
        add_port(rule.ports, port_entry(s, f));
    }
    rules_of(np, g.dir).push_back(std::move(rule));
    Candidate c;
    c.fix.kind = "policy";
    c.fix.direction = g.dir;
    c.fix.target = np.id();
    std::vector<std::string> ports;
    for (const auto& f : g.flows) ports.push_back(fmt::format("{}/{}", protocol_name(f.protocol), f.port));
    std::sort(ports.begin(), ports.end());
    ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
    c.fix.summary = fmt::format("a new NetworkPolicy {} allowing {} {} {} {} on {}", np.id(),
                                g.dir == Direction::Ingress ? "ingress to" : "egress from", s.workload_of(local).name,
                                g.dir == Direction::Ingress ? "from" : "to",
                                g.service.empty() || g.dir == Direction::Ingress
                                    ? remote_word(s, remote0)
                                    : fmt::format("the endpoints of Service {}", g.service),
                                fmt::join(ports, ", "));
    c.fix.manifest = manifest_yaml(network_policy_json(np));
    c.fix.object = network_policy_json(np).dump();
    c.fix.edit_size = 3;
    c.change.upsert_policies.push_back(std::move(np));
    return c;
}

// The runbook's allow-dns: every pod of the source's namespace may reach the cluster DNS pods on UDP and TCP 53.
std::optional<Candidate> dns_candidate(const ClusterState& s, const SideGroup& g) {
    const Flow& f = g.flows[0];
    if (g.dir != Direction::Egress || f.port != 53 || (f.protocol != Protocol::UDP && f.protocol != Protocol::TCP))
        return std::nullopt;
    NetworkPolicy np;
    np.ns = std::string(s.pod_namespace(*f.src.pod));
    np.name = unique_policy_name(s, np.ns, "allow-dns");
    np.affects_ingress = false;
    np.affects_egress = true;
    PolicyRule rule;
    for (const auto& fl : g.flows) add_peer(rule.peers, exact_peer(s, fl.dst));
    for (Protocol p : {Protocol::UDP, Protocol::TCP}) {
        PolicyPort port;
        port.protocol = p;
        port.port = 53;
        rule.ports.push_back(port);
    }
    np.egress.push_back(std::move(rule));
    Candidate c;
    c.fix.kind = "dns";
    c.fix.direction = Direction::Egress;
    c.fix.target = np.id();
    c.fix.summary =
        fmt::format("allow DNS (UDP and TCP 53) from every pod of namespace {} to the cluster DNS pods ({})", np.ns,
                    f.dst.pod ? s.workload_of(*f.dst.pod).name : f.dst.ip.str());
    c.fix.manifest = manifest_yaml(network_policy_json(np));
    c.fix.object = network_policy_json(np).dump();
    c.fix.edit_size = 2;
    c.change.upsert_policies.push_back(std::move(np));
    return c;
}

// A selector that nearly matches the remote end's labels: give the remote workload (or namespace) the label.
void label_candidates(const ClusterState& s, const SideGroup& g, const PolicyDiagnosis& d,
                      std::vector<Candidate>& out) {
    if (!d.closest || !d.closest->ports_match || d.closest->peers_match || d.closest->misses.empty()) return;
    const bool near = std::all_of(d.closest->misses.begin(), d.closest->misses.end(), [](const Miss& m) {
        return m.near && (m.kind == MissKind::PodLabels || m.kind == MissKind::NamespaceLabels);
    });
    if (!near) return;
    const NetworkPolicy* pol = policy_by_id(s, d.policy);
    if (!pol) return;
    const auto& rules = rules_of(*pol, g.dir);
    if (d.closest->rule < 0 || static_cast<size_t>(d.closest->rule) >= rules.size()) return;
    const auto& rule = rules[d.closest->rule];
    if (d.closest->peer < 0 || static_cast<size_t>(d.closest->peer) >= rule.peers.size()) return;
    const Peer& peer = rule.peers[d.closest->peer];
    const FlowEndpoint& remote = remote_of(g.flows[0], g.dir);
    if (!remote.pod) return;
    const uint32_t rpod = *remote.pod;
    // The labels the selectors need and the remote end lacks (the first value of an In requirement).
    const auto needed = [&](const std::optional<LabelSelector>& sel, LabelSetId have) {
        LabelMap add;
        if (!sel) return add;
        for (const auto& req : sel->requirements) {
            if (s.requirement_matches(req, have) || req.op != LabelRequirement::Op::In || req.values.empty()) continue;
            add.emplace_back(req.key, req.values[0]);
        }
        return add;
    };
    const LabelMap pod_add = needed(peer.pod_selector, s.pods()[rpod].labels);
    const LabelMap ns_add = needed(peer.namespace_selector, s.namespaces()[s.pods()[rpod].ns].labels);
    if (!pod_add.empty()) {
        const auto wl = s.workload_of(rpod);
        const std::string ns(s.pod_namespace(rpod));
        ManifestJson labels;
        for (const auto& [k, v] : pod_add) labels[k] = v;
        ManifestJson patch;
        if (wl.kind == "Pod")
            patch["metadata"]["labels"] = labels;
        else
            patch["spec"]["template"]["metadata"]["labels"] = labels;
        Candidate c;
        c.fix.kind = "label";
        c.fix.direction = g.dir;
        c.fix.target = fmt::format("{}/{}/{}", wl.kind, ns, wl.name);
        std::vector<std::string> kv;
        for (const auto& [k, v] : pod_add) kv.push_back(k + "=" + v);
        c.fix.summary = fmt::format("label {} {} (its pods then match {} spec.{}[{}])", *c.fix.target,
                                    fmt::join(kv, ", "), pol->id(), direction_name(g.dir), d.closest->rule);
        c.fix.patch = patch.dump();
        std::string kind_lower = wl.kind;
        std::transform(kind_lower.begin(), kind_lower.end(), kind_lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        c.fix.command = fmt::format("kubectl patch {} {} -n {} --type merge -p {}", kind_lower, wl.name, ns,
                                    shell_quote(*c.fix.patch));
        c.fix.edit_size = 1;
        // Every pod of the workload gets the labels (the template's pods after a rollout).
        for (uint32_t p = 0; p < s.pods().size(); ++p) {
            if (s.pods()[p].ns != s.pods()[rpod].ns) continue;
            if (p != rpod) {
                const auto other = s.workload_of(p);
                if (wl.kind == "Pod" || other.kind != wl.kind || other.name != wl.name) continue;
            }
            LabelMap labels_now = pod_labels(s, p);
            for (const auto& kv : pod_add) {
                std::erase_if(labels_now, [&](const auto& kv2) { return kv2.first == kv.first; });
                labels_now.push_back(kv);
            }
            std::sort(labels_now.begin(), labels_now.end());
            c.change.pod_labels.emplace_back(p, std::move(labels_now));
        }
        out.push_back(std::move(c));
    }
    if (!ns_add.empty()) {
        const std::string ns(s.pod_namespace(rpod));
        ManifestJson labels;
        for (const auto& [k, v] : ns_add) labels[k] = v;
        ManifestJson patch;
        patch["metadata"]["labels"] = labels;
        Candidate c;
        c.fix.kind = "label";
        c.fix.direction = g.dir;
        c.fix.target = "Namespace/" + ns;
        std::vector<std::string> kv;
        for (const auto& [k, v] : ns_add) kv.push_back(k + "=" + v);
        c.fix.summary = fmt::format("label namespace {} {} (then {} spec.{}[{}] selects it)", ns, fmt::join(kv, ", "),
                                    pol->id(), direction_name(g.dir), d.closest->rule);
        c.fix.patch = patch.dump();
        c.fix.command = fmt::format("kubectl patch namespace {} --type merge -p {}", ns, shell_quote(*c.fix.patch));
        c.fix.edit_size = 1;
        LabelMap labels_now;
        for (const auto& l : s.labels(s.namespaces()[s.pods()[rpod].ns].labels))
            if (s.str(l.key) != kNamespaceNameLabel) labels_now.emplace_back(s.str(l.key), s.str(l.value));
        for (const auto& kv : ns_add) {
            std::erase_if(labels_now, [&](const auto& kv2) { return kv2.first == kv.first; });
            labels_now.push_back(kv);
        }
        c.change.namespace_labels.emplace_back(ns, std::move(labels_now));
        out.push_back(std::move(c));
    }
}

std::string side_text(const ClusterState& s, const SideGroup& g) {
    const uint32_t local = local_pod(g.flows[0], g.dir);
    return fmt::format("the {} of {}", direction_name(g.dir), s.pod_id(local));
}

std::vector<Candidate> candidates_for(const ClusterState& s, const SideGroup& g) {
    std::vector<Candidate> out;
    const SideExplanation& side = *g.side;
    if (side.decided_by.tier == DecidingTier::Admin && side.decided_by.rule) {
        Candidate c;
        c.measurable = false;
        c.fix.kind = "none";
        c.fix.direction = g.dir;
        const auto& r = *side.decided_by.rule;
        c.fix.summary = fmt::format(
            "{} is denied by the Admin tier: {} rule {}{} (a cluster administrator's policy): no NetworkPolicy can "
            "allow "
            "it; ask its owner to add an Accept or Pass rule for this traffic ahead of that rule",
            side_text(s, g), r.policy, r.rule, r.rule_name ? " \"" + *r.rule_name + "\"" : std::string());
        out.push_back(std::move(c));
        return out;
    }
    if (auto dns = dns_candidate(s, g)) out.push_back(std::move(*dns));
    if (side.decided_by.tier == DecidingTier::NetworkPolicy) {
        for (const auto& d : side.diagnoses) patch_candidates(s, g, d, out);
        for (const auto& d : side.diagnoses) label_candidates(s, g, d, out);
    }
    out.push_back(new_policy_candidate(s, g));
    return out;
}

std::string example_end(const ClusterState& s, uint32_t pod) {
    return std::string(s.pod_id(pod));
}

void measure(const ClusterState& s, const SideGroup& g, Candidate& c, const FixOptions& options) {
    if (!c.measurable) return;
    const auto after = s.derive(c.change);
    SideVerdict v;
    c.fix.verified = std::all_of(g.flows.begin(), g.flows.end(), [&](const Flow& f) {
        evaluate_side(*after, f, g.dir, v);
        return v.allowed;
    });
    const Reach reach = measure_reach(s, *after, change_scope(s, *after, c.change), options.max_examples);
    c.fix.newly_allowed = reach.newly_allowed;
    c.fix.newly_denied = reach.newly_denied;
    for (const auto& ex : reach.examples)
        c.fix.examples.push_back(
            {example_end(s, ex.from), example_end(s, ex.to), ex.port, ex.protocol, ex.allowed_after});
    if (!c.fix.verified) c.fix.summary = "NOT ENOUGH (the flow stays denied): " + c.fix.summary;
    if (c.fix.newly_denied > 0)
        c.fix.summary = fmt::format("BREAKS {} connection{} that work today: {}", c.fix.newly_denied,
                                    c.fix.newly_denied == 1 ? "" : "s", c.fix.summary);
}

void rank(std::vector<Candidate>& cs) {
    std::stable_sort(cs.begin(), cs.end(), [](const Candidate& a, const Candidate& b) {
        const auto key = [](const Candidate& c) {
            return std::make_tuple(!c.fix.verified && c.measurable, c.fix.newly_denied > 0, c.fix.newly_allowed,
                                   c.fix.edit_size);
        };
        return key(a) < key(b);
    });
}

void dedupe(std::vector<Fix>& fixes) {
    std::vector<Fix> out;
    for (auto& f : fixes) {
        const bool seen = std::any_of(out.begin(), out.end(), [&](const Fix& o) {
            return o.kind == f.kind && o.direction == f.direction && o.target == f.target && o.patch == f.patch &&
                   o.manifest == f.manifest && o.summary == f.summary;
        });
        if (!seen) out.push_back(std::move(f));
    }
    fixes = std::move(out);
}

// The tail's verdicts on drops no policy explains.
void unexplained_fixes(const ClusterState& s, const Explanation& e, std::vector<Fix>& out) {
    for (const auto& h : e.hints) {
        if (h.code == hint::kUnmodelledPolicy) {
            Fix f;
            f.kind = "none";
            f.direction = h.direction;
            f.summary = fmt::format(
                "the dataplane dropped it for {}, a policy netpol-trace does not model: change it "
                "where it is defined (its owner: the CNI's policy objects), not with a "
                "NetworkPolicy",
                h.policy.value_or("a policy"));
            out.push_back(std::move(f));
        } else if (h.code == hint::kNotExplainedByPolicy) {
            Fix f;
            f.kind = "command";
            f.direction = h.direction;
            const char* proto = e.protocol == Protocol::UDP ? "udp" : e.protocol == Protocol::SCTP ? "sctp" : "tcp";
            f.command = fmt::format("conntrack -D -p {} -s {} -d {} --dport {}", proto, e.src.ip.str(), e.dst.ip.str(),
                                    e.dst.port);
            std::string restart;
            if (e.src.pod && !e.src.host_network) {
                const auto slash = e.src.pod->find('/');
                if (auto pod = s.find_pod(e.src.pod->substr(0, slash), e.src.pod->substr(slash + 1))) {
                    const auto wl = s.workload_of(*pod);
                    std::string kind = wl.kind;
                    std::transform(kind.begin(), kind.end(), kind.begin(),
                                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
                    if (wl.kind != "Pod")
                        restart = fmt::format(", or restart the client: kubectl rollout restart {}/{} -n {}", kind,
                                              wl.name, e.src.pod->substr(0, slash));
                }
            }
            f.summary = fmt::format(
                "the policies allow it: delete the stale connection on the node that dropped it "
                "(the command){}; if the CNI has not synced a policy change, wait for it or "
                "restart its agent",
                restart);
            out.push_back(std::move(f));
        }
    }
}

}  // namespace

void add_fixes(const ClusterState& s, Explanation& e, const FixOptions& options) {
    std::vector<Fix> fixes;
    if (e.allowed()) {
        unexplained_fixes(s, e, fixes);
        e.fixes = std::move(fixes);
        return;
    }
    // The explanations whose flows the policy hooks see: the endpoints of a Service, else the connection itself.
    std::vector<std::pair<const Explanation*, bool>> parts;  // (explanation, via a Service)
    if (!e.service.empty()) {
        for (const auto& ep : e.service.front().endpoints) parts.emplace_back(&ep, true);
    } else {
        parts.emplace_back(&e, false);
    }
    for (const Direction dir : {Direction::Egress, Direction::Ingress}) {
        // One group per local pod: a Service's denying endpoints share the client's egress, and each endpoint
        // pod its own ingress.
        std::vector<SideGroup> groups;
        for (const auto& [part, via_service] : parts) {
            const SideExplanation& side = dir == Direction::Ingress ? part->ingress : part->egress;
            if (side.allowed) continue;
            auto flow = flow_of(s, *part, via_service);
            if (!flow) continue;
            const auto& local = dir == Direction::Ingress ? flow->dst : flow->src;
            if (!local.pod) continue;
            auto it = std::find_if(groups.begin(), groups.end(),
                                   [&](const SideGroup& g) { return local_pod(g.flows[0], dir) == *local.pod; });
            if (dir == Direction::Egress && !groups.empty()) it = groups.begin();
            if (it == groups.end()) {
                groups.push_back(SideGroup{dir, &side, {}, e.service.empty() ? std::string() : e.service.front().name});
                it = std::prev(groups.end());
            }
            it->flows.push_back(*flow);
        }
        for (const auto& g : groups) {
            auto cs = candidates_for(s, g);
            for (auto& c : cs) measure(s, g, c, options);
            rank(cs);
            for (auto& c : cs) fixes.push_back(std::move(c.fix));
        }
    }
    dedupe(fixes);
    e.fixes = std::move(fixes);
}

}  // namespace npt

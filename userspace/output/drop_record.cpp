#include "output/drop_record.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "state/cni_naming.hpp"
#include "output/text_output.hpp"
#include "state/cluster_state.hpp"

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

// The rule, for messages: "chain filter/cali-po-x, rule 12", "NFLOG group 100, prefix "..."".
std::string rule_location(const DropRule& rule) {
    if (!rule.chain.empty()) {
        std::string s = "chain " + (rule.table.empty() ? std::string() : rule.table + "/") + rule.chain;
        if (rule.chain_policy)
            s += ", the chain's policy";
        else if (rule.handle)
            s += fmt::format(", rule {}", *rule.handle);
        return s;
    }
    if (rule.nflog_group) {
        return fmt::format("NFLOG group {}{}", *rule.nflog_group,
                           rule.nflog_prefix && !rule.nflog_prefix->empty()
                               ? fmt::format(", prefix \"{}\"", *rule.nflog_prefix)
                               : std::string());
    }
    return "rule unknown";
}

// Where the dataplane dropped it: "in calico chain filter/cali-po-x (rule 12)".
std::string rule_where(const DropRule& rule) {
    if (!rule.chain.empty()) {
        std::string s = fmt::format("in {}chain {}{}", rule.cni ? *rule.cni + " " : std::string(),
                                    rule.table.empty() ? std::string() : rule.table + "/", rule.chain);
        if (rule.chain_policy)
            s += " (the chain's policy)";
        else if (rule.handle)
            s += fmt::format(" (rule {})", *rule.handle);
        return s;
    }
    return fmt::format("in a {}rule ({})", rule.cni ? *rule.cni + " " : std::string(), rule_location(rule));
}

// " for the egress of pod ns/name".
std::string for_pod(const DropRule& rule) {
    if (!rule.pod) return {};
    return rule.direction ? fmt::format(" for the {} of pod {}", *rule.direction, *rule.pod) : " for pod " + *rule.pod;
}

// The kinds the engine evaluates: a policy of one of them missing from the state is a state that lags.
bool modelled_kind(std::string_view kind) {
    return kind == "NetworkPolicy" || kind == "ClusterNetworkPolicy" || kind == "AdminNetworkPolicy" ||
           kind == "BaselineAdminNetworkPolicy";
}

// A Calico policy chain whose hashed name no policy of the state has.
bool unknown_hashed_policy_chain(const DropRule& rule) {
    return !rule.policy && rule.cni == "calico" && cni::parse_calico_chain(rule.chain, nullptr).hashed;
}

std::string pod_text(const DropRule& rule) {
    if (!rule.pod) return {};
    return "pod " + *rule.pod + (rule.direction ? " " + *rule.direction : std::string());
}

Json rule_json(const DropRule& rule) {
    const auto opt = [](const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); };
    const auto known = [](const std::string& v) { return v.empty() ? Json(nullptr) : Json(v); };
    Json j = Json{{"table", known(rule.table)},
                  {"chain", known(rule.chain)},
                  {"handle", rule.handle ? Json(*rule.handle) : Json(nullptr)},
                  {"comment", opt(rule.comment)},
                  {"cni", opt(rule.cni)},
                  {"policy", opt(rule.policy)},
                  {"via", rule.via}};
    // Every comment as read, where the one shown is not the whole story (Felix's id and texts).
    if (rule.comments.size() > 1 || (rule.comments.size() == 1 && rule.comment != rule.comments.front()))
        j["comments"] = rule.comments;
    // Which versions' naming it follows, where that naming named no policy (an implicit drop, or a shape not
    // mapped back).
    if (rule.cni_version_guess && !rule.policy) j["cni_version_guess"] = *rule.cni_version_guess;
    if (rule.rule_name) j["rule_name"] = *rule.rule_name;
    if (rule.family) j["family"] = *rule.family;
    if (rule.chain_policy) j["chain_policy"] = true;
    if (!rule.path.empty()) j["path"] = rule.path;
    if (!rule.returned_from.empty()) j["returned_from"] = rule.returned_from;
    if (rule.pod) j["pod"] = *rule.pod;
    if (rule.direction) j["direction"] = *rule.direction;
    if (rule.policy_kind) j["policy_kind"] = *rule.policy_kind;
    if (rule.policy) j["policy_in_state"] = rule.policy_in_state;
    if (!rule.evaluated_policies.empty()) j["evaluated_policies"] = rule.evaluated_policies;
    if (rule.nflog_group) j["nflog"] = Json{{"group", *rule.nflog_group}, {"prefix", rule.nflog_prefix.value_or("")}};
    return j;
}

// What the flow tells of the rule's pod. kube-router's pod chain serves both directions: the flow's end the pod is
// says which one dropped it. A Calico endpoint chain whose interface names no pod of the state (not Calico's
// "cali" + sha1 name) is still the chain of the flow's destination (cali-tw-) or source (cali-fw-) workload.
void reconcile_with_flow(DropRule& rule, const Explanation& e) {
    if (rule.pod && (!rule.direction || rule.cni == "kube-router")) {
        const bool src = e.src.pod == rule.pod, dst = e.dst.pod == rule.pod;
        if (src != dst) rule.direction = src ? "egress" : "ingress";
    }
    if (!rule.pod && rule.cni == "calico" && rule.direction) {
        bool endpoint = cni::parse_calico_chain(rule.chain, nullptr).kind == cni::CalicoChainKind::Endpoint;
        for (size_t i = rule.path.size(); i-- > 0 && !endpoint;) {
            const auto c = cni::parse_calico_chain(rule.path[i], nullptr);
            endpoint = c.kind == cni::CalicoChainKind::Endpoint && c.direction == *rule.direction;
        }
        const auto& end = *rule.direction == "ingress" ? e.dst.pod : e.src.pod;
        if (endpoint && end) rule.pod = *end;
    }
}

}  // namespace

std::string rule_text(const DropRule& rule, bool attributed) {
    std::string s;
    if (!rule.chain.empty()) {
        s = (rule.table.empty() ? std::string() : rule.table + "/") + rule.chain;
        if (rule.chain_policy)
            s += " chain policy";
        else if (rule.handle)
            s += fmt::format(" handle {}", *rule.handle);
    }
    if (rule.comment && !rule.comment->empty()) s += fmt::format("{}\"{}\"", s.empty() ? "" : " ", *rule.comment);
    if (rule.nflog_group) {
        s += fmt::format("{}nflog group {}", s.empty() ? "" : " ", *rule.nflog_group);
        if (rule.nflog_prefix && !rule.nflog_prefix->empty()) s += fmt::format(" \"{}\"", *rule.nflog_prefix);
    }
    if (s.empty()) s = "unknown";
    std::vector<std::string> what;
    if (rule.cni) what.push_back(*rule.cni);
    if (rule.policy) {
        const bool knp = !rule.policy_kind || *rule.policy_kind == "NetworkPolicy";
        what.push_back((knp ? std::string("policy ") : *rule.policy_kind + " ") + *rule.policy +
                       (rule.rule_name ? " rule " + *rule.rule_name : std::string()) +
                       (knp && attributed && !rule.policy_in_state ? " not in the state" : ""));
    } else if (unknown_hashed_policy_chain(rule)) {
        what.push_back(attributed ? "the chain of a policy not in the state" : "a policy's chain");
    }
    if (rule.pod) what.push_back(pod_text(rule));
    std::string paren = fmt::format("{}", fmt::join(what, ", "));
    if (!rule.evaluated_policies.empty())
        paren += fmt::format("{}policies evaluated: {}", paren.empty() ? "" : "; ",
                             fmt::join(rule.evaluated_policies, ", "));
    if (!paren.empty()) s += " (" + paren + ")";
    return s;
}

DropRule rule_from_json(const Json& j) {
    const auto str = [&](const char* key) -> std::optional<std::string> {
        auto it = j.find(key);
        return it != j.end() && it->is_string() ? std::optional(it->get<std::string>()) : std::nullopt;
    };
    const auto strings = [&](const char* key) {
        std::vector<std::string> v;
        if (auto it = j.find(key); it != j.end() && it->is_array())
            for (const auto& x : *it)
                if (x.is_string()) v.push_back(x.get<std::string>());
        return v;
    };
    DropRule r;
    r.table = str("table").value_or("");
    r.chain = str("chain").value_or("");
    if (auto it = j.find("handle"); it != j.end() && it->is_number_unsigned()) r.handle = it->get<uint64_t>();
    r.comment = str("comment");
    r.comments = strings("comments");
    r.cni = str("cni");
    r.cni_version_guess = str("cni_version_guess");
    r.policy = str("policy");
    r.rule_name = str("rule_name");
    r.via = str("via").value_or("");
    r.family = str("family");
    r.chain_policy = j.value("chain_policy", false);
    r.path = strings("path");
    r.returned_from = strings("returned_from");
    r.pod = str("pod");
    r.direction = str("direction");
    r.policy_kind = str("policy_kind");
    r.policy_in_state = j.value("policy_in_state", false);
    r.evaluated_policies = strings("evaluated_policies");
    if (auto it = j.find("nflog"); it != j.end() && it->is_object()) {
        if (auto g = it->find("group"); g != it->end() && g->is_number_unsigned()) r.nflog_group = g->get<uint16_t>();
        if (auto p = it->find("prefix"); p != it->end() && p->is_string()) r.nflog_prefix = p->get<std::string>();
    }
    return r;
}

DropRule make_drop_rule(std::string table, std::string chain, std::optional<uint64_t> handle,
                        std::optional<std::string> comment, const ClusterState* state) {
    DropRule r;
    r.table = std::move(table);
    r.chain = std::move(chain);
    r.handle = handle;
    r.comment = std::move(comment);
    attribute_drop_rule(r, state);
    return r;
}

namespace {

using Comments = std::vector<std::string>;

// What kube-router's comments on one rule say: the first of them it wrote (a rule carries one).
cni::KubeRouterComment kube_router_comment(const Comments& comments) {
    for (const auto& c : comments)
        if (auto k = cni::parse_kube_router_comment(c); k.recognized || !k.versions.any()) return k;
    return {};
}

bool kube_router_name(std::string_view name) {
    return name.starts_with("KUBE-NWPLCY-") || name.starts_with("KUBE-POD-FW-") || name.starts_with("KUBE-ROUTER-") ||
           name.starts_with("kube-router-filter-");
}

void set_policy(DropRule& r, const cni::PolicyRef& p) {
    r.policy = p.name;
    r.policy_kind = p.kind;
}

}  // namespace

void attribute_drop_rule(DropRule& r, const ClusterState* state) {
    r.cni.reset();
    r.cni_version_guess.reset();
    r.policy.reset();
    r.rule_name.reset();
    r.pod.reset();
    r.direction.reset();
    r.policy_kind.reset();
    r.policy_in_state = false;
    r.evaluated_policies.clear();
    // A rule known only by its comment (fexit's first bytes of it, a test) has that one.
    const Comments comments = !r.comments.empty() ? r.comments : r.comment ? Comments{*r.comment} : Comments{};
    if (!r.comments.empty()) r.comment = r.comments.front();

    const auto starts = [&](std::string_view prefix) { return r.chain.starts_with(prefix); };
    cni::VersionRange kr_versions, calico_versions;
    if (kube_router_name(r.chain) || kube_router_name(r.table)) r.cni = "kube-router";
    kr_versions.narrow(cni::kube_router_name_versions(r.table));

    // Calico: the chain's name says it all (endpoint: pod and direction; policy chain: the policy), Felix's
    // comments the rest (its text rather than its rule id; the name of a policy API rule; the policy of a
    // chain's first rule).
    const auto calico = cni::parse_calico_chain(r.chain, state);
    const auto felix = cni::parse_calico_comments(comments);
    if (calico.kind != cni::CalicoChainKind::None || (r.table == "calico" && !r.cni)) {
        r.cni = "calico";
        calico_versions.narrow(calico.versions);
        calico_versions.narrow(felix.versions);
        if (!r.comments.empty()) r.comment = felix.meaningful ? *felix.meaningful : felix.id;
        r.rule_name = felix.rule_name;
        if (!calico.direction.empty()) r.direction = calico.direction;
        if (!calico.pod.empty()) r.pod = calico.pod;
        if (calico.policy)
            set_policy(r, *calico.policy);
        else if (felix.policy &&
                 (calico.kind == cni::CalicoChainKind::Policy || calico.kind == cni::CalicoChainKind::None))
            set_policy(r, *felix.policy);
        if (!r.direction && !felix.direction.empty()) r.direction = felix.direction;
    }
    if (r.table == "kube-network-policies") r.cni = "kube-network-policies";
    std::vector<cni::CalicoChain> calico_path;
    if (r.cni == "calico") {
        for (const auto& c : r.path) calico_path.push_back(cni::parse_calico_chain(c, state));
        for (const auto& c : calico_path) calico_versions.narrow(c.versions);
        // A drop in a policy (or profile) chain: the pod is the endpoint chain's that led there.
        for (size_t i = calico_path.size(); i-- > 0 && !r.pod;) {
            const auto& c = calico_path[i];
            if (c.kind != cni::CalicoChainKind::Endpoint || c.pod.empty()) continue;
            if (r.direction && *r.direction != c.direction) break;
            r.pod = c.pod;
            r.direction = c.direction;
        }
    }

    // kube-router: its comments name the pod and the policy; the hashed chain names do not.
    std::optional<std::string> written_policy;  // as kube-router wrote it (maybe without namespace)
    if (!comments.empty() && r.cni != "calico") {
        const auto c = kube_router_comment(comments);
        if (c.recognized) r.cni = r.cni.value_or("kube-router");
        kr_versions.narrow(c.versions);
        if (!c.pod.empty()) {
            r.pod = c.pod;
            if (!c.direction.empty()) r.direction = c.direction;
        }
        // The policy it names; a jump's only in v2.11's "<ns>/<name> policy" form (the older jump names the
        // policy without its namespace, and a drop is never such a jump).
        const bool v211 = c.versions.lo == cni::versions(cni::Cni::KubeRouter, "2.11").lo;
        if (!c.policy.empty() && (!c.jump_to_policy || v211)) {
            written_policy = c.policy;
            if (!c.direction.empty() && !r.direction) r.direction = c.direction;
        }
    }
    std::vector<cni::KubeRouterComment> jumps;
    std::vector<cni::KubeRouterComment> returned;
    if (r.cni != "calico") {
        for (const auto& c : r.jump_comments) jumps.push_back(kube_router_comment(c));
        for (const auto& c : r.returned_comments) returned.push_back(kube_router_comment(c));
        for (const auto* list : {&jumps, &returned})
            for (const auto& k : *list) kr_versions.narrow(k.versions);
        for (const auto* chains : {&r.path, &r.returned_from})
            for (const auto& c : *chains) kr_versions.narrow(cni::kube_router_name_versions(c));
        // The jump into the pod's firewall chain says which direction the packet was taken there for (the
        // REJECT rule serves both).
        for (size_t i = jumps.size(); i-- > 0;) {
            if (jumps[i].pod.empty()) continue;
            if (r.cni == "kube-router" && !r.pod) r.pod = jumps[i].pod;
            if (r.pod == jumps[i].pod && !jumps[i].direction.empty()) r.direction = jumps[i].direction;
            break;
        }
        // A drop inside a policy's chain: the jump into it names the policy.
        if (!written_policy && starts("KUBE-NWPLCY-") && !r.path.empty() && r.path.back() == r.chain &&
            jumps.size() == r.path.size() && jumps.back().jump_to_policy)
            written_policy = jumps.back().policy;
    }
    // k3s: "DROP by policy <ns>/<name>" as the NFLOG prefix.
    if (!written_policy && !r.policy && r.nflog_prefix) {
        if (auto p = cni::parse_k3s_nflog_prefix(*r.nflog_prefix)) {
            written_policy = std::move(p);
            r.cni = r.cni.value_or("kube-router");
        }
    }
    const std::string pod_ns = r.pod ? r.pod->substr(0, r.pod->find('/')) : std::string();
    if (written_policy && !r.policy) {
        if (auto p = cni::resolve_policy_name(*written_policy, pod_ns, state)) {
            r.policy = std::move(*p);
            r.policy_kind = "NetworkPolicy";
        }
    }

    // The policies the packet was evaluated against: Calico's policy chains, kube-router's jumps into them. Those of
    // the pod whose chain dropped it: after its entry into that chain (KUBE-POD-FW-, cali-tw-/cali-fw-), not the
    // other end's, passed before.
    const auto evaluated = [&](const std::string& p) {
        if (std::find(r.evaluated_policies.begin(), r.evaluated_policies.end(), p) == r.evaluated_policies.end())
            r.evaluated_policies.push_back(p);
    };
    const auto kube_router_policy = [&](const cni::KubeRouterComment& k) {
        return cni::resolve_policy_name(k.policy, pod_ns, state).value_or(k.policy);
    };
    const auto pod_chain = [&](size_t i) {
        return r.path[i].starts_with("KUBE-POD-FW-") ||
               (i < calico_path.size() && calico_path[i].kind == cni::CalicoChainKind::Endpoint);
    };
    std::optional<size_t> entry;  // the first entry into the last pod chain of the path
    for (size_t i = r.path.size(); i-- > 0;) {
        if (!pod_chain(i)) continue;
        if (entry && r.path[i] != r.path[*entry]) break;
        entry = i;
    }
    const size_t from = entry.value_or(0);
    for (size_t i = from; i < std::max(r.path.size(), jumps.size()); ++i) {
        if (i < calico_path.size() && calico_path[i].policy) evaluated(calico_path[i].policy->name);
        if (i < jumps.size() && jumps[i].jump_to_policy) evaluated(kube_router_policy(jumps[i]));
    }
    if (calico.policy && std::find(r.path.begin(), r.path.end(), r.chain) == r.path.end())
        evaluated(calico.policy->name);
    // Chains the packet left again before the drop, in return order: the policy chains left after the last other
    // pod chain it left were evaluated inside the dropping pod's chain (kube-router's policy chains mark and
    // return; a Calico policy chain that does not accept returns).
    size_t returned_from = 0;
    for (size_t i = 0; i < r.returned_from.size(); ++i) {
        const auto& c = r.returned_from[i];
        if (c.starts_with("KUBE-POD-FW-") || cni::parse_calico_chain(c, state).kind == cni::CalicoChainKind::Endpoint)
            returned_from = i + 1;
    }
    for (size_t i = returned_from; i < r.returned_from.size(); ++i) {
        const auto c = cni::parse_calico_chain(r.returned_from[i], state);
        if (c.kind != cni::CalicoChainKind::None) calico_versions.narrow(c.versions);
        if (c.policy) {
            evaluated(c.policy->name);
            continue;
        }
        if (i < returned.size() && returned[i].jump_to_policy) evaluated(kube_router_policy(returned[i]));
    }
    // From v2.6 every pod chain enters KUBE-NWPLCY-COMMON first: a traced drop in a pod chain that left policy
    // chains but not that one is older.
    if (r.cni == "kube-router" && starts("KUBE-POD-FW-")) {
        bool common = false, policy_chain = false;
        for (size_t i = returned_from; i < r.returned_from.size(); ++i) {
            common |= r.returned_from[i] == "KUBE-NWPLCY-COMMON";
            policy_chain |= r.returned_from[i].starts_with("KUBE-NWPLCY-");
        }
        if (policy_chain && !common) kr_versions.narrow(cni::versions(cni::Cni::KubeRouter, "1.6", "2.5"));
    }
    // kube-router's REJECT (and NFLOG) in a pod's chain follow every policy chain of the pod: with one, that
    // policy is the one that did not allow the packet.
    if (r.cni == "kube-router" && !r.policy && r.pod && starts("KUBE-POD-FW-") && r.evaluated_policies.size() == 1 &&
        r.evaluated_policies.front().find('/') != std::string::npos) {
        r.policy = r.evaluated_policies.front();
        r.policy_kind = "NetworkPolicy";
    }

    if (r.policy && r.policy_kind == "NetworkPolicy")
        r.policy_in_state = cni::policy_in_state(state, *r.policy);
    else if (r.policy && r.policy_kind)
        r.policy_in_state = cni::cluster_policy_in_state(state, *r.policy, *r.policy_kind);
    std::string guess;
    if (r.cni == "kube-router") guess = cni::version_guess(cni::Cni::KubeRouter, kr_versions);
    if (r.cni == "calico") guess = cni::version_guess(cni::Cni::Calico, calico_versions);
    if (!guess.empty()) r.cni_version_guess = std::move(guess);
}

std::string format_time(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", ms);
}

void annotate_drop(DropRecord& r) {
    auto& e = r.explanation;
    if (r.original_dst && !r.explanation.dst.service) {
        const auto& od = *r.original_dst;
        if (std::none_of(e.hints.begin(), e.hints.end(),
                         [](const Hint& h) { return h.code == hint::kServiceVipDnat; })) {
            e.hints.push_back(
                {hint::kServiceVipDnat, Direction::Egress, std::nullopt,
                 fmt::format("the client dialled {}:{}{}; conntrack translated it to {}:{} before the policy hook, so "
                             "policies see the endpoint, not the Service IP and port",
                             od.ip.host_str(), od.port, od.service ? " (Service " + *od.service + ")" : std::string(),
                             e.dst.ip.host_str(), e.dst.port)});
        }
    }
    if (r.rule) reconcile_with_flow(*r.rule, e);
    if (!r.attributed || !e.allowed()) return;
    const DropRule* rule = r.rule ? &*r.rule : nullptr;
    const Direction dir = rule && rule->direction == "egress" ? Direction::Egress : Direction::Ingress;
    if (rule && rule->policy && !rule->policy_in_state) {
        const std::string kind = rule->policy_kind.value_or("policy");
        const std::string what =
            modelled_kind(kind)
                ? fmt::format(
                      "{} {}, which is not in the cluster state netpol-trace evaluates (deleted, "
                      "with the CNI still enforcing its rules, or newer than the state)",
                      kind, *rule->policy)
                : fmt::format(
                      "{} {}, a policy netpol-trace does not model (it evaluates Kubernetes NetworkPolicies "
                      "and the policy API's cluster policies)",
                      kind, *rule->policy);
        e.hints.push_back({hint::kUnmodelledPolicy, dir, rule->policy,
                           fmt::format("NetworkPolicy allows this flow but the dataplane dropped it {}: {}",
                                       rule_where(*rule), what)});
        return;
    }
    const bool lagging_policy = rule && rule->policy && rule->policy_in_state;
    bool named = false;  // `why` names the policy whose rule dropped it
    std::string why;
    if (!is_policy_enforcement_reason(r.reason)) {
        why = fmt::format("the kernel dropped it for {}, which is not a policy enforcement point", r.reason);
    } else if (r.ct_state == "established" || r.ct_state == "reply" || r.ct_state == "related") {
        why = fmt::format(
            "the packet belongs to a connection conntrack already knew ({}); a policy change does "
            "not reset existing connections and the dataplane still drops this one: restart the "
            "client (or delete the conntrack entry) to reconnect",
            r.ct_state);
    } else if (lagging_policy) {
        why = fmt::format(
            "{}'s rules for {} {} still drop it ({}): its programmed rules predate the "
            "policy's current spec (CNI lag: the CNI has not synced the change yet)",
            rule->cni.value_or("the CNI"), rule->policy_kind.value_or("NetworkPolicy"), *rule->policy,
            rule_location(*rule));
        named = true;
    } else if (rule && unknown_hashed_policy_chain(*rule)) {
        why = fmt::format(
            "it was dropped {}{}, the chain of a policy that is not in the state: a Calico policy, "
            "or a NetworkPolicy the state does not have",
            rule_where(*rule), for_pod(*rule));
    } else if (rule && rule->cni) {
        why = fmt::format(
            "it was dropped {}{}: the CNI may not have synced a policy change yet, or a rule outside "
            "NetworkPolicy (a CNI-specific policy, a host firewall) dropped it",
            rule_where(*rule), for_pod(*rule));
    } else {
        why =
            "the NetworkPolicies in the state allow it: the CNI may not have synced a policy change yet, or a "
            "rule outside NetworkPolicy (a CNI-specific policy, a host firewall) dropped it";
    }
    if (lagging_policy && !named)
        why += fmt::format("; the rule that dropped it is {}'s for {} {} ({})", rule->cni.value_or("the CNI"),
                           rule->policy_kind.value_or("NetworkPolicy"), *rule->policy, rule_location(*rule));
    e.hints.push_back({hint::kNotExplainedByPolicy, dir, std::nullopt,
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
    j["rule"] = r.rule ? rule_json(*r.rule) : Json(nullptr);
    if (r.rule_trace) j["rule_trace"] = *r.rule_trace;
    if (r.original_dst) {
        j["original_dst"] = Json{{"ip", r.original_dst->ip.str()},
                                 {"port", r.original_dst->port},
                                 {"service", r.original_dst->service ? Json(*r.original_dst->service) : Json(nullptr)}};
    }
    return j;
}

}  // namespace npt

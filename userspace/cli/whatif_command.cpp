#include "cli/whatif_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "live/cluster_source.hpp"
#include "k8s/api_resources.hpp"
#include "output/json_output.hpp"
#include "output/text_output.hpp"
#include "policy/manifest.hpp"
#include "policy/whatif.hpp"
#include "flows/connection.hpp"
#include "state/state_loader.hpp"

namespace npt::cli {

namespace {

const char* kFlowsHelp =
    "Observed working connections: the JSON lines of `netpol-trace flows -o json` (or an agent's /flows); - = stdin. "
    "Default, when the state comes from the cluster: every agent's /flows";

void add_agent_options(CLI::App* cmd, AgentLocator& a) {
    cmd->add_option("--agent-namespace", a.ns, "Namespace of the netpol-trace agents (default netpol-trace)")
        ->type_name("NS");
    cmd->add_option("--agent-selector", a.selector,
                    "Label selector of the agent pods (default app.kubernetes.io/name=netpol-trace,"
                    "app.kubernetes.io/component=agent)")
        ->type_name("SELECTOR");
    cmd->add_option("--agent-port", a.port, "The agents' HTTP port (default 9842)")
        ->type_name("PORT")
        ->check(CLI::Range(1, 65535));
}

void add_state_options(CLI::App* cmd, std::vector<std::string>& files, std::string& kubeconfig, std::string& context) {
    cmd->add_option("--state", files,
                    "Cluster state: kubectl get namespaces,pods,networkpolicies,services,endpointslices,nodes -A -o "
                    "json (or -o yaml, or manifests); repeatable; - reads stdin")
        ->type_name("FILE");
    cmd->add_option("--kubeconfig", kubeconfig,
                    "Kubeconfig for reading the state from the cluster when no --state is given")
        ->type_name("PATH");
    cmd->add_option("--context", context, "Kubeconfig context to use (default: its current-context)");
}

// Files of a directory that hold manifests, in name order; files and "-" as given.
Result<std::vector<std::string>> manifest_paths(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (const auto& a : args) {
        std::error_code ec;
        if (a != "-" && std::filesystem::is_directory(a, ec)) {
            std::vector<std::string> files;
            for (const auto& e : std::filesystem::recursive_directory_iterator(a, ec)) {
                const auto ext = e.path().extension().string();
                if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
                    files.push_back(e.path());
            }
            if (ec) return Error{fmt::format("--apply {}: cannot read the directory: {}", a, ec.message())};
            std::sort(files.begin(), files.end());
            out.insert(out.end(), files.begin(), files.end());
        } else {
            out.push_back(a);
        }
    }
    return out;
}

struct ChangeLine {
    std::string action;  // "create", "replace", "delete"
    std::string kind;
    std::string name;  // "ns/name" or a cluster policy's name
};

bool policy_exists(const ClusterState& s, const std::string& ns, const std::string& name) {
    return std::any_of(s.policies().begin(), s.policies().end(),
                       [&](const NetworkPolicy& p) { return p.ns == ns && p.name == name; });
}

bool cluster_policy_exists(const ClusterState& s, ClusterPolicyKind kind, const std::string& name) {
    return std::any_of(s.cluster_policies().begin(), s.cluster_policies().end(),
                       [&](const ClusterNetworkPolicy& p) { return p.kind == kind && p.name == name; });
}

std::optional<ClusterPolicyKind> cluster_kind(std::string_view kind) {
    std::string k(kind);
    std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (k == "clusternetworkpolicy" || k == "clusternetworkpolicies" || k == "cnp")
        return ClusterPolicyKind::ClusterNetworkPolicy;
    if (k == "adminnetworkpolicy" || k == "adminnetworkpolicies" || k == "anp")
        return ClusterPolicyKind::AdminNetworkPolicy;
    if (k == "baselineadminnetworkpolicy" || k == "baselineadminnetworkpolicies" || k == "banp")
        return ClusterPolicyKind::BaselineAdminNetworkPolicy;
    return std::nullopt;
}

// The change of --apply and --delete, checked against the current state.
Result<StateChange> build_change(const ClusterState& s, const WhatIfOptions& o, std::vector<ChangeLine>& lines,
                                 std::ostream& err) {
    StateChange change;
    auto paths = manifest_paths(o.apply);
    if (!paths) return paths.error();
    if (!paths->empty()) {
        LoadStats stats;
        auto objects = load_state_files(*paths, &stats);
        if (!objects) return objects.error();
        for (auto& p : objects->policies) {
            lines.push_back({policy_exists(s, p.ns, p.name) ? "replace" : "create", "NetworkPolicy", p.id()});
            change.upsert_policies.push_back(std::move(p));
        }
        for (auto& p : objects->cluster_policies) {
            lines.push_back({cluster_policy_exists(s, p.kind, p.name) ? "replace" : "create",
                             cluster_policy_kind_name(p.kind), p.name});
            change.upsert_cluster_policies.push_back(std::move(p));
        }
        const size_t others = objects->pods.size() + objects->namespaces.size() + objects->services.size() +
                              objects->endpoint_slices.size() + objects->nodes.size() + stats.ignored_kinds;
        if (others)
            err << fmt::format(
                "netpol-trace: --apply: {} object{} of other kinds left alone (whatif applies "
                "NetworkPolicies and cluster policies)\n",
                others, others == 1 ? "" : "s");
    }
    for (const auto& d : o.remove) {
        const auto first = d.find('/');
        const auto last = d.rfind('/');
        if (first == std::string::npos)
            return Error{
                fmt::format("--delete {:?}: expected KIND/NAMESPACE/NAME (or KIND/NAME for a cluster policy)", d)};
        const std::string kind = d.substr(0, first);
        if (auto ck = cluster_kind(kind)) {
            const std::string name = d.substr(last + 1);
            if (!cluster_policy_exists(s, *ck, name))
                return Error{fmt::format("--delete {}: no {} {:?} in the cluster state", d,
                                         cluster_policy_kind_name(*ck), name)};
            change.delete_cluster_policies.emplace_back(*ck, name);
            lines.push_back({"delete", cluster_policy_kind_name(*ck), name});
            continue;
        }
        std::string k = kind;
        std::transform(k.begin(), k.end(), k.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (k != "networkpolicy" && k != "networkpolicies" && k != "netpol")
            return Error{
                fmt::format("--delete {}: unknown kind {:?} (NetworkPolicy, ClusterNetworkPolicy, "
                            "AdminNetworkPolicy, BaselineAdminNetworkPolicy)",
                            d, kind)};
        if (first == last) return Error{fmt::format("--delete {}: a NetworkPolicy is KIND/NAMESPACE/NAME", d)};
        const std::string ns = d.substr(first + 1, last - first - 1), name = d.substr(last + 1);
        if (!policy_exists(s, ns, name))
            return Error{fmt::format("--delete {}: no NetworkPolicy {}/{} in the cluster state", d, ns, name)};
        change.delete_policies.emplace_back(ns, name);
        lines.push_back({"delete", "NetworkPolicy", ns + "/" + name});
    }
    return change;
}

// Where the observed connections come from.
struct FlowSource {
    std::string path;  // --flows; "" with from_agents: the agents' /flows
    bool from_agents = false;
    std::string kubeconfig, context;
    AgentLocator agents;
};

// Observed connections: the file or the agents', seen within --since, touching the namespaces asked for.
Result<std::vector<Connection>> load_flows(const ClusterState& s, const FlowSource& src, const std::string& since,
                                           const std::vector<std::string>& namespaces, std::ostream& err) {
    std::vector<Connection> flows;
    if (!since.empty() && !parse_duration(since))
        return Error{fmt::format("--since {:?}: expected a duration such as 90s, 15m, 24h or 7d", since)};
    if (src.from_agents) {
        auto client = live::connect_api(src.kubeconfig, src.context);
        if (!client) return client.error();
        std::vector<std::string> query;
        for (const auto& ns : namespaces) query.push_back("namespace=" + k8s::url_escape(ns));
        if (!since.empty()) query.push_back("since=" + k8s::url_escape(since));
        auto fetched = fetch_agent_connections(**client, src.agents,
                                               query.empty() ? "" : fmt::format("?{}", fmt::join(query, "&")), err);
        if (!fetched) return Error{fetched.error().message + " (or give the connections with --flows FILE)"};
        flows = std::move(*fetched);
    } else if (!src.path.empty()) {
        std::ifstream file;
        std::istream* in = &std::cin;
        if (src.path != "-") {
            file.open(src.path);
            if (!file) return Error{fmt::format("{}: cannot read: {}", src.path, std::strerror(errno))};
            in = &file;
        }
        auto read = read_connections(*in, src.path == "-" ? "stdin" : src.path);
        if (!read) return read.error();
        flows = std::move(*read);
    } else {
        return flows;
    }
    if (!since.empty()) {
        const auto window = parse_duration(since);
        if (!window) return Error{fmt::format("--since {:?}: expected a duration such as 90s, 15m, 24h or 7d", since)};
        const auto cutoff = std::chrono::system_clock::now() - *window;
        std::erase_if(flows, [&](const Connection& f) { return f.last_seen && *f.last_seen < cutoff; });
    }
    if (!namespaces.empty()) {
        // A pod of the namespace at either end, or its Service dialled (the endpoints live with the Service).
        const auto in = [&](std::string_view ns) {
            return std::find(namespaces.begin(), namespaces.end(), ns) != namespaces.end();
        };
        const auto touches = [&](const IpAddr& ip) {
            if (auto pod = s.pod_by_ip(ip)) return in(s.pod_namespace(*pod));
            if (auto svc = s.service_by_ip(ip)) return in(s.services()[*svc].ns);
            return false;
        };
        std::erase_if(flows, [&](const Connection& f) { return !touches(f.src.ip) && !touches(f.dst.ip); });
    }
    return flows;
}

// The observed connection as read, or as netpol-trace writes it.
Json flow_json(const Connection& c) {
    return Json::parse(c.line.empty() ? connection_json(c) : c.line);
}

std::string flow_text(const Connection& f, const ClusterState& s) {
    const auto end = [&](const IpAddr& ip) {
        auto pod = s.pod_by_ip(ip);
        const std::string host = ip.host_str();
        return pod ? fmt::format("{} ({})", s.pod_id(*pod), host) : host;
    };
    return fmt::format("{} -> {}:{}/{}{}{}", end(f.src.ip), end(f.dst.ip), f.port, protocol_name(f.protocol),
                       f.service ? " (Service " + *f.service + ")" : std::string(),
                       f.count ? fmt::format(", {} seen", f.count) : std::string());
}

Json examples_json(const ClusterState& s, const Reach& r) {
    Json out = Json::array();
    for (const auto& ex : r.examples)
        out.push_back(Json{{"from", s.pod_id(ex.from)},
                           {"to", s.pod_id(ex.to)},
                           {"port", ex.port},
                           {"protocol", protocol_name(ex.protocol)},
                           {"change", ex.allowed_after ? "allowed" : "denied"}});
    return out;
}

}  // namespace

void register_whatif(CLI::App& app, WhatIfOptions& o) {
    auto* cmd = app.add_subcommand(
        "whatif",
        "Check a policy change before it is applied: which observed working connections it would break (each with\n"
        "the full explanation after the change) and which connections between pods it newly allows or denies.\n"
        "Exit status: 0 no observed connection breaks, 1 some would, 2 usage or input error.");
    cmd->add_option("--apply", o.apply,
                    "Manifests to apply: a file, a directory (its .yaml/.yml/.json files), - for stdin; repeatable. "
                    "NetworkPolicies and cluster policies are created or replace the ones of their name")
        ->type_name("FILE|DIR");
    cmd->add_option("--delete", o.remove,
                    "A policy to delete: NetworkPolicy/NAMESPACE/NAME, ClusterNetworkPolicy/NAME, "
                    "AdminNetworkPolicy/NAME, BaselineAdminNetworkPolicy/default; repeatable")
        ->type_name("KIND/NAMESPACE/NAME");
    cmd->add_option("--flows", o.flows, kFlowsHelp)->type_name("FILE");
    cmd->add_option("--since", o.since, "Only connections seen within this duration (90s, 15m, 24h, 7d)");
    cmd->add_option("-n,--namespace", o.namespaces, "Only observed connections to or from pods of NS; repeatable");
    add_state_options(cmd, o.state_files, o.kubeconfig, o.context);
    add_agent_options(cmd, o.agents);
    cmd->add_option("-o,--output", o.output, "Output format: text or json")->check(CLI::IsMember({"text", "json"}));
    cmd->footer(
        "A GitOps gate:\n"
        "  kubectl get namespaces,pods,replicasets,networkpolicies,services,endpointslices,nodes -A -o json > "
        "state.json\n"
        "  netpol-trace flows -o json > flows.jsonl\n"
        "  netpol-trace whatif --apply manifests/ --state state.json --flows flows.jsonl\n");
}

void register_advise(CLI::App& app, AdviseOptions& o) {
    auto* cmd = app.add_subcommand(
        "advise",
        "Least-privilege NetworkPolicies for a namespace from its observed working connections: per workload an\n"
        "ingress and an egress policy allowing exactly its observed peers and ports, and a default deny; verified\n"
        "to break no observed connection. Exit status: 0, or 2 usage or input error.");
    cmd->add_option("-n,--namespace", o.ns, "The namespace to write policies for")->required();
    cmd->add_option("--flows", o.flows, kFlowsHelp)->type_name("FILE");
    cmd->add_option("--since", o.since, "Only connections seen within this duration (90s, 15m, 24h, 7d)");
    add_state_options(cmd, o.state_files, o.kubeconfig, o.context);
    add_agent_options(cmd, o.agents);
    cmd->add_option("-o,--output", o.output, "Output format: yaml (for kubectl apply -f -) or json")
        ->check(CLI::IsMember({"yaml", "json"}));
}

int run_whatif(const WhatIfOptions& o, std::ostream& out, std::ostream& err) {
    if (o.apply.empty() && o.remove.empty()) {
        err << "netpol-trace: whatif needs a change: --apply FILE|DIR and/or --delete KIND/NAMESPACE/NAME\n";
        return 2;
    }
    auto state = live::load_cluster_state(o.state_files, o.kubeconfig, o.context, err);
    if (!state) {
        err << "netpol-trace: " << state.error().message << '\n';
        return 2;
    }
    const ClusterState& before = **state;
    std::vector<ChangeLine> lines;
    auto change = build_change(before, o, lines, err);
    if (!change) {
        err << "netpol-trace: " << change.error().message << '\n';
        return 2;
    }
    const FlowSource source{o.flows, o.flows.empty() && o.state_files.empty(), o.kubeconfig, o.context, o.agents};
    auto flows = load_flows(before, source, o.since, o.namespaces, err);
    if (!flows) {
        err << "netpol-trace: " << flows.error().message << '\n';
        return 2;
    }
    if (o.flows.empty() && !source.from_agents)
        err << "netpol-trace: no --flows: reporting the change's reach only (record the working connections with "
               "`netpol-trace flows -o json`)\n";
    const auto after = before.derive(*change);
    const WhatIfReport report = what_if(before, *after, *change, *flows);

    if (o.output == "json") {
        Json j;
        Json breaks = Json::array();
        for (const auto& b : report.breaks) {
            breaks.push_back(
                Json{{"flow", flow_json(*b.flow)}, {"before", b.before}, {"after", explanation_json(b.after)}});
        }
        j["breaks"] = std::move(breaks);
        j["newly_allowed"] = report.reach.newly_allowed;
        j["newly_denied"] = report.reach.newly_denied;
        j["examples"] = examples_json(before, report.reach);
        j["observed"] = report.observed;
        Json newly = Json::array();
        for (const auto* f : report.newly_allowed_observed) newly.push_back(flow_json(*f));
        j["newly_allowed_observed"] = std::move(newly);
        Json changes = Json::array();
        for (const auto& c : lines) changes.push_back(Json{{"action", c.action}, {"kind", c.kind}, {"name", c.name}});
        j["changes"] = std::move(changes);
        write_json_line(out, j);
    } else {
        std::vector<std::string> what;
        for (const auto& c : lines) what.push_back(fmt::format("{} {} {}", c.action, c.kind, c.name));
        out << fmt::format("change: {}\n", fmt::join(what, ", "));
        out << fmt::format("observed connections evaluated: {}\n", report.observed);
        if (report.breaks.empty()) {
            out << "no observed connection breaks\n";
        } else {
            out << fmt::format("BREAKS {} observed connection{}:\n", report.breaks.size(),
                               report.breaks.size() == 1 ? "" : "s");
            for (const auto& b : report.breaks) {
                out << "  " << flow_text(*b.flow, before) << '\n';
                std::ostringstream text;
                write_explanation_text(text, b.after);
                std::istringstream indented(text.str());
                for (std::string line; std::getline(indented, line);) out << "      " << line << '\n';
            }
        }
        for (const auto* f : report.newly_allowed_observed)
            out << "  now allowed (denied before, yet observed): " << flow_text(*f, before) << '\n';
        out << fmt::format("reach between pods: {} newly allowed, {} newly denied\n", report.reach.newly_allowed,
                           report.reach.newly_denied);
        for (const auto& ex : report.reach.examples)
            out << fmt::format("  {} {} -> {} {}/{}\n",
                               ex.allowed_after ? "newly allowed:" : "newly denied: ", before.pod_id(ex.from),
                               before.pod_id(ex.to), protocol_name(ex.protocol), ex.port);
    }
    return report.breaks.empty() ? 0 : 1;
}

int run_advise(const AdviseOptions& o, std::ostream& out, std::ostream& err) {
    auto state = live::load_cluster_state(o.state_files, o.kubeconfig, o.context, err);
    if (!state) {
        err << "netpol-trace: " << state.error().message << '\n';
        return 2;
    }
    const ClusterState& s = **state;
    if (!s.find_namespace(o.ns)) {
        err << fmt::format("netpol-trace: -n {}: namespace {:?} is not in the cluster state\n", o.ns, o.ns);
        return 2;
    }
    if (o.flows.empty() && !o.state_files.empty()) {
        err << "netpol-trace: advise needs the observed connections: --flows FILE (`netpol-trace flows -o json`), "
               "or the cluster's agents (no --state)\n";
        return 2;
    }
    const FlowSource source{o.flows, o.flows.empty(), o.kubeconfig, o.context, o.agents};
    auto flows = load_flows(s, source, o.since, {o.ns}, err);
    if (!flows) {
        err << "netpol-trace: " << flows.error().message << '\n';
        return 2;
    }
    const Advice advice = advise(s, o.ns, *flows);
    const auto& v = advice.verification;
    if (o.output == "json") {
        Json j;
        Json policies = Json::array();
        for (const auto& p : advice.policies) policies.push_back(Json::parse(network_policy_json(p).dump()));
        j["policies"] = std::move(policies);
        j["verified"] = Json{{"observed", v.observed},
                             {"breaks", v.breaks.size()},
                             {"newly_allowed", v.reach.newly_allowed},
                             {"newly_denied", v.reach.newly_denied},
                             {"allowed", advice.allowed},
                             {"allowed_observed", advice.observed_pairs}};
        write_json_line(out, j);
    } else {
        out << fmt::format(
            "# netpol-trace advise -n {}: {} policies from {} observed connections; verified: {} break{}.\n", o.ns,
            advice.policies.size(), v.observed, v.breaks.size(), v.breaks.size() == 1 ? "" : "s");
        out << fmt::format("# Applied to the cluster: {} connections between pods newly allowed, {} newly denied.\n",
                           v.reach.newly_allowed, v.reach.newly_denied);
        out << fmt::format("# For the namespace's pods they allow {} connections between pods, {} of them observed",
                           advice.allowed, advice.observed_pairs);
        out << (advice.allowed > advice.observed_pairs
                    ? fmt::format(": allowing whole workloads rather than the pods seen adds {}.\n",
                                  advice.allowed - advice.observed_pairs)
                    : ".\n");
        for (const auto& p : advice.policies) out << "---\n" << manifest_yaml(network_policy_json(p));
    }
    if (!v.breaks.empty()) {
        err << fmt::format("netpol-trace: the advice would break {} observed connection(s): {}\n", v.breaks.size(),
                           flow_text(*v.breaks.front().flow, s));
        return 1;
    }
    return 0;
}

}  // namespace npt::cli

#include "cli/flows_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

#include "live/cluster_source.hpp"
#include "live/flow_tracker.hpp"
#include "cli/agent_client.hpp"
#include "live/signal_watch.hpp"
#include "flows/connection.hpp"
#include "k8s/api_client.hpp"
#include "k8s/api_resources.hpp"
#include "live/connection_recorder.hpp"

namespace npt::cli {

void register_flows(CLI::App& app, FlowsOptions& o) {
    auto* cmd = app.add_subcommand(
        "flows",
        "The working connections: who connects to whom, on which port, how often — TCP from the kernel's socket\n"
        "states, UDP and SCTP from conntrack — resolved to pods, workloads and Services. From every node's agent\n"
        "through the API server (a kubeconfig and get on pods/proxy), or recorded here with --local (root) for\n"
        "--duration seconds. `-o json` lines are what `whatif --flows` and `advise --flows` read.\n"
        "Exit status: 0, 1 when nothing could be recorded or no agent answered, 2 usage or input error.");
    cmd->add_option("-n,--namespace", o.namespaces, "Connections to or from pods of NS (repeatable)")->type_name("NS");
    cmd->add_option("--pod", o.pod, "Connections of one pod: NAME (with one --namespace) or NAMESPACE/NAME");
    cmd->add_option("--since", o.since, "Connections seen within this duration (90s, 15m, 24h, 7d)")
        ->type_name("DURATION");
    cmd->add_option("-o,--output", o.output, "table (default) or json (one connection per line)")
        ->check(CLI::IsMember({"table", "json"}));
    cmd->add_flag("--local", o.local,
                  "Record on this machine (root, or CAP_BPF+CAP_PERFMON; UDP/SCTP also need CAP_NET_ADMIN in the "
                  "network namespace of the node's conntrack) instead of asking the agents");
    cmd->add_option("--duration", o.duration, "With --local: record for SECONDS, then print (default 10)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--state", o.state_files,
                    "With --local: the cluster state to resolve pods with (kubectl get ... -o json; repeatable)")
        ->type_name("FILE");
    cmd->add_option("--kubeconfig", o.kubeconfig,
                    "Kubeconfig for the agents (or, with --local, the state) (default: $KUBECONFIG, ~/.kube/config, "
                    "or the in-cluster service account)")
        ->type_name("PATH");
    cmd->add_option("--context", o.context, "Kubeconfig context to use (default: its current-context)");
    cmd->add_flag("--no-kubernetes", o.no_kubernetes, "With --local: no cluster state (addresses only)");
    cmd->add_option("--node", o.node,
                    "With --local: the node name to report (default: $NODE_NAME, else the host name)");
    cmd->add_option("--max-connections", o.max_connections,
                    "With --local: connections remembered, the least recently seen forgotten beyond (default 50000)")
        ->type_name("N")
        ->check(CLI::Range(size_t{16}, size_t{1} << 24));
    cmd->add_option("--agent-namespace", o.agent_namespace,
                    "Namespace of the netpol-trace agents (default netpol-trace)")
        ->type_name("NS");
    cmd->add_option("--agent-selector", o.agent_selector,
                    "Label selector of the agent pods (default app.kubernetes.io/name=netpol-trace,"
                    "app.kubernetes.io/component=agent)")
        ->type_name("SELECTOR");
    cmd->add_option("--agent-port", o.agent_port, "The agents' HTTP port (default 9842)")
        ->type_name("PORT")
        ->check(CLI::Range(1, 65535));
    cmd->add_option("--ready-file", o.ready_file, "With --local: create FILE once recording (for scripts)")
        ->type_name("FILE");
    cmd->add_flag("--debug", o.debug, "Print the attach mode and the recorder's statistics to stderr");
}

namespace {

std::string end_text(const ConnectionEnd& e) {
    if (e.pod) return *e.pod;
    return e.ip.host_str();
}

std::string age_text(const std::optional<TimePoint>& t) {
    if (!t) return "-";
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *t).count();
    if (s < 0) return "0s";
    if (s < 120) return fmt::format("{}s", s);
    if (s < 7200) return fmt::format("{}m", s / 60);
    if (s < 172800) return fmt::format("{}h", s / 3600);
    return fmt::format("{}d", s / 86400);
}

// Stable order: by client, server, port, protocol, side, node.
void sort_connections(std::vector<Connection>& v) {
    std::sort(v.begin(), v.end(), [](const Connection& a, const Connection& b) {
        return std::tuple(end_text(a.src), a.src.ip, end_text(a.dst), a.dst.ip, a.port, a.protocol, a.side, a.node) <
               std::tuple(end_text(b.src), b.src.ip, end_text(b.dst), b.dst.ip, b.port, b.protocol, b.side, b.node);
    });
}

void print(const std::vector<Connection>& conns, const std::string& output, std::ostream& out) {
    if (output == "json") {
        for (const auto& c : conns) out << (c.line.empty() ? connection_json(c) : c.line) << '\n';
        return;
    }
    std::vector<std::array<std::string, 8>> rows;
    rows.push_back({"SRC", "DST", "PORT", "SERVICE", "SIDE", "COUNT", "LAST SEEN", "NODE"});
    for (const auto& c : conns)
        rows.push_back({end_text(c.src), end_text(c.dst), fmt::format("{}/{}", c.port, protocol_name(c.protocol)),
                        c.service.value_or("-"), side_name(c.side), std::to_string(c.count), age_text(c.last_seen),
                        c.node.empty() ? "-" : c.node});
    std::array<size_t, 8> width{};
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i)
            line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}  ", r[i], width[i]);
        out << line << '\n';
    }
}

Result<ConnectionFilter> filter_of(const FlowsOptions& o) {
    ConnectionFilter f;
    f.namespaces = o.namespaces;
    f.pod = o.pod;
    if (!o.pod.empty() && o.pod.find('/') == std::string::npos && o.namespaces.size() != 1)
        return Error{"--pod NAME needs exactly one --namespace (or write --pod NAMESPACE/NAME)"};
    if (!o.since.empty()) {
        const auto d = parse_duration(o.since);
        if (!d) return Error{fmt::format("--since {:?}: expected a duration such as 90s, 15m, 24h or 7d", o.since)};
        f.since = std::chrono::system_clock::now() - *d;
    }
    return f;
}

std::string flows_query(const FlowsOptions& o) {
    std::vector<std::string> q;
    for (const auto& ns : o.namespaces) q.push_back("namespace=" + k8s::url_escape(ns));
    if (!o.pod.empty()) q.push_back("pod=" + k8s::url_escape(o.pod));
    if (!o.since.empty()) q.push_back("since=" + k8s::url_escape(o.since));
    return q.empty() ? "" : "?" + fmt::format("{}", fmt::join(q, "&"));
}

int run_local(const FlowsOptions& o, const ConnectionFilter& filter, std::ostream& out, std::ostream& err) {
    live::SignalWatch signals;  // before any thread
    std::shared_ptr<const ClusterState> state;
    if (!o.no_kubernetes) {
        auto loaded = live::load_cluster_state(o.state_files, o.kubeconfig, o.context, err);
        if (!loaded) {
            err << "netpol-trace: " << loaded.error().message
                << " (pass --state FILE, or --no-kubernetes to record addresses only)\n";
            return 2;
        }
        state = *loaded;
    } else if (!o.namespaces.empty() || !o.pod.empty()) {
        err << "netpol-trace: --namespace and --pod need the cluster state (--state FILE or the Kubernetes API)\n";
        return 2;
    }
    live::RecorderOptions ropts;
    ropts.node = o.node.empty() ? live::default_node_name() : o.node;
    ropts.limits.max_entries = o.max_connections;
    auto recorder = live::ConnectionRecorder::open(ropts);
    if (!recorder) {
        err << "netpol-trace: " << recorder.error().message << '\n';
        return 1;
    }
    auto& r = **recorder;
    r.set_state(state);
    const auto st = r.stats();
    if (!st.conntrack_not_visible.empty()) err << "netpol-trace: " << st.conntrack_not_visible << '\n';
    if (o.debug) err << fmt::format("netpol-trace: recording TCP through {}\n", st.tcp_attach_mode);
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << '\n';
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                            std::chrono::duration<double>(o.duration));
    auto last_poll = std::chrono::steady_clock::now();
    while (!signals.received() && std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        r.drain_conntrack();
        if (std::chrono::steady_clock::now() - last_poll >= std::chrono::seconds(1)) {
            r.poll();
            last_poll = std::chrono::steady_clock::now();
        }
    }
    r.poll();
    auto conns = r.select(filter);
    sort_connections(conns);
    print(conns, o.output, out);
    if (o.debug) {
        const auto s = r.stats();
        err << fmt::format(
            "netpol-trace: {} connections ({} TCP counted, {} conntrack entries); kernel map: {} "
            "tracked, {} evicted; table: {} evicted, {} expired; conntrack: {} events, {} overruns\n",
            s.table_size, s.tcp_connections, s.conntrack_connections, s.kernel.tracked, s.kernel.evicted, s.evicted,
            s.expired, s.conntrack.events, s.conntrack.overruns);
    }
    return 0;
}

int run_remote(const FlowsOptions& o, std::ostream& out, std::ostream& err) {
    auto client = live::connect_api(o.kubeconfig, o.context);
    if (!client) {
        err << "netpol-trace: " << client.error().message << " (or record on this machine with --local)\n";
        return 2;
    }
    const AgentLocator where{o.agent_namespace, o.agent_selector, o.agent_port};
    auto all = fetch_agent_connections(**client, where, flows_query(o), err);
    if (!all) {
        // The query was checked here already: what is left is the cluster's side (no agents, none answered).
        err << "netpol-trace: " << all.error().message << " (or record on this machine with --local)\n";
        return 1;
    }
    sort_connections(*all);
    print(*all, o.output, out);
    return 0;
}

}  // namespace

int run_flows(const FlowsOptions& o, std::ostream& out, std::ostream& err) {
    auto filter = filter_of(o);
    if (!filter) {
        err << "netpol-trace: " << filter.error().message << '\n';
        return 2;
    }
    if (!o.local && (!o.state_files.empty() || o.no_kubernetes)) {
        err << "netpol-trace: --state and --no-kubernetes are for --local (the agents resolve with their own state)\n";
        return 2;
    }
    return o.local ? run_local(o, *filter, out, err) : run_remote(o, out, err);
}

}  // namespace npt::cli

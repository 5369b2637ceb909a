#include "cli/explain_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "output/json_output.hpp"
#include "output/text_output.hpp"
#include "policy/explainer.hpp"
#include "policy/fix.hpp"
#include "live/cluster_source.hpp"
#include "cli/probe_line.hpp"
#include "common/ip_addr.hpp"

namespace npt::cli {

void register_explain(CLI::App& app, ExplainOptions& o) {
    auto* cmd = app.add_subcommand("explain",
                                   "Explain why a connection is allowed or denied by NetworkPolicies, offline.\n"
                                   "Exit status: 0 allowed, 1 denied (or partial), 2 usage or input error.");
    cmd->add_option("--from", o.from, "Source: NAMESPACE/POD (POD with -n) or an IP address");
    cmd->add_option("--to", o.to, "Destination: NAMESPACE/POD (POD with -n), a pod IP, a Service ClusterIP or any IP");
    cmd->add_option("-n,--namespace", o.ns, "The namespace of a pod named without one in --from, --to or a probe")
        ->type_name("NS");
    cmd->add_option("--port", o.port, "Destination port (a Service port for a ClusterIP); PORT or PORT/PROTOCOL");
    cmd->add_option("--protocol", o.protocol, "TCP, UDP or SCTP (default TCP)");
    cmd->add_option("--family", o.family, "Address family for dual-stack pods given by name: 4 or 6 (default 4)")
        ->check(CLI::IsMember({4, 6}));
    cmd->add_option("--state", o.state_files,
                    "Cluster state: kubectl get namespaces,pods,networkpolicies,services,endpointslices -A -o json "
                    "(or -o yaml, or manifests); repeatable; - reads stdin")
        ->type_name("FILE");
    cmd->add_option("--kubeconfig", o.kubeconfig,
                    "Kubeconfig for reading the state from the cluster when no --state is given (default: "
                    "$KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
        ->type_name("PATH");
    cmd->add_option("--context", o.context, "Kubeconfig context to use (default: its current-context)");
    cmd->add_option("-o,--output", o.output,
                    "Output format: text, json, or yaml (with --fix: the best fix of each denying side as YAML "
                    "documents for kubectl apply -f -)")
        ->check(CLI::IsMember({"text", "json", "yaml"}));
    cmd->add_flag("--fix", o.fix,
                  "Propose fixes for every non-allowed verdict: an edit of the closest rule, a new NetworkPolicy, a "
                  "relabel, allow-dns, each verified on the state with the fix applied, with the connections between "
                  "pods it newly allows or denies, best first");
    cmd->add_option("--probes", o.probes,
                    "Batch mode: read JSON lines {\"from\",\"to\",\"port\",\"protocol\"} from FILE (- = stdin) and "
                    "write one result line per input line")
        ->type_name("FILE");
    cmd->footer(
        "Examples:\n"
        "  netpol-trace explain --state cluster.json --from prod/frontend --to prod/db --port 5432\n"
        "  netpol-trace explain --state cluster.json --from ops/operator --to 10.43.0.1 --port 443 -o json\n"
        "  netpol-trace explain --state cluster.json --from prod/frontend --to prod/db --port 5432 --fix -o yaml |\n"
        "    kubectl apply --dry-run=server -f -\n"
        "  kubectl get ns,pods,netpol,svc,endpointslices -A -o json > cluster.json\n");
}

namespace {

int verdict_status(const Explanation& e) {
    return e.allowed() ? 0 : 1;
}

void render(const ClusterState& state, Explanation& e, const ExplainOptions& o, std::ostream& out) {
    if (o.fix) add_fixes(state, e);
    if (o.output == "json")
        write_json_line(out, explanation_json(e));
    else if (o.output == "yaml")
        write_fixes_yaml(out, e);
    else
        write_explanation_text(out, e);
}

int run_probes(const ClusterState& state, const ExplainOptions& o, std::ostream& out, std::ostream& err) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (o.probes != "-") {
        file.open(o.probes);
        if (!file) {
            err << fmt::format("netpol-trace: {}: cannot read: {}\n", o.probes, std::strerror(errno));
            return 2;
        }
        in = &file;
    }
    const ProbeDefaults defaults{o.ns, o.protocol, o.family};
    bool any_error = false, any_denied = false;
    // Results are appended to one buffer, written out in pieces of 64 KiB and whenever the input has nothing
    // more buffered, before a read that may block: a file's batch is written in large pieces with bounded
    // memory, and a client that writes a probe and waits for its answer on a pipe still gets it at once.
    constexpr size_t kResultsBuffer = 64 * 1024;
    std::string results;
    results.reserve(2 * kResultsBuffer);
    auto write_results = [&] {
        out.write(results.data(), static_cast<std::streamsize>(results.size()));
        results.clear();
    };
    std::string line;
    size_t lineno = 0;
    while (std::getline(*in, line)) {
        ++lineno;
        auto fail = [&](const Json& from, const std::string& msg) {
            any_error = true;
            Json j;
            j["from"] = from;
            j["error"] = fmt::format("line {}: {}", lineno, msg);
            results += j.dump(-1, ' ', false, Json::error_handler_t::replace);
            results += '\n';
        };
        [&] {
            if (line.find_first_not_of(" \t\r") == std::string::npos) return;
            auto probe = parse_probe_line(line, defaults);
            if (!probe.query) return fail(probe.from, probe.error);
            auto e = explain_query(state, std::move(*probe.query));
            if (!e) return fail(probe.from, e.error().message);
            any_denied = any_denied || !e->allowed();
            if (o.fix) add_fixes(state, *e);
            if (o.output == "json") {
                append_explanation_json_line(results, *e);
                return;
            }
            write_results();
            if (o.output == "yaml") {
                write_fixes_yaml(out, *e);
            } else {
                write_explanation_text(out, *e);
                out << '\n';
            }
        }();
        if (in->rdbuf()->in_avail() <= 0) {
            write_results();
            out.flush();
        } else if (results.size() >= kResultsBuffer) {
            write_results();
        }
    }
    write_results();
    out.flush();
    if (any_error) return 2;
    return any_denied ? 1 : 0;
}

}  // namespace

int run_explain(const ExplainOptions& o, std::ostream& out, std::ostream& err) {
    const bool batch = !o.probes.empty();
    if (o.output == "yaml" && !o.fix) {
        err << "netpol-trace: -o yaml prints fixes as manifests: add --fix\n";
        return 2;
    }
    if (!batch && (o.from.empty() || o.to.empty() || o.port.empty())) {
        err << "netpol-trace: explain needs --from, --to and --port (or --probes FILE for a batch)\n";
        return 2;
    }
    auto state = live::load_cluster_state(o.state_files, o.kubeconfig, o.context, err);
    if (!state) {
        err << "netpol-trace: " << state.error().message << '\n';
        return 2;
    }
    if (batch) return run_probes(**state, o, out, err);

    auto port = parse_port(o.port, o.protocol);
    if (!port) {
        err << "netpol-trace: --port: " << port.error().message << '\n';
        return 2;
    }
    ExplainQuery q{qualified(o.from, o.ns), qualified(o.to, o.ns), port->port, port->protocol, std::nullopt};
    if (o.family) q.family = *o.family == 6 ? IpFamily::V6 : IpFamily::V4;
    auto e = explain_query(**state, q);
    if (!e) {
        err << "netpol-trace: " << e.error().message << '\n';
        return 2;
    }
    render(**state, *e, o, out);
    return verdict_status(*e);
}

}  // namespace npt::cli

// netpol-trace: which NetworkPolicy dropped this packet, and why the policy that looks right does
// not allow it.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "cli/explain_command.hpp"
#include "cli/invocation.hpp"
#include "cli/whatif_command.hpp"
#ifdef NPT_HAVE_CAPTURE
#include "agent/agent_command.hpp"
#include "cli/flows_command.hpp"
#include "cli/tail_command.hpp"
#endif

int main(int argc, char** argv) {
    const auto how = npt::cli::invocation_from(argc > 0 ? argv[0] : "");
    const std::string name = npt::cli::command_name(how);
    CLI::App app{
        "netpol-trace: for every packet a Kubernetes node drops, which NetworkPolicy did it and why the policy\n"
        "that looks right does not allow it.\n\n"
        "Without a subcommand it tails the drops of this node (root, or CAP_BPF+CAP_PERFMON), with the cluster\n"
        "state from the kubeconfig (or the in-cluster service account), or offline from --state files. When the\n"
        "cluster runs netpol-trace agents (deploy/), it tails every node through them, without privileges:\n"
        "  netpol-trace -n shop\n"
        "  netpol-trace --state cluster.json -n shop -o json --duration 60\n"
        "Exit status: 0 after a clean stop, 1 when the kernel capture cannot run, 2 usage or input error.",
        name};
    app.set_version_flag("--version", std::string("netpol-trace ") + NPT_VERSION);
    app.require_subcommand(0, 1);
    app.footer(
        "Run 'netpol-trace explain --help' for the offline explanation of one connection,\n"
        "'netpol-trace flows --help' for the connections that work today,\n"
        "'netpol-trace whatif --help' to check a policy change against them,\n"
        "'netpol-trace advise --help' for least-privilege policies from them, and\n"
        "'netpol-trace agent --help' for the node agent a DaemonSet runs.");
#ifdef NPT_HAVE_CAPTURE
    npt::cli::TailOptions tail;
    npt::cli::register_tail(app, tail);
    npt::agent::AgentOptions agent;
    npt::agent::register_agent(app, agent);
    npt::cli::FlowsOptions flows;
    npt::cli::register_flows(app, flows);
#endif
    npt::cli::ExplainOptions explain;
    npt::cli::register_explain(app, explain);
    npt::cli::WhatIfOptions whatif;
    npt::cli::register_whatif(app, whatif);
    npt::cli::AdviseOptions advise;
    npt::cli::register_advise(app, advise);
    std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
    if (how == npt::cli::Invocation::KubectlComplete || (!args.empty() && args.front() == "__complete")) {
        if (how != npt::cli::Invocation::KubectlComplete) args.erase(args.begin());
        npt::cli::write_completions(app, args, std::cout);
        return 0;
    }
    args = npt::cli::hoist_kubectl_flags(app, std::move(args));
    std::reverse(args.begin(), args.end());  // CLI11 takes a vector of arguments last first
    try {
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << name << ": " << e.what() << "\nRun '" << name << " --help' for usage.\n";
        return 2;
    }
    if (app.got_subcommand("explain")) return npt::cli::run_explain(explain, std::cout, std::cerr);
    if (app.got_subcommand("whatif")) return npt::cli::run_whatif(whatif, std::cout, std::cerr);
    if (app.got_subcommand("advise")) return npt::cli::run_advise(advise, std::cout, std::cerr);
#ifdef NPT_HAVE_CAPTURE
    if (app.got_subcommand("agent")) return npt::agent::run_agent(agent, std::cerr);
    if (app.got_subcommand("flows")) return npt::cli::run_flows(flows, std::cout, std::cerr);
    return npt::cli::run_tail(tail, std::cout, std::cerr);
#else
    std::cerr << "netpol-trace: this build has no kernel capture (built with NPT_BUILD_BPF=OFF); only 'explain', "
                 "'whatif' and 'advise' work\n";
    return 1;
#endif
}

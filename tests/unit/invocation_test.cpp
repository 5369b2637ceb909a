// The kubectl plugin's conventions (cli/invocation.hpp): its names, kubectl's flags before the subcommand, and
// shell completion in the protocol kubectl's plugin completion speaks.
#include "cli/invocation.hpp"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace npt::cli {
namespace {

using Words = std::vector<std::string>;

// An app shaped like netpol-trace's: options of the live tail on the root, explain and advise below it.
struct TestApp {
    CLI::App app{"test", "netpol-trace"};
    std::vector<std::string> namespaces, state;
    std::string kubeconfig, context, output = "text", ns, from, root_output;
    TestApp() {
        app.add_option("-n,--namespace", namespaces)->type_name("NS");
        app.add_option("--kubeconfig", kubeconfig)->type_name("PATH");
        app.add_option("--context", context);
        app.add_option("-o,--output", root_output)->check(CLI::IsMember({"table", "json"}));
        app.add_flag("--local");
        auto* explain = app.add_subcommand("explain", "Explain one connection.\nMore.");
        explain->add_option("-n,--namespace", ns);
        explain->add_option("--from", from);
        explain->add_option("--state", state)->type_name("FILE");
        explain->add_option("--kubeconfig", kubeconfig)->type_name("PATH");
        explain->add_option("--context", context);
        explain->add_option("-o,--output", output)->check(CLI::IsMember({"text", "json", "yaml"}));
        app.add_subcommand("advise", "Least-privilege policies.");
    }
    std::string complete(const Words& words) {
        std::ostringstream out;
        write_completions(app, words, out);
        return out.str();
    }
};

TEST(Invocation, NamesFromArgv0) {
    EXPECT_EQ(invocation_from("netpol-trace"), Invocation::Tool);
    EXPECT_EQ(invocation_from("/usr/bin/netpol-trace"), Invocation::Tool);
    EXPECT_EQ(invocation_from("/root/.krew/bin/kubectl-netpol_trace"), Invocation::KubectlPlugin);
    EXPECT_EQ(invocation_from("kubectl_complete-netpol_trace"), Invocation::KubectlComplete);
    EXPECT_EQ(invocation_from("/tmp/kubectl-netpol_trace.old"), Invocation::Tool);
    EXPECT_EQ(command_name(Invocation::KubectlPlugin), "kubectl netpol-trace");
    EXPECT_EQ(command_name(Invocation::Tool), "netpol-trace");
}

TEST(Invocation, HoistsKubectlFlagsAfterTheSubcommand) {
    TestApp t;
    EXPECT_EQ(hoist_kubectl_flags(t.app, {"--context", "prod", "-n", "shop", "explain", "--from", "a"}),
              (Words{"explain", "--context", "prod", "-n", "shop", "--from", "a"}));
    EXPECT_EQ(hoist_kubectl_flags(t.app, {"--kubeconfig=/k", "-nshop", "--namespace=x", "explain"}),
              (Words{"explain", "--kubeconfig=/k", "-nshop", "--namespace=x"}));
    // Other root options stay before it, a value that names a subcommand is a value.
    EXPECT_EQ(hoist_kubectl_flags(t.app, {"--local", "-o", "json", "--context", "explain", "advise"}),
              (Words{"--local", "-o", "json", "advise", "--context", "explain"}));
    // Without a subcommand (the live tail) nothing moves.
    EXPECT_EQ(hoist_kubectl_flags(t.app, {"-n", "shop", "--context", "prod"}),
              (Words{"-n", "shop", "--context", "prod"}));
}

TEST(Invocation, HoistedFlagsReachTheSubcommand) {
    TestApp t;
    auto args = hoist_kubectl_flags(t.app, {"-n", "shop", "--context", "prod", "explain", "--from", "checkout"});
    std::reverse(args.begin(), args.end());
    t.app.parse(args);
    EXPECT_EQ(t.ns, "shop");
    EXPECT_EQ(t.context, "prod");
    EXPECT_TRUE(t.namespaces.empty());
}

TEST(Invocation, CompletesSubcommandsOptionsAndValues) {
    TestApp t;
    EXPECT_EQ(t.complete({""}), "explain\tExplain one connection.\nadvise\tLeast-privilege policies.\n:4\n");
    EXPECT_EQ(t.complete({"ex"}), "explain\tExplain one connection.\n:4\n");
    EXPECT_EQ(t.complete({"explain", "--st"}), "--state\t\n:4\n");
    EXPECT_EQ(t.complete({"explain", "-o", ""}), "text\njson\nyaml\n:4\n");
    EXPECT_EQ(t.complete({"explain", "--output=j"}), "--output=json\n:4\n");
    EXPECT_EQ(t.complete({"-o", "t"}), "table\n:4\n");
    // File-valued options let the shell complete file names.
    EXPECT_EQ(t.complete({"explain", "--state", ""}), ":0\n");
    // kubectl's flags before the subcommand do not hide it.
    EXPECT_EQ(t.complete({"-n", "shop", "explain", "--fr"}), "--from\t\n:4\n");
    EXPECT_EQ(t.complete({"--context", "explain", "--fr"}), ":4\n");  // "explain" was the context's value
}

TEST(Invocation, CompletesContextsOfTheKubeconfig) {
    const std::string path = ::testing::TempDir() + "/invocation_test.kubeconfig";
    {
        std::ofstream f(path);
        f << "apiVersion: v1\nkind: Config\ncurrent-context: prod\ncontexts:\n"
             "- name: prod\n  context: {cluster: c, user: u}\n- name: staging\n  context: {cluster: c, user: u}\n";
    }
    TestApp t;
    EXPECT_EQ(t.complete({"--kubeconfig", path, "explain", "--context", ""}), "prod\nstaging\n:4\n");
    EXPECT_EQ(t.complete({"explain", "--kubeconfig=" + path, "--context", "st"}), "staging\n:4\n");
    std::remove(path.c_str());
}

}  // namespace
}  // namespace npt::cli

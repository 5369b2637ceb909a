// `netpol-trace explain` with only a kubeconfig: the state comes from the (fake) API server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli/explain_command.hpp"
#include "cli/whatif_command.hpp"

#include <httplib.h>
#include <thread>
#include "fake_apiserver.hpp"
#include "k8s_test_objects.hpp"

using npt::testing::FakeApiServer;
using npt::testing::TempDir;

namespace {

std::string kubeconfig(const FakeApiServer& srv, const std::string& token) {
    return "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
           "clusters:\n- name: lab\n  cluster:\n    server: " +
           srv.server() + "\n    certificate-authority: " + srv.ca_file() +
           "\nusers:\n- name: sre\n  user:\n    token: " + token +
           "\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: sre\n";
}

void apply_cluster(FakeApiServer& srv) {
    using namespace npt::testing;
    srv.apply(items(
        {namespace_json("shop"), namespace_json("other"), pod_json("shop", "web-1", "10.0.0.1", R"({"app":"web"})"),
         pod_json("shop", "db-1", "10.0.0.2", R"({"app":"db"})"),
         pod_json("other", "x", "10.0.1.1", R"({"app":"web"})"), policy_json("shop", "db-ingress", "db", "web", 5432),
         service_json("shop", "db", "10.96.0.10", "db", 5432),
         endpoint_slice_json("shop", "db", "10.0.0.2", "db-1", 5432)}));
}

struct Run {
    int status;
    std::string out, err;
};

Run explain(const std::string& config, const std::string& from, const std::string& to) {
    npt::cli::ExplainOptions o;
    o.kubeconfig = config;
    o.from = from;
    o.to = to;
    o.port = "5432";
    o.output = "json";
    std::ostringstream out, err;
    const int status = npt::cli::run_explain(o, out, err);
    return {status, out.str(), err.str()};
}

}  // namespace

TEST(K8sCli, ExplainWithOnlyAKubeconfig) {
    FakeApiServer srv;
    apply_cluster(srv);
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "test-token"));

    auto allowed = explain(config, "shop/web-1", "shop/db-1");
    EXPECT_EQ(allowed.status, 0) << allowed.err;
    EXPECT_EQ(nlohmann::json::parse(allowed.out)["ingress"]["allowed_by"], nlohmann::json({"shop/db-ingress"}));

    auto denied = explain(config, "other/x", "shop/db-1");
    EXPECT_EQ(denied.status, 1) << denied.err;
    auto j = nlohmann::json::parse(denied.out);
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_EQ(j["ingress"]["policies"], nlohmann::json({"shop/db-ingress"}));

    auto via_service = explain(config, "shop/web-1", "10.96.0.10");
    EXPECT_EQ(via_service.status, 0) << via_service.err;
    EXPECT_EQ(nlohmann::json::parse(via_service.out)["service"]["name"], "shop/db");
}

TEST(K8sCli, RejectedTokenIsOneLineNamingContextAndServer) {
    FakeApiServer srv;
    apply_cluster(srv);
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "wrong-token"));
    auto r = explain(config, "shop/web-1", "shop/db-1");
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(r.out.empty());
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("\"lab\""), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(srv.server()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
}

// `explain --fix -o yaml` writes documents kubectl takes: every runbook denial's best fixes, through `kubectl apply
// --dry-run=client` against the fake API server (its discovery maps the kinds; the schema checks are the state
// loader's, which validates NetworkPolicies as the API server does, in fix_test).
TEST(K8sCli, FixManifestsAreWhatKubectlApplies) {
    const char* ci = std::getenv("CI");
    if (std::system("kubectl version --client >/dev/null 2>&1") != 0) {
        if (ci && std::string(ci) == "true") FAIL() << "kubectl is not installed (CI=true: not skipping)";
        GTEST_SKIP() << "kubectl is not installed";
    }
    FakeApiServer srv;
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "test-token"));
    const std::string cluster = std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml";
    const std::vector<std::vector<std::string>> denials = {
        {"shop/frontend-7d9f8b6c5-q2w8x", "10.43.0.10", "53/UDP"},
        {"shop/frontend-7d9f8b6c5-q2w8x", "payments/api-5b7c9d8f4-m3n4p", "8443"},
        {"monitoring/prometheus-0", "payments/api-5b7c9d8f4-m3n4p", "9090"},
        {"shop/checkout-6f8d7c9b5-k8j7h", "databases/postgres-0", "5432"},
        {"operators/pg-operator-7c8b9d6f5-t5r4e", "10.43.0.1", "443"},
    };
    int documents = 0;
    for (const auto& d : denials) {
        npt::cli::ExplainOptions o;
        o.state_files = {cluster};
        o.from = d[0];
        o.to = d[1];
        o.port = d[2];
        o.fix = true;
        o.output = "yaml";
        std::ostringstream out, err;
        ASSERT_EQ(npt::cli::run_explain(o, out, err), 1) << err.str();
        const std::string yaml = out.str();
        documents += yaml.find("---") != std::string::npos;
        const auto file = dir.write("fix.yaml", yaml);
        const auto log = dir.path() + "/kubectl.log";
        const std::string cmd = "kubectl --kubeconfig " + config + " apply --dry-run=client --validate=false -f " +
                                file + " >" + log + " 2>&1";
        const int rc = std::system(cmd.c_str());
        std::ifstream in(log);
        std::stringstream text;
        text << in.rdbuf();
        EXPECT_EQ(rc, 0) << d[0] << " -> " << d[1] << ":\n" << yaml << "\nkubectl said: " << text.str();
        if (yaml.find("---") != std::string::npos) {
            EXPECT_NE(text.str().find("(dry run)"), std::string::npos) << text.str();
        }
    }
    EXPECT_EQ(documents, static_cast<int>(denials.size())) << "every denial has a manifest to apply";
}

// whatif and advise with only a kubeconfig: the state from the API server, the change and the connections from files.
TEST(K8sCli, WhatIfAndAdviseWithOnlyAKubeconfig) {
    FakeApiServer srv;
    apply_cluster(srv);
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "test-token"));
    const auto flows =
        dir.write("flows.jsonl", R"({"src":{"ip":"10.0.0.1"},"dst":{"ip":"10.96.0.10","port":5432},"side":"client"})"
                                 "\n"
                                 R"({"src":{"ip":"10.0.1.1"},"dst":{"ip":"10.0.0.1","port":8080},"side":"client"})"
                                 "\n");
    const auto deny = dir.write("deny.yaml",
                                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                "metadata: {name: default-deny, namespace: shop}\n"
                                "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n");
    npt::cli::WhatIfOptions w;
    w.kubeconfig = config;
    w.apply = {deny};
    w.flows = flows;
    w.output = "json";
    std::ostringstream out, err;
    EXPECT_EQ(npt::cli::run_whatif(w, out, err), 1) << err.str();
    auto j = nlohmann::json::parse(out.str());
    EXPECT_EQ(j["observed"], 2);
    ASSERT_EQ(j["breaks"].size(), 2u);
    EXPECT_EQ(j["breaks"][0]["after"]["service"]["name"], "shop/db");

    npt::cli::AdviseOptions a;
    a.kubeconfig = config;
    a.ns = "shop";
    a.flows = flows;
    a.output = "json";
    std::ostringstream aout, aerr;
    EXPECT_EQ(npt::cli::run_advise(a, aout, aerr), 0) << aerr.str();
    auto advice = nlohmann::json::parse(aout.str());
    EXPECT_EQ(advice["verified"]["breaks"], 0);
    EXPECT_EQ(advice["verified"]["observed"], 2);
    EXPECT_GE(advice["policies"].size(), 3u);  // web's egress and ingress, db's ingress, the default deny
}

// Without --flows and with the state from the cluster, whatif and advise ask every agent's /flows through the API
// server's pod proxy (an agent stand-in answers here), with the namespaces and --since as its query.
TEST(K8sCli, WhatIfAndAdviseAskTheAgentsForTheConnections) {
    FakeApiServer srv;
    apply_cluster(srv);
    srv.apply(
        R"({"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"agent-a",)"
        R"("namespace":"netpol-trace","labels":{"app.kubernetes.io/name":"netpol-trace",)"
        R"("app.kubernetes.io/component":"agent"}},"spec":{"nodeName":"node-1"},"status":{"phase":"Running"}}]})");
    httplib::Server agent;
    std::vector<std::string> queries;
    std::mutex mu;
    agent.Get("/flows", [&](const httplib::Request& req, httplib::Response& res) {
        {
            std::lock_guard lock(mu);
            std::string q;
            for (const auto& [k, v] : req.params) q += (q.empty() ? "" : "&") + k + "=" + v;
            queries.push_back(q);
        }
        res.set_content(R"({"src":{"ip":"10.0.0.1","pod":"shop/web-1"},"dst":{"ip":"10.96.0.10","port":5432,)"
                        R"("service":"shop/db"},"protocol":"TCP","side":"client","count":4,"node":"node-1"})"
                        "\n",
                        "application/x-ndjson");
    });
    const int port = agent.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    std::thread serving([&] { agent.listen_after_bind(); });
    srv.control("config", R"({"proxy_target":"127.0.0.1:)" + std::to_string(port) + R"("})");
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "test-token"));
    const auto deny = dir.write("deny.yaml",
                                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                "metadata: {name: default-deny, namespace: shop}\n"
                                "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n");
    npt::cli::WhatIfOptions w;
    w.kubeconfig = config;
    w.apply = {deny};
    w.namespaces = {"shop"};
    w.since = "24h";
    w.output = "json";
    std::ostringstream out, err;
    EXPECT_EQ(npt::cli::run_whatif(w, out, err), 1) << err.str();
    auto j = nlohmann::json::parse(out.str());
    EXPECT_EQ(j["observed"], 1);
    ASSERT_EQ(j["breaks"].size(), 1u);
    EXPECT_EQ(j["breaks"][0]["flow"]["count"], 4);

    npt::cli::AdviseOptions a;
    a.kubeconfig = config;
    a.ns = "shop";
    a.output = "json";
    std::ostringstream aout, aerr;
    EXPECT_EQ(npt::cli::run_advise(a, aout, aerr), 0) << aerr.str();
    EXPECT_EQ(nlohmann::json::parse(aout.str())["verified"]["observed"], 1);
    agent.stop();
    serving.join();
    std::lock_guard lock(mu);
    EXPECT_EQ(queries, (std::vector<std::string>{"namespace=shop&since=24h", "namespace=shop"}));
}

// No agents in the cluster: one line saying so and how to give the connections instead.
TEST(K8sCli, WhatIfWithoutAgentsSaysHowToGiveTheConnections) {
    FakeApiServer srv;
    apply_cluster(srv);
    TempDir dir;
    const auto config = dir.write("config", kubeconfig(srv, "test-token"));
    npt::cli::WhatIfOptions w;
    w.kubeconfig = config;
    w.remove = {"NetworkPolicy/shop/db-ingress"};
    std::ostringstream out, err;
    EXPECT_EQ(npt::cli::run_whatif(w, out, err), 2);
    const std::string e = err.str();
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
    EXPECT_NE(e.find("no netpol-trace agents run in namespace netpol-trace"), std::string::npos) << e;
    EXPECT_NE(e.find("--flows FILE"), std::string::npos) << e;
}

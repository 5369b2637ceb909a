// `netpol-trace explain` end to end on the bundled runbook example: verdicts, exit statuses, the
// JSON contract and hint codes that scripts rely on.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/explain_command.hpp"

using nlohmann::json;
using npt::cli::ExplainOptions;
using npt::cli::run_explain;

namespace {

const std::string kCluster = std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml";

struct Run {
    int status;
    std::string out;
    std::string err;
};

Run explain(ExplainOptions o) {
    if (o.state_files.empty()) o.state_files = {kCluster};
    std::ostringstream out, err;
    const int status = run_explain(o, out, err);
    return {status, out.str(), err.str()};
}

json explain_json(const std::string& from, const std::string& to, const std::string& port) {
    ExplainOptions o;
    o.from = from;
    o.to = to;
    o.port = port;
    o.output = "json";
    auto r = explain(o);
    EXPECT_TRUE(r.err.empty()) << r.err;
    return json::parse(r.out);
}

std::vector<std::string> hint_codes(const json& j) {
    std::vector<std::string> codes;
    for (const auto& h : j["hints"]) codes.push_back(h["code"]);
    return codes;
}

bool has_hint(const json& j, const std::string& code, const std::string& direction, const json& policy) {
    for (const auto& h : j["hints"])
        if (h["code"] == code && h["direction"] == direction && h["policy"] == policy) return true;
    return false;
}

std::string temp_file(const std::string& content) {
    auto path = std::filesystem::temp_directory_path() /
                ("npt-cli-" + std::to_string(::getpid()) + "-" + std::to_string(std::rand()) + ".txt");
    std::ofstream(path) << content;
    return path;
}

}  // namespace

TEST(ExplainCli, DnsEgressBlockedByDefaultDeny) {
    auto j = explain_json("shop/frontend-7d9f8b6c5-q2w8x", "kube-system/coredns-6799fbcd5-x7k2p", "53/UDP");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_EQ(j["protocol"], "UDP");
    EXPECT_EQ(j["port"], 53);
    EXPECT_EQ(j["src"]["pod"], "shop/frontend-7d9f8b6c5-q2w8x");
    EXPECT_EQ(j["src"]["ip"], "10.42.0.21");
    EXPECT_EQ(j["dst"]["pod"], "kube-system/coredns-6799fbcd5-x7k2p");
    EXPECT_EQ(j["dst"]["port"], 53);
    EXPECT_TRUE(j["egress"]["isolated"]);
    EXPECT_FALSE(j["egress"]["allowed"]);
    EXPECT_EQ(j["egress"]["policies"],
              json({"shop/allow-frontend-to-payments", "shop/allow-internet-egress", "shop/default-deny"}));
    EXPECT_EQ(j["egress"]["allowed_by"], json::array());
    EXPECT_FALSE(j["ingress"]["isolated"]);
    EXPECT_TRUE(j["ingress"]["allowed"]);
    EXPECT_EQ(j["ingress"]["policies"], json::array());
    auto codes = hint_codes(j);
    EXPECT_NE(std::find(codes.begin(), codes.end(), "DNS_EGRESS_BLOCKED"), codes.end());
}

TEST(ExplainCli, DnsThroughTheServiceVip) {
    auto j = explain_json("shop/frontend-7d9f8b6c5-q2w8x", "10.43.0.10", "53/UDP");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_EQ(j["dst"]["service"], "kube-system/kube-dns");
    ASSERT_TRUE(j.contains("service"));
    EXPECT_EQ(j["service"]["name"], "kube-system/kube-dns");
    ASSERT_EQ(j["service"]["endpoints"].size(), 1u);
    EXPECT_EQ(j["service"]["endpoints"][0]["dst"]["pod"], "kube-system/coredns-6799fbcd5-x7k2p");
    EXPECT_EQ(j["service"]["endpoints"][0]["dst"]["port"], 53);
    auto codes = hint_codes(j);
    EXPECT_NE(std::find(codes.begin(), codes.end(), "DNS_EGRESS_BLOCKED"), codes.end());
    EXPECT_NE(std::find(codes.begin(), codes.end(), "SERVICE_VIP_DNAT"), codes.end());
    // Per-endpoint results carry their own hints too.
    auto ep_codes = hint_codes(j["service"]["endpoints"][0]);
    EXPECT_NE(std::find(ep_codes.begin(), ep_codes.end(), "DNS_EGRESS_BLOCKED"), ep_codes.end());
}

TEST(ExplainCli, EgressPortNotAllowed) {
    auto j = explain_json("shop/frontend-7d9f8b6c5-q2w8x", "payments/api-5b7c9d8f4-m3n4p", "8443");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_FALSE(j["egress"]["allowed"]);
    EXPECT_TRUE(has_hint(j, "PORT_NOT_ALLOWED", "egress", "shop/allow-frontend-to-payments")) << j.dump(2);
    // Ingress at payments only admits the checkout pods.
    EXPECT_FALSE(j["ingress"]["allowed"]);
    EXPECT_EQ(j["ingress"]["policies"], json({"payments/allow-checkout"}));
}

TEST(ExplainCli, NamespaceLabelDriftIsALabelMismatch) {
    auto j = explain_json("monitoring/prometheus-0", "payments/api-5b7c9d8f4-m3n4p", "9090");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_TRUE(has_hint(j, "LABEL_MISMATCH", "ingress", "payments/allow-checkout")) << j.dump(2);
    const auto& diag = j["ingress"]["diagnosis"][0];
    EXPECT_EQ(diag["policy"], "payments/allow-checkout");
    EXPECT_EQ(diag["closest_rule"]["rule"], 1);
    EXPECT_TRUE(diag["closest_rule"]["ports_match"]);  // named port "metrics" resolves to 9090
    EXPECT_EQ(diag["closest_rule"]["misses"][0]["kind"], "namespace_labels");
    EXPECT_TRUE(diag["closest_rule"]["misses"][0]["near"]);
}

TEST(ExplainCli, PodLabelDriftIsALabelMismatch) {
    auto j = explain_json("shop/checkout-6f8d7c9b5-k8j7h", "databases/postgres-0", "5432");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_TRUE(has_hint(j, "LABEL_MISMATCH", "ingress", "databases/allow-app-to-postgres")) << j.dump(2);
    const std::string msg = j["ingress"]["diagnosis"][0]["closest_rule"]["misses"][0]["message"];
    EXPECT_NE(msg.find("app.kubernetes.io/name=checkout"), std::string::npos) << msg;
}

TEST(ExplainCli, ApiServerThroughServiceVipIsDeniedOnTheEndpoints) {
    auto j = explain_json("operators/pg-operator-7c8b9d6f5-t5r4e", "10.43.0.1", "443");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_EQ(j["dst"]["ip"], "10.43.0.1");
    EXPECT_EQ(j["dst"]["port"], 443);
    ASSERT_EQ(j["service"]["endpoints"].size(), 3u);
    for (const auto& ep : j["service"]["endpoints"]) {
        EXPECT_EQ(ep["dst"]["port"], 6443);
        EXPECT_EQ(ep["dst"]["pod"], nullptr);
        EXPECT_EQ(ep["verdict"], "denied");
        EXPECT_EQ(ep["egress"]["policies"], json({"operators/allow-k8s-api-egress", "operators/default-deny-egress"}));
        EXPECT_TRUE(has_hint(ep, "SERVICE_VIP_DNAT", "egress", "operators/allow-k8s-api-egress")) << ep.dump(2);
    }
    EXPECT_TRUE(has_hint(j, "SERVICE_VIP_DNAT", "egress", "operators/allow-k8s-api-egress")) << j.dump(2);
}

TEST(ExplainCli, ExceptRangeExcludesPrivateAddresses) {
    auto j = explain_json("shop/frontend-7d9f8b6c5-q2w8x", "10.0.40.50", "443");
    EXPECT_EQ(j["verdict"], "denied");
    EXPECT_TRUE(has_hint(j, "IPBLOCK_EXCEPT", "egress", "shop/allow-internet-egress")) << j.dump(2);
    EXPECT_EQ(j["dst"]["pod"], nullptr);
    EXPECT_FALSE(j["ingress"]["isolated"]);
}

TEST(ExplainCli, ExternalAccessAllowedExitsZero) {
    ExplainOptions o;
    o.from = "shop/frontend-7d9f8b6c5-q2w8x";
    o.to = "93.184.216.34";
    o.port = "443";
    o.output = "json";
    auto r = explain(o);
    EXPECT_EQ(r.status, 0) << r.err;
    auto j = json::parse(r.out);
    EXPECT_EQ(j["verdict"], "allowed");
    EXPECT_EQ(j["egress"]["allowed_by"], json({"shop/allow-internet-egress"}));
    EXPECT_EQ(j["hints"], json::array());
}

TEST(ExplainCli, DeniedExitsOneAndTextNamesPoliciesAndReasons) {
    ExplainOptions o;
    o.from = "shop/checkout-6f8d7c9b5-k8j7h";
    o.to = "databases/postgres-0";
    o.port = "5432";
    auto r = explain(o);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("DENIED"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("databases/allow-app-to-postgres"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("LABEL_MISMATCH"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("app.kubernetes.io/name=checkout"), std::string::npos) << r.out;
}

TEST(ExplainCli, UsageAndInputErrorsExitTwoWithOneLine) {
    struct Case {
        ExplainOptions opts;
        std::string expect;
    };
    std::vector<Case> cases;
    ExplainOptions base;
    base.from = "shop/frontend-7d9f8b6c5-q2w8x";
    base.to = "databases/postgres-0";
    base.port = "5432";
    {
        auto o = base;
        o.port = "70000";
        cases.push_back({o, "invalid port"});
    }
    {
        auto o = base;
        o.port = "53/ICMP";
        cases.push_back({o, "invalid protocol"});
    }
    {
        auto o = base;
        o.from = "shop/nope";
        cases.push_back({o, "no pod \"nope\" in namespace shop"});
    }
    {
        auto o = base;
        o.to = "nowhere/db";
        cases.push_back({o, "namespace \"nowhere\" is not in the cluster state"});
    }
    {
        auto o = base;
        o.to = "not an address";
        cases.push_back({o, "expected NAMESPACE/POD or an IP address"});
    }
    {
        auto o = base;
        o.state_files = {"/nonexistent/cluster.json"};
        cases.push_back({o, "/nonexistent/cluster.json: cannot read"});
    }
    {
        auto o = base;
        o.state_files = {temp_file("{\"kind\": \"List\", \"items\": [")};
        cases.push_back({o, "invalid JSON"});
    }
    for (const auto& c : cases) {
        auto r = explain(c.opts);
        EXPECT_EQ(r.status, 2) << c.expect;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << "want '" << c.expect << "' in: " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_TRUE(r.out.empty());
    }
}

TEST(ExplainCli, ProbesBatchKeepsOrderAndReportsBadLines) {
    const auto probes = temp_file(
        "{\"from\": \"shop/frontend-7d9f8b6c5-q2w8x\", \"to\": \"93.184.216.34\", \"port\": 443, \"protocol\": "
        "\"TCP\"}\n"
        "not json\n"
        "{\"from\": \"shop/checkout-6f8d7c9b5-k8j7h\", \"to\": \"databases/postgres-0\", \"port\": 5432}\n"
        "{\"from\": \"shop/ghost\", \"to\": \"databases/postgres-0\", \"port\": 5432}\n"
        "{\"from\": \"shop/frontend-7d9f8b6c5-q2w8x\", \"to\": \"10.43.0.10\", \"port\": \"53/UDP\"}\n");
    ExplainOptions o;
    o.probes = probes;
    o.output = "json";
    auto r = explain(o);
    EXPECT_EQ(r.status, 2);  // a bad line makes the batch fail, after all lines were processed
    std::istringstream lines(r.out);
    std::vector<json> results;
    for (std::string line; std::getline(lines, line);) results.push_back(json::parse(line));
    ASSERT_EQ(results.size(), 5u);
    EXPECT_EQ(results[0]["verdict"], "allowed");
    EXPECT_TRUE(results[1].contains("error"));
    EXPECT_EQ(results[1]["from"], nullptr);
    EXPECT_EQ(results[2]["verdict"], "denied");
    EXPECT_EQ(results[3]["from"], "shop/ghost");
    EXPECT_NE(results[3]["error"].get<std::string>().find("ghost"), std::string::npos);
    EXPECT_EQ(results[4]["protocol"], "UDP");
    EXPECT_EQ(results[4]["service"]["name"], "kube-system/kube-dns");
    std::filesystem::remove(probes);
}

TEST(ExplainCli, ProbesAllAllowedExitZeroAnyDeniedExitOne) {
    const auto ok =
        temp_file("{\"from\": \"shop/frontend-7d9f8b6c5-q2w8x\", \"to\": \"93.184.216.34\", \"port\": 80}\n");
    ExplainOptions o;
    o.probes = ok;
    o.output = "json";
    EXPECT_EQ(explain(o).status, 0);
    const auto mixed = temp_file(
        "{\"from\": \"shop/frontend-7d9f8b6c5-q2w8x\", \"to\": \"93.184.216.34\", \"port\": 80}\n"
        "{\"from\": \"shop/frontend-7d9f8b6c5-q2w8x\", \"to\": \"93.184.216.34\", \"port\": 22}\n");
    o.probes = mixed;
    EXPECT_EQ(explain(o).status, 1);
    std::filesystem::remove(ok);
    std::filesystem::remove(mixed);
}

// Dual-stack ipBlock rules: an IPv6 destination is diagnosed against the IPv6 block of the rule, not the first
// (IPv4) one, and the IPv6 text brackets addresses with ports.
TEST(ExplainCli, Ipv6DestinationIsDiagnosedAgainstTheIpv6Block) {
    const std::string cluster = temp_file(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: ops, labels: {kubernetes.io/metadata.name: ops}}
- apiVersion: v1
  kind: Pod
  metadata: {name: operator, namespace: ops, labels: {app: operator}}
  spec: {nodeName: n1, containers: [{name: c}]}
  status: {phase: Running, podIP: 10.0.0.5, podIPs: [{ip: 10.0.0.5}, {ip: "fd00::5"}]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: allow-api, namespace: ops}
  spec:
    podSelector: {}
    policyTypes: [Egress]
    egress:
    - to: [{ipBlock: {cidr: 10.43.0.1/32}}, {ipBlock: {cidr: "fd00:43::1/128"}}]
      ports: [{port: 443, protocol: TCP}]
)");
    ExplainOptions o;
    o.state_files = {cluster};
    o.from = "ops/operator";
    o.to = "fd00:50::11";
    o.port = "443";
    o.output = "json";
    auto r = explain(o);
    std::filesystem::remove(cluster);
    ASSERT_EQ(r.status, 1) << r.err;
    const auto j = json::parse(r.out);
    const auto& closest = j["egress"]["diagnosis"][0]["closest_rule"];
    EXPECT_EQ(closest["peer"], 1) << j.dump(2);
    ASSERT_EQ(closest["misses"].size(), 1u);
    EXPECT_NE(closest["misses"][0]["message"].get<std::string>().find("fd00:43::1/128"), std::string::npos);
}

// `netpol-trace whatif` and `advise` on the bundled runbook example and its observed connections: exit statuses, the
// JSON contracts a GitOps pipeline parses, manifests from files and directories, and one clear line per bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/whatif_command.hpp"
#include "state/state_loader.hpp"

using nlohmann::json;

namespace {

const std::string kCluster = std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml";
const std::string kFlows = std::string(NPT_EXAMPLES_DIR) + "/runbook-flows.jsonl";

struct Run {
    int status;
    std::string out, err;
};

Run whatif(npt::cli::WhatIfOptions o) {
    if (o.state_files.empty()) o.state_files = {kCluster};
    std::ostringstream out, err;
    const int status = npt::cli::run_whatif(o, out, err);
    return {status, out.str(), err.str()};
}

Run advise(npt::cli::AdviseOptions o) {
    if (o.state_files.empty()) o.state_files = {kCluster};
    std::ostringstream out, err;
    const int status = npt::cli::run_advise(o, out, err);
    return {status, out.str(), err.str()};
}

class TempDir {
  public:
    TempDir() {
        path_ = std::filesystem::temp_directory_path() /
                ("npt-whatif-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string write(const std::string& name, const std::string& text) const {
        const auto p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << text;
        return p;
    }
    std::string path() const { return path_; }

  private:
    static inline int counter_ = 0;
    std::filesystem::path path_;
};

constexpr const char* kAllowDnsForAll = R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
    ports: [{protocol: UDP, port: 53}, {protocol: TCP, port: 53}]
)";

bool one_line(const std::string& s) {
    return !s.empty() && s.find('\n') == s.size() - 1;
}

TEST(WhatIfCli, ABreakingDeletionExitsOneWithEachBreakExplained) {
    npt::cli::WhatIfOptions o;
    o.remove = {"NetworkPolicy/shop/allow-checkout-egress"};
    o.flows = kFlows;
    o.output = "json";
    auto r = whatif(o);
    EXPECT_EQ(r.status, 1) << r.err;
    auto j = json::parse(r.out);
    for (const char* key : {"breaks", "newly_allowed", "newly_denied", "examples", "observed", "changes"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["observed"], 7);
    ASSERT_EQ(j["breaks"].size(), 3u);  // checkout's DNS: UDP and TCP to the Service, UDP seen at the DNS pod
    for (const auto& b : j["breaks"]) {
        EXPECT_EQ(b["before"], "allowed");
        EXPECT_EQ(b["flow"]["src"]["pod"], "shop/checkout-6f8d7c9b5-k8j7h");
        EXPECT_EQ(b["after"]["verdict"], "denied");
        EXPECT_EQ(b["after"]["egress"]["policies"], json({"shop/default-deny"}));
        bool dns_hint = false;
        for (const auto& h : b["after"]["hints"]) dns_hint |= h["code"] == "DNS_EGRESS_BLOCKED";
        EXPECT_TRUE(dns_hint) << b.dump();
    }
    EXPECT_EQ(j["newly_allowed"], 0);
    EXPECT_EQ(j["newly_denied"], 2);
    EXPECT_EQ(j["changes"],
              json::parse(R"([{"action":"delete","kind":"NetworkPolicy","name":"shop/allow-checkout-egress"}])"));
    ASSERT_FALSE(j["examples"].empty());
    EXPECT_EQ(j["examples"][0]["change"], "denied");
}

TEST(WhatIfCli, AChangeThatBreaksNothingExitsZero) {
    TempDir dir;
    npt::cli::WhatIfOptions o;
    o.apply = {dir.write("allow-dns.yaml", kAllowDnsForAll)};
    o.flows = kFlows;
    o.output = "json";
    auto r = whatif(o);
    EXPECT_EQ(r.status, 0) << r.err;
    auto j = json::parse(r.out);
    EXPECT_TRUE(j["breaks"].empty());
    EXPECT_EQ(j["changes"], json::parse(R"([{"action":"create","kind":"NetworkPolicy","name":"shop/allow-dns"}])"));
    EXPECT_GT(j["newly_allowed"].get<int>(), 0);  // frontend's DNS, the runbook's first case
    EXPECT_EQ(j["newly_denied"], 0);
}

TEST(WhatIfCli, ADirectoryOfManifestsAppliesEveryPolicyAndReplacesByName) {
    TempDir dir;
    dir.write("manifests/a-dns.yaml", kAllowDnsForAll);
    // Replaces checkout's egress policy with one that forgot DNS over TCP.
    dir.write("manifests/sub/checkout.yml", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-checkout-egress, namespace: shop}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: checkout}}
  policyTypes: [Egress]
  egress:
  - to:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: databases}}
    ports: [{protocol: TCP, port: 5432}]
)");
    dir.write("manifests/README.md", "not a manifest");
    npt::cli::WhatIfOptions o;
    o.apply = {dir.path() + "/manifests"};
    o.flows = kFlows;
    o.output = "json";
    auto r = whatif(o);
    EXPECT_EQ(r.status, 0) << r.out;  // allow-dns still lets checkout resolve names
    auto j = json::parse(r.out);
    EXPECT_EQ(j["changes"], json::parse(R"([{"action":"create","kind":"NetworkPolicy","name":"shop/allow-dns"},
        {"action":"replace","kind":"NetworkPolicy","name":"shop/allow-checkout-egress"}])"));

    // The same replacement alone breaks checkout's DNS.
    o.apply = {dir.path() + "/manifests/sub"};
    r = whatif(o);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(json::parse(r.out)["breaks"].size(), 3u);
}

TEST(WhatIfCli, TextNamesTheChangeTheBreaksAndTheReach) {
    npt::cli::WhatIfOptions o;
    o.remove = {"networkpolicy/shop/allow-checkout-egress"};
    o.flows = kFlows;
    auto r = whatif(o);
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.out.find("change: delete NetworkPolicy shop/allow-checkout-egress"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("BREAKS 3 observed connections:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("isolated by shop/default-deny"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("reach between pods: 0 newly allowed, 2 newly denied"), std::string::npos) << r.out;
}

TEST(WhatIfCli, NamespaceAndSinceNarrowTheObservedConnections) {
    npt::cli::WhatIfOptions o;
    o.remove = {"NetworkPolicy/shop/allow-checkout-egress"};
    o.flows = kFlows;
    o.output = "json";
    o.namespaces = {"payments"};
    auto r = whatif(o);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out)["observed"], 1);  // payments' api resolving names

    // The example's connections were last seen on 2026-12-01T08:59:30Z: a window of one second excludes them all
    // from now on; one of a hundred years keeps them.
    o.namespaces.clear();
    o.since = "1s";
    r = whatif(o);
    EXPECT_EQ(json::parse(r.out)["observed"], 0);
    o.since = "36500d";
    r = whatif(o);
    EXPECT_EQ(json::parse(r.out)["observed"], 7);
}

TEST(WhatIfCli, WithoutFlowsItReportsTheReachAndSaysSo) {
    npt::cli::WhatIfOptions o;
    o.remove = {"NetworkPolicy/shop/allow-checkout-egress"};
    o.output = "json";
    auto r = whatif(o);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out)["newly_denied"], 2);
    EXPECT_NE(r.err.find("no --flows"), std::string::npos);
}

TEST(WhatIfCli, BadInputIsOneLineAndExitTwo) {
    TempDir dir;
    const auto bad_flows = dir.write("flows.jsonl",
                                     "{\"src\":{\"ip\":\"10.0.0.1\"},\"dst\":{\"ip\":\"10.0.0.2\",\"port\":80}}\n"
                                     "{\"src\":{\"ip\":\"10.0.0.1\"}}\n");
    const auto bad_manifest = dir.write("bad.yaml",
                                        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                                        "metadata: {name: x, namespace: shop}\nspec: {podSelector: 5}\n");
    struct Case {
        npt::cli::WhatIfOptions o;
        std::string expected;
    };
    std::vector<Case> cases;
    const auto with = [&](auto edit, std::string expected) {
        npt::cli::WhatIfOptions o;
        edit(o);
        cases.push_back({o, std::move(expected)});
    };
    with([](auto& o) { (void)o; }, "whatif needs a change");
    with([](auto& o) { o.remove = {"NetworkPolicy/shop/nope"}; }, "no NetworkPolicy shop/nope in the cluster state");
    with([](auto& o) { o.remove = {"Deployment/shop/x"}; }, "unknown kind \"Deployment\"");
    with([](auto& o) { o.remove = {"NetworkPolicy/x"}; }, "a NetworkPolicy is KIND/NAMESPACE/NAME");
    with([](auto& o) { o.remove = {"x"}; }, "expected KIND/NAMESPACE/NAME");
    with([](auto& o) { o.remove = {"ClusterNetworkPolicy/none"}; }, "no ClusterNetworkPolicy \"none\"");
    with(
        [&](auto& o) {
            o.remove = {"NetworkPolicy/shop/default-deny"};
            o.flows = bad_flows;
        },
        bad_flows + " line 2: dst: expected an object");
    with(
        [&](auto& o) {
            o.remove = {"NetworkPolicy/shop/default-deny"};
            o.flows = dir.path() + "/missing.jsonl";
        },
        "missing.jsonl: cannot read");
    with(
        [&](auto& o) {
            o.remove = {"NetworkPolicy/shop/default-deny"};
            o.flows = kFlows;
            o.since = "yesterday";
        },
        "--since \"yesterday\"");
    with([&](auto& o) { o.apply = {bad_manifest}; }, "bad.yaml");
    with([&](auto& o) { o.apply = {dir.path() + "/none.yaml"}; }, "none.yaml");
    for (auto& c : cases) {
        auto r = whatif(c.o);
        EXPECT_EQ(r.status, 2) << c.expected;
        EXPECT_TRUE(r.out.empty()) << r.out;
        EXPECT_TRUE(one_line(r.err)) << r.err;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.err;
    }
}

TEST(AdviseCli, JsonPoliciesAreVerifiedAndLoadAsManifests) {
    npt::cli::AdviseOptions o;
    o.ns = "shop";
    o.flows = kFlows;
    o.output = "json";
    auto r = advise(o);
    EXPECT_EQ(r.status, 0) << r.err;
    auto j = json::parse(r.out);
    ASSERT_TRUE(j["policies"].is_array());
    EXPECT_EQ(j["verified"]["breaks"], 0);
    EXPECT_EQ(j["verified"]["observed"], 4);  // the connections of shop's pods: checkout's DNS, frontend's internet
    EXPECT_TRUE(j["verified"].contains("newly_allowed"));
    std::set<std::string> names;
    for (const auto& p : j["policies"]) {
        EXPECT_EQ(p["kind"], "NetworkPolicy");
        EXPECT_EQ(p["metadata"]["namespace"], "shop");
        names.insert(p["metadata"]["name"]);
        // Every manifest passes the loader's API-server validation.
        npt::ClusterObjects objects;
        auto err = npt::load_state_text(p.dump(), "advice", objects);
        EXPECT_FALSE(err.has_value()) << err->message;
    }
    EXPECT_EQ(names, (std::set<std::string>{"checkout-egress", "frontend-egress", "default-deny-2"}));
}

TEST(AdviseCli, YamlAppliedWithWhatIfBreaksNothing) {
    npt::cli::AdviseOptions a;
    a.ns = "shop";
    a.flows = kFlows;
    auto advice = advise(a);
    ASSERT_EQ(advice.status, 0) << advice.err;
    EXPECT_EQ(advice.out.rfind("# netpol-trace advise -n shop:", 0), 0u) << advice.out;
    EXPECT_NE(advice.out.find("podSelector: {}"), std::string::npos) << advice.out;
    TempDir dir;
    npt::cli::WhatIfOptions w;
    w.apply = {dir.write("advice.yaml", advice.out)};
    w.flows = kFlows;
    w.output = "json";
    auto r = whatif(w);
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(json::parse(r.out)["changes"].size(), 3u);
}

TEST(AdviseCli, BadInputIsOneLineAndExitTwo) {
    npt::cli::AdviseOptions o;
    o.ns = "shop";
    auto r = advise(o);
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("--flows"), std::string::npos);
    o.ns = "nowhere";
    o.flows = kFlows;
    r = advise(o);
    EXPECT_EQ(r.status, 2);
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("namespace \"nowhere\" is not in the cluster state"), std::string::npos) << r.err;
}

}  // namespace

// Offline replay of the upstream conformance suite of kubernetes-sigs/network-policy-api: the
// ClusterNetworkPolicy (Admin and Baseline tiers) tests of branch main, and the v1alpha1
// AdminNetworkPolicy / BaselineAdminNetworkPolicy tests of branch release-0.1. The suite's
// expectations are the authority on semantics: a failure here is an engine bug (or a fixture
// transcription bug), never a reason to change an expectation to what the engine says.
//
// Fixtures: tests/fixtures/cluster-policy-conformance (format in its README.md). cluster.yaml is
// the conformance cluster; every other *.yaml (and v1alpha1/*.yaml) is one upstream test: steps,
// each with the policies in force and the probes made against them. One test case per probe;
// the cluster state is built once per step.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/ip_addr.hpp"
#include "policy/explainer.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"
#include "state/objects.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_CLUSTER_POLICY_CONFORMANCE_FIXTURES
#error "NPT_CLUSTER_POLICY_CONFORMANCE_FIXTURES must name tests/fixtures/cluster-policy-conformance"
#endif

namespace npt {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures{NPT_CLUSTER_POLICY_CONFORMANCE_FIXTURES};

// One step of one upstream test: the documents in force while its probes run.
struct Step {
    std::string file;             // relative to the fixture directory
    std::string test;             // upstream ShortName
    int number = 0;               // as written in the fixture (1-based)
    std::string changes;          // what the upstream test did to reach this step
    std::string cluster_changes;  // objects overriding cluster.yaml (may be empty)
    std::string policies;         // the policy documents in force
};

struct ProbeCase {
    std::string name;  // gtest parameter name
    std::string step_key;
    std::string from, to;
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
    IpFamily family = IpFamily::V4;
    std::string expect;    // "allowed" | "denied"
    std::string upstream;  // "<test file>:<subtest name>"
    std::string note;
    std::string reason;         // set: upstream probes something this model cannot express (skipped)
    std::string fixture_error;  // set: the fixture itself could not be read (the case fails)
};

void PrintTo(const ProbeCase& c, std::ostream* os) {
    *os << c.name;
}

std::map<std::string, Step>& steps() {
    static std::map<std::string, Step> s;
    return s;
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// gtest parameter names: letters, digits and underscores.
std::string sanitize(const std::string& s) {
    std::string out;
    for (const char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return out;
}

std::string pod_part(const std::string& ns_pod) {
    const auto slash = ns_pod.find('/');
    return slash == std::string::npos ? ns_pod : ns_pod.substr(slash + 1);
}

std::string pad3(size_t n) {
    std::string s = std::to_string(n);
    while (s.size() < 3) s.insert(s.begin(), '0');
    return s;
}

std::string required_string(const YAML::Node& n, const char* key, const std::string& where) {
    const YAML::Node v = n[key];
    if (!v || !v.IsScalar()) throw std::runtime_error(where + ": missing string field '" + key + "'");
    return v.as<std::string>();
}

ProbeCase fixture_error_case(const std::string& file, const std::string& message) {
    ProbeCase c;
    c.name = "FIXTURE_ERROR_" + sanitize(file);
    c.fixture_error = file + ": " + message;
    return c;
}

// Reads one test file into `out` (and steps()). Throws on a malformed fixture.
void read_test_file(const std::string& rel, std::vector<ProbeCase>& out) {
    const YAML::Node doc = YAML::LoadFile((kFixtures / rel).string());
    const std::string test = required_string(doc, "test", rel);
    const YAML::Node step_list = doc["steps"];
    if (!step_list || !step_list.IsSequence() || step_list.size() == 0)
        throw std::runtime_error(rel + ": 'steps' must be a non-empty list");
    size_t index = 0;
    for (size_t si = 0; si < step_list.size(); ++si) {
        const YAML::Node sn = step_list[si];
        const std::string where = rel + " steps[" + std::to_string(si) + "]";
        Step st;
        st.file = rel;
        st.test = test;
        st.number = sn["step"] ? sn["step"].as<int>() : static_cast<int>(si + 1);
        if (const YAML::Node ch = sn["changes"]; ch && ch.IsSequence()) {
            for (const auto& c : ch) st.changes += (st.changes.empty() ? "" : " | ") + c.as<std::string>();
        }
        st.policies = required_string(sn, "policies", where);
        if (const YAML::Node cc = sn["cluster_changes"]; cc) st.cluster_changes = cc.as<std::string>();
        const std::string key = rel + "#" + std::to_string(st.number);
        if (steps().contains(key))
            throw std::runtime_error(where + ": step number " + std::to_string(st.number) + " repeated");
        steps().emplace(key, st);

        const YAML::Node probes = sn["probes"];
        if (!probes || !probes.IsSequence() || probes.size() == 0)
            throw std::runtime_error(where + ": 'probes' must be a non-empty list");
        for (size_t pi = 0; pi < probes.size(); ++pi) {
            const YAML::Node pn = probes[pi];
            const std::string pwhere = where + ".probes[" + std::to_string(pi) + "]";
            ProbeCase c;
            c.step_key = key;
            c.from = required_string(pn, "from", pwhere);
            c.to = required_string(pn, "to", pwhere);
            const int port = pn["port"] ? pn["port"].as<int>() : -1;
            if (port < 1 || port > 65535) throw std::runtime_error(pwhere + ": 'port' must be 1..65535");
            c.port = static_cast<uint16_t>(port);
            const std::string proto = required_string(pn, "protocol", pwhere);
            const auto parsed = parse_protocol(proto);
            if (!parsed) throw std::runtime_error(pwhere + ": unknown protocol '" + proto + "'");
            c.protocol = *parsed;
            const int family = pn["family"] ? pn["family"].as<int>() : 4;
            if (family != 4 && family != 6) throw std::runtime_error(pwhere + ": 'family' must be 4 or 6");
            c.family = family == 4 ? IpFamily::V4 : IpFamily::V6;
            c.expect = required_string(pn, "expect", pwhere);
            if (c.expect != "allowed" && c.expect != "denied")
                throw std::runtime_error(pwhere + ": 'expect' must be allowed or denied");
            c.upstream = required_string(pn, "upstream", pwhere);
            if (pn["note"]) c.note = pn["note"].as<std::string>();
            if (pn["reason"]) c.reason = pn["reason"].as<std::string>();
            ++index;
            c.name = sanitize(test) + "_s" + std::to_string(st.number) + "_" + pad3(index) + "_" +
                     sanitize(pod_part(c.from)) + "_to_" + sanitize(pod_part(c.to)) + "_" + proto +
                     std::to_string(port) + "_v" + std::to_string(family);
            out.push_back(std::move(c));
        }
    }
}

std::vector<std::string> test_files() {
    std::vector<std::string> files;
    for (const auto& dir : {fs::path{}, fs::path{"v1alpha1"}}) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(kFixtures / dir, ec)) {
            if (!e.is_regular_file() || e.path().extension() != ".yaml") continue;
            const std::string rel = (dir / e.path().filename()).generic_string();
            if (rel != "cluster.yaml") files.push_back(rel);
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

const std::vector<ProbeCase>& all_cases() {
    static const std::vector<ProbeCase> cases = [] {
        std::vector<ProbeCase> out;
        for (const auto& rel : test_files()) {
            std::vector<ProbeCase> one;
            try {
                read_test_file(rel, one);
            } catch (const std::exception& e) {  // YAML::Exception included
                out.push_back(fixture_error_case(rel, e.what()));
                continue;
            }
            for (auto& c : one) out.push_back(std::move(c));
        }
        return out;
    }();
    return cases;
}

// The built state of a step, or why it could not be built. Built on first use, once per step.
struct BuiltStep {
    std::shared_ptr<const ClusterState> state;
    std::string error;
};

const BuiltStep& built(const std::string& key) {
    static std::map<std::string, BuiltStep> cache;
    if (const auto it = cache.find(key); it != cache.end()) return it->second;
    BuiltStep b;
    const Step& st = steps().at(key);
    const std::string cluster = read_file(kFixtures / "cluster.yaml");
    ClusterObjects objs;
    if (cluster.empty()) {
        b.error = "cluster.yaml is missing or empty under " + kFixtures.string();
    } else if (auto err = load_state_text(cluster, "cluster.yaml", objs)) {
        b.error = err->message;
    } else if (!st.cluster_changes.empty() &&
               (err = load_state_text(st.cluster_changes,
                                      st.file + " step " + std::to_string(st.number) + " cluster_changes", objs))) {
        b.error = err->message;
    } else if ((err = load_state_text(st.policies, st.file + " step " + std::to_string(st.number), objs))) {
        b.error = err->message;
    } else {
        b.state = ClusterState::build(std::move(objs));
    }
    return cache.emplace(key, std::move(b)).first->second;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? "-" : s;
}

std::string hints(const Explanation& e) {
    std::vector<std::string> codes;
    for (const auto& h : e.hints) codes.push_back(h.code + (h.policy ? "(" + *h.policy + ")" : ""));
    return join(codes);
}

TEST(ClusterPolicyConformanceFixtures, AreReadable) {
    ASSERT_TRUE(fs::exists(kFixtures / "cluster.yaml")) << "no cluster.yaml under " << kFixtures;
    const auto files = test_files();
    EXPECT_FALSE(files.empty()) << "no test fixtures under " << kFixtures;
    size_t probes = 0;
    for (const auto& c : all_cases()) {
        EXPECT_TRUE(c.fixture_error.empty()) << c.fixture_error;
        if (c.fixture_error.empty()) ++probes;
    }
    EXPECT_GT(probes, 0u);
}

class ClusterPolicyConformance : public ::testing::TestWithParam<ProbeCase> {};

TEST_P(ClusterPolicyConformance, Replays) {
    const ProbeCase& c = GetParam();
    ASSERT_TRUE(c.fixture_error.empty()) << "malformed fixture: " << c.fixture_error;
    const Step& st = steps().at(c.step_key);
    const std::string where = "upstream " + st.test + " (" + c.upstream + ")\n  fixture " + st.file + " step " +
                              std::to_string(st.number) + ": " + st.changes + "\n  probe " + c.from + " -> " + c.to +
                              " " + protocol_name(c.protocol) + "/" + std::to_string(c.port) + " IPv" +
                              (c.family == IpFamily::V4 ? "4" : "6") + (c.note.empty() ? "" : "\n  note: " + c.note);
    if (!c.reason.empty()) GTEST_SKIP() << "not expressible in the model: " << c.reason << "\n  " << where;

    const BuiltStep& b = built(c.step_key);
    ASSERT_TRUE(b.error.empty()) << "loading the step failed: " << b.error << "\n  " << where;

    ExplainQuery q;
    q.from = c.from;
    q.to = c.to;
    q.port = c.port;
    q.protocol = c.protocol;
    q.family = c.family;
    const auto r = explain_query(*b.state, q);
    ASSERT_TRUE(r.ok()) << "explain_query failed: " << r.error().message << "\n  " << where;
    EXPECT_EQ(r->verdict, c.expect) << where << "\n  egress: allowed=" << r->egress.allowed
                                    << " isolated=" << r->egress.isolated << " policies=" << join(r->egress.policies)
                                    << " allowed_by=" << join(r->egress.allowed_by)
                                    << "\n  ingress: allowed=" << r->ingress.allowed
                                    << " isolated=" << r->ingress.isolated << " policies=" << join(r->ingress.policies)
                                    << " allowed_by=" << join(r->ingress.allowed_by) << "\n  hints: " << hints(*r);
}

INSTANTIATE_TEST_SUITE_P(Upstream, ClusterPolicyConformance, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<ProbeCase>& info) { return info.param.name; });

}  // namespace
}  // namespace npt

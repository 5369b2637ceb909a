// Conformance of the policy engine to the NetworkPolicy specification (networking.k8s.io/v1).
//
// Every expectation here is written from what Kubernetes says must happen (the NetworkPolicy
// concept page, the API reference, the upstream e2e suite test/e2e/network/netpol), not from the
// engine's code. The cluster is modelled on the upstream e2e one: namespaces x, y, z with pods a, b,
// c serving 80/81 on TCP, UDP and SCTP, plus a few extra pods, two nodes and some Services.
//
// Each table row is one connection question: the policies to add, the query, and the answer the
// specification requires (verdict, per-direction allowed/isolating policies/allowed_by, and for
// the "looks right but is blocked" cases the hint codes with the policy and direction they name).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "output/miss_text.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"
#include "state/objects.hpp"

namespace npt {
namespace {

using Strings = std::vector<std::string>;
using Op = LabelRequirement::Op;

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

IpAddr ip(std::string_view text) {
    auto a = IpAddr::parse(text);
    if (!a) ADD_FAILURE() << "bad IP literal in test: " << text;
    return a.value_or(IpAddr{});
}

Cidr cidr(std::string_view text) {
    auto c = Cidr::parse(text);
    if (!c) ADD_FAILURE() << "bad CIDR literal in test: " << text;
    return c.value_or(Cidr{});
}

LabelRequirement req(std::string key, Op op, Strings values = {}) {
    LabelRequirement r;
    r.key = std::move(key);
    r.op = op;
    r.values = std::move(values);
    return r;
}

// matchLabels {k: v, ...}
LabelSelector ml(const LabelMap& labels) {
    LabelSelector s;
    for (const auto& [k, v] : labels) {
        auto r = req(k, Op::In, {v});
        r.from_match_labels = true;
        s.requirements.push_back(std::move(r));
    }
    return s;
}

// matchLabels plus matchExpressions
LabelSelector sel(const LabelMap& labels, std::vector<LabelRequirement> exprs) {
    LabelSelector s = ml(labels);
    for (auto& e : exprs) s.requirements.push_back(std::move(e));
    return s;
}

LabelSelector all() {
    return LabelSelector{};
}  // {}

Peer podp(LabelSelector s) {
    Peer p;
    p.pod_selector = std::move(s);
    return p;
}
Peer nsp(LabelSelector s) {
    Peer p;
    p.namespace_selector = std::move(s);
    return p;
}
Peer nspod(LabelSelector ns, LabelSelector pod) {
    Peer p;
    p.namespace_selector = std::move(ns);
    p.pod_selector = std::move(pod);
    return p;
}
Peer ipb(std::string_view c, std::vector<std::string_view> except = {}) {
    Peer p;
    IpBlock b;
    b.cidr = cidr(c);
    for (auto e : except) b.except.push_back(cidr(e));
    p.ip_block = std::move(b);
    return p;
}

PolicyPort port(Protocol proto, uint16_t n) {
    PolicyPort p;
    p.protocol = proto;
    p.port = n;
    return p;
}
PolicyPort tcp(uint16_t n) {
    return port(Protocol::TCP, n);
}
PolicyPort udp(uint16_t n) {
    return port(Protocol::UDP, n);
}
PolicyPort sctp(uint16_t n) {
    return port(Protocol::SCTP, n);
}
PolicyPort range(Protocol proto, uint16_t from, uint16_t to) {
    PolicyPort p = port(proto, from);
    p.end_port = to;
    return p;
}
PolicyPort named(std::string name, Protocol proto = Protocol::TCP) {
    PolicyPort p;
    p.protocol = proto;
    p.port_name = std::move(name);
    return p;
}
PolicyPort any_port(Protocol proto) {  // {protocol: X} without port
    PolicyPort p;
    p.protocol = proto;
    return p;
}
PolicyPort default_port(uint16_t n) {  // {port: n}: protocol left at its default
    PolicyPort p;
    p.port = n;
    return p;
}

PolicyRule rule(std::vector<Peer> peers, std::vector<PolicyPort> ports = {}) {
    PolicyRule r;
    r.peers = std::move(peers);
    r.ports = std::move(ports);
    return r;
}
PolicyRule any_peer(std::vector<PolicyPort> ports) {
    return rule({}, std::move(ports));
}
PolicyRule allow_all() {
    return PolicyRule{};
}  // {}

// policyTypes: [Ingress]
NetworkPolicy ingress_policy(std::string ns, std::string name, LabelSelector s, std::vector<PolicyRule> rules) {
    NetworkPolicy p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.pod_selector = std::move(s);
    p.affects_ingress = true;
    p.affects_egress = false;
    p.ingress = std::move(rules);
    return p;
}
// policyTypes: [Egress]
NetworkPolicy egress_policy(std::string ns, std::string name, LabelSelector s, std::vector<PolicyRule> rules) {
    NetworkPolicy p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.pod_selector = std::move(s);
    p.affects_ingress = false;
    p.affects_egress = true;
    p.egress = std::move(rules);
    return p;
}
// policyTypes: [Ingress, Egress]
NetworkPolicy both_policy(std::string ns, std::string name, LabelSelector s, std::vector<PolicyRule> in,
                          std::vector<PolicyRule> eg) {
    NetworkPolicy p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.pod_selector = std::move(s);
    p.affects_ingress = true;
    p.affects_egress = true;
    p.ingress = std::move(in);
    p.egress = std::move(eg);
    return p;
}

// The ports every e2e server pod declares.
std::vector<ContainerPort> serve_ports(std::optional<uint16_t> http = std::nullopt) {
    std::vector<ContainerPort> ports = {
        {"serve-80-tcp", 80, Protocol::TCP},   {"serve-81-tcp", 81, Protocol::TCP},
        {"serve-80-udp", 80, Protocol::UDP},   {"serve-81-udp", 81, Protocol::UDP},
        {"serve-80-sctp", 80, Protocol::SCTP}, {"serve-81-sctp", 81, Protocol::SCTP},
    };
    if (http) ports.push_back({"http", *http, Protocol::TCP});
    return ports;
}

PodInfo pod(std::string ns, std::string name, LabelMap labels, Strings ips, std::string node,
            std::vector<ContainerPort> ports = serve_ports()) {
    PodInfo p;
    p.ns = std::move(ns);
    p.name = std::move(name);
    p.labels = std::move(labels);
    for (const auto& s : ips) p.ips.push_back(ip(s));
    p.node = node;
    if (node == "n1") p.host_ip = ip("10.1.0.1");
    if (node == "n2") p.host_ip = ip("10.1.0.2");
    p.phase = "Running";
    p.ports = std::move(ports);
    return p;
}

// The shared cluster.
//   nodes n1 10.1.0.1, n2 10.1.0.2
//   x/a pod=a,app=server      10.0.1.1 fd00::1:1  n1  http=7070
//   x/b pod=b,app=web,tier=frontend 10.0.1.2 fd00::1:2 n1 http=8080
//   x/c pod=c,app=db          10.0.1.3            n2  http=9090
//   x/d pod=d                 10.0.1.4            n2
//   x/h pod=h hostNetwork     10.1.0.2 (n2's IP)  n2
//   y/a pod=a,app=server      10.0.2.1 fd00::2:1  n2
//   y/b pod=b,app=web,svc=mixed 10.0.2.2          n2  http=8080
//   y/c pod=c,app=db,svc=mixed  10.0.2.3          n1  http=9090
//   z/a,z/b,z/c               10.0.3.1-3          n1,n2,n1
//   kube-system/coredns k8s-app=kube-dns 10.0.9.10 (dns 53/UDP, dns-tcp 53/TCP)
//   monitoring/prom app=prometheus 10.0.8.1 (namespace monitoring has no labels of its own)
ClusterObjects base_cluster() {
    ClusterObjects o;
    o.nodes.push_back({"n1", {ip("10.1.0.1")}});
    o.nodes.push_back({"n2", {ip("10.1.0.2")}});
    o.namespaces.push_back({"x", {{"ns", "x"}}});
    o.namespaces.push_back({"y", {{"ns", "y"}}});
    o.namespaces.push_back({"z", {{"ns", "z"}}});
    o.namespaces.push_back({"kube-system", {}});
    o.namespaces.push_back({"monitoring", {}});

    o.pods.push_back(
        pod("x", "a", {{"app", "server"}, {"pod", "a"}}, {"10.0.1.1", "fd00::1:1"}, "n1", serve_ports(7070)));
    o.pods.push_back(pod("x", "b", {{"app", "web"}, {"pod", "b"}, {"tier", "frontend"}}, {"10.0.1.2", "fd00::1:2"},
                         "n1", serve_ports(8080)));
    o.pods.push_back(pod("x", "c", {{"app", "db"}, {"pod", "c"}}, {"10.0.1.3"}, "n2", serve_ports(9090)));
    o.pods.push_back(pod("x", "d", {{"pod", "d"}}, {"10.0.1.4"}, "n2"));
    {
        PodInfo h = pod("x", "h", {{"pod", "h"}}, {"10.1.0.2"}, "n2", {{"serve-80-tcp", 80, Protocol::TCP}});
        h.host_network = true;
        o.pods.push_back(std::move(h));
    }
    o.pods.push_back(
        pod("y", "a", {{"app", "server"}, {"pod", "a"}}, {"10.0.2.1", "fd00::2:1"}, "n2", serve_ports(7070)));
    o.pods.push_back(
        pod("y", "b", {{"app", "web"}, {"pod", "b"}, {"svc", "mixed"}}, {"10.0.2.2"}, "n2", serve_ports(8080)));
    o.pods.push_back(
        pod("y", "c", {{"app", "db"}, {"pod", "c"}, {"svc", "mixed"}}, {"10.0.2.3"}, "n1", serve_ports(9090)));
    o.pods.push_back(pod("z", "a", {{"app", "server"}, {"pod", "a"}}, {"10.0.3.1"}, "n1"));
    o.pods.push_back(pod("z", "b", {{"app", "web"}, {"pod", "b"}}, {"10.0.3.2"}, "n2"));
    o.pods.push_back(pod("z", "c", {{"app", "db"}, {"pod", "c"}}, {"10.0.3.3"}, "n1"));
    o.pods.push_back(pod("kube-system", "coredns", {{"k8s-app", "kube-dns"}}, {"10.0.9.10"}, "n1",
                         {{"dns", 53, Protocol::UDP}, {"dns-tcp", 53, Protocol::TCP}}));
    o.pods.push_back(pod("monitoring", "prom", {{"app", "prometheus"}}, {"10.0.8.1"}, "n2"));

    // y/web: ClusterIP 10.96.0.10 port 80 -> targetPort 8080, selector app=web (endpoints derived: y/b).
    {
        ServiceInfo s;
        s.ns = "y";
        s.name = "web";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.10")};
        s.ports = {ServicePort{"http", Protocol::TCP, 80, 0, 8080, ""}};
        s.selector = LabelMap{{"app", "web"}};
        o.services.push_back(std::move(s));
    }
    // y/mixed: 10.96.0.11 port 80 -> targetPort "http" (y/b: 8080, y/c: 9090), selector svc=mixed.
    {
        ServiceInfo s;
        s.ns = "y";
        s.name = "mixed";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.11")};
        s.ports = {ServicePort{"", Protocol::TCP, 80, 0, 0, "http"}};
        s.selector = LabelMap{{"svc", "mixed"}};
        o.services.push_back(std::move(s));
    }
    // default/kubernetes: 10.43.0.1:443 -> control-plane IPs 10.0.40.101-103:6443 (not pods).
    {
        ServiceInfo s;
        s.ns = "default";
        s.name = "kubernetes";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.43.0.1")};
        s.ports = {ServicePort{"https", Protocol::TCP, 443, 0, 6443, ""}};
        o.services.push_back(std::move(s));
        EndpointSliceInfo es;
        es.ns = "default";
        es.name = "kubernetes";
        es.service = "kubernetes";
        es.ports = {EndpointPort{"https", Protocol::TCP, 6443}};
        for (const char* a : {"10.0.40.101", "10.0.40.102", "10.0.40.103"})
            es.endpoints.push_back({ip(a), true, "", ""});
        o.endpoint_slices.push_back(std::move(es));
    }
    // y/multi: 10.96.0.12, ports http 80 -> 8080 and metrics 9100 -> 9100, one EndpointSlice (y/b).
    {
        ServiceInfo s;
        s.ns = "y";
        s.name = "multi";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.12")};
        s.ports = {ServicePort{"http", Protocol::TCP, 80, 0, 8080, ""},
                   ServicePort{"metrics", Protocol::TCP, 9100, 0, 9100, ""}};
        o.services.push_back(std::move(s));
        EndpointSliceInfo es;
        es.ns = "y";
        es.name = "multi-abc";
        es.service = "multi";
        es.ports = {EndpointPort{"metrics", Protocol::TCP, 9100}, EndpointPort{"http", Protocol::TCP, 8080}};
        es.endpoints.push_back({ip("10.0.2.2"), true, "y", "b"});
        o.endpoint_slices.push_back(std::move(es));
    }
    // y/notready: 10.96.0.13:80 -> 8080; y/b ready, y/c not ready.
    {
        ServiceInfo s;
        s.ns = "y";
        s.name = "notready";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.13")};
        s.ports = {ServicePort{"http", Protocol::TCP, 80, 0, 8080, ""}};
        o.services.push_back(std::move(s));
        EndpointSliceInfo es;
        es.ns = "y";
        es.name = "notready-abc";
        es.service = "notready";
        es.ports = {EndpointPort{"http", Protocol::TCP, 8080}};
        es.endpoints.push_back({ip("10.0.2.2"), true, "y", "b"});
        es.endpoints.push_back({ip("10.0.2.3"), false, "y", "c"});
        o.endpoint_slices.push_back(std::move(es));
    }
    // kube-system/kube-dns: 10.96.0.53, dns 53/UDP and dns-tcp 53/TCP -> coredns (derived).
    {
        ServiceInfo s;
        s.ns = "kube-system";
        s.name = "kube-dns";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.53")};
        s.ports = {ServicePort{"dns", Protocol::UDP, 53, 0, 53, ""},
                   ServicePort{"dns-tcp", Protocol::TCP, 53, 0, 53, ""}};
        s.selector = LabelMap{{"k8s-app", "kube-dns"}};
        o.services.push_back(std::move(s));
    }
    // y/noref: 10.96.0.15:80 -> 8080, hand-made EndpointSlice whose endpoint (y/b's IP) has no targetRef.
    {
        ServiceInfo s;
        s.ns = "y";
        s.name = "noref";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.15")};
        s.ports = {ServicePort{"http", Protocol::TCP, 80, 0, 8080, ""}};
        o.services.push_back(std::move(s));
        EndpointSliceInfo es;
        es.ns = "y";
        es.name = "noref-1";
        es.service = "noref";
        es.ports = {EndpointPort{"http", Protocol::TCP, 8080}};
        es.endpoints.push_back({ip("10.0.2.2"), true, "", ""});
        o.endpoint_slices.push_back(std::move(es));
    }
    // x/hostsvc: 10.96.0.16:80 -> 80, selector pod=h: its endpoint is the hostNetwork pod x/h (n2's IP).
    {
        ServiceInfo s;
        s.ns = "x";
        s.name = "hostsvc";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.16")};
        s.ports = {ServicePort{"", Protocol::TCP, 80, 0, 80, ""}};
        s.selector = LabelMap{{"pod", "h"}};
        o.services.push_back(std::move(s));
    }
    // x/self: 10.96.0.14:80 -> 80, selector pod=a (x/a only): hairpin.
    {
        ServiceInfo s;
        s.ns = "x";
        s.name = "self";
        s.type = "ClusterIP";
        s.cluster_ips = {ip("10.96.0.14")};
        s.ports = {ServicePort{"", Protocol::TCP, 80, 0, 80, ""}};
        s.selector = LabelMap{{"pod", "a"}};
        o.services.push_back(std::move(s));
    }
    return o;
}

ExplainQuery Q(std::string from, std::string to, uint16_t p, Protocol proto = Protocol::TCP,
               std::optional<IpFamily> family = std::nullopt) {
    return ExplainQuery{std::move(from), std::move(to), p, proto, family};
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

struct HintExp {
    std::string code;
    Direction dir = Direction::Ingress;
    std::optional<std::string> policy;  // nullopt: any (not checked)
};

struct Expect {
    std::string verdict;  // "allowed" | "denied" | "partial"
    std::optional<bool> egress_allowed;
    std::optional<bool> ingress_allowed;
    std::optional<Strings> egress_policies;
    std::optional<Strings> ingress_policies;
    std::optional<Strings> egress_allowed_by;
    std::optional<Strings> ingress_allowed_by;
    std::vector<HintExp> hints;  // each must be present (code, direction, policy)
    Strings no_hints;            // codes that must not be present at all
};

struct Case {
    std::string name;
    std::vector<NetworkPolicy> policies;
    ExplainQuery q;
    Expect e;
    std::function<void(ClusterObjects&)> tweak = nullptr;     // extra objects
    std::function<void(const Explanation&)> extra = nullptr;  // extra assertions
};

std::string join(const Strings& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s + "]";
}

std::string describe(const Explanation& e) {
    std::ostringstream os;
    os << "verdict=" << e.verdict << "\n  egress: isolated=" << e.egress.isolated << " allowed=" << e.egress.allowed
       << " exemption=" << static_cast<int>(e.egress.exemption) << " policies=" << join(e.egress.policies)
       << " allowed_by=" << join(e.egress.allowed_by) << "\n  ingress: isolated=" << e.ingress.isolated
       << " allowed=" << e.ingress.allowed << " exemption=" << static_cast<int>(e.ingress.exemption)
       << " policies=" << join(e.ingress.policies) << " allowed_by=" << join(e.ingress.allowed_by)
       << "\n  src=" << e.src.ip.str() << " dst=" << e.dst.ip.str() << "\n  hints:";
    for (const auto& h : e.hints)
        os << "\n    " << h.code << " " << direction_name(h.direction) << " " << h.policy.value_or("-") << ": "
           << hint_message(h);
    for (const auto& n : e.notes) os << "\n  note: " << note_message(n);
    return os.str();
}

bool has_hint(const Explanation& e, const HintExp& h) {
    return std::any_of(e.hints.begin(), e.hints.end(), [&](const Hint& x) {
        return x.code == h.code && x.direction == h.dir && (!h.policy || x.policy == h.policy);
    });
}

void check(const Explanation& got, const Expect& want) {
    SCOPED_TRACE(describe(got));
    EXPECT_EQ(got.verdict, want.verdict);
    if (want.egress_allowed) {
        EXPECT_EQ(got.egress.allowed, *want.egress_allowed) << "egress.allowed";
    }
    if (want.ingress_allowed) {
        EXPECT_EQ(got.ingress.allowed, *want.ingress_allowed) << "ingress.allowed";
    }
    // Isolation follows from the isolating policies.
    if (want.egress_policies) {
        EXPECT_EQ(got.egress.policies, *want.egress_policies) << "egress.policies";
        EXPECT_EQ(got.egress.isolated, !want.egress_policies->empty()) << "egress.isolated";
    }
    if (want.ingress_policies) {
        EXPECT_EQ(got.ingress.policies, *want.ingress_policies) << "ingress.policies";
        EXPECT_EQ(got.ingress.isolated, !want.ingress_policies->empty()) << "ingress.isolated";
    }
    if (want.egress_allowed_by) {
        EXPECT_EQ(got.egress.allowed_by, *want.egress_allowed_by) << "egress.allowed_by";
    }
    if (want.ingress_allowed_by) {
        EXPECT_EQ(got.ingress.allowed_by, *want.ingress_allowed_by) << "ingress.allowed_by";
    }
    for (const auto& h : want.hints) {
        EXPECT_TRUE(has_hint(got, h)) << "missing hint " << h.code << " " << direction_name(h.dir) << " "
                                      << h.policy.value_or("(any policy)");
    }
    for (const auto& code : want.no_hints) {
        EXPECT_FALSE(std::any_of(got.hints.begin(), got.hints.end(), [&](const Hint& x) { return x.code == code; }))
            << "unexpected hint " << code;
    }
}

std::shared_ptr<const ClusterState> build(const std::vector<NetworkPolicy>& policies,
                                          const std::function<void(ClusterObjects&)>& tweak = nullptr) {
    ClusterObjects o = base_cluster();
    for (const auto& p : policies) o.policies.push_back(p);
    if (tweak) tweak(o);
    return ClusterState::build(std::move(o));
}

void run(const Case& c) {
    auto state = build(c.policies, c.tweak);
    auto r = explain_query(*state, c.q);
    ASSERT_TRUE(r.ok()) << r.error().message;
    check(*r, c.e);
    if (c.extra) {
        SCOPED_TRACE(describe(*r));
        c.extra(*r);
    }
}

void PrintTo(const Case& c, std::ostream* os) {
    *os << c.name;
}

class Conformance : public ::testing::TestWithParam<Case> {};
TEST_P(Conformance, Holds) {
    run(GetParam());
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
    return info.param.name;
}

const Strings none{};
Strings S(std::initializer_list<std::string> l) {
    return Strings(l);
}

// Frequently used policies.
NetworkPolicy deny_all_ingress(std::string ns, std::string name = "deny-all-ingress", LabelSelector s = all()) {
    return ingress_policy(std::move(ns), std::move(name), std::move(s), {});
}
NetworkPolicy deny_all_egress(std::string ns, std::string name = "deny-all-egress", LabelSelector s = all()) {
    return egress_policy(std::move(ns), std::move(name), std::move(s), {});
}
// Ingress to x/a allowed by the given rules only.
NetworkPolicy to_xa(std::string name, std::vector<PolicyRule> rules) {
    return ingress_policy("x", std::move(name), ml({{"pod", "a"}}), std::move(rules));
}
// Egress from x/a allowed by the given rules only.
NetworkPolicy from_xa(std::string name, std::vector<PolicyRule> rules) {
    return egress_policy("x", std::move(name), ml({{"pod", "a"}}), std::move(rules));
}

// ---------------------------------------------------------------------------------------------
// Isolation, defaults, policyTypes
// ---------------------------------------------------------------------------------------------

std::vector<Case> isolation_cases() {
    return {
        {"NoPolicyAllowsEverything",
         {},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed",
          .egress_allowed = true,
          .ingress_allowed = true,
          .egress_policies = none,
          .ingress_policies = none,
          .no_hints = {hint::kDefaultDeny}}},
        {"NoPolicyAllowsUdpAndSctp",
         {},
         Q("z/c", "x/a", 81, Protocol::SCTP),
         {.verdict = "allowed", .egress_policies = none, .ingress_policies = none}},
        {"PolicySelectingOtherPodDoesNotIsolate",
         {deny_all_ingress("x", "deny-c", ml({{"pod", "c"}}))},
         Q("x/a", "x/b", 80),
         {.verdict = "allowed", .ingress_allowed = true, .ingress_policies = none}},
        {"EmptyPodSelectorIsolatesEveryPodOfItsNamespace",
         {deny_all_ingress("x")},
         Q("x/a", "x/b", 80),
         {.verdict = "denied",
          .egress_allowed = true,
          .ingress_allowed = false,
          .egress_policies = none,
          .ingress_policies = S({"x/deny-all-ingress"}),
          .ingress_allowed_by = none,
          .hints = {{hint::kDefaultDeny, Direction::Ingress, "x/deny-all-ingress"}}}},
        {"EmptyPodSelectorDoesNotReachOtherNamespaces",
         {deny_all_ingress("x")},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed", .ingress_policies = none}},
        // Same labels in another namespace: a policy only ever selects pods of its own namespace.
        {"PolicyDoesNotSelectSameLabelsInOtherNamespace",
         {deny_all_ingress("x", "deny-a", ml({{"pod", "a"}}))},
         Q("x/b", "y/a", 80),
         {.verdict = "allowed", .ingress_policies = none}},
        {"IngressIsolationDoesNotIsolateEgress",
         {deny_all_ingress("x")},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed", .egress_allowed = true, .egress_policies = none}},
        {"EgressIsolationDoesNotIsolateIngress",
         {deny_all_egress("x")},
         Q("y/a", "x/b", 80),
         {.verdict = "allowed", .ingress_allowed = true, .ingress_policies = none}},
        {"DenyAllEgressDeniesEgress",
         {deny_all_egress("x")},
         Q("x/a", "y/b", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .ingress_allowed = true,
          .egress_policies = S({"x/deny-all-egress"}),
          .egress_allowed_by = none,
          .hints = {{hint::kDefaultDeny, Direction::Egress, "x/deny-all-egress"}}}},
        // policyTypes [Egress] with ingress rules present: the ingress rules are ignored and the pod
        // is not isolated for ingress (API reference, policyTypes).
        {"EgressOnlyTypeIgnoresIngressRules",
         {[] {
             auto p = egress_policy("x", "egress-only", ml({{"pod", "b"}}), {});
             p.ingress = {rule({podp(ml({{"pod", "c"}}))})};  // would restrict ingress if it counted
             return p;
         }()},
         Q("z/a", "x/b", 80),
         {.verdict = "allowed", .ingress_allowed = true, .ingress_policies = none}},
        {"EgressOnlyTypeWithoutEgressRulesDeniesEgress",
         {[] {
             auto p = egress_policy("x", "egress-only", ml({{"pod", "b"}}), {});
             p.ingress = {allow_all()};
             return p;
         }()},
         Q("x/b", "z/a", 80),
         {.verdict = "denied", .egress_allowed = false, .egress_policies = S({"x/egress-only"})}},
        // policyTypes [Ingress, Egress] with ingress [{}] and no egress rules: all egress denied,
        // all ingress allowed.
        {"IngressEgressTypesNoEgressRulesDenyEgress",
         {both_policy("x", "in-all-eg-none", ml({{"pod", "a"}}), {allow_all()}, {})},
         Q("x/a", "y/a", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .egress_policies = S({"x/in-all-eg-none"}),
          .egress_allowed_by = none}},
        {"IngressEgressTypesIngressAllowAll",
         {both_policy("x", "in-all-eg-none", ml({{"pod", "a"}}), {allow_all()}, {})},
         Q("y/a", "x/a", 80),
         {.verdict = "allowed",
          .ingress_allowed = true,
          .ingress_policies = S({"x/in-all-eg-none"}),
          .ingress_allowed_by = S({"x/in-all-eg-none"})}},
        // policyTypes [Ingress] only: spec.egress (if any) does not isolate egress.
        {"IngressOnlyTypeIgnoresEgressRules",
         {[] {
             auto p = ingress_policy("x", "ingress-only", ml({{"pod", "a"}}), {allow_all()});
             p.egress = {rule({podp(ml({{"pod", "b"}}))})};  // would restrict egress if it counted
             return p;
         }()},
         Q("x/a", "z/c", 80),
         {.verdict = "allowed", .egress_allowed = true, .egress_policies = none}},
        // upstream: "should work with Ingress, Egress specified together"
        {"IngressAndEgressTogetherBothChecked",
         {both_policy("x", "both", ml({{"pod", "a"}}), {rule({podp(ml({{"pod", "b"}}))})},
                      {rule({podp(ml({{"pod", "b"}}))})})},
         Q("x/a", "x/c", 80),
         {.verdict = "denied", .egress_allowed = false, .ingress_allowed = true, .egress_policies = S({"x/both"})}},
    };
}
INSTANTIATE_TEST_SUITE_P(Isolation, Conformance, ::testing::ValuesIn(isolation_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Rule shapes and the union of policies
// ---------------------------------------------------------------------------------------------

std::vector<Case> rule_cases() {
    return {
        {"IngressEmptyRuleAllowsAll",
         {to_xa("allow-all", {allow_all()})},
         Q("z/c", "x/a", 81, Protocol::UDP),
         {.verdict = "allowed",
          .ingress_allowed = true,
          .ingress_policies = S({"x/allow-all"}),
          .ingress_allowed_by = S({"x/allow-all"})}},
        {"IngressEmptyRuleAllowsExternalSource",
         {to_xa("allow-all", {allow_all()})},
         Q("203.0.113.5", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/allow-all"})}},
        {"RuleWithoutFromAllowsAllSourcesOnItsPorts",
         {to_xa("p80", {any_peer({tcp(80)})})},
         Q("z/c", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/p80"})}},
        {"RuleWithoutFromStillRestrictsPorts",
         {to_xa("p80", {any_peer({tcp(80)})})},
         Q("z/c", "x/a", 81),
         {.verdict = "denied",
          .ingress_allowed = false,
          .ingress_policies = S({"x/p80"}),
          .ingress_allowed_by = none,
          .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/p80"}}}},
        {"RuleWithoutPortsAllowsAllPorts",
         {to_xa("from-b", {rule({podp(ml({{"pod", "b"}}))})})},
         Q("x/b", "x/a", 9999, Protocol::UDP),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/from-b"})}},
        {"RuleIsPortsAndPeersPortMisses",
         {to_xa("b80", {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)})})},
         Q("x/b", "x/a", 81),
         {.verdict = "denied",
          .ingress_allowed = false,
          .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/b80"}}}},
        {"RuleIsPortsAndPeersPeerMisses",
         {to_xa("b80", {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)})})},
         Q("x/c", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false, .no_hints = {hint::kPortNotAllowed}}},
        // Two rules are ORed; each rule is peers AND ports: (b, 80) or (c, 81).
        {"RulesAreOredPortOfOtherRuleDoesNotLeak",
         {to_xa("two-rules",
                {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)}), rule({podp(ml({{"pod", "c"}}))}, {tcp(81)})})},
         Q("x/b", "x/a", 81),
         {.verdict = "denied", .ingress_allowed = false}},
        {"RulesAreOredSecondRuleAllows",
         {to_xa("two-rules",
                {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)}), rule({podp(ml({{"pod", "c"}}))}, {tcp(81)})})},
         Q("x/c", "x/a", 81),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/two-rules"})}},
        {"PeersInOneRuleAreOred",
         {to_xa("b-or-c", {rule({podp(ml({{"pod", "b"}})), podp(ml({{"pod", "c"}}))})})},
         Q("x/c", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/b-or-c"})}},
        // Union of policies: isolating policies listed sorted by "ns/name" whatever the input order;
        // allowed_by lists exactly the policies with a matching rule.
        {"UnionOfPoliciesEitherAllows",
         {to_xa("zeta-from-c", {rule({podp(ml({{"pod", "c"}}))})}),
          to_xa("alpha-from-b", {rule({podp(ml({{"pod", "b"}}))})}), to_xa("mid-deny", {})},
         Q("x/c", "x/a", 80),
         {.verdict = "allowed",
          .ingress_allowed = true,
          .ingress_policies = S({"x/alpha-from-b", "x/mid-deny", "x/zeta-from-c"}),
          .ingress_allowed_by = S({"x/zeta-from-c"})}},
        {"UnionAllowedByListsEveryMatchingPolicy",
         {to_xa("zeta-any", {allow_all()}), to_xa("alpha-from-b", {rule({podp(ml({{"pod", "b"}}))})}),
          to_xa("mid-from-c", {rule({podp(ml({{"pod", "c"}}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed",
          .ingress_policies = S({"x/alpha-from-b", "x/mid-from-c", "x/zeta-any"}),
          .ingress_allowed_by = S({"x/alpha-from-b", "x/zeta-any"})}},
        {"UnionNoPolicyAllowsIsDenied",
         {to_xa("zeta-from-c", {rule({podp(ml({{"pod", "c"}}))})}),
          to_xa("alpha-from-b", {rule({podp(ml({{"pod", "b"}}))})})},
         Q("x/d", "x/a", 80),
         {.verdict = "denied",
          .ingress_allowed = false,
          .ingress_policies = S({"x/alpha-from-b", "x/zeta-from-c"}),
          .ingress_allowed_by = none,
          .no_hints = {hint::kDefaultDeny}}},
        // upstream: "should enforce multiple egress policies with egress allow-all policy taking precedence"
        {"EgressAllowAllTakesPrecedence",
         {from_xa("only-80", {any_peer({tcp(80)})}), from_xa("allow-all", {allow_all()})},
         Q("x/a", "y/b", 81),
         {.verdict = "allowed",
          .egress_allowed = true,
          .egress_policies = S({"x/allow-all", "x/only-80"}),
          .egress_allowed_by = S({"x/allow-all"})}},
        // upstream: "should enforce multiple ingress policies with ingress allow-all policy taking
        // precedence"
        {"IngressAllowAllTakesPrecedence",
         {to_xa("only-80", {any_peer({tcp(80)})}), to_xa("allow-all", {allow_all()})},
         Q("y/b", "x/a", 81),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/allow-all"})}},
    };
}
INSTANTIATE_TEST_SUITE_P(Rules, Conformance, ::testing::ValuesIn(rule_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Peers: podSelector / namespaceSelector scoping
// ---------------------------------------------------------------------------------------------

std::vector<Case> peer_cases() {
    const auto pod_b_alone = to_xa("from-b", {rule({podp(ml({{"pod", "b"}}))})});
    const auto ns_y_alone = to_xa("from-ns-y", {rule({nsp(ml({{"ns", "y"}}))})});
    const auto and_peer = to_xa("y-and-b", {rule({nspod(ml({{"ns", "y"}}), ml({{"pod", "b"}}))})});
    const auto or_peers = to_xa("y-or-b", {rule({nsp(ml({{"ns", "y"}})), podp(ml({{"pod", "b"}}))})});
    return {
        {"PodSelectorAloneSameNamespaceAllowed", {pod_b_alone}, Q("x/b", "x/a", 80), {.verdict = "allowed"}},
        // A podSelector without namespaceSelector selects pods in the policy's namespace only.
        {"PodSelectorAloneOtherNamespaceDenied",
         {pod_b_alone},
         Q("y/b", "x/a", 80),
         {.verdict = "denied",
          .ingress_allowed = false,
          .ingress_policies = S({"x/from-b"}),
          .hints = {{hint::kNamespaceScope, Direction::Ingress, "x/from-b"}}}},
        {"NamespaceSelectorAloneAllPodsOfMatchingNamespace", {ns_y_alone}, Q("y/c", "x/a", 80), {.verdict = "allowed"}},
        {"NamespaceSelectorAloneOtherNamespaceDenied",
         {ns_y_alone},
         Q("z/c", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"NamespaceSelectorAloneExcludesOwnNamespaceWhenNotMatching",
         {ns_y_alone},
         Q("x/b", "x/a", 80),
         {.verdict = "denied"}},
        // Both selectors in ONE peer: AND.
        {"NsAndPodInOnePeerBothMatch", {and_peer}, Q("y/b", "x/a", 80), {.verdict = "allowed"}},
        {"NsAndPodInOnePeerPodMisses", {and_peer}, Q("y/c", "x/a", 80), {.verdict = "denied"}},
        {"NsAndPodInOnePeerNamespaceMisses", {and_peer}, Q("z/b", "x/a", 80), {.verdict = "denied"}},
        {"NsAndPodInOnePeerOwnNamespaceMisses", {and_peer}, Q("x/b", "x/a", 80), {.verdict = "denied"}},
        // Two list items: OR, and the podSelector item keeps its own-namespace scope.
        {"NsOrPodTwoPeersNamespaceItemAllows", {or_peers}, Q("y/c", "x/a", 80), {.verdict = "allowed"}},
        {"NsOrPodTwoPeersPodItemAllowsOwnNamespace", {or_peers}, Q("x/b", "x/a", 80), {.verdict = "allowed"}},
        {"NsOrPodTwoPeersPodItemDoesNotReachOtherNamespaces", {or_peers}, Q("z/b", "x/a", 80), {.verdict = "denied"}},
        {"NsOrPodTwoPeersNeitherMatches", {or_peers}, Q("z/c", "x/a", 80), {.verdict = "denied"}},
        // Same two shapes, written as two separate rules (each with one peer): also OR.
        {"TwoRulesNsAndPodAreOred",
         {to_xa("two-rules", {rule({nsp(ml({{"ns", "y"}}))}), rule({podp(ml({{"pod", "b"}}))})})},
         Q("y/c", "x/a", 80),
         {.verdict = "allowed"}},
        {"NamespaceSelectorEmptyAllNamespaces",
         {to_xa("any-ns", {rule({nsp(all())})})},
         Q("z/c", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/any-ns"})}},
        {"NamespaceSelectorEmptyIncludesOwnNamespace",
         {to_xa("any-ns", {rule({nsp(all())})})},
         Q("x/d", "x/a", 80),
         {.verdict = "allowed"}},
        {"NamespaceSelectorEmptyStillNeedsAPod",
         {to_xa("any-ns", {rule({nsp(all())})})},
         Q("203.0.113.5", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"NamespaceSelectorEmptyAndPodSelectorAnyNamespace",
         {to_xa("b-anywhere", {rule({nspod(all(), ml({{"pod", "b"}}))})})},
         Q("z/b", "x/a", 80),
         {.verdict = "allowed"}},
        {"NamespaceSelectorEmptyAndPodSelectorPodMisses",
         {to_xa("b-anywhere", {rule({nspod(all(), ml({{"pod", "b"}}))})})},
         Q("z/c", "x/a", 80),
         {.verdict = "denied"}},
        {"PodSelectorEmptyAloneOwnNamespace",
         {to_xa("same-ns", {rule({podp(all())})})},
         Q("x/c", "x/a", 80),
         {.verdict = "allowed"}},
        {"PodSelectorEmptyAloneNotOtherNamespace",
         {to_xa("same-ns", {rule({podp(all())})})},
         Q("y/c", "x/a", 80),
         {.verdict = "denied"}},
        // kubernetes.io/metadata.name is set on every namespace (here: none of the namespace
        // objects carry it, and namespace "w" has no object at all).
        {"MetadataNameLabelIsImplicit",
         {to_xa("by-name", {rule({nsp(ml({{"kubernetes.io/metadata.name", "y"}}))})})},
         Q("y/a", "x/a", 80),
         {.verdict = "allowed"}},
        {"MetadataNameLabelForNamespaceWithoutObject",
         {to_xa("by-name", {rule({nsp(ml({{"kubernetes.io/metadata.name", "w"}}))})})},
         Q("w/p", "x/a", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             o.pods.push_back(pod("w", "p", {{"pod", "p"}}, {"10.0.7.1"}, "n2"));
         }},
        // The API server forces the label to the namespace's name.
        {"MetadataNameLabelCannotBeSpoofed",
         {to_xa("by-name", {rule({nsp(ml({{"kubernetes.io/metadata.name", "x"}}))})})},
         Q("y/a", "x/a", 80),
         {.verdict = "denied"},
         [](ClusterObjects& o) {
             for (auto& ns : o.namespaces)
                 if (ns.name == "y") ns.labels = {{"kubernetes.io/metadata.name", "x"}, {"ns", "y"}};
         }},
        // upstream: "should enforce policy based on NamespaceSelector with MatchExpressions using default ns
        // label"
        {"NamespaceMatchExpressionsDefaultLabelNotIn",
         {to_xa("not-y", {rule({nsp(sel({}, {req("kubernetes.io/metadata.name", Op::NotIn, {"y"})}))})})},
         Q("z/a", "x/a", 80),
         {.verdict = "allowed"}},
        {"NamespaceMatchExpressionsDefaultLabelNotInExcluded",
         {to_xa("not-y", {rule({nsp(sel({}, {req("kubernetes.io/metadata.name", Op::NotIn, {"y"})}))})})},
         Q("y/a", "x/a", 80),
         {.verdict = "denied"}},
        // upstream: "should enforce policy based on NamespaceSelector with MatchExpressions" (In)
        {"NamespaceMatchExpressionsInSeveral",
         {from_xa("to-y-z", {rule({nsp(sel({}, {req("kubernetes.io/metadata.name", Op::In, {"y", "z"})}))})})},
         Q("x/a", "z/c", 80),
         {.verdict = "allowed"}},
        {"NamespaceMatchExpressionsInSeveralOwnNamespaceNot",
         {from_xa("to-y-z", {rule({nsp(sel({}, {req("kubernetes.io/metadata.name", Op::In, {"y", "z"})}))})})},
         Q("x/a", "x/c", 80),
         {.verdict = "denied"}},
        // ipBlock and selector peers in one rule are ORed.
        {"IpBlockOrSelectorPeerIpBlockSide",
         {to_xa("mixed", {rule({ipb("203.0.113.0/24"), podp(ml({{"pod", "b"}}))})})},
         Q("203.0.113.8", "x/a", 80),
         {.verdict = "allowed"}},
        {"IpBlockOrSelectorPeerSelectorSide",
         {to_xa("mixed", {rule({ipb("203.0.113.0/24"), podp(ml({{"pod", "b"}}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed"}},
        {"IpBlockOrSelectorPeerNeither",
         {to_xa("mixed", {rule({ipb("203.0.113.0/24"), podp(ml({{"pod", "b"}}))})})},
         Q("x/c", "x/a", 80),
         {.verdict = "denied"}},
        // Egress with both selectors (upstream: "should enforce egress policy allowing traffic to a
        // server in a different namespace based on PodSelector and NamespaceSelector").
        {"EgressNsAndPodInOnePeer",
         {from_xa("to-y-b", {rule({nspod(ml({{"ns", "y"}}), ml({{"pod", "b"}}))})})},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed", .egress_allowed_by = S({"x/to-y-b"})}},
        {"EgressNsAndPodInOnePeerOtherPodDenied",
         {from_xa("to-y-b", {rule({nspod(ml({{"ns", "y"}}), ml({{"pod", "b"}}))})})},
         Q("x/a", "y/c", 80),
         {.verdict = "denied", .egress_allowed = false, .ingress_allowed = true}},
        {"EgressPodSelectorAloneOwnNamespaceOnly",
         {from_xa("to-b", {rule({podp(ml({{"pod", "b"}}))})})},
         Q("x/a", "z/b", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kNamespaceScope, Direction::Egress, "x/to-b"}}}},
    };
}
INSTANTIATE_TEST_SUITE_P(Peers, Conformance, ::testing::ValuesIn(peer_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Label selector operators
// ---------------------------------------------------------------------------------------------

std::vector<Case> selector_cases() {
    auto in_web_db = to_xa("in", {rule({podp(sel({}, {req("app", Op::In, {"web", "db"})}))})});
    auto notin_web = to_xa("notin", {rule({podp(sel({}, {req("app", Op::NotIn, {"web"})}))})});
    auto exists_tier = to_xa("exists", {rule({podp(sel({}, {req("tier", Op::Exists)}))})});
    auto dne_app = to_xa("dne", {rule({podp(sel({}, {req("app", Op::DoesNotExist)}))})});
    return {
        {"InFirstValue", {in_web_db}, Q("x/b", "x/a", 80), {.verdict = "allowed"}},
        {"InSecondValue", {in_web_db}, Q("x/c", "x/a", 80), {.verdict = "allowed"}},
        {"InKeyAbsent", {in_web_db}, Q("x/d", "x/a", 80), {.verdict = "denied"}},
        {"NotInOtherValue", {notin_web}, Q("x/c", "x/a", 80), {.verdict = "allowed"}},
        {"NotInMatchesPodsWithoutTheKey", {notin_web}, Q("x/d", "x/a", 80), {.verdict = "allowed"}},
        {"NotInListedValue", {notin_web}, Q("x/b", "x/a", 80), {.verdict = "denied"}},
        {"ExistsPresent", {exists_tier}, Q("x/b", "x/a", 80), {.verdict = "allowed"}},
        {"ExistsAbsent", {exists_tier}, Q("x/c", "x/a", 80), {.verdict = "denied"}},
        {"DoesNotExistAbsent", {dne_app}, Q("x/d", "x/a", 80), {.verdict = "allowed"}},
        {"DoesNotExistPresent", {dne_app}, Q("x/b", "x/a", 80), {.verdict = "denied"}},
        {"MatchLabelsAndExpressionsBothHold",
         {to_xa("and", {rule({podp(sel({{"app", "web"}}, {req("tier", Op::In, {"frontend", "edge"})}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed"}},
        {"MatchLabelsAndExpressionsExpressionFails",
         {to_xa("and", {rule({podp(sel({{"app", "web"}}, {req("tier", Op::In, {"backend"})}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied"}},
        {"MatchLabelsAndExpressionsLabelFails",
         {to_xa("and", {rule({podp(sel({{"app", "db"}}, {req("tier", Op::Exists)}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied"}},
        {"MatchLabelsMultipleKeysAnded",
         {to_xa("and", {rule({podp(ml({{"app", "web"}, {"pod", "c"}}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied"}},
        // An empty label value is a value: it matches pods carrying the key with "" only.
        {"EmptyLabelValueMatchesEmptyValue",
         {to_xa("empty-env", {rule({podp(ml({{"env", ""}}))})})},
         Q("x/e", "x/a", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             o.pods.push_back(pod("x", "e", {{"env", ""}, {"pod", "e"}}, {"10.0.1.5"}, "n2"));
         }},
        {"EmptyLabelValueDoesNotMatchMissingKey",
         {to_xa("empty-env", {rule({podp(ml({{"env", ""}}))})})},
         Q("x/d", "x/a", 80),
         {.verdict = "denied"}},
        {"NamespaceSelectorExistsOnNamespaceLabel",
         {to_xa("ns-labelled", {rule({nsp(sel({}, {req("ns", Op::Exists)}))})})},
         Q("z/a", "x/a", 80),
         {.verdict = "allowed"}},
        {"NamespaceSelectorExistsNamespaceWithoutLabel",
         {to_xa("ns-labelled", {rule({nsp(sel({}, {req("ns", Op::Exists)}))})})},
         Q("monitoring/prom", "x/a", 80),
         {.verdict = "denied"}},
        // The policy's own podSelector uses the same operators.
        {"PolicyPodSelectorNotInSelectsPodsWithoutKey",
         {ingress_policy("x", "deny-not-web", sel({}, {req("app", Op::NotIn, {"web"})}), {})},
         Q("x/b", "x/d", 80),
         {.verdict = "denied", .ingress_policies = S({"x/deny-not-web"})}},
        {"PolicyPodSelectorNotInSkipsListedValue",
         {ingress_policy("x", "deny-not-web", sel({}, {req("app", Op::NotIn, {"web"})}), {})},
         Q("x/a", "x/b", 80),
         {.verdict = "allowed", .ingress_policies = none}},
    };
}
INSTANTIATE_TEST_SUITE_P(Selectors, Conformance, ::testing::ValuesIn(selector_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// ipBlock
// ---------------------------------------------------------------------------------------------

std::vector<Case> ipblock_cases() {
    const auto ext = to_xa("ext", {rule({ipb("203.0.113.0/24", {"203.0.113.0/28"})})});
    return {
        {"CidrContainsExternalSource",
         {ext},
         Q("203.0.113.100", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/ext"})}},
        {"CidrDoesNotContainSource",
         {ext},
         Q("198.51.100.1", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false, .no_hints = {hint::kIpBlockExcept}}},
        {"ExceptExcludesSource",
         {ext},
         Q("203.0.113.5", "x/a", 80),
         {.verdict = "denied",
          .ingress_allowed = false,
          .hints = {{hint::kIpBlockExcept, Direction::Ingress, "x/ext"}}}},
        {"ExceptBoundaryLastAddressExcluded", {ext}, Q("203.0.113.15", "x/a", 80), {.verdict = "denied"}},
        {"ExceptBoundaryFirstAddressAfterAllowed", {ext}, Q("203.0.113.16", "x/a", 80), {.verdict = "allowed"}},
        // upstream: "should allow egress access to server in CIDR block" (a pod IP /32).
        {"IpBlockMatchesPodIpEgress",
         {from_xa("to-yb", {rule({ipb("10.0.2.2/32")})})},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed", .egress_allowed_by = S({"x/to-yb"})}},
        {"IpBlockPodIpOtherPodDenied",
         {from_xa("to-yb", {rule({ipb("10.0.2.2/32")})})},
         Q("x/a", "y/c", 80),
         {.verdict = "denied", .egress_allowed = false}},
        {"IpBlockMatchesPodIpIngress",
         {to_xa("from-yb", {rule({ipb("10.0.2.2/32")})})},
         Q("y/b", "x/a", 80),
         {.verdict = "allowed"}},
        // upstream: "should enforce except clause while egress access to server in CIDR block": the
        // cidr is x/a's IP with /4 (host bits set), the except is x/b's IP /32.
        {"ExceptClausePodIpEgressDenied",
         {from_xa("cidr-except", {rule({ipb("10.0.1.1/4", {"10.0.1.2/32"})})})},
         Q("x/a", "x/b", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kIpBlockExcept, Direction::Egress, "x/cidr-except"}}}},
        {"ExceptClausePodIpEgressOthersAllowed",
         {from_xa("cidr-except", {rule({ipb("10.0.1.1/4", {"10.0.1.2/32"})})})},
         Q("x/a", "x/c", 80),
         {.verdict = "allowed"}},
        // upstream: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed"
        {"IpInOnePeersExceptButAnotherPeersCidrIsAllowed",
         {from_xa("overlap", {rule({ipb("10.0.1.1/4", {"10.0.1.2/32"}), ipb("10.0.1.2/32")})})},
         Q("x/a", "x/b", 80),
         {.verdict = "allowed", .egress_allowed_by = S({"x/overlap"}), .no_hints = {hint::kIpBlockExcept}}},
        // A CIDR written with host bits set is the masked block.
        {"CidrWithHostBitsIsMasked",
         {to_xa("hostbits", {rule({ipb("203.0.113.77/24")})})},
         Q("203.0.113.1", "x/a", 80),
         {.verdict = "allowed"}},
        {"Ipv6CidrContains",
         {to_xa("v6", {rule({ipb("2001:db8:1::/64")})})},
         Q("2001:db8:1::42", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/v6"})}},
        {"Ipv6CidrDoesNotContain",
         {to_xa("v6", {rule({ipb("2001:db8:1::/64")})})},
         Q("2001:db8:2::42", "x/a", 80),
         {.verdict = "denied"}},
        {"Ipv6Except",
         {to_xa("v6", {rule({ipb("2001:db8:1::/64", {"2001:db8:1::/120"})})})},
         Q("2001:db8:1::42", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kIpBlockExcept, Direction::Ingress, "x/v6"}}}},
        // Families never cross: 0.0.0.0/0 is not every IPv6 address, ::/0 is not every IPv4 one.
        {"Ipv4AllDoesNotMatchIpv6",
         {to_xa("all-v4", {rule({ipb("0.0.0.0/0")})})},
         Q("2001:db8:1::42", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"Ipv6AllDoesNotMatchIpv4",
         {to_xa("all-v6", {rule({ipb("::/0")})})},
         Q("203.0.113.1", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"Ipv4AllMatchesIpv4",
         {to_xa("all-v4", {rule({ipb("0.0.0.0/0")})})},
         Q("203.0.113.1", "x/a", 80),
         {.verdict = "allowed"}},
        // Egress to the internet except the metadata service.
        {"EgressAllExceptMetadataDenied",
         {from_xa("no-imds", {rule({ipb("0.0.0.0/0", {"169.254.169.254/32"})})})},
         Q("x/a", "169.254.169.254", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .ingress_allowed = true,
          .hints = {{hint::kIpBlockExcept, Direction::Egress, "x/no-imds"}}}},
        {"EgressAllExceptMetadataInternetAllowed",
         {from_xa("no-imds", {rule({ipb("0.0.0.0/0", {"169.254.169.254/32"})})})},
         Q("x/a", "1.1.1.1", 443),
         {.verdict = "allowed"}},
    };
}
INSTANTIATE_TEST_SUITE_P(IpBlock, Conformance, ::testing::ValuesIn(ipblock_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Ports and protocols
// ---------------------------------------------------------------------------------------------

std::vector<Case> port_cases() {
    const auto rng = to_xa("range", {any_peer({range(Protocol::TCP, 8000, 8010)})});
    return {
        {"ProtocolDefaultsToTcpAllowsTcp",
         {to_xa("p", {any_peer({default_port(80)})})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed"}},
        {"ProtocolDefaultsToTcpNotUdp",
         {to_xa("p", {any_peer({default_port(80)})})},
         Q("x/b", "x/a", 80, Protocol::UDP),
         {.verdict = "denied", .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/p"}}}},
        {"UdpPortAllowsUdp",
         {to_xa("dns", {any_peer({udp(53)})})},
         Q("x/b", "x/a", 53, Protocol::UDP),
         {.verdict = "allowed"}},
        {"UdpPortDoesNotAllowTcp",
         {to_xa("dns", {any_peer({udp(53)})})},
         Q("x/b", "x/a", 53),
         {.verdict = "denied", .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/dns"}}}},
        // upstream: "should not allow access by TCP when a policy specifies only SCTP"
        {"SctpPortAllowsSctp",
         {to_xa("sctp", {any_peer({sctp(80)})})},
         Q("x/b", "x/a", 80, Protocol::SCTP),
         {.verdict = "allowed"}},
        {"SctpPortDoesNotAllowTcp",
         {to_xa("sctp", {any_peer({sctp(80)})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"EndPortEqualToPortIsThatPortOnly",
         {to_xa("one", {any_peer({range(Protocol::TCP, 8080, 8080)})})},
         Q("x/b", "x/a", 8081),
         {.verdict = "denied"}},
        {"EndPortEqualToPortAllowsIt",
         {to_xa("one", {any_peer({range(Protocol::TCP, 8080, 8080)})})},
         Q("x/b", "x/a", 8080),
         {.verdict = "allowed"}},
        {"EndPortRangeLowerBoundInclusive", {rng}, Q("x/b", "x/a", 8000), {.verdict = "allowed"}},
        {"EndPortRangeUpperBoundInclusive", {rng}, Q("x/b", "x/a", 8010), {.verdict = "allowed"}},
        {"EndPortRangeInside", {rng}, Q("x/b", "x/a", 8005), {.verdict = "allowed"}},
        {"EndPortRangeBelow",
         {rng},
         Q("x/b", "x/a", 7999),
         {.verdict = "denied", .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/range"}}}},
        {"EndPortRangeAbove", {rng}, Q("x/b", "x/a", 8011), {.verdict = "denied"}},
        {"EndPortRangeOtherProtocol", {rng}, Q("x/b", "x/a", 8005, Protocol::UDP), {.verdict = "denied"}},
        // upstream: "should enforce ingress policy allowing any port traffic to a server on a specific
        // protocol"
        {"ProtocolWithoutPortAllowsEveryPortOfIt",
         {to_xa("all-udp", {any_peer({any_port(Protocol::UDP)})})},
         Q("x/b", "x/a", 12345, Protocol::UDP),
         {.verdict = "allowed"}},
        {"ProtocolWithoutPortNotOtherProtocols",
         {to_xa("all-udp", {any_peer({any_port(Protocol::UDP)})})},
         Q("x/b", "x/a", 12345),
         {.verdict = "denied"}},
        // Other protocols (ICMP): NetworkPolicy is defined for TCP/UDP/SCTP and leaves the rest to
        // the plugin; the common behaviour, which the engine documents, is that only a rule without
        // ports can allow them, while isolation still denies them.
        {"IcmpNotIsolatedAllowed", {}, Q("x/b", "x/a", 0, Protocol::ICMP), {.verdict = "allowed"}},
        {"IcmpAllowedByRuleWithoutPorts",
         {to_xa("from-b", {rule({podp(ml({{"pod", "b"}}))})})},
         Q("x/b", "x/a", 0, Protocol::ICMP),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/from-b"})}},
        {"IcmpNotAllowedByRuleWithPorts",
         {to_xa("b-80", {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)})})},
         Q("x/b", "x/a", 0, Protocol::ICMP),
         {.verdict = "denied", .ingress_allowed = false}},
        {"IcmpDeniedByDefaultDeny",
         {deny_all_ingress("x")},
         Q("x/b", "x/a", 0, Protocol::ICMP),
         {.verdict = "denied", .ingress_allowed = false}},
        {"SeveralPortEntriesAreOred",
         {to_xa("multi", {any_peer({tcp(80), udp(53)})})},
         Q("x/b", "x/a", 53, Protocol::UDP),
         {.verdict = "allowed"}},
        {"SeveralPortEntriesNoneMatches",
         {to_xa("multi", {any_peer({tcp(80), udp(53)})})},
         Q("x/b", "x/a", 53),
         {.verdict = "denied"}},
        {"EgressPortNotAllowedHint",
         {from_xa("to-b-80", {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)})})},
         Q("x/a", "x/b", 81),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kPortNotAllowed, Direction::Egress, "x/to-b-80"}}}},
    };
}
INSTANTIATE_TEST_SUITE_P(Ports, Conformance, ::testing::ValuesIn(port_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Named ports: resolved on the destination pod, by name and protocol
// ---------------------------------------------------------------------------------------------

std::vector<Case> named_port_cases() {
    // x/a http=7070, x/b http=8080, x/c http=9090, y/b http=8080, y/c http=9090.
    const auto eg_http = from_xa("to-http", {rule({podp(all())}, {named("http")})});
    const auto in_http_bc =
        ingress_policy("x", "in-http", sel({}, {req("pod", Op::In, {"b", "c"})}), {any_peer({named("http")})});
    return {
        {"IngressNamedPortResolvedOnSelectedPod",
         {to_xa("serve80", {any_peer({named("serve-80-tcp")})})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed"}},
        {"IngressNamedPortOtherNumberDenied",
         {to_xa("serve80", {any_peer({named("serve-80-tcp")})})},
         Q("x/b", "x/a", 81),
         {.verdict = "denied"}},
        // upstream: "should allow ingress access from namespace on one named port"
        {"IngressNamedPortFromNamespace",
         {to_xa("ns-y-80", {rule({nsp(ml({{"ns", "y"}}))}, {named("serve-80-tcp")})})},
         Q("y/c", "x/a", 80),
         {.verdict = "allowed"}},
        {"IngressNamedPortFromNamespaceOtherNamespace",
         {to_xa("ns-y-80", {rule({nsp(ml({{"ns", "y"}}))}, {named("serve-80-tcp")})})},
         Q("z/c", "x/a", 80),
         {.verdict = "denied"}},
        // Named port by name AND protocol: serve-80-udp is a UDP port.
        {"NamedPortProtocolMustMatchUdp",
         {to_xa("udp80", {any_peer({named("serve-80-udp", Protocol::UDP)})})},
         Q("x/b", "x/a", 80, Protocol::UDP),
         {.verdict = "allowed"}},
        {"NamedPortProtocolMustMatchTcpOnUdpName",
         {to_xa("udp80-as-tcp", {any_peer({named("serve-80-udp")})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        {"NamedPortUnresolvedHint",
         {to_xa("metrics", {any_peer({named("metrics")})})},
         Q("x/b", "x/a", 9100),
         {.verdict = "denied", .hints = {{hint::kNamedPortUnresolved, Direction::Ingress, "x/metrics"}}}},
        {"NamedSctpPort",
         {to_xa("sctp80", {any_peer({named("serve-80-sctp", Protocol::SCTP)})})},
         Q("x/b", "x/a", 80, Protocol::SCTP),
         {.verdict = "allowed"}},
        // Ingress: the selected (destination) pod's definition, not the source's.
        {"IngressSameNameDifferentNumbersPerPodB", {in_http_bc}, Q("x/a", "x/b", 8080), {.verdict = "allowed"}},
        {"IngressSameNameDifferentNumbersPerPodC", {in_http_bc}, Q("x/a", "x/c", 9090), {.verdict = "allowed"}},
        {"IngressSameNameOtherPodsNumberDenied", {in_http_bc}, Q("x/a", "x/c", 8080), {.verdict = "denied"}},
        {"IngressSourcePodsDefinitionIgnored", {in_http_bc}, Q("x/a", "x/b", 7070), {.verdict = "denied"}},
        // Egress: the peer (destination) pod's definition, not the selected source's (x/a http=7070).
        {"EgressNamedPortResolvedOnPeerB", {eg_http}, Q("x/a", "x/b", 8080), {.verdict = "allowed"}},
        {"EgressNamedPortResolvedOnPeerC", {eg_http}, Q("x/a", "x/c", 9090), {.verdict = "allowed"}},
        {"EgressNamedPortPeerOtherNumberDenied", {eg_http}, Q("x/a", "x/c", 8080), {.verdict = "denied"}},
        {"EgressNamedPortSourceDefinitionIgnored", {eg_http}, Q("x/a", "x/b", 7070), {.verdict = "denied"}},
        {"EgressNamedPortPeerWithoutItDenied",
         {eg_http},
         Q("x/a", "x/d", 8080),
         {.verdict = "denied", .hints = {{hint::kNamedPortUnresolved, Direction::Egress, "x/to-http"}}}},
        // A named port towards a non-pod IP never matches, whatever the number.
        {"EgressNamedPortToExternalIpNeverMatches",
         {from_xa("ext-http", {rule({ipb("0.0.0.0/0")}, {named("http")})})},
         Q("x/a", "203.0.113.9", 8080),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kNamedPortUnresolved, Direction::Egress, "x/ext-http"}}}},
        {"EgressNamedPortToExternalIpSameNumberAsSourceNeverMatches",
         {from_xa("ext-http", {rule({ipb("0.0.0.0/0")}, {named("http")})})},
         Q("x/a", "203.0.113.9", 7070),
         {.verdict = "denied"}},
        // A numeric entry next to the named one still works for external IPs.
        {"EgressNamedAndNumericPortsExternalNumeric",
         {from_xa("ext-http", {rule({ipb("0.0.0.0/0")}, {named("http"), tcp(443)})})},
         Q("x/a", "203.0.113.9", 443),
         {.verdict = "allowed"}},
    };
}
INSTANTIATE_TEST_SUITE_P(NamedPorts, Conformance, ::testing::ValuesIn(named_port_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Both ends; non-pod ends; self; node; hostNetwork; dual-stack
// ---------------------------------------------------------------------------------------------

std::vector<Case> endpoint_cases() {
    const auto lock_xa = both_policy("x", "lock-a", ml({{"pod", "a"}}), {}, {});
    return {
        // upstream: "should support denying of egress traffic on the client side (even if the server
        // explicitly allows this traffic)"
        {"EgressDeniedEvenIfIngressAllows",
         {deny_all_egress("x", "deny-egress-a", ml({{"pod", "a"}})),
          ingress_policy("y", "allow-all-to-b", ml({{"pod", "b"}}), {allow_all()})},
         Q("x/a", "y/b", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .ingress_allowed = true,
          .egress_policies = S({"x/deny-egress-a"}),
          .ingress_policies = S({"y/allow-all-to-b"}),
          .ingress_allowed_by = S({"y/allow-all-to-b"})}},
        {"IngressDeniedEvenIfEgressAllows",
         {from_xa("allow-all-from-a", {allow_all()}), deny_all_ingress("y", "deny-b", ml({{"pod", "b"}}))},
         Q("x/a", "y/b", 80),
         {.verdict = "denied",
          .egress_allowed = true,
          .ingress_allowed = false,
          .ingress_policies = S({"y/deny-b"}),
          .egress_allowed_by = S({"x/allow-all-from-a"})}},
        {"BothSidesAllow",
         {from_xa("to-y", {rule({nsp(ml({{"ns", "y"}}))})}),
          ingress_policy("y", "from-x", ml({{"pod", "b"}}), {rule({nsp(ml({{"ns", "x"}}))})})},
         Q("x/a", "y/b", 80),
         {.verdict = "allowed", .egress_allowed_by = S({"x/to-y"}), .ingress_allowed_by = S({"y/from-x"})}},
        // An external source is not a pod: nothing isolates its egress.
        {"ExternalSourceEgressNotIsolated",
         {deny_all_egress("x"), to_xa("allow-all", {allow_all()})},
         Q("203.0.113.9", "x/a", 80),
         {.verdict = "allowed", .egress_allowed = true, .egress_policies = none}},
        // An external destination is not a pod: nothing isolates its ingress.
        {"ExternalDestinationIngressNotIsolated",
         {deny_all_ingress("x")},
         Q("x/a", "203.0.113.9", 443),
         {.verdict = "allowed", .ingress_allowed = true, .ingress_policies = none}},
        {"EgressToExternalDenied",
         {deny_all_egress("x")},
         Q("x/a", "203.0.113.9", 443),
         {.verdict = "denied", .egress_allowed = false, .ingress_allowed = true}},
        // A pod cannot block traffic to itself.
        {"PodToItselfAlwaysAllowed",
         {lock_xa},
         Q("x/a", "x/a", 80),
         {.verdict = "allowed", .egress_allowed = true, .ingress_allowed = true}},
        // Traffic to and from the node where the pod runs is always allowed.
        {"PodToOwnNodeAllowed", {lock_xa}, Q("x/a", "10.1.0.1", 10250), {.verdict = "allowed", .egress_allowed = true}},
        {"OwnNodeToPodAllowed", {lock_xa}, Q("10.1.0.1", "x/a", 80), {.verdict = "allowed", .ingress_allowed = true}},
        {"OtherNodeToPodDenied",
         {lock_xa},
         Q("10.1.0.2", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false, .ingress_policies = S({"x/lock-a"})}},
        {"PodToOtherNodeDenied",
         {lock_xa},
         Q("x/a", "10.1.0.2", 10250),
         {.verdict = "denied", .egress_allowed = false}},
        // The node is known from the Node object (InternalIP) when the pod has no status.hostIP.
        {"OwnNodeViaNodeObjectWithoutHostIp",
         {deny_all_ingress("x", "lock-e", ml({{"pod", "e"}}))},
         Q("10.1.0.1", "x/e", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             auto e = pod("x", "e", {{"pod", "e"}}, {"10.0.1.5"}, "");
             e.node = "n1";
             e.host_ip.reset();
             o.pods.push_back(std::move(e));
         }},
        // ... and from status.hostIP when there is no Node object.
        {"OwnNodeViaHostIpWithoutNodeObject",
         {deny_all_ingress("x", "lock-e", ml({{"pod", "e"}}))},
         Q("10.1.0.9", "x/e", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             auto e = pod("x", "e", {{"pod", "e"}}, {"10.0.1.5"}, "");
             e.node = "n9";
             e.host_ip = ip("10.1.0.9");
             o.pods.push_back(std::move(e));
         }},
        // hostNetwork pods: not selected by policies (never isolated) ...
        {"HostNetworkPodNotIsolatedForIngress",
         {deny_all_ingress("x")},
         Q("x/a", "x/h", 80),
         {.verdict = "allowed", .ingress_allowed = true, .ingress_policies = none}},
        {"HostNetworkPodNotIsolatedForEgress",
         {deny_all_egress("x")},
         Q("x/h", "z/a", 80),
         {.verdict = "allowed", .egress_allowed = true, .egress_policies = none}},
        // ... not matched by pod/namespace selectors (x/h on n2, x/a on n1) ...
        {"HostNetworkPodNotMatchedByPodSelector",
         {to_xa("same-ns", {rule({podp(all())})})},
         Q("x/h", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false, .hints = {{hint::kNotAPod, Direction::Ingress, "x/same-ns"}}}},
        {"HostNetworkPodNotMatchedByNamespaceSelector",
         {to_xa("any-ns", {rule({nsp(all())})})},
         Q("x/h", "x/a", 80),
         {.verdict = "denied", .ingress_allowed = false}},
        // ... only by an ipBlock holding its (node's) IP.
        {"HostNetworkPodMatchedByIpBlock",
         {to_xa("node-n2", {rule({ipb("10.1.0.2/32")})})},
         Q("x/h", "x/a", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"x/node-n2"})}},
        // A hostNetwork pod's traffic is its node's: to a pod on the same node it is always allowed.
        {"HostNetworkPodToPodOnSameNodeAllowed",
         {deny_all_ingress("x", "lock-c", ml({{"pod", "c"}}))},
         Q("x/h", "x/c", 80),
         {.verdict = "allowed", .ingress_allowed = true}},
        // Egress towards a hostNetwork pod: selectors do not match it ...
        {"EgressToHostNetworkPodNotMatchedBySelector",
         {from_xa("to-h", {rule({podp(ml({{"pod", "h"}}))})})},
         Q("x/a", "x/h", 80),
         {.verdict = "denied", .egress_allowed = false}},
        // ... and it is the node: from a pod on that node it is always allowed.
        {"EgressToHostNetworkPodOnOwnNodeAllowed",
         {deny_all_egress("x", "lock-c", ml({{"pod", "c"}}))},
         Q("x/c", "x/h", 80),
         {.verdict = "allowed", .egress_allowed = true}},
        // Any address of the pod's node counts (here an ExternalIP of n1).
        {"OwnNodeOtherAddressAllowed",
         {lock_xa},
         Q("192.0.2.1", "x/a", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             for (auto& n : o.nodes)
                 if (n.name == "n1") n.addresses.push_back(ip("192.0.2.1"));
         }},
        // Dual-stack: pod names use IPv4 unless IPv6 is asked for; ipBlocks never cross families.
        {"DualStackToIpv6OnlyPodUsesIpv6",
         {ingress_policy("x", "from-xa-v6", ml({{"pod", "v6"}}), {rule({ipb("fd00::1:1/128")})})},
         Q("x/a", "x/v6", 80),
         {.verdict = "allowed"},
         [](ClusterObjects& o) {
             o.pods.push_back(pod("x", "v6", {{"pod", "v6"}}, {"fd00::1:9"}, "n2"));
         },
         [](const Explanation& e) { EXPECT_EQ(e.src.ip.str(), "fd00::1:1"); }},
        {"DualStackDefaultIsIpv4",
         {ingress_policy("y", "from-xa-v6", ml({{"pod", "a"}}), {rule({ipb("fd00::1:1/128")})})},
         Q("x/a", "y/a", 80),
         {.verdict = "denied", .ingress_allowed = false},
         nullptr,
         [](const Explanation& e) {
             EXPECT_EQ(e.src.ip.str(), "10.0.1.1");
             EXPECT_EQ(e.dst.ip.str(), "10.0.2.1");
         }},
        {"DualStackIpv6WhenAsked",
         {ingress_policy("y", "from-xa-v6", ml({{"pod", "a"}}), {rule({ipb("fd00::1:1/128")})})},
         Q("x/a", "y/a", 80, Protocol::TCP, IpFamily::V6),
         {.verdict = "allowed", .ingress_allowed_by = S({"y/from-xa-v6"})},
         nullptr,
         [](const Explanation& e) {
             EXPECT_EQ(e.src.ip.str(), "fd00::1:1");
             EXPECT_EQ(e.dst.ip.str(), "fd00::2:1");
         }},
        {"DualStackIpv4BlockDoesNotMatchIpv6",
         {ingress_policy("y", "from-xa-v4", ml({{"pod", "a"}}), {rule({ipb("10.0.1.1/32")})})},
         Q("x/a", "y/a", 80, Protocol::TCP, IpFamily::V6),
         {.verdict = "denied"}},
        {"DualStackIpv6AllowAllEgressIpv6Allowed",
         {from_xa("v6-only", {rule({ipb("::/0")})})},
         Q("x/a", "y/a", 80, Protocol::TCP, IpFamily::V6),
         {.verdict = "allowed"}},
        {"DualStackIpv6AllowAllEgressIpv4Denied",
         {from_xa("v6-only", {rule({ipb("::/0")})})},
         Q("x/a", "y/a", 80),
         {.verdict = "denied", .egress_allowed = false}},
        {"DualStackSelectorsMatchOnEitherFamily",
         {ingress_policy("y", "from-x", ml({{"pod", "a"}}), {rule({nsp(ml({{"ns", "x"}}))})})},
         Q("x/a", "y/a", 80, Protocol::TCP, IpFamily::V6),
         {.verdict = "allowed"}},
        {"Ipv6LiteralsResolveToPods",
         {ingress_policy("y", "from-x", ml({{"pod", "a"}}), {rule({nsp(ml({{"ns", "x"}}))})})},
         Q("fd00::1:1", "fd00::2:1", 80),
         {.verdict = "allowed", .ingress_allowed_by = S({"y/from-x"})},
         nullptr,
         [](const Explanation& e) {
             EXPECT_EQ(e.src.pod, std::optional<std::string>("x/a"));
             EXPECT_EQ(e.dst.pod, std::optional<std::string>("y/a"));
         }},
    };
}
INSTANTIATE_TEST_SUITE_P(Endpoints, Conformance, ::testing::ValuesIn(endpoint_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Services: policies see the endpoints after DNAT
// ---------------------------------------------------------------------------------------------

std::vector<Case> service_cases() {
    const auto to_y_8080 = from_xa("to-y-8080", {rule({nsp(ml({{"ns", "y"}}))}, {tcp(8080)})});
    return {
        {"ServiceAllowedOnTargetPort",
         {to_y_8080},
         Q("x/a", "10.96.0.10", 80),
         {.verdict = "allowed",
          .egress_allowed = true,
          .egress_allowed_by = S({"x/to-y-8080"}),
          .no_hints = {hint::kServiceVipDnat}},
         nullptr,
         [](const Explanation& e) {
             ASSERT_EQ(e.service.size(), 1u);
             EXPECT_EQ(e.service[0].name, "y/web");
             ASSERT_EQ(e.service[0].endpoints.size(), 1u);
             EXPECT_EQ(e.service[0].endpoints[0].dst.pod, std::optional<std::string>("y/b"));
             EXPECT_EQ(e.service[0].endpoints[0].dst.port, 8080);
         }},
        // A rule for the Service port (80) does not allow the target port (8080).
        {"ServicePortInRuleDoesNotAllowTargetPort",
         {from_xa("svc-port", {rule({nspod(ml({{"ns", "y"}}), ml({{"app", "web"}}))}, {tcp(80)})})},
         Q("x/a", "10.96.0.10", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kServiceVipDnat, Direction::Egress, "x/svc-port"}}}},
        // An ipBlock of the ClusterIP never matches: the policy sees the endpoint IP.
        {"ServiceClusterIpInIpBlockDoesNotMatch",
         {from_xa("vip", {rule({ipb("10.96.0.10/32")})})},
         Q("x/a", "10.96.0.10", 80),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kServiceVipDnat, Direction::Egress, "x/vip"}}}},
        // The runbook case: default/kubernetes, endpoints are control-plane IPs (not pods).
        {"RunbookKubernetesServiceVipIpBlockDenied",
         {from_xa("allow-apiserver", {rule({ipb("10.43.0.1/32")}, {tcp(443)})})},
         Q("x/a", "10.43.0.1", 443),
         {.verdict = "denied",
          .egress_allowed = false,
          .egress_policies = S({"x/allow-apiserver"}),
          .egress_allowed_by = none,
          .hints = {{hint::kServiceVipDnat, Direction::Egress, "x/allow-apiserver"}}},
         nullptr,
         [](const Explanation& e) {
             ASSERT_EQ(e.service.size(), 1u);
             EXPECT_EQ(e.service[0].name, "default/kubernetes");
             ASSERT_EQ(e.service[0].endpoints.size(), 3u);
             Strings ips;
             for (const auto& ep : e.service[0].endpoints) {
                 ips.push_back(ep.dst.ip.str());
                 EXPECT_EQ(ep.dst.port, 6443);
                 EXPECT_EQ(ep.verdict, "denied");
             }
             std::sort(ips.begin(), ips.end());
             EXPECT_EQ(ips, S({"10.0.40.101", "10.0.40.102", "10.0.40.103"}));
         }},
        {"RunbookKubernetesServiceFixedByEndpointRule",
         {from_xa("allow-apiserver", {rule({ipb("10.0.40.0/24")}, {tcp(6443)})})},
         Q("x/a", "10.43.0.1", 443),
         {.verdict = "allowed", .egress_allowed_by = S({"x/allow-apiserver"}), .no_hints = {hint::kServiceVipDnat}}},
        // Endpoints that differ: one allowed, one denied.
        {"ServicePartialWhenEndpointsDiffer",
         {to_y_8080},
         Q("x/a", "10.96.0.11", 80),
         {.verdict = "partial"},
         nullptr,
         [](const Explanation& e) {
             ASSERT_EQ(e.service.size(), 1u);
             ASSERT_EQ(e.service[0].endpoints.size(), 2u);
             for (const auto& ep : e.service[0].endpoints) {
                 if (ep.dst.pod == std::optional<std::string>("y/b")) {
                     EXPECT_EQ(ep.dst.port, 8080);
                     EXPECT_EQ(ep.verdict, "allowed");
                 } else {
                     EXPECT_EQ(ep.dst.pod, std::optional<std::string>("y/c"));
                     EXPECT_EQ(ep.dst.port, 9090);
                     EXPECT_EQ(ep.verdict, "denied");
                 }
             }
         }},
        // A named targetPort resolves per pod; a named policy port resolves per destination pod.
        {"ServiceNamedTargetPortWithNamedPolicyPort",
         {from_xa("to-y-http", {rule({nsp(ml({{"ns", "y"}}))}, {named("http")})})},
         Q("x/a", "10.96.0.11", 80),
         {.verdict = "allowed"}},
        // Multi-port Service: the EndpointSlice port is picked by the Service port's name.
        {"ServiceMultiPortByNameDenied",
         {from_xa("to-y-9100", {rule({nsp(ml({{"ns", "y"}}))}, {tcp(9100)})})},
         Q("x/a", "10.96.0.12", 80),
         {.verdict = "denied"},
         nullptr,
         [](const Explanation& e) {
             ASSERT_EQ(e.service.size(), 1u);
             ASSERT_EQ(e.service[0].endpoints.size(), 1u);
             EXPECT_EQ(e.service[0].endpoints[0].dst.port, 8080);
         }},
        {"ServiceMultiPortByNameAllowed",
         {from_xa("to-y-9100", {rule({nsp(ml({{"ns", "y"}}))}, {tcp(9100)})})},
         Q("x/a", "10.96.0.12", 9100),
         {.verdict = "allowed"}},
        // The endpoint's ingress is what counts on the other side.
        {"ServiceEndpointIngressDenied",
         {deny_all_ingress("y", "deny-b", ml({{"pod", "b"}}))},
         Q("x/a", "10.96.0.10", 80),
         {.verdict = "denied", .ingress_allowed = false, .ingress_policies = S({"y/deny-b"})}},
        // Hairpin: a pod reaching itself through its own Service cannot block it.
        {"ServiceHairpinToItselfAllowed",
         {both_policy("x", "lock-a", ml({{"pod", "a"}}), {}, {})},
         Q("x/a", "10.96.0.14", 80),
         {.verdict = "allowed"}},
        // DNS through the kube-dns Service VIP: the hint follows the endpoint's port 53.
        {"DnsViaServiceVipBlocked",
         {deny_all_egress("x", "deny-egress-a", ml({{"pod", "a"}}))},
         Q("x/a", "10.96.0.53", 53, Protocol::UDP),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kDnsEgressBlocked, Direction::Egress, "x/deny-egress-a"}}}},
        {"DnsViaServiceVipAllowedByNamespaceRule",
         {from_xa("dns", {rule({nsp(ml({{"kubernetes.io/metadata.name", "kube-system"}}))}, {udp(53), tcp(53)})})},
         Q("x/a", "10.96.0.53", 53, Protocol::UDP),
         {.verdict = "allowed", .no_hints = {hint::kDnsEgressBlocked}}},
        // The classic mistake: allowing the kube-dns ClusterIP as an ipBlock.
        {"DnsViaServiceVipIpBlockDenied",
         {from_xa("dns-vip", {rule({ipb("10.96.0.53/32")}, {udp(53), tcp(53)})})},
         Q("x/a", "10.96.0.53", 53, Protocol::UDP),
         {.verdict = "denied",
          .hints = {{hint::kServiceVipDnat, Direction::Egress, "x/dns-vip"},
                    {hint::kDnsEgressBlocked, Direction::Egress, "x/dns-vip"}}}},
        // An endpoint without targetRef is still a pod when its IP is one.
        {"ServiceEndpointWithoutTargetRefIsMatchedAsPod",
         {from_xa("to-web", {rule({nspod(ml({{"ns", "y"}}), ml({{"app", "web"}}))}, {tcp(8080)})})},
         Q("x/a", "10.96.0.15", 80),
         {.verdict = "allowed", .egress_allowed_by = S({"x/to-web"})}},
        // A hostNetwork endpoint is not matched by selectors (x/a on n1, x/h on n2) ...
        {"ServiceHostNetworkEndpointNotMatchedBySelector",
         {from_xa("to-h", {rule({podp(ml({{"pod", "h"}}))})})},
         Q("x/a", "10.96.0.16", 80),
         {.verdict = "denied", .egress_allowed = false}},
        // ... but by an ipBlock of its node IP.
        {"ServiceHostNetworkEndpointMatchedByIpBlock",
         {from_xa("to-n2", {rule({ipb("10.1.0.2/32")})})},
         Q("x/a", "10.96.0.16", 80),
         {.verdict = "allowed"}},
        // A port the Service does not serve: nothing answers.
        {"ServiceUnknownPortDenied",
         {},
         Q("x/a", "10.96.0.10", 81),
         {.verdict = "denied", .hints = {{hint::kServicePortUnknown, Direction::Egress, std::nullopt}}}},
        // Only ready endpoints receive Service traffic (EndpointSlice conditions.ready): the
        // not-ready y/c, which the policy denies, does not make the answer partial.
        {"ServiceNotReadyEndpointGetsNoTraffic",
         {from_xa("to-y-web", {rule({nspod(ml({{"ns", "y"}}), ml({{"app", "web"}}))})})},
         Q("x/a", "10.96.0.13", 80),
         {.verdict = "allowed"}},
        // With no ready endpoint at all nothing answers, however open the policies are.
        {"ServiceOnlyNotReadyEndpointsNoTraffic",
         {},
         Q("x/a", "10.96.0.13", 80),
         {.verdict = "denied", .hints = {{hint::kServiceNoEndpoints, Direction::Egress, std::nullopt}}},
         [](ClusterObjects& o) {
             for (auto& es : o.endpoint_slices)
                 if (es.name == "notready-abc")
                     for (auto& ep : es.endpoints) ep.ready = false;
         }},
    };
}
INSTANTIATE_TEST_SUITE_P(Services, Conformance, ::testing::ValuesIn(service_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Hints for "looks right, still blocked"
// ---------------------------------------------------------------------------------------------

std::vector<Case> hint_cases() {
    const auto add_myapp = [](ClusterObjects& o) {
        o.pods.push_back(pod("x", "m", {{"app.kubernetes.io/name", "myapp"}}, {"10.0.1.20"}, "n2"));
    };
    const auto dns_src_locked = deny_all_egress("x", "deny-egress-a", ml({{"pod", "a"}}));
    return {
        {"LabelMismatchAppVsAppKubernetesIoName",
         {to_xa("allow-myapp", {rule({podp(ml({{"app", "myapp"}}))})})},
         Q("x/m", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kLabelMismatch, Direction::Ingress, "x/allow-myapp"}}},
         add_myapp},
        {"LabelMismatchNamespaceNameVsMetadataName",
         {to_xa("allow-monitoring", {rule({nsp(ml({{"name", "monitoring"}}))})})},
         Q("monitoring/prom", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kLabelMismatch, Direction::Ingress, "x/allow-monitoring"}}}},
        {"NamespaceMetadataNameIsTheFix",
         {to_xa("allow-monitoring", {rule({nsp(ml({{"kubernetes.io/metadata.name", "monitoring"}}))})})},
         Q("monitoring/prom", "x/a", 80),
         {.verdict = "allowed", .no_hints = {hint::kLabelMismatch}}},
        {"LabelMismatchSmallEdit",
         {to_xa("allow-frontnd", {rule({podp(ml({{"tier", "frontnd"}}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kLabelMismatch, Direction::Ingress, "x/allow-frontnd"}}}},
        {"LabelMismatchCaseOnly",
         {to_xa("allow-myapp", {rule({podp(ml({{"app.kubernetes.io/name", "MyApp"}}))})})},
         Q("x/m", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kLabelMismatch, Direction::Ingress, "x/allow-myapp"}}},
         add_myapp},
        {"LabelMismatchEgress",
         {from_xa("to-frontnd", {rule({podp(ml({{"tier", "frontnd"}}))})})},
         Q("x/a", "x/b", 80),
         {.verdict = "denied", .hints = {{hint::kLabelMismatch, Direction::Egress, "x/to-frontnd"}}}},
        {"NoLabelMismatchForPlainlyDifferentValues",
         {to_xa("allow-db", {rule({podp(ml({{"app", "db"}}))})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied", .no_hints = {hint::kLabelMismatch}}},
        {"NoLabelMismatchForPlainlyDifferentNamespace",
         {to_xa("allow-ns-y", {rule({nsp(ml({{"ns", "y"}}))})})},
         Q("z/b", "x/a", 80),
         {.verdict = "denied", .no_hints = {hint::kLabelMismatch}}},
        {"NoHintsWhenAllowed",
         {to_xa("allow-all", {allow_all()})},
         Q("x/b", "x/a", 80),
         {.verdict = "allowed",
          .no_hints = {hint::kLabelMismatch, hint::kPortNotAllowed, hint::kNamedPortUnresolved, hint::kIpBlockExcept,
                       hint::kDefaultDeny, hint::kDnsEgressBlocked, hint::kServiceVipDnat}}},
        {"PortNotAllowedProtocolDiffers",
         {to_xa("b-udp-80", {rule({podp(ml({{"pod", "b"}}))}, {udp(80)})})},
         Q("x/b", "x/a", 80),
         {.verdict = "denied", .hints = {{hint::kPortNotAllowed, Direction::Ingress, "x/b-udp-80"}}}},
        {"PortNotAllowedNotEmittedWhenPeerMisses",
         {to_xa("b-80", {rule({podp(ml({{"pod", "b"}}))}, {tcp(80)})})},
         Q("z/c", "x/a", 81),
         {.verdict = "denied", .no_hints = {hint::kPortNotAllowed}}},
        {"DnsEgressBlockedUdp",
         {dns_src_locked},
         Q("x/a", "kube-system/coredns", 53, Protocol::UDP),
         {.verdict = "denied",
          .egress_allowed = false,
          .hints = {{hint::kDnsEgressBlocked, Direction::Egress, "x/deny-egress-a"}}}},
        {"DnsEgressBlockedTcp",
         {dns_src_locked},
         Q("x/a", "kube-system/coredns", 53),
         {.verdict = "denied", .hints = {{hint::kDnsEgressBlocked, Direction::Egress, "x/deny-egress-a"}}}},
        {"DnsEgressBlockedByPolicyAllowingOnlyHttps",
         {from_xa("https-only", {any_peer({tcp(443)})})},
         Q("x/a", "kube-system/coredns", 53, Protocol::UDP),
         {.verdict = "denied", .hints = {{hint::kDnsEgressBlocked, Direction::Egress, "x/https-only"}}}},
        {"DnsEgressBlockedToExternalResolver",
         {dns_src_locked},
         Q("x/a", "8.8.8.8", 53, Protocol::UDP),
         {.verdict = "denied", .hints = {{hint::kDnsEgressBlocked, Direction::Egress, "x/deny-egress-a"}}}},
        {"DnsAllowedNoHint",
         {from_xa("dns", {rule({nsp(ml({{"kubernetes.io/metadata.name", "kube-system"}}))}, {udp(53), tcp(53)})})},
         Q("x/a", "kube-system/coredns", 53, Protocol::UDP),
         {.verdict = "allowed", .no_hints = {hint::kDnsEgressBlocked}}},
        {"DnsHintOnlyForDnsPort",
         {dns_src_locked},
         Q("x/a", "y/b", 80),
         {.verdict = "denied", .no_hints = {hint::kDnsEgressBlocked}}},
        {"DnsHintNotForIngressDenial",
         {deny_all_ingress("kube-system", "lock-dns")},
         Q("x/a", "kube-system/coredns", 53, Protocol::UDP),
         {.verdict = "denied",
          .egress_allowed = true,
          .ingress_allowed = false,
          .no_hints = {hint::kDnsEgressBlocked}}},
        {"IpBlockExceptHintNamesPolicyAndDirection",
         {from_xa("no-y", {rule({ipb("10.0.0.0/16", {"10.0.2.0/24"})})})},
         Q("x/a", "y/a", 80),
         {.verdict = "denied", .hints = {{hint::kIpBlockExcept, Direction::Egress, "x/no-y"}}}},
    };
}
INSTANTIATE_TEST_SUITE_P(Hints, Conformance, ::testing::ValuesIn(hint_cases()), case_name);

// ---------------------------------------------------------------------------------------------
// Evaluator-level checks (the verdict the live tail uses)
// ---------------------------------------------------------------------------------------------

std::vector<std::string> ids(const ClusterState& s, const std::vector<uint32_t>& v) {
    Strings out;
    for (auto i : v) out.push_back(s.policies()[i].id());
    return out;
}

Flow flow(const ClusterState& s, std::string_view src, std::string_view dst, uint16_t p,
          Protocol proto = Protocol::TCP) {
    Flow f;
    f.src = resolve_endpoint(s, ip(src));
    f.dst = resolve_endpoint(s, ip(dst));
    f.protocol = proto;
    f.port = p;
    return f;
}

TEST(EvaluatorConformance, VerdictMatchesUnionSemantics) {
    auto s = build({to_xa("zeta-from-c", {rule({podp(ml({{"pod", "c"}}))})}),
                    to_xa("alpha-from-b", {rule({podp(ml({{"pod", "b"}}))})}), to_xa("mid-any", {allow_all()})});
    Verdict v;
    evaluate(*s, flow(*s, "10.0.1.3", "10.0.1.1", 80), v);  // x/c -> x/a
    EXPECT_TRUE(v.allowed());
    EXPECT_FALSE(v.egress.isolated);
    EXPECT_TRUE(v.ingress.isolated);
    EXPECT_EQ(ids(*s, v.ingress.policies), S({"x/alpha-from-b", "x/mid-any", "x/zeta-from-c"}));
    EXPECT_EQ(ids(*s, v.ingress.allowed_by), S({"x/mid-any", "x/zeta-from-c"}));
}

TEST(EvaluatorConformance, ResolveEndpointKnowsPodsButNotHostNetworkPods) {
    auto s = build({});
    auto a = resolve_endpoint(*s, ip("10.0.1.1"));
    ASSERT_TRUE(a.pod.has_value());
    EXPECT_EQ(s->pod_id(*a.pod), "x/a");
    auto a6 = resolve_endpoint(*s, ip("fd00::1:1"));
    ASSERT_TRUE(a6.pod.has_value());
    EXPECT_EQ(s->pod_id(*a6.pod), "x/a");
    // 10.1.0.2 is node n2's IP, also held by hostNetwork pod x/h: not a pod a selector can match.
    EXPECT_FALSE(resolve_endpoint(*s, ip("10.1.0.2")).pod.has_value());
    EXPECT_FALSE(resolve_endpoint(*s, ip("203.0.113.1")).pod.has_value());
}

// hostNetwork pods are never selected: no policy isolates them, even a podSelector {} one.
TEST(EvaluatorConformance, HostNetworkPodsHaveNoIsolatingPolicies) {
    auto s = build({deny_all_ingress("x"), deny_all_egress("x"), deny_all_ingress("x", "deny-h", ml({{"pod", "h"}}))});
    auto h = s->find_pod("x", "h");
    ASSERT_TRUE(h.has_value());
    EXPECT_TRUE(s->isolating_policies(*h, Direction::Ingress).empty());
    EXPECT_TRUE(s->isolating_policies(*h, Direction::Egress).empty());
    auto a = s->find_pod("x", "a");
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(s->isolating_policies(*a, Direction::Ingress).size(), 1u);
    EXPECT_EQ(s->isolating_policies(*a, Direction::Egress).size(), 1u);
}

TEST(EvaluatorConformance, EgressAndIngressAreIndependentSides) {
    auto s = build({deny_all_egress("x", "deny-egress-a", ml({{"pod", "a"}})),
                    ingress_policy("y", "allow-all-to-b", ml({{"pod", "b"}}), {allow_all()})});
    Verdict v;
    evaluate(*s, flow(*s, "10.0.1.1", "10.0.2.2", 80), v);
    EXPECT_FALSE(v.allowed());
    EXPECT_FALSE(v.egress.allowed);
    EXPECT_TRUE(v.ingress.allowed);
    EXPECT_EQ(ids(*s, v.egress.policies), S({"x/deny-egress-a"}));
    EXPECT_TRUE(v.egress.allowed_by.empty());
    EXPECT_EQ(ids(*s, v.ingress.allowed_by), S({"y/allow-all-to-b"}));
}

TEST(EvaluatorConformance, SelfAndLocalNodeExemptions) {
    auto s = build({both_policy("x", "lock-a", ml({{"pod", "a"}}), {}, {})});
    Verdict v;
    evaluate(*s, flow(*s, "10.0.1.1", "10.0.1.1", 80), v);
    EXPECT_TRUE(v.allowed());
    EXPECT_EQ(v.egress.exemption, Exemption::SamePod);
    EXPECT_EQ(v.ingress.exemption, Exemption::SamePod);
    evaluate(*s, flow(*s, "10.1.0.1", "10.0.1.1", 80), v);  // node n1 -> x/a (on n1)
    EXPECT_TRUE(v.allowed());
    EXPECT_EQ(v.ingress.exemption, Exemption::LocalNode);
    evaluate(*s, flow(*s, "10.0.1.1", "10.1.0.1", 10250), v);
    EXPECT_TRUE(v.allowed());
    EXPECT_EQ(v.egress.exemption, Exemption::LocalNode);
    evaluate(*s, flow(*s, "10.1.0.2", "10.0.1.1", 80), v);  // node n2 -> x/a: not its node
    EXPECT_FALSE(v.allowed());
    EXPECT_EQ(v.ingress.exemption, Exemption::None);
    evaluate(*s, flow(*s, "203.0.113.1", "10.0.1.1", 80), v);
    EXPECT_EQ(v.egress.exemption, Exemption::NoPod);
    EXPECT_FALSE(v.egress.isolated);
}

TEST(EvaluatorConformance, IpBlockMatchingPrimitives) {
    IpBlock b{cidr("10.0.0.0/8"), {cidr("10.1.0.0/16")}};
    EXPECT_TRUE(ip_block_matches(b, ip("10.2.3.4")));
    EXPECT_FALSE(ip_block_matches(b, ip("10.1.3.4")));
    EXPECT_FALSE(ip_block_matches(b, ip("11.0.0.1")));
    EXPECT_FALSE(ip_block_matches(b, ip("2001:db8::a02:304")));  // an IPv6 address never matches an IPv4 block
    bool host_bits = false;
    auto c = Cidr::parse("10.0.1.1/4", &host_bits);
    ASSERT_TRUE(c.has_value());
    EXPECT_TRUE(host_bits);
    EXPECT_EQ(c->str(), "0.0.0.0/4");
    EXPECT_TRUE(c->contains(ip("10.0.1.2")));
    EXPECT_FALSE(c->contains(ip("16.0.0.1")));
    host_bits = false;
    auto c6 = Cidr::parse("2001:db8::1/64", &host_bits);
    ASSERT_TRUE(c6.has_value());
    EXPECT_TRUE(host_bits);
    EXPECT_TRUE(c6->contains(ip("2001:db8::ffff")));
    EXPECT_FALSE(c6->contains(ip("2001:db9::1")));
}

TEST(EvaluatorConformance, PortRangeEdgesViaMatchPort) {
    auto s = build({});
    PolicyPort r = range(Protocol::TCP, 30000, 32767);
    for (auto [p, want] : std::vector<std::pair<uint16_t, bool>>{
             {29999, false}, {30000, true}, {31000, true}, {32767, true}, {32768, false}}) {
        EXPECT_EQ(match_port(*s, r, flow(*s, "10.0.1.2", "10.0.1.1", p)).matches, want) << p;
    }
    PolicyPort full = range(Protocol::UDP, 1, 65535);
    EXPECT_TRUE(match_port(*s, full, flow(*s, "10.0.1.2", "10.0.1.1", 65535, Protocol::UDP)).matches);
    EXPECT_FALSE(match_port(*s, full, flow(*s, "10.0.1.2", "10.0.1.1", 65535, Protocol::TCP)).matches);
}

TEST(EvaluatorConformance, NamedPortResolvesOnDestination) {
    auto s = build({});
    PolicyPort http = named("http");
    // x/a (http=7070) -> x/b (http=8080): resolves to 8080 whichever side the policy is on.
    auto m = match_port(*s, http, flow(*s, "10.0.1.1", "10.0.1.2", 8080));
    EXPECT_TRUE(m.matches);
    ASSERT_TRUE(m.resolved.has_value());
    EXPECT_EQ(*m.resolved, 8080);
    EXPECT_FALSE(match_port(*s, http, flow(*s, "10.0.1.1", "10.0.1.2", 7070)).matches);
    // To a non-pod IP: never resolves.
    auto ext = match_port(*s, http, flow(*s, "10.0.1.1", "203.0.113.9", 8080));
    EXPECT_FALSE(ext.matches);
    EXPECT_TRUE(ext.named_unresolved);
    // By name AND protocol: "dns" is UDP on coredns.
    EXPECT_FALSE(match_port(*s, named("dns"), flow(*s, "10.0.1.1", "10.0.9.10", 53)).matches);
    EXPECT_TRUE(
        match_port(*s, named("dns", Protocol::UDP), flow(*s, "10.0.1.1", "10.0.9.10", 53, Protocol::UDP)).matches);
}

// explain_query errors: the specification of the query, not of policies.
TEST(ExplainQueryConformance, ErrorsForUnknownPodsAndMissingFamily) {
    auto s = build({});
    EXPECT_FALSE(explain_query(*s, Q("x/nope", "x/a", 80)).ok());
    EXPECT_FALSE(explain_query(*s, Q("nons/a", "x/a", 80)).ok());
    EXPECT_FALSE(explain_query(*s, Q("x/c", "y/a", 80, Protocol::TCP, IpFamily::V6)).ok());  // x/c is IPv4-only
    EXPECT_FALSE(explain_query(*s, Q("10.0.1.1", "fd00::2:1", 80)).ok());                    // mixed families
}

// Policies never see finished pods: their IPs may already belong to new pods.
TEST(ExplainQueryConformance, FinishedPodsDoNotHoldIps) {
    for (const char* phase : {"Succeeded", "Failed"}) {
        SCOPED_TRACE(phase);
        auto s = build({to_xa("from-b", {rule({podp(ml({{"pod", "b"}}))})})}, [&](ClusterObjects& o) {
            o.pods.push_back(pod("x", "new-d", {{"pod", "d"}}, {"10.0.1.30"}, "n2"));
            auto old = pod("x", "old-b", {{"pod", "b"}}, {"10.0.1.30"}, "n2");  // listed after the new pod
            old.phase = phase;
            o.pods.push_back(std::move(old));
        });
        auto r = explain_query(*s, Q("10.0.1.30", "x/a", 80));
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_EQ(r->src.pod, std::optional<std::string>("x/new-d"));
        EXPECT_EQ(r->verdict, "denied");
        EXPECT_FALSE(explain_query(*s, Q("x/old-b", "x/a", 80)).ok());
    }
}

// explain_flow (the live tail) agrees with explain_query for the same connection.
TEST(ExplainFlowConformance, AgreesWithExplainQuery) {
    auto s = build({to_xa("from-ns-y", {rule({nsp(ml({{"ns", "y"}}))}, {tcp(80)})}),
                    from_xa("allow-apiserver", {rule({ipb("10.43.0.1/32")}, {tcp(443)})})});
    for (const auto& [src, dst, p] :
         std::vector<std::tuple<std::string, std::string, uint16_t>>{{"10.0.2.3", "10.0.1.1", 80},
                                                                     {"10.0.3.3", "10.0.1.1", 80},
                                                                     {"10.0.2.3", "10.0.1.1", 81},
                                                                     {"10.0.1.1", "10.43.0.1", 443}}) {
        auto q = explain_query(*s, Q(src, dst, p));
        ASSERT_TRUE(q.ok()) << q.error().message;
        auto f = explain_flow(*s, ip(src), ip(dst), Protocol::TCP, p, src, dst);
        EXPECT_EQ(q->verdict, f.verdict) << src << " -> " << dst << ":" << p;
        EXPECT_EQ(q->egress.policies, f.egress.policies);
        EXPECT_EQ(q->ingress.policies, f.ingress.policies);
        EXPECT_EQ(q->ingress.allowed_by, f.ingress.allowed_by);
    }
    auto f = explain_flow(*s, ip("10.0.1.1"), ip("10.43.0.1"), Protocol::TCP, 443, "x/a", "10.43.0.1");
    EXPECT_EQ(f.verdict, "denied");
    EXPECT_TRUE(has_hint(f, {hint::kServiceVipDnat, Direction::Egress, "x/allow-apiserver"})) << describe(f);
}

}  // namespace
}  // namespace npt

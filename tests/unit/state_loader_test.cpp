// The file loader: formats, defaulting, validation messages (exact text: scripts and users read
// them), merging of duplicates, and that bad input is an error value, never a crash.
#include "state/state_loader.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "state/k8s_decode.hpp"

namespace npt {
namespace {

const std::string kFixtures = std::string(NPT_FIXTURES_DIR) + "/state/";

// Loads text that must load; a failure reports the loader's message.
ClusterObjects load_ok(std::string_view text, LoadStats* stats = nullptr, std::string_view source = "t") {
    ClusterObjects out;
    const auto err = load_state_text(text, source, out, stats);
    EXPECT_FALSE(err.has_value()) << err->message;
    return out;
}

std::string load_error(std::string_view text, std::string_view source) {
    ClusterObjects out;
    const auto err = load_state_text(text, source, out);
    if (!err) return "<no error>";
    EXPECT_TRUE(out.pods.empty() && out.policies.empty() && out.namespaces.empty()) << "out changed on error";
    return err->message;
}

// A NetworkPolicy app/allow-db in JSON with the given spec.
std::string policy_json(std::string_view spec) {
    return std::string(R"({"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",)"
                       R"("metadata":{"name":"allow-db","namespace":"app"},"spec":)") +
           std::string(spec) + "}";
}

NetworkPolicy load_policy(std::string_view spec) {
    const auto objects = load_ok(policy_json(spec));
    EXPECT_EQ(objects.policies.size(), 1u);
    return objects.policies.empty() ? NetworkPolicy{} : objects.policies[0];
}

IpAddr ip(std::string_view text) {
    return *IpAddr::parse(text);
}
Cidr cidr(std::string_view text) {
    return *Cidr::parse(text);
}

LabelMap labels(std::initializer_list<std::pair<std::string, std::string>> l) {
    return LabelMap(l);
}

// ---------------------------------------------------------------------------------------------
// Formats

TEST(StateLoader, KubectlListJson) {
    LoadStats stats;
    auto r = load_state_files({kFixtures + "kubectl_list.json"}, &stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const ClusterObjects& o = *r;
    EXPECT_EQ(stats.documents, 1u);
    EXPECT_EQ(stats.objects, 7u);
    EXPECT_EQ(stats.ignored_kinds, 1u);
    EXPECT_EQ(stats.ignored_by_kind.at("v1 ConfigMap"), 1u);

    ASSERT_EQ(o.namespaces.size(), 1u);
    EXPECT_EQ(o.namespaces[0].name, "shop");
    EXPECT_EQ(o.namespaces[0].labels, labels({{"kubernetes.io/metadata.name", "shop"}, {"team", "web"}}));

    ASSERT_EQ(o.pods.size(), 2u);
    const PodInfo& web = o.pods[0];
    EXPECT_EQ(web.ns, "shop");
    EXPECT_EQ(web.name, "web-7d9f8b6c5-q2w8x");
    EXPECT_EQ(web.labels, labels({{"app", "web"}, {"pod-template-hash", "7d9f8b6c5"}, {"tier", "frontend"}}));
    EXPECT_EQ(web.ips, (std::vector<IpAddr>{ip("10.42.0.21"), ip("fd00:42::21")}));
    EXPECT_EQ(web.host_ip, ip("10.0.40.11"));
    EXPECT_EQ(web.node, "node-1");
    EXPECT_EQ(web.phase, "Running");
    EXPECT_FALSE(web.host_network);
    ASSERT_EQ(web.ports.size(), 3u);
    EXPECT_EQ(web.ports[0].name, "http");
    EXPECT_EQ(web.ports[0].port, 8080);
    EXPECT_EQ(web.ports[0].protocol, Protocol::TCP);
    EXPECT_EQ(web.ports[1].name, "metrics");
    EXPECT_EQ(web.ports[1].protocol, Protocol::TCP);  // defaulted
    EXPECT_EQ(web.ports[2].name, "");                 // the init (sidecar) container's port
    EXPECT_EQ(web.ports[2].port, 53);
    EXPECT_EQ(web.ports[2].protocol, Protocol::UDP);

    const PodInfo& exporter = o.pods[1];
    EXPECT_TRUE(exporter.host_network);
    EXPECT_EQ(exporter.ips, std::vector<IpAddr>{ip("10.0.40.11")});

    ASSERT_EQ(o.policies.size(), 1u);
    const NetworkPolicy& np = o.policies[0];
    EXPECT_EQ(np.id(), "shop/allow-web");
    EXPECT_TRUE(np.affects_ingress);
    EXPECT_FALSE(np.affects_egress);
    // matchLabels sorted by key, then expressions in order.
    ASSERT_EQ(np.pod_selector.requirements.size(), 3u);
    EXPECT_EQ(np.pod_selector.requirements[0].key, "app");
    EXPECT_TRUE(np.pod_selector.requirements[0].from_match_labels);
    EXPECT_EQ(np.pod_selector.requirements[0].op, LabelRequirement::Op::In);
    EXPECT_EQ(np.pod_selector.requirements[0].values, std::vector<std::string>{"web"});
    EXPECT_EQ(np.pod_selector.requirements[1].key, "tier");
    EXPECT_EQ(np.pod_selector.requirements[2].key, "env");
    EXPECT_EQ(np.pod_selector.requirements[2].op, LabelRequirement::Op::NotIn);
    EXPECT_FALSE(np.pod_selector.requirements[2].from_match_labels);
    EXPECT_EQ(np.pod_selector.requirements[2].values, (std::vector<std::string>{"dev", "test"}));
    ASSERT_EQ(np.ingress.size(), 1u);
    const PolicyRule& rule = np.ingress[0];
    ASSERT_EQ(rule.peers.size(), 2u);
    ASSERT_TRUE(rule.peers[0].pod_selector.has_value());
    EXPECT_TRUE(rule.peers[0].pod_selector->empty());
    ASSERT_TRUE(rule.peers[0].namespace_selector.has_value());
    EXPECT_EQ(rule.peers[0].namespace_selector->requirements[0].key, "kubernetes.io/metadata.name");
    EXPECT_FALSE(rule.peers[0].ip_block.has_value());
    ASSERT_TRUE(rule.peers[1].ip_block.has_value());
    EXPECT_EQ(rule.peers[1].ip_block->cidr, cidr("10.0.40.0/24"));  // host bits masked
    EXPECT_EQ(rule.peers[1].ip_block->except, std::vector<Cidr>{cidr("10.0.40.128/25")});
    ASSERT_EQ(rule.ports.size(), 2u);
    EXPECT_EQ(rule.ports[0].port_name, "http");
    EXPECT_FALSE(rule.ports[0].port.has_value());
    EXPECT_EQ(rule.ports[1].port, 9000);
    EXPECT_EQ(rule.ports[1].end_port, 9100);

    ASSERT_EQ(o.services.size(), 1u);
    const ServiceInfo& svc = o.services[0];
    EXPECT_EQ(svc.type, "NodePort");
    EXPECT_EQ(svc.cluster_ips, (std::vector<IpAddr>{ip("10.43.0.10"), ip("fd00:43::10")}));
    ASSERT_EQ(svc.ports.size(), 2u);
    EXPECT_EQ(svc.ports[0].target_port_name, "http");
    EXPECT_EQ(svc.ports[0].target_port, 0);
    EXPECT_EQ(svc.ports[1].node_port, 30080);
    EXPECT_EQ(svc.ports[1].target_port, 8080);
    EXPECT_EQ(svc.selector, labels({{"app", "web"}}));

    ASSERT_EQ(o.endpoint_slices.size(), 1u);
    const EndpointSliceInfo& slice = o.endpoint_slices[0];
    EXPECT_EQ(slice.service, "web");
    ASSERT_EQ(slice.endpoints.size(), 2u);
    EXPECT_EQ(slice.endpoints[0].ip, ip("10.42.0.21"));
    EXPECT_TRUE(slice.endpoints[0].ready);
    EXPECT_EQ(slice.endpoints[0].pod_ns, "shop");
    EXPECT_EQ(slice.endpoints[0].pod_name, "web-7d9f8b6c5-q2w8x");
    EXPECT_FALSE(slice.endpoints[1].ready);
    EXPECT_EQ(slice.endpoints[1].pod_name, "");
    ASSERT_EQ(slice.ports.size(), 1u);
    EXPECT_EQ(slice.ports[0].name, "http");
    EXPECT_EQ(slice.ports[0].port, 8080);

    ASSERT_EQ(o.nodes.size(), 1u);
    EXPECT_EQ(o.nodes[0].addresses, (std::vector<IpAddr>{ip("10.0.40.11"), ip("203.0.113.11")}));
}

TEST(StateLoader, TypedListItemsTakeKindFromList) {
    LoadStats stats;
    auto r = load_state_files({kFixtures + "podlist.json"}, &stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->pods.size(), 2u);
    EXPECT_EQ(r->pods[0].ns, "ns1");
    EXPECT_EQ(r->pods[1].ns, "default");  // namespace defaults for namespaced kinds
    EXPECT_EQ(r->pods[1].phase, "Pending");
    ASSERT_EQ(r->pods[1].ports.size(), 1u);
    EXPECT_EQ(r->pods[1].ports[0].protocol, Protocol::TCP);
    EXPECT_EQ(stats.objects, 2u);

    // A list of another group takes that group's apiVersion for its items.
    const auto o = load_ok(R"({"kind":"NetworkPolicyList","apiVersion":"networking.k8s.io/v1",
        "items":[{"metadata":{"name":"p"}}]})");
    ASSERT_EQ(o.policies.size(), 1u);
    EXPECT_EQ(o.policies[0].id(), "default/p");
    EXPECT_TRUE(o.policies[0].pod_selector.empty());
    // Items of a Calico list are not Kubernetes NetworkPolicies.
    LoadStats calico;
    const auto c = load_ok(R"J({"kind":"NetworkPolicyList","apiVersion":"crd.projectcalico.org/v1",
        "items":[{"metadata":{"name":"p"},"spec":{"selector":"all()"}}]})J",
                           &calico);
    EXPECT_TRUE(c.policies.empty());
    EXPECT_EQ(calico.ignored_by_kind.at("crd.projectcalico.org/v1 NetworkPolicy"), 1u);
}

TEST(StateLoader, MultiDocumentYamlWithEmptyDocuments) {
    LoadStats stats;
    auto r = load_state_files({kFixtures + "multi.yaml"}, &stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(stats.documents, 4u);  // the empty and comment-only documents do not count
    EXPECT_EQ(stats.objects, 3u);
    EXPECT_EQ(stats.ignored_kinds, 1u);
    EXPECT_EQ(stats.ignored_by_kind.at("apps/v1 Deployment"), 1u);
    ASSERT_EQ(r->namespaces.size(), 1u);
    EXPECT_EQ(r->namespaces[0].labels, labels({{"env", "prod"}}));
    ASSERT_EQ(r->policies.size(), 2u);
    const NetworkPolicy& deny = r->policies[0];
    EXPECT_TRUE(deny.affects_ingress && deny.affects_egress);
    EXPECT_TRUE(deny.ingress.empty() && deny.egress.empty());
    const NetworkPolicy& dns = r->policies[1];
    EXPECT_TRUE(dns.affects_ingress);
    EXPECT_TRUE(dns.affects_egress);  // defaulted: the policy has egress rules
    ASSERT_EQ(dns.egress.size(), 1u);
    ASSERT_EQ(dns.egress[0].ports.size(), 2u);
    EXPECT_EQ(dns.egress[0].ports[0].protocol, Protocol::UDP);
    EXPECT_EQ(dns.egress[0].ports[0].port, 53);
    EXPECT_EQ(dns.egress[0].ports[1].protocol, Protocol::TCP);
    EXPECT_EQ(dns.egress[0].ports[1].port_name, "dns-tcp");
}

TEST(StateLoader, TopLevelArrayAndSingleObjects) {
    const auto o = load_ok(R"([{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"a"}},
                               {"kind":"Node","apiVersion":"v1","metadata":{"name":"n"}}])");
    EXPECT_EQ(o.namespaces.size(), 1u);
    EXPECT_EQ(o.nodes.size(), 1u);
    const auto y = load_ok("kind: Namespace\napiVersion: v1\nmetadata: {name: b, namespace: ignored}\n");
    ASSERT_EQ(y.namespaces.size(), 1u);
    EXPECT_EQ(y.namespaces[0].name, "b");
}

TEST(StateLoader, EmptyInputLoadsNothing) {
    for (std::string_view text : {"", "   \n", "# only a comment\n", "---\n---\n", "\xEF\xBB\xBF"}) {
        LoadStats stats;
        const auto o = load_ok(text, &stats);
        EXPECT_EQ(stats.documents, 0u) << text;
        EXPECT_TRUE(o.pods.empty() && o.namespaces.empty());
    }
}

TEST(StateLoader, RunbookExampleLoads) {
    LoadStats stats;
    auto r = load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"}, &stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(stats.ignored_kinds, 0u);
    EXPECT_GT(r->pods.size(), 3u);
    EXPECT_GT(r->policies.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Defaulting

struct PolicyTypesCase {
    const char* spec;
    bool ingress;
    bool egress;
};

TEST(StateLoader, PolicyTypesDefaulting) {
    const PolicyTypesCase cases[] = {
        {R"({"podSelector":{}})", true, false},
        {R"({})", true, false},
        {R"({"ingress":[{}]})", true, false},
        // An explicit empty egress list has no rules: it does not make the policy affect egress.
        {R"({"egress":[]})", true, false},
        {R"({"egress":[{}]})", true, true},
        {R"({"egress":[{"to":[{"podSelector":{}}]}]})", true, true},
        {R"({"policyTypes":[]})", true, false},
        {R"({"policyTypes":[],"egress":[{}]})", true, true},
        {R"({"policyTypes":["Egress"]})", false, true},
        {R"({"policyTypes":["Egress"],"ingress":[{}]})", false, true},
        {R"({"policyTypes":["Ingress"],"egress":[{}]})", true, false},
        {R"({"policyTypes":["Ingress","Egress"]})", true, true},
        {R"({"policyTypes":["Egress","Egress"]})", false, true},
    };
    for (const auto& c : cases) {
        const NetworkPolicy np = load_policy(c.spec);
        EXPECT_EQ(np.affects_ingress, c.ingress) << c.spec;
        EXPECT_EQ(np.affects_egress, c.egress) << c.spec;
    }
    // A policy without spec is {}: every pod of its namespace, isolated for ingress.
    const auto o = load_ok(R"({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"}})");
    ASSERT_EQ(o.policies.size(), 1u);
    EXPECT_TRUE(o.policies[0].pod_selector.empty());
    EXPECT_TRUE(o.policies[0].affects_ingress);
    EXPECT_FALSE(o.policies[0].affects_egress);
}

TEST(StateLoader, ProtocolAndNamespaceDefaults) {
    const NetworkPolicy np = load_policy(R"({"ingress":[{"ports":[{"port":80},{"protocol":"UDP"},{}]}]})");
    ASSERT_EQ(np.ingress[0].ports.size(), 3u);
    EXPECT_EQ(np.ingress[0].ports[0].protocol, Protocol::TCP);
    EXPECT_EQ(np.ingress[0].ports[0].port, 80);
    EXPECT_EQ(np.ingress[0].ports[1].protocol, Protocol::UDP);
    EXPECT_FALSE(np.ingress[0].ports[1].port.has_value());
    EXPECT_EQ(np.ingress[0].ports[2].protocol, Protocol::TCP);
    EXPECT_FALSE(np.ingress[0].ports[2].port.has_value());
    EXPECT_TRUE(np.ingress[0].ports[2].port_name.empty());

    const auto o = load_ok(R"(
kind: Service
apiVersion: v1
metadata: {name: s}
spec:
  ports:
  - {port: 80}
  - {port: 53, protocol: UDP, targetPort: 0}
  - {port: 443, protocol: SCTP, targetPort: https}
)");
    ASSERT_EQ(o.services.size(), 1u);
    const ServiceInfo& s = o.services[0];
    EXPECT_EQ(s.ns, "default");
    EXPECT_EQ(s.type, "ClusterIP");
    EXPECT_TRUE(s.cluster_ips.empty());
    EXPECT_FALSE(s.selector.has_value());
    ASSERT_EQ(s.ports.size(), 3u);
    EXPECT_EQ(s.ports[0].protocol, Protocol::TCP);
    EXPECT_EQ(s.ports[0].target_port, 80);  // absent targetPort = port
    EXPECT_EQ(s.ports[1].protocol, Protocol::UDP);
    EXPECT_EQ(s.ports[1].target_port, 53);  // 0 = port
    EXPECT_EQ(s.ports[2].protocol, Protocol::SCTP);
    EXPECT_EQ(s.ports[2].target_port, 0);
    EXPECT_EQ(s.ports[2].target_port_name, "https");
}

TEST(StateLoader, ServiceSelectorsAndHeadless) {
    const auto o = load_ok(R"(
kind: Service
metadata: {name: headless, namespace: a}
spec: {clusterIP: None, clusterIPs: [None], selector: {app: db}, externalIPs: [192.0.2.1]}
---
kind: Service
metadata: {name: empty-selector, namespace: a}
spec: {clusterIP: 10.43.0.5, selector: {}}
---
kind: Service
metadata: {name: no-selector, namespace: a}
spec: {clusterIP: 10.43.0.6, type: ExternalName, externalName: example.com}
)");
    ASSERT_EQ(o.services.size(), 3u);
    EXPECT_TRUE(o.services[0].cluster_ips.empty());
    EXPECT_EQ(o.services[0].selector, labels({{"app", "db"}}));
    EXPECT_EQ(o.services[0].external_ips, std::vector<IpAddr>{ip("192.0.2.1")});
    // An empty selector, like an absent one, means no endpoints are derived from pods.
    EXPECT_FALSE(o.services[1].selector.has_value());
    EXPECT_EQ(o.services[1].cluster_ips, std::vector<IpAddr>{ip("10.43.0.5")});
    EXPECT_FALSE(o.services[2].selector.has_value());
    EXPECT_EQ(o.services[2].type, "ExternalName");
}

TEST(StateLoader, NamedPortsAndEndPort) {
    const NetworkPolicy np = load_policy(
        R"({"egress":[{"ports":[{"port":"dns-tcp"},{"port":32000,"endPort":32768},{"port":22,"endPort":22,"protocol":"SCTP"}]}]})");
    const auto& ports = np.egress[0].ports;
    ASSERT_EQ(ports.size(), 3u);
    EXPECT_EQ(ports[0].port_name, "dns-tcp");
    EXPECT_FALSE(ports[0].port.has_value());
    EXPECT_FALSE(ports[0].end_port.has_value());
    EXPECT_EQ(ports[1].port, 32000);
    EXPECT_EQ(ports[1].end_port, 32768);
    EXPECT_EQ(ports[2].end_port, 22);
    EXPECT_EQ(ports[2].protocol, Protocol::SCTP);
}

TEST(StateLoader, CidrsMaskedAndIpv6) {
    const NetworkPolicy np = load_policy(R"({"egress":[{"to":[
        {"ipBlock":{"cidr":"fd00:10::1/64","except":["fd00:10::8000:0:0:1/65"]}},
        {"ipBlock":{"cidr":"192.168.1.77/16","except":["192.168.7.3/24","192.168.8.0/32"]}},
        {"ipBlock":{"cidr":"0.0.0.0/0","except":["10.0.0.0/8"]}}]}]})");
    const auto& peers = np.egress[0].peers;
    ASSERT_EQ(peers.size(), 3u);
    EXPECT_EQ(peers[0].ip_block->cidr, cidr("fd00:10::/64"));
    EXPECT_EQ(peers[0].ip_block->cidr.base.family, IpFamily::V6);
    EXPECT_EQ(peers[0].ip_block->except, std::vector<Cidr>{cidr("fd00:10::8000:0:0:0/65")});
    EXPECT_EQ(peers[1].ip_block->cidr.str(), "192.168.0.0/16");
    EXPECT_EQ(peers[1].ip_block->except, (std::vector<Cidr>{cidr("192.168.7.0/24"), cidr("192.168.8.0/32")}));
    EXPECT_EQ(peers[2].ip_block->cidr.prefix, 0);
}

TEST(StateLoader, EndpointsBecomeSlices) {
    auto r = load_state_files({kFixtures + "endpoints.yaml"});
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->endpoint_slices.size(), 2u);
    const EndpointSliceInfo& a = r->endpoint_slices[0];
    EXPECT_EQ(a.ns, "data");
    EXPECT_EQ(a.name, "db/subsets[0]");
    EXPECT_EQ(a.service, "db");
    ASSERT_EQ(a.endpoints.size(), 2u);
    EXPECT_EQ(a.endpoints[0].ip, ip("10.42.2.10"));
    EXPECT_TRUE(a.endpoints[0].ready);
    EXPECT_EQ(a.endpoints[0].pod_ns, "data");
    EXPECT_EQ(a.endpoints[0].pod_name, "db-0");
    EXPECT_EQ(a.endpoints[1].ip, ip("10.42.2.11"));
    EXPECT_FALSE(a.endpoints[1].ready);        // notReadyAddresses
    EXPECT_EQ(a.endpoints[1].pod_ns, "data");  // targetRef namespace defaults to the object's
    EXPECT_EQ(a.endpoints[1].pod_name, "db-1");
    ASSERT_EQ(a.ports.size(), 1u);
    EXPECT_EQ(a.ports[0].name, "pg");
    EXPECT_EQ(a.ports[0].port, 5432);
    EXPECT_EQ(a.ports[0].protocol, Protocol::TCP);
    const EndpointSliceInfo& b = r->endpoint_slices[1];
    EXPECT_EQ(b.name, "db/subsets[1]");
    ASSERT_EQ(b.endpoints.size(), 1u);
    EXPECT_EQ(b.ports[0].port, 9187);
}

TEST(StateLoader, EndpointsYieldToEndpointSlicesOfTheSameService) {
    const auto o = load_ok(R"(
kind: Endpoints
apiVersion: v1
metadata: {name: web, namespace: shop}
subsets: [{addresses: [{ip: 10.42.0.21}], ports: [{port: 8080}]}]
---
kind: Endpoints
apiVersion: v1
metadata: {name: other, namespace: shop}
subsets: [{addresses: [{ip: 10.42.0.30}], ports: [{port: 80}]}]
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.42.0.21]}]
ports: [{port: 8080}]
)");
    ASSERT_EQ(o.endpoint_slices.size(), 2u);
    EXPECT_EQ(o.endpoint_slices[0].name, "other/subsets[0]");
    EXPECT_EQ(o.endpoint_slices[1].name, "web-abc");
}

TEST(StateLoader, EndpointSliceDetails) {
    const auto o = load_ok(R"(
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: s6, namespace: a, labels: {kubernetes.io/service-name: svc}}
addressType: IPv6
endpoints:
- addresses: ["fd00::1", "fd00::2"]
  targetRef: {kind: Pod, name: p, namespace: b}
- addresses: ["fd00::3"]
  conditions: {ready: false, serving: true}
ports: [{name: "", port: null, protocol: UDP}]
---
kind: EndpointSlice
apiVersion: discovery.k8s.io/v1
metadata: {name: fqdn, namespace: a}
addressType: FQDN
endpoints: [{addresses: [db.example.com]}]
)");
    ASSERT_EQ(o.endpoint_slices.size(), 2u);
    const auto& s = o.endpoint_slices[0];
    ASSERT_EQ(s.endpoints.size(), 3u);
    EXPECT_EQ(s.endpoints[1].ip, ip("fd00::2"));
    EXPECT_EQ(s.endpoints[1].pod_ns, "b");
    EXPECT_TRUE(s.endpoints[1].ready);  // absent ready = ready
    EXPECT_FALSE(s.endpoints[2].ready);
    ASSERT_EQ(s.ports.size(), 1u);
    EXPECT_EQ(s.ports[0].port, 0);  // no number: every port
    EXPECT_EQ(s.ports[0].protocol, Protocol::UDP);
    EXPECT_TRUE(o.endpoint_slices[1].endpoints.empty());  // FQDN addresses are not IPs
    EXPECT_TRUE(o.endpoint_slices[1].service.empty());
}

TEST(StateLoader, LaterDuplicateWins) {
    LoadStats stats;
    auto r = load_state_files({kFixtures + "kubectl_list.json", kFixtures + "override.yaml"}, &stats);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->namespaces.size(), 1u);
    EXPECT_EQ(r->namespaces[0].labels, labels({{"team", "checkout"}}));
    EXPECT_EQ(stats.documents, 2u);
    EXPECT_EQ(stats.objects, 8u);

    // Within one text too, and per (kind, namespace, name): same names in other namespaces stay.
    const auto o = load_ok(R"(
kind: Pod
metadata: {name: p, namespace: a}
status: {podIP: 10.0.0.1}
---
kind: Pod
metadata: {name: p, namespace: b}
status: {podIP: 10.0.0.2}
---
kind: Pod
metadata: {name: p, namespace: a}
status: {podIP: 10.0.0.3}
)");
    ASSERT_EQ(o.pods.size(), 2u);
    EXPECT_EQ(o.pods[0].ns, "b");
    EXPECT_EQ(o.pods[1].ns, "a");
    EXPECT_EQ(o.pods[1].ips, std::vector<IpAddr>{ip("10.0.0.3")});

    // A later copy of an Endpoints replaces all the earlier copy's subsets.
    const auto e = load_ok(R"(
kind: Endpoints
metadata: {name: db}
subsets: [{addresses: [{ip: 10.0.0.1}]}, {addresses: [{ip: 10.0.0.2}]}]
---
kind: Endpoints
metadata: {name: db}
subsets: [{addresses: [{ip: 10.0.0.3}]}]
)");
    ASSERT_EQ(e.endpoint_slices.size(), 1u);
    EXPECT_EQ(e.endpoint_slices[0].endpoints[0].ip, ip("10.0.0.3"));
}

TEST(StateLoader, LabelMapsSortedAndLastDuplicateKeyWins) {
    const auto o = load_ok(R"({"kind":"Pod","metadata":{"name":"p","labels":{"b":"2","a":"1","b":"3"}}})");
    ASSERT_EQ(o.pods.size(), 1u);
    EXPECT_EQ(o.pods[0].labels, labels({{"a", "1"}, {"b", "3"}}));
}

TEST(StateLoader, YamlScalarsTypedAsKubectlDoes) {
    // Quoted and plain strings are strings; an unquoted number or YAML 1.1 boolean is not a label.
    const auto o = load_ok(R"(
kind: Pod
metadata: {name: p, labels: {version: "1", enabled: "yes", name: web, empty: ""}}
spec: {hostNetwork: yes}
)");
    ASSERT_EQ(o.pods.size(), 1u);
    EXPECT_EQ(o.pods[0].labels, labels({{"empty", ""}, {"enabled", "yes"}, {"name", "web"}, {"version", "1"}}));
    EXPECT_TRUE(o.pods[0].host_network);
    EXPECT_EQ(load_error("kind: Pod\nmetadata: {name: p, labels: {version: 1}}\n", "p.yaml"),
              "p.yaml: Pod default/p: metadata.labels[version]: expected a string, got an integer");
    EXPECT_EQ(load_error("kind: Pod\nmetadata: {name: p, labels: {enabled: on}}\n", "p.yaml"),
              "p.yaml: Pod default/p: metadata.labels[enabled]: expected a string, got a boolean");
    EXPECT_EQ(load_error("kind: Pod\nmetadata: {name: p, labels: {v: 1.5}}\n", "p.yaml"),
              "p.yaml: Pod default/p: metadata.labels[v]: expected a string, got a non-integer number");
    // A quoted port is a port name (an IntOrString string), as the API server reads it.
    EXPECT_EQ(load_error("kind: NetworkPolicy\nmetadata: {name: p}\nspec: {ingress: [{ports: [{port: \"80\"}]}]}\n",
                         "p.yaml"),
              "p.yaml: NetworkPolicy default/p: spec.ingress[0].ports[0].port: invalid port name \"80\": must "
              "contain at least one letter (a-z)");
    const auto h = load_ok("kind: NetworkPolicy\nmetadata: {name: p}\nspec: {ingress: [{ports: [{port: 0x50}]}]}\n");
    EXPECT_EQ(h.policies[0].ingress[0].ports[0].port, 80);
}

TEST(StateLoader, UnknownKindsIgnored) {
    LoadStats stats;
    const auto o = load_ok(R"Y(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec: {replicas: "not even valid"}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: calico}
spec: {selector: all()}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: d}
)Y",
                           &stats);
    EXPECT_TRUE(o.policies.empty());
    EXPECT_EQ(stats.objects, 0u);
    EXPECT_EQ(stats.ignored_kinds, 4u);
    EXPECT_EQ(stats.ignored_by_kind.at("v1 ConfigMap"), 2u);
    EXPECT_EQ(stats.ignored_by_kind.at("apps/v1 Deployment"), 1u);
    EXPECT_EQ(stats.ignored_by_kind.at("projectcalico.org/v3 NetworkPolicy"), 1u);
}

TEST(StateLoader, JsonDecodersForTheApiClient) {
    simdjson::dom::parser parser;
    simdjson::dom::element pod_json;
    ASSERT_EQ(
        parser.parse(std::string_view(R"({"metadata":{"name":"p","namespace":"n"},"status":{"podIP":"10.1.2.3"}})"))
            .get(pod_json),
        simdjson::SUCCESS);
    auto pod = decode_pod(pod_json);
    ASSERT_TRUE(pod.ok()) << pod.error().message;
    EXPECT_EQ(pod->ips, std::vector<IpAddr>{ip("10.1.2.3")});

    simdjson::dom::element bad;
    ASSERT_EQ(
        parser.parse(std::string_view(R"({"metadata":{"name":"p"},"spec":{"ingress":[{"from":[{}]}]}})")).get(bad),
        simdjson::SUCCESS);
    auto np = decode_network_policy(bad);
    ASSERT_FALSE(np.ok());
    EXPECT_EQ(np.error().message,
              "NetworkPolicy default/p: spec.ingress[0].from[0]: must specify a peer (podSelector, "
              "namespaceSelector or "
              "ipBlock)");
    auto any = decode_object(pod_json, DecodeContext{"Pod", "v1", {}, nullptr});
    ASSERT_TRUE(any.ok());
    EXPECT_TRUE(std::holds_alternative<PodInfo>(*any));
}

// ---------------------------------------------------------------------------------------------
// Validation: the exact messages

constexpr const char* kNameChars =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
    "character";

struct ErrorCase {
    std::string spec;     // NetworkPolicy spec, JSON
    std::string message;  // after "state.json: NetworkPolicy app/allow-db: "
};

TEST(StateLoader, NetworkPolicyValidationErrors) {
    const std::string long_name(64, 'a');
    const ErrorCase cases[] = {
        // peers
        {R"({"ingress":[{"from":[{}]}]})",
         "spec.ingress[0].from[0]: must specify a peer (podSelector, namespaceSelector or ipBlock)"},
        {R"({"ingress":[{"from":[{"podSelector":null}]}]})",
         "spec.ingress[0].from[0]: must specify a peer (podSelector, namespaceSelector or ipBlock)"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8"},"podSelector":{}}]}]})",
         "spec.ingress[0].from[0]: may not specify both ipBlock and another peer"},
        {R"({"egress":[{"to":[{"podSelector":{}},{"ipBlock":{"cidr":"10.0.0.0/8"},"namespaceSelector":{}}]}]})",
         "spec.egress[0].to[1]: may not specify both ipBlock and another peer"},
        // ipBlock
        {R"({"ingress":[{"from":[{"podSelector":{}},{"ipBlock":{"cidr":"10.0.0.0/33"}}]}]})",
         R"(spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR "10.0.0.0/33")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.1"}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR "10.0.0.1")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"fd00::/129"}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR "fd00::/129")"},
        {R"({"ingress":[{"from":[{"ipBlock":{}}]}]})", "spec.ingress[0].from[0].ipBlock.cidr: required"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":""}}]}]})", "spec.ingress[0].from[0].ipBlock.cidr: required"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["nope"]}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.except[0]: invalid CIDR "nope")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/16","except":["10.0.1.0/24","10.1.0.0/24"]}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.except[1]: "10.1.0.0/24" must be a strict subset of cidr "10.0.0.0/16")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/16","except":["10.0.0.0/16"]}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/16" must be a strict subset of cidr "10.0.0.0/16")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/16","except":["10.0.0.0/8"]}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/8" must be a strict subset of cidr "10.0.0.0/16")"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["fd00::/64"]}}]}]})",
         R"(spec.ingress[0].from[0].ipBlock.except[0]: "fd00::/64" is not of the IP family of cidr "10.0.0.0/8")"},
        // ports
        {R"({"ingress":[{"ports":[{"protocol":"ICMP"}]}]})",
         R"(spec.ingress[0].ports[0].protocol: unsupported protocol "ICMP" (must be TCP, UDP or SCTP))"},
        {R"({"ingress":[{"ports":[{"protocol":"tcp","port":80}]}]})",
         R"(spec.ingress[0].ports[0].protocol: unsupported protocol "tcp" (must be TCP, UDP or SCTP))"},
        {R"({"ingress":[{"ports":[{"protocol":""}]}]})",
         R"(spec.ingress[0].ports[0].protocol: unsupported protocol "" (must be TCP, UDP or SCTP))"},
        {R"({"egress":[{"ports":[{"port":0}]}]})",
         "spec.egress[0].ports[0].port: invalid port number 0 (must be 1-65535)"},
        {R"({"egress":[{"ports":[{"port":65536}]}]})",
         "spec.egress[0].ports[0].port: invalid port number 65536 (must be 1-65535)"},
        {R"({"egress":[{"ports":[{"port":-1}]}]})",
         "spec.egress[0].ports[0].port: invalid port number -1 (must be 1-65535)"},
        {R"({"ingress":[{"ports":[{"port":"HTTP"}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "HTTP": must contain only lowercase alphanumerics (a-z, 0-9) and '-')"},
        {R"({"ingress":[{"ports":[{"port":"a--b"}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "a--b": must not contain consecutive '-')"},
        {R"({"ingress":[{"ports":[{"port":"-web"}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "-web": must not begin or end with '-')"},
        {R"({"ingress":[{"ports":[{"port":"abcdefghijklmnop"}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "abcdefghijklmnop": must be 1-15 characters)"},
        {R"({"ingress":[{"ports":[{"port":""}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "": must be 1-15 characters)"},
        {R"({"ingress":[{"ports":[{"port":"8080"}]}]})",
         R"(spec.ingress[0].ports[0].port: invalid port name "8080": must contain at least one letter (a-z))"},
        {R"({"ingress":[{"ports":[{"endPort":90}]}]})",
         "spec.ingress[0].ports[0].endPort: may not be specified when port is not specified"},
        {R"({"ingress":[{"ports":[{"port":"http","endPort":90}]}]})",
         "spec.ingress[0].ports[0].endPort: may not be specified when port is a named port"},
        {R"({"ingress":[{"ports":[{"port":80,"endPort":79}]}]})",
         "spec.ingress[0].ports[0].endPort: 79 must be greater than or equal to port (80)"},
        {R"({"ingress":[{"ports":[{"port":80,"endPort":70000}]}]})",
         "spec.ingress[0].ports[0].endPort: invalid port number 70000 (must be 1-65535)"},
        // ports are checked before peers, as the API server does
        {R"({"ingress":[{"from":[{}],"ports":[{"port":0}]}]})",
         "spec.ingress[0].ports[0].port: invalid port number 0 (must be 1-65535)"},
        // selectors
        {R"({"podSelector":{"matchExpressions":[{"key":"app","operator":"Equals","values":["a"]}]}})",
         R"(spec.podSelector.matchExpressions[0].operator: unsupported operator "Equals" (must be In, NotIn, Exists or DoesNotExist))"},
        {R"({"podSelector":{"matchExpressions":[{"key":"app"}]}})",
         R"(spec.podSelector.matchExpressions[0].operator: unsupported operator "" (must be In, NotIn, Exists or DoesNotExist))"},
        {R"({"podSelector":{"matchExpressions":[{"key":"app","operator":"In"}]}})",
         "spec.podSelector.matchExpressions[0].values: must be specified when operator is In or NotIn"},
        {R"({"podSelector":{"matchExpressions":[{"key":"app","operator":"NotIn","values":[]}]}})",
         "spec.podSelector.matchExpressions[0].values: must be specified when operator is In or NotIn"},
        {R"({"podSelector":{"matchExpressions":[{"key":"app","operator":"Exists","values":["x"]}]}})",
         "spec.podSelector.matchExpressions[0].values: may not be specified when operator is Exists or "
         "DoesNotExist"},
        {R"({"podSelector":{"matchExpressions":[{"key":"app","operator":"DoesNotExist","values":["x"]}]}})",
         "spec.podSelector.matchExpressions[0].values: may not be specified when operator is Exists or "
         "DoesNotExist"},
        {R"({"podSelector":{"matchExpressions":[{"operator":"Exists"}]}})",
         R"(spec.podSelector.matchExpressions[0].key: invalid label key "": name part must be non-empty)"},
        {R"({"podSelector":{"matchExpressions":[{"key":"a","operator":"In","values":["ok","not ok"]}]}})",
         std::string(
             R"(spec.podSelector.matchExpressions[0].values[1]: invalid label value "not ok": must be empty or )") +
             kNameChars},
        {R"({"podSelector":{"matchLabels":{"-app":"web"}}})",
         std::string(R"(spec.podSelector.matchLabels: invalid label key "-app": name part )") + kNameChars},
        {R"({"podSelector":{"matchLabels":{"app":"a b"}}})",
         std::string(R"(spec.podSelector.matchLabels[app]: invalid label value "a b": must be empty or )") +
             kNameChars},
        {R"({"ingress":[{"from":[{"namespaceSelector":{"matchLabels":{"Example.com/team":"a"}}}]}]})",
         R"(spec.ingress[0].from[0].namespaceSelector.matchLabels: invalid label key "Example.com/team": prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters)"},
        {R"({"podSelector":{"matchLabels":{"a/b/c":"x"}}})",
         R"(spec.podSelector.matchLabels: invalid label key "a/b/c": a qualified name may contain at most one '/')"},
        {R"({"podSelector":{"matchLabels":{"/app":"x"}}})",
         R"(spec.podSelector.matchLabels: invalid label key "/app": prefix part must be non-empty)"},
        {R"({"podSelector":{"matchLabels":{")" + long_name + R"(":"x"}}})",
         R"(spec.podSelector.matchLabels: invalid label key ")" + long_name +
             R"(": name part must be no more than 63 characters)"},
        {R"({"podSelector":{"matchLabels":{"k":")" + long_name + R"("}}})",
         R"(spec.podSelector.matchLabels[k]: invalid label value ")" + long_name +
             R"(": must be no more than 63 characters)"},
        // policyTypes
        {R"({"policyTypes":["Both"]})",
         R"(spec.policyTypes[0]: unsupported policy type "Both" (must be Ingress or Egress))"},
        {R"({"policyTypes":["ingress"]})",
         R"(spec.policyTypes[0]: unsupported policy type "ingress" (must be Ingress or Egress))"},
        {R"({"policyTypes":["Ingress","Egress","Ingress"]})",
         "spec.policyTypes: may not specify more than two policyTypes"},
        // wrong JSON types
        {R"({"podSelector":"app=web"})", "spec.podSelector: expected a map, got a string"},
        {R"({"ingress":{}})", "spec.ingress: expected a list, got a map"},
        {R"({"ingress":[{"from":[1]}]})", "spec.ingress[0].from[0]: expected a map, got an integer"},
        {R"({"ingress":["x"]})", "spec.ingress[0]: expected a map, got a string"},
        {R"({"ingress":[{"ports":[{"port":true}]}]})",
         "spec.ingress[0].ports[0].port: expected an integer or a string, got a boolean"},
        {R"({"ingress":[{"ports":[{"port":80.5}]}]})",
         "spec.ingress[0].ports[0].port: expected an integer or a string, got a non-integer number"},
        {R"({"ingress":[{"ports":[{"port":80,"endPort":"90"}]}]})",
         "spec.ingress[0].ports[0].endPort: expected an integer, got a string"},
        {R"({"ingress":[{"ports":[{"protocol":6}]}]})",
         "spec.ingress[0].ports[0].protocol: expected a string, got an integer"},
        {R"({"podSelector":{"matchExpressions":[{"key":"a","operator":"In","values":"x"}]}})",
         "spec.podSelector.matchExpressions[0].values: expected a list, got a string"},
        {R"({"podSelector":{"matchLabels":{"a":1}}})",
         "spec.podSelector.matchLabels[a]: expected a string, got an integer"},
        {R"({"policyTypes":"Ingress"})", "spec.policyTypes: expected a list, got a string"},
        {R"({"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":"10.1.0.0/16"}}]}]})",
         "spec.ingress[0].from[0].ipBlock.except: expected a list, got a string"},
        {R"({"ingress":[{"from":[{"ipBlock":"10.0.0.0/8"}]}]})",
         "spec.ingress[0].from[0].ipBlock: expected a map, got a string"},
        {R"("spec")", "spec: expected a map, got a string"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(load_error(policy_json(c.spec), "state.json"), "state.json: NetworkPolicy app/allow-db: " + c.message)
            << c.spec;
    }
}

struct ObjectErrorCase {
    std::string text;
    std::string message;
};

TEST(StateLoader, ObjectValidationErrors) {
    const ObjectErrorCase cases[] = {
        {R"({"kind":"Pod","metadata":{}})", "state.json: Pod: metadata.name: required"},
        {R"({"kind":"Pod"})", "state.json: Pod: metadata.name: required"},
        {R"({"kind":"Pod","metadata":{"name":""}})", "state.json: Pod: metadata.name: required"},
        {R"({"kind":"List","items":[{"kind":"Pod","metadata":{"name":"a"}},{"kind":"Pod","metadata":{"namespace":"x"}}]})",
         "state.json: Pod items[1]: metadata.name: required"},
        {R"({"kind":"PodList","items":[{"metadata":{"name":7}}]})",
         "state.json: Pod items[0]: metadata.name: expected a string, got an integer"},
        {R"({"kind":"Pod","metadata":"web"})", "state.json: Pod: metadata: expected a map, got a string"},
        {R"({"kind":"Pod","metadata":{"name":"Web_1"}})",
         R"(state.json: Pod: metadata.name: invalid name "Web_1": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit)"},
        {R"({"kind":"Node","metadata":{"name":"a\nb"}})",
         R"(state.json: Node: metadata.name: invalid name "a\nb": must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit)"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"my.ns"}})",
         R"(state.json: Service: metadata.namespace: invalid namespace "my.ns": must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)"},
        {R"({"kind":"Namespace","metadata":{"name":"prod","labels":{"bad key":"x"}}})",
         std::string(R"(state.json: Namespace prod: metadata.labels: invalid label key "bad key": name part )") +
             kNameChars},
        {R"({"kind":"Namespace","metadata":{"name":"prod","labels":["a"]}})",
         "state.json: Namespace prod: metadata.labels: expected a map, got a list"},
        {R"({"kind":"Node","metadata":{"name":"n1","labels":{"a":"b\nc"}}})",
         std::string(R"(state.json: Node n1: metadata.labels[a]: invalid label value "b\nc": must be empty or )") +
             kNameChars},
        {R"({"kind":"Pod","metadata":{"name":"web"},"status":{"podIP":"10.0.0.300"}})",
         R"(state.json: Pod default/web: status.podIP: invalid IP address "10.0.0.300")"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"status":{"podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::zz"}]}})",
         R"(state.json: Pod default/web: status.podIPs[1].ip: invalid IP address "fd00::zz")"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"status":{"hostIP":" 10.0.0.1"}})",
         R"(state.json: Pod default/web: status.hostIP: invalid IP address " 10.0.0.1")"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"status":{"podIP":["10.0.0.1"]}})",
         "state.json: Pod default/web: status.podIP: expected a string, got a list"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"hostNetwork":"true"}})",
         "state.json: Pod default/web: spec.hostNetwork: expected a boolean, got a string"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"containers":{"name":"c"}}})",
         "state.json: Pod default/web: spec.containers: expected a list, got a map"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"ports":[{"name":"http"}]}]}})",
         "state.json: Pod default/web: spec.containers[0].ports[0].containerPort: required"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"initContainers":[{"ports":[{"containerPort":70000}]}]}})",
         "state.json: Pod default/web: spec.initContainers[0].ports[0].containerPort: invalid port number "
         "70000 (must "
         "be 1-65535)"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"ports":[{"containerPort":80,"protocol":"ICMP"}]}]}})",
         R"(state.json: Pod default/web: spec.containers[0].ports[0].protocol: unsupported protocol "ICMP" (must be TCP, UDP or SCTP))"},
        {R"({"kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"ports":[{"containerPort":80,"name":"Web_Port"}]}]}})",
         R"(state.json: Pod default/web: spec.containers[0].ports[0].name: invalid port name "Web_Port": must contain only lowercase alphanumerics (a-z, 0-9) and '-')"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"clusterIP":"10.43.0.999"}})",
         R"(state.json: Service a/s: spec.clusterIP: invalid IP address "10.43.0.999")"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"clusterIPs":["10.43.0.1","x"]}})",
         R"(state.json: Service a/s: spec.clusterIPs[1]: invalid IP address "x")"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"externalIPs":["example.com"]}})",
         R"(state.json: Service a/s: spec.externalIPs[0]: invalid IP address "example.com")"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"ports":[{"name":"http"}]}})",
         "state.json: Service a/s: spec.ports[0].port: required"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"ports":[{"port":80,"targetPort":{}}]}})",
         "state.json: Service a/s: spec.ports[0].targetPort: expected an integer or a string, got a map"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"ports":[{"port":80,"nodePort":99999}]}})",
         "state.json: Service a/s: spec.ports[0].nodePort: invalid port number 99999 (must be 1-65535)"},
        {R"({"kind":"Service","metadata":{"name":"s","namespace":"a"},"spec":{"selector":{"app":["x"]}}})",
         "state.json: Service a/s: spec.selector[app]: expected a string, got a list"},
        {R"({"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{"name":"e"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1","10.0.0.x"]}]})",
         R"(state.json: EndpointSlice default/e: endpoints[0].addresses[1]: invalid IP address "10.0.0.x")"},
        {R"({"kind":"EndpointSlice","metadata":{"name":"e"},"endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":"yes"}}]})",
         "state.json: EndpointSlice default/e: endpoints[0].conditions.ready: expected a boolean, got a "
         "string"},
        {R"({"kind":"Endpoints","metadata":{"name":"e"},"subsets":[{"addresses":[{"hostname":"x"}]}]})",
         "state.json: Endpoints default/e: subsets[0].addresses[0].ip: required"},
        {R"({"kind":"Endpoints","metadata":{"name":"e"},"subsets":[{"notReadyAddresses":[{"ip":"1.2.3"}]}]})",
         R"(state.json: Endpoints default/e: subsets[0].notReadyAddresses[0].ip: invalid IP address "1.2.3")"},
        {R"({"kind":"Node","metadata":{"name":"n1"},"status":{"addresses":[{"type":"InternalIP","address":"nope"}]}})",
         R"(state.json: Node n1: status.addresses[0].address: invalid IP address "nope")"},
        // structure
        {R"({"metadata":{"name":"x"}})", "state.json: kind: required"},
        {R"({"kind":7,"metadata":{"name":"x"}})", "state.json: kind: expected a string, got an integer"},
        {R"({"kind":"List","items":{}})", "state.json: items: expected a list, got a map"},
        {R"({"kind":"List","items":[1]})",
         "state.json: items[0]: expected a Kubernetes object (a map), got an integer"},
        {R"([{"kind":"Pod","metadata":{"name":"a"}},"x"])",
         "state.json: [1]: expected a Kubernetes object (a map), got a string"},
        {R"({"kind":"List","items":[{"kind":"List","items":[{"kind":"Pod"}]}]})",
         "state.json: Pod items[0].items[0]: metadata.name: required"},
        {R"({"kind":"List","items":[{"kind":"List","items":[{"kind":"List","items":[{"kind":"List","items":[{"kind":"List","items":[]}]}]}]}]})",
         "state.json: items[0].items[0].items[0].items[0].items: lists nested too deeply"},
    };
    for (const auto& c : cases) EXPECT_EQ(load_error(c.text, "state.json"), c.message) << c.text;
}

TEST(StateLoader, ErrorsNameTheYamlDocument) {
    const std::string text = R"(
kind: Namespace
metadata: {name: a}
---
---
kind: Pod
metadata: {name: web, namespace: shop}
status: {podIP: 10.0.0.300}
)";
    EXPECT_EQ(load_error(text, "policies.yaml"),
              R"(policies.yaml (document 3): Pod shop/web: status.podIP: invalid IP address "10.0.0.300")");
    // One document: no document number.
    EXPECT_EQ(load_error("kind: Pod\nmetadata: {name: web}\nstatus: {podIP: x}\n", "pod.yaml"),
              R"(pod.yaml: Pod default/web: status.podIP: invalid IP address "x")");
}

TEST(StateLoader, FileErrorExample) {
    auto r = load_state_files({kFixtures + "bad_cidr.json"});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, kFixtures +
                                     "bad_cidr.json: NetworkPolicy app/allow-db: "
                                     "spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR \"10.0.0.0/33\"");
}

TEST(StateLoader, SyntaxErrors) {
    EXPECT_EQ(load_error("{\"kind\": \"Pod\",", "state.json").rfind("state.json: invalid JSON: ", 0), 0u);
    EXPECT_EQ(load_error("[1, 2", "state.json").rfind("state.json: invalid JSON: ", 0), 0u);
    EXPECT_EQ(load_error("{\"a\": tru}", "state.json"),
              std::string("state.json: invalid JSON: ") + simdjson::error_message(simdjson::T_ATOM_ERROR));
    // yaml-cpp's messages, located (1-based line and column).
    EXPECT_EQ(load_error("kind: Pod\nmetadata: {name: a\n", "state.yaml"),
              "state.yaml: line 3, column 1: end of map flow not found");
    EXPECT_EQ(load_error("a: b\n  c: d\n", "state.yaml"), "state.yaml: line 2, column 4: illegal map value");
    // yaml-cpp 0.7 alone would loop forever on these (jbeder/yaml-cpp#1040).
    EXPECT_EQ(load_error(",", "state.yaml"), "state.yaml: line 1, column 1: unexpected ','");
    EXPECT_EQ(load_error("kind: Namespace\nmetadata: {name: a}\n---\n,- x\n", "state.yaml"),
              "state.yaml: line 4, column 1: unexpected ','");
    EXPECT_EQ(load_error("hello world", "state.yaml"),
              "state.yaml: expected a Kubernetes object (a map), got a string");
    // yaml-cpp quotes the offending character raw; the message stays on one line.
    EXPECT_EQ(load_error("a: \"\\\x01\"\n", "state.yaml"),
              "state.yaml: line 1, column 7: unknown escape character: \\x01");
    EXPECT_EQ(load_error("- 1\n- 2\n", "state.yaml"),
              "state.yaml: [0]: expected a Kubernetes object (a map), got an integer");
}

TEST(StateLoader, GarbageNeverThrows) {
    const std::string inputs[] = {
        std::string("\0\x01\x02\xff", 4),
        "\xff\xfe{",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"\xff\"}}",
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]",
        std::string(5000, '[') + std::string(5000, ']'),
        std::string(3000, '['),
        "kind: Pod\nmetadata: &a {name: *a}\n",
        "? [a, b]\n: c\n",
        "!!binary aGVsbG8=",
        "kind: !!int Pod\n",
        "%YAML 1.2\n---\nkind: List\nitems: !!map {}\n",
        "{\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},\"spec\":{\"ports\":[{\"port\":"
        "18446744073709551615}]}}",
        "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"},\"spec\":{\"containers\":[{\"ports\":[{"
        "\"containerPort\":-9223372036854775808}]}]}}",
    };
    for (const auto& text : inputs) {
        ClusterObjects out;
        std::optional<Error> err;
        EXPECT_NO_THROW(err = load_state_text(text, "g", out)) << text;
        if (err) {
            EXPECT_EQ(err->message.rfind("g", 0), 0u) << err->message;
            EXPECT_EQ(err->message.find('\n'), std::string::npos) << err->message;
        }
    }
}

TEST(StateLoader, YamlAliasExpansionIsBounded) {
    // 100 rules x 100 peers x 100 expressions x 100 values: 10^8 values from about 2 KB of YAML.
    auto times = [](std::string_view alias) {
        std::string list = "[";
        for (int i = 0; i < 100; ++i) list += std::string(i ? ", " : "") + std::string(alias);
        return list + "]";
    };
    const std::string text =
        "kind: NetworkPolicy\nmetadata: {name: p}\n"
        "v: &v " +
        times("a") + "\n" + "e: &e {key: k, operator: In, values: *v}\n" + "es: &es " + times("*e") + "\n" +
        "p: &p {podSelector: {matchExpressions: *es}}\n" + "ps: &ps " + times("*p") + "\n" + "r: &r {from: *ps}\n" +
        "spec: {ingress: " + times("*r") + "}\n";
    // Without the bound this would not return (10^8 nodes); with it, the load stops with an error.
    const std::string err = load_error(text, "bomb.yaml");
    EXPECT_EQ(err.rfind("bomb.yaml: NetworkPolicy default/p: spec.ingress[", 0), 0u) << err;
    EXPECT_NE(err.find(": document expands to too many nodes (YAML aliases?)"), std::string::npos) << err;

    // Nested Lists of aliased objects that cost nothing to decode: 100^4 Namespaces.
    const std::string lists =
        "kind: List\n"
        "ns: &ns {kind: Namespace, metadata: {name: a}}\n"
        "l1: &l1 {kind: List, items: " +
        times("*ns") + "}\n" + "l2: &l2 {kind: List, items: " + times("*l1") + "}\n" +
        "l3: &l3 {kind: List, items: " + times("*l2") + "}\n" + "items: " + times("*l3") + "\n";
    const std::string err2 = load_error(lists, "lists.yaml");
    EXPECT_NE(err2.find(": document expands to too many nodes (YAML aliases?)"), std::string::npos) << err2;
}

TEST(StateLoader, FileErrors) {
    auto missing = load_state_files({"/nonexistent/state.json"});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message, "/nonexistent/state.json: cannot read: No such file or directory");

    auto dir = load_state_files({kFixtures});
    ASSERT_FALSE(dir.ok());
    EXPECT_EQ(dir.error().message, kFixtures + ": cannot read: Is a directory");

    auto no_stdin = load_state_files({"-"}, nullptr, LoadOptions{.allow_stdin = false});
    ASSERT_FALSE(no_stdin.ok());
    EXPECT_EQ(no_stdin.error().message, "stdin: reading state from standard input is not allowed");

    // The first error stops the load, even when later files are fine.
    auto first = load_state_files({kFixtures + "bad_cidr.json", "/nonexistent"});
    ASSERT_FALSE(first.ok());
    EXPECT_NE(first.error().message.find("bad_cidr.json"), std::string::npos);
}

// A state big enough for the huge-page buffer, read from a file and from a pipe on stdin (size
// unknown: the buffer grows while reading).
std::string many_pods(int n) {
    std::string text = R"({"kind":"PodList","apiVersion":"v1","items":[)";
    for (int i = 0; i < n; ++i) {
        text +=
            (i ? "," : "") + std::string(R"({"metadata":{"name":"pod-)") + std::to_string(i) +
            R"(","namespace":"big","labels":{"app":"a","filler":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}},)"
            R"("status":{"podIP":"10.)" +
            std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) + R"("}})";
    }
    return text + "]}";
}

TEST(StateLoader, LargeFileAndStdin) {
    const int n = 70'000;  // about 12 MB
    const std::string text = many_pods(n);
    ASSERT_GT(text.size(), 8u << 20);
    char path[] = "/tmp/npt-state-test-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    auto r = load_state_files({path});
    unlink(path);
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->pods.size(), static_cast<size_t>(n));
    EXPECT_EQ(r->pods.back().ips, std::vector<IpAddr>{ip("10.1.17.111")});

    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const int saved_stdin = dup(STDIN_FILENO);
    ASSERT_EQ(dup2(fds[0], STDIN_FILENO), STDIN_FILENO);
    close(fds[0]);
    std::thread writer([&] {
        size_t off = 0;
        while (off < text.size()) {
            const ssize_t w = write(fds[1], text.data() + off, text.size() - off);
            if (w <= 0) break;
            off += static_cast<size_t>(w);
        }
        close(fds[1]);
    });
    LoadStats stats;
    auto s = load_state_files({"-"}, &stats);
    writer.join();
    dup2(saved_stdin, STDIN_FILENO);
    close(saved_stdin);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->pods.size(), static_cast<size_t>(n));
    EXPECT_EQ(stats.objects, static_cast<size_t>(n));
}

// A text loaded from a file (read piece by piece) and from memory; both must give `expected_error`
// (empty: no error) and the same objects.
ClusterObjects load_both_ways(const std::string& text, const std::string& expected_error = "") {
    char path[] = "/tmp/npt-state-test-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    auto from_file = load_state_files({path});
    unlink(path);
    ClusterObjects from_text;
    const auto err = load_state_text(text, path, from_text);
    if (expected_error.empty()) {
        EXPECT_TRUE(from_file.ok()) << from_file.error().message;
        EXPECT_FALSE(err.has_value()) << err->message;
    } else {
        EXPECT_FALSE(from_file.ok());
        if (!from_file.ok()) {
            EXPECT_EQ(from_file.error().message, std::string(path) + ": " + expected_error);
        }
        EXPECT_TRUE(err.has_value());
        if (err) {
            EXPECT_EQ(err->message, std::string(path) + ": " + expected_error);
        }
        return {};
    }
    if (!from_file.ok()) return {};
    EXPECT_EQ(from_file->pods.size(), from_text.pods.size());
    EXPECT_EQ(from_file->namespaces.size(), from_text.namespaces.size());
    EXPECT_EQ(from_file->policies.size(), from_text.policies.size());
    return std::move(*from_file);
}

// The simdjson message for the whole text, as the loader reports invalid JSON.
std::string whole_document_error(const std::string& text) {
    simdjson::dom::parser parser;
    return std::string("invalid JSON: ") + simdjson::error_message(parser.parse(text).error());
}

// Large lists are parsed item by item; what loads, and every error, must be as if parsed whole.
TEST(StateLoader, JsonListsItemByItem) {
    const std::string pod = R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"a"}})";
    // Brackets, quotes and backslashes inside strings do not end an item.
    const auto tricky =
        load_both_ways(R"({"apiVersion":"v1","items":[{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},)"
                       R"("data":{"k]}":"v\"}]\\","x\\":"[{\\\"\\\\"}},)" +
                       pod + R"(],"kind":"List","metadata":{"note":"]}\""}})");
    ASSERT_EQ(tricky.pods.size(), 1u);
    EXPECT_EQ(tricky.pods[0].ns + "/" + tricky.pods[0].name, "a/p");

    // kind and apiVersion after the items (kubectl sorts keys): items that omit them take the list's.
    const auto typed = load_both_ways(R"({"items":[{"metadata":{"name":"p"}}],"kind":"PodList","apiVersion":"v1"})");
    ASSERT_EQ(typed.pods.size(), 1u);
    EXPECT_EQ(typed.pods[0].ns + "/" + typed.pods[0].name, "default/p");
    const auto calico = load_both_ways(
        R"({"items":[{"metadata":{"name":"p"}}],"kind":"NetworkPolicyList","apiVersion":"crd.projectcalico.org/v1"})");
    EXPECT_TRUE(calico.policies.empty());
    // A list whose kind is not a list kind is one object; the first of two "items" is the list's.
    EXPECT_TRUE(
        load_both_ways(R"({"items":[)" + pod + R"(],"kind":"Namespace","metadata":{"name":"n"}})").pods.empty());
    const auto twice = load_both_ways(R"({"kind":"List","items":[)" + pod + R"(],"items":[]})");
    EXPECT_EQ(twice.pods.size(), 1u);
    EXPECT_EQ(load_both_ways(R"({"kind":"List","\u0069tems":[)" + pod + "]}").pods.size(), 1u);
    // Top-level arrays, byte order mark, whitespace everywhere, empty lists.
    const std::string pod2 = R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p2","namespace":"a"}})";
    EXPECT_EQ(load_both_ways("\xEF\xBB\xBF \n[ " + pod + " ,\n\t" + pod2 + " ]\r\n").pods.size(), 2u);
    EXPECT_TRUE(load_both_ways(R"({"kind":"List","items":[ ]})").pods.empty());

    // Invalid JSON anywhere is reported as the whole-document parser reports it, before any object
    // error in an earlier item.
    const std::string bad_ip = R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"q"},"status":{"podIP":"x"}})";
    for (const std::string& text : std::vector<std::string>{
             R"({"kind":"List","items":[)" + pod + "," + bad_ip + R"(,{"kind":}]})",
             R"({"kind":"List","items":[)" + pod + R"(]} trailing)",
             R"({"kind":"List","items":[)" + pod + R"(,]})",
             R"({"kind":"List","items":[)" + pod + " " + pod + "]}",
             R"({"kind":"List","metadata":{"a":tru},"items":[)" + pod + "]}",
             R"({"kind":"List","items":[)" + pod + R"(],"x":"\x"})",
             std::string("{\"kind\":\"List\",\"items\":[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"\xff\"}}]}"),
             // One level past the parser's depth limit, counting the list's own levels.
             "[" + pod + "," + std::string(1024, '[') + std::string(1024, ']') + "]",
             R"({"kind":"List","items":[)" + std::string(1023, '[') + std::string(1023, ']') + "]}",
         }) {
        SCOPED_TRACE(text.substr(0, 120));
        load_both_ways(text, whole_document_error(text));
    }
    load_both_ways(R"({"kind":"List","items":[)" + pod + "," + bad_ip + "]}",
                   R"(Pod default/q: status.podIP: invalid IP address "x")");

    // Items larger than the pieces a file is read in, and pieces ending inside strings and escapes.
    std::string big = R"({"kind":"List","apiVersion":"v1","items":[)";
    for (int i = 0; i < 3; ++i) {
        big += R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"d":")";
        for (int k = 0; k < 300'000; ++k) big += k % 7 ? "ab]}\\\"" : "{[";
        big += R"("}},)";
        big += R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p)" + std::to_string(i) + R"("}},)";
    }
    big += pod + "]}";
    const auto large = load_both_ways(big);
    EXPECT_EQ(large.pods.size(), 4u);
}

TEST(StateLoader, OutputUntouchedOnError) {
    ClusterObjects out = load_ok(R"({"kind":"Pod","metadata":{"name":"kept"}})");
    const auto err = load_state_text(R"({"kind":"List","items":[{"kind":"Pod","metadata":{"name":"new"}},
                                        {"kind":"Pod","metadata":{"name":"bad"},"status":{"podIP":"x"}}]})",
                                     "s", out);
    ASSERT_TRUE(err.has_value());
    ASSERT_EQ(out.pods.size(), 1u);
    EXPECT_EQ(out.pods[0].name, "kept");
}

TEST(Protocol, NamesAndParsing) {
    EXPECT_STREQ(protocol_name(Protocol::TCP), "TCP");
    EXPECT_STREQ(protocol_name(Protocol::UDP), "UDP");
    EXPECT_STREQ(protocol_name(Protocol::SCTP), "SCTP");
    EXPECT_EQ(parse_protocol("tcp"), Protocol::TCP);
    EXPECT_EQ(parse_protocol("Udp"), Protocol::UDP);
    EXPECT_EQ(parse_protocol("SCTP"), Protocol::SCTP);
    EXPECT_EQ(parse_protocol("icmp"), std::nullopt);
    EXPECT_EQ(parse_protocol(""), std::nullopt);
    EXPECT_EQ(parse_protocol("tcpx"), std::nullopt);
}

}  // namespace
}  // namespace npt

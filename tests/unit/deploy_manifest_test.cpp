// The manifests in deploy/: they parse, the kustomization lists them, the RBAC is least privilege, the
// DaemonSet carries exactly the documented privileges, probes, resources and scrape annotations, the
// Service and the agent's NetworkPolicy fit the pods, and the NetworkPolicy, evaluated by the project's
// own engine, lets the agent reach the API server endpoint after the Service DNAT and nothing else.
// The Dockerfile's runtime packages cover the libraries the built binary links, and the krew template names
// them and the plugin's name. With kubectl on the machine, `kubectl kustomize` builds the default install and the
// opt-in components.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/api_resources.hpp"
#include "policy/explainer.hpp"
#include "policy/explanation.hpp"
#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

#ifndef NPT_DEPLOY_DIR
#error "NPT_DEPLOY_DIR must name deploy/"
#endif

namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using StringSet = std::set<std::string>;

namespace {

const fs::path kDeploy = NPT_DEPLOY_DIR;
const fs::path kDocs = fs::path(NPT_DEPLOY_DIR).parent_path() / "docs" / "deploy.md";

// The agent's interface, fixed by its issue: namespace, pod labels, port, probes.
const std::string kNamespace = "netpol-trace";
const std::map<std::string, std::string> kAgentLabels = {{"app.kubernetes.io/name", "netpol-trace"},
                                                         {"app.kubernetes.io/component", "agent"}};
constexpr int kAgentPort = 9842;
const std::string kPortName = "http";
// deploy/*.yaml files deliberately left out of kustomization.yaml (documented in docs/deploy.md).
const StringSet kExtras = {"rbac-tail-user.yaml"};
// The capabilities docs/deploy.md justifies; the DaemonSet adds exactly these.
const StringSet kCapabilities = {"BPF", "PERFMON", "SYSLOG", "SYS_RESOURCE"};
// API ports the egress rule must allow: the kubernetes Service's endpoint after DNAT (kubeadm, k3s:
// 6443; managed control planes: 443).
const std::set<int> kApiServerPorts = {443, 6443};

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<YAML::Node> load_documents(const fs::path& p) {
    std::vector<YAML::Node> docs;
    for (const auto& d : YAML::LoadAllFromFile(p.string()))
        if (d && !d.IsNull()) docs.push_back(d);
    return docs;
}

std::string str(const YAML::Node& n) {
    return n && n.IsScalar() ? n.as<std::string>() : std::string();
}

Strings strings(const YAML::Node& n) {
    Strings out;
    if (n && n.IsSequence())
        for (const auto& v : n) out.push_back(v.as<std::string>());
    return out;
}

std::map<std::string, std::string> string_map(const YAML::Node& n) {
    std::map<std::string, std::string> out;
    if (n && n.IsMap())
        for (const auto& kv : n) out[kv.first.as<std::string>()] = kv.second.as<std::string>();
    return out;
}

bool is_true(const YAML::Node& n) {
    return n && n.IsScalar() && n.as<bool>();
}

// "50m" -> 0.05, "2" -> 2 (cores); "80Mi" -> bytes. Enough of the Kubernetes quantity syntax for the
// manifests; anything else is a test failure, not a silent zero.
std::optional<double> quantity(const std::string& q) {
    static const std::map<std::string, double> kSuffix = {{"", 1},           {"m", 1e-3},         {"k", 1e3},
                                                          {"M", 1e6},        {"G", 1e9},          {"Ki", 1024.0},
                                                          {"Mi", 1048576.0}, {"Gi", 1073741824.0}};
    const std::regex re(R"(^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$)");
    std::smatch m;
    if (!std::regex_match(q, m, re)) return std::nullopt;
    auto it = kSuffix.find(m[2]);
    if (it == kSuffix.end()) return std::nullopt;
    return std::stod(m[1]) * it->second;
}

struct Object {
    std::string file;
    YAML::Node node;
    std::string kind() const { return str(node["kind"]); }
    std::string name() const { return str(node["metadata"]["name"]); }
};

YAML::Node kustomization() {
    return YAML::LoadFile((kDeploy / "kustomization.yaml").string());
}

// The default install: every object of every file kustomization.yaml lists.
std::vector<Object> default_objects() {
    std::vector<Object> out;
    for (const auto& file : strings(kustomization()["resources"]))
        for (const auto& doc : load_documents(kDeploy / file)) out.push_back({file, doc});
    return out;
}

const Object& find_object(const std::vector<Object>& objects, const std::string& kind) {
    auto it = std::find_if(objects.begin(), objects.end(), [&](const Object& o) { return o.kind() == kind; });
    if (it == objects.end()) throw std::runtime_error("no " + kind + " in the default install");
    EXPECT_EQ(std::count_if(objects.begin(), objects.end(), [&](const Object& o) { return o.kind() == kind; }), 1)
        << "more than one " << kind;
    return *it;
}

struct Agent {
    std::vector<Object> objects = default_objects();
    YAML::Node ds = find_object(objects, "DaemonSet").node;
    YAML::Node pod_spec = ds["spec"]["template"]["spec"];
    YAML::Node container = pod_spec["containers"][0];
    std::map<std::string, std::string> pod_labels = string_map(ds["spec"]["template"]["metadata"]["labels"]);

    // The container port a probe or a Service refers to (by name or number).
    std::optional<int> container_port(const YAML::Node& ref) const {
        for (const auto& p : container["ports"]) {
            if ((ref.IsScalar() && str(p["name"]) == str(ref)) || str(p["containerPort"]) == str(ref))
                return p["containerPort"].as<int>();
        }
        return std::nullopt;
    }
};

bool selector_selects(const std::map<std::string, std::string>& selector,
                      const std::map<std::string, std::string>& labels) {
    if (selector.empty()) return false;  // an empty selector selects everything: never what we mean here
    return std::all_of(selector.begin(), selector.end(), [&](const auto& kv) {
        auto it = labels.find(kv.first);
        return it != labels.end() && it->second == kv.second;
    });
}

// Every deploy/**.yaml file, relative to deploy/.
Strings all_yaml_files() {
    Strings out;
    for (const auto& e : fs::recursive_directory_iterator(kDeploy))
        if (e.is_regular_file() && e.path().extension() == ".yaml")
            out.push_back(fs::relative(e.path(), kDeploy).string());
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST(DeployManifests, EveryManifestParsesAndNamesItsObjects) {
    const Strings files = all_yaml_files();
    ASSERT_FALSE(files.empty());
    for (const auto& file : files) {
        SCOPED_TRACE(file);
        std::vector<YAML::Node> docs;
        ASSERT_NO_THROW(docs = load_documents(kDeploy / file));
        ASSERT_FALSE(docs.empty());
        for (const auto& d : docs) {
            ASSERT_TRUE(d.IsMap());
            EXPECT_FALSE(str(d["apiVersion"]).empty());
            EXPECT_FALSE(str(d["kind"]).empty());
            if (fs::path(file).filename() != "kustomization.yaml") {
                EXPECT_FALSE(str(d["metadata"]["name"]).empty());
            }
        }
    }
}

TEST(DeployManifests, KustomizationListsEveryManifestButTheDocumentedExtras) {
    const YAML::Node k = kustomization();
    EXPECT_EQ(str(k["kind"]), "Kustomization");
    const Strings listed = strings(k["resources"]);
    ASSERT_FALSE(listed.empty());
    EXPECT_EQ(StringSet(listed.begin(), listed.end()).size(), listed.size()) << "a resource is listed twice";
    for (const auto& r : listed) EXPECT_TRUE(fs::is_regular_file(kDeploy / r)) << r << " is listed but missing";

    const std::string docs = read_text(kDocs);
    for (const auto& e : fs::directory_iterator(kDeploy)) {
        const std::string f = e.path().filename().string();
        if (e.path().extension() != ".yaml" || f == "kustomization.yaml") continue;
        const bool is_listed = std::find(listed.begin(), listed.end(), f) != listed.end();
        if (kExtras.count(f)) {
            EXPECT_FALSE(is_listed) << f << " is an extra: the default install must not apply it";
            EXPECT_NE(docs.find(f), std::string::npos) << "docs/deploy.md does not document the extra " << f;
        } else {
            EXPECT_TRUE(is_listed) << "deploy/" << f << " is neither in kustomization.yaml nor a documented extra";
        }
    }
    // Every component is a kustomize Component patching an object of the default install.
    const auto objects = default_objects();
    for (const auto& e : fs::directory_iterator(kDeploy / "components")) {
        SCOPED_TRACE(e.path().string());
        const YAML::Node c = YAML::LoadFile((e.path() / "kustomization.yaml").string());
        EXPECT_EQ(str(c["kind"]), "Component");
        EXPECT_NE(docs.find("components/" + e.path().filename().string()), std::string::npos) << "not documented";
        ASSERT_TRUE(c["patches"] && c["patches"].size() > 0);
        for (const auto& p : c["patches"]) {
            const auto target = p["target"];
            EXPECT_TRUE(std::any_of(
                objects.begin(), objects.end(),
                [&](const Object& o) { return o.kind() == str(target["kind"]) && o.name() == str(target["name"]); }))
                << "patch target " << str(target["kind"]) << "/" << str(target["name"]) << " is not installed";
        }
    }
}

// docs/deploy.md gives the `kubectl apply -f` equivalent of `-k`: the same files, in the same order
// (Namespace first: -f does not sort by kind).
TEST(DeployManifests, DocumentedApplyFileListMatchesTheKustomization) {
    const std::string docs = read_text(kDocs);
    const std::regex re(R"(kubectl apply -f (deploy/namespace\.yaml[^\s`]*))");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(docs, m, re)) << "docs/deploy.md has no `kubectl apply -f deploy/namespace.yaml,...`";
    Strings documented;
    std::stringstream ss(m[1].str());
    for (std::string f; std::getline(ss, f, ',');) documented.push_back(f.substr(std::string("deploy/").size()));
    EXPECT_EQ(documented, strings(kustomization()["resources"]));
}

TEST(DeployManifests, NamespacesAreConsistent) {
    const auto objects = default_objects();
    EXPECT_EQ(find_object(objects, "Namespace").name(), kNamespace);
    const StringSet cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"};
    auto check = [&](const Object& o) {
        SCOPED_TRACE(o.file + ": " + o.kind() + " " + o.name());
        if (cluster_scoped.count(o.kind())) {
            EXPECT_FALSE(o.node["metadata"]["namespace"]) << "cluster-scoped object with a namespace";
        } else {
            EXPECT_EQ(str(o.node["metadata"]["namespace"]), kNamespace);
        }
        for (const auto& s : o.node["subjects"]) {
            if (str(s["kind"]) == "ServiceAccount") {
                EXPECT_EQ(str(s["namespace"]), kNamespace);
            }
        }
    };
    for (const auto& o : objects) check(o);
    for (const auto& extra : kExtras)
        for (const auto& d : load_documents(kDeploy / extra)) check({extra, d});
}

// The ClusterRole grants exactly what the informers read: get, list and watch on each resource,
// nothing more (least privilege) and nothing less (a missing one is a 403 at start).
TEST(DeployManifests, ReaderClusterRoleMatchesTheInformers) {
    const YAML::Node role = YAML::LoadFile((kDeploy / "clusterrole-reader.yaml").string());
    ASSERT_EQ(role["kind"].as<std::string>(), "ClusterRole");
    std::set<std::pair<std::string, std::string>> granted;  // (group, resource)
    for (const auto& rule : role["rules"]) {
        std::set<std::string> verbs;
        for (const auto& v : rule["verbs"]) verbs.insert(v.as<std::string>());
        EXPECT_EQ(verbs, (std::set<std::string>{"get", "list", "watch"}));
        EXPECT_FALSE(rule["resourceNames"] || rule["nonResourceURLs"]);
        for (const auto& g : rule["apiGroups"])
            for (const auto& r : rule["resources"]) granted.emplace(g.as<std::string>(), r.as<std::string>());
    }
    std::set<std::pair<std::string, std::string>> read;
    for (auto r : npt::k8s::kAllResources) {
        const auto& info = npt::k8s::resource_info(r);
        read.emplace(std::string(info.group), std::string(info.name));
    }
    EXPECT_EQ(granted, read);
}

// The default install grants nothing but reads, and only through the reader ClusterRole bound to the
// ServiceAccount the DaemonSet runs as.
TEST(DeployManifests, AgentServiceAccountIsBoundToTheReaderRoleOnly) {
    const Agent a;
    const std::string sa = str(a.pod_spec["serviceAccountName"]);
    ASSERT_FALSE(sa.empty()) << "the DaemonSet must name its ServiceAccount (not run as default)";
    EXPECT_EQ(find_object(a.objects, "ServiceAccount").name(), sa);

    const YAML::Node binding = find_object(a.objects, "ClusterRoleBinding").node;
    EXPECT_EQ(str(binding["roleRef"]["kind"]), "ClusterRole");
    EXPECT_EQ(str(binding["roleRef"]["name"]), find_object(a.objects, "ClusterRole").name());
    ASSERT_EQ(binding["subjects"].size(), 1u);
    EXPECT_EQ(str(binding["subjects"][0]["kind"]), "ServiceAccount");
    EXPECT_EQ(str(binding["subjects"][0]["name"]), sa);
    EXPECT_EQ(str(binding["subjects"][0]["namespace"]), kNamespace);

    for (const auto& o : a.objects) {
        EXPECT_NE(o.kind(), "Role") << o.file;
        EXPECT_NE(o.kind(), "RoleBinding") << o.file;
    }
}

// What the cluster-wide tail needs, in the agents' namespace only: list the agent pods, proxy to them.
TEST(DeployManifests, TailUserRbacIsMinimal) {
    const auto docs = load_documents(kDeploy / "rbac-tail-user.yaml");
    std::optional<YAML::Node> role, binding;
    for (const auto& d : docs) {
        if (str(d["kind"]) == "Role") role = d;
        if (str(d["kind"]) == "RoleBinding") binding = d;
        EXPECT_NE(str(d["kind"]), "ClusterRole") << "the tail needs nothing cluster-wide";
        EXPECT_NE(str(d["kind"]), "ClusterRoleBinding");
    }
    ASSERT_TRUE(role && binding);
    std::map<std::string, StringSet> granted;  // resource -> verbs
    for (const auto& rule : (*role)["rules"]) {
        EXPECT_EQ(strings(rule["apiGroups"]), Strings{""});
        for (const auto& r : strings(rule["resources"]))
            for (const auto& v : strings(rule["verbs"])) granted[r].insert(v);
    }
    EXPECT_EQ(granted, (std::map<std::string, StringSet>{{"pods", {"get", "list"}}, {"pods/proxy", {"get"}}}));
    EXPECT_EQ(str((*binding)["roleRef"]["kind"]), "Role");
    EXPECT_EQ(str((*binding)["roleRef"]["name"]), str((*role)["metadata"]["name"]));
}

TEST(DeployManifests, DaemonSetRunsTheAgentOnEveryNode) {
    const Agent a;
    EXPECT_EQ(str(a.ds["apiVersion"]), "apps/v1");
    // A toleration with operator Exists and neither key nor effect tolerates every taint.
    const auto& tol = a.pod_spec["tolerations"];
    EXPECT_TRUE(std::any_of(tol.begin(), tol.end(), [](const YAML::Node& t) {
        return str(t["operator"]) == "Exists" && !t["key"] && !t["effect"];
    })) << "the agent must tolerate every taint (control plane, NoExecute, ...)";
    EXPECT_FALSE(a.pod_spec["nodeSelector"] || a.pod_spec["affinity"]) << "every node, no selection";

    for (const auto& [k, v] : kAgentLabels) {
        auto it = a.pod_labels.find(k);
        EXPECT_TRUE(it != a.pod_labels.end() && it->second == v) << k;
    }
    EXPECT_TRUE(selector_selects(string_map(a.ds["spec"]["selector"]["matchLabels"]), a.pod_labels));
    EXPECT_FALSE(a.ds["spec"]["selector"]["matchExpressions"]);

    ASSERT_EQ(a.pod_spec["containers"].size(), 1u);
    const Strings cmd = strings(a.container["command"]);
    const Strings args = strings(a.container["args"]);
    ASSERT_EQ(cmd, Strings{"/usr/local/bin/netpol-trace"});
    ASSERT_FALSE(args.empty());
    EXPECT_EQ(args[0], "agent");
    // --listen, when given, serves on the container port.
    for (const auto& arg : args) {
        if (arg.rfind("--listen=", 0) == 0) {
            EXPECT_EQ(arg.substr(arg.rfind(':') + 1), std::to_string(kAgentPort));
        }
    }

    // The image tag follows the project version (a release bumps both).
    const std::string image = str(a.container["image"]);
    EXPECT_EQ(image.substr(image.rfind(':') + 1), NPT_PROJECT_VERSION) << image;

    bool node_name = false;
    for (const auto& e : a.container["env"])
        if (str(e["name"]) == "NODE_NAME") node_name = str(e["valueFrom"]["fieldRef"]["fieldPath"]) == "spec.nodeName";
    EXPECT_TRUE(node_name) << "NODE_NAME must come from the downward API (spec.nodeName)";
}

TEST(DeployManifests, DaemonSetHasExactlyTheDocumentedPrivileges) {
    const Agent a;
    const YAML::Node sc = a.container["securityContext"];
    ASSERT_TRUE(sc);
    EXPECT_FALSE(is_true(sc["privileged"])) << "privileged is the documented fallback (components/privileged)";
    EXPECT_TRUE(sc["allowPrivilegeEscalation"] && !sc["allowPrivilegeEscalation"].as<bool>());
    EXPECT_TRUE(is_true(sc["readOnlyRootFilesystem"]));
    EXPECT_EQ(str(sc["runAsUser"]), "0") << "capabilities are granted to uid 0 only; say so explicitly";
    EXPECT_FALSE(str(sc["seccompProfile"]["type"]).empty())
        << "set explicitly: with kubelet --seccomp-default the runtime profile may refuse bpf()";

    EXPECT_EQ(strings(sc["capabilities"]["drop"]), Strings{"ALL"});
    const Strings add = strings(sc["capabilities"]["add"]);
    EXPECT_EQ(StringSet(add.begin(), add.end()), kCapabilities);
    EXPECT_EQ(StringSet(add.begin(), add.end()).size(), add.size());
    const std::string docs = read_text(kDocs);
    for (const auto& cap : add) EXPECT_NE(docs.find("CAP_" + cap), std::string::npos) << cap << " is not documented";

    for (const char* host : {"hostNetwork", "hostPID", "hostIPC"})
        EXPECT_FALSE(is_true(a.pod_spec[host])) << host << " (its NetworkPolicy must apply to it)";
    // Host paths are read-only.
    StringSet host_volumes;
    for (const auto& v : a.pod_spec["volumes"])
        if (v["hostPath"]) host_volumes.insert(str(v["name"]));
    for (const auto& m : a.container["volumeMounts"]) {
        if (host_volumes.count(str(m["name"]))) {
            EXPECT_TRUE(is_true(m["readOnly"])) << str(m["name"]);
        }
    }
}

TEST(DeployManifests, DaemonSetProbesResourcesAndScrapeAnnotations) {
    const Agent a;
    bool named_port = false;
    for (const auto& p : a.container["ports"])
        if (str(p["name"]) == kPortName)
            named_port = p["containerPort"].as<int>() == kAgentPort && str(p["protocol"]) != "UDP";
    ASSERT_TRUE(named_port) << "container port " << kPortName << " = TCP " << kAgentPort;

    for (const auto& [probe, path] : {std::pair{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}}) {
        SCOPED_TRACE(probe);
        const YAML::Node get = a.container[probe]["httpGet"];
        ASSERT_TRUE(get);
        EXPECT_EQ(str(get["path"]), path);
        EXPECT_EQ(str(get["port"]), kPortName) << "probe the named port";
    }

    const YAML::Node res = a.container["resources"];
    for (const char* kind : {"requests", "limits"})
        for (const char* r : {"cpu", "memory"}) {
            SCOPED_TRACE(std::string(kind) + "." + r);
            ASSERT_TRUE(quantity(str(res[kind][r]))) << "missing or not a quantity: " << str(res[kind][r]);
        }
    for (const char* r : {"cpu", "memory"})
        EXPECT_LE(*quantity(str(res["requests"][r])), *quantity(str(res["limits"][r]))) << r;
    // The design goal: under 64 MiB RSS with 10,000 pods, under 2% of a core idle; the limit must leave
    // room above it (BPF maps are charged to the pod too).
    EXPECT_GE(*quantity(str(res["limits"]["memory"])), 128.0 * 1048576);
    EXPECT_GE(*quantity(str(res["requests"]["cpu"])), 0.02);

    const auto ann = string_map(a.ds["spec"]["template"]["metadata"]["annotations"]);
    EXPECT_EQ(ann.count("prometheus.io/scrape") ? ann.at("prometheus.io/scrape") : "", "true");
    EXPECT_EQ(ann.count("prometheus.io/port") ? ann.at("prometheus.io/port") : "", std::to_string(kAgentPort));
    EXPECT_EQ(ann.count("prometheus.io/path") ? ann.at("prometheus.io/path") : "", "/metrics");
}

TEST(DeployManifests, ServiceSelectsTheAgentPodsAndTargetsTheirPort) {
    const Agent a;
    const YAML::Node svc = find_object(a.objects, "Service").node;
    EXPECT_TRUE(selector_selects(string_map(svc["spec"]["selector"]), a.pod_labels));
    ASSERT_EQ(svc["spec"]["ports"].size(), 1u);
    const YAML::Node port = svc["spec"]["ports"][0];
    EXPECT_EQ(port["port"].as<int>(), kAgentPort);
    EXPECT_EQ(a.container_port(port["targetPort"]), std::optional<int>(kAgentPort));
    EXPECT_NE(str(port["protocol"]), "UDP");
}

// The agent's own NetworkPolicy, structurally: it selects the agent pods, isolates both directions,
// admits only TCP 9842 and sends only to the API server ports.
TEST(DeployManifests, NetworkPolicyIsolatesTheAgentToWhatItNeeds) {
    const Agent a;
    const YAML::Node np = find_object(a.objects, "NetworkPolicy").node;
    EXPECT_TRUE(selector_selects(string_map(np["spec"]["podSelector"]["matchLabels"]), a.pod_labels));
    const Strings types = strings(np["spec"]["policyTypes"]);
    EXPECT_EQ(StringSet(types.begin(), types.end()), (StringSet{"Ingress", "Egress"}));

    auto ports_of = [](const YAML::Node& rules) {
        std::set<std::pair<std::string, int>> out;
        for (const auto& rule : rules) {
            EXPECT_TRUE(rule["ports"] && rule["ports"].size() > 0) << "a rule without ports allows every port";
            for (const auto& p : rule["ports"]) {
                EXPECT_FALSE(p["endPort"]);
                out.emplace(p["protocol"] ? str(p["protocol"]) : "TCP", p["port"].as<int>());
            }
        }
        return out;
    };
    EXPECT_EQ(ports_of(np["spec"]["ingress"]), (std::set<std::pair<std::string, int>>{{"TCP", kAgentPort}}));
    std::set<std::pair<std::string, int>> api;
    for (int p : kApiServerPorts) api.emplace("TCP", p);
    EXPECT_EQ(ports_of(np["spec"]["egress"]), api);
}

// ---- The agent's NetworkPolicy through the project's own engine ------------------------------------

namespace {

// A cluster around the installed manifests: the agent pod (from the DaemonSet's template) on worker-1,
// the API server on cp-1 behind the kubernetes Service (10.43.0.1:443 -> 192.168.1.10:6443), CoreDNS,
// Prometheus, an application pod.
constexpr const char* kSyntheticCluster = R"(
apiVersion: v1
kind: Node
metadata: {name: cp-1}
status: {addresses: [{type: InternalIP, address: 192.168.1.10}]}
---
apiVersion: v1
kind: Node
metadata: {name: worker-1}
status: {addresses: [{type: InternalIP, address: 192.168.1.20}]}
---
apiVersion: v1
kind: Service
metadata: {name: kubernetes, namespace: default}
spec:
  clusterIP: 10.43.0.1
  ports: [{name: https, port: 443, protocol: TCP, targetPort: 6443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: kubernetes, namespace: default, labels: {kubernetes.io/service-name: kubernetes}}
addressType: IPv4
endpoints: [{addresses: [192.168.1.10]}]
ports: [{name: https, port: 6443, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata: {name: coredns-6799fbcd5-x7k2p, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  nodeName: worker-1
  containers: [{name: coredns, ports: [{name: dns, containerPort: 53, protocol: UDP}]}]
status: {phase: Running, hostIP: 192.168.1.20, podIP: 10.42.1.2, podIPs: [{ip: 10.42.1.2}]}
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system}
spec:
  clusterIP: 10.43.0.10
  selector: {k8s-app: kube-dns}
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: dns}]
---
apiVersion: v1
kind: Pod
metadata: {name: prometheus-0, namespace: monitoring, labels: {app.kubernetes.io/name: prometheus}}
spec:
  nodeName: cp-1
  containers: [{name: prometheus, ports: [{name: web, containerPort: 9090}]}]
status: {phase: Running, hostIP: 192.168.1.10, podIP: 10.42.0.5, podIPs: [{ip: 10.42.0.5}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-5d8f7c9b6-abcde, namespace: shop, labels: {app: web}}
spec:
  nodeName: cp-1
  containers: [{name: web, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, hostIP: 192.168.1.10, podIP: 10.42.0.9, podIPs: [{ip: 10.42.0.9}]}
)";

const std::string kAgentPod = "netpol-trace/netpol-trace-agent-x7k2p";

// The pod the DaemonSet creates on worker-1: its template with a name, a node and an IP.
YAML::Node agent_pod(const Agent& a) {
    YAML::Node pod;
    pod["apiVersion"] = "v1";
    pod["kind"] = "Pod";
    pod["metadata"]["name"] = "netpol-trace-agent-x7k2p";
    pod["metadata"]["namespace"] = str(a.ds["metadata"]["namespace"]);
    pod["metadata"]["labels"] = YAML::Clone(a.ds["spec"]["template"]["metadata"]["labels"]);
    pod["spec"] = YAML::Clone(a.pod_spec);
    pod["spec"]["nodeName"] = "worker-1";
    pod["status"]["phase"] = "Running";
    pod["status"]["hostIP"] = "192.168.1.20";
    pod["status"]["podIP"] = "10.42.1.7";
    pod["status"]["podIPs"].push_back(YAML::Load("{ip: 10.42.1.7}"));
    return pod;
}

std::string emit(const YAML::Node& n) {
    YAML::Emitter out;
    out << n;
    return std::string(out.c_str()) + "\n";
}

// The state: the default install (the loader keeps the kinds it knows) + the agent pod + the cluster.
// `edit_policy` may change the agent's NetworkPolicy first.
std::shared_ptr<const npt::ClusterState> cluster(const std::function<void(YAML::Node&)>& edit_policy = {}) {
    const Agent a;
    std::string text;
    for (const auto& o : a.objects) {
        YAML::Node n = YAML::Clone(o.node);
        if (o.kind() == "NetworkPolicy" && edit_policy) edit_policy(n);
        text += "---\n" + emit(n);
    }
    text += "---\n" + emit(agent_pod(a));
    text += kSyntheticCluster;
    npt::ClusterObjects objects;
    if (auto err = npt::load_state_text(text, "deploy/ + synthetic cluster", objects)) {
        ADD_FAILURE() << err->message;
        return nullptr;
    }
    return npt::ClusterState::build(std::move(objects));
}

npt::Explanation ask(const npt::ClusterState& state, const std::string& from, const std::string& to, uint16_t port,
                     npt::Protocol protocol = npt::Protocol::TCP) {
    auto r = npt::explain_query(state, {from, to, port, protocol, std::nullopt});
    if (!r) throw std::runtime_error(r.error().message);
    return *r;
}

bool has_hint(const npt::Explanation& e, const std::string& code) {
    for (const auto& h : e.hints)
        if (h.code == code) return true;
    for (const auto& s : e.service)
        for (const auto& ep : s.endpoints)
            if (has_hint(ep, code)) return true;
    return false;
}

const std::string kAgentPolicy = "netpol-trace/netpol-trace-agent";

}  // namespace

TEST(DeployNetworkPolicyEngine, AgentReachesTheApiServerEndpointAfterDnat) {
    const auto state = cluster();
    ASSERT_TRUE(state);
    const auto e = ask(*state, kAgentPod, "10.43.0.1", 443);
    EXPECT_EQ(e.verdict, "allowed");
    ASSERT_EQ(e.service.size(), 1u);
    EXPECT_EQ(e.service[0].name, "default/kubernetes");
    ASSERT_EQ(e.service[0].endpoints.size(), 1u);
    const auto& ep = e.service[0].endpoints[0];
    EXPECT_EQ(ep.dst.ip.str(), "192.168.1.10");
    EXPECT_EQ(ep.dst.port, 6443);
    EXPECT_TRUE(ep.egress.isolated);
    EXPECT_EQ(ep.egress.allowed_by, Strings{kAgentPolicy});

    // The endpoint dialled directly, too.
    EXPECT_EQ(ask(*state, kAgentPod, "192.168.1.10", 6443).verdict, "allowed");
}

TEST(DeployNetworkPolicyEngine, EverythingElseOutboundIsDenied) {
    const auto state = cluster();
    ASSERT_TRUE(state);
    const auto app = ask(*state, kAgentPod, "shop/web-5d8f7c9b6-abcde", 8080);
    EXPECT_EQ(app.verdict, "denied");
    EXPECT_TRUE(app.egress.isolated);
    EXPECT_FALSE(app.egress.allowed);
    EXPECT_EQ(app.egress.policies, Strings{kAgentPolicy});

    const auto internet = ask(*state, kAgentPod, "203.0.113.7", 80);
    EXPECT_EQ(internet.verdict, "denied");

    // No DNS: the agent uses KUBERNETES_SERVICE_HOST, an IP.
    const auto dns = ask(*state, kAgentPod, "10.43.0.10", 53, npt::Protocol::UDP);
    EXPECT_EQ(dns.verdict, "denied");
    EXPECT_TRUE(has_hint(dns, npt::hint::kDnsEgressBlocked));

    // Another port on the API server's node.
    EXPECT_EQ(ask(*state, kAgentPod, "192.168.1.10", 10250).verdict, "denied");
}

TEST(DeployNetworkPolicyEngine, OnlyTheAgentPortIsReachable) {
    const auto state = cluster();
    ASSERT_TRUE(state);
    const auto scrape = ask(*state, "monitoring/prometheus-0", kAgentPod, kAgentPort);
    EXPECT_EQ(scrape.verdict, "allowed");
    EXPECT_TRUE(scrape.ingress.isolated);
    EXPECT_EQ(scrape.ingress.allowed_by, Strings{kAgentPolicy});

    // The API server's pod proxy (the cluster-wide tail) connects from the control plane's address.
    EXPECT_EQ(ask(*state, "192.168.1.10", kAgentPod, kAgentPort).verdict, "allowed");
    // The kubelet's probes come from the agent's own node: always allowed.
    EXPECT_EQ(ask(*state, "192.168.1.20", kAgentPod, kAgentPort).verdict, "allowed");

    const auto other = ask(*state, "monitoring/prometheus-0", kAgentPod, kAgentPort + 1);
    EXPECT_EQ(other.verdict, "denied");
    EXPECT_TRUE(has_hint(other, npt::hint::kPortNotAllowed));
    EXPECT_EQ(ask(*state, "shop/web-5d8f7c9b6-abcde", kAgentPod, 22).verdict, "denied");
}

// Why the egress rule names 6443 and not only the Service's 443: without it the engine reports the
// runbook case this tool exists for.
TEST(DeployNetworkPolicyEngine, AllowingOnlyTheServicePortWouldBreakTheAgent) {
    const auto state = cluster([](YAML::Node& np) {
        YAML::Node only443 = YAML::Load("[{ports: [{protocol: TCP, port: 443}]}]");
        np["spec"]["egress"] = only443;
    });
    ASSERT_TRUE(state);
    const auto e = ask(*state, kAgentPod, "10.43.0.1", 443);
    EXPECT_EQ(e.verdict, "denied");
    EXPECT_TRUE(has_hint(e, npt::hint::kServiceVipDnat));
}

// ---- The Dockerfile ------------------------------------------------------------------------------------

namespace {

struct DockerStage {
    std::string from;
    Strings instructions;  // continuation lines joined
};

std::vector<DockerStage> dockerfile_stages() {
    std::vector<DockerStage> stages;
    std::ifstream in(kDeploy / "Dockerfile");
    std::string line, current;
    auto flush = [&] {
        if (current.empty()) return;
        if (current.rfind("FROM ", 0) == 0) {
            std::istringstream ss(current.substr(5));
            std::string image;
            ss >> image;
            stages.push_back({image, {}});
        } else if (!stages.empty()) {
            stages.back().instructions.push_back(current);
        }
        current.clear();
    };
    while (std::getline(in, line)) {
        if (current.empty() && (line.empty() || line[0] == '#')) continue;
        if (!current.empty() && !line.empty() && line.find_first_not_of(' ') != std::string::npos &&
            line[line.find_first_not_of(' ')] == '#')
            continue;  // a comment inside a continued instruction
        const bool continued = !line.empty() && line.back() == '\\';
        current += (current.empty() ? "" : " ") + (continued ? line.substr(0, line.size() - 1) : line);
        if (!continued) flush();
    }
    flush();
    return stages;
}

// Packages named by `apt-get install` in a stage.
StringSet installed_packages(const DockerStage& stage) {
    StringSet out;
    for (const auto& ins : stage.instructions) {
        for (size_t at = ins.find("apt-get install"); at != std::string::npos;
             at = ins.find("apt-get install", at + 1)) {
            std::istringstream ss(ins.substr(at + std::string("apt-get install").size()));
            for (std::string w; ss >> w && w != "&&" && w != ";";)
                if (w[0] != '-') out.insert(w);
        }
    }
    return out;
}

std::string run(const std::string& cmd, int* status = nullptr) {
    std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
    std::string out;
    if (!p) return out;
    std::array<char, 4096> buf{};
    for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p.get())) > 0;) out.append(buf.data(), n);
    const int rc = ::pclose(p.release());
    if (status) *status = rc;
    return out;
}

}  // namespace

TEST(DeployDockerfile, StagesBuildFromBookwormAndCopyExistingSources) {
    const auto stages = dockerfile_stages();
    ASSERT_EQ(stages.size(), 2u);
    EXPECT_EQ(stages[0].from, "debian:bookworm");
    EXPECT_EQ(stages[1].from, "debian:bookworm-slim");
    bool configured = false;
    for (const auto& ins : stages[0].instructions) {
        if (ins.rfind("COPY ", 0) == 0) {
            std::istringstream ss(ins.substr(5));
            Strings words;
            for (std::string w; ss >> w;) words.push_back(w);
            for (size_t i = 0; i + 1 < words.size(); ++i)
                EXPECT_TRUE(fs::exists(kDeploy.parent_path() / words[i])) << "COPY of a missing path: " << words[i];
        }
        configured |= ins.find("-DNPT_BUILD_TESTS=OFF") != std::string::npos &&
                      ins.find("-DNPT_BUILD_BENCH=OFF") != std::string::npos;
    }
    EXPECT_TRUE(configured) << "the image builds the binary only";
    const auto entry = std::find_if(stages[1].instructions.begin(), stages[1].instructions.end(),
                                    [](const std::string& i) { return i.rfind("ENTRYPOINT", 0) == 0; });
    ASSERT_NE(entry, stages[1].instructions.end());
    EXPECT_NE(entry->find("/usr/local/bin/netpol-trace"), std::string::npos);
}

// Each library the built binary links (DT_NEEDED) comes from a package the runtime stage installs, or
// from the base image.
TEST(DeployDockerfile, RuntimeStageInstallsEveryLinkedLibrary) {
    int status = 0;
    run("command -v dpkg objdump >/dev/null 2>&1", &status);
    if (status != 0) GTEST_SKIP() << "needs dpkg and objdump (Debian)";
    const std::string binary = NPT_BINARY;
    ASSERT_TRUE(fs::exists(binary)) << binary;

    StringSet available = installed_packages(dockerfile_stages().back());
    EXPECT_FALSE(available.empty());
    // apt installs each package's dependencies with it (libnetfilter-conntrack3 brings libnfnetlink0, which a
    // binary built without optimisation links directly): one level, from this machine's package database.
    const StringSet listed = available;
    for (const auto& pkg : listed) {
        const std::string depends = run("dpkg-query -W -f='${Depends}' '" + pkg + "' 2>/dev/null");
        std::istringstream deps(depends);
        for (std::string dep; std::getline(deps, dep, ',');) {
            dep = dep.substr(dep.find_first_not_of(' '));
            available.insert(dep.substr(0, dep.find_first_of(" :|")));  // "libmnl0 (>= 1.0.3-4~)" -> libmnl0
        }
    }
    for (const char* base : {"libc6", "libstdc++6", "libgcc-s1"}) available.insert(base);  // in bookworm-slim

    const std::string dump = run("objdump -p '" + binary + "'");
    const std::regex needed(R"(NEEDED\s+(\S+))");
    size_t libraries = 0;
    for (std::sregex_iterator it(dump.begin(), dump.end(), needed), end; it != end; ++it) {
        const std::string soname = (*it)[1];
        // The sanitizer runtimes are linked only by the ASan/UBSan test build, never by the image's release
        // build.
        if (soname.rfind("libasan.", 0) == 0 || soname.rfind("libubsan.", 0) == 0 || soname.rfind("liblsan.", 0) == 0 ||
            soname.rfind("libtsan.", 0) == 0)
            continue;
        ++libraries;
        const std::string owners = run("dpkg -S '*/" + soname + "' 2>/dev/null");
        StringSet packages;
        std::istringstream ss(owners);
        for (std::string line; std::getline(ss, line);) {
            std::string pkg = line.substr(0, line.find(": "));
            for (std::string one; !pkg.empty();) {  // "a, b: path" when several packages own it
                const auto comma = pkg.find(", ");
                one = pkg.substr(0, comma);
                packages.insert(one.substr(0, one.find(':')));
                pkg = comma == std::string::npos ? "" : pkg.substr(comma + 2);
            }
        }
        EXPECT_TRUE(
            std::any_of(packages.begin(), packages.end(), [&](const std::string& p) { return available.count(p) > 0; }))
            << soname << " (from " << (owners.empty() ? "no package" : owners) << ") is not installed by the "
            << "runtime stage of deploy/Dockerfile";
    }
    EXPECT_GT(libraries, 3u);
}

// ---- The krew manifest template ---------------------------------------------------------------------------

// krew links `bin` as kubectl-<name, '-' as '_'>: the name the binary answers to as the plugin
// (cli/invocation.cpp). A release fills in exactly the three placeholders, and the caveats name every library
// package the runtime stage installs (checked against DT_NEEDED above): a krew archive carries no
// dependencies.
TEST(DeployKrew, TemplateNamesThePluginAndItsLibraries) {
    const std::string text = read_text(kDeploy / "krew" / "netpol-trace.yaml");
    for (const char* placeholder : {"{{VERSION}}", "{{URI}}", "{{SHA256}}"})
        EXPECT_NE(text.find(placeholder), std::string::npos) << placeholder;
    const std::regex any_placeholder(R"(\{\{([A-Z0-9_]+)\}\})");
    for (std::sregex_iterator it(text.begin(), text.end(), any_placeholder), end; it != end; ++it)
        EXPECT_TRUE(StringSet({"VERSION", "URI", "SHA256"}).count((*it)[1])) << (*it)[0];

    const YAML::Node plugin = YAML::Load(text);
    EXPECT_EQ(str(plugin["apiVersion"]), "krew.googlecontainertools.github.com/v1alpha2");
    EXPECT_EQ(str(plugin["kind"]), "Plugin");
    std::string name = str(plugin["metadata"]["name"]);
    std::replace(name.begin(), name.end(), '-', '_');
    EXPECT_EQ("kubectl-" + name, "kubectl-netpol_trace");
    EXPECT_EQ(str(plugin["spec"]["version"]), "v{{VERSION}}");
    ASSERT_EQ(plugin["spec"]["platforms"].size(), 1u);
    const YAML::Node platform = plugin["spec"]["platforms"][0];
    EXPECT_EQ(str(platform["selector"]["matchLabels"]["os"]), "linux");
    EXPECT_EQ(str(platform["selector"]["matchLabels"]["arch"]), "amd64");  // the committed vmlinux.h is x86's
    EXPECT_EQ(str(platform["bin"]), "netpol-trace");
    ASSERT_EQ(platform["files"].size(), 1u);
    EXPECT_EQ(str(platform["files"][0]["from"]), "netpol-trace");

    const std::string caveats = str(plugin["spec"]["caveats"]);
    const StringSet runtime = installed_packages(dockerfile_stages().back());
    EXPECT_FALSE(runtime.empty());
    const std::regex word(R"([a-z0-9][a-z0-9.+-]*[a-z0-9])");
    StringSet named;
    for (std::sregex_iterator it(caveats.begin(), caveats.end(), word), end; it != end; ++it) named.insert((*it)[0]);
    for (const auto& package : runtime)
        EXPECT_TRUE(named.count(package)) << "the krew caveats do not name " << package << ", a library it needs";
}

// ---- kubectl kustomize ------------------------------------------------------------------------------

namespace {

// kubectl as found when the build was configured; without it the kustomize tests skip, except under CI=true
// where a check that silently disappears is a failure.
#define NPT_REQUIRE_KUBECTL()                                                                             \
    do {                                                                                                  \
        if (std::string_view(NPT_KUBECTL).empty()) {                                                      \
            const char* ci = std::getenv("CI");                                                           \
            if (ci && std::string_view(ci) == "true") FAIL() << "kubectl was not found when configuring"; \
            GTEST_SKIP() << "kubectl was not found when configuring the build";                           \
        }                                                                                                 \
    } while (0)

// Builds an overlay of deploy/ with the given components; returns its objects.
std::vector<YAML::Node> kustomize(const Strings& components, std::string* error) {
    static int overlays = 0;
    const fs::path dir = fs::temp_directory_path() /
                         ("npt-deploy-overlay-" + std::to_string(::getpid()) + "-" + std::to_string(++overlays));
    fs::create_directories(dir);
    const std::string base = fs::relative(kDeploy, dir).string();
    {
        std::ofstream k(dir / "kustomization.yaml");
        k << "resources: [" << base << "]\n";
        if (!components.empty()) {
            k << "components:\n";
            for (const auto& c : components) k << "- " << base << "/components/" << c << "\n";
        }
    }
    int status = 0;
    const std::string out = run(std::string(NPT_KUBECTL) + " kustomize '" + dir.string() + "' 2>&1", &status);
    fs::remove_all(dir);
    if (status != 0) {
        *error = out;
        return {};
    }
    std::vector<YAML::Node> docs;
    for (const auto& d : YAML::LoadAll(out))
        if (d && !d.IsNull()) docs.push_back(d);
    return docs;
}

YAML::Node daemonset_of(const std::vector<YAML::Node>& docs) {
    for (const auto& d : docs)
        if (str(d["kind"]) == "DaemonSet") return d;
    return {};
}

// The API server refuses allowPrivilegeEscalation: false with privileged or CAP_SYS_ADMIN.
void expect_valid_escalation(const YAML::Node& sc) {
    const Strings add = strings(sc["capabilities"]["add"]);
    const bool needs = is_true(sc["privileged"]) || std::count(add.begin(), add.end(), "SYS_ADMIN");
    EXPECT_EQ(is_true(sc["allowPrivilegeEscalation"]), needs);
}

}  // namespace

TEST(DeployKustomize, DefaultInstallBuildsToTheListedObjects) {
    NPT_REQUIRE_KUBECTL();
    std::string error;
    const auto docs = kustomize({}, &error);
    ASSERT_FALSE(docs.empty()) << error;
    std::multiset<std::string> built, listed;
    for (const auto& d : docs) built.insert(str(d["kind"]) + "/" + str(d["metadata"]["name"]));
    for (const auto& o : default_objects()) listed.insert(o.kind() + "/" + o.name());
    EXPECT_EQ(built, listed);
    EXPECT_EQ(str(docs.front()["kind"]), "Namespace") << "kustomize orders the Namespace first";
    expect_valid_escalation(daemonset_of(docs)["spec"]["template"]["spec"]["containers"][0]["securityContext"]);
}

TEST(DeployKustomize, ComponentsBuildAloneAndTogether) {
    NPT_REQUIRE_KUBECTL();
    for (const Strings& comps :
         {Strings{"netns-inspection"}, Strings{"privileged"}, Strings{"netns-inspection", "privileged"},
          Strings{"privileged", "netns-inspection"}, Strings{"node-network"}, Strings{"flows-journal"},
          Strings{"node-network", "flows-journal", "netns-inspection"}}) {
        std::string name;
        for (const auto& c : comps) name += (name.empty() ? "" : "+") + c;
        SCOPED_TRACE(name);
        std::string error;
        const auto ds = daemonset_of(kustomize(comps, &error));
        ASSERT_TRUE(ds) << error;
        const YAML::Node spec = ds["spec"]["template"]["spec"];
        const YAML::Node container = spec["containers"][0];
        const YAML::Node sc = container["securityContext"];
        const auto has = [&](const char* c) { return std::count(comps.begin(), comps.end(), c) > 0; };
        EXPECT_EQ(is_true(spec["hostPID"]), has("netns-inspection"));
        EXPECT_EQ(is_true(sc["privileged"]), has("privileged"));
        EXPECT_EQ(is_true(spec["hostNetwork"]), has("node-network"));
        const Strings add = strings(sc["capabilities"]["add"]);
        StringSet expected = kCapabilities;
        if (has("netns-inspection")) expected.insert({"SYS_ADMIN", "SYS_PTRACE"});
        if (has("node-network")) expected.insert("NET_ADMIN");
        EXPECT_EQ(StringSet(add.begin(), add.end()), expected);
        const Strings args = strings(container["args"]);
        const bool journal =
            std::count(args.begin(), args.end(), "--flows-journal=/var/lib/netpol-trace/flows.jsonl") > 0;
        EXPECT_EQ(journal, has("flows-journal"));
        bool mounted = false;
        for (const auto& m : container["volumeMounts"]) mounted |= str(m["mountPath"]) == "/var/lib/netpol-trace";
        EXPECT_EQ(mounted, has("flows-journal"));
        EXPECT_TRUE(is_true(sc["readOnlyRootFilesystem"]) || has("privileged"));
        expect_valid_escalation(sc);
    }
}

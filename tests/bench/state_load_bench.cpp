// How fast `--state` loads a large cluster: a kubectl-style JSON List (`kubectl get pods,
// networkpolicies -A -o json`) of 100,000 pods and 1,000 policies, generated in memory. Prints
// the input size, parse+decode time and throughput, and ClusterState::build time. No assertions:
// the figures are for people and for spotting regressions.
//
// Cold numbers (a fresh parser, as the CLI loads once) include first-touch page faults, whose cost
// varies a hundredfold between bare metal and nested virtual machines; the bench prints their
// count and this machine's cost per fault so the figures can be read. THP in madvise mode: run it
// with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 to see the figures without most of those faults.
//
// Usage: state_load_bench [pods] [policies]
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "state/cluster_state.hpp"
#include "state/state_loader.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

constexpr int kNamespaces = 200;
constexpr int kPodsPerWorkload = 20;
constexpr int kNodes = 500;

// One pod as `kubectl get -o json` prints it (managedFields omitted, as kubectl does by default).
void append_pod(std::string& out, int i) {
    const int ns = i % kNamespaces;
    const int workload = i / kPodsPerWorkload;
    const int node = i % kNodes;
    const std::string hash = fmt::format("{:08x}", static_cast<unsigned>(workload) * 2654435761u);
    const std::string name = fmt::format("app-{}-{}-{:05x}", workload, hash.substr(0, 6), i & 0xfffff);
    // 4-6 labels: workload ones plus, for some, version and component.
    std::string labels = fmt::format(
        R"("app":"app-{0}","app.kubernetes.io/name":"app-{0}","pod-template-hash":"{1}","tier":"{2}")", workload,
        hash.substr(0, 10), workload % 3 == 0 ? "frontend" : (workload % 3 == 1 ? "backend" : "data"));
    if (workload % 2 == 0) labels += fmt::format(R"(,"version":"v{}")", workload % 7);
    if (workload % 4 == 0) labels += R"(,"app.kubernetes.io/component":"server")";
    fmt::format_to(
        std::back_inserter(out),
        R"({{"apiVersion":"v1","kind":"Pod","metadata":{{"creationTimestamp":"2024-05-01T10:00:00Z",)"
        R"("generateName":"app-{0}-{1}-","labels":{{{2}}},"name":"{3}","namespace":"ns-{4}",)"
        R"("ownerReferences":[{{"apiVersion":"apps/v1","blockOwnerDeletion":true,"controller":true,)"
        R"("kind":"ReplicaSet","name":"app-{0}-{1}","uid":"5c1d{5:08x}-aaaa-4bbb-8ccc-0123456789ab"}}],)"
        R"("resourceVersion":"{6}","uid":"9f3e{5:08x}-dddd-4eee-8fff-0123456789ab"}},)"
        R"("spec":{{"containers":[{{"image":"registry.example.com/app-{0}:1.{7}","imagePullPolicy":"IfNotPresent",)"
        R"("name":"app","ports":[{{"containerPort":8080,"name":"http","protocol":"TCP"}},)"
        R"({{"containerPort":9090,"name":"metrics","protocol":"TCP"}}],)"
        R"("resources":{{"limits":{{"memory":"256Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},)"
        R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File",)"
        R"("volumeMounts":[{{"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","name":"kube-api-access","readOnly":true}}]}}],)"
        R"("dnsPolicy":"ClusterFirst","enableServiceLinks":true,"nodeName":"node-{8}","preemptionPolicy":"PreemptLowerPriority",)"
        R"("priority":0,"restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{{}},)"
        R"("serviceAccount":"default","serviceAccountName":"default","terminationGracePeriodSeconds":30,)"
        R"("tolerations":[{{"effect":"NoExecute","key":"node.kubernetes.io/not-ready","operator":"Exists","tolerationSeconds":300}}]}},)"
        R"("status":{{"conditions":[{{"lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:02Z","status":"True","type":"Initialized"}},)"
        R"({{"lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:09Z","status":"True","type":"Ready"}},)"
        R"({{"lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:09Z","status":"True","type":"ContainersReady"}},)"
        R"({{"lastProbeTime":null,"lastTransitionTime":"2024-05-01T10:00:00Z","status":"True","type":"PodScheduled"}}],)"
        R"("containerStatuses":[{{"containerID":"containerd://{5:08x}","image":"registry.example.com/app-{0}:1.{7}",)"
        R"("imageID":"registry.example.com/app-{0}@sha256:{5:08x}","lastState":{{}},"name":"app","ready":true,)"
        R"("restartCount":0,"started":true,"state":{{"running":{{"startedAt":"2024-05-01T10:00:08Z"}}}}}}],)"
        R"("hostIP":"10.0.{9}.{10}","hostIPs":[{{"ip":"10.0.{9}.{10}"}}],"phase":"Running",)"
        R"("podIP":"10.{11}.{12}.{13}","podIPs":[{{"ip":"10.{11}.{12}.{13}"}}],"qosClass":"Burstable",)"
        R"("startTime":"2024-05-01T10:00:00Z"}}}})",
        workload, hash.substr(0, 10), labels, name, ns, static_cast<unsigned>(i), 100000 + i, workload % 10, node,
        node / 250, node % 250 + 1, 64 + (i >> 16), (i >> 8) & 0xff, i & 0xff);
}

void append_policy(std::string& out, int i) {
    const int ns = i % kNamespaces;
    const int workload = i * 5;
    fmt::format_to(
        std::back_inserter(out),
        R"({{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{{"name":"allow-app-{0}",)"
        R"("namespace":"ns-{1}","resourceVersion":"{2}"}},"spec":{{"podSelector":{{"matchLabels":{{"app":"app-{0}"}}}},)"
        R"("policyTypes":["Ingress","Egress"],"ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"tier":"frontend"}}}}}},)"
        R"({{"namespaceSelector":{{"matchLabels":{{"kubernetes.io/metadata.name":"monitoring"}}}},)"
        R"("podSelector":{{"matchExpressions":[{{"key":"app","operator":"In","values":["prometheus","grafana"]}}]}}}},)"
        R"({{"ipBlock":{{"cidr":"10.0.0.0/16","except":["10.0.{3}.0/24"]}}}}],)"
        R"("ports":[{{"port":"http","protocol":"TCP"}},{{"port":9000,"endPort":9100}}]}}],)"
        R"("egress":[{{"to":[{{"namespaceSelector":{{}},"podSelector":{{"matchLabels":{{"k8s-app":"kube-dns"}}}}}}],)"
        R"("ports":[{{"port":53,"protocol":"UDP"}},{{"port":53,"protocol":"TCP"}}]}}]}}}})",
        workload, ns, 200000 + i, i % 250);
}

std::string generate(int pods, int policies) {
    std::string out;
    out.reserve(static_cast<size_t>(pods) * 2600 + static_cast<size_t>(policies) * 1200);
    out += R"({"apiVersion":"v1","kind":"List","items":[)";
    for (int i = 0; i < pods; ++i) {
        if (i) out += ',';
        append_pod(out, i);
    }
    for (int i = 0; i < policies; ++i) {
        out += ',';
        append_policy(out, i);
    }
    out += R"(],"metadata":{"resourceVersion":""}})";
    return out;
}

long minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

// What one first-touch page fault costs here, from touching fresh 64 MB.
double microseconds_per_fault() {
    const size_t bytes = 64u << 20;
    const long before = minor_faults();
    const auto start = Clock::now();
    auto* p = static_cast<volatile char*>(std::malloc(bytes));
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    const double ms = ms_since(start);
    std::free(const_cast<char*>(p));
    return ms * 1e3 / static_cast<double>(std::max(1L, minor_faults() - before));
}

struct Timing {
    double best_ms = 1e300;
    long faults = 0;  // of the best run
    npt::ClusterObjects objects;
};

void check(const std::optional<npt::Error>& err) {
    if (!err) return;
    std::fprintf(stderr, "load failed: %s\n", err->message.c_str());
    std::exit(1);
}

Timing time_text(const std::string& text, std::string_view source, int runs) {
    Timing t;
    for (int r = 0; r < runs; ++r) {
        npt::ClusterObjects out;
        const long faults = minor_faults();
        const auto start = Clock::now();
        check(npt::load_state_text(text, source, out));
        const double ms = ms_since(start);
        if (ms < t.best_ms) {
            t.best_ms = ms;
            t.faults = minor_faults() - faults;
        }
        t.objects = std::move(out);
    }
    return t;
}

Timing time_file(const std::string& path, int runs) {
    Timing t;
    for (int r = 0; r < runs; ++r) {
        const long faults = minor_faults();
        const auto start = Clock::now();
        auto loaded = npt::load_state_files({path});
        const double ms = ms_since(start);
        if (!loaded) check(loaded.error());
        if (ms < t.best_ms) {
            t.best_ms = ms;
            t.faults = minor_faults() - faults;
        }
        t.objects = std::move(*loaded);
    }
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    const int pods = argc > 1 ? std::atoi(argv[1]) : 100'000;
    const int policies = argc > 2 ? std::atoi(argv[2]) : 1'000;
    constexpr int kRuns = 3;

    auto start = Clock::now();
    const std::string json = generate(pods, policies);
    fmt::print("generated {} pods + {} policies in {:.0f} ms\n", pods, policies, ms_since(start));
    const double mb = static_cast<double>(json.size()) / 1e6;
    fmt::print("input:               {} bytes ({:.1f} MB, {:.0f} bytes/pod)\n", json.size(), mb,
               static_cast<double>(json.size()) / (pods + policies));

    const double us_per_fault = microseconds_per_fault();
    fmt::print("page faults here:    {:.2f} us each (bare metal: ~0.1-0.3)\n", us_per_fault);
    auto report = [&](std::string_view what, const Timing& t) {
        fmt::print(
            "{:<21}{:.1f} ms (best of {}), {:.0f} MB/s; {} page faults (~{:.0f} ms of it), {} pods, {} "
            "policies\n",
            what, t.best_ms, kRuns, mb / (t.best_ms / 1e3), t.faults, t.faults * us_per_fault / 1e3,
            t.objects.pods.size(), t.objects.policies.size());
    };
    Timing t = time_text(json, "bench.json", kRuns);
    report("load_state_text:", t);

    // The CLI's path: a file read in pieces into one reused buffer, its list parsed item by item.
    char path[] = "/tmp/npt-state-bench-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, json.data(), json.size()) != static_cast<ssize_t>(json.size())) {
        std::perror("writing the state file");
        return 1;
    }
    close(fd);
    const Timing f = time_file(path, kRuns);
    unlink(path);
    report("load_state_files:", f);

    // The same text through the YAML path (JSON is YAML flow style); a tenth of it, yaml-cpp is slow.
    const int yaml_pods = std::max(1, pods / 10);
    const std::string yaml = "# as YAML\n" + generate(yaml_pods, policies / 10);
    const Timing y = time_text(yaml, "bench.yaml", 1);
    fmt::print("YAML parse+decode:   {:.1f} ms for {} pods ({:.1f} MB, {:.1f} MB/s)\n", y.best_ms, yaml_pods,
               static_cast<double>(yaml.size()) / 1e6, static_cast<double>(yaml.size()) / 1e6 / (y.best_ms / 1e3));

    start = Clock::now();
    const auto state = npt::ClusterState::build(std::move(t.objects));
    const double build_ms = ms_since(start);
    fmt::print("ClusterState::build: {:.1f} ms ({} pods indexed, ~{:.0f} MB)\n", build_ms, state->pods().size(),
               static_cast<double>(state->approximate_bytes()) / 1e6);
    return 0;
}

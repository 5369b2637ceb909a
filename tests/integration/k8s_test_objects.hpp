// Kubernetes objects as JSON for the fake API server, and waiting helpers, shared by the k8s integration
// tests.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "k8s/cluster_informer.hpp"

namespace npt::testing {

inline std::string namespace_json(const std::string& name, const std::string& labels = "{}") {
    return fmt::format(R"({{"kind":"Namespace","metadata":{{"name":"{}","labels":{}}}}})", name, labels);
}

inline std::string pod_json(const std::string& ns, const std::string& name, const std::string& ip,
                            const std::string& labels = "{}", const std::string& phase = "Running") {
    return fmt::format(
        R"({{"kind":"Pod","metadata":{{"name":"{}","namespace":"{}","labels":{}}},)"
        R"("spec":{{"nodeName":"node-1","containers":[{{"name":"c","ports":[{{"name":"pg","containerPort":5432}}]}}]}},)"
        R"("status":{{"phase":"{}","podIP":"{}","podIPs":[{{"ip":"{}"}}]}}}})",
        name, ns, labels, phase, ip, ip);
}

// Ingress to pods labelled app=<target> from pods labelled app=<from> of the same namespace, on TCP <port>.
inline std::string policy_json(const std::string& ns, const std::string& name, const std::string& target,
                               const std::string& from, int port) {
    return fmt::format(
        R"({{"kind":"NetworkPolicy","apiVersion":"networking.k8s.io/v1","metadata":{{"name":"{}","namespace":"{}"}},)"
        R"("spec":{{"podSelector":{{"matchLabels":{{"app":"{}"}}}},"policyTypes":["Ingress"],)"
        R"("ingress":[{{"from":[{{"podSelector":{{"matchLabels":{{"app":"{}"}}}}}}],"ports":[{{"protocol":"TCP","port":{}}}]}}]}}}})",
        name, ns, target, from, port);
}

inline std::string service_json(const std::string& ns, const std::string& name, const std::string& cluster_ip,
                                const std::string& app, int port) {
    return fmt::format(R"({{"kind":"Service","metadata":{{"name":"{}","namespace":"{}"}},)"
                       R"("spec":{{"type":"ClusterIP","clusterIP":"{}","clusterIPs":["{}"],"selector":{{"app":"{}"}},)"
                       R"("ports":[{{"port":{},"targetPort":{},"protocol":"TCP"}}]}}}})",
                       name, ns, cluster_ip, cluster_ip, app, port, port);
}

inline std::string endpoint_slice_json(const std::string& ns, const std::string& service, const std::string& ip,
                                       const std::string& pod, int port) {
    return fmt::format(
        R"({{"kind":"EndpointSlice","apiVersion":"discovery.k8s.io/v1","metadata":{{"name":"{}-abc","namespace":"{}",)"
        R"("labels":{{"kubernetes.io/service-name":"{}"}}}},"addressType":"IPv4",)"
        R"("endpoints":[{{"addresses":["{}"],"conditions":{{"ready":true}},"targetRef":{{"kind":"Pod","namespace":"{}","name":"{}"}}}}],)"
        R"("ports":[{{"port":{},"protocol":"TCP"}}]}})",
        service, ns, service, ip, ns, pod, port);
}

inline std::string node_json(const std::string& name, const std::string& ip) {
    return fmt::format(
        R"({{"kind":"Node","metadata":{{"name":"{}"}},"status":{{"addresses":[{{"type":"InternalIP","address":"{}"}}]}}}})",
        name, ip);
}

inline std::string items(std::initializer_list<std::string> objs) {
    std::string out = "[";
    for (const auto& o : objs) {
        if (out.size() > 1) out += ",";
        out += o;
    }
    return out + "]";
}

// Polls `pred` until it holds or `timeout` passes; returns whether it held.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

// Informer settings for tests: quick rebuilds and retries.
inline k8s::InformerOptions fast_informer_options() {
    k8s::InformerOptions o;
    o.min_rebuild_interval = std::chrono::milliseconds(20);
    o.backoff_initial = std::chrono::milliseconds(50);
    o.backoff_max = std::chrono::milliseconds(300);
    o.watch_timeout = std::chrono::seconds(30);
    o.page_size = 100;
    o.log = [](std::string_view m) { fmt::print(stderr, "informer: {}\n", m); };
    return o;
}

}  // namespace npt::testing

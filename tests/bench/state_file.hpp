// A generated cluster written as a state file, as `kubectl get namespaces,pods,networkpolicies -A -o json`
// prints it: what the benchmarks and the probes' output test give the binary.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "policy/manifest.hpp"
#include "state/objects.hpp"

namespace npt::bench {

inline nlohmann::json pod_json(const npt::PodInfo& p) {
    nlohmann::json labels = nlohmann::json::object();
    for (const auto& [k, v] : p.labels) labels[k] = v;
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& cp : p.ports)
        ports.push_back({{"name", cp.name}, {"containerPort", cp.port}, {"protocol", npt::protocol_name(cp.protocol)}});
    const std::string rs = p.name.substr(0, p.name.rfind('-'));
    return {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", p.name},
          {"namespace", p.ns},
          {"labels", labels},
          {"ownerReferences",
           nlohmann::json::array(
               {{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", rs}, {"controller", true}}})}}},
        {"spec", {{"nodeName", p.node}, {"containers", nlohmann::json::array({{{"name", "app"}, {"ports", ports}}})}}},
        {"status", {{"phase", "Running"}, {"podIP", p.ips[0].str()}, {"hostIP", p.host_ip->str()}}}};
}

inline std::string write_state(const npt::ClusterObjects& c, const std::filesystem::path& path) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& ns : c.namespaces) {
        nlohmann::json labels = {{"kubernetes.io/metadata.name", ns.name}};
        for (const auto& [k, v] : ns.labels) labels[k] = v;
        items.push_back(
            {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns.name}, {"labels", labels}}}});
    }
    for (const auto& p : c.pods) items.push_back(pod_json(p));
    for (const auto& p : c.policies) items.push_back(nlohmann::json::parse(npt::network_policy_json(p).dump()));
    std::ofstream(path) << nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}}.dump();
    return path;
}

}  // namespace npt::bench

#include "cli/agent_client.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ostream>
#include <sstream>

#include "k8s/api_resources.hpp"

namespace npt::cli {

namespace {

using Json = nlohmann::json;

std::string str(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<std::vector<AgentPod>> list_agents(k8s::ApiClient& client, const std::string& ns, const std::string& selector,
                                          const k8s::Cancellation* cancel) {
    const std::string path =
        fmt::format("/api/v1/namespaces/{}/pods?labelSelector={}", k8s::url_escape(ns), k8s::url_escape(selector));
    auto r = client.get(path, cancel);
    if (!r.ok())
        return client.error_for(r, fmt::format("list the netpol-trace agents in namespace {}", ns),
                                "needs list on pods and get on pods/proxy in that namespace");
    Json list = Json::parse(r.body, nullptr, false);
    if (list.is_discarded() || !list.is_object())
        return Error{fmt::format("listing the agents in namespace {}: the API server's answer is not JSON", ns)};
    std::vector<AgentPod> agents;
    for (const auto& item : list.value("items", Json::array())) {
        const Json meta = item.value("metadata", Json::object());
        const Json status = item.value("status", Json::object());
        if (meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null()) continue;
        if (str(status, "phase") != "Running") continue;
        agents.push_back({str(meta, "name"), str(item.value("spec", Json::object()), "nodeName")});
    }
    std::sort(agents.begin(), agents.end(), [](const AgentPod& a, const AgentPod& b) { return a.name < b.name; });
    return agents;
}

std::string agent_proxy_path(const AgentLocator& where, const AgentPod& agent, std::string_view endpoint,
                             std::string_view query) {
    return fmt::format("/api/v1/namespaces/{}/pods/{}:{}/proxy/{}{}", k8s::url_escape(where.ns),
                       k8s::url_escape(agent.name), where.port, endpoint, query);
}

Result<std::vector<Connection>> fetch_agent_connections(k8s::ApiClient& client, const AgentLocator& where,
                                                        const std::string& query, std::ostream& err) {
    auto agents = list_agents(client, where.ns, where.selector);
    if (!agents) return agents.error();
    if (agents->empty())
        return Error{
            fmt::format("no netpol-trace agents run in namespace {}: deploy them (kubectl apply -k deploy/, "
                        "see docs/deploy.md)",
                        where.ns)};
    std::vector<Connection> all;
    size_t answered = 0;
    for (const auto& a : *agents) {
        auto r = client.get(agent_proxy_path(where, a, "flows", query));
        if (r.status == 400) return Error{fmt::format("agent {}: {}", a.name, r.body.substr(0, r.body.find('\n')))};
        if (!r.ok()) {
            err << fmt::format("netpol-trace: agent {}/{} on node {}: {}\n", where.ns, a.name, a.node,
                               client.error_for(r, "get its connections", "needs get on pods/proxy").message);
            continue;
        }
        std::istringstream in(r.body);
        auto conns = read_connections(in, fmt::format("agent {}", a.name));
        if (!conns) {
            err << "netpol-trace: " << conns.error().message << '\n';
            continue;
        }
        ++answered;
        for (auto& c : *conns) all.push_back(std::move(c));
    }
    if (answered == 0) return Error{fmt::format("none of the {} netpol-trace agents answered", agents->size())};
    return all;
}

}  // namespace npt::cli

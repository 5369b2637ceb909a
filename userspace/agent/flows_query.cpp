#include "agent/flows_query.hpp"

#include <fmt/format.h>

#include "live/pod_scope.hpp"

namespace npt::agent {

Result<ConnectionFilter> parse_flows_query(const std::function<std::vector<std::string>(const char*)>& values,
                                           TimePoint now) {
    const auto list = [&](const char* key) {
        std::vector<std::string> out;
        for (const auto& v : values(key))
            for (auto& item : live::split_list(v)) out.push_back(std::move(item));
        return out;
    };
    ConnectionFilter f;
    f.namespaces = list("namespace");
    const auto pods = list("pod");
    if (pods.size() > 1) return Error{"give at most one pod= (NAME with one namespace=, or NAMESPACE/NAME)"};
    if (!pods.empty()) f.pod = pods.front();
    if (!f.pod.empty() && f.pod.find('/') == std::string::npos && f.namespaces.size() != 1)
        return Error{"pod=NAME needs exactly one namespace= (or write pod=NAMESPACE/NAME)"};
    const auto since = values("since");
    if (since.size() > 1) return Error{"give at most one since="};
    if (!since.empty()) {
        const auto d = parse_duration(since.front());
        if (!d) return Error{fmt::format("since={}: expected a duration such as 90s, 15m, 24h or 7d", since.front())};
        f.since = now - *d;
    }
    return f;
}

}  // namespace npt::agent

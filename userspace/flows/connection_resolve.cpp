// Resolution of a connection's ends against the cluster snapshot (apart from connection.cpp, whose reader and
// writer need no state).
#include <algorithm>

#include "flows/connection.hpp"
#include "state/cluster_state.hpp"

namespace npt {

void resolve_connection(const ClusterState& s, Connection& c) {
    for (ConnectionEnd* end : {&c.src, &c.dst}) {
        const auto pod = s.pod_by_ip(end->ip);
        if (!pod) continue;
        end->pod = s.pod_id(*pod);
        end->ns = std::string(s.pod_namespace(*pod));
        const auto wl = s.workload_of(*pod);
        end->workload = wl.kind + "/" + wl.name;
        end->labels.clear();
        for (const auto& l : s.labels(s.pods()[*pod].labels)) end->labels.emplace_back(s.str(l.key), s.str(l.value));
        std::sort(end->labels.begin(), end->labels.end());
    }
    if (c.side != Side::Server)
        if (const auto svc = s.service_by_ip(c.dst.ip))
            c.service = s.services()[*svc].ns + "/" + s.services()[*svc].name;
}

}  // namespace npt

#include "live/pod_scope.hpp"

#include <algorithm>

namespace npt::live {

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) out.push_back(item);
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

bool PodScope::pod_in_scope(const ClusterState& state, uint32_t index) const {
    const auto ns = state.pod_namespace(index);
    if (!namespaces.empty() && std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end()) return false;
    if (pod.empty()) return true;
    if (pod.find('/') != std::string::npos) return pod == state.pod_id(index);
    return pod == state.str(state.pods()[index].name);
}

bool PodScope::pod_id_in_scope(std::string_view id) const {
    const auto slash = id.find('/');
    if (slash == std::string_view::npos) return false;
    const auto ns = id.substr(0, slash), name = id.substr(slash + 1);
    if (!namespaces.empty() && std::find(namespaces.begin(), namespaces.end(), ns) == namespaces.end()) return false;
    if (pod.empty()) return true;
    return pod.find('/') != std::string::npos ? pod == id : pod == name;
}

bool PodScope::flow_in_scope(const Explanation& e) const {
    if (everything()) return true;
    for (const auto* ref : {&e.src, &e.dst})
        if (ref->pod && pod_id_in_scope(*ref->pod)) return true;
    return false;
}

}  // namespace npt::live

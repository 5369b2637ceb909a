#include "k8s/api_decode.hpp"

#include <fmt/format.h>

#include "state/k8s_decode.hpp"

namespace npt::k8s {

namespace {

template <typename T>
Result<ApiObject> wrap(Result<T> r) {
    if (!r) return r.error();
    return ApiObject(std::move(*r));
}

}  // namespace

std::string object_key(std::string_view ns, std::string_view name) {
    if (ns.empty()) return std::string(name);
    std::string k;
    k.reserve(ns.size() + 1 + name.size());
    k.append(ns).append(1, '/').append(name);
    return k;
}

std::string object_key(const ApiObject& obj) {
    return std::visit(
        [](const auto& o) -> std::string {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, NamespaceInfo> || std::is_same_v<T, NodeInfo> ||
                          std::is_same_v<T, ClusterNetworkPolicy>) {
                return o.name;
            } else {
                return object_key(o.ns, o.name);
            }
        },
        obj);
}

Result<ApiObject> decode_api_object(Resource r, simdjson::dom::element obj) {
    switch (r) {
        case Resource::Namespaces:
            return wrap(decode_namespace(obj));
        case Resource::Pods:
            return wrap(decode_pod(obj));
        case Resource::NetworkPolicies:
            return wrap(decode_network_policy(obj));
        case Resource::Services:
            return wrap(decode_service(obj));
        case Resource::EndpointSlices:
            return wrap(decode_endpoint_slice(obj));
        case Resource::Nodes:
            return wrap(decode_node(obj));
        case Resource::ClusterNetworkPolicies:
        case Resource::AdminNetworkPolicies:
        case Resource::BaselineAdminNetworkPolicies:
            return wrap(decode_cluster_policy(obj, resource_info(r).kind));
    }
    return Error{"unknown resource"};
}

Result<ListPage> ApiDecoder::decode_list(Resource r, std::string_view body) {
    simdjson::dom::element root;
    if (auto err = parser_.parse(body.data(), body.size()).get(root)) {
        return Error{fmt::format("list {}: invalid JSON: {}", resource_info(r).name, simdjson::error_message(err))};
    }
    ListPage page;
    simdjson::dom::object meta;
    if (!root["metadata"].get(meta)) {
        std::string_view v;
        if (!meta["resourceVersion"].get(v)) page.resource_version = v;
        if (!meta["continue"].get(v)) page.continue_token = v;
    }
    simdjson::dom::element items_el;
    if (root["items"].get(items_el)) {
        return Error{fmt::format("list {}: the response has no items", resource_info(r).name)};
    }
    if (items_el.is_null()) return page;  // Go encodes an empty slice as null sometimes
    simdjson::dom::array items;
    if (items_el.get(items)) {
        return Error{fmt::format("list {}: items is not a list", resource_info(r).name)};
    }
    page.items.reserve(items.size());
    for (simdjson::dom::element item : items) {
        auto obj = decode_api_object(r, item);
        if (obj) {
            page.items.push_back(std::move(*obj));
        } else {
            page.errors.push_back(obj.error().message);
        }
    }
    return page;
}

Result<WatchEvent> ApiDecoder::decode_watch_event(Resource r, std::string_view line) {
    simdjson::dom::element root;
    if (auto err = parser_.parse(line.data(), line.size()).get(root)) {
        return Error{fmt::format("watch {}: invalid JSON: {}", resource_info(r).name, simdjson::error_message(err))};
    }
    std::string_view type;
    simdjson::dom::element obj;
    if (root["type"].get(type) || root["object"].get(obj)) {
        return Error{fmt::format("watch {}: an event without type or object", resource_info(r).name)};
    }
    WatchEvent ev;
    if (type == "ADDED") {
        ev.type = WatchEventType::Added;
    } else if (type == "MODIFIED") {
        ev.type = WatchEventType::Modified;
    } else if (type == "DELETED") {
        ev.type = WatchEventType::Deleted;
    } else if (type == "BOOKMARK") {
        ev.type = WatchEventType::Bookmark;
    } else if (type == "ERROR") {
        ev.type = WatchEventType::Error;
        int64_t code = 0;
        if (!obj["code"].get(code)) ev.status_code = code;
        std::string_view msg;
        if (!obj["message"].get(msg)) ev.status_message = msg;
        return ev;
    } else {
        return Error{fmt::format("watch {}: unknown event type \"{}\"", resource_info(r).name, type)};
    }
    simdjson::dom::object meta;
    if (!obj["metadata"].get(meta)) {
        std::string_view v;
        if (!meta["resourceVersion"].get(v)) ev.resource_version = v;
        if (!meta["namespace"].get(v)) ev.ns = v;
        if (!meta["name"].get(v)) ev.name = v;
    }
    if (ev.type == WatchEventType::Bookmark) return ev;
    if (resource_info(r).namespaced && ev.ns.empty()) ev.ns = "default";
    if (!resource_info(r).namespaced) ev.ns.clear();
    auto decoded = decode_api_object(r, obj);
    if (decoded) {
        ev.object = std::move(*decoded);
    } else {
        ev.decode_error = decoded.error().message;
    }
    return ev;
}

}  // namespace npt::k8s

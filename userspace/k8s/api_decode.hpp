// Decoding API responses with simdjson and the typed decoders of state/k8s_decode.hpp: list pages and
// watch events (one JSON object per line: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}).
// An object that fails to decode is reported with its one-line reason, not fatal: the caller counts and
// skips it.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "k8s/api_resources.hpp"
#include "state/objects.hpp"

namespace npt::k8s {

using ApiObject =
    std::variant<NamespaceInfo, PodInfo, NetworkPolicy, ServiceInfo, EndpointSliceInfo, NodeInfo, ClusterNetworkPolicy>;

// "ns/name" for namespaced objects, "name" otherwise: the store key (each resource has its own map).
std::string object_key(std::string_view ns, std::string_view name);
std::string object_key(const ApiObject& obj);

struct ListPage {
    std::string resource_version;
    std::string continue_token;
    std::vector<ApiObject> items;
    std::vector<std::string> errors;  // items that did not decode, one line each
};

enum class WatchEventType : uint8_t { Added, Modified, Deleted, Bookmark, Error };

struct WatchEvent {
    WatchEventType type = WatchEventType::Added;
    std::string resource_version;     // the object's (ADDED/MODIFIED/DELETED/BOOKMARK)
    std::string ns, name;             // the object's, read even when it does not decode
    std::optional<ApiObject> object;  // absent for BOOKMARK/ERROR and when decoding failed
    std::string decode_error;         // why `object` is absent for ADDED/MODIFIED/DELETED
    int64_t status_code = 0;          // ERROR: the Status code (410: resourceVersion too old)
    std::string status_message;
};

// Holds a reusable simdjson parser: one per thread.
class ApiDecoder {
  public:
    Result<ListPage> decode_list(Resource r, std::string_view body);
    Result<WatchEvent> decode_watch_event(Resource r, std::string_view line);
    // Frees the parser's buffers (sized to the largest document so far); the next decode allocates anew.
    void release_buffers() { parser_ = simdjson::dom::parser{}; }

  private:
    simdjson::dom::parser parser_;
};

// The typed decoder for a resource's objects.
Result<ApiObject> decode_api_object(Resource r, simdjson::dom::element obj);

}  // namespace npt::k8s

// Typed decoders: one Kubernetes API object (JSON as the API server sends it, or a YAML manifest)
// into the trimmed object model of objects.hpp, defaulted and validated as the API server does.
// The file loader uses them on every item of a list; the API client uses the JSON ones on list
// responses and watch events.
//
// Errors are one line, "<Kind> <ns>/<name>: <field path>: <what is wrong>", e.g.
//   NetworkPolicy app/allow-db: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR "10.0.0.0/33"
// (cluster-scoped kinds have no "<ns>/"; an object without a name is named by DecodeContext::where).
//
// This header exposes simdjson types: a target including it must link simdjson::simdjson (npt_state
// does, PUBLIC), whose SIMDJSON_THREADS_ENABLED definition changes dom::parser's layout.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "state/objects.hpp"

namespace YAML {
class Node;
}

namespace npt {

enum class ObjectKind : uint8_t {
    Namespace,
    Pod,
    NetworkPolicy,
    Service,
    EndpointSlice,
    Endpoints,
    Node,
    ClusterNetworkPolicy,        // policy.networking.k8s.io/v1alpha2, v1beta1
    AdminNetworkPolicy,          // policy.networking.k8s.io/v1alpha1
    BaselineAdminNetworkPolicy,  // policy.networking.k8s.io/v1alpha1
    ReplicaSet,                  // apps/v1: names the Deployment behind a pod
};

const char* object_kind_name(ObjectKind kind);  // "Pod", "NetworkPolicy", ...
bool is_namespaced(ObjectKind kind);

// The kind the decoders read for an apiVersion/kind pair, or nothing (another group's object of
// the same name, e.g. Calico's projectcalico.org NetworkPolicy, is not ours). An empty apiVersion
// matches, as list items often omit it.
std::optional<ObjectKind> known_object_kind(std::string_view api_version, std::string_view kind);

// core/v1 Endpoints, converted: one EndpointSliceInfo per subset (addresses ready, notReadyAddresses
// not ready), named "<endpoints name>/subsets[<i>]" so they never collide with real EndpointSlices.
struct EndpointsInfo {
    std::string ns;
    std::string name;
    std::vector<EndpointSliceInfo> slices;
};

// An object of a kind the decoders do not read (Deployment, ConfigMap, ...): skipped, not an error.
struct IgnoredObject {
    std::string api_version;
    std::string kind;
};

using DecodedObject = std::variant<IgnoredObject, NamespaceInfo, PodInfo, NetworkPolicy, ServiceInfo, EndpointSliceInfo,
                                   EndpointsInfo, NodeInfo, ClusterNetworkPolicy, ReplicaSetInfo>;

struct DecodeContext {
    // For items of a typed list (PodList, ...), which may omit kind and apiVersion.
    std::string_view default_kind;
    std::string_view default_api_version;
    // Names the object in errors while its name is unknown, e.g. "items[3]".
    std::string_view where;
    // Nodes the decoder may still visit, or nullptr for no bound. YAML aliases can make a small
    // document expand into an exponential tree; the loader bounds the work by the input size.
    size_t* node_budget = nullptr;
};

// Decodes any object by its kind/apiVersion; IgnoredObject for kinds not read. Lists are not
// objects: the loader unpacks them.
Result<DecodedObject> decode_object(simdjson::dom::element obj, const DecodeContext& ctx = {});
Result<DecodedObject> decode_object(const YAML::Node& obj, const DecodeContext& ctx = {});

// Decoders for an object already known to be of the kind (kind/apiVersion are not checked).
Result<NamespaceInfo> decode_namespace(simdjson::dom::element obj);
Result<PodInfo> decode_pod(simdjson::dom::element obj);
Result<NetworkPolicy> decode_network_policy(simdjson::dom::element obj);
Result<ServiceInfo> decode_service(simdjson::dom::element obj);
Result<EndpointSliceInfo> decode_endpoint_slice(simdjson::dom::element obj);
Result<NodeInfo> decode_node(simdjson::dom::element obj);
// kind: ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy.
Result<ClusterNetworkPolicy> decode_cluster_policy(simdjson::dom::element obj, ObjectKind kind);

}  // namespace npt

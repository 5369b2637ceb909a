// Loading cluster state from files (`--state FILE`): what `kubectl get ... -o json|yaml` prints,
// API list responses, single objects and multi-document YAML manifests.
//
// - Format by content: JSON when the first non-space character is '{' or '[' (simdjson), else
//   YAML (yaml-cpp; `---` separated documents, empty documents skipped).
// - Lists: a `List` whose items carry their kind, or a typed list (`PodList`, ...) whose items may
//   omit kind and apiVersion (taken from the list). A top-level array is read as a list of items.
// - Kinds read: Namespace, Pod, Service, Endpoints (v1), NetworkPolicy (networking.k8s.io/v1),
//   EndpointSlice (discovery.k8s.io/v1), Node, ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2,
//   v1beta1), AdminNetworkPolicy and BaselineAdminNetworkPolicy (v1alpha1), ReplicaSet (apps/v1: the
//   Deployment behind a pod). Other kinds are skipped and counted in LoadStats.
// - Objects are defaulted and validated as the API server does (k8s_decode.hpp). The first error
//   stops the load; it is one line naming the source, the object and the field:
//     state.json: NetworkPolicy app/allow-db: spec.ingress[0].from[1].ipBlock.cidr: invalid CIDR
//     "10.0.0.0/33" policies.yaml (document 3): Pod default/web: status.podIP: invalid IP address
//     "10.0.0.300" state.yaml: line 12, column 3: illegal map value state.json: invalid JSON: <simdjson's
//     message>
// - The same object (kind, namespace, name) given twice, in one source or several: the later one
//   wins. Endpoints are converted into one slice per subset; they are dropped for a Service that
//   also has real EndpointSlices (kube-proxy reads slices), so `kubectl get endpoints,endpointslices`
//   does not count every endpoint twice.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "state/objects.hpp"

namespace npt {

struct LoadOptions {
    bool allow_stdin = true;  // "-" reads standard input
};

struct LoadStats {
    size_t documents = 0;                           // non-empty JSON texts or YAML documents
    size_t objects = 0;                             // objects of a kind read (before duplicates are merged)
    size_t ignored_kinds = 0;                       // objects of other kinds, skipped
    std::map<std::string, size_t> ignored_by_kind;  // "apps/v1 Deployment" -> count, for --debug
};

// Parses one text (JSON or YAML) and appends its objects to `out`. `source` names the text in
// errors. On error `out` is left as it was.
std::optional<Error> load_state_text(std::string_view text, std::string_view source, ClusterObjects& out,
                                     LoadStats* stats = nullptr);

// Reads each file in order ("-" = standard input). The first error stops the load and is returned,
// e.g. `state.json: cannot read: No such file or directory`.
Result<ClusterObjects> load_state_files(const std::vector<std::string>& paths, LoadStats* stats = nullptr,
                                        const LoadOptions& options = {});

}  // namespace npt

// NetworkPolicies as Kubernetes manifests: the objects a fix proposes, as JSON (for merge patches) and as YAML
// documents ready for `kubectl apply -f -`. Every string is double-quoted in YAML, so no YAML 1.1 reader (kubectl's)
// takes a namespace "y" or a label value "on" for a boolean.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "state/cluster_state.hpp"
#include "state/objects.hpp"

namespace npt {

using ManifestJson = nlohmann::ordered_json;

ManifestJson selector_json(const LabelSelector& selector);
// One rule of spec.ingress (`from`) or spec.egress (`to`).
ManifestJson policy_rule_json(const PolicyRule& rule, Direction dir);
ManifestJson policy_rules_json(const std::vector<PolicyRule>& rules, Direction dir);
// The whole object: apiVersion, kind, metadata (name, namespace), spec with explicit policyTypes.
ManifestJson network_policy_json(const NetworkPolicy& policy);

// A YAML document of a JSON value (block style, strings double-quoted), without the leading "---".
std::string manifest_yaml(const ManifestJson& value);

// A label map as a selector of matchLabels.
LabelSelector match_labels(const LabelMap& labels);

// The name label every namespace carries (the API server sets it).
inline constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

// A pod's labels.
LabelMap pod_labels(const ClusterState& s, uint32_t pod);
// The labels a selector of the pod's workload should use: all but those telling one pod or one rollout from
// another (pod-template-hash, controller-revision-hash, statefulset.kubernetes.io/pod-name,
// apps.kubernetes.io/pod-index, pod-template-generation), which would break at the next restart; all of them when
// nothing else tells the pod apart.
LabelMap stable_labels(const ClusterState& s, uint32_t pod);

}  // namespace npt

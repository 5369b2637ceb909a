// The cluster snapshot the engine evaluates against: immutable once built, indexed for the
// questions a probe asks (IP -> pod, namespace -> policies, pod -> policies selecting it,
// ClusterIP -> Service -> endpoints).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/ip_addr.hpp"
#include "common/string_pool.hpp"
#include "state/objects.hpp"

namespace npt {

namespace cni {
struct NamingIndex;
}

// The CNI naming maps of one snapshot (state/cni_naming.hpp): made empty with the snapshot and filled the first
// time a lookup needs each map, safely from any thread. A copy (derive()) starts with its own, empty maps.
class NamingSlot {
  public:
    NamingSlot();
    ~NamingSlot();
    NamingSlot(const NamingSlot&);
    NamingSlot& operator=(const NamingSlot&);
    cni::NamingIndex& get() const { return *index_; }

  private:
    std::unique_ptr<cni::NamingIndex> index_;
};

enum class Direction : uint8_t { Ingress, Egress };
const char* direction_name(Direction d);  // "ingress" / "egress"

struct Label {
    StrId key;
    StrId value;
};

using LabelSetId = uint32_t;
using PortSetId = uint32_t;
inline constexpr uint32_t kNone = UINT32_MAX;

struct PodRecord {
    uint32_t ns = 0;  // index into namespaces()
    StrId name = kNoStr;
    LabelSetId labels = 0;
    PortSetId ports = 0;
    uint32_t selection = 0;  // index of the (namespace, labels) selection entry
    StrId node = kNoStr;
    std::optional<IpAddr> ip4, ip6, host_ip;
    StrId owner_kind = kNoStr;  // the controller owner reference: "ReplicaSet", "StatefulSet", ...
    StrId owner_name = kNoStr;
    bool host_network = false;
    bool running = true;      // phase Running (or not given)
    bool primary_v6 = false;  // status.podIP is the IPv6 address

    const std::optional<IpAddr>& ip(IpFamily f) const { return f == IpFamily::V4 ? ip4 : ip6; }
};

// A quick, conservative test of whether any rule of one cluster policy, in one direction, can match a flow: it
// says no only when none can, so the tier walk skips that policy without looking at its rules.
struct ClusterPolicyFilter {
    bool any_port = true;              // some rule matches every port (no protocols, a named port, an unknown entry)
    std::vector<ClusterPort> ports;    // otherwise the flow's protocol and port are in one of these
    bool any_remote = true;            // some peer selects by something else than namespaces, pods and networks
    std::vector<uint64_t> namespaces;  // otherwise the remote end is a pod of one of these namespaces (a bitset)...
    std::vector<Cidr> networks;        // ...or an address in one of these networks
};

struct NamespaceRecord {
    StrId name = kNoStr;
    LabelSetId labels = 0;
    std::vector<uint32_t> policies;  // indexes into policies(), sorted by name
};

// A change to a snapshot: what `--fix`, `whatif` and `advise` evaluate before anything is applied. Objects
// are matched by identity: a NetworkPolicy by (namespace, name), a cluster policy by (kind, name).
struct StateChange {
    std::vector<NetworkPolicy> upsert_policies;                        // replaces the policy of that name, or adds it
    std::vector<std::pair<std::string, std::string>> delete_policies;  // (namespace, name)
    std::vector<ClusterNetworkPolicy> upsert_cluster_policies;
    std::vector<std::pair<ClusterPolicyKind, std::string>> delete_cluster_policies;
    std::vector<std::pair<uint32_t, LabelMap>> pod_labels;           // (pod index, its new labels, all of them)
    std::vector<std::pair<std::string, LabelMap>> namespace_labels;  // (namespace, its new labels)
};

class ClusterState {
  public:
    // Indexes the objects. Namespaces referenced by pods or policies but not given are created
    // with the labels the API server always sets (kubernetes.io/metadata.name).
    static std::shared_ptr<const ClusterState> build(ClusterObjects objects);
    // This snapshot with the change applied: a copy whose policy indexes are rebuilt; every pod keeps its index,
    // so a flow of this snapshot is a flow of the derived one. Costs a copy of the indexes (a few ms for 10,000
    // pods), not a rebuild from objects.
    std::shared_ptr<const ClusterState> derive(const StateChange& change) const;

    // The reverse maps from CNI dataplane names (Calico's hashed chains and interfaces, bare policy names) to
    // this snapshot's objects. They live and die with the snapshot.
    cni::NamingIndex& naming_index() const { return naming_.get(); }

    const StringPool& strings() const { return strings_; }
    std::string_view str(StrId id) const { return strings_.view(id); }

    std::span<const Label> labels(LabelSetId id) const;
    std::optional<StrId> label_value(LabelSetId set, StrId key) const;
    std::span<const ContainerPort> ports(PortSetId id) const;

    const std::vector<NamespaceRecord>& namespaces() const { return namespaces_; }
    const std::vector<PodRecord>& pods() const { return pods_; }
    const std::vector<NetworkPolicy>& policies() const { return policies_; }
    const std::vector<ServiceInfo>& services() const { return services_; }
    const std::vector<NodeInfo>& nodes() const { return nodes_; }
    LabelSetId node_labels(uint32_t node) const { return node_labels_[node]; }

    // ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies in evaluation order: the
    // Admin tier by priority (then name), then the Baseline tier by priority (then name), a
    // BaselineAdminNetworkPolicy last.
    const std::vector<ClusterNetworkPolicy>& cluster_policies() const { return cluster_policies_; }
    // Those whose subject selects the pod and that have rules for the direction, in evaluation order (indexes
    // into cluster_policies()). hostNetwork pods are never subjects.
    std::span<const uint32_t> cluster_policies_for(uint32_t pod, Direction dir) const {
        const auto& rec = pods_[pod];
        if (rec.host_network) return {};
        const auto& entry = selections_[rec.selection];
        return dir == Direction::Ingress ? std::span<const uint32_t>(entry.cluster_ingress)
                                         : std::span<const uint32_t>(entry.cluster_egress);
    }
    // Whether a pod-set selector (a subject, or a namespaces/pods peer) selects the pod.
    bool pod_set_selects(const PodSetSelector& sel, uint32_t pod) const;
    const ClusterPolicyFilter& cluster_policy_filter(uint32_t policy, Direction dir) const {
        return cluster_filters_[2 * size_t(policy) + (dir == Direction::Egress)];
    }
    // The union of the filters of the tier's policies among cluster_policies_for(pod, dir): when it says no, no
    // rule of them can match. Null when no policy of that tier selects the pod in that direction.
    const ClusterPolicyFilter* cluster_tier_filter(uint32_t pod, Direction dir, PolicyTier tier) const {
        const auto& entry = selections_[pods_[pod].selection];
        const uint32_t f = entry.cluster_filter[dir == Direction::Egress][static_cast<size_t>(tier)];
        return f == kNone ? nullptr : &selection_filters_[f];
    }
    // ClusterPolicyFilter's test for a flow whose protocol and destination port these are, and whose remote end
    // (the peer a rule of that direction matches) is `remote_pod` (a non-hostNetwork pod) at `remote_ip`.
    bool cluster_policy_may_match(const ClusterPolicyFilter& f, Protocol protocol, uint16_t port,
                                  std::optional<uint32_t> remote_pod, const IpAddr& remote_ip) const {
        if (!f.any_port) {
            bool hit = false;
            for (const auto& p : f.ports) {
                if (p.protocol == protocol &&
                    (p.port == 0 || (port >= p.port && port <= (p.end_port ? p.end_port : p.port)))) {
                    hit = true;
                    break;
                }
            }
            if (!hit) return false;
        }
        if (f.any_remote) return true;
        if (remote_pod) {
            const uint32_t ns = pods_[*remote_pod].ns;
            if ((f.namespaces[ns / 64] >> (ns % 64)) & 1) return true;
        }
        for (const auto& c : f.networks)
            if (c.contains(remote_ip)) return true;
        return false;
    }
    // Whether a namespaces or pods peer of cluster_policies() selects the pod (its namespaces precomputed).
    bool cluster_peer_selects(const ClusterPeer& peer, uint32_t pod) const {
        const auto& rec = pods_[pod];
        if (rec.host_network) return false;
        const uint64_t* set = namespace_sets_.data() + size_t(peer.namespace_set) * namespace_set_words_;
        if (!((set[rec.ns / 64] >> (rec.ns % 64)) & 1)) return false;
        return !peer.pods.pods || selector_matches(*peer.pods.pods, rec.labels);
    }

    std::optional<uint32_t> find_namespace(std::string_view name) const;
    std::optional<uint32_t> find_pod(std::string_view ns, std::string_view name) const;
    // The pod that holds this IP (non-hostNetwork pods only: a hostNetwork pod's IP is its node's).
    std::optional<uint32_t> pod_by_ip(const IpAddr& ip) const;
    // Pods whose IP this is as hostNetwork pods, or whose node has it: the "node" of a flow.
    std::optional<uint32_t> node_by_ip(const IpAddr& ip) const;
    std::optional<uint32_t> service_by_ip(const IpAddr& ip) const;  // ClusterIP or external IP

    std::string_view pod_id(uint32_t pod) const { return pod_ids_.id(pod); }             // "ns/name"
    const std::string& policy_id(uint32_t policy) const { return policy_ids_[policy]; }  // NetworkPolicy "ns/name"
    // The pod's primary address (status.podIP).
    const std::optional<IpAddr>& primary_ip(uint32_t pod) const {
        const auto& rec = pods_[pod];
        return rec.primary_v6 ? rec.ip6 : rec.ip4;
    }

    // The workload a pod belongs to, as its controller owner names it: a ReplicaSet's pod reports the
    // Deployment that owns the ReplicaSet (from the state's ReplicaSets, else from the pod-template-hash suffix
    // of the ReplicaSet's name); {"Pod", name} for a pod without an owner.
    struct Workload {
        std::string kind;
        std::string name;
    };
    Workload workload_of(uint32_t pod) const;
    std::string_view pod_namespace(uint32_t pod) const { return str(namespaces_[pods_[pod].ns].name); }

    // Policies that select this pod and affect the given direction (sorted by "ns/name").
    std::span<const uint32_t> isolating_policies(uint32_t pod, Direction dir) const;

    // Whether a selector matches a label set (ids must have been resolved by build()).
    bool selector_matches(const LabelSelector& sel, LabelSetId labels) const;
    bool requirement_matches(const LabelRequirement& req, LabelSetId labels) const;

    struct ResolvedEndpoint {
        IpAddr ip;
        uint16_t port = 0;
        Protocol protocol = Protocol::TCP;
        std::optional<uint32_t> pod;  // when the endpoint is a known pod
        bool ready = true;
    };
    // The endpoints a Service port forwards to (EndpointSlices, else the Service's selector over
    // pods with targetPort resolved). Only endpoints of the given family.
    std::vector<ResolvedEndpoint> service_endpoints(uint32_t service, const ServicePort& port, IpFamily family) const;

    size_t approximate_bytes() const;

  private:
    struct SelectionEntry {
        uint32_t ns = 0;
        LabelSetId labels = 0;
        std::vector<uint32_t> ingress;
        std::vector<uint32_t> egress;
        std::vector<uint32_t> cluster_ingress;  // cluster policies, evaluation order
        std::vector<uint32_t> cluster_egress;
        // The union of their filters per direction and tier (into selection_filters_; kNone: no such policy),
        // indexed [egress][tier].
        uint32_t cluster_filter[2][2] = {{kNone, kNone}, {kNone, kNone}};
    };

    ClusterState() = default;
    ClusterState(const ClusterState&) = default;  // derive()

    uint32_t ensure_namespace(std::string_view name);
    void set_namespace_labels(uint32_t ns, LabelMap labels);
    void set_policies(std::vector<NetworkPolicy> policies);
    void set_cluster_policies(std::vector<ClusterNetworkPolicy> policies);
    uint32_t selection_for(uint32_t ns, LabelSetId labels);
    // Everything that depends on the policies and on the pods' (namespace, labels): the per-namespace policy
    // lists, the selection entries' lists, the cluster policies' namespace sets and filters.
    void index_policies();
    void resolve_selector_ids(LabelSelector& sel);
    void resolve_cluster_policy_ids(ClusterNetworkPolicy& cnp);
    bool pod_set_matches(const PodSetSelector& sel, uint32_t ns, LabelSetId pod_labels) const;
    LabelSetId intern_labels(const LabelMap& labels);
    PortSetId intern_ports(const std::vector<ContainerPort>& ports);

    NamingSlot naming_;
    StringPool strings_;
    std::vector<Label> label_storage_;
    std::vector<std::pair<uint32_t, uint32_t>> label_sets_;  // (offset, count) into label_storage_
    std::unordered_map<std::string, LabelSetId> label_set_index_;
    std::vector<std::vector<ContainerPort>> port_sets_;
    std::unordered_map<std::string, PortSetId> port_set_index_;

    std::vector<NamespaceRecord> namespaces_;
    std::unordered_map<StrId, uint32_t> namespace_index_;
    std::vector<PodRecord> pods_;
    std::unordered_map<uint64_t, uint32_t> pod_name_index_;  // (ns << 32 | name) -> pod
    // "ns/name" of each pod, as outputs name it, and the pod of each: one lookup for a pod asked by name. The ids
    // are stored back to back in one string, so reading one touches its bytes and no string object. The index is
    // open addressing over them (slots of 8 bytes, at most half full): a lookup reads one slot, and an id's bytes
    // only when the slot's tag (the high bits of its hash) agrees.
    struct PodIds {
        struct Slot {
            uint32_t tag = 0;
            uint32_t pod = 0;  // the pod + 1; 0: an empty slot
        };
        std::string bytes;              // every id, in pod order
        std::vector<uint32_t> ends{0};  // pod i's id is bytes[ends[i], ends[i + 1])
        std::vector<Slot> slots;
        void add(std::string_view ns, std::string_view name);
        std::string_view id(uint32_t pod) const {
            return std::string_view(bytes).substr(ends[pod], ends[pod + 1] - ends[pod]);
        }
        void reindex();
        std::optional<uint32_t> find(std::string_view id) const;
    };
    PodIds pod_ids_;
    std::vector<std::string> policy_ids_;  // "ns/name" of each NetworkPolicy
    std::unordered_map<IpAddr, uint32_t, IpAddrHash> pod_ip_index_;
    std::unordered_map<IpAddr, uint32_t, IpAddrHash> node_ip_index_;  // -> node index
    std::vector<NetworkPolicy> policies_;
    std::vector<SelectionEntry> selections_;
    std::unordered_map<uint64_t, uint32_t> selection_index_;  // (ns << 32 | labels) -> selections_
    std::vector<ServiceInfo> services_;
    std::unordered_map<IpAddr, uint32_t, IpAddrHash> service_ip_index_;
    std::vector<EndpointSliceInfo> slices_;
    std::unordered_map<std::string, std::vector<uint32_t>> slices_by_service_;  // "ns/name"
    std::vector<NodeInfo> nodes_;
    std::unordered_map<uint64_t, StrId> deployment_of_replica_set_;  // (ns << 32 | replica set) -> Deployment
    std::vector<LabelSetId> node_labels_;
    std::vector<ClusterNetworkPolicy> cluster_policies_;
    std::vector<ClusterPolicyFilter> cluster_filters_;    // per cluster policy: ingress, egress
    std::vector<ClusterPolicyFilter> selection_filters_;  // SelectionEntry::cluster_*_filter
    // Per namespaces/pods peer of a cluster policy: a bitset over namespaces (ClusterPeer::namespace_set).
    std::vector<uint64_t> namespace_sets_;
    size_t namespace_set_words_ = 0;
};

}  // namespace npt

#include "state/cluster_state.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace npt {

const char* direction_name(Direction d) {
    return d == Direction::Ingress ? "ingress" : "egress";
}

namespace {

constexpr std::string_view kNamespaceNameLabel = "kubernetes.io/metadata.name";

// A byte key for interning a label set or port set: the ids/values packed end to end.
template <typename T>
void append_raw(std::string& key, const T& v) {
    key.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

bool requirement_matches(const LabelRequirement& req, std::optional<StrId> value) {
    switch (req.op) {
        case LabelRequirement::Op::Exists:
            return value.has_value();
        case LabelRequirement::Op::DoesNotExist:
            return !value.has_value();
        case LabelRequirement::Op::In:
            return value && std::find(req.value_ids.begin(), req.value_ids.end(), *value) != req.value_ids.end();
        case LabelRequirement::Op::NotIn:
            // Kubernetes: NotIn matches when the key is absent, or present with another value.
            return !value || std::find(req.value_ids.begin(), req.value_ids.end(), *value) == req.value_ids.end();
    }
    return false;
}

}  // namespace

LabelSetId ClusterState::intern_labels(const LabelMap& labels) {
    std::vector<Label> set;
    set.reserve(labels.size());
    for (const auto& [k, v] : labels) set.push_back(Label{strings_.intern(k), strings_.intern(v)});
    std::sort(set.begin(), set.end(), [](const Label& a, const Label& b) { return a.key < b.key; });
    set.erase(std::unique(set.begin(), set.end(), [](const Label& a, const Label& b) { return a.key == b.key; }),
              set.end());
    std::string key;
    key.reserve(set.size() * sizeof(Label));
    for (const auto& l : set) {
        append_raw(key, l.key);
        append_raw(key, l.value);
    }
    if (auto it = label_set_index_.find(key); it != label_set_index_.end()) return it->second;
    const auto id = static_cast<LabelSetId>(label_sets_.size());
    label_sets_.emplace_back(static_cast<uint32_t>(label_storage_.size()), static_cast<uint32_t>(set.size()));
    label_storage_.insert(label_storage_.end(), set.begin(), set.end());
    label_set_index_.emplace(std::move(key), id);
    return id;
}

PortSetId ClusterState::intern_ports(const std::vector<ContainerPort>& ports) {
    std::string key;
    for (const auto& p : ports) {
        key += p.name;
        key.push_back('\0');
        append_raw(key, p.port);
        append_raw(key, p.protocol);
    }
    if (auto it = port_set_index_.find(key); it != port_set_index_.end()) return it->second;
    const auto id = static_cast<PortSetId>(port_sets_.size());
    port_sets_.push_back(ports);
    port_set_index_.emplace(std::move(key), id);
    return id;
}

void ClusterState::resolve_selector_ids(LabelSelector& sel) {
    for (auto& req : sel.requirements) {
        req.key_id = strings_.intern(req.key);
        req.value_ids.clear();
        for (const auto& v : req.values) req.value_ids.push_back(strings_.intern(v));
    }
}

void ClusterState::resolve_cluster_policy_ids(ClusterNetworkPolicy& cnp) {
    auto pod_set = [&](PodSetSelector& sel) {
        resolve_selector_ids(sel.namespaces);
        if (sel.pods) resolve_selector_ids(*sel.pods);
    };
    pod_set(cnp.subject);
    for (auto* rules : {&cnp.ingress, &cnp.egress}) {
        for (auto& rule : *rules) {
            for (auto& peer : rule.peers) {
                pod_set(peer.pods);
                resolve_selector_ids(peer.nodes);
            }
        }
    }
}

uint32_t ClusterState::ensure_namespace(std::string_view name) {
    const StrId id = strings_.intern(name);
    if (auto it = namespace_index_.find(id); it != namespace_index_.end()) return it->second;
    const auto idx = static_cast<uint32_t>(namespaces_.size());
    NamespaceRecord rec;
    rec.name = id;
    rec.labels = intern_labels({{std::string(kNamespaceNameLabel), std::string(name)}});
    namespaces_.push_back(std::move(rec));
    namespace_index_.emplace(id, idx);
    return idx;
}

void ClusterState::set_namespace_labels(uint32_t ns, LabelMap labels) {
    // The API server always sets kubernetes.io/metadata.name; plain manifests often omit it.
    std::erase_if(labels, [](const auto& kv) { return kv.first == kNamespaceNameLabel; });
    labels.emplace_back(std::string(kNamespaceNameLabel), std::string(str(namespaces_[ns].name)));
    namespaces_[ns].labels = intern_labels(labels);
}

void ClusterState::set_policies(std::vector<NetworkPolicy> policies) {
    std::sort(policies.begin(), policies.end(), [](const NetworkPolicy& a, const NetworkPolicy& b) {
        return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
    });
    policies_ = std::move(policies);
    policy_ids_.clear();
    policy_ids_.reserve(policies_.size());
    for (auto& pol : policies_) {
        policy_ids_.push_back(pol.id());
        resolve_selector_ids(pol.pod_selector);
        for (auto* rules : {&pol.ingress, &pol.egress}) {
            for (auto& rule : *rules) {
                for (auto& peer : rule.peers) {
                    if (peer.pod_selector) resolve_selector_ids(*peer.pod_selector);
                    if (peer.namespace_selector) resolve_selector_ids(*peer.namespace_selector);
                }
            }
        }
        ensure_namespace(pol.ns);
    }
}

void ClusterState::set_cluster_policies(std::vector<ClusterNetworkPolicy> policies) {
    // Evaluation order (ClusterState::cluster_policies()).
    std::sort(policies.begin(), policies.end(), [](const ClusterNetworkPolicy& a, const ClusterNetworkPolicy& b) {
        const bool a_banp = a.kind == ClusterPolicyKind::BaselineAdminNetworkPolicy;
        const bool b_banp = b.kind == ClusterPolicyKind::BaselineAdminNetworkPolicy;
        return std::tie(a.tier, a_banp, a.priority, a.name, a.kind) <
               std::tie(b.tier, b_banp, b.priority, b.name, b.kind);
    });
    cluster_policies_ = std::move(policies);
    for (auto& cnp : cluster_policies_) resolve_cluster_policy_ids(cnp);
}

uint32_t ClusterState::selection_for(uint32_t ns, LabelSetId labels) {
    const uint64_t key = (static_cast<uint64_t>(ns) << 32) | labels;
    auto [it, inserted] = selection_index_.emplace(key, static_cast<uint32_t>(selections_.size()));
    if (inserted) {
        SelectionEntry entry;
        entry.ns = ns;
        entry.labels = labels;
        selections_.push_back(std::move(entry));
    }
    return it->second;
}

void ClusterState::index_policies() {
    for (auto& ns : namespaces_) ns.policies.clear();
    for (uint32_t i = 0; i < policies_.size(); ++i) namespaces_[*find_namespace(policies_[i].ns)].policies.push_back(i);

    // Which cluster policies' peers select which namespaces (every namespace exists now).
    namespace_set_words_ = std::max<size_t>(1, (namespaces_.size() + 63) / 64);
    namespace_sets_.clear();
    for (auto& cnp : cluster_policies_) {
        for (auto* rules : {&cnp.ingress, &cnp.egress}) {
            for (auto& rule : *rules) {
                for (auto& peer : rule.peers) {
                    if (peer.kind != ClusterPeer::Kind::Namespaces && peer.kind != ClusterPeer::Kind::Pods) continue;
                    const size_t base = namespace_sets_.size();
                    peer.namespace_set = static_cast<uint32_t>(base / namespace_set_words_);
                    namespace_sets_.resize(base + namespace_set_words_, 0);
                    for (uint32_t ns = 0; ns < namespaces_.size(); ++ns)
                        if (selector_matches(peer.pods.namespaces, namespaces_[ns].labels))
                            namespace_sets_[base + ns / 64] |= uint64_t{1} << (ns % 64);
                }
            }
        }
    }

    cluster_filters_.clear();
    cluster_filters_.reserve(2 * cluster_policies_.size());
    for (const auto& cnp : cluster_policies_) {
        for (const auto* rules : {&cnp.ingress, &cnp.egress}) {
            ClusterPolicyFilter& f = cluster_filters_.emplace_back();
            f.any_port = false;
            f.any_remote = false;
            f.namespaces.assign(namespace_set_words_, 0);
            for (const auto& rule : *rules) {
                // Fail-closed entries match everything in a Deny or Pass rule: they leave the filter open.
                for (const auto& p : rule.ports)
                    if (p.kind == ClusterPort::Kind::Port)
                        f.ports.push_back(p);
                    else
                        f.any_port = true;
                if (rule.ports.empty()) f.any_port = true;
                for (const auto& peer : rule.peers) {
                    switch (peer.kind) {
                        case ClusterPeer::Kind::Namespaces:
                        case ClusterPeer::Kind::Pods: {
                            const uint64_t* set =
                                namespace_sets_.data() + size_t(peer.namespace_set) * namespace_set_words_;
                            for (size_t w = 0; w < namespace_set_words_; ++w) f.namespaces[w] |= set[w];
                            break;
                        }
                        case ClusterPeer::Kind::Networks:
                            f.networks.insert(f.networks.end(), peer.networks.begin(), peer.networks.end());
                            break;
                        default:
                            f.any_remote = true;
                    }
                }
            }
            if (f.any_port) f.ports.clear();
            if (f.any_remote) {
                f.namespaces.clear();
                f.networks.clear();
            }
        }
    }

    // Per (namespace, labels): the policies selecting those pods, and per direction and tier the union of its
    // cluster policies' filters: one test skips a tier.
    selection_filters_.clear();
    for (auto& entry : selections_) {
        entry.ingress.clear();
        entry.egress.clear();
        entry.cluster_ingress.clear();
        entry.cluster_egress.clear();
        // hostNetwork pods share the node's network namespace: NetworkPolicy does not apply to them
        // (implementations leave them unaffected); isolating_policies() and cluster_policies_for() leave them out.
        for (uint32_t p : namespaces_[entry.ns].policies) {
            const auto& pol = policies_[p];
            if (!selector_matches(pol.pod_selector, entry.labels)) continue;
            if (pol.affects_ingress) entry.ingress.push_back(p);
            if (pol.affects_egress) entry.egress.push_back(p);
        }
        for (uint32_t p = 0; p < cluster_policies_.size(); ++p) {
            const auto& cnp = cluster_policies_[p];
            if (!pod_set_matches(cnp.subject, entry.ns, entry.labels)) continue;
            if (!cnp.ingress.empty()) entry.cluster_ingress.push_back(p);
            if (!cnp.egress.empty()) entry.cluster_egress.push_back(p);
        }
        for (const bool egress : {false, true}) {
            for (const PolicyTier tier : {PolicyTier::Admin, PolicyTier::Baseline}) {
                uint32_t& slot = entry.cluster_filter[egress][static_cast<size_t>(tier)];
                slot = kNone;
                ClusterPolicyFilter u;
                u.any_port = false;
                u.any_remote = false;
                u.namespaces.assign(namespace_set_words_, 0);
                bool any = false;
                for (uint32_t p : egress ? entry.cluster_egress : entry.cluster_ingress) {
                    if (cluster_policies_[p].tier != tier) continue;
                    any = true;
                    const auto& f = cluster_filters_[2 * size_t(p) + egress];
                    u.any_port = u.any_port || f.any_port;
                    u.any_remote = u.any_remote || f.any_remote;
                    if (!u.any_port) u.ports.insert(u.ports.end(), f.ports.begin(), f.ports.end());
                    if (!u.any_remote) {
                        for (size_t w = 0; w < namespace_set_words_; ++w) u.namespaces[w] |= f.namespaces[w];
                        u.networks.insert(u.networks.end(), f.networks.begin(), f.networks.end());
                    }
                }
                if (!any) continue;
                // Policies of one team repeat one another's ports and networks: each once in the union.
                const auto port_key = [](const ClusterPort& p) { return std::tuple(p.protocol, p.port, p.end_port); };
                std::sort(u.ports.begin(), u.ports.end(),
                          [&](const ClusterPort& a, const ClusterPort& b) { return port_key(a) < port_key(b); });
                u.ports.erase(
                    std::unique(u.ports.begin(), u.ports.end(),
                                [&](const ClusterPort& a, const ClusterPort& b) { return port_key(a) == port_key(b); }),
                    u.ports.end());
                std::vector<Cidr> networks;
                for (const auto& c : u.networks)
                    if (std::find(networks.begin(), networks.end(), c) == networks.end()) networks.push_back(c);
                u.networks = std::move(networks);
                if (u.any_port) u.ports.clear();
                if (u.any_remote) {
                    u.namespaces.clear();
                    u.networks.clear();
                }
                slot = static_cast<uint32_t>(selection_filters_.size());
                selection_filters_.push_back(std::move(u));
            }
        }
    }
}

std::shared_ptr<const ClusterState> ClusterState::build(ClusterObjects objects) {
    auto state = std::shared_ptr<ClusterState>(new ClusterState());
    ClusterState& s = *state;
    s.label_sets_.emplace_back(0, 0);  // label set 0: no labels
    s.label_set_index_.emplace(std::string(), 0);
    s.port_sets_.emplace_back();
    s.port_set_index_.emplace(std::string(), 0);

    for (auto& ns : objects.namespaces) s.set_namespace_labels(s.ensure_namespace(ns.name), std::move(ns.labels));
    s.set_policies(std::move(objects.policies));
    s.set_cluster_policies(std::move(objects.cluster_policies));

    s.pods_.reserve(objects.pods.size());
    for (auto& pi : objects.pods) {
        // Finished pods release their IPs, which new pods may already hold.
        if (pi.phase == "Succeeded" || pi.phase == "Failed") continue;
        PodRecord rec;
        rec.ns = s.ensure_namespace(pi.ns);
        rec.name = s.strings_.intern(pi.name);
        rec.labels = s.intern_labels(pi.labels);
        rec.ports = s.intern_ports(pi.ports);
        rec.node = s.strings_.intern(pi.node);
        rec.host_network = pi.host_network;
        rec.host_ip = pi.host_ip;
        rec.running = pi.phase.empty() || pi.phase == "Running";
        rec.owner_kind = s.strings_.intern(pi.owner_kind);
        rec.owner_name = s.strings_.intern(pi.owner_name);
        for (const auto& ip : pi.ips) {
            auto& slot = ip.is_v4() ? rec.ip4 : rec.ip6;
            if (!slot) slot = ip;
        }
        rec.primary_v6 = !pi.ips.empty() && !pi.ips.front().is_v4();
        rec.selection = s.selection_for(rec.ns, rec.labels);
        const uint64_t name_key = (static_cast<uint64_t>(rec.ns) << 32) | rec.name;

        const auto idx = static_cast<uint32_t>(s.pods_.size());
        if (auto [it, fresh] = s.pod_name_index_.emplace(name_key, idx); !fresh) {
            // The same pod given twice (several files): the later one wins.
            const uint32_t old = it->second;
            for (const auto* ip : {&s.pods_[old].ip4, &s.pods_[old].ip6}) {
                if (*ip) {
                    auto pit = s.pod_ip_index_.find(**ip);
                    if (pit != s.pod_ip_index_.end() && pit->second == old) s.pod_ip_index_.erase(pit);
                }
            }
            s.pods_[old] = rec;
            for (const auto& ip : {rec.ip4, rec.ip6})
                if (ip && !rec.host_network) s.pod_ip_index_[*ip] = old;
            continue;
        }
        s.pods_.push_back(rec);
        if (!rec.host_network) {
            for (const auto& ip : {rec.ip4, rec.ip6})
                if (ip) s.pod_ip_index_.insert_or_assign(*ip, idx);
        }
    }
    s.pod_ids_.ends.reserve(s.pods_.size() + 1);
    for (const auto& pod : s.pods_) s.pod_ids_.add(s.str(s.namespaces_[pod.ns].name), s.str(pod.name));
    s.pod_ids_.reindex();
    s.index_policies();

    for (const auto& rs : objects.replica_sets) {
        if (rs.owner_kind != "Deployment" || rs.owner_name.empty()) continue;
        const uint64_t key = (static_cast<uint64_t>(s.ensure_namespace(rs.ns)) << 32) | s.strings_.intern(rs.name);
        s.deployment_of_replica_set_.insert_or_assign(key, s.strings_.intern(rs.owner_name));
    }

    s.nodes_ = std::move(objects.nodes);
    s.node_labels_.reserve(s.nodes_.size());
    for (uint32_t i = 0; i < s.nodes_.size(); ++i) {
        for (const auto& ip : s.nodes_[i].addresses) s.node_ip_index_.emplace(ip, i);
        s.node_labels_.push_back(s.intern_labels(s.nodes_[i].labels));
    }

    s.services_ = std::move(objects.services);
    for (uint32_t i = 0; i < s.services_.size(); ++i) {
        for (const auto& ip : s.services_[i].cluster_ips) s.service_ip_index_.insert_or_assign(ip, i);
        for (const auto& ip : s.services_[i].external_ips) s.service_ip_index_.emplace(ip, i);
    }
    s.slices_ = std::move(objects.endpoint_slices);
    for (uint32_t i = 0; i < s.slices_.size(); ++i)
        s.slices_by_service_[s.slices_[i].ns + "/" + s.slices_[i].service].push_back(i);
    return state;
}

std::shared_ptr<const ClusterState> ClusterState::derive(const StateChange& change) const {
    auto state = std::shared_ptr<ClusterState>(new ClusterState(*this));
    ClusterState& s = *state;
    for (const auto& [name, labels] : change.namespace_labels) s.set_namespace_labels(s.ensure_namespace(name), labels);
    for (const auto& [pod, labels] : change.pod_labels) {
        auto& rec = s.pods_[pod];
        rec.labels = s.intern_labels(labels);
        rec.selection = s.selection_for(rec.ns, rec.labels);
    }
    if (!change.upsert_policies.empty() || !change.delete_policies.empty()) {
        std::vector<NetworkPolicy> policies = policies_;
        for (const auto& gone : change.delete_policies)
            std::erase_if(policies,
                          [&](const NetworkPolicy& p) { return p.ns == gone.first && p.name == gone.second; });
        for (const auto& np : change.upsert_policies) {
            std::erase_if(policies, [&](const NetworkPolicy& p) { return p.ns == np.ns && p.name == np.name; });
            policies.push_back(np);
        }
        s.set_policies(std::move(policies));
    }
    if (!change.upsert_cluster_policies.empty() || !change.delete_cluster_policies.empty()) {
        std::vector<ClusterNetworkPolicy> policies = cluster_policies_;
        for (const auto& gone : change.delete_cluster_policies)
            std::erase_if(policies,
                          [&](const ClusterNetworkPolicy& p) { return p.kind == gone.first && p.name == gone.second; });
        for (const auto& cnp : change.upsert_cluster_policies) {
            std::erase_if(policies,
                          [&](const ClusterNetworkPolicy& p) { return p.kind == cnp.kind && p.name == cnp.name; });
            policies.push_back(cnp);
        }
        s.set_cluster_policies(std::move(policies));
    }
    s.index_policies();
    return state;
}

std::span<const Label> ClusterState::labels(LabelSetId id) const {
    const auto [off, n] = label_sets_[id];
    return {label_storage_.data() + off, n};
}

std::optional<StrId> ClusterState::label_value(LabelSetId set, StrId key) const {
    for (const auto& l : labels(set)) {
        if (l.key == key) return l.value;
        if (l.key > key) break;
    }
    return std::nullopt;
}

std::span<const ContainerPort> ClusterState::ports(PortSetId id) const {
    return port_sets_[id];
}

bool ClusterState::requirement_matches(const LabelRequirement& req, LabelSetId set) const {
    return npt::requirement_matches(req, label_value(set, req.key_id));
}

bool ClusterState::selector_matches(const LabelSelector& sel, LabelSetId set) const {
    for (const auto& req : sel.requirements)
        if (!requirement_matches(req, set)) return false;
    return true;
}

std::optional<uint32_t> ClusterState::find_namespace(std::string_view name) const {
    auto id = strings_.find(name);
    if (!id) return std::nullopt;
    auto it = namespace_index_.find(*id);
    if (it == namespace_index_.end()) return std::nullopt;
    return it->second;
}

std::optional<uint32_t> ClusterState::find_pod(std::string_view ns, std::string_view name) const {
    // Names and namespaces are DNS labels and subdomains (at most 63 and 253 bytes): the id fits.
    char buf[512];
    if (ns.size() + 1 + name.size() > sizeof buf) return std::nullopt;
    std::memcpy(buf, ns.data(), ns.size());
    buf[ns.size()] = '/';
    std::memcpy(buf + ns.size() + 1, name.data(), name.size());
    return pod_ids_.find(std::string_view(buf, ns.size() + 1 + name.size()));
}

void ClusterState::PodIds::add(std::string_view ns, std::string_view name) {
    bytes.append(ns).append(1, '/').append(name);
    ends.push_back(static_cast<uint32_t>(bytes.size()));
}

void ClusterState::PodIds::reindex() {
    const size_t pods = ends.size() - 1;
    size_t n = 16;
    while (n < 2 * pods) n *= 2;
    slots.assign(n, Slot{});
    const size_t mask = n - 1;
    for (uint32_t i = 0; i < pods; ++i) {
        const size_t h = std::hash<std::string_view>{}(id(i));
        size_t at = h & mask;
        while (slots[at].pod != 0) at = (at + 1) & mask;
        slots[at] = Slot{static_cast<uint32_t>(h >> 32), i + 1};
    }
}

std::optional<uint32_t> ClusterState::PodIds::find(std::string_view id) const {
    if (slots.empty()) return std::nullopt;  // a state never built
    const size_t h = std::hash<std::string_view>{}(id);
    const auto tag = static_cast<uint32_t>(h >> 32);
    const size_t mask = slots.size() - 1;
    for (size_t at = h & mask;; at = (at + 1) & mask) {
        const Slot& slot = slots[at];
        if (slot.pod == 0) return std::nullopt;
        if (slot.tag == tag && this->id(slot.pod - 1) == id) return slot.pod - 1;
    }
}

std::optional<uint32_t> ClusterState::pod_by_ip(const IpAddr& ip) const {
    auto it = pod_ip_index_.find(ip);
    if (it == pod_ip_index_.end()) return std::nullopt;
    return it->second;
}

std::optional<uint32_t> ClusterState::node_by_ip(const IpAddr& ip) const {
    auto it = node_ip_index_.find(ip);
    if (it == node_ip_index_.end()) return std::nullopt;
    return it->second;
}

std::optional<uint32_t> ClusterState::service_by_ip(const IpAddr& ip) const {
    auto it = service_ip_index_.find(ip);
    if (it == service_ip_index_.end()) return std::nullopt;
    return it->second;
}

bool ClusterState::pod_set_matches(const PodSetSelector& sel, uint32_t ns, LabelSetId pod_labels) const {
    if (!selector_matches(sel.namespaces, namespaces_[ns].labels)) return false;
    return !sel.pods || selector_matches(*sel.pods, pod_labels);
}

bool ClusterState::pod_set_selects(const PodSetSelector& sel, uint32_t pod) const {
    const auto& rec = pods_[pod];
    return !rec.host_network && pod_set_matches(sel, rec.ns, rec.labels);
}

ClusterState::Workload ClusterState::workload_of(uint32_t pod) const {
    const auto& rec = pods_[pod];
    if (rec.owner_kind == kNoStr || rec.owner_name == kNoStr) return {"Pod", std::string(str(rec.name))};
    const std::string_view kind = str(rec.owner_kind), name = str(rec.owner_name);
    if (kind == "ReplicaSet") {
        const uint64_t key = (static_cast<uint64_t>(rec.ns) << 32) | rec.owner_name;
        if (auto it = deployment_of_replica_set_.find(key); it != deployment_of_replica_set_.end())
            return {"Deployment", std::string(str(it->second))};
        // The Deployment controller names its ReplicaSets <deployment>-<pod-template-hash>.
        if (auto hash = strings_.find("pod-template-hash")) {
            if (auto value = label_value(rec.labels, *hash)) {
                const std::string suffix = "-" + std::string(str(*value));
                if (name.size() > suffix.size() && name.ends_with(suffix))
                    return {"Deployment", std::string(name.substr(0, name.size() - suffix.size()))};
            }
        }
    }
    return {std::string(kind), std::string(name)};
}

std::span<const uint32_t> ClusterState::isolating_policies(uint32_t pod, Direction dir) const {
    const auto& rec = pods_[pod];
    if (rec.host_network) return {};
    const auto& entry = selections_[rec.selection];
    return dir == Direction::Ingress ? std::span<const uint32_t>(entry.ingress)
                                     : std::span<const uint32_t>(entry.egress);
}

std::vector<ClusterState::ResolvedEndpoint> ClusterState::service_endpoints(uint32_t service, const ServicePort& port,
                                                                            IpFamily family) const {
    std::vector<ResolvedEndpoint> out;
    const auto& svc = services_[service];
    auto slices = slices_by_service_.find(svc.id());
    if (slices != slices_by_service_.end()) {
        for (uint32_t si : slices->second) {
            const auto& slice = slices_[si];
            // The slice port that serves this Service port carries the Service port's name.
            const EndpointPort* ep_port = nullptr;
            for (const auto& p : slice.ports)
                if (p.name == port.name && p.protocol == port.protocol) ep_port = &p;
            if (!ep_port && slice.ports.size() == 1 && svc.ports.size() == 1) ep_port = &slice.ports[0];
            if (!ep_port) continue;
            for (const auto& ep : slice.endpoints) {
                // kube-proxy forwards only to ready endpoints.
                if (ep.ip.family != family || !ep.ready) continue;
                ResolvedEndpoint r{ep.ip, ep_port->port, ep_port->protocol, std::nullopt, ep.ready};
                if (!ep.pod_name.empty()) r.pod = find_pod(ep.pod_ns, ep.pod_name);
                if (!r.pod) r.pod = pod_by_ip(ep.ip);
                out.push_back(r);
            }
        }
        return out;
    }
    if (!svc.selector || svc.selector->empty()) return out;
    // No EndpointSlices given: derive the endpoints as the EndpointSlice controller would.
    auto ns = find_namespace(svc.ns);
    if (!ns) return out;
    for (uint32_t i = 0; i < pods_.size(); ++i) {
        const auto& pod = pods_[i];
        if (pod.ns != *ns) continue;
        const auto& ip = pod.ip(family);
        if (!ip) continue;
        bool match = true;
        for (const auto& [k, v] : *svc.selector) {
            auto kid = strings_.find(k);
            auto vid = strings_.find(v);
            auto have = kid ? label_value(pod.labels, *kid) : std::nullopt;
            if (!have || !vid || *have != *vid) {
                match = false;
                break;
            }
        }
        if (!match) continue;
        uint16_t target = port.target_port ? port.target_port : port.port;
        if (!port.target_port_name.empty()) {
            target = 0;
            for (const auto& cp : ports(pod.ports))
                if (cp.name == port.target_port_name && cp.protocol == port.protocol) target = cp.port;
            if (target == 0) continue;  // the pod does not define the named target port
        }
        out.push_back(ResolvedEndpoint{*ip, target, port.protocol, i, true});
    }
    return out;
}

size_t ClusterState::approximate_bytes() const {
    size_t total = sizeof(*this);
    total += pods_.capacity() * sizeof(PodRecord);
    total += label_storage_.capacity() * sizeof(Label) + label_sets_.capacity() * 8;
    total += pod_ip_index_.size() * (sizeof(IpAddr) + 4 + 16) + pod_ip_index_.bucket_count() * 8;
    total += pod_name_index_.size() * 32 + pod_name_index_.bucket_count() * 8;
    total += pod_ids_.bytes.capacity() + pod_ids_.ends.capacity() * sizeof(uint32_t);
    total += pod_ids_.slots.capacity() * sizeof(PodIds::Slot);
    total += selections_.capacity() * sizeof(SelectionEntry);
    for (size_t i = 0; i < strings_.size(); ++i) total += 32 + strings_.view(static_cast<StrId>(i)).size() + 40;
    return total;
}

}  // namespace npt

#include "live/flow_tracker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "netfilter/rule_comments.hpp"
#include "state/cni_naming.hpp"
#include "policy/explainer.hpp"
#include "policy/fix.hpp"

namespace npt::live {

namespace {

std::optional<DropLookup> drop_lookup(const std::optional<IpAddr>& src, const std::optional<IpAddr>& dst,
                                      uint8_t protocol, uint16_t sport, uint16_t dport, uint64_t at_ns) {
    if (!src || !dst) return std::nullopt;
    return DropLookup{*src, *dst, protocol, sport, dport, at_ns};
}

std::string text_of(const std::optional<IpAddr>& ip) {
    return ip ? ip->str() : "";
}

// The tail's own hints depend on the rule: computed again when a rule arrives after the flow was explained.
void reannotate_drop(DropRecord& r) {
    std::erase_if(r.explanation.hints, [](const Hint& h) {
        return h.code == hint::kNotExplainedByPolicy || h.code == hint::kUnmodelledPolicy;
    });
    annotate_drop(r);
}

const ClusterState& empty_state() {
    static const auto empty = ClusterState::build({});
    return *empty;
}

std::string flow_key(const capture::DropEvent& ev) {
    return fmt::format("{}|{}|{}|{}|{}|{}", text_of(ev.src), text_of(ev.dst), ev.protocol, ev.dport, ev.reason,
                       ev.enforcement);
}

}  // namespace

Protocol engine_protocol(uint8_t ip_proto) {
    switch (ip_proto) {
        case 6:
            return Protocol::TCP;
        case 17:
            return Protocol::UDP;
        case 132:
            return Protocol::SCTP;
        case 1:
            return Protocol::ICMP;
        case 58:
            return Protocol::ICMPv6;
        default:
            return Protocol::Other;
    }
}

std::string display_protocol(uint8_t ip_proto) {
    const Protocol p = engine_protocol(ip_proto);
    return p == Protocol::Other ? fmt::format("IP/{}", ip_proto) : protocol_name(p);
}

std::string default_node_name() {
    if (const char* env = std::getenv("NODE_NAME"); env && *env) return env;
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) return host;
    return "unknown";
}

void FlowTracker::set_state(std::shared_ptr<const ClusterState> state) {
    state_ = std::move(state);
    naming_prepared_ = false;
}

const ClusterState* FlowTracker::naming_state() {
    // The CNI naming maps (Calico's hashed chain names) of this state: built once, when a first rule needs them.
    if (state_ && !naming_prepared_) cni::prepare_naming_index(state_);
    naming_prepared_ = true;
    return state_.get();
}

void FlowTracker::mark_rule_trace(DropRecord& r) const {
    if (!rule_trace_) return;
    if (r.rule && (r.rule->via == "nftrace" || !r.rule->path.empty()))  // fexit's rule, confirmed by the trace
        r.rule_trace = "traced";
    else if (r.backend == "iptables-legacy" || r.backend == "tc" || r.backend == "cgroup" || r.backend == "xdp")
        r.rule_trace = "not_visible";
    else
        r.rule_trace = "not_traced";
}

Result<std::vector<IpAddr>> FlowTracker::watched_ips(std::ostream& err) {
    std::vector<IpAddr> ips;
    if (scope_.everything() || !state_) return ips;
    for (const auto& ns : scope_.namespaces)
        if (!state_->find_namespace(ns) && warned_namespaces_.insert(ns).second)
            err << fmt::format("netpol-trace: warning: namespace {} is not in the cluster state\n", ns);
    for (uint32_t i = 0; i < state_->pods().size(); ++i) {
        if (!scope_.pod_in_scope(*state_, i)) continue;
        for (const auto& ip : {state_->pods()[i].ip4, state_->pods()[i].ip6}) {
            if (!ip) continue;
            ips.push_back(*ip);
        }
    }
    if (!scope_.pod.empty() && ips.empty())
        return Error{fmt::format("--pod {}: no such pod with an IP in the cluster state", scope_.pod)};
    return ips;
}

FlowTracker::Report FlowTracker::on_event(const capture::DropEvent& ev, capture::DropCapture& cap) {
    const std::string key = flow_key(ev);
    if (auto it = index_.find(key); it != index_.end()) {
        auto& flow = flows_[it->second];
        if (std::find(flow.kernel_flows.begin(), flow.kernel_flows.end(), ev.key) == flow.kernel_flows.end()) {
            flow.kernel_flows.push_back(ev.key);
            by_kernel_key_[ev.key] = it->second;
        }
        uint64_t sum = 0;
        for (const auto& k : flow.kernel_flows)
            if (auto c = cap.counts(k)) sum += c->count;
        if (sum > flow.record.count) flow.record.count = sum;
        if (ev.last_seen > flow.record.last_seen) flow.record.last_seen = ev.last_seen;
        const bool resumed = ev.kind == capture::EventKind::kResumed && flow.in_scope;
        return {&flow, resumed ? "resumed" : nullptr};
    }
    TrackedFlow flow;
    flow.kernel_flows.push_back(ev.key);
    flow.key = key;
    auto& r = flow.record;
    r.first_seen = ev.first_seen;
    r.last_seen = ev.last_seen;
    r.node = node_;
    r.reason = ev.reason;
    r.enforcement = ev.enforcement;
    r.backend = ev.backend;
    if (ev.rule) {
        r.rule = make_drop_rule(ev.rule->table, ev.rule->chain, ev.rule->handle, ev.rule->comment, naming_state());
        r.rule->via = "fexit";
        if (comment_source_ && ev.rule->handle && ev.rule->table_family) {
            r.rule->comments = comment_source_(ev.rule->table_family, ev.rule->table, ev.rule->chain, *ev.rule->handle);
            if (!r.rule->comments.empty()) attribute_drop_rule(*r.rule, naming_state());
        }
    }
    r.ct_state = ev.ct_state;
    r.count = ev.count;
    r.sport = ev.sport;
    r.tcp_flags = ev.tcp_flags;
    r.protocol_name = display_protocol(ev.protocol);
    if (ev.protocol == 1 || ev.protocol == 58) r.icmp = std::pair{ev.icmp_type, ev.icmp_code};
    if (!ev.ifname.empty())
        r.interface = ev.ifname;
    else if (ev.ingress_ifindex || ev.ifindex)
        r.interface = fmt::format("if{}", ev.ingress_ifindex ? ev.ingress_ifindex : ev.ifindex);
    const auto& src = ev.src;
    const auto& dst = ev.dst;
    if (src && dst) {
        r.attributed = state_ != nullptr;
        const ClusterState& s = state_ ? *state_ : empty_state();
        auto name = [&](const IpAddr& ip) {
            auto pod = s.pod_by_ip(ip);
            return pod ? std::string(s.pod_id(*pod)) : ip.str();
        };
        const Protocol protocol = engine_protocol(ev.protocol);
        bool explained = false;
        if (ev.original_dst) {
            const IpAddr& od = ev.original_dst->ip;
            OriginalDestination orig{od, ev.original_dst->port, std::nullopt};
            if (auto svc = s.service_by_ip(od)) {
                orig.service = s.services()[*svc].id();
                // What `explain` says of the Service the client dialled, for the endpoint the packet went to:
                // the same verdict, plus the SERVICE_VIP_DNAT hint naming the rule written for the VIP.
                auto dialled = explain_flow(s, *src, od, protocol, orig.port, name(*src), *orig.service);
                if (!dialled.service.empty()) {
                    for (auto& ep : dialled.service.front().endpoints) {
                        if (ep.dst.ip == *dst && ep.dst.port == ev.dport) {
                            r.explanation = std::move(ep);
                            explained = true;
                            break;
                        }
                    }
                }
            }
            r.original_dst = orig;
        }
        // No DNAT, or an endpoint the state does not list for that Service (yet): the packet as the kernel saw it.
        if (!explained) r.explanation = explain_flow(s, *src, *dst, protocol, ev.dport, name(*src), name(*dst));
        flow.in_scope = scope_.flow_in_scope(r.explanation);
    } else {
        r.explanation.from = text_of(ev.src);
        r.explanation.to = text_of(ev.dst);
        flow.in_scope = scope_.everything();
    }
    if (rule_source_) {
        if (auto lookup = drop_lookup(ev.src, ev.dst, ev.protocol, ev.sport, ev.dport, ev.last_ns)) {
            if (rule_source_(*lookup, r.rule)) attribute_drop_rule(*r.rule, naming_state());
            flow.rule_wanted = !r.rule || r.rule->chain.empty();
        }
        mark_rule_trace(r);
    }
    annotate_drop(r);
    if (fixes_ && state_ && r.attributed) add_fixes(*state_, r.explanation);
    flows_.push_back(std::move(flow));
    index_.emplace(key, flows_.size() - 1);
    by_kernel_key_[ev.key] = flows_.size() - 1;
    auto& added = flows_.back();
    if (!added.in_scope) return {&added, nullptr};
    ++reported_;
    return {&added, "drop"};
}

std::string read_fexit_rule_comments(FlowTracker& tracker, const capture::DropCapture& cap) {
    if (cap.rule_attribution_status().starts_with("off")) return {};
    auto opened = netfilter::RuleCommentLookup::open();
    if (!opened) return opened.error().message;
    std::shared_ptr<netfilter::RuleCommentLookup> lookup = std::move(*opened);
    tracker.set_comment_source([lookup](uint32_t family, const std::string& table, const std::string& chain,
                                        uint64_t handle) { return lookup->get(family, table, chain, handle); });
    return {};
}

std::vector<FlowTracker::Report> FlowTracker::refresh_counts(capture::DropCapture& cap, bool recover) {
    std::vector<std::string> recovered;  // keys: flows_ may reallocate while flows are added
    if (recover) {
        std::vector<capture::FlowKey> unknown;
        cap.for_each_flow([&](const capture::FlowKey& k, const capture::FlowCounts&) {
            if (!by_kernel_key_.count(k)) unknown.push_back(k);
        });
        for (const auto& k : unknown) {
            auto ev = cap.recover_event(k);
            if (!ev) continue;
            const auto report = on_event(*ev, cap);
            if (report.event && std::string_view(report.event) == "drop") recovered.push_back(report.flow->key);
        }
    }
    std::vector<uint64_t> sums(flows_.size(), 0);
    std::vector<bool> seen(flows_.size(), false);
    cap.for_each_flow([&](const capture::FlowKey& k, const capture::FlowCounts& c) {
        auto it = by_kernel_key_.find(k);
        if (it == by_kernel_key_.end()) return;
        sums[it->second] += c.count;
        seen[it->second] = true;
        auto& r = flows_[it->second].record;
        if (c.last_seen > r.last_seen) r.last_seen = c.last_seen;
        r.sport = c.last_sport ? c.last_sport : r.sport;
    });
    for (size_t i = 0; i < flows_.size(); ++i)
        if (seen[i] && sums[i] > flows_[i].record.count) flows_[i].record.count = sums[i];
    std::vector<Report> out;
    for (const auto& key : recovered) out.push_back({&flows_[index_.at(key)], "drop"});
    return out;
}

std::vector<TrackedFlow*> FlowTracker::attach_late_rules(capture::DropCapture& cap,
                                                         std::chrono::system_clock::time_point since) {
    std::vector<TrackedFlow*> out;
    if (!rule_source_) return out;
    for (auto& flow : flows_) {
        if (!flow.rule_wanted || flow.record.last_seen < since) continue;
        for (const auto& k : flow.kernel_flows) {
            const auto c = cap.counts(k);
            if (!c) continue;
            auto lookup = drop_lookup(capture::ip_of(k.family, k.saddr), capture::ip_of(k.family, k.daddr), k.protocol,
                                      c->last_sport, k.dport, c->last_ns);
            if (!lookup || !rule_source_(*lookup, flow.record.rule)) continue;
            attribute_drop_rule(*flow.record.rule, naming_state());
            reannotate_drop(flow.record);
            if (fixes_ && state_ && flow.record.attributed) add_fixes(*state_, flow.record.explanation);
            flow.rule_wanted = flow.record.rule->chain.empty();
            mark_rule_trace(flow.record);
            out.push_back(&flow);
            break;
        }
    }
    return out;
}

size_t FlowTracker::expire(std::chrono::system_clock::time_point idle_before, size_t max_flows) {
    const size_t before = flows_.size();
    std::erase_if(flows_, [&](const TrackedFlow& f) { return f.record.last_seen < idle_before; });
    if (flows_.size() > max_flows) {
        std::sort(flows_.begin(), flows_.end(),
                  [](const TrackedFlow& a, const TrackedFlow& b) { return a.record.last_seen > b.record.last_seen; });
        flows_.resize(max_flows);
    }
    if (flows_.size() != before) reindex();
    return before - flows_.size();
}

void FlowTracker::reindex() {
    index_.clear();
    by_kernel_key_.clear();
    for (size_t i = 0; i < flows_.size(); ++i) {
        for (const auto& k : flows_[i].kernel_flows) by_kernel_key_[k] = i;
        index_.emplace(flows_[i].key, i);
    }
}

}  // namespace npt::live

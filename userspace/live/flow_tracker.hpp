// Dropped flows as users see them: kernel flows (which also differ by source port) folded into one
// flow per source, destination, protocol, port, reason and enforcement point, each explained once by
// the engine when first seen, with counts refreshed from the kernel's per-flow map. Shared by the live
// tail and the agent; not thread-safe (the capture loop owns it).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "drop_capture.hpp"
#include "live/pod_scope.hpp"
#include "output/drop_record.hpp"
#include "state/cluster_state.hpp"

namespace npt::live {

// One dropped packet as the dataplane's other witnesses (nftables traces, NFLOG records) identify it.
struct DropLookup {
    IpAddr src;
    IpAddr dst;
    uint8_t protocol = 0;
    uint16_t sport = 0;
    uint16_t dport = 0;
    uint64_t at_ns = 0;  // kernel monotonic clock
};

// Fills or extends `rule` with what a witness recorded of that packet's drop; true when it changed it.
using RuleSource = std::function<bool(const DropLookup&, std::optional<DropRule>& rule)>;
using CommentSource = std::function<std::vector<std::string>(uint32_t family, const std::string& table,
                                                             const std::string& chain, uint64_t handle)>;

struct TrackedFlow {
    DropRecord record;
    std::vector<capture::FlowKey> kernel_flows;  // the kernel keys aggregated into this flow
    std::string key;                             // source|destination|protocol|port|reason|enforcement
    bool in_scope = true;
    uint64_t metered = 0;      // drops already added to metrics (the agent's)
    uint64_t published = 0;    // count in the last line published for it (the agent's)
    bool rule_wanted = false;  // the rule source had nothing yet when the flow was first seen
};

class FlowTracker {
  public:
    FlowTracker(PodScope scope, std::string node, std::shared_ptr<const ClusterState> state)
        : scope_(std::move(scope)), node_(std::move(node)) {
        set_state(std::move(state));
    }

    void set_state(std::shared_ptr<const ClusterState> state);
    const std::shared_ptr<const ClusterState>& state() const { return state_; }
    const std::string& node() const { return node_; }
    const PodScope& scope() const { return scope_; }

    // The IPs of the watched pods (empty when every drop is watched); warns on `err` once per
    // namespace missing from the state. Error: --pod names no pod with an IP.
    Result<std::vector<IpAddr>> watched_ips(std::ostream& err);

    struct Report {
        TrackedFlow* flow = nullptr;
        const char* event = nullptr;  // "drop" (first seen), "resumed", or null: nothing to report
    };
    // Asked for the rule of every new flow (before it is explained) and, through attach_late_rules(), again for
    // flows it had nothing for (a rate-limited trace may catch a later packet of the flow).
    // `rule_trace`: the source includes --rule-trace (lines then say whether the trace named the rule).
    void set_rule_source(RuleSource source, bool rule_trace) {
        rule_source_ = std::move(source);
        rule_trace_ = rule_trace;
    }
    // Asked for every comment of the rule a fexit verdict names (by table family, table, chain and handle): the
    // BPF program reads only the first bytes of a rule's native comment, and none of iptables-nft's comment
    // matches, which carry kube-router's and Calico's names.
    void set_comment_source(CommentSource source) { comment_source_ = std::move(source); }

    // With fixes on, every new flow's explanation carries its verified fixes (--fix).
    void set_fixes(bool on) { fixes_ = on; }

    // Folds one kernel event in. A new flow is explained now, with the state of this moment.
    Report on_event(const capture::DropEvent& ev, capture::DropCapture& cap);

    // Reads every flow's count from the kernel map (an evicted kernel entry keeps the last count read). With
    // `recover`, kernel flows never reported (their event was lost to a full ring buffer) are rebuilt from the
    // map and folded in like events: the new flows among them are returned, to be reported as drops.
    std::vector<Report> refresh_counts(capture::DropCapture& cap, bool recover = false);

    // Asks the rule source again for flows still without a rule (seen since `since`); returns those that got one,
    // re-explained with it.
    std::vector<TrackedFlow*> attach_late_rules(capture::DropCapture& cap, std::chrono::system_clock::time_point since);

    // Forgets flows not seen since `idle_before`, then the least recently seen beyond `max_flows`
    // (a long-running agent's memory stays bounded). Returns how many were forgotten.
    size_t expire(std::chrono::system_clock::time_point idle_before, size_t max_flows);

    const std::deque<TrackedFlow>& flows() const { return flows_; }
    std::deque<TrackedFlow>& flows() { return flows_; }
    uint64_t reported() const { return reported_; }  // new flows in scope so far

  private:
    void reindex();
    const ClusterState* naming_state();
    void mark_rule_trace(DropRecord& r) const;

    PodScope scope_;
    std::string node_;
    std::shared_ptr<const ClusterState> state_;
    // A deque: a new flow never moves the others (a record is ~2.3 KiB; growing a vector of 20,000 of them
    // held both copies at once), and a Report's pointer stays valid while flows are added.
    std::deque<TrackedFlow> flows_;
    std::unordered_map<std::string, size_t> index_;
    std::unordered_map<capture::FlowKey, size_t, capture::FlowKeyHash> by_kernel_key_;
    uint64_t reported_ = 0;
    std::set<std::string> warned_namespaces_;
    RuleSource rule_source_;
    CommentSource comment_source_;
    bool naming_prepared_ = false;
    bool rule_trace_ = false;
    bool fixes_ = false;
};

// Gives the tracker every comment of the rules fexit names, asked of the kernel, where fexit runs; "" or why
// it cannot (no CAP_NET_ADMIN).
std::string read_fexit_rule_comments(FlowTracker& tracker, const capture::DropCapture& cap);

// Engine protocol of an IP protocol number, and the name the tail shows ("TCP", "IP/47").
Protocol engine_protocol(uint8_t ip_proto);
std::string display_protocol(uint8_t ip_proto);

// $NODE_NAME, else the host name.
std::string default_node_name();

}  // namespace npt::live

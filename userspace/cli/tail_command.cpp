#include "cli/tail_command.hpp"

#include <fmt/format.h>
#include <net/if.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>

#include "drop_capture.hpp"
#include "output/drop_record.hpp"
#include "output/text_output.hpp"
#include "policy/explainer.hpp"
#include "k8s/cluster_informer.hpp"
#include "k8s/client_config.hpp"
#include "state/state_loader.hpp"

namespace npt::cli {

void register_tail(CLI::App& app, TailOptions& o) {
    app.add_option("-n,--namespace", o.namespaces,
                   "Watch drops to or from pods of this namespace (repeatable); default: every drop of the node")
        ->type_name("NS");
    app.add_option("--pod", o.pod, "Only this pod: NAME (in the --namespace given) or NAMESPACE/NAME");
    app.add_option("--state", o.state_files,
                   "Cluster state for attribution: kubectl get namespaces,pods,networkpolicies,services,"
                   "endpointslices -A -o json (repeatable)")
        ->type_name("FILE");
    app.add_option("--kubeconfig", o.kubeconfig,
                   "Read (and watch) the cluster state from the Kubernetes API when no --state is given (default: "
                   "$KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
        ->type_name("PATH");
    app.add_option("--context", o.context, "Kubeconfig context to use (default: its current-context)");
    app.add_option("--sync-timeout", o.sync_timeout,
                   "Seconds to wait for the first list of the cluster state from the API (default 60)")
        ->check(CLI::PositiveNumber);
    app.add_flag("--no-kubernetes", o.no_kubernetes,
                 "Neither --state nor the API: report drops without policy attribution");
    app.add_option("-o,--output", o.output,
                   "table (a live view on a terminal, plain lines otherwise) or json (one object per line)")
        ->check(CLI::IsMember({"table", "json"}));
    app.add_option("--duration", o.duration, "Stop after SECONDS (default: run until interrupted)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--count", o.count, "Stop after N dropped flows were reported");
    app.add_option("--reasons", o.reasons,
                   "Kernel drop reasons to report, comma-separated (names from this kernel's enum skb_drop_reason, "
                   "with or without SKB_DROP_REASON_); default: NETFILTER_DROP,TC_INGRESS,TC_EGRESS,"
                   "BPF_CGROUP_EGRESS and XDP_*, the policy enforcement points")
        ->type_name("LIST");
    app.add_flag("--all-reasons", o.all_reasons, "Report drops of every reason (noisy: TCP closes, closed ports, ...)");
    app.add_option("--quiet-gap", o.quiet_gap,
                   "A flow that drops again after SECONDS without drops is reported again as resumed (default 1)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--node", o.node, "Node name to report (default: $NODE_NAME, else the host name)");
    app.add_option("--ready-file", o.ready_file, "Create FILE once the capture is attached (for scripts)");
    app.add_flag("--debug", o.debug, "Print the attach mode, the reasons, state and capture statistics to stderr");
}

namespace {

Protocol engine_protocol(uint8_t ip_proto) {
    switch (ip_proto) {
        case 6: return Protocol::TCP;
        case 17: return Protocol::UDP;
        case 132: return Protocol::SCTP;
        case 1: return Protocol::ICMP;
        case 58: return Protocol::ICMPv6;
        default: return Protocol::Other;
    }
}

std::string display_protocol(uint8_t ip_proto) {
    const Protocol p = engine_protocol(ip_proto);
    return p == Protocol::Other ? fmt::format("IP/{}", ip_proto) : protocol_name(p);
}

std::optional<IpAddr> engine_ip(const capture::IpAddress& a) {
    if (a.family == NPT_AF_INET) return IpAddr::from_bytes(IpFamily::V4, a.bytes.data());
    if (a.family == NPT_AF_INET6) return IpAddr::from_bytes(IpFamily::V6, a.bytes.data());
    return std::nullopt;
}

std::string default_node_name() {
    if (const char* env = std::getenv("NODE_NAME"); env && *env) return env;
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) == 0) return host;
    return "unknown";
}

// Blocks SIGINT/SIGTERM for this thread and reads them from a descriptor: the loop checks it
// between ring-buffer polls, so a signal ends the tail cleanly (summary, detach) without any
// process-global flag.
class SignalWatch {
public:
    SignalWatch() {
        sigemptyset(&mask_);
        sigaddset(&mask_, SIGINT);
        sigaddset(&mask_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &mask_, &old_);
        fd_ = signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    ~SignalWatch() {
        if (fd_ >= 0) close(fd_);
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;
    bool received() {
        signalfd_siginfo info;
        return fd_ >= 0 && read(fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info));
    }

private:
    sigset_t mask_{}, old_{};
    int fd_ = -1;
};

struct TrackedFlow {
    DropRecord record;
    std::vector<capture::FlowKey> kernel_flows;  // the kernel keys aggregated into this flow
    bool in_scope = true;
};

class Tail {
public:
    Tail(const TailOptions& o, std::shared_ptr<const ClusterState> state, std::ostream& out, std::ostream& err)
        : o_(o), state_(std::move(state)), out_(out), err_(err), node_(o.node.empty() ? default_node_name() : o.node),
          live_view_(o.output == "table" && isatty(STDOUT_FILENO) && &out == &std::cout) {}

    void set_state(std::shared_ptr<const ClusterState> state) { state_ = std::move(state); }
    const std::shared_ptr<const ClusterState>& state() const { return state_; }

    // The pods the tail watches; empty when every drop is reported.
    Result<std::vector<capture::IpAddress>> watched_ips() {
        std::vector<capture::IpAddress> ips;
        if (o_.namespaces.empty() && o_.pod.empty()) return ips;
        for (const auto& ns : o_.namespaces)
            if (!state_->find_namespace(ns) && warned_namespaces_.insert(ns).second)
                err_ << fmt::format("netpol-trace: warning: namespace {} is not in the cluster state\n", ns);
        for (uint32_t i = 0; i < state_->pods().size(); ++i) {
            if (!pod_in_scope(i)) continue;
            for (const auto& ip : {state_->pods()[i].ip4, state_->pods()[i].ip6}) {
                if (!ip) continue;
                ips.push_back(capture::IpAddress::from_raw(ip->is_v4() ? NPT_AF_INET : NPT_AF_INET6, ip->bytes.data()));
            }
        }
        if (!o_.pod.empty() && ips.empty())
            return Error{fmt::format("--pod {}: no such pod with an IP in the cluster state", o_.pod)};
        return ips;
    }

    void on_event(const capture::DropEvent& ev, capture::DropCapture& cap) {
        const std::string key = fmt::format("{}|{}|{}|{}|{}|{}", ev.src.to_string(), ev.dst.to_string(), ev.protocol,
                                            ev.dport, ev.reason, ev.enforcement);
        auto it = index_.find(key);
        if (it != index_.end()) {
            auto& flow = flows_[it->second];
            if (std::find(flow.kernel_flows.begin(), flow.kernel_flows.end(), ev.key) == flow.kernel_flows.end())
                flow.kernel_flows.push_back(ev.key);
            refresh_count(flow, cap);
            flow.record.last_seen = ev.last_seen;
            if (ev.kind == capture::EventKind::kResumed && flow.in_scope) emit(flow.record, "resumed");
            return;
        }
        TrackedFlow flow;
        flow.kernel_flows.push_back(ev.key);
        auto& r = flow.record;
        r.first_seen = ev.first_seen;
        r.last_seen = ev.last_seen;
        r.node = node_;
        r.reason = ev.reason;
        r.enforcement = ev.enforcement;
        r.backend = ev.backend;
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
        const auto src = engine_ip(ev.src), dst = engine_ip(ev.dst);
        if (src && dst) {
            r.attributed = state_ != nullptr;
            const ClusterState& s = state_ ? *state_ : empty_state();
            auto name = [&](const IpAddr& ip) {
                auto pod = s.pod_by_ip(ip);
                return pod ? s.pod_id(*pod) : ip.str();
            };
            r.explanation = explain_flow(s, *src, *dst, engine_protocol(ev.protocol), ev.dport, name(*src), name(*dst));
            if (ev.original_dst) {
                if (auto od = engine_ip(ev.original_dst->ip)) {
                    OriginalDestination orig{*od, ev.original_dst->port, std::nullopt};
                    if (auto svc = s.service_by_ip(*od)) orig.service = s.services()[*svc].id();
                    r.original_dst = orig;
                }
            }
            flow.in_scope = flow_in_scope(r.explanation);
        } else {
            r.explanation.from = ev.src.to_string();
            r.explanation.to = ev.dst.to_string();
            flow.in_scope = o_.namespaces.empty() && o_.pod.empty();
        }
        annotate_drop(r);
        flows_.push_back(std::move(flow));
        index_.emplace(key, flows_.size() - 1);
        for (const auto& k : flows_.back().kernel_flows) by_kernel_key_[k] = flows_.size() - 1;
        if (flows_.back().in_scope) {
            ++reported_;
            emit(flows_.back().record, "drop");
        }
    }

    void refresh_counts(capture::DropCapture& cap) {
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
        // An evicted kernel entry keeps the last count the tail read.
        for (size_t i = 0; i < flows_.size(); ++i)
            if (seen[i] && sums[i] > flows_[i].record.count) flows_[i].record.count = sums[i];
    }

    void redraw_live_view() {
        if (!live_view_) return;
        out_ << "\033[H\033[2J";
        out_ << fmt::format("netpol-trace on {}: {} dropped flows (Ctrl-C to stop)\n\n", node_, reported_);
        out_ << fmt::format("{:<20} {:<45} {:<45} {:<7} {:<16} {:<22} {:<11} {:>8}  {}\n", "LAST SEEN", "SOURCE",
                            "DESTINATION", "PROTO", "REASON", "ENFORCEMENT", "CT", "COUNT", "POLICY");
        for (const auto& f : flows_) {
            if (!f.in_scope) continue;
            const auto& r = f.record;
            const auto& e = r.explanation;
            std::string policy = !r.attributed ? "-" : e.allowed() ? "allowed" : e.verdict;
            if (!e.hints.empty()) policy += " " + e.hints.front().code;
            out_ << fmt::format("{:<20} {:<45} {:<45} {:<7} {:<16} {:<22} {:<11} {:>8}  {}\n",
                                format_time(r.last_seen).substr(0, 19), endpoint_label(e.src),
                                endpoint_label(e.dst) + (e.port ? fmt::format(":{}", e.port) : ""), r.protocol_name,
                                r.reason, r.enforcement, r.ct_state, r.count, policy);
        }
        out_.flush();
    }

    void summary(capture::DropCapture& cap) {
        refresh_counts(cap);
        uint64_t drops = 0;
        size_t flows = 0;
        for (const auto& f : flows_) {
            if (!f.in_scope) continue;
            drops += f.record.count;
            ++flows;
        }
        if (o_.output == "json") {
            for (const auto& f : flows_)
                if (f.in_scope) write_json_line(out_, drop_json(f.record, "summary"));
        } else {
            out_ << fmt::format("\nsummary: {} dropped flow{}, {} drop{}\n", flows, flows == 1 ? "" : "s", drops,
                                drops == 1 ? "" : "s");
            for (const auto& f : flows_) {
                if (!f.in_scope) continue;
                const auto& r = f.record;
                const auto& e = r.explanation;
                out_ << fmt::format("  {:>8}  {} {} -> {}{} {} at {}{}\n", r.count, r.protocol_name,
                                    endpoint_label(e.src), endpoint_label(e.dst),
                                    e.port ? fmt::format(":{}", e.port) : "", r.reason, r.enforcement,
                                    !r.attributed ? "" : e.allowed() ? "  (policy allows it)" : "  (" + e.verdict + ")");
            }
        }
        out_.flush();
    }

    uint64_t reported() const { return reported_; }

private:
    static const ClusterState& empty_state() {
        static const auto empty = ClusterState::build({});
        return *empty;
    }

    bool pod_in_scope(uint32_t pod) const {
        const auto ns = state_->pod_namespace(pod);
        if (!o_.namespaces.empty() && std::find(o_.namespaces.begin(), o_.namespaces.end(), ns) == o_.namespaces.end())
            return false;
        if (o_.pod.empty()) return true;
        const auto name = state_->str(state_->pods()[pod].name);
        if (o_.pod.find('/') != std::string::npos) return o_.pod == state_->pod_id(pod);
        return o_.pod == name;
    }

    bool flow_in_scope(const Explanation& e) const {
        if (o_.namespaces.empty() && o_.pod.empty()) return true;
        for (const auto& ref : {e.src, e.dst}) {
            if (!ref.pod || !state_) continue;
            const auto slash = ref.pod->find('/');
            auto pod = state_->find_pod(ref.pod->substr(0, slash), ref.pod->substr(slash + 1));
            if (pod && pod_in_scope(*pod)) return true;
        }
        return false;
    }

    void refresh_count(TrackedFlow& flow, capture::DropCapture& cap) {
        uint64_t sum = 0;
        for (const auto& k : flow.kernel_flows)
            if (auto c = cap.counts(k)) sum += c->count;
        if (sum > flow.record.count) flow.record.count = sum;
    }

    void emit(const DropRecord& r, const char* event) {
        if (o_.output == "json") {
            write_json_line(out_, drop_json(r, event));
        } else if (!live_view_) {
            if (std::string_view(event) == "resumed") out_ << "(resumed) ";
            write_drop_text(out_, r, std::string_view(event) == "drop");
        }
        out_.flush();
    }

    const TailOptions& o_;
    std::shared_ptr<const ClusterState> state_;
    std::ostream& out_;
    std::ostream& err_;
    std::string node_;
    bool live_view_;
    std::vector<TrackedFlow> flows_;
    std::unordered_map<std::string, size_t> index_;
    std::unordered_map<capture::FlowKey, size_t, capture::FlowKeyHash> by_kernel_key_;
    uint64_t reported_ = 0;
    std::set<std::string> warned_namespaces_;
};

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

}  // namespace

int run_tail(const TailOptions& o, std::ostream& out, std::ostream& err) {
    if (!o.reasons.empty() && o.all_reasons) {
        err << "netpol-trace: --reasons and --all-reasons exclude each other\n";
        return 2;
    }
    if (!o.pod.empty() && o.pod.find('/') == std::string::npos && o.namespaces.size() != 1) {
        err << "netpol-trace: --pod NAME needs exactly one --namespace (or write --pod NAMESPACE/NAME)\n";
        return 2;
    }
    // Before any thread starts (the informer's), so that every thread inherits the blocked mask and
    // SIGINT/SIGTERM reach only the descriptor.
    SignalWatch signals;
    std::shared_ptr<const ClusterState> state;
    std::unique_ptr<k8s::ClusterInformer> informer;
    if (!o.state_files.empty()) {
        LoadStats stats;
        auto objects = load_state_files(o.state_files, &stats);
        if (!objects) {
            err << "netpol-trace: " << objects.error().message << '\n';
            return 2;
        }
        state = ClusterState::build(std::move(*objects));
        if (o.debug)
            err << fmt::format("netpol-trace: state: {} pods, {} policies, {} services, {} namespaces from {} file(s)\n",
                               state->pods().size(), state->policies().size(), state->services().size(),
                               state->namespaces().size(), o.state_files.size());
    } else if (!o.no_kubernetes) {
        k8s::ClientOptions copts;
        copts.kubeconfig = o.kubeconfig;
        copts.context = o.context;
        auto config = k8s::load_client_config(copts);
        if (!config) {
            err << "netpol-trace: " << config.error().message
                << " (pass --state FILE for offline state, or --no-kubernetes to tail without attribution)\n";
            return 2;
        }
        k8s::InformerOptions iopts;
        iopts.log = [&err, debug = o.debug](std::string_view msg) {
            if (debug) err << "netpol-trace: " << msg << '\n';
        };
        informer = std::make_unique<k8s::ClusterInformer>(std::make_shared<k8s::ApiClient>(std::move(*config)), iopts);
        informer->start();
        err << "netpol-trace: waiting for the cluster state from the Kubernetes API...\n";
        auto synced = informer->wait_synced(
            std::chrono::milliseconds(static_cast<int64_t>(o.sync_timeout * 1000)));
        if (!synced) {
            err << "netpol-trace: " << synced.error().message << '\n';
            return 2;
        }
        state = *synced;
    } else if (!o.namespaces.empty() || !o.pod.empty()) {
        err << "netpol-trace: --namespace and --pod need the cluster state (--state FILE or the Kubernetes API)\n";
        return 2;
    }

    Tail tail(o, state, out, err);
    auto watched = tail.watched_ips();
    if (!watched) {
        err << "netpol-trace: " << watched.error().message << '\n';
        return 2;
    }

    capture::CaptureOptions copts;
    copts.reasons = split_list(o.reasons);
    copts.all_reasons = o.all_reasons;
    // libbpf's own log is for debugging the loader itself, not the tail.
    copts.debug = o.debug && std::getenv("NPT_LIBBPF_DEBUG") != nullptr;
    copts.ip_filter = !o.namespaces.empty() || !o.pod.empty();
    copts.quiet_gap_ns = static_cast<uint64_t>(o.quiet_gap * 1e9);
    std::string error;
    auto cap = capture::DropCapture::open(copts, &error);
    if (!cap) {
        err << "netpol-trace: " << error << '\n';
        return 1;
    }
    // Only once the capture runs: a run that cannot capture prints its one error line and nothing else.
    if (!state) err << "netpol-trace: no cluster state: drops are shown without policy attribution\n";
    if (copts.ip_filter && !cap->set_watched_ips(*watched, &error)) {
        err << "netpol-trace: " << error << '\n';
        return 1;
    }
    if (o.debug) {
        err << fmt::format("netpol-trace: attached {} ({}); reasons: {}; watching {}\n", cap->attach_mode(),
                           cap->program_name(), fmt::join(cap->selected_reasons(), ","),
                           copts.ip_filter ? fmt::format("{} pod IPs", watched->size()) : "every drop");
    }
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << '\n';

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto last_refresh = start;
    bool stop = false;
    while (!stop) {
        const int n = cap->poll(100, [&](const capture::DropEvent& ev) {
            if (o.count && tail.reported() >= o.count) return;
            tail.on_event(ev, *cap);
        });
        if (n < 0 && n != -EINTR) {
            err << fmt::format("netpol-trace: reading the ring buffer failed: {}\n", std::strerror(-n));
            return 1;
        }
        const auto now = Clock::now();
        if (informer) {
            auto latest = informer->snapshot();
            if (latest && latest != tail.state()) {
                tail.set_state(latest);
                if (copts.ip_filter) {
                    auto ips = tail.watched_ips();
                    if (ips && !cap->set_watched_ips(*ips, &error))
                        err << "netpol-trace: updating the IP filter failed: " << error << '\n';
                }
            }
        }
        if (now - last_refresh >= std::chrono::seconds(1)) {
            tail.refresh_counts(*cap);
            tail.redraw_live_view();
            last_refresh = now;
        }
        if (signals.received()) stop = true;
        if (o.duration > 0 && now - start >= std::chrono::duration<double>(o.duration)) stop = true;
        if (o.count && tail.reported() >= o.count) stop = true;
    }
    // Drops that arrived since the last poll still belong to the run.
    cap->poll(0, [&](const capture::DropEvent& ev) {
        if (!o.count || tail.reported() < o.count) tail.on_event(ev, *cap);
    });
    tail.summary(*cap);
    if (o.debug) {
        const auto st = cap->stats();
        err << fmt::format(
            "netpol-trace: capture stats: {} events, {} lost, {} flows tracked, {} LRU evictions, {} filtered by IP\n",
            st.events, st.lost_events, st.flows_tracked, st.lru_evictions, st.ip_filtered);
    }
    return 0;
}

}  // namespace npt::cli

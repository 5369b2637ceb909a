#include "cli/tail_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include "live/cluster_source.hpp"
#include "live/flow_tracker.hpp"
#include "cli/remote_tail.hpp"
#include "live/signal_watch.hpp"
#include "drop_capture.hpp"
#include "output/drop_record.hpp"
#include "output/drop_text.hpp"
#include "output/live_table.hpp"
#include "output/live_view.hpp"
#include "output/text_output.hpp"
#include "policy/explainer.hpp"
#include "k8s/cluster_informer.hpp"
#include "netfilter/nflog_listener.hpp"
#include "netfilter/rule_tracer.hpp"
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
                   "table (a live view on a terminal, fitted to its width: Up/Down select a flow, Enter shows its "
                   "explanation; plain lines otherwise), wide (the live view with every column at full width) or json "
                   "(one object per line)")
        ->check(CLI::IsMember({"table", "wide", "json"}));
    app.add_flag("--wide", o.wide, "The same as -o wide");
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
    app.add_flag(
        "--rule-trace", o.rule_trace,
        "Name the nftables rule that dropped each flow (table, chain, handle, comment, the chains it went "
        "through, and the policy behind it where the CNI's naming tells: kube-router, k3s, Calico). Traces "
        "the watched pods' packets from a table of netpol-trace's own (inet netpol_trace_<pid>, removed on "
        "exit and by the kernel if the process is killed), at most --rule-trace-rate packets/s. While tracing, "
        "the kernel checks every nftables rule it evaluates for it (~10% of a dropped packet's cost in a "
        "storm): tracing pauses while a storm's flows are all named and resumes for a new one. Sees nftables and "
        "iptables-nft "
        "rules, not iptables-legacy or tc/eBPF dataplanes (their drops say so). Needs CAP_NET_ADMIN, in the "
        "network namespace of the CNI's rules (the node's); captures on this machine, as --local does");
    app.add_option("--rule-trace-rate", o.rule_trace_rate,
                   "Packets per second --rule-trace traces, all watched pods together (default 100)")
        ->type_name("N")
        ->check(CLI::Range(1, 100000));
    app.add_option("--nflog-group", o.nflog_group,
                   "Join the CNI's NFLOG records of group N to the drops (kube-router logs what it rejects to 100; "
                   "k3s's prefix names the policy). If another listener holds the group, says so and goes on "
                   "without it. Captures on this machine, as --local does")
        ->type_name("N")
        ->check(CLI::Range(0, 65535));
    app.add_option("--node", o.node, "Node name to report (default: $NODE_NAME, else the host name)");
    app.add_option("--ready-file", o.ready_file,
                   "Create FILE once the capture is attached or the agents' streams are opened (for scripts)");
    app.add_flag("--local", o.local,
                 "Capture on this machine (root) even when netpol-trace agents run in the cluster; without it, "
                 "a kubeconfig whose cluster runs agents tails every node through them");
    app.add_option("--agent-namespace", o.agent_namespace,
                   "Namespace of the netpol-trace agents for the cluster-wide tail (default netpol-trace)")
        ->type_name("NS");
    app.add_option("--agent-selector", o.agent_selector,
                   "Label selector of the agent pods (default app.kubernetes.io/name=netpol-trace,"
                   "app.kubernetes.io/component=agent)")
        ->type_name("SELECTOR");
    app.add_option("--agent-port", o.agent_port, "The agents' HTTP port (default 9842)")
        ->type_name("PORT")
        ->check(CLI::Range(1, 65535));
    app.add_option("--agent-refresh", o.agent_refresh,
                   "Seconds between lists of the agent pods, to follow agents that come and go (default 10)")
        ->type_name("SECONDS")
        ->check(CLI::PositiveNumber);
    app.add_flag("--debug", o.debug, "Print the attach mode, the reasons, state and capture statistics to stderr");
    app.add_flag("--fix", o.fix,
                 "With each denied flow, its verified fixes (as explain --fix): the JSON lines' \"fixes\", the best "
                 "fix of each side in text lines; through the agents, asked of their /events streams");
}

namespace {

// The rule of a dropped packet from the witnesses the tail listens to: the nftables trace names the rule (fexit's
// answer, when the kernel gave one, is kept and only gains the trace's path), an NFLOG record adds its prefix.
bool join_witnesses(netfilter::RuleTracer* tracer, netfilter::NflogListener* nflog, const live::DropLookup& l,
                    std::optional<DropRule>& rule) {
    const netfilter::PacketTuple tuple{l.src, l.dst, l.protocol, l.sport, l.dport};
    bool changed = false;
    if (tracer) {
        tracer->drain();
        const auto* d = tracer->find(tuple, l.at_ns);
        // Paused during a storm and a new flow needs its rule: its next packets will be traced.
        if (!d && !tracer->armed()) (void)tracer->set_armed(true);
        if (d) {
            if (!rule || rule->chain.empty()) {  // nothing yet, or only an NFLOG record
                if (!rule) rule = DropRule{};
                rule->table = d->table;
                rule->chain = d->chain;
                rule->handle = d->handle;
                rule->comments = d->comments;
                rule->comment.reset();  // chosen from the comments
                rule->via = "nftrace";
                rule->chain_policy = d->chain_policy;
                changed = true;
            }
            if (rule->path.empty() && rule->table == d->table && rule->chain == d->chain) {
                rule->family = d->family;
                rule->path = d->path;
                // The trace gives the comment of the rule that entered path[i + 1]; the rule, of the one that
                // entered path[i] (none for the base chain).
                rule->jump_comments.assign(1, {});
                rule->jump_comments.insert(rule->jump_comments.end(), d->jump_comments.begin(), d->jump_comments.end());
                for (const auto& ret : d->returned) {
                    rule->returned_from.push_back(ret.chain);
                    rule->returned_comments.push_back(ret.jump_comments);
                }
                changed = true;
            }
        }
    }
    if (nflog && !(rule && rule->nflog_group)) {
        nflog->drain();
        if (const auto* n = nflog->find(tuple, l.at_ns)) {
            if (!rule) {
                rule = DropRule{};
                rule->via = "nflog";
            }
            rule->nflog_group = n->group;
            if (!n->prefix.empty()) rule->nflog_prefix = n->prefix;
            changed = true;
        }
    }
    return changed;
}

// While any rule sets nftrace, the kernel checks every rule it evaluates for tracing (~10% of a dropped packet's cost
// in a storm): tracing pauses while the watched pods drop more than kStormDrops packets a second and every flow
// dropping now is named already, and resumes when one is not (or the storm ends).
constexpr uint64_t kStormDrops = 1000;

void pace_rule_trace(netfilter::RuleTracer& tracer, const live::FlowTracker& tracker, uint64_t drops_per_second,
                     bool debug, std::ostream& err) {
    const auto recent = std::chrono::system_clock::now() - std::chrono::seconds(3);
    const bool unnamed = std::any_of(tracker.flows().begin(), tracker.flows().end(), [&](const live::TrackedFlow& f) {
        return f.in_scope && f.rule_wanted && f.record.rule_trace != "not_visible" && f.record.last_seen >= recent;
    });
    const bool arm = unnamed || drops_per_second < kStormDrops;
    if (arm == tracer.armed()) return;
    if (auto set = tracer.set_armed(arm); !set)
        err << "netpol-trace: " << set.error().message << '\n';
    else if (debug)
        err << fmt::format("netpol-trace: rule trace {} ({} drops/s{})\n", arm ? "resumed" : "paused", drops_per_second,
                           arm ? "" : ", every dropping flow named");
}

// The terminal's size: its window size, else $COLUMNS / $LINES, else 120 x 40.
size_t terminal_size(bool columns) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && (columns ? ws.ws_col : ws.ws_row) > 0)
        return columns ? ws.ws_col : ws.ws_row;
    if (const char* c = std::getenv(columns ? "COLUMNS" : "LINES")) {
        const long n = std::strtol(c, nullptr, 10);
        if (n > 0) return static_cast<size_t>(n);
    }
    return columns ? 120 : 40;
}

// The live view's keys: the terminal's input without line buffering and echo, read without waiting, restored on
// the way out and while the tail is stopped (Ctrl-Z). Ctrl-C still signals. Inactive when stdin is not a terminal or
// the tail was started in the background (changing the terminal's modes would stop it with SIGTTOU); read only while in
// the foreground (a read from the background would stop it with SIGTTIN).
class KeyboardInput {
  public:
    KeyboardInput() {
        if (!isatty(STDIN_FILENO) || !foreground() || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
        active_ = true;
        resume();
        active_ = raw_;
    }
    ~KeyboardInput() { restore(); }

    // Ctrl-Z: the terminal goes back to its modes, the process stops, and once continued in the foreground
    // the keys are read unbuffered again (continued in the background: when it comes back, at the next read).
    void suspend() {
        restore();
        live::SignalWatch::stop_self();
        resume();
    }
    KeyboardInput(const KeyboardInput&) = delete;
    KeyboardInput& operator=(const KeyboardInput&) = delete;

    bool active() const { return active_; }
    std::string read() {
        if (!active_ || !foreground()) return {};
        if (!raw_) resume();
        char buf[64];
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof(buf));
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
    }

  private:
    void resume() {
        if (!active_ || raw_ || !foreground()) return;
        termios raw = saved_;
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    void restore() {
        if (!raw_) return;
        // Restored even when the tail was moved to the background since.
        struct sigaction ignore {
        }, previous{};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGTTOU, &ignore, &previous);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
        ::sigaction(SIGTTOU, &previous, nullptr);
        raw_ = false;
    }

    // Job control stops only the background of the controlling terminal: a terminal that is not ours has no
    // foreground to check (tcgetpgrp fails).
    static bool foreground() {
        const pid_t group = ::tcgetpgrp(STDIN_FILENO);
        return group == -1 || group == ::getpgrp();
    }

    termios saved_{};
    bool active_ = false;  // the live view reads keys
    bool raw_ = false;     // the terminal is in the view's modes now
};

class Tail {
  public:
    Tail(const TailOptions& o, std::shared_ptr<const ClusterState> state, std::ostream& out, std::ostream& err)
        : o_(o),
          tracker_(live::PodScope{o.namespaces, o.pod}, o.node.empty() ? live::default_node_name() : o.node,
                   std::move(state)),
          out_(out),
          err_(err),
          live_view_(o.output != "json" && isatty(STDOUT_FILENO) && &out == &std::cout),
          wide_(o.output == "wide" || o.wide) {
        tracker_.set_fixes(o.fix);
    }

    live::FlowTracker& tracker() { return tracker_; }

    void on_event(const capture::DropEvent& ev, capture::DropCapture& cap) {
        const auto report = tracker_.on_event(ev, cap);
        if (report.event) emit(report.flow->record, report.event);
    }

    bool live_view() const { return live_view_; }

    // Keys the terminal sent: move the selection, open or close the explanation pane, and redraw at once.
    void on_keys(std::string_view bytes, bool keyboard) {
        const auto keys = decode_live_keys(bytes);
        if (keys.empty()) return;
        const size_t rows = in_scope_rows().size();
        for (const LiveKey k : keys) view_.on_key(k, rows);
        redraw_live_view(keyboard);
    }

    void redraw_live_view(bool keyboard) {
        if (!live_view_) return;
        out_ << "\033[H\033[2J";
        out_ << fmt::format("netpol-trace on {}: {} dropped flows ({}Ctrl-C to stop)\n\n", tracker_.node(),
                            tracker_.reported(), keyboard ? "Up/Down select, Enter explains, " : "");
        const size_t height = terminal_size(false);
        for (const auto& line : view_.render(in_scope_rows(), terminal_size(true), height > 3 ? height - 3 : 1, wide_))
            out_ << line << '\n';
        out_.flush();
    }

    void summary(capture::DropCapture& cap) {
        tracker_.refresh_counts(cap);
        uint64_t drops = 0;
        size_t flows = 0;
        for (const auto& f : tracker_.flows()) {
            if (!f.in_scope) continue;
            drops += f.record.count;
            ++flows;
        }
        if (o_.output == "json") {
            for (const auto& f : tracker_.flows())
                if (f.in_scope) write_json_line(out_, drop_json(f.record, "summary"));
        } else {
            out_ << fmt::format("\nsummary: {} dropped flow{}, {} drop{}\n", flows, flows == 1 ? "" : "s", drops,
                                drops == 1 ? "" : "s");
            for (const auto& f : tracker_.flows())
                if (f.in_scope) write_drop_summary_row(out_, drop_text(f.record, "summary"));
        }
        out_.flush();
    }

    uint64_t reported() const { return tracker_.reported(); }

    // A new flow found in the kernel's map rather than through its event.
    void report(const live::TrackedFlow& flow) {
        if (!o_.count || tracker_.reported() <= o_.count) emit(flow.record, "drop");
    }

    // A flow whose rule a witness named after its drop line was written: json gets a `rule` event line.
    void report_rule(const live::TrackedFlow& flow) {
        if (flow.in_scope && o_.output == "json") {
            write_json_line(out_, drop_json(flow.record, "rule"));
            out_.flush();
        }
    }

  private:
    std::vector<const DropRecord*> in_scope_rows() const {
        std::vector<const DropRecord*> rows;
        for (const auto& f : tracker_.flows())
            if (f.in_scope) rows.push_back(&f.record);
        return rows;
    }

    void emit(const DropRecord& r, const char* event) {
        if (o_.output == "json") {
            write_json_line(out_, drop_json(r, event));
        } else if (!live_view_) {
            write_drop_text(out_, drop_text(r, event), std::string_view(event) == "drop");
        }
        out_.flush();
    }

    const TailOptions& o_;
    live::FlowTracker tracker_;
    std::ostream& out_;
    std::ostream& err_;
    bool live_view_;
    LiveView view_;
    bool wide_;
};

}  // namespace

int run_tail(const TailOptions& o, std::ostream& out, std::ostream& err) {
    if (o.wide && o.output == "json") {
        err << "netpol-trace: --wide is the live table's; it does not apply to -o json\n";
        return 2;
    }
    if (!o.reasons.empty() && o.all_reasons) {
        err << "netpol-trace: --reasons and --all-reasons exclude each other\n";
        return 2;
    }
    if (!o.pod.empty() && o.pod.find('/') == std::string::npos && o.namespaces.size() != 1) {
        err << "netpol-trace: --pod NAME needs exactly one --namespace (or write --pod NAMESPACE/NAME)\n";
        return 2;
    }
    // Before any thread starts (the informer's), so that every thread inherits the blocked mask and
    // SIGINT/SIGTERM reach only the descriptor. On a terminal, Ctrl-Z comes there too: the live view puts the
    // terminal back in its modes before the tail stops, and takes the keys again when it is continued.
    live::SignalWatch signals(isatty(STDIN_FILENO) && isatty(STDOUT_FILENO));
    std::string agents_note;  // why the tail captures locally although it has a kubeconfig
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
            err << fmt::format(
                "netpol-trace: state: {} pods, {} policies, {} services, {} namespaces from {} file(s)\n",
                state->pods().size(), state->policies().size(), state->services().size(), state->namespaces().size(),
                o.state_files.size());
    } else if (!o.no_kubernetes) {
        auto connected = live::connect_api(o.kubeconfig, o.context);
        if (!connected) {
            err << "netpol-trace: " << connected.error().message
                << " (pass --state FILE for offline state, or --no-kubernetes to tail without attribution)\n";
            return 2;
        }
        auto client = std::move(*connected);
        // --rule-trace and --nflog-group watch this machine's netfilter: they capture here, like --local.
        if (!o.local && !o.rule_trace && o.nflog_group < 0) {
            // Agents in the cluster: tail every node through them (no privileges needed here).
            auto agents = list_agents(*client, o);
            if (agents && !agents->empty()) return run_remote_tail(o, client, std::move(*agents), signals, out, err);
            if (!agents) {
                agents_note = fmt::format("the netpol-trace agents could not be listed ({})", agents.error().message);
                if (o.debug) err << "netpol-trace: " << agents_note << "; capturing on this machine\n";
            } else {
                agents_note = fmt::format("no netpol-trace agents run in namespace {}", o.agent_namespace);
            }
        }
        k8s::InformerOptions iopts;
        iopts.log = [&err, debug = o.debug](std::string_view msg) {
            if (debug) err << "netpol-trace: " << msg << '\n';
        };
        informer = std::make_unique<k8s::ClusterInformer>(client, iopts);
        informer->start();
        err << "netpol-trace: waiting for the cluster state from the Kubernetes API...\n";
        auto synced = informer->wait_synced(std::chrono::milliseconds(static_cast<int64_t>(o.sync_timeout * 1000)));
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
    auto watched = tail.tracker().watched_ips(err);
    if (!watched) {
        err << "netpol-trace: " << watched.error().message << '\n';
        return 2;
    }

    capture::CaptureOptions copts;
    copts.reasons = live::split_list(o.reasons);
    copts.all_reasons = o.all_reasons;
    // libbpf's own log is for debugging the loader itself, not the tail.
    copts.debug = o.debug && std::getenv("NPT_LIBBPF_DEBUG") != nullptr;
    copts.ip_filter = !o.namespaces.empty() || !o.pod.empty();
    copts.quiet_gap_ns = static_cast<uint64_t>(o.quiet_gap * 1e9);
    auto opened_capture = capture::DropCapture::open(copts);
    if (!opened_capture) {
        const std::string& error = opened_capture.error().message;
        if (agents_note.empty())
            err << "netpol-trace: " << error << '\n';
        else
            err << "netpol-trace: " << error << "; and " << agents_note
                << ": deploy them (kubectl apply -k deploy/, see docs/deploy.md) to tail every node from here\n";
        return 1;
    }
    // Only once the capture runs: a run that cannot capture prints its one error line and nothing else.
    if (!state) err << "netpol-trace: no cluster state: drops are shown without policy attribution\n";
    auto cap = std::move(*opened_capture);
    if (copts.ip_filter) {
        if (auto set = cap->set_watched_ips(*watched); !set) {
            err << "netpol-trace: " << set.error().message << '\n';
            return 1;
        }
    }
    if (o.debug) {
        err << fmt::format("netpol-trace: attached {} ({}); reasons: {}; watching {}\n", cap->attach_mode(),
                           cap->program_name(), fmt::join(cap->selected_reasons(), ","),
                           copts.ip_filter ? fmt::format("{} pod IPs", watched->size()) : "every drop");
        err << "netpol-trace: rule attribution: " << cap->rule_attribution_status() << '\n';
    }
    if (auto why = live::read_fexit_rule_comments(tail.tracker(), *cap); !why.empty() && o.debug)
        err << "netpol-trace: rule attribution without comment lookups: " << why << '\n';
    std::unique_ptr<netfilter::RuleTracer> tracer;
    if (o.rule_trace) {
        netfilter::RuleTracerOptions topts;
        topts.rate_per_second = o.rule_trace_rate;
        auto opened = netfilter::RuleTracer::open(topts);
        if (!opened) {
            err << "netpol-trace: " << opened.error().message << '\n';
            return 1;
        }
        tracer = std::move(*opened);
        if (auto set = tracer->set_watched(*watched, !copts.ip_filter); !set) {
            err << "netpol-trace: " << set.error().message << '\n';
            return 1;
        }
        if (o.debug)
            err << fmt::format("netpol-trace: rule trace: table inet {}, {} packets/s\n", tracer->table_name(),
                               o.rule_trace_rate);
    }
    std::unique_ptr<netfilter::NflogListener> nflog;
    if (o.nflog_group >= 0) {
        bool busy = false;
        auto opened = netfilter::NflogListener::open(static_cast<uint16_t>(o.nflog_group), &busy);
        if (!opened && !busy) {
            err << "netpol-trace: " << opened.error().message << '\n';
            return 1;
        }
        if (!opened)
            err << "netpol-trace: warning: " << opened.error().message << "; continuing without NFLOG records\n";
        else
            nflog = std::move(*opened);
    }
    if (tracer || nflog)
        tail.tracker().set_rule_source(
            [&](const live::DropLookup& l, std::optional<DropRule>& rule) {
                return join_witnesses(tracer.get(), nflog.get(), l, rule);
            },
            tracer != nullptr);
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << '\n';

    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto last_refresh = start;
    uint64_t lost_seen = 0;
    uint64_t drops_seen = 0;  // drops of the watched flows at the last refresh
    bool stop = false;
    std::optional<KeyboardInput> keyboard;
    if (tail.live_view()) keyboard.emplace();
    const bool keys = keyboard && keyboard->active();
    while (!stop) {
        const int n = cap->poll(100, [&](const capture::DropEvent& ev) {
            if (o.count && tail.reported() >= o.count) return;
            tail.on_event(ev, *cap);
        });
        if (n < 0 && n != -EINTR) {
            err << fmt::format("netpol-trace: reading the ring buffer failed: {}\n", std::strerror(-n));
            return 1;
        }
        if (keys) tail.on_keys(keyboard->read(), keys);
        const auto now = Clock::now();
        // Witnesses queue up between polls; keep their sockets drained even when no new flow asks for them.
        if (tracer) tracer->drain();
        if (nflog) nflog->drain();
        if (informer) {
            auto latest = informer->snapshot();
            if (latest && latest != tail.tracker().state()) {
                tail.tracker().set_state(latest);
                if (copts.ip_filter) {
                    auto ips = tail.tracker().watched_ips(err);
                    if (ips)
                        if (auto set = cap->set_watched_ips(*ips); !set)
                            err << "netpol-trace: updating the IP filter failed: " << set.error().message << '\n';
                    if (ips && tracer)
                        if (auto set = tracer->set_watched(*ips, false); !set)
                            err << "netpol-trace: updating the rule trace failed: " << set.error().message << '\n';
                }
            }
        }
        if (now - last_refresh >= std::chrono::seconds(1)) {
            // Flows whose event a full ring buffer lost are still in the kernel's map: report them from there.
            const uint64_t lost = cap->lost_events();
            for (const auto& r : tail.tracker().refresh_counts(*cap, lost > lost_seen)) tail.report(*r.flow);
            if (tracer || nflog)
                for (auto* f : tail.tracker().attach_late_rules(
                         *cap, std::chrono::system_clock::now() - std::chrono::seconds(10)))
                    tail.report_rule(*f);
            if (tracer) {
                uint64_t total = 0;
                for (const auto& f : tail.tracker().flows()) total += f.in_scope ? f.record.count : 0;
                pace_rule_trace(*tracer, tail.tracker(), total > drops_seen ? total - drops_seen : 0, o.debug, err);
                drops_seen = total;
            }
            lost_seen = lost;
            tail.redraw_live_view(keys);
            last_refresh = now;
        }
        for (int sig; (sig = signals.take()) != 0;) {
            if (sig != SIGTSTP) {
                stop = true;
            } else if (keyboard) {
                keyboard->suspend();
                tail.redraw_live_view(keys);  // the screen may have been used while the tail was stopped
            } else {
                live::SignalWatch::stop_self();
            }
        }
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
        if (tracer) {
            const auto ts = tracer->stats();
            err << fmt::format(
                "netpol-trace: rule trace stats: {} messages, {} drop verdicts, {} overruns, {} rule "
                "lookups ({} failed)\n",
                ts.messages, ts.drops, ts.overruns, ts.rule_lookups, ts.lookup_failures);
        }
        if (nflog) {
            const auto ns = nflog->stats();
            err << fmt::format(
                "netpol-trace: nflog stats: group {}: {} records, {} without an IP packet, {} overruns\n",
                nflog->group(), ns.records, ns.unparsed, ns.overruns);
        }
    }
    return 0;
}

}  // namespace npt::cli

#include "agent/agent_command.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <httplib.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <sstream>
#include <thread>

#include "agent/drop_metrics.hpp"
#include "agent/event_hub.hpp"
#include "agent/flows_query.hpp"
#include "common/ip_addr.hpp"
#include "flows/flows_journal.hpp"
#include "live/connection_recorder.hpp"
#include "policy/fix.hpp"
#include "live/cluster_source.hpp"
#include "live/flow_tracker.hpp"
#include "live/signal_watch.hpp"
#include "drop_capture.hpp"
#include "k8s/cluster_informer.hpp"
#include "output/json_output.hpp"
#include "state/state_loader.hpp"

namespace npt::agent {

void register_agent(CLI::App& app, AgentOptions& o) {
    auto* cmd = app.add_subcommand(
        "agent",
        "Run the node agent (the DaemonSet's container): capture this node's drops, attribute them, and serve\n"
        "GET /metrics (Prometheus), /events (NDJSON stream of the tail's drop objects; query namespace=, pod=,\n"
        "reason=), /flows (NDJSON of the working connections; query namespace=, pod=, since=), /healthz and\n"
        "/readyz (ready once the capture is attached and the cluster state synced).\n"
        "Needs root or CAP_BPF+CAP_PERFMON (UDP/SCTP connections: CAP_NET_ADMIN in the node's network\n"
        "namespace). Exit status: 0 after SIGTERM/SIGINT, 1 when the capture or the listener cannot run, 2 usage\n"
        "or input error.");
    cmd->add_option("--listen", o.listen,
                    "Address to serve HTTP on: HOST:PORT, [V6]:PORT or :PORT (default 0.0.0.0:9842)")
        ->type_name("ADDR");
    cmd->add_option("--state", o.state_files,
                    "Cluster state from files instead of the Kubernetes API (kubectl get ... -o json; repeatable)")
        ->type_name("FILE");
    cmd->add_option("--kubeconfig", o.kubeconfig,
                    "Kubeconfig to watch the cluster state with (default: the in-cluster service account, "
                    "$KUBECONFIG or ~/.kube/config)")
        ->type_name("PATH");
    cmd->add_option("--context", o.context, "Kubeconfig context to use (default: its current-context)");
    cmd->add_flag("--no-kubernetes", o.no_kubernetes, "No cluster state: serve drops without policy attribution");
    cmd->add_option("--node", o.node, "Node name the events carry (default: $NODE_NAME, else the host name)");
    cmd->add_option("--reasons", o.reasons,
                    "Kernel drop reasons to capture, comma-separated (default: the policy enforcement points, as "
                    "the tail)")
        ->type_name("LIST");
    cmd->add_flag("--all-reasons", o.all_reasons, "Capture drops of every reason (noisy)");
    cmd->add_option("--max-pod-series", o.max_pod_series,
                    "Cap on netpol_trace_drops_total series; further label sets are counted under "
                    "namespace/pod/policy \"_other\" (default 2000)")
        ->type_name("N")
        ->check(CLI::Range(size_t{2}, size_t{1} << 24));
    cmd->add_option("--max-clients", o.max_clients, "Concurrent /events streams served (default 16)")
        ->type_name("N")
        ->check(CLI::Range(size_t{1}, size_t{1024}));
    cmd->add_option("--max-flows", o.max_flows,
                    "Dropped flows remembered (each is explained once); the least recently seen are forgotten "
                    "beyond it (default 20000; the kernel's own flow map holds 65536)")
        ->type_name("N")
        ->check(CLI::Range(size_t{1024}, size_t{1} << 24));
    cmd->add_option("--flow-idle", o.flow_idle,
                    "Forget a flow after SECONDS without drops; if it drops again it is reported as new "
                    "(default 600)")
        ->type_name("SECONDS")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--quiet-gap", o.quiet_gap,
                    "A flow that drops again after SECONDS without drops is reported again as resumed (default 1)")
        ->type_name("SECONDS")
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("--ready-file", o.ready_file, "Write \"PID PORT\" to FILE once ready (for scripts)")
        ->type_name("FILE");
    cmd->add_flag("--no-flows", o.no_flows, "Do not record the working connections (/flows answers 404)");
    cmd->add_option("--max-connections", o.max_connections,
                    "Working connections remembered; the least recently seen are forgotten beyond it (default 50000)")
        ->type_name("N")
        ->check(CLI::Range(size_t{16}, size_t{1} << 24));
    cmd->add_option("--connection-max-age", o.connection_max_age,
                    "Forget a connection not seen for this long (default 24h; 90s, 15m, 24h, 7d)")
        ->type_name("DURATION");
    cmd->add_option("--flows-journal", o.flows_journal,
                    "Keep the working connections in FILE (JSON lines, rotated to FILE.1), read back at start: a "
                    "restart does not forget them. Needs a writable volume")
        ->type_name("FILE");
    cmd->add_option("--flows-journal-mib", o.flows_journal_mib, "Size of FILE and FILE.1 together, in MiB (default 64)")
        ->type_name("N")
        ->check(CLI::Range(size_t{1}, size_t{1} << 20));
    cmd->add_flag("--debug", o.debug, "Log the attach mode, the state and each /events stream to stderr");
}

namespace {

using Clock = std::chrono::steady_clock;

// What the HTTP threads read and the capture loop writes.
struct Shared {
    std::mutex mu;
    DropMetrics metrics{2000};
    capture::CaptureStats capture_stats;
    std::string attach_mode;  // empty until attached
    uint64_t flows_reported = 0;
    uint64_t flows_forgotten = 0;
    std::string not_ready = "starting";
    std::atomic<bool> ready{false};
    std::atomic<int64_t> heartbeat_ns{0};  // steady clock of the capture loop's last iteration
};

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct ProcessStats {
    double cpu_seconds = 0;
    uint64_t rss_bytes = 0;
    uint64_t virtual_bytes = 0;
};

ProcessStats process_stats() {
    ProcessStats s;
    std::ifstream stat("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command (which may hold spaces) start after the last ')'.
    const auto paren = text.rfind(')');
    if (paren != std::string::npos) {
        std::istringstream in(text.substr(paren + 2));
        std::string field;
        std::vector<std::string> f;
        while (in >> field) f.push_back(field);
        // f[0] is field 3 (state): utime is field 14, stime 15, vsize 23, rss 24 (pages).
        if (f.size() > 21) {
            const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
            s.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / tick;
            s.virtual_bytes = std::stoull(f[20]);
            s.rss_bytes = std::stoull(f[21]) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        }
    }
    return s;
}

void family(std::string& out, const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A family of one unlabelled sample.
template <typename T>
void metric(std::string& out, const char* name, const char* type, const char* help, T value) {
    family(out, name, type, help);
    out += fmt::format("{} {}\n", name, value);
}

void render_flow_metrics(std::string& out, const live::RecorderStats& s) {
    metric(out, "netpol_trace_connections_tracked", "gauge", "Working connections in the agent's table (/flows).",
           s.table_size);
    metric(out, "netpol_trace_connections_evicted_total", "counter",
           "Connections the table forgot for room (--max-connections), least recently seen first.", s.evicted);
    metric(out, "netpol_trace_connections_expired_total", "counter",
           "Connections the table forgot for age (--connection-max-age).", s.expired);
    family(out, "netpol_trace_connections_observed_total", "counter",
           "Connections counted: TCP established (tcp_state), conntrack entries that saw a reply (conntrack).");
    out += fmt::format("netpol_trace_connections_observed_total{{observed_by=\"tcp_state\"}} {}\n", s.tcp_connections);
    out += fmt::format("netpol_trace_connections_observed_total{{observed_by=\"conntrack\"}} {}\n",
                       s.conntrack_connections);
    metric(out, "netpol_trace_connection_map_evictions_total", "counter",
           "Entries the kernel's connection map evicted for room (their later counts start again).", s.kernel.evicted);
    metric(out, "netpol_trace_conntrack_visible", "gauge",
           "1 when UDP and SCTP connections are seen (conntrack events of the node's network namespace).",
           s.conntrack_not_visible.empty() ? 1 : 0);
    metric(out, "netpol_trace_conntrack_events_lost_total", "counter",
           "Times the conntrack event socket overflowed (events lost).", s.conntrack.overruns);
}

std::string render_metrics(Shared& shared, const EventHub& hub, k8s::ClusterInformer* informer, const std::string& node,
                           const live::ConnectionRecorder* recorder) {
    std::string out;
    out.reserve(16384);
    {
        std::lock_guard lock(shared.mu);
        shared.metrics.render(out);
        const auto& st = shared.capture_stats;
        metric(out, "netpol_trace_flows_tracked", "gauge", "Dropped flows in the kernel's per-flow map now.",
               st.flows_tracked);
        metric(out, "netpol_trace_flows_reported_total", "counter",
               "Dropped flows explained and published (each once when first seen).", shared.flows_reported);
        metric(out, "netpol_trace_flows_forgotten_total", "counter",
               "Flows the agent forgot (idle longer than --flow-idle, or beyond --max-flows).", shared.flows_forgotten);
        metric(out, "netpol_trace_kernel_events_total", "counter",
               "Events the kernel sent (new and resumed flows); each drop is counted in the map, not sent.", st.events);
        metric(out, "netpol_trace_ringbuf_lost_events_total", "counter",
               "Events lost because the ring buffer was full (their drops are still counted).", st.lost_events);
        metric(out, "netpol_trace_lru_evictions_total", "counter",
               "Flows the kernel's LRU map evicted to make room (a storm of distinct flows).", st.lru_evictions);
        metric(out, "netpol_trace_drop_metrics_overflow_total", "counter",
               "Drops counted under the \"_other\" series because of --max-pod-series.", shared.metrics.overflowed());
        metric(out, "netpol_trace_capture_attached", "gauge", "1 when the kernel capture is attached.",
               shared.attach_mode.empty() ? 0 : 1);
        family(out, "netpol_trace_build_info", "gauge", "Version, node and kernel hook of this agent (value 1).");
        out += fmt::format("netpol_trace_build_info{{version=\"{}\",node=\"{}\",attach_mode=\"{}\"}} 1\n",
                           escape_label_value(NPT_VERSION), escape_label_value(node),
                           escape_label_value(shared.attach_mode));
    }
    metric(out, "netpol_trace_ready", "gauge", "1 when the agent is ready (capture attached, cluster state synced).",
           shared.ready.load() ? 1 : 0);
    if (recorder) render_flow_metrics(out, recorder->stats());
    metric(out, "netpol_trace_event_streams", "gauge", "Open /events streams.", hub.subscribers());
    metric(out, "netpol_trace_event_streams_cut_off_total", "counter",
           "/events streams ended because the client fell behind (its queue filled up).", hub.cut_off());
    if (informer) {
        const auto stats = informer->stats();
        family(out, "netpol_trace_informer_synced", "gauge",
               "1 once the first list of the resource from the Kubernetes API completed.");
        for (const auto& r : stats.resources)
            out += fmt::format("netpol_trace_informer_synced{{resource=\"{}\"}} {}\n", r.resource, r.synced ? 1 : 0);
        family(out, "netpol_trace_informer_staleness_seconds", "gauge",
               "Seconds since the last list, watch event or bookmark of the resource (how stale it may be).");
        for (const auto& r : stats.resources)
            if (r.staleness)
                out += fmt::format("netpol_trace_informer_staleness_seconds{{resource=\"{}\"}} {:.3f}\n", r.resource,
                                   std::chrono::duration<double>(*r.staleness).count());
        family(out, "netpol_trace_informer_objects", "gauge", "Objects of the resource in the agent's store.");
        for (const auto& r : stats.resources)
            out += fmt::format("netpol_trace_informer_objects{{resource=\"{}\"}} {}\n", r.resource, r.objects);
        family(out, "netpol_trace_informer_relists_total", "counter",
               "Full re-lists of the resource (watch history expired, 410 Gone).");
        for (const auto& r : stats.resources)
            out += fmt::format("netpol_trace_informer_relists_total{{resource=\"{}\"}} {}\n", r.resource, r.relists);
    }
    const auto ps = process_stats();
    family(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
    out += fmt::format("process_cpu_seconds_total {:.2f}\n", ps.cpu_seconds);
    metric(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", ps.rss_bytes);
    metric(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ps.virtual_bytes);
    return out;
}

// The /events query: namespace= and reason= (repeatable or comma-separated), pod= (NAME with one
// namespace, or NAMESPACE/NAME).
Result<EventFilter> parse_filter(const httplib::Request& req) {
    EventFilter f;
    auto values = [&](const char* key) {
        std::vector<std::string> out;
        const size_t n = req.get_param_value_count(key);
        for (size_t i = 0; i < n; ++i)
            for (auto& v : live::split_list(req.get_param_value(key, i))) out.push_back(std::move(v));
        return out;
    };
    f.scope.namespaces = values("namespace");
    const auto pods = values("pod");
    if (pods.size() > 1) {
        return Error{"give at most one pod= (NAME with one namespace=, or NAMESPACE/NAME)"};
    }
    if (!pods.empty()) f.scope.pod = pods.front();
    if (!f.scope.pod.empty() && f.scope.pod.find('/') == std::string::npos && f.scope.namespaces.size() != 1) {
        return Error{"pod=NAME needs exactly one namespace= (or write pod=NAMESPACE/NAME)"};
    }
    for (const auto& r : values("reason")) f.reasons.push_back(normalize_reason(r));
    const auto fix = values("fix");
    if (fix.size() > 1 ||
        (!fix.empty() && fix.front() != "1" && fix.front() != "0" && fix.front() != "true" && fix.front() != "false")) {
        return Error{"fix= takes 1 (drop lines carry their verified fixes) or 0"};
    }
    f.fix = !fix.empty() && (fix.front() == "1" || fix.front() == "true");
    return f;
}

class HttpFrontend {
  public:
    HttpFrontend(Shared& shared, EventHub& hub, const std::string& node, bool debug, std::ostream& err)
        : shared_(shared), hub_(hub), node_(node), debug_(debug), err_(err) {}

    void set_informer(k8s::ClusterInformer* informer) { informer_.store(informer); }
    void set_recorder(const live::ConnectionRecorder* recorder) { recorder_.store(recorder); }

    // Binds now (so that a bad address or a port in use fails at start); serves from a thread.
    Result<bool> start(const ListenAddress& addr, size_t max_clients) {
        // Every /events stream holds a worker for its lifetime: leave room for metrics and probes.
        server_.new_task_queue = [n = max_clients + 4] { return new httplib::ThreadPool(n); };
        server_.set_write_timeout(std::chrono::seconds(5));
        server_.set_read_timeout(std::chrono::seconds(5));
        server_.set_keep_alive_max_count(100);
        routes();
        port_ = addr.port == 0 ? server_.bind_to_any_port(addr.host)
                               : (server_.bind_to_port(addr.host, addr.port) ? addr.port : -1);
        if (port_ < 0) {
            return Error{
                fmt::format("cannot listen on {}:{}: {} (is another process using the port? pick one with "
                            "--listen)",
                            addr.host, addr.port, std::strerror(errno))};
        }
        thread_ = std::thread([this] { server_.listen_after_bind(); });
        return true;
    }
    int port() const { return port_; }

    void stop() {
        hub_.close_all();
        server_.stop();
        if (thread_.joinable()) thread_.join();
    }
    ~HttpFrontend() { stop(); }

  private:
    void routes() {
        server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_content(render_metrics(shared_, hub_, informer_.load(), node_, recorder_.load()),
                            "text/plain; version=0.0.4; charset=utf-8");
        });
        server_.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
            // Alive while the capture loop turns (it wakes at least every 100 ms), or before it starts.
            const int64_t beat = shared_.heartbeat_ns.load();
            if (beat != 0 && now_ns() - beat > int64_t{30} * 1000000000) {
                res.status = 503;
                res.set_content("the capture loop has not run for 30 s\n", "text/plain");
                return;
            }
            res.set_content("ok\n", "text/plain");
        });
        server_.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
            if (shared_.ready.load()) {
                res.set_content("ready\n", "text/plain");
                return;
            }
            std::lock_guard lock(shared_.mu);
            res.status = 503;
            res.set_content("not ready: " + shared_.not_ready + "\n", "text/plain");
        });
        server_.Get("/events", [this](const httplib::Request& req, httplib::Response& res) { events(req, res); });
        server_.Get("/flows", [this](const httplib::Request& req, httplib::Response& res) { flows(req, res); });
        server_.Get("/", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(
                "netpol-trace agent\n"
                "  /metrics  Prometheus metrics\n"
                "  /events   NDJSON stream of dropped flows (?namespace=NS&pod=NAME|NS/NAME&reason=REASON)\n"
                "  /flows    NDJSON of the working connections (?namespace=NS&pod=NAME|NS/NAME&since=24h)\n"
                "  /healthz  liveness\n"
                "  /readyz   readiness: capture attached and cluster state synced\n",
                "text/plain");
        });
    }

    void events(const httplib::Request& req, httplib::Response& res) {
        auto filter = parse_filter(req);
        if (!filter) {
            res.status = 400;
            res.set_content(filter.error().message + "\n", "text/plain");
            return;
        }
        auto sub = hub_.subscribe(std::move(*filter));
        if (!sub) {
            res.status = 503;
            res.set_content("too many /events streams open on this agent (see --max-clients)\n", "text/plain");
            return;
        }
        if (debug_) log(fmt::format("/events stream opened by {} ({})", req.remote_addr, req.target));
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Netpol-Trace-Node", node_);
        auto idle_since = std::make_shared<Clock::time_point>(Clock::now());
        res.set_chunked_content_provider(
            "application/x-ndjson",
            [sub, idle_since](size_t, httplib::DataSink& sink) {
                auto lines = sub->take(std::chrono::milliseconds(500));
                for (const auto& line : lines)
                    if (!sink.write(line.data(), line.size())) return false;
                if (!lines.empty()) {
                    *idle_since = Clock::now();
                } else if (sub->cut_off()) {
                    return false;  // fell behind: end the connection without the terminating chunk
                } else if (sub->closed()) {
                    sink.done();
                    return true;
                } else if (Clock::now() - *idle_since >= std::chrono::seconds(30)) {
                    // A blank line after 30 s of silence finds dead connections and keeps proxies open.
                    if (!sink.write("\n", 1)) return false;
                    *idle_since = Clock::now();
                }
                return sink.is_writable();
            },
            [this, sub](bool) {
                hub_.unsubscribe(sub);
                if (debug_) log("/events stream closed");
            });
    }

    void flows(const httplib::Request& req, httplib::Response& res) {
        const auto* recorder = recorder_.load();
        if (!recorder) {
            res.status = 404;
            res.set_content(shared_.ready.load() ? "this agent does not record connections (--no-flows)\n"
                                                 : "not ready: the connection recorder is not attached yet\n",
                            "text/plain");
            return;
        }
        auto filter = parse_flows_query(
            [&](const char* key) {
                std::vector<std::string> out;
                for (size_t i = 0, n = req.get_param_value_count(key); i < n; ++i)
                    out.push_back(req.get_param_value(key, i));
                return out;
            },
            std::chrono::system_clock::now());
        if (!filter) {
            res.status = 400;
            res.set_content(filter.error().message + "\n", "text/plain");
            return;
        }
        std::string body;
        for (const auto& c : recorder->select(*filter)) {
            body += connection_json(c);
            body += '\n';
        }
        res.set_header("X-Netpol-Trace-Node", node_);
        res.set_content(std::move(body), "application/x-ndjson");
    }

    void log(const std::string& msg) {
        std::lock_guard lock(log_mu_);
        err_ << "netpol-trace agent: " << msg << '\n';
        err_.flush();
    }

    Shared& shared_;
    EventHub& hub_;
    std::string node_;
    bool debug_;
    std::ostream& err_;
    std::mutex log_mu_;
    std::atomic<k8s::ClusterInformer*> informer_{nullptr};
    std::atomic<const live::ConnectionRecorder*> recorder_{nullptr};
    httplib::Server server_;
    std::thread thread_;
    int port_ = -1;
};

void set_not_ready(Shared& shared, std::string why) {
    std::lock_guard lock(shared.mu);
    shared.not_ready = std::move(why);
}

// Sends a flow's line to the /events streams: "drop" (first seen), "resumed", or "update" (its count grew;
// at most every 5 s, so that remote summaries have counts).
// Streams that asked (fix=1) get a new flow's line with its verified fixes, computed once for all of them.
void publish(EventHub& hub, live::TrackedFlow& flow, const char* event, const ClusterState* state) {
    flow.published = flow.record.count;
    if (hub.subscribers() == 0) return;  // serializing costs more than the rest of a new flow
    std::string line = drop_json(flow.record, event).dump(-1, ' ', false, Json::error_handler_t::replace);
    line += '\n';
    std::optional<std::string> fix_line;
    if (state && flow.record.attributed && std::string_view(event) != "update" && hub.wants_fixes(flow.record)) {
        DropRecord with_fixes = flow.record;
        add_fixes(*state, with_fixes.explanation);
        fix_line = drop_json(with_fixes, event).dump(-1, ' ', false, Json::error_handler_t::replace) + '\n';
    }
    hub.publish(flow.record, line, fix_line ? &*fix_line : nullptr);
}

// Adds a flow's drops since it was last metered (shared.mu held).
void meter_flow(Shared& shared, live::TrackedFlow& f) {
    if (f.record.count <= f.metered) return;
    shared.metrics.add(f.record, f.record.count - f.metered);
    f.metered = f.record.count;
}

// Every flow's drops since the last call (once a second, after the counts are read from the kernel).
void meter(Shared& shared, live::FlowTracker& tracker) {
    std::lock_guard lock(shared.mu);
    for (auto& f : tracker.flows()) meter_flow(shared, f);
}

}  // namespace

int run_agent(const AgentOptions& o, std::ostream& err) {
    if (!o.reasons.empty() && o.all_reasons) {
        err << "netpol-trace agent: --reasons and --all-reasons exclude each other\n";
        return 2;
    }
    const auto listen = parse_listen_address(o.listen);
    if (!listen) {
        err << "netpol-trace agent: " << listen.error().message << '\n';
        return 2;
    }
    const ListenAddress& addr = *listen;
    const std::string node = o.node.empty() ? live::default_node_name() : o.node;
    const auto max_age = parse_duration(o.connection_max_age);
    if (!max_age || max_age->count() == 0) {
        err << fmt::format(
            "netpol-trace agent: --connection-max-age {:?}: expected a duration such as 90s, 15m, 24h "
            "or 7d\n",
            o.connection_max_age);
        return 2;
    }
    std::optional<FlowsJournal> journal;
    if (!o.flows_journal.empty()) {
        if (o.no_flows) {
            err << "netpol-trace agent: --flows-journal and --no-flows exclude each other\n";
            return 2;
        }
        auto opened = FlowsJournal::open(o.flows_journal, uint64_t{o.flows_journal_mib} << 20);
        if (!opened) {
            err << "netpol-trace agent: " << opened.error().message << '\n';
            return 2;
        }
        journal = std::move(*opened);
    }

    // A long-running process: glibc's dynamic thresholds would otherwise keep the large temporary buffers of
    // the BPF load and the first list (tens of MiB) as free heap that is never returned to the node.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);

    // Before any thread starts (HTTP workers, informers): SIGTERM must reach only this descriptor.
    live::SignalWatch signals;
    Shared shared;
    shared.metrics = DropMetrics(o.max_pod_series);
    EventHub hub(o.max_clients);
    // Declared before the HTTP frontend, so that they outlive the handlers reading them.
    std::unique_ptr<k8s::ClusterInformer> informer;
    std::unique_ptr<live::ConnectionRecorder> recorder;
    HttpFrontend http(shared, hub, node, o.debug, err);
    if (auto started = http.start(addr, o.max_clients); !started) {
        err << "netpol-trace agent: " << started.error().message << '\n';
        return 1;
    }
    err << fmt::format("netpol-trace agent: serving http://{}:{} on node {}\n", IpAddr::bracket_host(addr.host),
                       http.port(), node);

    std::shared_ptr<const ClusterState> state;
    if (!o.state_files.empty()) {
        auto objects = load_state_files(o.state_files);
        if (!objects) {
            err << "netpol-trace agent: " << objects.error().message << '\n';
            return 2;
        }
        state = ClusterState::build(std::move(*objects));
    } else if (!o.no_kubernetes) {
        auto client = live::connect_api(o.kubeconfig, o.context);
        if (!client) {
            err << "netpol-trace agent: " << client.error().message
                << " (run it with a service account, pass --kubeconfig, or --no-kubernetes)\n";
            return 2;
        }
        k8s::InformerOptions iopts;
        iopts.log = [&err](std::string_view msg) { err << "netpol-trace agent: " << msg << '\n'; };
        informer = std::make_unique<k8s::ClusterInformer>(std::move(*client), iopts);
        informer->start();
        http.set_informer(informer.get());
        set_not_ready(shared, "waiting for the first list of the cluster state from the Kubernetes API");
        // The agent waits as long as it takes (a DaemonSet pod restarting would not help), unless the API
        // refuses the credentials or the permissions for good.
        auto last_log = Clock::now();
        while (!state) {
            auto synced = informer->wait_synced(std::chrono::milliseconds(250));
            if (synced) {
                state = *synced;
                break;
            }
            if (auto fatal = informer->permanent_failure()) {
                err << "netpol-trace agent: " << *fatal << '\n';
                return 2;
            }
            if (Clock::now() - last_log >= std::chrono::seconds(30)) {
                err << "netpol-trace agent: still waiting for the cluster state: " << synced.error().message << '\n';
                last_log = Clock::now();
            }
            if (signals.received()) return 0;
        }
    }

    capture::CaptureOptions copts;
    copts.reasons = live::split_list(o.reasons);
    copts.all_reasons = o.all_reasons;
    copts.debug = o.debug && std::getenv("NPT_LIBBPF_DEBUG") != nullptr;
    copts.ip_filter = false;
    copts.quiet_gap_ns = static_cast<uint64_t>(o.quiet_gap * 1e9);
    set_not_ready(shared, "attaching the kernel capture");
    auto opened_capture = capture::DropCapture::open(copts);
    if (!opened_capture) {
        err << "netpol-trace agent: " << opened_capture.error().message << '\n';
        return 1;
    }
    auto cap = std::move(*opened_capture);
    if (!o.no_flows) {
        live::RecorderOptions ropts;
        ropts.node = node;
        ropts.limits.max_entries = o.max_connections;
        ropts.limits.max_age = *max_age;
        auto opened = live::ConnectionRecorder::open(ropts);
        if (!opened) {
            err << "netpol-trace agent: " << opened.error().message << '\n';
            return 1;
        }
        recorder = std::move(*opened);
        recorder->set_state(state);
        if (journal) {
            auto loaded = journal->load();
            const size_t n = loaded.connections.size();
            recorder->restore(std::move(loaded.connections));
            err << fmt::format(
                "netpol-trace agent: {} connections read back from {}{}\n", n, journal->path(),
                loaded.bad_lines ? fmt::format(" ({} unreadable lines skipped)", loaded.bad_lines) : std::string());
            (void)recorder->take_changed();  // in the journal already
        }
        const auto st = recorder->stats();
        err << fmt::format("netpol-trace agent: recording connections: TCP through {}; {}\n", st.tcp_attach_mode,
                           st.conntrack_not_visible.empty()
                               ? std::string("UDP and SCTP through conntrack events")
                               : st.conntrack_not_visible + " (deploy/components/node-network grants it)");
        http.set_recorder(recorder.get());
    }
    {
        std::lock_guard lock(shared.mu);
        shared.attach_mode = cap->attach_mode();
        shared.not_ready.clear();
    }
    shared.heartbeat_ns = now_ns();
    shared.ready = true;
    err << fmt::format(
        "netpol-trace agent: attached {} ({}); reasons: {}; {}\n", cap->attach_mode(), cap->program_name(),
        fmt::join(cap->selected_reasons(), ","),
        state ? fmt::format("cluster state: {} pods, {} policies", state->pods().size(), state->policies().size())
              : std::string("no cluster state: drops are served without policy attribution"));
    malloc_trim(0);  // what loading the BPF objects and the first list freed
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << ' ' << http.port() << '\n';

    live::FlowTracker tracker(live::PodScope{}, node, state);
    (void)live::read_fexit_rule_comments(tracker, *cap);
    auto last_refresh = Clock::now();
    auto last_update = last_refresh;
    auto last_trim = last_refresh;
    auto last_journal = last_refresh;
    uint64_t lost_seen = 0;
    const auto write_journal = [&] {
        if (!journal || !recorder) return;
        if (auto w = journal->append(recorder->take_changed(), [&] { return recorder->all(); }); !w)
            err << "netpol-trace agent: " << w.error().message << '\n';
    };
    while (!signals.received()) {
        const int n = cap->poll(100, [&](const capture::DropEvent& ev) {
            const auto report = tracker.on_event(ev, *cap);
            if (!report.event) return;
            publish(hub, *report.flow, report.event, tracker.state().get());
            std::lock_guard lock(shared.mu);
            if (std::string_view(report.event) == "drop") ++shared.flows_reported;
            meter_flow(shared, *report.flow);
        });
        if (n < 0 && n != -EINTR) {
            err << fmt::format("netpol-trace agent: reading the ring buffer failed: {}\n", std::strerror(-n));
            return 1;
        }
        shared.heartbeat_ns = now_ns();
        if (informer) {
            auto latest = informer->snapshot();
            if (latest && latest != tracker.state()) {
                tracker.set_state(latest);
                if (recorder) recorder->set_state(latest);
            }
        }
        if (recorder) recorder->drain_conntrack();
        const auto now = Clock::now();
        if (now - last_refresh >= std::chrono::seconds(1)) {
            last_refresh = now;
            if (recorder) recorder->poll();
            if (now - last_journal >= std::chrono::seconds(10)) {
                last_journal = now;
                write_journal();
            }
            // Flows whose event a full ring buffer lost are still in the kernel's map: publish them from there.
            const auto st = cap->stats();
            const auto recovered = tracker.refresh_counts(*cap, st.lost_events > lost_seen);
            lost_seen = st.lost_events;
            for (const auto& r : recovered) publish(hub, *r.flow, "drop", tracker.state().get());
            meter(shared, tracker);
            const auto idle_before =
                std::chrono::system_clock::now() - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                                       std::chrono::duration<double>(o.flow_idle));
            if (now - last_update >= std::chrono::seconds(5)) {
                last_update = now;
                for (auto& f : tracker.flows())
                    if (f.record.count > f.published) publish(hub, f, "update", nullptr);
            }
            const size_t forgotten = tracker.expire(idle_before, o.max_flows);
            if (now - last_trim >= std::chrono::minutes(1)) {
                last_trim = now;
                malloc_trim(0);  // snapshots replaced, flows forgotten
            }
            if (forgotten && o.debug)
                err << fmt::format("netpol-trace agent: forgot {} idle flow{} ({} remembered)\n", forgotten,
                                   forgotten == 1 ? "" : "s", tracker.flows().size());
            std::lock_guard lock(shared.mu);
            shared.capture_stats = st;
            shared.flows_forgotten += forgotten;
            shared.flows_reported += recovered.size();
        }
    }
    err << "netpol-trace agent: stopping\n";
    shared.ready = false;
    http.stop();
    if (recorder) {
        recorder->poll();
        write_journal();
    }
    return 0;
}

}  // namespace npt::agent

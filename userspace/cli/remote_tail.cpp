#include "cli/remote_tail.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <ostream>
#include <fstream>
#include <set>
#include <thread>
#include <unistd.h>

#include "k8s/api_resources.hpp"
#include "k8s/cancellation.hpp"
#include "output/drop_text.hpp"

namespace npt::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Line {
    std::string agent;
    std::string text;
};

// Lines from every agent's stream, in arrival order.
class Inbox {
  public:
    void push(Line line) {
        std::lock_guard lock(mu_);
        if (lines_.size() >= kMax) {
            ++overflowed_;
            return;
        }
        lines_.push_back(std::move(line));
        cv_.notify_one();
    }
    std::deque<Line> take(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, timeout, [&] { return !lines_.empty(); });
        std::deque<Line> out;
        out.swap(lines_);
        return out;
    }
    uint64_t overflowed() {
        std::lock_guard lock(mu_);
        return overflowed_;
    }

  private:
    static constexpr size_t kMax = 100000;  // lines waiting for the terminal; more are counted, not kept
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Line> lines_;
    uint64_t overflowed_ = 0;
};

// One agent's /events stream, reconnected with backoff until cancelled.
class AgentStream {
  public:
    AgentStream(std::shared_ptr<k8s::ApiClient> client, AgentPod agent, std::string path, Inbox& inbox,
                std::ostream& err, std::mutex& err_mu, bool debug)
        : agent_(std::move(agent)) {
        thread_ = std::thread([this, client = std::move(client), path = std::move(path), &inbox, &err, &err_mu, debug] {
            auto backoff = std::chrono::milliseconds(500);
            while (!cancel_.cancelled()) {
                const auto started = Clock::now();
                auto r = client->stream_lines(
                    path,
                    [&](std::string_view line) {
                        if (!line.empty() && line.find_first_not_of(" \t\r") != std::string_view::npos)
                            inbox.push({agent_.name, std::string(line)});
                        return true;
                    },
                    &cancel_);
                if (cancel_.cancelled()) break;
                if (Clock::now() - started > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(500);
                {
                    std::lock_guard lock(err_mu);
                    if (!r.ok() || debug)
                        err << fmt::format("netpol-trace: the stream from agent {} (node {}) ended{}; reconnecting\n",
                                           agent_.name, agent_.node,
                                           r.ok() ? "" : ": " + client->error_for(r, "stream /events").message);
                }
                if (!cancel_.sleep_for(backoff)) break;
                backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
            }
        });
    }
    ~AgentStream() {
        cancel_.cancel();
        if (thread_.joinable()) thread_.join();
    }
    const AgentPod& agent() const { return agent_; }

  private:
    AgentPod agent_;
    k8s::Cancellation cancel_;
    std::thread thread_;
};

// Lists the agent pods every --agent-refresh seconds in a thread of its own, so that a slow API server never
// holds up the lines of the agents already streaming.
class AgentLister {
  public:
    AgentLister(std::shared_ptr<k8s::ApiClient> client, const TailOptions& o, std::ostream& err, std::mutex& err_mu) {
        thread_ = std::thread([this, client = std::move(client), &o, &err, &err_mu] {
            const auto interval =
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::duration<double>(o.agent_refresh));
            while (cancel_.sleep_for(interval)) {
                auto agents = list_agents(*client, o, &cancel_);
                if (cancel_.cancelled()) break;
                if (!agents) {
                    std::lock_guard lock(err_mu);
                    err << "netpol-trace: " << agents.error().message << " (keeping the current streams)\n";
                    continue;
                }
                std::lock_guard lock(mu_);
                latest_ = std::move(*agents);
            }
        });
    }
    ~AgentLister() {
        cancel_.cancel();
        if (thread_.joinable()) thread_.join();
    }
    // The newest list not taken yet.
    std::optional<std::vector<AgentPod>> take() {
        std::lock_guard lock(mu_);
        auto out = std::move(latest_);
        latest_.reset();
        return out;
    }

  private:
    k8s::Cancellation cancel_;
    std::mutex mu_;
    std::optional<std::vector<AgentPod>> latest_;
    std::thread thread_;
};

struct SeenFlow {
    Json last;  // the latest line of the flow
};

}  // namespace

std::string agent_events_path(const TailOptions& o, const AgentPod& agent) {
    std::vector<std::string> query;
    for (const auto& ns : o.namespaces) query.push_back("namespace=" + k8s::url_escape(ns));
    if (!o.pod.empty()) query.push_back("pod=" + k8s::url_escape(o.pod));
    if (!o.reasons.empty()) query.push_back("reason=" + k8s::url_escape(o.reasons));
    if (o.fix) query.push_back("fix=1");
    return fmt::format("/api/v1/namespaces/{}/pods/{}:{}/proxy/events{}{}", k8s::url_escape(o.agent_namespace),
                       k8s::url_escape(agent.name), o.agent_port, query.empty() ? "" : "?", fmt::join(query, "&"));
}

int run_remote_tail(const TailOptions& o, std::shared_ptr<k8s::ApiClient> client, std::vector<AgentPod> agents,
                    live::SignalWatch& signals, std::ostream& out, std::ostream& err) {
    std::mutex err_mu;
    Inbox inbox;
    std::map<std::string, std::unique_ptr<AgentStream>> streams;  // by pod name
    auto follow = [&](const std::vector<AgentPod>& now) {
        for (auto it = streams.begin(); it != streams.end();) {
            const bool present =
                std::any_of(now.begin(), now.end(), [&](const AgentPod& a) { return a == it->second->agent(); });
            if (present) {
                ++it;
                continue;
            }
            {
                std::lock_guard lock(err_mu);
                err << fmt::format("netpol-trace: agent {} (node {}) is gone\n", it->second->agent().name,
                                   it->second->agent().node);
            }
            it = streams.erase(it);
        }
        for (const auto& a : now) {
            if (streams.count(a.name)) continue;
            {
                std::lock_guard lock(err_mu);
                err << fmt::format("netpol-trace: streaming drops from agent {}/{} on node {}\n", o.agent_namespace,
                                   a.name, a.node);
            }
            streams.emplace(
                a.name, std::make_unique<AgentStream>(client, a, agent_events_path(o, a), inbox, err, err_mu, o.debug));
        }
    };
    follow(agents);
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << '\n';

    AgentLister lister(client, o, err, err_mu);
    std::map<std::string, SeenFlow> flows;  // node|from|to|protocol|port|reason|enforcement
    uint64_t reported = 0;
    const auto start = Clock::now();
    bool stop = false;
    while (!stop) {
        for (auto& line : inbox.take(std::chrono::milliseconds(100))) {
            if (o.count && reported >= o.count) break;
            Json j = Json::parse(line.text, nullptr, false);
            if (j.is_discarded() || !j.is_object()) {
                std::lock_guard lock(err_mu);
                err << fmt::format("netpol-trace: agent {} sent a line that is not JSON; skipped\n", line.agent);
                continue;
            }
            const std::string event = json_string(j, "event");
            if (event != "drop" && event != "resumed" && event != "update") continue;
            const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}", json_string(j, "node"), json_string(j, "from"),
                                                json_string(j, "to"), json_string(j, "protocol"), j.value("port", 0),
                                                json_string(j, "reason"), json_string(j, "enforcement"));
            flows[key].last = j;
            if (event == "update") continue;  // a newer count, for the summary
            if (event == "drop") ++reported;
            if (o.output == "json") {
                out << j.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
            } else if (auto text = drop_text_from_json(j)) {
                write_drop_text(out, *text, event == "drop");
            } else {
                std::lock_guard lock(err_mu);
                err << fmt::format("netpol-trace: agent {}: {}; skipped\n", line.agent, text.error().message);
            }
        }
        out.flush();
        const auto now = Clock::now();
        if (auto latest = lister.take()) follow(*latest);
        if (signals.received()) stop = true;
        if (o.duration > 0 && now - start >= std::chrono::duration<double>(o.duration)) stop = true;
        if (o.count && reported >= o.count) stop = true;
    }
    streams.clear();
    if (o.output == "json") {
        for (auto& [key, f] : flows) {
            f.last["event"] = "summary";
            out << f.last.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
        }
    } else {
        uint64_t drops = 0;
        std::set<std::string> nodes;
        for (const auto& [key, f] : flows) {
            drops += f.last.value("count", uint64_t{0});
            nodes.insert(json_string(f.last, "node"));
        }
        out << fmt::format(
            "\nsummary: {} dropped flow{} on {} node{}, {} drop{} (counts as the agents last "
            "reported them, every 5 s)\n",
            flows.size(), flows.size() == 1 ? "" : "s", nodes.size(), nodes.size() == 1 ? "" : "s", drops,
            drops == 1 ? "" : "s");
        for (const auto& [key, f] : flows)
            if (auto d = drop_text_from_json(f.last)) write_drop_summary_row(out, *d);
    }
    out.flush();
    if (auto lost = inbox.overflowed())
        err << fmt::format("netpol-trace: {} lines were dropped because the terminal could not keep up\n", lost);
    return 0;
}

}  // namespace npt::cli

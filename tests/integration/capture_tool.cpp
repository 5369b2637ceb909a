// npt_capture_tool: attaches the drop capture and prints one line per event, then the counters. A driver for
// scripts/bench-capture-cost and for poking at the capture by hand; not the product CLI.
//
//   npt_capture_tool [--mode tp_btf|raw_tp|tracepoint] [--reasons A,B|all] [--watch IP,IP] [--seconds N]
//                    [--max-flows N] [--quiet-gap-ms N] [--ready-file PATH] [--no-events] [--enable-stats]
//                    [--no-rule-attribution]
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "drop_capture.hpp"

namespace {

volatile std::sig_atomic_t g_stop = 0;  // written by the signal handler only

void on_signal(int) {
    g_stop = 1;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string item;
    while (std::getline(in, item, ',')) {
        if (!item.empty()) {
            out.push_back(item);
        }
    }
    return out;
}

struct ProgStats {
    uint64_t run_cnt = 0;
    uint64_t run_time_ns = 0;
};

ProgStats prog_stats(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    ProgStats s;
    if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
        s.run_cnt = info.run_cnt;
        s.run_time_ns = info.run_time_ns;
    }
    return s;
}

uint32_t prog_id(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    return fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

void usage() {
    std::cerr << "usage: npt_capture_tool [--mode tp_btf|raw_tp|tracepoint] [--reasons A,B|all] [--watch IP,IP]\n"
                 "       [--seconds N] [--max-flows N] [--quiet-gap-ms N] [--ready-file PATH] [--no-events]\n"
                 "       [--enable-stats] [--no-rule-attribution] [--debug]\n";
}

}  // namespace

int main(int argc, char** argv) {
    using namespace npt::capture;
    CaptureOptions opts;
    double seconds = 0;
    std::string ready_file;
    bool print_events = true;
    bool enable_stats = false;
    std::vector<npt::IpAddr> watch;

    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--mode") {
            const auto m = parse_attach_mode(value());
            if (!m) {
                usage();
                return 2;
            }
            opts.force_mode = m;
        } else if (arg == "--reasons") {
            opts.reasons = split(value());
        } else if (arg == "--watch") {
            opts.ip_filter = true;
            for (const auto& s : split(value())) {
                const auto ip = npt::IpAddr::parse(s);
                if (!ip) {
                    std::cerr << "npt_capture_tool: bad IP '" << s << "'\n";
                    return 2;
                }
                watch.push_back(*ip);
            }
        } else if (arg == "--seconds") {
            seconds = std::atof(value().c_str());
        } else if (arg == "--max-flows") {
            opts.max_flows = static_cast<uint32_t>(std::strtoul(value().c_str(), nullptr, 10));
        } else if (arg == "--quiet-gap-ms") {
            opts.quiet_gap_ns = std::strtoull(value().c_str(), nullptr, 10) * 1'000'000ULL;
        } else if (arg == "--ready-file") {
            ready_file = value();
        } else if (arg == "--no-events") {
            print_events = false;
        } else if (arg == "--enable-stats") {
            enable_stats = true;
        } else if (arg == "--no-rule-attribution") {
            opts.rule_attribution = false;
        } else if (arg == "--debug") {
            opts.debug = true;
        } else {
            usage();
            return 2;
        }
    }

    auto opened = DropCapture::open(opts);
    if (!opened) {
        std::cerr << "netpol-trace: " << opened.error().message << "\n";
        return 1;
    }
    auto capture = std::move(*opened);
    if (!watch.empty()) {
        if (auto set = capture->set_watched_ips(watch); !set) {
            std::cerr << "netpol-trace: " << set.error().message << "\n";
            return 1;
        }
    }
    // BPF_ENABLE_STATS: run_time_ns/run_cnt are collected while this fd is open.
    int stats_fd = -1;
    if (enable_stats) {
        stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
        if (stats_fd < 0) {
            std::cerr << "netpol-trace: BPF_ENABLE_STATS failed: " << std::strerror(errno) << "\n";
            return 1;
        }
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);

    std::cout << "attached mode=" << capture->attach_mode() << " program=" << capture->program_name()
              << " prog_id=" << prog_id(capture->program_fd()) << " hz=" << capture->features().hz << " rules=\""
              << capture->rule_attribution_status() << "\"" << std::endl;
    if (!ready_file.empty()) {
        std::ofstream(ready_file) << getpid() << "\n";
    }

    const ProgStats before = prog_stats(capture->program_fd());
    const auto start = std::chrono::steady_clock::now();
    uint64_t events = 0;
    while (!g_stop) {
        if (seconds > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= seconds) {
            break;
        }
        capture->poll(100, [&](const DropEvent& e) {
            ++events;
            if (!print_events) {
                return;
            }
            std::cout << (e.kind == EventKind::kNewFlow ? "new " : "resumed ") << e.protocol_name << " "
                      << (e.src ? e.src->str() : "-") << ":" << e.sport << " -> " << (e.dst ? e.dst->str() : "-") << ":"
                      << e.dport << " reason=" << e.reason << " enforcement=" << e.enforcement
                      << " backend=" << e.backend << " ct=" << e.ct_state
                      << (e.original_dst ? " original_dst=" + e.original_dst->to_string() : std::string())
                      << " netns=" << e.netns_inum << " ifindex=" << e.ifindex << " iif=" << e.ingress_ifindex
                      << " location=" << e.location_symbol << " count=" << e.count;
            if (e.rule) {
                std::cout << " rule=" << e.rule->table << "/" << e.rule->chain << "/"
                          << (e.rule->handle ? std::to_string(*e.rule->handle) : "-");
            }
            std::cout << std::endl;
        });
    }
    const ProgStats after = prog_stats(capture->program_fd());
    const auto s = capture->stats();
    std::cout << "stats events_read=" << events << " events=" << s.events << " lost_events=" << s.lost_events
              << " flows_inserted=" << s.flows_inserted << " flows_tracked=" << s.flows_tracked
              << " lru_evictions=" << s.lru_evictions << " stack_errors=" << s.stack_errors
              << " ip_filtered=" << s.ip_filtered << std::endl;
    if (enable_stats) {
        const uint64_t cnt = after.run_cnt - before.run_cnt;
        const uint64_t ns = after.run_time_ns - before.run_time_ns;
        std::cout << "bpf run_cnt=" << cnt << " run_time_ns=" << ns
                  << " ns_per_run=" << (cnt ? static_cast<double>(ns) / static_cast<double>(cnt) : 0.0) << std::endl;
        ::close(stats_fd);
    }
    return 0;
}

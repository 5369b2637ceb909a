// `explain --probes FILE -o json` as scripts and CI gates run it: the binary, on one core, over a 10,000-pod
// / 1,000-policy state file and N probes between random pods, next to the bare engine's evaluations of the
// same probes in this process, in the same run. The binary's figure is its CPU time with the probes minus its
// CPU time with an empty probes file (loading the state), in interleaved rounds; medians are printed. No
// assertions: the figures are for people.
//
// Usage: probes_bench [--quick] [--binary PATH] [N]   (--binary: another build, e.g. the previous one)
#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "cluster_generator.hpp"
#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "state/cluster_state.hpp"
#include "state_file.hpp"

#ifndef NPT_BINARY
#error "NPT_BINARY must name the netpol-trace binary"
#endif

namespace {

using Clock = std::chrono::steady_clock;

double children_cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Cost {
    double cpu = 0;
    double wall = 0;
};

Cost run(const std::string& cmd) {
    const double cpu0 = children_cpu_seconds();
    const auto t0 = Clock::now();
    const int rc = std::system(cmd.c_str());
    Cost c{children_cpu_seconds() - cpu0, std::chrono::duration<double>(Clock::now() - t0).count()};
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1) {
        fmt::print(stderr, "probes_bench: `{}` failed ({})\n", cmd, rc);
        std::exit(1);
    }
    return c;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Probe {
    uint32_t src = 0, dst = 0;
    uint16_t port = 0;
    npt::Protocol protocol = npt::Protocol::TCP;
};

}  // namespace

int main(int argc, char** argv) {
    bool quick = false;
    std::string binary = NPT_BINARY;
    size_t n = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--quick")
            quick = true;
        else if (arg == "--binary" && i + 1 < argc)
            binary = argv[++i];
        else
            n = std::stoul(arg);
    }
    if (n == 0) n = quick ? 50'000 : 200'000;
    // One core for the bench and the binary it runs (inherited): the figure is per core.
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    const bool pinned = sched_setaffinity(0, sizeof one, &one) == 0;

    npt::bench::ClusterShape shape;  // 100 namespaces, 10,000 pods, 1,000 policies
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("npt-probes-bench-{}", ::getpid());
    std::filesystem::create_directories(dir);
    auto objects = npt::bench::generate_cluster(shape);
    const std::string state_file = npt::bench::write_state(objects, dir / "state.json");

    // Probes between random pods on a mix of ports, as engine_bench makes them: a realistic share of allowed
    // and denied, and of the ways a denial misses.
    std::mt19937_64 rng(7);
    const uint16_t ports[] = {8080, 9090, 5432, 53, 8050};
    std::vector<Probe> probes;
    {
        std::ofstream out(dir / "probes.jsonl");
        for (size_t i = 0; i < n; ++i) {
            Probe p{static_cast<uint32_t>(rng() % objects.pods.size()),
                    static_cast<uint32_t>(rng() % objects.pods.size()), ports[rng() % 5], npt::Protocol::TCP};
            if (p.port == 53) p.protocol = npt::Protocol::UDP;
            const auto& a = objects.pods[p.src];
            const auto& b = objects.pods[p.dst];
            out << fmt::format(R"({{"from": "{}/{}", "to": "{}/{}", "port": {}, "protocol": "{}"}})"
                               "\n",
                               a.ns, a.name, b.ns, b.name, p.port, npt::protocol_name(p.protocol));
            probes.push_back(p);
        }
        std::ofstream(dir / "empty.jsonl");
    }
    std::vector<npt::IpAddr> pod_ips;
    for (const auto& p : objects.pods) pod_ips.push_back(p.ips[0]);
    auto state = npt::ClusterState::build(std::move(objects));

    // The bare engine: the same probes, already resolved, evaluated in this process.
    std::vector<npt::Flow> flows;
    for (const auto& p : probes) {
        npt::Flow f;
        f.src = npt::resolve_endpoint(*state, pod_ips[p.src]);
        f.dst = npt::resolve_endpoint(*state, pod_ips[p.dst]);
        f.port = p.port;
        f.protocol = p.protocol;
        flows.push_back(f);
    }
    auto engine_rate = [&] {
        npt::Verdict v;
        size_t allowed = 0;
        const size_t iterations = std::max<size_t>(n, 500'000);
        const auto t0 = Clock::now();
        for (size_t i = 0; i < iterations; ++i) {
            npt::evaluate(*state, flows[i % flows.size()], v);
            allowed += v.allowed();
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        return std::pair{iterations / s, double(allowed) / iterations};
    };
    // The explanations themselves (diagnoses, hints, messages), without parsing or output.
    auto explain_rate = [&] {
        const size_t m = std::min<size_t>(n, 50'000);
        const auto t0 = Clock::now();
        size_t hints = 0;
        for (size_t i = 0; i < m; ++i) {
            const auto& f = flows[i];
            hints += npt::explain_flow(*state, f.src.ip, f.dst.ip, f.protocol, f.port, "a", "b").hints.size();
        }
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        return hints > 0 ? m / s : 0.0;
    };

    const std::string base = fmt::format("{} explain --state {} -o json --probes ", binary, state_file);
    const std::string sink = " >" + (dir / "out.jsonl").string() + " 2>/dev/null";
    std::vector<double> batch_rates, batch_wall_rates, engine_rates, explain_rates, ratios;
    double allowed_share = 0;
    const int rounds = quick ? 1 : 5;
    for (int r = 0; r < rounds; ++r) {  // interleaved: the same machine state for all figures of a round
        const Cost empty = run(base + (dir / "empty.jsonl").string() + sink);
        const Cost full = run(base + (dir / "probes.jsonl").string() + sink);
        const auto [rate, share] = engine_rate();
        allowed_share = share;
        const double batch = n / std::max(full.cpu - empty.cpu, 1e-9);
        batch_rates.push_back(batch);
        batch_wall_rates.push_back(n / std::max(full.wall - empty.wall, 1e-9));
        engine_rates.push_back(rate);
        explain_rates.push_back(explain_rate());
        ratios.push_back(rate / batch);
    }
    size_t out_lines = 0, out_bytes = std::filesystem::file_size(dir / "out.jsonl");
    {
        std::ifstream in(dir / "out.jsonl");
        for (std::string line; std::getline(in, line);) ++out_lines;
    }
    fmt::print("explain --probes, {} pods / {} policies, {} probes ({}; medians of {} interleaved rounds):\n",
               shape.pods, shape.policies, n, pinned ? "one core" : "not pinned", rounds);
    fmt::print(
        "  the binary:          {:>10.0f} probes/s of CPU ({:.2f} us each; {:.0f}/s wall), {} lines, "
        "{:.0f} bytes each\n",
        median(batch_rates), 1e6 / median(batch_rates), median(batch_wall_rates), out_lines,
        double(out_bytes) / std::max<size_t>(out_lines, 1));
    fmt::print("  explain_flow alone:  {:>10.0f} /s  (in process, no parse, no output)\n", median(explain_rates));
    fmt::print("  the bare engine:     {:>10.0f} evaluations/s ({:.0f}% allowed)\n", median(engine_rates),
               100 * allowed_share);
    fmt::print("  engine / binary:     {:>10.1f} (median of per-round ratios)\n", median(ratios));
    if (!std::getenv("NPT_BENCH_KEEP"))
        std::filesystem::remove_all(dir);  // NPT_BENCH_KEEP: keep the files to profile
    else
        fmt::print("  files kept in {}\n", dir.string());
    return 0;
}

// `netpol-trace whatif` as a GitOps gate runs it: the binary, on one core, over a 10,000-pod / 1,000-policy state
// file, a 100-policy change (a directory of manifests) and 100,000 observed connections. Prints the wall time of
// the whole command (goal: under 5 s) and, in the same interleaved runs, the time of the same command without the
// connections (loading the state and the change, and measuring the reach), so the figure for the connections
// themselves reads as a difference on this machine. No assertions: the figures are for people.
//
// Usage: whatif_bench [--quick]
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "cluster_generator.hpp"
#include "state_file.hpp"
#include "policy/manifest.hpp"

#ifndef NPT_BINARY
#error "NPT_BINARY must name the netpol-trace binary"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double run(const std::string& cmd) {
    const auto t0 = Clock::now();
    const int rc = std::system(cmd.c_str());
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1) {
        fmt::print(stderr, "whatif_bench: `{}` failed ({})\n", cmd, rc);
        std::exit(1);
    }
    return s;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    npt::bench::ClusterShape shape;  // 100 namespaces, 10,000 pods, 1,000 policies
    const size_t n_flows = 100'000, n_changed = 100;
    const auto dir = std::filesystem::temp_directory_path() / fmt::format("npt-whatif-bench-{}", ::getpid());
    std::filesystem::create_directories(dir / "change");
    const auto cluster = npt::bench::generate_cluster(shape);
    const std::string state = npt::bench::write_state(cluster, dir / "state.json");

    // The change: in 100 namespaces, the workload policy moves its http port from 8080 to 8443 (the frontends'
    // observed calls on 8080 to that workload break) and keeps the metrics port.
    size_t changed = 0;
    for (auto p : cluster.policies) {
        if (changed == n_changed) break;
        if (p.name != "policy-1") continue;
        p.ingress[0].ports = {npt::PolicyPort{npt::Protocol::TCP, 8443, "", std::nullopt},
                              npt::PolicyPort{npt::Protocol::TCP, std::nullopt, "metrics", std::nullopt}};
        std::ofstream(dir / "change" / fmt::format("{}-{}.yaml", p.ns, p.name))
            << npt::manifest_yaml(npt::network_policy_json(p));
        ++changed;
    }

    // Observed connections: frontend pods calling other pods' http and metrics ports, and DNS-like UDP.
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<size_t> pick(0, cluster.pods.size() - 1);
    {
        std::ofstream out(dir / "flows.jsonl");
        const uint16_t ports[] = {8080, 9090, 8080, 8000};
        for (size_t i = 0; i < n_flows; ++i) {
            const auto& a = cluster.pods[pick(rng)];
            const auto& b = cluster.pods[pick(rng)];
            const uint16_t port = ports[i % 4];
            out << fmt::format(
                R"({{"src":{{"ip":"{}","pod":"{}/{}"}},"dst":{{"ip":"{}","pod":"{}/{}","port":{}}},"protocol":"TCP",)"
                R"("side":"server","count":{},"last_seen":"2026-12-01T10:00:00Z","node":"{}","observed_by":"tcp_state"}})"
                "\n",
                a.ips[0].str(), a.ns, a.name, b.ips[0].str(), b.ns, b.name, port, 1 + i % 50, b.node);
        }
    }
    const std::string pin = std::system("command -v taskset >/dev/null 2>&1") == 0 ? "taskset -c 0 " : "";
    const std::string base =
        fmt::format("{}{} whatif --state {} --apply {} -o json", pin, NPT_BINARY, state, (dir / "change").string());
    const std::string with_flows = base + " --flows " + (dir / "flows.jsonl").string();
    const std::string sink = " >" + (dir / "out.json").string() + " 2>/dev/null";

    std::vector<double> full, nof;
    const int rounds = quick ? 1 : 3;
    for (int r = 0; r < rounds; ++r) {  // interleaved: the same machine state for both
        nof.push_back(run(base + sink));
        full.push_back(run(with_flows + sink));
    }
    std::ifstream in(dir / "out.json");
    const json report = json::parse(in);
    fmt::print("whatif, {} pods / {} policies, a {}-policy change, {} observed connections ({}):\n", shape.pods,
               shape.policies, changed, n_flows, pin.empty() ? "all cores" : "one core");
    fmt::print("  the command:                       {:.2f} s (median of {}; goal < 5 s)\n", median(full), rounds);
    fmt::print("  without the connections:           {:.2f} s (state, change, reach)\n", median(nof));
    fmt::print("  the connections themselves:        {:.2f} s, {:.1f} us each\n", median(full) - median(nof),
               (median(full) - median(nof)) / n_flows * 1e6);
    fmt::print("  report: {} evaluated, {} breaks, reach {} newly allowed / {} newly denied\n",
               report["observed"].get<size_t>(), report["breaks"].size(), report["newly_allowed"].get<uint64_t>(),
               report["newly_denied"].get<uint64_t>());
    std::filesystem::remove_all(dir);
    return 0;
}

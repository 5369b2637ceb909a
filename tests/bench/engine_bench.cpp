// Engine figures: probe evaluations per second on one core, single explain latency, snapshot
// build time and resident bytes per pod. Prints figures; asserts nothing (machines are noisy).
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <random>
#include <string>

#include "cluster_generator.hpp"
#include "policy/evaluator.hpp"
#include "policy/explainer.hpp"
#include "policy/fix.hpp"
#include "state/cluster_state.hpp"

using namespace npt;
using Clock = std::chrono::steady_clock;

static long rss_bytes() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * sysconf(_SC_PAGESIZE);
}

static double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// Probes between random pods on a mix of ports: a realistic share of allowed and denied.
static std::vector<Flow> random_probes(const ClusterState& state, size_t n) {
    std::mt19937_64 rng(7);
    std::vector<Flow> flows;
    const uint16_t ports[] = {8080, 9090, 5432, 53, 8050};
    for (size_t i = 0; i < n; ++i) {
        const auto a = static_cast<uint32_t>(rng() % state.pods().size());
        const auto b = static_cast<uint32_t>(rng() % state.pods().size());
        Flow f;
        f.src = resolve_endpoint(state, *state.pods()[a].ip4);
        f.dst = resolve_endpoint(state, *state.pods()[b].ip4);
        f.port = ports[rng() % 5];
        f.protocol = f.port == 53 ? Protocol::UDP : Protocol::TCP;
        flows.push_back(f);
    }
    return flows;
}

struct EvalFigure {
    double per_second = 0;
    double allowed_share = 0;
};

static EvalFigure evaluate_for(const ClusterState& state, const std::vector<Flow>& flows, size_t iterations) {
    Verdict v;
    size_t allowed = 0;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < iterations; ++i) {
        evaluate(state, flows[i % flows.size()], v);
        allowed += v.allowed();
    }
    const double s = seconds_since(t0);
    return {iterations / s, double(allowed) / iterations};
}

int main(int argc, char** argv) {
    const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
    bench::ClusterShape shape;
    auto state = ClusterState::build(bench::generate_cluster(shape));
    bench::ClusterShape tiered = shape;
    tiered.cluster_policies = 100;
    auto tiered_state = ClusterState::build(bench::generate_cluster(tiered));

    const size_t n_probes = 4096;
    const std::vector<Flow> flows = random_probes(*state, n_probes);
    const std::vector<Flow> tiered_flows = random_probes(*tiered_state, n_probes);  // same pods, same probes
    // Interleaved rounds, so that the machine's noise hits both alike; the median round's ratio is reported.
    const int rounds = quick ? 3 : 7;
    const size_t iterations = quick ? 100'000 : 500'000;
    std::vector<double> np_rates, tier_rates, ratios;
    EvalFigure np_fig, tier_fig;
    for (int r = 0; r < rounds; ++r) {
        np_fig = evaluate_for(*state, flows, iterations);
        tier_fig = evaluate_for(*tiered_state, tiered_flows, iterations);
        np_rates.push_back(np_fig.per_second);
        tier_rates.push_back(tier_fig.per_second);
        ratios.push_back(tier_fig.per_second / np_fig.per_second);
    }
    const auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    fmt::print("engine: {} pods, {} policies, {} namespaces\n", state->pods().size(), state->policies().size(),
               state->namespaces().size());
    fmt::print("probe evaluations/s (one core):   {:.0f}  ({:.0f} ns each, {:.0f}% allowed; median of {} rounds)\n",
               median(np_rates), 1e9 / median(np_rates), 100.0 * np_fig.allowed_share, rounds);
    fmt::print("  with {} ClusterNetworkPolicies:  {:.0f}  ({:.0f} ns each, {:.0f}% allowed)\n",
               tiered_state->cluster_policies().size(), median(tier_rates), 1e9 / median(tier_rates),
               100.0 * tier_fig.allowed_share);
    fmt::print("  ratio with / without (median of per-round ratios): {:.3f}\n", median(ratios));
    tiered_state.reset();

    // A full explanation (diagnosis and hints) is what `explain` and the tail pay per new flow.
    const size_t explains = quick ? 2'000 : 20'000;
    auto t0 = Clock::now();
    size_t hints = 0;
    for (size_t i = 0; i < explains; ++i) {
        const auto& f = flows[i % n_probes];
        auto e = explain_flow(*state, f.src.ip, f.dst.ip, f.protocol, f.port, "a", "b");
        hints += e.hints.size();
    }
    const double explain_s = seconds_since(t0);
    fmt::print("single explain latency:           {:.1f} us  ({} hints over {} explanations)\n",
               explain_s / explains * 1e6, hints, explains);
    // --fix on denials: candidates, each verified on a derived snapshot and measured by its reach. The figure is
    // what `explain --fix` adds to a denied explanation.
    {
        const size_t fix_runs = quick ? 5 : 20;
        size_t done = 0, fixes = 0;
        double worst = 0;
        t0 = Clock::now();
        for (size_t i = 0; i < flows.size() && done < fix_runs; ++i) {
            const auto& f = flows[i];
            auto e = explain_flow(*state, f.src.ip, f.dst.ip, f.protocol, f.port, "a", "b");
            if (e.allowed()) continue;
            const auto one = Clock::now();
            add_fixes(*state, e);
            worst = std::max(worst, seconds_since(one));
            fixes += e.fixes ? e.fixes->size() : 0;
            ++done;
        }
        const double fix_s = seconds_since(t0);
        fmt::print(
            "--fix on one denial:              {:.1f} ms on average, {:.1f} ms the slowest ({} denials, {} fixes)\n",
            fix_s / std::max<size_t>(done, 1) * 1e3, worst * 1e3, done, fixes);
    }

    state.reset();

    // Snapshot build and memory at 100,000 pods (objects generated first, then indexed).
    bench::ClusterShape big;
    big.pods = quick ? 20'000 : 100'000;
    big.namespaces = 500;
    malloc_trim(0);
    const long rss_before = rss_bytes();
    auto big_objects = bench::generate_cluster(big);
    t0 = Clock::now();
    auto big_state = ClusterState::build(std::move(big_objects));
    const double build_s = seconds_since(t0);
    big_objects = ClusterObjects{};
    malloc_trim(0);  // what remains is the snapshot (and allocator slack), not the input objects
    const long rss_after = rss_bytes();
    fmt::print("snapshot build for {} pods:      {:.3f} s\n", big.pods, build_s);
    fmt::print("resident bytes per pod (RSS delta): {:.0f}  (estimate from the indexes: {:.0f})\n",
               double(rss_after - rss_before) / big.pods, double(big_state->approximate_bytes()) / big.pods);
    return 0;
}

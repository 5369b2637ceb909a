// Informer figures at cluster scale (prints, asserts nothing):
//   client side, in process (no server): decode+store throughput of watch events on one core, store memory
//     per pod, snapshot rebuild time, pod_by_ip latency;
//   end to end against the fake API server: initial sync of N pods + P policies, sustained watch throughput
//     of pod relabels, and pod_by_ip latency on the current snapshot while events stream and snapshots
//     rebuild.
//
//   k8s_sync_bench [--pods 100000] [--policies 1000] [--events 50000] [--namespaces 100] [--nodes 100]
//                  [--client-only | --server-only]
#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fake_apiserver.hpp"
#include "k8s/cluster_informer.hpp"
#include "k8s/object_store.hpp"
#include "k8s/reflector.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using npt::IpAddr;
using npt::k8s::Resource;

struct Args {
    int pods = 100000;
    int policies = 1000;
    int events = 50000;
    int namespaces = 100;
    int nodes = 100;
    bool client = true;
    bool server = true;
};

double secs(Clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

size_t heap_in_use() {
    return mallinfo2().uordblks;
}

size_t rss_bytes() {
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string pod_ip(int i) {
    return fmt::format("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

// The shape of tests/fake-apiserver's generated pods: a Deployment's pod with four labels and two ports.
std::string pod_event(const char* type, int i, const Args& a, int generation) {
    const int app = i % 500;
    return fmt::format(
        R"({{"type":"{}","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"app-{}-deployment-{:07d}",)"
        R"("namespace":"ns-{}","resourceVersion":"{}","uid":"00000000-0000-0000-0000-{:012d}","labels":{{"app":"app-{}",)"
        R"("tier":"{}","pod-template-hash":"{:08x}","generation":"{}"}}}},"spec":{{"nodeName":"node-{}","containers":)"
        R"([{{"name":"main","image":"registry.example/app:1.0","ports":[{{"name":"http","containerPort":8080,)"
        R"("protocol":"TCP"}},{{"name":"metrics","containerPort":9090}}]}}]}},"status":{{"phase":"Running",)"
        R"("hostIP":"192.168.0.{}","podIP":"{}","podIPs":[{{"ip":"{}"}}]}}}}}})",
        type, app, i, i % a.namespaces, 1000 + i, i, app,
        (i % 4 == 0   ? "web"
         : i % 4 == 1 ? "api"
                      : "db"),
        (i / 7) % 100000, generation, i % a.nodes, i % a.nodes + 1, pod_ip(i), pod_ip(i));
}

struct Latency {
    std::vector<double> ns;
    void report(const char* what) {
        if (ns.empty()) return;
        std::sort(ns.begin(), ns.end());
        auto at = [&](double q) {
            return ns[std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())))];
        };
        fmt::print("  {:<44} n={} p50={:.0f} ns p99={:.0f} ns p99.9={:.0f} ns max={:.1f} us\n", what, ns.size(),
                   at(0.5), at(0.99), at(0.999), ns.back() / 1000.0);
    }
};

void measure_lookups(const npt::ClusterState& s, int pods, int n, Latency& out, std::mt19937& rng) {
    std::uniform_int_distribution<int> pick(0, pods - 1);
    for (int k = 0; k < n; ++k) {
        const IpAddr ip = *IpAddr::parse(pod_ip(pick(rng)));
        const auto t0 = Clock::now();
        auto idx = s.pod_by_ip(ip);
        const auto t1 = Clock::now();
        if (!idx) std::abort();
        out.ns.push_back(static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    }
}

void client_side(const Args& a) {
    fmt::print("client side, in process (decode with simdjson + typed decoder, store upsert; one thread):\n");
    npt::k8s::ClientConfig cfg;
    cfg.context = "bench";
    cfg.server = "https://127.0.0.1:1";  // never contacted
    npt::k8s::ApiClient client(cfg);
    npt::k8s::Cancellation cancel;

    std::vector<std::string> added, modified;
    added.reserve(a.pods);
    for (int i = 0; i < a.pods; ++i) added.push_back(pod_event("ADDED", i, a, 0));
    for (int i = 0; i < a.events; ++i) modified.push_back(pod_event("MODIFIED", i % a.pods, a, 1 + i / a.pods));
    size_t bytes = 0;
    for (const auto& l : added) bytes += l.size();
    fmt::print("  watch line size                              {:.0f} B/pod\n", static_cast<double>(bytes) / a.pods);

    malloc_trim(0);
    const size_t heap0 = heap_in_use();
    auto store = std::make_unique<npt::k8s::ObjectStore>(std::chrono::seconds(30));
    npt::k8s::ReflectorOptions ro;
    npt::k8s::Reflector refl(Resource::Pods, client, *store, ro, cancel, nullptr, nullptr);
    const size_t heap1 = heap_in_use();
    auto t0 = Clock::now();
    for (const auto& l : added) refl.handle_watch_line(l);
    auto t1 = Clock::now();
    const size_t heap2 = heap_in_use();
    fmt::print("  ADDED events                                 {:.0f} events/s ({:.2f} s for {})\n",
               a.pods / secs(t1 - t0), secs(t1 - t0), a.pods);
    fmt::print("  store memory                                 {:.0f} B/pod (heap in use, {} pods)\n",
               static_cast<double>(heap2 - heap1) / a.pods, a.pods);
    (void)heap0;

    t0 = Clock::now();
    for (const auto& l : modified) refl.handle_watch_line(l);
    t1 = Clock::now();
    fmt::print("  MODIFIED events (relabels)                   {:.0f} events/s ({:.2f} s for {})\n",
               a.events / secs(t1 - t0), secs(t1 - t0), a.events);
    if (refl.status().decode_errors.load() != 0)
        fmt::print("  DECODE ERRORS: {}\n", refl.status().decode_errors.load());

    t0 = Clock::now();
    auto objects = store->collect();
    t1 = Clock::now();
    auto state = npt::ClusterState::build(std::move(objects));
    auto t2 = Clock::now();
    fmt::print("  snapshot: copy out of the store              {:.0f} ms\n", secs(t1 - t0) * 1000);
    fmt::print("  snapshot: ClusterState::build                {:.0f} ms\n", secs(t2 - t1) * 1000);
    Latency lat;
    std::mt19937 rng(1);
    measure_lookups(*state, a.pods, 200000, lat, rng);
    lat.report("pod_by_ip (idle)");
}

void end_to_end(const Args& a) {
    fmt::print("end to end against the fake API server (Python, loopback TLS):\n");
    npt::testing::FakeApiServer::Options so;
    so.bookmark_interval = 1.0;
    npt::testing::FakeApiServer srv(so);
    auto t0 = Clock::now();
    srv.control("generate", fmt::format(R"({{"pods":{},"policies":{},"namespaces":{},"nodes":{}}})", a.pods, a.policies,
                                        a.namespaces, a.nodes));
    fmt::print("  server: generating the objects               {:.1f} s (not client time)\n", secs(Clock::now() - t0));

    npt::k8s::InformerOptions o;
    o.min_rebuild_interval = std::chrono::milliseconds(1000);
    o.page_size = 500;
    o.log = [](std::string_view m) { fmt::print(stderr, "informer: {}\n", m); };
    const size_t rss0 = rss_bytes();
    npt::k8s::ClusterInformer informer(std::make_shared<npt::k8s::ApiClient>(srv.token_config("test-token")), o);
    t0 = Clock::now();
    informer.start();
    auto synced = informer.wait_synced(std::chrono::minutes(5));
    const auto sync_time = Clock::now() - t0;
    if (!synced) {
        fmt::print("  sync failed: {}\n", synced.error().message);
        return;
    }
    const auto st = informer.stats();
    fmt::print(
        "  initial sync ({} pods, {} policies)     {:.2f} s (lists of every resource + first snapshot, "
        "build {:.0f} ms)\n",
        (*synced)->pods().size(), (*synced)->policies().size(), secs(sync_time), secs(st.last_build) * 1000);
    fmt::print(
        "  resident memory after sync                   {:.0f} MiB (+{:.0f} MiB: store, one snapshot, "
        "allocator slack)\n",
        rss_bytes() / 1048576.0, (rss_bytes() - rss0) / 1048576.0);

    // Lookups on the current snapshot while relabels stream in and snapshots rebuild every second.
    std::atomic<bool> done{false};
    Latency during;
    std::thread lookups([&] {
        std::mt19937 rng(2);
        while (!done.load()) {
            auto s = informer.snapshot();
            measure_lookups(*s, a.pods, 200, during, rng);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    auto pods_events = [&] {
        for (const auto& r : informer.stats().resources)
            if (r.resource == "pods") return r.events;
        return uint64_t{0};
    };
    const uint64_t before = pods_events();
    const uint64_t snapshots_before = informer.stats().snapshots;
    t0 = Clock::now();
    std::thread churn([&] {
        srv.control("churn", fmt::format(R"({{"events":{},"pods":{},"namespaces":{},"nodes":{},"generation":1}})",
                                         a.events, a.pods, a.namespaces, a.nodes));
    });
    Clock::time_point first{}, served{};
    while (pods_events() - before < static_cast<uint64_t>(a.events) && Clock::now() - t0 < std::chrono::minutes(5)) {
        if (first == Clock::time_point{} && pods_events() > before) first = Clock::now();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const auto t_end = Clock::now();
    churn.join();
    served = Clock::now();
    done = true;
    lookups.join();
    const uint64_t got = pods_events() - before;
    fmt::print(
        "  watch: {} relabel events                  {:.0f} events/s end to end ({:.2f} s; server "
        "produced them in {:.2f} s)\n",
        got, got / secs(t_end - t0), secs(t_end - t0), secs(served - t0));
    fmt::print("  snapshots rebuilt during the stream          {}\n", informer.stats().snapshots - snapshots_before);
    during.report("pod_by_ip during the stream");
    informer.stop();
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (arg == "--pods")
            a.pods = next();
        else if (arg == "--policies")
            a.policies = next();
        else if (arg == "--events")
            a.events = next();
        else if (arg == "--namespaces")
            a.namespaces = next();
        else if (arg == "--nodes")
            a.nodes = next();
        else if (arg == "--client-only")
            a.server = false;
        else if (arg == "--server-only")
            a.client = false;
        else {
            fmt::print(stderr,
                       "usage: k8s_sync_bench [--pods N] [--policies N] [--events N] [--namespaces N] "
                       "[--nodes N] [--client-only|--server-only]\n");
            return 2;
        }
    }
    if (a.client) client_side(a);
    if (a.server) end_to_end(a);
    return 0;
}

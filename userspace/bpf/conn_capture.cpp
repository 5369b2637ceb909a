#include "conn_capture.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <ctime>
#include <string_view>
#include <unordered_map>

#include "conn.skel.h"
#include "kernel_features.hpp"
#include "map_walk.hpp"

namespace npt::capture {

namespace {

struct SkeletonDeleter {
    void operator()(conn* s) const { conn__destroy(s); }
};
struct LinkDeleter {
    void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};

struct KeyHash {
    size_t operator()(const npt_conn_key& k) const {
        return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(&k), sizeof(k)));
    }
};
struct KeyEq {
    bool operator()(const npt_conn_key& a, const npt_conn_key& b) const { return std::memcmp(&a, &b, sizeof(a)) == 0; }
};

uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

struct ConnCapture::Impl {
    std::unique_ptr<conn, SkeletonDeleter> skel;
    std::unique_ptr<bpf_link, LinkDeleter> link;
    bpf_program* program = nullptr;
    std::string mode;
    struct Seen {
        uint64_t first_ns = 0;
        uint64_t count = 0;
    };
    std::unordered_map<npt_conn_key, Seen, KeyHash, KeyEq> seen;  // as of the previous poll
    uint64_t tracked = 0;
    std::chrono::system_clock::time_point last_poll;

    std::string try_load(bool tracepoint, const ConnCaptureOptions& o) {
        LibbpfLogCapture log(
            o.debug
                ? (o.debug_sink
                       ? o.debug_sink
                       : [](std::string_view
                                line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); })
                : DebugSink{});
        const auto fail = [&](const char* what, int err) {
            std::string msg = std::string(what) + ": " + std::strerror(err < 0 ? -err : err);
            if (!log.best_error().empty()) msg += " (" + log.best_error() + ")";
            return msg;
        };
        std::unique_ptr<conn, SkeletonDeleter> s(conn__open());
        if (!s) return fail("opening the BPF object", errno);
        bpf_program* chosen = tracepoint ? s->progs.npt_conn_tp : s->progs.npt_conn_btf;
        bpf_program__set_autoload(s->progs.npt_conn_tp, tracepoint);
        bpf_program__set_autoload(s->progs.npt_conn_btf, !tracepoint);
        if (bpf_map__key_size(s->maps.conns) != sizeof(npt_conn_key) ||
            bpf_map__value_size(s->maps.conns) != sizeof(npt_conn_value))
            return "the BPF object does not match include/netpol_trace/conn_event.h (stale build?)";
        if (int err = bpf_map__set_max_entries(s->maps.conns, std::max<uint32_t>(o.max_connections, 16)); err)
            return fail("sizing the connection map", err);
        if (int err = conn__load(s.get()); err) return fail("loading", err);
        std::unique_ptr<bpf_link, LinkDeleter> l(bpf_program__attach(chosen));
        if (!l) return fail("attaching", errno);
        skel = std::move(s);
        link = std::move(l);
        program = chosen;
        mode = tracepoint ? "tracepoint" : "tp_btf";
        return "";
    }
};

ConnCapture::ConnCapture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConnCapture::~ConnCapture() = default;

Result<std::unique_ptr<ConnCapture>> ConnCapture::open(const ConnCaptureOptions& options) {
    auto impl = std::make_unique<Impl>();
    std::string failures;
    for (bool tracepoint : {false, true}) {
        if (!tracepoint && options.force_tracepoint) continue;
        const std::string why = impl->try_load(tracepoint, options);
        if (why.empty()) return std::unique_ptr<ConnCapture>(new ConnCapture(std::move(impl)));
        failures += (failures.empty() ? "" : "; ") + std::string(tracepoint ? "tracepoint: " : "tp_btf: ") + why;
    }
    if (failures.find("Operation not permitted") != std::string::npos && !has_bpf_privileges())
        return Error{"loading BPF needs root or CAP_BPF+CAP_PERFMON (run with sudo)"};
    return Error{"cannot attach to sock:inet_sock_set_state: " + failures};
}

std::string ConnCapture::attach_mode() const {
    return impl_->mode;
}

int ConnCapture::program_fd() const {
    return impl_->program ? bpf_program__fd(impl_->program) : -1;
}

std::vector<ConnDelta> ConnCapture::poll() {
    std::vector<ConnDelta> out;
    decltype(impl_->seen) now;
    now.reserve(impl_->seen.size() + 64);
    // The kernel stamps with the monotonic clock: one offset per poll turns it into wall time.
    const int64_t offset =
        static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) - static_cast<int64_t>(clock_ns(CLOCK_MONOTONIC));
    const auto wall = [offset](uint64_t mono) {
        return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(static_cast<int64_t>(mono) + offset)));
    };
    const auto polled = std::chrono::system_clock::now();
    walk_map<npt_conn_key, npt_conn_value>(
        bpf_map__fd(impl_->skel->maps.conns), [&](const npt_conn_key& k, const npt_conn_value& v) {
            uint64_t added = v.count;
            auto first = wall(v.first_ns);
            if (auto it = impl_->seen.find(k); it != impl_->seen.end() && it->second.first_ns == v.first_ns) {
                added = v.count > it->second.count ? v.count - it->second.count : 0;
                first = std::max(first, impl_->last_poll);  // what grew since the previous poll
            }
            now[k] = {v.first_ns, v.count};
            if (added) out.push_back({k, added, first, polled});
        });
    impl_->last_poll = polled;
    impl_->tracked = now.size();
    impl_->seen = std::move(now);
    return out;
}

ConnCaptureStats ConnCapture::stats() const {
    ConnCaptureStats s;
    s.tracked = impl_->tracked;
    const int fd = bpf_map__fd(impl_->skel->maps.conn_counters);
    const int cpus = libbpf_num_possible_cpus();
    if (cpus > 0) {
        std::vector<uint64_t> values(static_cast<size_t>(cpus));
        for (uint32_t c : {uint32_t{NPT_CONN_CTR_INSERTED}, uint32_t{NPT_CONN_CTR_UPDATE_ERRORS}}) {
            if (bpf_map_lookup_elem(fd, &c, values.data()) != 0) continue;
            uint64_t sum = 0;
            for (uint64_t v : values) sum += v;
            (c == NPT_CONN_CTR_INSERTED ? s.inserted : s.update_errors) = sum;
        }
    }
    s.evicted = s.inserted > s.tracked ? s.inserted - s.tracked : 0;
    return s;
}

}  // namespace npt::capture

// The working TCP connections of the node: loads bpf/conn.bpf.c on sock:inet_sock_set_state (tp_btf, else the
// classic tracepoint) and reads the kernel's per-connection counts. Userspace does no per-connection work: each
// poll() walks the kernel's map once and returns what changed since the previous one.
//
//   std::string error;
//   auto conns = npt::capture::ConnCapture::open({}, &error);
//   if (!conns) { ... error is one line ... }
//   for (const auto& c : conns->poll()) { ... c.added connections of c.key since the last poll ... }
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "libbpf_log.hpp"
#include "netpol_trace/conn_event.h"

namespace npt::capture {

struct ConnCaptureOptions {
    uint32_t max_connections = 65536;  // the kernel's LRU of (client, server, port, side)
    bool force_tracepoint = false;     // tests: the classic tracepoint even where tp_btf loads
    bool debug = false;
    DebugSink debug_sink;
};

struct ConnDelta {
    npt_conn_key key{};
    uint64_t added = 0;  // connections established since the previous poll (all of them at the first sight)
    std::chrono::system_clock::time_point first_seen;  // the kernel's insert of the entry, or the previous poll
    std::chrono::system_clock::time_point last_seen;   // this poll (the kernel counts, the reader stamps)
};

struct ConnCaptureStats {
    uint64_t tracked = 0;        // entries in the kernel's map at the last poll
    uint64_t inserted = 0;       // entries the kernel inserted
    uint64_t evicted = 0;        // inserted - tracked: entries the LRU dropped for room (their later counts restart)
    uint64_t update_errors = 0;  // inserts the kernel refused
};

class ConnCapture {
  public:
    // Loads and attaches. On failure returns null and sets `error` to one line.
    static Result<std::unique_ptr<ConnCapture>> open(const ConnCaptureOptions& options);
    ~ConnCapture();
    ConnCapture(const ConnCapture&) = delete;
    ConnCapture& operator=(const ConnCapture&) = delete;

    std::string attach_mode() const;  // "tp_btf" or "tracepoint"
    int program_fd() const;           // for BPF_ENABLE_STATS figures

    // Entries whose count grew since the previous poll (every entry at the first).
    std::vector<ConnDelta> poll();
    ConnCaptureStats stats() const;

    struct Impl;

  private:
    explicit ConnCapture(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace npt::capture

// The working connections of this node, as the agent and `flows --local` record them: TCP from the kernel program
// on sock:inet_sock_set_state (every socket of every pod, whatever the CNI), UDP and SCTP from conntrack events of
// the network namespace it runs in (the node's, where forwarded pod traffic is tracked). Each connection is
// resolved against the cluster state when first seen and kept in a bounded table.
//
// Conntrack sees a forwarded flow once per node it crosses, whichever end is local: a flow is recorded as the
// client's (side "client", the address dialled) where the client is a pod of this node or not a pod, and as the
// server's (side "server", the endpoint) where the endpoint is a pod of this node. Without a cluster state both.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "conn_capture.hpp"
#include "flows/connection_table.hpp"
#include "netfilter/conntrack_listener.hpp"
#include "state/cluster_state.hpp"

namespace npt::live {

struct RecorderOptions {
    std::string node;
    ConnectionTable::Limits limits;
    uint32_t kernel_max_connections = 65536;
    bool conntrack = true;  // false: TCP only
    bool debug = false;
};

struct RecorderStats {
    std::string tcp_attach_mode;        // "tp_btf" or "tracepoint"
    std::string conntrack_not_visible;  // why UDP/SCTP are not seen ("" when they are)
    capture::ConnCaptureStats kernel;
    netfilter::ConntrackListener::Stats conntrack;
    size_t table_size = 0;
    uint64_t evicted = 0;
    uint64_t expired = 0;
    uint64_t tcp_connections = 0;        // connections counted from the kernel program
    uint64_t conntrack_connections = 0;  // entries counted from conntrack
};

class ConnectionRecorder {
  public:
    // Attaches the TCP program (the error is one line when it cannot) and subscribes to conntrack events (when it
    // cannot, stats().conntrack_not_visible says why, and TCP is still recorded).
    static Result<std::unique_ptr<ConnectionRecorder>> open(const RecorderOptions& options);

    void set_state(std::shared_ptr<const ClusterState> state);
    // Seeds the table (a journal read back).
    void restore(std::vector<Connection> connections);

    // Reads the kernel's counts and the queued conntrack events into the table, and forgets what is too old.
    void poll();
    // The conntrack events only (cheap; call between polls so the socket's buffer does not overflow).
    void drain_conntrack();

    std::vector<Connection> select(const ConnectionFilter& filter) const;
    std::vector<Connection> take_changed();
    std::vector<Connection> all() const;
    RecorderStats stats() const;
    int conntrack_fd() const;  // -1 without conntrack
    int tcp_program_fd() const;

  private:
    ConnectionRecorder() = default;
    void add(Connection c);  // mu_ held
    bool local_pod(const IpAddr& ip, bool& is_pod) const;

    RecorderOptions options_;
    std::unique_ptr<capture::ConnCapture> tcp_;
    std::unique_ptr<netfilter::ConntrackListener> conntrack_;
    std::string conntrack_not_visible_;
    mutable std::mutex mu_;
    std::unique_ptr<ConnectionTable> table_;
    std::shared_ptr<const ClusterState> state_;
    uint64_t tcp_connections_ = 0;
    uint64_t conntrack_connections_ = 0;
};

}  // namespace npt::live

#include "live/connection_recorder.hpp"

#include <netinet/in.h>

namespace npt::live {

namespace {

IpAddr address_of(uint8_t family, const uint8_t* bytes) {
    return IpAddr::from_bytes(family == AF_INET6 ? IpFamily::V6 : IpFamily::V4, bytes);
}

bool loopback(const IpAddr& ip) {
    return ip.is_v4() ? ip.str().rfind("127.", 0) == 0 : ip.str() == "::1";
}

}  // namespace

Result<std::unique_ptr<ConnectionRecorder>> ConnectionRecorder::open(const RecorderOptions& options) {
    std::unique_ptr<ConnectionRecorder> r(new ConnectionRecorder());
    r->options_ = options;
    r->table_ = std::make_unique<ConnectionTable>(options.limits);
    capture::ConnCaptureOptions copts;
    copts.max_connections = options.kernel_max_connections;
    copts.debug = options.debug;
    auto tcp = capture::ConnCapture::open(copts);
    if (!tcp) return tcp.error();
    r->tcp_ = std::move(*tcp);
    if (options.conntrack) {
        auto ct = netfilter::ConntrackListener::open();
        if (ct)
            r->conntrack_ = std::move(*ct);
        else
            r->conntrack_not_visible_ = ct.error().message;
    } else {
        r->conntrack_not_visible_ = "UDP and SCTP flows are not recorded (conntrack off)";
    }
    return r;
}

void ConnectionRecorder::set_state(std::shared_ptr<const ClusterState> state) {
    std::lock_guard lock(mu_);
    state_ = std::move(state);
}

void ConnectionRecorder::restore(std::vector<Connection> connections) {
    std::lock_guard lock(mu_);
    for (auto& c : connections) table_->restore(std::move(c));
}

void ConnectionRecorder::add(Connection c) {
    c.node = options_.node;
    const auto* state = state_.get();
    table_->add(std::move(c), [state](Connection& e) {
        if (state) resolve_connection(*state, e);
    });
}

// Whether `ip` is a pod of this node (`is_pod`: a pod at all). Without a state every address counts as local.
bool ConnectionRecorder::local_pod(const IpAddr& ip, bool& is_pod) const {
    is_pod = false;
    if (!state_) return true;
    const auto pod = state_->pod_by_ip(ip);
    if (!pod) return false;
    is_pod = true;
    const auto node = state_->pods()[*pod].node;
    return node == kNoStr || state_->str(node) == options_.node;
}

void ConnectionRecorder::drain_conntrack() {
    if (!conntrack_) return;
    std::lock_guard lock(mu_);
    conntrack_->drain([&](const netfilter::ConntrackFlow& f) {
        if (loopback(f.client)) return;
        ++conntrack_connections_;
        const auto now = std::chrono::system_clock::now();
        Connection c;
        c.src.ip = f.client;
        c.protocol = f.protocol == IPPROTO_SCTP ? Protocol::SCTP : Protocol::UDP;
        c.count = 1;
        c.first_seen = c.last_seen = now;
        c.observed_by = ObservedBy::Conntrack;
        bool client_is_pod = false, server_is_pod = false;
        const bool client_local = local_pod(f.client, client_is_pod);
        const bool server_local = local_pod(f.server, server_is_pod);
        if (client_local || !client_is_pod) {
            Connection client = c;
            client.dst.ip = f.dialled;
            client.port = f.dport;
            client.side = Side::Client;
            add(std::move(client));
        }
        if (server_local && (server_is_pod || !state_)) {
            Connection server = c;
            server.dst.ip = f.server;
            server.port = f.server_port;
            server.side = Side::Server;
            add(std::move(server));
        }
    });
}

void ConnectionRecorder::poll() {
    drain_conntrack();
    auto deltas = tcp_->poll();
    std::lock_guard lock(mu_);
    for (const auto& d : deltas) {
        Connection c;
        c.src.ip = address_of(d.key.family, d.key.saddr);
        c.dst.ip = address_of(d.key.family, d.key.daddr);
        c.port = d.key.dport;
        c.protocol = Protocol::TCP;
        c.side = d.key.side == NPT_CONN_SERVER ? Side::Server : Side::Client;
        c.count = d.added;
        c.first_seen = d.first_seen;
        c.last_seen = d.last_seen;
        c.observed_by = ObservedBy::TcpState;
        tcp_connections_ += d.added;
        add(std::move(c));
    }
    table_->expire(std::chrono::system_clock::now());
}

std::vector<Connection> ConnectionRecorder::select(const ConnectionFilter& filter) const {
    std::lock_guard lock(mu_);
    return table_->select(filter);
}

std::vector<Connection> ConnectionRecorder::take_changed() {
    std::lock_guard lock(mu_);
    return table_->take_changed();
}

std::vector<Connection> ConnectionRecorder::all() const {
    std::lock_guard lock(mu_);
    return table_->all();
}

RecorderStats ConnectionRecorder::stats() const {
    RecorderStats s;
    s.tcp_attach_mode = tcp_->attach_mode();
    s.conntrack_not_visible = conntrack_not_visible_;
    s.kernel = tcp_->stats();
    std::lock_guard lock(mu_);
    if (conntrack_) s.conntrack = conntrack_->stats();
    s.table_size = table_->size();
    s.evicted = table_->evicted();
    s.expired = table_->expired();
    s.tcp_connections = tcp_connections_;
    s.conntrack_connections = conntrack_connections_;
    return s;
}

int ConnectionRecorder::conntrack_fd() const {
    return conntrack_ ? conntrack_->fd() : -1;
}
int ConnectionRecorder::tcp_program_fd() const {
    return tcp_->program_fd();
}

}  // namespace npt::live

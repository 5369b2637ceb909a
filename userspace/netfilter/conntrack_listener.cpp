#include "netfilter/conntrack_listener.hpp"

#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace npt::netfilter {

namespace {

struct CtDeleter {
    void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};

std::optional<IpAddr> address(const nf_conntrack* ct, uint8_t l3, bool reply_src, bool dst) {
    if (l3 == AF_INET) {
        const auto attr = reply_src ? ATTR_REPL_IPV4_SRC : dst ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV4_SRC;
        if (!nfct_attr_is_set(ct, attr)) return std::nullopt;
        const uint32_t v = nfct_get_attr_u32(ct, attr);  // network order
        return IpAddr::from_bytes(IpFamily::V4, reinterpret_cast<const uint8_t*>(&v));
    }
    const auto attr = reply_src ? ATTR_REPL_IPV6_SRC : dst ? ATTR_ORIG_IPV6_DST : ATTR_ORIG_IPV6_SRC;
    if (!nfct_attr_is_set(ct, attr)) return std::nullopt;
    return IpAddr::from_bytes(IpFamily::V6, static_cast<const uint8_t*>(nfct_get_attr(ct, attr)));
}

}  // namespace

bool parse_conntrack_event(const nlmsghdr* nlh, ConntrackFlow& flow) {
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK ||
        NFNL_MSG_TYPE(nlh->nlmsg_type) != IPCTNL_MSG_CT_NEW)
        return false;
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return false;
    std::unique_ptr<nf_conntrack, CtDeleter> ct(nfct_new());
    if (!ct || nfct_nlmsg_parse(nlh, ct.get()) < 0) return false;
    if (!nfct_attr_is_set(ct.get(), ATTR_L3PROTO) || !nfct_attr_is_set(ct.get(), ATTR_L4PROTO)) return false;
    const uint8_t l3 = nfct_get_attr_u8(ct.get(), ATTR_L3PROTO);
    const uint8_t l4 = nfct_get_attr_u8(ct.get(), ATTR_L4PROTO);
    if ((l3 != AF_INET && l3 != AF_INET6) || (l4 != IPPROTO_UDP && l4 != IPPROTO_SCTP)) return false;
    const auto client = address(ct.get(), l3, false, false);
    const auto dialled = address(ct.get(), l3, false, true);
    const auto server = address(ct.get(), l3, true, false);
    if (!client || !dialled || !server || !nfct_attr_is_set(ct.get(), ATTR_ORIG_PORT_DST) ||
        !nfct_attr_is_set(ct.get(), ATTR_REPL_PORT_SRC))
        return false;
    flow.client = *client;
    flow.dialled = *dialled;
    flow.server = *server;
    flow.dport = ntohs(nfct_get_attr_u16(ct.get(), ATTR_ORIG_PORT_DST));
    flow.server_port = ntohs(nfct_get_attr_u16(ct.get(), ATTR_REPL_PORT_SRC));
    flow.protocol = l4;
    flow.id = nfct_attr_is_set(ct.get(), ATTR_ID) ? nfct_get_attr_u32(ct.get(), ATTR_ID) : 0;
    flow.status = nfct_attr_is_set(ct.get(), ATTR_STATUS) ? nfct_get_attr_u32(ct.get(), ATTR_STATUS) : 0;
    return true;
}

bool SeenEntries::first(const ConntrackFlow& f) {
    // The id alone is the entry's address hashed: reused once an entry is freed. With the tuple it is the entry.
    std::string key = fmt::format("{}|{}|{}|{}|{}", f.id, f.client.str(), f.dialled.str(), f.dport, f.protocol);
    if (set_.contains(key)) return false;
    order_.push_back(key);
    set_.insert(std::move(key));
    while (order_.size() > capacity_) {
        set_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

struct ConntrackListener::Impl {
    mnl_socket* sock = nullptr;
    SeenEntries seen;
    Stats stats;
    std::vector<char> buffer = std::vector<char>(256 * 1024);
    ~Impl() {
        if (sock) mnl_socket_close(sock);
    }
};

ConntrackListener::ConntrackListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ConntrackListener::~ConntrackListener() = default;

Result<std::unique_ptr<ConntrackListener>> ConntrackListener::open() {
    auto impl = std::make_unique<Impl>();
    impl->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!impl->sock)
        return Error{fmt::format("UDP and SCTP flows are not visible: cannot open a netfilter netlink socket: {}",
                                 std::strerror(errno))};
    if (mnl_socket_bind(impl->sock, NF_NETLINK_CONNTRACK_UPDATE, MNL_SOCKET_AUTOPID) < 0) {
        const int err = errno;
        if (err == EPERM || err == EACCES)
            return Error{"UDP and SCTP flows are not visible: conntrack events need CAP_NET_ADMIN in the node's "
                         "network namespace"};
        return Error{fmt::format("UDP and SCTP flows are not visible: cannot subscribe to conntrack events: {} "
                                 "(no nf_conntrack_netlink in this kernel?)",
                                 std::strerror(err))};
    }
    // Only UDP and SCTP entries reach the socket: TCP updates (every state change) stay in the kernel.
    if (nfct_filter* filter = nfct_filter_create()) {
        nfct_filter_add_attr_u32(filter, NFCT_FILTER_L4PROTO, IPPROTO_UDP);
        nfct_filter_add_attr_u32(filter, NFCT_FILTER_L4PROTO, IPPROTO_SCTP);
        const int rc = nfct_filter_attach(mnl_socket_get_fd(impl->sock), filter);
        nfct_filter_destroy(filter);
        if (rc < 0)
            return Error{fmt::format("UDP and SCTP flows are not visible: cannot filter conntrack events: {}",
                                     std::strerror(errno))};
    }
    const int size = 4 << 20;  // bursts of DNS; capped by net.core.rmem_max
    setsockopt(mnl_socket_get_fd(impl->sock), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    return std::unique_ptr<ConntrackListener>(new ConntrackListener(std::move(impl)));
}

int ConntrackListener::fd() const { return mnl_socket_get_fd(impl_->sock); }

size_t ConntrackListener::drain(const std::function<void(const ConntrackFlow&)>& fn) {
    size_t events = 0;
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(impl_->sock, impl_->buffer.data(), impl_->buffer.size());
        if (n < 0) {
            if (errno == ENOBUFS) {
                ++impl_->stats.overruns;
                continue;
            }
            break;  // EAGAIN: nothing more queued
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(impl_->buffer.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            ++events;
            ++impl_->stats.events;
            ConntrackFlow f;
            if (!parse_conntrack_event(nlh, f) || !(f.status & IPS_SEEN_REPLY)) continue;
            if (!impl_->seen.first(f)) continue;
            ++impl_->stats.flows;
            fn(f);
        }
    }
    return events;
}

ConntrackListener::Stats ConntrackListener::stats() const { return impl_->stats; }

}  // namespace npt::netfilter

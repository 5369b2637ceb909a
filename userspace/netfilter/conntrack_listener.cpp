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
#include <array>
#include <cstring>
#include <vector>

namespace npt::netfilter {

namespace {

// One tuple of an entry (CTA_TUPLE_ORIG or CTA_TUPLE_REPLY): addresses, protocol, ports (network order).
struct Tuple {
    std::optional<IpAddr> src, dst;
    std::optional<uint8_t> proto;
    std::optional<uint16_t> sport, dport;
};

// The attributes of a nest, each validated for its type, by type number (later ones win, as the kernel never
// repeats one). False when the nest does not parse.
template <size_t N>
bool nested(const nlattr* nest, std::array<const nlattr*, N>& out) {
    out.fill(nullptr);
    return mnl_attr_parse_nested(
               nest,
               [](const nlattr* a, void* data) {
                   auto& tb = *static_cast<std::array<const nlattr*, N>*>(data);
                   const uint16_t type = mnl_attr_get_type(a);
                   if (type < N) tb[type] = a;
                   return MNL_CB_OK;
               },
               &out) >= 0;
}

bool parse_tuple(const nlattr* attr, Tuple& t) {
    if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) return false;
    std::array<const nlattr*, CTA_TUPLE_MAX + 1> tuple;
    if (!nested(attr, tuple) || !tuple[CTA_TUPLE_IP] || !tuple[CTA_TUPLE_PROTO]) return false;
    if (mnl_attr_validate(tuple[CTA_TUPLE_IP], MNL_TYPE_NESTED) < 0 ||
        mnl_attr_validate(tuple[CTA_TUPLE_PROTO], MNL_TYPE_NESTED) < 0)
        return false;
    std::array<const nlattr*, CTA_IP_MAX + 1> ip;
    if (!nested(tuple[CTA_TUPLE_IP], ip)) return false;
    const auto address = [](const nlattr* a, IpFamily family) -> std::optional<IpAddr> {
        const size_t len = family == IpFamily::V4 ? 4 : 16;
        if (!a || mnl_attr_validate2(a, MNL_TYPE_BINARY, len) < 0) return std::nullopt;
        return IpAddr::from_bytes(family, static_cast<const uint8_t*>(mnl_attr_get_payload(a)));
    };
    if (ip[CTA_IP_V4_SRC] || ip[CTA_IP_V4_DST]) {
        t.src = address(ip[CTA_IP_V4_SRC], IpFamily::V4);
        t.dst = address(ip[CTA_IP_V4_DST], IpFamily::V4);
    } else {
        t.src = address(ip[CTA_IP_V6_SRC], IpFamily::V6);
        t.dst = address(ip[CTA_IP_V6_DST], IpFamily::V6);
    }
    std::array<const nlattr*, CTA_PROTO_MAX + 1> proto;
    if (!nested(tuple[CTA_TUPLE_PROTO], proto)) return false;
    if (proto[CTA_PROTO_NUM] && mnl_attr_validate(proto[CTA_PROTO_NUM], MNL_TYPE_U8) >= 0)
        t.proto = mnl_attr_get_u8(proto[CTA_PROTO_NUM]);
    if (proto[CTA_PROTO_SRC_PORT] && mnl_attr_validate(proto[CTA_PROTO_SRC_PORT], MNL_TYPE_U16) >= 0)
        t.sport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_SRC_PORT]));
    if (proto[CTA_PROTO_DST_PORT] && mnl_attr_validate(proto[CTA_PROTO_DST_PORT], MNL_TYPE_U16) >= 0)
        t.dport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_DST_PORT]));
    return t.src && t.dst && t.proto;
}

}  // namespace

// Parsed with libmnl's validated attribute walk rather than libnetfilter_conntrack's parser, which exits the process
// on an attribute of an unexpected size (its "ABI breakage" check).
bool parse_conntrack_event(const nlmsghdr* nlh, ConntrackFlow& flow) {
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK || NFNL_MSG_TYPE(nlh->nlmsg_type) != IPCTNL_MSG_CT_NEW)
        return false;
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg))) return false;
    std::array<const nlattr*, CTA_MAX + 1> tb{};
    const int rc = mnl_attr_parse(
        nlh, sizeof(nfgenmsg),
        [](const nlattr* a, void* data) {
            auto& t = *static_cast<std::array<const nlattr*, CTA_MAX + 1>*>(data);
            const uint16_t type = mnl_attr_get_type(a);
            if (type <= CTA_MAX) t[type] = a;
            return MNL_CB_OK;
        },
        &tb);
    if (rc < 0 || !tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY]) return false;
    Tuple orig, reply;
    if (!parse_tuple(tb[CTA_TUPLE_ORIG], orig) || !parse_tuple(tb[CTA_TUPLE_REPLY], reply)) return false;
    if (*orig.proto != IPPROTO_UDP && *orig.proto != IPPROTO_SCTP) return false;
    if (!orig.dport || !reply.sport || orig.src->family != reply.src->family) return false;
    flow.client = *orig.src;
    flow.dialled = *orig.dst;
    flow.dport = *orig.dport;
    flow.server = *reply.src;
    flow.server_port = *reply.sport;
    flow.protocol = *orig.proto;
    flow.id = tb[CTA_ID] && mnl_attr_validate(tb[CTA_ID], MNL_TYPE_U32) >= 0 ? ntohl(mnl_attr_get_u32(tb[CTA_ID])) : 0;
    flow.status = tb[CTA_STATUS] && mnl_attr_validate(tb[CTA_STATUS], MNL_TYPE_U32) >= 0
                      ? ntohl(mnl_attr_get_u32(tb[CTA_STATUS]))
                      : 0;
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
            return Error{
                "UDP and SCTP flows are not visible: conntrack events need CAP_NET_ADMIN in the node's "
                "network namespace"};
        return Error{
            fmt::format("UDP and SCTP flows are not visible: cannot subscribe to conntrack events: {} "
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

int ConntrackListener::fd() const {
    return mnl_socket_get_fd(impl_->sock);
}

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

ConntrackListener::Stats ConntrackListener::stats() const {
    return impl_->stats;
}

}  // namespace npt::netfilter

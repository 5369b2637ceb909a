#include "netfilter/nflog_listener.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "netfilter/netlink_request.hpp"

namespace npt::netfilter {

namespace {

constexpr uint32_t kCopyRange = 256;     // IP and transport headers with room for options
constexpr uint32_t kFlushTimeout = 1;    // 1/100 s
constexpr uint32_t kQueueThreshold = 1;  // one record per message: no batching delay
constexpr int kReceiveBuffer = 4 * 1024 * 1024;
constexpr uint64_t kRecordMaxAge = 30'000'000'000ull;
constexpr size_t kRecordMaxTuples = 8192;
// How far a record's timestamp may lie outside the span it was read in: the packet's receive time comes before the
// log call, and the record waits up to the flush timeout in the kernel.
constexpr uint64_t kTimestampSlack = 100'000'000;

// Before 3.17 the kernel sent NFLOG records only to the logger bound to the protocol family (PF_BIND);
// since then loggers are found by type and PF_BIND would change the family's default logger for the whole
// network namespace, so it is left alone.
bool kernel_needs_pf_bind() {
    utsname u{};
    if (uname(&u) != 0) return false;
    int major = 0, minor = 0;
    if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major < 3 || (major == 3 && minor < 17);
}

}  // namespace

bool parse_nflog_packet(const nlmsghdr* nlh, NflogRecord& record, std::optional<PacketTuple>& tuple) {
    if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return false;
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nfgenmsg))) return false;
    const nlattr* tb[NFULA_MAX + 1] = {};
    const int parsed = mnl_attr_parse(
        nlh, sizeof(nfgenmsg),
        [](const nlattr* attr, void* data) -> int {
            const uint16_t type = mnl_attr_get_type(attr);
            if (type <= NFULA_MAX) static_cast<const nlattr**>(data)[type] = attr;
            return MNL_CB_OK;
        },
        tb);
    if (parsed < 0) return false;

    const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    record = NflogRecord{};
    record.group = ntohs(nfg->res_id);
    if (tb[NFULA_PREFIX] != nullptr) {
        const auto* s = static_cast<const char*>(mnl_attr_get_payload(tb[NFULA_PREFIX]));
        record.prefix.assign(s, strnlen(s, mnl_attr_get_payload_len(tb[NFULA_PREFIX])));
    }
    auto u32 = [&tb](int type) -> uint32_t {
        if (tb[type] == nullptr || mnl_attr_get_payload_len(tb[type]) < sizeof(uint32_t)) return 0;
        return ntohl(mnl_attr_get_u32(tb[type]));
    };
    record.indev = u32(NFULA_IFINDEX_INDEV);
    record.outdev = u32(NFULA_IFINDEX_OUTDEV);
    const nlattr* stamp = tb[NFULA_TIMESTAMP];
    if (stamp != nullptr && mnl_attr_get_payload_len(stamp) >= sizeof(nfulnl_msg_packet_timestamp)) {
        nfulnl_msg_packet_timestamp ts{};
        std::memcpy(&ts, mnl_attr_get_payload(stamp), sizeof(ts));
        const uint64_t sec = be64toh(ts.sec), usec = be64toh(ts.usec);
        if (usec < 1'000'000 && sec < UINT64_MAX / 1'000'000'000ull) {
            record.realtime_ns = sec * 1'000'000'000ull + usec * 1000;
        }
    }

    tuple.reset();
    if (tb[NFULA_PAYLOAD] != nullptr) {
        tuple = parse_packet({static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NFULA_PAYLOAD])),
                              mnl_attr_get_payload_len(tb[NFULA_PAYLOAD])});
    }
    return true;
}

struct NflogListener::Impl {
    uint16_t group = 0;
    mnl_socket* sock = nullptr;
    bool bound = false;
    uint32_t seq = static_cast<uint32_t>(time(nullptr));
    MulticastReader reader;
    Stats stats;
    RecentPackets<NflogRecord> records{kRecordMaxAge, kRecordMaxTuples};

    ~Impl() {
        if (sock == nullptr) return;
        if (bound) config(group, AF_UNSPEC, NFULNL_CFG_CMD_UNBIND);
        mnl_socket_close(sock);
    }

    // Builds an NFULNL_MSG_CONFIG message for `group` in `buf`.
    nlmsghdr* config_header(char* buf, uint16_t res_id, uint8_t family) {
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = ++seq;
        auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
        nfg->nfgen_family = family;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = htons(res_id);
        return nlh;
    }

    int send(nlmsghdr* nlh) {
        return netlink_request(sock, nlh, [](const nlmsghdr*) {});
    }

    int config(uint16_t res_id, uint8_t family, uint8_t command) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = config_header(buf, res_id, family);
        nfulnl_msg_config_cmd cmd{command};
        mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof(cmd), &cmd);
        return send(nlh);
    }

    // nfnetlink checks CAP_NET_ADMIN before it looks at a message: a message type nfnetlink_log does not
    // know fails with EPERM without the capability and EINVAL with it, and changes nothing.
    int probe_capability() {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = config_header(buf, 0, AF_UNSPEC);
        nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_MAX;
        return send(nlh);
    }

    Result<bool> bind(bool* busy) {
        const std::string what = "--nflog-group " + std::to_string(group);
        reader.start();
        sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (sock == nullptr) {
            if (errno == EPROTONOSUPPORT) return Error{what + ": nfnetlink is not available (modprobe nfnetlink_log)"};
            return Error{what + ": cannot open a netfilter netlink socket: " + std::strerror(errno)};
        }
        if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
            return Error{what + ": cannot bind a netfilter netlink socket: " + std::strerror(errno)};
        }
        if (probe_capability() == EPERM) return Error{what + " needs CAP_NET_ADMIN (run as root)"};

        if (kernel_needs_pf_bind()) {
            for (uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
                config(0, family, NFULNL_CFG_CMD_PF_UNBIND);  // errors are harmless here
                config(0, family, NFULNL_CFG_CMD_PF_BIND);
            }
        }

        const int err = config(group, AF_UNSPEC, NFULNL_CFG_CMD_BIND);
        if (err == EPERM || err == EBUSY || err == EEXIST) {
            if (busy != nullptr) *busy = true;
            return Error{"NFLOG group " + std::to_string(group) +
                         " is held by another listener (e.g. the CNI's own logger or ulogd); stop it or use another "
                         "--nflog-group"};
        }
        if (err == EINVAL || err == EOPNOTSUPP || err == ENOENT) {
            return Error{what + ": nfnetlink_log is not available (modprobe nfnetlink_log)"};
        }
        if (err != 0) return Error{what + ": cannot bind the NFLOG group: " + std::strerror(err)};
        bound = true;

        char buf[MNL_SOCKET_BUFFER_SIZE];
        nlmsghdr* nlh = config_header(buf, group, AF_UNSPEC);
        nfulnl_msg_config_mode mode{};
        mode.copy_range = htonl(kCopyRange);
        mode.copy_mode = NFULNL_COPY_PACKET;
        mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof(mode), &mode);
        if (int e = send(nlh); e != 0) return Error{what + ": cannot set the copy mode: " + std::strerror(e)};

        nlh = config_header(buf, group, AF_UNSPEC);
        mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(kQueueThreshold));
        if (int e = send(nlh); e != 0) return Error{what + ": cannot set the queue threshold: " + std::strerror(e)};

        nlh = config_header(buf, group, AF_UNSPEC);
        mnl_attr_put_u32(nlh, NFULA_CFG_TIMEOUT, htonl(kFlushTimeout));
        if (int e = send(nlh); e != 0) return Error{what + ": cannot set the flush timeout: " + std::strerror(e)};

        set_receive_buffer(mnl_socket_get_fd(sock), kReceiveBuffer);
        return true;
    }

    // A record's own timestamp, where the kernel gave one, places it more closely than the span it was read in;
    // taken to the monotonic clock with the offset between the two clocks now (a clock step between the packet and
    // now would move it: one outside the span is not trusted).
    void handle_message(const nlmsghdr* nlh, SentWithin sent, int64_t realtime_minus_monotonic) {
        NflogRecord record;
        std::optional<PacketTuple> tuple;
        if (!parse_nflog_packet(nlh, record, tuple)) return;
        ++stats.records;
        if (!tuple) {
            ++stats.unparsed;
            return;
        }
        if (record.realtime_ns != 0) {
            const auto at = static_cast<uint64_t>(static_cast<int64_t>(record.realtime_ns) - realtime_minus_monotonic);
            if (at + kTimestampSlack >= sent.after_ns && at <= sent.before_ns + kTimestampSlack) {
                sent = SentWithin::at(at);
            }
        }
        records.add(*tuple, sent, std::move(record));
    }

    size_t drain() {
        const uint64_t before = stats.records;
        timespec real{}, mono{};
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        const int64_t offset =
            (static_cast<int64_t>(real.tv_sec) - mono.tv_sec) * 1'000'000'000 + (real.tv_nsec - mono.tv_nsec);
        reader.drain(
            mnl_socket_get_fd(sock), [&](const nlmsghdr* nlh, SentWithin sent) { handle_message(nlh, sent, offset); },
            stats.overruns);
        records.expire(monotonic_ns());
        return stats.records - before;
    }
};

NflogListener::NflogListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NflogListener::~NflogListener() = default;

Result<std::unique_ptr<NflogListener>> NflogListener::open(uint16_t group, bool* busy) {
    if (busy != nullptr) *busy = false;
    auto impl = std::make_unique<Impl>();
    impl->group = group;
    if (auto bound = impl->bind(busy); !bound) return bound.error();
    return std::unique_ptr<NflogListener>(new NflogListener(std::move(impl)));
}

int NflogListener::fd() const {
    return mnl_socket_get_fd(impl_->sock);
}

size_t NflogListener::drain() {
    return impl_->drain();
}

const NflogRecord* NflogListener::find(const PacketTuple& tuple, uint64_t at_ns, uint64_t window_ns) const {
    return impl_->records.find(tuple, at_ns, window_ns);
}

uint16_t NflogListener::group() const {
    return impl_->group;
}

NflogListener::Stats NflogListener::stats() const {
    return impl_->stats;
}

}  // namespace npt::netfilter

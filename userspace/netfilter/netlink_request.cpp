#include "netfilter/netlink_request.hpp"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <vector>

namespace npt::netfilter {

namespace {

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

int netlink_request(mnl_socket* socket, nlmsghdr* request, const std::function<void(const nlmsghdr*)>& on_reply,
                    int timeout_ms) {
    const uint32_t seq = request->nlmsg_seq;
    if (mnl_socket_sendto(socket, request, request->nlmsg_len) < 0) return errno;

    const int fd = mnl_socket_get_fd(socket);
    const uint32_t portid = mnl_socket_get_portid(socket);
    const int64_t deadline = now_ms() + timeout_ms;
    // Large enough for any single reply of the kernel (a rule dump message fits a page or two).
    std::vector<char> buffer(64 * 1024);
    for (;;) {
        const ssize_t n = recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return errno;
            const int64_t left = deadline - now_ms();
            if (left <= 0) return ETIMEDOUT;
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR) return errno;
            continue;
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buffer.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != portid)) continue;
            if (nlh->nlmsg_type == NLMSG_ERROR) {
                if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) return EBADMSG;
                const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                return -err->error;  // 0 for the acknowledgement
            }
            if (nlh->nlmsg_type == NLMSG_DONE) return 0;
            if (nlh->nlmsg_type < NLMSG_MIN_TYPE) continue;
            on_reply(nlh);
        }
    }
}

void MulticastReader::drain(int fd, const Handler& on_message, uint64_t& overruns) {
    for (;;) {
        // Taken before the read: a message that arrives while recv() finds the socket empty was sent after it.
        const uint64_t before = monotonic_ns();
        const ssize_t n = recv(fd, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {  // the kernel dropped messages: some records are missing
                ++overruns;
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) empty_at_ns_ = before;
            return;
        }
        if (n == 0) return;
        const SentWithin sent{empty_at_ns_, monotonic_ns()};
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buffer_.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            on_message(nlh, sent);
        }
    }
}

void set_receive_buffer(int fd, int bytes) {
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) == 0) return;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

}  // namespace npt::netfilter

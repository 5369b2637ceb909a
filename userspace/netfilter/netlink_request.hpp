// Request/acknowledgement exchanges on a netlink socket, and the reading of multicast records, shared by the
// nftables and NFLOG code.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "netfilter/packet_tuple.hpp"

struct mnl_socket;
struct nlmsghdr;

namespace npt::netfilter {

// Sends `request` (NLM_F_ACK set by the caller, nlmsg_seq filled in) and reads until its acknowledgement,
// handing every other reply of the same sequence number to `on_reply`. Messages of other sequence numbers
// (late answers, multicast records) are skipped. Gives up after `timeout_ms`. Returns 0 or a positive errno
// (ETIMEDOUT when no acknowledgement came).
int netlink_request(mnl_socket* socket, nlmsghdr* request, const std::function<void(const nlmsghdr*)>& on_reply,
                    int timeout_ms = 1000);

// Sets the socket's receive buffer, beyond net.core.rmem_max when the process may (SO_RCVBUFFORCE).
void set_receive_buffer(int fd, int bytes);

// Reads the records the kernel multicasts to a socket (trace messages, NFLOG records) and tells, for each, when it
// was sent as far as a reader can know (SentWithin): after the last read that found the socket empty, before the
// read that returned it. Joined to a drop's kernel time, that holds however late the reader comes.
class MulticastReader {
  public:
    using Handler = std::function<void(const nlmsghdr*, SentWithin)>;

    // Call before subscribing: nothing read later was sent before this.
    void start() { empty_at_ns_ = monotonic_ns(); }
    // Reads every queued message without blocking, handing each to `on_message`; counts the kernel's drops of
    // messages for a full socket buffer (ENOBUFS) in `overruns`.
    void drain(int fd, const Handler& on_message, uint64_t& overruns);

  private:
    std::vector<char> buffer_ = std::vector<char>(256 * 1024);
    uint64_t empty_at_ns_ = 0;
};

}  // namespace npt::netfilter

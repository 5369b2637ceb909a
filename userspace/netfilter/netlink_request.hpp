// Request/acknowledgement exchanges on a netlink socket, shared by the nftables and NFLOG code.
#pragma once

#include <cstdint>
#include <functional>

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

}  // namespace npt::netfilter

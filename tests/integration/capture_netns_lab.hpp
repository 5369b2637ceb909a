// A throwaway network lab for the capture tests: client -> router ("node") -> server namespaces joined by
// veth pairs, addresses only inside them (10.201.1.0/24, 10.201.2.0/24, fd00:201:1::/64, fd00:201:2::/64).
// Everything a lab creates (namespaces, links, qdiscs, nft/iptables tables, tc programs) lives in its
// namespaces and goes away with them in the destructor, also when a test fails half-way.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace npt::capture::testing {

struct CommandResult {
    int status = -1;     // exit status, -1 if it did not exit normally
    std::string output;  // stdout and stderr
};

CommandResult run_command(const std::string& command);
// Runs `command` and returns its output; the test fails (ADD_FAILURE) when it exits non-zero.
std::string must_run(const std::string& command);
bool have_program(const std::string& name);
// The system python3 (/usr/bin/python3) when present: version-manager shims can take seconds to start.
const std::string& python();

class NetnsLab {
  public:
    NetnsLab();  // creates and wires the three namespaces; check ok() / error()
    ~NetnsLab();
    NetnsLab(const NetnsLab&) = delete;
    NetnsLab& operator=(const NetnsLab&) = delete;

    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

    // Namespace names ("npt-<pid>-<n>-client", ...).
    const std::string& client() const { return client_; }
    const std::string& router() const { return router_; }
    const std::string& server() const { return server_; }

    // "ip netns exec <ns> <command>"
    std::string in(const std::string& ns, const std::string& command) const;
    CommandResult exec(const std::string& ns, const std::string& command) const;
    std::string must_exec(const std::string& ns, const std::string& command) const;

    uint32_t netns_inum(const std::string& ns) const;
    uint32_t ifindex(const std::string& ns, const std::string& ifname) const;

    // Interfaces: client "c0"; router "r0" (client side) and "r1" (server side); server "s0".
    static constexpr const char* kClientV4 = "10.201.1.2";
    static constexpr const char* kRouterClientSideV4 = "10.201.1.1";
    static constexpr const char* kServerV4 = "10.201.2.2";
    static constexpr const char* kClientV6 = "fd00:201:1::2";
    static constexpr const char* kServerV6 = "fd00:201:2::2";

    // Sends `count` UDP datagrams from `ns` (errors such as EPERM from an OUTPUT drop are ignored).
    void send_udp(const std::string& ns, const std::string& dst, uint16_t port, int count, uint16_t sport = 0) const;
    // `count` ICMP echo requests over a raw socket (no ping binary needed); replies are not awaited.
    void send_icmp_echo(const std::string& ns, const std::string& dst, int count) const;
    // One TCP connect attempt that gives up after `timeout_s` (a dropped SYN and its retransmissions).
    void tcp_connect_attempt(const std::string& ns, const std::string& dst, uint16_t port, double timeout_s) const;

  private:
    std::string client_, router_, server_;
    std::string error_;
};

// A tc ingress BPF program on an interface inside a namespace, dropping IPv4 UDP to one port.
class TcUdpDrop {
  public:
    TcUdpDrop(const NetnsLab& lab, const std::string& ns, const std::string& ifname, uint16_t port);
    ~TcUdpDrop();
    TcUdpDrop(const TcUdpDrop&) = delete;
    TcUdpDrop& operator=(const TcUdpDrop&) = delete;
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }

  private:
    struct State;
    std::unique_ptr<State> state_;
    std::string error_;
};

// A background process (e.g. a TCP server or client) killed and reaped on destruction.
class BackgroundProcess {
  public:
    explicit BackgroundProcess(const std::string& command);
    ~BackgroundProcess();
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  private:
    pid_t pid_ = -1;
};

// A temporary directory removed on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace npt::capture::testing

#include "capture_netns_lab.hpp"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "bpf/netns_inspector.hpp"
#include "capture_tc_drop.skel.h"

namespace npt::capture::testing {
namespace {

std::atomic<int> g_lab_counter{0};

// Runs `fn` on a thread that entered the network namespace `ns` (setns affects the calling thread only).
template <typename Fn>
bool in_netns(const std::string& ns, Fn&& fn) {
    const int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const bool entered = run_in_netns(fd, std::forward<Fn>(fn));
    ::close(fd);
    return entered;
}

}  // namespace

CommandResult run_command(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr) {
        r.output = "popen failed";
        return r;
    }
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
        r.output.append(buf, n);
    }
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string must_run(const std::string& command) {
    CommandResult r = run_command(command);
    EXPECT_EQ(r.status, 0) << command << "\n" << r.output;
    return r.output;
}

bool have_program(const std::string& name) {
    return run_command("command -v " + name + " >/dev/null").status == 0;
}

const std::string& python() {
    static const std::string path = ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    return path;
}

NetnsLab::NetnsLab() {
    const std::string base = "npt-" + std::to_string(::getpid()) + "-" + std::to_string(g_lab_counter++);
    client_ = base + "-client";
    router_ = base + "-router";
    server_ = base + "-server";
    const std::vector<std::string> setup = {
        "ip netns add " + client_,
        "ip netns add " + router_,
        "ip netns add " + server_,
        "ip link add c0 netns " + client_ + " type veth peer name r0 netns " + router_,
        "ip link add r1 netns " + router_ + " type veth peer name s0 netns " + server_,
        "ip -n " + client_ + " addr add 10.201.1.2/24 dev c0",
        "ip -n " + client_ + " addr add fd00:201:1::2/64 dev c0 nodad",
        "ip -n " + router_ + " addr add 10.201.1.1/24 dev r0",
        "ip -n " + router_ + " addr add fd00:201:1::1/64 dev r0 nodad",
        "ip -n " + router_ + " addr add 10.201.2.1/24 dev r1",
        "ip -n " + router_ + " addr add fd00:201:2::1/64 dev r1 nodad",
        "ip -n " + server_ + " addr add 10.201.2.2/24 dev s0",
        "ip -n " + server_ + " addr add fd00:201:2::2/64 dev s0 nodad",
        "ip -n " + client_ + " link set lo up",
        "ip -n " + router_ + " link set lo up",
        "ip -n " + server_ + " link set lo up",
        "ip -n " + client_ + " link set c0 up",
        "ip -n " + router_ + " link set r0 up",
        "ip -n " + router_ + " link set r1 up",
        "ip -n " + server_ + " link set s0 up",
        "ip -n " + client_ + " route add default via 10.201.1.1",
        "ip -n " + server_ + " route add default via 10.201.2.1",
        "ip -n " + client_ + " -6 route add default via fd00:201:1::1",
        "ip -n " + server_ + " -6 route add default via fd00:201:2::1",
        in(router_, "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"),
    };
    for (const auto& cmd : setup) {
        CommandResult r = run_command(cmd);
        if (r.status != 0) {
            error_ = cmd + ": " + r.output;
            return;
        }
    }
    // Resolve neighbours up front so the first test packets do not wait for ARP/ND.
    send_icmp_echo(client_, kServerV4, 1);
}

NetnsLab::~NetnsLab() {
    for (const auto& ns : {client_, router_, server_}) {
        if (!ns.empty()) {
            run_command("ip netns del " + ns);
        }
    }
}

std::string NetnsLab::in(const std::string& ns, const std::string& command) const {
    return "ip netns exec " + ns + " " + command;
}

CommandResult NetnsLab::exec(const std::string& ns, const std::string& command) const {
    return run_command(in(ns, command));
}

std::string NetnsLab::must_exec(const std::string& ns, const std::string& command) const {
    return must_run(in(ns, command));
}

uint32_t NetnsLab::netns_inum(const std::string& ns) const {
    struct stat st {};
    if (::stat(("/run/netns/" + ns).c_str(), &st) != 0) {
        return 0;
    }
    return static_cast<uint32_t>(st.st_ino);
}

uint32_t NetnsLab::ifindex(const std::string& ns, const std::string& ifname) const {
    uint32_t index = 0;
    in_netns(ns, [&] { index = ::if_nametoindex(ifname.c_str()); });
    return index;
}

void NetnsLab::send_udp(const std::string& ns, const std::string& dst, uint16_t port, int count, uint16_t sport) const {
    const bool v6 = dst.find(':') != std::string::npos;
    const std::string script =
        "import socket\n"
        "s = socket.socket(socket.AF_INET" +
        std::string(v6 ? "6" : "") + ", socket.SOCK_DGRAM)\n" +
        (sport ? "s.bind(('', " + std::to_string(sport) + "))\n" : std::string()) + "for i in range(" +
        std::to_string(count) +
        "):\n"
        "    try:\n"
        "        s.sendto(b'netpol-trace test', ('" +
        dst + "', " + std::to_string(port) +
        "))\n"
        "    except OSError:\n"
        "        pass\n";
    must_exec(ns, python() + " -c \"" + script + "\"");
}

void NetnsLab::send_icmp_echo(const std::string& ns, const std::string& dst, int count) const {
    const std::string script =
        "import socket, struct, time\n"
        "def csum(b):\n"
        "    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))\n"
        "    s = (s >> 16) + (s & 0xffff)\n"
        "    return ~(s + (s >> 16)) & 0xffff\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "for seq in range(" +
        std::to_string(count) +
        "):\n"
        "    body = struct.pack('!BBHHH', 8, 0, 0, 0x4e50, seq) + b'netpol-trace'\n"
        "    pkt = body[:2] + struct.pack('!H', csum(body)) + body[4:]\n"
        "    s.sendto(pkt, ('" +
        dst +
        "', 0))\n"
        "    time.sleep(0.05)\n";
    must_exec(ns, python() + " -c \"" + script + "\"");
}

void NetnsLab::tcp_connect_attempt(const std::string& ns, const std::string& dst, uint16_t port,
                                   double timeout_s) const {
    const bool v6 = dst.find(':') != std::string::npos;
    const std::string script =
        "import socket\n"
        "s = socket.socket(socket.AF_INET" +
        std::string(v6 ? "6" : "") +
        ", socket.SOCK_STREAM)\n"
        "s.settimeout(" +
        std::to_string(timeout_s) +
        ")\n"
        "try:\n"
        "    s.connect(('" +
        dst + "', " + std::to_string(port) +
        "))\n"
        "except OSError:\n"
        "    pass\n";
    must_exec(ns, python() + " -c \"" + script + "\"");
}

struct TcUdpDrop::State {
    capture_tc_drop* skel = nullptr;
    std::string ns;
    int ifindex = 0;
    bool hook_created = false;
    ~State() {
        if (skel != nullptr) {
            capture_tc_drop__destroy(skel);
        }
    }
};

TcUdpDrop::TcUdpDrop(const NetnsLab& lab, const std::string& ns, const std::string& ifname, uint16_t port)
    : state_(std::make_unique<State>()) {
    state_->ns = ns;
    state_->skel = capture_tc_drop__open();
    if (state_->skel == nullptr) {
        error_ = "opening the tc test program failed";
        return;
    }
    state_->skel->rodata->drop_udp_port = port;
    if (int err = capture_tc_drop__load(state_->skel); err) {
        error_ = "loading the tc test program failed: " + std::to_string(err);
        return;
    }
    state_->ifindex = static_cast<int>(lab.ifindex(ns, ifname));
    if (state_->ifindex == 0) {
        error_ = "no interface " + ifname + " in " + ns;
        return;
    }
    in_netns(ns, [&] {
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = state_->ifindex, .attach_point = BPF_TC_INGRESS);
        int err = bpf_tc_hook_create(&hook);
        if (err && err != -EEXIST) {
            error_ = "bpf_tc_hook_create: " + std::to_string(err);
            return;
        }
        state_->hook_created = true;
        LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(state_->skel->progs.npt_test_tc_drop));
        err = bpf_tc_attach(&hook, &opts);
        if (err) {
            error_ = "bpf_tc_attach: " + std::to_string(err);
        }
    });
}

TcUdpDrop::~TcUdpDrop() {
    if (state_ && state_->hook_created) {
        // Removing the clsact qdisc removes the filter; deleting the namespace would too.
        in_netns(state_->ns, [&] {
            LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = state_->ifindex,
                        .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
            bpf_tc_hook_destroy(&hook);
        });
    }
}

BackgroundProcess::BackgroundProcess(const std::string& command) {
    pid_ = ::fork();
    if (pid_ == 0) {
        ::setpgid(0, 0);
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    if (pid_ > 0) {
        ::setpgid(pid_, pid_);
    }
}

BackgroundProcess::~BackgroundProcess() {
    if (pid_ > 0) {
        ::kill(-pid_, SIGKILL);  // the process group this object started
        ::waitpid(pid_, nullptr, 0);
    }
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/npt-capture-test.XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) {
        path_ = tmpl;
    }
}

TempDir::~TempDir() {
    if (!path_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
}

}  // namespace npt::capture::testing

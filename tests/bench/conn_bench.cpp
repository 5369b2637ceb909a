// What recording the working connections costs a node: TCP connections per second of a connect/accept loop between
// two network namespaces this benchmark creates (a client and a server on a veth pair), with no agent and with
// `netpol-trace agent` running (its TCP program on sock:inet_sock_set_state, its drop capture and its conntrack
// listener), interleaved round by round in one run; and the TCP program's BPF time per run (BPF_ENABLE_STATS), per
// state change it sees. Prints figures (goal: ratio >= 0.98); asserts nothing. Root.
//
// Usage: conn_bench [--seconds S] [--rounds N] [--agent PATH]
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <sstream>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef NPT_BINARY
#error "NPT_BINARY must name the netpol-trace binary"
#endif

namespace {

const std::string kPrefix = fmt::format("nptcb{}", ::getpid() % 100000);
const std::string kClient = kPrefix + "-c", kServer = kPrefix + "-s";
constexpr const char* kClientIp = "10.151.0.1";
constexpr const char* kServerIp = "10.151.0.2";
constexpr uint16_t kPort = 8080;

void sh(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) {
        fmt::print(stderr, "conn_bench: `{}` failed\n", cmd);
        std::exit(1);
    }
}

void cleanup() {
    (void)std::system(
        fmt::format("ip netns del {} 2>/dev/null; ip netns del {} 2>/dev/null", kClient, kServer).c_str());
}

void enter(const std::string& netns) {
    const int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fmt::print(stderr, "conn_bench: setns {}: {}\n", netns, std::strerror(errno));
        std::exit(1);
    }
    ::close(fd);
}

std::atomic<bool> stop_server{false};

void server() {
    enter(kServer);
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    inet_pton(AF_INET, kServerIp, &a.sin_addr);
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s, 4096) != 0) {
        fmt::print(stderr, "conn_bench: server: {}\n", std::strerror(errno));
        std::exit(1);
    }
    timeval tv{0, 200'000};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (!stop_server) {
        const int c = ::accept4(s, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) ::close(c);  // the server closes first: TIME_WAIT stays on its side
    }
    ::close(s);
}

// Connections completed in `seconds` by one client thread.
double connect_rate(double seconds) {
    double rate = 0;
    std::thread t([&] {
        enter(kClient);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(kPort);
        inet_pton(AF_INET, kServerIp, &a.sin_addr);
        uint64_t n = 0;
        const auto start = std::chrono::steady_clock::now();
        const auto end = start + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < end) {
            const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
                char b;
                (void)::read(c, &b, 1);  // the server's FIN
                ++n;
            }
            ::close(c);
        }
        rate = static_cast<double>(n) / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    });
    t.join();
    return rate;
}

struct Agent {
    pid_t pid = -1;
    std::string ready;
    void start(const std::string& binary) {
        ready = fmt::format("/tmp/{}.ready", kPrefix);
        std::filesystem::remove(ready);
        pid = fork();
        if (pid == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            dup2(null, 1);
            dup2(null, 2);
            execl(binary.c_str(), binary.c_str(), "agent", "--no-kubernetes", "--listen", "127.0.0.1:0", "--ready-file",
                  ready.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!std::filesystem::exists(ready)) {
            int status = 0;
            if (waitpid(pid, &status, WNOHANG) == pid || std::chrono::steady_clock::now() > deadline) {
                fmt::print(stderr, "conn_bench: the agent did not start ({})\n", binary);
                std::exit(1);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    void stop() {
        if (pid > 0) {
            kill(pid, SIGTERM);
            waitpid(pid, nullptr, 0);
        }
        pid = -1;
        std::filesystem::remove(ready);
    }
};

// The agent's TCP program: the loaded program of that name.
int find_program(const char* name) {
    uint32_t id = 0;
    while (bpf_prog_get_next_id(id, &id) == 0) {
        const int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0) continue;
        bpf_prog_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::strncmp(info.name, name, sizeof(info.name)) == 0)
            return fd;
        ::close(fd);
    }
    return -1;
}

std::pair<uint64_t, uint64_t> run_stats(int fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return {0, 0};
    return {info.run_time_ns, info.run_cnt};
}

// CPU time of a process (all its threads), user and system, in nanoseconds; 0 when unreadable.
double cpu_ns(pid_t pid) {
    std::ifstream in(fmt::format("/proc/{}/stat", pid));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos) return 0;
    std::istringstream fields(stat.substr(paren + 2));  // from field 3, the state
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::atof(f.c_str());
        if (i == 15) stime = std::atof(f.c_str());
    }
    return (utime + stime) * 1e9 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 3;
    int rounds = 5;
    std::string binary = NPT_BINARY;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--seconds" && i + 1 < argc)
            seconds = std::atof(argv[++i]);
        else if (a == "--rounds" && i + 1 < argc)
            rounds = std::atoi(argv[++i]);
        else if (a == "--agent" && i + 1 < argc)
            binary = argv[++i];
        else {
            fmt::print(stderr, "usage: conn_bench [--seconds S] [--rounds N] [--agent PATH]\n");
            return 2;
        }
    }
    if (geteuid() != 0) {
        fmt::print(stderr, "conn_bench: needs root (network namespaces, BPF)\n");
        return 1;
    }
    std::atexit(cleanup);
    signal(SIGINT, [](int) { std::exit(130); });
    cleanup();
    sh(fmt::format("ip netns add {} && ip netns add {}", kClient, kServer));
    sh(fmt::format("ip link add {0}a netns {1} type veth peer name {0}b netns {2}", kPrefix, kClient, kServer));
    sh(fmt::format("ip -n {} addr add {}/24 dev {}a && ip -n {} link set {}a up && ip -n {} link set lo up", kClient,
                   kClientIp, kPrefix, kClient, kPrefix, kClient));
    sh(fmt::format("ip -n {} addr add {}/24 dev {}b && ip -n {} link set {}b up && ip -n {} link set lo up", kServer,
                   kServerIp, kPrefix, kServer, kPrefix, kServer));
    // The server's TIME_WAIT entries are reused for new connections from the same client.
    sh(fmt::format("ip netns exec {} sysctl -qw net.ipv4.tcp_tw_reuse=1", kServer));
    std::thread srv(server);
    (void)connect_rate(0.5);  // warm up

    const int stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
    std::vector<double> none, with, ns_per_run, runs_per_conn, agent_ns_per_conn;
    Agent agent;
    for (int r = 0; r < rounds; ++r) {
        none.push_back(connect_rate(seconds));
        agent.start(binary);
        const int prog = find_program("npt_conn_btf") >= 0 ? find_program("npt_conn_btf") : find_program("npt_conn_tp");
        const auto [t0, c0] = run_stats(prog);
        const double agent0 = cpu_ns(agent.pid);
        const double rate = connect_rate(seconds);
        const auto [t1, c1] = run_stats(prog);
        agent_ns_per_conn.push_back((cpu_ns(agent.pid) - agent0) / (rate * seconds));
        with.push_back(rate);
        if (c1 > c0) {
            ns_per_run.push_back(static_cast<double>(t1 - t0) / static_cast<double>(c1 - c0));
            runs_per_conn.push_back(static_cast<double>(c1 - c0) / (rate * seconds));
        }
        if (prog >= 0) ::close(prog);
        agent.stop();
        fmt::print("round {}: {:.0f} connections/s without the agent, {:.0f} with ({:.3f})\n", r + 1, none.back(),
                   with.back(), with.back() / none.back());
    }
    stop_server = true;
    srv.join();
    std::vector<double> ratios;
    for (size_t i = 0; i < none.size(); ++i) ratios.push_back(with[i] / none[i]);
    fmt::print("TCP connect/accept between two network namespaces, {} rounds of {:.0f} s, interleaved:\n", rounds,
               seconds);
    fmt::print("  without the agent: {:.0f} connections/s (median)\n", median(none));
    fmt::print("  with the agent:    {:.0f} connections/s (median)\n", median(with));
    fmt::print("  ratio:             {:.3f} (median of the rounds' ratios; goal >= 0.98)\n", median(ratios));
    if (stats_fd < 0)
        fmt::print("  BPF time: unavailable (BPF_ENABLE_STATS: {})\n", std::strerror(errno));
    else
        fmt::print(
            "  BPF time of the TCP program: {:.0f} ns per run, {:.1f} runs (state changes of both sockets) per "
            "connection\n",
            median(ns_per_run), median(runs_per_conn));
    // What the agent adds to one connection, in CPU time, against the time one connection takes without it: the
    // figure the throughput ratio estimates, without the round-to-round swings of a shared machine.
    const double bpf_ns = stats_fd < 0 ? 0 : median(ns_per_run) * median(runs_per_conn);
    const double conn_ns = 1e9 / median(none);
    fmt::print(
        "  the agent's process: {:.0f} ns of CPU per connection (median; /proc/PID/stat, 10 ms ticks over a round)\n",
        median(agent_ns_per_conn));
    fmt::print(
        "  cost per connection: {:.0f} ns (BPF {:.0f} + agent {:.0f}) = {:.2f}% of a connection's {:.1f} us; "
        "expected ratio {:.3f}\n",
        bpf_ns + median(agent_ns_per_conn), bpf_ns, median(agent_ns_per_conn),
        100 * (bpf_ns + median(agent_ns_per_conn)) / conn_ns, conn_ns / 1e3,
        conn_ns / (conn_ns + bpf_ns + median(agent_ns_per_conn)));
    return 0;
}

// Root tests of the nftables rule tracer and the NFLOG listener against the real kernel. Each test moves
// the test thread into a network namespace of its own (unshare(CLONE_NEWNET)) and back in TearDown: rules,
// tables, NFLOG bindings and traffic (loopback only) exist only there, and the namespace disappears with its
// last socket, also when a test fails half-way or the process dies.
// Without root: skipped, except under CI=true where a skip would hide a broken runner, so they fail.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "netfilter/nflog_listener.hpp"
#include "netfilter/packet_tuple.hpp"
#include "netfilter/rule_tracer.hpp"

namespace npt::netfilter {
namespace {

using namespace std::chrono_literals;

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult run(const std::string& command) {
    CommandResult r;
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n = 0;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
    const int status = pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

bool have_program(const std::string& name) {
    return run("command -v " + name).status == 0;
}

#define NPT_REQUIRE_ROOT()                                                                             \
    do {                                                                                               \
        if (::geteuid() != 0) {                                                                        \
            if (in_ci()) {                                                                             \
                FAIL() << "netfilter tests need root (CI=true: not skipping)";                         \
            }                                                                                          \
            GTEST_SKIP() << "netfilter tests need root (network namespaces, nftables): run with sudo"; \
        }                                                                                              \
    } while (0)

#define NPT_REQUIRE_PROGRAM(name)                                              \
    do {                                                                       \
        if (!have_program(name)) {                                             \
            if (in_ci()) {                                                     \
                FAIL() << name << " is not installed (CI=true: not skipping)"; \
            }                                                                  \
            GTEST_SKIP() << name << " is not installed";                       \
        }                                                                      \
    } while (0)

// Loads an nft script; the test fails when nft rejects it.
void nft(const std::string& script) {
    char path[] = "/tmp/npt-nft-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, script.data(), script.size()), static_cast<ssize_t>(script.size()));
    close(fd);
    const auto r = run(std::string("nft -f ") + path);
    unlink(path);
    ASSERT_EQ(r.status, 0) << r.output << "\nscript:\n" << script;
}

// The handle nft shows for the rule whose line contains `needle` in `nft -a list chain ...`.
std::optional<uint64_t> handle_of(const std::string& list_command, const std::string& needle) {
    const auto r = run(list_command);
    std::istringstream lines(r.output);
    std::string line;
    const std::string marker = "# handle ";
    while (std::getline(lines, line)) {
        const auto at = line.rfind(marker);
        if (line.find(needle) == std::string::npos || at == std::string::npos) continue;
        const std::string digits = line.substr(at + marker.size());
        if (!digits.empty() && std::isdigit(static_cast<unsigned char>(digits[0]))) return std::stoull(digits);
    }
    return std::nullopt;
}

bool bring_up(const char* ifname) {
    const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    close(s);
    return ok;
}

// Sends `count` UDP datagrams from `src` (an ephemeral port) to dst:dport and returns their tuple. Send errors
// (EPERM from an output drop, ECONNREFUSED from a reject) are expected and ignored.
PacketTuple send_udp(const std::string& src, const std::string& dst, uint16_t dport, int count = 1) {
    const bool v6 = src.find(':') != std::string::npos;
    const int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    PacketTuple t;
    t.src = *IpAddr::parse(src);
    t.dst = *IpAddr::parse(dst);
    t.protocol = IPPROTO_UDP;
    t.dport = dport;
    if (s < 0) {
        ADD_FAILURE() << "socket: " << std::strerror(errno);
        return t;
    }
    sockaddr_storage local{}, remote{};
    socklen_t len = 0;
    if (v6) {
        auto* l = reinterpret_cast<sockaddr_in6*>(&local);
        auto* r = reinterpret_cast<sockaddr_in6*>(&remote);
        l->sin6_family = r->sin6_family = AF_INET6;
        inet_pton(AF_INET6, src.c_str(), &l->sin6_addr);
        inet_pton(AF_INET6, dst.c_str(), &r->sin6_addr);
        r->sin6_port = htons(dport);
        len = sizeof(sockaddr_in6);
    } else {
        auto* l = reinterpret_cast<sockaddr_in*>(&local);
        auto* r = reinterpret_cast<sockaddr_in*>(&remote);
        l->sin_family = r->sin_family = AF_INET;
        inet_pton(AF_INET, src.c_str(), &l->sin_addr);
        inet_pton(AF_INET, dst.c_str(), &r->sin_addr);
        r->sin_port = htons(dport);
        len = sizeof(sockaddr_in);
    }
    if (bind(s, reinterpret_cast<sockaddr*>(&local), len) != 0) ADD_FAILURE() << "bind: " << std::strerror(errno);
    socklen_t got = sizeof(local);
    getsockname(s, reinterpret_cast<sockaddr*>(&local), &got);
    t.sport = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&local)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&local)->sin_port);
    for (int i = 0; i < count; ++i) {
        sendto(s, "npt", 3, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&remote), len);
    }
    close(s);
    return t;
}

template <typename Source>
void drain_for(Source& source, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{source.fd(), POLLIN, 0};
        poll(&p, 1, 20);
        source.drain();
    }
}

// Polls until the source has a record of `tuple` (a copy), or `wait` passes.
template <typename Source>
auto wait_for(Source& source, const PacketTuple& tuple, std::chrono::milliseconds wait = 3000ms) {
    using Record = std::remove_cvref_t<decltype(*source.find(tuple, 0))>;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        source.drain();
        if (const auto* r = source.find(tuple, monotonic_ns(), 10'000'000'000ull)) return std::optional<Record>(*r);
        if (std::chrono::steady_clock::now() >= deadline) return std::optional<Record>();
        pollfd p{source.fd(), POLLIN, 0};
        poll(&p, 1, 20);
    }
}

std::string trace_tables() {
    const auto r = run("nft list tables");
    std::string out;
    std::istringstream lines(r.output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.find("netpol_trace_") != std::string::npos) out += line + "\n";
    }
    return out;
}

class NetfilterNetnsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NPT_REQUIRE_ROOT();
        NPT_REQUIRE_PROGRAM("nft");
        original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(original_, 0) << std::strerror(errno);
        ASSERT_EQ(unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
        ASSERT_TRUE(bring_up("lo"));
        lo_ = if_nametoindex("lo");
    }

    void TearDown() override {
        tracer_.reset();
        if (original_ >= 0) {
            EXPECT_EQ(setns(original_, CLONE_NEWNET), 0) << std::strerror(errno);
            close(original_);
        }
    }

    void open_tracer(const RuleTracerOptions& options = {}) {
        auto t = RuleTracer::open(options);
        ASSERT_TRUE(t) << t.error().message;
        tracer_ = std::move(*t);
    }

    int original_ = -1;
    uint32_t lo_ = 0;
    std::unique_ptr<RuleTracer> tracer_;
};

constexpr const char* kSimpleDrop = R"(
table inet t {
  chain output {
    type filter hook output priority 0; policy accept;
    udp dport 9999 counter drop comment "npt test drop"
  }
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport 9990 counter drop comment "npt input drop"
  }
}
)";

// UDP to `port` on output is logged to NFLOG `group` (k3s's prefix) and then dropped by a rule with `comment`.
std::string logged_drop(uint16_t port, uint16_t group, const std::string& comment) {
    const std::string match = "    udp dport " + std::to_string(port);
    return "table inet t {\n  chain output {\n    type filter hook output priority 0; policy accept;\n" + match +
           " log prefix \"DROP by policy shop/x\" group " + std::to_string(group) + "\n" + match +
           " counter drop comment \"" + comment + "\"\n  }\n}\n";
}

// (1) A native rule's drop: table, chain, the handle nft shows, the comment; on output and on input.
TEST_F(NetfilterNetnsTest, NativeRuleDrop) {
    nft(kSimpleDrop);
    open_tracer();
    const auto tuple = send_udp("127.0.0.1", "127.0.0.1", 9999);
    const auto d = wait_for(*tracer_, tuple);
    ASSERT_TRUE(d) << "no verdict; stats: messages " << tracer_->stats().messages;
    EXPECT_EQ(d->family, "inet");
    EXPECT_EQ(d->table, "t");
    EXPECT_EQ(d->chain, "output");
    EXPECT_EQ(d->handle, handle_of("nft -a list chain inet t output", "npt test drop"));
    EXPECT_TRUE(d->handle.has_value());
    EXPECT_EQ(d->comments, std::vector<std::string>{"npt test drop"});
    EXPECT_FALSE(d->chain_policy);
    EXPECT_EQ(d->path, std::vector<std::string>{"output"});
    EXPECT_TRUE(d->jump_comments.empty());
    EXPECT_EQ(d->oif, lo_);

    const auto in = send_udp("127.0.0.1", "127.0.0.1", 9990);
    const auto di = wait_for(*tracer_, in);
    ASSERT_TRUE(di);
    EXPECT_EQ(di->chain, "input");
    EXPECT_EQ(di->handle, handle_of("nft -a list chain inet t input", "npt input drop"));
    EXPECT_EQ(di->comments, std::vector<std::string>{"npt input drop"});
    EXPECT_EQ(di->iif, lo_);
    EXPECT_EQ(tracer_->stats().lookup_failures, 0u);
}

// (2) A jump into a policy chain that drops; a chain entered and left before it is reported as returned.
TEST_F(NetfilterNetnsTest, JumpToPolicyChain) {
    nft(R"(
table inet t {
  chain audit {
    udp dport 9999 counter
  }
  chain pol {
    udp dport 9999 counter drop comment "npt test drop"
  }
  chain output {
    type filter hook output priority 0; policy accept;
    udp dport 9999 jump audit comment "audit first"
    udp dport 9999 jump pol comment "run through nw policy shop/x"
  }
}
)");
    open_tracer();
    const auto d = wait_for(*tracer_, send_udp("127.0.0.1", "127.0.0.1", 9999));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->chain, "pol");
    EXPECT_EQ(d->path, (std::vector<std::string>{"output", "pol"}));
    ASSERT_EQ(d->jump_comments.size(), 1u);
    EXPECT_EQ(d->jump_comments[0], std::vector<std::string>{"run through nw policy shop/x"});
    EXPECT_EQ(d->comments, std::vector<std::string>{"npt test drop"});
    EXPECT_EQ(d->returned, (std::vector<ReturnedChain>{{"audit", {"audit first"}}}));
}

// (3) iptables-nft rules: -j REJECT (an xt target returning NF_DROP) and -j DROP, with -m comment.
TEST_F(NetfilterNetnsTest, IptablesNftRules) {
    NPT_REQUIRE_PROGRAM("iptables-nft");
    for (const char* rule : {"-A OUTPUT -p udp --dport 9998 -m comment --comment 'ipt comment' -m comment --comment "
                             "'second' -j REJECT",
                             "-A OUTPUT -p udp --dport 9997 -m comment --comment 'ipt drop' -j DROP"}) {
        const auto r = run(std::string("iptables-nft ") + rule);
        ASSERT_EQ(r.status, 0) << r.output;
    }
    open_tracer();
    const auto reject = wait_for(*tracer_, send_udp("127.0.0.1", "127.0.0.1", 9998));
    ASSERT_TRUE(reject);
    EXPECT_EQ(reject->family, "ip");
    EXPECT_EQ(reject->table, "filter");
    EXPECT_EQ(reject->chain, "OUTPUT");
    EXPECT_EQ(reject->comments, (std::vector<std::string>{"ipt comment", "second"}));  // every comment match
    EXPECT_EQ(reject->path, std::vector<std::string>{"OUTPUT"});
    EXPECT_EQ(reject->handle, handle_of("nft -a list chain ip filter OUTPUT", "9998"));

    const auto drop = wait_for(*tracer_, send_udp("127.0.0.1", "127.0.0.1", 9997));
    ASSERT_TRUE(drop);
    EXPECT_EQ(drop->comments, std::vector<std::string>{"ipt drop"});
    EXPECT_TRUE(drop->handle.has_value());
}

// (4) A base chain's policy drops: no rule, no handle.
TEST_F(NetfilterNetnsTest, ChainPolicyDrop) {
    nft(R"(
table inet t {
  chain output {
    type filter hook output priority 0; policy drop;
    udp dport 53 accept
  }
}
)");
    open_tracer();
    const auto d = wait_for(*tracer_, send_udp("127.0.0.1", "127.0.0.1", 9999));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->chain_policy);
    EXPECT_FALSE(d->handle.has_value());
    EXPECT_TRUE(d->comments.empty());
    EXPECT_EQ(d->chain, "output");
    EXPECT_EQ(d->table, "t");
}

// (5) IPv6.
TEST_F(NetfilterNetnsTest, Ipv6Drop) {
    nft(kSimpleDrop);
    open_tracer();
    const auto d = wait_for(*tracer_, send_udp("::1", "::1", 9999));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->family, "inet");
    EXPECT_EQ(d->chain, "output");
    EXPECT_EQ(d->comments, std::vector<std::string>{"npt test drop"});
}

// (6) set_watched: only packets from or to watched IPs are traced; `everything` traces all again.
TEST_F(NetfilterNetnsTest, SetWatchedNarrows) {
    nft(kSimpleDrop);
    open_tracer();
    auto ok = tracer_->set_watched({*IpAddr::parse("127.0.0.2"), *IpAddr::parse("fd00::2")}, false);
    ASSERT_TRUE(ok) << ok.error().message;

    const auto watched = send_udp("127.0.0.2", "127.0.0.2", 9999);
    const auto unwatched = send_udp("127.0.0.3", "127.0.0.3", 9999);
    const auto to_watched = send_udp("127.0.0.3", "127.0.0.2", 9999);
    EXPECT_TRUE(wait_for(*tracer_, watched));
    EXPECT_TRUE(wait_for(*tracer_, to_watched));
    drain_for(*tracer_, 300ms);
    EXPECT_FALSE(tracer_->find(unwatched, monotonic_ns(), 10'000'000'000ull));

    ok = tracer_->set_watched({}, true);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(wait_for(*tracer_, send_udp("127.0.0.3", "127.0.0.3", 9999)));

    ok = tracer_->set_watched({}, false);  // nothing watched: nothing traced
    ASSERT_TRUE(ok) << ok.error().message;
    const auto none = send_udp("127.0.0.2", "127.0.0.2", 9999);
    drain_for(*tracer_, 300ms);
    EXPECT_FALSE(tracer_->find(none, monotonic_ns(), 10'000'000'000ull));
}

// Paused, the tracer keeps its table and sets but no rule sets nftrace (the kernel's per-rule trace checks are off);
// resumed, it traces again, with the watched IPs it had.
TEST_F(NetfilterNetnsTest, PauseAndResume) {
    nft(kSimpleDrop);
    open_tracer();
    auto ok = tracer_->set_watched({*IpAddr::parse("127.0.0.2")}, false);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(tracer_->armed());

    ok = tracer_->set_armed(false);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_FALSE(tracer_->armed());
    const auto listing = run("nft list table inet " + tracer_->table_name());
    EXPECT_EQ(listing.output.find("nftrace"), std::string::npos) << listing.output;
    EXPECT_NE(listing.output.find("127.0.0.2"), std::string::npos) << listing.output;
    const auto paused = send_udp("127.0.0.2", "127.0.0.2", 9999);
    drain_for(*tracer_, 300ms);
    EXPECT_FALSE(tracer_->find(paused, monotonic_ns(), 10'000'000'000ull));

    ok = tracer_->set_armed(true);
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_TRUE(wait_for(*tracer_, send_udp("127.0.0.2", "127.0.0.2", 9999)));
    const auto unwatched = send_udp("127.0.0.3", "127.0.0.3", 9999);
    drain_for(*tracer_, 300ms);
    EXPECT_FALSE(tracer_->find(unwatched, monotonic_ns(), 10'000'000'000ull));
}

// (7) The tracer's table goes away with the tracer, and with a killed process (owner flag).
TEST_F(NetfilterNetnsTest, TableRemovedOnDestructionAndOnKill) {
    open_tracer();
    EXPECT_NE(trace_tables().find(tracer_->table_name()), std::string::npos);
    tracer_.reset();
    EXPECT_EQ(trace_tables(), "");

    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(ready[0]);
        auto t = RuleTracer::open({});
        const char status = t ? 'y' : 'n';
        if (write(ready[1], &status, 1) != 1) _exit(2);
        for (;;) pause();
    }
    close(ready[1]);
    char status = 0;
    ASSERT_EQ(read(ready[0], &status, 1), 1);
    close(ready[0]);
    EXPECT_EQ(status, 'y');
    EXPECT_NE(trace_tables().find("netpol_trace_" + std::to_string(child)), std::string::npos);
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    std::string left = trace_tables();
    for (int i = 0; i < 50 && !left.empty(); ++i) {
        std::this_thread::sleep_for(20ms);
        left = trace_tables();
    }
    EXPECT_EQ(left, "");
}

// The default table name is taken (a tracer with our pid in another pid namespace): the next free one is used.
TEST_F(NetfilterNetnsTest, TakenDefaultNameAndCustomName) {
    const std::string taken = "netpol_trace_" + std::to_string(getpid());
    nft("table inet " + taken + " {\n}\n" + kSimpleDrop);
    open_tracer();
    EXPECT_EQ(tracer_->table_name(), taken + "_1");
    EXPECT_TRUE(wait_for(*tracer_, send_udp("127.0.0.1", "127.0.0.1", 9999)));
    tracer_.reset();
    EXPECT_EQ(trace_tables(), "table inet " + taken + "\n");
    run("nft delete table inet " + taken);

    // Taken by a live tracer (an owner table: creating it again fails with EPERM, not EEXIST).
    RuleTracerOptions same_name;
    same_name.table = taken;
    auto first = RuleTracer::open(same_name);
    ASSERT_TRUE(first) << first.error().message;
    open_tracer();
    EXPECT_EQ(tracer_->table_name(), taken + "_1");
    tracer_.reset();
    first = Error{"closed"};
    EXPECT_EQ(trace_tables(), "");

    RuleTracerOptions options;
    options.table = "my_trace";
    open_tracer(options);
    EXPECT_EQ(tracer_->table_name(), "my_trace");
    EXPECT_NE(run("nft list tables").output.find("table inet my_trace"), std::string::npos);
    auto again = RuleTracer::open(options);
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message.find("already exists"), std::string::npos) << again.error().message;
    tracer_.reset();
    EXPECT_EQ(run("nft list tables").output.find("my_trace"), std::string::npos);
}

// (8) NFLOG: the record of a logged-then-dropped packet joins by tuple; a second listener is told the group is
// busy.
TEST_F(NetfilterNetnsTest, NflogRecordAndBusyGroup) {
    nft(logged_drop(9996, 100, "npt nflog drop"));
    bool busy = true;
    auto listener = NflogListener::open(100, &busy);
    ASSERT_TRUE(listener) << listener.error().message;
    EXPECT_FALSE(busy);
    open_tracer();

    const auto tuple = send_udp("127.0.0.1", "127.0.0.1", 9996);
    const auto record = wait_for(**listener, tuple);
    ASSERT_TRUE(record) << "records " << (*listener)->stats().records;
    EXPECT_EQ(record->prefix, "DROP by policy shop/x");
    EXPECT_EQ(record->group, 100);
    EXPECT_EQ(record->outdev, lo_);
    EXPECT_EQ((*listener)->group(), 100);
    const auto drop = wait_for(*tracer_, tuple);
    ASSERT_TRUE(drop);
    EXPECT_EQ(drop->comments, std::vector<std::string>{"npt nflog drop"});

    bool busy2 = false;
    auto second = NflogListener::open(100, &busy2);
    ASSERT_FALSE(second);
    EXPECT_TRUE(busy2);
    EXPECT_EQ(second.error().message.find('\n'), std::string::npos);
    EXPECT_NE(second.error().message.find("held by another listener"), std::string::npos) << second.error().message;

    // Once the first listener is gone (unbound), the group is free again.
    listener = Error{"closed"};
    auto third = NflogListener::open(100);
    EXPECT_TRUE(third) << third.error().message;
}

// A stalled consumer: drops traced and logged while nobody reads, read 5 s later, still join the drop's kernel time
// (here the moment the packets were sent: the kernel dropped them in sendto()). Stamped when read, they would lie
// 5 s from it, beyond the 2 s window the tail joins within.
TEST_F(NetfilterNetnsTest, DelayedReaderStillJoinsEveryRecord) {
    nft(logged_drop(9995, 101, "npt delayed drop"));
    auto listener = NflogListener::open(101);
    ASSERT_TRUE(listener) << listener.error().message;
    open_tracer();
    tracer_->drain();
    (*listener)->drain();

    std::vector<std::pair<PacketTuple, uint64_t>> sent;  // the tuple and a time just after its drop
    for (int i = 0; i < 8; ++i) {
        const auto tuple = send_udp("127.0.0.1", "127.0.0.1", 9995);
        sent.emplace_back(tuple, monotonic_ns());
    }
    std::this_thread::sleep_for(5s);  // the consumer stalls: nothing reads the sockets
    tracer_->drain();
    (*listener)->drain();
    for (const auto& [tuple, dropped_at] : sent) {
        const auto* d = tracer_->find(tuple, dropped_at);
        ASSERT_NE(d, nullptr) << "sport " << tuple.sport << ": not joined; " << tracer_->stats().drops << " verdicts";
        EXPECT_EQ(d->comments, std::vector<std::string>{"npt delayed drop"});
        const auto* n = (*listener)->find(tuple, dropped_at);
        ASSERT_NE(n, nullptr) << "sport " << tuple.sport << ": no NFLOG record joined";
        EXPECT_EQ(n->prefix, "DROP by policy shop/x");
    }
}

// (9) The shared rate limit bounds the verdicts of a burst.
TEST_F(NetfilterNetnsTest, RateLimit) {
    nft(kSimpleDrop);
    RuleTracerOptions options;
    options.rate_per_second = 5;
    open_tracer(options);
    send_udp("127.0.0.1", "127.0.0.1", 9999, 200);
    drain_for(*tracer_, 500ms);
    const auto drops = tracer_->stats().drops;
    RecordProperty("traced_drops", static_cast<int>(drops));
    EXPECT_GE(drops, 1u);
    EXPECT_LE(drops, 20u);
}

// Without CAP_NET_ADMIN both say so in one line.
TEST_F(NetfilterNetnsTest, UnprivilegedErrors) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(out[0]);
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(2);
        auto t = RuleTracer::open({});
        auto l = NflogListener::open(100);
        const std::string msg = (t ? std::string("opened") : t.error().message) + "\n" +
                                (l ? std::string("opened") : l.error().message) + "\n";
        if (write(out[1], msg.data(), msg.size()) < 0) _exit(3);
        _exit(0);
    }
    close(out[1]);
    std::string text;
    char buf[512];
    ssize_t n = 0;
    while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_EQ(text,
              "--rule-trace needs CAP_NET_ADMIN (run as root)\n--nflog-group 100 needs CAP_NET_ADMIN (run as root)\n");
    EXPECT_EQ(trace_tables(), "");
}

}  // namespace
}  // namespace npt::netfilter

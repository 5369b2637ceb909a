// Root tests of the drop capture against real drops: each test builds its own namespaces (capture_netns_lab),
// installs one dataplane rule, sends a bounded number of packets and checks what the capture reports.
// Without root: skipped, except under CI=true where a skip would hide a broken runner, so they fail.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "capture_netns_lab.hpp"
#include "drop_capture.hpp"

namespace npt::capture {
namespace {

using testing::BackgroundProcess;
using testing::NetnsLab;
using testing::TcUdpDrop;
using testing::TempDir;
using namespace std::chrono_literals;

// Keeps the calling thread, and the processes it starts, on one CPU for the scope: every drop they cause then
// meets the same per-CPU flow cache slots.
class PinnedToOneCpu {
  public:
    PinnedToOneCpu() {
        if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) {
            return;
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &saved_)) {
                CPU_SET(cpu, &one);
                break;
            }
        }
        pinned_ = sched_setaffinity(0, sizeof(one), &one) == 0;
    }
    ~PinnedToOneCpu() {
        if (pinned_) {
            sched_setaffinity(0, sizeof(saved_), &saved_);
        }
    }
    PinnedToOneCpu(const PinnedToOneCpu&) = delete;
    PinnedToOneCpu& operator=(const PinnedToOneCpu&) = delete;
    bool pinned() const { return pinned_; }

  private:
    cpu_set_t saved_{};
    bool pinned_ = false;
};

bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

#define NPT_REQUIRE_ROOT()                                                                      \
    do {                                                                                        \
        if (::geteuid() != 0) {                                                                 \
            if (in_ci()) {                                                                      \
                FAIL() << "capture tests need root (CI=true: not skipping)";                    \
            }                                                                                   \
            GTEST_SKIP() << "capture tests need root (network namespaces, BPF): run with sudo"; \
        }                                                                                       \
    } while (0)

#define NPT_REQUIRE_PROGRAM(name)                                              \
    do {                                                                       \
        if (!testing::have_program(name)) {                                    \
            if (in_ci()) {                                                     \
                FAIL() << name << " is not installed (CI=true: not skipping)"; \
            }                                                                  \
            GTEST_SKIP() << name << " is not installed";                       \
        }                                                                      \
    } while (0)

// An event's address as text; "" for a packet that is not IP.
std::string text(const std::optional<IpAddr>& ip) {
    return ip ? ip->str() : "";
}

struct FlowMatch {
    std::string src;
    std::string dst;
    uint8_t protocol = 0;
    uint16_t dport = 0;       // ignored for ICMP
    uint32_t netns_inum = 0;  // 0: any

    bool operator()(const DropEvent& e) const {
        return text(e.src) == src && text(e.dst) == dst && e.protocol == protocol &&
               (protocol == 1 || protocol == 58 || e.dport == dport) && (netns_inum == 0 || e.netns_inum == netns_inum);
    }
};

class CaptureNetnsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NPT_REQUIRE_ROOT();
        lab_ = std::make_unique<NetnsLab>();
        ASSERT_TRUE(lab_->ok()) << lab_->error();
    }

    void TearDown() override {
        capture_.reset();
        lab_.reset();
    }

    // Opens the capture into capture_ (fails the test when it cannot).
    void open_capture(const CaptureOptions& options = {}) {
        auto opened = DropCapture::open(options);
        ASSERT_TRUE(opened) << opened.error().message;
        capture_ = std::move(*opened);
        drain(100ms);
        events_.clear();
    }

    // Polls for `wait`, keeping every event.
    void drain(std::chrono::milliseconds wait) {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < deadline) {
            capture_->poll(50, [&](const DropEvent& e) { events_.push_back(e); });
        }
    }

    // Polls until an event matches (or `wait` passes), then a little longer to catch duplicates.
    std::vector<DropEvent> events_for(const FlowMatch& match, std::chrono::milliseconds wait = 3000ms) {
        const auto deadline = std::chrono::steady_clock::now() + wait;
        auto matching = [&] {
            std::vector<DropEvent> out;
            for (const auto& e : events_) {
                if (match(e)) {
                    out.push_back(e);
                }
            }
            return out;
        };
        while (matching().empty() && std::chrono::steady_clock::now() < deadline) {
            capture_->poll(50, [&](const DropEvent& e) { events_.push_back(e); });
        }
        drain(300ms);
        return matching();
    }

    static std::vector<DropEvent> of_kind(const std::vector<DropEvent>& events, EventKind kind) {
        std::vector<DropEvent> out;
        for (const auto& e : events) {
            if (e.kind == kind) {
                out.push_back(e);
            }
        }
        return out;
    }

    // The one new-flow event of a flow (the test fails if there is not exactly one).
    DropEvent single_new_flow(const FlowMatch& match) {
        const auto events = of_kind(events_for(match), EventKind::kNewFlow);
        EXPECT_EQ(events.size(), 1u) << "new-flow events for " << match.src << " -> " << match.dst << ":"
                                     << match.dport;
        return events.empty() ? DropEvent{} : events.front();
    }

    uint64_t count_of(const DropEvent& e) {
        const auto c = capture_->counts(e.key);
        return c ? c->count : 0;
    }

    std::unique_ptr<NetnsLab> lab_;
    std::unique_ptr<DropCapture> capture_;
    std::vector<DropEvent> events_;
};

// A chain that uses conntrack, as real nodes have, so connections are tracked from their first packet.
void add_forward_chain(const NetnsLab& lab, const std::string& family = "inet") {
    lab.must_exec(lab.router(), "nft add table " + family + " npt_test");
    lab.must_exec(lab.router(),
                  "nft 'add chain " + family +
                      " npt_test forward_filter { type filter hook forward priority 0; policy accept; }'");
    lab.must_exec(lab.router(), "nft add rule " + family + " npt_test forward_filter ct state related counter");
}

TEST_F(CaptureNetnsTest, NftablesForwardDropOfUdpIsOneFlowWithExactCount) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter udp dport 9999 drop");
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9999, 5, 40001);

    const FlowMatch flow{NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9999, lab_->netns_inum(lab_->router())};
    const DropEvent e = single_new_flow(flow);
    EXPECT_EQ(e.reason, "NETFILTER_DROP");
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
    EXPECT_EQ(e.backend, "nftables");
    EXPECT_EQ(e.protocol_name, "udp");
    EXPECT_EQ(e.sport, 40001);
    EXPECT_EQ(e.ct_state, "new");
    EXPECT_FALSE(e.original_dst.has_value());
    EXPECT_EQ(e.ingress_ifindex, lab_->ifindex(lab_->router(), "r0"));
    EXPECT_EQ(e.ifindex, lab_->ifindex(lab_->router(), "r0"));
    EXPECT_EQ(e.ifname, "r0");  // looked up inside the router's netns
    EXPECT_FALSE(e.netns_from_socket);
    EXPECT_NE(e.location_symbol.find("nft_do_chain"), std::string::npos) << e.location_symbol;
    EXPECT_FALSE(e.stack.empty());
    EXPECT_EQ(e.count, 1u);
    EXPECT_EQ(count_of(e), 5u);
    const auto counts = capture_->counts(e.key);
    ASSERT_TRUE(counts.has_value());
    EXPECT_EQ(counts->last_sport, 40001);
    EXPECT_EQ(counts->ct_state, "new");
    EXPECT_GE(counts->last_ns, counts->first_ns);

    bool listed = false;
    capture_->for_each_flow([&](const FlowKey& k, const FlowCounts& c) {
        if (k == e.key) {
            listed = true;
            EXPECT_EQ(c.count, 5u);
        }
    });
    EXPECT_TRUE(listed);
    const auto stats = capture_->stats();
    EXPECT_EQ(stats.lost_events, 0u);
    EXPECT_EQ(stats.lru_evictions, 0u);
    EXPECT_GE(stats.flows_tracked, 1u);
}

TEST_F(CaptureNetnsTest, NftablesInputDropOfTcpSynIsNewConnection) {
    lab_->must_exec(lab_->router(), "nft add table inet npt_test");
    lab_->must_exec(lab_->router(),
                    "nft 'add chain inet npt_test input_filter { type filter hook input priority 0; policy accept; }'");
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test input_filter ct state established,related accept");
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test input_filter tcp dport 8443 drop");
    open_capture();

    lab_->tcp_connect_attempt(lab_->client(), NetnsLab::kRouterClientSideV4, 8443, 1.5);

    const DropEvent e = single_new_flow(
        {NetnsLab::kClientV4, NetnsLab::kRouterClientSideV4, 6, 8443, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.reason, "NETFILTER_DROP");
    EXPECT_EQ(e.enforcement, "netfilter/INPUT");
    EXPECT_EQ(e.backend, "nftables");
    EXPECT_EQ(e.protocol_name, "tcp");
    EXPECT_TRUE(e.tcp_flags & 0x02) << "SYN expected, flags " << int(e.tcp_flags);
    EXPECT_FALSE(e.tcp_flags & 0x10) << "no ACK in a SYN";
    EXPECT_EQ(e.ct_state, "new");
    EXPECT_GE(count_of(e), 1u);  // the SYN and its retransmissions within the timeout
}

TEST_F(CaptureNetnsTest, IptablesLegacyForwardDropNamesTheBackend) {
    NPT_REQUIRE_PROGRAM("iptables-legacy");
    lab_->must_exec(lab_->router(), "iptables-legacy -A FORWARD -p udp --dport 9995 -j DROP");
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9995, 5);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9995, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.reason, "NETFILTER_DROP");
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
    EXPECT_EQ(e.backend, "iptables-legacy");
    EXPECT_NE(e.location_symbol.find("nf_hook_slow"), std::string::npos) << e.location_symbol;
    EXPECT_EQ(count_of(e), 5u);
}

// An NFQUEUE dataplane (kube-network-policies) decides in userspace; a queued packet that is not accepted is freed
// with reason NOT_SPECIFIED in the queue code, which the default reason filter keeps as a policy drop. Here nothing
// listens on the queue (no bypass), so every queued packet is dropped where the kernel queues it.
TEST_F(CaptureNetnsTest, NfqueueDropIsKeptByTheDefaultFilter) {
    NPT_REQUIRE_PROGRAM("iptables");
    lab_->must_exec(lab_->router(), "iptables -A FORWARD -p udp --dport 9994 -j NFQUEUE --queue-num 4242");
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9994, 4);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9994, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.enforcement, "netfilter/QUEUE");
    EXPECT_EQ(e.backend, "nfqueue");
    EXPECT_NE(e.location_symbol.find("nf_queue"), std::string::npos) << e.location_symbol;
    EXPECT_EQ(count_of(e), 4u);
}

TEST_F(CaptureNetnsTest, TcIngressDropIsAttributedToTc) {
    TcUdpDrop tc(*lab_, lab_->router(), "r0", 9998);
    ASSERT_TRUE(tc.ok()) << tc.error();
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9998, 5);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9998, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.reason, "TC_INGRESS");
    EXPECT_EQ(e.enforcement, "tc/ingress");
    EXPECT_EQ(e.backend, "tc");
    EXPECT_EQ(e.ifindex, lab_->ifindex(lab_->router(), "r0"));
    EXPECT_EQ(count_of(e), 5u);
}

TEST_F(CaptureNetnsTest, OutputDropInsidePodTakesNetnsFromSocket) {
    lab_->must_exec(lab_->client(), "nft add table inet pod");
    lab_->must_exec(lab_->client(),
                    "nft 'add chain inet pod output_filter { type filter hook output priority 0; policy accept; }'");
    lab_->must_exec(lab_->client(), "nft add rule inet pod output_filter udp dport 9997 drop");
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9997, 5);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9997, lab_->netns_inum(lab_->client())});
    EXPECT_EQ(e.reason, "NETFILTER_DROP");
    EXPECT_EQ(e.enforcement, "netfilter/OUTPUT");
    EXPECT_EQ(e.backend, "nftables");
    EXPECT_TRUE(e.netns_from_socket);
    EXPECT_EQ(e.ifindex, 0u);
    EXPECT_EQ(e.ingress_ifindex, 0u);
    EXPECT_EQ(count_of(e), 5u);
}

TEST_F(CaptureNetnsTest, Ipv6ForwardDrop) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(),
                    "nft add rule inet npt_test forward_filter ip6 daddr fd00:201:2::2 udp dport 9994 drop");
    open_capture();

    lab_->send_udp(lab_->client(), NetnsLab::kServerV6, 9994, 5);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV6, NetnsLab::kServerV6, 17, 9994, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.src->family, IpFamily::V6);
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
    EXPECT_EQ(e.backend, "nftables");
    EXPECT_EQ(e.ct_state, "new");
    EXPECT_EQ(count_of(e), 5u);
}

TEST_F(CaptureNetnsTest, IcmpEchoDropCarriesTypeAndCode) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter icmp type echo-request drop");
    open_capture();

    lab_->send_icmp_echo(lab_->client(), NetnsLab::kServerV4, 3);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 1, 0, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.protocol_name, "icmp");
    EXPECT_EQ(e.icmp_type, 8);
    EXPECT_EQ(e.icmp_code, 0);
    EXPECT_EQ(count_of(e), 3u);
}

TEST_F(CaptureNetnsTest, EstablishedConnectionDroppedLaterReportsEstablished) {
    add_forward_chain(*lab_);
    TempDir dir;
    ASSERT_FALSE(dir.path().empty());
    const std::string connected = dir.path() + "/connected";
    const std::string go = dir.path() + "/go";
    BackgroundProcess server(lab_->in(lab_->server(), testing::python() +
                                                          " -c \"\nimport socket\ns = socket.socket()\n"
                                                          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                                          "s.bind(('0.0.0.0', 8081))\ns.listen(1)\nc, _ = s.accept()\n"
                                                          "while c.recv(4096):\n    pass\n\""));
    std::this_thread::sleep_for(300ms);
    BackgroundProcess client(lab_->in(lab_->client(), testing::python() +
                                                          " -c \"\nimport os, socket, time\n"
                                                          "s = socket.create_connection(('" +
                                                          std::string(NetnsLab::kServerV4) +
                                                          "', 8081), timeout=5)\n"
                                                          "open('" +
                                                          connected +
                                                          "', 'w').close()\n"
                                                          "while not os.path.exists('" +
                                                          go +
                                                          "'):\n    time.sleep(0.05)\n"
                                                          "s.send(b'hello after the rule')\ntime.sleep(5)\n\""));
    for (int i = 0; i < 100 && !std::filesystem::exists(connected); ++i) {
        std::this_thread::sleep_for(50ms);
    }
    ASSERT_TRUE(std::filesystem::exists(connected)) << "the test TCP connection did not come up";

    lab_->must_exec(lab_->router(),
                    "nft add rule inet npt_test forward_filter tcp dport 8081 ct state established drop");
    open_capture();
    testing::must_run("touch " + go);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 6, 8081, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.ct_state, "established");
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
    EXPECT_TRUE(e.tcp_flags & 0x10) << "ACK expected, flags " << int(e.tcp_flags);
    EXPECT_GE(count_of(e), 1u);
}

TEST_F(CaptureNetnsTest, IpFilterKeepsOnlyWatchedAddresses) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter udp dport 9993 drop");
    lab_->must_exec(lab_->router(),
                    "nft 'add chain inet npt_test input_filter { type filter hook input priority 0; policy accept; }'");
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test input_filter udp dport 9992 drop");
    CaptureOptions options;
    options.ip_filter = true;
    open_capture(options);
    const PinnedToOneCpu pin;
    ASSERT_TRUE(pin.pinned());
    ASSERT_TRUE(capture_->set_watched_ips({*IpAddr::parse(NetnsLab::kServerV4)}));

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9993, 5);            // dst watched
    lab_->send_udp(lab_->client(), NetnsLab::kRouterClientSideV4, 9992, 5);  // neither end watched

    const FlowMatch watched{NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9993, lab_->netns_inum(lab_->router())};
    const FlowMatch unwatched{NetnsLab::kClientV4, NetnsLab::kRouterClientSideV4, 17, 9992,
                              lab_->netns_inum(lab_->router())};
    const DropEvent e = single_new_flow(watched);
    EXPECT_EQ(count_of(e), 5u);
    EXPECT_TRUE(events_for(unwatched, 500ms).empty()) << "a drop between unwatched addresses was reported";
    EXPECT_GE(capture_->stats().ip_filtered, 5u);

    // Unwatching the server forgets its flows; watching the client then reports the INPUT drops.
    ASSERT_TRUE(capture_->set_watched_ips({*IpAddr::parse(NetnsLab::kClientV4)}));
    EXPECT_EQ(count_of(e), 5u) << "still watched through its source";
    ASSERT_TRUE(capture_->set_watched_ips({}));
    EXPECT_FALSE(capture_->counts(e.key).has_value());
    ASSERT_TRUE(capture_->set_watched_ips({*IpAddr::parse(NetnsLab::kClientV4)}));
    lab_->send_udp(lab_->client(), NetnsLab::kRouterClientSideV4, 9992, 2);
    const DropEvent input = single_new_flow(unwatched);
    EXPECT_EQ(input.enforcement, "netfilter/INPUT");
    EXPECT_EQ(count_of(input), 2u);

    // The program saw the purge: the server's flow, dropped again on the CPU whose cache slot held it, is a new
    // flow counted from zero (a slot of the old generation would absorb its drops without an event).
    events_.clear();
    ASSERT_TRUE(capture_->set_watched_ips({*IpAddr::parse(NetnsLab::kClientV4), *IpAddr::parse(NetnsLab::kServerV4)}));
    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9993, 3);
    const DropEvent again = single_new_flow(watched);
    EXPECT_EQ(count_of(again), 3u);
}

TEST_F(CaptureNetnsTest, QuietFlowThatResumesEmitsOneResumedEvent) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter udp dport 9991 drop");
    CaptureOptions options;
    options.quiet_gap_ns = 300'000'000;
    open_capture(options);

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9991, 3);
    std::this_thread::sleep_for(800ms);
    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9991, 2);

    const FlowMatch flow{NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9991, lab_->netns_inum(lab_->router())};
    const auto all = events_for(flow);
    const auto fresh = of_kind(all, EventKind::kNewFlow);
    const auto resumed = of_kind(all, EventKind::kResumed);
    ASSERT_EQ(fresh.size(), 1u);
    ASSERT_EQ(resumed.size(), 1u);
    EXPECT_EQ(resumed[0].enforcement, "netfilter/FORWARD");
    EXPECT_GE(resumed[0].count, 2u);
    EXPECT_LE(resumed[0].count, 4u);
    EXPECT_EQ(resumed[0].first_ns, fresh[0].first_ns);
    EXPECT_EQ(count_of(fresh[0]), 5u);
}

TEST_F(CaptureNetnsTest, LruEvictionsAreCounted) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter udp dport 20000-20199 drop");
    CaptureOptions options;
    options.max_flows = 64;
    open_capture(options);

    // 200 flows (one datagram to each of 200 ports) through a 64-flow LRU.
    const std::string script =
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for p in range(20000, 20200):\n    s.sendto(b'x', ('" +
        std::string(NetnsLab::kServerV4) + "', p))\n";
    lab_->must_exec(lab_->client(), testing::python() + " -c \"" + script + "\"");
    drain(1000ms);

    size_t fresh = 0;
    for (const auto& e : events_) {
        if (e.kind == EventKind::kNewFlow && text(e.src) == NetnsLab::kClientV4 && e.dport >= 20000 &&
            e.dport < 20200) {
            ++fresh;
        }
    }
    EXPECT_EQ(fresh, 200u);
    const auto stats = capture_->stats();
    EXPECT_GE(stats.flows_inserted, 200u);
    EXPECT_LE(stats.flows_tracked, 64u);
    EXPECT_EQ(stats.lru_evictions, stats.flows_inserted - stats.flows_tracked);
    EXPECT_GE(stats.lru_evictions, 136u);
    EXPECT_EQ(stats.lost_events, 0u);
}

// A wide storm: `width` flows (destination ports of two addresses), each dropped `per_flow` times, sent round by
// round so that every drop is of another flow than the one before: the case no per-CPU cache absorbs. Every flow
// must be counted exactly, none lost; new-flow events are reported once per flow (or counted as lost when the ring
// buffer overflows between two reads).
class CaptureWideStormTest : public CaptureNetnsTest, public ::testing::WithParamInterface<std::tuple<int, bool>> {};

TEST_P(CaptureWideStormTest, EveryFlowIsCountedExactly) {
    const int width = std::get<0>(GetParam());
    const bool pinned = std::get<1>(GetParam());
    constexpr int kPerFlow = 3;
    constexpr int kFirstPort = 30000;
    const int per_address = (width + 1) / 2;
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter ip daddr 10.201.2.0/24 udp dport " +
                                        std::to_string(kFirstPort) + "-65535 drop");
    CaptureOptions options;
    options.max_flows = std::max<uint32_t>(65536, 2 * uint32_t(width));  // the storm fits: nothing is evicted
    open_capture(options);

    std::unique_ptr<PinnedToOneCpu> pin;
    if (pinned) pin = std::make_unique<PinnedToOneCpu>();
    const std::string script =
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "dests = [(a, p) for a in ('10.201.2.2', '10.201.2.3') for p in range(" +
        std::to_string(kFirstPort) + ", " + std::to_string(kFirstPort + per_address) + ")][:" + std::to_string(width) +
        "]\n"
        "for r in range(" +
        std::to_string(kPerFlow) +
        "):\n"
        "    for d in dests:\n"
        "        s.sendto(b'x', d)\n";
    lab_->must_exec(lab_->client(), testing::python() + " -c \"" + script + "\"");
    pin.reset();

    std::set<std::pair<std::string, uint16_t>> announced;
    size_t duplicates = 0;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < deadline) {
        capture_->poll(50, [&](const DropEvent& e) {
            if (e.kind == EventKind::kNewFlow && text(e.src) == NetnsLab::kClientV4 && e.dport >= kFirstPort)
                duplicates += announced.insert({text(e.dst), e.dport}).second ? 0 : 1;
        });
    }

    std::map<std::pair<std::string, uint16_t>, uint64_t> counted;
    const auto client = IpAddr::parse(NetnsLab::kClientV4);
    capture_->for_each_flow([&](const FlowKey& k, const FlowCounts& c) {
        if (k.family == NPT_AF_INET && k.dport >= kFirstPort && ip_of(k.family, k.saddr) == client) {
            counted[{ip_of(k.family, k.daddr)->str(), k.dport}] += c.count;
        }
    });
    size_t exact = 0;
    std::vector<std::string> wrong;
    for (int i = 0; i < width; ++i) {
        const std::pair<std::string, uint16_t> flow{i < per_address ? "10.201.2.2" : "10.201.2.3",
                                                    uint16_t(kFirstPort + i % per_address)};
        const auto it = counted.find(flow);
        if (it != counted.end() && it->second == kPerFlow) {
            ++exact;
        } else if (wrong.size() < 5) {
            wrong.push_back(flow.first + ":" + std::to_string(flow.second) + "=" +
                            std::to_string(it == counted.end() ? 0 : it->second));
        }
    }
    EXPECT_EQ(exact, size_t(width)) << "flows counted wrong (address:port=count), first ones: "
                                    << ::testing::PrintToString(wrong);
    EXPECT_EQ(counted.size(), size_t(width));
    const auto stats = capture_->stats();
    EXPECT_EQ(stats.lru_evictions, 0u);
    EXPECT_EQ(stats.update_errors, 0u);
    EXPECT_EQ(duplicates, 0u);
    // Events the ring buffer could not hold are counted; every other flow was announced.
    EXPECT_GE(announced.size() + stats.lost_events, size_t(width));
}

INSTANTIATE_TEST_SUITE_P(Widths, CaptureWideStormTest,
                         ::testing::Combine(::testing::Values(1024, 16384, 65536), ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<int, bool>>& info) {
                             return std::to_string(std::get<0>(info.param)) + "_flows" +
                                    (std::get<1>(info.param) ? "_one_cpu" : "_any_cpu");
                         });

TEST_F(CaptureNetnsTest, SelectedReasonsFilterOthersOut) {
    TcUdpDrop tc(*lab_, lab_->router(), "r0", 9990);
    ASSERT_TRUE(tc.ok()) << tc.error();
    CaptureOptions options;
    options.reasons = {"SKB_DROP_REASON_NETFILTER_DROP"};  // not TC_INGRESS
    open_capture(options);
    EXPECT_EQ(capture_->selected_reasons(), std::vector<std::string>{"NETFILTER_DROP"});

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9990, 3);

    EXPECT_TRUE(events_for({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9990, 0}, 800ms).empty());
}

TEST(CaptureKernel, HzCalibrationAgreesWithTheConfig) {
    NPT_REQUIRE_ROOT();
    const auto configured = detect_kernel_hz();  // /boot/config-* or /proc/config.gz when present
    const auto calibrated = calibrate_kernel_hz();
    ASSERT_TRUE(calibrated.has_value()) << "/proc/timer_list calibration failed";
    if (configured) {
        EXPECT_EQ(*calibrated, *configured);
    }
}

// Every program variant of the object: tp_btf with bpf_rdonly_cast, tp_btf with probe reads, raw_tp and the
// classic tracepoint (which mounts tracefs if needed and unmounts it after).
struct Variant {
    AttachMode mode;
    bool rdonly_cast;
    const char* program;
};

class CaptureVariantTest : public CaptureNetnsTest, public ::testing::WithParamInterface<Variant> {
  protected:
    CaptureOptions variant_options() const {
        CaptureOptions o;
        o.force_mode = GetParam().mode;
        o.use_rdonly_cast = GetParam().rdonly_cast;
        return o;
    }
};

TEST_P(CaptureVariantTest, ForwardDropCountsAndAttribution) {
    add_forward_chain(*lab_);
    lab_->must_exec(lab_->router(), "nft add rule inet npt_test forward_filter udp dport 9989 drop");
    open_capture(variant_options());
    EXPECT_EQ(capture_->attach_mode(), to_string(GetParam().mode));
    EXPECT_EQ(capture_->program_name(), GetParam().program);

    lab_->send_udp(lab_->client(), NetnsLab::kServerV4, 9989, 7);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 17, 9989, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.reason, "NETFILTER_DROP");
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
    EXPECT_EQ(e.backend, "nftables");
    EXPECT_EQ(e.ct_state, "new");
    EXPECT_EQ(count_of(e), 7u);
    ASSERT_FALSE(e.stack.empty());
    EXPECT_NE(e.stack.front().find("nft_do_chain"), std::string::npos) << "stack must start at the drop site";
}

TEST_P(CaptureVariantTest, DnatedDropReportsTheServiceAddress) {
    add_forward_chain(*lab_, "ip");
    lab_->must_exec(lab_->router(), "nft add rule ip npt_test forward_filter tcp dport 8080 drop");
    lab_->must_exec(lab_->router(),
                    "nft 'add chain ip npt_test prerouting_nat { type nat hook prerouting priority -100; }'");
    lab_->must_exec(
        lab_->router(),
        "nft add rule ip npt_test prerouting_nat ip daddr 10.201.2.100 tcp dport 80 dnat to 10.201.2.2:8080");
    open_capture(variant_options());

    lab_->tcp_connect_attempt(lab_->client(), "10.201.2.100", 80, 1.2);

    const DropEvent e =
        single_new_flow({NetnsLab::kClientV4, NetnsLab::kServerV4, 6, 8080, lab_->netns_inum(lab_->router())});
    EXPECT_EQ(e.ct_state, "new");
    ASSERT_TRUE(e.original_dst.has_value());
    EXPECT_EQ(e.original_dst->to_string(), "10.201.2.100:80");
    EXPECT_EQ(e.enforcement, "netfilter/FORWARD");
}

INSTANTIATE_TEST_SUITE_P(Programs, CaptureVariantTest,
                         ::testing::Values(Variant{AttachMode::kTpBtf, true, "npt_kfree_skb_btf"},
                                           Variant{AttachMode::kTpBtf, false, "npt_kfree_skb_btf_compat"},
                                           Variant{AttachMode::kRawTp, true, "npt_kfree_skb_raw"},
                                           Variant{AttachMode::kTracepoint, true, "npt_kfree_skb_tp"}),
                         [](const ::testing::TestParamInfo<Variant>& info) { return std::string(info.param.program); });

}  // namespace
}  // namespace npt::capture

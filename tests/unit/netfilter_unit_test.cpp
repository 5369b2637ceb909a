// Unit tests of userspace/netfilter that need neither root nor a kernel: packet parsing (including every
// truncation of every sample), the RecentPackets join table, the trace state machine fed with synthetic
// messages, rule comments read from libnftnl rule objects, and the parsers of the kernel's netlink messages
// (trace messages, rule messages, NFLOG records) fed with well-formed and malformed ones.
#include <gtest/gtest.h>
#include <netinet/in.h>  // before the kernel headers
#include <arpa/inet.h>
#include <endian.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "netfilter/netlink_request.hpp"
#include "netfilter/nflog_listener.hpp"
#include "netfilter/nft_rule_comment.hpp"
#include "netfilter/packet_tuple.hpp"
#include "netfilter/trace_assembler.hpp"

namespace npt::netfilter {
namespace {

using Bytes = std::vector<uint8_t>;

IpAddr ip(const char* text) {
    return *IpAddr::parse(text);
}

Bytes ports(uint16_t sport, uint16_t dport, size_t total = 8) {
    Bytes l4(total, 0xaa);
    l4[0] = sport >> 8, l4[1] = sport & 0xff, l4[2] = dport >> 8, l4[3] = dport & 0xff;
    return l4;
}

// An IPv4 packet 10.0.0.1 -> 10.0.0.2; `options` bytes of NOP options; `frag` is the flags/offset field.
Bytes ipv4(uint8_t protocol, const Bytes& l4, size_t options = 0, uint16_t frag = 0) {
    Bytes p(20 + options, 0);
    p[0] = static_cast<uint8_t>(0x40 | ((20 + options) / 4));
    const size_t total = p.size() + l4.size();
    p[2] = total >> 8, p[3] = total & 0xff;
    p[6] = frag >> 8, p[7] = frag & 0xff;
    p[8] = 64;
    p[9] = protocol;
    const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(&p[12], addrs, 8);
    for (size_t i = 20; i < p.size(); ++i) p[i] = 1;  // NOP
    p.insert(p.end(), l4.begin(), l4.end());
    return p;
}

// An IPv6 packet fd00::1 -> fd00::2 with extension headers: each entry is (type, length in bytes).
struct Ext {
    uint8_t type;
    size_t length;
    uint16_t fragment = 0;  // for IPPROTO_FRAGMENT: offset (8-byte units) << 3 | M flag
};
Bytes ipv6(uint8_t protocol, const Bytes& l4, const std::vector<Ext>& chain = {}) {
    Bytes p(40, 0);
    p[0] = 0x60;
    p[6] = chain.empty() ? protocol : chain.front().type;
    p[7] = 64;
    p[8] = 0xfd, p[23] = 1;
    p[24] = 0xfd, p[39] = 2;
    for (size_t i = 0; i < chain.size(); ++i) {
        Bytes h(chain[i].length, 0);
        h[0] = i + 1 < chain.size() ? chain[i + 1].type : protocol;
        if (chain[i].type == IPPROTO_FRAGMENT) {
            h[2] = chain[i].fragment >> 8, h[3] = chain[i].fragment & 0xff;
        } else if (chain[i].type == IPPROTO_AH) {
            h[1] = static_cast<uint8_t>(chain[i].length / 4 - 2);
        } else {
            h[1] = static_cast<uint8_t>(chain[i].length / 8 - 1);
        }
        p.insert(p.end(), h.begin(), h.end());
    }
    const size_t payload = p.size() - 40 + l4.size();
    p[4] = payload >> 8, p[5] = payload & 0xff;
    p.insert(p.end(), l4.begin(), l4.end());
    return p;
}

PacketTuple tuple4(uint8_t protocol, uint16_t sport = 0, uint16_t dport = 0) {
    return PacketTuple{ip("10.0.0.1"), ip("10.0.0.2"), protocol, sport, dport};
}
PacketTuple tuple6(uint8_t protocol, uint16_t sport = 0, uint16_t dport = 0) {
    return PacketTuple{ip("fd00::1"), ip("fd00::2"), protocol, sport, dport};
}

// Parses copies of exactly the given size, so that a sanitizer build catches any read past them.
std::optional<PacketTuple> parse(const Bytes& network, const Bytes& transport = {}) {
    auto n = std::make_unique<uint8_t[]>(network.size() + 1);
    auto t = std::make_unique<uint8_t[]>(transport.size() + 1);
    if (!network.empty()) std::memcpy(n.get(), network.data(), network.size());
    if (!transport.empty()) std::memcpy(t.get(), transport.data(), transport.size());
    return parse_packet({n.get(), network.size()}, {t.get(), transport.size()});
}

TEST(ParsePacket, Ipv4TransportProtocols) {
    EXPECT_EQ(parse(ipv4(IPPROTO_TCP, ports(40000, 443, 20))), tuple4(IPPROTO_TCP, 40000, 443));
    EXPECT_EQ(parse(ipv4(IPPROTO_UDP, ports(5353, 53))), tuple4(IPPROTO_UDP, 5353, 53));
    EXPECT_EQ(parse(ipv4(IPPROTO_SCTP, ports(1, 2, 12))), tuple4(IPPROTO_SCTP, 1, 2));
    EXPECT_EQ(parse(ipv4(IPPROTO_UDPLITE, ports(3, 4))), tuple4(IPPROTO_UDPLITE, 3, 4));
    EXPECT_EQ(parse(ipv4(IPPROTO_ICMP, Bytes{8, 0, 0, 0, 0, 1, 0, 1})), tuple4(IPPROTO_ICMP));
    EXPECT_EQ(parse(ipv4(IPPROTO_GRE, Bytes(4, 0))), tuple4(IPPROTO_GRE));
}

TEST(ParsePacket, Ipv4Options) {
    EXPECT_EQ(parse(ipv4(IPPROTO_UDP, ports(1000, 2000), 8)), tuple4(IPPROTO_UDP, 1000, 2000));
    EXPECT_EQ(parse(ipv4(IPPROTO_TCP, ports(1000, 2000, 20), 40)), tuple4(IPPROTO_TCP, 1000, 2000));
}

TEST(ParsePacket, Ipv4HeaderLengthBelowMinimumIsNotIp) {
    Bytes p = ipv4(IPPROTO_UDP, ports(1, 2));
    p[0] = 0x44;
    EXPECT_FALSE(parse(p));
}

TEST(ParsePacket, Ipv4SeparateTransportHeader) {
    // As in an nftables trace: the network header alone (cut at 40 bytes), the transport header apart.
    Bytes network = ipv4(IPPROTO_UDP, {}, 40);
    network.resize(40);
    EXPECT_EQ(parse(network, ports(7, 8)), tuple4(IPPROTO_UDP, 7, 8));
    EXPECT_EQ(parse(ipv4(IPPROTO_TCP, {}), ports(9, 10, 16)), tuple4(IPPROTO_TCP, 9, 10));
    EXPECT_FALSE(parse(network, Bytes{0, 7, 0}));  // a cut transport header gives no tuple
}

TEST(ParsePacket, Ipv4Fragments) {
    // First fragment (MF set, offset 0): ports. Later fragments: protocol only.
    EXPECT_EQ(parse(ipv4(IPPROTO_UDP, ports(11, 12), 0, 0x2000)), tuple4(IPPROTO_UDP, 11, 12));
    EXPECT_EQ(parse(ipv4(IPPROTO_UDP, ports(11, 12), 0, 0x2000 | 185)), tuple4(IPPROTO_UDP));
    EXPECT_EQ(parse(ipv4(IPPROTO_UDP, ports(11, 12), 0, 185)), tuple4(IPPROTO_UDP));
    EXPECT_EQ(parse(ipv4(IPPROTO_TCP, {}, 0, 10)), tuple4(IPPROTO_TCP));
}

TEST(ParsePacket, Ipv6TransportProtocols) {
    EXPECT_EQ(parse(ipv6(IPPROTO_TCP, ports(1, 2, 20))), tuple6(IPPROTO_TCP, 1, 2));
    EXPECT_EQ(parse(ipv6(IPPROTO_UDP, ports(3, 4))), tuple6(IPPROTO_UDP, 3, 4));
    EXPECT_EQ(parse(ipv6(IPPROTO_SCTP, ports(5, 6, 12))), tuple6(IPPROTO_SCTP, 5, 6));
    EXPECT_EQ(parse(ipv6(IPPROTO_ICMPV6, Bytes{128, 0, 0, 0, 0, 1, 0, 1})), tuple6(IPPROTO_ICMPV6));
}

TEST(ParsePacket, Ipv6ExtensionHeaders) {
    const std::vector<Ext> chain = {{IPPROTO_HOPOPTS, 8}, {IPPROTO_ROUTING, 24}, {IPPROTO_DSTOPTS, 16}};
    EXPECT_EQ(parse(ipv6(IPPROTO_UDP, ports(53, 5353), chain)), tuple6(IPPROTO_UDP, 53, 5353));
    EXPECT_EQ(parse(ipv6(IPPROTO_TCP, ports(80, 8080, 20), {{IPPROTO_AH, 24}})), tuple6(IPPROTO_TCP, 80, 8080));
    EXPECT_EQ(parse(ipv6(IPPROTO_ICMPV6, Bytes(8, 0), chain)), tuple6(IPPROTO_ICMPV6));
    EXPECT_EQ(parse(ipv6(IPPROTO_NONE, {}, chain)), tuple6(IPPROTO_NONE));
}

TEST(ParsePacket, Ipv6Fragments) {
    EXPECT_EQ(parse(ipv6(IPPROTO_UDP, ports(1, 2), {{IPPROTO_FRAGMENT, 8, 0x0001}})), tuple6(IPPROTO_UDP, 1, 2));
    EXPECT_EQ(parse(ipv6(IPPROTO_UDP, ports(1, 2), {{IPPROTO_FRAGMENT, 8, (100 << 3) | 1}})), tuple6(IPPROTO_UDP));
    EXPECT_EQ(parse(ipv6(IPPROTO_TCP, {}, {{IPPROTO_HOPOPTS, 8}, {IPPROTO_FRAGMENT, 8, 100 << 3}})),
              tuple6(IPPROTO_TCP));
}

TEST(ParsePacket, Ipv6SeparateTransportHeader) {
    Bytes network = ipv6(IPPROTO_UDP, {});
    EXPECT_EQ(parse(network, ports(1, 2)), tuple6(IPPROTO_UDP, 1, 2));
    // A trace message cuts the network header at 40 bytes: behind an extension header the protocol of the
    // separate transport header is unknown.
    Bytes with_ext = ipv6(IPPROTO_UDP, {}, {{IPPROTO_HOPOPTS, 8}});
    with_ext.resize(40);
    EXPECT_FALSE(parse(with_ext, ports(1, 2)));
    // Cut inside the last extension header: its successor is known and the transport header serves.
    Bytes cut = ipv6(IPPROTO_UDP, {}, {{IPPROTO_DSTOPTS, 24}});
    cut.resize(48);
    EXPECT_EQ(parse(cut, ports(1, 2)), tuple6(IPPROTO_UDP, 1, 2));
}

TEST(ParsePacket, NotIp) {
    EXPECT_FALSE(parse({}));
    EXPECT_FALSE(parse(Bytes{0x50, 0, 0, 0}));
    EXPECT_FALSE(parse(Bytes(64, 0)));
    Bytes arp = {0x00, 0x01, 0x08, 0x00, 6, 4, 0, 1};
    EXPECT_FALSE(parse(arp));
}

// Every prefix of every sample parses to nothing or to the full packet's tuple.
TEST(ParsePacket, EveryTruncationIsNullOrCorrect) {
    const std::vector<Bytes> samples = {
        ipv4(IPPROTO_TCP, ports(1, 2, 20)),
        ipv4(IPPROTO_UDP, ports(3, 4), 12),
        ipv4(IPPROTO_ICMP, Bytes(8, 0)),
        ipv4(IPPROTO_UDP, ports(5, 6), 0, 77),
        ipv6(IPPROTO_UDP, ports(7, 8)),
        ipv6(IPPROTO_TCP, ports(9, 10, 20), {{IPPROTO_HOPOPTS, 8}, {IPPROTO_ROUTING, 24}, {IPPROTO_DSTOPTS, 8}}),
        ipv6(IPPROTO_ICMPV6, Bytes(8, 0), {{IPPROTO_DSTOPTS, 16}}),
        ipv6(IPPROTO_SCTP, ports(11, 12, 12), {{IPPROTO_FRAGMENT, 8, 1}}),
        ipv6(IPPROTO_UDP, ports(13, 14), {{IPPROTO_FRAGMENT, 8, 64 << 3}}),
        ipv6(IPPROTO_UDP, ports(15, 16), {{IPPROTO_AH, 16}}),
    };
    for (size_t s = 0; s < samples.size(); ++s) {
        const auto full = parse(samples[s]);
        ASSERT_TRUE(full) << "sample " << s;
        for (size_t len = 0; len <= samples[s].size(); ++len) {
            const Bytes cut(samples[s].begin(), samples[s].begin() + static_cast<ptrdiff_t>(len));
            const auto got = parse(cut);
            if (got) {
                EXPECT_EQ(*got, *full) << "sample " << s << " cut at " << len;
            }
        }
        // Network and transport given apart, each cut at every length.
        const bool v6 = (samples[s][0] >> 4) == 6;
        for (size_t split = v6 ? 40 : 20; split < samples[s].size(); split += 4) {
            for (size_t len = 0; len <= samples[s].size() - split; ++len) {
                const Bytes network(samples[s].begin(), samples[s].begin() + static_cast<ptrdiff_t>(split));
                const Bytes transport(samples[s].begin() + static_cast<ptrdiff_t>(split),
                                      samples[s].begin() + static_cast<ptrdiff_t>(split + len));
                (void)parse(network, transport);  // must not read outside either span
            }
        }
    }
}

TEST(PacketTupleHash, EqualTuplesHashEqualAndFieldsMatter) {
    const PacketTupleHash h;
    EXPECT_EQ(h(tuple4(17, 1, 2)), h(tuple4(17, 1, 2)));
    EXPECT_NE(h(tuple4(17, 1, 2)), h(tuple4(17, 2, 1)));
    EXPECT_NE(h(tuple4(17, 1, 2)), h(tuple4(6, 1, 2)));
    EXPECT_NE(h(tuple4(17, 1, 2)), h(tuple6(17, 1, 2)));
}

TEST(MonotonicNs, Advances) {
    const uint64_t a = monotonic_ns();
    const uint64_t b = monotonic_ns();
    EXPECT_GT(a, 0u);
    EXPECT_GE(b, a);
}

PacketTuple flow(uint16_t n) {
    return tuple4(IPPROTO_UDP, n, 80);
}

TEST(RecentPackets, FindsTheClosestRecordWithinTheWindow) {
    RecentPackets<int> r(1'000'000, 100);
    r.add(flow(1), 1000, 1);
    r.add(flow(1), 2000, 2);
    r.add(flow(2), 1500, 3);
    ASSERT_NE(r.find(flow(1), 1400, 1000), nullptr);
    EXPECT_EQ(*r.find(flow(1), 1400, 1000), 1);
    EXPECT_EQ(*r.find(flow(1), 1600, 1000), 2);
    EXPECT_EQ(*r.find(flow(1), 2900, 1000), 2);
    EXPECT_EQ(r.find(flow(1), 3001, 1000), nullptr);
    EXPECT_EQ(r.find(flow(1), 0, 999), nullptr);
    EXPECT_EQ(*r.find(flow(2), 1500, 0), 3);
    EXPECT_EQ(r.find(flow(3), 1500, 1000), nullptr);
    EXPECT_EQ(*r.find(flow(1), 1500, UINT64_MAX), 2);  // a tie goes to the newer record
}

TEST(RecentPackets, KeepsTheNewestRecordsPerTuple) {
    RecentPackets<int> r(1'000'000, 100, 3);
    for (int i = 0; i < 6; ++i) r.add(flow(1), 100 * i, i);
    EXPECT_EQ(r.find(flow(1), 0, 50), nullptr);
    EXPECT_EQ(r.find(flow(1), 200, 50), nullptr);
    EXPECT_EQ(*r.find(flow(1), 300, 50), 3);
    EXPECT_EQ(*r.find(flow(1), 500, 50), 5);
    EXPECT_EQ(r.size(), 1u);
}

TEST(RecentPackets, ForgetsTheOldestTuplesBeyondTheLimit) {
    RecentPackets<int> r(1'000'000, 3);
    for (uint16_t i = 0; i < 5; ++i) r.add(flow(i), 10 * i, i);
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(r.find(flow(0), 0, 100), nullptr);
    EXPECT_EQ(r.find(flow(1), 10, 100), nullptr);
    EXPECT_EQ(*r.find(flow(4), 40, 0), 4);
}

TEST(RecentPackets, ForgetsRecordsOlderThanTheMaximumAge) {
    RecentPackets<int> r(100, 100);
    r.add(flow(1), 0, 1);
    r.add(flow(2), 50, 2);
    r.add(flow(1), 60, 3);
    r.add(flow(3), 120, 4);  // forgets the record at 0, keeps 50 and 60
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(r.find(flow(1), 0, 10), nullptr);
    EXPECT_EQ(*r.find(flow(1), 60, 0), 3);
    r.expire(155);  // 50 goes
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(r.find(flow(2), 50, 1000), nullptr);
    r.expire(1000);
    EXPECT_EQ(r.size(), 0u);
}

TEST(RecentPackets, ABusyTupleDoesNotPushOthersOut) {
    RecentPackets<int> r(1'000'000'000, 10, 2);
    r.add(flow(2), 0, 42);
    for (int i = 1; i <= 100000; ++i) r.add(flow(1), static_cast<uint64_t>(i), i);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(*r.find(flow(2), 0, 0), 42);
    EXPECT_EQ(*r.find(flow(1), 100000, 0), 100000);
    EXPECT_EQ(r.find(flow(1), 99998, 0), nullptr);
}

// A record read late (a stalled reader) carries the span it was sent in: a drop inside it joins, as a stamp taken
// at reading time 5 s later would not.
TEST(RecentPackets, JoinsByTheSpanTheRecordWasSentIn) {
    constexpr uint64_t s = 1'000'000'000;
    RecentPackets<int> r(30 * s, 100);
    r.add(flow(1), SentWithin{1 * s, 6 * s}, 1);
    ASSERT_NE(r.find(flow(1), s + s / 5, 2 * s), nullptr);
    EXPECT_EQ(*r.find(flow(1), s + s / 5, 0), 1);       // inside the span: distance 0
    EXPECT_EQ(*r.find(flow(1), 7 * s, 2 * s), 1);       // 1 s after it
    EXPECT_EQ(r.find(flow(1), s / 2, s / 4), nullptr);  // 0.5 s before it, window 0.25 s
    EXPECT_EQ(r.find(flow(1), 9 * s, 2 * s), nullptr);  // 3 s after it

    RecentPackets<int> read_time(30 * s, 100);  // the same record stamped when it was read
    read_time.add(flow(1), 6 * s, 1);
    EXPECT_EQ(read_time.find(flow(1), s + s / 5, 2 * s), nullptr);

    // Two records of a tuple: the one whose span holds the drop wins over one nearer by its read time.
    r.add(flow(2), SentWithin{10 * s, 10 * s}, 2);
    r.add(flow(2), SentWithin{11 * s, 20 * s}, 3);
    EXPECT_EQ(*r.find(flow(2), 12 * s, 2 * s), 3);
    EXPECT_EQ(*r.find(flow(2), 10 * s, 2 * s), 2);
    EXPECT_EQ(SentWithin::at(5).distance(3), 2u);
    EXPECT_EQ(SentWithin::at(5).distance(8), 3u);
}

// --- trace assembly ---------------------------------------------------------------------------------------

struct TraceFixture : ::testing::Test {
    std::map<std::tuple<std::string, std::string, uint64_t>, RuleComments> comments;
    int lookups = 0;
    TraceAssembler assembler{
        [this](uint32_t, const std::string& table, const std::string& chain, uint64_t handle) -> RuleComments {
            ++lookups;
            auto it = comments.find({table, chain, handle});
            if (it == comments.end()) return {};
            return it->second;
        },
        8};
    const Bytes network = ipv4(IPPROTO_UDP, {});
    const Bytes transport = ports(1234, 9999);

    TraceEvent packet(uint32_t id, const std::string& table, const std::string& chain, uint32_t family = NFPROTO_INET) {
        TraceEvent e = rule(id, table, chain, 0, NFT_CONTINUE, family);
        e.has_packet = true;
        e.tuple = parse_packet(network, transport);
        e.oif = 1;
        e.rule_handle.reset();
        e.verdict.reset();
        return e;
    }
    static TraceEvent rule(uint32_t id, const std::string& table, const std::string& chain, uint64_t handle,
                           int verdict, uint32_t family = NFPROTO_INET, const std::string& target = "") {
        TraceEvent e;
        e.id = id;
        e.type = NFT_TRACETYPE_RULE;
        e.family = family;
        e.table = table;
        e.chain = chain;
        e.rule_handle = handle;
        e.verdict = static_cast<uint32_t>(verdict);
        e.jump_target = target;
        return e;
    }
    static TraceEvent policy(uint32_t id, const std::string& table, const std::string& chain, int verdict) {
        TraceEvent e;
        e.id = id;
        e.type = NFT_TRACETYPE_POLICY;
        e.family = NFPROTO_INET;
        e.table = table;
        e.chain = chain;
        e.verdict = static_cast<uint32_t>(verdict);
        return e;
    }
};

TEST_F(TraceFixture, RuleDropInTheBaseChain) {
    comments[{"t", "output", 3}] = {"npt test drop"};
    EXPECT_FALSE(assembler.add(packet(7, "t", "output")));
    EXPECT_FALSE(assembler.add(rule(7, "t", "output", 2, NFT_CONTINUE)));
    auto done = assembler.add(rule(7, "t", "output", 3, NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->first, tuple4(IPPROTO_UDP, 1234, 9999));
    const TracedDrop& d = done->second;
    EXPECT_EQ(d.family, "inet");
    EXPECT_EQ(d.table, "t");
    EXPECT_EQ(d.chain, "output");
    EXPECT_EQ(d.handle, 3u);
    EXPECT_EQ(d.comments, RuleComments{"npt test drop"});
    EXPECT_FALSE(d.chain_policy);
    EXPECT_EQ(d.path, std::vector<std::string>{"output"});
    EXPECT_TRUE(d.jump_comments.empty());
    EXPECT_EQ(d.oif, 1u);
    EXPECT_EQ(assembler.partial(), 0u);
}

TEST_F(TraceFixture, KubeRouterStyleJumpsAndReturns) {
    comments[{"filter", "FORWARD", 10}] = {"kube-router netpol"};
    comments[{"filter", "KUBE-ROUTER-FORWARD", 20}] = {"rule to jump traffic destined to POD"};
    comments[{"filter", "KUBE-POD-FW-X", 30}] = {"run through nw policy allow-web"};
    comments[{"filter", "KUBE-POD-FW-X", 31}] = {"run through nw policy deny"};
    comments[{"filter", "KUBE-POD-FW-X", 40}] = {"rule to REJECT traffic destined for POD name:web namespace: shop"};
    const uint32_t ip = NFPROTO_IPV4;
    assembler.add(packet(1, "filter", "FORWARD", ip));
    assembler.add(rule(1, "filter", "FORWARD", 10, NFT_JUMP, ip, "KUBE-ROUTER-FORWARD"));
    assembler.add(rule(1, "filter", "KUBE-ROUTER-FORWARD", 20, NFT_JUMP, ip, "KUBE-POD-FW-X"));
    assembler.add(rule(1, "filter", "KUBE-POD-FW-X", 30, NFT_JUMP, ip, "KUBE-NWPLCY-A"));
    assembler.add(rule(1, "filter", "KUBE-NWPLCY-A", 50, NFT_CONTINUE, ip));  // ends: implicit return
    assembler.add(rule(1, "filter", "KUBE-POD-FW-X", 31, NFT_JUMP, ip, "KUBE-NWPLCY-B"));
    assembler.add(rule(1, "filter", "KUBE-NWPLCY-B", 60, NFT_RETURN, ip));  // explicit return
    auto done = assembler.add(rule(1, "filter", "KUBE-POD-FW-X", 40, NF_DROP, ip));
    ASSERT_TRUE(done);
    const TracedDrop& d = done->second;
    EXPECT_EQ(d.family, "ip");
    EXPECT_EQ(d.chain, "KUBE-POD-FW-X");
    EXPECT_EQ(d.comments, RuleComments{"rule to REJECT traffic destined for POD name:web namespace: shop"});
    EXPECT_EQ(d.path, (std::vector<std::string>{"FORWARD", "KUBE-ROUTER-FORWARD", "KUBE-POD-FW-X"}));
    EXPECT_EQ(d.jump_comments,
              (std::vector<RuleComments>{{"kube-router netpol"}, {"rule to jump traffic destined to POD"}}));
    EXPECT_EQ(d.returned, (std::vector<ReturnedChain>{{"KUBE-NWPLCY-A", {"run through nw policy allow-web"}},
                                                      {"KUBE-NWPLCY-B", {"run through nw policy deny"}}}));
}

TEST_F(TraceFixture, GotoReturnsToTheCallersCaller) {
    assembler.add(packet(2, "t", "base"));
    assembler.add(rule(2, "t", "base", 1, NFT_JUMP, NFPROTO_INET, "a"));
    assembler.add(rule(2, "t", "a", 2, NFT_GOTO, NFPROTO_INET, "b"));
    assembler.add(rule(2, "t", "b", 3, NFT_RETURN));  // back in base, past a
    auto done = assembler.add(rule(2, "t", "base", 4, NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->second.path, std::vector<std::string>{"base"});
    ASSERT_EQ(done->second.returned.size(), 2u);
    EXPECT_EQ(done->second.returned[0].chain, "b");
    EXPECT_EQ(done->second.returned[1].chain, "a");
}

TEST_F(TraceFixture, DropInsideAGotoChain) {
    comments[{"t", "a", 2}] = {"goto rule"};
    assembler.add(packet(3, "t", "base"));
    assembler.add(rule(3, "t", "base", 1, NFT_JUMP, NFPROTO_INET, "a"));
    assembler.add(rule(3, "t", "a", 2, NFT_GOTO, NFPROTO_INET, "b"));
    auto done = assembler.add(rule(3, "t", "b", 5, NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->second.path, (std::vector<std::string>{"base", "a", "b"}));
    EXPECT_EQ(done->second.jump_comments, (std::vector<RuleComments>{{}, {"goto rule"}}));
}

TEST_F(TraceFixture, ChainPolicyDrop) {
    assembler.add(packet(4, "t", "input"));
    assembler.add(rule(4, "t", "input", 9, NFT_CONTINUE));
    auto done = assembler.add(policy(4, "t", "input", NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_TRUE(done->second.chain_policy);
    EXPECT_FALSE(done->second.handle);
    EXPECT_TRUE(done->second.comments.empty());
    EXPECT_EQ(lookups, 0);
}

TEST_F(TraceFixture, AcceptEndsTheRunAndTheNextBaseChainStartsOver) {
    assembler.add(packet(5, "a", "output"));
    EXPECT_FALSE(assembler.add(policy(5, "a", "output", NF_ACCEPT)));
    EXPECT_EQ(assembler.partial(), 0u);
    EXPECT_FALSE(assembler.add(rule(5, "b", "output", 1, NF_DROP)));  // no header message: unknown packet
    assembler.add(packet(5, "b", "output"));
    auto done = assembler.add(rule(5, "b", "output", 1, NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->second.table, "b");
}

TEST_F(TraceFixture, MessagesOfAnotherTableDoNotContinueAPacket) {
    assembler.add(packet(6, "a", "output"));
    EXPECT_FALSE(assembler.add(rule(6, "b", "output", 1, NF_DROP)));
}

TEST_F(TraceFixture, LostJumpMessageStillEndsInTheDroppingChain) {
    assembler.add(packet(8, "t", "base"));
    auto done = assembler.add(rule(8, "t", "deep", 5, NF_DROP));
    ASSERT_TRUE(done);
    EXPECT_EQ(done->second.path, (std::vector<std::string>{"base", "deep"}));
    EXPECT_EQ(done->second.jump_comments, std::vector<RuleComments>{{}});
}

TEST_F(TraceFixture, NonIpPacketsGiveNoVerdict) {
    TraceEvent e = packet(9, "t", "base");
    e.tuple.reset();
    assembler.add(e);
    EXPECT_FALSE(assembler.add(rule(9, "t", "base", 1, NF_DROP)));
}

TEST_F(TraceFixture, PartialTracesAreBounded) {
    for (uint32_t id = 100; id < 200; ++id) assembler.add(packet(id, "t", "base"));
    EXPECT_EQ(assembler.partial(), 8u);
    EXPECT_FALSE(assembler.add(rule(100, "t", "base", 1, NF_DROP)));
    EXPECT_TRUE(assembler.add(rule(199, "t", "base", 1, NF_DROP)));
}

TEST(NftFamilyName, Names) {
    EXPECT_EQ(nft_family_name(NFPROTO_INET), "inet");
    EXPECT_EQ(nft_family_name(NFPROTO_IPV4), "ip");
    EXPECT_EQ(nft_family_name(NFPROTO_IPV6), "ip6");
    EXPECT_EQ(nft_family_name(NFPROTO_BRIDGE), "bridge");
    EXPECT_EQ(nft_family_name(NFPROTO_NETDEV), "netdev");
    EXPECT_EQ(nft_family_name(NFPROTO_ARP), "arp");
}

// --- rule comments ----------------------------------------------------------------------------------------

using Comments = std::vector<std::string>;

struct RuleDeleter {
    void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;

void add_xt_comment(nftnl_rule* rule, const std::string& text) {
    nftnl_expr* e = nftnl_expr_alloc("match");
    nftnl_expr_set_str(e, NFTNL_EXPR_MT_NAME, "comment");
    nftnl_expr_set_u32(e, NFTNL_EXPR_MT_REV, 0);
    auto* info = static_cast<xt_comment_info*>(calloc(1, sizeof(xt_comment_info)));
    std::strncpy(info->comment, text.c_str(), sizeof(info->comment) - 1);
    nftnl_expr_set(e, NFTNL_EXPR_MT_INFO, info, sizeof(*info));  // the expression takes the buffer
    nftnl_rule_add_expr(rule, e);
}

TEST(NftRuleComment, NativeUserdataComment) {
    RulePtr rule(nftnl_rule_alloc());
    nftnl_udata_buf* udata = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    ASSERT_TRUE(nftnl_udata_put_strz(udata, NFTNL_UDATA_RULE_COMMENT, "npt test drop"));
    nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(udata), nftnl_udata_buf_len(udata));
    nftnl_udata_buf_free(udata);
    EXPECT_EQ(nft_rule_comments(rule.get()), Comments{"npt test drop"});
}

TEST(NftRuleComment, IptablesNftCommentMatch) {
    RulePtr rule(nftnl_rule_alloc());
    nftnl_rule_add_expr(rule.get(), nftnl_expr_alloc("counter"));
    add_xt_comment(rule.get(), "ipt comment");
    EXPECT_EQ(nft_rule_comments(rule.get()), Comments{"ipt comment"});
}

TEST(NftRuleComment, NoneAndMalformed) {
    RulePtr rule(nftnl_rule_alloc());
    EXPECT_EQ(nft_rule_comments(rule.get()), Comments{});
    EXPECT_EQ(nft_rule_comments(nullptr), Comments{});
    const uint8_t garbage[] = {NFTNL_UDATA_RULE_COMMENT, 200, 'x'};  // TLV longer than the data
    nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, garbage, sizeof(garbage));
    EXPECT_EQ(nft_rule_comments(rule.get()), Comments{});
    const uint8_t unterminated[] = {NFTNL_UDATA_RULE_COMMENT, 3, 'a', 'b', 'c'};
    nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, unterminated, sizeof(unterminated));
    EXPECT_EQ(nft_rule_comments(rule.get()), Comments{"abc"});
}

// --- netlink messages -------------------------------------------------------------------------------------

// A netfilter netlink message built by hand: header, nfgenmsg, attributes (multi-byte values big-endian, as
// the kernel sends them).
struct NlMsg {
    std::vector<uint8_t> bytes;

    NlMsg(uint16_t type, uint8_t family, uint16_t res_id = 0) : bytes(NLMSG_HDRLEN + sizeof(nfgenmsg), 0) {
        nlmsghdr h{};
        h.nlmsg_type = type;
        std::memcpy(bytes.data(), &h, sizeof(h));
        nfgenmsg g{family, NFNETLINK_V0, htons(res_id)};
        std::memcpy(bytes.data() + NLMSG_HDRLEN, &g, sizeof(g));
    }
    NlMsg& attr(uint16_t type, const void* data, size_t len) {
        const nlattr a{static_cast<uint16_t>(NLA_HDRLEN + len), type};
        const size_t at = bytes.size();
        bytes.resize(at + NLA_ALIGN(NLA_HDRLEN + len), 0);
        std::memcpy(bytes.data() + at, &a, sizeof(a));
        if (len > 0) std::memcpy(bytes.data() + at + NLA_HDRLEN, data, len);
        return *this;
    }
    NlMsg& u16(uint16_t type, uint16_t v) {
        v = htons(v);
        return attr(type, &v, sizeof(v));
    }
    NlMsg& u32(uint16_t type, uint32_t v) {
        v = htonl(v);
        return attr(type, &v, sizeof(v));
    }
    NlMsg& u64(uint16_t type, uint64_t v) {
        v = htobe64(v);
        return attr(type, &v, sizeof(v));
    }
    NlMsg& str(uint16_t type, const std::string& s) { return attr(type, s.c_str(), s.size() + 1); }
    NlMsg& bin(uint16_t type, const Bytes& b) { return attr(type, b.data(), b.size()); }
    // Nested attributes: the nest's attributes are those of `inner` (its header and nfgenmsg left out).
    NlMsg& nest(uint16_t type, const NlMsg& inner) {
        const size_t skip = NLMSG_HDRLEN + sizeof(nfgenmsg);
        return attr(type | NLA_F_NESTED, inner.bytes.data() + skip, inner.bytes.size() - skip);
    }
    // The message, with nlmsg_len set; valid until the next change.
    const nlmsghdr* msg() {
        const uint32_t len = static_cast<uint32_t>(bytes.size());
        std::memcpy(bytes.data(), &len, sizeof(len));
        return reinterpret_cast<const nlmsghdr*>(bytes.data());
    }
};

constexpr uint16_t kTraceType = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE;

NlMsg verdict(int code, const char* chain = nullptr) {
    NlMsg v(0, 0);
    v.u32(NFTA_VERDICT_CODE, static_cast<uint32_t>(code));
    if (chain != nullptr) v.str(NFTA_VERDICT_CHAIN, chain);
    return v;
}

NlMsg trace_message(uint32_t id, uint32_t type) {
    NlMsg m(kTraceType, NFPROTO_INET);
    m.str(NFTA_TRACE_TABLE, "filter").str(NFTA_TRACE_CHAIN, "forward").u32(NFTA_TRACE_TYPE, type);
    m.u32(NFTA_TRACE_ID, id);
    return m;
}

TEST(ParseTraceMessage, FirstMessageWithThePacket) {
    const Bytes network = ipv4(IPPROTO_TCP, {}), transport = ports(40000, 443, 16);
    NlMsg m = trace_message(0x1234, NFT_TRACETYPE_RULE);
    m.u64(NFTA_TRACE_RULE_HANDLE, 7).nest(NFTA_TRACE_VERDICT, verdict(NFT_JUMP, "pod-fw"));
    m.bin(NFTA_TRACE_NETWORK_HEADER, network).bin(NFTA_TRACE_TRANSPORT_HEADER, transport);
    m.u32(NFTA_TRACE_IIF, 3).u16(NFTA_TRACE_IIFTYPE, 1).u32(NFTA_TRACE_OIF, 5).u32(NFTA_TRACE_MARK, 0x4000);
    const auto e = parse_trace_message(m.msg());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->id, 0x1234u);
    EXPECT_EQ(e->type, uint32_t{NFT_TRACETYPE_RULE});
    EXPECT_EQ(e->family, uint32_t{NFPROTO_INET});
    EXPECT_EQ(e->table, "filter");
    EXPECT_EQ(e->chain, "forward");
    EXPECT_EQ(e->rule_handle, 7u);
    EXPECT_EQ(e->verdict, static_cast<uint32_t>(NFT_JUMP));
    EXPECT_EQ(e->jump_target, "pod-fw");
    EXPECT_TRUE(e->has_packet);
    EXPECT_EQ(e->tuple, tuple4(IPPROTO_TCP, 40000, 443));
    EXPECT_EQ(e->iif, 3u);
    EXPECT_EQ(e->oif, 5u);
}

TEST(ParseTraceMessage, PolicyVerdict) {
    NlMsg m = trace_message(9, NFT_TRACETYPE_POLICY);
    m.u32(NFTA_TRACE_POLICY, NF_DROP);
    const auto e = parse_trace_message(m.msg());
    ASSERT_TRUE(e);
    EXPECT_EQ(e->verdict, uint32_t{NF_DROP});
    EXPECT_FALSE(e->has_packet);
    EXPECT_FALSE(e->rule_handle);
}

// libnftnl exits the process on these (or reads uninitialized memory, or past a string): they are refused first.
TEST(ParseTraceMessage, MalformedMessagesAreRefused) {
    NlMsg no_id(kTraceType, NFPROTO_INET);
    no_id.u32(NFTA_TRACE_TYPE, NFT_TRACETYPE_RULE);
    EXPECT_FALSE(parse_trace_message(no_id.msg()));

    NlMsg short_type(kTraceType, NFPROTO_INET);
    const uint16_t two = 2;
    short_type.u32(NFTA_TRACE_ID, 1).attr(NFTA_TRACE_TYPE, &two, sizeof(two));
    EXPECT_FALSE(parse_trace_message(short_type.msg()));

    NlMsg jump_without_chain = trace_message(1, NFT_TRACETYPE_RULE);
    jump_without_chain.nest(NFTA_TRACE_VERDICT, verdict(NFT_JUMP));
    EXPECT_FALSE(parse_trace_message(jump_without_chain.msg()));

    NlMsg verdict_without_code = trace_message(1, NFT_TRACETYPE_RULE);
    NlMsg chain_only(0, 0);
    chain_only.str(NFTA_VERDICT_CHAIN, "x");
    verdict_without_code.nest(NFTA_TRACE_VERDICT, chain_only);
    EXPECT_FALSE(parse_trace_message(verdict_without_code.msg()));

    NlMsg unterminated = trace_message(1, NFT_TRACETYPE_RULE);
    unterminated.attr(NFTA_TRACE_CHAIN, "abcd", 4);
    EXPECT_FALSE(parse_trace_message(unterminated.msg()));

    NlMsg empty_header = trace_message(1, NFT_TRACETYPE_RULE);
    empty_header.attr(NFTA_TRACE_NETWORK_HEADER, nullptr, 0);
    EXPECT_FALSE(parse_trace_message(empty_header.msg()));

    NlMsg too_short(kTraceType, NFPROTO_INET);
    too_short.bytes.resize(NLMSG_HDRLEN + 2);
    EXPECT_FALSE(parse_trace_message(too_short.msg()));

    // Attributes unknown to libnftnl (a newer kernel's) are no reason to refuse a message.
    NlMsg newer = trace_message(1, NFT_TRACETYPE_RULE);
    newer.u32(NFTA_TRACE_MAX + 10, 5);
    EXPECT_TRUE(parse_trace_message(newer.msg()));
}

// A rule message as nftnl builds it (the kernel's answer to NFT_MSG_GETRULE has the same form).
std::vector<char> rule_message(nftnl_rule* rule) {
    std::vector<char> buf(8192);
    nlmsghdr* nlh = nftnl_rule_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWRULE, NFPROTO_INET, 0, 1);
    nftnl_rule_set_str(rule, NFTNL_RULE_TABLE, "filter");
    nftnl_rule_set_str(rule, NFTNL_RULE_CHAIN, "forward");
    nftnl_rule_set_u64(rule, NFTNL_RULE_HANDLE, 12);
    nftnl_rule_nlmsg_build_payload(nlh, rule);
    buf.resize(nlh->nlmsg_len);
    return buf;
}
const nlmsghdr* header(const std::vector<char>& buf) {
    return reinterpret_cast<const nlmsghdr*>(buf.data());
}

TEST(NftRuleMessageComment, NativeAndXtComments) {
    RulePtr native(nftnl_rule_alloc());
    nftnl_rule_add_expr(native.get(), nftnl_expr_alloc("counter"));
    nftnl_udata_buf* udata = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    ASSERT_TRUE(nftnl_udata_put_strz(udata, NFTNL_UDATA_RULE_COMMENT, "npt test drop"));
    nftnl_rule_set_data(native.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(udata), nftnl_udata_buf_len(udata));
    nftnl_udata_buf_free(udata);
    Comments comment;
    EXPECT_TRUE(nft_rule_message_comments(header(rule_message(native.get())), &comment));
    EXPECT_EQ(comment, Comments{"npt test drop"});

    RulePtr xt(nftnl_rule_alloc());
    nftnl_rule_add_expr(xt.get(), nftnl_expr_alloc("counter"));
    add_xt_comment(xt.get(), "ipt comment");
    EXPECT_TRUE(nft_rule_message_comments(header(rule_message(xt.get())), &comment));
    EXPECT_EQ(comment, Comments{"ipt comment"});

    RulePtr none(nftnl_rule_alloc());
    nftnl_rule_add_expr(none.get(), nftnl_expr_alloc("counter"));
    EXPECT_TRUE(nft_rule_message_comments(header(rule_message(none.get())), &comment));
    EXPECT_EQ(comment, Comments{});
}

TEST(NftRuleMessageComment, OtherAndMalformedMessages) {
    Comments comment = {"untouched"};
    NlMsg done(NLMSG_DONE, 0);
    EXPECT_FALSE(nft_rule_message_comments(done.msg(), &comment));
    NlMsg too_short((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, 0);
    too_short.bytes.resize(NLMSG_HDRLEN + 2);
    EXPECT_FALSE(nft_rule_message_comments(too_short.msg(), &comment));
    EXPECT_EQ(comment, Comments{"untouched"});

    // An expression without a name (libnftnl dereferences a null pointer) before an xt comment.
    NlMsg info(0, 0);
    info.str(NFTA_MATCH_NAME, "comment").u32(NFTA_MATCH_REV, 0).attr(NFTA_MATCH_INFO, "from xt", 8);
    NlMsg match(0, 0);
    match.str(NFTA_EXPR_NAME, "match").nest(NFTA_EXPR_DATA, info);
    NlMsg nameless(0, 0);
    nameless.nest(NFTA_EXPR_DATA, info);
    NlMsg list(0, 0);
    list.nest(NFTA_LIST_ELEM, nameless).nest(NFTA_LIST_ELEM, match);
    NlMsg rule((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, NFPROTO_IPV4);
    rule.str(NFTA_RULE_TABLE, "filter").nest(NFTA_RULE_EXPRESSIONS, list);
    EXPECT_TRUE(nft_rule_message_comments(rule.msg(), &comment));
    EXPECT_EQ(comment, Comments{"from xt"});

    // A userdata record longer than the attribute.
    const uint8_t garbage[] = {NFTNL_UDATA_RULE_COMMENT, 200, 'x'};
    NlMsg bad_udata((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, NFPROTO_IPV4);
    bad_udata.attr(NFTA_RULE_USERDATA, garbage, sizeof(garbage));
    EXPECT_TRUE(nft_rule_message_comments(bad_udata.msg(), &comment));
    EXPECT_EQ(comment, Comments{});
}

TEST(NftRuleComment, EveryCommentMatchInOrder) {
    // Felix: its rule id, then each text as a comment match of its own; an empty one is left out.
    RulePtr rule(nftnl_rule_alloc());
    add_xt_comment(rule.get(), "cali:Zq2O8uV4sBxNvYHa");
    add_xt_comment(rule.get(), "");
    nftnl_rule_add_expr(rule.get(), nftnl_expr_alloc("counter"));
    add_xt_comment(rule.get(), "End of tier default. Drop if no policies passed packet");
    EXPECT_EQ(nft_rule_comments(rule.get()),
              (Comments{"cali:Zq2O8uV4sBxNvYHa", "End of tier default. Drop if no policies passed packet"}));
    // A native comment comes first.
    nftnl_udata_buf* udata = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    ASSERT_TRUE(nftnl_udata_put_strz(udata, NFTNL_UDATA_RULE_COMMENT, "native"));
    nftnl_rule_set_data(rule.get(), NFTNL_RULE_USERDATA, nftnl_udata_buf_data(udata), nftnl_udata_buf_len(udata));
    nftnl_udata_buf_free(udata);
    EXPECT_EQ(nft_rule_comments(rule.get()).front(), "native");
    EXPECT_EQ(nft_rule_comments(rule.get()).size(), 3u);
    Comments from_message;
    EXPECT_TRUE(nft_rule_message_comments(header(rule_message(rule.get())), &from_message));
    EXPECT_EQ(from_message, nft_rule_comments(rule.get()));
}

constexpr uint16_t kNflogPacket = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;

TEST(ParseNflogPacket, Record) {
    NlMsg m(kNflogPacket, AF_INET, 100);
    m.u32(NFULA_MARK, 1).u32(NFULA_IFINDEX_INDEV, 3).u32(NFULA_IFINDEX_OUTDEV, 4);
    m.str(NFULA_PREFIX, "DROP by policy default/deny").bin(NFULA_PAYLOAD, ipv4(IPPROTO_UDP, ports(1234, 53)));
    NflogRecord record;
    std::optional<PacketTuple> tuple;
    ASSERT_TRUE(parse_nflog_packet(m.msg(), record, tuple));
    EXPECT_EQ(record.group, 100);
    EXPECT_EQ(record.prefix, "DROP by policy default/deny");
    EXPECT_EQ(record.indev, 3u);
    EXPECT_EQ(record.outdev, 4u);
    EXPECT_EQ(tuple, tuple4(IPPROTO_UDP, 1234, 53));
}

// NFULA_TIMESTAMP (CLOCK_REALTIME, seconds and microseconds, big-endian): the record's own time.
TEST(ParseNflogPacket, Timestamp) {
    NlMsg m(kNflogPacket, AF_INET, 100);
    const nfulnl_msg_packet_timestamp ts{htobe64(1'796'609'840), htobe64(610'399)};
    m.attr(NFULA_TIMESTAMP, &ts, sizeof(ts)).bin(NFULA_PAYLOAD, ipv4(IPPROTO_UDP, ports(1234, 53)));
    NflogRecord record;
    std::optional<PacketTuple> tuple;
    ASSERT_TRUE(parse_nflog_packet(m.msg(), record, tuple));
    EXPECT_EQ(record.realtime_ns, 1'796'609'840'610'399'000ull);

    NlMsg none(kNflogPacket, AF_INET, 100);  // output hook: no timestamp
    none.bin(NFULA_PAYLOAD, ipv4(IPPROTO_UDP, ports(1234, 53)));
    ASSERT_TRUE(parse_nflog_packet(none.msg(), record, tuple));
    EXPECT_EQ(record.realtime_ns, 0u);

    NlMsg bad(kNflogPacket, AF_INET, 100);  // microseconds out of range, and a short attribute
    const nfulnl_msg_packet_timestamp wrong{htobe64(1), htobe64(1'000'000)};
    bad.attr(NFULA_TIMESTAMP, &wrong, sizeof(wrong));
    ASSERT_TRUE(parse_nflog_packet(bad.msg(), record, tuple));
    EXPECT_EQ(record.realtime_ns, 0u);
    NlMsg short_ts(kNflogPacket, AF_INET, 100);
    short_ts.attr(NFULA_TIMESTAMP, &ts, 8);
    ASSERT_TRUE(parse_nflog_packet(short_ts.msg(), record, tuple));
    EXPECT_EQ(record.realtime_ns, 0u);
}

// MulticastReader on a datagram socket pair standing in for netlink: a message written while the reader was not
// reading (a stalled consumer) is reported as sent after the reader's last empty read and before its next read.
TEST(MulticastReader, SpanOfAMessageReadLate) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    MulticastReader reader;
    reader.start();
    uint64_t overruns = 0;
    std::vector<SentWithin> spans;
    const auto collect = [&](const nlmsghdr*, SentWithin sent) { spans.push_back(sent); };
    reader.drain(sv[0], collect, overruns);  // empty
    EXPECT_TRUE(spans.empty());

    const uint64_t before_send = monotonic_ns();
    NlMsg m(kNflogPacket, AF_INET, 100);
    const nlmsghdr* h = m.msg();
    ASSERT_EQ(send(sv[1], h, h->nlmsg_len, 0), static_cast<ssize_t>(h->nlmsg_len));
    ASSERT_EQ(send(sv[1], h, h->nlmsg_len, 0), static_cast<ssize_t>(h->nlmsg_len));
    const uint64_t after_send = monotonic_ns();
    reader.drain(sv[0], collect, overruns);
    ASSERT_EQ(spans.size(), 2u);
    for (const auto& span : spans) {
        EXPECT_LE(span.after_ns, before_send);
        EXPECT_GE(span.before_ns, after_send);
    }
    // The next message was sent after the read that found the socket empty again.
    const uint64_t emptied = monotonic_ns();
    reader.drain(sv[0], collect, overruns);
    ASSERT_EQ(send(sv[1], h, h->nlmsg_len, 0), static_cast<ssize_t>(h->nlmsg_len));
    reader.drain(sv[0], collect, overruns);
    ASSERT_EQ(spans.size(), 3u);
    EXPECT_GE(spans[2].after_ns, emptied);
    EXPECT_EQ(overruns, 0u);
    close(sv[0]);
    close(sv[1]);
}

TEST(ParseNflogPacket, PartialAndOtherMessages) {
    NflogRecord record;
    std::optional<PacketTuple> tuple;
    NlMsg bare(kNflogPacket, AF_INET6, 7);
    bare.attr(NFULA_PREFIX, "abc", 3).u16(NFULA_IFINDEX_INDEV, 9);  // unterminated; an index too short
    ASSERT_TRUE(parse_nflog_packet(bare.msg(), record, tuple));
    EXPECT_EQ(record.group, 7);
    EXPECT_EQ(record.prefix, "abc");
    EXPECT_EQ(record.indev, 0u);
    EXPECT_EQ(tuple, std::nullopt);

    NlMsg not_ip(kNflogPacket, AF_BRIDGE, 7);
    not_ip.bin(NFULA_PAYLOAD, Bytes(28, 0));
    ASSERT_TRUE(parse_nflog_packet(not_ip.msg(), record, tuple));
    EXPECT_EQ(tuple, std::nullopt);

    NlMsg config((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, AF_INET, 7);
    EXPECT_FALSE(parse_nflog_packet(config.msg(), record, tuple));
    NlMsg too_short(kNflogPacket, AF_INET, 7);
    too_short.bytes.resize(NLMSG_HDRLEN + 2);
    EXPECT_FALSE(parse_nflog_packet(too_short.msg(), record, tuple));
}

}  // namespace
}  // namespace npt::netfilter

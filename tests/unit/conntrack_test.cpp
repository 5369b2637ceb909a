// Conntrack events without a kernel: ctnetlink messages built with libnetfilter_conntrack (as the kernel lays them
// out) parsed into working UDP and SCTP flows, and each entry counted once whatever the events it produces.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <vector>

#include "netfilter/conntrack_listener.hpp"

namespace npt::netfilter {
namespace {

struct Entry {
    int family = AF_INET;
    uint8_t proto = IPPROTO_UDP;
    const char* client = "10.42.0.22";
    const char* dialled = "10.43.0.10";
    uint16_t dport = 53;
    const char* server = "10.42.0.10";
    uint16_t server_port = 53;
    uint32_t id = 7;
    uint32_t status = IPS_SEEN_REPLY | IPS_CONFIRMED;
};

// An update event of the entry, as the kernel sends it to NFNLGRP_CONNTRACK_UPDATE.
std::vector<char> event(const Entry& e, uint16_t type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW) {
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = static_cast<uint8_t>(e.family);
    nfg->version = NFNETLINK_V0;
    nf_conntrack* ct = nfct_new();
    nfct_set_attr_u8(ct, ATTR_L3PROTO, static_cast<uint8_t>(e.family));
    nfct_set_attr_u8(ct, ATTR_L4PROTO, e.proto);
    const auto addr = [&](const char* text, enum nf_conntrack_attr v4, enum nf_conntrack_attr v6) {
        if (e.family == AF_INET) {
            in_addr a{};
            inet_pton(AF_INET, text, &a);
            nfct_set_attr_u32(ct, v4, a.s_addr);
        } else {
            in6_addr a{};
            inet_pton(AF_INET6, text, &a);
            nfct_set_attr(ct, v6, &a);
        }
    };
    addr(e.client, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC);
    addr(e.dialled, ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST);
    addr(e.server, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC);
    addr(e.client, ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST);
    nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, static_cast<uint8_t>(e.family));
    nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, e.proto);
    nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(40000));
    nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(e.dport));
    nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(e.server_port));
    nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, htons(40000));
    nfct_set_attr_u32(ct, ATTR_STATUS, e.status);
    EXPECT_EQ(nfct_nlmsg_build(nlh, ct), 0);
    nfct_destroy(ct);
    mnl_attr_put_u32(nlh, CTA_ID,
                     htonl(e.id));  // the kernel's events carry it; requests (what the builder makes) do not
    buf.resize(nlh->nlmsg_len);
    return buf;
}

const nlmsghdr* header(const std::vector<char>& b) {
    return reinterpret_cast<const nlmsghdr*>(b.data());
}

TEST(Conntrack, AnAnsweredUdpEntryThroughAServiceIsBothItsEnds) {
    const auto msg = event({});
    ConntrackFlow f;
    ASSERT_TRUE(parse_conntrack_event(header(msg), f));
    EXPECT_EQ(f.client.str(), "10.42.0.22");
    EXPECT_EQ(f.dialled.str(), "10.43.0.10");  // the Service address, before DNAT
    EXPECT_EQ(f.server.str(), "10.42.0.10");   // the endpoint
    EXPECT_EQ(f.dport, 53);
    EXPECT_EQ(f.server_port, 53);
    EXPECT_EQ(f.protocol, IPPROTO_UDP);
    EXPECT_EQ(f.id, 7u);
    EXPECT_TRUE(f.status & IPS_SEEN_REPLY);
}

TEST(Conntrack, IPv6AndSctpAndATargetPort) {
    Entry e;
    e.family = AF_INET6;
    e.proto = IPPROTO_SCTP;
    e.client = "fd00:42::22";
    e.dialled = "fd00:43::a";
    e.dport = 443;
    e.server = "fd00:42::31";
    e.server_port = 8443;
    const auto msg = event(e);
    ConntrackFlow f;
    ASSERT_TRUE(parse_conntrack_event(header(msg), f));
    EXPECT_EQ(f.client.str(), "fd00:42::22");
    EXPECT_EQ(f.dialled.str(), "fd00:43::a");
    EXPECT_EQ(f.server.str(), "fd00:42::31");
    EXPECT_EQ(f.dport, 443);
    EXPECT_EQ(f.server_port, 8443);
    EXPECT_EQ(f.protocol, IPPROTO_SCTP);
}

TEST(Conntrack, TcpAndOtherMessagesAreNotWorkingFlowsFromConntrack) {
    Entry tcp;
    tcp.proto = IPPROTO_TCP;  // TCP comes from the socket states
    ConntrackFlow f;
    EXPECT_FALSE(parse_conntrack_event(header(event(tcp)), f));
    EXPECT_FALSE(parse_conntrack_event(header(event({}, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE)), f));
    EXPECT_FALSE(parse_conntrack_event(header(event({}, (NFNL_SUBSYS_QUEUE << 8) | 0)), f));
    std::vector<char> short_msg(sizeof(nlmsghdr));
    auto* nlh = reinterpret_cast<nlmsghdr*>(short_msg.data());
    nlh->nlmsg_len = sizeof(nlmsghdr);
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
    EXPECT_FALSE(parse_conntrack_event(nlh, f));
}

TEST(Conntrack, EachEntryIsCountedOnceAndAReusedIdWithAnotherTupleAgain) {
    SeenEntries seen(3);
    ConntrackFlow f;
    ASSERT_TRUE(parse_conntrack_event(header(event({})), f));
    EXPECT_TRUE(seen.first(f));
    EXPECT_FALSE(seen.first(f));  // IPCT_REPLY, then IPCT_ASSURED: one entry
    Entry other;
    other.client = "10.42.0.23";  // the id of a freed entry, reused
    ConntrackFlow g;
    ASSERT_TRUE(parse_conntrack_event(header(event(other)), g));
    EXPECT_TRUE(seen.first(g));
    // Bounded: the oldest are forgotten first.
    for (uint32_t id = 100; id < 103; ++id) {
        ConntrackFlow h = f;
        h.id = id;
        EXPECT_TRUE(seen.first(h));
    }
    EXPECT_EQ(seen.size(), 3u);
    EXPECT_TRUE(seen.first(f));
}

}  // namespace
}  // namespace npt::netfilter

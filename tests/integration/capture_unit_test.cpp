// Unit tests of the capture's pure parts (no root, no BPF): drop-reason names from fake BTF enumerators, the
// kallsyms symbolizer on a fake table, the enforcement mapping on fake stacks, HZ snapping, and the one-line
// errors DropCapture::open gives before it touches BPF.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "drop_capture.hpp"
#include "drop_reasons.hpp"
#include "enforcement.hpp"
#include "kernel_features.hpp"
#include "kernel_symbolizer.hpp"

namespace npt::capture {
namespace {

// Shaped like kernel 6.18's enum skb_drop_reason (values differ on purpose: they move between kernels).
ReasonTable fake_reasons() {
    return ReasonTable::from_enumerators(
        {
            {"SKB_NOT_DROPPED_YET", 0},
            {"SKB_CONSUMED", 1},
            {"SKB_DROP_REASON_NOT_SPECIFIED", 2},
            {"SKB_DROP_REASON_NO_SOCKET", 3},
            {"SKB_DROP_REASON_NETFILTER_DROP", 14},
            {"SKB_DROP_REASON_BPF_CGROUP_EGRESS", 57},
            {"SKB_DROP_REASON_TC_EGRESS", 64},
            {"SKB_DROP_REASON_XDP", 74},
            {"SKB_DROP_REASON_TC_INGRESS", 75},
            {"SKB_DROP_REASON_XDP_REDIRECT", 76},
            {"SKB_DROP_REASON_QUEUE_PURGE", 100},
            {"SKB_DROP_REASON_MAX", 130},
            {"SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000u},
        },
        {
            {"SKB_DROP_REASON_SUBSYS_CORE", 0},
            {"SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1},
            {"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2},
            {"SKB_DROP_REASON_SUBSYS_NUM", 3},
        });
}

TEST(ReasonTable, KeepsDropReasonsWithoutPrefixOrSentinels) {
    const auto t = fake_reasons();
    EXPECT_EQ(t.names(), (std::vector<std::string>{"NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP", "BPF_CGROUP_EGRESS",
                                                   "TC_EGRESS", "XDP", "TC_INGRESS", "XDP_REDIRECT", "QUEUE_PURGE"}));
}

TEST(ReasonTable, NamesValuesBothWays) {
    const auto t = fake_reasons();
    EXPECT_EQ(t.name_of(14), "NETFILTER_DROP");
    EXPECT_EQ(t.name_of(NPT_REASON_UNKNOWN), "unknown");
    EXPECT_EQ(t.name_of((2u << 16) | 3u), "OPENVSWITCH:3");
    EXPECT_EQ(t.name_of((9u << 16) | 1u), "SUBSYS_9:1");
    EXPECT_EQ(t.name_of(999), "REASON_999");
    EXPECT_EQ(t.value_of("NETFILTER_DROP"), 14u);
    EXPECT_EQ(t.value_of("netfilter_drop"), 14u);
    EXPECT_EQ(t.value_of("SKB_DROP_REASON_TC_INGRESS"), 75u);
    EXPECT_EQ(t.value_of("skb_drop_reason_tc_ingress"), 75u);
    EXPECT_FALSE(t.value_of("MAX").has_value());
    EXPECT_FALSE(t.value_of("SUBSYS_MASK").has_value());
    EXPECT_FALSE(t.value_of("CONSUMED").has_value());
    EXPECT_FALSE(t.value_of("").has_value());
}

TEST(ReasonSelection, DefaultIsPolicyReasonsPresentInThisKernel) {
    const auto t = fake_reasons();
    EXPECT_EQ(default_reason_names(t), (std::vector<std::string>{"NETFILTER_DROP", "TC_INGRESS", "TC_EGRESS",
                                                                 "BPF_CGROUP_EGRESS", "XDP", "XDP_REDIRECT"}));
    const auto sel = select_reasons(t, {}, false);
    ASSERT_TRUE(sel) << sel.error().message;
    for (uint32_t v : {14u, 57u, 64u, 74u, 75u, 76u}) {
        EXPECT_TRUE(sel->contains(v)) << v;
    }
    for (uint32_t v : {2u, 3u, 100u, (2u << 16) | 1u, 2000u}) {
        EXPECT_FALSE(sel->contains(v)) << v;
    }

    // An older kernel without TC_EGRESS or XDP: the default keeps what exists, no error.
    const auto old = ReasonTable::from_enumerators({{"SKB_DROP_REASON_NETFILTER_DROP", 12}}, {});
    const auto old_sel = select_reasons(old, {}, false);
    ASSERT_TRUE(old_sel) << old_sel.error().message;
    EXPECT_EQ(old_sel->names, std::vector<std::string>{"NETFILTER_DROP"});
}

TEST(ReasonSelection, NamesAnyCaseWithOrWithoutPrefix) {
    const auto sel = select_reasons(fake_reasons(), {"tc_ingress", "SKB_DROP_REASON_NETFILTER_DROP"}, false);
    ASSERT_TRUE(sel) << sel.error().message;
    EXPECT_TRUE(sel->contains(75));
    EXPECT_TRUE(sel->contains(14));
    EXPECT_FALSE(sel->contains(64));
    EXPECT_EQ(sel->names, (std::vector<std::string>{"TC_INGRESS", "NETFILTER_DROP"}));
}

TEST(ReasonSelection, AllKeepsEverythingIncludingSubsystems) {
    for (const auto& sel : {select_reasons(fake_reasons(), {"ALL"}, false), select_reasons(fake_reasons(), {}, true)}) {
        ASSERT_TRUE(sel) << sel.error().message;
        EXPECT_TRUE(sel->all);
        EXPECT_TRUE(sel->contains(2));
        EXPECT_TRUE(sel->contains((2u << 16) | 7u));
        EXPECT_TRUE(sel->contains(5000));
    }
}

TEST(ReasonSelection, UnknownNameIsOneLineListingValidOnes) {
    const auto bogus = select_reasons(fake_reasons(), {"netfilter_drop", "bogus"}, false);
    ASSERT_FALSE(bogus);
    std::string error = bogus.error().message;
    EXPECT_NE(error.find("unknown drop reason 'bogus'"), std::string::npos) << error;
    EXPECT_NE(error.find("valid: NOT_SPECIFIED, NO_SOCKET, NETFILTER_DROP"), std::string::npos) << error;
    EXPECT_NE(error.find("or all"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos);

    // A kernel without the enum (before 5.17) has no names to choose from.
    const auto no_enum = select_reasons(ReasonTable(), {"NETFILTER_DROP"}, false);
    ASSERT_FALSE(no_enum);
    error = no_enum.error().message;
    EXPECT_NE(error.find("no enum skb_drop_reason"), std::string::npos) << error;
}

TEST(ReasonTable, ReadsTheRunningKernelsBtf) {
    if (::access(kVmlinuxBtfPath, R_OK) != 0) {
        GTEST_SKIP() << "no " << kVmlinuxBtfPath;
    }
    struct btf* btf = btf__parse(kVmlinuxBtfPath, nullptr);
    ASSERT_NE(btf, nullptr);
    const auto t = ReasonTable::from_btf(btf);
    btf__free(btf);
    ASSERT_FALSE(t.empty());
    EXPECT_TRUE(t.value_of("NETFILTER_DROP").has_value());
    EXPECT_TRUE(t.value_of("TC_INGRESS").has_value());
    EXPECT_EQ(t.value_of("SKB_CSUM"),
              t.value_of("SKB_DROP_REASON_SKB_CSUM"));  // a name that starts with SKB_
    for (const auto& name : t.names()) {
        EXPECT_NE(name, "MAX");
        EXPECT_NE(name, "SUBSYS_MASK");
        EXPECT_EQ(name.rfind("SKB_DROP_REASON_", 0), std::string::npos) << name;
    }
}

std::vector<KernelSymbol> fake_symbols() {
    return {
        {0xffffffff81f81c50, "nf_hook_slow"},
        {0xffffffff81fbdf90, "nft_do_chain"},
        {0xffffffff81fbe500, "nft_do_chain_inet"},
        {0xffffffff82057290, "ip_forward"},
        {0xffffffff821e05d0, "br_nf_forward_ip.part.0"},
        {0xffffffff81000000, "_stext"},
    };
}

TEST(KernelSymbolizer, ResolvesToTheFunctionBelow) {
    const KernelSymbolizer sym(fake_symbols());
    EXPECT_EQ(sym.size(), 6u);
    auto r = sym.resolve(0xffffffff81fbe3ff);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->name, "nft_do_chain");
    EXPECT_EQ(r->offset, 0x46fu);
    r = sym.resolve(0xffffffff81f81c50);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->name, "nf_hook_slow");
    EXPECT_EQ(r->offset, 0u);
    EXPECT_FALSE(sym.resolve(0xffffffff80000000).has_value());  // below every symbol
    EXPECT_FALSE(sym.resolve(0xffffffff90000000).has_value());  // far beyond the last one
    EXPECT_EQ(sym.describe(0xffffffff81f81c93), "nf_hook_slow+0x43");
    EXPECT_EQ(sym.describe(0xffffffff80000000), "0xffffffff80000000");
    EXPECT_EQ(base_symbol_name("br_nf_forward_ip.part.0"), "br_nf_forward_ip");
    EXPECT_EQ(base_symbol_name("ip_forward"), "ip_forward");
}

TEST(KernelSymbolizer, ParsesKallsymsTextSymbolsOnly) {
    char path[] = "/tmp/npt-kallsyms.XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    {
        std::ofstream out(path);
        out << "ffffffff81f81c50 T nf_hook_slow\n"
               "ffffffff82a00000 D some_data\n"
               "ffffffffc0001000 t nft_do_chain_ipv4\t[nf_tables]\n"
               "ffffffff82057290 T ip_forward\n"
               "garbage line\n";
    }
    auto sym = KernelSymbolizer::from_kallsyms(path);
    ASSERT_TRUE(sym) << sym.error().message;
    EXPECT_EQ(sym->size(), 3u);
    EXPECT_EQ(sym->describe(0xffffffffc0001010), "nft_do_chain_ipv4+0x10");
    EXPECT_EQ(sym->describe(0xffffffff82057300), "ip_forward+0x70");

    {
        std::ofstream out(path);  // what an unprivileged reader sees
        out << "0000000000000000 T nf_hook_slow\n0000000000000000 T ip_forward\n";
    }
    const auto hidden = KernelSymbolizer::from_kallsyms(path);
    ASSERT_FALSE(hidden);
    EXPECT_NE(hidden.error().message.find("kptr_restrict"), std::string::npos) << hidden.error().message;
    std::remove(path);
    EXPECT_FALSE(KernelSymbolizer::from_kallsyms("/nonexistent/kallsyms"));
}

Enforcement classify(std::string_view reason, std::vector<std::string_view> frames, NetnsHints hints = {}) {
    return classify_enforcement(reason, frames, hints);
}

TEST(Enforcement, NetfilterHookFromTheCallerOfTheHook) {
    // Measured on 6.18: the stack of an nftables FORWARD drop, the sender's path beyond the softirq.
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nft_do_chain_inet", "nf_hook_slow", "ip_forward",
                                          "__netif_receive_skb_one_core", "process_backlog", "__napi_poll",
                                          "net_rx_action", "handle_softirqs", "ip_finish_output2", "ip_output"}),
              (Enforcement{"netfilter/FORWARD", "nftables"}));
    EXPECT_EQ(
        classify("NETFILTER_DROP", {"nft_do_chain", "nft_do_chain_inet", "nf_hook_slow", "ip_local_deliver", "ip_rcv"}),
        (Enforcement{"netfilter/INPUT", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "__ip_local_out", "ip_local_out",
                                          "ip_send_skb", "udp_send_skb"}),
              (Enforcement{"netfilter/OUTPUT", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "ip_rcv", "__netif_receive_skb_one_core"}),
              (Enforcement{"netfilter/PREROUTING", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "ip_output", "ip_local_out"}),
              (Enforcement{"netfilter/POSTROUTING", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "ip6_forward", "ipv6_rcv"}),
              (Enforcement{"netfilter/FORWARD", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "ip6_input", "ipv6_rcv"}),
              (Enforcement{"netfilter/INPUT", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "__ip6_local_out", "ip6_local_out"}),
              (Enforcement{"netfilter/OUTPUT", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "ip6_xmit", "inet6_csk_xmit"}),
              (Enforcement{"netfilter/OUTPUT", "nftables"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nf_hook_slow", "ipv6_rcv"}),
              (Enforcement{"netfilter/PREROUTING", "unknown"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"nft_do_chain", "nf_hook_slow", "br_nf_forward_ip.part.0", "nf_hook_slow",
                                          "__br_forward", "br_handle_frame"}),
              (Enforcement{"netfilter/FORWARD(bridge)", "nftables"}));
}

// Measured on 6.18: a packet an NFQUEUE listener (kube-network-policies) drops is freed with reason
// NOT_SPECIFIED in nfqnl_reinject, in the listener's sendto of the verdict; a queue without a listener frees it in
// nf_queue, under the hook that queued it.
TEST(Enforcement, QueueVerdicts) {
    EXPECT_EQ(classify("NOT_SPECIFIED", {"nfqnl_reinject", "nfqnl_recv_verdict", "nfnetlink_rcv_msg", "netlink_rcv_skb",
                                         "nfnetlink_rcv", "netlink_unicast", "netlink_sendmsg"}),
              (Enforcement{"netfilter/QUEUE", "nfqueue"}));
    EXPECT_EQ(classify("NOT_SPECIFIED", {"nf_reinject", "nfqnl_recv_verdict", "nfnetlink_rcv_msg"}),
              (Enforcement{"netfilter/QUEUE", "nfqueue"}));
    EXPECT_EQ(classify("NOT_SPECIFIED", {"nf_queue", "nf_hook_slow", "ip_local_deliver", "ip_rcv"}),
              (Enforcement{"netfilter/QUEUE", "nfqueue"}));
    // Elsewhere a NOT_SPECIFIED free is no policy's.
    EXPECT_EQ(classify("NOT_SPECIFIED", {"skb_release_data", "udp_recvmsg"}), (Enforcement{"other", "unknown"}));
}

TEST(KernelSymbolizer, FunctionRangesEndAtTheNextSymbol) {
    char path[] = "/tmp/npt-kallsyms-XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    {
        std::ofstream out(path);
        out << "ffffffff81f7a700 T nf_queue\n"
               "ffffffff81f7a9c0 t nf_queue_entry_free\n"
               "ffffffff81f7f680 t nfqnl_recv_verdict\n"
               "ffffffff81f7f600 d some_data\n"  // not text: does not end a function
               "ffffffff81f7fa00 t nfqnl_recv_verdict.cold\n"
               "ffffffff81f7fb00 T nfqnl_recv_config\n"
               "ffffffffc0001000 t nfqnl_recv_verdict_batch\t[nfnetlink_queue]\n";
    }
    auto found = find_function_ranges(path, {"nf_queue", "nfqnl_recv_verdict", "nfqnl_recv_verdict_batch"});
    ASSERT_TRUE(found) << found.error().message;
    const auto& ranges = *found;
    ASSERT_EQ(ranges.size(), 3u);  // the last symbol has no end: left out
    EXPECT_EQ(ranges[0].name, "nf_queue");
    EXPECT_EQ(ranges[0].start, 0xffffffff81f7a700u);
    EXPECT_EQ(ranges[0].len, 0x2c0u);
    EXPECT_EQ(ranges[1].name, "nfqnl_recv_verdict");
    EXPECT_EQ(ranges[1].len, 0x380u);
    EXPECT_EQ(ranges[2].name, "nfqnl_recv_verdict.cold");
    EXPECT_EQ(ranges[2].len, 0x100u);
    {
        std::ofstream out(path);
        out << "0000000000000000 T nf_queue\n0000000000000000 T ip_forward\n";
    }
    const auto hidden = find_function_ranges(path, {"nf_queue"});
    ASSERT_FALSE(hidden);
    EXPECT_NE(hidden.error().message.find("kptr_restrict"), std::string::npos) << hidden.error().message;
    std::remove(path);
}

TEST(Enforcement, LegacyIptablesNeedsTheTableOnTheStackOrTheNetnsHint) {
    EXPECT_EQ(classify("NETFILTER_DROP", {"nf_hook_slow", "ipt_do_table", "ip_forward"}),
              (Enforcement{"netfilter/FORWARD", "iptables-legacy"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {"ip6t_do_table", "nf_hook_slow", "ip6_forward"}),
              (Enforcement{"netfilter/FORWARD", "iptables-legacy"}));
    // Freed by nf_hook_slow after ipt_do_table returned: nothing on the stack names the table.
    const std::vector<std::string_view> legacy_stack{"nf_hook_slow", "ip_forward", "__netif_receive_skb_one_core"};
    EXPECT_TRUE(needs_legacy_probe("NETFILTER_DROP", legacy_stack));
    EXPECT_EQ(classify("NETFILTER_DROP", legacy_stack), (Enforcement{"netfilter/FORWARD", "unknown"}));
    EXPECT_EQ(classify("NETFILTER_DROP", legacy_stack, NetnsHints{true}),
              (Enforcement{"netfilter/FORWARD", "iptables-legacy"}));
    // nftables wins over the hint: its drops are freed inside nft_do_chain.
    const std::vector<std::string_view> nft_stack{"nft_do_chain", "nf_hook_slow", "ip_forward"};
    EXPECT_FALSE(needs_legacy_probe("NETFILTER_DROP", nft_stack));
    EXPECT_EQ(classify("NETFILTER_DROP", nft_stack, NetnsHints{true}), (Enforcement{"netfilter/FORWARD", "nftables"}));
    EXPECT_FALSE(needs_legacy_probe("TC_INGRESS", legacy_stack));
}

TEST(Enforcement, NftablesDropFreedByTheHookNeedsTheNetnsHint) {
    // Measured on 5.10 (kernel matrix): an nftables FORWARD drop is freed by nf_hook_slow.
    const std::vector<std::string_view> stack{"nf_hook_slow", "ip_forward", "__netif_receive_skb_one_core"};
    EXPECT_TRUE(needs_legacy_probe("unknown", stack));
    NetnsHints nft_only;
    nft_only.nftables_tables = true;
    EXPECT_EQ(classify("unknown", stack, nft_only), (Enforcement{"netfilter/FORWARD", "nftables"}));
    // Legacy tables present: iptables-legacy, as before (its drops are never on the stack).
    NetnsHints both;
    both.nftables_tables = true;
    both.iptables_legacy_tables = true;
    EXPECT_EQ(classify("unknown", stack, both), (Enforcement{"netfilter/FORWARD", "iptables-legacy"}));
}

TEST(Enforcement, ReasonsThatNameTheirDataplane) {
    EXPECT_EQ(classify("TC_INGRESS", {"__netif_receive_skb_core"}), (Enforcement{"tc/ingress", "tc"}));
    EXPECT_EQ(classify("TC_EGRESS", {"__dev_queue_xmit"}), (Enforcement{"tc/egress", "tc"}));
    EXPECT_EQ(classify("BPF_CGROUP_EGRESS", {"ip_finish_output"}), (Enforcement{"cgroup/egress", "cgroup"}));
    EXPECT_EQ(classify("BPF_CGROUP_INGRESS", {}), (Enforcement{"cgroup/ingress", "cgroup"}));
    EXPECT_EQ(classify("XDP", {}), (Enforcement{"xdp", "xdp"}));
    EXPECT_EQ(classify("XDP_REDIRECT", {}), (Enforcement{"xdp", "xdp"}));
    EXPECT_EQ(classify("NO_SOCKET", {"udp_queue_rcv_one_skb", "ip_local_deliver"}), (Enforcement{"other", "unknown"}));
    EXPECT_EQ(classify("NETFILTER_DROP", {}), (Enforcement{"netfilter/unknown", "unknown"}));
}

TEST(Enforcement, KernelsWithoutReasonsUseTheStack) {
    EXPECT_EQ(classify("unknown", {"kfree_skb", "nf_hook_slow", "ip_forward"}),
              (Enforcement{"netfilter/FORWARD", "unknown"}));
    EXPECT_EQ(classify("unknown", {"tcf_classify", "sch_handle_ingress", "__netif_receive_skb_core"}),
              (Enforcement{"tc/ingress", "tc"}));
    EXPECT_EQ(classify("unknown", {"sch_handle_egress", "__dev_queue_xmit"}), (Enforcement{"tc/egress", "tc"}));
    EXPECT_EQ(classify("unknown", {"udp_queue_rcv_one_skb"}), (Enforcement{"other", "unknown"}));
    // Measured on 5.10 (kernel matrix): sch_handle_ingress is inlined, the TC_ACT_SHOT packet is freed by
    // __netif_receive_skb_core itself.
    NetnsHints ip;
    ip.ip_packet = true;
    EXPECT_EQ(classify("unknown", {"__netif_receive_skb_core", "__netif_receive_skb_one_core", "process_backlog"}, ip),
              (Enforcement{"tc/ingress", "tc"}));
    EXPECT_EQ(classify("unknown", {"__dev_queue_xmit", "ip_finish_output2"}, ip), (Enforcement{"tc/egress", "tc"}));
    // Another ethertype without a protocol handler is freed at the same place: not a tc drop.
    EXPECT_EQ(classify("unknown", {"__netif_receive_skb_core", "__netif_receive_skb_one_core"}),
              (Enforcement{"other", "unknown"}));
}

TEST(KernelFeatures, HzSnapsToUsualValues) {
    EXPECT_EQ(snap_hz(249.1), 250u);
    EXPECT_EQ(snap_hz(101.5), 100u);
    EXPECT_EQ(snap_hz(995.0), 1000u);
    EXPECT_EQ(snap_hz(312.0), 300u);
    EXPECT_EQ(snap_hz(260.0), 250u);
    EXPECT_EQ(snap_hz(512.3), 512u);
}

TEST(KernelFeatures, AttachModeNames) {
    for (auto m : {AttachMode::kTpBtf, AttachMode::kRawTp, AttachMode::kTracepoint}) {
        EXPECT_EQ(parse_attach_mode(to_string(m)), m);
    }
    EXPECT_FALSE(parse_attach_mode("fentry").has_value());
}

TEST(DropEventValues, KernelAddressesBothFamiliesAndEndpoints) {
    const uint8_t v4_bytes[NPT_ADDR_LEN] = {10, 201, 2, 2};
    auto v4 = ip_of(NPT_AF_INET, v4_bytes);
    ASSERT_TRUE(v4.has_value());
    EXPECT_EQ(v4->str(), "10.201.2.2");
    EXPECT_EQ(npt_family_of(*v4), NPT_AF_INET);
    auto v6 = IpAddr::parse("fd00:201:2::2");
    ASSERT_TRUE(v6.has_value());
    EXPECT_EQ(ip_of(NPT_AF_INET6, v6->bytes.data()), v6);
    EXPECT_EQ(npt_family_of(*v6), NPT_AF_INET6);
    EXPECT_EQ((Endpoint{*v6, 80}).to_string(), "[fd00:201:2::2]:80");
    EXPECT_EQ((Endpoint{*v4, 53}).to_string(), "10.201.2.2:53");
    EXPECT_FALSE(ip_of(NPT_AF_UNSPEC, v4_bytes).has_value());  // not an IP packet
    EXPECT_EQ(ct_state_name(NPT_CT_ESTABLISHED), "established");
    EXPECT_EQ(ct_state_name(NPT_CT_UNTRACKED), "untracked");
    EXPECT_EQ(protocol_name(132), "sctp");
}

TEST(FlowCacheSlot, SameFunctionOnBothSidesStaysInRange) {
    npt_flow_key k{};
    k.family = NPT_AF_INET;
    k.reason = 12;
    for (int i = 0; i < 1000; ++i) {
        k.dport = static_cast<uint16_t>(i);
        k.saddr[3] = static_cast<uint8_t>(i);
        EXPECT_LT(npt_flow_cache_set_of(&k), static_cast<uint32_t>(NPT_FLOW_CACHE_SETS));
    }
}

// open() checks names and privileges before loading anything: both errors are one line.
TEST(DropCaptureOpen, UnknownReasonIsOneLine) {
    if (::access(kVmlinuxBtfPath, R_OK) != 0) {
        GTEST_SKIP() << "no " << kVmlinuxBtfPath;
    }
    CaptureOptions options;
    options.reasons = {"netfilter_drop", "NOT_A_REASON"};
    const auto opened = DropCapture::open(options);
    ASSERT_FALSE(opened);
    const std::string& error = opened.error().message;
    EXPECT_NE(error.find("unknown drop reason 'NOT_A_REASON'"), std::string::npos) << error;
    EXPECT_NE(error.find("NETFILTER_DROP"), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST(DropCaptureOpen, WithoutPrivilegesSaysHowToRun) {
    if (::access(kVmlinuxBtfPath, R_OK) != 0) {
        GTEST_SKIP() << "no " << kVmlinuxBtfPath;
    }
    // As root, a child drops to nobody (setuid clears the capabilities) so the check runs either way.
    int pipefd[2];
    ASSERT_EQ(::pipe(pipefd), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::close(pipefd[0]);
        if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
            ::_exit(3);
        }
        auto capture = DropCapture::open({});
        const std::string error = capture ? "" : capture.error().message;
        const ssize_t n = ::write(pipefd[1], error.data(), error.size());
        ::_exit(!capture && n >= 0 ? 0 : 2);
    }
    ::close(pipefd[1]);
    std::string error;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) {
        error.append(buf, static_cast<size_t>(n));
    }
    ::close(pipefd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << error;
    EXPECT_EQ(error, "loading BPF needs root or CAP_BPF+CAP_PERFMON (run with sudo)");
}

}  // namespace
}  // namespace npt::capture

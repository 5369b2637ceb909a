#include "enforcement.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "kernel_symbolizer.hpp"

namespace npt::capture {
namespace {

// The function that called the netfilter hook names it (NF_HOOK is inlined into these). The first of them
// above the drop wins: a FORWARD drop has ip_forward above it and ip_rcv further up.
constexpr std::array<std::pair<std::string_view, std::string_view>, 29> kHookCallers{{
    {"ip_forward", "FORWARD"},
    {"ip6_forward", "FORWARD"},
    {"br_nf_forward_ip", "FORWARD(bridge)"},
    {"br_nf_forward", "FORWARD(bridge)"},
    {"br_nf_forward_arp", "FORWARD(bridge)"},
    {"br_forward", "FORWARD(bridge)"},
    {"__br_forward", "FORWARD(bridge)"},
    {"ip_local_deliver", "INPUT"},
    {"ip6_input", "INPUT"},
    {"br_pass_frame_up", "INPUT(bridge)"},
    {"__ip_local_out", "OUTPUT"},
    {"ip_local_out", "OUTPUT"},
    {"__ip6_local_out", "OUTPUT"},
    {"ip6_local_out", "OUTPUT"},
    {"ip6_xmit", "OUTPUT"},  // TCP over IPv6 (inet6_csk_xmit) runs NF_INET_LOCAL_OUT inline
    {"ip_rcv", "PREROUTING"},
    {"ip_rcv_core", "PREROUTING"},
    {"ip_list_rcv", "PREROUTING"},
    {"ip_sublist_rcv", "PREROUTING"},
    {"ipv6_rcv", "PREROUTING"},
    {"ipv6_list_rcv", "PREROUTING"},
    {"ip6_sublist_rcv", "PREROUTING"},
    {"br_nf_pre_routing", "PREROUTING(bridge)"},
    {"ip_output", "POSTROUTING"},
    {"ip_finish_output", "POSTROUTING"},
    {"ip_finish_output2", "POSTROUTING"},
    {"ip6_output", "POSTROUTING"},
    {"ip6_finish_output", "POSTROUTING"},
    {"ip6_finish_output2", "POSTROUTING"},
}};

bool is_netfilter_core(std::string_view f) {
    return f == "nf_hook_slow" || f == "nf_hook_slow_list" || f == "nf_hook";
}

bool is_queue_verdict(std::string_view f) {
    return f == "nfqnl_reinject" || f == "nf_reinject" || f == "nfqnl_recv_verdict" ||
           f == "nfqnl_recv_verdict_batch" || f == "nf_queue";
}

bool is_nftables(std::string_view f) {
    return f.rfind("nft_do_chain", 0) == 0;
}

bool is_iptables_legacy(std::string_view f) {
    return f == "ipt_do_table" || f == "ip6t_do_table" || f == "arpt_do_table";
}

// Where the packet entered the softirq: frames beyond belong to whoever raised it (often the sender's
// ip_output), not to the dropped packet's path.
bool is_softirq_boundary(std::string_view f) {
    return f.rfind("__netif_receive_skb", 0) == 0 || f.rfind("netif_receive_skb", 0) == 0 || f == "process_backlog" ||
           f == "__napi_poll" || f == "net_rx_action" || f == "handle_softirqs" || f == "__do_softirq" ||
           f == "do_softirq";
}

bool has_frame(const std::vector<std::string_view>& frames, bool (*pred)(std::string_view)) {
    return std::any_of(frames.begin(), frames.end(), pred);
}

std::vector<std::string_view> base_names(const std::vector<std::string_view>& raw_frames) {
    std::vector<std::string_view> frames;
    frames.reserve(raw_frames.size());
    for (auto f : raw_frames) {
        frames.push_back(base_symbol_name(f));
    }
    return frames;
}

}  // namespace

bool needs_legacy_probe(std::string_view reason, const std::vector<std::string_view>& raw_frames) {
    const auto frames = base_names(raw_frames);
    return (reason == "NETFILTER_DROP" || reason == "unknown") && !frames.empty() && is_netfilter_core(frames[0]) &&
           !has_frame(frames, is_nftables) && !has_frame(frames, is_iptables_legacy);
}

Enforcement classify_enforcement(std::string_view reason, const std::vector<std::string_view>& raw_frames,
                                 const NetnsHints& hints) {
    const auto frames = base_names(raw_frames);

    if (reason == "TC_INGRESS") {
        return {"tc/ingress", "tc"};
    }
    if (reason == "TC_EGRESS") {
        return {"tc/egress", "tc"};
    }
    if (reason == "BPF_CGROUP_EGRESS") {
        return {"cgroup/egress", "cgroup"};
    }
    if (reason == "BPF_CGROUP_INGRESS") {
        return {"cgroup/ingress", "cgroup"};
    }
    if (reason.rfind("XDP", 0) == 0) {
        return {"xdp", "xdp"};
    }

    // An NFQUEUE listener's drop verdict (kube-network-policies decides in userspace), or a queue without a
    // listener: the hook that queued the packet is not on the verdict's stack.
    if (!frames.empty() && is_queue_verdict(frames[0])) {
        return {"netfilter/QUEUE", "nfqueue"};
    }

    const bool netfilter = reason == "NETFILTER_DROP" || has_frame(frames, is_netfilter_core) ||
                           has_frame(frames, is_nftables) || has_frame(frames, is_iptables_legacy);
    if (netfilter) {
        std::string backend = "unknown";
        const bool freed_by_hook = !frames.empty() && is_netfilter_core(frames[0]);
        if (has_frame(frames, is_nftables)) {
            backend = "nftables";
        } else if (has_frame(frames, is_iptables_legacy) || (freed_by_hook && hints.iptables_legacy_tables)) {
            backend = "iptables-legacy";
        } else if (freed_by_hook && hints.nftables_tables) {
            backend = "nftables";
        }
        // Callers of the hook come after nf_hook_slow; before it are the table functions themselves.
        auto from = std::find_if(frames.begin(), frames.end(), is_netfilter_core);
        if (from == frames.end()) {
            from = frames.begin();
        }
        for (auto it = from; it != frames.end() && !is_softirq_boundary(*it); ++it) {
            for (const auto& [caller, hook] : kHookCallers) {
                if (*it == caller) {
                    return {"netfilter/" + std::string(hook), std::move(backend)};
                }
            }
        }
        return {"netfilter/unknown", std::move(backend)};
    }

    // Kernels without a drop reason (before 5.17): recognise the dataplane from the stack alone.
    if (reason == "unknown") {
        // There the tc hooks are inlined (5.10, measured): sch_handle_ingress into __netif_receive_skb_core,
        // sch_handle_egress into __dev_queue_xmit, which free a TC_ACT_SHOT packet themselves. Neither frees a
        // well-formed IP packet directly for any other reason (a missing protocol handler concerns other
        // ethertypes; a device that is down frees through kfree_skb_list), so an IP packet freed right there
        // was shot by tc.
        if (hints.ip_packet && !frames.empty()) {
            if (frames[0] == "__netif_receive_skb_core") {
                return {"tc/ingress", "tc"};
            }
            if (frames[0] == "__dev_queue_xmit") {
                return {"tc/egress", "tc"};
            }
        }
        for (auto f : frames) {
            if (f == "sch_handle_ingress") {
                return {"tc/ingress", "tc"};
            }
            if (f == "sch_handle_egress") {
                return {"tc/egress", "tc"};
            }
            if (f == "__cgroup_bpf_run_filter_skb") {
                return {"cgroup/unknown", "cgroup"};
            }
            if (f == "do_xdp_generic" || f == "bpf_prog_run_generic_xdp") {
                return {"xdp", "xdp"};
            }
        }
    }
    return {"other", "unknown"};
}

}  // namespace npt::capture

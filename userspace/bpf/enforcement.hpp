// Where in the dataplane a packet was dropped, from the drop reason and the symbolized kernel stack.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace npt::capture {

struct Enforcement {
    // Short and stable: "netfilter/FORWARD", "netfilter/FORWARD(bridge)", "netfilter/INPUT",
    // "netfilter/OUTPUT", "netfilter/PREROUTING", "netfilter/POSTROUTING", "netfilter/unknown",
    // "netfilter/QUEUE" (an NFQUEUE listener's drop verdict), "tc/ingress", "tc/egress", "cgroup/egress",
    // "cgroup/ingress", "xdp", or "other" (a drop that is not a policy decision).
    std::string point;
    // "nftables" (iptables-nft included), "iptables-legacy", "nfqueue", "tc", "cgroup", "xdp", "unknown".
    std::string backend;

    bool operator==(const Enforcement&) const = default;
};

// Facts about the drop (its packet, its network namespace) that the stack cannot show.
struct NetnsHints {
    // The netns has iptables-legacy tables (/proc/net/ip_tables_names or ip6_tables_names not empty). Needed
    // because a legacy DROP is freed by nf_hook_slow after ipt_do_table returned: the table is not on the
    // stack. On kernels where nftables frees its drops inside nft_do_chain (6.1 and later do), a netfilter drop
    // at nf_hook_slow in a netns with legacy tables is iptables-legacy.
    bool iptables_legacy_tables = false;
    // The netns has nftables tables (iptables-nft's included). Before 6.1 (5.10, measured in the kernel
    // matrix) nftables drops are freed by nf_hook_slow as well: a netfilter drop at nf_hook_slow in a netns
    // with nftables tables and no legacy ones is nftables'. Only consulted without legacy tables.
    bool nftables_tables = false;
    // The dropped packet is IPv4 or IPv6 (its headers parsed).
    bool ip_packet = false;
};

// `reason`: canonical reason name ("NETFILTER_DROP", "unknown", ...). `frames`: function names from the drop
// site outward (the drop location first, then its callers); compiler suffixes such as ".part.0" are ignored.
// Pure.
Enforcement classify_enforcement(std::string_view reason, const std::vector<std::string_view>& frames,
                                 const NetnsHints& hints = {});

// True when the stack does not name the netfilter backend of this drop (a drop freed by nf_hook_slow) and the
// netns should be probed for its iptables-legacy and nftables tables.
bool needs_legacy_probe(std::string_view reason, const std::vector<std::string_view>& frames);

}  // namespace npt::capture

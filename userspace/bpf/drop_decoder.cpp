#include "drop_decoder.hpp"

#include <net/if.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string_view>
#include <utility>

namespace npt::capture {

DropDecoder::DropDecoder(Sources sources) : src_(sources) {}

size_t DropDecoder::SiteKeyHash::operator()(const SiteKey& k) const {
    uint64_t h = k.location ^ (uint64_t(k.reason) << 16) ^ k.netns_inum;
    for (uint64_t ip : k.stack) {
        h = (h ^ ip) * 0x9e3779b97f4a7c15ULL;
    }
    return std::hash<uint64_t>()(h);
}

std::vector<uint64_t> DropDecoder::stack_of(const npt_drop_event& e) {
    const size_t n = std::min<size_t>(e.stack_len, NPT_STACK_DEPTH);
    std::vector<uint64_t> ips(e.stack, e.stack + n);
    ips.erase(std::find(ips.begin(), ips.end(), 0), ips.end());
    return ips;
}

// `ips`: the event's stack (stack_of), innermost first.
DropDecoder::Attribution DropDecoder::attribute(const npt_drop_event& e, const std::string& reason,
                                                std::vector<uint64_t> ips) {
    Attribution a;
    // Start at the drop site: the location is the return address into the function that freed the skb.
    auto at = std::find(ips.begin(), ips.end(), e.key.location);
    if (at != ips.end()) {
        ips.erase(ips.begin(), at);
    } else {
        ips.insert(ips.begin(), e.key.location);
    }
    const KernelSymbolizer* sym = src_.symbols;
    std::vector<std::string_view> names;
    for (uint64_t ip : ips) {
        if (sym) {
            if (auto r = sym->resolve(ip)) {
                names.push_back(r->name);
            }
            a.stack.push_back(sym->describe(ip));
        }
    }
    a.location_symbol = sym ? sym->describe(e.key.location) : KernelSymbolizer().describe(e.key.location);
    NetnsHints hints;
    hints.ip_packet = e.key.family == NPT_AF_INET || e.key.family == NPT_AF_INET6;
    if (src_.netns && needs_legacy_probe(reason, names)) {
        hints.iptables_legacy_tables = src_.netns->has_iptables_legacy_tables(e.key.netns_inum).value_or(false);
        if (!hints.iptables_legacy_tables) {
            hints.nftables_tables = src_.netns->has_nftables_tables(e.key.netns_inum).value_or(false);
        }
    }
    a.enforcement = classify_enforcement(reason, names, hints);
    return a;
}

DropEvent DropDecoder::decode(const npt_drop_event& e) {
    DropEvent out;
    out.kind = e.kind == NPT_EVENT_RESUMED ? EventKind::kResumed : EventKind::kNewFlow;
    out.key = e.key;
    out.src = ip_of(e.key.family, e.key.saddr);
    out.dst = ip_of(e.key.family, e.key.daddr);
    out.protocol = e.key.protocol;
    out.protocol_name = e.key.family == NPT_AF_UNSPEC ? "" : protocol_name(e.key.protocol);
    out.sport = e.sport;
    out.dport = e.key.dport;
    out.tcp_flags = e.tcp_flags;
    out.icmp_type = e.icmp_type;
    out.icmp_code = e.icmp_code;
    out.l3_proto = e.key.l3_proto;
    out.reason_value = e.key.reason;
    out.reason = src_.reasons->name_of(e.key.reason);
    out.location = e.key.location;

    std::shared_ptr<const Attribution> attribution;
    if (e.kind == NPT_EVENT_NEW_FLOW) {
        SiteKey site{stack_of(e), e.key.reason, e.key.netns_inum, e.key.location};
        if (site_attributions_.size() > 16384) {
            site_attributions_.clear();  // pod churn across many netns: start over rather than grow
        }
        auto& cached = site_attributions_[site];
        if (!cached) {
            cached = std::make_shared<const Attribution>(attribute(e, out.reason, site.stack));
        }
        attribution = cached;
        // Bounded: the LRU bounds live flows; forget everything when far beyond (resumed events then fall
        // back to the drop location).
        if (flow_attributions_.size() > 2 * src_.max_flows) {
            flow_attributions_.clear();
        }
        flow_attributions_[e.key] = attribution;
    } else if (auto it = flow_attributions_.find(e.key); it != flow_attributions_.end()) {
        attribution = it->second;
    } else {
        attribution = std::make_shared<const Attribution>(attribute(e, out.reason, stack_of(e)));
        flow_attributions_[e.key] = attribution;
    }
    out.enforcement = attribution->enforcement.point;
    out.backend = attribution->enforcement.backend;
    out.location_symbol = attribution->location_symbol;
    if (e.kind == NPT_EVENT_NEW_FLOW) {
        out.stack = attribution->stack;
    }

    if (src_.rules && (e.key.family == NPT_AF_INET || e.key.family == NPT_AF_INET6)) {
        npt_rule_key rk{};
        rk.family = e.key.family;
        rk.protocol = e.key.protocol;
        rk.dport = e.key.dport;
        rk.netns_inum = e.key.netns_inum;
        std::memcpy(rk.saddr, e.key.saddr, sizeof(rk.saddr));
        std::memcpy(rk.daddr, e.key.daddr, sizeof(rk.daddr));
        out.rule = src_.rules->lookup(rk);
        // The verdict names the backend where the stack could not (a drop freed by nf_hook_slow).
        if (out.rule && out.backend == "unknown") {
            out.backend = out.rule->backend;
        }
    }

    out.ct_state = std::string(ct_state_name(e.ct_state));
    if (auto orig = ip_of(e.orig_dst_family, e.orig_daddr)) {
        out.original_dst = Endpoint{*orig, e.orig_dport};
    }
    out.ifindex = e.dev_ifindex;
    out.ingress_ifindex = e.skb_iif;
    out.netns_inum = e.key.netns_inum;
    out.netns_from_socket = (e.key.path & NPT_PATH_NETNS_FROM_SOCK) != 0;
    if (out.ifindex != 0 && out.netns_inum != 0) {
        if (out.netns_inum == src_.own_netns_inum) {
            char name[IF_NAMESIZE] = {};
            if (::if_indextoname(out.ifindex, name) != nullptr) {
                out.ifname = name;
            }
        } else if (src_.netns) {
            out.ifname = src_.netns->interface_name(out.netns_inum, out.ifindex);
        }
    }
    out.count = e.count;
    out.first_ns = e.first_ns;
    out.last_ns = e.ts_ns;
    out.first_seen = to_wall_clock(e.first_ns);
    out.last_seen = to_wall_clock(e.ts_ns);
    return out;
}

npt_drop_event DropDecoder::record_of(const FlowKey& key, const npt_flow_value& v) {
    npt_drop_event e{};
    e.key = key;
    e.count = v.count;
    e.first_ns = v.first_ns;
    e.ts_ns = v.last_ns;
    e.sport = v.last_sport;
    e.kind = NPT_EVENT_NEW_FLOW;
    e.ct_state = v.ct_state;
    e.tcp_flags = v.tcp_flags;
    e.icmp_type = v.icmp_type;
    e.icmp_code = v.icmp_code;
    return e;
}

}  // namespace npt::capture

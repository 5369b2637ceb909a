// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The lab's eBPF-CNI dataplane (scripts/lab, dataplane "tc"): a stand-in for a Cilium-style "from-container"
 * program. It sits at tc ingress of every pod's host-side veth, so it sees each packet a pod sends before the node
 * routes or bridges it, and enforces there both the sender's egress policy and the receiver's ingress policy.
 * A dropped packet is freed with SKB_DROP_REASON_TC_INGRESS, which is what netpol-trace reports for eBPF CNIs.
 *
 * Maps (filled by scripts/lab with bpftool; all addresses 16 bytes, IPv4 in the first 4):
 *   lab_endpoints  pod IP -> which directions NetworkPolicies isolate
 *   lab_allow      (pod IP, direction, peer IP, protocol, port) -> allowed; peer all-zero = any peer,
 *                  port 0 = any port, protocol 0 = any protocol (and any port)
 *   lab_services   (Service IP, protocol, port) -> one endpoint: policy is decided on the endpoint, as
 *                  NetworkPolicy requires, although this hook runs before kube-proxy's DNAT
 *   lab_conns      flows this program allowed; their packets and replies pass (the program's own conntrack)
 *   lab_stale      (src, dst, protocol, port) dropped regardless of policy and connection state: the lab's
 *                  "old policy still programmed" entries for the established-connection case
 * Only TCP, UDP and SCTP are policed; ARP, ND and ICMP pass, so neighbours resolve.
 */
#include "vmlinux.h"

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define LAB_TC_ACT_OK 0
#define LAB_TC_ACT_SHOT 2
#define LAB_ETH_P_IP 0x0800
#define LAB_ETH_P_IPV6 0x86DD
#define LAB_IPPROTO_TCP 6
#define LAB_IPPROTO_UDP 17
#define LAB_IPPROTO_SCTP 132
#define LAB_DIR_INGRESS 1
#define LAB_DIR_EGRESS 2
#define LAB_AF_INET 4
#define LAB_AF_INET6 6

struct lab_endpoint {
    __u8 ingress_isolated;
    __u8 egress_isolated;
    __u8 pad[2];
};

struct lab_allow_key {
    __u8 local[16];
    __u8 peer[16];
    __u8 family;
    __u8 direction;
    __u8 protocol;
    __u8 pad;
    __u16 port; /* host order */
    __u8 pad2[2];
};

struct lab_addr_key {
    __u8 addr[16];
    __u8 family;
    __u8 pad[3];
};

struct lab_service_key {
    __u8 addr[16];
    __u8 family;
    __u8 protocol;
    __u16 port; /* host order */
};

struct lab_service_value {
    __u8 addr[16];
    __u16 port; /* host order */
    __u8 pad[2];
};

struct lab_flow_key {
    __u8 saddr[16];
    __u8 daddr[16];
    __u8 family;
    __u8 protocol;
    __u16 sport; /* host order */
    __u16 dport;
    __u8 pad[2];
};

struct lab_stale_key {
    __u8 saddr[16];
    __u8 daddr[16];
    __u8 family;
    __u8 protocol;
    __u16 dport; /* host order */
};

_Static_assert(sizeof(struct lab_allow_key) == 40, "lab_allow_key layout is shared with scripts/lab.d");
_Static_assert(sizeof(struct lab_flow_key) == 40, "lab_flow_key layout");
_Static_assert(sizeof(struct lab_stale_key) == 36, "lab_stale_key layout is shared with scripts/lab.d");
_Static_assert(sizeof(struct lab_service_key) == 20, "lab_service_key layout is shared with scripts/lab.d");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct lab_addr_key);
    __type(value, struct lab_endpoint);
} lab_endpoints SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct lab_allow_key);
    __type(value, __u8);
} lab_allow SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct lab_service_key);
    __type(value, struct lab_service_value);
} lab_services SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct lab_flow_key);
    __type(value, __u8);
} lab_conns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct lab_stale_key);
    __type(value, __u8);
} lab_stale SEC(".maps");

static __always_inline bool allowed_with(struct lab_allow_key* k, const __u8* peer, __u8 protocol, __u16 port) {
    __builtin_memcpy(k->peer, peer, 16);
    k->protocol = protocol;
    k->port = port;
    return bpf_map_lookup_elem(&lab_allow, k) != NULL;
}

/* Is `peer` allowed to/from `local` in `direction`? Tries the exact entry, then the wildcards. */
static __always_inline bool policy_allows(const __u8* local, __u8 family, __u8 direction, const __u8* peer,
                                          __u8 protocol, __u16 port) {
    __u8 any[16] = {};
    struct lab_allow_key k = {};

    __builtin_memcpy(k.local, local, 16);
    k.family = family;
    k.direction = direction;
    return allowed_with(&k, peer, protocol, port) || allowed_with(&k, peer, protocol, 0) ||
           allowed_with(&k, peer, 0, 0) || allowed_with(&k, any, protocol, port) ||
           allowed_with(&k, any, protocol, 0) || allowed_with(&k, any, 0, 0);
}

static __always_inline __u8 isolation(const __u8* addr, __u8 family, __u8 direction) {
    struct lab_addr_key k = {};
    struct lab_endpoint* ep;

    __builtin_memcpy(k.addr, addr, 16);
    k.family = family;
    ep = bpf_map_lookup_elem(&lab_endpoints, &k);
    if (!ep) return 0;
    return direction == LAB_DIR_INGRESS ? ep->ingress_isolated : ep->egress_isolated;
}

SEC("tc")
int lab_tc_policy(struct __sk_buff* skb) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    struct lab_flow_key flow = {};
    __u8* l4;

    if ((void*)(eth + 1) > end) return LAB_TC_ACT_OK;
    if (eth->h_proto == bpf_htons(LAB_ETH_P_IP)) {
        struct iphdr* ip = (void*)(eth + 1);
        if ((void*)(ip + 1) > end || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x1fff))) return LAB_TC_ACT_OK;
        flow.family = LAB_AF_INET;
        flow.protocol = ip->protocol;
        __builtin_memcpy(flow.saddr, &ip->saddr, 4);
        __builtin_memcpy(flow.daddr, &ip->daddr, 4);
        l4 = (__u8*)(ip + 1);
    } else if (eth->h_proto == bpf_htons(LAB_ETH_P_IPV6)) {
        struct ipv6hdr* ip6 = (void*)(eth + 1);
        if ((void*)(ip6 + 1) > end) return LAB_TC_ACT_OK;
        flow.family = LAB_AF_INET6;
        flow.protocol = ip6->nexthdr; /* extension headers are not policed */
        __builtin_memcpy(flow.saddr, &ip6->saddr, 16);
        __builtin_memcpy(flow.daddr, &ip6->daddr, 16);
        l4 = (__u8*)(ip6 + 1);
    } else {
        return LAB_TC_ACT_OK;
    }
    if (flow.protocol != LAB_IPPROTO_TCP && flow.protocol != LAB_IPPROTO_UDP && flow.protocol != LAB_IPPROTO_SCTP)
        return LAB_TC_ACT_OK;
    if ((void*)(l4 + 4) > end) return LAB_TC_ACT_OK;
    flow.sport = ((__u16)l4[0] << 8) | l4[1];
    flow.dport = ((__u16)l4[2] << 8) | l4[3];

    struct lab_stale_key stale = {};
    __builtin_memcpy(stale.saddr, flow.saddr, 16);
    __builtin_memcpy(stale.daddr, flow.daddr, 16);
    stale.family = flow.family;
    stale.protocol = flow.protocol;
    stale.dport = flow.dport;
    if (bpf_map_lookup_elem(&lab_stale, &stale)) return LAB_TC_ACT_SHOT;

    /* The policy destination: a Service IP is decided on its endpoint. */
    struct lab_service_key svc = {};
    __builtin_memcpy(svc.addr, flow.daddr, 16);
    svc.family = flow.family;
    svc.protocol = flow.protocol;
    svc.port = flow.dport;
    struct lab_service_value* ep = bpf_map_lookup_elem(&lab_services, &svc);
    if (ep) {
        __builtin_memcpy(flow.daddr, ep->addr, 16);
        flow.dport = ep->port;
    }

    if (bpf_map_lookup_elem(&lab_conns, &flow)) return LAB_TC_ACT_OK;
    struct lab_flow_key reverse = {};
    __builtin_memcpy(reverse.saddr, flow.daddr, 16);
    __builtin_memcpy(reverse.daddr, flow.saddr, 16);
    reverse.family = flow.family;
    reverse.protocol = flow.protocol;
    reverse.sport = flow.dport;
    reverse.dport = flow.sport;
    if (bpf_map_lookup_elem(&lab_conns, &reverse)) return LAB_TC_ACT_OK;

    if (isolation(flow.saddr, flow.family, LAB_DIR_EGRESS) &&
        !policy_allows(flow.saddr, flow.family, LAB_DIR_EGRESS, flow.daddr, flow.protocol, flow.dport))
        return LAB_TC_ACT_SHOT;
    if (isolation(flow.daddr, flow.family, LAB_DIR_INGRESS) &&
        !policy_allows(flow.daddr, flow.family, LAB_DIR_INGRESS, flow.saddr, flow.protocol, flow.dport))
        return LAB_TC_ACT_SHOT;

    __u8 one = 1;
    bpf_map_update_elem(&lab_conns, &flow, &one, BPF_ANY);
    return LAB_TC_ACT_OK;
}

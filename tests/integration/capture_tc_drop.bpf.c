// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Test helper for capture_netns_test: a tc ingress program dropping IPv4 UDP to one port (TC_ACT_SHOT), the
 * way eBPF CNIs enforce policy. This kernel has no cls_u32/flower/gact, so `tc ... action drop` is not an
 * option. */
/* vmlinux.h first: it defines the kernel types the libbpf headers need. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NPT_TC_ACT_OK 0
#define NPT_TC_ACT_SHOT 2
#define NPT_ETH_P_IP 0x0800

const volatile __u16 drop_udp_port = 0; /* host order */

SEC("tc")
int npt_test_tc_drop(struct __sk_buff* skb) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    struct iphdr* ip;
    struct udphdr* udp;

    if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(NPT_ETH_P_IP)) return NPT_TC_ACT_OK;
    ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5) return NPT_TC_ACT_OK;
    udp = (void*)(ip + 1);
    if ((void*)(udp + 1) > end) return NPT_TC_ACT_OK;
    return udp->dest == bpf_htons(drop_udp_port) ? NPT_TC_ACT_SHOT : NPT_TC_ACT_OK;
}

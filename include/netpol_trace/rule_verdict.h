/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by bpf/rule_verdict.bpf.c and userspace/bpf/rule_attribution.cpp: the netfilter rule that
 * returned the DROP verdict of a flow, recorded by fexit programs on nft_do_chain / ipt_do_table where the
 * kernel allows BPF trampolines. Same layout rules as drop_event.h (fixed-width fields, explicit padding).
 */
#ifndef NETPOL_TRACE_RULE_VERDICT_H
#define NETPOL_TRACE_RULE_VERDICT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define NPT_RV_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NPT_RV_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define NPT_RV_ADDR_LEN 16
#define NPT_RV_NAME_LEN 32    /* NFT_TABLE_MAXNAMELEN/NFT_CHAIN_MAXNAMELEN are 256: longer names are cut */
#define NPT_RV_COMMENT_LEN 64 /* the first bytes of a rule comment */

enum npt_rv_backend {
    NPT_RV_NFTABLES = 1,
    NPT_RV_IPTABLES_LEGACY = 2,
};

/* What the drop capture's flow key holds of a flow (family, addresses, protocol, destination port, netns):
 * userspace looks a new drop event up with these fields. */
struct npt_rule_key {
    __u8 family; /* NPT_AF_INET / NPT_AF_INET6 (drop_event.h) */
    __u8 protocol;
    __u16 dport;
    __u32 netns_inum;
    __u8 saddr[NPT_RV_ADDR_LEN];
    __u8 daddr[NPT_RV_ADDR_LEN];
};

struct npt_rule_value {
    __u64 handle;  /* nftables rule handle; valid when has_handle */
    __u64 seen_ns; /* last DROP verdict for the flow (bpf_ktime_get_ns) */
    char table[NPT_RV_NAME_LEN];
    char chain[NPT_RV_NAME_LEN]; /* the chain holding the rule (a base chain or one jumped to) */
    char comment[NPT_RV_COMMENT_LEN];
    __u8 backend; /* enum npt_rv_backend */
    __u8 has_handle;
    __u8 hook;         /* NF_INET_* of the hook that ran the table */
    __u8 table_family; /* NFPROTO_* of the nftables table (0 for iptables-legacy): to ask for the rule's comments */
    __u8 pad[4];
};

NPT_RV_STATIC_ASSERT(sizeof(struct npt_rule_key) == 40, "npt_rule_key layout");
NPT_RV_STATIC_ASSERT(sizeof(struct npt_rule_value) == 152, "npt_rule_value layout");

#endif

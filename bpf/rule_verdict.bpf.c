// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Which netfilter rule returned a flow's DROP verdict, from fexit programs. Loaded only where the kernel allows
 * BPF trampolines (userspace probes; the drop capture works without it) and only for the tables' functions whose
 * module is loaded:
 *
 *   fexit/nft_immediate_eval, fexit/nft_reject_{inet,ipv4,ipv6}_eval
 *       the expression that set NF_DROP (a `drop` verdict, a `reject`): remembers, per CPU, the expression and the
 *       packet's flow, parsed while the skb is still alive (from 6.1 nftables frees its drops inside
 *       nft_do_chain, before that function returns)
 *   fexit/nft_do_chain
 *       the base chain returned NF_DROP: names the table and the chain holding the remembered expression and the
 *       rule's handle and comment, once per flow (known flows only refresh seen_ns)
 *   fexit/ipt_do_table, fexit/ip6t_do_table
 *       iptables-legacy returned NF_DROP: the table and the hook's built-in chain (no handle in legacy tables)
 *
 * The result goes to the `rules` LRU map, keyed like the drop capture's flows (family, addresses, protocol,
 * destination port, netns), where userspace finds it when the drop's event arrives.
 */
/* vmlinux.h first: it defines the kernel types every other header here needs. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "netpol_trace/drop_event.h"
#include "netpol_trace/rule_verdict.h"
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* BPF_PROG() declares the raw context the programs below read through their typed arguments instead. */
#pragma clang diagnostic ignored "-Wunused-parameter"

#define NPT_NF_DROP 0
#define NPT_NF_STOLEN 2
#define NPT_NF_VERDICT_MASK 0xff
#define NPT_ETH_P_IP 0x0800
#define NPT_ETH_P_IPV6 0x86DD
/* Bounds of the searches (the verifier walks each loop; they run once per new dropped flow). */
#define NPT_MAX_CHAINS 128 /* chains of one table searched for the rule */
#define NPT_MAX_RULES 256  /* rules of one chain walked */
#define NPT_UDATA_RULE_COMMENT 0

/* Set by userspace: ipt_do_table(priv, skb, state) since 5.16, (skb, state, table) before. */
const volatile bool ipt_priv_first = true;

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct npt_rule_key);
    __type(value, struct npt_rule_value);
} rules SEC(".maps");

/* The verdict expression seen last on this CPU; nft_do_chain's fexit uses it when its `pkt` matches. */
struct npt_verdict_scratch {
    const void* expr;
    const void* pkt;
    struct npt_rule_key key;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct npt_verdict_scratch);
} scratch SEC(".maps");

/* 5.10's nft_pktinfo reaches the hook state through the xtables parameters. */
struct nft_pktinfo___xt {
    struct sk_buff* skb;
    struct xt_action_param xt;
} __attribute__((preserve_access_index));

/* Flow key of the drop capture (bpf/drop.bpf.c), from the packet's headers and the device's (or socket's)
 * netns. Returns false when the packet is not IP. */
static __always_inline bool flow_key_of(struct sk_buff* skb, struct npt_rule_key* key) {
    __u8 hdr[44];
    unsigned char* head = BPF_CORE_READ(skb, head);
    __u16 nh = BPF_CORE_READ(skb, network_header);
    __u16 proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
    struct net_device* dev = BPF_CORE_READ(skb, dev);
    __u32 l4off;
    __u8 next;

    __builtin_memset(key, 0, sizeof(*key));
    if (!head || bpf_probe_read_kernel(hdr, sizeof(hdr), head + nh)) return false;
    if (proto == NPT_ETH_P_IP || (hdr[0] >> 4) == 4) {
        if ((hdr[0] >> 4) != 4) return false;
        key->family = NPT_AF_INET;
        next = hdr[9];
        __builtin_memcpy(key->saddr, hdr + 12, 4);
        __builtin_memcpy(key->daddr, hdr + 16, 4);
        l4off = (hdr[0] & 0xf) * 4;
        if ((((__u16)hdr[6] << 8) | hdr[7]) & 0x1fff) l4off = 0; /* later fragment: no ports */
    } else if ((hdr[0] >> 4) == 6) {
        key->family = NPT_AF_INET6;
        next = hdr[6];
        __builtin_memcpy(key->saddr, hdr + 8, 16);
        __builtin_memcpy(key->daddr, hdr + 24, 16);
        l4off = 40;
    } else {
        return false;
    }
    key->protocol = next;
    if (l4off && (next == 6 || next == 17 || next == 132 || next == 136)) {
        __u16 ports[2];
        if (!bpf_probe_read_kernel(ports, sizeof(ports), head + nh + l4off)) key->dport = bpf_ntohs(ports[1]);
    }
    if (dev) {
        key->netns_inum = BPF_CORE_READ(dev, nd_net.net, ns.inum);
    } else {
        struct sock* sk = BPF_CORE_READ(skb, sk);
        if (sk) key->netns_inum = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
    }
    return true;
}

static __always_inline void remember_drop_expr(const void* expr, struct nft_regs* regs, const struct nft_pktinfo* pkt) {
    __u32 zero = 0;
    struct npt_verdict_scratch* s;

    if (BPF_CORE_READ(regs, verdict.code) != NPT_NF_DROP) return;
    s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s) return;
    if (!flow_key_of(BPF_CORE_READ(pkt, skb), &s->key)) {
        s->pkt = 0;
        return;
    }
    s->expr = expr;
    s->pkt = pkt;
}

SEC("fexit/nft_immediate_eval")
int BPF_PROG(npt_nft_immediate_exit, const struct nft_expr* expr, struct nft_regs* regs,
             const struct nft_pktinfo* pkt) {
    remember_drop_expr(expr, regs, pkt);
    return 0;
}

SEC("fexit/nft_reject_inet_eval")
int BPF_PROG(npt_nft_reject_inet_exit, const struct nft_expr* expr, struct nft_regs* regs,
             const struct nft_pktinfo* pkt) {
    remember_drop_expr(expr, regs, pkt);
    return 0;
}

SEC("fexit/nft_reject_ipv4_eval")
int BPF_PROG(npt_nft_reject_ipv4_exit, const struct nft_expr* expr, struct nft_regs* regs,
             const struct nft_pktinfo* pkt) {
    remember_drop_expr(expr, regs, pkt);
    return 0;
}

SEC("fexit/nft_reject_ipv6_eval")
int BPF_PROG(npt_nft_reject_ipv6_exit, const struct nft_expr* expr, struct nft_regs* regs,
             const struct nft_pktinfo* pkt) {
    remember_drop_expr(expr, regs, pkt);
    return 0;
}

/* A rule's comment: the NFTNL_UDATA_RULE_COMMENT attribute of its user data (type, length, NUL-terminated). */
static __always_inline void read_comment(struct nft_rule* rule, struct npt_rule_value* v) {
    __u8 tlv[2];
    unsigned char* udata;

    if (!BPF_CORE_READ_BITFIELD_PROBED(rule, udata)) return;
    udata = (unsigned char*)rule->data + BPF_CORE_READ_BITFIELD_PROBED(rule, dlen);
    /* struct nft_userdata { u8 len; unsigned char data[]; }: the comment is the first attribute nft writes. */
    if (bpf_probe_read_kernel(tlv, sizeof(tlv), udata + 1) || tlv[0] != NPT_UDATA_RULE_COMMENT) return;
    bpf_probe_read_kernel_str(v->comment, sizeof(v->comment), udata + 3);
}

/* The control-plane rule with this handle in the chain's rule list (for its comment). */
static __always_inline struct nft_rule* rule_by_handle(struct nft_chain* chain, __u64 handle) {
    struct list_head* head = (struct list_head*)((char*)chain + bpf_core_field_offset(struct nft_chain, rules));
    struct list_head* pos = BPF_CORE_READ(chain, rules.next);

    for (int i = 0; i < NPT_MAX_RULES && pos && pos != head; i++) {
        struct nft_rule* r = (struct nft_rule*)((char*)pos - bpf_core_field_offset(struct nft_rule, list));
        if (BPF_CORE_READ_BITFIELD_PROBED(r, handle) == handle) return r;
        pos = BPF_CORE_READ(pos, next);
    }
    return 0;
}

/* The datapath rules of a chain (5.17+) are one blob: struct nft_rule_dp headers, each followed by copies of
 * its expressions. Whether the blob holds `expr`. */
static __always_inline bool blob_holds(struct nft_rule_blob* blob, const void* expr) {
    unsigned char* p;

    if (!blob) return false;
    p = (unsigned char*)blob + bpf_core_field_offset(struct nft_rule_blob, data);
    return (const unsigned char*)expr >= p && (const unsigned char*)expr < p + BPF_CORE_READ(blob, size);
}

/* The blob of `chain` (either generation) holding `expr`, or null. */
static __always_inline struct nft_rule_blob* chain_blob_of(struct nft_chain* chain, const void* expr) {
    struct nft_rule_blob* b = BPF_CORE_READ(chain, blob_gen_0);
    if (blob_holds(b, expr)) return b;
    b = BPF_CORE_READ(chain, blob_gen_1);
    return blob_holds(b, expr) ? b : 0;
}

/* The handle of the rule whose expressions hold `expr` in a blob that holds it. */
static __always_inline bool handle_in_blob(struct nft_rule_blob* blob, const void* expr, __u64* handle) {
    unsigned char* p = (unsigned char*)blob + bpf_core_field_offset(struct nft_rule_blob, data);

    for (int i = 0; i < NPT_MAX_RULES; i++) {
        struct nft_rule_dp* r = (struct nft_rule_dp*)p;
        unsigned char* data = p + bpf_core_type_size(struct nft_rule_dp);
        __u64 dlen = BPF_CORE_READ_BITFIELD_PROBED(r, dlen);
        if (BPF_CORE_READ_BITFIELD_PROBED(r, is_last)) return false;
        if ((const unsigned char*)expr < data + dlen) {
            *handle = BPF_CORE_READ_BITFIELD_PROBED(r, handle);
            return true;
        }
        p = data + dlen;
    }
    return false;
}

SEC("fexit/nft_do_chain")
int BPF_PROG(npt_nft_do_chain_exit, struct nft_pktinfo* pkt, void* priv, unsigned int ret) {
    struct nft_chain* base = priv;
    struct npt_verdict_scratch* s;
    struct npt_rule_value v = {};
    struct npt_rule_value* known;
    struct npt_rule_key key;
    struct nft_rule_blob* blob;
    struct nft_table* table;
    struct nft_chain* chain;
    struct nft_rule* rule;
    __u64 handle = 0;
    __u32 zero = 0;

    s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s) return 0;
    /* Without a remembered verdict expression of this very call, the verdict came from the chain's policy (or an
     * expression not hooked): the skb may be freed already, so the flow is unknown. */
    if (s->pkt != pkt) return 0;
    s->pkt = 0;
    /* Kernels that free the dropped skb inside nft_do_chain (6.1 stable and later) return NF_STOLEN for it. */
    if ((ret & NPT_NF_VERDICT_MASK) != NPT_NF_DROP && (ret & NPT_NF_VERDICT_MASK) != NPT_NF_STOLEN) return 0;
    __builtin_memcpy(&key, &s->key, sizeof(key));
    known = bpf_map_lookup_elem(&rules, &key);
    if (known) {
        known->seen_ns = bpf_ktime_get_ns();
        return 0;
    }

    v.backend = NPT_RV_NFTABLES;
    v.seen_ns = bpf_ktime_get_ns();
    if (bpf_core_field_exists(pkt->state))
        v.hook = BPF_CORE_READ(pkt, state, hook);
    else
        v.hook = BPF_CORE_READ((struct nft_pktinfo___xt*)pkt, xt.state, hook);
    table = BPF_CORE_READ(base, table);
    v.table_family = BPF_CORE_READ_BITFIELD_PROBED(table, family);
    bpf_probe_read_kernel_str(v.table, sizeof(v.table), BPF_CORE_READ(table, name));
    bpf_probe_read_kernel_str(v.chain, sizeof(v.chain), BPF_CORE_READ(base, name));
    /* Before the rule blob (5.17) the datapath walks the control-plane rules: table and base chain only. */
    if (!bpf_core_type_exists(struct nft_rule_blob)) goto out;

    /* The chain holding the verdict expression: the base chain, or one jumped to (searched in the table). */
    chain = base;
    blob = chain_blob_of(base, s->expr);
    if (!blob) {
        struct list_head* head = (struct list_head*)((char*)table + bpf_core_field_offset(struct nft_table, chains));
        struct list_head* pos = BPF_CORE_READ(table, chains.next);
        for (int i = 0; i < NPT_MAX_CHAINS && pos && pos != head; i++) {
            chain = (struct nft_chain*)((char*)pos - bpf_core_field_offset(struct nft_chain, list));
            blob = chain_blob_of(chain, s->expr);
            if (blob) break;
            pos = BPF_CORE_READ(pos, next);
        }
    }
    if (!blob || !handle_in_blob(blob, s->expr, &handle)) goto out;
    v.handle = handle;
    v.has_handle = 1;
    if (chain != base) bpf_probe_read_kernel_str(v.chain, sizeof(v.chain), BPF_CORE_READ(chain, name));
    rule = rule_by_handle(chain, handle);
    if (rule) read_comment(rule, &v);
out:
    bpf_map_update_elem(&rules, &key, &v, BPF_ANY);
    return 0;
}

/* ipt_do_table's arguments are read as plain words (their types changed in 5.16); `ret` is its verdict. */
static __always_inline int legacy_exit(__u64 a0, __u64 a1, __u64 a2, unsigned int ret) {
    static const char hooks[5][12] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};
    struct npt_rule_value v = {};
    struct npt_rule_value* known;
    struct npt_rule_key key;
    struct nf_hook_state* state;
    struct xt_table* table;
    struct sk_buff* skb;

    if ((ret & NPT_NF_VERDICT_MASK) != NPT_NF_DROP) return 0;
    if (ipt_priv_first) {
        table = (struct xt_table*)a0;
        skb = (struct sk_buff*)a1;
        state = (struct nf_hook_state*)a2;
    } else {
        skb = (struct sk_buff*)a0;
        state = (struct nf_hook_state*)a1;
        table = (struct xt_table*)a2;
    }
    if (!flow_key_of(skb, &key)) return 0;
    known = bpf_map_lookup_elem(&rules, &key);
    if (known) {
        known->seen_ns = bpf_ktime_get_ns();
        return 0;
    }
    v.backend = NPT_RV_IPTABLES_LEGACY;
    v.seen_ns = bpf_ktime_get_ns();
    v.hook = BPF_CORE_READ(state, hook);
    bpf_probe_read_kernel_str(v.table, sizeof(v.table), &table->name);
    if (v.hook < 5) __builtin_memcpy(v.chain, hooks[v.hook], sizeof(hooks[0]));
    bpf_map_update_elem(&rules, &key, &v, BPF_ANY);
    return 0;
}

SEC("fexit/ipt_do_table")
int BPF_PROG(npt_ipt_do_table_exit, __u64 a0, __u64 a1, __u64 a2, unsigned int ret) {
    return legacy_exit(a0, a1, a2, ret);
}

SEC("fexit/ip6t_do_table")
int BPF_PROG(npt_ip6t_do_table_exit, __u64 a0, __u64 a1, __u64 a2, unsigned int ret) {
    return legacy_exit(a0, a1, a2, ret);
}

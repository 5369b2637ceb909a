// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Packet drops seen at the skb:kfree_skb tracepoint, aggregated per flow in the kernel.
 *
 * One object, four programs on the same tracepoint; userspace loads exactly one (autoload off for the rest):
 *   npt_kfree_skb_btf         tp_btf, direct BTF loads, conntrack through bpf_rdonly_cast (kernels >= 6.2)
 *   npt_kfree_skb_btf_compat  tp_btf, direct BTF loads, conntrack through probe reads (no bpf_rdonly_cast)
 *   npt_kfree_skb_raw         raw_tp, probe reads (no usable BTF for tp_btf)
 *   npt_kfree_skb_tp          classic tracepoint, probe reads (needs tracefs for the id)
 * Kernels whose tracepoint has no reason argument (before 5.17) report NPT_REASON_UNKNOWN: every read of the
 * reason sits behind a CO-RE existence check that resolves to a constant, so the verifier never sees it
 * there.
 *
 * Hot path (flow dropped recently on this CPU): the headers (read in place on kernels >= 6.17, else one 64-byte
 * copy), a few skb loads, a hash of the flow key, then one page of the flow cache: the reason filter, a compare
 * with the two slots of the flow's set and an increment. Other known flows add one LRU lookup and an atomic add.
 * .rodata, .bss, the IP filter, conntrack, the stack trace and the ring buffer are only touched for new flows.
 */
/* vmlinux.h first: it defines the kernel types every other header here needs. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "netpol_trace/drop_event.h"
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define NPT_IPPROTO_ICMP 1
#define NPT_IPPROTO_TCP 6
#define NPT_IPPROTO_UDP 17
#define NPT_IPPROTO_IPV6_HOPOPTS 0
#define NPT_IPPROTO_IPV6_ROUTING 43
#define NPT_IPPROTO_IPV6_FRAGMENT 44
#define NPT_IPPROTO_ICMPV6 58
#define NPT_IPPROTO_IPV6_DSTOPTS 60
#define NPT_IPPROTO_SCTP 132
#define NPT_IPPROTO_UDPLITE 136
#define NPT_NFCT_PTRMASK (~7UL)
#define NPT_IP_CT_UNTRACKED 7
#define NPT_HDR_READ 64 /* IPv6 header (40) + the first 24 bytes of TCP: ports and flags */

/* Set by userspace before load; the verifier sees them as constants. Only the paths of new flows read them: what
 * every drop reads is in the flow cache's pages (struct npt_hot_settings). */
const volatile bool ip_filter_enabled = false;
const volatile __u32 nf_conn_btf_id = 0; /* vmlinux BTF id of struct nf_conn; 0: no conntrack cast */
const volatile __u32 stack_skip = 0;     /* frames of tracing machinery above the drop site */

/* A ring buffer wakeup (irq_work + waking the reader) costs several µs: wake the reader at most this often;
 * events in between wait for its poll timeout or the next wakeup. */
const volatile __u64 wakeup_interval_ns = 10000000ULL;

__u64 last_wakeup_ns = 0; /* racy between CPUs by design: at worst an extra wakeup */

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536); /* resized from userspace (CaptureOptions::max_flows) */
    __type(key, struct npt_flow_key);
    __type(value, struct npt_flow_value);
} flows SEC(".maps");

/* CPU n's pages are elements n * NPT_FLOW_CACHE_PAGES and on (see struct npt_flow_cache_page). A plain array
 * rather than a per-CPU one: its lookup is an address computation, where a per-CPU array's first loads the
 * element's per-CPU pointer; userspace writes the settings and reads the slots through mmap. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, NPT_FLOW_CACHE_PAGES); /* times the possible CPUs, set from userspace */
    __type(key, __u32);
    __type(value, struct npt_flow_cache_page);
} flow_cache SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 2 * 1024 * 1024); /* ~8k events: a burst of new flows between two reads */
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct npt_ip_key);
    __type(value, __u8);
} watched_ips SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, NPT_CTR_MAX);
    __type(key, __u32);
    __type(value, __u64);
} counters SEC(".maps");

extern void* bpf_rdonly_cast(const void* obj, __u32 btf_id) __ksym __weak;

/* How a program reaches kernel memory. */
enum npt_access {
    NPT_ACCESS_BTF_CAST = 0,  /* direct loads, conntrack via bpf_rdonly_cast */
    NPT_ACCESS_BTF_PROBE = 1, /* direct loads, conntrack via probe reads */
    NPT_ACCESS_PROBE = 2,     /* probe reads everywhere (raw_tp, tracepoint) */
};

/*
 * tp_btf pointers are typed: a plain load is a BPF_PROBE_MEM load (a few ns, faults read as 0). Other program
 * types hold untyped addresses and need bpf_probe_read_kernel (~20-40 ns each). `direct` is a constant after
 * inlining, so each program only contains its own variant.
 */
#define NPT_RD(direct, ptr, field) ((direct) ? (ptr)->field : BPF_CORE_READ(ptr, field))

struct npt_packet {
    __u16 sport;
    __u8 tcp_flags;
    __u8 icmp_type;
    __u8 icmp_code;
};

/* Per-CPU, and programs on one tracepoint do not nest on a CPU (the kernel skips a recursive run): no
 * atomics. */
static __always_inline void counter_add(__u32 idx) {
    __u64* c = bpf_map_lookup_elem(&counters, &idx);
    if (c) *c += 1;
}

/* Outside the fast path: only drops of a reason the filter would discard get here. */
static __always_inline bool freed_by_queue(const struct npt_hot_settings* hs, __u64 location) {
#pragma unroll
    for (int i = 0; i < NPT_QUEUE_FNS; i++)
        if (location - hs->queue_fn_start[i] < hs->queue_fn_len[i]) return true;
    return false;
}

static __always_inline bool reason_selected(const struct npt_hot_settings* hs, __u32 reason) {
    if (reason == NPT_REASON_UNKNOWN) return hs->keep_unknown_reason;
    if (reason >> NPT_REASON_SUBSYS_SHIFT) {
        __u32 subsys = reason >> NPT_REASON_SUBSYS_SHIFT;
        return subsys < NPT_MAX_SUBSYS && ((hs->subsys_mask >> subsys) & 1);
    }
    if (reason >= NPT_REASON_BITMAP_BITS) return hs->keep_high_reasons;
    /* clang checks the bound on a copy of the register: hide the value from it and mask, for the verifier. */
    __u32 word = reason / 64;
    barrier_var(word);
    word &= NPT_REASON_BITMAP_WORDS - 1;
    return (hs->reason_mask[word] >> (reason % 64)) & 1;
}

static __always_inline bool reason_wanted(const struct npt_hot_settings* hs, __u32 reason, __u64 location) {
    return reason_selected(hs, reason) || freed_by_queue(hs, location);
}

static __always_inline void parse_l4(const __u8* l4, __u8 protocol, struct npt_flow_key* key, struct npt_packet* pkt) {
    switch (protocol) {
        case NPT_IPPROTO_TCP:
            pkt->tcp_flags = l4[13];
            /* fallthrough */
        case NPT_IPPROTO_UDP:
        case NPT_IPPROTO_UDPLITE:
        case NPT_IPPROTO_SCTP:
            pkt->sport = bpf_ntohs(*(const __u16*)l4);
            key->dport = bpf_ntohs(*(const __u16*)(l4 + 2));
            break;
        case NPT_IPPROTO_ICMP:
        case NPT_IPPROTO_ICMPV6:
            pkt->icmp_type = l4[0];
            pkt->icmp_code = l4[1];
            break;
        default:
            break;
    }
}

static __always_inline bool l4_has_ports(__u8 protocol) {
    return protocol == NPT_IPPROTO_TCP || protocol == NPT_IPPROTO_UDP || protocol == NPT_IPPROTO_UDPLITE ||
           protocol == NPT_IPPROTO_SCTP || protocol == NPT_IPPROTO_ICMP || protocol == NPT_IPPROTO_ICMPV6;
}

/*
 * Kernels >= 6.17 let a program load from any kernel address through bpf_rdonly_cast(ptr, 0) (loads that fault
 * read as 0, like other BTF loads): the headers are then read in place, a few loads instead of a helper call that
 * copies 64 bytes. The enum exists exactly on those kernels; elsewhere the branch is dead and never verified.
 */
#define NPT_HAS_UNTRUSTED_LOADS() bpf_core_enum_value_exists(enum bpf_features, BPF_FEAT_RDONLY_CAST_TO_VOID)

/* Fills family, addresses, protocol, dport and the packet extras. Non-IP skbs keep family NPT_AF_UNSPEC. */
static __always_inline void parse_packet(struct sk_buff* skb, const enum npt_access access, struct npt_flow_key* key,
                                         struct npt_packet* pkt) {
    const bool direct = access != NPT_ACCESS_PROBE;
    const bool in_place = access == NPT_ACCESS_BTF_CAST && NPT_HAS_UNTRUSTED_LOADS();
    __u64 copy[NPT_HDR_READ / 8]; /* aligned: the addresses below become word loads */
    __u64 l4copy[2];
    const __u8* hdr = (const __u8*)copy;
    const __u8* l4;
    unsigned char* head = NPT_RD(direct, skb, head);
    __u16 nh = NPT_RD(direct, skb, network_header);
    __u16 proto_be = NPT_RD(direct, skb, protocol);

    key->l3_proto = bpf_ntohs(proto_be);
    if (proto_be && proto_be != bpf_htons(ETH_P_IP) && proto_be != bpf_htons(ETH_P_IPV6)) return;
    if (!head) return;
    /* An skb that never reached the IP layer has network_header 0 (allocation) or ~0: fall back to the MAC
     * header, then to skb->data; the version nibble below rejects a wrong guess. */
    if (nh == 0 || nh == 0xffff) {
        __u16 mh = NPT_RD(direct, skb, mac_header);
        if (mh != 0xffff)
            nh = mh + ETH_HLEN;
        else
            nh = (__u16)(NPT_RD(direct, skb, data) - head);
    }
    if (in_place)
        hdr = bpf_rdonly_cast(head + nh, 0);
    else if (bpf_probe_read_kernel(copy, sizeof(copy), head + nh))
        return;

    __u8 version = hdr[0] >> 4;
    if (version == 4 && proto_be != bpf_htons(ETH_P_IPV6)) {
        __u8 ihl = hdr[0] & 0xf;
        if (ihl < 5) return;
        key->family = NPT_AF_INET;
        key->protocol = hdr[9];
        *(__u32*)key->saddr = *(const __u32*)(hdr + 12);
        *(__u32*)key->daddr = *(const __u32*)(hdr + 16);
        if (bpf_ntohs(*(const __u16*)(hdr + 6)) & 0x1fff) /* not the first fragment: no L4 header */
            return;
        if (!l4_has_ports(key->protocol)) return;
        if (ihl == 5) {
            l4 = hdr + 20;
        } else if (in_place) {
            l4 = hdr + ihl * 4;
        } else {
            if (bpf_probe_read_kernel(l4copy, sizeof(l4copy), head + nh + ihl * 4)) return;
            l4 = (const __u8*)l4copy;
        }
        parse_l4(l4, key->protocol, key, pkt);
    } else if (version == 6 && proto_be != bpf_htons(ETH_P_IP)) {
        __u8 next = hdr[6];
        __u32 l4off = 40;
        key->family = NPT_AF_INET6;
        ((__u64*)key->saddr)[0] = *(const __u64*)(hdr + 8);
        ((__u64*)key->saddr)[1] = *(const __u64*)(hdr + 16);
        ((__u64*)key->daddr)[0] = *(const __u64*)(hdr + 24);
        ((__u64*)key->daddr)[1] = *(const __u64*)(hdr + 32);
        /* One extension header is followed (hop-by-hop, routing, destination options, fragment); deeper
         * chains keep the extension header as the protocol and no ports. */
        if (next == NPT_IPPROTO_IPV6_HOPOPTS || next == NPT_IPPROTO_IPV6_ROUTING || next == NPT_IPPROTO_IPV6_DSTOPTS) {
            next = hdr[40];
            l4off = 40 + ((__u32)hdr[41] + 1) * 8;
        } else if (next == NPT_IPPROTO_IPV6_FRAGMENT) {
            next = hdr[40];
            l4off = 48;
            if (bpf_ntohs(*(const __u16*)(hdr + 42)) & 0xfff8) {
                key->protocol = next;
                return;
            }
        }
        key->protocol = next;
        if (!l4_has_ports(next)) return;
        if (l4off == 40) {
            l4 = hdr + 40;
        } else if (in_place) {
            l4 = hdr + l4off;
        } else {
            if (bpf_probe_read_kernel(l4copy, sizeof(l4copy), head + nh + l4off)) return;
            l4 = (const __u8*)l4copy;
        }
        parse_l4(l4, next, key, pkt);
    }
}

static __always_inline bool ip_watched(const struct npt_flow_key* key) {
    struct npt_ip_key ip = {};

    if (key->family == NPT_AF_UNSPEC) return false;
    ip.family = key->family;
    __builtin_memcpy(ip.addr, key->saddr, NPT_ADDR_LEN);
    if (bpf_map_lookup_elem(&watched_ips, &ip)) return true;
    __builtin_memcpy(ip.addr, key->daddr, NPT_ADDR_LEN);
    return bpf_map_lookup_elem(&watched_ips, &ip) != NULL;
}

static __always_inline __u8 ct_state_of(unsigned long nfct) {
    if (nfct == 0) return NPT_CT_NONE;
    if (nfct == NPT_IP_CT_UNTRACKED) return NPT_CT_UNTRACKED;
    switch (nfct & 7) {
        case 0: /* IP_CT_ESTABLISHED */
            return NPT_CT_ESTABLISHED;
        case 1: /* IP_CT_RELATED */
            return NPT_CT_RELATED;
        case 2: /* IP_CT_NEW */
            return NPT_CT_NEW;
        case 3: /* IP_CT_ESTABLISHED_REPLY */
            return NPT_CT_REPLY;
        case 4: /* IP_CT_RELATED_REPLY */
            return NPT_CT_RELATED_REPLY;
        default:
            return NPT_CT_INVALID;
    }
}

static __always_inline __u8 skb_ct_state(struct sk_buff* skb, const bool direct) {
    if (!bpf_core_field_exists(skb->_nfct)) return NPT_CT_UNAVAILABLE;
    return ct_state_of(NPT_RD(direct, skb, _nfct));
}

/* The Service VIP:port the client dialled, when conntrack DNATed the flow (read at the drop: a dropped NEW
 * flow never reaches the conntrack table). */
static __always_inline void read_conntrack(struct sk_buff* skb, const enum npt_access access,
                                           struct npt_drop_event* e) {
    const bool direct = access != NPT_ACCESS_PROBE;
    unsigned long nfct;
    unsigned long status;
    struct nf_conn* ct;

    if (!bpf_core_field_exists(skb->_nfct)) {
        e->ct_state = NPT_CT_UNAVAILABLE;
        return;
    }
    nfct = NPT_RD(direct, skb, _nfct);
    e->ct_state = ct_state_of(nfct);
    if (e->ct_state == NPT_CT_NONE || e->ct_state == NPT_CT_UNTRACKED) return;
    ct = (struct nf_conn*)(nfct & NPT_NFCT_PTRMASK);

    if (access == NPT_ACCESS_BTF_CAST) {
        if (!nf_conn_btf_id) return;
        ct = bpf_rdonly_cast(ct, nf_conn_btf_id);
        status = ct->status;
        if (!(status & bpf_core_enum_value(enum ip_conntrack_status, IPS_DST_NAT))) return;
        __builtin_memcpy(e->orig_daddr, &ct->tuplehash[0].tuple.dst.u3, NPT_ADDR_LEN);
        e->orig_dport = bpf_ntohs(ct->tuplehash[0].tuple.dst.u.all);
    } else {
        status = BPF_CORE_READ(ct, status);
        if (!(status & bpf_core_enum_value(enum ip_conntrack_status, IPS_DST_NAT))) return;
        BPF_CORE_READ_INTO(&e->orig_daddr, ct, tuplehash[0].tuple.dst.u3);
        e->orig_dport = bpf_ntohs(BPF_CORE_READ(ct, tuplehash[0].tuple.dst.u.all));
    }
    e->orig_dst_family = e->key.family;
}

static __always_inline void emit_event(void* ctx, struct sk_buff* skb, const enum npt_access access,
                                       const struct npt_flow_key* key, const struct npt_flow_value* val,
                                       const struct npt_packet* pkt, __u8 kind, __u64 now) {
    const bool direct = access != NPT_ACCESS_PROBE;
    struct npt_drop_event* e;
    struct net_device* dev;

    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        counter_add(NPT_CTR_LOST_EVENTS);
        return;
    }
    __builtin_memset(e, 0, sizeof(*e));
    __builtin_memcpy(&e->key, key, sizeof(*key));
    e->kind = kind;
    e->count = val->count;
    e->first_ns = val->first_ns;
    e->ts_ns = now;
    e->sport = pkt->sport;
    e->tcp_flags = pkt->tcp_flags;
    e->icmp_type = pkt->icmp_type;
    e->icmp_code = pkt->icmp_code;
    e->skb_iif = NPT_RD(direct, skb, skb_iif);
    dev = NPT_RD(direct, skb, dev);
    if (dev) e->dev_ifindex = NPT_RD(direct, dev, ifindex);
    if (kind == NPT_EVENT_NEW_FLOW) {
        long n = bpf_get_stack(ctx, e->stack, sizeof(e->stack), stack_skip & BPF_F_SKIP_FIELD_MASK);
        if (n > 0)
            e->stack_len = (__u32)n / sizeof(__u64);
        else
            counter_add(NPT_CTR_STACK_ERRORS);
        read_conntrack(skb, access, e);
    } else {
        e->ct_state = val->ct_state;
    }
    if (now - last_wakeup_ns >= wakeup_interval_ns) {
        last_wakeup_ns = now;
        bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
    } else {
        bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    }
    counter_add(NPT_CTR_EVENTS);
}

static __always_inline bool keys_equal(const struct npt_flow_key* a, const struct npt_flow_key* b) {
    const __u64* x = (const __u64*)a;
    const __u64* y = (const __u64*)b;

#pragma unroll
    for (int i = 0; i < (int)(sizeof(*a) / sizeof(__u64)); i++) {
        if (x[i] != y[i]) return false;
    }
    return true;
}

static __always_inline __u64 now_tick(const struct npt_hot_settings* hs) {
    /* bpf_jiffies64 is inlined by the verifier into one load; bpf_ktime_get_ns costs ~45 ns in a VM. */
    return hs->ns_per_tick ? bpf_jiffies64() : bpf_ktime_get_ns();
}

static __always_inline __u64 slot_last_ns(const struct npt_hot_settings* hs, const struct npt_flow_cache_slot* c) {
    return c->base_ns + (c->last_tick - c->base_tick) * (hs->ns_per_tick ? hs->ns_per_tick : 1);
}

/* Folds the drops a slot holds back into the flows map. Programs on one tracepoint do not nest on a CPU (the
 * kernel skips a recursive run), so per-CPU slots need no atomics. */
static __always_inline void flush_slot(const struct npt_hot_settings* hs, struct npt_flow_cache_slot* c,
                                       __u32 generation, __u64 now, __u64 tick) {
    struct npt_flow_value* v;
    bool current;

    if (!c->valid) return;
    /* A stale generation means userspace purged flows: fold into flows still present, never re-insert. */
    current = c->generation == generation;
    if (c->pending) {
        __u64 last_ns = slot_last_ns(hs, c);
        v = bpf_map_lookup_elem(&flows, &c->key);
        if (v) {
            __sync_fetch_and_add(&v->count, c->pending);
            if (last_ns > v->last_ns) v->last_ns = last_ns;
            v->last_sport = c->last_sport;
            v->tcp_flags |= c->tcp_flags;
            v->icmp_type = c->icmp_type;
            v->icmp_code = c->icmp_code;
        } else if (current) {
            /* Evicted by the LRU while this CPU held drops of it: put it back with what this CPU saw. */
            struct npt_flow_value nv = {};
            nv.count = c->pending;
            nv.first_ns = c->base_ns;
            nv.last_ns = last_ns;
            nv.last_sport = c->last_sport;
            nv.tcp_flags = c->tcp_flags;
            nv.icmp_type = c->icmp_type;
            nv.icmp_code = c->icmp_code;
            if (bpf_map_update_elem(&flows, &c->key, &nv, BPF_NOEXIST) == 0) {
                counter_add(NPT_CTR_FLOWS_INSERTED);
            } else {
                v = bpf_map_lookup_elem(&flows, &c->key);
                if (v)
                    __sync_fetch_and_add(&v->count, c->pending);
                else
                    counter_add(NPT_CTR_UPDATE_ERRORS);
            }
        }
    }
    c->pending = 0;
    c->tcp_flags = 0;
    c->base_ns = now;
    c->base_tick = tick;
    c->last_tick = tick;
    c->valid = current;
}

/* The slot holds drops of `key` counted since the last purge. */
static __always_inline bool slot_holds(const struct npt_flow_cache_slot* c, const struct npt_flow_key* key,
                                       __u32 generation) {
    return c->valid && c->generation == generation && keys_equal(&c->key, key);
}

_Static_assert(NPT_FLOW_CACHE_WAYS == 2, "handle_drop looks at ways[0] and ways[1]");

/* The slot of a set a flow takes when none holds it for the current generation: the one still holding it from
 * before a purge (flushed first, its drops fold into the flow only if the purge left it), else an empty one, else
 * one left from before a purge, else the one whose flow dropped least recently. */
static __always_inline struct npt_flow_cache_slot* victim_slot(struct npt_flow_cache_slot* c0,
                                                               struct npt_flow_cache_slot* c1,
                                                               const struct npt_flow_key* key, __u32 generation) {
    if (c0->valid && keys_equal(&c0->key, key)) return c0;
    if (c1->valid && keys_equal(&c1->key, key)) return c1;
    if (!c0->valid) return c0;
    if (!c1->valid) return c1;
    if (c0->generation != generation) return c0;
    if (c1->generation != generation) return c1;
    return c1->last_tick < c0->last_tick ? c1 : c0;
}

static __always_inline void claim_slot(struct npt_flow_cache_slot* c, const struct npt_flow_key* key,
                                       const struct npt_packet* pkt, __u32 generation, __u64 now, __u64 tick) {
    __builtin_memcpy(&c->key, key, sizeof(*key));
    c->pending = 0;
    c->base_ns = now;
    c->base_tick = tick;
    c->last_tick = tick;
    c->generation = generation;
    c->last_sport = pkt->sport;
    c->tcp_flags = 0;
    c->icmp_type = pkt->icmp_type;
    c->icmp_code = pkt->icmp_code;
    c->valid = 1;
}

static __always_inline int handle_drop(void* ctx, struct sk_buff* skb, __u64 location, __u32 reason,
                                       const enum npt_access access) {
    const bool direct = access != NPT_ACCESS_PROBE;
    struct npt_flow_key key;
    struct npt_packet pkt = {};
    struct npt_flow_cache_slot *c, *c0, *c1;
    const struct npt_hot_settings* hs;
    struct npt_flow_cache_page* page;
    struct npt_flow_cache_set* set;
    struct npt_flow_value* val;
    struct net_device* dev;
    struct sock* sk;
    __u32 generation;
    __u32 page_index;
    __u32 set_index;
    __u64 tick;
    __u64 now;

    if (!skb) return 0;
    /* Programs reading the skb through probe reads (~20-40 ns each) filter on the reason first, with the
     * settings of this CPU's first page; the others after the parse, with those of the page the flow's set is in
     * (a parse is a few loads there, a page they would touch anyway). */
    if (!direct) {
        page_index = bpf_get_smp_processor_id() * NPT_FLOW_CACHE_PAGES;
        page = bpf_map_lookup_elem(&flow_cache, &page_index);
        if (!page || !reason_wanted(&page->settings, reason, location)) return 0;
    }

    __builtin_memset(&key, 0, sizeof(key));
    key.reason = reason;
    key.location = location;
    parse_packet(skb, access, &key, &pkt);

    dev = NPT_RD(direct, skb, dev);
    sk = NPT_RD(direct, skb, sk);
    if (NPT_RD(direct, skb, _skb_refdst)) key.path |= NPT_PATH_HAS_ROUTE;
    if (sk) key.path |= NPT_PATH_HAS_SOCK;
    if (dev) {
        key.path |= NPT_PATH_HAS_DEV;
        if (NPT_RD(direct, skb, skb_iif) == NPT_RD(direct, dev, ifindex)) key.path |= NPT_PATH_IIF_IS_DEV;
        struct net* net = NPT_RD(direct, dev, nd_net.net);
        key.netns_inum = NPT_RD(direct, net, ns.inum);
    } else if (sk) {
        /* OUTPUT inside a pod: no device yet, the socket's netns is the pod's. */
        key.path |= NPT_PATH_NETNS_FROM_SOCK;
        struct net* net = NPT_RD(direct, sk, __sk_common.skc_net.net);
        key.netns_inum = NPT_RD(direct, net, ns.inum);
    }

    /* The reason filter reads the settings in the page of the flow's set: one page for the whole drop. */
    set_index = npt_flow_cache_set_of(&key);
    page_index = bpf_get_smp_processor_id() * NPT_FLOW_CACHE_PAGES + set_index / NPT_FLOW_CACHE_SETS_PER_PAGE;
    page = bpf_map_lookup_elem(&flow_cache, &page_index);
    if (!page) return 0;
    hs = &page->settings;
    if (!reason_wanted(hs, reason, location)) return 0;
    tick = now_tick(hs);
    set = &page->sets[set_index & (NPT_FLOW_CACHE_SETS_PER_PAGE - 1)];
    c0 = &set->ways[0];
    c1 = &set->ways[1];
    generation = hs->generation;
    if (slot_holds(c0, &key, generation))
        c = c0;
    else if (slot_holds(c1, &key, generation))
        c = c1;
    else
        c = NULL;

    /* Fast path: this CPU dropped the same flow recently. */
    if (c && (!hs->quiet_gap_ns || tick - c->last_tick < hs->gap_ticks) && tick - c->base_tick < hs->flush_ticks) {
        c->pending++;
        c->last_tick = tick;
        c->last_sport = pkt.sport;
        c->tcp_flags |= pkt.tcp_flags;
        c->icmp_type = pkt.icmp_type;
        c->icmp_code = pkt.icmp_code;
        return 0;
    }

    /* Slow path: the map becomes current for the slot's flow (so the quiet-gap test below sees this CPU's
     * latest drop), then this drop is counted there and the slot taken over: the flow's own slot when it is
     * due for a flush, else the set's victim. */
    if (!c) c = victim_slot(c0, c1, &key, generation);
    now = bpf_ktime_get_ns();
    flush_slot(hs, c, generation, now, tick);

    val = bpf_map_lookup_elem(&flows, &key);
    if (val) {
        __u64 last = val->last_ns;
        __sync_fetch_and_add(&val->count, 1);
        val->last_ns = now;
        val->last_sport = pkt.sport;
        val->tcp_flags |= pkt.tcp_flags;
        val->icmp_type = pkt.icmp_type;
        val->icmp_code = pkt.icmp_code;
        /* Drops still held in other CPUs' slots (at most flush_interval_ns old) can make a flow look quiet
         * slightly early; two CPUs may also both emit. Accepted: "resumed" is a hint, counts stay exact. */
        if (hs->quiet_gap_ns && now > last && now - last >= hs->quiet_gap_ns)
            emit_event(ctx, skb, access, &key, val, &pkt, NPT_EVENT_RESUMED, now);
        claim_slot(c, &key, &pkt, generation, now, tick);
        return 0;
    }

    if (ip_filter_enabled && !ip_watched(&key)) {
        counter_add(NPT_CTR_IP_FILTERED);
        return 0;
    }

    struct npt_flow_value nv = {};
    nv.count = 1;
    nv.first_ns = now;
    nv.last_ns = now;
    nv.last_sport = pkt.sport;
    nv.tcp_flags = pkt.tcp_flags;
    nv.icmp_type = pkt.icmp_type;
    nv.icmp_code = pkt.icmp_code;
    nv.ct_state = skb_ct_state(skb, direct);
    if (bpf_map_update_elem(&flows, &key, &nv, BPF_NOEXIST)) {
        /* Another CPU inserted the flow first: count the drop there. */
        val = bpf_map_lookup_elem(&flows, &key);
        if (val)
            __sync_fetch_and_add(&val->count, 1);
        else
            counter_add(NPT_CTR_UPDATE_ERRORS);
        return 0;
    }
    counter_add(NPT_CTR_FLOWS_INSERTED);
    emit_event(ctx, skb, access, &key, &nv, &pkt, NPT_EVENT_NEW_FLOW, now);
    claim_slot(c, &key, &pkt, generation, now, tick);
    return 0;
}

/* Only kernels >= 5.17 pass a reason; the enum appeared with it. */
#define NPT_TRACEPOINT_HAS_REASON() bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NOT_SPECIFIED)

SEC("tp_btf/kfree_skb")
int npt_kfree_skb_btf(unsigned long long* ctx) {
    __u32 reason = NPT_REASON_UNKNOWN;
    if (NPT_TRACEPOINT_HAS_REASON()) reason = (__u32)ctx[2];
    return handle_drop(ctx, (struct sk_buff*)ctx[0], ctx[1], reason, NPT_ACCESS_BTF_CAST);
}

SEC("tp_btf/kfree_skb")
int npt_kfree_skb_btf_compat(unsigned long long* ctx) {
    __u32 reason = NPT_REASON_UNKNOWN;
    if (NPT_TRACEPOINT_HAS_REASON()) reason = (__u32)ctx[2];
    return handle_drop(ctx, (struct sk_buff*)ctx[0], ctx[1], reason, NPT_ACCESS_BTF_PROBE);
}

SEC("raw_tp/kfree_skb")
int npt_kfree_skb_raw(struct bpf_raw_tracepoint_args* ctx) {
    __u32 reason = NPT_REASON_UNKNOWN;
    if (NPT_TRACEPOINT_HAS_REASON()) reason = (__u32)ctx->args[2];
    return handle_drop(ctx, (struct sk_buff*)ctx->args[0], ctx->args[1], reason, NPT_ACCESS_PROBE);
}

SEC("tracepoint/skb/kfree_skb")
int npt_kfree_skb_tp(struct trace_event_raw_kfree_skb* ctx) {
    __u32 reason = NPT_REASON_UNKNOWN;
    if (bpf_core_field_exists(ctx->reason)) reason = (__u32)ctx->reason;
    return handle_drop(ctx, (struct sk_buff*)ctx->skbaddr, (__u64)ctx->location, reason, NPT_ACCESS_PROBE);
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by bpf/drop.bpf.c and userspace/bpf/. Plain C so the BPF side (clang -target bpf, with
 * vmlinux.h) and the C++ side compile the same definitions; the layout is the ABI between the two, hence
 * fixed-width fields, explicit padding, no bitfields, no packing, and the static asserts at the end.
 */
#ifndef NETPOL_TRACE_DROP_EVENT_H
#define NETPOL_TRACE_DROP_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define NPT_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NPT_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define NPT_ADDR_LEN 16
/* Frames kept per kernel stack; the enforcement point is always within the first dozen above the drop. */
#define NPT_STACK_DEPTH 16
/* Core drop reasons below this value are filtered by the bitmap (kernel 6.18 has 128; room to grow). */
#define NPT_REASON_BITMAP_WORDS 16
#define NPT_REASON_BITMAP_BITS (NPT_REASON_BITMAP_WORDS * 64)
/* The tracepoint of this kernel has no reason argument (before 5.17). */
#define NPT_REASON_UNKNOWN 0xffffffffu
/* Reasons of other subsystems carry the subsystem id in the upper 16 bits (SKB_DROP_REASON_SUBSYS_SHIFT). */
#define NPT_REASON_SUBSYS_SHIFT 16
#define NPT_MAX_SUBSYS 64
#define NPT_AF_UNSPEC 0 /* not IPv4/IPv6: only l3_proto (ethertype) is meaningful */
#define NPT_AF_INET 2
#define NPT_AF_INET6 10

enum npt_event_kind {
    NPT_EVENT_NEW_FLOW = 1, /* first drop of a flow (or first after an LRU eviction) */
    NPT_EVENT_RESUMED = 2,  /* first drop after the flow was quiet for at least quiet_gap_ns */
};

/* Conntrack state of the first dropped packet, from skb->_nfct (ctinfo in the low 3 bits). */
enum npt_ct_state {
    NPT_CT_NONE = 0, /* _nfct == 0: no conntrack in that netns, or the packet was invalid (the kernel clears it) */
    NPT_CT_NEW = 1,
    NPT_CT_ESTABLISHED = 2,
    NPT_CT_RELATED = 3,
    NPT_CT_REPLY = 4,         /* IP_CT_ESTABLISHED_REPLY */
    NPT_CT_RELATED_REPLY = 5, /* IP_CT_RELATED_REPLY */
    NPT_CT_UNTRACKED = 6,     /* _nfct == IP_CT_UNTRACKED (7) */
    NPT_CT_INVALID = 7,       /* ctinfo value the kernel never attaches; kept for completeness */
    NPT_CT_UNAVAILABLE = 8,   /* kernel built without conntrack (no skb->_nfct) */
};

/*
 * How the skb looked at the drop. Part of the flow key: with the drop location it separates enforcement
 * points that share a location (every netfilter hook drops in nf_hook_slow): PREROUTING has no route yet,
 * OUTPUT has no device yet, POSTROUTING of forwarded traffic has skb_iif != dev. INPUT and FORWARD of the
 * same flow in the same netns cannot both happen (the destination is local or it is not).
 */
enum npt_path_bits {
    NPT_PATH_HAS_DEV = 1 << 0,
    NPT_PATH_IIF_IS_DEV = 1 << 1,
    NPT_PATH_HAS_ROUTE = 1 << 2,
    NPT_PATH_HAS_SOCK = 1 << 3,
    NPT_PATH_NETNS_FROM_SOCK = 1 << 4, /* netns_inum is the socket's: skb->dev was NULL */
};

/* Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY "counters"). */
enum npt_counter {
    NPT_CTR_LOST_EVENTS = 0,    /* ring buffer full: bpf_ringbuf_reserve() failed */
    NPT_CTR_FLOWS_INSERTED = 1, /* successful inserts into the flow LRU */
    NPT_CTR_EVENTS = 2,         /* events submitted */
    NPT_CTR_UPDATE_ERRORS = 3,  /* flow insert failed for another reason than a concurrent insert */
    NPT_CTR_STACK_ERRORS = 4,   /* bpf_get_stack() gave no frame */
    NPT_CTR_IP_FILTERED = 5,    /* drops of new flows skipped by the IP filter */
    NPT_CTR_MAX = 6,
};

/*
 * A flow: (family, saddr, daddr, protocol, dport, reason, location + path, netns). The source port is not
 * part of it (kept as last seen in the value) so a client retrying from new ports stays one flow. All fields
 * in host byte order except the addresses (network order, IPv4 in the first 4 bytes, rest zero).
 */
struct npt_flow_key {
    __u8 family;      /* NPT_AF_* */
    __u8 protocol;    /* IPPROTO_*; for IPv6 the upper-layer header after at most one extension header */
    __u16 dport;      /* TCP/UDP/SCTP destination port; 0 for other protocols */
    __u32 reason;     /* enum skb_drop_reason value, or NPT_REASON_UNKNOWN */
    __u32 netns_inum; /* netns of skb->dev, or of the socket when skb->dev is NULL; 0 if neither */
    __u16 l3_proto;   /* ethertype from skb->protocol */
    __u8 path;        /* enum npt_path_bits */
    __u8 pad0;
    __u64 location; /* kernel text address that freed the skb */
    __u8 saddr[NPT_ADDR_LEN];
    __u8 daddr[NPT_ADDR_LEN];
};

struct npt_flow_value {
    __u64 count;
    __u64 first_ns; /* bpf monotonic clock */
    __u64 last_ns;
    __u16 last_sport;
    __u8 tcp_flags; /* OR of the flags of every dropped segment (racy between CPUs: bits may be missed) */
    __u8 ct_state;  /* enum npt_ct_state at first sight */
    __u8 icmp_type; /* last seen, ICMP/ICMPv6 only */
    __u8 icmp_code;
    __u8 pad0[2];
};

struct npt_drop_event {
    struct npt_flow_key key;
    __u64 count;       /* drops of the flow so far, this one included */
    __u64 first_ns;    /* bpf monotonic clock */
    __u64 ts_ns;       /* this drop */
    __u32 stack_len;   /* frames in `stack` (new flows only; 0 if the kernel gave none) */
    __u32 skb_iif;     /* ingress ifindex (0 for locally generated packets) */
    __u32 dev_ifindex; /* skb->dev at the drop (bridged: the egress port), 0 if NULL */
    __u16 sport;
    __u16 orig_dport; /* pre-DNAT destination port (host order), valid when orig_dst_family != 0 */
    __u8 kind;        /* enum npt_event_kind */
    __u8 ct_state;    /* enum npt_ct_state */
    __u8 tcp_flags;
    __u8 icmp_type;
    __u8 icmp_code;
    __u8 orig_dst_family; /* NPT_AF_* of orig_daddr; 0: no DNAT seen in conntrack */
    __u8 pad0[2];
    __u8 orig_daddr[NPT_ADDR_LEN]; /* pre-DNAT destination address (network order) */
    /* Kernel stack at the drop, innermost first, below the tracing machinery: in the event itself rather than
     * a stack map, whose hash buckets collide (a colliding stack is refused) as distinct drop paths add up. */
    __u64 stack[NPT_STACK_DEPTH];
};

/*
 * Per-CPU front cache of recently dropped flows ("flow_cache", a BPF_F_MMAPABLE array of NPT_FLOW_CACHE_PAGES
 * pages per possible CPU, CPU n's at n * NPT_FLOW_CACHE_PAGES). A hash-map lookup costs ~120 ns on the reference
 * VM and bpf_ktime_get_ns ~45 ns, more than the rest of the program: a drop of a flow held in one of this CPU's
 * slots only bumps `pending` and stamps the time in ticks (jiffies, an inlined load; nanoseconds when the
 * kernel's HZ is unknown). The cache is 2-way set associative: a flow lives in one of the two slots of the set
 * its key hashes to, so a storm of many concurrent flows still hits it (a direct-mapped cache of a few slots sent
 * most drops of 16 flows to the maps). A slot is folded into the "flows" map when another flow takes it (the
 * least recently dropped of the set), after flush_ticks, or when the flow was quiet for gap_ticks. Readers of
 * counts add the pending drops of matching slots (same generation) to the map's value; the time of a slot's last
 * drop is base_ns + (last_tick - base_tick) * ns_per_tick.
 *
 * Each element is one page holding 16 sets and a copy of the settings the program reads for every drop (the
 * reason filter, the cache's timing and generation): a drop of a cached flow touches that page and no other map
 * memory. Where the kernel runs with page-table isolation and no PCID, every syscall flushes the TLB and each
 * page a drop touches costs a page walk; one page instead of .rodata, .bss and a per-CPU set measured 1-3% of a
 * drop storm's throughput on such a VM.
 */
#define NPT_QUEUE_FNS 6 /* NFQUEUE functions whose frees are policy drops (npt_hot_settings) */
#define NPT_FLOW_CACHE_WAYS 2
#define NPT_FLOW_CACHE_SETS_PER_PAGE 16
#define NPT_FLOW_CACHE_PAGES 8                                                    /* per CPU */
#define NPT_FLOW_CACHE_SETS (NPT_FLOW_CACHE_SETS_PER_PAGE * NPT_FLOW_CACHE_PAGES) /* per CPU */
#define NPT_FLOW_CACHE_PAGE_SIZE 4096

/* What a hit compares (key, generation, valid) comes first, in the slot's first 64 bytes. */
struct npt_flow_cache_slot {
    struct npt_flow_key key;
    __u32 generation; /* slot is valid only while equal to its page's settings.generation */
    __u8 valid;
    __u8 tcp_flags; /* OR over the pending drops */
    __u16 last_sport;
    __u64 pending;   /* drops of `key` on this CPU not yet added to the map */
    __u64 base_ns;   /* bpf monotonic clock when the slot was claimed or last flushed */
    __u64 base_tick; /* tick at that moment */
    __u64 last_tick; /* tick of the last drop of `key` on this CPU */
    __u8 icmp_type;
    __u8 icmp_code;
    __u8 pad0[6];
};

struct npt_flow_cache_set {
    struct npt_flow_cache_slot ways[NPT_FLOW_CACHE_WAYS];
};

/* Written by userspace only, through mmap, into every page: all of it before the program is attached, the
 * generation again after each purge of flows (a slot of an older generation folds into flows still present and
 * never re-inserts one). */
struct npt_hot_settings {
    __u64 reason_mask[NPT_REASON_BITMAP_WORDS]; /* bit r: keep core reason r */
    __u64 subsys_mask;                          /* bit n: keep every reason of subsystem n */
    __u64 quiet_gap_ns;                         /* 0: never emit NPT_EVENT_RESUMED */
    __u64 ns_per_tick;                          /* 0: ticks are nanoseconds (HZ unknown) */
    __u64 gap_ticks;                            /* quiet_gap_ns in ticks */
    __u64 flush_ticks;                          /* longest a slot holds drops back from the map */
    /* Functions that free packets an NFQUEUE listener dropped (nf_reinject, or the verdict handler it is inlined
     * into) or that no listener took (nf_queue): the kernel passes no specific reason there (NOT_SPECIFIED), so
     * the location keeps them. A drop at [start, start + len) is kept whatever its reason; len 0: unused. */
    __u64 queue_fn_start[NPT_QUEUE_FNS];
    __u64 queue_fn_len[NPT_QUEUE_FNS];
    __u32 generation;
    __u8 keep_high_reasons;   /* core reasons >= NPT_REASON_BITMAP_BITS ("all") */
    __u8 keep_unknown_reason; /* tracepoint without a reason argument */
    __u8 pad0[2];
};

struct npt_flow_cache_page {
    struct npt_hot_settings settings;
    struct npt_flow_cache_set sets[NPT_FLOW_CACHE_SETS_PER_PAGE];
    __u8 pad0[NPT_FLOW_CACHE_PAGE_SIZE - sizeof(struct npt_hot_settings) -
              NPT_FLOW_CACHE_SETS_PER_PAGE * sizeof(struct npt_flow_cache_set)];
};

/* Set of a flow among a CPU's NPT_FLOW_CACHE_SETS (page index * NPT_FLOW_CACHE_SETS_PER_PAGE + set in the
 * page): a multiplicative hash of the whole key (padding is zero on both sides), high bits kept. Same function on
 * both sides. */
static inline __u32 npt_flow_cache_set_of(const struct npt_flow_key* k) {
    const unsigned char* p = (const unsigned char*)k;
    __u64 h = 0;
    for (int i = 0; i < (int)(sizeof(*k) / sizeof(__u64)); i++) {
        __u64 w;
        __builtin_memcpy(&w, p + i * sizeof(__u64), sizeof(w));
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    }
    return (__u32)(h >> 40) & (NPT_FLOW_CACHE_SETS - 1);
}

/* Key of the "watched_ips" map (IP filter). */
struct npt_ip_key {
    __u8 family;
    __u8 pad0[3];
    __u8 addr[NPT_ADDR_LEN];
};

NPT_STATIC_ASSERT(sizeof(struct npt_flow_key) == 56, "npt_flow_key layout");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_key, reason) == 4, "npt_flow_key.reason");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_key, l3_proto) == 12, "npt_flow_key.l3_proto");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_key, location) == 16, "npt_flow_key.location");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_key, saddr) == 24, "npt_flow_key.saddr");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_key, daddr) == 40, "npt_flow_key.daddr");
NPT_STATIC_ASSERT(sizeof(struct npt_flow_value) == 32, "npt_flow_value layout");
NPT_STATIC_ASSERT(sizeof(struct npt_flow_cache_page) == NPT_FLOW_CACHE_PAGE_SIZE, "npt_flow_cache_page: one page");
NPT_STATIC_ASSERT(sizeof(struct npt_hot_settings) % 8 == 0, "npt_hot_settings: sets stay 8-byte aligned");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_value, last_sport) == 24, "npt_flow_value.last_sport");
NPT_STATIC_ASSERT(sizeof(struct npt_drop_event) == 120 + NPT_STACK_DEPTH * 8, "npt_drop_event layout");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, count) == 56, "npt_drop_event.count");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, stack_len) == 80, "npt_drop_event.stack_len");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, stack) == 120, "npt_drop_event.stack");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, sport) == 92, "npt_drop_event.sport");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, kind) == 96, "npt_drop_event.kind");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_drop_event, orig_daddr) == 104, "npt_drop_event.orig_daddr");
NPT_STATIC_ASSERT(sizeof(struct npt_ip_key) == 20, "npt_ip_key layout");
NPT_STATIC_ASSERT(sizeof(struct npt_flow_cache_slot) == 104, "npt_flow_cache_slot layout");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_cache_slot, generation) == 56, "npt_flow_cache_slot.generation");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_cache_slot, pending) == 64, "npt_flow_cache_slot.pending");
NPT_STATIC_ASSERT(__builtin_offsetof(struct npt_flow_cache_slot, last_tick) == 88, "npt_flow_cache_slot.last_tick");
NPT_STATIC_ASSERT(sizeof(struct npt_flow_cache_set) == 104 * NPT_FLOW_CACHE_WAYS, "npt_flow_cache_set layout");
NPT_STATIC_ASSERT((NPT_FLOW_CACHE_SETS & (NPT_FLOW_CACHE_SETS - 1)) == 0, "sets: power of two");
NPT_STATIC_ASSERT(sizeof(struct npt_flow_key) % 8 == 0, "the set hash reads the key as 64-bit words");

#endif /* NETPOL_TRACE_DROP_EVENT_H */

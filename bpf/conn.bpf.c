// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The working TCP connections of the node, from the sock:inet_sock_set_state tracepoint: a client's socket going
 * SYN_SENT -> ESTABLISHED and a server's SYN_RECV -> ESTABLISHED, counted per (client, server, port, side) in an
 * LRU hash. Every pod's sockets live in the node's kernel, so this sees every pod's connections whatever the CNI.
 *
 * Two programs; userspace loads one (autoload off for the other):
 *   npt_conn_btf  tp_btf: the socket's fields read through BTF
 *   npt_conn_tp   the classic tracepoint (its record carries the addresses), for kernels where tp_btf fails
 *
 * Cost: every state change of every TCP socket enters the program; all but the two transitions to ESTABLISHED
 * leave after one compare. A connection costs one hash lookup and an atomic add (or one insert); no clock read
 * (userspace stamps what grew at its poll).
 */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "netpol_trace/conn_event.h"
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define NPT_AF_INET 2
#define NPT_AF_INET6 10
#define NPT_IPPROTO_TCP 6
#define NPT_TCP_ESTABLISHED 1
#define NPT_TCP_SYN_SENT 2
#define NPT_TCP_SYN_RECV 3

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536); /* resized from userspace */
    __type(key, struct npt_conn_key);
    __type(value, struct npt_conn_value);
} conns SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, NPT_CONN_CTR_MAX);
    __type(key, __u32);
    __type(value, __u64);
} conn_counters SEC(".maps");

static __always_inline void count(__u32 counter) {
    __u64* v = bpf_map_lookup_elem(&conn_counters, &counter);
    if (v) *v += 1;
}

/* A v4-mapped IPv6 address (::ffff:a.b.c.d) becomes IPv4; loopback connections are not policy traffic. Returns
 * false for a connection to skip. */
static __always_inline bool normalize(struct npt_conn_key* k) {
    if (k->family == NPT_AF_INET6) {
        __u64 s0, d0;
        __u32 s2, d2;
        __builtin_memcpy(&s0, k->saddr, 8);
        __builtin_memcpy(&d0, k->daddr, 8);
        __builtin_memcpy(&s2, k->saddr + 8, 4);
        __builtin_memcpy(&d2, k->daddr + 8, 4);
        const __u32 mapped = bpf_htonl(0x0000ffff);
        if (s0 == 0 && d0 == 0 && s2 == mapped && d2 == mapped) {
            __builtin_memcpy(k->saddr, k->saddr + 12, 4);
            __builtin_memcpy(k->daddr, k->daddr + 12, 4);
            __builtin_memset(k->saddr + 4, 0, 12);
            __builtin_memset(k->daddr + 4, 0, 12);
            k->family = NPT_AF_INET;
        } else {
            __u64 s1, d1;
            __builtin_memcpy(&s1, k->saddr + 8, 8);
            __builtin_memcpy(&d1, k->daddr + 8, 8);
            const __u64 one = bpf_cpu_to_be64(1);
            if ((s0 == 0 && s1 == one) || (d0 == 0 && d1 == one)) return false; /* ::1 */
            return true;
        }
    }
    if (k->family != NPT_AF_INET) return false;
    return k->saddr[0] != 127 && k->daddr[0] != 127;
}

static __always_inline void record(struct npt_conn_key* k) {
    if (!normalize(k)) return;
    struct npt_conn_value* v = bpf_map_lookup_elem(&conns, k);
    if (v) {
        __sync_fetch_and_add(&v->count, 1);
        return;
    }
    struct npt_conn_value init = {.count = 1, .first_ns = bpf_ktime_get_ns()};
    long err = bpf_map_update_elem(&conns, k, &init, BPF_NOEXIST);
    if (err == 0) {
        count(NPT_CONN_CTR_INSERTED);
    } else if (err == -17 /* EEXIST: another CPU inserted it first */) {
        v = bpf_map_lookup_elem(&conns, k);
        if (v) __sync_fetch_and_add(&v->count, 1);
    } else {
        count(NPT_CONN_CTR_UPDATE_ERRORS);
    }
}

/* The side of a transition, 0 for the transitions not counted. */
static __always_inline __u8 side_of(int oldstate, int newstate) {
    if (newstate != NPT_TCP_ESTABLISHED) return 0;
    if (oldstate == NPT_TCP_SYN_SENT) return NPT_CONN_CLIENT;
    if (oldstate == NPT_TCP_SYN_RECV) return NPT_CONN_SERVER;
    return 0;
}

/* local/remote are the socket's own view; the key is (client, server). */
static __always_inline void fill(struct npt_conn_key* k, __u8 side, const __u8* local, const __u8* remote,
                                 __u16 local_port, __u16 remote_port, int len) {
    if (side == NPT_CONN_CLIENT) {
        __builtin_memcpy(k->saddr, local, 16);
        __builtin_memcpy(k->daddr, remote, 16);
        k->dport = remote_port;
    } else {
        __builtin_memcpy(k->saddr, remote, 16);
        __builtin_memcpy(k->daddr, local, 16);
        k->dport = local_port;
    }
    if (len == 4) {
        __builtin_memset(k->saddr + 4, 0, 12);
        __builtin_memset(k->daddr + 4, 0, 12);
    }
}

SEC("tp_btf/inet_sock_set_state")
int npt_conn_btf(unsigned long long* ctx) {
    const __u8 side = side_of((int)ctx[1], (int)ctx[2]);
    if (!side) return 0;
    const struct sock* sk = (const struct sock*)ctx[0];
    /* A bitfield before 5.6: read through its CO-RE relocations either way. SCTP sockets pass here too. */
    if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol) != NPT_IPPROTO_TCP) return 0;
    struct npt_conn_key k;
    __builtin_memset(&k, 0, sizeof(k));
    k.family = (__u8)sk->__sk_common.skc_family;
    k.protocol = NPT_IPPROTO_TCP;
    k.side = side;
    __u8 local[16] = {}, remote[16] = {};
    int len = 16;
    if (k.family == NPT_AF_INET) {
        __u32 l = sk->__sk_common.skc_rcv_saddr, r = sk->__sk_common.skc_daddr;
        __builtin_memcpy(local, &l, 4);
        __builtin_memcpy(remote, &r, 4);
        len = 4;
    } else if (k.family == NPT_AF_INET6) {
        BPF_CORE_READ_INTO(&local, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
        BPF_CORE_READ_INTO(&remote, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
    } else {
        return 0;
    }
    fill(&k, side, local, remote, sk->__sk_common.skc_num, bpf_ntohs(sk->__sk_common.skc_dport), len);
    record(&k);
    return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int npt_conn_tp(struct trace_event_raw_inet_sock_set_state* ctx) {
    const __u8 side = side_of(ctx->oldstate, ctx->newstate);
    if (!side || ctx->protocol != NPT_IPPROTO_TCP) return 0;
    struct npt_conn_key k;
    __builtin_memset(&k, 0, sizeof(k));
    k.family = (__u8)ctx->family;
    k.protocol = NPT_IPPROTO_TCP;
    k.side = side;
    __u8 local[16] = {}, remote[16] = {};
    int len = 16;
    if (k.family == NPT_AF_INET) {
        __builtin_memcpy(local, ctx->saddr, 4);
        __builtin_memcpy(remote, ctx->daddr, 4);
        len = 4;
    } else if (k.family == NPT_AF_INET6) {
        __builtin_memcpy(local, ctx->saddr_v6, 16);
        __builtin_memcpy(remote, ctx->daddr_v6, 16);
    } else {
        return 0;
    }
    /* The record's ports are host order already. */
    fill(&k, side, local, remote, ctx->sport, ctx->dport, len);
    record(&k);
    return 0;
}

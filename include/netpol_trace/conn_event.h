/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Structures shared by bpf/conn.bpf.c and userspace/bpf/conn_capture.cpp: the working TCP connections of the node,
 * counted in the kernel per (client, server, port, side) when a socket reaches ESTABLISHED. Same rules as
 * drop_event.h: fixed-width fields, explicit padding, the static asserts at the end.
 */
#ifndef NETPOL_TRACE_CONN_EVENT_H
#define NETPOL_TRACE_CONN_EVENT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define NPT_CONN_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define NPT_CONN_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define NPT_CONN_ADDR_LEN 16

/* Which end's socket saw the connection established. */
enum npt_conn_side {
    NPT_CONN_CLIENT = 1, /* SYN_SENT -> ESTABLISHED: the address as dialled (a Service VIP before DNAT) */
    NPT_CONN_SERVER = 2, /* SYN_RECV -> ESTABLISHED: the connection as it arrived (after DNAT) */
};

/* Per-CPU counters (BPF_MAP_TYPE_PERCPU_ARRAY "conn_counters"). */
enum npt_conn_counter {
    NPT_CONN_CTR_INSERTED = 0,      /* new keys inserted into the LRU */
    NPT_CONN_CTR_UPDATE_ERRORS = 1, /* inserts refused for another reason than a concurrent insert */
    NPT_CONN_CTR_MAX = 2,
};

/*
 * Addresses in network order, IPv4 in the first 4 bytes (rest zero); an IPv4-mapped IPv6 address (a dual-stack
 * socket talking IPv4) is stored as IPv4. The client's port is not part of the key: every connection of a client
 * to a server port is one entry.
 */
struct npt_conn_key {
    __u8 family;   /* 2 (AF_INET) or 10 (AF_INET6) */
    __u8 protocol; /* IPPROTO_TCP */
    __u8 side;     /* enum npt_conn_side */
    __u8 pad0;
    __u16 dport; /* the server's port, host order */
    __u16 pad1;
    __u8 saddr[NPT_CONN_ADDR_LEN]; /* the client */
    __u8 daddr[NPT_CONN_ADDR_LEN]; /* the server, or the address the client dialled */
};

/* Only the count moves per connection; when it moved is the reader's poll time (it polls every second). */
struct npt_conn_value {
    __u64 count;    /* connections established */
    __u64 first_ns; /* bpf monotonic clock at the insert: tells a re-inserted entry (after an eviction) apart */
};

NPT_CONN_STATIC_ASSERT(sizeof(struct npt_conn_key) == 40, "npt_conn_key layout");
NPT_CONN_STATIC_ASSERT(__builtin_offsetof(struct npt_conn_key, dport) == 4, "npt_conn_key.dport");
NPT_CONN_STATIC_ASSERT(__builtin_offsetof(struct npt_conn_key, saddr) == 8, "npt_conn_key.saddr");
NPT_CONN_STATIC_ASSERT(__builtin_offsetof(struct npt_conn_key, daddr) == 24, "npt_conn_key.daddr");
NPT_CONN_STATIC_ASSERT(sizeof(struct npt_conn_value) == 16, "npt_conn_value layout");

#endif /* NETPOL_TRACE_CONN_EVENT_H */

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Benchmark reference for scripts/bench-drops: a program on the same tracepoint as the drop capture that does
 * nothing. What it costs is what any program there costs on that kernel (the tracepoint's dispatch to BPF and the
 * program's entry), the floor under netpol-trace's own figures. */
/* vmlinux.h first: it defines the kernel types the libbpf headers need. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/kfree_skb")
int npt_floor(unsigned long long* ctx __attribute__((unused))) {
    return 0;
}

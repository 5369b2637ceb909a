// npt_bench_floor: attaches bench_floor.bpf.c's empty program to tp_btf/kfree_skb until SIGINT or SIGTERM, for
// scripts/bench-drops's "empty" mode (the cost of any program on that tracepoint).
//   npt_bench_floor READY_FILE
#include <bpf/libbpf.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "bench_floor.skel.h"

namespace {
volatile std::sig_atomic_t stop = 0;
void on_signal(int) {
    stop = 1;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: npt_bench_floor READY_FILE\n");
        return 2;
    }
    libbpf_set_print([](libbpf_print_level, const char*, va_list) { return 0; });
    bench_floor* skel = bench_floor__open_and_load();
    if (!skel) {
        std::fprintf(stderr, "npt_bench_floor: cannot load the program: %s\n", std::strerror(errno));
        return 1;
    }
    if (int err = bench_floor__attach(skel); err) {
        std::fprintf(stderr, "npt_bench_floor: cannot attach to tp_btf/kfree_skb: %s\n", std::strerror(-err));
        bench_floor__destroy(skel);
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::ofstream(argv[1]) << "attached\n";
    sigset_t none;
    sigemptyset(&none);
    while (!stop) {
        sigsuspend(&none);
    }
    bench_floor__destroy(skel);
    return 0;
}

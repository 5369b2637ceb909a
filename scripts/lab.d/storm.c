// A bounded UDP storm for scripts/bench-drops: NSPORTS sockets on consecutive source ports, each sending one
// datagram to every destination in turn, until SECONDS have passed. Prints what it sent, per destination, as JSON.
//
//   storm SECONDS NSPORTS SPORT_BASE ADDR:PORT... ([v6addr]:port for IPv6; ADDR:FIRST-LAST for a range of ports)
//
// Every datagram goes through one sendto(); a datagram counts as sent when sendto() accepted it (or said EPERM: a
// drop in this namespace's own OUTPUT hook), so the sender knows exactly how many packets each flow should show.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct dest {
    struct sockaddr_storage addr;
    socklen_t len;
    int family;
    const char* text;
    uint64_t sent;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_dest(const char* text, int port, struct dest* d) {
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", text);
    char* colon = strrchr(buf, ':');
    if (!colon) return -1;
    *colon = '\0';
    char* host = buf;
    memset(d, 0, sizeof(*d));
    char* name = malloc(strlen(buf) + 8);
    if (!name) return -1;
    sprintf(name, "%s:%d", buf, port);
    d->text = name;
    if (host[0] == '[') {
        host++;
        host[strlen(host) - 1] = '\0';
        struct sockaddr_in6* a = (struct sockaddr_in6*)&d->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
        d->len = sizeof(*a);
        d->family = AF_INET6;
    } else {
        struct sockaddr_in* a = (struct sockaddr_in*)&d->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
        d->len = sizeof(*a);
        d->family = AF_INET;
    }
    return 0;
}

int main(int argc, char** argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s SECONDS NSPORTS SPORT_BASE ADDR:PORT...\n", argv[0]);
        return 2;
    }
    const double seconds = atof(argv[1]);
    const int nsports = atoi(argv[2]);
    const int sport_base = atoi(argv[3]);
    // A wide storm's destinations as ranges: 65536 ADDR:PORT arguments would not fit the argument space.
    int ndest = 0;
    int* first = calloc((size_t)argc, sizeof(int));
    int* last = calloc((size_t)argc, sizeof(int));
    if (!first || !last) return 1;
    for (int i = 4; i < argc; i++) {
        const char* colon = strrchr(argv[i], ':');
        if (!colon || sscanf(colon + 1, "%d", &first[i]) != 1) {
            fprintf(stderr, "storm: bad destination %s\n", argv[i]);
            return 2;
        }
        const char* dash = strchr(colon + 1, '-');
        last[i] = dash ? atoi(dash + 1) : first[i];
        if (first[i] < 1 || last[i] < first[i] || last[i] > 65535) {
            fprintf(stderr, "storm: bad port range %s\n", argv[i]);
            return 2;
        }
        ndest += last[i] - first[i] + 1;
    }
    struct dest* dests = calloc((size_t)ndest, sizeof(*dests));
    int* socks = calloc((size_t)nsports * 2, sizeof(int));
    if (!dests || !socks) return 1;
    for (int i = 4, d = 0; i < argc; i++) {
        for (int port = first[i]; port <= last[i]; port++, d++) {
            if (parse_dest(argv[i], port, &dests[d]) != 0) {
                fprintf(stderr, "storm: bad destination %s\n", argv[i]);
                return 2;
            }
        }
    }
    // One socket per source port and family (IPv6 sockets only when an IPv6 destination needs them).
    int need_v6 = 0;
    for (int d = 0; d < ndest; d++) need_v6 |= dests[d].family == AF_INET6;
    for (int f = 0; f < 1 + need_v6; f++) {
        for (int i = 0; i < nsports; i++) {
            const int family = f ? AF_INET6 : AF_INET;
            int s = socket(family, SOCK_DGRAM, 0);
            if (s < 0) return 1;
            const int one = 1;
            if (family == AF_INET6) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
            struct sockaddr_storage local = {0};
            socklen_t len;
            if (family == AF_INET) {
                struct sockaddr_in* a = (struct sockaddr_in*)&local;
                a->sin_family = AF_INET;
                a->sin_port = htons((uint16_t)(sport_base + i));
                len = sizeof(*a);
            } else {
                struct sockaddr_in6* a = (struct sockaddr_in6*)&local;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons((uint16_t)(sport_base + i));
                len = sizeof(*a);
            }
            if (bind(s, (struct sockaddr*)&local, len) != 0) {
                perror("storm: bind");
                return 1;
            }
            socks[f * nsports + i] = s;
        }
    }
    static const char payload[32] = "netpol-trace bench-drops";
    uint64_t errors = 0, rounds = 0;
    const double start = now();
    double elapsed = 0;
    // The clock is read after each source port's pass over the destinations: a wide storm's full round (every
    // source port to every destination) can take longer than the storm.
    while (elapsed < seconds) {
        for (int i = 0; i < nsports && elapsed < seconds; i++) {
            for (int d = 0; d < ndest; d++) {
                const int s = socks[(dests[d].family == AF_INET6) * nsports + i];
                if (sendto(s, payload, sizeof(payload), 0, (struct sockaddr*)&dests[d].addr, dests[d].len) >= 0 ||
                    errno == EPERM)
                    dests[d].sent++;
                else
                    errors++;
            }
            elapsed = now() - start;
        }
        rounds++;
    }
    // CPU time of this process, softirq work included: on kernels without IRQ time accounting the packet's path
    // through veth, the node and the drop (and any tracer's BPF program on it) is charged to the sender. Unlike the
    // rate, it does not move when other work shares the CPUs.
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                       (double)ru.ru_stime.tv_usec / 1e6;
    uint64_t total = 0;
    printf("{\"elapsed\": %.6f, \"cpu\": %.6f, \"rounds\": %llu, \"errors\": %llu, \"sent\": {", elapsed, cpu,
           (unsigned long long)rounds, (unsigned long long)errors);
    for (int d = 0; d < ndest; d++) {
        printf("%s\"%s\": %llu", d ? ", " : "", dests[d].text, (unsigned long long)dests[d].sent);
        total += dests[d].sent;
    }
    printf("}, \"total\": %llu}\n", (unsigned long long)total);
    return 0;
}

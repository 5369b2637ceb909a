// Exact, bounded traffic for the kernel matrix's guest scenarios (busybox has no UDP client):
//
//   npt-send udp ADDR PORT COUNT    COUNT datagrams from one unconnected socket (one source port), 20 ms apart
//   npt-send tcp ADDR PORT COUNT    COUNT connection attempts, each abandoned after 300 ms: before the kernel's
//                                   first SYN retransmission (1 s), so each attempt is exactly one SYN
//
// ADDR is an IPv4 or IPv6 literal. Prints "sent N errors E" and exits 0 when every packet left the socket.
// A datagram counts as sent when sendto() accepted it or said EPERM (dropped by this namespace's own OUTPUT hook).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int parse_addr(const char* text, int port, struct sockaddr_storage* ss, socklen_t* len) {
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in* a4 = (struct sockaddr_in*)ss;
    struct sockaddr_in6* a6 = (struct sockaddr_in6*)ss;
    if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((unsigned short)port);
        *len = sizeof(*a4);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((unsigned short)port);
        *len = sizeof(*a6);
        return AF_INET6;
    }
    return -1;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int main(int argc, char** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: npt-send udp|tcp ADDR PORT COUNT\n");
        return 2;
    }
    const int tcp = strcmp(argv[1], "tcp") == 0;
    if (!tcp && strcmp(argv[1], "udp") != 0) {
        fprintf(stderr, "npt-send: protocol must be udp or tcp, not %s\n", argv[1]);
        return 2;
    }
    const int port = atoi(argv[3]);
    const int count = atoi(argv[4]);
    struct sockaddr_storage dst;
    socklen_t len;
    const int family = parse_addr(argv[2], port, &dst, &len);
    if (family < 0 || port <= 0 || port > 65535 || count <= 0) {
        fprintf(stderr, "npt-send: bad address, port or count: %s %s %s\n", argv[2], argv[3], argv[4]);
        return 2;
    }
    int sent = 0, errors = 0;
    if (!tcp) {
        const int s = socket(family, SOCK_DGRAM, 0);
        if (s < 0) {
            perror("npt-send: socket");
            return 1;
        }
        static const char payload[] = "netpol-trace kernel matrix";
        for (int i = 0; i < count; i++) {
            if (i) sleep_ms(20);
            if (sendto(s, payload, sizeof(payload), 0, (struct sockaddr*)&dst, len) >= 0 || errno == EPERM)
                sent++;
            else
                errors++;
        }
        close(s);
    } else {
        for (int i = 0; i < count; i++) {
            const int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (s < 0) {
                perror("npt-send: socket");
                return 1;
            }
            const int rc = connect(s, (struct sockaddr*)&dst, len);
            if (rc == 0 || errno == EINPROGRESS || errno == EPERM) {
                sent++;
                struct pollfd p = {s, POLLOUT, 0};
                poll(&p, 1, 300);
            } else {
                errors++;
            }
            close(s);
        }
    }
    printf("sent %d errors %d\n", sent, errors);
    return errors ? 1 : 0;
}

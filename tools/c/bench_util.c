/* bench_util.c - sockets, time, CPU and data checks shared by eta_sock_bench's
 * measures (see bench.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "eta.h"

void die(const char *what) {
    fprintf(stderr, "eta_sock_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

void check_failed(const char *what) {
    fprintf(stderr, "eta_sock_bench: data check failed: %s\n", what);
    exit(1);
}

double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

double cpu_now(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) die("getrusage");
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void *xmalloc(size_t n) {
    void *m = calloc(1, n);
    if (!m) die("malloc");
    return m;
}

void prepare(const struct params *p, int s) {
    int one = 1;
    if (p->nodelay && setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one)) die("TCP_NODELAY");
    /* The one eta-specific line: everything else is an ordinary sockets program. */
    if (p->ddp && setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one))
        die("ETA_DDPMODE (is libeta.so preloaded?)");
}

int listen_loopback(const struct params *p, int backlog, int *port) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    prepare(p, l);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, backlog) ||
        getsockname(l, (struct sockaddr *)&a, &alen))
        die("listen");
    *port = ntohs(a.sin_port);
    return l;
}

int connect_loopback(const struct params *p, int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    prepare(p, s);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    return s;
}

void put(int s, const void *buf, size_t n) {
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = write(s, (const char *)buf + sent, n - sent);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd f = {.fd = s, .events = POLLOUT};
            if (poll(&f, 1, HARD_LIMIT_SECS * 1000) != 1) die("poll for POLLOUT");
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write");
        sent += (size_t)w;
    }
}

int get(const struct params *p, int s, void *buf, size_t n) {
    if (p->ddp) {
        ssize_t r;
        do r = read(s, buf, n + SLACK);
        while (r < 0 && errno == EINTR);
        if (r == 0) return -1;
        if (r < 0) die("read");
        if ((size_t)r != n) {
            fprintf(stderr, "eta_sock_bench: read returned %zd octets, expected one %zu-octet message\n", r, n);
            check_failed("DDP message boundaries");
        }
        return 0;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(s, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0 && got == 0) return -1;
        if (r == 0) check_failed("the peer closed in the middle of a message");
        if (r < 0) die("read");
        got += (size_t)r;
    }
    return 0;
}

static uint8_t pattern_at(size_t i) { return (uint8_t)(i * 31u + 7u); }

void fill_pattern(uint8_t *buf, size_t n) {
    for (size_t i = 0; i < n; i++) buf[i] = pattern_at(i);
}

void stamp(uint8_t *buf, size_t n, uint64_t seq) {
    memcpy(buf, &seq, 8);
    memcpy(buf + n - 8, &seq, 8);
}

void check_msg(const uint8_t *buf, size_t n, uint64_t seq, int full, const char *what) {
    uint64_t a, b;
    memcpy(&a, buf, 8);
    memcpy(&b, buf + n - 8, 8);
    if (a != seq || b != seq) {
        fprintf(stderr, "eta_sock_bench: %s: message %llu carries stamps %llu/%llu\n", what,
                (unsigned long long)seq, (unsigned long long)a, (unsigned long long)b);
        check_failed(what);
    }
    if (full)
        for (size_t i = 8; i < n - 8; i++)
            if (buf[i] != pattern_at(i)) {
                fprintf(stderr, "eta_sock_bench: %s: message %llu differs at octet %zu\n", what,
                        (unsigned long long)seq, i);
                check_failed(what);
            }
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double quantile(double *v, size_t n, double q) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp);
    return v[(size_t)((double)n * q)];
}

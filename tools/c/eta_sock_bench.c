/* eta_sock_bench: what a sockets program gets from a DDP socket, against the same
 * program on plain TCP. One process, two threads over 127.0.0.1:
 *
 *   eta_sock_bench tcp|ddp [pings] [stream_mib] [msg_kib]
 *
 * - ping-pong: 1-octet messages back and forth, `pings` round trips; prints the
 *   median and the 99th percentile round trip in microseconds;
 * - stream: the client writes `stream_mib` MiB in `msg_kib` KiB messages, the server
 *   reads them (and checks each message's length); prints MB/s.
 * `ddp` switches both sockets with SOL_ETA/ETA_DDPMODE (run under libeta.so);
 * `tcp` leaves them plain. scripts/sock-bench.sh runs both, alternating. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "eta.h"

static int ddp, pings = 20000, port;
static size_t stream_bytes = 256u << 20, msg = 64u << 10;

static void die(const char *what) {
    fprintf(stderr, "eta_sock_bench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void prepare(int s) {
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ddp && setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one)) die("ETA_DDPMODE (is libeta.so preloaded?)");
}

/* Reads exactly n octets (TCP) or one n-octet message (DDP). */
static void get(int s, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(s, buf + got, n - got);
        if (r <= 0) die("read");
        got += (size_t)r;
        if (ddp && got != n) {
            errno = EPROTO;
            die("a DDP message arrived in parts");
        }
    }
}

static void put(int s, const char *buf, size_t n) {
    size_t sent = 0;
    while (sent < n) {
        ssize_t w = write(s, buf + sent, n - sent);
        if (w <= 0) die("write");
        sent += (size_t)w;
    }
}

static void *server(void *arg) {
    int l = *(int *)arg;
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    char *buf = malloc(msg);
    for (int i = 0; i < pings; i++) {
        get(s, buf, 1);
        put(s, buf, 1);
    }
    for (size_t done = 0; done < stream_bytes; done += msg) get(s, buf, msg);
    put(s, "k", 1);
    free(buf);
    close(s);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "ddp"))) {
        fprintf(stderr, "usage: eta_sock_bench tcp|ddp [pings] [stream_mib] [msg_kib]\n");
        return 2;
    }
    ddp = strcmp(argv[1], "ddp") == 0;
    if (argc > 2) pings = atoi(argv[2]);
    if (argc > 3) stream_bytes = (size_t)atoi(argv[3]) << 20;
    if (argc > 4) msg = (size_t)atoi(argv[4]) << 10;
    stream_bytes -= stream_bytes % msg;

    int l = socket(AF_INET, SOCK_STREAM, 0);
    prepare(l);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen))
        die("listen");
    port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, server, &l);

    int s = socket(AF_INET, SOCK_STREAM, 0);
    prepare(s);
    if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    char *buf = calloc(1, msg);
    double *rtt = malloc(sizeof *rtt * (size_t)pings);
    for (int i = 0; i < pings; i++) {
        double t0 = now();
        put(s, "p", 1);
        get(s, buf, 1);
        rtt[i] = (now() - t0) * 1e6;
    }
    qsort(rtt, (size_t)pings, sizeof *rtt, cmp);
    double t0 = now();
    for (size_t done = 0; done < stream_bytes; done += msg) put(s, buf, msg);
    get(s, buf, 1); /* the server has read everything */
    double secs = now() - t0;
    printf("%s: 1-octet round trip median %.2f us, p99 %.2f us; stream of %zu KiB messages %.0f MB/s\n",
           ddp ? "ddp" : "tcp", rtt[pings / 2], rtt[pings * 99 / 100], msg >> 10, (double)stream_bytes / secs / 1e6);
    pthread_join(t, NULL);
    close(s);
    close(l);
    return 0;
}

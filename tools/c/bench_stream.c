/* bench_stream.c - two measures over one connection:
 *   stream: the client writes `total` octets in `size`-octet writes (one write = one
 *           message in DDP mode), the server reads them back as messages and answers
 *           with one 16-octet acknowledgement; throughput is total / time to the ack.
 *   rtt:    `count` round trips of one `size`-octet message each way (ping-pong).
 * Every message carries its sequence number in its first and last 8 octets (checked
 * on every message); every 64th stream message and every echo is checked whole. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>

#include "bench.h"

/* Accepts the run's one connection. */
static int accept_one(int l) {
    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    return s;
}

/* Waits for the client to close (bounded by the client's own end), then closes. */
static void drain_and_close(int s, uint8_t *buf, size_t n) {
    while (read(s, buf, n + SLACK) > 0) {
    }
    close(s);
}

static void report(int report_fd, int own_cpu, double cpu) {
    dprintf(report_fd, "cpu=%.6f\n", own_cpu ? cpu : 0.0);
}

void stream_server(const struct params *p, int l, int report_fd, int own_cpu) {
    int s = accept_one(l);
    double c0 = cpu_now();
    uint8_t *buf = xmalloc(p->size + SLACK);
    uint64_t msgs = p->total / p->size;
    for (uint64_t i = 0; i < msgs; i++) {
        if (get(p, s, buf, p->size)) check_failed("stream ended early");
        check_msg(buf, p->size, i, i % 64 == 0, "stream");
    }
    uint8_t ack[16];
    stamp(ack, sizeof ack, msgs);
    put(s, ack, sizeof ack);
    report(report_fd, own_cpu, cpu_now() - c0);
    drain_and_close(s, buf, p->size);
    free(buf);
}

struct result stream_client(const struct params *p, int port) {
    int s = connect_loopback(p, port);
    uint8_t *buf = xmalloc(p->size + SLACK);
    fill_pattern(buf, p->size);
    uint64_t msgs = p->total / p->size;
    struct result r = {0};
    double c0 = cpu_now(), t0 = now();
    for (uint64_t i = 0; i < msgs; i++) {
        stamp(buf, p->size, i);
        put(s, buf, p->size);
    }
    uint8_t ack[16 + SLACK];
    if (get(p, s, ack, 16)) check_failed("no acknowledgement");
    check_msg(ack, 16, msgs, 0, "stream acknowledgement");
    r.secs = now() - t0;
    r.cpu_client = cpu_now() - c0;
    r.work = (double)(msgs * p->size);
    close(s);
    free(buf);
    return r;
}

void rtt_server(const struct params *p, int l, int report_fd, int own_cpu) {
    int s = accept_one(l);
    double c0 = cpu_now();
    uint8_t *buf = xmalloc(p->size + SLACK);
    for (long i = 0; i < p->count; i++) {
        if (get(p, s, buf, p->size)) check_failed("ping-pong ended early");
        check_msg(buf, p->size, (uint64_t)i, 1, "ping");
        put(s, buf, p->size);
    }
    report(report_fd, own_cpu, cpu_now() - c0);
    drain_and_close(s, buf, p->size);
    free(buf);
}

struct result rtt_client(const struct params *p, int port) {
    int s = connect_loopback(p, port);
    uint8_t *out = xmalloc(p->size), *in = xmalloc(p->size + SLACK);
    double *rtt = xmalloc(sizeof *rtt * (size_t)p->count);
    fill_pattern(out, p->size);
    struct result r = {0};
    double c0 = cpu_now(), t0 = now();
    for (long i = 0; i < p->count; i++) {
        double t = now();
        stamp(out, p->size, (uint64_t)i);
        put(s, out, p->size);
        if (get(p, s, in, p->size)) check_failed("ping-pong ended early");
        rtt[i] = (now() - t) * 1e6;
        check_msg(in, p->size, (uint64_t)i, 1, "pong");
    }
    r.secs = now() - t0;
    r.cpu_client = cpu_now() - c0;
    r.work = (double)p->count;
    r.p99_us = quantile(rtt, (size_t)p->count, 0.99);
    r.p50_us = quantile(rtt, (size_t)p->count, 0.50);
    close(s);
    free(out);
    free(in);
    free(rtt);
    return r;
}

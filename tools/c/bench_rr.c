/* bench_rr.c - request/response over `conns` connections, written as an ordinary
 * event-driven sockets program: the server is one epoll loop (listening socket
 * included) with non-blocking connections, reading `size`-octet requests and writing
 * `resp`-octet responses; the client drives every connection closed-loop (one
 * request outstanding each, `count` requests per connection) from its own epoll loop
 * and times each request. The only eta-specific line is prepare()'s DDP switch.
 * A request carries (connection, sequence) in its first and last 8 octets; the
 * response echoes them and the rest of both is the test pattern (checked whole). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/* The largest fd either side handles (20 connections need far fewer). */
#define MAX_FD 4096
/* An epoll_wait that sees nothing for this long ends the run as failed. */
#define IDLE_MS 30000
/* Events taken per epoll_wait. */
#define MAX_EVENTS 64

struct conn {
    uint8_t *buf; /* the message being received (request or response), + SLACK */
    size_t got;   /* octets of it received so far */
    uint64_t seq; /* client: requests completed on this connection */
    double sent;  /* client: when the outstanding request was written */
    int open;
};

static void set_nonblocking(int s) {
    int fl = fcntl(s, F_GETFL);
    if (fl < 0 || fcntl(s, F_SETFL, fl | O_NONBLOCK)) die("fcntl O_NONBLOCK");
}

static void watch(int ep, int s) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev)) die("epoll_ctl");
}

/* Reads what is there of the message `c` is receiving (`n` octets). Returns 1 when
 * the message is complete, 0 if more is to come, -1 at end of connection. In DDP mode
 * a read must return one whole message. */
static int receive(const struct params *p, int s, struct conn *c, size_t n) {
    ssize_t r = read(s, c->buf + c->got, p->ddp ? n + SLACK : n - c->got);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    if (r < 0) die("read");
    if (r == 0) {
        if (c->got) check_failed("connection closed in the middle of a message");
        return -1;
    }
    if (p->ddp && (size_t)r != n) {
        fprintf(stderr, "eta_sock_bench: rr: read returned %zd octets, expected one %zu-octet message\n", r, n);
        check_failed("DDP message boundaries");
    }
    c->got += (size_t)r;
    if (c->got < n) return 0;
    c->got = 0;
    return 1;
}

/* Waits for up to MAX_EVENTS events (at least one); dies with `idle` after IDLE_MS. */
static int wait_events(int ep, struct epoll_event *evs, const char *idle) {
    for (;;) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, IDLE_MS);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        if (n == 0) check_failed(idle);
        return n;
    }
}

static uint64_t tag(int conn, uint64_t seq) { return (uint64_t)conn << 40 | seq; }

void rr_server(const struct params *p, int l, int report_fd, int own_cpu) {
    static struct conn conns[MAX_FD];
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    watch(ep, l);
    uint8_t *resp = xmalloc(p->resp);
    fill_pattern(resp, p->resp);
    int accepted = 0, closed = 0;
    double c0 = cpu_now(), cpu = -1;
    while (closed < p->conns) {
        struct epoll_event evs[MAX_EVENTS];
        int n = wait_events(ep, evs, "rr server: no event for 30 s");
        for (int i = 0; i < n; i++) {
            int s = evs[i].data.fd;
            if (s == l) {
                if (accepted == p->conns) check_failed("rr server: more connections than expected");
                int a = accept(l, NULL, NULL);
                if (a < 0) die("accept");
                if (a >= MAX_FD) check_failed("rr server: fd too large");
                set_nonblocking(a);
                conns[a] = (struct conn){.buf = xmalloc(p->size + SLACK), .open = 1};
                watch(ep, a);
                if (++accepted == p->conns && epoll_ctl(ep, EPOLL_CTL_DEL, l, NULL)) die("epoll_ctl");
                continue;
            }
            struct conn *c = &conns[s];
            int got = receive(p, s, c, p->size);
            if (got < 0) {
                /* The client closes only when it is done: the measured part is over. */
                if (cpu < 0) cpu = cpu_now() - c0;
                free(c->buf);
                c->open = 0;
                close(s); /* also leaves the epoll set */
                closed++;
            } else if (got) {
                uint64_t id;
                memcpy(&id, c->buf, 8);
                check_msg(c->buf, p->size, id, 1, "request");
                stamp(resp, p->resp, id);
                put(s, resp, p->resp);
            }
        }
    }
    dprintf(report_fd, "cpu=%.6f\n", own_cpu ? cpu : 0.0);
    close(ep);
    free(resp);
}

struct result rr_client(const struct params *p, int port) {
    struct conn *conns = xmalloc(sizeof *conns * (size_t)p->conns);
    int *fds = xmalloc(sizeof *fds * (size_t)p->conns);
    size_t total = (size_t)p->conns * (size_t)p->count, done = 0;
    double *lat = xmalloc(sizeof *lat * total);
    uint8_t *req = xmalloc(p->size);
    fill_pattern(req, p->size);
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < p->conns; i++) {
        fds[i] = connect_loopback(p, port);
        set_nonblocking(fds[i]);
        conns[i] = (struct conn){.buf = xmalloc(p->resp + SLACK), .open = 1};
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev)) die("epoll_ctl");
    }
    struct result r = {0};
    double c0 = cpu_now(), t0 = now();
    for (int i = 0; i < p->conns; i++) {
        conns[i].sent = now();
        stamp(req, p->size, tag(i, 0));
        put(fds[i], req, p->size);
    }
    while (done < total) {
        struct epoll_event evs[MAX_EVENTS];
        int n = wait_events(ep, evs, "rr client: no response for 30 s");
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            struct conn *c = &conns[i];
            int got = receive(p, fds[i], c, p->resp);
            if (got < 0) check_failed("rr client: the server closed a connection");
            if (!got) continue;
            double t = now();
            lat[done++] = (t - c->sent) * 1e6;
            check_msg(c->buf, p->resp, tag(i, c->seq), 1, "response");
            if (++c->seq == (uint64_t)p->count) {
                if (epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL)) die("epoll_ctl");
                continue;
            }
            c->sent = t;
            stamp(req, p->size, tag(i, c->seq));
            put(fds[i], req, p->size);
        }
    }
    r.secs = now() - t0;
    r.cpu_client = cpu_now() - c0;
    r.work = (double)total;
    r.p99_us = quantile(lat, total, 0.99);
    r.p50_us = quantile(lat, total, 0.50);
    for (int i = 0; i < p->conns; i++) {
        close(fds[i]);
        free(conns[i].buf);
    }
    close(ep);
    free(conns);
    free(fds);
    free(lat);
    free(req);
    return r;
}

/* ddp_epoll_server: epoll on DDP sockets (include/eta.h), both ends single-threaded.
 *
 *   ddp_epoll_server server NCONN      non-blocking DDP listening socket, accept4
 *                                      (SOCK_NONBLOCK), edge-triggered EPOLLIN|EPOLLOUT;
 *                                      echoes every message; prints its port, exits 0
 *                                      once NCONN connections have ended.
 *   ddp_epoll_server client PORT N K   one socket X: two epoll sets, EPOLLONESHOT
 *                                      re-armed by EPOLL_CTL_MOD, EPOLLET; then N
 *                                      non-blocking DDP clients (every other one added
 *                                      to epoll BEFORE it switched to DDP mode), each
 *                                      sending K messages one after the other and
 *                                      checking each echo. The server sees N + 1. */
#include "ddp_common.h"

#include <sys/epoll.h>
#include <time.h>

#define MAXMSG 8192
#define TAG 0xE7A0000000000000ull

struct out_msg {
    struct out_msg *next;
    size_t len;
    char data[];
};
struct conn {
    int fd, closed;
    size_t have;
    char buf[MAXMSG];
    struct out_msg *queue, **tail;
};

/* Echo queue: write what can be written, keep the rest for EPOLLOUT. */
static void flush_queue(struct conn *c) {
    while (c->queue) {
        struct out_msg *m = c->queue;
        ssize_t n = write(c->fd, m->data, m->len);
        if (n < 0 && errno == EAGAIN) return;
        if (n < 0) FAIL("server: write: %s (ETA_ERROR \"%s\")", strerror(errno), eta_error(c->fd));
        CHECK((size_t)n == m->len, "server: write of %zu -> %zd", m->len, n);
        c->queue = m->next;
        if (!c->queue) c->tail = &c->queue;
        free(m);
    }
}

/* Reads until EAGAIN; returns 1 at end of stream. */
static int drain(struct conn *c, long *echoed) {
    for (;;) {
        int flags;
        CHECK(c->have < MAXMSG, "server: message longer than %d", MAXMSG);
        ssize_t n = recv_part(c->fd, c->buf + c->have, MAXMSG - c->have, 0, &flags);
        if (n < 0 && errno == EAGAIN) return 0;
        if (n < 0) FAIL("server: recvmsg: %s (ETA_ERROR \"%s\")", strerror(errno), eta_error(c->fd));
        if (n == 0 && c->have == 0 && !(flags & MSG_EOR)) return 1;
        c->have += (size_t)n;
        if (!(flags & MSG_EOR)) continue;
        struct out_msg *m = malloc(sizeof *m + c->have);
        CHECK(m, "malloc");
        m->next = NULL;
        m->len = c->have;
        memcpy(m->data, c->buf, c->have);
        *c->tail = m;
        c->tail = &m->next;
        c->have = 0;
        (*echoed)++;
        flush_queue(c);
    }
}

static int server(int nconn) {
    more_fds();
    int port;
    int l = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    set_int(l, SOL_ETA, ETA_DDPMODE, 1);
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    SYS(bind(l, (struct sockaddr *)&a, sizeof a));
    SYS(listen(l, 512));
    SYS(getsockname(l, (struct sockaddr *)&a, &alen));
    port = ntohs(a.sin_port);
    int ep = SYS(epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0};
    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
    /* Connections are never freed: an event for a closed one is reported, not a crash. */
    struct conn *conns = calloc((size_t)nconn + 1, sizeof *conns);
    CHECK(conns, "calloc");
    announce_port(port);
    int accepted = 0, ended = 0;
    long echoed = 0;
    STEP("server: event loop");
    while (ended < nconn) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 60000);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "server: no event for 60 s (accepted %d, ended %d of %d)", accepted, ended, nconn);
        for (int i = 0; i < n; i++) {
            uint64_t id = evs[i].data.u64;
            if (id == 0) {
                int fd;
                while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    CHECK(accepted < nconn, "server: more than %d connections", nconn);
                    struct conn *c = &conns[++accepted];
                    c->fd = fd;
                    c->tail = &c->queue;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                              .data.u64 = (uint64_t)accepted};
                    SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev));
                }
                CHECK(errno == EAGAIN || errno == ECONNABORTED, "accept4: %s", strerror(errno));
                continue;
            }
            CHECK(id <= (uint64_t)accepted, "server: event with data %llu, never registered", (unsigned long long)id);
            struct conn *c = &conns[id];
            CHECK(!c->closed, "server: connection %llu: events %#x after close()", (unsigned long long)id,
                  evs[i].events);
            if (evs[i].events & EPOLLERR) {
                int err = get_int(c->fd, SOL_SOCKET, SO_ERROR);
                FAIL("server: EPOLLERR on a connection: SO_ERROR %s, ETA_ERROR \"%s\"", strerror(err), eta_error(c->fd));
            }
            if (evs[i].events & EPOLLOUT) flush_queue(c);
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
                if (drain(c, &echoed)) {
                    SYS(close(c->fd));
                    c->closed = 1;
                    ended++;
                }
            }
        }
    }
    printf("server: %d connections, %ld messages echoed\n", ended, echoed);
    return 0;
}

/* ---- client ---- */

static size_t msg_len(int i, int seq) { return 1 + (size_t)((i * 7919L + seq * 104729L) % 8000); }
static unsigned msg_seed(int i, int seq) { return (unsigned)(i * 1000 + seq); }

static int wait_one(int ep, int timeout, uint64_t *data) {
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, timeout);
    CHECK(n >= 0 && n <= 1, "epoll_wait -> %d (%s)", n, n < 0 ? strerror(errno) : "more than one event");
    if (n == 1) *data = ev[0].data.u64;
    return n;
}

static void one_socket_checks(int port) {
    STEP("two epoll sets");
    char buf[MAXMSG];
    int x = connect_ddp(port);
    int ep1 = SYS(epoll_create1(0)), ep2 = SYS(epoll_create1(0));
    struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = 111}, e2 = {.events = EPOLLIN, .data.u64 = 222};
    SYS(epoll_ctl(ep1, EPOLL_CTL_ADD, x, &e1));
    SYS(epoll_ctl(ep2, EPOLL_CTL_ADD, x, &e2));
    uint64_t d1 = 0, d2 = 0;
    CHECK(wait_one(ep1, 0, &d1) == 0, "level-triggered EPOLLIN with nothing to read");
    write_text(x, "two sets");
    CHECK(wait_one(ep1, 10000, &d1) == 1 && d1 == 111, "epoll set 1: no EPOLLIN with data 111 (got %llu)",
          (unsigned long long)d1);
    CHECK(wait_one(ep2, 10000, &d2) == 1 && d2 == 222, "epoll set 2: no EPOLLIN with data 222 (got %llu)",
          (unsigned long long)d2);
    CHECK(wait_one(ep1, 0, &d1) == 1, "level-triggered: EPOLLIN gone before the message was read");
    CHECK(read_message(x, buf, sizeof buf) == 8, "echo of \"two sets\"");
    CHECK(wait_one(ep1, 0, &d1) == 0 && wait_one(ep2, 0, &d2) == 0, "EPOLLIN still reported after the read");
    ok("one socket in two epoll sets: each reports EPOLLIN with its own data; level-triggered until read");

    STEP("EPOLLONESHOT");
    int ep3 = SYS(epoll_create1(0));
    struct epoll_event e3 = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 333};
    SYS(epoll_ctl(ep3, EPOLL_CTL_ADD, x, &e3));
    write_text(x, "first");
    CHECK(wait_one(ep3, 10000, &d1) == 1 && d1 == 333, "EPOLLONESHOT: no first event");
    CHECK(read_message(x, buf, sizeof buf) == 5, "echo of \"first\"");
    write_text(x, "second");
    struct pollfd p = {.fd = x, .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1, "poll: the second echo did not arrive");
    CHECK(wait_one(ep3, 100, &d1) == 0, "EPOLLONESHOT: an event after the first one without re-arming");
    e3.data.u64 = 334;
    SYS(epoll_ctl(ep3, EPOLL_CTL_MOD, x, &e3));
    CHECK(wait_one(ep3, 10000, &d1) == 1 && d1 == 334, "EPOLLONESHOT re-armed by EPOLL_CTL_MOD: no event with data 334");
    CHECK(read_message(x, buf, sizeof buf) == 6, "echo of \"second\"");
    ok("EPOLLONESHOT: one event, none until EPOLL_CTL_MOD re-arms it, then one with the new data");

    STEP("EPOLLET");
    int ep4 = SYS(epoll_create1(0));
    struct epoll_event e4 = {.events = EPOLLIN | EPOLLET, .data.u64 = 444};
    SYS(epoll_ctl(ep4, EPOLL_CTL_ADD, x, &e4));
    write_text(x, "edge");
    CHECK(wait_one(ep4, 10000, &d1) == 1 && d1 == 444, "EPOLLET: no event for a new message");
    CHECK(wait_one(ep4, 100, &d1) == 0, "EPOLLET: a second event without new data");
    CHECK(read_message(x, buf, sizeof buf) == 4, "echo of \"edge\"");
    write_text(x, "edge 2");
    CHECK(wait_one(ep4, 10000, &d1) == 1 && d1 == 444, "EPOLLET: no event for the next message");
    CHECK(read_message(x, buf, sizeof buf) == 6, "echo of \"edge 2\"");
    ok("EPOLLET: one event per new message, none repeated while it waits");
    close(ep1), close(ep2), close(ep3), close(ep4);
    SYS(close(x));
}

struct client {
    int fd, connected, seq, want_send, done;
    size_t have;
    char buf[MAXMSG];
};

static void send_next(struct client *c, int i) {
    static char out[MAXMSG];
    size_t len = msg_len(i, c->seq);
    fill(out, len, 0, msg_seed(i, c->seq));
    ssize_t n = write(c->fd, out, len);
    if (n < 0 && errno == EAGAIN) {
        c->want_send = 1;
        return;
    }
    if (n < 0) FAIL("client %d: write: %s (ETA_ERROR \"%s\")", i, strerror(errno), eta_error(c->fd));
    CHECK((size_t)n == len, "client %d: write of %zu -> %zd", i, len, n);
    c->want_send = 0;
}

static int clients(int port, int nclients, int k) {
    more_fds();
    one_socket_checks(port);
    STEP("many clients");
    struct client *cl = calloc((size_t)nclients, sizeof *cl);
    int ep = SYS(epoll_create1(0)), done = 0;
    for (int i = 0; i < nclients; i++) {
        int s = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = TAG | (uint64_t)i};
        if (i % 2) SYS(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev)); /* registered before the switch */
        set_int(s, SOL_ETA, ETA_DDPMODE, 1);
        if (i % 2 == 0) SYS(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
        struct sockaddr_in a = loopback(port);
        int r = connect(s, (struct sockaddr *)&a, sizeof a);
        CHECK(r == -1 && errno == EINPROGRESS, "client %d: non-blocking DDP connect -> %d (%s), wanted EINPROGRESS", i,
              r, strerror(errno));
        cl[i].fd = s;
    }
    time_t end = time(NULL) + 90;
    while (done < nclients) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
        if (time(NULL) > end) {
            int stuck = -1;
            for (int i = 0; i < nclients && stuck < 0; i++)
                if (!cl[i].done) stuck = i;
            FAIL("%d of %d clients done after 90 s; client %d (registered %s the switch) is at message %d, "
                 "connected %d", done, nclients, stuck, stuck % 2 ? "before" : "after", cl[stuck].seq,
                 cl[stuck].connected);
        }
        for (int e = 0; e < n; e++) {
            uint64_t data = evs[e].data.u64;
            CHECK((data & ~0xffffull) == TAG && (data & 0xffff) < (uint64_t)nclients,
                  "epoll event with data %#llx: not what was registered", (unsigned long long)data);
            int i = (int)(data & 0xffff);
            struct client *c = &cl[i];
            uint32_t got = evs[e].events;
            CHECK(!c->done, "client %d: events %#x after close()", i, got);
            if (got & (EPOLLERR | EPOLLHUP))
                FAIL("client %d (registered %s the switch): events %#x at message %d, SO_ERROR %s, ETA_ERROR \"%s\"",
                     i, i % 2 ? "before" : "after", got, c->seq, strerror(get_int(c->fd, SOL_SOCKET, SO_ERROR)),
                     eta_error(c->fd));
            if (!c->connected && (got & EPOLLOUT)) {
                int err = get_int(c->fd, SOL_SOCKET, SO_ERROR);
                CHECK(err == 0, "client %d: writable after connect with SO_ERROR %s", i, strerror(err));
                c->connected = 1;
                send_next(c, i);
            } else if (c->want_send && (got & EPOLLOUT)) {
                send_next(c, i);
            }
            while (got & EPOLLIN) {
                int flags;
                ssize_t r = recv_part(c->fd, c->buf + c->have, MAXMSG - c->have, 0, &flags);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) FAIL("client %d: recvmsg -> %zd: %s", i, r, r ? strerror(errno) : "end of stream");
                c->have += (size_t)r;
                if (!(flags & MSG_EOR)) continue;
                size_t len = msg_len(i, c->seq);
                CHECK(c->have == len, "client %d message %d: echo of %zu octets has %zu", i, c->seq, len, c->have);
                long at = mismatch(c->buf, len, 0, msg_seed(i, c->seq));
                CHECK(at < 0, "client %d message %d: echo differs at octet %ld", i, c->seq, at);
                c->have = 0;
                if (++c->seq == k) {
                    SYS(close(c->fd));
                    c->done = 1;
                    done++;
                    break;
                }
                send_next(c, i);
            }
        }
    }
    ok("%d non-blocking DDP clients (half registered with epoll before the switch, same data), "
       "%d messages each, every echo checked", nclients, k);
    free(cl);
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_epoll_server";
    watchdog(150);
    if (argc == 3 && strcmp(argv[1], "server") == 0) return server(atoi(argv[2]));
    if (argc == 5 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_epoll_server client";
        clients(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
        printf("ddp_epoll_server client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_epoll_server server NCONN | client PORT N K\n");
    return 2;
}

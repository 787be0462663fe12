/* ddp_signals: signals and time-outs in blocking calls on DDP sockets (include/eta.h).
 *
 *   ddp_signals server       the common echo server for 2 connections (prints port).
 *   ddp_signals client PORT  a blocking read interrupted by signals whose handler has
 *                            SA_RESTART goes on waiting and returns the message; with
 *                            a handler without SA_RESTART it fails with EINTR;
 *                            SO_RCVTIMEO (set on the DDP socket, or before connect)
 *                            ends a read with EAGAIN; SO_SNDTIMEO ends a write with
 *                            EAGAIN while the peer does not read; nothing is lost. */
#include "ddp_common.h"

#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t hits;
static void on_signal(int sig) {
    (void)sig;
    hits++;
}

static void handle(int sig, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(sig, &sa, NULL));
}

/* A thread that sends `sig` to `target` `times` times, `gap_ms` apart, then writes
 * `text` (if any) on `fd`: the echo server sends it back. */
struct pester {
    pthread_t target;
    int sig, times, gap_ms, fd;
    const char *text;
};

static void *pester_thread(void *arg) {
    struct pester *p = arg;
    for (int i = 0; i < p->times; i++) {
        usleep((useconds_t)p->gap_ms * 1000);
        pthread_kill(p->target, p->sig);
    }
    if (p->text) {
        usleep(20000);
        write_text(p->fd, p->text);
    }
    return NULL;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void set_timeout(int fd, int opt, long ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    SYS(setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv));
}

static void sa_restart(int s) {
    STEP("SA_RESTART");
    handle(SIGUSR1, SA_RESTART);
    hits = 0;
    struct pester p = {pthread_self(), SIGUSR1, 10, 30, s, "after ten signals"};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pester_thread, &p) == 0, "pthread_create");
    char buf[256];
    ssize_t n = read(s, buf, sizeof buf);
    int err = errno;
    pthread_join(t, NULL);
    CHECK(n == (ssize_t)strlen(p.text) && memcmp(buf, p.text, (size_t)n) == 0,
          "read -> %zd (%s), wanted the echo of \"%s\"", n, n < 0 ? strerror(err) : "", p.text);
    CHECK(hits == 10, "%d of 10 signals handled", (int)hits);
    ok("SA_RESTART: a blocking read went on waiting through 10 signals and returned the message");
}

static void no_restart(int s) {
    STEP("no SA_RESTART");
    handle(SIGUSR2, 0);
    hits = 0;
    struct pester p = {pthread_self(), SIGUSR2, 1, 100, s, NULL};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pester_thread, &p) == 0, "pthread_create");
    char buf[256];
    EXPECT_ERR(read(s, buf, sizeof buf), EINTR);
    pthread_join(t, NULL);
    CHECK(hits == 1, "%d signals handled, wanted 1", (int)hits);
    echo_once(s, 100, 7);
    ok("without SA_RESTART: the signal ends a blocking read with EINTR; the socket works on");
}

static void receive_timeout(int s) {
    STEP("SO_RCVTIMEO");
    set_timeout(s, SO_RCVTIMEO, 200);
    struct timeval tv;
    socklen_t len = sizeof tv;
    SYS(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, &len));
    CHECK(tv.tv_sec == 0 && tv.tv_usec == 200000, "SO_RCVTIMEO reads back as %ld.%06ld s", (long)tv.tv_sec,
          (long)tv.tv_usec);
    char buf[256];
    double t0 = now_ms();
    EXPECT_ERR(read(s, buf, sizeof buf), EAGAIN);
    double waited = now_ms() - t0;
    /* Not a speed check: a read that failed at once would not have waited at all. */
    CHECK(waited >= 150, "the read gave up after %.0f ms, its time-out is 200 ms", waited);
    echo_once(s, 1000, 8);
    set_timeout(s, SO_RCVTIMEO, 0);
    ok("SO_RCVTIMEO: a read with nothing to read waits its 200 ms, then EAGAIN; the socket works on");
}

static void send_timeout(int s) {
    STEP("SO_SNDTIMEO");
    set_timeout(s, SO_SNDTIMEO, 200);
    enum { LEN = 64 << 10, MAX = 20000 };
    static char out[LEN], in[LEN];
    int sent = 0;
    for (;;) {
        fill(out, LEN, 0, 100 + (unsigned)sent % 100);
        ssize_t r = write(s, out, LEN);
        if (r < 0) {
            CHECK(errno == EAGAIN, "write %d -> -1 errno %s, wanted EAGAIN", sent, strerror(errno));
            break;
        }
        CHECK(r == LEN, "write -> %zd", r);
        CHECK(++sent < MAX, "%d messages of 64 KiB written and the peer never pushed back", sent);
    }
    set_timeout(s, SO_SNDTIMEO, 0);
    /* The echo server catches up: every message comes back, whole and in order. */
    for (int i = 0; i < sent; i++) {
        size_t n = read_message(s, in, sizeof in);
        CHECK(n == LEN, "echo %d: %zu octets", i, n);
        long at = mismatch(in, n, 0, 100 + (unsigned)i % 100);
        CHECK(at < 0, "echo %d differs at octet %ld", i, at);
    }
    printf("SO_SNDTIMEO: %d messages of 64 KiB were taken before the write that timed out\n", sent);
    ok("SO_SNDTIMEO: a write the peer does not make room for within 200 ms -> EAGAIN; every message taken "
       "before came back");
}

static void timeout_before_connect(int port) {
    STEP("SO_RCVTIMEO before connect");
    int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    set_timeout(s, SO_RCVTIMEO, 100);
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    struct sockaddr_in a = loopback(port);
    SYS(connect(s, (struct sockaddr *)&a, sizeof a));
    char buf[64];
    EXPECT_ERR(read(s, buf, sizeof buf), EAGAIN);
    echo_once(s, 10, 9);
    close(s);
    ok("SO_RCVTIMEO set before connect holds after the switch to DDP mode");
}

int main(int argc, char **argv) {
    prog = "ddp_signals";
    watchdog(120);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return serve_echo(2);
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_signals client";
        int port = atoi(argv[2]);
        int s = connect_ddp(port);
        sa_restart(s);
        no_restart(s);
        receive_timeout(s);
        send_timeout(s);
        close(s);
        timeout_before_connect(port);
        printf("ddp_signals client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_signals server | client PORT\n");
    return 2;
}

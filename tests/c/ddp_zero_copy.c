/* ddp_zero_copy: the lent-buffer read and the direct-send write of DDP sockets
 * (include/eta.h, docs/architecture.md "Socket mode"). A blocking read that finds no
 * message lends its buffer to the engine; a blocking write of 128 KiB or more without
 * SO_SNDTIMEO goes out from the caller's buffer. Their semantics are those of the
 * copy path, which is what this program checks:
 *
 *   ddp_zero_copy server       accepts 2 connections; the first message of each
 *                              chooses its role: "echo" (echo every message) or
 *                              "sink N SIZE MS" (read nothing for MS ms, then read
 *                              N messages of SIZE octets, check them, answer
 *                              "sink ok N"). Prints its port.
 *   ddp_zero_copy client PORT  a message larger than the reader's buffer (read,
 *                              readv with several iovecs) comes in parts, MSG_EOR on
 *                              the last only, nothing lost; a message that fits is
 *                              returned whole; reads and large writes pestered by
 *                              signals (no SA_RESTART) lose and duplicate nothing, and
 *                              a large write returns its full length; a writer whose
 *                              peer stops reading waits, then every message arrives. */
#include "ddp_common.h"

#include <sys/uio.h>
#include <time.h>

static volatile sig_atomic_t hits;
static void on_signal(int sig) {
    (void)sig;
    hits++;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- server ---- */

static void sink(int fd, const char *cmd) {
    int n = 0, ms = 0;
    size_t size = 0;
    CHECK(sscanf(cmd, "sink %d %zu %d", &n, &size, &ms) == 3, "bad sink command \"%s\"", cmd);
    usleep((useconds_t)ms * 1000);
    char *buf = malloc(size + 1);
    CHECK(buf, "malloc");
    for (int i = 0; i < n; i++) {
        size_t len = read_message(fd, buf, size + 1);
        CHECK(len == size, "sink message %d: %zu octets, wanted %zu", i, len, size);
        long at = mismatch(buf, len, 0, 40 + (unsigned)i);
        CHECK(at < 0, "sink message %d differs at octet %ld", i, at);
    }
    char text[64];
    snprintf(text, sizeof text, "sink ok %d", n);
    write_text(fd, text);
    free(buf);
}

static void *serve_connection(void *arg) {
    int fd = (int)(intptr_t)arg;
    const char *cmd = read_text(fd);
    if (strcmp(cmd, "echo") == 0) return echo_connection(arg);
    if (strncmp(cmd, "sink ", 5) == 0) sink(fd, cmd);
    else FAIL("unknown role \"%s\"", cmd);
    close(fd);
    return NULL;
}

static int serve(int nconn) {
    int port;
    int l = listen_loopback(1, 16, &port);
    pthread_t t[8];
    STEP("server");
    announce_port(port);
    for (int i = 0; i < nconn; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) FAIL("accept: %s", strerror(errno));
        CHECK(pthread_create(&t[i], NULL, serve_connection, (void *)(intptr_t)c) == 0, "pthread_create");
    }
    for (int i = 0; i < nconn; i++) pthread_join(t[i], NULL);
    printf("zero-copy server: %d connections\n", nconn);
    close(l);
    return 0;
}

/* ---- client ---- */

/* Reads the message of `len` octets (pattern `seed`) with reads of at most `part`
 * octets: every read but the last returns exactly `part` octets without MSG_EOR. */
static void read_in_parts(int s, size_t len, size_t part, unsigned seed) {
    char *buf = malloc(part);
    CHECK(buf, "malloc");
    size_t got = 0;
    for (int i = 0;; i++) {
        int flags = 0;
        ssize_t n = recv_part(s, buf, part, 0, &flags);
        CHECK(n > 0, "part %d -> %zd (%s)", i, n, n < 0 ? strerror(errno) : "end of stream");
        size_t want = len - got < part ? len - got : part;
        CHECK((size_t)n == want, "part %d: %zd octets, wanted %zu", i, n, want);
        long at = mismatch(buf, (size_t)n, got, seed);
        CHECK(at < 0, "part %d differs at octet %ld", i, at);
        got += (size_t)n;
        if (flags & MSG_EOR) break;
        CHECK(got < len, "no MSG_EOR on the message's last octets");
    }
    CHECK(got == len, "MSG_EOR after %zu of %zu octets", got, len);
    free(buf);
}

static void larger_than_the_buffer(int s) {
    STEP("larger than the reader's buffer");
    enum { LEN = 1 << 20, PART = 100000 };
    static char out[LEN];
    fill(out, LEN, 0, 1);
    write_message(s, out, LEN);
    /* The read is (almost always) waiting when the echo arrives: it lends its
     * 100000 octets; the rest of the message comes by the next reads. */
    read_in_parts(s, LEN, PART, 1);
    /* A one-octet buffer, and the message after: nothing of either is lost. */
    fill(out, 3000, 0, 2);
    write_message(s, out, 3000);
    fill(out, 20, 0, 3);
    write_message(s, out, 20);
    read_in_parts(s, 3000, 1, 2);
    read_in_parts(s, 20, 64, 3);
    ok("a 1 MiB message read with a 100000-octet buffer comes in parts of 100000, MSG_EOR on the last, "
       "nothing lost");

    STEP("readv, several iovecs");
    enum { RLEN = 200000 };
    fill(out, RLEN, 0, 4);
    write_message(s, out, RLEN);
    static char a[7], b[1000], c[50000];
    size_t got = 0;
    int flags = 0;
    while (!(flags & MSG_EOR)) {
        struct iovec v[3] = {{a, sizeof a}, {b, sizeof b}, {c, sizeof c}};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = v;
        m.msg_iovlen = 3;
        ssize_t n = recvmsg(s, &m, 0);
        CHECK(n > 0, "recvmsg -> %zd", n);
        flags = m.msg_flags;
        size_t want = RLEN - got < 51007 ? RLEN - got : 51007;
        CHECK((size_t)n == want, "recvmsg: %zd octets, wanted %zu", n, want);
        size_t k = 0;
        struct iovec *iv = v;
        for (size_t left = (size_t)n; left > 0; iv++) {
            size_t t = left < iv->iov_len ? left : iv->iov_len;
            long at = mismatch(iv->iov_base, t, got + k, 4);
            CHECK(at < 0, "recvmsg: octet %zu differs", got + k + (size_t)at);
            k += t;
            left -= t;
        }
        got += (size_t)n;
        CHECK(!(flags & MSG_EOR) == (got < RLEN), "MSG_EOR after %zu of %d octets", got, RLEN);
    }
    ok("readv into 3 iovecs (7 + 1000 + 50000 octets) of a 200000-octet message: the iovecs filled in "
       "order, MSG_EOR on the last part");

    STEP("a message that fits");
    enum { FLEN = 512 << 10 };
    fill(out, FLEN, 0, 5);
    write_message(s, out, FLEN);
    static char in[FLEN + 100];
    int f = 0;
    ssize_t n = recv_part(s, in, sizeof in, 0, &f);
    CHECK(n == FLEN && (f & MSG_EOR), "read -> %zd flags %#x, wanted the whole %d-octet message", n, f, FLEN);
    CHECK(mismatch(in, FLEN, 0, 5) < 0, "the message differs");
    ok("a 512 KiB message read with a larger buffer comes whole, with MSG_EOR");
}

/* A thread that sends SIGUSR1 to `target` every `gap_us` until told to stop. */
struct pester {
    pthread_t target;
    int gap_us;
    volatile int stop;
};

static void *pester_thread(void *arg) {
    struct pester *p = arg;
    while (!p->stop) {
        usleep((useconds_t)p->gap_us);
        pthread_kill(p->target, SIGUSR1);
    }
    return NULL;
}

static void handle_usr1(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = 0; /* no SA_RESTART: a signal ends a blocking wait with EINTR */
    sigemptyset(&sa.sa_mask);
    SYS(sigaction(SIGUSR1, &sa, NULL));
}

static void signals_while_lent(int s) {
    STEP("signals while the buffer is lent");
    handle_usr1();
    enum { LEN = 3 << 19, ROUNDS = 8 }; /* the echo server takes up to 2 MiB */
    char *out = malloc(LEN), *in = malloc(LEN);
    CHECK(out && in, "malloc");
    struct pester p = {pthread_self(), 300, 0};
    pthread_t t;
    hits = 0;
    CHECK(pthread_create(&t, NULL, pester_thread, &p) == 0, "pthread_create");
    long eintr_reads = 0, eintr_writes = 0;
    for (int r = 0; r < ROUNDS; r++) {
        fill(out, LEN, 0, 10 + (unsigned)r);
        ssize_t n;
        while ((n = write(s, out, LEN)) < 0 && errno == EINTR) eintr_writes++;
        CHECK(n == LEN, "write of %d octets -> %zd (%s)", LEN, n, n < 0 ? strerror(errno) : "");
        /* Reads with a buffer a quarter of the message: interrupted ones return
         * EINTR having taken nothing; the others continue the message in order. */
        size_t got = 0;
        for (;;) {
            struct iovec iov = {in + got, LEN / 4 < LEN - got ? LEN / 4 : LEN - got};
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = &iov;
            m.msg_iovlen = 1;
            ssize_t k = recvmsg(s, &m, 0);
            if (k < 0 && errno == EINTR) {
                eintr_reads++;
                continue;
            }
            CHECK(k > 0, "recvmsg -> %zd (%s)", k, k < 0 ? strerror(errno) : "end of stream");
            got += (size_t)k;
            if (m.msg_flags & MSG_EOR) break;
            CHECK(got < LEN, "no MSG_EOR after %zu octets", got);
        }
        CHECK(got == LEN, "round %d: %zu octets came back, wanted %d", r, got, LEN);
        long at = mismatch(in, LEN, 0, 10 + (unsigned)r);
        CHECK(at < 0, "round %d: the echo differs at octet %ld", r, at);
    }
    p.stop = 1;
    pthread_join(t, NULL);
    printf("signals: %d handled, %ld reads and %ld writes ended with EINTR\n", (int)hits, eintr_reads,
           eintr_writes);
    CHECK(hits > 0, "no signal arrived");
    echo_once(s, 100, 7);
    free(out);
    free(in);
    ok("1.5 MiB messages written and read back under a signal every 300 us (no SA_RESTART): every write "
       "took the whole message, interrupted reads took nothing, nothing lost or repeated");
}

static void peer_stops_reading(int port) {
    STEP("a writer whose peer stops reading");
    handle_usr1();
    enum { N = 32, SIZE = 1 << 20, PAUSE_MS = 800 };
    int s = connect_ddp(port);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "sink %d %d %d", N, SIZE, PAUSE_MS);
    write_text(s, cmd);
    char *out = malloc(SIZE);
    CHECK(out, "malloc");
    struct pester p = {pthread_self(), 5000, 0};
    pthread_t t;
    hits = 0;
    CHECK(pthread_create(&t, NULL, pester_thread, &p) == 0, "pthread_create");
    double t0 = now_ms(), longest = 0;
    for (int i = 0; i < N; i++) {
        fill(out, SIZE, 0, 40 + (unsigned)i);
        double w0 = now_ms();
        ssize_t n;
        while ((n = write(s, out, SIZE)) < 0 && errno == EINTR) {
        }
        CHECK(n == SIZE, "write %d -> %zd (%s)", i, n, n < 0 ? strerror(errno) : "");
        /* The buffer is the caller's again: scribbling on it changes nothing sent. */
        memset(out, 0xEE, SIZE);
        if (now_ms() - w0 > longest) longest = now_ms() - w0;
    }
    double took = now_ms() - t0;
    p.stop = 1;
    pthread_join(t, NULL);
    char want[64];
    snprintf(want, sizeof want, "sink ok %d", N);
    const char *got = read_text(s);
    CHECK(strcmp(got, want) == 0, "the peer answered \"%s\", wanted \"%s\"", got, want);
    printf("peer stopped reading for %d ms: %d writes of 1 MiB took %.0f ms, the longest %.0f ms; %d signals\n",
           PAUSE_MS, N, took, longest, (int)hits);
    CHECK(took >= PAUSE_MS / 2, "%d MiB were taken in %.0f ms while the peer did not read", N, took);
    close(s);
    free(out);
    ok("a writer whose peer stops reading waits (signals do not cut a write short), then every message "
       "arrives whole and in order");
}

int main(int argc, char **argv) {
    prog = "ddp_zero_copy";
    watchdog(150);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return serve(2);
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_zero_copy client";
        int port = atoi(argv[2]);
        int s = connect_ddp(port);
        write_text(s, "echo");
        larger_than_the_buffer(s);
        signals_while_lent(s);
        close(s);
        peer_stops_reading(port);
        printf("ddp_zero_copy client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_zero_copy server | client PORT\n");
    return 2;
}

/* ddp_threads: one DDP socket shared by threads (include/eta.h).
 *
 *   ddp_threads server          prints its port; one connection: checks every message
 *                               (whole, untorn, in order per writer thread) and echoes
 *                               it; on "end" sends "verdict ok N" and one "stop" per
 *                               client reader; exits 0.
 *   ddp_threads client PORT M   8 writer threads write M messages each (16..20015
 *                               octets, tagged thread + sequence) on one socket while 4
 *                               reader threads read the echoes from the same socket:
 *                               every read must be one whole message. */
#include "ddp_common.h"

#define WRITERS 8
#define READERS 4
#define MAXLEN 20016
#define MAGIC 0x45544131u

struct hdr {
    uint32_t magic, thread, seq, len;
};

static size_t msg_len(unsigned t, unsigned seq) { return 16 + (t * 7919u + seq * 104729u) % 20000u; }
static unsigned msg_seed(unsigned t, unsigned seq) { return t * 100000u + seq; }

/* "" if buf[0..n) is message (thread, seq) whole, else what is wrong. */
static const char *bad_message(const char *buf, size_t n, struct hdr *h) {
    static __thread char why[160];
    if (n < sizeof *h) return "shorter than its header";
    memcpy(h, buf, sizeof *h);
    if (h->magic != MAGIC || h->thread >= WRITERS) return "bad header (torn or interleaved message)";
    if (h->len != n || n != msg_len(h->thread, h->seq)) {
        snprintf(why, sizeof why, "thread %u message %u: %zu octets, header says %u", h->thread, h->seq, n, h->len);
        return why;
    }
    long at = mismatch(buf + sizeof *h, n - sizeof *h, 0, msg_seed(h->thread, h->seq));
    if (at >= 0) {
        snprintf(why, sizeof why, "thread %u message %u: octet %ld differs (interleaved?)", h->thread, h->seq, at);
        return why;
    }
    return "";
}

static int server(void) {
    int port;
    int l = listen_loopback(1, 4, &port);
    announce_port(port);
    int s = SYS(accept(l, NULL, NULL));
    static char buf[MAXLEN + 64];
    unsigned next[WRITERS] = {0};
    long total = 0;
    STEP("server: receive");
    for (;;) {
        size_t n = read_message(s, buf, sizeof buf);
        CHECK(n > 0, "the client closed before \"end\"");
        if (n == 3 && memcmp(buf, "end", 3) == 0) break;
        struct hdr h;
        const char *why = bad_message(buf, n, &h);
        CHECK(!*why, "server: %s", why);
        CHECK(h.seq == next[h.thread], "server: thread %u sent message %u after %u (order per thread lost)", h.thread,
              h.seq, next[h.thread]);
        next[h.thread]++;
        total++;
        write_message(s, buf, n);
    }
    char verdict[64];
    snprintf(verdict, sizeof verdict, "verdict ok %ld", total);
    write_text(s, verdict);
    for (int i = 0; i < READERS; i++) write_text(s, "stop");
    CHECK(read_message(s, buf, sizeof buf) == 0, "no end of stream after \"end\"");
    printf("server: %ld messages, whole and in order per thread\n", total);
    return 0;
}

static int sock, per_thread;
static long received[WRITERS];
static char verdict[64];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *writer(void *arg) {
    unsigned t = (unsigned)(uintptr_t)arg;
    char *buf = malloc(MAXLEN);
    CHECK(buf, "malloc");
    for (unsigned seq = 0; seq < (unsigned)per_thread; seq++) {
        struct hdr h = {MAGIC, t, seq, (uint32_t)msg_len(t, seq)};
        memcpy(buf, &h, sizeof h);
        fill(buf + sizeof h, h.len - sizeof h, 0, msg_seed(t, seq));
        /* Alternate write and sendmsg with two pieces: each call is one message. */
        if (seq % 2 == 0) {
            write_message(sock, buf, h.len);
        } else {
            struct iovec iov[2] = {{buf, 100}, {buf + 100, h.len - 100}};
            if (h.len < 100) iov[0].iov_len = h.len, iov[1].iov_len = 0;
            struct msghdr m;
            memset(&m, 0, sizeof m);
            m.msg_iov = iov;
            m.msg_iovlen = 2;
            ssize_t n = sendmsg(sock, &m, 0);
            CHECK(n == (ssize_t)h.len, "thread %u: sendmsg of %u -> %zd (%s)", t, h.len, n, strerror(errno));
        }
    }
    free(buf);
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char *buf = malloc(MAXLEN + 64);
    CHECK(buf, "malloc");
    for (;;) {
        ssize_t n = read(sock, buf, MAXLEN + 64);
        if (n < 0 && errno == EINTR) continue;
        CHECK(n > 0, "reader: read -> %zd (%s)", n, n ? strerror(errno) : "end of stream");
        if (n == 4 && memcmp(buf, "stop", 4) == 0) break;
        if (n > 8 && memcmp(buf, "verdict ", 8) == 0) {
            pthread_mutex_lock(&lock);
            snprintf(verdict, sizeof verdict, "%.*s", (int)n, buf);
            pthread_mutex_unlock(&lock);
            continue;
        }
        struct hdr h;
        const char *why = bad_message(buf, (size_t)n, &h);
        CHECK(!*why, "reader: one read() is not one whole echoed message: %s", why);
        pthread_mutex_lock(&lock);
        received[h.thread]++;
        pthread_mutex_unlock(&lock);
    }
    free(buf);
    return NULL;
}

static int client(int port, int m) {
    per_thread = m;
    sock = connect_ddp(port);
    pthread_t w[WRITERS], r[READERS];
    STEP("client: threads");
    for (int i = 0; i < READERS; i++) CHECK(pthread_create(&r[i], NULL, reader, NULL) == 0, "pthread_create");
    for (int i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&w[i], NULL, writer, (void *)(uintptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i], NULL);
    write_text(sock, "end");
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    char want[64];
    snprintf(want, sizeof want, "verdict ok %d", WRITERS * m);
    CHECK(strcmp(verdict, want) == 0, "server's verdict \"%s\", wanted \"%s\"", verdict, want);
    ok("server: %d messages from %d writer threads arrived whole and in order per thread", WRITERS * m, WRITERS);
    for (int t = 0; t < WRITERS; t++)
        CHECK(received[t] == m, "thread %d: %ld echoes read, wanted %d", t, received[t], m);
    ok("%d reader threads: every read() returned one whole message; all %d echoes accounted for", READERS,
       WRITERS * m);
    SYS(close(sock));
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_threads";
    watchdog(120);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return server();
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_threads client";
        client(atoi(argv[2]), atoi(argv[3]));
        printf("ddp_threads client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_threads server | client PORT M\n");
    return 2;
}

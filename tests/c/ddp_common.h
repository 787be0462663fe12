/* ddp_common.h: what the ddp_*.c test programs share. Header-only (static functions),
 * so each program is one translation unit: cc -I include ddp_x.c -leta.
 *
 * Conventions: every check that passes prints "ok: <what>" on stdout (a forked child:
 * "child ok: <what>"), and `checks` counts them; the first one
 * that fails prints "<prog>: FAIL at line N (<step>): <what>" on stderr and exits 1.
 * A watchdog (alarm) ends a program that hangs with exit status 3, naming the step. */
#ifndef DDP_COMMON_H
#define DDP_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "eta.h"

/* Helpers a program does not use are not warnings. */
#define HELPER static __attribute__((unused))

static const char *prog = "ddp";
static const char *volatile step = "start";
static int checks;
static const char *ok_tag = "ok"; /* a forked child says "child ok" */

/* Names the phase a program is in (shown on failure and on time-out). */
#define STEP(s) (step = (s))

__attribute__((format(printf, 2, 3), noreturn)) HELPER void fail_at(int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: FAIL at line %d (%s): ", prog, line, step);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
#define FAIL(...) fail_at(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) FAIL(__VA_ARGS__);                                                    \
    } while (0)
/* A call that must not return -1; evaluates to its result. */
#define SYS(call)                                                                          \
    ({                                                                                     \
        long r_ = (long)(call);                                                            \
        if (r_ == -1) FAIL("%s -> -1 errno %s", #call, strerror(errno));                  \
        r_;                                                                                \
    })

__attribute__((format(printf, 1, 2))) HELPER void ok(const char *fmt, ...) {
    va_list ap;
    printf("%s: ", ok_tag);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    checks++;
}

HELPER void expect_errno_at(int line, const char *what, long r, int err, long fail_value, int want) {
    if (r != fail_value || err != want)
        fail_at(line, "%s -> %ld errno %s, wanted %ld errno %s", what, r,
                r == fail_value ? strerror(err) : "(none)", fail_value, strerror(want));
    ok("%s -> %ld errno %s", what, r, strerrorname_np(want));
}
/* `call` must fail with -1 and errno `want`. */
#define EXPECT_ERR(call, want)                                                             \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(call);                                                            \
        expect_errno_at(__LINE__, #call, r_, errno, -1, (want));                           \
    } while (0)
/* eta_reg_mr(...) must fail with 0 and errno `want`. */
#define EXPECT_STAG_ERR(call, want)                                                        \
    do {                                                                                   \
        errno = 0;                                                                         \
        long r_ = (long)(call);                                                            \
        expect_errno_at(__LINE__, #call, r_, errno, 0, (want));                            \
    } while (0)

HELPER void on_alarm(int sig) {
    (void)sig;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "%s: FAIL: time-out during step \"%s\"\n", prog, step);
    if (n > 0) (void)!write(2, msg, (size_t)n);
    _exit(3);
}

/* Ends the program (exit 3) if it is still running after `seconds`. */
HELPER void watchdog(unsigned seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

/* Raises the open-file limit to the hard limit (for programs with many sockets). */
HELPER void more_fds(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* ---- patterns: byte i of pattern `seed` (so any sub-range can be checked) ---- */

HELPER uint8_t pat(size_t i, unsigned seed) {
    return (uint8_t)((i * 131u) ^ (i >> 9) ^ (seed * 0x9e3779b1u >> 7) ^ seed);
}
HELPER void fill(void *buf, size_t len, size_t start, unsigned seed) {
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) p[i] = pat(start + i, seed);
}
/* Index of the first octet that differs from the pattern, or -1. */
HELPER long mismatch(const void *buf, size_t len, size_t start, unsigned seed) {
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != pat(start + i, seed)) return (long)i;
    return -1;
}
/* Index of the first octet that is not `c`, or -1. */
HELPER long not_all(const void *buf, size_t len, uint8_t c) {
    const uint8_t *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != c) return (long)i;
    return -1;
}

/* ---- sockets ---- */

HELPER struct sockaddr_in loopback(int port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

HELPER void set_int(int fd, int level, int opt, int v) {
    if (setsockopt(fd, level, opt, &v, sizeof v) != 0)
        FAIL("setsockopt(level %d, option %d, %d): %s", level, opt, v, strerror(errno));
}
HELPER int get_int(int fd, int level, int opt) {
    int v = -12345;
    socklen_t len = sizeof v;
    if (getsockopt(fd, level, opt, &v, &len) != 0)
        FAIL("getsockopt(level %d, option %d): %s", level, opt, strerror(errno));
    CHECK(len == sizeof v, "getsockopt(level %d, option %d): length %u", level, opt, (unsigned)len);
    return v;
}
/* getsockopt(SOL_ETA, ETA_ERROR) as text. */
HELPER const char *eta_error(int fd) {
    static char text[1024];
    socklen_t len = sizeof text - 1;
    memset(text, 0, sizeof text);
    if (getsockopt(fd, SOL_ETA, ETA_ERROR, text, &len) != 0)
        snprintf(text, sizeof text, "(getsockopt ETA_ERROR: %s)", strerror(errno));
    return text;
}

/* A TCP socket listening on 127.0.0.1 (port chosen by the kernel), in DDP mode
 * (switched before listen()) if `ddp`. Stores the port in *port. */
HELPER int listen_loopback(int ddp, int backlog, int *port) {
    int l = SYS(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    if (ddp) set_int(l, SOL_ETA, ETA_DDPMODE, 1);
    SYS(bind(l, (struct sockaddr *)&a, sizeof a));
    SYS(listen(l, backlog));
    SYS(getsockname(l, (struct sockaddr *)&a, &alen));
    *port = ntohs(a.sin_port);
    return l;
}

/* Prints the port as the first line of stdout (the test driver waits for it). */
HELPER void announce_port(int port) {
    printf("%d\n", port);
    fflush(stdout);
}

/* A blocking DDP socket connected to 127.0.0.1:port (MPA exchange done). */
HELPER int connect_ddp(int port) {
    int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = loopback(port);
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("DDP connect to port %d: %s (ETA_ERROR \"%s\")", port, strerror(errno), eta_error(s));
    return s;
}

/* recvmsg into buf[0..len): returns what recvmsg returned, msg_flags in *flags. */
HELPER ssize_t recv_part(int fd, void *buf, size_t len, int flags, int *msg_flags) {
    struct iovec iov = {buf, len};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    ssize_t n;
    do n = recvmsg(fd, &m, flags);
    while (n < 0 && errno == EINTR);
    *msg_flags = m.msg_flags;
    return n;
}

/* Reads one whole message (parts until MSG_EOR) into buf[0..cap). Returns its length,
 * 0 at end of stream; fails the program on an error or a message longer than cap. */
HELPER size_t read_message(int fd, void *buf, size_t cap) {
    size_t got = 0;
    for (;;) {
        int flags = 0;
        CHECK(got < cap || cap == 0, "message longer than %zu octets", cap);
        ssize_t n = recv_part(fd, (char *)buf + got, cap - got, 0, &flags);
        if (n < 0) FAIL("recvmsg on fd %d: %s (ETA_ERROR \"%s\")", fd, strerror(errno), eta_error(fd));
        if (n == 0 && got == 0 && !(flags & MSG_EOR)) return 0;
        CHECK(n > 0 || (flags & MSG_EOR), "recvmsg -> 0 in the middle of a message");
        got += (size_t)n;
        if (flags & MSG_EOR) return got;
    }
}

/* One write() = one message: the whole length must be taken. */
HELPER void write_message(int fd, const void *buf, size_t len) {
    ssize_t n;
    do n = write(fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n < 0) FAIL("write(%zu octets) on fd %d: %s (ETA_ERROR \"%s\")", len, fd, strerror(errno), eta_error(fd));
    CHECK((size_t)n == len, "write(%zu octets) -> %zd: a message must be taken whole", len, n);
}
HELPER void write_text(int fd, const char *text) { write_message(fd, text, strlen(text)); }

/* Reads a message that must be text (returned NUL-terminated in a static buffer). */
HELPER const char *read_text(int fd) {
    static char text[4096];
    size_t n = read_message(fd, text, sizeof text - 1);
    text[n] = 0;
    return text;
}

/* ---- completions ---- */

HELPER const char *opname(int op) {
    switch (op) {
    case ETA_WC_SEND: return "SEND";
    case ETA_WC_RECV: return "RECV";
    case ETA_WC_RDMA_WRITE: return "RDMA_WRITE";
    case ETA_WC_RDMA_READ: return "RDMA_READ";
    default: return "?";
    }
}

#ifndef ETA_NO_LIB /* built without libeta.so (ddp_errors noshim): no eta_* calls */
/* Waits (10 s) for the next completion on `fd` (a DDP socket or a completion queue)
 * and checks its work request id, opcode and status. */
HELPER struct eta_wc expect_wc(int fd, uint64_t wr_id, int opcode, int status) {
    struct eta_wc wc;
    memset(&wc, 0, sizeof wc);
    int n = eta_wait(fd, &wc, 1, 10000);
    if (n < 0) FAIL("eta_wait(fd %d) for wr_id %llu: %s", fd, (unsigned long long)wr_id, strerror(errno));
    CHECK(n == 1, "eta_wait(fd %d): no completion for wr_id %llu within 10 s", fd, (unsigned long long)wr_id);
    CHECK(wc.wr_id == wr_id && wc.opcode == opcode && wc.status == status,
          "completion: wr_id %llu opcode %s status %s; wanted wr_id %llu opcode %s status %s",
          (unsigned long long)wc.wr_id, opname(wc.opcode), strerror(wc.status), (unsigned long long)wr_id,
          opname(opcode), strerror(status));
    return wc;
}
#endif

/* ---- the echo server role (ddp_nonblock, ddp_fork_exec, ddp_errors) ---- */

static long echoed_messages __attribute__((unused));
static pthread_mutex_t echo_lock __attribute__((unused)) = PTHREAD_MUTEX_INITIALIZER;

HELPER void *echo_connection(void *arg) {
    int fd = (int)(intptr_t)arg;
    size_t cap = 2u << 20;
    char *buf = malloc(cap);
    long n = 0;
    CHECK(buf, "malloc");
    CHECK(get_int(fd, SOL_ETA, ETA_DDPMODE) == 1, "accepted socket is not in DDP mode");
    for (size_t len; (len = read_message(fd, buf, cap)) > 0; n++) write_message(fd, buf, len);
    close(fd);
    free(buf);
    pthread_mutex_lock(&echo_lock);
    echoed_messages += n;
    pthread_mutex_unlock(&echo_lock);
    return NULL;
}

/* Listens (DDP), prints the port, accepts `nconn` connections (a thread each) that
 * echo every message until the peer closes, then prints a summary and returns 0. */
HELPER int serve_echo(int nconn) {
    int port;
    int l = listen_loopback(1, 64, &port);
    pthread_t *t = calloc((size_t)nconn, sizeof *t);
    STEP("echo server");
    announce_port(port);
    for (int i = 0; i < nconn; i++) {
        int c = accept(l, NULL, NULL);
        if (c < 0) FAIL("accept: %s", strerror(errno));
        CHECK(pthread_create(&t[i], NULL, echo_connection, (void *)(intptr_t)c) == 0, "pthread_create");
    }
    for (int i = 0; i < nconn; i++) pthread_join(t[i], NULL);
    printf("echo server: %d connections, %ld messages echoed\n", nconn, echoed_messages);
    free(t);
    close(l);
    return 0;
}

/* Sends a message of `len` octets (pattern `seed`) and checks its echo. */
HELPER void echo_once(int fd, size_t len, unsigned seed) {
    static char out[1 << 16], in[1 << 16];
    CHECK(len <= sizeof out, "echo_once: %zu octets is too long", len);
    fill(out, len, 0, seed);
    write_message(fd, out, len);
    size_t n = read_message(fd, in, sizeof in);
    CHECK(n == len, "echo of %zu octets came back with %zu", len, n);
    long at = mismatch(in, n, 0, seed);
    CHECK(at < 0, "echo of %zu octets differs at octet %ld", len, at);
}

#endif /* DDP_COMMON_H */

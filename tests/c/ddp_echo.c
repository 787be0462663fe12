/* ddp_echo: RDMAP Send messages through read/write on DDP sockets (include/eta.h).
 *
 *   ddp_echo server NCONN     listening socket: ETA_CRC 0 and ETA_PRIVATE_DATA set, DDP
 *                             mode switched on after listen(); prints the port, serves
 *                             NCONN connections one after the other, exits 0.
 *   ddp_echo client PORT MODE MODE full: message sizes, boundaries, short reads and
 *                             MSG_EOR, MSG_PEEK, MSG_WAITALL, writev/readv, sendmsg,
 *                             FIONREAD, dup, negotiated options, graceful close;
 *                             crc0: ETA_CRC 0 is negotiated, the server closes: read 0,
 *                             then write EPIPE; rev1: ETA_MPA_REV 1 is negotiated.
 *
 * Per connection the server first sends "ddp=D crc=C rev=R pd=<peer's private data>"
 * (its own view; with MPA revision 1 only after the client's "hello", as the
 * Responder may not send first there), then echoes every message, except "noecho..." messages (counted)
 * and "close" (the server closes the connection). */
#include "ddp_common.h"

#include <sys/ioctl.h>

#define SERVER_PD "hello from the server"
#define CLIENT_PD "hi server, this is the client"
#define BIG (1u << 20)

static char *out, *in;

static int server(int nconn) {
    int port;
    int l = listen_loopback(0, 16, &port);
    set_int(l, SOL_ETA, ETA_CRC, 0);
    SYS(setsockopt(l, SOL_ETA, ETA_PRIVATE_DATA, SERVER_PD, strlen(SERVER_PD)));
    set_int(l, SOL_ETA, ETA_DDPMODE, 1); /* after listen(): allowed by eta.h */
    CHECK(get_int(l, SOL_ETA, ETA_DDPMODE) == 1, "listening socket: ETA_DDPMODE is not 1");
    announce_port(port);
    for (int c = 1; c <= nconn; c++) {
        STEP("server: accept");
        int s = accept(l, NULL, NULL);
        if (s < 0) FAIL("accept: %s", strerror(errno));
        CHECK(get_int(s, SOL_ETA, ETA_DDPMODE) == 1, "accepted socket: ETA_DDPMODE is not 1");
        char pd[600];
        socklen_t pdlen = sizeof pd;
        SYS(getsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, &pdlen));
        /* MPA revision 1 has no peer-to-peer mode: the Responder sends nothing before
         * the Initiator's first FPDU (RFC 5044), so a rev 1 client speaks first. */
        if (get_int(s, SOL_ETA, ETA_MPA_REV) == 1) {
            const char *hello = read_text(s);
            CHECK(strcmp(hello, "hello") == 0, "rev 1 client's first message \"%s\", wanted \"hello\"", hello);
        }
        char info[1024];
        snprintf(info, sizeof info, "ddp=%d crc=%d rev=%d pd=%.*s", get_int(s, SOL_ETA, ETA_DDPMODE),
                 get_int(s, SOL_ETA, ETA_CRC), get_int(s, SOL_ETA, ETA_MPA_REV), (int)pdlen, pd);
        write_text(s, info);
        STEP("server: echo");
        int echoed = 0, unechoed = 0;
        size_t n;
        while ((n = read_message(s, in, BIG)) > 0) {
            if (n == 5 && memcmp(in, "close", 5) == 0) break;
            if (n >= 6 && memcmp(in, "noecho", 6) == 0) {
                unechoed++;
                continue;
            }
            write_message(s, in, n);
            echoed++;
        }
        printf("server: connection %d: %d echoed, %d not echoed, then %s\n", c, echoed, unechoed,
               n ? "closed by the server" : "end of stream");
        fflush(stdout);
        SYS(close(s));
    }
    return 0;
}

/* read() must return one whole message of `len` octets with pattern `seed`. */
static void expect_read(int s, size_t len, unsigned seed) {
    ssize_t n = read(s, in, BIG);
    if (n < 0) FAIL("read: %s", strerror(errno));
    CHECK((size_t)n == len, "read -> %zd octets, wanted the whole message of %zu", n, len);
    long at = mismatch(in, len, 0, seed);
    CHECK(at < 0, "message of %zu octets differs at octet %ld", len, at);
}

static void check_info(int s, int crc, int rev, const char *pd) {
    char want[1024];
    snprintf(want, sizeof want, "ddp=1 crc=%d rev=%d pd=%s", crc, rev, pd);
    const char *got = read_text(s);
    CHECK(strcmp(got, want) == 0, "server's view \"%s\", wanted \"%s\"", got, want);
    ok("server's view of the connection: %s", got);
}

static void messages_and_boundaries(int s) {
    STEP("sizes");
    size_t sizes[] = {1, 100, 65536, BIG};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        fill(out, sizes[i], 0, (unsigned)i + 1);
        write_message(s, out, sizes[i]);
        expect_read(s, sizes[i], (unsigned)i + 1);
        ok("%zu octets: one write, one read returns the whole message", sizes[i]);
    }

    STEP("two writes are two reads");
    memset(out, 'a', 10);
    memset(out + 10, 'b', 20);
    write_message(s, out, 10);
    write_message(s, out + 10, 20);
    ssize_t n1 = read(s, in, BIG);
    CHECK(n1 == 10 && not_all(in, 10, 'a') < 0, "first read -> %zd octets, wanted the 10 of message 1", n1);
    ssize_t n2 = read(s, in, BIG);
    CHECK(n2 == 20 && not_all(in, 20, 'b') < 0, "second read -> %zd octets, wanted the 20 of message 2", n2);
    ok("two writes (10, 20 octets) are two reads (10, 20)");

    STEP("short reads");
    fill(out, 100, 0, 7);
    write_message(s, out, 100);
    int f1, f2, f3;
    ssize_t a = recv_part(s, in, 30, 0, &f1);
    ssize_t b = recv_part(s, in + 30, 30, 0, &f2);
    ssize_t c = recv_part(s, in + 60, 100, 0, &f3);
    CHECK(a == 30 && b == 30 && c == 40, "recvmsg 30/30/100 of a 100-octet message -> %zd/%zd/%zd", a, b, c);
    CHECK(!(f1 & MSG_EOR) && !(f2 & MSG_EOR) && (f3 & MSG_EOR),
          "MSG_EOR on the parts: %d %d %d, wanted only on the last", !!(f1 & MSG_EOR), !!(f2 & MSG_EOR),
          !!(f3 & MSG_EOR));
    CHECK(mismatch(in, 100, 0, 7) < 0, "the three parts do not reassemble the message");
    write_message(s, "after", 5);
    CHECK(read(s, in, BIG) == 5 && memcmp(in, "after", 5) == 0, "the next message is not separate");
    ok("short reads: 30 + 30 + 40 octets, MSG_EOR only on the last part, nothing lost");

    STEP("MSG_PEEK");
    fill(out, 50, 0, 9);
    write_message(s, out, 50);
    ssize_t p1 = recv(s, in, 10, MSG_PEEK);
    ssize_t p2 = recv(s, in, 100, MSG_PEEK);
    CHECK(p1 == 10 && p2 == 50, "recv(MSG_PEEK) 10 and 100 -> %zd and %zd, wanted 10 and 50", p1, p2);
    memset(in, 0, 100);
    ssize_t p3 = recv(s, in, 100, 0);
    CHECK(p3 == 50 && mismatch(in, 50, 0, 9) < 0, "recv after MSG_PEEK -> %zd, wanted the message (50)", p3);
    ok("MSG_PEEK does not consume: peek 10, peek 50, then recv 50");

    STEP("MSG_WAITALL");
    fill(out, BIG, 0, 11);
    write_message(s, out, BIG);
    int w1, w2;
    ssize_t x = recv_part(s, in, 600000, MSG_WAITALL, &w1);
    ssize_t y = recv_part(s, in + 600000, BIG, MSG_WAITALL, &w2);
    CHECK(x == 600000 && !(w1 & MSG_EOR), "MSG_WAITALL 600000 of 1 MiB -> %zd (EOR %d)", x, !!(w1 & MSG_EOR));
    CHECK(y == (ssize_t)BIG - 600000 && (w2 & MSG_EOR), "MSG_WAITALL 1 MiB for the rest -> %zd (EOR %d)", y,
          !!(w2 & MSG_EOR));
    CHECK(mismatch(in, BIG, 0, 11) < 0, "MSG_WAITALL parts differ from the message");
    fill(out, 100, 0, 12);
    write_message(s, out, 100);
    ssize_t z = recv(s, in, 1000, MSG_WAITALL);
    CHECK(z == 100, "MSG_WAITALL 1000 for a 100-octet message -> %zd (must stop at the end of the message)", z);
    ok("MSG_WAITALL fills the buffer (600000 + 448576) or stops at the end of a message (100 of 1000)");

    STEP("writev/readv/sendmsg");
    fill(out, 4000, 0, 13);
    struct iovec wv[3] = {{out, 1000}, {out + 1000, 0}, {out + 1000, 3000}};
    CHECK(writev(s, wv, 3) == 4000, "writev of 1000 + 0 + 3000 octets: %s", strerror(errno));
    memset(in, 0, 4000);
    struct iovec rv[2] = {{in, 1500}, {in + 1500, 10000}};
    ssize_t r = readv(s, rv, 2);
    CHECK(r == 4000 && mismatch(in, 4000, 0, 13) < 0, "readv of a 3-piece writev -> %zd, wanted 4000", r);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = wv;
    m.msg_iovlen = 2;
    CHECK(sendmsg(s, &m, 0) == 1000, "sendmsg of 1000 + 0 octets: %s", strerror(errno));
    int ef;
    ssize_t e = recv_part(s, in, BIG, 0, &ef);
    CHECK(e == 1000 && (ef & MSG_EOR) && mismatch(in, 1000, 0, 13) < 0, "recvmsg after sendmsg -> %zd (EOR %d)",
          e, !!(ef & MSG_EOR));
    ok("one writev/sendmsg is one message; readv and recvmsg (MSG_EOR) return it whole");

    STEP("poll, FIONREAD, dup");
    struct pollfd pfd = {.fd = s, .events = POLLOUT};
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT), "poll: connected DDP socket is not writable");
    fill(out, 100, 0, 14);
    write_message(s, out, 100);
    pfd.events = POLLIN;
    CHECK(poll(&pfd, 1, 10000) == 1 && (pfd.revents & POLLIN), "poll: echo did not make the socket readable");
    int ready = -1;
    SYS(ioctl(s, FIONREAD, &ready));
    CHECK(ready == 100, "FIONREAD with a 100-octet message ready -> %d", ready);
    expect_read(s, 100, 14);
    int d = SYS(dup(s));
    fill(out, 300, 0, 15);
    write_message(d, out, 300);
    expect_read(s, 300, 15);
    SYS(close(d));
    echo_once(s, 200, 16);
    ok("POLLOUT, POLLIN and FIONREAD (100); a dup writes to the connection; closing it keeps the connection");
}

static int client(int port, const char *mode) {
    int full = strcmp(mode, "full") == 0, crc0 = strcmp(mode, "crc0") == 0, rev1 = strcmp(mode, "rev1") == 0;
    CHECK(full || crc0 || rev1, "unknown mode %s", mode);
    STEP("options before connect");
    int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    CHECK(get_int(s, SOL_ETA, ETA_DDPMODE) == 0, "ETA_DDPMODE of a plain TCP socket is not 0");
    if (full) SYS(setsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, CLIENT_PD, strlen(CLIENT_PD)));
    /* FPDUs no larger than an Ethernet MTU: every message below still arrives whole. */
    if (full) set_int(s, SOL_ETA, ETA_MAX_FPDU, 1500);
    if (crc0) set_int(s, SOL_ETA, ETA_CRC, 0);
    if (rev1) set_int(s, SOL_ETA, ETA_MPA_REV, 1);
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    CHECK(get_int(s, SOL_ETA, ETA_DDPMODE) == 1, "ETA_DDPMODE is not 1 after setting it");
    CHECK(get_int(s, SOL_ETA, ETA_CRC) == !crc0, "ETA_CRC before connect is not the value asked for");
    CHECK(get_int(s, SOL_ETA, ETA_MPA_REV) == (rev1 ? 1 : 2), "ETA_MPA_REV before connect is not the value asked for");
    ok("before connect: ETA_DDPMODE 0, then 1; ETA_CRC %d and ETA_MPA_REV %d as asked", !crc0, rev1 ? 1 : 2);

    STEP("connect");
    struct sockaddr_in a = loopback(port);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0)
        FAIL("DDP connect: %s (ETA_ERROR \"%s\")", strerror(errno), eta_error(s));
    ok("blocking connect() returned 0 after the MPA exchange");

    STEP("negotiated options");
    /* The server asked for no CRC: CRC is used when either side asks (RFC 5044). */
    int crc = get_int(s, SOL_ETA, ETA_CRC), rev = get_int(s, SOL_ETA, ETA_MPA_REV);
    CHECK(crc == !crc0, "negotiated ETA_CRC %d, wanted %d", crc, !crc0);
    CHECK(rev == (rev1 ? 1 : 2), "negotiated ETA_MPA_REV %d, wanted %d", rev, rev1 ? 1 : 2);
    char pd[600];
    socklen_t pdlen = sizeof pd;
    SYS(getsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, &pdlen));
    CHECK(pdlen == strlen(SERVER_PD) && memcmp(pd, SERVER_PD, pdlen) == 0, "peer's private data \"%.*s\" (%u)",
          (int)pdlen, pd, (unsigned)pdlen);
    CHECK(eta_error(s)[0] == 0, "ETA_ERROR of a healthy connection: \"%s\"", eta_error(s));
    ok("negotiated: ETA_CRC %d, ETA_MPA_REV %d, peer's ETA_PRIVATE_DATA \"%.*s\", ETA_ERROR \"\"", crc, rev,
       (int)pdlen, pd);
    if (full) {
        int rtr = get_int(s, SOL_ETA, ETA_RTR), ird = get_int(s, SOL_ETA, ETA_IRD), ord = get_int(s, SOL_ETA, ETA_ORD);
        CHECK(rtr == ETA_RTR_WRITE && ird == 16 && ord == 16, "ETA_RTR %d ETA_IRD %d ETA_ORD %d, wanted 1 16 16", rtr,
              ird, ord);
        ok("negotiated: ETA_RTR %d (RDMA Write), ETA_IRD %d, ETA_ORD %d (defaults)", rtr, ird, ord);
        CHECK(get_int(s, SOL_ETA, ETA_MAX_FPDU) == 1500, "ETA_MAX_FPDU after connect is not 1500");
        ok("ETA_MAX_FPDU 1500 after connect: this side's FPDUs fit an Ethernet MTU");
    }
    if (rev1) {
        int rtr = get_int(s, SOL_ETA, ETA_RTR);
        CHECK(rtr == 0, "MPA revision 1: ETA_RTR %d, wanted 0 (no peer-to-peer mode)", rtr);
        ok("MPA revision 1: ETA_RTR 0");
    }
    if (rev1) write_text(s, "hello");
    check_info(s, !crc0, rev1 ? 1 : 2, full ? CLIENT_PD : "");

    if (full) {
        messages_and_boundaries(s);
        STEP("graceful close");
        for (int i = 1; i <= 5; i++) {
            snprintf(out, 64, "noecho %d", i);
            write_message(s, out, 1000);
        }
        SYS(shutdown(s, SHUT_WR));
        ssize_t n = read(s, in, BIG);
        CHECK(n == 0, "read after shutdown(SHUT_WR) and the server's close -> %zd (%s), wanted 0", n,
              n < 0 ? strerror(errno) : "data");
        ok("5 messages then shutdown(SHUT_WR): read() -> 0 once the server has closed");
    } else if (crc0) {
        echo_once(s, 65536, 21);
        ok("64 KiB echoed without CRC");
        STEP("peer closes");
        write_text(s, "close");
        ssize_t n = read(s, in, BIG);
        CHECK(n == 0, "read after the server closed -> %zd (%s), wanted 0", n, n < 0 ? strerror(errno) : "data");
        ok("the server closed: read() -> 0");
        EXPECT_ERR(write(s, "late", 4), EPIPE);
    } else {
        echo_once(s, 100, 31);
        fill(out, BIG, 0, 32);
        write_message(s, out, BIG);
        expect_read(s, BIG, 32);
        ok("MPA revision 1: 100 octets and 1 MiB echoed");
    }
    SYS(close(s));
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_echo";
    watchdog(120);
    out = malloc(BIG);
    in = malloc(BIG);
    CHECK(out && in, "malloc");
    if (argc == 3 && strcmp(argv[1], "server") == 0) return server(atoi(argv[2]));
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_echo client";
        client(atoi(argv[2]), argv[3]);
        printf("ddp_echo client %s: %d checks ok\n", argv[3], checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_echo server NCONN | client PORT full|crc0|rev1\n");
    return 2;
}

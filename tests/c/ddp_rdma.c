/* ddp_rdma: registered memory, RDMA Write/Read, posted Sends and receives with their
 * completions, Solicited Event, Send with Invalidate, a shared completion queue, and
 * what follows an RDMA Write to an invalidated STag (include/eta.h).
 *
 *   ddp_rdma server           prints its port; serves one connection (plus the two
 *                             of the completion-queue step), driven by the client's
 *                             text commands; exits 0 after the final step.
 *   ddp_rdma client PORT      runs the steps and checks every octet and completion.
 *
 * Regions are registered with eta_reg_mr and advertised as "region STAG ADDR" in a
 * Send; a Send that follows an RDMA Write on the same connection arrives after the
 * Write's data is placed, so "check-write" / "written" make the data visible. */
#include "ddp_common.h"

#define RSIZE (1u << 20)
#define SEED_SERVER 0x5e

static uint8_t *region(size_t len, int c) {
    uint8_t *p = aligned_alloc(4096, len);
    CHECK(p, "aligned_alloc");
    memset(p, c, len);
    return p;
}

static void advertise(int s, uint32_t stag, const void *addr) {
    char msg[128];
    snprintf(msg, sizeof msg, "region %u %llu", stag, (unsigned long long)(uintptr_t)addr);
    write_text(s, msg);
}

static int server(void) {
    int port;
    int l = listen_loopback(1, 16, &port);
    announce_port(port);
    int s = SYS(accept(l, NULL, NULL));
    uint8_t *r = region(RSIZE, 0), *src = region(RSIZE, 0);
    fill(r, RSIZE, 0, SEED_SERVER);
    uint32_t stag = eta_reg_mr(s, r, RSIZE, ETA_ACCESS_REMOTE_WRITE | ETA_ACCESS_REMOTE_READ);
    CHECK(stag != 0, "eta_reg_mr: %s", strerror(errno));
    advertise(s, stag, r);
    unsigned cstag;
    unsigned long long caddr;
    CHECK(sscanf(read_text(s), "region %u %llu", &cstag, &caddr) == 2, "no region from the client");
    for (;;) {
        char cmd[8192];
        size_t n = read_message(s, cmd, sizeof cmd - 1);
        CHECK(n > 0, "the client closed before the last step");
        cmd[n] = 0;
        unsigned long long off, len, seed, addr;
        unsigned st;
        STEP(strncmp(cmd, "data ", 5) == 0 ? "data" : cmd);
        if (sscanf(cmd, "check-write %llu %llu %llu", &off, &len, &seed) == 3) {
            long a = mismatch(r, off, 0, SEED_SERVER), b = mismatch(r + off, len, 0, (unsigned)seed);
            long c = mismatch(r + off + len, RSIZE - off - len, off + len, SEED_SERVER);
            char reply[128];
            snprintf(reply, sizeof reply, "before %ld written %ld after %ld", a, b, c);
            write_text(s, a < 0 && b < 0 && c < 0 ? "ok" : reply);
        } else if (sscanf(cmd, "write-to-you %llu %llu %llu", &off, &len, &seed) == 3) {
            fill(src, len, 0, (unsigned)seed);
            SYS(eta_rdma_write(s, 100, src, len, cstag, caddr + off));
            expect_wc(s, 100, ETA_WC_RDMA_WRITE, 0);
            write_text(s, "written");
        } else if (strcmp(cmd, "send-two") == 0) {
            write_text(s, "msg-one");
            fill(src, 3000, 0, 3);
            write_message(s, src, 3000);
        } else if (strcmp(cmd, "send-empty") == 0) {
            SYS(eta_post_send(s, 200, src, 0, 0));
            struct eta_wc wc = expect_wc(s, 200, ETA_WC_SEND, 0);
            CHECK(wc.byte_len == 0 && wc.fd == s, "empty Send: byte_len %u fd %d", wc.byte_len, wc.fd);
        } else if (strcmp(cmd, "send-solicited") == 0) {
            SYS(eta_post_send(s, 201, "solicited", 9, ETA_SEND_SOLICITED));
            expect_wc(s, 201, ETA_WC_SEND, 0);
        } else if (strncmp(cmd, "data ", 5) == 0) {
            char reply[64];
            snprintf(reply, sizeof reply, "got %zu %s", n, mismatch(cmd + 5, n - 5, 0, 4) < 0 ? "ok" : "bad");
            write_text(s, reply);
        } else if (strcmp(cmd, "cq-accept") == 0) {
            int a2 = SYS(accept(l, NULL, NULL)), a3 = SYS(accept(l, NULL, NULL));
            CHECK(sscanf(read_text(a2), "from c2 %u %llu", &st, &addr) == 2, "no region from c2");
            /* An ETA_ACCESS_ANY_SOCKET region of connection 1, written through c3. */
            fill(src, 4096, 0, 5);
            SYS(eta_rdma_write(a3, 300, src, 4096, st, addr));
            expect_wc(a3, 300, ETA_WC_RDMA_WRITE, 0);
            write_text(a2, "to c2");
            write_text(a3, "to c3");
            CHECK(read_message(a2, cmd, sizeof cmd) == 0 && read_message(a3, cmd, sizeof cmd) == 0,
                  "c2/c3 did not close");
            close(a2);
            close(a3);
        } else if (sscanf(cmd, "send-inv %u", &st) == 1) {
            SYS(eta_post_send_inv(s, 202, "invalidate", 10, 0, st));
            expect_wc(s, 202, ETA_WC_SEND, 0);
        } else if (sscanf(cmd, "write-invalidated %u %llu", &st, &addr) == 2) {
            fill(src, 4096, 0, 6);
            SYS(eta_rdma_write(s, 400, src, 4096, st, addr));
            struct eta_wc wc;
            CHECK(eta_wait(s, &wc, 1, 10000) == 1 && wc.wr_id == 400, "no completion for the RDMA Write");
            errno = 0;
            ssize_t got = read(s, cmd, sizeof cmd);
            int e = errno;
            CHECK(got == -1 && e == ECONNRESET, "read after the peer's Terminate -> %zd errno %s, wanted ECONNRESET",
                  got, strerror(e));
            const char *why = eta_error(s);
            CHECK(why[0] != 0, "ETA_ERROR is empty after the peer's Terminate");
            printf("server: RDMA Write to an invalidated STag: completion status %s; read -> ECONNRESET; "
                   "ETA_ERROR \"%s\"\n", strerror(wc.status), why);
            close(s);
            return 0;
        } else {
            FAIL("unknown command \"%s\"", cmd);
        }
    }
}

static int client(int port) {
    STEP("register and exchange regions");
    int c = connect_ddp(port);
    uint8_t *rc = region(RSIZE, 0), *lb = region(RSIZE, 0xEE), *buf = region(RSIZE, 0);
    uint32_t cst = eta_reg_mr(c, rc, RSIZE, ETA_ACCESS_REMOTE_WRITE | ETA_ACCESS_REMOTE_READ);
    uint32_t lst = eta_reg_mr(c, lb, RSIZE, ETA_ACCESS_LOCAL_WRITE);
    CHECK(cst && lst && cst != lst, "eta_reg_mr -> %u, %u: %s", cst, lst, strerror(errno));
    advertise(c, cst, rc);
    unsigned sst;
    unsigned long long saddr;
    CHECK(sscanf(read_text(c), "region %u %llu", &sst, &saddr) == 2, "no region from the server");
    ok("eta_reg_mr: STags %u (remote write/read) and %u (local write); peer's STag %u", cst, lst, sst);

    STEP("RDMA Write");
    fill(buf, 262144, 0, 77);
    SYS(eta_rdma_write(c, 11, buf, 262144, sst, saddr + 4096));
    struct eta_wc wc = expect_wc(c, 11, ETA_WC_RDMA_WRITE, 0);
    CHECK(wc.byte_len == 262144 && wc.fd == c, "RDMA Write completion: byte_len %u fd %d", wc.byte_len, wc.fd);
    write_text(c, "check-write 4096 262144 77");
    const char *verdict = read_text(c);
    CHECK(strcmp(verdict, "ok") == 0, "the server's region after the RDMA Write: %s", verdict);
    ok("eta_rdma_write: 256 KiB placed at offset 4096 of the peer's region, nothing around it touched");

    STEP("RDMA Read");
    SYS(eta_rdma_read(c, 12, lb + 100, 300000, lst, sst, saddr + 524288));
    wc = expect_wc(c, 12, ETA_WC_RDMA_READ, 0);
    CHECK(wc.byte_len == 300000, "RDMA Read completion: byte_len %u", wc.byte_len);
    long at = mismatch(lb + 100, 300000, 524288, SEED_SERVER);
    CHECK(at < 0, "RDMA Read: octet %ld differs from the peer's memory", at);
    CHECK(not_all(lb, 100, 0xEE) < 0 && not_all(lb + 300100, 100, 0xEE) < 0, "RDMA Read wrote outside its target");
    SYS(eta_rdma_read(c, 13, lb, 262144, lst, sst, saddr + 4096));
    expect_wc(c, 13, ETA_WC_RDMA_READ, 0);
    CHECK(mismatch(lb, 262144, 0, 77) < 0, "reading back the RDMA-written range gives other data");
    ok("eta_rdma_read: 300000 octets at offset 524288 and the written 256 KiB read back exactly");

    STEP("RDMA Write by the server");
    write_text(c, "write-to-you 1000 50000 91");
    CHECK(strcmp(read_text(c), "written") == 0, "no \"written\" from the server");
    CHECK(mismatch(rc + 1000, 50000, 0, 91) < 0, "the server's RDMA Write did not land in our region");
    CHECK(not_all(rc, 1000, 0) < 0 && not_all(rc + 51000, RSIZE - 51000, 0) < 0, "our region changed outside the write");
    ok("the peer's RDMA Write of 50000 octets is visible once its next Send arrives");

    STEP("posted receives");
    static char rb1[4096], rb2[4096], sb[5005];
    CHECK(eta_wait(c, &wc, 1, 50) == 0, "eta_wait with nothing outstanding did not time out");
    SYS(eta_post_recv(c, 21, rb1, sizeof rb1));
    SYS(eta_post_recv(c, 22, rb2, sizeof rb2));
    write_text(c, "send-two");
    struct pollfd pfd = {.fd = c, .events = POLLIN};
    CHECK(poll(&pfd, 1, 10000) == 1 && (pfd.revents & POLLIN), "a completion did not make the socket readable");
    wc = expect_wc(c, 21, ETA_WC_RECV, 0);
    CHECK(wc.byte_len == 7 && memcmp(rb1, "msg-one", 7) == 0 && wc.flags == 0 && wc.fd == c,
          "first receive: byte_len %u flags %u", wc.byte_len, wc.flags);
    wc = expect_wc(c, 22, ETA_WC_RECV, 0);
    CHECK(wc.byte_len == 3000 && mismatch(rb2, 3000, 0, 3) < 0, "second receive: byte_len %u", wc.byte_len);
    CHECK(eta_poll(c, &wc, 1) == 0, "a third completion appeared");
    CHECK(poll(&pfd, 1, 0) == 0, "socket still readable with no message and no completion");
    ok("eta_post_recv x2: POLLIN, then RECV completions 21 (7 octets) and 22 (3000) in order; nothing for read()");

    SYS(eta_post_recv(c, 23, rb1, sizeof rb1));
    write_text(c, "send-empty");
    wc = expect_wc(c, 23, ETA_WC_RECV, 0);
    CHECK(wc.byte_len == 0, "empty Send received with byte_len %u", wc.byte_len);
    ok("a 0-octet eta_post_send arrives as a RECV completion with byte_len 0");

    STEP("posted Send");
    memcpy(sb, "data ", 5);
    fill(sb + 5, 5000, 0, 4);
    SYS(eta_post_send(c, 31, sb, sizeof sb, 0));
    wc = expect_wc(c, 31, ETA_WC_SEND, 0);
    CHECK(wc.byte_len == sizeof sb, "Send completion: byte_len %u", wc.byte_len);
    verdict = read_text(c);
    CHECK(strcmp(verdict, "got 5005 ok") == 0, "the server read our posted Send as \"%s\"", verdict);
    ok("eta_post_send of 5005 octets: SEND completion, the peer's read() gets it whole");

    STEP("Solicited Event");
    SYS(eta_post_recv(c, 41, rb1, sizeof rb1));
    write_text(c, "send-solicited");
    wc = expect_wc(c, 41, ETA_WC_RECV, 0);
    CHECK(wc.flags == ETA_WC_SOLICITED && wc.byte_len == 9, "solicited receive: flags %u byte_len %u", wc.flags,
          wc.byte_len);
    ok("ETA_SEND_SOLICITED arrives with ETA_WC_SOLICITED");

    STEP("shared completion queue");
    int cq = SYS(eta_cq_create());
    uint8_t *any = region(4096, 0);
    uint32_t anyst = eta_reg_mr(c, any, 4096, ETA_ACCESS_REMOTE_WRITE | ETA_ACCESS_ANY_SOCKET);
    CHECK(anyst, "eta_reg_mr(ETA_ACCESS_ANY_SOCKET): %s", strerror(errno));
    write_text(c, "cq-accept");
    int cs[2];
    for (int i = 0; i < 2; i++) {
        cs[i] = SYS(socket(AF_INET, SOCK_STREAM, 0));
        set_int(cs[i], SOL_ETA, ETA_CQ, cq);
        set_int(cs[i], SOL_ETA, ETA_DDPMODE, 1);
        struct sockaddr_in a = loopback(port);
        SYS(connect(cs[i], (struct sockaddr *)&a, sizeof a));
    }
    static char b2[64], b3[64], m2[64];
    SYS(eta_post_recv(cs[0], 2001, b2, sizeof b2));
    SYS(eta_post_recv(cs[1], 3001, b3, sizeof b3));
    int m2len = snprintf(m2, sizeof m2, "from c2 %u %llu", anyst, (unsigned long long)(uintptr_t)any);
    SYS(eta_post_send(cs[0], 2002, m2, (size_t)m2len, 0));
    int seen = 0; /* bit 0: 2002, bit 1: 2001, bit 2: 3001 */
    while (seen != 7) {
        struct pollfd q = {.fd = cq, .events = POLLIN};
        CHECK(poll(&q, 1, 10000) == 1 && (q.revents & POLLIN), "completion queue fd not readable (seen %d)", seen);
        struct eta_wc w[8];
        int n = SYS(eta_poll(cq, w, 8));
        for (int i = 0; i < n; i++) {
            CHECK(w[i].status == 0, "shared queue: wr_id %llu status %s", (unsigned long long)w[i].wr_id,
                  strerror(w[i].status));
            if (w[i].wr_id == 2002 && w[i].opcode == ETA_WC_SEND && w[i].fd == cs[0]) seen |= 1;
            else if (w[i].wr_id == 2001 && w[i].opcode == ETA_WC_RECV && w[i].fd == cs[0] &&
                     w[i].byte_len == 5 && memcmp(b2, "to c2", 5) == 0) seen |= 2;
            else if (w[i].wr_id == 3001 && w[i].opcode == ETA_WC_RECV && w[i].fd == cs[1] &&
                     w[i].byte_len == 5 && memcmp(b3, "to c3", 5) == 0) seen |= 4;
            else FAIL("unexpected completion on the shared queue: wr_id %llu opcode %s fd %d byte_len %u",
                      (unsigned long long)w[i].wr_id, opname(w[i].opcode), w[i].fd, w[i].byte_len);
        }
    }
    CHECK(eta_poll(cs[0], &wc, 1) == 0 && eta_poll(cs[1], &wc, 1) == 0 && eta_poll(c, &wc, 1) == 0,
          "a completion went to a socket's own queue instead of the shared one");
    struct pollfd q = {.fd = cq, .events = POLLIN};
    CHECK(poll(&q, 1, 0) == 0, "completion queue fd readable while empty");
    CHECK(eta_wait(cq, &wc, 1, 100) == 0, "eta_wait on the empty shared queue did not time out");
    CHECK(mismatch(any, 4096, 0, 5) < 0, "RDMA Write through another socket missed the ETA_ACCESS_ANY_SOCKET region");
    SYS(close(cs[0]));
    SYS(close(cs[1]));
    SYS(eta_cq_destroy(cq));
    ok("shared completion queue: fd readable, 3 completions from 2 sockets (wc.fd right), nothing on own queues");
    ok("ETA_ACCESS_ANY_SOCKET: a region of connection 1 written through connection 3");

    STEP("Send with Invalidate");
    SYS(eta_dereg_mr(c, lst));
    uint8_t *v = region(65536, 0);
    uint32_t vst = eta_reg_mr(c, v, 65536, ETA_ACCESS_REMOTE_WRITE);
    CHECK(vst, "eta_reg_mr: %s", strerror(errno));
    SYS(eta_post_recv(c, 51, rb1, sizeof rb1));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "send-inv %u", vst);
    write_text(c, cmd);
    wc = expect_wc(c, 51, ETA_WC_RECV, 0);
    CHECK(wc.flags == ETA_WC_INVALIDATED && wc.invalidated == vst && wc.byte_len == 10,
          "Send with Invalidate: flags %u invalidated %u (wanted %u) byte_len %u", wc.flags, wc.invalidated, vst,
          wc.byte_len);
    ok("Send with Invalidate: RECV completion with ETA_WC_INVALIDATED, invalidated = %u", vst);

    STEP("RDMA Write to the invalidated STag");
    SYS(eta_post_recv(c, 61, rb2, sizeof rb2));
    snprintf(cmd, sizeof cmd, "write-invalidated %u %llu", vst, (unsigned long long)(uintptr_t)v);
    write_text(c, cmd);
    errno = 0;
    ssize_t got = read(c, rb1, sizeof rb1);
    int e = errno;
    CHECK(got == -1 && e == EPROTO, "read after the peer wrote to an invalidated STag -> %zd errno %s, wanted EPROTO",
          got, strerror(e));
    const char *why = eta_error(c);
    CHECK(why[0] != 0, "ETA_ERROR is empty after this end sent a Terminate");
    CHECK(not_all(v, 65536, 0) < 0, "the invalidated region was written");
    ok("RDMA Write to an invalidated STag: read -> EPROTO, ETA_ERROR \"%s\", region untouched", why);
    wc = expect_wc(c, 61, ETA_WC_RECV, ECANCELED);
    ok("the outstanding receive is flushed with ECANCELED");
    errno = 0;
    int pr = eta_post_send(c, 62, "x", 1, 0);
    CHECK(pr == -1 && errno != 0, "eta_post_send on the terminated connection -> %d", pr);
    ok("eta_post_send on the terminated connection -> -1 errno %s", strerror(errno));
    SYS(close(c));
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_rdma";
    watchdog(120);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return server();
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_rdma client";
        client(atoi(argv[2]));
        printf("ddp_rdma client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_rdma server | client PORT\n");
    return 2;
}

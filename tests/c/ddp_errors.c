/* ddp_errors: the errno of every documented bad input (include/eta.h).
 *
 *   ddp_errors server        the common echo server for 2 connections (prints port).
 *   ddp_errors client PORT   EBADF, EINVAL, ENOTCONN, EISCONN, ENOPROTOOPT, EMSGSIZE,
 *                            EAGAIN (1024 receives), failed MPA setup against fake
 *                            peers (ECONNRESET, EPROTO); the connection still works.
 *   ddp_errors noshim        without libeta.so: setsockopt(SOL_ETA, ETA_DDPMODE) ->
 *                            ENOPROTOOPT. Built with -DETA_NO_LIB this program calls
 *                            no eta_* function and does not need libeta.so. */
#include "ddp_common.h"

#include <sys/un.h>

static void no_shim(void) {
    int s = SYS(socket(AF_INET, SOCK_STREAM, 0)), one = 1;
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one), ENOPROTOOPT);
    close(s);
}

#ifndef ETA_NO_LIB
static void not_ddp_sockets(void) {
    STEP("EBADF");
    int plain = SYS(socket(AF_INET, SOCK_STREAM, 0)), file = SYS(open("/dev/null", O_RDONLY));
    int fds[3] = {-1, plain, file};
    const char *names[3] = {"fd -1", "a plain TCP socket", "/dev/null"};
    char buf[64];
    struct eta_wc wc;
    for (int i = 0; i < 3; i++) {
        int fd = fds[i];
        printf("-- %s\n", names[i]);
        EXPECT_STAG_ERR(eta_reg_mr(fd, buf, sizeof buf, ETA_ACCESS_REMOTE_WRITE), EBADF);
        EXPECT_ERR(eta_dereg_mr(fd, 1), EBADF);
        EXPECT_ERR(eta_post_send(fd, 1, buf, 1, 0), EBADF);
        EXPECT_ERR(eta_post_send_inv(fd, 1, buf, 1, 0, 1), EBADF);
        EXPECT_ERR(eta_post_recv(fd, 1, buf, sizeof buf), EBADF);
        EXPECT_ERR(eta_rdma_write(fd, 1, buf, 1, 1, 0), EBADF);
        EXPECT_ERR(eta_rdma_read(fd, 1, buf, 1, 1, 1, 0), EBADF);
        EXPECT_ERR(eta_poll(fd, &wc, 1), EBADF);
        EXPECT_ERR(eta_wait(fd, &wc, 1, 0), EBADF);
        EXPECT_ERR(eta_cq_destroy(fd), EBADF);
    }
    close(plain);
    close(file);
    int cq = SYS(eta_cq_create());
    SYS(eta_cq_destroy(cq));
    EXPECT_ERR(eta_cq_destroy(cq), EBADF);
    EXPECT_ERR(eta_poll(cq, &wc, 1), EBADF);
}

static void options(void) {
    STEP("ENOPROTOOPT, EINVAL");
    int one = 1, zero = 0, three = 3;
    socklen_t len = sizeof one;
    int udp = SYS(socket(AF_INET, SOCK_DGRAM, 0)), unx = SYS(socket(AF_UNIX, SOCK_STREAM, 0));
    EXPECT_ERR(setsockopt(udp, SOL_ETA, ETA_DDPMODE, &one, sizeof one), ENOPROTOOPT);
    EXPECT_ERR(getsockopt(udp, SOL_ETA, ETA_DDPMODE, &one, &len), ENOPROTOOPT);
    EXPECT_ERR(setsockopt(unx, SOL_ETA, ETA_DDPMODE, &one, sizeof one), ENOPROTOOPT);
    EXPECT_ERR(setsockopt(unx, SOL_ETA, ETA_CRC, &one, sizeof one), ENOPROTOOPT);
    EXPECT_ERR(getsockopt(unx, SOL_ETA, ETA_DDPMODE, &one, &len), ENOPROTOOPT);
    close(udp);
    close(unx);

    int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_DDPMODE, &zero, sizeof zero), EINVAL);
    CHECK(get_int(s, SOL_ETA, ETA_DDPMODE) == 0, "ETA_DDPMODE 0 was refused but the socket changed mode");
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_MPA_REV, &three, sizeof three), EINVAL);
    /* MPA's PD_Length is at most 512; revision 2 spends 4 of them on IRD/ORD (RFC 6581). */
    char pd[513];
    memset(pd, 'p', sizeof pd);
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, sizeof pd), EINVAL);
    SYS(setsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, 508));
    ok("ETA_PRIVATE_DATA (MPA revision 2): 508 octets accepted, 513 refused");
    close(s);
    s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    set_int(s, SOL_ETA, ETA_MPA_REV, 1);
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, sizeof pd), EINVAL);
    SYS(setsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, 512));
    ok("ETA_PRIVATE_DATA (MPA revision 1): 512 octets accepted, 513 refused");
    close(s);
    s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    int small = 255, big = 65537, mtu = 1500;
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_MAX_FPDU, &small, sizeof small), EINVAL);
    EXPECT_ERR(setsockopt(s, SOL_ETA, ETA_MAX_FPDU, &big, sizeof big), EINVAL);
    CHECK(get_int(s, SOL_ETA, ETA_MAX_FPDU) == 0, "ETA_MAX_FPDU changed by a refused value");
    SYS(setsockopt(s, SOL_ETA, ETA_MAX_FPDU, &mtu, sizeof mtu));
    CHECK(get_int(s, SOL_ETA, ETA_MAX_FPDU) == 1500, "ETA_MAX_FPDU 1500 not reported");
    ok("ETA_MAX_FPDU: 255 and 65537 refused, 1500 accepted and reported");
    close(s);
}

static void before_connect(void) {
    STEP("ENOTCONN");
    int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    static char buf[64];
    EXPECT_STAG_ERR(eta_reg_mr(s, buf, sizeof buf, ETA_ACCESS_REMOTE_WRITE), ENOTCONN);
    EXPECT_ERR(eta_post_send(s, 1, buf, 1, 0), ENOTCONN);
    EXPECT_ERR(eta_post_recv(s, 1, buf, sizeof buf), ENOTCONN);
    close(s);
}

static void connected(int port) {
    STEP("EISCONN");
    int d = connect_ddp(port), one = 1, cq = SYS(eta_cq_create());
    EXPECT_ERR(setsockopt(d, SOL_ETA, ETA_DDPMODE, &one, sizeof one), EISCONN);
    EXPECT_ERR(setsockopt(d, SOL_ETA, ETA_CRC, &one, sizeof one), EISCONN);
    EXPECT_ERR(setsockopt(d, SOL_ETA, ETA_MPA_REV, &one, sizeof one), EISCONN);
    EXPECT_ERR(setsockopt(d, SOL_ETA, ETA_PRIVATE_DATA, "pd", 2), EISCONN);
    EXPECT_ERR(setsockopt(d, SOL_ETA, ETA_CQ, &cq, sizeof cq), EISCONN);
    SYS(eta_cq_destroy(cq));

    STEP("eta_reg_mr EINVAL");
    static char mem[65536];
    EXPECT_STAG_ERR(eta_reg_mr(d, NULL, 100, ETA_ACCESS_REMOTE_WRITE), EINVAL);
    EXPECT_STAG_ERR(eta_reg_mr(d, mem, 0, ETA_ACCESS_REMOTE_WRITE), EINVAL);
    EXPECT_STAG_ERR(eta_reg_mr(d, mem, sizeof mem, 0x8000), EINVAL);
    EXPECT_STAG_ERR(eta_reg_mr(d, (void *)(UINTPTR_MAX - 10), 100, ETA_ACCESS_REMOTE_WRITE), EINVAL);

    STEP("eta_dereg_mr EINVAL");
    uint32_t st = eta_reg_mr(d, mem, 4096, ETA_ACCESS_REMOTE_WRITE);
    CHECK(st != 0, "eta_reg_mr of 4096 octets: %s", strerror(errno));
    uint32_t lw = eta_reg_mr(d, mem + 4096, 4096, ETA_ACCESS_LOCAL_WRITE);
    CHECK(lw != 0, "eta_reg_mr (local write): %s", strerror(errno));
    SYS(eta_dereg_mr(d, st));
    SYS(eta_dereg_mr(d, lw));
    ok("eta_dereg_mr of two registrations -> 0");
    EXPECT_ERR(eta_dereg_mr(d, st), EINVAL);
    EXPECT_ERR(eta_dereg_mr(d, 0), EINVAL);
    EXPECT_ERR(eta_dereg_mr(d, st ^ 0x5a5a5a00u), EINVAL);

    STEP("eta_rdma_read EINVAL");
    /* The remote STag is not checked locally, the local one is. A wrongly accepted
     * Read would go to the peer with rstag 1 and end the connection (seen below). */
    EXPECT_ERR(eta_rdma_read(d, 1, mem + 4096, 100, lw, 1, 0), EINVAL);             /* deregistered */
    EXPECT_ERR(eta_rdma_read(d, 1, mem, 100, st ^ 0x5a5a5a00u, 1, 0), EINVAL);      /* never registered */
    uint32_t local = eta_reg_mr(d, mem, 8192, ETA_ACCESS_LOCAL_WRITE);
    uint32_t remote_only = eta_reg_mr(d, mem + 8192, 8192, ETA_ACCESS_REMOTE_READ);
    CHECK(local && remote_only, "eta_reg_mr: %s", strerror(errno));
    EXPECT_ERR(eta_rdma_read(d, 1, mem + 8192, 100, remote_only, 1, 0), EINVAL);    /* no local write */
    EXPECT_ERR(eta_rdma_read(d, 1, mem + 8100, 100, local, 1, 0), EINVAL);          /* runs past the end */
    EXPECT_ERR(eta_rdma_read(d, 1, mem + 20000, 100, local, 1, 0), EINVAL);         /* outside the region */

    STEP("eta_poll EINVAL");
    struct eta_wc wc;
    EXPECT_ERR(eta_poll(d, &wc, 0), EINVAL);
    EXPECT_ERR(eta_poll(d, NULL, 1), EINVAL);
    EXPECT_ERR(eta_wait(d, &wc, 0, 0), EINVAL);
    CHECK(eta_poll(d, &wc, 1) == 0, "a refused request produced a completion");

    STEP("EMSGSIZE");
    if (SIZE_MAX > ETA_MAX_MESSAGE) {
        EXPECT_ERR(eta_post_send(d, 1, mem, (size_t)ETA_MAX_MESSAGE + 1, 0), EMSGSIZE);
    }

    STEP("still connected");
    echo_once(d, 1000, 1);
    SYS(eta_dereg_mr(d, local));
    SYS(eta_dereg_mr(d, remote_only));
    ok("the connection still works after all refused calls");
    SYS(close(d));

    STEP("EAGAIN: 1024 outstanding receives");
    int e = connect_ddp(port);
    static char small[1025][8];
    for (int i = 0; i < 1024; i++)
        if (eta_post_recv(e, (uint64_t)i, small[i], sizeof small[i]) != 0)
            FAIL("eta_post_recv number %d of 1024: %s", i + 1, strerror(errno));
    ok("1024 receives posted");
    EXPECT_ERR(eta_post_recv(e, 1024, small[1024], sizeof small[1024]), EAGAIN);
    SYS(close(e));
}

/* A plain TCP peer that fails MPA setup: closes after the Request, or answers junk. */
static int fake_listener;
static void *fake_peer(void *arg) {
    (void)arg;
    char buf[1024];
    for (int i = 0; i < 2; i++) {
        int c = accept(fake_listener, NULL, NULL);
        if (c < 0) return NULL;
        ssize_t n = read(c, buf, sizeof buf);
        (void)n;
        if (i == 1) {
            const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
            (void)!write(c, junk, sizeof junk - 1);
            while (read(c, buf, sizeof buf) > 0) {
            }
        }
        close(c);
    }
    return NULL;
}

static void failed_setup(void) {
    STEP("failed MPA setup");
    int port;
    fake_listener = listen_loopback(0, 4, &port);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fake_peer, NULL) == 0, "pthread_create");
    struct sockaddr_in a = loopback(port);
    for (int i = 0; i < 2; i++) {
        int s = SYS(socket(AF_INET, SOCK_STREAM, 0));
        set_int(s, SOL_ETA, ETA_DDPMODE, 1);
        if (i == 0) EXPECT_ERR(connect(s, (struct sockaddr *)&a, sizeof a), ECONNRESET);
        else EXPECT_ERR(connect(s, (struct sockaddr *)&a, sizeof a), EPROTO);
        const char *why = eta_error(s);
        CHECK(why[0] != 0, "ETA_ERROR is empty after a failed setup");
        ok("%s: ETA_ERROR \"%s\"", i ? "junk instead of an MPA Reply" : "peer closed during setup", why);
        close(s);
    }
    pthread_join(t, NULL);
    close(fake_listener);
}
#endif

int main(int argc, char **argv) {
    prog = "ddp_errors";
    watchdog(120);
    if (argc == 2 && strcmp(argv[1], "noshim") == 0) {
        no_shim();
        printf("ddp_errors noshim: %d checks ok\n", checks);
        return 0;
    }
#ifndef ETA_NO_LIB
    if (argc == 2 && strcmp(argv[1], "server") == 0) return serve_echo(2);
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_errors client";
        not_ddp_sockets();
        options();
        before_connect();
        connected(atoi(argv[2]));
        failed_setup();
        printf("ddp_errors client: %d checks ok\n", checks);
        return 0;
    }
#endif
    fprintf(stderr, "usage: ddp_errors server | client PORT | noshim\n");
    return 2;
}

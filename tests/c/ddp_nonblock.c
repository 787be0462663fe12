/* ddp_nonblock: non-blocking DDP sockets, poll and select (include/eta.h).
 *
 *   ddp_nonblock server      the common echo server for 2 connections (prints port).
 *   ddp_nonblock client PORT non-blocking connect (EINPROGRESS, POLLOUT, SO_ERROR 0),
 *                            EAGAIN with nothing queued (O_NONBLOCK, MSG_DONTWAIT,
 *                            FIONBIO), poll and select on DDP fds, ECONNREFUSED
 *                            through SO_ERROR, end of connection in poll. */
#include "ddp_common.h"

#include <sys/ioctl.h>
#include <sys/select.h>

static void expect_poll(int fd, short events, short want, const char *what) {
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, 10000);
    CHECK(n == 1 && (p.revents & want) == want, "%s: poll -> %d, revents %#x, wanted %#x", what, n, p.revents, want);
}

static void nonblocking_connect(int port) {
    STEP("non-blocking connect");
    int s = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    struct sockaddr_in a = loopback(port);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    CHECK(r == -1 && errno == EINPROGRESS, "non-blocking DDP connect -> %d (%s), wanted EINPROGRESS", r,
          strerror(errno));
    struct pollfd p = {.fd = s, .events = POLLOUT};
    CHECK(poll(&p, 1, 10000) == 1, "the connecting socket did not become writable within 10 s");
    CHECK(p.revents == POLLOUT, "connected socket: revents %#x, wanted POLLOUT only", p.revents);
    int err = get_int(s, SOL_SOCKET, SO_ERROR);
    CHECK(err == 0, "SO_ERROR after the MPA exchange: %s (ETA_ERROR \"%s\")", strerror(err), eta_error(s));
    CHECK(get_int(s, SOL_ETA, ETA_DDPMODE) == 1, "not in DDP mode after connect");
    ok("non-blocking DDP connect: EINPROGRESS, then POLLOUT, SO_ERROR 0");

    STEP("EAGAIN");
    char buf[4096];
    EXPECT_ERR(read(s, buf, sizeof buf), EAGAIN);
    EXPECT_ERR(recv(s, buf, sizeof buf, MSG_PEEK), EAGAIN);
    struct msghdr m;
    struct iovec iov = {buf, sizeof buf};
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    EXPECT_ERR(recvmsg(s, &m, 0), EAGAIN);

    STEP("messages on the non-blocking socket");
    fill(buf, 2000, 0, 1);
    write_message(s, buf, 2000);
    expect_poll(s, POLLIN, POLLIN, "echo of 2000 octets");
    memset(buf, 0, sizeof buf);
    ssize_t n = read(s, buf, sizeof buf);
    CHECK(n == 2000 && mismatch(buf, 2000, 0, 1) < 0, "read of the echo -> %zd", n);
    EXPECT_ERR(read(s, buf, sizeof buf), EAGAIN);
    ok("non-blocking: write 2000, POLLIN, read 2000, then EAGAIN again");

    STEP("select");
    fd_set rd, wr;
    struct timeval tv = {0, 0};
    FD_ZERO(&rd);
    FD_SET(s, &rd);
    CHECK(select(s + 1, &rd, NULL, NULL, &tv) == 0 && !FD_ISSET(s, &rd), "select: readable with nothing queued");
    fill(buf, 300, 0, 2);
    write_message(s, buf, 300);
    FD_ZERO(&rd);
    FD_ZERO(&wr);
    FD_SET(s, &rd);
    FD_SET(s, &wr);
    tv.tv_sec = 10;
    int sel = select(s + 1, &rd, &wr, NULL, &tv);
    CHECK(sel >= 1 && FD_ISSET(s, &wr), "select: DDP socket not writable (%d)", sel);
    if (!FD_ISSET(s, &rd)) { /* writable came first: wait for the echo alone */
        FD_ZERO(&rd);
        FD_SET(s, &rd);
        tv.tv_sec = 10;
        CHECK(select(s + 1, &rd, NULL, NULL, &tv) == 1 && FD_ISSET(s, &rd), "select: echo did not make it readable");
    }
    n = read(s, buf, sizeof buf);
    CHECK(n == 300 && mismatch(buf, 300, 0, 2) < 0, "read after select -> %zd", n);
    ok("select(): not readable when empty; writable; readable when the echo is there");

    STEP("end of connection");
    SYS(shutdown(s, SHUT_WR));
    struct pollfd e = {.fd = s, .events = POLLIN | POLLRDHUP};
    CHECK(poll(&e, 1, 10000) == 1 && (e.revents & (POLLIN | POLLRDHUP)), "end of connection: revents %#x", e.revents);
    CHECK(read(s, buf, sizeof buf) == 0, "read at the end of the connection is not 0");
    CHECK(poll(&e, 1, 10000) == 1 && (e.revents & (POLLHUP | POLLRDHUP)),
          "connection over: revents %#x, wanted POLLHUP or POLLRDHUP", e.revents);
    ok("shutdown(SHUT_WR): the server closes, poll reports the end (revents %#x), read() -> 0", e.revents);
    SYS(close(s));
}

static void blocking_socket_nonblocking_calls(int port) {
    STEP("MSG_DONTWAIT and FIONBIO");
    int b = connect_ddp(port);
    char buf[256];
    EXPECT_ERR(recv(b, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
    int on = 1;
    SYS(ioctl(b, FIONBIO, &on));
    CHECK(SYS(fcntl(b, F_GETFL)) & O_NONBLOCK, "FIONBIO did not set O_NONBLOCK");
    EXPECT_ERR(read(b, buf, sizeof buf), EAGAIN);
    on = 0;
    SYS(ioctl(b, FIONBIO, &on));
    SYS(fcntl(b, F_SETFL, SYS(fcntl(b, F_GETFL)) | O_NONBLOCK));
    EXPECT_ERR(read(b, buf, sizeof buf), EAGAIN);
    SYS(fcntl(b, F_SETFL, SYS(fcntl(b, F_GETFL)) & ~O_NONBLOCK));
    echo_once(b, 100, 3); /* blocking again: read waits for the echo */
    ok("blocking DDP socket: MSG_DONTWAIT, FIONBIO and fcntl(O_NONBLOCK) give EAGAIN; blocking again after");
    SYS(close(b));
}

static void refused(void) {
    STEP("ECONNREFUSED");
    /* A port nobody listens on: bound (so no one else takes it), never listening. */
    int holder = SYS(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    SYS(bind(holder, (struct sockaddr *)&a, sizeof a));
    SYS(getsockname(holder, (struct sockaddr *)&a, &alen));
    int s = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    CHECK(r == -1 && errno == EINPROGRESS, "non-blocking DDP connect to a closed port -> %d (%s)", r, strerror(errno));
    struct pollfd p = {.fd = s, .events = POLLOUT};
    CHECK(poll(&p, 1, 10000) == 1 && (p.revents & (POLLOUT | POLLERR | POLLHUP)), "no poll event after refusal");
    int err = get_int(s, SOL_SOCKET, SO_ERROR);
    CHECK(err == ECONNREFUSED, "SO_ERROR after connecting to a closed port: %s, wanted ECONNREFUSED", strerror(err));
    ok("non-blocking DDP connect to a closed port: EINPROGRESS, poll revents %#x, SO_ERROR ECONNREFUSED", p.revents);
    close(s);
    s = SYS(socket(AF_INET, SOCK_STREAM, 0));
    set_int(s, SOL_ETA, ETA_DDPMODE, 1);
    EXPECT_ERR(connect(s, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    close(s);
    close(holder);
}

int main(int argc, char **argv) {
    prog = "ddp_nonblock";
    watchdog(120);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return serve_echo(2);
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_nonblock client";
        int port = atoi(argv[2]);
        nonblocking_connect(port);
        blocking_socket_nonblocking_calls(port);
        refused();
        printf("ddp_nonblock client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_nonblock server | client PORT\n");
    return 2;
}

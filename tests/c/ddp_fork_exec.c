/* ddp_fork_exec: DDP sockets across fork() and exec (include/eta.h).
 *
 *   ddp_fork_exec server        the common echo server for 1 connection (prints port).
 *   ddp_fork_exec client PORT   with a DDP connection open: a forked child gets EBADFD
 *                               on it (close() works, a plain socket works) and the
 *                               parent's connection keeps working after the child
 *                               exits; a child that does not close it; exec (of this
 *                               program under the shim, and of /bin/sh without it):
 *                               the DDP socket and a dup2 of it are gone in the new
 *                               image, while a plain socket passes (the control).
 *   ddp_fork_exec exec-check N LINK...  (internal) every fd N must not be LINK. */
#include "ddp_common.h"

#include <sys/wait.h>

extern char **environ;

/* What /proc/self/fd/N points to ("socket:[12345]"), or "" if N is not open. */
static const char *fd_link(int fd, char *buf, size_t len) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, buf, len - 1);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

/* In a forked child: a new DDP connection (a listener and a client of the child's
 * own) works: the child starts its own engine. */
static void new_ddp_pair_works(void) {
    int l = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    set_int(l, SOL_ETA, ETA_DDPMODE, 1);
    struct sockaddr_in a = loopback(0);
    socklen_t alen = sizeof a;
    SYS(bind(l, (struct sockaddr *)&a, sizeof a));
    SYS(listen(l, 1));
    SYS(getsockname(l, (struct sockaddr *)&a, &alen));
    int c = SYS(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
    set_int(c, SOL_ETA, ETA_DDPMODE, 1);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == -1 && errno == EINPROGRESS,
          "child: non-blocking DDP connect: %s", strerror(errno));
    struct pollfd p = {.fd = l, .events = POLLIN};
    CHECK(poll(&p, 1, 10000) == 1, "child: nothing to accept");
    int s = SYS(accept(l, NULL, NULL));
    int both[2] = {c, s};
    for (int i = 0; i < 2; i++) {
        struct pollfd q = {.fd = both[i], .events = POLLOUT};
        CHECK(poll(&q, 1, 10000) == 1 && (q.revents & POLLOUT) && !(q.revents & POLLHUP),
              "child: MPA setup of its own connection did not finish (revents %#x)", q.revents);
    }
    write_text(c, "made in the child");
    p.fd = s;
    CHECK(poll(&p, 1, 10000) == 1, "child: its own message never arrived");
    const char *got = read_text(s);
    CHECK(strcmp(got, "made in the child") == 0, "child: got \"%s\"", got);
    SYS(close(c));
    SYS(close(s));
    SYS(close(l));
}

static void wait_child(pid_t pid, const char *what) {
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child ended with status %#x", what, st);
}

/* A plain TCP connection over loopback within this process: write, read back. */
static void plain_socket_works(void) {
    int port;
    int l = listen_loopback(0, 1, &port);
    int c = SYS(socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = loopback(port);
    SYS(connect(c, (struct sockaddr *)&a, sizeof a));
    int s = SYS(accept(l, NULL, NULL));
    char buf[8] = {0};
    CHECK(write(c, "plain", 5) == 5 && read(s, buf, sizeof buf) == 5 && memcmp(buf, "plain", 5) == 0,
          "plain TCP socket in the child does not work");
    close(c), close(s), close(l);
}

static void fork_children(int c) {
    STEP("fork: child uses the DDP socket");
    fflush(stdout);
    pid_t pid = SYS(fork());
    if (pid == 0) {
        prog = "ddp_fork_exec child";
        ok_tag = "child ok";
        watchdog(30); /* a pending alarm does not pass fork() */
        char buf[64];
        struct eta_wc wc;
        EXPECT_ERR(read(c, buf, sizeof buf), EBADFD);
        EXPECT_ERR(write(c, "x", 1), EBADFD);
        EXPECT_ERR(recv(c, buf, sizeof buf, 0), EBADFD);
        EXPECT_ERR(send(c, "x", 1, 0), EBADFD);
        EXPECT_ERR(eta_post_send(c, 1, "x", 1, 0), EBADFD);
        EXPECT_ERR(eta_poll(c, &wc, 1), EBADFD);
        SYS(close(c));
        ok("close() of the inherited DDP socket -> 0");
        plain_socket_works();
        ok("a plain TCP socket works");
        new_ddp_pair_works();
        ok("a new DDP connection made in the child works (the child starts its own engine)");
        exit(0);
    }
    wait_child(pid, "child using the DDP socket");
    for (int i = 0; i < 3; i++) echo_once(c, 1000 + (size_t)i * 5000, 10 + (unsigned)i);
    ok("parent: 3 messages echoed after the child got EBADFD, closed its copy and exited");

    STEP("fork: child exits without closing");
    fflush(stdout);
    pid = SYS(fork());
    if (pid == 0) exit(0);
    wait_child(pid, "child exiting at once");
    echo_once(c, 777, 20);
    ok("parent: the connection works after a child that kept its copy exited");
}

static void exec_children(int c, const char *self) {
    STEP("exec");
    char ddp_link[256], dup_link[256], plain_link[256];
    int high = SYS(dup2(c, 200));
    int plain = SYS(socket(AF_INET, SOCK_STREAM, 0)); /* not close-on-exec */
    fd_link(c, ddp_link, sizeof ddp_link);
    fd_link(high, dup_link, sizeof dup_link);
    fd_link(plain, plain_link, sizeof plain_link);
    CHECK(ddp_link[0] && dup_link[0] && plain_link[0], "cannot read /proc/self/fd links");
    char fdc[16], fdh[16], fdp[16];
    snprintf(fdc, sizeof fdc, "%d", c);
    snprintf(fdh, sizeof fdh, "%d", high);
    snprintf(fdp, sizeof fdp, "%d", plain);

    /* This program again, under the shim: fds c and 200 must not be that socket;
     * fd `plain` must still be the plain socket. */
    fflush(stdout);
    pid_t pid = SYS(fork());
    if (pid == 0) {
        execl(self, self, "exec-check", fdc, ddp_link, fdh, dup_link, fdp, plain_link, (char *)NULL);
        _exit(127);
    }
    wait_child(pid, "exec of this program");
    ok("exec (shim loaded): the DDP socket (fd %d) and its dup2 (fd 200) are gone, the plain socket passed", c);

    /* /bin/sh without LD_PRELOAD: only the kernel's close-on-exec can have closed them. */
    char script[1024];
    snprintf(script, sizeof script,
             "[ \"$(readlink /proc/$$/fd/%d)\" != '%s' ] && [ \"$(readlink /proc/$$/fd/%d)\" != '%s' ] && "
             "[ \"$(readlink /proc/$$/fd/%d)\" = '%s' ]",
             c, ddp_link, high, dup_link, plain, plain_link);
    char *env[256];
    int ne = 0;
    for (char **e = environ; *e && ne < 255; e++)
        if (strncmp(*e, "LD_PRELOAD=", 11) != 0) env[ne++] = *e;
    env[ne] = NULL;
    fflush(stdout);
    pid = SYS(fork());
    if (pid == 0) {
        execle("/bin/sh", "sh", "-c", script, (char *)NULL, env);
        _exit(127);
    }
    wait_child(pid, "exec of /bin/sh without the shim");
    ok("exec (/bin/sh, no shim): the DDP socket and its dup2 are not in the new image, the plain socket is");
    SYS(close(high));
    SYS(close(plain));
    echo_once(c, 5000, 30);
    ok("parent: the connection works after the exec'd children exited");
}

static int exec_check(int argc, char **argv) {
    prog = "ddp_fork_exec exec-check";
    for (int i = 2; i + 1 < argc; i += 2) {
        int fd = atoi(argv[i]);
        char now[256];
        fd_link(fd, now, sizeof now);
        int plain = i + 2 >= argc; /* the last pair is the control */
        if (plain) CHECK(strcmp(now, argv[i + 1]) == 0, "plain socket fd %d did not pass exec (\"%s\")", fd, now);
        else CHECK(strcmp(now, argv[i + 1]) != 0, "DDP socket fd %d (%s) passed into the new image", fd, now);
    }
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_fork_exec";
    watchdog(120);
    if (argc >= 2 && strcmp(argv[1], "exec-check") == 0) return exec_check(argc, argv);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return serve_echo(1);
    if (argc == 3 && strcmp(argv[1], "client") == 0) {
        prog = "ddp_fork_exec client";
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
        self[n] = 0;
        STEP("connect");
        int c = connect_ddp(atoi(argv[2]));
        echo_once(c, 100, 1);
        ok("DDP connection open, one message echoed");
        fork_children(c);
        exec_children(c, self);
        SYS(close(c));
        printf("ddp_fork_exec client: %d checks ok\n", checks);
        return 0;
    }
    fprintf(stderr, "usage: ddp_fork_exec server | client PORT\n");
    return 2;
}

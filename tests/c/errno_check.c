/* errno_check: errno, SOL_ETA and "no extra thread", checked from C.
 * Prints one line per check and "errno_check: all ok"; exits 1 on any failure.
 * Run with and without libeta.so: the output must be identical. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eta.h"

static int failures;

static void expect(const char *what, long got, int err, long want, int want_err) {
    int ok = got == want && (want != -1 || err == want_err);
    printf("%s: %s -> %ld%s%s\n", ok ? "ok" : "FAIL", what, got, got == -1 ? " errno " : "",
           got == -1 ? strerror(err) : "");
    if (!ok) {
        printf("  wanted %ld errno %s\n", want, strerror(want_err));
        failures++;
    }
}

static int threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Sizes the compiler cannot see, so that -D_FORTIFY_SOURCE=2 calls glibc's
 * __read_chk, __recv_chk, __recvfrom_chk and __poll_chk. */
static volatile size_t len16 = 16;
static volatile nfds_t one_fd = 1;

int main(void) {
    char buf[16];
    long r;

    r = read(-1, buf, len16);
    expect("read(-1)", r, errno, -1, EBADF);
    r = recv(-1, buf, len16, 0);
    expect("recv(-1)", r, errno, -1, EBADF);
    r = recvfrom(-1, buf, len16, 0, NULL, NULL);
    expect("recvfrom(-1)", r, errno, -1, EBADF);
    r = write(-1, "x", 1);
    expect("write(-1)", r, errno, -1, EBADF);
    r = fcntl(-1, F_GETFL);
    expect("fcntl(-1, F_GETFL)", r, errno, -1, EBADF);
    int n = 0;
    r = ioctl(-1, FIONREAD, &n);
    expect("ioctl(-1, FIONREAD)", r, errno, -1, EBADF);
    r = close(-1);
    expect("close(-1)", r, errno, -1, EBADF);
    r = dup2(-1, 100);
    expect("dup2(-1, 100)", r, errno, -1, EBADF);

    /* A port nobody listens on: bound (so no one else takes it), never listening. */
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (holder < 0 || bind(holder, (struct sockaddr *)&a, sizeof a) || getsockname(holder, (struct sockaddr *)&a, &alen)) {
        perror("holder");
        return 1;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    r = connect(s, (struct sockaddr *)&a, sizeof a);
    expect("connect(closed port)", r, errno, -1, ECONNREFUSED);
    close(s);

    /* SOL_ETA on a socket that is not TCP: the kernel's answer, with or without
     * the shim (on TCP sockets the shim answers; see the DDP tests). */
    s = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    r = setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one);
    expect("setsockopt(UDP, SOL_ETA, ETA_DDPMODE)", r, errno, -1, ENOPROTOOPT);
    close(s);
    s = socket(AF_INET, SOCK_STREAM, 0);

    /* A successful call leaves errno alone. */
    errno = 4242;
    r = fcntl(s, F_GETFL);
    expect("fcntl(F_GETFL) succeeds", r >= 0 ? 0 : r, errno, 0, 0);
    expect("errno untouched by a successful call", errno, 0, 4242, 0);
    errno = 4243;
    r = setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    expect("setsockopt(SO_REUSEADDR)", r, errno, 0, 0);
    expect("errno untouched by a successful setsockopt", errno, 0, 4243, 0);

    struct pollfd p[1] = {{.fd = s, .events = POLLOUT}};
    r = poll(p, one_fd, 0);
    expect("poll(unconnected socket)", r, errno, 1, 0);
    close(s);
    close(holder);

    expect("threads in this process", threads(), 0, 1, 0);

    if (failures) {
        printf("errno_check: %d failed\n", failures);
        return 1;
    }
    printf("errno_check: all ok\n");
    return 0;
}

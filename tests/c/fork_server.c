/* fork_server: an echo server with two acceptor threads that forks a child per
 * connection. Listens on 127.0.0.1 (port 0: the kernel picks), prints the port on
 * the first line of stdout, and serves until killed. The child echoes with
 * read/recv/recvfrom (one each, in turn) and write/send, waiting with poll. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener;
/* Sizes the compiler cannot see, so that -D_FORTIFY_SOURCE=2 calls glibc's
 * __read_chk, __recv_chk, __recvfrom_chk and __poll_chk. */
static volatile size_t chunk = 8192;
static volatile nfds_t one_fd = 1;

static int send_all(int fd, const char *p, size_t n, int use_send) {
    while (n > 0) {
        ssize_t w = use_send ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void serve(int fd) {
    char buf[8192];
    unsigned turn = 0;
    for (;;) {
        struct pollfd p[1] = {{.fd = fd, .events = POLLIN}};
        int pr = poll(p, one_fd, 10000);
        if (pr <= 0) _exit(pr == 0 ? 3 : 4);
        ssize_t n;
        switch (turn++ % 3) {
        case 0: n = read(fd, buf, chunk); break;
        case 1: n = recv(fd, buf, chunk, 0); break;
        default: n = recvfrom(fd, buf, chunk, 0, NULL, NULL); break;
        }
        if (n == 0) _exit(0);
        if (n < 0) {
            if (errno == EINTR) continue;
            _exit(5);
        }
        if (send_all(fd, buf, (size_t)n, turn & 1)) _exit(6);
    }
}

static void *acceptor(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("accept");
            exit(1);
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(listener);
            serve(c);
        }
        if (pid < 0) perror("fork");
        close(c);
    }
    return NULL;
}

int main(void) {
    signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
    listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) || listen(listener, 64) ||
        getsockname(listener, (struct sockaddr *)&a, &len)) {
        perror("listen");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, acceptor, NULL);
    pthread_join(t[0], NULL);
    return 0;
}

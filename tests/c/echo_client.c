/* echo_client PORT CONNECTIONS MESSAGES: CONNECTIONS threads, each sends MESSAGES
 * messages of 1..4096 octets (a pattern that depends on thread and message) to
 * 127.0.0.1:PORT and checks the echo octet for octet. Prints
 * "echo_client: N messages, B octets ok" and exits 0, or explains and exits 1. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int port, messages;
static long long total_octets;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *client(void *arg) {
    long id = (long)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static __thread char out[4096], in[4096];
    long long octets = 0;
    for (int m = 0; m < messages; m++) {
        size_t len = 1 + (size_t)((m * 997 + id * 131) % 4096);
        for (size_t i = 0; i < len; i++) out[i] = (char)(i * 7 + m + id);
        /* Half the messages go out with writev in two pieces, half with send. */
        if (m & 1) {
            struct iovec iov[2] = {{out, len / 2}, {out + len / 2, len - len / 2}};
            if (writev(s, iov, 2) != (ssize_t)len) { perror("writev"); exit(1); }
        } else if (send(s, out, len, 0) != (ssize_t)len) {
            perror("send");
            exit(1);
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = (m & 2) ? read(s, in + got, len - got) : recv(s, in + got, len - got, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                fprintf(stderr, "echo_client: connection %ld message %d: %s\n", id, m, n ? strerror(errno) : "closed");
                exit(1);
            }
            got += (size_t)n;
        }
        if (memcmp(in, out, len)) {
            fprintf(stderr, "echo_client: connection %ld message %d: echo differs\n", id, m);
            exit(1);
        }
        octets += (long long)len;
    }
    shutdown(s, SHUT_WR);
    char c;
    if (recv(s, &c, 1, 0) != 0) { fprintf(stderr, "echo_client: no EOF\n"); exit(1); }
    close(s);
    pthread_mutex_lock(&lock);
    total_octets += octets;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: echo_client PORT CONNECTIONS MESSAGES\n");
        return 2;
    }
    port = atoi(argv[1]);
    int conns = atoi(argv[2]);
    messages = atoi(argv[3]);
    pthread_t t[64];
    if (conns < 1 || conns > 64) return 2;
    for (long i = 0; i < conns; i++) pthread_create(&t[i], NULL, client, (void *)i);
    for (int i = 0; i < conns; i++) pthread_join(t[i], NULL);
    printf("echo_client: %d messages, %lld octets ok\n", conns * messages, total_octets);
    return 0;
}

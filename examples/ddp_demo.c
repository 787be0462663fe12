/* ddp_demo: two processes talk iWARP through libeta.so with nothing but sockets and
 * include/eta.h. Run by scripts/demo.sh:
 *
 *     LD_PRELOAD=libeta.so ./ddp_demo server PORT      (prints what it saw)
 *     LD_PRELOAD=libeta.so ./ddp_demo client PORT
 *
 * The server switches its listening socket to DDP mode; the client switches its
 * socket before connect(). Then: messages with write()/read() (one write is one
 * message), the negotiated MPA parameters, a registered buffer advertised by the
 * server and filled by the client with one RDMA Write, and an RDMA Read back. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "eta.h"

#define REGION 4096

static void die(const char *what) {
    fprintf(stderr, "ddp_demo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int opt(int fd, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (getsockopt(fd, SOL_ETA, name, &v, &len) != 0) die("getsockopt(SOL_ETA)");
    return v;
}

/* One whole message into buf (NUL-terminated); its length. */
static size_t get(int fd, char *buf, size_t cap) {
    ssize_t n = read(fd, buf, cap - 1);
    if (n < 0) die("read");
    buf[n] = 0;
    return (size_t)n;
}

static void put(int fd, const char *text) {
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die("write");
}

static struct eta_wc wait_one(int fd) {
    struct eta_wc wc;
    if (eta_wait(fd, &wc, 1, 10000) != 1) die("eta_wait");
    if (wc.status != 0) {
        errno = wc.status;
        die("work completion");
    }
    return wc;
}

static void server(int port) {
    int one = 1;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0) die("socket");
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(l, SOL_ETA, ETA_DDPMODE, &one, sizeof one) != 0)
        die("setsockopt(SOL_ETA, ETA_DDPMODE): is libeta.so preloaded?");
    const char *pd = "eta demo server";
    setsockopt(l, SOL_ETA, ETA_PRIVATE_DATA, pd, strlen(pd));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4)) die("bind/listen");
    printf("server: listening on 127.0.0.1:%d in DDP mode\n", port);
    fflush(stdout);

    int s = accept(l, NULL, NULL);
    if (s < 0) die("accept");
    printf("server: accepted an iWARP connection: MPA rev %d, CRC %s, markers %s, IRD %d, ORD %d\n",
           opt(s, ETA_MPA_REV), opt(s, ETA_CRC) ? "on" : "off", opt(s, ETA_MARKERS) ? "on" : "off", opt(s, ETA_IRD),
           opt(s, ETA_ORD));

    char msg[256];
    for (int i = 0; i < 3; i++) {
        size_t n = get(s, msg, sizeof msg);
        printf("server: message %d (%zu octets): \"%s\"\n", i + 1, n, msg);
        char reply[300];
        snprintf(reply, sizeof reply, "echo: %s", msg);
        put(s, reply);
    }

    /* A buffer the client may write into and read from, advertised in a message. */
    static char region[REGION] __attribute__((aligned(64)));
    memset(region, '.', sizeof region);
    uint32_t stag = eta_reg_mr(s, region, sizeof region, ETA_ACCESS_REMOTE_WRITE | ETA_ACCESS_REMOTE_READ);
    if (!stag) die("eta_reg_mr");
    snprintf(msg, sizeof msg, "region %u %llu %d", stag, (unsigned long long)(uintptr_t)region, REGION);
    put(s, msg);
    printf("server: registered %d octets as STag %#x and told the client\n", REGION, stag);

    /* The client's RDMA Write lands with no action here; its next Send says so. */
    get(s, msg, sizeof msg);
    printf("server: client says \"%s\"; the region now starts with \"%.40s\"\n", msg, region);
    get(s, msg, sizeof msg);
    printf("server: client says \"%s\"\n", msg);
    if (eta_dereg_mr(s, stag)) die("eta_dereg_mr");
    if (get(s, msg, sizeof msg) == 0) printf("server: the client closed the connection\n");
    close(s);
    close(l);
}

static void client(int port) {
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one) != 0)
        die("setsockopt(SOL_ETA, ETA_DDPMODE): is libeta.so preloaded?");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a)) die("connect");
    char pd[64] = {0};
    socklen_t pdlen = sizeof pd - 1;
    getsockopt(s, SOL_ETA, ETA_PRIVATE_DATA, pd, &pdlen);
    printf("client: connected; the server's MPA private data says \"%s\"\n", pd);

    const char *words[] = {"hello", "iWARP over plain TCP", "third message"};
    char msg[300];
    for (int i = 0; i < 3; i++) {
        put(s, words[i]);
        get(s, msg, sizeof msg);
        printf("client: sent \"%s\", got \"%s\"\n", words[i], msg);
    }

    unsigned stag;
    unsigned long long addr;
    int len;
    get(s, msg, sizeof msg);
    if (sscanf(msg, "region %u %llu %d", &stag, &addr, &len) != 3) die("the server's region message");
    printf("client: the server offers %d octets at STag %#x\n", len, stag);

    static char text[] = "written by the client with one RDMA Write";
    if (eta_rdma_write(s, 1, text, sizeof text - 1, stag, addr)) die("eta_rdma_write");
    struct eta_wc wc = wait_one(s);
    printf("client: RDMA Write of %u octets completed\n", wc.byte_len);
    put(s, "I wrote into your region");

    static char back[64] __attribute__((aligned(64)));
    uint32_t lstag = eta_reg_mr(s, back, sizeof back, ETA_ACCESS_LOCAL_WRITE);
    if (!lstag) die("eta_reg_mr");
    if (eta_rdma_read(s, 2, back, sizeof text - 1, lstag, stag, addr)) die("eta_rdma_read");
    wc = wait_one(s);
    printf("client: RDMA Read of %u octets brought back \"%.*s\"\n", wc.byte_len, (int)wc.byte_len, back);
    put(s, memcmp(back, text, sizeof text - 1) == 0 ? "read back what I wrote" : "read back something else");
    eta_dereg_mr(s, lstag);
    close(s);
    printf("client: closed\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: ddp_demo server|client PORT\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int port = atoi(argv[2]);
    if (strcmp(argv[1], "server") == 0) server(port);
    else client(port);
    return 0;
}

/* bench_connect.c - connection cycles with default options (no TCP_NODELAY): the
 * client, `count` times (or until `max_secs` have passed), makes a socket, connects,
 * writes one `size`-octet message, reads the echo and closes; the server accepts,
 * reads, echoes and closes. The client's last message says it is the last (LAST set
 * in its stamps), so the server ends with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "bench.h"

#define LAST (1ull << 63)

void connect_server(const struct params *p, int l, int report_fd, int own_cpu) {
    double c0 = cpu_now();
    uint8_t *buf = xmalloc(p->size + SLACK);
    for (long i = 0; i < p->count; i++) {
        int s = accept(l, NULL, NULL);
        if (s < 0) die("accept");
        if (get(p, s, buf, p->size)) check_failed("connect: the client closed without a message");
        uint64_t id;
        memcpy(&id, buf, 8);
        int last = (id & LAST) != 0;
        check_msg(buf, p->size, (uint64_t)i | (last ? LAST : 0), 1, "connect request");
        put(s, buf, p->size);
        /* This process exits after the last cycle: it waits for the client's close
         * first, so that the echo has gone out (libeta.so's background close of a
         * DDP socket does not outlive the process, unlike the kernel's for TCP). */
        if (last)
            while (read(s, buf, p->size + SLACK) > 0) {
            }
        close(s);
        if (last) break;
    }
    dprintf(report_fd, "cpu=%.6f\n", own_cpu ? cpu_now() - c0 : 0.0);
    free(buf);
}

struct result connect_client(const struct params *p, int port) {
    uint8_t *out = xmalloc(p->size), *in = xmalloc(p->size + SLACK);
    fill_pattern(out, p->size);
    struct result r = {0};
    double c0 = cpu_now(), t0 = now();
    long i;
    for (i = 0; i < p->count; i++) {
        int last = i + 1 == p->count || now() - t0 > p->max_secs;
        int s = connect_loopback(p, port);
        uint64_t id = (uint64_t)i | (last ? LAST : 0);
        stamp(out, p->size, id);
        put(s, out, p->size);
        if (get(p, s, in, p->size)) check_failed("connect: the server closed without an echo");
        check_msg(in, p->size, id, 1, "connect echo");
        close(s);
        if (last) break;
    }
    r.secs = now() - t0;
    r.cpu_client = cpu_now() - c0;
    r.work = (double)(i + 1);
    free(out);
    free(in);
    return r;
}

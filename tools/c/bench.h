/* bench.h - the shared parts of eta_sock_bench (see eta_sock_bench.c for usage).
 *
 * Every measure has a server half and a client half. They run in two processes (the
 * client forks and execs the server: each has its own engine when libeta.so is
 * preloaded) or, with --one-process, in two threads of one process. The only
 * eta-specific line of the whole program is the SOL_ETA/ETA_DDPMODE switch in
 * prepare(), taken in ddp mode only; everything else is plain sockets. */
#ifndef ETA_SOCK_BENCH_H
#define ETA_SOCK_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Octets of slack a DDP-mode read buffer has beyond the expected message, so that a
 * read which returned more than one message (or a wrong length) is caught. */
#define SLACK 64
/* Fatal-time-out of every process, seconds: nothing waits longer than this. */
#define HARD_LIMIT_SECS 600

/* What a run measures, and with what sizes (the same for client and server). */
struct params {
    int ddp;            /* both ends switch their sockets to DDP mode */
    int nodelay;        /* set TCP_NODELAY (all measures but connect) */
    const char *measure; /* stream | rtt | rr | connect */
    size_t size;        /* message (stream, rtt, connect) or request (rr) octets */
    size_t resp;        /* rr: response octets */
    uint64_t total;     /* stream: octets to move */
    long count;         /* rtt: round trips; rr: requests per connection; connect: cycles */
    int conns;          /* rr: connections */
    double max_secs;    /* connect: stop (cleanly) after this long */
};

/* What a client half measured. */
struct result {
    double secs;        /* wall-clock time of the measured part */
    double work;        /* octets, round trips, requests or cycles done */
    double p50_us, p99_us; /* latencies (0 if not measured) */
    double cpu_client;  /* CPU seconds of the client process (or of the whole
                         * process with --one-process) over the measured part */
};

/* A server half: serves one run on listening socket `l`, then writes
 * "cpu=SECONDS\n" (its own CPU over the run, or 0 when `own_cpu` is 0) to
 * `report_fd`. Dies (exit 1) on any error or failed data check. */
typedef void server_fn(const struct params *p, int l, int report_fd, int own_cpu);
/* A client half: runs against 127.0.0.1:`port`. Dies on any error or failed check. */
typedef struct result client_fn(const struct params *p, int port);

server_fn stream_server, rtt_server, rr_server, connect_server;
client_fn stream_client, rtt_client, rr_client, connect_client;

/* Prints "eta_sock_bench: WHAT: strerror(errno)" and exits 1. */
_Noreturn void die(const char *what);
/* Prints "eta_sock_bench: data check failed: WHAT" and exits 1. */
_Noreturn void check_failed(const char *what);
/* Monotonic time in seconds. */
double now(void);
/* CPU seconds (user + system, all threads) of this process so far. */
double cpu_now(void);
/* Sets TCP_NODELAY if asked and, in ddp mode, switches `s` to DDP mode. */
void prepare(const struct params *p, int s);
/* A socket listening on 127.0.0.1 on a free port (prepared), and its port. */
int listen_loopback(const struct params *p, int backlog, int *port);
/* A prepared socket connected to 127.0.0.1:`port`. */
int connect_loopback(const struct params *p, int port);
/* Writes all n octets (one write = one message in DDP mode); waits in poll if the
 * socket is non-blocking and full. */
void put(int s, const void *buf, size_t n);
/* Reads one n-octet message: exactly n octets on TCP; in DDP mode one read, which
 * must return the whole message (buf holds n + SLACK octets). Returns 0, or -1 if
 * the peer closed before the first octet. */
int get(const struct params *p, int s, void *buf, size_t n);
/* Fills buf with the test pattern. */
void fill_pattern(uint8_t *buf, size_t n);
/* Stamps `seq` into the first and the last 8 octets of a message (n >= 16). */
void stamp(uint8_t *buf, size_t n, uint64_t seq);
/* Checks the stamps (and, if `full`, the pattern between them); dies on mismatch. */
void check_msg(const uint8_t *buf, size_t n, uint64_t seq, int full, const char *what);
/* Sorts v[0..n) and returns its q-quantile (0 <= q < 1). */
double quantile(double *v, size_t n, double q);
/* malloc that dies on failure. */
void *xmalloc(size_t n);

#endif

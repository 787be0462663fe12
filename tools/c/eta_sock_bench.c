/* eta_sock_bench: what a sockets program gets from a DDP socket, against the same
 * program on plain TCP, over 127.0.0.1.
 *
 *   eta_sock_bench [--one-process] tcp|ddp MEASURE [KEY=VALUE ...]
 *
 * MEASURE (and its keys, with their defaults):
 *   stream   size=65536 total=268435456  write `total` octets in `size`-octet writes
 *   rtt      size=64 count=20000          ping-pong round trips of `size` octets
 *   rr       size=64 resp=1024 conns=20 count=1000
 *                                         request/response, `conns` connections
 *                                         closed-loop, `count` requests each
 *   connect  size=64 count=3000 secs=60   connect, one message each way, close
 *                                         (default options: no TCP_NODELAY)
 * The client (this process) forks and execs the server (`--serve`, same arguments),
 * so each end has its own process and, under LD_PRELOAD=libeta.so, its own engine;
 * with --one-process the server is a thread of this process instead. `ddp` switches
 * every socket with SOL_ETA/ETA_DDPMODE (libeta.so must be preloaded); `tcp` leaves
 * them plain. Prints one line of KEY=VALUE results, including the CPU seconds (user
 * + system, all threads) of both processes over the measured part. Exits non-zero on
 * any error or failed data check (message length, boundaries in DDP mode, content).
 * scripts/sock-bench.sh runs it alternately on tcp, tcp under the shim and ddp. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

struct measure {
    const char *name;
    server_fn *server;
    client_fn *client;
    struct params defaults;
    const char *cpu_unit; /* what the CPU seconds are divided by */
    double unit;          /* result.work per cpu_unit */
};

static const struct measure measures[] = {
    {"stream", stream_server, stream_client, {.nodelay = 1, .size = 65536, .total = 256u << 20}, "GB", 1e9},
    {"rtt", rtt_server, rtt_client, {.nodelay = 1, .size = 64, .count = 20000}, "1k_rtt", 1e3},
    {"rr", rr_server, rr_client, {.nodelay = 1, .size = 64, .resp = 1024, .conns = 20, .count = 1000}, "1k_req", 1e3},
    {"connect", connect_server, connect_client, {.size = 64, .count = 3000, .max_secs = 60}, "1k_cycles", 1e3},
};

static _Noreturn void usage(void) {
    fprintf(stderr, "usage: eta_sock_bench [--one-process] tcp|ddp stream|rtt|rr|connect [size=N] [resp=N] "
                    "[total=N] [count=N] [conns=N] [secs=S]\n");
    exit(2);
}

static const struct measure *parse(int argc, char **argv, struct params *p) {
    if (argc < 2 || (strcmp(argv[0], "tcp") && strcmp(argv[0], "ddp"))) usage();
    const struct measure *m = NULL;
    for (size_t i = 0; i < sizeof measures / sizeof *measures; i++)
        if (!strcmp(argv[1], measures[i].name)) m = &measures[i];
    if (!m) usage();
    *p = m->defaults;
    p->measure = m->name;
    p->ddp = !strcmp(argv[0], "ddp");
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) usage();
        const char *v = eq + 1;
        size_t klen = (size_t)(eq - argv[i]);
        if (!strncmp(argv[i], "size", klen)) p->size = strtoull(v, NULL, 0);
        else if (!strncmp(argv[i], "resp", klen)) p->resp = strtoull(v, NULL, 0);
        else if (!strncmp(argv[i], "total", klen)) p->total = strtoull(v, NULL, 0);
        else if (!strncmp(argv[i], "count", klen)) p->count = strtol(v, NULL, 0);
        else if (!strncmp(argv[i], "conns", klen)) p->conns = atoi(v);
        else if (!strncmp(argv[i], "secs", klen)) p->max_secs = atof(v);
        else usage();
    }
    if (p->size < 16 || (!strcmp(m->name, "rr") && p->resp < 16)) {
        fprintf(stderr, "eta_sock_bench: messages carry two 8-octet stamps: size and resp must be >= 16\n");
        exit(2);
    }
    int stream = !strcmp(m->name, "stream"), rr = !strcmp(m->name, "rr");
    if ((!stream && p->count < 1) || (rr && (p->conns < 1 || p->conns > 1000)) || (stream && p->total < p->size))
        usage();
    return m;
}

struct thread_args {
    const struct measure *m;
    const struct params *p;
    int l, report_fd;
};

static void *server_thread(void *arg) {
    struct thread_args *a = arg;
    a->m->server(a->p, a->l, a->report_fd, 0);
    close(a->report_fd);
    return NULL;
}

/* Reads "KEY=VALUE\n" from the server's report, or dies. */
static double read_report(FILE *f, const char *key) {
    char line[128];
    size_t n = strlen(key);
    if (!fgets(line, sizeof line, f) || strncmp(line, key, n) || line[n] != '=') {
        fprintf(stderr, "eta_sock_bench: the server did not report %s\n", key);
        exit(1);
    }
    return atof(line + n + 1);
}

int main(int argc, char **argv) {
    alarm(HARD_LIMIT_SECS);
    int serve = argc > 1 && !strcmp(argv[1], "--serve");
    int one_process = argc > 1 && !strcmp(argv[1], "--one-process");
    int first = 1 + (serve || one_process);
    struct params p;
    const struct measure *m = parse(argc - first, argv + first, &p);
    int port;
    if (serve) {
        int l = listen_loopback(&p, 128, &port);
        printf("port=%d\n", port);
        fflush(stdout);
        m->server(&p, l, STDOUT_FILENO, 1);
        close(l);
        return 0;
    }

    int rep[2];
    if (pipe(rep)) die("pipe");
    pthread_t t;
    struct thread_args ta;
    pid_t pid = -1;
    if (one_process) {
        ta = (struct thread_args){m, &p, listen_loopback(&p, 128, &port), rep[1]};
        if (pthread_create(&t, NULL, server_thread, &ta)) die("pthread_create");
    } else {
        pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (dup2(rep[1], STDOUT_FILENO) < 0) die("dup2");
            close(rep[0]);
            close(rep[1]);
            /* The same arguments, with "--serve" in front (argv[argc] is NULL). */
            char **args = xmalloc(sizeof *args * (size_t)(argc + 2));
            args[0] = argv[0];
            args[1] = "--serve";
            memcpy(args + 2, argv + 1, sizeof *args * (size_t)argc);
            execv("/proc/self/exe", args);
            die("exec");
        }
        close(rep[1]);
    }
    FILE *f = fdopen(rep[0], "r");
    if (!f) die("fdopen");
    if (!one_process) port = (int)read_report(f, "port");

    struct result r = m->client(&p, port);
    double cpu_server = read_report(f, "cpu");
    fclose(f);
    if (one_process) {
        pthread_join(t, NULL);
        close(ta.l);
    } else {
        int status;
        if (waitpid(pid, &status, 0) != pid) die("waitpid");
        if (!WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "eta_sock_bench: the server failed (status %#x)\n", status);
            return 1;
        }
    }

    printf("measure=%s mode=%s procs=%d size=%zu secs=%.6f work=%.0f", m->name, p.ddp ? "ddp" : "tcp",
           one_process ? 1 : 2, p.size, r.secs, r.work);
    if (!strcmp(m->name, "stream")) printf(" MBps=%.2f", r.work / r.secs / 1e6);
    if (!strcmp(m->name, "rr")) printf(" conns=%d resp=%zu req_per_s=%.1f", p.conns, p.resp, r.work / r.secs);
    if (!strcmp(m->name, "connect")) printf(" us_per_cycle=%.2f", r.secs / r.work * 1e6);
    if (r.p50_us > 0) printf(" p50_us=%.2f p99_us=%.2f", r.p50_us, r.p99_us);
    double cpu = r.cpu_client + cpu_server;
    printf(" cpu_client=%.4f cpu_server=%.4f cpu=%.4f cpu_per_%s=%.5f\n", r.cpu_client, cpu_server, cpu,
           m->cpu_unit, cpu / (r.work / m->unit));
    return 0;
}

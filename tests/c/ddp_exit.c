/* ddp_exit: a DDP socket program that writes and leaves loses nothing, as on TCP
 * (include/eta.h, "Closing and leaving").
 *
 *   ddp_exit server HOW     listens (DDP), prints the port, accepts one connection,
 *                           writes MESSAGES messages of SIZE octets (far more than
 *                           TCP's buffers hold while the client sleeps), then leaves:
 *                             close-_exit     close(), then _exit(0)
 *                             exit            exit(0) without close()
 *                             nonblock-exit   O_NONBLOCK, close(), then exit(0)
 *   ddp_exit client PORT    connects (DDP), sleeps 500 ms so that the server leaves
 *                           with messages still queued in its engine, then reads
 *                           every message, checks length and content, then reads
 *                           the end of the stream. */
#include "ddp_common.h"

#define MESSAGES 32
#define SIZE (1u << 20)

static int server(const char *how) {
    int port;
    int l = listen_loopback(1, 4, &port);
    announce_port(port);
    STEP("server: accept");
    int s = accept(l, NULL, NULL);
    if (s < 0) FAIL("accept: %s", strerror(errno));
    char *buf = malloc(SIZE);
    CHECK(buf != NULL, "malloc");
    STEP("server: write");
    for (unsigned m = 0; m < MESSAGES; m++) {
        fill(buf, SIZE, 0, m + 1);
        write_message(s, buf, SIZE);
    }
    printf("server: %u messages of %u octets written, leaving by %s\n", MESSAGES, SIZE, how);
    fflush(stdout);
    STEP("server: leave");
    if (strcmp(how, "close-_exit") == 0) {
        SYS(close(s));
        _exit(0);
    } else if (strcmp(how, "exit") == 0) {
        exit(0);
    } else if (strcmp(how, "nonblock-exit") == 0) {
        SYS(fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK));
        SYS(close(s));
        exit(0);
    }
    FAIL("unknown way to leave \"%s\"", how);
}

static int client(int port) {
    int s = connect_ddp(port);
    char *buf = malloc(SIZE + 1);
    CHECK(buf != NULL, "malloc");
    usleep(500 * 1000);
    STEP("client: read");
    for (unsigned m = 0; m < MESSAGES; m++) {
        size_t n = read_message(s, buf, SIZE + 1);
        CHECK(n == SIZE, "message %u: %zu octets, wanted %u", m, n, SIZE);
        long at = mismatch(buf, n, 0, m + 1);
        CHECK(at < 0, "message %u differs at octet %ld", m, at);
    }
    ok("%u messages of %u octets, each intact", MESSAGES, SIZE);
    STEP("client: end of stream");
    ssize_t r = read(s, buf, SIZE);
    CHECK(r == 0, "after the last message read() -> %zd (%s), wanted 0", r, r < 0 ? strerror(errno) : "data");
    ok("then the end of the stream");
    close(s);
    printf("%s: %d checks ok\n", prog, checks);
    return 0;
}

int main(int argc, char **argv) {
    prog = "ddp_exit";
    watchdog(60);
    if (argc == 3 && strcmp(argv[1], "server") == 0) return server(argv[2]);
    if (argc == 3 && strcmp(argv[1], "client") == 0) return client(atoi(argv[2]));
    fprintf(stderr, "usage: ddp_exit server close-_exit|exit|nonblock-exit | ddp_exit client PORT\n");
    return 2;
}

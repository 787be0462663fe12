/* eta.h - the C API of libeta.so (eta: iWARP in user space).
 *
 * Load libeta.so with LD_PRELOAD (or link with `pkg-config --libs eta`). Sockets that
 * never ask for DDP mode behave exactly as without it. A TCP socket switched to DDP
 * mode carries RDMAP/DDP/MPA (RFC 5040/5041/5044/6581) and gains the calls below.
 *
 *     int one = 1;
 *     if (setsockopt(fd, SOL_ETA, ETA_DDPMODE, &one, sizeof one) != 0)
 *         ... errno ENOPROTOOPT: libeta.so is not loaded ...
 *
 * Where to switch:
 *   - before connect():  this side is the MPA Initiator; connect() returns once the
 *     MPA exchange is done (blocking socket) or EINPROGRESS (non-blocking: the socket
 *     becomes writable when the connection is in Full Operation, and SO_ERROR then
 *     says whether setup failed);
 *   - on a listening socket (before or after listen()): accept() returns DDP sockets.
 *     A blocking accept() returns after the MPA exchange (a client that fails setup is
 *     closed and the next one is waited for); with a non-blocking listening socket
 *     accept() returns at once and the new socket becomes writable when its MPA
 *     exchange is done (or hangs up, with SO_ERROR, if it failed);
 *   - on a connected TCP socket: the side that called connect() is the Initiator.
 *     The call returns after the MPA exchange. No application data may have been
 *     exchanged on the connection before (the MPA Request must be the first octets).
 * With MPA revision 1 (ETA_MPA_REV 1) the Initiator must send the first message: the
 * Responder may send nothing before it has received one (RFC 5044). Revision 2, the
 * default, lifts this with an RTR message sent at setup (RFC 6581).
 *
 * On a DDP socket:
 *   - write/send/sendto/sendmsg/writev: one call = one RDMAP Send message; the buffer
 *     is free again when the call returns. Messages are copied, except that a blocking
 *     write/send of one buffer of at least 128 KiB on a socket without SO_SNDTIMEO is
 *     sent straight from the caller's buffer and returns when the engine has handed
 *     its last octet to TCP. A message is at most
 *     ETA_MAX_MESSAGE octets; writing 0 octets sends nothing, as on TCP (send empty
 *     messages with eta_post_send). The socket is writable while a message can be
 *     queued (up to 4 MiB of copied messages and 1024 requests wait to be sent).
 *   - read/recv/recvfrom/recvmsg/readv: return octets of ONE message: a message that
 *     fits the buffer is returned whole; a longer one is returned over several calls
 *     (nothing is lost). recvmsg sets MSG_EOR in msg_flags on the call that returns a
 *     message's last octet. MSG_PEEK, MSG_DONTWAIT, MSG_WAITALL (wait for the whole
 *     buffer or the end of the message, whichever comes first) and O_NONBLOCK (EAGAIN)
 *     work as for sockets. 0 = the peer closed the connection gracefully.
 *     Messages land here only when no eta_post_recv() buffer is waiting.
 *   - poll/select/epoll: the fd stays a real fd. POLLIN = a message (or its first part,
 *     for messages larger than the receive buffer), a completion on the socket's own
 *     completion queue, or end of connection; POLLOUT = a message can be queued;
 *     POLLHUP/POLLRDHUP = the connection is over. Level-, edge-triggered and one-shot
 *     epoll work, in any number of epoll sets; a socket registered with epoll before it
 *     switched keeps its registration (same events and data).
 *   - close, shutdown, dup/dup2/dup3, fcntl (O_NONBLOCK, F_DUPFD*), ioctl (FIONBIO,
 *     FIONREAD = octets of the current message that are ready), getsockname,
 *     getpeername, getsockopt/setsockopt at SOL_SOCKET/IPPROTO_TCP work (on the TCP
 *     connection).
 *   - Blocking read and write calls wait as on a TCP socket: SO_RCVTIMEO and
 *     SO_SNDTIMEO (set before or after the switch) bound the wait, then EAGAIN; a
 *     signal handler installed with SA_RESTART does not end the wait, one without it
 *     ends it with EINTR (with a time-out set, every handler does), and nothing of a
 *     message is taken or lost by an interrupted call. A blocking read that finds
 *     nothing ready lends its buffer to the engine, which may place the next message
 *     straight into it; an interrupted read takes nothing even then. The one
 *     exception to EINTR: a write sent straight from the caller's buffer (above) is
 *     committed once posted, so signal handlers run while it waits and it returns
 *     the full length when the message has gone out (or -1 with the connection's
 *     errno if the connection ended before it did).
 *     shutdown(SHUT_WR or SHUT_RDWR) closes gracefully: queued messages first, then FIN.
 *     close() of the last fd closes gracefully: queued messages first, then FIN.
 *     Closing and leaving: a blocking socket's close() returns once the engine has
 *     written every queued message and the FIN to TCP (at most 5 s), so that, as
 *     after a TCP close(), the kernel owns what is left and the process may leave at
 *     once, even by _exit(); a non-blocking socket's close() returns at once and the
 *     engine goes on in the background. At exit() the shim closes every DDP socket
 *     still open and waits, at most 5 s in all, until the engine has written what
 *     was queued on them and on sockets closed without waiting; only a process that
 *     leaves by _exit(), exec() or a signal with messages still queued loses them.
 *     If the socket was used with eta_post_*, eta_rdma_* or eta_reg_mr, close()
 *     first waits until the engine no longer touches the program's memory (the
 *     graceful close, at most 5 s, then the connection is reset and close() waits
 *     for the engine to let go after the reset).
 *     A DDP socket is always close-on-exec: it does not pass into a new program image.
 *   - fork(): the parent's DDP sockets are unaffected. In the child, every call on an
 *     inherited DDP socket fails with EBADFD, except close(), which only drops the
 *     child's reference. New DDP sockets made in the child work.
 *
 * Errors of DDP sockets (errno from read/write/eta_* calls, and SO_ERROR):
 *   ECONNREFUSED  the peer rejected MPA setup;      ETIMEDOUT  setup or dead-peer time-out;
 *   ECONNRESET    the peer reset, closed during setup, or sent a Terminate;
 *   EPROTO        the peer violated the protocol (this end sent a Terminate) or sent a
 *                 malformed MPA frame;
 *   EOPNOTSUPP    the two ends could not agree (markers, RTR, IRD/ORD);
 *   EPIPE         write after the connection ended (no SIGPIPE is raised);
 *   ENOTCONN      not connected yet (a call that needs Full Operation);
 *   EBADFD        a DDP socket inherited across fork().
 * getsockopt(fd, SOL_ETA, ETA_ERROR, ...) gives the whole story as text, including a
 * decoded Terminate.
 */
#ifndef ETA_H
#define ETA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The setsockopt/getsockopt level of eta's options (no Linux protocol level uses it,
 * so without libeta.so the kernel answers ENOPROTOOPT). */
#define SOL_ETA 0x4554

/* ---- SOL_ETA options -----------------------------------------------------------
 * Set: on a TCP socket before it switches to DDP mode (before connect(), or on the
 * listening socket, whose accepted sockets inherit them). Setting one (ETA_DDPMODE
 * included) once the socket has switched (connect() or accept() began MPA setup)
 * fails with EISCONN. Get: the negotiated value once connected (before that, the
 * value that will be asked for). Other sockets (UDP, AF_UNIX, ...): ENOPROTOOPT for
 * set and get; an fd that is no socket: ENOTSOCK or EBADF, as the kernel says. */

/* int. Set nonzero to switch the socket to DDP mode (0 is EINVAL: there is no way
 * back). Get: 1 for a DDP socket (or one that will become one), else 0. Fds above
 * 65535 cannot switch (EMFILE). */
#define ETA_DDPMODE 1
/* int, 1 or 2 (default 2, RFC 6581). */
#define ETA_MPA_REV 2
/* int, 0/1: ask for MPA CRC32c (default 1). Get: whether the connection uses it. */
#define ETA_CRC 3
/* int, 0/1: ask for MPA markers (default 0). */
#define ETA_MARKERS 4
/* int: RDMA Read credits, inbound (IRD) and outbound (ORD); default 16 each. */
#define ETA_IRD 5
#define ETA_ORD 6
/* bytes, at most 508 (512 with ETA_MPA_REV 1): private data to send in the MPA
 * Request (connect) or Reply (listening socket); EINVAL if longer. Get: the
 * private data the peer sent. */
#define ETA_PRIVATE_DATA 7
/* int, a mask of ETA_RTR_*: the RFC 6581 ready-to-receive messages this side may
 * use (default ETA_RTR_WRITE | ETA_RTR_READ; 0 asks for no peer-to-peer mode).
 * Get: the one used (0 if none). */
#define ETA_RTR 8
#define ETA_RTR_WRITE 1
#define ETA_RTR_READ 2
#define ETA_RTR_SEND 4
/* char[], get only: why the connection failed, as NUL-terminated text ("" while it
 * has not), e.g. "terminated by the peer: RDMAP protection error: invalid STag". */
#define ETA_ERROR 9
/* int, set: a completion queue from eta_cq_create() that receives this socket's
 * completions instead of the socket's own queue (before the switch, or on the
 * listening socket). */
#define ETA_CQ 10
/* int: the largest FPDU this side sends, in octets on the wire (MPA length, pad,
 * markers and CRC included), for peers that take only FPDUs up to the MTU or 16 KiB;
 * 0 (the default) sizes FPDUs from the connection's EMSS (RFC 5044 section 4.5).
 * 256 to 65536, else EINVAL; set before the switch or on the listening socket. */
#define ETA_MAX_FPDU 11

/* The largest message write() or eta_post_send() accepts (RDMAP: 2^32 - 1 octets). */
#define ETA_MAX_MESSAGE 0xffffffffu

/* ---- memory registration -------------------------------------------------------- */

/* Access rights of a registration (eta_reg_mr). */
#define ETA_ACCESS_LOCAL_WRITE 1  /* target of this side's eta_rdma_read */
#define ETA_ACCESS_REMOTE_WRITE 2 /* the peer may RDMA Write into it */
#define ETA_ACCESS_REMOTE_READ 4  /* the peer may RDMA Read from it */
/* Reachable through every DDP socket of the process, not only `fd`'s connection. */
#define ETA_ACCESS_ANY_SOCKET 0x100

/* Registers addr..addr+length-1 for RDMA through DDP socket `fd`. Tagged offsets are
 * virtual addresses, as with verbs: the peer addresses the region's first octet as
 * (STag, (uint64_t)addr). The memory must stay valid until eta_dereg_mr() returns or
 * the socket is closed. Returns the STag (never 0), or 0 with errno:
 *   EBADF (not a DDP socket), EINVAL (addr NULL, length 0, unknown access bits,
 *   addr+length wraps), ENOTCONN (setup not finished), ENOSPC (table full). */
uint32_t eta_reg_mr(int fd, void *addr, size_t length, int access);

/* Deregisters `stag`. Returns when the engine no longer touches the memory (after an
 * FPDU that is being sent from it has gone to the kernel). 0, or -1 with errno:
 *   EBADF, EINVAL (not a registration of this socket, or already deregistered). */
int eta_dereg_mr(int fd, uint32_t stag);

/* ---- work requests ----------------------------------------------------------------
 * All post calls return 0 once the request is queued, or -1 with errno:
 *   EBADF (not a DDP socket), EINVAL (bad argument), ENOTCONN/EPIPE/ECONNRESET...
 *   (connection not open, see above), EAGAIN (too many outstanding requests of this
 *   kind, 1024), EMSGSIZE (longer than ETA_MAX_MESSAGE).
 * The buffer is NOT copied: it must stay valid and untouched until the request's
 * completion has been polled (or the socket closed). Each request produces one
 * completion, on success or when it is flushed because the connection ended. */

/* Flags of eta_post_send. */
#define ETA_SEND_SOLICITED 1 /* RDMAP Send with Solicited Event */

/* Posts a Send of buf[0..len) (len may be 0). */
int eta_post_send(int fd, uint64_t wr_id, const void *buf, size_t len, int flags);
/* Posts a Send with Invalidate: the peer invalidates its STag `inv_stag`. */
int eta_post_send_inv(int fd, uint64_t wr_id, const void *buf, size_t len, int flags,
                      uint32_t inv_stag);
/* Posts a receive buffer for one incoming Send; buffers are filled in order. A message
 * longer than the buffer is a local length error: it completes with EMSGSIZE and the
 * connection is terminated, as in RDMA. */
int eta_post_recv(int fd, uint64_t wr_id, void *buf, size_t len);
/* RDMA Write of buf[0..len) to the peer's region `rstag` at address `raddr`. */
int eta_rdma_write(int fd, uint64_t wr_id, const void *buf, size_t len, uint32_t rstag,
                   uint64_t raddr);
/* RDMA Read of len octets from the peer's (`rstag`, `raddr`) into buf, which lies in
 * this socket's region `lstag` registered with ETA_ACCESS_LOCAL_WRITE. */
int eta_rdma_read(int fd, uint64_t wr_id, void *buf, size_t len, uint32_t lstag,
                  uint32_t rstag, uint64_t raddr);

/* ---- completions ------------------------------------------------------------------ */

/* What a completion is for. */
#define ETA_WC_SEND 1
#define ETA_WC_RECV 2
#define ETA_WC_RDMA_WRITE 3
#define ETA_WC_RDMA_READ 4
/* Completion flags. */
#define ETA_WC_SOLICITED 1   /* a receive of a Send with Solicited Event */
#define ETA_WC_INVALIDATED 2 /* a receive of a Send with Invalidate: see invalidated */

struct eta_wc {
    uint64_t wr_id;       /* as posted */
    int status;           /* 0, or an errno: ECANCELED (flushed: the connection ended),
                           * EMSGSIZE (receive too short), EREMOTEIO (the peer reported
                           * an error), EPROTO, ... */
    int opcode;           /* ETA_WC_* */
    uint32_t byte_len;    /* octets received (ETA_WC_RECV) or transferred */
    uint32_t flags;       /* ETA_WC_SOLICITED, ETA_WC_INVALIDATED */
    uint32_t invalidated; /* the STag a Send with Invalidate invalidated */
    int fd;               /* the socket: the fd polled, for its own queue; for a shared
                           * queue, the fd the socket was made or accepted on */
};

/* Takes up to `max` completions without waiting. `fd` is a DDP socket (its own
 * queue) or a queue from eta_cq_create(). Returns how many (0 if none), or -1 with
 * errno EBADF (neither), EINVAL (wc NULL or max < 1). */
int eta_poll(int fd, struct eta_wc *wc, int max);
/* As eta_poll, but waits up to timeout_ms milliseconds (-1: no limit) for at least
 * one. Returns 0 on time-out; -1 with EINTR when a signal handler ran (as poll does,
 * whatever SA_RESTART says). */
int eta_wait(int fd, struct eta_wc *wc, int max, int timeout_ms);

/* A completion queue that several DDP sockets can share (setsockopt ETA_CQ). The
 * returned fd is readable (poll/epoll) while completions are queued. -1 with errno
 * (EMFILE, ENOMEM) on failure. */
int eta_cq_create(void);
/* Destroys a queue made by eta_cq_create (its fd is closed). Sockets still attached
 * keep delivering into it until they close; EBADF if `cq` is not such a queue. */
int eta_cq_destroy(int cq);

#ifdef __cplusplus
}
#endif

#endif /* ETA_H */

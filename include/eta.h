/* eta.h - the C API of libeta.so (eta: iWARP in user space).
 *
 * Today this header holds only the names that switch a socket to DDP mode.
 * DDP mode is the NEXT STEP and is not implemented yet: libeta.so passes SOL_ETA
 * options to the kernel, which answers ENOPROTOOPT, exactly as without the shim.
 * The rest of the C API (eta_reg_mr, eta_rdma_write, eta_poll, ...) arrives with it.
 *
 * Usage (once DDP mode exists):
 *     int one = 1;
 *     setsockopt(fd, SOL_ETA, ETA_DDPMODE, &one, sizeof one);
 */
#ifndef ETA_H
#define ETA_H

/* The setsockopt/getsockopt level of eta's options (a value no Linux protocol
 * level uses, so without libeta.so the kernel answers ENOPROTOOPT). */
#define SOL_ETA 0x4554

/* Switch a socket to DDP mode (an int, nonzero = on). DDP mode: next step. */
#define ETA_DDPMODE 1

#endif /* ETA_H */

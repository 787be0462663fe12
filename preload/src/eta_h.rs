//! Every constant of `include/eta.h`, under its C name: the one place the Rust side
//! takes them from. A unit test ([`tests`](self)) reads the header and holds each
//! `#define` against this list, both ways.

use libc::c_int;

/// Defines each constant and [`ALL`], the list the header test compares.
macro_rules! eta_h {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty = $value:expr; )*) => {
        $( $(#[$doc])* pub const $name: $ty = $value; )*

        /// Every constant of this module, by name, with its value.
        pub const ALL: &[(&str, i64)] = &[$( (stringify!($name), $name as i64) ),*];
    };
}

eta_h! {
    /// The `setsockopt`/`getsockopt` level of eta's options.
    SOL_ETA: c_int = 0x4554;

    // ---- SOL_ETA options

    /// int: switches the socket to DDP mode.
    ETA_DDPMODE: c_int = 1;
    /// int, 1 or 2: the MPA revision.
    ETA_MPA_REV: c_int = 2;
    /// int, 0/1: MPA CRC32c.
    ETA_CRC: c_int = 3;
    /// int, 0/1: MPA markers.
    ETA_MARKERS: c_int = 4;
    /// int: inbound RDMA Read credits.
    ETA_IRD: c_int = 5;
    /// int: outbound RDMA Read credits.
    ETA_ORD: c_int = 6;
    /// bytes: private data of the MPA Request or Reply.
    ETA_PRIVATE_DATA: c_int = 7;
    /// int, a mask of `ETA_RTR_*`: the RFC 6581 ready-to-receive messages.
    ETA_RTR: c_int = 8;
    /// `ETA_RTR` bit: a zero-length RDMA Write.
    ETA_RTR_WRITE: c_int = 1;
    /// `ETA_RTR` bit: a zero-length RDMA Read.
    ETA_RTR_READ: c_int = 2;
    /// `ETA_RTR` bit: a zero-length Send.
    ETA_RTR_SEND: c_int = 4;
    /// char[], get only: why the connection failed, as text.
    ETA_ERROR: c_int = 9;
    /// int, set only: a shared completion queue from `eta_cq_create`.
    ETA_CQ: c_int = 10;
    /// int: the largest FPDU this side sends, in octets on the wire (0: the EMSS).
    ETA_MAX_FPDU: c_int = 11;

    /// The largest message `write` or `eta_post_send` accepts (RDMAP: 2^32 - 1).
    ETA_MAX_MESSAGE: u32 = u32::MAX;

    // ---- eta_reg_mr access rights

    /// Target of this side's `eta_rdma_read`.
    ETA_ACCESS_LOCAL_WRITE: c_int = 1;
    /// The peer may RDMA Write into the region.
    ETA_ACCESS_REMOTE_WRITE: c_int = 2;
    /// The peer may RDMA Read from the region.
    ETA_ACCESS_REMOTE_READ: c_int = 4;
    /// Reachable through every DDP socket of the process.
    ETA_ACCESS_ANY_SOCKET: c_int = 0x100;

    // ---- eta_post_send flags

    /// An RDMAP Send with Solicited Event.
    ETA_SEND_SOLICITED: c_int = 1;

    // ---- struct eta_wc: opcode

    /// A completion of a Send.
    ETA_WC_SEND: c_int = 1;
    /// A completion of a receive.
    ETA_WC_RECV: c_int = 2;
    /// A completion of an RDMA Write.
    ETA_WC_RDMA_WRITE: c_int = 3;
    /// A completion of an RDMA Read.
    ETA_WC_RDMA_READ: c_int = 4;

    // ---- struct eta_wc: flags

    /// A receive of a Send with Solicited Event.
    ETA_WC_SOLICITED: u32 = 1;
    /// A receive of a Send with Invalidate.
    ETA_WC_INVALIDATED: u32 = 2;
}

#[cfg(test)]
mod tests;

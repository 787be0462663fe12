//! Connection parameters (mostly results of the MPA negotiation) and the options of
//! work requests.

use crate::stag::{ConnId, Stag};

/// The RFC 6581 zero-length RTR message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtrKind {
    /// Zero-length Send (flag B).
    Send,
    /// Zero-length RDMA Write, STag 1, TO 0 (flag C; what siw sends).
    Write,
    /// Zero-length RDMA Read Request, source STag 1 (flag D).
    Read,
}

/// Connection parameters, mostly results of the MPA negotiation.
#[derive(Debug, Clone)]
pub struct Config {
    /// Identity of the connection for STag scoping.
    pub conn_id: ConnId,
    /// Maximum ULPDU size computed by MPA (`eta_mpa::mulpdu`), at least 128.
    pub mulpdu: u16,
    /// Inbound RDMA Read (and Atomic) queue depth.
    pub ird: u32,
    /// Outbound RDMA Read (and Atomic) queue depth.
    pub ord: u32,
    /// RTR this side sends first (MPA initiator in peer-to-peer mode).
    pub send_rtr: Option<RtrKind>,
    /// Swallow the peer's zero-length Send RTR (responder that negotiated a Send RTR).
    pub expect_send_rtr: bool,
    /// Allow RFC 7306 Immediate Data and Atomics (siw Terminates on them).
    pub extensions: bool,
    /// Maximum posted but not completed send-queue work requests.
    pub max_send_wr: usize,
    /// Maximum posted receives.
    pub max_recv_wr: usize,
    /// Octets of the receive pool for Sends arriving without a posted receive; 0
    /// disables the pool (such a Send is then a Terminate DDP/untagged/0x02).
    pub pool_bytes: usize,
    /// Messages the pool may hold.
    pub pool_messages: usize,
}

impl Config {
    /// Defaults: IRD = ORD = 16, no RTR, no extensions, queues of 1024, a 256 KiB /
    /// 256-message receive pool.
    pub fn new(conn_id: ConnId, mulpdu: u16) -> Self {
        Config {
            conn_id,
            mulpdu,
            ird: 16,
            ord: 16,
            send_rtr: None,
            expect_send_rtr: false,
            extensions: false,
            max_send_wr: 1024,
            max_recv_wr: 1024,
            pool_bytes: 256 * 1024,
            pool_messages: 256,
        }
    }
}

/// Options of a Send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOptions {
    /// Send with Solicited Event.
    pub solicited: bool,
    /// Send with Invalidate of this remote STag.
    pub invalidate: Option<Stag>,
}

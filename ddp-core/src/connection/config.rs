//! Connection parameters (mostly results of the MPA negotiation) and the options of
//! work requests.

use crate::stag::{ConnId, Stag};
use crate::wire::AtomicRequestRepr;
use crate::wire::atomic::AtomicOp;

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

/// The operands of an RFC 7306 Atomic (RFC 7306 §5.1, §5.2.1 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicArgs {
    /// FetchAdd or CmpSwap.
    pub op: AtomicOp,
    /// Add Data (FetchAdd) or Swap Data (CmpSwap).
    pub data: u64,
    /// Add Mask (FetchAdd: a set bit is the most significant bit of a field, whose
    /// carry out is discarded; 0 is one 64-bit add) or Swap Mask (CmpSwap: the bits
    /// replaced by Swap Data).
    pub data_mask: u64,
    /// Compare Data (CmpSwap only: FetchAdd sends 0).
    pub compare: u64,
    /// Compare Mask (CmpSwap only: FetchAdd sends all ones).
    pub compare_mask: u64,
}

impl AtomicArgs {
    /// A plain 64-bit FetchAdd of `add` (Add Mask 0).
    pub const fn fetch_add(add: u64) -> Self {
        AtomicArgs {
            op: AtomicOp::FetchAdd,
            data: add,
            data_mask: 0,
            compare: 0,
            compare_mask: u64::MAX,
        }
    }

    /// A plain CmpSwap: if the target equals `compare`, it becomes `swap` (both masks
    /// all ones).
    pub const fn compare_swap(compare: u64, swap: u64) -> Self {
        AtomicArgs {
            op: AtomicOp::CompareSwap,
            data: swap,
            data_mask: u64::MAX,
            compare,
            compare_mask: u64::MAX,
        }
    }

    /// The Atomic Request header (without the target) as it goes on the wire: for
    /// FetchAdd, Compare Data 0 and Compare Mask all ones whatever the fields hold
    /// (RFC 7306 §5.2.1).
    pub(super) fn request(
        &self,
        request_id: u32,
        remote: Stag,
        remote_to: u64,
    ) -> AtomicRequestRepr {
        let (compare, compare_mask) = match self.op {
            AtomicOp::FetchAdd => (0, u64::MAX),
            AtomicOp::CompareSwap => (self.compare, self.compare_mask),
        };
        AtomicRequestRepr {
            opcode: self.op.to_u8(),
            request_id,
            remote_stag: remote.0,
            remote_to,
            add_swap: self.data,
            add_swap_mask: self.data_mask,
            compare,
            compare_mask,
        }
    }
}

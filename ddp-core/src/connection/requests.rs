//! RDMA Read and Atomic requests in both directions: the ones this side issued and
//! awaits responses to (bounded by ORD), and the responses it owes the peer (bounded
//! by IRD). Transmit fills the first and drains the second; receive matches
//! responses against the first and fills the second.

use std::collections::VecDeque;

use crate::error::{OperationError, TaggedError, TerminateReason};
use crate::wire::atomic::AtomicOp;
use crate::wire::terminate::IncludedHeader;
use crate::wire::{AtomicRequestRepr, ReadRequestRepr};

/// An RDMA Read this side issued and awaits the response of.
#[derive(Debug)]
struct OutRead {
    sq: Option<u64>,
    sink_stag: u32,
    sink_to: u64,
    len: u32,
    received: u32,
}

/// An Atomic this side issued.
#[derive(Debug)]
struct OutAtomic {
    sq: u64,
    request_id: u32,
}

/// Outbound Reads and Atomics awaiting their responses, oldest first. Responses come
/// back in request order (RFC 5040 §5.1), so only the oldest of each kind matters.
#[derive(Debug, Default)]
pub(super) struct OrdQueue {
    reads: VecDeque<OutRead>,
    atomics: VecDeque<OutAtomic>,
}

impl OrdQueue {
    /// Requests outstanding (never above ORD).
    pub(super) fn in_use(&self) -> usize {
        self.reads.len() + self.atomics.len()
    }

    /// A Read Request (send-queue entry `sq`, none for the RTR) was started.
    pub(super) fn push_read(&mut self, sq: Option<u64>, r: &ReadRequestRepr) {
        self.reads.push_back(OutRead {
            sq,
            sink_stag: r.sink_stag,
            sink_to: r.sink_to,
            len: r.size,
            received: 0,
        });
    }

    /// An Atomic request (send-queue entry `sq`) was started.
    pub(super) fn push_atomic(&mut self, sq: u64, request_id: u32) {
        self.atomics.push_back(OutAtomic { sq, request_id });
    }

    /// Checks a Read Response segment (`payload` octets to `stag`/`to`, `last`) against
    /// the oldest outstanding Read: it must continue that Read exactly. Returns the
    /// segment's payload length.
    pub(super) fn check_read_response(
        &self,
        stag: u32,
        to: u64,
        payload: usize,
        last: bool,
    ) -> Result<u32, TerminateReason> {
        let r = self.reads.front().ok_or(TerminateReason::RdmapOperation(
            OperationError::UnexpectedOpcode,
        ))?;
        let bounds = TerminateReason::DdpTagged(TaggedError::BaseBounds);
        if stag != r.sink_stag {
            return Err(TerminateReason::DdpTagged(TaggedError::InvalidStag));
        }
        let expected = r.sink_to.checked_add(u64::from(r.received)).ok_or(bounds)?;
        if to != expected {
            return Err(bounds);
        }
        let seg_len = u32::try_from(payload).map_err(|_| bounds)?;
        let end = r.received.checked_add(seg_len).ok_or(bounds)?;
        if end > r.len || (last && end != r.len) {
            return Err(bounds);
        }
        Ok(seg_len)
    }

    /// A verified Read Response segment of `seg_len` octets arrived.
    pub(super) fn read_received(&mut self, seg_len: u32) {
        if let Some(r) = self.reads.front_mut() {
            r.received += seg_len;
        }
    }

    /// The oldest Read is complete: its send-queue entry and length.
    pub(super) fn pop_read(&mut self) -> Option<(Option<u64>, u32)> {
        self.reads.pop_front().map(|r| (r.sq, r.len))
    }

    /// Whether an Atomic Response with `request_id` answers the oldest Atomic.
    pub(super) fn expects_atomic(&self, request_id: u32) -> bool {
        self.atomics
            .front()
            .is_some_and(|a| a.request_id == request_id)
    }

    /// The oldest Atomic is answered: its send-queue entry.
    pub(super) fn pop_atomic(&mut self) -> Option<u64> {
        self.atomics.pop_front().map(|a| a.sq)
    }

    /// Forgets every outstanding request; returns their send-queue entries (Reads
    /// first, then Atomics) to flush.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = u64> + use<> {
        let reads = std::mem::take(&mut self.reads);
        let atomics = std::mem::take(&mut self.atomics);
        reads
            .into_iter()
            .filter_map(|r| r.sq)
            .chain(atomics.into_iter().map(|a| a.sq))
    }
}

/// A response owed to the peer.
#[derive(Debug)]
pub(super) enum Response {
    /// An RDMA Read Response (the source is re-checked when it starts).
    Read(ReadRequestRepr),
    /// An Atomic Response: the Atomic is performed when it is generated.
    Atomic(PendingAtomic),
}

/// An accepted Atomic Request (its target checked), not yet performed.
#[derive(Debug)]
pub(super) struct PendingAtomic {
    /// The request.
    pub(super) req: AtomicRequestRepr,
    /// Its decoded AOpCode.
    pub(super) op: AtomicOp,
    /// Its DDP header and ULPDU length, for the Terminate if the target is gone
    /// when the Atomic is performed.
    pub(super) ddp: (IncludedHeader, u16),
}

/// Inbound Reads and Atomics accepted and not yet answered (bounded by IRD), answered
/// in the order they arrived (RFC 7306 §5.2.2 item 8, §7). A Read counts until the
/// last segment of its response is emitted, an Atomic until its response starts.
#[derive(Debug, Default)]
pub(super) struct IrdQueue {
    responses: VecDeque<Response>,
    in_use: usize,
}

impl IrdQueue {
    /// Requests accepted and not yet answered.
    pub(super) fn in_use(&self) -> usize {
        self.in_use
    }

    /// An inbound request was accepted; `r` is owed.
    pub(super) fn push(&mut self, r: Response) {
        self.in_use += 1;
        self.responses.push_back(r);
    }

    /// The next response to start, without taking it.
    pub(super) fn front(&self) -> Option<&Response> {
        self.responses.front()
    }

    /// The next response to start.
    pub(super) fn pop(&mut self) -> Option<Response> {
        self.responses.pop_front()
    }

    /// A response is answered (see the type's documentation for when).
    pub(super) fn release(&mut self) {
        self.in_use = self.in_use.saturating_sub(1);
    }

    /// Forgets every owed response (the connection failed).
    pub(super) fn clear(&mut self) {
        self.responses.clear();
        self.in_use = 0;
    }
}

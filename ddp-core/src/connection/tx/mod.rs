//! Transmit: message queues, segmentation to the MULPDU, MSNs, and the
//! `poll_segment` / `segment_sent` driver interface.
//!
//! Messages are started one at a time and segmented completely before the next one
//! starts, so messages are never interleaved (siw drops a connection that interleaves
//! messages of the same class). Priority when choosing the next message: a queued
//! Terminate, the RTR, responses to inbound Reads/Atomics, then the send queue.

mod msg;

use std::collections::VecDeque;

use super::atomic;
use super::requests::{PendingAtomic, Response};
use super::terminate::TermPlan;
use super::{Connection, RtrKind, State};
use crate::completion::{CompletionStatus, Event};
use crate::error::TerminateReason;
use crate::segment::{HEADER_CAPACITY, Segment, SegmentToken};
use crate::stag::{Access, Stag};
use crate::wire::{AtomicResponseRepr, Opcode, ReadRequestRepr};

pub(super) use msg::{MsgKind, Source, TxMsg};

/// Transmit-side state.
#[derive(Debug)]
pub(super) struct TxState {
    /// Posted work requests not yet started.
    pending: VecDeque<TxMsg>,
    /// The Terminate to send before anything else.
    terminate: Option<TxMsg>,
    rtr: Option<RtrKind>,
    /// Messages started and not yet retired; only the last may be partly emitted.
    active: VecDeque<TxMsg>,
    next_seq: u64,
    /// Next MSN of each untagged queue.
    msn: [u32; 4],
    terminate_emitted: bool,
    closed: bool,
}

impl TxState {
    /// Nothing sent yet; `rtr` goes first.
    pub(super) fn new(rtr: Option<RtrKind>) -> Self {
        TxState {
            pending: VecDeque::new(),
            terminate: None,
            rtr,
            active: VecDeque::new(),
            next_seq: 0,
            msn: [1; 4],
            terminate_emitted: false,
            closed: false,
        }
    }

    /// Queues a posted work request's message.
    pub(super) fn push(&mut self, msg: TxMsg) {
        self.pending.push_back(msg);
    }

    /// Takes the next MSN of queue `qn` (the first is 1; wraps).
    fn next_msn(&mut self, qn: usize) -> u32 {
        let m = self.msn[qn];
        self.msn[qn] = m.wrapping_add(1);
        m
    }

    /// Builds the Terminate of `plan` (next MSN of queue 2) to go before anything
    /// else.
    pub(super) fn queue_terminate(&mut self, plan: &TermPlan) {
        let msn = self.next_msn(2);
        let mut ulpdu = [0u8; HEADER_CAPACITY];
        let len = plan.encode(msn, &mut ulpdu) as u8;
        let mut m = TxMsg::new(None, MsgKind::Terminate { ulpdu, len }, Source::None, 0);
        m.msn = msn;
        self.terminate = Some(m);
    }

    /// The peer terminated or the transport failed: no Terminate goes.
    pub(super) fn drop_terminate(&mut self) {
        self.terminate = None;
    }

    /// The connection failed: drops the RTR, gives up the partly emitted message and
    /// returns the messages never started (to complete as flushed).
    pub(super) fn flush(&mut self) -> VecDeque<TxMsg> {
        self.rtr = None;
        if let Some(back) = self.active.back_mut()
            && !back.emitted_all
        {
            back.emitted_all = true;
            back.abandoned = true;
        }
        std::mem::take(&mut self.pending)
    }

    /// The driver will transmit nothing more: no Terminate, nothing further polled,
    /// and every segment not reported sent is lost.
    pub(super) fn close(&mut self) {
        self.terminate = None;
        self.closed = true;
        for m in self.active.iter_mut() {
            if m.unacked > 0 || !m.emitted_all {
                m.abandoned = true;
            }
            m.unacked = 0;
            m.emitted_all = true;
        }
    }

    /// The oldest message if it is fully emitted and every segment was sent.
    fn pop_retired(&mut self) -> Option<TxMsg> {
        if self
            .active
            .front()
            .is_some_and(|m| m.emitted_all && m.unacked == 0)
        {
            self.active.pop_front()
        } else {
            None
        }
    }

    fn find(&self, seq: u64) -> Option<usize> {
        let front = self.active.front()?.seq;
        let idx = usize::try_from(seq.checked_sub(front)?).ok()?;
        (self.active.get(idx)?.seq == seq).then_some(idx)
    }
}

impl Connection {
    /// The next segment to frame, or `None` if there is nothing to send now. The
    /// header is owned; the payload stays in the source memory and is obtained with
    /// [`segment_payload`](Self::segment_payload). Report each segment with
    /// [`segment_sent`](Self::segment_sent) once the transport took all its bytes,
    /// in the order they were polled.
    pub fn poll_segment(&mut self) -> Option<Segment> {
        if self.tx.terminate_emitted || self.tx.closed {
            return None;
        }
        if let Some(t) = self.tx.terminate.take() {
            self.tx.terminate_emitted = true;
            return Some(self.start_and_emit(t));
        }
        if self.state != State::Operational {
            return None;
        }
        if self.tx.active.back().is_some_and(|m| !m.emitted_all) {
            return self.emit_next();
        }
        let msg = self.next_message()?;
        Some(self.start_and_emit(msg))
    }

    /// The payload of a segment returned by [`poll_segment`](Self::poll_segment):
    /// a slice of the work request's buffer or of the registered region. Empty if
    /// the segment's message is no longer in transmission (stale segment).
    pub fn segment_payload(&self, seg: &Segment) -> &[u8] {
        let t = seg.token();
        self.tx
            .find(t.msg)
            .and_then(|i| self.tx.active[i].payload(t.offset, t.len))
            .unwrap_or(&[])
    }

    /// The transport took all bytes of the segment. The last segment of a Send or
    /// RDMA Write completes it; the Terminate having been sent moves the connection
    /// to [`State::Error`].
    pub fn segment_sent(&mut self, token: SegmentToken) {
        if let Some(i) = self.tx.find(token.msg) {
            let m = &mut self.tx.active[i];
            m.unacked = m.unacked.saturating_sub(1);
        }
        self.retire_acked();
    }

    fn next_message(&mut self) -> Option<TxMsg> {
        if let Some(rtr) = self.tx.rtr.take() {
            return Some(match rtr {
                RtrKind::Write => {
                    TxMsg::new(None, MsgKind::Write { stag: 1, to: 0 }, Source::None, 0)
                }
                RtrKind::Send => TxMsg::new(
                    None,
                    MsgKind::Send {
                        opcode: Opcode::Send,
                        inv: 0,
                    },
                    Source::None,
                    0,
                ),
                RtrKind::Read => TxMsg::new(
                    None,
                    MsgKind::ReadRequest(ReadRequestRepr {
                        src_stag: 1,
                        ..Default::default()
                    }),
                    Source::None,
                    0,
                ),
            });
        }
        if matches!(self.ird.front(), Some(Response::Atomic(_))) && self.read_response_unsent() {
            // RFC 7306 §7: the Atomic Response (and so the Atomic) waits until the
            // Read Responses before it are generated, here: handed to the transport,
            // whose zero-copy send may read the region until `segment_sent`.
            return None;
        }
        if let Some(resp) = self.ird.pop() {
            match resp {
                Response::Atomic(a) => {
                    self.ird.release();
                    return self.perform_atomic(&a);
                }
                Response::Read(req) => {
                    // Re-validate: the region may have been deregistered or
                    // invalidated since the request arrived.
                    let src = if req.size == 0 {
                        Source::None
                    } else {
                        match self.table.check(
                            self.cfg.conn_id,
                            Stag(req.src_stag),
                            req.src_to,
                            u64::from(req.size),
                            Access::REMOTE_READ,
                        ) {
                            Ok(mem) => Source::Region(mem),
                            Err(e) => {
                                self.fail(
                                    TermPlan::bare(TerminateReason::RdmapProtection(
                                        e.source_protection(),
                                    ))
                                    .with_rdma(req.to_bytes()),
                                );
                                let t = self.tx.terminate.take();
                                self.tx.terminate_emitted = t.is_some();
                                return t;
                            }
                        }
                    };
                    return Some(TxMsg::new(
                        None,
                        MsgKind::ReadResponse {
                            stag: req.sink_stag,
                            to: req.sink_to,
                        },
                        src,
                        req.size,
                    ));
                }
            }
        }
        let front = self.tx.pending.front()?;
        let needs_ord = matches!(
            front.kind,
            MsgKind::ReadRequest(_) | MsgKind::AtomicRequest(_)
        );
        if needs_ord && self.ord.in_use() >= self.cfg.ord as usize {
            return None;
        }
        self.tx.pending.pop_front()
    }

    /// Whether a Read Response is still being emitted or not yet reported sent.
    fn read_response_unsent(&self) -> bool {
        self.tx
            .active
            .iter()
            .any(|m| matches!(m.kind, MsgKind::ReadResponse { .. }))
    }

    /// Performs an accepted Atomic on its target (RFC 7306 §5.1) and returns its
    /// response, or the Terminate if the target is no longer accessible (it was
    /// deregistered or invalidated since the request arrived).
    fn perform_atomic(&mut self, a: &PendingAtomic) -> Option<TxMsg> {
        let r = &a.req;
        let done =
            self.table
                .update_u64(self.cfg.conn_id, Stag(r.remote_stag), r.remote_to, |old| {
                    atomic::apply(r, a.op, old)
                });
        match done {
            Ok(old) => Some(TxMsg::new(
                None,
                MsgKind::AtomicResponse(AtomicResponseRepr {
                    request_id: r.request_id,
                    original_value: old,
                }),
                Source::None,
                0,
            )),
            Err(e) => {
                let (hdr, len) = a.ddp;
                self.fail(TermPlan::with_ddp(
                    TerminateReason::RdmapProtection(e.source_protection()),
                    hdr,
                    len,
                ));
                let t = self.tx.terminate.take();
                self.tx.terminate_emitted = t.is_some();
                t
            }
        }
    }

    fn start_and_emit(&mut self, mut msg: TxMsg) -> Segment {
        msg.seq = self.tx.next_seq;
        self.tx.next_seq += 1;
        if let Some(q) = msg.queue() {
            msg.msn = self.tx.next_msn(q);
        }
        match &msg.kind {
            MsgKind::ReadRequest(r) => self.ord.push_read(msg.sq(), r),
            MsgKind::AtomicRequest(r) => {
                if let Some(sq) = msg.sq() {
                    self.ord.push_atomic(sq, r.request_id);
                }
            }
            _ => {}
        }
        self.tx.active.push_back(msg);
        // The message was just pushed, so emit_next finds it.
        self.emit_next().unwrap_or_else(|| {
            Segment::new(
                &[],
                SegmentToken {
                    msg: u64::MAX,
                    offset: 0,
                    len: 0,
                },
            )
        })
    }

    /// Emits the next segment of the last active message.
    fn emit_next(&mut self) -> Option<Segment> {
        let mulpdu = usize::from(self.cfg.mulpdu);
        let msg = self.tx.active.back_mut()?;
        let hlen = msg.header_len();
        let max_payload = mulpdu.saturating_sub(hlen).max(1) as u32;
        let remaining = msg.len - msg.cursor;
        let chunk = remaining.min(max_payload);
        let offset = msg.cursor;
        let last = chunk == remaining;
        let mut hdr = [0u8; HEADER_CAPACITY];
        let n = msg::write_header(msg, offset, last, &mut hdr);
        msg.cursor += chunk;
        msg.unacked += 1;
        msg.emitted_all = last;
        let token = SegmentToken {
            msg: msg.seq,
            offset,
            len: chunk,
        };
        if last && matches!(msg.kind, MsgKind::ReadResponse { .. }) {
            self.ird.release();
        }
        Some(Segment::new(&hdr[..n], token))
    }

    /// Finalizes fully emitted and acknowledged messages at the head of the transmit
    /// window.
    pub(super) fn retire_acked(&mut self) {
        while let Some(msg) = self.tx.pop_retired() {
            self.finalize(msg);
        }
    }

    fn finalize(&mut self, msg: TxMsg) {
        let ok = !msg.abandoned;
        match msg.kind {
            MsgKind::Terminate { .. } => {
                if !msg.abandoned {
                    self.state = State::Error;
                    self.push_event(Event::TerminateSent);
                }
            }
            MsgKind::Send { .. } | MsgKind::Write { .. } | MsgKind::Immediate { .. } => {
                let len = msg.len;
                if let Some(sq) = msg.sq() {
                    let buffer = msg.into_buffer();
                    let status = if ok {
                        CompletionStatus::Success
                    } else {
                        CompletionStatus::Flushed
                    };
                    self.sq_complete(sq, status, |c| {
                        c.byte_len = len;
                        c.buffer = buffer;
                    });
                }
            }
            MsgKind::ReadRequest(_)
            | MsgKind::AtomicRequest(_)
            | MsgKind::ReadResponse { .. }
            | MsgKind::AtomicResponse(_) => {}
        }
    }
}

//! Transmit: message queues, segmentation to the MULPDU, MSNs, ORD/IRD accounting,
//! Terminate construction, and the `poll_segment` / `segment_sent` driver interface.
//!
//! Messages are started one at a time and segmented completely before the next one
//! starts, so messages are never interleaved (siw drops a connection that interleaves
//! messages of the same class). Priority when choosing the next message: a queued
//! Terminate, the RTR, responses to inbound Reads/Atomics, then the send queue.

use std::collections::VecDeque;

use crate::completion::CompletionStatus;
use crate::connection::{Connection, RtrKind, State};
use crate::error::TerminateReason;
use crate::placement::{LocalBuffer, RawMem};
use crate::rx::map_read_source_error;
use crate::segment::{HEADER_CAPACITY, Segment, SegmentToken};
use crate::stag::{Access, Stag};
use crate::wire::ddp::DDP_VERSION;
use crate::wire::terminate::IncludedHeader;
use crate::wire::{
    AtomicRequestPacket, AtomicRequestRepr, AtomicResponsePacket, AtomicResponseRepr, DdpPacket,
    DdpRepr, ImmediateDataPacket, ImmediateDataRepr, Opcode, RdmapControl, ReadRequestPacket,
    ReadRequestRepr, TAGGED_HEADER_LEN, TaggedRepr, TerminateRepr, UNTAGGED_HEADER_LEN,
    UntaggedRepr,
};

/// What an outbound message is.
#[derive(Debug)]
pub(crate) enum MsgKind {
    Send {
        opcode: Opcode,
        inv: u32,
    },
    Write {
        stag: u32,
        to: u64,
    },
    ReadRequest(ReadRequestRepr),
    ReadResponse {
        stag: u32,
        to: u64,
    },
    Terminate {
        ulpdu: [u8; HEADER_CAPACITY],
        len: u8,
    },
    Immediate {
        opcode: Opcode,
        data: [u8; 8],
    },
    AtomicRequest(AtomicRequestRepr),
    AtomicResponse(AtomicResponseRepr),
}

/// Where a message's payload comes from.
#[derive(Debug)]
pub(crate) enum Source {
    None,
    Local(LocalBuffer),
    Region(RawMem),
}

/// An outbound message, queued or in transmission.
#[derive(Debug)]
pub(crate) struct TxMsg {
    pub seq: u64,
    pub sq: Option<u64>,
    pub kind: MsgKind,
    pub src: Source,
    pub len: u32,
    pub msn: u32,
    pub cursor: u32,
    pub emitted_all: bool,
    pub unacked: u32,
    pub abandoned: bool,
}

impl TxMsg {
    pub(crate) fn new(sq: Option<u64>, kind: MsgKind, src: Source, len: u32) -> Self {
        TxMsg {
            seq: 0,
            sq,
            kind,
            src,
            len,
            msn: 0,
            cursor: 0,
            emitted_all: false,
            unacked: 0,
            abandoned: false,
        }
    }

    pub(crate) fn into_buffer(self) -> Option<Box<[u8]>> {
        match self.src {
            Source::Local(b) => b.into_boxed(),
            _ => None,
        }
    }

    fn header_len(&self) -> usize {
        match &self.kind {
            MsgKind::Write { .. } | MsgKind::ReadResponse { .. } => TAGGED_HEADER_LEN,
            MsgKind::Send { .. } => UNTAGGED_HEADER_LEN,
            MsgKind::Terminate { len, .. } => *len as usize,
            MsgKind::ReadRequest(_) => UNTAGGED_HEADER_LEN + crate::wire::read_request::HEADER_LEN,
            MsgKind::Immediate { .. } => UNTAGGED_HEADER_LEN + crate::wire::atomic::IMMEDIATE_LEN,
            MsgKind::AtomicRequest(_) => UNTAGGED_HEADER_LEN + crate::wire::atomic::REQUEST_LEN,
            MsgKind::AtomicResponse(_) => UNTAGGED_HEADER_LEN + crate::wire::atomic::RESPONSE_LEN,
        }
    }

    fn queue(&self) -> Option<usize> {
        match &self.kind {
            MsgKind::Send { .. } | MsgKind::Immediate { .. } => Some(0),
            MsgKind::ReadRequest(_) | MsgKind::AtomicRequest(_) => Some(1),
            MsgKind::Terminate { .. } => None,
            MsgKind::AtomicResponse(_) => Some(3),
            MsgKind::Write { .. } | MsgKind::ReadResponse { .. } => None,
        }
    }

    fn payload(&self, offset: u32, len: u32) -> Option<&[u8]> {
        let (o, l) = (offset as usize, len as usize);
        match &self.src {
            Source::None => (l == 0).then_some(&[][..]),
            Source::Local(b) => b.slice(o, l),
            Source::Region(m) => m.slice(o, l),
        }
    }
}

/// An RDMA Read this side issued and awaits the response of.
#[derive(Debug)]
pub(crate) struct OutRead {
    pub sq: Option<u64>,
    pub sink_stag: u32,
    pub sink_to: u64,
    pub len: u32,
    pub received: u32,
}

/// An Atomic this side issued.
#[derive(Debug)]
pub(crate) struct OutAtomic {
    pub sq: u64,
    pub request_id: u32,
}

/// A response owed to the peer (IRD).
#[derive(Debug)]
pub(crate) enum Response {
    Read(ReadRequestRepr),
    Atomic(AtomicResponseRepr),
}

/// A Terminate to build: reason and the headers of the erroring segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TermPlan {
    pub reason: TerminateReason,
    pub ddp: Option<(IncludedHeader, u16)>,
    pub rdma: Option<[u8; 28]>,
}

impl TermPlan {
    pub(crate) fn bare(reason: TerminateReason) -> Self {
        TermPlan {
            reason,
            ddp: None,
            rdma: None,
        }
    }

    /// The Terminate ULPDU: untagged header (QN 2, `msn`, MO 0, L) and the
    /// Terminate header in RFC layout.
    pub(crate) fn build(&self, msn: u32) -> TxMsg {
        let mut ulpdu = [0u8; HEADER_CAPACITY];
        DdpRepr::Untagged(UntaggedRepr {
            last: true,
            version: DDP_VERSION,
            rsvd_ulp: RdmapControl::new(Opcode::Terminate).0,
            rsvd_ulp2: 0,
            qn: 2,
            msn,
            mo: 0,
        })
        .emit(&mut DdpPacket::new_unchecked(&mut ulpdu[..]));
        let (layer, etype, code) = self.reason.to_parts();
        let mut t = TerminateRepr::bare(layer, etype, code);
        if let Some((h, seg_len)) = self.ddp {
            t.ddp_header = Some(h);
            t.segment_len_valid = true;
            t.segment_len = seg_len;
        }
        t.rdma_header = self.rdma;
        t.rdma_flag = self.rdma.is_some();
        let n = t.emit(&mut ulpdu[UNTAGGED_HEADER_LEN..]);
        let mut m = TxMsg::new(
            None,
            MsgKind::Terminate {
                ulpdu,
                len: (UNTAGGED_HEADER_LEN + n) as u8,
            },
            Source::None,
            0,
        );
        m.msn = msn;
        m
    }
}

/// Transmit-side state.
#[derive(Debug)]
pub(crate) struct TxState {
    pub pending: VecDeque<TxMsg>,
    pub responses: VecDeque<Response>,
    pub terminate: Option<TxMsg>,
    pub rtr: Option<RtrKind>,
    pub active: VecDeque<TxMsg>,
    pub next_seq: u64,
    msn: [u32; 4],
    pub ord_reads: VecDeque<OutRead>,
    pub ord_atomics: VecDeque<OutAtomic>,
    pub ird_in_use: usize,
    pub terminate_emitted: bool,
    pub closed: bool,
}

impl TxState {
    pub(crate) fn new() -> Self {
        TxState {
            pending: VecDeque::new(),
            responses: VecDeque::new(),
            terminate: None,
            rtr: None,
            active: VecDeque::new(),
            next_seq: 0,
            msn: [1; 4],
            ord_reads: VecDeque::new(),
            ord_atomics: VecDeque::new(),
            ird_in_use: 0,
            terminate_emitted: false,
            closed: false,
        }
    }

    /// Takes the next MSN of queue `qn` (the first is 1; wraps).
    pub(crate) fn next_msn(&mut self, qn: usize) -> u32 {
        let m = self.msn[qn];
        self.msn[qn] = m.wrapping_add(1);
        m
    }

    pub(crate) fn ord_in_use(&self) -> usize {
        self.ord_reads.len() + self.ord_atomics.len()
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
        if let Some(resp) = self.tx.responses.pop_front() {
            match resp {
                Response::Atomic(r) => {
                    self.tx.ird_in_use = self.tx.ird_in_use.saturating_sub(1);
                    return Some(TxMsg::new(
                        None,
                        MsgKind::AtomicResponse(r),
                        Source::None,
                        0,
                    ));
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
                                let mut plan = TermPlan::bare(TerminateReason::RdmapProtection(
                                    map_read_source_error(e),
                                ));
                                plan.rdma = Some(req.to_bytes());
                                self.fail(plan);
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
        if needs_ord && self.tx.ord_in_use() >= self.cfg.ord as usize {
            return None;
        }
        self.tx.pending.pop_front()
    }

    fn start_and_emit(&mut self, mut msg: TxMsg) -> Segment {
        msg.seq = self.tx.next_seq;
        self.tx.next_seq += 1;
        if let Some(q) = msg.queue() {
            msg.msn = self.tx.next_msn(q);
        }
        match &msg.kind {
            MsgKind::ReadRequest(r) => self.tx.ord_reads.push_back(OutRead {
                sq: msg.sq,
                sink_stag: r.sink_stag,
                sink_to: r.sink_to,
                len: r.size,
                received: 0,
            }),
            MsgKind::AtomicRequest(r) => {
                if let Some(sq) = msg.sq {
                    self.tx.ord_atomics.push_back(OutAtomic {
                        sq,
                        request_id: r.request_id,
                    });
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
        let n = write_header(msg, offset, last, &mut hdr);
        msg.cursor += chunk;
        msg.unacked += 1;
        msg.emitted_all = last;
        let token = SegmentToken {
            msg: msg.seq,
            offset,
            len: chunk,
        };
        if last && matches!(msg.kind, MsgKind::ReadResponse { .. }) {
            self.tx.ird_in_use = self.tx.ird_in_use.saturating_sub(1);
        }
        Some(Segment::new(&hdr[..n], token))
    }

    /// Inbound Read Response: the read at the head of the ORD queue is complete.
    pub(crate) fn complete_read(&mut self) {
        if let Some(r) = self.tx.ord_reads.pop_front()
            && let Some(sq) = r.sq
        {
            self.sq_complete(sq, CompletionStatus::Success, |c| c.byte_len = r.len);
        }
    }
}

fn untagged(op: Opcode, last: bool, inv: u32, qn: u32, msn: u32, mo: u32) -> DdpRepr {
    DdpRepr::Untagged(UntaggedRepr {
        last,
        version: DDP_VERSION,
        rsvd_ulp: RdmapControl::new(op).0,
        rsvd_ulp2: inv,
        qn,
        msn,
        mo,
    })
}

fn tagged(op: Opcode, last: bool, stag: u32, to: u64) -> DdpRepr {
    DdpRepr::Tagged(TaggedRepr {
        last,
        version: DDP_VERSION,
        rsvd_ulp: RdmapControl::new(op).0,
        stag,
        tagged_offset: to,
    })
}

/// Writes the header of the segment at payload `offset`; returns its length.
fn write_header(msg: &TxMsg, offset: u32, last: bool, out: &mut [u8; HEADER_CAPACITY]) -> usize {
    let ddp = match &msg.kind {
        MsgKind::Send { opcode, inv } => untagged(*opcode, last, *inv, 0, msg.msn, offset),
        MsgKind::Write { stag, to } => tagged(
            Opcode::Write,
            last,
            *stag,
            to.wrapping_add(u64::from(offset)),
        ),
        MsgKind::ReadResponse { stag, to } => tagged(
            Opcode::ReadResponse,
            last,
            *stag,
            to.wrapping_add(u64::from(offset)),
        ),
        MsgKind::ReadRequest(_) => untagged(Opcode::ReadRequest, true, 0, 1, msg.msn, 0),
        MsgKind::Immediate { opcode, .. } => untagged(*opcode, true, 0, 0, msg.msn, 0),
        MsgKind::AtomicRequest(_) => untagged(Opcode::AtomicRequest, true, 0, 1, msg.msn, 0),
        MsgKind::AtomicResponse(_) => untagged(Opcode::AtomicResponse, true, 0, 3, msg.msn, 0),
        MsgKind::Terminate { ulpdu, len } => {
            let n = *len as usize;
            out[..n].copy_from_slice(&ulpdu[..n]);
            return n;
        }
    };
    ddp.emit(&mut DdpPacket::new_unchecked(&mut out[..]));
    let h = ddp.header_len();
    let rest = &mut out[h..];
    let extra = match &msg.kind {
        MsgKind::ReadRequest(r) => {
            r.emit(&mut ReadRequestPacket::new_unchecked(&mut rest[..]));
            crate::wire::read_request::HEADER_LEN
        }
        MsgKind::Immediate { data, .. } => {
            ImmediateDataRepr { data: *data }
                .emit(&mut ImmediateDataPacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::IMMEDIATE_LEN
        }
        MsgKind::AtomicRequest(r) => {
            r.emit(&mut AtomicRequestPacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::REQUEST_LEN
        }
        MsgKind::AtomicResponse(r) => {
            r.emit(&mut AtomicResponsePacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::RESPONSE_LEN
        }
        _ => 0,
    };
    h + extra
}

//! Receive: every RFC check on inbound DDP segments, placement, and the processing of
//! complete messages.
//!
//! The driver mirrors the MPA deframer's events: [`Connection::recv_header`] when a
//! ULPDU header is known, [`Connection::recv_payload`] for each run of payload octets,
//! [`Connection::recv_end`] once the FPDU's CRC was verified. All checks happen at the
//! header; placement happens directly into the posted buffer or registered region as
//! payload arrives (each write re-validated against the table); anything with an
//! effect beyond placement (completions, Read Requests, Terminates, invalidation)
//! happens only at `recv_end`. A violation found at the header is remembered, the
//! segment's payload is discarded, and the Terminate is queued at `recv_end` (so that
//! a CRC error reported instead by the driver takes precedence).

use crate::completion::{Completion, CompletionOp, CompletionStatus, Event, ReceivedTerminate};
use crate::connection::{Connection, State};
use crate::error::{OperationError, ProtectionError, TaggedError, TerminateReason, UntaggedError};
use crate::stag::{Access, AccessError, Stag};
use crate::tx::{Response, TermPlan};
use crate::wire::atomic::AtomicOp;
use crate::wire::terminate::IncludedHeader;
use crate::wire::{
    AtomicRequestPacket, AtomicRequestRepr, AtomicResponsePacket, AtomicResponseRepr, DdpPacket,
    ImmediateDataPacket, Opcode, RdmapControl, ReadRequestPacket, ReadRequestRepr,
    TAGGED_HEADER_LEN, TerminatePacket, TerminateRepr, UNTAGGED_HEADER_LEN, ddp, rdmap_extra_len,
};

/// The core's answer to a ULPDU header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RxVerdict {
    /// Go on: feed the payload, then `recv_end`.
    Accepted,
    /// The ULPDU cannot be accepted now (no posted receive and the receive pool is
    /// full). Keep the bytes, stop reading from the transport, and offer the same
    /// header again after the application read from the pool or posted a receive.
    Blocked,
}

#[derive(Debug)]
enum Control {
    ReadRequest(ReadRequestRepr),
    Terminate(TerminateRepr),
    SendRtr,
    Immediate {
        data: [u8; 8],
        solicited: bool,
        pool: bool,
    },
    AtomicRequest(AtomicRequestRepr),
    AtomicResponse(AtomicResponseRepr),
}

#[derive(Debug)]
enum Cur {
    Idle,
    Discard {
        remaining: usize,
    },
    Send {
        remaining: usize,
        seg_len: u32,
        offset: usize,
        last: bool,
        pool: bool,
    },
    Write {
        stag: Stag,
        to: u64,
        remaining: usize,
    },
    ReadResp {
        stag: Stag,
        to: u64,
        remaining: usize,
        seg_len: u32,
        last: bool,
    },
    Control {
        ctl: Control,
        remaining: usize,
    },
}

impl Cur {
    fn remaining(&self) -> usize {
        match self {
            Cur::Idle => 0,
            Cur::Discard { remaining }
            | Cur::Send { remaining, .. }
            | Cur::Write { remaining, .. }
            | Cur::ReadResp { remaining, .. }
            | Cur::Control { remaining, .. } => *remaining,
        }
    }
}

/// An inbound untagged message on QN 0 in progress.
#[derive(Debug)]
struct RxSend {
    msn: u32,
    received: u32,
    pool: bool,
    opcode: Opcode,
    inv: u32,
}

/// Receive-side state.
#[derive(Debug)]
pub(crate) struct RxState {
    pub received_fpdu: bool,
    cur: Cur,
    hdr: IncludedHeader,
    ulpdu_len: u16,
    pending_error: Option<TermPlan>,
    send: Option<RxSend>,
    expect: [u32; 4],
    expect_send_rtr: bool,
}

impl RxState {
    pub(crate) fn new(expect_send_rtr: bool) -> Self {
        RxState {
            received_fpdu: false,
            cur: Cur::Idle,
            hdr: IncludedHeader::new(&[]),
            ulpdu_len: 0,
            pending_error: None,
            send: None,
            expect: [1; 4],
            expect_send_rtr,
        }
    }

    pub(crate) fn reset_segment(&mut self) {
        self.cur = Cur::Idle;
        self.pending_error = None;
    }

    pub(crate) fn abandon_message(&mut self) {
        self.send = None;
    }
}

enum Plan {
    Blocked,
    Go {
        cur: Cur,
        hlen: usize,
        start: Option<RxSend>,
    },
}

type Check<T> = Result<T, TermPlan>;

fn tagged_error(e: AccessError) -> TerminateReason {
    match e {
        AccessError::InvalidStag => TerminateReason::DdpTagged(TaggedError::InvalidStag),
        AccessError::NotAssociated => TerminateReason::DdpTagged(TaggedError::StagNotAssociated),
        AccessError::Rights => TerminateReason::RdmapProtection(ProtectionError::AccessRights),
        AccessError::ToWrap => TerminateReason::DdpTagged(TaggedError::ToWrap),
        AccessError::Bounds => TerminateReason::DdpTagged(TaggedError::BaseBounds),
    }
}

/// RDMAP remote protection code for a failed Read Request / Atomic source check.
pub(crate) fn map_read_source_error(e: AccessError) -> ProtectionError {
    match e {
        AccessError::InvalidStag => ProtectionError::InvalidStag,
        AccessError::NotAssociated => ProtectionError::StagNotAssociated,
        AccessError::Rights => ProtectionError::AccessRights,
        AccessError::ToWrap => ProtectionError::ToWrap,
        AccessError::Bounds => ProtectionError::BaseBounds,
    }
}

fn masked_add(a: u64, b: u64, no_carry: u64) -> u64 {
    let mut r = 0u64;
    let mut carry = 0u64;
    for i in 0..64 {
        let s = ((a >> i) & 1) + ((b >> i) & 1) + carry;
        r |= (s & 1) << i;
        carry = if (no_carry >> i) & 1 == 1 { 0 } else { s >> 1 };
    }
    r
}

/// The RFC 7306 operation on the original value.
fn apply_atomic(req: &AtomicRequestRepr, op: AtomicOp, old: u64) -> u64 {
    match op {
        AtomicOp::FetchAdd => masked_add(old, req.add_swap, req.add_swap_mask),
        AtomicOp::Swap => (old & !req.add_swap_mask) | (req.add_swap & req.add_swap_mask),
        AtomicOp::CompareSwap => {
            if (old & req.compare_mask) == (req.compare & req.compare_mask) {
                (old & !req.add_swap_mask) | (req.add_swap & req.add_swap_mask)
            } else {
                old
            }
        }
    }
}

impl Connection {
    fn term(&self, reason: TerminateReason) -> TermPlan {
        TermPlan {
            reason,
            ddp: Some((self.rx.hdr, self.rx.ulpdu_len)),
            rdma: None,
        }
    }

    fn term_rdma(&self, reason: TerminateReason, rdma: [u8; 28]) -> TermPlan {
        TermPlan {
            reason,
            ddp: Some((self.rx.hdr, self.rx.ulpdu_len)),
            rdma: Some(rdma),
        }
    }

    /// A ULPDU header arrived: `ulpdu_len` from the MPA length field and `header`, the
    /// first `min(ulpdu_len, ulpdu_header_len(..))` octets of the ULPDU (more octets
    /// are accepted and treated as the start of the payload). Validates everything
    /// that can be validated from the header.
    pub fn recv_header(&mut self, ulpdu_len: u16, header: &[u8]) -> RxVerdict {
        if !matches!(self.rx.cur, Cur::Idle) {
            // A header before the previous segment's end: the driver lost framing.
            self.rx.reset_segment();
            self.fail(TermPlan::bare(TerminateReason::DdpLocalCatastrophic));
        }
        let total = usize::from(ulpdu_len);
        let header = &header[..header.len().min(total)];
        if self.state != State::Operational {
            self.rx.cur = Cur::Discard {
                remaining: total - header.len(),
            };
            return RxVerdict::Accepted;
        }
        self.rx.ulpdu_len = ulpdu_len;
        let ddp_len = match header.first() {
            Some(c) if c & ddp::TAGGED != 0 => TAGGED_HEADER_LEN,
            _ => UNTAGGED_HEADER_LEN,
        };
        self.rx.hdr = IncludedHeader::new(&header[..header.len().min(ddp_len)]);
        let mut plan = self.classify(total, header);
        if matches!(plan, Ok(Plan::Blocked)) && self.migrate_pooled_send() {
            plan = self.classify(total, header);
        }
        match plan {
            Ok(Plan::Blocked) => RxVerdict::Blocked,
            Ok(Plan::Go { cur, hlen, start }) => {
                if let Some(s) = start {
                    if s.pool {
                        self.pool.start(s.opcode.solicited(), None);
                    }
                    self.rx.send = Some(s);
                }
                self.rx.cur = cur;
                if header.len() > hlen {
                    self.recv_payload(&header[hlen..]);
                }
                RxVerdict::Accepted
            }
            Err(plan) => {
                self.rx.pending_error = Some(plan);
                self.rx.cur = Cur::Discard {
                    remaining: total - header.len(),
                };
                RxVerdict::Accepted
            }
        }
    }

    fn classify(&self, total: usize, h: &[u8]) -> Check<Plan> {
        let Ok(p) = DdpPacket::new_checked(h) else {
            return Err(TermPlan::bare(TerminateReason::DdpLocalCatastrophic));
        };
        let tagged = p.tagged();
        if p.version() != ddp::DDP_VERSION {
            return Err(self.term(if tagged {
                TerminateReason::DdpTagged(TaggedError::InvalidVersion)
            } else {
                TerminateReason::DdpUntagged(UntaggedError::InvalidVersion)
            }));
        }
        let rd = RdmapControl(p.rsvd_ulp());
        if rd.version() != crate::wire::rdmap::RDMAP_VERSION {
            return Err(self.term(TerminateReason::RdmapOperation(
                OperationError::InvalidVersion,
            )));
        }
        let unexpected = || {
            self.term(TerminateReason::RdmapOperation(
                OperationError::UnexpectedOpcode,
            ))
        };
        let op = rd.opcode().ok_or_else(unexpected)?;
        if op.is_tagged() != tagged || (op.is_extension() && !self.cfg.extensions) {
            return Err(unexpected());
        }
        let hlen = if tagged {
            TAGGED_HEADER_LEN
        } else {
            UNTAGGED_HEADER_LEN + rdmap_extra_len(op as u8)
        };
        if op != Opcode::Terminate && h.len() < hlen {
            return Err(self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)));
        }
        let payload = total.saturating_sub(hlen);
        match op {
            Opcode::Write => self.classify_write(&p, payload),
            Opcode::ReadResponse => self.classify_read_response(&p, payload),
            Opcode::Send | Opcode::SendSe | Opcode::SendInvalidate | Opcode::SendSeInvalidate => {
                self.classify_send(&p, op, payload)
            }
            Opcode::Terminate => {
                let body = &h[UNTAGGED_HEADER_LEN.min(h.len())..];
                let t = TerminatePacket::new_checked(body)
                    .and_then(|tp| TerminateRepr::parse(&tp))
                    .unwrap_or_else(|_| TerminateRepr::bare(0xF, 0xF, 0xFF));
                Ok(Plan::Go {
                    cur: Cur::Control {
                        ctl: Control::Terminate(t),
                        remaining: total.saturating_sub(h.len().max(UNTAGGED_HEADER_LEN)),
                    },
                    hlen: h.len(),
                    start: None,
                })
            }
            Opcode::ReadRequest | Opcode::AtomicRequest => {
                self.classify_request(&p, op, &h[UNTAGGED_HEADER_LEN..hlen], payload)
            }
            Opcode::ImmediateData | Opcode::ImmediateDataSe => {
                self.classify_immediate(&p, op, &h[UNTAGGED_HEADER_LEN..hlen], payload)
            }
            Opcode::AtomicResponse => {
                self.classify_atomic_response(&p, &h[UNTAGGED_HEADER_LEN..hlen], payload)
            }
        }
    }

    fn classify_write(&self, p: &DdpPacket<&[u8]>, payload: usize) -> Check<Plan> {
        let stag = Stag(p.stag());
        let to = p.tagged_offset();
        if payload > 0 {
            // RFC 5041 §5.2: zero-length tagged segments are not checked.
            self.table
                .check(
                    self.cfg.conn_id,
                    stag,
                    to,
                    payload as u64,
                    Access::REMOTE_WRITE,
                )
                .map_err(|e| self.term(tagged_error(e)))?;
        }
        Ok(Plan::Go {
            cur: Cur::Write {
                stag,
                to,
                remaining: payload,
            },
            hlen: TAGGED_HEADER_LEN,
            start: None,
        })
    }

    fn classify_read_response(&self, p: &DdpPacket<&[u8]>, payload: usize) -> Check<Plan> {
        let r = self.tx.ord_reads.front().ok_or_else(|| {
            self.term(TerminateReason::RdmapOperation(
                OperationError::UnexpectedOpcode,
            ))
        })?;
        let stag = Stag(p.stag());
        let to = p.tagged_offset();
        let bounds = || self.term(TerminateReason::DdpTagged(TaggedError::BaseBounds));
        if stag.0 != r.sink_stag {
            return Err(self.term(TerminateReason::DdpTagged(TaggedError::InvalidStag)));
        }
        let expected = r
            .sink_to
            .checked_add(u64::from(r.received))
            .ok_or_else(bounds)?;
        if to != expected {
            return Err(bounds());
        }
        let seg_len = u32::try_from(payload).map_err(|_| bounds())?;
        let end = r.received.checked_add(seg_len).ok_or_else(bounds)?;
        if end > r.len || (p.last() && end != r.len) {
            return Err(bounds());
        }
        if payload > 0 {
            self.table
                .check(
                    self.cfg.conn_id,
                    stag,
                    to,
                    payload as u64,
                    Access::LOCAL_WRITE,
                )
                .map_err(|e| {
                    self.term(match e {
                        AccessError::Rights => TerminateReason::DdpTagged(TaggedError::InvalidStag),
                        e => tagged_error(e),
                    })
                })?;
        }
        Ok(Plan::Go {
            cur: Cur::ReadResp {
                stag,
                to,
                remaining: payload,
                seg_len,
                last: p.last(),
            },
            hlen: TAGGED_HEADER_LEN,
            start: None,
        })
    }

    /// MSN/MO checks shared by messages on QN 0 that start a new message.
    fn check_new_untagged(&self, p: &DdpPacket<&[u8]>, qn: usize) -> Check<()> {
        if p.qn() as usize != qn {
            return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::InvalidQn)));
        }
        if p.msn() != self.rx.expect[qn] {
            return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::MsnRange)));
        }
        if p.mo() != 0 {
            return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::InvalidMo)));
        }
        Ok(())
    }

    fn classify_send(&self, p: &DdpPacket<&[u8]>, op: Opcode, payload: usize) -> Check<Plan> {
        let too_long = || self.term(TerminateReason::DdpUntagged(UntaggedError::TooLong));
        let seg_len = u32::try_from(payload).map_err(|_| too_long())?;
        let last = p.last();
        if let Some(s) = &self.rx.send {
            if p.qn() != 0 {
                return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::InvalidQn)));
            }
            if p.msn() != s.msn {
                return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::MsnRange)));
            }
            if p.mo() != s.received {
                return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::InvalidMo)));
            }
            s.received.checked_add(seg_len).ok_or_else(too_long)?;
            if s.pool && !self.pool.has_room(payload, false) {
                return Ok(Plan::Blocked);
            }
            let offset = s.received as usize;
            if !s.pool {
                let buf_len = self.rq.front().map_or(0, |r| r.buf.len());
                if offset + payload > buf_len {
                    return Err(too_long());
                }
            }
            return Ok(Plan::Go {
                cur: Cur::Send {
                    remaining: payload,
                    seg_len,
                    offset,
                    last,
                    pool: s.pool,
                },
                hlen: UNTAGGED_HEADER_LEN,
                start: None,
            });
        }
        self.check_new_untagged(p, 0)?;
        if self.rx.expect_send_rtr && payload == 0 && last && op == Opcode::Send {
            return Ok(Plan::Go {
                cur: Cur::Control {
                    ctl: Control::SendRtr,
                    remaining: 0,
                },
                hlen: UNTAGGED_HEADER_LEN,
                start: None,
            });
        }
        let pool = match self.choose_target(payload)? {
            Some(pool) => pool,
            None => return Ok(Plan::Blocked),
        };
        Ok(Plan::Go {
            cur: Cur::Send {
                remaining: payload,
                seg_len,
                offset: 0,
                last,
                pool,
            },
            hlen: UNTAGGED_HEADER_LEN,
            start: Some(RxSend {
                msn: p.msn(),
                received: 0,
                pool,
                opcode: op,
                inv: p.rsvd_ulp2(),
            }),
        })
    }

    /// Where a new untagged message goes: `Some(false)` the posted receive,
    /// `Some(true)` the pool, `None` blocked.
    fn choose_target(&self, payload: usize) -> Check<Option<bool>> {
        if self.pool.is_empty()
            && let Some(r) = self.rq.front()
        {
            if payload > r.buf.len() {
                return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::TooLong)));
            }
            return Ok(Some(false));
        }
        if !self.pool.enabled() {
            return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::NoBuffer)));
        }
        if self.pool.has_room(payload, true) {
            Ok(Some(true))
        } else {
            Ok(None)
        }
    }

    /// Moves the message being assembled in the pool into the receive posted
    /// meanwhile, so that a message larger than the pool is not blocked forever when
    /// the application posts receives instead of reading. Only done between segments,
    /// when the message is the pool's only one and nothing of it has been read, and
    /// when it fits the posted buffer. Returns whether it moved.
    fn migrate_pooled_send(&mut self) -> bool {
        let Some(s) = self.rx.send.as_mut() else {
            return false;
        };
        let Some(recv) = self.rq.front() else {
            return false;
        };
        if !s.pool || self.pool.msgs.len() != 1 {
            return false;
        }
        let Some(m) = self.pool.msgs.front() else {
            return false;
        };
        if m.consumed != 0 || m.len != m.committed || m.len != s.received as usize {
            return false;
        }
        if m.len > recv.buf.len() {
            return false;
        }
        let mem = recv.buf.mem();
        if self.pool.take_partial(|off, bytes| {
            mem.write(off, bytes);
        }) {
            s.pool = false;
            true
        } else {
            false
        }
    }

    fn single_segment(&self, p: &DdpPacket<&[u8]>, payload: usize) -> Check<()> {
        if !p.last() || payload != 0 {
            return Err(self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)));
        }
        Ok(())
    }

    fn classify_request(
        &self,
        p: &DdpPacket<&[u8]>,
        op: Opcode,
        body: &[u8],
        payload: usize,
    ) -> Check<Plan> {
        self.check_new_untagged(p, 1)?;
        self.single_segment(p, payload)?;
        if self.tx.ird_in_use >= self.cfg.ird as usize {
            return Err(self.term(TerminateReason::RdmapOperation(
                OperationError::CatastrophicStream,
            )));
        }
        let ctl = if op == Opcode::ReadRequest {
            let req =
                ReadRequestRepr::parse(&ReadRequestPacket::new_unchecked(body)).map_err(|_| {
                    self.term(TerminateReason::RdmapOperation(OperationError::Unspecified))
                })?;
            let rdma = req.to_bytes();
            if req.size > 0 {
                let prot = |e| self.term_rdma(TerminateReason::RdmapProtection(e), rdma);
                self.table
                    .check(
                        self.cfg.conn_id,
                        Stag(req.src_stag),
                        req.src_to,
                        u64::from(req.size),
                        Access::REMOTE_READ,
                    )
                    .map_err(|e| prot(map_read_source_error(e)))?;
                if req.sink_to.checked_add(u64::from(req.size)).is_none() {
                    return Err(prot(ProtectionError::ToWrap));
                }
            }
            Control::ReadRequest(req)
        } else {
            let req = AtomicRequestRepr::parse(&AtomicRequestPacket::new_unchecked(body)).map_err(
                |_| self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)),
            )?;
            if AtomicOp::from_u8(req.opcode).is_none() {
                return Err(self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)));
            }
            let prot = |e| self.term(TerminateReason::RdmapProtection(e));
            if req.remote_to % 8 != 0 {
                return Err(prot(ProtectionError::BaseBounds));
            }
            self.table
                .check(
                    self.cfg.conn_id,
                    Stag(req.remote_stag),
                    req.remote_to,
                    8,
                    Access::REMOTE_ATOMIC,
                )
                .map_err(|e| prot(map_read_source_error(e)))?;
            Control::AtomicRequest(req)
        };
        Ok(Plan::Go {
            cur: Cur::Control { ctl, remaining: 0 },
            hlen: UNTAGGED_HEADER_LEN + body.len(),
            start: None,
        })
    }

    fn classify_immediate(
        &self,
        p: &DdpPacket<&[u8]>,
        op: Opcode,
        body: &[u8],
        payload: usize,
    ) -> Check<Plan> {
        if self.rx.send.is_some() {
            return Err(self.term(TerminateReason::DdpUntagged(UntaggedError::MsnRange)));
        }
        self.check_new_untagged(p, 0)?;
        self.single_segment(p, payload)?;
        let data = ImmediateDataPacket::new_checked(body)
            .map(|ip| ip.data())
            .map_err(|_| self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)))?;
        let Some(pool) = self.choose_target(0)? else {
            return Ok(Plan::Blocked);
        };
        Ok(Plan::Go {
            cur: Cur::Control {
                ctl: Control::Immediate {
                    data,
                    solicited: op.solicited(),
                    pool,
                },
                remaining: 0,
            },
            hlen: UNTAGGED_HEADER_LEN + body.len(),
            start: None,
        })
    }

    fn classify_atomic_response(
        &self,
        p: &DdpPacket<&[u8]>,
        body: &[u8],
        payload: usize,
    ) -> Check<Plan> {
        self.check_new_untagged(p, 3)?;
        self.single_segment(p, payload)?;
        let r = AtomicResponseRepr::parse(&AtomicResponsePacket::new_unchecked(body))
            .map_err(|_| self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)))?;
        match self.tx.ord_atomics.front() {
            Some(a) if a.request_id == r.request_id => {}
            _ => {
                return Err(self.term(TerminateReason::RdmapOperation(
                    OperationError::UnexpectedOpcode,
                )));
            }
        }
        Ok(Plan::Go {
            cur: Cur::Control {
                ctl: Control::AtomicResponse(r),
                remaining: 0,
            },
            hlen: UNTAGGED_HEADER_LEN + body.len(),
            start: None,
        })
    }

    /// A run of payload octets of the current ULPDU (markers stripped). Placed
    /// directly at its final position.
    pub fn recv_payload(&mut self, data: &[u8]) {
        let conn = self.cfg.conn_id;
        let operational = self.state == State::Operational;
        let mut err = None;
        // Tagged placement: an inbound Write needs remote write rights, a Read
        // Response lands in our own region (local write).
        let tagged_need = if matches!(self.rx.cur, Cur::Write { .. }) {
            Access::REMOTE_WRITE
        } else {
            Access::LOCAL_WRITE
        };
        match &mut self.rx.cur {
            Cur::Idle => {}
            Cur::Discard { remaining } | Cur::Control { remaining, .. } => {
                *remaining = remaining.saturating_sub(data.len());
            }
            Cur::Send {
                remaining,
                offset,
                pool,
                ..
            } => {
                let n = data.len().min(*remaining);
                if operational {
                    if *pool {
                        self.pool.append(&data[..n]);
                    } else if !self
                        .rq
                        .front()
                        .is_some_and(|r| r.buf.mem().write(*offset, &data[..n]))
                    {
                        err = Some(TerminateReason::DdpUntagged(UntaggedError::TooLong));
                    }
                }
                *offset += n;
                *remaining -= n;
            }
            Cur::Write {
                stag,
                to,
                remaining,
            }
            | Cur::ReadResp {
                stag,
                to,
                remaining,
                ..
            } => {
                let n = data.len().min(*remaining);
                if operational && n > 0 {
                    if let Err(e) = self.table.place(conn, *stag, *to, &data[..n], tagged_need) {
                        err = Some(tagged_error(e));
                    }
                }
                *to = to.wrapping_add(n as u64);
                *remaining -= n;
            }
        }
        if let Some(reason) = err {
            let remaining = self.rx.cur.remaining();
            self.rx.pending_error = Some(self.term(reason));
            self.rx.cur = Cur::Discard { remaining };
        }
    }

    /// Where the next payload octets (at most `max`) of the segment being received
    /// go, if they go straight into a posted receive or a registered region (not the
    /// pool, not a discarded or control segment). The span has passed every check;
    /// after filling `n` octets of it, call [`Self::recv_payload_direct`].
    pub fn direct_target(&mut self, max: usize) -> Option<crate::placement::DirectTarget> {
        if self.state != State::Operational || self.rx.pending_error.is_some() {
            return None;
        }
        let conn = self.cfg.conn_id;
        let mem = match &self.rx.cur {
            Cur::Send {
                remaining,
                offset,
                pool: false,
                ..
            } => {
                let n = max.min(*remaining);
                self.rq.front()?.buf.mem().sub(*offset, n)?
            }
            Cur::Write {
                stag,
                to,
                remaining,
            } => {
                let n = max.min(*remaining);
                self.table
                    .direct_span(conn, *stag, *to, n, Access::REMOTE_WRITE)
                    .ok()?
            }
            Cur::ReadResp {
                stag,
                to,
                remaining,
                ..
            } => {
                let n = max.min(*remaining);
                self.table
                    .direct_span(conn, *stag, *to, n, Access::LOCAL_WRITE)
                    .ok()?
            }
            _ => return None,
        };
        (mem.len() > 0).then(|| crate::placement::DirectTarget::new(mem))
    }

    /// `n` payload octets were received straight into the span
    /// [`Self::direct_target`] gave: account for them as [`Self::recv_payload`] would
    /// have placed them.
    pub fn recv_payload_direct(&mut self, n: usize) {
        match &mut self.rx.cur {
            Cur::Send {
                remaining, offset, ..
            } => {
                let n = n.min(*remaining);
                *offset += n;
                *remaining -= n;
            }
            Cur::Write { to, remaining, .. } | Cur::ReadResp { to, remaining, .. } => {
                let n = n.min(*remaining);
                *to = to.wrapping_add(n as u64);
                *remaining -= n;
            }
            Cur::Discard { remaining } | Cur::Control { remaining, .. } => {
                *remaining = remaining.saturating_sub(n);
            }
            Cur::Idle => {}
        }
    }

    /// The current FPDU is complete and its CRC verified: completes messages, acts on
    /// control messages, or sends the Terminate for a violation found earlier.
    pub fn recv_end(&mut self) {
        let cur = std::mem::replace(&mut self.rx.cur, Cur::Idle);
        self.rx.received_fpdu = true;
        if let Some(plan) = self.rx.pending_error.take() {
            self.fail(plan);
            return;
        }
        if self.state != State::Operational || matches!(cur, Cur::Idle) {
            return;
        }
        if cur.remaining() != 0 {
            // Fewer payload octets than the length announced: the driver lost framing.
            self.fail(TermPlan::bare(TerminateReason::DdpLocalCatastrophic));
            return;
        }
        match cur {
            Cur::Idle | Cur::Discard { .. } | Cur::Write { .. } => {}
            Cur::Send {
                seg_len,
                last,
                pool,
                ..
            } => self.end_send_segment(seg_len, last, pool),
            Cur::ReadResp { seg_len, last, .. } => {
                if let Some(r) = self.tx.ord_reads.front_mut() {
                    r.received += seg_len;
                }
                if last {
                    self.complete_read();
                }
            }
            Cur::Control { ctl, .. } => self.end_control(ctl),
        }
    }

    fn end_send_segment(&mut self, seg_len: u32, last: bool, pool: bool) {
        let Some(s) = self.rx.send.as_mut() else {
            return;
        };
        s.received += seg_len;
        if pool {
            self.pool.commit(last);
        }
        if !last {
            return;
        }
        let Some(s) = self.rx.send.take() else {
            return;
        };
        self.rx.expect[0] = self.rx.expect[0].wrapping_add(1);
        let mut status = CompletionStatus::Success;
        let mut invalidated = None;
        let mut inv_err = None;
        if s.opcode.invalidates() {
            let stag = Stag(s.inv);
            match self.table.invalidate_remote(self.cfg.conn_id, stag) {
                Ok(()) => invalidated = Some(stag),
                Err(_) => {
                    status = CompletionStatus::RemoteInvalidRequest;
                    inv_err = Some(self.term(TerminateReason::RdmapProtection(
                        ProtectionError::CannotInvalidate,
                    )));
                }
            }
        }
        if pool {
            if let Some(m) = self.pool.last_mut() {
                m.invalidated = invalidated;
            }
        } else if let Some(r) = self.rq.pop_front() {
            let mut c = Completion::new(r.wr_id, CompletionOp::Recv, status);
            c.byte_len = s.received;
            c.solicited = s.opcode.solicited();
            c.invalidated = invalidated;
            c.buffer = r.buf.into_boxed();
            self.push_completion(c);
        }
        match inv_err {
            Some(plan) => self.fail(plan),
            None => self.drain_pool_to_posted(),
        }
    }

    fn end_control(&mut self, ctl: Control) {
        match ctl {
            Control::ReadRequest(req) => {
                self.rx.expect[1] = self.rx.expect[1].wrapping_add(1);
                self.tx.ird_in_use += 1;
                self.tx.responses.push_back(Response::Read(req));
            }
            Control::Terminate(t) => {
                self.fail_silently(Event::PeerTerminated(ReceivedTerminate {
                    reason: t.reason(),
                    header: t,
                }));
            }
            Control::SendRtr => {
                self.rx.expect[0] = self.rx.expect[0].wrapping_add(1);
                self.rx.expect_send_rtr = false;
            }
            Control::Immediate {
                data,
                solicited,
                pool,
            } => {
                self.rx.expect[0] = self.rx.expect[0].wrapping_add(1);
                if pool {
                    self.pool.start(solicited, None);
                    if let Some(m) = self.pool.last_mut() {
                        m.immediate = Some(data);
                    }
                    self.pool.commit(true);
                    self.drain_pool_to_posted();
                } else if let Some(r) = self.rq.pop_front() {
                    let mut c =
                        Completion::new(r.wr_id, CompletionOp::Recv, CompletionStatus::Success);
                    c.solicited = solicited;
                    c.immediate = Some(data);
                    c.buffer = r.buf.into_boxed();
                    self.push_completion(c);
                }
            }
            Control::AtomicRequest(req) => {
                self.rx.expect[1] = self.rx.expect[1].wrapping_add(1);
                let Some(op) = AtomicOp::from_u8(req.opcode) else {
                    return;
                };
                match self.table.update_u64(
                    self.cfg.conn_id,
                    Stag(req.remote_stag),
                    req.remote_to,
                    |old| apply_atomic(&req, op, old),
                ) {
                    Ok(old) => {
                        self.tx.ird_in_use += 1;
                        self.tx
                            .responses
                            .push_back(Response::Atomic(AtomicResponseRepr {
                                request_id: req.request_id,
                                original_value: old,
                            }));
                    }
                    Err(e) => {
                        let plan =
                            self.term(TerminateReason::RdmapProtection(map_read_source_error(e)));
                        self.fail(plan);
                    }
                }
            }
            Control::AtomicResponse(r) => {
                self.rx.expect[3] = self.rx.expect[3].wrapping_add(1);
                if let Some(a) = self.tx.ord_atomics.pop_front() {
                    self.sq_complete(a.sq, CompletionStatus::Success, |c| {
                        c.atomic_value = Some(r.original_value);
                    });
                }
            }
        }
    }

    /// Convenience for tests and simple drivers: a whole ULPDU (header and payload)
    /// whose FPDU was already verified.
    pub fn recv_ulpdu(&mut self, ulpdu: &[u8]) -> RxVerdict {
        let len = u16::try_from(ulpdu.len()).unwrap_or(u16::MAX);
        let ulpdu = &ulpdu[..usize::from(len)];
        let hlen = crate::wire::ulpdu_header_len(ulpdu).min(ulpdu.len());
        let v = self.recv_header(len, &ulpdu[..hlen]);
        if v == RxVerdict::Accepted {
            self.recv_payload(&ulpdu[hlen..]);
            self.recv_end();
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_ops() {
        let mut r = AtomicRequestRepr {
            add_swap: 5,
            ..Default::default()
        };
        assert_eq!(apply_atomic(&r, AtomicOp::FetchAdd, 10), 15);
        assert_eq!(apply_atomic(&r, AtomicOp::FetchAdd, u64::MAX), 4);
        r.add_swap_mask = 1 << 31;
        assert_eq!(
            apply_atomic(&r, AtomicOp::FetchAdd, 0xFFFF_FFFF),
            0x0000_0004,
            "no carry out of bit 31"
        );
        r.add_swap_mask = u64::MAX;
        assert_eq!(apply_atomic(&r, AtomicOp::Swap, 10), 5);
        r.compare = 10;
        r.compare_mask = u64::MAX;
        assert_eq!(apply_atomic(&r, AtomicOp::CompareSwap, 10), 5);
        assert_eq!(apply_atomic(&r, AtomicOp::CompareSwap, 11), 11);
    }
}

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

mod classify;
mod complete;

use super::terminate::TermPlan;
use super::{Connection, State};
use crate::error::{TerminateReason, UntaggedError};
use crate::placement::DirectTarget;
use crate::stag::{Access, Stag};
use crate::wire::terminate::IncludedHeader;
use crate::wire::{
    AtomicRequestRepr, AtomicResponseRepr, Opcode, ReadRequestRepr, TAGGED_HEADER_LEN,
    TerminateRepr, UNTAGGED_HEADER_LEN, ddp,
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
    /// Accounts for `n` more payload octets (at most what remains).
    fn advance(&mut self, n: usize) {
        match self {
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

    /// The right tagged placement needs: an inbound Write remote write, a Read
    /// Response (landing in our own region) local write.
    fn tagged_access(&self) -> Access {
        if matches!(self, Cur::Write { .. }) {
            Access::REMOTE_WRITE
        } else {
            Access::LOCAL_WRITE
        }
    }

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
pub(super) struct RxState {
    /// At least one FPDU arrived (see `Connection::has_received_fpdu`).
    received_fpdu: bool,
    /// The segment being received.
    cur: Cur,
    /// Its DDP header, for a Terminate.
    hdr: IncludedHeader,
    /// Its ULPDU length, for a Terminate.
    ulpdu_len: u16,
    /// A violation found at its header, reported at its end.
    pending_error: Option<TermPlan>,
    /// The untagged message on QN 0 in progress.
    send: Option<RxSend>,
    /// Next expected MSN of each untagged queue.
    expect: [u32; 4],
    /// The peer's Send RTR is still to be swallowed.
    expect_send_rtr: bool,
}

impl RxState {
    /// Nothing received yet.
    pub(super) fn new(expect_send_rtr: bool) -> Self {
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

    /// Whether at least one FPDU arrived (or was refused by MPA).
    pub(super) fn received_fpdu(&self) -> bool {
        self.received_fpdu
    }

    /// Forgets the segment being received (its verdict included).
    fn reset_segment(&mut self) {
        self.cur = Cur::Idle;
        self.pending_error = None;
    }

    /// MPA refused an FPDU: the segment in progress is abandoned, and the FPDU
    /// counts as received.
    pub(super) fn llp_error(&mut self) {
        self.reset_segment();
        self.received_fpdu = true;
    }

    /// The connection failed: the inbound message in progress is given up.
    pub(super) fn abandon_message(&mut self) {
        self.send = None;
    }

    /// Expected MSN of queue `qn` is used up.
    fn advance_msn(&mut self, qn: usize) {
        self.expect[qn] = self.expect[qn].wrapping_add(1);
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

impl Connection {
    /// A Terminate for `reason` carrying the current segment's DDP header.
    fn term(&self, reason: TerminateReason) -> TermPlan {
        TermPlan::with_ddp(reason, self.rx.hdr, self.rx.ulpdu_len)
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

    /// A run of payload octets of the current ULPDU (markers stripped). Placed
    /// directly at its final position.
    pub fn recv_payload(&mut self, data: &[u8]) {
        let n = data.len().min(self.rx.cur.remaining());
        let mut err = None;
        if self.state == State::Operational {
            match &self.rx.cur {
                Cur::Send { pool: true, .. } => self.pool.append(&data[..n]),
                Cur::Send { offset, .. } => {
                    let posted = self.rq.front();
                    if !posted.is_some_and(|r| r.buf.mem().write(*offset, &data[..n])) {
                        err = Some(TerminateReason::DdpUntagged(UntaggedError::TooLong));
                    }
                }
                Cur::Write { stag, to, .. } | Cur::ReadResp { stag, to, .. } if n > 0 => {
                    let need = self.rx.cur.tagged_access();
                    if let Err(e) = self
                        .table
                        .place(self.cfg.conn_id, *stag, *to, &data[..n], need)
                    {
                        err = Some(e.tagged_reason());
                    }
                }
                _ => {}
            }
        }
        self.rx.cur.advance(data.len());
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
    pub fn direct_target(&mut self, max: usize) -> Option<DirectTarget> {
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
            }
            | Cur::ReadResp {
                stag,
                to,
                remaining,
                ..
            } => {
                let n = max.min(*remaining);
                self.table
                    .direct_span(conn, *stag, *to, n, self.rx.cur.tagged_access())
                    .ok()?
            }
            _ => return None,
        };
        (mem.len() > 0).then(|| DirectTarget::new(mem))
    }

    /// For a driver that hands pooled messages to a reader of its own (a sockets
    /// layer whose reader waits with its buffer): how many of the next payload
    /// octets (at most `max`) may go straight to that reader instead of into the
    /// receive pool. Non-zero only while the segment being received is an untagged
    /// Send bound for the pool and the pool holds nothing else (no other message,
    /// no octet), so the octets are the next the reader gets. After handing over
    /// `n` of them, call [`Self::recv_payload_taken`]. Like all payload, they are
    /// verified only when [`Self::recv_end`] comes.
    pub fn pool_bypass(&self, max: usize) -> usize {
        if self.state != State::Operational || self.rx.pending_error.is_some() {
            return 0;
        }
        match &self.rx.cur {
            Cur::Send {
                remaining,
                pool: true,
                ..
            } if self.pool.bypassable() => max.min(*remaining),
            _ => 0,
        }
    }

    /// `n` payload octets that [`Self::pool_bypass`] allowed went straight to the
    /// driver's reader: they count as read from the pool.
    pub fn recv_payload_taken(&mut self, n: usize) {
        let n = n.min(self.pool_bypass(n));
        self.pool.taken_directly(n);
        self.rx.cur.advance(n);
    }

    /// `n` payload octets were received straight into the span
    /// [`Self::direct_target`] gave: account for them as [`Self::recv_payload`] would
    /// have placed them.
    pub fn recv_payload_direct(&mut self, n: usize) {
        self.rx.cur.advance(n);
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
            Cur::ReadResp { seg_len, last, .. } => self.end_read_response(seg_len, last),
            Cur::Control { ctl, .. } => self.end_control(ctl),
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

//! What a verified segment does at its end: completes receives, answers or
//! completes Reads and Atomics, acts on Terminates and RTRs.

use super::{Connection, Control};
use crate::completion::{Completion, CompletionOp, CompletionStatus, Event, ReceivedTerminate};
use crate::connection::requests::{PendingAtomic, Response};
use crate::error::{ProtectionError, TerminateReason};
use crate::stag::Stag;
use crate::wire::atomic::AtomicOp;

impl Connection {
    /// The end of a verified segment of an inbound Send.
    pub(super) fn end_send_segment(&mut self, seg_len: u32, last: bool, pool: bool) {
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
        self.rx.advance_msn(0);
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

    /// A verified control message (single segment): acts on it.
    pub(super) fn end_control(&mut self, ctl: Control) {
        match ctl {
            Control::ReadRequest(req) => {
                self.rx.advance_msn(1);
                self.ird.push(Response::Read(req));
            }
            Control::Terminate(t) => {
                self.fail_silently(Event::PeerTerminated(ReceivedTerminate {
                    reason: t.reason(),
                    header: t,
                }));
            }
            Control::SendRtr => {
                self.rx.advance_msn(0);
                self.rx.expect_send_rtr = false;
            }
            Control::Immediate {
                data,
                solicited,
                pool,
            } => {
                self.rx.advance_msn(0);
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
                self.rx.advance_msn(1);
                // Checked by classify; performed when its response is generated
                // (RFC 7306 §7), in arrival order with the Reads.
                if let Some(op) = AtomicOp::from_u8(req.opcode) {
                    self.ird.push(Response::Atomic(PendingAtomic {
                        req,
                        op,
                        ddp: (self.rx.hdr, self.rx.ulpdu_len),
                    }));
                }
            }
            Control::AtomicResponse(r) => {
                self.rx.advance_msn(3);
                if let Some(sq) = self.ord.pop_atomic() {
                    self.sq_complete(sq, CompletionStatus::Success, |c| {
                        c.atomic_value = Some(r.original_value);
                    });
                }
            }
        }
    }

    /// The end of a verified Read Response segment of `seg_len` octets.
    pub(super) fn end_read_response(&mut self, seg_len: u32, last: bool) {
        self.ord.read_received(seg_len);
        if last && let Some((Some(sq), len)) = self.ord.pop_read() {
            self.sq_complete(sq, CompletionStatus::Success, |c| c.byte_len = len);
        }
    }
}

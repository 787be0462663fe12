//! The checks on an inbound segment's header (RFC 5040 §5, RFC 5041 §5, RFC 7306),
//! deciding where its payload goes or which Terminate it earns.

use super::{Check, Connection, Control, Cur, Plan, RxSend, TermPlan};
use crate::error::{
    AccessError, OperationError, ProtectionError, TaggedError, TerminateReason, UntaggedError,
};
use crate::stag::{Access, Stag};
use crate::wire::atomic::AtomicOp;
use crate::wire::{
    AtomicRequestPacket, AtomicRequestRepr, AtomicResponsePacket, AtomicResponseRepr, DdpPacket,
    ImmediateDataPacket, Opcode, RdmapControl, ReadRequestPacket, ReadRequestRepr,
    TAGGED_HEADER_LEN, TerminatePacket, TerminateRepr, UNTAGGED_HEADER_LEN, ddp, rdmap_extra_len,
};

impl Connection {
    /// Every check that can be made from the header: where the segment goes, or
    /// the Terminate it earns.
    pub(super) fn classify(&self, total: usize, h: &[u8]) -> Check<Plan> {
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
        self.check_tagged_target(stag, to, payload, Access::REMOTE_WRITE)
            .map_err(|e| self.term(e.tagged_reason()))?;
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

    /// Checks the target of a tagged segment of `payload` octets; RFC 5041 §5.2:
    /// zero-length tagged segments are not checked.
    fn check_tagged_target(
        &self,
        stag: Stag,
        to: u64,
        payload: usize,
        need: Access,
    ) -> Result<(), AccessError> {
        if payload == 0 {
            return Ok(());
        }
        self.table
            .check(self.cfg.conn_id, stag, to, payload as u64, need)
            .map(|_| ())
    }

    fn classify_read_response(&self, p: &DdpPacket<&[u8]>, payload: usize) -> Check<Plan> {
        let stag = Stag(p.stag());
        let to = p.tagged_offset();
        let seg_len = self
            .ord
            .check_read_response(stag.0, to, payload, p.last())
            .map_err(|reason| self.term(reason))?;
        self.check_tagged_target(stag, to, payload, Access::LOCAL_WRITE)
            .map_err(|e| self.term(e.read_sink_reason()))?;
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
    pub(super) fn migrate_pooled_send(&mut self) -> bool {
        let Some(s) = self.rx.send.as_mut() else {
            return false;
        };
        let Some(recv) = self.rq.front() else {
            return false;
        };
        if !s.pool {
            return false;
        }
        let Some(len) = self.pool.sole_unread_len() else {
            return false;
        };
        if len != s.received as usize || len > recv.buf.len() {
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
        if self.ird.in_use() >= self.cfg.ird as usize {
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
                let prot = |e| {
                    self.term(TerminateReason::RdmapProtection(e))
                        .with_rdma(rdma)
                };
                self.table
                    .check(
                        self.cfg.conn_id,
                        Stag(req.src_stag),
                        req.src_to,
                        u64::from(req.size),
                        Access::REMOTE_READ,
                    )
                    .map_err(|e| prot(e.source_protection()))?;
                if req.sink_to.checked_add(u64::from(req.size)).is_none() {
                    return Err(prot(ProtectionError::ToWrap));
                }
            }
            Control::ReadRequest(req)
        } else {
            let req = AtomicRequestRepr::parse(&AtomicRequestPacket::new_unchecked(body)).map_err(
                |_| self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)),
            )?;
            // RFC 7306 §5.2.1 item 4: an AOpCode not supported (0x1 is Reserved).
            if AtomicOp::from_u8(req.opcode).is_none() {
                return Err(self.term(TerminateReason::RdmapOperation(OperationError::Unspecified)));
            }
            let target = self
                .table
                .check(
                    self.cfg.conn_id,
                    Stag(req.remote_stag),
                    req.remote_to,
                    8,
                    Access::REMOTE_ATOMIC,
                )
                .map_err(|e| self.term(TerminateReason::RdmapProtection(e.source_protection())))?;
            // RFC 7306 §8.2: the ULP Buffer address (not the tagged offset) must be
            // 64-bit aligned, else "Catastrophic error, localized to RDMAP Stream".
            if target.addr() % 8 != 0 {
                return Err(self.term(TerminateReason::RdmapOperation(
                    OperationError::CatastrophicStream,
                )));
            }
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
        if !self.ord.expects_atomic(r.request_id) {
            return Err(self.term(TerminateReason::RdmapOperation(
                OperationError::UnexpectedOpcode,
            )));
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
}

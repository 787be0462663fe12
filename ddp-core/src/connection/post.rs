//! Posting work requests: the checks a request must pass before it is queued, and
//! its transmit message.

use super::tx::{MsgKind, Source, TxMsg};
use super::{AtomicArgs, Connection, PostedRecv, SendOptions, State};
use crate::completion::CompletionOp;
use crate::error::PostError;
use crate::placement::LocalBuffer;
use crate::stag::{Access, Stag};
use crate::wire::atomic::AtomicOp;
use crate::wire::{Opcode, ReadRequestRepr};

impl Connection {
    fn check_post(&self) -> Result<(), PostError> {
        if self.state != State::Operational {
            return Err(PostError::NotOperational);
        }
        if self.sq.len() >= self.cfg.max_send_wr {
            return Err(PostError::QueueFull);
        }
        Ok(())
    }

    fn len32(buf: &LocalBuffer) -> Result<u32, PostError> {
        u32::try_from(buf.len()).map_err(|_| PostError::TooLong)
    }

    /// Posts a Send (with Solicited Event and/or Invalidate per `opts`).
    pub fn post_send(
        &mut self,
        wr_id: u64,
        data: LocalBuffer,
        opts: SendOptions,
    ) -> Result<(), PostError> {
        self.check_post()?;
        let len = Self::len32(&data)?;
        let opcode = match (opts.solicited, opts.invalidate.is_some()) {
            (false, false) => Opcode::Send,
            (false, true) => Opcode::SendInvalidate,
            (true, false) => Opcode::SendSe,
            (true, true) => Opcode::SendSeInvalidate,
        };
        let inv = opts.invalidate.map_or(0, |s| s.0);
        let sq = self.sq.push(wr_id, CompletionOp::Send);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::Send { opcode, inv },
            Source::Local(data),
            len,
        ));
        Ok(())
    }

    /// Posts an RDMA Write of `data` to `remote` at tagged offset `remote_to`.
    pub fn post_write(
        &mut self,
        wr_id: u64,
        data: LocalBuffer,
        remote: Stag,
        remote_to: u64,
    ) -> Result<(), PostError> {
        self.check_post()?;
        let len = Self::len32(&data)?;
        if remote_to.checked_add(u64::from(len)).is_none() {
            return Err(PostError::ToWrap);
        }
        let sq = self.sq.push(wr_id, CompletionOp::Write);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::Write {
                stag: remote.0,
                to: remote_to,
            },
            Source::Local(data),
            len,
        ));
        Ok(())
    }

    /// Posts an RDMA Read of `len` octets from `remote`/`remote_to` into the local
    /// registration `local` (which needs [`Access::LOCAL_WRITE`]) at `local_to`.
    pub fn post_read(
        &mut self,
        wr_id: u64,
        local: Stag,
        local_to: u64,
        len: u32,
        remote: Stag,
        remote_to: u64,
    ) -> Result<(), PostError> {
        self.check_post()?;
        if self.cfg.ord == 0 {
            return Err(PostError::NoOrd);
        }
        if remote_to.checked_add(u64::from(len)).is_none() {
            return Err(PostError::ToWrap);
        }
        if len > 0 {
            self.table
                .check(
                    self.cfg.conn_id,
                    local,
                    local_to,
                    u64::from(len),
                    Access::LOCAL_WRITE,
                )
                .map_err(|_| PostError::LocalProtection)?;
        }
        let sq = self.sq.push(wr_id, CompletionOp::Read);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::ReadRequest(ReadRequestRepr {
                sink_stag: local.0,
                sink_to: local_to,
                size: len,
                src_stag: remote.0,
                src_to: remote_to,
            }),
            Source::None,
            0,
        ));
        Ok(())
    }

    /// Posts an RFC 7306 Immediate Data message (needs `config.extensions`).
    pub fn post_immediate(
        &mut self,
        wr_id: u64,
        data: [u8; 8],
        solicited: bool,
    ) -> Result<(), PostError> {
        self.check_post()?;
        if !self.cfg.extensions {
            return Err(PostError::ExtensionsDisabled);
        }
        let opcode = if solicited {
            Opcode::ImmediateDataSe
        } else {
            Opcode::ImmediateData
        };
        let sq = self.sq.push(wr_id, CompletionOp::ImmediateData);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::Immediate { opcode, data },
            Source::None,
            0,
        ));
        Ok(())
    }

    /// Posts an RFC 7306 Atomic on the 8 octets at `remote`/`remote_to` (needs
    /// `config.extensions`): a plain FetchAdd of `add_swap` (`compare` is not sent:
    /// Compare Data goes as 0), or a plain CmpSwap writing `add_swap` if the target
    /// equals `compare`. The target is a u64 in the Responder's byte order; the
    /// original value comes back in the completion. Masked operations:
    /// [`post_atomic_masked`](Self::post_atomic_masked).
    pub fn post_atomic(
        &mut self,
        wr_id: u64,
        op: AtomicOp,
        remote: Stag,
        remote_to: u64,
        add_swap: u64,
        compare: u64,
    ) -> Result<(), PostError> {
        let args = match op {
            AtomicOp::FetchAdd => AtomicArgs::fetch_add(add_swap),
            AtomicOp::CompareSwap => AtomicArgs::compare_swap(compare, add_swap),
        };
        self.post_atomic_masked(wr_id, remote, remote_to, args)
    }

    /// Posts an RFC 7306 Atomic with explicit masks (RFC 7306 §5.1) on the 8 octets at
    /// `remote`/`remote_to` (needs `config.extensions`). The Responder requires the
    /// target's address to be 8-octet aligned.
    pub fn post_atomic_masked(
        &mut self,
        wr_id: u64,
        remote: Stag,
        remote_to: u64,
        args: AtomicArgs,
    ) -> Result<(), PostError> {
        self.check_post()?;
        if !self.cfg.extensions {
            return Err(PostError::ExtensionsDisabled);
        }
        if self.cfg.ord == 0 {
            return Err(PostError::NoOrd);
        }
        let sq = self.sq.push(wr_id, CompletionOp::Atomic);
        // The Request Identifier (RFC 7306 §5.2.1) is the send-queue position.
        let req = args.request(sq as u32, remote, remote_to);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::AtomicRequest(req),
            Source::None,
            0,
        ));
        Ok(())
    }

    /// Posts a receive buffer for the next untagged message. Messages already waiting
    /// in the receive pool are copied into it first (in order).
    pub fn post_recv(&mut self, wr_id: u64, buf: LocalBuffer) -> Result<(), PostError> {
        if self.state != State::Operational {
            return Err(PostError::NotOperational);
        }
        if !buf.is_writable() {
            return Err(PostError::NotWritable);
        }
        if self.rq.len() >= self.cfg.max_recv_wr {
            return Err(PostError::QueueFull);
        }
        self.rq.push_back(PostedRecv { wr_id, buf });
        self.drain_pool_to_posted();
        Ok(())
    }
}

//! Posting work requests: the checks a request must pass before it is queued, and
//! its transmit message.

use super::tx::{MsgKind, Source, TxMsg};
use super::{Connection, PostedRecv, SendOptions, State};
use crate::completion::CompletionOp;
use crate::error::PostError;
use crate::placement::LocalBuffer;
use crate::stag::{Access, Stag};
use crate::wire::atomic::AtomicOp;
use crate::wire::{AtomicRequestRepr, Opcode, ReadRequestRepr};

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

    /// Posts an RFC 7306 Atomic operation on the 8 octets at `remote`/`remote_to`
    /// (needs `config.extensions`). The target is a native-endian u64; `compare` is used by
    /// Compare and Swap only; Fetch and Add is a plain 64-bit add. The original value comes back in the completion.
    pub fn post_atomic(
        &mut self,
        wr_id: u64,
        op: AtomicOp,
        remote: Stag,
        remote_to: u64,
        add_swap: u64,
        compare: u64,
    ) -> Result<(), PostError> {
        self.check_post()?;
        if !self.cfg.extensions {
            return Err(PostError::ExtensionsDisabled);
        }
        if self.cfg.ord == 0 {
            return Err(PostError::NoOrd);
        }
        let sq = self.sq.push(wr_id, CompletionOp::Atomic);
        self.tx.push(TxMsg::new(
            Some(sq),
            MsgKind::AtomicRequest(AtomicRequestRepr {
                opcode: op.to_u8(),
                request_id: sq as u32,
                remote_stag: remote.0,
                remote_to,
                add_swap,
                // Fetch and Add: no carry boundaries; Swap/Compare and Swap: all bits.
                add_swap_mask: if op == AtomicOp::FetchAdd {
                    0
                } else {
                    u64::MAX
                },
                compare,
                compare_mask: u64::MAX,
            }),
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

//! The per-connection state machine: configuration, work request posting, completion
//! and event queues, and the error/flush logic shared by the transmit (`tx.rs`) and
//! receive (`rx.rs`) halves.

use std::collections::VecDeque;

use crate::completion::{Completion, CompletionOp, CompletionStatus, Event};
use crate::error::{ConfigError, PostError, TerminateReason};
use crate::placement::LocalBuffer;
use crate::pool::{PoolRead, RecvPool};
use crate::rx::RxState;
use crate::stag::{Access, ConnId, MemoryTable, Stag};
use crate::tx::{MsgKind, Source, TermPlan, TxMsg, TxState};
use crate::wire::atomic::AtomicOp;
use crate::wire::{AtomicRequestRepr, Opcode, ReadRequestRepr};

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

/// Connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Data moves.
    Operational,
    /// An error was detected locally; the Terminate is queued or in flight. Nothing is
    /// placed any more.
    Terminating,
    /// Terminated (by either side) or the transport is gone. The driver should close.
    Error,
}

/// Options of a Send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOptions {
    /// Send with Solicited Event.
    pub solicited: bool,
    /// Send with Invalidate of this remote STag.
    pub invalidate: Option<Stag>,
}

#[derive(Debug)]
struct SqSlot {
    wr_id: u64,
    op: CompletionOp,
    done: Option<Completion>,
}

#[derive(Debug)]
pub(crate) struct PostedRecv {
    pub wr_id: u64,
    pub buf: LocalBuffer,
}

/// DDP/RDMAP for one connection, as a sans-IO state machine.
///
/// Work requests go in through `post_*`, outbound segments come out of
/// [`poll_segment`](Self::poll_segment), inbound ULPDUs go in through
/// [`recv_header`](Self::recv_header) / [`recv_payload`](Self::recv_payload) /
/// [`recv_end`](Self::recv_end), and results come out of
/// [`poll_completion`](Self::poll_completion) and [`poll_event`](Self::poll_event).
#[derive(Debug)]
pub struct Connection {
    pub(crate) cfg: Config,
    pub(crate) table: MemoryTable,
    pub(crate) state: State,
    pub(crate) tx: TxState,
    pub(crate) rx: RxState,
    pub(crate) rq: VecDeque<PostedRecv>,
    pub(crate) pool: RecvPool,
    sq: VecDeque<SqSlot>,
    sq_base: u64,
    completions: VecDeque<Completion>,
    events: VecDeque<Event>,
}

impl Connection {
    /// Creates the connection; queues the RTR if `config.send_rtr` is set.
    pub fn new(config: Config, table: MemoryTable) -> Result<Self, ConfigError> {
        if config.mulpdu < 128 {
            return Err(ConfigError::MulpduTooSmall);
        }
        let mut tx = TxState::new();
        tx.rtr = config.send_rtr;
        let rx = RxState::new(config.expect_send_rtr);
        let pool = RecvPool::new(config.pool_bytes, config.pool_messages);
        Ok(Connection {
            cfg: config,
            table,
            state: State::Operational,
            tx,
            rx,
            rq: VecDeque::new(),
            pool,
            sq: VecDeque::new(),
            sq_base: 0,
            completions: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The memory table this connection uses.
    pub fn table(&self) -> &MemoryTable {
        &self.table
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether at least one FPDU was received (RFC 5044 §7.1.2 rule 4: an MPA
    /// responder must not send FPDUs before that). One that was refused (a bad CRC,
    /// a header in error) counts: the peer has entered Full Operation, and the
    /// Terminate that reports the error may go.
    pub fn has_received_fpdu(&self) -> bool {
        self.rx.received_fpdu
    }

    /// Changes the MULPDU for messages not yet started (e.g. after an MSS change).
    pub fn set_mulpdu(&mut self, mulpdu: u16) -> Result<(), ConfigError> {
        if mulpdu < 128 {
            return Err(ConfigError::MulpduTooSmall);
        }
        self.cfg.mulpdu = mulpdu;
        Ok(())
    }

    /// Next completion, in order per queue (send-queue completions in posting order,
    /// receive completions in message order).
    pub fn poll_completion(&mut self) -> Option<Completion> {
        self.completions.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Outstanding outbound RDMA Reads and Atomics (never above ORD).
    pub fn outstanding_reads(&self) -> usize {
        self.tx.ord_in_use()
    }

    /// Whether [`read`](Self::read) would return something.
    pub fn readable(&self) -> bool {
        self.pool.front_ready()
    }

    /// Copies octets of the oldest message held in the receive pool (messages that
    /// arrived while no receive was posted). A message longer than `buf` is returned
    /// over several calls; `end_of_message` marks its last octets.
    pub fn read(&mut self, buf: &mut [u8]) -> Option<PoolRead> {
        self.pool.read(buf)
    }

    /// As [`read`](Self::read), but appends up to `max` octets to `dst` (a sockets
    /// layer's own queue of messages), without an intermediate buffer.
    pub fn read_into(
        &mut self,
        dst: &mut std::collections::VecDeque<u8>,
        max: usize,
    ) -> Option<PoolRead> {
        self.pool.read_into(dst, max)
    }

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
        let sq = self.sq_push(wr_id, CompletionOp::Send);
        self.tx.pending.push_back(TxMsg::new(
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
        let sq = self.sq_push(wr_id, CompletionOp::Write);
        self.tx.pending.push_back(TxMsg::new(
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
        let sq = self.sq_push(wr_id, CompletionOp::Read);
        self.tx.pending.push_back(TxMsg::new(
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
        let sq = self.sq_push(wr_id, CompletionOp::ImmediateData);
        self.tx.pending.push_back(TxMsg::new(
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
        let sq = self.sq_push(wr_id, CompletionOp::Atomic);
        self.tx.pending.push_back(TxMsg::new(
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

    /// Terminates the connection at the application's request (Terminate RDMAP,
    /// local catastrophic, code 0xFF) and flushes all work.
    pub fn abort(&mut self) {
        self.fail(TermPlan::bare(TerminateReason::RdmapLocalCatastrophic {
            code: 0xFF,
        }));
    }

    /// An MPA-layer error reported by the driver (CRC error, marker mismatch, …;
    /// `eta_mpa::ErrorCode` and `&eta_mpa::MpaError` convert into [`LlpError`]):
    /// queues the LLP Terminate (layer 2, type 0, `err`'s code) and enters the error
    /// state. The current inbound segment is abandoned.
    pub fn mpa_error(&mut self, err: impl Into<crate::error::LlpError>) {
        let err = err.into();
        self.rx.reset_segment();
        self.rx.received_fpdu = true;
        self.fail(TermPlan::bare(TerminateReason::Llp(err)));
    }

    // ---- send-queue bookkeeping ------------------------------------------------

    fn sq_push(&mut self, wr_id: u64, op: CompletionOp) -> u64 {
        let seq = self.sq_base + self.sq.len() as u64;
        self.sq.push_back(SqSlot {
            wr_id,
            op,
            done: None,
        });
        seq
    }

    /// Completes the send-queue work request `seq`; completions leave in order.
    pub(crate) fn sq_complete(
        &mut self,
        seq: u64,
        status: CompletionStatus,
        f: impl FnOnce(&mut Completion),
    ) {
        let Some(idx) = seq.checked_sub(self.sq_base) else {
            return;
        };
        let Some(slot) = self.sq.get_mut(idx as usize) else {
            return;
        };
        if slot.done.is_some() {
            return;
        }
        let mut c = Completion::new(slot.wr_id, slot.op, status);
        f(&mut c);
        slot.done = Some(c);
        while self.sq.front().is_some_and(|s| s.done.is_some()) {
            if let Some(c) = self.sq.pop_front().and_then(|s| s.done) {
                self.completions.push_back(c);
            }
            self.sq_base += 1;
        }
    }

    pub(crate) fn push_completion(&mut self, c: Completion) {
        self.completions.push_back(c);
    }

    pub(crate) fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Copies complete messages from the pool into posted receives, in order.
    pub(crate) fn drain_pool_to_posted(&mut self) {
        while !self.rq.is_empty() {
            let Some(front) = self.rq.front() else { break };
            let mem = front.buf.mem();
            let dst_len = front.buf.len();
            let Some(res) = self.pool.take_front(dst_len, |off, bytes| {
                mem.write(off, bytes);
            }) else {
                break;
            };
            let Some(recv) = self.rq.pop_front() else {
                break;
            };
            let (msg, n, status) = match res {
                Ok((m, n)) => (m, n, CompletionStatus::Success),
                Err((m, n)) => (m, n, CompletionStatus::LocalLength),
            };
            let mut c = Completion::new(recv.wr_id, CompletionOp::Recv, status);
            c.byte_len = if status == CompletionStatus::Success {
                n as u32
            } else {
                0
            };
            c.solicited = msg.solicited;
            c.invalidated = msg.invalidated;
            c.immediate = msg.immediate;
            c.buffer = recv.buf.into_boxed();
            self.completions.push_back(c);
        }
    }

    // ---- errors ------------------------------------------------------------------

    /// A local error: queue the Terminate, flush, stop placing.
    pub(crate) fn fail(&mut self, plan: TermPlan) {
        if self.state != State::Operational {
            return;
        }
        self.state = State::Terminating;
        self.push_event(Event::LocalError(plan.reason));
        let msn = self.tx.next_msn(2);
        self.tx.terminate = Some(plan.build(msn));
        self.flush();
    }

    /// The peer terminated or the transport failed: no Terminate is sent.
    pub(crate) fn fail_silently(&mut self, event: Event) {
        if self.state == State::Error {
            return;
        }
        let was_operational = self.state == State::Operational;
        self.state = State::Error;
        self.tx.terminate = None;
        self.push_event(event);
        if was_operational {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.tx.rtr = None;
        self.tx.responses.clear();
        self.tx.ird_in_use = 0;
        let pending = std::mem::take(&mut self.tx.pending);
        for msg in pending {
            if let Some(sq) = msg.sq {
                let buffer = msg.into_buffer();
                self.sq_complete(sq, CompletionStatus::Flushed, |c| c.buffer = buffer);
            }
        }
        let reads = std::mem::take(&mut self.tx.ord_reads);
        for r in reads {
            if let Some(sq) = r.sq {
                self.sq_complete(sq, CompletionStatus::Flushed, |_| {});
            }
        }
        let atomics = std::mem::take(&mut self.tx.ord_atomics);
        for a in atomics {
            self.sq_complete(a.sq, CompletionStatus::Flushed, |_| {});
        }
        if let Some(back) = self.tx.active.back_mut()
            && !back.emitted_all
        {
            back.emitted_all = true;
            back.abandoned = true;
        }
        self.retire_acked();
        for r in std::mem::take(&mut self.rq) {
            let mut c = Completion::new(r.wr_id, CompletionOp::Recv, CompletionStatus::Flushed);
            c.buffer = r.buf.into_boxed();
            self.completions.push_back(c);
        }
        self.rx.abandon_message();
        self.pool.discard_uncommitted();
    }

    /// Finalizes fully emitted and acknowledged messages at the head of the transmit
    /// window.
    pub(crate) fn retire_acked(&mut self) {
        while self
            .tx
            .active
            .front()
            .is_some_and(|m| m.emitted_all && m.unacked == 0)
        {
            let Some(msg) = self.tx.active.pop_front() else {
                break;
            };
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
                if let Some(sq) = msg.sq {
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

    /// The driver will transmit nothing more (the socket is closed or broken): every
    /// segment handed out and not reported sent is considered lost, all outstanding
    /// work is flushed and the connection enters the error state. After this the
    /// memory of every work request may be released.
    pub fn transport_closed(&mut self) {
        if self.state == State::Operational {
            self.fail_silently(Event::LocalError(TerminateReason::Llp(
                crate::error::LlpError::ConnectionLost,
            )));
        }
        self.state = State::Error;
        self.tx.terminate = None;
        self.tx.closed = true;
        for m in self.tx.active.iter_mut() {
            if m.unacked > 0 || !m.emitted_all {
                m.abandoned = true;
            }
            m.unacked = 0;
            m.emitted_all = true;
        }
        self.retire_acked();
        self.flush();
    }
}

//! The per-connection state machine: the [`Connection`], its queues of completions
//! and events, and the error and flush logic both halves share.
//!
//! * `config`: [`Config`], [`RtrKind`], [`SendOptions`], [`AtomicArgs`].
//! * `post`: the `post_*` work requests and their checks.
//! * `send_queue`: send-queue completions in posting order.
//! * `requests`: RDMA Reads and Atomics in flight both ways (ORD and IRD).
//! * `atomic`: the RFC 7306 operations, performed when their response is generated.
//! * `terminate`: the Terminate this side sends ([`TermPlan`](terminate::TermPlan)).
//! * `tx`: segmentation, MSNs and the `poll_segment` / `segment_sent` interface.
//! * `rx`: every check on inbound segments, placement, and message completion.
//!
//! `tx` and `rx` never use each other: what both need (the ORD/IRD queues, the
//! Terminate plan, failing and flushing) lives here or in a module of its own.

use std::collections::VecDeque;

use crate::completion::{Completion, CompletionOp, CompletionStatus, Event};
use crate::error::{ConfigError, LlpError, TerminateReason};
use crate::placement::LocalBuffer;
use crate::pool::{PoolRead, RecvPool};
use crate::stag::MemoryTable;

mod atomic;
mod config;
mod post;
mod requests;
mod rx;
mod send_queue;
mod terminate;
mod tx;

pub use config::{AtomicArgs, Config, RtrKind, SendOptions};
pub use rx::RxVerdict;

use requests::{IrdQueue, OrdQueue};
use rx::RxState;
use send_queue::SendQueue;
use terminate::TermPlan;
use tx::TxState;

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

/// A posted receive.
#[derive(Debug)]
struct PostedRecv {
    wr_id: u64,
    buf: LocalBuffer,
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
    cfg: Config,
    table: MemoryTable,
    state: State,
    tx: TxState,
    rx: RxState,
    /// Reads and Atomics this side issued.
    ord: OrdQueue,
    /// Responses this side owes.
    ird: IrdQueue,
    sq: SendQueue,
    rq: VecDeque<PostedRecv>,
    pool: RecvPool,
    completions: VecDeque<Completion>,
    events: VecDeque<Event>,
}

impl Connection {
    /// Creates the connection; queues the RTR if `config.send_rtr` is set.
    pub fn new(config: Config, table: MemoryTable) -> Result<Self, ConfigError> {
        if config.mulpdu < 128 {
            return Err(ConfigError::MulpduTooSmall);
        }
        let tx = TxState::new(config.send_rtr);
        let rx = RxState::new(config.expect_send_rtr);
        let pool = RecvPool::new(config.pool_bytes, config.pool_messages);
        Ok(Connection {
            cfg: config,
            table,
            state: State::Operational,
            tx,
            rx,
            ord: OrdQueue::default(),
            ird: IrdQueue::default(),
            sq: SendQueue::default(),
            rq: VecDeque::new(),
            pool,
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
        self.rx.received_fpdu()
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
        self.ord.in_use()
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
    pub fn read_into(&mut self, dst: &mut VecDeque<u8>, max: usize) -> Option<PoolRead> {
        self.pool.read_into(dst, max)
    }

    /// Messages held in the receive pool (for the fuzz target's bound check).
    pub(crate) fn pooled_messages(&self) -> usize {
        self.pool.message_count()
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
    pub fn mpa_error(&mut self, err: impl Into<LlpError>) {
        let err = err.into();
        self.rx.llp_error();
        self.fail(TermPlan::bare(TerminateReason::Llp(err)));
    }

    // ---- queues ------------------------------------------------------------------

    /// Completes the send-queue work request `seq`; completions leave in order.
    fn sq_complete(&mut self, seq: u64, status: CompletionStatus, f: impl FnOnce(&mut Completion)) {
        self.sq.complete(seq, status, f, &mut self.completions);
    }

    fn push_completion(&mut self, c: Completion) {
        self.completions.push_back(c);
    }

    fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    /// Copies complete messages from the pool into posted receives, in order.
    fn drain_pool_to_posted(&mut self) {
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
    fn fail(&mut self, plan: TermPlan) {
        if self.state != State::Operational {
            return;
        }
        self.state = State::Terminating;
        self.push_event(Event::LocalError(plan.reason()));
        self.tx.queue_terminate(&plan);
        self.flush();
    }

    /// The peer terminated or the transport failed: no Terminate is sent.
    fn fail_silently(&mut self, event: Event) {
        if self.state == State::Error {
            return;
        }
        let was_operational = self.state == State::Operational;
        self.state = State::Error;
        self.tx.drop_terminate();
        self.push_event(event);
        if was_operational {
            self.flush();
        }
    }

    /// Flushes all work: queued messages, outstanding Reads and Atomics, owed
    /// responses, posted receives, the inbound message in progress.
    fn flush(&mut self) {
        self.ird.clear();
        for msg in self.tx.flush() {
            if let Some(sq) = msg.sq() {
                let buffer = msg.into_buffer();
                self.sq_complete(sq, CompletionStatus::Flushed, |c| c.buffer = buffer);
            }
        }
        for sq in self.ord.drain() {
            self.sq_complete(sq, CompletionStatus::Flushed, |_| {});
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

    /// The driver will transmit nothing more (the socket is closed or broken): every
    /// segment handed out and not reported sent is considered lost, all outstanding
    /// work is flushed and the connection enters the error state. After this the
    /// memory of every work request may be released.
    pub fn transport_closed(&mut self) {
        if self.state == State::Operational {
            self.fail_silently(Event::LocalError(TerminateReason::Llp(
                LlpError::ConnectionLost,
            )));
        }
        self.state = State::Error;
        self.tx.close();
        self.retire_acked();
        self.flush();
    }
}

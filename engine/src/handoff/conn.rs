//! One connection's shared half: the work-request queues and the doorbell (from
//! application threads to the engine thread), and what the engine reports back
//! (completions, state, error, socket readiness).

use std::collections::VecDeque;

use crossbeam_queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use eta_ddp_core::MemoryTable;
use eta_mpa::Negotiated;

use super::{Notify, QuietSend, WorkerShared, Wr, free_region};
use crate::cq::{Completion, CompletionQueue};
use crate::error::Error;
use crate::sock::{Readiness, SockState};

/// Life of a connection as the application sees it (the engine thread follows a
/// finer life cycle and sets this alongside; see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Full Operation.
    Open = 0,
    /// Closing: queued work finishes, then FIN.
    Closing = 1,
    /// Closed gracefully.
    Closed = 2,
    /// Failed: see [`crate::Connection::error`]; outstanding work was flushed.
    Failed = 3,
}

impl ConnState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Open,
            1 => Self::Closing,
            2 => Self::Closed,
            _ => Self::Failed,
        }
    }
}

/// A connection's shared half.
#[derive(Debug)]
pub(crate) struct ConnShared {
    pub id: u64,
    pub worker: Arc<WorkerShared>,
    /// Work requests from any application thread to the engine thread, as in ETA's
    /// DTI: a send queue (Send, Write, Read and the control requests, in posting
    /// order) and a receive queue, each a bounded lock-free ring (many producers,
    /// one consumer). Posting limits keep data work within their capacity; control
    /// requests that find the send ring full wait in `overflow`.
    sq: ArrayQueue<Wr>,
    rq: ArrayQueue<Wr>,
    overflow: Mutex<Vec<Wr>>,
    has_overflow: AtomicBool,
    /// The engine has let go: nothing will take work any more.
    dead: AtomicBool,
    /// Application threads between their `dead` check and their push.
    submitting: AtomicUsize,
    /// Already in the worker's ready list.
    pub rung: AtomicBool,
    state: AtomicU8,
    error: Mutex<Option<Error>>,
    /// Sends, Writes and Reads posted and not yet completed.
    pub outstanding_sq: AtomicUsize,
    /// Receives posted and not yet completed.
    pub outstanding_rq: AtomicUsize,
    pub max_wr: usize,
    /// Payload octets received straight into their destination.
    pub rx_direct: AtomicU64,
    /// Payload octets copied from the engine's read buffer into their destination.
    pub rx_copied: AtomicU64,
    pub send_cq: CompletionQueue,
    pub recv_cq: CompletionQueue,
    pub negotiated: Negotiated,
    pub peer_private_data: Vec<u8>,
    /// Socket mode: the program's pollable fd and the inbox for `read()`.
    pub sock: Option<Arc<Readiness>>,
    /// The completion queues are the connection's own (socket readiness counts
    /// them).
    pub own_cq: bool,
    /// Set once the engine has let go of the connection (every request completed
    /// or flushed, every region of it freed).
    pub released: Notify,
    /// Set once this end's half is done: after a close, every queued message is
    /// written to TCP and the FIN after it; or the engine let go (see `released`).
    /// From then on the kernel owns what is left, as after a TCP `close()`.
    pub drained: Notify,
}

impl ConnShared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        worker: Arc<WorkerShared>,
        max_wr: usize,
        send_cq: CompletionQueue,
        recv_cq: CompletionQueue,
        negotiated: Negotiated,
        peer_private_data: Vec<u8>,
        sock: Option<Arc<Readiness>>,
        own_cq: bool,
    ) -> Self {
        Self {
            id,
            worker,
            sq: ArrayQueue::new(max_wr + 16),
            rq: ArrayQueue::new(max_wr + 1),
            overflow: Mutex::new(Vec::new()),
            has_overflow: AtomicBool::new(false),
            dead: AtomicBool::new(false),
            submitting: AtomicUsize::new(0),
            rung: AtomicBool::new(false),
            state: AtomicU8::new(ConnState::Open as u8),
            error: Mutex::new(None),
            outstanding_sq: AtomicUsize::new(0),
            outstanding_rq: AtomicUsize::new(0),
            max_wr,
            rx_direct: AtomicU64::new(0),
            rx_copied: AtomicU64::new(0),
            send_cq,
            recv_cq,
            negotiated,
            peer_private_data,
            sock,
            own_cq,
            released: Notify::default(),
            drained: Notify::default(),
        }
    }

    /// Queues a work request and rings the doorbell. Fails (handing the request
    /// back) if the engine has let go of the connection.
    pub fn submit(self: &Arc<Self>, wr: Wr) -> Result<(), Wr> {
        self.submitting.fetch_add(1, Ordering::SeqCst);
        if self.dead.load(Ordering::SeqCst) {
            self.submitting.fetch_sub(1, Ordering::SeqCst);
            return Err(wr);
        }
        let ring = if matches!(&wr, Wr::Post(w) if w.is_recv()) {
            &self.rq
        } else {
            &self.sq
        };
        if let Err(wr) = ring.push(wr) {
            self.lock_overflow().push(wr);
            self.has_overflow.store(true, Ordering::SeqCst);
        }
        self.submitting.fetch_sub(1, Ordering::SeqCst);
        self.ring();
        Ok(())
    }

    fn lock_overflow(&self) -> MutexGuard<'_, Vec<Wr>> {
        self.overflow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Engine side: moves every queued request into `out`, receives first (so that
    /// buffers are in place before the sends that may provoke answers).
    pub fn take_all(&self, out: &mut VecDeque<Wr>) {
        while let Some(wr) = self.rq.pop() {
            out.push_back(wr);
        }
        while let Some(wr) = self.sq.pop() {
            out.push_back(wr);
        }
        if self.has_overflow.swap(false, Ordering::SeqCst) {
            out.extend(self.lock_overflow().drain(..));
        }
    }

    /// Whether no request waits.
    pub fn queue_empty(&self) -> bool {
        self.sq.is_empty() && self.rq.is_empty() && !self.has_overflow.load(Ordering::SeqCst)
    }

    /// Engine side, once: no more requests will be taken; returns those queued.
    pub fn close_queue(&self, out: &mut VecDeque<Wr>) {
        self.dead.store(true, Ordering::SeqCst);
        // A poster that saw `dead == false` is about to push: wait for it.
        while self.submitting.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        self.take_all(out);
    }

    /// Hands a completion to the application: releases its posting credit and
    /// appends it to the right completion queue. A quiet Send (a `write()`) only
    /// gives its credit and send budget back, and for a direct `write()` tells the
    /// waiting writer its buffer is free again.
    pub fn deliver(&self, c: Completion, quiet: Option<QuietSend>) {
        if let Some(q) = quiet {
            self.outstanding_sq.fetch_sub(1, Ordering::AcqRel);
            if let Some(r) = &self.sock {
                r.release_budget(q.len);
                if let Some(done) = q.done {
                    r.send_done(&done, c.status == eta_ddp_core::CompletionStatus::Success);
                }
            }
            return;
        }
        let is_recv = c.op == eta_ddp_core::CompletionOp::Recv;
        let counter = if is_recv {
            &self.outstanding_rq
        } else {
            &self.outstanding_sq
        };
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some(v.saturating_sub(1))
        });
        if is_recv {
            self.recv_cq.push([c]);
        } else {
            self.send_cq.push([c]);
        }
    }

    /// Completes a request the engine never started as flushed (its buffer handed
    /// back), or performs a control request that needs no connection.
    pub fn flush_request(&self, wr: Wr, table: &MemoryTable) {
        match wr {
            Wr::Post(work) => {
                let (c, quiet) = work.flush(self.id);
                self.deliver(c, quiet);
            }
            Wr::Deregister(stag, notify) => free_region(table, stag, notify.as_deref()),
            Wr::Close | Wr::Abort => {}
        }
    }

    /// The doorbell: an atomic flag, and the first ring since the engine last looked
    /// puts the connection on the worker's lock-free ready list; an eventfd write
    /// follows only if the worker is parked.
    pub fn ring(self: &Arc<Self>) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.worker.ready.push(Arc::clone(self));
        }
        self.worker.kick();
    }

    /// Socket mode: whether the program should see its fd readable: a message
    /// ready for `read()`, or a completion on the connection's own queues.
    pub fn sock_readable(&self, st: &SockState) -> bool {
        st.inbox.ready()
            || Readiness::eof(st)
            || (self.own_cq && (!self.recv_cq.is_empty() || !self.send_cq.is_empty()))
    }

    /// Socket mode: whether a copied message can be queued now (or the connection
    /// is no longer open, so a write returns its error at once).
    pub fn sock_writable(&self) -> bool {
        if self.state() != ConnState::Open {
            return true;
        }
        let queued = self
            .sock
            .as_ref()
            .map_or(0, |r| r.queued.load(Ordering::Acquire));
        queued < crate::sock::SEND_BUDGET
            && self.outstanding_sq.load(Ordering::Acquire) < self.max_wr
    }

    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, s: ConnState) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Records the first error (later ones are consequences).
    pub fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        drop(slot);
        self.set_state(ConnState::Failed);
    }

    pub fn error_text(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(ToString::to_string)
    }

    pub fn with_error<R>(&self, f: impl FnOnce(Option<&Error>) -> R) -> R {
        f(self
            .error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref())
    }
}

//! State shared between application threads and the engine thread that runs a
//! connection: the work-request queue, the doorbell, and what the engine reports back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use eta_ddp_core::{SendOptions, Stag};
use eta_mpa::Negotiated;

use crate::cq::CompletionQueue;
use crate::error::Error;
use crate::sys::EventFd;

/// A work request on its way from an application thread to the engine.
#[derive(Debug)]
pub(crate) enum Wr {
    Send {
        wr_id: u64,
        buf: Vec<u8>,
        opts: SendOptions,
    },
    Recv {
        wr_id: u64,
        buf: Vec<u8>,
    },
    Write {
        wr_id: u64,
        buf: Vec<u8>,
        remote: Stag,
        remote_to: u64,
    },
    Read {
        wr_id: u64,
        local: Stag,
        local_to: u64,
        len: u32,
        remote: Stag,
        remote_to: u64,
    },
    /// Deregister a region of this connection once no FPDU in flight refers to it.
    Deregister(Stag),
    /// Graceful close: finish queued work, then FIN.
    Close,
}

/// Life of a connection as the application sees it.
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

/// One engine thread's inbox.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    /// Connections handed over and not yet picked up.
    pub incoming: Mutex<Vec<crate::worker::NewConn>>,
    /// Connections whose doorbell rang.
    pub ready: Mutex<Vec<Arc<ConnShared>>>,
    /// The engine thread is (about to be) blocked in `epoll_wait`.
    pub parked: AtomicBool,
    /// Wakes the engine thread from `epoll_wait`.
    pub wake: EventFd,
}

impl WorkerShared {
    /// Wakes the engine if it parked: an atomic load while it spins, an eventfd
    /// write only when it sleeps.
    pub fn kick(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake.signal();
        }
    }
}

/// A connection's shared half.
#[derive(Debug)]
pub(crate) struct ConnShared {
    pub id: u64,
    pub worker: Arc<WorkerShared>,
    wrs: Mutex<Queue>,
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
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub items: VecDeque<Wr>,
    /// The engine has let go of the connection: nothing will take work any more.
    pub dead: bool,
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
    ) -> Self {
        Self {
            id,
            worker,
            wrs: Mutex::new(Queue::default()),
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
        }
    }

    pub fn queue(&self) -> MutexGuard<'_, Queue> {
        self.wrs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a work request and rings the doorbell. Fails if the engine has let go.
    pub fn submit(self: &Arc<Self>, wr: Wr) -> Result<(), Wr> {
        {
            let mut q = self.queue();
            if q.dead {
                return Err(wr);
            }
            q.items.push_back(wr);
        }
        self.ring();
        Ok(())
    }

    pub fn ring(self: &Arc<Self>) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.worker
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::clone(self));
        }
        self.worker.kick();
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

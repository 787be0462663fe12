//! Completion queues: where the engine reports finished work, shared by any number of
//! connections, with an eventfd a program can `epoll` on.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use eta_ddp_core::{CompletionOp, CompletionStatus, PostError, Stag};

use crate::sys::EventFd;

/// One finished work request.
#[derive(Debug)]
pub struct Completion {
    /// The connection it belongs to ([`crate::Connection::id`]).
    pub conn: u64,
    /// The work request id given when posting.
    pub wr_id: u64,
    /// Which operation.
    pub op: CompletionOp,
    /// Success, or why not (a flushed request after a connection error says
    /// [`CompletionStatus::Flushed`]).
    pub status: CompletionStatus,
    /// Octets transferred: the message length for Send, Write and Recv, the read
    /// size for Read.
    pub byte_len: u32,
    /// Recv: the message was a Send with Solicited Event.
    pub solicited: bool,
    /// Recv: the local STag the message invalidated (Send with Invalidate).
    pub invalidated: Option<Stag>,
    /// The buffer given with the work request, handed back (Send, Write, Recv).
    pub buffer: Option<Vec<u8>>,
    /// Why the engine could not hand the request to the connection when it took
    /// it from the queue (status [`CompletionStatus::Flushed`]): usually
    /// [`PostError::NotOperational`] (the connection failed after the post), or
    /// [`PostError::LocalProtection`] for a Read into a region given by STag that
    /// is not this connection's. `None` for everything else.
    pub refused: Option<PostError>,
}

impl Completion {
    pub(crate) fn from_core(conn: u64, c: eta_ddp_core::Completion) -> Self {
        Self {
            conn,
            wr_id: c.wr_id,
            op: c.op,
            status: c.status,
            byte_len: c.byte_len,
            solicited: c.solicited,
            invalidated: c.invalidated,
            buffer: c.buffer.map(Vec::from),
            refused: None,
        }
    }

    /// A flushed completion: the request of connection `conn` ended without being
    /// performed (its buffer, if owned, handed back), and the reason, if the
    /// engine refused it at intake. The one place the engine builds these (the
    /// core builds its own for requests it had accepted).
    pub(crate) fn flushed(
        conn: u64,
        wr_id: u64,
        op: CompletionOp,
        buffer: Option<Vec<u8>>,
        refused: Option<PostError>,
    ) -> Self {
        Self {
            conn,
            wr_id,
            op,
            status: CompletionStatus::Flushed,
            byte_len: 0,
            solicited: false,
            invalidated: None,
            buffer,
            refused,
        }
    }
}

#[derive(Debug)]
struct Inner {
    queue: Mutex<VecDeque<Completion>>,
    /// Someone waits (or epolls): signal the eventfd on the next push.
    armed: AtomicBool,
    event: EventFd,
}

/// A completion queue. Cloning gives another handle to the same queue.
///
/// The engine appends completions; any thread may take them with
/// [`CompletionQueue::poll`] or wait with [`CompletionQueue::wait`]. For `epoll`,
/// call [`CompletionQueue::arm`], poll until empty, then wait for
/// [`CompletionQueue::fd`] to become readable (as `ibv_req_notify_cq` works).
/// The queue holds at most one completion per posted work request, so its size is
/// bounded by the posting limits of the connections that share it.
#[derive(Debug, Clone)]
pub struct CompletionQueue {
    inner: Arc<Inner>,
}

impl CompletionQueue {
    /// A new, empty queue.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                armed: AtomicBool::new(false),
                event: EventFd::new()?,
            }),
        })
    }

    /// Takes the oldest completion, if any.
    pub fn poll(&self) -> Option<Completion> {
        self.lock().pop_front()
    }

    /// Takes up to `max` completions into `out`; returns how many.
    pub fn poll_many(&self, out: &mut Vec<Completion>, max: usize) -> usize {
        let mut q = self.lock();
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        n
    }

    /// Completions waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no completion waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for a completion and takes it; `None` after `timeout` (`None`: no limit).
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<Completion>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(c) = self.poll() {
                return Ok(Some(c));
            }
            self.arm();
            if let Some(c) = self.poll() {
                return Ok(Some(c));
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
            };
            self.inner.event.wait(left)?;
            self.inner.event.drain();
        }
    }

    /// Asks for the eventfd to be signalled at the next completion. Check the queue
    /// after arming: a completion that arrived before is not signalled.
    pub fn arm(&self) {
        self.inner.armed.store(true, Ordering::SeqCst);
    }

    /// The eventfd that becomes readable after [`CompletionQueue::arm`] when a
    /// completion arrives. Read it (8 octets) or call [`CompletionQueue::ack`] to
    /// reset it.
    pub fn fd(&self) -> RawFd {
        self.inner.event.raw()
    }

    /// Resets the eventfd.
    pub fn ack(&self) {
        self.inner.event.drain();
    }

    /// Makes the eventfd level-like after the caller took completions: resets it,
    /// arms it, and signals it again at once if completions remain. Then the fd is
    /// readable exactly while completions wait (up to a moment's lag).
    pub fn rearm(&self) {
        self.inner.event.drain();
        self.arm();
        if !self.is_empty() && self.inner.armed.swap(false, Ordering::SeqCst) {
            self.inner.event.signal();
        }
    }

    pub(crate) fn push(&self, items: impl IntoIterator<Item = Completion>) {
        let mut any = false;
        {
            let mut q = self.lock();
            for c in items {
                q.push_back(c);
                any = true;
            }
        }
        if any && self.inner.armed.swap(false, Ordering::SeqCst) {
            self.inner.event.signal();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Completion>> {
        // A panic while holding the lock cannot leave the queue inconsistent
        // (push/pop are atomic on VecDeque), so a poisoned lock is still usable.
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

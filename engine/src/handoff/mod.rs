//! The hand-off between application threads and the engine threads: the only
//! thing the API modules and the engine loop share (neither names the other).
//!
//! - [`NewConn`]: a connection that finished MPA setup in an application thread,
//!   put in its engine thread's `incoming` list by [`WorkerShared::hand_over`].
//! - [`ConnShared`]: one connection's shared half: its send and receive queues of
//!   [`Wr`] (bounded lock-free rings, many producers, one consumer), its doorbell
//!   (a flag, then the thread's ready list, then an eventfd write only if the
//!   thread is parked), its posting credits, state and error, completion queues.
//! - [`WorkerShared`]: one engine thread's inbox: new connections, rung doorbells,
//!   whether it is parked in `epoll_wait`, and the eventfd that wakes it.
//!
//! Application threads only push requests and ring; the engine thread only pops
//! them and reports back through [`ConnShared::deliver`] and the state.

mod conn;
mod work;

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::SegQueue;

use crate::sys::EventFd;

pub(crate) use conn::ConnShared;
pub use conn::ConnState;
pub(crate) use work::{Notify, Payload, QuietSend, Work, Wr, free_region};

/// A connection handed to an engine thread after MPA setup.
#[derive(Debug)]
pub(crate) struct NewConn {
    pub shared: Arc<ConnShared>,
    pub stream: TcpStream,
    /// The TCP connection's effective MSS (the MULPDU follows from it).
    pub emss: u32,
    /// This end is the MPA Responder (it must receive an FPDU before sending one).
    pub responder: bool,
    /// The Responder may send before it has received (`Options::responder_sends_first`).
    pub send_first: bool,
    /// Octets that followed the MPA Reply in the stream.
    pub leftover: Vec<u8>,
}

/// One engine thread's inbox.
#[derive(Debug)]
pub(crate) struct WorkerShared {
    /// Connections handed over and not yet picked up.
    incoming: Mutex<Vec<NewConn>>,
    /// Connections whose doorbell rang.
    pub ready: SegQueue<Arc<ConnShared>>,
    /// The engine thread is (about to be) blocked in `epoll_wait`.
    pub parked: AtomicBool,
    /// Wakes the engine thread from `epoll_wait`.
    pub wake: EventFd,
}

impl WorkerShared {
    /// An empty inbox.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            incoming: Mutex::new(Vec::new()),
            ready: SegQueue::new(),
            parked: AtomicBool::new(false),
            wake: EventFd::new()?,
        })
    }

    /// Wakes the engine if it parked: an atomic load while it spins, an eventfd
    /// write only when it sleeps.
    pub fn kick(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake.signal();
        }
    }

    /// Hands an established connection to this engine thread.
    pub fn hand_over(&self, nc: NewConn) {
        self.lock_incoming().push(nc);
        self.kick();
    }

    /// Engine side: the connections handed over since the last call.
    pub fn take_incoming(&self) -> Vec<NewConn> {
        std::mem::take(&mut *self.lock_incoming())
    }

    /// Engine side: whether anything waits in the inbox (a doorbell or a new
    /// connection), checked before parking.
    pub fn has_pending(&self) -> bool {
        !self.ready.is_empty() || !self.lock_incoming().is_empty()
    }

    fn lock_incoming(&self) -> std::sync::MutexGuard<'_, Vec<NewConn>> {
        self.incoming.lock().unwrap_or_else(|p| p.into_inner())
    }
}

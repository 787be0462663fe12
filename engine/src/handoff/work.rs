//! What travels from application threads to the engine thread: work requests
//! ([`Work`]) and control requests ([`Wr`]), with the memory they carry.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use eta_ddp_core::{CompletionOp, LocalBuffer, MemoryTable, PostError, SendOptions, Stag};

use crate::cq::Completion;
use crate::sock::SendOutcome;

/// The memory of a work request: owned (handed back in the completion) or the
/// caller's (the C API; the caller keeps it valid until the completion).
#[derive(Debug)]
pub(crate) enum Payload {
    Owned(Vec<u8>),
    Raw(LocalBuffer),
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Self::Owned(v) => v.len(),
            Self::Raw(b) => b.len(),
        }
    }

    pub fn into_local(self) -> LocalBuffer {
        match self {
            Self::Owned(v) => LocalBuffer::from_boxed(v.into()),
            Self::Raw(b) => b,
        }
    }

    fn into_vec(self) -> Option<Vec<u8>> {
        match self {
            Self::Owned(v) => Some(v),
            Self::Raw(_) => None,
        }
    }
}

/// Signalled once when something the application waits for is done.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    done: Mutex<bool>,
    cond: Condvar,
}

impl Notify {
    pub fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Whether it is set (without waiting).
    pub fn is_set(&self) -> bool {
        *self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until set or `timeout` passes; returns whether it was set.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*done {
            match deadline {
                None => done = self.cond.wait(done).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()) else {
                        return false;
                    };
                    done = self
                        .cond
                        .wait_timeout(done, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// A work request: something that ends in a completion (or, for a quiet Send, in
/// the release of its send budget).
#[derive(Debug)]
pub(crate) enum Work {
    Send {
        wr_id: u64,
        buf: Payload,
        opts: SendOptions,
        /// A `write()`: no completion for the program; its octets count
        /// against the socket's send budget until sent.
        quiet: bool,
        /// A direct `write()` (the caller's own buffer, see `Connection::send_message`):
        /// set when the engine no longer needs the buffer (the Send completed or was
        /// flushed); the writer waits for it.
        done: Option<Arc<SendOutcome>>,
    },
    Recv {
        wr_id: u64,
        buf: Payload,
    },
    Write {
        wr_id: u64,
        buf: Payload,
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
}

impl Work {
    /// The caller's id of the request.
    pub fn wr_id(&self) -> u64 {
        match self {
            Self::Send { wr_id, .. }
            | Self::Recv { wr_id, .. }
            | Self::Write { wr_id, .. }
            | Self::Read { wr_id, .. } => *wr_id,
        }
    }

    /// The operation its completion reports.
    pub fn op(&self) -> CompletionOp {
        match self {
            Self::Send { .. } => CompletionOp::Send,
            Self::Recv { .. } => CompletionOp::Recv,
            Self::Write { .. } => CompletionOp::Write,
            Self::Read { .. } => CompletionOp::Read,
        }
    }

    /// Whether it goes to the receive queue (else the send queue).
    pub fn is_recv(&self) -> bool {
        matches!(self, Self::Recv { .. })
    }

    /// What a quiet Send (a `write()`: no completion for the program, its octets
    /// held against the send budget) gives back when it ends, or None.
    pub fn quiet(&self) -> Option<QuietSend> {
        match self {
            Self::Send {
                buf,
                quiet: true,
                done,
                ..
            } => Some(QuietSend {
                len: buf.len(),
                done: done.clone(),
            }),
            _ => None,
        }
    }

    /// The checks that need nothing but the request and the negotiated ORD, in the
    /// core's order: length, read credits, tagged offsets that wrap. The core
    /// repeats them (and checks its state, queues and the local region) when the
    /// engine posts the request.
    pub fn check(&self, ord: u16) -> Result<(), PostError> {
        let wraps = |to: u64, len: u32| to.checked_add(u64::from(len)).is_none();
        match self {
            Self::Send { buf, .. } => {
                u32::try_from(buf.len()).map_err(|_| PostError::TooLong)?;
            }
            Self::Recv { .. } => {}
            Self::Write { buf, remote_to, .. } => {
                let len = u32::try_from(buf.len()).map_err(|_| PostError::TooLong)?;
                if wraps(*remote_to, len) {
                    return Err(PostError::ToWrap);
                }
            }
            Self::Read {
                local_to,
                len,
                remote_to,
                ..
            } => {
                if ord == 0 {
                    return Err(PostError::NoOrd);
                }
                if wraps(*remote_to, *len) || wraps(*local_to, *len) {
                    return Err(PostError::ToWrap);
                }
            }
        }
        Ok(())
    }

    /// Ends a request the engine never gave the core: a flushed completion of
    /// connection `conn` handing its buffer back, and what a quiet Send releases.
    pub fn flush(self, conn: u64) -> (Completion, Option<QuietSend>) {
        let (wr_id, op, quiet) = (self.wr_id(), self.op(), self.quiet());
        let buffer = match self {
            Self::Send { buf, .. } | Self::Recv { buf, .. } | Self::Write { buf, .. } => {
                buf.into_vec()
            }
            Self::Read { .. } => None,
        };
        (Completion::flushed(conn, wr_id, op, buffer, None), quiet)
    }
}

/// What the end of a quiet Send (a `write()`) releases: its send budget, and for a
/// direct `write()` the writer waiting for its buffer.
#[derive(Debug, Clone)]
pub(crate) struct QuietSend {
    /// Octets of send budget to release.
    pub len: usize,
    /// Set (then the writer woken) when the engine no longer needs the buffer.
    pub done: Option<Arc<SendOutcome>>,
}

/// A request on its way from an application thread to the engine thread.
#[derive(Debug)]
pub(crate) enum Wr {
    /// A work request.
    Post(Work),
    /// Deregister a region of this connection once no FPDU in flight refers to it,
    /// then signal the waiter, if any.
    Deregister(Stag, Option<Arc<Notify>>),
    /// Graceful close: finish queued work, then FIN.
    Close,
    /// Abortive close: flush everything, reset the TCP connection.
    Abort,
}

/// Deregisters `stag` from `table` and tells the waiter, if any: the last step of
/// a [`Wr::Deregister`].
pub(crate) fn free_region(table: &MemoryTable, stag: Stag, notify: Option<&Notify>) {
    let _ = table.deregister(stag);
    if let Some(n) = notify {
        n.set();
    }
}

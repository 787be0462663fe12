//! What `libeta.so` builds on: socket-mode calls (messages for `read()`/`write()`,
//! readiness), setup on a TCP connection the program made, abortive close and the
//! wait for the engine to let go. Work requests over the caller's own memory (the
//! C API) are in `raw`.

use std::net::TcpStream;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eta_ddp_core::{PostError, SendOptions};

use crate::api::Connection;
use crate::config::Options;
use crate::error::Error;
use crate::establish;
use crate::handoff::{ConnState, Payload, Work, Wr};
use crate::sock::Readiness;

#[allow(unsafe_code)]
mod zero_copy;

pub use zero_copy::DIRECT_SEND_MIN;

/// Why a socket-mode call did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SockError {
    /// The connection was not made in socket mode (`Options::socket`).
    NotSocket,
    /// Nothing can be returned or queued now, and the call may not wait (`EAGAIN`).
    WouldBlock,
    /// A signal interrupted the wait (`EINTR`).
    Interrupted,
    /// The message is longer than 2³² − 1 octets (`EMSGSIZE`).
    TooLong,
    /// The connection is over; the errno of why (see [`Error::errno`]; `EPIPE`
    /// after a close).
    Ended(i32),
}

impl SockError {
    /// The errno a sockets program sees.
    pub fn errno(self) -> i32 {
        match self {
            Self::NotSocket => libc::ENOTSOCK,
            Self::WouldBlock => libc::EAGAIN,
            Self::Interrupted => libc::EINTR,
            Self::TooLong => libc::EMSGSIZE,
            Self::Ended(e) => e,
        }
    }
}

impl std::fmt::Display for SockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.errno()))
    }
}

impl std::error::Error for SockError {}

/// How long a socket-mode call ([`Connection::recv_message`],
/// [`Connection::send_message`]) may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// Not at all (`O_NONBLOCK`, `MSG_DONTWAIT`): `WouldBlock` at once.
    Never,
    /// Until the call can complete. A signal handler installed with `SA_RESTART`
    /// does not end the wait; one without it ends it with `Interrupted` (`EINTR`).
    Forever,
    /// At most this long (`SO_RCVTIMEO`, `SO_SNDTIMEO`), then `WouldBlock`
    /// (`EAGAIN`); any signal handler ends the wait with `Interrupted`.
    For(Duration),
}

impl Block {
    /// When the wait ends at the latest, counted from now.
    fn deadline(self) -> Option<Instant> {
        match self {
            Self::For(t) => Instant::now().checked_add(t),
            _ => None,
        }
    }
}

/// Maps the end of an unsuccessful [`Readiness::sleep`] to the call's error.
pub(crate) fn woke(e: std::io::Error, ended: impl FnOnce() -> SockError) -> SockError {
    match e.kind() {
        std::io::ErrorKind::Interrupted => SockError::Interrupted,
        std::io::ErrorKind::TimedOut => SockError::WouldBlock,
        _ => ended(),
    }
}

/// What a [`Connection::recv_message`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// Octets copied (0 with `end_of_message` false: end of stream).
    pub len: usize,
    /// They end the message (`MSG_EOR`).
    pub end_of_message: bool,
}

impl Connection {
    /// Runs MPA setup as the Initiator on a TCP connection the caller made, then
    /// hands it to the engine. No octet may have been exchanged on it before.
    pub fn from_connected(stream: TcpStream, opts: &Options) -> Result<Connection, Error> {
        let est = establish::initiate(&stream, &opts.mpa, opts)?;
        Self::start(stream, est, opts, false)
    }

    /// Runs MPA setup as the Responder on an accepted TCP connection, then hands it
    /// to the engine.
    pub fn from_accepted(stream: TcpStream, opts: &Options) -> Result<Connection, Error> {
        let est = establish::respond(&stream, opts)?;
        Self::start(stream, est, opts, true)
    }

    fn readiness(&self) -> Result<&Arc<Readiness>, SockError> {
        self.shared().sock.as_ref().ok_or(SockError::NotSocket)
    }

    /// The errno of the connection's failure, if it failed.
    pub fn errno(&self) -> Option<i32> {
        self.with_error(|e| e.map(Error::errno))
    }

    pub(crate) fn ended(&self) -> SockError {
        SockError::Ended(self.errno().unwrap_or(libc::EPIPE))
    }

    /// Socket mode: copies the next octets of the oldest Send message that arrived
    /// with no receive posted. One call never returns octets of two messages; a
    /// message that fits is returned whole; a longer one over several calls.
    /// Unless `block` is [`Block::Never`] it waits for a message (or its first
    /// `buffer` octets); `peek` leaves the octets in place. `len` 0 without
    /// `end_of_message` is the end of the stream (the peer closed gracefully, or
    /// this end closed). `app` is the program's fd of the call (the pollable end of
    /// [`Readiness::new`]).
    pub fn recv_message(
        &self,
        app: RawFd,
        bufs: &mut [&mut [u8]],
        peek: bool,
        block: Block,
    ) -> Result<Received, SockError> {
        let r = self.readiness()?;
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        let deadline = block.deadline();
        loop {
            let mut st = r.lock();
            if st.inbox.ready_for(want) || (want == 0 && st.inbox.front_len() > 0) {
                let (len, end_of_message) = st.inbox.take(bufs, peek);
                let mut nudge = false;
                if !peek && st.inbox.starved && st.inbox.room() > 0 {
                    st.inbox.starved = false;
                    nudge = true;
                }
                let readable = self.shared().sock_readable(&st);
                r.set_readable(&mut st, readable, Some(app));
                drop(st);
                if nudge {
                    self.shared().ring();
                }
                return Ok(Received {
                    len,
                    end_of_message,
                });
            }
            match self.state() {
                ConnState::Failed => return Err(self.ended()),
                ConnState::Closed => return Ok(Received::default()),
                _ if Readiness::eof(&st) => return Ok(Received::default()),
                _ => {}
            }
            let readable = self.shared().sock_readable(&st);
            r.set_readable(&mut st, readable, Some(app));
            if block == Block::Never {
                return Err(SockError::WouldBlock);
            }
            // Nothing ready: lend the buffers, so that the engine places the
            // next message (or the rest of one that is arriving) straight into
            // them (one reader at a time lends).
            if !peek
                && want > 0
                && st.lend.is_none()
                && (st.inbox.is_empty() || st.inbox.sole_partial(want))
            {
                match self.recv_lent(r, st, app, bufs, deadline) {
                    Some(done) => return done,
                    None => continue,
                }
            }
            r.sleep(st, deadline)
                .map_err(|e| woke(e, || self.ended()))?;
        }
    }

    /// Socket mode: octets of the oldest message that are ready (`FIONREAD`).
    pub fn ready_len(&self) -> usize {
        self.readiness()
            .map(|r| r.lock().inbox.front_len())
            .unwrap_or(0)
    }

    /// Socket mode: sends the concatenation of `parts` as one Send message (the
    /// parts are free again on return); no completion is reported for it. Unless
    /// `block` is [`Block::Never`] it waits while the send budget or queue is full.
    /// A message is copied, except one part of at least
    /// [`DIRECT_SEND_MIN`](crate::DIRECT_SEND_MIN) octets with [`Block::Forever`]:
    /// that one is sent from the caller's memory and the call returns once the
    /// engine no longer needs it. `app` is the program's fd of the call.
    pub fn send_message(
        &self,
        app: RawFd,
        parts: &[&[u8]],
        opts: SendOptions,
        block: Block,
    ) -> Result<usize, SockError> {
        let r = self.readiness()?;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if u32::try_from(len).is_err() {
            return Err(SockError::TooLong);
        }
        let deadline = block.deadline();
        let direct = match parts {
            [_] => block == Block::Forever && len >= zero_copy::DIRECT_SEND_MIN,
            _ => false,
        };
        loop {
            if self.state() != ConnState::Open {
                return Err(self.ended());
            }
            // Room: the octets queued before this message are under the budget
            // (the same test as "writable", so a writer woken by POLLOUT always
            // gets in; the budget is exceeded by at most one message) and the
            // queue is under its limit.
            let queued = r.queued.fetch_add(len, Ordering::AcqRel);
            if queued < crate::sock::SEND_BUDGET {
                let posted = if direct {
                    match self.post_direct(r, parts[0], opts) {
                        Ok(true) => Ok(()),
                        // Flushed after it was posted: the engine released the budget.
                        Ok(false) => return Err(self.ended()),
                        Err(e) => Err(e),
                    }
                } else {
                    let mut buf = Vec::with_capacity(len);
                    for p in parts {
                        buf.extend_from_slice(p);
                    }
                    self.post(Work::Send {
                        wr_id: 0,
                        buf: Payload::Owned(buf),
                        opts,
                        quiet: true,
                        done: None,
                    })
                };
                match posted {
                    Ok(()) => return Ok(len),
                    Err(PostError::QueueFull) => r.release_budget(len),
                    Err(_) => {
                        r.release_budget(len);
                        return Err(self.ended());
                    }
                }
            } else {
                r.release_budget(len);
            }
            // Full: make the fd not writable, unless room appeared meanwhile. Under
            // the lock, so the engine's next look (after a completion) sees it.
            let mut st = r.lock();
            if self.shared().sock_writable() {
                continue;
            }
            r.set_writable(&mut st, false, Some(app));
            if block == Block::Never {
                return Err(SockError::WouldBlock);
            }
            r.sleep(st, deadline)
                .map_err(|e| woke(e, || self.ended()))?;
        }
    }

    /// Socket mode: re-evaluates whether the program's fd `app` is readable, after
    /// the program took completions from the connection's queues.
    pub fn refresh_readiness(&self, app: RawFd) {
        if let Ok(r) = self.readiness() {
            let mut st = r.lock();
            let readable = self.shared().sock_readable(&st);
            r.set_readable(&mut st, readable, Some(app));
        }
    }

    /// Abortive close: outstanding work is flushed and the TCP connection reset.
    pub fn abort(&self) {
        let _ = self.submit_control(Wr::Abort);
    }

    /// Waits until this end's half is done after a close: every message queued
    /// before it is written to TCP and the FIN after it (or the connection ended
    /// otherwise). From then on the kernel owns what is left, so the process may
    /// exit without losing data; false on time-out.
    pub fn wait_drained(&self, timeout: Option<Duration>) -> bool {
        self.shared().drained.wait(timeout)
    }

    /// Whether this end's half is done (see [`wait_drained`](Self::wait_drained)),
    /// without waiting.
    pub fn is_drained(&self) -> bool {
        self.shared().drained.is_set()
    }

    /// Waits until the engine has let go of the connection (closed or failed, every
    /// request completed or flushed, every region of it freed); false on time-out.
    pub fn wait_released(&self, timeout: Option<Duration>) -> bool {
        self.shared().released.wait(timeout)
    }

    /// Queues a control request (no posting credit); fails if the engine has let
    /// go of the connection.
    pub(crate) fn submit_control(&self, wr: Wr) -> Result<(), ()> {
        self.shared().submit(wr).map_err(|_| ())
    }
}

//! Socket mode: what a connection needs to stand behind a program's socket fd.
//!
//! [`Readiness`] is the fd a program polls. It is one end of an `AF_UNIX` stream
//! socket pair whose other end only the engine touches, so the kernel itself gives
//! `poll`, `select` and every flavour of `epoll` (level, edge, one-shot, several
//! sets) their usual meaning, with readable and writable controlled independently:
//!
//! - readable: the engine end holds one octet for the program's end (a message is
//!   ready, a completion waits, or the connection is over); cleared by reading it;
//! - not writable: the program's end has filled its tiny send buffer towards the
//!   engine end (`SO_SNDBUF` at the kernel's minimum); writable again once the engine
//!   end drains it;
//! - over: the engine end is shut down both ways, which the program's end reports as
//!   `POLLIN | POLLRDHUP | POLLHUP` (and writable, so a blocked writer wakes);
//! - peer closed gracefully: the engine end shuts down its sending half, reported as
//!   `POLLIN | POLLRDHUP`.
//!
//! The [`Inbox`] holds Send messages that arrived with no receive posted, for
//! `read()`: the engine moves them out of the core's bounded receive pool; the
//! program copies them out, one message per call. All changes to readiness and
//! inbox happen under one mutex, on both sides, so no wake-up is lost.
//!
//! A blocking `read()` or `write()` does not poll that fd: it sleeps on a futex the
//! engine bumps whenever it has changed something under the mutex. The kernel then
//! gives the wait the semantics of a blocking socket call: a signal handler
//! installed with `SA_RESTART` does not end it, one without ends it with `EINTR`,
//! and with a time-out (`SO_RCVTIMEO`, `SO_SNDTIMEO`) every handler ends it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::sys;

/// Octets of messages the inbox holds before the engine stops moving more out of
/// the receive pool (and TCP backpressure applies).
pub const INBOX_BYTES: usize = 1 << 20;
/// Octets of copied `write()` messages that may wait to be sent; beyond this the
/// socket is not writable (a message is taken while less than this is queued, so
/// the budget is exceeded by at most one message).
pub const SEND_BUDGET: usize = 4 << 20;

/// One message (or the part of it that has arrived) in the inbox.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Octets of the message present in `data`.
    present: usize,
    /// The last of them were placed straight into a lent buffer whose reader gave
    /// up before their FPDU was verified: not readable until it is.
    unverified: usize,
    /// The message's last octet has arrived.
    complete: bool,
}

/// Messages for `read()`.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    data: VecDeque<u8>,
    msgs: VecDeque<Meta>,
    /// Complete messages in `msgs`.
    complete: usize,
    /// The engine stopped moving messages in because the inbox was full.
    pub starved: bool,
}

impl Inbox {
    /// Room left.
    pub fn room(&self) -> usize {
        INBOX_BYTES.saturating_sub(self.data.len())
    }

    /// Appends octets of the newest message (the engine side).
    #[cfg(test)]
    pub fn push(&mut self, bytes: &[u8], end_of_message: bool) {
        self.fill(|data, _| {
            data.extend(bytes);
            Some((bytes.len(), end_of_message))
        });
    }

    /// Lets `read` append octets of the newest message to the inbox's octets (at
    /// most the room left, its second argument); it answers how many it appended
    /// and whether they end the message, or `None`. Returns whether it appended.
    pub fn fill(
        &mut self,
        read: impl FnOnce(&mut VecDeque<u8>, usize) -> Option<(usize, bool)>,
    ) -> bool {
        let room = self.room();
        let Some((n, end_of_message)) = read(&mut self.data, room) else {
            return false;
        };
        match self.msgs.back_mut() {
            Some(m) if !m.complete => m.present += n,
            _ => self.msgs.push_back(Meta {
                present: n,
                unverified: 0,
                complete: false,
            }),
        }
        if end_of_message {
            if let Some(m) = self.msgs.back_mut() {
                m.complete = true;
            }
            self.complete += 1;
        }
        true
    }

    /// Whether a read of `want` octets can return now: the front message is whole,
    /// or has `want` octets, or fills the inbox (a message larger than the inbox
    /// is returned in parts).
    pub fn ready_for(&self, want: usize) -> bool {
        match self.msgs.front() {
            Some(m) => {
                let ready = m.present - m.unverified;
                m.complete || ready >= want.max(1) || (self.room() == 0 && ready > 0)
            }
            None => false,
        }
    }

    /// Whether no message (or part of one) is held.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Takes the front message out whole if it is the only one and has not all
    /// arrived (a reader about to lend its buffers for the rest): copies its
    /// present octets into `bufs` (which hold at least as many) and returns how
    /// many; `None` (nothing taken) otherwise.
    pub fn take_sole_partial(&mut self, bufs: &mut [&mut [u8]]) -> Option<usize> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        if !self.sole_partial(want) {
            return None;
        }
        let (n, _) = self.take(bufs, false);
        self.msgs.clear();
        Some(n)
    }

    /// Whether the only message held has not all arrived and has fewer than
    /// `want` octets (see [`Self::take_sole_partial`]).
    pub fn sole_partial(&self, want: usize) -> bool {
        match (self.msgs.len(), self.msgs.front()) {
            (1, Some(m)) => !m.complete && m.unverified == 0 && m.present < want,
            _ => false,
        }
    }

    /// Puts octets a lending reader gave up back as the front message's first part
    /// (the inbox is empty: a lend is filled only then); the last `unverified` of
    /// them wait for their FPDU's verification ([`Self::verified`]).
    pub fn unread(&mut self, bytes: &[u8], unverified: usize) {
        debug_assert!(self.msgs.is_empty());
        let mut data = VecDeque::with_capacity(bytes.len() + self.data.len());
        data.extend(bytes);
        data.append(&mut self.data);
        self.data = data;
        self.msgs.push_front(Meta {
            present: bytes.len(),
            unverified,
            complete: false,
        });
    }

    /// The FPDU of the unverified octets passed its CRC: they are readable.
    pub fn verified(&mut self) {
        if let Some(m) = self.msgs.front_mut() {
            m.unverified = 0;
        }
    }

    /// Whether the program should see the socket readable.
    pub fn ready(&self) -> bool {
        self.complete > 0 || (self.room() == 0 && self.front_len() > 0)
    }

    /// Octets of the front message present (`FIONREAD`).
    pub fn front_len(&self) -> usize {
        self.msgs.front().map_or(0, |m| m.present - m.unverified)
    }

    /// Copies up to the buffers' length of the front message into `bufs`; removes
    /// them unless `peek`. Returns the octets copied and whether they end the
    /// message. Call only when [`Self::ready_for`] said yes.
    pub fn take(&mut self, bufs: &mut [&mut [u8]], peek: bool) -> (usize, bool) {
        let Some(front) = self.msgs.front().copied() else {
            return (0, false);
        };
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        let n = want.min(front.present - front.unverified);
        // Copy slice to slice: the ring's two halves into the caller's buffers.
        let (a, b) = self.data.as_slices();
        let mut src = [&a[..a.len().min(n)], &b[..n - a.len().min(n)]];
        for dst in bufs.iter_mut() {
            let mut dst: &mut [u8] = dst;
            for part in src.iter_mut() {
                let k = part.len().min(dst.len());
                dst[..k].copy_from_slice(&part[..k]);
                *part = &part[k..];
                dst = &mut dst[k..];
            }
        }
        let eom = front.complete && n == front.present;
        if !peek {
            self.data.drain(..n);
            if eom {
                self.msgs.pop_front();
                self.complete -= 1;
            } else if let Some(m) = self.msgs.front_mut() {
                m.present -= n;
            }
            if self.data.is_empty() && self.data.capacity() > 256 * 1024 {
                self.data.shrink_to(0);
            }
        }
        (n, eom)
    }
}

/// Readiness flags as last set on the socket pair, plus the inbox.
#[derive(Debug)]
pub(crate) struct SockState {
    pub inbox: Inbox,
    /// A blocked `read()`'s buffers, lent to the engine.
    pub lend: Option<crate::lend::Lend>,
    readable: bool,
    writable: bool,
    over: bool,
    eof: bool,
}

/// The engine's end of a socket-mode connection's pollable fd, and its inbox (see
/// the module docs). The program's end is handed out once by [`Readiness::new`]:
/// the program owns it (and its duplicates); this side never keeps a copy, so that
/// closing the program's last fd really closes the file (and drops it from every
/// epoll set, as closing a socket does). Calls that must act on the program's end
/// take the fd the program used for the call.
#[derive(Debug)]
pub struct Readiness {
    engine: OwnedFd,
    state: Mutex<SockState>,
    /// Octets of copied messages queued and not yet sent.
    pub(crate) queued: AtomicUsize,
    /// A blocked `read()` has lent its buffers (a hint that spares the engine the
    /// state lock when none has; [`SockState::lend`] under the lock is the truth).
    pub(crate) lending: AtomicBool,
    /// Bumped, under the state lock, after every change the engine makes; blocked
    /// calls sleep on it (a futex).
    changes: AtomicU32,
    /// Calls sleeping on `changes`.
    sleepers: AtomicU32,
}

impl Readiness {
    /// A new pair, and the program's end of it: neither readable nor writable (a
    /// connection being set up). The program's end is non-blocking and
    /// close-on-exec.
    pub fn new() -> io::Result<(Self, OwnedFd)> {
        let (app, engine) = sys::socketpair()?;
        // The kernel rounds this up to its minimum: a few octets fill it.
        sys::set_int_opt(app.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 1)?;
        let r = Self {
            engine,
            state: Mutex::new(SockState {
                inbox: Inbox::default(),
                lend: None,
                readable: false,
                writable: true,
                over: false,
                eof: false,
            }),
            queued: AtomicUsize::new(0),
            lending: AtomicBool::new(false),
            changes: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        };
        let mut st = r.lock();
        r.set_writable(&mut st, false, Some(app.as_raw_fd()));
        drop(st);
        Ok((r, app))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, SockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets "readable", or clears it through the program's end `app` (the fd of the
    /// program's call; without one, clearing is left to the program's next call).
    pub(crate) fn set_readable(&self, st: &mut SockState, on: bool, app: Option<RawFd>) {
        if st.readable == on || st.over {
            return;
        }
        if on {
            st.readable = true;
            let _ = sys::send_nb(self.engine.as_raw_fd(), &[1]);
        } else if let Some(app) = app {
            st.readable = false;
            let mut b = [0u8; 64];
            while matches!(sys::recv_nb(app, &mut b), Ok(n) if n > 0) {}
        }
    }

    /// Sets "writable", or clears it through the program's end `app`.
    pub(crate) fn set_writable(&self, st: &mut SockState, on: bool, app: Option<RawFd>) {
        if st.writable == on || st.over {
            return;
        }
        if on {
            st.writable = true;
            let mut b = [0u8; 4096];
            while matches!(sys::recv_nb(self.engine.as_raw_fd(), &mut b), Ok(n) if n > 0) {}
        } else if let Some(app) = app {
            st.writable = false;
            let b = [0u8; 512];
            for _ in 0..256 {
                if sys::send_nb(app, &b).is_err() {
                    break;
                }
            }
        }
    }

    /// The connection is over (failed, or closed both ways): hang up for good.
    pub fn hang_up(&self) {
        let mut st = self.lock();
        self.hang_up_locked(&mut st);
    }

    pub(crate) fn hang_up_locked(&self, st: &mut SockState) {
        if st.over {
            return;
        }
        self.set_writable(st, true, None);
        self.set_readable(st, true, None);
        st.over = true;
        sys::shutdown(self.engine.as_raw_fd(), libc::SHUT_RDWR);
        self.wake_sleepers(st);
    }

    /// The peer closed gracefully: end of stream after the messages present.
    pub(crate) fn end_of_stream(&self, st: &mut SockState) {
        if st.eof || st.over {
            return;
        }
        st.eof = true;
        sys::shutdown(self.engine.as_raw_fd(), libc::SHUT_WR);
    }

    /// Whether the peer's end of stream was signalled.
    pub(crate) fn eof(st: &SockState) -> bool {
        st.eof || st.over
    }

    /// Wakes the calls sleeping in [`Readiness::sleep`] (the engine changed
    /// something; `_st` proves the state lock is held, which is what makes the
    /// change and the wake-up one step for a sleeper).
    pub(crate) fn wake_sleepers(&self, _st: &mut SockState) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            sys::futex_wake_all(&self.changes);
        }
    }

    /// Releases `st` (under which the caller found nothing to do) and sleeps until
    /// the engine changes something ([`Readiness::wake_sleepers`]), `deadline`
    /// passes (`TimedOut`), or a signal handler ends the wait (`Interrupted`; see
    /// the module docs for which do). The caller looks again after `Ok`.
    pub(crate) fn sleep(
        &self,
        st: MutexGuard<'_, SockState>,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let seen = self.changes.load(Ordering::SeqCst);
        let timeout = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(io::ErrorKind::TimedOut.into()),
            },
        };
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        drop(st);
        let r = sys::futex_wait(&self.changes, seen, timeout);
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        r
    }

    /// Waits until the program's fd `app` reports one of `events`
    /// (`libc::POLLIN`, `libc::POLLOUT`) or a hang-up, or `timeout` passes.
    /// `Interrupted` when a signal arrived.
    pub fn wait(app: RawFd, events: libc::c_short, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(sys::poll_one(app, events, timeout)? != 0)
    }

    /// A direct `write()`'s Send ended: the engine no longer needs its buffer. Sets
    /// `done` and wakes the writer, under the state lock (so the writer, which looks
    /// at `done` under it before it sleeps, cannot miss the wake-up).
    pub(crate) fn send_done(&self, done: &SendOutcome, sent: bool) {
        let mut st = self.lock();
        done.set(sent);
        self.wake_sleepers(&mut st);
    }

    /// Releases a write budget of `n` octets (a copied message was sent).
    pub(crate) fn release_budget(&self, n: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revents(app: &OwnedFd) -> libc::c_short {
        sys::poll_one(
            app.as_raw_fd(),
            libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
            Some(Duration::ZERO),
        )
        .unwrap()
    }

    #[test]
    fn readable_and_writable_are_independent() {
        let (r, a) = Readiness::new().unwrap();
        let app = Some(a.as_raw_fd());
        assert_eq!(
            revents(&a),
            0,
            "a new pair is neither readable nor writable"
        );
        let mut st = r.lock();
        r.set_writable(&mut st, true, None);
        assert_eq!(revents(&a), libc::POLLOUT);
        r.set_readable(&mut st, true, None);
        assert_eq!(revents(&a), libc::POLLOUT | libc::POLLIN);
        r.set_writable(&mut st, false, app);
        assert_eq!(revents(&a), libc::POLLIN);
        r.set_readable(&mut st, false, None);
        assert_eq!(revents(&a), libc::POLLIN, "clearing needs the program's fd");
        r.set_readable(&mut st, false, app);
        assert_eq!(revents(&a), 0);
        r.end_of_stream(&mut st);
        assert_eq!(revents(&a), libc::POLLIN | libc::POLLRDHUP);
        r.hang_up_locked(&mut st);
        let ev = revents(&a);
        assert_ne!(ev & libc::POLLHUP, 0);
        assert_ne!(ev & libc::POLLOUT, 0);
        assert_ne!(ev & libc::POLLIN, 0);
    }

    #[test]
    fn inbox_returns_one_message_at_a_time() {
        let mut ib = Inbox::default();
        ib.push(b"hel", false);
        assert!(!ib.ready());
        assert!(ib.ready_for(2));
        assert!(!ib.ready_for(5));
        ib.push(b"lo", true);
        ib.push(b"xy", true);
        assert!(ib.ready());
        let mut a = [0u8; 3];
        let (n, eom) = ib.take(&mut [&mut a[..]], true);
        assert_eq!((n, eom, &a), (3, false, b"hel"));
        let (n, eom) = ib.take(&mut [&mut a[..]], false);
        assert_eq!((n, eom, &a), (3, false, b"hel"));
        let mut b = [0u8; 10];
        let (n, eom) = ib.take(&mut [&mut b[..1], &mut a[..]], false);
        assert_eq!((n, eom, &b[..1], &a[..1]), (2, true, &b"l"[..], &b"o"[..]));
        let (n, eom) = ib.take(&mut [&mut b[..]], false);
        assert_eq!((n, eom, &b[..2]), (2, true, &b"xy"[..]));
        assert!(!ib.ready());
        ib.push(b"", true);
        assert!(ib.ready());
        assert_eq!(ib.take(&mut [&mut b[..]], false), (0, true));
        assert!(ib.msgs.is_empty());
    }

    #[test]
    fn octets_put_back_by_a_reader_that_gave_up_stay_first_and_wait_for_their_crc() {
        let mut ib = Inbox::default();
        // A lending reader gave up with 5 octets placed, the last 2 unverified.
        ib.unread(b"hello", 2);
        assert!(!ib.ready());
        assert_eq!(ib.front_len(), 3);
        assert!(ib.ready_for(3));
        assert!(!ib.ready_for(4));
        let mut a = [0u8; 8];
        assert_eq!(ib.take(&mut [&mut a[..]], true), (3, false));
        // The rest of the message arrives behind them; then their FPDU is verified.
        ib.push(b" world", true);
        assert_eq!(ib.front_len(), 9);
        ib.verified();
        assert!(ib.ready());
        let mut b = [0u8; 16];
        assert_eq!(ib.take(&mut [&mut b[..]], false), (11, true));
        assert_eq!(&b[..11], b"hello world");
        // A reader that finds only the first part of a message takes it whole.
        ib.push(b"abc", false);
        assert!(ib.sole_partial(10));
        assert!(!ib.sole_partial(3));
        assert_eq!(ib.take_sole_partial(&mut [&mut b[..]]), Some(3));
        assert!(ib.is_empty());
    }
}

/// How a direct `write()`'s Send ended, set once by the engine thread: until then
/// the engine may still read the writer's buffer.
#[derive(Debug, Default)]
pub(crate) struct SendOutcome(AtomicU8);

impl SendOutcome {
    /// The Send completed (`true`) or was flushed by the connection's end.
    pub fn set(&self, sent: bool) {
        self.0.store(if sent { 1 } else { 2 }, Ordering::Release);
    }

    /// `None` while the engine may still need the buffer; then whether it was sent.
    pub fn get(&self) -> Option<bool> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            1 => Some(true),
            _ => Some(false),
        }
    }
}

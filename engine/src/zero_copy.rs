//! Socket mode without the user-space copies (docs/architecture.md, "Socket mode"):
//!
//! - a blocking `read()` that finds nothing to return lends its buffers ([`Lend`]):
//!   the engine places the next message straight from the core's receive pool into
//!   them, instead of into the inbox from which the reader would copy again;
//! - a blocking `write()` of at least [`DIRECT_SEND_MIN`] octets is sent from the
//!   caller's buffer itself (no copy); the call returns when the engine no longer
//!   needs the buffer (the Send completed: the kernel took every octet).
//!
//! Small, non-blocking and time-limited calls, and `MSG_PEEK`, keep the copy path.

use std::sync::Arc;
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use eta_ddp_core::{LocalBuffer, PostError, SendOptions};

use crate::api::Connection;
use crate::handoff::{ConnState, Payload, Work};
use crate::sock::{Readiness, SockState};
use crate::stream::{Received, SockError, woke};

/// Shortest blocking `write()` sent from the caller's buffer; shorter ones are
/// copied (a copy is cheaper than the wait for the engine's completion).
pub const DIRECT_SEND_MIN: usize = 128 * 1024;

/// Armed while the engine may touch a caller's memory on behalf of a call that is
/// still running (a lent buffer, a direct write): a panic that would unwind out of
/// the call (the shim catches panics and returns `EIO`) aborts the process instead,
/// since the caller could then free or reuse memory the engine still writes or
/// reads.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::process::abort();
        }
    }
}

/// The buffers of a blocked `read()`, lent to the engine so that it places the next
/// message straight into them instead of into the inbox (one copy fewer, see
/// docs/architecture.md, "Socket mode").
///
/// The invariant that makes lending safe: the engine writes into lent memory only
/// while it holds the state lock and the lend is in [`SockState::lend`] and not
/// [`done`](Self::done). The reader takes the lend out under the same lock before
/// it returns, whatever ends its wait; from then on the engine cannot reach the
/// memory. A lend is filled only while the inbox is empty, so messages keep their
/// order whichever way they take.
#[derive(Debug)]
pub(crate) struct Lend {
    /// The caller's buffers (pointer, length), in order.
    bufs: Vec<(*mut u8, usize)>,
    /// Their total length.
    cap: usize,
    /// Octets placed so far (the first octets of the front message).
    pub got: usize,
    /// The last of them were read straight from the socket and their FPDU is not
    /// verified yet (its CRC comes after them): the lend is not done before.
    pub pending: usize,
    /// The placed octets end the message.
    pub eom: bool,
}

// SAFETY: the pointers are dereferenced only under the state lock by the engine
// thread, while the lending reader is blocked in its call (see the invariant above);
// moving the description between threads moves no access.
unsafe impl Send for Lend {}

impl Lend {
    /// Lends `bufs` (a reader about to sleep; only [`Connection::recv_lent`] makes
    /// one, and it upholds the invariant above).
    fn new(bufs: &mut [&mut [u8]]) -> Self {
        let bufs: Vec<_> = bufs
            .iter_mut()
            .filter(|b| !b.is_empty())
            .map(|b| (b.as_mut_ptr(), b.len()))
            .collect();
        let cap = bufs.iter().map(|b| b.1).sum();
        Self {
            bufs,
            cap,
            got: 0,
            pending: 0,
            eom: false,
        }
    }

    /// The read can return: the message ended or the buffers are full.
    pub fn done(&self) -> bool {
        self.eom || (self.got >= self.cap && self.pending == 0)
    }

    /// Engine side: the unfilled span of the buffers where the next octets go
    /// (pointer and length; within one buffer), if any.
    fn next_span(&self) -> Option<(*mut u8, usize)> {
        let mut skip = self.got;
        for &(ptr, len) in &self.bufs {
            if skip < len {
                // SAFETY: skip < len: within the buffer.
                return Some((unsafe { ptr.add(skip) }, len - skip));
            }
            skip -= len;
        }
        None
    }

    /// Engine side: the next free span of the buffers (pointer, at most `max`
    /// octets, within one buffer) for octets read straight from the socket, unless
    /// the lend is done. Write into it only under the state lock with the lend in
    /// place (the invariant above), then call [`Self::placed_pending`].
    pub fn free_span(&self, max: usize) -> Option<(*mut u8, usize)> {
        if self.done() {
            return None;
        }
        self.next_span().map(|(p, len)| (p, len.min(max)))
    }

    /// Engine side: `n` octets were written at [`Self::free_span`]; they stay
    /// pending until their FPDU is verified ([`Self::verified`]).
    pub fn placed_pending(&mut self, n: usize) {
        self.got += n;
        self.pending += n;
    }

    /// Engine side: the FPDU of the pending octets passed its CRC.
    pub fn verified(&mut self) {
        self.pending = 0;
    }

    /// Engine side: places octets of the front message with `read` (a slice of the
    /// buffers, answering octets written and whether they end the message), up to
    /// the end of the message or of the buffers. Returns whether it placed any.
    /// Reaching a `Lend` at all takes `&mut` through the state lock, and a lend in
    /// the state has a reader blocked in [`Connection::recv_lent`] behind it (the
    /// invariant above), so the buffers are valid and no one else touches them.
    pub fn fill(&mut self, mut read: impl FnMut(&mut [u8]) -> Option<(usize, bool)>) -> bool {
        let mut any = false;
        while !self.done() {
            let Some((ptr, len)) = self.next_span() else {
                break;
            };
            // SAFETY: the span is within the reader's buffer, valid and touched by
            // no one else while the lend is in the state (the invariant above).
            let dst = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            let Some((n, eom)) = read(dst) else {
                break;
            };
            any = true;
            self.got += n;
            self.eom = eom;
            if n == 0 && !eom {
                break;
            }
        }
        any
    }

    /// The placed octets, for a reader that gives up before the lend is done: they
    /// go back to the front of the inbox so that nothing is taken.
    pub fn placed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.got);
        let mut left = self.got;
        for &(ptr, len) in &self.bufs {
            let k = left.min(len);
            // SAFETY: the reader's own buffers, which it still lends (it calls this
            // under the state lock before it returns); `k` octets were placed.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, k) });
            left -= k;
        }
        out
    }
}

impl Connection {
    /// A blocking `read()` that found nothing ready (`st` held; the inbox empty, or
    /// holding only the first part of a message still arriving, which it takes):
    /// lends `bufs` and sleeps until the engine filled the lend (the whole message,
    /// or the buffers), the wait ends, or the connection is over. Whatever ends the
    /// wait, the lend is taken back under the state lock before this returns (the
    /// invariant on [`Lend`]). A wait ended by a signal or the time-out with part of
    /// a message placed puts those octets back at the front of the inbox, so that
    /// nothing is taken by an interrupted call. `None`: look again by the copy path
    /// (the connection is over, or a message went to the inbox meanwhile).
    pub(crate) fn recv_lent<'a>(
        &self,
        r: &'a Readiness,
        mut st: MutexGuard<'a, SockState>,
        app: std::os::fd::RawFd,
        bufs: &mut [&mut [u8]],
        deadline: Option<Instant>,
    ) -> Option<Result<Received, SockError>> {
        let want: usize = bufs.iter().map(|b| b.len()).sum();
        // The inbox holds nothing, or the first part of a message still arriving:
        // taken now, the lend continues it.
        let got = st.inbox.take_sole_partial(bufs).unwrap_or(0);
        let mut lend = Lend::new(bufs);
        lend.got = got;
        let _armed = AbortOnUnwind;
        st.lend = Some(lend);
        r.lending.store(true, Ordering::Relaxed);
        loop {
            let slept = r.sleep(st, deadline);
            st = r.lock();
            let lend = st.lend.take()?;
            r.lending.store(false, Ordering::Relaxed);
            if lend.done() {
                let readable = self.shared().sock_readable(&st);
                r.set_readable(&mut st, readable, Some(app));
                return Some(Ok(Received {
                    len: lend.got,
                    end_of_message: lend.eom,
                }));
            }
            let over = matches!(self.state(), ConnState::Failed | ConnState::Closed)
                || Readiness::eof(&st);
            let inbox_first = lend.got == 0 && st.inbox.ready_for(want);
            if slept.is_err() || over || inbox_first {
                if lend.got > 0 {
                    st.inbox.unread(&lend.placed(), lend.pending);
                }
                drop(st);
                return match slept {
                    Err(e) => Some(Err(woke(e, || self.ended()))),
                    Ok(()) => None,
                };
            }
            st.lend = Some(lend);
            r.lending.store(true, Ordering::Relaxed);
        }
    }

    /// Sends `part` as one Send message from the caller's memory, and waits until
    /// the engine no longer needs it (its completion, or its flush if the
    /// connection ends first). The wait cannot be cut short: once posted, the
    /// message is committed to the wire, so the call must return its full length
    /// and must not return while the engine may still read the buffer. A signal
    /// handler runs during the wait and the wait goes on (the call then returns
    /// the full length, as a `write()` that completed before the signal would).
    pub(crate) fn post_direct(
        &self,
        r: &Readiness,
        part: &[u8],
        opts: SendOptions,
    ) -> Result<(), PostError> {
        let done = Arc::new(AtomicBool::new(false));
        // SAFETY: `part` stays valid and unchanged until the engine no longer needs
        // it: this function returns only after `done` is set (by the Send's
        // completion or flush, see `ConnShared::deliver`), or when the post failed
        // (then the engine never saw the request).
        let buf = Payload::Raw(unsafe { LocalBuffer::from_raw(part.as_ptr(), part.len()) });
        let _armed = AbortOnUnwind;
        self.post(Work::Send {
            wr_id: 0,
            buf,
            opts,
            quiet: true,
            done: Some(Arc::clone(&done)),
        })?;
        loop {
            let st = r.lock();
            if done.load(Ordering::Acquire) {
                return Ok(());
            }
            // A signal ends the futex wait with EINTR after its handler ran; a
            // time-out is never given. Either way: look again.
            let _ = r.sleep(st, None);
        }
    }
}

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
use std::sync::atomic::Ordering;
use std::time::Instant;

use eta_ddp_core::{LocalBuffer, PostError, SendOptions};

use super::{Received, SockError, woke};
use crate::api::Connection;
use crate::handoff::{ConnState, Payload, Work};
use crate::lend::Lend;
use crate::sock::{Readiness, SendOutcome, SockState};

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
    /// the engine no longer needs it: `Ok(true)` at its completion, `Ok(false)` at
    /// its flush if the connection ended first. The wait cannot be cut short: once
    /// posted, the message is committed, and the call must not return while the
    /// engine may still read the buffer. A signal handler runs during the wait and
    /// the wait goes on (a sent message then returns the full length, as a
    /// `write()` that completed before the signal would).
    pub(crate) fn post_direct(
        &self,
        r: &Readiness,
        part: &[u8],
        opts: SendOptions,
    ) -> Result<bool, PostError> {
        let done = Arc::new(SendOutcome::default());
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
            // `Some(false)`: flushed, the connection ended before the message went
            // out (its send budget is already released, as for any quiet Send).
            if let Some(sent) = done.get() {
                return Ok(sent);
            }
            // A signal ends the futex wait with EINTR after its handler ran; a
            // time-out is never given. Either way: look again.
            let _ = r.sleep(st, None);
        }
    }
}

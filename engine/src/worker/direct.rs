//! Direct reads: the next payload octets go from the socket straight into their
//! destination (a posted receive buffer or a registered region) when the deframer
//! says a long run of payload comes next and the core has validated where it goes.
//! No intermediate buffer, no user-space copy. The only `unsafe` of the loop: the
//! destination is memory the core lends for the duration of the call.

use std::io;
use std::sync::atomic::Ordering;

use eta_mpa::Event;

use super::conn::Conn;
use crate::sys;

/// Shortest payload run worth a `read` straight into its destination.
pub(super) const DIRECT_MIN: usize = 4096;

/// What a direct read did.
pub(super) enum Direct {
    /// Nothing: use the buffered read.
    NotTaken,
    /// Read octets (or lost the connection): progress.
    Read,
    /// The peer closed its half.
    Eof,
    /// No progress, look again (`EAGAIN` cleared `readable`, or a signal).
    Retry,
}

impl Conn {
    /// Reads the next payload run straight into its destination, if there is one.
    pub(super) fn read_direct(&mut self) -> Direct {
        let run = self.deframer.payload_run();
        if run < DIRECT_MIN || self.blocked.is_some() || !self.stash.is_empty() {
            return Direct::NotTaken;
        }
        let Some(target) = self.core.direct_target(run) else {
            // Bound for the receive pool (no posted buffer, no region): small reads
            // would only cost system calls; read in full.
            self.small_reads = false;
            return Direct::NotTaken;
        };
        // SAFETY: the target is a span of a posted receive buffer or a registered
        // region that the core validated for this segment; it stays allocated while
        // the engine thread (the only one that frees such memory) is in this call.
        match unsafe { sys::read_raw(self.fd, target.as_mut_ptr(), target.len()) } {
            Ok(0) => Direct::Eof,
            Ok(n) => {
                // SAFETY: the kernel wrote these n octets just now, and only this
                // thread writes the span until the core moves past it.
                let filled = unsafe { target.filled(n) };
                match self.deframer.advance(filled) {
                    Ok((used, Event::Payload(_))) if used == n => {
                        self.core.recv_payload_direct(n);
                        self.shared.rx_direct.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        // payload_run() promised n octets of payload: a broken
                        // invariant, ended as a local catastrophic error (Terminate).
                        self.core.abort();
                    }
                    Err(e) => self.core.mpa_error(&e),
                }
                Direct::Read
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Direct::Retry
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Direct::Retry,
            Err(e) => {
                self.lost(e.kind());
                Direct::Read
            }
        }
    }
}

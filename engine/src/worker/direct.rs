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

/// The MPA length field and the DDP/RDMAP header of an untagged Send (RFC 5044 §4,
/// RFC 5041 §4.3, RFC 5040 §4): what precedes its payload in an FPDU.
const SEND_HEADER: usize = 2 + 18;

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
            if let Some(d) = self.read_lent(run) {
                return d;
            }
            // Bound for the receive pool (no posted buffer, no region): small reads
            // would only cost system calls; read in full.
            self.small_reads = false;
            return Direct::NotTaken;
        };
        // SAFETY: the target is a span of a posted receive buffer or a registered
        // region that the core validated for this segment; it stays allocated while
        // the engine thread (the only one that frees such memory) is in this call.
        let res = unsafe { sys::read_raw(self.fd, target.as_mut_ptr(), target.len()) }
            // SAFETY: the kernel wrote these n octets just now, and only this
            // thread writes the span until the core moves past it.
            .map(|n| unsafe { target.filled(n) });
        self.took_direct(res, |c, n| c.core.recv_payload_direct(n))
            .unwrap_or_else(|kind| {
                self.lost(kind);
                Direct::Read
            })
    }

    /// The rest of a direct read: `res` holds the octets the kernel put straight
    /// into their destination; the deframer takes them as payload and `account`
    /// tells the core. Returns what the read did, or the error that lost the
    /// connection (for the caller to act on, outside any lock it holds).
    fn took_direct(
        &mut self,
        res: io::Result<&[u8]>,
        account: impl FnOnce(&mut Self, usize),
    ) -> Result<Direct, io::ErrorKind> {
        match res {
            Ok([]) => Ok(Direct::Eof),
            Ok(filled) => {
                let n = filled.len();
                match self.deframer.advance(filled) {
                    Ok((used, Event::Payload(_))) if used == n => {
                        account(self, n);
                        self.shared.rx_direct.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        // payload_run() promised n octets of payload: a broken
                        // invariant, ended as a local catastrophic error (Terminate).
                        self.core.abort();
                    }
                    Err(e) => self.core.mpa_error(&e),
                }
                Ok(Direct::Read)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                Ok(Direct::Retry)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Direct::Retry),
            Err(e) => Err(e.kind()),
        }
    }
}

impl Conn {
    /// Socket mode: reads the next payload run of a Send bound for the receive pool
    /// straight into the buffers a blocked `read()` lent, when its octets are the
    /// next that reader gets (the pool and the inbox hold nothing before them).
    /// Under the state lock, as every write into lent memory (the invariant on
    /// `Lend`, docs/architecture.md "Socket mode"). The octets stay pending until
    /// their FPDU's CRC passes ([`Conn::lent_verified`]).
    fn read_lent(&mut self, run: usize) -> Option<Direct> {
        let n = self.core.pool_bypass(run);
        if n < DIRECT_MIN {
            return None;
        }
        let r = self.shared.sock.as_ref()?;
        if !r.lending.load(Ordering::Relaxed) {
            return None;
        }
        let r = std::sync::Arc::clone(r);
        let mut st = r.lock();
        if !st.inbox.is_empty() {
            return None;
        }
        let lend = st.lend.as_mut()?;
        let (ptr, len) = lend.free_span(n)?;
        // SAFETY: a free span of the lent buffers: valid and touched by no one else
        // while we hold the state lock with the lend in place (the invariant).
        let res = unsafe { sys::read_raw(self.fd, ptr, len) };
        if let Ok(k) = res {
            lend.placed_pending(k);
        }
        // SAFETY: the k octets just read into the span; still under the state lock
        // (the lend cannot be taken back while the deframer reads them).
        let res = res.map(|k| unsafe { std::slice::from_raw_parts(ptr.cast_const(), k) });
        let done = self.took_direct(res, |c, k| {
            c.core.recv_payload_taken(k);
            c.lent_pending = true;
        });
        drop(st);
        Some(done.unwrap_or_else(|kind| {
            self.lost(kind);
            Direct::Read
        }))
    }

    /// Socket mode, while a blocked `read()` lends its buffer: the size of the next
    /// buffered read, so that it stops where a Send's payload would begin (the
    /// FPDU's pad and CRC if its payload is behind, then the next header), and
    /// that payload can be read straight into the lent buffer instead of being
    /// read ahead into the receive pool. `None`: read as usual.
    pub(super) fn lent_read_size(&self) -> Option<usize> {
        let r = self.shared.sock.as_ref()?;
        if !r.lending.load(Ordering::Relaxed) || self.deframer.config().markers {
            return None;
        }
        if self.deframer.at_boundary() {
            return Some(SEND_HEADER);
        }
        if self.deframer.payload_run() == 0 && self.lent_pending {
            // The payload went into the lend: its pad and CRC, and the next header.
            let pad = (4 - (2 + usize::from(self.ulpdu_len)) % 4) % 4;
            return Some(pad + 4 + SEND_HEADER);
        }
        None
    }

    /// The FPDU whose payload went straight into a lent buffer passed its CRC: its
    /// octets count (in the lend, or in the inbox if the reader gave up meanwhile).
    pub(super) fn lent_verified(&mut self) {
        if !std::mem::take(&mut self.lent_pending) {
            return;
        }
        if let Some(r) = &self.shared.sock {
            let mut st = r.lock();
            match st.lend.as_mut() {
                Some(lend) => {
                    lend.verified();
                    // A lend filled to its last octet by that payload is done by
                    // size; if the payload also ended the message, take the
                    // message's (empty) end from the pool now, under the same lock,
                    // so the reader gets MSG_EOR with its octets, and no empty
                    // message follows them.
                    if lend.full() && !lend.eom {
                        if let Some(r) = self.core.read(&mut []) {
                            lend.eom = r.end_of_message;
                        }
                    }
                }
                None => st.inbox.verified(),
            }
        }
    }
}

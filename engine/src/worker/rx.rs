//! The receive side of the loop: buffered socket reads, deframing, handing headers
//! and payload to the core, the stash of octets the core cannot take yet, and the
//! end of the peer's stream. Reads straight into a destination are in `direct`.

use std::io;
use std::sync::atomic::Ordering;

use eta_ddp_core::{LlpError, RxVerdict};
use eta_mpa::Event;

use super::conn::Conn;
use super::direct::{DIRECT_MIN, Direct};
use crate::error::Error;
use crate::handoff::ConnState;
use crate::sys;

/// Buffered read size while long FPDUs arrive (headers, pad and CRC only).
const SMALL_READ: usize = 512;

impl Conn {
    /// Reads what the socket has (until `EAGAIN`, or until the core cannot take
    /// more), and handles the end of the peer's stream. Returns whether it made
    /// progress.
    pub fn receive(&mut self, buf: &mut [u8]) -> bool {
        let mut any = false;
        if self.blocked.is_some() || !self.stash.is_empty() {
            any |= self.drain_stash();
            if self.blocked.is_some() || !self.stash.is_empty() {
                return any;
            }
        }
        let mut eof = false;
        while self.readable && !eof && self.life.reads() {
            match self.read_direct() {
                Direct::NotTaken => {}
                Direct::Read => {
                    any = true;
                    continue;
                }
                Direct::Eof => {
                    any = true;
                    eof = true;
                    continue;
                }
                Direct::Retry => continue,
            }
            let size = match self.lent_read_size() {
                Some(n) => n,
                None if self.small_reads => SMALL_READ,
                None => buf.len(),
            };
            match sys::read(self.fd, &mut buf[..size]) {
                Ok(0) => {
                    eof = true;
                    any = true;
                }
                Ok(n) => {
                    any = true;
                    let used = self.feed(&buf[..n]);
                    if used < n || self.blocked.is_some() {
                        // The core cannot take the FPDU whose header came last: keep
                        // the rest (possibly nothing) and read no further, or its
                        // payload would reach the core before its header.
                        self.stash.extend_from_slice(&buf[used..n]);
                        break;
                    }
                    // Edge-triggered: keep reading until EAGAIN (a short read may
                    // still be followed by a FIN that raises no new edge).
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.lost(e.kind());
                    any = true;
                }
            }
        }
        if eof && !self.life.failed() {
            self.end_of_stream();
        }
        any
    }

    /// The peer closed its half (a read returned 0).
    fn end_of_stream(&mut self) {
        if self.responder && !self.core.has_received_fpdu() {
            // The Initiator went away before Full Operation began (e.g. it
            // refused our Reply): setup failed.
            self.shared.fail(Error::PeerClosed);
            self.lost(io::ErrorKind::UnexpectedEof);
        } else if self.deframer.at_boundary() && self.blocked.is_none() && self.stash.is_empty() {
            // The peer closed between messages: a graceful close. Finish what we
            // have to send, then close our half too.
            self.life = self.life.peer_fin();
            if self.shared.state() == ConnState::Open {
                self.shared.set_state(ConnState::Closing);
            }
        } else {
            // The stream ended inside an FPDU (cut short on the path, or the peer's
            // FIN in the middle of a message). The peer may still be reading (a
            // half-close): tell it with the LLP Terminate "TCP connection closed,
            // terminated or lost" (RFC 5044 §8) before our FIN, so that it fails
            // too instead of taking our FIN for a graceful close. Best effort: one
            // attempt to write it (the peer may have stopped reading as well), then
            // the connection is let go of as lost, as before.
            self.shared
                .fail(Error::ConnectionLost(io::ErrorKind::UnexpectedEof));
            self.core.mpa_error(LlpError::ConnectionLost);
            self.transmit();
            self.write_broken = None;
            self.lost(io::ErrorKind::UnexpectedEof);
        }
    }

    /// Notes a hang-up the reader may not see yet because the connection waits for
    /// a posted receive: a reset fails the connection at once (its data is gone); a
    /// FIN shows as `Closing` while the data before it waits to be received.
    pub fn peer_event(&mut self, flags: u32) {
        if self.blocked.is_none() && self.stash.is_empty() {
            return;
        }
        if flags & sys::ERR_HUP != 0 {
            if let Some(e) = sys::socket_error(self.fd) {
                self.lost(e.kind());
                return;
            }
        }
        if flags & sys::RDHUP != 0 && self.shared.state() == ConnState::Open {
            self.shared.set_state(ConnState::Closing);
        }
    }

    /// Hands the blocked header and the stashed octets to the core, as far as it
    /// takes them. Returns false while the header stays blocked.
    pub fn drain_stash(&mut self) -> bool {
        if let Some((len, h)) = self.blocked {
            if self.core.recv_header(len, h.as_slice()) == RxVerdict::Blocked {
                return false;
            }
            self.blocked = None;
        }
        if self.stash.is_empty() {
            return true;
        }
        let stash = std::mem::take(&mut self.stash);
        let used = self.feed(&stash);
        self.stash = stash[used..].to_vec();
        true
    }

    /// Deframes octets into the core; returns how many were used (fewer when the
    /// core cannot take an untagged message now).
    fn feed(&mut self, data: &[u8]) -> usize {
        let mut input = data;
        let mut used_total = 0;
        loop {
            match self.deframer.advance(input) {
                Err(e) => {
                    self.core.mpa_error(&e);
                    return data.len();
                }
                Ok((used, ev)) => {
                    input = &input[used..];
                    used_total += used;
                    match ev {
                        Event::NeedInput => return used_total,
                        Event::Header { ulpdu_len, header } => {
                            self.ulpdu_len = ulpdu_len;
                            // After a long ULPDU, read in small pieces so the next
                            // long payload goes straight to its destination.
                            // (Not with markers: their runs are too short.)
                            self.small_reads = !self.deframer.config().markers
                                && usize::from(ulpdu_len) >= DIRECT_MIN * 2;
                            if self.core.recv_header(ulpdu_len, header.as_slice())
                                == RxVerdict::Blocked
                            {
                                self.blocked = Some((ulpdu_len, header));
                                return used_total;
                            }
                        }
                        Event::Payload(p) => {
                            self.shared
                                .rx_copied
                                .fetch_add(p.len() as u64, Ordering::Relaxed);
                            self.core.recv_payload(p)
                        }
                        Event::End => {
                            self.core.recv_end();
                            self.lent_verified();
                        }
                    }
                }
            }
        }
    }
}

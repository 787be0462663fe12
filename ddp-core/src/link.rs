//! An in-memory MPA stream between two [`Connection`]s, for tests, examples, demos
//! and benchmarks: what one side sends is framed by a real [`eta_mpa::Framer`] into
//! exactly the octets a TCP connection would carry, cut into chunks of any size (the
//! resegmentation TCP is free to do), and fed through a real [`eta_mpa::Deframer`]
//! into the other side.
//!
//! A [`Link`] is one direction; two make a connection. Like the rest of the crate it
//! is pure: no sockets, clocks or threads. In steady state it does not allocate (its
//! buffers are reused), so it can stand in for the transport in allocation counts.
//!
//! ```
//! use eta_ddp_core::link::Link;
//! use eta_ddp_core::{Config, ConnId, Connection, LocalBuffer, MemoryTable, SendOptions};
//!
//! let table = MemoryTable::new();
//! let mut a = Connection::new(Config::new(ConnId(1), 1024), table.clone()).unwrap();
//! let mut b = Connection::new(Config::new(ConnId(2), 1024), table).unwrap();
//! b.post_recv(1, LocalBuffer::from_boxed(vec![0; 16].into())).unwrap();
//! a.post_send(1, LocalBuffer::from_static(b"hello"), SendOptions::default()).unwrap();
//!
//! let mut a_to_b = Link::new(true);
//! a_to_b.pump(&mut a, &mut b, 3); // three octets at a time
//! assert_eq!(b.poll_completion().unwrap().byte_len, 5);
//! assert_eq!((a_to_b.fpdus(), a_to_b.octets()), (1, 32));
//! ```

use std::io::IoSlice;

use eta_mpa::{
    Deframer, DeframerConfig, Event, FpduScratch, FrameError, Framer, FramerConfig, HeaderBytes,
    MpaError, recycle_iov,
};

use crate::connection::{Connection, RxVerdict};
use crate::wire::ulpdu_header_len;

/// One direction of an in-memory MPA stream: a framer, the octets in flight, and a
/// deframer feeding the receiving [`Connection`]. No markers.
pub struct Link {
    framer: Framer,
    deframer: Deframer,
    scratch: FpduScratch,
    /// The gather list, kept for its allocation.
    iov: Vec<IoSlice<'static>>,
    /// Octets framed and not yet delivered (from `pos`).
    bytes: Vec<u8>,
    pos: usize,
    /// A header the receiver answered [`RxVerdict::Blocked`]: offered again first.
    blocked: Option<(u16, HeaderBytes)>,
    /// The deframer's error, reported to the receiver; nothing is delivered after it.
    error: Option<MpaError>,
    fpdus: u64,
    octets: u64,
}

impl core::fmt::Debug for Link {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Link")
            .field("in_flight", &self.in_flight())
            .field("blocked", &self.blocked)
            .field("error", &self.error)
            .field("fpdus", &self.fpdus)
            .field("octets", &self.octets)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// A direction with the CRC computed and checked (`crc`) or left zero and
    /// ignored, and no markers.
    pub fn new(crc: bool) -> Self {
        Link {
            framer: Framer::new(FramerConfig {
                crc,
                markers: false,
            }),
            deframer: Deframer::new(DeframerConfig {
                crc,
                markers: false,
                max_ulpdu: u16::MAX,
                header_len: ulpdu_header_len,
            }),
            scratch: FpduScratch::default(),
            iov: Vec::new(),
            bytes: Vec::new(),
            pos: 0,
            blocked: None,
            error: None,
            fpdus: 0,
            octets: 0,
        }
    }

    /// Frames every segment `from` has to send now and reports each sent; returns
    /// how many.
    pub fn transmit(&mut self, from: &mut Connection) -> usize {
        self.transmit_up_to(from, usize::MAX)
    }

    /// As [`transmit`](Self::transmit), but at most `max` segments.
    pub fn transmit_up_to(&mut self, from: &mut Connection, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(seg) = from.poll_segment() else {
                break;
            };
            let mut iov = recycle_iov(std::mem::take(&mut self.iov));
            let len = self
                .framer
                .frame(
                    &mut self.scratch,
                    seg.header(),
                    &[from.segment_payload(&seg)],
                    &mut iov,
                )
                // A segment is at most the MULPDU (a u16) and there are no markers.
                .expect("a segment always fits an FPDU");
            for s in &iov {
                self.bytes.extend_from_slice(s);
            }
            self.iov = recycle_iov(iov);
            from.segment_sent(seg.token());
            self.count(len);
            n += 1;
        }
        n
    }

    /// Frames `ulpdu` (a ULPDU built by hand, valid or not) into the stream, after
    /// what is already in flight. Returns the FPDU's length.
    pub fn push_ulpdu(&mut self, ulpdu: &[u8]) -> Result<usize, FrameError> {
        let mut iov = recycle_iov(std::mem::take(&mut self.iov));
        let len = self.framer.frame(&mut self.scratch, ulpdu, &[], &mut iov)?;
        for s in &iov {
            self.bytes.extend_from_slice(s);
        }
        self.iov = recycle_iov(iov);
        self.count(len);
        Ok(len)
    }

    fn count(&mut self, fpdu_len: usize) {
        self.fpdus += 1;
        self.octets += fpdu_len as u64;
    }

    /// Delivers the octets in flight to `to` through the deframer, in chunks whose
    /// sizes `next_chunk` gives (one call per chunk; 0 counts as 1). Stops early when
    /// `to` answers a header with [`RxVerdict::Blocked`] (the header is offered again
    /// first on the next call) or the deframer fails (the error goes to
    /// [`Connection::mpa_error`] and the link delivers nothing more). Returns whether
    /// anything was consumed.
    pub fn deliver(&mut self, to: &mut Connection, mut next_chunk: impl FnMut() -> usize) -> bool {
        if self.error.is_some() {
            self.bytes.clear();
            self.pos = 0;
            return false;
        }
        let mut progress = false;
        if let Some((len, h)) = self.blocked {
            if to.recv_header(len, h.as_slice()) == RxVerdict::Blocked {
                return false;
            }
            self.blocked = None;
            progress = true;
        }
        while self.pos < self.bytes.len() && self.error.is_none() {
            let end = (self.pos + next_chunk().max(1)).min(self.bytes.len());
            let mut input = &self.bytes[self.pos..end];
            loop {
                match self.deframer.advance(input) {
                    Err(e) => {
                        to.mpa_error(&e);
                        self.error = Some(e);
                        break;
                    }
                    Ok((used, ev)) => {
                        input = &input[used..];
                        self.pos += used;
                        progress |= used > 0;
                        match ev {
                            Event::NeedInput => break,
                            Event::Header { ulpdu_len, header } => {
                                if to.recv_header(ulpdu_len, header.as_slice())
                                    == RxVerdict::Blocked
                                {
                                    self.blocked = Some((ulpdu_len, header));
                                    return progress;
                                }
                            }
                            Event::Payload(p) => to.recv_payload(p),
                            Event::End => to.recv_end(),
                        }
                    }
                }
            }
        }
        if self.pos == self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        }
        progress
    }

    /// [`transmit`](Self::transmit) from `from`, then [`deliver`](Self::deliver) to
    /// `to` in chunks of `chunk` octets. Returns the number of FPDUs framed.
    pub fn pump(&mut self, from: &mut Connection, to: &mut Connection, chunk: usize) -> usize {
        let n = self.transmit(from);
        self.deliver(to, || chunk);
        n
    }

    /// Octets framed and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Whether the receiver refused the last header offered (its pool is full).
    pub fn is_blocked(&self) -> bool {
        self.blocked.is_some()
    }

    /// Whether everything framed was delivered and nothing waits.
    pub fn is_idle(&self) -> bool {
        self.in_flight() == 0 && self.blocked.is_none()
    }

    /// The deframer's error, if the stream failed (a CRC error, …).
    pub fn error(&self) -> Option<&MpaError> {
        self.error.as_ref()
    }

    /// FPDUs framed so far.
    pub fn fpdus(&self) -> u64 {
        self.fpdus
    }

    /// Octets framed so far (FPDUs as on the wire).
    pub fn octets(&self) -> u64 {
        self.octets
    }
}

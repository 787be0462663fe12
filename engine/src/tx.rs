//! The transmit side of one connection: FPDUs framed from the segments `ddp-core`
//! hands out, kept in flight as raw iovecs until the kernel has taken every octet,
//! written with `writev` straight from the application's buffers (no copy).

use std::collections::VecDeque;
use std::io;
use std::io::IoSlice;
use std::os::fd::RawFd;

use eta_ddp_core::{Connection as Core, Segment};
use eta_mpa::{FpduScratch, Framer};

use crate::sys;

/// FPDUs framed ahead of the socket at most.
const MAX_IN_FLIGHT: usize = 64;

/// One framed FPDU. Boxed so that its header and scratch octets, which the iovecs
/// point at, never move while it waits in the queue.
struct InFlight {
    seg: Segment,
    scratch: FpduScratch,
    /// Octets on the wire.
    len: usize,
}

/// FPDUs in flight on one connection.
pub(crate) struct Tx {
    fpdus: VecDeque<Box<InFlight>>,
    /// The iovecs of every FPDU in `fpdus`, in order, from `head` on.
    iov: Vec<libc::iovec>,
    head: usize,
    /// Octets of the front FPDU already written.
    front_written: usize,
    /// FPDUs framed so far, and acknowledged (fully written) so far.
    pub framed: u64,
    pub acked: u64,
    slices: Vec<IoSlice<'static>>,
}

/// Boxes of acknowledged FPDUs, kept per engine thread for reuse: no allocation per
/// FPDU once warm, and no memory held by idle connections.
const POOL_MAX: usize = 256;

thread_local! {
    // Boxed on purpose: an FPDU's address is handed to the kernel and must not move.
    #[allow(clippy::vec_box)]
    static POOL: std::cell::RefCell<Vec<Box<InFlight>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn recycle(b: Box<InFlight>) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(b);
        }
    });
}

// SAFETY: the raw pointers in `iov` refer to memory owned by this Tx (boxed FPDUs) or
// by the connection's core (payload buffers kept until `segment_sent`); both move
// with the connection to the one engine thread that uses them.
unsafe impl Send for Tx {}

impl Tx {
    pub fn new() -> Self {
        Self {
            fpdus: VecDeque::new(),
            iov: Vec::new(),
            head: 0,
            front_written: 0,
            framed: 0,
            acked: 0,
            slices: Vec::new(),
        }
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.fpdus.is_empty()
    }

    /// Frames segments from the core until the window is full or the core has none.
    /// Returns how many were framed.
    pub fn fill(&mut self, core: &mut Core, framer: &mut Framer, max: usize) -> usize {
        let mut n = 0;
        while self.fpdus.len() < MAX_IN_FLIGHT && n < max {
            let Some(seg) = core.poll_segment() else {
                break;
            };
            let mut fpdu = match POOL.with(|p| p.borrow_mut().pop()) {
                Some(mut b) => {
                    b.seg = seg;
                    b
                }
                None => Box::new(InFlight {
                    seg,
                    scratch: FpduScratch::default(),
                    len: 0,
                }),
            };
            let InFlight { seg, scratch, len } = &mut *fpdu;
            let payload = core.segment_payload(seg);
            let mut slices = eta_mpa::recycle_iov(std::mem::take(&mut self.slices));
            match framer.frame(scratch, seg.header(), &[payload], &mut slices) {
                Ok(wire) => *len = wire,
                Err(_) => {
                    // ddp-core segments to the MULPDU we gave it; a frame error is a
                    // bug, and dropping the segment would corrupt the stream.
                    unreachable!("segment larger than the MULPDU");
                }
            }
            for s in &slices {
                self.iov.push(libc::iovec {
                    iov_base: s.as_ptr() as *mut libc::c_void,
                    iov_len: s.len(),
                });
            }
            self.slices = eta_mpa::recycle_iov(slices);
            self.fpdus.push_back(fpdu);
            self.framed += 1;
            n += 1;
        }
        n
    }

    /// Writes as much as the socket takes. Completed FPDUs are acknowledged to the
    /// core. Returns octets written; `Ok(0)` with FPDUs left means the socket is full.
    pub fn flush(&mut self, fd: RawFd, core: &mut Core) -> io::Result<usize> {
        let mut total = 0;
        while self.head < self.iov.len() {
            // SAFETY: every iovec from `head` on points into a boxed FPDU still in
            // `self.fpdus` (its header lives in the Segment, its length/marker/CRC
            // octets in the scratch), into payload memory the core keeps until
            // `segment_sent` for that FPDU (not yet called), or into mpa's static pad.
            let n = match unsafe { sys::writev(fd, &self.iov[self.head..]) } {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.consume(n, core);
            if n == 0 {
                break;
            }
        }
        if self.head == self.iov.len() {
            self.iov.clear();
            self.head = 0;
        }
        Ok(total)
    }

    fn consume(&mut self, mut n: usize, core: &mut Core) {
        let written = n;
        while n > 0 {
            let v = &mut self.iov[self.head];
            if n >= v.iov_len {
                n -= v.iov_len;
                self.head += 1;
            } else {
                // SAFETY: advancing within the same iovec's span (n < iov_len).
                v.iov_base = unsafe { v.iov_base.cast::<u8>().add(n) }.cast();
                v.iov_len -= n;
                n = 0;
            }
        }
        self.front_written += written;
        while let Some(front) = self.fpdus.front() {
            if self.front_written < front.len {
                break;
            }
            self.front_written -= front.len;
            let fpdu = self.fpdus.pop_front().expect("front exists");
            self.acked += 1;
            core.segment_sent(fpdu.seg.token());
            recycle(fpdu);
        }
    }

    /// Drops everything in flight (the transport is gone). Call before telling the
    /// core the transport closed, so no iovec outlives the buffers.
    pub fn abandon(&mut self) {
        self.iov.clear();
        self.head = 0;
        self.front_written = 0;
        for b in self.fpdus.drain(..) {
            recycle(b);
        }
    }
}

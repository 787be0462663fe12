//! In-memory wiring of connections through the MPA framer and deframer.
#![allow(dead_code)]

use eta_ddp_core::{Connection, RxVerdict, ulpdu_header_len};
use eta_mpa::{Deframer, DeframerConfig, Event, FpduScratch, Framer, FramerConfig, HeaderBytes};

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

/// One direction: framed bytes in flight between two connections.
pub struct Pipe {
    framer: Framer,
    deframer: Deframer,
    pub bytes: Vec<u8>,
    pos: usize,
    blocked: Option<(u16, HeaderBytes)>,
    pub failed: bool,
}

impl Pipe {
    pub fn new(crc: bool) -> Self {
        Pipe {
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
            bytes: Vec::new(),
            pos: 0,
            blocked: None,
            failed: false,
        }
    }

    /// Frames every segment `c` has to send; returns how many.
    pub fn transmit(&mut self, c: &mut Connection) -> usize {
        let mut n = 0;
        let mut scratch = FpduScratch::default();
        while let Some(seg) = c.poll_segment() {
            let mut iov = Vec::new();
            let payload = c.segment_payload(&seg);
            assert_eq!(payload.len(), seg.payload_len());
            self.framer
                .frame(&mut scratch, seg.header(), &[payload], &mut iov)
                .expect("frame");
            for s in &iov {
                self.bytes.extend_from_slice(s);
            }
            c.segment_sent(seg.token());
            n += 1;
        }
        n
    }

    /// Delivers the bytes in flight to `c` in random chunks (1..=max_chunk octets).
    /// Returns whether anything was consumed.
    pub fn deliver(&mut self, c: &mut Connection, rng: &mut Rng, max_chunk: usize) -> bool {
        let mut progress = false;
        if let Some((len, h)) = self.blocked {
            if c.recv_header(len, h.as_slice()) == RxVerdict::Blocked {
                return false;
            }
            self.blocked = None;
            progress = true;
        }
        while self.pos < self.bytes.len() && !self.failed {
            let chunk = 1 + rng.below(max_chunk as u64) as usize;
            let end = (self.pos + chunk).min(self.bytes.len());
            let mut input = &self.bytes[self.pos..end];
            loop {
                match self.deframer.advance(input) {
                    Err(e) => {
                        c.mpa_error(&e);
                        self.failed = true;
                        break;
                    }
                    Ok((used, ev)) => {
                        input = &input[used..];
                        self.pos += used;
                        progress |= used > 0;
                        match ev {
                            Event::NeedInput => break,
                            Event::Header { ulpdu_len, header } => {
                                if c.recv_header(ulpdu_len, header.as_slice()) == RxVerdict::Blocked
                                {
                                    self.blocked = Some((ulpdu_len, header));
                                    return progress;
                                }
                            }
                            Event::Payload(p) => c.recv_payload(p),
                            Event::End => c.recv_end(),
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

    pub fn idle(&self) -> bool {
        self.pos >= self.bytes.len() && self.blocked.is_none()
    }
}

//! CRC32c of an FPDU with markers, at the speed of the contiguous case.
//!
//! On the wire an FPDU with markers is a sequence of 512-octet chunks — a marker and
//! 508 octets — whose octets live in different places (the marker in the framer's
//! scratch, the rest in the caller's buffer). Chained chunk after chunk, the CRC of
//! 508-octet runs is bound by the latency of the `crc32` instruction. Here each
//! chunk's CRC is computed from zero, three chunks at a time with interleaved
//! instructions (independent dependency chains), and folded into the running value
//! with the linearity of CRCs: `R(s, chunk) = shift512(s) ^ R(0, chunk)`, where `R`
//! is the raw register update and `shift512` is four table lookups.

use crate::crc;

/// Octets of a marker chunk after its marker.
const BODY: usize = 508;
/// Octets of a whole marker chunk.
const CHUNK: usize = 512;

/// Raw CRC register update (no pre/post inversion) over `data`.
#[inline]
fn raw(reg: u32, data: &[u8]) -> u32 {
    !crc::append(!reg, data)
}

/// `reg` advanced over 512 zero octets.
#[inline]
fn shift512(reg: u32) -> u32 {
    let t = tables();
    t[0][(reg & 0xff) as usize]
        ^ t[1][((reg >> 8) & 0xff) as usize]
        ^ t[2][((reg >> 16) & 0xff) as usize]
        ^ t[3][(reg >> 24) as usize]
}

fn tables() -> &'static [[u32; 256]; 4] {
    static T: std::sync::LazyLock<Box<[[u32; 256]; 4]>> = std::sync::LazyLock::new(|| {
        let zeros = [0u8; CHUNK];
        let mut t = Box::new([[0u32; 256]; 4]);
        for (k, row) in t.iter_mut().enumerate() {
            for (b, v) in row.iter_mut().enumerate() {
                *v = raw((b as u32) << (8 * k), &zeros);
            }
        }
        t
    });
    &T
}

/// `R(0, marker || body)` for three chunks at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn chunks3_sse42(markers: [[u8; 4]; 3], bodies: [&[u8]; 3]) -> [u32; 3] {
    use core::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};
    let (Ok(b0), Ok(b1), Ok(b2)) = (
        <&[u8; BODY]>::try_from(&bodies[0][..BODY]),
        <&[u8; BODY]>::try_from(&bodies[1][..BODY]),
        <&[u8; BODY]>::try_from(&bodies[2][..BODY]),
    ) else {
        unreachable!("bodies are BODY octets long");
    };
    let mut c0 = u64::from(_mm_crc32_u32(0, u32::from_le_bytes(markers[0])));
    let mut c1 = u64::from(_mm_crc32_u32(0, u32::from_le_bytes(markers[1])));
    let mut c2 = u64::from(_mm_crc32_u32(0, u32::from_le_bytes(markers[2])));
    // 508 = 63 × 8 + 4: three independent chains, interleaved.
    // Loads stay in this function (a closure or helper would not be inlined into
    // the target-feature function).
    macro_rules! word {
        ($b:expr, $at:expr) => {
            u64::from_le_bytes([
                $b[$at],
                $b[$at + 1],
                $b[$at + 2],
                $b[$at + 3],
                $b[$at + 4],
                $b[$at + 5],
                $b[$at + 6],
                $b[$at + 7],
            ])
        };
    }
    let mut at = 0;
    while at < 504 {
        c0 = _mm_crc32_u64(c0, word!(b0, at));
        c1 = _mm_crc32_u64(c1, word!(b1, at));
        c2 = _mm_crc32_u64(c2, word!(b2, at));
        at += 8;
    }
    macro_rules! tail {
        ($b:expr) => {
            u32::from_le_bytes([$b[504], $b[505], $b[506], $b[507]])
        };
    }
    [
        _mm_crc32_u32(c0 as u32, tail!(b0)),
        _mm_crc32_u32(c1 as u32, tail!(b1)),
        _mm_crc32_u32(c2 as u32, tail!(b2)),
    ]
}

#[cfg(target_arch = "x86_64")]
fn has_sse42() -> bool {
    static HAS: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::arch::is_x86_feature_detected!("sse4.2"));
    *HAS
}

/// `R(0, marker || body)` for three chunks, with the fastest kernel the CPU has.
fn chunks3(markers: [[u8; 4]; 3], bodies: [&[u8]; 3]) -> [u32; 3] {
    #[cfg(target_arch = "x86_64")]
    if has_sse42() {
        #[allow(unsafe_code)]
        // SAFETY: the CPU supports SSE4.2 (checked at run time), the only requirement
        // of this function's target feature; it reads nothing but its arguments.
        return unsafe { chunks3_sse42(markers, bodies) };
    }
    let mut out = [0u32; 3];
    for i in 0..3 {
        out[i] = raw(raw(0, &markers[i]), bodies[i]);
    }
    out
}

/// Accumulates the CRC of one FPDU fed in wire order as data runs and markers.
/// Chunks made of a marker and one 508-octet run are batched three at a time; all
/// else is folded in serially.
pub(crate) struct MarkerCrc<'a> {
    reg: u32,
    /// The chunk being collected: its marker and its runs so far.
    marker: Option<[u8; 4]>,
    runs: [&'a [u8]; 4],
    n_runs: usize,
    /// Complete simple chunks waiting for a batch of three.
    pending: [([u8; 4], &'a [u8]); 3],
    n_pending: usize,
}

impl<'a> MarkerCrc<'a> {
    pub(crate) fn new() -> Self {
        Self {
            reg: !0,
            marker: None,
            runs: [&[]; 4],
            n_runs: 0,
            pending: [([0; 4], &[]); 3],
            n_pending: 0,
        }
    }

    /// A run of octets (none of them a marker).
    pub(crate) fn data(&mut self, run: &'a [u8]) {
        if run.is_empty() {
            return;
        }
        if self.marker.is_none() {
            // Before the first marker: fold in at once.
            self.flush_pending();
            self.reg = raw(self.reg, run);
            return;
        }
        if self.n_runs == self.runs.len() {
            self.close_chunk();
            // Degenerate: more pieces than expected in one chunk; keep it serial.
            self.reg = raw(self.reg, run);
            return;
        }
        self.runs[self.n_runs] = run;
        self.n_runs += 1;
    }

    /// A marker: it opens a new chunk.
    pub(crate) fn marker(&mut self, bytes: [u8; 4]) {
        self.close_chunk();
        self.marker = Some(bytes);
    }

    /// The CRC of everything fed.
    pub(crate) fn finish(mut self) -> u32 {
        self.close_chunk();
        self.flush_pending();
        !self.reg
    }

    fn close_chunk(&mut self) {
        let Some(m) = self.marker.take() else {
            return;
        };
        let (runs, n) = (self.runs, self.n_runs);
        let runs = &runs[..n];
        if runs.len() == 1 && runs[0].len() == BODY {
            self.pending[self.n_pending] = (m, runs[0]);
            self.n_pending += 1;
            if self.n_pending == 3 {
                let [a, b, c] = self.pending;
                let g = chunks3([a.0, b.0, c.0], [a.1, b.1, c.1]);
                for gi in g {
                    self.reg = shift512(self.reg) ^ gi;
                }
                self.n_pending = 0;
            }
        } else {
            self.flush_pending();
            self.reg = raw(self.reg, &m);
            for r in runs {
                self.reg = raw(self.reg, r);
            }
        }
        self.n_runs = 0;
    }

    fn flush_pending(&mut self) {
        for i in 0..self.n_pending {
            let (m, body) = self.pending[i];
            self.reg = raw(raw(self.reg, &m), body);
        }
        self.n_pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_plain_crc_for_any_layout() {
        let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for head in [0usize, 4, 20, 508] {
            for split in [None, Some(100), Some(508), Some(1700)] {
                // Wire image: `head` octets, then chunks of marker + 508 octets.
                let mut wire = Vec::new();
                let mut acc = MarkerCrc::new();
                let (first, rest) = data.split_at(head);
                acc.data(first);
                wire.extend_from_slice(first);
                let mut off = 0;
                let mut k = 0u16;
                while off < rest.len() {
                    let m = [0, 0, (k >> 8) as u8, k as u8];
                    acc.marker(m);
                    wire.extend_from_slice(&m);
                    let end = (off + BODY).min(rest.len());
                    // Optionally cut a chunk's body in two pieces.
                    match split {
                        Some(s) if s > off && s < end => {
                            acc.data(&rest[off..s]);
                            acc.data(&rest[s..end]);
                        }
                        _ => acc.data(&rest[off..end]),
                    }
                    wire.extend_from_slice(&rest[off..end]);
                    off = end;
                    k += 1;
                }
                assert_eq!(
                    acc.finish(),
                    crc::crc32c(&wire),
                    "head {head} split {split:?}"
                );
            }
        }
    }

    #[test]
    fn portable_and_sse42_kernels_agree() {
        let b: Vec<u8> = (0..3 * BODY).map(|i| (i * 31) as u8).collect();
        let bodies = [&b[..BODY], &b[BODY..2 * BODY], &b[2 * BODY..]];
        let m = [[1, 2, 3, 4], [0, 0, 1, 0xfc], [9, 9, 9, 9]];
        let got = chunks3(m, bodies);
        for i in 0..3 {
            assert_eq!(got[i], raw(raw(0, &m[i]), bodies[i]));
        }
    }
}

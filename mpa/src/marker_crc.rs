//! CRC32c of an FPDU with markers, at the speed of the contiguous case.
//!
//! The CRC of an FPDU covers its markers as they sit in the stream (RFC 5044 §4.4),
//! so the octets it is computed over are not contiguous in memory: a marker every
//! 512 octets lives in the framer's scratch, the data between in the caller's
//! buffers. Chained chunk after chunk (marker, then 508 octets), the CRC is bound by
//! the latency of the `crc32` instruction, about a third of its throughput.
//!
//! Here the whole chunks of an FPDU are cut into three lanes of consecutive chunks,
//! hashed together with interleaved instructions (three independent dependency
//! chains, as the crc32c crate does within one long buffer), the first lane from
//! the running value and the other two from zero. The lanes are then combined with
//! the linearity of CRCs: `R(s, a ‖ b) = shift(R(s, a), |b|) ^ R(0, b)`, where `R`
//! is the raw register update and `shift` (advancing a register over zero octets)
//! takes four lookups per power of two of 512 octets, in tables built at compile
//! time. Whole chunks that straddle the caller's slices (the length field and the
//! header, a slice boundary) go three at a time through a one-chunk-per-lane kernel;
//! only the octets before the first marker and after the last whole chunk are
//! hashed serially.

use crate::crc;

/// Octets of a marker chunk after its marker.
const BODY: usize = 508;
/// Octets of a whole marker chunk: marker and body.
const CHUNK: usize = 512;

/// Raw CRC register update (no pre/post inversion) over `data`.
#[inline]
fn raw(reg: u32, data: &[u8]) -> u32 {
    !crc::append(!reg, data)
}

/// Reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `reg` advanced bit by bit over `n` zero octets (compile time only).
const fn zeros_slow(mut reg: u32, n: usize) -> u32 {
    let mut i = 0;
    while i < 8 * n {
        reg = if reg & 1 != 0 {
            (reg >> 1) ^ POLY
        } else {
            reg >> 1
        };
        i += 1;
    }
    reg
}

/// The images of the 32 one-bit registers when advanced over `n` zero octets
/// (compile time only).
const fn basis_slow(n: usize) -> [u32; 32] {
    let mut basis = [0u32; 32];
    let mut bit = 0;
    while bit < 32 {
        basis[bit] = zeros_slow(1 << bit, n);
        bit += 1;
    }
    basis
}

/// Applies the linear map given by the images of its basis (compile time only).
const fn apply(basis: &[u32; 32], reg: u32) -> u32 {
    let mut v = 0;
    let mut bit = 0;
    while bit < 32 {
        if reg & (1 << bit) != 0 {
            v ^= basis[bit];
        }
        bit += 1;
    }
    v
}

/// The map `basis` applied twice (compile time only).
const fn square(basis: &[u32; 32]) -> [u32; 32] {
    let mut out = [0u32; 32];
    let mut bit = 0;
    while bit < 32 {
        out[bit] = apply(basis, basis[bit]);
        bit += 1;
    }
    out
}

/// A table of four lookups for the linear map given by `basis`: `[k][b]` is the
/// image of a register holding `b << 8k` (compile time only).
const fn table(basis: &[u32; 32]) -> Table {
    let mut t = [[0u32; 256]; 4];
    let mut k = 0;
    while k < 4 {
        let mut b = 0;
        while b < 256 {
            t[k][b] = apply(basis, (b as u32) << (8 * k));
            b += 1;
        }
        k += 1;
    }
    t
}

/// Advances a register over a fixed number of zero octets in four lookups.
type Table = [[u32; 256]; 4];

/// Lanes are at most `2^POW_TABLES − 1` chunks long.
const POW_TABLES: usize = 6;

/// `SHIFT_POW[j]` advances a register over `2^j` chunks of zeros.
static SHIFT_POW: [Table; POW_TABLES] = {
    let mut basis = basis_slow(CHUNK);
    let mut t = [[[0u32; 256]; 4]; POW_TABLES];
    let mut j = 0;
    while j < POW_TABLES {
        t[j] = table(&basis);
        basis = square(&basis);
        j += 1;
    }
    t
};

/// `reg` advanced over the zero octets of `table`.
#[inline]
fn shift(table: &Table, reg: u32) -> u32 {
    let [b0, b1, b2, b3] = reg.to_le_bytes();
    table[0][usize::from(b0)]
        ^ table[1][usize::from(b1)]
        ^ table[2][usize::from(b2)]
        ^ table[3][usize::from(b3)]
}

/// `reg` advanced over `n` chunks of zeros (`n < 2^POW_TABLES`).
#[inline]
fn shift_chunks(mut reg: u32, n: usize) -> u32 {
    debug_assert!(n < 1 << POW_TABLES);
    for (j, t) in SHIFT_POW.iter().enumerate() {
        if n & (1 << j) != 0 {
            reg = shift(t, reg);
        }
    }
    reg
}

/// Raw registers of three lanes of whole chunks: lane `i` starts from `regs[i]` and
/// hashes each of its chunks, marker `markers[i][c]` then body
/// `bodies[i][508·c..508·(c + 1)]`. All lanes have the same number of chunks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
fn lanes3_sse42(regs: [u32; 3], markers: [&[[u8; 4]]; 3], bodies: [&[u8]; 3]) -> [u32; 3] {
    use core::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64};
    let [m0, m1, m2] = markers;
    let [b0, b1, b2] = bodies;
    let [mut c0, mut c1, mut c2] = regs.map(u64::from);
    let chunks = m0
        .iter()
        .zip(m1)
        .zip(m2)
        .zip(b0.chunks_exact(BODY))
        .zip(b1.chunks_exact(BODY))
        .zip(b2.chunks_exact(BODY));
    for (((((m0, m1), m2), x0), x1), x2) in chunks {
        let (Ok(x0), Ok(x1), Ok(x2)) = (
            <&[u8; BODY]>::try_from(x0),
            <&[u8; BODY]>::try_from(x1),
            <&[u8; BODY]>::try_from(x2),
        ) else {
            unreachable!("chunks_exact yields BODY octets");
        };
        c0 = u64::from(_mm_crc32_u32(c0 as u32, u32::from_le_bytes(*m0)));
        c1 = u64::from(_mm_crc32_u32(c1 as u32, u32::from_le_bytes(*m1)));
        c2 = u64::from(_mm_crc32_u32(c2 as u32, u32::from_le_bytes(*m2)));
        // 508 = 63 × 8 + 4: three independent chains, interleaved. Loads stay in
        // this function (a closure or helper would not be inlined into the
        // target-feature function).
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
            c0 = _mm_crc32_u64(c0, word!(x0, at));
            c1 = _mm_crc32_u64(c1, word!(x1, at));
            c2 = _mm_crc32_u64(c2, word!(x2, at));
            at += 8;
        }
        macro_rules! tail {
            ($b:expr) => {
                u32::from_le_bytes([$b[504], $b[505], $b[506], $b[507]])
            };
        }
        c0 = u64::from(_mm_crc32_u32(c0 as u32, tail!(x0)));
        c1 = u64::from(_mm_crc32_u32(c1 as u32, tail!(x1)));
        c2 = u64::from(_mm_crc32_u32(c2 as u32, tail!(x2)));
    }
    [c0 as u32, c1 as u32, c2 as u32]
}

/// [`lanes3_sse42`] with the fastest kernel the CPU has (`hw`: SSE4.2 is
/// available).
#[inline]
fn lanes3(hw: bool, regs: [u32; 3], markers: [&[[u8; 4]]; 3], bodies: [&[u8]; 3]) -> [u32; 3] {
    #[cfg(target_arch = "x86_64")]
    if hw {
        #[allow(unsafe_code)]
        // SAFETY: `hw` says the CPU supports SSE4.2 (checked at run time by
        // `has_hw`), the only requirement of this function's target feature.
        return unsafe { lanes3_sse42(regs, markers, bodies) };
    }
    let _ = hw;
    core::array::from_fn(|i| {
        let mut reg = regs[i];
        for (m, body) in markers[i].iter().zip(bodies[i].chunks_exact(BODY)) {
            reg = raw(raw(reg, m), body);
        }
        reg
    })
}

/// Whether the CPU has the instructions of [`lanes3_sse42`].
#[inline]
fn has_hw() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse4.2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Reads a sequence of slices as one stream of octets.
struct Cursor<'a, I> {
    cur: &'a [u8],
    rest: I,
}

impl<'a, I: Iterator<Item = &'a [u8]>> Cursor<'a, I> {
    /// The next octets: a non-empty slice of at most `max` octets.
    fn next_run(&mut self, max: usize) -> &'a [u8] {
        while self.cur.is_empty() {
            match self.rest.next() {
                Some(s) => self.cur = s,
                None => panic!("FPDU content shorter than its length"),
            }
        }
        let (run, rest) = self.cur.split_at(max.min(self.cur.len()));
        self.cur = rest;
        run
    }

    /// The octets left in the current slice (empty only at the end).
    fn contiguous(&mut self) -> &'a [u8] {
        while self.cur.is_empty() {
            match self.rest.next() {
                Some(s) => self.cur = s,
                None => break,
            }
        }
        self.cur
    }

    /// Skips `n` octets of the current slice.
    fn skip(&mut self, n: usize) {
        self.cur = &self.cur[n..];
    }

    /// `reg` advanced over the next `n` octets.
    fn hash(&mut self, mut reg: u32, mut n: usize) -> u32 {
        while n > 0 {
            let run = self.next_run(n);
            reg = raw(reg, run);
            n -= run.len();
        }
        reg
    }

    /// The next [`BODY`] octets: borrowed when they are contiguous, else gathered
    /// into `tmp`.
    fn body<'t>(&mut self, tmp: &'t mut [u8; BODY]) -> &'t [u8; BODY]
    where
        'a: 't,
    {
        if let Some((body, rest)) = self.cur.split_first_chunk::<BODY>() {
            self.cur = rest;
            return body;
        }
        let mut at = 0;
        while at < BODY {
            let run = self.next_run(BODY - at);
            tmp[at..at + run.len()].copy_from_slice(run);
            at += run.len();
        }
        tmp
    }
}

/// CRC32c of the octets of an FPDU up to its CRC field as they are on the wire:
/// `len` octets of `content` (length field, ULPDU, pad) with `markers[k]` inserted
/// before content octet `d0 + 508·k`. Every marker must fall within the content or
/// right after it: `d0 + 508·(markers.len() − 1) <= len`.
pub(crate) fn fpdu_crc<'a>(
    content: impl Iterator<Item = &'a [u8]>,
    len: usize,
    d0: usize,
    markers: &[[u8; 4]],
) -> u32 {
    fpdu_crc_with(has_hw(), content, len, d0, markers)
}

/// [`fpdu_crc`] with the SSE4.2 kernel or not (`hw`, which needs the CPU to have
/// it).
fn fpdu_crc_with<'a>(
    hw: bool,
    content: impl Iterator<Item = &'a [u8]>,
    len: usize,
    d0: usize,
    markers: &[[u8; 4]],
) -> u32 {
    debug_assert!(markers.is_empty() || d0 + BODY * (markers.len() - 1) <= len);
    let mut cur = Cursor {
        cur: &[],
        rest: content,
    };
    let head = d0.min(len);
    let mut reg = cur.hash(!0, head);
    let mut left = len - head;
    // Chunks whose body is whole; the last marker may be followed by fewer octets.
    let full = (left / BODY).min(markers.len());
    let mut tmp = [[0u8; BODY]; 3];
    let mut k = 0;
    while k < full {
        // Long stretches of whole chunks in one slice: three lanes of consecutive
        // chunks, combined at the end.
        let lane = (cur.contiguous().len() / BODY)
            .min(full - k)
            .min((1 << POW_TABLES) * 3 - 1)
            / 3;
        if lane >= 2 {
            let data = cur.contiguous();
            let bodies = [0, 1, 2].map(|i| &data[i * lane * BODY..(i + 1) * lane * BODY]);
            let m = [0, 1, 2].map(|i| &markers[k + i * lane..k + (i + 1) * lane]);
            let [a, b, c] = lanes3(hw, [reg, 0, 0], m, bodies);
            reg = shift_chunks(shift_chunks(a, lane) ^ b, lane) ^ c;
            cur.skip(3 * lane * BODY);
            k += 3 * lane;
            left -= 3 * lane * BODY;
            continue;
        }
        let n = (full - k).min(3);
        let [t0, t1, t2] = &mut tmp;
        let b0 = cur.body(t0);
        let b1 = if n > 1 { cur.body(t1) } else { b0 };
        let b2 = if n > 2 { cur.body(t2) } else { b1 };
        let m = &markers[k..];
        let m = [&m[..1], &m[n.min(2) - 1..n.min(2)], &m[n - 1..n]];
        // Lanes of one chunk each. With fewer than three chunks left, the last one
        // is repeated and its extra results are dropped.
        let [a, g1, g2] = lanes3(hw, [reg, 0, 0], m, [b0, b1, b2].map(|b| &b[..]));
        reg = a;
        for gi in [g1, g2][..n - 1].iter() {
            reg = shift(&SHIFT_POW[0], reg) ^ gi;
        }
        k += n;
        left -= n * BODY;
    }
    // At most one marker is left, before the last, short body.
    if let Some(m) = markers.get(k) {
        reg = raw(reg, m);
    }
    !cur.hash(reg, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire image `fpdu_crc` hashes, built naively.
    fn wire(content: &[u8], d0: usize, markers: &[[u8; 4]]) -> Vec<u8> {
        let mut w = Vec::new();
        let mut off = 0;
        for (k, m) in markers.iter().enumerate() {
            let at = d0 + BODY * k;
            w.extend_from_slice(&content[off..at]);
            w.extend_from_slice(m);
            off = at;
        }
        w.extend_from_slice(&content[off..]);
        w
    }

    #[test]
    fn equals_the_plain_crc_for_any_layout() {
        let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0usize, 4, 508, 1016, 1524, 2032, 2540, 5000, 9000] {
            for d0 in [0usize, 4, 20, 504, 508] {
                let n = if len >= d0 { (len - d0) / BODY + 1 } else { 0 };
                let markers: Vec<[u8; 4]> = (0..n as u16)
                    .map(|k| [1, 2, (k >> 8) as u8, k as u8])
                    .collect();
                let content = &data[..len];
                let expect = crc::crc32c(&wire(content, d0, &markers));
                // Contiguous, and cut in pieces at awkward places.
                for cuts in [&[][..], &[1, 2, 700], &[3, 508, 509, 1600, 1601]] {
                    let mut pieces = Vec::new();
                    let mut prev = 0;
                    for &c in cuts.iter().filter(|&&c| c <= len) {
                        pieces.push(&content[prev..c]);
                        prev = c;
                    }
                    pieces.push(&content[prev..]);
                    let got = fpdu_crc(pieces.into_iter(), len, d0, &markers);
                    assert_eq!(got, expect, "len {len} d0 {d0} cuts {cuts:?}");
                }
            }
        }
    }

    proptest::proptest! {
        /// Any content length, marker phase and slicing: the same CRC as the naive
        /// one over the marked stream.
        #[test]
        fn equals_the_naive_crc(
            len in 0usize..70_000,
            d0 in 0usize..=127,
            cuts in proptest::collection::vec(0usize..70_000, 0..6),
            seed in proptest::prelude::any::<u32>(),
        ) {
            let d0 = 4 * d0; // 0..=508, as FPDUs and markers are 4-aligned
            let content: Vec<u8> = (0..len as u32)
                .map(|i| (i.wrapping_mul(seed | 1) >> 7) as u8)
                .collect();
            let n = if len >= d0 { (len - d0) / BODY + 1 } else { 0 };
            let markers: Vec<[u8; 4]> =
                (0..n as u32).map(|k| (k.wrapping_mul(seed)).to_le_bytes()).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut prev = 0;
            for c in cuts {
                pieces.push(&content[prev..c]);
                prev = c;
            }
            pieces.push(&content[prev..]);
            let expected = crc::crc32c(&wire(&content, d0, &markers));
            for hw in [false, has_hw()] {
                let got = fpdu_crc_with(hw, pieces.iter().copied(), len, d0, &markers);
                proptest::prop_assert_eq!(got, expected, "hw {}", hw);
            }
        }
    }

    #[test]
    fn shift_tables_match_the_slow_shift() {
        for reg in [1u32, 0x8000_0000, 0xdead_beef, !0] {
            assert_eq!(shift(&SHIFT_POW[0], reg), zeros_slow(reg, CHUNK));
            assert_eq!(shift(&SHIFT_POW[0], reg), raw(reg, &[0; CHUNK]));
            for n in [2, 3, 5, 17, 63] {
                assert_eq!(shift_chunks(reg, n), raw(reg, &vec![0; n * CHUNK]), "{n}");
            }
        }
    }

    #[test]
    fn portable_and_hw_lanes_agree() {
        let b: Vec<u8> = (0..9 * BODY).map(|i| (i * 37 + i / 5) as u8).collect();
        let m: Vec<[u8; 4]> = (0..9u32).map(|k| (k * 0x0101_0104).to_be_bytes()).collect();
        let bodies = [0, 1, 2].map(|i| &b[i * 3 * BODY..(i + 1) * 3 * BODY]);
        let marks = [0, 1, 2].map(|i| &m[i * 3..(i + 1) * 3]);
        let regs = [!0, 0, 0x1234_5678];
        let portable = lanes3(false, regs, marks, bodies);
        assert_eq!(lanes3(has_hw(), regs, marks, bodies), portable);
        for i in 0..3 {
            let mut reg = regs[i];
            for c in 0..3 {
                reg = raw(raw(reg, &marks[i][c]), &bodies[i][c * BODY..(c + 1) * BODY]);
            }
            assert_eq!(portable[i], reg);
        }
    }
}

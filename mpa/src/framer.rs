//! FPDU construction for transmission (RFC 5044 §4): the length field, the ULPDU as
//! borrowed slices, pad, markers and CRC, emitted as a gather list for `writev`.
//! Payload octets are never copied: the output refers to the caller's buffers, and
//! the few octets MPA adds live in an [`FpduScratch`].

use std::io::IoSlice;

use crate::crc;
use crate::error::FrameError;
use crate::marker_crc;
use crate::markers::{self, MARKER_INTERVAL, MARKER_LEN};
use crate::mulpdu::{fpdu_len, pad_len};

/// Most markers one FPDU can contain (a 65 535-octet ULPDU has fewer than 131).
const MAX_MARKERS: usize = 132;
static PAD: [u8; 3] = [0; 3];

/// How a [`Framer`] builds FPDUs for one direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramerConfig {
    /// Compute the CRC (else the field is sent as zero, as siw does).
    pub crc: bool,
    /// Insert markers every 512 octets (the peer asked for them with M=1).
    pub markers: bool,
}

/// The octets MPA adds to one FPDU: length field, markers, CRC. The gather list
/// produced by [`Framer::frame`] borrows them, so a scratch must live until the FPDU
/// has been handed to the transport. It is reusable and allocation-free.
#[derive(Clone)]
pub struct FpduScratch {
    len: [u8; 2],
    crc: [u8; 4],
    markers: [[u8; 4]; MAX_MARKERS],
}

impl Default for FpduScratch {
    fn default() -> Self {
        Self {
            len: [0; 2],
            crc: [0; 4],
            markers: [[0; 4]; MAX_MARKERS],
        }
    }
}

impl core::fmt::Debug for FpduScratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FpduScratch")
            .field("len", &self.len)
            .field("crc", &self.crc)
            .finish_non_exhaustive()
    }
}

/// Builds the FPDUs of one direction of a connection, tracking the stream position
/// that places markers.
#[derive(Debug, Clone)]
pub struct Framer {
    cfg: FramerConfig,
    /// Stream position (relative to SeqStart, mod 2³²) of the next FPDU.
    pos: u32,
}

impl Framer {
    /// A framer at the first octet of Full Operation (SeqStart).
    pub fn new(cfg: FramerConfig) -> Self {
        Self::resume(cfg, 0)
    }

    /// A framer whose next FPDU starts `pos` octets after SeqStart. `pos` must be a
    /// multiple of 4 (FPDUs are), else it is rounded down.
    pub fn resume(cfg: FramerConfig, pos: u32) -> Self {
        Self { cfg, pos: pos & !3 }
    }

    /// The configuration.
    pub fn config(&self) -> FramerConfig {
        self.cfg
    }

    /// Stream position of the next FPDU, relative to SeqStart.
    pub fn position(&self) -> u32 {
        self.pos
    }

    /// Octets on the wire of an FPDU with a ULPDU of `ulpdu_len` octets if it were
    /// framed next (markers included).
    pub fn wire_len(&self, ulpdu_len: usize) -> usize {
        let base = fpdu_len(ulpdu_len);
        base + MARKER_LEN * self.marker_count(base)
    }

    /// Number of markers in an FPDU of `base` octets (markers not counted) starting
    /// at the current position.
    fn marker_count(&self, base: usize) -> usize {
        if !self.cfg.markers {
            return 0;
        }
        // Content octets before marker k: d0 + 508·k. Marker k is inside the FPDU
        // when that is < base (a marker right after the CRC belongs to the next FPDU).
        let d0 = markers::until_marker(self.pos) as usize;
        let stride = MARKER_INTERVAL as usize - MARKER_LEN;
        if base > d0 {
            (base - d0).div_ceil(stride)
        } else {
            0
        }
    }

    /// Frames one FPDU whose ULPDU is `header` followed by the `payload` slices, and
    /// appends its pieces to `out` in wire order. Returns the FPDU's length on the
    /// wire. On error nothing is appended and the position does not move.
    ///
    /// ```
    /// use eta_mpa::{Framer, FramerConfig, FpduScratch};
    /// let mut framer = Framer::new(FramerConfig { crc: true, markers: false });
    /// let mut scratch = FpduScratch::default();
    /// let mut iov = Vec::new();
    /// // Send, QN 0, MSN 1, MO 0 (docs/wire-facts.md §7.3).
    /// let header = [0x41, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    /// let n = framer.frame(&mut scratch, &header, &[b"hello"], &mut iov).unwrap();
    /// let wire: Vec<u8> = iov.iter().flat_map(|s| s.iter().copied()).collect();
    /// assert_eq!(n, 32);
    /// assert_eq!(&wire[28..], &[0xb9, 0x90, 0xb1, 0x0c]);
    /// ```
    pub fn frame<'a>(
        &mut self,
        scratch: &'a mut FpduScratch,
        header: &'a [u8],
        payload: &[&'a [u8]],
        out: &mut Vec<IoSlice<'a>>,
    ) -> Result<usize, FrameError> {
        let ulpdu_len = header.len() + payload.iter().map(|p| p.len()).sum::<usize>();
        if ulpdu_len > usize::from(u16::MAX) {
            return Err(FrameError::UlpduTooLong {
                len: ulpdu_len,
                max: usize::from(u16::MAX),
            });
        }
        let base = fpdu_len(ulpdu_len);
        let n_markers = self.marker_count(base);
        if n_markers > 0 {
            let d0 = markers::until_marker(self.pos) as usize;
            // The last marker's distance from the ULPDU_Length field.
            let last = d0 + MARKER_INTERVAL as usize * (n_markers - 1);
            let hdr_off = if d0 == 0 { MARKER_LEN } else { 0 };
            if n_markers > MAX_MARKERS || last.saturating_sub(hdr_off) > 0xFFFC {
                return Err(FrameError::MarkerPointerOverflow);
            }
        }
        scratch.len = (ulpdu_len as u16).to_be_bytes();
        let pad = &PAD[..pad_len(ulpdu_len)];

        // Pass 1: marker values, then the CRC over everything in wire order.
        let start = self.pos;
        let d0 = markers::until_marker(start) as usize;
        // Where the ULPDU_Length field sits: after the marker that opens the FPDU.
        let hdr_pos = if n_markers > 0 && d0 == 0 {
            start.wrapping_add(MARKER_LEN as u32)
        } else {
            start
        };
        for (k, m) in scratch.markers[..n_markers].iter_mut().enumerate() {
            // Marker k follows d0 + 508·k content octets and k markers.
            let marker_pos = start.wrapping_add((d0 + MARKER_INTERVAL as usize * k) as u32);
            let ptr = if marker_pos == start {
                0
            } else {
                marker_pos.wrapping_sub(hdr_pos) as u16
            };
            *m = markers::encode(ptr);
        }
        let content = || {
            core::iter::once(&scratch.len[..])
                .chain(core::iter::once(header))
                .chain(payload.iter().copied())
                .chain(core::iter::once(pad))
        };
        let crc_value = if !self.cfg.crc {
            0
        } else if self.cfg.markers {
            // The CRC covers every marker of the FPDU, one right before the CRC
            // field included.
            marker_crc::fpdu_crc(content(), base - 4, d0, &scratch.markers[..n_markers])
        } else {
            content().fold(0, crc::append)
        };
        scratch.crc = if self.cfg.crc {
            crc::to_wire(crc_value)
        } else {
            [0; 4]
        };

        // Pass 2: the gather list, borrowing the scratch for the caller's lifetime.
        let scratch: &'a FpduScratch = scratch;
        let pieces = core::iter::once(&scratch.len[..])
            .chain(core::iter::once(header))
            .chain(payload.iter().copied())
            .chain(core::iter::once(pad))
            .chain(core::iter::once(&scratch.crc[..]));
        // Markers go before content octet d0 + 508·k (one right before the CRC
        // field included); a marker is emitted only when octets follow it.
        out.reserve(2 * n_markers + 6);
        let mut to_marker = if self.cfg.markers { d0 } else { usize::MAX };
        let mut markers_left = scratch.markers[..n_markers].iter();
        for mut piece in pieces {
            while !piece.is_empty() {
                if to_marker == 0 {
                    if let Some(m) = markers_left.next() {
                        out.push(IoSlice::new(m));
                    }
                    to_marker = MARKER_INTERVAL as usize - MARKER_LEN;
                }
                let (run, rest) = piece.split_at(to_marker.min(piece.len()));
                out.push(IoSlice::new(run));
                to_marker -= run.len();
                piece = rest;
            }
        }
        debug_assert!(markers_left.next().is_none());

        let total = base + MARKER_LEN * n_markers;
        self.pos = self.pos.wrapping_add(total as u32);
        Ok(total)
    }

    /// Frames one FPDU into a new vector (tests, tools, startup: not the data path).
    pub fn frame_to_vec(
        &mut self,
        header: &[u8],
        payload: &[&[u8]],
    ) -> Result<Vec<u8>, FrameError> {
        let mut scratch = FpduScratch::default();
        let mut iov = Vec::new();
        let n = self.frame(&mut scratch, header, payload, &mut iov)?;
        let mut v = Vec::with_capacity(n);
        for s in &iov {
            v.extend_from_slice(s);
        }
        Ok(v)
    }
}

/// Empties a gather list and returns it with a fresh lifetime, keeping its
/// allocation, so one `Vec` can serve FPDU after FPDU although each round borrows
/// different buffers. (The element type is unchanged, so the standard library's
/// in-place `collect` reuses the buffer; no element is ever converted.)
///
/// ```
/// use std::io::IoSlice;
/// let mut iov: Vec<IoSlice<'static>> = Vec::with_capacity(8);
/// let cap = iov.capacity();
/// {
///     let local = vec![1u8, 2, 3];
///     let mut round = eta_mpa::recycle_iov(iov);
///     round.push(IoSlice::new(&local));
///     iov = eta_mpa::recycle_iov(round);
/// }
/// assert_eq!(iov.capacity(), cap);
/// ```
pub fn recycle_iov<'b>(mut iov: Vec<IoSlice<'_>>) -> Vec<IoSlice<'b>> {
    iov.clear();
    iov.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

//! FPDU reception (RFC 5044 §4, §6): finds FPDU boundaries in the in-order TCP
//! stream, strips and checks markers, checks the CRC, and hands the ULPDU up as a
//! header followed by runs of payload borrowed from the input, so the caller can
//! place payload straight into its final buffer.
//!
//! The deframer holds no allocation and a fixed amount of state. Each call to
//! [`Deframer::advance`] consumes input and reports at most one [`Event`]; the
//! caller loops until [`Event::NeedInput`]. A ULPDU is only *complete* at
//! [`Event::End`], after its CRC has been verified: payload reported before that
//! must not be acted upon (completed, delivered) until then.

use crate::crc;
use crate::error::MpaError;
use crate::markers::{self, MARKER_INTERVAL, MARKER_LEN};
use crate::mulpdu::pad_len;

/// Most header octets the deframer collects contiguously for the layer above.
pub const MAX_HEADER: usize = 72;

/// How a [`Deframer`] reads one direction of a connection.
#[derive(Debug, Clone, Copy)]
pub struct DeframerConfig {
    /// Check the CRC of every FPDU.
    pub crc: bool,
    /// The peer inserts markers: strip them and check their FPDUPTR.
    pub markers: bool,
    /// Largest ULPDU_Length accepted; a longer one is an error.
    pub max_ulpdu: u16,
    /// How many leading octets of a ULPDU the layer above wants as its header,
    /// given the ULPDU's first (up to two) octets. Clamped to [`MAX_HEADER`] and to
    /// the ULPDU's length.
    pub header_len: fn(&[u8]) -> usize,
}

/// The header octets of a ULPDU, copied into a small fixed buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderBytes {
    buf: [u8; MAX_HEADER],
    len: u8,
}

impl HeaderBytes {
    /// The octets.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for HeaderBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HeaderBytes({:02x?})", self.as_slice())
    }
}

/// What one step of deframing produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'i> {
    /// The input is used up; call again with more.
    NeedInput,
    /// A new ULPDU begins: its length and its header octets.
    Header {
        /// ULPDU_Length: header plus payload octets.
        ulpdu_len: u16,
        /// The first `min(ulpdu_len, header_len(..))` octets.
        header: HeaderBytes,
    },
    /// The next run of payload octets of the current ULPDU (markers removed),
    /// borrowed from the input.
    Payload(&'i [u8]),
    /// The current FPDU is complete and its CRC (if enabled) is correct.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Length,
    Header,
    Payload,
    Pad,
    Crc,
}

/// Deframes one direction of a connection.
#[derive(Clone)]
pub struct Deframer {
    cfg: DeframerConfig,
    phase: Phase,
    /// Octets collected in the current phase (Length, Header, Pad, Crc).
    got: usize,
    /// Octets still expected in the current phase (Header, Payload, Pad).
    left: usize,
    ulpdu_len: u16,
    len_buf: [u8; 2],
    crc_buf: [u8; 4],
    header: HeaderBytes,
    crc: u32,
    /// Stream position of the next octet, relative to SeqStart.
    pos: u32,
    /// Stream position of the current FPDU's ULPDU_Length field.
    hdr_pos: u32,
    marker_buf: [u8; 4],
    marker_got: usize,
    /// The current FPDU began with a marker (FPDUPTR 0).
    leading_marker: bool,
    /// Upcoming stream octets already folded into `crc` (see `hash_ahead`).
    hashed_ahead: usize,
    /// The header's length has been decided.
    header_resolved: bool,
    failed: Option<MpaError>,
    /// `payload_fast` may apply: markers on, no error, inside a ULPDU's payload and
    /// not inside a marker. Recomputed after every call of the general path.
    fast: bool,
}

impl core::fmt::Debug for Deframer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deframer")
            .field("phase", &self.phase)
            .field("pos", &self.pos)
            .field("ulpdu_len", &self.ulpdu_len)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Deframer {
    /// A deframer at the first octet of Full Operation (SeqStart).
    pub fn new(cfg: DeframerConfig) -> Self {
        Self::resume(cfg, 0)
    }

    /// A deframer whose next octet is `pos` octets after SeqStart, at an FPDU
    /// boundary. `pos` is rounded down to a multiple of 4.
    pub fn resume(cfg: DeframerConfig, pos: u32) -> Self {
        Self {
            cfg,
            phase: Phase::Length,
            got: 0,
            left: 0,
            ulpdu_len: 0,
            len_buf: [0; 2],
            crc_buf: [0; 4],
            header: HeaderBytes {
                buf: [0; MAX_HEADER],
                len: 0,
            },
            crc: 0,
            pos: pos & !3,
            hdr_pos: pos & !3,
            marker_buf: [0; 4],
            marker_got: 0,
            leading_marker: false,
            hashed_ahead: 0,
            header_resolved: false,
            failed: None,
            fast: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> DeframerConfig {
        self.cfg
    }

    /// Stream position of the next octet expected, relative to SeqStart.
    pub fn position(&self) -> u32 {
        self.pos
    }

    /// Whether the deframer stands between two FPDUs (nothing of a next FPDU seen).
    pub fn at_boundary(&self) -> bool {
        self.failed.is_none()
            && self.phase == Phase::Length
            && self.got == 0
            && self.marker_got == 0
            && !self.leading_marker
    }

    /// The error that stopped this deframer, if any.
    pub fn error(&self) -> Option<&MpaError> {
        self.failed.as_ref()
    }

    /// How many of the next stream octets are, all of them, payload of the current
    /// ULPDU (no marker, header, pad or CRC among them). A caller may read exactly
    /// that many octets from the socket straight into their final place and then
    /// pass them to [`Deframer::advance`], which reports them as
    /// [`Event::Payload`] and accounts for them in the CRC.
    pub fn payload_run(&self) -> usize {
        if self.failed.is_some() || self.phase != Phase::Payload || self.marker_got != 0 {
            return 0;
        }
        if self.cfg.markers {
            let until = markers::until_marker(self.pos) as usize;
            if until == 0 {
                return 0;
            }
            self.left.min(until)
        } else {
            self.left
        }
    }

    /// Consumes a prefix of `input` and reports what it completed.
    ///
    /// Returns the number of octets consumed and the event. Octets not consumed must
    /// be passed again (first) in the next call. After an error every call returns
    /// the same error.
    #[inline]
    pub fn advance<'i>(&mut self, input: &'i [u8]) -> Result<(usize, Event<'i>), MpaError> {
        // With markers most calls return one run of payload between two markers:
        // that case is small enough to be inlined into the caller's loop.
        if let Some((used, run)) = self.payload_fast(input) {
            return Ok((used, Event::Payload(run)));
        }
        self.advance_general(input)
    }

    /// [`Deframer::advance`] in every case.
    #[inline(never)]
    fn advance_general<'i>(&mut self, input: &'i [u8]) -> Result<(usize, Event<'i>), MpaError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = match self.step(input) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        };
        self.fast = self.cfg.markers
            && self.failed.is_none()
            && self.phase == Phase::Payload
            && self.marker_got == 0;
        r
    }

    fn step<'i>(&mut self, input: &'i [u8]) -> Result<(usize, Event<'i>), MpaError> {
        let mut i = 0;
        while i < input.len() {
            let rest = &input[i..];
            // A marker may start wherever the stream position is on the 512 grid.
            if self.cfg.markers && (self.marker_got > 0 || markers::at_marker(self.pos)) {
                if let (0, Some(m)) = (self.marker_got, rest.first_chunk::<MARKER_LEN>()) {
                    // The common case: the whole marker is in the input.
                    self.marker_buf = *m;
                    self.marker_got = MARKER_LEN;
                    i += MARKER_LEN;
                } else {
                    let take = (MARKER_LEN - self.marker_got).min(rest.len());
                    self.marker_buf[self.marker_got..self.marker_got + take]
                        .copy_from_slice(&rest[..take]);
                    self.marker_got += take;
                    i += take;
                }
                if self.marker_got == MARKER_LEN {
                    self.take_marker()?;
                }
                continue;
            }
            let room = self.room().min(rest.len());
            match self.phase {
                Phase::Length => {
                    if self.got == 0 && !self.leading_marker {
                        self.crc = 0;
                        self.hdr_pos = self.pos;
                    }
                    if let (0, true, Some(len)) =
                        (self.got, self.hash_ahead_on(), rest.first_chunk())
                    {
                        // The whole FPDU up to its CRC field, as far as the input
                        // holds it (a length over the maximum is refused below).
                        let ulpdu_len = usize::from(u16::from_be_bytes(*len));
                        self.hash_ahead(rest, 2 + ulpdu_len + pad_len(ulpdu_len));
                    }
                    let take = (2 - self.got).min(room);
                    self.len_buf[self.got..self.got + take].copy_from_slice(&rest[..take]);
                    self.consume(&rest[..take]);
                    self.got += take;
                    i += take;
                    if self.got == 2 {
                        self.ulpdu_len = u16::from_be_bytes(self.len_buf);
                        if self.ulpdu_len > self.cfg.max_ulpdu {
                            return Err(MpaError::UlpduTooLong {
                                len: self.ulpdu_len,
                                max: self.cfg.max_ulpdu,
                            });
                        }
                        self.phase = Phase::Header;
                        self.header.len = 0;
                        self.header_resolved = false;
                        // First the ULPDU's first two octets, to size the header.
                        self.left = usize::from(self.ulpdu_len).min(2);
                        if let Some(ev) = self.header_progress() {
                            return Ok((i, ev));
                        }
                    }
                }
                Phase::Header => {
                    let take = self.left.min(room);
                    let at = usize::from(self.header.len);
                    self.header.buf[at..at + take].copy_from_slice(&rest[..take]);
                    self.header.len += take as u8;
                    self.consume(&rest[..take]);
                    self.left -= take;
                    i += take;
                    if let Some(ev) = self.header_progress() {
                        return Ok((i, ev));
                    }
                }
                Phase::Payload => {
                    if self.hash_ahead_on() {
                        let pad = pad_len(usize::from(self.ulpdu_len));
                        self.hash_ahead(rest, self.left + pad);
                    }
                    let take = self.left.min(room);
                    let run = &rest[..take];
                    self.consume(run);
                    self.left -= take;
                    i += take;
                    if self.left == 0 {
                        self.enter_pad();
                    }
                    return Ok((i, Event::Payload(run)));
                }
                Phase::Pad => {
                    let take = self.left.min(room);
                    self.consume(&rest[..take]);
                    self.left -= take;
                    i += take;
                    if self.left == 0 {
                        self.phase = Phase::Crc;
                        self.got = 0;
                    }
                }
                Phase::Crc => {
                    let take = (4 - self.got).min(room);
                    self.crc_buf[self.got..self.got + take].copy_from_slice(&rest[..take]);
                    self.pos = self.pos.wrapping_add(take as u32);
                    self.got += take;
                    i += take;
                    if self.got == 4 {
                        if self.cfg.crc {
                            let received = crc::from_wire(self.crc_buf);
                            if received != self.crc {
                                return Err(MpaError::CrcMismatch {
                                    computed: self.crc,
                                    received,
                                });
                            }
                        }
                        self.phase = Phase::Length;
                        self.got = 0;
                        self.leading_marker = false;
                        return Ok((i, Event::End));
                    }
                }
            }
        }
        Ok((i, Event::NeedInput))
    }

    /// The next run of payload with markers on, when nothing unusual happens on the
    /// way: a whole marker that checks out (if one comes first), then payload whose
    /// CRC is already computed (see `hash_ahead`). Does what the general path would
    /// do in that case, in fewer steps; else changes nothing and returns `None`.
    #[inline]
    fn payload_fast<'i>(&mut self, input: &'i [u8]) -> Option<(usize, &'i [u8])> {
        if !self.fast {
            return None;
        }
        let (at, room) = if markers::at_marker(self.pos) {
            let m = input.first_chunk::<MARKER_LEN>()?;
            // Within a ULPDU a marker points back to its ULPDU_Length field (the
            // FPDUPTR's two low bits ignored, as `markers::decode` does); a mismatch
            // is reported by the general path.
            if u32::from_be_bytes(*m) & 0xFFFC != self.pos.wrapping_sub(self.hdr_pos) {
                return None;
            }
            (MARKER_LEN, MARKER_INTERVAL as usize - MARKER_LEN)
        } else {
            (0, markers::until_marker(self.pos) as usize)
        };
        let take = self.left.min(room).min(input.len().checked_sub(at)?);
        if take == 0 {
            return None;
        }
        if self.cfg.crc {
            self.hashed_ahead = self.hashed_ahead.checked_sub(at + take)?;
        }
        self.pos = self.pos.wrapping_add((at + take) as u32);
        self.left -= take;
        if self.left == 0 {
            self.enter_pad();
            self.fast = false;
        }
        Some((at + take, &input[at..at + take]))
    }

    /// Octets that may be taken before the next marker position.
    fn room(&self) -> usize {
        if self.cfg.markers {
            markers::until_marker(self.pos) as usize
        } else {
            usize::MAX
        }
    }

    /// Hashes octets of the current FPDU (those not hashed ahead already) and moves
    /// the stream position past them.
    #[inline]
    fn consume(&mut self, bytes: &[u8]) {
        if self.cfg.crc {
            let skip = self.hashed_ahead.min(bytes.len());
            self.hashed_ahead -= skip;
            if skip < bytes.len() {
                self.crc = crc::append(self.crc, &bytes[skip..]);
            }
        }
        self.pos = self.pos.wrapping_add(bytes.len() as u32);
    }

    /// Whether the next octets should be hashed ahead (see `hash_ahead`): markers
    /// and CRC are on, and nothing is hashed ahead yet.
    fn hash_ahead_on(&self) -> bool {
        self.cfg.markers && self.cfg.crc && self.hashed_ahead == 0
    }

    /// With markers the payload comes in runs of at most 508 octets, too short for the
    /// fast (3-way parallel) CRC kernel. The CRC covers the markers anyway, so hash
    /// the rest of this FPDU that the input already holds — length field, header,
    /// payload, markers and pad, contiguous on the wire — in one call, and skip those
    /// octets as they are taken. `content` counts the octets from here to the CRC
    /// field, markers not counted.
    fn hash_ahead(&mut self, rest: &[u8], content: usize) {
        // The span also covers every marker among them (one right before the CRC
        // field included).
        // Marker j follows `first + 508·j` of these octets; it is in the span when
        // that is at most `content`.
        let first = markers::until_marker(self.pos) as usize;
        let n_markers = if content >= first {
            (content - first) / (MARKER_INTERVAL as usize - MARKER_LEN) + 1
        } else {
            0
        };
        let span = (content + MARKER_LEN * n_markers).min(rest.len());
        self.crc = crc::append(self.crc, &rest[..span]);
        self.hashed_ahead = span;
    }

    /// After header octets arrived: sizes the header once its first octets are in,
    /// and reports it when complete.
    fn header_progress(&mut self) -> Option<Event<'static>> {
        if self.left != 0 {
            return None;
        }
        if !self.header_resolved {
            self.header_resolved = true;
            let have = usize::from(self.header.len);
            let want = (self.cfg.header_len)(self.header.as_slice())
                .clamp(have, MAX_HEADER)
                .min(usize::from(self.ulpdu_len))
                .max(have);
            self.left = want - have;
            if self.left != 0 {
                return None;
            }
        }
        self.left = usize::from(self.ulpdu_len) - usize::from(self.header.len);
        self.phase = Phase::Payload;
        if self.left == 0 {
            self.enter_pad();
        }
        Some(Event::Header {
            ulpdu_len: self.ulpdu_len,
            header: self.header,
        })
    }

    fn enter_pad(&mut self) {
        self.left = pad_len(usize::from(self.ulpdu_len));
        self.phase = if self.left == 0 {
            Phase::Crc
        } else {
            Phase::Pad
        };
        self.got = 0;
    }

    /// Checks a complete marker at the current position and steps over it.
    fn take_marker(&mut self) -> Result<(), MpaError> {
        let at = self.pos;
        let found = markers::decode(self.marker_buf);
        let boundary = self.phase == Phase::Length && self.got == 0 && !self.leading_marker;
        let expected = if boundary {
            0
        } else {
            at.wrapping_sub(self.hdr_pos)
        };
        if u32::from(found) != expected {
            return Err(MpaError::MarkerMismatch {
                position: at,
                expected: expected.min(u32::from(u16::MAX)) as u16,
                found,
            });
        }
        if boundary {
            // The marker belongs to, and is covered by the CRC of, the next FPDU.
            self.crc = 0;
            self.leading_marker = true;
            self.hdr_pos = at.wrapping_add(MARKER_LEN as u32);
        }
        if self.cfg.crc {
            // The input given to `hash_ahead` may have ended inside this marker.
            let skip = self.hashed_ahead.min(MARKER_LEN);
            self.hashed_ahead -= skip;
            if skip < MARKER_LEN {
                self.crc = crc::append(self.crc, &self.marker_buf[skip..]);
            }
        }
        self.pos = at.wrapping_add(MARKER_LEN as u32);
        self.marker_got = 0;
        Ok(())
    }
}

//! MPA Request and Reply frames (RFC 5044 §7.1.1, RFC 6581 §6): a zero-copy view of
//! the octets and a high-level representation that parses and emits them.

use crate::error::MpaError;
use crate::startup::ird_ord::{self, IrdOrd};

/// Key of an MPA Request frame.
pub const KEY_REQUEST: [u8; 16] = *b"MPA ID Req Frame";
/// Key of an MPA Reply frame.
pub const KEY_REPLY: [u8; 16] = *b"MPA ID Rep Frame";
/// Octets of a frame before its private data.
pub const HEADER_LEN: usize = 20;
/// Largest PD_Length (RFC 5044 §7.1.1).
pub const MAX_PRIVATE_DATA: usize = 512;
/// Largest frame: header plus the largest private data.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PRIVATE_DATA;
/// Highest Rev this implementation speaks (RFC 6581).
pub const MAX_REVISION: u8 = 2;

/// Flag bits of the flags octet.
pub mod flags {
    /// M: markers required in the FPDUs the receiver of this frame sends.
    pub const MARKERS: u8 = 0x80;
    /// C: CRC required.
    pub const CRC: u8 = 0x40;
    /// R: the connection is rejected (Reply only).
    pub const REJECT: u8 = 0x20;
    /// S: enhanced connection establishment (RFC 6581).
    pub const ENHANCED: u8 = 0x10;
    /// The remaining reserved bits.
    pub const RESERVED: u8 = 0x0F;
}

mod field {
    use core::ops::Range;
    pub const KEY: Range<usize> = 0..16;
    pub const FLAGS: usize = 16;
    pub const REV: usize = 17;
    pub const PD_LENGTH: Range<usize> = 18..20;
    pub const PRIVATE_DATA: usize = 20;
}

/// Which startup frame this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// MPA Request, sent by the Initiator.
    Request,
    /// MPA Reply, sent by the Responder.
    Reply,
}

impl FrameKind {
    /// The 16-octet key of this kind of frame.
    pub fn key(self) -> &'static [u8; 16] {
        match self {
            Self::Request => &KEY_REQUEST,
            Self::Reply => &KEY_REPLY,
        }
    }
}

/// A read-only or writable view of a startup frame's octets.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps octets without checking them; accessors may panic on short buffers.
    /// Use [`Frame::new_checked`] for anything that came from a peer.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps octets after checking that the header is present, PD_Length is at most
    /// 512 and the private data is all there (the buffer may be longer).
    pub fn new_checked(buffer: T) -> Result<Self, MpaError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the lengths as [`Frame::new_checked`] does.
    pub fn check_len(&self) -> Result<(), MpaError> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(MpaError::Truncated(data.len()));
        }
        let pd = self.pd_length();
        if usize::from(pd) > MAX_PRIVATE_DATA {
            return Err(MpaError::PrivateDataTooLong(pd));
        }
        if data.len() < HEADER_LEN + usize::from(pd) {
            return Err(MpaError::Truncated(data.len()));
        }
        Ok(())
    }

    /// The 16-octet key.
    pub fn key(&self) -> &[u8] {
        &self.buffer.as_ref()[field::KEY]
    }

    /// The kind named by the key, if it is one of the two MPA keys.
    pub fn kind(&self) -> Option<FrameKind> {
        match self.key() {
            k if k == KEY_REQUEST => Some(FrameKind::Request),
            k if k == KEY_REPLY => Some(FrameKind::Reply),
            _ => None,
        }
    }

    /// The raw flags octet.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// M: markers are required from the receiver of this frame.
    pub fn markers(&self) -> bool {
        self.flags() & flags::MARKERS != 0
    }

    /// C: CRC required.
    pub fn crc(&self) -> bool {
        self.flags() & flags::CRC != 0
    }

    /// R: rejected (meaningful in a Reply only).
    pub fn reject(&self) -> bool {
        self.flags() & flags::REJECT != 0
    }

    /// S: the enhanced-establishment bit. Only meaningful with Rev ≥ 2; see
    /// [`Frame::enhanced`].
    pub fn s_bit(&self) -> bool {
        self.flags() & flags::ENHANCED != 0
    }

    /// Whether the frame uses RFC 6581 enhanced establishment (S=1 and Rev ≥ 2).
    pub fn enhanced(&self) -> bool {
        self.s_bit() && self.rev() >= 2
    }

    /// The Rev field.
    pub fn rev(&self) -> u8 {
        self.buffer.as_ref()[field::REV]
    }

    /// PD_Length: octets of private data, the IRD/ORD word included when enhanced.
    pub fn pd_length(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::PD_LENGTH][0], d[field::PD_LENGTH][1]])
    }

    /// All private data octets (including the IRD/ORD word when enhanced).
    pub fn private_data(&self) -> &[u8] {
        let start = field::PRIVATE_DATA;
        &self.buffer.as_ref()[start..start + usize::from(self.pd_length())]
    }

    /// Total octets of the frame (header and private data).
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + usize::from(self.pd_length())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Writes the key of `kind`.
    pub fn set_kind(&mut self, kind: FrameKind) {
        self.buffer.as_mut()[field::KEY].copy_from_slice(kind.key());
    }

    /// Writes the flags octet.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Writes the Rev field.
    pub fn set_rev(&mut self, value: u8) {
        self.buffer.as_mut()[field::REV] = value;
    }

    /// Writes PD_Length.
    pub fn set_pd_length(&mut self, value: u16) {
        self.buffer.as_mut()[field::PD_LENGTH].copy_from_slice(&value.to_be_bytes());
    }

    /// The private data octets, writable (PD_Length must be set first).
    pub fn private_data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.pd_length());
        let start = field::PRIVATE_DATA;
        &mut self.buffer.as_mut()[start..start + len]
    }
}

/// A parsed startup frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupRepr<'a> {
    /// Request or Reply.
    pub kind: FrameKind,
    /// M flag.
    pub markers: bool,
    /// C flag.
    pub crc: bool,
    /// R flag.
    pub reject: bool,
    /// Rev field.
    pub rev: u8,
    /// The IRD/ORD word: `Some` exactly when the frame is enhanced (S=1, Rev ≥ 2).
    pub ird_ord: Option<IrdOrd>,
    /// Private data for the ULP (the IRD/ORD word excluded).
    pub private_data: &'a [u8],
}

impl<'a> StartupRepr<'a> {
    /// Parses and validates a frame: known key, supported revision (1 or 2),
    /// PD_Length ≤ 512 and present, and the IRD/ORD word present when enhanced.
    /// Reserved bits are not checked (RFC 5044 §7.1.1).
    pub fn parse(frame: &Frame<&'a [u8]>) -> Result<Self, MpaError> {
        frame.check_len()?;
        let kind = frame.kind().ok_or(MpaError::BadKey)?;
        let rev = frame.rev();
        if rev == 0 || rev > MAX_REVISION {
            return Err(MpaError::BadRevision(rev));
        }
        let all: &'a [u8] = {
            let start = field::PRIVATE_DATA;
            let buf: &'a [u8] = frame.buffer;
            &buf[start..start + usize::from(frame.pd_length())]
        };
        let (ird_ord, private_data) = if frame.enhanced() {
            if all.len() < ird_ord::LEN {
                return Err(MpaError::MissingIrdOrd(frame.pd_length()));
            }
            let word = [all[0], all[1], all[2], all[3]];
            (Some(IrdOrd::parse(word)), &all[ird_ord::LEN..])
        } else {
            (None, all)
        };
        Ok(Self {
            kind,
            markers: frame.markers(),
            crc: frame.crc(),
            reject: frame.reject(),
            rev,
            ird_ord,
            private_data,
        })
    }

    /// Parses a frame from the start of `bytes`, which must hold exactly one frame.
    pub fn parse_bytes(bytes: &'a [u8]) -> Result<Self, MpaError> {
        let frame = Frame::new_checked(bytes)?;
        let repr = Self::parse(&frame)?;
        let extra = bytes.len() - frame.frame_len();
        if extra != 0 {
            return Err(MpaError::TrailingBytes(extra));
        }
        Ok(repr)
    }

    /// Whether this frame is enhanced (carries the IRD/ORD word).
    pub fn enhanced(&self) -> bool {
        self.ird_ord.is_some()
    }

    /// PD_Length this frame will carry.
    pub fn pd_length(&self) -> usize {
        self.private_data.len() + if self.enhanced() { ird_ord::LEN } else { 0 }
    }

    /// Octets [`StartupRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.pd_length()
    }

    /// Writes the frame into `buf`, which must be at least [`Self::buffer_len`] long,
    /// and returns the length written. Fails if the private data is too long.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, MpaError> {
        let pd_len = self.pd_length();
        if pd_len > MAX_PRIVATE_DATA {
            return Err(MpaError::PrivateDataTooLong(
                pd_len.min(usize::from(u16::MAX)) as u16,
            ));
        }
        let len = HEADER_LEN + pd_len;
        assert!(buf.len() >= len, "emit buffer too short");
        let mut frame = Frame::new_unchecked(&mut buf[..len]);
        frame.set_kind(self.kind);
        let mut f = 0;
        if self.markers {
            f |= flags::MARKERS;
        }
        if self.crc {
            f |= flags::CRC;
        }
        if self.reject {
            f |= flags::REJECT;
        }
        if self.enhanced() {
            f |= flags::ENHANCED;
        }
        frame.set_flags(f);
        frame.set_rev(self.rev);
        frame.set_pd_length(pd_len as u16);
        let pd = frame.private_data_mut();
        let ulp = match &self.ird_ord {
            Some(word) => {
                pd[..ird_ord::LEN].copy_from_slice(&word.emit());
                &mut pd[ird_ord::LEN..]
            }
            None => pd,
        };
        ulp.copy_from_slice(self.private_data);
        Ok(len)
    }

    /// The frame as a new vector (startup frames are not on the hot path).
    pub fn to_vec(&self) -> Result<Vec<u8>, MpaError> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const REQ_KEY_HEX: &str = "4d 50 41 20 49 44 20 52 65 71 20 46 72 61 6d 65";
    const REP_KEY_HEX: &str = "4d 50 41 20 49 44 20 52 65 70 20 46 72 61 6d 65";

    #[test]
    fn keys_match_wire_facts() {
        assert_eq!(KEY_REQUEST.to_vec(), hex(REQ_KEY_HEX));
        assert_eq!(KEY_REPLY.to_vec(), hex(REP_KEY_HEX));
    }

    /// docs/wire-facts.md §7.3: siw's default Request and Reply, both directions.
    #[test]
    fn siw_default_request_and_reply() {
        for (kind, key) in [
            (FrameKind::Request, REQ_KEY_HEX),
            (FrameKind::Reply, REP_KEY_HEX),
        ] {
            let bytes = hex(&format!("{key} 10 02 00 04 00 01 00 01"));
            let repr = StartupRepr::parse_bytes(&bytes).unwrap();
            let expected = StartupRepr {
                kind,
                markers: false,
                crc: false,
                reject: false,
                rev: 2,
                ird_ord: Some(IrdOrd {
                    ird: 1,
                    ord: 1,
                    ..IrdOrd::default()
                }),
                private_data: &[],
            };
            assert_eq!(repr, expected);
            assert_eq!(expected.to_vec().unwrap(), bytes);
        }
    }

    #[test]
    fn rev1_crc_request() {
        let bytes = hex(&format!("{REQ_KEY_HEX} 40 01 00 00"));
        let repr = StartupRepr::parse_bytes(&bytes).unwrap();
        assert_eq!(repr.rev, 1);
        assert!(repr.crc && !repr.markers && !repr.reject && !repr.enhanced());
        assert_eq!(repr.to_vec().unwrap(), bytes);
    }

    #[test]
    fn p2p_request() {
        let bytes = hex(&format!("{REQ_KEY_HEX} 10 02 00 04 80 01 c0 01"));
        let repr = StartupRepr::parse_bytes(&bytes).unwrap();
        let w = repr.ird_ord.unwrap();
        assert!(w.peer_to_peer && w.write_rtr && w.read_rtr && !w.send_rtr);
        assert_eq!(repr.to_vec().unwrap(), bytes);
    }

    #[test]
    fn private_data_round_trip() {
        let pd: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let repr = StartupRepr {
            kind: FrameKind::Reply,
            markers: true,
            crc: true,
            reject: true,
            rev: 2,
            ird_ord: Some(IrdOrd {
                ird: 7,
                ord: 9,
                ..IrdOrd::default()
            }),
            private_data: &pd,
        };
        let bytes = repr.to_vec().unwrap();
        assert_eq!(bytes.len(), 20 + 4 + 200);
        assert_eq!(&bytes[16..20], &[0xF0, 2, 0, 204]);
        assert_eq!(StartupRepr::parse_bytes(&bytes).unwrap(), repr);
    }

    #[test]
    fn errors() {
        let good = hex(&format!("{REQ_KEY_HEX} 10 02 00 04 00 01 00 01"));
        let mut bad_key = good.clone();
        bad_key[0] = b'm';
        assert_eq!(StartupRepr::parse_bytes(&bad_key), Err(MpaError::BadKey));
        let mut rev3 = good.clone();
        rev3[17] = 3;
        assert_eq!(
            StartupRepr::parse_bytes(&rev3),
            Err(MpaError::BadRevision(3))
        );
        let mut rev0 = good.clone();
        rev0[17] = 0;
        assert_eq!(
            StartupRepr::parse_bytes(&rev0),
            Err(MpaError::BadRevision(0))
        );
        let mut too_long = good.clone();
        too_long[18..20].copy_from_slice(&513u16.to_be_bytes());
        assert_eq!(
            StartupRepr::parse_bytes(&too_long),
            Err(MpaError::PrivateDataTooLong(513))
        );
        let mut short_word = good.clone();
        short_word[19] = 2;
        short_word.truncate(22);
        assert_eq!(
            StartupRepr::parse_bytes(&short_word),
            Err(MpaError::MissingIrdOrd(2))
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            StartupRepr::parse_bytes(&trailing),
            Err(MpaError::TrailingBytes(1))
        );
        let truncated = &good[..22];
        assert_eq!(
            StartupRepr::parse_bytes(truncated),
            Err(MpaError::Truncated(22))
        );
        // Reserved bits and an S bit with Rev 1 are not errors.
        let mut res = hex(&format!("{REQ_KEY_HEX} 1f 01 00 00"));
        let repr = StartupRepr::parse_bytes(&res).unwrap();
        assert!(!repr.enhanced());
        res[16] = 0x0f;
        assert!(StartupRepr::parse_bytes(&res).is_ok());
    }

    #[test]
    fn emit_rejects_oversized_private_data() {
        let pd = [0u8; 509];
        let repr = StartupRepr {
            kind: FrameKind::Request,
            markers: false,
            crc: true,
            reject: false,
            rev: 2,
            ird_ord: Some(IrdOrd::default()),
            private_data: &pd,
        };
        assert_eq!(repr.to_vec(), Err(MpaError::PrivateDataTooLong(513)));
        let repr = StartupRepr {
            ird_ord: None,
            rev: 1,
            private_data: &pd[..508],
            ..repr
        };
        assert_eq!(repr.to_vec().unwrap().len(), 528);
    }
}

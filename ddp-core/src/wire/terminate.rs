//! The Terminate message header (RFC 5040 §4.8), following the untagged DDP header.
//!
//! On send this crate always uses the RFC layout. On receive both the RFC layout and
//! the little-endian bit-field layout that Linux siw emits (nibbles of the first
//! octet swapped, M/D/R at 0x01/0x02/0x04) are accepted; the layout is guessed from the
//! flag bits and the plausibility of the (layer, type, code) triple, and the result is
//! meant as a diagnostic only.

use super::{TAGGED_HEADER_LEN, UNTAGGED_HEADER_LEN, WireError, be16, check_len, ddp};
use crate::error::TerminateReason;

/// Length of the Terminate control word (Layer, EType, Error Code, flags, reserved).
pub const CONTROL_LEN: usize = 4;
/// Length of the DDP Segment Length field.
pub const SEGMENT_LEN_LEN: usize = 2;
/// Length of an included RDMA (Read Request) header.
pub const RDMA_HEADER_LEN: usize = 28;
/// Largest Terminate header: control word, segment length, untagged DDP header and
/// RDMA header.
pub const MAX_LEN: usize = CONTROL_LEN + SEGMENT_LEN_LEN + UNTAGGED_HEADER_LEN + RDMA_HEADER_LEN;

/// RFC layout: M flag (DDP Segment Length valid).
pub const FLAG_M: u8 = 0x80;
/// RFC layout: D flag (DDP header included).
pub const FLAG_D: u8 = 0x40;
/// RFC layout: R flag (RDMA header included).
pub const FLAG_R: u8 = 0x20;
/// siw little-endian layout: M flag.
pub const SIW_FLAG_M: u8 = 0x01;
/// siw little-endian layout: D flag.
pub const SIW_FLAG_D: u8 = 0x02;
/// siw little-endian layout: R flag.
pub const SIW_FLAG_R: u8 = 0x04;

/// Bit layout of a Terminate control word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminateLayout {
    /// RFC 5040 layout: Layer in the high nibble, M/D/R = 0x80/0x40/0x20.
    Rfc,
    /// Linux siw on little-endian hosts: Layer in the low nibble, M/D/R = 0x01/0x02/0x04.
    SiwLittleEndian,
}

/// A read/write view of a Terminate header (everything after the untagged DDP header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminatePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TerminatePacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        TerminatePacket { buffer }
    }
    /// Wraps a buffer, checking it holds at least the control word.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref(), CONTROL_LEN)?;
        Ok(TerminatePacket { buffer })
    }
    /// RFC layout: Layer (high nibble of octet 0).
    pub fn layer(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }
    /// RFC layout: EType (low nibble of octet 0).
    pub fn etype(&self) -> u8 {
        self.buffer.as_ref()[0] & 0xF
    }
    /// Error Code (octet 1, same in both layouts).
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// The flags octet (octet 2).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[2]
    }
    /// RFC layout: M flag.
    pub fn m(&self) -> bool {
        self.flags() & FLAG_M != 0
    }
    /// RFC layout: D flag.
    pub fn d(&self) -> bool {
        self.flags() & FLAG_D != 0
    }
    /// RFC layout: R flag.
    pub fn r(&self) -> bool {
        self.flags() & FLAG_R != 0
    }
    /// Everything after the control word (segment length and included headers).
    pub fn rest(&self) -> &[u8] {
        &self.buffer.as_ref()[CONTROL_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TerminatePacket<T> {
    /// Sets the control word in RFC layout (reserved bits zero).
    pub fn set_control(&mut self, layer: u8, etype: u8, code: u8, flags: u8) {
        let b = self.buffer.as_mut();
        b[0] = (layer << 4) | (etype & 0xF);
        b[1] = code;
        b[2] = flags & (FLAG_M | FLAG_D | FLAG_R);
        b[3] = 0;
    }
}

/// The DDP header of the erroring segment, as included in a Terminate (14 or 18 octets,
/// fewer if a peer sent a truncated one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncludedHeader {
    bytes: [u8; UNTAGGED_HEADER_LEN],
    len: u8,
}

impl IncludedHeader {
    /// Copies up to 18 octets of `src`.
    pub fn new(src: &[u8]) -> Self {
        let n = src.len().min(UNTAGGED_HEADER_LEN);
        let mut bytes = [0u8; UNTAGGED_HEADER_LEN];
        bytes[..n].copy_from_slice(&src[..n]);
        IncludedHeader {
            bytes,
            len: n as u8,
        }
    }
    /// The included octets.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// A Terminate header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminateRepr {
    /// Layer: 0 RDMAP, 1 DDP, 2 LLP.
    pub layer: u8,
    /// Error type.
    pub etype: u8,
    /// Error code.
    pub code: u8,
    /// M flag: the DDP Segment Length field is valid.
    pub segment_len_valid: bool,
    /// DDP Segment Length (meaningful when `segment_len_valid`).
    pub segment_len: u16,
    /// The included DDP header (D flag).
    pub ddp_header: Option<IncludedHeader>,
    /// R flag as received (a siw peer sets R without including the RDMA header).
    pub rdma_flag: bool,
    /// The included RDMA header (R flag with 28 octets present).
    pub rdma_header: Option<[u8; RDMA_HEADER_LEN]>,
    /// Layout the control word was read in (always [`TerminateLayout::Rfc`] on send).
    pub layout: TerminateLayout,
}

impl TerminateRepr {
    /// A Terminate with no included headers.
    pub fn bare(layer: u8, etype: u8, code: u8) -> Self {
        TerminateRepr {
            layer,
            etype,
            code,
            segment_len_valid: false,
            segment_len: 0,
            ddp_header: None,
            rdma_flag: false,
            rdma_header: None,
            layout: TerminateLayout::Rfc,
        }
    }

    /// Parses a received Terminate header leniently: any (layer, type, code), either
    /// layout, truncated included headers are kept as far as present.
    pub fn parse<T: AsRef<[u8]>>(p: &TerminatePacket<T>) -> Result<Self, WireError> {
        let b = p.buffer.as_ref();
        check_len(b, CONTROL_LEN)?;
        let flags = b[2];
        let rfc = (b[0] >> 4, b[0] & 0xF);
        let siw = (b[0] & 0xF, b[0] >> 4);
        let rfc_flags = flags & (FLAG_M | FLAG_D | FLAG_R);
        let siw_flags = flags & (SIW_FLAG_M | SIW_FLAG_D | SIW_FLAG_R);
        let layout = if rfc_flags != 0 && siw_flags == 0 {
            TerminateLayout::Rfc
        } else if siw_flags != 0 && rfc_flags == 0 {
            TerminateLayout::SiwLittleEndian
        } else if TerminateReason::from_parts(rfc.0, rfc.1, b[1]).is_known() {
            TerminateLayout::Rfc
        } else if TerminateReason::from_parts(siw.0, siw.1, b[1]).is_known() {
            TerminateLayout::SiwLittleEndian
        } else {
            TerminateLayout::Rfc
        };
        let ((layer, etype), m, d, r) = match layout {
            TerminateLayout::Rfc => (
                rfc,
                flags & FLAG_M != 0,
                flags & FLAG_D != 0,
                flags & FLAG_R != 0,
            ),
            TerminateLayout::SiwLittleEndian => (
                siw,
                flags & SIW_FLAG_M != 0,
                flags & SIW_FLAG_D != 0,
                flags & SIW_FLAG_R != 0,
            ),
        };
        let mut rest = &b[CONTROL_LEN..];
        let mut segment_len = 0;
        let mut ddp_header = None;
        if d {
            if rest.len() >= SEGMENT_LEN_LEN {
                segment_len = be16(rest);
                rest = &rest[SEGMENT_LEN_LEN..];
            } else {
                rest = &[];
            }
            let hlen = match rest.first() {
                Some(c) if c & ddp::TAGGED != 0 => TAGGED_HEADER_LEN,
                _ => UNTAGGED_HEADER_LEN,
            };
            let n = hlen.min(rest.len());
            ddp_header = Some(IncludedHeader::new(&rest[..n]));
            rest = &rest[n..];
        }
        let rdma_header = if r && rest.len() >= RDMA_HEADER_LEN {
            let mut h = [0u8; RDMA_HEADER_LEN];
            h.copy_from_slice(&rest[..RDMA_HEADER_LEN]);
            Some(h)
        } else {
            None
        };
        Ok(TerminateRepr {
            layer,
            etype,
            code: b[1],
            segment_len_valid: m,
            segment_len,
            ddp_header,
            rdma_flag: r,
            rdma_header,
            layout,
        })
    }

    /// The typed reason.
    pub fn reason(&self) -> TerminateReason {
        TerminateReason::from_parts(self.layer, self.etype, self.code)
    }

    /// Octets [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        CONTROL_LEN
            + self
                .ddp_header
                .map_or(0, |h| SEGMENT_LEN_LEN + h.as_slice().len())
            + self.rdma_header.map_or(0, |_| RDMA_HEADER_LEN)
    }

    /// Writes the header in RFC layout into `buf` (at least
    /// [`buffer_len`](Self::buffer_len) octets); returns the octets written. The flags
    /// follow the contents: D iff a DDP header is included (M additionally when the
    /// segment length is valid), R iff an RDMA header is included.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        self.emit_with_layout(buf, TerminateLayout::Rfc)
    }

    /// Like [`emit`](Self::emit) but in a chosen layout (the siw layout exists for
    /// tests of the receive path).
    pub fn emit_with_layout(&self, buf: &mut [u8], layout: TerminateLayout) -> usize {
        let mut flags = 0;
        let (m, d, r, b0) = match layout {
            TerminateLayout::Rfc => (
                FLAG_M,
                FLAG_D,
                FLAG_R,
                (self.layer << 4) | (self.etype & 0xF),
            ),
            TerminateLayout::SiwLittleEndian => (
                SIW_FLAG_M,
                SIW_FLAG_D,
                SIW_FLAG_R,
                (self.etype << 4) | (self.layer & 0xF),
            ),
        };
        if self.ddp_header.is_some() {
            flags |= d;
            if self.segment_len_valid {
                flags |= m;
            }
        }
        if self.rdma_header.is_some() {
            flags |= r;
        }
        buf[0] = b0;
        buf[1] = self.code;
        buf[2] = flags;
        buf[3] = 0;
        let mut n = CONTROL_LEN;
        if let Some(h) = &self.ddp_header {
            let len = if self.segment_len_valid {
                self.segment_len
            } else {
                0
            };
            buf[n..n + 2].copy_from_slice(&len.to_be_bytes());
            n += 2;
            let s = h.as_slice();
            buf[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        }
        if let Some(h) = &self.rdma_header {
            buf[n..n + RDMA_HEADER_LEN].copy_from_slice(h);
            n += RDMA_HEADER_LEN;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{LlpError, TerminateReason};

    #[test]
    fn rfc_crc_error() {
        let t = TerminateRepr::bare(2, 0, 2);
        let mut b = [0u8; MAX_LEN];
        assert_eq!(t.emit(&mut b), 4);
        assert_eq!(&b[..4], &[0x20, 0x02, 0, 0]);
        let p = TerminatePacket::new_checked(&b[..4]).unwrap();
        assert_eq!(p.layer(), 2);
        let r = TerminateRepr::parse(&p).unwrap();
        assert_eq!(r, t);
        assert_eq!(r.reason(), TerminateReason::Llp(LlpError::CrcError));
    }

    #[test]
    fn siw_layout_crc_error() {
        let p = TerminatePacket::new_checked(&[0x02u8, 0x02, 0, 0][..]).unwrap();
        let r = TerminateRepr::parse(&p).unwrap();
        assert_eq!(r.layout, TerminateLayout::SiwLittleEndian);
        assert_eq!(r.reason(), TerminateReason::Llp(LlpError::CrcError));
    }

    #[test]
    fn included_headers_both_layouts() {
        let hdr = [0x41u8, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        let t = TerminateRepr {
            layer: 0,
            etype: 1,
            code: 2,
            segment_len_valid: true,
            segment_len: 46,
            ddp_header: Some(IncludedHeader::new(&hdr)),
            rdma_flag: true,
            rdma_header: Some([7u8; 28]),
            layout: TerminateLayout::Rfc,
        };
        for layout in [TerminateLayout::Rfc, TerminateLayout::SiwLittleEndian] {
            let mut b = [0u8; MAX_LEN];
            let n = t.emit_with_layout(&mut b, layout);
            assert_eq!(n, MAX_LEN);
            let r = TerminateRepr::parse(&TerminatePacket::new_checked(&b[..n]).unwrap()).unwrap();
            assert_eq!(r, TerminateRepr { layout, ..t });
        }
    }

    #[test]
    fn siw_r_flag_without_rdma_header() {
        // M, D and R set (siw layout) but only the untagged DDP header included.
        let mut b = vec![0x10u8, 0x09, 0x07, 0, 0, 4];
        b.extend_from_slice(&[0x41, 0x44, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        let r = TerminateRepr::parse(&TerminatePacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.layout, TerminateLayout::SiwLittleEndian);
        assert_eq!((r.layer, r.etype, r.code), (0, 1, 9));
        assert!(r.rdma_flag && r.rdma_header.is_none());
        assert_eq!(r.ddp_header.unwrap().as_slice().len(), 18);
        assert_eq!(r.segment_len, 4);
    }

    #[test]
    fn truncated_is_lenient() {
        let b = [0x12u8, 0x05, FLAG_D | FLAG_M, 0, 0];
        let r = TerminateRepr::parse(&TerminatePacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.ddp_header.unwrap().as_slice().len(), 0);
        assert!(TerminatePacket::new_checked(&b[..3]).is_err());
    }
}

//! DDP segment headers (RFC 5041 §4): the control byte, the 14-octet tagged header and
//! the 18-octet untagged header.

use super::{TAGGED_HEADER_LEN, UNTAGGED_HEADER_LEN, WireError, be32, be64, check_len};

/// T bit of the DDP control byte: tagged buffer model.
pub const TAGGED: u8 = 0x80;
/// L bit of the DDP control byte: last segment of a DDP message.
pub const LAST: u8 = 0x40;
/// DV field mask of the DDP control byte.
pub const DV_MASK: u8 = 0x03;
/// The only DDP version this stack speaks (RFC 5041 §4.1).
pub const DDP_VERSION: u8 = 1;

mod field {
    use core::ops::Range;
    pub const CONTROL: usize = 0;
    pub const RSVD_ULP: usize = 1;
    pub const STAG: Range<usize> = 2..6;
    pub const TO: Range<usize> = 6..14;
    pub const RSVD_ULP2: Range<usize> = 2..6;
    pub const QN: Range<usize> = 6..10;
    pub const MSN: Range<usize> = 10..14;
    pub const MO: Range<usize> = 14..18;
}

/// A read/write view of a DDP segment (header followed by payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DdpPacket<T> {
    /// Wraps a buffer without checking its length; accessors may panic on short buffers.
    pub const fn new_unchecked(buffer: T) -> Self {
        DdpPacket { buffer }
    }

    /// Wraps a buffer, checking that it holds the whole header the T bit announces.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = DdpPacket { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the header the T bit announces.
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        check_len(b, 1)?;
        check_len(b, self.header_len())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header length: 14 if tagged, 18 if untagged.
    pub fn header_len(&self) -> usize {
        if self.tagged() {
            TAGGED_HEADER_LEN
        } else {
            UNTAGGED_HEADER_LEN
        }
    }

    /// The raw DDP control byte.
    pub fn control(&self) -> u8 {
        self.buffer.as_ref()[field::CONTROL]
    }
    /// T: tagged buffer model.
    pub fn tagged(&self) -> bool {
        self.control() & TAGGED != 0
    }
    /// L: last segment of the message.
    pub fn last(&self) -> bool {
        self.control() & LAST != 0
    }
    /// DV: DDP version.
    pub fn version(&self) -> u8 {
        self.control() & DV_MASK
    }
    /// RsvdULP octet (the RDMAP control byte).
    pub fn rsvd_ulp(&self) -> u8 {
        self.buffer.as_ref()[field::RSVD_ULP]
    }
    /// Tagged: the Data Sink STag.
    pub fn stag(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::STAG])
    }
    /// Tagged: the Tagged Offset.
    pub fn tagged_offset(&self) -> u64 {
        be64(&self.buffer.as_ref()[field::TO])
    }
    /// Untagged: RsvdULP octets 1..5 (the RDMAP Invalidate STag, or reserved).
    pub fn rsvd_ulp2(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::RSVD_ULP2])
    }
    /// Untagged: Queue Number.
    pub fn qn(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::QN])
    }
    /// Untagged: Message Sequence Number.
    pub fn msn(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::MSN])
    }
    /// Untagged: Message Offset.
    pub fn mo(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::MO])
    }
    /// Everything after the DDP header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DdpPacket<T> {
    /// Sets the DDP control byte.
    pub fn set_control(&mut self, v: u8) {
        self.buffer.as_mut()[field::CONTROL] = v;
    }
    /// Sets the RsvdULP octet (RDMAP control byte).
    pub fn set_rsvd_ulp(&mut self, v: u8) {
        self.buffer.as_mut()[field::RSVD_ULP] = v;
    }
    /// Tagged: sets the STag.
    pub fn set_stag(&mut self, v: u32) {
        self.buffer.as_mut()[field::STAG].copy_from_slice(&v.to_be_bytes());
    }
    /// Tagged: sets the Tagged Offset.
    pub fn set_tagged_offset(&mut self, v: u64) {
        self.buffer.as_mut()[field::TO].copy_from_slice(&v.to_be_bytes());
    }
    /// Untagged: sets RsvdULP octets 1..5.
    pub fn set_rsvd_ulp2(&mut self, v: u32) {
        self.buffer.as_mut()[field::RSVD_ULP2].copy_from_slice(&v.to_be_bytes());
    }
    /// Untagged: sets the Queue Number.
    pub fn set_qn(&mut self, v: u32) {
        self.buffer.as_mut()[field::QN].copy_from_slice(&v.to_be_bytes());
    }
    /// Untagged: sets the Message Sequence Number.
    pub fn set_msn(&mut self, v: u32) {
        self.buffer.as_mut()[field::MSN].copy_from_slice(&v.to_be_bytes());
    }
    /// Untagged: sets the Message Offset.
    pub fn set_mo(&mut self, v: u32) {
        self.buffer.as_mut()[field::MO].copy_from_slice(&v.to_be_bytes());
    }
}

/// A tagged DDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaggedRepr {
    /// L bit.
    pub last: bool,
    /// DDP version (DV); 1 on send.
    pub version: u8,
    /// RsvdULP: the RDMAP control byte.
    pub rsvd_ulp: u8,
    /// Data Sink STag.
    pub stag: u32,
    /// Tagged Offset of the first payload octet.
    pub tagged_offset: u64,
}

/// An untagged DDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UntaggedRepr {
    /// L bit.
    pub last: bool,
    /// DDP version (DV); 1 on send.
    pub version: u8,
    /// RsvdULP octet 0: the RDMAP control byte.
    pub rsvd_ulp: u8,
    /// RsvdULP octets 1..5: the RDMAP Invalidate STag, or zero.
    pub rsvd_ulp2: u32,
    /// Queue Number.
    pub qn: u32,
    /// Message Sequence Number.
    pub msn: u32,
    /// Message Offset.
    pub mo: u32,
}

/// A DDP header of either model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdpRepr {
    /// Tagged buffer model.
    Tagged(TaggedRepr),
    /// Untagged buffer model.
    Untagged(UntaggedRepr),
}

impl DdpRepr {
    /// Parses the header of a DDP segment (the Rsvd bits are not checked).
    pub fn parse<T: AsRef<[u8]>>(p: &DdpPacket<T>) -> Result<DdpRepr, WireError> {
        p.check_len()?;
        Ok(if p.tagged() {
            DdpRepr::Tagged(TaggedRepr {
                last: p.last(),
                version: p.version(),
                rsvd_ulp: p.rsvd_ulp(),
                stag: p.stag(),
                tagged_offset: p.tagged_offset(),
            })
        } else {
            DdpRepr::Untagged(UntaggedRepr {
                last: p.last(),
                version: p.version(),
                rsvd_ulp: p.rsvd_ulp(),
                rsvd_ulp2: p.rsvd_ulp2(),
                qn: p.qn(),
                msn: p.msn(),
                mo: p.mo(),
            })
        })
    }

    /// Octets the header occupies.
    pub fn header_len(&self) -> usize {
        match self {
            DdpRepr::Tagged(_) => TAGGED_HEADER_LEN,
            DdpRepr::Untagged(_) => UNTAGGED_HEADER_LEN,
        }
    }

    /// The L bit.
    pub fn last(&self) -> bool {
        match self {
            DdpRepr::Tagged(t) => t.last,
            DdpRepr::Untagged(u) => u.last,
        }
    }

    /// The RDMAP control byte carried in RsvdULP.
    pub fn rsvd_ulp(&self) -> u8 {
        match self {
            DdpRepr::Tagged(t) => t.rsvd_ulp,
            DdpRepr::Untagged(u) => u.rsvd_ulp,
        }
    }

    /// Writes the header into the first [`header_len`](Self::header_len) octets of
    /// `p` (Rsvd bits zero). The buffer must be at least that long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut DdpPacket<T>) {
        match self {
            DdpRepr::Tagged(t) => {
                p.set_control(TAGGED | if t.last { LAST } else { 0 } | (t.version & DV_MASK));
                p.set_rsvd_ulp(t.rsvd_ulp);
                p.set_stag(t.stag);
                p.set_tagged_offset(t.tagged_offset);
            }
            DdpRepr::Untagged(u) => {
                p.set_control(if u.last { LAST } else { 0 } | (u.version & DV_MASK));
                p.set_rsvd_ulp(u.rsvd_ulp);
                p.set_rsvd_ulp2(u.rsvd_ulp2);
                p.set_qn(u.qn);
                p.set_msn(u.msn);
                p.set_mo(u.mo);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_roundtrip_write_rtr() {
        let bytes = [0xc1, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let p = DdpPacket::new_checked(&bytes[..]).unwrap();
        assert!(p.tagged() && p.last());
        assert_eq!(p.version(), 1);
        assert_eq!(p.stag(), 1);
        assert_eq!(p.tagged_offset(), 0);
        let r = DdpRepr::parse(&p).unwrap();
        let mut out = [0u8; 14];
        r.emit(&mut DdpPacket::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes);
    }

    #[test]
    fn untagged_roundtrip() {
        let r = DdpRepr::Untagged(UntaggedRepr {
            last: false,
            version: 1,
            rsvd_ulp: 0x44,
            rsvd_ulp2: 0xdeadbeef,
            qn: 0,
            msn: 7,
            mo: 0x1234,
        });
        let mut out = [0u8; 20];
        r.emit(&mut DdpPacket::new_unchecked(&mut out[..]));
        assert_eq!(&out[..6], &[0x01, 0x44, 0xde, 0xad, 0xbe, 0xef]);
        let p = DdpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(DdpRepr::parse(&p).unwrap(), r);
        assert_eq!(p.payload().len(), 2);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            DdpPacket::new_checked(&[0x41u8; 17][..]).unwrap_err(),
            WireError::Truncated {
                needed: 18,
                got: 17
            }
        );
        assert!(DdpPacket::new_checked(&[0xc1u8; 13][..]).is_err());
        assert!(DdpPacket::new_checked(&[][..]).is_err());
        assert!(DdpPacket::new_checked(&[0xc1u8; 14][..]).is_ok());
    }
}

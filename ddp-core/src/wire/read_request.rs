//! The RDMA Read Request header (RFC 5040 §4.4), 28 octets after the untagged DDP
//! header.

use super::{WireError, be32, be64, check_len};

/// Length of the Read Request header.
pub const HEADER_LEN: usize = 28;

mod field {
    use core::ops::Range;
    pub const SINK_STAG: Range<usize> = 0..4;
    pub const SINK_TO: Range<usize> = 4..12;
    pub const SIZE: Range<usize> = 12..16;
    pub const SRC_STAG: Range<usize> = 16..20;
    pub const SRC_TO: Range<usize> = 20..28;
}

/// A read/write view of a Read Request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRequestPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReadRequestPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        ReadRequestPacket { buffer }
    }
    /// Wraps a buffer, checking it holds the 28-octet header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref(), HEADER_LEN)?;
        Ok(ReadRequestPacket { buffer })
    }
    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Data Sink STag.
    pub fn sink_stag(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SINK_STAG])
    }
    /// Data Sink Tagged Offset.
    pub fn sink_to(&self) -> u64 {
        be64(&self.buffer.as_ref()[field::SINK_TO])
    }
    /// RDMA Read Message Size.
    pub fn size(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SIZE])
    }
    /// Data Source STag.
    pub fn src_stag(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SRC_STAG])
    }
    /// Data Source Tagged Offset.
    pub fn src_to(&self) -> u64 {
        be64(&self.buffer.as_ref()[field::SRC_TO])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ReadRequestPacket<T> {
    /// Sets the Data Sink STag.
    pub fn set_sink_stag(&mut self, v: u32) {
        self.buffer.as_mut()[field::SINK_STAG].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the Data Sink Tagged Offset.
    pub fn set_sink_to(&mut self, v: u64) {
        self.buffer.as_mut()[field::SINK_TO].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the RDMA Read Message Size.
    pub fn set_size(&mut self, v: u32) {
        self.buffer.as_mut()[field::SIZE].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the Data Source STag.
    pub fn set_src_stag(&mut self, v: u32) {
        self.buffer.as_mut()[field::SRC_STAG].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the Data Source Tagged Offset.
    pub fn set_src_to(&mut self, v: u64) {
        self.buffer.as_mut()[field::SRC_TO].copy_from_slice(&v.to_be_bytes());
    }
}

/// A parsed Read Request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequestRepr {
    /// Data Sink STag (becomes the Read Response's STag).
    pub sink_stag: u32,
    /// Data Sink Tagged Offset (the Read Response's first TO).
    pub sink_to: u64,
    /// RDMA Read Message Size.
    pub size: u32,
    /// Data Source STag.
    pub src_stag: u32,
    /// Data Source Tagged Offset.
    pub src_to: u64,
}

impl ReadRequestRepr {
    /// Parses a Read Request header.
    pub fn parse<T: AsRef<[u8]>>(p: &ReadRequestPacket<T>) -> Result<Self, WireError> {
        check_len(p.buffer.as_ref(), HEADER_LEN)?;
        Ok(ReadRequestRepr {
            sink_stag: p.sink_stag(),
            sink_to: p.sink_to(),
            size: p.size(),
            src_stag: p.src_stag(),
            src_to: p.src_to(),
        })
    }
    /// Writes the header into the first 28 octets of `p`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ReadRequestPacket<T>) {
        p.set_sink_stag(self.sink_stag);
        p.set_sink_to(self.sink_to);
        p.set_size(self.size);
        p.set_src_stag(self.src_stag);
        p.set_src_to(self.src_to);
    }
    /// The header as 28 octets.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut ReadRequestPacket::new_unchecked(&mut b[..]));
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let r = ReadRequestRepr {
            sink_stag: 0x01020304,
            sink_to: 0x1122334455667788,
            size: 99,
            src_stag: 0xAABBCCDD,
            src_to: 7,
        };
        let b = r.to_bytes();
        assert_eq!(&b[..4], &[1, 2, 3, 4]);
        assert_eq!(&b[12..16], &[0, 0, 0, 99]);
        let p = ReadRequestPacket::new_checked(&b[..]).unwrap();
        assert_eq!(ReadRequestRepr::parse(&p).unwrap(), r);
        assert!(ReadRequestPacket::new_checked(&b[..27]).is_err());
    }
}

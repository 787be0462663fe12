//! RFC 7306 headers: Immediate Data (8 octets, §6.2), Atomic Request (52 octets, §5.2.1
//! Figure 4) and Atomic Response (12 octets, §5.2.2 Figure 6), each following the
//! untagged DDP header. Every field is big-endian on the wire. (RFC 7306 §4 calls the
//! Atomic Response header "32 bytes long"; its Figure 6 and Appendix A.2 show 12, which
//! is what this module, siw-free peers and Wireshark use: docs/wire-facts.md §5.5.)

use super::{WireError, be32, be64, check_len};

/// Length of the Immediate Data header.
pub const IMMEDIATE_LEN: usize = 8;
/// Length of the Atomic Request header.
pub const REQUEST_LEN: usize = 52;
/// Length of the Atomic Response header.
pub const RESPONSE_LEN: usize = 12;

/// A read/write view of the Immediate Data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImmediateDataPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ImmediateDataPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        ImmediateDataPacket { buffer }
    }
    /// Wraps a buffer, checking it holds the 8-octet header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref(), IMMEDIATE_LEN)?;
        Ok(ImmediateDataPacket { buffer })
    }
    /// The 8 octets of immediate data.
    pub fn data(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d.copy_from_slice(&self.buffer.as_ref()[..IMMEDIATE_LEN]);
        d
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ImmediateDataPacket<T> {
    /// Sets the immediate data.
    pub fn set_data(&mut self, d: [u8; 8]) {
        self.buffer.as_mut()[..IMMEDIATE_LEN].copy_from_slice(&d);
    }
}

/// A parsed Immediate Data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImmediateDataRepr {
    /// The 8 octets of immediate data.
    pub data: [u8; 8],
}

impl ImmediateDataRepr {
    /// Parses the header.
    pub fn parse<T: AsRef<[u8]>>(p: &ImmediateDataPacket<T>) -> Result<Self, WireError> {
        check_len(p.buffer.as_ref(), IMMEDIATE_LEN)?;
        Ok(ImmediateDataRepr { data: p.data() })
    }
    /// Writes the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut ImmediateDataPacket<T>) {
        p.set_data(self.data);
    }
}

/// The RFC 7306 Atomic Operation Codes (AOpCode, RFC 7306 §5.2.1 Figure 5, §10.1).
/// There are exactly two; 0001b is Reserved and every other value Unassigned, so a
/// Responder receiving one answers with a Terminate (docs/wire-facts.md §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtomicOp {
    /// FetchAdd (0000b): masked add, RFC 7306 §5.1.1.
    FetchAdd,
    /// CmpSwap (0010b): masked compare and masked swap, RFC 7306 §5.1.2.
    CompareSwap,
}

impl AtomicOp {
    /// Decodes the 4-bit AOpCode; `None` for Reserved (0x1) and Unassigned values.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(AtomicOp::FetchAdd),
            2 => Some(AtomicOp::CompareSwap),
            _ => None,
        }
    }
    /// The 4-bit AOpCode.
    pub fn to_u8(self) -> u8 {
        match self {
            AtomicOp::FetchAdd => 0,
            AtomicOp::CompareSwap => 2,
        }
    }
}

mod req_field {
    use core::ops::Range;
    pub const OPCODE: Range<usize> = 0..4;
    pub const REQ_ID: Range<usize> = 4..8;
    pub const STAG: Range<usize> = 8..12;
    pub const TO: Range<usize> = 12..20;
    pub const ADD_SWAP: Range<usize> = 20..28;
    pub const ADD_SWAP_MASK: Range<usize> = 28..36;
    pub const COMPARE: Range<usize> = 36..44;
    pub const COMPARE_MASK: Range<usize> = 44..52;
}

/// A read/write view of the Atomic Request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicRequestPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AtomicRequestPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        AtomicRequestPacket { buffer }
    }
    /// Wraps a buffer, checking it holds the 52-octet header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref(), REQUEST_LEN)?;
        Ok(AtomicRequestPacket { buffer })
    }
    /// The 4-bit AtomicOpcode (low bits of the first word).
    pub fn raw_opcode(&self) -> u8 {
        (be32(&self.buffer.as_ref()[req_field::OPCODE]) & 0xF) as u8
    }
    /// Request Identifier.
    pub fn request_id(&self) -> u32 {
        be32(&self.buffer.as_ref()[req_field::REQ_ID])
    }
    /// Remote STag.
    pub fn remote_stag(&self) -> u32 {
        be32(&self.buffer.as_ref()[req_field::STAG])
    }
    /// Remote Tagged Offset.
    pub fn remote_to(&self) -> u64 {
        be64(&self.buffer.as_ref()[req_field::TO])
    }
    /// Add or Swap Data.
    pub fn add_swap(&self) -> u64 {
        be64(&self.buffer.as_ref()[req_field::ADD_SWAP])
    }
    /// Add or Swap Mask.
    pub fn add_swap_mask(&self) -> u64 {
        be64(&self.buffer.as_ref()[req_field::ADD_SWAP_MASK])
    }
    /// Compare Data.
    pub fn compare(&self) -> u64 {
        be64(&self.buffer.as_ref()[req_field::COMPARE])
    }
    /// Compare Mask.
    pub fn compare_mask(&self) -> u64 {
        be64(&self.buffer.as_ref()[req_field::COMPARE_MASK])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AtomicRequestPacket<T> {
    fn put(&mut self, r: core::ops::Range<usize>, v: &[u8]) {
        self.buffer.as_mut()[r].copy_from_slice(v);
    }
    /// Sets the AtomicOpcode (the reserved bits become zero).
    pub fn set_raw_opcode(&mut self, v: u8) {
        self.put(req_field::OPCODE, &u32::from(v & 0xF).to_be_bytes());
    }
    /// Sets the Request Identifier.
    pub fn set_request_id(&mut self, v: u32) {
        self.put(req_field::REQ_ID, &v.to_be_bytes());
    }
    /// Sets the Remote STag.
    pub fn set_remote_stag(&mut self, v: u32) {
        self.put(req_field::STAG, &v.to_be_bytes());
    }
    /// Sets the Remote Tagged Offset.
    pub fn set_remote_to(&mut self, v: u64) {
        self.put(req_field::TO, &v.to_be_bytes());
    }
    /// Sets the Add or Swap Data.
    pub fn set_add_swap(&mut self, v: u64) {
        self.put(req_field::ADD_SWAP, &v.to_be_bytes());
    }
    /// Sets the Add or Swap Mask.
    pub fn set_add_swap_mask(&mut self, v: u64) {
        self.put(req_field::ADD_SWAP_MASK, &v.to_be_bytes());
    }
    /// Sets the Compare Data.
    pub fn set_compare(&mut self, v: u64) {
        self.put(req_field::COMPARE, &v.to_be_bytes());
    }
    /// Sets the Compare Mask.
    pub fn set_compare_mask(&mut self, v: u64) {
        self.put(req_field::COMPARE_MASK, &v.to_be_bytes());
    }
}

/// A parsed Atomic Request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtomicRequestRepr {
    /// The raw 4-bit AtomicOpcode (see [`AtomicOp`]).
    pub opcode: u8,
    /// Request Identifier, echoed in the response.
    pub request_id: u32,
    /// Remote STag.
    pub remote_stag: u32,
    /// Remote Tagged Offset.
    pub remote_to: u64,
    /// Add or Swap Data.
    pub add_swap: u64,
    /// Add or Swap Mask.
    pub add_swap_mask: u64,
    /// Compare Data.
    pub compare: u64,
    /// Compare Mask.
    pub compare_mask: u64,
}

impl AtomicRequestRepr {
    /// Parses the header.
    pub fn parse<T: AsRef<[u8]>>(p: &AtomicRequestPacket<T>) -> Result<Self, WireError> {
        check_len(p.buffer.as_ref(), REQUEST_LEN)?;
        Ok(AtomicRequestRepr {
            opcode: p.raw_opcode(),
            request_id: p.request_id(),
            remote_stag: p.remote_stag(),
            remote_to: p.remote_to(),
            add_swap: p.add_swap(),
            add_swap_mask: p.add_swap_mask(),
            compare: p.compare(),
            compare_mask: p.compare_mask(),
        })
    }
    /// Writes the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut AtomicRequestPacket<T>) {
        p.set_raw_opcode(self.opcode);
        p.set_request_id(self.request_id);
        p.set_remote_stag(self.remote_stag);
        p.set_remote_to(self.remote_to);
        p.set_add_swap(self.add_swap);
        p.set_add_swap_mask(self.add_swap_mask);
        p.set_compare(self.compare);
        p.set_compare_mask(self.compare_mask);
    }
}

/// A read/write view of the Atomic Response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtomicResponsePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AtomicResponsePacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        AtomicResponsePacket { buffer }
    }
    /// Wraps a buffer, checking it holds the 12-octet header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check_len(buffer.as_ref(), RESPONSE_LEN)?;
        Ok(AtomicResponsePacket { buffer })
    }
    /// Original Request Identifier.
    pub fn request_id(&self) -> u32 {
        be32(&self.buffer.as_ref()[0..4])
    }
    /// Original Remote Data Value.
    pub fn original_value(&self) -> u64 {
        be64(&self.buffer.as_ref()[4..12])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AtomicResponsePacket<T> {
    /// Sets the Original Request Identifier.
    pub fn set_request_id(&mut self, v: u32) {
        self.buffer.as_mut()[0..4].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets the Original Remote Data Value.
    pub fn set_original_value(&mut self, v: u64) {
        self.buffer.as_mut()[4..12].copy_from_slice(&v.to_be_bytes());
    }
}

/// A parsed Atomic Response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AtomicResponseRepr {
    /// Original Request Identifier.
    pub request_id: u32,
    /// Original Remote Data Value.
    pub original_value: u64,
}

impl AtomicResponseRepr {
    /// Parses the header.
    pub fn parse<T: AsRef<[u8]>>(p: &AtomicResponsePacket<T>) -> Result<Self, WireError> {
        check_len(p.buffer.as_ref(), RESPONSE_LEN)?;
        Ok(AtomicResponseRepr {
            request_id: p.request_id(),
            original_value: p.original_value(),
        })
    }
    /// Writes the header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut AtomicResponsePacket<T>) {
        p.set_request_id(self.request_id);
        p.set_original_value(self.original_value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip() {
        let r = AtomicRequestRepr {
            opcode: AtomicOp::CompareSwap.to_u8(),
            request_id: 5,
            remote_stag: 0x100,
            remote_to: 0x2000,
            add_swap: 1,
            add_swap_mask: u64::MAX,
            compare: 3,
            compare_mask: u64::MAX,
        };
        let mut b = [0u8; REQUEST_LEN];
        r.emit(&mut AtomicRequestPacket::new_unchecked(&mut b[..]));
        assert_eq!(&b[..4], &[0, 0, 0, 2]);
        let p = AtomicRequestPacket::new_checked(&b[..]).unwrap();
        assert_eq!(AtomicRequestRepr::parse(&p).unwrap(), r);
        assert_eq!(
            AtomicOp::from_u8(p.raw_opcode()),
            Some(AtomicOp::CompareSwap)
        );
        assert!(AtomicRequestPacket::new_checked(&b[..51]).is_err());
    }

    #[test]
    fn response_and_immediate_roundtrip() {
        let r = AtomicResponseRepr {
            request_id: 9,
            original_value: 0x0102030405060708,
        };
        let mut b = [0u8; RESPONSE_LEN];
        r.emit(&mut AtomicResponsePacket::new_unchecked(&mut b[..]));
        assert_eq!(b, [0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]);
        let p = AtomicResponsePacket::new_checked(&b[..]).unwrap();
        assert_eq!(AtomicResponseRepr::parse(&p).unwrap(), r);

        let i = ImmediateDataRepr { data: *b"12345678" };
        let mut b = [0u8; 8];
        i.emit(&mut ImmediateDataPacket::new_unchecked(&mut b[..]));
        assert_eq!(&b, b"12345678");
        let p = ImmediateDataPacket::new_checked(&b[..]).unwrap();
        assert_eq!(ImmediateDataRepr::parse(&p).unwrap(), i);
    }
}

//! Header views and representations for DDP (RFC 5041), RDMAP (RFC 5040) and the
//! RFC 7306 extensions, in the style of smoltcp's `wire` module.
//!
//! Every header has a `Packet<T: AsRef<[u8]>>` view with one accessor per field and a
//! `new_checked` constructor that validates the length once, and a `Repr` with
//! `parse`/`emit`. All multi-byte integers are big-endian.

pub mod atomic;
pub mod ddp;
pub mod rdmap;
pub mod read_request;
pub mod terminate;

pub use atomic::{
    AtomicOp, AtomicRequestPacket, AtomicRequestRepr, AtomicResponsePacket, AtomicResponseRepr,
    ImmediateDataPacket, ImmediateDataRepr,
};
pub use ddp::{DdpPacket, DdpRepr, TaggedRepr, UntaggedRepr};
pub use rdmap::{Opcode, RdmapControl};
pub use read_request::{ReadRequestPacket, ReadRequestRepr};
pub use terminate::{TerminateLayout, TerminatePacket, TerminateRepr};

use core::fmt;

/// Length of the DDP tagged header (RFC 5041 §4.2).
pub const TAGGED_HEADER_LEN: usize = 14;
/// Length of the DDP untagged header (RFC 5041 §4.3).
pub const UNTAGGED_HEADER_LEN: usize = 18;
/// Largest ULPDU header (DDP header plus RDMAP extra header) any message can have:
/// a Terminate carrying an untagged DDP header and a Read Request header, or an
/// RFC 7306 Atomic Request (both 70 octets).
pub const MAX_HEADER_LEN: usize = 70;

/// Why a buffer could not be viewed as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header it should hold.
    Truncated {
        /// Octets the header needs.
        needed: usize,
        /// Octets that were available.
        got: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { needed, got } => {
                write!(f, "header truncated: need {needed} octets, got {got}")
            }
        }
    }
}

impl std::error::Error for WireError {}

pub(crate) fn check_len(buf: &[u8], needed: usize) -> Result<(), WireError> {
    if buf.len() < needed {
        Err(WireError::Truncated {
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}

pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
pub(crate) fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// How many leading octets of a ULPDU are header (DDP header plus the RDMAP header
/// that follows it), given at least its first two octets (the DDP control byte and the
/// RDMAP control byte). This is the `header_len` function for the MPA deframer.
///
/// Tagged: 14. Untagged: 18, plus 28 for a Read Request, 52 for a Terminate (the
/// maximum: control word, DDP segment length, an untagged DDP header and a Read
/// Request header), 8 for Immediate Data, 52 for an Atomic Request and 12 for an
/// Atomic Response. Unknown opcodes get the bare DDP header. The result never exceeds
/// [`MAX_HEADER_LEN`]; with fewer than two octets the bare DDP header length is returned.
pub fn ulpdu_header_len(first: &[u8]) -> usize {
    let Some(&ctrl) = first.first() else {
        return UNTAGGED_HEADER_LEN;
    };
    if ctrl & ddp::TAGGED != 0 {
        return TAGGED_HEADER_LEN;
    }
    let Some(&rdmap) = first.get(1) else {
        return UNTAGGED_HEADER_LEN;
    };
    UNTAGGED_HEADER_LEN + rdmap_extra_len(rdmap & rdmap::OPCODE_MASK)
}

/// Length of the RDMAP header that follows the untagged DDP header for an opcode.
pub(crate) fn rdmap_extra_len(opcode: u8) -> usize {
    match Opcode::from_u8(opcode) {
        Some(Opcode::ReadRequest) => read_request::HEADER_LEN,
        Some(Opcode::Terminate) => terminate::MAX_LEN,
        Some(Opcode::ImmediateData | Opcode::ImmediateDataSe) => atomic::IMMEDIATE_LEN,
        Some(Opcode::AtomicRequest) => atomic::REQUEST_LEN,
        Some(Opcode::AtomicResponse) => atomic::RESPONSE_LEN,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        assert_eq!(ulpdu_header_len(&[0xC1, 0x40]), 14);
        assert_eq!(ulpdu_header_len(&[0x81]), 14);
        assert_eq!(ulpdu_header_len(&[0x41, 0x43]), 18);
        assert_eq!(ulpdu_header_len(&[0x41, 0x41]), 46);
        assert_eq!(ulpdu_header_len(&[0x41, 0x47]), 70);
        assert_eq!(ulpdu_header_len(&[0x41, 0x48]), 26);
        assert_eq!(ulpdu_header_len(&[0x41, 0x49]), 26);
        assert_eq!(ulpdu_header_len(&[0x41, 0x4A]), 70);
        assert_eq!(ulpdu_header_len(&[0x41, 0x4B]), 30);
        assert_eq!(ulpdu_header_len(&[0x41, 0x4F]), 18);
        assert_eq!(ulpdu_header_len(&[0x41]), 18);
        assert_eq!(ulpdu_header_len(&[]), 18);
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert!(ulpdu_header_len(&[a, b]) <= MAX_HEADER_LEN);
            }
        }
    }
}

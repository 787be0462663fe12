//! Marker placement arithmetic shared by the framer and the deframer
//! (RFC 5044 §4.3).
//!
//! Positions are octet offsets in the TCP stream relative to SeqStart, the first
//! octet of Full Operation in one direction, kept modulo 2³² like TCP sequence
//! numbers (2³² is a multiple of 512, so the marker grid survives the wrap).
//! A Marker sits at every position `p` with `p mod 512 == 0`. Its FPDUPTR is the
//! distance back from the Marker to the ULPDU_Length field of the FPDU that contains
//! it, or 0 when the Marker sits immediately before an FPDU's ULPDU_Length (it then
//! belongs to, and is covered by the CRC of, that FPDU).

/// Octets between the start of two consecutive Markers.
pub const MARKER_INTERVAL: u32 = 512;
/// Octets of one Marker.
pub const MARKER_LEN: usize = 4;

/// Whether a Marker starts at stream position `pos`.
#[inline]
pub fn at_marker(pos: u32) -> bool {
    pos % MARKER_INTERVAL == 0
}

/// Octets from `pos` to the next Marker position (0 if a Marker starts at `pos`).
#[inline]
pub fn until_marker(pos: u32) -> u32 {
    (MARKER_INTERVAL - pos % MARKER_INTERVAL) % MARKER_INTERVAL
}

/// The four octets of a Marker with the given FPDUPTR (reserved half zero).
#[inline]
pub fn encode(fpduptr: u16) -> [u8; 4] {
    let [hi, lo] = fpduptr.to_be_bytes();
    [0, 0, hi, lo]
}

/// The FPDUPTR carried by four Marker octets, its two low bits treated as zero and the
/// reserved half ignored (RFC 5044 §4.3).
#[inline]
pub fn decode(marker: [u8; 4]) -> u16 {
    u16::from_be_bytes([marker[2], marker[3]]) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid() {
        assert!(at_marker(0) && at_marker(512) && at_marker(0u32.wrapping_sub(512)));
        assert_eq!(until_marker(0), 0);
        assert_eq!(until_marker(4), 508);
        assert_eq!(until_marker(0x1EC), 20);
        assert_eq!(until_marker(u32::MAX - 3), 4);
        assert_eq!(decode(encode(20)), 20);
        assert_eq!(decode([0xff, 0xff, 0, 0x17]), 0x14);
    }
}

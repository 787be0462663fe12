//! The octets of the capture: RDMAP/DDP headers, payload patterns, and where RFC
//! 5044 §4.3 puts the markers of an FPDU.

/// Markers every 512 octets of the stream (RFC 5044 §4.3).
const MARKER_INTERVAL: u32 = 512;

/// RDMAP opcodes (RFC 5040 §4.1).
pub(crate) const OP_WRITE: u8 = 0x0;
pub(crate) const OP_READ_REQUEST: u8 = 0x1;
pub(crate) const OP_READ_RESPONSE: u8 = 0x2;
pub(crate) const OP_SEND: u8 = 0x3;
pub(crate) const OP_TERMINATE: u8 = 0x7;

/// Untagged DDP header (RFC 5041 §4.3) with RDMAP control byte RV=1 + `opcode`:
/// `41 4x | reserved/inval STag | QN | MSN | MO`.
pub(crate) fn untagged(opcode: u8, qn: u32, msn: u32, mo: u32) -> Vec<u8> {
    let mut h = vec![0x41, 0x40 | opcode, 0, 0, 0, 0];
    h.extend_from_slice(&qn.to_be_bytes());
    h.extend_from_slice(&msn.to_be_bytes());
    h.extend_from_slice(&mo.to_be_bytes());
    h
}

/// Tagged DDP header (RFC 5041 §4.2), last segment: `c1 4x | STag | TO`.
pub(crate) fn tagged(opcode: u8, stag: u32, to: u64) -> Vec<u8> {
    let mut h = vec![0xc1, 0x40 | opcode];
    h.extend_from_slice(&stag.to_be_bytes());
    h.extend_from_slice(&to.to_be_bytes());
    h
}

/// Recognisable payload octets.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// What the RFC says the markers of an FPDU are: `(offset in the FPDU, FPDUPTR)` for
/// every stream position `m ≡ 0 (mod 512)` (relative to SeqStart) inside the FPDU
/// that occupies `[start, start + wire_len)`. FPDUPTR is 0 for a marker at the very
/// start of the FPDU, else `m −` the position of the FPDU's ULPDU_Length field (which
/// follows a leading marker).
pub(crate) fn rfc_markers(start: u32, wire_len: usize) -> Vec<(usize, u16)> {
    let ulpdu_length_at = if start % MARKER_INTERVAL == 0 {
        start + 4
    } else {
        start
    };
    let end = start + wire_len as u32;
    let mut m = start.next_multiple_of(MARKER_INTERVAL);
    let mut out = Vec::new();
    while m < end {
        let ptr = if m == start { 0 } else { m - ulpdu_length_at };
        out.push(((m - start) as usize, u16::try_from(ptr).unwrap()));
        m += MARKER_INTERVAL;
    }
    out
}

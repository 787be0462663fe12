//! Outbound segments handed to the driver for framing.

/// Room for the largest ULPDU header this crate emits (70 octets), rounded up.
pub const HEADER_CAPACITY: usize = 72;

/// Identifies a segment handed out by
/// [`Connection::poll_segment`](crate::Connection::poll_segment), to resolve its
/// payload and to report it transmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentToken {
    pub(crate) msg: u64,
    pub(crate) offset: u32,
    pub(crate) len: u32,
}

/// One DDP segment to frame as one FPDU: an owned header and a payload that stays in
/// the source memory (fetch it with
/// [`Connection::segment_payload`](crate::Connection::segment_payload)).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    header: [u8; HEADER_CAPACITY],
    header_len: u8,
    token: SegmentToken,
}

impl Segment {
    pub(crate) fn new(header: &[u8], token: SegmentToken) -> Self {
        let mut h = [0u8; HEADER_CAPACITY];
        h[..header.len()].copy_from_slice(header);
        Segment {
            header: h,
            header_len: header.len() as u8,
            token,
        }
    }

    /// The ULPDU header (DDP header and RDMAP header), at most 70 octets.
    pub fn header(&self) -> &[u8] {
        &self.header[..self.header_len as usize]
    }

    /// Payload length in octets.
    pub fn payload_len(&self) -> usize {
        self.token.len as usize
    }

    /// ULPDU length: header plus payload (at most the MULPDU).
    pub fn ulpdu_len(&self) -> usize {
        self.header_len as usize + self.token.len as usize
    }

    /// The token to pass to [`Connection::segment_sent`](crate::Connection::segment_sent).
    pub fn token(&self) -> SegmentToken {
        self.token
    }
}

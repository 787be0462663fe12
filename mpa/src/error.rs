//! Errors of the MPA layer and the error codes they map to on the wire.

use core::fmt;

/// MPA error codes (RFC 5044 §8, extended by RFC 6581 §8).
///
/// These are the codes carried in a Terminate message with Layer 2 (LLP) and
/// Error Type 0 (MPA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// 0x01: TCP connection closed, terminated or lost.
    TcpClosed = 0x01,
    /// 0x02: received MPA CRC does not match the computed value.
    CrcError = 0x02,
    /// 0x03: a Marker's FPDUPTR disagrees with the ULPDU_Length framing.
    MarkerMismatch = 0x03,
    /// 0x04: invalid MPA Request or Reply frame (TCP must be closed at once).
    InvalidStartupFrame = 0x04,
    /// 0x05: local catastrophic error (RFC 6581).
    LocalCatastrophic = 0x05,
    /// 0x06: insufficient IRD resources (RFC 6581).
    InsufficientIrd = 0x06,
    /// 0x07: no matching RTR option (RFC 6581).
    NoMatchingRtr = 0x07,
}

impl ErrorCode {
    /// The numeric code.
    pub fn value(self) -> u8 {
        self as u8
    }

    /// The code for a numeric value, if it is one of the defined codes.
    pub fn from_value(value: u8) -> Option<Self> {
        Some(match value {
            0x01 => Self::TcpClosed,
            0x02 => Self::CrcError,
            0x03 => Self::MarkerMismatch,
            0x04 => Self::InvalidStartupFrame,
            0x05 => Self::LocalCatastrophic,
            0x06 => Self::InsufficientIrd,
            0x07 => Self::NoMatchingRtr,
            _ => return None,
        })
    }
}

/// An error found in the bytes a peer sent: a malformed startup frame or a broken
/// FPDU stream.
///
/// Once the deframer has returned one of these it is *poisoned*: it returns the same
/// error for every later input and delivers nothing more from that half-connection
/// (RFC 5044 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MpaError {
    /// The CRC field of an FPDU does not match the CRC32c of its octets.
    CrcMismatch {
        /// CRC32c computed over the received octets.
        computed: u32,
        /// CRC value carried in the FPDU.
        received: u32,
    },
    /// A Marker's FPDUPTR does not point where the ULPDU_Length framing says the
    /// FPDU starts.
    MarkerMismatch {
        /// Stream position of the Marker, relative to the first octet of Full Operation.
        position: u32,
        /// FPDUPTR value the framing implies.
        expected: u16,
        /// FPDUPTR value found.
        found: u16,
    },
    /// The 16-octet key is neither the one expected (Request or Reply).
    BadKey,
    /// The Rev field holds a revision this implementation cannot interoperate with.
    BadRevision(u8),
    /// PD_Length exceeds 512 octets.
    PrivateDataTooLong(u16),
    /// An enhanced (RFC 6581, S=1) frame whose PD_Length is too short to hold the
    /// IRD/ORD word.
    MissingIrdOrd(u16),
    /// An FPDU's ULPDU_Length exceeds the configured maximum.
    UlpduTooLong {
        /// ULPDU_Length received.
        len: u16,
        /// The configured maximum.
        max: u16,
    },
    /// A startup frame shorter than its header or its PD_Length says (only from
    /// whole-frame parsing; the incremental reader waits for the rest instead).
    Truncated(usize),
    /// Octets followed a startup frame where the protocol allows none (a Request must
    /// not be followed by anything before the Reply has been sent).
    TrailingBytes(usize),
}

impl MpaError {
    /// The MPA error code to report for this error (RFC 5044 §8).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::CrcMismatch { .. } => ErrorCode::CrcError,
            Self::MarkerMismatch { .. } => ErrorCode::MarkerMismatch,
            Self::BadKey
            | Self::BadRevision(_)
            | Self::PrivateDataTooLong(_)
            | Self::MissingIrdOrd(_)
            | Self::Truncated(_)
            | Self::TrailingBytes(_) => ErrorCode::InvalidStartupFrame,
            // RFC 5044 has no code for a receiver's own size limit: the receiver
            // cannot continue, which RFC 6581 calls a local catastrophic error.
            Self::UlpduTooLong { .. } => ErrorCode::LocalCatastrophic,
        }
    }
}

impl fmt::Display for MpaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CrcMismatch { computed, received } => write!(
                f,
                "MPA CRC mismatch: computed {computed:#010x}, received {received:#010x}"
            ),
            Self::MarkerMismatch {
                position,
                expected,
                found,
            } => write!(
                f,
                "MPA marker at stream offset {position} has FPDUPTR {found}, expected {expected}"
            ),
            Self::BadKey => f.write_str("MPA startup frame has a wrong key"),
            Self::BadRevision(rev) => write!(f, "MPA revision {rev} is not supported"),
            Self::PrivateDataTooLong(len) => {
                write!(f, "MPA PD_Length {len} exceeds the maximum of 512")
            }
            Self::MissingIrdOrd(len) => write!(
                f,
                "enhanced MPA frame with PD_Length {len} lacks the 4-octet IRD/ORD word"
            ),
            Self::UlpduTooLong { len, max } => {
                write!(f, "MPA ULPDU_Length {len} exceeds the maximum of {max}")
            }
            Self::Truncated(n) => write!(f, "MPA startup frame truncated at {n} octets"),
            Self::TrailingBytes(n) => {
                write!(f, "{n} unexpected octets after an MPA startup frame")
            }
        }
    }
}

impl std::error::Error for MpaError {}

/// An error in a request to build an FPDU (a local misuse, never peer input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The ULPDU (header plus payload) is longer than ULPDU_Length can express or than
    /// the configured maximum.
    UlpduTooLong {
        /// Length asked for.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// With markers, the FPDU would be so long that a Marker's FPDUPTR overflows 16
    /// bits; use a ULPDU no larger than [`crate::mulpdu`] allows.
    MarkerPointerOverflow,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UlpduTooLong { len, max } => {
                write!(f, "ULPDU of {len} octets exceeds the maximum of {max}")
            }
            Self::MarkerPointerOverflow => f.write_str("FPDU too long for 16-bit marker pointers"),
        }
    }
}

impl std::error::Error for FrameError {}

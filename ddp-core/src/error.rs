//! Error types: Terminate reasons (RFC 5040 §7, RFC 5041 §7.2, RFC 5044 §8,
//! RFC 6581 §8) and the errors of the local API.

use core::fmt;

/// RDMAP remote protection error codes (Layer 0, EType 1; RFC 5040 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtectionError {
    /// 0x00 Invalid STag.
    InvalidStag,
    /// 0x01 Base or bounds violation.
    BaseBounds,
    /// 0x02 Access rights violation.
    AccessRights,
    /// 0x03 STag not associated with RDMAP stream.
    StagNotAssociated,
    /// 0x04 TO wrap.
    ToWrap,
    /// 0x09 STag cannot be invalidated.
    CannotInvalidate,
    /// 0xFF Unspecified error.
    Unspecified,
}

/// RDMAP remote operation error codes (Layer 0, EType 2; RFC 5040 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationError {
    /// 0x05 Invalid RDMAP version.
    InvalidVersion,
    /// 0x06 Unexpected OpCode.
    UnexpectedOpcode,
    /// 0x07 Catastrophic error, localized to RDMAP stream (used for IRD overflow).
    CatastrophicStream,
    /// 0x08 Catastrophic error, global.
    CatastrophicGlobal,
    /// 0x09 STag cannot be invalidated.
    CannotInvalidate,
    /// 0xFF Unspecified error.
    Unspecified,
}

/// DDP tagged buffer error codes (Layer 1, EType 1; RFC 5041 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaggedError {
    /// 0x00 Invalid STag.
    InvalidStag,
    /// 0x01 Base or bounds violation.
    BaseBounds,
    /// 0x02 STag not associated with DDP stream.
    StagNotAssociated,
    /// 0x03 TO wrap.
    ToWrap,
    /// 0x04 Invalid DDP version.
    InvalidVersion,
}

/// DDP untagged buffer error codes (Layer 1, EType 2; RFC 5041 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UntaggedError {
    /// 0x01 Invalid QN.
    InvalidQn,
    /// 0x02 Invalid MSN – no buffer available.
    NoBuffer,
    /// 0x03 Invalid MSN – MSN range is not valid.
    MsnRange,
    /// 0x04 Invalid MO.
    InvalidMo,
    /// 0x05 DDP message too long for available buffer.
    TooLong,
    /// 0x06 Invalid DDP version.
    InvalidVersion,
}

/// LLP (MPA) error codes (Layer 2, EType 0; RFC 5044 §8, RFC 6581 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlpError {
    /// 0x01 TCP connection closed, terminated or lost.
    ConnectionLost,
    /// 0x02 MPA CRC error.
    CrcError,
    /// 0x03 MPA Marker and ULPDU Length fields do not agree.
    MarkerMismatch,
    /// 0x04 Invalid MPA Request or Reply frame.
    InvalidFrame,
    /// 0x05 Local catastrophic error.
    LocalCatastrophic,
    /// 0x06 Insufficient IRD resources.
    InsufficientIrd,
    /// 0x07 No matching RTR option.
    NoMatchingRtr,
}

impl LlpError {
    /// The MPA error code.
    pub fn code(self) -> u8 {
        match self {
            LlpError::ConnectionLost => 1,
            LlpError::CrcError => 2,
            LlpError::MarkerMismatch => 3,
            LlpError::InvalidFrame => 4,
            LlpError::LocalCatastrophic => 5,
            LlpError::InsufficientIrd => 6,
            LlpError::NoMatchingRtr => 7,
        }
    }
    /// Decodes an MPA error code.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => LlpError::ConnectionLost,
            2 => LlpError::CrcError,
            3 => LlpError::MarkerMismatch,
            4 => LlpError::InvalidFrame,
            5 => LlpError::LocalCatastrophic,
            6 => LlpError::InsufficientIrd,
            7 => LlpError::NoMatchingRtr,
            _ => return None,
        })
    }
}

/// Why a stream was terminated: the (Layer, EType, Error Code) triple of a Terminate
/// message, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TerminateReason {
    /// RDMAP local catastrophic error (any code is acceptable).
    RdmapLocalCatastrophic {
        /// The error code as sent.
        code: u8,
    },
    /// RDMAP remote protection error.
    RdmapProtection(ProtectionError),
    /// RDMAP remote operation error.
    RdmapOperation(OperationError),
    /// DDP local catastrophic error (code 0).
    DdpLocalCatastrophic,
    /// DDP tagged buffer error.
    DdpTagged(TaggedError),
    /// DDP untagged buffer error.
    DdpUntagged(UntaggedError),
    /// LLP (MPA) error.
    Llp(LlpError),
    /// A triple this crate does not know.
    Unknown {
        /// Layer.
        layer: u8,
        /// Error type.
        etype: u8,
        /// Error code.
        code: u8,
    },
}

impl TerminateReason {
    /// Decodes a (layer, etype, code) triple.
    pub fn from_parts(layer: u8, etype: u8, code: u8) -> Self {
        use TerminateReason as R;
        let unknown = R::Unknown { layer, etype, code };
        match (layer, etype) {
            (0, 0) => R::RdmapLocalCatastrophic { code },
            (0, 1) => R::RdmapProtection(match code {
                0x00 => ProtectionError::InvalidStag,
                0x01 => ProtectionError::BaseBounds,
                0x02 => ProtectionError::AccessRights,
                0x03 => ProtectionError::StagNotAssociated,
                0x04 => ProtectionError::ToWrap,
                0x09 => ProtectionError::CannotInvalidate,
                0xFF => ProtectionError::Unspecified,
                _ => return unknown,
            }),
            (0, 2) => R::RdmapOperation(match code {
                0x05 => OperationError::InvalidVersion,
                0x06 => OperationError::UnexpectedOpcode,
                0x07 => OperationError::CatastrophicStream,
                0x08 => OperationError::CatastrophicGlobal,
                0x09 => OperationError::CannotInvalidate,
                0xFF => OperationError::Unspecified,
                _ => return unknown,
            }),
            (1, 0) if code == 0 => R::DdpLocalCatastrophic,
            (1, 1) => R::DdpTagged(match code {
                0x00 => TaggedError::InvalidStag,
                0x01 => TaggedError::BaseBounds,
                0x02 => TaggedError::StagNotAssociated,
                0x03 => TaggedError::ToWrap,
                0x04 => TaggedError::InvalidVersion,
                _ => return unknown,
            }),
            (1, 2) => R::DdpUntagged(match code {
                0x01 => UntaggedError::InvalidQn,
                0x02 => UntaggedError::NoBuffer,
                0x03 => UntaggedError::MsnRange,
                0x04 => UntaggedError::InvalidMo,
                0x05 => UntaggedError::TooLong,
                0x06 => UntaggedError::InvalidVersion,
                _ => return unknown,
            }),
            (2, 0) => match LlpError::from_code(code) {
                Some(e) => R::Llp(e),
                None => unknown,
            },
            _ => unknown,
        }
    }

    /// Whether the triple is one the RFCs define.
    pub fn is_known(&self) -> bool {
        !matches!(self, TerminateReason::Unknown { .. })
    }

    /// The (layer, etype, code) triple.
    pub fn to_parts(self) -> (u8, u8, u8) {
        use TerminateReason as R;
        match self {
            R::RdmapLocalCatastrophic { code } => (0, 0, code),
            R::RdmapProtection(e) => (
                0,
                1,
                match e {
                    ProtectionError::InvalidStag => 0x00,
                    ProtectionError::BaseBounds => 0x01,
                    ProtectionError::AccessRights => 0x02,
                    ProtectionError::StagNotAssociated => 0x03,
                    ProtectionError::ToWrap => 0x04,
                    ProtectionError::CannotInvalidate => 0x09,
                    ProtectionError::Unspecified => 0xFF,
                },
            ),
            R::RdmapOperation(e) => (
                0,
                2,
                match e {
                    OperationError::InvalidVersion => 0x05,
                    OperationError::UnexpectedOpcode => 0x06,
                    OperationError::CatastrophicStream => 0x07,
                    OperationError::CatastrophicGlobal => 0x08,
                    OperationError::CannotInvalidate => 0x09,
                    OperationError::Unspecified => 0xFF,
                },
            ),
            R::DdpLocalCatastrophic => (1, 0, 0),
            R::DdpTagged(e) => (
                1,
                1,
                match e {
                    TaggedError::InvalidStag => 0x00,
                    TaggedError::BaseBounds => 0x01,
                    TaggedError::StagNotAssociated => 0x02,
                    TaggedError::ToWrap => 0x03,
                    TaggedError::InvalidVersion => 0x04,
                },
            ),
            R::DdpUntagged(e) => (
                1,
                2,
                match e {
                    UntaggedError::InvalidQn => 0x01,
                    UntaggedError::NoBuffer => 0x02,
                    UntaggedError::MsnRange => 0x03,
                    UntaggedError::InvalidMo => 0x04,
                    UntaggedError::TooLong => 0x05,
                    UntaggedError::InvalidVersion => 0x06,
                },
            ),
            R::Llp(e) => (2, 0, e.code()),
            R::Unknown { layer, etype, code } => (layer, etype, code),
        }
    }
}

impl fmt::Display for TerminateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (l, t, c) = self.to_parts();
        write!(f, "{self:?} (layer {l}, type {t}, code {c:#04x})")
    }
}

/// Why a work request could not be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// The connection is no longer operational (error or terminated).
    NotOperational,
    /// The send or receive queue is at its configured depth.
    QueueFull,
    /// The message is longer than 2^32 − 1 octets.
    TooLong,
    /// The remote tagged offset plus the length wraps around 2^64.
    ToWrap,
    /// The local STag of a Read is not registered, not in scope, lacks local write
    /// access, or the range is out of its bounds.
    LocalProtection,
    /// A receive buffer was created read-only.
    NotWritable,
    /// RFC 7306 operations are not enabled on this connection.
    ExtensionsDisabled,
    /// The negotiated ORD is 0, so no RDMA Read or Atomic can ever be issued.
    NoOrd,
}

/// Why a memory registration failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegError {
    /// The table has no free index left.
    TableFull,
    /// The base tagged offset plus the length wraps around 2^64.
    ToWrap,
    /// The requested range lies outside the supplied buffer.
    BadRange,
}

/// Why an STag operation (deregister, invalidate, copy) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagError {
    /// No such STag (unknown index, stale key, or already deregistered).
    Invalid,
    /// The STag is not associated with this connection.
    NotAssociated,
    /// The range is outside the region.
    Bounds,
}

/// Invalid connection configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// MULPDU below the RFC 5044 minimum of 128.
    MulpduTooSmall,
}

/// Why the core refused a remote or local access to a region (the checks in
/// `stag`), and the Terminate reason each refusal becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessError {
    /// Unknown index, stale key, deregistered or invalidated.
    InvalidStag,
    /// Registered for another connection.
    NotAssociated,
    /// Rights missing.
    Rights,
    /// TO + length wraps.
    ToWrap,
    /// Outside base and bounds.
    Bounds,
}

impl AccessError {
    /// The Terminate reason for a refused tagged placement (an inbound RDMA Write):
    /// DDP tagged buffer errors, except missing rights, an RDMAP protection error.
    pub(crate) fn tagged_reason(self) -> TerminateReason {
        match self {
            AccessError::InvalidStag => TerminateReason::DdpTagged(TaggedError::InvalidStag),
            AccessError::NotAssociated => {
                TerminateReason::DdpTagged(TaggedError::StagNotAssociated)
            }
            AccessError::Rights => TerminateReason::RdmapProtection(ProtectionError::AccessRights),
            AccessError::ToWrap => TerminateReason::DdpTagged(TaggedError::ToWrap),
            AccessError::Bounds => TerminateReason::DdpTagged(TaggedError::BaseBounds),
        }
    }

    /// The Terminate reason for a Read Response whose sink (our own region) is
    /// refused: a sink without local write access is an invalid STag to the peer.
    pub(crate) fn read_sink_reason(self) -> TerminateReason {
        match self {
            AccessError::Rights => TerminateReason::DdpTagged(TaggedError::InvalidStag),
            e => e.tagged_reason(),
        }
    }

    /// The RDMAP remote protection code for a refused Read Request source or Atomic
    /// target.
    pub(crate) fn source_protection(self) -> ProtectionError {
        match self {
            AccessError::InvalidStag => ProtectionError::InvalidStag,
            AccessError::NotAssociated => ProtectionError::StagNotAssociated,
            AccessError::Rights => ProtectionError::AccessRights,
            AccessError::ToWrap => ProtectionError::ToWrap,
            AccessError::Bounds => ProtectionError::BaseBounds,
        }
    }
}

/// The local API errors display as their names.
macro_rules! display_as_debug {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl std::error::Error for $t {}
    )*};
}

display_as_debug!(PostError, RegError, StagError, ConfigError);

impl From<eta_mpa::ErrorCode> for LlpError {
    fn from(c: eta_mpa::ErrorCode) -> Self {
        LlpError::from_code(c.value()).unwrap_or(LlpError::LocalCatastrophic)
    }
}

impl From<&eta_mpa::MpaError> for LlpError {
    fn from(e: &eta_mpa::MpaError) -> Self {
        e.code().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_roundtrip() {
        for layer in 0..4u8 {
            for etype in 0..4u8 {
                for code in 0..=255u8 {
                    let r = TerminateReason::from_parts(layer, etype, code);
                    assert_eq!(r.to_parts(), (layer, etype, code));
                }
            }
        }
        assert_eq!(
            TerminateReason::from_parts(0, 2, 7),
            TerminateReason::RdmapOperation(OperationError::CatastrophicStream)
        );
        assert!(!TerminateReason::from_parts(0, 2, 2).is_known());
    }
}

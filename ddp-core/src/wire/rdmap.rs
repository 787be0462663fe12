//! The RDMAP control byte (RFC 5040 §4.1) and opcodes (RFC 5040, RFC 7306).

/// RV field mask.
pub const VERSION_MASK: u8 = 0xC0;
/// Opcode field mask.
pub const OPCODE_MASK: u8 = 0x0F;
/// The RDMAP version this stack sends and accepts (IETF RDMAP, RV = 01b).
pub const RDMAP_VERSION: u8 = 1;

/// RDMAP message opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// RDMA Write (tagged).
    Write = 0x0,
    /// RDMA Read Request (untagged, QN 1).
    ReadRequest = 0x1,
    /// RDMA Read Response (tagged).
    ReadResponse = 0x2,
    /// Send (QN 0).
    Send = 0x3,
    /// Send with Invalidate.
    SendInvalidate = 0x4,
    /// Send with Solicited Event.
    SendSe = 0x5,
    /// Send with Solicited Event and Invalidate.
    SendSeInvalidate = 0x6,
    /// Terminate (QN 2).
    Terminate = 0x7,
    /// RFC 7306 Immediate Data (QN 0).
    ImmediateData = 0x8,
    /// RFC 7306 Immediate Data with Solicited Event (QN 0).
    ImmediateDataSe = 0x9,
    /// RFC 7306 Atomic Request (QN 1).
    AtomicRequest = 0xA,
    /// RFC 7306 Atomic Response (QN 3).
    AtomicResponse = 0xB,
}

impl Opcode {
    /// Decodes a 4-bit opcode; `None` for the reserved values 0xC..0xF.
    pub fn from_u8(v: u8) -> Option<Opcode> {
        Some(match v {
            0x0 => Opcode::Write,
            0x1 => Opcode::ReadRequest,
            0x2 => Opcode::ReadResponse,
            0x3 => Opcode::Send,
            0x4 => Opcode::SendInvalidate,
            0x5 => Opcode::SendSe,
            0x6 => Opcode::SendSeInvalidate,
            0x7 => Opcode::Terminate,
            0x8 => Opcode::ImmediateData,
            0x9 => Opcode::ImmediateDataSe,
            0xA => Opcode::AtomicRequest,
            0xB => Opcode::AtomicResponse,
            _ => return None,
        })
    }

    /// Whether the message uses the tagged buffer model.
    pub fn is_tagged(self) -> bool {
        matches!(self, Opcode::Write | Opcode::ReadResponse)
    }

    /// Whether the opcode belongs to RFC 7306.
    pub fn is_extension(self) -> bool {
        matches!(
            self,
            Opcode::ImmediateData
                | Opcode::ImmediateDataSe
                | Opcode::AtomicRequest
                | Opcode::AtomicResponse
        )
    }

    /// The DDP queue number of an untagged opcode (RFC 5040 §4.1, RFC 7306 §10.2).
    pub fn queue(self) -> Option<u32> {
        match self {
            Opcode::Send
            | Opcode::SendInvalidate
            | Opcode::SendSe
            | Opcode::SendSeInvalidate
            | Opcode::ImmediateData
            | Opcode::ImmediateDataSe => Some(0),
            Opcode::ReadRequest | Opcode::AtomicRequest => Some(1),
            Opcode::Terminate => Some(2),
            Opcode::AtomicResponse => Some(3),
            Opcode::Write | Opcode::ReadResponse => None,
        }
    }

    /// Whether the message carries the Solicited Event flag.
    pub fn solicited(self) -> bool {
        matches!(
            self,
            Opcode::SendSe | Opcode::SendSeInvalidate | Opcode::ImmediateDataSe
        )
    }

    /// Whether the message carries an Invalidate STag.
    pub fn invalidates(self) -> bool {
        matches!(self, Opcode::SendInvalidate | Opcode::SendSeInvalidate)
    }
}

/// A view of the RDMAP control byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdmapControl(pub u8);

impl RdmapControl {
    /// Control byte for `op` with RV = 1 and Rsv = 0.
    pub const fn new(op: Opcode) -> Self {
        RdmapControl((RDMAP_VERSION << 6) | op as u8)
    }
    /// RV: RDMAP version.
    pub fn version(self) -> u8 {
        (self.0 & VERSION_MASK) >> 6
    }
    /// The raw 4-bit opcode.
    pub fn raw_opcode(self) -> u8 {
        self.0 & OPCODE_MASK
    }
    /// The decoded opcode, `None` if reserved.
    pub fn opcode(self) -> Option<Opcode> {
        Opcode::from_u8(self.raw_opcode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes() {
        assert_eq!(RdmapControl::new(Opcode::Write).0, 0x40);
        assert_eq!(RdmapControl::new(Opcode::ReadRequest).0, 0x41);
        assert_eq!(RdmapControl::new(Opcode::Send).0, 0x43);
        assert_eq!(RdmapControl::new(Opcode::Terminate).0, 0x47);
        assert_eq!(RdmapControl::new(Opcode::AtomicResponse).0, 0x4B);
        let c = RdmapControl(0x86);
        assert_eq!(c.version(), 2);
        assert_eq!(c.opcode(), Some(Opcode::SendSeInvalidate));
        assert_eq!(RdmapControl(0x4C).opcode(), None);
        for v in 0..16u8 {
            if let Some(op) = Opcode::from_u8(v) {
                assert_eq!(op as u8, v);
                assert_eq!(op.is_tagged(), op.queue().is_none());
            }
        }
    }
}

//! The RFC 6581 §9 IRD/ORD word: the first four octets of the private data of an
//! enhanced (S=1, Rev ≥ 2) MPA Request or Reply.

/// Value of an IRD or ORD field meaning "no automatic negotiation" (RFC 6581 §9.1).
pub const NO_NEGOTIATION: u16 = 0x3FFF;

/// Largest value an IRD or ORD field can carry (14 bits).
pub const MAX_IRD_ORD: u16 = 0x3FFF;

/// Length of the IRD/ORD word.
pub const LEN: usize = 4;

const FLAG_A: u16 = 0x8000;
const FLAG_B: u16 = 0x4000;
const FLAG_C: u16 = 0x8000;
const FLAG_D: u16 = 0x4000;

/// The decoded IRD/ORD word with the RTR flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrdOrd {
    /// A: peer-to-peer model, an RTR message is sent after the Reply.
    pub peer_to_peer: bool,
    /// B: zero-length Send RTR requested (initiator) or supported (responder).
    pub send_rtr: bool,
    /// Inbound RDMA Read queue depth (14 bits).
    pub ird: u16,
    /// C: zero-length RDMA Write RTR.
    pub write_rtr: bool,
    /// D: zero-length RDMA Read RTR.
    pub read_rtr: bool,
    /// Outbound RDMA Read queue depth (14 bits).
    pub ord: u16,
}

impl IrdOrd {
    /// Decodes the four octets (network order).
    ///
    /// ```
    /// let w = eta_mpa::IrdOrd::parse([0x80, 0x01, 0xc0, 0x01]);
    /// assert!(w.peer_to_peer && w.write_rtr && w.read_rtr && !w.send_rtr);
    /// assert_eq!((w.ird, w.ord), (1, 1));
    /// ```
    pub fn parse(bytes: [u8; 4]) -> Self {
        let hi = u16::from_be_bytes([bytes[0], bytes[1]]);
        let lo = u16::from_be_bytes([bytes[2], bytes[3]]);
        Self {
            peer_to_peer: hi & FLAG_A != 0,
            send_rtr: hi & FLAG_B != 0,
            ird: hi & MAX_IRD_ORD,
            write_rtr: lo & FLAG_C != 0,
            read_rtr: lo & FLAG_D != 0,
            ord: lo & MAX_IRD_ORD,
        }
    }

    /// Encodes the word (network order). IRD and ORD above 14 bits are clamped to
    /// [`MAX_IRD_ORD`]; RFC 6581 requires B, C and D to be zero when A is zero, so
    /// they are only sent with A set.
    pub fn emit(&self) -> [u8; 4] {
        let mut hi = self.ird.min(MAX_IRD_ORD);
        let mut lo = self.ord.min(MAX_IRD_ORD);
        if self.peer_to_peer {
            hi |= FLAG_A;
            if self.send_rtr {
                hi |= FLAG_B;
            }
            if self.write_rtr {
                lo |= FLAG_C;
            }
            if self.read_rtr {
                lo |= FLAG_D;
            }
        }
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        [a, b, c, d]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_flag_combinations() {
        for bits in 0..16u8 {
            let w = IrdOrd {
                peer_to_peer: true,
                send_rtr: bits & 1 != 0,
                write_rtr: bits & 2 != 0,
                read_rtr: bits & 4 != 0,
                ird: u16::from(bits) * 1000,
                ord: NO_NEGOTIATION,
            };
            assert_eq!(IrdOrd::parse(w.emit()), w);
        }
    }

    #[test]
    fn rtr_flags_need_peer_to_peer() {
        let w = IrdOrd {
            peer_to_peer: false,
            send_rtr: true,
            write_rtr: true,
            read_rtr: true,
            ird: 1,
            ord: 1,
        };
        assert_eq!(w.emit(), [0, 1, 0, 1]);
    }

    #[test]
    fn siw_p2p_word() {
        // docs/wire-facts.md §7.3: A=1, IRD 1; C+D, ORD 1.
        let w = IrdOrd {
            peer_to_peer: true,
            ird: 1,
            write_rtr: true,
            read_rtr: true,
            ord: 1,
            send_rtr: false,
        };
        assert_eq!(w.emit(), [0x80, 0x01, 0xc0, 0x01]);
    }
}

//! Connection setup decisions as pure functions: local configuration plus the peer's
//! startup frame in, the negotiated connection parameters (or a reject) out.
//!
//! The rules are RFC 5044 §7.1 and RFC 6581 §5, §9, with the choices siw makes where
//! the RFCs leave room (docs/wire-facts.md §1.3, §2.4, §2.5): IRD/ORD are adjusted the relaxed
//! way (clamped, not refused), and a Responder facing an RTR request answers with
//! exactly one RTR type.

use core::fmt;

use crate::error::ErrorCode;
use crate::startup::frame::{FrameKind, MAX_PRIVATE_DATA, MAX_REVISION, StartupRepr};
use crate::startup::ird_ord::{self, IrdOrd, NO_NEGOTIATION};

/// A zero-length Ready-To-Receive message type (RFC 6581 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RtrType {
    /// Zero-length Send (flag B).
    Send,
    /// Zero-length RDMA Write (flag C).
    Write,
    /// Zero-length RDMA Read (flag D).
    Read,
}

/// A set of RTR types: offered by an Initiator, supported by a Responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtrTypes {
    /// Zero-length Send.
    pub send: bool,
    /// Zero-length RDMA Write.
    pub write: bool,
    /// Zero-length RDMA Read.
    pub read: bool,
}

impl RtrTypes {
    /// Write and Read: what siw offers and supports, and eta's default.
    pub const WRITE_READ: Self = Self {
        send: false,
        write: true,
        read: true,
    };

    fn contains(self, t: RtrType) -> bool {
        match t {
            RtrType::Send => self.send,
            RtrType::Write => self.write,
            RtrType::Read => self.read,
        }
    }

    fn of_word(w: &IrdOrd) -> Self {
        Self {
            send: w.send_rtr,
            write: w.write_rtr,
            read: w.read_rtr,
        }
    }

    /// The preferred member: Write, then Read, then Send (siw's order; a Send RTR
    /// needs a receive posted at the peer).
    fn preferred(self) -> Option<RtrType> {
        [RtrType::Write, RtrType::Read, RtrType::Send]
            .into_iter()
            .find(|t| self.contains(*t))
    }

    fn intersect(self, other: Self) -> Self {
        Self {
            send: self.send && other.send,
            write: self.write && other.write,
            read: self.read && other.read,
        }
    }
}

/// One endpoint's wishes and limits for connection setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// MPA revision to speak: 1 (RFC 5044) or 2 (RFC 6581 enhanced). Default 2.
    pub revision: u8,
    /// Ask for CRC. CRC is on when either side asks (RFC 5044 §7.1.1); RFC 5044 §4.4
    /// makes "on" the default.
    pub crc: bool,
    /// Ask the peer to insert markers in what it sends. Default off.
    pub want_markers: bool,
    /// Agree to insert markers when the peer asks. When false, a peer that asks is
    /// rejected, as siw does. Default on (RFC 5044 requires every sender to be able to).
    pub send_markers: bool,
    /// Inbound RDMA Read queue depth wanted. Default 16.
    pub ird: u16,
    /// Outbound RDMA Read queue depth wanted. Default 16.
    pub ord: u16,
    /// The largest IRD this endpoint can provide when the peer needs more
    /// (RFC 6581 §9.1). Default 128, siw's limit.
    pub max_ird: u16,
    /// Initiator: request the peer-to-peer model (flag A) so that an RTR message
    /// opens Full Operation and the Responder may send as soon as it has it.
    /// Default on (RFC 6581; siw as Responder honours it).
    pub peer_to_peer: bool,
    /// Initiator: RTR types offered. Responder: RTR types supported.
    /// Default Write and Read.
    pub rtr: RtrTypes,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            revision: 2,
            crc: true,
            want_markers: false,
            send_markers: true,
            ird: 16,
            ord: 16,
            max_ird: 128,
            peer_to_peer: true,
            rtr: RtrTypes::WRITE_READ,
        }
    }
}

impl LocalConfig {
    /// The configuration to retry with after an RFC 5044-only peer closed the
    /// connection on an enhanced Request (RFC 6581 §10): Rev 1, no RTR. `None` if
    /// this configuration already is Rev 1.
    pub fn rev1_fallback(&self) -> Option<Self> {
        (self.revision >= 2).then(|| Self {
            revision: 1,
            peer_to_peer: false,
            ..self.clone()
        })
    }

    fn check(&self, private_data: &[u8]) -> Result<(), NegotiationError> {
        if self.revision == 0 || self.revision > MAX_REVISION {
            return Err(NegotiationError::UnsupportedRevision(self.revision));
        }
        let limit = if self.revision >= 2 {
            MAX_PRIVATE_DATA - ird_ord::LEN
        } else {
            MAX_PRIVATE_DATA
        };
        if private_data.len() > limit {
            return Err(NegotiationError::PrivateDataTooLong {
                len: private_data.len(),
                max: limit,
            });
        }
        Ok(())
    }
}

/// What both ends agreed on; the engine configures framing and DDP from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// MPA revision in use.
    pub revision: u8,
    /// Whether RFC 6581 enhanced establishment was used (IRD/ORD exchanged).
    pub enhanced: bool,
    /// CRC generated and checked in both directions.
    pub crc: bool,
    /// This endpoint inserts markers in what it sends.
    pub markers_tx: bool,
    /// The peer inserts markers in what it sends.
    pub markers_rx: bool,
    /// This endpoint's inbound RDMA Read queue depth.
    pub ird: u16,
    /// This endpoint's outbound RDMA Read queue depth.
    pub ord: u16,
    /// The peer's IRD/ORD word as it was received, for the ULP (RFC 6581 §9.1).
    pub peer_ird_ord: Option<IrdOrd>,
    /// The RTR message that opens Full Operation (sent by the Initiator), if the
    /// peer-to-peer model was agreed.
    pub rtr: Option<RtrType>,
}

/// Why a connection setup did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The peer answered with a Reply with R=1.
    Rejected {
        /// The peer's private data (ULP part) in the reject.
        private_data: Vec<u8>,
    },
    /// The peer requires markers from this endpoint, which is configured not to send
    /// them.
    MarkersUnsupported,
    /// The Reply carries a revision higher than the Request's.
    RevisionMismatch {
        /// Revision this endpoint sent.
        sent: u8,
        /// Revision received.
        received: u8,
    },
    /// The configuration asks for a revision other than 1 or 2.
    UnsupportedRevision(u8),
    /// Local private data too long for the frame.
    PrivateDataTooLong {
        /// Octets given.
        len: usize,
        /// Most octets allowed.
        max: usize,
    },
    /// The peer's frame is of the wrong kind (a Reply where a Request belongs, or the
    /// reverse).
    WrongFrameKind,
    /// The peer-to-peer model was agreed but no RTR type is usable by both ends
    /// (RFC 6581 §8 code 0x07).
    NoMatchingRtr,
    /// The peer's ORD needs more inbound Read resources than this endpoint has
    /// (RFC 6581 §8 code 0x06).
    InsufficientIrd {
        /// IRD the peer needs.
        required: u16,
        /// IRD this endpoint can provide.
        max: u16,
    },
}

impl NegotiationError {
    /// The MPA error code a Terminate for this failure carries, where the RFCs
    /// prescribe one (the Initiator sends it before closing, RFC 6581 §9).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::NoMatchingRtr => Some(ErrorCode::NoMatchingRtr),
            Self::InsufficientIrd { .. } => Some(ErrorCode::InsufficientIrd),
            Self::RevisionMismatch { .. } | Self::WrongFrameKind => {
                Some(ErrorCode::InvalidStartupFrame)
            }
            _ => None,
        }
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected { private_data } => write!(
                f,
                "peer rejected the connection ({} octets of private data)",
                private_data.len()
            ),
            Self::MarkersUnsupported => {
                f.write_str("peer requires MPA markers, which are disabled here")
            }
            Self::RevisionMismatch { sent, received } => {
                write!(
                    f,
                    "MPA Reply revision {received} above the Request's {sent}"
                )
            }
            Self::UnsupportedRevision(r) => write!(f, "MPA revision {r} is not supported"),
            Self::PrivateDataTooLong { len, max } => {
                write!(f, "private data of {len} octets exceeds {max}")
            }
            Self::WrongFrameKind => f.write_str("unexpected MPA frame kind"),
            Self::NoMatchingRtr => f.write_str("no RTR type usable by both ends"),
            Self::InsufficientIrd { required, max } => {
                write!(f, "peer needs IRD {required}, at most {max} available")
            }
        }
    }
}

impl std::error::Error for NegotiationError {}

/// The Initiator's Request for `cfg` carrying `private_data`.
pub fn request<'a>(
    cfg: &LocalConfig,
    private_data: &'a [u8],
) -> Result<StartupRepr<'a>, NegotiationError> {
    cfg.check(private_data)?;
    let ird_ord = (cfg.revision >= 2).then_some(IrdOrd {
        peer_to_peer: cfg.peer_to_peer,
        send_rtr: cfg.rtr.send,
        write_rtr: cfg.rtr.write,
        read_rtr: cfg.rtr.read,
        ird: cfg.ird,
        ord: if cfg.peer_to_peer && cfg.rtr.read && cfg.ord == 0 {
            1
        } else {
            cfg.ord
        },
    });
    Ok(StartupRepr {
        kind: FrameKind::Request,
        markers: cfg.want_markers,
        crc: cfg.crc,
        reject: false,
        rev: cfg.revision,
        ird_ord,
        private_data,
    })
}

/// The Initiator's decision on the Responder's Reply.
pub fn on_reply(
    cfg: &LocalConfig,
    reply: &StartupRepr<'_>,
) -> Result<Negotiated, NegotiationError> {
    if reply.kind != FrameKind::Reply {
        return Err(NegotiationError::WrongFrameKind);
    }
    if reply.reject {
        return Err(NegotiationError::Rejected {
            private_data: reply.private_data.to_vec(),
        });
    }
    if reply.rev > cfg.revision {
        return Err(NegotiationError::RevisionMismatch {
            sent: cfg.revision,
            received: reply.rev,
        });
    }
    if reply.markers && !cfg.send_markers {
        return Err(NegotiationError::MarkersUnsupported);
    }
    let mut n = Negotiated {
        revision: reply.rev,
        enhanced: false,
        crc: cfg.crc || reply.crc,
        markers_tx: reply.markers,
        markers_rx: cfg.want_markers,
        ird: cfg.ird,
        ord: cfg.ord,
        peer_ird_ord: None,
        rtr: None,
    };
    // An unenhanced Reply (an RFC 5044 Responder that accepted anyway) leaves the
    // local IRD/ORD and the client-server model in force.
    let Some(word) = reply.ird_ord.filter(|_| cfg.revision >= 2) else {
        return Ok(n);
    };
    n.enhanced = true;
    n.peer_ird_ord = Some(word);
    // ORD ≤ Responder IRD; IRD ≥ Responder ORD (RFC 6581 §9.1); 0x3FFF keeps ours.
    if word.ird != NO_NEGOTIATION {
        n.ord = cfg.ord.min(word.ird);
    }
    if word.ord != NO_NEGOTIATION && word.ord > cfg.ird {
        if word.ord > cfg.max_ird {
            return Err(NegotiationError::InsufficientIrd {
                required: word.ord,
                max: cfg.max_ird,
            });
        }
        n.ird = word.ord;
    }
    if cfg.peer_to_peer && word.peer_to_peer {
        let mutual = RtrTypes::of_word(&word).intersect(cfg.rtr);
        let rtr = mutual.preferred().ok_or(NegotiationError::NoMatchingRtr)?;
        if rtr == RtrType::Read {
            n.ord = n.ord.max(1);
        }
        n.rtr = Some(rtr);
    }
    Ok(n)
}

/// The Responder's decision on the Initiator's Request. An `Err` means the Request
/// must be answered with [`reject`] (for errors with a code) and the connection closed.
pub fn on_request(
    cfg: &LocalConfig,
    req: &StartupRepr<'_>,
) -> Result<Negotiated, NegotiationError> {
    if req.kind != FrameKind::Request {
        return Err(NegotiationError::WrongFrameKind);
    }
    if cfg.revision == 0 || cfg.revision > MAX_REVISION {
        return Err(NegotiationError::UnsupportedRevision(cfg.revision));
    }
    if req.markers && !cfg.send_markers {
        return Err(NegotiationError::MarkersUnsupported);
    }
    let revision = req.rev.min(cfg.revision);
    let mut n = Negotiated {
        revision,
        enhanced: false,
        crc: cfg.crc || req.crc,
        markers_tx: req.markers,
        markers_rx: cfg.want_markers,
        ird: cfg.ird,
        ord: cfg.ord,
        peer_ird_ord: None,
        rtr: None,
    };
    // An enhanced Request gets an enhanced Reply; an unenhanced one, or a Responder
    // configured for Rev 1, gets an unenhanced Reply (RFC 6581 §10).
    let Some(word) = req.ird_ord.filter(|_| revision >= 2) else {
        return Ok(n);
    };
    n.enhanced = true;
    n.peer_ird_ord = Some(word);
    if word.ird != NO_NEGOTIATION {
        n.ord = cfg.ord.min(word.ird);
    }
    if word.ord != NO_NEGOTIATION && word.ord > cfg.ird {
        // Relaxed negotiation, as siw: raise IRD as far as we can; the Initiator then
        // lowers its ORD to our IRD.
        n.ird = word.ord.min(cfg.max_ird.max(cfg.ird));
    }
    if word.peer_to_peer {
        // Exactly one type: a mutual one if any, else one we support (RFC 6581 §9.2).
        let offered = RtrTypes::of_word(&word);
        let rtr = offered
            .intersect(cfg.rtr)
            .preferred()
            .or_else(|| cfg.rtr.preferred())
            .ok_or(NegotiationError::NoMatchingRtr)?;
        if rtr == RtrType::Read {
            n.ird = n.ird.max(1);
        }
        n.rtr = Some(rtr);
    }
    Ok(n)
}

/// The Responder's accepting Reply for a Request it decided on with [`on_request`].
pub fn reply<'a>(
    cfg: &LocalConfig,
    req: &StartupRepr<'_>,
    n: &Negotiated,
    private_data: &'a [u8],
) -> Result<StartupRepr<'a>, NegotiationError> {
    let cfg_for_check = LocalConfig {
        revision: n.revision,
        ..cfg.clone()
    };
    cfg_for_check.check(private_data)?;
    let ird_ord = n.enhanced.then(|| {
        let peer = req.ird_ord.unwrap_or_default();
        IrdOrd {
            peer_to_peer: n.rtr.is_some(),
            send_rtr: n.rtr == Some(RtrType::Send),
            write_rtr: n.rtr == Some(RtrType::Write),
            read_rtr: n.rtr == Some(RtrType::Read),
            ird: if peer.ord == NO_NEGOTIATION {
                NO_NEGOTIATION
            } else {
                n.ird
            },
            ord: if peer.ird == NO_NEGOTIATION {
                NO_NEGOTIATION
            } else {
                n.ord
            },
        }
    });
    Ok(StartupRepr {
        kind: FrameKind::Reply,
        markers: n.markers_rx,
        crc: n.crc,
        reject: false,
        rev: n.revision,
        ird_ord,
        private_data,
    })
}

/// A rejecting Reply (R=1) to `req`, in the Request's revision and enhancement, with
/// `private_data` truncated to what the frame can carry.
pub fn reject<'a>(
    cfg: &LocalConfig,
    req: &StartupRepr<'_>,
    private_data: &'a [u8],
) -> StartupRepr<'a> {
    let rev = req.rev.clamp(1, cfg.revision.clamp(1, MAX_REVISION));
    let enhanced = req.enhanced() && rev >= 2;
    let max = MAX_PRIVATE_DATA - if enhanced { ird_ord::LEN } else { 0 };
    StartupRepr {
        kind: FrameKind::Reply,
        markers: false,
        crc: cfg.crc || req.crc,
        reject: true,
        rev,
        ird_ord: enhanced.then_some(IrdOrd {
            ird: cfg.ird,
            ord: cfg.ord,
            ..IrdOrd::default()
        }),
        private_data: &private_data[..private_data.len().min(max)],
    }
}

//! The life cycle of a connection on its engine thread.
//!
//! ```text
//!            Close posted              our FIN written
//!   Open ─────────────────▶ Closing ─────────────────▶ FinSent
//!    │                         │                          │
//!    │ peer's FIN between      │ peer's FIN between       │ peer's FIN between
//!    │ two messages            │ two messages             │ two messages
//!    ▼                         ▼                          ▼
//!   PeerClosed ◀───────────────┘                        Closed
//!    │                                                    ▲
//!    └────────────────── our FIN written ─────────────────┘
//!
//!   any state but Closed ── lost TCP connection, Terminate sent or received,
//!                           abort, setup refused ──▶ Failed
//! ```
//!
//! `Closed` and `Failed` are final; the worker lets go of a connection in
//! `Closed`, or in `Failed` once nothing is left in flight (see
//! [`Life::finished`]). The application's view ([`crate::ConnState`]) is coarser
//! and set alongside: `Closing` from a close or the peer's FIN, `Closed` at the
//! release of a connection that did not fail, `Failed` with the error.

/// Where a connection is in its life (see the module docs for the transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    /// Full Operation both ways.
    Open,
    /// This end closes: queued work finishes, then FIN. The peer may still send.
    Closing,
    /// The peer closed its half between two messages: this end finishes what it
    /// has to send, then closes its half too.
    PeerClosed,
    /// Our FIN is out; reading until the peer's.
    FinSent,
    /// Both halves closed in order.
    Closed,
    /// The connection failed (the error is recorded in the shared half); what is
    /// still in flight is written out (a Terminate), then the worker lets go.
    Failed,
}

impl Life {
    /// A close was posted: `Open` → `Closing`; later states are already closing.
    pub fn close(self) -> Self {
        match self {
            Self::Open => Self::Closing,
            other => other,
        }
    }

    /// The peer's FIN arrived between two messages: `Open`/`Closing` →
    /// `PeerClosed`, `FinSent` → `Closed`.
    pub fn peer_fin(self) -> Self {
        match self {
            Self::Open | Self::Closing => Self::PeerClosed,
            Self::FinSent => Self::Closed,
            other => other,
        }
    }

    /// Our FIN was written: `Closing` → `FinSent`, `PeerClosed` → `Closed`.
    pub fn fin_written(self) -> Self {
        match self {
            Self::Closing => Self::FinSent,
            Self::PeerClosed => Self::Closed,
            other => other,
        }
    }

    /// The socket may still be read (the peer's half is open and nothing failed).
    pub fn reads(self) -> bool {
        matches!(self, Self::Open | Self::Closing | Self::FinSent)
    }

    /// Our FIN is due once nothing is left to send.
    pub fn wants_fin(self) -> bool {
        matches!(self, Self::Closing | Self::PeerClosed)
    }

    /// The peer's half is closed in order (end of stream for `read()`).
    pub fn peer_done(self) -> bool {
        matches!(self, Self::PeerClosed | Self::Closed)
    }

    /// The connection failed.
    pub fn failed(self) -> bool {
        self == Self::Failed
    }

    /// The worker may let go: closed both ways, or failed with nothing in flight
    /// (`tx_empty`).
    pub fn finished(self, tx_empty: bool) -> bool {
        self == Self::Closed || (self == Self::Failed && tx_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::Life;

    #[test]
    fn graceful_close_either_side_first() {
        let ours = Life::Open.close().fin_written().peer_fin();
        assert_eq!(ours, Life::Closed);
        let theirs = Life::Open.peer_fin().close().fin_written();
        assert_eq!(theirs, Life::Closed);
        let both = Life::Open.close().peer_fin().fin_written();
        assert_eq!(both, Life::Closed);
    }

    #[test]
    fn final_states_stay() {
        for s in [Life::Closed, Life::Failed] {
            assert_eq!(s.close().peer_fin().fin_written(), s);
            assert!(!s.reads() && !s.wants_fin());
        }
        assert!(Life::Failed.finished(true) && !Life::Failed.finished(false));
        assert!(Life::Closed.finished(false));
    }

    #[test]
    fn reading_stops_at_the_peers_fin() {
        assert!(Life::Open.reads() && Life::Closing.reads() && Life::FinSent.reads());
        assert!(!Life::PeerClosed.reads());
        assert!(Life::PeerClosed.peer_done() && !Life::FinSent.peer_done());
    }
}

//! The Initiator's RTR hold. siw as Responder processes every FPDU that is already
//! queued when the RTR arrives and only then reports the connection established,
//! so rping (and other rdma_cm programs) can see their first receive complete
//! before `ESTABLISHED` and lose track of their state. Sending the RTR alone and
//! waiting until the peer's TCP acknowledged it (at most [`RTR_HOLD`]) lets the
//! peer report the connection before any data (see `docs/interop.md`).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::sys;

/// Longest wait for the peer's TCP to acknowledge the RTR.
const RTR_HOLD: Duration = Duration::from_millis(20);

/// Progress of the Initiator's RTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RtrHold {
    /// No RTR, or it is out and acknowledged.
    Done,
    /// The RTR is still to be sent.
    Unsent,
    /// The RTR was written at this instant; waiting for its acknowledgement.
    Sent(Instant),
}

impl RtrHold {
    /// The hold of a connection that sends an RTR (`rtr`) or not.
    pub fn new(rtr: bool) -> Self {
        if rtr { Self::Unsent } else { Self::Done }
    }

    /// Most segments to frame now, given how many were framed so far: the RTR is
    /// the first segment and goes out alone.
    pub fn frame_limit(self, framed: u64) -> usize {
        match self {
            Self::Unsent if framed > 0 => 0,
            Self::Unsent => 1,
            _ => usize::MAX,
        }
    }

    /// After a write while the RTR was unsent: once it is fully written
    /// (`written`), the wait for its acknowledgement starts.
    pub fn on_written(&mut self, written: bool) {
        if *self == Self::Unsent && written {
            *self = Self::Sent(Instant::now());
        }
    }

    /// Whether FPDUs after the RTR may go: the peer's TCP acknowledged it (nothing
    /// unacknowledged on socket `fd`) or [`RTR_HOLD`] passed.
    pub fn released(&mut self, fd: RawFd) -> bool {
        match *self {
            Self::Done | Self::Unsent => true,
            Self::Sent(at) => {
                if sys::unacked(fd) == Some(0) || at.elapsed() >= RTR_HOLD {
                    *self = Self::Done;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether the connection waits on the hold (a timer-like condition) and must
    /// be visited again without an event.
    pub fn waiting(self) -> bool {
        matches!(self, Self::Sent(_))
    }
}

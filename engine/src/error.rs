//! Errors of connection setup and of established connections.

use std::fmt;
use std::io;
use std::sync::Arc;

use eta_ddp_core::{
    ConfigError, PostError, ReceivedTerminate, RegError, StagError, TerminateReason,
};
use eta_mpa::{MpaError, NegotiationError};

/// Why a connection could not be set up, or why it ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A socket call failed.
    Io(io::Error),
    /// The peer's MPA Request or Reply was malformed.
    Mpa(MpaError),
    /// Connection setup failed: the peer rejected it (with its private data), or
    /// the two ends could not agree (markers, RTR, IRD).
    Negotiation(NegotiationError),
    /// The peer did not send its Request or Reply in time.
    Timeout,
    /// The peer closed the TCP connection during setup.
    PeerClosed,
    /// The peer sent a Terminate.
    Terminated(ReceivedTerminate),
    /// This end detected a protocol violation by the peer and sent a Terminate.
    Protocol(TerminateReason),
    /// The TCP connection was reset or lost.
    ConnectionLost(io::ErrorKind),
    /// The connection was closed by this end.
    Closed,
    /// The engine could not be started (a malformed `ETA_*` variable, or the
    /// system refused a thread or an fd). Every later call reports the same error.
    Engine(Arc<io::Error>),
    /// The negotiated parameters make no valid DDP connection (an MSS too small
    /// for the shortest MULPDU).
    Config(ConfigError),
    /// Memory registration failed.
    Registration(RegError),
    /// A region could not be accessed (deregistered, or the range is outside it).
    Region(StagError),
    /// A work request could not be posted (nothing was queued).
    Post(PostError),
}

impl Error {
    /// The closest `io::ErrorKind`, for APIs that speak errno.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Self::Io(e) => e.kind(),
            Self::Mpa(_) | Self::Protocol(_) => io::ErrorKind::InvalidData,
            Self::Negotiation(NegotiationError::Rejected { .. }) => {
                io::ErrorKind::ConnectionRefused
            }
            Self::Negotiation(_) => io::ErrorKind::Unsupported,
            Self::Timeout => io::ErrorKind::TimedOut,
            Self::PeerClosed | Self::Terminated(_) => io::ErrorKind::ConnectionReset,
            Self::ConnectionLost(k) => *k,
            Self::Closed => io::ErrorKind::NotConnected,
            Self::Engine(e) => e.kind(),
            Self::Config(_) | Self::Registration(_) | Self::Region(_) => io::ErrorKind::Other,
            Self::Post(PostError::NotOperational) => io::ErrorKind::NotConnected,
            Self::Post(PostError::QueueFull) => io::ErrorKind::WouldBlock,
            Self::Post(_) => io::ErrorKind::InvalidInput,
        }
    }

    /// The errno a sockets program sees for this error (`include/eta.h` lists
    /// them): `ECONNREFUSED` for a rejected setup, `ETIMEDOUT`, `ECONNRESET` for a
    /// peer that reset, closed during setup or sent a Terminate, `EPROTO` for a
    /// protocol violation or malformed frame, `EOPNOTSUPP` when the ends could not
    /// agree, `EPIPE` after a close by this end, and the system's own code for I/O
    /// errors.
    pub fn errno(&self) -> i32 {
        match self {
            Self::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Self::Mpa(_) | Self::Protocol(_) => libc::EPROTO,
            Self::Negotiation(NegotiationError::Rejected { .. }) => libc::ECONNREFUSED,
            Self::Negotiation(_) => libc::EOPNOTSUPP,
            Self::Timeout => libc::ETIMEDOUT,
            Self::PeerClosed | Self::Terminated(_) => libc::ECONNRESET,
            Self::ConnectionLost(k) => match k {
                io::ErrorKind::TimedOut => libc::ETIMEDOUT,
                io::ErrorKind::BrokenPipe => libc::EPIPE,
                io::ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
                _ => libc::ECONNRESET,
            },
            Self::Closed => libc::EPIPE,
            Self::Engine(_) | Self::Config(_) | Self::Registration(_) | Self::Region(_) => {
                libc::EIO
            }
            Self::Post(PostError::NotOperational) => libc::ENOTCONN,
            Self::Post(PostError::QueueFull) => libc::EAGAIN,
            Self::Post(PostError::TooLong) => libc::EMSGSIZE,
            Self::Post(_) => libc::EINVAL,
        }
    }

    /// The peer's private data, when it rejected the connection.
    pub fn reject_private_data(&self) -> Option<&[u8]> {
        match self {
            Self::Negotiation(NegotiationError::Rejected { private_data }) => Some(private_data),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Mpa(e) => write!(f, "{e}"),
            Self::Negotiation(e) => write!(f, "{e}"),
            Self::Timeout => f.write_str("MPA connection setup timed out"),
            Self::PeerClosed => {
                f.write_str("peer closed the connection during MPA setup (before its first FPDU)")
            }
            Self::Terminated(t) => write!(f, "peer terminated the connection: {:?}", t.reason),
            Self::Protocol(r) => write!(f, "peer violated the protocol: {r:?}"),
            Self::ConnectionLost(k) => write!(f, "TCP connection lost: {k}"),
            Self::Closed => f.write_str("connection closed"),
            Self::Engine(e) => write!(f, "engine could not start: {e}"),
            Self::Config(e) => write!(f, "no valid DDP connection: {e}"),
            Self::Registration(e) => write!(f, "registration failed: {e}"),
            Self::Region(e) => write!(f, "region access failed: {e}"),
            Self::Post(e) => f.write_str(match e {
                PostError::NotOperational => "connection is not open",
                PostError::QueueFull => "too many outstanding work requests",
                PostError::TooLong => "message longer than 4 GiB - 1",
                PostError::ToWrap => "remote offset plus length wraps around",
                PostError::LocalProtection => "local region not usable for this Read",
                PostError::NotWritable => "receive buffer is read-only",
                PostError::ExtensionsDisabled => "RFC 7306 operations are not enabled",
                PostError::NoOrd => "no RDMA Read credits (ORD 0)",
            }),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<PostError> for Error {
    fn from(e: PostError) -> Self {
        Self::Post(e)
    }
}

impl From<MpaError> for Error {
    fn from(e: MpaError) -> Self {
        Self::Mpa(e)
    }
}

impl From<NegotiationError> for Error {
    fn from(e: NegotiationError) -> Self {
        Self::Negotiation(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => io::Error::new(other.kind(), other),
        }
    }
}

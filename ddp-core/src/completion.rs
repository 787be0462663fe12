//! Work completions and connection events.

use crate::error::TerminateReason;
use crate::stag::Stag;
use crate::wire::TerminateRepr;

/// What a completed work request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionOp {
    /// A Send (any variant).
    Send,
    /// An RDMA Write.
    Write,
    /// An RDMA Read.
    Read,
    /// An RFC 7306 Immediate Data message.
    ImmediateData,
    /// An RFC 7306 Atomic operation.
    Atomic,
    /// A posted receive.
    Recv,
}

/// How a work request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionStatus {
    /// Completed successfully.
    Success,
    /// Flushed: the connection failed before the request completed.
    Flushed,
    /// The message arrived but a Send with Invalidate named an STag that could not be
    /// invalidated (the connection is terminated as well).
    RemoteInvalidRequest,
    /// A message queued in the receive pool did not fit the posted buffer.
    LocalLength,
}

/// A work completion.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's work request id.
    pub wr_id: u64,
    /// The operation.
    pub op: CompletionOp,
    /// The outcome.
    pub status: CompletionStatus,
    /// Octets transferred (message length for Send/Write/Recv, read size for Read).
    pub byte_len: u32,
    /// Receive: the message was a Send with Solicited Event.
    pub solicited: bool,
    /// Receive: the STag the message invalidated (Send with Invalidate).
    pub invalidated: Option<Stag>,
    /// Receive: RFC 7306 immediate data.
    pub immediate: Option<[u8; 8]>,
    /// Atomic: the original remote value.
    pub atomic_value: Option<u64>,
    /// The owned buffer of the work request, if it was created with
    /// [`LocalBuffer::from_boxed`](crate::LocalBuffer::from_boxed).
    pub buffer: Option<Box<[u8]>>,
}

impl Completion {
    pub(crate) fn new(wr_id: u64, op: CompletionOp, status: CompletionStatus) -> Self {
        Completion {
            wr_id,
            op,
            status,
            byte_len: 0,
            solicited: false,
            invalidated: None,
            immediate: None,
            atomic_value: None,
            buffer: None,
        }
    }
}

/// A Terminate received from the peer, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedTerminate {
    /// The typed reason.
    pub reason: TerminateReason,
    /// The full decoded header (layout guess, included headers).
    pub header: TerminateRepr,
}

/// Something the driver or the application should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The core detected an error; a Terminate with this reason is queued (unless the
    /// error was the loss of the transport) and the connection no longer places data.
    LocalError(TerminateReason),
    /// The peer sent a Terminate; the connection is in the error state.
    PeerTerminated(ReceivedTerminate),
    /// The queued Terminate was handed to the transport; nothing more will be sent, and
    /// the driver should close the TCP connection.
    TerminateSent,
}

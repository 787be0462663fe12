//! DDP (RFC 5041) and RDMAP (RFC 5040) for one iWARP connection, as a sans-IO state
//! machine in the style of quinn-proto.
//!
//! Bytes and work requests go in; segments to frame, placements, completions and
//! Terminates come out. No syscalls, clocks or threads: the engine drives a
//! [`Connection`] with the MPA deframer's events and frames the segments it polls with
//! the MPA framer, and tests drive it entirely in memory (see [`link`]).
//!
//! Public modules:
//! * [`wire`]: header views and representations (DDP, RDMAP, Read Request,
//!   Terminate, RFC 7306).
//! * [`stag`]: the [`MemoryTable`] of registrations: STags, scope, access rights,
//!   invalidation.
//! * [`error`]: Terminate reasons (typed RFC codes) and the errors of the local API.
//! * [`link`]: an in-memory MPA stream between two connections (tests, examples, the
//!   demo, benchmarks).
//! * [`fuzzing`]: [`fuzzing::fuzz_receive`], an entry point for external fuzzers.
//!
//! The [`Connection`] (private module `connection`, re-exported here) is a tree:
//! * `connection`: the state, the completion and event queues, failing and flushing;
//!   `config` ([`Config`], [`RtrKind`], [`SendOptions`], [`AtomicArgs`]); `post`
//!   (the `post_*` work requests); `send_queue` (completions in posting order);
//!   `requests` (RDMA Reads and Atomics in flight both ways: ORD and IRD); `atomic`
//!   (the RFC 7306 operations, performed by `tx` when their response is generated);
//!   `terminate` (the Terminate this side sends).
//! * `connection::tx`: segmentation to the MULPDU, MSNs, `poll_segment`,
//!   `segment_payload`, `segment_sent`; `tx::msg`, outbound messages and their
//!   headers.
//! * `connection::rx`: `recv_header`, `recv_payload`, `recv_end`, direct placement;
//!   `rx::classify`, every check on an inbound header; `rx::complete`, what a
//!   verified segment does at its end.
//!
//! Each part keeps its state's fields private and offers methods; `tx` and `rx`
//! never use each other. Around the connection: `completion` ([`Completion`],
//! [`Event`]), `segment` ([`Segment`]), `pool` (the bounded receive pool behind
//! [`Connection::read`]).
//!
//! Memory safety: all reads and writes of caller memory happen in the private
//! `placement` module, after the checks in `stag` and `connection::rx`. It is the
//! only module allowed to use `unsafe`.

#![deny(unsafe_code)]

mod completion;
mod connection;
pub mod error;
pub mod fuzzing;
pub mod link;
#[allow(unsafe_code)]
mod placement;
mod pool;
mod segment;
pub mod stag;
pub mod wire;

pub use completion::{Completion, CompletionOp, CompletionStatus, Event, ReceivedTerminate};
pub use connection::{AtomicArgs, Config, Connection, RtrKind, RxVerdict, SendOptions, State};
pub use error::{
    ConfigError, LlpError, OperationError, PostError, ProtectionError, RegError, StagError,
    TaggedError, TerminateReason, UntaggedError,
};
pub use placement::{DirectTarget, LocalBuffer};
pub use pool::PoolRead;
pub use segment::{HEADER_CAPACITY, Segment, SegmentToken};
pub use stag::{Access, ConnId, KeySource, MemoryTable, RegionInfo, Scope, Stag, predictable_keys};
pub use wire::atomic::AtomicOp;
pub use wire::ulpdu_header_len;
#[cfg(test)]
mod tests;

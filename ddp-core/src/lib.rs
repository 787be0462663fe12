//! DDP (RFC 5041) and RDMAP (RFC 5040) for one iWARP connection, as a sans-IO state
//! machine in the style of quinn-proto.
//!
//! Bytes and work requests go in; segments to frame, placements, completions and
//! Terminates come out. No syscalls, clocks or threads: the engine drives a
//! [`Connection`] with the MPA deframer's events and frames the segments it polls with
//! the MPA framer, and tests drive it entirely in memory.
//!
//! * [`wire`]: header views and representations (DDP, RDMAP, Read Request,
//!   Terminate, RFC 7306).
//! * [`MemoryTable`]: registrations, STags, scope, access rights, invalidation.
//! * [`Connection`]: posting (`post_*`), transmit (`poll_segment`, `segment_payload`,
//!   `segment_sent`), receive (`recv_header`, `recv_payload`, `recv_end`), results
//!   (`poll_completion`, `poll_event`, `read`).
//! * [`fuzzing::fuzz_receive`]: an entry point for external fuzzers.
//!
//! Memory safety: all reads and writes of caller memory happen in the private
//! `placement` module, after the checks in `stag` and `rx`. It is the only module
//! allowed to use `unsafe`.

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
pub use connection::{Config, Connection, RtrKind, RxVerdict, SendOptions, State};
pub use error::{
    ConfigError, LlpError, OperationError, PostError, ProtectionError, RegError, StagError,
    TaggedError, TerminateReason, UntaggedError,
};
pub use placement::{DirectTarget, LocalBuffer};
pub use pool::PoolRead;
pub use segment::{HEADER_CAPACITY, Segment, SegmentToken};
pub use stag::{Access, ConnId, MemoryTable, RegionInfo, Scope, Stag};
pub use wire::atomic::AtomicOp;
pub use wire::ulpdu_header_len;
#[cfg(test)]
mod tests;

//! # eta-engine: iWARP over kernel TCP
//!
//! The engine owns the TCP connections of iWARP endpoints and drives the sans-IO
//! protocol crates (`eta-mpa`, `eta-ddp-core`) on dedicated threads, in the sense of
//! Intel's ETA: application threads only post work requests and reap completions;
//! the engine threads do all socket I/O, framing, CRC and placement.
//!
//! - [`Connection::connect`] / [`Listener::accept`] run MPA setup (Request/Reply,
//!   RFC 6581 IRD/ORD and RTR, Rev 1 fallback, time-outs, private data, reject) in
//!   the calling thread, then hand the connection to an engine thread.
//! - [`Connection::post_send`], [`Connection::post_recv`],
//!   [`Connection::post_write`], [`Connection::post_read`] queue work;
//!   [`CompletionQueue`] reports it done. A completion queue may be shared by many
//!   connections and has an eventfd for `epoll`.
//! - [`Connection::register`] registers memory for the peer's RDMA Writes and Reads,
//!   reachable only through this connection.
//!
//! The engine starts at the first connection, never at load; `ETA_ENGINES`,
//! `ETA_ENGINE_CPUS` and `ETA_SPIN_US` configure it ([`EngineConfig`]).

mod api;
mod config;
mod cq;
mod engine;
mod error;
mod establish;
mod shared;
mod sock;
mod stream;
mod sys;
mod tx;
mod worker;

pub use api::{Connection, Listener, MemoryRegion, PostError, RemoteRegion, RxStats};
pub use config::{AcceptFilter, DEFAULT_SPIN, Decision, EngineConfig, Options};
pub use cq::{Completion, CompletionOp, CompletionQueue, CompletionStatus};
pub use engine::started;
pub use error::Error;
pub use eta_ddp_core::{Access, SendOptions, Stag};
pub use eta_mpa::{LocalConfig, Negotiated, RtrType, RtrTypes};
pub use shared::ConnState;
pub use sock::{INBOX_BYTES, Readiness, SEND_BUDGET};
pub use stream::{Block, Received, SockError};

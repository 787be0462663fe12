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
//!   connections and has an eventfd for `epoll`. A post that fails returns a
//!   [`PostError`] (`eta-ddp-core`'s, the same cases whether the application
//!   thread or the engine finds the problem); a request the engine refuses when it
//!   takes it from the queue completes as flushed with the reason in
//!   [`Completion::refused`].
//! - [`Connection::register`] registers memory for the peer's RDMA Writes and Reads,
//!   reachable only through this connection.
//!
//! The engine starts at the first connection, never at load; `ETA_ENGINES`,
//! `ETA_ENGINE_CPUS` and `ETA_SPIN_US` configure it ([`EngineConfig`]).
//!
//! ## Modules
//!
//! The API and the engine loop never name each other; both depend on the
//! hand-off between them (see `docs/architecture.md`, "The engine loop"):
//!
//! - API (application threads): `api` ([`Connection`] and its one post path),
//!   `region` ([`MemoryRegion`], [`RemoteRegion`]), `listener` ([`Listener`]),
//!   `stream` (socket mode for `libeta.so`), `raw` (requests over the caller's
//!   memory, for the C API), `establish` (MPA setup in the calling thread).
//! - `handoff`: what crosses threads. A connection that finished setup goes to its
//!   engine thread as a `NewConn` in that thread's inbox; afterwards each request
//!   goes into the connection's lock-free send or receive ring, and a doorbell (a
//!   flag, the thread's ready list, an eventfd write only if the thread is parked)
//!   tells the thread. Completions, state and errors come back through the
//!   connection's shared half and its [`CompletionQueue`]s.
//! - `worker` (engine threads): the loop (`worker/mod.rs`) and one connection's
//!   turn split by concern: `intake`, `rx`, `direct`, `transmit`, `rtr_hold`,
//!   `socket_mode`, `teardown`, and `life`, the connection's life cycle:
//!   `Open` → `Closing` (close posted) → `FinSent` (our FIN out) → `Closed`, or
//!   `Open`/`Closing` → `PeerClosed` (the peer's FIN between two messages) →
//!   `Closed`, and from any state but `Closed` to `Failed`. The application sees
//!   the coarser [`ConnState`].
//! - `engine`: the process-wide engine (starts the threads at the first
//!   connection; the only module that names both the loop and the hand-off).
//! - Socket mode: `sock` (readiness and the inbox), `lend` (a blocked `read()`'s
//!   buffers lent to the engine) and `stream` (the calls `libeta.so` makes, with
//!   `stream::zero_copy`, the lending read and the direct write).
//! - Support: `tx` (FPDUs in flight as iovecs), `cq`, `config`, `error`, `sys`
//!   (system calls).
//!
//! `unsafe` is denied in the crate but for the modules that own what it touches:
//! `sys` (system calls), `tx` (iovecs into FPDUs and payload in flight),
//! `worker::direct` (reads into memory the core lends), `raw` (the caller's
//! pointers, under the contracts of its `unsafe fn`s), `lend` (the lent buffers,
//! under the socket's lock), `stream::zero_copy` (the caller's buffer of a direct write)
//! and `engine` (the process-wide engine pointer, reset in a forked child).

#![deny(unsafe_code)]

mod api;
mod config;
mod cq;
#[allow(unsafe_code)]
mod engine;
mod error;
mod establish;
mod handoff;
#[allow(unsafe_code)]
mod lend;
mod listener;
#[allow(unsafe_code)]
mod raw;
mod region;
mod sock;
mod stream;
#[allow(unsafe_code)]
mod sys;
#[allow(unsafe_code)]
mod tx;
mod worker;

pub use api::{Connection, RxStats};
pub use config::{AcceptFilter, DEFAULT_SPIN, Decision, EngineConfig, EnvError, MIN_FPDU, Options};
pub use cq::{Completion, CompletionOp, CompletionQueue, CompletionStatus};
pub use engine::started;
pub use error::Error;
pub use eta_ddp_core::{Access, PostError, SendOptions, Stag};
pub use eta_mpa::{LocalConfig, Negotiated, RtrType, RtrTypes};
pub use handoff::ConnState;
pub use listener::Listener;
pub use region::{MemoryRegion, RemoteRegion};
pub use sock::{INBOX_BYTES, Readiness, SEND_BUDGET};
pub use stream::DIRECT_SEND_MIN;
pub use stream::{Block, Received, SockError};

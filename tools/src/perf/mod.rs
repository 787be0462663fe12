//! eta-perf, eta's benchmark: raw TCP and iWARP side by side in one run on loopback.
//!
//! For every message size it measures, in the same run:
//!
//! - **raw TCP** ([`tcp`]): `std::net::TcpStream` with `TCP_NODELAY`, blocking reads
//!   and writes, fixed-size messages (the baseline every ratio refers to);
//! - **DDP Send** ([`send`]: `post_send` / `post_recv`);
//! - **RDMA Write** ([`write`](mod@write)): ping-pong in the perftest
//!   `ib_write_lat` style (each side writes into the other's registered region and
//!   detects arrival by polling the last octet of its own region), or a Write
//!   followed by a 0-octet Send as the notification;
//! - **RDMA Read** ([`read`]): post→completion of one Read (a full round trip, one
//!   side only).
//!
//! Latency is half the round trip of a ping-pong (size S each way), median and 99th
//! percentile. Bandwidth is unidirectional with a window of messages in flight.
//! Every test is a [`spec::Spec`]: its server half runs in a peer process
//! (`eta-perf --serve`, [`peer`]) with its own engine, as deployed, or with
//! `--one-process` in a thread of this one ([`ends`]); the client half is the main
//! thread; both talk over 127.0.0.1. Each test runs `--rounds` times, raw TCP and
//! eta alternating ([`run::plan`]); the report gives medians and spreads ([`stats`])
//! and the CPU seconds of both ends ([`cpu`]) per 1,000 round trips or per GB.
//! `--load busy` keeps a core busy meanwhile ([`load`]). `--idle N` also measures
//! the memory of N idle connections ([`idle`]). [`run::main`] is the program;
//! [`options::HELP`] lists the options and the exit statuses. The targets are
//! checked in [`verdict`], as data.

pub mod cpu;
pub mod ends;
pub mod eta;
pub mod idle;
pub mod load;
pub mod measure;
pub mod options;
pub mod peer;
pub mod read;
pub mod report;
pub mod run;
pub mod send;
pub mod spec;
pub mod stats;
pub mod tcp;
pub mod verdict;
pub mod write;

use std::time::Duration;

pub use crate::endpoint::Res;

/// Longest wait for any single completion, arrival or handshake before a test is
/// declared hung.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Maps an error to `"<ctx>: <error>"`.
fn err<E: std::fmt::Display>(ctx: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{ctx}: {e}")
}

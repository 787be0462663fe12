//! A fault relay: a TCP relay on the loopback that stands between the two ends of
//! an iWARP connection (eta ↔ eta, eta ↔ siw) and damages the stream on purpose,
//! reproducibly from a seed: it resegments it (1 octet to 64 KiB), delays it,
//! stalls it, corrupts one octet, truncates it with a FIN, or resets both
//! connections mid-FPDU. `eta-fault-relay` runs one from the command line;
//! `tools/tests/fault_relay.rs` uses it between two engines, and
//! `docs/testing.md` ("Faults on the path") lists what each fault yields.
//!
//! Plain `std::net` sockets and threads: an acceptor thread, and per client
//! connection a session thread with a scoped thread for the second direction. Every
//! loop wakes at least every [`POLL`] to see the relay's stop flag and the
//! session's deadline, so dropping a [`Relay`] ends and joins everything.
//!
//! Where fault offsets count from: see [`Fault`] (after each direction's MPA
//! startup frame).

mod fault;
mod pump;
mod rng;
mod session;
mod stats;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use fault::{Direction, FAULT_HELP, Fault};
pub use rng::SplitMix64;
pub use stats::{DirStats, End, Stats};

/// How often every loop of the relay looks at its stop flag and deadline.
pub const POLL: Duration = Duration::from_millis(20);

/// What a relay does to the connections it carries.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The faults, all applied together (at most one of each of `Resegment` and
    /// `Delay` counts; the first wins).
    pub faults: Vec<Fault>,
    /// Seed of the segment sizes and delays; the same seed cuts the same stream the
    /// same way (session `i`, direction `d` has its own stream).
    pub seed: u64,
    /// Longest life of a session: after it the relay resets both ends.
    pub deadline: Duration,
    /// Client connections to accept before the listener closes (`None`: any).
    pub max_sessions: Option<u64>,
    /// Log each session's end and counters on stderr.
    pub verbose: bool,
}

impl Default for Plan {
    /// No faults, seed 0, a 60 s deadline, any number of sessions, quiet.
    fn default() -> Self {
        Self {
            faults: Vec::new(),
            seed: 0,
            deadline: Duration::from_secs(60),
            max_sessions: None,
            verbose: false,
        }
    }
}

/// A running relay. Dropping it resets the sessions still running and joins every
/// thread.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on `listen` (port 0: any free port) and relays each client
    /// connection to `target` under `plan`.
    pub fn start(listen: SocketAddr, target: SocketAddr, plan: Plan) -> io::Result<Relay> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let acceptor = {
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            thread::Builder::new()
                .name("fault-relay".into())
                .spawn(move || accept_loop(listener, target, plan, stop, stats))?
        };
        Ok(Relay {
            addr,
            stop,
            stats,
            acceptor: Some(acceptor),
        })
    }

    /// A relay on a free port of 127.0.0.1.
    pub fn on_loopback(target: SocketAddr, plan: Plan) -> io::Result<Relay> {
        Relay::start(SocketAddr::from(([127, 0, 0, 1], 0)), target, plan)
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the relay has accepted its `max_sessions` and they have ended
    /// (forever if `max_sessions` is `None`), then gives the counters.
    pub fn wait(mut self) -> Stats {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Accepts clients until `max_sessions` or the stop flag, runs a session thread per
/// client, and joins them all before it returns.
fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    plan: Plan,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
) {
    let plan = Arc::new(plan);
    let mut sessions: Vec<JoinHandle<()>> = Vec::new();
    let mut accepted = 0u64;
    let mut listener = Some(listener);
    while !stop.load(Ordering::Acquire) {
        sessions.retain(|t| !t.is_finished());
        if plan.max_sessions.is_some_and(|m| accepted >= m) {
            // Refuse further clients, and end once the sessions have.
            listener = None;
            if sessions.is_empty() {
                break;
            }
        }
        let Some(l) = &listener else {
            thread::sleep(POLL);
            continue;
        };
        match l.accept() {
            Ok((client, _)) => {
                let index = accepted;
                accepted += 1;
                stats.lock().unwrap_or_else(|e| e.into_inner()).sessions += 1;
                let (plan, stop, stats) =
                    (Arc::clone(&plan), Arc::clone(&stop), Arc::clone(&stats));
                let spawned = thread::Builder::new()
                    .name(format!("fault-relay-{index}"))
                    .spawn(move || {
                        if client.set_nonblocking(false).is_ok() {
                            session::run(client, target, &plan, index, stop, &stats);
                        }
                    });
                match spawned {
                    Ok(t) => sessions.push(t),
                    Err(e) => eprintln!("eta-fault-relay: no thread for session {index}: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("eta-fault-relay: accept: {e}");
                thread::sleep(POLL);
            }
        }
    }
    for t in sessions {
        let _ = t.join();
    }
}

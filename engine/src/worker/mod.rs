//! An engine thread: owns the TCP sockets of its connections and runs the loop
//! doorbells → send queues → framing → `writev` → socket reads → deframing →
//! placement → completions, spinning while there is work and parking in
//! `epoll_wait` when idle.
//!
//! It learns of work only through [`crate::handoff`]; the files here split one
//! connection's turn by concern:
//!
//! - `conn`: a connection's engine-side state, its start, events and completions;
//! - `life`: its life cycle ([`life::Life`]);
//! - `intake`: posted requests into the core (the one engine-side post);
//! - `rx`: buffered reads, deframing, the end of the peer's stream;
//! - `direct`: reads straight into a destination (the loop's only `unsafe`);
//! - `transmit`: framing, `writev`, our FIN;
//! - `rtr_hold`: the Initiator's RTR goes out alone;
//! - `socket_mode`: the inbox of `read()` and the program's fd;
//! - `teardown`: failures and the final release.

mod conn;
#[allow(unsafe_code)]
mod direct;
mod intake;
mod life;
mod rtr_hold;
mod rx;
mod socket_mode;
mod teardown;
mod transmit;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eta_ddp_core::MemoryTable;

use crate::error::Error;
use crate::handoff::WorkerShared;
use crate::sys::{self, Epoll};
use conn::Conn;

/// Token of the wake-up eventfd in the epoll set.
const WAKE: u64 = u64::MAX;
/// Octets read from a socket per buffered `read` call.
const READ_BUF: usize = 256 * 1024;
/// Rounds one connection gets per visit before the others have their turn.
const ROUNDS: usize = 16;

/// One engine thread's loop and the connections it runs.
pub(crate) struct Worker {
    shared: Arc<WorkerShared>,
    table: MemoryTable,
    epoll: Epoll,
    conns: HashMap<u64, Conn>,
    buf: Box<[u8]>,
    spin: Duration,
    /// Connections that stopped with work left (the per-visit bound), visited again
    /// on the next turn of the loop without waiting for an event.
    hot: Vec<u64>,
}

impl Worker {
    /// A loop for the thread whose inbox is `shared`, spinning `spin` after work.
    pub fn new(shared: Arc<WorkerShared>, table: MemoryTable, spin: Duration) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        epoll.add(shared.wake.raw(), sys::IN, WAKE)?;
        Ok(Self {
            shared,
            table,
            epoll,
            conns: HashMap::new(),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            spin,
            hot: Vec::new(),
        })
    }

    /// The engine loop. Never returns.
    pub fn run(mut self) -> ! {
        let mut events: Vec<libc::epoll_event> = Vec::with_capacity(256);
        let mut idle_since = Instant::now();
        loop {
            let mut progress = self.take_incoming();
            progress |= self.ring_doorbells();
            progress |= self.visit_hot();
            // Spin (poll without blocking) while work came recently; park after.
            let park = self.spin.is_zero() || idle_since.elapsed() >= self.spin;
            let timeout = if park && !progress {
                self.shared.parked.store(true, Ordering::SeqCst);
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.shared.has_pending() {
                    Some(Duration::ZERO)
                } else {
                    None
                }
            } else {
                Some(Duration::ZERO)
            };
            if self.epoll.wait(&mut events, timeout).is_err() {
                events.clear();
            }
            self.shared.parked.store(false, Ordering::SeqCst);
            for ev in &events {
                if ev.u64 == WAKE {
                    self.shared.wake.drain();
                    continue;
                }
                let id = ev.u64;
                let flags = ev.events;
                if let Some(c) = self.conns.get_mut(&id) {
                    if flags & (sys::IN | sys::HUP) != 0 {
                        c.readable = true;
                    }
                    c.peer_event(flags);
                    progress |= self.visit_conn(id);
                }
            }
            progress |= !events.is_empty();
            self.reap();
            if progress {
                idle_since = Instant::now();
            }
        }
    }

    /// Takes over the connections handed to this thread.
    fn take_incoming(&mut self) -> bool {
        let new = self.shared.take_incoming();
        let any = !new.is_empty();
        for nc in new {
            let id = nc.shared.id;
            match Conn::start(nc, &self.table) {
                Ok(mut c) => {
                    if let Err(e) =
                        self.epoll
                            .add(c.fd, sys::IN | sys::OUT | sys::ET | sys::HUP, id)
                    {
                        c.fail(Error::Io(e));
                    }
                    c.readable = true;
                    c.update_sock();
                    self.conns.insert(id, c);
                    self.visit_conn(id);
                }
                Err((shared, e)) => teardown::refuse(&shared, e, &self.table),
            }
        }
        any
    }

    /// Visits the connections whose doorbell rang.
    fn ring_doorbells(&mut self) -> bool {
        let mut any = false;
        // Only those rung so far: a connection rung again meanwhile waits for the
        // next turn instead of keeping this loop going.
        for _ in 0..self.shared.ready.len() {
            let Some(s) = self.shared.ready.pop() else {
                break;
            };
            any = true;
            s.rung.store(false, Ordering::Release);
            self.visit_conn(s.id);
        }
        any
    }

    /// Visits again the connections that stopped with work left.
    fn visit_hot(&mut self) -> bool {
        if self.hot.is_empty() {
            return false;
        }
        let mut hot = std::mem::take(&mut self.hot);
        hot.sort_unstable();
        hot.dedup();
        for id in hot.drain(..) {
            self.visit_conn(id);
        }
        true
    }

    /// Services connection `id`, if this thread runs it, and marks it hot if it
    /// stopped with work left. Returns whether it made progress.
    fn visit_conn(&mut self, id: u64) -> bool {
        let Some(c) = self.conns.get_mut(&id) else {
            return false;
        };
        let (progress, more) = Self::service(c, &mut self.buf, &self.table);
        if more {
            self.hot.push(id);
        }
        progress
    }

    /// Runs one connection until it makes no more progress, or for [`ROUNDS`]
    /// rounds so that one busy connection cannot starve the others. Returns
    /// whether it made progress and whether it stopped with work left.
    fn service(c: &mut Conn, buf: &mut [u8], table: &MemoryTable) -> (bool, bool) {
        let mut any = false;
        let mut more = true;
        for _ in 0..ROUNDS {
            let mut progress = c.ingest(table);
            progress |= c.receive(buf);
            progress |= c.pump();
            progress |= c.transmit();
            c.salvage(buf);
            progress |= c.report();
            any |= progress;
            if !progress {
                more = false;
                break;
            }
        }
        c.free_graveyard(table);
        if any {
            c.update_sock();
        }
        (any, more || c.rtr_hold.waiting())
    }

    /// Lets go of connections that are finished.
    fn reap(&mut self) {
        let done: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.finished())
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(mut c) = self.conns.remove(&id) {
                self.epoll.delete(c.fd);
                c.release(&self.table);
            }
        }
    }
}

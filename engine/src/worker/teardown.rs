//! The end of a connection on the engine thread: failures, the release of
//! deregistered regions, and the final release (everything left flushed, the
//! application told).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use eta_ddp_core::MemoryTable;

use super::conn::Conn;
use super::life::Life;
use crate::error::Error;
use crate::handoff::{ConnShared, ConnState, Wr, free_region};

impl Conn {
    /// The TCP connection is gone: flush everything with error completions. Events
    /// the core already has (a Terminate the peer sent before it left) are
    /// reported first, so they, not the lost connection, name the failure.
    pub fn lost(&mut self, kind: io::ErrorKind) {
        self.report();
        if !self.life.failed() {
            self.shared.fail(Error::ConnectionLost(kind));
        }
        self.life = Life::Failed;
        self.tx.abandon();
        self.core.transport_closed();
        self.report();
    }

    /// A write failed (`write_broken`): reads what the peer sent before it left,
    /// which may be a Terminate (a peer that terminates and closes makes our next
    /// write fail with a reset), then declares the connection lost unless that
    /// already ended it.
    pub fn salvage(&mut self, buf: &mut [u8]) {
        let Some(kind) = self.write_broken.take() else {
            return;
        };
        self.readable = true;
        self.receive(buf);
        self.lost(kind);
    }

    /// Fails the connection with `e` (recorded first) and flushes everything.
    pub fn fail(&mut self, e: Error) {
        self.shared.fail(e);
        self.lost(io::ErrorKind::Other);
    }

    /// Frees the deregistered regions no FPDU in flight refers to any more.
    pub fn free_graveyard(&mut self, table: &MemoryTable) {
        let acked = self.tx.acked;
        let in_flight_empty = self.tx.is_empty();
        self.graveyard.retain(|(mark, stag, notify)| {
            let free = in_flight_empty || acked >= *mark;
            if free {
                free_region(table, *stag, notify.as_deref());
            }
            !free
        });
    }

    /// Done: gracefully closed both ways, or failed with nothing left to send.
    pub fn finished(&self) -> bool {
        self.life.finished(self.tx.is_empty())
    }

    /// Final release: no iovec in flight, the socket closes when dropped.
    pub fn release(&mut self, table: &MemoryTable) {
        let graceful = !self.life.failed();
        self.tx.abandon();
        self.core.transport_closed();
        if graceful {
            // Both halves closed in order: what is still posted is flushed, and the
            // core's "transport lost" is no error here.
            self.report_completions();
            while self.core.poll_event().is_some() {}
        } else {
            self.report();
        }
        flush_queued(&self.shared, std::mem::take(&mut self.spare), table);
        for (_, stag, notify) in std::mem::take(&mut self.graveyard) {
            free_region(table, stag, notify.as_deref());
        }
        if graceful && self.shared.state() != ConnState::Failed {
            self.shared.set_state(ConnState::Closed);
        }
        self.update_sock();
        self.shared.drained.set();
        self.shared.released.set();
    }
}

/// A connection the engine could not take over ([`Conn::start`] failed): records
/// why, flushes what was posted, hangs up its socket-mode fd, lets go.
pub(super) fn refuse(shared: &Arc<ConnShared>, e: Error, table: &MemoryTable) {
    shared.fail(e);
    flush_queued(shared, VecDeque::new(), table);
    if let Some(r) = &shared.sock {
        r.hang_up();
    }
    shared.drained.set();
    shared.released.set();
}

/// Closes the connection's queues and flushes every request in them (and in
/// `left`, requests already taken from them).
fn flush_queued(shared: &ConnShared, mut left: VecDeque<Wr>, table: &MemoryTable) {
    shared.close_queue(&mut left);
    for wr in left {
        shared.flush_request(wr, table);
    }
}

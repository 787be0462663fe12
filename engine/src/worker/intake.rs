//! Intake: posted requests move from the shared queues into the core.

use std::io;

use eta_ddp_core::{CompletionOp, Connection as Core, MemoryTable, PostError};

use super::conn::Conn;
use crate::cq::Completion;
use crate::handoff::{ConnState, Work, Wr};
use crate::sys;

impl Conn {
    /// Moves posted work requests into the core and performs control requests.
    pub fn ingest(&mut self, table: &MemoryTable) -> bool {
        // Drain the ring into this side's reusable queue (no allocation once warm).
        self.shared.take_all(&mut self.spare);
        let any = !self.spare.is_empty();
        while let Some(wr) = self.spare.pop_front() {
            match wr {
                Wr::Post(work) => self.intake(work),
                Wr::Deregister(stag, notify) => {
                    // Nothing framed from now on can refer to it; what is in flight
                    // may: free once everything framed so far is acknowledged.
                    let _ = table.invalidate(stag);
                    self.graveyard.push((self.tx.framed, stag, notify));
                }
                Wr::Abort => {
                    sys::linger_reset(self.fd);
                    self.lost(io::ErrorKind::ConnectionAborted);
                }
                Wr::Close => {
                    self.life = self.life.close();
                    if self.shared.state() == ConnState::Open {
                        self.shared.set_state(ConnState::Closing);
                    }
                }
            }
        }
        any
    }

    /// Gives one work request to the core. A request the core refuses (the
    /// connection failed meanwhile, or a Read names a local region it may not use)
    /// completes as flushed with the reason, so nothing is lost silently.
    fn intake(&mut self, work: Work) {
        let (wr_id, op, quiet) = (work.wr_id(), work.op(), work.quiet());
        match post(&mut self.core, work) {
            Ok(()) => {
                if op != CompletionOp::Recv {
                    self.sq_quiet.push_back(quiet);
                }
            }
            Err(reason) => {
                let c = Completion::flushed(self.shared.id, wr_id, op, None, Some(reason));
                self.shared.deliver(c, quiet);
            }
        }
    }
}

/// Posts `work` to the core: the one place the engine hands work requests over.
fn post(core: &mut Core, work: Work) -> Result<(), PostError> {
    match work {
        Work::Send {
            wr_id, buf, opts, ..
        } => core.post_send(wr_id, buf.into_local(), opts),
        Work::Recv { wr_id, buf } => core.post_recv(wr_id, buf.into_local()),
        Work::Write {
            wr_id,
            buf,
            remote,
            remote_to,
        } => core.post_write(wr_id, buf.into_local(), remote, remote_to),
        Work::Read {
            wr_id,
            local,
            local_to,
            len,
            remote,
            remote_to,
        } => core.post_read(wr_id, local, local_to, len, remote, remote_to),
    }
}

//! Socket mode on the engine side: the inbox of `read()` and the readiness of the
//! program's fd.

use super::conn::Conn;
use crate::handoff::ConnState;

impl Conn {
    /// Moves messages from the core's receive pool into the buffers a blocked
    /// `read()` lent (while the inbox is empty, so order holds), else into the
    /// inbox of `read()`, as far as it has room.
    pub fn pump(&mut self) -> bool {
        let Some(r) = &self.shared.sock else {
            return false;
        };
        if !self.core.readable() {
            return false;
        }
        let mut st = r.lock();
        let mut any = false;
        while self.core.readable() {
            let empty = st.inbox.is_empty();
            if let Some(lend) = st.lend.as_mut().filter(|l| empty && !l.done()) {
                let core = &mut self.core;
                // Under the state lock with the lend in place: the reader is
                // blocked in its call (the invariant on `Lend`).
                let placed =
                    lend.fill(|dst| core.read(dst).map(|got| (got.len, got.end_of_message)));
                if !placed {
                    break;
                }
                any = true;
                continue;
            }
            if st.inbox.room() == 0 {
                st.inbox.starved = true;
                break;
            }
            let core = &mut self.core;
            let moved = st.inbox.fill(|data, room| {
                core.read_into(data, room)
                    .map(|got| (got.len, got.end_of_message))
            });
            if !moved {
                break;
            }
            any = true;
        }
        any
    }

    /// Brings the program's fd up to date (readable, writable, end of stream,
    /// hang-up) and wakes blocked calls. Only turns conditions on; the program's
    /// side turns them off when it consumed them, under the same lock.
    pub fn update_sock(&self) {
        let Some(r) = &self.shared.sock else {
            return;
        };
        let mut st = r.lock();
        let state = self.shared.state();
        if matches!(state, ConnState::Failed | ConnState::Closed) || self.life.failed() {
            r.hang_up_locked(&mut st);
            return;
        }
        if self.life.peer_done() {
            r.end_of_stream(&mut st);
        }
        if self.shared.sock_readable(&st) {
            r.set_readable(&mut st, true, None);
        }
        if self.shared.sock_writable() {
            r.set_writable(&mut st, true, None);
        }
        // Messages moved into the inbox, budget released, end of stream: a
        // blocked read() or write() looks again.
        r.wake_sleepers(&mut st);
    }
}

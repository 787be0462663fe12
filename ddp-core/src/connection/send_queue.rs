//! The send queue's bookkeeping: posted work requests by sequence number, whose
//! completions leave in posting order whatever order they finish in.

use std::collections::VecDeque;

use crate::completion::{Completion, CompletionOp, CompletionStatus};

#[derive(Debug)]
struct SqSlot {
    wr_id: u64,
    op: CompletionOp,
    done: Option<Completion>,
}

/// Posted and not yet completed send-queue work requests.
#[derive(Debug, Default)]
pub(super) struct SendQueue {
    slots: VecDeque<SqSlot>,
    /// Sequence number of the first slot.
    base: u64,
}

impl SendQueue {
    /// Work requests posted and not yet completed.
    pub(super) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Adds a work request; returns its sequence number.
    pub(super) fn push(&mut self, wr_id: u64, op: CompletionOp) -> u64 {
        let seq = self.base + self.slots.len() as u64;
        self.slots.push_back(SqSlot {
            wr_id,
            op,
            done: None,
        });
        seq
    }

    /// Completes work request `seq` with `status` (`f` fills in the rest) and moves
    /// every completion now at the head of the queue to `out`. A request completed
    /// twice keeps its first completion.
    pub(super) fn complete(
        &mut self,
        seq: u64,
        status: CompletionStatus,
        f: impl FnOnce(&mut Completion),
        out: &mut VecDeque<Completion>,
    ) {
        let Some(idx) = seq.checked_sub(self.base) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        if slot.done.is_some() {
            return;
        }
        let mut c = Completion::new(slot.wr_id, slot.op, status);
        f(&mut c);
        slot.done = Some(c);
        while self.slots.front().is_some_and(|s| s.done.is_some()) {
            if let Some(c) = self.slots.pop_front().and_then(|s| s.done) {
                out.push_back(c);
            }
            self.base += 1;
        }
    }
}

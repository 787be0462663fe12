//! The bounded receive pool: untagged messages that arrive while no receive is posted
//! land here, so that `read()` semantics work. When the pool is full the core answers
//! "blocked" and the driver keeps the bytes (TCP backpressure), so memory stays bounded.

use std::collections::VecDeque;

use crate::stag::Stag;

/// Metadata of a message in the pool.
#[derive(Debug)]
pub(crate) struct PoolMsg {
    /// Octets of this message still in the pool (committed or not).
    pub len: usize,
    /// Octets of `len` whose FPDU passed the CRC (readable).
    pub committed: usize,
    /// The whole message has arrived and been verified.
    pub complete: bool,
    /// Octets already taken by `read` from this message.
    pub consumed: u32,
    /// Solicited Event flag.
    pub solicited: bool,
    /// STag invalidated by this message.
    pub invalidated: Option<Stag>,
    /// RFC 7306 immediate data.
    pub immediate: Option<[u8; 8]>,
}

/// Result of a [`Connection::read`](crate::Connection::read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRead {
    /// Octets copied.
    pub len: usize,
    /// The copied octets end the message (`MSG_EOR`).
    pub end_of_message: bool,
    /// The message was sent with Solicited Event.
    pub solicited: bool,
    /// The STag the message invalidated.
    pub invalidated: Option<Stag>,
}

#[derive(Debug)]
pub(crate) struct RecvPool {
    cap_bytes: usize,
    cap_msgs: usize,
    data: VecDeque<u8>,
    msgs: VecDeque<PoolMsg>,
}

impl RecvPool {
    pub(crate) fn new(cap_bytes: usize, cap_msgs: usize) -> Self {
        RecvPool {
            cap_bytes,
            cap_msgs,
            data: VecDeque::new(),
            msgs: VecDeque::new(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cap_bytes > 0 && self.cap_msgs > 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Whether a segment of `n` octets can be accepted; `new_msg` if it starts a message.
    /// A lone segment is always accepted into an empty pool, so messages larger than
    /// the pool stream through it as the application reads.
    pub(crate) fn has_room(&self, n: usize, new_msg: bool) -> bool {
        if new_msg && self.msgs.len() >= self.cap_msgs {
            return false;
        }
        self.data.is_empty() || self.data.len().saturating_add(n) <= self.cap_bytes
    }

    pub(crate) fn start(&mut self, solicited: bool, invalidated: Option<Stag>) {
        self.msgs.push_back(PoolMsg {
            len: 0,
            committed: 0,
            complete: false,
            consumed: 0,
            solicited,
            invalidated,
            immediate: None,
        });
    }

    /// Appends octets of the last message (not yet committed).
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if let Some(m) = self.msgs.back_mut() {
            self.data.extend(bytes);
            m.len += bytes.len();
        }
    }

    /// The FPDU carrying the uncommitted octets passed its CRC.
    pub(crate) fn commit(&mut self, last: bool) {
        if let Some(m) = self.msgs.back_mut() {
            m.committed = m.len;
            if last {
                m.complete = true;
            }
        }
    }

    /// Messages held (complete or not).
    pub(crate) fn message_count(&self) -> usize {
        self.msgs.len()
    }

    /// The length of the pool's only message if none of it was read and all of it
    /// passed its CRC (so it can move whole to a posted receive).
    pub(crate) fn sole_unread_len(&self) -> Option<usize> {
        match (self.msgs.len(), self.msgs.front()) {
            (1, Some(m)) if m.consumed == 0 && m.len == m.committed => Some(m.len),
            _ => None,
        }
    }

    /// Whether the pool holds one message (the one being assembled) and none of its
    /// octets: its next octets may go to the reader directly.
    pub(crate) fn bypassable(&self) -> bool {
        self.msgs.len() == 1 && self.data.is_empty()
    }

    /// `n` octets of the last message went to the reader directly (never stored):
    /// they count as read.
    pub(crate) fn taken_directly(&mut self, n: usize) {
        if let Some(m) = self.msgs.back_mut() {
            m.consumed = m.consumed.wrapping_add(n as u32);
        }
    }

    /// The message being assembled (the last one).
    pub(crate) fn last_mut(&mut self) -> Option<&mut PoolMsg> {
        self.msgs.back_mut()
    }

    /// Octets of the pool's first message that can be read now.
    pub(crate) fn front_ready(&self) -> bool {
        self.msgs
            .front()
            .is_some_and(|m| m.committed > 0 || m.complete)
    }

    /// Copies committed octets of the first message into `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> Option<PoolRead> {
        self.take(buf.len(), |a, b| {
            buf[..a.len()].copy_from_slice(a);
            buf[a.len()..a.len() + b.len()].copy_from_slice(b);
        })
    }

    /// Appends up to `max` committed octets of the first message to `dst`.
    pub(crate) fn read_into(&mut self, dst: &mut VecDeque<u8>, max: usize) -> Option<PoolRead> {
        self.take(max, |a, b| {
            dst.extend(a);
            dst.extend(b);
        })
    }

    /// Removes up to `max` committed octets of the first message, handing them to
    /// `copy` as the ring's two pieces, in order.
    fn take(&mut self, max: usize, copy: impl FnOnce(&[u8], &[u8])) -> Option<PoolRead> {
        let m = self.msgs.front_mut()?;
        if m.committed == 0 && !m.complete {
            return None;
        }
        let n = m.committed.min(max);
        let (a, b) = self.data.as_slices();
        let from_a = a.len().min(n);
        copy(&a[..from_a], &b[..n - from_a]);
        self.data.drain(..n);
        m.len -= n;
        m.committed -= n;
        m.consumed = m.consumed.wrapping_add(n as u32);
        let eom = m.complete && m.len == 0;
        let r = PoolRead {
            len: n,
            end_of_message: eom,
            solicited: m.solicited,
            invalidated: m.invalidated,
        };
        if eom {
            self.msgs.pop_front();
        }
        Some(r)
    }

    /// Removes the complete first message, copying it into `dst` through `write`.
    /// Returns the message and the octets copied, or `Err(len)` if it does not fit.
    pub(crate) fn take_front(
        &mut self,
        dst_len: usize,
        mut write: impl FnMut(usize, &[u8]),
    ) -> Option<Result<(PoolMsg, usize), (PoolMsg, usize)>> {
        let m = self.msgs.front()?;
        if !m.complete {
            return None;
        }
        let m = self.msgs.pop_front()?;
        let n = m.len;
        if n > dst_len {
            self.data.drain(..n);
            return Some(Err((m, n)));
        }
        let (a, b) = self.data.as_slices();
        let a_n = a.len().min(n);
        write(0, &a[..a_n]);
        write(a_n, &b[..n - a_n]);
        self.data.drain(..n);
        Some(Ok((m, n)))
    }

    /// Removes the only message, complete or not, copying its octets out through
    /// `write`; returns whether there was exactly one message to take.
    pub(crate) fn take_partial(&mut self, mut write: impl FnMut(usize, &[u8])) -> bool {
        if self.msgs.len() != 1 {
            return false;
        }
        let (a, b) = self.data.as_slices();
        write(0, a);
        write(a.len(), b);
        self.data.clear();
        self.msgs.clear();
        true
    }

    /// Drops uncommitted octets of the last message (its FPDU failed).
    pub(crate) fn discard_uncommitted(&mut self) {
        if let Some(m) = self.msgs.back_mut() {
            let extra = m.len - m.committed;
            let keep = self.data.len() - extra;
            self.data.truncate(keep);
            m.len = m.committed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_ordered() {
        let mut p = RecvPool::new(8, 2);
        assert!(p.has_room(100, true));
        p.start(false, None);
        p.append(&[1, 2, 3, 4, 5]);
        assert!(p.read(&mut [0; 4]).is_none());
        p.commit(false);
        assert!(!p.has_room(4, false));
        assert!(p.has_room(3, false));
        let mut b = [0u8; 3];
        let r = p.read(&mut b).unwrap();
        assert_eq!((r.len, r.end_of_message), (3, false));
        assert_eq!(b, [1, 2, 3]);
        p.append(&[6]);
        p.commit(true);
        p.start(true, None);
        assert!(!p.has_room(0, true));
        let mut b = [0u8; 8];
        let r = p.read(&mut b).unwrap();
        assert_eq!((r.len, r.end_of_message), (3, true));
        assert_eq!(&b[..3], &[4, 5, 6]);
        p.append(&[9, 9]);
        p.discard_uncommitted();
        p.commit(true);
        let r = p.read(&mut b).unwrap();
        assert_eq!((r.len, r.end_of_message, r.solicited), (0, true, true));
        assert!(p.is_empty());
    }
}

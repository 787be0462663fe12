//! The buffers of a blocked `read()` lent to the engine ([`Lend`]): what the
//! engine's receive side fills (under the socket's lock) and what the reader takes
//! back. The calls that lend and the direct write are in `stream::zero_copy`.

/// The buffers of a blocked `read()`, lent to the engine so that it places the next
/// message straight into them instead of into the inbox (one copy fewer, see
/// docs/architecture.md, "Socket mode").
///
/// The invariant that makes lending safe: the engine writes into lent memory only
/// while it holds the state lock and the lend is in `SockState::lend` (in `sock`) and not
/// [`done`](Self::done). The reader takes the lend out under the same lock before
/// it returns, whatever ends its wait; from then on the engine cannot reach the
/// memory. A lend is filled only while the inbox is empty, so messages keep their
/// order whichever way they take.
#[derive(Debug)]
pub(crate) struct Lend {
    /// The caller's buffers (pointer, length), in order.
    bufs: Vec<(*mut u8, usize)>,
    /// Their total length.
    cap: usize,
    /// Octets placed so far (the first octets of the front message).
    pub got: usize,
    /// The last of them were read straight from the socket and their FPDU is not
    /// verified yet (its CRC comes after them): the lend is not done before.
    pub pending: usize,
    /// The placed octets end the message.
    pub eom: bool,
}

// SAFETY: the pointers are dereferenced only under the state lock, by the engine
// thread (placing) or by the lending reader itself (`placed`, taking back what was
// placed), while the reader is inside its call (see the invariant above); moving
// the description between threads moves no access.
unsafe impl Send for Lend {}

impl Lend {
    /// Lends `bufs` (a reader about to sleep; only [`Connection::recv_lent`](crate::Connection::recv_lent) makes
    /// one, and it upholds the invariant above).
    pub(crate) fn new(bufs: &mut [&mut [u8]]) -> Self {
        let bufs: Vec<_> = bufs
            .iter_mut()
            .filter(|b| !b.is_empty())
            .map(|b| (b.as_mut_ptr(), b.len()))
            .collect();
        let cap = bufs.iter().map(|b| b.1).sum();
        Self {
            bufs,
            cap,
            got: 0,
            pending: 0,
            eom: false,
        }
    }

    /// The read can return: the message ended or the buffers are full.
    pub fn done(&self) -> bool {
        self.eom || (self.got >= self.cap && self.pending == 0)
    }

    /// Engine side: the unfilled span of the buffers where the next octets go
    /// (pointer and length; within one buffer), if any.
    fn next_span(&self) -> Option<(*mut u8, usize)> {
        let mut skip = self.got;
        for &(ptr, len) in &self.bufs {
            if skip < len {
                // SAFETY: skip < len: within the buffer.
                return Some((unsafe { ptr.add(skip) }, len - skip));
            }
            skip -= len;
        }
        None
    }

    /// Engine side: the next free span of the buffers (pointer, at most `max`
    /// octets, within one buffer) for octets read straight from the socket, unless
    /// the lend is done. Write into it only under the state lock with the lend in
    /// place (the invariant above), then call [`Self::placed_pending`].
    pub fn free_span(&self, max: usize) -> Option<(*mut u8, usize)> {
        if self.done() {
            return None;
        }
        self.next_span().map(|(p, len)| (p, len.min(max)))
    }

    /// Engine side: `n` octets were written at [`Self::free_span`]; they stay
    /// pending until their FPDU is verified ([`Self::verified`]).
    pub fn placed_pending(&mut self, n: usize) {
        self.got += n;
        self.pending += n;
    }

    /// Every octet of the buffers is placed.
    pub fn full(&self) -> bool {
        self.got >= self.cap
    }

    /// Engine side: the FPDU of the pending octets passed its CRC.
    pub fn verified(&mut self) {
        self.pending = 0;
    }

    /// Engine side: places octets of the front message with `read` (a slice of the
    /// buffers, answering octets written and whether they end the message), up to
    /// the end of the message or of the buffers. Returns whether it placed any.
    /// Reaching a `Lend` at all takes `&mut` through the state lock, and a lend in
    /// the state has a reader blocked in [`Connection::recv_lent`](crate::Connection::recv_lent) behind it (the
    /// invariant above), so the buffers are valid and no one else touches them.
    pub fn fill(&mut self, mut read: impl FnMut(&mut [u8]) -> Option<(usize, bool)>) -> bool {
        let mut any = false;
        while !self.done() {
            let Some((ptr, len)) = self.next_span() else {
                break;
            };
            // SAFETY: the span is within the reader's buffer, valid and touched by
            // no one else while the lend is in the state (the invariant above).
            let dst = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            let Some((n, eom)) = read(dst) else {
                break;
            };
            any = true;
            self.got += n;
            self.eom = eom;
            if n == 0 && !eom {
                break;
            }
        }
        any
    }

    /// The placed octets, for a reader that gives up before the lend is done: they
    /// go back to the front of the inbox so that nothing is taken.
    pub fn placed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.got);
        let mut left = self.got;
        for &(ptr, len) in &self.bufs {
            let k = left.min(len);
            // SAFETY: the reader's own buffers, which it still lends (it calls this
            // under the state lock before it returns); `k` octets were placed.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, k) });
            left -= k;
        }
        out
    }
}

//! How an STag's 32 bits split into a slot index and a key, and where keys come from.
//!
//! A peer names memory by STag alone, so the STag is the only secret between a
//! connection and every other region of the process (docs/architecture.md,
//! "STags and what a peer can guess"). The index takes as few bits as the table's
//! capacity needs (16 for the default 65 535 registrations) and the key takes the
//! rest (16 then; 8 at the 2^24 − 1 maximum). Every registration draws a fresh key
//! from the table's [`KeySource`]; the engine gives a random one, so knowing one STag
//! tells a peer nothing about the others, and each wrong guess costs it the
//! connection (a Terminate).

use super::Stag;

/// Where a table's STag keys come from: any `u32` per call (only the key bits are
/// used). Called under the table's write lock, once or a few times per registration.
pub type KeySource = Box<dyn FnMut() -> u32 + Send + Sync>;

/// A predictable key sequence (SplitMix64 from `seed`): for tests and in-memory use,
/// where nobody untrusted sees an STag. Anything that hands STags to a network peer
/// must give [`MemoryTable::with_keys`](super::MemoryTable::with_keys) a random
/// source (as `eta-engine` does).
pub fn predictable_keys(seed: u64) -> KeySource {
    let mut state = seed;
    Box::new(move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u32
    })
}

/// The split of a table's STags: `index << key_bits | key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    key_bits: u32,
}

impl Layout {
    /// The split for a table of at most `max_entries` registrations (index 0 is
    /// never used, so indices run from 1 to `max_entries`).
    pub fn for_capacity(max_entries: u32) -> Self {
        let index_bits = (32 - max_entries.leading_zeros()).max(1);
        Self {
            key_bits: 32 - index_bits,
        }
    }

    /// Bits of the key.
    pub fn key_bits(self) -> u32 {
        self.key_bits
    }

    /// The key part of a drawn value.
    pub fn key(self, drawn: u32) -> u32 {
        drawn & ((1u32 << self.key_bits) - 1)
    }

    /// The STag of slot `index` with `key`.
    pub fn stag(self, index: u32, key: u32) -> Stag {
        Stag((index << self.key_bits) | self.key(key))
    }

    /// The slot index and key an STag names.
    pub fn split(self, stag: Stag) -> (u32, u32) {
        (stag.0 >> self.key_bits, self.key(stag.0))
    }
}

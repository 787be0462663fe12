//! What the integration tests share: a deterministic PRNG. (The in-memory MPA
//! stream between connections is `eta_ddp_core::link`.)
#![allow(dead_code)]

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
    /// A chunk size in `1..=max`, for [`eta_ddp_core::link::Link::deliver`].
    pub fn chunk(&mut self, max: usize) -> usize {
        1 + self.below(max as u64) as usize
    }
}

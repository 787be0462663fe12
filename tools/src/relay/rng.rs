//! The relay's deterministic random numbers: SplitMix64, one stream per direction
//! of each session, derived from the plan's seed.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for choosing
/// segment sizes and delays; the same seed gives the same sequence everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (`lo` if `hi < lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        if span == u64::MAX {
            return self.next_u64();
        }
        lo + self.next_u64() % (span + 1)
    }

    /// A size in `min..=max` drawn log-uniformly: first a power of two between the
    /// bounds, then a size within it, so 1-octet segments are as likely as 64 KiB
    /// ones and a 1 MiB stream is cut into a few hundred pieces, not a million.
    pub fn log_size(&mut self, min: usize, max: usize) -> usize {
        let min = min.max(1);
        let max = max.max(min);
        let lo_bits = usize::BITS - min.leading_zeros() - 1;
        let hi_bits = usize::BITS - max.leading_zeros() - 1;
        let bits = self.range(u64::from(lo_bits), u64::from(hi_bits)) as u32;
        let lo = (1usize << bits).max(min);
        let hi = ((1usize << bits) * 2 - 1).min(max);
        self.range(lo as u64, hi as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_sizes_in_bounds() {
        let (mut a, mut b) = (SplitMix64::new(7), SplitMix64::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = SplitMix64::new(1);
        let sizes: Vec<usize> = (0..2000).map(|_| r.log_size(1, 65_536)).collect();
        assert!(sizes.iter().all(|s| (1..=65_536).contains(s)));
        assert!(sizes.contains(&1), "one-octet segments occur");
        assert!(sizes.iter().any(|s| *s > 32_768), "large segments occur");
        assert!((0..100).all(|_| r.log_size(5, 5) == 5));
        assert!((0..100).all(|_| r.range(3, 9) <= 9));
    }
}

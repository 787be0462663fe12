//! The RFC 7306 Atomic operations on a target's original value.

use crate::wire::AtomicRequestRepr;
use crate::wire::atomic::AtomicOp;

fn masked_add(a: u64, b: u64, no_carry: u64) -> u64 {
    let mut r = 0u64;
    let mut carry = 0u64;
    for i in 0..64 {
        let s = ((a >> i) & 1) + ((b >> i) & 1) + carry;
        r |= (s & 1) << i;
        carry = if (no_carry >> i) & 1 == 1 { 0 } else { s >> 1 };
    }
    r
}

/// The RFC 7306 operation on the original value.
pub(super) fn apply(req: &AtomicRequestRepr, op: AtomicOp, old: u64) -> u64 {
    match op {
        AtomicOp::FetchAdd => masked_add(old, req.add_swap, req.add_swap_mask),
        AtomicOp::Swap => (old & !req.add_swap_mask) | (req.add_swap & req.add_swap_mask),
        AtomicOp::CompareSwap => {
            if (old & req.compare_mask) == (req.compare & req.compare_mask) {
                (old & !req.add_swap_mask) | (req.add_swap & req.add_swap_mask)
            } else {
                old
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_ops() {
        let mut r = AtomicRequestRepr {
            add_swap: 5,
            ..Default::default()
        };
        assert_eq!(apply(&r, AtomicOp::FetchAdd, 10), 15);
        assert_eq!(apply(&r, AtomicOp::FetchAdd, u64::MAX), 4);
        r.add_swap_mask = 1 << 31;
        assert_eq!(
            apply(&r, AtomicOp::FetchAdd, 0xFFFF_FFFF),
            0x0000_0004,
            "no carry out of bit 31"
        );
        r.add_swap_mask = u64::MAX;
        assert_eq!(apply(&r, AtomicOp::Swap, 10), 5);
        r.compare = 10;
        r.compare_mask = u64::MAX;
        assert_eq!(apply(&r, AtomicOp::CompareSwap, 10), 5);
        assert_eq!(apply(&r, AtomicOp::CompareSwap, 11), 11);
    }
}

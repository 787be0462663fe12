//! The RFC 7306 Atomic Operations on a target's original value (RFC 7306 §5.1).

use crate::wire::AtomicRequestRepr;
use crate::wire::atomic::AtomicOp;

/// `a + b` on the fields of `mask`: a set bit is the most significant bit of a field
/// and the carry out of it is discarded (RFC 7306 §5.1.1).
fn masked_add(a: u64, b: u64, mask: u64) -> u64 {
    let mut r = 0u64;
    let mut carry = 0u64;
    for i in 0..64 {
        let s = ((a >> i) & 1) + ((b >> i) & 1) + carry;
        r |= (s & 1) << i;
        carry = if (mask >> i) & 1 == 1 { 0 } else { s >> 1 };
    }
    r
}

/// The new value of the target whose original value is `old`.
pub(in crate::connection) fn apply(req: &AtomicRequestRepr, op: AtomicOp, old: u64) -> u64 {
    match op {
        AtomicOp::FetchAdd => masked_add(old, req.add_swap, req.add_swap_mask),
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

    /// RFC 7306 §5.1.1's pseudocode, transcribed.
    fn rfc_fetch_add(original: u64, add_data: u64, add_mask: u64) -> u64 {
        let mut bit_location: u64 = 1;
        let mut carry: u64 = 0;
        let mut remote: u64 = 0;
        for bit in 0..64 {
            if bit != 0 {
                bit_location <<= 1;
            }
            let val1 = (original & bit_location) >> bit;
            let val2 = (add_data & bit_location) >> bit;
            let mut sum = carry + val1 + val2;
            carry = (sum & 2) >> 1;
            sum &= 1;
            if sum != 0 {
                remote |= bit_location;
            }
            carry = u64::from(carry != 0 && (add_mask & bit_location) == 0);
        }
        remote
    }

    /// RFC 7306 §5.1.2's pseudocode, transcribed.
    fn rfc_cmp_swap(original: u64, compare: u64, cmask: u64, swap: u64, smask: u64) -> u64 {
        if ((compare ^ original) & cmask) == 0 {
            (original & !smask) | (swap & smask)
        } else {
            original
        }
    }

    fn req(
        add_swap: u64,
        add_swap_mask: u64,
        compare: u64,
        compare_mask: u64,
    ) -> AtomicRequestRepr {
        AtomicRequestRepr {
            add_swap,
            add_swap_mask,
            compare,
            compare_mask,
            ..Default::default()
        }
    }

    #[test]
    fn atomic_ops() {
        let r = req(5, 0, 0, u64::MAX);
        assert_eq!(apply(&r, AtomicOp::FetchAdd, 10), 15);
        assert_eq!(apply(&r, AtomicOp::FetchAdd, u64::MAX), 4);
        let r = req(5, 1 << 31, 0, u64::MAX);
        assert_eq!(
            apply(&r, AtomicOp::FetchAdd, 0xFFFF_FFFF),
            0x0000_0004,
            "no carry out of bit 31"
        );
        let r = req(5, u64::MAX, 10, u64::MAX);
        assert_eq!(apply(&r, AtomicOp::CompareSwap, 10), 5);
        assert_eq!(apply(&r, AtomicOp::CompareSwap, 11), 11);
    }

    /// The masked operations equal the RFC's pseudocode, on edge values and a
    /// pseudo-random sweep.
    #[test]
    fn masked_operations_match_rfc_pseudocode() {
        let edges = [
            0,
            1,
            0x7F,
            0x80,
            0xFF,
            0x8000_0000,
            0xFFFF_FFFF,
            0x8000_0000_8000_0080,
            0x0101_0101_0101_0101,
            0x8080_8080_8080_8080,
            u64::MAX,
        ];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values: Vec<u64> = edges.to_vec();
        values.extend((0..40).map(|_| next()));
        for &a in &values {
            for &b in &values {
                for &m in &edges {
                    assert_eq!(
                        apply(&req(b, m, 0, u64::MAX), AtomicOp::FetchAdd, a),
                        rfc_fetch_add(a, b, m),
                        "FetchAdd {a:#x} + {b:#x}, mask {m:#x}"
                    );
                    let c = next();
                    let cm = next();
                    for compare in [a, c, a ^ (cm & 1)] {
                        assert_eq!(
                            apply(&req(b, m, compare, cm), AtomicOp::CompareSwap, a),
                            rfc_cmp_swap(a, compare, cm, b, m),
                            "CmpSwap {a:#x}: compare {compare:#x}/{cm:#x}, swap {b:#x}/{m:#x}"
                        );
                    }
                }
            }
        }
    }
}

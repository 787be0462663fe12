//! Maximum ULPDU size from the TCP effective maximum segment size (RFC 5044 §4.5).

/// The smallest MULPDU MPA may use, whatever the EMSS (RFC 5044 §4.5).
pub const MIN_MULPDU: u16 = 128;

/// MULPDU for an EMSS, with or without markers in the sending direction.
///
/// Without markers: `EMSS − (6 + EMSS mod 4)`. With markers (worst case):
/// `EMSS − (6 + 4·⌈EMSS/512⌉ + EMSS mod 4)`. The result is never below
/// [`MIN_MULPDU`] and never above what the 16-bit ULPDU_Length can carry.
///
/// ```
/// // Ethernet, IPv4, TCP timestamps: EMSS 1448.
/// assert_eq!(eta_mpa::mulpdu(1448, false), 1442);
/// assert_eq!(eta_mpa::mulpdu(1448, true), 1430);
/// ```
pub fn mulpdu(emss: u32, markers: bool) -> u16 {
    let emss = u64::from(emss);
    let mut overhead = 6 + emss % 4;
    if markers {
        overhead += 4 * emss.div_ceil(512);
    }
    let m = emss.saturating_sub(overhead);
    let cap = if markers {
        MAX_MULPDU_WITH_MARKERS
    } else {
        u16::MAX
    };
    m.clamp(u64::from(MIN_MULPDU), u64::from(cap)) as u16
}

/// The largest ULPDU that can be framed with markers: its FPDU, with every marker
/// it can contain, stays within 65 532 octets, so every FPDUPTR fits in 16 bits.
pub const MAX_MULPDU_WITH_MARKERS: u16 = 65_014;

/// Pad octets after a ULPDU of `ulpdu_len` octets: `(4 − ((2 + len) mod 4)) mod 4`.
#[inline]
pub fn pad_len(ulpdu_len: usize) -> usize {
    (4 - ((2 + ulpdu_len) % 4)) % 4
}

/// Octets of an FPDU carrying a ULPDU of `ulpdu_len` octets, markers not counted:
/// length field, ULPDU, pad, CRC.
#[inline]
pub fn fpdu_len(ulpdu_len: usize) -> usize {
    2 + ulpdu_len + pad_len(ulpdu_len) + 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_without_markers() {
        assert_eq!(mulpdu(1460, false), 1454);
        assert_eq!(mulpdu(1448, false), 1442);
        assert_eq!(mulpdu(1449, false), 1442);
        assert_eq!(mulpdu(1451, false), 1442);
        // Loopback: MTU 65536 with timestamps gives EMSS 65483.
        assert_eq!(mulpdu(65483, false), 65483 - 6 - 3);
        // RFC 5041 §5.2 example: MULPDU 1500 leaves 1482 for untagged payload.
        assert_eq!(mulpdu(1506, false) - 18, 1480);
    }

    #[test]
    fn formula_with_markers() {
        assert_eq!(mulpdu(1460, true), 1460 - 6 - 12);
        assert_eq!(mulpdu(512, true), 512 - 6 - 4);
        assert_eq!(mulpdu(513, true), 513 - 6 - 8 - 1);
    }

    #[test]
    fn never_below_128_never_above_u16() {
        for emss in [0, 1, 64, 127, 133, 134] {
            assert_eq!(mulpdu(emss, false), 128, "emss {emss}");
            assert_eq!(mulpdu(emss, true), 128, "emss {emss}");
        }
        assert_eq!(mulpdu(u32::MAX, false), u16::MAX);
        let with_markers = mulpdu(u32::MAX, true);
        assert!(fpdu_len(usize::from(with_markers)) + 4 * 129 <= 65_536);
    }

    #[test]
    fn fpdu_sizes_are_multiples_of_four() {
        for len in 0..100 {
            assert_eq!(fpdu_len(len) % 4, 0);
            assert!(pad_len(len) < 4);
        }
        assert_eq!(fpdu_len(23), 32); // "hello" Send, docs/wire-facts.md §7.3
        assert_eq!(fpdu_len(46), 52); // Read Request
    }
}

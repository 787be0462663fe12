//! CRC32c as MPA uses it (RFC 5044 §4.4): the iSCSI digest (Castagnoli polynomial,
//! reflected, preset and final XOR `0xFFFFFFFF`), serialized least-significant byte
//! first on the wire.
//!
//! The computation is done by the `crc32c` crate, which uses the SSE4.2 `crc32`
//! instruction (x86-64) or the ARMv8 CRC extension when the CPU has them and a table
//! fallback otherwise.

/// CRC32c of `data`.
///
/// ```
/// assert_eq!(eta_mpa::crc::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continues a CRC32c computed over earlier bytes with `data`:
/// `append(crc32c(a), b) == crc32c(a ++ b)`.
#[inline]
pub fn append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The four CRC octets in the order they are sent (RFC 5044 §4.4, as iSCSI):
/// least-significant byte first.
#[inline]
pub fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

/// The CRC value carried by four CRC octets read from the wire.
#[inline]
pub fn from_wire(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/wire-facts.md §7.1: RFC 7143 App. A.4 / RFC 3720 §B.4 vectors, value and wire bytes.
    #[test]
    fn rfc_7143_vectors() {
        let ascending: Vec<u8> = (0u8..32).collect();
        let descending: Vec<u8> = (0u8..32).rev().collect();
        let mut iscsi_read = vec![0x01, 0xc0, 0x00, 0x00];
        iscsi_read.extend_from_slice(&[0; 12]);
        iscsi_read.extend_from_slice(&[
            0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
            0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        ]);
        assert_eq!(iscsi_read.len(), 48);
        let cases: [(&[u8], u32, [u8; 4]); 7] = [
            (b"123456789", 0xE306_9283, [0x83, 0x92, 0x06, 0xe3]),
            (b"", 0, [0, 0, 0, 0]),
            (&[0u8; 32], 0x8A91_36AA, [0xaa, 0x36, 0x91, 0x8a]),
            (&[0xffu8; 32], 0x62A8_AB43, [0x43, 0xab, 0xa8, 0x62]),
            (&ascending, 0x46DD_794E, [0x4e, 0x79, 0xdd, 0x46]),
            (&descending, 0x113F_DB5C, [0x5c, 0xdb, 0x3f, 0x11]),
            (&iscsi_read, 0xD996_3A56, [0x56, 0x3a, 0x96, 0xd9]),
        ];
        for (input, value, wire) in cases {
            assert_eq!(crc32c(input), value, "value of {input:02x?}");
            assert_eq!(to_wire(value), wire);
            assert_eq!(from_wire(wire), value);
        }
    }

    #[test]
    fn append_equals_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 3, 4, 511, 999, 1000] {
            let (a, b) = data.split_at(split);
            assert_eq!(append(crc32c(a), b), crc32c(&data));
        }
    }
}

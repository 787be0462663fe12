//! Markers, as property tests: the CRC the framer computes over an FPDU with
//! markers equals the plain CRC32c of the FPDU's octets as they are on the wire,
//! whatever the marker phase and however the ULPDU is sliced; and a wrong marker is
//! reported where it is, however the stream is cut.

mod common;

use common::{config, cut_sizes, deframe_chunks, resegment};
use eta_mpa::{Framer, FramerConfig, MAX_MULPDU_WITH_MARKERS, MpaError, crc, markers};
use proptest::prelude::*;

/// `len` octets of test data.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(151) ^ seed.wrapping_add((i >> 8) as u8))
        .collect()
}

/// Offsets in `wire` (which starts at stream position `start`) where markers sit.
fn marker_offsets(start: u32, wire: &[u8]) -> Vec<usize> {
    (0..wire.len())
        .step_by(4)
        .filter(|&off| markers::at_marker(start.wrapping_add(off as u32)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn marker_crc_equals_the_naive_crc(
        start in any::<u32>(),
        len in prop_oneof![0usize..2048, 0usize..=usize::from(MAX_MULPDU_WITH_MARKERS)],
        header_len in 0usize..80,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        seed in any::<u8>(),
    ) {
        let start = start & !3;
        let ulpdu = data(len, seed);
        let (header, payload) = ulpdu.split_at(header_len.min(len));
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for c in cuts {
            pieces.push(&payload[prev..c]);
            prev = c;
        }
        pieces.push(&payload[prev..]);

        let mut framer = Framer::resume(FramerConfig { crc: true, markers: true }, start);
        let wire = framer.frame_to_vec(header, &pieces).unwrap();
        let n = wire.len();
        let field = crc::from_wire(wire[n - 4..].try_into().unwrap());
        prop_assert_eq!(field, crc::crc32c(&wire[..n - 4]), "start {} len {}", start, len);
        // The markers the CRC covers are where they belong, pointing back to the
        // length field (0 for one that opens the FPDU).
        let hdr = if markers::at_marker(start) { 4 } else { 0 };
        for off in marker_offsets(start, &wire) {
            let ptr = markers::decode(wire[off..off + 4].try_into().unwrap());
            let expected = if off == 0 { 0 } else { off - hdr };
            prop_assert_eq!(usize::from(ptr), expected, "marker at {}", off);
        }
    }

    #[test]
    fn a_wrong_marker_is_reported_where_it_is(
        crc_on in any::<bool>(),
        start in any::<u32>(),
        lens in prop::collection::vec(0usize..=20_000, 1..5),
        which in any::<prop::sample::Index>(),
        bit in 2u32..16,
        cuts in cut_sizes(),
    ) {
        let start = start & !3;
        let mut framer = Framer::resume(FramerConfig { crc: crc_on, markers: true }, start);
        let mut wire = Vec::new();
        for (i, len) in lens.iter().enumerate() {
            let header = [0xc1u8, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, i as u8];
            wire.extend(framer.frame_to_vec(&header, &[&data(*len, i as u8)]).unwrap());
        }
        let offsets = marker_offsets(start, &wire);
        prop_assume!(!offsets.is_empty());
        let off = offsets[which.index(offsets.len())];
        // Flip one FPDUPTR bit that is checked (the two low bits are ignored).
        let [hi, lo] = (1u16 << bit).to_be_bytes();
        wire[off + 2] ^= hi;
        wire[off + 3] ^= lo;

        let mut d = eta_mpa::Deframer::resume(config(crc_on, true), start);
        let (_, err) = deframe_chunks(&mut d, resegment(&wire, &cuts));
        let position = start.wrapping_add(off as u32);
        prop_assert!(
            matches!(err, Some(MpaError::MarkerMismatch { position: p, .. }) if p == position),
            "{:?}, expected a marker mismatch at {}", err, position
        );
    }
}

//! Property tests: framer → random resegmentation → deframer returns exactly the
//! original ULPDUs; and no input, however malformed, makes the deframer or the
//! startup reader panic, loop or misreport.

mod common;

use common::{Got, config, cut_sizes, deframe_chunks, resegment};
use eta_mpa::{
    Deframer, DeframerConfig, FrameKind, Framer, FramerConfig, MAX_MULPDU_WITH_MARKERS, MpaError,
    StartupReader, mulpdu,
};
use proptest::prelude::*;

/// Largest ULPDU on loopback (EMSS 65483).
fn loopback_mulpdu(markers: bool) -> usize {
    usize::from(mulpdu(65483, markers))
}

#[derive(Debug, Clone)]
struct Ulpdu {
    header: Vec<u8>,
    /// Payload split into the slices handed to the framer.
    pieces: Vec<Vec<u8>>,
}

impl Ulpdu {
    fn payload(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

/// A ULPDU with a DDP-like header (so the deframer's header split is exercised) and
/// a payload of `len` octets in up to 4 pieces.
fn ulpdu(max: usize) -> impl Strategy<Value = Ulpdu> {
    let sizes = prop_oneof![
        6 => 0usize..64,
        3 => 0usize..2048,
        1 => 0usize..=max - 18,
        1 => Just(max - 18),
    ];
    (any::<bool>(), sizes, 1usize..4, any::<u8>()).prop_map(|(tagged, len, n_pieces, seed)| {
        let header: Vec<u8> = if tagged {
            let mut h = vec![0xc1, 0x40];
            h.extend((0..12).map(|i| seed.wrapping_add(i)));
            h
        } else {
            let mut h = vec![0x41, 0x43];
            h.extend((0..16).map(|i| seed.wrapping_mul(3).wrapping_add(i)));
            h
        };
        let payload: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        let cut = len / n_pieces;
        let mut pieces = Vec::new();
        let mut rest = &payload[..];
        for _ in 1..n_pieces {
            let (a, b) = rest.split_at(cut.min(rest.len()));
            pieces.push(a.to_vec());
            rest = b;
        }
        pieces.push(rest.to_vec());
        Ulpdu { header, pieces }
    })
}

fn frame_stream(framer: &mut Framer, ulpdus: &[Ulpdu]) -> Vec<u8> {
    let mut wire = Vec::new();
    for u in ulpdus {
        let pieces: Vec<&[u8]> = u.pieces.iter().map(|p| &p[..]).collect();
        let before =
            framer.wire_len(u.header.len() + pieces.iter().map(|p| p.len()).sum::<usize>());
        let fpdu = framer.frame_to_vec(&u.header, &pieces).unwrap();
        assert_eq!(fpdu.len(), before, "wire_len predicts the FPDU length");
        assert_eq!(fpdu.len() % 4, 0);
        wire.extend_from_slice(&fpdu);
    }
    wire
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn framer_resegment_deframer_round_trip(
        crc in any::<bool>(),
        markers in any::<bool>(),
        start in any::<u32>(),
        ulpdus in prop::collection::vec(ulpdu(65_474), 1..12),
        cuts in cut_sizes(),
    ) {
        let max = loopback_mulpdu(markers);
        let ulpdus: Vec<Ulpdu> = ulpdus
            .into_iter()
            .map(|mut u| {
                // Keep each ULPDU within the MULPDU for this marker setting.
                let room = max - u.header.len();
                let mut total = 0;
                for p in &mut u.pieces {
                    p.truncate(room - total.min(room));
                    total += p.len();
                }
                u
            })
            .collect();
        let start = start & !3;
        let cfg = FramerConfig { crc, markers };
        let mut framer = Framer::resume(cfg, start);
        let wire = frame_stream(&mut framer, &ulpdus);
        prop_assert_eq!(framer.position(), start.wrapping_add(wire.len() as u32));

        let mut d = Deframer::resume(config(crc, markers), start);
        let (got, err) = deframe_chunks(&mut d, resegment(&wire, &cuts));
        prop_assert_eq!(err, None);
        prop_assert!(d.at_boundary());
        prop_assert_eq!(d.position(), framer.position());
        let expected: Vec<Got> = ulpdus
            .iter()
            .map(|u| {
                let mut all = u.header.clone();
                all.extend(u.payload());
                let hlen = common::ddp_header_len(&all[..all.len().min(2)]).min(all.len());
                Got {
                    ulpdu_len: all.len() as u16,
                    header: all[..hlen].to_vec(),
                    payload: all[hlen..].to_vec(),
                    ended: true,
                }
            })
            .collect();
        prop_assert_eq!(got, expected);
    }

    /// Flipping any bit of a CRC-protected stream is caught (CRC or, with markers, a
    /// marker check) and nothing after it is delivered as complete.
    #[test]
    fn any_bit_flip_is_detected(
        markers in any::<bool>(),
        ulpdus in prop::collection::vec(ulpdu(4000), 1..4),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut framer = Framer::new(FramerConfig { crc: true, markers });
        let mut wire = frame_stream(&mut framer, &ulpdus);
        let at = flip.index(wire.len());
        wire[at] ^= 1 << bit;
        let mut d = Deframer::new(DeframerConfig { max_ulpdu: 4096, ..config(true, markers) });
        let (got, err) = deframe_chunks(&mut d, [&wire[..]]);
        // Either an error, or (a flipped length can make the stream end early) the
        // deframer still waits for more: never all FPDUs complete and intact.
        let complete = got.iter().filter(|g| g.ended).count();
        prop_assert!(err.is_some() || complete < ulpdus.len(), "flip at {} undetected", at);
        if let Some(e) = err {
            let expected_kind = matches!(
                e,
                MpaError::CrcMismatch { .. }
                    | MpaError::MarkerMismatch { .. }
                    | MpaError::UlpduTooLong { .. }
            );
            prop_assert!(expected_kind, "unexpected error {:?}", e);
            // Poisoned: the same error again, nothing more delivered.
            prop_assert_eq!(d.advance(&[0; 64]), Err(e));
        }
    }

    /// Arbitrary octets never panic the deframer; every call makes progress or asks
    /// for input, and it never reports more payload than ULPDU_Length allows.
    #[test]
    fn garbage_never_panics(
        crc in any::<bool>(),
        markers in any::<bool>(),
        max_ulpdu in any::<u16>(),
        bytes in prop::collection::vec(any::<u8>(), 0..5000),
        cuts in cut_sizes(),
    ) {
        let mut d = Deframer::new(DeframerConfig { max_ulpdu, ..config(crc, markers) });
        let (got, _err) = deframe_chunks(&mut d, resegment(&bytes, &cuts));
        for g in got {
            prop_assert!(g.header.len() + g.payload.len() <= usize::from(g.ulpdu_len));
            prop_assert!(g.ulpdu_len <= max_ulpdu);
        }
    }

    #[test]
    fn startup_reader_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..700),
        cuts in cut_sizes(),
        reply in any::<bool>(),
        keyed in any::<bool>(),
    ) {
        let kind = if reply { FrameKind::Reply } else { FrameKind::Request };
        let mut bytes = bytes;
        if keyed && bytes.len() >= 16 {
            bytes[..16].copy_from_slice(kind.key());
        }
        let mut r = StartupReader::new(kind);
        for chunk in resegment(&bytes, &cuts) {
            match r.push(chunk) {
                Ok(eta_mpa::ReadProgress::Complete { consumed }) => {
                    prop_assert!(consumed <= chunk.len());
                    let f = r.frame().expect("complete frame parses");
                    prop_assert!(f.private_data.len() <= 512);
                    break;
                }
                Ok(eta_mpa::ReadProgress::NeedMore) => {}
                Err(_) => break,
            }
        }
    }
}

#[test]
fn largest_fpdus_with_and_without_markers() {
    for markers in [false, true] {
        let max = if markers {
            usize::from(MAX_MULPDU_WITH_MARKERS)
        } else {
            usize::from(u16::MAX)
        };
        for start in [0u32, 4, 508, 0x1EC, u32::MAX - 3] {
            let header = [0xc1u8, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
            let payload: Vec<u8> = (0..max - 14).map(|i| i as u8).collect();
            let mut framer = Framer::resume(FramerConfig { crc: true, markers }, start);
            let wire = framer.frame_to_vec(&header, &[&payload]).unwrap();
            let mut d = Deframer::resume(config(true, markers), start);
            let (got, err) = deframe_chunks(&mut d, wire.chunks(1000));
            assert_eq!(err, None, "markers {markers} start {start}");
            assert_eq!(got[0].payload, payload);
        }
    }
    // One more octet than 16 bits can carry is refused without output.
    let mut framer = Framer::new(FramerConfig {
        crc: true,
        markers: false,
    });
    let big = vec![0u8; 65_536];
    assert!(framer.frame_to_vec(&[], &[&big]).is_err());
    assert_eq!(framer.position(), 0);
}

#[test]
fn ulpdu_longer_than_configured_maximum() {
    let mut framer = Framer::new(FramerConfig {
        crc: true,
        markers: false,
    });
    let wire = framer.frame_to_vec(&[0x41, 0x43], &[&[0u8; 300]]).unwrap();
    let mut d = Deframer::new(DeframerConfig {
        max_ulpdu: 256,
        ..config(true, false)
    });
    let (got, err) = deframe_chunks(&mut d, [&wire[..]]);
    assert!(got.is_empty());
    let err = err.unwrap();
    assert_eq!(err, MpaError::UlpduTooLong { len: 302, max: 256 });
    assert_eq!(err.code().value(), 0x05);
}

#[test]
fn crc_and_marker_errors_map_to_rfc_codes() {
    let mut framer = Framer::new(FramerConfig {
        crc: true,
        markers: true,
    });
    let header = [0x41u8, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    let payload = vec![7u8; 2000];
    let wire = framer.frame_to_vec(&header, &[&payload]).unwrap();
    // Corrupt the marker at 512: FPDUPTR becomes wrong, CRC unchanged elsewhere.
    let mut bad_marker = wire.clone();
    bad_marker[512 + 3] ^= 0x10;
    let mut d = Deframer::new(config(true, true));
    let (_, err) = deframe_chunks(&mut d, [&bad_marker[..]]);
    let err = err.unwrap();
    assert!(
        matches!(err, MpaError::MarkerMismatch { position: 512, .. }),
        "{err:?}"
    );
    assert_eq!(err.code().value(), 0x03);
    // Corrupt a payload octet: CRC error, the payload already reported is not
    // followed by End.
    let mut bad_crc = wire.clone();
    bad_crc[700] ^= 1;
    let mut d = Deframer::new(config(true, true));
    let (got, err) = deframe_chunks(&mut d, [&bad_crc[..]]);
    assert!(!got[0].ended);
    let err = err.unwrap();
    assert!(matches!(err, MpaError::CrcMismatch { .. }));
    assert_eq!(err.code().value(), 0x02);
    // With CRC off the same corruption passes (the field is not checked).
    let mut framer = Framer::new(FramerConfig {
        crc: false,
        markers: false,
    });
    let mut wire = framer.frame_to_vec(&header, &[&payload]).unwrap();
    wire[700] ^= 1;
    let mut d = Deframer::new(config(false, false));
    let (got, err) = deframe_chunks(&mut d, [&wire[..]]);
    assert_eq!(err, None);
    assert!(got[0].ended);
}

#[test]
fn payload_run_allows_direct_placement() {
    let mut framer = Framer::new(FramerConfig {
        crc: true,
        markers: true,
    });
    let header = [0xc1u8, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let wire = framer.frame_to_vec(&header, &[&payload]).unwrap();
    let mut d = Deframer::new(config(true, true));
    let mut input = &wire[..];
    let mut placed = Vec::new();
    let mut ended = false;
    while !ended {
        let run = d.payload_run();
        if run > 0 {
            // The engine would read `run` octets from the socket straight into the
            // destination; here the "socket" is `input`.
            let dest_start = placed.len();
            placed.extend_from_slice(&input[..run]);
            let (used, ev) = d.advance(&placed[dest_start..]).unwrap();
            assert_eq!(used, run);
            assert!(matches!(ev, eta_mpa::Event::Payload(p) if p.len() == run));
            input = &input[run..];
            assert!(run <= 508, "runs stop at markers");
            continue;
        }
        let (used, ev) = d.advance(&input[..input.len().min(3)]).unwrap();
        input = &input[used..];
        match ev {
            eta_mpa::Event::Payload(p) => placed.extend_from_slice(p),
            eta_mpa::Event::End => ended = true,
            _ => {}
        }
    }
    assert_eq!(placed, payload);
}

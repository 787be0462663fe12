//! Every FPDU vector of docs/wire-facts.md §7.2–7.3, in both directions: the framer emits the
//! bytes exactly, and the deframer reads the fields back from them.

mod common;

use common::{config, deframe_all, deframe_chunks, hex};
use eta_mpa::{Deframer, Framer, FramerConfig};

struct Vector {
    name: &'static str,
    header: &'static str,
    payload: Vec<u8>,
    wire_crc: &'static str,
}

fn vectors() -> Vec<Vector> {
    vec![
        Vector {
            name: "zero-length Write RTR",
            header: "c1 40 00 00 00 01 00 00 00 00 00 00 00 00",
            payload: vec![],
            wire_crc: "00 0e c1 40 00 00 00 01 00 00 00 00 00 00 00 00 eb d3 4c 5f",
        },
        Vector {
            name: "zero-length Read RTR",
            header: "41 41 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 00 \
                     00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00",
            payload: vec![],
            wire_crc: "00 2e 41 41 00 00 00 00 00 00 00 01 00 00 00 01 \
                       00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
                       00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 ba 10 e3 c9",
        },
        Vector {
            name: "zero-length Read Response",
            header: "c1 42 00 00 00 00 00 00 00 00 00 00 00 00",
            payload: vec![],
            wire_crc: "00 0e c1 42 00 00 00 00 00 00 00 00 00 00 00 00 69 75 d6 ca",
        },
        Vector {
            name: "Send hello",
            header: "41 43 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00",
            payload: b"hello".to_vec(),
            wire_crc: "00 17 41 43 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 \
                       68 65 6c 6c 6f 00 00 00 b9 90 b1 0c",
        },
        Vector {
            name: "Terminate LLP/MPA/CRC, RFC layout",
            header: "41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 20 02 00 00",
            payload: vec![],
            wire_crc: "00 16 41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 20 02 00 00 7f e4 25 85",
        },
        Vector {
            name: "Terminate LLP/MPA/CRC, siw little-endian layout",
            header: "41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 02 02 00 00",
            payload: vec![],
            wire_crc: "00 16 41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 02 02 00 00 75 d3 67 ed",
        },
    ]
}

#[test]
fn wire_facts_7_3_emit_and_parse_crc_on_and_off() {
    for v in vectors() {
        let header = hex(v.header);
        let with_crc = hex(v.wire_crc);
        let mut without_crc = with_crc.clone();
        let n = without_crc.len();
        without_crc[n - 4..].copy_from_slice(&[0; 4]);
        for (crc, expected) in [(true, &with_crc), (false, &without_crc)] {
            let mut framer = Framer::new(FramerConfig {
                crc,
                markers: false,
            });
            let wire = framer.frame_to_vec(&header, &[&v.payload]).unwrap();
            assert_eq!(&wire, expected, "{} (crc {crc}): emit", v.name);
            assert_eq!(framer.position() as usize, wire.len());

            // Parse back, whole and one octet at a time.
            for bytewise in [false, true] {
                let mut d = Deframer::new(config(crc, false));
                let (got, err) = if bytewise {
                    deframe_chunks(&mut d, expected.chunks(1))
                } else {
                    deframe_all(&mut d, expected)
                };
                assert_eq!(err, None, "{}: parse", v.name);
                assert_eq!(got.len(), 1);
                assert!(got[0].ended);
                assert_eq!(got[0].header, header, "{}: header", v.name);
                assert_eq!(got[0].payload, v.payload, "{}: payload", v.name);
                assert!(d.at_boundary());
            }
        }
    }
}

/// RFC 5044 Figure 5: the first FPDU of a stream with markers (leading FPDUPTR 0
/// marker covered by the CRC).
#[test]
fn rfc5044_figure5_leading_marker() {
    let header = hex("41 43 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00");
    let payload = [0u8; 24];
    let mut expected = hex("00 00 00 00 00 2a");
    expected.extend_from_slice(&header);
    expected.extend_from_slice(&payload);
    expected.extend_from_slice(&hex("52 23 99 83"));
    assert_eq!(expected.len(), 52);

    let mut framer = Framer::new(FramerConfig {
        crc: true,
        markers: true,
    });
    assert_eq!(framer.frame_to_vec(&header, &[&payload]).unwrap(), expected);

    let mut d = Deframer::new(config(true, true));
    let (got, err) = deframe_all(&mut d, &expected);
    assert_eq!(err, None);
    assert_eq!(got[0].header, header);
    assert_eq!(got[0].payload, payload);
}

/// RFC 5044 Figure 6: an FPDU starting at stream offset 0x1EC; the marker at 0x200
/// splits it after the DDP header with FPDUPTR 20.
#[test]
fn rfc5044_figure6_marker_inside_fpdu() {
    let header = hex("41 43 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00 00");
    let payload = [0u8; 24];
    let mut expected = hex("00 2a");
    expected.extend_from_slice(&header);
    expected.extend_from_slice(&hex("00 00 00 14"));
    expected.extend_from_slice(&payload);
    expected.extend_from_slice(&hex("84 92 58 98"));
    assert_eq!(expected.len(), 52);

    let mut framer = Framer::resume(
        FramerConfig {
            crc: true,
            markers: true,
        },
        0x1EC,
    );
    assert_eq!(framer.frame_to_vec(&header, &[&payload]).unwrap(), expected);

    for chunk in [1, 3, 52] {
        let mut d = Deframer::resume(config(true, true), 0x1EC);
        let (got, err) = deframe_chunks(&mut d, expected.chunks(chunk));
        assert_eq!(err, None);
        assert_eq!(got[0].header, header);
        assert_eq!(got[0].payload, payload);
    }
}

//! Helpers shared by the mpa integration tests.
#![allow(dead_code)]

use eta_mpa::{Deframer, DeframerConfig, Event, MpaError};
use proptest::prelude::*;

/// Parses a hex string like "00 2a 41 43".
pub fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

/// DDP/RDMAP header length by the DDP control and RDMAP opcode (RFC 5040/5041), as
/// the layer above would tell the deframer.
pub fn ddp_header_len(first: &[u8]) -> usize {
    match first {
        [ctrl, ..] if ctrl & 0x80 != 0 => 14,
        [_, rdmap] => match rdmap & 0x0f {
            0x1 => 18 + 28,
            0x7 => 18 + 4,
            _ => 18,
        },
        _ => 18,
    }
}

/// A config for tests.
pub fn config(crc: bool, markers: bool) -> DeframerConfig {
    DeframerConfig {
        crc,
        markers,
        max_ulpdu: u16::MAX,
        header_len: ddp_header_len,
    }
}

/// One ULPDU as the deframer reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Got {
    pub ulpdu_len: u16,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub ended: bool,
}

/// Feeds `chunks` to the deframer and collects every ULPDU, stopping at the first
/// error (returned with what was collected before it).
pub fn deframe_chunks<'a>(
    d: &mut Deframer,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Got>, Option<MpaError>) {
    let mut out: Vec<Got> = Vec::new();
    for chunk in chunks {
        let mut input = chunk;
        loop {
            match d.advance(input) {
                Err(e) => return (out, Some(e)),
                Ok((used, ev)) => {
                    assert!(used <= input.len());
                    input = &input[used..];
                    match ev {
                        Event::NeedInput => {
                            assert!(input.is_empty(), "NeedInput with input left");
                            break;
                        }
                        Event::Header { ulpdu_len, header } => out.push(Got {
                            ulpdu_len,
                            header: header.as_slice().to_vec(),
                            payload: Vec::new(),
                            ended: false,
                        }),
                        Event::Payload(run) => {
                            assert!(!run.is_empty(), "empty payload run");
                            let cur = out.last_mut().expect("payload before header");
                            assert!(!cur.ended);
                            cur.payload.extend_from_slice(run);
                        }
                        Event::End => {
                            let cur = out.last_mut().expect("end before header");
                            assert!(!cur.ended, "two ends");
                            assert_eq!(
                                cur.header.len() + cur.payload.len(),
                                usize::from(cur.ulpdu_len)
                            );
                            cur.ended = true;
                        }
                    }
                }
            }
        }
    }
    (out, None)
}

pub fn deframe_all(d: &mut Deframer, bytes: &[u8]) -> (Vec<Got>, Option<MpaError>) {
    deframe_chunks(d, [bytes])
}

/// Cuts `wire` at random points (chunk sizes from 1 octet to the whole stream).
pub fn resegment<'w>(wire: &'w [u8], cuts: &[usize]) -> Vec<&'w [u8]> {
    let mut chunks = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
        i += 1;
    }
    chunks
}

/// Chunk sizes for [`resegment`].
pub fn cut_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![4 => 1usize..8, 3 => 1usize..600, 2 => 1usize..70_000, 1 => Just(1usize << 20)],
        0..200,
    )
}

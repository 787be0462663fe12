//! Entry points for coverage-guided fuzzers (see `fuzz/` at the workspace root) and
//! for the randomized tests. Each takes arbitrary octets, drives a parser with them,
//! and panics only if an invariant of this crate is broken.

use crate::deframer::{Deframer, DeframerConfig, Event, MAX_HEADER};
use crate::startup::frame::{FrameKind, StartupRepr};
use crate::startup::negotiate::{self, LocalConfig};
use crate::startup::reader::{ReadProgress, StartupReader};

/// Feeds `data` to a [`StartupReader`] (its first octet picks the kind and the chunk
/// size) and negotiates on whatever frame comes out, in both roles.
pub fn startup(data: &[u8]) {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let kind = if sel & 1 == 0 {
        FrameKind::Request
    } else {
        FrameKind::Reply
    };
    let chunk = usize::from(sel >> 1).max(1);
    let mut reader = StartupReader::new(kind);
    for piece in data.chunks(chunk) {
        match reader.push(piece) {
            Ok(ReadProgress::NeedMore) => continue,
            Ok(ReadProgress::Complete { consumed }) => {
                assert!(consumed <= piece.len());
                let frame = reader.frame().expect("a complete frame parses");
                assert!(frame.pd_length() <= 512);
                check_negotiation(&frame);
                return;
            }
            Err(_) => return,
        }
    }
    // Whole-frame parsing must agree with itself on the same octets.
    if let Ok(frame) = StartupRepr::parse_bytes(data) {
        let again = frame.to_vec().expect("a parsed frame re-emits");
        assert_eq!(again.len(), data.len());
    }
}

fn check_negotiation(frame: &StartupRepr<'_>) {
    let cfg = LocalConfig::default();
    match frame.kind {
        FrameKind::Request => {
            if let Ok(n) = negotiate::on_request(&cfg, frame) {
                let reply = negotiate::reply(&cfg, frame, &n, b"").expect("reply builds");
                reply.to_vec().expect("reply emits");
            } else {
                negotiate::reject(&cfg, frame, b"")
                    .to_vec()
                    .expect("reject emits");
            }
        }
        FrameKind::Reply => {
            let _ = negotiate::on_reply(&cfg, frame);
        }
    }
}

/// Feeds `data` to a [`Deframer`] (its first octet picks CRC, markers, a ULPDU limit
/// and the chunk size) and checks what comes out against the framing rules.
pub fn deframer(data: &[u8]) {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let cfg = DeframerConfig {
        crc: sel & 1 != 0,
        markers: sel & 2 != 0,
        max_ulpdu: if sel & 4 != 0 { 1024 } else { u16::MAX },
        header_len: |first| match first.first() {
            Some(c) if c & 0x80 != 0 => 14,
            _ => 18,
        },
    };
    let chunk = usize::from(sel >> 3).max(1);
    let mut d = Deframer::new(cfg);
    let mut current: Option<(usize, usize)> = None; // (ulpdu_len, octets seen)
    for piece in data.chunks(chunk) {
        let mut input = piece;
        loop {
            let Ok((used, ev)) = d.advance(input) else {
                return;
            };
            assert!(used <= input.len());
            input = &input[used..];
            match ev {
                Event::NeedInput => break,
                Event::Header { ulpdu_len, header } => {
                    assert!(current.is_none(), "header inside a ULPDU");
                    assert!(header.as_slice().len() <= MAX_HEADER);
                    assert!(ulpdu_len <= cfg.max_ulpdu);
                    current = Some((usize::from(ulpdu_len), header.as_slice().len()));
                }
                Event::Payload(run) => {
                    let (len, seen) = current.as_mut().expect("payload outside a ULPDU");
                    *seen += run.len();
                    assert!(*seen <= *len, "more payload than ULPDU_Length");
                }
                Event::End => {
                    let (len, seen) = current.take().expect("end outside a ULPDU");
                    assert_eq!(len, seen, "ULPDU ended early");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A deterministic smoke run of both entry points over generated inputs
    /// (the coverage-guided runs live in `fuzz/`).
    #[test]
    fn smoke() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let len = (next() % 1200) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if round % 3 == 0 && data.len() > 20 {
                data[1..17].copy_from_slice(b"MPA ID Req Frame");
                data[18] = (next() % 3) as u8;
            }
            super::startup(&data);
            super::deframer(&data);
        }
    }
}

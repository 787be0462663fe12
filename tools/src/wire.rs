//! An in-memory wire between two [`Connection`]s: each direction has a real MPA
//! framer and deframer, so what one side sends is exactly the FPDU stream a TCP
//! connection would carry. Used by the demo until the engine drives real sockets.

use eta_ddp_core::{Connection, RxVerdict, ulpdu_header_len};
use eta_mpa::{Deframer, DeframerConfig, Event, FpduScratch, Framer, FramerConfig};

/// One direction of the wire.
pub struct Direction {
    framer: Framer,
    deframer: Deframer,
    in_flight: Vec<u8>,
    fpdus: usize,
    octets: usize,
}

impl Direction {
    /// A direction with CRC on or off and no markers.
    pub fn new(crc: bool) -> Self {
        Self {
            framer: Framer::new(FramerConfig {
                crc,
                markers: false,
            }),
            deframer: Deframer::new(DeframerConfig {
                crc,
                markers: false,
                max_ulpdu: u16::MAX,
                header_len: ulpdu_header_len,
            }),
            in_flight: Vec::new(),
            fpdus: 0,
            octets: 0,
        }
    }

    /// FPDUs and octets carried so far.
    pub fn carried(&self) -> (usize, usize) {
        (self.fpdus, self.octets)
    }

    /// Frames everything `from` has to send and delivers it to `to`, in chunks of
    /// `chunk` octets. Returns the number of FPDUs carried.
    pub fn pump(&mut self, from: &mut Connection, to: &mut Connection, chunk: usize) -> usize {
        let mut scratch = FpduScratch::default();
        let mut n = 0;
        while let Some(seg) = from.poll_segment() {
            let mut iov = Vec::new();
            let payload = from.segment_payload(&seg);
            let len = self
                .framer
                .frame(&mut scratch, seg.header(), &[payload], &mut iov)
                .expect("segments fit the MULPDU");
            for s in &iov {
                self.in_flight.extend_from_slice(s);
            }
            from.segment_sent(seg.token());
            self.octets += len;
            n += 1;
        }
        self.fpdus += n;
        let bytes = std::mem::take(&mut self.in_flight);
        for mut input in bytes.chunks(chunk.max(1)) {
            loop {
                match self.deframer.advance(input) {
                    Err(e) => {
                        to.mpa_error(&e);
                        return n;
                    }
                    Ok((used, ev)) => {
                        input = &input[used..];
                        match ev {
                            Event::NeedInput => break,
                            Event::Header { ulpdu_len, header } => {
                                let verdict = to.recv_header(ulpdu_len, header.as_slice());
                                assert_eq!(verdict, RxVerdict::Accepted, "demo posts receives");
                            }
                            Event::Payload(p) => to.recv_payload(p),
                            Event::End => to.recv_end(),
                        }
                    }
                }
            }
        }
        n
    }
}

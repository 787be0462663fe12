//! The frames of docs/wire-facts.md §7.3, produced by ddp-core and framed by eta-mpa.

use eta_ddp_core::{
    Config, ConnId, Connection, LlpError, LocalBuffer, MemoryTable, RtrKind, SendOptions,
};
use eta_mpa::{Framer, FramerConfig};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn conn(f: impl FnOnce(&mut Config)) -> Connection {
    let mut cfg = Config::new(ConnId(1), 1024);
    f(&mut cfg);
    Connection::new(cfg, MemoryTable::new()).unwrap()
}

/// Frames the next segment of `c` with and without CRC.
fn next_fpdu(c: &mut Connection) -> (Vec<u8>, Vec<u8>) {
    let seg = c.poll_segment().expect("a segment");
    let payload = c.segment_payload(&seg).to_vec();
    let on = Framer::new(FramerConfig {
        crc: true,
        markers: false,
    })
    .frame_to_vec(seg.header(), &[&payload])
    .unwrap();
    let off = Framer::new(FramerConfig {
        crc: false,
        markers: false,
    })
    .frame_to_vec(seg.header(), &[&payload])
    .unwrap();
    c.segment_sent(seg.token());
    (on, off)
}

fn with_zero_crc(v: &[u8]) -> Vec<u8> {
    let mut v = v.to_vec();
    let n = v.len();
    v[n - 4..].fill(0);
    v
}

#[test]
fn write_rtr() {
    let mut c = conn(|c| c.send_rtr = Some(RtrKind::Write));
    let (on, off) = next_fpdu(&mut c);
    let expect = hex("00 0e c1 40 00 00 00 01 00 00 00 00 00 00 00 00 eb d3 4c 5f");
    assert_eq!(on, expect);
    assert_eq!(off, with_zero_crc(&expect));
}

#[test]
fn read_rtr_and_its_response() {
    let mut c = conn(|c| c.send_rtr = Some(RtrKind::Read));
    let (on, _) = next_fpdu(&mut c);
    assert_eq!(
        on,
        hex("00 2e 41 41 00 00 00 00 00 00 00 01 00 00 00 01
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
             00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00
             ba 10 e3 c9")
    );
    // The responder answers the zero-length Read with the zero-length Read Response.
    let mut r = conn(|_| {});
    let ulpdu = &on[2..48];
    assert_eq!(r.recv_ulpdu(ulpdu), eta_ddp_core::RxVerdict::Accepted);
    let (resp, _) = next_fpdu(&mut r);
    assert_eq!(
        resp,
        hex("00 0e c1 42 00 00 00 00 00 00 00 00 00 00 00 00 69 75 d6 ca")
    );
}

#[test]
fn send_hello() {
    let mut c = conn(|_| {});
    c.post_send(
        1,
        LocalBuffer::from_static(b"hello"),
        SendOptions::default(),
    )
    .unwrap();
    let (on, off) = next_fpdu(&mut c);
    let expect = hex(
        "00 17 41 43 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 00 68 65 6c 6c 6f 00 00 00 b9 90 b1 0c",
    );
    assert_eq!(on, expect);
    assert_eq!(off, with_zero_crc(&expect));
}

#[test]
fn terminate_llp_crc_error() {
    let mut c = conn(|_| {});
    c.mpa_error(LlpError::CrcError);
    let (on, off) = next_fpdu(&mut c);
    let expect =
        hex("00 16 41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 20 02 00 00 7f e4 25 85");
    assert_eq!(on, expect);
    assert_eq!(off, with_zero_crc(&expect));
}

#[test]
fn siw_layout_terminate_is_understood() {
    let fpdu =
        hex("00 16 41 47 00 00 00 00 00 00 00 02 00 00 00 01 00 00 00 00 02 02 00 00 75 d3 67 ed");
    let mut c = conn(|_| {});
    let _ = c.recv_ulpdu(&fpdu[2..24]);
    match c.poll_event() {
        Some(eta_ddp_core::Event::PeerTerminated(t)) => {
            assert_eq!(
                t.reason,
                eta_ddp_core::TerminateReason::Llp(LlpError::CrcError)
            );
            assert_eq!(
                t.header.layout,
                eta_ddp_core::wire::TerminateLayout::SiwLittleEndian
            );
        }
        e => panic!("{e:?}"),
    }
}

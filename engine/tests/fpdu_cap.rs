//! `Options::max_fpdu`: a cap on the size of the FPDUs this end sends, for peers
//! that take only FPDUs up to the MTU or 16 KiB. A raw peer reads the stream and
//! checks every FPDU against the cap, its CRC, and the message it carries.

mod common;

use std::io::Read;
use std::thread;
use std::time::Duration;

use common::next;
use eta_engine::{CompletionStatus, Error, Listener, LocalConfig, MIN_FPDU, Options};
use eta_tools::fault::{RawInitiator, fpdus};

/// What a raw Initiator receives when the eta Responder, capped at `cap`, sends
/// one `len`-octet message: the FPDUs' wire lengths and the payload they carry.
fn send_capped(cap: Option<u32>, len: usize) -> (Vec<usize>, Vec<u8>) {
    let opts = Options {
        max_fpdu: cap,
        // The raw peer sends no RTR: let the Responder speak first.
        responder_sends_first: true,
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let message: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let sent = message.clone();
    let server = thread::spawn(move || {
        let conn = listener.accept().unwrap();
        conn.post_send(1, sent, Default::default()).unwrap();
        let c = next(conn.send_cq());
        assert_eq!(c.status, CompletionStatus::Success);
        conn
    });
    let cfg = LocalConfig {
        peer_to_peer: false,
        ..LocalConfig::default()
    };
    let peer = RawInitiator::connect(addr, &cfg, Duration::from_secs(10)).unwrap();
    let (mut stream, mut wire) = peer.into_parts();
    let conn = server.join().unwrap();
    let mut buf = [0u8; 65536];
    let mut payload = Vec::new();
    let mut sizes = Vec::new();
    // An untagged Send header is 18 octets: read until the message is complete.
    while payload.len() < len {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early");
        wire.extend_from_slice(&buf[..n]);
        let Ok(all) = fpdus(&wire) else { continue };
        sizes.clear();
        payload.clear();
        for f in &all {
            assert!(f.crc_ok, "an FPDU with a bad CRC");
            let ulen = f.ulpdu.len();
            sizes.push(2 + ulen + eta_mpa::pad_len(ulen) + 4);
            payload.extend_from_slice(&f.ulpdu[18..]);
        }
    }
    drop(conn);
    assert_eq!(payload, message, "the message the FPDUs carry");
    (sizes, payload)
}

#[test]
fn fpdus_never_exceed_the_cap() {
    for cap in [MIN_FPDU, 1500, 16 * 1024] {
        let (sizes, _) = send_capped(Some(cap), 200_000);
        let largest = *sizes.iter().max().unwrap();
        assert!(
            largest <= cap as usize,
            "cap {cap}: an FPDU of {largest} octets"
        );
        // Full-sized FPDUs, not a trickle: all but the last within 4 octets of the cap.
        assert!(
            sizes[..sizes.len() - 1]
                .iter()
                .all(|&s| s + 4 > cap as usize && s <= cap as usize),
            "cap {cap}: sizes {sizes:?}"
        );
    }
    // Without a cap, FPDUs follow the EMSS: larger than 16 KiB on loopback.
    let (sizes, _) = send_capped(None, 200_000);
    assert!(*sizes.iter().max().unwrap() > 16 * 1024, "{sizes:?}");
}

#[test]
fn a_cap_below_the_minimum_fails_the_connection() {
    let listener = Listener::bind("127.0.0.1:0", Options::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    // The Responder's setup succeeds; the Initiator refuses its own cap after it.
    let server = thread::spawn(move || listener.accept().map(|_| ()));
    let opts = Options {
        max_fpdu: Some(MIN_FPDU - 1),
        ..Options::default()
    };
    match eta_engine::Connection::connect(addr, opts) {
        Err(Error::Config(_)) => {}
        other => panic!("a cap of {} octets: {other:?}", MIN_FPDU - 1),
    }
    let _ = server.join();
}

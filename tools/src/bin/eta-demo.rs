//! eta's demo: what the stack can do today, end to end in one process.
//!
//! 1. MPA connection setup (RFC 5044 + RFC 6581) between an eta Initiator and an eta
//!    Responder, and an eta Responder answering the exact Request siw sends.
//! 2. A 3000-octet message framed into FPDUs with CRC32c and markers, cut into
//!    irregular TCP-like chunks, and read back.
//! 3. A corrupted octet on the wire, caught by the CRC and mapped to its RFC code.

use eta_mpa::startup::negotiate::{self, LocalConfig};
use eta_mpa::{
    Deframer, DeframerConfig, Event, Framer, FramerConfig, MpaError, StartupRepr, mulpdu,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== 1. MPA connection setup ==");
    let initiator = LocalConfig::default();
    let responder = LocalConfig::default();
    let request = negotiate::request(&initiator, b"hello from the initiator")?;
    let request_bytes = request.to_vec()?;
    println!(
        "Request  ({} B): {}",
        request_bytes.len(),
        hex(&request_bytes[16..24])
    );
    let parsed = StartupRepr::parse_bytes(&request_bytes)?;
    let at_responder = negotiate::on_request(&responder, &parsed)?;
    let reply = negotiate::reply(&responder, &parsed, &at_responder, b"welcome")?;
    let reply_bytes = reply.to_vec()?;
    println!(
        "Reply    ({} B): {}",
        reply_bytes.len(),
        hex(&reply_bytes[16..24])
    );
    let at_initiator = negotiate::on_reply(&initiator, &StartupRepr::parse_bytes(&reply_bytes)?)?;
    println!(
        "negotiated: Rev {}, CRC {}, markers tx/rx {}/{}, IRD/ORD {}/{}, RTR {:?}",
        at_initiator.revision,
        at_initiator.crc,
        at_initiator.markers_tx,
        at_initiator.markers_rx,
        at_initiator.ird,
        at_initiator.ord,
        at_initiator.rtr
    );

    // The Request siw sends by default (wire-facts §7.3): Rev 2, S=1, IRD 1, ORD 1.
    let mut siw_request = b"MPA ID Req Frame".to_vec();
    siw_request.extend_from_slice(&[0x10, 0x02, 0x00, 0x04, 0x00, 0x01, 0x00, 0x01]);
    let siw = StartupRepr::parse_bytes(&siw_request)?;
    let n = negotiate::on_request(&responder, &siw)?;
    let answer = negotiate::reply(&responder, &siw, &n, &[])?.to_vec()?;
    println!(
        "siw's Request {} -> eta's Reply {} (enhanced, CRC on, IRD/ORD {}/{})",
        hex(&siw_request[16..]),
        hex(&answer[16..]),
        n.ird,
        n.ord
    );

    println!("\n== 2. FPDUs with CRC32c and markers ==");
    // An untagged DDP header for an RDMAP Send (QN 0, MSN 1); MO and L per segment.
    let send_header = |offset: usize, last: bool| -> [u8; 18] {
        let mut h = [0x01, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        if last {
            h[0] |= 0x40;
        }
        h[14..18].copy_from_slice(&(offset as u32).to_be_bytes());
        h
    };
    let message: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let cfg = FramerConfig {
        crc: true,
        markers: true,
    };
    let mulpdu = usize::from(mulpdu(1448, cfg.markers));
    println!("EMSS 1448 with markers -> MULPDU {mulpdu}");
    let mut framer = Framer::new(cfg);
    let mut wire = Vec::new();
    let per_fpdu = mulpdu - 18;
    for (i, piece) in message.chunks(per_fpdu).enumerate() {
        let last = (i + 1) * per_fpdu >= message.len();
        let fpdu = framer.frame_to_vec(&send_header(i * per_fpdu, last), &[piece])?;
        println!(
            "FPDU {i}: {} B on the wire ({} B payload), starts {}",
            fpdu.len(),
            piece.len(),
            hex(&fpdu[..8])
        );
        wire.extend(fpdu);
    }
    let mut deframer = Deframer::new(DeframerConfig {
        crc: true,
        markers: true,
        max_ulpdu: u16::MAX,
        header_len: |_| 18,
    });
    let mut received = Vec::new();
    let mut fpdus = 0;
    // Irregular chunks, as TCP may deliver them.
    let mut rest = &wire[..];
    let mut cut = 1;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(cut.min(rest.len()));
        rest = tail;
        cut = cut * 7 % 1999 + 1;
        let mut input = chunk;
        loop {
            let (used, event) = deframer.advance(input)?;
            input = &input[used..];
            match event {
                Event::NeedInput => break,
                Event::Payload(run) => received.extend_from_slice(run),
                Event::End => fpdus += 1,
                Event::Header { .. } => {}
            }
        }
    }
    println!(
        "read back {fpdus} FPDUs, {} B, identical: {}",
        received.len(),
        received == message
    );

    println!("\n== 3. A flipped bit on the wire ==");
    let mut corrupt = wire.clone();
    corrupt[700] ^= 0x01;
    let mut deframer = Deframer::new(deframer.config());
    let mut input = &corrupt[..];
    let err = loop {
        match deframer.advance(input) {
            Ok((used, Event::NeedInput)) if used == input.len() => break None,
            Ok((used, _)) => input = &input[used..],
            Err(e) => break Some(e),
        }
    };
    match err {
        Some(e @ MpaError::CrcMismatch { .. }) => println!(
            "{e}; MPA error code {:#04x}: the connection gets a Terminate",
            e.code().value()
        ),
        other => return Err(format!("expected a CRC error, got {other:?}").into()),
    }
    Ok(())
}

//! eta's demo: what the stack can do today, end to end in one process.
//!
//! 1. MPA connection setup (RFC 5044 + RFC 6581) between an eta Initiator and an eta
//!    Responder, and an eta Responder answering the exact Request siw sends.
//! 2. A 3000-octet message framed into FPDUs with CRC32c and markers, cut into
//!    irregular TCP-like chunks, and read back.
//! 3. A corrupted octet on the wire, caught by the CRC and mapped to its RFC code.
//! 4. Two DDP/RDMAP connections wired back to back through MPA in memory: a Send,
//!    an RDMA Write into the peer's registered memory, an RDMA Read back, and a
//!    Write to an STag the peer never registered, answered with a Terminate.
//! 5. The same over real TCP on 127.0.0.1 with the engine: MPA setup with private
//!    data, a Send, an RDMA Write and an RDMA Read, each verified.

use eta_ddp_core::link::Link;
use eta_ddp_core::{
    Access, CompletionStatus, Config, ConnId, Connection, LocalBuffer, MemoryTable, Scope,
    SendOptions, Stag,
};
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

    // The Request siw sends by default (docs/wire-facts.md §7.3): Rev 2, S=1, IRD 1, ORD 1.
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

    println!("\n== 4. RDMAP over DDP over MPA, back to back in memory ==");
    ddp_demo()?;

    println!("\n== 5. The engine: iWARP over TCP on 127.0.0.1 ==");
    engine_demo()
}

fn engine_demo() -> Result<(), Box<dyn std::error::Error>> {
    use eta_engine::{Listener, Options};
    let server_opts = Options {
        private_data: b"eta responder".to_vec(),
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", server_opts)?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> Result<(), eta_engine::Error> {
        let conn = listener.accept()?;
        // Memory the client may write and read, and a receive for its message.
        let region = conn.register(
            vec![0u8; 1 << 20],
            Access::REMOTE_WRITE | Access::REMOTE_READ,
        )?;
        conn.post_recv(1, vec![0u8; 64])
            .map_err(eta_engine::Error::from)?;
        // Advertise the region in a Send: STag and length.
        let mut ad = region.stag().0.to_be_bytes().to_vec();
        ad.extend_from_slice(&(region.len() as u64).to_be_bytes());
        conn.post_send(2, ad, eta_engine::SendOptions::default())
            .map_err(eta_engine::Error::from)?;
        // One completion queue serves sends and receives by default: wait for the
        // receive (the advertisement's send completes too).
        let c = loop {
            let c = conn.recv_cq().wait(None)?.expect("a completion");
            if c.op == eta_engine::CompletionOp::Recv {
                break c;
            }
        };
        let mut msg = c.buffer.unwrap_or_default();
        msg.truncate(c.byte_len as usize);
        let mut head = [0u8; 20];
        region.read(0, &mut head)?;
        println!(
            "server: got {:?}; its region now starts with {:?}",
            String::from_utf8_lossy(&msg),
            String::from_utf8_lossy(&head)
        );
        while conn.state() == eta_engine::ConnState::Open {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(region);
        Ok(())
    });
    let client_opts = Options {
        private_data: b"eta initiator".to_vec(),
        ..Options::default()
    };
    let conn = eta_engine::Connection::connect(addr, client_opts)?;
    let n = conn.negotiated();
    println!(
        "client: connected to {addr}: MPA Rev {}, CRC {}, RTR {:?}, peer said {:?}",
        n.revision,
        n.crc,
        n.rtr,
        String::from_utf8_lossy(conn.peer_private_data())
    );
    conn.post_recv(1, vec![0u8; 64])?;
    let ad = conn.recv_cq().wait(None)?.expect("advertisement");
    let ad = ad.buffer.unwrap_or_default();
    let stag = eta_engine::Stag(u32::from_be_bytes(ad[..4].try_into()?));
    let remote = eta_engine::RemoteRegion { stag, to: 0 };
    let text = b"written by RDMA Write".to_vec();
    conn.post_write(10, text.clone(), remote)?;
    let sink = conn.register(vec![0u8; text.len()], Access::LOCAL_WRITE)?;
    conn.post_read(11, &sink, 0, text.len() as u32, remote)?;
    for _ in 0..2 {
        let c = conn.send_cq().wait(None)?.expect("completion");
        println!(
            "client: {:?} wr {} {:?}, {} B",
            c.op, c.wr_id, c.status, c.byte_len
        );
    }
    let mut back = vec![0u8; text.len()];
    sink.read(0, &mut back)?;
    println!(
        "client: RDMA Read brought back {:?}",
        String::from_utf8_lossy(&back)
    );
    conn.post_send(
        12,
        b"hello over eta".to_vec(),
        eta_engine::SendOptions::default(),
    )?;
    conn.send_cq().wait(None)?;
    drop(sink);
    drop(conn);
    server.join().map_err(|_| "server thread panicked")??;
    Ok(())
}

fn ddp_demo() -> Result<(), Box<dyn std::error::Error>> {
    let table = MemoryTable::new();
    let mulpdu = eta_mpa::mulpdu(1448, false);
    let new_side = |id: u64| -> Result<Connection, Box<dyn std::error::Error>> {
        let mut cfg = Config::new(ConnId(id), mulpdu);
        cfg.ird = 4;
        cfg.ord = 4;
        Ok(Connection::new(cfg, table.clone())?)
    };
    let (mut a, mut b) = (new_side(1)?, new_side(2)?);
    let mut links = [Link::new(true), Link::new(true)];

    // B registers 64 KiB for remote writes and reads on its connection only.
    let base_to = 0x10_0000;
    let region: Stag = table.register_owned(
        vec![0u8; 65536].into(),
        0..65536,
        base_to,
        Access::REMOTE_WRITE | Access::REMOTE_READ,
        Scope::Connection(ConnId(2)),
    )?;
    println!(
        "B registered 64 KiB: STag {:#010x}, TO {base_to:#x}",
        region.0
    );

    b.post_recv(100, LocalBuffer::from_boxed(vec![0u8; 256].into()))?;
    a.post_send(
        1,
        LocalBuffer::from_boxed(b"hello over iWARP".to_vec().into()),
        SendOptions::default(),
    )?;
    let text: Vec<u8> = (0..20_000u32).map(|i| b"RDMA!"[(i % 5) as usize]).collect();
    a.post_write(
        2,
        LocalBuffer::from_boxed(text.clone().into()),
        region,
        base_to + 1000,
    )?;
    // A reads back what it wrote, into a region of its own.
    let sink = table.register_owned(
        vec![0u8; 20_000].into(),
        0..20_000,
        0,
        Access::LOCAL_WRITE,
        Scope::Connection(ConnId(1)),
    )?;
    a.post_read(3, sink, 0, 20_000, region, base_to + 1000)?;
    exchange(&mut a, &mut b, &mut links, 4);
    while let Some(c) = b.poll_completion() {
        let data = c.buffer.as_deref().unwrap_or_default();
        println!(
            "B completion: {:?} wr {} {:?}, {} B: {:?}",
            c.op,
            c.wr_id,
            c.status,
            c.byte_len,
            String::from_utf8_lossy(&data[..c.byte_len as usize])
        );
    }
    while let Some(c) = a.poll_completion() {
        println!(
            "A completion: {:?} wr {} {:?}, {} B",
            c.op, c.wr_id, c.status, c.byte_len
        );
        if c.status != CompletionStatus::Success {
            return Err(format!("unexpected completion {c:?}").into());
        }
    }
    let mut placed = vec![0u8; 20_000];
    table.copy_out(region, base_to + 1000, &mut placed)?;
    let mut read_back = vec![0u8; 20_000];
    table.copy_out(sink, 0, &mut read_back)?;
    println!(
        "B's memory holds the 20000 B A wrote: {}; A's Read brought them back: {}",
        placed == text,
        read_back == text
    );
    let [a_to_b, b_to_a] = &links;
    println!(
        "wire: A->B {} FPDUs / {} B, B->A {} FPDUs / {} B (CRC32c on)",
        a_to_b.fpdus(),
        a_to_b.octets(),
        b_to_a.fpdus(),
        b_to_a.octets()
    );

    // A writes to an STag that B never registered: B answers with a Terminate.
    a.post_write(
        4,
        LocalBuffer::from_boxed(vec![1u8; 64].into()),
        Stag(0xdead_be00),
        0,
    )?;
    exchange(&mut a, &mut b, &mut links, 3);
    while let Some(ev) = b.poll_event() {
        println!("B event: {ev:?}");
    }
    while let Some(ev) = a.poll_event() {
        match ev {
            eta_ddp_core::Event::PeerTerminated(t) => println!(
                "A received a Terminate: {:?} (layer {}, type {}, code {:#04x}, {} B of the bad DDP header included)",
                t.reason,
                t.header.layer,
                t.header.etype,
                t.header.code,
                t.header.ddp_header.map_or(0, |h| h.as_slice().len()),
            ),
            other => println!("A event: {other:?}"),
        }
    }
    while let Some(c) = a.poll_completion() {
        println!("A completion: {:?} wr {} {:?}", c.op, c.wr_id, c.status);
    }
    println!("A state {:?}, B state {:?}", a.state(), b.state());
    Ok(())
}

/// `rounds` rounds of A to B then B to A over the in-memory MPA links, in TCP-like
/// chunks of 1460 octets.
fn exchange(a: &mut Connection, b: &mut Connection, links: &mut [Link; 2], rounds: usize) {
    for _ in 0..rounds {
        links[0].pump(a, b, 1460);
        links[1].pump(b, a, 1460);
        assert!(
            !links.iter().any(Link::is_blocked),
            "the demo posts receives"
        );
    }
}

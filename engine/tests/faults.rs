//! Failures: a peer process killed mid-transfer, a reset, a half-close, a received
//! Terminate, a bad CRC from the peer, and a slow receiver whose memory stays
//! bounded. Every outstanding work request completes (flushed) and nothing hangs.
//! Also MPA trailers that reach the receiver in pieces.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{T, next, pair, pattern, payload};
use eta_ddp_core::wire::Opcode;
use eta_engine::{
    Access, CompletionOp, CompletionStatus, ConnState, Connection, Listener, Options, RemoteRegion,
    SendOptions, Stag,
};
use eta_mpa::startup::negotiate::{self, LocalConfig};
use eta_mpa::{FrameKind, ReadProgress, StartupReader};
use eta_tools::fault::{RawInitiator, fpdus, untagged_fpdu, write_fpdu};

fn wait_state(c: &Connection, want: ConnState) {
    let deadline = Instant::now() + T.unwrap();
    while c.state() != want {
        assert!(
            Instant::now() < deadline,
            "state {:?}, wanted {want:?}",
            c.state()
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// The peer program (a binary of this package, built by cargo for its tests).
fn peer_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_eta-engine-peer"))
}

#[test]
fn peer_process_killed_mid_transfer() {
    let listener = Listener::bind("127.0.0.1:0", Options::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = Command::new(peer_binary())
        .arg("send")
        .arg(addr.to_string())
        .spawn()
        .unwrap();
    let conn = listener.accept().unwrap();
    // Five 1 MiB messages, the 64 MiB one, and one more receive the peer never fills.
    for k in 0..5 {
        conn.post_recv(k, vec![0; 1 << 20]).unwrap();
    }
    conn.post_recv(5, vec![0; 64 << 20]).unwrap();
    conn.post_recv(6, vec![0; 16]).unwrap();
    for k in 0..5 {
        let c = next(conn.recv_cq());
        assert_eq!((c.wr_id, c.status), (k, CompletionStatus::Success));
        assert!(payload(c).iter().all(|b| *b == 7));
    }
    // Kill the sender while (most likely) the 64 MiB message is on the wire.
    child.kill().unwrap();
    child.wait().unwrap();
    // Whatever was posted completes; what the peer never sent is flushed.
    let big = next(conn.recv_cq());
    assert_eq!(big.wr_id, 5);
    if big.status == CompletionStatus::Success {
        assert!(
            payload(big).iter().all(|b| *b == 7),
            "a completed message is intact"
        );
    } else {
        assert_eq!(big.status, CompletionStatus::Flushed);
    }
    let last = next(conn.recv_cq());
    assert_eq!((last.wr_id, last.status), (6, CompletionStatus::Flushed));
    assert_ne!(conn.state(), ConnState::Open);
}

/// Completes MPA setup by hand as Responder on a plain socket (CRC per default).
fn fake_responder(listener: &TcpListener) -> TcpStream {
    let (mut s, _) = listener.accept().unwrap();
    let mut r = StartupReader::new(FrameKind::Request);
    let mut buf = [0u8; 600];
    loop {
        let n = s.read(&mut buf).unwrap();
        if let ReadProgress::Complete { .. } = r.push(&buf[..n]).unwrap() {
            break;
        }
    }
    let req = r.frame().unwrap();
    let cfg = LocalConfig::default();
    let n = negotiate::on_request(&cfg, &req).unwrap();
    let reply = negotiate::reply(&cfg, &req, &n, &[])
        .unwrap()
        .to_vec()
        .unwrap();
    s.write_all(&reply).unwrap();
    s
}

/// An eta Initiator connected to a [`fake_responder`]: (our connection, the peer's
/// raw stream).
fn connected_to_fake_responder() -> (Connection, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || fake_responder(&listener));
    let conn = Connection::connect(addr, Options::default()).unwrap();
    (conn, t.join().unwrap())
}

/// Completes MPA setup by hand as Initiator on a plain socket (CRC per default);
/// the Responder must send nothing after its Reply before the first FPDU.
fn fake_initiator(addr: std::net::SocketAddr) -> TcpStream {
    let raw = RawInitiator::connect(addr, &LocalConfig::default(), T.unwrap()).unwrap();
    let (s, early) = raw.into_parts();
    assert!(early.is_empty(), "the Responder sent before the first FPDU");
    s
}

/// Posts `n` receives; `flushed` then waits for all of them to complete flushed.
fn post_receives(conn: &Connection, n: u64) {
    for k in 0..n {
        conn.post_recv(k, vec![0; 64]).unwrap();
    }
}

fn flushed(conn: &Connection, n: u64) {
    for _ in 0..n {
        let c = next(conn.recv_cq());
        assert_eq!(
            (c.op, c.status),
            (CompletionOp::Recv, CompletionStatus::Flushed)
        );
    }
}

#[test]
fn reset_by_peer_flushes_and_reports() {
    let (conn, s) = connected_to_fake_responder();
    // Linger 0: close sends RST.
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one linger struct from a live local.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    for k in 0..3 {
        conn.post_recv(k, vec![0; 64]).unwrap();
    }
    drop(s);
    for _ in 0..3 {
        assert_eq!(next(conn.recv_cq()).status, CompletionStatus::Flushed);
    }
    wait_state(&conn, ConnState::Failed);
    assert!(conn.error().unwrap().contains("lost"), "{:?}", conn.error());
}

#[test]
fn half_close_mid_message_is_an_error() {
    let (conn, mut s) = connected_to_fake_responder();
    // Receives posted first: once the FIN is in, posting fails (NotConnected).
    post_receives(&conn, 2);
    // Half an FPDU, then FIN.
    s.write_all(&[0x00, 0x40, 0x41, 0x43]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    flushed(&conn, 2);
    wait_state(&conn, ConnState::Failed);
}

#[test]
fn graceful_close_by_the_peer() {
    let (a, b) = pair(Options::default());
    for k in 0..10 {
        b.post_recv(k, vec![0; 100]).unwrap();
    }
    for k in 0..5 {
        a.post_send(k, pattern(100, k as u8), SendOptions::default())
            .unwrap();
    }
    drop(a);
    for k in 0..5 {
        let c = next(b.recv_cq());
        assert_eq!((c.wr_id, c.status), (k, CompletionStatus::Success));
        assert_eq!(payload(c), pattern(100, k as u8));
    }
    for _ in 5..10 {
        assert_eq!(next(b.recv_cq()).status, CompletionStatus::Flushed);
    }
    wait_state(&b, ConnState::Closed);
    assert_eq!(b.error(), None);
}

#[test]
fn terminate_flushes_outstanding_work() {
    let (a, b) = pair(Options::default());
    for k in 0..3 {
        a.post_recv(k, vec![0; 64]).unwrap();
    }
    // A Write to an STag B never registered: B terminates the connection.
    a.post_write(
        9,
        vec![1; 100],
        RemoteRegion {
            stag: Stag(0x4242_4200),
            to: 0,
        },
    )
    .unwrap();
    let mut flushed = 0;
    while flushed < 3 {
        let c = next(a.recv_cq());
        if c.op == CompletionOp::Recv {
            assert_eq!(c.status, CompletionStatus::Flushed);
            flushed += 1;
        }
    }
    wait_state(&a, ConnState::Failed);
    wait_state(&b, ConnState::Failed);
    let why = a.error().unwrap();
    assert!(why.contains("InvalidStag"), "{why}");
    assert!(b.error().unwrap().contains("violated"), "{:?}", b.error());
    let _ = b.register(vec![0; 8], Access::REMOTE_WRITE);
}

#[test]
fn slow_receiver_applies_backpressure_and_loses_nothing() {
    let (a, b) = pair(Options::default());
    const N: u64 = 64;
    const LEN: usize = 1 << 20;
    for k in 0..N {
        a.post_send(k, pattern(LEN, k as u8), SendOptions::default())
            .unwrap();
    }
    // B posts no receive for a while: the sender stalls on TCP backpressure after
    // what the receive pool, one read buffer and the kernel's socket buffers hold.
    thread::sleep(Duration::from_millis(300));
    let done_early = a.send_cq().len();
    assert!(
        (done_early as u64) < N / 2,
        "{done_early} of {N} MiB left the sender while nobody read"
    );
    for k in 0..N {
        b.post_recv(k, vec![0; LEN]).unwrap();
    }
    for k in 0..N {
        let c = next(b.recv_cq());
        assert_eq!((c.wr_id, c.status), (k, CompletionStatus::Success));
        assert!(payload(c) == pattern(LEN, k as u8), "message {k} intact");
    }
    let mut sent = 0;
    while sent < N {
        assert_eq!(next(a.send_cq()).status, CompletionStatus::Success);
        sent += 1;
    }
}

#[test]
fn initiator_that_leaves_before_its_first_fpdu_fails_the_responder_at_once() {
    // A plain TCP client completes MPA setup by hand, then closes without sending an
    // FPDU (as siw does when it refuses a Reply): the Responder must not wait forever.
    let listener = Listener::bind("127.0.0.1:0", Options::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let s = fake_initiator(addr);
        // Close without the RTR or any FPDU.
        drop(s);
    });
    let conn = listener.accept().unwrap();
    client.join().unwrap();
    // Whether the receive is posted before or after the engine saw the close, it
    // never waits: refused at once, or completed as flushed.
    if conn.post_recv(1, vec![0; 8]).is_ok() {
        assert_eq!(next(conn.recv_cq()).status, CompletionStatus::Flushed);
    }
    wait_state(&conn, ConnState::Failed);
    assert!(
        conn.error().unwrap().contains("during MPA setup"),
        "{:?}",
        conn.error()
    );
}

/// What eta `sent` after a bad CRC: FPDUs with good CRCs, the last a Terminate
/// (queue 2) for LLP layer (2), error type MPA (0), code 2: CRC error (RFC 5040
/// §8.1).
fn assert_crc_terminate(sent: &[u8]) {
    let got = fpdus(sent).unwrap();
    assert!(
        got.iter().all(|f| f.crc_ok),
        "every FPDU eta sent has a good CRC"
    );
    let term = &got.last().expect("a Terminate").ulpdu;
    assert_eq!(term[1] & 0x0f, 7, "RDMAP opcode Terminate");
    assert_eq!(&term[6..10], &2u32.to_be_bytes(), "queue number 2");
    assert_eq!(&term[18..20], &[0x20, 0x02], "LLP / MPA / CRC error");
}

#[test]
fn bad_crc_from_the_peer_draws_a_terminate_with_a_good_crc() {
    let (conn, mut s) = connected_to_fake_responder();
    conn.post_recv(1, vec![0; 64]).unwrap();
    s.write_all(&untagged_fpdu(
        Opcode::Send,
        0,
        1,
        b"corrupted on the way",
        false,
    ))
    .unwrap();
    // eta answers with a Terminate and closes; read everything it sent.
    s.set_read_timeout(T).unwrap();
    let mut sent = Vec::new();
    s.read_to_end(&mut sent).unwrap();
    assert_crc_terminate(&sent);
    assert_eq!(
        (next(conn.recv_cq()).wr_id, conn.state()),
        (1, ConnState::Failed)
    );
    assert!(
        conn.error().unwrap().contains("CrcError"),
        "{:?}",
        conn.error()
    );
}

/// The peer's TCP segments end inside MPA trailers (pad and CRC), at every offset a
/// trailer has: the receiver must put each trailer together from two reads. (Linux
/// 6.1's siw gets this wrong; see docs/interop.md, "siw's split-trailer misread".)
#[test]
fn trailers_split_across_reads_are_reassembled() {
    let (conn, mut s) = connected_to_fake_responder();
    s.set_nodelay(true).unwrap();
    let region = conn
        .register(vec![0; 64 << 10], Access::REMOTE_WRITE)
        .unwrap();
    const N: usize = 48;
    for k in 0..N {
        conn.post_recv(k as u64, vec![0; 2048]).unwrap();
    }
    // Sends and Writes of every length modulo 4 (so every pad length), each cut
    // 1 + k % (trailer length - 1) octets into its trailer.
    let mut writes = Vec::new();
    for k in 0..N {
        let len = 1000 + k;
        let send = pattern(len, k as u8);
        let write = pattern(len, 100 + k as u8);
        let to = region.remote((k * 1100) as u64).to;
        writes.push((k * 1100, write.clone()));
        for fpdu in [
            write_fpdu(region.stag().0, to, &write),
            untagged_fpdu(Opcode::Send, 0, k as u32 + 1, &send, true),
        ] {
            let trailer = eta_mpa::pad_len(fpdu.len() - 6) + 4;
            let cut = fpdu.len() - trailer + 1 + k % (trailer - 1);
            s.write_all(&fpdu[..cut]).unwrap();
            thread::sleep(Duration::from_millis(2));
            s.write_all(&fpdu[cut..]).unwrap();
        }
    }
    for k in 0..N {
        let c = next(conn.recv_cq());
        assert_eq!((c.wr_id, c.status), (k as u64, CompletionStatus::Success));
        assert_eq!(payload(c), pattern(1000 + k, k as u8), "Send {k}");
    }
    for (at, want) in writes {
        let mut got = vec![0; want.len()];
        region.read(at as u64, &mut got).unwrap();
        assert_eq!(got, want, "Write at {at}");
    }
    assert_eq!(conn.state(), ConnState::Open, "{:?}", conn.error());
}

#[test]
fn responder_answers_a_bad_first_fpdu_with_a_terminate() {
    // RFC 5044 lets the Responder send once it has received the Initiator's first
    // FPDU; one that fails its CRC was received too, and the Initiator must learn
    // why the connection ends.
    let listener = Listener::bind("127.0.0.1:0", Options::default()).unwrap();
    let addr = listener.local_addr().unwrap();
    let client = thread::spawn(move || {
        let mut s = fake_initiator(addr);
        s.write_all(&untagged_fpdu(
            Opcode::Send,
            0,
            1,
            b"first and corrupted",
            false,
        ))
        .unwrap();
        s.set_read_timeout(T).unwrap();
        let mut sent = Vec::new();
        s.read_to_end(&mut sent).unwrap();
        sent
    });
    let conn = listener.accept().unwrap();
    let sent = client.join().unwrap();
    assert_crc_terminate(&sent);
    wait_state(&conn, ConnState::Failed);
    assert!(
        conn.error().unwrap().contains("CrcError"),
        "{:?}",
        conn.error()
    );
}

#[test]
fn half_close_mid_fpdu_while_the_peer_does_not_read_is_let_go() {
    // The peer never reads (our 32 MiB Send fills the path), writes 4 octets of an
    // FPDU and closes its half: the Terminate we owe it cannot be written, and the
    // connection must still be let go of.
    let (conn, mut s) = connected_to_fake_responder();
    post_receives(&conn, 2);
    conn.post_send(1, vec![7u8; 32 << 20], SendOptions::default())
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    s.write_all(&[0x00, 0x40, 0x41, 0x43]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    flushed(&conn, 2);
    wait_state(&conn, ConnState::Failed);
    // Before, the engine kept the connection and read the end of the stream again
    // on every turn, at 100 % of a core, until the peer read again.
    assert!(
        conn.wait_released(Some(Duration::from_secs(5))),
        "the connection was not let go of"
    );
    drop(s);
}

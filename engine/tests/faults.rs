//! Failures: a peer process killed mid-transfer, a reset, a half-close, a received
//! Terminate, and a slow receiver whose memory stays bounded. Every outstanding work
//! request completes (flushed) and nothing hangs.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{T, next, pair, pattern, payload};
use eta_engine::{
    Access, CompletionOp, CompletionStatus, ConnState, Connection, Listener, Options, RemoteRegion,
    SendOptions, Stag,
};
use eta_mpa::startup::negotiate::{self, LocalConfig};
use eta_mpa::{FrameKind, ReadProgress, StartupReader};

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

fn posted_then_flushed(conn: &Connection, n: u64) {
    for k in 0..n {
        conn.post_recv(k, vec![0; 64]).unwrap();
    }
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || fake_responder(&listener));
    let conn = Connection::connect(addr, Options::default()).unwrap();
    let s = t.join().unwrap();
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || fake_responder(&listener));
    let conn = Connection::connect(addr, Options::default()).unwrap();
    let mut s = t.join().unwrap();
    // Half an FPDU, then FIN.
    s.write_all(&[0x00, 0x40, 0x41, 0x43]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    posted_then_flushed(&conn, 2);
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
        let mut s = TcpStream::connect(addr).unwrap();
        let cfg = LocalConfig::default();
        let req = negotiate::request(&cfg, &[]).unwrap().to_vec().unwrap();
        s.write_all(&req).unwrap();
        let mut r = StartupReader::new(FrameKind::Reply);
        let mut buf = [0u8; 600];
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            if let ReadProgress::Complete { .. } = r.push(&buf[..n]).unwrap() {
                break;
            }
        }
        // Close without the RTR or any FPDU.
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

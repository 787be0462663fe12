//! Socket mode (what `libeta.so` stands on): message reads and writes, and the
//! pollable fd's readiness, between two real connections over loopback TCP.

use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use eta_engine::{Block, Connection, Options, Readiness, SendOptions, SockError};

fn revents(fd: RawFd) -> libc::c_short {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    assert!(n >= 0);
    p.revents
}

fn wait_for(fd: RawFd, ev: libc::c_short) -> libc::c_short {
    let mut p = libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    assert_eq!(n, 1, "fd {fd} did not report {ev:#x} within 10 s");
    p.revents
}

/// A connected pair in socket mode: (client, its fd, server, its fd).
fn pair() -> (Connection, OwnedFd, Connection, OwnedFd) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (rs, rs_fd) = Readiness::new().unwrap();
    let rs2 = Arc::new(rs);
    let server = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let opts = Options {
            socket: Some(rs2),
            ..Options::default()
        };
        Connection::from_accepted(s, &opts).unwrap()
    });
    let (rc, rc_fd) = Readiness::new().unwrap();
    assert_eq!(revents(rc_fd.as_raw_fd()), 0, "nothing before setup");
    let opts = Options {
        socket: Some(Arc::new(rc)),
        ..Options::default()
    };
    let c = Connection::from_connected(TcpStream::connect(addr).unwrap(), &opts).unwrap();
    (c, rc_fd, server.join().unwrap(), rs_fd)
}

/// Sends `m` as one message, waiting as long as it takes; returns its length.
fn send_all(c: &Connection, fd: &OwnedFd, m: &[u8]) -> usize {
    c.send_message(fd.as_raw_fd(), &[m], SendOptions::default(), Block::Forever)
        .unwrap()
}

fn recv_all(c: &Connection, fd: &OwnedFd, buf: &mut [u8]) -> (usize, bool) {
    let r = c
        .recv_message(fd.as_raw_fd(), &mut [buf], false, Block::Forever)
        .unwrap();
    (r.len, r.end_of_message)
}

#[test]
fn messages_keep_their_boundaries() {
    let (c, rc, s, rs) = pair();
    assert_eq!(wait_for(rc.as_raw_fd(), libc::POLLOUT), libc::POLLOUT);
    // Nothing to read yet: not readable, and a non-blocking read says so.
    assert_eq!(
        s.recv_message(
            rs.as_raw_fd(),
            &mut [&mut [0u8; 8][..]],
            false,
            Block::Never
        ),
        Err(SockError::WouldBlock)
    );
    for m in [&b"first"[..], b"second message", &[7u8; 100_000]] {
        assert_eq!(
            c.send_message(rc.as_raw_fd(), &[m], SendOptions::default(), Block::Forever),
            Ok(m.len())
        );
    }
    c.send_message(
        rc.as_raw_fd(),
        &[b"gath", b"ered"],
        SendOptions::default(),
        Block::Forever,
    )
    .unwrap();
    assert_ne!(wait_for(rs.as_raw_fd(), libc::POLLIN) & libc::POLLIN, 0);
    let mut buf = vec![0u8; 200_000];
    assert_eq!(recv_all(&s, &rs, &mut buf), (5, true));
    assert_eq!(&buf[..5], b"first");
    // A short read returns the rest next time; peek leaves it in place.
    let mut small = [0u8; 6];
    let r = s
        .recv_message(rs.as_raw_fd(), &mut [&mut small[..]], true, Block::Forever)
        .unwrap();
    assert_eq!((r.len, r.end_of_message, &small), (6, false, b"second"));
    assert_eq!(recv_all(&s, &rs, &mut small), (6, false));
    assert_eq!(recv_all(&s, &rs, &mut buf), (8, true));
    assert_eq!(&buf[..8], b" message");
    assert_eq!(recv_all(&s, &rs, &mut buf), (100_000, true));
    assert!(buf[..100_000].iter().all(|&b| b == 7));
    assert_eq!(recv_all(&s, &rs, &mut buf), (8, true));
    assert_eq!(&buf[..8], b"gathered");
    // All consumed: the fd is no longer readable.
    assert_eq!(revents(rs.as_raw_fd()) & libc::POLLIN, 0);
    assert_eq!(s.ready_len(), 0);
}

#[test]
fn a_graceful_close_is_end_of_stream() {
    let (c, rc, s, rs) = pair();
    c.send_message(
        rc.as_raw_fd(),
        &[b"last words"],
        SendOptions::default(),
        Block::Forever,
    )
    .unwrap();
    c.close();
    let mut buf = [0u8; 64];
    assert_eq!(recv_all(&s, &rs, &mut buf), (10, true));
    let r = s
        .recv_message(rs.as_raw_fd(), &mut [&mut buf[..]], false, Block::Forever)
        .unwrap();
    assert_eq!((r.len, r.end_of_message), (0, false), "end of stream");
    let ev = wait_for(rs.as_raw_fd(), libc::POLLRDHUP);
    assert_ne!(ev & libc::POLLRDHUP, 0);
    // Writing after the peer closed fails (EPIPE), and never blocks.
    assert!(s.wait_released(Some(Duration::from_secs(10))));
    assert_eq!(
        s.send_message(
            rs.as_raw_fd(),
            &[b"x"],
            SendOptions::default(),
            Block::Forever
        )
        .map_err(SockError::errno),
        Err(libc::EPIPE)
    );
}

#[test]
fn a_reset_hangs_up_with_the_reason() {
    let (c, rc, s, rs) = pair();
    s.abort();
    let ev = wait_for(rc.as_raw_fd(), libc::POLLHUP);
    assert_ne!(ev & libc::POLLHUP, 0);
    let mut buf = [0u8; 8];
    let e = c
        .recv_message(rc.as_raw_fd(), &mut [&mut buf[..]], false, Block::Forever)
        .unwrap_err();
    assert_eq!(e.errno(), libc::ECONNRESET, "{e}");
    assert!(s.wait_released(Some(Duration::from_secs(10))));
    assert_ne!(revents(rs.as_raw_fd()) & libc::POLLHUP, 0);
}

#[test]
fn a_full_send_budget_makes_the_fd_unwritable_until_it_drains() {
    let (c, rc, s, rs) = pair();
    // Nobody reads on the other side: the budget fills (the inbox, the pool and
    // TCP buffers take some first).
    let sent = fill_send_budget(&c, &rc, Block::Never);
    assert_eq!(
        revents(rc.as_raw_fd()) & libc::POLLOUT,
        0,
        "full: not writable"
    );
    // The reader drains everything; the writer's fd becomes writable again.
    let mut buf = vec![0u8; 1 << 20];
    read_octets(&s, &rs, &mut buf, sent);
    assert_ne!(wait_for(rc.as_raw_fd(), libc::POLLOUT) & libc::POLLOUT, 0);
}

/// Writes messages of 1 MiB nobody reads until a write ends with `WouldBlock`
/// (`block` says how long each may wait); returns the octets written before.
fn fill_send_budget(c: &Connection, fd: &OwnedFd, block: Block) -> usize {
    let chunk = vec![1u8; 1 << 20];
    let mut sent = 0usize;
    loop {
        match c.send_message(fd.as_raw_fd(), &[&chunk], SendOptions::default(), block) {
            Ok(n) => sent += n,
            Err(SockError::WouldBlock) => return sent,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 1 << 30, "the send budget never filled");
    }
}

/// Reads whole messages with `buf` until exactly `octets` octets came.
fn read_octets(s: &Connection, fd: &OwnedFd, buf: &mut [u8], octets: usize) {
    let mut got = 0usize;
    while got < octets {
        got += recv_all(s, fd, buf).0;
    }
    assert_eq!(got, octets);
}

#[test]
fn a_slow_reader_of_many_messages_loses_none() {
    // The receive pool and the inbox fill and drain again and again; every message
    // must come out whole, once, in order (an FPDU whose header arrives while the
    // pool is full waits for room; its payload must not overtake it).
    let (c, rc, s, rs) = pair();
    const N: u32 = 3000;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            let len = 16 + (i as usize * 7919) % 20_000;
            let mut m = vec![(i % 251) as u8; len];
            m[..4].copy_from_slice(&i.to_be_bytes());
            send_all(&c, &rc, &m);
        }
        (c, rc)
    });
    let mut buf = vec![0u8; 32 * 1024];
    for i in 0..N {
        if i % 500 == 0 {
            // Fall behind: the sender fills the pool, the inbox and TCP.
            std::thread::sleep(Duration::from_millis(30));
        }
        let (n, eom) = recv_all(&s, &rs, &mut buf);
        assert!(eom, "message {i} came in parts");
        let len = 16 + (i as usize * 7919) % 20_000;
        assert_eq!(n, len, "message {i}: wrong length");
        assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()), i);
        assert!(
            buf[4..n].iter().all(|&b| b == (i % 251) as u8),
            "message {i} damaged"
        );
    }
    let _ = sender.join().unwrap();
}

#[test]
fn blocked_calls_sleep_until_something_changes_or_their_time_is_up() {
    let (c, rc, s, rs) = pair();
    let mut buf = [0u8; 64];
    // Nothing arrives: a bounded read ends with WouldBlock (EAGAIN, as SO_RCVTIMEO).
    assert_eq!(
        s.recv_message(
            rs.as_raw_fd(),
            &mut [&mut buf[..]],
            false,
            Block::For(Duration::from_millis(50))
        ),
        Err(SockError::WouldBlock)
    );
    // A reader asleep with no limit wakes when the message arrives.
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        c.send_message(
            rc.as_raw_fd(),
            &[b"late"],
            SendOptions::default(),
            Block::Forever,
        )
        .unwrap();
        (c, rc)
    });
    let r = s
        .recv_message(rs.as_raw_fd(), &mut [&mut buf[..]], false, Block::Forever)
        .unwrap();
    assert_eq!(
        (r.len, r.end_of_message, &buf[..4]),
        (4, true, &b"late"[..])
    );
    let (c, rc) = late.join().unwrap();
    // Nobody reads: a bounded write ends with WouldBlock once the budget is full.
    let sent = fill_send_budget(&c, &rc, Block::For(Duration::from_millis(100)));
    // A writer asleep with no limit wakes when the reader makes room.
    let writer = std::thread::spawn(move || {
        c.send_message(
            rc.as_raw_fd(),
            &[b"after the wait"],
            SendOptions::default(),
            Block::Forever,
        )
        .unwrap();
        (c, rc)
    });
    let mut big = vec![0u8; 1 << 20];
    read_octets(&s, &rs, &mut big, sent);
    assert_eq!(recv_all(&s, &rs, &mut big), (14, true));
    assert_eq!(&big[..14], b"after the wait");
    writer.join().unwrap();
}

/// The pattern octet `i` of message `seed`.
fn pat(i: usize, seed: u8) -> u8 {
    (i as u8).wrapping_mul(31) ^ (i >> 11) as u8 ^ seed
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| pat(i, seed)).collect()
}

#[test]
fn a_lent_buffer_smaller_than_the_message_gets_its_first_part() {
    // The reader waits (its buffer lent to the engine) before the message exists;
    // the rest of the message, and the message after it, come by later reads.
    let (c, rc, s, rs) = pair();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        for (len, seed) in [(300_000, 1), (10, 2)] {
            let m = pattern(len, seed);
            send_all(&c, &rc, &m);
        }
        (c, rc)
    });
    let mut got = Vec::new();
    let (mut a, mut b) = ([0u8; 1000], [0u8; 24_000]);
    loop {
        let r = s
            .recv_message(
                rs.as_raw_fd(),
                &mut [&mut a[..], &mut b[..]],
                false,
                Block::Forever,
            )
            .unwrap();
        let want = (300_000 - got.len()).min(25_000);
        assert_eq!(r.len, want, "after {} octets", got.len());
        got.extend_from_slice(&a[..r.len.min(1000)]);
        got.extend_from_slice(&b[..r.len.saturating_sub(1000)]);
        assert_eq!(r.end_of_message, got.len() == 300_000);
        if r.end_of_message {
            break;
        }
    }
    assert!(got == pattern(300_000, 1), "the message came back damaged");
    let mut small = [0u8; 64];
    assert_eq!(recv_all(&s, &rs, &mut small), (10, true));
    assert_eq!(&small[..10], &pattern(10, 2)[..]);
    writer.join().unwrap();
}

#[test]
fn a_lent_read_that_gives_up_takes_nothing() {
    // Reads that wait a few microseconds for a large message: most give up while
    // its octets arrive (part of them already placed in the lent buffer, which go
    // back to the inbox); the one that succeeds returns the whole message.
    let (mut c, mut rc, s, rs) = pair();
    const LEN: usize = 8 << 20;
    for round in 0..3u8 {
        let m = pattern(LEN, round);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let n = send_all(&c, &rc, &m);
            assert_eq!(n, LEN);
            (c, rc)
        });
        let mut buf = vec![0u8; LEN + 100];
        let (mut got, mut gave_up) = (0, 0);
        loop {
            match s.recv_message(
                rs.as_raw_fd(),
                &mut [&mut buf[got..]],
                false,
                Block::For(Duration::from_micros(300)),
            ) {
                // (A message larger than the inbox may come in parts by the copy
                // path; none is lost or repeated.)
                Ok(r) if r.end_of_message => break got += r.len,
                Ok(r) => got += r.len,
                Err(SockError::WouldBlock) => gave_up += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(gave_up > 0, "the read never had to wait");
        assert_eq!(got, LEN, "round {round}");
        assert!(
            buf[..LEN] == pattern(LEN, round)[..],
            "round {round}: damaged"
        );
        (c, rc) = writer.join().unwrap();
    }
}

#[test]
fn a_direct_write_returns_only_when_the_engine_let_go_of_its_buffer() {
    // Large blocking writes go out from the caller's buffer. The peer stops
    // reading: the writer is held back; each write returns the whole length and
    // the writer scribbles on its buffer at once, which must change nothing sent.
    let (c, rc, s, rs) = pair();
    const N: usize = 40;
    const LEN: usize = 1 << 20;
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let written = Arc::clone(&done);
    let writer = std::thread::spawn(move || {
        let mut m = vec![0u8; LEN];
        for i in 0..N {
            m.copy_from_slice(&pattern(LEN, i as u8));
            let n = send_all(&c, &rc, &m);
            assert_eq!(n, LEN);
            m.fill(0xEE);
            written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        (c, rc)
    });
    std::thread::sleep(Duration::from_millis(500));
    let early = done.load(std::sync::atomic::Ordering::SeqCst);
    assert!(early < N, "{early} MiB taken while the peer did not read");
    let mut buf = vec![0u8; LEN + 1];
    for i in 0..N {
        assert_eq!(recv_all(&s, &rs, &mut buf), (LEN, true), "message {i}");
        assert!(
            buf[..LEN] == pattern(LEN, i as u8)[..],
            "message {i} damaged"
        );
    }
    writer.join().unwrap();
}

#[test]
fn a_message_that_exactly_fills_a_lent_buffer_ends_there() {
    // The reader lends a buffer exactly as long as the message before it arrives;
    // the payload's last run goes straight into it. Each read must return the whole
    // message with its end (MSG_EOR), and no empty message may follow.
    let (c, rc, s, rs) = pair();
    const LEN: usize = 32744 + 8192;
    let writer = std::thread::spawn(move || {
        for i in 0..4u8 {
            std::thread::sleep(Duration::from_millis(50));
            send_all(&c, &rc, &pattern(LEN, i));
        }
        (c, rc)
    });
    let mut buf = vec![0u8; LEN];
    let mut seen = Vec::new();
    for i in 0..4u8 {
        let r = s
            .recv_message(rs.as_raw_fd(), &mut [&mut buf[..]], false, Block::Forever)
            .unwrap();
        seen.push((r.len, r.end_of_message));
        assert_eq!(buf, pattern(LEN, i), "message {i}");
    }
    let _w = writer.join().unwrap();
    assert_eq!(seen, vec![(LEN, true); 4], "reads: {seen:?}");
}

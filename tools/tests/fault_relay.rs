//! Faults on the path (issue 12): eta ↔ fault relay ↔ eta. For a fixed set of seeds
//! per fault, either every octet arrives intact and every completion comes in
//! order, or both ends fail with the right error (the Terminate RFC 5040/5044
//! prescribe, or a lost connection with its errno), every outstanding request
//! completes `Flushed`, and nothing hangs. `docs/testing.md` ("Faults on the path")
//! lists the cases and what each one yields.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use eta_ddp_core::{LlpError, TaggedError, TerminateReason};
use eta_engine::{
    Access, Completion, CompletionOp, CompletionQueue, CompletionStatus, ConnState, Connection,
    Error, Listener, LocalConfig, Options, SendOptions,
};
use eta_tools::relay::{Direction, End, Fault, Plan, Relay};

/// Bound of every wait: a fault that makes something hang fails the test.
const BOUND: Duration = Duration::from_secs(10);
const MIB: usize = 1 << 20;

/// Deterministic test data.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

/// A pair connected through a relay with `faults` and `seed`: (relay, initiator,
/// responder).
fn relayed(faults: Vec<Fault>, seed: u64, opts: Options) -> (Relay, Connection, Connection) {
    let listener = Listener::bind("127.0.0.1:0", opts.clone()).unwrap();
    let target: SocketAddr = listener.local_addr().unwrap();
    // The relay's deadline is past the tests' bound: a hang fails the test, it is
    // not cut short by the relay.
    let plan = Plan {
        faults,
        seed,
        deadline: Duration::from_secs(25),
        max_sessions: Some(1),
        verbose: false,
    };
    let relay = Relay::on_loopback(target, plan).unwrap();
    let t = thread::spawn(move || listener.accept().unwrap());
    let a = Connection::connect(relay.local_addr(), opts).unwrap();
    (relay, a, t.join().unwrap())
}

/// The next completion, within the bound.
fn next(cq: &CompletionQueue) -> Completion {
    cq.wait(Some(BOUND))
        .unwrap()
        .expect("a completion within the bound (nothing may hang)")
}

fn payload(c: Completion) -> Vec<u8> {
    let mut b = c.buffer.expect("receive buffer");
    b.truncate(c.byte_len as usize);
    b
}

/// Octets the Initiator sends after its MPA Request before its first message: the
/// RTR (a zero-length RDMA Write: MPA length 2, tagged header 14, CRC 4).
const RTR: u64 = 20;
/// An untagged FPDU: MPA length 2, DDP/RDMAP header 18 (then payload, pad, CRC).
const SEND_HDR: u64 = 2 + 18;

// ---- every octet arrives intact ----

/// The completions of `c` (whose receives share its one queue, the default),
/// until `recvs` receive and `others` other completions have come: (receives,
/// others), each in the order they came.
fn collect(c: &Connection, recvs: usize, others: usize) -> (Vec<Completion>, Vec<Completion>) {
    let (mut rq, mut sq) = (Vec::new(), Vec::new());
    while rq.len() < recvs || sq.len() < others {
        let x = next(c.send_cq());
        if x.op == CompletionOp::Recv {
            rq.push(x);
        } else {
            sq.push(x);
        }
    }
    (rq, sq)
}

/// Sends of several sizes both ways, an RDMA Write and an RDMA Read, each checked
/// octet for octet, completions in the order posted.
fn exchange_intact(a: &Connection, b: &Connection) {
    let sizes = [1usize, 1000, 70_001, MIB];
    for (i, &len) in sizes.iter().enumerate() {
        b.post_recv(100 + i as u64, vec![0; len]).unwrap();
        a.post_recv(200 + i as u64, vec![0; len]).unwrap();
    }
    for (i, &len) in sizes.iter().enumerate() {
        a.post_send(i as u64, pattern(len, i as u8), SendOptions::default())
            .unwrap();
        b.post_send(
            10 + i as u64,
            pattern(len, 50 + i as u8),
            SendOptions::default(),
        )
        .unwrap();
    }
    let region = b
        .register(vec![0; MIB], Access::REMOTE_WRITE | Access::REMOTE_READ)
        .unwrap();
    let written = pattern(MIB, 99);
    a.post_write(20, written.clone(), region.remote(0)).unwrap();
    let sink = a.register(vec![0; MIB], Access::LOCAL_WRITE).unwrap();
    // The Read comes after the Write on the same stream: it reads what was written.
    a.post_read(21, &sink, 0, MIB as u32, region.remote(0))
        .unwrap();
    let n = sizes.len();
    let (a_rq, a_sq) = collect(a, n, n + 2);
    let (b_rq, b_sq) = collect(b, n, n);
    for (i, (ra, rb)) in a_rq.into_iter().zip(b_rq).enumerate() {
        assert_eq!(
            (ra.wr_id, ra.status),
            (200 + i as u64, CompletionStatus::Success)
        );
        assert_eq!(
            (rb.wr_id, rb.status),
            (100 + i as u64, CompletionStatus::Success)
        );
        assert!(
            payload(ra) == pattern(sizes[i], 50 + i as u8),
            "b→a Send {i} intact"
        );
        assert!(
            payload(rb) == pattern(sizes[i], i as u8),
            "a→b Send {i} intact"
        );
    }
    let order = |v: Vec<Completion>| -> Vec<(u64, CompletionOp, CompletionStatus)> {
        v.into_iter().map(|c| (c.wr_id, c.op, c.status)).collect()
    };
    let ok = CompletionStatus::Success;
    let mut want_a: Vec<_> = (0..n as u64).map(|i| (i, CompletionOp::Send, ok)).collect();
    want_a.push((20, CompletionOp::Write, ok));
    want_a.push((21, CompletionOp::Read, ok));
    assert_eq!(
        order(a_sq),
        want_a,
        "a's send queue completes in the order posted"
    );
    let want_b: Vec<_> = (0..n as u64)
        .map(|i| (10 + i, CompletionOp::Send, ok))
        .collect();
    assert_eq!(
        order(b_sq),
        want_b,
        "b's send queue completes in the order posted"
    );
    let mut got = vec![0; MIB];
    sink.read(0, &mut got).unwrap();
    assert!(got == written, "the Read returned what the Write placed");
    region.read(0, &mut got).unwrap();
    assert!(got == written, "the Write placed every octet");
    a.close();
    b.close();
}

fn intact_under(faults: Vec<Fault>, seed: u64) -> Relay {
    let (relay, a, b) = relayed(faults, seed, Options::default());
    exchange_intact(&a, &b);
    relay
}

#[test]
fn resegmented_stream_arrives_intact() {
    for seed in [1, 2, 3] {
        let relay = intact_under(
            vec![Fault::Resegment {
                min: 1,
                max: 64 << 10,
            }],
            seed,
        );
        let st = relay.stats();
        eprintln!("resegment seed {seed}: {st:?}");
        assert!(
            st.to_server.segments > 100 && st.to_client.segments > 100,
            "{st:?}"
        );
    }
}

#[test]
fn delayed_and_stalled_stream_arrives_intact() {
    for seed in [4, 5, 6] {
        let faults = vec![
            Fault::Resegment {
                min: 512,
                max: 64 << 10,
            },
            Fault::Delay { ms: 2 },
            Fault::Stall {
                after_octets: 7919 * seed,
                ms: 300,
            },
        ];
        let relay = intact_under(faults, seed);
        let st = relay.stats();
        eprintln!("delay/stall seed {seed}: {st:?}");
        assert_eq!((st.to_server.stalls, st.to_client.stalls), (1, 1));
    }
}

// ---- failures ----

/// One failure case: `faults` between a client `a` and a server `b`. Each end posts
/// three 1 MiB receives; then the sender (`a`, or `b` if `server_sends`) sends
/// messages of `sends` octets. Both ends must then end (within the bound), and
/// every request that was posted completes: the receiver's receives and the
/// sender's Sends are returned.
struct Case {
    relay: Relay,
    a: Connection,
    b: Connection,
    /// The sender's completions (Sends, then its receives, in order of arrival).
    sender: Vec<Completion>,
    /// The receiver's receive completions.
    receiver: Vec<Completion>,
}

impl Case {
    fn run(faults: Vec<Fault>, seed: u64, crc: bool, server_sends: bool, sends: &[usize]) -> Case {
        let opts = Options {
            mpa: LocalConfig {
                crc,
                ..LocalConfig::default()
            },
            ..Options::default()
        };
        let (relay, a, b) = relayed(faults, seed, opts);
        let (tx, rx) = if server_sends { (&b, &a) } else { (&a, &b) };
        // The fault may end the connection before every post: the rest are refused.
        let mut posted = (0, 0);
        for k in 0..3 {
            posted.0 += usize::from(tx.post_recv(100 + k, vec![0; MIB]).is_ok());
            posted.1 += usize::from(rx.post_recv(100 + k, vec![0; MIB]).is_ok());
        }
        for (k, &len) in sends.iter().enumerate() {
            let data = pattern(len, k as u8);
            posted.0 += usize::from(tx.post_send(k as u64, data, SendOptions::default()).is_ok());
        }
        wait_ended(rx);
        wait_ended(tx);
        let sender = take(tx.send_cq(), posted.0);
        let receiver = take(rx.recv_cq(), posted.1);
        assert!(
            tx.send_cq().is_empty() && rx.send_cq().is_empty(),
            "no extra completions"
        );
        Case {
            relay,
            a,
            b,
            sender,
            receiver,
        }
    }

    /// The sender's and the receiver's connections.
    fn ends(&self, server_sends: bool) -> (&Connection, &Connection) {
        if server_sends {
            (&self.b, &self.a)
        } else {
            (&self.a, &self.b)
        }
    }
}

/// Waits (within the bound) until `c` leaves Open and Closing.
fn wait_ended(c: &Connection) {
    let until = Instant::now() + BOUND;
    while matches!(c.state(), ConnState::Open | ConnState::Closing) {
        assert!(
            Instant::now() < until,
            "connection still {:?} after {BOUND:?}: a hang",
            c.state()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The completions of `n` requests from `cq`.
fn take(cq: &CompletionQueue, n: usize) -> Vec<Completion> {
    (0..n).map(|_| next(cq)).collect()
}

/// `c` failed, with an error `is` accepts, and this errno.
fn assert_failed(c: &Connection, is: impl Fn(&Error) -> bool, errno: &[i32], what: &str) {
    assert_eq!(c.state(), ConnState::Failed, "{what}: {:?}", c.error());
    c.with_error(|e| {
        let e = e.expect("a failed connection has its error");
        assert!(is(e), "{what}: wrong error {e:?}");
        assert!(
            errno.contains(&e.errno()),
            "{what}: errno {} for {e:?}",
            e.errno()
        );
    });
}

/// A completion without its buffer, for messages.
fn brief(c: &Completion) -> String {
    format!(
        "wr {} {:?} {:?} {} octets",
        c.wr_id, c.op, c.status, c.byte_len
    )
}

/// Every receive in `cs` was flushed (the damaged message was never delivered).
fn all_recvs_flushed(cs: &[Completion], what: &str) {
    for c in cs.iter().filter(|c| c.op == CompletionOp::Recv) {
        assert_eq!(c.status, CompletionStatus::Flushed, "{what}: {}", brief(c));
    }
}

/// The receiver got the messages before the damage intact, then only flushes.
fn delivered_intact_then_flushed(cs: &[Completion], what: &str) {
    let mut flushed = false;
    for (k, c) in cs.iter().enumerate() {
        match c.status {
            CompletionStatus::Success => {
                assert!(!flushed, "{what}: a receive completed after a flush");
                let len = c.byte_len as usize;
                let got = &c.buffer.as_ref().unwrap()[..len];
                assert!(got == pattern(len, k as u8), "{what}: message {k} intact");
            }
            CompletionStatus::Flushed => flushed = true,
            other => panic!("{what}: receive {k} ended {other:?}"),
        }
    }
    assert!(flushed, "{what}: the damaged message was not delivered");
}

fn is_terminated(reason: TerminateReason) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Terminated(t) if t.reason == reason)
}

fn is_protocol(reason: TerminateReason) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Protocol(r) if *r == reason)
}

fn is_lost(e: &Error) -> bool {
    matches!(e, Error::ConnectionLost(_))
}

const CRC_ERROR: TerminateReason = TerminateReason::Llp(LlpError::CrcError);

/// A corrupted octet anywhere in an FPDU (CRC on): the receiver finds the CRC
/// wrong, delivers nothing more, and sends a Terminate for LLP layer, MPA error, CRC
/// error (RFC 5044 §8, RFC 5040 Fig. 10: no included headers); it fails with
/// `Protocol(Llp(CrcError))` (EPROTO), the sender with `Terminated(Llp(CrcError))`
/// (ECONNRESET). The sender here sends nothing after the damaged message.
#[test]
fn corrupt_octet_with_crc_draws_a_crc_terminate() {
    // The first Send's FPDU is 1024 octets after the client's 20-octet RTR: a DDP
    // header octet (the MSN), a payload octet, a CRC octet; an octet of the RTR; and
    // a payload octet of the server's first Send (the server sends no RTR).
    let cases = [
        (1, false, RTR + 2 + 13),
        (2, false, RTR + SEND_HDR + 517),
        (3, false, RTR + 1022),
        (4, false, 9),
        (5, true, SEND_HDR + 999),
    ];
    for (seed, server_sends, at) in cases {
        let mask = (eta_tools::relay::SplitMix64::new(seed).range(1, 255)) as u8;
        let direction = sending(server_sends);
        let f = Fault::Corrupt {
            direction,
            at_octet: at,
            mask,
        };
        let what = format!("{f}");
        let case = Case::run(vec![f], seed, true, server_sends, &[1000]);
        let (tx, rx) = case.ends(server_sends);
        assert_eq!(case.relay.stats().dir(direction).corrupted, 1, "{what}");
        assert_failed(rx, is_protocol(CRC_ERROR), &[libc::EPROTO], &what);
        assert_failed(tx, is_terminated(CRC_ERROR), &[libc::ECONNRESET], &what);
        all_recvs_flushed(&case.receiver, &what);
        all_recvs_flushed(&case.sender, &what);
    }
}

/// As above, but the sender is still sending (1 MiB after the damaged message)
/// and the length field of the damaged FPDU is hit too. The receiver's outcome is
/// the same; the sender fails with ECONNRESET, its work flushed, but see
/// `crc_terminate_reaches_a_busy_sender` for which error it reports.
#[test]
fn corrupt_octet_with_crc_while_the_sender_keeps_sending() {
    for (seed, at) in [
        (5, RTR + 1),
        (6, RTR + SEND_HDR + 3),
        (7, RTR + 1024 + 40_000),
    ] {
        let f = Fault::Corrupt {
            direction: Direction::ToServer,
            at_octet: at,
            mask: 0x10,
        };
        let what = format!("{f}");
        let case = Case::run(vec![f], seed, true, false, &[1000, MIB]);
        assert_failed(&case.b, is_protocol(CRC_ERROR), &[libc::EPROTO], &what);
        let sender_ok = |e: &Error| is_terminated(CRC_ERROR)(e) || is_lost(e);
        assert_failed(&case.a, sender_ok, &[libc::ECONNRESET], &what);
        delivered_intact_then_flushed(&case.receiver, &what);
        all_recvs_flushed(&case.sender, &what);
    }
}

/// A bad CRC while the sender is still sending: the receiver terminates and
/// closes with the sender's later octets unread, so its kernel answers them with an
/// RST and the sender's next write fails. The sender reads what is already in its
/// socket before it declares the connection lost, so it reports the peer's
/// Terminate, not the reset (RFC 5040 §5.4: the Terminate must be delivered).
#[test]
fn crc_terminate_reaches_a_busy_sender() {
    let f = Fault::Corrupt {
        direction: Direction::ToServer,
        at_octet: RTR + SEND_HDR + 3,
        mask: 0x10,
    };
    let case = Case::run(vec![f], 8, true, false, &[1000, MIB]);
    assert_failed(
        &case.a,
        is_terminated(CRC_ERROR),
        &[libc::ECONNRESET],
        "busy sender",
    );
}

/// CRC off, a header field corrupted: the receiver finds the protocol error the
/// field now makes and terminates with it; the sender (which sends nothing more)
/// reports that Terminate.
/// Opcode 3 (Send) → 12: RDMAP, Remote Operation Error, Unexpected OpCode (RFC
/// 5040 §7.2, layer 0 type 2 code 6). DDP version 1 → 2 in an untagged
/// header: DDP, Untagged Buffer Error, Invalid DDP version (RFC 5041 §7.2, layer
/// 1 type 2 code 6). The STag of an RDMA Write: DDP, Tagged Buffer Error, Invalid
/// STag (RFC 5041 §7.2, layer 1 type 1 code 0).
#[test]
fn corrupt_header_without_crc_draws_the_protocol_error() {
    use TerminateReason::*;
    let opcode = (
        RTR + 2 + 1,
        0x0f,
        RdmapOperation(eta_ddp_core::OperationError::UnexpectedOpcode),
    );
    let version = (
        RTR + 2,
        0x03,
        DdpUntagged(eta_ddp_core::UntaggedError::InvalidVersion),
    );
    for (seed, (at, mask, reason)) in [(1, opcode), (2, version)] {
        let f = Fault::Corrupt {
            direction: Direction::ToServer,
            at_octet: at,
            mask,
        };
        let what = format!("{f}");
        let case = Case::run(vec![f], seed, false, false, &[1000]);
        assert_failed(&case.b, is_protocol(reason), &[libc::EPROTO], &what);
        assert_failed(&case.a, is_terminated(reason), &[libc::ECONNRESET], &what);
        all_recvs_flushed(&case.receiver, &what);
        all_recvs_flushed(&case.sender, &what);
    }
    // The STag of an RDMA Write (the first FPDU after the RTR; STag at octets 4..8).
    let reason = DdpTagged(TaggedError::InvalidStag);
    let f = Fault::Corrupt {
        direction: Direction::ToServer,
        at_octet: RTR + 2 + 2 + 3,
        mask: 0xff,
    };
    let opts = Options {
        mpa: LocalConfig {
            crc: false,
            ..LocalConfig::default()
        },
        ..Options::default()
    };
    let (relay, a, b) = relayed(vec![f], 3, opts);
    let region = b.register(vec![0; 4096], Access::REMOTE_WRITE).unwrap();
    b.post_recv(1, vec![0; 64]).unwrap();
    a.post_write(2, pattern(4096, 2), region.remote(0)).unwrap();
    wait_ended(&b);
    wait_ended(&a);
    assert_failed(&b, is_protocol(reason), &[libc::EPROTO], "STag");
    assert_failed(&a, is_terminated(reason), &[libc::ECONNRESET], "STag");
    assert_eq!(next(b.recv_cq()).status, CompletionStatus::Flushed);
    let mut placed = vec![0; 4096];
    region.read(0, &mut placed).unwrap();
    assert!(placed.iter().all(|x| *x == 0), "nothing placed");
    assert_eq!(relay.stats().to_server.corrupted, 1);
}

/// Offsets mid-FPDU in the second message (1 MiB, after the 1000-octet one):
/// one per seed.
const MID_FPDU: [(u64, u64); 3] = [(1, RTR + 5000), (2, RTR + 70_001), (3, RTR + 300_007)];
/// The same for the server's stream, which has no RTR.
const MID_FPDU_S2C: [(u64, u64); 3] = [(4, 5000), (5, 70_001), (6, 300_007)];

/// A FIN in the middle of an FPDU: the receiver fails with a lost connection
/// (`ConnectionLost(UnexpectedEof)`, ECONNRESET), after delivering the messages
/// before it intact; everything outstanding is flushed; nothing hangs. The sender
/// sees the receiver's FIN between messages: a graceful close (see
/// `truncated_stream_fails_the_sender_too`).
#[test]
fn truncated_stream_fails_the_receiver() {
    let fault = |direction, after_octets| Fault::Truncate {
        direction,
        after_octets,
    };
    each_mid_fpdu(fault, |case, server_sends, direction, at, what| {
        let (tx, rx) = case.ends(server_sends);
        let lost =
            |e: &Error| matches!(e, Error::ConnectionLost(std::io::ErrorKind::UnexpectedEof));
        assert_failed(rx, lost, &[libc::ECONNRESET], what);
        delivered_intact_then_flushed(&case.receiver, what);
        all_recvs_flushed(&case.sender, what);
        assert_ne!(tx.state(), ConnState::Open, "{what}");
        let st = case.relay.stats();
        let d = st.dir(direction);
        assert_eq!((d.octets, d.truncated), (at, 1), "{what}");
    });
}

/// Runs `fault(direction, offset)` at each mid-FPDU offset of each direction (the
/// sender sends 1000 octets, then 1 MiB) and hands each case to `check` with the
/// sender's role, the direction, the offset and the fault's name.
fn each_mid_fpdu(
    fault: fn(Direction, u64) -> Fault,
    check: impl Fn(&Case, bool, Direction, u64, &str),
) {
    for (server_sends, offsets) in [(false, MID_FPDU), (true, MID_FPDU_S2C)] {
        for (seed, at) in offsets {
            let direction = sending(server_sends);
            let f = fault(direction, at);
            let case = Case::run(vec![f], seed, true, server_sends, &[1000, MIB]);
            check(&case, server_sends, direction, at, &f.to_string());
        }
    }
}

/// The direction the sender's messages take.
fn sending(server_sends: bool) -> Direction {
    if server_sends {
        Direction::ToClient
    } else {
        Direction::ToServer
    }
}

/// A FIN in the middle of an FPDU: the receiver fails, and since the sender may
/// still read (a half-close), tells it with the LLP Terminate "TCP connection
/// closed, terminated or lost" (RFC 5044 §8, MPA error code 1) before its own FIN,
/// so the sender fails too instead of taking the FIN for a graceful close.
#[test]
fn truncated_stream_fails_the_sender_too() {
    let f = Fault::Truncate {
        direction: Direction::ToServer,
        after_octets: RTR + 5000,
    };
    let case = Case::run(vec![f], 1, true, false, &[1000, MIB]);
    assert_failed(
        &case.a,
        |_| true,
        &[libc::ECONNRESET, libc::EPIPE],
        "sender",
    );
}

/// An RST both ways in the middle of an FPDU: both ends fail with a lost
/// connection (ECONNRESET, or EPIPE for a write that meets the reset), the
/// receiver having delivered the messages before it intact; everything outstanding
/// is flushed; nothing hangs.
#[test]
fn reset_mid_fpdu_fails_both_ends() {
    let fault = |direction, after_octets| Fault::Reset {
        direction,
        after_octets,
    };
    each_mid_fpdu(fault, |case, server_sends, direction, at, what| {
        let (tx, rx) = case.ends(server_sends);
        assert_failed(rx, is_lost, &[libc::ECONNRESET, libc::EPIPE], what);
        assert_failed(tx, is_lost, &[libc::ECONNRESET, libc::EPIPE], what);
        delivered_intact_then_flushed(&case.receiver, what);
        all_recvs_flushed(&case.sender, what);
        let st = case.relay.stats();
        assert_eq!(st.dir(direction).octets, at, "{what}");
        let ends = (st.to_server.end, st.to_client.end);
        assert_eq!(ends, (End::Reset, End::Reset), "{what}");
    });
}

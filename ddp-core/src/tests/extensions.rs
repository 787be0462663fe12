//! RFC 7306 Immediate Data and Atomics between two connections, and the rules of
//! Immediate Data and of the extension opcodes (the Atomic rules: `rfc7306`).

use super::rfc7306::{
    OP_ATOMIC_REQ, OP_ATOMIC_RESP, OP_IMM, OP_IMM_SE, atomic_region, atomic_req,
    atomic_response_out, ext, fetch_add, immediate, next_header, snapshot, untagged_out,
};
use super::*;
use crate::link::Link;

#[test]
fn extensions_immediate_and_atomics() {
    let t = MemoryTable::new();
    let mk = |id| {
        let mut cfg = Config::new(ConnId(id), 256);
        cfg.extensions = true;
        Connection::new(cfg, t.clone()).unwrap()
    };
    let (mut a, mut b) = (mk(1), mk(2));
    let target = t
        .register_owned(
            vec![0u8; 16].into(),
            0..16,
            0x100,
            Access::REMOTE_ATOMIC,
            Scope::Connection(ConnId(2)),
        )
        .unwrap();
    t.place(ConnId(2), target, 0x108, &40u64.to_ne_bytes(), Access::NONE)
        .unwrap();
    b.post_recv(1, LocalBuffer::from_boxed(vec![0; 4].into()))
        .unwrap();
    a.post_immediate(10, *b"imm-data", true).unwrap();
    a.post_atomic(11, AtomicOp::FetchAdd, target, 0x108, 2, 0)
        .unwrap();
    a.post_atomic(12, AtomicOp::CompareSwap, target, 0x108, 7, 42)
        .unwrap();
    let mut links = [Link::new(true), Link::new(true)];
    let mut pump = |from: &mut Connection, to: &mut Connection, link: usize| {
        links[link].pump(from, to, usize::MAX);
        assert!(links[link].is_idle());
    };
    pump(&mut a, &mut b, 0);
    pump(&mut b, &mut a, 1);
    assert_eq!(b.poll_event(), None);
    let c = b.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.immediate, c.solicited, c.byte_len),
        (1, Some(*b"imm-data"), true, 0)
    );
    let got: Vec<_> = std::iter::from_fn(|| a.poll_completion())
        .map(|c| (c.wr_id, c.status, c.atomic_value))
        .collect();
    assert_eq!(
        got,
        [
            (10, CompletionStatus::Success, None),
            (11, CompletionStatus::Success, Some(40)),
            (12, CompletionStatus::Success, Some(42)),
        ]
    );
    let mut v = [0u8; 8];
    t.copy_out(target, 0x108, &mut v).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 7);
    // A misaligned target is refused by b with a Terminate (RFC 7306 §8.2), which a
    // receives. (The region starts at the allocation's first octet, aligned.)
    a.post_atomic(13, AtomicOp::FetchAdd, target, 0x104, 7, 0)
        .unwrap();
    pump(&mut a, &mut b, 0);
    pump(&mut b, &mut a, 1);
    let c = a.poll_completion().unwrap();
    assert_eq!((c.wr_id, c.status), (13, CompletionStatus::Flushed));
    assert!(
        matches!(a.poll_event(), Some(Event::PeerTerminated(t)) if t.reason == TerminateReason::RdmapOperation(OperationError::CatastrophicStream))
    );
    assert_eq!(b.state(), State::Error);
}

/// RFC 7306 §4.1 Figure 2, §6.2, §6.3: Immediate Data (0x8) and Immediate Data with SE
/// (0x9) are untagged on QN 0, share the Send MSNs, carry exactly 8 octets; Atomic
/// Requests share QN 1 with Read Requests.
#[test]
fn extension_queues_and_msns() {
    let mut h = ext();
    let buf = LocalBuffer::from_boxed(vec![1u8; 3].into());
    h.c.post_send(1, buf, SendOptions::default()).unwrap();
    h.c.post_immediate(2, *b"ABCDEFGH", false).unwrap();
    h.c.post_immediate(3, *b"IJKLMNOP", true).unwrap();
    h.c.post_read(4, h.stag, 0x1000, 0, Stag(9), 0).unwrap();
    h.c.post_atomic(5, AtomicOp::FetchAdd, Stag(9), 8, 1, 0)
        .unwrap();
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(seg.header(), untagged_out(0x3, 0, 1));
    h.c.segment_sent(seg.token());
    let mut want = untagged_out(OP_IMM, 0, 2);
    want.extend_from_slice(b"ABCDEFGH");
    assert_eq!(next_header(&mut h.c), want);
    let mut want = untagged_out(OP_IMM_SE, 0, 3);
    want.extend_from_slice(b"IJKLMNOP");
    assert_eq!(next_header(&mut h.c), want);
    assert_eq!(&next_header(&mut h.c)[..18], untagged_out(0x1, 1, 1));
    assert_eq!(
        &next_header(&mut h.c)[..18],
        untagged_out(OP_ATOMIC_REQ, 1, 2)
    );
    let got = statuses(&mut h.c);
    assert_eq!(
        got,
        [
            (1, CompletionStatus::Success),
            (2, CompletionStatus::Success),
            (3, CompletionStatus::Success)
        ]
    );
}

/// RFC 7306 §4.1 ("Invalidate STag: Set to zero by the sender, ignored by the
/// receiver"), §5.2.1 (Reserved "ignored on receive").
#[test]
fn reserved_fields_are_ignored_on_receive() {
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC);
    let old = u64::from_ne_bytes(snapshot(&h.t, s)[..8].try_into().unwrap());
    let mut u = atomic_req(1, fetch_add(s, 0, 1));
    u[2..6].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    u[18..22].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xF0]);
    let _ = h.c.recv_ulpdu(&u);
    assert_eq!(h.c.poll_event(), None);
    assert_eq!(atomic_response_out(&mut h.c, 1), (0x5EED, old));
    post_boxed_recv(&mut h.c, 1, 0);
    let mut u = immediate(OP_IMM, 1, b"12345678");
    u[2..6].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    let _ = h.c.recv_ulpdu(&u);
    let c = h.c.poll_completion().unwrap();
    assert_eq!((c.wr_id, c.immediate), (1, Some(*b"12345678")));
    assert_eq!(c.invalidated, None);
}

/// RFC 7306 §6.3: "The Remote Peer MUST check that Immediate Data ... include exactly
/// 8 bytes of data"; fewer, more, or a message in several segments draws a Terminate
/// RDMAP / Remote Operation Error / Unspecified (0/2/0xFF) and consumes no receive.
#[test]
fn immediate_data_is_exactly_8_octets() {
    let cases: [(&[u8], bool); 4] = [
        (b"1234567", true),
        (b"123456789", true),
        (b"", true),
        (b"12345678", false),
    ];
    for (data, last) in cases {
        let mut h = ext();
        post_boxed_recv(&mut h.c, 1, 64);
        let mut u = untagged(OP_IMM, last, 0, 0, 1, 0);
        u.extend_from_slice(data);
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(
            &mut h.c,
            TerminateReason::RdmapOperation(OperationError::Unspecified),
        );
        ddp_included(&t, &u[..18]);
        assert_eq!(statuses(&mut h.c), [(1, CompletionStatus::Flushed)]);
    }
}

/// RFC 7306 §6.1, §6.3, §6.4: one Immediate Data message consumes one receive, in
/// order with Sends (same queue, same MSNs), and completes it with the 8 octets (the
/// buffer is not written) and, for 0x9, the solicited event flag.
#[test]
fn immediate_data_consumes_one_receive_in_order() {
    let mut h = ext();
    for id in 1..=3 {
        post_boxed_recv(&mut h.c, id, 16);
    }
    let _ = h.c.recv_ulpdu(&immediate(OP_IMM, 1, b"first..."));
    let _ = h.c.recv_ulpdu(&send(2, 0, true, b"send"));
    let _ = h.c.recv_ulpdu(&immediate(OP_IMM_SE, 3, b"third..."));
    let got: Vec<_> = std::iter::from_fn(|| h.c.poll_completion())
        .map(|c| {
            (
                c.wr_id,
                c.op,
                c.byte_len,
                c.solicited,
                c.immediate,
                c.buffer,
            )
        })
        .collect();
    let buf = |b: &[u8]| {
        let mut v = vec![0u8; 16];
        v[..b.len()].copy_from_slice(b);
        Some(v.into_boxed_slice())
    };
    assert_eq!(
        got,
        [
            (
                1,
                CompletionOp::Recv,
                0,
                false,
                Some(*b"first..."),
                buf(b"")
            ),
            (2, CompletionOp::Recv, 4, false, None, buf(b"send")),
            (3, CompletionOp::Recv, 0, true, Some(*b"third..."), buf(b"")),
        ]
    );
    assert_eq!(h.c.state(), State::Operational);
}

/// RFC 7306 §1.1, §8.2 with RFC 5040 §7.2: without the extensions enabled, opcodes
/// 0x8..0xB are unexpected opcodes (0/2/0x06), and nothing can be posted.
#[test]
fn extensions_off_refuses_every_extension_opcode() {
    for op in [OP_IMM, OP_IMM_SE, OP_ATOMIC_REQ, OP_ATOMIC_RESP] {
        let mut h = harness(|_| {});
        let qn = [0, 0, 1, 3][usize::from(op - 8)];
        let mut u = untagged(op, true, 0, qn, 1, 0);
        u.resize(18 + 52, 0);
        let _ = h.c.recv_ulpdu(&u);
        expect_error(
            &mut h.c,
            TerminateReason::RdmapOperation(OperationError::UnexpectedOpcode),
        );
    }
    let mut h = harness(|_| {});
    assert_eq!(
        h.c.post_immediate(1, [0; 8], false),
        Err(PostError::ExtensionsDisabled)
    );
    assert_eq!(
        h.c.post_atomic(1, AtomicOp::FetchAdd, Stag(1), 0, 1, 0),
        Err(PostError::ExtensionsDisabled)
    );
}

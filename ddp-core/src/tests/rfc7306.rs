//! RFC 7306 conformance, rule by rule (the table in docs/wire-facts.md §5.5 names
//! these tests): wire layouts, queues, the Responder's checks and Terminates, the
//! Requester's matching, Immediate Data.

use super::*;
use crate::wire::{AtomicRequestPacket, AtomicRequestRepr};

pub(super) const OP_IMM: u8 = 0x8;
pub(super) const OP_IMM_SE: u8 = 0x9;
pub(super) const OP_ATOMIC_REQ: u8 = 0xA;
pub(super) const OP_ATOMIC_RESP: u8 = 0xB;

pub(super) fn ext() -> H {
    harness(|c| c.extensions = true)
}

/// Registers 32 octets for `ME` at tagged offset `base_to`, their first octet
/// `misalign` octets past an 8-octet aligned address, filled with 0x11 0x22 ….
pub(super) fn atomic_region(
    t: &MemoryTable,
    misalign: usize,
    base_to: u64,
    access: Access,
) -> Stag {
    let mut buf: Box<[u8]> = vec![0u8; 64].into();
    let start = (8 - buf.as_ptr() as usize % 8) % 8 + misalign;
    for (i, b) in buf[start..start + 32].iter_mut().enumerate() {
        *b = 0x11u8.wrapping_mul(i as u8 + 1);
    }
    let s = t
        .register_owned(
            buf,
            start..start + 32,
            base_to,
            access,
            Scope::Connection(ME),
        )
        .unwrap();
    assert_eq!(t.info(s).unwrap().base_to, base_to);
    s
}

pub(super) fn snapshot(t: &MemoryTable, s: Stag) -> [u8; 32] {
    let mut v = [0u8; 32];
    t.copy_out(s, t.info(s).unwrap().base_to, &mut v).unwrap();
    v
}

pub(super) fn fetch_add(stag: Stag, to: u64, add: u64) -> AtomicRequestRepr {
    AtomicRequestRepr {
        opcode: 0,
        request_id: 0x5EED,
        remote_stag: stag.0,
        remote_to: to,
        add_swap: add,
        add_swap_mask: 0,
        compare: 0,
        compare_mask: u64::MAX,
    }
}

/// An inbound Atomic Request ULPDU: untagged, QN 1, MO 0, L, then the 52 octets.
pub(super) fn atomic_req(msn: u32, r: AtomicRequestRepr) -> Vec<u8> {
    let mut b = untagged(OP_ATOMIC_REQ, true, 0, 1, msn, 0);
    let mut body = [0u8; 52];
    r.emit(&mut AtomicRequestPacket::new_unchecked(&mut body[..]));
    b.extend_from_slice(&body);
    b
}

pub(super) fn immediate(op: u8, msn: u32, data: &[u8]) -> Vec<u8> {
    let mut b = untagged(op, true, 0, 0, msn, 0);
    b.extend_from_slice(data);
    b
}

/// The next segment's header (no payload expected), reported sent.
pub(super) fn next_header(c: &mut Connection) -> Vec<u8> {
    let seg = c.poll_segment().expect("a segment");
    assert!(c.segment_payload(&seg).is_empty(), "no payload");
    let h = seg.header().to_vec();
    c.segment_sent(seg.token());
    h
}

/// The untagged DDP header octets this stack must send for opcode `op` (RFC 7306
/// §4.1: L = 1, DV = 1, RV = 1, Invalidate STag 0, MO 0).
pub(super) fn untagged_out(op: u8, qn: u32, msn: u32) -> Vec<u8> {
    let mut h = vec![0x41, 0x40 | op, 0, 0, 0, 0];
    h.extend_from_slice(&qn.to_be_bytes());
    h.extend_from_slice(&msn.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h
}

/// The Atomic Response this side sends: (Original Request Identifier, Original Remote
/// Data Value), after checking every octet of its header.
pub(super) fn atomic_response_out(c: &mut Connection, msn: u32) -> (u32, u64) {
    let h = next_header(c);
    assert_eq!(
        h.len(),
        18 + 12,
        "Atomic Response: 12 octets after the DDP header"
    );
    assert_eq!(&h[..18], untagged_out(OP_ATOMIC_RESP, 3, msn));
    (
        u32::from_be_bytes(h[18..22].try_into().unwrap()),
        u64::from_be_bytes(h[22..30].try_into().unwrap()),
    )
}

/// RFC 7306 §5.1.1, §5.1.2, §8.2: a target address not 64-bit aligned draws RDMAP /
/// Remote Operation Error / "Catastrophic error, localized to RDMAP Stream" (0/2/0x07)
/// with the DDP header and no RDMA header (§8.1 item 2), and memory is not modified.
#[test]
fn atomic_misaligned_target_terminates_catastrophic_stream() {
    for off in 1..8u64 {
        for op in [AtomicOp::FetchAdd, AtomicOp::CompareSwap] {
            let mut h = ext();
            let s = atomic_region(&h.t, 0, 0x100, Access::REMOTE_ATOMIC);
            let before = snapshot(&h.t, s);
            let mut r = fetch_add(s, 0x100 + off, 1);
            r.opcode = op.to_u8();
            let u = atomic_req(1, r);
            assert_eq!(h.c.recv_ulpdu(&u), RxVerdict::Accepted);
            let t = expect_error(
                &mut h.c,
                TerminateReason::RdmapOperation(OperationError::CatastrophicStream),
            );
            assert_eq!(t.reason().to_parts(), (0, 2, 0x07));
            ddp_included(&t, &u[..18]);
            assert_eq!(t.segment_len, 70);
            assert_eq!(t.rdma_header, None);
            assert_eq!(snapshot(&h.t, s), before, "memory not modified");
        }
    }
}

/// RFC 7306 §5.2.1 ("The Remote Tagged Offset MAY start at an arbitrary offset but
/// MUST represent a ULP Buffer address that is 64-bit aligned"), §8.2: the address is
/// checked, not the tagged offset.
#[test]
fn atomic_alignment_is_checked_on_the_address_not_the_to() {
    // An odd tagged offset at an aligned address: performed.
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0x1003, Access::REMOTE_ATOMIC);
    let before = snapshot(&h.t, s);
    let old = u64::from_ne_bytes(before[8..16].try_into().unwrap());
    let _ = h.c.recv_ulpdu(&atomic_req(1, fetch_add(s, 0x1003 + 8, 5)));
    assert_eq!(h.c.poll_event(), None);
    assert_eq!(atomic_response_out(&mut h.c, 1), (0x5EED, old));
    assert!(
        h.c.poll_completion().is_none(),
        "RFC 7306 §5.2.1 item 3: not delivered to the Responder's ULP"
    );
    let after = snapshot(&h.t, s);
    assert_eq!(
        u64::from_ne_bytes(after[8..16].try_into().unwrap()),
        old + 5
    );

    // An aligned tagged offset at an address 4 past an aligned one: refused.
    let mut h = ext();
    let s = atomic_region(&h.t, 4, 0x1000, Access::REMOTE_ATOMIC);
    let before = snapshot(&h.t, s);
    let _ = h.c.recv_ulpdu(&atomic_req(1, fetch_add(s, 0x1008, 5)));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::CatastrophicStream),
    );
    assert_eq!(snapshot(&h.t, s), before);
}

/// RFC 7306 §10.1: AOpCode 0x1 is Reserved (there is no Swap), and §5.2.1 item 4: an
/// AOpCode the RNIC does not support surfaces an error, a Terminate RDMAP / Remote
/// Operation Error / Unspecified (0/2/0xFF); memory is not modified.
#[test]
fn aopcode_0001b_is_reserved() {
    assert_eq!(AtomicOp::from_u8(0), Some(AtomicOp::FetchAdd));
    assert_eq!(AtomicOp::from_u8(1), None);
    assert_eq!(AtomicOp::from_u8(2), Some(AtomicOp::CompareSwap));
    for code in [1u8, 3, 4, 0xF] {
        let mut h = ext();
        let s = atomic_region(&h.t, 0, 0x100, Access::REMOTE_ATOMIC);
        let before = snapshot(&h.t, s);
        let mut r = fetch_add(s, 0x100, 7);
        r.opcode = code;
        r.add_swap_mask = u64::MAX;
        let u = atomic_req(1, r);
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(
            &mut h.c,
            TerminateReason::RdmapOperation(OperationError::Unspecified),
        );
        ddp_included(&t, &u[..18]);
        assert_eq!(t.rdma_header, None);
        assert_eq!(
            snapshot(&h.t, s),
            before,
            "AOpCode {code}: memory untouched"
        );
    }
}

/// RFC 7306 §5.2.1 Figure 4, Figure 5 and the field descriptions: what the Requester
/// sends, octet by octet. FetchAdd: Compare Data 0 and Compare Mask all ones whatever
/// the caller passed; CmpSwap: both masks as given; Reserved bits zero.
#[test]
fn atomic_request_octets() {
    let mut h = ext();
    let remote = Stag(0x0A0B_0C0D);
    h.c.post_atomic(1, AtomicOp::FetchAdd, remote, 0x1122_3344_5566_7788, 5, 42)
        .unwrap();
    h.c.post_atomic(2, AtomicOp::CompareSwap, remote, 0x10, 7, 9)
        .unwrap();
    h.c.post_atomic_masked(
        3,
        remote,
        0x18,
        AtomicArgs {
            op: AtomicOp::FetchAdd,
            data: 0x0101,
            data_mask: 0x8080,
            compare: 0x77,
            compare_mask: 0x66,
        },
    )
    .unwrap();
    h.c.post_atomic_masked(
        4,
        remote,
        0x20,
        AtomicArgs {
            op: AtomicOp::CompareSwap,
            data: 0xAB00,
            data_mask: 0xFF00,
            compare: 0x12,
            compare_mask: 0xFF,
        },
    )
    .unwrap();
    let expect = [
        (
            1u32,
            0u32,
            0x1122_3344_5566_7788u64,
            5u64,
            0u64,
            0u64,
            u64::MAX,
        ),
        (2, 2, 0x10, 7, u64::MAX, 9, u64::MAX),
        (3, 0, 0x18, 0x0101, 0x8080, 0, u64::MAX),
        (4, 2, 0x20, 0xAB00, 0xFF00, 0x12, 0xFF),
    ];
    let mut ids = Vec::new();
    for (msn, aop, to, data, mask, cmp, cmask) in expect {
        let hdr = next_header(&mut h.c);
        assert_eq!(
            hdr.len(),
            18 + 52,
            "Atomic Request: 52 octets after the DDP header"
        );
        assert_eq!(
            &hdr[..18],
            untagged_out(OP_ATOMIC_REQ, 1, msn),
            "QN 1 like Reads"
        );
        assert_eq!(&hdr[18..22], &[0, 0, 0, aop as u8], "Reserved 0, AOpCode");
        ids.push(u32::from_be_bytes(hdr[22..26].try_into().unwrap()));
        assert_eq!(&hdr[26..30], &remote.0.to_be_bytes());
        assert_eq!(&hdr[30..38], &to.to_be_bytes());
        assert_eq!(&hdr[38..46], &data.to_be_bytes(), "Add or Swap Data");
        assert_eq!(&hdr[46..54], &mask.to_be_bytes(), "Add or Swap Mask");
        assert_eq!(&hdr[54..62], &cmp.to_be_bytes(), "Compare Data");
        assert_eq!(&hdr[62..70], &cmask.to_be_bytes(), "Compare Mask");
    }
    ids.dedup();
    assert_eq!(ids.len(), 4, "distinct Request Identifiers");
}

/// RFC 7306 §5.1, §5.2.2: the Atomic Response (QN 3, its own MSNs from 1) carries the
/// Request Identifier and the original value, big-endian on the wire, while the
/// operation works on the target in the host's byte order.
#[test]
fn atomic_response_octets_and_byte_order() {
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC);
    h.t.place(
        ME,
        s,
        0,
        &0x0102_0304_0506_0708u64.to_ne_bytes(),
        Access::NONE,
    )
    .unwrap();
    h.t.place(ME, s, 8, &0x10u64.to_ne_bytes(), Access::NONE)
        .unwrap();
    let mut r = fetch_add(s, 0, 0x10);
    r.request_id = 0xDEAD_BEEF;
    let _ = h.c.recv_ulpdu(&atomic_req(1, r));
    let mut r = fetch_add(s, 8, 0);
    r.opcode = AtomicOp::CompareSwap.to_u8();
    r.compare = 0x10;
    r.add_swap = 0xFFFF_0000_0000_0001;
    r.add_swap_mask = u64::MAX;
    r.request_id = 7;
    let _ = h.c.recv_ulpdu(&atomic_req(2, r));
    let h1 = next_header(&mut h.c);
    assert_eq!(&h1[..18], untagged_out(OP_ATOMIC_RESP, 3, 1));
    assert_eq!(
        &h1[18..],
        &[0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4, 5, 6, 7, 8],
        "Original Request Identifier, Original Remote Data Value (big-endian)"
    );
    assert_eq!(atomic_response_out(&mut h.c, 2), (7, 0x10));
    let m = snapshot(&h.t, s);
    assert_eq!(&m[..8], &0x0102_0304_0506_0718u64.to_ne_bytes());
    assert_eq!(&m[8..16], &0xFFFF_0000_0000_0001u64.to_ne_bytes());
}

/// RFC 7306 §4.1 Figure 2, §5.2.1 item 5, §5.2.2 item 3, §6.3: each message on its
/// queue; another QN is DDP / Untagged / Invalid QN (1/2/0x01).
#[test]
fn extension_messages_on_the_wrong_queue() {
    let s = Stag(0x100);
    let mut cases = Vec::new();
    let mut u = atomic_req(1, fetch_add(s, 0, 1));
    u[6..10].copy_from_slice(&0u32.to_be_bytes());
    cases.push(u);
    let mut u = atomic_req(1, fetch_add(s, 0, 1));
    u[6..10].copy_from_slice(&3u32.to_be_bytes());
    cases.push(u);
    let mut u = untagged(OP_IMM, true, 0, 1, 1, 0);
    u.extend_from_slice(b"12345678");
    cases.push(u);
    let mut u = untagged(OP_IMM_SE, true, 0, 3, 1, 0);
    u.extend_from_slice(b"12345678");
    cases.push(u);
    let mut u = untagged(OP_ATOMIC_RESP, true, 0, 1, 1, 0);
    u.extend_from_slice(&[0; 12]);
    cases.push(u);
    for u in cases {
        let mut h = ext();
        post_boxed_recv(&mut h.c, 1, 16);
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(
            &mut h.c,
            TerminateReason::DdpUntagged(UntaggedError::InvalidQn),
        );
        ddp_included(&t, &u[..18]);
    }
}

/// RFC 7306 §5 ("memory registered for Atomic Operations"), §8.2 with RFC 5040 §7.2:
/// the target must be a valid STag of this stream, in bounds, with the remote atomic
/// right; errors are RDMAP Remote Protection Errors with the DDP header and, per RFC
/// 7306 §8.1 item 2, no RDMA header.
#[test]
fn atomic_target_protection_checks() {
    type Target = fn(&H) -> (Stag, u64);
    let cases: [(Target, ProtectionError); 4] = [
        (
            |h| {
                (
                    atomic_region(&h.t, 0, 0, Access::REMOTE_READ | Access::REMOTE_WRITE),
                    0,
                )
            },
            ProtectionError::AccessRights,
        ),
        (|h| (Stag(h.stag.0 + 7), 0), ProtectionError::InvalidStag),
        (
            |h| (atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC), 32),
            ProtectionError::BaseBounds,
        ),
        (
            |h| (h.region(8, Access::REMOTE_ATOMIC, OTHER), 0),
            ProtectionError::StagNotAssociated,
        ),
    ];
    for (mk, err) in cases {
        let mut h = ext();
        let (s, to) = mk(&h);
        let u = atomic_req(1, fetch_add(s, to, 1));
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(&mut h.c, TerminateReason::RdmapProtection(err));
        ddp_included(&t, &u[..18]);
        assert_eq!(t.rdma_header, None, "{err:?}: no RDMA header");
    }
}

/// RFC 7306 §5.2 (Atomic Requests reuse ORD/IRD flow control), §5.2.2 item 4: Reads
/// and Atomics together are bounded by IRD; one more is RDMAP / Remote Operation /
/// Catastrophic error, localized to RDMAP Stream, as for Reads.
#[test]
fn atomic_requests_share_ird_with_reads() {
    let mut h = harness(|c| {
        c.extensions = true;
        c.ird = 1;
    });
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC);
    let _ = h.c.recv_ulpdu(&read_req(1, ReadRequestRepr::default()));
    let _ = h.c.recv_ulpdu(&atomic_req(2, fetch_add(s, 0, 1)));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::CatastrophicStream),
    );
}

/// RFC 7306 §5.2.1 item 7, §5.2.2 item 8, §5.4 rule 8, §7 (Read/Atomic rows): the
/// Responder answers Reads and Atomics in the order they arrived.
#[test]
fn responses_follow_request_order() {
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC | Access::REMOTE_READ);
    let read = |msn| {
        read_req(
            msn,
            ReadRequestRepr {
                sink_stag: 0x77,
                sink_to: u64::from(msn),
                size: 8,
                src_stag: s.0,
                src_to: 0,
            },
        )
    };
    let _ = h.c.recv_ulpdu(&read(1));
    let _ = h.c.recv_ulpdu(&atomic_req(2, fetch_add(s, 8, 1)));
    let _ = h.c.recv_ulpdu(&read(3));
    let _ = h.c.recv_ulpdu(&atomic_req(4, fetch_add(s, 16, 1)));
    let mut order = Vec::new();
    while let Some(seg) = h.c.poll_segment() {
        order.push(seg.header()[1] & 0xF);
        h.c.segment_sent(seg.token());
    }
    assert_eq!(order, [0x2, OP_ATOMIC_RESP, 0x2, OP_ATOMIC_RESP]);
}

/// RFC 7306 §5 ("the MSN will be used to locate the corresponding Atomic Operation
/// request"), §5.2.2 item 7, §5.4 rule 7: a response completes the oldest Atomic only
/// if it carries its Request Identifier and the next QN 3 MSN; anything else is an
/// error, and the Atomic stays uncompleted until then.
#[test]
fn atomic_response_matching() {
    let resp = |msn: u32, id: u32, v: u64| {
        let mut u = untagged(OP_ATOMIC_RESP, true, 0, 3, msn, 0);
        u.extend_from_slice(&id.to_be_bytes());
        u.extend_from_slice(&v.to_be_bytes());
        u
    };
    let issue = |h: &mut H| {
        h.c.post_atomic(9, AtomicOp::FetchAdd, Stag(0x100), 0, 1, 0)
            .unwrap();
        let hdr = next_header(&mut h.c);
        assert!(
            h.c.poll_completion().is_none(),
            "not completed before the response"
        );
        u32::from_be_bytes(hdr[22..26].try_into().unwrap())
    };
    // The right one.
    let mut h = ext();
    let id = issue(&mut h);
    let _ = h.c.recv_ulpdu(&resp(1, id, 0xABCD));
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.op, c.status, c.atomic_value),
        (
            9,
            CompletionOp::Atomic,
            CompletionStatus::Success,
            Some(0xABCD)
        )
    );
    // None outstanding.
    let mut h = ext();
    let _ = h.c.recv_ulpdu(&resp(1, 0, 0));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::UnexpectedOpcode),
    );
    // Another Request Identifier.
    let mut h = ext();
    let id = issue(&mut h);
    let _ = h.c.recv_ulpdu(&resp(1, id.wrapping_add(1), 0));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::UnexpectedOpcode),
    );
    // Another MSN.
    let mut h = ext();
    let id = issue(&mut h);
    let _ = h.c.recv_ulpdu(&resp(2, id, 0));
    expect_error(
        &mut h.c,
        TerminateReason::DdpUntagged(UntaggedError::MsnRange),
    );
}

/// RFC 7306 §7 (RDMA Read, then Atomic: "Atomic Response Message will not be
/// generated until RDMA Read Response has been generated"; Atomic, then Atomic: the
/// second "will not be processed until first Atomic Response has been generated"):
/// an Atomic is performed when its response is generated, after every earlier Read
/// Response has been sent, so an earlier Read of the target returns the value from
/// before the Atomic, and a later one the value after.
#[test]
fn read_then_atomic_on_the_same_target() {
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC | Access::REMOTE_READ);
    h.t.place(ME, s, 0, &100u64.to_ne_bytes(), Access::NONE)
        .unwrap();
    let read = |msn| {
        read_req(
            msn,
            ReadRequestRepr {
                sink_stag: 0x77,
                sink_to: 0,
                size: 8,
                src_stag: s.0,
                src_to: 0,
            },
        )
    };
    let _ = h.c.recv_ulpdu(&read(1));
    let _ = h.c.recv_ulpdu(&atomic_req(2, fetch_add(s, 0, 1)));
    let _ = h.c.recv_ulpdu(&read(3));
    let first = h.c.poll_segment().unwrap();
    assert_eq!(first.header()[1], 0x42);
    assert_eq!(h.c.segment_payload(&first), 100u64.to_ne_bytes());
    assert!(
        h.c.poll_segment().is_none(),
        "the Atomic waits until the Read Response before it is sent"
    );
    let mut v = [0u8; 8];
    h.t.copy_out(s, 0, &mut v).unwrap();
    assert_eq!(u64::from_ne_bytes(v), 100, "not performed yet");
    h.c.segment_sent(first.token());
    assert_eq!(atomic_response_out(&mut h.c, 1), (0x5EED, 100));
    let last = h.c.poll_segment().unwrap();
    assert_eq!(h.c.segment_payload(&last), 101u64.to_ne_bytes());
}

/// RFC 7306 §8.1 item 2: an Atomic whose target was deregistered after the request
/// was accepted fails when it is performed, with the Terminate the check at arrival
/// would have sent (DDP header included) and no response.
#[test]
fn atomic_target_gone_before_the_response() {
    let mut h = ext();
    let s = atomic_region(&h.t, 0, 0, Access::REMOTE_ATOMIC);
    let u = atomic_req(1, fetch_add(s, 0, 1));
    let _ = h.c.recv_ulpdu(&u);
    h.t.deregister(s).unwrap();
    let seg = h.c.poll_segment().expect("the Terminate");
    assert_eq!(&seg.header()[..2], &[0x41, 0x47]);
    assert_eq!(
        h.c.poll_event(),
        Some(Event::LocalError(TerminateReason::RdmapProtection(
            ProtectionError::InvalidStag
        )))
    );
    let t =
        TerminateRepr::parse(&TerminatePacket::new_checked(&seg.header()[18..]).unwrap()).unwrap();
    assert_eq!(
        t.reason(),
        TerminateReason::RdmapProtection(ProtectionError::InvalidStag)
    );
    ddp_included(&t, &u[..18]);
    assert_eq!(t.rdma_header, None);
    h.c.segment_sent(seg.token());
    assert_eq!(h.c.state(), State::Error);
}

/// RFC 7306 §5.2 (ORD flow control shared with Reads), §5.2.2 item 5: the Requester
/// keeps at most ORD Reads and Atomics outstanding; the next waits for a response.
#[test]
fn requester_atomics_share_ord_with_reads() {
    let mut h = harness(|c| {
        c.extensions = true;
        c.ord = 1;
    });
    h.c.post_read(1, h.stag, 0x1000, 0, Stag(9), 0).unwrap();
    h.c.post_atomic(2, AtomicOp::FetchAdd, Stag(9), 0, 1, 0)
        .unwrap();
    assert_eq!(next_header(&mut h.c)[1], 0x41);
    assert!(h.c.poll_segment().is_none(), "ORD 1: the Atomic waits");
    let _ = h.c.recv_ulpdu(&tagged(0x2, true, h.stag.0, 0x1000));
    assert_eq!(statuses(&mut h.c), [(1, CompletionStatus::Success)]);
    let hdr = next_header(&mut h.c);
    assert_eq!(&hdr[..18], untagged_out(OP_ATOMIC_REQ, 1, 2));
}

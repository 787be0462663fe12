//! Connection-level tests of the RFC rules, with ULPDUs built by hand.

use crate::wire::terminate::{FLAG_D, FLAG_M, FLAG_R};
use crate::wire::{
    DdpPacket, DdpRepr, ReadRequestRepr, TaggedRepr, TerminatePacket, TerminateRepr, UntaggedRepr,
};
use crate::*;

const ME: ConnId = ConnId(1);
const OTHER: ConnId = ConnId(2);

fn all_remote() -> Access {
    Access::REMOTE_WRITE | Access::REMOTE_READ | Access::LOCAL_WRITE
}

struct H {
    c: Connection,
    t: MemoryTable,
    stag: Stag,
}

fn harness(f: impl FnOnce(&mut Config)) -> H {
    let t = MemoryTable::new();
    let stag = t
        .register_owned(
            vec![0u8; 256].into(),
            64..192,
            0x1000,
            all_remote(),
            Scope::Connection(ME),
        )
        .unwrap();
    let mut cfg = Config::new(ME, 128);
    f(&mut cfg);
    let c = Connection::new(cfg, t.clone()).unwrap();
    H { c, t, stag }
}

fn untagged(op: u8, last: bool, inv: u32, qn: u32, msn: u32, mo: u32) -> Vec<u8> {
    let mut b = vec![0u8; 18];
    DdpRepr::Untagged(UntaggedRepr {
        last,
        version: 1,
        rsvd_ulp: 0x40 | op,
        rsvd_ulp2: inv,
        qn,
        msn,
        mo,
    })
    .emit(&mut DdpPacket::new_unchecked(&mut b[..]));
    b
}

fn tagged(op: u8, last: bool, stag: u32, to: u64) -> Vec<u8> {
    let mut b = vec![0u8; 14];
    DdpRepr::Tagged(TaggedRepr {
        last,
        version: 1,
        rsvd_ulp: 0x40 | op,
        stag,
        tagged_offset: to,
    })
    .emit(&mut DdpPacket::new_unchecked(&mut b[..]));
    b
}

fn send(msn: u32, mo: u32, last: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = untagged(3, last, 0, 0, msn, mo);
    b.extend_from_slice(payload);
    b
}

fn read_req(msn: u32, r: ReadRequestRepr) -> Vec<u8> {
    let mut b = untagged(1, true, 0, 1, msn, 0);
    b.extend_from_slice(&r.to_bytes());
    b
}

/// Polls the Terminate the connection must have queued and decodes it.
fn terminate_out(c: &mut Connection) -> TerminateRepr {
    let seg = c.poll_segment().expect("a Terminate segment");
    let h = seg.header();
    assert_eq!(&h[..2], &[0x41, 0x47]);
    let p = DdpPacket::new_checked(h).unwrap();
    assert_eq!((p.qn(), p.msn(), p.mo()), (2, 1, 0));
    let t = TerminateRepr::parse(&TerminatePacket::new_checked(&h[18..]).unwrap()).unwrap();
    c.segment_sent(seg.token());
    assert_eq!(c.state(), State::Error);
    assert!(c.poll_segment().is_none(), "nothing after the Terminate");
    t
}

fn expect_error(c: &mut Connection, reason: TerminateReason) -> TerminateRepr {
    let mut saw = false;
    while let Some(e) = c.poll_event() {
        if e == Event::LocalError(reason) {
            saw = true;
        }
    }
    assert!(saw, "expected local error {reason}");
    let t = terminate_out(c);
    assert_eq!(t.reason(), reason);
    t
}

fn ddp_included(t: &TerminateRepr, hdr: &[u8]) {
    let inc = t.ddp_header.expect("DDP header included");
    assert_eq!(inc.as_slice(), hdr);
    assert!(t.segment_len_valid);
}

fn post_boxed_recv(c: &mut Connection, id: u64, len: usize) {
    c.post_recv(id, LocalBuffer::from_boxed(vec![0u8; len].into()))
        .unwrap();
}

#[test]
fn bad_ddp_version() {
    let mut h = harness(|_| {});
    let mut s = send(1, 0, true, b"x");
    s[0] = 0x42;
    post_boxed_recv(&mut h.c, 1, 8);
    assert_eq!(h.c.recv_ulpdu(&s), RxVerdict::Accepted);
    let t = expect_error(
        &mut h.c,
        TerminateReason::DdpUntagged(UntaggedError::InvalidVersion),
    );
    ddp_included(&t, &s[..18]);
    assert_eq!(t.segment_len, 19);

    let mut h = harness(|_| {});
    let mut w = tagged(0, true, h.stag.0, 0x1000);
    w[0] = 0xC2;
    w.push(1);
    let _ = h.c.recv_ulpdu(&w);
    let t = expect_error(
        &mut h.c,
        TerminateReason::DdpTagged(TaggedError::InvalidVersion),
    );
    ddp_included(&t, &w[..14]);
}

#[test]
fn bad_rdmap_version_and_opcodes() {
    let mut h = harness(|_| {});
    let mut s = send(1, 0, true, b"");
    s[1] = 0x83;
    let _ = h.c.recv_ulpdu(&s);
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::InvalidVersion),
    );

    for bad in [
        untagged(0xC, true, 0, 0, 1, 0), // reserved opcode
        untagged(0x0, true, 0, 0, 1, 0), // Write opcode, untagged
        tagged(0x3, true, 0x100, 0),     // Send opcode, tagged
        untagged(0x8, true, 0, 0, 1, 0), // Immediate Data, extensions off
        untagged(0xA, true, 0, 1, 1, 0), // Atomic Request, extensions off
    ] {
        let mut h = harness(|_| {});
        let mut u = bad.clone();
        u.resize(u.len() + 60, 0);
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(
            &mut h.c,
            TerminateReason::RdmapOperation(OperationError::UnexpectedOpcode),
        );
        assert_eq!(t.ddp_header.unwrap().as_slice(), &bad[..]);
        assert_eq!(t.rdma_header, None);
    }
}

#[test]
fn send_checks() {
    let cases: [(Vec<u8>, UntaggedError); 4] = [
        (
            {
                let mut b = untagged(3, true, 0, 5, 1, 0);
                b.push(0);
                b
            },
            UntaggedError::InvalidQn,
        ),
        (send(2, 0, true, b"a"), UntaggedError::MsnRange),
        (send(1, 4, true, b"a"), UntaggedError::InvalidMo),
        (send(1, 0, true, &[0; 9]), UntaggedError::TooLong),
    ];
    for (ulpdu, err) in cases {
        let mut h = harness(|_| {});
        post_boxed_recv(&mut h.c, 1, 8);
        let _ = h.c.recv_ulpdu(&ulpdu);
        let t = expect_error(&mut h.c, TerminateReason::DdpUntagged(err));
        ddp_included(&t, &ulpdu[..18]);
        let t_flags = {
            let mut b = [0u8; 72];
            t.emit(&mut b);
            b[2]
        };
        assert_eq!(t_flags, FLAG_M | FLAG_D);
        let c = h.c.poll_completion().unwrap();
        assert_eq!((c.wr_id, c.status), (1, CompletionStatus::Flushed));
        assert_eq!(c.buffer.unwrap().len(), 8, "flushed buffer returned");
    }
}

#[test]
fn no_buffer_without_pool() {
    let mut h = harness(|c| c.pool_bytes = 0);
    let _ = h.c.recv_ulpdu(&send(1, 0, true, b"a"));
    expect_error(
        &mut h.c,
        TerminateReason::DdpUntagged(UntaggedError::NoBuffer),
    );
}

#[test]
fn send_multi_segment_in_order() {
    let mut h = harness(|_| {});
    post_boxed_recv(&mut h.c, 9, 10);
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 0, false, b"hello")),
        RxVerdict::Accepted
    );
    assert!(h.c.poll_completion().is_none());
    // Interleaving another message (new MSN) is refused.
    let mut bad = harness(|_| {});
    post_boxed_recv(&mut bad.c, 9, 10);
    let _ = bad.c.recv_ulpdu(&send(1, 0, false, b"hello"));
    let _ = bad.c.recv_ulpdu(&send(2, 0, true, b"x"));
    expect_error(
        &mut bad.c,
        TerminateReason::DdpUntagged(UntaggedError::MsnRange),
    );
    // Continue properly.
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 5, true, b"world")),
        RxVerdict::Accepted
    );
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.op, c.status, c.byte_len),
        (9, CompletionOp::Recv, CompletionStatus::Success, 10)
    );
    assert_eq!(&c.buffer.unwrap()[..], b"helloworld");
    assert!(h.c.has_received_fpdu());
}

#[test]
fn payload_split_is_placed_in_place() {
    let mut h = harness(|_| {});
    post_boxed_recv(&mut h.c, 1, 6);
    let u = send(1, 0, true, b"abcdef");
    assert_eq!(
        h.c.recv_header(u.len() as u16, &u[..18]),
        RxVerdict::Accepted
    );
    for b in u[18..].chunks(1) {
        h.c.recv_payload(b);
    }
    assert!(h.c.poll_completion().is_none(), "complete only at the end");
    h.c.recv_end();
    assert_eq!(
        &h.c.poll_completion().unwrap().buffer.unwrap()[..],
        b"abcdef"
    );
}

#[test]
fn write_checks() {
    let t_other = |h: &H| {
        h.t.register_owned(
            vec![0; 16].into(),
            0..16,
            0,
            all_remote(),
            Scope::Connection(OTHER),
        )
        .unwrap()
    };
    type Mk = fn(&H, Stag) -> (u32, u64, usize);
    let cases: [(Mk, TerminateReason); 5] = [
        (
            |h, _| (h.stag.0 ^ 0x1, 0x1000, 4),
            TerminateReason::DdpTagged(TaggedError::InvalidStag),
        ),
        (
            |h, _| (h.stag.0, 0x1000 + 126, 4),
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        ),
        (
            |h, _| (h.stag.0, 0xFFF, 4),
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        ),
        (
            |_, o| (o.0, 0, 4),
            TerminateReason::DdpTagged(TaggedError::StagNotAssociated),
        ),
        (
            |h, _| (h.stag.0, u64::MAX - 1, 4),
            TerminateReason::DdpTagged(TaggedError::ToWrap),
        ),
    ];
    for (mk, reason) in cases {
        let mut h = harness(|_| {});
        let o = t_other(&h);
        let (stag, to, n) = mk(&h, o);
        let mut w = tagged(0, true, stag, to);
        w.extend(std::iter::repeat_n(0xEE, n));
        let _ = h.c.recv_ulpdu(&w);
        let t = expect_error(&mut h.c, reason);
        ddp_included(&t, &w[..14]);
        let b = h.t.deregister(h.stag).unwrap().unwrap();
        assert!(b.iter().all(|&x| x == 0), "nothing placed");
        let b = h.t.deregister(o).unwrap().unwrap();
        assert!(
            b.iter().all(|&x| x == 0),
            "nothing placed in the other region"
        );
    }
    // Access rights.
    let mut h = harness(|_| {});
    let ro =
        h.t.register_owned(
            vec![0; 16].into(),
            0..16,
            0,
            Access::REMOTE_READ,
            Scope::Connection(ME),
        )
        .unwrap();
    let mut w = tagged(0, true, ro.0, 0);
    w.push(1);
    let _ = h.c.recv_ulpdu(&w);
    expect_error(
        &mut h.c,
        TerminateReason::RdmapProtection(ProtectionError::AccessRights),
    );
}

#[test]
fn write_places_and_zero_length_is_unchecked() {
    let mut h = harness(|_| {});
    let _ = h.c.recv_ulpdu(&tagged(0, true, 0xDEAD_BEEF, u64::MAX));
    let mut w = tagged(0, false, h.stag.0, 0x1000 + 10);
    w.extend_from_slice(b"abc");
    assert_eq!(h.c.recv_ulpdu(&w), RxVerdict::Accepted);
    let mut w = tagged(0, true, h.stag.0, 0x1000 + 13);
    w.extend_from_slice(b"de");
    assert_eq!(h.c.recv_ulpdu(&w), RxVerdict::Accepted);
    assert_eq!(h.c.state(), State::Operational, "{:?}", h.c.poll_event());
    assert!(
        h.c.poll_completion().is_none(),
        "no completion at the target of a Write"
    );
    let mut out = [0u8; 5];
    h.t.copy_out(h.stag, 0x1000 + 10, &mut out).unwrap();
    assert_eq!(&out, b"abcde");
    let b = h.t.deregister(h.stag).unwrap().unwrap();
    assert!(b[..74].iter().all(|&x| x == 0) && b[79..].iter().all(|&x| x == 0));
}

#[test]
fn read_request_source_checks_include_rdma_header() {
    type Mk = fn(&H) -> ReadRequestRepr;
    let cases: [(Mk, ProtectionError); 4] = [
        (
            |h| ReadRequestRepr {
                src_stag: h.stag.0 + 7,
                src_to: 0x1000,
                size: 4,
                ..Default::default()
            },
            ProtectionError::InvalidStag,
        ),
        (
            |h| ReadRequestRepr {
                src_stag: h.stag.0,
                src_to: 0x1000 + 125,
                size: 4,
                ..Default::default()
            },
            ProtectionError::BaseBounds,
        ),
        (
            |h| ReadRequestRepr {
                src_stag: h.stag.0,
                src_to: u64::MAX,
                size: 4,
                ..Default::default()
            },
            ProtectionError::ToWrap,
        ),
        (
            |h| {
                let s =
                    h.t.register_owned(
                        vec![0; 8].into(),
                        0..8,
                        0,
                        Access::REMOTE_READ,
                        Scope::Connection(OTHER),
                    )
                    .unwrap();
                ReadRequestRepr {
                    src_stag: s.0,
                    size: 4,
                    ..Default::default()
                }
            },
            ProtectionError::StagNotAssociated,
        ),
    ];
    for (mk, err) in cases {
        let mut h = harness(|_| {});
        let r = mk(&h);
        let u = read_req(1, r);
        let _ = h.c.recv_ulpdu(&u);
        let t = expect_error(&mut h.c, TerminateReason::RdmapProtection(err));
        ddp_included(&t, &u[..18]);
        assert_eq!(t.rdma_header, Some(r.to_bytes()));
        let mut b = [0u8; 72];
        t.emit(&mut b);
        assert_eq!(b[2], FLAG_M | FLAG_D | FLAG_R);
    }
    let mut h = harness(|_| {});
    let wo =
        h.t.register_owned(
            vec![0; 8].into(),
            0..8,
            0,
            Access::REMOTE_WRITE,
            Scope::Connection(ME),
        )
        .unwrap();
    let _ = h.c.recv_ulpdu(&read_req(
        1,
        ReadRequestRepr {
            src_stag: wo.0,
            size: 4,
            ..Default::default()
        },
    ));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapProtection(ProtectionError::AccessRights),
    );

    let mut h = harness(|_| {});
    let _ = h.c.recv_ulpdu(&read_req(2, ReadRequestRepr::default()));
    expect_error(
        &mut h.c,
        TerminateReason::DdpUntagged(UntaggedError::MsnRange),
    );
}

#[test]
fn read_request_answered_in_order_and_ird_overflow() {
    let mut h = harness(|c| c.ird = 2);
    let base = 0x1000;
    let _ = h.t.copy_out(h.stag, base, &mut [0; 1]);
    // Fill the source with a pattern through an inbound Write.
    let mut w = tagged(0, true, h.stag.0, base);
    w.extend((0..128u8).collect::<Vec<_>>());
    let _ = h.c.recv_ulpdu(&w);
    let r1 = ReadRequestRepr {
        sink_stag: 0x777,
        sink_to: 5,
        size: 128,
        src_stag: h.stag.0,
        src_to: base,
    };
    let r2 = ReadRequestRepr {
        sink_stag: 0x778,
        sink_to: 9,
        size: 0,
        src_stag: 1,
        src_to: 0,
    };
    assert_eq!(h.c.recv_ulpdu(&read_req(1, r1)), RxVerdict::Accepted);
    assert_eq!(h.c.recv_ulpdu(&read_req(2, r2)), RxVerdict::Accepted);
    // Response 1: 128 octets in segments of at most 128 - 14.
    let mut got = Vec::new();
    let mut to = 5;
    loop {
        let seg = h.c.poll_segment().unwrap();
        let p = DdpPacket::new_checked(seg.header()).unwrap();
        assert!(p.tagged());
        assert_eq!(p.rsvd_ulp(), 0x42);
        assert_eq!(p.stag(), 0x777);
        assert_eq!(p.tagged_offset(), to);
        assert!(seg.ulpdu_len() <= 128);
        let pl = h.c.segment_payload(&seg).to_vec();
        to += pl.len() as u64;
        got.extend_from_slice(&pl);
        h.c.segment_sent(seg.token());
        if p.last() {
            break;
        }
    }
    assert_eq!(got, (0..128u8).collect::<Vec<_>>());
    // Response 2: zero-length, STag and TO from the request.
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(seg.header(), &tagged(2, true, 0x778, 9)[..]);
    assert_eq!(seg.payload_len(), 0);
    h.c.segment_sent(seg.token());
    // IRD 2: three outstanding requests overflow.
    let _ = h.c.recv_ulpdu(&read_req(3, r2));
    let _ = h.c.recv_ulpdu(&read_req(4, r2));
    let u = read_req(5, r2);
    let _ = h.c.recv_ulpdu(&u);
    let t = expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::CatastrophicStream),
    );
    ddp_included(&t, &u[..18]);
    assert!(t.rdma_header.is_none());
}

#[test]
fn read_response_checks() {
    let setup = || {
        let mut h = harness(|_| {});
        h.c.post_read(42, h.stag, 0x1000, 10, Stag(0x9900), 0x50)
            .unwrap();
        let seg = h.c.poll_segment().unwrap();
        let p = DdpPacket::new_checked(seg.header()).unwrap();
        assert_eq!((p.qn(), p.msn(), p.mo(), p.rsvd_ulp()), (1, 1, 0, 0x41));
        let r = ReadRequestRepr::parse(
            &crate::wire::ReadRequestPacket::new_checked(&seg.header()[18..]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            r,
            ReadRequestRepr {
                sink_stag: h.stag.0,
                sink_to: 0x1000,
                size: 10,
                src_stag: 0x9900,
                src_to: 0x50
            }
        );
        h.c.segment_sent(seg.token());
        assert!(
            h.c.poll_completion().is_none(),
            "a Read completes with its response"
        );
        h
    };
    let resp = |stag: u32, to: u64, last: bool, n: usize| {
        let mut b = tagged(2, last, stag, to);
        b.extend(std::iter::repeat_n(7u8, n));
        b
    };
    // Good: two segments.
    let mut h = setup();
    let _ = h.c.recv_ulpdu(&resp(h.stag.0, 0x1000, false, 4));
    let _ = h.c.recv_ulpdu(&resp(h.stag.0, 0x1004, true, 6));
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.op, c.status, c.byte_len),
        (42, CompletionOp::Read, CompletionStatus::Success, 10)
    );
    let mut out = [0u8; 11];
    h.t.copy_out(h.stag, 0x1000, &mut out).unwrap();
    assert_eq!(out, [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0]);
    // Unexpected: no outstanding read.
    let _ = h.c.recv_ulpdu(&resp(h.stag.0, 0x1000, true, 1));
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::UnexpectedOpcode),
    );
    // Wrong STag, TO gap, too long, too short.
    let mut h = setup();
    let s = h.stag.0;
    let _ = h.c.recv_ulpdu(&resp(s + 1, 0x1000, true, 10));
    expect_error(
        &mut h.c,
        TerminateReason::DdpTagged(TaggedError::InvalidStag),
    );
    for bad in [
        resp(s, 0x1001, true, 10),
        resp(s, 0x1000, true, 11),
        resp(s, 0x1000, true, 9),
    ] {
        let mut h = setup();
        let _ = h.c.recv_ulpdu(&bad);
        expect_error(
            &mut h.c,
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        );
        let c = h.c.poll_completion().unwrap();
        assert_eq!((c.wr_id, c.status), (42, CompletionStatus::Flushed));
    }
}

#[test]
fn ord_limits_outstanding_reads() {
    let mut h = harness(|c| c.ord = 2);
    for i in 0..3 {
        h.c.post_read(i, h.stag, 0x1000, 0, Stag(0x500), 0).unwrap();
    }
    h.c.post_send(
        9,
        LocalBuffer::from_static(b"after"),
        SendOptions::default(),
    )
    .unwrap();
    let mut n = 0;
    while let Some(seg) = h.c.poll_segment() {
        assert_eq!(seg.header()[1], 0x41);
        h.c.segment_sent(seg.token());
        n += 1;
    }
    assert_eq!((n, h.c.outstanding_reads()), (2, 2));
    let _ = h.c.recv_ulpdu(&tagged(2, true, h.stag.0, 0x1000));
    assert_eq!(h.c.poll_completion().unwrap().wr_id, 0);
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(seg.header()[1], 0x41);
    h.c.segment_sent(seg.token());
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(seg.header()[1], 0x43);
    h.c.segment_sent(seg.token());
    assert!(
        h.c.poll_completion().is_none(),
        "Send completion waits for the Reads before it"
    );
    let _ = h.c.recv_ulpdu(&tagged(2, true, h.stag.0, 0x1000));
    let _ = h.c.recv_ulpdu(&tagged(2, true, h.stag.0, 0x1000));
    let ids: Vec<u64> = std::iter::from_fn(|| h.c.poll_completion())
        .map(|c| c.wr_id)
        .collect();
    assert_eq!(ids, [1, 2, 9]);
}

#[test]
fn send_segmentation_msn_mo_last() {
    let mut h = harness(|_| {});
    let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    h.c.post_send(
        1,
        LocalBuffer::from_boxed(data.clone().into()),
        SendOptions::default(),
    )
    .unwrap();
    h.c.post_send(
        2,
        LocalBuffer::from_static(b""),
        SendOptions {
            solicited: true,
            invalidate: Some(Stag(0xabcd)),
        },
    )
    .unwrap();
    let mut got = Vec::new();
    let mut tokens = Vec::new();
    let mut mo = 0;
    loop {
        let seg = h.c.poll_segment().unwrap();
        let p = DdpPacket::new_checked(seg.header()).unwrap();
        assert_eq!(
            (p.qn(), p.msn(), p.mo(), p.rsvd_ulp(), p.rsvd_ulp2()),
            (0, 1, mo, 0x43, 0)
        );
        assert!(seg.ulpdu_len() <= 128);
        got.extend_from_slice(h.c.segment_payload(&seg));
        mo += seg.payload_len() as u32;
        tokens.push(seg.token());
        if p.last() {
            assert_eq!(mo, 300);
            break;
        }
    }
    assert_eq!(tokens.len(), 3);
    assert_eq!(got, data);
    let seg = h.c.poll_segment().unwrap();
    let p = DdpPacket::new_checked(seg.header()).unwrap();
    assert_eq!(
        (p.msn(), p.mo(), p.last(), p.rsvd_ulp(), p.rsvd_ulp2()),
        (2, 0, true, 0x46, 0xabcd)
    );
    tokens.push(seg.token());
    assert!(h.c.poll_segment().is_none());
    for t in &tokens[..3] {
        assert!(
            h.c.poll_completion().is_none(),
            "no completion before the last segment"
        );
        h.c.segment_sent(*t);
    }
    h.c.segment_sent(tokens[3]);
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.op, c.status, c.byte_len),
        (1, CompletionOp::Send, CompletionStatus::Success, 300)
    );
    assert_eq!(c.buffer.unwrap().to_vec(), data);
    assert_eq!(h.c.poll_completion().unwrap().wr_id, 2);
}

#[test]
fn write_segmentation_to_advances() {
    let mut h = harness(|_| {});
    h.c.post_write(
        5,
        LocalBuffer::from_boxed(vec![1; 250].into()),
        Stag(0x4242),
        0x10_0000,
    )
    .unwrap();
    let mut to = 0x10_0000;
    let mut lasts = 0;
    while let Some(seg) = h.c.poll_segment() {
        let p = DdpPacket::new_checked(seg.header()).unwrap();
        assert_eq!(
            (p.rsvd_ulp(), p.stag(), p.tagged_offset()),
            (0x40, 0x4242, to)
        );
        to += seg.payload_len() as u64;
        lasts += u32::from(p.last());
        assert!(seg.payload_len() <= 114);
        h.c.segment_sent(seg.token());
    }
    assert_eq!((to, lasts), (0x10_0000 + 250, 1));
    assert_eq!(h.c.poll_completion().unwrap().op, CompletionOp::Write);
    assert_eq!(
        h.c.post_write(6, LocalBuffer::from_static(b"ab"), Stag(1), u64::MAX),
        Err(PostError::ToWrap)
    );
}

#[test]
fn send_with_invalidate() {
    let mut h = harness(|_| {});
    post_boxed_recv(&mut h.c, 1, 4);
    let mut u = untagged(4, true, h.stag.0, 0, 1, 0);
    u.extend_from_slice(b"ok");
    let _ = h.c.recv_ulpdu(&u);
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.status, c.invalidated, c.solicited),
        (CompletionStatus::Success, Some(h.stag), false)
    );
    assert!(!h.t.info(h.stag).unwrap().valid);
    // The STag no longer works for Writes.
    let mut w = tagged(0, true, h.stag.0, 0x1000);
    w.push(1);
    let _ = h.c.recv_ulpdu(&w);
    expect_error(
        &mut h.c,
        TerminateReason::DdpTagged(TaggedError::InvalidStag),
    );

    // Invalidating an unknown STag: completion error and Terminate 0/1/0x09.
    let mut h = harness(|_| {});
    post_boxed_recv(&mut h.c, 1, 4);
    let u = untagged(6, true, 0x12345, 0, 1, 0);
    let _ = h.c.recv_ulpdu(&u);
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.status, c.solicited),
        (CompletionStatus::RemoteInvalidRequest, true)
    );
    let t = expect_error(
        &mut h.c,
        TerminateReason::RdmapProtection(ProtectionError::CannotInvalidate),
    );
    ddp_included(&t, &u);
}

#[test]
fn received_terminate_is_decoded_both_layouts() {
    for (ctl, layout) in [([0x20u8, 0x02, 0, 0], "rfc"), ([0x02, 0x02, 0, 0], "siw")] {
        let mut h = harness(|_| {});
        post_boxed_recv(&mut h.c, 1, 4);
        h.c.post_send(2, LocalBuffer::from_static(b"x"), SendOptions::default())
            .unwrap();
        let mut u = untagged(7, true, 0, 2, 1, 0);
        u.extend_from_slice(&ctl);
        let _ = h.c.recv_ulpdu(&u);
        match h.c.poll_event() {
            Some(Event::PeerTerminated(t)) => {
                assert_eq!(
                    t.reason,
                    TerminateReason::Llp(LlpError::CrcError),
                    "{layout}"
                );
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(h.c.state(), State::Error);
        assert!(
            h.c.poll_segment().is_none(),
            "no Terminate in reply to a Terminate"
        );
        let ids: Vec<_> = std::iter::from_fn(|| h.c.poll_completion())
            .map(|c| (c.wr_id, c.status))
            .collect();
        assert_eq!(
            ids,
            [
                (2, CompletionStatus::Flushed),
                (1, CompletionStatus::Flushed)
            ]
        );
    }
}

#[test]
fn mpa_error_gives_llp_terminate_and_beats_header_errors() {
    let mut h = harness(|_| {});
    assert!(!h.c.has_received_fpdu());
    // A bad header, then the CRC of that FPDU fails: the LLP error wins.
    let _ = h.c.recv_header(19, &send(7, 0, true, b"")[..18]);
    h.c.mpa_error(eta_mpa::ErrorCode::CrcError);
    // The refused FPDU counts as received: a Responder may send its Terminate.
    assert!(h.c.has_received_fpdu());
    let t = expect_error(&mut h.c, TerminateReason::Llp(LlpError::CrcError));
    assert!(t.ddp_header.is_none() && t.rdma_header.is_none());
    // No more placement after the error.
    let mut w = tagged(0, true, h.stag.0, 0x1000);
    w.push(9);
    let _ = h.c.recv_ulpdu(&w);
    let mut out = [0u8; 1];
    h.t.copy_out(h.stag, 0x1000, &mut out).unwrap();
    assert_eq!(out, [0]);
    assert!(
        h.c.post_send(1, LocalBuffer::from_static(b""), SendOptions::default())
            .is_err()
    );
}

#[test]
fn flush_keeps_in_flight_buffers_until_sent() {
    let mut h = harness(|_| {});
    h.c.post_send(
        1,
        LocalBuffer::from_boxed(vec![3; 200].into()),
        SendOptions::default(),
    )
    .unwrap();
    h.c.post_send(
        2,
        LocalBuffer::from_boxed(vec![4; 10].into()),
        SendOptions::default(),
    )
    .unwrap();
    let first = h.c.poll_segment().unwrap();
    h.c.abort();
    assert!(
        h.c.poll_completion().is_none(),
        "message 1 still has a segment in flight"
    );
    assert_eq!(h.c.segment_payload(&first), &[3u8; 110][..]);
    let t = h.c.poll_segment().unwrap();
    assert_eq!(&t.header()[18..22], &[0x00, 0xFF, 0, 0]);
    h.c.segment_sent(first.token());
    let ids: Vec<_> = std::iter::from_fn(|| h.c.poll_completion())
        .map(|c| (c.wr_id, c.status))
        .collect();
    assert_eq!(
        ids,
        [
            (1, CompletionStatus::Flushed),
            (2, CompletionStatus::Flushed)
        ]
    );
    assert_eq!(
        h.c.segment_payload(&first),
        &[] as &[u8],
        "stale segments resolve to nothing"
    );
    h.c.segment_sent(t.token());
    assert_eq!(h.c.state(), State::Error);
    assert!(matches!(h.c.poll_event(), Some(Event::LocalError(_))));
    assert_eq!(h.c.poll_event(), Some(Event::TerminateSent));
}

#[test]
fn transport_closed_flushes_everything() {
    let mut h = harness(|_| {});
    h.c.post_send(1, LocalBuffer::from_static(b"abc"), SendOptions::default())
        .unwrap();
    post_boxed_recv(&mut h.c, 2, 4);
    let _seg = h.c.poll_segment().unwrap();
    h.c.transport_closed();
    let ids: Vec<_> = std::iter::from_fn(|| h.c.poll_completion())
        .map(|c| (c.wr_id, c.status))
        .collect();
    assert_eq!(
        ids,
        [
            (2, CompletionStatus::Flushed),
            (1, CompletionStatus::Flushed)
        ]
    );
    assert_eq!(h.c.state(), State::Error);
    assert!(h.c.poll_segment().is_none());
}

#[test]
fn pool_backpressure_and_order() {
    let mut h = harness(|c| {
        c.pool_bytes = 100;
        c.pool_messages = 3;
    });
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 0, true, &[1; 60])),
        RxVerdict::Accepted
    );
    assert_eq!(
        h.c.recv_ulpdu(&send(2, 0, true, &[2; 30])),
        RxVerdict::Accepted
    );
    // 90 + 20 > 100: blocked, nothing changed.
    let blocked = send(3, 0, true, &[3; 20]);
    assert_eq!(h.c.recv_ulpdu(&blocked), RxVerdict::Blocked);
    assert_eq!(h.c.recv_ulpdu(&blocked), RxVerdict::Blocked);
    let mut buf = [0u8; 50];
    let r = h.c.read(&mut buf).unwrap();
    assert_eq!((r.len, r.end_of_message), (50, false));
    assert_eq!(h.c.recv_ulpdu(&blocked), RxVerdict::Accepted);
    // A posted receive takes the oldest message first.
    post_boxed_recv(&mut h.c, 7, 64);
    let c = h.c.poll_completion().unwrap();
    assert_eq!((c.wr_id, c.byte_len), (7, 10));
    assert_eq!(&c.buffer.unwrap()[..10], &[1; 10]);
    let r = h.c.read(&mut buf).unwrap();
    assert_eq!((r.len, r.end_of_message), (30, true));
    assert_eq!(&buf[..30], &[2; 30]);
    // Message count bound.
    for msn in 4..6 {
        assert_eq!(
            h.c.recv_ulpdu(&send(msn, 0, true, b"")),
            RxVerdict::Accepted
        );
    }
    assert_eq!(h.c.recv_ulpdu(&send(6, 0, true, b"")), RxVerdict::Blocked);
    assert_eq!(h.c.state(), State::Operational);
}

#[test]
fn message_larger_than_the_pool_moves_to_a_posted_receive() {
    let mut h = harness(|c| {
        c.pool_bytes = 100;
        c.pool_messages = 4;
    });
    // The first segment of a 250-octet message lands in the empty pool.
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 0, false, &[5; 80])),
        RxVerdict::Accepted
    );
    // The next does not fit: blocked while no receive is posted.
    let second = send(1, 80, false, &[6; 80]);
    assert_eq!(h.c.recv_ulpdu(&second), RxVerdict::Blocked);
    // A receive posted now takes over the message: what the pool held is copied
    // into it and the rest is placed there directly.
    post_boxed_recv(&mut h.c, 9, 300);
    assert!(
        h.c.poll_completion().is_none(),
        "the message is not complete yet"
    );
    assert_eq!(h.c.recv_ulpdu(&second), RxVerdict::Accepted);
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 160, true, &[7; 90])),
        RxVerdict::Accepted
    );
    let c = h.c.poll_completion().unwrap();
    assert_eq!(
        (c.wr_id, c.status, c.byte_len),
        (9, CompletionStatus::Success, 250)
    );
    let b = c.buffer.unwrap();
    assert!(b[..80].iter().all(|x| *x == 5));
    assert!(b[80..160].iter().all(|x| *x == 6));
    assert!(b[160..250].iter().all(|x| *x == 7));
    assert!(!h.c.readable(), "nothing left in the pool");
    // A receive too small for what is already pooled leaves the message blocked.
    assert_eq!(
        h.c.recv_ulpdu(&send(2, 0, false, &[1; 80])),
        RxVerdict::Accepted
    );
    post_boxed_recv(&mut h.c, 10, 50);
    assert_eq!(
        h.c.recv_ulpdu(&send(2, 80, true, &[1; 80])),
        RxVerdict::Blocked
    );
    assert_eq!(h.c.state(), State::Operational);
}

#[test]
fn rtr_messages() {
    let mut h = harness(|c| c.send_rtr = Some(RtrKind::Write));
    h.c.post_send(1, LocalBuffer::from_static(b"x"), SendOptions::default())
        .unwrap();
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(
        seg.header(),
        &[0xc1, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    h.c.segment_sent(seg.token());
    assert!(h.c.poll_completion().is_none(), "the RTR has no completion");
    assert_eq!(h.c.poll_segment().unwrap().header()[1], 0x43);

    let mut h = harness(|c| c.send_rtr = Some(RtrKind::Read));
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(
        seg.header(),
        &read_req(
            1,
            ReadRequestRepr {
                src_stag: 1,
                ..Default::default()
            }
        )[..]
    );
    h.c.segment_sent(seg.token());
    assert_eq!(h.c.recv_ulpdu(&tagged(2, true, 0, 0)), RxVerdict::Accepted);
    assert_eq!(
        (h.c.state(), h.c.outstanding_reads()),
        (State::Operational, 0)
    );
    assert!(h.c.poll_completion().is_none());

    let mut h = harness(|c| c.send_rtr = Some(RtrKind::Send));
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(seg.header(), &send(1, 0, true, b"")[..]);

    // The responder swallows a Send RTR.
    let mut h = harness(|c| c.expect_send_rtr = true);
    post_boxed_recv(&mut h.c, 1, 4);
    let _ = h.c.recv_ulpdu(&send(1, 0, true, b""));
    assert!(h.c.poll_completion().is_none());
    let _ = h.c.recv_ulpdu(&send(2, 0, true, b"hi"));
    assert_eq!(h.c.poll_completion().unwrap().byte_len, 2);
}

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
    let pump = |from: &mut Connection, to: &mut Connection| {
        while let Some(seg) = from.poll_segment() {
            let mut u = seg.header().to_vec();
            u.extend_from_slice(from.segment_payload(&seg));
            from.segment_sent(seg.token());
            assert_eq!(to.recv_ulpdu(&u), RxVerdict::Accepted);
        }
    };
    let _ = &mut b;
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
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
    // A misaligned Swap is refused by b with a Terminate, which a receives.
    a.post_atomic(13, AtomicOp::Swap, target, 0x104, 7, 0)
        .unwrap();
    pump(&mut a, &mut b);
    pump(&mut b, &mut a);
    let c = a.poll_completion().unwrap();
    assert_eq!((c.wr_id, c.status), (13, CompletionStatus::Flushed));
    assert!(
        matches!(a.poll_event(), Some(Event::PeerTerminated(t)) if t.reason == TerminateReason::RdmapProtection(ProtectionError::BaseBounds))
    );
    assert_eq!(b.state(), State::Error);
}

#[test]
fn short_or_garbled_ulpdus_never_panic() {
    let mut h = harness(|_| {});
    assert_eq!(h.c.recv_ulpdu(&[]), RxVerdict::Accepted);
    expect_error(&mut h.c, TerminateReason::DdpLocalCatastrophic);
    let mut h = harness(|_| {});
    let _ = h.c.recv_ulpdu(&untagged(1, true, 0, 1, 1, 0)); // Read Request without its header
    expect_error(
        &mut h.c,
        TerminateReason::RdmapOperation(OperationError::Unspecified),
    );
    let mut h = harness(|_| {});
    let _ = h.c.recv_ulpdu(&[0x41, 0x47, 0, 0]); // shorter than a DDP header
    expect_error(&mut h.c, TerminateReason::DdpLocalCatastrophic);
    // A Terminate with a truncated control word is still a Terminate.
    let mut h = harness(|_| {});
    let mut u = untagged(7, true, 0, 2, 1, 0);
    u.push(0x20);
    let _ = h.c.recv_ulpdu(&u);
    assert!(matches!(h.c.poll_event(), Some(Event::PeerTerminated(_))));
    assert_eq!(h.c.state(), State::Error);
}

#[test]
fn bytes_of_a_terminate_for_crc_error() {
    let mut h = harness(|_| {});
    h.c.mpa_error(LlpError::CrcError);
    let seg = h.c.poll_segment().unwrap();
    assert_eq!(
        seg.header(),
        &[
            0x41, 0x47, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x20, 0x02, 0, 0
        ]
    );
}

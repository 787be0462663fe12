//! RDMA Reads: Read Request checks, responses in order, IRD and ORD limits, Read Response checks.

use super::*;

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
                let s = h.region(8, Access::REMOTE_READ, OTHER);
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
    let wo = h.region(8, Access::REMOTE_WRITE, ME);
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

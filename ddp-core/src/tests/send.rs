//! Sends: receive checks, placement into posted receives, segmentation, Invalidate.

use super::*;

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

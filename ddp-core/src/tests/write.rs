//! RDMA Writes: tagged checks, placement, segmentation.

use super::*;

#[test]
fn write_checks() {
    let t_other = |h: &H| h.region(16, all_remote(), OTHER);
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
    let ro = h.region(16, Access::REMOTE_READ, ME);
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

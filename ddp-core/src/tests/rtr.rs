//! RFC 6581 RTR messages, sent and swallowed.

use super::*;

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

//! The receive pool: backpressure, order, moving a message to a posted receive.

use super::*;

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
fn pool_bypass_hands_payload_to_the_drivers_reader_in_order() {
    let mut h = harness(|c| c.pool_bytes = 1000);
    // Message 1 is pooled; while its octets are there, message 2 may not bypass.
    assert_eq!(
        h.c.recv_ulpdu(&send(1, 0, true, &[1; 10])),
        RxVerdict::Accepted
    );
    let seg = send(2, 0, false, &[2; 40]);
    let hlen = crate::wire::ulpdu_header_len(&seg);
    assert_eq!(
        h.c.recv_header(seg.len() as u16, &seg[..hlen]),
        RxVerdict::Accepted
    );
    assert_eq!(h.c.pool_bypass(100), 0, "message 1 is still in the pool");
    h.c.recv_payload(&seg[hlen..]);
    h.c.recv_end();
    let mut buf = [0u8; 64];
    let r = h.c.read(&mut buf).unwrap();
    assert_eq!((r.len, r.end_of_message), (10, true));
    let r = h.c.read(&mut buf).unwrap();
    assert_eq!((r.len, r.end_of_message), (40, false));
    // The pool is empty: the last segment of message 2 goes to the driver's reader;
    // the pool then reports only the end of the message.
    let seg = send(2, 40, true, &[3; 30]);
    assert_eq!(
        h.c.recv_header(seg.len() as u16, &seg[..hlen]),
        RxVerdict::Accepted
    );
    assert_eq!(h.c.pool_bypass(100), 30);
    assert_eq!(h.c.pool_bypass(20), 20);
    h.c.recv_payload_taken(20);
    assert_eq!(h.c.pool_bypass(100), 10);
    h.c.recv_payload_taken(10);
    assert_eq!(h.c.pool_bypass(100), 0);
    assert!(!h.c.readable(), "nothing readable before the FPDU's end");
    h.c.recv_end();
    let r = h.c.read(&mut buf).unwrap();
    assert_eq!((r.len, r.end_of_message), (0, true));
    assert!(!h.c.readable());
    assert_eq!(h.c.state(), State::Operational);
}

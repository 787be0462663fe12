//! Flushing on failure and on the transport's loss.

use super::*;

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
    let ids = statuses(&mut h.c);
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
    let ids = statuses(&mut h.c);
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

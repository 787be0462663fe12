//! Terminates: received ones decoded, LLP errors, the octets sent.

use super::*;

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
        let ids = statuses(&mut h.c);
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

//! Checks every inbound header must pass: versions, opcodes, truncation.

use super::*;

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

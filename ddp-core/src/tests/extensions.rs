//! RFC 7306 Immediate Data and Atomics.

use super::*;
use crate::link::Link;

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
    let mut links = [Link::new(true), Link::new(true)];
    let mut pump = |from: &mut Connection, to: &mut Connection, link: usize| {
        links[link].pump(from, to, usize::MAX);
        assert!(links[link].is_idle());
    };
    pump(&mut a, &mut b, 0);
    pump(&mut b, &mut a, 1);
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
    pump(&mut a, &mut b, 0);
    pump(&mut b, &mut a, 1);
    let c = a.poll_completion().unwrap();
    assert_eq!((c.wr_id, c.status), (13, CompletionStatus::Flushed));
    assert!(
        matches!(a.poll_event(), Some(Event::PeerTerminated(t)) if t.reason == TerminateReason::RdmapProtection(ProtectionError::BaseBounds))
    );
    assert_eq!(b.state(), State::Error);
}

//! Posting: the checks of the one post path, and a request the engine refuses
//! when it takes it from the queue completes as flushed with the reason.

mod common;

use common::{next, pair};
use eta_engine::{
    CompletionOp, CompletionStatus, ConnState, Options, PostError, RemoteRegion, Stag,
};

#[test]
fn a_read_into_a_foreign_stag_is_flushed_with_the_reason() {
    let (a, b) = pair(Options::default());
    let remote = b
        .register(vec![0u8; 64], eta_engine::Access::REMOTE_READ)
        .unwrap()
        .remote(0);
    // A local STag that is not registered: the application thread cannot tell
    // (post_read_stag trusts its caller), the engine's core refuses it.
    a.post_read_stag(9, Stag(0x7777_7700), 0, 16, remote)
        .unwrap();
    let c = next(a.send_cq());
    assert_eq!((c.wr_id, c.op), (9, CompletionOp::Read));
    assert_eq!(c.status, CompletionStatus::Flushed);
    assert_eq!(c.refused, Some(PostError::LocalProtection));
    // The connection goes on.
    assert_eq!(a.state(), ConnState::Open);
}

#[test]
fn checks_before_queueing() {
    let (a, _b) = pair(Options::default());
    let remote = RemoteRegion {
        stag: Stag(1),
        to: u64::MAX,
    };
    assert_eq!(a.post_write(1, vec![0; 2], remote), Err(PostError::ToWrap));
    let mine = a
        .register(vec![0u8; 8], eta_engine::Access::REMOTE_WRITE)
        .unwrap();
    let ok = RemoteRegion {
        stag: Stag(1),
        to: 0,
    };
    // No local write access.
    assert_eq!(
        a.post_read(2, &mine, 0, 4, ok),
        Err(PostError::LocalProtection)
    );
    a.close();
    assert_eq!(
        a.post_send(3, vec![1], Default::default()),
        Err(PostError::NotOperational)
    );
}

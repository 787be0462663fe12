//! Unit tests of the registration table.

use super::*;

const C1: ConnId = ConnId(1);
const C2: ConnId = ConnId(2);

fn owned(table: &MemoryTable, access: Access, scope: Scope) -> Stag {
    table
        .register_owned(
            vec![0u8; 64].into_boxed_slice(),
            16..48,
            1000,
            access,
            scope,
        )
        .unwrap()
}

#[test]
fn checks_in_order() {
    let t = MemoryTable::new();
    let s = owned(&t, Access::REMOTE_WRITE, Scope::Connection(C1));
    assert!(s.0 >= 0x100);
    assert!(t.check(C1, s, 1000, 32, Access::REMOTE_WRITE).is_ok());
    assert_eq!(
        t.check(C1, Stag(s.0 ^ 1), 1000, 1, Access::REMOTE_WRITE)
            .unwrap_err(),
        AccessError::InvalidStag
    );
    assert_eq!(
        t.check(C2, s, 1000, 1, Access::REMOTE_WRITE).unwrap_err(),
        AccessError::NotAssociated
    );
    assert_eq!(
        t.check(C1, s, 1000, 1, Access::REMOTE_READ).unwrap_err(),
        AccessError::Rights
    );
    assert_eq!(
        t.check(C1, s, u64::MAX, 2, Access::REMOTE_WRITE)
            .unwrap_err(),
        AccessError::ToWrap
    );
    assert_eq!(
        t.check(C1, s, 999, 1, Access::REMOTE_WRITE).unwrap_err(),
        AccessError::Bounds
    );
    assert_eq!(
        t.check(C1, s, 1001, 32, Access::REMOTE_WRITE).unwrap_err(),
        AccessError::Bounds
    );
    assert!(t.check(C1, s, 1032, 0, Access::REMOTE_WRITE).is_ok());
    assert!(t.check(C1, Stag(0), 0, 0, Access::NONE).is_err());
    assert!(t.check(C1, Stag(1), 0, 0, Access::NONE).is_err());
}

#[test]
fn place_writes_only_inside() {
    let t = MemoryTable::new();
    let s = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    t.place(C2, s, 1030, &[7; 2], Access::REMOTE_WRITE).unwrap();
    assert!(t.place(C2, s, 1031, &[7; 2], Access::REMOTE_WRITE).is_err());
    let b = t.deregister(s).unwrap().unwrap();
    let mut expect = [0u8; 64];
    expect[46] = 7;
    expect[47] = 7;
    assert_eq!(&b[..], &expect[..]);
}

#[test]
fn stale_stag_cannot_reach_reused_slot() {
    let t = MemoryTable::new();
    let a = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    t.deregister(a).unwrap();
    let b = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    let kb = t.key_bits();
    assert_eq!(a.0 >> kb, b.0 >> kb, "the same slot");
    assert_ne!(a, b);
    assert_eq!(
        t.check(C1, a, 1000, 1, Access::REMOTE_WRITE).unwrap_err(),
        AccessError::InvalidStag
    );
    assert_eq!(t.deregister(a), Err(StagError::Invalid));
    assert!(t.check(C1, b, 1000, 1, Access::REMOTE_WRITE).is_ok());
}

#[test]
fn invalidation() {
    let t = MemoryTable::new();
    let s = owned(&t, Access::REMOTE_READ, Scope::Connection(C1));
    assert_eq!(t.invalidate_remote(C2, s), Err(AccessError::NotAssociated));
    t.invalidate_remote(C1, s).unwrap();
    assert!(!t.info(s).unwrap().valid);
    assert_eq!(t.invalidate_remote(C1, s), Err(AccessError::InvalidStag));
    assert_eq!(t.invalidate(s), Err(StagError::Invalid));
    assert_eq!(
        t.check(C1, s, 1000, 1, Access::REMOTE_READ).unwrap_err(),
        AccessError::InvalidStag
    );
    let s2 = owned(&t, Access::REMOTE_READ, Scope::Global);
    t.invalidate(s2).unwrap();
    assert!(t.deregister(s2).unwrap().is_some());
}

#[test]
fn registration_errors() {
    let t = MemoryTable::with_capacity(2);
    assert_eq!(
        t.register_owned(vec![0; 4].into(), 0..5, 0, Access::NONE, Scope::Global),
        Err(RegError::BadRange)
    );
    assert_eq!(
        t.register_owned(
            vec![0; 4].into(),
            0..4,
            u64::MAX - 2,
            Access::NONE,
            Scope::Global
        ),
        Err(RegError::ToWrap)
    );
    owned(&t, Access::NONE, Scope::Global);
    owned(&t, Access::NONE, Scope::Global);
    assert_eq!(
        t.register_owned(vec![0; 4].into(), 0..4, 0, Access::NONE, Scope::Global),
        Err(RegError::TableFull)
    );
    let mut out = [0u8; 2];
    assert_eq!(
        t.copy_out(Stag(0x5000), 0, &mut out),
        Err(StagError::Invalid)
    );
}

#[test]
fn the_key_takes_what_the_index_leaves() {
    assert_eq!(MemoryTable::new().key_bits(), 16);
    assert_eq!(MemoryTable::with_capacity(MAX_INDEX).key_bits(), 8);
    assert_eq!(MemoryTable::with_capacity(255).key_bits(), 24);
    let t = MemoryTable::with_capacity(255);
    let s = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    assert!(s.0 >= 1 << 24, "index 0 is never used: {:#x}", s.0);
}

#[test]
fn keys_come_from_the_source_and_change_on_reuse() {
    // A source that repeats itself: the slot's old key is drawn again and changed.
    let t = MemoryTable::with_keys(65535, Box::new(|| 0x1234));
    let a = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    assert_eq!(a.0 & 0xFFFF, 0x1234);
    t.deregister(a).unwrap();
    let b = owned(&t, Access::REMOTE_WRITE, Scope::Global);
    assert_eq!(b.0 & 0xFFFF, 0x1235, "the old key 0x1234 is not reused");
    assert_eq!(a.0 >> 16, b.0 >> 16);
    assert_eq!(
        t.check(C1, a, 1000, 1, Access::REMOTE_WRITE).unwrap_err(),
        AccessError::InvalidStag
    );
}

#[test]
fn no_fixed_step_between_keys() {
    // With the old scheme (key += 0x35 per new slot) one STag gave away every
    // other; a key source must not. 4096 registrations: keys all over the 16-bit
    // space and no constant difference between neighbours.
    let t = MemoryTable::new();
    let stags: Vec<Stag> = (0..4096)
        .map(|_| owned(&t, Access::REMOTE_WRITE, Scope::Global))
        .collect();
    let keys: Vec<u32> = stags.iter().map(|s| s.0 & 0xFFFF).collect();
    let distinct: std::collections::HashSet<u32> = keys.iter().copied().collect();
    assert!(
        distinct.len() > 3800,
        "only {} distinct keys",
        distinct.len()
    );
    let steps: std::collections::HashSet<u32> = keys
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]) & 0xFFFF)
        .collect();
    assert!(steps.len() > 3800, "only {} distinct steps", steps.len());
}

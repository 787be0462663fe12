//! An adversarial peer: mutated and random segments with valid CRCs, against a
//! registered region surrounded by guard memory in a raw caller buffer.

mod common;

use common::Rng;
use eta_ddp_core::link::Link;
use eta_ddp_core::wire::{DdpPacket, TerminatePacket, TerminateRepr};
use eta_ddp_core::{
    Access, Config, ConnId, Connection, Event, LocalBuffer, MemoryTable, ProtectionError, Scope,
    State, TaggedError, TerminateReason,
};

const GUARD: u8 = 0xA5;
const PAGE: usize = 16 * 1024;
const TO: u64 = 0x4000_0000;

struct Target {
    mem: Vec<u8>,
    table: MemoryTable,
    stag: u32,
    other: u32,
}

impl Target {
    fn new() -> Self {
        // [guard | region | guard]: only the middle page is registered.
        let mut mem = vec![GUARD; 3 * PAGE];
        mem[PAGE..2 * PAGE].fill(0);
        let table = MemoryTable::new();
        // SAFETY: `mem` is neither moved nor reallocated nor referenced while
        // registered: the test only looks at it after deregistering (end of `check`),
        // and the table's lifetime ends before `mem` is dropped.
        let stag_mem = unsafe { LocalBuffer::from_raw_mut(mem.as_mut_ptr().add(PAGE), PAGE) };
        let stag = table
            .register_buffer(
                stag_mem,
                TO,
                Access::REMOTE_WRITE | Access::REMOTE_READ,
                Scope::Connection(ConnId(1)),
            )
            .unwrap();
        // Registered for another connection, inside the same buffer's guard.
        // SAFETY: as above.
        let other_mem = unsafe { LocalBuffer::from_raw_mut(mem.as_mut_ptr().add(2 * PAGE), 64) };
        let other = table
            .register_buffer(
                other_mem,
                0,
                Access::REMOTE_WRITE | Access::REMOTE_READ,
                Scope::Connection(ConnId(2)),
            )
            .unwrap();
        Target {
            mem,
            table,
            stag: stag.0,
            other: other.0,
        }
    }

    fn conn(&self) -> Connection {
        let mut c = Config::new(ConnId(1), 512);
        c.pool_bytes = 4096;
        c.pool_messages = 8;
        let mut conn = Connection::new(c, self.table.clone()).unwrap();
        for i in 0..2 {
            conn.post_recv(i, LocalBuffer::from_boxed(vec![0; 100].into()))
                .unwrap();
        }
        conn
    }

    fn guards_intact(&mut self) -> bool {
        self.table
            .deregister(eta_ddp_core::Stag(self.stag))
            .unwrap();
        self.table
            .deregister(eta_ddp_core::Stag(self.other))
            .unwrap();
        self.mem[..PAGE].iter().all(|&b| b == GUARD)
            && self.mem[2 * PAGE..].iter().all(|&b| b == GUARD)
    }
}

fn tagged(op: u8, last: bool, stag: u32, to: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![if last { 0xC1 } else { 0x81 }, 0x40 | op];
    v.extend_from_slice(&stag.to_be_bytes());
    v.extend_from_slice(&to.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn read_request(stag: u32, to: u64, size: u32) -> Vec<u8> {
    let mut v = vec![0x41, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    v.extend_from_slice(&[0, 0, 0, 9]);
    v.extend_from_slice(&0u64.to_be_bytes());
    v.extend_from_slice(&size.to_be_bytes());
    v.extend_from_slice(&stag.to_be_bytes());
    v.extend_from_slice(&to.to_be_bytes());
    v
}

/// Frames `ulpdus` with valid CRCs and delivers them in random chunks.
fn attack(conn: &mut Connection, ulpdus: &[Vec<u8>], rng: &mut Rng) {
    let mut link = Link::new(true);
    for u in ulpdus {
        link.push_ulpdu(u).unwrap();
    }
    while link.deliver(conn, || rng.chunk(700)) {}
    // Let the connection answer (Read Responses, Terminate).
    while let Some(seg) = conn.poll_segment() {
        let _ = conn.segment_payload(&seg);
        conn.segment_sent(seg.token());
    }
}

fn local_error(conn: &mut Connection) -> Option<TerminateReason> {
    std::iter::from_fn(|| conn.poll_event()).find_map(|e| match e {
        Event::LocalError(r) => Some(r),
        _ => None,
    })
}

#[test]
fn targeted_violations_give_the_right_terminate() {
    let mut rng = Rng(99);
    let end = TO + PAGE as u64;
    type Case = (fn(&Target) -> Vec<u8>, TerminateReason);
    let cases: Vec<Case> = vec![
        (
            |t| tagged(0, true, t.stag, TO + PAGE as u64 - 3, &[1; 4]),
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        ),
        (
            |t| tagged(0, true, t.stag, TO - 1, &[1; 4]),
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        ),
        (
            |t| tagged(0, true, t.stag, TO - 100_000, &[1; 200]),
            TerminateReason::DdpTagged(TaggedError::BaseBounds),
        ),
        (
            |t| tagged(0, true, t.stag, u64::MAX - 2, &[1; 4]),
            TerminateReason::DdpTagged(TaggedError::ToWrap),
        ),
        (
            |t| tagged(0, true, t.other, 0, &[1; 4]),
            TerminateReason::DdpTagged(TaggedError::StagNotAssociated),
        ),
        (
            |t| tagged(0, true, t.stag.wrapping_add(1), TO, &[1; 4]),
            TerminateReason::DdpTagged(TaggedError::InvalidStag),
        ),
        (
            |t| read_request(t.stag, TO + 10, PAGE as u32),
            TerminateReason::RdmapProtection(ProtectionError::BaseBounds),
        ),
        (
            |t| read_request(t.stag, TO - 8, 16),
            TerminateReason::RdmapProtection(ProtectionError::BaseBounds),
        ),
        (
            |t| read_request(t.other, 0, 16),
            TerminateReason::RdmapProtection(ProtectionError::StagNotAssociated),
        ),
        (
            |t| tagged(2, true, t.stag, TO, &[1; 4]),
            TerminateReason::RdmapOperation(eta_ddp_core::OperationError::UnexpectedOpcode),
        ),
    ];
    let _ = end;
    for (mk, reason) in cases {
        let mut t = Target::new();
        let mut conn = t.conn();
        let u = mk(&t);
        // A valid Write first, then the violation, then another Write that must not land.
        let ok = tagged(0, true, t.stag, TO, b"valid");
        let after = tagged(0, true, t.stag, TO + 100, b"after");
        let mut term = None;
        {
            let mut link = Link::new(true);
            for x in [&ok, &u, &after] {
                link.push_ulpdu(x).unwrap();
            }
            while link.deliver(&mut conn, || rng.chunk(5)) {}
            while let Some(seg) = conn.poll_segment() {
                let h = seg.header().to_vec();
                if h[1] == 0x47 {
                    let p = DdpPacket::new_checked(&h[..]).unwrap();
                    assert_eq!(p.qn(), 2);
                    term = Some(
                        TerminateRepr::parse(&TerminatePacket::new_checked(&h[18..]).unwrap())
                            .unwrap(),
                    );
                }
                conn.segment_sent(seg.token());
            }
        }
        assert_eq!(local_error(&mut conn), Some(reason));
        let term = term.expect("a Terminate was sent");
        assert_eq!(term.reason(), reason);
        assert_eq!(
            term.ddp_header.unwrap().as_slice(),
            &u[..term.ddp_header.unwrap().as_slice().len()]
        );
        assert_eq!(conn.state(), State::Error);
        drop(conn);
        assert_eq!(&t.mem[PAGE..PAGE + 5], b"valid");
        assert_eq!(
            &t.mem[PAGE + 100..PAGE + 105],
            &[0; 5],
            "no placement after the error"
        );
        assert!(t.guards_intact());
    }
}

#[test]
fn mutated_and_random_segments_never_escape_the_region() {
    let mut rng = Rng(0x5EED);
    let mut terminated = 0;
    for round in 0..400 {
        let mut t = Target::new();
        let mut conn = t.conn();
        let mut ulpdus = Vec::new();
        for _ in 0..1 + rng.below(6) {
            let mut u = match rng.below(5) {
                0 => {
                    let n = rng.below(600) as usize;
                    let off = rng.below(PAGE as u64 + 64);
                    tagged(
                        0,
                        rng.below(2) == 0,
                        t.stag,
                        TO + off - 32.min(off),
                        &vec![0x11; n],
                    )
                }
                1 => read_request(
                    t.stag,
                    TO + rng.below(PAGE as u64),
                    rng.below(PAGE as u64) as u32,
                ),
                2 => {
                    let mut v = vec![0x41, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
                    v.extend(std::iter::repeat_n(0x22, rng.below(300) as usize));
                    v
                }
                3 => tagged(2, true, t.stag, TO, &[0x33; 8]),
                _ => {
                    let mut v = vec![0u8; rng.below(100) as usize];
                    rng.fill(&mut v);
                    v
                }
            };
            // Mutate a few octets, biased to the header.
            for _ in 0..rng.below(4) {
                if u.is_empty() {
                    break;
                }
                let i = if rng.below(3) == 0 {
                    rng.below(u.len() as u64)
                } else {
                    rng.below(u.len().min(46) as u64)
                } as usize;
                u[i] = rng.next() as u8;
            }
            ulpdus.push(u);
        }
        attack(&mut conn, &ulpdus, &mut rng);
        if conn.state() != State::Operational {
            terminated += 1;
        }
        drop(conn);
        assert!(t.guards_intact(), "round {round}: guard memory changed");
    }
    assert!(
        terminated > 100,
        "mutations should usually be caught ({terminated})"
    );
}

//! Connection-level tests of the RFC rules, with ULPDUs built by hand; one file per
//! concern, the shared harness and ULPDU builders here.

mod extensions;
mod flush;
mod header;
mod pool;
mod read;
mod rfc7306;
mod rtr;
mod send;
mod terminate;
mod write;

use crate::wire::terminate::{FLAG_D, FLAG_M, FLAG_R};
use crate::wire::{
    DdpPacket, DdpRepr, ReadRequestRepr, TaggedRepr, TerminatePacket, TerminateRepr, UntaggedRepr,
};
use crate::*;

const ME: ConnId = ConnId(1);
const OTHER: ConnId = ConnId(2);

fn all_remote() -> Access {
    Access::REMOTE_WRITE | Access::REMOTE_READ | Access::LOCAL_WRITE
}

struct H {
    c: Connection,
    t: MemoryTable,
    stag: Stag,
}

impl H {
    /// Registers `len` zeroed octets at TO 0 with `access` for connection `conn`.
    fn region(&self, len: usize, access: Access, conn: ConnId) -> Stag {
        self.t
            .register_owned(
                vec![0; len].into(),
                0..len,
                0,
                access,
                Scope::Connection(conn),
            )
            .unwrap()
    }
}

fn harness(f: impl FnOnce(&mut Config)) -> H {
    let t = MemoryTable::new();
    let stag = t
        .register_owned(
            vec![0u8; 256].into(),
            64..192,
            0x1000,
            all_remote(),
            Scope::Connection(ME),
        )
        .unwrap();
    let mut cfg = Config::new(ME, 128);
    f(&mut cfg);
    let c = Connection::new(cfg, t.clone()).unwrap();
    H { c, t, stag }
}

fn untagged(op: u8, last: bool, inv: u32, qn: u32, msn: u32, mo: u32) -> Vec<u8> {
    let mut b = vec![0u8; 18];
    DdpRepr::Untagged(UntaggedRepr {
        last,
        version: 1,
        rsvd_ulp: 0x40 | op,
        rsvd_ulp2: inv,
        qn,
        msn,
        mo,
    })
    .emit(&mut DdpPacket::new_unchecked(&mut b[..]));
    b
}

fn tagged(op: u8, last: bool, stag: u32, to: u64) -> Vec<u8> {
    let mut b = vec![0u8; 14];
    DdpRepr::Tagged(TaggedRepr {
        last,
        version: 1,
        rsvd_ulp: 0x40 | op,
        stag,
        tagged_offset: to,
    })
    .emit(&mut DdpPacket::new_unchecked(&mut b[..]));
    b
}

fn send(msn: u32, mo: u32, last: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = untagged(3, last, 0, 0, msn, mo);
    b.extend_from_slice(payload);
    b
}

fn read_req(msn: u32, r: ReadRequestRepr) -> Vec<u8> {
    let mut b = untagged(1, true, 0, 1, msn, 0);
    b.extend_from_slice(&r.to_bytes());
    b
}

/// Polls the Terminate the connection must have queued and decodes it.
fn terminate_out(c: &mut Connection) -> TerminateRepr {
    let seg = c.poll_segment().expect("a Terminate segment");
    let h = seg.header();
    assert_eq!(&h[..2], &[0x41, 0x47]);
    let p = DdpPacket::new_checked(h).unwrap();
    assert_eq!((p.qn(), p.msn(), p.mo()), (2, 1, 0));
    let t = TerminateRepr::parse(&TerminatePacket::new_checked(&h[18..]).unwrap()).unwrap();
    c.segment_sent(seg.token());
    assert_eq!(c.state(), State::Error);
    assert!(c.poll_segment().is_none(), "nothing after the Terminate");
    t
}

fn expect_error(c: &mut Connection, reason: TerminateReason) -> TerminateRepr {
    let mut saw = false;
    while let Some(e) = c.poll_event() {
        if e == Event::LocalError(reason) {
            saw = true;
        }
    }
    assert!(saw, "expected local error {reason}");
    let t = terminate_out(c);
    assert_eq!(t.reason(), reason);
    t
}

fn ddp_included(t: &TerminateRepr, hdr: &[u8]) {
    let inc = t.ddp_header.expect("DDP header included");
    assert_eq!(inc.as_slice(), hdr);
    assert!(t.segment_len_valid);
}

fn post_boxed_recv(c: &mut Connection, id: u64, len: usize) {
    c.post_recv(id, LocalBuffer::from_boxed(vec![0u8; len].into()))
        .unwrap();
}

/// Every completion waiting, as (work request id, status).
fn statuses(c: &mut Connection) -> Vec<(u64, CompletionStatus)> {
    std::iter::from_fn(|| c.poll_completion())
        .map(|c| (c.wr_id, c.status))
        .collect()
}

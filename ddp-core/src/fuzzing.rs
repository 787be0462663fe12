//! An entry point for external fuzzers (cargo-fuzz, AFL, honggfuzz) over the receive
//! path, also used by the in-tree smoke test.
//!
//! ```
//! let outcome = eta_ddp_core::fuzzing::fuzz_receive(&[0x00, 0x00, 0x05, 0x00, 0x41, 0x43, 0, 0, 0]);
//! assert_eq!(outcome.ulpdus, 1);
//! ```

use crate::connection::{Config, Connection};
use crate::placement::LocalBuffer;
use crate::stag::{Access, ConnId, MAX_INDEX, MemoryTable, Scope, Stag};

/// The STag of the fuzz target's writable region.
pub const REGION_STAG: Stag = Stag(0x100);

/// Tagged offset at which the fuzz target's writable region starts.
pub const REGION_TO: u64 = 0x1000;
/// Length of the registered part of the fuzz target's region.
pub const REGION_LEN: usize = 4096;
/// Guard octets on each side of the registered part.
pub const GUARD_LEN: usize = 4096;
const GUARD: u8 = 0xA5;

/// Runs `data` through the receive path of a fresh connection and checks the safety
/// invariants. Panics only if an invariant is broken (a write outside the registered
/// region, unbounded memory), never because of the input itself.
///
/// Layout of `data`: octet 0 selects options (bit 0: extensions, bit 1: no receive
/// pool, bits 2..: how many receives to post); then a sequence of records
/// `[len_hi, len_lo, split, ULPDU...]`, each fed as a header, then the payload in
/// pieces of `split + 1` octets, then the end. Data for the Read Responses that come
/// out is polled and discarded.
pub fn fuzz_receive(data: &[u8]) -> FuzzOutcome {
    let mut out = FuzzOutcome::default();
    let Some((&opts, mut rest)) = data.split_first() else {
        return out;
    };
    // Keys are always 0 and indices take 24 bits, so the region's STag is
    // [`REGION_STAG`], as seeds and corpora expect; a random key would hide the
    // region from the fuzzer.
    let table = MemoryTable::with_keys(MAX_INDEX, Box::new(|| 0));
    let conn_id = ConnId(7);
    let mut region = vec![GUARD; GUARD_LEN * 2 + REGION_LEN];
    region[GUARD_LEN..GUARD_LEN + REGION_LEN].fill(0);
    let write_stag = table
        .register_owned(
            region.into_boxed_slice(),
            GUARD_LEN..GUARD_LEN + REGION_LEN,
            REGION_TO,
            Access::REMOTE_WRITE
                | Access::REMOTE_READ
                | Access::LOCAL_WRITE
                | Access::REMOTE_ATOMIC,
            Scope::Connection(conn_id),
        )
        .ok();
    // A region of another connection: must never be touched.
    let foreign = table
        .register_owned(
            vec![GUARD; 64].into_boxed_slice(),
            0..64,
            0x10,
            Access::REMOTE_WRITE | Access::REMOTE_READ,
            Scope::Connection(ConnId(8)),
        )
        .ok();
    let mut cfg = Config::new(conn_id, 512);
    cfg.extensions = opts & 1 != 0;
    if opts & 2 != 0 {
        cfg.pool_bytes = 0;
    }
    cfg.pool_bytes = cfg.pool_bytes.min(8192);
    cfg.pool_messages = 16;
    let Ok(mut conn) = Connection::new(cfg, table.clone()) else {
        return out;
    };
    for i in 0..(opts >> 2) % 8 {
        let _ = conn.post_recv(u64::from(i), LocalBuffer::from_boxed(vec![0u8; 64].into()));
    }
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let split = usize::from(rest[2]) + 1;
        rest = &rest[3..];
        let n = len.min(rest.len());
        let (ulpdu, tail) = rest.split_at(n);
        rest = tail;
        out.ulpdus += 1;
        let hlen = crate::wire::ulpdu_header_len(ulpdu).min(ulpdu.len());
        if conn.recv_header(n as u16, &ulpdu[..hlen]) == crate::RxVerdict::Blocked {
            let mut buf = [0u8; 256];
            while conn.read(&mut buf).is_some() {}
            continue;
        }
        for piece in ulpdu[hlen..].chunks(split) {
            conn.recv_payload(piece);
        }
        conn.recv_end();
        while let Some(seg) = conn.poll_segment() {
            out.segments_out += 1;
            assert!(seg.ulpdu_len() <= 512);
            let _ = conn.segment_payload(&seg).len();
            conn.segment_sent(seg.token());
        }
        while conn.poll_completion().is_some() {
            out.completions += 1;
        }
        while conn.poll_event().is_some() {}
        assert!(conn.pooled_messages() <= 16);
    }
    out.terminated = conn.state() != crate::State::Operational;
    drop(conn);
    debug_assert!(write_stag.is_none_or(|s| s == REGION_STAG));
    check_guards(&table, write_stag, foreign);
    out
}

/// What [`fuzz_receive`] saw (for coverage sanity checks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuzzOutcome {
    /// ULPDUs fed to the connection.
    pub ulpdus: usize,
    /// Segments the connection sent back (Read Responses, Terminates, …).
    pub segments_out: usize,
    /// Completions produced.
    pub completions: usize,
    /// The connection ended in an error state.
    pub terminated: bool,
}

fn check_guards(table: &MemoryTable, write_stag: Option<Stag>, foreign: Option<Stag>) {
    if let Some(s) = write_stag
        && let Ok(Some(b)) = table.deregister(s)
    {
        assert!(
            b[..GUARD_LEN].iter().all(|&x| x == GUARD),
            "write below region"
        );
        assert!(
            b[GUARD_LEN + REGION_LEN..].iter().all(|&x| x == GUARD),
            "write above region"
        );
    }
    if let Some(s) = foreign
        && let Ok(Some(b)) = table.deregister(s)
    {
        assert!(
            b.iter().all(|&x| x == GUARD),
            "write into another connection's region"
        );
    }
}

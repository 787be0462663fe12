//! Two connections wired back to back through the MPA framer, random
//! resegmentation and the MPA deframer, running random operation sequences and
//! checking every placed byte and every completion in order.

mod common;

use common::Rng;
use eta_ddp_core::link::Link;
use eta_ddp_core::{
    Access, CompletionOp, CompletionStatus, Config, ConnId, Connection, LocalBuffer, MemoryTable,
    Scope, SendOptions, Stag, State,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Send of `len` octets; `solicited`.
    Send { len: usize, solicited: bool },
    /// Write `len` octets at `off` of the peer's region.
    Write { len: usize, off: usize },
    /// Read `len` octets from `src` of the peer's region into `dst` of ours.
    Read { len: usize, src: usize, dst: usize },
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        30 => 0usize..64,
        50 => 0usize..5000,
        12 => 5000usize..300_000,
        1 => Just(1usize << 24),
        1 => (1usize << 22)..(1usize << 24),
    ]
}

fn op() -> impl Strategy<Value = (bool, Op)> {
    let op = prop_oneof![
        (size(), any::<bool>()).prop_map(|(len, solicited)| Op::Send { len, solicited }),
        (size(), any::<u32>()).prop_map(|(len, o)| Op::Write {
            len,
            off: o as usize
        }),
        (size(), any::<u32>(), any::<u32>()).prop_map(|(len, s, d)| Op::Read {
            len,
            src: s as usize,
            dst: d as usize
        }),
    ];
    (any::<bool>(), op)
}

struct Side {
    conn: Connection,
    region: Stag,
    model: Vec<u8>,
    next_wr: u64,
    /// Expected send-queue completions in order: (wr_id, op, len).
    sq_expect: Vec<(u64, CompletionOp, u32)>,
    /// Expected receives in order: (wr_id, payload, solicited).
    rq_expect: Vec<(u64, Vec<u8>, bool)>,
    /// Reads to verify after completion: (wr_id, dst, data).
    reads: Vec<(u64, usize, Vec<u8>)>,
    sq_got: Vec<(u64, CompletionOp, u32)>,
}

const BASE_TO: u64 = 0x7000_0000_0000;

fn side(table: &MemoryTable, id: u64, region_len: usize, mulpdu: u16) -> Side {
    let region = table
        .register_owned(
            vec![0u8; region_len].into(),
            0..region_len,
            BASE_TO,
            Access::REMOTE_WRITE | Access::REMOTE_READ | Access::LOCAL_WRITE,
            Scope::Connection(ConnId(id)),
        )
        .unwrap();
    let mut cfg = Config::new(ConnId(id), mulpdu);
    cfg.ord = 4;
    cfg.ird = 4;
    cfg.max_send_wr = 4096;
    Side {
        conn: Connection::new(cfg, table.clone()).unwrap(),
        region,
        model: vec![0u8; region_len],
        next_wr: 1,
        sq_expect: Vec::new(),
        rq_expect: Vec::new(),
        reads: Vec::new(),
        sq_got: Vec::new(),
    }
}

fn run(seed: u64, crc: bool, emss: u32, ops: Vec<(bool, Op)>, max_chunk: usize) {
    let mut rng = Rng(seed | 1);
    let table = MemoryTable::new();
    let mulpdu = eta_mpa::mulpdu(emss, false);
    let region_len = ops
        .iter()
        .map(|(_, o)| match o {
            Op::Send { .. } => 0,
            Op::Write { len, .. } | Op::Read { len, .. } => *len,
        })
        .max()
        .unwrap_or(0)
        .max(1)
        * 2;
    let mut s = [
        side(&table, 1, region_len, mulpdu),
        side(&table, 2, region_len, mulpdu),
    ];
    let mut pipes = [Link::new(crc), Link::new(crc)];
    for (dir, op) in ops {
        let (me, peer) = if dir { (0, 1) } else { (1, 0) };
        let wr = s[me].next_wr;
        s[me].next_wr += 1;
        match op {
            Op::Send { len, solicited } => {
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                // The receiver posts a buffer a little larger than the message.
                let rwr = s[peer].next_wr;
                s[peer].next_wr += 1;
                s[peer]
                    .conn
                    .post_recv(rwr, LocalBuffer::from_boxed(vec![0u8; len + 3].into()))
                    .unwrap();
                s[peer].rq_expect.push((rwr, data.clone(), solicited));
                s[me]
                    .conn
                    .post_send(
                        wr,
                        LocalBuffer::from_boxed(data.into()),
                        SendOptions {
                            solicited,
                            invalidate: None,
                        },
                    )
                    .unwrap();
                s[me].sq_expect.push((wr, CompletionOp::Send, len as u32));
            }
            Op::Write { len, off } => {
                let off = off % (region_len - len + 1);
                let mut data = vec![0u8; len];
                rng.fill(&mut data);
                s[peer].model[off..off + len].copy_from_slice(&data);
                let stag = s[peer].region;
                s[me]
                    .conn
                    .post_write(
                        wr,
                        LocalBuffer::from_boxed(data.into()),
                        stag,
                        BASE_TO + off as u64,
                    )
                    .unwrap();
                s[me].sq_expect.push((wr, CompletionOp::Write, len as u32));
            }
            Op::Read { len, src, dst } => {
                let src = src % (region_len - len + 1);
                let dst = dst % (region_len - len + 1);
                // Expected data as of posting (see `sanitize`).
                let data = s[peer].model[src..src + len].to_vec();
                let (stag, peer_stag) = (s[me].region, s[peer].region);
                s[me]
                    .conn
                    .post_read(
                        wr,
                        stag,
                        BASE_TO + dst as u64,
                        len as u32,
                        peer_stag,
                        BASE_TO + src as u64,
                    )
                    .unwrap();
                s[me].sq_expect.push((wr, CompletionOp::Read, len as u32));
                s[me].reads.push((wr, dst, data));
            }
        }
        // Run the network a little after each post, so that operations overlap.
        let steps = 1 + rng_steps(&mut rng);
        pump(&mut s, &mut pipes, &mut rng, max_chunk, steps);
    }
    pump(&mut s, &mut pipes, &mut rng, max_chunk, usize::MAX);
    for (i, side) in s.iter_mut().enumerate() {
        assert_eq!(
            side.conn.state(),
            State::Operational,
            "side {i}: {:?}",
            side.conn.poll_event()
        );
        assert_eq!(side.conn.poll_event(), None);
        assert_eq!(
            side.sq_got, side.sq_expect,
            "side {i} send-queue completions"
        );
        assert!(
            side.rq_expect.is_empty(),
            "side {i}: receives left {}",
            side.rq_expect.len()
        );
        assert!(side.reads.is_empty());
        let mut got = vec![0u8; side.model.len()];
        table.copy_out(side.region, BASE_TO, &mut got).unwrap();
        assert!(got == side.model, "side {i}: region content differs");
    }
}

fn rng_steps(rng: &mut Rng) -> usize {
    rng.below(3) as usize
}

fn pump(s: &mut [Side; 2], pipes: &mut [Link; 2], rng: &mut Rng, max_chunk: usize, rounds: usize) {
    let mut r = 0;
    while r < rounds {
        r += 1;
        let mut progress = false;
        for (from, to) in [(0, 1), (1, 0)] {
            progress |= pipes[from].transmit(&mut s[from].conn) > 0;
            let (a, b) = s.split_at_mut(1);
            let dst = if to == 0 { &mut a[0] } else { &mut b[0] };
            progress |= pipes[from].deliver(&mut dst.conn, || rng.chunk(max_chunk));
        }
        for (i, side) in s.iter_mut().enumerate() {
            while let Some(c) = side.conn.poll_completion() {
                progress = true;
                assert_eq!(c.status, CompletionStatus::Success, "side {i}: {c:?}");
                match c.op {
                    CompletionOp::Recv => {
                        let (wr, data, sol) = side.rq_expect.remove(0);
                        assert_eq!(
                            (c.wr_id, c.byte_len as usize, c.solicited),
                            (wr, data.len(), sol)
                        );
                        assert!(
                            c.buffer.as_deref().unwrap()[..data.len()] == data[..],
                            "receive content"
                        );
                    }
                    op => {
                        if op == CompletionOp::Read {
                            let (wr, dst, data) = side.reads.remove(0);
                            assert_eq!(wr, c.wr_id);
                            side.model[dst..dst + data.len()].copy_from_slice(&data);
                        }
                        side.sq_got.push((c.wr_id, op, c.byte_len));
                    }
                }
            }
        }
        if !progress {
            break;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, .. ProptestConfig::default() })]

    #[test]
    fn random_operations_back_to_back(
        seed in any::<u64>(),
        crc in any::<bool>(),
        emss in prop_oneof![Just(128u32), 128u32..2000, Just(1448), Just(9000), Just(65483)],
        max_chunk in prop_oneof![Just(1usize), 1usize..64, 64usize..100_000],
        ops in proptest::collection::vec(op(), 1..12),
    ) {
        let ops = sanitize(ops);
        run(seed, crc, emss, ops, max_chunk);
    }
}

/// Keeps the expected result of every operation unique: Read Responses are sent
/// from memory when they are generated (zero-copy) and responses overtake queued
/// Writes, so the sequence keeps Reads in one direction only (that of the first Read),
/// drops the other direction's Writes, and drops Writes of the reading side that come
/// after its first Read.
fn sanitize(ops: Vec<(bool, Op)>) -> Vec<(bool, Op)> {
    let Some(d) = ops
        .iter()
        .find(|(_, o)| matches!(o, Op::Read { .. }))
        .map(|(d, _)| *d)
    else {
        return ops;
    };
    let mut seen_read = false;
    ops.into_iter()
        .filter(|(dir, op)| match op {
            Op::Read { .. } => {
                seen_read = true;
                *dir == d
            }
            Op::Write { .. } => *dir == d && !seen_read,
            Op::Send { .. } => true,
        })
        .collect()
}

#[test]
fn fixed_mix_crc_on_tiny_chunks() {
    run(
        42,
        true,
        128,
        vec![
            (
                true,
                Op::Send {
                    len: 0,
                    solicited: false,
                },
            ),
            (true, Op::Write { len: 1000, off: 3 }),
            (
                false,
                Op::Send {
                    len: 777,
                    solicited: true,
                },
            ),
            (
                true,
                Op::Read {
                    len: 900,
                    src: 10,
                    dst: 5,
                },
            ),
            (
                true,
                Op::Read {
                    len: 0,
                    src: 0,
                    dst: 0,
                },
            ),
            (
                false,
                Op::Send {
                    len: 1,
                    solicited: false,
                },
            ),
        ],
        3,
    );
}

#[test]
fn large_messages_crc_off() {
    run(
        7,
        false,
        9000,
        vec![
            (
                true,
                Op::Send {
                    len: 1 << 24,
                    solicited: false,
                },
            ),
            (
                false,
                Op::Write {
                    len: 3 << 20,
                    off: 1,
                },
            ),
            (
                true,
                Op::Read {
                    len: 1 << 20,
                    src: 17,
                    dst: 0,
                },
            ),
        ],
        70_000,
    );
}

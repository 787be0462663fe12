//! In-memory throughput of Send and RDMA Write through ddp-core + eta-mpa on one core,
//! and heap allocations per segment in steady state.
//!
//! Run: `cargo run --release -p eta-ddp-core --example bench`
//!
//! Each configuration moves the same messages from connection A to connection B:
//! A segments (ddp-core), frames (eta-mpa Framer: length, header, payload slices,
//! pad, CRC), the gather list is copied into a "wire" buffer (standing in for the
//! kernel's copy), the wire is read back in 64 KiB chunks by the eta-mpa Deframer and
//! B validates and places every payload directly into the posted buffer / registered
//! region (all of which `eta_ddp_core::link::Link` does). The split:
//! * CRC = time(CRC on) − time(CRC off)
//! * copy = time of the two memcpys alone (wire copy + placement) for the same bytes
//! * protocol bookkeeping = time(CRC off) − copy

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eta_ddp_core::link::Link;
use eta_ddp_core::{
    Access, Config, ConnId, Connection, LocalBuffer, MemoryTable, Scope, SendOptions, Stag,
};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, adding a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is forwarded unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Send,
    Write,
}

struct Result {
    elapsed: Duration,
    bytes: u64,
    segments: u64,
    allocs_steady: u64,
}

fn run(kind: Kind, msg: usize, total: usize, crc: bool, emss: u32) -> Result {
    let mulpdu = eta_mpa::mulpdu(emss, false);
    let table = MemoryTable::new();
    let src = vec![0x5Au8; msg];
    let mut dst = vec![0u8; msg];
    // SAFETY: `dst` outlives the table and connections (dropped at the end of this
    // function after them), is not moved or referenced while registered.
    let region_mem = unsafe { LocalBuffer::from_raw_mut(dst.as_mut_ptr(), msg) };
    let region = table
        .register_buffer(
            region_mem,
            0,
            Access::REMOTE_WRITE | Access::LOCAL_WRITE,
            Scope::Global,
        )
        .unwrap();
    let mut ca = Config::new(ConnId(1), mulpdu);
    ca.max_send_wr = 64;
    let mut a = Connection::new(ca, table.clone()).unwrap();
    let mut b = Connection::new(Config::new(ConnId(2), mulpdu), table.clone()).unwrap();
    let mut wire = Link::new(crc);
    let n_msgs = total / msg;
    let warmup = (n_msgs / 10).max(1);
    let mut segments = 0u64;
    let mut allocs_at_warm = 0;
    let mut t0 = Instant::now();
    for i in 0..n_msgs + warmup {
        if i == warmup {
            allocs_at_warm = ALLOCS.load(Ordering::Relaxed);
            segments = 0;
            t0 = Instant::now();
        }
        // SAFETY: `src` is alive and unchanged until the completion, which is
        // polled below before the next iteration; `dst` likewise for the receive.
        let data = unsafe { LocalBuffer::from_raw(src.as_ptr(), msg) };
        match kind {
            Kind::Send => {
                // SAFETY: as above.
                let rb = unsafe { LocalBuffer::from_raw_mut(dst.as_mut_ptr(), msg) };
                b.post_recv(i as u64, rb).unwrap();
                a.post_send(i as u64, data, SendOptions::default()).unwrap();
            }
            Kind::Write => a.post_write(i as u64, data, Stag(region.0), 0).unwrap(),
        }
        // Transmit a batch of segments, then deliver the wire in 64 KiB chunks.
        loop {
            let batch = wire.transmit_up_to(&mut a, 64);
            if batch == 0 {
                break;
            }
            segments += batch as u64;
            wire.deliver(&mut b, || 64 * 1024);
            assert!(wire.is_idle() && wire.error().is_none(), "{wire:?}");
        }
        while let Some(c) = a.poll_completion() {
            assert_eq!(c.status, eta_ddp_core::CompletionStatus::Success);
        }
        while let Some(c) = b.poll_completion() {
            assert_eq!(c.byte_len as usize, msg);
        }
    }
    let elapsed = t0.elapsed();
    let allocs_steady = ALLOCS.load(Ordering::Relaxed) - allocs_at_warm;
    drop(a);
    drop(b);
    table.deregister(region).unwrap();
    assert!(dst.iter().all(|&x| x == 0x5A));
    Result {
        elapsed,
        bytes: (n_msgs * msg) as u64,
        segments,
        allocs_steady,
    }
}

/// The copies alone: source → wire, wire → destination, in FPDU-sized pieces.
fn copies(msg: usize, total: usize, emss: u32) -> Duration {
    let piece = usize::from(eta_mpa::mulpdu(emss, false)) - 18;
    let src = vec![0x5Au8; msg];
    let mut wire = Vec::with_capacity(4 << 20);
    let mut dst = vec![0u8; msg];
    let t0 = Instant::now();
    for _ in 0..total / msg {
        for (i, p) in src.chunks(piece).enumerate() {
            wire.extend_from_slice(p);
            let off = i * piece;
            dst[off..off + p.len()].copy_from_slice(&wire[wire.len() - p.len()..]);
        }
        wire.clear();
        std::hint::black_box(&mut dst);
    }
    t0.elapsed()
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
}

fn main() {
    let total = 512 << 20;
    println!(
        "eta ddp-core + mpa in-memory, one core, {} MiB per run",
        total >> 20
    );
    println!(
        "{:<6} {:>7} {:>6} | {:>9} {:>9} | {:>8} {:>8} {:>8} | {:>9} {:>9}",
        "op",
        "msg",
        "emss",
        "CRC Gb/s",
        "noCRC",
        "crc ns/B",
        "copy",
        "proto",
        "segments",
        "alloc/seg"
    );
    for emss in [1448u32, 65483] {
        for (kind, name) in [(Kind::Send, "Send"), (Kind::Write, "Write")] {
            for msg in [64 << 10, 1 << 20] {
                let on = run(kind, msg, total, true, emss);
                let off = run(kind, msg, total, false, emss);
                let cp = copies(msg, total, emss);
                let per_byte = |d: Duration| d.as_secs_f64() * 1e9 / on.bytes as f64;
                let crc = on.elapsed.saturating_sub(off.elapsed);
                let proto = off.elapsed.saturating_sub(cp);
                println!(
                    "{:<6} {:>6}K {:>6} | {:>9.2} {:>9.2} | {:>8.3} {:>8.3} {:>8.3} | {:>9} {:>9.3}",
                    name,
                    msg >> 10,
                    emss,
                    gbps(on.bytes, on.elapsed),
                    gbps(off.bytes, off.elapsed),
                    per_byte(crc),
                    per_byte(cp),
                    per_byte(proto),
                    on.segments,
                    on.allocs_steady as f64 / on.segments as f64,
                );
            }
        }
    }
}

//! A deterministic fuzz-style smoke test of the receive path: thousands of random and
//! mutated inputs through `fuzzing::fuzz_receive` (which asserts that no byte outside
//! a registered region changes), with a counting allocator bounding memory.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

use common::Rng;

/// Counts the heap of one thread: the test's. (The test harness's own threads
/// allocate and free at times that depend on scheduling; counted too, they made
/// the leak check fail now and then on a loaded machine.)
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: forwards to the system allocator and only adds bookkeeping (the
// thread-local is const-initialised and has no destructor: reading it never
// allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if counted() {
            let n = LIVE.fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
            PEAK.fetch_max(n, Ordering::Relaxed);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if counted() {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: `p` was allocated by `alloc` above with `l`.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn record(len: usize, split: u8, ulpdu: &[u8]) -> Vec<u8> {
    let mut v = (len as u16).to_be_bytes().to_vec();
    v.push(split);
    v.extend_from_slice(ulpdu);
    v
}

fn seeds() -> Vec<Vec<u8>> {
    let send = |msn: u8, mo: u8, last: bool, n: usize| {
        let mut v = vec![
            if last { 0x41 } else { 0x01 },
            0x43,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            msn,
            0,
            0,
            0,
            mo,
        ];
        v.extend(std::iter::repeat_n(7, n));
        v
    };
    let write = |to: u64, n: usize| {
        let mut v = vec![0xC1, 0x40, 0, 0, 1, 0];
        v.extend_from_slice(&to.to_be_bytes());
        v.extend(std::iter::repeat_n(9, n));
        v
    };
    let rreq = {
        let mut v = vec![0x41, 0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
        v.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 1, 0]);
        v.extend_from_slice(&0x1000u64.to_be_bytes());
        v
    };
    let term = vec![
        0x41, 0x47, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x20, 2, 0, 0,
    ];
    let atomic = {
        let mut v = vec![
            0x41, 0x4A, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
            0, 1, 0,
        ];
        v.extend_from_slice(&0x1008u64.to_be_bytes());
        v.extend_from_slice(&[0xFF; 32]);
        v
    };
    let mut out = Vec::new();
    for opts in [0x04u8, 0x05, 0x02, 0x1C] {
        let mut s = vec![opts];
        for u in [
            send(1, 0, false, 40),
            send(1, 40, true, 20),
            write(0x1000, 300),
            rreq.clone(),
            atomic.clone(),
            term.clone(),
        ] {
            s.extend_from_slice(&record(u.len(), 6, &u));
        }
        out.push(s);
    }
    out
}

#[test]
fn thousands_of_inputs_no_panic_no_escape_bounded_memory() {
    COUNTED.with(|c| c.set(true));
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let seeds = seeds();
    let mut rng = Rng(0xF022);
    let (mut ulpdus, mut segs, mut comps, mut terms, mut alive) = (0, 0, 0, 0, 0);
    for i in 0..4000 {
        let input = match i % 4 {
            0 => {
                let mut v = vec![0u8; rng.below(400) as usize];
                rng.fill(&mut v);
                v
            }
            _ => {
                let mut v = seeds[rng.below(seeds.len() as u64) as usize].clone();
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(v.len() as u64) as usize;
                    match rng.below(4) {
                        0 => v[i] = rng.next() as u8,
                        1 => v[i] ^= 1 << rng.below(8),
                        2 => v.truncate(i.max(1)),
                        _ => {
                            let extra = v[i..].to_vec();
                            v.extend_from_slice(&extra[..extra.len().min(64)]);
                        }
                    }
                }
                v
            }
        };
        let o = eta_ddp_core::fuzzing::fuzz_receive(&input);
        ulpdus += o.ulpdus;
        segs += o.segments_out;
        comps += o.completions;
        if o.terminated {
            terms += 1;
        } else if o.ulpdus > 2 {
            alive += 1;
        }
    }
    // The mutations keep enough structure to reach deep states.
    assert!(ulpdus > 8000, "{ulpdus}");
    assert!(segs > 1000 && comps > 1000, "{segs} {comps}");
    assert!(terms > 1000 && alive > 100, "{terms} {alive}");
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let live = LIVE.load(Ordering::Relaxed) - base;
    COUNTED.with(|c| c.set(false));
    // The fuzz target allocates a 12 KiB region, a small pool and some queues.
    assert!(peak >= 12 << 10, "the counting saw only {peak} octets");
    assert!(peak < 2 << 20, "peak heap {peak} octets");
    assert!(live <= 4096, "leak: {live} octets still allocated");
}

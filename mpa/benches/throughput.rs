//! Throughput of CRC32c, the framer and the deframer on one core.
//!
//! `cargo bench -p eta-mpa --bench throughput [-- FILTER...]` prints GB/s per case
//! and, for the framer and the deframer, their cost relative to the CRC alone over
//! the same octets. Each case alternates rounds of itself and of its CRC-alone
//! baseline, so both see the same machine load; rates are per second of the
//! thread's CPU time (time the core spent on other processes is not counted); it
//! reports the median over the rounds and the spread (min–max). A FILTER runs only the cases whose label
//! contains it (e.g. `markers on`). `ETA_BENCH_MS` sets the time per case
//! (default 2000), `ETA_BENCH_ROUNDS` the rounds (default 9). Not a test: nothing
//! here asserts a speed.

use std::hint::black_box;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use eta_mpa::{Deframer, DeframerConfig, Event, FpduScratch, Framer, FramerConfig, crc, mulpdu};

const EMSS_LOOPBACK: u32 = 65483;

/// CPU time this thread has used, in seconds: unlike the wall clock it does not
/// count the time other processes of a shared machine hold the core.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// GB/s of `f` (which processes `bytes` octets per call) over about `budget` of
/// wall time, measured in thread CPU time.
fn round(bytes: usize, budget: Duration, f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    let cpu = thread_cpu_secs();
    let mut iters = 0u64;
    while start.elapsed() < budget {
        for _ in 0..16 {
            f();
        }
        iters += 16;
    }
    iters as f64 * bytes as f64 / (thread_cpu_secs() - cpu) / 1e9
}

/// Median, min and max of `v`.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[s.len() / 2], s[0], s[s.len() - 1])
}

struct Bench {
    budget: Duration,
    rounds: u32,
    filters: Vec<String>,
}

impl Bench {
    fn wanted(&self, label: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| label.contains(f.as_str()))
    }

    /// Measures `f` alone.
    fn single(&self, label: &str, bytes: usize, mut f: impl FnMut()) {
        if !self.wanted(label) {
            return;
        }
        for _ in 0..20 {
            f();
        }
        let per = self.budget / self.rounds;
        let r: Vec<f64> = (0..self.rounds)
            .map(|_| round(bytes, per, &mut f))
            .collect();
        let (med, lo, hi) = stats(&r);
        println!("{label:<40} {med:>6.2} GB/s ({lo:.2}–{hi:.2})");
    }

    /// Measures `f` against `base` in alternating rounds; prints both and the cost of
    /// `f` over `base` (per-round ratio: median, min–max).
    fn compare(
        &self,
        label: &str,
        bytes: usize,
        mut f: impl FnMut(),
        base_bytes: usize,
        mut base: impl FnMut(),
    ) {
        if !self.wanted(label) {
            return;
        }
        for _ in 0..20 {
            f();
            base();
        }
        let per = self.budget / (2 * self.rounds);
        let (mut fs, mut bs, mut over) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.rounds {
            let b = round(base_bytes, per, &mut base);
            let s = round(bytes, per, &mut f);
            fs.push(s);
            bs.push(b);
            over.push((b / s - 1.0) * 100.0);
        }
        let (fm, fl, fh) = stats(&fs);
        let (bm, bl, bh) = stats(&bs);
        let (om, ol, oh) = stats(&over);
        println!(
            "{label:<40} {fm:>6.2} GB/s ({fl:.2}–{fh:.2})   crc alone {bm:>6.2} ({bl:.2}–{bh:.2})   \
             adds {om:>5.1}% ({ol:.1}–{oh:.1})"
        );
    }
}

fn main() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let bench = Bench {
        budget: Duration::from_millis(env("ETA_BENCH_MS", 2000)),
        rounds: env("ETA_BENCH_ROUNDS", 9).max(1) as u32,
        filters: std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect(),
    };
    println!("crc32c hardware path: {}", hw_crc());
    let buf: Vec<u8> = (0..65536u32).map(|i| (i * 2654435761) as u8).collect();

    bench.single("crc32c, 64 KiB buffer", buf.len(), || {
        black_box(crc::crc32c(black_box(&buf)));
    });

    for markers in [false, true] {
        let on_off = if markers { "on" } else { "off" };
        let ulpdu = usize::from(mulpdu(EMSS_LOOPBACK, markers));
        let header = [0xc1u8, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let payload = &buf[..ulpdu - header.len()];
        // CRC alone over the same octets, as the baseline for this size.
        let crc_payload = || {
            black_box(crc::crc32c(black_box(payload)));
        };
        let mut framer = Framer::new(FramerConfig { crc: true, markers });
        let mut scratch = FpduScratch::default();
        let mut cache: Vec<IoSlice<'static>> = Vec::with_capacity(300);
        bench.compare(
            &format!("framer+crc, {ulpdu} B ULPDU, markers {on_off}"),
            ulpdu,
            || {
                let mut iov = eta_mpa::recycle_iov(std::mem::take(&mut cache));
                let n = framer
                    .frame(&mut scratch, &header, &[black_box(payload)], &mut iov)
                    .unwrap();
                black_box((n, iov.len()));
                cache = eta_mpa::recycle_iov(iov);
            },
            ulpdu,
            crc_payload,
        );

        // Deframer over a stream of such FPDUs, fed in 64 KiB reads; the baseline is
        // the CRC alone over each FPDU as it is on the wire (markers included).
        let mut f = Framer::new(FramerConfig { crc: true, markers });
        let mut wire = Vec::new();
        let mut fpdus = Vec::new();
        for _ in 0..64 {
            let start = wire.len();
            wire.extend(f.frame_to_vec(&header, &[payload]).unwrap());
            fpdus.push(start..wire.len() - 4);
        }
        let deframe = |crc: bool| {
            let cfg = DeframerConfig {
                crc,
                markers,
                max_ulpdu: u16::MAX,
                header_len: |_| 14,
            };
            let mut d = Deframer::new(cfg);
            let mut sum = 0usize;
            for chunk in wire.chunks(65536) {
                let mut input = chunk;
                loop {
                    let (used, ev) = d.advance(input).unwrap();
                    input = &input[used..];
                    match ev {
                        Event::NeedInput => break,
                        Event::Payload(p) => sum += p.len(),
                        _ => {}
                    }
                }
            }
            black_box(sum);
        };
        // The deframer's own work, without the CRC (a diagnostic).
        bench.single(
            &format!("deframer, no crc, markers {on_off}"),
            wire.len(),
            || deframe(false),
        );
        bench.compare(
            &format!("deframer+crc, markers {on_off}"),
            wire.len(),
            || deframe(true),
            wire.len(),
            || {
                for r in &fpdus {
                    black_box(crc::crc32c(black_box(&wire[r.clone()])));
                }
            },
        );
    }
}

fn hw_crc() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse4.2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

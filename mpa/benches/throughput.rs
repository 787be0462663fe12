//! Throughput of CRC32c, the framer and the deframer on one core.
//!
//! `cargo bench -p eta-mpa --bench throughput` prints GB/s per case and the cost of
//! framing relative to the CRC alone, measured in the same run. Not a test: nothing
//! here asserts a speed.

use std::hint::black_box;
use std::io::IoSlice;
use std::time::{Duration, Instant};

use eta_mpa::{Deframer, DeframerConfig, Event, FpduScratch, Framer, FramerConfig, crc, mulpdu};

const EMSS_LOOPBACK: u32 = 65483;

/// Runs `f` (which processes `bytes` octets per call) for about `budget`, returns GB/s.
fn measure(bytes: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    // Warm up.
    for _ in 0..20 {
        f();
    }
    let mut best = 0.0f64;
    // Best of 5 rounds, to reduce the noise of a shared machine.
    for _ in 0..5 {
        let start = Instant::now();
        let mut iters = 0u64;
        while start.elapsed() < budget / 5 {
            for _ in 0..16 {
                f();
            }
            iters += 16;
        }
        let secs = start.elapsed().as_secs_f64();
        best = best.max(iters as f64 * bytes as f64 / secs / 1e9);
    }
    best
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("ETA_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
    );
    println!("crc32c hardware path: {}", hw_crc());
    let buf: Vec<u8> = (0..65536u32).map(|i| (i * 2654435761) as u8).collect();

    let crc_gbs = measure(buf.len(), budget, || {
        black_box(crc::crc32c(black_box(&buf)));
    });
    println!("{:<44} {:>7.2} GB/s", "crc32c, 64 KiB buffer", crc_gbs);

    let mut rows = Vec::new();
    for markers in [false, true] {
        let ulpdu = usize::from(mulpdu(EMSS_LOOPBACK, markers));
        let header = [0xc1u8, 0x40, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        let payload = &buf[..ulpdu - header.len()];
        // CRC alone over the same octets, as the baseline for this size.
        let base = measure(ulpdu, budget, || {
            black_box(crc::crc32c(black_box(payload)));
        });
        let mut framer = Framer::new(FramerConfig { crc: true, markers });
        let mut scratch = FpduScratch::default();
        let mut cache: Vec<IoSlice<'static>> = Vec::with_capacity(300);
        let framed = measure(ulpdu, budget, || {
            let mut iov = eta_mpa::recycle_iov(std::mem::take(&mut cache));
            let n = framer
                .frame(&mut scratch, &header, &[black_box(payload)], &mut iov)
                .unwrap();
            black_box((n, iov.len()));
            cache = eta_mpa::recycle_iov(iov);
        });
        let label = format!(
            "framer+crc, {} B ULPDU, markers {}",
            ulpdu,
            if markers { "on" } else { "off" }
        );
        println!(
            "{label:<44} {framed:>7.2} GB/s   crc alone {base:>6.2} GB/s   framing adds {:>5.1}%",
            (base / framed - 1.0) * 100.0
        );
        rows.push((markers, base, framed));

        // Deframer over a stream of such FPDUs, fed in 64 KiB reads.
        let mut f = Framer::new(FramerConfig { crc: true, markers });
        let mut wire = Vec::new();
        for _ in 0..64 {
            wire.extend(f.frame_to_vec(&header, &[payload]).unwrap());
        }
        let cfg = DeframerConfig {
            crc: true,
            markers,
            max_ulpdu: u16::MAX,
            header_len: |_| 14,
        };
        let deframed = measure(wire.len(), budget, || {
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
        });
        println!(
            "{:<44} {deframed:>7.2} GB/s",
            format!(
                "deframer+crc, markers {}",
                if markers { "on" } else { "off" }
            )
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

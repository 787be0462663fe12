//! The report for humans (perftest-style tables of the medians over the rounds, with
//! their spread, the CPU cost and the ratios to raw TCP) and the CSV file (every
//! round).

use std::io::{self, Write};

use super::measure::{Kind, Row, Transport, onoff};
use super::stats::{Agg, find_agg};

/// A size as `4M`, `16K` or `100`.
pub fn size_label(s: usize) -> String {
    if s >= 1 << 20 && s % (1 << 20) == 0 {
        format!("{}M", s >> 20)
    } else if s >= 1 << 10 && s % (1 << 10) == 0 {
        format!("{}K", s >> 10)
    } else {
        s.to_string()
    }
}

/// The transport, CRC and marker columns of a row.
pub fn cfg_cols(t: Transport) -> (&'static str, &'static str, &'static str) {
    match t {
        Transport::Tcp => ("tcp", "-", "-"),
        Transport::Eta { crc, markers } => ("eta", onoff(crc), onoff(markers)),
    }
}

/// The row of `t`, `op`, `kind` and `size`, if measured.
pub fn find<'a>(
    rows: &'a [Row],
    t: Transport,
    op: &str,
    kind: Kind,
    size: usize,
) -> Option<&'a Row> {
    rows.iter().find(|r| r.is(t, op, kind, size))
}

/// `a / b` with two decimals, or `-` without a `b`.
fn ratio(a: f64, b: Option<f64>) -> String {
    b.map_or("-".into(), |b| format!("{:.2}", a / b))
}

/// `min-max` of an aggregate, with `prec` decimals.
fn spread(g: &Agg, prec: usize) -> String {
    format!("{:.prec$}-{:.prec$}", g.min, g.max)
}

/// Prints the latency and bandwidth tables (medians over `rounds` rounds) on stdout.
pub fn print_tables(aggs: &[Agg], rounds: usize) {
    let mut groups: Vec<(Transport, &'static str)> = Vec::new();
    for g in aggs {
        if !groups.contains(&(g.row.transport, g.row.op)) {
            groups.push((g.row.transport, g.row.op));
        }
    }
    let tcp = |kind, size| find_agg(aggs, Transport::Tcp, "send", kind, size);
    let of = |t: Transport, op: &'static str, kind: Kind| {
        aggs.iter()
            .filter(move |g| g.row.transport == t && g.row.op == op && g.row.kind == kind)
    };
    if aggs.iter().any(|g| g.row.kind == Kind::Lat) {
        println!();
        println!(
            "== Latency: half round trip of a ping-pong (read: post -> completion), usec; \
             median of {rounds} round(s) =="
        );
        println!(
            "{:<4} {:<10} {:>3} {:>3} {:>7} {:>8} {:>9} {:>17} {:>9} {:>7} {:>11} {:>7}",
            "tr",
            "op",
            "crc",
            "mrk",
            "#bytes",
            "#iters",
            "t_med",
            "min-max",
            "t_p99",
            "x tcp",
            "cpu_s/1kRT",
            "cpu/tcp"
        );
        for &(t, op) in &groups {
            let (tr, crc, mk) = cfg_cols(t);
            for g in of(t, op, Kind::Lat) {
                let r = &g.row;
                // Read is a full round trip: compare with TCP's full round trip.
                let base = tcp(Kind::Lat, r.size);
                let lat_base = base.map(|b| {
                    if op == "read" {
                        2.0 * b.row.lat_med
                    } else {
                        b.row.lat_med
                    }
                });
                println!(
                    "{:<4} {:<10} {:>3} {:>3} {:>7} {:>8} {:>9.2} {:>17} {:>9.2} {:>7} {:>11.4} {:>7}",
                    tr,
                    op,
                    crc,
                    mk,
                    size_label(r.size),
                    r.iters,
                    r.lat_med,
                    spread(g, 2),
                    r.lat_p99,
                    ratio(r.lat_med, lat_base),
                    g.cpu_per_unit,
                    ratio(g.cpu_per_unit, base.map(|b| b.cpu_per_unit))
                );
            }
        }
        println!(
            "(x tcp: median / raw TCP median of the same size; for read, / 2 x TCP half RTT. \
             cpu_s/1kRT: CPU seconds, user + system, all threads of both ends, per 1,000 \
             round trips; cpu/tcp: its ratio to raw TCP's)"
        );
    }
    if aggs.iter().any(|g| g.row.kind == Kind::Bw) {
        println!();
        println!("== Bandwidth: unidirectional, windowed; median of {rounds} round(s) ==");
        println!(
            "{:<4} {:<10} {:>3} {:>3} {:>7} {:>9} {:>10} {:>17} {:>8} {:>7} {:>9} {:>7}",
            "tr",
            "op",
            "crc",
            "mrk",
            "#bytes",
            "#msgs",
            "MB/s",
            "min-max",
            "Gb/s",
            "x tcp",
            "cpu_s/GB",
            "cpu/tcp"
        );
        for &(t, op) in &groups {
            let (tr, crc, mk) = cfg_cols(t);
            for g in of(t, op, Kind::Bw) {
                let r = &g.row;
                let base = tcp(Kind::Bw, r.size);
                println!(
                    "{:<4} {:<10} {:>3} {:>3} {:>7} {:>9} {:>10.1} {:>17} {:>8.2} {:>7} {:>9.3} {:>7}",
                    tr,
                    op,
                    crc,
                    mk,
                    size_label(r.size),
                    r.iters,
                    r.bw,
                    spread(g, 1),
                    r.bw * 8.0 / 1000.0,
                    ratio(r.bw, base.map(|b| b.row.bw)),
                    g.cpu_per_unit,
                    ratio(g.cpu_per_unit, base.map(|b| b.cpu_per_unit))
                );
            }
        }
        println!(
            "(x tcp: MB/s / raw TCP MB/s of the same size. cpu_s/GB: CPU seconds, user + \
             system, all threads of both ends, per 10^9 octets moved; cpu/tcp: its ratio to \
             raw TCP's)"
        );
    }
}

/// Writes `rows` (one per test and round) as CSV to `path`.
pub fn write_csv(path: &str, rows: &[Row]) -> io::Result<()> {
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "transport,op,crc,markers,size,iters,lat_med_us,lat_p99_us,bw_MBps,round,\
         round_trips,cpu_s,cpu_s_per_unit"
    )?;
    let num = |v: f64| {
        if v.is_nan() {
            String::new()
        } else {
            format!("{v:.3}")
        }
    };
    let cpu = |v: f64| {
        if v.is_finite() {
            format!("{v:.6}")
        } else {
            String::new()
        }
    };
    for r in rows {
        let (tr, crc, mk) = match r.transport {
            Transport::Tcp => ("tcp", "", ""),
            Transport::Eta { crc, markers } => ("eta", onoff(crc), onoff(markers)),
        };
        writeln!(
            f,
            "{tr},{},{crc},{mk},{},{},{},{},{},{},{},{},{}",
            r.op,
            r.size,
            r.iters,
            num(r.lat_med),
            num(r.lat_p99),
            num(r.bw),
            r.round,
            r.trips,
            cpu(r.cpu),
            cpu(r.cpu_per_unit())
        )?;
    }
    f.flush()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_labelled() {
        assert_eq!(size_label(1), "1");
        assert_eq!(size_label(1000), "1000");
        assert_eq!(size_label(16 << 10), "16K");
        assert_eq!(size_label(4 << 20), "4M");
        assert_eq!(size_label((1 << 20) + 1024), "1025K");
    }
}

//! The report for humans (perftest-style tables with the ratio to raw TCP) and the
//! CSV file.

use std::io::{self, Write};

use super::measure::{Kind, Row, Transport, onoff};

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
    rows.iter()
        .find(|r| r.transport == t && r.op == op && r.kind == kind && r.size == size)
}

/// Prints the latency and bandwidth tables on stdout.
pub fn print_tables(rows: &[Row]) {
    let mut groups: Vec<(Transport, &'static str)> = Vec::new();
    for r in rows {
        if !groups.contains(&(r.transport, r.op)) {
            groups.push((r.transport, r.op));
        }
    }
    let tcp = |kind, size| find(rows, Transport::Tcp, "send", kind, size);
    if rows.iter().any(|r| r.kind == Kind::Lat) {
        println!();
        println!("== Latency: half round trip of a ping-pong (read: post -> completion), usec ==");
        println!(
            "{:<4} {:<10} {:>3} {:>3} {:>7} {:>8} {:>9} {:>9} {:>7}",
            "tr", "op", "crc", "mrk", "#bytes", "#iters", "t_med", "t_p99", "x tcp"
        );
        for &(t, op) in &groups {
            let (tr, crc, mk) = cfg_cols(t);
            for r in rows
                .iter()
                .filter(|r| r.transport == t && r.op == op && r.kind == Kind::Lat)
            {
                // Read is a full round trip: compare with TCP's full round trip.
                let base = tcp(Kind::Lat, r.size).map(|b| {
                    if op == "read" {
                        2.0 * b.lat_med
                    } else {
                        b.lat_med
                    }
                });
                let ratio = base.map_or("-".into(), |b| format!("{:.2}", r.lat_med / b));
                println!(
                    "{:<4} {:<10} {:>3} {:>3} {:>7} {:>8} {:>9.2} {:>9.2} {:>7}",
                    tr,
                    op,
                    crc,
                    mk,
                    size_label(r.size),
                    r.iters,
                    r.lat_med,
                    r.lat_p99,
                    ratio
                );
            }
        }
        println!("(x tcp: median / raw TCP median of the same size; for read, / 2 x TCP half RTT)");
    }
    if rows.iter().any(|r| r.kind == Kind::Bw) {
        println!();
        println!("== Bandwidth: unidirectional, windowed ==");
        println!(
            "{:<4} {:<10} {:>3} {:>3} {:>7} {:>9} {:>10} {:>8} {:>7}",
            "tr", "op", "crc", "mrk", "#bytes", "#msgs", "MB/s", "Gb/s", "x tcp"
        );
        for &(t, op) in &groups {
            let (tr, crc, mk) = cfg_cols(t);
            for r in rows
                .iter()
                .filter(|r| r.transport == t && r.op == op && r.kind == Kind::Bw)
            {
                let ratio =
                    tcp(Kind::Bw, r.size).map_or("-".into(), |b| format!("{:.2}", r.bw / b.bw));
                println!(
                    "{:<4} {:<10} {:>3} {:>3} {:>7} {:>9} {:>10.1} {:>8.2} {:>7}",
                    tr,
                    op,
                    crc,
                    mk,
                    size_label(r.size),
                    r.iters,
                    r.bw,
                    r.bw * 8.0 / 1000.0,
                    ratio
                );
            }
        }
        println!("(x tcp: MB/s / raw TCP MB/s of the same size)");
    }
}

/// Writes `rows` as CSV to `path`.
pub fn write_csv(path: &str, rows: &[Row]) -> io::Result<()> {
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        f,
        "transport,op,crc,markers,size,iters,lat_med_us,lat_p99_us,bw_MBps"
    )?;
    let num = |v: f64| {
        if v.is_nan() {
            String::new()
        } else {
            format!("{v:.3}")
        }
    };
    for r in rows {
        let (tr, crc, mk) = match r.transport {
            Transport::Tcp => ("tcp", "", ""),
            Transport::Eta { crc, markers } => ("eta", onoff(crc), onoff(markers)),
        };
        writeln!(
            f,
            "{tr},{},{crc},{mk},{},{},{},{},{}",
            r.op,
            r.size,
            r.iters,
            num(r.lat_med),
            num(r.lat_p99),
            num(r.bw)
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

//! The targets eta-perf checks, as data: one [`Verdict`] per target, collected as
//! the run goes, printed at its end and turned into the exit status by `--check`.

use std::fmt;

use super::measure::{Kind, Row, Transport, onoff};
use super::report::find;

/// The bound a target puts on its figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The limit.
    pub limit: f64,
    /// The figure must be at most the limit (else at least).
    pub at_most: bool,
}

impl Target {
    /// Whether `value` keeps the bound.
    pub fn met_by(&self, value: f64) -> bool {
        if self.at_most {
            value <= self.limit
        } else {
            value >= self.limit
        }
    }

    fn relation(&self) -> &'static str {
        if self.at_most { "<=" } else { ">=" }
    }
}

/// The figure behind a verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// eta's and raw TCP's figures in `unit`; the value checked is eta / tcp.
    VsTcp {
        /// eta's figure.
        eta: f64,
        /// raw TCP's figure.
        tcp: f64,
        /// Their unit.
        unit: &'static str,
    },
    /// Memory per idle connection endpoint, in KiB (the value checked).
    IdleKib(f64),
    /// Nothing to check, and why (not measured, or the test failed).
    Missing(String),
}

/// One target checked against this run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What was measured.
    pub measure: String,
    /// The figure behind the verdict.
    pub figure: Figure,
    /// The bound on [`Verdict::value`].
    pub target: Target,
    /// Whether the target was met (never, without a figure).
    pub met: bool,
}

impl Verdict {
    /// A ratio to raw TCP: `figures` is (eta, tcp) in `unit`, or `None` if either was
    /// not measured in this run.
    pub fn vs_tcp(
        measure: String,
        figures: Option<(f64, f64)>,
        target: Target,
        unit: &'static str,
    ) -> Self {
        let figure = match figures {
            Some((eta, tcp)) => Figure::VsTcp { eta, tcp, unit },
            None => Figure::Missing("not measured in this run".into()),
        };
        Self::new(measure, figure, target)
    }

    /// The memory per idle connection endpoint, in KiB, against its 16 KiB target.
    pub fn idle_memory(kib: f64) -> Self {
        Self::new(IDLE_MEASURE.into(), Figure::IdleKib(kib), IDLE_TARGET)
    }

    /// The idle connection measurement failed with `why`.
    pub fn idle_failed(why: &str) -> Self {
        let figure = Figure::Missing(format!("test failed: {why}"));
        Self::new(IDLE_MEASURE.into(), figure, IDLE_TARGET)
    }

    fn new(measure: String, figure: Figure, target: Target) -> Self {
        let mut v = Self {
            measure,
            figure,
            target,
            met: false,
        };
        v.met = v.value().is_some_and(|x| target.met_by(x));
        v
    }

    /// The figure checked against the target: a ratio to raw TCP, or KiB.
    pub fn value(&self) -> Option<f64> {
        match self.figure {
            Figure::VsTcp { eta, tcp, .. } => Some(eta / tcp),
            Figure::IdleKib(kib) => Some(kib),
            Figure::Missing(_) => None,
        }
    }
}

const IDLE_MEASURE: &str = "idle connection memory";
const IDLE_TARGET: Target = Target {
    limit: 16.0,
    at_most: true,
};

impl fmt::Display for Verdict {
    /// One line: `[PASS]` or `[MISS]`, what was measured, the figures and the target.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.met { "PASS" } else { "MISS" };
        let (name, rel, limit) = (&self.measure, self.target.relation(), self.target.limit);
        match &self.figure {
            Figure::VsTcp { eta, tcp, unit } => write!(
                f,
                "[{mark}] {name}: eta {eta:.2} {unit} vs tcp {tcp:.2} {unit} = {:.2}x \
                 (target {rel} {limit:.2}x)",
                eta / tcp
            ),
            Figure::IdleKib(kib) => write!(
                f,
                "[{mark}] {name} {kib:.2} KiB per endpoint (target {rel} {limit} KiB beyond \
                 the kernel's socket buffers)"
            ),
            Figure::Missing(why) => write!(f, "[{mark}] {name}: {why}"),
        }
    }
}

/// Checks the latency and bandwidth targets against the rows of this run.
pub fn targets(rows: &[Row]) -> Vec<Verdict> {
    let mut out = Vec::new();
    // Latency: the default wire configuration (CRC on, no markers), else CRC off.
    let lat_t = [true, false]
        .into_iter()
        .map(|crc| Transport::Eta {
            crc,
            markers: false,
        })
        .find(|t| {
            rows.iter()
                .any(|r| r.transport == *t && r.op == "send" && r.kind == Kind::Lat)
        })
        .unwrap_or(Transport::Eta {
            crc: true,
            markers: false,
        });
    let crc = match lat_t {
        Transport::Eta { crc, .. } => onoff(crc),
        Transport::Tcp => "-",
    };
    for size in [1, 64] {
        let v = find(rows, lat_t, "send", Kind::Lat, size)
            .zip(find(rows, Transport::Tcp, "send", Kind::Lat, size))
            .map(|(e, t)| (e.lat_med, t.lat_med));
        out.push(Verdict::vs_tcp(
            format!("DDP Send latency {size} B (median half RTT, crc {crc}, markers off)"),
            v,
            Target {
                limit: 1.25,
                at_most: true,
            },
            "us",
        ));
    }
    let bw = |op: &str, markers: bool, limit: f64, note: &str| {
        let t = Transport::Eta { crc: true, markers };
        let v = find(rows, t, op, Kind::Bw, 1 << 20)
            .zip(find(rows, Transport::Tcp, "send", Kind::Bw, 1 << 20))
            .map(|(e, t)| (e.bw, t.bw));
        Verdict::vs_tcp(
            format!(
                "1 MiB {op} bandwidth, crc on, markers {}{note}",
                onoff(markers)
            ),
            v,
            Target {
                limit,
                at_most: false,
            },
            "MB/s",
        )
    };
    for (markers, limit) in [(false, 0.90), (true, 0.80)] {
        for op in ["send", "write"] {
            out.push(bw(op, markers, limit, ""));
        }
    }
    // Issue 10's targets, for the ends as deployed (two processes).
    for (op, markers, limit) in ISSUE_10_BW {
        out.push(bw(op, markers, limit, " (issue 10)"));
    }
    out
}

/// Issue 10's bandwidth targets at 1 MiB, CRC on: operation, markers, least ratio
/// to raw TCP.
const ISSUE_10_BW: [(&str, bool, f64); 3] = [
    ("send", false, 0.95),
    ("write", false, 0.95),
    ("write", true, 0.85),
];

/// The closing line: how many of `verdicts` were met.
pub fn summary(verdicts: &[Verdict]) -> String {
    let met = verdicts.iter().filter(|v| v.met).count();
    format!("{met} of {} targets met", verdicts.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::measure::{bw_row, lat_row};

    #[test]
    fn verdicts_are_data_and_print_as_before() {
        let eta = Transport::Eta {
            crc: true,
            markers: false,
        };
        let rows = [
            lat_row(Transport::Tcp, "send", 1, vec![10.0]),
            lat_row(eta, "send", 1, vec![12.0]),
            lat_row(Transport::Tcp, "send", 64, vec![10.0]),
            lat_row(eta, "send", 64, vec![13.0]),
            bw_row(Transport::Tcp, "send", 1 << 20, 1000, 1.0),
            bw_row(eta, "write", 1 << 20, 950, 1.0),
        ];
        let v = targets(&rows);
        let met: Vec<bool> = v.iter().map(|v| v.met).collect();
        assert_eq!(
            met,
            [true, false, false, true, false, false, false, true, false]
        );
        assert_eq!(v[0].value(), Some(1.2));
        assert_eq!(
            v[0].to_string(),
            "[PASS] DDP Send latency 1 B (median half RTT, crc on, markers off): eta 12.00 us \
             vs tcp 10.00 us = 1.20x (target <= 1.25x)"
        );
        assert_eq!(
            v[2].to_string(),
            "[MISS] 1 MiB send bandwidth, crc on, markers off: not measured in this run"
        );
        assert_eq!(v[2].value(), None);
        assert_eq!(
            v[7].to_string(),
            "[PASS] 1 MiB write bandwidth, crc on, markers off (issue 10): eta 996.15 MB/s \
             vs tcp 1048.58 MB/s = 0.95x (target >= 0.95x)"
        );
        assert_eq!(summary(&v), "3 of 9 targets met");
    }

    #[test]
    fn idle_memory_verdicts() {
        let v = Verdict::idle_memory(2.81);
        assert!(v.met);
        assert_eq!(
            v.to_string(),
            "[PASS] idle connection memory 2.81 KiB per endpoint (target <= 16 KiB beyond \
             the kernel's socket buffers)"
        );
        assert!(!Verdict::idle_memory(16.5).met);
        let f = Verdict::idle_failed("connect #3 failed");
        assert!(!f.met);
        assert_eq!(
            f.to_string(),
            "[MISS] idle connection memory: test failed: connect #3 failed"
        );
    }
}

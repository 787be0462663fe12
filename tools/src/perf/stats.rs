//! The rounds of one test folded into one line: the median of each figure over the
//! rounds and the spread (min–max) of the main one.

use super::measure::{Kind, Row, Transport};

/// One test over all its rounds.
#[derive(Debug, Clone)]
pub struct Agg {
    /// The medians over the rounds (latency median and p99, MB/s, CPU per unit via
    /// [`Agg::cpu_per_unit`]); `iters` and `trips` are the totals.
    pub row: Row,
    /// Smallest main figure (median latency or MB/s) of a round.
    pub min: f64,
    /// Largest main figure of a round.
    pub max: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// Median over the rounds of the CPU seconds per 1,000 round trips or per GB.
    pub cpu_per_unit: f64,
}

/// The median of `v` (mean of the middle two for an even count; NaN if empty;
/// NaNs sort last).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Whether two rows are rounds of the same test.
fn same_test(a: &Row, b: &Row) -> bool {
    a.is(b.transport, b.op, b.kind, b.size)
}

/// Folds the rows of every test (in order of first appearance) over their rounds.
pub fn aggregate(rows: &[Row]) -> Vec<Agg> {
    let mut out: Vec<Agg> = Vec::new();
    for first in rows {
        if out.iter().any(|a| same_test(&a.row, first)) {
            continue;
        }
        let all: Vec<&Row> = rows.iter().filter(|r| same_test(r, first)).collect();
        let of = |f: fn(&Row) -> f64| median(all.iter().map(|r| f(r)).collect());
        let figures: Vec<f64> = all.iter().map(|r| r.figure()).collect();
        let row = Row {
            iters: all.iter().map(|r| r.iters).sum(),
            trips: all.iter().map(|r| r.trips).sum(),
            lat_med: of(|r| r.lat_med),
            lat_p99: of(|r| r.lat_p99),
            bw: of(|r| r.bw),
            cpu: of(|r| r.cpu),
            ..first.clone()
        };
        out.push(Agg {
            row,
            min: figures.iter().copied().fold(f64::INFINITY, f64::min),
            max: figures.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            rounds: all.len(),
            cpu_per_unit: of(Row::cpu_per_unit),
        });
    }
    out
}

/// The aggregate of `t`, `op`, `kind` and `size`, if measured.
pub fn find_agg<'a>(
    aggs: &'a [Agg],
    t: Transport,
    op: &str,
    kind: Kind,
    size: usize,
) -> Option<&'a Agg> {
    aggs.iter().find(|a| a.row.is(t, op, kind, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::measure::{bw_row, lat_row};

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
        let eta = Transport::Eta {
            crc: true,
            markers: false,
        };
        let mut rows = Vec::new();
        for (round, mbps) in [300.0, 100.0, 200.0].into_iter().enumerate() {
            let mut r = bw_row(eta, "send", 1_000_000, mbps as usize, 1.0);
            r.cpu = 0.1 * (round + 1) as f64;
            r.round = round;
            rows.push(r);
            rows.push(lat_row(Transport::Tcp, "send", 1, vec![round as f64]));
        }
        let aggs = aggregate(&rows);
        assert_eq!(aggs.len(), 2);
        let bw = &aggs[0];
        assert_eq!(
            (bw.row.bw, bw.min, bw.max, bw.rounds),
            (200.0, 100.0, 300.0, 3)
        );
        assert_eq!(bw.row.iters, 600);
        // CPU per GB per round: 0.1/0.3, 0.2/0.1, 0.3/0.2; the median is 1.5.
        assert!((bw.cpu_per_unit - 1.5).abs() < 1e-9);
        let lat = find_agg(&aggs, Transport::Tcp, "send", Kind::Lat, 1).unwrap();
        assert_eq!((lat.row.lat_med, lat.min, lat.max), (1.0, 0.0, 2.0));
    }
}

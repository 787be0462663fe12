//! Measurement: the result rows and their statistics, the latency sampler, and the
//! waits on completions and on Write arrival every eta test uses.

use std::thread;
use std::time::{Duration, Instant};

use eta_engine::{Completion, CompletionQueue, CompletionStatus, Connection, MemoryRegion};

use super::{Res, WAIT_TIMEOUT, err};

/// Latency samples taken at least, whatever the time budget.
const MIN_LAT_ITERS: usize = 20;
/// Warm-up round trips before sampling (at most; also bounded by time).
const WARM_ITERS: usize = 100;

/// First octet of the last message of a Send ping-pong (raw TCP or DDP Send): the
/// server stops instead of answering. Every other message starts with 0x5a.
pub const STOP: u8 = 0;
/// Last octet the client of a Write ping-pong writes to make the server stop
/// ([`round_mark`] never gives it).
pub const STOP_MARK: u8 = 255;

/// What carried the messages of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Raw TCP, the baseline.
    Tcp,
    /// eta with these MPA settings.
    Eta {
        /// MPA CRC on.
        crc: bool,
        /// MPA markers on (both directions).
        markers: bool,
    },
}

/// Latency or bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ping-pong latency.
    Lat,
    /// Windowed unidirectional bandwidth.
    Bw,
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct Row {
    /// What carried the messages.
    pub transport: Transport,
    /// `send`, `write`, `write+send`, `read`.
    pub op: &'static str,
    /// Latency or bandwidth.
    pub kind: Kind,
    /// Message size in octets.
    pub size: usize,
    /// Latency samples or messages.
    pub iters: usize,
    /// Median latency in microseconds (NaN for bandwidth).
    pub lat_med: f64,
    /// 99th percentile latency in microseconds (NaN for bandwidth).
    pub lat_p99: f64,
    /// MB/s (10^6 octets per second; NaN for latency).
    pub bw: f64,
    /// Round trips made, warm-up included (latency tests; the samples otherwise).
    pub trips: usize,
    /// CPU seconds (user + system, all threads) of both ends over the whole test,
    /// connection setup included (NaN until measured).
    pub cpu: f64,
    /// The round this row was measured in (0 first).
    pub round: usize,
}

impl Row {
    /// Whether this is the row of `t`, `op`, `kind` and `size`.
    pub fn is(&self, t: Transport, op: &str, kind: Kind, size: usize) -> bool {
        self.transport == t && self.op == op && self.kind == kind && self.size == size
    }

    /// The row's figure: median latency in microseconds, or MB/s.
    pub fn figure(&self) -> f64 {
        match self.kind {
            Kind::Lat => self.lat_med,
            Kind::Bw => self.bw,
        }
    }

    /// CPU seconds per 1,000 round trips (latency) or per GB moved (bandwidth; GB is
    /// 10^9 octets).
    pub fn cpu_per_unit(&self) -> f64 {
        match self.kind {
            Kind::Lat => self.cpu / self.trips as f64 * 1000.0,
            Kind::Bw => self.cpu / ((self.iters * self.size) as f64 / 1e9),
        }
    }

    /// The row with `trips` round trips made (warm-up included).
    pub fn with_trips(self, trips: usize) -> Self {
        Row { trips, ..self }
    }
}

/// `on` or `off`.
pub fn onoff(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A latency row from its samples (microseconds).
pub fn lat_row(transport: Transport, op: &'static str, size: usize, mut samples: Vec<f64>) -> Row {
    samples.sort_by(f64::total_cmp);
    Row {
        transport,
        op,
        kind: Kind::Lat,
        size,
        iters: samples.len(),
        lat_med: percentile(&samples, 0.5),
        lat_p99: percentile(&samples, 0.99),
        bw: f64::NAN,
        trips: samples.len(),
        cpu: f64::NAN,
        round: 0,
    }
}

/// A bandwidth row: `msgs` messages of `size` octets in `secs` seconds.
pub fn bw_row(transport: Transport, op: &'static str, size: usize, msgs: usize, secs: f64) -> Row {
    Row {
        transport,
        op,
        kind: Kind::Bw,
        size,
        iters: msgs,
        lat_med: f64::NAN,
        lat_p99: f64::NAN,
        bw: (msgs * size) as f64 / secs / 1e6,
        trips: msgs,
        cpu: f64::NAN,
        round: 0,
    }
}

/// Runs `round` (one round trip, returning its duration) for warm-up, then samples
/// until `cap` has passed (at least `MIN_LAT_ITERS`, at most `max`). Returns the
/// samples in microseconds divided by `div` (2 for half round trips) and the number
/// of rounds run, warm-up included.
pub fn sample(
    cap: Duration,
    max: usize,
    div: f64,
    mut round: impl FnMut() -> Res<Duration>,
) -> Res<(Vec<f64>, usize)> {
    let warm_until = Instant::now() + (cap / 10).min(Duration::from_millis(100));
    let mut warm = 0;
    while warm < WARM_ITERS && Instant::now() < warm_until {
        round()?;
        warm += 1;
    }
    let mut out = Vec::with_capacity(max.min(1 << 16));
    let start = Instant::now();
    while out.len() < max && (out.len() < MIN_LAT_ITERS || start.elapsed() < cap) {
        let d = round()?;
        out.push(d.as_secs_f64() * 1e6 / div);
    }
    let trips = warm + out.len();
    Ok((out, trips))
}

/// The next completion of `cq`: polled for `spin`, then waited for on the eventfd.
/// Anything but success is an error naming what was awaited.
pub fn next(
    cq: &CompletionQueue,
    conn: &Connection,
    spin: Duration,
    what: &str,
) -> Res<Completion> {
    let mut got = None;
    if !spin.is_zero() {
        let t0 = Instant::now();
        while got.is_none() {
            got = cq.poll();
            if got.is_none() {
                if t0.elapsed() >= spin {
                    break;
                }
                std::hint::spin_loop();
            }
        }
    }
    let c = match got {
        Some(c) => c,
        None => cq
            .wait(Some(WAIT_TIMEOUT))
            .map_err(err("completion queue wait"))?
            .ok_or_else(|| format!("{what}: no completion within {WAIT_TIMEOUT:?} (hung?)"))?,
    };
    if c.status != CompletionStatus::Success {
        return Err(format!(
            "{what}: completion {:?} status {:?}; connection: {}",
            c.op,
            c.status,
            conn.error()
                .unwrap_or_else(|| format!("{:?}", conn.state()))
        ));
    }
    Ok(c)
}

/// Polls the octet at `off` of `region` until it equals `want` or [`STOP_MARK`];
/// gives the one it found.
pub fn poll_octet(region: &MemoryRegion, conn: &Connection, off: u64, want: u8) -> Res<u8> {
    let mut b = [0u8; 1];
    let mut n: u32 = 0;
    let mut since: Option<Instant> = None;
    loop {
        region.read(off, &mut b).map_err(err("region read"))?;
        if b[0] == want || b[0] == STOP_MARK {
            return Ok(b[0]);
        }
        n = n.wrapping_add(1);
        if n % 64 == 0 {
            // 2 cores are shared by two polling threads and the engine: give way.
            thread::yield_now();
            if n % 4096 == 0 {
                let t = *since.get_or_insert_with(Instant::now);
                if t.elapsed() > WAIT_TIMEOUT {
                    return Err(format!("write arrival: nothing within {WAIT_TIMEOUT:?}"));
                }
                if conn.state() != eta_engine::ConnState::Open {
                    return Err(format!(
                        "write arrival: connection {:?}: {}",
                        conn.state(),
                        conn.error().unwrap_or_default()
                    ));
                }
            }
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The buffer a completion hands back (`what` names it in the error).
pub fn take_buf(c: Completion, what: &str) -> Res<Vec<u8>> {
    c.buffer
        .ok_or_else(|| format!("{what}: completion without its buffer"))
}

/// Value of the last octet in round `i` of a Write ping-pong (never 0, never
/// [`STOP_MARK`], never the value of round `i - 1`).
pub fn round_mark(i: u64) -> u8 {
    (i % 254) as u8 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_marks_never_stop_and_always_change() {
        for i in 0..600 {
            let (a, b) = (round_mark(i), round_mark(i + 1));
            assert!(a != 0 && a != STOP_MARK && a != b);
        }
    }

    #[test]
    fn cpu_is_counted_per_unit() {
        let mut lat = lat_row(Transport::Tcp, "send", 64, vec![1.0; 10]).with_trips(2000);
        lat.cpu = 0.1;
        assert!((lat.cpu_per_unit() - 0.05).abs() < 1e-12);
        let mut bw = bw_row(Transport::Tcp, "send", 1 << 20, 1000, 1.0);
        bw.cpu = 0.5;
        // 1000 MiB = 1.048576 GB.
        assert!((bw.cpu_per_unit() - 0.5 / 1.048576).abs() < 1e-12);
        assert_eq!((lat.figure(), bw.figure()), (1.0, bw.bw));
    }
}

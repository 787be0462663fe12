//! eta-perf: eta's benchmark, raw TCP and iWARP side by side in one run on loopback.
//!
//! For every message size it measures, in the same process and the same run:
//!
//! - **raw TCP**: `std::net::TcpStream` with `TCP_NODELAY`, blocking reads and writes,
//!   fixed-size messages (the baseline every ratio refers to);
//! - **DDP Send** (`post_send` / `post_recv`);
//! - **RDMA Write**: ping-pong in the perftest `ib_write_lat` style (each side writes
//!   into the other's registered region and detects arrival by polling the last octet
//!   of its own region), or a Write followed by a 0-octet Send as the notification;
//! - **RDMA Read**: post→completion of one Read (a full round trip, one side only).
//!
//! Latency is half the round trip of a ping-pong (size S each way), median and 99th
//! percentile. Bandwidth is unidirectional with a window of messages in flight.
//! The server side of every test is a thread of this process, the client the main
//! thread; both talk over 127.0.0.1. `--idle N` also measures the memory of N idle
//! connections. Run with `--help` for the options.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use eta_engine::{
    Access, Completion, CompletionQueue, CompletionStatus, Connection, Listener, LocalConfig,
    MemoryRegion, Options, RemoteRegion,
};

/// Longest wait for any single completion, arrival or handshake before a test is
/// declared hung.
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Latency samples taken at least, whatever the time budget.
const MIN_LAT_ITERS: usize = 20;
/// Warm-up round trips before sampling (at most; also bounded by time).
const WARM_ITERS: usize = 100;
/// Largest read of the raw TCP bandwidth receiver.
const TCP_RX_CHUNK: usize = 256 * 1024;

type Res<T> = Result<T, String>;

fn err<E: std::fmt::Display>(ctx: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{ctx}: {e}")
}

// ---------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Write,
    Read,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Write => "write",
            Op::Read => "read",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteLat {
    Poll,
    Send,
    Both,
}

#[derive(Debug, Clone)]
struct Args {
    quick: bool,
    duration: f64,
    sizes: Vec<usize>,
    crc: Vec<bool>,
    markers: Vec<bool>,
    ops: Vec<Op>,
    lat: bool,
    bw: bool,
    max_iters: usize,
    max_msgs: usize,
    window: usize,
    csv: Option<String>,
    idle: Option<usize>,
    bench: bool,
    app_spin: Duration,
    write_lat: WriteLat,
}

const HELP: &str = "\
eta-perf: raw TCP vs eta (DDP Send, RDMA Write, RDMA Read) on 127.0.0.1, one run

USAGE: eta-perf [OPTIONS]

  --quick              short run: sizes 1,64,16K,1M; CRC on; markers off and on;
                       duration 20 s
  --duration SECS      time budget of all latency/bandwidth tests together
                       (default 90; split evenly over the tests)
  --sizes LIST         message sizes, e.g. 1,64,1K,16K,64K,256K,1M,4M (the default)
  --crc on|off|both    MPA CRC (default both; --quick: on)
  --markers on|off|both  MPA markers, asked for by both ends (default both)
  --ops LIST           eta operations among send,write,read (default all three;
                       raw TCP always runs, as the baseline)
  --tests LIST         lat,bw (default both)
  --iters N            most latency samples per test (default 100000)
  --msgs N             most messages per bandwidth test (default 1000000)
  --window N           messages in flight in bandwidth tests (default 16; Reads
                       are also limited by the negotiated ORD)
  --write-lat MODE     RDMA Write ping-pong notification: poll (poll the last octet
                       of the own region, ib_write_lat style; default), send (Write
                       followed by a 0-octet Send), both
  --app-spin-us N      application threads poll a completion queue this long
                       before blocking on its eventfd (default 0: block at once,
                       as the raw TCP threads block in read)
  --csv PATH           also write CSV: transport,op,crc,markers,size,iters,
                       lat_med_us,lat_p99_us,bw_MBps (one row per latency test and
                       one per bandwidth test; the other test's columns are empty)
  --idle N             also open N idle DDP connections (both ends in this
                       process) and report the memory per connection
  --no-bench           only the --idle measurement
  -h, --help           this text

Engine threads: ETA_ENGINES (default 1), ETA_SPIN_US (default 50), ETA_ENGINE_CPUS.
MB/s is 10^6 octets per second.";

fn parse_size(s: &str) -> Res<usize> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1024),
        Some((i, 'M' | 'm')) => (&s[..i], 1024 * 1024),
        _ => (s, 1),
    };
    let n: usize = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let v = n * mult;
    if v == 0 || v > u32::MAX as usize {
        return Err(format!("size {s:?} out of range (1 octet to 4 GiB - 1)"));
    }
    Ok(v)
}

fn parse_onoff(v: &str, flag: &str) -> Res<Vec<bool>> {
    match v {
        "on" => Ok(vec![true]),
        "off" => Ok(vec![false]),
        "both" => Ok(vec![true, false]),
        _ => Err(format!("{flag}: expected on, off or both, got {v:?}")),
    }
}

fn parse_args() -> Res<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        quick,
        duration: if quick { 20.0 } else { 90.0 },
        sizes: if quick {
            vec![1, 64, 16 << 10, 1 << 20]
        } else {
            vec![
                1,
                64,
                1 << 10,
                16 << 10,
                64 << 10,
                256 << 10,
                1 << 20,
                4 << 20,
            ]
        },
        crc: if quick { vec![true] } else { vec![true, false] },
        markers: vec![false, true],
        ops: vec![Op::Send, Op::Write, Op::Read],
        lat: true,
        bw: true,
        max_iters: 100_000,
        max_msgs: 1_000_000,
        window: 16,
        csv: None,
        idle: None,
        bench: true,
        app_spin: Duration::ZERO,
        write_lat: WriteLat::Poll,
    };
    let mut it = argv.into_iter();
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => {}
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--duration" => {
                a.duration = val()?
                    .parse()
                    .ok()
                    .filter(|d: &f64| *d > 0.0)
                    .ok_or("--duration: expected seconds > 0")?;
            }
            "--sizes" => a.sizes = val()?.split(',').map(parse_size).collect::<Res<_>>()?,
            "--crc" => a.crc = parse_onoff(&val()?, "--crc")?,
            "--markers" => a.markers = parse_onoff(&val()?, "--markers")?,
            "--ops" => {
                a.ops = val()?
                    .split(',')
                    .map(|o| match o.trim() {
                        "send" => Ok(Op::Send),
                        "write" => Ok(Op::Write),
                        "read" => Ok(Op::Read),
                        o => Err(format!("--ops: unknown operation {o:?}")),
                    })
                    .collect::<Res<_>>()?;
            }
            "--tests" => {
                let v = val()?;
                a.lat = false;
                a.bw = false;
                for t in v.split(',') {
                    match t.trim() {
                        "lat" => a.lat = true,
                        "bw" => a.bw = true,
                        t => return Err(format!("--tests: unknown test {t:?}")),
                    }
                }
            }
            "--iters" => a.max_iters = parse_count(&val()?, "--iters")?,
            "--msgs" => a.max_msgs = parse_count(&val()?, "--msgs")?,
            "--window" => a.window = parse_count(&val()?, "--window")?.min(1000),
            "--write-lat" => {
                a.write_lat = match val()?.as_str() {
                    "poll" => WriteLat::Poll,
                    "send" => WriteLat::Send,
                    "both" => WriteLat::Both,
                    v => {
                        return Err(format!(
                            "--write-lat: expected poll, send or both, got {v:?}"
                        ));
                    }
                }
            }
            "--app-spin-us" => {
                a.app_spin = Duration::from_micros(
                    val()?
                        .parse()
                        .map_err(|_| "--app-spin-us: expected microseconds")?,
                )
            }
            "--csv" => a.csv = Some(val()?),
            "--idle" => a.idle = Some(parse_count(&val()?, "--idle")?),
            "--no-bench" => a.bench = false,
            f => return Err(format!("unknown option {f:?} (try --help)")),
        }
    }
    Ok(a)
}

fn parse_count(v: &str, flag: &str) -> Res<usize> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag}: expected a positive number, got {v:?}"))
}

// ---------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Tcp,
    Eta { crc: bool, markers: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lat,
    Bw,
}

#[derive(Debug, Clone)]
struct Row {
    transport: Transport,
    /// `send`, `write`, `write+send`, `read`.
    op: &'static str,
    kind: Kind,
    size: usize,
    iters: usize,
    lat_med: f64,
    lat_p99: f64,
    /// MB/s (10^6 octets per second).
    bw: f64,
}

fn onoff(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn lat_row(transport: Transport, op: &'static str, size: usize, mut samples: Vec<f64>) -> Row {
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
    }
}

fn bw_row(transport: Transport, op: &'static str, size: usize, msgs: usize, secs: f64) -> Row {
    Row {
        transport,
        op,
        kind: Kind::Bw,
        size,
        iters: msgs,
        lat_med: f64::NAN,
        lat_p99: f64::NAN,
        bw: (msgs * size) as f64 / secs / 1e6,
    }
}

// ---------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------

/// Runs `round` (one round trip, returning its duration) for warm-up, then samples
/// until `cap` has passed (at least `MIN_LAT_ITERS`, at most `max`). Returns the
/// samples in microseconds divided by `div` (2 for half round trips).
fn sample(
    cap: Duration,
    max: usize,
    div: f64,
    mut round: impl FnMut() -> Res<Duration>,
) -> Res<Vec<f64>> {
    let warm_until = Instant::now() + (cap / 10).min(Duration::from_millis(100));
    for _ in 0..WARM_ITERS {
        if Instant::now() >= warm_until {
            break;
        }
        round()?;
    }
    let mut out = Vec::with_capacity(max.min(1 << 16));
    let start = Instant::now();
    while out.len() < max && (out.len() < MIN_LAT_ITERS || start.elapsed() < cap) {
        let d = round()?;
        out.push(d.as_secs_f64() * 1e6 / div);
    }
    Ok(out)
}

/// The next completion of `cq`: polled for `spin`, then waited for on the eventfd.
/// Anything but success is an error naming what was awaited.
fn next(cq: &CompletionQueue, conn: &Connection, spin: Duration, what: &str) -> Res<Completion> {
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

/// Polls the octet at `off` of `region` until it equals `want`.
fn poll_octet(region: &MemoryRegion, conn: &Connection, off: u64, want: u8) -> Res<()> {
    let mut b = [0u8; 1];
    let mut n: u32 = 0;
    let mut since: Option<Instant> = None;
    loop {
        region.read(off, &mut b).map_err(err("region read"))?;
        if b[0] == want {
            return Ok(());
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

fn take_buf(c: Completion, what: &str) -> Res<Vec<u8>> {
    c.buffer
        .ok_or_else(|| format!("{what}: completion without its buffer"))
}

/// Value of the last octet in round `i` of a Write ping-pong (never 0, never the
/// value of round `i - 1`).
fn round_mark(i: u64) -> u8 {
    (i % 255) as u8 + 1
}

// ---------------------------------------------------------------------------------
// Raw TCP
// ---------------------------------------------------------------------------------

fn tcp_pair<RS: Send + 'static, RC>(
    server: impl FnOnce(TcpStream) -> Res<RS> + Send + 'static,
    client: impl FnOnce(TcpStream) -> Res<RC>,
) -> Res<(RS, RC)> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err("tcp bind"))?;
    let addr = listener.local_addr().map_err(err("tcp local_addr"))?;
    let h = thread::Builder::new()
        .name("perf-tcp-server".into())
        .spawn(move || {
            let (s, _) = listener.accept().map_err(err("tcp accept"))?;
            s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
            server(s)
        })
        .map_err(err("spawn"))?;
    let s = TcpStream::connect(addr).map_err(err("tcp connect"))?;
    s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
    let rc = client(s);
    let rs = h
        .join()
        .map_err(|_| "tcp server thread panicked".to_string())?;
    Ok((rs?, rc?))
}

fn tcp_lat(size: usize, cap: Duration, max: usize) -> Res<Row> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (_, samples) = tcp_pair(
        move |mut s| {
            let mut buf = vec![0u8; size];
            loop {
                s.read_exact(&mut buf).map_err(err("tcp server read"))?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                s.write_all(&buf).map_err(err("tcp server write"))?;
            }
        },
        |mut s| {
            let out = vec![0x5au8; size];
            let mut back = vec![0u8; size];
            let samples = sample(cap, max, 2.0, || {
                let t = Instant::now();
                s.write_all(&out).map_err(err("tcp write"))?;
                s.read_exact(&mut back).map_err(err("tcp read"))?;
                Ok(t.elapsed())
            })?;
            stop.store(true, Ordering::SeqCst);
            s.write_all(&out).map_err(err("tcp write"))?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(Transport::Tcp, "send", size, samples))
}

fn tcp_bw(size: usize, cap: Duration, max: usize) -> Res<Row> {
    let (_, (msgs, secs)) = tcp_pair(
        |mut s| {
            let mut buf = vec![0u8; TCP_RX_CHUNK];
            let mut total: u64 = 0;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("tcp server read: {e}")),
                }
            }
            s.write_all(&total.to_le_bytes())
                .map_err(err("tcp server write"))
        },
        |mut s| {
            let out = vec![0x5au8; size];
            let t = Instant::now();
            let mut msgs = 0usize;
            while msgs < max && (msgs < 16 || t.elapsed() < cap) {
                s.write_all(&out).map_err(err("tcp write"))?;
                msgs += 1;
            }
            s.shutdown(Shutdown::Write).map_err(err("tcp shutdown"))?;
            let mut ack = [0u8; 8];
            s.read_exact(&mut ack).map_err(err("tcp read ack"))?;
            let secs = t.elapsed().as_secs_f64();
            let got = u64::from_le_bytes(ack);
            if got != (msgs * size) as u64 {
                return Err(format!(
                    "tcp bw: receiver counted {got} octets, sent {}",
                    msgs * size
                ));
            }
            Ok((msgs, secs))
        },
    )?;
    Ok(bw_row(Transport::Tcp, "send", size, msgs, secs))
}

// ---------------------------------------------------------------------------------
// eta
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct EtaCfg {
    crc: bool,
    markers: bool,
    spin: Duration,
}

impl EtaCfg {
    fn transport(&self) -> Transport {
        Transport::Eta {
            crc: self.crc,
            markers: self.markers,
        }
    }

    /// Options with a send and a receive completion queue of its own.
    fn options(&self) -> Res<Options> {
        Ok(Options {
            mpa: LocalConfig {
                crc: self.crc,
                want_markers: self.markers,
                ..LocalConfig::default()
            },
            send_cq: Some(CompletionQueue::new().map_err(err("completion queue"))?),
            recv_cq: Some(CompletionQueue::new().map_err(err("completion queue"))?),
            ..Options::default()
        })
    }
}

/// Connects a client (this thread) to a server thread over loopback and runs both.
fn eta_pair<RS: Send + 'static, RC>(
    cfg: EtaCfg,
    server: impl FnOnce(Connection) -> Res<RS> + Send + 'static,
    client: impl FnOnce(Connection) -> Res<RC>,
) -> Res<(RS, RC)> {
    let listener = Listener::bind("127.0.0.1:0", cfg.options()?).map_err(err("eta bind"))?;
    let addr = listener.local_addr().map_err(err("eta local_addr"))?;
    let h = thread::Builder::new()
        .name("perf-eta-server".into())
        .spawn(move || server(listener.accept().map_err(err("eta accept"))?))
        .map_err(err("spawn"))?;
    let rc = match Connection::connect(addr, cfg.options()?) {
        Ok(conn) => {
            let n = conn.negotiated();
            if n.crc != cfg.crc || n.markers_tx != cfg.markers || n.markers_rx != cfg.markers {
                eprintln!(
                    "warning: asked for crc {} markers {}, negotiated crc {} markers tx/rx {}/{}",
                    cfg.crc, cfg.markers, n.crc, n.markers_tx, n.markers_rx
                );
            }
            client(conn)
        }
        Err(e) => Err(format!("eta connect: {e}")),
    };
    let rs = h
        .join()
        .map_err(|_| "eta server thread panicked".to_string())?;
    match (rs, rc) {
        (Ok(rs), Ok(rc)) => Ok((rs, rc)),
        // The client's error is the cause; the server's is usually its consequence.
        (_, Err(e)) => Err(e),
        (Err(e), _) => Err(e),
    }
}

/// Waits for the 0-octet "done" Send of the client (after posting a receive for it).
fn await_done(conn: &Connection, spin: Duration) -> Res<()> {
    let c = next(conn.recv_cq(), conn, spin, "done message")?;
    if c.byte_len != 0 {
        return Err(format!(
            "done message: expected 0 octets, got {}",
            c.byte_len
        ));
    }
    Ok(())
}

fn send_empty(conn: &Connection, spin: Duration, what: &str) -> Res<()> {
    conn.post_send(u64::MAX, Vec::new(), Default::default())
        .map_err(err("post_send"))?;
    next(conn.send_cq(), conn, spin, what).map(drop)
}

fn eta_send_lat(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (_, samples) = eta_pair(
        cfg,
        move |conn| {
            conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            let mut sbuf = vec![0u8; size];
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                conn.post_send(1, sbuf, Default::default())
                    .map_err(err("post_send"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server send")?, "send")?;
            }
        },
        |conn| {
            conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let samples = sample(cap, max, 2.0, || {
                let buf = sbuf.take().expect("send buffer");
                let t = Instant::now();
                conn.post_send(1, buf, Default::default())
                    .map_err(err("post_send"))?;
                let c = next(conn.recv_cq(), &conn, spin, "client recv")?;
                let d = t.elapsed();
                if c.byte_len as usize != size {
                    return Err(format!("pong of {} octets, expected {size}", c.byte_len));
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client send")?,
                    "send",
                )?);
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            conn.post_send(1, sbuf.take().expect("send buffer"), Default::default())
                .map_err(err("post_send"))?;
            next(conn.send_cq(), &conn, spin, "client send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "send", size, samples))
}

/// Exchanges regions between the two ends of a pair through channels.
struct Exchange {
    tx: mpsc::Sender<RemoteRegion>,
    rx: mpsc::Receiver<RemoteRegion>,
}

fn exchange_pair() -> (Exchange, Exchange) {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    (
        Exchange { tx: a_tx, rx: b_rx },
        Exchange { tx: b_tx, rx: a_rx },
    )
}

impl Exchange {
    fn swap(&self, mine: RemoteRegion) -> Res<RemoteRegion> {
        self.tx
            .send(mine)
            .map_err(|_| "peer thread gone".to_string())?;
        self.rx
            .recv_timeout(WAIT_TIMEOUT)
            .map_err(|_| "peer did not advertise its region".to_string())
    }
}

/// Write ping-pong with arrival detected by polling the last octet of the own region.
fn eta_write_lat_poll(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (srv_x, cli_x) = exchange_pair();
    let last = size as u64 - 1;
    let (_, samples) = eta_pair(
        cfg,
        move |conn| {
            let region = conn
                .register(vec![0; size], Access::REMOTE_WRITE)
                .map_err(err("register"))?;
            let peer = srv_x.swap(region.remote(0))?;
            let mut sbuf = vec![0u8; size];
            let mut i = 0u64;
            loop {
                let v = round_mark(i);
                poll_octet(&region, &conn, last, v)?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                sbuf[size - 1] = v;
                conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
                i += 1;
            }
        },
        |conn| {
            let region = conn
                .register(vec![0; size], Access::REMOTE_WRITE)
                .map_err(err("register"))?;
            let peer = cli_x.swap(region.remote(0))?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let mut i = 0u64;
            let samples = sample(cap, max, 2.0, || {
                let mut buf = sbuf.take().expect("write buffer");
                let v = round_mark(i);
                buf[size - 1] = v;
                let t = Instant::now();
                conn.post_write(1, buf, peer).map_err(err("post_write"))?;
                poll_octet(&region, &conn, last, v)?;
                let d = t.elapsed();
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client write")?,
                    "write",
                )?);
                i += 1;
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            let mut buf = sbuf.take().expect("write buffer");
            buf[size - 1] = round_mark(i);
            conn.post_write(1, buf, peer).map_err(err("post_write"))?;
            next(conn.send_cq(), &conn, spin, "client write")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "write", size, samples))
}

/// Write ping-pong with a 0-octet Send after each Write as the notification.
fn eta_write_lat_send(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let (srv_x, cli_x) = exchange_pair();
    let (_, samples) = eta_pair(
        cfg,
        move |conn| {
            let region = conn
                .register(vec![0; size], Access::REMOTE_WRITE)
                .map_err(err("register"))?;
            let peer = srv_x.swap(region.remote(0))?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let mut sbuf = vec![0u8; size];
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if stop2.load(Ordering::SeqCst) {
                    return Ok(());
                }
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                conn.post_write(1, sbuf, peer).map_err(err("post_write"))?;
                conn.post_send(2, Vec::new(), Default::default())
                    .map_err(err("post_send"))?;
                sbuf = take_buf(next(conn.send_cq(), &conn, spin, "server write")?, "write")?;
                next(conn.send_cq(), &conn, spin, "server send")?;
            }
        },
        |conn| {
            let region = conn
                .register(vec![0; size], Access::REMOTE_WRITE)
                .map_err(err("register"))?;
            let peer = cli_x.swap(region.remote(0))?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let mut sbuf = Some(vec![0x5au8; size]);
            let samples = sample(cap, max, 2.0, || {
                let buf = sbuf.take().expect("write buffer");
                let t = Instant::now();
                conn.post_write(1, buf, peer).map_err(err("post_write"))?;
                conn.post_send(2, Vec::new(), Default::default())
                    .map_err(err("post_send"))?;
                let c = next(conn.recv_cq(), &conn, spin, "client recv")?;
                let d = t.elapsed();
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
                sbuf = Some(take_buf(
                    next(conn.send_cq(), &conn, spin, "client write")?,
                    "write",
                )?);
                next(conn.send_cq(), &conn, spin, "client send")?;
                Ok(d)
            })?;
            stop.store(true, Ordering::SeqCst);
            send_empty(&conn, spin, "client send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "write+send", size, samples))
}

fn eta_read_lat(cfg: EtaCfg, size: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, samples) = eta_pair(
        cfg,
        move |conn| {
            let region = conn
                .register(vec![0x5a; size], Access::REMOTE_READ)
                .map_err(err("register"))?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            srv_x.swap(region.remote(0))?;
            await_done(&conn, spin)
        },
        |conn| {
            let local = conn
                .register(vec![0; size], Access::LOCAL_WRITE)
                .map_err(err("register"))?;
            let peer = cli_x.swap(local.remote(0))?;
            let samples = sample(cap, max, 1.0, || {
                let t = Instant::now();
                conn.post_read(1, &local, 0, size as u32, peer)
                    .map_err(err("post_read"))?;
                next(conn.send_cq(), &conn, spin, "read")?;
                Ok(t.elapsed())
            })?;
            send_empty(&conn, spin, "done send")?;
            Ok(samples)
        },
    )?;
    Ok(lat_row(cfg.transport(), "read", size, samples))
}

/// Keeps `window` operations in flight until `cap` (at least `2 * window`, at most
/// `max` operations): `post(i, buf)` posts one; completions come from `cq`.
/// Returns the number posted (all of them completed).
#[allow(clippy::too_many_arguments)]
fn windowed(
    conn: &Connection,
    spin: Duration,
    size: usize,
    window: usize,
    cap: Duration,
    max: usize,
    start: Instant,
    mut post: impl FnMut(u64, Vec<u8>) -> Res<()>,
) -> Res<usize> {
    let mut free: Vec<Vec<u8>> = (0..window).map(|_| vec![0x5au8; size]).collect();
    let mut posted = 0usize;
    let mut done = 0usize;
    let min = 2 * window;
    loop {
        let more = posted < max && (posted < min || start.elapsed() < cap);
        if more {
            if let Some(buf) = free.pop() {
                post(posted as u64, buf)?;
                posted += 1;
                continue;
            }
        } else if done == posted {
            return Ok(posted);
        }
        let c = next(conn.send_cq(), conn, spin, "bandwidth completion")?;
        done += 1;
        if let Some(b) = c.buffer {
            free.push(b);
        } else {
            // Reads hand back no buffer: the slot is free again.
            free.push(Vec::new());
        }
    }
}

fn eta_send_bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (received, (msgs, secs)) = eta_pair(
        cfg,
        move |conn| {
            for _ in 0..2 * window {
                conn.post_recv(0, vec![0; size]).map_err(err("post_recv"))?;
            }
            let mut n = 0usize;
            loop {
                let c = next(conn.recv_cq(), &conn, spin, "server recv")?;
                if c.byte_len == 0 {
                    break;
                }
                n += 1;
                conn.post_recv(0, take_buf(c, "recv")?)
                    .map_err(err("post_recv"))?;
            }
            send_empty(&conn, spin, "server ack")?;
            Ok(n)
        },
        |conn| {
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, size, window, cap, max, t, |i, buf| {
                conn.post_send(i, buf, Default::default())
                    .map_err(err("post_send"))
            })?;
            send_empty(&conn, spin, "client end")?;
            await_done(&conn, spin)?;
            Ok((msgs, t.elapsed().as_secs_f64()))
        },
    )?;
    if received != msgs {
        return Err(format!(
            "send bw: server received {received} messages of {msgs}"
        ));
    }
    Ok(bw_row(cfg.transport(), "send", size, msgs, secs))
}

fn eta_write_bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, (msgs, secs)) = eta_pair(
        cfg,
        move |conn| {
            let region = conn
                .register(vec![0; size], Access::REMOTE_WRITE)
                .map_err(err("register"))?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            srv_x.swap(region.remote(0))?;
            await_done(&conn, spin)?;
            send_empty(&conn, spin, "server ack")
        },
        |conn| {
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            let peer = cli_x.swap(RemoteRegion {
                stag: eta_engine::Stag(0),
                to: 0,
            })?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, size, window, cap, max, t, |i, buf| {
                conn.post_write(i, buf, peer).map_err(err("post_write"))
            })?;
            // The Send follows the Writes on the wire: its arrival means all placed.
            send_empty(&conn, spin, "client end")?;
            await_done(&conn, spin)?;
            Ok((msgs, t.elapsed().as_secs_f64()))
        },
    )?;
    Ok(bw_row(cfg.transport(), "write", size, msgs, secs))
}

fn eta_read_bw(cfg: EtaCfg, size: usize, window: usize, cap: Duration, max: usize) -> Res<Row> {
    let spin = cfg.spin;
    let (srv_x, cli_x) = exchange_pair();
    let (_, (msgs, secs)) = eta_pair(
        cfg,
        move |conn| {
            let region = conn
                .register(vec![0x5a; size], Access::REMOTE_READ)
                .map_err(err("register"))?;
            conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
            srv_x.swap(region.remote(0))?;
            await_done(&conn, spin)
        },
        |conn| {
            let window = window.min(usize::from(conn.negotiated().ord).max(1));
            let local = conn
                .register(vec![0; size * window], Access::LOCAL_WRITE)
                .map_err(err("register"))?;
            let peer = cli_x.swap(local.remote(0))?;
            let t = Instant::now();
            let msgs = windowed(&conn, spin, 0, window, cap, max, t, |i, _| {
                let slot = (i % window as u64) * size as u64;
                conn.post_read(i, &local, slot, size as u32, peer)
                    .map_err(err("post_read"))
            })?;
            let secs = t.elapsed().as_secs_f64();
            send_empty(&conn, spin, "done send")?;
            Ok((msgs, secs))
        },
    )?;
    Ok(bw_row(cfg.transport(), "read", size, msgs, secs))
}

// ---------------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------------

fn status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Raises RLIMIT_NOFILE to `want` (or as close as allowed); returns the soft limit
/// in force afterwards and what happened.
fn raise_nofile(want: u64) -> (u64, String) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the live local `rl`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return (
            0,
            format!("getrlimit failed: {}", io::Error::last_os_error()),
        );
    }
    let (cur0, max0) = (rl.rlim_cur, rl.rlim_max);
    if cur0 >= want {
        return (cur0, format!("RLIMIT_NOFILE {cur0} (hard {max0}) suffices"));
    }
    let set = |cur: u64, max: u64| {
        let rl = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: setrlimit reads one valid rlimit from the live local `rl`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    if want <= max0 {
        return match set(want, max0) {
            Ok(()) => (
                want,
                format!("RLIMIT_NOFILE raised from {cur0} to {want} (hard {max0})"),
            ),
            Err(e) => (
                cur0,
                format!("RLIMIT_NOFILE stays {cur0} (hard {max0}): {e}"),
            ),
        };
    }
    // Above the hard limit needs CAP_SYS_RESOURCE: try, else settle for the hard limit.
    let above = match set(want, want) {
        Ok(()) => {
            return (
                want,
                format!("RLIMIT_NOFILE raised from {cur0} (hard {max0}) to {want} (hard {want})"),
            );
        }
        Err(e) => e,
    };
    let got = if cur0 < max0 && set(max0, max0).is_ok() {
        max0
    } else {
        cur0
    };
    (
        got,
        format!(
            "RLIMIT_NOFILE: {want} wanted, above the hard limit {max0} ({above}); soft limit \
             now {got}"
        ),
    )
}

fn idle_test(n: usize) -> Res<String> {
    let mut out = String::new();
    let needed = 2 * n as u64 + open_fds() as u64 + 64;
    let (limit, how) = raise_nofile(needed);
    let _ = writeln!(out, "{how}");
    let mut n = n;
    if limit < needed {
        let fit = (limit.saturating_sub(open_fds() as u64 + 64) / 2) as usize;
        let _ = writeln!(
            out,
            "fd limit too low: {n} connections need {needed} descriptors (2 per connection, \
             both ends here); measuring the largest that fits: {fit}"
        );
        n = fit;
    }
    if n == 0 {
        return Err(format!("{out}no idle connection fits the fd limit"));
    }
    let cq = CompletionQueue::new().map_err(err("completion queue"))?;
    let opts = Options {
        send_cq: Some(cq.clone()),
        recv_cq: Some(cq.clone()),
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", opts.clone()).map_err(err("bind"))?;
    let addr = listener.local_addr().map_err(err("local_addr"))?;
    let listener = Arc::new(listener);
    // One pair first so that the engine (threads, buffers) is in the baseline.
    let l2 = Arc::clone(&listener);
    let h = thread::spawn(move || l2.accept().map_err(|e| e.to_string()));
    let warm_c = Connection::connect(addr, opts.clone()).map_err(err("connect"))?;
    let warm_s = h
        .join()
        .map_err(|_| "accept thread panicked".to_string())??;
    thread::sleep(Duration::from_millis(200));
    let rss0 = status_kib("VmRSS:").unwrap_or(0);
    let anon0 = status_kib("RssAnon:").unwrap_or(0);
    let t = Instant::now();
    let l2 = Arc::clone(&listener);
    let acceptor = thread::spawn(move || -> Res<Vec<Connection>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(l2.accept().map_err(err("accept"))?);
        }
        Ok(v)
    });
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        match Connection::connect(addr, opts.clone()) {
            Ok(c) => clients.push(c),
            Err(e) => {
                drop(listener);
                return Err(format!("{out}connect #{i} failed: {e}"));
            }
        }
    }
    let servers = acceptor
        .join()
        .map_err(|_| "accept thread panicked".to_string())??;
    let setup = t.elapsed();
    // Let the engine take in the last connections and settle.
    thread::sleep(Duration::from_millis(500));
    let open = clients
        .iter()
        .chain(servers.iter())
        .filter(|c| c.state() == eta_engine::ConnState::Open)
        .count();
    let rss1 = status_kib("VmRSS:").unwrap_or(0);
    let anon1 = status_kib("RssAnon:").unwrap_or(0);
    let d = rss1.saturating_sub(rss0) as f64 * 1024.0;
    let da = anon1.saturating_sub(anon0) as f64 * 1024.0;
    let ends = 2 * n;
    let per_end = d / ends as f64;
    let _ = writeln!(
        out,
        "{n} idle connections ({ends} endpoints, both ends in this process, one shared \
         completion queue) set up in {:.2} s; {open}/{ends} endpoints open",
        setup.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "VmRSS {rss0} KiB -> {rss1} KiB (+{:.0} KiB); RssAnon {anon0} -> {anon1} KiB (+{:.0} KiB)",
        d / 1024.0,
        da / 1024.0
    );
    let _ = writeln!(
        out,
        "memory per idle connection endpoint = dRSS / {ends} (2 x {n}) = {:.0} B = {:.2} KiB \
         (per connection pair, both ends: {:.2} KiB); kernel socket buffers are not in RSS",
        per_end,
        per_end / 1024.0,
        d / n as f64 / 1024.0
    );
    let verdict = if per_end <= 16.0 * 1024.0 {
        "PASS"
    } else {
        "MISS"
    };
    let _ = writeln!(
        out,
        "[{verdict}] idle connection memory {:.2} KiB per endpoint (target <= 16 KiB beyond \
         the kernel's socket buffers)",
        per_end / 1024.0
    );
    // Close everything and wait until the engine is done with it: a busy engine
    // (20 000 closes) keeps a CPU awake and would flatter the raw TCP latencies
    // measured next.
    let t = Instant::now();
    let all: Vec<&Connection> = clients
        .iter()
        .chain(&servers)
        .chain([&warm_c, &warm_s])
        .collect();
    for c in &all {
        c.close();
    }
    let live = || {
        all.iter()
            .filter(|c| {
                matches!(
                    c.state(),
                    eta_engine::ConnState::Open | eta_engine::ConnState::Closing
                )
            })
            .count()
    };
    while live() > 0 && t.elapsed() < WAIT_TIMEOUT {
        thread::sleep(Duration::from_millis(10));
    }
    let left = live();
    let _ = writeln!(
        out,
        "closed in {:.2} s{}",
        t.elapsed().as_secs_f64(),
        if left > 0 {
            format!(" ({left} endpoints still closing)")
        } else {
            String::new()
        }
    );
    drop(all);
    drop(clients);
    drop(servers);
    drop(warm_c);
    drop(warm_s);
    // Let the engine reap the last ones and park.
    thread::sleep(Duration::from_millis(200));
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

fn size_label(s: usize) -> String {
    if s >= 1 << 20 && s % (1 << 20) == 0 {
        format!("{}M", s >> 20)
    } else if s >= 1 << 10 && s % (1 << 10) == 0 {
        format!("{}K", s >> 10)
    } else {
        s.to_string()
    }
}

fn cfg_cols(t: Transport) -> (&'static str, &'static str, &'static str) {
    match t {
        Transport::Tcp => ("tcp", "-", "-"),
        Transport::Eta { crc, markers } => ("eta", onoff(crc), onoff(markers)),
    }
}

fn find<'a>(rows: &'a [Row], t: Transport, op: &str, kind: Kind, size: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.transport == t && r.op == op && r.kind == kind && r.size == size)
}

fn print_tables(rows: &[Row]) {
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

fn write_csv(path: &str, rows: &[Row]) -> io::Result<()> {
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

/// Evaluates the targets; returns (lines, misses).
fn targets(rows: &[Row]) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut misses = 0;
    let mut check = |name: String,
                     value: Option<(f64, f64)>,
                     limit: f64,
                     at_most: bool,
                     unit: &str| {
        match value {
            Some((eta, tcp)) => {
                let ratio = eta / tcp;
                let ok = if at_most {
                    ratio <= limit
                } else {
                    ratio >= limit
                };
                if !ok {
                    misses += 1;
                }
                lines.push(format!(
                    "[{}] {name}: eta {eta:.2} {unit} vs tcp {tcp:.2} {unit} = {ratio:.2}x (target {} {limit:.2}x)",
                    if ok { "PASS" } else { "MISS" },
                    if at_most { "<=" } else { ">=" },
                ));
            }
            None => {
                misses += 1;
                lines.push(format!("[MISS] {name}: not measured in this run"));
            }
        }
    };
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
    for size in [1, 64] {
        let (_, crc, _) = cfg_cols(lat_t);
        let v = find(rows, lat_t, "send", Kind::Lat, size)
            .zip(find(rows, Transport::Tcp, "send", Kind::Lat, size))
            .map(|(e, t)| (e.lat_med, t.lat_med));
        check(
            format!("DDP Send latency {size} B (median half RTT, crc {crc}, markers off)"),
            v,
            1.25,
            true,
            "us",
        );
    }
    for (markers, limit) in [(false, 0.90), (true, 0.80)] {
        for op in ["send", "write"] {
            let t = Transport::Eta { crc: true, markers };
            let v = find(rows, t, op, Kind::Bw, 1 << 20)
                .zip(find(rows, Transport::Tcp, "send", Kind::Bw, 1 << 20))
                .map(|(e, t)| (e.bw, t.bw));
            check(
                format!("1 MiB {op} bandwidth, crc on, markers {}", onoff(markers)),
                v,
                limit,
                false,
                "MB/s",
            );
        }
    }
    (lines, misses)
}

// ---------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------

type Test = Box<dyn Fn(Duration) -> Res<Row>>;

/// The tests in running order: size by size, raw TCP first, then every eta
/// configuration and operation at that size, so that slow drifts of the machine
/// affect a ratio's two sides alike.
fn plan(a: &Args) -> Vec<(String, Test)> {
    let mut tests: Vec<(String, Test)> = Vec::new();
    let (iters, msgs, window, spin) = (a.max_iters, a.max_msgs, a.window, a.app_spin);
    for &size in &a.sizes {
        if a.lat {
            tests.push((
                format!("tcp lat {size}"),
                Box::new(move |cap| tcp_lat(size, cap, iters)),
            ));
        }
        if a.bw {
            tests.push((
                format!("tcp bw {size}"),
                Box::new(move |cap| tcp_bw(size, cap, msgs)),
            ));
        }
        for &crc in &a.crc {
            for &markers in &a.markers {
                let cfg = EtaCfg { crc, markers, spin };
                for &op in &a.ops {
                    let name = |k: &str| {
                        format!(
                            "eta {} {k} {size} (crc {} markers {})",
                            op.name(),
                            onoff(crc),
                            onoff(markers)
                        )
                    };
                    if a.lat {
                        let poll = a.write_lat != WriteLat::Send;
                        let send = a.write_lat != WriteLat::Poll;
                        match op {
                            Op::Send => tests.push((
                                name("lat"),
                                Box::new(move |cap| eta_send_lat(cfg, size, cap, iters)),
                            )),
                            Op::Write if poll => tests.push((
                                name("lat(poll)"),
                                Box::new(move |cap| eta_write_lat_poll(cfg, size, cap, iters)),
                            )),
                            _ => {}
                        }
                        match op {
                            Op::Write if send => tests.push((
                                name("lat(+send)"),
                                Box::new(move |cap| eta_write_lat_send(cfg, size, cap, iters)),
                            )),
                            Op::Read => tests.push((
                                name("lat"),
                                Box::new(move |cap| eta_read_lat(cfg, size, cap, iters)),
                            )),
                            _ => {}
                        }
                    }
                    if a.bw {
                        let f: Test = match op {
                            Op::Send => {
                                Box::new(move |cap| eta_send_bw(cfg, size, window, cap, msgs))
                            }
                            Op::Write => {
                                Box::new(move |cap| eta_write_bw(cfg, size, window, cap, msgs))
                            }
                            Op::Read => {
                                Box::new(move |cap| eta_read_bw(cfg, size, window, cap, msgs))
                            }
                        };
                        tests.push((name("bw"), f));
                    }
                }
            }
        }
    }
    tests
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("eta-perf: {e}");
            std::process::exit(2);
        }
    };
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| "(default)".into());
    println!(
        "eta-perf{}: 127.0.0.1, {} CPUs; ETA_ENGINES={} ETA_SPIN_US={} ETA_ENGINE_CPUS={}; \
         app spin {} us; window {}; write latency: {}",
        if a.quick { " --quick" } else { "" },
        thread::available_parallelism().map_or(0, |n| n.get()),
        env("ETA_ENGINES"),
        env("ETA_SPIN_US"),
        env("ETA_ENGINE_CPUS"),
        a.app_spin.as_micros(),
        a.window,
        match a.write_lat {
            WriteLat::Poll => "poll the last octet of the own region (ib_write_lat style)",
            WriteLat::Send => "Write then a 0-octet Send as notification",
            WriteLat::Both =>
                "both (write = last-octet polling, write+send = Write + 0-octet Send)",
        }
    );
    let mut failed = false;
    // The idle-memory verdict, repeated with the others at the end.
    let mut idle_verdict = None;
    // Idle connections first: a fresh heap makes the RSS delta honest.
    if let Some(n) = a.idle {
        println!();
        println!("== Idle connections ==");
        match idle_test(n) {
            Ok(s) => {
                print!("{s}");
                idle_verdict = s.lines().find(|l| l.starts_with('[')).map(str::to_string);
            }
            Err(e) => {
                println!("idle test failed: {e}");
                idle_verdict = Some(format!("[MISS] idle connection memory: test failed: {e}"));
                failed = true;
            }
        }
    }
    if !a.bench {
        std::process::exit(i32::from(failed));
    }
    let tests = plan(&a);
    let cap = Duration::from_secs_f64(a.duration / tests.len().max(1) as f64);
    println!(
        "{} tests, about {:.0} ms each (--duration {} s)",
        tests.len(),
        cap.as_secs_f64() * 1e3,
        a.duration
    );
    let t0 = Instant::now();
    let mut rows = Vec::new();
    for (name, test) in &tests {
        match test(cap) {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("FAILED {name}: {e}");
                failed = true;
            }
        }
    }
    print_tables(&rows);
    println!();
    println!("all tests took {:.1} s", t0.elapsed().as_secs_f64());
    if let Some(path) = &a.csv {
        match write_csv(path, &rows) {
            Ok(()) => println!("CSV written to {path}"),
            Err(e) => {
                eprintln!("eta-perf: writing {path}: {e}");
                failed = true;
            }
        }
    }
    println!();
    println!("== Targets (ratios to raw TCP measured in this run) ==");
    let (mut lines, mut misses) = targets(&rows);
    if let Some(v) = idle_verdict {
        misses += usize::from(v.starts_with("[MISS]"));
        lines.push(v);
    }
    for l in &lines {
        println!("{l}");
    }
    println!("{} of {} targets met", lines.len() - misses, lines.len());
    if failed {
        std::process::exit(1);
    }
}

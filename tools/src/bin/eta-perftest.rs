//! eta-perftest: perftest's `ib_write_bw -R`, `ib_read_bw -R` and `ib_send_bw -R`
//! over eta, client and server, compatible with perftest 4.5 on Linux soft-iWARP
//! (siw): the control connection and its exchanges (`eta_tools::perftest`), then
//! the test connection with RDMA Writes into, or RDMA Reads from, the server's
//! buffer, or Sends to the server's receives under perftest's iWARP credits.
//!
//! The client measures and reports like perftest (one QP, not duplex); for `write`
//! it ends the test with a 1-octet RDMA Read, whose completion means every Write
//! was placed at the server, so the figures cover delivery. For `write`
//! and `read` the server prints the client's report, and checks it: the message
//! size and iterations it was started with, and, for `write`, that at least that
//! many payload octets arrived on the test connection. For `send` the server
//! checks every message's length and count and reports its own figures. Exit
//! status 0 on success, 1 on any failure (a message on stderr), 2 on bad usage.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use eta_engine::{
    Access, CompletionOp, Connection, Error, Listener, MemoryRegion, Options, RemoteRegion,
    SendOptions, Stag,
};
use eta_tools::args::{exit_status, parse_each, parse_or_exit};
use eta_tools::endpoint::{
    Res, accept, listen, message, negotiated_line, resolve, separate_cqs, setup_error, then_close,
    wait_cq, wait_send_op,
};
use eta_tools::perftest::{
    BwReport, CACHE_LINE, CTRL_RECV_LEN, MTU_1024, PAGE_SIZE, PingpongDest, REPORT_HEADER,
    credit_due, mtu_octets, parse_version, rx_depth, version_octets,
};

const HELP: &str = "\
eta-perftest: perftest's ib_write_bw / ib_read_bw / ib_send_bw with -R (rdma_cm) over eta

USAGE:
  eta-perftest write|read|send [-s SIZE] [-n ITERS] [-p PORT] [-t SECS] [-v] [MPA options] SERVER
  eta-perftest write|read|send [-s SIZE] [-n ITERS] [-p PORT] [-t SECS] [-v] [-b ADDR] [MPA options]

  write / read     the test: RDMA Writes into / RDMA Reads from the server's buffer
  send             the test: Sends into the server's receives
  SERVER           client role: the server's address (as perftest, last argument)
  -b ADDR          server role: the address to bind (default 0.0.0.0)
  -s SIZE          message size (default 65536, perftest's)
  -n ITERS         iterations (default 5000, perftest's)
  -p PORT          TCP port of both connections (default 18515, perftest's)
  -t SECS          time-out of every wait (default 30)
  -R               accepted for perftest compatibility (always rdma_cm)
  -v               print every exchange on stderr
  -h, --help       this text
";

/// Work requests in flight on the test connection.
const WINDOW: usize = 64;
/// Connection attempts for the test connection: the server listens for it only
/// after the first handshake (perftest's client retries 10 times, 100 ms apart).
const CONNECT_TRIES: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Write,
    Read,
    Send,
}

#[derive(Debug)]
struct Args {
    verb: Verb,
    server: Option<String>,
    bind: String,
    port: u16,
    size: usize,
    iters: u64,
    timeout: Duration,
    verbose: bool,
    opts: Options,
}

fn parse_args() -> Result<Args, String> {
    let mut verb = None;
    let mut a = Args {
        verb: Verb::Write,
        server: None,
        bind: "0.0.0.0".into(),
        port: 18515,
        size: 65536,
        iters: 5000,
        timeout: Duration::from_secs(30),
        verbose: false,
        opts: Options::default(),
    };
    let mut opts = Options::default();
    parse_each(&mut opts, |arg, argv| {
        match arg {
            "write" => verb = Some(Verb::Write),
            "read" => verb = Some(Verb::Read),
            "send" => verb = Some(Verb::Send),
            "-b" => a.bind = argv.value("-b")?,
            "-s" => a.size = argv.number("-s")?,
            "-n" => a.iters = argv.number("-n")?,
            "-p" => a.port = argv.number("-p")?,
            "-t" => a.timeout = argv.seconds("-t")?,
            "-R" => {}
            "-v" => a.verbose = true,
            s if !s.starts_with('-') && a.server.is_none() => a.server = Some(s.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    a.opts = opts;
    a.verb = verb.ok_or("name the test: write, read or send")?;
    if a.size == 0 || a.size > u32::MAX as usize || a.iters == 0 {
        return Err("-s and -n must be at least 1 (and -s below 4 GiB)".into());
    }
    // A listener still coming up must be retried, not fallen back from.
    a.opts.rev1_fallback = false;
    separate_cqs(&mut a.opts)?;
    Ok(a)
}

/// The control connection: every exchange is one Send each way, the client first.
struct Ctrl<'a> {
    conn: &'a Connection,
    client: bool,
    a: &'a Args,
}

impl<'a> Ctrl<'a> {
    /// The control connection `conn` of this side, its one receive posted.
    fn new(conn: &'a Connection, client: bool, a: &'a Args) -> Res<Self> {
        conn.post_recv(0, vec![0; CTRL_RECV_LEN])
            .map_err(|e| format!("posting the control receive: {e}"))?;
        Ok(Self { conn, client, a })
    }

    fn send(&self, b: &[u8], what: &str) -> Res<()> {
        self.conn
            .post_send(0, b.to_vec(), SendOptions::default())
            .map_err(|e| format!("sending {what}: {e}"))?;
        wait_send_op(self.conn, CompletionOp::Send, what, self.a.timeout).map(|_| ())
    }

    fn recv(&self, what: &str) -> Res<Vec<u8>> {
        let got = message(wait_cq(self.conn, true, what, self.a.timeout)?);
        self.conn
            .post_recv(0, vec![0; CTRL_RECV_LEN])
            .map_err(|e| format!("reposting the control receive: {e}"))?;
        Ok(got)
    }

    /// One exchange of `mine` against the peer's message of the same length.
    fn xchg(&self, mine: &[u8], what: &str) -> Res<Vec<u8>> {
        let theirs = if self.client {
            self.send(mine, what)?;
            self.recv(what)?
        } else {
            let theirs = self.recv(what)?;
            self.send(mine, what)?;
            theirs
        };
        if theirs.len() != mine.len() {
            return Err(format!(
                "{what}: the peer sent {} octets, perftest sends {}",
                theirs.len(),
                mine.len()
            ));
        }
        if self.a.verbose {
            eprintln!("eta-perftest: {what}: sent {mine:02x?}, got {theirs:02x?}");
        }
        Ok(theirs)
    }

    fn handshake(&self, mine: &PingpongDest, what: &str) -> Res<PingpongDest> {
        PingpongDest::parse(&self.xchg(&mine.emit(), what)?)
    }

    /// Versions, system data and MTU; returns the cycle buffer both sides use.
    fn preamble(&self) -> Res<u32> {
        let v = parse_version(&self.xchg(&version_octets(), "the version exchange")?)?;
        eprintln!("eta-perftest: peer perftest version {v}");
        let int = |v: u32, what: &str| -> Res<u32> {
            let b = self.xchg(&v.to_be_bytes(), what)?;
            Ok(u32::from_be_bytes(b[..4].try_into().expect("4 octets")))
        };
        let cycle = int(PAGE_SIZE, "the cycle-buffer exchange")?.max(PAGE_SIZE);
        int(CACHE_LINE, "the cache-line exchange")?;
        self.xchg(&mtu_octets(MTU_1024), "the MTU exchange")?;
        Ok(cycle)
    }

    /// The report exchange (`xchg_bw_reports`): five 8-octet fields.
    fn reports(&self, mine: &BwReport) -> Res<BwReport> {
        let mut parts = Vec::with_capacity(5);
        for (i, p) in mine.emit().iter().enumerate() {
            parts.push(self.xchg(p, &format!("report field {i}"))?);
        }
        BwReport::parse(&parts)
    }
}

/// This side's `pingpong_dest` for the test buffer.
fn my_dest(test: &Connection, region: &MemoryRegion) -> PingpongDest {
    let r = region.remote(0);
    PingpongDest {
        out_reads: u32::from(test.negotiated().ird.max(1)),
        qpn: (test.id() & 0xff_ffff) as u32,
        psn: std::process::id() & 0xff_ffff,
        rkey: r.stag.0,
        vaddr: r.to,
        ..Default::default()
    }
}

/// Connects, retrying while the server is not listening yet.
fn connect_retry(addr: SocketAddr, opts: &Options, what: &str) -> Res<Connection> {
    let mut last = String::new();
    for _ in 0..CONNECT_TRIES {
        match Connection::connect(addr, opts.clone()) {
            Ok(c) => return Ok(c),
            Err(e @ (Error::PeerClosed | Error::Io(_) | Error::ConnectionLost(_))) => {
                last = setup_error(&e, opts);
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("{what}: {}", setup_error(&e, opts))),
        }
    }
    Err(format!(
        "{what}: failed {CONNECT_TRIES} times, last: {last}"
    ))
}

fn run_client(a: &Args, server: &str) -> Res<()> {
    let addr = resolve(server, a.port)?;
    let ctrl_conn = connect_retry(addr, &a.opts, "the control connection")?;
    eprintln!("eta-perftest: control {}", negotiated_line(&ctrl_conn));
    then_close(ctrl_conn, |c| {
        let ctrl = Ctrl::new(c, true, a)?;
        // perftest sleeps a second here; keep it. siw as Responder ignores FPDUs
        // that arrive between its MPA Reply and the switch of the socket to its
        // receive path until more data comes (seen through slirp with the RTR and
        // the first Send 22 µs apart: both sat unread until the FIN).
        std::thread::sleep(Duration::from_secs(1));
        client_session(a, &ctrl, addr)
    })
}

fn client_session(a: &Args, ctrl: &Ctrl, addr: SocketAddr) -> Res<()> {
    ctrl.preamble()?;
    let zero = PingpongDest::default();
    ctrl.handshake(&zero, "the handshake before the test connection")?;
    let test = connect_retry(addr, &a.opts, "the test connection")?;
    eprintln!("eta-perftest: test {}", negotiated_line(&test));
    then_close(test, |t| client_test(a, ctrl, t))
}

fn client_test(a: &Args, ctrl: &Ctrl, test: &Connection) -> Res<()> {
    let fill: Vec<u8> = (0..a.size).map(|i| i as u8).collect();
    let bufs = TestBuffers::register(test, fill.clone(), Access::LOCAL_WRITE)?;
    let (mine, rem) = bufs.exchange(a, ctrl, test)?;
    eprintln!(
        "eta-perftest: remote buffer: rkey {:#010x} vaddr {:#x} out_reads {}",
        rem.rkey, rem.vaddr, rem.out_reads
    );
    let remote = RemoteRegion {
        stag: Stag(rem.rkey),
        to: rem.vaddr,
    };
    if a.verb == Verb::Send {
        ctrl.handshake(&mine, "the handshake before the test")?;
    }
    let t0 = Instant::now();
    match a.verb {
        Verb::Send => send_test(a, test, &fill, &bufs.credits)?,
        _ => rdma_test(a, test, &fill, &bufs.region, remote)?,
    }
    let report = BwReport::measured(a.size as u64, a.iters, t0.elapsed().as_secs_f64());
    if a.verb != Verb::Send {
        ctrl.handshake(&mine, "the handshake after the test")?;
        let theirs = ctrl.reports(&report)?;
        if a.verbose {
            eprintln!("eta-perftest: the server's report: {theirs:?}");
        }
    }
    ctrl.handshake(&mine, "the closing handshake")?;
    println!("{REPORT_HEADER}");
    println!("{}", report.line());
    Ok(())
}

/// The test buffer and the credit buffer of one side.
struct TestBuffers {
    region: MemoryRegion,
    credits: MemoryRegion,
}

impl TestBuffers {
    /// Registers `fill` as the test buffer with `access`, and a credit buffer the
    /// peer may RDMA-Write.
    fn register(test: &Connection, fill: Vec<u8>, access: Access) -> Res<Self> {
        let region = test
            .register(fill, access)
            .map_err(|e| format!("registering the test buffer: {e}"))?;
        let credits = test
            .register(vec![0; 8], Access::LOCAL_WRITE | Access::REMOTE_WRITE)
            .map_err(|e| format!("registering the credit buffer: {e}"))?;
        Ok(Self { region, credits })
    }

    /// The handshake after the test connection, then the three handshakes of the
    /// buffers: ib_send_bw advertises its credit buffer, the others their test
    /// buffer. Returns this side's `pingpong_dest` and the peer's.
    fn exchange(
        &self,
        a: &Args,
        ctrl: &Ctrl,
        test: &Connection,
    ) -> Res<(PingpongDest, PingpongDest)> {
        ctrl.handshake(
            &PingpongDest::default(),
            "the handshake after the test connection",
        )?;
        let advertised = match a.verb {
            Verb::Send => &self.credits,
            _ => &self.region,
        };
        let mine = my_dest(test, advertised);
        let rem = ctrl.handshake(&mine, "the buffer handshake")?;
        ctrl.handshake(&mine, "the second buffer handshake")?;
        ctrl.handshake(&mine, "the handshake after RTR")?;
        Ok((mine, rem))
    }
}

/// `-n` RDMA Writes of `fill`, or RDMA Reads into `region`, at most `WINDOW` (and
/// for Reads the ORD) in flight.
fn rdma_test(
    a: &Args,
    test: &Connection,
    fill: &[u8],
    region: &MemoryRegion,
    remote: RemoteRegion,
) -> Res<()> {
    let window = match a.verb {
        Verb::Read => WINDOW.min(usize::from(test.negotiated().ord.max(1))),
        _ => WINDOW,
    } as u64;
    let (mut posted, mut done) = (0u64, 0u64);
    while done < a.iters {
        while posted < a.iters && posted - done < window {
            let r = match a.verb {
                Verb::Read => test.post_read(posted, region, 0, a.size as u32, remote),
                _ => test.post_write(posted, fill.to_vec(), remote),
            };
            r.map_err(|e| format!("posting operation {posted}: {e}"))?;
            posted += 1;
        }
        let what = format!("the completion of operation {done} of {}", a.iters);
        wait_cq(test, false, &what, a.timeout)?;
        done += 1;
    }
    if a.verb == Verb::Write {
        // A Write completes when the kernel has taken its octets, and perftest's
        // server tears the test connection down as soon as the client's report
        // arrives: unsent octets would be lost (seen: a reset after 3.7 of 6.5 MB).
        // A Read Request is processed after every Write before it (RDMAP
        // ordering), so its completion means every Write was placed.
        test.post_read(a.iters, region, 0, 1, remote)
            .map_err(|e| format!("posting the Read that follows the Writes: {e}"))?;
        wait_send_op(
            test,
            CompletionOp::Read,
            "the Read after the Writes",
            a.timeout,
        )?;
    }
    Ok(())
}

/// `-n` Sends of `fill`, fewer than `rx_depth` beyond the receive count the server
/// last RDMA-Wrote into `credits`, and at most `WINDOW` in flight.
fn send_test(a: &Args, test: &Connection, fill: &[u8], credits: &MemoryRegion) -> Res<()> {
    let depth = rx_depth(a.iters);
    let deadline = Instant::now() + a.timeout;
    let (mut posted, mut done) = (0u64, 0u64);
    while done < a.iters {
        let mut word = [0u8; 4];
        credits
            .read(0, &mut word)
            .map_err(|e| format!("reading the credit buffer: {e}"))?;
        let credit = u64::from(u32::from_le_bytes(word));
        while posted < a.iters && posted - done < WINDOW as u64 && posted + 1 - credit < depth {
            test.post_send(posted, fill.to_vec(), SendOptions::default())
                .map_err(|e| format!("posting Send {posted}: {e}"))?;
            posted += 1;
        }
        match test.send_cq().wait(Some(Duration::from_millis(1))) {
            Err(e) => return Err(format!("waiting for Send completions: {e}")),
            Ok(Some(c)) if c.status != eta_engine::CompletionStatus::Success => {
                return Err(format!("Send {done}: completion {:?}", c.status));
            }
            Ok(Some(_)) => done += 1,
            Ok(None) if Instant::now() > deadline => {
                return Err(format!(
                    "timed out with {done} of {} Sends done (credit {credit}, {posted} posted)",
                    a.iters
                ));
            }
            Ok(None) => {}
        }
    }
    Ok(())
}

fn run_server(a: &Args) -> Res<()> {
    let listener = listen("eta-perftest", resolve(&a.bind, a.port)?, &a.opts)?;
    let ctrl_conn = accept("eta-perftest", &listener, &a.opts, "the control connection")?;
    then_close(ctrl_conn, |c| {
        server_session(a, &Ctrl::new(c, false, a)?, &listener)
    })
}

fn server_session(a: &Args, ctrl: &Ctrl, listener: &Listener) -> Res<()> {
    let cycle = ctrl.preamble()?;
    let zero = PingpongDest::default();
    ctrl.handshake(&zero, "the handshake before the test connection")?;
    let test = accept("eta-perftest", listener, &a.opts, "the test connection")?;
    then_close(test, |t| server_test(a, ctrl, t, cycle))
}

fn server_test(a: &Args, ctrl: &Ctrl, test: &Connection, cycle: u32) -> Res<()> {
    // The client's operations stay within max(size, cycle buffer) of the address
    // advertised; twice that, as perftest allocates.
    let len = 2 * a.size.max(cycle as usize);
    let fill: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let access = Access::LOCAL_WRITE | Access::REMOTE_WRITE | Access::REMOTE_READ;
    let bufs = TestBuffers::register(test, fill, access)?;
    let (mine, rem) = bufs.exchange(a, ctrl, test)?;
    eprintln!(
        "eta-perftest: client: out_reads {}, buffer rkey {:#010x} vaddr {:#x}; this side: rkey {:#010x} vaddr {:#x}",
        rem.out_reads, rem.rkey, rem.vaddr, mine.rkey, mine.vaddr
    );
    if a.verb == Verb::Send {
        let credit_to = RemoteRegion {
            stag: Stag(rem.rkey),
            to: rem.vaddr,
        };
        let depth = rx_depth(a.iters);
        for i in 0..depth.min(a.iters) {
            test.post_recv(i, vec![0; a.size])
                .map_err(|e| format!("posting receive {i}: {e}"))?;
        }
        ctrl.handshake(&mine, "the handshake before the test")?;
        let secs = receive_test(a, test, credit_to, depth)?;
        ctrl.handshake(&mine, "the closing handshake")?;
        println!("{REPORT_HEADER}");
        println!(
            "{}",
            BwReport::measured(a.size as u64, a.iters, secs).line()
        );
        return Ok(());
    }
    let before = test.rx_stats();
    // The client runs its test now; this side waits in the next handshake.
    ctrl.handshake(&mine, "the handshake after the test")?;
    let after = test.rx_stats();
    let theirs = ctrl.reports(&BwReport::default())?;
    ctrl.handshake(&mine, "the closing handshake")?;
    println!("{REPORT_HEADER}");
    println!("{}", theirs.line());
    if theirs.size != a.size as u64 || theirs.iters != a.iters {
        return Err(format!(
            "the client reports {} x {} octets, this server expected {} x {}",
            theirs.iters, theirs.size, a.iters, a.size
        ));
    }
    if a.verb == Verb::Write {
        let placed = (after.direct + after.copied) - (before.direct + before.copied);
        let want = a.size as u64 * a.iters;
        eprintln!("eta-perftest: {placed} octets of RDMA Write payload placed during the test");
        if placed < want {
            return Err(format!(
                "only {placed} octets arrived on the test connection, {want} written"
            ));
        }
    }
    Ok(())
}

/// Receives `-n` Sends of `-s` octets, reposting receives and RDMA-Writing the
/// receive count to the client's credit buffer as perftest does. Returns the
/// seconds from the first receive to the last.
fn receive_test(a: &Args, test: &Connection, credit_to: RemoteRegion, depth: u64) -> Res<f64> {
    let mut posted = depth.min(a.iters);
    let mut t0 = None;
    for n in 1..=a.iters {
        let what = format!("Send {} of {}", n - 1, a.iters);
        let c = wait_cq(test, true, &what, a.timeout)?;
        t0.get_or_insert_with(Instant::now);
        if c.byte_len as usize != a.size {
            return Err(format!(
                "{what}: {} octets, expected {}",
                c.byte_len, a.size
            ));
        }
        if posted < a.iters {
            test.post_recv(posted, message(c))
                .map_err(|e| format!("reposting a receive: {e}"))?;
            posted += 1;
        }
        if credit_due(n, depth) {
            test.post_write(n, (n as u32).to_le_bytes().to_vec(), credit_to)
                .map_err(|e| format!("posting the credit Write after {n} receives: {e}"))?;
        }
    }
    // Every credit Write must have gone out before the closing handshake.
    let writes = (1..=a.iters).filter(|&n| credit_due(n, depth)).count();
    for i in 0..writes {
        wait_send_op(
            test,
            CompletionOp::Write,
            &format!("credit Write {i}"),
            a.timeout,
        )?;
    }
    eprintln!(
        "eta-perftest: received {} Sends of {} octets; {writes} credit Writes",
        a.iters, a.size
    );
    Ok(t0.map_or(0.0, |t| t.elapsed().as_secs_f64()))
}

fn main() -> ExitCode {
    let a = match parse_or_exit("eta-perftest", HELP, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (role, res) = match &a.server {
        Some(s) => ("client", run_client(&a, s)),
        None => ("server", run_server(&a)),
    };
    ExitCode::from(exit_status("eta-perftest", role, res))
}

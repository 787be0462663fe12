//! Where the two ends of a test run: the server half in the peer process (the
//! default, each end with its own engine) or in a thread of this process
//! (`--one-process`, one engine for both). The client half always runs in the
//! calling thread. Each run gives its row with the CPU seconds of both ends.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use eta_engine::{Connection, Listener};

use super::cpu::Stopwatch;
use super::eta::{Swap, channel_pair};
use super::measure::Row;
use super::peer::Peer;
use super::spec::Spec;
use super::{Res, err};

/// The two ends of every test.
pub enum Ends {
    /// Server half in a thread of this process, one engine for both ends.
    Threads,
    /// Server half in the peer process, each end with its own engine.
    Processes(Peer),
}

impl Ends {
    /// Two processes (spawns the peer), or one with `one_process`.
    pub fn new(one_process: bool) -> Res<Self> {
        Ok(if one_process {
            Ends::Threads
        } else {
            Ends::Processes(Peer::spawn()?)
        })
    }

    /// How the ends are placed, for the report's header.
    pub fn describe(&self) -> String {
        match self {
            Ends::Threads => "one process (server a thread; one engine for both ends)".into(),
            Ends::Processes(p) => format!(
                "two processes (server: peer process {}; each end its own engine)",
                p.pid()
            ),
        }
    }

    /// Runs `spec` for `cap`: gives the client's row with `cpu` set to the CPU
    /// seconds of both ends. After a failure in two processes the peer is replaced
    /// (it may be stuck in the failed test).
    pub fn run(&mut self, spec: &Spec, cap: Duration) -> Res<Row> {
        match self {
            Ends::Threads => in_threads(spec, cap),
            Ends::Processes(peer) => {
                let r = in_processes(peer, spec, cap);
                if let Err(e) = &r {
                    *peer = Peer::spawn().map_err(|e2| format!("{e}; then {e2}"))?;
                }
                r
            }
        }
    }
}

/// Both halves in this process; the CPU is this process's over the whole test.
fn in_threads(spec: &Spec, cap: Duration) -> Res<Row> {
    let cpu = Stopwatch::start();
    let (srv_x, cli_x) = channel_pair();
    let spec2 = *spec;
    let (addr, server) = if spec.test.is_tcp() {
        let l = TcpListener::bind("127.0.0.1:0").map_err(err("tcp bind"))?;
        let addr = l.local_addr().map_err(err("tcp local_addr"))?;
        let serve = move || {
            let (s, _) = l.accept().map_err(err("tcp accept"))?;
            s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
            spec2.serve_tcp(s)
        };
        (
            addr,
            thread::Builder::new()
                .name("perf-tcp-server".into())
                .spawn(serve),
        )
    } else {
        let l = Listener::bind("127.0.0.1:0", spec.cfg.options()?).map_err(err("eta bind"))?;
        let addr = l.local_addr().map_err(err("eta local_addr"))?;
        let serve = move || spec2.serve_eta(l.accept().map_err(err("eta accept"))?, &srv_x);
        (
            addr,
            thread::Builder::new()
                .name("perf-eta-server".into())
                .spawn(serve),
        )
    };
    let server = server.map_err(err("spawn"))?;
    let rc = client(spec, addr, &cli_x, cap);
    let rs = server
        .join()
        .map_err(|_| "server thread panicked".to_string())?;
    // The client's error is the cause; the server's is usually its consequence.
    let (count, mut row) = match (rs, rc) {
        (Ok(count), Ok(row)) => (count, row),
        (_, Err(e)) | (Err(e), _) => return Err(e),
    };
    spec.check(count, &row)?;
    row.cpu = cpu.elapsed();
    Ok(row)
}

/// Server half in the peer process; the CPU is the sum of both processes'.
fn in_processes(peer: &Peer, spec: &Spec, cap: Duration) -> Res<Row> {
    peer.ctl.send(&format!("test {}", spec.encode()))?;
    let port: u16 = peer
        .ctl
        .expect("port")?
        .parse()
        .map_err(|_| "peer: bad port")?;
    let cpu = Stopwatch::start();
    let mut row = client(
        spec,
        SocketAddr::from(([127, 0, 0, 1], port)),
        &peer.ctl,
        cap,
    )?;
    let mine = cpu.elapsed();
    let done = peer.ctl.expect("done")?;
    let bad = || format!("peer: bad done line {done:?}");
    let (count, theirs) = done.split_once(' ').ok_or_else(bad)?;
    let count: u64 = count.parse().map_err(|_| bad())?;
    let theirs: f64 = theirs.parse().map_err(|_| bad())?;
    spec.check(count, &row)?;
    row.cpu = mine + theirs;
    Ok(row)
}

/// The client half: connects to `addr` and runs `spec`'s client (regions swapped
/// through `x`).
fn client(spec: &Spec, addr: SocketAddr, x: &dyn Swap, cap: Duration) -> Res<Row> {
    if spec.test.is_tcp() {
        let s = TcpStream::connect(addr).map_err(err("tcp connect"))?;
        s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
        return spec.client_tcp(s, cap);
    }
    let cfg = spec.cfg;
    let conn = Connection::connect(addr, cfg.options()?).map_err(err("eta connect"))?;
    let n = conn.negotiated();
    if n.crc != cfg.crc || n.markers_tx != cfg.markers || n.markers_rx != cfg.markers {
        eprintln!(
            "warning: asked for crc {} markers {}, negotiated crc {} markers tx/rx {}/{}",
            cfg.crc, cfg.markers, n.crc, n.markers_tx, n.markers_rx
        );
    }
    spec.client_eta(conn, x, cap)
}

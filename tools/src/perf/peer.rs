//! The peer process: eta-perf runs the server half of every test in a second
//! process of its own (`eta-perf --serve`, spawned from the current executable), so
//! that each end has its own engine, as deployed.
//!
//! The two talk over the child's stdin and stdout, one line per message:
//!
//! | from   | line                 | meaning                                          |
//! |--------|----------------------|--------------------------------------------------|
//! | parent | `test SPEC`          | run the server half of [`Spec::parse`]`(SPEC)`   |
//! | child  | `port N`             | listening on 127.0.0.1:N; connect now            |
//! | both   | `region STAG TO`     | this end's region (for RDMA Write and Read)      |
//! | child  | `done COUNT CPU`     | server half ended; its count and CPU seconds     |
//! | child  | `error MESSAGE`      | the server half (or the spec) failed             |
//! | parent | `quit` (or EOF)      | the child exits                                  |

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Mutex;

use eta_engine::{Listener, RemoteRegion, Stag};

use super::cpu::Stopwatch;
use super::eta::Swap;
use super::spec::Spec;
use super::{Res, err};

/// A line-based control channel (a pair of pipes).
pub struct Control {
    r: Mutex<Box<dyn BufRead + Send>>,
    w: Mutex<Box<dyn Write + Send>>,
}

impl Control {
    /// The channel over this process's stdin and stdout (the child's end).
    pub fn stdio() -> Self {
        Self {
            r: Mutex::new(Box::new(BufReader::new(io::stdin()))),
            w: Mutex::new(Box::new(io::stdout())),
        }
    }

    /// The channel over a child's pipes (the parent's end).
    pub fn child(stdin: ChildStdin, stdout: ChildStdout) -> Self {
        Self {
            r: Mutex::new(Box::new(BufReader::new(stdout))),
            w: Mutex::new(Box::new(stdin)),
        }
    }

    /// Sends one line (newlines inside `line` become spaces).
    pub fn send(&self, line: &str) -> Res<()> {
        let mut w = self.w.lock().map_err(|_| "control lock poisoned")?;
        writeln!(w, "{}", line.replace('\n', " "))
            .and_then(|()| w.flush())
            .map_err(err("control pipe write"))
    }

    /// The next line; an error at end of file.
    pub fn recv(&self) -> Res<String> {
        let mut r = self.r.lock().map_err(|_| "control lock poisoned")?;
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => Err("control pipe closed (peer process gone)".into()),
            Ok(_) => Ok(line.trim_end().to_string()),
            Err(e) => Err(format!("control pipe read: {e}")),
        }
    }

    /// The next line, which must start with `word`: gives the rest. An `error`
    /// line gives its message as the error.
    pub fn expect(&self, word: &str) -> Res<String> {
        let line = self.recv()?;
        if let Some(rest) = line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
            return Ok(rest.to_string());
        }
        match line.strip_prefix("error ") {
            Some(e) => Err(format!("peer: {e}")),
            None => Err(format!("peer: expected {word:?}, got {line:?}")),
        }
    }
}

impl Swap for Control {
    fn swap(&self, mine: RemoteRegion) -> Res<RemoteRegion> {
        self.send(&format!("region {} {}", mine.stag.0, mine.to))?;
        let rest = self.expect("region")?;
        let bad = || format!("peer: bad region {rest:?}");
        let (stag, to) = rest.split_once(' ').ok_or_else(bad)?;
        Ok(RemoteRegion {
            stag: Stag(stag.parse().map_err(|_| bad())?),
            to: to.parse().map_err(|_| bad())?,
        })
    }
}

/// The peer process, seen from the parent. Dropping it kills and reaps the child.
pub struct Peer {
    child: Child,
    /// The control channel to the child.
    pub ctl: Control,
}

impl Peer {
    /// Spawns `<this executable> --serve`.
    pub fn spawn() -> Res<Self> {
        let exe = std::env::current_exe().map_err(err("current_exe"))?;
        let mut child = Command::new(exe)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(err("spawning the peer process"))?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("peer process without pipes".into());
        };
        Ok(Self {
            child,
            ctl: Control::child(stdin, stdout),
        })
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.ctl.send("quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `eta-perf --serve`: serves tests from the control channel on stdin/stdout until
/// `quit` or end of file.
pub fn serve() -> ExitCode {
    let ctl = Control::stdio();
    while let Ok(line) = ctl.recv() {
        if line == "quit" {
            break;
        }
        let reply = match line.strip_prefix("test ").map(Spec::parse) {
            None => Err(format!("unknown command {line:?}")),
            Some(Err(e)) => Err(e),
            Some(Ok(spec)) => serve_one(&spec, &ctl),
        };
        let sent = match reply {
            Ok((count, cpu)) => ctl.send(&format!("done {count} {cpu}")),
            Err(e) => ctl.send(&format!("error {e}")),
        };
        if sent.is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

/// Runs the server half of `spec`: listens, tells the port, serves one connection.
/// Gives the half's count and the CPU seconds this process spent on it.
fn serve_one(spec: &Spec, ctl: &Control) -> Res<(u64, f64)> {
    if spec.test.is_tcp() {
        let l = TcpListener::bind("127.0.0.1:0").map_err(err("tcp bind"))?;
        let port = l.local_addr().map_err(err("tcp local_addr"))?.port();
        ctl.send(&format!("port {port}"))?;
        let cpu = Stopwatch::start();
        let (s, _) = l.accept().map_err(err("tcp accept"))?;
        s.set_nodelay(true).map_err(err("TCP_NODELAY"))?;
        let count = spec.serve_tcp(s)?;
        Ok((count, cpu.elapsed()))
    } else {
        let l = Listener::bind("127.0.0.1:0", spec.cfg.options()?).map_err(err("eta bind"))?;
        let port = l.local_addr().map_err(err("eta local_addr"))?.port();
        ctl.send(&format!("port {port}"))?;
        let cpu = Stopwatch::start();
        let conn = l.accept().map_err(err("eta accept"))?;
        let count = spec.serve_eta(conn, ctl)?;
        Ok((count, cpu.elapsed()))
    }
}

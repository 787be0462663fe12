//! eta-perf's command line: the options, their defaults and the help text.

use std::time::Duration;

use super::Res;
use crate::args::{Argv, parse_plain};

/// An eta operation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// DDP Send.
    Send,
    /// RDMA Write.
    Write,
    /// RDMA Read.
    Read,
}

impl Op {
    /// The operation's name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Write => "write",
            Op::Read => "read",
        }
    }
}

/// How the RDMA Write ping-pong notices a Write's arrival (`--write-lat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteLat {
    /// Polls the last octet of the own region (ib_write_lat style).
    Poll,
    /// A 0-octet Send follows each Write.
    Send,
    /// Both tests.
    Both,
}

/// The load on the machine during the run (`--load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Nothing started by eta-perf.
    Idle,
    /// One core kept busy by an unrelated spinning process.
    Busy,
}

/// eta-perf's options.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    /// `--quick` was given (it changes the defaults).
    pub quick: bool,
    /// Time budget of all latency and bandwidth tests together, in seconds.
    pub duration: f64,
    /// Message sizes in octets.
    pub sizes: Vec<usize>,
    /// MPA CRC settings to measure.
    pub crc: Vec<bool>,
    /// MPA marker settings to measure.
    pub markers: Vec<bool>,
    /// eta operations to measure.
    pub ops: Vec<Op>,
    /// Run the latency tests.
    pub lat: bool,
    /// Run the bandwidth tests.
    pub bw: bool,
    /// Most latency samples per test.
    pub max_iters: usize,
    /// Most messages per bandwidth test.
    pub max_msgs: usize,
    /// Messages in flight in bandwidth tests.
    pub window: usize,
    /// Where to write the CSV, if anywhere.
    pub csv: Option<String>,
    /// Idle connections to open for the memory measurement, if any.
    pub idle: Option<usize>,
    /// Run the latency and bandwidth tests (off: only `--idle`).
    pub bench: bool,
    /// How long application threads poll a completion queue before blocking.
    pub app_spin: Duration,
    /// The RDMA Write ping-pong's notification.
    pub write_lat: WriteLat,
    /// A missed target makes the exit status [`EXIT_MISSED`].
    pub check: bool,
    /// Rounds per test (raw TCP and eta alternate within each).
    pub rounds: usize,
    /// Both ends in this process (one engine), not in two.
    pub one_process: bool,
    /// The load on the machine during the run.
    pub load: Load,
}

/// Exit status when every test ran (and, with `--check`, every target was met).
pub const EXIT_OK: u8 = 0;
/// Exit status when a test failed or the CSV could not be written.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for a bad argument.
pub const EXIT_USAGE: u8 = 2;
/// Exit status with `--check` when every test ran but a target was missed.
pub const EXIT_MISSED: u8 = 3;

/// eta-perf's help text.
pub const HELP: &str = "\
eta-perf: raw TCP vs eta (DDP Send, RDMA Write, RDMA Read) on 127.0.0.1, one run

USAGE: eta-perf [OPTIONS]

Each test's server end runs in a second eta-perf process (spawned as
`eta-perf --serve`), each end with its own engine, as deployed; the client end is
this process. Each test runs --rounds times, raw TCP and eta alternating (the order
flips every round); the tables give the median over the rounds, the spread (min-max)
and the CPU cost: user + system seconds of all threads of both processes
(getrusage) per 1,000 round trips (latency) or per GB (bandwidth).

  --quick              short run: sizes 1,64,16K,1M; CRC on; markers off and on;
                       duration 20 s; one round
  --rounds N           rounds per test (default 3; --quick: 1)
  --one-process        both ends in this process (the server a thread; one engine)
  --load idle|busy     busy: keep one core busy with an unrelated spinning process
                       (sh -c 'while :; do :; done') for the whole run (default idle)
  --duration SECS      time budget of all latency/bandwidth tests together
                       (default 90; split evenly over the tests)
  --sizes LIST         message sizes, e.g. 1,64,1K,16K,64K,256K,1M,4M (the default)
  --crc on|off|both    MPA CRC (default both; --quick: on); also a list such as
                       off,on (measured in that order)
  --markers on|off|both  MPA markers, asked for by both ends (default both; a
                       list too)
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
                       lat_med_us,lat_p99_us,bw_MBps,round,round_trips,cpu_s,
                       cpu_s_per_unit (one row per test and round; the other kind's
                       columns are empty; the unit is 1,000 round trips or a GB)
  --idle N             also open N idle DDP connections (both ends in this
                       process, whatever the mode) and report the memory per
                       connection
  --no-bench           only the --idle measurement
  --check              a missed target makes the exit status 3
  -h, --help           this text

Engine threads: ETA_ENGINES (default 1), ETA_SPIN_US (default 50), ETA_ENGINE_CPUS.
MB/s is 10^6 octets per second.

Exit status: 0 every test ran (with --check: and every target was met); 1 a test
failed or the CSV could not be written; 2 a bad argument; 3 with --check, every
test ran but a target was missed.";

impl Args {
    /// The defaults, which depend on `--quick`.
    pub fn defaults(quick: bool) -> Self {
        Args {
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
            check: false,
            rounds: if quick { 1 } else { 3 },
            one_process: false,
            load: Load::Idle,
        }
    }

    /// Parses the arguments (without the program name); `-h`/`--help` gives
    /// `Err("")`.
    pub fn parse(argv: Vec<String>) -> Res<Self> {
        let quick = argv.iter().any(|a| a == "--quick");
        let mut a = Args::defaults(quick);
        parse_plain(Argv::new(argv), |flag, argv| {
            a.option(flag, argv)?;
            Ok(true)
        })?;
        Ok(a)
    }

    /// Applies one option (taking its value from `argv`).
    fn option(&mut self, flag: &str, argv: &mut Argv) -> Res<()> {
        // on, off, both, or a list of them (`off,on`: in that order).
        let on_off = |argv: &mut Argv| -> Res<Vec<bool>> {
            let mut out = Vec::new();
            for v in argv.list(flag, |v| match v {
                "on" => Ok(vec![true]),
                "off" => Ok(vec![false]),
                "both" => Ok(vec![true, false]),
                v => Err(format!("{flag}: expected on, off or both, got {v:?}")),
            })? {
                for b in v {
                    if !out.contains(&b) {
                        out.push(b);
                    }
                }
            }
            Ok(out)
        };
        match flag {
            "--quick" => {}
            "--duration" => {
                self.duration = argv
                    .value(flag)?
                    .parse()
                    .ok()
                    .filter(|d: &f64| *d > 0.0)
                    .ok_or("--duration: expected seconds > 0")?;
            }
            "--sizes" => self.sizes = argv.list(flag, parse_size)?,
            "--crc" => self.crc = on_off(argv)?,
            "--markers" => self.markers = on_off(argv)?,
            "--ops" => {
                self.ops = argv.list(flag, |o| match o {
                    "send" => Ok(Op::Send),
                    "write" => Ok(Op::Write),
                    "read" => Ok(Op::Read),
                    o => Err(format!("--ops: unknown operation {o:?}")),
                })?;
            }
            "--tests" => {
                let tests = argv.list(flag, |t| match t {
                    "lat" | "bw" => Ok(t == "lat"),
                    t => Err(format!("--tests: unknown test {t:?}")),
                })?;
                self.lat = tests.contains(&true);
                self.bw = tests.contains(&false);
            }
            "--iters" => self.max_iters = argv.positive(flag)?,
            "--msgs" => self.max_msgs = argv.positive(flag)?,
            "--window" => self.window = argv.positive::<usize>(flag)?.min(1000),
            "--write-lat" => {
                self.write_lat = argv.choice(
                    flag,
                    &[
                        ("poll", WriteLat::Poll),
                        ("send", WriteLat::Send),
                        ("both", WriteLat::Both),
                    ],
                )?;
            }
            "--app-spin-us" => {
                self.app_spin = Duration::from_micros(
                    argv.value(flag)?
                        .parse()
                        .map_err(|_| "--app-spin-us: expected microseconds")?,
                );
            }
            "--csv" => self.csv = Some(argv.value(flag)?),
            "--idle" => self.idle = Some(argv.positive(flag)?),
            "--no-bench" => self.bench = false,
            "--check" => self.check = true,
            "--rounds" => self.rounds = argv.positive(flag)?,
            "--one-process" => self.one_process = true,
            "--load" => {
                self.load = argv.choice(flag, &[("idle", Load::Idle), ("busy", Load::Busy)])?
            }
            f => return Err(format!("unknown option {f:?} (try --help)")),
        }
        Ok(())
    }
}

/// A message size: a number with an optional `K` or `M` (binary) suffix.
pub fn parse_size(s: &str) -> Res<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Res<Args> {
        Args::parse(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn quick_sets_the_defaults_wherever_it_stands() {
        let a = parse(&["--sizes", "2", "--quick"]).unwrap();
        assert!(a.quick);
        assert_eq!(a.sizes, [2]);
        assert_eq!(a.crc, [true]);
        assert_eq!(a.duration, 20.0);
        assert_eq!(a.rounds, 1);
        assert_eq!(parse(&[]).unwrap(), Args::defaults(false));
        assert_eq!(Args::defaults(false).rounds, 3);
    }

    #[test]
    fn every_option_applies() {
        let a = parse(&[
            "--duration",
            "1.5",
            "--sizes",
            "1,4K, 2M",
            "--crc",
            "off",
            "--markers",
            "both",
            "--ops",
            "read,send",
            "--tests",
            "bw",
            "--iters",
            "7",
            "--msgs",
            "8",
            "--window",
            "5000",
            "--write-lat",
            "both",
            "--app-spin-us",
            "3",
            "--csv",
            "x.csv",
            "--idle",
            "9",
            "--no-bench",
            "--check",
            "--rounds",
            "5",
            "--one-process",
            "--load",
            "busy",
        ])
        .unwrap();
        assert_eq!(a.duration, 1.5);
        assert_eq!(a.sizes, [1, 4096, 2 << 20]);
        assert_eq!((a.crc, a.markers), (vec![false], vec![true, false]));
        assert_eq!(a.ops, [Op::Read, Op::Send]);
        assert_eq!((a.lat, a.bw), (false, true));
        assert_eq!((a.max_iters, a.max_msgs, a.window), (7, 8, 1000));
        assert_eq!(a.write_lat, WriteLat::Both);
        assert_eq!(a.app_spin, Duration::from_micros(3));
        assert_eq!(a.csv.as_deref(), Some("x.csv"));
        assert_eq!(a.idle, Some(9));
        assert!(!a.bench && a.check);
        let l = parse(&["--crc", "off,on", "--markers", "on,both"]).unwrap();
        assert_eq!((l.crc, l.markers), (vec![false, true], vec![true, false]));
        assert_eq!((a.rounds, a.one_process, a.load), (5, true, Load::Busy));
    }

    #[test]
    fn bad_arguments_are_named() {
        let e = |a: &[&str]| parse(a).unwrap_err();
        assert_eq!(e(&["--help"]), "");
        assert_eq!(e(&["--bogus"]), "unknown option \"--bogus\" (try --help)");
        assert!(e(&["--duration", "0"]).contains("seconds > 0"));
        assert!(e(&["--sizes", "0"]).contains("out of range"));
        assert!(e(&["--crc", "yes"]).contains("expected on, off or both"));
        assert!(e(&["--ops", "atomic"]).contains("unknown operation"));
        assert!(e(&["--tests", "x"]).contains("unknown test"));
        assert!(e(&["--iters", "0"]).contains("positive"));
        assert!(e(&["--write-lat", "x"]).contains("expected poll, send or both"));
        assert!(e(&["--csv"]).contains("needs a value"));
        assert!(e(&["--rounds", "0"]).contains("positive"));
        assert!(e(&["--load", "x"]).contains("expected idle or busy"));
    }
}

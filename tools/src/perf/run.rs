//! The program: the plan of tests in running order, the run, and the exit status.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use super::ends::Ends;
use super::eta::EtaCfg;
use super::idle::idle_test;
use super::load::{BUSY_LOOP, BusyLoad};
use super::measure::{Row, onoff};
use super::options::{
    Args, EXIT_FAILED, EXIT_MISSED, EXIT_OK, EXIT_USAGE, HELP, Load, Op, WriteLat,
};
use super::report::{print_tables, write_csv};
use super::spec::{Spec, Test};
use super::stats::aggregate;
use super::verdict::{Verdict, summary, targets};

/// One test of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The test's name in messages.
    pub name: String,
    /// What to run.
    pub spec: Spec,
    /// The round it belongs to (0 first).
    pub round: usize,
}

/// The tests in running order: size by size, and at each size `--rounds` rounds of
/// raw TCP and every eta configuration and operation, raw TCP first in even rounds
/// and last in odd ones, so that slow drifts of the machine affect a ratio's two
/// sides alike.
pub fn plan(a: &Args) -> Vec<Planned> {
    let mut out = Vec::new();
    let spin = a.app_spin;
    for &size in &a.sizes {
        let spec = |test: Test, crc: bool, markers: bool| Spec {
            test,
            size,
            window: a.window,
            max: match test {
                Test::TcpBw | Test::SendBw | Test::WriteBw | Test::ReadBw => a.max_msgs,
                _ => a.max_iters,
            },
            cfg: EtaCfg { crc, markers, spin },
        };
        let mut tcp = Vec::new();
        if a.lat {
            tcp.push((format!("tcp lat {size}"), spec(Test::TcpLat, false, false)));
        }
        if a.bw {
            tcp.push((format!("tcp bw {size}"), spec(Test::TcpBw, false, false)));
        }
        let mut eta = Vec::new();
        for &crc in &a.crc {
            for &markers in &a.markers {
                for &op in &a.ops {
                    let name = |k: &str| {
                        format!(
                            "eta {} {k} {size} (crc {} markers {})",
                            op.name(),
                            onoff(crc),
                            onoff(markers)
                        )
                    };
                    let mut add = |k: &str, test| eta.push((name(k), spec(test, crc, markers)));
                    if a.lat {
                        let poll = a.write_lat != WriteLat::Send;
                        let send = a.write_lat != WriteLat::Poll;
                        match op {
                            Op::Send => add("lat", Test::SendLat),
                            Op::Write if poll => add("lat(poll)", Test::WriteLatPoll),
                            _ => {}
                        }
                        match op {
                            Op::Write if send => add("lat(+send)", Test::WriteLatSend),
                            Op::Read => add("lat", Test::ReadLat),
                            _ => {}
                        }
                    }
                    if a.bw {
                        let test = match op {
                            Op::Send => Test::SendBw,
                            Op::Write => Test::WriteBw,
                            Op::Read => Test::ReadBw,
                        };
                        add("bw", test);
                    }
                }
            }
        }
        for round in 0..a.rounds {
            let (first, then) = if round % 2 == 0 {
                (&tcp, &eta)
            } else {
                (&eta, &tcp)
            };
            for (name, spec) in first.iter().chain(then) {
                out.push(Planned {
                    name: name.clone(),
                    spec: *spec,
                    round,
                });
            }
        }
    }
    out
}

/// eta-perf: parses the process's arguments, runs, reports; see [`HELP`] for the
/// exit statuses.
pub fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "--serve") {
        return super::peer::serve();
    }
    match Args::parse(argv) {
        Ok(a) => ExitCode::from(run(&a)),
        Err(e) if e.is_empty() => {
            println!("{HELP}");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("eta-perf: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Runs what `a` asks for and gives the exit status.
pub fn run(a: &Args) -> u8 {
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
    // The verdicts, collected as the run goes: the idle memory first.
    let mut verdicts: Vec<Verdict> = Vec::new();
    // Idle connections first: a fresh heap makes the RSS delta honest.
    if let Some(n) = a.idle {
        println!();
        println!("== Idle connections ==");
        match idle_test(n) {
            Ok((report, verdict)) => {
                print!("{report}");
                verdicts.push(verdict);
            }
            Err(e) => {
                println!("idle test failed: {e}");
                verdicts.push(Verdict::idle_failed(&e));
                failed = true;
            }
        }
    }
    if a.bench {
        let (rows, bench_failed) = bench(a);
        failed |= bench_failed;
        println!();
        println!("== Targets (ratios to raw TCP measured in this run) ==");
        // The idle memory's verdict comes last, after those on the rows.
        let idle = std::mem::replace(&mut verdicts, targets(&rows));
        verdicts.extend(idle);
        for v in &verdicts {
            println!("{v}");
        }
        println!("{}", summary(&verdicts));
    }
    exit_status(failed, a.check, &verdicts)
}

/// Runs the latency and bandwidth tests (under the load asked for), prints their
/// tables and writes the CSV. Gives the rows (medians over the rounds) and whether
/// a test (or the CSV) failed.
fn bench(a: &Args) -> (Vec<Row>, bool) {
    // Killed when dropped, on every way out of this function.
    let load = match a.load {
        Load::Idle => None,
        Load::Busy => match BusyLoad::start() {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("eta-perf: {e}");
                return (Vec::new(), true);
            }
        },
    };
    let mut ends = match Ends::new(a.one_process) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("eta-perf: {e}");
            return (Vec::new(), true);
        }
    };
    let mut failed = false;
    let tests = plan(a);
    let cap = Duration::from_secs_f64(a.duration / tests.len().max(1) as f64);
    println!();
    println!("ends: {}", ends.describe());
    match &load {
        None => println!("load: idle (nothing started by eta-perf)"),
        Some(l) => println!("load: busy (pid {}: sh -c '{BUSY_LOOP}')", l.pid()),
    }
    println!(
        "{} tests ({} rounds), about {:.0} ms each (--duration {} s)",
        tests.len(),
        a.rounds,
        cap.as_secs_f64() * 1e3,
        a.duration
    );
    let t0 = Instant::now();
    let mut rows = Vec::new();
    for t in &tests {
        match ends.run(&t.spec, cap) {
            Ok(r) => rows.push(Row {
                round: t.round,
                ..r
            }),
            Err(e) => {
                eprintln!("FAILED {} (round {}): {e}", t.name, t.round + 1);
                failed = true;
            }
        }
    }
    drop(ends);
    drop(load);
    let aggs = aggregate(&rows);
    print_tables(&aggs, a.rounds);
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
    (aggs.into_iter().map(|g| g.row).collect(), failed)
}

/// The exit status: [`EXIT_FAILED`] if a test failed, else [`EXIT_MISSED`] if
/// `check` is on and a target was missed, else [`EXIT_OK`].
pub fn exit_status(failed: bool, check: bool, verdicts: &[Verdict]) -> u8 {
    if failed {
        EXIT_FAILED
    } else if check && verdicts.iter().any(|v| !v.met) {
        EXIT_MISSED
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_follows_the_verdicts_only_with_check() {
        let missed = [Verdict::idle_memory(1.0), Verdict::idle_memory(17.0)];
        let met = &missed[..1];
        assert_eq!(exit_status(false, false, &missed), EXIT_OK);
        assert_eq!(exit_status(false, true, &missed), EXIT_MISSED);
        assert_eq!(exit_status(false, true, met), EXIT_OK);
        assert_eq!(exit_status(true, true, &missed), EXIT_FAILED);
        assert_eq!(exit_status(true, false, met), EXIT_FAILED);
    }

    #[test]
    fn the_plan_runs_tcp_first_at_every_size() {
        let a = Args {
            sizes: vec![1, 64],
            crc: vec![true],
            markers: vec![false],
            write_lat: WriteLat::Both,
            rounds: 1,
            ..Args::defaults(false)
        };
        let names: Vec<String> = plan(&a).into_iter().map(|t| t.name).collect();
        assert_eq!(names.len(), 2 * (2 + 4 + 3));
        assert_eq!(names[0], "tcp lat 1");
        assert_eq!(names[1], "tcp bw 1");
        assert_eq!(names[2], "eta send lat 1 (crc on markers off)");
        assert!(names.contains(&"eta write lat(+send) 64 (crc on markers off)".into()));
        assert_eq!(names[9], "tcp lat 64");
    }

    #[test]
    fn rounds_alternate_tcp_and_eta() {
        let a = Args {
            sizes: vec![64, 1 << 20],
            crc: vec![true],
            markers: vec![false],
            ops: vec![Op::Send],
            rounds: 3,
            ..Args::defaults(false)
        };
        let p = plan(&a);
        let at = |i: usize| (p[i].name.as_str(), p[i].round);
        assert_eq!(p.len(), 2 * 3 * 4);
        assert_eq!(at(0), ("tcp lat 64", 0));
        assert_eq!(at(2), ("eta send lat 64 (crc on markers off)", 0));
        assert_eq!(at(4), ("eta send lat 64 (crc on markers off)", 1));
        assert_eq!(at(6), ("tcp lat 64", 1));
        assert_eq!(at(8), ("tcp lat 64", 2));
        assert_eq!(at(12), ("tcp lat 1048576", 0));
        assert_eq!(p[13].spec.test, Test::TcpBw);
        assert_eq!(p[13].spec.max, a.max_msgs);
        assert_eq!(p[12].spec.max, a.max_iters);
        assert!(p[14].spec.cfg.crc && !p[14].spec.cfg.markers);
    }
}

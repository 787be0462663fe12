//! The program: the plan of tests in running order, the run, and the exit status.

use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use super::eta::EtaCfg;
use super::idle::idle_test;
use super::measure::{Row, onoff};
use super::options::{Args, EXIT_FAILED, EXIT_MISSED, EXIT_OK, EXIT_USAGE, HELP, Op, WriteLat};
use super::report::{print_tables, write_csv};
use super::verdict::{Verdict, summary, targets};
use super::{Res, read, send, tcp, write};

/// One test: runs for the time budget given, gives its row.
pub type Test = Box<dyn Fn(Duration) -> Res<Row>>;

/// The tests in running order: size by size, raw TCP first, then every eta
/// configuration and operation at that size, so that slow drifts of the machine
/// affect a ratio's two sides alike.
pub fn plan(a: &Args) -> Vec<(String, Test)> {
    let mut tests: Vec<(String, Test)> = Vec::new();
    let (iters, msgs, window, spin) = (a.max_iters, a.max_msgs, a.window, a.app_spin);
    for &size in &a.sizes {
        if a.lat {
            tests.push((
                format!("tcp lat {size}"),
                Box::new(move |cap| tcp::lat(size, cap, iters)),
            ));
        }
        if a.bw {
            tests.push((
                format!("tcp bw {size}"),
                Box::new(move |cap| tcp::bw(size, cap, msgs)),
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
                                Box::new(move |cap| send::lat(cfg, size, cap, iters)),
                            )),
                            Op::Write if poll => tests.push((
                                name("lat(poll)"),
                                Box::new(move |cap| write::lat_poll(cfg, size, cap, iters)),
                            )),
                            _ => {}
                        }
                        match op {
                            Op::Write if send => tests.push((
                                name("lat(+send)"),
                                Box::new(move |cap| write::lat_send(cfg, size, cap, iters)),
                            )),
                            Op::Read => tests.push((
                                name("lat"),
                                Box::new(move |cap| read::lat(cfg, size, cap, iters)),
                            )),
                            _ => {}
                        }
                    }
                    if a.bw {
                        let f: Test = match op {
                            Op::Send => Box::new(move |cap| send::bw(cfg, size, window, cap, msgs)),
                            Op::Write => {
                                Box::new(move |cap| write::bw(cfg, size, window, cap, msgs))
                            }
                            Op::Read => Box::new(move |cap| read::bw(cfg, size, window, cap, msgs)),
                        };
                        tests.push((name("bw"), f));
                    }
                }
            }
        }
    }
    tests
}
/// eta-perf: parses the process's arguments, runs, reports; see [`HELP`] for the
/// exit statuses.
pub fn main() -> ExitCode {
    match Args::parse(std::env::args().skip(1).collect()) {
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

/// Runs the latency and bandwidth tests, prints their tables and writes the CSV.
/// Gives the rows and whether a test (or the CSV) failed.
fn bench(a: &Args) -> (Vec<Row>, bool) {
    let mut failed = false;
    let tests = plan(a);
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
    (rows, failed)
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
            ..Args::defaults(false)
        };
        let names: Vec<String> = plan(&a).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 2 * (2 + 4 + 3));
        assert_eq!(names[0], "tcp lat 1");
        assert_eq!(names[1], "tcp bw 1");
        assert_eq!(names[2], "eta send lat 1 (crc on markers off)");
        assert!(names.contains(&"eta write lat(+send) 64 (crc on markers off)".into()));
        assert_eq!(names[9], "tcp lat 64");
    }
}

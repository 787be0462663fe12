//! The memory of idle connections (`--idle N`): N DDP connections with both ends in
//! this process, and the growth of the resident set per endpoint.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use eta_engine::{CompletionQueue, Connection, Listener, Options};

use super::verdict::Verdict;
use super::{Res, WAIT_TIMEOUT, err};

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

/// Opens `n` idle connections (fewer if the descriptor limit cannot be raised
/// enough), measures the memory they take, and closes them. Gives the report and the
/// verdict on the 16 KiB per endpoint target.
pub fn idle_test(n: usize) -> Res<(String, Verdict)> {
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
    let verdict = Verdict::idle_memory(per_end / 1024.0);
    let _ = writeln!(out, "{verdict}");
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
    Ok((out, verdict))
}

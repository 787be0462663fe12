//! eta-shim-bench: what `libeta.so` adds to calls on plain sockets.
//!
//! Runs itself as a child process, alternately without and with
//! `LD_PRELOAD=libeta.so`, for several rounds, and compares the medians:
//!
//! - (a) ns per call of `getsockopt(SO_TYPE)`, `fcntl(F_GETFL)` and a 1-octet
//!   `send` (+ the matching 1-octet `recv`, cost halved) on a Unix socket pair,
//!   millions of calls each; the difference is the shim's cost per call (target:
//!   ≤ 5 ns);
//! - (b) a 1-octet TCP ping-pong over 127.0.0.1 between two threads (`TCP_NODELAY`,
//!   blocking `send`/`recv`); the ratio with/without is the shim's cost on a
//!   latency-bound workload (target: ≤ 1 % slower).
//!
//! ```text
//! cargo build --release -p eta-preload -p eta-tools
//! target/release/eta-shim-bench [--lib PATH] [--rounds 7] [--calls 2000000] [--pings 20000]
//! ```
//!
//! `--lib` defaults to the `libeta.so` beside this binary.
//!
//! On a shared, noisy machine the difference of two processes' medians is mostly
//! noise (tens of ns per call, tens of µs per round trip). So each shimmed child
//! also measures **paired**, in one process: the same call through the shim
//! (`libc::fcntl` binds to libeta.so's) and straight to libc (the address
//! `dlsym(libc.so.6, ..)` returns), alternating in blocks, and reports the median
//! of the per-block differences; the ping-pong alternates blocks on one
//! connection, both ends calling through the shim in one block and straight to
//! libc in the next (the client's octet tells the echo thread which).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use libc::c_int;

const CHILD: &str = "ETA_SHIM_BENCH_CHILD";

struct Args {
    lib: PathBuf,
    rounds: usize,
    calls: u64,
    pings: u64,
}

fn usage() -> ! {
    eprintln!("usage: eta-shim-bench [--lib PATH] [--rounds N] [--calls N] [--pings N]");
    std::process::exit(2)
}

fn args() -> Args {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("binary's directory").to_path_buf();
    let mut a = Args {
        lib: [dir.join("libeta.so"), dir.join("deps/libeta.so")]
            .into_iter()
            .find(|p| p.is_file())
            .unwrap_or_else(|| dir.join("libeta.so")),
        rounds: 7,
        calls: 2_000_000,
        pings: 20_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--lib" => a.lib = PathBuf::from(value()),
            "--rounds" => a.rounds = value().parse().unwrap_or_else(|_| usage()),
            "--calls" => a.calls = value().parse().unwrap_or_else(|_| usage()),
            "--pings" => a.pings = value().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    a
}

fn check(r: isize, what: &str) {
    if r < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

fn per_call(calls: u64, f: impl FnMut()) -> f64 {
    let mut f = f;
    // Warm up (lazy resolution, caches), then time.
    for _ in 0..calls / 20 {
        f();
    }
    let t = Instant::now();
    for _ in 0..calls {
        f();
    }
    t.elapsed().as_nanos() as f64 / calls as f64
}

/// The measuring child: prints `name value` lines.
fn child(calls: u64, pings: u64) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    println!("shim {}", u8::from(maps.contains("libeta.so")));

    let mut sp = [0 as c_int; 2];
    // SAFETY: socketpair with a valid array of two ints.
    check(
        unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sp.as_mut_ptr()) } as isize,
        "socketpair",
    );
    let [a, b] = sp;

    let ns = per_call(calls, || {
        let mut v: c_int = 0;
        let mut len = size_of::<c_int>() as libc::socklen_t;
        // SAFETY: valid fd, value and length pointers.
        let r = unsafe {
            libc::getsockopt(
                a,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut v).cast(),
                &mut len,
            )
        };
        std::hint::black_box(r);
    });
    println!("getsockopt {ns:.3}");

    let ns = per_call(calls, || {
        // SAFETY: fcntl(F_GETFL) on a valid fd.
        std::hint::black_box(unsafe { libc::fcntl(a, libc::F_GETFL) });
    });
    println!("fcntl {ns:.3}");

    let ns = per_call(calls / 2, || {
        let mut c = [0u8; 1];
        // SAFETY: valid fds and 1-octet buffers.
        unsafe {
            std::hint::black_box(libc::send(a, b"x".as_ptr().cast(), 1, 0));
            std::hint::black_box(libc::recv(b, c.as_mut_ptr().cast(), 1, 0));
        }
    }) / 2.0;
    println!("send1 {ns:.3}");

    // (b) 1-octet TCP ping-pong between two threads of this process.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).unwrap();
        let fd = s.as_raw_fd();
        let mut c = [0u8; 1];
        loop {
            // SAFETY: valid fd and 1-octet buffer.
            let n = unsafe { libc::recv(fd, c.as_mut_ptr().cast(), 1, 0) };
            if n <= 0 {
                break;
            }
            // SAFETY: as above.
            check(unsafe { libc::send(fd, c.as_ptr().cast(), 1, 0) }, "send");
        }
    });
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    let ns = per_call(pings, || {
        let mut c = [0u8; 1];
        // SAFETY: valid fd and 1-octet buffers.
        unsafe {
            check(libc::send(fd, b"p".as_ptr().cast(), 1, 0), "send");
            check(libc::recv(fd, c.as_mut_ptr().cast(), 1, 0), "recv");
        }
    });
    println!("pingpong {ns:.1}");
    drop(s);
    server.join().unwrap();

    if maps.contains("libeta.so") {
        paired(a, b, calls);
        paired_pingpong(pings);
    }
    // SAFETY: closing our own fds.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}

/// libc's own functions, bypassing the shim.
struct Direct {
    getsockopt: GetSockOpt,
    fcntl: Fcntl,
    send: SendFn,
    recv: RecvFn,
}
type GetSockOpt =
    unsafe extern "C" fn(c_int, c_int, c_int, *mut libc::c_void, *mut libc::socklen_t) -> c_int;
type Fcntl = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type SendFn = unsafe extern "C" fn(c_int, *const libc::c_void, usize, c_int) -> isize;
type RecvFn = unsafe extern "C" fn(c_int, *mut libc::c_void, usize, c_int) -> isize;

fn direct() -> Direct {
    // SAFETY: dlopen/dlsym with NUL-terminated names; libc.so.6 is loaded already,
    // and each symbol is transmuted to its C prototype.
    unsafe {
        let h = libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        assert!(!h.is_null(), "libc.so.6 not loaded");
        let sym = |name: &std::ffi::CStr| {
            let p = libc::dlsym(h, name.as_ptr());
            assert!(!p.is_null(), "no {name:?} in libc");
            p
        };
        Direct {
            getsockopt: std::mem::transmute::<*mut libc::c_void, GetSockOpt>(sym(c"getsockopt")),
            fcntl: std::mem::transmute::<*mut libc::c_void, Fcntl>(sym(c"fcntl")),
            send: std::mem::transmute::<*mut libc::c_void, SendFn>(sym(c"send")),
            recv: std::mem::transmute::<*mut libc::c_void, RecvFn>(sym(c"recv")),
        }
    }
}

/// Alternates blocks of `via_shim` and `direct` calls; prints, for `name`, the
/// median ns/call of each and the median of the per-block differences.
fn alternate(
    name: &str,
    total: u64,
    block: u64,
    per_iter: f64,
    mut via_shim: impl FnMut(),
    mut direct: impl FnMut(),
) {
    let mut shim_ns = Vec::new();
    let mut direct_ns = Vec::new();
    let mut diff = Vec::new();
    for _ in 0..block {
        via_shim();
        direct();
    }
    for _ in 0..(total / block).max(3) {
        let t = Instant::now();
        for _ in 0..block {
            via_shim();
        }
        let s = t.elapsed().as_nanos() as f64 / block as f64 / per_iter;
        let t = Instant::now();
        for _ in 0..block {
            direct();
        }
        let d = t.elapsed().as_nanos() as f64 / block as f64 / per_iter;
        shim_ns.push(s);
        direct_ns.push(d);
        diff.push(s - d);
    }
    println!(
        "paired_{name} {:.3} {:.3} {:.3}",
        median(&mut direct_ns),
        median(&mut shim_ns),
        median(&mut diff)
    );
}

fn paired(a: c_int, b: c_int, calls: u64) {
    let d = direct();
    let mut v: c_int = 0;
    let mut len = size_of::<c_int>() as libc::socklen_t;
    let (vp, lp) = ((&raw mut v).cast::<libc::c_void>(), &raw mut len);
    alternate(
        "getsockopt",
        calls,
        10_000,
        1.0,
        || {
            // SAFETY: valid fd, value and length pointers.
            let r = unsafe { libc::getsockopt(a, libc::SOL_SOCKET, libc::SO_TYPE, vp, lp) };
            std::hint::black_box(r);
        },
        || {
            // SAFETY: as above.
            let r = unsafe { (d.getsockopt)(a, libc::SOL_SOCKET, libc::SO_TYPE, vp, lp) };
            std::hint::black_box(r);
        },
    );
    alternate(
        "fcntl",
        calls,
        10_000,
        1.0,
        || {
            // SAFETY: fcntl(F_GETFL) on a valid fd.
            let r = unsafe { libc::fcntl(a, libc::F_GETFL) };
            std::hint::black_box(r);
        },
        || {
            // SAFETY: as above.
            let r = unsafe { (d.fcntl)(a, libc::F_GETFL) };
            std::hint::black_box(r);
        },
    );
    let mut c = [0u8; 1];
    let cp = c.as_mut_ptr().cast::<libc::c_void>();
    alternate(
        "send1",
        calls / 2,
        5_000,
        2.0,
        || {
            // SAFETY: valid fds and 1-octet buffers.
            unsafe {
                std::hint::black_box(libc::send(a, b"x".as_ptr().cast(), 1, 0));
                std::hint::black_box(libc::recv(b, cp, 1, 0));
            }
        },
        || {
            // SAFETY: as above.
            unsafe {
                std::hint::black_box((d.send)(a, b"x".as_ptr().cast(), 1, 0));
                std::hint::black_box((d.recv)(b, cp, 1, 0));
            }
        },
    );
}

/// One echo connection. The client's octet says how its echo is made: `s` with
/// `send` (and the next `recv`) through the shim, anything else straight to libc,
/// so one connection, one pair of threads and one pair of CPUs serve both sides of
/// the comparison.
fn echo_pair() -> (std::net::TcpStream, std::thread::JoinHandle<()>) {
    use std::os::fd::AsRawFd;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let d = direct();
        let (s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).unwrap();
        let fd = s.as_raw_fd();
        let mut c = [0u8; 1];
        let mut shim = false;
        loop {
            // SAFETY: valid fd and 1-octet buffer.
            let n = unsafe {
                if shim {
                    libc::recv(fd, c.as_mut_ptr().cast(), 1, 0)
                } else {
                    (d.recv)(fd, c.as_mut_ptr().cast(), 1, 0)
                }
            };
            if n <= 0 {
                break;
            }
            shim = c[0] == b's';
            // SAFETY: as above.
            let n = unsafe {
                if shim {
                    libc::send(fd, c.as_ptr().cast(), 1, 0)
                } else {
                    (d.send)(fd, c.as_ptr().cast(), 1, 0)
                }
            };
            check(n, "send");
        }
    });
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).unwrap();
    (s, server)
}

fn paired_pingpong(pings: u64) {
    use std::os::fd::AsRawFd;
    let d = direct();
    let (conn, server) = echo_pair();
    let fd = conn.as_raw_fd();
    let mut c = [0u8; 1];
    let cp = c.as_mut_ptr().cast::<libc::c_void>();
    alternate(
        "pingpong",
        pings,
        500,
        1.0,
        || {
            // SAFETY: valid fd and 1-octet buffers.
            unsafe {
                check(libc::send(fd, b"s".as_ptr().cast(), 1, 0), "send");
                check(libc::recv(fd, cp, 1, 0), "recv");
            }
        },
        || {
            // SAFETY: as above.
            unsafe {
                check((d.send)(fd, b"d".as_ptr().cast(), 1, 0), "send");
                check((d.recv)(fd, cp, 1, 0), "recv");
            }
        },
    );
    drop(conn);
    server.join().unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|x, y| x.total_cmp(y));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const METRICS: [&str; 4] = ["getsockopt", "fcntl", "send1", "pingpong"];

fn main() {
    if std::env::var_os(CHILD).is_some() {
        let calls = std::env::var("ETA_SHIM_BENCH_CALLS")
            .unwrap()
            .parse()
            .unwrap();
        let pings = std::env::var("ETA_SHIM_BENCH_PINGS")
            .unwrap()
            .parse()
            .unwrap();
        child(calls, pings);
        return;
    }
    let a = args();
    assert!(
        a.lib.is_file(),
        "{} not found (build eta-preload, or pass --lib)",
        a.lib.display()
    );
    let lib = std::fs::canonicalize(&a.lib).unwrap();
    let exe = std::env::current_exe().unwrap();
    println!(
        "eta-shim-bench: {} rounds, {} calls per syscall, {} ping-pongs; shim {}",
        a.rounds,
        a.calls,
        a.pings,
        lib.display()
    );
    // samples[shim][metric]
    let mut samples = [[(); 4].map(|_| Vec::new()), [(); 4].map(|_| Vec::new())];
    // paired[direct | via shim | difference][metric]
    let mut paired: [[Vec<f64>; 4]; 3] = Default::default();
    for round in 0..a.rounds {
        // Alternate which goes first, so drift hits both alike.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for shim in order {
            let mut cmd = Command::new(&exe);
            cmd.env(CHILD, "1")
                .env("ETA_SHIM_BENCH_CALLS", a.calls.to_string())
                .env("ETA_SHIM_BENCH_PINGS", a.pings.to_string())
                .env_remove("ETA_LOG")
                .env_remove("LD_PRELOAD");
            if shim {
                cmd.env("LD_PRELOAD", &lib);
            }
            let out = cmd.output().expect("run the child");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let value = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("child printed no {name}: {text}"))
            };
            assert_eq!(
                value("shim"),
                f64::from(u8::from(shim)),
                "LD_PRELOAD did not take"
            );
            for (i, m) in METRICS.iter().enumerate() {
                samples[usize::from(shim)][i].push(value(m));
                if shim {
                    let line = text
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("paired_{m} ")))
                        .unwrap_or_else(|| panic!("child printed no paired_{m}: {text}"));
                    for (c, v) in line.split_whitespace().enumerate().take(3) {
                        paired[c][i].push(v.parse::<f64>().unwrap());
                    }
                }
            }
        }
    }
    println!();
    println!(
        "{:<28} {:>12} {:>12} {:>12}",
        "median of rounds", "plain", "shim", "shim - plain"
    );
    let mut verdicts = Vec::new();
    for (i, m) in METRICS.iter().enumerate() {
        let plain = median(&mut samples[0][i]);
        let shim = median(&mut samples[1][i]);
        let name = match *m {
            "getsockopt" => "getsockopt(SO_TYPE), ns/call",
            "fcntl" => "fcntl(F_GETFL), ns/call",
            "send1" => "1-octet send/recv, ns/call",
            _ => "TCP 1-octet RTT, ns",
        };
        println!(
            "{name:<28} {plain:>12.2} {shim:>12.2} {:>+12.2}",
            shim - plain
        );
        verdicts.push(verdict("", m, "shim/plain", shim / plain, shim - plain));
    }
    println!();
    println!(
        "paired, in the shimmed process (median over rounds of the median per-block difference):"
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12}",
        "", "direct", "via shim", "shim - direct"
    );
    for (i, m) in METRICS.iter().enumerate() {
        let mut cols = [0usize, 1, 2].map(|c| paired[c][i].clone());
        let [direct, via, diff] = cols.each_mut().map(|v| median(v));
        println!("{m:<28} {direct:>12.2} {via:>12.2} {diff:>+12.2}");
        verdicts.push(verdict(
            "paired ",
            m,
            "via shim / direct",
            via / direct,
            diff,
        ));
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
}

/// The verdict line on metric `m` (named after `prefix`): the ping-pong may be 1 %
/// slower under the shim (`ratio`, described as `ratio_name`), every other call
/// 5 ns (`diff`, ns per call).
fn verdict(prefix: &str, m: &str, ratio_name: &str, ratio: f64, diff: f64) -> String {
    let mark = |met| if met { "PASS" } else { "MISS" };
    if m == "pingpong" {
        format!(
            "{prefix}ping-pong: {ratio_name} = {ratio:.4} ({:+.2} %): {} (target ≤ 1 % slower)",
            (ratio - 1.0) * 100.0,
            mark(ratio <= 1.01)
        )
    } else {
        format!(
            "{prefix}{m}: {diff:+.2} ns/call: {} (target ≤ 5 ns)",
            mark(diff <= 5.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn verdict_lines() {
        assert_eq!(
            verdict("", "pingpong", "shim/plain", 1.02, 0.0),
            "ping-pong: shim/plain = 1.0200 (+2.00 %): MISS (target ≤ 1 % slower)"
        );
        assert_eq!(
            verdict("paired ", "fcntl", "via shim / direct", 9.0, 4.5),
            "paired fcntl: +4.50 ns/call: PASS (target ≤ 5 ns)"
        );
    }
}

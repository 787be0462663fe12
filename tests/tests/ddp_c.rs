//! The C API of `include/eta.h`, proven from C: the `c/ddp_*.c` programs, built with
//! `-Wall -Wextra -Werror -O2` and linked against `libeta.so`, run as server/client
//! pairs on loopback under `LD_PRELOAD`. Each program checks the header's promises
//! itself (exit 1 naming the failed check); here we assert exit status, silence on
//! stderr, and the lines that show the checks ran. Also: `scripts/install.sh` and
//! `pkg-config --cflags --libs eta`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use eta_tests::{
    Outcome, Pair, TempDir, compile_c_strict, compile_eta_c, crate_dir, imported_symbols,
    include_dir, require, run, shim,
};

const T: Duration = Duration::from_secs(180);

/// Builds `c/<name>.c` against eta.h and libeta.so.
fn build(name: &str, dir: &Path) -> PathBuf {
    compile_eta_c(&format!("{name}.c"), name, &[], dir)
}

/// Runs the pair under the shim; returns (server, clients).
fn pair(exe: &Path, server: &[&str], clients: &[&[&str]], dir: &Path) -> (Outcome, Vec<Outcome>) {
    Pair {
        exe,
        server,
        clients,
        preload: true,
        timeout: T,
    }
    .run(dir)
}

/// The client's last line must be "<program> ...: N checks ok" with N >= `min`.
fn assert_checks(o: &Outcome, what: &str, min: usize) {
    let out = o.out();
    let last = out.lines().last().unwrap_or_default();
    let n: usize = last
        .strip_suffix(" checks ok")
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: last line {last:?} is not \"...: N checks ok\""));
    assert!(n >= min, "{what}: only {n} checks ran (want {min}):\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok: ")).count(),
        n,
        "{what}: the ok lines do not add up:\n{out}"
    );
}

/// The shared libraries an executable needs (`readelf -d`, `NEEDED`).
fn needed_libraries(exe: &Path) -> Vec<String> {
    let o = run(
        "readelf -d",
        Command::new(require("readelf", "binutils"))
            .arg("-d")
            .arg(exe),
        T,
    );
    o.assert_success("readelf -d");
    o.out()
        .lines()
        .filter_map(|l| l.split("Shared library: [").nth(1))
        .filter_map(|l| l.split(']').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_ddp_program_compiles_cleanly_and_links_libeta() {
    let dir = TempDir::new("ddp-cc");
    for name in [
        "ddp_echo",
        "ddp_rdma",
        "ddp_epoll_server",
        "ddp_nonblock",
        "ddp_fork_exec",
        "ddp_threads",
        "ddp_errors",
        "ddp_signals",
        "ddp_exit",
        "ddp_zero_copy",
    ] {
        let exe = build(name, dir.path());
        let needed = needed_libraries(&exe);
        assert!(
            needed.iter().any(|l| l == "libeta.so"),
            "{name} does not link libeta.so: {needed:?}"
        );
    }
    for name in ["ddp_rdma", "ddp_errors", "ddp_fork_exec"] {
        let syms = imported_symbols(&dir.path().join(name));
        assert!(
            syms.iter().any(|s| s.starts_with("eta_")),
            "{name} imports no eta_* function: {syms:?}"
        );
    }
}

#[test]
fn echo_messages_boundaries_options_and_graceful_close() {
    let dir = TempDir::new("ddp-echo");
    let exe = build("ddp_echo", dir.path());
    let (server, clients) = pair(
        &exe,
        &["server", "3"],
        &[&["full"], &["crc0"], &["rev1"]],
        dir.path(),
    );
    let [full, crc0, rev1] = &clients[..] else {
        unreachable!()
    };
    full.assert_lines(
        "ddp_echo client full",
        &[
            "ok: server's view of the connection: ddp=1 crc=1 rev=2 pd=hi server, this is the client",
            "ok: 1048576 octets: one write, one read returns the whole message",
            "ok: two writes (10, 20 octets) are two reads (10, 20)",
            "ok: short reads: 30 + 30 + 40 octets, MSG_EOR only on the last part, nothing lost",
            "ok: MSG_PEEK does not consume: peek 10, peek 50, then recv 50",
            "ok: 5 messages then shutdown(SHUT_WR): read() -> 0 once the server has closed",
            "ok: ETA_MAX_FPDU 1500 after connect: this side's FPDUs fit an Ethernet MTU",
        ],
    );
    assert_checks(full, "ddp_echo client full", 17);
    crc0.assert_lines(
        "ddp_echo client crc0",
        &[
            "ok: server's view of the connection: ddp=1 crc=0 rev=2 pd=",
            "ok: the server closed: read() -> 0",
            "ok: write(s, \"late\", 4) -> -1 errno EPIPE",
        ],
    );
    assert_checks(crc0, "ddp_echo client crc0", 7);
    rev1.assert_lines(
        "ddp_echo client rev1",
        &["ok: server's view of the connection: ddp=1 crc=1 rev=1 pd="],
    );
    assert_checks(rev1, "ddp_echo client rev1", 6);
    server.assert_lines(
        "ddp_echo server",
        &[
            "server: connection 1: 16 echoed, 5 not echoed, then end of stream",
            "server: connection 2: 1 echoed, 0 not echoed, then closed by the server",
            "server: connection 3: 2 echoed, 0 not echoed, then end of stream",
        ],
    );
}

#[test]
fn rdma_write_read_posted_work_completions_and_invalidate() {
    let dir = TempDir::new("ddp-rdma");
    let exe = build("ddp_rdma", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_rdma client",
        &[
            "ok: eta_rdma_write: 256 KiB placed at offset 4096 of the peer's region, nothing around it touched",
            "ok: eta_rdma_read: 300000 octets at offset 524288 and the written 256 KiB read back exactly",
            "ok: a 0-octet eta_post_send arrives as a RECV completion with byte_len 0",
            "ok: ETA_SEND_SOLICITED arrives with ETA_WC_SOLICITED",
            "ok: ETA_ACCESS_ANY_SOCKET: a region of connection 1 written through connection 3",
            "ok: the outstanding receive is flushed with ECANCELED",
        ],
    );
    assert_checks(c, "ddp_rdma client", 14);
    assert!(
        server
            .out()
            .contains("server: RDMA Write to an invalidated STag: completion status "),
        "{}",
        server.out()
    );
}

#[test]
fn epoll_edge_triggered_server_with_200_clients() {
    let dir = TempDir::new("ddp-epoll");
    let exe = build("ddp_epoll_server", dir.path());
    let (server, clients) = pair(&exe, &["server", "201"], &[&["200", "20"]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_epoll_server client",
        &[
            "ok: one socket in two epoll sets: each reports EPOLLIN with its own data; level-triggered until read",
            "ok: EPOLLONESHOT: one event, none until EPOLL_CTL_MOD re-arms it, then one with the new data",
            "ok: EPOLLET: one event per new message, none repeated while it waits",
            "ok: 200 non-blocking DDP clients (half registered with epoll before the switch, same data), \
             20 messages each, every echo checked",
        ],
    );
    assert_checks(c, "ddp_epoll_server client", 4);
    server.assert_lines(
        "ddp_epoll_server server",
        &["server: 201 connections, 4005 messages echoed"],
    );
}

#[test]
fn nonblocking_connect_eagain_poll_select_and_refusal() {
    let dir = TempDir::new("ddp-nonblock");
    let exe = build("ddp_nonblock", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_nonblock client",
        &[
            "ok: non-blocking DDP connect: EINPROGRESS, then POLLOUT, SO_ERROR 0",
            "ok: read(s, buf, sizeof buf) -> -1 errno EAGAIN",
            "ok: select(): not readable when empty; writable; readable when the echo is there",
            "ok: connect(s, (struct sockaddr *)&a, sizeof a) -> -1 errno ECONNREFUSED",
        ],
    );
    assert_checks(c, "ddp_nonblock client", 14);
    server.assert_lines(
        "ddp_nonblock server",
        &["echo server: 2 connections, 3 messages echoed"],
    );
}

#[test]
fn fork_gives_ebadfd_in_the_child_and_exec_drops_ddp_sockets() {
    let dir = TempDir::new("ddp-fork");
    let exe = build("ddp_fork_exec", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_fork_exec client",
        &[
            "child ok: read(c, buf, sizeof buf) -> -1 errno EBADFD",
            "child ok: eta_post_send(c, 1, \"x\", 1, 0) -> -1 errno EBADFD",
            "child ok: close() of the inherited DDP socket -> 0",
            "child ok: a plain TCP socket works",
            "child ok: a new DDP connection made in the child works (the child starts its own engine)",
            "ok: parent: 3 messages echoed after the child got EBADFD, closed its copy and exited",
            "ok: exec (/bin/sh, no shim): the DDP socket and its dup2 are not in the new image, the plain socket is",
            "ok: parent: the connection works after the exec'd children exited",
        ],
    );
    assert_checks(c, "ddp_fork_exec client", 6);
    server.assert_lines(
        "ddp_fork_exec server",
        &["echo server: 1 connections, 6 messages echoed"],
    );
}

#[test]
fn threads_share_one_socket_without_tearing_messages() {
    let dir = TempDir::new("ddp-threads");
    let exe = build("ddp_threads", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&["300"]], dir.path());
    assert_checks(&clients[0], "ddp_threads client", 2);
    server.assert_lines(
        "ddp_threads server",
        &["server: 2400 messages, whole and in order per thread"],
    );
}

#[test]
fn signals_and_time_outs_end_blocking_calls_as_on_sockets() {
    let dir = TempDir::new("ddp-signals");
    let exe = build("ddp_signals", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_signals client",
        &[
            "ok: SA_RESTART: a blocking read went on waiting through 10 signals and returned the message",
            "ok: read(s, buf, sizeof buf) -> -1 errno EINTR",
            "ok: without SA_RESTART: the signal ends a blocking read with EINTR; the socket works on",
            "ok: read(s, buf, sizeof buf) -> -1 errno EAGAIN",
            "ok: SO_RCVTIMEO: a read with nothing to read waits its 200 ms, then EAGAIN; the socket works on",
            "ok: SO_SNDTIMEO: a write the peer does not make room for within 200 ms -> EAGAIN; every message taken before came back",
            "ok: SO_RCVTIMEO set before connect holds after the switch to DDP mode",
        ],
    );
    assert_checks(c, "ddp_signals client", 7);
    server.assert_success("ddp_signals server");
}

#[test]
fn lent_buffer_reads_and_direct_writes_keep_the_socket_semantics() {
    let dir = TempDir::new("ddp-zero-copy");
    let exe = build("ddp_zero_copy", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_zero_copy client",
        &[
            "ok: a 1 MiB message read with a 100000-octet buffer comes in parts of 100000, MSG_EOR on the last, nothing lost",
            "ok: readv into 3 iovecs (7 + 1000 + 50000 octets) of a 200000-octet message: the iovecs filled in order, MSG_EOR on the last part",
            "ok: a 512 KiB message read with a larger buffer comes whole, with MSG_EOR",
            "ok: 1.5 MiB messages written and read back under a signal every 300 us (no SA_RESTART): every write took the whole message, interrupted reads took nothing, nothing lost or repeated",
            "ok: a writer whose peer stops reading waits (signals do not cut a write short), then every message arrives whole and in order",
        ],
    );
    assert_checks(c, "ddp_zero_copy client", 5);
    server.assert_success("ddp_zero_copy server");
}

#[test]
fn documented_errnos_for_bad_input() {
    let dir = TempDir::new("ddp-errors");
    let exe = build("ddp_errors", dir.path());
    let (server, clients) = pair(&exe, &["server"], &[&[]], dir.path());
    let c = &clients[0];
    c.assert_lines(
        "ddp_errors client",
        &[
            "ok: eta_poll(fd, &wc, 1) -> -1 errno EBADF",
            "ok: setsockopt(udp, SOL_ETA, ETA_DDPMODE, &one, sizeof one) -> -1 errno ENOPROTOOPT",
            "ok: setsockopt(unx, SOL_ETA, ETA_DDPMODE, &one, sizeof one) -> -1 errno ENOPROTOOPT",
            "ok: setsockopt(s, SOL_ETA, ETA_DDPMODE, &zero, sizeof zero) -> -1 errno EINVAL",
            "ok: setsockopt(d, SOL_ETA, ETA_CRC, &one, sizeof one) -> -1 errno EISCONN",
            "ok: eta_reg_mr(d, mem, 0, ETA_ACCESS_REMOTE_WRITE) -> 0 errno EINVAL",
            "ok: eta_dereg_mr(d, st) -> -1 errno EINVAL",
            "ok: eta_poll(d, &wc, 0) -> -1 errno EINVAL",
            "ok: the connection still works after all refused calls",
            "ok: eta_post_recv(e, 1024, small[1024], sizeof small[1024]) -> -1 errno EAGAIN",
            "ok: connect(s, (struct sockaddr *)&a, sizeof a) -> -1 errno ECONNRESET",
            "ok: connect(s, (struct sockaddr *)&a, sizeof a) -> -1 errno EPROTO",
        ],
    );
    assert_checks(c, "ddp_errors client", 73);
    server.assert_lines(
        "ddp_errors server",
        &["echo server: 2 connections, 1 messages echoed"],
    );
}

#[test]
fn without_libeta_sol_eta_is_enoprotoopt() {
    let dir = TempDir::new("ddp-noshim");
    let exe = compile_c_strict(
        "ddp_errors.c",
        "ddp_errors_nolib",
        &["-DETA_NO_LIB"],
        dir.path(),
    );
    let syms = imported_symbols(&exe);
    assert!(
        !syms.iter().any(|s| s.starts_with("eta_")),
        "the -DETA_NO_LIB build still calls eta_*: {syms:?}"
    );
    let o = run(
        "ddp_errors noshim",
        Command::new(&exe).arg("noshim").env_remove("LD_PRELOAD"),
        T,
    );
    o.assert_success("ddp_errors noshim without libeta.so");
    o.assert_lines(
        "ddp_errors noshim",
        &[
            "ok: setsockopt(s, SOL_ETA, ETA_DDPMODE, &one, sizeof one) -> -1 errno ENOPROTOOPT",
            "ddp_errors noshim: 1 checks ok",
        ],
    );
    assert_eq!(o.err(), "");
}

/// `scripts/install.sh --lib <shim> <prefix>` into a fresh prefix; checks the files.
fn install(prefix: &Path) {
    let script = crate_dir().join("../scripts/install.sh");
    let o = run(
        "install.sh",
        Command::new("bash")
            .arg(&script)
            .arg("--lib")
            .arg(shim())
            .arg(prefix),
        T,
    );
    o.assert_success("scripts/install.sh");
    let lib = prefix.join("lib/libeta.so");
    assert_eq!(
        fs::read(&lib).expect("installed lib/libeta.so"),
        fs::read(shim()).unwrap(),
        "lib/libeta.so is not the built library"
    );
    assert_eq!(
        fs::read(prefix.join("include/eta.h")).expect("installed include/eta.h"),
        fs::read(include_dir().join("eta.h")).unwrap()
    );
    let pc = fs::read_to_string(prefix.join("lib/pkgconfig/eta.pc")).expect("installed eta.pc");
    assert!(
        pc.lines()
            .any(|l| l == format!("prefix={}", prefix.display())),
        "eta.pc does not name the prefix:\n{pc}"
    );
}

/// `pkg-config <args> eta` with the prefix's pkgconfig directory.
fn pkg_config(prefix: &Path, args: &[&str]) -> String {
    let o = run(
        "pkg-config",
        Command::new(require("pkg-config", "pkg-config"))
            .args(args)
            .arg("eta")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env_remove("PKG_CONFIG_LIBDIR")
            .env_remove("PKG_CONFIG_SYSROOT_DIR"),
        T,
    );
    o.assert_success("pkg-config");
    o.out().trim().to_string()
}

/// Installs into `prefix` and builds c/ddp_echo.c with nothing but
/// `pkg-config --cflags --libs eta` (and an rpath to the prefix's lib/).
fn build_with_pkg_config(prefix: &Path, dir: &Path) -> PathBuf {
    install(prefix);
    let flags = pkg_config(prefix, &["--cflags", "--libs"]);
    assert_eq!(
        flags,
        format!("-I{0}/include -L{0}/lib -leta", prefix.display()),
        "pkg-config --cflags --libs eta"
    );
    assert_eq!(
        pkg_config(prefix, &["--modversion"]),
        env!("CARGO_PKG_VERSION")
    );
    let exe = dir.join("ddp_echo_pc");
    let o = run(
        "cc with pkg-config flags",
        Command::new(require("cc", "gcc"))
            .args(["-Wall", "-Wextra", "-Werror", "-O2", "-pthread", "-o"])
            .arg(&exe)
            .arg(crate_dir().join("c/ddp_echo.c"))
            .args(flags.split_whitespace())
            .arg(format!("-Wl,-rpath,{}/lib", prefix.display())),
        T,
    );
    o.assert_success("cc $(pkg-config --cflags --libs eta) ddp_echo.c");
    exe
}

#[test]
fn install_sh_and_pkg_config_build_a_program() {
    let prefix = TempDir::new("prefix");
    let dir = TempDir::new("pc-build");
    let exe = build_with_pkg_config(prefix.path(), dir.path());
    let needed = needed_libraries(&exe);
    assert!(
        needed.iter().any(|l| l == "libeta.so"),
        "the pkg-config build does not link libeta.so: {needed:?}"
    );
}

#[test]
fn program_linked_via_pkg_config_runs_without_ld_preload() {
    let prefix = TempDir::new("prefix-run");
    let dir = TempDir::new("pc-run");
    let exe = build_with_pkg_config(prefix.path(), dir.path());
    let (_, clients) = Pair {
        exe: &exe,
        server: &["server", "1"],
        clients: &[&["full"]],
        preload: false,
        timeout: T,
    }
    .run(dir.path());
    assert_checks(&clients[0], "ddp_echo (linked, no LD_PRELOAD)", 16);
}

#[test]
fn a_program_that_writes_and_leaves_loses_nothing() {
    let dir = TempDir::new("ddp-exit");
    let exe = build("ddp_exit", dir.path());
    for how in ["close-_exit", "exit", "nonblock-exit"] {
        let (server, clients) = pair(&exe, &["server", how], &[&[]], dir.path());
        server.assert_lines(
            "ddp_exit server",
            &[&format!(
                "server: 32 messages of 1048576 octets written, leaving by {how}"
            )],
        );
        clients[0].assert_lines(
            &format!("ddp_exit client ({how})"),
            &[
                "ok: 32 messages of 1048576 octets, each intact",
                "ok: then the end of the stream",
            ],
        );
        assert_checks(&clients[0], "ddp_exit client", 2);
    }
}

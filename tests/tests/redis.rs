//! redis-server under the shim, with redis-benchmark and redis-cli under the shim.

use std::process::Command;
use std::time::Duration;

use eta_tests::{Server, TempDir, free_port, require, run, shimmed};

#[test]
fn redis_benchmark_and_cli_round_trip() {
    let server_exe = require("redis-server", "redis-server");
    let bench = require("redis-benchmark", "redis-tools");
    let cli = require("redis-cli", "redis-tools");
    let dir = TempDir::new("redis");
    let port = free_port().to_string();
    let mut server = Server::start(
        "redis-server",
        shimmed(&mut Command::new(server_exe))
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes", "--dir"])
            .arg(dir.path()),
        dir.path(),
    );
    server.wait_port(port.parse().unwrap(), Duration::from_secs(20));
    server.assert_shim_loaded();

    let o = run(
        "redis-benchmark",
        shimmed(&mut Command::new(bench)).args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "-n",
            "2000",
            "-t",
            "set,get",
        ]),
        Duration::from_secs(60),
    );
    o.assert_success("redis-benchmark");
    let report = o.out();
    for op in ["SET: ", "GET: "] {
        let line = report
            .split(['\r', '\n'])
            .rfind(|l| l.starts_with(op) && l.contains("requests per second"))
            .unwrap_or_else(|| panic!("no {op} result in redis-benchmark's output:\n{report}"));
        let rate: f64 = line[op.len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unreadable rate in {line:?}"));
        assert!(rate > 0.0, "{line}");
    }

    let cli_run = |args: &[&str]| {
        let o = run(
            "redis-cli",
            shimmed(&mut Command::new(&cli))
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(args),
            Duration::from_secs(20),
        );
        o.assert_success("redis-cli");
        o.out()
    };
    assert_eq!(cli_run(&["set", "eta-key", "through the shim"]), "OK\n");
    assert_eq!(cli_run(&["get", "eta-key"]), "through the shim\n");
    server.assert_running();
}

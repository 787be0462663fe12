//! The shim is silent and invisible: programs print exactly what they print
//! without it, unless `ETA_LOG` asks.

use std::process::Command;
use std::time::Duration;

use eta_tests::{curl_or_fail, python3, run, shim, shimmed};

const T: Duration = Duration::from_secs(30);

fn same_with_and_without(what: &str, program: &str, args: &[&str]) {
    let plain = run(
        what,
        Command::new(program).args(args).env_remove("LD_PRELOAD"),
        T,
    );
    let under = run(what, shimmed(&mut Command::new(program)).args(args), T);
    assert_eq!(
        plain.status.code(),
        under.status.code(),
        "{what}: exit status"
    );
    assert_eq!(
        plain.out(),
        under.out(),
        "{what}: stdout differs under the shim"
    );
    assert_eq!(
        plain.err(),
        under.err(),
        "{what}: stderr differs under the shim"
    );
}

#[test]
fn programs_print_exactly_the_same_under_the_shim() {
    same_with_and_without("true", "/bin/true", &[]);
    same_with_and_without("false", "/bin/false", &[]);
    same_with_and_without("echo", "/bin/echo", &["hi"]);
    let curl = curl_or_fail();
    same_with_and_without("curl --version", curl.to_str().unwrap(), &["--version"]);
    let py = python3();
    same_with_and_without(
        "python3 socketpair",
        py.to_str().unwrap(),
        &[
            "-c",
            "import socket; a, b = socket.socketpair(); a.send(b'hi'); print(b.recv(2))",
        ],
    );
}

#[test]
fn eta_log_is_the_only_way_to_make_it_talk() {
    let o = run(
        "true, ETA_LOG=info",
        shimmed(&mut Command::new("/bin/true")).env("ETA_LOG", "info"),
        T,
    );
    o.assert_success("true");
    assert!(
        o.err().starts_with("eta[info]: libeta.so loaded in pid "),
        "ETA_LOG=info should announce the shim, got {:?}",
        o.err()
    );
    assert!(o.out().is_empty());
    let o = run(
        "true, ETA_LOG=error",
        shimmed(&mut Command::new("/bin/true")).env("ETA_LOG", "error"),
        T,
    );
    assert_eq!(o.err(), "", "ETA_LOG=error: nothing to report");
    let o = run(
        "true, ETA_LOG=loud",
        shimmed(&mut Command::new("/bin/true")).env("ETA_LOG", "loud"),
        T,
    );
    assert!(
        o.err().contains("ETA_LOG=\"loud\" not understood"),
        "{:?}",
        o.err()
    );
    assert!(shim().is_absolute());
}

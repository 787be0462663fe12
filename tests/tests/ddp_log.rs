//! `ETA_LOG=debug` tells each DDP socket's life, from C: `c/ddp_rdma.c` (which ends
//! its last connection with a Terminate each way) runs as a server/client pair with
//! the shim's debug log on, and both stderrs must show the switch to DDP mode, the
//! connection established with what MPA setup agreed, the failure as `ETA_ERROR`
//! gives it, and the close; and nothing for each message. Without `ETA_LOG` the same
//! pair prints nothing on stderr: `ddp_c.rs` runs it ([`eta_tests::Pair`] fails on
//! any stderr output).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use eta_tests::{Outcome, Server, TempDir, compile_eta_c, run, shimmed};

const T: Duration = Duration::from_secs(180);

/// `exe` run under the shim with `ETA_LOG=debug`.
fn debug_logged(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    shimmed(&mut cmd).env("ETA_LOG", "debug");
    cmd
}

/// Runs the ddp_rdma pair with the debug log on; (server, client), both exited 0.
fn rdma_pair(dir: &Path) -> (Outcome, Outcome) {
    let exe = compile_eta_c("ddp_rdma.c", "ddp_rdma", &[], dir);
    let mut server = Server::start("ddp_rdma-server", debug_logged(&exe).arg("server"), dir);
    let port = server.first_line(Duration::from_secs(30));
    let client = run(
        "ddp_rdma client, ETA_LOG=debug",
        debug_logged(&exe).args(["client", &port]),
        T,
    );
    client.assert_success("ddp_rdma client, ETA_LOG=debug");
    let server = server.finish(T);
    server.assert_success("ddp_rdma server, ETA_LOG=debug");
    (server, client)
}

/// The text between `ETA_ERROR "` and the next `"` in the stdout line containing
/// `marker`.
fn eta_error(o: &Outcome, marker: &str) -> String {
    let out = o.out();
    let line = out
        .lines()
        .find(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no line with {marker:?} in:\n{out}"));
    let why = line
        .split("ETA_ERROR \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no ETA_ERROR in {line:?}"));
    assert!(!why.is_empty(), "empty ETA_ERROR in {line:?}");
    why.to_string()
}

/// Fails the test unless some debug line of `err` contains every part of `parts`.
fn assert_debug_line(what: &str, err: &str, parts: &[&str]) {
    assert!(
        err.lines()
            .filter(|l| l.starts_with("eta[debug]: "))
            .any(|l| parts.iter().all(|p| l.contains(p))),
        "{what}: no debug line with {parts:?} in its stderr:\n{err}"
    );
}

#[test]
fn eta_log_debug_tells_each_ddp_sockets_life() {
    let dir = TempDir::new("ddp-log");
    let (server, client) = rdma_pair(dir.path());
    let client_why = eta_error(&client, "ok: RDMA Write to an invalidated STag");
    let server_why = eta_error(&server, "server: RDMA Write to an invalidated STag");
    for (what, o, role, why) in [
        ("client", &client, "Initiator", &client_why),
        ("server", &server, "Responder", &server_why),
    ] {
        let err = o.err();
        assert!(
            err.lines().all(|l| l.starts_with("eta[")),
            "{what}: stderr has lines that are not the shim's log:\n{err}"
        );
        assert!(
            err.starts_with("eta[info]: libeta.so loaded in pid "),
            "{what}: {err}"
        );
        assert_debug_line(what, &err, &["DDP mode on"]);
        assert_debug_line(
            what,
            &err,
            &[&format!("switched to DDP mode, MPA setup as the {role}")],
        );
        assert_debug_line(
            what,
            &err,
            &[
                &format!("established as the MPA {role}: MPA revision 2"),
                ", CRC on, markers off sent / off received, IRD ",
                ", ORD ",
                ", RTR ",
                "octets of private data from the peer",
            ],
        );
        assert_debug_line(what, &err, &["DDP socket failed: ", why.as_str()]);
        assert_debug_line(
            what,
            &err,
            &["DDP socket closed (connection ", why.as_str()],
        );
        assert_debug_line(
            what,
            &err,
            &["DDP socket closed (connection ", "closes gracefully"],
        );
        // Nothing per message: a handful of lines per connection, however many
        // messages and completions it carried.
        let connections = err.matches("established as the MPA").count();
        let debug = err
            .lines()
            .filter(|l| l.starts_with("eta[debug]: "))
            .count();
        assert!(
            connections >= 3,
            "{what}: {connections} connections:\n{err}"
        );
        assert!(
            debug <= 6 * connections,
            "{what}: {debug} debug lines for {connections} connections:\n{err}"
        );
    }
    assert_debug_line("server", &server.err(), &["accepted fd "]);
    assert_debug_line("server", &server.err(), &["listening in DDP mode"]);
}

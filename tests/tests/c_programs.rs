//! C programs, built here with `cc` both plainly and with `_FORTIFY_SOURCE=2 -O2`
//! (glibc's `__read_chk`, `__recv_chk`, `__recvfrom_chk`, `__poll_chk`), under the
//! shim: errno, `SOL_ETA`, no extra thread, and a threaded server that forks per
//! connection with a threaded client.

use std::process::Command;
use std::time::Duration;

use eta_tests::{C_BUILDS, Server, TempDir, compile_c, imported_symbols, run, shimmed};

const T: Duration = Duration::from_secs(60);
const CHK: [&str; 4] = ["__read_chk", "__recv_chk", "__recvfrom_chk", "__poll_chk"];

fn assert_fortified(exe: &std::path::Path, fortified: bool) {
    let syms = imported_symbols(exe);
    for chk in CHK {
        assert_eq!(
            syms.iter().any(|s| s == chk),
            fortified,
            "{}: {chk} {} expected among {syms:?}",
            exe.display(),
            if fortified { "is" } else { "is not" }
        );
    }
}

#[test]
fn errno_sol_eta_and_threads_are_as_without_the_shim() {
    let dir = TempDir::new("errno");
    for (build, flags) in C_BUILDS {
        let exe = compile_c(
            "errno_check.c",
            &format!("errno_check_{build}"),
            flags,
            dir.path(),
        );
        assert_fortified(&exe, build == "fortify");
        let plain = run(
            "errno_check",
            Command::new(&exe).env_remove("LD_PRELOAD"),
            T,
        );
        plain.assert_success("errno_check without the shim");
        let under = run("errno_check", shimmed(&mut Command::new(&exe)), T);
        under.assert_success(&format!("errno_check ({build}) under the shim"));
        assert_eq!(
            plain.out(),
            under.out(),
            "{build}: output differs under the shim"
        );
        assert_eq!(under.err(), "", "{build}: the shim printed something");
        assert!(under.out().contains(
            "ok: setsockopt(UDP, SOL_ETA, ETA_DDPMODE) -> -1 errno Protocol not available"
        ));
        assert!(under.out().contains("ok: threads in this process -> 1"));

        // With ETA_LOG=info the shim says it saw SOL_ETA: the call went through it.
        let talk = run(
            "errno_check, ETA_LOG=info",
            shimmed(&mut Command::new(&exe)).env("ETA_LOG", "info"),
            T,
        );
        talk.assert_success("errno_check with ETA_LOG=info");
        assert_eq!(plain.out(), talk.out());
        assert!(
            talk.err().contains("SOL_ETA option 1 on fd"),
            "{}",
            talk.err()
        );
    }
}

#[test]
fn forking_threaded_server_and_threaded_client() {
    let dir = TempDir::new("fork");
    for (build, flags) in C_BUILDS {
        let server_exe = compile_c(
            "fork_server.c",
            &format!("fork_server_{build}"),
            flags,
            dir.path(),
        );
        let client_exe = compile_c(
            "echo_client.c",
            &format!("echo_client_{build}"),
            flags,
            dir.path(),
        );
        assert_fortified(&server_exe, build == "fortify");
        let mut server = Server::start(
            &format!("fork_server_{build}"),
            shimmed(&mut Command::new(&server_exe)),
            dir.path(),
        );
        let port = server.first_line(Duration::from_secs(10));
        server.assert_shim_loaded();
        let o = run(
            "echo_client",
            shimmed(&mut Command::new(&client_exe)).args([port.as_str(), "4", "300"]),
            T,
        );
        o.assert_success(&format!("echo_client ({build})"));
        assert!(
            o.out().starts_with("echo_client: 1200 messages, "),
            "{}",
            o.out()
        );
        assert_eq!(o.err(), "");
        server.assert_running();
        let (out, err) = server.stop();
        assert_eq!(out, format!("{port}\n"));
        assert_eq!(err, "", "fork_server ({build}) wrote to stderr");
    }
}

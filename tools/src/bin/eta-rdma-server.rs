//! eta-rdma-server: rdma-core's `rdma_server` example over eta, wire- and
//! application-compatible with `rdma_client` on Linux soft-iWARP (siw).
//!
//! The exchange (see `eta_tools::rdma_example`): accept one connection, receive
//! the client's 16 octets, Send a 16-octet answer, wait for its completion,
//! disconnect. Unlike `rdma_server`, the client's message is checked (length, and
//! the zero octets rdma_client sends). Exit status 0 on success, 1 on failure (a
//! message on stderr), 2 on bad usage.

use std::process::ExitCode;

use eta_engine::Connection;
use eta_tools::args::{exit_status, parse_or_exit};
use eta_tools::endpoint::{Res, accept, listen, message, resolve, then_close, wait_cq};
use eta_tools::rdma_example::{self, ExampleArgs, MSG_LEN};

const HELP: &str = "\
eta-rdma-server: rdma-core's rdma_server over eta (one 16-octet Send each way)

USAGE:
  eta-rdma-server [-s ADDR] [-p PORT] [-t SECS] [-v] [--solicited] [MPA options]

  -s ADDR          address to bind (default 0.0.0.0, rdma_server's)
  -p PORT          TCP port (default 7471, rdma_server's)
  -t SECS          time-out of every wait after the accept (default 30)
  -v               print the client's message (\"rdma_server: message ...\")
  --solicited      send the answer as Send with Solicited Event
  -h, --help       this text
";

fn run(a: &ExampleArgs) -> Res<()> {
    let listener = listen("eta-rdma-server", resolve(&a.host, a.port)?, &a.opts)?;
    let conn = accept("eta-rdma-server", &listener, &a.opts, "rdma_get_request")?;
    then_close(conn, |c| exchange(a, c))
}

fn exchange(a: &ExampleArgs, conn: &Connection) -> Res<()> {
    // A message that arrives before this receive is posted waits in the engine's
    // receive pool and lands here.
    conn.post_recv(0, vec![0; MSG_LEN])
        .map_err(|e| format!("rdma_post_recv: {e}"))?;
    let msg = message(wait_cq(conn, true, "the client's message", a.timeout)?);
    rdma_example::check("client", &msg)?;
    if a.verbose {
        println!("rdma_server: message {}", rdma_example::hex(&msg));
    }
    conn.post_send(1, rdma_example::message(), a.send_opts())
        .map_err(|e| format!("rdma_post_send: {e}"))?;
    wait_cq(conn, false, "the Send completion", a.timeout)?;
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse_or_exit("eta-rdma-server", HELP, || {
        ExampleArgs::parse("0.0.0.0", |_| false)
    }) {
        Ok(a) => a,
        Err(code) => return code,
    };
    println!("rdma_server: start");
    let code = exit_status("eta-rdma-server", "server", run(&a));
    println!("rdma_server: end {code}");
    ExitCode::from(code)
}

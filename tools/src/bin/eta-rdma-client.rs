//! eta-rdma-client: rdma-core's `rdma_client` example over eta, wire- and
//! application-compatible with `rdma_server` on Linux soft-iWARP (siw).
//!
//! The exchange (see `eta_tools::rdma_example`): connect, Send 16 octets, wait for
//! the Send completion, receive the server's 16-octet answer, disconnect. Unlike
//! `rdma_client`, the answer is checked (length, and the zero octets rdma_server
//! sends). Exit status 0 on success, 1 on failure (a message on stderr), 2 on bad
//! usage.
//!
//! `--fault-bad-crc` replaces the engine with a hand-driven MPA Initiator
//! (`eta_tools::fault`) that sends the 16-octet message in one FPDU whose CRC is
//! wrong, then decodes and reports what the server sends back: a Terminate
//! (LLP / MPA / CRC error) is success in that mode.

use std::process::ExitCode;

use eta_ddp_core::error::{LlpError, TerminateReason};
use eta_engine::Connection;
use eta_tools::args::{exit_status, parse_or_exit};
use eta_tools::endpoint::{
    Res, SIW_SETTLE, connect, message, resolve, setup_line, then_close, wait_cq,
};
use eta_tools::fault::{PeerAnswer, RawInitiator};
use eta_tools::rdma_example::{self, ExampleArgs, MSG_LEN};

const HELP: &str = "\
eta-rdma-client: rdma-core's rdma_client over eta (one 16-octet Send each way)

USAGE:
  eta-rdma-client [-s SERVER] [-p PORT] [-t SECS] [-v] [--solicited] [MPA options]
  eta-rdma-client --fault-bad-crc [-s SERVER] [-p PORT] [-t SECS]

  -s SERVER        server address (default 127.0.0.1, rdma_client's)
  -p PORT          TCP port (default 7471, rdma_client's)
  -t SECS          time-out of every wait (default 30)
  -v               print the answer (\"rdma_client: answer ...\")
  --solicited      send the message as Send with Solicited Event
  --fault-bad-crc  send the message in an FPDU with a wrong CRC (no engine; CRC
                   is asked for, no RTR) and report the server's Terminate
  -h, --help       this text
";

fn run(a: &ExampleArgs) -> Res<()> {
    let addr = resolve(&a.host, a.port)?;
    let conn = connect("eta-rdma-client", addr, &a.opts, "rdma_connect")?;
    then_close(conn, |c| exchange(a, c))
}

fn exchange(a: &ExampleArgs, conn: &Connection) -> Res<()> {
    conn.post_recv(0, vec![0; MSG_LEN])
        .map_err(|e| format!("rdma_post_recv: {e}"))?;
    // The RTR and this Send would otherwise follow siw's Reply at once.
    std::thread::sleep(SIW_SETTLE);
    conn.post_send(1, rdma_example::message(), a.send_opts())
        .map_err(|e| format!("rdma_post_send: {e}"))?;
    wait_cq(conn, false, "the Send completion", a.timeout)?;
    let answer = message(wait_cq(conn, true, "the server's answer", a.timeout)?);
    rdma_example::check("server", &answer)?;
    if a.verbose {
        println!("rdma_client: answer {}", rdma_example::hex(&answer));
    }
    Ok(())
}

/// `--fault-bad-crc`: the message goes out with a wrong CRC; the server's
/// Terminate must come back.
fn run_bad_crc(a: &ExampleArgs) -> Res<()> {
    let addr = resolve(&a.host, a.port)?;
    let mut cfg = a.opts.mpa.clone();
    cfg.crc = true;
    cfg.peer_to_peer = false;
    let mut raw = RawInitiator::connect(addr, &cfg, a.timeout)?;
    let (local, peer) = raw.addrs();
    eprintln!(
        "eta-rdma-client: {} (raw MPA, no engine)",
        setup_line(local, peer, raw.negotiated())
    );
    // Sent at once, the FPDU would sit unread in siw until the FIN (seen).
    std::thread::sleep(SIW_SETTLE);
    let (sent, good) = raw.send_with_bad_crc(1, &rdma_example::message())?;
    eprintln!(
        "eta-rdma-client: sent the {MSG_LEN}-octet Send (QN 0, MSN 1) with CRC field {sent:#010x}; \
         the right one is {good:#010x}"
    );
    match raw.await_answer(a.timeout)? {
        PeerAnswer::Terminate(t) => {
            let reason = t.reason();
            eprintln!(
                "eta-rdma-client: the server sent a Terminate: {reason}; layout {:?}, \
                 M/D/R {}/{}/{}",
                t.layout,
                u8::from(t.segment_len_valid),
                u8::from(t.ddp_header.is_some()),
                u8::from(t.rdma_flag)
            );
            if reason == TerminateReason::Llp(LlpError::CrcError) {
                Ok(())
            } else {
                Err(format!("expected an LLP CRC-error Terminate, got {reason}"))
            }
        }
        PeerAnswer::Other(op) => Err(format!(
            "the server answered a bad CRC with RDMAP opcode {op:#x}, not a Terminate"
        )),
        PeerAnswer::Closed => {
            Err("the server closed the connection without sending a Terminate".into())
        }
    }
}

fn main() -> ExitCode {
    let mut bad_crc = false;
    let a = match parse_or_exit("eta-rdma-client", HELP, || {
        ExampleArgs::parse("127.0.0.1", |f| {
            let known = f == "--fault-bad-crc";
            bad_crc |= known;
            known
        })
    }) {
        Ok(a) => a,
        Err(code) => return code,
    };
    println!("rdma_client: start");
    let res = if bad_crc { run_bad_crc(&a) } else { run(&a) };
    let code = exit_status("eta-rdma-client", "client", res);
    println!("rdma_client: end {code}");
    ExitCode::from(code)
}

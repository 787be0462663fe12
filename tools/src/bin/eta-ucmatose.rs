//! eta-ucmatose: rdma-core's `ucmatose` (`librdmacm/examples/cmatose.c`) over eta,
//! client and server, wire- and application-compatible with `ucmatose` on Linux
//! soft-iWARP (siw).
//!
//! ucmatose's protocol, with `-c` connections, `-C` messages of `-S` octets:
//!
//! 1. each connection posts `-C` receives of `-S` octets, all into the same buffer,
//!    before it connects (client, IRD = ORD = 1, no private data over TCP) or
//!    accepts (server, `rdma_accept(NULL)`);
//! 2. once every connection is established, the server posts `-C` Sends of `-S`
//!    octets on each (from that same buffer), waits for their completions, then
//!    for `-C` receives on each;
//! 3. the client waits for its `-C` receives on each connection, then posts `-C`
//!    Sends on each from the buffer the receives filled — so every reply carries
//!    the last message the server sent on that connection;
//! 4. the server disconnects every connection; the client waits for that.
//!
//! ucmatose never initialises its buffer and never checks what it receives. This
//! tool checks every length and count, and what can be known of the content: the
//! eta server sends a distinct pattern per connection and message and checks that
//! each reply equals the last message of its connection; the eta client replies
//! with its buffer exactly as ucmatose does. Exit status 0 on success, 1 on any
//! failure (a message on stderr), 2 on bad usage.

use std::process::ExitCode;
use std::time::Duration;

use eta_engine::{CompletionOp, Connection, Options, SendOptions};
use eta_tools::args::{exit_status, parse_each, parse_or_exit};
use eta_tools::endpoint::{
    Res, accept, close_and_wait, connect, listen, message, resolve, separate_cqs, wait_cq,
    wait_peer_close, wait_send_op,
};

const HELP: &str = "\
eta-ucmatose: rdma-core's ucmatose over eta (many connections, Send/Recv)

USAGE:
  eta-ucmatose  -s SERVER [-p PORT] [-c N] [-C N] [-S N] [-t SECS] [-v] [MPA options]
  eta-ucmatose [-b ADDR]  [-p PORT] [-c N] [-C N] [-S N] [-t SECS] [-v] [MPA options]

  -s SERVER        client role: the server's address
  -b ADDR          server role: the address to bind (default 0.0.0.0)
  -p PORT          TCP port (default 7471, ucmatose's)
  -c N             connections (default 1)
  -C N             messages per connection each way (default 10)
  -S N             message size in octets (default 100; 0 means no messages)
  -t SECS          time-out of every wait (default 30)
  -v               print a line per connection with what was checked
  -h, --help       this text
";

#[derive(Debug)]
struct Args {
    server: Option<String>,
    bind: String,
    port: u16,
    connections: usize,
    count: usize,
    size: usize,
    timeout: Duration,
    verbose: bool,
    opts: Options,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        server: None,
        bind: "0.0.0.0".into(),
        port: 7471,
        connections: 1,
        count: 10,
        size: 100,
        timeout: Duration::from_secs(30),
        verbose: false,
        opts: Options::default(),
    };
    let mut opts = Options::default();
    parse_each(&mut opts, |arg, argv| {
        match arg {
            "-s" => a.server = Some(argv.value("-s")?),
            "-b" => a.bind = argv.value("-b")?,
            "-p" => a.port = argv.number("-p")?,
            "-c" => a.connections = argv.number("-c")?,
            "-C" => a.count = argv.number("-C")?,
            "-S" => a.size = argv.number("-S")?,
            "-t" => a.timeout = argv.seconds("-t")?,
            "-v" => a.verbose = true,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    a.opts = opts;
    if a.connections == 0 {
        return Err("-c must be at least 1".into());
    }
    // cmatose.c: a zero message size means no messages.
    if a.size == 0 {
        a.count = 0;
    }
    // ucmatose's client asks for IRD = ORD = 1 (its conn_param); it never reads.
    if a.server.is_some() {
        a.opts.mpa.ird = 1;
        a.opts.mpa.ord = 1;
    }
    separate_cqs(&mut a.opts)?;
    Ok(a)
}

/// The eta server's message `msg` on connection `conn`: a pattern that differs
/// between connections and messages.
fn pattern(conn: usize, msg: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| (conn * 31 + msg * 7 + i) as u8).collect()
}

/// Posts the `-C` receives of one connection.
fn post_recvs(a: &Args, conn: &Connection) -> Res<()> {
    for i in 0..a.count {
        conn.post_recv(i as u64, vec![0; a.size])
            .map_err(|e| format!("failed to post receives: {e}"))?;
    }
    Ok(())
}

/// Waits for the `-C` receives of connection `n`; returns the buffer as ucmatose
/// leaves it (the last message).
fn receive_all(a: &Args, n: usize, conn: &Connection) -> Res<Vec<u8>> {
    let mut last = vec![0; a.size];
    for i in 0..a.count {
        let what = format!("message {i} of {} on connection {n}", a.count);
        let c = wait_cq(conn, true, &what, a.timeout)?;
        if c.byte_len as usize != a.size {
            return Err(format!(
                "{what}: {} octets, expected {}",
                c.byte_len, a.size
            ));
        }
        last = message(c);
    }
    Ok(last)
}

/// Posts the `-C` Sends of connection `n` and waits for their completions; the
/// payload of message `i` is `payload(i)`.
fn send_all(a: &Args, n: usize, conn: &Connection, payload: impl Fn(usize) -> Vec<u8>) -> Res<()> {
    for i in 0..a.count {
        conn.post_send(i as u64, payload(i), SendOptions::default())
            .map_err(|e| format!("failed to post sends: {e}"))?;
    }
    for i in 0..a.count {
        let what = format!("Send {i} of {} on connection {n}", a.count);
        wait_send_op(conn, CompletionOp::Send, &what, a.timeout)?;
    }
    Ok(())
}

fn run_client(a: &Args, server: &str) -> Res<()> {
    println!("cmatose: starting client");
    let addr = resolve(server, a.port)?;
    println!("cmatose: connecting");
    let mut conns = Vec::with_capacity(a.connections);
    for n in 0..a.connections {
        let conn = connect("eta-ucmatose", addr, &a.opts, &format!("connection {n}"))?;
        post_recvs(a, &conn)?;
        conns.push(conn);
    }
    let res = client_transfers(a, &conns);
    for c in &conns {
        close_and_wait(c, Duration::from_secs(2));
    }
    res
}

fn client_transfers(a: &Args, conns: &[Connection]) -> Res<()> {
    if a.count > 0 {
        println!("receiving data transfers");
        let mut bufs = Vec::with_capacity(conns.len());
        for (n, conn) in conns.iter().enumerate() {
            bufs.push(receive_all(a, n, conn)?);
        }
        println!("sending replies");
        for (n, (conn, buf)) in conns.iter().zip(&bufs).enumerate() {
            send_all(a, n, conn, |_| buf.clone())?;
            if a.verbose {
                println!(
                    "connection {n}: received {} x {} octets, replied with the last",
                    a.count, a.size
                );
            }
        }
        println!("data transfers complete");
    }
    for (n, conn) in conns.iter().enumerate() {
        let what = format!("the server's disconnect of connection {n}");
        wait_peer_close(conn, &what, a.timeout)?;
    }
    println!("disconnected");
    Ok(())
}

fn run_server(a: &Args) -> Res<()> {
    println!("cmatose: starting server");
    let listener = listen("eta-ucmatose", resolve(&a.bind, a.port)?, &a.opts)?;
    let mut conns = Vec::with_capacity(a.connections);
    for n in 0..a.connections {
        let conn = accept(
            "eta-ucmatose",
            &listener,
            &a.opts,
            &format!("connection {n}"),
        )?;
        post_recvs(a, &conn)?;
        conns.push(conn);
    }
    let res = server_transfers(a, &conns);
    println!("cmatose: disconnecting");
    for c in &conns {
        close_and_wait(c, Duration::from_secs(2));
    }
    if res.is_ok() {
        println!("disconnected");
    }
    res
}

fn server_transfers(a: &Args, conns: &[Connection]) -> Res<()> {
    if a.count == 0 {
        return Ok(());
    }
    if a.opts.responder_sends_first {
        // siw as Initiator reports the connection established (and takes FPDUs)
        // only after it has moved the socket to its receive path; Sends that arrive
        // just after the MPA Reply end in RDMA_CM_EVENT_CONNECT_ERROR on its side.
        // (The RTR of RFC 6581 exists for this; siw's client sends none.)
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("initiating data transfers");
    println!("completing sends");
    for (n, conn) in conns.iter().enumerate() {
        send_all(a, n, conn, |i| pattern(n, i, a.size))?;
    }
    println!("receiving data transfers");
    for (n, conn) in conns.iter().enumerate() {
        // Every reply carries the client's buffer after the last receive.
        let last = pattern(n, a.count - 1, a.size);
        for i in 0..a.count {
            let what = format!("reply {i} of {} on connection {n}", a.count);
            let got = message(wait_cq(conn, true, &what, a.timeout)?);
            if got != last {
                let at = got.iter().zip(&last).position(|(x, y)| x != y);
                return Err(format!(
                    "{what}: {} octets, differs from the last message sent at octet {}",
                    got.len(),
                    at.unwrap_or(got.len().min(last.len()))
                ));
            }
        }
        if a.verbose {
            println!(
                "connection {n}: {} x {} octets sent, {} replies equal to the last",
                a.count, a.size, a.count
            );
        }
    }
    println!("data transfers complete");
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse_or_exit("eta-ucmatose", HELP, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (role, res) = match &a.server {
        Some(s) => ("client", run_client(&a, s)),
        None => ("server", run_server(&a)),
    };
    let code = exit_status("eta-ucmatose", role, res);
    println!("test complete");
    println!("return status {code}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_between_messages_and_connections() {
        assert_ne!(pattern(0, 0, 8), pattern(0, 1, 8));
        assert_ne!(pattern(0, 0, 8), pattern(1, 0, 8));
        assert_eq!(pattern(2, 3, 5).len(), 5);
    }
}

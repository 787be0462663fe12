//! eta-rping: rdma-core's `rping` over eta, client and server, wire- and
//! application-compatible with `rping` on Linux soft-iWARP (siw).
//!
//! rping's application protocol (rdma-core `librdmacm/examples/rping.c`), one
//! iteration ("ping"):
//!
//! 1. the client fills its "start" buffer with `rdma-ping-<n>: ` followed by the
//!    letters `A`..`z` cycling from a start letter that advances each ping, with a
//!    NUL as the last octet, and Sends `{u64 buf, u32 rkey, u32 size}` (16 octets,
//!    network byte order) describing it;
//! 2. the server RDMA-Reads `size` octets from (rkey, buf) into its own buffer and
//!    Sends a 16-octet "go ahead";
//! 3. the client Sends the same kind of descriptor for its "rdma" (sink) buffer;
//! 4. the server RDMA-Writes `strlen(data) + 1` octets of what it read into the
//!    sink and Sends "go ahead" again;
//! 5. the client compares the sink with the start buffer.
//!
//! The server serves pings until the client disconnects. `buf` is the tagged offset
//! the peer must use with `rkey`: siw advertises a virtual address, eta its region's
//! offset (0); each side uses what the other advertised verbatim.
//!
//! Unlike rping, eta-rping always verifies the data (both roles), and the server
//! with `-C N` also checks that exactly N pings arrived. Exit status 0 on success,
//! 1 on any failure (with a message on stderr), 2 on bad usage.

use std::process::ExitCode;
use std::time::Duration;

use eta_engine::{
    Access, Completion, CompletionOp, Connection, Options, RemoteRegion, SendOptions, Stag,
};
use eta_tools::args::{exit_status, parse_each, parse_or_exit};
use eta_tools::endpoint::{
    PEER_GONE, Res, accept, connect, drain_send_cq, listen, resolve, separate_cqs, then_close,
    wait_cq, wait_recv_or_close, wait_send_op,
};

const HELP: &str = "\
eta-rping: rdma-core's rping over eta (RDMA Read/Write ping-pong with data check)

USAGE:
  eta-rping -s [-a ADDR] [-p PORT] [-C COUNT] [-S SIZE] [-v] [-d] [MPA options]
  eta-rping -c  -a ADDR  [-p PORT] [-C COUNT] [-S SIZE] [-v] [-d] [MPA options]

  -c / -s          client / server role
  -a ADDR          client: server address; server: address to bind (default 0.0.0.0)
  -p PORT          TCP port (default 7174, rping's)
  -C COUNT         client: pings to run (0 = forever, default); server: pings
                   expected before the client disconnects (0 = any, default)
  -S SIZE          ping data size, 26 to 65535 (default 64)
  -v               print the ping data (\"ping data: ...\" / \"server ping data: ...\")
  -V               accepted for rping compatibility (data is always verified)
  -d               debug output on stderr
  -t SECS          time-out of every wait (default 30)
  --solicited      every Send of this end carries the Solicited Event flag
  -h, --help       this text
Faults, to see the peer's Terminate (the interop error cells):
  --fault-bad-stag      server: RDMA-Read the client's buffer with a wrong STag
  --fault-short-region  client: register half the start buffer, advertise all of it
  --send-invalidate     server: the go-ahead after the first RDMA Read is a Send
                        with Invalidate of the client's start-buffer STag, so the
                        second ping's Read of it must be refused by the client
";

/// rping's `RPING_MSG_FMT`.
const MSG_PREFIX: &str = "rdma-ping-";
/// `sizeof(stringify(INT_MAX)) + sizeof(RPING_MSG_FMT)`: 11 + 15.
const MIN_SIZE: usize = 26;
/// `RPING_BUFSIZE - 1`.
const MAX_SIZE: usize = 64 * 1024 - 1;
/// Pause before the client's first message (see `client_loop`).
const FIRST_SEND_DELAY: Duration = Duration::from_millis(100);
/// `sizeof(struct rping_rdma_info)`.
const INFO_LEN: usize = 16;

#[derive(Debug, Clone)]
struct Args {
    server: bool,
    addr: Option<String>,
    port: u16,
    count: u64,
    size: usize,
    verbose: bool,
    debug: bool,
    timeout: Duration,
    opts: Options,
    /// Every Send with Solicited Event.
    solicited: bool,
    /// Fault injection for the interop error cells (see HELP).
    fault: Fault,
}

/// A deliberate protocol fault, to see the peer's Terminate (interop error cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Server: RDMA-Read the client's buffer with an STag it never advertised.
    BadStag,
    /// Client: advertise the start buffer with twice the length registered.
    ShortRegion,
    /// Server: invalidate the client's start-buffer STag with the first go-ahead.
    SendInvalidate,
}

fn parse_args() -> Result<Args, String> {
    let mut role = None;
    let mut a = Args {
        server: false,
        addr: None,
        port: 7174,
        count: 0,
        size: 64,
        verbose: false,
        debug: false,
        timeout: Duration::from_secs(30),
        opts: Options::default(),
        solicited: false,
        fault: Fault::None,
    };
    let mut opts = Options::default();
    parse_each(&mut opts, |arg, argv| {
        match arg {
            "-c" => role = Some(false),
            "-s" => role = Some(true),
            "-a" => a.addr = Some(argv.value("-a")?),
            "-p" => a.port = argv.number("-p")?,
            "-C" => a.count = argv.number("-C")?,
            "-S" => a.size = argv.number("-S")?,
            "-t" => a.timeout = argv.seconds("-t")?,
            "-v" => a.verbose = true,
            "-V" => {}
            "-d" => a.debug = true,
            "--solicited" => a.solicited = true,
            "--fault-bad-stag" => a.fault = Fault::BadStag,
            "--fault-short-region" => a.fault = Fault::ShortRegion,
            "--send-invalidate" => a.fault = Fault::SendInvalidate,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    a.opts = opts;
    a.server = role.ok_or("one of -c or -s is required")?;
    if !(MIN_SIZE..=MAX_SIZE).contains(&a.size) {
        return Err(format!(
            "invalid size {} (valid range is {MIN_SIZE} to {MAX_SIZE})",
            a.size
        ));
    }
    separate_cqs(&mut a.opts)?;
    if !a.server && a.addr.is_none() {
        return Err("the client needs -a ADDR".into());
    }
    Ok(a)
}

impl Args {
    /// Options of this end's Sends other than `invalidate`.
    fn send_opts(&self, invalidate: Option<Stag>) -> SendOptions {
        SendOptions {
            solicited: self.solicited,
            invalidate,
        }
    }
}

macro_rules! debug {
    ($a:expr, $($t:tt)*) => {
        if $a.debug {
            eprintln!("eta-rping: {}", format!($($t)*));
        }
    };
}

/// The 16-octet `struct rping_rdma_info`.
fn info(buf: u64, rkey: u32, size: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(INFO_LEN);
    v.extend_from_slice(&buf.to_be_bytes());
    v.extend_from_slice(&rkey.to_be_bytes());
    v.extend_from_slice(&size.to_be_bytes());
    v
}

fn parse_info(b: &[u8]) -> (u64, u32, u32) {
    (
        u64::from_be_bytes(b[0..8].try_into().unwrap()),
        u32::from_be_bytes(b[8..12].try_into().unwrap()),
        u32::from_be_bytes(b[12..16].try_into().unwrap()),
    )
}

/// The client's start buffer of ping `ping` (0-based), exactly as rping fills it.
fn ping_data(ping: u64, size: usize) -> Vec<u8> {
    let mut buf = vec![0u8; size];
    let text = format!("{MSG_PREFIX}{}: ", ping as i32);
    // snprintf(start_buf, size, ...) writes at most size - 1 characters.
    let cc = text.len().min(size - 1);
    buf[..cc].copy_from_slice(&text.as_bytes()[..cc]);
    let mut c = 65 + (ping % 58) as u8;
    for b in &mut buf[text.len().min(size)..] {
        *b = c;
        c += 1;
        if c > 122 {
            c = 65;
        }
    }
    buf[size - 1] = 0;
    buf
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn address(a: &Args) -> Res<std::net::SocketAddr> {
    resolve(a.addr.as_deref().unwrap_or("0.0.0.0"), a.port)
}

fn run_client(a: &Args) -> Res<()> {
    let conn = connect("eta-rping", address(a)?, &a.opts, "connect")?;
    then_close(conn, |c| client_loop(a, c))
}

fn client_loop(a: &Args, conn: &Connection) -> Res<()> {
    conn.post_recv(0, vec![0; INFO_LEN])
        .map_err(|e| format!("posting receive: {e}"))?;
    // rping's server handles its ESTABLISHED event and its first receive completion
    // in two threads, and the first overwrites the state the second set when the
    // receive wins (seen against siw in a slow QEMU guest, about once in 30 runs of
    // a cell: the server then waits forever). A short pause before the first message
    // lets the server's event thread get there first.
    std::thread::sleep(FIRST_SEND_DELAY);
    let mut ping = 0u64;
    while a.count == 0 || ping < a.count {
        let data = ping_data(ping, a.size);
        // Fresh regions every ping: the start buffer carries this ping's data, and
        // the sink starts zeroed so a missing Write cannot go unnoticed.
        // With --fault-short-region only half is registered, all of it advertised:
        // the peer's RDMA Read then runs past the region and this end terminates.
        let registered = if a.fault == Fault::ShortRegion {
            data[..data.len() / 2].to_vec()
        } else {
            data.clone()
        };
        let start = conn
            .register(
                registered,
                Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE,
            )
            .map_err(|e| format!("registering the start buffer: {e}"))?;
        let sink = conn
            .register(
                vec![0; a.size],
                Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE,
            )
            .map_err(|e| format!("registering the rdma buffer: {e}"))?;
        let size = a.size as u32;
        advertise(
            a,
            conn,
            1,
            &start,
            size,
            ping,
            "start",
            "first",
            "RDMA Read",
        )?;
        advertise(
            a,
            conn,
            2,
            &sink,
            size,
            ping,
            "rdma",
            "second",
            "RDMA Write",
        )?;
        let mut got = vec![0u8; a.size];
        sink.read(0, &mut got)
            .map_err(|e| format!("reading the rdma buffer: {e}"))?;
        if got != data {
            let at = got.iter().zip(&data).position(|(x, y)| x != y).unwrap_or(0);
            return Err(format!(
                "data mismatch! ping {ping}, first difference at octet {at}: got {:?}, expected {:?}",
                cstr(&got),
                cstr(&data)
            ));
        }
        if a.verbose {
            println!("ping data: {}", cstr(&got));
        }
        // Drain the Send completions of this ping (every Send is signalled).
        drain_send_cq(conn)?;
        drop(start);
        drop(sink);
        ping += 1;
    }
    eprintln!("eta-rping: client done, {ping} pings verified");
    Ok(())
}

/// One client step: Send the descriptor of `region`, wait for the server's go-ahead
/// (after its RDMA operation), and repost the receive for the next one.
#[allow(clippy::too_many_arguments)]
fn advertise(
    a: &Args,
    conn: &Connection,
    wr_id: u64,
    region: &eta_engine::MemoryRegion,
    size: u32,
    ping: u64,
    name: &str,
    nth: &str,
    op: &str,
) -> Res<()> {
    let r = region.remote(0);
    debug!(
        a,
        "ping {ping}: {name} buffer stag {:#x} to {:#x} len {size}", r.stag.0, r.to
    );
    conn.post_send(wr_id, info(r.to, r.stag.0, size), a.send_opts(None))
        .map_err(|e| format!("posting the {name}-buffer Send: {e}"))?;
    let what = format!("the server's {nth} go-ahead (after its {op})");
    let c = wait_cq(conn, true, &what, a.timeout)?;
    check_go_ahead(&c)?;
    conn.post_recv(0, vec![0; INFO_LEN])
        .map_err(|e| format!("posting receive: {e}"))?;
    Ok(())
}

fn check_go_ahead(c: &Completion) -> Res<()> {
    if c.byte_len as usize != INFO_LEN {
        return Err(format!("Received bogus data, size {}", c.byte_len));
    }
    Ok(())
}

fn run_server(a: &Args) -> Res<()> {
    let listener = listen("eta-rping", address(a)?, &a.opts)?;
    let conn = accept("eta-rping", &listener, &a.opts, "accept failed")?;
    then_close(conn, |c| server_loop(a, c))
}

/// Waits for the client's next buffer descriptor. `Ok(None)`: the client
/// disconnected (gracefully) instead.
fn server_recv_info(a: &Args, conn: &Connection, what: &str) -> Res<Option<(u64, u32, u32)>> {
    // A peer that closes before its first FPDU leaves an eta Responder in `Closing`
    // with the receive still posted: that counts as a disconnect too (`PEER_GONE`).
    let Some(c) = wait_recv_or_close(conn, what, a.timeout)? else {
        debug!(
            a,
            "the client closed the connection (state {:?}, {} s grace)",
            conn.state(),
            PEER_GONE.as_secs()
        );
        return Ok(None);
    };
    if c.byte_len as usize != INFO_LEN {
        return Err(format!("Received bogus data, size {}", c.byte_len));
    }
    let buf = c.buffer.expect("a receive completion carries its buffer");
    let i = parse_info(&buf);
    debug!(
        a,
        "Received rkey {:x} addr {:x} len {} from peer", i.1, i.0, i.2
    );
    conn.post_recv(0, vec![0; INFO_LEN])
        .map_err(|e| format!("post recv error: {e}"))?;
    Ok(Some(i))
}

fn server_loop(a: &Args, conn: &Connection) -> Res<()> {
    let t = a.timeout;
    conn.post_recv(0, vec![0; INFO_LEN])
        .map_err(|e| format!("post recv error: {e}"))?;
    let buf = conn
        .register(
            vec![0; a.size],
            Access::LOCAL_WRITE | Access::REMOTE_READ | Access::REMOTE_WRITE,
        )
        .map_err(|e| format!("registering the rdma buffer: {e}"))?;
    let go_ahead = || vec![0u8; INFO_LEN];
    let mut ping = 0u64;
    while let Some((addr, rkey, len)) = server_recv_info(a, conn, "the client's start-buffer info")?
    {
        if len as usize > a.size {
            return Err(format!(
                "the client's buffer ({len} octets) is larger than this server's -S {}",
                a.size
            ));
        }
        // With --fault-bad-stag the Read names an STag the client never advertised.
        let stag = if a.fault == Fault::BadStag {
            rkey.wrapping_add(0x0100_0000)
        } else {
            rkey
        };
        if a.fault == Fault::SendInvalidate {
            eprintln!("eta-rping: ping {ping}: RDMA Read of the client's STag {stag:#x}");
        }
        let remote = RemoteRegion {
            stag: Stag(stag),
            to: addr,
        };
        conn.post_read(10, &buf, 0, len, remote)
            .map_err(|e| format!("posting the RDMA Read: {e}"))?;
        wait_send_op(conn, CompletionOp::Read, "the RDMA Read completion", t)?;
        let mut data = vec![0u8; len as usize];
        buf.read(0, &mut data)
            .map_err(|e| format!("reading the rdma buffer: {e}"))?;
        let expected = ping_data(ping, len as usize);
        if data != expected {
            let at = data
                .iter()
                .zip(&expected)
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            return Err(format!(
                "data read from the client differs from rping's pattern for ping {ping} at octet {at}: got {:?}, expected {:?}",
                cstr(&data),
                cstr(&expected)
            ));
        }
        if a.verbose {
            println!("server ping data: {}", cstr(&data));
        }
        // With --send-invalidate the first go-ahead invalidates the STag just read:
        // the client's next advertisement of it must then fail the Read.
        let invalidate = (a.fault == Fault::SendInvalidate && ping == 0).then_some(Stag(rkey));
        if let Some(s) = invalidate {
            eprintln!(
                "eta-rping: ping {ping}: go-ahead is a Send with Invalidate of the client's STag {:#x}",
                s.0
            );
        }
        conn.post_send(11, go_ahead(), a.send_opts(invalidate))
            .map_err(|e| format!("post send error: {e}"))?;
        let Some((addr, rkey, len)) = server_recv_info(a, conn, "the client's rdma-buffer info")?
        else {
            return Err(format!(
                "the client disconnected in the middle of ping {ping}"
            ));
        };
        // rping writes strlen(rdma_buf) + 1 octets.
        let n = data
            .iter()
            .position(|&c| c == 0)
            .map_or(data.len(), |p| p + 1);
        if n > len as usize {
            return Err(format!(
                "the client's sink ({len} octets) is smaller than the data ({n})"
            ));
        }
        let remote = RemoteRegion {
            stag: Stag(rkey),
            to: addr,
        };
        debug!(a, "rdma write {n} octets to rkey {rkey:x} addr {addr:x}");
        conn.post_write(12, data[..n].to_vec(), remote)
            .map_err(|e| format!("posting the RDMA Write: {e}"))?;
        wait_send_op(conn, CompletionOp::Write, "the RDMA Write completion", t)?;
        conn.post_send(13, go_ahead(), a.send_opts(None))
            .map_err(|e| format!("post send error: {e}"))?;
        ping += 1;
    }
    // Send completions still queued must all be successful.
    drain_send_cq(conn)?;
    eprintln!("eta-rping: server done, client disconnected after {ping} pings");
    if a.count != 0 && ping != a.count {
        return Err(format!("expected {} pings, the client ran {ping}", a.count));
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = match parse_or_exit("eta-rping", HELP, parse_args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (role, res) = if a.server {
        ("server", run_server(&a))
    } else {
        ("client", run_client(&a))
    };
    ExitCode::from(exit_status("eta-rping", role, res))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_data_matches_rping() {
        let d = ping_data(0, 64);
        assert_eq!(&d[..14], b"rdma-ping-0: A");
        assert_eq!(d[63], 0);
        let d = ping_data(1, 30);
        assert_eq!(&d[..14], b"rdma-ping-1: B");
        assert_eq!(d.len(), 30);
    }
}

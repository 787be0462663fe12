//! Helpers around one eta [`Connection`] shared by the interop tools: address
//! resolution, the "connected ..." line, completion waits that name what was
//! awaited, and a graceful close.
//!
//! Every connection of a tool gets the same two completion queues
//! ([`separate_cqs`] on the common options, as a program with one CQ pair for all
//! its QPs has them), so the waits here take a connection's own completions: one of
//! another connection that comes first is kept for it (per thread) until it asks.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use eta_engine::{
    Completion, CompletionOp, CompletionQueue, CompletionStatus, ConnState, Connection, Error,
    Listener, Negotiated, Options,
};

/// What went wrong, as the one-line message a tool prints on stderr.
pub type Res<T> = Result<T, String>;

/// How long a receive wait goes on after the peer closed gracefully before the
/// posted receive counts as flushed (a safety net: the engine flushes it when the
/// close completes).
pub const PEER_GONE: Duration = Duration::from_secs(1);

/// How long a client waits after MPA setup before its first FPDU when nothing may
/// follow it soon. siw as Responder does not see FPDUs that arrive between its MPA
/// Reply and the switch of the socket to its receive path; they stay unread until
/// more data or a FIN comes (docs/interop.md, "siw as Responder misses early FPDUs").
pub const SIW_SETTLE: Duration = Duration::from_millis(200);

/// The first address of `host:port`.
pub fn resolve(host: &str, port: u16) -> Res<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {host}"))
}

/// Gives `opts` a send and a separate receive completion queue, so that a Send
/// completion is never mistaken for a receive (as rdma_cm programs keep them).
pub fn separate_cqs(opts: &mut Options) -> Res<()> {
    let cq = |what: &str| {
        CompletionQueue::new().map_err(|e| format!("creating the {what} completion queue: {e}"))
    };
    opts.send_cq = Some(cq("send")?);
    opts.recv_cq = Some(cq("receive")?);
    Ok(())
}

/// Binds a listener and prints `<tool>: listening on <addr>` on stderr.
pub fn listen(tool: &str, addr: SocketAddr, opts: &Options) -> Res<Listener> {
    let l = Listener::bind(addr, opts.clone()).map_err(|e| format!("bind {addr}: {e}"))?;
    let at = l.local_addr().map_err(|e| e.to_string())?;
    eprintln!("{tool}: listening on {at}");
    Ok(l)
}

/// Accepts the next connection (`what` names it in errors) and prints its
/// [`negotiated_line`] on stderr.
pub fn accept(tool: &str, l: &Listener, opts: &Options, what: &str) -> Res<Connection> {
    let c = l
        .accept()
        .map_err(|e| format!("{what}: {}", setup_error(&e, opts)))?;
    eprintln!("{tool}: {}", negotiated_line(&c));
    Ok(c)
}

/// Connects as the MPA Initiator (`what` names the connection in errors) and
/// prints its [`negotiated_line`] on stderr.
pub fn connect(tool: &str, addr: SocketAddr, opts: &Options, what: &str) -> Res<Connection> {
    let c = Connection::connect(addr, opts.clone())
        .map_err(|e| format!("{what} to {addr} failed: {}", setup_error(&e, opts)))?;
    eprintln!("{tool}: {}", negotiated_line(&c));
    Ok(c)
}

/// `connected A -> B: MPA Rev 2 (enhanced), CRC on, ...`: what setup agreed on.
/// The interop script reads "CRC on" from it.
pub fn negotiated_line(conn: &Connection) -> String {
    setup_line(conn.local_addr(), conn.peer_addr(), conn.negotiated())
}

/// [`negotiated_line`] for any connection: its addresses and what MPA agreed on.
pub fn setup_line(local: SocketAddr, peer: SocketAddr, n: &Negotiated) -> String {
    let onoff = |b: bool| if b { "on" } else { "off" };
    format!(
        "connected {local} -> {peer}: MPA Rev {}{}, CRC {}, markers tx/rx {}/{}, IRD/ORD {}/{}, RTR {}",
        n.revision,
        if n.enhanced { " (enhanced)" } else { "" },
        onoff(n.crc),
        onoff(n.markers_tx),
        onoff(n.markers_rx),
        n.ird,
        n.ord,
        n.rtr
            .map(|r| format!("{r:?}"))
            .unwrap_or_else(|| "none".into())
    )
}

/// A setup error, with a hint when the peer rejected markers this end asked for.
pub fn setup_error(e: &Error, opts: &Options) -> String {
    let mut s = e.to_string();
    if e.reject_private_data().is_some() && opts.mpa.want_markers {
        s.push_str(" (this end asked for MPA markers, which the peer does not support)");
    }
    s
}

/// Why the connection is not usable: its error (a Terminate received or sent, a
/// lost connection), else its state.
pub fn describe_error(conn: &Connection) -> String {
    match conn.error() {
        Some(e) => e,
        None => format!("connection {:?}", conn.state()),
    }
}

fn status_error(c: &Completion, what: &str, conn: &Connection) -> String {
    format!(
        "{what}: {:?} completion {:?} ({})",
        c.op,
        c.status,
        describe_error(conn)
    )
}

fn timed_out(what: &str, timeout: Duration, conn: &Connection) -> String {
    format!(
        "timed out after {} s waiting for {what} (connection {:?}{})",
        timeout.as_secs(),
        conn.state(),
        conn.error().map(|e| format!(": {e}")).unwrap_or_default()
    )
}

thread_local! {
    /// Completions taken from a shared queue while another connection waited:
    /// by (connection id, receive queue or not), in arrival order.
    static KEPT: RefCell<HashMap<(u64, bool), VecDeque<Completion>>> =
        RefCell::new(HashMap::new());
}

/// Keeps `c`, taken from a `recv` (or send) queue, for its own connection.
fn keep(c: Completion, recv: bool) {
    KEPT.with(|k| {
        k.borrow_mut()
            .entry((c.conn, recv))
            .or_default()
            .push_back(c)
    });
}

/// The next completion of `conn` on its receive (`recv`) or send queue, without
/// waiting: one kept for it, or the first of its own on the queue (those of other
/// connections met on the way are kept for them).
fn poll_own(conn: &Connection, recv: bool) -> Option<Completion> {
    let key = (conn.id(), recv);
    if let Some(c) = KEPT.with(|k| k.borrow_mut().get_mut(&key).and_then(VecDeque::pop_front)) {
        return Some(c);
    }
    let cq = if recv { conn.recv_cq() } else { conn.send_cq() };
    while let Some(c) = cq.poll() {
        if c.conn == conn.id() {
            return Some(c);
        }
        keep(c, recv);
    }
    None
}

/// As [`poll_own`], waiting up to `timeout` (`Ok(None)` when it passes).
fn wait_own(conn: &Connection, recv: bool, timeout: Duration) -> io::Result<Option<Completion>> {
    let deadline = Instant::now() + timeout;
    let cq = if recv { conn.recv_cq() } else { conn.send_cq() };
    loop {
        if let Some(c) = poll_own(conn, recv) {
            return Ok(Some(c));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match cq.wait(Some(left))? {
            None => return Ok(None),
            Some(c) if c.conn == conn.id() => return Ok(Some(c)),
            Some(c) => keep(c, recv),
        }
    }
}

/// Waits for the next completion of `conn`'s receive (`recv`) or send queue; a
/// time-out or an unsuccessful completion is an error that names `what`.
pub fn wait_cq(conn: &Connection, recv: bool, what: &str, timeout: Duration) -> Res<Completion> {
    match wait_own(conn, recv, timeout) {
        Err(e) => Err(format!("waiting for {what}: {e}")),
        Ok(None) => Err(timed_out(what, timeout, conn)),
        Ok(Some(c)) if c.status != CompletionStatus::Success => Err(status_error(&c, what, conn)),
        Ok(Some(c)) => Ok(c),
    }
}

/// Waits for the completion of a send-queue request of kind `op`; successful
/// completions of other kinds that come first (earlier signalled Sends) are skipped.
pub fn wait_send_op(
    conn: &Connection,
    op: CompletionOp,
    what: &str,
    timeout: Duration,
) -> Res<Completion> {
    loop {
        let c = wait_cq(conn, false, what, timeout)?;
        if c.op == op {
            return Ok(c);
        }
    }
}

/// Takes every completion already on the send queue; all must be successful.
pub fn drain_send_cq(conn: &Connection) -> Res<usize> {
    let mut n = 0;
    while let Some(c) = poll_own(conn, false) {
        if c.status != CompletionStatus::Success {
            return Err(status_error(&c, "a queued send", conn));
        }
        n += 1;
    }
    Ok(n)
}

/// Waits for the next receive completion. `Ok(None)`: the peer closed the
/// connection gracefully instead (the receive was flushed, or the connection left
/// `Open` without an error and nothing arrived within [`PEER_GONE`]).
pub fn wait_recv_or_close(
    conn: &Connection,
    what: &str,
    timeout: Duration,
) -> Res<Option<Completion>> {
    let deadline = Instant::now() + timeout;
    let mut gone_since: Option<Instant> = None;
    let c = loop {
        match wait_own(conn, true, Duration::from_millis(100)) {
            Err(e) => return Err(format!("waiting for {what}: {e}")),
            Ok(Some(c)) => break c,
            Ok(None) => {}
        }
        if conn.state() != ConnState::Open && conn.error().is_none() {
            let since = *gone_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= PEER_GONE {
                return Ok(None);
            }
        }
        if Instant::now() >= deadline {
            return Err(timed_out(what, timeout, conn));
        }
    };
    if c.status == CompletionStatus::Flushed
        && matches!(conn.state(), ConnState::Closing | ConnState::Closed)
        && conn.error().is_none()
    {
        return Ok(None);
    }
    if c.status != CompletionStatus::Success {
        return Err(status_error(&c, what, conn));
    }
    Ok(Some(c))
}

/// Waits until the peer closed the connection (it leaves `Open`), up to `timeout`.
/// An error on the connection is returned as such.
pub fn wait_peer_close(conn: &Connection, what: &str, timeout: Duration) -> Res<()> {
    let deadline = Instant::now() + timeout;
    while conn.state() == ConnState::Open {
        if Instant::now() >= deadline {
            return Err(timed_out(what, timeout, conn));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    match conn.error() {
        Some(e) => Err(format!("{what}: {e}")),
        None => Ok(()),
    }
}

/// Closes gracefully and waits until both halves are closed (or `timeout` passes),
/// so that the FIN leaves before the process exits.
pub fn close_and_wait(conn: &Connection, timeout: Duration) {
    conn.close();
    let deadline = Instant::now() + timeout;
    while matches!(conn.state(), ConnState::Open | ConnState::Closing) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on `conn`, then closes `conn` gracefully ([`close_and_wait`], 2 s)
/// whatever `f` returned.
pub fn then_close<T>(conn: Connection, f: impl FnOnce(&Connection) -> Res<T>) -> Res<T> {
    let res = f(&conn);
    close_and_wait(&conn, Duration::from_secs(2));
    res
}

/// The receive buffer of a successful receive completion, cut to the message.
pub fn message(c: Completion) -> Vec<u8> {
    let mut buf = c.buffer.unwrap_or_default();
    buf.truncate(c.byte_len as usize);
    buf
}

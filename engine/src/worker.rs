//! An engine thread: owns the TCP sockets of its connections and runs the loop
//! doorbells → send queues → framing → `writev` → socket reads → deframing →
//! placement → completions, spinning while there is work and parking in
//! `epoll_wait` when idle.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use eta_ddp_core::{
    CompletionOp, Config as CoreConfig, ConnId, Connection as Core, Event as CoreEvent,
    MemoryTable, RtrKind, RxVerdict, Stag, ulpdu_header_len,
};
use eta_mpa::{Deframer, DeframerConfig, Event, Framer, FramerConfig, HeaderBytes, RtrType};

use crate::cq::Completion;
use crate::error::Error;
use crate::shared::{ConnShared, ConnState, Notify, WorkerShared, Wr};
use crate::sys::{self, Epoll};
use crate::tx::Tx;

/// Token of the wake-up eventfd in the epoll set.
const WAKE: u64 = u64::MAX;
/// Octets read from a socket per buffered `read` call.
const READ_BUF: usize = 256 * 1024;
/// Buffered read size while long FPDUs arrive (headers, pad and CRC only).
const SMALL_READ: usize = 512;
/// Shortest payload run worth a `read` straight into its destination.
const DIRECT_MIN: usize = 4096;
/// Longest wait for the peer's TCP to acknowledge the RTR (see `rtr_released`).
const RTR_HOLD: Duration = Duration::from_millis(20);

/// Progress of the Initiator's RTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RtrHold {
    /// No RTR, or it is out and acknowledged.
    Done,
    /// The RTR is still to be sent.
    Unsent,
    /// The RTR was written at this instant; waiting for its acknowledgement.
    Sent(Instant),
}

/// A connection handed to an engine thread after MPA setup.
#[derive(Debug)]
pub(crate) struct NewConn {
    pub shared: Arc<ConnShared>,
    pub stream: TcpStream,
    pub core: CoreConfig,
    /// This end is the MPA Responder (it must receive an FPDU before sending one).
    pub responder: bool,
    /// The Responder may send before it has received (`Options::responder_sends_first`).
    pub send_first: bool,
    pub leftover: Vec<u8>,
}

/// Engine-side state of one connection.
struct Conn {
    shared: Arc<ConnShared>,
    /// Owns the socket: it closes when the connection is released.
    _stream: TcpStream,
    fd: RawFd,
    core: Core,
    framer: Framer,
    deframer: Deframer,
    tx: Tx,
    /// Received octets not yet handed to the core (it answered `Blocked`).
    stash: Vec<u8>,
    /// The other half of the work-request queue (swapped with the shared one).
    spare: VecDeque<Wr>,
    /// Long FPDUs are arriving: buffered reads stay small (see `read_direct`).
    small_reads: bool,
    /// Initiator with an RTR: the RTR goes out alone, and nothing follows it until
    /// the peer's TCP acknowledged it (or `RTR_HOLD` passed). See `transmit`.
    rtr_hold: RtrHold,
    blocked: Option<(u16, HeaderBytes)>,
    responder: bool,
    send_first: bool,
    /// The socket may have more to read (edge-triggered epoll).
    readable: bool,
    /// Regions deregistered, freed once the FPDU count in flight passes the mark
    /// (then the waiter, if any, is told).
    graveyard: Vec<(u64, Stag, Option<Arc<Notify>>)>,
    /// For each Send, Write and Read in the core's send queue, in order: the length
    /// of a quiet Send (a `write()` copy, no completion for the program), or None.
    sq_quiet: VecDeque<Option<usize>>,
    closing: bool,
    /// The peer closed its half between two messages.
    peer_closed: bool,
    fin_sent: bool,
    eof: bool,
    failed: bool,
}

pub(crate) struct Worker {
    shared: Arc<WorkerShared>,
    table: MemoryTable,
    epoll: Epoll,
    conns: HashMap<u64, Conn>,
    buf: Box<[u8]>,
    spin: Duration,
    /// Connections that stopped with work left (the per-visit bound), visited again
    /// on the next turn of the loop without waiting for an event.
    hot: Vec<u64>,
}

impl Worker {
    pub fn new(shared: Arc<WorkerShared>, table: MemoryTable, spin: Duration) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        epoll.add(shared.wake.raw(), sys::IN, WAKE)?;
        Ok(Self {
            shared,
            table,
            epoll,
            conns: HashMap::new(),
            buf: vec![0u8; READ_BUF].into_boxed_slice(),
            spin,
            hot: Vec::new(),
        })
    }

    /// The engine loop. Never returns.
    pub fn run(mut self) -> ! {
        let mut events: Vec<libc::epoll_event> = Vec::with_capacity(256);
        let mut idle_since = Instant::now();
        loop {
            let mut progress = self.take_incoming();
            progress |= self.ring_doorbells();
            progress |= self.visit_hot();
            // Spin (poll without blocking) while work came recently; park after.
            let park = self.spin.is_zero() || idle_since.elapsed() >= self.spin;
            let timeout = if park && !progress {
                self.shared.parked.store(true, Ordering::SeqCst);
                std::sync::atomic::fence(Ordering::SeqCst);
                if self.has_pending_inbox() {
                    Some(Duration::ZERO)
                } else {
                    None
                }
            } else {
                Some(Duration::ZERO)
            };
            if self.epoll.wait(&mut events, timeout).is_err() {
                events.clear();
            }
            self.shared.parked.store(false, Ordering::SeqCst);
            for ev in &events {
                if ev.u64 == WAKE {
                    self.shared.wake.drain();
                    continue;
                }
                let id = ev.u64;
                let flags = ev.events;
                if let Some(c) = self.conns.get_mut(&id) {
                    if flags & (sys::IN | sys::HUP) != 0 {
                        c.readable = true;
                    }
                    c.peer_event(flags);
                    let (p, more) = Self::service(c, &mut self.buf, &self.table);
                    progress |= p;
                    if more {
                        self.hot.push(id);
                    }
                }
            }
            progress |= !events.is_empty();
            self.reap();
            if progress {
                idle_since = Instant::now();
            }
        }
    }

    fn has_pending_inbox(&self) -> bool {
        !self.shared.ready.is_empty()
            || !self
                .shared
                .incoming
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    fn take_incoming(&mut self) -> bool {
        let new: Vec<NewConn> = std::mem::take(
            &mut *self
                .shared
                .incoming
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        let any = !new.is_empty();
        for nc in new {
            let id = nc.shared.id;
            match Conn::start(nc, &self.table) {
                Ok(mut c) => {
                    if let Err(e) =
                        self.epoll
                            .add(c.fd, sys::IN | sys::OUT | sys::ET | sys::HUP, id)
                    {
                        c.fail(Error::Io(e));
                    }
                    c.readable = true;
                    c.update_sock();
                    if Self::service(&mut c, &mut self.buf, &self.table).1 {
                        self.hot.push(id);
                    }
                    self.conns.insert(id, c);
                }
                Err((shared, e)) => {
                    shared.fail(e);
                    let mut left = VecDeque::new();
                    shared.close_queue(&mut left);
                    for wr in left {
                        shared.flush_request(wr, &self.table);
                    }
                    if let Some(r) = &shared.sock {
                        r.hang_up();
                    }
                    shared.released.set();
                }
            }
        }
        any
    }

    fn ring_doorbells(&mut self) -> bool {
        let mut any = false;
        // Only those rung so far: a connection rung again meanwhile waits for the
        // next turn instead of keeping this loop going.
        for _ in 0..self.shared.ready.len() {
            let Some(s) = self.shared.ready.pop() else {
                break;
            };
            any = true;
            s.rung.store(false, Ordering::Release);
            if let Some(c) = self.conns.get_mut(&s.id)
                && Self::service(c, &mut self.buf, &self.table).1
            {
                self.hot.push(s.id);
            }
        }
        any
    }

    fn visit_hot(&mut self) -> bool {
        if self.hot.is_empty() {
            return false;
        }
        let mut hot = std::mem::take(&mut self.hot);
        hot.sort_unstable();
        hot.dedup();
        for id in hot.drain(..) {
            if let Some(c) = self.conns.get_mut(&id)
                && Self::service(c, &mut self.buf, &self.table).1
            {
                self.hot.push(id);
            }
        }
        true
    }

    /// Runs one connection until it makes no more progress, or for a bounded number
    /// of rounds so that one busy connection cannot starve the others. Returns
    /// whether it made progress and whether it stopped with work left.
    fn service(c: &mut Conn, buf: &mut [u8], table: &MemoryTable) -> (bool, bool) {
        let mut any = false;
        let mut more = true;
        for _ in 0..16 {
            let mut progress = c.ingest(table);
            progress |= c.receive(buf);
            progress |= c.pump();
            progress |= c.transmit();
            progress |= c.report();
            any |= progress;
            if !progress {
                more = false;
                break;
            }
        }
        c.free_graveyard(table);
        if any {
            c.update_sock();
        }
        (any, more || c.waiting())
    }

    /// Lets go of connections that are finished.
    fn reap(&mut self) {
        let done: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.finished())
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(mut c) = self.conns.remove(&id) {
                self.epoll.delete(c.fd);
                c.release(&self.table);
            }
        }
    }
}

impl Conn {
    fn start(nc: NewConn, table: &MemoryTable) -> Result<Conn, (Arc<ConnShared>, Error)> {
        let nc_rtr = nc.core.send_rtr.is_some();
        let n = &nc.shared.negotiated;
        let core = match Core::new(nc.core, table.clone()) {
            Ok(c) => c,
            Err(e) => return Err((nc.shared, Error::Engine(format!("{e:?}")))),
        };
        if let Err(e) = nc.stream.set_nonblocking(true) {
            return Err((nc.shared, Error::Io(e)));
        }
        let fd = nc.stream.as_raw_fd();
        let mut c = Conn {
            framer: Framer::new(FramerConfig {
                crc: n.crc,
                markers: n.markers_tx,
            }),
            deframer: Deframer::new(DeframerConfig {
                crc: n.crc,
                markers: n.markers_rx,
                max_ulpdu: u16::MAX,
                header_len: ulpdu_header_len,
            }),
            shared: nc.shared,
            _stream: nc.stream,
            fd,
            core,
            tx: Tx::new(),
            stash: nc.leftover,
            spare: VecDeque::new(),
            small_reads: false,
            rtr_hold: if nc_rtr {
                RtrHold::Unsent
            } else {
                RtrHold::Done
            },
            blocked: None,
            responder: nc.responder,
            send_first: nc.send_first,
            readable: true,
            graveyard: Vec::new(),
            sq_quiet: VecDeque::new(),
            closing: false,
            peer_closed: false,
            fin_sent: false,
            eof: false,
            failed: false,
        };
        // Octets that arrived with the Reply go through the deframer first.
        c.drain_stash();
        Ok(c)
    }

    /// Moves posted work requests into the core.
    fn ingest(&mut self, table: &MemoryTable) -> bool {
        // Drain the ring into this side's reusable queue (no allocation once warm).
        self.shared.take_all(&mut self.spare);
        let any = !self.spare.is_empty();
        while let Some(wr) = self.spare.pop_front() {
            let mut quiet = None;
            let (wr_id, op, res) = match wr {
                Wr::Send {
                    wr_id,
                    buf,
                    opts,
                    quiet: q,
                } => {
                    quiet = q.then(|| buf.len());
                    (
                        wr_id,
                        CompletionOp::Send,
                        self.core.post_send(wr_id, buf.into_local(), opts),
                    )
                }
                Wr::Recv { wr_id, buf } => (
                    wr_id,
                    CompletionOp::Recv,
                    self.core.post_recv(wr_id, buf.into_local()),
                ),
                Wr::Write {
                    wr_id,
                    buf,
                    remote,
                    remote_to,
                } => (
                    wr_id,
                    CompletionOp::Write,
                    self.core
                        .post_write(wr_id, buf.into_local(), remote, remote_to),
                ),
                Wr::Read {
                    wr_id,
                    local,
                    local_to,
                    len,
                    remote,
                    remote_to,
                } => (
                    wr_id,
                    CompletionOp::Read,
                    self.core
                        .post_read(wr_id, local, local_to, len, remote, remote_to),
                ),
                Wr::Deregister(stag, notify) => {
                    // Nothing framed from now on can refer to it; what is in flight
                    // may: free once everything framed so far is acknowledged.
                    let _ = table.invalidate(stag);
                    self.graveyard.push((self.tx.framed, stag, notify));
                    continue;
                }
                Wr::Abort => {
                    sys::linger_reset(self.fd);
                    self.lost(io::ErrorKind::ConnectionAborted);
                    continue;
                }
                Wr::Close => {
                    self.closing = true;
                    if self.shared.state() == ConnState::Open {
                        self.shared.set_state(ConnState::Closing);
                    }
                    continue;
                }
            };
            if res.is_ok() {
                if op != CompletionOp::Recv {
                    self.sq_quiet.push_back(quiet);
                }
            } else {
                // Refused by the core (the connection failed meanwhile): the request
                // completes as flushed, so nothing is lost silently.
                let c = Completion {
                    conn: self.shared.id,
                    wr_id,
                    op,
                    status: eta_ddp_core::CompletionStatus::Flushed,
                    byte_len: 0,
                    solicited: false,
                    invalidated: None,
                    buffer: None,
                };
                self.shared.deliver(c, quiet);
            }
        }
        any
    }

    fn receive(&mut self, buf: &mut [u8]) -> bool {
        let mut any = false;
        if self.blocked.is_some() || !self.stash.is_empty() {
            any |= self.drain_stash();
            if self.blocked.is_some() || !self.stash.is_empty() {
                return any;
            }
        }
        while self.readable && !self.eof && !self.failed {
            if self.read_direct(&mut any) {
                continue;
            }
            let size = if self.small_reads {
                SMALL_READ
            } else {
                buf.len()
            };
            match sys::read(self.fd, &mut buf[..size]) {
                Ok(0) => {
                    self.eof = true;
                    any = true;
                }
                Ok(n) => {
                    any = true;
                    let used = self.feed(&buf[..n]);
                    if used < n || self.blocked.is_some() {
                        // The core cannot take the FPDU whose header came last: keep
                        // the rest (possibly nothing) and read no further, or its
                        // payload would reach the core before its header.
                        self.stash.extend_from_slice(&buf[used..n]);
                        break;
                    }
                    // Edge-triggered: keep reading until EAGAIN (a short read may
                    // still be followed by a FIN that raises no new edge).
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.lost(e.kind());
                    any = true;
                }
            }
        }
        if self.eof && !self.failed && !self.peer_closed {
            any = true;
            if self.responder && !self.core.has_received_fpdu() {
                // The Initiator went away before Full Operation began (e.g. it
                // refused our Reply): setup failed.
                self.shared.fail(Error::PeerClosed);
                self.lost(io::ErrorKind::UnexpectedEof);
            } else if self.deframer.at_boundary() && self.blocked.is_none() && self.stash.is_empty()
            {
                // The peer closed between messages: a graceful close. Finish what we
                // have to send, then close our half too.
                self.peer_closed = true;
                self.closing = true;
                if self.shared.state() == ConnState::Open {
                    self.shared.set_state(ConnState::Closing);
                }
            } else {
                self.lost(io::ErrorKind::UnexpectedEof);
            }
        }
        any
    }

    /// Receives the next payload octets straight into their destination when the
    /// deframer says a long run of payload comes next and the core has validated
    /// where it goes: no intermediate buffer, no user-space copy. Returns whether it
    /// read (or hit the end of the stream); false means "use the buffered read".
    fn read_direct(&mut self, any: &mut bool) -> bool {
        let run = self.deframer.payload_run();
        if run < DIRECT_MIN || self.blocked.is_some() || !self.stash.is_empty() {
            return false;
        }
        let Some(target) = self.core.direct_target(run) else {
            // Bound for the receive pool (no posted buffer, no region): small reads
            // would only cost system calls; read in full.
            self.small_reads = false;
            return false;
        };
        // SAFETY: the target is a span of a posted receive buffer or a registered
        // region that the core validated for this segment; it stays allocated while
        // the engine thread (the only one that frees such memory) is in this call.
        match unsafe { sys::read_raw(self.fd, target.as_mut_ptr(), target.len()) } {
            Ok(0) => {
                self.eof = true;
                *any = true;
                true
            }
            Ok(n) => {
                *any = true;
                // SAFETY: the kernel wrote these n octets just now, and only this
                // thread writes the span until the core moves past it.
                let filled = unsafe { target.filled(n) };
                match self.deframer.advance(filled) {
                    Ok((used, Event::Payload(_))) if used == n => {
                        self.core.recv_payload_direct(n);
                        self.shared.rx_direct.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        // payload_run() promised n octets of payload: a broken
                        // invariant, ended as a local catastrophic error (Terminate).
                        self.core.abort();
                    }
                    Err(e) => self.core.mpa_error(&e),
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.readable = false;
                true
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.lost(e.kind());
                *any = true;
                true
            }
        }
    }

    /// Notes a hang-up the reader may not see yet because the connection waits for
    /// a posted receive: a reset fails the connection at once (its data is gone); a
    /// FIN shows as `Closing` while the data before it waits to be received.
    fn peer_event(&mut self, flags: u32) {
        if self.blocked.is_none() && self.stash.is_empty() {
            return;
        }
        if flags & sys::ERR_HUP != 0 {
            if let Some(e) = sys::socket_error(self.fd) {
                self.lost(e.kind());
                return;
            }
        }
        if flags & sys::RDHUP != 0 && self.shared.state() == ConnState::Open {
            self.shared.set_state(ConnState::Closing);
        }
    }

    fn drain_stash(&mut self) -> bool {
        if let Some((len, h)) = self.blocked {
            if self.core.recv_header(len, h.as_slice()) == RxVerdict::Blocked {
                return false;
            }
            self.blocked = None;
        }
        if self.stash.is_empty() {
            return true;
        }
        let stash = std::mem::take(&mut self.stash);
        let used = self.feed(&stash);
        self.stash = stash[used..].to_vec();
        true
    }

    /// Deframes octets into the core; returns how many were used (fewer when the
    /// core cannot take an untagged message now).
    fn feed(&mut self, data: &[u8]) -> usize {
        let mut input = data;
        let mut used_total = 0;
        loop {
            match self.deframer.advance(input) {
                Err(e) => {
                    self.core.mpa_error(&e);
                    return data.len();
                }
                Ok((used, ev)) => {
                    input = &input[used..];
                    used_total += used;
                    match ev {
                        Event::NeedInput => return used_total,
                        Event::Header { ulpdu_len, header } => {
                            // After a long ULPDU, read in small pieces so the next
                            // long payload goes straight to its destination.
                            // (Not with markers: their runs are too short.)
                            self.small_reads = !self.deframer.config().markers
                                && usize::from(ulpdu_len) >= DIRECT_MIN * 2;
                            if self.core.recv_header(ulpdu_len, header.as_slice())
                                == RxVerdict::Blocked
                            {
                                self.blocked = Some((ulpdu_len, header));
                                return used_total;
                            }
                        }
                        Event::Payload(p) => {
                            self.shared
                                .rx_copied
                                .fetch_add(p.len() as u64, Ordering::Relaxed);
                            self.core.recv_payload(p)
                        }
                        Event::End => self.core.recv_end(),
                    }
                }
            }
        }
    }

    fn transmit(&mut self) -> bool {
        if self.failed && self.tx.is_empty() {
            return false;
        }
        let mut any = false;
        // The Responder sends nothing before it has received an FPDU (RFC 5044);
        // closing (below) does not wait for that.
        let may_send = (!self.responder || self.send_first || self.core.has_received_fpdu())
            && self.rtr_released();
        if may_send {
            loop {
                // The RTR is the first segment: frame it alone.
                let max = match self.rtr_hold {
                    RtrHold::Unsent if self.tx.framed > 0 => 0,
                    RtrHold::Unsent => 1,
                    _ => usize::MAX,
                };
                let framed = self.tx.fill(&mut self.core, &mut self.framer, max);
                if self.tx.is_empty() {
                    break;
                }
                match self.tx.flush(self.fd, &mut self.core) {
                    Ok(0) => break,
                    Ok(_) => any = true,
                    Err(e) => {
                        self.lost(e.kind());
                        return true;
                    }
                }
                if framed == 0 && !self.tx.is_empty() {
                    break;
                }
                if self.rtr_hold == RtrHold::Unsent {
                    if self.tx.is_empty() && self.tx.acked > 0 {
                        self.rtr_hold = RtrHold::Sent(Instant::now());
                    }
                    break;
                }
            }
        }
        if self.closing && !self.fin_sent && self.tx.is_empty() && self.quiet() {
            sys::shutdown_write(self.fd);
            self.fin_sent = true;
            any = true;
        }
        any
    }

    /// Whether FPDUs after the RTR may go. siw as Responder processes every FPDU
    /// that is already queued when the RTR arrives and only then reports the
    /// connection established, so rping (and other rdma_cm programs) can see their
    /// first receive complete before `ESTABLISHED` and lose track of their state.
    /// Sending the RTR alone and waiting until the peer's TCP acknowledged it (at
    /// most `RTR_HOLD`) lets the peer report the connection before any data.
    fn rtr_released(&mut self) -> bool {
        match self.rtr_hold {
            RtrHold::Done | RtrHold::Unsent => true,
            RtrHold::Sent(at) => {
                if sys::unacked(self.fd) == Some(0) || at.elapsed() >= RTR_HOLD {
                    self.rtr_hold = RtrHold::Done;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Whether the connection waits on a timer-like condition (the RTR hold) and
    /// must be visited again without an event.
    fn waiting(&self) -> bool {
        matches!(self.rtr_hold, RtrHold::Sent(_))
    }

    /// Nothing queued or outstanding on the send side.
    fn quiet(&self) -> bool {
        self.shared.outstanding_sq.load(Ordering::Acquire) == 0 && self.shared.queue_empty()
    }

    /// Routes completions and events to the application.
    fn report(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.core.poll_event() {
            any = true;
            match ev {
                CoreEvent::LocalError(reason) => self.shared.fail(Error::Protocol(reason)),
                CoreEvent::PeerTerminated(t) => {
                    self.shared.fail(Error::Terminated(t));
                    self.failed = true;
                }
                CoreEvent::TerminateSent => {
                    self.failed = true;
                    sys::shutdown_write(self.fd);
                    self.fin_sent = true;
                }
            }
        }
        // Completions after the events: a request flushed by a failure is seen
        // only once the connection already tells why.
        while let Some(c) = self.core.poll_completion() {
            any = true;
            self.complete(Completion::from_core(self.shared.id, c));
        }
        any
    }

    fn complete(&mut self, c: Completion) {
        let quiet = if c.op == CompletionOp::Recv {
            None
        } else {
            self.sq_quiet.pop_front().flatten()
        };
        self.shared.deliver(c, quiet);
    }

    /// Socket mode: moves messages from the core's receive pool into the inbox of
    /// `read()`, as far as it has room.
    fn pump(&mut self) -> bool {
        let Some(r) = &self.shared.sock else {
            return false;
        };
        if !self.core.readable() {
            return false;
        }
        let mut st = r.lock();
        let mut any = false;
        while self.core.readable() {
            if st.inbox.room() == 0 {
                st.inbox.starved = true;
                break;
            }
            let core = &mut self.core;
            let moved = st.inbox.fill(|data, room| {
                core.read_into(data, room)
                    .map(|got| (got.len, got.end_of_message))
            });
            if !moved {
                break;
            }
            any = true;
        }
        any
    }

    /// Socket mode: brings the program's fd up to date (readable, writable, end of
    /// stream, hang-up) and wakes blocked calls. Only turns conditions on; the
    /// program's side turns them off when it consumed them, under the same lock.
    fn update_sock(&self) {
        let Some(r) = &self.shared.sock else {
            return;
        };
        let mut st = r.lock();
        let state = self.shared.state();
        if matches!(state, ConnState::Failed | ConnState::Closed) || self.failed {
            r.hang_up_locked(&mut st);
            return;
        }
        if self.peer_closed || self.eof {
            r.end_of_stream(&mut st);
        }
        if self.shared.sock_readable(&st) {
            r.set_readable(&mut st, true, None);
        }
        if self.shared.sock_writable() {
            r.set_writable(&mut st, true, None);
        }
        // Messages moved into the inbox, budget released, end of stream: a
        // blocked read() or write() looks again.
        r.wake_sleepers(&mut st);
    }

    /// The TCP connection is gone: flush everything with error completions.
    fn lost(&mut self, kind: io::ErrorKind) {
        if !self.failed {
            self.shared.fail(Error::ConnectionLost(kind));
        }
        self.failed = true;
        self.eof = true;
        self.tx.abandon();
        self.core.transport_closed();
        self.report();
    }

    fn fail(&mut self, e: Error) {
        self.shared.fail(e);
        self.lost(io::ErrorKind::Other);
    }

    fn free_graveyard(&mut self, table: &MemoryTable) {
        let acked = self.tx.acked;
        let in_flight_empty = self.tx.is_empty();
        self.graveyard.retain(|(mark, stag, notify)| {
            if in_flight_empty || acked >= *mark {
                let _ = table.deregister(*stag);
                if let Some(n) = notify {
                    n.set();
                }
                false
            } else {
                true
            }
        });
    }

    /// Done: gracefully closed both ways, or failed with nothing left to send.
    fn finished(&self) -> bool {
        (self.failed && self.tx.is_empty()) || (self.fin_sent && self.eof)
    }

    /// Final release: no iovec in flight, the socket closes when dropped.
    fn release(&mut self, table: &MemoryTable) {
        let graceful = !self.failed;
        self.tx.abandon();
        self.core.transport_closed();
        if graceful {
            // Both halves closed in order: what is still posted is flushed, and the
            // core's "transport lost" is no error here.
            while let Some(c) = self.core.poll_completion() {
                self.complete(Completion::from_core(self.shared.id, c));
            }
            while self.core.poll_event().is_some() {}
        } else {
            self.report();
        }
        let mut left = std::mem::take(&mut self.spare);
        self.shared.close_queue(&mut left);
        for wr in left {
            self.shared.flush_request(wr, table);
        }
        for (_, stag, notify) in std::mem::take(&mut self.graveyard) {
            let _ = table.deregister(stag);
            if let Some(n) = notify {
                n.set();
            }
        }
        if !self.failed && self.shared.state() != ConnState::Failed {
            self.shared.set_state(ConnState::Closed);
        }
        self.update_sock();
        self.shared.released.set();
    }
}

/// The core configuration for a negotiated connection.
pub(crate) fn core_config(
    id: u64,
    n: &eta_mpa::Negotiated,
    emss: u32,
    initiator: bool,
    max_wr: usize,
) -> CoreConfig {
    let mut cfg = CoreConfig::new(ConnId(id), eta_mpa::mulpdu(emss, n.markers_tx));
    cfg.ird = u32::from(n.ird);
    cfg.ord = u32::from(n.ord);
    cfg.max_send_wr = max_wr;
    cfg.max_recv_wr = max_wr;
    if initiator {
        cfg.send_rtr = n.rtr.map(|t| match t {
            RtrType::Send => RtrKind::Send,
            RtrType::Write => RtrKind::Write,
            RtrType::Read => RtrKind::Read,
        });
    } else {
        cfg.expect_send_rtr = n.rtr == Some(RtrType::Send);
    }
    cfg
}

//! Engine-side state of one connection, how it starts from a [`NewConn`], and how
//! the core's events and completions reach the application.

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use eta_ddp_core::{
    CompletionOp, Config as CoreConfig, ConnId, Connection as Core, Event as CoreEvent,
    MemoryTable, RtrKind, Stag, ulpdu_header_len,
};
use eta_mpa::{Deframer, DeframerConfig, Framer, FramerConfig, HeaderBytes, Negotiated, RtrType};

use super::life::Life;
use super::rtr_hold::RtrHold;
use crate::cq::Completion;
use crate::error::Error;
use crate::handoff::{ConnShared, NewConn, Notify, QuietSend, Wr};
use crate::sys;
use crate::tx::Tx;

/// Engine-side state of one connection.
pub(super) struct Conn {
    pub shared: Arc<ConnShared>,
    /// Owns the socket: it closes when the connection is released.
    _stream: TcpStream,
    pub fd: RawFd,
    pub core: Core,
    pub framer: Framer,
    pub deframer: Deframer,
    pub tx: Tx,
    /// Where the connection is in its life (see [`Life`]).
    pub life: Life,
    /// Received octets not yet handed to the core (it answered `Blocked`).
    pub stash: Vec<u8>,
    /// The other half of the work-request queue (swapped with the shared one).
    pub spare: VecDeque<Wr>,
    /// Long FPDUs are arriving: buffered reads stay small (see `read_direct`).
    pub small_reads: bool,
    /// Initiator with an RTR: the RTR goes out alone, and nothing follows it until
    /// the peer's TCP acknowledged it (see [`RtrHold`]).
    pub rtr_hold: RtrHold,
    /// A header the core could not take yet (no receive posted, pool full).
    pub blocked: Option<(u16, HeaderBytes)>,
    pub responder: bool,
    pub send_first: bool,
    /// The socket may have more to read (edge-triggered epoll).
    pub readable: bool,
    /// Regions deregistered, freed once the FPDU count in flight passes the mark
    /// (then the waiter, if any, is told).
    pub graveyard: Vec<(u64, Stag, Option<Arc<Notify>>)>,
    /// For each Send, Write and Read in the core's send queue, in order: what a
    /// quiet Send (a `write()`, no completion for the program) releases, or None.
    pub sq_quiet: VecDeque<Option<QuietSend>>,
    /// Payload of the FPDU being received went straight into a lent `read()`
    /// buffer and waits for the FPDU's CRC.
    pub lent_pending: bool,
    /// The ULPDU length of the FPDU being received.
    pub ulpdu_len: u16,
    /// A write failed with this error: before the connection is declared lost,
    /// what the peer sent is read, since it may hold the Terminate that explains
    /// the failure ([`Conn::salvage`]).
    pub write_broken: Option<io::ErrorKind>,
}

impl Conn {
    /// Takes over a connection handed to the engine thread; on failure hands the
    /// shared half back with the reason.
    pub fn start(nc: NewConn, table: &MemoryTable) -> Result<Conn, (Arc<ConnShared>, Error)> {
        let n = &nc.shared.negotiated;
        let cfg = core_config(nc.shared.id, n, nc.emss, !nc.responder, nc.shared.max_wr);
        let rtr_hold = RtrHold::new(cfg.send_rtr.is_some());
        let core = match Core::new(cfg, table.clone()) {
            Ok(c) => c,
            Err(e) => return Err((nc.shared, Error::Config(e))),
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
            life: Life::Open,
            stash: nc.leftover,
            spare: VecDeque::new(),
            small_reads: false,
            rtr_hold,
            blocked: None,
            responder: nc.responder,
            send_first: nc.send_first,
            readable: true,
            graveyard: Vec::new(),
            sq_quiet: VecDeque::new(),
            lent_pending: false,
            ulpdu_len: 0,
            write_broken: None,
        };
        // Octets that arrived with the Reply go through the deframer first.
        c.drain_stash();
        Ok(c)
    }

    /// Nothing queued or outstanding on the send side.
    pub fn quiet(&self) -> bool {
        self.shared.outstanding_sq.load(Ordering::Acquire) == 0 && self.shared.queue_empty()
    }

    /// Routes completions and events to the application.
    pub fn report(&mut self) -> bool {
        let mut any = false;
        while let Some(ev) = self.core.poll_event() {
            any = true;
            match ev {
                CoreEvent::LocalError(reason) => self.shared.fail(Error::Protocol(reason)),
                CoreEvent::PeerTerminated(t) => {
                    self.shared.fail(Error::Terminated(t));
                    self.life = Life::Failed;
                }
                CoreEvent::TerminateSent => {
                    self.life = Life::Failed;
                    sys::shutdown_write(self.fd);
                }
            }
        }
        // Completions after the events: a request flushed by a failure is seen
        // only once the connection already tells why.
        any |= self.report_completions();
        any
    }

    /// Hands the core's completions to the application; returns whether there were
    /// any.
    pub fn report_completions(&mut self) -> bool {
        let mut any = false;
        while let Some(c) = self.core.poll_completion() {
            any = true;
            self.complete(Completion::from_core(self.shared.id, c));
        }
        any
    }

    /// Delivers one completion, quietly for a `write()` copy.
    pub fn complete(&mut self, c: Completion) {
        let quiet = if c.op == CompletionOp::Recv {
            None
        } else {
            self.sq_quiet.pop_front().flatten()
        };
        self.shared.deliver(c, quiet);
    }
}

/// The core configuration for a negotiated connection.
fn core_config(id: u64, n: &Negotiated, emss: u32, initiator: bool, max_wr: usize) -> CoreConfig {
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

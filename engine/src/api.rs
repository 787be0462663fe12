//! The safe Rust API: connections, and the one path every work request is posted
//! through ([`Connection::post`]). Memory regions are in `region`, listeners in
//! `listener`, socket mode in `stream`, caller-memory requests in `raw`.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use eta_ddp_core::{Access, ConnId, PostError, Scope, SendOptions};
use eta_mpa::Negotiated;

use crate::config::Options;
use crate::cq::CompletionQueue;
use crate::engine;
use crate::error::Error;
use crate::establish::{self, Established};
use crate::handoff::{ConnShared, ConnState, NewConn, Payload, Work, Wr};
use crate::region::{MemoryRegion, RemoteRegion};
use crate::sys;

/// Receive-path counters of a connection ([`Connection::rx_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxStats {
    /// Payload octets received straight into their destination.
    pub direct: u64,
    /// Payload octets copied once from the engine's read buffer.
    pub copied: u64,
}

/// An iWARP connection in Full Operation (RDMAP over DDP over MPA over TCP).
///
/// Work is posted from any thread; the engine thread performs it and reports
/// completions on the connection's completion queues. Dropping the connection
/// closes it gracefully (queued work first, then FIN).
///
/// ```
/// use eta_engine::{Connection, Listener, Options};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let listener = Listener::bind("127.0.0.1:0", Options::default())?;
/// let addr = listener.local_addr()?;
/// let server = std::thread::spawn(move || -> Result<Vec<u8>, eta_engine::Error> {
///     let conn = listener.accept()?;
///     conn.post_recv(1, vec![0; 64]).unwrap();
///     let c = conn.recv_cq().wait(None)?.expect("a completion");
///     let mut data = c.buffer.unwrap();
///     data.truncate(c.byte_len as usize);
///     Ok(data)
/// });
/// let client = Connection::connect(addr, Options::default())?;
/// client.post_send(7, b"hello".to_vec(), Default::default())?;
/// assert_eq!(server.join().unwrap()?, b"hello");
/// # Ok(()) }
/// ```
pub struct Connection {
    shared: Arc<ConnShared>,
    local: SocketAddr,
    peer: SocketAddr,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("state", &self.shared.state())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` as the MPA Initiator and waits until Full Operation (or the
    /// Reply time-out). With `Options::rev1_fallback`, a peer that closes the
    /// connection on a Rev 2 Request is tried again with Rev 1.
    pub fn connect(addr: impl ToSocketAddrs, opts: Options) -> Result<Connection, Error> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let mut last = Error::Io(io::Error::new(io::ErrorKind::InvalidInput, "no address"));
        for a in addrs {
            let mut cfg = opts.mpa.clone();
            loop {
                let stream = match TcpStream::connect(a) {
                    Ok(s) => s,
                    Err(e) => {
                        last = e.into();
                        break;
                    }
                };
                match establish::initiate(&stream, &cfg, &opts) {
                    Ok(est) => return Self::start(stream, est, &opts, false),
                    Err(Error::PeerClosed) if opts.rev1_fallback => match cfg.rev1_fallback() {
                        Some(fallback) => cfg = fallback,
                        None => return Err(Error::PeerClosed),
                    },
                    Err(e) => return Err(e),
                }
            }
        }
        Err(last)
    }

    pub(crate) fn start(
        stream: TcpStream,
        est: Established,
        opts: &Options,
        responder: bool,
    ) -> Result<Connection, Error> {
        let eng = engine::get()?;
        let id = eng.new_id();
        let local = stream.local_addr()?;
        let peer = stream.peer_addr()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
        // FPDUs are sized to the EMSS (RFC 5044 §4.5), or to the program's cap.
        let emss = sys::tcp_maxseg(fd)?;
        let emss = match opts.max_fpdu {
            Some(cap) if cap < crate::config::MIN_FPDU => {
                return Err(Error::Config(eta_ddp_core::ConfigError::MulpduTooSmall));
            }
            Some(cap) => emss.min(cap),
            None => emss,
        };
        if let Some(after) = opts.dead_peer_timeout {
            sys::dead_peer_timeout(fd, after)?;
        }
        let own_cq = opts.send_cq.is_none() && opts.recv_cq.is_none();
        let send_cq = match &opts.send_cq {
            Some(cq) => cq.clone(),
            None => CompletionQueue::new()?,
        };
        let recv_cq = opts.recv_cq.clone().unwrap_or_else(|| send_cq.clone());
        let shared = Arc::new(ConnShared::new(
            id,
            eng.pick(),
            opts.max_wr,
            send_cq,
            recv_cq,
            est.negotiated,
            est.peer_private_data,
            opts.socket.clone(),
            own_cq,
        ));
        shared.worker.hand_over(NewConn {
            shared: Arc::clone(&shared),
            stream,
            emss,
            responder,
            send_first: opts.responder_sends_first,
            leftover: est.leftover,
        });
        Ok(Connection {
            shared,
            local,
            peer,
        })
    }

    /// This connection's id, as carried by its completions.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Peer address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// What MPA setup agreed on (revision, CRC, markers, IRD/ORD, RTR).
    pub fn negotiated(&self) -> &Negotiated {
        &self.shared.negotiated
    }

    /// The private data the peer sent in its Request or Reply.
    pub fn peer_private_data(&self) -> &[u8] {
        &self.shared.peer_private_data
    }

    /// The connection's state.
    pub fn state(&self) -> ConnState {
        self.shared.state()
    }

    /// Why the connection failed, if it did (a decoded Terminate, a lost TCP
    /// connection, a protocol violation by the peer).
    pub fn error(&self) -> Option<String> {
        self.shared.error_text()
    }

    /// Runs `f` on the error that ended the connection, if any.
    pub fn with_error<R>(&self, f: impl FnOnce(Option<&Error>) -> R) -> R {
        self.shared.with_error(f)
    }

    /// Receive-path counters: payload octets received straight into their
    /// destination (no user-space copy), and octets copied from the engine's read
    /// buffer (short runs, markers, a header's neighbours).
    pub fn rx_stats(&self) -> RxStats {
        RxStats {
            direct: self.shared.rx_direct.load(Ordering::Relaxed),
            copied: self.shared.rx_copied.load(Ordering::Relaxed),
        }
    }

    /// Completion queue for Send, Write and Read completions.
    pub fn send_cq(&self) -> &CompletionQueue {
        &self.shared.send_cq
    }

    /// Completion queue for receive completions.
    pub fn recv_cq(&self) -> &CompletionQueue {
        &self.shared.recv_cq
    }

    pub(crate) fn shared(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    /// Takes a posting credit of the request's queue (`rq`: the receive queue).
    fn reserve(&self, rq: bool) -> Result<(), PostError> {
        self.credits(rq)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v < self.shared.max_wr).then_some(v + 1)
            })
            .map(|_| ())
            .map_err(|_| PostError::QueueFull)
    }

    fn credits(&self, rq: bool) -> &std::sync::atomic::AtomicUsize {
        if rq {
            &self.shared.outstanding_rq
        } else {
            &self.shared.outstanding_sq
        }
    }

    /// Posts a work request: the one path of every post (owned, caller memory and
    /// socket-mode copies alike). Checks it ([`Work::check`]), that the connection
    /// is open and that a posting credit is free, then queues it and rings the
    /// doorbell. On error nothing was queued.
    pub(crate) fn post(&self, work: Work) -> Result<(), PostError> {
        work.check(self.shared.negotiated.ord)?;
        if self.shared.state() != ConnState::Open {
            return Err(PostError::NotOperational);
        }
        let rq = work.is_recv();
        self.reserve(rq)?;
        if self.shared.submit(Wr::Post(work)).is_err() {
            self.credits(rq).fetch_sub(1, Ordering::AcqRel);
            return Err(PostError::NotOperational);
        }
        Ok(())
    }

    /// Posts a Send of `buf` (one message). The buffer comes back in the completion.
    pub fn post_send(&self, wr_id: u64, buf: Vec<u8>, opts: SendOptions) -> Result<(), PostError> {
        self.post(Work::Send {
            wr_id,
            buf: Payload::Owned(buf),
            opts,
            quiet: false,
            done: None,
        })
    }

    /// Posts a receive buffer for one incoming message. Receives fill in order; the
    /// buffer comes back in the completion with the message length.
    pub fn post_recv(&self, wr_id: u64, buf: Vec<u8>) -> Result<(), PostError> {
        self.post(Work::Recv {
            wr_id,
            buf: Payload::Owned(buf),
        })
    }

    /// Posts an RDMA Write of `buf` into the peer's memory at `remote`.
    pub fn post_write(
        &self,
        wr_id: u64,
        buf: Vec<u8>,
        remote: RemoteRegion,
    ) -> Result<(), PostError> {
        self.post(Work::Write {
            wr_id,
            buf: Payload::Owned(buf),
            remote: remote.stag,
            remote_to: remote.to,
        })
    }

    /// Posts an RDMA Read of `len` octets from the peer's memory at `remote` into
    /// `local` at `offset` (a region of this connection with local write access).
    pub fn post_read(
        &self,
        wr_id: u64,
        local: &MemoryRegion,
        offset: u64,
        len: u32,
        remote: RemoteRegion,
    ) -> Result<(), PostError> {
        let read = |local_to| Work::Read {
            wr_id,
            local: local.stag(),
            local_to,
            len,
            remote: remote.stag,
            remote_to: remote.to,
        };
        match local.read_target(self.shared.id, offset, len) {
            Some(local_to) => self.post(read(local_to)),
            None => {
                // The checks of every Read come first (as the core orders them).
                read(0).check(self.shared.negotiated.ord)?;
                Err(PostError::LocalProtection)
            }
        }
    }

    /// Registers `buf` for RDMA on this connection (a peer on any other connection
    /// cannot reach it). The region's tagged offsets start at 0.
    pub fn register(&self, buf: Vec<u8>, access: Access) -> Result<MemoryRegion, Error> {
        let eng = engine::get()?;
        let len = buf.len();
        let stag = eng
            .table
            .register_owned(
                buf.into_boxed_slice(),
                0..len,
                0,
                access,
                Scope::Connection(ConnId(self.shared.id)),
            )
            .map_err(Error::Registration)?;
        Ok(MemoryRegion::new(
            stag,
            len,
            access,
            Arc::clone(&self.shared),
        ))
    }

    /// Starts a graceful close: queued and outstanding work finishes, then FIN.
    pub fn close(&self) {
        if self.shared.state() == ConnState::Open {
            self.shared.set_state(ConnState::Closing);
        }
        let _ = self.shared.submit(Wr::Close);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
    }
}

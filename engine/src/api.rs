//! The safe Rust API: connections, listeners, memory regions.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use eta_ddp_core::{Access, ConnId, Scope, SendOptions, Stag};
use eta_mpa::Negotiated;

use crate::config::Options;
use crate::cq::CompletionQueue;
use crate::engine;
use crate::error::Error;
use crate::establish::{self, Established};
use crate::shared::{ConnShared, ConnState, Payload, Wr};
use crate::sys;
use crate::worker::{NewConn, core_config};

/// Why a work request could not be posted. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostError {
    /// The connection is closing, closed or failed.
    NotConnected,
    /// `Options::max_wr` requests of this kind are outstanding.
    QueueFull,
    /// The message is longer than 2³² − 1 octets.
    TooLong,
    /// The remote tagged offset plus the length wraps around 2⁶⁴.
    OffsetWrap,
    /// The local region of a Read is not this connection's, lacks local write
    /// access, or the range is outside it.
    LocalProtection,
    /// The negotiated ORD is 0: this connection can issue no RDMA Read.
    NoReadCredits,
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotConnected => "connection is not open",
            Self::QueueFull => "too many outstanding work requests",
            Self::TooLong => "message longer than 4 GiB - 1",
            Self::OffsetWrap => "remote offset plus length wraps around",
            Self::LocalProtection => "local region not usable for this Read",
            Self::NoReadCredits => "no RDMA Read credits (ORD 0)",
        })
    }
}

impl std::error::Error for PostError {}

impl From<PostError> for io::Error {
    fn from(e: PostError) -> Self {
        let kind = match e {
            PostError::NotConnected => io::ErrorKind::NotConnected,
            PostError::QueueFull => io::ErrorKind::WouldBlock,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// Receive-path counters of a connection ([`Connection::rx_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxStats {
    /// Payload octets received straight into their destination.
    pub direct: u64,
    /// Payload octets copied once from the engine's read buffer.
    pub copied: u64,
}

/// Where in the peer's memory an RDMA operation goes: the STag and tagged offset the
/// peer advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRegion {
    /// The peer's STag.
    pub stag: Stag,
    /// Tagged offset of the first octet.
    pub to: u64,
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
        let emss = sys::tcp_maxseg(fd)?;
        if let Some(after) = opts.dead_peer_timeout {
            sys::dead_peer_timeout(fd, after)?;
        }
        let own_cq = opts.send_cq.is_none() && opts.recv_cq.is_none();
        let send_cq = match &opts.send_cq {
            Some(cq) => cq.clone(),
            None => CompletionQueue::new()?,
        };
        let recv_cq = opts.recv_cq.clone().unwrap_or_else(|| send_cq.clone());
        let core = core_config(id, &est.negotiated, emss, !responder, opts.max_wr);
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
        eng.hand_over(NewConn {
            shared: Arc::clone(&shared),
            stream,
            core,
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

    fn check_open(&self) -> Result<(), PostError> {
        match self.shared.state() {
            ConnState::Open => Ok(()),
            _ => Err(PostError::NotConnected),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<ConnShared> {
        &self.shared
    }

    fn reserve(&self, rq: bool) -> Result<(), PostError> {
        let counter = if rq {
            &self.shared.outstanding_rq
        } else {
            &self.shared.outstanding_sq
        };
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v < self.shared.max_wr).then_some(v + 1)
            })
            .map(|_| ())
            .map_err(|_| PostError::QueueFull)
    }

    pub(crate) fn submit(&self, rq: bool, wr: Wr) -> Result<(), PostError> {
        self.check_open()?;
        self.reserve(rq)?;
        if self.shared.submit(wr).is_err() {
            let counter = if rq {
                &self.shared.outstanding_rq
            } else {
                &self.shared.outstanding_sq
            };
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(PostError::NotConnected);
        }
        Ok(())
    }

    /// Posts a Send of `buf` (one message). The buffer comes back in the completion.
    pub fn post_send(&self, wr_id: u64, buf: Vec<u8>, opts: SendOptions) -> Result<(), PostError> {
        if u32::try_from(buf.len()).is_err() {
            return Err(PostError::TooLong);
        }
        self.submit(
            false,
            Wr::Send {
                wr_id,
                buf: Payload::Owned(buf),
                opts,
                quiet: false,
            },
        )
    }

    /// Posts a receive buffer for one incoming message. Receives fill in order; the
    /// buffer comes back in the completion with the message length.
    pub fn post_recv(&self, wr_id: u64, buf: Vec<u8>) -> Result<(), PostError> {
        self.submit(
            true,
            Wr::Recv {
                wr_id,
                buf: Payload::Owned(buf),
            },
        )
    }

    /// Posts an RDMA Write of `buf` into the peer's memory at `remote`.
    pub fn post_write(
        &self,
        wr_id: u64,
        buf: Vec<u8>,
        remote: RemoteRegion,
    ) -> Result<(), PostError> {
        let len = u32::try_from(buf.len()).map_err(|_| PostError::TooLong)?;
        if remote.to.checked_add(u64::from(len)).is_none() {
            return Err(PostError::OffsetWrap);
        }
        self.submit(
            false,
            Wr::Write {
                wr_id,
                buf: Payload::Owned(buf),
                remote: remote.stag,
                remote_to: remote.to,
            },
        )
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
        if self.shared.negotiated.ord == 0 {
            return Err(PostError::NoReadCredits);
        }
        if remote.to.checked_add(u64::from(len)).is_none() {
            return Err(PostError::OffsetWrap);
        }
        let fits = offset
            .checked_add(u64::from(len))
            .is_some_and(|e| e <= local.len as u64);
        if local.conn != self.shared.id || !local.access.contains(Access::LOCAL_WRITE) || !fits {
            return Err(PostError::LocalProtection);
        }
        self.submit(
            false,
            Wr::Read {
                wr_id,
                local: local.stag,
                local_to: local.base_to + offset,
                len,
                remote: remote.stag,
                remote_to: remote.to,
            },
        )
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
            .map_err(|e| Error::Engine(format!("registration failed: {e:?}")))?;
        Ok(MemoryRegion {
            stag,
            base_to: 0,
            len,
            access,
            conn: self.shared.id,
            shared: Arc::clone(&self.shared),
        })
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

/// Memory registered for RDMA on one connection. Dropping it deregisters it; the
/// memory is freed once no FPDU in flight refers to it.
pub struct MemoryRegion {
    stag: Stag,
    base_to: u64,
    len: usize,
    access: Access,
    conn: u64,
    shared: Arc<ConnShared>,
}

impl fmt::Debug for MemoryRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRegion")
            .field("stag", &self.stag)
            .field("len", &self.len)
            .field("access", &self.access)
            .finish()
    }
}

impl MemoryRegion {
    /// The STag to advertise to the peer.
    pub fn stag(&self) -> Stag {
        self.stag
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the peer should write or read: this region at `offset`.
    pub fn remote(&self, offset: u64) -> RemoteRegion {
        RemoteRegion {
            stag: self.stag,
            to: self.base_to + offset,
        }
    }

    /// Copies the region's octets at `offset` into `dst` (consistent with respect
    /// to placement: a copy never sees half of one segment's placement).
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), Error> {
        let eng = engine::get()?;
        eng.table
            .copy_out(self.stag, self.base_to + offset, dst)
            .map_err(|e| Error::Engine(format!("read of region failed: {e:?}")))
    }
}

impl Drop for MemoryRegion {
    fn drop(&mut self) {
        if self.shared.submit(Wr::Deregister(self.stag, None)).is_err() {
            // The engine has let go of the connection: nothing is in flight.
            if let Ok(eng) = engine::get() {
                let _ = eng.table.deregister(self.stag);
            }
        }
    }
}

/// A listening socket whose accepted connections are iWARP connections (this end is
/// the MPA Responder).
///
/// MPA setup runs for each accepted TCP connection in a thread of its own, so a
/// client that connects and then says nothing holds up only itself (until
/// `Options::request_timeout`), never the connections behind it.
pub struct Listener {
    listener: TcpListener,
    opts: Options,
    done: Arc<Finished>,
}

/// Setups that finished and wait for `accept`, and the eventfd that says so.
struct Finished {
    queue: std::sync::Mutex<std::collections::VecDeque<Result<Connection, Error>>>,
    ready: sys::EventFd,
    in_flight: std::sync::atomic::AtomicUsize,
}

/// Most MPA setups a listener runs at once; more connections wait in the kernel's
/// accept queue.
const MAX_SETUPS: usize = 256;

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("listener", &self.listener)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds and listens.
    pub fn bind(addr: impl ToSocketAddrs, opts: Options) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Listener {
            listener,
            opts,
            done: Arc::new(Finished {
                queue: std::sync::Mutex::new(std::collections::VecDeque::new()),
                ready: sys::EventFd::new()?,
                in_flight: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Returns the next connection whose MPA setup as Responder finished, in the
    /// order they finish. A peer that failed setup (bad Request, time-out, rejected)
    /// is closed and reported here; call again for the next one.
    pub fn accept(&self) -> Result<Connection, Error> {
        use std::os::fd::AsRawFd;
        loop {
            if let Some(r) = self.lock_done().pop_front() {
                return r;
            }
            if self.done.in_flight.load(Ordering::Acquire) < MAX_SETUPS {
                match self.listener.accept() {
                    Ok((stream, _)) => {
                        self.spawn_setup(stream)?;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Wait for a new TCP connection or a finished setup.
            let lfd = self.listener.as_raw_fd();
            let efd = self.done.ready.raw();
            sys::wait_readable(&[lfd, efd])?;
            self.done.ready.drain();
        }
    }

    fn spawn_setup(&self, stream: TcpStream) -> Result<(), Error> {
        stream.set_nonblocking(false)?;
        let mut opts = self.opts.clone();
        // One pollable fd per socket: a listener's connections get none.
        opts.socket = None;
        let done = Arc::clone(&self.done);
        done.in_flight.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("eta-mpa-accept".into())
            .spawn(move || {
                let r = establish::respond(&stream, &opts)
                    .and_then(|est| Connection::start(stream, est, &opts, true));
                done.queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back(r);
                done.in_flight.fetch_sub(1, Ordering::AcqRel);
                done.ready.signal();
            });
        if let Err(e) = spawned {
            self.done.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(e.into());
        }
        Ok(())
    }

    fn lock_done(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Result<Connection, Error>>> {
        self.done.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

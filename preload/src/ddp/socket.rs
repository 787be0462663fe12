//! One DDP socket: its phase (options only, listening, setting up, open, failed),
//! the switch of its fd from the kernel's TCP socket to the engine's pollable fd,
//! and MPA setup.

use std::collections::HashMap;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use eta_engine::{Connection, Readiness};
use libc::c_int;

use super::epoll_move;
use super::opts::{Agreed, EtaOpts};
use super::registry;
use crate::log::{self, Level};
use crate::real;

/// Where a socket is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Still the kernel's TCP socket: options set, not connected in DDP mode yet.
    Fresh,
    /// A listening socket in DDP mode (still the kernel's).
    Listening,
    /// Switched; MPA setup is running.
    Connecting,
    /// Full Operation.
    Open,
    /// Setup or the connection failed: the errno and the story.
    Failed(i32, String),
}

/// Which end of MPA setup this side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Connected: the MPA Initiator.
    Initiator,
    /// Accepted: the MPA Responder.
    Responder,
}

/// A region registered with `eta_reg_mr`.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    /// First octet.
    pub addr: usize,
    /// Length.
    pub len: usize,
    /// `ETA_ACCESS_*` bits.
    pub access: c_int,
}

/// A socket the shim handles.
#[derive(Debug)]
pub struct DdpSocket {
    /// The fork generation it was made in (stale in a child).
    pub generation: u64,
    /// What it asks for.
    pub opts: Mutex<EtaOpts>,
    phase: Mutex<Phase>,
    phase_changed: Condvar,
    conn: OnceLock<Arc<Connection>>,
    ready: OnceLock<Arc<Readiness>>,
    /// The TCP socket once the fd was switched (for socket options and names).
    tcp: OnceLock<OwnedFd>,
    /// `O_NONBLOCK` as the program set it.
    pub nonblock: AtomicBool,
    /// Regions registered through it.
    pub regions: Mutex<HashMap<u32, Region>>,
    /// Work was posted or memory registered from the program's own memory: close
    /// must wait until the engine lets go of it.
    pub raw_used: AtomicBool,
    /// How many fds refer to it.
    pub fds: AtomicUsize,
    /// The last fd was closed.
    pub closed: AtomicBool,
    /// The fd it was made on (completions name it).
    fd: AtomicI32,
    /// Its failure was logged (at debug level, once).
    failure_logged: AtomicBool,
}

impl DdpSocket {
    /// A socket on `fd` with `opts`, in phase `Fresh`.
    pub fn new(opts: EtaOpts, fd: c_int) -> Arc<Self> {
        registry::install_process_handlers();
        Arc::new(Self {
            generation: registry::generation(),
            opts: Mutex::new(opts),
            phase: Mutex::new(Phase::Fresh),
            phase_changed: Condvar::new(),
            conn: OnceLock::new(),
            ready: OnceLock::new(),
            tcp: OnceLock::new(),
            nonblock: AtomicBool::new(false),
            regions: Mutex::new(HashMap::new()),
            raw_used: AtomicBool::new(false),
            fds: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
            fd: AtomicI32::new(fd),
            failure_logged: AtomicBool::new(false),
        })
    }

    /// The fd it was made on.
    pub fn fd(&self) -> c_int {
        self.fd.load(Ordering::Relaxed)
    }

    /// The regions registered through it, locked.
    pub fn regions_lock(&self) -> MutexGuard<'_, HashMap<u32, Region>> {
        self.regions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it was inherited across `fork` (then unusable here).
    pub fn stale(&self) -> bool {
        self.generation != registry::generation()
    }

    /// The phase.
    pub fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the phase and wakes who waits for setup.
    pub fn set_phase(&self, p: Phase) {
        *self.phase() = p;
        self.phase_changed.notify_all();
    }

    /// Options, locked.
    pub fn opts(&self) -> MutexGuard<'_, EtaOpts> {
        self.opts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, once open.
    pub fn conn(&self) -> Option<&Arc<Connection>> {
        self.conn.get()
    }

    /// The pollable fd's owner, once switched.
    pub fn readiness(&self) -> Option<&Arc<Readiness>> {
        self.ready.get()
    }

    /// The TCP socket's fd once switched.
    pub fn tcp_fd(&self) -> Option<RawFd> {
        self.tcp.get().map(AsRawFd::as_raw_fd)
    }

    /// Waits until setup finished (open or failed). With `nonblocking`, waits only
    /// if the program's fd `app` already says setup is done (the engine may report
    /// readiness a moment before the setup thread records the connection); else
    /// returns false.
    pub fn wait_setup(&self, app: c_int, nonblocking: bool) -> bool {
        let mut ph = self.phase();
        if nonblocking && *ph == Phase::Connecting {
            let done = Readiness::wait(app, libc::POLLOUT, Some(Duration::ZERO)).unwrap_or(false);
            if !done {
                return false;
            }
        }
        while *ph == Phase::Connecting {
            ph = self
                .phase_changed
                .wait(ph)
                .unwrap_or_else(|p| p.into_inner());
        }
        true
    }

    /// Turns `fd` (this socket's TCP socket) into the engine's pollable fd and
    /// starts MPA setup as `role`: in this thread when `blocking` (returns the
    /// outcome), else in a helper thread (returns at once). `connecting`: the TCP
    /// connect may still be in progress.
    pub fn switch(
        self: &Arc<Self>,
        fd: c_int,
        role: Role,
        blocking: bool,
        connecting: bool,
    ) -> Result<(), i32> {
        // SAFETY: F_DUPFD_CLOEXEC on the program's socket; the result is a new fd.
        let tcp = unsafe { real::fcntl_int(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if tcp < 0 {
            return Err(crate::errno::get());
        }
        // SAFETY: `tcp` was just created and is owned by nobody else.
        let tcp = unsafe { OwnedFd::from_raw_fd(tcp) };
        // SAFETY: F_GETFL on the program's socket.
        let fl = unsafe { real::fcntl_int(fd, libc::F_GETFL, 0) };
        self.nonblock
            .store(fl >= 0 && fl & libc::O_NONBLOCK != 0, Ordering::Release);
        let (ready, app) = Readiness::new().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        let ready = Arc::new(ready);
        let moved = epoll_move::take_registrations(fd);
        // SAFETY: dup3 of the pollable end onto the program's fd number, which
        // atomically closes the program's reference to the TCP socket (we hold
        // `tcp`). `app` is closed when it drops: the program's fd is the only one.
        if unsafe { real::dup3(app.as_raw_fd(), fd, libc::O_CLOEXEC) } < 0 {
            let e = crate::errno::get();
            epoll_move::restore(fd, &moved);
            return Err(e);
        }
        epoll_move::restore(fd, &moved);
        log::debug!(
            "fd {fd}: switched to DDP mode, MPA setup as the {role:?} (the TCP socket is now fd {})",
            tcp.as_raw_fd()
        );
        let _ = self.tcp.set(tcp);
        let _ = self.ready.set(Arc::clone(&ready));
        self.set_phase(Phase::Connecting);
        if blocking {
            self.setup(role, connecting);
            return match &*self.phase() {
                Phase::Failed(e, _) => Err(*e),
                _ => Ok(()),
            };
        }
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("eta-mpa-setup".into())
            .spawn(move || me.setup(role, connecting));
        if let Err(e) = spawned {
            let errno = e.raw_os_error().unwrap_or(libc::EAGAIN);
            self.fail(errno, format!("cannot start the MPA setup thread: {e}"));
        }
        Ok(())
    }

    /// MPA setup on the switched socket.
    fn setup(&self, role: Role, connecting: bool) {
        let Some(tcp) = self.tcp_fd() else {
            return;
        };
        let opts = {
            let mut o = self.opts().engine_options();
            o.socket = self.ready.get().cloned();
            o
        };
        if connecting {
            // The TCP handshake first (a non-blocking connect).
            let ok = loop {
                let mut pfd = libc::pollfd {
                    fd: tcp,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ms = opts.reply_timeout.as_millis() as c_int;
                // SAFETY: one valid pollfd.
                match unsafe { libc::poll(&mut pfd, 1, ms) } {
                    0 => break Err((libc::ETIMEDOUT, "TCP connect timed out".to_string())),
                    n if n > 0 => break Ok(()),
                    _ if crate::errno::get() == libc::EINTR => continue,
                    _ => {
                        let e = crate::errno::get();
                        break Err((e, "poll failed".to_string()));
                    }
                }
            };
            let ok = ok.and_then(|()| match so_error(tcp) {
                0 => Ok(()),
                e => Err((
                    e,
                    format!(
                        "TCP connect failed: {}",
                        std::io::Error::from_raw_os_error(e)
                    ),
                )),
            });
            if let Err((e, text)) = ok {
                self.fail(e, text);
                return;
            }
        }
        // SAFETY: F_DUPFD_CLOEXEC on our TCP socket: the engine gets its own fd.
        let dup = unsafe { real::fcntl_int(tcp, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            let e = crate::errno::get();
            self.fail(e, "cannot duplicate the TCP socket".into());
            return;
        }
        // SAFETY: `dup` is a new fd owned by nobody else; it is a TCP socket.
        let stream = unsafe { TcpStream::from_raw_fd(dup) };
        if stream.set_nonblocking(false).is_err() {
            self.fail(libc::EIO, "cannot make the TCP socket blocking".into());
            return;
        }
        let r = match role {
            Role::Initiator => Connection::from_connected(stream, &opts),
            Role::Responder => Connection::from_accepted(stream, &opts),
        };
        match r {
            Ok(conn) => {
                let conn = Arc::new(conn);
                super::capi::note_connection(conn.id(), self);
                let _ = self.conn.set(conn);
                self.set_phase(Phase::Open);
                crate::log::info!("DDP connection {} open", self.conn().map_or(0, |c| c.id()));
                if let Some(c) = self.conn() {
                    log::debug!(
                        "fd {}: connection {} established as the MPA {role:?}: {}, {} octets of private data from the peer",
                        self.fd(),
                        c.id(),
                        Agreed(c.negotiated()),
                        c.peer_private_data().len()
                    );
                }
                if self.closed.load(Ordering::Acquire) {
                    self.finish_close();
                }
            }
            Err(e) => self.fail(e.errno(), e.to_string()),
        }
    }

    /// Setup failed (or could not start): the fd hangs up and reports `errno`.
    pub fn fail(&self, errno: i32, text: String) {
        crate::log::info!("DDP setup failed: {text}");
        if let Some(t) = self.tcp_fd() {
            // SAFETY: shutdown of our own TCP socket; no pointers.
            unsafe { libc::shutdown(t, libc::SHUT_RDWR) };
        }
        self.set_phase(Phase::Failed(errno, text));
        if let Some(r) = self.ready.get() {
            r.hang_up();
        }
    }

    /// Logs (at debug level, once) why the socket failed, as `ETA_ERROR` tells it:
    /// called where a call on it ends in an error. Off, it costs one relaxed load.
    pub fn log_failure(&self) {
        if !log::enabled(Level::Debug) || self.failure_logged.load(Ordering::Relaxed) {
            return;
        }
        if let Some((e, text)) = self.failure() {
            if !self.failure_logged.swap(true, Ordering::Relaxed) {
                log::write_line(
                    Level::Debug,
                    format_args!(
                        "fd {}: DDP socket failed: {} ({text})",
                        self.fd(),
                        std::io::Error::from_raw_os_error(e)
                    ),
                );
            }
        }
    }

    /// The errno and text of a failure, from setup or from the connection.
    pub fn failure(&self) -> Option<(i32, String)> {
        if let Phase::Failed(e, t) = &*self.phase() {
            return Some((*e, t.clone()));
        }
        let c = self.conn()?;
        let e = c.errno()?;
        Some((e, c.error().unwrap_or_default()))
    }

    /// The last fd is gone: close the connection (queued messages first, then
    /// FIN). Work on the program's own memory must be finished before the program
    /// may reuse that memory, so then this waits for a graceful close (at most
    /// [`DRAIN_TIMEOUT`]) and resets the connection after. Otherwise a blocking
    /// socket waits (at most [`DRAIN_TIMEOUT`]) until the engine has written every
    /// queued message and the FIN to TCP, so that, as after a TCP `close`, the
    /// kernel owns what is left and the process may leave at once (even by
    /// `_exit`) without losing it; a non-blocking socket does not wait (the
    /// exit handler, [`drain_at_exit`], covers a process that leaves by `exit`).
    pub fn finish_close(&self) {
        let Some(c) = self.conn() else {
            // Still setting up: the setup thread closes it when done.
            return;
        };
        c.close();
        if self.raw_used.load(Ordering::Acquire) {
            if !c.wait_released(Some(DRAIN_TIMEOUT)) {
                log::debug!(
                    "connection {}: not closed within {DRAIN_TIMEOUT:?} while the engine held the program's memory: reset",
                    c.id()
                );
                c.abort();
                // Unbounded on purpose: until the engine has let go after the
                // reset, it may still touch the program's memory, which the program
                // may reuse as soon as close() returns.
                c.wait_released(None);
            }
        } else if self.nonblock.load(Ordering::Acquire) {
            registry::closing(c);
        } else if !c.wait_drained(Some(DRAIN_TIMEOUT)) {
            log::debug!(
                "connection {}: queued messages not written within {DRAIN_TIMEOUT:?} of close; the engine goes on in the background",
                c.id()
            );
            registry::closing(c);
        }
    }
}

/// How long a blocking `close` of a DDP socket, and the exit of the process, wait
/// for the engine to write out what the program queued before.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// At `exit`: every DDP socket of this process still open is closed gracefully
/// and the engine given up to [`DRAIN_TIMEOUT`] in all to write out what was
/// queued, so that a program that writes and leaves (with or without `close`)
/// loses nothing, as on TCP, where the kernel sends what the process left behind.
pub fn drain_at_exit() {
    let mut conns = registry::open_connections_at_exit();
    conns.extend(registry::closing_at_exit());
    if conns.is_empty() {
        return;
    }
    for c in &conns {
        c.close();
    }
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    for c in &conns {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if !c.wait_drained(Some(left)) {
            log::debug!(
                "connection {}: queued messages not written by exit ({DRAIN_TIMEOUT:?})",
                c.id()
            );
        }
    }
}

/// `SO_ERROR` of `fd` (0 if none or on failure).
pub fn so_error(fd: c_int) -> c_int {
    real::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(0)
}

//! A DDP socket's life: bind, listen, connect, accept, shutdown, close, dup.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use libc::{c_int, c_uint, sockaddr, socklen_t};

use super::{Way, capi, fail, lookup, registry, way};
use crate::ddp::opts::EtaOpts;
use crate::ddp::socket::{DdpSocket, Phase, Role};
use crate::errno;
use crate::fdtable::{self, FD_TABLE_LEN, FdKind};
use crate::{log, real};

/// `bind`: before the switch only.
pub fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::bind(fd, addr, len) },
        Way::Fail(e) => fail(e),
        Way::Ddp(_) => fail(libc::EINVAL),
    }
}

/// `listen`: a DDP socket becomes a DDP listener.
pub fn listen(fd: c_int, backlog: c_int) -> c_int {
    let s = match lookup(fd) {
        Err(libc::EBADFD) => return fail(libc::EBADFD),
        Err(_) => {
            // SAFETY: forwarded untouched.
            return unsafe { real::listen(fd, backlog) };
        }
        Ok(s) => s,
    };
    if s.readiness().is_some() {
        return fail(libc::EINVAL);
    }
    // SAFETY: forwarded untouched.
    let r = unsafe { real::listen(fd, backlog) };
    if r == 0 && s.opts().ddp {
        s.set_phase(Phase::Listening);
        log::debug!("fd {fd}: listening in DDP mode");
    }
    r
}

/// `connect`: on a socket in DDP mode, TCP connect and then MPA setup as the
/// Initiator (see eta.h for blocking and non-blocking sockets).
pub fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let s = match lookup(fd) {
        Err(libc::EBADFD) => return fail(libc::EBADFD),
        Err(_) => {
            // SAFETY: forwarded untouched.
            return unsafe { real::connect(fd, addr, len) };
        }
        Ok(s) => s,
    };
    if s.readiness().is_some() {
        return fail(match &*s.phase() {
            Phase::Connecting => libc::EALREADY,
            Phase::Failed(e, _) => *e,
            _ => libc::EISCONN,
        });
    }
    if !s.opts().ddp {
        // SAFETY: forwarded untouched.
        return unsafe { real::connect(fd, addr, len) };
    }
    // SAFETY: F_GETFL on the program's socket.
    let nonblocking = unsafe { real::fcntl_int(fd, libc::F_GETFL, 0) } & libc::O_NONBLOCK != 0;
    // SAFETY: forwarded untouched.
    let r = unsafe { real::connect(fd, addr, len) };
    let in_progress = r != 0 && errno::get() == libc::EINPROGRESS;
    if r != 0 && !in_progress {
        return -1;
    }
    if nonblocking {
        match s.switch(fd, Role::Initiator, false, in_progress) {
            Ok(()) => fail(libc::EINPROGRESS),
            Err(e) => fail(e),
        }
    } else {
        match s.switch(fd, Role::Initiator, true, false) {
            Ok(()) => 0,
            Err(e) => fail(e),
        }
    }
}

/// `accept`/`accept4` on a DDP listener: accepted sockets are DDP sockets (MPA
/// setup as the Responder: before returning on a blocking listener, in the
/// background on a non-blocking one).
pub fn accept4(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t, flags: c_int) -> c_int {
    let s = match lookup(fd) {
        Err(libc::EBADFD) => return fail(libc::EBADFD),
        Err(_) => return kernel_accept(fd, addr, alen, flags),
        Ok(s) => s,
    };
    if *s.phase() != Phase::Listening {
        return kernel_accept(fd, addr, alen, flags);
    }
    // SAFETY: F_GETFL on the program's listening socket.
    let blocking = unsafe { real::fcntl_int(fd, libc::F_GETFL, 0) } & libc::O_NONBLOCK == 0;
    loop {
        // SAFETY: forwarded (plus close-on-exec, which every DDP socket has).
        let nfd = unsafe { real::accept4(fd, addr, alen, flags | libc::SOCK_CLOEXEC) };
        if nfd < 0 {
            return -1;
        }
        if nfd as usize >= FD_TABLE_LEN {
            // SAFETY: closes the fd just accepted.
            unsafe { real::close(nfd) };
            return fail(libc::EMFILE);
        }
        log::debug!("fd {fd}: accepted fd {nfd}");
        let mut o: EtaOpts = s.opts().clone();
        o.ddp = true;
        let child = DdpSocket::new(o, nfd);
        fdtable::note_accepted(nfd);
        fdtable::set(nfd, FdKind::Ddp);
        registry::insert(nfd, Arc::clone(&child));
        match child.switch(nfd, Role::Responder, blocking, false) {
            Ok(()) => {
                child
                    .nonblock
                    .store(flags & libc::SOCK_NONBLOCK != 0, Ordering::Release);
                return nfd;
            }
            Err(e) => {
                log::info!("accepted connection failed MPA setup (errno {e})");
                close(nfd);
                if !blocking {
                    return fail(libc::ECONNABORTED);
                }
            }
        }
    }
}

fn kernel_accept(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t, flags: c_int) -> c_int {
    // SAFETY: forwarded untouched.
    let nfd = unsafe { real::accept4(fd, addr, alen, flags) };
    if nfd >= 0 {
        fdtable::note_accepted(nfd);
    }
    nfd
}

/// `accept`.
pub fn accept(fd: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> c_int {
    accept4(fd, addr, alen, 0)
}

/// `shutdown`: on a switched socket `SHUT_WR`/`SHUT_RDWR` close gracefully
/// (queued messages first, then FIN); `SHUT_RD` does nothing.
pub fn shutdown(fd: c_int, how: c_int) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::shutdown(fd, how) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            if !matches!(how, libc::SHUT_RD | libc::SHUT_WR | libc::SHUT_RDWR) {
                return fail(libc::EINVAL);
            }
            match s.conn() {
                Some(c) => {
                    if how != libc::SHUT_RD {
                        c.close();
                    }
                    0
                }
                None => fail(libc::ENOTCONN),
            }
        }
    }
}

/// Drops one fd's reference to its socket (close, or replaced by `dup2`).
fn release(fd: c_int) {
    fdtable::clear(fd);
    let Some(s) = registry::remove(fd) else {
        return;
    };
    if s.stale() {
        // Inherited across fork: the engine and the connection belong to the
        // parent. Touch nothing (not even the destructor).
        std::mem::forget(s);
        return;
    }
    if s.fds.fetch_sub(1, Ordering::AcqRel) == 1 {
        log::debug!("fd {fd}: DDP socket closed ({})", Closed(&s));
        s.closed.store(true, Ordering::Release);
        if let Some(c) = s.conn() {
            capi::forget_connection(c.id());
        }
        s.finish_close();
    }
}

/// How a DDP socket was when its last fd closed, as the debug log tells it.
struct Closed<'a>(&'a DdpSocket);

impl fmt::Display for Closed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match (s.conn(), s.failure()) {
            (Some(c), None) => write!(f, "connection {} closes gracefully", c.id()),
            (Some(c), Some((_, text))) => write!(f, "connection {} had failed: {text}", c.id()),
            (None, Some((_, text))) => write!(f, "setup had failed: {text}"),
            (None, None) => write!(f, "{:?}, no connection", *s.phase()),
        }
    }
}

/// `close`.
pub fn close(fd: c_int) -> c_int {
    if capi::forget_cq(fd) {
        fdtable::clear(fd);
    } else {
        release(fd);
    }
    // SAFETY: forwarded.
    unsafe { real::close(fd) }
}

/// `close_range`.
pub fn close_range(
    first: c_uint,
    last: c_uint,
    flags: c_int,
    kernel: impl FnOnce() -> c_int,
) -> c_int {
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let hi = c_int::try_from(last).unwrap_or(c_int::MAX);
        if let Ok(lo) = c_int::try_from(first) {
            for fd in registry::fds_in(lo, hi) {
                release(fd);
            }
        }
    }
    kernel()
}

/// The new fd `new` duplicates DDP socket fd `old`.
pub(super) fn adopt(old: c_int, new: c_int) -> c_int {
    if new < 0 {
        return new;
    }
    let Some(s) = registry::get(old) else {
        fdtable::copy(old, new);
        return new;
    };
    if new as usize >= FD_TABLE_LEN {
        // SAFETY: closes the duplicate just made; the shim could not track it.
        unsafe { real::close(new) };
        return fail(libc::EMFILE);
    }
    s.fds.fetch_add(1, Ordering::AcqRel);
    // `new` was free (dup) or released by the caller (dup2/dup3).
    registry::insert(new, s);
    fdtable::copy(old, new);
    new
}

/// `dup`.
pub fn dup(fd: c_int) -> c_int {
    if registry::get(fd).is_some() {
        // SAFETY: F_DUPFD_CLOEXEC: a DDP socket stays close-on-exec.
        let new = unsafe { real::fcntl_int(fd, libc::F_DUPFD_CLOEXEC, 0) };
        return adopt(fd, new);
    }
    // SAFETY: forwarded.
    let new = unsafe { real::dup(fd) };
    adopt(fd, new)
}

/// `dup3` (and `dup2` with `flags` 0).
pub fn dup3(old: c_int, new: c_int, flags: c_int, two: bool) -> c_int {
    if old == new {
        // SAFETY: forwarded (dup2 of an fd onto itself is a validity check).
        return unsafe {
            if two {
                real::dup2(old, new)
            } else {
                real::dup3(old, new, flags)
            }
        };
    }
    let ddp = registry::get(old).is_some();
    let f = if ddp { libc::O_CLOEXEC } else { flags };
    // SAFETY: forwarded (with close-on-exec for a DDP socket).
    let r = unsafe {
        if two && !ddp {
            real::dup2(old, new)
        } else {
            real::dup3(old, new, f)
        }
    };
    if r < 0 {
        return r;
    }
    // Whatever `new` was is closed now.
    release(new);
    fdtable::clear(new);
    adopt(old, new)
}

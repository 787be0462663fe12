//! The socket calls on fds the shim handles (see [`crate::ddp`]).
//!
//! Each function here has the C signature of the libc function it stands in for
//! and is reached only for marked fds (the passthrough never gets here). A socket
//! that has not switched yet (options set, listening) is still the kernel's TCP
//! socket, so most calls go to libc unchanged; on a switched socket they are
//! translated to the engine. Errors come back as `-1` with the errno `eta.h`
//! documents.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use eta_engine::SendOptions;
use libc::{
    c_int, c_uint, c_ulong, c_void, iovec, mmsghdr, msghdr, off_t, off64_t, size_t, sockaddr,
    socklen_t, ssize_t, timespec,
};

use super::opts::{self, EtaOpts, OptError};
use super::socket::{DdpSocket, Phase, Role, real_fcntl};
use super::{capi, lookup, registry};
use crate::errno;
use crate::fdtable::{self, FD_TABLE_LEN, FdKind};
use crate::interpose::{real, variadic};

/// Largest chunk `sendfile` to a DDP socket sends as one message.
const SENDFILE_CHUNK: usize = 1 << 20;

fn fail<T: From<i8>>(e: c_int) -> T {
    errno::set(e);
    T::from(-1)
}

/// What to do with a call on a marked fd.
enum Way {
    /// The fd is still the kernel's socket (or unknown to the registry).
    Kernel,
    /// A switched DDP socket.
    Ddp(Arc<DdpSocket>),
    /// Fails with this errno (a socket inherited across `fork`).
    Fail(c_int),
}

fn way(fd: c_int) -> Way {
    match lookup(fd) {
        Ok(s) if s.readiness().is_some() => Way::Ddp(s),
        Ok(_) => Way::Kernel,
        Err(libc::EBADFD) => Way::Fail(libc::EBADFD),
        Err(_) => Way::Kernel,
    }
}

// ---- receiving --------------------------------------------------------------------

/// A message's octets into `bufs`; `(len, end_of_message)`.
fn recv_msg(
    fd: c_int,
    s: &DdpSocket,
    bufs: &mut [&mut [u8]],
    flags: c_int,
) -> Result<(usize, bool), c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    let nonblock = s.nonblock.load(Ordering::Acquire) || flags & libc::MSG_DONTWAIT != 0;
    let conn = match s.conn() {
        Some(c) => Arc::clone(c),
        None => {
            if !s.wait_setup(fd, nonblock) {
                return Err(libc::EAGAIN);
            }
            match s.conn() {
                Some(c) => Arc::clone(c),
                None => return Err(s.failure().map_or(libc::ENOTCONN, |f| f.0)),
            }
        }
    };
    conn.recv_message(fd, bufs, flags & libc::MSG_PEEK != 0, nonblock)
        .map(|r| (r.len, r.end_of_message))
        .map_err(|e| e.errno())
}

/// # Safety
/// `p..p+n` must be valid for writes (or `n` 0).
unsafe fn slice_mut<'a>(p: *mut c_void, n: size_t) -> Result<&'a mut [u8], c_int> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's buffer, per the C contract of the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast(), n) })
}

/// # Safety
/// `p..p+n` must be valid for reads (or `n` 0).
unsafe fn slice<'a>(p: *const c_void, n: size_t) -> Result<&'a [u8], c_int> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's buffer, per the C contract of the call.
    Ok(unsafe { std::slice::from_raw_parts(p.cast(), n) })
}

/// # Safety
/// `iov` must point at `cnt` iovecs describing writable memory.
unsafe fn iov_mut<'a>(iov: *const iovec, cnt: c_int) -> Result<Vec<&'a mut [u8]>, c_int> {
    if !(0..=libc::UIO_MAXIOV).contains(&cnt) {
        return Err(libc::EINVAL);
    }
    if cnt > 0 && iov.is_null() {
        return Err(libc::EFAULT);
    }
    (0..cnt as usize)
        .map(|i| {
            // SAFETY: `i` < cnt, within the caller's array.
            let v = unsafe { &*iov.add(i) };
            // SAFETY: the caller's buffer.
            unsafe { slice_mut(v.iov_base, v.iov_len) }
        })
        .collect()
}

/// # Safety
/// `iov` must point at `cnt` iovecs describing readable memory.
unsafe fn iov<'a>(iov: *const iovec, cnt: c_int) -> Result<Vec<&'a [u8]>, c_int> {
    if !(0..=libc::UIO_MAXIOV).contains(&cnt) {
        return Err(libc::EINVAL);
    }
    if cnt > 0 && iov.is_null() {
        return Err(libc::EFAULT);
    }
    (0..cnt as usize)
        .map(|i| {
            // SAFETY: `i` < cnt, within the caller's array.
            let v = unsafe { &*iov.add(i) };
            // SAFETY: the caller's buffer.
            unsafe { slice(v.iov_base, v.iov_len) }
        })
        .collect()
}

/// The common receive path: `bufs` from the caller, `kernel` for a socket that
/// has not switched.
fn recv_path(
    fd: c_int,
    flags: c_int,
    bufs: impl FnOnce() -> Result<Vec<&'static mut [u8]>, c_int>,
    kernel: impl FnOnce() -> ssize_t,
) -> (ssize_t, bool) {
    match way(fd) {
        Way::Kernel => (kernel(), false),
        Way::Fail(e) => (fail(e), false),
        Way::Ddp(s) => match bufs().and_then(|mut b| recv_msg(fd, &s, &mut b, flags)) {
            Ok((n, eom)) => (n as ssize_t, eom),
            Err(e) => (fail(e), false),
        },
    }
}

/// `read`.
pub fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    recv_path(
        fd,
        0,
        // SAFETY: read's contract: `buf` holds `count` writable octets.
        || unsafe { slice_mut(buf, count) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::read::call(fd, buf, count) },
    )
    .0
}

/// `__read_chk`.
pub fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t {
    if count > buflen {
        // SAFETY: glibc's own overflow report; it does not return.
        unsafe { real::__read_chk::call(fd, buf, count, buflen) };
    }
    read(fd, buf, count)
}

/// `readv`.
pub fn readv(fd: c_int, v: *const iovec, cnt: c_int) -> ssize_t {
    recv_path(
        fd,
        0,
        // SAFETY: readv's contract.
        || unsafe { iov_mut(v, cnt) },
        // SAFETY: forwarded untouched.
        || unsafe { real::readv::call(fd, v, cnt) },
    )
    .0
}

/// `recv`.
pub fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t {
    recv_path(
        fd,
        flags,
        // SAFETY: recv's contract.
        || unsafe { slice_mut(buf, len) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::recv::call(fd, buf, len, flags) },
    )
    .0
}

/// `__recv_chk`.
pub fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if len > buflen {
        // SAFETY: glibc's own overflow report; it does not return.
        unsafe { real::__recv_chk::call(fd, buf, len, buflen, flags) };
    }
    recv(fd, buf, len, flags)
}

/// `recvfrom` (the peer's address is not reported: `*alen` becomes 0, as TCP does).
pub fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    let (n, _) = recv_path(
        fd,
        flags,
        // SAFETY: recvfrom's contract.
        || unsafe { slice_mut(buf, len) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::recvfrom::call(fd, buf, len, flags, addr, alen) },
    );
    if n >= 0 && matches!(way(fd), Way::Ddp(_)) && !alen.is_null() {
        // SAFETY: recvfrom's contract: `alen` is writable when not null.
        unsafe { *alen = 0 };
    }
    n
}

/// `__recvfrom_chk`.
#[allow(clippy::too_many_arguments)]
pub fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if len > buflen {
        // SAFETY: glibc's own overflow report; it does not return.
        unsafe { real::__recvfrom_chk::call(fd, buf, len, buflen, flags, addr, alen) };
    }
    recvfrom(fd, buf, len, flags, addr, alen)
}

/// `recvmsg`: `MSG_EOR` in `msg_flags` on a message's last octets.
pub fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return match way(fd) {
            Way::Kernel => {
                // SAFETY: forwarded untouched (the kernel reports EFAULT).
                unsafe { real::recvmsg::call(fd, msg, flags) }
            }
            _ => fail(libc::EFAULT),
        };
    }
    // SAFETY: recvmsg's contract: `msg` points at a valid msghdr.
    let m = unsafe { &mut *msg };
    let (n, eom) = recv_path(
        fd,
        flags,
        // SAFETY: the msghdr's iovecs, per recvmsg's contract.
        || unsafe { iov_mut(m.msg_iov, m.msg_iovlen as c_int) },
        // SAFETY: forwarded untouched.
        || unsafe { real::recvmsg::call(fd, msg, flags) },
    );
    if n >= 0 && matches!(way(fd), Way::Ddp(_)) {
        m.msg_namelen = 0;
        m.msg_controllen = 0;
        m.msg_flags = if eom { libc::MSG_EOR } else { 0 };
    }
    n
}

/// `recvmmsg`: one message per entry.
pub fn recvmmsg(
    fd: c_int,
    msgs: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    if !matches!(way(fd), Way::Ddp(_)) {
        if let Way::Fail(e) = way(fd) {
            return fail(e);
        }
        // SAFETY: forwarded untouched.
        return unsafe { real::recvmmsg::call(fd, msgs, vlen, flags, timeout) };
    }
    if msgs.is_null() {
        return fail(libc::EFAULT);
    }
    let mut got = 0;
    for i in 0..vlen as usize {
        let mut f = flags & !libc::MSG_WAITFORONE;
        if got > 0 && flags & libc::MSG_WAITFORONE != 0 {
            f |= libc::MSG_DONTWAIT;
        }
        // SAFETY: `i` < vlen, within the caller's array.
        let m = unsafe { &mut *msgs.add(i) };
        let n = recvmsg(fd, &mut m.msg_hdr, f);
        if n < 0 {
            if got == 0 {
                return -1;
            }
            break;
        }
        m.msg_len = n as c_uint;
        got += 1;
    }
    got
}

// ---- sending ------------------------------------------------------------------------

fn send_msg(fd: c_int, s: &DdpSocket, parts: &[&[u8]], flags: c_int) -> Result<usize, c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    let nonblock = s.nonblock.load(Ordering::Acquire) || flags & libc::MSG_DONTWAIT != 0;
    let conn = match s.conn() {
        Some(c) => Arc::clone(c),
        None => {
            if !s.wait_setup(fd, nonblock) {
                return Err(libc::EAGAIN);
            }
            match s.conn() {
                Some(c) => Arc::clone(c),
                None => return Err(s.failure().map_or(libc::ENOTCONN, |f| f.0)),
            }
        }
    };
    if parts.iter().all(|p| p.is_empty()) {
        // As on TCP, writing nothing sends nothing (eta_post_send sends empty
        // messages).
        return Ok(0);
    }
    conn.send_message(fd, parts, SendOptions::default(), nonblock)
        .map_err(|e| e.errno())
}

fn send_path(
    fd: c_int,
    flags: c_int,
    parts: impl FnOnce() -> Result<Vec<&'static [u8]>, c_int>,
    kernel: impl FnOnce() -> ssize_t,
) -> ssize_t {
    match way(fd) {
        Way::Kernel => kernel(),
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => match parts().and_then(|p| send_msg(fd, &s, &p, flags)) {
            Ok(n) => n as ssize_t,
            Err(e) => fail(e),
        },
    }
}

/// `write`.
pub fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    send_path(
        fd,
        0,
        // SAFETY: write's contract.
        || unsafe { slice(buf, count) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::write::call(fd, buf, count) },
    )
}

/// `writev`.
pub fn writev(fd: c_int, v: *const iovec, cnt: c_int) -> ssize_t {
    send_path(
        fd,
        0,
        // SAFETY: writev's contract.
        || unsafe { iov(v, cnt) },
        // SAFETY: forwarded untouched.
        || unsafe { real::writev::call(fd, v, cnt) },
    )
}

/// `send`.
pub fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    send_path(
        fd,
        flags,
        // SAFETY: send's contract.
        || unsafe { slice(buf, len) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::send::call(fd, buf, len, flags) },
    )
}

/// `sendto` (the address is ignored on a connected socket, as TCP does).
pub fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    send_path(
        fd,
        flags,
        // SAFETY: sendto's contract.
        || unsafe { slice(buf, len) }.map(|b| vec![b]),
        // SAFETY: forwarded untouched.
        || unsafe { real::sendto::call(fd, buf, len, flags, addr, alen) },
    )
}

/// `sendmsg` (control data is ignored).
pub fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return match way(fd) {
            // SAFETY: forwarded untouched (the kernel reports EFAULT).
            Way::Kernel => unsafe { real::sendmsg::call(fd, msg, flags) },
            _ => fail(libc::EFAULT),
        };
    }
    // SAFETY: sendmsg's contract: `msg` points at a valid msghdr.
    let m = unsafe { &*msg };
    send_path(
        fd,
        flags,
        // SAFETY: the msghdr's iovecs.
        || unsafe { iov(m.msg_iov, m.msg_iovlen as c_int) },
        // SAFETY: forwarded untouched.
        || unsafe { real::sendmsg::call(fd, msg, flags) },
    )
}

/// `sendmmsg`: one message per entry.
pub fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::sendmmsg::call(fd, msgs, vlen, flags) },
        Way::Fail(e) => fail(e),
        Way::Ddp(_) => {
            if msgs.is_null() {
                return fail(libc::EFAULT);
            }
            let mut sent = 0;
            for i in 0..vlen as usize {
                // SAFETY: `i` < vlen, within the caller's array.
                let m = unsafe { &mut *msgs.add(i) };
                let n = sendmsg(fd, &m.msg_hdr, flags);
                if n < 0 {
                    if sent == 0 {
                        return -1;
                    }
                    break;
                }
                m.msg_len = n as c_uint;
                sent += 1;
            }
            sent
        }
    }
}

/// `sendfile` to a DDP socket: up to 1 MiB of the file per call, as one message.
/// A DDP socket as the source is `EINVAL`.
pub fn sendfile_any(
    out_fd: c_int,
    in_fd: c_int,
    offset: *mut off64_t,
    count: size_t,
    kernel: impl FnOnce() -> ssize_t,
) -> ssize_t {
    if matches!(way(in_fd), Way::Ddp(_)) {
        return fail(libc::EINVAL);
    }
    let s = match way(out_fd) {
        Way::Kernel => return kernel(),
        Way::Fail(e) => return fail(e),
        Way::Ddp(s) => s,
    };
    let mut buf = vec![0u8; count.min(SENDFILE_CHUNK)];
    let n = if offset.is_null() {
        // SAFETY: reads into our own buffer.
        unsafe { real::read::call(in_fd, buf.as_mut_ptr().cast(), buf.len()) }
    } else {
        // SAFETY: `offset` is the caller's (sendfile's contract); our buffer.
        unsafe { libc::pread64(in_fd, buf.as_mut_ptr().cast(), buf.len(), *offset) }
    };
    if n <= 0 {
        return n;
    }
    match send_msg(out_fd, &s, &[&buf[..n as usize]], 0) {
        Ok(sent) => {
            if !offset.is_null() {
                // SAFETY: as above.
                unsafe { *offset += sent as off64_t };
            }
            sent as ssize_t
        }
        Err(e) => fail(e),
    }
}

/// `sendfile`.
pub fn sendfile(out_fd: c_int, in_fd: c_int, offset: *mut off_t, count: size_t) -> ssize_t {
    sendfile_any(out_fd, in_fd, offset.cast(), count, || {
        // SAFETY: forwarded untouched.
        unsafe { real::sendfile::call(out_fd, in_fd, offset, count) }
    })
}

/// `sendfile64`.
pub fn sendfile64(out_fd: c_int, in_fd: c_int, offset: *mut off64_t, count: size_t) -> ssize_t {
    sendfile_any(out_fd, in_fd, offset, count, || {
        // SAFETY: forwarded untouched.
        unsafe { real::sendfile64::call(out_fd, in_fd, offset, count) }
    })
}

// ---- connection life ----------------------------------------------------------------

/// `bind`: before the switch only.
pub fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::bind::call(fd, addr, len) },
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
            return unsafe { real::listen::call(fd, backlog) };
        }
        Ok(s) => s,
    };
    if s.readiness().is_some() {
        return fail(libc::EINVAL);
    }
    // SAFETY: forwarded untouched.
    let r = unsafe { real::listen::call(fd, backlog) };
    if r == 0 && s.opts().ddp {
        s.set_phase(Phase::Listening);
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
            return unsafe { real::connect::call(fd, addr, len) };
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
        return unsafe { real::connect::call(fd, addr, len) };
    }
    // SAFETY: F_GETFL on the program's socket.
    let nonblocking = unsafe { real_fcntl(fd, libc::F_GETFL, 0) } & libc::O_NONBLOCK != 0;
    // SAFETY: forwarded untouched.
    let r = unsafe { real::connect::call(fd, addr, len) };
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
    let blocking = unsafe { real_fcntl(fd, libc::F_GETFL, 0) } & libc::O_NONBLOCK == 0;
    loop {
        // SAFETY: forwarded (plus close-on-exec, which every DDP socket has).
        let nfd = unsafe { real::accept4::call(fd, addr, alen, flags | libc::SOCK_CLOEXEC) };
        if nfd < 0 {
            return -1;
        }
        if nfd as usize >= FD_TABLE_LEN {
            // SAFETY: closes the fd just accepted.
            unsafe { real::close::call(nfd) };
            return fail(libc::EMFILE);
        }
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
                crate::log::info!("accepted connection failed MPA setup (errno {e})");
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
    let nfd = unsafe { real::accept4::call(fd, addr, alen, flags) };
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
        Way::Kernel => unsafe { real::shutdown::call(fd, how) },
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
        s.closed.store(true, Ordering::Release);
        if let Some(c) = s.conn() {
            capi::forget_connection(c.id());
        }
        s.finish_close();
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
    unsafe { real::close::call(fd) }
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
fn adopt(old: c_int, new: c_int) -> c_int {
    if new < 0 {
        return new;
    }
    let Some(s) = registry::get(old) else {
        fdtable::copy(old, new);
        return new;
    };
    if new as usize >= FD_TABLE_LEN {
        // SAFETY: closes the duplicate just made; the shim could not track it.
        unsafe { real::close::call(new) };
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
        let new = unsafe { real_fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        return adopt(fd, new);
    }
    // SAFETY: forwarded.
    let new = unsafe { real::dup::call(fd) };
    adopt(fd, new)
}

/// `dup3` (and `dup2` with `flags` 0).
pub fn dup3(old: c_int, new: c_int, flags: c_int, two: bool) -> c_int {
    if old == new {
        // SAFETY: forwarded (dup2 of an fd onto itself is a validity check).
        return unsafe {
            if two {
                real::dup2::call(old, new)
            } else {
                real::dup3::call(old, new, flags)
            }
        };
    }
    let ddp = registry::get(old).is_some();
    let f = if ddp { libc::O_CLOEXEC } else { flags };
    // SAFETY: forwarded (with close-on-exec for a DDP socket).
    let r = unsafe {
        if two && !ddp {
            real::dup2::call(old, new)
        } else {
            real::dup3::call(old, new, f)
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

// ---- options, names, control --------------------------------------------------------

/// Whether `fd` is a TCP socket: `None` if it is no socket at all (or no fd).
fn is_tcp(fd: c_int) -> Option<bool> {
    let get = |name| {
        let mut v: c_int = -1;
        let mut l = std::mem::size_of::<c_int>() as socklen_t;
        // SAFETY: valid out-pointers for an int.
        let r = unsafe {
            real::getsockopt::call(
                fd,
                libc::SOL_SOCKET,
                name,
                (&mut v as *mut c_int).cast(),
                &mut l,
            )
        };
        (r == 0).then_some(v)
    };
    let ty = get(libc::SO_TYPE)?;
    Some(ty == libc::SOCK_STREAM && get(libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP))
}

/// `SOL_ETA` on something that is not a TCP socket: `ENOPROTOOPT` for other
/// sockets, the kernel's own answer (`EBADF`, `ENOTSOCK`) for the rest.
fn not_tcp(fd: c_int, name: c_int, kernel: impl FnOnce() -> c_int) -> Option<c_int> {
    match is_tcp(fd) {
        Some(true) => None,
        Some(false) => {
            crate::log::info!(
                "SOL_ETA option {name} on fd {fd}, a socket that is not TCP: ENOPROTOOPT"
            );
            Some(fail(libc::ENOPROTOOPT))
        }
        None => Some(kernel()),
    }
}

fn is_listening(fd: c_int) -> bool {
    let mut v: c_int = 0;
    let mut l = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-pointers for an int.
    let r = unsafe {
        real::getsockopt::call(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut v as *mut c_int).cast(),
            &mut l,
        )
    };
    r == 0 && v != 0
}

fn is_connected(fd: c_int) -> bool {
    // SAFETY: sockaddr_storage is plain data.
    let mut a: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut l = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: valid out-pointers for an address and its size.
    unsafe {
        real::getpeername::call(fd, (&mut a as *mut libc::sockaddr_storage).cast(), &mut l) == 0
    }
}

/// `setsockopt(fd, SOL_ETA, ..)`.
pub fn set_eta(fd: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    // SAFETY: setsockopt's contract: `val` holds `len` octets.
    let val = match unsafe { slice(val, len as size_t) } {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let s = match lookup(fd) {
        Ok(s) => s,
        Err(libc::EBADFD) => return fail(libc::EBADFD),
        Err(_) => {
            if let Some(r) = not_tcp(fd, name, || {
                // SAFETY: forwarded untouched to get the kernel's answer.
                unsafe {
                    real::setsockopt::call(fd, crate::SOL_ETA, name, val.as_ptr().cast(), len)
                }
            }) {
                return r;
            }
            if fd as usize >= FD_TABLE_LEN {
                return fail(libc::EMFILE);
            }
            let s = DdpSocket::new(EtaOpts::default(), fd);
            fdtable::set(fd, FdKind::Ddp);
            registry::insert(fd, Arc::clone(&s));
            s
        }
    };
    let switched = s.readiness().is_some() || *s.phase() == Phase::Listening;
    match name {
        opts::DDPMODE => {
            let Some(b) = val.get(..4) else {
                return fail(libc::EINVAL);
            };
            if i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) == 0 {
                return fail(libc::EINVAL);
            }
            if s.readiness().is_some() {
                // Already switched (eta.h: options after the switch are EISCONN).
                return fail(libc::EISCONN);
            }
            if switched {
                // A DDP listener: asking again changes nothing.
                return 0;
            }
            s.opts().ddp = true;
            if is_listening(fd) {
                s.set_phase(Phase::Listening);
                0
            } else if is_connected(fd) {
                let role = if fdtable::accepted(fd) {
                    Role::Responder
                } else {
                    Role::Initiator
                };
                match s.switch(fd, role, true, false) {
                    Ok(()) => 0,
                    Err(e) => fail(e),
                }
            } else {
                0
            }
        }
        _ if switched && s.readiness().is_some() => fail(libc::EISCONN),
        opts::CQ => {
            let Some(b) = val.get(..4) else {
                return fail(libc::EINVAL);
            };
            match capi::shared_cq(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])) {
                Some(cq) => {
                    s.opts().cq = Some(cq);
                    0
                }
                None => fail(libc::EINVAL),
            }
        }
        _ => match s.opts().set(name, val) {
            Ok(()) => 0,
            Err(OptError::Invalid) => fail(libc::EINVAL),
            Err(OptError::Unknown) => fail(libc::ENOPROTOOPT),
        },
    }
}

/// Copies an option value out as getsockopt does.
fn put_opt(v: &[u8], val: *mut c_void, len: *mut socklen_t) -> c_int {
    if len.is_null() || (val.is_null() && !v.is_empty()) {
        return fail(libc::EFAULT);
    }
    // SAFETY: getsockopt's contract: `len` is readable and writable.
    let room = unsafe { *len } as usize;
    let n = room.min(v.len());
    if n > 0 {
        // SAFETY: `val` holds `room` >= n writable octets.
        unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), val.cast(), n) };
    }
    // SAFETY: as above.
    unsafe { *len = n as socklen_t };
    0
}

fn get_eta(fd: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int {
    let s = match lookup(fd) {
        Ok(s) => s,
        Err(libc::EBADFD) => return fail(libc::EBADFD),
        Err(_) => {
            if let Some(r) = not_tcp(fd, name, || {
                // SAFETY: forwarded untouched to get the kernel's answer.
                unsafe { real::getsockopt::call(fd, crate::SOL_ETA, name, val, len) }
            }) {
                return r;
            }
            return match EtaOpts::default().get(name) {
                Some(v) => put_opt(&v, val, len),
                None => fail(libc::ENOPROTOOPT),
            };
        }
    };
    if name == opts::ERROR {
        let mut text = s.failure().map(|f| f.1).unwrap_or_default().into_bytes();
        text.push(0);
        return put_opt(&text, val, len);
    }
    let v = match s.conn() {
        Some(c) => opts::negotiated(c.negotiated(), c.peer_private_data(), name),
        None => s.opts().get(name),
    };
    match v {
        Some(v) => put_opt(&v, val, len),
        None => fail(libc::ENOPROTOOPT),
    }
}

/// `getsockopt`: `SOL_ETA` here; `SO_ERROR` of a switched socket is the setup's
/// or connection's failure; other options go to the TCP socket.
pub fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    if level == crate::SOL_ETA {
        return get_eta(fd, name, val, len);
    }
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getsockopt::call(fd, level, name, val, len) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            if level == libc::SOL_SOCKET && name == libc::SO_ERROR {
                let e = s.failure().map_or(0, |f| f.0);
                return put_opt(&e.to_ne_bytes(), val, len);
            }
            let tcp = s.tcp_fd().unwrap_or(-1);
            // SAFETY: forwarded to the TCP socket.
            unsafe { real::getsockopt::call(tcp, level, name, val, len) }
        }
    }
}

/// `setsockopt` of other levels: before the switch the kernel's socket, after it
/// the TCP socket.
pub fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    if level == crate::SOL_ETA {
        return set_eta(fd, name, val, len);
    }
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::setsockopt::call(fd, level, name, val, len) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            let tcp = s.tcp_fd().unwrap_or(-1);
            // SAFETY: forwarded to the TCP socket.
            unsafe { real::setsockopt::call(tcp, level, name, val, len) }
        }
    }
}

/// `getsockname`.
pub fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getsockname::call(fd, addr, len) },
        Way::Fail(e) => fail(e),
        // SAFETY: forwarded to the TCP socket.
        Way::Ddp(s) => unsafe { real::getsockname::call(s.tcp_fd().unwrap_or(-1), addr, len) },
    }
}

/// `getpeername`.
pub fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getpeername::call(fd, addr, len) },
        Way::Fail(e) => fail(e),
        // SAFETY: forwarded to the TCP socket.
        Way::Ddp(s) => unsafe { real::getpeername::call(s.tcp_fd().unwrap_or(-1), addr, len) },
    }
}

/// `fcntl` on a marked fd: `O_NONBLOCK` is the program's setting (the pollable
/// fd itself never blocks), close-on-exec stays on, duplicates are tracked.
pub fn fcntl(is64: bool, fd: c_int, cmd: c_int, arg: usize) -> c_int {
    let ddp = match way(fd) {
        Way::Fail(e) => return fail(e),
        Way::Ddp(s) => Some(s),
        Way::Kernel => None,
    };
    match (cmd, &ddp) {
        (libc::F_DUPFD | libc::F_DUPFD_CLOEXEC, _) => {
            let c = if registry::get(fd).is_some() {
                libc::F_DUPFD_CLOEXEC
            } else {
                cmd
            };
            // SAFETY: forwarded.
            let new = unsafe { variadic::fcntl(is64, fd, c, arg) };
            adopt(fd, new)
        }
        (libc::F_GETFL, Some(s)) => {
            // SAFETY: forwarded.
            let fl = unsafe { variadic::fcntl(is64, fd, cmd, arg) };
            if fl < 0 {
                return fl;
            }
            let nb = if s.nonblock.load(Ordering::Acquire) {
                libc::O_NONBLOCK
            } else {
                0
            };
            (fl & !libc::O_NONBLOCK) | nb
        }
        (libc::F_SETFL, Some(s)) => {
            s.nonblock
                .store(arg as c_int & libc::O_NONBLOCK != 0, Ordering::Release);
            // SAFETY: forwarded, keeping the pollable fd non-blocking.
            unsafe { variadic::fcntl(is64, fd, cmd, arg | libc::O_NONBLOCK as usize) }
        }
        (libc::F_SETFD, Some(_)) => {
            // SAFETY: forwarded, keeping close-on-exec.
            unsafe { variadic::fcntl(is64, fd, cmd, arg | libc::FD_CLOEXEC as usize) }
        }
        // SAFETY: forwarded untouched.
        _ => unsafe { variadic::fcntl(is64, fd, cmd, arg) },
    }
}

/// `ioctl` on a marked fd: `FIONBIO` and `FIONREAD` on a switched socket are the
/// shim's; other requests go to the TCP socket.
pub fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { variadic::ioctl(fd, request, arg) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            let p = arg as *mut c_int;
            match request {
                libc::FIONBIO | libc::FIONREAD if p.is_null() => fail(libc::EFAULT),
                libc::FIONBIO => {
                    // SAFETY: FIONBIO's argument points at an int.
                    let on = unsafe { *p } != 0;
                    s.nonblock.store(on, Ordering::Release);
                    0
                }
                libc::FIONREAD => {
                    let n = s.conn().map_or(0, |c| c.ready_len());
                    // SAFETY: FIONREAD's argument points at a writable int.
                    unsafe { *p = c_int::try_from(n).unwrap_or(c_int::MAX) };
                    0
                }
                // SAFETY: forwarded to the TCP socket.
                _ => unsafe { variadic::ioctl(s.tcp_fd().unwrap_or(-1), request, arg) },
            }
        }
    }
}

//! Receiving on a DDP socket: each call returns octets of one message.

use std::sync::atomic::Ordering;

use eta_engine::{Block, SockError};
use libc::{
    c_int, c_uint, c_void, iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec,
};

use super::{Way, block, fail, iov_mut, open_conn, slice_mut, way};
use crate::ddp::socket::DdpSocket;
use crate::real;

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
    let conn = open_conn(fd, s, nonblock)?;
    let peek = flags & libc::MSG_PEEK != 0;
    // The time-out is looked up only when the call has to wait.
    match conn.recv_message(fd, bufs, peek, Block::Never) {
        Err(SockError::WouldBlock) if !nonblock => {
            conn.recv_message(fd, bufs, peek, block(s, libc::SO_RCVTIMEO))
        }
        r => r,
    }
    .map(|r| (r.len, r.end_of_message))
    .map_err(|e| e.errno())
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
            Err(e) => {
                s.log_failure();
                (fail(e), false)
            }
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
        || unsafe { real::read(fd, buf, count) },
    )
    .0
}

/// `__read_chk`.
pub fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t {
    if count > buflen {
        // SAFETY: glibc's own overflow report; it does not return.
        unsafe { real::__read_chk(fd, buf, count, buflen) };
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
        || unsafe { real::readv(fd, v, cnt) },
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
        || unsafe { real::recv(fd, buf, len, flags) },
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
        unsafe { real::__recv_chk(fd, buf, len, buflen, flags) };
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
        || unsafe { real::recvfrom(fd, buf, len, flags, addr, alen) },
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
        unsafe { real::__recvfrom_chk(fd, buf, len, buflen, flags, addr, alen) };
    }
    recvfrom(fd, buf, len, flags, addr, alen)
}

/// `recvmsg`: `MSG_EOR` in `msg_flags` on a message's last octets.
pub fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return match way(fd) {
            Way::Kernel => {
                // SAFETY: forwarded untouched (the kernel reports EFAULT).
                unsafe { real::recvmsg(fd, msg, flags) }
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
        || unsafe { real::recvmsg(fd, msg, flags) },
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
        return unsafe { real::recvmmsg(fd, msgs, vlen, flags, timeout) };
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

//! Sending on a DDP socket: each call sends one message.

use std::sync::atomic::Ordering;

use eta_engine::{Block, SendOptions, SockError};
use libc::{
    c_int, c_uint, c_void, iovec, mmsghdr, msghdr, off_t, off64_t, size_t, sockaddr, socklen_t,
    ssize_t,
};

use super::{Way, block, fail, iov, open_conn, slice, way};
use crate::ddp::socket::DdpSocket;
use crate::real;

/// Largest chunk `sendfile` to a DDP socket sends as one message.
const SENDFILE_CHUNK: usize = 1 << 20;

fn send_msg(fd: c_int, s: &DdpSocket, parts: &[&[u8]], flags: c_int) -> Result<usize, c_int> {
    if flags & libc::MSG_OOB != 0 {
        return Err(libc::EOPNOTSUPP);
    }
    let nonblock = s.nonblock.load(Ordering::Acquire) || flags & libc::MSG_DONTWAIT != 0;
    let conn = open_conn(fd, s, nonblock)?;
    if parts.iter().all(|p| p.is_empty()) {
        // As on TCP, writing nothing sends nothing (eta_post_send sends empty
        // messages).
        return Ok(0);
    }
    let opts = SendOptions::default();
    if !nonblock && parts.len() == 1 && parts[0].len() >= eta_engine::DIRECT_SEND_MIN {
        // A large blocking write may go out from the caller's buffer, which the
        // engine does only without a time-out: look it up first.
        return conn
            .send_message(fd, parts, opts, block(s, libc::SO_SNDTIMEO))
            .map_err(|e| e.errno());
    }
    // The time-out is looked up only when the call has to wait.
    match conn.send_message(fd, parts, opts, Block::Never) {
        Err(SockError::WouldBlock) if !nonblock => {
            conn.send_message(fd, parts, opts, block(s, libc::SO_SNDTIMEO))
        }
        r => r,
    }
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
            Err(e) => {
                s.log_failure();
                fail(e)
            }
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
        || unsafe { real::write(fd, buf, count) },
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
        || unsafe { real::writev(fd, v, cnt) },
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
        || unsafe { real::send(fd, buf, len, flags) },
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
        || unsafe { real::sendto(fd, buf, len, flags, addr, alen) },
    )
}

/// `sendmsg` (control data is ignored).
pub fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if msg.is_null() {
        return match way(fd) {
            // SAFETY: forwarded untouched (the kernel reports EFAULT).
            Way::Kernel => unsafe { real::sendmsg(fd, msg, flags) },
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
        || unsafe { real::sendmsg(fd, msg, flags) },
    )
}

/// `sendmmsg`: one message per entry.
pub fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::sendmmsg(fd, msgs, vlen, flags) },
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
        unsafe { real::read(in_fd, buf.as_mut_ptr().cast(), buf.len()) }
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
        unsafe { real::sendfile(out_fd, in_fd, offset, count) }
    })
}

/// `sendfile64`.
pub fn sendfile64(out_fd: c_int, in_fd: c_int, offset: *mut off64_t, count: size_t) -> ssize_t {
    sendfile_any(out_fd, in_fd, offset, count, || {
        // SAFETY: forwarded untouched.
        unsafe { real::sendfile64(out_fd, in_fd, offset, count) }
    })
}

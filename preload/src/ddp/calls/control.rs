//! Names, `fcntl` and `ioctl` of a DDP socket.

use std::sync::atomic::Ordering;

use libc::{c_int, c_ulong, sockaddr, socklen_t};

use super::life::adopt;
use super::{Way, fail, registry, way};
use crate::real;

/// `getsockname`.
pub fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getsockname(fd, addr, len) },
        Way::Fail(e) => fail(e),
        // SAFETY: forwarded to the TCP socket.
        Way::Ddp(s) => unsafe { real::getsockname(s.tcp_fd().unwrap_or(-1), addr, len) },
    }
}

/// `getpeername`.
pub fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getpeername(fd, addr, len) },
        Way::Fail(e) => fail(e),
        // SAFETY: forwarded to the TCP socket.
        Way::Ddp(s) => unsafe { real::getpeername(s.tcp_fd().unwrap_or(-1), addr, len) },
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
            let new = unsafe { real::fcntl(is64, fd, c, arg) };
            adopt(fd, new)
        }
        (libc::F_GETFL, Some(s)) => {
            // SAFETY: forwarded.
            let fl = unsafe { real::fcntl(is64, fd, cmd, arg) };
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
            unsafe { real::fcntl(is64, fd, cmd, arg | libc::O_NONBLOCK as usize) }
        }
        (libc::F_SETFD, Some(_)) => {
            // SAFETY: forwarded, keeping close-on-exec.
            unsafe { real::fcntl(is64, fd, cmd, arg | libc::FD_CLOEXEC as usize) }
        }
        // SAFETY: forwarded untouched.
        _ => unsafe { real::fcntl(is64, fd, cmd, arg) },
    }
}

/// `ioctl` on a marked fd: `FIONBIO` and `FIONREAD` on a switched socket are the
/// shim's; other requests go to the TCP socket.
pub fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::ioctl(fd, request, arg) },
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
                _ => unsafe { real::ioctl(s.tcp_fd().unwrap_or(-1), request, arg) },
            }
        }
    }
}

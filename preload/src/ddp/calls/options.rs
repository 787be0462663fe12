//! `SOL_ETA` options and the socket options of a DDP socket.

use std::sync::Arc;

use libc::{c_int, c_void, size_t, socklen_t};

use super::{Way, capi, fail, lookup, registry, slice, way};
use crate::ddp::opts::{self, EtaOpts, OptError};
use crate::ddp::socket::{DdpSocket, Phase, Role};
use crate::eta_h::{ETA_CQ, ETA_DDPMODE, ETA_ERROR, ETA_MAX_FPDU, SOL_ETA};
use crate::fdtable::{self, FD_TABLE_LEN, FdKind};
use crate::{log, real};

/// Whether `fd` is a TCP socket: `None` if it is no socket at all (or no fd).
fn is_tcp(fd: c_int) -> Option<bool> {
    let get = |name| real::getsockopt_int(fd, libc::SOL_SOCKET, name);
    let ty = get(libc::SO_TYPE)?;
    Some(ty == libc::SOCK_STREAM && get(libc::SO_PROTOCOL) == Some(libc::IPPROTO_TCP))
}

/// `SOL_ETA` on something that is not a TCP socket: `ENOPROTOOPT` for other
/// sockets, the kernel's own answer (`EBADF`, `ENOTSOCK`) for the rest.
fn not_tcp(fd: c_int, name: c_int, kernel: impl FnOnce() -> c_int) -> Option<c_int> {
    match is_tcp(fd) {
        Some(true) => None,
        Some(false) => {
            log::info!("SOL_ETA option {name} on fd {fd}, a socket that is not TCP: ENOPROTOOPT");
            Some(fail(libc::ENOPROTOOPT))
        }
        None => Some(kernel()),
    }
}

fn is_listening(fd: c_int) -> bool {
    real::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).is_some_and(|v| v != 0)
}

fn is_connected(fd: c_int) -> bool {
    // SAFETY: sockaddr_storage is plain data.
    let mut a: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut l = std::mem::size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: valid out-pointers for an address and its size.
    unsafe { real::getpeername(fd, (&mut a as *mut libc::sockaddr_storage).cast(), &mut l) == 0 }
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
                unsafe { real::setsockopt(fd, SOL_ETA, name, val.as_ptr().cast(), len) }
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
        ETA_DDPMODE => {
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
                log::debug!("fd {fd}: DDP mode on a listening socket: it accepts DDP sockets");
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
                log::debug!("fd {fd}: DDP mode on: it switches at connect() or listen()");
                0
            }
        }
        _ if switched && s.readiness().is_some() => fail(libc::EISCONN),
        ETA_CQ => {
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
                unsafe { real::getsockopt(fd, SOL_ETA, name, val, len) }
            }) {
                return r;
            }
            return match EtaOpts::default().get(name) {
                Some(v) => put_opt(&v, val, len),
                None => fail(libc::ENOPROTOOPT),
            };
        }
    };
    if name == ETA_ERROR {
        let mut text = s.failure().map(|f| f.1).unwrap_or_default().into_bytes();
        text.push(0);
        return put_opt(&text, val, len);
    }
    let v = match s.conn() {
        // The cap is this side's own setting, not negotiated: what was asked.
        Some(_) if name == ETA_MAX_FPDU => s.opts().get(name),
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
    if level == SOL_ETA {
        return get_eta(fd, name, val, len);
    }
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::getsockopt(fd, level, name, val, len) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            if level == libc::SOL_SOCKET && name == libc::SO_ERROR {
                let e = s.failure().map_or(0, |f| f.0);
                return put_opt(&e.to_ne_bytes(), val, len);
            }
            let tcp = s.tcp_fd().unwrap_or(-1);
            // SAFETY: forwarded to the TCP socket.
            unsafe { real::getsockopt(tcp, level, name, val, len) }
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
    if level == SOL_ETA {
        return set_eta(fd, name, val, len);
    }
    match way(fd) {
        // SAFETY: forwarded untouched.
        Way::Kernel => unsafe { real::setsockopt(fd, level, name, val, len) },
        Way::Fail(e) => fail(e),
        Way::Ddp(s) => {
            let tcp = s.tcp_fd().unwrap_or(-1);
            // SAFETY: forwarded to the TCP socket.
            unsafe { real::setsockopt(tcp, level, name, val, len) }
        }
    }
}

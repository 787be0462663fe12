//! DDP mode: sockets switched with `setsockopt(fd, SOL_ETA, ETA_DDPMODE, ..)`.
//!
//! A socket the shim handles is marked in the fd table and has a [`DdpSocket`] in
//! the [`registry`]. Until it connects (or while it listens) it is still the
//! kernel's TCP socket and most calls pass through. At the switch its fd number is
//! taken over (`dup3`) by the engine's pollable fd ([`eta_engine::Readiness`]), so
//! `poll`, `select` and `epoll` keep working unchanged, and the TCP socket moves to
//! the engine. [`calls`] translates the socket calls on it; [`capi`] is the C API
//! of `include/eta.h`.
//!
//! After `fork`, a DDP socket inherited by the child is stale: every call on it
//! fails with `EBADFD` except `close`, which drops the child's fd and nothing
//! else. DDP sockets are close-on-exec.

pub mod calls;
pub mod capi;
mod epoll_move;
pub mod opts;
pub mod registry;
pub mod socket;

use std::sync::Arc;

use eta_engine::Connection;
use libc::c_int;

pub use socket::DdpSocket;

/// After a panic in a call on `fd`: its DDP socket (if any) fails with `EIO` and its
/// connection is reset.
pub fn poison(fd: c_int) {
    if let Ok(s) = lookup(fd) {
        if let Some(c) = s.conn() {
            c.abort();
        }
        s.fail(libc::EIO, "internal error (a panic) in libeta.so".into());
    }
}

/// The DDP socket of `fd` (not stale): `EBADF` if there is none, `EBADFD` for one
/// inherited across `fork`.
pub fn lookup(fd: c_int) -> Result<Arc<DdpSocket>, c_int> {
    match registry::get(fd) {
        Some(s) if s.stale() => Err(libc::EBADFD),
        Some(s) => Ok(s),
        None => Err(libc::EBADF),
    }
}

/// The open connection of `fd`: `EBADF` if `fd` is no DDP socket, `ENOTCONN`
/// while it is not connected yet, or the errno of its failure.
pub fn lookup_open(fd: c_int) -> Result<(Arc<DdpSocket>, Arc<Connection>), c_int> {
    let s = lookup(fd)?;
    if let Some(c) = s.conn() {
        let c = Arc::clone(c);
        return Ok((s, c));
    }
    if s.readiness().is_none() && *s.phase() != socket::Phase::Connecting {
        return Err(if s.opts().ddp {
            libc::ENOTCONN
        } else {
            libc::EBADF
        });
    }
    match s.failure() {
        Some((e, _)) => Err(e),
        None => Err(libc::ENOTCONN),
    }
}

//! Which way a call goes: straight to libc for plain fds, or the shim's own path.
//!
//! The shim's own path (today: `close`/`dup*` of a marked fd, `setsockopt` at
//! `SOL_ETA`; with DDP mode: every call on a DDP socket) runs Rust logic, so it runs
//! under [`guarded`]: a panic never unwinds into C, the call fails with `-1` and
//! `errno` = `EIO` instead, and the panic is logged at error level.

use std::panic::{AssertUnwindSafe, catch_unwind};

use libc::c_int;

use crate::fdtable;

/// Plain fd: straight to libc.
#[inline(always)]
pub fn fd(fd: c_int) -> bool {
    fdtable::is_plain(fd)
}

/// Both fds plain (`sendfile`).
#[inline(always)]
pub fn fds(a: c_int, b: c_int) -> bool {
    fdtable::is_plain(a) && fdtable::is_plain(b)
}

/// A plain fd, unless the call is at the `SOL_ETA` level (`getsockopt`).
#[inline(always)]
pub fn fd_or_eta(fd: c_int, level: c_int) -> bool {
    level != crate::eta_h::SOL_ETA && fdtable::is_plain(fd)
}

/// Runs `f` for a call on `fd`; a panic inside becomes `fail` with `errno` = `EIO`,
/// and a DDP socket on `fd` is put in the error state (its connection reset), so
/// that nothing half-done on it goes on.
#[cold]
#[inline(never)]
pub fn guarded_fd<R>(fd: c_int, fail: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            crate::log::error!(
                "internal error (a panic) in a call on fd {fd}; the call fails with EIO"
            );
            let _ = catch_unwind(|| crate::ddp::poison(fd));
            crate::errno::set(libc::EIO);
            fail
        }
    }
}

/// Runs `f`; a panic inside becomes `fail` with `errno` = `EIO`.
#[cold]
#[inline(never)]
pub fn guarded<R>(fail: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            crate::log::error!("internal error (a panic); the call fails with EIO");
            crate::errno::set(libc::EIO);
            fail
        }
    }
}

#[cfg(test)]
mod tests {
    use libc::c_int;

    use super::{guarded, guarded_fd};

    #[test]
    fn a_panic_becomes_eio() {
        crate::errno::set(0);
        let r: isize = guarded(-1, || panic!("boom"));
        assert_eq!(r, -1);
        assert_eq!(crate::errno::get(), libc::EIO);
        assert_eq!(guarded(-1, || 7), 7);
    }

    #[test]
    fn a_panic_on_a_ddp_socket_fails_the_socket() {
        let fd = 40_100;
        let s = crate::ddp::DdpSocket::new(Default::default(), fd);
        crate::ddp::registry::insert(fd, std::sync::Arc::clone(&s));
        crate::errno::set(0);
        let r: c_int = guarded_fd(fd, -1, || panic!("boom"));
        assert_eq!((r, crate::errno::get()), (-1, libc::EIO));
        assert_eq!(s.failure().map(|f| f.0), Some(libc::EIO));
        crate::ddp::registry::remove(fd);
    }
}

//! The socket calls on fds the shim handles (see [`crate::ddp`]): [`recv`](mod@recv),
//! [`send`](mod@send), [`life`] (connect, accept, close, dup), [`options`] (`SOL_ETA` and
//! socket options), [`control`] (names, `fcntl`, `ioctl`).
//!
//! Each function here has the C signature of the libc function it stands in for
//! and is reached only for marked fds (the passthrough never gets here). A socket
//! that has not switched yet (options set, listening) is still the kernel's TCP
//! socket, so most calls go to libc unchanged; on a switched socket they are
//! translated to the engine. Errors come back as `-1` with the errno `eta.h`
//! documents.

use std::sync::Arc;

use eta_engine::{Block, Connection};
use libc::{c_int, c_void, iovec, size_t, socklen_t};

use super::socket::DdpSocket;
use super::{capi, lookup, registry};
use crate::{errno, real};

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

mod control;
mod life;
mod options;
mod recv;
mod send;

pub use control::{fcntl, getpeername, getsockname, ioctl};
pub use life::{accept, accept4, bind, close, close_range, connect, dup, dup3, listen, shutdown};
pub use options::{getsockopt, setsockopt};
pub use recv::{
    __read_chk, __recv_chk, __recvfrom_chk, read, readv, recv, recvfrom, recvmmsg, recvmsg,
};
pub use send::{send, sendfile, sendfile64, sendmmsg, sendmsg, sendto, write, writev};

/// The connection of switched socket `s` (fd `fd`), waiting for its MPA setup to
/// finish unless `nonblock` (then `EAGAIN`); the setup's errno if it failed.
fn open_conn(fd: c_int, s: &DdpSocket, nonblock: bool) -> Result<Arc<Connection>, c_int> {
    if let Some(c) = s.conn() {
        return Ok(Arc::clone(c));
    }
    if !s.wait_setup(fd, nonblock) {
        return Err(libc::EAGAIN);
    }
    match s.conn() {
        Some(c) => Ok(Arc::clone(c)),
        None => Err(s.failure().map_or(libc::ENOTCONN, |f| f.0)),
    }
}

/// How long a blocking read (`SO_RCVTIMEO`) or write (`SO_SNDTIMEO`, `opt`) on
/// switched socket `s` may wait: as long as the option, kept on the TCP socket
/// (where `setsockopt` put it, before or after the switch), says; 0 is no limit.
fn block(s: &DdpSocket, opt: c_int) -> Block {
    let Some(tcp) = s.tcp_fd() else {
        return Block::Forever;
    };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as socklen_t;
    // SAFETY: getsockopt writes at most `len` octets into the live local `tv`.
    let r = unsafe {
        real::getsockopt(
            tcp,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    let t = std::time::Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + std::time::Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0));
    if r != 0 || t.is_zero() {
        Block::Forever
    } else {
        Block::For(t)
    }
}

// ---- the caller's buffers -----------------------------------------------------------

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

/// The `cnt` iovecs at `iov` (checked as the kernel checks them), each made into a
/// slice by `slice_of`.
///
/// # Safety
/// `iov` must point at `cnt` iovecs.
unsafe fn iovecs<T>(
    iov: *const iovec,
    cnt: c_int,
    slice_of: impl Fn(&iovec) -> Result<T, c_int>,
) -> Result<Vec<T>, c_int> {
    if !(0..=libc::UIO_MAXIOV).contains(&cnt) {
        return Err(libc::EINVAL);
    }
    if cnt > 0 && iov.is_null() {
        return Err(libc::EFAULT);
    }
    (0..cnt as usize)
        // SAFETY: `i` < cnt, within the caller's array.
        .map(|i| slice_of(unsafe { &*iov.add(i) }))
        .collect()
}

/// # Safety
/// `iov` must point at `cnt` iovecs describing writable memory.
unsafe fn iov_mut<'a>(iov: *const iovec, cnt: c_int) -> Result<Vec<&'a mut [u8]>, c_int> {
    // SAFETY: the caller's iovecs and buffers.
    unsafe { iovecs(iov, cnt, |v| slice_mut(v.iov_base, v.iov_len)) }
}

/// # Safety
/// `iov` must point at `cnt` iovecs describing readable memory.
unsafe fn iov<'a>(iov: *const iovec, cnt: c_int) -> Result<Vec<&'a [u8]>, c_int> {
    // SAFETY: the caller's iovecs and buffers.
    unsafe { iovecs(iov, cnt, |v| slice(v.iov_base, v.iov_len)) }
}

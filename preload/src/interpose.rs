//! The exported libc symbols.
//!
//! Each function is defined here under libc's name, so with `LD_PRELOAD` the
//! dynamic linker binds the program's calls to it; the real function is found with
//! `dlsym(RTLD_NEXT, ..)` ([`crate::real`]). For a plain fd the whole cost is one
//! atomic load of the fd's table entry ([`crate::fdtable`]), one load of the real
//! function's address, and a direct call with the arguments untouched: no
//! allocation, no lock, no logging, no panic path, and `errno` is whatever libc
//! left. Marked fds take the guarded path ([`crate::route::guarded`]) into
//! [`crate::ddp::calls`]. Calls over many fds (`poll`, `select`, `epoll_wait`) and
//! `epoll_ctl` always pass through: a DDP socket's fd is a real pollable fd.
//!
//! `fcntl`, `fcntl64` and `ioctl` are C-variadic, and stable Rust cannot define a
//! C-variadic function. They are defined with a fixed third argument of pointer
//! size: on x86-64 (System V) and aarch64 (AAPCS64 as Linux uses it) a variadic
//! argument travels in the same register as a named one (`rdx`, `x2`), so the third
//! argument arrives intact whatever its type (an `int` or a pointer); when the
//! caller passed none, the register holds garbage that is forwarded and ignored by
//! libc exactly as it would have been. The real functions are then called as the
//! variadic functions they are. Other targets are refused at compile time.

use libc::{
    c_int, c_uint, c_ulong, c_void, epoll_event, fd_set, iovec, mmsghdr, msghdr, nfds_t, off_t,
    off64_t, pid_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec, timeval,
};

use crate::{fdtable, real, route};

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!(
    "libeta.so defines fcntl/ioctl with a fixed third argument, which is only correct where \
     variadic arguments are passed like named ones (Linux on x86-64 and aarch64)"
);

/// Defines the exported function of each entry of [`exported!`]'s table, routed by
/// `route::SELECTOR(keys)` (nothing for `manual()` entries).
macro_rules! exports {
    ($(
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $sel:ident($($key:ident),*);
    )*) => {
        $( export_one!([$(#[$attr])*] $name($($arg: $ty),*) -> $ret; $sel($($key),*)); )*
    };
}

/// The first of a selector's keys: the fd a call is about.
macro_rules! first_arg {
    ($first:ident $(, $rest:ident)*) => {
        $first
    };
}

/// One exported function (nothing for `manual()` entries; a plain forward for
/// `always()` entries, which have no fd of their own to look at).
macro_rules! export_one {
    ([$($attr:tt)*] $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; manual()) => {};
    ([$($attr:tt)*] $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; always()) => {
        $($attr)*
        ///
        /// # Safety
        /// The C contract of the libc function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the arguments go untouched to libc's function; the caller
            // keeps its C contract.
            unsafe { real::$name($($arg),*) }
        }
    };
    ([$($attr:tt)*] $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; $sel:ident($($key:ident),*)) => {
        $($attr)*
        ///
        /// # Safety
        /// The C contract of the libc function of this name.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if route::$sel($($key),*) {
                // SAFETY: the arguments go untouched to libc's function; the caller
                // keeps its C contract.
                return unsafe { real::$name($($arg),*) };
            }
            // Out of line, so that the passthrough above stays a leaf and a tail call.
            #[cold]
            #[inline(never)]
            fn marked($($arg: $ty),*) -> $ret {
                route::guarded_fd(first_arg!($($key),*), -1, move || {
                    crate::ddp::calls::$name($($arg),*)
                })
            }
            marked($($arg),*)
        }
    };
}

/// The table of the functions the shim exports under libc's names. Each entry is
/// `fn NAME(ARGS) -> RET = SELECTOR(KEYS);`: the C signature, and how the exported
/// function is routed (`route::SELECTOR(KEYS)`; `always()` passes every call
/// through, `manual()` is exported by hand below). `exported!(m)` hands the whole
/// table to macro `m`: [`exports!`] here, and `originals!` in [`crate::real`], which
/// defines libc's function of each name.
macro_rules! exported {
    ($then:ident) => {
        $then! {
    /// `socket(2)`.
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int = manual();
    /// `bind(2)`.
    fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = fd(fd);
    /// `listen(2)`.
    fn listen(fd: c_int, backlog: c_int) -> c_int = fd(fd);
    /// `accept(2)`.
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = manual();
    /// `accept4(2)`.
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int = manual();
    /// `connect(2)`.
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int = fd(fd);
    /// `read(2)`.
    fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t = fd(fd);
    /// `write(2)`.
    fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t = fd(fd);
    /// `readv(2)`.
    fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t = fd(fd);
    /// `writev(2)`.
    fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t = fd(fd);
    /// `recv(2)`.
    fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> ssize_t = fd(fd);
    /// `recvfrom(2)`.
    fn recvfrom(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t = fd(fd);
    /// `recvmsg(2)`.
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t = fd(fd);
    /// `recvmmsg(2)`.
    fn recvmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int = fd(fd);
    /// `send(2)`.
    fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t = fd(fd);
    /// `sendto(2)`.
    fn sendto(fd: c_int, buf: *const c_void, len: size_t, flags: c_int, addr: *const sockaddr, alen: socklen_t) -> ssize_t = fd(fd);
    /// `sendmsg(2)`.
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t = fd(fd);
    /// `sendmmsg(2)`.
    fn sendmmsg(fd: c_int, msgs: *mut mmsghdr, vlen: c_uint, flags: c_int) -> c_int = fd(fd);
    /// `sendfile(2)`.
    fn sendfile(out_fd: c_int, in_fd: c_int, offset: *mut off_t, count: size_t) -> ssize_t = fds(out_fd, in_fd);
    /// `sendfile64` (what `sendfile` is with `_FILE_OFFSET_BITS=64`).
    fn sendfile64(out_fd: c_int, in_fd: c_int, offset: *mut off64_t, count: size_t) -> ssize_t = fds(out_fd, in_fd);
    /// `shutdown(2)`.
    fn shutdown(fd: c_int, how: c_int) -> c_int = fd(fd);
    /// `getsockopt(2)`: `SOL_ETA` options are the shim's.
    fn getsockopt(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int = fd_or_eta(fd, level);
    /// `getsockname(2)`.
    fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = fd(fd);
    /// `getpeername(2)`.
    fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int = fd(fd);
    /// `poll(2)`.
    fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int = always();
    /// `ppoll(2)`.
    fn ppoll(fds: *mut pollfd, nfds: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int = always();
    /// `select(2)`.
    fn select(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int = always();
    /// `pselect(2)`.
    fn pselect(nfds: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int = always();
    /// `epoll_create(2)`.
    fn epoll_create(size: c_int) -> c_int = always();
    /// `epoll_create1(2)`.
    fn epoll_create1(flags: c_int) -> c_int = always();
    /// `epoll_ctl(2)`: routed by the fd being added, changed or removed.
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int = manual();
    /// `epoll_wait(2)`.
    fn epoll_wait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int) -> c_int = always();
    /// `epoll_pwait(2)`.
    fn epoll_pwait(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int = always();
    /// `epoll_pwait2(2)`.
    fn epoll_pwait2(epfd: c_int, events: *mut epoll_event, max: c_int, timeout: *const timespec, mask: *const sigset_t) -> c_int = always();
    /// `fork(2)`: passes through (`pthread_atfork` handlers, installed with the
    /// first DDP socket, take care of DDP sockets).
    fn fork() -> pid_t = always();
    /// glibc's `_FORTIFY_SOURCE` `read`.
    fn __read_chk(fd: c_int, buf: *mut c_void, count: size_t, buflen: size_t) -> ssize_t = fd(fd);
    /// glibc's `_FORTIFY_SOURCE` `recv`.
    fn __recv_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int) -> ssize_t = fd(fd);
    /// glibc's `_FORTIFY_SOURCE` `recvfrom`.
    fn __recvfrom_chk(fd: c_int, buf: *mut c_void, len: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, alen: *mut socklen_t) -> ssize_t = fd(fd);
    /// glibc's `_FORTIFY_SOURCE` `poll`.
    fn __poll_chk(fds: *mut pollfd, nfds: nfds_t, timeout: c_int, fdslen: size_t) -> c_int = always();
    /// glibc's `_FORTIFY_SOURCE` `ppoll`.
    fn __ppoll_chk(fds: *mut pollfd, nfds: nfds_t, timeout: *const timespec, mask: *const sigset_t, fdslen: size_t) -> c_int = always();

    // Exported by hand below: they keep the fd table up to date.
    fn close(fd: c_int) -> c_int = manual();
    fn dup(fd: c_int) -> c_int = manual();
    fn dup2(old: c_int, new: c_int) -> c_int = manual();
    fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int = manual();
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int = manual();
    fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int = manual();
        }
    };
}
pub(crate) use exported;

exported!(exports);

/// `socket(2)`. The new fd's table entry is reset (an fd number closed behind the
/// shim's back may have left one).
///
/// # Safety
/// The C contract of `socket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: forwarded untouched; the caller keeps socket's contract.
    let fd = unsafe { real::socket(domain, ty, protocol) };
    fdtable::fresh(fd);
    fd
}

/// `accept(2)`. On a plain listener the new fd is noted as accepted (a later
/// switch to DDP mode makes it the MPA Responder).
///
/// # Safety
/// The C contract of `accept`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps accept's contract.
        let nfd = unsafe { real::accept(fd, addr, len) };
        fdtable::note_accepted(nfd);
        return nfd;
    }
    route::guarded_fd(fd, -1, move || crate::ddp::calls::accept(fd, addr, len))
}

/// `accept4(2)`, as [`accept`].
///
/// # Safety
/// The C contract of `accept4`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps accept4's contract.
        let nfd = unsafe { real::accept4(fd, addr, len, flags) };
        fdtable::note_accepted(nfd);
        return nfd;
    }
    route::guarded_fd(fd, -1, move || {
        crate::ddp::calls::accept4(fd, addr, len, flags)
    })
}

/// `epoll_ctl(2)`: passes through (a DDP socket's fd is pollable as it is); the
/// fd table notes that the fd is in an epoll set, for a later switch.
///
/// # Safety
/// The C contract of `epoll_ctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    event: *mut epoll_event,
) -> c_int {
    fdtable::note_epolled(fd);
    // SAFETY: forwarded untouched; the caller keeps epoll_ctl's contract.
    unsafe { real::epoll_ctl(epfd, op, fd, event) }
}

/// `close(2)`.
///
/// # Safety
/// The C contract of `close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps close's contract.
        return unsafe { real::close(fd) };
    }
    route::guarded_fd(fd, -1, move || crate::ddp::calls::close(fd))
}

/// `close_range(2)`: DDP sockets in the range are released first.
///
/// # Safety
/// The C contract of `close_range`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    // SAFETY: forwarded untouched; the caller keeps close_range's contract.
    let kernel = move || unsafe { real::close_range(first, last, flags) };
    if fdtable::none_marked() {
        return kernel();
    }
    route::guarded(-1, move || {
        crate::ddp::calls::close_range(first, last, flags, kernel)
    })
}

/// `closefrom(3)`: DDP sockets at or above `low` are released first.
///
/// # Safety
/// The C contract of `closefrom`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn closefrom(low: c_int) {
    if !fdtable::none_marked() {
        route::guarded(0, move || {
            crate::ddp::calls::close_range(low.max(0) as c_uint, c_uint::MAX, 0, || 0)
        });
    }
    // SAFETY: forwarded untouched; the caller keeps closefrom's contract.
    unsafe { real::closefrom(low) }
}

/// `dup(2)`. A DDP socket's duplicate is the same DDP socket.
///
/// # Safety
/// The C contract of `dup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps dup's contract.
        return unsafe { real::dup(fd) };
    }
    route::guarded_fd(fd, -1, move || crate::ddp::calls::dup(fd))
}

/// `dup2(2)`. `new` becomes what `old` is; a DDP socket `new` was is released.
///
/// # Safety
/// The C contract of `dup2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if fdtable::is_plain(old) && fdtable::is_plain(new) {
        // SAFETY: forwarded untouched; the caller keeps dup2's contract.
        let r = unsafe { real::dup2(old, new) };
        if r >= 0 && old != new {
            fdtable::copy(old, new);
        }
        return r;
    }
    route::guarded_fd(old, -1, move || crate::ddp::calls::dup3(old, new, 0, true))
}

/// `dup3(2)`, as [`dup2`].
///
/// # Safety
/// The C contract of `dup3`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if fdtable::is_plain(old) && fdtable::is_plain(new) {
        // SAFETY: forwarded untouched; the caller keeps dup3's contract.
        let r = unsafe { real::dup3(old, new, flags) };
        if r >= 0 {
            fdtable::copy(old, new);
        }
        return r;
    }
    route::guarded_fd(old, -1, move || {
        crate::ddp::calls::dup3(old, new, flags, false)
    })
}

/// `setsockopt(2)`. `SOL_ETA` options are the shim's (`include/eta.h`).
///
/// # Safety
/// The C contract of `setsockopt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    if level != crate::eta_h::SOL_ETA && fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps setsockopt's contract.
        return unsafe { real::setsockopt(fd, level, name, val, len) };
    }
    route::guarded_fd(fd, -1, move || {
        crate::ddp::calls::setsockopt(fd, level, name, val, len)
    })
}

#[inline(always)]
unsafe fn fcntl_any(is64: bool, fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps fcntl's contract.
        return unsafe { real::fcntl(is64, fd, cmd, arg) };
    }
    route::guarded_fd(fd, -1, move || crate::ddp::calls::fcntl(is64, fd, cmd, arg))
}

/// `fcntl(2)`, variadic in C: defined with a fixed pointer-sized third argument
/// (see the module docs). `F_DUPFD*` copies the fd's kind.
///
/// # Safety
/// The C contract of `fcntl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the caller keeps fcntl's contract.
    unsafe { fcntl_any(false, fd, cmd, arg) }
}

/// `fcntl64`, glibc's name for `fcntl` with 64-bit offsets; as [`fcntl`].
///
/// # Safety
/// The C contract of `fcntl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: the caller keeps fcntl's contract.
    unsafe { fcntl_any(true, fd, cmd, arg) }
}

/// `ioctl(2)`, variadic in C: defined with a fixed pointer-sized third argument
/// (see the module docs).
///
/// # Safety
/// The C contract of `ioctl`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    if fdtable::is_plain(fd) {
        // SAFETY: forwarded untouched; the caller keeps ioctl's contract.
        return unsafe { real::ioctl(fd, request, arg) };
    }
    route::guarded_fd(fd, -1, move || crate::ddp::calls::ioctl(fd, request, arg))
}

//! `libeta.so`, the `LD_PRELOAD` shim.
//!
//! The shim defines libc's socket and fd calls ([`interpose`](crate) lists them),
//! looks each fd up in the fd table ([`fdtable`]) with one atomic load, and sends
//! every call on a plain fd straight to libc with its arguments untouched. A TCP
//! socket switched to **DDP mode** (`setsockopt(fd, SOL_ETA, ETA_DDPMODE, ..)`) is
//! marked, and its calls are translated to the engine ([`ddp`]); the C API of
//! `include/eta.h` is exported from here too ([`ddp::capi`]).
//!
//! Loading the shim prints nothing (unless `ETA_LOG` asks, see [`log`]), installs
//! no signal handler and starts no thread. A load constructor (an `.init_array`
//! entry) resolves the real functions and reads `ETA_LOG`; calls that arrive
//! before it resolve lazily. Rust logic beyond the passthrough runs under
//! `catch_unwind`: a panic never unwinds into C, the call fails with `-1`/`EIO`.

#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod ddp;
mod errno;
pub mod eta_h;
pub mod fdtable;
mod interpose;
pub mod log;
mod real;
mod route;

/// The load constructor: run by the dynamic linker when `libeta.so` is loaded.
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

extern "C" fn init() {
    route::guarded((), || {
        real::resolve_all();
        #[cfg(not(test))]
        quiet_panics();
        log::init();
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        log::info!("libeta.so loaded in pid {pid}");
    });
}

/// The shim carries its own copy of `std`, so this hook is the shim's alone: a
/// panic inside the shim is reported through `ETA_LOG` (error level), never printed
/// unasked, and the program's own panic hook (if it is a Rust program) is untouched.
#[cfg(not(test))]
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        log::error!("panic in libeta.so: {info}");
    }));
}

#[cfg(test)]
mod tests {
    //! The exported functions, called directly in this test binary (the symbols are
    //! defined here, so the binary's own calls go through them as well).
    use libc::c_int;

    use crate::eta_h::{ETA_DDPMODE, SOL_ETA};
    use crate::fdtable::{self, FdKind};
    use crate::{errno, interpose};

    fn socketpair() -> [c_int; 2] {
        let mut fds = [0; 2];
        // SAFETY: a valid array of two ints.
        let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
        assert_eq!(r, 0);
        fds
    }

    #[test]
    fn errno_is_libcs() {
        let mut b = [0u8; 4];
        errno::set(0);
        // SAFETY: valid buffer; fd -1 is invalid on purpose.
        let r = unsafe { interpose::read(-1, b.as_mut_ptr().cast(), 4) };
        assert_eq!((r, errno::get()), (-1, libc::EBADF));
        // SAFETY: as above.
        let r = unsafe { interpose::__read_chk(-1, b.as_mut_ptr().cast(), 4, 4) };
        assert_eq!((r, errno::get()), (-1, libc::EBADF));
        // SAFETY: fcntl on an invalid fd.
        let r = unsafe { interpose::fcntl(-1, libc::F_GETFL, 0) };
        assert_eq!((r, errno::get()), (-1, libc::EBADF));
    }

    #[test]
    fn passthrough_moves_bytes() {
        let [a, b] = socketpair();
        let mut buf = [0u8; 8];
        // SAFETY: valid fds and buffers.
        unsafe {
            assert_eq!(interpose::send(a, b"ping".as_ptr().cast(), 4, 0), 4);
            assert_eq!(interpose::recv(b, buf.as_mut_ptr().cast(), 8, 0), 4);
            assert_eq!(&buf[..4], b"ping");
            let fl = interpose::fcntl(a, libc::F_GETFL, 0);
            assert!(fl >= 0);
            assert_eq!(
                interpose::fcntl(a, libc::F_SETFL, (fl | libc::O_NONBLOCK) as usize),
                0
            );
            assert_ne!(interpose::fcntl(a, libc::F_GETFL, 0) & libc::O_NONBLOCK, 0);
            let mut n: c_int = -1;
            assert_eq!(
                interpose::ioctl(b, libc::FIONREAD, (&mut n as *mut c_int) as usize),
                0
            );
            assert_eq!(n, 0);
            interpose::close(a);
            interpose::close(b);
        }
    }

    #[test]
    fn sol_eta_is_the_shims_on_tcp_only() {
        // SAFETY: plain sockets; setsockopt/getsockopt with valid ints.
        unsafe {
            let one: c_int = 1;
            let u = interpose::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
            let r =
                interpose::setsockopt(u, SOL_ETA, ETA_DDPMODE, (&one as *const c_int).cast(), 4);
            assert_eq!((r, errno::get()), (-1, libc::ENOPROTOOPT));
            interpose::close(u);
            let s = interpose::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            let mut v: c_int = -1;
            let mut l = 4;
            let r = interpose::getsockopt(
                s,
                SOL_ETA,
                ETA_DDPMODE,
                (&mut v as *mut c_int).cast(),
                &mut l,
            );
            assert_eq!((r, v), (0, 0), "a TCP socket reports DDP mode off");
            let zero: c_int = 0;
            let r =
                interpose::setsockopt(s, SOL_ETA, ETA_DDPMODE, (&zero as *const c_int).cast(), 4);
            assert_eq!((r, errno::get()), (-1, libc::EINVAL));
            let r =
                interpose::setsockopt(s, SOL_ETA, ETA_DDPMODE, (&one as *const c_int).cast(), 4);
            assert_eq!(r, 0);
            let r = interpose::getsockopt(
                s,
                SOL_ETA,
                ETA_DDPMODE,
                (&mut v as *mut c_int).cast(),
                &mut l,
            );
            assert_eq!((r, v), (0, 1));
            assert_eq!(fdtable::kind(s), FdKind::Ddp);
            assert_eq!(interpose::close(s), 0);
            assert_eq!(fdtable::kind(s), FdKind::Plain);
        }
    }

    #[test]
    fn dup_and_close_keep_the_table() {
        let [a, b] = socketpair();
        assert!(fdtable::set(a, FdKind::Ddp));
        // SAFETY: valid fds.
        unsafe {
            let d = interpose::dup(a);
            assert!(d >= 0);
            assert_eq!(fdtable::kind(d), FdKind::Ddp);
            let f = interpose::fcntl(a, libc::F_DUPFD_CLOEXEC, 100);
            assert!(f >= 100);
            assert_eq!(fdtable::kind(f), FdKind::Ddp);
            // A plain fd dup2'ed over a marked one makes it plain.
            assert_eq!(interpose::dup2(b, d), d);
            assert_eq!(fdtable::kind(d), FdKind::Plain);
            assert_eq!(interpose::dup3(a, d, libc::O_CLOEXEC), d);
            assert_eq!(fdtable::kind(d), FdKind::Ddp);
            // A marked fd the DDP registry does not know goes to the kernel.
            assert_eq!(interpose::write(a, b"x".as_ptr().cast(), 1), 1);
            for fd in [a, d, f] {
                assert_eq!(interpose::close(fd), 0);
                assert_eq!(fdtable::kind(fd), FdKind::Plain);
            }
            interpose::close(b);
        }
    }
}

//! libc's own functions, found with `dlsym(RTLD_NEXT, name)`: the shim's only way
//! to the real libc.
//!
//! Every function the shim exports ([`crate::interpose`]) has its original here,
//! under the same name and C signature (`real::read(fd, buf, count)`), generated
//! from the table in `interpose.rs`; the C-variadic `fcntl`, `fcntl64` and `ioctl`
//! and `closefrom` (which returns nothing) are written out below. A function libc
//! lacks fails with `-1`/`ENOSYS`.
//!
//! Every symbol is resolved once by the load constructor ([`crate::init`]). A call
//! that arrives before it ran (from another library's constructor, say) resolves
//! its own symbol on the spot: the fast path is one relaxed load of the pointer and
//! a null test. Relaxed is enough: the pointer refers to code of a library the
//! dynamic linker loaded (and synchronized) before, and two racing resolutions
//! store the same value.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

use libc::{
    c_int, c_uint, c_ulong, epoll_event, fd_set, iovec, mmsghdr, msghdr, nfds_t, off_t, off64_t,
    pid_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec, timeval,
};

/// One libc function, resolved lazily.
pub struct Symbol {
    /// The name, NUL-terminated.
    name: &'static str,
    ptr: AtomicPtr<c_void>,
}

impl Symbol {
    /// A symbol named `name`, which must end with a NUL octet.
    pub const fn new(name: &'static str) -> Self {
        assert!(!name.is_empty() && name.as_bytes()[name.len() - 1] == 0);
        Symbol {
            name,
            ptr: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The address if already resolved, else null (one relaxed load).
    #[inline(always)]
    pub fn cached(&self) -> *mut c_void {
        self.ptr.load(Ordering::Relaxed)
    }

    /// The function's address, or `None` if libc has no such symbol.
    #[inline(always)]
    pub fn get(&self) -> Option<*mut c_void> {
        let p = self.ptr.load(Ordering::Relaxed);
        if !p.is_null() {
            Some(p)
        } else {
            self.resolve()
        }
    }

    /// Looks the symbol up now (the constructor, or the first early call).
    #[cold]
    #[inline(never)]
    pub fn resolve(&self) -> Option<*mut c_void> {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; it only reads.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr().cast()) };
        if p.is_null() {
            return None;
        }
        self.ptr.store(p, Ordering::Relaxed);
        Some(p)
    }
}

/// What a wrapper returns when libc lacks the function: `-1` with `ENOSYS`.
#[cold]
fn missing() {
    crate::errno::set(libc::ENOSYS);
}

/// Defines, for each entry of the table in `interpose.rs`, libc's function of that
/// name (its symbol in [`sym`]), and [`resolve_all`].
macro_rules! originals {
    ($(
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $sel:ident($($key:ident),*);
    )*) => {
        /// The symbols of the table's functions, by name.
        #[allow(non_upper_case_globals)]
        mod sym {
            use super::Symbol;
            $(
                pub(super) static $name: Symbol = Symbol::new(concat!(stringify!($name), "\0"));
            )*
        }

        $(
            #[doc = concat!("Calls libc's `", stringify!($name), "` (`-1`/`ENOSYS` if libc has none).")]
            ///
            /// # Safety
            /// The C contract of the libc function of this name.
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                type F = unsafe extern "C" fn($($ty),*) -> $ret;
                let p = sym::$name.cached();
                if !p.is_null() {
                    // SAFETY: `p` is libc's function of this name, whose C prototype
                    // is this signature.
                    let f = unsafe { std::mem::transmute::<*mut c_void, F>(p) };
                    // SAFETY: the caller keeps the function's C contract.
                    return unsafe { f($($arg),*) };
                }
                /// A call before the symbol was resolved (the constructor has not
                /// run yet): resolve, then call. Out of line, so that the path
                /// above stays a leaf and a tail call.
                #[cold]
                #[inline(never)]
                #[allow(clippy::too_many_arguments)]
                unsafe fn first_call($($arg: $ty),*) -> $ret {
                    let Some(p) = sym::$name.resolve() else {
                        missing();
                        return -1;
                    };
                    // SAFETY: as above.
                    let f = unsafe { std::mem::transmute::<*mut c_void, F>(p) };
                    // SAFETY: the caller keeps the function's C contract.
                    unsafe { f($($arg),*) }
                }
                // SAFETY: the caller keeps the function's C contract.
                unsafe { first_call($($arg),*) }
            }
        )*

        /// Resolves every symbol now (the load constructor).
        pub(crate) fn resolve_all() {
            $( let _ = sym::$name.resolve(); )*
            for s in [&CLOSEFROM, &FCNTL, &FCNTL64, &IOCTL] {
                let _ = s.resolve();
            }
        }
    };
}

crate::interpose::exported!(originals);

static CLOSEFROM: Symbol = Symbol::new("closefrom\0");
static FCNTL: Symbol = Symbol::new("fcntl\0");
static FCNTL64: Symbol = Symbol::new("fcntl64\0");
static IOCTL: Symbol = Symbol::new("ioctl\0");

type Fcntl = unsafe extern "C" fn(c_int, c_int, ...) -> c_int;
type Ioctl = unsafe extern "C" fn(c_int, c_ulong, ...) -> c_int;

/// Calls libc's `closefrom` (nothing if libc has none; `errno` is then `ENOSYS`).
///
/// # Safety
/// The C contract of `closefrom`.
pub(crate) unsafe fn closefrom(low: c_int) {
    match CLOSEFROM.get() {
        Some(p) => {
            // SAFETY: `p` is libc's `void closefrom(int)`.
            let f: unsafe extern "C" fn(c_int) = unsafe { std::mem::transmute(p) };
            // SAFETY: the caller keeps closefrom's contract.
            unsafe { f(low) }
        }
        None => missing(),
    }
}

/// Calls libc's `fcntl` (or `fcntl64` when `is64`) with `arg` as its variadic
/// argument (see `interpose.rs` on passing it pointer-sized).
///
/// # Safety
/// The C contract of `fcntl`.
#[inline(always)]
pub(crate) unsafe fn fcntl(is64: bool, fd: c_int, cmd: c_int, arg: usize) -> c_int {
    match if is64 { &FCNTL64 } else { &FCNTL }.get() {
        Some(p) => {
            // SAFETY: `p` is libc's fcntl/fcntl64: `int (int, int, ...)`.
            let f: Fcntl = unsafe { std::mem::transmute(p) };
            // SAFETY: the caller keeps fcntl's contract.
            unsafe { f(fd, cmd, arg) }
        }
        None => {
            missing();
            -1
        }
    }
}

/// `fcntl` with an int argument, through libc's own function.
///
/// # Safety
/// The C contract of `fcntl`.
pub(crate) unsafe fn fcntl_int(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl(false, fd, cmd, arg as usize) }
}

/// An int-valued socket option of `fd` through libc's own `getsockopt`: `None` if
/// the call fails.
pub(crate) fn getsockopt_int(fd: c_int, level: c_int, name: c_int) -> Option<c_int> {
    let mut v: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: valid out-pointers for an int and its size.
    let r = unsafe { getsockopt(fd, level, name, (&mut v as *mut c_int).cast(), &mut len) };
    (r == 0).then_some(v)
}

/// Calls libc's `ioctl` with `arg` as its variadic argument.
///
/// # Safety
/// The C contract of `ioctl`.
#[inline(always)]
pub(crate) unsafe fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    match IOCTL.get() {
        Some(p) => {
            // SAFETY: `p` is libc's ioctl: `int (int, unsigned long, ...)`.
            let f: Ioctl = unsafe { std::mem::transmute(p) };
            // SAFETY: the caller keeps ioctl's contract.
            unsafe { f(fd, request, arg) }
        }
        None => {
            missing();
            -1
        }
    }
}

//! Which fd is which DDP socket, and what `fork` does to that.
//!
//! The map from fd numbers to [`DdpSocket`]s sits behind a small spin lock that
//! `pthread_atfork` handlers take before `fork` and release after it in both
//! processes (as glibc does with its own locks), so a child never inherits it
//! locked by a thread that does not exist there. The critical sections only look
//! up, insert or remove one entry.
//!
//! Each socket records the fork generation it was made in; the child handler
//! advances the generation, so every inherited DDP socket is recognisably stale in
//! the child (its calls fail with `EBADFD`, see [`crate::ddp`]).

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use libc::c_int;

use eta_engine::Connection;

use super::socket::DdpSocket;

/// A spin lock whose holder can also be released by an `atfork` handler.
struct ForkLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialized by `locked` (acquire on lock, release on
// unlock); T is Send.
unsafe impl<T: Send> Sync for ForkLock<T> {}

impl<T> ForkLock<T> {
    const fn new(v: T) -> Self {
        Self {
            locked: AtomicBool::new(false),
            data: UnsafeCell::new(v),
        }
    }

    fn acquire(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn release(&self) {
        self.locked.store(false, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire();
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: the lock is held until `_unlock` drops, after `f` returns.
        f(unsafe { &mut *self.data.get() })
    }
}

static MAP: ForkLock<Option<HashMap<c_int, Arc<DdpSocket>>>> = ForkLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn before_fork() {
    MAP.acquire();
}

extern "C" fn after_fork_parent() {
    MAP.release();
}

extern "C" fn after_fork_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    MAP.release();
}

/// At `exit`, before the engine threads vanish with the process: see
/// [`super::socket::drain_at_exit`]. No panic may unwind into libc.
extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(super::socket::drain_at_exit);
}

/// Installs the `fork` handlers and the `exit` handler (once, at the first DDP
/// socket; the shim installs nothing at load).
pub fn install_process_handlers() {
    ATFORK.call_once(|| {
        // SAFETY: a valid `extern "C" fn()` that lives forever and never unwinds.
        let _ = unsafe { libc::atexit(at_exit) };
        // SAFETY: three valid `extern "C" fn()` handlers that live forever.
        let _ = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            )
        };
    });
}

/// The current fork generation (advanced in each child).
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// The socket behind `fd`.
pub fn get(fd: c_int) -> Option<Arc<DdpSocket>> {
    MAP.with(|m| m.as_ref().and_then(|m| m.get(&fd).cloned()))
}

/// Puts `sock` behind `fd`; returns the socket that was there.
pub fn insert(fd: c_int, sock: Arc<DdpSocket>) -> Option<Arc<DdpSocket>> {
    MAP.with(|m| m.get_or_insert_with(HashMap::new).insert(fd, sock))
}

/// Takes `fd` out.
pub fn remove(fd: c_int) -> Option<Arc<DdpSocket>> {
    MAP.with(|m| m.as_mut().and_then(|m| m.remove(&fd)))
}

/// The connections of every DDP socket made in this process (not inherited
/// across `fork`) and still open.
pub fn open_connections() -> Vec<Arc<Connection>> {
    MAP.with(|m| {
        let mut out: Vec<Arc<Connection>> = Vec::new();
        for s in m.iter().flat_map(|m| m.values()) {
            if let Some(c) = s.conn() {
                if !s.stale() && !out.iter().any(|o| Arc::ptr_eq(o, c)) {
                    out.push(Arc::clone(c));
                }
            }
        }
        out
    })
}

/// The fds at or above `low` and at most `high`.
pub fn fds_in(low: c_int, high: c_int) -> Vec<c_int> {
    MAP.with(|m| {
        m.as_ref().map_or_else(Vec::new, |m| {
            m.keys()
                .copied()
                .filter(|&fd| fd >= low && fd <= high)
                .collect()
        })
    })
}

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

    /// Like [`with`](Self::with), but gives up (`None`) if the lock cannot be had
    /// within a few thousand tries: for `exit`, which may run in a signal handler
    /// that interrupted the lock's holder.
    fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        for spins in 0..10_000u32 {
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                struct Unlock<'a>(&'a AtomicBool);
                impl Drop for Unlock<'_> {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _unlock = Unlock(&self.locked);
                // SAFETY: the lock is held until `_unlock` drops, after `f` returns.
                return Some(f(unsafe { &mut *self.data.get() }));
            }
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        None
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
/// Connections closed without waiting for their drain (non-blocking sockets, or a
/// blocking close that timed out), with the fork generation they belong to, for
/// the exit handler. Behind a [`ForkLock`] like `MAP`, so a child never inherits
/// it locked.
static CLOSING: ForkLock<Vec<(u64, Arc<Connection>)>> = ForkLock::new(Vec::new());
static GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn before_fork() {
    MAP.acquire();
    CLOSING.acquire();
}

extern "C" fn after_fork_parent() {
    CLOSING.release();
    MAP.release();
}

extern "C" fn after_fork_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
    CLOSING.release();
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

/// At `exit`: the connections of every DDP socket made in this process (not
/// inherited across `fork`) and still open. Empty if the table's lock cannot be had
/// at once (`exit` called from a signal handler that interrupted its holder).
pub fn open_connections_at_exit() -> Vec<Arc<Connection>> {
    MAP.try_with(|m| {
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
    .unwrap_or_default()
}

/// Keeps in `list` this process's connections still draining. Entries inherited
/// from the parent across `fork` are forgotten, never dropped: dropping the last
/// reference would close the parent's connection from the child.
fn prune(list: &mut Vec<(u64, Arc<Connection>)>) {
    let generation = generation();
    for (g, c) in std::mem::take(list) {
        if g != generation {
            std::mem::forget(c);
        } else if !c.is_drained() {
            list.push((g, c));
        }
    }
}

/// Notes a connection closed without waiting for its drain, for the exit handler.
pub fn closing(c: &Arc<Connection>) {
    CLOSING.with(|list| {
        prune(list);
        list.push((generation(), Arc::clone(c)));
    });
}

/// At `exit`: this process's connections closed without waiting and still
/// draining (empty if the lock cannot be had at once, as above).
pub fn closing_at_exit() -> Vec<Arc<Connection>> {
    CLOSING
        .try_with(|list| {
            prune(list);
            list.iter().map(|(_, c)| Arc::clone(c)).collect()
        })
        .unwrap_or_default()
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

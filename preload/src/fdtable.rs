//! The fd table: which file descriptors the shim handles itself.
//!
//! One `AtomicU8` per fd below [`FD_TABLE_LEN`]; fds at or above it (and negative
//! ones) are plain, and cannot be switched to DDP mode (`EMFILE`). A plain fd costs
//! one atomic load before the call goes straight to libc. A socket is marked when
//! a `SOL_ETA` option is set on it (the [`crate::ddp`] registry holds its state).
//! Two more bits remember facts about plain sockets that a later switch needs: the
//! fd came from `accept` (it will be the MPA Responder), and it was given to
//! `epoll_ctl` (its registrations must move).
//!
//! `close`, `close_range` and `closefrom` clear entries and `dup`/`dup2`/`dup3`/
//! `fcntl(F_DUPFD*)` copy them. An fd closed behind the shim's back (a raw
//! `syscall(SYS_close)`) keeps its entry until its number is reused by `socket` or
//! `accept`, which reset it.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use libc::c_int;

/// Number of fds the table covers (fds 0 ..= 65 535).
pub const FD_TABLE_LEN: usize = 1 << 16;

/// What the shim does with an fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FdKind {
    /// Not the shim's business: every call goes straight to libc.
    Plain = 0,
    /// A socket the shim handles: in DDP mode, or with `SOL_ETA` options set.
    Ddp = DDP,
}

/// Entry bit: the shim handles the fd ([`FdKind::Ddp`]).
const DDP: u8 = 1;
/// Entry bit: the fd was given to `epoll_ctl` (a switch to DDP mode must move its
/// epoll registrations).
const EPOLLED: u8 = 2;
/// Entry bit: the fd came from `accept` (switched when connected, it is the MPA
/// Responder).
const ACCEPTED: u8 = 4;

static TABLE: [AtomicU8; FD_TABLE_LEN] = [const { AtomicU8::new(0) }; FD_TABLE_LEN];
/// How many entries are not plain.
static MARKED: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn entry(fd: c_int) -> Option<&'static AtomicU8> {
    // A negative fd becomes a huge index and falls outside the table.
    TABLE.get(fd as u32 as usize)
}

/// Whether `fd` is plain: one bounds check and one atomic load, no other work.
#[inline(always)]
pub fn is_plain(fd: c_int) -> bool {
    match entry(fd) {
        Some(e) => e.load(Ordering::Acquire) & DDP == 0,
        None => true,
    }
}

/// Whether no fd at all is marked (for calls over many fds): one atomic load.
#[inline(always)]
pub fn none_marked() -> bool {
    MARKED.load(Ordering::Acquire) == 0
}

/// The kind of `fd`.
pub fn kind(fd: c_int) -> FdKind {
    if is_plain(fd) {
        FdKind::Plain
    } else {
        FdKind::Ddp
    }
}

/// Sets `fd`'s kind. Returns `false` (and changes nothing) for an fd outside the
/// table, which can therefore only be plain.
pub fn set(fd: c_int, kind: FdKind) -> bool {
    let Some(e) = entry(fd) else {
        return kind == FdKind::Plain;
    };
    let old = match kind {
        FdKind::Ddp => e.fetch_or(DDP, Ordering::AcqRel),
        FdKind::Plain => e.fetch_and(!DDP, Ordering::AcqRel),
    };
    match (old & DDP != 0, kind == FdKind::Ddp) {
        (false, true) => {
            MARKED.fetch_add(1, Ordering::AcqRel);
        }
        (true, false) => {
            MARKED.fetch_sub(1, Ordering::AcqRel);
        }
        _ => {}
    }
    true
}

/// Forgets `fd` (it is being closed).
pub fn clear(fd: c_int) {
    set(fd, FdKind::Plain);
    if let Some(e) = entry(fd) {
        e.store(0, Ordering::Release);
    }
}

/// `fd` is a new socket (`socket()`): no bit of an earlier fd of that number stays.
#[inline(always)]
pub fn fresh(fd: c_int) {
    if let Some(e) = entry(fd)
        && e.load(Ordering::Relaxed) != 0
    {
        clear(fd);
    }
}

/// `fd` came from `accept`.
#[inline(always)]
pub fn note_accepted(fd: c_int) {
    fresh(fd);
    if let Some(e) = entry(fd) {
        e.fetch_or(ACCEPTED, Ordering::Relaxed);
    }
}

/// Whether `fd` came from `accept` (see [`note_accepted`]).
pub fn accepted(fd: c_int) -> bool {
    entry(fd).is_some_and(|e| e.load(Ordering::Relaxed) & ACCEPTED != 0)
}

/// `fd` was given to `epoll_ctl`.
#[inline(always)]
pub fn note_epolled(fd: c_int) {
    if let Some(e) = entry(fd)
        && e.load(Ordering::Relaxed) & EPOLLED == 0
    {
        e.fetch_or(EPOLLED, Ordering::Relaxed);
    }
}

/// Whether `fd` may be in an epoll set (see [`note_epolled`]).
pub fn epolled(fd: c_int) -> bool {
    entry(fd).is_some_and(|e| e.load(Ordering::Relaxed) & EPOLLED != 0)
}

/// `new` is now a duplicate of `old`: it gets `old`'s kind.
pub fn copy(old: c_int, new: c_int) {
    if old == new {
        return;
    }
    let bits = entry(old).map_or(0, |e| e.load(Ordering::Acquire));
    set(new, kind(old));
    if let Some(e) = entry(new) {
        e.store(bits, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use libc::c_int;

    use super::{FD_TABLE_LEN, FdKind, clear, copy, is_plain, kind, none_marked, set};

    // The table is global: each test uses its own fd numbers, far from real ones.

    #[test]
    fn plain_by_default_and_out_of_range() {
        assert!(is_plain(40_000));
        assert!(is_plain(-1));
        assert!(is_plain(c_int::MAX));
        assert!(is_plain(FD_TABLE_LEN as c_int));
        assert_eq!(kind(-5), FdKind::Plain);
        assert!(!set(FD_TABLE_LEN as c_int, FdKind::Ddp));
        assert!(set(FD_TABLE_LEN as c_int, FdKind::Plain));
        assert!(!set(-1, FdKind::Ddp));
    }

    #[test]
    fn mark_copy_clear() {
        assert!(set(40_001, FdKind::Ddp));
        assert!(!is_plain(40_001));
        assert!(!none_marked());
        copy(40_001, 40_002);
        assert_eq!(kind(40_002), FdKind::Ddp);
        copy(40_003, 40_002); // a plain fd dup2'ed over a DDP one
        assert!(is_plain(40_002));
        copy(40_001, 40_001);
        assert_eq!(kind(40_001), FdKind::Ddp);
        clear(40_001);
        assert!(is_plain(40_001));
    }
}

//! The fd table: which file descriptors the shim handles itself.
//!
//! One `AtomicU8` per fd below [`FD_TABLE_LEN`]; fds at or above it (and negative
//! ones) are plain. A plain fd costs one atomic load before the call goes straight
//! to libc. Nothing marks an fd yet: DDP mode (the next step) will mark a socket
//! when `setsockopt(fd, SOL_ETA, ETA_DDPMODE, ..)` switches it, and must refuse fds
//! at or above [`FD_TABLE_LEN`]. Calls over many fds (`poll`, `select`,
//! `epoll_wait`) look at one global count instead: while no fd is marked they pass
//! straight through.
//!
//! `close` clears an fd's entry and `dup`/`dup2`/`dup3`/`fcntl(F_DUPFD*)` copy it,
//! so a plain fd stays plain. Entries of fds closed behind the shim's back
//! (`close_range`, `closefrom`, raw syscalls) are not cleared; DDP mode has to
//! interpose those too before it marks anything.

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
    /// A DDP-mode socket (reserved: DDP mode is the next step; nothing sets it yet
    /// except the unit tests of the table itself).
    Ddp = 1,
}

impl FdKind {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => FdKind::Plain,
            _ => FdKind::Ddp,
        }
    }
}

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
        Some(e) => e.load(Ordering::Acquire) == FdKind::Plain as u8,
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
    entry(fd).map_or(FdKind::Plain, |e| {
        FdKind::from_u8(e.load(Ordering::Acquire))
    })
}

/// Sets `fd`'s kind. Returns `false` (and changes nothing) for an fd outside the
/// table, which can therefore only be plain.
pub fn set(fd: c_int, kind: FdKind) -> bool {
    let Some(e) = entry(fd) else {
        return kind == FdKind::Plain;
    };
    let old = e.swap(kind as u8, Ordering::AcqRel);
    match (old != FdKind::Plain as u8, kind != FdKind::Plain) {
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
}

/// `new` is now a duplicate of `old`: it gets `old`'s kind.
pub fn copy(old: c_int, new: c_int) {
    if old != new && !set(new, kind(old)) {
        // `new` is outside the table; it stays plain (DDP mode will have to refuse
        // such a dup of a DDP socket).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

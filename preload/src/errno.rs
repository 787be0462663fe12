//! `errno` of the calling thread, for the paths that must set or keep it.

use libc::c_int;

/// The calling thread's `errno`.
pub fn get() -> c_int {
    // SAFETY: __errno_location returns the calling thread's errno slot, valid for
    // the thread's lifetime.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno`.
pub fn set(value: c_int) {
    // SAFETY: as in `get`.
    unsafe { *libc::__errno_location() = value }
}

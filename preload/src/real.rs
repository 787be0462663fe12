//! libc's own functions, found with `dlsym(RTLD_NEXT, name)`.
//!
//! Every symbol is resolved once by the load constructor ([`crate::init`]). A call
//! that arrives before it ran (from another library's constructor, say) resolves
//! its own symbol on the spot: the fast path is one relaxed load of the pointer and
//! a null test. Relaxed is enough: the pointer refers to code of a library the
//! dynamic linker loaded (and synchronized) before, and two racing resolutions
//! store the same value.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, Ordering};

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
pub fn missing() {
    crate::errno::set(libc::ENOSYS);
}

//! The only module that touches caller memory through raw pointers.
//!
//! Everything that reads or writes memory supplied as raw `(pointer, length)` pairs
//! (registered regions, posted receive buffers, send sources) goes through [`RawMem`],
//! whose methods check every offset and length against the span they were created
//! with. The rest of the crate decides *whether* an access is allowed (STag, scope,
//! rights, bounds) and then calls into this module; no other module uses `unsafe`.
//!
//! The unsafe contract is concentrated in the constructors: [`RawMem::new`] (crate
//! internal) and [`LocalBuffer::from_raw`]/[`LocalBuffer::from_raw_mut`] (public);
//! `MemoryTable::register_buffer` (in `stag`) takes such a buffer and extends its
//! contract until the region is deregistered. This module depends on no other module of
//! the crate, so `stag` builds on it without a cycle.

use core::ptr::NonNull;

/// A span of caller memory: a base pointer and a length. All accesses are checked
/// against the length. `Copy` on purpose: it is a description, not an owner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawMem {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: RawMem is a plain description of memory whose validity is guaranteed by the
// contract of its (unsafe) constructor for as long as the owning structure keeps it;
// it carries no thread affinity, so moving it between threads is as sound as moving
// the (ptr, len) pair itself.
unsafe impl Send for RawMem {}
// SAFETY: shared references only allow the bounds-checked accesses below; concurrent
// writes into caller memory are excluded by the caller's contract (the engine thread
// is the only writer, and placement into registered regions holds the table lock).
unsafe impl Sync for RawMem {}

impl RawMem {
    /// Describes `len` octets at `ptr`.
    ///
    /// # Safety
    /// For as long as this value (or a copy) is used, `ptr..ptr+len` must be valid for
    /// reads, and for writes if any write method is called; no Rust reference to that
    /// memory may be alive while it is written through this value. `len` must not
    /// exceed `isize::MAX`. A null `ptr` is accepted only with `len == 0`.
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize) -> Self {
        let ptr = match NonNull::new(ptr) {
            Some(p) => p,
            None => {
                debug_assert_eq!(len, 0, "null pointer with a non-zero length");
                return RawMem {
                    ptr: NonNull::dangling(),
                    len: 0,
                };
            }
        };
        RawMem { ptr, len }
    }

    /// Length in octets.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The address of the first octet (RFC 7306 atomics check its alignment).
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    fn in_bounds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// The sub-span `offset..offset+len`, if inside.
    pub(crate) fn sub(&self, offset: usize, len: usize) -> Option<RawMem> {
        if !self.in_bounds(offset, len) {
            return None;
        }
        // SAFETY: offset + len <= self.len, so the result stays within (or one past
        // the end of) the span the constructor's contract covers.
        let p = unsafe { self.ptr.as_ptr().add(offset) };
        Some(RawMem {
            // SAFETY: adding an in-bounds offset to a non-null pointer of a live
            // allocation cannot produce null.
            ptr: unsafe { NonNull::new_unchecked(p) },
            len,
        })
    }

    /// Copies `data` to `offset`. Returns `false` (and writes nothing) if out of bounds.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> bool {
        if !self.in_bounds(offset, data.len()) {
            return false;
        }
        if data.is_empty() {
            return true;
        }
        // SAFETY: the destination range offset..offset+data.len() was checked to lie
        // within the span; the span is valid for writes by the constructor's
        // contract; `data` is a Rust slice and cannot overlap caller memory that we
        // hold no reference to (the contract forbids live references to it).
        unsafe {
            core::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.ptr.as_ptr().add(offset),
                data.len(),
            );
        }
        true
    }

    /// Copies out of the span into `dst`. Returns `false` if out of bounds.
    pub(crate) fn read(&self, offset: usize, dst: &mut [u8]) -> bool {
        if !self.in_bounds(offset, dst.len()) {
            return false;
        }
        if dst.is_empty() {
            return true;
        }
        // SAFETY: the source range was checked to lie within the span, which is valid
        // for reads; `dst` is an exclusive Rust slice and therefore not part of it.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        true
    }

    /// Borrows `offset..offset+len` as a slice, if inside. The borrow is tied to
    /// `&self`; the owner of this value keeps the memory valid while it holds it.
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Option<&[u8]> {
        if !self.in_bounds(offset, len) {
            return None;
        }
        if len == 0 {
            return Some(&[]);
        }
        // SAFETY: the range is within the span, valid for reads by the constructor's
        // contract for as long as the owner holds this RawMem (the returned borrow is
        // tied to it); the core never writes to a span it hands out for reading
        // (send sources and Read Response sources are only read).
        Some(unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) })
    }

    /// Reads the 8 octets at `offset` as a native-endian u64, applies `f` and writes
    /// the result back; returns the original value, or `None` if out of bounds.
    pub(crate) fn update_u64(&self, offset: usize, f: impl FnOnce(u64) -> u64) -> Option<u64> {
        let mut b = [0u8; 8];
        if !self.read(offset, &mut b) {
            return None;
        }
        let old = u64::from_ne_bytes(b);
        self.write(offset, &f(old).to_ne_bytes());
        Some(old)
    }
}

/// Heap memory owned by the core (a leaked `Box<[u8]>`), described by a [`RawMem`] so
/// that it can be accessed like caller memory without aliasing a live `Box`.
#[derive(Debug)]
pub(crate) struct OwnedMem {
    mem: RawMem,
}

impl OwnedMem {
    pub(crate) fn new(b: Box<[u8]>) -> Self {
        let len = b.len();
        let ptr = Box::into_raw(b) as *mut u8;
        // SAFETY: the pointer comes from a leaked Box of `len` octets, valid for reads
        // and writes until `into_box`/drop turns it back into a Box; no reference to
        // it exists meanwhile.
        let mem = unsafe { RawMem::new(ptr, len) };
        OwnedMem { mem }
    }

    pub(crate) fn mem(&self) -> RawMem {
        self.mem
    }

    pub(crate) fn into_box(self) -> Box<[u8]> {
        let me = core::mem::ManuallyDrop::new(self);
        me.rebuild()
    }

    fn rebuild(&self) -> Box<[u8]> {
        let p = core::ptr::slice_from_raw_parts_mut(self.mem.ptr.as_ptr(), self.mem.len);
        // SAFETY: (ptr, len) came from Box::into_raw of a Box<[u8]> in `new` (for
        // len 0 the dangling pointer is what Box uses as well); it is rebuilt exactly
        // once, either by `into_box` (which suppresses Drop) or by Drop.
        unsafe { Box::from_raw(p) }
    }
}

impl Drop for OwnedMem {
    fn drop(&mut self) {
        drop(self.rebuild());
    }
}

/// Validated destination memory for the next payload octets of the segment being
/// received ([`Connection::direct_target`](crate::Connection::direct_target)), so a
/// driver can receive them there with no intermediate buffer (`read(2)` into it).
#[derive(Debug)]
pub struct DirectTarget {
    mem: RawMem,
}

impl DirectTarget {
    pub(crate) fn new(mem: RawMem) -> Self {
        Self { mem }
    }

    /// Octets the target can take.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Whether the target is empty.
    pub fn is_empty(&self) -> bool {
        self.mem.len() == 0
    }

    /// The first octet, for a system call that writes at most [`Self::len`] octets
    /// there.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.mem.ptr.as_ptr()
    }

    /// The first `n` octets, after the driver filled them (for the CRC).
    ///
    /// # Safety
    /// The driver must have written those `n` octets (`n <= len()`), and nothing may
    /// write them while the slice lives.
    pub unsafe fn filled(&self, n: usize) -> &[u8] {
        let n = n.min(self.mem.len());
        // SAFETY: the span is valid for reads (RawMem's contract) and initialized by
        // the caller's contract; no writer exists while the slice lives.
        unsafe { core::slice::from_raw_parts(self.mem.ptr.as_ptr(), n) }
    }
}

/// A local buffer for a work request: the source of a Send or RDMA Write, or the
/// destination of a posted receive. Either caller memory under an unsafe contract, or
/// memory the buffer owns (returned in the work request's completion).
#[derive(Debug)]
pub struct LocalBuffer {
    mem: RawMem,
    writable: bool,
    owned: Option<OwnedMem>,
}

impl LocalBuffer {
    /// A read-only buffer over caller memory, for Sends and RDMA Writes.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads, and must not be written by anyone,
    /// until the work request it is posted with has produced its completion (or the
    /// [`Connection`](crate::Connection) is dropped). `ptr` may be null only if `len`
    /// is 0.
    pub unsafe fn from_raw(ptr: *const u8, len: usize) -> Self {
        LocalBuffer {
            // SAFETY: forwarded from this function's contract; the buffer is marked
            // read-only, so the core never writes through it.
            mem: unsafe { RawMem::new(ptr as *mut u8, len) },
            writable: false,
            owned: None,
        }
    }

    /// A writable buffer over caller memory, for posted receives.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads and writes, and must not be accessed
    /// by anyone else, until the work request it is posted with has produced its
    /// completion (or the [`Connection`](crate::Connection) is dropped). `ptr` may be
    /// null only if `len` is 0.
    pub unsafe fn from_raw_mut(ptr: *mut u8, len: usize) -> Self {
        LocalBuffer {
            // SAFETY: forwarded from this function's contract.
            mem: unsafe { RawMem::new(ptr, len) },
            writable: true,
            owned: None,
        }
    }

    /// A buffer owning `b` (writable); it comes back in the completion.
    pub fn from_boxed(b: Box<[u8]>) -> Self {
        let owned = OwnedMem::new(b);
        LocalBuffer {
            mem: owned.mem(),
            writable: true,
            owned: Some(owned),
        }
    }

    /// A read-only buffer over static memory.
    pub fn from_static(s: &'static [u8]) -> Self {
        LocalBuffer {
            // SAFETY: static data is valid for reads forever; the buffer is read-only
            // so the core never writes through it.
            mem: unsafe { RawMem::new(s.as_ptr() as *mut u8, s.len()) },
            writable: false,
            owned: None,
        }
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.mem.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.mem.len() == 0
    }

    /// Whether the core may write into the buffer.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Gives back the owned memory, if the buffer was created with
    /// [`from_boxed`](Self::from_boxed).
    pub fn into_boxed(self) -> Option<Box<[u8]>> {
        self.owned.map(OwnedMem::into_box)
    }

    pub(crate) fn mem(&self) -> RawMem {
        self.mem
    }

    pub(crate) fn into_parts(self) -> (RawMem, Option<OwnedMem>) {
        (self.mem, self.owned)
    }

    pub(crate) fn slice(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.mem.slice(offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let b = LocalBuffer::from_boxed(vec![0u8; 16].into_boxed_slice());
        let m = b.mem();
        assert!(m.write(0, &[1; 16]));
        assert!(!m.write(1, &[1; 16]));
        assert!(!m.write(usize::MAX, &[1]));
        assert!(m.write(16, &[]));
        assert!(!m.write(17, &[]));
        assert!(m.sub(8, 9).is_none());
        let s = m.sub(8, 8).unwrap();
        assert!(s.write(0, &[2; 8]));
        assert!(!s.write(1, &[2; 8]));
        let mut out = [0u8; 4];
        assert!(m.read(6, &mut out));
        assert_eq!(out, [1, 1, 2, 2]);
        assert_eq!(m.update_u64(8, |v| v + 1), Some(0x0202020202020202));
        assert_eq!(m.update_u64(9, |v| v), None);
        let back = b.into_boxed().unwrap();
        assert_eq!(back[8], 3);
    }

    #[test]
    fn empty_and_null() {
        // SAFETY: a null pointer with length 0 is explicitly allowed.
        let b = unsafe { LocalBuffer::from_raw(core::ptr::null(), 0) };
        assert!(b.is_empty() && !b.is_writable());
        assert_eq!(b.slice(0, 0), Some(&[][..]));
        assert!(b.slice(0, 1).is_none());
        let e = LocalBuffer::from_boxed(Vec::new().into_boxed_slice());
        assert_eq!(e.into_boxed().unwrap().len(), 0);
    }
}

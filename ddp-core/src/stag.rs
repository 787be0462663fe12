//! The memory registration table: STags, access rights, scope, invalidation.
//!
//! An STag is `index << 8 | key`: the index selects a slot, the key byte changes every
//! time a slot is reused, so a stale STag cannot reach memory registered later in the
//! same slot. Index 0 is never used, so no valid STag is below 0x100 (STag 1, used by
//! RTR messages, never names memory).
//!
//! The table is shared by the connections of a process ([`MemoryTable`] is a cheap
//! `Clone` handle over an `Arc<RwLock<..>>`). Every entry carries a [`Scope`]: one
//! connection (the default for the engine) or the whole process.

use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{AccessError, RegError, StagError};
use crate::placement::{LocalBuffer, OwnedMem, RawMem};

// Caller memory comes in as a `LocalBuffer` whose `unsafe` constructors live in
// `placement`, so that all `unsafe` of the crate stays in that module.

/// A steering tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stag(pub u32);

impl Stag {
    /// Builds an STag from a 24-bit index and a key byte.
    pub const fn new(index: u32, key: u8) -> Self {
        Stag((index << 8) | key as u32)
    }
    /// The 24-bit table index.
    pub const fn index(self) -> u32 {
        self.0 >> 8
    }
    /// The key byte.
    pub const fn key(self) -> u8 {
        self.0 as u8
    }
}

/// Access rights of a registration (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    /// No rights.
    pub const NONE: Access = Access(0);
    /// The local side may place into the region (Read Response sink).
    pub const LOCAL_WRITE: Access = Access(1);
    /// The peer may RDMA Write into the region.
    pub const REMOTE_WRITE: Access = Access(2);
    /// The peer may RDMA Read from the region.
    pub const REMOTE_READ: Access = Access(4);
    /// The peer may run RFC 7306 atomics on the region.
    pub const REMOTE_ATOMIC: Access = Access(8);

    /// Whether every right in `other` is present.
    pub const fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
    /// Raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl core::ops::BitOr for Access {
    type Output = Access;
    fn bitor(self, rhs: Access) -> Access {
        Access(self.0 | rhs.0)
    }
}

/// Identifies a connection for STag scoping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Who may use a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Only the named connection.
    Connection(ConnId),
    /// Every connection of the process.
    Global,
}

impl Scope {
    fn allows(self, conn: ConnId) -> bool {
        match self {
            Scope::Global => true,
            Scope::Connection(c) => c == conn,
        }
    }
}

/// A public description of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionInfo {
    /// Tagged offset of the first octet.
    pub base_to: u64,
    /// Length in octets.
    pub len: u64,
    /// Access rights.
    pub access: Access,
    /// Scope.
    pub scope: Scope,
    /// False once invalidated (locally or by a Send with Invalidate).
    pub valid: bool,
}

#[derive(Debug)]
struct Entry {
    mem: RawMem,
    owner: Option<OwnedMem>,
    base_to: u64,
    access: Access,
    scope: Scope,
    valid: bool,
}

#[derive(Debug)]
struct Slot {
    key: u8,
    entry: Option<Entry>,
}

#[derive(Debug)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    max_entries: u32,
    next_key: u8,
}

/// The maximum 24-bit STag index.
pub const MAX_INDEX: u32 = (1 << 24) - 1;

/// A shared memory registration table. Cloning gives another handle to the same table.
#[derive(Debug, Clone)]
pub struct MemoryTable {
    inner: Arc<RwLock<Table>>,
}

impl Default for MemoryTable {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTable {
    /// A table with room for 65535 registrations.
    pub fn new() -> Self {
        Self::with_capacity(65535)
    }

    /// A table with room for `max_entries` registrations (at most 2^24 − 1).
    pub fn with_capacity(max_entries: u32) -> Self {
        MemoryTable {
            inner: Arc::new(RwLock::new(Table {
                slots: vec![Slot {
                    key: 0,
                    entry: None,
                }],
                free: Vec::new(),
                max_entries: max_entries.min(MAX_INDEX),
                next_key: 0,
            })),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `range` of an owned buffer; the rest of the buffer is not reachable
    /// through the STag. The buffer comes back from [`deregister`](Self::deregister).
    pub fn register_owned(
        &self,
        buf: Box<[u8]>,
        range: Range<usize>,
        base_to: u64,
        access: Access,
        scope: Scope,
    ) -> Result<Stag, RegError> {
        if range.start > range.end || range.end > buf.len() {
            return Err(RegError::BadRange);
        }
        let owner = OwnedMem::new(buf);
        let mem = owner
            .mem()
            .sub(range.start, range.end - range.start)
            .ok_or(RegError::BadRange)?;
        self.insert(mem, Some(owner), base_to, access, scope)
    }

    /// Registers a whole [`LocalBuffer`], typically caller memory made with
    /// [`LocalBuffer::from_raw_mut`] (the C API's `eta_reg_mr`): nothing is copied.
    /// The buffer's safety contract then lasts until
    /// [`deregister`](Self::deregister) of the returned STag has returned. A
    /// read-only buffer cannot be registered with a write right (`BadRange`).
    pub fn register_buffer(
        &self,
        buf: LocalBuffer,
        base_to: u64,
        access: Access,
        scope: Scope,
    ) -> Result<Stag, RegError> {
        let writes = access.contains(Access::LOCAL_WRITE) || access.contains(Access::REMOTE_WRITE);
        if writes && !buf.is_writable() {
            return Err(RegError::BadRange);
        }
        let (mem, owner) = buf.into_parts();
        self.insert(mem, owner, base_to, access, scope)
    }

    pub(crate) fn insert(
        &self,
        mem: RawMem,
        owner: Option<OwnedMem>,
        base_to: u64,
        access: Access,
        scope: Scope,
    ) -> Result<Stag, RegError> {
        if base_to.checked_add(mem.len() as u64).is_none() {
            return Err(RegError::ToWrap);
        }
        let mut t = self.write();
        let entry = Entry {
            mem,
            owner,
            base_to,
            access,
            scope,
            valid: true,
        };
        let index = match t.free.pop() {
            Some(i) => i,
            None => {
                let i = t.slots.len() as u32;
                if i > t.max_entries {
                    return Err(RegError::TableFull);
                }
                let key = t.next_key;
                t.next_key = t.next_key.wrapping_add(0x35);
                t.slots.push(Slot { key, entry: None });
                i
            }
        };
        let slot = &mut t.slots[index as usize];
        slot.entry = Some(entry);
        Ok(Stag::new(index, slot.key))
    }

    /// Removes a registration; returns the owned buffer if it was registered with
    /// [`register_owned`](Self::register_owned). The STag (and every older STag of the
    /// slot) stops working immediately. Works on invalidated STags too.
    pub fn deregister(&self, stag: Stag) -> Result<Option<Box<[u8]>>, StagError> {
        let mut t = self.write();
        let i = stag.index() as usize;
        let slot = match t.slots.get_mut(i) {
            Some(s) if i != 0 && s.key == stag.key() && s.entry.is_some() => s,
            _ => return Err(StagError::Invalid),
        };
        let entry = slot.entry.take();
        slot.key = slot.key.wrapping_add(1);
        t.free.push(i as u32);
        Ok(entry.and_then(|e| e.owner).map(OwnedMem::into_box))
    }

    /// Invalidates an STag locally: further accesses fail until it is deregistered.
    pub fn invalidate(&self, stag: Stag) -> Result<(), StagError> {
        let mut t = self.write();
        match lookup_mut(&mut t, stag) {
            Some(e) if e.valid => {
                e.valid = false;
                Ok(())
            }
            _ => Err(StagError::Invalid),
        }
    }

    /// Describes a registration (also when invalidated).
    pub fn info(&self, stag: Stag) -> Option<RegionInfo> {
        let t = self.read();
        lookup(&t, stag).map(|e| RegionInfo {
            base_to: e.base_to,
            len: e.mem.len() as u64,
            access: e.access,
            scope: e.scope,
            valid: e.valid,
        })
    }

    /// Copies region octets starting at tagged offset `to` into `dst` (a local read,
    /// no rights needed; useful for tests and for owned regions).
    pub fn copy_out(&self, stag: Stag, to: u64, dst: &mut [u8]) -> Result<(), StagError> {
        let t = self.read();
        let e = lookup(&t, stag).ok_or(StagError::Invalid)?;
        let off = range_offset(e, to, dst.len() as u64).ok_or(StagError::Bounds)?;
        if e.mem.read(off, dst) {
            Ok(())
        } else {
            Err(StagError::Bounds)
        }
    }

    /// Checks that `conn` may access `to..to+len` of `stag` with `need` and returns
    /// the span. Checks, in order: STag, validity, scope, rights, TO wrap, bounds.
    pub(crate) fn check(
        &self,
        conn: ConnId,
        stag: Stag,
        to: u64,
        len: u64,
        need: Access,
    ) -> Result<RawMem, AccessError> {
        let t = self.read();
        check_entry(&t, conn, stag, to, len, need)
    }

    /// Validates and writes `data` at `to` while holding the table lock, so that a
    /// concurrent deregistration cannot slip in between check and write.
    pub(crate) fn place(
        &self,
        conn: ConnId,
        stag: Stag,
        to: u64,
        data: &[u8],
        need: Access,
    ) -> Result<(), AccessError> {
        let t = self.read();
        let mem = check_entry(&t, conn, stag, to, data.len() as u64, need)?;
        if mem.write(0, data) {
            Ok(())
        } else {
            Err(AccessError::Bounds)
        }
    }

    /// The span `to..to+len` of a region after the same checks as placement, for a
    /// driver that receives payload straight into it.
    pub(crate) fn direct_span(
        &self,
        conn: ConnId,
        stag: Stag,
        to: u64,
        len: usize,
        need: Access,
    ) -> Result<crate::placement::RawMem, AccessError> {
        let t = self.read();
        check_entry(&t, conn, stag, to, len as u64, need)
    }

    /// Runs an 8-octet read-modify-write at `to` (RFC 7306 atomics) under the lock.
    pub(crate) fn update_u64(
        &self,
        conn: ConnId,
        stag: Stag,
        to: u64,
        f: impl FnOnce(u64) -> u64,
    ) -> Result<u64, AccessError> {
        let t = self.write();
        let mem = check_entry(&t, conn, stag, to, 8, Access::REMOTE_ATOMIC)?;
        mem.update_u64(0, f).ok_or(AccessError::Bounds)
    }

    /// Invalidation requested by the peer (Send with Invalidate).
    pub(crate) fn invalidate_remote(&self, conn: ConnId, stag: Stag) -> Result<(), AccessError> {
        let mut t = self.write();
        let e = lookup_mut(&mut t, stag).ok_or(AccessError::InvalidStag)?;
        if !e.valid {
            return Err(AccessError::InvalidStag);
        }
        if !e.scope.allows(conn) {
            return Err(AccessError::NotAssociated);
        }
        e.valid = false;
        Ok(())
    }
}

fn lookup(t: &Table, stag: Stag) -> Option<&Entry> {
    let i = stag.index() as usize;
    match t.slots.get(i) {
        Some(s) if i != 0 && s.key == stag.key() => s.entry.as_ref(),
        _ => None,
    }
}

fn lookup_mut(t: &mut Table, stag: Stag) -> Option<&mut Entry> {
    let i = stag.index() as usize;
    match t.slots.get_mut(i) {
        Some(s) if i != 0 && s.key == stag.key() => s.entry.as_mut(),
        _ => None,
    }
}

/// Offset of `to..to+len` inside the entry, or `None` if outside.
fn range_offset(e: &Entry, to: u64, len: u64) -> Option<usize> {
    let end = to.checked_add(len)?;
    let region_end = e.base_to + e.mem.len() as u64;
    if to < e.base_to || end > region_end {
        return None;
    }
    usize::try_from(to - e.base_to).ok()
}

fn check_entry(
    t: &Table,
    conn: ConnId,
    stag: Stag,
    to: u64,
    len: u64,
    need: Access,
) -> Result<RawMem, AccessError> {
    let e = lookup(t, stag).ok_or(AccessError::InvalidStag)?;
    if !e.valid {
        return Err(AccessError::InvalidStag);
    }
    if !e.scope.allows(conn) {
        return Err(AccessError::NotAssociated);
    }
    if !e.access.contains(need) {
        return Err(AccessError::Rights);
    }
    if to.checked_add(len).is_none() {
        return Err(AccessError::ToWrap);
    }
    let off = range_offset(e, to, len).ok_or(AccessError::Bounds)?;
    let len = usize::try_from(len).map_err(|_| AccessError::Bounds)?;
    e.mem.sub(off, len).ok_or(AccessError::Bounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: ConnId = ConnId(1);
    const C2: ConnId = ConnId(2);

    fn owned(table: &MemoryTable, access: Access, scope: Scope) -> Stag {
        table
            .register_owned(
                vec![0u8; 64].into_boxed_slice(),
                16..48,
                1000,
                access,
                scope,
            )
            .unwrap()
    }

    #[test]
    fn checks_in_order() {
        let t = MemoryTable::new();
        let s = owned(&t, Access::REMOTE_WRITE, Scope::Connection(C1));
        assert!(s.0 >= 0x100);
        assert!(t.check(C1, s, 1000, 32, Access::REMOTE_WRITE).is_ok());
        assert_eq!(
            t.check(C1, Stag(s.0 ^ 1), 1000, 1, Access::REMOTE_WRITE)
                .unwrap_err(),
            AccessError::InvalidStag
        );
        assert_eq!(
            t.check(C2, s, 1000, 1, Access::REMOTE_WRITE).unwrap_err(),
            AccessError::NotAssociated
        );
        assert_eq!(
            t.check(C1, s, 1000, 1, Access::REMOTE_READ).unwrap_err(),
            AccessError::Rights
        );
        assert_eq!(
            t.check(C1, s, u64::MAX, 2, Access::REMOTE_WRITE)
                .unwrap_err(),
            AccessError::ToWrap
        );
        assert_eq!(
            t.check(C1, s, 999, 1, Access::REMOTE_WRITE).unwrap_err(),
            AccessError::Bounds
        );
        assert_eq!(
            t.check(C1, s, 1001, 32, Access::REMOTE_WRITE).unwrap_err(),
            AccessError::Bounds
        );
        assert!(t.check(C1, s, 1032, 0, Access::REMOTE_WRITE).is_ok());
        assert!(t.check(C1, Stag(0), 0, 0, Access::NONE).is_err());
        assert!(t.check(C1, Stag(1), 0, 0, Access::NONE).is_err());
    }

    #[test]
    fn place_writes_only_inside() {
        let t = MemoryTable::new();
        let s = owned(&t, Access::REMOTE_WRITE, Scope::Global);
        t.place(C2, s, 1030, &[7; 2], Access::REMOTE_WRITE).unwrap();
        assert!(t.place(C2, s, 1031, &[7; 2], Access::REMOTE_WRITE).is_err());
        let b = t.deregister(s).unwrap().unwrap();
        let mut expect = [0u8; 64];
        expect[46] = 7;
        expect[47] = 7;
        assert_eq!(&b[..], &expect[..]);
    }

    #[test]
    fn stale_stag_cannot_reach_reused_slot() {
        let t = MemoryTable::new();
        let a = owned(&t, Access::REMOTE_WRITE, Scope::Global);
        t.deregister(a).unwrap();
        let b = owned(&t, Access::REMOTE_WRITE, Scope::Global);
        assert_eq!(a.index(), b.index());
        assert_ne!(a, b);
        assert_eq!(
            t.check(C1, a, 1000, 1, Access::REMOTE_WRITE).unwrap_err(),
            AccessError::InvalidStag
        );
        assert_eq!(t.deregister(a), Err(StagError::Invalid));
        assert!(t.check(C1, b, 1000, 1, Access::REMOTE_WRITE).is_ok());
    }

    #[test]
    fn invalidation() {
        let t = MemoryTable::new();
        let s = owned(&t, Access::REMOTE_READ, Scope::Connection(C1));
        assert_eq!(t.invalidate_remote(C2, s), Err(AccessError::NotAssociated));
        t.invalidate_remote(C1, s).unwrap();
        assert!(!t.info(s).unwrap().valid);
        assert_eq!(t.invalidate_remote(C1, s), Err(AccessError::InvalidStag));
        assert_eq!(t.invalidate(s), Err(StagError::Invalid));
        assert_eq!(
            t.check(C1, s, 1000, 1, Access::REMOTE_READ).unwrap_err(),
            AccessError::InvalidStag
        );
        let s2 = owned(&t, Access::REMOTE_READ, Scope::Global);
        t.invalidate(s2).unwrap();
        assert!(t.deregister(s2).unwrap().is_some());
    }

    #[test]
    fn registration_errors() {
        let t = MemoryTable::with_capacity(2);
        assert_eq!(
            t.register_owned(vec![0; 4].into(), 0..5, 0, Access::NONE, Scope::Global),
            Err(RegError::BadRange)
        );
        assert_eq!(
            t.register_owned(
                vec![0; 4].into(),
                0..4,
                u64::MAX - 2,
                Access::NONE,
                Scope::Global
            ),
            Err(RegError::ToWrap)
        );
        owned(&t, Access::NONE, Scope::Global);
        owned(&t, Access::NONE, Scope::Global);
        assert_eq!(
            t.register_owned(vec![0; 4].into(), 0..4, 0, Access::NONE, Scope::Global),
            Err(RegError::TableFull)
        );
        let mut out = [0u8; 2];
        assert_eq!(
            t.copy_out(Stag(0x5000), 0, &mut out),
            Err(StagError::Invalid)
        );
    }
}

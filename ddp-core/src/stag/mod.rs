//! The memory registration table: STags, access rights, scope, invalidation.
//!
//! An STag is `index << key_bits | key` (see [`MemoryTable::key_bits`]): the index
//! selects a slot, and every registration draws a fresh key from the table's
//! [`KeySource`], different from the slot's previous one, so a stale STag cannot
//! reach memory registered later in the same slot and, with a random source, no
//! STag can be told from another.
//! Index 0 is never used, so no valid STag is below `1 << key_bits` (STag 1, used by
//! RTR messages, never names memory).
//!
//! The table is shared by the connections of a process ([`MemoryTable`] is a cheap
//! `Clone` handle over an `Arc<RwLock<..>>`). Every entry carries a [`Scope`]: one
//! connection (the default for the engine) or the whole process.

use std::ops::Range;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{AccessError, RegError, StagError};
use crate::placement::{LocalBuffer, OwnedMem, RawMem};

mod keys;

use keys::Layout;
pub use keys::{KeySource, predictable_keys};

// Caller memory comes in as a `LocalBuffer` whose `unsafe` constructors live in
// `placement`, so that all `unsafe` of the crate stays in that module.

/// A steering tag: the 32 bits a peer names a region with. How they split into a
/// slot index and a key is the table's business ([`MemoryTable::key_bits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stag(pub u32);

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
    key: u32,
    entry: Option<Entry>,
}

struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    max_entries: u32,
    layout: Layout,
    keys: KeySource,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("slots", &self.slots.len())
            .field("free", &self.free.len())
            .field("max_entries", &self.max_entries)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Table {
    /// A key for a registration in a slot whose previous key was `old`: a drawn
    /// one, changed in its lowest bit if it is the old one (so a source that
    /// repeats itself cannot stall a registration).
    fn fresh_key(&mut self, old: Option<u32>) -> u32 {
        let k = self.layout.key((self.keys)());
        if Some(k) == old { k ^ 1 } else { k }
    }

    /// The slot an STag names, if its key matches.
    fn slot_of(&self, stag: Stag) -> Option<&Slot> {
        let (i, key) = self.layout.split(stag);
        match self.slots.get(i as usize) {
            Some(s) if i != 0 && s.key == key => Some(s),
            _ => None,
        }
    }

    /// The slot an STag names, if its key matches (mutable).
    fn slot_of_mut(&mut self, stag: Stag) -> Option<&mut Slot> {
        let (i, key) = self.layout.split(stag);
        match self.slots.get_mut(i as usize) {
            Some(s) if i != 0 && s.key == key => Some(s),
            _ => None,
        }
    }
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
    /// A table with room for 65535 registrations and 16-bit keys from
    /// [`predictable_keys`]: for tests and in-memory use. A table whose STags a
    /// network peer sees needs [`with_keys`](Self::with_keys) and a random source.
    pub fn new() -> Self {
        Self::with_capacity(65535)
    }

    /// A table with room for `max_entries` registrations (at most 2^24 − 1) and keys
    /// from [`predictable_keys`].
    pub fn with_capacity(max_entries: u32) -> Self {
        Self::with_keys(max_entries, predictable_keys(0x5EED))
    }

    /// A table with room for `max_entries` registrations (at most 2^24 − 1) whose
    /// STag keys come from `keys`. The index takes the bits `max_entries` needs and
    /// the key the rest: 16 bits for 65535 registrations, 8 at the maximum.
    pub fn with_keys(max_entries: u32, keys: KeySource) -> Self {
        let max_entries = max_entries.min(MAX_INDEX);
        MemoryTable {
            inner: Arc::new(RwLock::new(Table {
                slots: vec![Slot {
                    key: 0,
                    entry: None,
                }],
                free: Vec::new(),
                max_entries,
                layout: Layout::for_capacity(max_entries),
                keys,
            })),
        }
    }

    /// Bits of an STag that are its key (the rest is the slot index).
    pub fn key_bits(&self) -> u32 {
        self.read().layout.key_bits()
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
        let (index, old) = match t.free.pop() {
            Some(i) => (i, Some(t.slots[i as usize].key)),
            None => {
                let i = t.slots.len() as u32;
                if i > t.max_entries {
                    return Err(RegError::TableFull);
                }
                t.slots.push(Slot {
                    key: 0,
                    entry: None,
                });
                (i, None)
            }
        };
        let key = t.fresh_key(old);
        let layout = t.layout;
        let slot = &mut t.slots[index as usize];
        slot.key = key;
        slot.entry = Some(entry);
        Ok(layout.stag(index, key))
    }

    /// Removes a registration; returns the owned buffer if it was registered with
    /// [`register_owned`](Self::register_owned). The STag stops working immediately:
    /// the slot's next registration gets another key (a key can come back only by
    /// chance, one in 2^key_bits per reuse). Works on invalidated STags too.
    pub fn deregister(&self, stag: Stag) -> Result<Option<Box<[u8]>>, StagError> {
        let mut t = self.write();
        let (i, _) = t.layout.split(stag);
        let entry = match t.slot_of_mut(stag) {
            Some(s) if s.entry.is_some() => s.entry.take(),
            _ => return Err(StagError::Invalid),
        };
        // The slot keeps its key until reused; the next registration there gets
        // another, so this STag stops matching (a later reuse may draw the key
        // again, one chance in 2^key_bits each time).
        t.free.push(i);
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
    t.slot_of(stag).and_then(|s| s.entry.as_ref())
}

fn lookup_mut(t: &mut Table, stag: Stag) -> Option<&mut Entry> {
    t.slot_of_mut(stag).and_then(|s| s.entry.as_mut())
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
mod tests;

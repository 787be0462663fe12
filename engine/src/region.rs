//! Memory regions: memory registered for the peer's RDMA Writes and Reads on one
//! connection, and where in the peer's memory an RDMA operation goes.

use std::fmt;
use std::sync::Arc;

use eta_ddp_core::{Access, Stag};

use crate::engine;
use crate::error::Error;
use crate::handoff::{ConnShared, Wr};

/// Where in the peer's memory an RDMA operation goes: the STag and tagged offset the
/// peer advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRegion {
    /// The peer's STag.
    pub stag: Stag,
    /// Tagged offset of the first octet.
    pub to: u64,
}

/// Memory registered for RDMA on one connection. Dropping it deregisters it; the
/// memory is freed once no FPDU in flight refers to it.
pub struct MemoryRegion {
    stag: Stag,
    base_to: u64,
    len: usize,
    access: Access,
    conn: u64,
    shared: Arc<ConnShared>,
}

impl fmt::Debug for MemoryRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRegion")
            .field("stag", &self.stag)
            .field("len", &self.len)
            .field("access", &self.access)
            .finish()
    }
}

impl MemoryRegion {
    /// The region registered as `stag` over `len` octets on the connection of
    /// `shared` (tagged offsets from 0).
    pub(crate) fn new(stag: Stag, len: usize, access: Access, shared: Arc<ConnShared>) -> Self {
        Self {
            stag,
            base_to: 0,
            len,
            access,
            conn: shared.id,
            shared,
        }
    }

    /// The tagged offset a Read of connection `conn` places `len` octets at, at
    /// `offset` into this region; None if the region is not that connection's,
    /// lacks local write access, or the range is outside it.
    pub(crate) fn read_target(&self, conn: u64, offset: u64, len: u32) -> Option<u64> {
        let fits = offset
            .checked_add(u64::from(len))
            .is_some_and(|e| e <= self.len as u64);
        (self.conn == conn && self.access.contains(Access::LOCAL_WRITE) && fits)
            .then(|| self.base_to + offset)
    }

    /// The STag to advertise to the peer.
    pub fn stag(&self) -> Stag {
        self.stag
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the peer should write or read: this region at `offset`.
    pub fn remote(&self, offset: u64) -> RemoteRegion {
        RemoteRegion {
            stag: self.stag,
            to: self.base_to + offset,
        }
    }

    /// Copies the region's octets at `offset` into `dst` (consistent with respect
    /// to placement: a copy never sees half of one segment's placement).
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), Error> {
        let eng = engine::get()?;
        eng.table
            .copy_out(self.stag, self.base_to + offset, dst)
            .map_err(Error::Region)
    }
}

impl Drop for MemoryRegion {
    fn drop(&mut self) {
        if self.shared.submit(Wr::Deregister(self.stag, None)).is_err() {
            // The engine has let go of the connection: nothing is in flight.
            if let Ok(eng) = engine::get() {
                let _ = eng.table.deregister(self.stag);
            }
        }
    }
}

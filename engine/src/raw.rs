//! Work requests and registrations over the caller's own memory (the C API of
//! `libeta.so`): no copy, the caller keeps the memory valid until the completion.
//! The API's only `unsafe`: turning the caller's pointers into buffers, under the
//! contracts of these functions.

use std::sync::Arc;

use eta_ddp_core::{Access, ConnId, LocalBuffer, PostError, Scope, SendOptions, Stag};

use crate::api::Connection;
use crate::engine;
use crate::error::Error;
use crate::handoff::{Notify, Payload, Work, Wr};
use crate::region::RemoteRegion;

impl Connection {
    /// Posts a Send of caller memory (no copy).
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads, and unmodified, until the request's
    /// completion has been taken from the completion queue (or
    /// [`wait_released`](Self::wait_released) returned true).
    pub unsafe fn post_send_raw(
        &self,
        wr_id: u64,
        ptr: *const u8,
        len: usize,
        opts: SendOptions,
    ) -> Result<(), PostError> {
        // SAFETY: forwarded from this function's contract.
        let buf = Payload::Raw(unsafe { LocalBuffer::from_raw(ptr, len) });
        self.post(Work::Send {
            wr_id,
            buf,
            opts,
            quiet: false,
            done: None,
        })
    }

    /// Posts a receive into caller memory (no copy).
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for writes, and untouched by anyone else,
    /// until the request's completion has been taken (or
    /// [`wait_released`](Self::wait_released) returned true).
    pub unsafe fn post_recv_raw(
        &self,
        wr_id: u64,
        ptr: *mut u8,
        len: usize,
    ) -> Result<(), PostError> {
        // SAFETY: forwarded from this function's contract.
        let buf = Payload::Raw(unsafe { LocalBuffer::from_raw_mut(ptr, len) });
        self.post(Work::Recv { wr_id, buf })
    }

    /// Posts an RDMA Write from caller memory (no copy).
    ///
    /// # Safety
    /// As [`post_send_raw`](Self::post_send_raw).
    pub unsafe fn post_write_raw(
        &self,
        wr_id: u64,
        ptr: *const u8,
        len: usize,
        remote: RemoteRegion,
    ) -> Result<(), PostError> {
        // SAFETY: forwarded from this function's contract.
        let buf = Payload::Raw(unsafe { LocalBuffer::from_raw(ptr, len) });
        self.post(Work::Write {
            wr_id,
            buf,
            remote: remote.stag,
            remote_to: remote.to,
        })
    }

    /// Posts an RDMA Read into a region given by its STag and tagged offset (the
    /// caller checked that the region is this connection's and writable locally;
    /// the engine checks again when it posts the Read, and a refusal completes the
    /// request as flushed with [`crate::Completion::refused`] saying why).
    pub fn post_read_stag(
        &self,
        wr_id: u64,
        local: Stag,
        local_to: u64,
        len: u32,
        remote: RemoteRegion,
    ) -> Result<(), PostError> {
        self.post(Work::Read {
            wr_id,
            local,
            local_to,
            len,
            remote: remote.stag,
            remote_to: remote.to,
        })
    }

    /// Registers caller memory for RDMA. Its tagged offsets are its addresses (as
    /// with verbs): the peer addresses octet `i` as `ptr as u64 + i`. Reachable
    /// through this connection only, or through every connection with `global`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must stay valid for reads and writes until
    /// [`deregister_wait`](Self::deregister_wait) of the STag returned, or
    /// [`wait_released`](Self::wait_released) returned true; the engine writes into
    /// it when the peer (or this side's Read) places data, so nobody may hold a Rust
    /// reference to it meanwhile.
    pub unsafe fn register_raw(
        &self,
        ptr: *mut u8,
        len: usize,
        access: Access,
        global: bool,
    ) -> Result<Stag, Error> {
        let eng = engine::get()?;
        // SAFETY: forwarded from this function's contract.
        let buf = unsafe { LocalBuffer::from_raw_mut(ptr, len) };
        let scope = if global {
            Scope::Global
        } else {
            Scope::Connection(ConnId(self.id()))
        };
        eng.table
            .register_buffer(buf, ptr as u64, access, scope)
            .map_err(Error::Registration)
    }

    /// Deregisters `stag` and returns once the engine no longer touches its memory
    /// (an FPDU being sent from it has been handed to the kernel).
    pub fn deregister_wait(&self, stag: Stag) -> Result<(), Error> {
        let notify = Arc::new(Notify::default());
        if self
            .submit_control(Wr::Deregister(stag, Some(Arc::clone(&notify))))
            .is_err()
        {
            // The engine has let go of the connection: nothing is in flight.
            let eng = engine::get()?;
            let _ = eng.table.deregister(stag);
            return Ok(());
        }
        notify.wait(None);
        Ok(())
    }
}

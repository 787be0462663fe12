//! The C API of `include/eta.h`: memory registration, work requests, completions
//! and shared completion queues. Every function checks its arguments and returns
//! the documented errno; none unwinds into C.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use eta_engine::{
    Access, Completion, CompletionOp, CompletionQueue, CompletionStatus, Connection, PostError,
    RemoteRegion, SendOptions, Stag,
};
use libc::{c_int, c_void, size_t};

use super::lookup_open;
use super::socket::{DdpSocket, Region};
use crate::errno;
use crate::eta_h::{
    ETA_ACCESS_ANY_SOCKET, ETA_ACCESS_LOCAL_WRITE, ETA_ACCESS_REMOTE_READ, ETA_ACCESS_REMOTE_WRITE,
    ETA_SEND_SOLICITED, ETA_WC_INVALIDATED, ETA_WC_RDMA_READ, ETA_WC_RDMA_WRITE, ETA_WC_RECV,
    ETA_WC_SEND, ETA_WC_SOLICITED,
};
use crate::route::guarded;

/// The access rights `eta_reg_mr` takes: each right and where it maps to.
const ACCESS_RIGHTS: [(c_int, Access); 3] = [
    (ETA_ACCESS_LOCAL_WRITE, Access::LOCAL_WRITE),
    (ETA_ACCESS_REMOTE_WRITE, Access::REMOTE_WRITE),
    (ETA_ACCESS_REMOTE_READ, Access::REMOTE_READ),
];
/// Every bit `eta_reg_mr` accepts.
const ACCESS_BITS: c_int = ETA_ACCESS_LOCAL_WRITE
    | ETA_ACCESS_REMOTE_WRITE
    | ETA_ACCESS_REMOTE_READ
    | ETA_ACCESS_ANY_SOCKET;

/// `struct eta_wc`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EtaWc {
    wr_id: u64,
    status: c_int,
    opcode: c_int,
    byte_len: u32,
    flags: u32,
    invalidated: u32,
    fd: c_int,
}

/// Queues made by `eta_cq_create`, by their fd.
static CQS: LazyLock<Mutex<HashMap<c_int, CompletionQueue>>> = LazyLock::new(Default::default);
/// The fd of each connection, for `eta_wc.fd` from a shared queue.
static CONN_FDS: LazyLock<Mutex<HashMap<u64, c_int>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records which fd a connection's completions belong to.
pub fn note_connection(id: u64, sock: &DdpSocket) {
    lock(&CONN_FDS).insert(id, sock.fd());
}

/// Forgets a connection (its socket was closed).
pub fn forget_connection(id: u64) {
    lock(&CONN_FDS).remove(&id);
}

/// Forgets the queue of `fd` (closed); returns whether it was one.
pub fn forget_cq(fd: c_int) -> bool {
    lock(&CQS).remove(&fd).is_some()
}

/// The queue of an `eta_cq_create` fd.
pub fn shared_cq(fd: c_int) -> Option<CompletionQueue> {
    lock(&CQS).get(&fd).cloned()
}

fn fail<T>(e: c_int, v: T) -> T {
    errno::set(e);
    v
}

fn post_errno(conn: &Connection, e: PostError) -> c_int {
    match e {
        PostError::NotOperational => conn.errno().unwrap_or(libc::ENOTCONN),
        PostError::QueueFull => libc::EAGAIN,
        PostError::TooLong => libc::EMSGSIZE,
        _ => libc::EINVAL,
    }
}

fn status_errno(s: CompletionStatus) -> c_int {
    match s {
        CompletionStatus::Success => 0,
        CompletionStatus::Flushed => libc::ECANCELED,
        CompletionStatus::LocalLength => libc::EMSGSIZE,
        CompletionStatus::RemoteInvalidRequest => libc::EREMOTEIO,
    }
}

/// `c` as a `struct eta_wc`; `fd` is the socket's fd when known (its own queue),
/// else it is looked up by connection (a shared queue).
fn to_wc(c: &Completion, fd: Option<c_int>) -> EtaWc {
    let opcode = match c.op {
        CompletionOp::Send => ETA_WC_SEND,
        CompletionOp::Recv => ETA_WC_RECV,
        CompletionOp::Write => ETA_WC_RDMA_WRITE,
        CompletionOp::Read => ETA_WC_RDMA_READ,
        _ => 0,
    };
    let mut flags = 0;
    if c.solicited {
        flags |= ETA_WC_SOLICITED;
    }
    if c.invalidated.is_some() {
        flags |= ETA_WC_INVALIDATED;
    }
    EtaWc {
        wr_id: c.wr_id,
        status: status_errno(c.status),
        opcode,
        byte_len: c.byte_len,
        flags,
        invalidated: c.invalidated.map_or(0, |s| s.0),
        fd: fd.unwrap_or_else(|| lock(&CONN_FDS).get(&c.conn).copied().unwrap_or(-1)),
    }
}

/// Runs `f` on the open DDP connection of `fd`, marking its memory as the
/// program's own (close then waits for the engine to let go of it).
fn with_conn<T: Copy>(
    fd: c_int,
    fail_v: T,
    f: impl FnOnce(&Arc<DdpSocket>, &Arc<Connection>) -> Result<T, c_int>,
) -> T {
    guarded(fail_v, || match lookup_open(fd) {
        Ok((s, c)) => {
            s.raw_used.store(true, std::sync::atomic::Ordering::Release);
            f(&s, &c).unwrap_or_else(|e| {
                s.log_failure();
                fail(e, fail_v)
            })
        }
        Err(e) => fail(e, fail_v),
    })
}

/// `eta_reg_mr`.
///
/// # Safety
/// `addr..addr+length` must stay valid until `eta_dereg_mr` or close (eta.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_reg_mr(
    fd: c_int,
    addr: *mut c_void,
    length: size_t,
    access: c_int,
) -> u32 {
    with_conn(fd, 0u32, |s, c| {
        if addr.is_null()
            || length == 0
            || access & !ACCESS_BITS != 0
            || (addr as usize).checked_add(length).is_none()
            || length > isize::MAX as usize
        {
            return Err(libc::EINVAL);
        }
        let acc = ACCESS_RIGHTS
            .into_iter()
            .filter(|(bit, _)| access & bit != 0)
            .fold(Access::NONE, |x, (_, a)| x | a);
        // SAFETY: the program keeps the memory valid until eta_dereg_mr or close
        // (eta.h), and the range was checked above.
        let stag = unsafe {
            c.register_raw(
                addr.cast(),
                length,
                acc,
                access & ETA_ACCESS_ANY_SOCKET != 0,
            )
        }
        .map_err(|_| libc::ENOSPC)?;
        s.regions_lock().insert(
            stag.0,
            Region {
                addr: addr as usize,
                len: length,
                access,
            },
        );
        Ok(stag.0)
    })
}

/// `eta_dereg_mr`.
#[unsafe(no_mangle)]
pub extern "C" fn eta_dereg_mr(fd: c_int, stag: u32) -> c_int {
    guarded(-1, || {
        let s = match super::lookup(fd) {
            Ok(s) => s,
            Err(e) => return fail(e, -1),
        };
        if s.regions_lock().remove(&stag).is_none() {
            return fail(libc::EINVAL, -1);
        }
        if let Some(c) = s.conn() {
            let _ = c.deregister_wait(Stag(stag));
        }
        0
    })
}

/// `eta_post_send`.
///
/// # Safety
/// `buf..buf+len` must stay valid and unmodified until the completion (eta.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_post_send(
    fd: c_int,
    wr_id: u64,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { post_send(fd, wr_id, buf, len, flags, None) }
}

/// `eta_post_send_inv`.
///
/// # Safety
/// As `eta_post_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_post_send_inv(
    fd: c_int,
    wr_id: u64,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    inv_stag: u32,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { post_send(fd, wr_id, buf, len, flags, Some(Stag(inv_stag))) }
}

/// # Safety
/// As `eta_post_send`.
unsafe fn post_send(
    fd: c_int,
    wr_id: u64,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    inv: Option<Stag>,
) -> c_int {
    with_conn(fd, -1, |_, c| {
        if (buf.is_null() && len > 0) || flags & !ETA_SEND_SOLICITED != 0 {
            return Err(libc::EINVAL);
        }
        let opts = SendOptions {
            solicited: flags & ETA_SEND_SOLICITED != 0,
            invalidate: inv,
        };
        // SAFETY: the program keeps the buffer valid until the completion (eta.h).
        unsafe { c.post_send_raw(wr_id, buf.cast(), len, opts) }
            .map(|()| 0)
            .map_err(|e| post_errno(c, e))
    })
}

/// `eta_post_recv`.
///
/// # Safety
/// `buf..buf+len` must stay valid and untouched until the completion (eta.h).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_post_recv(
    fd: c_int,
    wr_id: u64,
    buf: *mut c_void,
    len: size_t,
) -> c_int {
    with_conn(fd, -1, |_, c| {
        if buf.is_null() && len > 0 {
            return Err(libc::EINVAL);
        }
        // SAFETY: the program keeps the buffer valid until the completion (eta.h).
        unsafe { c.post_recv_raw(wr_id, buf.cast(), len) }
            .map(|()| 0)
            .map_err(|e| post_errno(c, e))
    })
}

/// `eta_rdma_write`.
///
/// # Safety
/// As `eta_post_send`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_rdma_write(
    fd: c_int,
    wr_id: u64,
    buf: *const c_void,
    len: size_t,
    rstag: u32,
    raddr: u64,
) -> c_int {
    with_conn(fd, -1, |_, c| {
        if buf.is_null() && len > 0 {
            return Err(libc::EINVAL);
        }
        let remote = RemoteRegion {
            stag: Stag(rstag),
            to: raddr,
        };
        // SAFETY: the program keeps the buffer valid until the completion (eta.h).
        unsafe { c.post_write_raw(wr_id, buf.cast(), len, remote) }
            .map(|()| 0)
            .map_err(|e| post_errno(c, e))
    })
}

/// `eta_rdma_read`.
#[unsafe(no_mangle)]
pub extern "C" fn eta_rdma_read(
    fd: c_int,
    wr_id: u64,
    buf: *mut c_void,
    len: size_t,
    lstag: u32,
    rstag: u32,
    raddr: u64,
) -> c_int {
    with_conn(fd, -1, |s, c| {
        let len32 = u32::try_from(len).map_err(|_| libc::EMSGSIZE)?;
        let region = s.regions_lock().get(&lstag).copied().ok_or(libc::EINVAL)?;
        let start = buf as usize;
        let inside = start >= region.addr
            && start
                .checked_add(len)
                .is_some_and(|end| end <= region.addr + region.len);
        if !inside || region.access & ETA_ACCESS_LOCAL_WRITE == 0 {
            return Err(libc::EINVAL);
        }
        let remote = RemoteRegion {
            stag: Stag(rstag),
            to: raddr,
        };
        c.post_read_stag(wr_id, Stag(lstag), start as u64, len32, remote)
            .map(|()| 0)
            .map_err(|e| post_errno(c, e))
    })
}

/// Where `eta_poll` takes completions from.
enum Source {
    Socket(Arc<Connection>),
    Shared(CompletionQueue),
}

/// A source and the fd the program named it by.
struct Polled {
    src: Source,
    fd: c_int,
}

impl Polled {
    fn of(fd: c_int) -> Result<Self, c_int> {
        let src = match shared_cq(fd) {
            Some(cq) => Source::Shared(cq),
            None => Source::Socket(lookup_open(fd)?.1),
        };
        Ok(Self { src, fd })
    }

    /// The fd of the socket whose own queue this is.
    fn own_fd(&self) -> Option<c_int> {
        matches!(self.src, Source::Socket(_)).then_some(self.fd)
    }

    fn cq(&self) -> &CompletionQueue {
        match &self.src {
            Source::Socket(c) => c.send_cq(),
            Source::Shared(q) => q,
        }
    }

    fn take(&self, out: &mut [EtaWc]) -> usize {
        let mut got = Vec::with_capacity(out.len());
        let mut n = self.cq().poll_many(&mut got, out.len());
        if let Source::Socket(c) = &self.src {
            if n < out.len() && !std::ptr::eq(c.recv_cq(), c.send_cq()) {
                n += c.recv_cq().poll_many(&mut got, out.len() - n);
            }
            c.refresh_readiness(self.fd);
        } else {
            self.cq().rearm();
        }
        for (slot, c) in out.iter_mut().zip(&got) {
            *slot = to_wc(c, self.own_fd());
        }
        n
    }
}

/// # Safety
/// `wc` must point at `max` writable `struct eta_wc`.
unsafe fn wc_slice<'a>(wc: *mut EtaWc, max: c_int) -> Result<&'a mut [EtaWc], c_int> {
    if wc.is_null() || max < 1 {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller passes `max` writable entries (eta.h).
    Ok(unsafe { std::slice::from_raw_parts_mut(wc, max as usize) })
}

/// `eta_poll`.
///
/// # Safety
/// `wc` must point at `max` writable `struct eta_wc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_poll(fd: c_int, wc: *mut EtaWc, max: c_int) -> c_int {
    guarded(-1, || {
        // SAFETY: forwarded contract.
        let out = match unsafe { wc_slice(wc, max) } {
            Ok(o) => o,
            Err(e) => return fail(e, -1),
        };
        match Polled::of(fd) {
            Ok(src) => src.take(out) as c_int,
            Err(e) => fail(e, -1),
        }
    })
}

/// `eta_wait`.
///
/// # Safety
/// As `eta_poll`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn eta_wait(
    fd: c_int,
    wc: *mut EtaWc,
    max: c_int,
    timeout_ms: c_int,
) -> c_int {
    guarded(-1, || {
        // SAFETY: forwarded contract.
        let out = match unsafe { wc_slice(wc, max) } {
            Ok(o) => o,
            Err(e) => return fail(e, -1),
        };
        let src = match Polled::of(fd) {
            Ok(s) => s,
            Err(e) => return fail(e, -1),
        };
        let n = src.take(out);
        if n > 0 {
            return n as c_int;
        }
        let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
        match src.cq().wait(timeout) {
            Ok(Some(first)) => {
                out[0] = to_wc(&first, src.own_fd());
                (1 + src.take(&mut out[1..])) as c_int
            }
            Ok(None) => {
                if let Source::Socket(c) = &src.src {
                    c.refresh_readiness(fd);
                }
                0
            }
            Err(e) => fail(e.raw_os_error().unwrap_or(libc::EIO), -1),
        }
    })
}

/// `eta_cq_create`.
#[unsafe(no_mangle)]
pub extern "C" fn eta_cq_create() -> c_int {
    guarded(-1, || {
        let cq = match CompletionQueue::new() {
            Ok(q) => q,
            Err(e) => return fail(e.raw_os_error().unwrap_or(libc::ENOMEM), -1),
        };
        // SAFETY: F_DUPFD_CLOEXEC of the queue's own eventfd: the program gets its
        // own fd to poll.
        let fd = unsafe { crate::real::fcntl_int(cq.fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return -1;
        }
        if !crate::fdtable::set(fd, crate::fdtable::FdKind::Ddp) {
            // SAFETY: closes the fd just made.
            unsafe { crate::real::close(fd) };
            return fail(libc::EMFILE, -1);
        }
        cq.rearm();
        lock(&CQS).insert(fd, cq);
        fd
    })
}

/// `eta_cq_destroy`.
#[unsafe(no_mangle)]
pub extern "C" fn eta_cq_destroy(cq: c_int) -> c_int {
    guarded(-1, || {
        if !forget_cq(cq) {
            return fail(libc::EBADF, -1);
        }
        crate::fdtable::clear(cq);
        // SAFETY: closes the fd eta_cq_create made.
        unsafe { crate::real::close(cq) };
        0
    })
}

#[cfg(test)]
mod tests {
    use super::EtaWc;

    #[test]
    fn layout_matches_eta_h() {
        // struct eta_wc: u64, int, int, u32, u32, u32, int = 32 octets, aligned 8.
        assert_eq!(std::mem::size_of::<EtaWc>(), 32);
        assert_eq!(std::mem::align_of::<EtaWc>(), 8);
    }
}

//! Thin wrappers over the Linux calls the engine needs that `std` does not offer:
//! epoll, eventfd, `writev` of raw iovecs, TCP options, CPU affinity, futexes.
//! Every `unsafe` of the engine's I/O is here, each with its reason.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// An eventfd used as a doorbell or a completion notifier.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A non-blocking, close-on-exec eventfd with counter 0.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd we own.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds one to the counter (wakes a poller). An overflowing counter (which would
    /// take 2⁶⁴ signals) is the only failure and is harmless: the fd stays readable.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own fd.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter; returns whether it was non-zero.
    pub fn drain(&self) -> bool {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own fd.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        n == 8 && v > 0
    }

    /// Waits until the counter is non-zero or the timeout passes (None: forever).
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
        loop {
            // SAFETY: one valid pollfd for the duration of the call.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            match cvt(r) {
                Ok(n) => return Ok(n > 0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The raw fd, for `epoll`.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

/// Readable.
pub const IN: u32 = libc::EPOLLIN as u32;
/// Writable.
pub const OUT: u32 = libc::EPOLLOUT as u32;
/// Edge-triggered.
pub const ET: u32 = libc::EPOLLET as u32;
/// Peer closed its side, or error.
pub const HUP: u32 = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
/// Peer closed its sending side (FIN).
pub const RDHUP: u32 = libc::EPOLLRDHUP as u32;
/// Hang-up or error (reset).
pub const ERR_HUP: u32 = (libc::EPOLLHUP | libc::EPOLLERR) as u32;

impl Epoll {
    /// A close-on-exec epoll instance.
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; a non-negative result is a new fd we own.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is new and ours.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Registers `fd` with `events`, tagged with `token`.
    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Unregisters `fd`.
    pub fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; failure (fd already gone) is not an error here.
        let _ = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }

    /// Waits for events (timeout `None`: forever; zero: poll) into `out`.
    pub fn wait(
        &self,
        out: &mut Vec<libc::epoll_event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        out.clear();
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
        let cap = out.capacity().clamp(1, i32::MAX as usize);
        // SAFETY: the kernel writes at most `cap` events into the vector's spare
        // capacity; we then set the length to the number it reports.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), out.as_mut_ptr(), cap as i32, ms) };
        match cvt(n) {
            Ok(n) => {
                // SAFETY: the kernel initialized the first `n` (<= cap) entries.
                unsafe { out.set_len(n as usize) };
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Gather-writes raw iovecs (`sendmsg` with `MSG_NOSIGNAL`, so a peer that is gone
/// gives `EPIPE` instead of killing the process with `SIGPIPE`).
///
/// # Safety
/// Every iovec must describe memory valid for reads for the duration of the call.
pub unsafe fn writev(fd: RawFd, iov: &[libc::iovec]) -> io::Result<usize> {
    let n = iov.len().min(libc::UIO_MAXIOV as usize);
    // SAFETY: zeroed msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = n as _;
    // SAFETY: the msghdr points at `n` iovecs of the slice, which the caller
    // guarantees are readable; the kernel only reads them.
    cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) })
}

/// Waits until one of `fds` is readable (no time limit).
pub fn wait_readable(fds: &[RawFd]) -> io::Result<()> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of pollfd for the duration of the call.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        match cvt(r) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `read` into a buffer.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the buffer is valid for writes of its length.
    cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `read` into raw memory.
///
/// # Safety
/// `ptr..ptr+len` must be valid for writes for the duration of the call.
pub unsafe fn read_raw(fd: RawFd, ptr: *mut u8, len: usize) -> io::Result<usize> {
    // SAFETY: the caller guarantees the destination span.
    cvt_size(unsafe { libc::read(fd, ptr.cast(), len) })
}

/// `shutdown(fd, SHUT_WR)`: sends FIN after queued data.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: no pointers; failure (not connected) is harmless here.
    let _ = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// Octets sent on a TCP socket and not yet acknowledged by the peer (`SIOCOUTQ`
/// counts unsent and unacknowledged octets; `None` if the call fails).
pub fn unacked(fd: RawFd) -> Option<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int to the pointer given.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut v as *mut libc::c_int) };
    (r == 0).then_some(v.max(0) as usize)
}

/// Makes a silent peer fail the connection after about `after`: keepalive probes
/// start at a third of it, every tenth of it, and six unanswered ones fail it;
/// data left unacknowledged for all of it fails it too (`TCP_USER_TIMEOUT`).
pub fn dead_peer_timeout(fd: RawFd, after: Duration) -> io::Result<()> {
    let secs = |d: Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    let set = |level, name, v| set_int_opt(fd, level, name, v);
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(after / 3))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(after / 10))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 6)?;
    let ms = after.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    set(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)
}

/// The pending socket error (`SO_ERROR`), if any.
pub fn socket_error(fd: RawFd) -> Option<io::Error> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the kernel to write an int and its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0 && v != 0).then(|| io::Error::from_raw_os_error(v))
}

/// The TCP maximum segment size the kernel uses for this connection (the EMSS).
pub fn tcp_maxseg(fd: RawFd) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the kernel to write an int and its size.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_MAXSEG,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(v.max(0) as u32)
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: `cpu` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: a valid cpu_set_t of the size given; 0 is the calling thread.
    cvt(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

/// Runs `handler` in the child of every later `fork` (`pthread_atfork`). It runs
/// in a process that has only the forking thread: it may do little more than
/// atomic stores.
pub fn on_fork_child(handler: extern "C" fn()) {
    // SAFETY: a valid `extern "C" fn()` that lives forever; no prepare or parent
    // handler.
    let _ = unsafe { libc::pthread_atfork(None, None, Some(handler)) };
}

/// A connected pair of non-blocking, close-on-exec `AF_UNIX` stream sockets.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    // SAFETY: both fds were just created by socketpair and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Fills `buf` from the kernel's random source (`getrandom`, blocking only until the
/// pool is initialised at boot).
pub fn random_fill(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: getrandom writes at most `rest.len()` octets into `rest`.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += r as usize;
    }
    Ok(())
}

/// Sets an int socket option.
pub fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: setsockopt reads one int from a live local.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// `send` without blocking and without `SIGPIPE`, as a raw system call: the
/// program's end of a socket-mode pair is an fd that `libeta.so` interposes, and
/// the engine must reach the kernel, not the shim's `send`.
pub fn send_nb(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: sendto with a buffer valid for reads of its length and no address.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0,
        )
    };
    cvt_size(r as libc::ssize_t)
}

/// `recv` without blocking, as a raw system call (see [`send_nb`]).
pub fn recv_nb(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: recvfrom into a buffer valid for writes of its length, no address.
    let r = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    };
    cvt_size(r as libc::ssize_t)
}

/// `shutdown(fd, how)`; failure (not connected) is ignored.
pub fn shutdown(fd: RawFd, how: libc::c_int) {
    // SAFETY: no pointers.
    let _ = unsafe { libc::shutdown(fd, how) };
}

/// Waits until `fd` reports one of `events` (or an error/hang-up), or `timeout`
/// passes (`None`: no limit). Returns the reported events (0 on time-out);
/// `Interrupted` if a signal arrived, so a caller can report `EINTR`.
pub fn poll_one(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: one valid pollfd for the duration of the call.
    let n = cvt(unsafe { libc::poll(&mut pfd, 1, ms) })?;
    Ok(if n > 0 { pfd.revents } else { 0 })
}

/// `SO_LINGER` with a zero time-out: closing the socket resets the connection.
pub fn linger_reset(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` from a live local.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// Sleeps while `word` holds `expected` (a private `FUTEX_WAIT`), at most `timeout`
/// (`None`: no limit). `Ok` when woken, or at once when `word` no longer holds
/// `expected`; `TimedOut` when the time is up; `Interrupted` when a signal handler
/// ran. The kernel gives the wait a blocking socket call's semantics: without a
/// time-out it restarts the wait after a handler installed with `SA_RESTART` (and
/// reports `Interrupted` after one without it); with a time-out every handler ends
/// it, as `SO_RCVTIMEO` does for `recv`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT reads the u32 behind `word` (alive for the call) and the
    // optional relative timespec, a live local or null.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            tsp,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Ok(()),
        _ => Err(e),
    }
}

/// Wakes every thread sleeping in [`futex_wait`] on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of `word` as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

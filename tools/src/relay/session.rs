//! One relayed connection: the client's socket, the socket to the target, the two
//! pumps between them, and the reset that ends both at once.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::fault::Direction;
use super::pump::Pump;
use super::stats::{End, Stats};
use super::{POLL, Plan};

/// What both pumps of a session share: the reason the session was aborted, if it
/// was, the relay's stop flag and the deadline.
#[derive(Debug)]
pub(super) struct SessionShared {
    aborted: Mutex<Option<End>>,
    stop: Arc<AtomicBool>,
    deadline: Instant,
    fds: [RawFd; 2],
}

impl SessionShared {
    /// Why the pumps must stop now, if they must: the session was aborted, the
    /// relay is stopping, or the deadline passed (the last two abort it).
    pub fn check(&self) -> Option<End> {
        if let Some(end) = *self.lock() {
            return Some(end);
        }
        if self.stop.load(Ordering::Acquire) {
            return Some(self.abort(End::Stopped));
        }
        if Instant::now() >= self.deadline {
            return Some(self.abort(End::Deadline));
        }
        None
    }

    /// Aborts the session: both sockets get `SO_LINGER` 0, so closing them (when
    /// both pumps have stopped) sends an RST each way. The first reason stays;
    /// returns it.
    pub fn abort(&self, why: End) -> End {
        let mut aborted = self.lock();
        if let Some(first) = *aborted {
            return first;
        }
        for fd in self.fds {
            linger_zero(fd);
        }
        *aborted = Some(why);
        why
    }

    /// Sleeps `total`, in short naps, unless the session must stop first.
    pub fn sleep(&self, total: Duration) -> Result<(), End> {
        let until = Instant::now() + total;
        loop {
            if let Some(end) = self.check() {
                return Err(end);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            thread::sleep((until - now).min(POLL));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<End>> {
        self.aborted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sets `SO_LINGER` to on, 0 s: the socket's close sends an RST.
fn linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one `linger` from a live local; `fd` is a socket the
    // session owns until both pumps have stopped (a failure is harmless: the close
    // then sends a FIN).
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Prepares a socket for a pump: no Nagle delay, short time-outs so the pump sees
/// the stop flag, the deadline and its sibling's abort.
fn prepare(s: &TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(POLL))
}

/// Relays one client connection to `target` under `plan` until both directions
/// end, then adds its counters to `stats`. Session `index` (0 for the first)
/// picks the random streams.
pub(super) fn run(
    client: TcpStream,
    target: SocketAddr,
    plan: &Plan,
    index: u64,
    stop: Arc<AtomicBool>,
    stats: &Mutex<Stats>,
) {
    let server = match TcpStream::connect_timeout(&target, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => {
            if plan.verbose {
                eprintln!("eta-fault-relay: session {index}: connecting to {target}: {e}");
            }
            linger_zero(client.as_raw_fd());
            stats
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .connect_failures += 1;
            return;
        }
    };
    if let Err(e) = prepare(&client).and_then(|()| prepare(&server)) {
        if plan.verbose {
            eprintln!("eta-fault-relay: session {index}: socket options: {e}");
        }
        linger_zero(client.as_raw_fd());
        linger_zero(server.as_raw_fd());
        return;
    }
    let shared = SessionShared {
        aborted: Mutex::new(None),
        stop,
        deadline: Instant::now() + plan.deadline,
        fds: [client.as_raw_fd(), server.as_raw_fd()],
    };
    thread::scope(|s| {
        let ends = (&client, &server, &shared);
        s.spawn(move || Pump::new(Direction::ToServer, ends, plan, index, stats).run());
        Pump::new(
            Direction::ToClient,
            (&server, &client, &shared),
            plan,
            index,
            stats,
        )
        .run();
    });
    // Both pumps stopped: the sockets close here (an RST each way if aborted).
    drop((client, server));
    let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
    st.finished += 1;
    if plan.verbose {
        eprintln!("eta-fault-relay: session {index} done: {st:?}");
    }
}

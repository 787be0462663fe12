//! Listeners: accepted TCP connections become iWARP connections (this end is the
//! MPA Responder), with MPA setup in a thread per connection.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::api::Connection;
use crate::config::Options;
use crate::error::Error;
use crate::establish;
use crate::sys;

/// A listening socket whose accepted connections are iWARP connections (this end is
/// the MPA Responder).
///
/// MPA setup runs for each accepted TCP connection in a thread of its own, so a
/// client that connects and then says nothing holds up only itself (until
/// `Options::request_timeout`), never the connections behind it.
pub struct Listener {
    listener: TcpListener,
    opts: Options,
    done: Arc<Finished>,
}

/// Setups that finished and wait for `accept`, and the eventfd that says so.
struct Finished {
    queue: Mutex<VecDeque<Result<Connection, Error>>>,
    ready: sys::EventFd,
    in_flight: AtomicUsize,
}

/// Most MPA setups a listener runs at once; more connections wait in the kernel's
/// accept queue.
const MAX_SETUPS: usize = 256;

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("listener", &self.listener)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Listener {
    /// Binds and listens.
    pub fn bind(addr: impl ToSocketAddrs, opts: Options) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Listener {
            listener,
            opts,
            done: Arc::new(Finished {
                queue: Mutex::new(VecDeque::new()),
                ready: sys::EventFd::new()?,
                in_flight: AtomicUsize::new(0),
            }),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Returns the next connection whose MPA setup as Responder finished, in the
    /// order they finish. A peer that failed setup (bad Request, time-out, rejected)
    /// is closed and reported here; call again for the next one.
    pub fn accept(&self) -> Result<Connection, Error> {
        use std::os::fd::AsRawFd;
        loop {
            if let Some(r) = self.lock_done().pop_front() {
                return r;
            }
            if self.done.in_flight.load(Ordering::Acquire) < MAX_SETUPS {
                match self.listener.accept() {
                    Ok((stream, _)) => {
                        self.spawn_setup(stream)?;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Wait for a new TCP connection or a finished setup.
            let lfd = self.listener.as_raw_fd();
            let efd = self.done.ready.raw();
            sys::wait_readable(&[lfd, efd])?;
            self.done.ready.drain();
        }
    }

    fn spawn_setup(&self, stream: TcpStream) -> Result<(), Error> {
        stream.set_nonblocking(false)?;
        let mut opts = self.opts.clone();
        // One pollable fd per socket: a listener's connections get none.
        opts.socket = None;
        let done = Arc::clone(&self.done);
        done.in_flight.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("eta-mpa-accept".into())
            .spawn(move || {
                let r = establish::respond(&stream, &opts)
                    .and_then(|est| Connection::start(stream, est, &opts, true));
                done.queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_back(r);
                done.in_flight.fetch_sub(1, Ordering::AcqRel);
                done.ready.signal();
            });
        if let Err(e) = spawned {
            self.done.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(e.into());
        }
        Ok(())
    }

    fn lock_done(&self) -> MutexGuard<'_, VecDeque<Result<Connection, Error>>> {
        self.done.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

//! MPA connection setup on a connected TCP stream, in the calling thread: the
//! Initiator's Request/Reply exchange and the Responder's, with their time-outs.
//! Full Operation then moves to an engine thread.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use eta_ddp_core::wire::terminate::TerminateRepr;
use eta_mpa::startup::negotiate::{self, LocalConfig, Negotiated};
use eta_mpa::{ErrorCode, FrameKind, Framer, FramerConfig, ReadProgress, StartupReader};

use crate::config::{Decision, Options};
use crate::error::Error;
use crate::sys;

/// The result of a successful setup.
#[derive(Debug)]
pub(crate) struct Established {
    pub negotiated: Negotiated,
    pub peer_private_data: Vec<u8>,
    /// Octets that followed the Reply in the stream (FPDUs a Responder sent at once).
    pub leftover: Vec<u8>,
}

/// Puts a socket's `SO_RCVTIMEO` back when dropped: setup borrows it, and it may
/// be the program's own (set before the socket switched to DDP mode).
struct KeepReadTimeout<'a> {
    stream: &'a TcpStream,
    kept: Option<Duration>,
}

impl Drop for KeepReadTimeout<'_> {
    fn drop(&mut self) {
        let _ = self.stream.set_read_timeout(self.kept);
    }
}

/// Reads one startup frame of `kind` within `timeout`; returns the reader and the
/// octets that followed it. The socket's own read time-out is left as it was.
fn read_frame(
    stream: &TcpStream,
    kind: FrameKind,
    timeout: Duration,
) -> Result<(StartupReader, Vec<u8>), Error> {
    let _keep = KeepReadTimeout {
        stream,
        kept: stream.read_timeout()?,
    };
    let deadline = Instant::now() + timeout;
    let mut reader = StartupReader::new(kind);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Error::Timeout)?;
        stream.set_read_timeout(Some(left))?;
        let n = match (&*stream).read(&mut buf) {
            Ok(0) => return Err(Error::PeerClosed),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(Error::PeerClosed),
            Err(e) => return Err(e.into()),
        };
        if let ReadProgress::Complete { consumed } = reader.push(&buf[..n])? {
            return Ok((reader, buf[consumed..n].to_vec()));
        }
    }
}

/// Sends a Terminate with Layer LLP, type MPA and `code` (RFC 6581 §9 requires one
/// before closing on an IRD or RTR mismatch), best effort.
fn send_llp_terminate(stream: &TcpStream, code: ErrorCode, crc: bool) {
    let mut ulpdu = [0u8; 18 + 4];
    // Untagged, last, DV 1; RDMAP Terminate; QN 2, MSN 1, MO 0.
    ulpdu[..18].copy_from_slice(&[0x41, 0x47, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]);
    TerminateRepr::bare(2, 0, code.value()).emit(&mut ulpdu[18..]);
    let mut framer = Framer::new(FramerConfig {
        crc,
        markers: false,
    });
    if let Ok(fpdu) = framer.frame_to_vec(&ulpdu, &[]) {
        let _ = (&*stream).write_all(&fpdu);
    }
}

/// The Initiator's side: sends the Request, waits for the Reply, decides.
pub(crate) fn initiate(
    stream: &TcpStream,
    cfg: &LocalConfig,
    opts: &Options,
) -> Result<Established, Error> {
    stream.set_nodelay(true)?;
    let request = negotiate::request(cfg, &opts.private_data)?;
    (&*stream).write_all(&request.to_vec()?)?;
    let (reader, leftover) = read_frame(stream, FrameKind::Reply, opts.reply_timeout)?;
    let reply = reader.frame().ok_or(Error::PeerClosed)?;
    match negotiate::on_reply(cfg, &reply) {
        Ok(negotiated) => Ok(Established {
            negotiated,
            peer_private_data: reply.private_data.to_vec(),
            leftover,
        }),
        Err(e) => {
            if let Some(code) = e.code() {
                send_llp_terminate(stream, code, cfg.crc || reply.crc);
            }
            Err(e.into())
        }
    }
}

/// The Responder's side: waits for the Request, decides (with the accept filter, if
/// any), and sends the Reply or a reject.
pub(crate) fn respond(stream: &TcpStream, opts: &Options) -> Result<Established, Error> {
    stream.set_nodelay(true)?;
    let (reader, _) = read_frame(stream, FrameKind::Request, opts.request_timeout)?;
    let request = reader.frame().ok_or(Error::PeerClosed)?;
    let cfg = &opts.mpa;
    let decision = match &opts.accept_filter {
        Some(filter) => filter(request.private_data),
        None => Decision::Accept(opts.private_data.clone()),
    };
    let negotiated = match (decision, negotiate::on_request(cfg, &request)) {
        (Decision::Accept(pd), Ok(n)) => {
            let reply = negotiate::reply(cfg, &request, &n, &pd)?;
            (&*stream).write_all(&reply.to_vec()?)?;
            // Answering the Request put our TCP in "ping-pong" mode, in which it
            // delays its ACK of what comes next (up to 40 ms) to ride on our next
            // data. The next thing is the Initiator's RTR, whose sender holds its
            // data until the RTR is acknowledged (docs/architecture.md,
            // "Connection setup"): acknowledge it at once.
            let _ = sys::set_int_opt(stream.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1);
            n
        }
        (Decision::Reject(pd), _) => {
            let reject = negotiate::reject(cfg, &request, &pd);
            (&*stream).write_all(&reject.to_vec()?)?;
            return Err(Error::Negotiation(eta_mpa::NegotiationError::Rejected {
                private_data: Vec::new(),
            }));
        }
        (Decision::Accept(_), Err(e)) => {
            let reject = negotiate::reject(cfg, &request, &[]);
            (&*stream).write_all(&reject.to_vec()?)?;
            return Err(e.into());
        }
    };
    Ok(Established {
        negotiated,
        peer_private_data: request.private_data.to_vec(),
        leftover: Vec::new(),
    })
}

//! What every eta test shares: the connection settings, the swap of regions between
//! the two ends, the 0-octet "done" messages, and the window of operations in flight
//! of the bandwidth tests.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use eta_engine::{
    Access, CompletionQueue, Connection, LocalConfig, MemoryRegion, Options, RemoteRegion,
};

use super::measure::{Transport, next};
use super::spec::Spec;
use super::{Res, WAIT_TIMEOUT, err};

/// The settings of one eta test's connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EtaCfg {
    /// MPA CRC on.
    pub crc: bool,
    /// MPA markers asked for by both ends.
    pub markers: bool,
    /// How long application threads poll a completion queue before blocking.
    pub spin: Duration,
}

impl EtaCfg {
    /// The transport of the rows of this test.
    pub fn transport(&self) -> Transport {
        Transport::Eta {
            crc: self.crc,
            markers: self.markers,
        }
    }

    /// Options with a send and a receive completion queue of its own.
    pub fn options(&self) -> Res<Options> {
        Ok(Options {
            mpa: LocalConfig {
                crc: self.crc,
                want_markers: self.markers,
                ..LocalConfig::default()
            },
            send_cq: Some(CompletionQueue::new().map_err(err("completion queue"))?),
            recv_cq: Some(CompletionQueue::new().map_err(err("completion queue"))?),
            ..Options::default()
        })
    }
}

/// Waits for the 0-octet "done" Send of the client (after posting a receive for it).
pub fn await_done(conn: &Connection, spin: Duration) -> Res<()> {
    let c = next(conn.recv_cq(), conn, spin, "done message")?;
    if c.byte_len != 0 {
        return Err(format!(
            "done message: expected 0 octets, got {}",
            c.byte_len
        ));
    }
    Ok(())
}

/// Sends a 0-octet message and waits for its completion (`what` names it).
pub fn send_empty(conn: &Connection, spin: Duration, what: &str) -> Res<()> {
    conn.post_send(u64::MAX, Vec::new(), Default::default())
        .map_err(err("post_send"))?;
    next(conn.send_cq(), conn, spin, what).map(drop)
}

/// How the two ends of a test swap their regions' STag and offset: channels
/// between two threads ([`channel_pair`]), or the peer process's control pipe
/// ([`super::peer::Control`]).
pub trait Swap {
    /// Sends `mine` to the other end and gives the region it sent.
    fn swap(&self, mine: RemoteRegion) -> Res<RemoteRegion>;
}

/// One end of a region swap between two threads of this process.
pub struct ChannelSwap {
    tx: mpsc::Sender<RemoteRegion>,
    rx: mpsc::Receiver<RemoteRegion>,
}

/// The two ends of a [`ChannelSwap`]: one for the server thread, one for the client.
pub fn channel_pair() -> (ChannelSwap, ChannelSwap) {
    let (a_tx, a_rx) = mpsc::channel();
    let (b_tx, b_rx) = mpsc::channel();
    (
        ChannelSwap { tx: a_tx, rx: b_rx },
        ChannelSwap { tx: b_tx, rx: a_rx },
    )
}

impl Swap for ChannelSwap {
    fn swap(&self, mine: RemoteRegion) -> Res<RemoteRegion> {
        self.tx
            .send(mine)
            .map_err(|_| "peer thread gone".to_string())?;
        self.rx
            .recv_timeout(WAIT_TIMEOUT)
            .map_err(|_| "peer did not advertise its region".to_string())
    }
}

/// Registers `buf` on `conn` for `access`, sends it to the other end through `x` and
/// gives the region and the one the other end sent.
pub fn register_and_swap(
    conn: &Connection,
    buf: Vec<u8>,
    access: Access,
    x: &dyn Swap,
) -> Res<(MemoryRegion, RemoteRegion)> {
    let region = conn.register(buf, access).map_err(err("register"))?;
    let peer = x.swap(region.remote(0))?;
    Ok((region, peer))
}

/// The server side of a one-sided test: registers `buf` for `access`, posts a
/// receive for the client's 0-octet "done" message, advertises the region and waits
/// for "done" (the client's region it is sent in return is not used).
pub fn serve_region(
    conn: &Connection,
    buf: Vec<u8>,
    access: Access,
    spin: Duration,
    x: &dyn Swap,
) -> Res<()> {
    let region = conn.register(buf, access).map_err(err("register"))?;
    conn.post_recv(0, vec![0; 1]).map_err(err("post_recv"))?;
    x.swap(region.remote(0))?;
    await_done(conn, spin)
}

/// Keeps `window` operations in flight until `cap` (at least `2 * window`, at most
/// `s.max` operations): `post(i, buf)` posts one, with a buffer of `buf_size`
/// octets; completions come from the send completion queue. Returns the number
/// posted (all of them completed).
pub fn windowed(
    conn: &Connection,
    s: &Spec,
    buf_size: usize,
    window: usize,
    cap: Duration,
    start: Instant,
    mut post: impl FnMut(u64, Vec<u8>) -> Res<()>,
) -> Res<usize> {
    let (spin, max) = (s.cfg.spin, s.max);
    let mut free: Vec<Vec<u8>> = (0..window).map(|_| vec![0x5au8; buf_size]).collect();
    let mut posted = 0usize;
    let mut done = 0usize;
    let min = 2 * window;
    loop {
        let more = posted < max && (posted < min || start.elapsed() < cap);
        if more {
            if let Some(buf) = free.pop() {
                post(posted as u64, buf)?;
                posted += 1;
                continue;
            }
        } else if done == posted {
            return Ok(posted);
        }
        let c = next(conn.send_cq(), conn, spin, "bandwidth completion")?;
        done += 1;
        if let Some(b) = c.buffer {
            free.push(b);
        } else {
            // Reads hand back no buffer: the slot is free again.
            free.push(Vec::new());
        }
    }
}

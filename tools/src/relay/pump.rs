//! One direction of a session: reads what one end sends and forwards it to the
//! other under the plan's faults.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use eta_mpa::{FrameKind, MpaError, ReadProgress, StartupReader};

use super::Plan;
use super::fault::{Direction, Fault};
use super::rng::SplitMix64;
use super::session::SessionShared;
use super::stats::{End, Stats};

/// Largest read from the sending end.
const READ_SIZE: usize = 64 << 10;

/// The two sockets of a pump (from, to) and the session they belong to.
pub(super) type Ends<'a> = (&'a TcpStream, &'a TcpStream, &'a SessionShared);

/// One direction's forwarding state.
pub(super) struct Pump<'a> {
    dir: Direction,
    src: &'a TcpStream,
    dst: &'a TcpStream,
    shared: &'a SessionShared,
    faults: Vec<Fault>,
    stats: &'a Mutex<Stats>,
    rng: SplitMix64,
    /// Parses the startup frame while it passes (`None` once it has).
    startup: Option<StartupReader>,
    /// Octets after the startup frame seen so far (forwarded or dropped).
    pos: u64,
    stalled: bool,
    truncated: bool,
}

impl<'a> Pump<'a> {
    /// A pump for `dir` of session `index`, with the faults of `plan` that apply to
    /// it and its own random stream.
    pub fn new(
        dir: Direction,
        (src, dst, shared): Ends<'a>,
        plan: &Plan,
        index: u64,
        stats: &'a Mutex<Stats>,
    ) -> Self {
        let faults = plan
            .faults
            .iter()
            .copied()
            .filter(|f| match *f {
                Fault::Corrupt { direction, .. }
                | Fault::Truncate { direction, .. }
                | Fault::Reset { direction, .. } => direction == dir,
                Fault::Resegment { .. } | Fault::Delay { .. } | Fault::Stall { .. } => true,
            })
            .collect();
        let stream = match dir {
            Direction::ToServer => 0x5eed_0001,
            Direction::ToClient => 0x5eed_0002,
        };
        let kind = match dir {
            Direction::ToServer => FrameKind::Request,
            Direction::ToClient => FrameKind::Reply,
        };
        Self {
            dir,
            src,
            dst,
            shared,
            faults,
            stats,
            rng: SplitMix64::new(plan.seed ^ (index << 32) ^ stream),
            startup: Some(StartupReader::new(kind)),
            pos: 0,
            stalled: false,
            truncated: false,
        }
    }

    /// Forwards until the sending end closes or the session stops; records how it
    /// ended.
    pub fn run(mut self) {
        let end = self.forward_all();
        let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        st.dir_mut(self.dir).end = end;
    }

    fn forward_all(&mut self) -> End {
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            if let Some(end) = self.shared.check() {
                return end;
            }
            match self.src.read(&mut buf) {
                Ok(0) => {
                    if !self.truncated {
                        let _ = self.dst.shutdown(Shutdown::Write);
                    }
                    return End::Fin;
                }
                Ok(n) => {
                    if let Err(end) = self.forward(&mut buf[..n]) {
                        return end;
                    }
                }
                Err(e) if transient(&e) => {}
                Err(_) => return self.shared.abort(End::PeerReset),
            }
        }
    }

    /// How many of `data`'s first octets belong to the startup frame.
    fn startup_part(&mut self, data: &[u8]) -> usize {
        let Some(reader) = &mut self.startup else {
            return 0;
        };
        match reader.push(data) {
            Ok(ReadProgress::NeedMore) => data.len(),
            Ok(ReadProgress::Complete { consumed }) => {
                self.startup = None;
                consumed
            }
            Err(MpaError::TrailingBytes(n)) => {
                // A whole Request with octets after it (a peer that does not wait
                // for the Reply): the frame ends where they begin.
                self.startup = None;
                data.len() - n
            }
            Err(_) => {
                // Not MPA (or malformed): offsets count from here.
                self.startup = None;
                0
            }
        }
    }

    /// Forwards one read's octets, segment by segment.
    fn forward(&mut self, data: &mut [u8]) -> Result<(), End> {
        let startup_len = self.startup_part(data);
        let mut off = 0;
        while off < data.len() {
            let in_startup = off < startup_len;
            let mut len = data.len() - off;
            if in_startup {
                len = len.min(startup_len - off);
            } else {
                self.events_at_pos()?;
                if let Some(b) = self.next_boundary() {
                    len = len.min((b - self.pos) as usize);
                }
            }
            if let Some((min, max)) = self.resegment() {
                len = len.min(self.rng.log_size(min, max));
            }
            let seg = &mut data[off..off + len];
            if self.truncated && !in_startup {
                self.pos += len as u64;
                self.update(|st| st.dropped += len as u64);
                off += len;
                continue;
            }
            if let Some(ms) = self.delay() {
                let wait = self.rng.range(0, ms);
                self.shared.sleep(Duration::from_millis(wait))?;
            }
            let corrupted = if in_startup { 0 } else { self.corrupt(seg) };
            self.write_all(seg)?;
            self.update(|st| {
                st.segments += 1;
                st.corrupted += corrupted;
                if in_startup {
                    st.startup += len as u64;
                } else {
                    st.octets += len as u64;
                }
            });
            off += len;
            if !in_startup {
                self.pos += len as u64;
                self.events_at_pos()?;
            }
        }
        Ok(())
    }

    /// Runs the faults due at the current offset: a stall, the truncating FIN, the
    /// reset.
    fn events_at_pos(&mut self) -> Result<(), End> {
        for f in self.faults.clone() {
            match f {
                Fault::Stall { after_octets, ms } if !self.stalled && self.pos >= after_octets => {
                    self.stalled = true;
                    self.update(|st| st.stalls += 1);
                    self.shared.sleep(Duration::from_millis(ms))?;
                }
                Fault::Truncate { after_octets, .. }
                    if !self.truncated && self.pos >= after_octets =>
                {
                    self.truncated = true;
                    let _ = self.dst.shutdown(Shutdown::Write);
                    self.update(|st| st.truncated += 1);
                }
                Fault::Reset { after_octets, .. } if self.pos >= after_octets => {
                    return Err(self.shared.abort(End::Reset));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The next offset past the current one where a fault is due.
    fn next_boundary(&self) -> Option<u64> {
        self.faults
            .iter()
            .filter_map(|f| match *f {
                Fault::Stall { after_octets, .. } if !self.stalled => Some(after_octets),
                Fault::Truncate { after_octets, .. } if !self.truncated => Some(after_octets),
                Fault::Reset { after_octets, .. } => Some(after_octets),
                _ => None,
            })
            .filter(|b| *b > self.pos)
            .min()
    }

    fn resegment(&self) -> Option<(usize, usize)> {
        self.faults.iter().find_map(|f| match *f {
            Fault::Resegment { min, max } => Some((min, max)),
            _ => None,
        })
    }

    fn delay(&self) -> Option<u64> {
        self.faults.iter().find_map(|f| match *f {
            Fault::Delay { ms } => Some(ms),
            _ => None,
        })
    }

    /// Flips the octets of `seg` (which starts at the current offset) that a
    /// `Corrupt` names; returns how many.
    fn corrupt(&self, seg: &mut [u8]) -> u64 {
        let mut n = 0;
        for f in &self.faults {
            if let Fault::Corrupt { at_octet, mask, .. } = *f {
                if let Some(i) = at_octet.checked_sub(self.pos) {
                    if i < seg.len() as u64 {
                        seg[i as usize] ^= mask;
                        n += 1;
                    }
                }
            }
        }
        n
    }

    /// Writes all of `seg`, unless the session must stop first.
    fn write_all(&self, mut seg: &[u8]) -> Result<(), End> {
        while !seg.is_empty() {
            if let Some(end) = self.shared.check() {
                return Err(end);
            }
            let mut dst = self.dst;
            match dst.write(seg) {
                Ok(0) => return Err(self.shared.abort(End::PeerReset)),
                Ok(n) => seg = &seg[n..],
                Err(e) if transient(&e) => {}
                // The destination reset its connection. Only this direction
                // stops: the other one still reads what the destination sent
                // before its reset (a Terminate, say), forwards it, and then ends
                // the session with its own read error, so the order of data and
                // reset is kept as on a direct connection.
                Err(_) => return Err(End::PeerReset),
            }
        }
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut super::stats::DirStats)) {
        let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(st.dir_mut(self.dir));
    }
}

/// A time-out or an interruption: try again.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

//! Configuration: the process-wide engine settings read from `ETA_*` environment
//! variables, and the per-connection options.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use eta_mpa::LocalConfig;

use crate::cq::CompletionQueue;

/// Default spin time before an idle engine thread parks (see [`EngineConfig::spin`]).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Process-wide engine settings, read once when the first connection starts the
/// engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// `ETA_ENGINES`: number of engine threads (1 to 64, default 1). Connections are
    /// spread over them round-robin.
    pub engines: usize,
    /// `ETA_ENGINE_CPUS`: CPUs to pin the engine threads to, as a list of numbers and
    /// ranges (`2,3` or `4-7`); thread *i* takes the *i*-th CPU (cycling). Default:
    /// not pinned.
    pub cpus: Vec<usize>,
    /// `ETA_SPIN_US`: microseconds an engine thread keeps polling after its last
    /// piece of work before it parks in `epoll_wait` (default 50; 0 parks at once).
    /// Short enough that an idle engine uses no CPU and that a 2-core machine keeps
    /// a core for the application; long enough to catch a loopback round trip
    /// without a wake-up.
    pub spin: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            engines: 1,
            cpus: Vec::new(),
            spin: DEFAULT_SPIN,
        }
    }
}

impl EngineConfig {
    /// Reads the `ETA_*` variables. A malformed value is an `InvalidInput` error that
    /// names the variable and what it expects (nothing is silently replaced).
    pub fn from_env() -> io::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`EngineConfig::from_env`], with a custom lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> io::Result<Self> {
        let mut cfg = Self::default();
        if let Some(v) = get("ETA_ENGINES") {
            cfg.engines = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| EnvError::invalid("ETA_ENGINES", &v, "a number from 1 to 64"))?;
        }
        if let Some(v) = get("ETA_ENGINE_CPUS") {
            cfg.cpus = parse_cpus(&v).ok_or_else(|| {
                EnvError::invalid(
                    "ETA_ENGINE_CPUS",
                    &v,
                    "CPU numbers and ranges like 2,3 or 4-7",
                )
            })?;
        }
        if let Some(v) = get("ETA_SPIN_US") {
            let us = v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 1_000_000)
                .ok_or_else(|| {
                    EnvError::invalid("ETA_SPIN_US", &v, "microseconds from 0 to 1000000")
                })?;
            cfg.spin = Duration::from_micros(us);
        }
        Ok(cfg)
    }
}

/// A malformed `ETA_*` variable: carried by the `InvalidInput` error of
/// [`EngineConfig::from_env`] (its `get_ref` downcasts to this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What it should be.
    pub expected: &'static str,
}

impl EnvError {
    /// The `InvalidInput` error carrying this.
    fn invalid(var: &'static str, value: &str, expected: &'static str) -> io::Error {
        let e = Self {
            var,
            value: value.to_owned(),
            expected,
        };
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={:?}: expected {}",
            self.var, self.value, self.expected
        )
    }
}

impl std::error::Error for EnvError {}

fn parse_cpus(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if a > b || b >= 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                let n: usize = part.parse().ok()?;
                if n >= 4096 {
                    return None;
                }
                out.push(n);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A Responder's answer to an MPA Request: accept with private data for the Reply,
/// or reject with private data for the reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Accept; the Reply carries these octets.
    Accept(Vec<u8>),
    /// Reject; the Reply with R=1 carries these octets.
    Reject(Vec<u8>),
}

/// Decides on incoming connections from the peer's private data.
pub type AcceptFilter = Arc<dyn Fn(&[u8]) -> Decision + Send + Sync>;

/// Options of one connection (or of every connection a listener accepts).
#[derive(Clone)]
pub struct Options {
    /// MPA wishes: revision, CRC (on by default), markers, IRD/ORD, RTR.
    pub mpa: LocalConfig,
    /// Private data for the Request (initiator) or the Reply (responder without an
    /// accept filter). At most 508 octets with Rev 2 (keep to 251 towards siw).
    pub private_data: Vec<u8>,
    /// Responder: decides on each Request from its private data.
    pub accept_filter: Option<AcceptFilter>,
    /// Initiator: how long to wait for the Reply (default 10 s).
    pub reply_timeout: Duration,
    /// Responder: how long to wait for the Request after the TCP accept (default 5 s).
    pub request_timeout: Duration,
    /// Initiator: retry with MPA Rev 1 when the peer closes the connection on an
    /// enhanced (Rev 2) Request (RFC 6581 §10). Default on.
    pub rev1_fallback: bool,
    /// Completion queue for sends, writes and reads (default: a new one per
    /// connection).
    pub send_cq: Option<CompletionQueue>,
    /// Completion queue for receives (default: the send completion queue).
    pub recv_cq: Option<CompletionQueue>,
    /// Most work requests queued and not yet completed (sends, writes, reads), and
    /// most posted receives (default 1024 each).
    pub max_wr: usize,
    /// How long a peer that stopped answering (powered off, cut off: no FIN, no
    /// RST) may stay silent before the connection fails and its work is flushed:
    /// TCP keepalive probes start after a third of it, and unacknowledged data
    /// fails after all of it (`TCP_USER_TIMEOUT`). Default 60 s; `None` leaves the
    /// kernel's defaults (hours).
    pub dead_peer_timeout: Option<Duration>,
    /// Responder: send FPDUs before the first one has been received. RFC 5044
    /// (§7.1.2) forbids it, and the peer-to-peer model of RFC 6581 (an RTR from the
    /// Initiator) is the standard way around it; but siw as Initiator with rdma_cm
    /// programs whose server speaks first (ucmatose) neither sends an RTR nor
    /// speaks first, and siw itself does not hold its own sends. Default off.
    pub responder_sends_first: bool,
    /// Socket mode (for `libeta.so`): the connection stands behind a program's
    /// socket fd, made from this [`Readiness`](crate::Readiness): the fd is readable
    /// and writable as a socket is, and `read()`-style calls take the Send messages
    /// that arrive with no receive posted ([`crate::Connection::recv_message`]).
    pub socket: Option<Arc<crate::Readiness>>,
    /// The largest FPDU this end sends, in octets on the wire (length field, pad,
    /// markers and CRC included): for peers that take only FPDUs up to the MTU or,
    /// like some RNICs, 16 KiB. `None` (the default) sizes FPDUs from the
    /// connection's EMSS (RFC 5044 §4.5); a cap above the EMSS changes nothing. At
    /// least [`MIN_FPDU`]: below, the connection fails with `Error::Config`.
    pub max_fpdu: Option<u32>,
}

/// The smallest FPDU cap ([`Options::max_fpdu`]): room for the largest header and a
/// Terminate with its included headers.
pub const MIN_FPDU: u32 = 256;

impl Default for Options {
    fn default() -> Self {
        Self {
            mpa: LocalConfig::default(),
            private_data: Vec::new(),
            accept_filter: None,
            reply_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            rev1_fallback: true,
            send_cq: None,
            recv_cq: None,
            max_wr: 1024,
            dead_peer_timeout: Some(Duration::from_secs(60)),
            responder_sends_first: false,
            socket: None,
            max_fpdu: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("mpa", &self.mpa)
            .field("private_data", &self.private_data.len())
            .field("accept_filter", &self.accept_filter.is_some())
            .field("reply_timeout", &self.reply_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("rev1_fallback", &self.rev1_fallback)
            .field("max_wr", &self.max_wr)
            .field("dead_peer_timeout", &self.dead_peer_timeout)
            .field("responder_sends_first", &self.responder_sends_first)
            .field("socket", &self.socket.is_some())
            .field("max_fpdu", &self.max_fpdu)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(
            EngineConfig::from_lookup(lookup(&[])).unwrap(),
            EngineConfig::default()
        );
        let c = EngineConfig::from_lookup(lookup(&[
            ("ETA_ENGINES", "4"),
            ("ETA_ENGINE_CPUS", "1, 4-6"),
            ("ETA_SPIN_US", "0"),
        ]))
        .unwrap();
        assert_eq!(c.engines, 4);
        assert_eq!(c.cpus, vec![1, 4, 5, 6]);
        assert_eq!(c.spin, Duration::ZERO);
    }

    #[test]
    fn bad_values_are_named() {
        for (k, v) in [
            ("ETA_ENGINES", "0"),
            ("ETA_ENGINES", "many"),
            ("ETA_ENGINE_CPUS", "3-1"),
            ("ETA_ENGINE_CPUS", "x"),
            ("ETA_SPIN_US", "-5"),
        ] {
            let e = EngineConfig::from_lookup(lookup(&[(k, v)])).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(k), "{e}");
        }
    }
}

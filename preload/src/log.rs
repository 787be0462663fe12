//! `ETA_LOG`: the shim's only output, to stderr, and only when asked.
//!
//! Unset, empty or `off`: silent. `error`, `info`, `debug`: messages of that level
//! and above. Any other value logs errors only, starting with one that says so.
//! The variable is read once, at the first message (or by the load constructor).
//! The passthrough path never logs, and neither does the path of each message on
//! a DDP socket: `info` tells what the shim does once per event worth knowing (the
//! shim loaded, a connection opened, setup failed), `debug` adds each DDP socket's
//! life (the switch, the connection established and what MPA setup agreed, its
//! failure as `ETA_ERROR` tells it, its close). A message that is off costs one
//! relaxed load: the macros test the level before they evaluate their arguments.
//! Writing a message never changes `errno`.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, Ordering};

/// A message's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// What the shim does, once per event worth knowing.
    Info = 2,
    /// Details for debugging the shim.
    Debug = 3,
}

const UNREAD: u8 = u8::MAX;
const SILENT: u8 = 0;
static MAX: AtomicU8 = AtomicU8::new(UNREAD);

/// What an `ETA_LOG` value means: the highest level shown (0 = silent) and
/// whether the value was understood.
pub fn parse(value: Option<&[u8]>) -> (u8, bool) {
    match value {
        None | Some(b"") | Some(b"off") => (SILENT, true),
        Some(b"error") => (Level::Error as u8, true),
        Some(b"info") => (Level::Info as u8, true),
        Some(b"debug") => (Level::Debug as u8, true),
        Some(_) => (Level::Error as u8, false),
    }
}

#[inline(always)]
fn max_level() -> u8 {
    let m = MAX.load(Ordering::Relaxed);
    if m != UNREAD { m } else { read_env() }
}

#[cold]
fn read_env() -> u8 {
    // SAFETY: getenv with a NUL-terminated name; the result, if not null, is a
    // NUL-terminated string owned by the environment, read at once.
    let value = unsafe {
        let p = libc::getenv(c"ETA_LOG".as_ptr());
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_bytes())
    };
    let (max, understood) = parse(value);
    if MAX
        .compare_exchange(UNREAD, max, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
        && !understood
    {
        let shown = &value.unwrap_or_default()[..value.map_or(0, |v| v.len().min(40))];
        log(
            Level::Error,
            format_args!(
                "ETA_LOG={:?} not understood (use error, info or debug); logging errors only",
                String::from_utf8_lossy(shown)
            ),
        );
    }
    MAX.load(Ordering::Relaxed)
}

/// Reads `ETA_LOG` now (called by the load constructor).
pub fn init() {
    max_level();
}

/// Whether messages of `level` are shown (one relaxed load once `ETA_LOG` was read).
#[inline(always)]
pub fn enabled(level: Level) -> bool {
    level as u8 <= max_level()
}

/// A line buffer on the stack: long messages are cut, nothing is allocated.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len; // keep one octet for '\n'
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes one line `eta[level]: message` to stderr if `level` is enabled.
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    if enabled(level) {
        write_line(level, args);
    }
}

/// Writes one line `eta[level]: message` to stderr (the caller checked the level).
#[cold]
#[inline(never)]
pub fn write_line(level: Level, args: fmt::Arguments<'_>) {
    let name = match level {
        Level::Error => "error",
        Level::Info => "info",
        Level::Debug => "debug",
    };
    let mut line = Line {
        buf: [0; 512],
        len: 0,
    };
    let _ = write!(line, "eta[{name}]: {args}");
    line.buf[line.len] = b'\n';
    line.len += 1;
    let saved = crate::errno::get();
    let mut rest = &line.buf[..line.len];
    while !rest.is_empty() {
        // SAFETY: libc's write on fd 2 with a pointer and length inside `line`.
        let n = unsafe { crate::real::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        rest = &rest[n as usize..];
    }
    crate::errno::set(saved);
}

/// Logs at `$level` (a [`Level`] variant): the arguments are evaluated only when
/// the level is enabled.
macro_rules! log_at {
    ($level:ident, $($t:tt)*) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::write_line($crate::log::Level::$level, format_args!($($t)*))
        }
    };
}
/// Logs at error level.
macro_rules! error {
    ($($t:tt)*) => { $crate::log::log_at!(Error, $($t)*) };
}
/// Logs at info level.
macro_rules! info {
    ($($t:tt)*) => { $crate::log::log_at!(Info, $($t)*) };
}
/// Logs at debug level.
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::log_at!(Debug, $($t)*) };
}
// `error!` is used only outside tests (the panic hook).
#[allow(unused_imports)]
pub(crate) use {debug, error, info, log_at};

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::{Line, parse};

    #[test]
    fn values() {
        assert_eq!(parse(None), (0, true));
        assert_eq!(parse(Some(b"")), (0, true));
        assert_eq!(parse(Some(b"off")), (0, true));
        assert_eq!(parse(Some(b"error")), (1, true));
        assert_eq!(parse(Some(b"info")), (2, true));
        assert_eq!(parse(Some(b"debug")), (3, true));
        assert_eq!(parse(Some(b"verbose")), (1, false));
    }

    #[test]
    fn long_lines_are_cut() {
        let mut line = Line {
            buf: [0; 512],
            len: 0,
        };
        let long = "x".repeat(2000);
        let _ = write!(line, "{long}");
        assert_eq!(line.len, 511);
    }
}

//! CPU time of this process: user + system seconds of all its threads (the engine
//! thread included), from `getrusage(RUSAGE_SELF)`.

use std::io;

/// User + system CPU seconds this process has used so far, all threads.
pub fn seconds() -> io::Result<f64> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the live local `ru`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

/// A CPU clock started at creation: [`Stopwatch::elapsed`] gives the CPU seconds
/// since (NaN if `getrusage` failed).
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(f64);

impl Stopwatch {
    /// Starts the clock.
    pub fn start() -> Self {
        Self(seconds().unwrap_or(f64::NAN))
    }

    /// CPU seconds used by this process since [`Stopwatch::start`].
    pub fn elapsed(&self) -> f64 {
        seconds().unwrap_or(f64::NAN) - self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinning_costs_cpu() {
        let w = Stopwatch::start();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 30 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let used = w.elapsed();
        assert!(used > 0.0 && used < 5.0, "{used}");
    }
}

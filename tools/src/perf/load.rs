//! `--load busy`: an unrelated process keeping one core busy for the whole run.

use std::process::{Child, Command, Stdio};

use super::{Res, err};

/// The shell loop that keeps a core busy.
pub const BUSY_LOOP: &str = "while :; do :; done";

/// A running busy loop (`sh -c 'while :; do :; done'`), killed and reaped when
/// dropped, on every path out of the run (errors and panics included).
#[derive(Debug)]
pub struct BusyLoad {
    child: Child,
}

impl BusyLoad {
    /// Starts the busy loop.
    pub fn start() -> Res<Self> {
        let child = Command::new("sh")
            .args(["-c", BUSY_LOOP])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(err("starting the busy load"))?;
        Ok(Self { child })
    }

    /// The busy process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BusyLoad {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_loop_dies_with_its_guard() {
        let load = BusyLoad::start().unwrap();
        let proc_dir = format!("/proc/{}", load.pid());
        assert!(std::path::Path::new(&proc_dir).exists());
        drop(load);
        // Killed and reaped: the process id is gone.
        assert!(!std::path::Path::new(&proc_dir).exists());
    }
}

//! What a relay forwarded, per direction, summed over its sessions and updated as it goes.

use super::fault::Direction;

/// How a direction of a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum End {
    /// Still forwarding (or no session yet).
    #[default]
    Running,
    /// The sending end closed its half; the FIN was passed on (or, after a
    /// `Truncate`, had already been sent).
    Fin,
    /// The relay reset both connections because of a `Reset` fault.
    Reset,
    /// An end reset its connection or a socket call failed; the relay reset the
    /// other end too.
    PeerReset,
    /// The session outlived the plan's deadline; the relay reset both ends.
    Deadline,
    /// The relay was dropped while the session ran; it reset both ends.
    Stopped,
}

/// One direction's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirStats {
    /// Octets of the MPA startup frame (Request or Reply) forwarded.
    pub startup: u64,
    /// Octets after the startup frame forwarded (what fault offsets count).
    pub octets: u64,
    /// Octets after a `Truncate` read and dropped.
    pub dropped: u64,
    /// Writes to the receiving end (segments handed to TCP).
    pub segments: u64,
    /// Octets changed by `Corrupt`.
    pub corrupted: u64,
    /// Stalls done.
    pub stalls: u64,
    /// FINs sent early by `Truncate`.
    pub truncated: u64,
    /// How the direction of the last session that ended it ended.
    pub end: End,
}

/// A relay's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Client connections accepted.
    pub sessions: u64,
    /// Sessions whose connection to the target failed (the client was reset).
    pub connect_failures: u64,
    /// Sessions finished (both directions ended).
    pub finished: u64,
    /// Client to server.
    pub to_server: DirStats,
    /// Server to client.
    pub to_client: DirStats,
}

impl Stats {
    /// The counters of one direction.
    pub fn dir(&self, d: Direction) -> &DirStats {
        match d {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }

    /// The counters of one direction, to update.
    pub fn dir_mut(&mut self, d: Direction) -> &mut DirStats {
        match d {
            Direction::ToServer => &mut self.to_server,
            Direction::ToClient => &mut self.to_client,
        }
    }
}

//! One test as data: which test, its size and settings. A [`Spec`] travels to the
//! peer process as one line of text, and dispatches to the server and client
//! halves of its test.

use std::net::TcpStream;
use std::time::Duration;

use eta_engine::Connection;

use super::eta::{EtaCfg, Swap};
use super::measure::Row;
use super::{Res, read, send, tcp, write};

/// The tests eta-perf can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Raw TCP ping-pong latency.
    TcpLat,
    /// Raw TCP bandwidth.
    TcpBw,
    /// DDP Send ping-pong latency.
    SendLat,
    /// DDP Send bandwidth.
    SendBw,
    /// RDMA Write ping-pong, arrival seen by polling the last octet.
    WriteLatPoll,
    /// RDMA Write ping-pong, each Write followed by a 0-octet Send.
    WriteLatSend,
    /// RDMA Write bandwidth.
    WriteBw,
    /// RDMA Read latency (post -> completion).
    ReadLat,
    /// RDMA Read bandwidth.
    ReadBw,
}

/// Every test with its name on the control line.
const NAMES: [(Test, &str); 9] = [
    (Test::TcpLat, "tcp-lat"),
    (Test::TcpBw, "tcp-bw"),
    (Test::SendLat, "send-lat"),
    (Test::SendBw, "send-bw"),
    (Test::WriteLatPoll, "write-lat-poll"),
    (Test::WriteLatSend, "write-lat-send"),
    (Test::WriteBw, "write-bw"),
    (Test::ReadLat, "read-lat"),
    (Test::ReadBw, "read-bw"),
];

impl Test {
    /// The test's name on the control line.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("?", |(_, n)| n)
    }

    /// Whether the test runs over raw TCP (else over eta).
    pub fn is_tcp(self) -> bool {
        matches!(self, Test::TcpLat | Test::TcpBw)
    }
}

/// One test with everything both ends need to run it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// The test.
    pub test: Test,
    /// Message size in octets.
    pub size: usize,
    /// Messages in flight (bandwidth tests).
    pub window: usize,
    /// Most latency samples or bandwidth messages.
    pub max: usize,
    /// The eta connection's settings (only the spin for raw TCP).
    pub cfg: EtaCfg,
}

impl Spec {
    /// The spec as one line (without the newline), for [`Spec::parse`].
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {} {} {}",
            self.test.name(),
            self.size,
            self.window,
            self.max,
            u8::from(self.cfg.crc),
            u8::from(self.cfg.markers),
            self.cfg.spin.as_nanos()
        )
    }

    /// The spec of a line made by [`Spec::encode`].
    pub fn parse(line: &str) -> Res<Self> {
        let bad = || format!("bad test spec {line:?}");
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, size, window, max, crc, markers, spin] = f[..] else {
            return Err(bad());
        };
        let test = NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(t, _)| *t)
            .ok_or_else(bad)?;
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let size = num(size)? as usize;
        if size == 0 {
            return Err(bad());
        }
        Ok(Spec {
            test,
            size,
            window: num(window)?.max(1) as usize,
            max: num(max)?.max(1) as usize,
            cfg: EtaCfg {
                crc: num(crc)? != 0,
                markers: num(markers)? != 0,
                spin: Duration::from_nanos(num(spin)?),
            },
        })
    }

    /// The server half over raw TCP; gives a count for [`Spec::check`].
    pub fn serve_tcp(&self, s: TcpStream) -> Res<u64> {
        match self.test {
            Test::TcpLat => tcp::lat_server(self, s),
            Test::TcpBw => tcp::bw_server(self, s),
            t => Err(format!("{} is not a raw TCP test", t.name())),
        }
    }

    /// The client half over raw TCP, for `cap`.
    pub fn client_tcp(&self, s: TcpStream, cap: Duration) -> Res<Row> {
        match self.test {
            Test::TcpLat => tcp::lat_client(self, cap, s),
            Test::TcpBw => tcp::bw_client(self, cap, s),
            t => Err(format!("{} is not a raw TCP test", t.name())),
        }
    }

    /// The server half over eta (regions swapped through `x`); gives a count for
    /// [`Spec::check`].
    pub fn serve_eta(&self, conn: Connection, x: &dyn Swap) -> Res<u64> {
        let serve = match self.test {
            Test::SendLat => send::lat_server,
            Test::SendBw => send::bw_server,
            Test::WriteLatPoll => write::lat_poll_server,
            Test::WriteLatSend => write::lat_send_server,
            Test::WriteBw => write::bw_server,
            Test::ReadLat | Test::ReadBw => read::server,
            t => return Err(format!("{} is not an eta test", t.name())),
        };
        serve(self, conn, x)
    }

    /// The client half over eta (regions swapped through `x`), for `cap`.
    pub fn client_eta(&self, conn: Connection, x: &dyn Swap, cap: Duration) -> Res<Row> {
        let client = match self.test {
            Test::SendLat => send::lat_client,
            Test::SendBw => send::bw_client,
            Test::WriteLatPoll => write::lat_poll_client,
            Test::WriteLatSend => write::lat_send_client,
            Test::WriteBw => write::bw_client,
            Test::ReadLat => read::lat_client,
            Test::ReadBw => read::bw_client,
            t => return Err(format!("{} is not an eta test", t.name())),
        };
        client(self, cap, conn, x)
    }

    /// Checks the server's count against the client's row (the Send bandwidth
    /// server counts the messages it received).
    pub fn check(&self, count: u64, row: &Row) -> Res<()> {
        if self.test == Test::SendBw && count != row.iters as u64 {
            return Err(format!(
                "send bw: server received {count} messages of {}",
                row.iters
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_survive_their_line() {
        for (test, _) in NAMES {
            let s = Spec {
                test,
                size: 65536,
                window: 16,
                max: 1000,
                cfg: EtaCfg {
                    crc: true,
                    markers: test == Test::WriteBw,
                    spin: Duration::from_micros(3),
                },
            };
            assert_eq!(Spec::parse(&s.encode()), Ok(s));
        }
        assert!(Spec::parse("send-lat 0 1 1 1 0 0").is_err());
        assert!(Spec::parse("send-lat 1 1 1 1 0").is_err());
        assert!(Spec::parse("atomic-lat 1 1 1 1 0 0").is_err());
    }
}

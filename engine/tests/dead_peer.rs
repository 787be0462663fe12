//! A peer that goes silent — no FIN, no RST, its packets simply stop, as when a host
//! loses power — is detected: the connection fails within `dead_peer_timeout` and
//! outstanding work is flushed. The peer runs in a network namespace of this test's
//! own, reached over a veth pair; taking its end of the link down makes it vanish.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{T, next};
use eta_engine::{CompletionStatus, ConnState, Listener, Options};

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip (Debian package iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A network namespace with one veth link to this one, removed on drop.
struct Netns {
    name: String,
    host_if: String,
    peer_if: String,
    host_addr: String,
    peer_addr: String,
}

impl Netns {
    fn new() -> Result<Self, String> {
        let id = std::process::id() % 200 + 20;
        let n = Netns {
            name: format!("eta-dp-{id}"),
            host_if: format!("etadp{id}a"),
            peer_if: format!("etadp{id}b"),
            host_addr: format!("10.231.{id}.1"),
            peer_addr: format!("10.231.{id}.2"),
        };
        // Leftovers of an earlier run that was killed before its cleanup.
        let _ = ip(&["netns", "del", &n.name]);
        let _ = ip(&["link", "del", &n.host_if]);
        ip(&["netns", "add", &n.name])?;
        ip(&[
            "link", "add", &n.host_if, "type", "veth", "peer", "name", &n.peer_if,
        ])?;
        ip(&["link", "set", &n.peer_if, "netns", &n.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", n.host_addr),
            "dev",
            &n.host_if,
        ])?;
        ip(&["link", "set", &n.host_if, "up"])?;
        let ns = |args: &[&str]| {
            let mut v = vec!["netns", "exec", &n.name, "ip"];
            v.extend_from_slice(args);
            ip(&v)
        };
        ns(&[
            "addr",
            "add",
            &format!("{}/30", n.peer_addr),
            "dev",
            &n.peer_if,
        ])?;
        ns(&["link", "set", &n.peer_if, "up"])?;
        ns(&["link", "set", "lo", "up"])?;
        Ok(n)
    }

    /// The peer vanishes: its end of the link goes down, packets are dropped.
    fn cut(&self) -> Result<(), String> {
        ip(&[
            "netns",
            "exec",
            &self.name,
            "ip",
            "link",
            "set",
            &self.peer_if,
            "down",
        ])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn silent_peer_fails_the_connection_and_flushes_work() {
    let net =
        Netns::new().unwrap_or_else(|e| panic!("cannot create the test network namespace: {e}"));
    let opts = Options {
        dead_peer_timeout: Some(Duration::from_secs(3)),
        ..Options::default()
    };
    let listener = Listener::bind((net.host_addr.as_str(), 0), opts).unwrap();
    let port = listener.local_addr().unwrap().port();
    // The peer sends five 1 MiB messages and one of 64 MiB, then waits.
    let peer = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.name,
            env!("CARGO_BIN_EXE_eta-engine-peer"),
            "send",
        ])
        .arg(format!("{}:{port}", net.host_addr))
        .spawn()
        .unwrap();
    let _peer = Killed(peer);
    let conn = listener.accept().unwrap();
    for k in 0..5 {
        conn.post_recv(k, vec![0; 1 << 20]).unwrap();
    }
    for k in 0..5 {
        let c = next(conn.recv_cq());
        assert_eq!((c.wr_id, c.status), (k, CompletionStatus::Success));
    }
    // Nothing more will arrive once the link is cut mid-message: the receive for
    // the big message must still complete, flushed, when the peer is found dead.
    conn.post_recv(5, vec![0; 64 << 20]).unwrap();
    net.cut().unwrap();
    let cut_at = Instant::now();
    let c = next(conn.recv_cq());
    assert_eq!((c.wr_id, c.status), (5, CompletionStatus::Flushed));
    assert_eq!(conn.state(), ConnState::Failed);
    let why = conn.error().unwrap();
    assert!(why.contains("lost"), "{why}");
    assert!(
        cut_at.elapsed() < T.unwrap(),
        "detected only after {:?}",
        cut_at.elapsed()
    );
}

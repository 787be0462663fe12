//! The engine starts with the first connection, never before, and an idle engine
//! thread sleeps in the kernel (no CPU) instead of spinning.

mod common;

use std::time::{Duration, Instant};

use common::{next, pair};
use eta_engine::{Options, SendOptions};

/// The engine threads of this process: (name, state letter from /proc).
fn engine_threads() -> Vec<(String, char)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.starts_with("eta-engine") {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
        // The state follows the parenthesized command name.
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        out.push((comm.trim().to_string(), state));
    }
    out
}

#[test]
fn engine_starts_lazily_and_sleeps_when_idle() {
    assert!(!eta_engine::started());
    assert!(
        engine_threads().is_empty(),
        "no engine thread before the first connection"
    );
    let (a, b) = pair(Options::default());
    assert!(eta_engine::started());
    b.post_recv(1, vec![0; 8]).unwrap();
    a.post_send(2, b"ping".to_vec(), SendOptions::default())
        .unwrap();
    next(b.recv_cq());
    next(a.send_cq());
    // Once idle longer than its spin time, the thread parks in epoll_wait: state S.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let threads = engine_threads();
        assert_eq!(threads.len(), 1, "ETA_ENGINES defaults to one thread");
        if threads[0].1 == 'S' {
            // And it stays asleep over many observations.
            let asleep = (0..50)
                .filter(|_| {
                    std::thread::sleep(Duration::from_millis(2));
                    engine_threads()[0].1 == 'S'
                })
                .count();
            assert!(
                asleep >= 45,
                "idle engine thread found running {} of 50 times",
                50 - asleep
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "engine thread never went to sleep"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

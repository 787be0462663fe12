//! STags handed to peers carry random keys: knowing its own STags tells a peer
//! nothing about the process's other regions (docs/architecture.md, "STags and what a
//! peer can guess").

mod common;

use std::collections::HashSet;

use common::pair;
use eta_engine::{Access, Options};

#[test]
fn keys_are_random_and_wide() {
    let (a, b) = pair(Options::default());
    // Regions of two connections, registered in turns, as a server would.
    let mut stags = Vec::new();
    let mut regions = Vec::new();
    for i in 0..2048 {
        let c = if i % 2 == 0 { &a } else { &b };
        let r = c.register(vec![0u8; 8], Access::REMOTE_WRITE).unwrap();
        stags.push(r.remote(0).stag.0);
        regions.push(r);
    }
    // 16 bits of key, 16 of index: the index part counts up, the key part must not
    // follow any rule (the old scheme added 0x35 per new slot).
    let keys: Vec<u32> = stags.iter().map(|s| s & 0xFFFF).collect();
    let distinct: HashSet<u32> = keys.iter().copied().collect();
    assert!(
        distinct.len() > 1900,
        "only {} distinct keys",
        distinct.len()
    );
    let steps: HashSet<u32> = keys
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]) & 0xFFFF)
        .collect();
    assert!(steps.len() > 1900, "only {} distinct steps", steps.len());
    drop(regions);
}

/// Run by [`two_processes_draw_different_keys`] in a child process: prints the
/// STags of 16 fresh regions.
#[test]
fn child_prints_stags() {
    if std::env::var_os("ETA_STAG_KEYS_CHILD").is_none() {
        return;
    }
    let (a, _b) = pair(Options::default());
    let regions: Vec<_> = (0..16)
        .map(|_| a.register(vec![0u8; 8], Access::REMOTE_WRITE).unwrap())
        .collect();
    let stags: Vec<String> = regions
        .iter()
        .map(|r| format!("{:08x}", r.remote(0).stag.0))
        .collect();
    println!("stags: {}", stags.join(" "));
}

#[test]
fn two_processes_draw_different_keys() {
    // A table seeded the same way in every process (a predictable sequence) would
    // give every process the same STags: a peer could read them off its own.
    let run = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_prints_stags", "--nocapture"])
            .env("ETA_STAG_KEYS_CHILD", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.split_once("stags: ").map(|(_, s)| s.to_string()))
            .expect("the child printed its STags")
    };
    let (one, two) = (run(), run());
    assert_eq!(one.split(' ').count(), 16);
    assert_ne!(one, two, "two processes registered the same STags");
}

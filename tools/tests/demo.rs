//! The README's demo runs to the end and shows each step working.

use std::process::Command;

#[test]
fn demo_runs_and_every_step_succeeds() {
    let out = Command::new(env!("CARGO_BIN_EXE_eta-demo"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "negotiated: Rev 2, CRC true",
        "identical: true",
        "MPA error code 0x02",
        "B's memory holds the 20000 B A wrote: true; A's Read brought them back: true",
        "A received a Terminate",
        "RDMA Read brought back \"written by RDMA Write\"",
        "server: got \"hello over eta\"; its region now starts with \"written by RDMA Writ\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

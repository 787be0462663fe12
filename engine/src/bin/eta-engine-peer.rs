//! A peer process for the engine's fault tests, and a minimal client:
//! `eta-engine-peer send ADDR` connects to ADDR, sends five 1 MiB messages and then
//! one 64 MiB message, and waits to be killed.

use eta_engine::{Connection, Options, SendOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(addr)) = (args.get(1), args.get(2)) else {
        return Err("usage: eta-engine-peer send ADDR".into());
    };
    if mode != "send" {
        return Err(format!("unknown mode {mode}").into());
    }
    let conn = Connection::connect(addr.as_str(), Options::default())?;
    for wr in 0..5 {
        conn.post_send(wr, vec![7u8; 1 << 20], SendOptions::default())?;
    }
    conn.post_send(5, vec![7u8; 64 << 20], SendOptions::default())?;
    loop {
        std::thread::park();
    }
}

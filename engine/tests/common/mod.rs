//! Helpers for the engine tests.
#![allow(dead_code)]

use std::thread;
use std::time::Duration;

use eta_engine::{Completion, CompletionQueue, Connection, Listener, Options};

/// Generous bound for any single wait: a test fails instead of hanging.
pub const T: Option<Duration> = Some(Duration::from_secs(60));

/// A connected pair on `host`: (initiator, responder).
pub fn pair_on(host: &str, client: Options, server: Options) -> (Connection, Connection) {
    let listener = Listener::bind((host, 0), server).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || listener.accept().unwrap());
    let c = Connection::connect(addr, client).unwrap();
    (c, t.join().unwrap())
}

/// A connected pair on 127.0.0.1 with the same options on both ends.
pub fn pair(opts: Options) -> (Connection, Connection) {
    pair_on("127.0.0.1", opts.clone(), opts)
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

/// Waits for the next completion or panics.
pub fn next(cq: &CompletionQueue) -> Completion {
    cq.wait(T)
        .unwrap()
        .expect("completion within the time limit")
}

/// The payload of a receive completion.
pub fn payload(c: Completion) -> Vec<u8> {
    let mut b = c.buffer.expect("receive buffer");
    b.truncate(c.byte_len as usize);
    b
}

//! The relay on plain sockets: offsets after the startup frame, corruption,
//! truncation and resets seen octet for octet, and a drop that ends everything.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use eta_mpa::LocalConfig;
use eta_mpa::startup::negotiate;

use super::*;

const BOUND: Duration = Duration::from_secs(10);

fn request() -> Vec<u8> {
    negotiate::request(&LocalConfig::default(), b"pd")
        .unwrap()
        .to_vec()
        .unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A server behind a relay with `faults`: (relay, client, server).
fn through(faults: Vec<Fault>) -> (Relay, TcpStream, TcpStream) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let plan = Plan {
        faults,
        seed: 9,
        deadline: BOUND,
        max_sessions: Some(1),
        verbose: false,
    };
    let relay = Relay::on_loopback(server.local_addr().unwrap(), plan).unwrap();
    let client = TcpStream::connect(relay.local_addr()).unwrap();
    let (server, _) = server.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(BOUND)).unwrap();
    }
    (relay, client, server)
}

#[test]
fn corrupts_and_truncates_counting_after_the_startup_frame() {
    let faults = vec![
        Fault::Resegment { min: 1, max: 4096 },
        Fault::Corrupt {
            direction: Direction::ToServer,
            at_octet: 1000,
            mask: 0x5a,
        },
        Fault::Truncate {
            direction: Direction::ToServer,
            after_octets: 50_000,
        },
    ];
    let (relay, mut client, mut server) = through(faults);
    let (req, body) = (request(), data(100_000));
    let writer = thread::spawn(move || {
        client.write_all(&req).unwrap();
        client.write_all(&body).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        client
    });
    let mut got = Vec::new();
    server.read_to_end(&mut got).unwrap();
    let mut want = request();
    let mut body = data(50_000);
    body[1000] ^= 0x5a;
    want.extend_from_slice(&body);
    let diff = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "the Request intact, 50,000 octets, one flipped: {} octets, want {}, first difference at {diff:?}",
        got.len(),
        want.len()
    );
    drop(server);
    let mut client = writer.join().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let st = relay.wait();
    let c2s = st.to_server;
    assert_eq!(
        (
            c2s.startup,
            c2s.octets,
            c2s.dropped,
            c2s.corrupted,
            c2s.truncated
        ),
        (request().len() as u64, 50_000, 50_000, 1, 1)
    );
    assert!(c2s.segments > 20, "resegmented: {c2s:?}");
    assert_eq!(
        (c2s.end, st.to_client.end, st.finished),
        (End::Fin, End::Fin, 1)
    );
}

fn assert_reset(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("a FIN where an RST was due"),
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
                return;
            }
        }
    }
}

#[test]
fn reset_reaches_both_ends() {
    let faults = vec![Fault::Reset {
        direction: Direction::ToClient,
        after_octets: 10,
    }];
    let (relay, mut client, mut server) = through(faults);
    let cfg = LocalConfig::default();
    let req = negotiate::request(&cfg, &[]).unwrap();
    let n = negotiate::on_request(&cfg, &req).unwrap();
    let reply = negotiate::reply(&cfg, &req, &n, &[]).unwrap();
    server.write_all(&reply.to_vec().unwrap()).unwrap();
    server.write_all(&data(100)).unwrap();
    assert_reset(&mut client);
    assert_reset(&mut server);
    let st = relay.wait();
    assert_eq!(st.to_client.octets, 10);
    assert_eq!(
        (st.to_client.end, st.to_server.end),
        (End::Reset, End::Reset)
    );
}

#[test]
fn drop_resets_running_sessions_and_joins() {
    let (relay, mut client, mut server) = through(Vec::new());
    let t = Instant::now();
    drop(relay);
    assert!(t.elapsed() < BOUND);
    assert_reset(&mut client);
    assert_reset(&mut server);
}

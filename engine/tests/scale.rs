//! Many connections and many threads: shared completion queues across 100
//! connections, 8 application threads posting to one connection, 1,000 concurrent
//! connections.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread;

use common::{T, next, pair, pattern, payload};
use eta_engine::{CompletionQueue, CompletionStatus, Connection, Listener, Options, SendOptions};

/// Raises the open-file limit to the hard limit (each connection here has two
/// sockets in this process).
fn raise_nofile(need: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read one rlimit struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= need,
        "open-file hard limit {} is below {need}",
        lim.rlim_max
    );
}

fn shared_opts(cq: &CompletionQueue) -> Options {
    Options {
        send_cq: Some(cq.clone()),
        recv_cq: Some(cq.clone()),
        ..Options::default()
    }
}

#[test]
fn shared_completion_queue_across_100_connections() {
    raise_nofile(1000);
    let server_cq = CompletionQueue::new().unwrap();
    let listener = Listener::bind("127.0.0.1:0", shared_opts(&server_cq)).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = thread::spawn(move || {
        (0..100)
            .map(|_| listener.accept().unwrap())
            .collect::<Vec<_>>()
    });
    let client_cq = CompletionQueue::new().unwrap();
    let clients: Vec<Connection> = (0..100)
        .map(|_| Connection::connect(addr, shared_opts(&client_cq)).unwrap())
        .collect();
    let servers = acceptor.join().unwrap();
    for s in &servers {
        for k in 0..10 {
            s.post_recv(k, vec![0; 32]).unwrap();
        }
    }
    for (i, c) in clients.iter().enumerate() {
        for k in 0..10u64 {
            c.post_send(k, format!("{i}:{k}").into_bytes(), SendOptions::default())
                .unwrap();
        }
    }
    // Every completion of every connection comes out of the one shared queue, in
    // order per connection.
    let peer_of: HashMap<u64, usize> = servers
        .iter()
        .map(|s| {
            let port = s.peer_addr().port();
            let i = clients
                .iter()
                .position(|c| c.local_addr().port() == port)
                .unwrap();
            (s.id(), i)
        })
        .collect();
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for _ in 0..1000 {
        let c = next(&server_cq);
        assert_eq!(c.status, CompletionStatus::Success);
        let k = seen.entry(c.conn).or_default();
        assert_eq!(c.wr_id, *k, "receives complete in order per connection");
        let i = peer_of[&c.conn];
        assert_eq!(payload(c), format!("{i}:{k}").into_bytes());
        *k += 1;
    }
    assert_eq!(seen.len(), 100);
    let mut sends = 0;
    while sends < 1000 {
        assert_eq!(next(&client_cq).status, CompletionStatus::Success);
        sends += 1;
    }
    assert!(server_cq.is_empty() && client_cq.is_empty());
}

#[test]
fn eight_threads_post_to_one_connection() {
    let (a, b) = pair(Options {
        max_wr: 8192,
        ..Options::default()
    });
    const PER: u64 = 500;
    for k in 0..8 * PER {
        b.post_recv(k, vec![0; 16]).unwrap();
    }
    let a = Arc::new(a);
    let posters: Vec<_> = (0..8u64)
        .map(|t| {
            let a = Arc::clone(&a);
            thread::spawn(move || {
                for k in 0..PER {
                    let msg = [t.to_be_bytes(), k.to_be_bytes()].concat();
                    a.post_send(t << 32 | k, msg, SendOptions::default())
                        .unwrap();
                }
            })
        })
        .collect();
    for p in posters {
        p.join().unwrap();
    }
    let mut next_k = [0u64; 8];
    for _ in 0..8 * PER {
        let m = payload(next(b.recv_cq()));
        let t = u64::from_be_bytes(m[..8].try_into().unwrap()) as usize;
        let k = u64::from_be_bytes(m[8..].try_into().unwrap());
        assert_eq!(
            k, next_k[t],
            "thread {t}'s messages arrive in its posting order"
        );
        next_k[t] += 1;
    }
    assert_eq!(next_k, [PER; 8]);
    let mut done = 0;
    while done < 8 * PER {
        assert_eq!(next(a.send_cq()).status, CompletionStatus::Success);
        done += 1;
    }
}

#[test]
fn a_thousand_concurrent_connections() {
    raise_nofile(4200);
    let server_cq = CompletionQueue::new().unwrap();
    let client_cq = CompletionQueue::new().unwrap();
    let listener = Listener::bind("127.0.0.1:0", shared_opts(&server_cq)).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = thread::spawn(move || {
        (0..1000)
            .map(|_| listener.accept().unwrap())
            .collect::<Vec<_>>()
    });
    // Four connecting threads.
    let connectors: Vec<_> = (0..4)
        .map(|_| {
            let cq = client_cq.clone();
            thread::spawn(move || {
                (0..250)
                    .map(|_| Connection::connect(addr, shared_opts(&cq)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let clients: Vec<Connection> = connectors
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let servers = acceptor.join().unwrap();
    assert_eq!((clients.len(), servers.len()), (1000, 1000));
    // All open at once: each server echoes one message back to its client.
    for s in &servers {
        s.post_recv(1, vec![0; 64]).unwrap();
    }
    for (i, c) in clients.iter().enumerate() {
        c.post_recv(2, vec![0; 64]).unwrap();
        c.post_send(3, pattern(40, i as u8), SendOptions::default())
            .unwrap();
    }
    let by_id: HashMap<u64, &Connection> = servers.iter().map(|s| (s.id(), s)).collect();
    let mut echoed = 0;
    while echoed < 1000 {
        let c = next(&server_cq);
        match c.op {
            eta_engine::CompletionOp::Recv => {
                let conn = by_id[&c.conn];
                conn.post_send(4, payload(c), SendOptions::default())
                    .unwrap();
                echoed += 1;
            }
            _ => assert_eq!(c.status, CompletionStatus::Success),
        }
    }
    let mut back = 0;
    while back < 1000 {
        let c = client_cq.wait(T).unwrap().expect("echo");
        assert_eq!(c.status, CompletionStatus::Success);
        if c.op == eta_engine::CompletionOp::Recv {
            assert_eq!(c.byte_len, 40);
            back += 1;
        }
    }
}

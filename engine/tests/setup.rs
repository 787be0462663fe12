//! Connection setup: private data both ways, reject, markers refused, Rev 1 fallback,
//! and the Request/Reply time-outs.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::pair_on;
use eta_engine::{Connection, Decision, Error, Listener, LocalConfig, Options};
use eta_mpa::{FrameKind, NegotiationError, ReadProgress, StartupReader, StartupRepr};

#[test]
fn private_data_both_ways() {
    let client = Options {
        private_data: b"from the initiator".to_vec(),
        ..Options::default()
    };
    let server = Options {
        private_data: b"from the responder".to_vec(),
        ..Options::default()
    };
    let (a, b) = pair_on("127.0.0.1", client, server);
    assert_eq!(a.peer_private_data(), b"from the responder");
    assert_eq!(b.peer_private_data(), b"from the initiator");
    assert_eq!(a.negotiated().revision, 2);
    assert_eq!(a.negotiated().rtr, Some(eta_engine::RtrType::Write));
}

#[test]
fn reject_carries_private_data_and_the_listener_goes_on() {
    let filter: eta_engine::AcceptFilter = Arc::new(|pd: &[u8]| {
        if pd == b"let me in" {
            Decision::Accept(b"welcome".to_vec())
        } else {
            Decision::Reject(b"go away".to_vec())
        }
    });
    let listener = Listener::bind(
        "127.0.0.1:0",
        Options {
            accept_filter: Some(filter),
            ..Options::default()
        },
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let first = listener.accept();
        let second = listener.accept();
        (
            first.map(|_| ()),
            second.map(|c| c.peer_private_data().to_vec()),
        )
    });
    let refused = Connection::connect(
        addr,
        Options {
            private_data: b"hi".to_vec(),
            ..Options::default()
        },
    )
    .unwrap_err();
    assert_eq!(refused.reject_private_data(), Some(&b"go away"[..]));
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let ok = Connection::connect(
        addr,
        Options {
            private_data: b"let me in".to_vec(),
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(ok.peer_private_data(), b"welcome");
    let (first, second) = server.join().unwrap();
    assert!(first.is_err());
    assert_eq!(second.unwrap(), b"let me in");
}

#[test]
fn markers_refused_by_a_responder_that_does_not_send_them() {
    // Like siw: a Responder that does not send markers rejects a Request with M=1.
    let server = Options {
        mpa: LocalConfig {
            send_markers: false,
            ..LocalConfig::default()
        },
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", server).unwrap();
    let addr = listener.local_addr().unwrap();
    let t = thread::spawn(move || listener.accept().map(|_| ()));
    let client = Options {
        mpa: LocalConfig {
            want_markers: true,
            ..LocalConfig::default()
        },
        ..Options::default()
    };
    let err = Connection::connect(addr, client).unwrap_err();
    assert!(
        matches!(err, Error::Negotiation(NegotiationError::Rejected { .. })),
        "{err}"
    );
    assert!(matches!(
        t.join().unwrap(),
        Err(Error::Negotiation(NegotiationError::MarkersUnsupported))
    ));
}

/// An RFC 5044-only Responder: closes on an enhanced Request, answers a Rev 1 one.
fn rev1_only_server(listener: TcpListener) -> Vec<u8> {
    let mut revs = Vec::new();
    for _ in 0..2 {
        let (mut s, _) = listener.accept().unwrap();
        let mut r = StartupReader::new(FrameKind::Request);
        let mut buf = [0u8; 600];
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            if let ReadProgress::Complete { .. } = r.push(&buf[..n]).unwrap() {
                break;
            }
        }
        let req = r.frame().unwrap();
        revs.push(req.rev);
        if req.rev == 2 {
            continue; // drop: close without a Reply
        }
        let reply = StartupRepr {
            kind: FrameKind::Reply,
            reject: false,
            private_data: &[],
            ..req.clone()
        };
        s.write_all(&reply.to_vec().unwrap()).unwrap();
        // Keep the socket until the client is done.
        let _ = s.read(&mut buf);
        break;
    }
    revs
}

#[test]
fn rev1_fallback_after_an_unenhanced_peer_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || rev1_only_server(listener));
    let c = Connection::connect(addr, Options::default()).unwrap();
    assert_eq!(c.negotiated().revision, 1);
    assert!(!c.negotiated().enhanced);
    drop(c);
    assert_eq!(server.join().unwrap(), vec![2, 1]);
}

#[test]
fn without_fallback_the_close_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
    });
    let err = Connection::connect(
        addr,
        Options {
            rev1_fallback: false,
            ..Options::default()
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::PeerClosed), "{err}");
    server.join().unwrap();
}

#[test]
fn reply_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(2));
        drop(s);
    });
    let opts = Options {
        reply_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let err = Connection::connect(addr, opts).unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    server.join().unwrap();
}

#[test]
fn request_timeout_and_garbage_request() {
    let opts = Options {
        request_timeout: Duration::from_millis(300),
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = TcpStream::connect(addr).unwrap();
    assert!(matches!(listener.accept(), Err(Error::Timeout)));
    drop(silent);
    let mut http = TcpStream::connect(addr).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let err = listener.accept().unwrap_err();
    assert!(
        matches!(err, Error::Mpa(eta_mpa::MpaError::BadKey)),
        "{err}"
    );
}

#[test]
fn every_rtr_type_opens_full_operation() {
    use eta_engine::{RtrType, RtrTypes, SendOptions};
    for (offer, want) in [
        (
            RtrTypes {
                write: true,
                ..RtrTypes::default()
            },
            RtrType::Write,
        ),
        (
            RtrTypes {
                read: true,
                ..RtrTypes::default()
            },
            RtrType::Read,
        ),
        (
            RtrTypes {
                send: true,
                ..RtrTypes::default()
            },
            RtrType::Send,
        ),
    ] {
        let client = Options {
            mpa: LocalConfig {
                rtr: offer,
                ..LocalConfig::default()
            },
            ..Options::default()
        };
        let server = Options {
            mpa: LocalConfig {
                rtr: RtrTypes {
                    send: true,
                    write: true,
                    read: true,
                },
                ..LocalConfig::default()
            },
            ..Options::default()
        };
        let (a, b) = pair_on("127.0.0.1", client, server);
        assert_eq!(a.negotiated().rtr, Some(want));
        assert_eq!(b.negotiated().rtr, Some(want));
        // The Responder speaks first: it may only once the RTR arrived.
        a.post_recv(1, vec![0; 16]).unwrap();
        b.post_send(2, b"after the RTR".to_vec(), SendOptions::default())
            .unwrap();
        let c = common::next(a.recv_cq());
        assert_eq!(common::payload(c), b"after the RTR", "{want:?}");
        // And the RTR itself completes nothing at the Responder.
        assert_eq!(common::next(b.send_cq()).wr_id, 2);
        assert!(b.recv_cq().is_empty());
    }
}

#[test]
fn a_silent_client_does_not_hold_up_the_next_one() {
    // With a long Request time-out, a client that connects and says nothing must
    // not delay a well-behaved client behind it: setups run side by side.
    let opts = Options {
        request_timeout: Duration::from_secs(120),
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = TcpStream::connect(addr).unwrap();
    let good = thread::spawn(move || Connection::connect(addr, Options::default()).unwrap());
    let accepted = listener.accept().expect("the good client's connection");
    let good = good.join().unwrap();
    assert_eq!(accepted.peer_addr(), good.local_addr());
    drop(silent);
}

#[test]
fn a_responder_may_be_allowed_to_send_first() {
    // No RTR (client-server model) and the server speaks first, as ucmatose does:
    // with `responder_sends_first` the Responder's Send goes out at once.
    let server_opts = Options {
        responder_sends_first: true,
        ..Options::default()
    };
    let listener = Listener::bind("127.0.0.1:0", server_opts).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let conn = listener.accept().unwrap();
        conn.post_send(1, b"server first".to_vec(), Default::default())
            .unwrap();
        let c = conn.send_cq().wait(Some(Duration::from_secs(10))).unwrap();
        assert!(c.is_some(), "the Responder's Send never completed");
        conn
    });
    let mut opts = Options::default();
    opts.mpa.peer_to_peer = false;
    let client = Connection::connect(addr, opts).unwrap();
    assert_eq!(client.negotiated().rtr, None);
    client.post_recv(2, vec![0; 64]).unwrap();
    let c = client
        .recv_cq()
        .wait(Some(Duration::from_secs(10)))
        .unwrap()
        .expect("the server's first message");
    assert_eq!(&c.buffer.unwrap()[..c.byte_len as usize], b"server first");
    drop(server.join().unwrap());
}

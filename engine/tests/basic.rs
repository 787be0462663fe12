//! eta ↔ eta over loopback (IPv4 and IPv6): Send/Recv from 0 B to 64 MiB, RDMA Write
//! and Read with data verification, Send with Invalidate, solicited events, CRC and
//! markers on and off.

mod common;

use common::{T, next, pair, pair_on, pattern, payload};
use eta_engine::{
    Access, CompletionOp, CompletionStatus, ConnState, LocalConfig, Options, SendOptions,
};

fn send_recv_sizes(host: &str, opts: Options, sizes: &[usize]) {
    let (a, b) = pair_on(host, opts.clone(), opts);
    for (i, &len) in sizes.iter().enumerate() {
        let data = pattern(len, i as u8);
        b.post_recv(100 + i as u64, vec![0; len + 7]).unwrap();
        a.post_send(i as u64, data.clone(), SendOptions::default())
            .unwrap();
        let s = next(a.send_cq());
        assert_eq!(
            (s.wr_id, s.op, s.status, s.byte_len as usize),
            (i as u64, CompletionOp::Send, CompletionStatus::Success, len)
        );
        assert_eq!(
            s.buffer.as_deref(),
            Some(&data[..]),
            "send buffer handed back"
        );
        let r = next(b.recv_cq());
        assert_eq!(
            (r.wr_id, r.op, r.status),
            (
                100 + i as u64,
                CompletionOp::Recv,
                CompletionStatus::Success
            )
        );
        assert!(payload(r) == data, "payload of {len} B");
    }
}

#[test]
fn send_recv_0_to_64_mib_ipv4() {
    send_recv_sizes(
        "127.0.0.1",
        Options::default(),
        &[0, 1, 5, 1000, 1460, 65_536, 1 << 20, 64 << 20],
    );
}

#[test]
fn send_recv_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        panic!("IPv6 loopback (::1) is not available on this machine");
    }
    send_recv_sizes("::1", Options::default(), &[0, 3, 100_000, 4 << 20]);
}

#[test]
fn crc_and_markers_matrix() {
    for crc in [false, true] {
        for markers in [false, true] {
            let opts = Options {
                mpa: LocalConfig {
                    crc,
                    want_markers: markers,
                    ..LocalConfig::default()
                },
                ..Options::default()
            };
            let (a, b) = pair(opts.clone());
            assert_eq!(a.negotiated().crc, crc);
            assert_eq!(
                (a.negotiated().markers_tx, a.negotiated().markers_rx),
                (markers, markers)
            );
            for (i, len) in [0usize, 511, 512, 513, 70_000, 2 << 20]
                .into_iter()
                .enumerate()
            {
                let data = pattern(len, i as u8 + 40);
                b.post_recv(i as u64, vec![0; len]).unwrap();
                a.post_send(i as u64, data.clone(), SendOptions::default())
                    .unwrap();
                assert_eq!(next(a.send_cq()).status, CompletionStatus::Success);
                assert!(
                    payload(next(b.recv_cq())) == data,
                    "crc {crc} markers {markers} len {len}"
                );
            }
            let region = b
                .register(vec![0; 1 << 20], Access::REMOTE_WRITE | Access::REMOTE_READ)
                .unwrap();
            let data = pattern(700_001, 3);
            a.post_write(9, data.clone(), region.remote(13)).unwrap();
            assert_eq!(next(a.send_cq()).status, CompletionStatus::Success);
            let sink = a.register(vec![0; 700_001], Access::LOCAL_WRITE).unwrap();
            a.post_read(10, &sink, 0, 700_001, region.remote(13))
                .unwrap();
            assert_eq!(next(a.send_cq()).status, CompletionStatus::Success);
            let mut got = vec![0; 700_001];
            sink.read(0, &mut got).unwrap();
            assert!(got == data, "crc {crc} markers {markers}: read back");
        }
    }
}

#[test]
fn large_payloads_are_received_straight_into_place() {
    let (a, b) = pair(Options::default());
    let data = pattern(16 << 20, 77);
    b.post_recv(1, vec![0; 16 << 20]).unwrap();
    a.post_send(2, data.clone(), SendOptions::default())
        .unwrap();
    assert!(payload(next(b.recv_cq())) == data);
    let region = b.register(vec![0; 16 << 20], Access::REMOTE_WRITE).unwrap();
    a.post_write(3, data.clone(), region.remote(0)).unwrap();
    b.post_recv(4, vec![0; 8]).unwrap();
    a.post_send(5, vec![1], SendOptions::default()).unwrap();
    next(b.recv_cq());
    let mut placed = vec![0; 16 << 20];
    region.read(0, &mut placed).unwrap();
    assert!(placed == data);
    // Most of 32 MiB went from the socket into its destination with no copy.
    let s = b.rx_stats();
    assert_eq!(s.direct + s.copied, 2 * (16 << 20) + 1);
    assert!(s.direct > 28 << 20, "{s:?}");
}

#[test]
fn rdma_write_and_read_verified() {
    let (a, b) = pair(Options::default());
    let region = b
        .register(
            vec![0u8; 4 << 20],
            Access::REMOTE_WRITE | Access::REMOTE_READ,
        )
        .unwrap();
    let data = pattern(3 << 20, 9);
    a.post_write(1, data.clone(), region.remote(4096)).unwrap();
    let c = next(a.send_cq());
    assert_eq!(
        (c.op, c.status),
        (CompletionOp::Write, CompletionStatus::Success)
    );
    // A Write completes at the initiator when the kernel took it; a Send posted after
    // it arrives after the Write is placed (RDMAP ordering), and the target gets no
    // completion for the Write itself (RFC 5040).
    b.post_recv(50, vec![0; 8]).unwrap();
    a.post_send(51, b"done".to_vec(), SendOptions::default())
        .unwrap();
    next(a.send_cq());
    let r = next(b.recv_cq());
    assert_eq!(r.wr_id, 50);
    assert!(b.recv_cq().is_empty() && b.send_cq().is_empty());
    let mut placed = vec![0u8; 3 << 20];
    region.read(4096, &mut placed).unwrap();
    assert!(placed == data);
    // And reads it back, in two halves into one local region.
    let sink = a.register(vec![0u8; 3 << 20], Access::LOCAL_WRITE).unwrap();
    let half = (3 << 20) / 2;
    a.post_read(2, &sink, 0, half as u32, region.remote(4096))
        .unwrap();
    a.post_read(
        3,
        &sink,
        half as u64,
        half as u32,
        region.remote(4096 + half as u64),
    )
    .unwrap();
    for wr in [2, 3] {
        let c = next(a.send_cq());
        assert_eq!(
            (c.wr_id, c.op, c.status, c.byte_len as usize),
            (wr, CompletionOp::Read, CompletionStatus::Success, half)
        );
    }
    let mut got = vec![0u8; 3 << 20];
    sink.read(0, &mut got).unwrap();
    assert!(got == data);
}

#[test]
fn solicited_and_send_with_invalidate() {
    let (a, b) = pair(Options::default());
    let region = b.register(vec![0u8; 4096], Access::REMOTE_WRITE).unwrap();
    for i in 0..3 {
        b.post_recv(i, vec![0; 64]).unwrap();
    }
    a.post_send(1, b"plain".to_vec(), SendOptions::default())
        .unwrap();
    a.post_send(
        2,
        b"solicited".to_vec(),
        SendOptions {
            solicited: true,
            invalidate: None,
        },
    )
    .unwrap();
    a.post_send(
        3,
        b"invalidate".to_vec(),
        SendOptions {
            solicited: false,
            invalidate: Some(region.stag()),
        },
    )
    .unwrap();
    let r: Vec<_> = (0..3).map(|_| next(b.recv_cq())).collect();
    assert_eq!(
        r.iter().map(|c| c.solicited).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!(r[2].invalidated, Some(region.stag()));
    assert!(r.iter().all(|c| c.status == CompletionStatus::Success));
    // The invalidated region no longer accepts Writes: the next one is terminated.
    a.post_write(4, vec![1; 16], region.remote(0)).unwrap();
    for _ in 0..3 {
        next(a.send_cq());
    }
    let deadline = std::time::Instant::now() + T.unwrap();
    while a.state() != ConnState::Failed && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(a.state(), ConnState::Failed);
    let why = a.error().unwrap();
    assert!(why.contains("terminated"), "{why}");
}

//! eta ↔ eta over loopback: Send/Recv, RDMA Write and Read with data verification.

use std::thread;
use std::time::Duration;

use eta_engine::{
    Access, CompletionOp, CompletionStatus, Connection, Listener, Options, SendOptions,
};

const T: Option<Duration> = Some(Duration::from_secs(30));

fn pair(opts: Options) -> (Connection, Connection) {
    let listener = Listener::bind("127.0.0.1:0", opts.clone()).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || listener.accept().unwrap());
    let client = Connection::connect(addr, opts).unwrap();
    (client, server.join().unwrap())
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn send_recv_sizes() {
    let (a, b) = pair(Options::default());
    for (i, len) in [0usize, 1, 5, 1000, 65_536, 1 << 20, 8 << 20].into_iter().enumerate() {
        let data = pattern(len, i as u8);
        b.post_recv(100 + i as u64, vec![0; len + 7]).unwrap();
        a.post_send(i as u64, data.clone(), SendOptions::default()).unwrap();
        let s = a.send_cq().wait(T).unwrap().expect("send completion");
        assert_eq!((s.wr_id, s.op, s.status), (i as u64, CompletionOp::Send, CompletionStatus::Success));
        let r = b.recv_cq().wait(T).unwrap().expect("recv completion");
        assert_eq!((r.wr_id, r.status, r.byte_len as usize), (100 + i as u64, CompletionStatus::Success, len));
        assert!(r.buffer.unwrap()[..len] == data[..], "payload of {len} B");
    }
}

#[test]
fn rdma_write_and_read() {
    let (a, b) = pair(Options::default());
    let region = b.register(vec![0u8; 4 << 20], Access::REMOTE_WRITE | Access::REMOTE_READ).unwrap();
    let data = pattern(3 << 20, 9);
    a.post_write(1, data.clone(), region.remote(4096)).unwrap();
    let c = a.send_cq().wait(T).unwrap().unwrap();
    assert_eq!((c.op, c.status), (CompletionOp::Write, CompletionStatus::Success));
    // Read it back into a local region of A.
    let sink = a.register(vec![0u8; 3 << 20], Access::LOCAL_WRITE).unwrap();
    a.post_read(2, &sink, 0, 3 << 20, region.remote(4096)).unwrap();
    let c = a.send_cq().wait(T).unwrap().unwrap();
    assert_eq!((c.op, c.status, c.byte_len), (CompletionOp::Read, CompletionStatus::Success, 3 << 20));
    let mut got = vec![0u8; 3 << 20];
    sink.read(0, &mut got).unwrap();
    assert!(got == data);
    let mut placed = vec![0u8; 3 << 20];
    region.read(4096, &mut placed).unwrap();
    assert!(placed == data);
}

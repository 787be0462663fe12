//! The interop tools against each other over loopback: each client and server pair
//! completes its program's exchange with eta at both ends (the interop matrix runs
//! them against rdma-core on siw).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A port free at the time of asking.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a finished tool printed.
struct Ran {
    ok: bool,
    text: String,
}

fn describe(o: &Output, stderr: &str) -> Ran {
    Ran {
        ok: o.status.success(),
        text: format!(
            "status {}\nstdout:\n{}\nstderr:\n{stderr}",
            o.status,
            String::from_utf8_lossy(&o.stdout)
        ),
    }
}

/// Runs the server until it says it listens (a probe connection would count as a
/// failed MPA setup), then the client; both must succeed.
fn pair(server: (&str, Vec<String>), client: (&str, Vec<String>)) -> (Ran, Ran) {
    let (srv, cli) = server_and(server, || {
        let cli = Command::new(client.0).args(&client.1).output().unwrap();
        describe(&cli, &String::from_utf8_lossy(&cli.stderr))
    });
    assert!(cli.ok, "client failed:\n{}", cli.text);
    assert!(srv.ok, "server failed:\n{}", srv.text);
    (srv, cli)
}

/// Runs the server until it says it listens, then `client`; returns what the
/// server printed when it ended, and what `client` returned.
fn server_and<T>(server: (&str, Vec<String>), client: impl FnOnce() -> T) -> (Ran, T) {
    let mut srv = Command::new(server.0)
        .args(&server.1)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = srv.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the server did not start listening");
    let cli = client();
    let out = srv.wait_with_output().unwrap();
    (describe(&out, &reader.join().unwrap()), cli)
}

fn args(a: &str, port: u16) -> Vec<String> {
    a.split_whitespace()
        .map(String::from)
        .chain(["-p".into(), port.to_string()])
        .collect()
}

#[test]
fn rdma_server_and_client_exchange_their_messages() {
    let port = free_port();
    let (srv, cli) = pair(
        (
            env!("CARGO_BIN_EXE_eta-rdma-server"),
            args("-s 127.0.0.1 -v -t 20", port),
        ),
        (
            env!("CARGO_BIN_EXE_eta-rdma-client"),
            args("-s 127.0.0.1 -v -t 20 --solicited", port),
        ),
    );
    let zeros = "0".repeat(32);
    assert!(srv.text.contains(&format!("rdma_server: message {zeros}")));
    assert!(cli.text.contains(&format!("rdma_client: answer {zeros}")));
    assert!(cli.text.contains("rdma_client: end 0"));
}

#[test]
fn ucmatose_many_connections_both_roles_check_their_data() {
    let port = free_port();
    let common = "-c 4 -C 5 -S 3000 -v -t 20";
    let (srv, cli) = pair(
        (
            env!("CARGO_BIN_EXE_eta-ucmatose"),
            args(&format!("-b 127.0.0.1 {common}"), port),
        ),
        (
            env!("CARGO_BIN_EXE_eta-ucmatose"),
            args(&format!("-s 127.0.0.1 {common}"), port),
        ),
    );
    let n = srv.text.matches("5 replies equal to the last").count();
    assert_eq!(n, 4, "{}", srv.text);
    assert!(cli.text.contains("return status 0"));
}

#[test]
fn ucmatose_server_sorts_out_completions_of_connections_sharing_its_queues() {
    // ucmatose's client (on siw) may send the replies of one connection before
    // those of another; the eta server, whose connections share one receive
    // completion queue, must still check each reply against its own connection.
    use eta_engine::{Connection, Options, SendOptions};
    let port = free_port();
    let (srv, ()) = server_and(
        (
            env!("CARGO_BIN_EXE_eta-ucmatose"),
            args("-b 127.0.0.1 -c 2 -C 4 -S 100 -v -t 20", port),
        ),
        || {
            let t = Some(Duration::from_secs(20));
            let conns: Vec<Connection> = (0..2)
                .map(|_| {
                    let c = Connection::connect(("127.0.0.1", port), Options::default()).unwrap();
                    for i in 0..4 {
                        c.post_recv(i, vec![0; 100]).unwrap();
                    }
                    c
                })
                .collect();
            let last: Vec<Vec<u8>> = conns
                .iter()
                .map(|c| {
                    let mut last = Vec::new();
                    for _ in 0..4 {
                        let m = c.recv_cq().wait(t).unwrap().unwrap();
                        last = m.buffer.unwrap()[..m.byte_len as usize].to_vec();
                    }
                    last
                })
                .collect();
            // The second connection's replies first, and all of them in the
            // server's queue before the first connection's.
            for n in [1, 0] {
                for i in 0..4 {
                    conns[n]
                        .post_send(i, last[n].clone(), SendOptions::default())
                        .unwrap();
                }
                for _ in 0..4 {
                    conns[n].send_cq().wait(t).unwrap().unwrap();
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            for c in &conns {
                while c.state() == eta_engine::ConnState::Open {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        },
    );
    assert!(srv.ok, "server failed:\n{}", srv.text);
    let n = srv.text.matches("4 replies equal to the last").count();
    assert_eq!(n, 2, "{}", srv.text);
}

#[test]
fn perftest_write_read_and_send_report_what_they_moved() {
    for verb in ["write", "read", "send"] {
        let port = free_port();
        let common = format!("{verb} -s 16384 -n 50 -t 20");
        let (srv, cli) = pair(
            (
                env!("CARGO_BIN_EXE_eta-perftest"),
                args(&format!("{common} -b 127.0.0.1"), port),
            ),
            (
                env!("CARGO_BIN_EXE_eta-perftest"),
                args(&format!("{common} 127.0.0.1"), port),
            ),
        );
        for o in [&srv, &cli] {
            let t = &o.text;
            assert!(
                t.lines()
                    .any(|l| l.starts_with(" 16384") && l.contains(" 50 ")),
                "{verb}: no report line of 50 x 16384 octets:\n{t}"
            );
        }
        if verb == "write" {
            assert!(
                srv.text
                    .contains("819200 octets of RDMA Write payload placed")
            );
        }
        if verb == "send" {
            assert!(srv.text.contains("received 50 Sends of 16384 octets"));
        }
    }
}

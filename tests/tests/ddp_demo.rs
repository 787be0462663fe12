//! `examples/ddp_demo.c`, the program `scripts/demo.sh` runs: built against
//! `include/eta.h` and `libeta.so`, run as a server and a client under the shim, and
//! checked for what it claims to show (messages, MPA parameters, an RDMA Write seen
//! by the server, an RDMA Read that brings the data back, a graceful close).

use std::process::Command;
use std::time::Duration;

use eta_tests::{Server, TempDir, compile_eta_c, free_port, run, shimmed};

const T: Duration = Duration::from_secs(60);

#[test]
fn the_demo_exchanges_messages_and_rdma_operations() {
    let dir = TempDir::new("ddp-demo");
    let exe = compile_eta_c("../../examples/ddp_demo.c", "ddp_demo", &[], dir.path());
    let port = free_port().to_string();
    let mut server = Server::start(
        "ddp_demo server",
        shimmed(&mut Command::new(&exe)).args(["server", &port]),
        dir.path(),
    );
    let first = server.first_line(T);
    assert!(first.contains("in DDP mode"), "{first}");
    let client = run(
        "ddp_demo client",
        shimmed(&mut Command::new(&exe)).args(["client", &port]),
        T,
    );
    client.assert_success("ddp_demo client").assert_lines(
        "ddp_demo client",
        &[
            "client: connected; the server's MPA private data says \"eta demo server\"",
            "client: sent \"iWARP over plain TCP\", got \"echo: iWARP over plain TCP\"",
            "client: RDMA Write of 41 octets completed",
            "client: RDMA Read of 41 octets brought back \"written by the client with one RDMA Write\"",
            "client: closed",
        ],
    );
    let server = server.finish(T);
    server.assert_success("ddp_demo server").assert_lines(
        "ddp_demo server",
        &[
            "server: accepted an iWARP connection: MPA rev 2, CRC on, markers off, IRD 16, ORD 16",
            "server: message 2 (20 octets): \"iWARP over plain TCP\"",
            "server: client says \"I wrote into your region\"; the region now starts with \"written by the client with one RDMA Writ\"",
            "server: client says \"read back what I wrote\"",
            "server: the client closed the connection",
        ],
    );
    assert_eq!(client.err(), "", "the client printed to stderr");
    assert_eq!(server.err(), "", "the server printed to stderr");
}

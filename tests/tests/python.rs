//! Python under the shim: `python3 -m http.server` with curl, and an asyncio echo
//! server with an asyncio client.

use std::process::Command;
use std::time::Duration;

use eta_tests::{Server, TempDir, crate_dir, curl_or_fail, free_port, python3, run, shimmed};

#[test]
fn curl_fetches_a_file_from_python_http_server() {
    let curl = curl_or_fail();
    let dir = TempDir::new("http");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let body: Vec<u8> = (0..3_000_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(www.join("file.bin"), &body).unwrap();
    let port = free_port();
    let mut server = Server::start(
        "http.server",
        shimmed(&mut Command::new(python3()))
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(&www),
        dir.path(),
    );
    server.wait_port(port, Duration::from_secs(20));
    server.assert_shim_loaded();
    let out = dir.path().join("fetched.bin");
    let o = run(
        "curl",
        shimmed(&mut Command::new(curl))
            .args(["-sS", "--fail", "--max-time", "30", "-o"])
            .arg(&out)
            .arg(format!("http://127.0.0.1:{port}/file.bin")),
        Duration::from_secs(40),
    );
    o.assert_success("curl from http.server");
    assert_eq!(o.err(), "");
    let fetched = std::fs::read(&out).unwrap();
    assert!(
        fetched == body,
        "curl fetched {} octets, differing from the file",
        fetched.len()
    );
    server.assert_running();
}

#[test]
fn asyncio_echo_server_and_client() {
    let dir = TempDir::new("asyncio");
    let py = crate_dir().join("py");
    let mut server = Server::start(
        "asyncio echo server",
        shimmed(&mut Command::new(python3())).arg(py.join("echo_server.py")),
        dir.path(),
    );
    let port = server.first_line(Duration::from_secs(20));
    server.assert_shim_loaded();
    let o = run(
        "asyncio echo client",
        shimmed(&mut Command::new(python3()))
            .arg(py.join("echo_client.py"))
            .args([port.as_str(), "8", "150"]),
        Duration::from_secs(60),
    );
    o.assert_success("asyncio echo client");
    assert!(o.out().starts_with("ok 1200 messages "), "{}", o.out());
    assert_eq!(o.err(), "");
    server.assert_running();
    let (_, err) = server.stop();
    assert_eq!(err, "", "echo server wrote to stderr");
}

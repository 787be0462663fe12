//! nginx under the shim, loaded by wrk under the shim, its body checked by curl.

use std::process::Command;
use std::time::Duration;

use eta_tests::{Server, TempDir, curl_or_fail, free_port, require, run, shimmed};

#[test]
fn nginx_serves_wrk_and_curl() {
    let nginx = require("nginx", "nginx-light");
    let wrk = require("wrk", "wrk");
    let curl = curl_or_fail();
    let dir = TempDir::new("nginx");
    let d = dir.path();
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(www.join("index.html"), &body).unwrap();
    let port = free_port();
    let p = d.display();
    let conf = format!(
        "daemon off;\n\
         master_process on;\n\
         worker_processes 1;\n\
         pid {p}/nginx.pid;\n\
         error_log {p}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
           access_log off;\n\
           sendfile on;\n\
           client_body_temp_path {p}/body;\n\
           proxy_temp_path {p}/proxy;\n\
           fastcgi_temp_path {p}/fastcgi;\n\
           uwsgi_temp_path {p}/uwsgi;\n\
           scgi_temp_path {p}/scgi;\n\
           server {{ listen 127.0.0.1:{port}; root {}; }}\n\
         }}\n",
        www.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    let mut server = Server::start(
        "nginx",
        shimmed(&mut Command::new(nginx))
            .arg("-p")
            .arg(d)
            .arg("-e")
            .arg(d.join("error.log"))
            .arg("-c")
            .arg(d.join("nginx.conf")),
        d,
    );
    server.wait_port(port, Duration::from_secs(20));
    server.assert_shim_loaded();
    let url = format!("http://127.0.0.1:{port}/index.html");

    let o = run(
        "wrk",
        shimmed(&mut Command::new(wrk)).args(["-t2", "-c10", "-d2s", &url]),
        Duration::from_secs(30),
    );
    o.assert_success("wrk");
    let report = o.out();
    assert!(
        !report.contains("Socket errors"),
        "wrk saw socket errors:\n{report}"
    );
    assert!(
        !report.contains("Non-2xx"),
        "wrk saw non-2xx responses:\n{report}"
    );
    let requests: u64 = report
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's report:\n{report}"));
    assert!(requests > 0, "{report}");

    let out = d.join("fetched.html");
    let o = run(
        "curl",
        shimmed(&mut Command::new(curl))
            .args(["-sS", "--fail", "--max-time", "20", "-o"])
            .arg(&out)
            .arg(&url),
        Duration::from_secs(30),
    );
    o.assert_success("curl from nginx");
    assert!(
        std::fs::read(&out).unwrap() == body,
        "curl's body differs from the file"
    );
    server.assert_running();
    let (out, err) = server.stop();
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("", ""),
        "nginx printed something"
    );
    let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
    assert!(
        !log.contains("[error]") && !log.contains("[crit]"),
        "nginx error log:\n{log}"
    );
}

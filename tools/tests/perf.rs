//! eta-perf runs a short benchmark end to end: both ends in two processes (the
//! default) and in one, every operation, under the busy load; the report has the
//! expected rows with a CPU column, the CSV one line per test and round, and no
//! process eta-perf started outlives it. Timing values are not checked.

use std::process::Command;

/// Runs eta-perf with `args`; gives its stdout (it must exit 0).
fn eta_perf(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eta-perf"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "eta-perf {args:?} failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The rows of the table under `title`: its lines up to the first blank one, the
/// header first.
fn table<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with('('))
        .collect()
}

/// The number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> u32 {
    let at = text.find(prefix).unwrap_or_else(|| panic!("no {prefix:?}"));
    let digits: String = text[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Checks a table: its header names the CPU column, and it has one row per
/// expected (transport, op) with a number in every figure column.
fn check_table(text: &str, title: &str, cpu_col: &str, expected: &[(&str, &str)]) {
    let t = table(text, title);
    assert!(!t.is_empty(), "no table {title:?} in:\n{text}");
    let header: Vec<&str> = t[0].split_whitespace().collect();
    assert!(header.contains(&cpu_col), "no {cpu_col} in {header:?}");
    assert!(header.contains(&"min-max"), "no spread in {header:?}");
    let rows: Vec<Vec<&str>> = t[1..]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (tr, op) in expected {
        let row = rows
            .iter()
            .find(|r| r[0] == *tr && r[1] == *op)
            .unwrap_or_else(|| panic!("no row {tr} {op} under {title:?} in:\n{text}"));
        // tr op crc mrk #bytes #n median min-max p99|Gb/s x-tcp cpu cpu/tcp
        assert_eq!(row.len(), 12, "row {row:?}");
        assert_eq!(row[4], "64");
        for i in [6, 8, 9, 10, 11] {
            let v: f64 = row[i]
                .parse()
                .unwrap_or_else(|_| panic!("column {i} of {row:?}"));
            assert!(v.is_finite() && v >= 0.0, "column {i} of {row:?}");
        }
    }
    assert_eq!(rows.len(), expected.len(), "rows of {title:?}: {rows:?}");
}

#[test]
fn two_processes_every_op_with_cpu_under_busy_load() {
    let csv = std::env::temp_dir().join(format!("eta-perf-test-{}.csv", std::process::id()));
    let csv_path = csv.to_str().unwrap();
    let text = eta_perf(&[
        "--sizes",
        "64",
        "--rounds",
        "1",
        "--duration",
        "2",
        "--crc",
        "on",
        "--markers",
        "off",
        "--write-lat",
        "both",
        "--load",
        "busy",
        "--csv",
        csv_path,
    ]);
    assert!(text.contains("ends: two processes"), "{text}");
    let lat = [
        ("tcp", "send"),
        ("eta", "send"),
        ("eta", "write"),
        ("eta", "write+send"),
        ("eta", "read"),
    ];
    let bw = [
        ("tcp", "send"),
        ("eta", "send"),
        ("eta", "write"),
        ("eta", "read"),
    ];
    check_table(&text, "== Latency", "cpu_s/1kRT", &lat);
    check_table(&text, "== Bandwidth", "cpu_s/GB", &bw);
    assert!(text.contains("(issue 10)"), "{text}");
    // Neither the busy loop nor the peer process outlives the run.
    for prefix in ["load: busy (pid ", "peer process "] {
        let pid = number_after(&text, prefix);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{prefix}{pid} still runs"
        );
    }
    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let _ = std::fs::remove_file(&csv);
    assert!(lines[0].ends_with(",round,round_trips,cpu_s,cpu_s_per_unit"));
    assert_eq!(lines.len(), 1 + lat.len() + bw.len());
    for l in &lines[1..] {
        let cpu = l.split(',').nth(11).unwrap();
        assert!(cpu.parse::<f64>().is_ok_and(|c| c >= 0.0), "cpu_s of {l}");
    }
}

#[test]
fn one_process_keeps_the_old_view() {
    let text = eta_perf(&[
        "--one-process",
        "--sizes",
        "64",
        "--quick",
        "--duration",
        "1",
        "--markers",
        "on",
        "--ops",
        "send",
    ]);
    assert!(text.contains("ends: one process"), "{text}");
    assert!(text.contains("median of 1 round(s)"), "{text}");
    check_table(
        &text,
        "== Latency",
        "cpu_s/1kRT",
        &[("tcp", "send"), ("eta", "send")],
    );
    check_table(
        &text,
        "== Bandwidth",
        "cpu_s/GB",
        &[("tcp", "send"), ("eta", "send")],
    );
}

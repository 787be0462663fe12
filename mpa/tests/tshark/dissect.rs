//! Running `tshark` on a capture and reading what it shows: fields, the summary,
//! and the PDML dissection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch directory for one capture, removed unless the test fails (then its path
/// is in the failure message, for a look with Wireshark).
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    /// A fresh directory named after `name`.
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "eta-mpa-tshark-{}-{}-{name}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(dir.join("wireshark-config")).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The options of every run (docs/wire-facts.md §8.1, §8.4): MPA heuristic on, the DDP
/// payload heuristics that would claim test payloads off, IPv4 and TCP checksums
/// verified, and an empty configuration directory so that user preferences cannot
/// change the outcome.
pub(crate) fn tshark(scratch: &Scratch, pcap: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .env("WIRESHARK_CONFIG_DIR", scratch.0.join("wireshark-config"))
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args([
            "--enable-heuristic",
            "iwarp_mpa_tcp",
            "--disable-heuristic",
            "rpcrdma_iwarp",
            "--disable-heuristic",
            "smb_direct_iwarp",
            "-o",
            "tcp.try_heuristic_first:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
        ])
        .args(args)
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`tshark` was not found in PATH. This test cross-checks MPA framing with \
             Wireshark and requires it: install the Debian package `tshark` \
             (sudo apt-get install tshark); CI installs it."
        ),
        Err(e) => panic!("cannot run tshark: {e}"),
    };
    let stdout = String::from_utf8(out.stdout).expect("tshark output is UTF-8");
    assert!(
        out.status.success(),
        "tshark {args:?} on {} failed ({}):\n{}\n{stdout}",
        pcap.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The fields [`mpa_rows`] asks for.
const FIELDS: [&str; 13] = [
    "frame.number",
    "iwarp_mpa.key.req",
    "iwarp_mpa.key.rep",
    "iwarp_mpa.rev",
    "iwarp_mpa.marker_flag",
    "iwarp_mpa.crc_flag",
    "iwarp_mpa.ulpdulength",
    "iwarp_mpa.crc_check",
    "iwarp_mpa.marker_fpduptr",
    "iwarp_rdma.opcode",
    "iwarp_ddp.msn",
    "data.len",
    "data.data",
];

/// One line of `tshark -T fields`: the field values, by field name.
type Row = BTreeMap<&'static str, String>;

/// `tshark -T fields -e … -Y iwarp_mpa`: one row per frame with MPA in it.
pub(crate) fn mpa_rows(scratch: &Scratch, pcap: &Path) -> BTreeMap<u32, Row> {
    let mut args = vec!["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"];
    for f in FIELDS {
        args.extend(["-e", f]);
    }
    args.extend(["-Y", "iwarp_mpa"]);
    let text = tshark(scratch, pcap, &args);
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let values: Vec<&str> = line.split('\t').collect();
        assert_eq!(values.len(), FIELDS.len(), "tshark fields line {line:?}");
        let row: Row = FIELDS
            .iter()
            .zip(values)
            .map(|(f, v)| (*f, v.to_string()))
            .collect();
        let frame = row["frame.number"].parse().unwrap();
        rows.insert(frame, row);
    }
    rows
}

/// A number as tshark prints it (decimal, or `0x` hex for BASE_HEX fields).
pub(crate) fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|e| panic!("not a number: {s:?} ({e})"))
}

/// The attribute `attr` of each PDML `<field name="name" …>` element in `xml`.
pub(crate) fn pdml_attr<'a>(xml: &'a str, name: &str, attr: &str) -> Vec<&'a str> {
    let needle = format!("<field name=\"{name}\"");
    let key = format!(" {attr}=\"");
    xml.match_indices(&needle)
        .map(|(i, _)| {
            let tag = &xml[i..i + xml[i..].find('>').unwrap()];
            let v = &tag[tag.find(&key).unwrap_or_else(|| panic!("{attr} in {tag}")) + key.len()..];
            &v[..v.find('"').unwrap()]
        })
        .collect()
}

/// `tshark -T pdml`, split into packets by frame number.
pub(crate) fn pdml_packets(scratch: &Scratch, pcap: &Path) -> (String, BTreeMap<u32, String>) {
    let text = tshark(scratch, pcap, &["-T", "pdml"]);
    let mut packets = BTreeMap::new();
    for chunk in text.split("<packet>").skip(1) {
        let frame = pdml_attr(chunk, "frame.number", "show")[0].parse().unwrap();
        packets.insert(frame, chunk.to_string());
    }
    (text, packets)
}

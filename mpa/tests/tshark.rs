//! Cross-check with Wireshark: a full MPA exchange built by this crate (startup frames
//! from the negotiation functions, FPDUs from [`Framer`]) is written to a pcap file
//! and dissected by `tshark`, which must decode every FPDU with a good CRC32c, show
//! the markers where RFC 5044 §4.3 puts them, and report nothing malformed.
//!
//! Wireshark's MPA dissector (4.0) is heuristic only and keeps per-connection state:
//! the capture therefore starts with the TCP handshake, the MPA Request and the Reply
//! each alone in a segment, and carries one FPDU per TCP segment (its marker code
//! assumes that). It does not check FPDUPTR values, so the test compares the values it
//! displays with the RFC's definition.
//!
//! `tshark` is a required test dependency (Debian package `tshark`): without it the
//! tests fail, they do not skip.

mod pcap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use eta_mpa::startup::negotiate::{on_reply, on_request, reply, request};
use eta_mpa::{Framer, FramerConfig, LocalConfig, Negotiated, RtrType, StartupRepr, pad_len};
use pcap::{Conversation, Dir};

const MARKER_INTERVAL: u32 = 512;

/// RDMAP opcodes (RFC 5040 §4.1).
const OP_WRITE: u8 = 0x0;
const OP_READ_REQUEST: u8 = 0x1;
const OP_READ_RESPONSE: u8 = 0x2;
const OP_SEND: u8 = 0x3;
const OP_TERMINATE: u8 = 0x7;

/// Untagged DDP header (RFC 5041 §4.3) with RDMAP control byte RV=1 + `opcode`:
/// `41 4x | reserved/inval STag | QN | MSN | MO`.
fn untagged(opcode: u8, qn: u32, msn: u32, mo: u32) -> Vec<u8> {
    let mut h = vec![0x41, 0x40 | opcode, 0, 0, 0, 0];
    h.extend_from_slice(&qn.to_be_bytes());
    h.extend_from_slice(&msn.to_be_bytes());
    h.extend_from_slice(&mo.to_be_bytes());
    h
}

/// Tagged DDP header (RFC 5041 §4.2), last segment: `c1 4x | STag | TO`.
fn tagged(opcode: u8, stag: u32, to: u64) -> Vec<u8> {
    let mut h = vec![0xc1, 0x40 | opcode];
    h.extend_from_slice(&stag.to_be_bytes());
    h.extend_from_slice(&to.to_be_bytes());
    h
}

/// Recognisable payload octets.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// What the RFC says the markers of an FPDU are: `(offset in the FPDU, FPDUPTR)` for
/// every stream position `m ≡ 0 (mod 512)` (relative to SeqStart) inside the FPDU
/// that occupies `[start, start + wire_len)`. FPDUPTR is 0 for a marker at the very
/// start of the FPDU, else `m −` the position of the FPDU's ULPDU_Length field (which
/// follows a leading marker).
fn rfc_markers(start: u32, wire_len: usize) -> Vec<(usize, u16)> {
    let ulpdu_length_at = if start % MARKER_INTERVAL == 0 {
        start + 4
    } else {
        start
    };
    let end = start + wire_len as u32;
    let mut m = start.next_multiple_of(MARKER_INTERVAL);
    let mut out = Vec::new();
    while m < end {
        let ptr = if m == start { 0 } else { m - ulpdu_length_at };
        out.push(((m - start) as usize, u16::try_from(ptr).unwrap()));
        m += MARKER_INTERVAL;
    }
    out
}

/// An FPDU written to the capture and what tshark must show for it.
#[derive(Debug, Clone)]
struct Fpdu {
    what: &'static str,
    /// Index of its segment in the conversation (frame number − 1).
    segment: usize,
    /// Stream position relative to SeqStart of its direction.
    start: u32,
    wire_len: usize,
    ulpdu_len: u16,
    opcode: u8,
    msn: Option<u32>,
    /// The DDP payload (after the DDP/RDMAP header).
    payload: Vec<u8>,
    /// `(offset in the FPDU, FPDUPTR)` of each marker.
    markers: Vec<(usize, u16)>,
}

/// A whole capture: handshake, Request, Reply, FPDUs, close.
#[derive(Clone)]
struct Exchange {
    name: &'static str,
    rev: u8,
    markers: bool,
    conv: Conversation,
    request_segment: usize,
    reply_segment: usize,
    fpdus: Vec<Fpdu>,
}

impl Exchange {
    /// The FPDU octets as written (the payload of its segment).
    fn wire(&self, f: &Fpdu) -> &[u8] {
        &self.conv.segments[f.segment].payload
    }
}

/// Builds FPDUs in both directions on one conversation.
struct Builder {
    conv: Conversation,
    framers: [Framer; 2],
    /// TCP sequence number of the first octet of Full Operation, per direction.
    seq_start: [Option<u32>; 2],
    fpdus: Vec<Fpdu>,
}

fn side(dir: Dir) -> usize {
    match dir {
        Dir::Initiator => 0,
        Dir::Responder => 1,
    }
}

impl Builder {
    fn position(&self, dir: Dir) -> u32 {
        self.framers[side(dir)].position()
    }

    fn wire_len(&self, dir: Dir, ulpdu_len: usize) -> usize {
        self.framers[side(dir)].wire_len(ulpdu_len)
    }

    /// Frames one ULPDU with the crate's framer, checks the result against the RFC
    /// independently, and sends it alone in one TCP segment.
    fn fpdu(
        &mut self,
        dir: Dir,
        what: &'static str,
        header: Vec<u8>,
        payload: &[u8],
        msn: Option<u32>,
    ) {
        let s = side(dir);
        let seq = self.conv.next_seq(dir);
        let seq_start = *self.seq_start[s].get_or_insert(seq);
        let start = self.framers[s].position();
        assert_eq!(
            start,
            seq.wrapping_sub(seq_start),
            "{what}: framer position vs TCP sequence number"
        );
        let markers_on = self.framers[s].config().markers;
        let wire = self.framers[s].frame_to_vec(&header, &[payload]).unwrap();

        // Independent checks of the framer output (RFC 5044 §4).
        let ulpdu_len = header.len() + payload.len();
        let markers = if markers_on {
            rfc_markers(start, wire.len())
        } else {
            Vec::new()
        };
        let base = 2 + ulpdu_len + pad_len(ulpdu_len) + 4;
        assert_eq!(wire.len(), base + 4 * markers.len(), "{what}: FPDU length");
        for &(off, ptr) in &markers {
            let [hi, lo] = ptr.to_be_bytes();
            assert_eq!(
                &wire[off..off + 4],
                &[0, 0, hi, lo],
                "{what}: marker at +{off}"
            );
        }
        let n = wire.len();
        assert_eq!(
            wire[n - 4..],
            crc32c::crc32c(&wire[..n - 4]).to_le_bytes(),
            "{what}: CRC32c (covers markers, sent least significant octet first)"
        );

        let segment = self.conv.send(dir, wire);
        self.fpdus.push(Fpdu {
            what,
            segment,
            start,
            wire_len: n,
            ulpdu_len: u16::try_from(ulpdu_len).unwrap(),
            opcode: header[1] & 0x0f,
            msn,
            payload: payload.to_vec(),
            markers,
        });
    }
}

/// Negotiates with the crate's startup functions, as both ends would, and returns the
/// two frames and both ends' outcome.
fn startup(init: &LocalConfig, resp: &LocalConfig) -> (Vec<u8>, Vec<u8>, Negotiated, Negotiated) {
    let req = request(init, b"").unwrap().to_vec().unwrap();
    let parsed_req = StartupRepr::parse_bytes(&req).unwrap();
    let n_resp = on_request(resp, &parsed_req).unwrap();
    let rep = reply(resp, &parsed_req, &n_resp, b"")
        .unwrap()
        .to_vec()
        .unwrap();
    let n_init = on_reply(init, &StartupRepr::parse_bytes(&rep).unwrap()).unwrap();
    (req, rep, n_init, n_resp)
}

/// The full exchange for MPA revision `rev`, with markers in both directions or none.
fn exchange(name: &'static str, rev: u8, markers: bool) -> Exchange {
    let cfg = LocalConfig {
        revision: rev,
        crc: true,
        want_markers: markers,
        peer_to_peer: rev >= 2,
        ..LocalConfig::default()
    };
    let (req, rep, n_init, n_resp) = startup(&cfg, &cfg);
    assert!(n_init.crc && n_resp.crc);
    assert_eq!(
        [
            n_init.markers_tx,
            n_init.markers_rx,
            n_resp.markers_tx,
            n_resp.markers_rx
        ],
        [markers; 4]
    );
    assert_eq!(n_init.revision, rev);
    let rtr = n_init.rtr;
    assert_eq!(rtr, (rev >= 2).then_some(RtrType::Write), "RTR agreed");
    assert_eq!(n_resp.rtr, rtr);

    let mut conv = Conversation::open();
    let request_segment = conv.send(Dir::Initiator, req);
    let reply_segment = conv.send(Dir::Responder, rep);
    let framer = |n: &Negotiated| {
        Framer::new(FramerConfig {
            crc: n.crc,
            markers: n.markers_tx,
        })
    };
    let mut b = Builder {
        conv,
        framers: [framer(&n_init), framer(&n_resp)],
        seq_start: [None; 2],
        fpdus: Vec::new(),
    };
    use Dir::{Initiator as I, Responder as R};

    // The Initiator sends first: the RTR (RFC 6581), or its first Send (RFC 5044 §7.1.2).
    if rtr == Some(RtrType::Write) {
        b.fpdu(
            I,
            "zero-length Write RTR",
            tagged(OP_WRITE, 1, 0),
            &[],
            None,
        );
    }
    let mut send_msn = [0u32; 2];
    let mut send = |b: &mut Builder, dir: Dir, what, len: usize| {
        send_msn[side(dir)] += 1;
        let msn = send_msn[side(dir)];
        let payload = pattern(len, msn as u8);
        b.fpdu(dir, what, untagged(OP_SEND, 0, msn, 0), &payload, Some(msn));
    };
    send(&mut b, I, "Send 5", 5);
    send(&mut b, R, "Send 700", 700);
    send(&mut b, I, "Send 600", 600);

    let (sink_stag, sink_to, read_len) = (0x0102_0304u32, 0x0000_7f00_0000_2000u64, 2048u32);
    let mut rreq = untagged(OP_READ_REQUEST, 1, 1, 0);
    rreq.extend_from_slice(&sink_stag.to_be_bytes());
    rreq.extend_from_slice(&sink_to.to_be_bytes());
    rreq.extend_from_slice(&read_len.to_be_bytes());
    rreq.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes()); // source STag
    rreq.extend_from_slice(&0x1000u64.to_be_bytes()); // source TO
    b.fpdu(I, "RDMA Read Request", rreq, &[], Some(1));

    send(&mut b, R, "Send 10", 10);
    let write = pattern(1500, 0x55);
    b.fpdu(
        R,
        "RDMA Write 1500",
        tagged(OP_WRITE, 0x1234, 0x1_0000),
        &write,
        None,
    );
    let data = pattern(read_len as usize, 0xaa);
    b.fpdu(
        R,
        "RDMA Read Response 2048",
        tagged(OP_READ_RESPONSE, sink_stag, sink_to),
        &data,
        None,
    );

    send(&mut b, I, "Send 4000", 4000);
    // A Send whose FPDU ends exactly on a marker position, so that the next FPDU
    // starts with a marker of its own (FPDUPTR 0) in the middle of the stream.
    let pos = b.position(I);
    let to_boundary = (1..2048)
        .find(|&n| (pos as usize + b.wire_len(I, 18 + n)) % 512 == 0)
        .unwrap();
    send(&mut b, I, "Send ending on a marker boundary", to_boundary);
    send(&mut b, I, "Send 1", 1);
    // A Send with a pad whose marker falls between the PAD and the CRC.
    let pos = b.position(I);
    let pad_marker_crc = (1..2048)
        .find(|&n| pad_len(18 + n) > 0 && (pos as usize + b.wire_len(I, 18 + n) - 8) % 512 == 0)
        .unwrap();
    send(
        &mut b,
        I,
        "Send with a marker between PAD and CRC",
        pad_marker_crc,
    );

    // The Responder terminates on that last Send: DDP layer, untagged buffer error,
    // "message too long" (RFC 5041 §7.2), with the segment's length and DDP header
    // (M=1, D=1; RFC 5040 §4.8).
    let last_msn = send_msn[side(I)];
    let mut term = untagged(OP_TERMINATE, 2, 1, 0);
    term.extend_from_slice(&[0x12, 0x05, 0xc0, 0x00]);
    term.extend_from_slice(&u16::try_from(18 + pad_marker_crc).unwrap().to_be_bytes());
    term.extend_from_slice(&untagged(OP_SEND, 0, last_msn, 0));
    b.fpdu(R, "Terminate", term, &[], Some(1));
    b.conv.close(R);

    Exchange {
        name,
        rev,
        markers,
        conv: b.conv,
        request_segment,
        reply_segment,
        fpdus: b.fpdus,
    }
}

// ---------------------------------------------------------------------------------
// Running tshark.

/// A scratch directory for one capture, removed unless the test fails (then its path
/// is in the failure message, for a look with Wireshark).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
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
fn tshark(scratch: &Scratch, pcap: &Path, args: &[&str]) -> String {
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
fn mpa_rows(scratch: &Scratch, pcap: &Path) -> BTreeMap<u32, Row> {
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
fn num(s: &str) -> u64 {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .unwrap_or_else(|e| panic!("not a number: {s:?} ({e})"))
}

/// The attribute `attr` of each PDML `<field name="name" …>` element in `xml`.
fn pdml_attr<'a>(xml: &'a str, name: &str, attr: &str) -> Vec<&'a str> {
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
fn pdml_packets(scratch: &Scratch, pcap: &Path) -> (String, BTreeMap<u32, String>) {
    let text = tshark(scratch, pcap, &["-T", "pdml"]);
    let mut packets = BTreeMap::new();
    for chunk in text.split("<packet>").skip(1) {
        let frame = pdml_attr(chunk, "frame.number", "show")[0].parse().unwrap();
        packets.insert(frame, chunk.to_string());
    }
    (text, packets)
}

/// Writes `ex` as a pcap, runs tshark on it, and checks everything it shows. With
/// `corrupted = Some(i)`, FPDU `i` is expected to carry a bad CRC, reported as such
/// with `should be` the CRC it had before; every other FPDU must still be good.
fn check(ex: &Exchange, corrupted: Option<(usize, u32)>) {
    let scratch = Scratch::new(ex.name);
    let pcap = scratch.0.join("capture.pcap");
    std::fs::write(&pcap, ex.conv.to_pcap()).unwrap();
    let ctx = format!("{} ({})", ex.name, pcap.display());

    // 1. Field values of every frame with MPA.
    let rows = mpa_rows(&scratch, &pcap);
    let frame_of = |segment: usize| segment as u32 + 1;
    let mut expected_frames: Vec<u32> = ex.fpdus.iter().map(|f| frame_of(f.segment)).collect();
    expected_frames.extend([frame_of(ex.request_segment), frame_of(ex.reply_segment)]);
    expected_frames.sort();
    assert_eq!(
        rows.keys().copied().collect::<Vec<_>>(),
        expected_frames,
        "{ctx}: frames tshark decodes as MPA (Request, Reply and {} FPDUs)",
        ex.fpdus.len()
    );
    let flag = |b: bool| if b { "1" } else { "0" };
    for (segment, key) in [
        (ex.request_segment, "iwarp_mpa.key.req"),
        (ex.reply_segment, "iwarp_mpa.key.rep"),
    ] {
        let row = &rows[&frame_of(segment)];
        assert!(
            !row[key].is_empty(),
            "{ctx}: {key} in frame {}",
            frame_of(segment)
        );
        assert_eq!(
            num(&row["iwarp_mpa.rev"]),
            u64::from(ex.rev),
            "{ctx}: {key} rev"
        );
        assert_eq!(row["iwarp_mpa.crc_flag"], "1", "{ctx}: {key} C flag");
        assert_eq!(
            row["iwarp_mpa.marker_flag"],
            flag(ex.markers),
            "{ctx}: {key} M flag"
        );
        assert!(row["iwarp_mpa.ulpdulength"].is_empty());
    }
    let mut markers_seen = 0;
    for (i, f) in ex.fpdus.iter().enumerate() {
        let frame = frame_of(f.segment);
        let row = &rows[&frame];
        let what = format!("{ctx}: frame {frame}, {} (FPDU #{i})", f.what);
        let wire = ex.wire(f);
        assert_eq!(
            row["iwarp_mpa.ulpdulength"],
            f.ulpdu_len.to_string(),
            "{what}: ULPDU length"
        );
        let crc_field = u32::from_be_bytes(wire[wire.len() - 4..].try_into().unwrap());
        assert_eq!(
            num(&row["iwarp_mpa.crc_check"]),
            u64::from(crc_field),
            "{what}: iwarp_mpa.crc_check (the CRC field read big-endian)"
        );
        let ptrs: Vec<u16> = row["iwarp_mpa.marker_fpduptr"]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        let expected: Vec<u16> = f.markers.iter().map(|m| m.1).collect();
        assert_eq!(ptrs, expected, "{what}: marker FPDUPTRs");
        markers_seen += ptrs.len();
        assert_eq!(
            num(row["iwarp_rdma.opcode"].split(',').next().unwrap()),
            u64::from(f.opcode),
            "{what}: RDMAP opcode"
        );
        match f.msn {
            Some(msn) => assert_eq!(
                row["iwarp_ddp.msn"].split(',').next().unwrap(),
                msn.to_string(),
                "{what}: MSN"
            ),
            None => assert!(row["iwarp_ddp.msn"].is_empty(), "{what}: tagged, no MSN"),
        }
        // The payload DDP gets once MPA has removed the markers. Wireshark 4.0 copies
        // 512 instead of 508 octets between two markers when it removes them, so with
        // two or more markers in an FPDU only the length can be compared.
        if f.payload.is_empty() {
            assert!(row["data.len"].is_empty(), "{what}: no payload");
        } else {
            assert_eq!(
                row["data.len"],
                f.payload.len().to_string(),
                "{what}: payload length"
            );
            if f.markers.len() <= 1 {
                let hex: String = f.payload.iter().map(|b| format!("{b:02x}")).collect();
                assert!(row["data.data"] == hex, "{what}: payload octets differ");
            }
        }
    }
    let markers_written: usize = ex.fpdus.iter().map(|f| f.markers.len()).sum();
    assert_eq!(markers_seen, markers_written, "{ctx}: number of markers");
    assert_eq!(markers_written > 0, ex.markers, "{ctx}: markers present");

    // 2. The one-pass summary (no protocol tree: other code paths in the dissectors).
    let summary = tshark(&scratch, &pcap, &[]);
    assert!(
        !summary.contains("Malformed"),
        "{ctx}: tshark reports a malformed packet:\n{summary}"
    );
    assert_eq!(
        summary.lines().count(),
        ex.conv.segments.len(),
        "{ctx}: summary lines"
    );
    assert_eq!(
        summary.lines().filter(|l| l.contains(" DDP/RDMA ")).count(),
        ex.fpdus.len(),
        "{ctx}: frames summarised as DDP/RDMA:\n{summary}"
    );

    // 3. The full dissection: CRC verdicts, checksums, no malformed packet, no error.
    let (all, packets) = pdml_packets(&scratch, &pcap);
    assert_eq!(
        packets.len(),
        ex.conv.segments.len(),
        "{ctx}: frames in the capture"
    );
    assert!(
        !all.contains("Malformed"),
        "{ctx}: tshark reports a malformed packet"
    );
    assert!(
        !all.contains("Expert Info (Error"),
        "{ctx}: tshark reports an error"
    );
    for (frame, xml) in &packets {
        for status in ["ip.checksum.status", "tcp.checksum.status"] {
            assert_eq!(
                pdml_attr(xml, status, "show"),
                ["1"],
                "{ctx}: frame {frame}: {status} (1 = good)"
            );
        }
        assert!(
            pdml_attr(xml, "tcp.analysis.flags", "showname").is_empty(),
            "{ctx}: frame {frame}: TCP analysis flags: sequence numbers or ACKs off"
        );
        let fpdu = ex.fpdus.iter().position(|f| frame_of(f.segment) == *frame);
        let verdicts = pdml_attr(xml, "iwarp_mpa.crc_check", "showname");
        match (fpdu, corrupted) {
            (None, _) => assert!(verdicts.is_empty(), "{ctx}: frame {frame}: CRC check"),
            (Some(i), Some((bad, should_be))) if i == bad => {
                let expected = format!("(Bad CRC32, should be 0x{should_be:08x})");
                assert!(
                    verdicts.len() == 1 && verdicts[0].ends_with(&expected),
                    "{ctx}: frame {frame}: {verdicts:?}, expected {expected}"
                );
            }
            (Some(i), _) => assert!(
                verdicts.len() == 1 && verdicts[0].ends_with("(Good CRC32)"),
                "{ctx}: frame {frame} ({}): {verdicts:?}",
                ex.fpdus[i].what
            ),
        }
    }
    let bad = all.matches("Bad CRC32").count();
    assert_eq!(
        bad,
        usize::from(corrupted.is_some()),
        "{ctx}: Bad CRC32 count"
    );
}

/// Checks that the exchange covers what it is meant to.
fn assert_coverage(ex: &Exchange) {
    let by_dir = |dir| {
        ex.fpdus
            .iter()
            .filter(move |f| ex.conv.segments[f.segment].dir == dir)
    };
    for dir in [Dir::Initiator, Dir::Responder] {
        assert!(by_dir(dir).any(|f| f.opcode == OP_SEND && f.ulpdu_len > 512));
        let first = by_dir(dir).next().unwrap();
        assert_eq!(first.start, 0);
        if ex.markers {
            assert_eq!(first.markers.first(), Some(&(0, 0)), "leading marker");
            assert!(by_dir(dir).any(|f| f.markers.len() >= 2));
        }
    }
    assert!(
        ex.fpdus
            .iter()
            .any(|f| f.ulpdu_len > 2048 && f.opcode == OP_SEND)
    );
    for op in [OP_WRITE, OP_READ_REQUEST, OP_READ_RESPONSE, OP_TERMINATE] {
        assert!(ex.fpdus.iter().any(|f| f.opcode == op), "opcode {op}");
    }
    if ex.markers {
        // A marker at a 512 boundary in mid-stream that starts an FPDU (FPDUPTR 0),
        // markers inside FPDUs after a leading marker (FPDUPTR counted from the
        // ULPDU_Length field, after the leading marker), and one between PAD and CRC.
        assert!(
            ex.fpdus
                .iter()
                .any(|f| f.start > 0 && f.markers.first() == Some(&(0, 0)))
        );
        assert!(
            ex.fpdus
                .iter()
                .any(|f| f.markers.len() >= 2 && f.markers[0] == (0, 0) && f.markers[1].1 == 508)
        );
        assert!(ex.fpdus.iter().any(|f| {
            f.markers.last().is_some_and(|m| m.0 == f.wire_len - 8)
                && pad_len(usize::from(f.ulpdu_len)) > 0
        }));
    }
}

/// Flips bits in one octet of the CRC of the FPDU `what` (TCP checksums recomputed)
/// and checks that tshark reports exactly that FPDU as bad.
fn corrupt_and_check(ex: &Exchange, what: &str) {
    let i = ex.fpdus.iter().position(|f| f.what == what).unwrap();
    let mut bad = ex.clone();
    let payload = &mut bad.conv.segments[ex.fpdus[i].segment].payload;
    let n = payload.len();
    let good = u32::from_be_bytes(payload[n - 4..].try_into().unwrap());
    payload[n - 3] ^= 0x5a;
    check(&bad, Some((i, good)));
}

#[test]
fn rev2_crc_no_markers() {
    let ex = exchange("rev2-crc", 2, false);
    assert_coverage(&ex);
    check(&ex, None);
}

#[test]
fn rev2_crc_markers_both_directions() {
    let ex = exchange("rev2-crc-markers", 2, true);
    assert_coverage(&ex);
    check(&ex, None);
}

#[test]
fn rev1_crc_markers_both_directions() {
    let ex = exchange("rev1-crc-markers", 1, true);
    assert_coverage(&ex);
    check(&ex, None);
}

/// Negative controls: one flipped CRC octet is reported as "Bad CRC32" on exactly
/// that FPDU, with the right CRC as "should be", so the checks above can fail.
#[test]
fn corrupted_crc_is_reported_on_that_fpdu_only() {
    let ex = exchange("rev2-crc-bad", 2, false);
    corrupt_and_check(&ex, "Send 600");
    let ex = exchange("rev2-crc-markers-bad", 2, true);
    corrupt_and_check(&ex, "Send with a marker between PAD and CRC");
}

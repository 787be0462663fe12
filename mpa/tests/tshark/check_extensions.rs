//! What tshark must show for the RFC 7306 capture (besides what [`crate::check`]
//! checks for every FPDU): the Atomic fields as posted and answered, and the
//! Immediate Data FPDUs octet by octet.

use std::collections::BTreeMap;

use eta_ddp_core::AtomicOp;

use crate::dissect::{Scratch, num, tshark};
use crate::exchange::Fpdu;
use crate::extensions::ExtensionsExchange;

/// The `iwarp_ddp` and `iwarp_rdma.atomic` fields read per frame.
const FIELDS: [&str; 18] = [
    "frame.number",
    "iwarp_rdma.opcode",
    "iwarp_ddp.last_flag",
    "iwarp_ddp.qn",
    "iwarp_ddp.msn",
    "iwarp_ddp.mo",
    "iwarp_rdma.atomic.reserved",
    "iwarp_rdma.atomic.opcode",
    "iwarp_rdma.atomic.request_identifier",
    "iwarp_rdma.atomic.remote_stag",
    "iwarp_rdma.atomic.remote_tagged_offset",
    "iwarp_rdma.atomic.add_data",
    "iwarp_rdma.atomic.add_mask",
    "iwarp_rdma.atomic.swap_data",
    "iwarp_rdma.atomic.swap_mask",
    "iwarp_rdma.atomic.compare_data",
    "iwarp_rdma.atomic.compare_mask",
    "iwarp_rdma.atomic.original_request_identifier",
];

/// Wireshark 4.0 labels this field "Original Request Identifier" too.
const ORIGINAL_VALUE: &str = "iwarp_rdma.atomic.original_remote_data_value";

type Row = BTreeMap<&'static str, String>;

fn rows(scratch: &Scratch, pcap: &std::path::Path) -> BTreeMap<u32, Row> {
    let mut args = vec!["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"];
    let fields: Vec<&'static str> = FIELDS.iter().copied().chain([ORIGINAL_VALUE]).collect();
    for f in &fields {
        args.extend(["-e", f]);
    }
    args.extend(["-Y", "iwarp_rdma.opcode >= 8"]);
    let mut out = BTreeMap::new();
    for line in tshark(scratch, pcap, &args).lines() {
        let values: Vec<&str> = line.split('\t').collect();
        assert_eq!(values.len(), fields.len(), "tshark fields line {line:?}");
        let row: Row = fields
            .iter()
            .zip(values)
            .map(|(f, v)| (*f, v.to_string()))
            .collect();
        out.insert(row["frame.number"].parse().unwrap(), row);
    }
    out
}

/// The FPDU's octets without its markers.
fn unmarked(wire: &[u8], f: &Fpdu) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire.len());
    let mut at = 0;
    for &(off, _) in &f.markers {
        out.extend_from_slice(&wire[at..off]);
        at = off + 4;
    }
    out.extend_from_slice(&wire[at..]);
    out
}

pub(crate) fn check_extensions(ext: &ExtensionsExchange) {
    let ex = &ext.ex;
    let scratch = Scratch::new(ex.name);
    let pcap = scratch.0.join("capture.pcap");
    std::fs::write(&pcap, ex.conv.to_pcap()).unwrap();
    let ctx = format!("{} ({})", ex.name, pcap.display());
    let rows = rows(&scratch, &pcap);
    let frame_of = |f: &Fpdu| f.segment as u32 + 1;
    let of_op = |op: u8| ex.fpdus.iter().filter(move |f| f.opcode == op);
    assert_eq!(
        rows.len(),
        ex.fpdus.iter().filter(|f| f.opcode >= 8).count(),
        "{ctx}: frames with an RFC 7306 opcode"
    );
    let field = |f: &Fpdu, name: &str| -> String {
        let row = &rows[&frame_of(f)];
        row.get(name).cloned().unwrap_or_default()
    };
    // Every RFC 7306 message: untagged, last, MO 0 (RFC 7306 §4.1, Figure 2).
    for f in ex.fpdus.iter().filter(|f| f.opcode >= 8) {
        let what = format!("{ctx}: frame {}, {}", frame_of(f), f.what);
        assert_eq!(
            num(&field(f, "iwarp_rdma.opcode")),
            u64::from(f.opcode),
            "{what}"
        );
        assert_eq!(field(f, "iwarp_ddp.last_flag"), "1", "{what}: L");
        let qn = [0, 0, 1, 3][usize::from(f.opcode - 8)];
        assert_eq!(num(&field(f, "iwarp_ddp.qn")), qn, "{what}: QN");
        assert_eq!(num(&field(f, "iwarp_ddp.mo")), 0, "{what}: MO");
    }

    // Immediate Data, by their octets (tshark shows the opcodes as unknown): 2-octet
    // ULPDU length 26, untagged header with control 41 48/49, Invalidate STag 0, QN 0,
    // the MSN, MO 0, the 8 octets (RFC 7306 §6.2, Appendix A.3), no pad, the CRC.
    let imm: Vec<&Fpdu> = ex
        .fpdus
        .iter()
        .filter(|f| matches!(f.opcode, 8 | 9))
        .collect();
    assert_eq!(
        imm.len(),
        ext.immediates.len(),
        "{ctx}: Immediate Data FPDUs"
    );
    for (f, posted) in imm.iter().zip(&ext.immediates) {
        let what = format!("{ctx}: frame {}, {}", frame_of(f), posted.what);
        let wire = unmarked(ex.wire(f), f);
        let mut expect = vec![0x00, 26, 0x41, if posted.solicited { 0x49 } else { 0x48 }];
        expect.extend_from_slice(&[0; 4]);
        expect.extend_from_slice(&0u32.to_be_bytes());
        expect.extend_from_slice(&posted.msn.to_be_bytes());
        expect.extend_from_slice(&0u32.to_be_bytes());
        expect.extend_from_slice(&posted.data);
        assert_eq!(wire.len(), expect.len() + 4, "{what}: FPDU length");
        assert_eq!(&wire[..expect.len()], &expect[..], "{what}: octets");
        assert_eq!(f.ulpdu_len, 26, "{what}: ULPDU length");
        assert_eq!(
            num(&field(f, "iwarp_ddp.msn")),
            u64::from(posted.msn),
            "{what}: MSN"
        );
    }

    // Atomic Requests: every field as posted (RFC 7306 §5.2.1 Figure 4, Figure 5).
    let requests: Vec<&Fpdu> = of_op(0xA).collect();
    let responses: Vec<&Fpdu> = of_op(0xB).collect();
    assert_eq!(requests.len(), ext.atomics.len(), "{ctx}: Atomic Requests");
    assert_eq!(
        responses.len(),
        ext.atomics.len(),
        "{ctx}: Atomic Responses"
    );
    let mut ids = Vec::new();
    for (i, (f, at)) in requests.iter().zip(&ext.atomics).enumerate() {
        let what = format!("{ctx}: frame {}, {} Atomic Request", frame_of(f), at.what);
        let get = |name: &str| num(&field(f, &format!("iwarp_rdma.atomic.{name}")));
        assert_eq!(f.ulpdu_len, 18 + 52, "{what}: ULPDU length");
        assert_eq!(
            num(&field(f, "iwarp_ddp.msn")),
            i as u64 + 1,
            "{what}: MSN on QN 1"
        );
        assert_eq!(get("reserved"), 0, "{what}: reserved");
        assert_eq!(
            get("opcode"),
            u64::from(at.args.op.to_u8()),
            "{what}: AOpCode"
        );
        assert_eq!(
            get("remote_stag"),
            u64::from(at.stag.0),
            "{what}: Remote STag"
        );
        assert_eq!(get("remote_tagged_offset"), at.to, "{what}: Remote TO");
        let (data, mask, compare, compare_mask) = match at.args.op {
            AtomicOp::FetchAdd => {
                assert!(field(f, "iwarp_rdma.atomic.swap_data").is_empty());
                (get("add_data"), get("add_mask"), 0, u64::MAX)
            }
            AtomicOp::CompareSwap => {
                assert!(field(f, "iwarp_rdma.atomic.add_data").is_empty());
                (
                    get("swap_data"),
                    get("swap_mask"),
                    at.args.compare,
                    at.args.compare_mask,
                )
            }
        };
        assert_eq!(data, at.args.data, "{what}: Add or Swap Data");
        assert_eq!(mask, at.args.data_mask, "{what}: Add or Swap Mask");
        assert_eq!(get("compare_data"), compare, "{what}: Compare Data");
        assert_eq!(get("compare_mask"), compare_mask, "{what}: Compare Mask");
        ids.push(get("request_identifier"));
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "{ctx}: distinct Request Identifiers"
    );

    // Atomic Responses, in request order on QN 3 (RFC 7306 §5.2.2 Figure 6).
    for (i, ((f, at), id)) in responses.iter().zip(&ext.atomics).zip(&ids).enumerate() {
        let what = format!("{ctx}: frame {}, {} Atomic Response", frame_of(f), at.what);
        assert_eq!(f.ulpdu_len, 18 + 12, "{what}: ULPDU length");
        assert_eq!(
            num(&field(f, "iwarp_ddp.msn")),
            i as u64 + 1,
            "{what}: MSN on QN 3"
        );
        assert_eq!(
            num(&field(f, "iwarp_rdma.atomic.original_request_identifier")),
            *id,
            "{what}: Original Request Identifier"
        );
        assert_eq!(
            num(&field(f, ORIGINAL_VALUE)),
            at.original,
            "{what}: Original Remote Data Value"
        );
    }
}

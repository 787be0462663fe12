//! What tshark must show for an exchange: every FPDU decoded with its length, CRC,
//! markers, opcode, MSN and payload; no malformed packet; the CRC verdicts.

use crate::dissect::{Scratch, mpa_rows, num, pdml_attr, pdml_packets, tshark};
use crate::exchange::Exchange;

/// Writes `ex` as a pcap, runs tshark on it, and checks everything it shows. With
/// `corrupted = Some(i)`, FPDU `i` is expected to carry a bad CRC, reported as such
/// with `should be` the CRC it had before; every other FPDU must still be good.
pub(crate) fn check(ex: &Exchange, corrupted: Option<(usize, u32)>) {
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

/// Flips bits in one octet of the CRC of the FPDU `what` (TCP checksums recomputed)
/// and checks that tshark reports exactly that FPDU as bad.
pub(crate) fn corrupt_and_check(ex: &Exchange, what: &str) {
    let i = ex.fpdus.iter().position(|f| f.what == what).unwrap();
    let mut bad = ex.clone();
    let payload = &mut bad.conv.segments[ex.fpdus[i].segment].payload;
    let n = payload.len();
    let good = u32::from_be_bytes(payload[n - 4..].try_into().unwrap());
    payload[n - 3] ^= 0x5a;
    check(&bad, Some((i, good)));
}

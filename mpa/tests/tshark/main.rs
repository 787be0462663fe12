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
//!
//! The modules: [`frames`] (header and marker octets), [`pcap`] (the TCP
//! conversation and its pcap file), [`exchange`] (the MPA exchange written),
//! [`dissect`] (running tshark), [`check`] (what it must show); for RFC 7306,
//! [`extensions`] (Immediate Data and Atomics produced by ddp-core's `Connection`, a
//! dev-dependency) and [`check_extensions`] (the decoded Atomic fields, and the
//! Immediate Data octets Wireshark does not decode).

mod check;
mod check_extensions;
mod dissect;
mod exchange;
mod extensions;
mod frames;
mod pcap;

use check::{check, corrupt_and_check};
use check_extensions::check_extensions;
use exchange::{assert_coverage, exchange};

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

/// RFC 7306 messages built by ddp-core's `Connection` (Immediate Data, Atomic Request
/// and Response) decode with the values posted, good CRCs, nothing malformed.
#[test]
fn rfc7306_extensions() {
    for (name, markers) in [("rfc7306", false), ("rfc7306-markers", true)] {
        let ext = extensions::extensions_exchange(name, markers);
        check(&ext.ex, None);
        check_extensions(&ext);
    }
}

//! Negotiation against RFC rules and against models of siw's startup code
//! (docs/wire-facts.md §1.3, §2.4, §2.5).

use super::frame::{FrameKind, StartupRepr};
use super::ird_ord::{IrdOrd, NO_NEGOTIATION};
use super::negotiate::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

const REQ_KEY: &str = "4d 50 41 20 49 44 20 52 65 71 20 46 72 61 6d 65";
const REP_KEY: &str = "4d 50 41 20 49 44 20 52 65 70 20 46 72 61 6d 65";

/// siw as Responder (upstream defaults): echoes the Request header, rejects markers,
/// picks exactly one RTR type (Write if offered, else Read, else Write), adopts
/// IRD/ORD clamped to 128.
fn siw_responder(request: &[u8]) -> Vec<u8> {
    let req = StartupRepr::parse_bytes(request).expect("siw parses the request");
    let mut reply = request[..20].to_vec();
    reply[9] = b'p';
    if req.markers {
        reply[16] = (reply[16] & !0x80) | 0x20;
        return reply_with(reply, req.ird_ord.map(|_| [0, 0, 0, 0]));
    }
    let word = req.ird_ord.map(|w| {
        let ird = w.ord.min(128);
        let ord = w.ird.min(128);
        let (c, d) = if !w.peer_to_peer {
            (false, false)
        } else if w.write_rtr {
            (true, false)
        } else if w.read_rtr {
            (false, true)
        } else {
            (true, false)
        };
        IrdOrd {
            peer_to_peer: w.peer_to_peer,
            send_rtr: false,
            ird,
            write_rtr: c,
            read_rtr: d,
            ord,
        }
        .emit()
    });
    reply_with(reply, word)
}

fn reply_with(mut header: Vec<u8>, word: Option<[u8; 4]>) -> Vec<u8> {
    match word {
        Some(w) => {
            header[18..20].copy_from_slice(&4u16.to_be_bytes());
            header.extend_from_slice(&w);
        }
        None => header[18..20].copy_from_slice(&0u16.to_be_bytes()),
    }
    header
}

/// siw as Initiator accepts a Reply only if it is Rev 2 with S=1, R=0, M=0 and
/// carries the IRD/ORD word; returns whether CRC is on.
fn siw_initiator_accepts(reply: &[u8]) -> Result<bool, &'static str> {
    let r = StartupRepr::parse_bytes(reply).map_err(|_| "unparsable")?;
    if r.reject {
        return Err("rejected");
    }
    if r.markers {
        return Err("markers");
    }
    if r.rev != 2 || r.ird_ord.is_none() {
        return Err("not enhanced");
    }
    Ok(r.crc)
}

#[test]
fn siw_request_gets_an_enhanced_echo() {
    let siw_request = hex(&format!("{REQ_KEY} 10 02 00 04 00 01 00 01"));
    let req = StartupRepr::parse_bytes(&siw_request).unwrap();
    // eta defaults: CRC on (RFC 5044 §4.4) — siw honours a Reply with C=1.
    let cfg = LocalConfig::default();
    let n = on_request(&cfg, &req).unwrap();
    assert!(n.crc && n.enhanced && !n.markers_tx && !n.markers_rx);
    assert_eq!(
        (n.ird, n.ord),
        (16, 1),
        "ORD <= initiator IRD; IRD kept >= initiator ORD"
    );
    assert_eq!(n.rtr, None, "siw never asks for peer-to-peer");
    let bytes = reply(&cfg, &req, &n, &[]).unwrap().to_vec().unwrap();
    assert_eq!(bytes, hex(&format!("{REP_KEY} 50 02 00 04 00 10 00 01")));
    assert_eq!(siw_initiator_accepts(&bytes), Ok(true));
    // With CRC off locally, the Reply is siw's own echo byte for byte.
    let cfg = LocalConfig {
        crc: false,
        ird: 1,
        ..LocalConfig::default()
    };
    let n = on_request(&cfg, &req).unwrap();
    let bytes = reply(&cfg, &req, &n, &[]).unwrap().to_vec().unwrap();
    assert_eq!(bytes, hex(&format!("{REP_KEY} 10 02 00 04 00 01 00 01")));
    assert_eq!(siw_initiator_accepts(&bytes), Ok(false));
}

#[test]
fn rev1_only_responder_answers_unenhanced_which_siw_refuses() {
    let siw_request = hex(&format!("{REQ_KEY} 10 02 00 04 00 01 00 01"));
    let req = StartupRepr::parse_bytes(&siw_request).unwrap();
    let cfg = LocalConfig {
        revision: 1,
        ..LocalConfig::default()
    };
    let n = on_request(&cfg, &req).unwrap();
    assert!(!n.enhanced);
    let bytes = reply(&cfg, &req, &n, &[]).unwrap().to_vec().unwrap();
    assert_eq!(bytes, hex(&format!("{REP_KEY} 40 01 00 00")));
    assert_eq!(siw_initiator_accepts(&bytes), Err("not enhanced"));
}

#[test]
fn eta_initiator_against_siw_responder() {
    let cfg = LocalConfig::default();
    let req = request(&cfg, b"pd").unwrap();
    let req_bytes = req.to_vec().unwrap();
    assert_eq!(&req_bytes[16..24], &[0x50, 2, 0, 6, 0x80, 16, 0xc0, 16]);
    let reply_bytes = siw_responder(&req_bytes);
    let reply = StartupRepr::parse_bytes(&reply_bytes).unwrap();
    let n = on_reply(&cfg, &reply).unwrap();
    assert!(n.crc, "siw echoes C=1");
    assert_eq!(n.rtr, Some(RtrType::Write));
    assert_eq!((n.ird, n.ord), (16, 16));
    // Read-only offer: siw picks Read and the initiator keeps ORD >= 1.
    let cfg = LocalConfig {
        rtr: RtrTypes {
            read: true,
            ..RtrTypes::default()
        },
        ord: 0,
        ..LocalConfig::default()
    };
    let req_bytes = request(&cfg, &[]).unwrap().to_vec().unwrap();
    let reply_bytes = siw_responder(&req_bytes);
    let n = on_reply(&cfg, &StartupRepr::parse_bytes(&reply_bytes).unwrap()).unwrap();
    assert_eq!(n.rtr, Some(RtrType::Read));
    assert!(n.ord >= 1);
    // Send-only offer: siw answers Write, which we did not offer: no matching RTR,
    // reported with RFC 6581 code 0x07.
    let cfg = LocalConfig {
        rtr: RtrTypes {
            send: true,
            ..RtrTypes::default()
        },
        ..LocalConfig::default()
    };
    let req_bytes = request(&cfg, &[]).unwrap().to_vec().unwrap();
    let reply_bytes = siw_responder(&req_bytes);
    let err = on_reply(&cfg, &StartupRepr::parse_bytes(&reply_bytes).unwrap()).unwrap_err();
    assert_eq!(err, NegotiationError::NoMatchingRtr);
    assert_eq!(err.code().map(|c| c.value()), Some(0x07));
}

#[test]
fn asking_siw_for_markers_is_rejected_cleanly() {
    let cfg = LocalConfig {
        want_markers: true,
        ..LocalConfig::default()
    };
    let req_bytes = request(&cfg, &[]).unwrap().to_vec().unwrap();
    assert_eq!(req_bytes[16] & 0x80, 0x80);
    let reply_bytes = siw_responder(&req_bytes);
    let reply = StartupRepr::parse_bytes(&reply_bytes).unwrap();
    assert!(reply.reject);
    assert_eq!(
        on_reply(&cfg, &reply),
        Err(NegotiationError::Rejected {
            private_data: vec![]
        })
    );
}

#[test]
fn responder_that_does_not_send_markers_rejects_like_siw() {
    let initiator = LocalConfig {
        want_markers: true,
        ..LocalConfig::default()
    };
    let req = request(&initiator, b"hi").unwrap();
    let responder = LocalConfig {
        send_markers: false,
        ..LocalConfig::default()
    };
    assert_eq!(
        on_request(&responder, &req),
        Err(NegotiationError::MarkersUnsupported)
    );
    let rej = reject(&responder, &req, b"no markers").to_vec().unwrap();
    let rej = StartupRepr::parse_bytes(&rej).unwrap();
    assert!(rej.reject && rej.enhanced() && !rej.markers);
    assert_eq!(
        on_reply(&initiator, &rej),
        Err(NegotiationError::Rejected {
            private_data: b"no markers".to_vec()
        })
    );
}

#[test]
fn markers_per_direction() {
    // Initiator wants markers from the responder; responder wants none.
    let init = LocalConfig {
        want_markers: true,
        ..LocalConfig::default()
    };
    let resp = LocalConfig::default();
    let req = request(&init, &[]).unwrap();
    let rn = on_request(&resp, &req).unwrap();
    assert!(rn.markers_tx && !rn.markers_rx);
    let rep = reply(&resp, &req, &rn, &[]).unwrap();
    let inn = on_reply(&init, &rep).unwrap();
    assert!(!inn.markers_tx && inn.markers_rx);
    // Both want markers.
    let resp = LocalConfig {
        want_markers: true,
        ..LocalConfig::default()
    };
    let rn = on_request(&resp, &req).unwrap();
    let rep = reply(&resp, &req, &rn, &[]).unwrap();
    let inn = on_reply(&init, &rep).unwrap();
    assert!(rn.markers_tx && rn.markers_rx && inn.markers_tx && inn.markers_rx);
}

#[test]
fn crc_is_on_if_either_side_asks() {
    for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
        let init = LocalConfig {
            crc: a,
            ..LocalConfig::default()
        };
        let resp = LocalConfig {
            crc: b,
            ..LocalConfig::default()
        };
        let req = request(&init, &[]).unwrap();
        let rn = on_request(&resp, &req).unwrap();
        let inn = on_reply(&init, &reply(&resp, &req, &rn, &[]).unwrap()).unwrap();
        assert_eq!(rn.crc, a || b);
        assert_eq!(inn.crc, a || b);
    }
}

#[test]
fn ird_ord_rules() {
    // After success: initiator ORD <= responder IRD, responder ORD <= initiator IRD.
    for (ii, io, ri, ro) in [
        (1, 1, 1, 1),
        (4, 64, 8, 2),
        (0, 0, 16, 16),
        (128, 128, 1, 1),
    ] {
        let init = LocalConfig {
            ird: ii,
            ord: io,
            ..LocalConfig::default()
        };
        let resp = LocalConfig {
            ird: ri,
            ord: ro,
            ..LocalConfig::default()
        };
        let req = request(&init, &[]).unwrap();
        let rn = on_request(&resp, &req).unwrap();
        let inn = on_reply(&init, &reply(&resp, &req, &rn, &[]).unwrap()).unwrap();
        assert!(inn.ord <= rn.ird, "{ii} {io} {ri} {ro}: {inn:?} {rn:?}");
        assert!(rn.ord <= inn.ird, "{ii} {io} {ri} {ro}: {inn:?} {rn:?}");
        assert_eq!(inn.peer_ird_ord.unwrap().ird, rn.ird);
    }
    // An initiator ORD beyond the responder's maximum IRD is clamped (relaxed, as
    // siw) and the initiator lowers its ORD.
    let init = LocalConfig {
        ord: 500,
        ..LocalConfig::default()
    };
    let resp = LocalConfig::default();
    let req = request(&init, &[]).unwrap();
    let rn = on_request(&resp, &req).unwrap();
    assert_eq!(rn.ird, 128);
    let inn = on_reply(&init, &reply(&resp, &req, &rn, &[]).unwrap()).unwrap();
    assert_eq!(inn.ord, 128);
    // A responder ORD the initiator cannot serve: TERM code 0x06.
    let big = StartupRepr {
        kind: FrameKind::Reply,
        markers: false,
        crc: true,
        reject: false,
        rev: 2,
        ird_ord: Some(IrdOrd {
            ird: 4,
            ord: 1000,
            ..IrdOrd::default()
        }),
        private_data: &[],
    };
    let err = on_reply(&LocalConfig::default(), &big).unwrap_err();
    assert_eq!(
        err,
        NegotiationError::InsufficientIrd {
            required: 1000,
            max: 128
        }
    );
    assert_eq!(err.code().map(|c| c.value()), Some(0x06));
}

#[test]
fn no_negotiation_value_keeps_local_and_is_echoed() {
    let init = LocalConfig {
        ird: NO_NEGOTIATION,
        ord: NO_NEGOTIATION,
        ..LocalConfig::default()
    };
    let resp = LocalConfig {
        ird: 3,
        ord: 5,
        ..LocalConfig::default()
    };
    let req = request(&init, &[]).unwrap();
    let rn = on_request(&resp, &req).unwrap();
    assert_eq!((rn.ird, rn.ord), (3, 5));
    let rep = reply(&resp, &req, &rn, &[]).unwrap();
    let w = rep.ird_ord.unwrap();
    assert_eq!((w.ird, w.ord), (NO_NEGOTIATION, NO_NEGOTIATION));
    let inn = on_reply(&init, &rep).unwrap();
    assert_eq!((inn.ird, inn.ord), (NO_NEGOTIATION, NO_NEGOTIATION));
}

#[test]
fn rtr_selection() {
    let resp_all = LocalConfig {
        rtr: RtrTypes {
            send: true,
            write: true,
            read: true,
        },
        ..LocalConfig::default()
    };
    for (offer, expect) in [
        (RtrTypes::WRITE_READ, RtrType::Write),
        (
            RtrTypes {
                read: true,
                ..RtrTypes::default()
            },
            RtrType::Read,
        ),
        (
            RtrTypes {
                send: true,
                ..RtrTypes::default()
            },
            RtrType::Send,
        ),
    ] {
        let init = LocalConfig {
            rtr: offer,
            ..LocalConfig::default()
        };
        let req = request(&init, &[]).unwrap();
        let rn = on_request(&resp_all, &req).unwrap();
        assert_eq!(rn.rtr, Some(expect));
        let rep = reply(&resp_all, &req, &rn, &[]).unwrap();
        let w = rep.ird_ord.unwrap();
        assert!(w.peer_to_peer);
        assert_eq!(
            [w.send_rtr, w.write_rtr, w.read_rtr]
                .iter()
                .filter(|b| **b)
                .count(),
            1,
            "exactly one RTR type in the Reply"
        );
        assert_eq!(on_reply(&init, &rep).unwrap().rtr, Some(expect));
    }
    // Client-server: no A bit, no RTR.
    let init = LocalConfig {
        peer_to_peer: false,
        ..LocalConfig::default()
    };
    let req = request(&init, &[]).unwrap();
    assert!(!req.ird_ord.unwrap().peer_to_peer);
    let rn = on_request(&resp_all, &req).unwrap();
    assert_eq!(rn.rtr, None);
}

#[test]
fn rev1_fallback_and_unenhanced_reply() {
    let cfg = LocalConfig::default();
    let fb = cfg.rev1_fallback().unwrap();
    assert_eq!(fb.revision, 1);
    assert!(fb.rev1_fallback().is_none());
    let req = request(&fb, b"x").unwrap();
    assert!(!req.enhanced());
    assert_eq!(req.to_vec().unwrap()[16..20], [0x40, 1, 0, 1]);
    // An RFC 5044 responder's Rev 1 Reply to an enhanced Request is accepted in the
    // client-server model with local IRD/ORD.
    let rev1_bytes = hex(&format!("{REP_KEY} 00 01 00 00"));
    let rev1_reply = StartupRepr::parse_bytes(&rev1_bytes).unwrap();
    let n = on_reply(&cfg, &rev1_reply).unwrap();
    assert!(!n.enhanced && n.rtr.is_none() && n.crc);
    assert_eq!(n.revision, 1);
    // A Reply claiming a higher revision than requested is refused.
    let rev2_bytes = hex(&format!("{REP_KEY} 10 02 00 04 00 01 00 01"));
    let rev2_reply = StartupRepr::parse_bytes(&rev2_bytes).unwrap();
    assert_eq!(
        on_reply(&fb, &rev2_reply),
        Err(NegotiationError::RevisionMismatch {
            sent: 1,
            received: 2
        })
    );
}

#[test]
fn private_data_limits_and_kinds() {
    let cfg = LocalConfig::default();
    assert!(request(&cfg, &[0; 508]).is_ok());
    assert_eq!(
        request(&cfg, &[0; 509]).unwrap_err(),
        NegotiationError::PrivateDataTooLong { len: 509, max: 508 }
    );
    let rev1 = cfg.rev1_fallback().unwrap();
    assert!(request(&rev1, &[0; 512]).is_ok());
    let req = request(&cfg, &[]).unwrap();
    assert_eq!(on_reply(&cfg, &req), Err(NegotiationError::WrongFrameKind));
    let n = on_request(&cfg, &req).unwrap();
    let rep = reply(&cfg, &req, &n, &[]).unwrap();
    assert_eq!(
        on_request(&cfg, &rep),
        Err(NegotiationError::WrongFrameKind)
    );
    // A reject always fits, whatever private data it is given.
    let rej = reject(&cfg, &req, &[7; 600]);
    assert_eq!(rej.to_vec().unwrap().len(), 20 + 512);
}

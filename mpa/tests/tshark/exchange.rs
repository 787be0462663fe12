//! The capture's content: an MPA exchange built with this crate (startup frames from
//! the negotiation functions, FPDUs from [`Framer`]), each FPDU checked against the
//! RFC on the way, and what the exchange must cover.

use eta_mpa::startup::negotiate::{on_reply, on_request, reply, request};
use eta_mpa::{Framer, FramerConfig, LocalConfig, Negotiated, RtrType, StartupRepr, pad_len};

use crate::frames::{
    OP_READ_REQUEST, OP_READ_RESPONSE, OP_SEND, OP_TERMINATE, OP_WRITE, pattern, rfc_markers,
    tagged, untagged,
};
use crate::pcap::{Conversation, Dir};

/// An FPDU written to the capture and what tshark must show for it.
#[derive(Debug, Clone)]
pub(crate) struct Fpdu {
    pub(crate) what: &'static str,
    /// Index of its segment in the conversation (frame number − 1).
    pub(crate) segment: usize,
    /// Stream position relative to SeqStart of its direction.
    pub(crate) start: u32,
    pub(crate) wire_len: usize,
    pub(crate) ulpdu_len: u16,
    pub(crate) opcode: u8,
    pub(crate) msn: Option<u32>,
    /// The DDP payload (after the DDP/RDMAP header).
    pub(crate) payload: Vec<u8>,
    /// `(offset in the FPDU, FPDUPTR)` of each marker.
    pub(crate) markers: Vec<(usize, u16)>,
}

/// A whole capture: handshake, Request, Reply, FPDUs, close.
#[derive(Clone)]
pub(crate) struct Exchange {
    pub(crate) name: &'static str,
    pub(crate) rev: u8,
    pub(crate) markers: bool,
    pub(crate) conv: Conversation,
    pub(crate) request_segment: usize,
    pub(crate) reply_segment: usize,
    pub(crate) fpdus: Vec<Fpdu>,
}

impl Exchange {
    /// The FPDU octets as written (the payload of its segment).
    pub(crate) fn wire(&self, f: &Fpdu) -> &[u8] {
        &self.conv.segments[f.segment].payload
    }
}

/// Builds FPDUs in both directions on one conversation.
pub(crate) struct Builder {
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
    pub(crate) fn fpdu(
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

/// A conversation after the TCP handshake and the MPA Request and Reply, each alone
/// in a segment, ready for FPDUs.
pub(crate) struct Opened {
    pub(crate) builder: Builder,
    /// Both ends' outcome of the negotiation (Initiator, Responder).
    pub(crate) negotiated: (Negotiated, Negotiated),
    request_segment: usize,
    reply_segment: usize,
    name: &'static str,
    rev: u8,
    markers: bool,
}

impl Opened {
    /// The exchange once every FPDU is in and the Responder closed.
    pub(crate) fn finish(mut self) -> Exchange {
        self.builder.conv.close(Dir::Responder);
        Exchange {
            name: self.name,
            rev: self.rev,
            markers: self.markers,
            conv: self.builder.conv,
            request_segment: self.request_segment,
            reply_segment: self.reply_segment,
            fpdus: self.builder.fpdus,
        }
    }
}

/// Opens a conversation for MPA revision `rev`, with markers in both directions or
/// none, negotiated by the crate's startup functions.
pub(crate) fn open(name: &'static str, rev: u8, markers: bool) -> Opened {
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
    let builder = Builder {
        conv,
        framers: [framer(&n_init), framer(&n_resp)],
        seq_start: [None; 2],
        fpdus: Vec::new(),
    };
    Opened {
        builder,
        negotiated: (n_init, n_resp),
        request_segment,
        reply_segment,
        name,
        rev,
        markers,
    }
}

/// The full exchange for MPA revision `rev`, with markers in both directions or none.
pub(crate) fn exchange(name: &'static str, rev: u8, markers: bool) -> Exchange {
    let mut opened = open(name, rev, markers);
    let rtr = opened.negotiated.0.rtr;
    let b = &mut opened.builder;
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
    send(b, I, "Send 5", 5);
    send(b, R, "Send 700", 700);
    send(b, I, "Send 600", 600);

    let (sink_stag, sink_to, read_len) = (0x0102_0304u32, 0x0000_7f00_0000_2000u64, 2048u32);
    let mut rreq = untagged(OP_READ_REQUEST, 1, 1, 0);
    rreq.extend_from_slice(&sink_stag.to_be_bytes());
    rreq.extend_from_slice(&sink_to.to_be_bytes());
    rreq.extend_from_slice(&read_len.to_be_bytes());
    rreq.extend_from_slice(&0x0a0b_0c0du32.to_be_bytes()); // source STag
    rreq.extend_from_slice(&0x1000u64.to_be_bytes()); // source TO
    b.fpdu(I, "RDMA Read Request", rreq, &[], Some(1));

    send(b, R, "Send 10", 10);
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

    send(b, I, "Send 4000", 4000);
    // A Send whose FPDU ends exactly on a marker position, so that the next FPDU
    // starts with a marker of its own (FPDUPTR 0) in the middle of the stream.
    let pos = b.position(I);
    let to_boundary = (1..2048)
        .find(|&n| (pos as usize + b.wire_len(I, 18 + n)) % 512 == 0)
        .unwrap();
    send(b, I, "Send ending on a marker boundary", to_boundary);
    send(b, I, "Send 1", 1);
    // A Send with a pad whose marker falls between the PAD and the CRC.
    let pos = b.position(I);
    let pad_marker_crc = (1..2048)
        .find(|&n| pad_len(18 + n) > 0 && (pos as usize + b.wire_len(I, 18 + n) - 8) % 512 == 0)
        .unwrap();
    send(
        b,
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
    opened.finish()
}

/// Checks that the exchange covers what it is meant to.
pub(crate) fn assert_coverage(ex: &Exchange) {
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

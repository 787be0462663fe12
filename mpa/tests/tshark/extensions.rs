//! RFC 7306 on the wire, as ddp-core's real [`Connection`]s produce it: two
//! connections with the extensions on exchange Immediate Data (0x8), Immediate Data
//! with SE (0x9), FetchAdd and CmpSwap Atomic Requests (0xA, plain and masked) and
//! their Atomic Responses (0xB). Each segment is carried to the other connection and
//! framed into the capture, which tshark must decode with the values that were posted.
//!
//! Wireshark 4.0 decodes the Atomic headers (`iwarp_rdma.atomic.*`) but not the
//! Immediate Data opcodes (shown as unknown), so those are checked by their octets.

use eta_ddp_core::{
    Access, AtomicArgs, AtomicOp, Config, ConnId, Connection, LocalBuffer, MemoryTable, RtrKind,
    RxVerdict, Scope, Stag,
};

use crate::exchange::{Builder, Exchange, open};
use crate::pcap::Dir;

/// An Atomic posted by the Initiator: what tshark must show for its request and
/// response.
pub(crate) struct PostedAtomic {
    pub(crate) what: &'static str,
    pub(crate) stag: Stag,
    pub(crate) to: u64,
    pub(crate) args: AtomicArgs,
    /// The target's value before the Atomic, returned in the response.
    pub(crate) original: u64,
}

/// An Immediate Data message posted by the Initiator.
pub(crate) struct PostedImmediate {
    pub(crate) what: &'static str,
    pub(crate) data: [u8; 8],
    pub(crate) solicited: bool,
    pub(crate) msn: u32,
}

/// The capture and what was posted into it.
pub(crate) struct ExtensionsExchange {
    pub(crate) ex: Exchange,
    pub(crate) atomics: Vec<PostedAtomic>,
    pub(crate) immediates: Vec<PostedImmediate>,
}

fn what(opcode: u8) -> &'static str {
    match opcode {
        0x0 => "zero-length Write RTR",
        0x3 => "Send",
        0x8 => "Immediate Data",
        0x9 => "Immediate Data with SE",
        0xA => "Atomic Request",
        0xB => "Atomic Response",
        _ => panic!("unexpected opcode {opcode:#x} in this exchange"),
    }
}

/// Moves every segment `from` has to send into `to` and into the capture.
fn carry(from: &mut Connection, to: &mut Connection, b: &mut Builder, dir: Dir) {
    while let Some(seg) = from.poll_segment() {
        let header = seg.header().to_vec();
        let payload = from.segment_payload(&seg).to_vec();
        from.segment_sent(seg.token());
        let mut ulpdu = header.clone();
        ulpdu.extend_from_slice(&payload);
        assert_eq!(to.recv_ulpdu(&ulpdu), RxVerdict::Accepted);
        let opcode = header[1] & 0x0f;
        // Immediate Data: ddp-core sends the 8 octets with the header, and tshark,
        // which does not know the opcode, shows no payload: the 8 octets are checked
        // by check_extensions.
        let tagged = header[0] & 0x80 != 0;
        let msn = (!tagged).then(|| u32::from_be_bytes(header[10..14].try_into().unwrap()));
        b.fpdu(dir, what(opcode), header, &payload, msn);
    }
}

/// Registers 16 octets at an 8-octet aligned address for `conn`, holding `values`
/// (in this host's byte order, as the Responder's memory would).
fn target(table: &MemoryTable, conn: ConnId, base_to: u64, values: [u64; 2]) -> Stag {
    let mut buf: Box<[u8]> = vec![0u8; 32].into();
    let start = (8 - buf.as_ptr() as usize % 8) % 8;
    buf[start..start + 8].copy_from_slice(&values[0].to_ne_bytes());
    buf[start + 8..start + 16].copy_from_slice(&values[1].to_ne_bytes());
    table
        .register_owned(
            buf,
            start..start + 16,
            base_to,
            Access::REMOTE_ATOMIC,
            Scope::Connection(conn),
        )
        .unwrap()
}

/// Builds the capture: MPA revision 2 (Write RTR), CRC, markers or not.
pub(crate) fn extensions_exchange(name: &'static str, markers: bool) -> ExtensionsExchange {
    let mut opened = open(name, 2, markers);
    let (init, resp) = &opened.negotiated;
    let table = MemoryTable::new();
    let (ia, ib) = (ConnId(1), ConnId(2));
    let mk = |id, send_rtr| {
        let mut cfg = Config::new(id, eta_mpa::mulpdu(1460, markers));
        cfg.extensions = true;
        cfg.send_rtr = send_rtr;
        Connection::new(cfg, table.clone()).unwrap()
    };
    assert!(init.rtr.is_some() && resp.rtr.is_some());
    let mut a = mk(ia, Some(RtrKind::Write));
    let mut b = mk(ib, None);

    let t1 = target(
        &table,
        ib,
        0x7000,
        [0x0000_0001_FFFF_FFFF, 0x1122_3344_5566_7788],
    );
    let t2 = target(
        &table,
        ib,
        0x1_0003,
        [0x0102_0304_0506_0708, 0xFF00_FF00_FF00_FF00],
    );
    let atomics = vec![
        PostedAtomic {
            what: "FetchAdd",
            stag: t1,
            to: 0x7000,
            args: AtomicArgs::fetch_add(0x10),
            original: 0x0000_0001_FFFF_FFFF,
        },
        PostedAtomic {
            what: "CmpSwap",
            stag: t1,
            to: 0x7008,
            args: AtomicArgs::compare_swap(0x1122_3344_5566_7788, 0xCAFE_F00D_DEAD_BEEF),
            original: 0x1122_3344_5566_7788,
        },
        PostedAtomic {
            what: "masked FetchAdd (two 32-bit fields)",
            stag: t2,
            to: 0x1_0003,
            args: AtomicArgs {
                data_mask: 0x8000_0000_8000_0000,
                ..AtomicArgs::fetch_add(0x0000_0001_FFFF_FFFF)
            },
            original: 0x0102_0304_0506_0708,
        },
        PostedAtomic {
            what: "masked CmpSwap",
            stag: t2,
            to: 0x1_000B,
            args: AtomicArgs {
                op: AtomicOp::CompareSwap,
                data: 0x0000_1111_0000_2222,
                data_mask: 0x0000_FFFF_0000_FFFF,
                compare: 0xFF00_0000_0000_0000,
                compare_mask: 0xFF00_0000_0000_0000,
            },
            original: 0xFF00_FF00_FF00_FF00,
        },
    ];
    let immediates = vec![
        PostedImmediate {
            what: "Immediate Data",
            data: *b"imm-data",
            solicited: false,
            msn: 1,
        },
        PostedImmediate {
            what: "Immediate Data with SE",
            data: [0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67],
            solicited: true,
            msn: 2,
        },
    ];
    for i in 0..2 {
        b.post_recv(i, LocalBuffer::from_boxed(vec![0; 16].into()))
            .unwrap();
    }
    for (i, imm) in immediates.iter().enumerate() {
        a.post_immediate(10 + i as u64, imm.data, imm.solicited)
            .unwrap();
    }
    for (i, at) in atomics.iter().enumerate() {
        a.post_atomic_masked(20 + i as u64, at.stag, at.to, at.args)
            .unwrap();
    }
    let builder = &mut opened.builder;
    carry(&mut a, &mut b, builder, Dir::Initiator);
    carry(&mut b, &mut a, builder, Dir::Responder);
    assert_eq!(a.poll_event(), None);
    assert_eq!(b.poll_event(), None);

    // What the connections report: the Immediate Data received, each Atomic's value.
    for imm in &immediates {
        let c = b.poll_completion().unwrap();
        assert_eq!((c.immediate, c.solicited), (Some(imm.data), imm.solicited));
    }
    let done: Vec<_> = std::iter::from_fn(|| a.poll_completion())
        .map(|c| (c.wr_id, c.atomic_value))
        .collect();
    let mut expect = vec![(10, None), (11, None)];
    expect.extend((0..atomics.len()).map(|i| (20 + i as u64, Some(atomics[i].original))));
    assert_eq!(done, expect);

    ExtensionsExchange {
        ex: opened.finish(),
        atomics,
        immediates,
    }
}

//! Outbound messages: what they are, where their payload comes from, and the header
//! of each of their segments.

use crate::placement::{LocalBuffer, RawMem};
use crate::segment::HEADER_CAPACITY;
use crate::wire::ddp::DDP_VERSION;
use crate::wire::{
    AtomicRequestPacket, AtomicRequestRepr, AtomicResponsePacket, AtomicResponseRepr, DdpPacket,
    DdpRepr, ImmediateDataPacket, ImmediateDataRepr, Opcode, RdmapControl, ReadRequestPacket,
    ReadRequestRepr, TAGGED_HEADER_LEN, TaggedRepr, UNTAGGED_HEADER_LEN, UntaggedRepr,
};

/// What an outbound message is.
#[derive(Debug)]
pub(in crate::connection) enum MsgKind {
    Send {
        opcode: Opcode,
        inv: u32,
    },
    Write {
        stag: u32,
        to: u64,
    },
    ReadRequest(ReadRequestRepr),
    ReadResponse {
        stag: u32,
        to: u64,
    },
    Terminate {
        ulpdu: [u8; HEADER_CAPACITY],
        len: u8,
    },
    Immediate {
        opcode: Opcode,
        data: [u8; 8],
    },
    AtomicRequest(AtomicRequestRepr),
    AtomicResponse(AtomicResponseRepr),
}

/// Where a message's payload comes from.
#[derive(Debug)]
pub(in crate::connection) enum Source {
    None,
    Local(LocalBuffer),
    Region(RawMem),
}

/// An outbound message, queued or in transmission.
#[derive(Debug)]
pub(in crate::connection) struct TxMsg {
    /// Position in the transmit order (identifies its segments' tokens).
    pub(super) seq: u64,
    /// The send-queue entry it completes, if any.
    sq: Option<u64>,
    pub(super) kind: MsgKind,
    src: Source,
    /// Payload length.
    pub(super) len: u32,
    pub(super) msn: u32,
    /// Payload octets already segmented.
    pub(super) cursor: u32,
    /// Every segment was handed out.
    pub(super) emitted_all: bool,
    /// Segments handed out and not yet reported sent.
    pub(super) unacked: u32,
    /// Given up (flushed or the transport closed) before it was all sent.
    pub(super) abandoned: bool,
}

impl TxMsg {
    pub(in crate::connection) fn new(
        sq: Option<u64>,
        kind: MsgKind,
        src: Source,
        len: u32,
    ) -> Self {
        TxMsg {
            seq: 0,
            sq,
            kind,
            src,
            len,
            msn: 0,
            cursor: 0,
            emitted_all: false,
            unacked: 0,
            abandoned: false,
        }
    }

    /// The send-queue entry it completes, if any.
    pub(in crate::connection) fn sq(&self) -> Option<u64> {
        self.sq
    }

    /// The work request's owned buffer, if it has one.
    pub(in crate::connection) fn into_buffer(self) -> Option<Box<[u8]>> {
        match self.src {
            Source::Local(b) => b.into_boxed(),
            _ => None,
        }
    }

    pub(super) fn header_len(&self) -> usize {
        match &self.kind {
            MsgKind::Write { .. } | MsgKind::ReadResponse { .. } => TAGGED_HEADER_LEN,
            MsgKind::Send { .. } => UNTAGGED_HEADER_LEN,
            MsgKind::Terminate { len, .. } => *len as usize,
            MsgKind::ReadRequest(_) => UNTAGGED_HEADER_LEN + crate::wire::read_request::HEADER_LEN,
            MsgKind::Immediate { .. } => UNTAGGED_HEADER_LEN + crate::wire::atomic::IMMEDIATE_LEN,
            MsgKind::AtomicRequest(_) => UNTAGGED_HEADER_LEN + crate::wire::atomic::REQUEST_LEN,
            MsgKind::AtomicResponse(_) => UNTAGGED_HEADER_LEN + crate::wire::atomic::RESPONSE_LEN,
        }
    }

    /// The untagged queue whose MSN it takes, if any.
    pub(super) fn queue(&self) -> Option<usize> {
        match &self.kind {
            MsgKind::Send { .. } | MsgKind::Immediate { .. } => Some(0),
            MsgKind::ReadRequest(_) | MsgKind::AtomicRequest(_) => Some(1),
            MsgKind::Terminate { .. } => None,
            MsgKind::AtomicResponse(_) => Some(3),
            MsgKind::Write { .. } | MsgKind::ReadResponse { .. } => None,
        }
    }

    pub(super) fn payload(&self, offset: u32, len: u32) -> Option<&[u8]> {
        let (o, l) = (offset as usize, len as usize);
        match &self.src {
            Source::None => (l == 0).then_some(&[][..]),
            Source::Local(b) => b.slice(o, l),
            Source::Region(m) => m.slice(o, l),
        }
    }
}

fn untagged(op: Opcode, last: bool, inv: u32, qn: u32, msn: u32, mo: u32) -> DdpRepr {
    DdpRepr::Untagged(UntaggedRepr {
        last,
        version: DDP_VERSION,
        rsvd_ulp: RdmapControl::new(op).0,
        rsvd_ulp2: inv,
        qn,
        msn,
        mo,
    })
}

fn tagged(op: Opcode, last: bool, stag: u32, to: u64) -> DdpRepr {
    DdpRepr::Tagged(TaggedRepr {
        last,
        version: DDP_VERSION,
        rsvd_ulp: RdmapControl::new(op).0,
        stag,
        tagged_offset: to,
    })
}

/// Writes the header of the segment at payload `offset`; returns its length.
pub(super) fn write_header(
    msg: &TxMsg,
    offset: u32,
    last: bool,
    out: &mut [u8; HEADER_CAPACITY],
) -> usize {
    let ddp = match &msg.kind {
        MsgKind::Send { opcode, inv } => untagged(*opcode, last, *inv, 0, msg.msn, offset),
        MsgKind::Write { stag, to } => tagged(
            Opcode::Write,
            last,
            *stag,
            to.wrapping_add(u64::from(offset)),
        ),
        MsgKind::ReadResponse { stag, to } => tagged(
            Opcode::ReadResponse,
            last,
            *stag,
            to.wrapping_add(u64::from(offset)),
        ),
        MsgKind::ReadRequest(_) => untagged(Opcode::ReadRequest, true, 0, 1, msg.msn, 0),
        MsgKind::Immediate { opcode, .. } => untagged(*opcode, true, 0, 0, msg.msn, 0),
        MsgKind::AtomicRequest(_) => untagged(Opcode::AtomicRequest, true, 0, 1, msg.msn, 0),
        MsgKind::AtomicResponse(_) => untagged(Opcode::AtomicResponse, true, 0, 3, msg.msn, 0),
        MsgKind::Terminate { ulpdu, len } => {
            let n = *len as usize;
            out[..n].copy_from_slice(&ulpdu[..n]);
            return n;
        }
    };
    ddp.emit(&mut DdpPacket::new_unchecked(&mut out[..]));
    let h = ddp.header_len();
    let rest = &mut out[h..];
    let extra = match &msg.kind {
        MsgKind::ReadRequest(r) => {
            r.emit(&mut ReadRequestPacket::new_unchecked(&mut rest[..]));
            crate::wire::read_request::HEADER_LEN
        }
        MsgKind::Immediate { data, .. } => {
            ImmediateDataRepr { data: *data }
                .emit(&mut ImmediateDataPacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::IMMEDIATE_LEN
        }
        MsgKind::AtomicRequest(r) => {
            r.emit(&mut AtomicRequestPacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::REQUEST_LEN
        }
        MsgKind::AtomicResponse(r) => {
            r.emit(&mut AtomicResponsePacket::new_unchecked(&mut rest[..]));
            crate::wire::atomic::RESPONSE_LEN
        }
        _ => 0,
    };
    h + extra
}

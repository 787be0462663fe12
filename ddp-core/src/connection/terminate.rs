//! The Terminate this side sends: why, and which headers of the offending segment
//! it carries (RFC 5040 §5.4, §7).
//!
//! Receive checks and local failures build a [`TermPlan`]; the connection turns the
//! first one into the Terminate message (see `Connection::fail`), which transmit
//! sends ahead of everything else.

use crate::error::TerminateReason;
use crate::segment::HEADER_CAPACITY;
use crate::wire::ddp::DDP_VERSION;
use crate::wire::terminate::IncludedHeader;
use crate::wire::{
    DdpPacket, DdpRepr, Opcode, RdmapControl, TerminateRepr, UNTAGGED_HEADER_LEN, UntaggedRepr,
};

/// A Terminate to build: the reason and the headers of the erroring segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TermPlan {
    reason: TerminateReason,
    ddp: Option<(IncludedHeader, u16)>,
    rdma: Option<[u8; 28]>,
}

impl TermPlan {
    /// A Terminate carrying no header of the erroring segment.
    pub(crate) fn bare(reason: TerminateReason) -> Self {
        TermPlan {
            reason,
            ddp: None,
            rdma: None,
        }
    }

    /// A Terminate carrying the erroring segment's DDP header (`ddp`) and its ULPDU
    /// length (the segment length field).
    pub(crate) fn with_ddp(reason: TerminateReason, ddp: IncludedHeader, ulpdu_len: u16) -> Self {
        TermPlan {
            reason,
            ddp: Some((ddp, ulpdu_len)),
            rdma: None,
        }
    }

    /// Adds the erroring Read Request's RDMA header.
    pub(crate) fn with_rdma(mut self, rdma: [u8; 28]) -> Self {
        self.rdma = Some(rdma);
        self
    }

    /// Why the stream is terminated.
    pub(crate) fn reason(&self) -> TerminateReason {
        self.reason
    }

    /// Writes the Terminate ULPDU into `out`: untagged header (QN 2, `msn`, MO 0, L)
    /// and the Terminate header in RFC layout. Returns its length.
    pub(crate) fn encode(&self, msn: u32, out: &mut [u8; HEADER_CAPACITY]) -> usize {
        DdpRepr::Untagged(UntaggedRepr {
            last: true,
            version: DDP_VERSION,
            rsvd_ulp: RdmapControl::new(Opcode::Terminate).0,
            rsvd_ulp2: 0,
            qn: 2,
            msn,
            mo: 0,
        })
        .emit(&mut DdpPacket::new_unchecked(&mut out[..]));
        let (layer, etype, code) = self.reason.to_parts();
        let mut t = TerminateRepr::bare(layer, etype, code);
        if let Some((h, seg_len)) = self.ddp {
            t.ddp_header = Some(h);
            t.segment_len_valid = true;
            t.segment_len = seg_len;
        }
        t.rdma_header = self.rdma;
        t.rdma_flag = self.rdma.is_some();
        UNTAGGED_HEADER_LEN + t.emit(&mut out[UNTAGGED_HEADER_LEN..])
    }
}

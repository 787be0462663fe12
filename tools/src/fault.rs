//! Fault injection on the wire, without the engine: a minimal MPA Initiator over a
//! plain [`TcpStream`], built from the sans-IO crates (`eta-mpa` startup and
//! framing, `eta-ddp-core` header views). It sends what the engine never would
//! (an FPDU whose CRC is wrong) and decodes what comes back (the peer's Terminate).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use eta_ddp_core::ulpdu_header_len;
use eta_ddp_core::wire::{
    DdpPacket, DdpRepr, Opcode, RdmapControl, TerminatePacket, TerminateRepr, UNTAGGED_HEADER_LEN,
    UntaggedRepr,
};
use eta_mpa::startup::negotiate;
use eta_mpa::{
    Deframer, DeframerConfig, Event, FrameKind, Framer, FramerConfig, LocalConfig, Negotiated,
    ReadProgress, StartupReader,
};

use crate::endpoint::Res;

/// An MPA connection in Full Operation, driven by hand.
#[derive(Debug)]
pub struct RawInitiator {
    stream: TcpStream,
    negotiated: Negotiated,
    framer: Framer,
    /// Octets received after the Reply that belong to Full Operation.
    pending: Vec<u8>,
}

/// What the peer sent after the fault: the first ULPDU received, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAnswer {
    /// A Terminate, with its decoded header.
    Terminate(TerminateRepr),
    /// Some other RDMAP message (its raw opcode).
    Other(u8),
    /// The peer closed the connection without sending an FPDU.
    Closed,
}

impl RawInitiator {
    /// Connects, sends the MPA Request for `cfg` (no private data) and waits up to
    /// `timeout` for the Reply. `cfg.peer_to_peer` must be off: no RTR is sent, so
    /// the first FPDU is the caller's.
    pub fn connect(addr: SocketAddr, cfg: &LocalConfig, timeout: Duration) -> Res<Self> {
        if cfg.peer_to_peer {
            return Err("the raw Initiator speaks the client-server model only (no RTR)".into());
        }
        let mut stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("TCP connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let request = negotiate::request(cfg, &[])
            .map_err(|e| format!("building the MPA Request: {e}"))?
            .to_vec()
            .map_err(|e| format!("building the MPA Request: {e}"))?;
        stream
            .write_all(&request)
            .map_err(|e| format!("sending the MPA Request: {e}"))?;
        let mut reader = StartupReader::new(FrameKind::Reply);
        let mut buf = [0u8; 1024];
        let pending = loop {
            let n = stream
                .read(&mut buf)
                .map_err(|e| format!("waiting for the MPA Reply: {e}"))?;
            if n == 0 {
                return Err("the peer closed the connection before its MPA Reply".into());
            }
            match reader
                .push(&buf[..n])
                .map_err(|e| format!("bad MPA Reply: {e}"))?
            {
                ReadProgress::NeedMore => {}
                ReadProgress::Complete { consumed } => break buf[consumed..n].to_vec(),
            }
        };
        let reply = reader.frame().ok_or("MPA Reply incomplete")?;
        let negotiated =
            negotiate::on_reply(cfg, &reply).map_err(|e| format!("MPA setup failed: {e}"))?;
        if negotiated.markers_tx || negotiated.markers_rx {
            return Err("the raw Initiator does not do markers".into());
        }
        let framer = Framer::new(FramerConfig {
            crc: negotiated.crc,
            markers: false,
        });
        Ok(Self {
            stream,
            negotiated,
            framer,
            pending,
        })
    }

    /// What MPA setup agreed on.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The local and peer addresses.
    pub fn addrs(&self) -> (SocketAddr, SocketAddr) {
        (
            self.stream.local_addr().expect("a connected socket"),
            self.stream.peer_addr().expect("a connected socket"),
        )
    }

    /// Sends `payload` as one RDMAP Send (QN 0, `msn`, MO 0) in one FPDU whose CRC
    /// field has its bits inverted. Returns the CRC field as sent and the one it
    /// should have carried (both as the wire's four octets, big-endian read).
    pub fn send_with_bad_crc(&mut self, msn: u32, payload: &[u8]) -> Res<(u32, u32)> {
        if !self.negotiated.crc {
            return Err("CRC is off on this connection: there is no CRC to corrupt".into());
        }
        let mut header = [0u8; UNTAGGED_HEADER_LEN];
        DdpRepr::Untagged(UntaggedRepr {
            last: true,
            version: 1,
            rsvd_ulp: RdmapControl::new(Opcode::Send).0,
            rsvd_ulp2: 0,
            qn: 0,
            msn,
            mo: 0,
        })
        .emit(&mut DdpPacket::new_unchecked(&mut header[..]));
        let mut fpdu = self
            .framer
            .frame_to_vec(&header, &[payload])
            .map_err(|e| format!("framing the Send: {e}"))?;
        let at = fpdu.len() - 4;
        let good = u32::from_be_bytes(fpdu[at..].try_into().expect("four octets"));
        for b in &mut fpdu[at..] {
            *b = !*b;
        }
        self.stream
            .write_all(&fpdu)
            .map_err(|e| format!("sending the FPDU: {e}"))?;
        Ok((!good, good))
    }

    /// Reads until the first complete ULPDU from the peer (or its close, or
    /// `timeout`) and decodes it.
    pub fn await_answer(&mut self, timeout: Duration) -> Res<PeerAnswer> {
        let mut deframer = Deframer::new(DeframerConfig {
            crc: self.negotiated.crc,
            markers: false,
            max_ulpdu: u16::MAX,
            header_len: ulpdu_header_len,
        });
        let deadline = Instant::now() + timeout;
        let mut input = std::mem::take(&mut self.pending);
        let mut header = None;
        let mut buf = vec![0u8; 4096];
        loop {
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (used, ev) = deframer
                    .advance(rest)
                    .map_err(|e| format!("the peer's FPDU is malformed: {e}"))?;
                rest = &rest[used..];
                match ev {
                    Event::NeedInput => break,
                    Event::Header { header: h, .. } => header = Some(h),
                    Event::Payload(_) => {}
                    Event::End => {
                        let h = header.take().ok_or("an FPDU without a header")?;
                        return decode(h.as_slice());
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "no answer from the peer within {} s",
                    timeout.as_secs()
                ));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                // A reset after the Terminate is how some peers close: nothing more
                // can come.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(format!("reading the peer's answer: {e}")),
            };
            if n == 0 {
                return Ok(PeerAnswer::Closed);
            }
            input = rest.to_vec();
            input.extend_from_slice(&buf[..n]);
        }
    }
}

/// Decodes the header of one ULPDU: a Terminate's control word and included
/// headers, or just the opcode.
fn decode(header: &[u8]) -> Res<PeerAnswer> {
    let ddp = DdpPacket::new_checked(header).map_err(|e| format!("DDP header: {e}"))?;
    if ddp.tagged() {
        return Ok(PeerAnswer::Other(RdmapControl(ddp.rsvd_ulp()).raw_opcode()));
    }
    let ctrl = RdmapControl(ddp.rsvd_ulp());
    if ctrl.opcode() != Some(Opcode::Terminate) {
        return Ok(PeerAnswer::Other(ctrl.raw_opcode()));
    }
    let term = TerminatePacket::new_checked(&header[UNTAGGED_HEADER_LEN..])
        .and_then(|p| TerminateRepr::parse(&p))
        .map_err(|e| format!("Terminate header: {e}"))?;
    Ok(PeerAnswer::Terminate(term))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_siw_style_crc_terminate() {
        // docs/wire-facts.md §7.3: Terminate LLP/MPA/CRC error in siw's little-endian layout
        // (ULPDU without the MPA length, pad and CRC).
        let ulpdu = [
            0x41, 0x47, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x02, 0x02, 0, 0,
        ];
        let PeerAnswer::Terminate(t) = decode(&ulpdu).unwrap() else {
            panic!("not a Terminate");
        };
        assert_eq!((t.layer, t.etype, t.code), (2, 0, 2));
        assert_eq!(
            t.reason(),
            eta_ddp_core::error::TerminateReason::Llp(eta_ddp_core::error::LlpError::CrcError)
        );
    }

    #[test]
    fn other_opcodes_are_named() {
        let send = [0x41, 0x43, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(decode(&send).unwrap(), PeerAnswer::Other(3));
    }
}

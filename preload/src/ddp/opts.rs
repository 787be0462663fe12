//! The `SOL_ETA` options (`include/eta.h`): what a socket asks for before it
//! switches, and what `getsockopt` reports after.

use std::fmt;

use eta_engine::{CompletionQueue, LocalConfig, Negotiated, Options, RtrType, RtrTypes};

use crate::eta_h::{
    ETA_CRC, ETA_DDPMODE, ETA_ERROR, ETA_IRD, ETA_MARKERS, ETA_MAX_FPDU, ETA_MPA_REV, ETA_ORD,
    ETA_PRIVATE_DATA, ETA_RTR, ETA_RTR_READ, ETA_RTR_SEND, ETA_RTR_WRITE,
};

/// What a socket asks for.
#[derive(Debug, Clone, Default)]
pub struct EtaOpts {
    /// `ETA_DDPMODE` was set.
    pub ddp: bool,
    /// MPA wishes.
    pub mpa: LocalConfig,
    /// Private data to send.
    pub private_data: Vec<u8>,
    /// `ETA_CQ`: a shared completion queue.
    pub cq: Option<CompletionQueue>,
    /// `ETA_MAX_FPDU`: the largest FPDU to send (`None`: the EMSS).
    pub max_fpdu: Option<u32>,
}

/// Why an option could not be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptError {
    /// Bad value or length (`EINVAL`).
    Invalid,
    /// Not an eta option (`ENOPROTOOPT`).
    Unknown,
}

fn int(val: &[u8]) -> Result<i32, OptError> {
    let b: [u8; 4] = val
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(OptError::Invalid)?;
    Ok(i32::from_ne_bytes(b))
}

fn depth(v: i32) -> Result<u16, OptError> {
    u16::try_from(v).map_err(|_| OptError::Invalid)
}

impl EtaOpts {
    /// Applies `setsockopt(SOL_ETA, name, val)` (not `ETA_CQ`, which carries an fd
    /// the caller resolves, nor `ETA_DDPMODE`, which switches).
    pub fn set(&mut self, name: i32, val: &[u8]) -> Result<(), OptError> {
        match name {
            ETA_MPA_REV => match int(val)? {
                v @ (1 | 2) => {
                    self.mpa.revision = v as u8;
                    if v == 1 {
                        self.mpa.peer_to_peer = false;
                    }
                }
                _ => return Err(OptError::Invalid),
            },
            ETA_CRC => self.mpa.crc = int(val)? != 0,
            ETA_MARKERS => self.mpa.want_markers = int(val)? != 0,
            ETA_IRD => self.mpa.ird = depth(int(val)?)?,
            ETA_ORD => self.mpa.ord = depth(int(val)?)?,
            ETA_PRIVATE_DATA => {
                let max = if self.mpa.revision == 1 { 512 } else { 508 };
                if val.len() > max {
                    return Err(OptError::Invalid);
                }
                self.private_data = val.to_vec();
            }
            ETA_RTR => {
                let v = int(val)?;
                if v & !(ETA_RTR_WRITE | ETA_RTR_READ | ETA_RTR_SEND) != 0 {
                    return Err(OptError::Invalid);
                }
                self.mpa.rtr = RtrTypes {
                    send: v & ETA_RTR_SEND != 0,
                    write: v & ETA_RTR_WRITE != 0,
                    read: v & ETA_RTR_READ != 0,
                };
                self.mpa.peer_to_peer = v != 0 && self.mpa.revision >= 2;
            }
            ETA_MAX_FPDU => {
                self.max_fpdu = match int(val)? {
                    0 => None,
                    v @ 256..=65536 => Some(v as u32),
                    _ => return Err(OptError::Invalid),
                }
            }
            _ => return Err(OptError::Unknown),
        }
        Ok(())
    }

    /// The value `getsockopt` reports before the connection exists.
    pub fn get(&self, name: i32) -> Option<Vec<u8>> {
        let i = |v: i32| Some(v.to_ne_bytes().to_vec());
        match name {
            ETA_DDPMODE => i(i32::from(self.ddp)),
            ETA_MPA_REV => i(i32::from(self.mpa.revision)),
            ETA_CRC => i(i32::from(self.mpa.crc)),
            ETA_MARKERS => i(i32::from(self.mpa.want_markers)),
            ETA_IRD => i(i32::from(self.mpa.ird)),
            ETA_ORD => i(i32::from(self.mpa.ord)),
            ETA_PRIVATE_DATA => Some(Vec::new()),
            ETA_RTR => {
                let r = self.mpa.rtr;
                let mask = if self.mpa.peer_to_peer {
                    [
                        (r.write, ETA_RTR_WRITE),
                        (r.read, ETA_RTR_READ),
                        (r.send, ETA_RTR_SEND),
                    ]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .fold(0, |m, (_, bit)| m | bit)
                } else {
                    0
                };
                i(mask)
            }
            ETA_ERROR => Some(vec![0]),
            ETA_MAX_FPDU => i(self.max_fpdu.map_or(0, |v| v as i32)),
            _ => None,
        }
    }

    /// The engine options for the connection.
    pub fn engine_options(&self) -> Options {
        Options {
            mpa: self.mpa.clone(),
            private_data: self.private_data.clone(),
            send_cq: self.cq.clone(),
            recv_cq: self.cq.clone(),
            // The program made the TCP connection: there is no reconnecting with Rev 1.
            rev1_fallback: false,
            max_fpdu: self.max_fpdu,
            ..Options::default()
        }
    }
}

/// The value `getsockopt` reports once the connection is established.
pub fn negotiated(n: &Negotiated, peer_private_data: &[u8], name: i32) -> Option<Vec<u8>> {
    let i = |v: i32| Some(v.to_ne_bytes().to_vec());
    match name {
        ETA_DDPMODE => i(1),
        ETA_MPA_REV => i(i32::from(n.revision)),
        ETA_CRC => i(i32::from(n.crc)),
        ETA_MARKERS => i(i32::from(n.markers_tx || n.markers_rx)),
        ETA_IRD => i(i32::from(n.ird)),
        ETA_ORD => i(i32::from(n.ord)),
        ETA_PRIVATE_DATA => Some(peer_private_data.to_vec()),
        ETA_RTR => i(match n.rtr {
            None => 0,
            Some(RtrType::Write) => ETA_RTR_WRITE,
            Some(RtrType::Read) => ETA_RTR_READ,
            Some(RtrType::Send) => ETA_RTR_SEND,
        }),
        _ => None,
    }
}

/// What MPA setup agreed on, as the debug log tells it.
pub struct Agreed<'a>(pub &'a Negotiated);

impl fmt::Display for Agreed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let on = |b: bool| if b { "on" } else { "off" };
        let rtr = match n.rtr {
            None => "none",
            Some(RtrType::Write) => "RDMA Write",
            Some(RtrType::Read) => "RDMA Read",
            Some(RtrType::Send) => "Send",
        };
        write!(
            f,
            "MPA revision {}{}, CRC {}, markers {} sent / {} received, IRD {}, ORD {}, RTR {rtr}",
            n.revision,
            if n.enhanced { " (enhanced)" } else { "" },
            on(n.crc),
            on(n.markers_tx),
            on(n.markers_rx),
            n.ird,
            n.ord,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{EtaOpts, OptError};
    use crate::eta_h::{ETA_CRC, ETA_IRD, ETA_MPA_REV, ETA_PRIVATE_DATA, ETA_RTR};

    #[test]
    fn values_are_checked() {
        let mut o = EtaOpts::default();
        assert_eq!(
            o.set(ETA_MPA_REV, &3i32.to_ne_bytes()),
            Err(OptError::Invalid)
        );
        assert_eq!(o.set(ETA_MPA_REV, &[1]), Err(OptError::Invalid));
        assert_eq!(
            o.set(ETA_IRD, &70_000i32.to_ne_bytes()),
            Err(OptError::Invalid)
        );
        assert_eq!(o.set(ETA_RTR, &8i32.to_ne_bytes()), Err(OptError::Invalid));
        assert_eq!(o.set(99, &[0; 4]), Err(OptError::Unknown));
        assert_eq!(o.set(ETA_PRIVATE_DATA, &[0; 509]), Err(OptError::Invalid));
        o.set(ETA_PRIVATE_DATA, &[7; 508]).unwrap();
        o.set(ETA_CRC, &0i32.to_ne_bytes()).unwrap();
        o.set(ETA_RTR, &0i32.to_ne_bytes()).unwrap();
        assert_eq!(o.get(ETA_CRC), Some(0i32.to_ne_bytes().to_vec()));
        assert_eq!(o.get(ETA_RTR), Some(0i32.to_ne_bytes().to_vec()));
        o.set(ETA_MPA_REV, &1i32.to_ne_bytes()).unwrap();
        assert!(!o.engine_options().mpa.peer_to_peer);
    }
}

//! The faults a relay applies, and their command-line spelling.

use std::fmt;
use std::str::FromStr;

/// A direction of the relayed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the MPA Initiator) to the server (the Responder).
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Direction {
    /// Both directions, client to server first.
    pub const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

    /// The command-line name: `c2s` or `s2c`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ToServer => "c2s",
            Self::ToClient => "s2c",
        }
    }
}

/// One fault of a relay's plan. Offsets (`at_octet`, `after_octets`) count the
/// octets of one direction that follow its MPA startup frame (the Request towards
/// the server, the Reply towards the client): octet 0 is the first octet of that
/// direction's first FPDU (the RTR or the first message). A stream that does not
/// start with a valid startup frame counts from its first octet. `Resegment` and
/// `Delay` also apply to the startup frames; the others never touch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward each direction in segments of `min..=max` octets (log-uniformly
    /// drawn from the seed), each written on its own with `TCP_NODELAY`.
    Resegment {
        /// Smallest segment (at least 1).
        min: usize,
        /// Largest segment.
        max: usize,
    },
    /// Wait a seeded time in `0..=ms` milliseconds before forwarding each segment.
    Delay {
        /// Longest wait, in milliseconds.
        ms: u64,
    },
    /// In each direction, once `after_octets` have been forwarded, forward nothing
    /// for `ms` milliseconds.
    Stall {
        /// Where the stall starts.
        after_octets: u64,
        /// How long it lasts, in milliseconds.
        ms: u64,
    },
    /// XOR the octet at `at_octet` of `direction` with `mask` (nonzero).
    Corrupt {
        /// Which direction.
        direction: Direction,
        /// Which octet.
        at_octet: u64,
        /// The bits to flip.
        mask: u8,
    },
    /// Forward `after_octets` of `direction`, then send a FIN that way and forward
    /// nothing more in it (what still arrives from that side is read and dropped).
    Truncate {
        /// Which direction.
        direction: Direction,
        /// Octets forwarded before the FIN.
        after_octets: u64,
    },
    /// Forward `after_octets` of `direction`, then reset both TCP connections
    /// (`SO_LINGER` 0, close: an RST to the client and to the server).
    Reset {
        /// Which direction.
        direction: Direction,
        /// Octets forwarded before the reset.
        after_octets: u64,
    },
}

/// The command-line forms of [`Fault`], for help texts.
pub const FAULT_HELP: &str =
    "  resegment:MIN:MAX          segments of MIN..MAX octets (log-uniform), e.g. resegment:1:65536
  delay:MS                   wait 0..MS ms (seeded) before each segment
  stall:OFFSET:MS            in each direction, forward nothing for MS ms after OFFSET octets
  corrupt:DIR:OFFSET[:MASK]  XOR the octet at OFFSET with MASK (default 0xff)
  truncate:DIR:OFFSET        forward OFFSET octets, then FIN that way; drop the rest
  reset:DIR:OFFSET           forward OFFSET octets, then RST to both ends
  DIR is c2s (client to server) or s2c; OFFSET counts the octets of that direction
  after its MPA Request or Reply (0 = the first octet of the first FPDU)";

fn number(s: &str, what: &str) -> Result<u64, String> {
    let s = s.trim();
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|_| format!("{what}: bad number {s:?}"))
}

fn direction(s: &str) -> Result<Direction, String> {
    match s {
        "c2s" => Ok(Direction::ToServer),
        "s2c" => Ok(Direction::ToClient),
        _ => Err(format!("direction: expected c2s or s2c, got {s:?}")),
    }
}

impl FromStr for Fault {
    type Err = String;

    /// Parses `KIND[:ARGS]` as listed in [`FAULT_HELP`].
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let fault = match parts.as_slice() {
            ["resegment", min, max] => {
                let (min, max) = (number(min, "MIN")?, number(max, "MAX")?);
                if min == 0 || max < min {
                    return Err(format!("resegment: need 1 <= MIN <= MAX, got {min}:{max}"));
                }
                Fault::Resegment {
                    min: min as usize,
                    max: max as usize,
                }
            }
            ["delay", ms] => Fault::Delay {
                ms: number(ms, "MS")?,
            },
            ["stall", at, ms] => Fault::Stall {
                after_octets: number(at, "OFFSET")?,
                ms: number(ms, "MS")?,
            },
            ["corrupt", dir, at, rest @ ..] if rest.len() <= 1 => {
                let mask = match rest.first() {
                    Some(m) => number(m, "MASK")?,
                    None => 0xff,
                };
                if mask == 0 || mask > 0xff {
                    return Err(format!("corrupt: MASK must be 1..0xff, got {mask:#x}"));
                }
                Fault::Corrupt {
                    direction: direction(dir)?,
                    at_octet: number(at, "OFFSET")?,
                    mask: mask as u8,
                }
            }
            ["truncate", dir, at] => Fault::Truncate {
                direction: direction(dir)?,
                after_octets: number(at, "OFFSET")?,
            },
            ["reset", dir, at] => Fault::Reset {
                direction: direction(dir)?,
                after_octets: number(at, "OFFSET")?,
            },
            _ => return Err(format!("unknown fault {s:?} (the forms are in --help)")),
        };
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    /// The command-line form, which [`Fault::from_str`] parses back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Resegment { min, max } => write!(f, "resegment:{min}:{max}"),
            Fault::Delay { ms } => write!(f, "delay:{ms}"),
            Fault::Stall { after_octets, ms } => write!(f, "stall:{after_octets}:{ms}"),
            Fault::Corrupt {
                direction,
                at_octet,
                mask,
            } => write!(f, "corrupt:{}:{at_octet}:{mask:#04x}", direction.name()),
            Fault::Truncate {
                direction,
                after_octets,
            } => write!(f, "truncate:{}:{after_octets}", direction.name()),
            Fault::Reset {
                direction,
                after_octets,
            } => write!(f, "reset:{}:{after_octets}", direction.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back() {
        for s in [
            "resegment:1:65536",
            "delay:5",
            "stall:1000:200",
            "corrupt:c2s:40:0x0f",
            "truncate:s2c:9",
            "reset:c2s:5000",
        ] {
            let f: Fault = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!(
            "corrupt:s2c:3".parse::<Fault>(),
            Ok(Fault::Corrupt {
                direction: Direction::ToClient,
                at_octet: 3,
                mask: 0xff
            })
        );
        for bad in [
            "resegment:0:4",
            "resegment:9:4",
            "corrupt:c2s:1:0",
            "reset:up:1",
            "x",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }
}

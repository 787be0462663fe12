//! # eta-mpa: Marker PDU Aligned framing for iWARP
//!
//! The MPA layer of eta (RFC 5044, with the enhanced connection setup of RFC 6581)
//! as a sans-IO library: it never touches a socket, a clock or a thread. Bytes and
//! configuration go in; frames, gather lists, events and typed errors come out. The
//! engine drives it over kernel TCP, and tests drive it entirely in memory.
//!
//! - [`startup`]: MPA Request/Reply frames, the IRD/ORD word, an incremental
//!   [`StartupReader`], and negotiation as pure functions ([`startup::negotiate`]).
//! - [`Framer`]: builds FPDUs (length, ULPDU, pad, markers, CRC32c) as a list of
//!   slices for `writev`, without copying the payload.
//! - [`Deframer`]: finds FPDUs in a stream delivered in chunks of any size, strips
//!   and checks markers, checks CRCs, and hands up each ULPDU's header and its
//!   payload runs borrowed from the input.
//! - [`mulpdu`]: the largest ULPDU for a TCP EMSS (RFC 5044 §4.5).
//!
//! Round trip of one FPDU:
//!
//! ```
//! use eta_mpa::{Deframer, DeframerConfig, Event, Framer, FramerConfig};
//!
//! let mut framer = Framer::new(FramerConfig { crc: true, markers: true });
//! let wire = framer.frame_to_vec(b"HEADER", &[b"payload ", b"in two slices"]).unwrap();
//!
//! let mut deframer = Deframer::new(DeframerConfig {
//!     crc: true,
//!     markers: true,
//!     max_ulpdu: u16::MAX,
//!     header_len: |_| 6,
//! });
//! let (mut input, mut payload) = (&wire[..], Vec::new());
//! loop {
//!     let (used, event) = deframer.advance(input).unwrap();
//!     input = &input[used..];
//!     match event {
//!         Event::Header { header, .. } => assert_eq!(header.as_slice(), b"HEADER"),
//!         Event::Payload(run) => payload.extend_from_slice(run),
//!         Event::End => break,
//!         Event::NeedInput => unreachable!("the whole FPDU was given"),
//!     }
//! }
//! assert_eq!(payload, b"payload in two slices");
//! ```

#![deny(unsafe_code)]

pub mod crc;
mod deframer;
mod error;
mod framer;
pub mod fuzzing;
mod marker_crc;
pub mod markers;
mod mulpdu;
pub mod startup;

pub use deframer::{Deframer, DeframerConfig, Event, HeaderBytes, MAX_HEADER};
pub use error::{ErrorCode, FrameError, MpaError};
pub use framer::{FpduScratch, Framer, FramerConfig, recycle_iov};
pub use mulpdu::{MAX_MULPDU_WITH_MARKERS, MIN_MULPDU, fpdu_len, mulpdu, pad_len};
pub use startup::frame::{FrameKind, StartupRepr};
pub use startup::ird_ord::IrdOrd;
pub use startup::negotiate::{LocalConfig, Negotiated, NegotiationError, RtrType, RtrTypes};
pub use startup::reader::{ReadProgress, StartupReader};

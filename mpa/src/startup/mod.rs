//! Connection setup: MPA Request/Reply frames, the RFC 6581 IRD/ORD word, their
//! incremental reception, and the negotiation that turns them into connection
//! parameters.

pub mod frame;
pub mod ird_ord;
pub mod negotiate;
pub mod reader;

#[cfg(test)]
mod negotiate_tests;

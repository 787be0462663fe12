//! eta engine: the dedicated threads that own the TCP connections of DDP sockets
//! and drive `eta-mpa` and `eta-ddp-core`.
//!
//! Not built yet: this crate is reserved for the engine (issue 4) and holds no code.

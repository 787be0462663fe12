//! Interoperability with Linux soft-iWARP (siw) and the rdma-core tools.
//!
//! `harness/` holds the scripts that build siw for the Debian kernel and run it in
//! a QEMU guest (see `harness/README.md`). The eta-side interop tools and the test
//! matrix arrive with the engine (issue 6).

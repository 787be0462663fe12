//! Interoperability with Linux soft-iWARP (siw) and the rdma-core tools.
//!
//! - `harness/`: scripts that build siw for the Debian kernel and run it in a QEMU
//!   guest with rdma-core's tools (see `harness/README.md`).
//! - `run-interop.sh`: the interop matrix — `eta-rping` (`tools/src/bin/eta-rping.rs`)
//!   against the real `rping` in both directions, each connection captured and
//!   checked with tshark. `.ci/run` runs it; the README lists the cells.

//! Interoperability with Linux soft-iWARP (siw) and the rdma-core tools.
//!
//! - `harness/`: scripts that build siw for the Debian kernel and run it in a QEMU
//!   guest with rdma-core's tools (see `harness/README.md`).
//! - `run-interop.sh`: the interop matrix — eta's tools (`tools/src/bin/`:
//!   `eta-rping`, `eta-rdma-client`/`eta-rdma-server`, `eta-ucmatose`,
//!   `eta-perftest`) against the real `rping`, `rdma_server`/`rdma_client`,
//!   `ucmatose` and `ib_{write,read,send}_bw -R` in both directions, each
//!   connection captured and checked with tshark; the cells of each tool are in
//!   `interop/`. `.ci/run` runs it; docs/interop.md lists the cells.

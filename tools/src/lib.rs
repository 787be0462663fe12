//! Command-line tools of eta; see the binaries in `src/bin/`. The modules hold what
//! several tools share.

pub mod args;
pub mod endpoint;
pub mod fault;
pub mod perf;
pub mod perftest;
pub mod rdma_example;
pub mod relay;

//! Command-line tools of eta; see the binaries in `src/bin/`.

pub mod wire;

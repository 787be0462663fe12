//! libeta.so, the `LD_PRELOAD` shim that interposes libc socket calls and exports
//! the C API of `include/eta.h`.
//!
//! Not built yet: this crate is reserved for the shim (issue 5) and holds no code.

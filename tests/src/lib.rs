//! Workspace-level tests of eta: real programs under `LD_PRELOAD`, DDP between
//! processes, and fault injection. They arrive with the engine and the shim
//! (issues 4 and 5); the protocol crates carry their own tests meanwhile.

#!/usr/bin/env bash
# eta's whole test suite: installs the Debian packages the tests need, checks
# formatting and lints, runs a short fuzz smoke, the interoperability matrix against
# real soft-iWARP (siw) in a QEMU guest, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
bash scripts/fuzz.sh smoke
# siw for the Debian kernel is built once per machine (rebuilt when versions change).
ETA_SIW_CACHE=${ETA_SIW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eta-siw} bash integration/run-interop.sh
cargo test --workspace --release

#!/usr/bin/env bash
# eta's whole test suite: installs the Debian packages the tests need, checks
# formatting and lints, runs a short fuzz smoke, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings
bash scripts/fuzz.sh smoke
cargo test --workspace --release

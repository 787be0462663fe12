#!/usr/bin/env bash
# Builds eta and runs its demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet -p eta-tools --bin eta-demo

#!/usr/bin/env bash
# Builds eta's libFuzzer targets on the stable toolchain (coverage instrumentation
# through stable -C flags, no sanitizer runtime) and runs them.
#
#   scripts/fuzz.sh                 run every target for 60 s
#   scripts/fuzz.sh smoke           run every target for 10 s (the test suite does this)
#   scripts/fuzz.sh TARGET [SECS]   run one target
# Corpora live in fuzz/corpus/TARGET, crashes in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=60
targets=()
case "${1:-}" in
    "") ;;
    smoke) secs=10 ;;
    *) targets=("$1"); secs="${2:-60}" ;;
esac
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' Cargo.toml | grep -v '^eta-fuzz$')
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --release --quiet --target "$triple" --bins

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "fuzz: $t for ${secs}s"
    log="artifacts/$t/last-run.log"
    rc=0
    "target/$triple/release/$t" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "corpus/$t" >"$log" 2>&1 || rc=$?
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)" "$log" || true
    if [ "$rc" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz: $t failed (exit $rc); the input is in fuzz/artifacts/$t" >&2
        exit 1
    fi
done

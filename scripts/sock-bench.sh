#!/usr/bin/env bash
# DDP sockets against plain TCP, as a sockets program sees them: builds
# tools/c/eta_sock_bench.c and libeta.so, then runs, alternating for ROUNDS rounds,
#   tcp        plain TCP, no shim (the baseline)
#   tcp+shim   the same under LD_PRELOAD=libeta.so (plain sockets: passthrough)
#   ddp        both sockets switched to DDP mode (read/write = RDMAP Send messages)
# Each run: 1-octet ping-pong (median and p99 round trip) and a stream of MSG_KIB KiB
# messages. Prints every run and the medians' ratios against tcp.
# Usage: scripts/sock-bench.sh [ROUNDS] [PINGS] [STREAM_MIB] [MSG_KIB]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} pings=${2:-20000} mib=${3:-512} kib=${4:-64}
cargo build --release --quiet -p eta-preload
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
shim=$target/release/libeta.so
exe=$(mktemp -d)/eta_sock_bench
trap 'rm -rf "$(dirname "$exe")"' EXIT
gcc -O2 -Wall -Wextra -pthread -I include tools/c/eta_sock_bench.c -o "$exe"
out=$(dirname "$exe")/runs
for r in $(seq "$rounds"); do
    "$exe" tcp "$pings" "$mib" "$kib" | sed 's/^tcp:/tcp     :/' | tee -a "$out"
    LD_PRELOAD=$shim "$exe" tcp "$pings" "$mib" "$kib" | sed 's/^tcp:/tcp+shim:/' | tee -a "$out"
    LD_PRELOAD=$shim "$exe" ddp "$pings" "$mib" "$kib" | sed 's/^ddp:/ddp     :/' | tee -a "$out"
done
python3 - "$out" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind = line.split(":")[0].strip()
    rtt = float(re.search(r"median ([\d.]+) us", line).group(1))
    bw = float(re.search(r"([\d.]+) MB/s", line).group(1))
    runs.setdefault(kind, []).append((rtt, bw))
med = {k: (statistics.median(r for r, _ in v), statistics.median(b for _, b in v)) for k, v in runs.items()}
base = med["tcp"]
for k in ("tcp", "tcp+shim", "ddp"):
    rtt, bw = med[k]
    print(f"{k:9} median RTT {rtt:8.2f} us ({rtt / base[0]:.2f}x tcp)   stream {bw:7.0f} MB/s ({bw / base[1]:.2f}x tcp)")
PY

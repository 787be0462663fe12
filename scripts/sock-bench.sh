#!/usr/bin/env bash
# DDP sockets against plain TCP, as deployed: builds tools/c/eta_sock_bench (client
# and server in two processes, each with its own engine) and libeta.so, then runs each
# measure for ROUNDS rounds, alternating the modes within a round (the order rotates
# from round to round):
#   tcp        plain TCP, no shim (the baseline)
#   tcp+shim   the same under LD_PRELOAD=libeta.so (plain sockets: passthrough)
#   ddp        every socket switched to DDP mode (read/write = RDMAP Send messages)
# Measures: stream of 1 MiB and of 64 KiB writes; 64-octet ping-pong; request/response
# (64-octet requests, 1 KiB responses) over 20 connections closed-loop, epoll server;
# connect + one message each way + close (default options). Each also gives the CPU
# seconds (user + system, all threads, both processes) per GB or per 1,000 round
# trips/requests/cycles. Load conditions: idle, and one core kept busy by an unrelated
# spinning process (started here, killed on exit).
# Prints every run, then per load and measure the median of each mode, its spread
# (min-max), the ratio of medians to tcp and the issue's target for ddp.
#
# Usage: scripts/sock-bench.sh [--rounds N] [--load idle|busy|both] [--quick]
#                              [--one-process] [--out FILE(.json|.tsv)]
#   --rounds N       rounds per measure and load (default 5; --quick: 1)
#   --load L         idle, busy or both (default both)
#   --quick          small sizes, one round: a smoke run of well under a minute
#   --one-process    also run the stream (64 KiB) and ping-pong with client and server
#                    as two threads of one process (one engine): a secondary table
#   --out FILE       also write the table (and every run) to FILE: JSON if FILE ends
#                    in .json, else TSV
# Exits non-zero if any run failed (an error, or a data check: message length, DDP
# message boundaries, content).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds= load=both quick=0 one_process=0 out=
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --one-process) one_process=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "sock-bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $load in idle) loads=idle ;; busy) loads=busy ;; both) loads="idle busy" ;;
*) echo "sock-bench: --load idle|busy|both" >&2; exit 2 ;; esac
if [ "$quick" = 1 ]; then
    rounds=${rounds:-1} stream=$((128 << 20)) pings=2000 requests=100 cycles=200 cycle_secs=2
else
    rounds=${rounds:-5} stream=$((1 << 30)) pings=20000 requests=2000 cycles=3000 cycle_secs=20
fi
case $rounds in '' | *[!0-9]* | 0) echo "sock-bench: --rounds takes a positive number" >&2; exit 2 ;; esac

cargo build --release --quiet -p eta-preload
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
shim=$target/release/libeta.so
work=$(mktemp -d)
spinner=
cleanup() {
    if [ -n "$spinner" ]; then kill "$spinner" 2>/dev/null || true; wait "$spinner" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
exe=$work/eta_sock_bench
gcc -O2 -Wall -Wextra -Werror -pthread -I include tools/c/eta_sock_bench.c tools/c/bench_*.c -o "$exe"

# label | arguments (after the mode) | in one process
measures=(
    "stream_1MiB|stream size=1048576 total=$stream|"
    "stream_64KiB|stream size=65536 total=$stream|"
    "rtt_64B|rtt size=64 count=$pings|"
    "rr_20conn|rr size=64 resp=1024 conns=20 count=$requests|"
    "connect_cycle|connect size=64 count=$cycles secs=$cycle_secs|"
)
if [ "$one_process" = 1 ]; then
    measures+=("stream_64KiB_1proc|stream size=65536 total=$stream|1" "rtt_64B_1proc|rtt size=64 count=$pings|1")
fi
modes=(tcp tcp+shim ddp)
runs=$work/runs failed=0
: >"$runs"

# run LOAD ROUND LABEL MODE ARGS ONE_PROCESS
run() {
    local load=$1 round=$2 label=$3 mode=$4 args=$5 one=$6 line rc=0
    local -a cmd=(timeout 900 env -u LD_PRELOAD)
    [ "$mode" = tcp ] || cmd+=("LD_PRELOAD=$shim")
    cmd+=("$exe")
    [ -z "$one" ] || cmd+=(--one-process)
    # shellcheck disable=SC2206 # ARGS are words
    cmd+=("${mode%+shim}" $args)
    line=$("${cmd[@]}" 2>"$work/stderr") || rc=$?
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        echo "FAILED ($rc): $load round $round $label $mode: $(tr '\n' ' ' <"$work/stderr")" >&2
        failed=1
        return
    fi
    printf '%-5s %d/%d %-19s %-8s %s\n' "$load" "$round" "$rounds" "$label" "$mode" "$line"
    echo "load=$load round=$round label=$label bench_mode=$mode $line" >>"$runs"
}

for ld in $loads; do
    if [ "$ld" = busy ]; then
        sh -c 'while :; do :; done' &
        spinner=$!
    fi
    for m in "${measures[@]}"; do
        IFS='|' read -r label args one <<<"$m"
        for r in $(seq "$rounds"); do
            for i in 0 1 2; do
                run "$ld" "$r" "$label" "${modes[$(((i + r - 1) % 3))]}" "$args" "$one"
            done
        done
    done
    if [ -n "$spinner" ]; then
        kill "$spinner"
        wait "$spinner" 2>/dev/null || true
        spinner=
    fi
done

python3 scripts/sock-bench-table.py "$runs" "$out" "$rounds" "$quick"
if [ "$failed" != 0 ]; then
    echo "sock-bench: some runs FAILED (see above)" >&2
    exit 1
fi

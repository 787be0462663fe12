#!/usr/bin/env bash
# Builds libeta.so and shows eta at work:
#   1. an unmodified server (python3 -m http.server) and client (curl) under the
#      shim: nothing changes for programs that do not ask for DDP mode;
#   2. two processes that switch their sockets to DDP mode (examples/ddp_demo.c,
#      plain sockets plus include/eta.h) exchange messages with write()/read(), then
#      an RDMA Write and an RDMA Read into a registered buffer;
#   3. the layers underneath, one by one (eta-demo: MPA setup, FPDUs, CRC, RDMAP).
# Needs gcc, curl and python3 (installed with apt-get if missing: root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

need=()
for tool in gcc curl python3; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "demo: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}" >/dev/null
fi

cargo build --release --quiet -p eta-preload -p eta-tools
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
SHIM=$target/release/libeta.so
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

echo "### Part 1 of 3: an unmodified server and client under LD_PRELOAD=libeta.so"
head -c 1000000 /dev/urandom > "$work/file.bin"
port=$(free_port)
(cd "$work" && LD_PRELOAD=$SHIM exec python3 -m http.server "$port" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)
wait_port "$port"
LD_PRELOAD=$SHIM curl -s -o "$work/got.bin" -w 'curl: HTTP %{http_code}, %{size_download} octets from python3 -m http.server\n' \
    "http://127.0.0.1:$port/file.bin"
cmp -s "$work/file.bin" "$work/got.bin" && echo "the file arrived intact: both programs ran under the shim, unchanged"
echo

echo "### Part 2 of 3: two processes in DDP mode: messages, RDMA Write, RDMA Read"
gcc -O2 -Wall -Wextra -I include examples/ddp_demo.c -o "$work/ddp_demo" -L"$target/release" -leta -Wl,-rpath,"$target/release"
port=$(free_port)
LD_PRELOAD=$SHIM "$work/ddp_demo" server "$port" > "$work/server.out" &
pids+=($!)
server=$!
# Wait for the server's first line (a plain TCP probe would be a DDP client that
# never sends its MPA Request).
for _ in $(seq 100); do grep -q listening "$work/server.out" 2>/dev/null && break; sleep 0.1; done
LD_PRELOAD=$SHIM "$work/ddp_demo" client "$port"
wait "$server"
cat "$work/server.out"
echo

echo "### Part 3 of 3: underneath, the protocol layers one by one"
"$target/release/eta-demo"

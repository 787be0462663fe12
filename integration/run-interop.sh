#!/usr/bin/env bash
# eta <-> Linux soft-iWARP (siw) interoperability matrix.
#
# Builds the eta interop tools, boots ONE siw guest (integration/harness), and runs
# each cell of the table below, eta's tool on the host against rdma-core's program
# on siw in the guest:
#   c2s-*  eta is the client (MPA Initiator), the rdma-core program the server
#   s2c-*  the rdma-core program on siw is the client, eta the server
# Cells by tool, each in its own file under integration/interop/ (which also says
# what each expectation checks):
#   rping     eta-rping       <-> rping            (interop/rping.sh)
#   rdma      eta-rdma-client <-> rdma_server,
#             rdma_client     <-> eta-rdma-server  (interop/rdma.sh)
#   ucmatose  eta-ucmatose    <-> ucmatose         (interop/ucmatose.sh)
#   perftest  eta-perftest    <-> ib_write_bw / ib_read_bw / ib_send_bw -R
#                                                  (interop/perftest.sh)
# Every cell runs under a time-out, is captured with tshark on the loopback
# interface, and the capture is checked: every FPDU "Good CRC32" when CRC is on
# (but a deliberately bad one), no CRC check when it is off, nothing "Malformed",
# the expected RDMAP operations, and no new BUG/Oops/WARNING in the guest's kernel
# log. The guest is always stopped. Prints one line per cell and a final
# "N passed, M failed"; exit status 0 iff all passed.
#
# Usage: integration/run-interop.sh [CELL...]     (default: all cells; -l lists them)
#
# Environment:
#   ETA_TOOLS_DIR          use the eta tools in this directory instead of building them
#   CARGO_TARGET_DIR       cargo's target dir (default <repo>/target)
#   ETA_INTEROP_OUT        where logs and pcaps go (default integration/cache/interop/<time>)
#   ETA_INTEROP_COUNT      pings per rping cell (default 10)
#   ETA_INTEROP_REPEAT     run each chosen cell this many times (default 1), as
#                          NAME.2, NAME.3, ... after the first: to hunt flaky cells
#   ETA_INTEROP_HOST_PORT  first host port for eta servers (default 29200)
#   ETA_GUEST_DIR / ETA_GUEST_CTRL_PORT / ETA_GUEST_PORT_BASE / ETA_GUEST_RPING_PORT
#                          the guest instance (default: its own runtime dir
#                          integration/cache/run-interop, ports 29555, 29000-29009, 29174,
#                          so it does not collide with guest.sh's defaults or smoke.sh)
# shellcheck source-path=SCRIPTDIR
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HARNESS=$ROOT/integration/harness
GUEST=$HARNESS/guest.sh
export ETA_GUEST_DIR=${ETA_GUEST_DIR:-$ROOT/integration/cache/run-interop}
export ETA_GUEST_CTRL_PORT=${ETA_GUEST_CTRL_PORT:-29555}
export ETA_GUEST_PORT_BASE=${ETA_GUEST_PORT_BASE:-29000}
export ETA_GUEST_RPING_PORT=${ETA_GUEST_RPING_PORT:-29174}
HOST_PORT=${ETA_INTEROP_HOST_PORT:-29200}
COUNT=${ETA_INTEROP_COUNT:-10}
REPEAT=${ETA_INTEROP_REPEAT:-1}
OUT=${ETA_INTEROP_OUT:-$ROOT/integration/cache/interop/$(date +%Y%m%d-%H%M%S)}
CELL_TIMEOUT=60 # seconds, every process of a cell
TOOLS=(eta-rping eta-rdma-client eta-rdma-server eta-ucmatose eta-perftest)

# shellcheck source=interop/lib.sh
. "$ROOT/integration/interop/lib.sh"
# shellcheck source=interop/rping.sh
. "$ROOT/integration/interop/rping.sh"
# shellcheck source=interop/rdma.sh
. "$ROOT/integration/interop/rdma.sh"
# shellcheck source=interop/ucmatose.sh
. "$ROOT/integration/interop/ucmatose.sh"
# shellcheck source=interop/perftest.sh
. "$ROOT/integration/interop/perftest.sh"

# name | tool | direction | options for both programs | eta only | siw only | expectation
CELLS=(
  "c2s-default|rping|c2s|-S 64|||ok"
  "c2s-nocrc|rping|c2s|-S 64|--no-crc||ok"
  "c2s-rev1|rping|c2s|-S 64|--rev1|-q|ok"
  "c2s-nop2p|rping|c2s|-S 64|--no-p2p||ok"
  "c2s-rtr-read|rping|c2s|-S 64|--rtr read||ok"
  "c2s-big|rping|c2s|-S 65535|||ok"
  "c2s-solicited|rping|c2s|-S 64|--solicited||ok-se"
  "c2s-markers|rping|c2s|-S 64|--markers||reject-c2s"
  "s2c-default|rping|s2c|-S 64|||ok"
  "s2c-nocrc|rping|s2c|-S 64|--no-crc||ok"
  "s2c-big|rping|s2c|-S 65535|||ok"
  "s2c-markers|rping|s2c|-S 64|--markers||reject-s2c"
  "s2c-badstag|rping|s2c|-S 64|--fault-bad-stag||term-from-siw"
  "s2c-sendinv|rping|s2c|-S 64|--send-invalidate||inv-term"
  "s2c-sendinv-se|rping|s2c|-S 64|--send-invalidate --solicited||inv-term"
  "c2s-bounds|rping|c2s|-S 64|--fault-short-region||term-from-eta"
  "c2s-rdma|rdma|c2s||||ok"
  "c2s-rdma-se|rdma|c2s||--solicited||ok-se"
  "c2s-rdma-nocrc|rdma|c2s||--no-crc||ok"
  "s2c-rdma|rdma|s2c||||ok"
  "c2s-badcrc|rdma|c2s||--fault-bad-crc||bad-crc"
  "c2s-ucmatose|ucmatose|c2s|-c 8 -C 10 -S 100|--no-p2p||ok"
  "c2s-ucmatose-big|ucmatose|c2s|-c 4 -C 20 -S 9000|--no-p2p||ok"
  "s2c-ucmatose-conn|ucmatose|s2c|-c 8 -C 0|||conn"
  "s2c-ucmatose|ucmatose|s2c|-c 4 -C 10 -S 100|--send-first||ok"
  "s2c-ucmatose-hold|ucmatose|s2c|-c 2 -C 3 -S 100|-t 3||hold"
  "c2s-write-bw|perftest|c2s|write -s 65536 -n 100|||ok"
  "s2c-write-bw|perftest|s2c|write -s 65536 -n 100|||ok"
  "c2s-read-bw|perftest|c2s|read -s 65536 -n 100|||ok"
  "s2c-read-bw|perftest|s2c|read -s 65536 -n 100|||ok"
  "c2s-send-bw|perftest|c2s|send -s 65536 -n 100|||ok"
  "s2c-send-bw|perftest|s2c|send -s 65536 -n 100|||ok"
)
# Notes on the cells:
# - c2s-rev1 runs `rping -s -q`: with MPA Rev 1 there is no IRD/ORD exchange, siw's
#   connect request then carries IRD = ORD = 0, and plain `rping -s` accepts with
#   those (rdma_accept(NULL)), so its QP has ORD 0 and its RDMA Read fails ("post send
#   error -1"). `-q` makes rping accept with initiator_depth = responder_resources = 1.
# - siw as initiator always sends MPA Rev 2 with CRC off: s2c-nocrc differs from
#   s2c-default only in the eta Responder not turning CRC on.
# - *-markers: siw implements no markers. eta asking for them must fail cleanly:
#   as Initiator siw answers R=1; as Responder siw's rping gets REJECTED.
# - c2s-ucmatose*: --no-p2p. In the peer-to-peer model siw as Responder sometimes
#   misses eta's RTR (it arrives before siw has switched the socket to its RTR
#   handler and stays unread until more data comes); ucmatose's client then sends
#   nothing, the connection never becomes ESTABLISHED on siw, and tearing it down
#   can hit a BUG() in the guest's iw_cm. See docs/interop.md.

if [ "${1:-}" = "-l" ]; then
  for c in "${CELLS[@]}"; do echo "${c%%|*}"; done
  exit 0
fi
WANT=("$@")

T0=$(date +%s)
mkdir -p "$OUT" || exit 1
say "run-interop: output in $OUT"

# --- tools -------------------------------------------------------------------
if ! command -v tshark >/dev/null; then
  say "run-interop: installing tshark"
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null
  if ! DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q tshark >"$OUT/apt-tshark.log" 2>&1; then
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -q >>"$OUT/apt-tshark.log" 2>&1
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q tshark >>"$OUT/apt-tshark.log" 2>&1 ||
      { say "run-interop: cannot install tshark (see $OUT/apt-tshark.log)"; exit 1; }
  fi
fi

if [ -n "${ETA_TOOLS_DIR:-}" ]; then
  BIN=$ETA_TOOLS_DIR
else
  say "run-interop: building the eta tools"
  B0=$(date +%s)
  bins=()
  for t in "${TOOLS[@]}"; do bins+=(--bin "$t"); done
  if ! (cd "$ROOT" && timeout 900 cargo build --release -q -p eta-tools "${bins[@]}") >"$OUT/build.log" 2>&1; then
    say "run-interop: build failed:"; tail -30 "$OUT/build.log" >&2; exit 1
  fi
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
  say "run-interop: built in $(( $(date +%s) - B0 )) s"
fi
for t in "${TOOLS[@]}"; do
  [ -x "$BIN/$t" ] || { say "run-interop: no $t in $BIN"; exit 1; }
done

# --- guest -------------------------------------------------------------------
cleanup() {
  [ -n "$CAP_PID" ] && kill -INT "$CAP_PID" 2>/dev/null
  "$GUEST" stop >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "run-interop: starting the siw guest"
G0=$(date +%s)
if ! "$GUEST" start >"$OUT/guest-start.log" 2>&1; then
  say "run-interop: guest start failed:"; tail -30 "$OUT/guest-start.log" >&2; exit 1
fi
say "run-interop: guest up in $(( $(date +%s) - G0 )) s"

# --- cells -------------------------------------------------------------------
i=0
for spec in "${CELLS[@]}"; do
  name=${spec%%|*}
  if [ "${#WANT[@]}" -gt 0 ] && ! printf '%s\n' "${WANT[@]}" | grep -qx "$name"; then
    i=$((i + 1)); continue
  fi
  IFS='|' read -r _ tool _ <<<"$spec"
  "cell_$tool" "$spec" "$i"
  for ((r = 2; r <= REPEAT; r++)); do
    "cell_$tool" "$name.$r|${spec#*|}" "$i"
  done
  i=$((i + 1))
done

"$GUEST" stop >/dev/null 2>&1
say ""
say "run-interop: summary (logs and captures in $OUT)"
for l in "${SUMMARY[@]}"; do echo "$l"; done
echo "$PASS passed, $FAIL failed ($(( $(date +%s) - T0 )) s)"
[ "$FAIL" = 0 ]

#!/usr/bin/env bash
# eta <-> Linux soft-iWARP (siw) interoperability matrix, rping cells.
#
# Builds eta-rping, boots ONE siw guest (integration/harness), and runs each cell:
#   c2s-*  eta-rping client on the host  -> rdma-core `rping -s` on siw in the guest
#   s2c-*  rdma-core `rping -c` on siw   -> eta-rping server on the host
# Every cell runs under a time-out, is captured with tshark on the loopback
# interface, and the capture is checked: every FPDU "Good CRC32" when CRC is on,
# no CRC check when it is off, nothing "Malformed", no Terminate, the expected RDMAP
# operations present. The guest is always stopped. Prints one line per cell and a
# final "N passed, M failed"; exit status 0 iff all passed.
#
# Usage: integration/run-interop.sh [CELL...]     (default: all cells; -l lists them)
#
# Environment:
#   ETA_RPING_BIN          use this eta-rping instead of building one
#   CARGO_TARGET_DIR       cargo's target dir (default <repo>/target)
#   ETA_INTEROP_OUT        where logs and pcaps go (default integration/cache/interop/<time>)
#   ETA_INTEROP_COUNT      pings per cell (default 10)
#   ETA_INTEROP_HOST_PORT  first host port for eta-rping servers (default 29200)
#   ETA_GUEST_DIR / ETA_GUEST_CTRL_PORT / ETA_GUEST_PORT_BASE / ETA_GUEST_RPING_PORT
#                          the guest instance (default: its own runtime dir
#                          integration/cache/run-interop, ports 29555, 29000-29009, 29174,
#                          so it does not collide with guest.sh's defaults or smoke.sh)
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
OUT=${ETA_INTEROP_OUT:-$ROOT/integration/cache/interop/$(date +%Y%m%d-%H%M%S)}
CELL_TIMEOUT=60 # seconds, every process of a cell

# name | direction | eta-rping options | guest rping options | -S | expectation
# expectation: ok (pings verified both ends), reject-c2s / reject-s2c (setup refused)
CELLS=(
  "c2s-default|c2s||-s|64|ok"
  "c2s-nocrc|c2s|--no-crc|-s|64|ok"
  "c2s-rev1|c2s|--rev1|-s -q|64|ok"
  "c2s-nop2p|c2s|--no-p2p|-s|64|ok"
  "c2s-big|c2s||-s|65535|ok"
  "c2s-markers|c2s|--markers|-s|64|reject-c2s"
  "s2c-default|s2c||-c|64|ok"
  "s2c-nocrc|s2c|--no-crc|-c|64|ok"
  "s2c-big|s2c||-c|65535|ok"
  "s2c-markers|s2c|--markers|-c|64|reject-s2c"
  "s2c-badstag|s2c|--fault-bad-stag|-c|64|term-from-siw"
  "c2s-bounds|c2s|--fault-short-region|-s|64|term-from-eta"
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

say() { printf '%s\n' "$*" >&2; }

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

if [ -n "${ETA_RPING_BIN:-}" ]; then
  BIN=$ETA_RPING_BIN
else
  say "run-interop: building eta-rping"
  B0=$(date +%s)
  if ! (cd "$ROOT" && timeout 900 cargo build --release -q -p eta-tools --bin eta-rping) >"$OUT/build.log" 2>&1; then
    say "run-interop: build failed:"; tail -30 "$OUT/build.log" >&2; exit 1
  fi
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/eta-rping
  say "run-interop: built in $(( $(date +%s) - B0 )) s"
fi
[ -x "$BIN" ] || { say "run-interop: no eta-rping at $BIN"; exit 1; }

# --- guest -------------------------------------------------------------------
CAP_PID=
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

# --- helpers -----------------------------------------------------------------
cap_start() { # port pcap
  : >"$2.log"
  tshark -i lo -f "tcp port $1" -w "$2" >"$2.log" 2>&1 &
  CAP_PID=$!
  for _ in $(seq 100); do
    grep -q 'Capturing on' "$2.log" && { sleep 0.3; return 0; }
    kill -0 "$CAP_PID" 2>/dev/null || break
    sleep 0.1
  done
  say "run-interop: tshark did not start: $(cat "$2.log")"
  return 1
}
cap_stop() {
  sleep 0.5
  [ -n "$CAP_PID" ] && { kill -INT "$CAP_PID" 2>/dev/null; wait "$CAP_PID" 2>/dev/null; }
  CAP_PID=
}

# Decodes a capture; sets F_FPDU F_GOOD F_BAD F_MALFORMED F_REQ F_REP F_REJ OPS
analyse() { # pcap
  local pdml=$1.pdml
  tshark -r "$1" --disable-heuristic rpcrdma_iwarp --disable-heuristic smb_direct_iwarp \
    -T pdml >"$pdml" 2>"$1.tshark-err"
  F_FPDU=$(grep -c 'name="iwarp_mpa.ulpdulength"' "$pdml")
  F_GOOD=$(grep -c 'Good CRC32' "$pdml")
  F_BAD=$(grep -c 'Bad CRC32' "$pdml")
  F_MALFORMED=$(grep -c 'name="_ws.malformed' "$pdml")
  F_REQ=$(grep -c 'name="iwarp_mpa.key.req"' "$pdml")
  F_REP=$(grep -c 'name="iwarp_mpa.key.rep"' "$pdml")
  F_REJ=$(grep -c 'name="iwarp_mpa.rej_flag"[^>]*show="1"' "$pdml")
  F_MARK=$(grep -c 'name="iwarp_mpa.marker_flag"[^>]*show="1"' "$pdml")
  F_CRCFLAG=$(grep -c 'name="iwarp_mpa.crc_flag"[^>]*show="1"' "$pdml")
  # RDMAP opcodes: 0 Write, 1 Read Request, 2 Read Response, 3 Send, 7 Terminate
  local ops
  ops=$(grep -o 'name="iwarp_rdma.opcode"[^>]*show="[0-9x]*"' "$pdml" | sed 's/.*show="//;s/"//')
  OP_W=$(grep -cx '0x0*0\|0' <<<"$ops")
  OP_RQ=$(grep -cx '0x0*1\|1' <<<"$ops")
  OP_RS=$(grep -cx '0x0*2\|2' <<<"$ops")
  OP_S=$(grep -cx '0x0*3\|3' <<<"$ops")
  OP_T=$(grep -cx '0x0*7\|7' <<<"$ops")
  OPS="W=$OP_W RReq=$OP_RQ RResp=$OP_RS Send=$OP_S Term=$OP_T"
}

PASS=0
FAIL=0
SUMMARY=()
result() { # name status detail
  local line
  line=$(printf '%-14s %-4s %s' "$1" "$2" "$3")
  SUMMARY+=("$line")
  say "$line"
  if [ "$2" = PASS ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
}

run_cell() { # spec index
  local name dir eopts gopts size expect
  IFS='|' read -r name dir eopts gopts size expect <<<"$1"
  local i=$2 d=$OUT/$name
  mkdir -p "$d"
  local why=() c0
  c0=$(date +%s%N)
  # shellcheck disable=SC2086
  if [ "$dir" = c2s ]; then
    local gport=$((7000 + i % 10)) hport=$((ETA_GUEST_PORT_BASE + i % 10))
    "$GUEST" kill srv >/dev/null 2>&1
    if ! "$GUEST" bg srv rping $gopts -a 0.0.0.0 -p "$gport" -C "$COUNT" -S "$size" -v >/dev/null 2>"$d/guest-bg.err" ||
      ! "$GUEST" wait-port -t 20 "$gport" >/dev/null 2>>"$d/guest-bg.err"; then
      result "$name" FAIL "guest rping -s did not start: $(tail -1 "$d/guest-bg.err")"
      return
    fi
    cap_start "$hport" "$d/cap.pcap" || { result "$name" FAIL "tshark"; return; }
    timeout "$CELL_TIMEOUT" "$BIN" -c -a 127.0.0.1 -p "$hport" -C "$COUNT" -S "$size" -v -t 30 $eopts \
      >"$d/eta.out" 2>"$d/eta.err"
    local erc=$?
    if [ "$expect" = ok ]; then
      "$GUEST" wait -t 30 srv >"$d/siw.out" 2>"$d/siw.err"
    else
      sleep 1
      "$GUEST" logs srv >"$d/siw.out" 2>"$d/siw.err"
      "$GUEST" kill srv >/dev/null 2>&1
      false
    fi
    local grc=$?
    cap_stop
  else
    local hport=$((HOST_PORT + i))
    cap_start "$hport" "$d/cap.pcap" || { result "$name" FAIL "tshark"; return; }
    timeout "$CELL_TIMEOUT" "$BIN" -s -a 127.0.0.1 -p "$hport" -C "$COUNT" -S "$size" -v -t 30 $eopts \
      >"$d/eta.out" 2>"$d/eta.err" &
    local epid=$!
    for _ in $(seq 50); do ss -ltn "sport = :$hport" | grep -q LISTEN && break; sleep 0.1; done
    "$GUEST" run -t "$CELL_TIMEOUT" rping $gopts -a 10.0.2.2 -p "$hport" -C "$COUNT" -S "$size" -v \
      >"$d/siw.out" 2>"$d/siw.err"
    local grc=$?
    wait "$epid"
    local erc=$?
    cap_stop
  fi
  "$GUEST" run dmesg >"$d/guest-dmesg.txt" 2>&1
  analyse "$d/cap.pcap"
  local secs
  secs=$(( ($(date +%s%N) - c0) / 100000000 ))
  secs="$((secs / 10)).$((secs % 10))"
  local neg
  neg=$(grep -o 'MPA Rev.*' "$d/eta.err" | head -1)

  case $expect in
    ok)
      [ "$erc" = 0 ] || why+=("eta-rping exit $erc: $(grep -m1 'failed' "$d/eta.err")")
      [ "$grc" = 0 ] || why+=("siw rping exit $grc: $(tr '\n' ' ' <"$d/siw.err" | cut -c1-200)")
      local n_eta n_siw
      if [ "$dir" = c2s ]; then
        n_eta=$(grep -c '^ping data: rdma-ping-' "$d/eta.out")
        n_siw=$(grep -c '^server ping data: rdma-ping-' "$d/siw.out")
      else
        n_eta=$(grep -c '^server ping data: rdma-ping-' "$d/eta.out")
        n_siw=$(grep -c '^ping data: rdma-ping-' "$d/siw.out")
      fi
      [ "$n_eta" = "$COUNT" ] && [ "$n_siw" = "$COUNT" ] ||
        why+=("pings eta=$n_eta siw=$n_siw, want $COUNT")
      [ "$F_REQ" -ge 1 ] && [ "$F_REP" -ge 1 ] || why+=("capture lacks the MPA Request/Reply")
      [ "$F_FPDU" -ge $((4 * COUNT)) ] || why+=("only $F_FPDU FPDUs decoded")
      [ "$OP_RQ" -ge "$COUNT" ] && [ "$OP_RS" -ge "$COUNT" ] && [ "$OP_W" -ge "$COUNT" ] &&
        [ "$OP_S" -ge $((4 * COUNT)) ] || why+=("RDMAP operations missing ($OPS)")
      [ "$OP_T" = 0 ] || why+=("$OP_T Terminate(s) on the wire")
      if grep -q 'CRC on' <<<"$neg"; then
        [ "$F_GOOD" = "$F_FPDU" ] || why+=("CRC: $F_GOOD good of $F_FPDU FPDUs")
      else
        [ "$F_GOOD" = 0 ] && [ "$F_CRCFLAG" = 0 ] || why+=("CRC negotiated off but the capture shows CRC (flags=$F_CRCFLAG good=$F_GOOD)")
      fi
      ;;
    reject-c2s)
      [ "$erc" = 1 ] && grep -q 'rejected' "$d/eta.err" ||
        why+=("eta-rping should fail with a reject, exit $erc: $(tail -1 "$d/eta.err")")
      [ "$F_REJ" -ge 1 ] || why+=("no MPA Reply with R=1 in the capture")
      [ "$F_FPDU" = 0 ] || why+=("$F_FPDU FPDUs after a reject")
      ;;
    term-from-siw)
      # eta broke the rules; siw's Terminate must come back and be decoded.
      [ "$erc" = 1 ] && grep -q 'peer terminated the connection' "$d/eta.err" ||
        why+=("eta-rping should report siw's Terminate, exit $erc: $(tail -1 "$d/eta.err")")
      [ "$OP_T" -ge 1 ] || why+=("no Terminate on the wire")
      # (siw's rping client just reports the disconnect and exits.)
      grep -q 'DISCONNECT' "$d/siw.out" "$d/siw.err" || why+=("siw rping did not see the disconnect")
      ;;
    term-from-eta)
      # siw read past what eta registered; eta must answer with a Terminate.
      [ "$erc" = 1 ] && grep -q 'violated the protocol' "$d/eta.err" ||
        why+=("eta-rping should report the violation, exit $erc: $(tail -1 "$d/eta.err")")
      [ "$OP_T" -ge 1 ] || why+=("no Terminate on the wire")
      ;;
    reject-s2c)
      [ "$grc" != 0 ] && grep -q 'REJECTED\|CONNECT_ERROR' "$d/siw.err" ||
        why+=("siw rping should fail to connect, exit $grc: $(tr '\n' ' ' <"$d/siw.err" | cut -c1-200)")
      [ "$erc" != 0 ] && grep -q 'failed' "$d/eta.err" ||
        why+=("eta-rping server should report the failed client, exit $erc")
      [ "$F_MARK" -ge 1 ] || why+=("no MPA frame with M=1 in the capture")
      [ "$F_FPDU" = 0 ] || why+=("$F_FPDU FPDUs on a refused connection")
      ;;
  esac
  [ "$F_BAD" = 0 ] || why+=("$F_BAD FPDUs with Bad CRC32")
  [ "$F_MALFORMED" = 0 ] || why+=("$F_MALFORMED Malformed")
  if grep -q 'kernel BUG\|Oops\|WARNING:' "$d/guest-dmesg.txt"; then
    why+=("guest kernel: $(grep -m1 'kernel BUG\|Oops\|WARNING:' "$d/guest-dmesg.txt")")
  fi

  local detail="${secs}s; ${neg:-no connection}; FPDUs=$F_FPDU good-CRC=$F_GOOD $OPS"
  if [ "${#why[@]}" = 0 ]; then
    result "$name" PASS "$detail"
  else
    local IFS=';'
    result "$name" FAIL "$detail -- ${why[*]}"
  fi
}

# --- cells -------------------------------------------------------------------
i=0
for spec in "${CELLS[@]}"; do
  name=${spec%%|*}
  if [ "${#WANT[@]}" -gt 0 ] && ! printf '%s\n' "${WANT[@]}" | grep -qx "$name"; then
    i=$((i + 1)); continue
  fi
  run_cell "$spec" "$i"
  i=$((i + 1))
done

"$GUEST" stop >/dev/null 2>&1
say ""
say "run-interop: summary (logs and captures in $OUT)"
for l in "${SUMMARY[@]}"; do echo "$l"; done
echo "$PASS passed, $FAIL failed ($(( $(date +%s) - T0 )) s)"
[ "$FAIL" = 0 ]

# Shared helpers of the interop matrix (sourced by integration/run-interop.sh):
# guest jobs, tshark capture and decoding, the checks every cell makes, and the
# result lines. Bash; expects ROOT, GUEST, OUT, ETA_GUEST_PORT_BASE to be set.

say() { printf '%s\n' "$*" >&2; }

# --- guest jobs ----------------------------------------------------------------
# guest_listen NAME PORT CMD...: (re)starts a background job in the guest and
# waits until PORT listens. Errors go to $D/guest-bg.err.
guest_listen() {
  local name=$1 port=$2
  shift 2
  "$GUEST" kill "$name" >/dev/null 2>&1
  "$GUEST" bg "$name" "$@" >/dev/null 2>"$D/guest-bg.err" &&
    "$GUEST" wait-port -t 20 "$port" >/dev/null 2>>"$D/guest-bg.err"
}

# guest_finish NAME SECS PROGRAM: waits for a guest job; its output goes to
# $D/siw.out/.err, its exit status to GRC. A job still running after SECS is
# reported (GUEST_HUNG=1, the kernel wait channel of PROGRAM in GUEST_WCHAN) and
# killed.
guest_finish() {
  GUEST_HUNG=0
  GUEST_WCHAN=
  "$GUEST" wait -t "$2" "$1" >"$D/siw.out" 2>"$D/siw.err"
  GRC=$?
  if [ "$GRC" = 124 ]; then
    GUEST_HUNG=1
    GUEST_WCHAN=$("$GUEST" run sh -c "cat /proc/\$(pidof $3)/wchan 2>/dev/null")
    "$GUEST" kill "$1" >/dev/null 2>&1
  fi
}

# wait_listen PORT: waits (up to 5 s) until a host process listens on PORT.
wait_listen() {
  for _ in $(seq 50); do
    ss -ltn "sport = :$1" | grep -q LISTEN && return 0
    sleep 0.1
  done
  return 1
}

# c2s_ports INDEX: the guest port of a c2s cell and its forward on the host.
c2s_ports() {
  GPORT=$((7000 + $1 % 10))
  HPORT=$((ETA_GUEST_PORT_BASE + $1 % 10))
}

# c2s_run PROGRAM SECS GUEST_CMD... -- ETA_CMD...: a c2s cell's run. Starts
# GUEST_CMD (PROGRAM, listening on GPORT; see c2s_ports) as guest job srv, captures
# HPORT, runs ETA_CMD (exit status in ERC), then waits up to SECS for the guest
# job (guest_finish). Returns 1, with a reason, if nothing could run.
c2s_run() {
  local prog=$1 secs=$2 guest_cmd=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do guest_cmd+=("$1"); shift; done
  shift
  guest_listen srv "$GPORT" "${guest_cmd[@]}" ||
    { why "guest $prog did not start: $(tail -1 "$D/guest-bg.err")"; return 1; }
  cap_start "$HPORT" "$D/cap.pcap" || { why "tshark did not start"; return 1; }
  timeout "$CELL_TIMEOUT" "$@" >"$D/eta.out" 2>"$D/eta.err"
  ERC=$?
  guest_finish srv "$secs" "$prog"
  cap_stop
}

# s2c_run HOST_PORT ETA_CMD... -- GUEST_CMD...: an s2c cell's run. Captures
# HOST_PORT, starts ETA_CMD (a server on it) in the background, runs GUEST_CMD in
# the guest (exit status in GRC, output in $D/siw.*), then waits for ETA_CMD
# (ERC). Returns 1, with a reason, if nothing could run.
s2c_run() {
  local hport=$1 eta_cmd=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do eta_cmd+=("$1"); shift; done
  shift
  cap_start "$hport" "$D/cap.pcap" || { why "tshark did not start"; return 1; }
  timeout "$CELL_TIMEOUT" "${eta_cmd[@]}" >"$D/eta.out" 2>"$D/eta.err" &
  local epid=$!
  wait_listen "$hport"
  "$GUEST" run -t "$CELL_TIMEOUT" "$@" >"$D/siw.out" 2>"$D/siw.err"
  GRC=$?
  wait "$epid"
  ERC=$?
  cap_stop
}

# --- capture -------------------------------------------------------------------
CAP_PID=
cap_start() { # port pcap
  : >"$2.log"
  tshark -i lo -B 64 -f "tcp port $1" -w "$2" >"$2.log" 2>&1 &
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

# How every capture is decoded: MPA's heuristic before any port-based dissector (an
# ephemeral port can belong to another protocol: 34980 is EtherCAT's, and a
# connection from it was decoded as EtherCAT), and no Send-payload heuristics
# (SMB Direct, RPC-over-RDMA would call test payloads "Malformed").
DECODE=(-o tcp.try_heuristic_first:TRUE --disable-heuristic rpcrdma_iwarp
  --disable-heuristic smb_direct_iwarp)

# analyse PCAP: decodes a capture; sets F_FPDU F_GOOD F_BAD F_MALFORMED F_REQ F_REP
# F_REJ F_MARK F_CRCFLAG F_RETRANS (TCP retransmissions seen), the RDMAP opcode counts OP_* (one per DDP segment), the
# message counts MSG_SENDS MSG_W MSG_RS and the summary OPS.
analyse() {
  local pdml=$1.pdml
  tshark -r "$1" "${DECODE[@]}" -T pdml >"$pdml" 2>"$1.tshark-err"
  F_FPDU=$(grep -c 'name="iwarp_mpa.ulpdulength"' "$pdml")
  F_GOOD=$(grep -c 'Good CRC32' "$pdml")
  F_BAD=$(grep -c 'Bad CRC32' "$pdml")
  F_MALFORMED=$(grep -c 'name="_ws.malformed' "$pdml")
  F_REQ=$(grep -c 'name="iwarp_mpa.key.req"' "$pdml")
  F_REP=$(grep -c 'name="iwarp_mpa.key.rep"' "$pdml")
  F_REJ=$(grep -c 'name="iwarp_mpa.rej_flag"[^>]*show="1"' "$pdml")
  F_MARK=$(grep -c 'name="iwarp_mpa.marker_flag"[^>]*show="1"' "$pdml")
  F_CRCFLAG=$(grep -c 'name="iwarp_mpa.crc_flag"[^>]*show="1"' "$pdml")
  F_RETRANS=$(grep -c 'name="tcp.analysis.retransmission"' "$pdml")
  # RDMAP opcodes: 0 Write, 1 Read Request, 2 Read Response, 3 Send, 4 Send with
  # Invalidate, 5 Send with Solicited Event, 6 Send with SE and Invalidate, 7 Terminate
  local ops
  ops=$(grep -o 'name="iwarp_rdma.opcode"[^>]*show="[0-9x]*"' "$pdml" | sed 's/.*show="//;s/"//')
  op() { grep -cx "0x0*$1\|$1" <<<"$ops"; }
  OP_W=$(op 0)
  OP_RQ=$(op 1)
  OP_RS=$(op 2)
  OP_S=$(op 3)
  OP_INV=$(op 4)
  OP_SE=$(op 5)
  OP_SEINV=$(op 6)
  OP_T=$(op 7)
  OP_SENDS=$((OP_S + OP_INV + OP_SE + OP_SEINV))
  # Messages, counted by their last DDP segment (L=1): Sends (opcodes 3-6), RDMA
  # Writes (0, RTRs included) and Read Responses (2).
  read -r MSG_SENDS MSG_W MSG_RS < <(tshark -r "$1" "${DECODE[@]}" \
    -T fields -E occurrence=a -E aggregator=' ' -e iwarp_ddp.last_flag -e iwarp_rdma.opcode -Y iwarp_ddp 2>/dev/null |
    awk -F'\t' '{ n = split($1, l, " "); split($2, o, " ")
                  for (i = 1; i <= n; i++) if (l[i] == 1) {
                    if (o[i] ~ /^0x0*[3-6]$/) s++
                    else if (o[i] ~ /^0x0*0?$/) w++
                    else if (o[i] ~ /^0x0*2$/) r++ } }
                END { print s + 0, w + 0, r + 0 }')
  OPS="W=$OP_W RReq=$OP_RQ RResp=$OP_RS Send=$OP_S"
  [ "$OP_INV" = 0 ] || OPS+=" SendInv=$OP_INV"
  [ "$OP_SE" = 0 ] || OPS+=" SendSE=$OP_SE"
  [ "$OP_SEINV" = 0 ] || OPS+=" SendSEInv=$OP_SEINV"
  OPS+=" Term=$OP_T"
}

# --- per-cell bookkeeping ------------------------------------------------------
PASS=0
FAIL=0
SUMMARY=()
DMESG_SEEN=0
CARRIED=() # reasons to fail found in earlier attempts of the cell (with_retries)
RETRY_NOTES=()

result() { # name status detail
  local line
  line=$(printf '%-18s %-4s %s' "$1" "$2" "$3")
  SUMMARY+=("$line")
  say "$line"
  if [ "$2" = PASS ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
}

# cell_begin NAME: the cell's directory D, its reasons for failing WHY, its clock.
cell_begin() {
  CELL=$1
  D=$OUT/$1
  mkdir -p "$D"
  WHY=()
  NOTE=
  ERC=
  GRC=
  CELL_T0=$(date +%s%N)
  NEG=
  F_FPDU=0
  F_GOOD=0
  OPS=
  BAD_CRC_WANTED=0
  GUEST_HUNG=0
  GUEST_WCHAN=
}

# hung_note: " (still running, blocked in WCHAN; killed)" for a guest job that
# guest_finish had to kill, else nothing.
hung_note() {
  [ "$GUEST_HUNG" = 1 ] && printf ' (still running, blocked in %s; killed)' "${GUEST_WCHAN:-?}"
}

# why MESSAGE: records a reason for the cell to fail.
why() { WHY+=("$*"); }

# check_crc: with "CRC on" in the eta tool's connection line every FPDU must be
# "Good CRC32" (but the deliberately bad ones); with CRC off, no CRC check at all.
check_crc() {
  if grep -q 'CRC on' <<<"$NEG"; then
    [ "$F_GOOD" = $((F_FPDU - BAD_CRC_WANTED)) ] ||
      why "CRC: $F_GOOD good of $F_FPDU FPDUs ($BAD_CRC_WANTED bad expected)"
  else
    [ "$F_GOOD" = 0 ] && [ "$F_CRCFLAG" = 0 ] ||
      why "CRC negotiated off but the capture shows CRC (flags=$F_CRCFLAG good=$F_GOOD)"
  fi
}

# new_kernel_line PATTERN: sets KLINE to the first match of PATTERN (grep -o) in
# the guest's kernel log lines since the last check_dmesg.
new_kernel_line() {
  "$GUEST" run dmesg >"$D/guest-dmesg.txt" 2>&1
  KLINE=$(tail -n +"$((DMESG_SEEN + 1))" "$D/guest-dmesg.txt" | grep -m1 -o "$1")
}

# with_retries ATTEMPT AGAIN SPEC INDEX: runs `ATTEMPT SPEC INDEX` (which starts
# with cell_begin), then AGAIN, which sets AGAIN to a reason to run the attempt
# once more, or to nothing; at most 3 attempts. Earlier attempts' directories stay
# as $D.attemptN; RETRY_NOTES lists why they were made again.
with_retries() {
  local attempt=$1 again=$2 try
  RETRY_NOTES=()
  CARRIED=()
  for try in 1 2 3; do
    "$attempt" "$3" "$4"
    "$again"
    [ -n "$AGAIN" ] && [ "$try" -lt 3 ] || break
    say "run-interop: $CELL: $AGAIN; again"
    RETRY_NOTES+=("attempt $try: $AGAIN (kept in $CELL.attempt$try)")
    # An oops during an attempt fails the cell all the same.
    local before=${#WHY[@]}
    check_dmesg
    CARRIED+=("${WHY[@]:before}")
    rm -rf "$D.attempt$try"
    mv "$D" "$D.attempt$try"
  done
}

# siw_fault_again: sets AGAIN to why the attempt just made should be made again
# when it failed because siw (not eta) got the octets of a good connection wrong,
# as proven from the capture by fpdu_crc.py, which recomputes every FPDU's CRC from
# the captured octets (independently of Wireshark and of eta):
# - siw logged "crc error. in: IN, own OWN", eta sent no FPDU with a bad CRC, OWN is
#   the CRC eta sent in one of its FPDUs, and IN is that FPDU's trailer as Linux
#   6.1's siw_get_trailer() reads it when the trailer arrives in two socket buffers
#   (it copies each part to the start of its buffer). Seen in about 1 of 4
#   s2c-read-bw runs. See docs/interop.md.
# - eta detected a bad CRC in an FPDU from siw (and sent its Terminate), and the
#   capture shows bad CRCs in siw's FPDUs and none in eta's. Seen once, in c2s-big.
# Anything else (a bad CRC from eta, a CRC error siw logged that the capture does
# not explain) fails the cell.
siw_fault_again() {
  AGAIN=
  [ -s "$D/cap.pcap" ] && [ "$BAD_CRC_WANTED" = 0 ] || return
  local role=initiator
  [ "${CELL#s2c-}" != "$CELL" ] && role=responder
  local fpdu_crc=("$ROOT/integration/interop/fpdu_crc.py" "$D/cap.pcap" --eta "$role")
  new_kernel_line 'siw: crc error. in: [0-9a-f]*, own [0-9a-f]*'
  if [ -n "$KLINE" ]; then
    local crc_in crc_own
    crc_in=$(sed 's/.*in: \([0-9a-f]*\),.*/\1/' <<<"$KLINE")
    crc_own=$(sed 's/.*own \([0-9a-f]*\)$/\1/' <<<"$KLINE")
    python3 "${fpdu_crc[@]}" --siw-crc-error "$crc_in" "$crc_own" >"$D/fpdu-crc.txt" 2>&1
    grep -q '^bad eta=0 ' "$D/fpdu-crc.txt" &&
      grep -q '^siw-crc-error: explained' "$D/fpdu-crc.txt" || return
    AGAIN="siw logged \"$KLINE\" for a good FPDU: $(grep '^siw-crc-error' "$D/fpdu-crc.txt" | cut -d' ' -f3-)"
    return
  fi
  grep -q 'violated the protocol: Llp(CrcError)' "$D/eta.err" 2>/dev/null || return
  python3 "${fpdu_crc[@]}" >"$D/fpdu-crc.txt" 2>&1
  grep -q '^bad eta=0 siw=[1-9]' "$D/fpdu-crc.txt" || return
  AGAIN="siw sent FPDUs with a bad CRC ($(grep '^bad ' "$D/fpdu-crc.txt"), recomputed from the capture); eta detected it and sent a Terminate"
}

# retry_notes: appends RETRY_NOTES to the cell's NOTE.
retry_notes() {
  local IFS=';'
  [ "${#RETRY_NOTES[@]}" = 0 ] || NOTE+="${NOTE:+; }${RETRY_NOTES[*]}"
}

# check_dmesg: the guest's new kernel log lines since the last look, checked for
# oopses (a reason to fail).
check_dmesg() {
  "$GUEST" run dmesg >"$D/guest-dmesg.txt" 2>&1
  local n
  n=$(wc -l <"$D/guest-dmesg.txt")
  local bug
  bug=$(tail -n +"$((DMESG_SEEN + 1))" "$D/guest-dmesg.txt" | grep -m1 'kernel BUG\|Oops\|WARNING:')
  [ -z "$bug" ] || why "guest kernel: $bug"
  DMESG_SEEN=$n
}

# cell_analyse: decodes the cell's capture and makes the checks every cell makes
# (no unexpected Bad CRC32, nothing Malformed, no new oops in the guest).
cell_analyse() {
  analyse "$D/cap.pcap"
  check_dmesg
  [ "${#CARRIED[@]}" = 0 ] || WHY+=("${CARRIED[@]}")
  CARRIED=()
  [ "$F_BAD" = "$BAD_CRC_WANTED" ] || why "$F_BAD FPDUs with Bad CRC32, $BAD_CRC_WANTED wanted"
  [ "$F_MALFORMED" = 0 ] || why "$F_MALFORMED Malformed"
  local dropped
  dropped=$(grep -o '[0-9]* packets dropped' "$D/cap.pcap.log" | cut -d' ' -f1)
  [ "${dropped:-0}" = 0 ] || why "the capture dropped $dropped packets: its checks are incomplete"
}

# at_least COUNT WANT WHAT: COUNT >= WANT, else a reason to fail -- unless the
# capture has TCP retransmissions: Wireshark then leaves some FPDUs of the
# retransmitted stretches undecoded (seen with bulk transfers through slirp), so
# a shortfall is only noted.
at_least() {
  [ "$1" -ge "$2" ] && return 0
  if [ "$F_RETRANS" -gt 0 ]; then
    NOTE+="${NOTE:+; }$3: $1 of $2 decoded ($F_RETRANS TCP retransmissions in the capture)"
  else
    why "$3: $1, want $2 ($OPS)"
  fi
}

# cell_result: the cell's result line, with its time and what was seen.
cell_result() {
  local secs
  secs=$((($(date +%s%N) - CELL_T0) / 100000000))
  secs="$((secs / 10)).$((secs % 10))"
  local detail="${secs}s; ${NEG:-no connection}; FPDUs=$F_FPDU good-CRC=$F_GOOD $OPS${NOTE:+; $NOTE}"
  if [ "${#WHY[@]}" = 0 ]; then
    result "$CELL" PASS "$detail"
  else
    local IFS=';'
    result "$CELL" FAIL "$detail -- ${WHY[*]}"
  fi
}

# one_line FILE: a file's text on one line, cut to 200 characters.
one_line() { tr '\n' ' ' <"$1" | cut -c1-200; }

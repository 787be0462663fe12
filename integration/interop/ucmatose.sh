# ucmatose cells of the interop matrix (sourced by integration/run-interop.sh).
#   c2s: eta-ucmatose -s on the host  -> rdma-core `ucmatose` server on siw
#   s2c: rdma-core `ucmatose -s` on siw -> eta-ucmatose server on the host
# The shared field holds ucmatose's -c (connections), -C (messages each way per
# connection) and -S (size). ucmatose itself counts completions without looking
# at their status (a flushed receive counts), so its "return status 0" proves
# little: the eta tool checks every message's length, and as server their
# content, and the capture must show every Send.
#
# Expectations:
#   ok     both end with "return status 0"; c connections set up; 2 x c x C Sends
#          on the wire, no Terminate, CRC as negotiated
#   conn   -C 0: c connections set up and torn down by the eta server, no FPDU
#   hold   s2c with messages: the eta server is the MPA Responder and siw's
#          ucmatose client (Initiator, client-server model: siw never sends an
#          RTR) sends nothing until it has received; eta holds its Sends until
#          it has received an FPDU (RFC 5044 §7.1.2 rule 4), so nothing moves: eta
#          must time out waiting for its first Send completion with no FPDU on
#          the wire. Without eta-ucmatose --send-first (Options::
#          responder_sends_first), the ok cell s2c-ucmatose shows the exchange
#          with it (see docs/interop.md).

# cell_ucmatose SPEC INDEX
cell_ucmatose() {
  local shared expect
  IFS='|' read -r _ _ _ shared _ _ expect <<<"$1"
  with_retries ucmatose_attempt siw_fault_again "$1" "$2"
  if [ "$RAN" = 1 ]; then
    NEG=$(grep -o 'MPA Rev.*' "$D/eta.err" | head -1)
    cell_analyse
    ucmatose_checks "$shared" "$expect"
  fi
  retry_notes
  cell_result
}

# ucmatose_attempt SPEC INDEX: one run of the cell; RAN=1 if both programs ran.
ucmatose_attempt() {
  local name dir shared eopts gopts
  IFS='|' read -r name _ dir shared eopts gopts _ <<<"$1"
  cell_begin "$name"
  RAN=0
  # shellcheck disable=SC2086
  if [ "$dir" = c2s ]; then
    c2s_ports "$2"
    c2s_run ucmatose 20 ucmatose -b 10.0.2.15 -p "$GPORT" $shared $gopts -- \
      "$BIN/eta-ucmatose" -s 127.0.0.1 -p "$HPORT" -t 20 -v $shared $eopts || return
  else
    local hport=$((HOST_PORT + $2))
    s2c_run "$hport" "$BIN/eta-ucmatose" -b 127.0.0.1 -p "$hport" -t 20 -v $shared $eopts -- \
      ucmatose -s 10.0.2.2 -p "$hport" $shared $gopts || return
  fi
  RAN=1
}

ucmatose_checks() { # shared expect
  local conns=1 count=10
  set -- $1 "$2"
  while [ $# -gt 1 ]; do
    case $1 in
      -c) conns=$2; shift ;;
      -C) count=$2; shift ;;
    esac
    shift
  done
  local expect=$1
  [ "$F_REQ" = "$conns" ] && [ "$F_REP" = "$conns" ] ||
    why "want $conns MPA Request/Reply pairs, saw $F_REQ/$F_REP"
  [ "$OP_T" = 0 ] || why "$OP_T Terminate(s) on the wire"
  case $expect in
    ok | conn)
      [ "$ERC" = 0 ] && grep -q '^return status 0' "$D/eta.out" ||
        why "eta-ucmatose exit $ERC: $(grep -m1 'failed' "$D/eta.err")"
      [ "$GRC" = 0 ] && grep -q '^return status 0' "$D/siw.out" ||
        why "siw ucmatose exit $GRC$(hung_note): $(one_line "$D/siw.out")"
      local want=$((2 * conns * count))
      at_least "$MSG_SENDS" "$want" "Send messages"
      [ "$MSG_SENDS" -le "$want" ] || why "$MSG_SENDS Send messages on the wire, want $want"
      if [ "$expect" = conn ]; then
        [ "$F_FPDU" = 0 ] || why "$F_FPDU FPDUs without messages"
      else
        local checked
        checked=$(grep -c '^connection [0-9]*: ' "$D/eta.out")
        [ "$checked" = "$conns" ] || why "eta checked $checked of $conns connections"
      fi
      check_crc
      NOTE="$conns connections x $count messages each way${NOTE:+; $NOTE}"
      ;;
    hold)
      [ "$ERC" = 1 ] && grep -q 'timed out after .* waiting for Send 0 of' "$D/eta.err" ||
        why "eta-ucmatose server should time out on its first Send, exit $ERC: $(tail -1 "$D/eta.err")"
      [ "$F_FPDU" = 0 ] || why "$F_FPDU FPDUs: something moved"
      NOTE="eta (Responder) holds its Sends: siw (Initiator, no RTR) never sends first"
      ;;
    *) why "unknown expectation $expect" ;;
  esac
}

# perftest cells of the interop matrix (sourced by integration/run-interop.sh).
#   c2s: eta-perftest VERB ... 127.0.0.1 -> `ib_VERB_bw -R -d siw0` server on siw
#   s2c: `ib_VERB_bw -R -d siw0 ... 10.0.2.2` on siw -> eta-perftest VERB server
# (VERB: write, read or send)
# The shared field is "VERB -s SIZE -n ITERS"; both programs get it (the verb
# picks the perftest binary). With -R perftest runs a control connection and then
# a test connection to the same port (see tools/src/perftest.rs for the exchange).
#
# Expectation ok: both programs exit 0; two connections set up; the server's
# report line shows SIZE and ITERS (for write/read the client's figures, sent over
# the control connection; for send the server's own); the eta server also counts
# the Write payload that arrived (write) or checks every Send (send); on the wire
# every control Send and ITERS RDMA Write messages (write), ITERS Read Requests
# and Read Response messages (read), or ITERS Sends and the receiver's credit
# Writes (send); no Terminate; CRC as negotiated.
#
# perftest calibrates its clock against gettimeofday, and under TCG on a loaded
# host the fit is sometimes too poor ("Can't produce a report", exit 1) although
# the test ran; then the cell is run again, up to 3 times in all (see
# perftest_again for the other reasons), and the result line says so.

# cell_perftest SPEC INDEX
cell_perftest() {
  with_retries perftest_attempt perftest_again "$1" "$2"
  # The second connection line is the test connection's.
  NEG=$(grep -o 'MPA Rev.*' "$D/eta.err" | tail -1)
  cell_analyse
  perftest_checks "$1"
  retry_notes
  cell_result
}

# perftest_again: sets AGAIN to why the attempt just made should be made again, if
# it should: perftest's clock calibration failed, or siw got a good connection's
# octets wrong (siw_fault_again).
perftest_again() {
  AGAIN=
  if grep -q "Can't produce a report" "$D/siw.err" "$D/siw.out" 2>/dev/null; then
    AGAIN="perftest could not calibrate its clock"
    return
  fi
  siw_fault_again
}

perftest_attempt() { # spec index
  local name dir shared eopts gopts verb
  IFS='|' read -r name _ dir shared eopts gopts _ <<<"$1"
  verb=${shared%% *}
  cell_begin "$name"
  # shellcheck disable=SC2086
  if [ "$dir" = c2s ]; then
    c2s_ports "$2"
    c2s_run "ib_${verb}_bw" 30 "ib_${verb}_bw" -R -d siw0 -p "$GPORT" ${shared#* } $gopts -- \
      "$BIN/eta-perftest" $shared -p "$HPORT" -t 30 $eopts 127.0.0.1
  else
    local hport=$((HOST_PORT + $2))
    s2c_run "$hport" "$BIN/eta-perftest" $shared -b 127.0.0.1 -p "$hport" -t 30 $eopts -- \
      "ib_${verb}_bw" -R -d siw0 -p "$hport" ${shared#* } $gopts 10.0.2.2
  fi
}

perftest_checks() { # spec
  local dir shared verb size iters
  IFS='|' read -r _ _ dir shared _ _ _ <<<"$1"
  verb=${shared%% *}
  size=$(grep -o -- '-s [0-9]*' <<<"$shared" | cut -d' ' -f2)
  iters=$(grep -o -- '-n [0-9]*' <<<"$shared" | cut -d' ' -f2)
  [ "$ERC" = 0 ] || why "eta-perftest exit $ERC: $(grep -m1 'failed' "$D/eta.err")"
  [ "$GRC" = 0 ] || why "ib_${verb}_bw exit $GRC$(hung_note): $(one_line "$D/siw.err")"
  # The server's report line carries the client's figures.
  local report=$D/siw.out
  [ "$dir" = s2c ] && report=$D/eta.out
  grep -Eq "^ $size +$iters " "$report" || why "no report line of $iters x $size octets in $(basename "$report")"
  # perftest's client retries the test connection until the server listens again;
  # slirp accepts and closes the early tries, so a Request may go unanswered.
  [ "$F_REQ" -ge 2 ] && [ "$F_REP" = 2 ] || why "want 2 MPA Replies (control, test), saw $F_REQ/$F_REP"
  case $verb in
    write | read)
      # Control Sends: 4 preamble + 7 handshakes + 5 report fields, each way.
      [ "$MSG_SENDS" = 32 ] || why "want 32 control Sends, saw $MSG_SENDS"
      ;;
    send)
      # 4 preamble + 7 handshakes each way, ITERS test Sends; the receiver's
      # credit Writes after every rx_depth/3 receives (and the last).
      at_least "$MSG_SENDS" $((22 + iters)) "Send messages (22 control + $iters test)"
      local rx=$((iters < 512 ? iters : 512)) n credits=0
      rx=$((rx + rx % 2))
      for ((n = 1; n <= iters; n++)); do
        (((n % rx) % (rx / 3 > 0 ? rx / 3 : 1) == 0)) && credits=$((credits + 1))
      done
      at_least "$MSG_W" "$credits" "credit Writes"
      NOTE+="${NOTE:+; }$credits credit Writes expected, $MSG_W Write messages seen (RTRs included)"
      ;;
  esac
  case $verb in
    write)
      at_least "$MSG_W" "$iters" "RDMA Write messages"
      # eta's client ends with a 1-octet Read (every Write placed before it).
      [ "$dir" = s2c ] || [ "$OP_RQ" = 1 ] || why "want eta's 1 Read after the Writes, saw $OP_RQ"
      [ "$dir" = c2s ] || grep -q 'octets of RDMA Write payload placed' "$D/eta.err" ||
        why "eta-perftest did not count the placed payload"
      ;;
    read)
      at_least "$OP_RQ" "$iters" "Read Requests"
      at_least "$MSG_RS" "$iters" "Read Response messages"
      ;;
    send)
      [ "$dir" = c2s ] || grep -q "received $iters Sends of $size octets" "$D/eta.err" ||
        why "eta-perftest server did not receive $iters Sends of $size octets"
      ;;
  esac
  [ "$OP_T" = 0 ] || why "$OP_T Terminate(s) on the wire"
  check_crc
  NOTE="$iters x $size octets: $(grep -E "^ $size +$iters " "$report" | awk '{print $4 " MB/s"}' | head -1)${NOTE:+; $NOTE}"
}

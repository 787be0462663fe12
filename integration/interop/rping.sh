# rping cells of the interop matrix (sourced by integration/run-interop.sh).
#   c2s: eta-rping -c on the host  -> rdma-core `rping -s` on siw in the guest
#   s2c: rdma-core `rping -c` on siw -> eta-rping -s on the host
# (the siw-only field adds options to rping -s / rping -c)
# Every ping is verified at both ends (eta-rping checks the data, rping -v prints
# it); COUNT pings per cell.
#
# Expectations:
#   ok             COUNT pings verified by both ends, Read/Write/Send on the wire,
#                  no Terminate, CRC as negotiated
#   ok-se          ok, and eta's Sends carry the Solicited Event flag (opcode 5)
#   reject-c2s     eta asks siw (Responder) for markers: MPA Reply with R=1
#   reject-s2c     eta (Responder) asks siw for markers: siw's connect fails
#   term-from-siw  eta Reads with a wrong STag: siw's Terminate is decoded
#   term-from-eta  siw Reads past what eta registered: eta sends a Terminate
#   inv-term       eta's first go-ahead is a Send with Invalidate of the STag it
#                  just read; the next ping's Read of that STag must draw siw's
#                  Terminate (Invalid STag): proof that siw invalidated it

# cell_rping SPEC INDEX
cell_rping() {
  local dir expect
  IFS='|' read -r _ _ dir _ _ _ expect <<<"$1"
  with_retries rping_attempt siw_fault_again "$1" "$2"
  if [ "$RAN" = 1 ]; then
    NEG=$(grep -o 'MPA Rev.*' "$D/eta.err" | head -1)
    cell_analyse
    rping_checks "$dir" "$expect"
  fi
  retry_notes
  cell_result
}

# rping_attempt SPEC INDEX: one run of the cell; RAN=1 if both programs ran.
rping_attempt() {
  local name dir shared eopts gopts expect
  IFS='|' read -r name _ dir shared eopts gopts expect <<<"$1"
  cell_begin "$name"
  RAN=0
  # shellcheck disable=SC2086
  if [ "$dir" = c2s ]; then
    c2s_ports "$2"
    # rping -s goes on listening after a refused or terminated connection.
    local secs=30
    [ "${expect#ok}" = "$expect" ] && secs=2
    c2s_run rping "$secs" rping -s $gopts -a 0.0.0.0 -p "$GPORT" -C "$COUNT" $shared -v -- \
      "$BIN/eta-rping" -c -a 127.0.0.1 -p "$HPORT" -C "$COUNT" $shared -v -t 30 $eopts || return
  else
    local hport=$((HOST_PORT + $2))
    s2c_run "$hport" "$BIN/eta-rping" -s -a 127.0.0.1 -p "$hport" -C "$COUNT" $shared -v -t 30 $eopts -- \
      rping -c $gopts -a 10.0.2.2 -p "$hport" -C "$COUNT" $shared -v || return
  fi
  RAN=1
}

rping_checks() { # dir expect
  local dir=$1 expect=$2
  local n_eta n_siw
  if [ "$dir" = c2s ]; then
    n_eta=$(grep -c '^ping data: rdma-ping-' "$D/eta.out")
    n_siw=$(grep -c '^server ping data: rdma-ping-' "$D/siw.out")
  else
    n_eta=$(grep -c '^server ping data: rdma-ping-' "$D/eta.out")
    n_siw=$(grep -c '^ping data: rdma-ping-' "$D/siw.out")
  fi
  case $expect in
    ok | ok-se)
      [ "$ERC" = 0 ] || why "eta-rping exit $ERC: $(grep -m1 'failed' "$D/eta.err")"
      [ "$GRC" = 0 ] || why "siw rping exit $GRC: $(one_line "$D/siw.err")"
      [ "$n_eta" = "$COUNT" ] && [ "$n_siw" = "$COUNT" ] ||
        why "pings eta=$n_eta siw=$n_siw, want $COUNT"
      [ "$F_REQ" -ge 1 ] && [ "$F_REP" -ge 1 ] || why "capture lacks the MPA Request/Reply"
      [ "$F_FPDU" -ge $((4 * COUNT)) ] || why "only $F_FPDU FPDUs decoded"
      [ "$OP_RQ" -ge "$COUNT" ] && [ "$OP_RS" -ge "$COUNT" ] && [ "$OP_W" -ge "$COUNT" ] &&
        [ "$OP_SENDS" -ge $((4 * COUNT)) ] || why "RDMAP operations missing ($OPS)"
      [ "$OP_T" = 0 ] || why "$OP_T Terminate(s) on the wire"
      if [ "$expect" = ok-se ]; then
        # eta sends 2 Sends per ping, all with SE; siw's are plain.
        [ "$OP_SE" = $((2 * COUNT)) ] || why "$OP_SE Sends with Solicited Event, want $((2 * COUNT))"
      fi
      check_crc
      ;;
    reject-c2s)
      [ "$ERC" = 1 ] && grep -q 'rejected' "$D/eta.err" ||
        why "eta-rping should fail with a reject, exit $ERC: $(tail -1 "$D/eta.err")"
      [ "$F_REJ" -ge 1 ] || why "no MPA Reply with R=1 in the capture"
      [ "$F_FPDU" = 0 ] || why "$F_FPDU FPDUs after a reject"
      ;;
    term-from-siw)
      # eta broke the rules; siw's Terminate must come back and be decoded.
      [ "$ERC" = 1 ] && grep -q 'peer terminated the connection' "$D/eta.err" ||
        why "eta-rping should report siw's Terminate, exit $ERC: $(tail -1 "$D/eta.err")"
      [ "$OP_T" -ge 1 ] || why "no Terminate on the wire"
      # (siw's rping client just reports the disconnect and exits.)
      grep -q 'DISCONNECT' "$D/siw.out" "$D/siw.err" || why "siw rping did not see the disconnect"
      ;;
    inv-term)
      # Ping 0 verified; its first go-ahead invalidated the STag just read; ping 1
      # Reads the same STag and siw refuses it.
      [ "$n_eta" = 1 ] && [ "$n_siw" -ge 1 ] || why "pings eta=$n_eta siw=$n_siw, want 1 before the invalidation"
      local inv reread
      inv=$(grep -o 'Send with Invalidate of the client.s STag 0x[0-9a-f]*' "$D/eta.err" | grep -o '0x[0-9a-f]*$')
      reread=$(grep -o 'ping 1: RDMA Read of the client.s STag 0x[0-9a-f]*' "$D/eta.err" | grep -o '0x[0-9a-f]*$')
      [ -n "$inv" ] && [ "$inv" = "$reread" ] ||
        why "ping 1 did not Read the invalidated STag (invalidated ${inv:-none}, read ${reread:-none})"
      [ "$ERC" = 1 ] && grep -q 'peer terminated the connection: RdmapProtection(InvalidStag)' "$D/eta.err" ||
        why "eta-rping should report siw's Invalid STag Terminate, exit $ERC: $(tail -1 "$D/eta.err")"
      [ $((OP_INV + OP_SEINV)) = 1 ] || why "want exactly 1 Send with Invalidate on the wire ($OPS)"
      [ "$OP_T" -ge 1 ] || why "no Terminate on the wire"
      check_crc
      NOTE="STag $inv invalidated by ping 0, refused at ping 1"
      ;;
    term-from-eta)
      # siw read past what eta registered; eta must answer with a Terminate.
      [ "$ERC" = 1 ] && grep -q 'violated the protocol' "$D/eta.err" ||
        why "eta-rping should report the violation, exit $ERC: $(tail -1 "$D/eta.err")"
      [ "$OP_T" -ge 1 ] || why "no Terminate on the wire"
      ;;
    reject-s2c)
      [ "$GRC" != 0 ] && grep -q 'REJECTED\|CONNECT_ERROR' "$D/siw.err" ||
        why "siw rping should fail to connect, exit $GRC: $(one_line "$D/siw.err")"
      [ "$ERC" != 0 ] && grep -q 'failed' "$D/eta.err" ||
        why "eta-rping server should report the failed client, exit $ERC"
      [ "$F_MARK" -ge 1 ] || why "no MPA frame with M=1 in the capture"
      [ "$F_FPDU" = 0 ] || why "$F_FPDU FPDUs on a refused connection"
      ;;
    *) why "unknown expectation $expect" ;;
  esac
}

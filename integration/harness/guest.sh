#!/usr/bin/env bash
# guest.sh — run Linux soft-iWARP (siw) in a QEMU guest and drive it from the host.
#
# Commands:
#   start                       boot the guest (builds first if needed); returns when siw0 is ACTIVE
#                               and the control channel answers. No-op if already running.
#   stop                        shut the guest down (always safe; no-op if not running)
#   status                      exit 0 if the guest runs and answers, 1 otherwise
#   run [-t SECS] CMD [ARG...]  run CMD in the guest (argv quoted for /bin/sh); its stdout,
#                               stderr and exit status become guest.sh's own
#   sh [-t SECS] SCRIPT|-       run a busybox-ash script (text, or '-' to read it from stdin)
#   bg NAME CMD [ARG...]        start CMD in the background in the guest (own session); prints its pid
#   wait [-t SECS] NAME         wait for background job NAME; prints its stdout/stderr, exits with its status
#   logs NAME                   print what background job NAME wrote so far (stdout, then stderr)
#   kill NAME                   SIGTERM (then SIGKILL after 5 s) the process group of job NAME
#   wait-port [-t SECS] PORT    wait until something listens on TCP PORT in the guest (ss -ltn)
#   put LOCAL REMOTE            copy a host file into the guest (mode kept)
#   get REMOTE LOCAL            copy a guest file to the host
#   env                         print KEY=VALUE lines: ports, paths, accel of the running guest
#   console [N]                 print the last N (default 50) lines of the guest console log
#
# Exit status of run/sh/wait: the guest command's status; 124 if the guest-side timeout
# fired; 255 if the guest could not be reached or the reply was malformed.
#
# Environment (defaults in brackets):
#   ETA_SIW_CACHE             build cache [<repo>/integration/cache]
#   ETA_GUEST_DIR             runtime dir: pid, console log, env [$ETA_SIW_CACHE/run]
#   ETA_GUEST_CTRL_PORT       host port of the control channel (guest 5555) [27555]
#   ETA_GUEST_PORT_BASE       host ports BASE..BASE+9 forward to guest 7000..7009 [27000]
#   ETA_GUEST_RPING_PORT      host port forwarded to guest 7174, rping's default [27174]
#   ETA_GUEST_ACCEL           auto | tcg | kvm [auto: KVM probe once if /dev/kvm, else TCG]
#   ETA_GUEST_KVM_PROBE_TIMEOUT  seconds a KVM boot may take before falling back [10]
#   ETA_GUEST_BOOT_TIMEOUT    seconds to wait for siw0 [120]
#   ETA_GUEST_TIMEOUT         default guest-side timeout of run/sh/wait, 0 = none [120]
#   ETA_GUEST_MEM, ETA_GUEST_CPUS  guest RAM in MiB [1024] and vCPUs (1..2) [2]
#   ETA_GUEST_PCAP            if set, QEMU writes every guest Ethernet frame to this pcap file
#   ETA_GUEST_SKIP_BUILD=1    start without running build.sh (cache must be complete)
#
# The guest is 10.0.2.15/24 on QEMU user networking; it reaches a listener on the
# host's 127.0.0.1:PORT at 10.0.2.2:PORT.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${ETA_SIW_CACHE:-$REPO/integration/cache}
DIR=${ETA_GUEST_DIR:-$CACHE/run}
# Absolute paths: QEMU -daemonize changes its directory to /.
CACHE=$(realpath -m "$CACHE")
DIR=$(realpath -m "$DIR")
GUEST_NAME=eta-siw-guest
GUEST_CTRL=5555
GUEST_PORTS=(7000 7001 7002 7003 7004 7005 7006 7007 7008 7009)
GUEST_RPING=7174

err() { echo "guest.sh: $*" >&2; }
die() { err "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
usage() { sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; }

# sq ARG: ARG quoted for a POSIX shell.
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
quote_argv() {
    local a out=""
    for a in "$@"; do out+="$(sq "$a") "; done
    printf '%s' "${out% }"
}
valid_name() { [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad job name '$1' (use [A-Za-z0-9_.-])"; }
valid_secs() { [[ $1 =~ ^[0-9]+$ ]] || die "bad timeout '$1' (whole seconds)"; }

# ------------------------------------------------------------ runtime state
# qemu_pid: pid of this instance's QEMU if it is alive, else nothing.
qemu_pid() {
    local pid
    [[ -f $DIR/qemu.pid ]] || return 0
    pid=$(tr -dc '0-9' <"$DIR/qemu.pid")
    [[ -n $pid && -r /proc/$pid/cmdline ]] || return 0
    # Only ever touch our own QEMU: its command line names this runtime dir.
    if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-pidfile $DIR/qemu.pid"; then
        echo "$pid"
    fi
}

load_env() {
    [[ -f $DIR/guest.env ]] || { err "guest not running (no $DIR/guest.env; run 'guest.sh start')"; exit 255; }
    # shellcheck disable=SC1091
    source "$DIR/guest.env"
}

# ------------------------------------------------------------ control channel
# rpc TIMEOUT SCRIPT: run SCRIPT in the guest; guest stdout/stderr to ours; returns its status.
rpc() {
    local tmo=$1 script=$2 fd len magic rc olen elen hostwait
    load_env
    len=$(printf '%s' "$script" | wc -c)
    if ! { exec {fd}<>"/dev/tcp/127.0.0.1/$ETA_GUEST_CTRL_PORT"; } 2>/dev/null; then
        err "cannot connect to the guest control channel 127.0.0.1:$ETA_GUEST_CTRL_PORT"
        return 255
    fi
    if ! { printf 'ETA1 %d %d\n' "$tmo" "$len" && printf '%s' "$script"; } 1>&"$fd" 2>/dev/null; then
        exec {fd}>&-
        err "could not send the request to the guest"
        return 255
    fi
    if ((tmo > 0)); then
        hostwait=$((tmo + 15))
        if ! read -r -t "$hostwait" magic rc olen elen <&"$fd"; then
            exec {fd}>&-
            err "no reply from the guest within $hostwait s (guest down or control channel not up?)"
            return 255
        fi
    elif ! read -r magic rc olen elen <&"$fd"; then
        exec {fd}>&-
        err "no reply from the guest (guest down or control channel not up?)"
        return 255
    fi
    if [[ $magic != ETA1 || ! $rc =~ ^[0-9]+$ || ! $olen =~ ^[0-9]+$ || ! $elen =~ ^[0-9]+$ ]]; then
        exec {fd}>&-
        err "malformed reply header from the guest: '$magic $rc $olen $elen'"
        return 255
    fi
    if ((olen > 0)); then timeout 60 head -c "$olen" <&"$fd" || true; fi
    if ((elen > 0)); then timeout 60 head -c "$elen" <&"$fd" >&2 || true; fi
    exec {fd}>&-
    return "$rc"
}

# ------------------------------------------------------------ start / stop
console_tail() {
    if [[ -s $DIR/console.log ]]; then
        err "last lines of the console log $DIR/console.log:"
        tail -n "${1:-30}" "$DIR/console.log" | sed 's/^/  | /' >&2
    else
        err "console log $DIR/console.log is empty"
    fi
    if [[ -s $DIR/qemu.log ]]; then
        err "QEMU said:"
        sed 's/^/  | /' "$DIR/qemu.log" >&2
    fi
}

kill_qemu() {
    local pid i
    pid=$(qemu_pid)
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
    fi
    rm -f "$DIR/qemu.pid" "$DIR/guest.env" "$DIR/monitor.sock"
}

port_in_use() {
    command -v ss >/dev/null || return 1
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# launch ACCEL: start QEMU daemonized. Returns non-zero if QEMU refused to start.
launch() {
    local accel=$1 cpu fwd p i
    case $accel in
        kvm) cpu=host ;;
        *) cpu=max ;;
    esac
    fwd="hostfwd=tcp:127.0.0.1:$CTRL_PORT-:$GUEST_CTRL,hostfwd=tcp:127.0.0.1:$RPING_PORT-:$GUEST_RPING"
    for i in "${!GUEST_PORTS[@]}"; do
        p=$((PORT_BASE + i))
        fwd+=",hostfwd=tcp:127.0.0.1:$p-:${GUEST_PORTS[$i]}"
    done
    local extra=()
    if [[ -n ${ETA_GUEST_PCAP:-} ]]; then
        extra+=(-object "filter-dump,id=dump0,netdev=n0,file=$(realpath -m "$ETA_GUEST_PCAP")")
    fi
    : >"$DIR/console.log"
    : >"$DIR/qemu.log"
    timeout 60 qemu-system-x86_64 \
        -name "$GUEST_NAME" -nodefaults -machine pc -accel "$accel" -cpu "$cpu" \
        -smp "$CPUS" -m "$MEM" -display none -no-reboot \
        -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet" \
        -serial "file:$DIR/console.log" \
        -monitor "unix:$DIR/monitor.sock,server=on,wait=off" \
        -netdev "user,id=n0,ipv6=off,$fwd" -device virtio-net-pci,netdev=n0 \
        "${extra[@]}" \
        -pidfile "$DIR/qemu.pid" -daemonize >>"$DIR/qemu.log" 2>&1 8>&-
}

# wait_ready SECS: wait for the READY marker. 0 = ready, 1 = failed/died, 2 = timed out.
wait_ready() {
    local limit=$1 t0 pid
    t0=$(date +%s)
    while :; do
        if grep -q 'ETA-GUEST-READY' "$DIR/console.log" 2>/dev/null; then return 0; fi
        if grep -q 'ETA-GUEST-FAILED' "$DIR/console.log" 2>/dev/null; then return 1; fi
        pid=$(qemu_pid)
        [[ -n $pid ]] || return 1
        (($(date +%s) - t0 < limit)) || return 2
        sleep 0.1
    done
}

# lock_dir: one start/stop at a time per runtime dir (fd 8; QEMU is started with 8>&-).
lock_dir() {
    exec 8>"$DIR/.lock"
    flock -w 300 8 || die "another guest.sh start/stop holds $DIR/.lock"
}

cmd_start() {
    local pid t0 accel probe_file probe_key boot_timeout i p
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    lock_dir
    pid=$(qemu_pid)
    if [[ -n $pid && -f $DIR/guest.env ]]; then
        if rpc 15 true 2>/dev/null; then
            err "guest already running (pid $pid)"
            cat "$DIR/guest.env"
            return 0
        fi
        err "guest pid $pid does not answer; restarting it"
    fi
    kill_qemu

    if [[ ${ETA_GUEST_SKIP_BUILD:-0} != 1 ]]; then
        "$HERE/build.sh" || die "build.sh failed"
    fi
    for f in vmlinuz initramfs.cpio.gz kernel.env; do
        [[ -s $CACHE/$f ]] || die "$CACHE/$f missing; run build.sh"
    done
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (build.sh installs qemu-system-x86)"

    CTRL_PORT=${ETA_GUEST_CTRL_PORT:-27555}
    PORT_BASE=${ETA_GUEST_PORT_BASE:-27000}
    RPING_PORT=${ETA_GUEST_RPING_PORT:-27174}
    MEM=${ETA_GUEST_MEM:-1024}
    CPUS=${ETA_GUEST_CPUS:-2}
    ((CPUS >= 1 && CPUS <= 2)) || die "ETA_GUEST_CPUS must be 1 or 2"
    boot_timeout=${ETA_GUEST_BOOT_TIMEOUT:-120}
    for p in "$CTRL_PORT" "$RPING_PORT" $(seq "$PORT_BASE" $((PORT_BASE + ${#GUEST_PORTS[@]} - 1))); do
        ! port_in_use "$p" || die "host port 127.0.0.1:$p is already in use (set ETA_GUEST_CTRL_PORT / ETA_GUEST_PORT_BASE / ETA_GUEST_RPING_PORT)"
    done

    # If start is interrupted or fails, do not leave a QEMU behind.
    trap 'kill_qemu' EXIT
    trap 'exit 130' INT TERM

    accel=${ETA_GUEST_ACCEL:-auto}
    t0=$(now)
    if [[ $accel == auto ]]; then
        accel=tcg
        probe_file=$CACHE/kvm-probe
        probe_key="$(uname -r) $(qemu-system-x86_64 --version | head -n1)"
        if [[ -r /dev/kvm && -w /dev/kvm ]]; then
            if [[ -f $probe_file && $(sed -n 2p "$probe_file") == "$probe_key" ]]; then
                [[ $(head -n1 "$probe_file") == good ]] && accel=kvm
            else
                err "probing KVM (up to ${ETA_GUEST_KVM_PROBE_TIMEOUT:-10} s; result cached in $probe_file)"
                if launch kvm && wait_ready "${ETA_GUEST_KVM_PROBE_TIMEOUT:-10}"; then
                    printf 'good\n%s\n' "$probe_key" >"$probe_file"
                    accel=kvm-probed
                else
                    err "KVM guest did not come up; using TCG (nested KVM hangs on this machine kind)"
                    printf 'bad\n%s\n' "$probe_key" >"$probe_file"
                    kill_qemu
                fi
            fi
        fi
    fi
    if [[ $accel == kvm-probed ]]; then
        accel=kvm
    else
        launch "$accel" || {
            console_tail
            die "QEMU failed to start (accel $accel)"
        }
        if wait_ready "$boot_timeout"; then
            :
        else
            case $? in
                1) console_tail 40; die "guest failed to boot (accel $accel) after $(since "$t0") s" ;;
                *) console_tail 40; die "guest not ready within $boot_timeout s (accel $accel)" ;;
            esac
        fi
    fi
    pid=$(qemu_pid)
    cat >"$DIR/guest.env" <<EOF
ETA_GUEST_PID=$pid
ETA_GUEST_ACCEL=$accel
ETA_GUEST_DIR=$DIR
ETA_GUEST_CONSOLE=$DIR/console.log
ETA_GUEST_MONITOR=$DIR/monitor.sock
ETA_GUEST_CTRL_PORT=$CTRL_PORT
ETA_GUEST_PORT_BASE=$PORT_BASE
ETA_GUEST_RPING_PORT=$RPING_PORT
ETA_GUEST_IP=10.0.2.15
ETA_GUEST_HOST_IP=10.0.2.2
ETA_GUEST_KVER=$(sed -n 's/^KVER=//p' "$CACHE/kernel.env")
EOF
    # The READY marker comes after the control port listens; confirm a round trip.
    for ((i = 0; i < 50; i++)); do
        if rpc 10 true 2>/dev/null; then break; fi
        sleep 0.2
    done
    ((i < 50)) || { console_tail; die "guest booted but the control channel does not answer"; }
    trap - EXIT INT TERM
    err "guest ready: siw0 ACTIVE after $(since "$t0") s (accel $accel, pid $pid, $(grep -o 'uptime=[0-9.]*' "$DIR/console.log" | head -n1))"
    cat "$DIR/guest.env"
}

cmd_stop() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    lock_dir
    local pid
    pid=$(qemu_pid)
    kill_qemu
    if [[ -n $pid ]]; then err "guest stopped (pid $pid)"; fi
    return 0
}

cmd_status() {
    local pid
    pid=$(qemu_pid)
    if [[ -n $pid && -f $DIR/guest.env ]] && rpc 10 true 2>/dev/null; then
        echo "running (pid $pid)"
        return 0
    fi
    echo "not running"
    return 1
}

# ------------------------------------------------------------ commands in the guest
parse_t() { # sets TMO and SHIFTN from a leading -t SECS
    TMO=${ETA_GUEST_TIMEOUT:-120}
    SHIFTN=0
    if [[ ${1:-} == -t ]]; then
        [[ $# -ge 2 ]] || die "-t needs a value"
        valid_secs "$2"
        TMO=$2
        SHIFTN=2
    fi
    valid_secs "$TMO"
}

cmd_run() {
    parse_t "$@"; shift "$SHIFTN"
    [[ ${1:-} == -- ]] && shift
    [[ $# -ge 1 ]] || die "usage: guest.sh run [-t SECS] CMD [ARG...]"
    rpc "$TMO" "exec $(quote_argv "$@")"
}

cmd_sh() {
    parse_t "$@"; shift "$SHIFTN"
    [[ $# -eq 1 ]] || die "usage: guest.sh sh [-t SECS] SCRIPT|-"
    local script=$1
    if [[ $script == - ]]; then script=$(cat); fi
    rpc "$TMO" "$script"
}

cmd_bg() {
    [[ $# -ge 2 ]] || die "usage: guest.sh bg NAME CMD [ARG...]"
    local name=$1
    shift
    valid_name "$name"
    local d="/run/eta/bg/$name"
    rpc 30 "d=$d
if [ -f \$d/pid ] && [ ! -f \$d/rc ] && kill -0 \$(cat \$d/pid) 2>/dev/null; then
    echo \"background job $name is still running\" >&2; exit 1
fi
rm -rf \$d && mkdir -p \$d || exit 1
printf '%s\n' $(sq "exec $(quote_argv "$@")") >\$d/cmd
cd /root
setsid sh -c \"sh \$d/cmd; echo \\\$? >\$d/rc.tmp; mv \$d/rc.tmp \$d/rc\" </dev/null >\$d/out 2>\$d/err &
echo \$! >\$d/pid
echo \$!"
}

cmd_wait() {
    parse_t "$@"; shift "$SHIFTN"
    [[ $# -eq 1 ]] || die "usage: guest.sh wait [-t SECS] NAME"
    valid_name "$1"
    local d="/run/eta/bg/$1" limit=$((TMO * 10))
    local guest_tmo=0
    ((TMO == 0)) || guest_tmo=$((TMO + 5))
    rpc "$guest_tmo" "d=$d
[ -f \$d/pid ] || { echo 'no background job $1' >&2; exit 127; }
i=0
while [ ! -f \$d/rc ]; do
    if [ $limit -gt 0 ] && [ \$i -ge $limit ]; then
        cat \$d/out; cat \$d/err >&2
        echo 'guest.sh: background job $1 still running after $TMO s' >&2; exit 124
    fi
    sleep 0.1; i=\$((i + 1))
done
cat \$d/out; cat \$d/err >&2
exit \$(cat \$d/rc)"
}

cmd_logs() {
    [[ $# -eq 1 ]] || die "usage: guest.sh logs NAME"
    valid_name "$1"
    rpc 30 "d=/run/eta/bg/$1
[ -f \$d/pid ] || { echo 'no background job $1' >&2; exit 127; }
cat \$d/out; cat \$d/err >&2"
}

cmd_kill() {
    [[ $# -eq 1 ]] || die "usage: guest.sh kill NAME"
    valid_name "$1"
    rpc 30 "d=/run/eta/bg/$1
[ -f \$d/pid ] || { echo 'no background job $1' >&2; exit 127; }
p=\$(cat \$d/pid)
kill -TERM -\$p 2>/dev/null
i=0
while kill -0 -\$p 2>/dev/null && [ \$i -lt 50 ]; do sleep 0.1; i=\$((i + 1)); done
kill -KILL -\$p 2>/dev/null
[ -f \$d/rc ] || echo 143 >\$d/rc
exit 0"
}

cmd_wait_port() {
    parse_t "$@"; shift "$SHIFTN"
    [[ $# -eq 1 && $1 =~ ^[0-9]+$ ]] || die "usage: guest.sh wait-port [-t SECS] PORT"
    local limit=$((TMO * 10)) guest_tmo=0
    ((TMO == 0)) || guest_tmo=$((TMO + 5))
    rpc "$guest_tmo" "i=0
until ss -Hltn 2>/dev/null | awk '{print \$4}' | grep -q ':$1\$'; do
    if [ $limit -gt 0 ] && [ \$i -ge $limit ]; then echo 'nothing listens on guest TCP port $1 after $TMO s' >&2; exit 124; fi
    sleep 0.1; i=\$((i + 1))
done"
}

cmd_put() {
    [[ $# -eq 2 ]] || die "usage: guest.sh put LOCAL REMOTE"
    [[ -f $1 ]] || die "no such file: $1"
    local mode
    mode=$(stat -c %a "$1")
    rpc 120 "base64 -d >$(sq "$2") <<'ETA_B64_END'
$(base64 "$1")
ETA_B64_END
chmod $mode $(sq "$2")"
}

cmd_get() {
    [[ $# -eq 2 ]] || die "usage: guest.sh get REMOTE LOCAL"
    local tmp rc=0
    tmp=$(mktemp)
    rpc 120 "base64 $(sq "$1")" >"$tmp" || rc=$?
    if ((rc == 0)); then base64 -d "$tmp" >"$2" || rc=1; fi
    rm -f "$tmp"
    return "$rc"
}

cmd_env() {
    load_env
    cat "$DIR/guest.env"
}

cmd_console() {
    [[ -f $DIR/console.log ]] || die "no console log in $DIR"
    tail -n "${1:-50}" "$DIR/console.log"
}

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
sub=$1
shift
case $sub in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    run) cmd_run "$@" ;;
    sh) cmd_sh "$@" ;;
    bg) cmd_bg "$@" ;;
    wait) cmd_wait "$@" ;;
    logs) cmd_logs "$@" ;;
    kill) cmd_kill "$@" ;;
    wait-port) cmd_wait_port "$@" ;;
    put) cmd_put "$@" ;;
    get) cmd_get "$@" ;;
    env) cmd_env "$@" ;;
    console) cmd_console "$@" ;;
    -h|--help|help) usage ;;
    *) err "unknown command '$sub'"; usage >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# build.sh — build Linux soft-iWARP (siw.ko) and a QEMU guest initramfs for the
# eta interoperability harness.
#
# Installs its Debian packages with apt-get (only what is missing), picks the
# newest Debian 6.1 kernel for which linux-image, linux-headers and
# linux-source-6.1 exist with the same version, builds siw out of tree against
# those headers, and packs an initramfs (busybox + modules + rdma-core tools).
#
# Output (in $ETA_SIW_CACHE, default <repo>/integration/cache):
#   vmlinuz            the Debian kernel the guest boots
#   initramfs.cpio.gz  the guest root file system (init, modules, tools)
#   siw.ko             the module built here (also inside the initramfs)
#   kernel.env         KVER=..., PKGVER=... (shell syntax)
#   stamp              what the above was built from; unchanged stamp = no rebuild
#   build.log          full output of the last build
#
# Usage: build.sh [--force] [--quiet]
# Env:   ETA_SIW_CACHE     cache directory
#        ETA_KERNEL_ABI    force a kernel ABI, e.g. 6.1.0-56 (default: newest)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${ETA_SIW_CACHE:-$REPO/integration/cache}
FORCE=0
QUIET=0
for a in "$@"; do
    case $a in
        --force) FORCE=1 ;;
        --quiet) QUIET=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$a'" >&2; exit 2 ;;
    esac
done

mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
LOG=$CACHE/build.log
STEP="start"
T_START=$(date +%s.%N)

say() { [[ $QUIET == 1 ]] || echo "build.sh: $*" >&2; }
die() {
    echo "build.sh: ERROR during '$STEP': $*" >&2
    if [[ -s $LOG ]]; then
        echo "build.sh: last lines of $LOG:" >&2
        tail -n 25 "$LOG" >&2
    fi
    exit 1
}
trap 'die "command failed (line $LINENO, exit $?)"' ERR
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
# step NAME: starts a timed step; step_done prints its duration.
step() { STEP=$1; T_STEP=$(date +%s.%N); say "$1 ..."; }
step_done() { say "$STEP done in $(elapsed "$T_STEP") s${1:+ ($1)}"; }

# One build at a time per cache (tests may call guest.sh start concurrently).
exec 9>"$CACHE/.build.lock"
if ! flock -w 900 9; then
    die "another build.sh holds $CACHE/.build.lock for more than 900 s"
fi

if [[ $(id -u) != 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
APT_OPTS=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300 -o APT::Sandbox::User=root)
export DEBIAN_FRONTEND=noninteractive

ARGS=("$@")
# apt_update_once: refresh the package lists at most once per build.
apt_update_once() {
    if [[ ${ETA_BUILD_APT_UPDATED:-0} == 0 ]]; then
        say "apt-get update"
        timeout 600 $SUDO apt-get update -q >>"$LOG" 2>&1 || die "apt-get update failed"
        export ETA_BUILD_APT_UPDATED=1
    fi
}
# retry_fresh WHAT: WHAT failed; if the package lists were not refreshed in this build yet,
# refresh them and start over (the newest kernel may have changed), else give up.
retry_fresh() {
    if [[ ${ETA_BUILD_APT_UPDATED:-0} == 1 ]]; then
        die "$1 (even after apt-get update)"
    fi
    say "$1; refreshing the package lists and starting over"
    apt_update_once
    exec 9>&-
    exec bash "$0" "${ARGS[@]}"
}

# versions PKG: all versions apt knows for PKG, newest first.
versions() { apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}'; }

# installed_version PKG: the installed version, or nothing.
installed_version() {
    dpkg-query -W -f='${Status}\t${Version}\n' "$1" 2>/dev/null |
        awk -F'\t' '$1 == "install ok installed" {print $2}'
}

[[ ${ETA_BUILD_APT_UPDATED:-0} == 1 ]] || : >"$LOG"

# ---------------------------------------------------------------- kernel pick
step "pick kernel"
pick_kernel() {
    local abi v abis m
    if [[ -n ${ETA_KERNEL_ABI:-} ]]; then
        abis=$ETA_KERNEL_ABI
    else
        abis=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
            sed -nE 's/^linux-image-(6\.1\.0-[0-9]+)-amd64$/\1/p' | sort -t- -k2,2nr)
    fi
    for abi in $abis; do
        m=$(apt-cache madison "linux-image-$abi-amd64" "linux-headers-$abi-amd64" linux-source-6.1 2>/dev/null |
            awk -F'|' '{gsub(/ /, "", $1); gsub(/ /, "", $2); print $1 " " $2}')
        for v in $(awk -v p="linux-image-$abi-amd64" '$1 == p {print $2}' <<<"$m"); do
            if grep -qxF "linux-headers-$abi-amd64 $v" <<<"$m" && grep -qxF "linux-source-6.1 $v" <<<"$m"; then
                echo "$abi $v"
                return 0
            fi
        done
    done
    return 1
}
if ! PICK=$(pick_kernel); then
    [[ ${ETA_BUILD_APT_UPDATED:-0} == 1 ]] ||
        retry_fresh "no matching kernel packages in the package lists"
    die "no linux-image-6.1.0-N-amd64 with matching linux-headers-6.1.0-N-amd64 and linux-source-6.1 versions in the apt archive (ETA_KERNEL_ABI=${ETA_KERNEL_ABI:-unset})"
fi
read -r ABI PKGVER <<<"$PICK"
KVER=$ABI-amd64
step_done "$KVER, package version $PKGVER"

# ---------------------------------------------------------------- packages
step "apt packages"
HOST_PKGS=(qemu-system-x86 busybox-static rdmacm-utils perftest ibverbs-providers ibverbs-utils
    libibverbs1 librdmacm1 iproute2 cpio xz-utils gzip make gcc util-linux)
PINNED=("linux-headers-$KVER=$PKGVER" "linux-source-6.1=$PKGVER")
missing=()
for p in "${HOST_PKGS[@]}"; do
    [[ -n $(installed_version "$p") ]] || missing+=("$p")
done
for pv in "${PINNED[@]}"; do
    [[ $(installed_version "${pv%%=*}") == "${pv#*=}" ]] || missing+=("$pv")
done
if ((${#missing[@]})); then
    say "installing: ${missing[*]}"
    timeout 900 $SUDO apt-get install "${APT_OPTS[@]}" --allow-downgrades "${missing[@]}" >>"$LOG" 2>&1 ||
        retry_fresh "apt-get install ${missing[*]} failed"
    step_done "installed ${#missing[@]} package(s)"
else
    step_done "all present"
fi

# ---------------------------------------------------------------- stamp
USERLAND_VERS=""
for p in busybox-static rdmacm-utils perftest ibverbs-providers ibverbs-utils libibverbs1 librdmacm1 iproute2 libc6; do
    USERLAND_VERS+="$p=$(installed_version "$p") "
done
SCRIPT_SUM=$(sha256sum "$0" | cut -d' ' -f1)
STAMP="kernel=$KVER pkg=$PKGVER script=$SCRIPT_SUM userland=[${USERLAND_VERS% }]"
if [[ $FORCE == 0 && -f $CACHE/stamp && $(cat "$CACHE/stamp") == "$STAMP" &&
    -s $CACHE/vmlinuz && -s $CACHE/initramfs.cpio.gz && -s $CACHE/siw.ko ]]; then
    say "up to date ($KVER, $PKGVER); nothing to do ($(elapsed "$T_START") s)"
    exit 0
fi
rm -f "$CACHE/stamp"

BUILD=$CACHE/build
rm -rf "$BUILD"
mkdir -p "$BUILD"

# ---------------------------------------------------------------- kernel image
step "kernel image"
(cd "$BUILD" && timeout 600 apt-get download -q -o APT::Sandbox::User=root "linux-image-$KVER=$PKGVER" >>"$LOG" 2>&1) ||
    retry_fresh "apt-get download linux-image-$KVER=$PKGVER failed"
DEB=$(ls "$BUILD"/linux-image-"$KVER"_*.deb)
timeout 300 dpkg-deb -x "$DEB" "$BUILD/image" >>"$LOG" 2>&1 || die "dpkg-deb -x $DEB failed"
rm -f "$DEB"
MODDIR=$BUILD/image/lib/modules/$KVER
[[ -s $BUILD/image/boot/vmlinuz-$KVER && -d $MODDIR ]] || die "linux-image-$KVER has no /boot/vmlinuz-$KVER or /lib/modules/$KVER"
step_done

# ---------------------------------------------------------------- siw.ko
step "siw build"
SIWDIR=$BUILD/siw
mkdir -p "$SIWDIR"
timeout 600 tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$SIWDIR" --strip-components=5 \
    --wildcards 'linux-source-6.1/drivers/infiniband/sw/siw/*' >>"$LOG" 2>&1 ||
    die "could not extract drivers/infiniband/sw/siw from /usr/src/linux-source-6.1.tar.xz"
[[ -f $SIWDIR/siw_main.c && -f $SIWDIR/Makefile ]] || die "siw sources missing after extraction (got: $(ls "$SIWDIR"))"
T_EXTRACT=$(elapsed "$T_STEP")
KHDR=/usr/src/linux-headers-$KVER
[[ -f $KHDR/Makefile ]] || die "$KHDR not found (linux-headers-$KVER not installed?)"
timeout 900 make -j2 -C "$KHDR" M="$SIWDIR" CONFIG_RDMA_SIW=m modules >>"$LOG" 2>&1 ||
    die "make of siw.ko against $KHDR failed"
[[ -s $SIWDIR/siw.ko ]] || die "siw.ko not produced"

modfield() { tr '\0' '\n' <"$1" | sed -n "s/^$2=//p" | head -n1; }
CORE_KO=$(find "$MODDIR" -name 'ib_core.ko*' | head -n1)
[[ -n $CORE_KO ]] || die "ib_core module not found in linux-image-$KVER"
core_magic() {
    case $CORE_KO in
        *.xz) xz -dc "$CORE_KO" | tr '\0' '\n' | sed -n 's/^vermagic=//p' | head -n1 ;;
        *.zst) zstd -dc "$CORE_KO" | tr '\0' '\n' | sed -n 's/^vermagic=//p' | head -n1 ;;
        *) modfield "$CORE_KO" vermagic ;;
    esac
}
SIW_MAGIC=$(modfield "$SIWDIR/siw.ko" vermagic)
KERN_MAGIC=$(core_magic)
[[ $SIW_MAGIC == "$KERN_MAGIC" ]] || die "vermagic mismatch: siw.ko '$SIW_MAGIC' vs kernel '$KERN_MAGIC'"
step_done "sources extracted in $T_EXTRACT s; vermagic $SIW_MAGIC"

# ---------------------------------------------------------------- initramfs
step "initramfs"
ROOT=$BUILD/rootfs
mkdir -p "$ROOT"/usr/{bin,sbin,lib,lib64} "$ROOT"/{dev,proc,sys,tmp,run,root,etc/eta,mnt}
ln -s usr/bin "$ROOT/bin"
ln -s usr/sbin "$ROOT/sbin"
ln -s usr/lib "$ROOT/lib"
ln -s usr/lib64 "$ROOT/lib64"
chmod 1777 "$ROOT/tmp"

# put PATH: copy a host file (symlinks dereferenced) to the same path in the
# guest, with the directory part canonicalised (usrmerge: /lib -> /usr/lib).
put() {
    local src=$1 dir
    [[ -e $src ]] || die "missing host file $src"
    dir=$(realpath "$(dirname "$src")")
    mkdir -p "$ROOT$dir"
    cp -L "$src" "$ROOT$dir/$(basename "$src")"
}
# put_elf FILE: put FILE and every shared library ldd lists for it.
declare -A PUT_DONE=()
put_elf() {
    local f=$1 lib
    if [[ -n ${PUT_DONE[$f]:-} ]]; then return 0; fi
    PUT_DONE[$f]=1
    put "$f"
    while read -r lib; do
        if [[ -z $lib || -n ${PUT_DONE[$lib]:-} ]]; then continue; fi
        PUT_DONE[$lib]=1
        put "$lib"
    done < <(ldd "$f" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}')
}

cp /bin/busybox "$ROOT/usr/bin/busybox"
GUEST_BINS=(rping ucmatose udaddy mckey cmtime rdma_server rdma_client rdma_xserver rdma_xclient
    rstream riostream rcopy udpong
    ib_send_bw ib_send_lat ib_write_bw ib_write_lat ib_read_bw ib_read_lat
    ibv_devices ibv_devinfo ibv_rc_pingpong ibv_srq_pingpong ibv_uc_pingpong
    rdma ip ss)
for b in "${GUEST_BINS[@]}"; do
    p=$(command -v "$b") || die "host binary '$b' not found"
    put_elf "$p"
done
LIBDIR=/usr/lib/x86_64-linux-gnu
for f in "$LIBDIR"/libibverbs/*.so "$LIBDIR"/rsocket/librspreload.so*; do
    if [[ -e $f ]]; then put_elf "$f"; fi
done
# glibc dlopens libgcc_s at thread exit (pthread_cancel/unwind); ldd does not list it.
put_elf "$LIBDIR/libgcc_s.so.1"
mkdir -p "$ROOT/etc/libibverbs.d"
cp /etc/libibverbs.d/*.driver "$ROOT/etc/libibverbs.d/"

# busybox applets for everything not provided by a real binary
while read -r app; do
    if [[ $app != */* || -e $ROOT/$app || -L $ROOT/$app ]]; then continue; fi
    ln -s /usr/bin/busybox "$ROOT/$app"
done < <(/bin/busybox --list-full)
ln -sf /usr/bin/busybox "$ROOT/init"

# kernel modules, in load order; each entry: file base name (- or _ as in the tree)
MODULES=(configfs crc32c_generic crc32c-intel libcrc32c ib_core ib_cm iw_cm rdma_cm ib_uverbs rdma_ucm
    siw virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)
mkdir -p "$ROOT/usr/lib/eta-modules"
: >"$ROOT/etc/eta/modules"
BUILTIN=$MODDIR/modules.builtin
loaded=" "
for m in "${MODULES[@]}"; do
    if [[ $m == siw ]]; then
        ko=$SIWDIR/siw.ko
    else
        ko=$(find "$MODDIR/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) | head -n1)
    fi
    mname=${m//-/_}
    if [[ -z $ko ]]; then
        if [[ -f $BUILTIN ]] && grep -q "/${m}.ko\$\|/${mname}.ko\$" "$BUILTIN"; then
            say "module $m is built into $KVER; skipped"
            loaded+="$mname "
            continue
        fi
        die "module $m neither in linux-image-$KVER nor built in"
    fi
    dst=$ROOT/usr/lib/eta-modules/$m.ko
    case $ko in
        *.xz) xz -dc "$ko" >"$dst" ;;
        *.zst) zstd -dc "$ko" >"$dst" ;;
        *.gz) gzip -dc "$ko" >"$dst" ;;
        *) cp "$ko" "$dst" ;;
    esac
    # every dependency must come earlier in MODULES (busybox insmod does not resolve them)
    for dep in $(modfield "$dst" depends | tr ',' ' '); do
        [[ $loaded == *" $dep "* ]] || die "module $m depends on $dep, which is not loaded before it"
    done
    loaded+="$mname "
    echo "$m" >>"$ROOT/etc/eta/modules"
done

# ---- guest configuration files
cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
EOF
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1 localhost
10.0.2.15 eta-guest
10.0.2.2 host
EOF
echo eta-guest >"$ROOT/etc/hostname"

cat >"$ROOT/etc/inittab" <<'EOF'
::sysinit:/etc/eta/rc
::respawn:/etc/eta/cmdserver
::once:/etc/eta/ready
::ctrlaltdel:/sbin/poweroff -f
::shutdown:/bin/sync
EOF

# rc: mounts, modules, network, siw0. On failure: print ETA-GUEST-FAILED and power off.
cat >"$ROOT/etc/eta/rc" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin
fail() { echo "ETA-GUEST-FAILED: $*"; sync; poweroff -f; sleep 10; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/eta/bg
hostname eta-guest
ulimit -l unlimited 2>/dev/null
for m in $(cat /etc/eta/modules); do
    out=$(insmod "/usr/lib/eta-modules/$m.ko" 2>&1) && continue
    case "$m $out" in
        crc32c-intel*) echo "eta-guest: note: crc32c-intel not loaded ($out); crc32c_generic is used" ;;
        *"File exists"*) ;;
        *) fail "insmod $m: $out" ;;
    esac
done
mount -t configfs configfs /sys/kernel/config 2>/dev/null
ip link set lo up || fail "lo up"
i=0
while ! ip link show eth0 >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "no eth0 after 10 s"
    sleep 0.1
done
ip link set eth0 up || fail "eth0 up"
ip addr add 10.0.2.15/24 dev eth0 || fail "eth0 address"
ip route add default via 10.0.2.2 dev eth0 || fail "default route"
rdma link add siw0 type siw netdev eth0 || fail "rdma link add siw0"
i=0
until rdma link show siw0/1 2>/dev/null | grep -q 'state ACTIVE'; do
    i=$((i + 1)); [ $i -gt 200 ] && fail "siw0 not ACTIVE after 20 s: $(rdma link 2>&1)"
    sleep 0.1
done
exit 0
EOF

# cmdserver: the control channel, one process per TCP connection (port 5555).
cat >"$ROOT/etc/eta/cmdserver" <<'EOF'
#!/bin/sh
exec nc -ll -p 5555 -e /etc/eta/cmd 2>>/run/eta/cmdserver.log
EOF

# cmd: one request per connection.
#   request:  "ETA1 <timeout-seconds, 0 = none> <script-bytes>\n" <script>
#   response: "ETA1 <exit-status> <stdout-bytes> <stderr-bytes>\n" <stdout><stderr>
# The script runs with /bin/sh (busybox ash) in /root, stdin /dev/null, in its own
# session; on timeout the whole session gets SIGTERM, then SIGKILL 2 s later,
# and the exit status is 124.
cat >"$ROOT/etc/eta/cmd" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin HOME=/root
reply() { printf 'ETA1 %d 0 %d\n%s' "$1" "${#2}" "$2"; exit 0; }
read -r magic tmo len || exit 0
case "$magic" in ETA1) ;; *) reply 254 "eta-guest: bad request '$magic'" ;; esac
case "$tmo$len" in *[!0-9]*|'') reply 254 "eta-guest: bad request header" ;; esac
d=$(mktemp -d /run/eta/cmd.XXXXXX) || reply 254 "eta-guest: mktemp failed"
head -c "$len" >"$d/s"
[ "$(wc -c <"$d/s")" -eq "$len" ] || { rm -rf "$d"; reply 254 "eta-guest: short request"; }
cd /root
setsid sh "$d/s" </dev/null >"$d/o" 2>"$d/e" &
pid=$!
if [ "$tmo" -gt 0 ]; then
    (
        n=0
        while kill -0 "$pid" 2>/dev/null; do
            if [ $n -ge $((tmo * 5)) ]; then
                : >"$d/timedout"
                kill -TERM -"$pid" 2>/dev/null
                sleep 2
                kill -KILL -"$pid" 2>/dev/null
                break
            fi
            sleep 0.2
            n=$((n + 1))
        done
    ) </dev/null >/dev/null 2>&1 &
fi
wait "$pid"
rc=$?
if [ -e "$d/timedout" ]; then
    rc=124
    echo "eta-guest: command timed out after $tmo s" >>"$d/e"
fi
printf 'ETA1 %d %d %d\n' "$rc" "$(wc -c <"$d/o")" "$(wc -c <"$d/e")"
cat "$d/o" "$d/e"
rm -rf "$d"
EOF

# ready: once the control channel listens, print the marker guest.sh waits for.
cat >"$ROOT/etc/eta/ready" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin
i=0
until netstat -ltn 2>/dev/null | grep -q ':5555 '; do
    i=$((i + 1)); [ $i -gt 200 ] && { echo "ETA-GUEST-FAILED: control port 5555 not listening"; poweroff -f; }
    sleep 0.1
done
echo "eta-guest: $(rdma link show siw0/1 2>&1)"
echo "ETA-GUEST-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
EOF
chmod 755 "$ROOT"/etc/eta/{rc,cmdserver,cmd,ready}

(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet | gzip -6) \
    >"$BUILD/initramfs.cpio.gz" 2>>"$LOG" || die "cpio/gzip of the initramfs failed"
step_done "$(du -sh "$ROOT" | cut -f1) unpacked, $(du -h "$BUILD/initramfs.cpio.gz" | cut -f1) packed"

# ---------------------------------------------------------------- install into cache
cp "$BUILD/image/boot/vmlinuz-$KVER" "$CACHE/vmlinuz.new"
mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
mv "$BUILD/initramfs.cpio.gz" "$CACHE/initramfs.cpio.gz"
cp "$SIWDIR/siw.ko" "$CACHE/siw.ko"
printf 'KVER=%s\nPKGVER=%s\n' "$KVER" "$PKGVER" >"$CACHE/kernel.env"
rm -rf "$BUILD"
echo "$STAMP" >"$CACHE/stamp"
say "built $KVER ($PKGVER) into $CACHE in $(elapsed "$T_START") s"

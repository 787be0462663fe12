#!/usr/bin/env bash
# Installs the Debian packages eta's tests need (idempotent; needs root or sudo).
#   tshark        - the Wireshark cross-check of the MPA framing
#   g++           - libFuzzer's runtime, built by the fuzz smoke run
#   curl          - tests/: fetches from python3 -m http.server and nginx under the shim
#   nginx-light   - tests/: a real server under the shim (own instance, own config)
#   wrk           - tests/: load on nginx under the shim
#   redis-server  - tests/: a real server under the shim (own instance, free port)
#   redis-tools   - tests/: redis-cli and redis-benchmark under the shim
#   python3       - tests/: http.server and the asyncio echo scripts
#   gcc           - tests/: the C programs built by the shim tests (cc)
#   pkg-config    - tests/: a C program built with `pkg-config --cflags --libs eta`
#
# The tests start their own nginx and redis on free loopback ports; the packages'
# system services are kept from starting (policy-rc.d answers 101 while apt runs)
# and are stopped and disabled afterwards in case an init system started them.
set -euo pipefail

packages=(tshark g++ curl nginx-light wrk redis-server redis-tools python3 gcc pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Keep services from starting on install: invoke-rc.d asks /usr/sbin/policy-rc.d,
# and 101 means "action forbidden". Restore whatever was there before.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
    saved="$(mktemp)"
    $sudo cp -p "$policy" "$saved"
fi
restore_policy() {
    if [ -n "$saved" ]; then
        $sudo cp -p "$saved" "$policy"
        rm -f "$saved"
    else
        $sudo rm -f "$policy"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
$sudo chmod 755 "$policy"

$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# If an init system runs services anyway, stop and disable the packaged ones.
for svc in nginx redis-server; do
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        $sudo systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done

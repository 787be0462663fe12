#!/usr/bin/env bash
# Installs eta for C programs: lib/libeta.so, include/eta.h and lib/pkgconfig/eta.pc
# under PREFIX (default /usr/local), so that
#     cc prog.c $(pkg-config --cflags --libs eta)        (link against libeta.so)
#     LD_PRELOAD=PREFIX/lib/libeta.so prog                (or preload it)
# both work.
#
#   scripts/install.sh [--lib PATH/libeta.so] [PREFIX]
#
# Without --lib it builds the release libeta.so first (cargo build --release -p
# eta-preload, into $CARGO_TARGET_DIR or target/). DESTDIR is honoured for staged
# installs (files go to $DESTDIR$PREFIX; eta.pc still names PREFIX).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/install.sh [--lib PATH/libeta.so] [PREFIX]" >&2; exit 2; }
lib=""
prefix=""
while [ $# -gt 0 ]; do
    case "$1" in
        --lib) [ $# -ge 2 ] || usage; lib="$2"; shift 2 ;;
        --lib=*) lib="${1#--lib=}"; shift ;;
        -h|--help) usage ;;
        -*) usage ;;
        *) [ -z "$prefix" ] || usage; prefix="$1"; shift ;;
    esac
done
prefix="${prefix:-/usr/local}"
case "$prefix" in /*) ;; *) echo "install: PREFIX must be an absolute path: $prefix" >&2; exit 2 ;; esac
prefix="${prefix%/}"

if [ -z "$lib" ]; then
    cargo build --release -p eta-preload
    lib="${CARGO_TARGET_DIR:-target}/release/libeta.so"
fi
[ -f "$lib" ] || { echo "install: no libeta.so at $lib" >&2; exit 1; }

# The workspace version ([workspace.package] version = "x.y.z" in Cargo.toml).
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)"
[ -n "$version" ] || { echo "install: no workspace version in Cargo.toml" >&2; exit 1; }

dest="${DESTDIR:-}$prefix"
install -d "$dest/lib/pkgconfig" "$dest/include"
install -m 0755 "$lib" "$dest/lib/libeta.so"
install -m 0644 include/eta.h "$dest/include/eta.h"
cat > "$dest/lib/pkgconfig/eta.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: eta
Description: iWARP (RDMAP/DDP/MPA) in user space: the libeta.so shim and its C API
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -leta
PC
chmod 0644 "$dest/lib/pkgconfig/eta.pc"
# A libdir the dynamic loader knows from ld.so.conf (e.g. /usr/local/lib) needs its
# cache refreshed before programs linked with -leta find the new library.
if [ -z "${DESTDIR:-}" ] && [ "$(id -u)" -eq 0 ] && command -v ldconfig >/dev/null &&
    grep -qsx "$prefix/lib" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf; then
    ldconfig
fi
echo "install: eta $version -> $dest (lib/libeta.so, include/eta.h, lib/pkgconfig/eta.pc)"

#!/bin/sh
# check_aarch64.sh — the aarch64 build must still compile (scalar paths only).
# Compiles every library and CLI source except the x86 SIMD and AMX files with the
# Debian cross compiler (gcc-aarch64-linux-gnu; installed here when run as
# root) and -fsyntax-only, against this machine's headers. It checks that
# no x86-only code leaks outside *_avx2.c / *_avx512.c and the runtime
# dispatch guards; linking needs the aarch64 -dev libraries and is not done.
set -eu
cd "$(dirname "$0")/.."
CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null
    else
        echo "check_aarch64: $CC missing (apt-get install gcc-aarch64-linux-gnu)" >&2
        exit 1
    fi
fi
PKG=$(pkg-config --cflags libcjson libpcre2-8 gmime-3.0 gumbo libxxhash libzstd openblas libxml-2.0 zlib | sed 's/-I/-isystem /g')
n=0; bad=0
for f in src/*/*.c; do
    case "$f" in *_avx2.c|*_avx512.c|*_amx.c) continue;; esac
    n=$((n + 1))
    # shellcheck disable=SC2086
    if ! "$CC" -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -fopenmp -Wall -Wextra -Werror -Isrc $PKG -fsyntax-only "$f"; then
        echo "check_aarch64: FAIL $f"; bad=$((bad + 1))
    fi
done
echo "check_aarch64: $n files, $bad failed"
[ "$bad" -eq 0 ]

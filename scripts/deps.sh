#!/bin/sh
# deps.sh — make sure the Debian packages phishlens builds against are present.
# Run as root: apt-installs what is missing. Otherwise: prints the exact
# apt-get line and exits non-zero. Never vendors anything.
set -eu

PKGS="build-essential pkg-config libcjson-dev libpcre2-dev libgmime-3.0-dev \
libgumbo-dev libxxhash-dev libzstd-dev libopenblas-dev libomp-dev \
libxml2-dev zlib1g-dev chromium fonts-dejavu-core"
# Optional extras (fuzzing with libFuzzer, report rendering in tests).
EXTRA="${PL_DEPS_EXTRA:-}"
# `make fuzz` sets PL_DEPS_FUZZ=1: clang and its libFuzzer runtime (not needed by make test).
[ "${PL_DEPS_FUZZ:-0}" = 1 ] && EXTRA="$EXTRA clang libclang-rt-14-dev"

missing=""
for p in $PKGS $EXTRA; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = "0" ]; then
    echo "deps.sh: installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || apt-get update
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || \
        apt-get install -y --no-install-recommends $missing
    exit 0
fi
echo "deps.sh: missing Debian packages. Run as root:" >&2
echo "    apt-get install -y$missing" >&2
exit 1

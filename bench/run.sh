#!/bin/sh
# run.sh — run every benchmark program that exists (make bench builds them).
# Threads: OMP_NUM_THREADS (default 2, the size of this machine); the machine
# is shared, so numbers are best-of-N and still noisy.
BUILD=${BUILD:-build}
: "${OMP_NUM_THREADS:=2}"
export OMP_NUM_THREADS
status=0
for name in peak matmul; do
    b="$BUILD/bench/$name"
    [ -x "$b" ] || continue
    echo "== $name"
    "$b" || status=1
done
# one thread too: no barriers, so it reads well even on a busy machine
if [ -x "$BUILD/bench/matmul" ] && [ "$OMP_NUM_THREADS" != 1 ]; then
    echo "== matmul (1 thread)"
    OMP_NUM_THREADS=1 "$BUILD/bench/matmul" || status=1
fi
# benchmarks added later by other modules: any other bench program
for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    case "$(basename "$b")" in peak|matmul|*.d) continue;; esac
    echo "== $(basename "$b")"
    "$b" || status=1
done
exit $status

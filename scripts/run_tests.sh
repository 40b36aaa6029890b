#!/bin/sh
# run_tests.sh — run every test program in $BUILD/tests, sum their counts and
# end with the plain line "N passed, N failed". Each test program prints
# "#counts <passed> <failed> <skipped>" as its last counts line.
BUILD=${BUILD:-build}
# idle OpenMP threads sleep instead of spinning: on a machine shared with
# other jobs, spinning threads steal the cores the working ones need
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
pass=0; fail=0; skip=0; crashed=""
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue;; esac
    name=$(basename "$t")
    out=$(mktemp)
    start=$(date +%s)
    "$t" >"$out" 2>&1
    rc=$?
    end=$(date +%s)
    grep -v '^#counts' "$out" | grep -E '^(FAIL|SKIP|not ok)|ERROR|Sanitizer|runtime error' | head -40
    line=$(grep '^#counts' "$out" | tail -1)
    if [ -z "$line" ]; then
        tail -20 "$out"
        echo "FAIL $name: exited $rc without a counts line"
        fail=$((fail + 1)); crashed="$crashed $name"
    else
        set -- $line
        p=$2; f=$3; s=$4
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            tail -20 "$out"
            echo "FAIL $name: exited $rc"; f=1
        fi
        pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
        printf '%-28s %4d passed %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((end - start))
    fi
    rm -f "$out"
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

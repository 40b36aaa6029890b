#!/bin/sh
# forward.sh — prefill (P-token batch) and decode tokens/s of phishlens vs
# llama.cpp in the same run, same thread count, on SmolLM2-135M (Q4_1 from
# `make models`, plus the dtypes bench/requant.py derives from it when
# PY_GGUF has the gguf package) and on the ../shared fixtures.
#
#   LLAMA_PY=/path/to/venv-with-llama-cpp-python/bin/python sh bench/forward.sh
#
# THREADS (2), P (512), G (128), R (3 repeats, best kept), PEAK (528 GFLOP/s,
# the fp32 peak of this machine), BW (40 GB/s). llama.cpp runs through the
# llama-cpp-python package (never a dependency of phishlens); without it only
# phishlens is measured.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
P=${P:-512}
G=${G:-128}
R=${R:-3}
PEAK=${PEAK:-528}
BW=${BW:-40}
LLAMA_PY=${LLAMA_PY:-python3}
PY_GGUF=${PY_GGUF:-python3}
SHARED=${SHARED:-../shared}
[ -x "$BUILD/bench/forward" ] || make -s "$BUILD/bench/forward" || exit 1
have_llama=0
"$LLAMA_PY" -c 'import llama_cpp' 2>/dev/null && have_llama=1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

models=""
SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$SMOL" ]; then
    models="$SMOL"
    if "$PY_GGUF" -c 'import gguf, numpy' 2>/dev/null; then
        for t in Q8_0 F32; do
            if "$PY_GGUF" bench/requant.py "$SMOL" "$WORK/SmolLM2-135M-Instruct.$t.gguf" "$t" >"$WORK/rq.log" 2>&1; then
                models="$models $WORK/SmolLM2-135M-Instruct.$t.gguf"
            else
                echo "requant $t failed:"; tail -3 "$WORK/rq.log"
            fi
        done
    fi
fi
for f in stories260K.gguf fixtures/tiny-mistral-random.gguf fixtures/tiny-mistral-random-q8_0.gguf \
         fixtures/tiny-mistral-random-q4_0.gguf; do
    [ -f "$SHARED/models/$f" ] && models="$models $SHARED/models/$f"
done

echo "== forward: prefill $P tokens, decode $G tokens, $THREADS threads, best of $R"
printf '%-44s %10s %10s %6s %7s | %10s %10s %6s %7s\n' model "pl pre/s" "cpp pre/s" ratio "%peak" \
    "pl dec/s" "cpp dec/s" ratio "%bw"
for m in $models; do
    OMP_NUM_THREADS=$THREADS "$BUILD/bench/forward" "$m" "$THREADS" "$P" "$G" "$R" "$PEAK" "$BW" >"$WORK/pl.txt" 2>&1 ||
        { echo "$m: phishlens failed: $(tail -1 "$WORK/pl.txt")"; continue; }
    pl=$(grep '^RESULT' "$WORK/pl.txt")
    cpp=""
    if [ $have_llama = 1 ]; then
        "$LLAMA_PY" bench/forward_llama.py "$m" "$THREADS" "$P" "$G" "$R" >"$WORK/cpp.txt" 2>&1 &&
            cpp=$(grep '^RESULT' "$WORK/cpp.txt")
    fi
    echo "$pl|$cpp|$m|$PEAK|$BW" | awk -F'|' '
        function v(s, k,   a, i, n) { n = split(s, a, /[ =]/); for (i = 1; i < n; i++) if (a[i] == k) return a[i + 1]; return "" }
        { pp = v($1, "prefill_tps"); pd = v($1, "decode_tps"); fl = v($1, "flops_per_prefill"); fb = v($1, "file_bytes")
          cp = v($2, "prefill_tps"); cd = v($2, "decode_tps"); name = $3; sub(/.*\//, "", name)
          peak = 100 * fl * pp / '"$P"' / 1e9 / $4; bw = 100 * fb * pd / 1e9 / $5
          rp = cp != "" ? sprintf("%.2fx", pp / cp) : "-"; rd = cd != "" ? sprintf("%.2fx", pd / cd) : "-"
          printf "%-44s %10.1f %10s %6s %6.1f%% | %10.1f %10s %6s %6.1f%%\n", name, pp, cp != "" ? sprintf("%.1f", cp) : "-", rp, peak, pd, cd != "" ? sprintf("%.1f", cd) : "-", rd, bw }'
done
echo "(%peak: phishlens prefill FLOP/s vs $PEAK GFLOP/s; %bw: phishlens decode, file bytes x tokens/s vs $BW GB/s)"

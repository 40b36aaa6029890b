#!/bin/sh
# train.sh — LoRA training speed and peak memory: phishlens vs PyTorch + PEFT.
#
# SmolLM2-135M-Instruct (make models), sequence length 256, batch 8, rank 16
# (alpha 32), on q,v and on all seven projections; label objective (CE over
# two label tokens at the last position); AdamW; random token sequences; the
# same thread count for both (THREADS, default 2, the cores of the machine
# the numbers in docs/training.md come from, as bench/eval.sh and
# bench/explain.sh; both tools run faster on 2 than on 1). phishlens: build/bench/train (PREC, default bf16: frozen products
# on AMX tiles where the CPU has them, else f32; gradient checkpointing on,
# the defaults); PyTorch: bench/train_torch.py (bf16 autocast, fp32 weights
# from the same GGUF via transformers' gguf_file=, no checkpointing) in the
# virtualenv VENV. STEPS timed steps after one untimed step; peak RSS of each
# whole process by /usr/bin/time -v. Prints a table and the ratios.
set -e
BUILD=${BUILD:-build}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
VENV=${VENV:-/work/venv-trainperf}
THREADS=${THREADS:-2}
PREC=${PREC:-bf16}
STEPS=${STEPS:-3}
TARGETS=${TARGETS:-"q,v all"}
OUT=${OUT:-build/bench_train}
[ -f "$MODEL" ] || { echo "train.sh: $MODEL missing (make models)"; exit 1; }
[ -x "$BUILD/bench/train" ] || { echo "train.sh: $BUILD/bench/train missing (make bench)"; exit 1; }
mkdir -p "$OUT"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS; $STEPS timed step(s) of 8 x 256 tokens"
printf '%-14s %-8s %10s %10s %12s\n' system targets tok/s s/step peak_RSS_MB
for tg in $TARGETS; do
    /usr/bin/time -v "$BUILD/bench/train" "$MODEL" "$tg" "$STEPS" "$THREADS" "$PREC" 8 256 16 \
        >"$OUT/pl_$tg.out" 2>"$OUT/pl_$tg.err" || { cat "$OUT/pl_$tg.err"; exit 1; }
    /usr/bin/time -v "$VENV/bin/python" bench/train_torch.py "$(dirname "$MODEL")" "$(basename "$MODEL")" \
        --targets "$tg" --steps "$STEPS" --batch 8 --seq 256 --threads "$THREADS" --rank 16 \
        >"$OUT/pt_$tg.out" 2>"$OUT/pt_$tg.err" || { tail -20 "$OUT/pt_$tg.err"; exit 1; }
    python3 - "$OUT/pl_$tg.out" "$OUT/pl_$tg.err" "$OUT/pt_$tg.out" "$OUT/pt_$tg.err" "$tg" <<'PY'
import json, re, sys
def last_json(p):
    return json.loads([l for l in open(p) if l.startswith("{")][-1])
def rss_mb(p):
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(p).read()).group(1)) / 1024
a, b = last_json(sys.argv[1]), last_json(sys.argv[3])
ra, rb = rss_mb(sys.argv[2]), rss_mb(sys.argv[4])
for name, j, r in (("phishlens", a, ra), ("pytorch+peft", b, rb)):
    print("%-14s %-8s %10.1f %10.2f %12.0f" % (name, sys.argv[5], j["tok_s"], j["s_per_step"], r))
print("  ratio %s: phishlens speed %.2fx PyTorch's, peak memory %.2fx PyTorch's" % (sys.argv[5], a["tok_s"] / b["tok_s"], ra / rb))
PY
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

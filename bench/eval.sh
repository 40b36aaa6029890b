#!/bin/sh
# eval.sh — emails/s of `phishlens eval` scoring with a LoRA adapter vs HF
# transformers + PEFT on the same model, adapter and token ids, in one run.
#
#   PY=/path/to/venv/bin/python sh bench/eval.sh
#
# PY needs torch, transformers, peft, gguf (never a dependency of the C code).
# MODEL (models/SmolLM2-135M-Instruct.Q4_1.gguf, `make models`), N emails
# (64, synthetic), THREADS (2), BATCH (HF batch size, 8). The GGUF is loaded
# into transformers (dequantized), a random PEFT LoRA (r=16, q/v) is made,
# and phishlens loads that same PEFT directory with the GGUF's own vocabulary
# and writes the token ids that transformers then scores, so both score
# identical ids. Skips (exit 0) when PY or the model is missing.
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
PY=${PY:-python3}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
N=${N:-64}
THREADS=${THREADS:-2}
BATCH=${BATCH:-8}
BF16=${BF16:-1} # 1: phishlens with bf16 tiles (--bf16; AMX), 0: llama.cpp's q8 activation path
if [ ! -f "$MODEL" ]; then echo "eval.sh: $MODEL missing (make models); skipped"; exit 0; fi
if ! "$PY" -c 'import torch, transformers, peft, gguf' 2>/dev/null; then
    echo "eval.sh: $PY lacks torch/transformers/peft/gguf; skipped"; exit 0
fi
[ -x "$BUILD/bench/eval" ] || make -s "$BUILD/bench/eval" || exit 1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "== eval: phishlens vs HF transformers + PEFT ($MODEL, $N emails, $THREADS threads)"
"$PY" bench/eval_hf.py prepare "$WORK" "$MODEL" 2>"$WORK/prep.log" || { cat "$WORK/prep.log"; exit 1; }
PL_BF16=$BF16 OMP_NUM_THREADS=$THREADS "$BUILD/bench/eval" "$MODEL" "" "$WORK/peft" "" "$N" "$WORK/ids.json" || exit 1
OMP_NUM_THREADS=$THREADS "$PY" bench/eval_hf.py run "$WORK" "$MODEL" "$WORK/ids.json" "$THREADS" "$BATCH" 2>"$WORK/run.log" ||
    { cat "$WORK/run.log"; exit 1; }

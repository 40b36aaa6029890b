#!/bin/sh
# tiny_model.sh — a small model that has learned the language of a corpus,
# the way `make demo` makes its models: a byte-level BPE learned on the
# corpus, `model init` with that vocabulary, then one epoch of causal-LM
# pre-training on the emails (train --objective lm --text-only --full).
#
#   bench/tiny_model.sh TRAIN.jsonl OUTDIR [llama|mistral|gemma2]
#
# Writes OUTDIR/tokenizer.json and OUTDIR/model.gguf. Only the training
# emails are read (keep test emails out of TRAIN.jsonl). PL is the phishlens
# binary (default build/phishlens); VOCAB (2000), LAYERS (2), DMODEL (64),
# EPOCHS (1), MAXLEN (320) tune it.
set -eu
PL=${PL:-build/phishlens}
TRAIN=$1
OUT=$2
ARCH=${3:-llama}
mkdir -p "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$PL" --quiet tokenizer train --vocab-size "${VOCAB:-2000}" --input "$TRAIN" -o "$OUT/tokenizer.json" >/dev/null
extra=""
[ "$ARCH" = gemma2 ] && extra="--head-dim 16 --window 64"
# shellcheck disable=SC2086
"$PL" --quiet model init --arch "$ARCH" --tokenizer "$OUT/tokenizer.json" -o "$OUT/init.gguf" \
    --layers "${LAYERS:-2}" --d-model "${DMODEL:-64}" --heads 4 --kv-heads 2 --ff $(( ${DMODEL:-64} * 2 )) --ctx 512 --seed 1 $extra >/dev/null
"$PL" --quiet train -m "$OUT/init.gguf" --train "$TRAIN" -o "$OUT/pretrain" --objective lm --text-only --full \
    --lr 3e-3 --epochs "${EPOCHS:-1}" --batch 16 --max-len "${MAXLEN:-320}" --warmup 10 --seed 1 | head -1
mv "$OUT/pretrain/model.gguf" "$OUT/model.gguf"
echo "tiny model: $OUT/model.gguf ($ARCH, pre-trained on $TRAIN)"

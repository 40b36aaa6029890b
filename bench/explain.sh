#!/bin/sh
# explain.sh — seconds per email for Partition SHAP (max_evals 500) on a
# 256-token email: phishlens explain (prefix-chain KV reuse, batched masked
# variants over token ids) vs shap's PartitionExplainer with a Text masker
# over HF transformers (GGUF loaded through transformers' gguf_file=, bf16
# autocast), both on SmolLM2-135M-Instruct with the same thread count.
#   VENV (default /work/venv-xmodel) needs torch, transformers, shap, gguf.
#   THREADS (default 2), EVALS (default 500), TOKENS (default 256).
# Both sides compute the same explanation: shap's Text masker over this
# tokenizer (no mask token) takes the tokens as features, clusters them into
# its hierarchy, and masks with "..." collapsing each run of masked tokens
# into one; phishlens runs with --features token --tree shap --mask-policy
# collapse (FEATURES, TREE, MASK override). A second phishlens run with its
# defaults (word features, email tree, every masked token replaced, so each
# variant keeps the email's length) is reported beside it.
# Run `make models` and `make` first. Prints one RESULT line with the ratio.
# The venv also needs accelerate (transformers requires it to load GGUF files).
set -eu
cd "$(dirname "$0")/.."
VENV=${VENV:-/work/venv-xmodel}
THREADS=${THREADS:-2}
EVALS=${EVALS:-500}
TOKENS=${TOKENS:-256}
FEATURES=${FEATURES:-token}
TREE=${TREE:-shap}
MASK=${MASK:-collapse}
BF16=${BF16---bf16} # phishlens with bf16 tiles (AMX); BF16= for llama.cpp's q8 activation path
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
BUILD=${BUILD:-build}
[ -f "$MODEL" ] || { echo "explain.sh: $MODEL missing (make models)" >&2; exit 1; }
[ -x "$BUILD/phishlens" ] || { echo "explain.sh: $BUILD/phishlens missing (make)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One long phishing-style email; both sides cut it to TOKENS tokens.
"$VENV/bin/python" bench/explain_shap.py email "$work/email.jsonl"
export OMP_NUM_THREADS=$THREADS
"$BUILD/phishlens" --quiet explain -m "$MODEL" --input "$work/email.jsonl" --method partition \
    --features "$FEATURES" --tree "$TREE" --mask-policy "$MASK" \
    --max-evals "$EVALS" --max-email-tokens "$TOKENS" -o "$work/pl.json" --view none $BF16
"$BUILD/phishlens" --quiet explain -m "$MODEL" --input "$work/email.jsonl" --method partition \
    --max-evals "$EVALS" --max-email-tokens "$TOKENS" -o "$work/pl_default.json" --view none $BF16
"$VENV/bin/python" bench/explain_shap.py run "$MODEL" "$work/email.jsonl" "$work/pl.json" "$THREADS" "$EVALS" "$TOKENS" \
    "$work/pl_default.json"

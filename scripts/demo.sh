#!/bin/sh
# demo.sh — `make demo`: the whole phishlens pipeline on the embedded default,
# CPU only:
#
#   1. synthesize the six-style corpus with a planted shortcut (data synth)
#   2. profile and split it (data profile, data split)
#   3. learn a byte-level BPE tokenizer on its training split (tokenizer train)
#   4. create small models of the three architectures with that vocabulary
#      (model init) and pre-train them as language models on the training
#      emails (train --objective lm --text-only --full -> model.gguf)
#   5. the study (studies/demo.json): each model fine-tuned with LoRA narrow
#      (bank, corporate) vs generalist, beside a lexical naive-Bayes baseline;
#      evaluation with bootstrap CIs, SHAP, probes, diagnosis and
#      demo-out/report.html
#
# The study caches by content: a second `make demo` reuses what did not
# change. PL (binary), OUT (folder) and STUDY override the defaults; the
# study file names demo-out/, so a different OUT needs a different STUDY.
set -eu
PL=${PL:-build/phishlens}
OUT=${OUT:-demo-out}
STUDY=${STUDY:-studies/demo.json}
t_start=$(date +%s)
# small models: one thread avoids OpenMP wake-ups that cost more than the work
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

echo "phishlens demo: $($PL --version)"
mkdir -p "$OUT"

echo "== 1. synthetic corpus with a planted shortcut"
$PL data synth --out "$OUT/synth" --seed 1

echo "== 2. profile and splits"
$PL data profile "$OUT/synth/records.jsonl" -o "$OUT/synth/profile.json"
# the study's own split (same seed and fractions as studies/demo.json), so the
# tokenizer and the LM pre-training never see a test email
$PL data split "$OUT/synth/records.jsonl" --out "$OUT/splits" --seed 1 --test-frac 0.25 --val-frac 0.1

echo "== 3. tokenizer (byte-level BPE, 2000 tokens, learned on the training split)"
$PL tokenizer train --vocab-size 2000 --input "$OUT/splits/generalist/train.jsonl" -o "$OUT/tokenizer.json"
# the models below depend on the tokenizer, the training emails and the
# trainer: a stamp of their content (and of the binary) decides whether a
# second run can keep them
stamp=$(cat "$OUT/tokenizer.json" "$OUT/tokenizer_config.json" "$OUT/splits/generalist/train.jsonl" "$PL" | cksum)

echo "== 4. small llama, mistral and gemma2 models, pre-trained as language models on the training emails"
mkdir -p "$OUT/models"
for arch in llama mistral gemma2; do
    if [ -f "$OUT/models/$arch.gguf" ] && [ "$(cat "$OUT/models/$arch.stamp" 2>/dev/null)" = "$stamp" ]; then
        echo "   $arch: $OUT/models/$arch.gguf is up to date"
        continue
    fi
    extra=""
    [ "$arch" = gemma2 ] && extra="--head-dim 16 --window 64"
    # shellcheck disable=SC2086
    $PL model init --arch "$arch" --tokenizer "$OUT/tokenizer.json" -o "$OUT/models/$arch-init.gguf" \
        --layers 2 --d-model 64 --heads 4 --kv-heads 2 --ff 128 --ctx 512 --seed 1 $extra
    $PL --quiet train -m "$OUT/models/$arch-init.gguf" --train "$OUT/splits/generalist/train.jsonl" \
        -o "$OUT/models/pretrain-$arch" --objective lm --text-only --full \
        --lr 3e-3 --epochs 1 --batch 16 --max-len 320 --warmup 10 --seed 1 | head -1
    mv "$OUT/models/pretrain-$arch/model.gguf" "$OUT/models/$arch.gguf"
    echo "$stamp" > "$OUT/models/$arch.stamp"
done

echo "== 5. the study ($STUDY)"
$PL study run "$STUDY" -o "$OUT" --dry-run | tail -1
$PL study run "$STUDY" -o "$OUT" | grep -v ' cached' || true
[ -f "$OUT/report.html" ] || { echo "demo: no report was written" >&2; exit 1; }

echo
echo "== summary"
if grep -q '"found":[[:space:]]*true' "$OUT/diagnose/diagnosis.json"; then
    echo "The diagnosis names the planted shortcut (the MailShield footer):"
else
    echo "The diagnosis did NOT name the planted shortcut."
fi
grep -E '"text":.*(The diagnosis recovers|Words of the planted|Likely shortcut)' "$OUT/diagnose/diagnosis.json" |
    sed -e 's/^[[:space:]]*"text":[[:space:]]*"/  /' -e 's/",*$//' -e 's/\\"/"/g' | head -7
echo "report: $OUT/report.html"
echo "demo wall time: $(( $(date +%s) - t_start )) s"

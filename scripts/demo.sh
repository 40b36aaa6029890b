#!/bin/sh
# demo.sh — `make demo`: the whole phishlens pipeline on the embedded default,
# CPU only. It runs the most complete path this build supports and says
# plainly what it did and what it skipped (a step whose command is not in
# this build is skipped, never faked).
#
#   1. synthesize the six-style corpus with a planted shortcut (data synth)
#   2. profile and split it (data profile, data split)
#   3. train a byte-level BPE tokenizer on it (tokenizer train)
#   4. fresh small LLMs of the three architectures (model init; no LM
#      pre-training, to keep the demo short)
#   5. the study (studies/demo.json): narrow vs generalist vs
#      leave-one-source-out training, evaluation with CIs, SHAP, diagnosis,
#      demo-out/report.html
#   6. the LLM side on those models (and stories260K from ../shared/models
#      when present): zero-shot scoring, SHAP and probe curves
#      (demo-out/llm-zero-shot/report.html), then narrow vs generalist LoRA
#      fine-tuning (demo-out/llm-finetune/report.html). These check the LLM
#      stages end to end: random or tiny models say nothing about phishing.
set -eu
PL=${PL:-build/phishlens}
OUT=${OUT:-demo-out}
STUDY=${STUDY:-studies/demo.json}
t_start=$(date +%s)
did=""
skipped=""
note_did() { did="$did
  - $1"; }
note_skip() { skipped="$skipped
  - $1"; echo "   skipped: $1"; }
has_cmd() { "$PL" help "$1" >/dev/null 2>&1; }

echo "phishlens demo: $($PL --version)"
mkdir -p "$OUT"

echo "== 1. synthetic corpus with a planted shortcut"
$PL data synth --out "$OUT/synth" --seed 1
note_did "data synth: 2400 emails in 6 styles; shortcut footer planted in bank and parcel phishing"

echo "== 2. profile and splits"
$PL data profile "$OUT/synth/records.jsonl" -o "$OUT/synth/profile.json"
$PL data split "$OUT/synth/records.jsonl" --out "$OUT/splits" --seed 1 --loso
note_did "data profile + data split --loso"

echo "== 3. tokenizer"
$PL tokenizer train --vocab-size 2000 --input "$OUT/splits/generalist/train.jsonl" -o "$OUT/tokenizer.json" 2>/dev/null ||
    $PL tokenizer train --vocab-size 2000 --input "$OUT/synth/records.jsonl" -o "$OUT/tokenizer.json"
note_did "tokenizer train: byte-level BPE, 2000 tokens ($OUT/tokenizer.json)"

echo "== 4. fresh small LLMs (llama, mistral, gemma2)"
mkdir -p "$OUT/models"
for arch in llama mistral gemma2; do
    extra=""
    [ "$arch" = gemma2 ] && extra="--head-dim 16 --window 64"
    # shellcheck disable=SC2086
    $PL model init --arch "$arch" --tokenizer "$OUT/tokenizer.json" -o "$OUT/models/tiny-$arch.gguf" \
        --layers 2 --d-model 64 --heads 4 --kv-heads 2 --ff 128 --ctx 256 $extra
done
note_did "model init: 2-layer llama, mistral and gemma2 models (d_model 64) with the demo tokenizer's vocabulary, random weights"
note_skip "LM pre-training of those models ('phishlens train --objective lm'): left out to keep the demo short, so they keep random weights"

echo "== 5. the study ($STUDY)"
$PL study run "$STUDY" -o "$OUT" --dry-run | tail -1
$PL study run "$STUDY" -o "$OUT" | grep -v ' cached' | grep -v ' unavailable' || true
[ -f "$OUT/report.html" ] || { echo "demo: no report was written" >&2; exit 1; }
note_did "study run: lexical-nb baseline trained narrow (bank, parcel, corporate), generalist and leave-one-source-out; eval with bootstrap CIs; SHAP; diagnosis; $OUT/report.html"
n_na=$(grep -o 'not run —' "$OUT/diagnose/diagnosis.json" 2>/dev/null | wc -l)
note_skip "$n_na tasks of $STUDY do not apply to lexical-nb (interp: no layers); the report lists them with the reason"

echo "== 6. the LLM side: zero-shot, then narrow vs generalist LoRA, on small models of the three architectures"
SHARED=${PL_SHARED:-../shared}
M="$SHARED/models"
# llm_study DIR NAME MAX PARADIGMS MODELS...: write DIR/study.json and run it
llm_study() {
    dir=$1; name=$2; max=$3; paradigms=$4; shift 4
    mkdir -p "$dir"
    models=""
    for spec in "$@"; do
        mname=${spec%%=*}; rest=${spec#*=}; fam=${rest%%:*}; path=${rest#*:}
        models="$models${models:+, }{\"name\": \"$mname\", \"family\": \"$fam\", \"path\": \"$path\"}"
    done
    cat > "$dir/study.json" <<EOF
{"name": "$name",
 "description": "tiny-* are fresh models with RANDOM weights (model init); stories260K, when present, is a real TinyStories model. These runs check the LLM stages end to end; their numbers say nothing about phishing detection.",
 "seed": 1,
 "corpora": [{"name": "bank", "path": "$S/bank.jsonl", "max": $max},
             {"name": "personal", "path": "$S/personal.jsonl", "max": $max},
             {"name": "newsletter", "path": "$S/newsletter.jsonl", "max": $max}],
 "models": [$models],
 "paradigms": [$paradigms],
 "hyperparameters": {"max_tokens": 96, "epochs": 1, "batch": 8, "lr": 1e-3, "lora_rank": 8, "lora_alpha": 16},
 "test": {"test_frac": 0.25, "bootstrap": 200},
 "explain": {"examples": 4, "method": "partition", "max_evals": 100},
 "interp": {"probe_examples": 60}}
EOF
    # tiny models: one thread avoids OpenMP wake-up costs that dwarf the work
    OMP_NUM_THREADS=1 $PL study run "$dir/study.json" -o "$dir" | grep -E '(train|eval|explain|interp)/.* ran|^study|^report' || true
}
S=$(cd "$OUT/synth" && pwd)
T=$(cd "$OUT/models" && pwd)
zs_models="tiny-llama=llama:$T/tiny-llama.gguf tiny-mistral=mistral:$T/tiny-mistral.gguf tiny-gemma2=gemma2:$T/tiny-gemma2.gguf"
if [ -f "$M/stories260K.gguf" ]; then
    zs_models="stories260K=llama:$(cd "$M" && pwd)/stories260K.gguf $zs_models"
else
    note_skip "stories260K (a real TinyStories model) in the zero-shot pass: $M is not here"
fi
# shellcheck disable=SC2086
llm_study "$OUT/llm-zero-shot" "zero-shot: small models of the three architectures" 200 '"zero-shot"' $zs_models
note_did "zero-shot LLM scoring, SHAP and residual-stream probe curves over the llama, mistral and gemma2 models ($OUT/llm-zero-shot/report.html)"
llm_study "$OUT/llm-finetune" "narrow vs generalist LoRA: small models of the three architectures" 80 \
    '"zero-shot", "narrow:bank", "generalist"' \
    "tiny-llama=llama:$T/tiny-llama.gguf" "tiny-mistral=mistral:$T/tiny-mistral.gguf" "tiny-gemma2=gemma2:$T/tiny-gemma2.gguf"
note_did "LoRA fine-tuning narrow (bank) vs generalist vs zero-shot of the three small models, evaluated, explained and probed ($OUT/llm-finetune/report.html)"

echo
echo "== summary"
if grep -qi 'mailshield' "$OUT/report.html"; then
    echo "The diagnosis names the planted shortcut (MailShield footer):"
    sed -n 's/.*"text":[[:space:]]*"\(The diagnosis recovers.*\)",$/  \1/p; s/.*"text":[[:space:]]*"\(Likely shortcut: the words[^"]*\)".*/  \1/p' \
        "$OUT/diagnose/diagnosis.json" | head -3
else
    echo "The diagnosis did NOT name the planted shortcut."
fi
echo "done:$did"
echo "skipped:$skipped"
echo "report: $OUT/report.html"
echo "demo wall time: $(( $(date +%s) - t_start )) s"

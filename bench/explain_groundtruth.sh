#!/bin/sh
# explain_groundtruth.sh — does global SHAP find a planted shortcut?
# Two synthetic corpora (phishlens data synth) carry the same footer token:
#   A: the token marks phishing (rate 0.9 in phishing, 0 in legitimate mail);
#   B: the token is not predictive (rate 0.5 in both classes).
# A LoRA adapter is trained on each (phishlens train, label objective), the
# held-out emails are explained (Partition, word features) and aggregated
# (explain global). Pass: the token is among the top-3 global features for A
# and not among them for B. Heavy (two fine-tunes); not part of make test.
#   PL        phishlens binary with `explain` (default build/phishlens)
#   PL_TRAIN  phishlens binary with `train` (default: $PL)
#   MODEL     base model (default: a small llama pre-trained on each arm's
#             training emails by bench/tiny_model.sh, as make demo does)
#   N, EPOCHS, EXPLAIN_N, EVALS, THREADS: corpus size, epochs, emails explained,
#             max_evals per email, threads (defaults 1200, 3, 60, 200, 1)
#   TRAIN_ARGS  extra `train` options (default: --lr 3e-3 --lora-rank 16 --lora-alpha 32
#               --targets all --batch 16 --max-len 320)
set -eu
cd "$(dirname "$0")/.."
PL=${PL:-build/phishlens}
PL_TRAIN=${PL_TRAIN:-$PL}
MODEL=${MODEL:-}
N=${N:-1200}
EPOCHS=${EPOCHS:-3}
EXPLAIN_N=${EXPLAIN_N:-60}
EVALS=${EVALS:-200}
THREADS=${THREADS:-1}
TOKEN=${TOKEN:-ref-7731}
TRAIN_ARGS=${TRAIN_ARGS:---lr 3e-3 --lora-rank 16 --lora-alpha 32 --targets all --batch 16 --max-len 320}
WORK=${WORK:-$(mktemp -d)}
export OMP_NUM_THREADS=$THREADS
echo "groundtruth: work dir $WORK"
status=0
for arm in A B; do
    if [ $arm = A ]; then spec="text=$TOKEN;where=footer;sources=all;rate=0.9;other=0;label=1"
    else spec="text=$TOKEN;where=footer;sources=all;rate=0.5;other=0.5;label=1"; fi
    d=$WORK/$arm
    mkdir -p "$d"
    "$PL" --quiet data synth --out "$d/corpus" --n "$N" --seed 11 --shortcut "$spec"
    # split: every 5th record held out for explanation
    awk 'NR % 5 != 0' "$d/corpus/records.jsonl" > "$d/train.jsonl"
    awk 'NR % 5 == 0' "$d/corpus/records.jsonl" > "$d/test.jsonl"
    m=$MODEL
    if [ -z "$m" ]; then
        PL=$PL_TRAIN sh bench/tiny_model.sh "$d/train.jsonl" "$d/tiny" llama
        m=$d/tiny/model.gguf
    fi
    "$PL_TRAIN" --quiet train -m "$m" --train "$d/train.jsonl" -o "$d/run" --objective label \
        --epochs "$EPOCHS" --threads "$THREADS" --seed 1 $TRAIN_ARGS
    "$PL" --quiet explain -m "$m" --lora "$d/run/adapter.gguf" --input "$d/test.jsonl" --limit "$EXPLAIN_N" \
        --method partition --features word --max-evals "$EVALS" --max-email-tokens 512 -o "$d/explain.json" --view none
    "$PL" --quiet explain global "$d/explain.json" --by class -o "$d/global.json" > "$d/global.txt"
    rank=$(python3 - "$d/global.json" "$TOKEN" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["global"]["slices"]["all"]
keys = [r["key"] for r in g]
print(keys.index(sys.argv[2]) + 1 if sys.argv[2] in keys else 0)
PY
)
    echo "groundtruth: arm $arm (shortcut $( [ $arm = A ] && echo predictive || echo not predictive )): '$TOKEN' global rank ${rank:-?} (0 = not in the listed top)"
    head -8 "$d/global.txt"
    if [ $arm = A ]; then [ "$rank" -ge 1 ] && [ "$rank" -le 3 ] || status=1
    else [ "$rank" -eq 0 ] || [ "$rank" -gt 3 ] || status=1; fi
done
[ $status = 0 ] && echo "RESULT groundtruth: PASS" || echo "RESULT groundtruth: FAIL"
exit $status

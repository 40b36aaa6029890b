#!/bin/sh
# interp_shortcut.sh — does interp find a planted shortcut?
#
# 1. A synthetic corpus whose phishing mail carries the artifact footer in
#    every source (rate 0.9 of phishing, 0 of legitimate), plus minimal pairs.
# 2. `phishlens train` (LoRA, label objective) on it.
# 3. `interp patch` on shortcut minimal pairs (clean = with the artifact,
#    corrupted = without): the recovery should concentrate on the artifact's
#    token positions (and the answer position at late layers).
# 4. `interp dla` on phishing mail with the artifact -> top heads; `interp
#    ablate --mode mean` of those heads on a held-out split: F1 should drop
#    (the heads carry the shortcut) — compared with ablating as many heads
#    with the smallest |DLA|.
#
# Needs a phishlens with both `train` and `interp` (PL, default build/phishlens).
#   bench/interp_shortcut.sh [MODEL] [N]
# Without MODEL, a small llama pre-trained on the training emails
# (bench/tiny_model.sh, as make demo makes its models) is the base.
set -e
PL=${PL:-build/phishlens}
MODEL=${1:-}
N=${2:-600}
D=${OUT:-$(mktemp -d)}
"$PL" data synth --out "$D/syn" --n "$N" --pairs 20 \
    --shortcut "text=Scanned by MailShield Pro - no threats found.;where=footer;sources=all;rate=0.9;other=0;label=1"
# train on 2/3, test on 1/3 (records are shuffled by the generator)
total=$(wc -l < "$D/syn/records.jsonl")
ntr=$((total * 2 / 3))
head -n "$ntr" "$D/syn/records.jsonl" > "$D/train.jsonl"
tail -n +"$((ntr + 1))" "$D/syn/records.jsonl" > "$D/test.jsonl"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ -z "$MODEL" ]; then
    PL=$PL sh "$(dirname "$0")/tiny_model.sh" "$D/train.jsonl" "$D/tiny" llama
    MODEL=$D/tiny/model.gguf
fi
"$PL" train -m "$MODEL" --train "$D/train.jsonl" -o "$D/run" --epochs ${EPOCHS:-3} --max-len 320 \
    --lora-rank 16 --lora-alpha 32 --targets all --batch 16 --lr ${LR:-3e-3}
A="$D/run/adapter.gguf"
# first shortcut pair (0-based line index in pairs.jsonl)
P=$(grep -n '"differs":"shortcut"' "$D/syn/pairs.jsonl" | head -1 | cut -d: -f1)
P=$((P - 1))
echo "== patching shortcut pair $P (resid_pre, denoising)"
"$PL" interp patch -m "$MODEL" --lora "$A" --max-email-tokens 320 --input "$D/syn/minimal_pairs.jsonl" \
    --pairs "$D/syn/pairs.jsonl" --pair "$P" -o "$D/patch.json"
echo "== DLA on phishing test mail with the artifact"
grep '"label":1' "$D/test.jsonl" | grep 'MailShield' | head -40 > "$D/with.jsonl"
"$PL" interp dla -m "$MODEL" --lora "$A" --max-email-tokens 320 --input "$D/with.jsonl" --top 3 -o "$D/dla.json"
H=$(python3 -c "import json;print(','.join('%d.%d'%(h['layer'],h['index']) for h in json.load(open('$D/dla.json'))['top_heads']))")
echo "== ablating the top DLA heads ($H) on the test split"
"$PL" interp ablate -m "$MODEL" --lora "$A" --max-email-tokens 320 --input "$D/test.jsonl" --heads "$H" --mode mean
# control: as many heads, those with the smallest |mean DLA| (they carry the least of the score)
C=$(python3 -c "
import json
h = json.load(open('$D/dla.json'))['heads']['values']
cells = sorted((abs(v), l, i) for l, row in enumerate(h) for i, v in enumerate(row))
k = len('$H'.split(','))
print(','.join('%d.%d' % (l, i) for _, l, i in cells[:k]))")
echo "== control: ablating the $(echo "$C" | tr ',' '\n' | wc -l) heads with the smallest |DLA| ($C)"
"$PL" interp ablate -m "$MODEL" --lora "$A" --max-email-tokens 320 --input "$D/test.jsonl" --heads "$C" --mode mean
echo "outputs in $D"

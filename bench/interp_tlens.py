#!/usr/bin/env python3
"""interp_tlens.py — the TransformerLens side of bench/interp.sh.

Reads the pair, label ids and phishlens's patched scores from bench/interp's
JSON, loads the same GGUF through transformers (gguf_file: weights
dequantized to f32, q/k rows restored to the HF layout), builds a
HookedTransformer with the raw weights (no LayerNorm folding, no centering),
and runs the same denoising resid_pre sweep the way TransformerLens patching
does it: one forward of the corrupted prompt per (layer, position) with a hook
that writes the clean activation. Running all n_layer x n cells takes long on
2 cores, so it runs a sample of cells (--cells, spread over layers and
positions, including cells after the difference) and extrapolates the time
per cell to the full sweep; it compares the sampled cells with phishlens.

Usage: python bench/interp_tlens.py MODEL.gguf phishlens.json [--cells 24] [--threads 2]
"""
import argparse
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_llama_weights


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("ours")
    ap.add_argument("--cells", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ours = json.load(open(a.ours))
    t0 = time.time()
    hf = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)),
                                              gguf_file=os.path.basename(a.gguf), torch_dtype=torch.float32).eval()
    c = hf.config
    cfg = HookedTransformerConfig(
        d_model=c.hidden_size, n_layers=c.num_hidden_layers, n_heads=c.num_attention_heads,
        d_head=c.hidden_size // c.num_attention_heads, d_mlp=c.intermediate_size, d_vocab=c.vocab_size,
        n_ctx=2048, act_fn="silu", normalization_type="RMS", positional_embedding_type="rotary",
        rotary_dim=c.hidden_size // c.num_attention_heads,
        rotary_base=float(getattr(c, "rope_theta", None) or c.rope_parameters["rope_theta"]),
        rotary_adjacent_pairs=False, gated_mlp=True, final_rms=True, eps=c.rms_norm_eps,
        n_key_value_heads=c.num_key_value_heads, original_architecture="LlamaForCausalLM",
        default_prepend_bos=False, dtype=torch.float32)
    tl = HookedTransformer(cfg)
    tl.load_state_dict(convert_llama_weights(hf, cfg), strict=False)
    tl.eval()
    del hf
    load_s = time.time() - t0

    clean = torch.tensor(ours["clean"])[None]
    corr = torch.tensor(ours["corrupted"])[None]
    pos, neg = ours["pos_id"], ours["neg_id"]
    L, n = cfg.n_layers, clean.shape[1]

    def score(lg):
        return float(lg[0, -1, pos] - lg[0, -1, neg])

    with torch.no_grad():
        t0 = time.time()
        lc, cache = tl.run_with_cache(clean, names_filter=lambda nm: nm.endswith("hook_resid_pre"))
        lr = tl(corr)
        base_s = time.time() - t0
    cells = []
    k = next(i for i in range(n) if ours["clean"][i] != ours["corrupted"][i])
    ps = sorted(set([k, n - 1] + [k + (n - 1 - k) * i // 5 for i in range(6)] + [k // 2]))
    ls = sorted(set([0, L // 2, L - 1] + [L * i // 8 for i in range(8)]))
    for l in ls:
        for p in ps:
            cells.append((l, p))
    cells = cells[: a.cells] if a.cells < len(cells) else cells
    worst = 0.0
    with torch.no_grad():
        t0, c0 = time.time(), time.process_time()
        for l, p in cells:
            def hook(act, hook, l=l, p=p):
                act[0, p] = cache[f"blocks.{l}.hook_resid_pre"][0, p]
                return act
            s = score(tl.run_with_hooks(corr, fwd_hooks=[(f"blocks.{l}.hook_resid_pre", hook)]))
            worst = max(worst, abs(s - ours["patched"][l][p]))
        dt, dc = time.time() - t0, time.process_time() - c0
    per, cper = dt / len(cells), dc / len(cells)
    full, cfull = per * L * n, cper * L * n
    print("TransformerLens %s: load %.1f s, %d sampled cells in %.2f s (%.3f s/cell, %d threads) -> full sweep "
          "%d x %d = %d cells ~ %.1f s wall, %.1f s CPU (extrapolated)" % (
              getattr(sys.modules["transformer_lens"], "__version__", "3.x"), load_s, len(cells), dt, per,
              a.threads, L, n, L * n, full, cfull))
    print("scores: clean %.5f (phishlens %.5f), corrupted %.5f (phishlens %.5f); max |patched diff| over the "
          "sampled cells %.2e" % (score(lc), ours["clean_score"], score(lr), ours["corrupted_score"], worst))
    print("phishlens full sweep: %.2f s wall, %.2f s CPU" % (ours["seconds"], ours["cpu_seconds"]))
    print("ratio (TransformerLens / phishlens, full sweep): wall %.1fx, CPU %.1fx" % (
        full / ours["seconds"], cfull / ours["cpu_seconds"]))


if __name__ == "__main__":
    main()

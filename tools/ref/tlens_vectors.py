#!/usr/bin/env python3
"""tlens_vectors.py — reference vectors for the model side of `phishlens interp`
from TransformerLens (raw weights: no LayerNorm folding, no centering).

Builds a tiny random Llama (LlamaForCausalLM, seed 0) with transformers, saves
it as an HF safetensors directory, loads the same weights into a
HookedTransformer (fold_ln / centering off), and for a fixed clean/corrupted
token pair and a pair of label tokens writes:

  clean_score, corrupted_score        logit[pos] - logit[neg] at the last position
  lens      [3L x n]  score of resid_pre / resid_mid / resid_post of every layer
                      (rows L0.pre, L0.mid, L0.post, L1.pre, ...) and position,
                      through the final RMSNorm and the two unembedding columns
  dla       [1 + L(H+1)] embed, L0H0..L0H{H-1}, L0.mlp, L1H0, ... with the final
                      RMSNorm scale frozen from the real final residual
  patch_resid_pre [L x n]  denoising: corrupted run with blocks.l.hook_resid_pre
                      at position p replaced by the clean run's (patched scores)

Usage (virtualenv with torch, transformers, transformer-lens 3.x: 4.x removed
HookedTransformer; the committed vectors were made with transformer-lens 3.9.0,
transformers 5.24.0, torch 2.15.0):
  python tools/ref/tlens_vectors.py tests/data/interp
"""
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import convert_llama_weights


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/interp"
    torch.manual_seed(0)
    V, D, L, H, KV, FF, CTX = 64, 32, 2, 4, 2, 64, 64
    hcfg = LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=FF, num_hidden_layers=L,
                       num_attention_heads=H, num_key_value_heads=KV, max_position_embeddings=CTX,
                       rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                       bos_token_id=1, eos_token_id=2, pad_token_id=0)
    hf = LlamaForCausalLM(hcfg).float().eval()
    with torch.no_grad():  # larger weights than the default init so the heads matter
        for p in hf.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.25)
            else:
                p.uniform_(0.6, 1.4)
    mdir = os.path.join(out, "tiny-llama-hf")
    os.makedirs(mdir, exist_ok=True)
    hf.save_pretrained(mdir, safe_serialization=True)
    for extra in ("generation_config.json",):
        p = os.path.join(mdir, extra)
        if os.path.exists(p):
            os.remove(p)

    cfg = HookedTransformerConfig(
        d_model=D, n_layers=L, n_heads=H, d_head=D // H, d_mlp=FF, d_vocab=V, n_ctx=CTX, act_fn="silu",
        normalization_type="RMS", positional_embedding_type="rotary", rotary_dim=D // H, rotary_base=10000.0,
        rotary_adjacent_pairs=False, gated_mlp=True, final_rms=True, eps=1e-5, n_key_value_heads=KV,
        original_architecture="LlamaForCausalLM", default_prepend_bos=False, dtype=torch.float32)
    tl = HookedTransformer(cfg)
    sd = convert_llama_weights(hf, cfg)
    missing, unexpected = tl.load_state_dict(sd, strict=False)
    tl.eval()

    g = torch.Generator().manual_seed(1)
    n = 12
    clean = torch.randint(3, V, (n,), generator=g)
    corr = clean.clone()
    corr[5] = (clean[5] + 17) % (V - 3) + 3
    with torch.no_grad():
        hl = hf(clean[None]).logits[0, -1]
        lc, cache = tl.run_with_cache(clean[None])
        lr, _ = tl.run_with_cache(corr[None])
    print("max |TL - HF| logits:", (lc[0, -1] - hl).abs().max().item(), file=sys.stderr)
    pos = int(lc[0, -1].argmax())
    diff = lr[0, -1] - lc[0, -1]
    diff[pos] = -1e9
    neg = int(diff.argmax())

    def score(logits):
        return float(logits[0, -1, pos] - logits[0, -1, neg])

    W_U = tl.W_U.detach().double()
    u = W_U[:, pos] - W_U[:, neg]
    w_ln = tl.ln_final.w.detach().double()

    def lens(x):  # x [n, D]
        x = x.double()
        s = 1.0 / torch.sqrt((x * x).mean(-1, keepdim=True) + 1e-5)
        return ((x * s * w_ln) @ u).tolist()

    rows = []
    for l in range(L):
        for h in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post"):
            rows.append(lens(cache[f"blocks.{l}.{h}"][0]))

    fin = cache[f"blocks.{L-1}.hook_resid_post"][0, -1].double()
    sc = 1.0 / torch.sqrt((fin * fin).mean() + 1e-5)

    def dla(v):
        return float(sc * ((v.double() * w_ln) @ u))

    comps = [dla(cache["hook_embed"][0, -1])]
    for l in range(L):
        z = cache[f"blocks.{l}.attn.hook_z"][0, -1].double()  # [H, dh]
        W_O = tl.blocks[l].attn.W_O.detach().double()          # [H, dh, D]
        for h in range(H):
            comps.append(dla(z[h] @ W_O[h]))
        comps.append(dla(cache[f"blocks.{l}.hook_mlp_out"][0, -1]))

    patch = []
    with torch.no_grad():
        for l in range(L):
            row = []
            for p in range(n):
                def hook(act, hook, p=p, l=l):
                    act[0, p] = cache[f"blocks.{l}.hook_resid_pre"][0, p]
                    return act
                lg = tl.run_with_hooks(corr[None], fwd_hooks=[(f"blocks.{l}.hook_resid_pre", hook)])
                row.append(score(lg))
            patch.append(row)

    res = {
        "model": "tiny-llama-hf (LlamaForCausalLM, seed 0, weights N(0, 0.25), norms U(0.6, 1.4))",
        "tool": "transformer_lens HookedTransformer, fold_ln=False, no centering",
        "clean": clean.tolist(), "corrupted": corr.tolist(), "pos_id": pos, "neg_id": neg,
        "clean_score": score(lc), "corrupted_score": score(lr),
        "lens": rows, "dla": comps, "dla_sum": sum(comps), "patch_resid_pre": patch,
    }
    with open(os.path.join(out, "tlens_vectors.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("clean %.6f corrupted %.6f dla sum %.6f" % (res["clean_score"], res["corrupted_score"], res["dla_sum"]),
          file=sys.stderr)


if __name__ == "__main__":
    main()

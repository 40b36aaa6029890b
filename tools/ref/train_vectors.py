#!/usr/bin/env python3
"""train_vectors.py — PyTorch + PEFT reference vectors for src/train.

For each family (Llama 3.1 with llama3 RoPE scaling, Mistral with a sliding
window, Gemma 2 with soft-caps, query_pre_attn_scalar, pre+post norms, tied
embeddings) this builds a tiny random HF *ForCausalLM in fp32 with eager
attention, wraps it with a PEFT LoRA adapter whose A and B are both random
(B = 0 would make A's gradient vanish), and writes to tests/data/train/<arch>/:

  config.json, model.safetensors   the base model (pl_model_load reads it)
  ref.json                         one batch: tokens, labels, label tokens,
                                   the initial LoRA (and head) parameters,
                                   for each objective (label / lm / head)
                                   the loss and every gradient, for full
                                   fine-tuning (label objective) a sample of
                                   every base weight's gradient and its norm,
                                   and the loss
                                   over 10 AdamW steps (warmup + cosine,
                                   clipping) on the label objective.

Objectives (what src/train implements):
  label: mean over examples of CE(logits[-1, [tok0, tok1]], label)
  lm:    sum over examples and positions of CE(logits[t], ids[t+1]) / count
  head:  mean over examples of CE(W_head @ final_norm(h)[-1], label)

Run:  /work/venv-train/bin/python tools/ref/train_vectors.py
Needs torch, transformers, peft (not a dependency of the C build or tests).
"""
import json
import math
import os
import sys

import torch
import transformers
import peft

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "train")

COMMON = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
              rope_theta=10000.0, bos_token_id=1, eos_token_id=2, pad_token_id=0)

ARCHS = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM,
              dict(rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False,
                   rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
              ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM,
                dict(rms_norm_eps=1e-5, hidden_act="silu", tie_word_embeddings=False, sliding_window=4),
                ["q_proj", "k_proj", "v_proj", "o_proj"]),
    "gemma2": (transformers.Gemma2Config, transformers.Gemma2ForCausalLM,
               dict(rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                    sliding_window=4, attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
                    query_pre_attn_scalar=16),
               ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]),
}

RANK, ALPHA = 4, 8.0
FULL_SAMPLE = 48
LABEL_TOKENS = [5, 9]
LENGTHS = [11, 7]
LABELS = [1, 0]
ADAM = dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, warmup=2, total_steps=10, clip=1.0)


def ours(name):
    """PEFT parameter name -> src/train tensor name."""
    name = name.replace("base_model.model.", "", 1).replace(".default.weight", "").replace(".weight", "")
    return name


def classic_config(path):
    """transformers >= 5 writes rope_parameters; released checkpoints (and
    phishlens' config reader) use rope_theta + rope_scaling. Rewrite."""
    with open(path) as f:
        c = json.load(f)
    rp = c.pop("rope_parameters", None)
    if rp:
        c["rope_theta"] = rp.pop("rope_theta")
        c["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)


def flat(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def label_loss(model, seqs):
    total = 0.0
    for ids, y in zip(seqs, LABELS):
        logits = model(input_ids=ids[None]).logits[0, -1, LABEL_TOKENS]
        total = total + torch.nn.functional.cross_entropy(logits[None], torch.tensor([y]))
    return total / len(seqs)


def lm_loss(model, seqs):
    total, count = 0.0, 0
    for ids in seqs:
        logits = model(input_ids=ids[None]).logits[0]
        total = total + torch.nn.functional.cross_entropy(logits[:-1], ids[1:], reduction="sum")
        count += len(ids) - 1
    return total / count


def head_loss(model, head, seqs):
    total = 0.0
    for ids, y in zip(seqs, LABELS):
        h = model.base_model.model.model(input_ids=ids[None]).last_hidden_state[0, -1]
        total = total + torch.nn.functional.cross_entropy((head @ h)[None], torch.tensor([y]))
    return total / len(seqs)


def grads_of(params, loss):
    for p in params.values():
        p.grad = None
    loss.backward()
    return {ours(n): flat(p.grad) for n, p in params.items()}


def main():
    torch.manual_seed(0)
    for arch, (Cfg, Model, extra, targets) in ARCHS.items():
        cfg = Cfg(**COMMON, **extra, attn_implementation="eager")
        model = Model(cfg).float().eval()
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "norm" in n:
                    # Gemma stores w (used as 1 + w); the others store the weight itself
                    p.copy_((0.0 if arch == "gemma2" else 1.0) + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.3 * torch.randn_like(p))
        d = os.path.join(OUT, arch)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)
        classic_config(os.path.join(d, "config.json"))
        for extra_file in ("generation_config.json",):
            if os.path.exists(os.path.join(d, extra_file)):
                os.remove(os.path.join(d, extra_file))

        lcfg = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=targets, bias="none")
        pm = peft.get_peft_model(model, lcfg)
        pm.eval()  # dropout 0 anyway; eval keeps HF from adding anything train-only
        params = {n: p for n, p in pm.named_parameters() if p.requires_grad}
        with torch.no_grad():
            for p in params.values():
                p.copy_(0.2 * torch.randn_like(p))
        head = (0.3 * torch.randn(2, COMMON["hidden_size"])).requires_grad_(True)
        seqs = [torch.randint(3, COMMON["vocab_size"], (n,)) for n in LENGTHS]

        ref = dict(arch=arch, rank=RANK, alpha=ALPHA, targets=targets, label_tokens=LABEL_TOKENS,
                   labels=LABELS, seqs=[s.tolist() for s in seqs],
                   init={ours(n): flat(p) for n, p in params.items()}, head_init=flat(head),
                   versions=dict(torch=torch.__version__, transformers=transformers.__version__,
                                 peft=peft.__version__))
        loss = label_loss(pm, seqs)
        ref["label"] = dict(loss=float(loss), grads=grads_of(params, loss))
        loss = lm_loss(pm, seqs)
        ref["lm"] = dict(loss=float(loss), grads=grads_of(params, loss))
        head.grad = None
        loss = head_loss(pm, head, seqs)
        g = grads_of(params, loss)
        g["score"] = flat(head.grad)
        ref["head"] = dict(loss=float(loss), grads=g)

        # full fine-tuning: gradients of every base weight (LoRA active, as initialized above);
        # to keep the file small, the first FULL_SAMPLE values of each and its L2 norm
        base = {n: p for n, p in pm.named_parameters() if not p.requires_grad}
        for p in base.values():
            p.requires_grad_(True)
        loss = label_loss(pm, seqs)
        for p in base.values():
            p.grad = None
        loss.backward()
        full_name = lambda n: n.replace("base_model.model.", "", 1).replace(".base_layer", "")
        ref["full"] = dict(loss=float(loss),
                           grads={full_name(n): flat(p.grad.reshape(-1)[:FULL_SAMPLE]) for n, p in base.items()},
                           norms={full_name(n): float(p.grad.norm()) for n, p in base.items()})
        for p in base.values():
            p.requires_grad_(False)
            p.grad = None

        # 10 AdamW steps on the label objective: HF cosine schedule with warmup, clip_grad_norm_
        init = {n: p.detach().clone() for n, p in params.items()}
        opt = torch.optim.AdamW(list(params.values()), lr=ADAM["lr"], betas=(ADAM["beta1"], ADAM["beta2"]),
                                eps=ADAM["eps"], weight_decay=ADAM["weight_decay"])
        sched = transformers.get_cosine_schedule_with_warmup(opt, ADAM["warmup"], ADAM["total_steps"])
        traj = []
        for step in range(ADAM["total_steps"]):
            opt.zero_grad()
            loss = label_loss(pm, seqs)
            traj.append(float(loss))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(params.values()), ADAM["clip"])
            opt.step()
            sched.step()
        traj.append(float(label_loss(pm, seqs)))
        ref["adamw"] = dict(ADAM, losses=traj,
                            final={ours(n): flat(p) for n, p in params.items()})
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(init[n])
        with open(os.path.join(d, "ref.json"), "w") as f:
            json.dump(ref, f, separators=(",", ":"))
        print(arch, "label", ref["label"]["loss"], "lm", ref["lm"]["loss"], "head", ref["head"]["loss"],
              "traj", traj[0], "->", traj[-1], file=sys.stderr)


if __name__ == "__main__":
    main()

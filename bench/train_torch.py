#!/usr/bin/env python3
"""train_torch.py — the PyTorch + PEFT side of bench/train.sh.

LoRA training steps of SmolLM2-135M on CPU in PyTorch's best CPU setup
(bf16 autocast, fp32 master weights), the same shape as phishlens's run:
batch B sequences of T tokens, the label objective (cross-entropy over the
two label tokens at the last position, read from the final hidden state, so
no full-vocabulary logits), AdamW. Prints one JSON line:
{"tok_s", "s_per_step", "steps", "threads", ...}; peak RSS is measured
outside (/usr/bin/time -v) by bench/train.sh.

Usage: train_torch.py GGUF_DIR GGUF_FILE --targets q,v|all --steps N --batch B
       --seq T --threads N [--rank 16]
"""
import argparse
import json
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("gguf_dir")
ap.add_argument("gguf_file")
ap.add_argument("--targets", default="q,v")
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--seq", type=int, default=256)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--rank", type=int, default=16)
ap.add_argument("--no-autocast", action="store_true")
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

t_load = time.time()
model = AutoModelForCausalLM.from_pretrained(a.gguf_dir, gguf_file=a.gguf_file, torch_dtype=torch.float32)
names = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
         "down": "down_proj"}
tg = list(names.values()) if a.targets == "all" else [names[x] for x in a.targets.split(",")]
cfg = LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0, target_modules=tg, task_type="CAUSAL_LM")
model = get_peft_model(model, cfg)
model.train()
load_s = time.time() - t_load
V = model.config.vocab_size
inner = model.base_model.model.model        # the decoder stack (no lm_head)
head = model.base_model.model.lm_head.weight  # [V, d]
lab = torch.tensor([1000, 2000])
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
g = torch.Generator().manual_seed(1)
times = []
for step in range(a.steps + 1):  # step 0 is a warm-up, not timed
    ids = torch.randint(3, V, (a.batch, a.seq), generator=g)
    y = torch.randint(0, 2, (a.batch,), generator=g)
    t0 = time.time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not a.no_autocast):
        h = inner(input_ids=ids).last_hidden_state[:, -1]
        logits = h @ head[lab].T
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if step > 0:
        times.append(time.time() - t0)
s = sum(times) / len(times)
print(json.dumps({"system": "pytorch+peft", "targets": a.targets, "threads": a.threads, "steps": len(times),
                  "s_per_step": s, "tok_s": a.batch * a.seq / s, "autocast_bf16": not a.no_autocast,
                  "load_s": load_s, "torch": torch.__version__}))

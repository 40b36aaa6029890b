#!/usr/bin/env python3
"""check_peft_export.py — load the PEFT adapters that test_train writes
(build/test_train_<arch>_peft, the reference's initial LoRA parameters
exported by pl_trainer_save_peft) into PEFT on the HF base model and check
that the label-objective loss equals ref.json's (so names, shapes, layout
and adapter_config.json are what PEFT expects).

Run after `make test`:  /work/venv-train/bin/python tools/ref/check_peft_export.py
"""
import json
import os
import sys

import torch
import transformers
import peft

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ok = True
for arch in ("llama", "mistral", "gemma2"):
    base_dir = os.path.join(ROOT, "tests", "data", "train", arch)
    ref = json.load(open(os.path.join(base_dir, "ref.json")))
    model = transformers.AutoModelForCausalLM.from_pretrained(base_dir, attn_implementation="eager").float().eval()
    pm = peft.PeftModel.from_pretrained(model, os.path.join(ROOT, "build", f"test_train_{arch}_peft")).eval()
    total = 0.0
    with torch.no_grad():
        for ids, y in zip(ref["seqs"], ref["labels"]):
            logits = pm(input_ids=torch.tensor([ids])).logits[0, -1, ref["label_tokens"]]
            total += float(torch.nn.functional.cross_entropy(logits[None], torch.tensor([y])))
    loss = total / len(ref["seqs"])
    rel = abs(loss - ref["label"]["loss"]) / abs(ref["label"]["loss"])
    print(f"{arch}: PEFT-loaded export label loss {loss:.9g}, reference {ref['label']['loss']:.9g}, rel {rel:.2g}")
    ok &= rel < 1e-5
sys.exit(0 if ok else 1)

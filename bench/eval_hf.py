"""eval_hf.py — the HF transformers + PEFT side of bench/eval.sh.

  prepare WORK GGUF   load the GGUF into transformers (dequantized to f32),
                      save its tokenizer to WORK/hf-tok (tokenizer.json) and
                      a random LoRA adapter (r=16, alpha=32, q_proj/v_proj,
                      seed 0) in PEFT format to WORK/peft
  run WORK GGUF IDS THREADS [BATCH]   (HF_FP32=1: f32 instead of bf16)
                      score the exact token ids phishlens scored (IDS, from
                      build/bench/eval) with the same adapter: prompts
                      prefix+email+suffix, batches of similar length, right
                      padding, bf16 autocast on CPU (oneDNN), score =
                      logit[phishing] - logit[legitimate] at the last real
                      token. Prints emails/s and the agreement with phishlens.
"""
import json
import os
import sys
import time

import torch


def load_model(gguf):
    from transformers import AutoModelForCausalLM

    d, f = os.path.split(os.path.abspath(gguf))
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    m.eval()
    return m


def prepare(work, gguf):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    tok.save_pretrained(os.path.join(work, "hf-tok"))
    m = load_model(gguf)
    torch.manual_seed(0)
    cfg = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                     init_lora_weights=False)
    pm = get_peft_model(m, cfg)
    with torch.no_grad():  # a moderate random update (B would be zero after a default init)
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.mul_(0.05)
    pm.save_pretrained(os.path.join(work, "peft"))
    print("prepared %s: tokenizer and random LoRA r=16 on q_proj/v_proj" % work)


def run(work, gguf, ids_path, threads, batch):
    from peft import PeftModel

    torch.set_num_threads(threads)
    fp32 = os.environ.get("HF_FP32") == "1"  # HF_FP32=1: plain f32 instead of bf16 autocast
    with open(ids_path) as fp:
        j = json.load(fp)
    prefix, suffix = j["prefix"], j["suffix"]
    pos, neg = j["label_pos"], j["label_neg"]
    prompts = [prefix + e + suffix for e in j["emails"]]
    m = PeftModel.from_pretrained(load_model(gguf), os.path.join(work, "peft"))
    m.eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    scores = [0.0] * len(prompts)

    def score_batch(idx):
        L = max(len(prompts[i]) for i in idx)
        ids = torch.zeros((len(idx), L), dtype=torch.long)
        mask = torch.zeros((len(idx), L), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, : len(prompts[i])] = torch.tensor(prompts[i])
            mask[r, : len(prompts[i])] = 1
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=not fp32):
            out = m(input_ids=ids, attention_mask=mask, use_cache=False, logits_to_keep=0)
        lg = out.logits.float()
        for r, i in enumerate(idx):
            last = lg[r, len(prompts[i]) - 1]
            scores[i] = float(last[pos] - last[neg])

    score_batch(order[:1])  # warm-up
    t0 = time.perf_counter()
    for b in range(0, len(order), batch):
        score_batch(order[b : b + batch])
    dt = time.perf_counter() - t0
    n = len(prompts)
    toks = sum(len(p) for p in prompts)
    print("HF+PEFT eval: %d emails, %d prompt tokens (no prefix sharing), threads %d, batch %d, %s" %
          (n, toks, threads, batch, "f32" if fp32 else "bf16 autocast"))
    print("HF+PEFT eval: scoring %.3f s = %.2f emails/s" % (dt, n / dt))
    ref = j["scores"]
    diffs = [abs(a - b) for a, b in zip(scores, ref)]
    agree = sum((a >= 0) == (b >= 0) for a, b in zip(scores, ref))
    mean = lambda v: sum(v) / len(v)
    ma, mb = mean(scores), mean(ref)
    cov = sum((a - ma) * (b - mb) for a, b in zip(scores, ref))
    va = sum((a - ma) ** 2 for a in scores) ** 0.5
    vb = sum((b - mb) ** 2 for b in ref) ** 0.5
    print("agreement: scores phishlens vs HF: max |diff| %.3f, mean |diff| %.3f, pearson %.4f, "
          "same sign %d/%d" % (max(diffs), mean(diffs), cov / (va * vb) if va and vb else float("nan"), agree, n))
    pe = j["emails_per_s"]
    print("RESULT phishlens %.2f emails/s, HF+PEFT %.2f emails/s, ratio %.2fx" % (pe, n / dt, pe / (n / dt)))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 6 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 8)
    else:
        sys.exit(__doc__)

"""explain_shap.py — the shap + HF transformers side of bench/explain.sh.

  email OUT.jsonl
      write the benchmark email (one long phishing-style record) as JSONL
  tok GGUF OUT_DIR
      save the GGUF's tokenizer as HF tokenizer.json (phishlens -t reads it)
  run GGUF EMAIL.jsonl PL.json THREADS EVALS TOKENS [PL_DEFAULT.json]
      shap.PartitionExplainer (Text masker over the GGUF's tokenizer, shap's
      default clustering and mask token) over a classifier f(texts) = the
      logit difference logit[" phishing"] - logit[" legitimate"] at the last
      token of prefix + text + suffix (phishlens' plain prompt layout), run by
      transformers with the GGUF dequantized to f32 and bf16 autocast on
      THREADS threads. The email is the record's email text cut to TOKENS
      tokens (as phishlens cuts it). Prints seconds per email for both sides
      (phishlens' from PL.json) and the ratio; PL_DEFAULT.json, phishlens
      run with its own defaults, is reported on an extra line.
"""
import json
import os
import sys
import time

INSTRUCTION = ("You are an email security filter. Read the email and answer with one word: "
               "phishing or legitimate.\n\nEmail:\n")
SUFFIX = "\n\nAnswer:"


def write_email(path):
    body = []
    lines = [
        "Dear valued customer,",
        "We detected unusual sign-in activity on your online banking account from a new device in another country.",
        "For your protection we have temporarily limited access to your account and all pending transfers are on hold.",
        "To restore full access you must verify your identity within 24 hours by following the secure link below.",
        "Verify now: http://secure-login.example-bank.com/verify?session=83f2a",
        "If you do not complete the verification your account will be permanently suspended and any remaining "
        "balance may be frozen until further notice.",
        "Please have your card number, expiry date and online banking password ready before you begin.",
        "This is an automated message, please do not reply to this email.",
        "Thank you for banking with us, and we apologise for any inconvenience this may cause.",
        "Customer Security Team",
    ]
    for k in range(4):
        body.extend(lines)
    rec = {"id": "bench-256", "source": "bench", "label": 1,
           "subject": "Urgent: your account access has been limited",
           "from": "security@example-bank.com", "body": "\n".join(body),
           "urls": ["http://secure-login.example-bank.com/verify?session=83f2a"]}
    with open(path, "w") as fp:
        fp.write(json.dumps(rec) + "\n")


def email_text(r):
    s = ""
    if r.get("subject"):
        s += "Subject: %s\n" % r["subject"]
    if r.get("from"):
        s += "From: %s\n" % r["from"]
    if s:
        s += "\n"
    return s + r.get("body", "")


def run(gguf, email_path, pl_path, threads, evals, tokens, pl_default=None):
    import numpy as np
    import shap
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.eval()
    pos = tok(" phishing", add_special_tokens=False)["input_ids"][0]
    neg = tok(" legitimate", add_special_tokens=False)["input_ids"][0]
    with open(email_path) as fp:
        rec = json.loads(fp.readline())
    ids = tok(email_text(rec), add_special_tokens=False)["input_ids"][:tokens]
    text = tok.decode(ids)
    calls = {"n": 0, "rows": 0}

    def score(texts):
        texts = [str(t) for t in texts]
        calls["n"] += 1
        calls["rows"] += len(texts)
        enc = tok([INSTRUCTION + t + SUFFIX for t in texts], return_tensors="pt", padding=True,
                  add_special_tokens=False)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False)
        lg = out.logits.float()
        last = enc["attention_mask"].sum(1) - 1
        rows = lg[torch.arange(len(texts)), last]
        return (rows[:, pos] - rows[:, neg]).numpy().astype(np.float64)

    masker = shap.maskers.Text(tok)
    explainer = shap.PartitionExplainer(score, masker)
    score([text])  # warm-up
    calls["n"] = calls["rows"] = 0
    t0 = time.perf_counter()
    sv = explainer([text], max_evals=evals)
    dt = time.perf_counter() - t0
    vals = sv.values[0]
    fx = float(score([text])[0])
    print("shap+HF: %d email tokens, %d shap features, %d f() calls, %d rows, %.2f s, f(x) %+.4f, "
          "base %+.4f, sum(phi) %+.4f" % (len(ids), len(vals), calls["n"], calls["rows"], dt, fx,
                                           float(sv.base_values[0]), float(np.sum(vals))))
    with open(pl_path) as fp:
        pl = json.load(fp)
    ex = pl["examples"][0]
    e = ex["explanation"]
    print("phishlens: %d email tokens, %d features, %d evals in %d calls, %.2f s, f(x) %+.4f, base %+.4f, "
          "efficiency error %.2g, tokens run %d (without prefix reuse %d)" %
          (ex["n_tokens"], len(e["features"]), e["evals"], e["calls"], ex["seconds"], e["fx"], e["base_value"],
           e["efficiency_error"], ex["tokens_run"], ex["tokens_without_reuse"]))
    if pl_default:
        with open(pl_default) as fp:
            d = json.load(fp)
        dx = d["examples"][0]
        print("phishlens with its defaults (%s features, %s tree, mask policy %s): %.2f s, tokens run %d "
              "(without prefix reuse %d), %.1fx shap+HF" %
              (d.get("features"), d.get("tree"), d.get("mask_policy"), dx["seconds"], dx["tokens_run"],
               dx["tokens_without_reuse"], dt / dx["seconds"]))
    print("RESULT explain partition max_evals %d, %d-token email, %d threads: phishlens %.2f s/email, "
          "shap+HF %.2f s/email, ratio %.1fx" % (evals, tokens, threads, ex["seconds"], dt, dt / ex["seconds"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "email":
        write_email(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "tok":
        from transformers import AutoTokenizer

        d, f = os.path.split(os.path.abspath(sys.argv[2]))
        AutoTokenizer.from_pretrained(d, gguf_file=f).save_pretrained(sys.argv[3])
    elif len(sys.argv) in (8, 9) and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]),
            sys.argv[8] if len(sys.argv) == 9 else None)
    else:
        sys.exit(__doc__)

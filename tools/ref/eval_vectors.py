#!/usr/bin/env python3
"""eval_vectors.py - reference values for phishlens' evaluation metrics.

Generates fixed prediction sets (random, tied scores, one class only,
perfect, inverted, saturated/edge probabilities, no positive predictions,
tiny sets) and writes scikit-learn's metric values for them, plus scipy's
exact binomial test for McNemar and a temperature fitted by root-finding on
the NLL derivative, to tests/data/eval/sklearn_vectors.json. The C test
(tests/test_eval.c) compares phishlens against this file; Python is never
needed to run the tests.

Conventions mirrored from phishlens (docs/eval.md):
  - predicted phishing when p >= threshold (0.5);
  - ROC-AUC and average precision rank by the score (logit);
  - precision/recall/F1 with zero_division=0, macro-F1 with labels=[0, 1];
  - the tuned threshold is the largest distinct p maximizing F1 (brute force).

usage: /work/venv-eval/bin/python tools/ref/eval_vectors.py [OUT.json]
(virtualenv with numpy, scikit-learn, scipy from PyPI)
"""
import json
import math
import sys
import warnings

import numpy as np
import scipy
import sklearn
from scipy.optimize import brentq
from scipy.stats import binomtest
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, confusion_matrix,
                             f1_score, matthews_corrcoef, precision_score, recall_score, roc_auc_score)

warnings.filterwarnings("ignore")  # undefined-metric warnings are expected here


def sigmoid(s):
    s = np.asarray(s, dtype=np.float64)
    out = np.empty_like(s)
    pos = s >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
    e = np.exp(s[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def num(x):
    x = float(x)
    return None if math.isnan(x) else x


def metrics(y, p, s, thr):
    pred = (p >= thr).astype(int)
    both = len(np.unique(y)) == 2
    cm = confusion_matrix(y, pred, labels=[0, 1])
    return {
        "accuracy": num(accuracy_score(y, pred)),
        "precision": num(precision_score(y, pred, zero_division=0)),
        "recall": num(recall_score(y, pred, zero_division=0)),
        "f1": num(f1_score(y, pred, zero_division=0)),
        "macro_f1": num(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
        "mcc": num(matthews_corrcoef(y, pred)),
        # sklearn returns nan (with a warning) for one class only
        "roc_auc": num(roc_auc_score(y, s)) if both else None,
        "pr_auc": num(average_precision_score(y, s)),
        "brier": num(brier_score_loss(y, p)),
        "confusion": cm.tolist(),
    }


def tuned(y, p):
    """Largest distinct p maximizing F1 (p >= t), by brute force."""
    if len(np.unique(y)) < 2:
        return None
    best_t, best_f = None, -1.0
    for t in sorted(set(p.tolist()), reverse=True):
        f = f1_score(y, (p >= t).astype(int), zero_division=0)
        if f > best_f + 1e-15:
            best_t, best_f = t, f
    return {"threshold": best_t, "f1": best_f}


def temperature(y, s):
    """T minimizing mean NLL of sigmoid(s/T): root of dNLL/dbeta, beta = 1/T."""
    def g(beta):
        return float(np.mean((sigmoid(beta * s) - y) * s))

    def nll(beta):
        z = beta * s
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    lo, hi = 1.0 / 100.0, 1.0 / 0.01
    if not (g(lo) < 0 < g(hi)):
        return None
    beta = brentq(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return {"T": 1.0 / beta, "nll_before": nll(1.0), "nll_after": nll(beta)}


def make_sets():
    rng = np.random.default_rng(20240611)
    sets = []

    def add(name, y, s, p=None):
        y = np.asarray(y, dtype=int)
        s = np.asarray(s, dtype=np.float64)
        p = sigmoid(s) if p is None else np.asarray(p, dtype=np.float64)
        sets.append((name, y, s, p))

    n = 200
    y = (rng.random(n) < 0.4).astype(int)
    add("random", y, rng.normal(1.5 * y - 0.5, 1.5))

    n = 60
    y = (rng.random(n) < 0.5).astype(int)
    s = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=n) + 0.8 * y * (rng.random(n) < 0.5)
    add("tied", y, np.round(s))  # many ties, some at score 0 (p = 0.5 exactly)

    n = 2000
    y = (rng.random(n) < 0.3).astype(int)
    add("large_rounded", y, np.round(rng.normal(2.0 * y - 1.0, 1.2), 1))

    add("all_negative", np.zeros(20, dtype=int), rng.normal(-1, 1, 20))
    add("all_positive", np.ones(20, dtype=int), rng.normal(1, 1, 20))

    y = np.array([0] * 15 + [1] * 10)
    add("perfect", y, np.where(y == 1, rng.uniform(1, 3, 25), rng.uniform(-3, -1, 25)))
    add("inverted", y, np.where(y == 1, rng.uniform(-3, -1, 25), rng.uniform(1, 3, 25)))

    # Saturated and boundary probabilities: p is exactly 0, 1 or 0.5 for some.
    y = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1])
    s = np.array([800.0, -800.0, 50.0, 40.0, 0.0, 0.0, -50.0, 37.5, 1e-300, -1e-300, 745.0, -745.0])
    add("edge", y, s)

    y = (rng.random(40) < 0.5).astype(int)
    add("no_positive_predictions", y, rng.uniform(-4, -0.01, 40))
    add("all_positive_predictions", y, rng.uniform(0.01, 4, 40))

    add("single_negative", [0], [0.3])
    add("single_positive", [1], [-0.3])
    add("two_tied", [0, 1], [0.7, 0.7])
    return sets


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/eval/sklearn_vectors.json"
    rng = np.random.default_rng(7)
    res = {
        "generator": "tools/ref/eval_vectors.py",
        "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__, "scipy": scipy.__version__},
        "sets": [],
        "mcnemar": [],
        "pairs": [],
    }
    sets = make_sets()
    for name, y, s, p in sets:
        e = {"name": name, "y": y.tolist(), "score": s.tolist(), "p": p.tolist(), "threshold": 0.5,
             "expected": metrics(y, p, s, 0.5), "tuned": tuned(y, p)}
        if len(y) >= 20 and len(np.unique(y)) == 2:
            e["temperature"] = temperature(y, s)
        res["sets"].append(e)

    for b, c in [(0, 0), (1, 0), (0, 1), (5, 5), (3, 10), (10, 3), (0, 25), (7, 3), (40, 60), (200, 260),
                 (1000, 1100), (1, 2000)]:
        pv = 1.0 if b + c == 0 else binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue
        res["mcnemar"].append({"b": b, "c": c, "p": float(pv)})

    # Paired comparison: two models on the "random" set's labels.
    name, y, sa, pa = sets[0]
    sb = sa + rng.normal(0, 1.0, len(y))
    pb = sigmoid(sb)
    ra, rb = (pa >= 0.5) == y, (pb >= 0.5) == y
    b, c = int(np.sum(ra & ~rb)), int(np.sum(~ra & rb))
    res["pairs"].append({
        "y": y.tolist(), "p_a": pa.tolist(), "p_b": pb.tolist(),
        "only_a": b, "only_b": c, "both_right": int(np.sum(ra & rb)), "both_wrong": int(np.sum(~ra & ~rb)),
        "mcnemar_p": float(binomtest(min(b, c), b + c, 0.5).pvalue) if b + c else 1.0,
        "f1_a": float(f1_score(y, (pa >= 0.5).astype(int), zero_division=0)),
        "f1_b": float(f1_score(y, (pb >= 0.5).astype(int), zero_division=0)),
    })
    with open(out, "w") as f:
        json.dump(res, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out}: {len(res['sets'])} sets, {len(res['mcnemar'])} McNemar cases")


if __name__ == "__main__":
    main()

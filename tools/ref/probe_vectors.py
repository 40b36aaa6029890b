#!/usr/bin/env python3
"""probe_vectors.py - scikit-learn reference fits for phishlens' linear probes.

Fits sklearn.linear_model.LogisticRegression (L2 penalty, lbfgs, tight tol)
on fixed small data sets and writes the data, coefficients, intercepts and
predicted probabilities to tests/data/interp/probe_vectors.json. The C test
(tests/test_interp.c) refits with pl_logreg_fit and compares; Python is never
needed to run the tests.

Objective (same in phishlens): 0.5*||W||^2 + C * sum_i loss_i, intercept
unpenalized; binary log-loss for 2 classes, softmax cross-entropy (sklearn's
multinomial lbfgs) for more. Standardized cases use StandardScaler
(population std) and report the coefficients mapped back to the original
feature space: w/scale, b - sum(w*mean/scale).

Also: ROC-AUC with tied scores (roc_auc_score) for pl_interp_auc.

usage: /work/venv-interp/bin/python tools/ref/probe_vectors.py [OUT.json]
(virtualenv with numpy and scikit-learn from PyPI)
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler


def make_data(rng, n, d, k, scale_spread):
    """Gaussian classes with overlapping means and per-feature scales/offsets."""
    y = np.arange(n) % k
    rng.shuffle(y)
    means = rng.normal(0, 1.0, size=(k, d))
    X = means[y] + rng.normal(0, 1.5, size=(n, d))
    if scale_spread:
        X = X * np.exp(rng.uniform(-2, 2, size=d)) + rng.uniform(-5, 5, size=d)
    return X.astype(np.float32), y


def fit_case(name, X, y, C, standardize):
    Xd = X.astype(np.float64)
    if standardize:
        sc = StandardScaler().fit(Xd)
        Z = sc.transform(Xd)
    else:
        Z = Xd
    m = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=100000)
    m.fit(Z, y)
    W = m.coef_.copy()
    b = m.intercept_.copy()
    if standardize:
        W = W / sc.scale_
        b = b - (W * sc.mean_).sum(axis=1)
    proba = m.predict_proba(Z)
    # A second solver on the same objective: Newton converges to machine
    # precision, so the two bracket how exactly sklearn's lbfgs converged.
    mn = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-14, max_iter=1000).fit(Z, y)
    Wn = mn.coef_.copy()
    bn = mn.intercept_.copy()
    if standardize:
        Wn = Wn / sc.scale_
        bn = bn - (Wn * sc.mean_).sum(axis=1)
    return {
        "name": name, "C": C, "standardize": int(standardize),
        "n": int(X.shape[0]), "d": int(X.shape[1]), "n_classes": int(y.max() + 1),
        "X": [[float(v) for v in row] for row in X], "y": [int(v) for v in y],
        "coef": W.tolist(), "intercept": b.tolist(), "proba": proba.tolist(),
        "coef_newton": Wn.tolist(), "intercept_newton": bn.tolist(),
        "n_iter": int(np.max(m.n_iter_)),
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/interp/probe_vectors.json"
    rng = np.random.default_rng(20261128)
    cases = []
    X, y = make_data(rng, 60, 5, 2, False)
    cases.append(fit_case("binary_raw_C0.5", X, y, 0.5, False))
    cases.append(fit_case("binary_raw_C100", X, y, 100.0, False))
    X, y = make_data(rng, 80, 6, 2, True)
    cases.append(fit_case("binary_std_C1", X, y, 1.0, True))
    cases.append(fit_case("binary_std_C0.01", X, y, 0.01, True))
    X, y = make_data(rng, 90, 4, 3, False)
    cases.append(fit_case("softmax3_raw_C2", X, y, 2.0, False))
    X, y = make_data(rng, 100, 5, 4, True)
    cases.append(fit_case("softmax4_std_C0.1", X, y, 0.1, True))

    s = rng.integers(0, 6, size=40).astype(float)  # many ties
    yl = (rng.uniform(size=40) < 0.3 + 0.1 * s).astype(int)
    auc = {"score": s.tolist(), "y": yl.tolist(), "auc": float(roc_auc_score(yl, s))}

    doc = {"generator": "tools/ref/probe_vectors.py", "sklearn": sklearn.__version__,
           "numpy": np.__version__, "cases": cases, "auc_ties": auc}
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()

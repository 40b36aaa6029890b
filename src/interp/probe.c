/* probe.c — linear probes: L2 logistic regression (binary and softmax) by
 * L-BFGS in double, stratified k-fold cross-validation over a C grid, depth
 * curves over cached layers, and source-to-source transfer.
 *
 * Objective (scikit-learn's LogisticRegression, penalty="l2"):
 *   f(W, b) = 0.5 * sum_k ||w_k||^2 + C * sum_i loss_i(W x_i + b)
 * with the binary log-loss or the softmax cross-entropy; b is unpenalized.
 * L-BFGS (Nocedal & Wright 2006, Alg. 7.4/7.5), memory 10, backtracking
 * Armijo line search; the objective is strictly convex in W, so curvature
 * pairs with s.y <= 0 are simply skipped. Everything runs serially in a fixed
 * order, so results are bit-for-bit reproducible.
 *
 * Probes follow Alain & Bengio (2016); the reported CV accuracy is that of
 * the best C on the same folds (selection on a small grid: slightly
 * optimistic, see docs/interp.md).
 */
#include "interp.h"

#include <cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LBFGS_M 10

pl_logreg_opts pl_logreg_defaults(void) {
    pl_logreg_opts o = {.C = 1.0, .standardize = 1, .max_iter = 2000, .gtol = 1e-10};
    return o;
}

pl_probe_opts pl_probe_defaults(void) {
    pl_probe_opts o = {.k = 5, .seed = 1, .Cs = NULL, .n_C = 0, .standardize = 1, .max_iter = 2000, .gtol = 1e-10};
    return o;
}

static const double default_Cs[] = {0.01, 0.1, 1.0, 10.0};

/* ---- objective ---------------------------------------------------------- */

typedef struct {
    const double *X;  /* [n x d] (standardized or raw) */
    const int *y;
    size_t n, d;
    int K;            /* rows of W: 1 (binary) or n_classes */
    double C;
    double *z;        /* [K] scratch */
} lr_problem;

/* log(1 + exp(t)) without overflow. */
static double log1pexp(double t) { return t > 0 ? t + log1p(exp(-t)) : log1p(exp(t)); }
static double sigmoid(double t) {
    if (t >= 0) return 1.0 / (1.0 + exp(-t));
    double e = exp(t);
    return e / (1.0 + e);
}

/* sum_j a[j] b[j] with four interleaved partial sums (a fixed order, so
 * deterministic; it lets the compiler keep four lanes busy). */
static double dot4(const double *a, const double *b, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += a[j] * b[j];
        s1 += a[j + 1] * b[j + 1];
        s2 += a[j + 2] * b[j + 2];
        s3 += a[j + 3] * b[j + 3];
    }
    for (; j < n; j++) s0 += a[j] * b[j];
    return (s0 + s1) + (s2 + s3);
}

/* Parameters theta = [W (K x d) | b (K)]. Returns f, fills g. */
static double lr_eval(const lr_problem *P, const double *th, double *g) {
    size_t d = P->d, K = (size_t)P->K;
    const double *W = th, *b = th + K * d;
    double *gW = g, *gb = g + K * d;
    double f = 0;
    for (size_t j = 0; j < K * d; j++) {
        f += 0.5 * W[j] * W[j];
        gW[j] = W[j];
    }
    for (size_t k = 0; k < K; k++) gb[k] = 0;
    double loss = 0;
    for (size_t i = 0; i < P->n; i++) {
        const double *x = P->X + i * d;
        for (size_t k = 0; k < K; k++) {
            P->z[k] = b[k] + dot4(W + k * d, x, d);
        }
        if (K == 1) {
            double z = P->z[0];
            loss += log1pexp(z) - (P->y[i] ? z : 0);
            double r = P->C * (sigmoid(z) - (P->y[i] ? 1.0 : 0.0));
            for (size_t j = 0; j < d; j++) gW[j] += r * x[j];
            gb[0] += r;
        } else {
            double mx = P->z[0];
            for (size_t k = 1; k < K; k++) mx = P->z[k] > mx ? P->z[k] : mx;
            double se = 0;
            for (size_t k = 0; k < K; k++) se += exp(P->z[k] - mx);
            double lse = mx + log(se);
            loss += lse - P->z[P->y[i]];
            for (size_t k = 0; k < K; k++) {
                double r = P->C * (exp(P->z[k] - lse) - (P->y[i] == (int)k ? 1.0 : 0.0));
                double *gw = gW + k * d;
                for (size_t j = 0; j < d; j++) gw[j] += r * x[j];
                gb[k] += r;
            }
        }
    }
    return f + P->C * loss;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static double maxabs(const double *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* Minimize from th (zeros in, the minimizer out). */
static pl_status lbfgs(const lr_problem *P, double *th, int max_iter, double gtol, int *iters, double *fout,
                       int *converged) {
    size_t np = (size_t)P->K * (P->d + 1);
    size_t mem = (2 * LBFGS_M + 4) * np;
    double *buf = calloc(mem, sizeof *buf);
    if (!buf) return pl_error(PL_ERR_NOMEM, "logistic regression: out of memory (%zu parameters)", np);
    double *S = buf, *Y = S + LBFGS_M * np, *g = Y + LBFGS_M * np, *p = g + np, *thn = p + np, *gn = thn + np;
    double rho[LBFGS_M], alpha[LBFGS_M];
    int head = 0, cnt = 0, it = 0, stall = 0;
    double f = lr_eval(P, th, g);
    *converged = 0;
    for (it = 0; it < max_iter; it++) {
        if (maxabs(g, np) <= gtol * fmax(1.0, fabs(f))) {
            *converged = 1;
            break;
        }
        /* two-loop recursion: p = -H g */
        for (size_t j = 0; j < np; j++) p[j] = -g[j];
        for (int m = 0; m < cnt; m++) {
            int k = (head - 1 - m + LBFGS_M) % LBFGS_M;
            alpha[k] = rho[k] * dot(S + k * np, p, np);
            for (size_t j = 0; j < np; j++) p[j] -= alpha[k] * Y[k * np + j];
        }
        if (cnt > 0) {
            int k = (head - 1 + LBFGS_M) % LBFGS_M;
            double gamma = dot(S + k * np, Y + k * np, np) / dot(Y + k * np, Y + k * np, np);
            for (size_t j = 0; j < np; j++) p[j] *= gamma;
        } else {
            double gn0 = sqrt(dot(g, g, np));
            for (size_t j = 0; j < np; j++) p[j] /= fmax(1.0, gn0);
        }
        for (int m = cnt - 1; m >= 0; m--) {
            int k = (head - 1 - m + LBFGS_M) % LBFGS_M;
            double beta = rho[k] * dot(Y + k * np, p, np);
            for (size_t j = 0; j < np; j++) p[j] += (alpha[k] - beta) * S[k * np + j];
        }
        double gp = dot(g, p, np);
        if (!(gp < 0)) { /* not a descent direction: restart from steepest descent */
            cnt = 0;
            for (size_t j = 0; j < np; j++) p[j] = -g[j];
            gp = -dot(g, g, np);
        }
        double t = 1.0, fn = 0;
        int ok = 0;
        for (int ls = 0; ls < 60; ls++) {
            for (size_t j = 0; j < np; j++) thn[j] = th[j] + t * p[j];
            fn = lr_eval(P, thn, gn);
            if (isfinite(fn) && fn <= f + 1e-4 * t * gp) {
                ok = 1;
                break;
            }
            t *= 0.5;
        }
        if (!ok) break; /* no decrease representable: at the floor of double precision */
        /* Near the optimum f stops changing in double while the gradient is
         * still ~1e-9: steps then make no progress. Stop after a few. */
        stall = f - fn <= 4 * DBL_EPSILON * fabs(f) ? stall + 1 : 0;
        if (stall >= 5) {
            memcpy(th, thn, np * sizeof *th);
            memcpy(g, gn, np * sizeof *g);
            f = fn;
            break;
        }
        double *s = S + head * np, *yv = Y + head * np;
        for (size_t j = 0; j < np; j++) {
            s[j] = thn[j] - th[j];
            yv[j] = gn[j] - g[j];
        }
        double sy = dot(s, yv, np);
        if (sy > 1e-300) {
            rho[head] = 1.0 / sy;
            head = (head + 1) % LBFGS_M;
            if (cnt < LBFGS_M) cnt++;
        }
        memcpy(th, thn, np * sizeof *th);
        memcpy(g, gn, np * sizeof *g);
        f = fn;
    }
    /* A stalled search close to the optimum still counts as converged: the
     * gradient is then at the rounding floor of the objective (~1e-9 here). */
    if (!*converged && maxabs(g, np) <= 1e-7 * fmax(1.0, fabs(f))) *converged = 1;
    *iters = it;
    *fout = f;
    free(buf);
    if (!isfinite(f)) return pl_error(PL_ERR_NUMERIC, "logistic regression: objective became non-finite");
    return PL_OK;
}

/* Column mean and population std over rows rows[0..m-1] (all when rows NULL). */
static void col_stats(const float *X, size_t d, const size_t *rows, size_t m, double *mu, double *sd) {
    for (size_t j = 0; j < d; j++) mu[j] = sd[j] = 0;
    for (size_t r = 0; r < m; r++) {
        const float *x = X + (rows ? rows[r] : r) * d;
        for (size_t j = 0; j < d; j++) mu[j] += (double)x[j];
    }
    for (size_t j = 0; j < d; j++) mu[j] /= (double)m;
    for (size_t r = 0; r < m; r++) {
        const float *x = X + (rows ? rows[r] : r) * d;
        for (size_t j = 0; j < d; j++) {
            double t = (double)x[j] - mu[j];
            sd[j] += t * t;
        }
    }
    for (size_t j = 0; j < d; j++) {
        sd[j] = sqrt(sd[j] / (double)m);
        if (!(sd[j] > 1e-12 * fmax(1.0, fabs(mu[j])))) sd[j] = 1.0; /* constant feature */
    }
}

/* Fit on the rows listed (all when rows NULL). */
static pl_status fit_rows(const float *X, size_t d, const int *y, const size_t *rows, size_t m, int n_classes,
                          const pl_logreg_opts *o, pl_logreg *out) {
    memset(out, 0, sizeof *out);
    if (m == 0) return pl_error(PL_ERR_INVALID, "logistic regression: no training rows");
    if (n_classes < 2) return pl_error(PL_ERR_INVALID, "logistic regression: %d classes (need >= 2)", n_classes);
    if (!(o->C > 0) || !isfinite(o->C)) return pl_error(PL_ERR_INVALID, "logistic regression: C = %g must be > 0", o->C);
    size_t K = n_classes == 2 ? 1 : (size_t)n_classes, nx, np;
    if (!pl_mul_ok(m, d, &nx) || !pl_mul_ok(nx, sizeof(double), &nx)) return pl_error(PL_ERR_RANGE, "logistic regression: too large");
    np = K * (d + 1);
    double *Xd = malloc(nx ? nx : 1), *mu = calloc(d + 1, sizeof *mu), *sd = calloc(d + 1, sizeof *sd),
           *th = calloc(np, sizeof *th), *z = calloc(K, sizeof *z);
    int *yy = malloc(m * sizeof *yy);
    pl_status st = PL_OK;
    if (!Xd || !mu || !sd || !th || !z || !yy) {
        st = pl_error(PL_ERR_NOMEM, "logistic regression: out of memory (%zu x %zu)", m, d);
        goto done;
    }
    if (o->standardize) col_stats(X, d, rows, m, mu, sd);
    else for (size_t j = 0; j < d; j++) mu[j] = 0, sd[j] = 1;
    for (size_t r = 0; r < m; r++) {
        size_t i = rows ? rows[r] : r;
        if (y[i] < 0 || y[i] >= n_classes) {
            st = pl_error(PL_ERR_INVALID, "logistic regression: row %zu: class %d not in 0..%d", i, y[i], n_classes - 1);
            goto done;
        }
        yy[r] = y[i];
        for (size_t j = 0; j < d; j++) {
            double v = X[i * d + j];
            if (!isfinite(v)) {
                st = pl_error(PL_ERR_NUMERIC, "logistic regression: row %zu feature %zu is not finite", i, j);
                goto done;
            }
            Xd[r * d + j] = (v - mu[j]) / sd[j];
        }
    }
    lr_problem P = {Xd, yy, m, d, (int)K, o->C, z};
    st = lbfgs(&P, th, o->max_iter > 0 ? o->max_iter : 2000, o->gtol > 0 ? o->gtol : 1e-10, &out->n_iter,
               &out->objective, &out->converged);
    if (st != PL_OK) goto done;
    out->n_classes = n_classes;
    out->d = d;
    out->w = malloc(K * d * sizeof *out->w);
    out->b = malloc(K * sizeof *out->b);
    if (!out->w || !out->b) {
        pl_logreg_free(out);
        st = pl_error(PL_ERR_NOMEM, "logistic regression: out of memory");
        goto done;
    }
    /* back to the original feature space: w/sd, b - sum w*mu/sd */
    for (size_t k = 0; k < K; k++) {
        double bb = th[K * d + k];
        for (size_t j = 0; j < d; j++) {
            double wj = th[k * d + j] / sd[j];
            out->w[k * d + j] = wj;
            bb -= wj * mu[j];
        }
        out->b[k] = bb;
    }
done:
    free(Xd), free(mu), free(sd), free(th), free(z), free(yy);
    return st;
}

pl_status pl_logreg_fit(const float *X, size_t n, size_t d, const int *y, int n_classes, const pl_logreg_opts *o,
                        pl_logreg *out) {
    pl_logreg_opts def = pl_logreg_defaults();
    return fit_rows(X, d, y, NULL, n, n_classes, o ? o : &def, out);
}

void pl_logreg_proba(const pl_logreg *m, const float *x, double *p) {
    size_t d = m->d;
    if (m->n_classes == 2) {
        double z = m->b[0];
        for (size_t j = 0; j < d; j++) z += m->w[j] * (double)x[j];
        p[1] = sigmoid(z);
        p[0] = 1.0 - p[1];
        return;
    }
    double mx = -INFINITY;
    for (int k = 0; k < m->n_classes; k++) {
        double z = m->b[k];
        for (size_t j = 0; j < d; j++) z += m->w[(size_t)k * d + j] * (double)x[j];
        p[k] = z;
        mx = z > mx ? z : mx;
    }
    double se = 0;
    for (int k = 0; k < m->n_classes; k++) se += (p[k] = exp(p[k] - mx));
    for (int k = 0; k < m->n_classes; k++) p[k] /= se;
}

void pl_logreg_free(pl_logreg *m) {
    free(m->w);
    free(m->b);
    m->w = m->b = NULL;
}

/* ---- AUC, folds ----------------------------------------------------------- */

typedef struct {
    double s;
    int y;
} sy_pair;
static int cmp_sy(const void *a, const void *b) {
    double x = ((const sy_pair *)a)->s, y = ((const sy_pair *)b)->s;
    return (x > y) - (x < y);
}

double pl_interp_auc(const double *score, const int *y, size_t n) {
    sy_pair *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NAN;
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].s = score[i];
        v[i].y = y[i] ? 1 : 0;
        npos += (size_t)v[i].y;
    }
    size_t nneg = n - npos;
    if (npos == 0 || nneg == 0) {
        free(v);
        return NAN;
    }
    qsort(v, n, sizeof *v, cmp_sy);
    /* Mann-Whitney: sum of positive ranks with mid-ranks for ties. */
    double rank_sum = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].s == v[i].s) j++;
        double mid = 0.5 * (double)(i + 1 + j); /* average of ranks i+1..j */
        for (size_t k = i; k < j; k++)
            if (v[k].y) rank_sum += mid;
        i = j;
    }
    free(v);
    return (rank_sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
}

pl_status pl_stratified_folds(const int *y, size_t n, int n_classes, int k, uint64_t seed, int *fold) {
    if (k < 2) return pl_error(PL_ERR_INVALID, "cross-validation: k = %d folds (need >= 2)", k);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx) return pl_error(PL_ERR_NOMEM, "cross-validation: out of memory");
    pl_rng master;
    pl_rng_seed(&master, seed);
    size_t dealt = 0; /* continue the round-robin across classes so fold sizes stay balanced */
    for (int c = 0; c < n_classes; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (y[i] == c) idx[m++] = i;
        pl_rng r = pl_rng_split(&master, (uint64_t)c);
        pl_rng_shuffle(&r, idx, m, sizeof *idx);
        for (size_t t = 0; t < m; t++) fold[idx[t]] = (int)((dealt + t) % (size_t)k);
        dealt += m;
    }
    free(idx);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= n_classes) return pl_error(PL_ERR_INVALID, "cross-validation: row %zu: class %d not in 0..%d", i, y[i], n_classes - 1);
    return PL_OK;
}

/* AUC of out-of-fold probabilities: binary, or macro one-vs-rest. */
static double prob_auc(const double *P, const int *y, size_t n, int K) {
    double *s = malloc((n ? n : 1) * sizeof *s);
    int *yy = malloc((n ? n : 1) * sizeof *yy);
    double r = NAN;
    if (s && yy) {
        if (K == 2) {
            for (size_t i = 0; i < n; i++) s[i] = P[i * 2 + 1];
            r = pl_interp_auc(s, y, n);
        } else {
            double acc = 0;
            int cnt = 0;
            for (int c = 0; c < K; c++) {
                for (size_t i = 0; i < n; i++) s[i] = P[i * (size_t)K + (size_t)c], yy[i] = y[i] == c;
                double a = pl_interp_auc(s, yy, n);
                if (!isnan(a)) acc += a, cnt++;
            }
            r = cnt ? acc / cnt : (double)NAN;
        }
    }
    free(s);
    free(yy);
    return r;
}

static int argmax(const double *p, int K) {
    int b = 0;
    for (int k = 1; k < K; k++)
        if (p[k] > p[b]) b = k;
    return b;
}

pl_status pl_probe_cv(const float *X, size_t n, size_t d, const int *y, int n_classes, const pl_probe_opts *o,
                      pl_probe_result *out) {
    memset(out, 0, sizeof *out);
    pl_probe_opts def = pl_probe_defaults();
    if (!o) o = &def;
    const double *Cs = o->Cs ? o->Cs : default_Cs;
    size_t n_C = o->Cs ? o->n_C : sizeof default_Cs / sizeof *default_Cs;
    if (n_C == 0) return pl_error(PL_ERR_INVALID, "probe: empty C grid");
    int k = o->k ? o->k : 5;
    size_t *cls = calloc((size_t)n_classes + 1, sizeof *cls);
    if (!cls) return pl_error(PL_ERR_NOMEM, "probe: out of memory");
    for (size_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < n_classes) cls[y[i]]++;
    for (int c = 0; c < n_classes; c++)
        if (cls[c] < (size_t)k) {
            size_t have = cls[c];
            free(cls);
            return pl_error(PL_ERR_INVALID, "probe: class %d has %zu examples, fewer than k = %d folds", c, have, k);
        }
    free(cls);
    int *fold = malloc(n * sizeof *fold);
    size_t nK = n * (size_t)n_classes, ntask = n_C * (size_t)k;
    double *P = malloc(n_C * nK * sizeof *P); /* out-of-fold probabilities per C */
    pl_status *tst = calloc(ntask, sizeof *tst);
    char (*tmsg)[256] = calloc(ntask, sizeof *tmsg);
    out->cv_acc_by_C = calloc(n_C, sizeof *out->cv_acc_by_C);
    out->n_C = n_C;
    pl_status st = PL_OK;
    if (!fold || !P || !tst || !tmsg || !out->cv_acc_by_C) {
        st = pl_error(PL_ERR_NOMEM, "probe: out of memory");
        goto done;
    }
    if ((st = pl_stratified_folds(y, n, n_classes, k, o->seed, fold)) != PL_OK) goto done;
    /* One task per (C, fold): each fit is serial and writes only its own
     * fold's rows of its own C's P, so results do not depend on threads. */
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t t = 0; t < ntask; t++) {
        size_t ci = t / (size_t)k;
        int f = (int)(t % (size_t)k);
        pl_logreg_opts lo = {Cs[ci], o->standardize, o->max_iter, o->gtol};
        size_t *tr = malloc(n * sizeof *tr), m = 0;
        if (!tr) {
            tst[t] = PL_ERR_NOMEM;
            snprintf(tmsg[t], sizeof tmsg[t], "probe: out of memory");
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (fold[i] != f) tr[m++] = i;
        pl_logreg mdl;
        tst[t] = fit_rows(X, d, y, tr, m, n_classes, &lo, &mdl);
        free(tr);
        if (tst[t] != PL_OK) {
            snprintf(tmsg[t], sizeof tmsg[t], "%s", pl_errmsg());
            continue;
        }
        double *Pc = P + ci * nK;
        for (size_t i = 0; i < n; i++)
            if (fold[i] == f) pl_logreg_proba(&mdl, X + i * d, Pc + i * (size_t)n_classes);
        pl_logreg_free(&mdl);
    }
    for (size_t t = 0; t < ntask; t++)
        if (tst[t] != PL_OK) {
            st = pl_error(tst[t], "%s", tmsg[t]);
            goto done;
        }
    double best = -1;
    size_t bestc = 0;
    for (size_t ci = 0; ci < n_C; ci++) {
        const double *Pc = P + ci * nK;
        size_t correct = 0;
        for (size_t i = 0; i < n; i++) correct += argmax(Pc + i * (size_t)n_classes, n_classes) == y[i];
        double acc = (double)correct / (double)n;
        out->cv_acc_by_C[ci] = acc;
        if (acc > best) { /* strict: ties keep the earlier (grid order) C */
            best = acc;
            bestc = ci;
        }
    }
    out->C = Cs[bestc];
    out->cv_accuracy = best;
    out->cv_auc = prob_auc(P + bestc * nK, y, n, n_classes);
    {
        pl_logreg_opts lo = {out->C, o->standardize, o->max_iter, o->gtol};
        st = fit_rows(X, d, y, NULL, n, n_classes, &lo, &out->model);
    }
done:
    free(fold), free(P), free(tst), free(tmsg);
    if (st != PL_OK) pl_probe_result_free(out);
    return st;
}

void pl_probe_result_free(pl_probe_result *r) {
    free(r->cv_acc_by_C);
    r->cv_acc_by_C = NULL;
    pl_logreg_free(&r->model);
}

pl_status pl_probe_transfer(const float *X, size_t n, size_t d, const int *y, const int *group, int train_group,
                            int test_group, double C, int standardize, pl_probe_transfer_result *out) {
    memset(out, 0, sizeof *out);
    size_t *tr = calloc(n ? n : 1, sizeof *tr);
    double *s = malloc((n ? n : 1) * sizeof *s);
    int *yt = malloc((n ? n : 1) * sizeof *yt);
    pl_status st = PL_OK;
    if (!tr || !s || !yt) {
        st = pl_error(PL_ERR_NOMEM, "probe transfer: out of memory");
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (group[i] == train_group) tr[m++] = i;
    pl_logreg mdl;
    pl_logreg_opts lo = pl_logreg_defaults();
    lo.C = C;
    lo.standardize = standardize;
    if ((st = fit_rows(X, d, y, tr, m, 2, &lo, &mdl)) != PL_OK) goto done;
    size_t t = 0, correct = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] != test_group) continue;
        double p[2];
        pl_logreg_proba(&mdl, X + i * d, p);
        s[t] = p[1];
        yt[t] = y[i];
        correct += (p[1] >= 0.5) == (y[i] == 1);
        t++;
    }
    pl_logreg_free(&mdl);
    if (t == 0) {
        st = pl_error(PL_ERR_INVALID, "probe transfer: no rows in test group %d", test_group);
        goto done;
    }
    out->n_train = m;
    out->n_test = t;
    out->accuracy = (double)correct / (double)t;
    out->auc = pl_interp_auc(s, yt, t);
done:
    free(tr), free(s), free(yt);
    return st;
}

/* ---- labels from a cache, depth curves ------------------------------------ */

void pl_interp_free_names(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

pl_status pl_actcache_labels(const pl_actcache *c, const char *target, int *y, int *n_classes, char ***names,
                             size_t *n_names) {
    size_t n = pl_actcache_n_examples(c);
    if (names) *names = NULL;
    if (n_names) *n_names = 0;
    if (strcmp(target, "label") == 0) {
        for (size_t i = 0; i < n; i++) {
            const pl_act_meta *m = pl_actcache_meta(c, i);
            if (m->label != 0 && m->label != 1)
                return pl_error(PL_ERR_INVALID, "example %zu ('%s') has no 0/1 label", i, m->id);
            y[i] = m->label;
        }
        *n_classes = 2;
        return PL_OK;
    }
    if (strcmp(target, "source") != 0) return pl_error(PL_ERR_INVALID, "probe target '%s': want label or source", target);
    const char **u = malloc((n ? n : 1) * sizeof *u);
    if (!u) return pl_error(PL_ERR_NOMEM, "out of memory");
    size_t nu = 0;
    for (size_t i = 0; i < n; i++) u[nu++] = pl_actcache_meta(c, i)->source;
    qsort(u, nu, sizeof *u, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < nu; i++)
        if (w == 0 || strcmp(u[w - 1], u[i]) != 0) u[w++] = u[i];
    for (size_t i = 0; i < n; i++) {
        const char *s = pl_actcache_meta(c, i)->source;
        const char **hit = bsearch(&s, u, w, sizeof *u, cmp_str);
        y[i] = (int)(hit - u);
    }
    char **own = calloc(w ? w : 1, sizeof *own);
    pl_status st = own ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < w && st == PL_OK; i++)
        if (!(own[i] = strdup(u[i]))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    free(u);
    if (st != PL_OK) {
        pl_interp_free_names(own, w);
        return st;
    }
    if (w < 2) {
        pl_interp_free_names(own, w);
        return pl_error(PL_ERR_INVALID, "source probe: the cache holds only %zu distinct source(s)", w);
    }
    *n_classes = (int)w;
    if (names) *names = own, *n_names = w;
    else pl_interp_free_names(own, w);
    return PL_OK;
}

pl_status pl_probe_depth(pl_actcache *c, const char *hook, const int *layers, size_t n_layers, pl_pos_sel sel,
                         const char *target, const pl_probe_opts *o, pl_probe_curve *out) {
    memset(out, 0, sizeof *out);
    size_t n = pl_actcache_n_examples(c);
    int *y = malloc((n ? n : 1) * sizeof *y);
    out->layers = malloc((n_layers ? n_layers : 1) * sizeof *out->layers);
    out->res = calloc(n_layers ? n_layers : 1, sizeof *out->res);
    if (!y || !out->layers || !out->res) {
        free(y);
        pl_probe_curve_free(out);
        return pl_error(PL_ERR_NOMEM, "probe: out of memory");
    }
    size_t nn = 0;
    pl_status st = pl_actcache_labels(c, target, y, &out->n_classes, &out->class_names, &nn);
    for (size_t l = 0; l < n_layers && st == PL_OK; l++) {
        float *X;
        size_t rn, d;
        st = pl_actcache_matrix(c, hook, layers[l], sel, &X, &rn, &d);
        if (st != PL_OK) break;
        st = pl_probe_cv(X, rn, d, y, out->n_classes, o, &out->res[l]);
        free(X);
        if (st != PL_OK) {
            pl_error_wrap(st, "probe at %s layer %d", hook, layers[l]);
            break;
        }
        out->layers[l] = layers[l];
        out->n_layers = l + 1;
    }
    free(y);
    if (st != PL_OK) pl_probe_curve_free(out);
    return st;
}

void pl_probe_curve_free(pl_probe_curve *pc) {
    for (size_t l = 0; l < pc->n_layers; l++) pl_probe_result_free(&pc->res[l]);
    free(pc->res);
    free(pc->layers);
    pl_interp_free_names(pc->class_names, pc->class_names ? (size_t)pc->n_classes : 0);
    memset(pc, 0, sizeof *pc);
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

cJSON *pl_probe_curve_json(const pl_probe_curve *pc) {
    cJSON *j = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(j, "rows"), *cols = cJSON_AddArrayToObject(j, "cols"),
          *vals = cJSON_AddArrayToObject(j, "values");
    cJSON_AddItemToArray(rows, cJSON_CreateString("accuracy"));
    cJSON_AddItemToArray(rows, cJSON_CreateString("auc"));
    cJSON_AddItemToArray(rows, cJSON_CreateString("C"));
    for (size_t l = 0; l < pc->n_layers; l++) {
        char b[32];
        snprintf(b, sizeof b, "%d", pc->layers[l]);
        cJSON_AddItemToArray(cols, cJSON_CreateString(b));
    }
    for (int r = 0; r < 3; r++) {
        cJSON *row = cJSON_CreateArray();
        for (size_t l = 0; l < pc->n_layers; l++) {
            const pl_probe_result *p = &pc->res[l];
            cJSON_AddItemToArray(row, num_or_null(r == 0 ? p->cv_accuracy : r == 1 ? p->cv_auc : p->C));
        }
        cJSON_AddItemToArray(vals, row);
    }
    cJSON_AddNumberToObject(j, "n_classes", pc->n_classes);
    if (pc->class_names) {
        cJSON *cn = cJSON_AddArrayToObject(j, "classes");
        for (int k = 0; k < pc->n_classes; k++) cJSON_AddItemToArray(cn, cJSON_CreateString(pc->class_names[k]));
    }
    /* Binary probes: bias and direction norm per layer (original space). */
    if (pc->n_classes == 2) {
        cJSON *b = cJSON_AddArrayToObject(j, "bias"), *nrm = cJSON_AddArrayToObject(j, "direction_norm");
        for (size_t l = 0; l < pc->n_layers; l++) {
            const pl_logreg *m = &pc->res[l].model;
            double s = 0;
            for (size_t k = 0; k < m->d; k++) s += m->w[k] * m->w[k];
            cJSON_AddItemToArray(b, num_or_null(m->b[0]));
            cJSON_AddItemToArray(nrm, num_or_null(sqrt(s)));
        }
    }
    return j;
}

cJSON *pl_probe_directions_json(const pl_probe_curve *pc) {
    cJSON *j = cJSON_CreateObject();
    cJSON *ls = cJSON_AddArrayToObject(j, "layers"), *bs = cJSON_AddArrayToObject(j, "bias"),
          *ds = cJSON_AddArrayToObject(j, "direction");
    cJSON_AddNumberToObject(j, "classes", pc->n_classes);
    for (size_t l = 0; l < pc->n_layers; l++) {
        const pl_logreg *m = &pc->res[l].model;
        size_t K = m->n_classes == 2 ? 1 : (size_t)m->n_classes;
        cJSON_AddItemToArray(ls, cJSON_CreateNumber(pc->layers[l]));
        cJSON *b = cJSON_CreateArray(), *dl = cJSON_CreateArray();
        for (size_t k = 0; k < K; k++) {
            cJSON_AddItemToArray(b, num_or_null(m->b[k]));
            cJSON *row = cJSON_CreateArray();
            for (size_t e = 0; e < m->d; e++) cJSON_AddItemToArray(row, num_or_null(m->w[k * m->d + e]));
            cJSON_AddItemToArray(dl, row);
        }
        cJSON_AddItemToArray(bs, b);
        cJSON_AddItemToArray(ds, dl);
    }
    return j;
}

pl_status pl_probe_curve_summary(const pl_probe_curve *pc, pl_buf *b) {
    size_t best = 0;
    pl_status st = pl_buf_printf(b, "probe (%d classes), %zu layers:\n", pc->n_classes, pc->n_layers);
    for (size_t l = 0; l < pc->n_layers && st == PL_OK; l++) {
        const pl_probe_result *r = &pc->res[l];
        st = pl_buf_printf(b, "  layer %3d: acc %.3f auc %.3f C %g\n", pc->layers[l], r->cv_accuracy, r->cv_auc, r->C);
        if (r->cv_accuracy > pc->res[best].cv_accuracy) best = l;
    }
    if (st == PL_OK && pc->n_layers)
        st = pl_buf_printf(b, "  best: layer %d (acc %.3f)\n", pc->layers[best], pc->res[best].cv_accuracy);
    return st;
}

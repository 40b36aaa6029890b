/* metrics.c — binary classification metrics, bootstrap intervals, threshold
 * tuning and the paired comparison of two models.
 *
 * Definitions follow scikit-learn (1.x) so that results can be checked
 * against it (tools/ref/eval_vectors.py):
 *   precision = tp/(tp+fp), recall = tp/(tp+fn), F1 = 2tp/(2tp+fp+fn), each 0
 *   when its denominator is 0 (zero_division=0); macro-F1 = mean of the F1 of
 *   class 1 and class 0 (labels=[0, 1]); MCC = (tp tn - fp fn)/sqrt(...) and 0
 *   when the denominator is 0; ROC-AUC = trapezoid area of the ROC curve
 *   over the distinct score thresholds (tied scores form one step, i.e. count
 *   one half); PR-AUC = average precision sum_k (R_k - R_{k-1}) P_k over the
 *   distinct thresholds (no interpolation), 0 when there is no phishing
 *   email; ROC-AUC is undefined (NAN) with one class only; Brier = mean (p - y)^2; ECE over
 *   PL_ECE_BINS equal-width bins of p.
 * Every metric accepts integer weights (bootstrap counts), which is the same
 * as repeating each email that many times.
 *
 * The bootstrap is Efron's percentile method; resample b uses its own RNG
 * stream pl_rng_split(seed, b), so the result is identical for any number
 * of threads. Does not do BCa or studentized intervals.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const metric_names[PL_M_COUNT] = {
    "accuracy", "precision", "recall", "f1", "macro_f1", "mcc", "roc_auc", "pr_auc", "brier", "ece"};

const char *pl_metric_name(int m) { return m >= 0 && m < PL_M_COUNT ? metric_names[m] : "?"; }

pl_boot_opts pl_boot_defaults(void) {
    pl_boot_opts o = {1000, 0.95, 0};
    return o;
}

/* ---- the working set: labels, probabilities, scores, score order --------- */

typedef struct {
    size_t n;
    unsigned char *y;
    double *p, *s;
    size_t *order;   /* indices by score, descending */
} evset;

static void evset_free(evset *e) {
    free(e->y);
    free(e->p);
    free(e->s);
    free(e->order);
    memset(e, 0, sizeof *e);
}

/* Stable merge sort of indices by key, descending (qsort has no context
 * pointer in C11, and a file-static key would not be thread-safe). */
static void msort_desc(size_t *a, size_t *tmp, size_t n, const double *key) {
    if (n < 2) return;
    size_t h = n / 2;
    msort_desc(a, tmp, h, key);
    msort_desc(a + h, tmp, n - h, key);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = key[a[j]] > key[a[i]] ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static pl_status evset_init(evset *e, const pl_preds *ps, const size_t *idx, size_t n) {
    memset(e, 0, sizeof *e);
    if (n == 0) return pl_error(PL_ERR_INVALID, "no predictions to evaluate");
    e->n = n;
    e->y = malloc(n);
    e->p = malloc(n * sizeof *e->p);
    e->s = malloc(n * sizeof *e->s);
    e->order = malloc(n * sizeof *e->order);
    size_t *tmp = malloc(n * sizeof *tmp);
    if (!e->y || !e->p || !e->s || !e->order || !tmp) {
        free(tmp);
        evset_free(e);
        return pl_error(PL_ERR_NOMEM, "out of memory for %zu predictions", n);
    }
    for (size_t k = 0; k < n; k++) {
        const pl_pred *q = &ps->v[idx ? idx[k] : k];
        e->y[k] = (unsigned char)(q->label == 1);
        e->p[k] = q->p_phish;
        e->s[k] = q->score;
        e->order[k] = k;
    }
    msort_desc(e->order, tmp, n, e->s);
    free(tmp);
    return PL_OK;
}

/* ---- metrics of a (weighted) set --------------------------------------- */

static int ece_bin(double p) {
    /* bin b covers [b/15, (b+1)/15); p = 1 goes to the last bin. */
    int b = (int)(p * PL_ECE_BINS);
    if (b >= PL_ECE_BINS) b = PL_ECE_BINS - 1;
    if (b < 0) b = 0;
    /* correct for rounding in p*15 so the bin agrees with the edges b/15. */
    if (b > 0 && p < (double)b / PL_ECE_BINS) b--;
    else if (b < PL_ECE_BINS - 1 && p >= (double)(b + 1) / PL_ECE_BINS) b++;
    return b;
}

/* The metrics of e with weights w (NULL = all 1). notes: fill note[]. */
static void compute(const evset *e, const uint32_t *w, double thr, pl_metrics *m, int notes) {
    memset(m, 0, sizeof *m);
    m->threshold = thr;
    int64_t tp = 0, fp = 0, fn = 0, tn = 0;
    double brier = 0;
    double bsum_p[PL_ECE_BINS] = {0}, bsum_y[PL_ECE_BINS] = {0};
    int64_t bcnt[PL_ECE_BINS] = {0};
    for (size_t i = 0; i < e->n; i++) {
        int64_t c = w ? w[i] : 1;
        if (!c) continue;
        int y = e->y[i], pr = e->p[i] >= thr;
        if (y && pr) tp += c;
        else if (y) fn += c;
        else if (pr) fp += c;
        else tn += c;
        double d = e->p[i] - y;
        brier += (double)c * d * d;
        int b = ece_bin(e->p[i]);
        bcnt[b] += c;
        bsum_p[b] += (double)c * e->p[i];
        bsum_y[b] += (double)c * y;
    }
    int64_t n = tp + fp + fn + tn, P = tp + fn, N = tn + fp;
    m->n = n;
    m->n_pos = P;
    m->cm = (pl_confusion){tn, fp, fn, tp};
    double *v = m->v;
    const char **note = m->note;
    v[PL_M_ACCURACY] = (double)(tp + tn) / (double)n;
    v[PL_M_PRECISION] = tp + fp ? (double)tp / (double)(tp + fp) : 0.0;
    if (notes && !(tp + fp)) note[PL_M_PRECISION] = "no positive predictions: set to 0 (zero_division=0)";
    v[PL_M_RECALL] = P ? (double)tp / (double)P : 0.0;
    if (notes && !P) note[PL_M_RECALL] = "no phishing emails: set to 0 (zero_division=0)";
    double f1 = 2 * tp + fp + fn ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
    double f0 = 2 * tn + fp + fn ? 2.0 * (double)tn / (double)(2 * tn + fp + fn) : 0.0;
    v[PL_M_F1] = f1;
    if (notes && !(2 * tp + fp + fn)) note[PL_M_F1] = "no phishing emails and no positive predictions: set to 0 (zero_division=0)";
    else if (notes && !tp) note[PL_M_F1] = "no true positives";
    v[PL_M_MACRO_F1] = 0.5 * (f1 + f0);
    if (notes && (!(2 * tp + fp + fn) || !(2 * tn + fp + fn)))
        note[PL_M_MACRO_F1] = "a class has neither emails nor predictions: its F1 is 0 (zero_division=0)";
    double den = (double)(tp + fp) * (double)P * (double)N * (double)(tn + fn);
    v[PL_M_MCC] = den > 0 ? ((double)tp * (double)tn - (double)fp * (double)fn) / sqrt(den) : 0.0;
    if (notes && !(den > 0)) note[PL_M_MCC] = "one class absent in labels or predictions: set to 0 (as scikit-learn)";
    v[PL_M_BRIER] = brier / (double)n;
    double ece = 0;
    for (int b = 0; b < PL_ECE_BINS; b++)
        if (bcnt[b]) ece += fabs(bsum_p[b] - bsum_y[b]) / (double)n; /* = (n_b/n)|mean_p - obs| */
    v[PL_M_ECE] = ece;

    /* Ranking metrics: walk the scores from high to low, one step per
     * distinct score. */
    if (!P || !N) {
        v[PL_M_ROC_AUC] = NAN;
        if (notes) note[PL_M_ROC_AUC] = "only one class present in labels: ROC-AUC is undefined";
    }
    if (!P) {
        v[PL_M_PR_AUC] = 0.0;
        if (notes) note[PL_M_PR_AUC] = "no phishing emails: recall is undefined; set to 0 (as scikit-learn)";
    }
    if (!P) return;
    double area = 0, ap = 0;
    int64_t ctp = 0, cfp = 0, ptp = 0, pfp = 0;
    for (size_t k = 0; k < e->n;) {
        double sc = e->s[e->order[k]];
        while (k < e->n && e->s[e->order[k]] == sc) {
            size_t i = e->order[k++];
            int64_t c = w ? w[i] : 1;
            if (e->y[i]) ctp += c;
            else cfp += c;
        }
        if (ctp == ptp && cfp == pfp) continue; /* all weights 0 at this score */
        area += (double)(cfp - pfp) * (double)(ctp + ptp) * 0.5;
        ap += (double)(ctp - ptp) / (double)P * ((double)ctp / (double)(ctp + cfp));
        ptp = ctp;
        pfp = cfp;
    }
    if (N) v[PL_M_ROC_AUC] = area / ((double)P * (double)N);
    v[PL_M_PR_AUC] = ap;
}

pl_status pl_eval_metrics(const pl_preds *ps, const size_t *idx, size_t n_idx, double threshold,
                          pl_metrics *out) {
    evset e;
    pl_status st = evset_init(&e, ps, idx, n_idx);
    if (st) return st;
    compute(&e, NULL, threshold, out, 1);
    evset_free(&e);
    return PL_OK;
}

pl_status pl_eval_metrics_weighted(const pl_preds *ps, const size_t *idx, size_t n_idx, const uint32_t *w,
                                   double threshold, pl_metrics *out) {
    uint64_t total = 0;
    for (size_t k = 0; w && k < n_idx; k++) total += w[k];
    if (w && !total) return pl_error(PL_ERR_INVALID, "all weights are zero");
    evset e;
    pl_status st = evset_init(&e, ps, idx, n_idx);
    if (st) return st;
    compute(&e, w, threshold, out, 1);
    evset_free(&e);
    return PL_OK;
}

/* ---- bootstrap --------------------------------------------------------- */

double pl_percentile_sorted(const double *x, size_t n, double q) {
    double h = (double)(n - 1) * q;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1) return x[n - 1];
    return x[lo] + (h - (double)lo) * (x[lo + 1] - x[lo]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Draw resample b's counts: n indices uniform with replacement. */
static void draw_counts(const pl_rng *master, int64_t b, size_t n, uint32_t *cnt) {
    pl_rng r = pl_rng_split(master, (uint64_t)b);
    memset(cnt, 0, n * sizeof *cnt);
    for (size_t i = 0; i < n; i++) cnt[pl_rng_below(&r, n)]++;
}

/* Interval from per-resample values vals[b] (NAN = undefined): sorts in place. */
static void interval(double *vals, int64_t nb, double level, pl_ci *ci) {
    int64_t k = 0;
    for (int64_t b = 0; b < nb; b++)
        if (!isnan(vals[b])) vals[k++] = vals[b];
    ci->n_defined = k;
    ci->lo = ci->hi = NAN;
    if (k < 2) return;
    qsort(vals, (size_t)k, sizeof *vals, cmp_double);
    ci->lo = pl_percentile_sorted(vals, (size_t)k, (1 - level) / 2);
    ci->hi = pl_percentile_sorted(vals, (size_t)k, (1 + level) / 2);
}

static pl_status check_boot(const pl_boot_opts *o) {
    if (o->n_boot < 2 || o->n_boot > 100000000)
        return pl_error(PL_ERR_INVALID, "bootstrap resamples must be in [2, 1e8], got %lld", (long long)o->n_boot);
    if (!(o->level > 0 && o->level < 1))
        return pl_error(PL_ERR_INVALID, "confidence level must be in (0, 1), got %g", o->level);
    return PL_OK;
}

pl_status pl_eval_bootstrap(const pl_preds *ps, const size_t *idx, size_t n_idx, double threshold,
                            const pl_boot_opts *o, pl_ci ci[PL_M_COUNT]) {
    pl_status st = check_boot(o);
    if (st) return st;
    if (n_idx > UINT32_MAX) return pl_error(PL_ERR_RANGE, "bootstrap of more than 2^32 predictions");
    evset e;
    if ((st = evset_init(&e, ps, idx, n_idx))) return st;
    int64_t nb = o->n_boot;
    size_t bytes;
    double *vals = NULL;
    if (pl_mul_ok((size_t)nb, PL_M_COUNT * sizeof *vals, &bytes)) vals = malloc(bytes);
    if (!vals) {
        evset_free(&e);
        return pl_error(PL_ERR_NOMEM, "out of memory for %lld resamples", (long long)nb);
    }
    pl_rng master;
    pl_rng_seed(&master, o->seed);
    int failed = 0;
#pragma omp parallel
    {
        uint32_t *cnt = malloc(e.n * sizeof *cnt);
        if (!cnt) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t b = 0; b < nb; b++) {
            if (!cnt) continue;
            draw_counts(&master, b, e.n, cnt);
            pl_metrics m;
            compute(&e, cnt, threshold, &m, 0);
            for (int k = 0; k < PL_M_COUNT; k++) vals[(size_t)k * (size_t)nb + (size_t)b] = m.v[k];
        }
        free(cnt);
    }
    if (failed) {
        free(vals);
        evset_free(&e);
        return pl_error(PL_ERR_NOMEM, "out of memory in the bootstrap");
    }
    for (int k = 0; k < PL_M_COUNT; k++) interval(vals + (size_t)k * (size_t)nb, nb, o->level, &ci[k]);
    free(vals);
    evset_free(&e);
    return PL_OK;
}

/* ---- threshold tuning -------------------------------------------------- */

pl_status pl_eval_tune_threshold(const pl_preds *ps, double *threshold, double *best_f1) {
    evset e;
    pl_status st = evset_init(&e, ps, NULL, ps->n);
    if (st) return st;
    /* Order by p (not score): the decision rule is p >= t. */
    size_t *tmp = malloc(e.n * sizeof *tmp);
    if (!tmp) {
        evset_free(&e);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < e.n; i++) e.order[i] = i;
    msort_desc(e.order, tmp, e.n, e.p);
    free(tmp);
    int64_t P = 0;
    for (size_t i = 0; i < e.n; i++) P += e.y[i];
    if (P == 0 || (size_t)P == e.n) {
        evset_free(&e);
        return pl_error(PL_ERR_INVALID, "threshold tuning needs both classes in the validation set (it has %s)",
                        P ? "only phishing emails" : "no phishing emails");
    }
    /* Thresholds from high to low; replace the best only on a strictly
     * higher F1, so ties keep the largest threshold. F1 = 2tp/(tp+fp+P),
     * compared exactly by cross-multiplication. */
    int64_t tp = 0, fp = 0, btp = -1, bden = 1;
    double bt = 0.5;
    for (size_t k = 0; k < e.n;) {
        double t = e.p[e.order[k]];
        while (k < e.n && e.p[e.order[k]] == t) {
            if (e.y[e.order[k]]) tp++;
            else fp++;
            k++;
        }
        int64_t den = tp + fp + P;
        if (btp < 0 || (double)tp * (double)bden > (double)btp * (double)den) {
            btp = tp;
            bden = den;
            bt = t;
        }
    }
    *threshold = bt;
    if (best_f1) *best_f1 = 2.0 * (double)btp / (double)bden;
    evset_free(&e);
    return PL_OK;
}

/* ---- paired comparison ------------------------------------------------- */

double pl_mcnemar_exact_p(int64_t b, int64_t c) {
    int64_t N = b + c, m = b < c ? b : c;
    if (N == 0 || b == c) return 1.0;
    /* P[X <= m], X ~ Bin(N, 1/2), summed from the largest term down. */
    double lc = lgamma((double)N + 1) - (double)N * log(2.0);
    double sum = 0;
    for (int64_t k = m; k >= 0; k--) {
        double t = exp(lc - lgamma((double)k + 1) - lgamma((double)(N - k) + 1));
        sum += t;
        if (t < sum * 1e-17) break;
    }
    double p = 2 * sum;
    return p > 1 ? 1 : p;
}

static int cmp_pred_ptr(const void *a, const void *b) {
    const pl_pred *x = *(const pl_pred *const *)a, *y = *(const pl_pred *const *)b;
    int c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->id, y->id);
}

/* F1 of the pairs with weights w (NULL = 1) for predictions pr[] and labels y[]. */
static double f1_weighted(const unsigned char *y, const unsigned char *pr, const uint32_t *w, size_t n) {
    int64_t tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t c = w ? w[i] : 1;
        if (y[i] && pr[i]) tp += c;
        else if (y[i]) fn += c;
        else if (pr[i]) fp += c;
    }
    return 2 * tp + fp + fn ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0.0;
}

pl_status pl_eval_compare(const pl_preds *a, const pl_preds *b, double threshold, const pl_boot_opts *o,
                          pl_compare *out) {
    memset(out, 0, sizeof *out);
    pl_status st = check_boot(o);
    if (st) return st;
    if (!a->n) return pl_error(PL_ERR_INVALID, "model A has no predictions");
    if (a->n != b->n)
        return pl_error(PL_ERR_FORMAT, "the two prediction sets differ in size (%zu vs %zu emails)", a->n, b->n);
    size_t n = a->n;
    if (n > UINT32_MAX) return pl_error(PL_ERR_RANGE, "more than 2^32 predictions");
    const pl_pred **bs = malloc(n * sizeof *bs);
    unsigned char *y = malloc(n), *pa = malloc(n), *pb = malloc(n);
    double *vals = malloc((size_t)o->n_boot * sizeof *vals);
    if (!bs || !y || !pa || !pb || !vals) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) bs[i] = &b->v[i];
    qsort(bs, n, sizeof *bs, cmp_pred_ptr);
    for (size_t i = 0; i < n && !st; i++) {
        const pl_pred *x = &a->v[i], *key = x;
        const pl_pred **hit = bsearch(&key, bs, n, sizeof *bs, cmp_pred_ptr);
        if (!hit) st = pl_error(PL_ERR_FORMAT, "email \"%s\" (source \"%s\") is in A but not in B", x->id, x->source);
        else if ((*hit)->label != x->label)
            st = pl_error(PL_ERR_FORMAT, "email \"%s\" (source \"%s\") has label %d in A but %d in B", x->id,
                          x->source, x->label, (*hit)->label);
        else {
            y[i] = (unsigned char)x->label;
            pa[i] = x->p_phish >= threshold;
            pb[i] = (*hit)->p_phish >= threshold;
        }
    }
    if (st) goto done;
    out->n = (int64_t)n;
    for (size_t i = 0; i < n; i++) {
        int ra = pa[i] == y[i], rb = pb[i] == y[i];
        if (ra && rb) out->both_right++;
        else if (ra) out->only_a++;
        else if (rb) out->only_b++;
        else out->both_wrong++;
    }
    out->mcnemar_p = pl_mcnemar_exact_p(out->only_a, out->only_b);
    out->f1_a = f1_weighted(y, pa, NULL, n);
    out->f1_b = f1_weighted(y, pb, NULL, n);
    out->delta_f1 = out->f1_b - out->f1_a;
    pl_rng master;
    pl_rng_seed(&master, o->seed);
    int64_t nb = o->n_boot;
    int failed = 0;
#pragma omp parallel
    {
        uint32_t *cnt = malloc(n * sizeof *cnt);
        if (!cnt) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < nb; r++) {
            if (!cnt) continue;
            draw_counts(&master, r, n, cnt);
            vals[r] = f1_weighted(y, pb, cnt, n) - f1_weighted(y, pa, cnt, n);
        }
        free(cnt);
    }
    if (failed) {
        st = pl_error(PL_ERR_NOMEM, "out of memory in the bootstrap");
        goto done;
    }
    int64_t le = 0, ge = 0;
    for (int64_t r = 0; r < nb; r++) {
        le += vals[r] <= 0;
        ge += vals[r] >= 0;
    }
    double pb2 = 2.0 * (double)(le < ge ? le : ge) / (double)nb;
    out->p_boot = pb2 > 1 ? 1 : pb2;
    interval(vals, nb, o->level, &out->delta_ci);
done:
    free(bs);
    free(y);
    free(pa);
    free(pb);
    free(vals);
    return st;
}

/* ---- reliability diagram ----------------------------------------------- */

pl_status pl_eval_reliability(const pl_preds *ps, const double *p, pl_rel_bin *bins, double *ece) {
    if (!ps->n) return pl_error(PL_ERR_INVALID, "no predictions to evaluate");
    double sp[PL_ECE_BINS] = {0}, sy[PL_ECE_BINS] = {0};
    int64_t cnt[PL_ECE_BINS] = {0};
    for (size_t i = 0; i < ps->n; i++) {
        double q = p ? p[i] : ps->v[i].p_phish;
        if (!(q >= 0 && q <= 1)) return pl_error(PL_ERR_NUMERIC, "probability %g of email %zu is outside [0, 1]", q, i);
        int b = ece_bin(q);
        cnt[b]++;
        sp[b] += q;
        sy[b] += ps->v[i].label == 1;
    }
    double e = 0;
    for (int b = 0; b < PL_ECE_BINS; b++) {
        bins[b].lo = (double)b / PL_ECE_BINS;
        bins[b].hi = (double)(b + 1) / PL_ECE_BINS;
        bins[b].count = cnt[b];
        bins[b].mean_pred = cnt[b] ? sp[b] / (double)cnt[b] : (double)NAN;
        bins[b].observed = cnt[b] ? sy[b] / (double)cnt[b] : (double)NAN;
        if (cnt[b]) e += fabs(sp[b] - sy[b]) / (double)ps->n;
    }
    if (ece) *ece = e;
    return PL_OK;
}

/* report.c — the JSON reports of `phishlens eval metrics|compare|calibrate`:
 * metric sets with bootstrap intervals and notes, per-slice metrics, the
 * tuned-threshold section and temperature calibration.
 *
 * JSON conventions: an undefined metric is null and "notes" says why; a
 * value set by scikit-learn's zero_division=0 convention is reported as a
 * number and also has a note. Intervals are [lo, hi] or null.
 */
#include "eval.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

pl_eval_opts pl_eval_defaults(void) {
    pl_eval_opts o;
    memset(&o, 0, sizeof o);
    o.threshold = 0.5;
    o.boot = pl_boot_defaults();
    o.slices = 1;
    o.slice_ci = 1;
    return o;
}

const char *pl_length_bucket_name(int64_t length) {
    if (length < 0) return NULL;
    if (length < 500) return "<500";
    if (length < 2000) return "500-1999";
    if (length < 10000) return "2000-9999";
    return ">=10000";
}

#define NOMEM() pl_error(PL_ERR_NOMEM, "out of memory")

cJSON *pl_metrics_to_json(const pl_metrics *m, const pl_ci *ci, const pl_boot_opts *bo) {
    cJSON *o = cJSON_CreateObject(), *mv = NULL, *nt = NULL, *cm = NULL, *cj = NULL;
    int ok = o && cJSON_AddNumberToObject(o, "threshold", m->threshold) &&
             cJSON_AddNumberToObject(o, "n", (double)m->n) && cJSON_AddNumberToObject(o, "n_pos", (double)m->n_pos);
    ok = ok && (mv = cJSON_AddObjectToObject(o, "metrics")) != NULL;
    for (int k = 0; ok && k < PL_M_COUNT; k++) {
        cJSON *x = pl_json_num_or_null(m->v[k]);
        ok = x && cJSON_AddItemToObject(mv, pl_metric_name(k), x);
    }
    ok = ok && (cm = cJSON_AddObjectToObject(o, "confusion")) != NULL && cJSON_AddNumberToObject(cm, "tn", (double)m->cm.tn) &&
         cJSON_AddNumberToObject(cm, "fp", (double)m->cm.fp) && cJSON_AddNumberToObject(cm, "fn", (double)m->cm.fn) &&
         cJSON_AddNumberToObject(cm, "tp", (double)m->cm.tp);
    if (ok && ci) {
        ok = (cj = cJSON_AddObjectToObject(o, "ci")) != NULL;
        for (int k = 0; ok && k < PL_M_COUNT; k++) {
            cJSON *x;
            if (isnan(ci[k].lo)) x = cJSON_CreateNull();
            else {
                double pair[2] = {ci[k].lo, ci[k].hi};
                x = cJSON_CreateDoubleArray(pair, 2);
            }
            ok = x && cJSON_AddItemToObject(cj, pl_metric_name(k), x);
        }
        cJSON *b = ok ? cJSON_AddObjectToObject(o, "bootstrap") : NULL;
        ok = b && cJSON_AddStringToObject(b, "method", "percentile") &&
             cJSON_AddNumberToObject(b, "resamples", (double)bo->n_boot) &&
             cJSON_AddNumberToObject(b, "level", bo->level) && cJSON_AddNumberToObject(b, "seed", (double)bo->seed);
        /* Resamples where a metric was undefined are left out of its interval. */
        for (int k = 0; ok && k < PL_M_COUNT; k++)
            if (ci[k].n_defined < bo->n_boot) {
                cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "defined_resamples");
                if (!u) ok = (u = cJSON_AddObjectToObject(b, "defined_resamples")) != NULL;
                ok = ok && cJSON_AddNumberToObject(u, pl_metric_name(k), (double)ci[k].n_defined);
            }
    }
    ok = ok && (nt = cJSON_AddObjectToObject(o, "notes")) != NULL;
    for (int k = 0; ok && k < PL_M_COUNT; k++)
        if (m->note[k]) ok = cJSON_AddStringToObject(nt, pl_metric_name(k), m->note[k]) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Metrics (+ CI) of a subset as JSON; *out NULL on error. */
static pl_status subset_json(const pl_preds *ps, const size_t *idx, size_t n, double thr, const pl_boot_opts *bo,
                             int with_ci, cJSON **out) {
    *out = NULL;
    pl_metrics m;
    pl_ci ci[PL_M_COUNT];
    pl_status st = pl_eval_metrics(ps, idx, n, thr, &m);
    if (!st && with_ci) st = pl_eval_bootstrap(ps, idx, n, thr, bo, ci);
    if (st) return st;
    *out = pl_metrics_to_json(&m, with_ci ? ci : NULL, bo);
    return *out ? PL_OK : NOMEM();
}

/* ---- slices ------------------------------------------------------------ */

typedef struct {
    const char *key;
    size_t *idx;
    size_t n;
} slice;

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Length buckets in increasing order rather than alphabetically. */
static int len_rank(const char *s) {
    const char *order[PL_LEN_BUCKETS] = {"<500", "500-1999", "2000-9999", ">=10000"};
    for (int i = 0; i < PL_LEN_BUCKETS; i++)
        if (!strcmp(s, order[i])) return i;
    return PL_LEN_BUCKETS;
}
static int cmp_len(const void *a, const void *b) {
    return len_rank(*(const char *const *)a) - len_rank(*(const char *const *)b);
}

/* The value of slice dimension d for prediction q (NULL = not in any slice). */
static const char *slice_value(int d, const pl_pred *q) {
    switch (d) {
    case 0: return q->source;
    case 1: return q->has_url < 0 ? NULL : q->has_url ? "true" : "false";
    case 2: return q->html < 0 ? NULL : q->html ? "true" : "false";
    case 3: return pl_length_bucket_name(q->length);
    default: return q->link_mismatch < 0 ? NULL : q->link_mismatch ? "true" : "false";
    }
}
static const char *const slice_dims[5] = {"source", "has_url", "html", "length", "link_mismatch"};

static pl_status slices_json(const pl_preds *ps, const pl_eval_opts *o, cJSON *parent) {
    cJSON *all = cJSON_AddObjectToObject(parent, "slices");
    if (!all) return NOMEM();
    const char **vals = malloc(ps->n * sizeof *vals);
    size_t *idx = malloc(ps->n * sizeof *idx);
    pl_status st = vals && idx ? PL_OK : NOMEM();
    for (int d = 0; d < 5 && !st; d++) {
        /* Distinct values of this dimension, sorted. */
        size_t nv = 0;
        for (size_t i = 0; i < ps->n; i++) {
            const char *v = slice_value(d, &ps->v[i]);
            if (v) vals[nv++] = v;
        }
        if (!nv) continue;
        qsort(vals, nv, sizeof *vals, d == 3 ? cmp_len : cmp_str);
        cJSON *dim = cJSON_AddObjectToObject(all, slice_dims[d]);
        if (!dim) st = NOMEM();
        for (size_t a = 0; a < nv && !st;) {
            size_t b = a;
            while (b < nv && !strcmp(vals[a], vals[b])) b++;
            size_t k = 0;
            for (size_t i = 0; i < ps->n; i++) {
                const char *v = slice_value(d, &ps->v[i]);
                if (v && !strcmp(v, vals[a])) idx[k++] = i;
            }
            pl_boot_opts bo = o->boot;
            /* Each slice gets its own stream, so adding a slice changes no other. */
            bo.seed = o->boot.seed ^ pl_hash64(slice_dims[d], strlen(slice_dims[d]), pl_hash64(vals[a], strlen(vals[a]), 0));
            cJSON *j;
            st = subset_json(ps, idx, k, o->threshold, &bo, o->slice_ci, &j);
            if (!st && !cJSON_AddItemToObject(dim, vals[a], j)) {
                cJSON_Delete(j);
                st = NOMEM();
            }
            a = b;
        }
    }
    free(vals);
    free(idx);
    return st;
}

/* ---- calibration section ------------------------------------------------ */

static cJSON *bins_json(const pl_rel_bin *bins) {
    cJSON *arr = cJSON_CreateArray();
    for (int b = 0; arr && b < PL_ECE_BINS; b++) {
        cJSON *o = cJSON_CreateObject();
        int ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddNumberToObject(o, "lo", bins[b].lo) &&
                 cJSON_AddNumberToObject(o, "hi", bins[b].hi) && cJSON_AddNumberToObject(o, "count", (double)bins[b].count) &&
                 cJSON_AddItemToObject(o, "mean_pred", pl_json_num_or_null(bins[b].mean_pred)) &&
                 cJSON_AddItemToObject(o, "observed", pl_json_num_or_null(bins[b].observed));
        if (!ok) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* {"ece", "bins": [...]} of ps. */
static pl_status reliability_json(const pl_preds *ps, cJSON *parent, const char *key) {
    pl_rel_bin bins[PL_ECE_BINS];
    double ece;
    pl_status st = pl_eval_reliability(ps, NULL, bins, &ece);
    if (st) return st;
    cJSON *o = cJSON_AddObjectToObject(parent, key);
    cJSON *b = bins_json(bins);
    if (!o || !b || !cJSON_AddNumberToObject(o, "ece", ece) || !cJSON_AddItemToObject(o, "bins", b)) {
        cJSON_Delete(b);
        return NOMEM();
    }
    return PL_OK;
}

pl_status pl_eval_calibration_report(const pl_preds *test, const pl_preds *val, const pl_eval_opts *o,
                                     cJSON **out) {
    *out = NULL;
    double T, vb, va;
    int at_bound;
    pl_status st = pl_eval_fit_temperature(val, &T, &at_bound, &vb, &va);
    if (st) return pl_error_wrap(st, "fitting the temperature on the validation set");
    pl_preds cal;
    if ((st = pl_preds_apply_temperature(test, T, &cal))) return st;
    cJSON *r = cJSON_CreateObject(), *j;
    int ok = r && cJSON_AddNumberToObject(r, "temperature", T) && cJSON_AddBoolToObject(r, "at_bound", at_bound) &&
             cJSON_AddNumberToObject(r, "val_n", (double)val->n) && cJSON_AddNumberToObject(r, "val_nll_before", vb) &&
             cJSON_AddNumberToObject(r, "val_nll_after", va) &&
             cJSON_AddItemToObject(r, "test_nll_before", pl_json_num_or_null(pl_eval_nll(test, 1.0))) &&
             cJSON_AddItemToObject(r, "test_nll_after", pl_json_num_or_null(pl_eval_nll(test, T)));
    if (!ok) st = NOMEM();
    const pl_preds *sets[2] = {test, &cal};
    const char *keys[2] = {"before", "after"};
    for (int k = 0; k < 2 && !st; k++) {
        st = subset_json(sets[k], NULL, sets[k]->n, o->threshold, &o->boot, 1, &j);
        if (!st && !cJSON_AddItemToObject(r, keys[k], j)) {
            cJSON_Delete(j);
            st = NOMEM();
        }
        if (!st) st = reliability_json(sets[k], j, "reliability");
    }
    pl_preds_free(&cal);
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = r;
    return PL_OK;
}

/* ---- the metrics report ------------------------------------------------ */

pl_status pl_eval_report(const pl_preds *test, const pl_preds *val, const pl_eval_opts *o, cJSON **out) {
    *out = NULL;
    cJSON *r = cJSON_CreateObject(), *j = NULL;
    if (!r) return NOMEM();
    pl_status st = subset_json(test, NULL, test->n, o->threshold, &o->boot, 1, &j);
    if (!st && !cJSON_AddItemToObject(r, "fixed_threshold", j)) {
        cJSON_Delete(j);
        st = NOMEM();
    }
    if (!st) st = reliability_json(test, r, "reliability");
    if (!st && val) {
        double t, vf1;
        pl_status tst = pl_eval_tune_threshold(val, &t, &vf1);
        if (tst == PL_ERR_INVALID) {
            /* A one-class validation set: report why instead of failing. */
            cJSON *tn = cJSON_AddObjectToObject(r, "tuned_threshold");
            if (!tn || !cJSON_AddNullToObject(tn, "threshold") || !cJSON_AddStringToObject(tn, "note", pl_errmsg()))
                st = NOMEM();
        } else if (tst) st = tst;
        else {
            st = subset_json(test, NULL, test->n, t, &o->boot, 1, &j);
            if (!st && (!cJSON_AddItemToObject(r, "tuned_threshold", j) ||
                        !cJSON_AddNumberToObject(j, "val_f1", vf1) || !cJSON_AddNumberToObject(j, "val_n", (double)val->n)))
                st = NOMEM();
        }
        if (!st) {
            cJSON *c = NULL;
            pl_status cst = pl_eval_calibration_report(test, val, o, &c);
            if (cst == PL_ERR_INVALID) {
                cJSON *cn = cJSON_AddObjectToObject(r, "calibration");
                if (!cn || !cJSON_AddStringToObject(cn, "note", pl_errmsg())) st = NOMEM();
            } else if (cst) st = cst;
            else if (!cJSON_AddItemToObject(r, "calibration", c)) {
                cJSON_Delete(c);
                st = NOMEM();
            }
        }
    }
    if (!st && o->slices) st = slices_json(test, o, r);
    if (st) {
        cJSON_Delete(r);
        return st;
    }
    *out = r;
    return PL_OK;
}

pl_status pl_eval_compare_report(const pl_preds *a, const pl_preds *b, const pl_eval_opts *o, cJSON **out) {
    *out = NULL;
    pl_compare c;
    pl_status st = pl_eval_compare(a, b, o->threshold, &o->boot, &c);
    if (st) return st;
    cJSON *r = cJSON_CreateObject(), *ja = NULL, *jb = NULL, *ct = NULL;
    if (!r) return NOMEM();
    st = subset_json(a, NULL, a->n, o->threshold, &o->boot, 0, &ja);
    if (!st) st = subset_json(b, NULL, b->n, o->threshold, &o->boot, 0, &jb);
    int ok = !st && cJSON_AddNumberToObject(r, "n", (double)c.n) && cJSON_AddNumberToObject(r, "threshold", o->threshold) &&
             cJSON_AddItemToObject(r, "a", ja) && cJSON_AddItemToObject(r, "b", jb);
    if (!ok) {
        if (!st) st = NOMEM();
        cJSON_Delete(r);
        return st;
    }
    ok = (ct = cJSON_AddObjectToObject(r, "contingency")) != NULL &&
         cJSON_AddNumberToObject(ct, "both_right", (double)c.both_right) &&
         cJSON_AddNumberToObject(ct, "only_a_right", (double)c.only_a) &&
         cJSON_AddNumberToObject(ct, "only_b_right", (double)c.only_b) &&
         cJSON_AddNumberToObject(ct, "both_wrong", (double)c.both_wrong) &&
         cJSON_AddNumberToObject(r, "mcnemar_exact_p", c.mcnemar_p) && cJSON_AddNumberToObject(r, "f1_a", c.f1_a) &&
         cJSON_AddNumberToObject(r, "f1_b", c.f1_b) && cJSON_AddNumberToObject(r, "delta_f1", c.delta_f1);
    if (ok) {
        cJSON *x;
        if (isnan(c.delta_ci.lo)) x = cJSON_CreateNull();
        else {
            double pair[2] = {c.delta_ci.lo, c.delta_ci.hi};
            x = cJSON_CreateDoubleArray(pair, 2);
        }
        ok = x && cJSON_AddItemToObject(r, "delta_f1_ci", x) && cJSON_AddNumberToObject(r, "p_bootstrap", c.p_boot);
        cJSON *bo = ok ? cJSON_AddObjectToObject(r, "bootstrap") : NULL;
        ok = bo && cJSON_AddStringToObject(bo, "method", "paired percentile") &&
             cJSON_AddNumberToObject(bo, "resamples", (double)o->boot.n_boot) &&
             cJSON_AddNumberToObject(bo, "level", o->boot.level) && cJSON_AddNumberToObject(bo, "seed", (double)o->boot.seed);
    }
    if (!ok) {
        cJSON_Delete(r);
        return NOMEM();
    }
    *out = r;
    return PL_OK;
}

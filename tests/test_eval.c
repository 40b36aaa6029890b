/* test_eval.c — tests of the eval module.
 *
 * References:
 *   - tests/data/eval/sklearn_vectors.json, written by tools/ref/eval_vectors.py
 *     from scikit-learn (metrics), scipy (exact binomial test) and a
 *     root-finder on the NLL derivative (temperature);
 *   - hand-computed values (ECE, percentiles, F1 of constructed counts);
 *   - properties (bootstrap determinism across seeds and thread counts, CI
 *     contains the estimate, CI width shrinks with n, weights = duplication).
 */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/eval.h"
#include "harness.h"

/* Metrics are closed-form sums of O(n) doubles; scikit-learn sums in another
 * order (np.trapz, cumsum), so agreement is to rounding, ~1e-15 relative. */
#define TOL_SKLEARN 1e-12
/* The reference temperature is a root of dNLL/dbeta found by brentq to
 * ~4 eps relative in beta; phishlens ends with full Newton steps on the same
 * derivative, so both agree to rounding of the O(n) sums. */
#define TOL_TEMP_REL 1e-12
/* McNemar p through lgamma: ~1e-13 relative for n of a few thousand. */
#define TOL_MCNEMAR 1e-12

static const char *VECTORS = "tests/data/eval/sklearn_vectors.json";

static char tmpdir[256];

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_eval_%ld", (long)getpid());
    pl_mkdirs(tmpdir);
}
static const char *tpath(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static void push(pl_preds *ps, const char *id, const char *src, int y, double p, double s) {
    pl_pred q;
    char idb[128], srcb[128];
    snprintf(idb, sizeof idb, "%s", id);
    snprintf(srcb, sizeof srcb, "%s", src);
    memset(&q, 0, sizeof q);
    q.id = idb;
    q.source = srcb;
    q.label = y;
    q.p_phish = p;
    q.score = s;
    q.pred = p >= 0.5;
    q.has_url = q.html = q.link_mismatch = -1;
    q.length = -1;
    pl_preds_push(ps, &q);
}

static double sigm(double s) { return 1.0 / (1.0 + exp(-s)); }

/* ---- scikit-learn vectors ------------------------------------------------ */

static cJSON *load_vectors(void) {
    char *data;
    size_t len;
    if (pl_read_file(VECTORS, &data, &len)) {
        CHECK(0, "cannot read %s: %s", VECTORS, pl_errmsg());
        return NULL;
    }
    cJSON *j = cJSON_Parse(data);
    free(data);
    CHECK(j != NULL, "%s does not parse", VECTORS);
    return j;
}

static void preds_from_arrays(pl_preds *ps, cJSON *y, cJSON *p, cJSON *s) {
    int n = cJSON_GetArraySize(y);
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "e%d", i);
        push(ps, id, "ref", (int)cJSON_GetArrayItem(y, i)->valuedouble, cJSON_GetArrayItem(p, i)->valuedouble,
             s ? cJSON_GetArrayItem(s, i)->valuedouble : 0);
    }
}

static void test_sklearn(cJSON *v) {
    double maxerr[PL_M_COUNT] = {0}, max_t_rel = 0;
    int checked[PL_M_COUNT] = {0}, nsets = 0;
    cJSON *set;
    cJSON_ArrayForEach(set, cJSON_GetObjectItem(v, "sets")) {
        const char *name = cJSON_GetObjectItem(set, "name")->valuestring;
        pl_preds ps = {0};
        preds_from_arrays(&ps, cJSON_GetObjectItem(set, "y"), cJSON_GetObjectItem(set, "p"), cJSON_GetObjectItem(set, "score"));
        double thr = cJSON_GetObjectItem(set, "threshold")->valuedouble;
        pl_metrics m;
        CHECK_OK(pl_eval_metrics(&ps, NULL, ps.n, thr, &m));
        cJSON *e = cJSON_GetObjectItem(set, "expected");
        for (int k = 0; k < PL_M_COUNT; k++) {
            if (k == PL_M_ECE) continue; /* not a scikit-learn metric; tested by hand below */
            cJSON *w = cJSON_GetObjectItem(e, pl_metric_name(k));
            CHECK(w != NULL, "%s: no reference for %s", name, pl_metric_name(k));
            if (!w) continue;
            if (cJSON_IsNull(w)) {
                CHECK(isnan(m.v[k]) && m.note[k], "%s: %s = %.17g, want undefined with a note", name, pl_metric_name(k), m.v[k]);
                continue;
            }
            double d = fabs(m.v[k] - w->valuedouble);
            CHECK(d <= TOL_SKLEARN, "%s: %s = %.17g, sklearn %.17g (|diff| %.3g > %.3g)", name, pl_metric_name(k), m.v[k],
                  w->valuedouble, d, TOL_SKLEARN);
            if (!(d <= maxerr[k])) maxerr[k] = d;
            checked[k]++;
        }
        cJSON *cm = cJSON_GetObjectItem(e, "confusion");
        int64_t tn = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 0), 0)->valuedouble;
        int64_t fp = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 0), 1)->valuedouble;
        int64_t fn = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 1), 0)->valuedouble;
        int64_t tp = (int64_t)cJSON_GetArrayItem(cJSON_GetArrayItem(cm, 1), 1)->valuedouble;
        CHECK(m.cm.tn == tn && m.cm.fp == fp && m.cm.fn == fn && m.cm.tp == tp,
              "%s: confusion [[%lld,%lld],[%lld,%lld]], sklearn [[%lld,%lld],[%lld,%lld]]", name, (long long)m.cm.tn,
              (long long)m.cm.fp, (long long)m.cm.fn, (long long)m.cm.tp, (long long)tn, (long long)fp, (long long)fn,
              (long long)tp);

        /* Tuned threshold: brute force in the reference. */
        cJSON *tu = cJSON_GetObjectItem(set, "tuned");
        double t, f1;
        pl_status st = pl_eval_tune_threshold(&ps, &t, &f1);
        if (cJSON_IsNull(tu)) {
            CHECK(st == PL_ERR_INVALID, "%s: tuning on one class should be PL_ERR_INVALID, got %s", name, pl_status_str(st));
        } else {
            CHECK(st == PL_OK && t == cJSON_GetObjectItem(tu, "threshold")->valuedouble,
                  "%s: tuned threshold %.17g, want %.17g", name, t, cJSON_GetObjectItem(tu, "threshold")->valuedouble);
            CHECK_NEAR(f1, cJSON_GetObjectItem(tu, "f1")->valuedouble, TOL_SKLEARN);
        }

        /* Temperature scaling against the root-finder. */
        cJSON *te = cJSON_GetObjectItem(set, "temperature");
        if (te && !cJSON_IsNull(te)) {
            double T, nb, na;
            int ab;
            CHECK_OK(pl_eval_fit_temperature(&ps, &T, &ab, &nb, &na));
            double Tw = cJSON_GetObjectItem(te, "T")->valuedouble;
            CHECK(fabs(T - Tw) <= TOL_TEMP_REL * Tw, "%s: T = %.17g, want %.17g", name, T, Tw);
            if (fabs(T - Tw) / Tw > max_t_rel) max_t_rel = fabs(T - Tw) / Tw;
            CHECK_NEAR(nb, cJSON_GetObjectItem(te, "nll_before")->valuedouble, TOL_SKLEARN);
            CHECK_NEAR(na, cJSON_GetObjectItem(te, "nll_after")->valuedouble, TOL_SKLEARN);
            CHECK(!ab, "%s: temperature at a bound", name);
        }
        pl_preds_free(&ps);
        nsets++;
    }
    printf("sklearn agreement over %d sets (max |error| per metric, number of defined comparisons):\n", nsets);
    for (int k = 0; k < PL_M_COUNT; k++)
        if (k != PL_M_ECE) printf("  %-10s %.3g (%d)\n", pl_metric_name(k), maxerr[k], checked[k]);
    printf("  temperature T: max relative error %.3g vs the root-finder\n", max_t_rel);
}

static void test_mcnemar(cJSON *v) {
    double maxerr = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(v, "mcnemar")) {
        int64_t b = (int64_t)cJSON_GetObjectItem(c, "b")->valuedouble, cc = (int64_t)cJSON_GetObjectItem(c, "c")->valuedouble;
        double want = cJSON_GetObjectItem(c, "p")->valuedouble, got = pl_mcnemar_exact_p(b, cc);
        double d = fabs(got - want);
        CHECK(d <= TOL_MCNEMAR, "McNemar(%lld, %lld) = %.17g, scipy %.17g", (long long)b, (long long)cc, got, want);
        if (d > maxerr) maxerr = d;
    }
    printf("  mcnemar_p  %.3g\n", maxerr);

    cJSON *pr = cJSON_GetArrayItem(cJSON_GetObjectItem(v, "pairs"), 0);
    pl_preds a = {0}, b = {0};
    preds_from_arrays(&a, cJSON_GetObjectItem(pr, "y"), cJSON_GetObjectItem(pr, "p_a"), NULL);
    preds_from_arrays(&b, cJSON_GetObjectItem(pr, "y"), cJSON_GetObjectItem(pr, "p_b"), NULL);
    /* Order must not matter: reverse B. */
    for (size_t i = 0; i < b.n / 2; i++) {
        pl_pred t = b.v[i];
        b.v[i] = b.v[b.n - 1 - i];
        b.v[b.n - 1 - i] = t;
    }
    pl_boot_opts bo = pl_boot_defaults();
    pl_compare cmp;
    CHECK_OK(pl_eval_compare(&a, &b, 0.5, &bo, &cmp));
    CHECK(cmp.only_a == (int64_t)cJSON_GetObjectItem(pr, "only_a")->valuedouble &&
              cmp.only_b == (int64_t)cJSON_GetObjectItem(pr, "only_b")->valuedouble &&
              cmp.both_right == (int64_t)cJSON_GetObjectItem(pr, "both_right")->valuedouble &&
              cmp.both_wrong == (int64_t)cJSON_GetObjectItem(pr, "both_wrong")->valuedouble,
          "contingency %lld %lld %lld %lld", (long long)cmp.both_right, (long long)cmp.only_a, (long long)cmp.only_b,
          (long long)cmp.both_wrong);
    CHECK_NEAR(cmp.mcnemar_p, cJSON_GetObjectItem(pr, "mcnemar_p")->valuedouble, TOL_MCNEMAR);
    CHECK_NEAR(cmp.f1_a, cJSON_GetObjectItem(pr, "f1_a")->valuedouble, TOL_SKLEARN);
    CHECK_NEAR(cmp.f1_b, cJSON_GetObjectItem(pr, "f1_b")->valuedouble, TOL_SKLEARN);
    CHECK(cmp.delta_ci.lo <= cmp.delta_f1 && cmp.delta_f1 <= cmp.delta_ci.hi, "delta F1 %.4f outside its CI [%.4f, %.4f]",
          cmp.delta_f1, cmp.delta_ci.lo, cmp.delta_ci.hi);
    CHECK(cmp.p_boot > 0 && cmp.p_boot <= 1, "p_boot %g", cmp.p_boot);
    /* Model vs itself: no discordant pairs, p = 1, delta CI = [0, 0]. */
    pl_compare self;
    CHECK_OK(pl_eval_compare(&a, &a, 0.5, &bo, &self));
    CHECK(self.only_a == 0 && self.only_b == 0 && self.mcnemar_p == 1 && self.delta_ci.lo == 0 && self.delta_ci.hi == 0,
          "self-compare: %lld %lld p %g ci [%g, %g]", (long long)self.only_a, (long long)self.only_b, self.mcnemar_p,
          self.delta_ci.lo, self.delta_ci.hi);
    /* Mismatched sets are errors that name the email. */
    free(b.v[0].id);
    b.v[0].id = strdup("not-in-a");
    CHECK(pl_eval_compare(&a, &b, 0.5, &bo, &cmp) == PL_ERR_FORMAT && strstr(pl_errmsg(), "in A but not in B"),
          "mismatched ids: %s", pl_errmsg());
    pl_preds_free(&a);
    pl_preds_free(&b);
}

/* ---- hand-computed ------------------------------------------------------- */

static void test_ece_hand(void) {
    /* bins of width 1/15: 0.05 -> 0, 0.1 -> 1, 0.5 -> 7, 0.9 -> 13, 0.95 and 1 -> 14.
     * ECE = (|0.05-0| + |0.1-1| + |0.5-1| + |0.9-1|)/6 + (2/6)|0.975-0.5| = 2.5/6. */
    double p[6] = {0.05, 0.1, 0.5, 0.9, 0.95, 1.0};
    int y[6] = {0, 1, 1, 1, 0, 1};
    pl_preds ps = {0};
    for (int i = 0; i < 6; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        push(&ps, id, "s", y[i], p[i], log(p[i] / (1 - p[i])));
    }
    pl_metrics m;
    CHECK_OK(pl_eval_metrics(&ps, NULL, ps.n, 0.5, &m));
    CHECK_NEAR(m.v[PL_M_ECE], 2.5 / 6, 1e-15);
    pl_rel_bin bins[PL_ECE_BINS];
    double ece;
    CHECK_OK(pl_eval_reliability(&ps, NULL, bins, &ece));
    CHECK_NEAR(ece, 2.5 / 6, 1e-15);
    int64_t want_cnt[PL_ECE_BINS] = {1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2};
    int ok = 1;
    for (int b = 0; b < PL_ECE_BINS; b++) ok &= bins[b].count == want_cnt[b];
    CHECK(ok, "reliability bin counts differ from the hand count");
    CHECK_NEAR(bins[14].mean_pred, 0.975, 1e-15);
    CHECK_NEAR(bins[14].observed, 0.5, 1e-15);
    CHECK(isnan(bins[2].mean_pred) && isnan(bins[2].observed), "empty bin should have NAN mean");
    pl_preds_free(&ps);

    /* Edges: p = b/15 falls in bin b, the double just below in bin b-1. */
    int edge_ok = 1;
    for (int b = 1; b < PL_ECE_BINS; b++) {
        double e = (double)b / PL_ECE_BINS;
        double q[2] = {e, nextafter(e, 0)};
        pl_preds two = {0};
        push(&two, "a", "s", 0, q[0], 0);
        push(&two, "b", "s", 0, q[1], 0);
        pl_rel_bin bb[PL_ECE_BINS];
        pl_eval_reliability(&two, NULL, bb, NULL);
        edge_ok &= bb[b].count == 1 && bb[b - 1].count == 1;
        pl_preds_free(&two);
    }
    CHECK(edge_ok, "bin edges b/15 not assigned to bin b");
}

static void test_percentile(void) {
    /* numpy.percentile([1,2,3,4], [25, 50, 97.5]) = 1.75, 2.5, 3.925 */
    double x[4] = {1, 2, 3, 4};
    CHECK_NEAR(pl_percentile_sorted(x, 4, 0.25), 1.75, 1e-15);
    CHECK_NEAR(pl_percentile_sorted(x, 4, 0.5), 2.5, 1e-15);
    CHECK_NEAR(pl_percentile_sorted(x, 4, 0.975), 3.925, 1e-14);
    CHECK_NEAR(pl_percentile_sorted(x, 4, 1.0), 4, 0);
    CHECK_NEAR(pl_percentile_sorted(x, 1, 0.3), 1, 0);
}

/* ---- properties ---------------------------------------------------------- */

/* n emails: label ~ Bernoulli(0.4), score ~ N(1.5 y - 0.5, 1.5). */
static void synth(pl_preds *ps, size_t n, uint64_t seed, const char *src) {
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int y = pl_rng_uniform(&r) < 0.4;
        double s = 1.5 * y - 0.5 + 1.5 * (double)pl_rng_normal(&r);
        char id[32];
        snprintf(id, sizeof id, "%s-%zu", src, i);
        push(ps, id, src, y, sigm(s), s);
    }
}

static void test_weights(void) {
    pl_preds ps = {0};
    synth(&ps, 50, 3, "w");
    /* ties in score, to exercise the grouping: */
    ps.v[1].score = ps.v[2].score = ps.v[3].score;
    uint32_t w[50];
    size_t dup[400], k = 0;
    for (size_t i = 0; i < 50; i++) {
        w[i] = (uint32_t)(i % 4);
        for (uint32_t j = 0; j < w[i]; j++) dup[k++] = i;
    }
    pl_metrics a, b;
    CHECK_OK(pl_eval_metrics_weighted(&ps, NULL, 50, w, 0.5, &a));
    CHECK_OK(pl_eval_metrics(&ps, dup, k, 0.5, &b));
    for (int m = 0; m < PL_M_COUNT; m++)
        CHECK(fabs(a.v[m] - b.v[m]) <= 1e-13, "weighted %s = %.17g, duplicated %.17g", pl_metric_name(m), a.v[m], b.v[m]);
    uint32_t zero[50] = {0};
    CHECK(pl_eval_metrics_weighted(&ps, NULL, 50, zero, 0.5, &a) == PL_ERR_INVALID, "all-zero weights accepted");
    pl_preds_free(&ps);
}

static void test_bootstrap(void) {
    pl_preds small = {0}, big = {0};
    synth(&small, 200, 11, "s");
    synth(&big, 5000, 12, "b");
    pl_boot_opts o = pl_boot_defaults();
    o.seed = 42;
    pl_ci c1[PL_M_COUNT], c2[PL_M_COUNT], c3[PL_M_COUNT], cb[PL_M_COUNT];
    int nt = pl_num_threads();
    pl_set_num_threads(1);
    CHECK_OK(pl_eval_bootstrap(&small, NULL, small.n, 0.5, &o, c1));
    pl_set_num_threads(3);
    CHECK_OK(pl_eval_bootstrap(&small, NULL, small.n, 0.5, &o, c2));
    pl_set_num_threads(nt);
    int same = 1;
    for (int k = 0; k < PL_M_COUNT; k++) same &= c1[k].lo == c2[k].lo && c1[k].hi == c2[k].hi;
    CHECK(same, "bootstrap differs between 1 and 3 threads");
    o.seed = 43;
    CHECK_OK(pl_eval_bootstrap(&small, NULL, small.n, 0.5, &o, c3));
    CHECK(c3[PL_M_F1].lo != c1[PL_M_F1].lo || c3[PL_M_F1].hi != c1[PL_M_F1].hi, "seed does not change the resamples");
    pl_metrics m;
    CHECK_OK(pl_eval_metrics(&small, NULL, small.n, 0.5, &m));
    for (int k = 0; k < PL_M_COUNT; k++) {
        CHECK(c1[k].lo <= m.v[k] && m.v[k] <= c1[k].hi, "%s = %.4f outside its CI [%.4f, %.4f]", pl_metric_name(k), m.v[k],
              c1[k].lo, c1[k].hi);
        CHECK(c1[k].n_defined == o.n_boot, "%s defined in %lld of %lld resamples", pl_metric_name(k),
              (long long)c1[k].n_defined, (long long)o.n_boot);
    }
    /* 25x the data: the interval shrinks by about 5x; require at least 2.5x. */
    o.seed = 42;
    CHECK_OK(pl_eval_bootstrap(&big, NULL, big.n, 0.5, &o, cb));
    for (int k = 0; k < PL_M_COUNT; k++) {
        if (k == PL_M_ECE) continue; /* ECE is biased upward at small n; its width need not scale */
        double ws = c1[k].hi - c1[k].lo, wb = cb[k].hi - cb[k].lo;
        CHECK(wb > 0 && wb * 2.5 < ws, "%s: CI width %.4f at n=5000 vs %.4f at n=200", pl_metric_name(k), wb, ws);
    }
    /* A perfect classifier: every resample is perfect, CI = [1, 1]. */
    pl_preds perf = {0};
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        push(&perf, id, "p", i % 2, i % 2 ? 0.9 : 0.1, i % 2 ? 2.0 : -2.0);
    }
    CHECK_OK(pl_eval_bootstrap(&perf, NULL, perf.n, 0.5, &o, c3));
    CHECK(c3[PL_M_F1].lo == 1 && c3[PL_M_F1].hi == 1 && c3[PL_M_ROC_AUC].lo == 1, "perfect CI [%g, %g]", c3[PL_M_F1].lo,
          c3[PL_M_F1].hi);
    /* One class only: ROC-AUC undefined in every resample -> null CI. */
    for (size_t i = 0; i < perf.n; i++) perf.v[i].label = 0;
    CHECK_OK(pl_eval_bootstrap(&perf, NULL, perf.n, 0.5, &o, c3));
    CHECK(c3[PL_M_ROC_AUC].n_defined == 0 && isnan(c3[PL_M_ROC_AUC].lo), "one-class ROC-AUC CI should be undefined");
    CHECK(!isnan(c3[PL_M_ACCURACY].lo), "one-class accuracy CI should be defined");
    o.n_boot = 1;
    CHECK(pl_eval_bootstrap(&perf, NULL, perf.n, 0.5, &o, c3) == PL_ERR_INVALID, "n_boot = 1 accepted");
    pl_preds_free(&perf);
    pl_preds_free(&small);
    pl_preds_free(&big);
}

static void test_degenerate(void) {
    pl_preds ps = {0};
    pl_metrics m;
    CHECK(pl_eval_metrics(&ps, NULL, 0, 0.5, &m) == PL_ERR_INVALID, "empty set accepted");
    push(&ps, "a", "s", 0, 0.2, -1.4);
    push(&ps, "b", "s", 0, 0.3, -0.8);
    CHECK_OK(pl_eval_metrics(&ps, NULL, ps.n, 0.5, &m));
    CHECK(m.v[PL_M_ACCURACY] == 1 && m.v[PL_M_PRECISION] == 0 && m.note[PL_M_PRECISION] && m.v[PL_M_RECALL] == 0 &&
              m.note[PL_M_RECALL] && m.v[PL_M_F1] == 0 && m.v[PL_M_MACRO_F1] == 0.5 && m.v[PL_M_MCC] == 0 &&
              m.note[PL_M_MCC] && isnan(m.v[PL_M_ROC_AUC]) && m.v[PL_M_PR_AUC] == 0 && m.note[PL_M_PR_AUC],
          "all-negative, all-correct set: conventions not applied");
    /* JSON: undefined is null with a note. */
    cJSON *j = pl_metrics_to_json(&m, NULL, NULL);
    cJSON *auc = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metrics"), "roc_auc");
    CHECK(auc && cJSON_IsNull(auc) && cJSON_GetObjectItem(cJSON_GetObjectItem(j, "notes"), "roc_auc"),
          "roc_auc should be null with a note in JSON");
    char *txt = cJSON_PrintUnformatted(j);
    CHECK(txt && !strstr(txt, "nan") && !strstr(txt, "NaN"), "JSON holds NaN: %s", txt ? txt : "");
    cJSON_free(txt);
    cJSON_Delete(j);
    double t;
    CHECK(pl_eval_tune_threshold(&ps, &t, NULL) == PL_ERR_INVALID && strstr(pl_errmsg(), "both classes"),
          "tuning on one class: %s", pl_errmsg());
    /* Report with a one-class validation set: tuned section carries a note. */
    pl_preds test = {0};
    synth(&test, 100, 5, "t");
    pl_eval_opts o = pl_eval_defaults();
    o.boot.n_boot = 50;
    cJSON *r = NULL;
    CHECK_OK(pl_eval_report(&test, &ps, &o, &r));
    cJSON *tn = cJSON_GetObjectItem(r, "tuned_threshold");
    CHECK(tn && cJSON_IsNull(cJSON_GetObjectItem(tn, "threshold")) && cJSON_GetObjectItem(tn, "note"),
          "one-class validation: tuned_threshold should be null with a note");
    cJSON_Delete(r);
    pl_preds_free(&test);
    pl_preds_free(&ps);
}

static void test_temperature(void) {
    /* Labels drawn from sigmoid(s / 2.5): the fitted T should be near 2.5. */
    pl_preds ps = {0};
    pl_rng r;
    pl_rng_seed(&r, 9);
    for (int i = 0; i < 20000; i++) {
        double s = 6 * (double)pl_rng_normal(&r);
        int y = pl_rng_uniform(&r) < sigm(s / 2.5);
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        push(&ps, id, "t", y, sigm(s), s);
    }
    double T, nb, na;
    int ab;
    CHECK_OK(pl_eval_fit_temperature(&ps, &T, &ab, &nb, &na));
    CHECK(fabs(T - 2.5) < 0.15 && !ab && na < nb, "T = %g (want ~2.5), nll %g -> %g", T, nb, na);
    /* The NLL is minimal at T: slightly off either side is worse. */
    CHECK(pl_eval_nll(&ps, T * 1.001) > na && pl_eval_nll(&ps, T / 1.001) > na, "NLL not minimal at the fitted T");
    pl_preds cal;
    CHECK_OK(pl_preds_apply_temperature(&ps, T, &cal));
    CHECK_NEAR(cal.v[7].p_phish, sigm(ps.v[7].score / T), 1e-15);
    pl_preds_free(&cal);
    pl_preds_free(&ps);
    /* Separable data: T runs to its lower bound. */
    pl_preds sep = {0};
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", i);
        push(&sep, id, "t", i % 2, i % 2 ? 0.9 : 0.1, i % 2 ? 2.0 : -2.0);
    }
    CHECK_OK(pl_eval_fit_temperature(&sep, &T, &ab, NULL, NULL));
    CHECK(ab && T == PL_TEMP_MIN, "separable data: T = %g, at_bound %d", T, ab);
    pl_preds_free(&sep);
}

/* ---- files ---------------------------------------------------------------- */

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    fclose(f);
    return 1;
}

static void test_io(void) {
    char p1[512], p2[512];
    pl_preds ps = {0}, back = {0};
    synth(&ps, 20, 1, "io");
    ps.v[0].has_url = 1;
    ps.v[0].html = 0;
    ps.v[0].length = 1234;
    ps.v[0].link_mismatch = 1;
    ps.v[1].score = 1e-300;
    ps.v[2].p_phish = 1.0;
    CHECK_OK(pl_preds_write_jsonl(tpath(p1, sizeof p1, "p.jsonl"), &ps));
    CHECK_OK(pl_preds_read_jsonl(p1, &back));
    int same = back.n == ps.n;
    for (size_t i = 0; same && i < ps.n; i++) {
        const pl_pred *a = &ps.v[i], *b = &back.v[i];
        same = !strcmp(a->id, b->id) && !strcmp(a->source, b->source) && a->label == b->label &&
               a->p_phish == b->p_phish && a->score == b->score && a->pred == b->pred && a->has_url == b->has_url &&
               a->html == b->html && a->length == b->length && a->link_mismatch == b->link_mismatch;
    }
    CHECK(same, "predictions do not round-trip exactly");
    pl_preds_free(&back);

    /* Bad lines: each error names the line and the field. */
    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":2,\"p_phish\":0.5}\n", ":1: field \"label\""},
        {"\n{\"source\":\"s\",\"label\":1,\"p_phish\":0.5}\n", ":2: missing field \"id\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"p_phish\":1.5}\n", "\"p_phish\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"score\":\"x\"}\n", "\"score\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"score\":1e999}\n", "\"score\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1}\n", "needs \"p_phish\" or \"score\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"p_phish\":0.5,\"length\":-3}\n", "\"length\""},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"p_phish\":0.5,\"html\":\"yes\"}\n", "\"html\""},
        {"[1,2]\n", ":1: column"},
        {"{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"p_phish\":0.5}\n{\"id\":\"a\",\"source\":\"s\",\"label\":0,\"p_phish\":0.1}\n",
         "appears twice"},
        {"", "no predictions"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(tpath(p2, sizeof p2, "bad.jsonl"), bad[i].text);
        pl_preds x = {0};
        pl_status st = pl_preds_read_jsonl(p2, &x);
        CHECK(st == PL_ERR_FORMAT && strstr(pl_errmsg(), bad[i].want) && strstr(pl_errmsg(), "bad.jsonl"),
              "bad case %zu: %s: '%s' (want '%s')", i, pl_status_str(st), pl_errmsg(), bad[i].want);
        pl_preds_free(&x);
    }
    /* Derived fields: score only -> p = sigmoid(score); p only -> score = logit(p). */
    write_text(p2, "{\"id\":\"a\",\"source\":\"s\",\"label\":1,\"score\":2}\n{\"id\":\"b\",\"source\":\"s\",\"label\":0,\"p_phish\":0.25}\n");
    pl_preds d = {0};
    CHECK_OK(pl_preds_read_jsonl(p2, &d));
    CHECK(d.n == 2 && fabs(d.v[0].p_phish - sigm(2)) < 1e-16 && fabs(d.v[1].score - log(1.0 / 3)) < 1e-15 &&
              d.v[0].pred == 1 && d.v[1].pred == 0,
          "derived p/score wrong");
    pl_preds_free(&d);

    /* Atomic write into a missing directory: error and nothing left behind. */
    char nodir[512];
    snprintf(nodir, sizeof nodir, "%s/missing/p.jsonl", tmpdir);
    CHECK(pl_preds_write_jsonl(nodir, &ps) == PL_ERR_IO, "write into a missing dir should fail");
    struct stat sb;
    CHECK(stat(nodir, &sb) != 0, "partial output left at %.200s", nodir);

    /* run.json: round trip, extra fields kept, train_set split on '+'. */
    write_text(tpath(p2, sizeof p2, "run.json"),
               "{\"model\":\"llama\",\"train_set\":\"enron+nazario\",\"adapter\":\"a.gguf\",\"seed\":7}");
    pl_run_info ri;
    CHECK_OK(pl_run_info_read(p2, &ri));
    CHECK(ri.n_train_sources == 2 && pl_run_info_trained_on(&ri, "enron") && pl_run_info_trained_on(&ri, "nazario") &&
              !pl_run_info_trained_on(&ri, "spamassassin"),
          "train_set split: %zu sources", ri.n_train_sources);
    CHECK_OK(pl_run_info_write(tpath(p1, sizeof p1, "run2.json"), &ri));
    pl_run_info r2;
    CHECK_OK(pl_run_info_read(p1, &r2));
    cJSON *seed = cJSON_GetObjectItem(r2.extra, "seed");
    CHECK(!strcmp(r2.model, "llama") && !strcmp(r2.adapter, "a.gguf") && r2.n_train_sources == 2 && seed &&
              seed->valuedouble == 7,
          "run.json round trip lost fields");
    pl_run_info_free(&ri);
    pl_run_info_free(&r2);
    write_text(p2, "{\"train_set\":\"x\"}");
    CHECK(pl_run_info_read(p2, &ri) == PL_ERR_FORMAT && strstr(pl_errmsg(), "\"model\""), "run.json without model: %s",
          pl_errmsg());
    write_text(p2, "{\"model\":\"m\",\"train_sources\":[1]}");
    CHECK(pl_run_info_read(p2, &ri) == PL_ERR_FORMAT, "non-string train_sources accepted");
    pl_preds_free(&ps);
}

/* ---- slices and reports ------------------------------------------------- */

static void test_slices(void) {
    pl_preds ps = {0};
    synth(&ps, 300, 21, "x");
    for (size_t i = 0; i < ps.n; i++) {
        free(ps.v[i].source);
        ps.v[i].source = strdup(i % 3 ? "enron" : "nazario");
        ps.v[i].has_url = (int)(i % 2);
        ps.v[i].length = (int64_t)(i * 40);
    }
    pl_eval_opts o = pl_eval_defaults();
    o.boot.n_boot = 100;
    cJSON *r = NULL;
    CHECK_OK(pl_eval_report(&ps, NULL, &o, &r));
    cJSON *sl = cJSON_GetObjectItem(r, "slices");
    cJSON *naz = cJSON_GetObjectItem(cJSON_GetObjectItem(sl, "source"), "nazario");
    size_t idx[100], k = 0;
    for (size_t i = 0; i < ps.n; i += 3) idx[k++] = i;
    pl_metrics m;
    pl_eval_metrics(&ps, idx, k, 0.5, &m);
    cJSON *f1 = naz ? cJSON_GetObjectItem(cJSON_GetObjectItem(naz, "metrics"), "f1") : NULL;
    CHECK(f1 && f1->valuedouble == m.v[PL_M_F1] && cJSON_GetObjectItem(naz, "n")->valuedouble == 100,
          "slice source=nazario does not match the subset metrics");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(sl, "has_url"), "true") &&
              cJSON_GetObjectItem(cJSON_GetObjectItem(sl, "length"), "<500") &&
              cJSON_GetObjectItem(cJSON_GetObjectItem(sl, "length"), ">=10000") && !cJSON_GetObjectItem(sl, "html"),
          "slice dimensions wrong (has_url, length present; html absent)");
    cJSON_Delete(r);
    pl_preds_free(&ps);
}

/* ---- matrix --------------------------------------------------------------- */

/* Emails for one (run, source) with tp, fp, fn, tn given counts. */
static void cell_preds(pl_preds *ps, const char *src, int tp, int fp, int fn, int tn) {
    int k = 0;
    char id[32];
    int counts[4] = {tp, fp, fn, tn}, ys[4] = {1, 0, 1, 0};
    double pp[4] = {0.9, 0.8, 0.2, 0.1};
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < counts[c]; i++) {
            snprintf(id, sizeof id, "%s-%d", src, k++);
            push(ps, id, src, ys[c], pp[c], log(pp[c] / (1 - pp[c])));
        }
}

static void write_run(const char *dir, const char *model, const char *train_set, const int cells[3][4]) {
    char p[512];
    pl_mkdirs(dir);
    snprintf(p, sizeof p, "%s/run.json", dir);
    char txt[256];
    snprintf(txt, sizeof txt, "{\"model\":\"%s\",\"train_set\":\"%s\"}", model, train_set);
    write_text(p, txt);
    const char *srcs[3] = {"a", "b", "c"};
    pl_preds ps = {0};
    for (int s = 0; s < 3; s++) cell_preds(&ps, srcs[s], cells[s][0], cells[s][1], cells[s][2], cells[s][3]);
    snprintf(p, sizeof p, "%s/predictions.jsonl", dir);
    pl_preds_write_jsonl(p, &ps);
    pl_preds_free(&ps);
}

static void test_matrix(void) {
    /* LOSO over sources a, b, c. F1 = 2tp/(2tp+fp+fn):
     * run 1 (train b+c): a 2*6/(12+2+2)=0.75, b 2*9/(18+1+1)=0.9, c 2*8/(16+2+2)=0.8 */
    char d1[512], d2[512], d3[512];
    snprintf(d1, sizeof d1, "%s/r1", tmpdir);
    snprintf(d2, sizeof d2, "%s/r2", tmpdir);
    snprintf(d3, sizeof d3, "%s/r3", tmpdir);
    const int r1[3][4] = {{6, 2, 2, 10}, {9, 1, 1, 9}, {8, 2, 2, 8}};
    const int r2[3][4] = {{9, 1, 1, 9}, {4, 2, 4, 10}, {8, 2, 2, 8}};  /* b: 8/(8+6)=4/7 */
    const int r3[3][4] = {{9, 1, 1, 9}, {9, 1, 1, 9}, {5, 5, 5, 5}};   /* c: 10/20=0.5 */
    write_run(d1, "m", "b+c", r1);
    write_run(d2, "m", "a+c", r2);
    write_run(d3, "m", "a+b", r3);
    const char *dirs[3] = {d1, d2, d3};
    pl_boot_opts o = pl_boot_defaults();
    o.n_boot = 200;
    pl_matrix m;
    CHECK_OK(pl_matrix_build(dirs, 3, 0.5, &o, &m));
    CHECK(m.n_rows == 3 && m.n_cols == 3 && m.is_loso, "matrix %zux%zu loso %d", m.n_rows, m.n_cols, m.is_loso);
    if (m.n_rows == 3 && m.n_cols == 3) {
        CHECK_NEAR(m.rows[0].cells[0].f1, 0.75, 1e-15);
        CHECK_NEAR(m.rows[0].cells[1].f1, 0.9, 1e-15);
        CHECK_NEAR(m.rows[1].cells[1].f1, 4.0 / 7, 1e-15);
        CHECK_NEAR(m.rows[2].cells[2].f1, 0.5, 1e-15);
        CHECK(!m.rows[0].cells[0].in_domain && m.rows[0].cells[1].in_domain && m.rows[0].loso_col == 0 &&
                  m.rows[1].loso_col == 1 && m.rows[2].loso_col == 2,
              "in-domain flags / LOSO columns wrong");
        CHECK_NEAR(m.rows[0].gap, (0.9 + 0.8) / 2 - 0.75, 1e-15);
        CHECK_NEAR(m.rows[1].gap, (0.9 + 0.8) / 2 - 4.0 / 7, 1e-15);
        const pl_matrix_cell *c = &m.rows[0].cells[0];
        CHECK(c->ci.lo <= c->f1 && c->f1 <= c->ci.hi && c->n == 20 && c->n_pos == 8, "cell a: n %lld, CI [%g, %g]",
              (long long)c->n, c->ci.lo, c->ci.hi);
        /* A cell's interval does not depend on the other runs given. */
        pl_matrix one;
        CHECK_OK(pl_matrix_build(dirs, 1, 0.5, &o, &one));
        CHECK(one.n_rows == 1 && one.rows[0].cells[0].ci.lo == c->ci.lo && one.rows[0].cells[0].ci.hi == c->ci.hi &&
                  !one.is_loso == 0,
              "cell CI changed when other runs were left out");
        pl_matrix_free(&one);
        char p[512];
        CHECK_OK(pl_matrix_write_csv(&m, tpath(p, sizeof p, "m.csv")));
        char *csv;
        size_t len;
        int lines = 0;
        if (!pl_read_file(p, &csv, &len)) {
            for (size_t i = 0; i < len; i++) lines += csv[i] == '\n';
            CHECK(strstr(csv, "m,b+c,a,0,20,8,0.75,") != NULL, "csv row for (m, b+c, a) missing");
            free(csv);
        }
        CHECK(lines == 10, "csv has %d lines, want 10", lines);
        cJSON *j = pl_matrix_to_json(&m);
        cJSON *lo = cJSON_GetObjectItem(j, "loso");
        cJSON *bm = cJSON_GetArrayItem(cJSON_GetObjectItem(lo, "by_model"), 0);
        CHECK(bm && fabs(cJSON_GetObjectItem(bm, "mean_held_out_f1")->valuedouble - (0.75 + 4.0 / 7 + 0.5) / 3) < 1e-15,
              "LOSO mean held-out F1 wrong");
        cJSON_Delete(j);
    }
    pl_matrix_free(&m);
    /* A zero-shot row (train_set "none"): no in-domain cell, so its gap is
     * undefined and the set of runs is no longer leave-one-source-out. */
    char d4[512];
    snprintf(d4, sizeof d4, "%s/r4", tmpdir);
    write_run(d4, "m0", "none", r1);
    const char *dirs4[4] = {d1, d2, d3, d4};
    CHECK_OK(pl_matrix_build(dirs4, 4, 0.5, &o, &m));
    CHECK(m.n_rows == 4 && !m.is_loso, "zero-shot row: %zu rows, loso %d", m.n_rows, m.is_loso);
    if (m.n_rows == 4) {
        CHECK(isnan(m.rows[3].gap) && isnan(m.rows[3].mean_in) && m.rows[3].loso_col == -1,
              "zero-shot row gap should be undefined");
        CHECK_NEAR(m.rows[3].mean_out, (0.75 + 0.9 + 0.8) / 3, 1e-15);
        cJSON *j = pl_matrix_to_json(&m);
        cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "rows"), 3);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(row, "gap")) && cJSON_IsNull(cJSON_GetObjectItem(j, "loso")),
              "zero-shot gap / loso should be null in JSON");
        cJSON_Delete(j);
    }
    pl_matrix_free(&m);
    /* The same run dir twice: same emails scored twice in one row. */
    const char *twice[2] = {d1, d1};
    CHECK(pl_matrix_build(twice, 2, 0.5, &o, &m) == PL_ERR_FORMAT && strstr(pl_errmsg(), "scored twice"),
          "duplicate run accepted: %s", pl_errmsg());
}

int main(void) {
    T_BEGIN();
    make_tmpdir();
    cJSON *v = load_vectors();
    if (v) {
        test_sklearn(v);
        test_mcnemar(v);
        cJSON_Delete(v);
    }
    test_ece_hand();
    test_percentile();
    test_weights();
    test_bootstrap();
    test_degenerate();
    test_temperature();
    test_io();
    test_slices();
    test_matrix();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpdir);
    return T_END();
}

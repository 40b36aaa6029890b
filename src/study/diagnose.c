/* diagnose.c — the automated diagnosis of a study: for each (model,
 * training) the generalization gap with CIs, the SHAP features behind
 * out-of-domain errors cross-referenced with the source-distinctive tokens
 * of the data profile (shortcut candidates), the probe layer and the
 * components that carry the decision (interp), the label-noise audit; then
 * a cross-architecture comparison and a summary in which every sentence
 * carries its number and where it comes from.
 *
 * Parts whose inputs did not run are kept as {"status": "not run",
 * "reason": ...}; nothing is inferred from missing data.
 *
 * Gap: mean F1 over in-domain test corpora minus mean F1 over out-of-domain
 * ones (eval's matrix); the CIs shown are the per-cell percentile bootstrap
 * intervals of eval (docs/eval.md).
 */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "interp/interp.h"
#include "study/study_internal.h"

/* Probe accuracy above the majority-class rate needed to call the label
 * decodable (about two standard errors of an accuracy near 0.5 at n = 100). */
#define PROBE_MARGIN 0.1

static cJSON *read_json(const char *path) {
    if (!path) return NULL;
    char *data = NULL;
    size_t len = 0;
    if (pl_read_file(path, &data, &len)) {
        pl_error_clear();
        return NULL;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    return j;
}

/* The reason the task <stage>/<model>/<training> did not run, from the
 * not_run lines ("<task>: not run — <reason>"), or NULL. */
static const char *task_not_run(const pl_diag_inputs *in, const char *stage, const char *model, const char *training) {
    char name[600];
    int len = snprintf(name, sizeof name, "%s/%s/%s: not run \xe2\x80\x94 ", stage, model, training);
    if (len < 0 || (size_t)len >= sizeof name) return NULL;
    for (size_t k = 0; k < in->n_not_run; k++)
        if (!strncmp(in->not_run[k], name, (size_t)len)) return in->not_run[k] + len;
    return NULL;
}

static cJSON *not_run(const char *reason) {
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddStringToObject(o, "status", "not run");
    if (o) cJSON_AddStringToObject(o, "reason", reason);
    return o;
}

static double num_or(const cJSON *o, const char *k, double def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static const char *str_or(const cJSON *o, const char *k, const char *def) {
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* Add a summary sentence {text, evidence, cite}. */
static void say(cJSON *summary, const char *topic, const char *cite, const char *evidence, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void say(cJSON *summary, const char *topic, const char *cite, const char *evidence, const char *fmt, ...) {
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cJSON *s = cJSON_CreateObject();
    if (!s) return;
    cJSON_AddStringToObject(s, "topic", topic);
    cJSON_AddStringToObject(s, "text", text);
    cJSON_AddStringToObject(s, "evidence", evidence);
    cJSON_AddStringToObject(s, "cite", cite);
    cJSON_AddItemToArray(summary, s);
}

/* Names of the first k entries of an array of objects (field key) as
 * "a, b and c" into buf. */
static void name_list(const cJSON *arr, const char *key, size_t k, char *buf, size_t n) {
    buf[0] = 0;
    size_t m = 0, total = (size_t)cJSON_GetArraySize(arr);
    if (total > k) total = k;
    for (const cJSON *e = arr ? arr->child : NULL; e && m < total; e = e->next, m++) {
        const cJSON *v = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, key);
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", m == 0 ? "" : m + 1 == total ? " and " : ", ", cJSON_IsString(v) ? v->valuestring : "?");
    }
}

/* The components part of a run from its interp.json: the top heads and
 * MLPs by DLA class difference, the ablation check against random controls
 * and the patching summary; one summary sentence per ablation kind. */
static void components(cJSON *o, const cJSON *ij, const cJSON *dla, const cJSON *abl, const char *model,
                       const char *training, cJSON *summary) {
    cJSON *cj = cJSON_AddObjectToObject(o, "components");
    cJSON_AddStringToObject(cj, "status", "ran");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(dla, "top_heads"), *tm = cJSON_GetObjectItemCaseSensitive(dla, "top_mlps");
    cJSON *h = cJSON_AddArrayToObject(cj, "top_heads"), *m = cJSON_AddArrayToObject(cj, "top_mlps");
    int k = 0;
    for (const cJSON *e = th ? th->child : NULL; e && k < 5; e = e->next, k++) cJSON_AddItemToArray(h, cJSON_Duplicate(e, 1));
    k = 0;
    for (const cJSON *e = tm ? tm->child : NULL; e && k < 3; e = e->next, k++) cJSON_AddItemToArray(m, cJSON_Duplicate(e, 1));
    const cJSON *lens = cJSON_GetObjectItemCaseSensitive(ij, "lens");
    if (lens) {
        cJSON *lj = cJSON_AddObjectToObject(cj, "lens");
        cJSON_AddNumberToObject(lj, "layer", num_or(lens, "lens_layer", -1));
        cJSON_AddItemToObject(lj, "auc", pl_json_num_or_null(num_or(lens, "lens_layer_auc", NAN)));
        cJSON_AddBoolToObject(lj, "separates", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(lens, "separates")));
    }
    double n = num_or(abl, "n", 0);
    cJSON *aj = cJSON_AddObjectToObject(cj, "ablation");
    cJSON_AddNumberToObject(aj, "n", n);
    cJSON_AddBoolToObject(aj, "same_sample", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(abl, "same_sample")));
    cJSON_AddNumberToObject(aj, "controls", num_or(abl, "controls", 0));
    cJSON_AddStringToObject(aj, "rule", str_or(abl, "rule", ""));
    cJSON_AddItemToObject(aj, "f1_before", pl_json_num_or_null(num_or(abl, "f1_before", NAN)));
    static const char *kinds[2] = {"heads", "mlps"};
    for (int q = 0; q < 2; q++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(abl, kinds[q]);
        if (!a) continue;
        const cJSON *names = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a, "top"), "components");
        cJSON *e = cJSON_AddObjectToObject(aj, kinds[q]);
        cJSON_AddItemToObject(e, "components", names ? cJSON_Duplicate(names, 1) : cJSON_CreateArray());
        cJSON_AddItemToObject(e, "delta_f1", pl_json_num_or_null(num_or(a, "delta_f1", NAN)));
        cJSON_AddItemToObject(e, "control_min_delta_f1", pl_json_num_or_null(num_or(a, "control_min_delta_f1", NAN)));
        cJSON_AddItemToObject(e, "delta_separation", pl_json_num_or_null(num_or(a, "delta_separation", NAN)));
        cJSON_AddItemToObject(e, "control_min_delta_separation",
                              pl_json_num_or_null(num_or(a, "control_min_delta_separation", NAN)));
        int conf = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "confirmed"));
        cJSON_AddBoolToObject(e, "confirmed", conf);
        char list[256], ev[400];
        name_list(names, "component", 8, list, sizeof list);
        int kk = (int)num_or(a, "k", 0);
        snprintf(ev, sizeof ev,
                 "mean-ablating them: F1 change %+.3f vs at most %+.3f for %d random sets of %d %s; class separation "
                 "change %+.3f vs at most %+.3f; n = %d emails",
                 num_or(a, "delta_f1", NAN), num_or(a, "control_min_delta_f1", NAN), (int)num_or(abl, "controls", 0), kk,
                 q ? "MLPs" : "heads", num_or(a, "delta_separation", NAN), num_or(a, "control_min_delta_separation", NAN),
                 (int)n);
        int one = cJSON_GetArraySize(names) == 1;
        const char *what = q ? (one ? "MLP" : "MLPs") : (one ? "head" : "heads");
        if (conf)
            say(summary, "interp", "#sec-interp", ev,
                "For %s / %s the %s %s %s the decision (largest class difference in direct logit attribution), "
                "confirmed by ablation against random controls.",
                model, training, what, list, one ? "carries" : "carry");
        else
            say(summary, "interp", "#sec-interp", ev,
                "For %s / %s the %s %s %s the largest class difference in direct logit attribution, but ablating "
                "%s is not confirmed to matter more than ablating random %s.",
                model, training, what, list, one ? "writes" : "write", one ? "it" : "them", q ? "MLPs" : "heads");
    }
    cJSON_AddBoolToObject(cj, "confirmed", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(aj, "heads"), "confirmed")) ||
                                               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(aj, "mlps"), "confirmed")));
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(ij, "patching");
    if (pt) {
        cJSON *pj = cJSON_AddObjectToObject(cj, "patching");
        cJSON_AddStringToObject(pj, "status", str_or(pt, "status", "?"));
        if (cJSON_GetObjectItemCaseSensitive(pt, "reason")) cJSON_AddStringToObject(pj, "reason", str_or(pt, "reason", ""));
        cJSON_AddNumberToObject(pj, "n_pairs", num_or(pt, "n_pairs", 0));
        cJSON_AddNumberToObject(pj, "n_averaged", num_or(pt, "n_averaged", 0));
        /* the layer where restoring the hint's own tokens recovers most */
        pl_grid g;
        const cJSON *sg = cJSON_GetObjectItemCaseSensitive(pt, "segments");
        if (sg && !pl_grid_from_json(sg, "patching segments", &g)) {
            long best = -1;
            double bv = -INFINITY;
            for (size_t r = 0; r < g.n_rows && g.n_cols > 0; r++)
                if (isfinite(PL_GRID(&g, r, 0)) && PL_GRID(&g, r, 0) > bv) bv = PL_GRID(&g, r, 0), best = (long)r;
            if (best >= 0) {
                cJSON_AddNumberToObject(pj, "best_hint_layer", (double)best);
                cJSON_AddNumberToObject(pj, "best_hint_recovery", bv);
                char ev[256];
                snprintf(ev, sizeof ev, "recovery %.2f at layer %ld (mean over %d pairs of the largest recovery on the hint tokens)",
                         bv, best, (int)num_or(pt, "n_averaged", 0));
                say(summary, "interp", "#sec-interp", ev,
                    "For %s / %s, writing the clean residual back at the planted text's tokens restores %.0f%% of the "
                    "score difference the text makes, at best at layer %ld.",
                    model, training, 100.0 * bv, best);
            }
            pl_grid_free(&g);
        } else pl_error_clear();
    }
}

/* Does `key` occur as a word of the hint text (case-insensitive)? */
static int word_in(const char *hint, const char *key) {
    pl_study_words ws;
    if (!hint || !hint[0] || pl_study_words_of(hint, &ws)) return 0;
    int found = 0;
    for (size_t i = 0; i < ws.n && !found; i++) found = !strcmp(ws.w[i], key);
    pl_study_words_free(&ws);
    return found;
}

typedef struct {
    const cJSON *j;
    const char *key, *source;
    double z, mean_abs, rank, g_rank;
    int runs, g_runs;
    long group;
    const char *group_key; /* the key of the group's first member (set before sorting) */
} cand_t;

static int cmp_cand(const void *a, const void *b) {
    const cand_t *x = a, *y = b;
    if (x->g_runs != y->g_runs) return x->g_runs > y->g_runs ? -1 : 1;
    if (x->g_rank != y->g_rank) return x->g_rank < y->g_rank ? -1 : 1;
    int c = strcmp(x->group_key, y->group_key);
    if (c) return c;
    if (x->runs != y->runs) return x->runs > y->runs ? -1 : 1;
    return strcmp(x->key, y->key);
}

pl_status pl_study_diagnose(const pl_diag_inputs *in, cJSON **out) {
    const pl_study_config *c = in->cfg;
    cJSON *d = cJSON_CreateObject(), *summary = cJSON_CreateArray(), *runs = cJSON_CreateArray();
    if (!d || !summary || !runs) {
        cJSON_Delete(d);
        cJSON_Delete(summary);
        cJSON_Delete(runs);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(d, "format", "phishlens-diagnosis");
    cJSON_AddStringToObject(d, "study", c->name);
    cJSON_AddItemToObject(d, "runs", runs);
    pl_status st = PL_OK;

    /* ---- generalization matrix ---- */
    pl_matrix mx;
    memset(&mx, 0, sizeof mx);
    int have_matrix = 0;
    if (in->n_run_dirs > 0) {
        pl_boot_opts bo = pl_boot_defaults();
        bo.n_boot = c->n_boot;
        bo.seed = c->seed;
        st = pl_matrix_build(in->run_dirs, in->n_run_dirs, 0.5, &bo, &mx);
        if (st) goto done;
        have_matrix = 1;
        cJSON *mj = pl_matrix_to_json(&mx);
        if (mj) cJSON_AddItemToObject(d, "matrix", mj);
    } else {
        cJSON_AddItemToObject(d, "matrix", not_run("no eval task completed"));
    }

    /* ---- per (model, training) ---- */
    cJSON *explains = NULL;
    if (in->n_explain) explains = cJSON_CreateArray();
    for (size_t e = 0; e < in->n_explain && explains; e++) {
        cJSON *x = read_json(in->explain_json[e]);
        cJSON_AddItemToArray(explains, x ? x : cJSON_CreateNull());
    }
    cJSON *shortcuts = cJSON_CreateObject(); /* key -> {source, z, runs[]} */
    pl_buf hint_rows = {0};   /* "model / training (rank R)" of the rows whose SHAP ranking holds a hint word */
    int n_hint_rows = 0, n_hint_checked = 0;
    for (size_t r = 0; have_matrix && r < mx.n_rows; r++) {
        const pl_matrix_row *row = &mx.rows[r];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddItemToArray(runs, o);
        cJSON_AddStringToObject(o, "model", row->model);
        cJSON_AddStringToObject(o, "training", row->train_set);
        const char *family = str_or(row->info.extra, "family", "?");
        cJSON_AddStringToObject(o, "family", family);
        cJSON *gap = cJSON_AddObjectToObject(o, "gap");
        cJSON_AddItemToObject(gap, "mean_in", pl_json_num_or_null(row->mean_in));
        cJSON_AddItemToObject(gap, "mean_out", pl_json_num_or_null(row->mean_out));
        cJSON_AddItemToObject(gap, "gap", pl_json_num_or_null(row->gap));
        cJSON *cells = cJSON_AddArrayToObject(gap, "cells");
        const pl_matrix_cell *worst = NULL;
        size_t worst_col = 0;
        for (size_t k = 0; k < mx.n_cols; k++) {
            const pl_matrix_cell *cl = &row->cells[k];
            if (!cl->n) continue;
            cJSON *cj = cJSON_CreateObject();
            cJSON_AddStringToObject(cj, "test", mx.cols[k]);
            cJSON_AddItemToObject(cj, "f1", pl_json_num_or_null(cl->f1));
            cJSON_AddItemToObject(cj, "lo", pl_json_num_or_null(cl->ci.lo));
            cJSON_AddItemToObject(cj, "hi", pl_json_num_or_null(cl->ci.hi));
            cJSON_AddNumberToObject(cj, "n", (double)cl->n);
            cJSON_AddBoolToObject(cj, "in_domain", cl->in_domain);
            cJSON_AddItemToArray(cells, cj);
            if (!cl->in_domain && isfinite(cl->f1) && (!worst || cl->f1 < worst->f1)) {
                worst = cl;
                worst_col = k;
            }
        }
        char ev[256], cite[64] = "#sec-generalization";
        if (isfinite(row->gap)) {
            snprintf(ev, sizeof ev, "in-domain F1 %.3f, out-of-domain F1 %.3f, gap %.3f", row->mean_in, row->mean_out,
                     row->gap);
            if (row->gap >= 0)
                say(summary, "gap", cite, ev,
                    "%s trained %s loses %.1f F1 points out of domain (mean in-domain %.3f vs out-of-domain %.3f).",
                    row->model, row->train_set, 100.0 * row->gap, row->mean_in, row->mean_out);
            else
                say(summary, "gap", cite, ev,
                    "%s trained %s does %.1f F1 points better out of domain than in domain (%.3f vs %.3f).", row->model,
                    row->train_set, -100.0 * row->gap, row->mean_out, row->mean_in);
        }
        if (!isfinite(row->gap) && isfinite(row->mean_out)) {
            snprintf(ev, sizeof ev, "mean F1 %.3f over %zu test corpora", row->mean_out, mx.n_cols);
            say(summary, "gap", cite, ev, "%s %s (no test corpus in domain) reaches a mean F1 of %.3f.", row->model,
                row->train_set, row->mean_out);
        }
        if (worst) {
            snprintf(ev, sizeof ev, "F1 %.3f [%.3f, %.3f], n = %lld", worst->f1, worst->ci.lo, worst->ci.hi,
                     (long long)worst->n);
            say(summary, "gap", cite, ev, "Its weakest test corpus is %s.", mx.cols[worst_col]);
        }
        /* explanations of this row */
        const cJSON *x = NULL;
        for (const cJSON *it = explains ? explains->child : NULL; it; it = it->next)
            if (!strcmp(str_or(it, "model", ""), row->model) && !strcmp(str_or(it, "training", ""), row->train_set))
                x = it;
        if (!x) {
            const char *xr = task_not_run(in, "explain", row->model, row->train_set);
            cJSON_AddItemToObject(o, "ood_error_features", not_run(xr ? xr : "the explain stage did not run for this model"));
        } else {
            cJSON *f = cJSON_AddObjectToObject(o, "ood_error_features");
            const cJSON *ood = cJSON_GetObjectItemCaseSensitive(x, "ood_errors");
            const cJSON *sl = ood ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ood, "slices"), "all") : NULL;
            cJSON_AddNumberToObject(f, "n_explained", num_or(x, "n_ood_errors_explained", 0));
            cJSON_AddItemToObject(f, "top", sl ? cJSON_Duplicate(sl, 1) : cJSON_CreateArray());
            const cJSON *cand = cJSON_GetObjectItemCaseSensitive(x, "candidates_global");
            const cJSON *cand_ood = cJSON_GetObjectItemCaseSensitive(x, "candidates_ood_errors");
            cJSON_AddItemToObject(f, "shortcut_candidates", cand ? cJSON_Duplicate(cand, 1) : cJSON_CreateArray());
            cJSON_AddItemToObject(f, "ood_error_candidates", cand_ood ? cJSON_Duplicate(cand_ood, 1) : cJSON_CreateArray());
            if (num_or(x, "n_ood_errors_explained", 0) > 0 && sl && sl->child) {
                const cJSON *t0 = sl->child;
                snprintf(ev, sizeof ev, "mean |SHAP| %.3f over %d occurrences in %d explained out-of-domain errors",
                         num_or(t0, "mean_abs_phi", NAN), (int)num_or(t0, "count", 0),
                         (int)num_or(x, "n_ood_errors_explained", 0));
                say(summary, "ood", "#sec-explain", ev, "For %s / %s, the word that weighs most in out-of-domain errors is '%s'.",
                    row->model, row->train_set, str_or(t0, "key", "?"));
            }
            /* the planted shortcut (when the config names it) in this row's own SHAP ranking */
            const cJSON *gall = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x, "global"), "slices"), "all");
            if (c->shortcut_hint[0] && gall) {
                int rank = 0, k = 0;
                const cJSON *hit = NULL;
                for (const cJSON *it = gall->child; it && !hit; it = it->next) {
                    k++;
                    if (word_in(c->shortcut_hint, str_or(it, "key", ""))) {
                        hit = it;
                        rank = k;
                    }
                }
                n_hint_checked++;
                cJSON *hr = cJSON_AddObjectToObject(o, "shortcut_hint_rank");
                cJSON_AddNumberToObject(hr, "listed", cJSON_GetArraySize(gall));
                cJSON_AddNumberToObject(hr, "n_explained", num_or(x, "n_explained", 0));
                if (hit) {
                    cJSON_AddStringToObject(hr, "word", str_or(hit, "key", "?"));
                    cJSON_AddNumberToObject(hr, "rank", rank);
                    cJSON_AddNumberToObject(hr, "mean_abs_phi", num_or(hit, "mean_abs_phi", NAN));
                    snprintf(ev, sizeof ev, "rank %d of the %d words listed by mean |SHAP| (%.3f) over %d explained emails",
                             rank, cJSON_GetArraySize(gall), num_or(hit, "mean_abs_phi", NAN), (int)num_or(x, "n_explained", 0));
                    say(summary, "shortcut", "#sec-explain", ev,
                        "For %s / %s, the planted shortcut's word '%s' ranks %d by mean |SHAP| over all explained emails.",
                        row->model, row->train_set, str_or(hit, "key", "?"), rank);
                    pl_buf_printf(&hint_rows, "%s%s / %s (rank %d)", n_hint_rows ? ", " : "", row->model, row->train_set, rank);
                    n_hint_rows++;
                } else {
                    cJSON_AddNullToObject(hr, "rank");
                }
            }
            for (const cJSON *cd = cand ? cand->child : NULL; cd; cd = cd->next) {
                const char *key = str_or(cd, "key", NULL);
                if (!key) continue;
                cJSON *agg = cJSON_GetObjectItemCaseSensitive(shortcuts, key);
                if (!agg) {
                    agg = cJSON_AddObjectToObject(shortcuts, key);
                    cJSON_AddStringToObject(agg, "source", str_or(cd, "source", ""));
                    cJSON_AddNumberToObject(agg, "z", num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "source_log_odds_z", NAN));
                    cJSON_AddNumberToObject(agg, "best_rank", num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "rank_by_mean_abs_phi", 1e9));
                    cJSON_AddNumberToObject(agg, "mean_abs", num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "mean_abs_phi", NAN));
                    cJSON_AddArrayToObject(agg, "runs");
                }
                cJSON *br = cJSON_GetObjectItemCaseSensitive(agg, "best_rank");
                if (num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "rank_by_mean_abs_phi", 1e9) < br->valuedouble) {
                    cJSON_SetNumberValue(br, num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "rank_by_mean_abs_phi", 1e9));
                    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(agg, "mean_abs"), num_or(cJSON_GetObjectItemCaseSensitive(cd, "evidence"), "mean_abs_phi", NAN));
                }
                char rn[300];
                snprintf(rn, sizeof rn, "%s/%s", row->model, row->train_set);
                cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(agg, "runs"), cJSON_CreateString(rn));
            }
        }
        /* interp parts: the probe curve when the interp stage ran for this row */
        cJSON *ij = NULL;
        for (size_t k = 0; k < in->n_interp && !ij; k++) {
            cJSON *x2 = read_json(in->interp_json[k]);
            if (x2 && !strcmp(str_or(x2, "model", ""), row->model) && !strcmp(str_or(x2, "training", ""), row->train_set))
                ij = x2;
            else
                cJSON_Delete(x2);
        }
        const char *interp_why = task_not_run(in, "interp", row->model, row->train_set);
        const char *why = !strcmp(family, "lexical-nb") ? "not applicable to lexical-nb (no layers or heads)"
                          : interp_why                  ? interp_why
                                                        : "the interp stage did not run for this model and training";
        if (!ij) {
            cJSON_AddItemToObject(o, "probe_layer", not_run(why));
        } else {
            cJSON *pj = cJSON_AddObjectToObject(o, "probe_layer");
            cJSON_AddStringToObject(pj, "status", "ran");
            cJSON_AddNumberToObject(pj, "layer", num_or(ij, "probe_layer", -1));
            cJSON_AddNumberToObject(pj, "n_layers", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ij, "layers")));
            cJSON_AddNumberToObject(pj, "best_cv_accuracy", num_or(ij, "best_cv_accuracy", NAN));
            cJSON_AddNumberToObject(pj, "majority_baseline", num_or(ij, "majority_baseline", NAN));
            cJSON_AddNumberToObject(pj, "n", num_or(ij, "n", 0));
            snprintf(ev, sizeof ev, "probe CV accuracy %.3f vs majority %.3f, n = %d emails, layer %d of 0-%d",
                     num_or(ij, "best_cv_accuracy", NAN), num_or(ij, "majority_baseline", NAN), (int)num_or(ij, "n", 0),
                     (int)num_or(ij, "probe_layer", -1), cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ij, "layers")) - 1);
            /* a probe that does not beat the majority class by PROBE_MARGIN decodes nothing */
            int decodable = num_or(ij, "best_cv_accuracy", 0) >= num_or(ij, "majority_baseline", 1) + PROBE_MARGIN;
            cJSON_AddBoolToObject(pj, "decodable", decodable);
            if (decodable)
                say(summary, "interp", "#sec-interp", ev,
                    "For %s / %s the label becomes linearly decodable (probe accuracy within 0.01 of its best) at layer %d.",
                    row->model, row->train_set, (int)num_or(ij, "probe_layer", -1));
            else
                say(summary, "interp", "#sec-interp", ev,
                    "For %s / %s no layer's probe beats the majority class by %.2f: the label is not linearly decodable "
                    "from the residual stream at the answer position.",
                    row->model, row->train_set, PROBE_MARGIN);
        }
        const cJSON *dla = ij ? cJSON_GetObjectItemCaseSensitive(ij, "dla") : NULL;
        const cJSON *abl = ij ? cJSON_GetObjectItemCaseSensitive(ij, "ablation") : NULL;
        if (!dla || !abl)
            cJSON_AddItemToObject(o, "components",
                                  not_run(!strcmp(family, "lexical-nb") ? "not applicable to lexical-nb (no layers or heads)"
                                          : ij ? "the interp output has no DLA or ablation section (an older cache)"
                                               : why));
        else
            components(o, ij, dla, abl, row->model, row->train_set, summary);
        cJSON_Delete(ij);
    }

    /* ---- shortcut candidates across runs ----
     * Words with the same source, z and mean |SHAP| have identical
     * statistics (most likely one phrase, such as a footer line); they are grouped. Groups
     * are ranked by the number of runs in which a member is a candidate,
     * then by the best SHAP rank. */
    cJSON *sc = cJSON_AddArrayToObject(d, "shortcut_candidates");
    size_t n_cand = (size_t)cJSON_GetArraySize(shortcuts);
    cand_t *cv = calloc(n_cand ? n_cand : 1, sizeof *cv);
    if (!cv) {
        st = pl_error(PL_ERR_NOMEM, "out of memory");
        cJSON_Delete(shortcuts);
    pl_buf_free(&hint_rows);
        goto done;
    }
    size_t ci = 0;
    for (const cJSON *k = shortcuts ? shortcuts->child : NULL; k; k = k->next, ci++) {
        cv[ci].j = k;
        cv[ci].key = k->string;
        cv[ci].source = str_or(k, "source", "?");
        cv[ci].z = num_or(k, "z", NAN);
        cv[ci].mean_abs = num_or(k, "mean_abs", NAN);
        cv[ci].rank = num_or(k, "best_rank", 1e9);
        cv[ci].runs = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(k, "runs"));
        cv[ci].group = (long)ci;
    }
    for (size_t i = 0; i < n_cand; i++)
        for (size_t j = 0; j < i; j++)
            if (cv[j].group == (long)j && !strcmp(cv[i].source, cv[j].source) && fabs(cv[i].z - cv[j].z) < 1e-9 &&
                fabs(cv[i].mean_abs - cv[j].mean_abs) < 1e-9) {
                cv[i].group = (long)j;
                break;
            }
    for (size_t i = 0; i < n_cand; i++) {
        cand_t *g = &cv[cv[i].group];
        if (cv[i].runs > g->g_runs) g->g_runs = cv[i].runs;
        if (g->g_rank == 0 || cv[i].rank < g->g_rank) g->g_rank = cv[i].rank;
    }
    for (size_t i = 0; i < n_cand; i++) {
        cv[i].g_runs = cv[cv[i].group].g_runs;
        cv[i].g_rank = cv[cv[i].group].g_rank;
        cv[i].group_key = cv[cv[i].group].key;
    }
    qsort(cv, n_cand, sizeof *cv, cmp_cand);
    int hint_found = 0, n_hint = 0;
    const char *hint_key = NULL;
    int hint_runs = 0;
    size_t n_groups_said = 0;
    for (size_t i = 0; i < n_cand; i++) {
        cJSON *e = cJSON_Duplicate(cv[i].j, 1);
        if (!e) continue;
        cJSON_AddStringToObject(e, "key", cv[i].key);
        int matches = word_in(c->shortcut_hint, cv[i].key);
        cJSON_AddBoolToObject(e, "matches_hint", matches);
        cJSON_AddNumberToObject(e, "group_runs", cv[i].g_runs);
        n_hint += matches;
        if (matches && !hint_found) {
            hint_found = 1;
            hint_key = cv[i].key;
            hint_runs = cv[i].g_runs;
        }
        cJSON_AddItemToArray(sc, e);
        /* one sentence per group, for the top groups */
        if (i > 0 && cv[i].group_key == cv[i - 1].group_key) continue;
        if (n_groups_said >= 5) continue;
        n_groups_said++;
        char words[512] = "";
        size_t nw = 0;
        for (size_t j = i; j < n_cand && cv[j].group_key == cv[i].group_key; j++, nw++) {
            size_t l = strlen(words);
            snprintf(words + l, sizeof words - l, "%s'%s'", nw ? ", " : "", cv[j].key);
        }
        char ev[256];
        snprintf(ev, sizeof ev, "distinctive of %s with log-odds z = %.1f; best SHAP rank %d (mean |SHAP| %.3f); a candidate in %d run%s",
                 cv[i].source, cv[i].z, (int)cv[i].g_rank, cv[i].mean_abs, cv[i].g_runs, cv[i].g_runs == 1 ? "" : "s");
        if (nw > 1)
            say(summary, "shortcut", "#sec-explain", ev,
                "Likely shortcut: the words %s (identical statistics, so most likely one phrase) are distinctive of corpus "
                "%s, yet among the words the models weigh most.",
                words, cv[i].source);
        else
            say(summary, "shortcut", "#sec-explain", ev,
                "Likely shortcut: the word %s is distinctive of corpus %s, yet it is among the words the models weigh most.",
                words, cv[i].source);
    }
    free(cv);
    if (c->shortcut_hint[0]) {
        cJSON *h = cJSON_AddObjectToObject(d, "shortcut_hint");
        cJSON_AddStringToObject(h, "text", c->shortcut_hint);
        cJSON_AddBoolToObject(h, "found", hint_found);
        if (hint_key) cJSON_AddStringToObject(h, "matched_key", hint_key);
        if (hint_found) {
            char ev[256];
            snprintf(ev, sizeof ev, "%d of %zu shortcut candidates are words of the planted text; '%s' is a candidate in %d runs",
                     n_hint, n_cand, hint_key, hint_runs);
            say(summary, "shortcut", "#sec-explain", ev, "The diagnosis recovers the known planted shortcut \"%s\".", c->shortcut_hint);
        } else if (in->n_explain) {
            char ev[128];
            snprintf(ev, sizeof ev, "0 of %zu shortcut candidates are words of the known planted text", n_cand);
            say(summary, "shortcut", "#sec-explain", ev, "The known planted shortcut \"%s\" was not among the shortcut candidates.",
                c->shortcut_hint);
        }
        if (n_hint_checked) {
            char ev[128];
            snprintf(ev, sizeof ev, "%d of %d explained (model, training) rows", n_hint_rows, n_hint_checked);
            cJSON_AddNumberToObject(h, "rows_with_hint_word", n_hint_rows);
            cJSON_AddNumberToObject(h, "rows_explained", n_hint_checked);
            if (n_hint_rows)
                say(summary, "shortcut", "#sec-explain", ev,
                    "Words of the planted shortcut are among the top %zu SHAP words of %d of %d explained runs: %s.",
                    c->explain_top_k, n_hint_rows, n_hint_checked, (const char *)hint_rows.data);
            else
                say(summary, "shortcut", "#sec-explain", ev,
                    "No word of the planted shortcut is among the top %zu SHAP words of any of the %d explained runs.",
                    c->explain_top_k, n_hint_checked);
        }
    }
    cJSON_Delete(shortcuts);
    pl_buf_free(&hint_rows);

    /* ---- label-noise audit ---- */
    cJSON *audit = read_json(in->audit_json);
    if (audit) {
        cJSON_AddItemToObject(d, "audit", audit);
        char ev[256];
        snprintf(ev, sizeof ev, "%d of %d training emails flagged, estimated noise rate %.3f", (int)num_or(audit, "n_flagged", 0),
                 (int)num_or(audit, "n", 0), num_or(audit, "noise_rate", NAN));
        say(summary, "data", "#sec-data", ev, "Confident learning flags %.1f%% of the training emails as possibly mislabelled.",
            100.0 * num_or(audit, "n_flagged", 0) / fmax(1.0, num_or(audit, "n", 1)));
    } else {
        cJSON_AddItemToObject(d, "audit", not_run("the data profile task did not complete"));
    }
    cJSON *prof = read_json(in->profile_json);
    if (prof) {
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(prof, "source_separability");
        if (sep) {
            char ev[256];
            snprintf(ev, sizeof ev, "balanced accuracy %.3f vs chance %.3f (%d-fold naive Bayes)",
                     num_or(sep, "balanced_accuracy", NAN), num_or(sep, "chance_balanced", NAN), (int)num_or(sep, "folds", 0));
            say(summary, "data", "#sec-data", ev, "The corpora are easy to tell apart from their words alone.");
            cJSON_AddItemToObject(d, "source_separability", cJSON_Duplicate(sep, 1));
        }
        cJSON_Delete(prof);
    }

    /* ---- cross-architecture comparison ---- */
    {
        cJSON *xa = cJSON_CreateObject();
        const char *fams[8];
        size_t nf = 0;
        for (size_t r = 0; have_matrix && r < mx.n_rows; r++) {
            const char *f = str_or(mx.rows[r].info.extra, "family", "?");
            int seen = 0;
            for (size_t k = 0; k < nf; k++) seen |= !strcmp(fams[k], f);
            if (!seen && nf < 8) fams[nf++] = f;
        }
        if (nf < 2) {
            char why[256];
            snprintf(why, sizeof why, "needs results from at least two architectures; %zu produced results in this run", nf);
            cJSON_AddStringToObject(xa, "status", "not run");
            cJSON_AddStringToObject(xa, "reason", why);
        } else {
            cJSON_AddStringToObject(xa, "status", "ran");
            cJSON *rows = cJSON_AddArrayToObject(xa, "by_training");
            for (size_t r = 0; r < mx.n_rows; r++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "training", mx.rows[r].train_set);
                cJSON_AddStringToObject(e, "model", mx.rows[r].model);
                cJSON_AddStringToObject(e, "family", str_or(mx.rows[r].info.extra, "family", "?"));
                cJSON_AddItemToObject(e, "gap", pl_json_num_or_null(mx.rows[r].gap));
                cJSON_AddItemToObject(e, "mean_in", pl_json_num_or_null(mx.rows[r].mean_in));
                cJSON_AddItemToObject(e, "mean_out", pl_json_num_or_null(mx.rows[r].mean_out));
                cJSON_AddItemToArray(rows, e);
            }
        }
        cJSON_AddItemToObject(d, "cross_architecture", xa);
    }

    /* ---- what did not run ---- */
    cJSON *nr = cJSON_AddArrayToObject(d, "not_run");
    for (size_t k = 0; k < in->n_not_run; k++) cJSON_AddItemToArray(nr, cJSON_CreateString(in->not_run[k]));
    cJSON_AddItemToObject(d, "summary", summary);
    summary = NULL;
    cJSON_Delete(explains);
done:
    if (have_matrix) pl_matrix_free(&mx);
    cJSON_Delete(summary);
    if (st) {
        cJSON_Delete(d);
        return st;
    }
    *out = d;
    return PL_OK;
}

/* ---- the final stages: collect the inputs from the plan ---------------------- */

static int done(const pl_study_task *t) { return t->state == PL_TASK_RAN || t->state == PL_TASK_CACHED; }

pl_status pl_study_stage_final(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    size_t n = pl->n_tasks;
    char **run_dirs = calloc(n, sizeof *run_dirs), **ex = calloc(n, sizeof *ex), **nr = calloc(n, sizeof *nr);
    char **ij = calloc(n, sizeof *ij);
    size_t n_run = 0, n_ex = 0, n_nr = 0, n_ij = 0;
    pl_status st = run_dirs && ex && nr && ij ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !st; i++) {
        const pl_study_task *k = &pl->tasks[i];
        char path[PL_STUDY_NAME_MAX * 2];
        if (k->stage == PL_STAGE_EVAL && done(k)) {
            snprintf(path, sizeof path, "%s/%s", pl->out, k->dir);
            run_dirs[n_run++] = pl_study_strdup(path);
        } else if (k->stage == PL_STAGE_EXPLAIN && done(k)) {
            snprintf(path, sizeof path, "%s/%s/explain.json", pl->out, k->dir);
            ex[n_ex++] = pl_study_strdup(path);
        } else if (k->stage == PL_STAGE_INTERP && done(k)) {
            snprintf(path, sizeof path, "%s/%s/interp.json", pl->out, k->dir);
            ij[n_ij++] = pl_study_strdup(path);
        }
        if (k->stage < PL_STAGE_DIAGNOSE && (k->state == PL_TASK_UNAVAILABLE || k->state == PL_TASK_BLOCKED ||
                                             k->state == PL_TASK_FAILED)) {
            const char *why = k->state == PL_TASK_UNAVAILABLE ? k->unavailable : k->why ? k->why : "?";
            snprintf(path, sizeof path, "%s: not run — %s", k->name, why);
            nr[n_nr++] = pl_study_strdup(path);
        }
    }
    char prof[PL_STUDY_NAME_MAX * 2], aud[PL_STUDY_NAME_MAX * 2];
    const pl_study_task *pt = &pl->tasks[pl->profile_task];
    snprintf(prof, sizeof prof, "%s/%s/profile.json", pl->out, pt->dir);
    snprintf(aud, sizeof aud, "%s/%s/audit.json", pl->out, pt->dir);
    pl_diag_inputs in = {pl->cfg, (const char *const *)run_dirs, n_run, done(pt) ? prof : NULL, done(pt) ? aud : NULL,
                         (const char *const *)ex, n_ex, (const char *const *)ij, n_ij, (const char *const *)nr, n_nr};
    char dpath[PL_STUDY_NAME_MAX * 2];
    snprintf(dpath, sizeof dpath, "%s/%s/diagnosis.json", pl->out, pl->tasks[pl->diagnose_task].dir);
    if (!st && t->stage == PL_STAGE_DIAGNOSE) {
        cJSON *dj = NULL;
        st = pl_study_diagnose(&in, &dj);
        char *p = !st ? pl_study_path(dir, "diagnosis.json") : NULL;
        if (!st) st = p ? pl_json_write_atomic(p, dj) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(p);
        cJSON_Delete(dj);
    } else if (!st) {
        cJSON *dj = done(&pl->tasks[pl->diagnose_task]) ? read_json(dpath) : NULL;
        st = pl_study_report(&in, dj, dir);
        cJSON_Delete(dj);
    }
    for (size_t i = 0; i < n; i++) {
        if (run_dirs) free(run_dirs[i]);
        if (ex) free(ex[i]);
        if (nr) free(nr[i]);
        if (ij) free(ij[i]);
    }
    free(ij);
    free(run_dirs);
    free(ex);
    free(nr);
    return st;
}

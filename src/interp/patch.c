/* patch.c — activation-patching metric, result grids (heatmap JSON and text
 * summaries), ablation bookkeeping, direction removal and attention
 * summaries.
 *
 * Patching metric: normalized logit-difference recovery
 *   (patched - corrupted) / (clean - corrupted)
 * (Meng et al. 2022 "Locating and Editing Factual Associations in GPT";
 * Heimersheim & Nanda 2024 "How to use and interpret activation patching"):
 * 0 = the patch restores nothing, 1 = it restores the clean score.
 * Ablations: mean ablation replaces an activation by its dataset mean;
 * resample ablation by the activation of another example (Chan et al. 2022,
 * causal scrubbing). Direction removal: x - (x.u)u (as in INLP / LEACE-style
 * erasure, without the fitting).
 */
#include "interp.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- grids ------------------------------------------------------------------ */

pl_status pl_grid_init(pl_grid *g, size_t n_rows, size_t n_cols, const char *title) {
    memset(g, 0, sizeof *g);
    size_t n;
    if (!pl_mul_ok(n_rows, n_cols, &n)) return pl_error(PL_ERR_RANGE, "grid %zu x %zu too large", n_rows, n_cols);
    g->rows = calloc(n_rows ? n_rows : 1, sizeof *g->rows);
    g->cols = calloc(n_cols ? n_cols : 1, sizeof *g->cols);
    g->values = malloc((n ? n : 1) * sizeof *g->values);
    g->title = title ? strdup(title) : NULL;
    if (!g->rows || !g->cols || !g->values || (title && !g->title)) {
        pl_grid_free(g);
        return pl_error(PL_ERR_NOMEM, "grid: out of memory");
    }
    g->n_rows = n_rows;
    g->n_cols = n_cols;
    for (size_t i = 0; i < n; i++) g->values[i] = NAN;
    return PL_OK;
}

static pl_status set_label(char **slot, const char *label) {
    char *c = strdup(label ? label : "");
    if (!c) return pl_error(PL_ERR_NOMEM, "grid: out of memory");
    free(*slot);
    *slot = c;
    return PL_OK;
}

pl_status pl_grid_set_row(pl_grid *g, size_t i, const char *label) {
    if (i >= g->n_rows) return pl_error(PL_ERR_RANGE, "grid: row %zu of %zu", i, g->n_rows);
    return set_label(&g->rows[i], label);
}
pl_status pl_grid_set_col(pl_grid *g, size_t j, const char *label) {
    if (j >= g->n_cols) return pl_error(PL_ERR_RANGE, "grid: column %zu of %zu", j, g->n_cols);
    return set_label(&g->cols[j], label);
}

pl_status pl_grid_label_rows(pl_grid *g, const char *prefix) {
    char b[64];
    for (size_t i = 0; i < g->n_rows; i++) {
        snprintf(b, sizeof b, "%s%zu", prefix ? prefix : "", i);
        pl_status st = set_label(&g->rows[i], b);
        if (st != PL_OK) return st;
    }
    return PL_OK;
}
pl_status pl_grid_label_cols(pl_grid *g, const char *prefix) {
    char b[64];
    for (size_t j = 0; j < g->n_cols; j++) {
        snprintf(b, sizeof b, "%s%zu", prefix ? prefix : "", j);
        pl_status st = set_label(&g->cols[j], b);
        if (st != PL_OK) return st;
    }
    return PL_OK;
}

void pl_grid_free(pl_grid *g) {
    if (g->rows)
        for (size_t i = 0; i < g->n_rows; i++) free(g->rows[i]);
    if (g->cols)
        for (size_t j = 0; j < g->n_cols; j++) free(g->cols[j]);
    free(g->rows);
    free(g->cols);
    free(g->values);
    free(g->title);
    memset(g, 0, sizeof *g);
}

cJSON *pl_grid_json(const pl_grid *g) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    if (g->title) cJSON_AddStringToObject(j, "title", g->title);
    cJSON *rows = cJSON_AddArrayToObject(j, "rows"), *cols = cJSON_AddArrayToObject(j, "cols"),
          *vals = cJSON_AddArrayToObject(j, "values");
    if (!rows || !cols || !vals) {
        cJSON_Delete(j);
        return NULL;
    }
    for (size_t i = 0; i < g->n_rows; i++) cJSON_AddItemToArray(rows, cJSON_CreateString(g->rows[i] ? g->rows[i] : ""));
    for (size_t c = 0; c < g->n_cols; c++) cJSON_AddItemToArray(cols, cJSON_CreateString(g->cols[c] ? g->cols[c] : ""));
    for (size_t i = 0; i < g->n_rows; i++) {
        cJSON *row = cJSON_CreateArray();
        for (size_t c = 0; c < g->n_cols; c++) {
            double v = PL_GRID(g, i, c);
            cJSON_AddItemToArray(row, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(vals, row);
    }
    return j;
}

pl_status pl_grid_from_json(const cJSON *j, const char *what, pl_grid *g) {
    memset(g, 0, sizeof *g);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows"), *cols = cJSON_GetObjectItemCaseSensitive(j, "cols"),
                *vals = cJSON_GetObjectItemCaseSensitive(j, "values"), *t = cJSON_GetObjectItemCaseSensitive(j, "title");
    if (!cJSON_IsArray(rows) || !cJSON_IsArray(cols) || !cJSON_IsArray(vals))
        return pl_error(PL_ERR_FORMAT, "%s: need arrays \"rows\", \"cols\" and \"values\"", what);
    size_t nr = (size_t)cJSON_GetArraySize(rows), nc = (size_t)cJSON_GetArraySize(cols);
    if ((size_t)cJSON_GetArraySize(vals) != nr)
        return pl_error(PL_ERR_FORMAT, "%s: \"values\" has %d rows, \"rows\" %zu", what, cJSON_GetArraySize(vals), nr);
    pl_status st = pl_grid_init(g, nr, nc, cJSON_IsString(t) ? t->valuestring : NULL);
    if (st != PL_OK) return st;
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, rows) {
        if (!cJSON_IsString(e)) { st = pl_error(PL_ERR_FORMAT, "%s: rows[%zu] is not a string", what, i); goto fail; }
        if ((st = pl_grid_set_row(g, i++, e->valuestring)) != PL_OK) goto fail;
    }
    i = 0;
    cJSON_ArrayForEach(e, cols) {
        if (!cJSON_IsString(e)) { st = pl_error(PL_ERR_FORMAT, "%s: cols[%zu] is not a string", what, i); goto fail; }
        if ((st = pl_grid_set_col(g, i++, e->valuestring)) != PL_OK) goto fail;
    }
    i = 0;
    cJSON_ArrayForEach(e, vals) {
        if (!cJSON_IsArray(e) || (size_t)cJSON_GetArraySize(e) != nc) {
            st = pl_error(PL_ERR_FORMAT, "%s: values[%zu] is not an array of %zu", what, i, nc);
            goto fail;
        }
        size_t c = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, e) {
            if (cJSON_IsNumber(v)) PL_GRID(g, i, c) = v->valuedouble;
            else if (cJSON_IsNull(v)) PL_GRID(g, i, c) = NAN;
            else { st = pl_error(PL_ERR_FORMAT, "%s: values[%zu][%zu] is not a number or null", what, i, c); goto fail; }
            c++;
        }
        i++;
    }
    return PL_OK;
fail:
    pl_grid_free(g);
    return st;
}

pl_status pl_interp_write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return pl_error(PL_ERR_NOMEM, "%s: cannot serialize JSON", path);
    pl_buf b = {0};
    pl_status st = pl_buf_printf(&b, "%s\n", s);
    cJSON_free(s);
    if (st == PL_OK) st = pl_write_file_atomic(path, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

typedef struct {
    double a;
    size_t i;
} absidx;
static int cmp_absidx(const void *x, const void *y) {
    const absidx *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? 1 : -1; /* descending */
    return (p->i > q->i) - (p->i < q->i);
}

pl_status pl_grid_summary(const pl_grid *g, size_t k, pl_buf *b) {
    size_t n = g->n_rows * g->n_cols, finite = 0, imin = 0, imax = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(g->values[i])) continue;
        if (!finite || g->values[i] < g->values[imin]) imin = i;
        if (!finite || g->values[i] > g->values[imax]) imax = i;
        finite++;
    }
    pl_status st = pl_buf_printf(b, "%s: %zu x %zu (%zu defined)\n", g->title ? g->title : "grid", g->n_rows,
                                 g->n_cols, finite);
    if (st != PL_OK || finite == 0) return st;
#define RL(i) (g->rows[(i) / g->n_cols] ? g->rows[(i) / g->n_cols] : "?")
#define CL(i) (g->cols[(i) % g->n_cols] ? g->cols[(i) % g->n_cols] : "?")
    st = pl_buf_printf(b, "  min %.4g at %s/%s, max %.4g at %s/%s\n", g->values[imin], RL(imin), CL(imin),
                       g->values[imax], RL(imax), CL(imax));
    absidx *v = malloc(finite * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "grid summary: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(g->values[i])) v[m].a = fabs(g->values[i]), v[m++].i = i;
    qsort(v, m, sizeof *v, cmp_absidx);
    for (size_t t = 0; t < k && t < m && st == PL_OK; t++)
        st = pl_buf_printf(b, "  #%zu %s/%s = %.4g\n", t + 1, RL(v[t].i), CL(v[t].i), g->values[v[t].i]);
#undef RL
#undef CL
    free(v);
    return st;
}

/* ---- patching metric ---------------------------------------------------------- */

double pl_patch_recovery(double clean, double corrupted, double patched) {
    double gap = clean - corrupted;
    if (!isfinite(gap) || !isfinite(patched) || fabs(gap) <= PL_PATCH_MIN_GAP) return NAN;
    return (patched - corrupted) / gap;
}

pl_status pl_patch_grid(double clean, double corrupted, const double *patched, size_t n_rows, size_t n_cols,
                        pl_grid *g, const char *title) {
    if (!isfinite(clean) || !isfinite(corrupted))
        return pl_error(PL_ERR_NUMERIC, "patching: clean %g / corrupted %g score not finite", clean, corrupted);
    if (fabs(clean - corrupted) <= PL_PATCH_MIN_GAP)
        return pl_error(PL_ERR_INVALID,
                        "patching: clean (%g) and corrupted (%g) scores differ by <= %g: recovery is undefined "
                        "(choose a corruption that changes the score)",
                        clean, corrupted, PL_PATCH_MIN_GAP);
    pl_status st = pl_grid_init(g, n_rows, n_cols, title);
    if (st != PL_OK) return st;
    for (size_t i = 0; i < n_rows * n_cols; i++) g->values[i] = pl_patch_recovery(clean, corrupted, patched[i]);
    return PL_OK;
}

/* ---- ablation ------------------------------------------------------------------- */

void pl_ablate_mean(const float *X, size_t n, size_t d, float *mean) {
    for (size_t k = 0; k < d; k++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)X[i * d + k];
        mean[k] = n ? (float)(s / (double)n) : 0.0f;
    }
}

pl_status pl_ablate_resample_idx(size_t n, const int *y, pl_resample_mode mode, uint64_t seed, size_t *idx) {
    if (n < 2) return pl_error(PL_ERR_INVALID, "resample ablation: needs at least 2 examples (have %zu)", n);
    if (mode != PL_RESAMPLE_ANY && !y) return pl_error(PL_ERR_INVALID, "resample ablation: label mode without labels");
    size_t *cand = malloc(n * sizeof *cand);
    if (!cand) return pl_error(PL_ERR_NOMEM, "resample ablation: out of memory");
    pl_rng master;
    pl_rng_seed(&master, seed);
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && st == PL_OK; i++) {
        pl_rng r = pl_rng_split(&master, (uint64_t)i); /* donor of i does not depend on the others */
        if (mode == PL_RESAMPLE_ANY) {
            size_t j = (size_t)pl_rng_below(&r, n - 1);
            idx[i] = j >= i ? j + 1 : j;
            continue;
        }
        size_t m = 0;
        for (size_t j = 0; j < n; j++)
            if (j != i && ((mode == PL_RESAMPLE_SAME_LABEL) == (y[j] == y[i]))) cand[m++] = j;
        if (m == 0) st = pl_error(PL_ERR_INVALID, "resample ablation: example %zu (label %d) has no eligible donor", i, y[i]);
        else idx[i] = cand[pl_rng_below(&r, m)];
    }
    free(cand);
    return st;
}

pl_status pl_ablate_effect_of(const pl_preds *before, const pl_preds *after, double threshold,
                              pl_ablate_effect *out) {
    memset(out, 0, sizeof *out);
    if (before->n != after->n)
        return pl_error(PL_ERR_INVALID, "ablation effect: %zu predictions before, %zu after", before->n, after->n);
    double ds = 0;
    for (size_t i = 0; i < before->n; i++) {
        const pl_pred *a = &before->v[i], *b = &after->v[i];
        if (strcmp(a->id, b->id) != 0 || strcmp(a->source, b->source) != 0 || a->label != b->label)
            return pl_error(PL_ERR_INVALID, "ablation effect: row %zu is '%s' (%s) before but '%s' (%s) after", i,
                            a->id, a->source, b->id, b->source);
        ds += b->score - a->score;
        out->n_flipped += (a->p_phish >= threshold) != (b->p_phish >= threshold);
    }
    pl_status st = pl_eval_metrics(before, NULL, before->n, threshold, &out->before);
    if (st == PL_OK) st = pl_eval_metrics(after, NULL, after->n, threshold, &out->after);
    if (st != PL_OK) return st;
    out->delta_f1 = out->after.v[PL_M_F1] - out->before.v[PL_M_F1];
    out->delta_accuracy = out->after.v[PL_M_ACCURACY] - out->before.v[PL_M_ACCURACY];
    out->mean_delta_score = before->n ? ds / (double)before->n : (double)NAN;
    return PL_OK;
}

static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

cJSON *pl_ablate_effect_json(const pl_ablate_effect *e) {
    cJSON *j = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(j, "rows"), *cols = cJSON_AddArrayToObject(j, "cols"),
          *vals = cJSON_AddArrayToObject(j, "values");
    cJSON_AddItemToArray(rows, cJSON_CreateString("before"));
    cJSON_AddItemToArray(rows, cJSON_CreateString("after"));
    for (int m = 0; m < PL_M_COUNT; m++) cJSON_AddItemToArray(cols, cJSON_CreateString(pl_metric_name(m)));
    const pl_metrics *ms[2] = {&e->before, &e->after};
    for (int r = 0; r < 2; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int m = 0; m < PL_M_COUNT; m++) cJSON_AddItemToArray(row, num_or_null(ms[r]->v[m]));
        cJSON_AddItemToArray(vals, row);
    }
    cJSON_AddItemToObject(j, "delta_f1", num_or_null(e->delta_f1));
    cJSON_AddItemToObject(j, "delta_accuracy", num_or_null(e->delta_accuracy));
    cJSON_AddItemToObject(j, "mean_delta_score", num_or_null(e->mean_delta_score));
    cJSON_AddNumberToObject(j, "n_flipped", (double)e->n_flipped);
    cJSON_AddNumberToObject(j, "n", (double)e->before.n);
    return j;
}

/* ---- directions ----------------------------------------------------------------- */

void pl_dir_remove(float *x, const float *u, size_t d) {
    double t = 0;
    for (size_t k = 0; k < d; k++) t += (double)x[k] * (double)u[k];
    for (size_t k = 0; k < d; k++) x[k] = (float)((double)x[k] - t * (double)u[k]);
}

pl_status pl_dir_orthonormalize(float *U, size_t k, size_t d, double tol, size_t *rank) {
    double *V = malloc((k * d > 0 ? k * d : 1) * sizeof *V);
    if (!V) return pl_error(PL_ERR_NOMEM, "orthonormalize: out of memory");
    for (size_t i = 0; i < k * d; i++) V[i] = U[i];
    size_t r = 0;
    for (size_t i = 0; i < k; i++) {
        double *v = V + i * d, n0 = 0;
        for (size_t e = 0; e < d; e++) n0 += v[e] * v[e];
        n0 = sqrt(n0);
        for (int pass = 0; pass < 2; pass++) /* "twice is enough" (Kahan / Parlett) */
            for (size_t j = 0; j < r; j++) {
                const double *q = V + j * d;
                double t = 0;
                for (size_t e = 0; e < d; e++) t += v[e] * q[e];
                for (size_t e = 0; e < d; e++) v[e] -= t * q[e];
            }
        double nn = 0;
        for (size_t e = 0; e < d; e++) nn += v[e] * v[e];
        nn = sqrt(nn);
        if (!(n0 > 0) || nn <= tol * n0) continue; /* dependent: skipped */
        double *dst = V + r * d;
        for (size_t e = 0; e < d; e++) dst[e] = v[e] / nn;
        r++;
    }
    for (size_t i = 0; i < k * d; i++) U[i] = i < r * d ? (float)V[i] : 0.0f;
    free(V);
    *rank = r;
    return PL_OK;
}

pl_status pl_dir_remove_span(float *X, size_t n, const float *U, size_t k, size_t d) {
    float *Q = malloc((k * d > 0 ? k * d : 1) * sizeof *Q);
    if (!Q) return pl_error(PL_ERR_NOMEM, "direction removal: out of memory");
    memcpy(Q, U, k * d * sizeof *Q);
    size_t r;
    pl_status st = pl_dir_orthonormalize(Q, k, d, 1e-6, &r);
    for (size_t i = 0; i < n && st == PL_OK; i++)
        for (size_t j = 0; j < r; j++) pl_dir_remove(X + i * d, Q + j * d, d);
    free(Q);
    return st;
}

/* ---- attention summaries ---------------------------------------------------------- */

typedef struct {
    double key;
    size_t i;
} keyidx;
static int cmp_keyidx(const void *x, const void *y) {
    const keyidx *p = x, *q = y;
    if (p->key != q->key) return p->key < q->key ? 1 : -1;
    return (p->i > q->i) - (p->i < q->i);
}

pl_status pl_top_heads(const double *score, size_t n_layers, size_t n_heads, size_t k, int by_abs,
                       pl_head_score *out, size_t *n_out) {
    size_t n = n_layers * n_heads, m = 0;
    keyidx *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return pl_error(PL_ERR_NOMEM, "top heads: out of memory");
    for (size_t i = 0; i < n; i++)
        if (isfinite(score[i])) v[m].key = by_abs ? fabs(score[i]) : score[i], v[m++].i = i;
    qsort(v, m, sizeof *v, cmp_keyidx);
    size_t t = 0;
    for (; t < k && t < m; t++) {
        out[t].layer = (int)(v[t].i / n_heads);
        out[t].head = (int)(v[t].i % n_heads);
        out[t].score = score[v[t].i];
    }
    *n_out = t;
    free(v);
    return PL_OK;
}

cJSON *pl_top_heads_json(const pl_head_score *h, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char name[48];
        snprintf(name, sizeof name, "L%dH%d", h[i].layer, h[i].head);
        cJSON_AddStringToObject(o, "head", name);
        cJSON_AddNumberToObject(o, "layer", h[i].layer);
        cJSON_AddNumberToObject(o, "index", h[i].head);
        cJSON_AddItemToObject(o, "score", num_or_null(h[i].score));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

pl_status pl_attn_rows(const float *pattern, size_t n_heads, size_t n_q, size_t n_k, size_t query,
                       const char *const *tokens, pl_grid *g) {
    if (query >= n_q) return pl_error(PL_ERR_RANGE, "attention rows: query position %zu outside 0..%zu", query, n_q - 1);
    pl_status st = pl_grid_init(g, n_heads, n_k, "attention from the answer position");
    if (st == PL_OK) st = pl_grid_label_rows(g, "H");
    if (st == PL_OK && !tokens) st = pl_grid_label_cols(g, "");
    for (size_t k = 0; tokens && k < n_k && st == PL_OK; k++) st = pl_grid_set_col(g, k, tokens[k]);
    if (st != PL_OK) {
        pl_grid_free(g);
        return st;
    }
    for (size_t h = 0; h < n_heads; h++)
        for (size_t k = 0; k < n_k; k++) PL_GRID(g, h, k) = pattern[(h * n_q + query) * n_k + k];
    return PL_OK;
}

void pl_attn_top_keys(const float *a, size_t n_k, size_t k, size_t *pos, float *w, size_t *n_out) {
    /* partial selection: k is small, so repeated scans are fine */
    size_t m = k < n_k ? k : n_k;
    for (size_t t = 0; t < m; t++) {
        size_t best = (size_t)-1;
        for (size_t i = 0; i < n_k; i++) {
            int taken = 0;
            for (size_t s = 0; s < t; s++) taken |= pos[s] == i;
            if (taken) continue;
            if (best == (size_t)-1 || a[i] > a[best]) best = i;
        }
        pos[t] = best;
        w[t] = a[best];
    }
    *n_out = m;
}

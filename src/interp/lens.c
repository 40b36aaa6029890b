/* lens.c — reading the classifier score off intermediate residuals.
 *
 *   logit lens (nostalgebraist 2020): apply the final RMSNorm and the label
 *     rows of the unembedding to a layer's residual, giving the score
 *     phishing - legitimate (optionally through gemma2's final soft-cap);
 *   tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from
 *     Transformers with the Tuned Lens"): an affine translator per layer.
 *     Here it is fitted in closed form by ridge least squares to the final
 *     residual, shrunk toward the identity, instead of by SGD on the KL to
 *     the final distribution (docs/interp.md explains the choice);
 *   direct logit attribution (Elhage et al. 2021): the score as a sum of
 *     per-component terms with the final-norm scale frozen.
 *
 * All accumulation is in double; no threading, so results are reproducible.
 */
#include "interp.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 1/sqrt(mean(h^2) + eps) */
static double rms_scale(const float *h, size_t d, float eps) {
    double ss = 0;
    for (size_t k = 0; k < d; k++) ss += (double)h[k] * (double)h[k];
    return 1.0 / sqrt(ss / (double)d + (double)eps);
}

static double cap(double z, float softcap) {
    double c = (double)softcap;
    return c > 0 ? c * tanh(z / c) : z;
}

double pl_lens_score(const pl_readout *r, const float *h) {
    double s = rms_scale(h, r->d, r->eps), zp = 0, zn = 0;
    for (size_t k = 0; k < r->d; k++) {
        double w = (r->norm_w ? (double)r->norm_w[k] : 1.0) + (double)r->norm_offset;
        double nk = (double)h[k] * s * w;
        zp += nk * (double)r->u_pos[k];
        if (r->u_neg) zn += nk * (double)r->u_neg[k];
    }
    return cap(zp, r->softcap) - (r->u_neg ? cap(zn, r->softcap) : 0.0) + (double)r->bias;
}

void pl_lens_scores(const pl_readout *r, const float *X, size_t n, double *out) {
    for (size_t i = 0; i < n; i++) out[i] = pl_lens_score(r, X + i * r->d);
}

void pl_lens_class_means(const double *scores, const int *y, size_t n, int n_classes, double *mean, double *sd,
                         size_t *count) {
    for (int c = 0; c < n_classes; c++) mean[c] = 0, sd[c] = 0, count[c] = 0;
    for (size_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < n_classes) mean[y[i]] += scores[i], count[y[i]]++;
    for (int c = 0; c < n_classes; c++) mean[c] = count[c] ? mean[c] / (double)count[c] : (double)NAN;
    for (size_t i = 0; i < n; i++)
        if (y[i] >= 0 && y[i] < n_classes) sd[y[i]] += (scores[i] - mean[y[i]]) * (scores[i] - mean[y[i]]);
    for (int c = 0; c < n_classes; c++) sd[c] = count[c] > 1 ? sqrt(sd[c] / (double)(count[c] - 1)) : (double)NAN;
}

pl_status pl_lens_depth(pl_actcache *c, const char *hook, const int *layers, size_t n_layers, pl_pos_sel sel,
                        const pl_readout *r, const pl_tuned_lens *tl, cJSON **out) {
    *out = NULL;
    size_t n = pl_actcache_n_examples(c);
    int *y = malloc((n ? n : 1) * sizeof *y);
    double *sc = malloc((n ? n : 1) * sizeof *sc);
    float *tmp = malloc(r->d * sizeof *tmp);
    pl_grid g = {0};
    pl_status st = (y && sc && tmp) ? PL_OK : pl_error(PL_ERR_NOMEM, "lens: out of memory");
    int nc;
    if (st == PL_OK) st = pl_actcache_labels(c, "label", y, &nc, NULL, NULL);
    if (st == PL_OK) st = pl_grid_init(&g, 3, n_layers, tl ? "tuned lens: score by layer" : "logit lens: score by layer");
    if (st == PL_OK) st = pl_grid_set_row(&g, 0, "mean_phishing");
    if (st == PL_OK) st = pl_grid_set_row(&g, 1, "mean_legitimate");
    if (st == PL_OK) st = pl_grid_set_row(&g, 2, "auc");
    for (size_t l = 0; l < n_layers && st == PL_OK; l++) {
        char lb[32];
        snprintf(lb, sizeof lb, "%d", layers[l]);
        if ((st = pl_grid_set_col(&g, l, lb)) != PL_OK) break;
        float *X;
        size_t rn, d;
        if ((st = pl_actcache_matrix(c, hook, layers[l], sel, &X, &rn, &d)) != PL_OK) break;
        if (d != r->d) {
            free(X);
            st = pl_error(PL_ERR_INVALID, "lens: %s layer %d has width %zu, the readout %zu", hook, layers[l], d, r->d);
            break;
        }
        const float *A = NULL, *b = NULL;
        if (tl && (st = pl_tuned_lens_layer(tl, layers[l], &A, &b)) != PL_OK) {
            free(X);
            break;
        }
        for (size_t i = 0; i < rn; i++) {
            const float *h = X + i * d;
            if (A) {
                pl_tuned_apply(A, b, d, h, tmp);
                h = tmp;
            }
            sc[i] = pl_lens_score(r, h);
        }
        free(X);
        double mean[2], sd[2];
        size_t cnt[2];
        pl_lens_class_means(sc, y, rn, 2, mean, sd, cnt);
        PL_GRID(&g, 0, l) = mean[1];
        PL_GRID(&g, 1, l) = mean[0];
        PL_GRID(&g, 2, l) = pl_interp_auc(sc, y, rn);
    }
    if (st == PL_OK) {
        *out = pl_grid_json(&g);
        if (!*out) st = pl_error(PL_ERR_NOMEM, "lens: out of memory");
    }
    pl_grid_free(&g);
    free(y), free(sc), free(tmp);
    return st;
}

/* ---- tuned lens (ridge) ---------------------------------------------------- */

/* In-place Cholesky G = L L^T (lower), G [d x d] double. */
static int cholesky(double *G, size_t d) {
    for (size_t j = 0; j < d; j++) {
        double s = G[j * d + j];
        for (size_t k = 0; k < j; k++) s -= G[j * d + k] * G[j * d + k];
        if (!(s > 0)) return 0;
        double ljj = sqrt(s);
        G[j * d + j] = ljj;
        for (size_t i = j + 1; i < d; i++) {
            double t = G[i * d + j];
            for (size_t k = 0; k < j; k++) t -= G[i * d + k] * G[j * d + k];
            G[i * d + j] = t / ljj;
        }
    }
    return 1;
}

pl_status pl_tuned_fit_layer(const float *H, const float *F, size_t n, size_t d, double lambda, float *A, float *b) {
    if (n == 0 || d == 0) return pl_error(PL_ERR_INVALID, "tuned lens: empty data (%zu rows, width %zu)", n, d);
    if (!(lambda >= 0)) return pl_error(PL_ERR_INVALID, "tuned lens: lambda %g must be >= 0", lambda);
    size_t dd;
    if (!pl_mul_ok(d, d, &dd)) return pl_error(PL_ERR_RANGE, "tuned lens: width %zu too large", d);
    double *G = calloc(dd, sizeof *G), *R = calloc(dd, sizeof *R), *mh = calloc(d, sizeof *mh),
           *mf = calloc(d, sizeof *mf), *hc = malloc(d * sizeof *hc), *fc = malloc(d * sizeof *fc);
    pl_status st = PL_OK;
    if (!G || !R || !mh || !mf || !hc || !fc) {
        st = pl_error(PL_ERR_NOMEM, "tuned lens: out of memory (width %zu)", d);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) mh[k] += (double)H[i * d + k], mf[k] += (double)F[i * d + k];
    for (size_t k = 0; k < d; k++) mh[k] /= (double)n, mf[k] /= (double)n;
    /* G = Hc^T Hc + lambda I,  R = Hc^T Fc + lambda I  (upper triangle of G, then mirrored) */
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < d; k++) hc[k] = (double)H[i * d + k] - mh[k], fc[k] = (double)F[i * d + k] - mf[k];
        for (size_t p = 0; p < d; p++) {
            double hp = hc[p];
            double *gr = G + p * d, *rr = R + p * d;
            for (size_t q = p; q < d; q++) gr[q] += hp * hc[q];
            for (size_t q = 0; q < d; q++) rr[q] += hp * fc[q];
        }
    }
    for (size_t p = 0; p < d; p++) {
        G[p * d + p] += lambda;
        R[p * d + p] += lambda;
        for (size_t q = 0; q < p; q++) G[p * d + q] = G[q * d + p];
    }
    if (!cholesky(G, d)) {
        st = pl_error(PL_ERR_NUMERIC,
                      "tuned lens: H^T H + lambda I is singular (%zu rows, width %zu, lambda %g): raise lambda", n, d,
                      lambda);
        goto done;
    }
    /* Solve G M = R column by column; M = A^T, so A[q][p] = M[p][q]. */
    for (size_t q = 0; q < d; q++) {
        double *x = hc; /* reuse as the column */
        for (size_t p = 0; p < d; p++) {
            double t = R[p * d + q];
            for (size_t k = 0; k < p; k++) t -= G[p * d + k] * x[k];
            x[p] = t / G[p * d + p];
        }
        for (size_t p = d; p-- > 0;) {
            double t = x[p];
            for (size_t k = p + 1; k < d; k++) t -= G[k * d + p] * x[k];
            x[p] = t / G[p * d + p];
        }
        for (size_t p = 0; p < d; p++) A[q * d + p] = (float)x[p];
        double bq = mf[q];
        for (size_t p = 0; p < d; p++) bq -= x[p] * mh[p];
        b[q] = (float)bq;
    }
done:
    free(G), free(R), free(mh), free(mf), free(hc), free(fc);
    return st;
}

void pl_tuned_apply(const float *A, const float *b, size_t d, const float *h, float *y) {
    for (size_t q = 0; q < d; q++) {
        double s = (double)b[q];
        const float *a = A + q * d;
        for (size_t p = 0; p < d; p++) s += (double)a[p] * (double)h[p];
        y[q] = (float)s;
    }
}

pl_status pl_tuned_lens_fit(pl_actcache *c, const char *hook, const int *layers, size_t n_layers,
                            const char *final_hook, int final_layer, pl_pos_sel sel, double lambda,
                            pl_tuned_lens *out) {
    memset(out, 0, sizeof *out);
    float *F = NULL;
    size_t n, d;
    pl_status st = pl_actcache_matrix(c, final_hook, final_layer, sel, &F, &n, &d);
    if (st != PL_OK) return st;
    size_t dd;
    if (!pl_mul_ok(d, d, &dd) || !pl_mul_ok(dd, n_layers ? n_layers : 1, &dd)) {
        free(F);
        return pl_error(PL_ERR_RANGE, "tuned lens: too large");
    }
    out->d = d;
    out->lambda = lambda;
    out->layers = malloc((n_layers ? n_layers : 1) * sizeof *out->layers);
    out->A = malloc(dd * sizeof *out->A);
    out->b = malloc((n_layers ? n_layers : 1) * d * sizeof *out->b);
    if (!out->layers || !out->A || !out->b) {
        free(F);
        pl_tuned_lens_free(out);
        return pl_error(PL_ERR_NOMEM, "tuned lens: out of memory");
    }
    for (size_t l = 0; l < n_layers && st == PL_OK; l++) {
        float *H;
        size_t hn, hd;
        if ((st = pl_actcache_matrix(c, hook, layers[l], sel, &H, &hn, &hd)) != PL_OK) break;
        if (hd != d) st = pl_error(PL_ERR_INVALID, "tuned lens: %s layer %d width %zu != final width %zu", hook, layers[l], hd, d);
        if (st == PL_OK) st = pl_tuned_fit_layer(H, F, n, d, lambda, out->A + l * d * d, out->b + l * d);
        free(H);
        out->layers[l] = layers[l];
        out->n_layers = l + 1;
    }
    free(F);
    if (st != PL_OK) pl_tuned_lens_free(out);
    return st;
}

pl_status pl_tuned_lens_layer(const pl_tuned_lens *tl, int layer, const float **A, const float **b) {
    for (size_t l = 0; l < tl->n_layers; l++)
        if (tl->layers[l] == layer) {
            *A = tl->A + l * tl->d * tl->d;
            *b = tl->b + l * tl->d;
            return PL_OK;
        }
    return pl_error(PL_ERR_NOT_FOUND, "tuned lens: no translator for layer %d", layer);
}

void pl_tuned_lens_free(pl_tuned_lens *tl) {
    free(tl->layers);
    free(tl->A);
    free(tl->b);
    memset(tl, 0, sizeof *tl);
}

pl_status pl_tuned_lens_save(const char *path, const pl_tuned_lens *tl) {
    pl_buf b = {0};
    uint64_t hd[2] = {tl->d, tl->n_layers};
    pl_status st = pl_buf_append(&b, "PLTLENS1", 8);
    if (st == PL_OK) st = pl_buf_append(&b, hd, sizeof hd);
    if (st == PL_OK) st = pl_buf_append(&b, &tl->lambda, 8);
    for (size_t l = 0; l < tl->n_layers && st == PL_OK; l++) {
        int32_t v = tl->layers[l];
        st = pl_buf_append(&b, &v, 4);
    }
    if (st == PL_OK) st = pl_buf_append(&b, tl->A, tl->n_layers * tl->d * tl->d * sizeof(float));
    if (st == PL_OK) st = pl_buf_append(&b, tl->b, tl->n_layers * tl->d * sizeof(float));
    if (st == PL_OK) {
        uint64_t h = pl_hash64(b.data, b.len, 0);
        st = pl_buf_append(&b, &h, 8);
    }
    if (st == PL_OK) st = pl_write_file_atomic(path, b.data, b.len);
    pl_buf_free(&b);
    return st;
}

pl_status pl_tuned_lens_load(const char *path, pl_tuned_lens *out) {
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    pl_status st = pl_read_file(path, &data, &len);
    if (st != PL_OK) return st;
    const uint8_t *p = (const uint8_t *)data;
    uint64_t d, nl, h;
    if (len < 40 || memcmp(p, "PLTLENS1", 8) != 0) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: offset 0: not a tuned-lens file", path);
    }
    memcpy(&h, p + len - 8, 8);
    if (pl_hash64(p, len - 8, 0) != h) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: offset %zu: checksum mismatch (truncated or corrupt)", path, len - 8);
    }
    memcpy(&d, p + 8, 8);
    memcpy(&nl, p + 16, 8);
    memcpy(&out->lambda, p + 24, 8);
    /* 32 + 4 nl + 4 nl d d + 4 nl d + 8 == len, checked without overflow */
    if (d == 0 || d > (1u << 16) || nl == 0 || nl > 4096 || 40 + 4 * nl + 4 * nl * d * d + 4 * nl * d != len) {
        free(data);
        return pl_error(PL_ERR_FORMAT, "%s: offset 8: width %llu / %llu layers disagree with the file size %zu", path,
                        (unsigned long long)d, (unsigned long long)nl, len);
    }
    out->d = (size_t)d;
    out->n_layers = (size_t)nl;
    out->layers = malloc(nl * sizeof *out->layers);
    out->A = malloc(nl * d * d * sizeof *out->A);
    out->b = malloc(nl * d * sizeof *out->b);
    if (!out->layers || !out->A || !out->b) {
        free(data);
        pl_tuned_lens_free(out);
        return pl_error(PL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t off = 32;
    for (size_t l = 0; l < nl; l++, off += 4) {
        int32_t v;
        memcpy(&v, p + off, 4);
        out->layers[l] = v;
    }
    memcpy(out->A, p + off, nl * d * d * 4);
    off += nl * d * d * 4;
    memcpy(out->b, p + off, nl * d * 4);
    free(data);
    return PL_OK;
}

/* ---- direct logit attribution ---------------------------------------------- */

pl_status pl_dla(const pl_readout *r, const float *comps, size_t n_comp, const float *r_full, double *contrib,
                 double *scale) {
    size_t d = r->d;
    float *sum = NULL;
    if (!r_full) {
        sum = calloc(d ? d : 1, sizeof *sum);
        double *acc = calloc(d ? d : 1, sizeof *acc);
        if (!sum || !acc) {
            free(sum), free(acc);
            return pl_error(PL_ERR_NOMEM, "dla: out of memory");
        }
        for (size_t j = 0; j < n_comp; j++)
            for (size_t k = 0; k < d; k++) acc[k] += (double)comps[j * d + k];
        for (size_t k = 0; k < d; k++) sum[k] = (float)acc[k];
        free(acc);
        r_full = sum;
    }
    double s = rms_scale(r_full, d, r->eps);
    free(sum);
    if (scale) *scale = s;
    for (size_t j = 0; j < n_comp; j++) {
        const float *cj = comps + j * d;
        double t = 0;
        for (size_t k = 0; k < d; k++) {
            double w = (r->norm_w ? (double)r->norm_w[k] : 1.0) + (double)r->norm_offset;
            double du = (double)r->u_pos[k] - (r->u_neg ? (double)r->u_neg[k] : 0.0);
            t += w * du * (double)cj[k];
        }
        contrib[j] = s * t;
    }
    return PL_OK;
}

pl_status pl_dla_head_outputs(const float *z, const float *W_O, size_t n_heads, size_t d_head, size_t d_model,
                              const float *post_w, float post_offset, float post_eps, float *out) {
    size_t hd;
    if (!pl_mul_ok(n_heads, d_head, &hd) || n_heads == 0 || d_head == 0 || d_model == 0)
        return pl_error(PL_ERR_INVALID, "head outputs: bad shape %zu heads x %zu", n_heads, d_head);
    for (size_t h = 0; h < n_heads; h++) {
        const float *zh = z + h * d_head;
        for (size_t i = 0; i < d_model; i++) {
            const float *row = W_O + i * hd + h * d_head;
            double s = 0;
            for (size_t e = 0; e < d_head; e++) s += (double)row[e] * (double)zh[e];
            out[h * d_model + i] = (float)s;
        }
    }
    if (post_w) {
        /* frozen post-attention RMSNorm: scale from the sum over heads */
        double ss = 0;
        for (size_t i = 0; i < d_model; i++) {
            double t = 0;
            for (size_t h = 0; h < n_heads; h++) t += (double)out[h * d_model + i];
            ss += t * t;
        }
        double sc = 1.0 / sqrt(ss / (double)d_model + (double)post_eps);
        for (size_t h = 0; h < n_heads; h++)
            for (size_t i = 0; i < d_model; i++)
                out[h * d_model + i] = (float)((double)out[h * d_model + i] * sc * ((double)post_w[i] + (double)post_offset));
    }
    return PL_OK;
}

cJSON *pl_dla_json(const char *const *labels, const double *contrib, size_t n_comp, double scale, double bias) {
    cJSON *j = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(j, "rows"), *cols = cJSON_AddArrayToObject(j, "cols"),
          *vals = cJSON_AddArrayToObject(j, "values");
    cJSON_AddItemToArray(cols, cJSON_CreateString("contribution"));
    double sum = 0;
    for (size_t i = 0; i < n_comp; i++) {
        char b[32];
        if (!labels) snprintf(b, sizeof b, "%zu", i);
        cJSON_AddItemToArray(rows, cJSON_CreateString(labels ? labels[i] : b));
        cJSON *row = cJSON_CreateArray();
        cJSON_AddItemToArray(row, isfinite(contrib[i]) ? cJSON_CreateNumber(contrib[i]) : cJSON_CreateNull());
        cJSON_AddItemToArray(vals, row);
        sum += contrib[i];
    }
    cJSON_AddItemToObject(j, "sum", isfinite(sum) ? cJSON_CreateNumber(sum) : cJSON_CreateNull());
    cJSON_AddNumberToObject(j, "scale", scale);
    cJSON_AddNumberToObject(j, "bias", bias);
    return j;
}

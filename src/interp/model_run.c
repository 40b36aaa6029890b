/* model_run.c — running a pl_model with hooks for interpretability: the
 * edit dispatcher (record / set / project at a hook point), one-prompt runs,
 * logit lens, direct logit attribution and attention patterns.
 * See interp.h ("Model side") and docs/interp.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "interp/model_internal.h"

pl_status pl_imodel_new(const pl_model *m, int32_t pos_id, int32_t neg_id, int max_ctx, int max_batch,
                        pl_imodel **out) {
    *out = NULL;
    const pl_arch_desc *d = pl_model_desc(m);
    if (pos_id == neg_id) return pl_error(PL_ERR_INVALID, "interp: the two label tokens are the same (%d)", (int)pos_id);
    if (max_ctx <= 0) return pl_error(PL_ERR_INVALID, "interp: context length %d", max_ctx);
    if (max_batch <= 0) max_batch = 4096;
    if (max_batch < max_ctx) max_batch = max_ctx;
    pl_imodel *im = calloc(1, sizeof *im);
    if (!im) return pl_error(PL_ERR_NOMEM, "interp: out of memory");
    im->m = m;
    im->max_ctx = max_ctx;
    im->max_batch = max_batch;
    im->pos_id = pos_id;
    im->neg_id = neg_id;
    im->skip_identical = 1;
    size_t D = (size_t)d->n_embd;
    im->u_pos = malloc(D * sizeof(float));
    im->u_neg = malloc(D * sizeof(float));
    pl_status st = (im->u_pos && im->u_neg) ? PL_OK : pl_error(PL_ERR_NOMEM, "interp: out of memory");
    if (st == PL_OK) st = pl_model_unembed_row(m, pos_id, im->u_pos);
    if (st == PL_OK) st = pl_model_unembed_row(m, neg_id, im->u_neg);
    if (st == PL_OK) st = pl_runner_new(m, max_batch, max_ctx, &im->run);
    if (st != PL_OK) {
        pl_imodel_free(im);
        return st;
    }
    im->ro = (pl_readout){D, pl_model_final_norm(m), 0.0f, d->norm_eps, im->u_pos, im->u_neg, 0.0f, d->final_softcap};
    *out = im;
    return PL_OK;
}

void pl_imodel_free(pl_imodel *im) {
    if (!im) return;
    pl_runner_free(im->run);
    free(im->u_pos);
    free(im->u_neg);
    free(im);
}

const pl_readout *pl_imodel_readout(const pl_imodel *im) { return &im->ro; }
const pl_model *pl_imodel_model(const pl_imodel *im) { return im->m; }
void pl_imodel_set_skip_identical(pl_imodel *im, int on) { im->skip_identical = on != 0; }

size_t pl_imodel_width(const pl_imodel *im, pl_hook_point p) {
    const pl_arch_desc *d = pl_model_desc(im->m);
    switch (p) {
    case PL_HOOK_Q:
    case PL_HOOK_Z: return (size_t)d->n_head * (size_t)d->head_dim;
    case PL_HOOK_K:
    case PL_HOOK_V: return (size_t)d->n_head_kv * (size_t)d->head_dim;
    case PL_HOOK_MLP_POST: return (size_t)d->n_ff;
    case PL_HOOK_PATTERN: return 0;
    default: return (size_t)d->n_embd;
    }
}

static void apply_edit(const pl_imodel *im, const pl_edit *e, const pl_hook_info *info, float *data) {
    int n_tok = (int)info->shape[0], pos0 = info->pos0;
    if (e->point == PL_HOOK_PATTERN) {
        if (e->kind != PL_EDIT_RECORD || !e->dst) return;
        /* data is [n_head x n_tok x n_k]; dst is [n_head x n_ctx x n_ctx] */
        int64_t H = info->shape[0], T = info->shape[1], K = info->shape[2];
        int64_t n = pos0 + T;
        for (int64_t h = 0; h < H; h++)
            for (int64_t t = 0; t < T; t++)
                memcpy(e->dst + ((size_t)h * (size_t)n + (size_t)(pos0 + t)) * (size_t)n, data + (h * T + t) * K,
                       (size_t)K * sizeof(float));
        return;
    }
    size_t w = pl_imodel_width(im, e->point);
    size_t off = 0, len = w;
    if (e->head >= 0) {
        size_t hd = (size_t)pl_model_desc(im->m)->head_dim;
        off = (size_t)e->head * hd;
        len = hd;
        if (off + len > w) return;
    }
    int t0 = 0, t1 = n_tok;
    if (e->pos >= 0) {
        if (e->pos < pos0 || e->pos >= pos0 + n_tok) return;
        t0 = e->pos - pos0;
        t1 = t0 + 1;
    }
    for (int t = t0; t < t1; t++) {
        float *x = data + (size_t)t * w;
        size_t p = (size_t)(pos0 + t);
        switch (e->kind) {
        case PL_EDIT_RECORD:
            if (e->dst) memcpy(e->dst + p * w + off, x + off, len * sizeof(float));
            break;
        case PL_EDIT_SET:
            if (!e->src) memset(x + off, 0, len * sizeof(float));
            else {
                const float *s = e->pos >= 0 ? e->src : e->src + p * e->src_stride;
                memcpy(x + off, s + off, len * sizeof(float));
            }
            break;
        case PL_EDIT_PROJECT:
            if (e->dir) pl_dir_remove(x, e->dir, w);
            break;
        }
    }
}

static void dispatch(const pl_hook_info *info, float *data, void *user) {
    pl_imodel *im = user;
    for (size_t i = 0; i < im->n_edits; i++) {
        const pl_edit *e = &im->edits[i];
        if (e->point != info->point || (e->layer != info->layer && info->layer >= 0)) continue;
        if (e->seq >= 0 && e->seq != info->seq) continue;
        apply_edit(im, e, info, data);
    }
}

pl_status pl_imodel_set_edits(pl_imodel *im, const pl_edit *edits, size_t n_edits) {
    pl_runner_clear_hooks(im->run);
    im->edits = edits;
    im->n_edits = n_edits;
    const pl_arch_desc *d = pl_model_desc(im->m);
    for (size_t i = 0; i < n_edits; i++) {
        const pl_edit *e = &edits[i];
        int global = e->point == PL_HOOK_EMBED || e->point == PL_HOOK_LN_FINAL;
        if ((int)e->point < 0 || e->point >= PL_HOOK_COUNT)
            return pl_error(PL_ERR_INVALID, "interp: edit %zu: unknown hook point %d", i, (int)e->point);
        if (!global && (e->layer < 0 || e->layer >= d->n_layer))
            return pl_error(PL_ERR_RANGE, "interp: edit %zu: layer %d out of range [0, %d)", i, e->layer, d->n_layer);
        if (e->head >= 0) {
            int nh = (e->point == PL_HOOK_K || e->point == PL_HOOK_V) ? d->n_head_kv : d->n_head;
            if (!(e->point == PL_HOOK_Q || e->point == PL_HOOK_K || e->point == PL_HOOK_V || e->point == PL_HOOK_Z))
                return pl_error(PL_ERR_INVALID, "interp: edit %zu: a head is only meaningful for q/k/v/z", i);
            if (e->head >= nh) return pl_error(PL_ERR_RANGE, "interp: edit %zu: head %d of %d", i, e->head, nh);
        }
        pl_status st = pl_runner_set_hook(im->run, e->point, global ? -1 : e->layer, dispatch, im);
        if (st != PL_OK) return st;
    }
    return PL_OK;
}

pl_status pl_imodel_run(pl_imodel *im, const int32_t *ids, int n, const pl_edit *edits, size_t n_edits,
                        double *score, float *logits_last) {
    if (n <= 0 || n > im->max_ctx)
        return pl_error(PL_ERR_RANGE, "interp: prompt of %d tokens (limit %d)", n, im->max_ctx);
    pl_status st = pl_imodel_set_edits(im, edits, n_edits);
    pl_kv *kv = NULL;
    size_t V = (size_t)pl_model_desc(im->m)->n_vocab;
    float *lg = logits_last ? logits_last : malloc(V * sizeof(float));
    if (st == PL_OK && !lg) st = pl_error(PL_ERR_NOMEM, "interp: out of memory");
    if (st == PL_OK) st = pl_kv_new(im->m, n, NULL, &kv);
    if (st == PL_OK) {
        pl_seq s = {kv, ids, n};
        st = pl_forward(im->run, &s, 1, PL_LOGITS_LAST, lg);
    }
    if (st == PL_OK && score) *score = (double)lg[im->pos_id] - (double)lg[im->neg_id];
    pl_kv_free(kv);
    if (lg != logits_last) free(lg);
    pl_runner_clear_hooks(im->run);
    im->edits = NULL;
    im->n_edits = 0;
    return st;
}

/* ---- logit lens ------------------------------------------------------------ */

pl_status pl_imodel_lens(pl_imodel *im, const int32_t *ids, int n, pl_grid *g, double *real) {
    memset(g, 0, sizeof *g);
    const pl_arch_desc *d = pl_model_desc(im->m);
    int L = d->n_layer;
    size_t D = (size_t)d->n_embd, per = (size_t)(n > 0 ? n : 1) * D;
    static const pl_hook_point pts[3] = {PL_HOOK_RESID_PRE, PL_HOOK_RESID_MID, PL_HOOK_RESID_POST};
    static const char *nm[3] = {"resid_pre", "resid_mid", "resid_post"};
    float *buf = malloc((size_t)L * 3 * per * sizeof(float));
    pl_edit *ed = calloc((size_t)L * 3, sizeof *ed);
    pl_status st = (buf && ed) ? PL_OK : pl_error(PL_ERR_NOMEM, "interp lens: out of memory");
    for (int l = 0; l < L && st == PL_OK; l++)
        for (int k = 0; k < 3; k++)
            ed[l * 3 + k] = (pl_edit){PL_EDIT_RECORD, pts[k], l, -1, -1, buf + (size_t)(l * 3 + k) * per, NULL, 0, NULL, -1};
    if (st == PL_OK) st = pl_imodel_run(im, ids, n, ed, (size_t)L * 3, real, NULL);
    if (st == PL_OK) st = pl_grid_init(g, (size_t)L * 3, (size_t)n, "logit lens: classifier score by layer and position");
    for (int l = 0; l < L && st == PL_OK; l++)
        for (int k = 0; k < 3; k++) {
            char lab[64];
            snprintf(lab, sizeof lab, "L%d.%s", l, nm[k]);
            st = pl_grid_set_row(g, (size_t)(l * 3 + k), lab);
            for (int p = 0; p < n; p++)
                PL_GRID(g, l * 3 + k, p) = pl_lens_score(&im->ro, buf + (size_t)(l * 3 + k) * per + (size_t)p * D);
        }
    if (st == PL_OK) st = pl_grid_label_cols(g, "");
    free(buf);
    free(ed);
    if (st != PL_OK) pl_grid_free(g);
    return st;
}

/* ---- direct logit attribution ------------------------------------------- */

void pl_imodel_dla_free(pl_imodel_dla *d) {
    if (!d) return;
    if (d->labels)
        for (size_t i = 0; i < d->n_comp; i++) free(d->labels[i]);
    free(d->labels);
    free(d->contrib);
    free(d->head_grid);
    memset(d, 0, sizeof *d);
}

pl_status pl_imodel_dla_run(pl_imodel *im, const int32_t *ids, int n, pl_imodel_dla *out) {
    memset(out, 0, sizeof *out);
    const pl_arch_desc *d = pl_model_desc(im->m);
    int L = d->n_layer, H = d->n_head, hd = d->head_dim;
    size_t D = (size_t)d->n_embd, HD = (size_t)H * (size_t)hd, N = (size_t)(n > 0 ? n : 1);
    size_t n_comp = 1 + (size_t)L * (size_t)H + (size_t)L + 1;
    /* recorded: embed [N x D], z per layer [N x HD], mlp_out per layer [N x D], final resid [N x D] */
    float *emb = malloc(N * D * sizeof(float)), *z = malloc((size_t)L * N * HD * sizeof(float)),
          *mlp = malloc((size_t)L * N * D * sizeof(float)), *fin = malloc(N * D * sizeof(float)),
          *comps = calloc(n_comp * D, sizeof(float)), *wo = malloc(D * HD * sizeof(float));
    pl_edit *ed = calloc((size_t)(2 * L + 2), sizeof *ed);
    out->labels = calloc(n_comp, sizeof *out->labels);
    out->contrib = calloc(n_comp, sizeof *out->contrib);
    out->head_grid = calloc((size_t)L * (size_t)H, sizeof *out->head_grid);
    out->n_comp = n_comp;
    out->n_layer = (size_t)L;
    out->n_head = (size_t)H;
    pl_status st = (emb && z && mlp && fin && comps && wo && ed && out->labels && out->contrib && out->head_grid)
                       ? PL_OK
                       : pl_error(PL_ERR_NOMEM, "interp dla: out of memory");
    size_t ne = 0;
    if (st == PL_OK) {
        ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_EMBED, -1, -1, -1, emb, NULL, 0, NULL, -1};
        ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_RESID_POST, L - 1, -1, -1, fin, NULL, 0, NULL, -1};
        for (int l = 0; l < L; l++) {
            ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_Z, l, -1, -1, z + (size_t)l * N * HD, NULL, 0, NULL, -1};
            ed[ne++] = (pl_edit){PL_EDIT_RECORD, PL_HOOK_MLP_OUT, l, -1, -1, mlp + (size_t)l * N * D, NULL, 0, NULL, -1};
        }
        st = pl_imodel_run(im, ids, n, ed, ne, &out->score, NULL);
    }
    size_t last = (size_t)(n - 1), c = 0;
    if (st == PL_OK) {
        memcpy(comps, emb + last * D, D * sizeof(float));
        c = 1;
        for (int l = 0; l < L && st == PL_OK; l++) {
            st = pl_model_o_proj_f32(im->m, l, wo);
            if (st == PL_OK)
                st = pl_dla_head_outputs(z + (size_t)l * N * HD + last * HD, wo, (size_t)H, (size_t)hd, D,
                                         pl_model_post_attn_norm(im->m, l), 0.0f, d->norm_eps, comps + c * D);
            c += (size_t)H;
            memcpy(comps + c * D, mlp + (size_t)l * N * D + last * D, D * sizeof(float));
            c++;
        }
    }
    if (st == PL_OK) {
        /* rest = final residual - sum of the others */
        float *rest = comps + c * D;
        for (size_t j = 0; j < D; j++) {
            double s = 0;
            for (size_t k = 0; k < c; k++) s += (double)comps[k * D + j];
            rest[j] = (float)((double)fin[last * D + j] - s);
        }
        st = pl_dla(&im->ro, comps, n_comp, fin + last * D, out->contrib, &out->scale);
    }
    for (size_t k = 0; k < n_comp && st == PL_OK; k++) {
        char lab[64];
        if (k == 0) snprintf(lab, sizeof lab, "embed");
        else if (k == n_comp - 1) snprintf(lab, sizeof lab, "rest");
        else {
            size_t j = k - 1, l = j / (size_t)(H + 1), h = j % (size_t)(H + 1);
            if (h < (size_t)H) {
                snprintf(lab, sizeof lab, "L%zuH%zu", l, h);
                out->head_grid[l * (size_t)H + h] = out->contrib[k];
            } else snprintf(lab, sizeof lab, "L%zu.mlp", l);
        }
        out->labels[k] = strdup(lab);
        if (!out->labels[k]) st = pl_error(PL_ERR_NOMEM, "interp dla: out of memory");
        out->sum += out->contrib[k];
    }
    free(emb), free(z), free(mlp), free(fin), free(comps), free(wo), free(ed);
    if (st != PL_OK) pl_imodel_dla_free(out);
    return st;
}

pl_status pl_imodel_pattern(pl_imodel *im, const int32_t *ids, int n, int layer, float **out) {
    *out = NULL;
    const pl_arch_desc *d = pl_model_desc(im->m);
    if (layer < 0 || layer >= d->n_layer)
        return pl_error(PL_ERR_RANGE, "interp attn: layer %d out of range [0, %d)", layer, d->n_layer);
    size_t N = (size_t)(n > 0 ? n : 1);
    float *p = calloc((size_t)d->n_head * N * N, sizeof(float));
    if (!p) return pl_error(PL_ERR_NOMEM, "interp attn: out of memory");
    pl_edit e = {PL_EDIT_RECORD, PL_HOOK_PATTERN, layer, -1, -1, p, NULL, 0, NULL, -1};
    pl_status st = pl_imodel_run(im, ids, n, &e, 1, NULL, NULL);
    if (st != PL_OK) {
        free(p);
        return st;
    }
    *out = p;
    return PL_OK;
}

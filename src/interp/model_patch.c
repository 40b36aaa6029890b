/* model_patch.c — activation patching sweeps on a pl_model (interp.h,
 * "Model side"; docs/interp.md, "Patching on the model").
 *
 * Per-position sweeps reuse the run prompt's KV cache: patching position p
 * at layer l leaves positions < p untouched at every layer, so the run's
 * cache is truncated to p and the suffix p..n-1 is run once per layer, the
 * layers batched as forks of that prefix. Positions are visited from the
 * end so the cache only ever shrinks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "interp/model_internal.h"

void pl_patch_align(const int32_t *run, int n_run, const int32_t *src, int n_src, int *map) {
    int a = 0, m = n_run < n_src ? n_run : n_src;
    while (a < m && run[a] == src[a]) a++;
    int b = 0;
    while (b < m - a && run[n_run - 1 - b] == src[n_src - 1 - b]) b++;
    for (int p = 0; p < n_run; p++) {
        if (p < a) map[p] = p;
        else if (p >= n_run - b) map[p] = p - n_run + n_src;
        else map[p] = n_run == n_src ? p : -1;
    }
}

void pl_patch_result_free(pl_patch_result *r) {
    if (!r) return;
    pl_grid_free(&r->recovery);
    free(r->scores);
    memset(r, 0, sizeof *r);
}

static int per_position(pl_hook_point p) {
    return p == PL_HOOK_RESID_PRE || p == PL_HOOK_ATTN_OUT || p == PL_HOOK_MLP_OUT || p == PL_HOOK_RESID_MID ||
           p == PL_HOOK_RESID_POST || p == PL_HOOK_MLP_POST || p == PL_HOOK_Z || p == PL_HOOK_Q || p == PL_HOOK_K ||
           p == PL_HOOK_V;
}

/* Record `point` at every layer: acts [L x n x w]. */
static pl_status record_all(pl_imodel *im, const int32_t *ids, int n, pl_hook_point point, float *acts, double *score) {
    int L = pl_model_desc(im->m)->n_layer;
    size_t w = pl_imodel_width(im, point);
    pl_edit *ed = calloc((size_t)L, sizeof *ed);
    if (!ed) return pl_error(PL_ERR_NOMEM, "interp patch: out of memory");
    for (int l = 0; l < L; l++)
        ed[l] = (pl_edit){PL_EDIT_RECORD, point, l, -1, -1, acts + (size_t)l * (size_t)n * w, NULL, 0, NULL, -1};
    pl_status st = pl_imodel_run(im, ids, n, ed, (size_t)L, score, NULL);
    free(ed);
    return st;
}

/* Run n_seq copies of ids[p..n-1], each on a fork of prefix (or on a fresh
 * cache when prefix is NULL, p = 0), with edits; scores[i] per copy. */
static pl_status run_forks(pl_imodel *im, pl_kv *prefix, const int32_t *ids, int n, int p, int n_seq,
                           const pl_edit *ed, size_t n_ed, float *lg, double *scores) {
    pl_kv **kv = calloc((size_t)n_seq, sizeof *kv);
    pl_seq *seqs = calloc((size_t)n_seq, sizeof *seqs);
    pl_status st = (kv && seqs) ? PL_OK : pl_error(PL_ERR_NOMEM, "interp patch: out of memory");
    for (int i = 0; i < n_seq && st == PL_OK; i++) {
        st = pl_kv_new(im->m, n - p, prefix, &kv[i]);
        seqs[i] = (pl_seq){kv[i], ids + p, n - p};
    }
    if (st == PL_OK) st = pl_imodel_set_edits(im, ed, n_ed);
    if (st == PL_OK) st = pl_forward(im->run, seqs, n_seq, PL_LOGITS_LAST, lg);
    pl_runner_clear_hooks(im->run);
    size_t V = (size_t)pl_model_desc(im->m)->n_vocab;
    for (int i = 0; i < n_seq && st == PL_OK; i++)
        scores[i] = (double)lg[(size_t)i * V + (size_t)im->pos_id] - (double)lg[(size_t)i * V + (size_t)im->neg_id];
    if (kv)
        for (int i = n_seq - 1; i >= 0; i--) pl_kv_free(kv[i]);
    free(kv);
    free(seqs);
    return st;
}

pl_status pl_imodel_patch(pl_imodel *im, const int32_t *clean, int n_clean, const int32_t *corrupt, int n_corrupt,
                          pl_hook_point point, int noising, pl_patch_result *out) {
    memset(out, 0, sizeof *out);
    if (!per_position(point)) {
        char nm[64];
        return pl_error(PL_ERR_UNSUPPORTED, "interp patch: hook %s cannot be patched (per-position hooks only)",
                        pl_hook_name(point, 0, nm, sizeof nm));
    }
    if (n_clean <= 0 || n_corrupt <= 0 || n_clean > im->max_ctx || n_corrupt > im->max_ctx)
        return pl_error(PL_ERR_RANGE, "interp patch: prompts of %d and %d tokens (limit %d)", n_clean, n_corrupt,
                        im->max_ctx);
    const pl_arch_desc *d = pl_model_desc(im->m);
    int L = d->n_layer, H = d->n_head;
    const int32_t *run = noising ? clean : corrupt, *src = noising ? corrupt : clean;
    int n_run = noising ? n_clean : n_corrupt, n_src = noising ? n_corrupt : n_clean;
    size_t w = pl_imodel_width(im, point), V = (size_t)d->n_vocab;
    int heads = point == PL_HOOK_Z;
    size_t n_cols = heads ? (size_t)H : (size_t)n_run;
    int *map = malloc((size_t)n_run * sizeof *map);
    float *sa = malloc((size_t)L * (size_t)n_src * w * sizeof(float));
    float *ra = malloc((size_t)L * (size_t)n_run * w * sizeof(float));
    int max_seq = im->max_batch / n_run;
    if (max_seq < 1) max_seq = 1;
    if (max_seq > (heads ? H : L)) max_seq = heads ? H : L;
    float *lg = malloc((size_t)max_seq * V * sizeof(float));
    double *sc = malloc((size_t)max_seq * sizeof *sc);
    pl_edit *ed = calloc((size_t)max_seq, sizeof *ed);
    out->scores = malloc((size_t)L * n_cols * sizeof *out->scores);
    out->n_run = n_run;
    pl_kv *kv = NULL;
    pl_status st = (map && sa && ra && lg && sc && ed && out->scores)
                       ? PL_OK
                       : pl_error(PL_ERR_NOMEM, "interp patch: out of memory");
    double s_src = 0, s_run = 0;
    if (st == PL_OK) {
        pl_patch_align(run, n_run, src, n_src, map);
        st = record_all(im, src, n_src, point, sa, &s_src);
    }
    if (st == PL_OK && heads) {
        st = record_all(im, run, n_run, point, ra, &s_run);
        /* aligned source: the run's own rows where there is no counterpart */
        for (int l = 0; l < L && st == PL_OK; l++)
            for (int p = 0; p < n_run; p++)
                if (map[p] >= 0)
                    memcpy(ra + ((size_t)l * (size_t)n_run + (size_t)p) * w,
                           sa + ((size_t)l * (size_t)n_src + (size_t)map[p]) * w, w * sizeof(float));
        for (int l = 0; l < L && st == PL_OK; l++)
            for (int h0 = 0; h0 < H && st == PL_OK; h0 += max_seq) {
                int k = H - h0 < max_seq ? H - h0 : max_seq;
                for (int i = 0; i < k; i++)
                    ed[i] = (pl_edit){PL_EDIT_SET, point, l, -1, h0 + i, NULL, ra + (size_t)l * (size_t)n_run * w, w,
                                      NULL, i};
                st = run_forks(im, NULL, run, n_run, 0, k, ed, (size_t)k, lg, sc);
                for (int i = 0; i < k && st == PL_OK; i++) out->scores[(size_t)l * n_cols + (size_t)(h0 + i)] = sc[i];
            }
    } else if (st == PL_OK) {
        /* the run's own activations, to skip patches that write identical values */
        if (im->skip_identical) st = record_all(im, run, n_run, point, ra, NULL);
        if (st == PL_OK) st = pl_kv_new(im->m, n_run, NULL, &kv);
        if (st == PL_OK) {
            pl_seq s = {kv, run, n_run};
            st = pl_forward(im->run, &s, 1, PL_LOGITS_LAST, lg);
            if (st == PL_OK) s_run = (double)lg[im->pos_id] - (double)lg[im->neg_id];
        }
        int *todo = malloc((size_t)L * sizeof *todo);
        if (!todo && st == PL_OK) st = pl_error(PL_ERR_NOMEM, "interp patch: out of memory");
        for (int p = n_run - 1; p >= 0 && st == PL_OK; p--) {
            st = pl_kv_truncate(kv, p);
            if (st != PL_OK) break;
            if (map[p] < 0) {
                for (int l = 0; l < L; l++) out->scores[(size_t)l * n_cols + (size_t)p] = NAN;
                continue;
            }
            int ms = im->max_batch / (n_run - p), nt = 0;
            if (ms < 1) ms = 1;
            if (ms > max_seq) ms = max_seq;
            for (int l = 0; l < L; l++) {
                const float *sr = sa + ((size_t)l * (size_t)n_src + (size_t)map[p]) * w;
                const float *rr = ra + ((size_t)l * (size_t)n_run + (size_t)p) * w;
                /* writing the value the run already has is the unpatched run (bitwise) */
                if (im->skip_identical && !memcmp(sr, rr, w * sizeof(float)))
                    out->scores[(size_t)l * n_cols + (size_t)p] = s_run;
                else todo[nt++] = l;
            }
            for (int t0 = 0; t0 < nt && st == PL_OK; t0 += ms) {
                int k = nt - t0 < ms ? nt - t0 : ms;
                for (int i = 0; i < k; i++)
                    ed[i] = (pl_edit){PL_EDIT_SET, point, todo[t0 + i], p, -1, NULL,
                                      sa + ((size_t)todo[t0 + i] * (size_t)n_src + (size_t)map[p]) * w, 0, NULL, i};
                st = run_forks(im, kv, run, n_run, p, k, ed, (size_t)k, lg, sc);
                for (int i = 0; i < k && st == PL_OK; i++) out->scores[(size_t)todo[t0 + i] * n_cols + (size_t)p] = sc[i];
            }
        }
        free(todo);
    }
    pl_kv_free(kv);
    if (st == PL_OK) {
        out->clean = noising ? s_run : s_src;
        out->corrupted = noising ? s_src : s_run;
        char title[128], nm[64];
        const char *hn = pl_hook_name(point, 0, nm, sizeof nm);
        const char *dot = strchr(hn + 7, '.');
        snprintf(title, sizeof title, "%s patching: %s, recovery by layer and %s", noising ? "noising" : "denoising",
                 dot ? dot + 1 : hn, heads ? "head" : "position");
        if (fabs(out->clean - out->corrupted) > PL_PATCH_MIN_GAP || !isfinite(out->clean - out->corrupted))
            st = pl_patch_grid(out->clean, out->corrupted, out->scores, (size_t)L, n_cols, &out->recovery, title);
        else if ((st = pl_grid_init(&out->recovery, (size_t)L, n_cols, title)) == PL_OK)
            for (size_t i = 0; i < (size_t)L * n_cols; i++) out->recovery.values[i] = NAN; /* undefined: no gap */
        if (st == PL_OK) st = pl_grid_label_rows(&out->recovery, "L");
        if (st == PL_OK) st = pl_grid_label_cols(&out->recovery, heads ? "H" : "");
    }
    free(map), free(sa), free(ra), free(lg), free(sc), free(ed);
    if (st != PL_OK) pl_patch_result_free(out);
    return st;
}

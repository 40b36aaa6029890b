/* llm_interp.c — the interp stage of a study for an LLM (llama, mistral,
 * gemma2), with the training's LoRA adapter attached: where the decision is
 * decodable, which heads and MLPs write it, whether ablating them confirms
 * it, what those heads read, and (with a known planted text) where patching
 * the text's tokens restores the decision. Everything is on the classifier
 * score s = logit(phishing label token) - logit(legitimate) at the answer
 * position (the last prompt token), as in eval.
 *
 * Samples (seeded shuffle of the test emails of all test corpora):
 *   - the analysis sample: the first interp.probe_examples emails. One
 *     forward each through the classifier with hooks keeping the answer row
 *     of hook_embed, resid_pre/mid/post, attn.hook_z and hook_mlp_out of
 *     every layer;
 *   - the ablation sample: the next interp.probe_examples emails (disjoint,
 *     so the components are chosen on other emails than the ones they are
 *     tested on); when fewer than ABL_MIN_N are left, the analysis sample
 *     itself (recorded as "same_sample": true).
 *
 * From the analysis sample:
 *   probe      L2 logistic probe per layer on resid_post (pl_probe_cv, 5-fold
 *              stratified CV); probe layer = first layer within 0.01 of the
 *              best CV accuracy;
 *   lens       logit lens: the readout (final RMSNorm, u_pos - u_neg, gemma2
 *              softcap) on resid_pre/mid/post of every layer; mean and sd per
 *              class and the AUC per row; the lens layer = the first
 *              resid_post layer whose AUC is within 0.01 of the best
 *              resid_post AUC; "separates" when that AUC >= LENS_SEP_AUC;
 *   dla        direct logit attribution with the final-norm scale frozen per
 *              email (pl_dla): embed, every head (W_O slice of its hook_z,
 *              gemma2's post-attention norm frozen the same way), every MLP
 *              and "rest" (final residual minus the others). Mean per class
 *              and difference phishing - legitimate per component; the top
 *              heads and MLPs by |difference|. The contributions of an email
 *              sum to its pre-softcap score (checked and recorded);
 * From the ablation sample:
 *   ablation   mean ablation (the analysis sample's mean answer-position
 *              hook_z slice / hook_mlp_out) of the top-k heads, and
 *              separately of the top MLPs, at the answer position; against
 *              ABL_CONTROLS seeded draws of as many random other heads (MLPs).
 *              Confirmed when the top set lowers F1 by at least
 *              ABL_CONFIRM_MARGIN more than every control draw does
 *              (dF1_top <= min dF1_control - margin) and lowers the class
 *              separation (mean score of phishing minus legitimate emails)
 *              more than every control draw;
 * Examples:
 *   attention  the top heads' attention from the answer position over every
 *              key position (tokens + weights) for one phishing and one
 *              legitimate email of the analysis sample;
 * Pairs (shortcut_hint set):
 *   patching   test phishing emails whose email tokens contain the hint text
 *              (case-insensitive) are the clean runs; the corrupted run is
 *              the same ids with the hint's tokens replaced by as many filler
 *              tokens (" the"), so positions align. Denoising resid_pre
 *              patching over layers x positions (pl_imodel_patch),
 *              normalized logit-difference recovery; per pair the grid is
 *              summarized by segment (hint tokens, after the hint, answer
 *              position: the largest recovery in the segment) and averaged
 *              over the pairs whose |clean - corrupted| >= PATCH_MIN_PAIR_GAP
 *              (smaller gaps make the ratio noise); the grid of the pair
 *              with the largest gap is kept around the hint.
 *              Up to interp.patch_pairs pairs. Without a hint the section
 *              records why it was skipped.
 */
#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "interp/interp.h"
#include "study/llm_internal.h"

#define TOP_HEADS 5           /* heads ablated together (at most a quarter of all heads) */
#define TOP_MLPS 2            /* MLPs ablated together (at most half the layers) */
#define TOP_LIST 12           /* components listed per kind */
#define ABL_CONTROLS 3        /* random control draws */
#define ABL_CONFIRM_MARGIN 0.05
#define ABL_MIN_N 10          /* below this, the ablation reuses the analysis sample */
#define LENS_SEP_AUC 0.75
#define ATTN_HEADS 3
#define PATCH_MIN_PAIR_GAP 0.1 /* |clean - corrupted| below this: the pair is listed, not averaged */
#define PATCH_WINDOW_AFTER 3  /* positions kept after the hint in the example grid */
#define PATCH_WINDOW_TAIL 6   /* last positions kept in the example grid */

/* ---- hooks on the classifier's runner -------------------------------------- */

enum { IX_CAPTURE = 0, IX_ABLATE, IX_PATTERN };

typedef struct {
    int mode;
    int L, H, hd;
    size_t D, HD;
    long want_end;          /* pos0 + n_tok of the chunk that holds the answer row */
    /* capture: answer rows */
    float *embed;           /* [D] */
    float *pre, *mid, *post, *mlp; /* [L x D] */
    float *z;               /* [L x HD] */
    /* ablate */
    const unsigned char *abl_head; /* [L x H] */
    const unsigned char *abl_mlp;  /* [L] */
    const float *zmean, *mmean;    /* [L x HD], [L x D] */
    /* pattern: rows of the answer query, [L x H x max_k], for the layers set in pat_layers [L] */
    const unsigned char *pat_layers;
    float *pat;
    size_t max_k, n_k;
} ix_state;

static void ix_hook(const pl_hook_info *info, float *data, void *user) {
    ix_state *x = user;
    if (info->ndim < 2 || info->shape[0] < 1) return;
    if (info->point == PL_HOOK_PATTERN) {
        int64_t Hh = info->shape[0], T = info->shape[1], K = info->shape[2];
        if ((long)info->pos0 + (long)T != x->want_end || info->layer < 0 || info->layer >= x->L || (size_t)K > x->max_k) return;
        for (int64_t h = 0; h < Hh && h < x->H; h++)
            memcpy(x->pat + ((size_t)info->layer * (size_t)x->H + (size_t)h) * x->max_k, data + (h * T + T - 1) * K,
                   (size_t)K * sizeof(float));
        x->n_k = (size_t)K;
        return;
    }
    if ((long)info->pos0 + (long)info->shape[0] != x->want_end) return; /* not the chunk with the answer row */
    size_t w = (size_t)info->shape[1] * (info->ndim == 3 ? (size_t)info->shape[2] : 1);
    float *row = data + (size_t)(info->shape[0] - 1) * w;
    int l = info->layer;
    if (x->mode == IX_CAPTURE) {
        float *dst = NULL;
        switch (info->point) {
        case PL_HOOK_EMBED: dst = x->embed; break;
        case PL_HOOK_RESID_PRE: dst = l >= 0 ? x->pre + (size_t)l * x->D : NULL; break;
        case PL_HOOK_RESID_MID: dst = l >= 0 ? x->mid + (size_t)l * x->D : NULL; break;
        case PL_HOOK_RESID_POST: dst = l >= 0 ? x->post + (size_t)l * x->D : NULL; break;
        case PL_HOOK_MLP_OUT: dst = l >= 0 ? x->mlp + (size_t)l * x->D : NULL; break;
        case PL_HOOK_Z: dst = l >= 0 ? x->z + (size_t)l * x->HD : NULL; break;
        default: break;
        }
        if (dst && l < x->L && w == (info->point == PL_HOOK_Z ? x->HD : x->D)) memcpy(dst, row, w * sizeof(float));
    } else if (x->mode == IX_ABLATE && l >= 0 && l < x->L) {
        if (info->point == PL_HOOK_Z && w == x->HD) {
            for (int h = 0; h < x->H; h++)
                if (x->abl_head[(size_t)l * (size_t)x->H + (size_t)h])
                    memcpy(row + (size_t)h * (size_t)x->hd, x->zmean + (size_t)l * x->HD + (size_t)h * (size_t)x->hd,
                           (size_t)x->hd * sizeof(float));
        } else if (info->point == PL_HOOK_MLP_OUT && w == x->D && x->abl_mlp[l]) {
            memcpy(row, x->mmean + (size_t)l * x->D, x->D * sizeof(float));
        }
    }
}

/* Score one record with the hooks of x's mode. */
static pl_status ix_score(pl_study_llm *l, ix_state *x, const pl_record *r, double *score) {
    pl_tokens em = {0};
    pl_status st = pl_prompt_email_ids(&l->pr, l->tok, r, &em, NULL);
    x->want_end = (long)(l->pr.prefix.n + em.n + l->pr.suffix.n);
    pl_tokens_free(&em);
    pl_runner *run = pl_classifier_runner(l->cls);
    static const pl_hook_point cap[] = {PL_HOOK_EMBED, PL_HOOK_RESID_PRE, PL_HOOK_RESID_MID, PL_HOOK_RESID_POST,
                                        PL_HOOK_Z, PL_HOOK_MLP_OUT};
    static const pl_hook_point abl[] = {PL_HOOK_Z, PL_HOOK_MLP_OUT};
    const pl_hook_point *pts = x->mode == IX_CAPTURE ? cap : abl;
    size_t np = x->mode == IX_CAPTURE ? 6 : x->mode == IX_ABLATE ? 2 : 0;
    for (size_t k = 0; k < np && !st; k++) st = pl_runner_set_hook(run, pts[k], -1, ix_hook, x);
    if (!st && x->mode == IX_PATTERN) {
        for (int layer = 0; layer < x->L && !st; layer++)
            if (x->pat_layers[layer]) st = pl_runner_set_hook(run, PL_HOOK_PATTERN, layer, ix_hook, x);
    }
    if (!st) st = pl_study_llm_score(l, &r, 1, score);
    pl_runner_clear_hooks(run);
    if (st) st = pl_error_wrap(st, "email %s", r->id);
    return st;
}

/* ---- small helpers ------------------------------------------------------------ */

static cJSON *num(double v) { return pl_json_num_or_null(v); }

static cJSON *num_array(const double *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) cJSON_AddItemToArray(a, num(v[i]));
    return a;
}

/* mean score of phishing minus mean score of legitimate emails */
static double separation(const double *s, const int *y, size_t n) {
    double a = 0, b = 0;
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] == 1) a += s[i], na++;
        else b += s[i], nb++;
    }
    return na && nb ? a / (double)na - b / (double)nb : (double)NAN;
}

/* Decoded text of one token (leading space kept), for display. */
static pl_status token_text(const pl_tokenizer *tok, int32_t id, pl_buf *b) {
    b->len = 0;
    pl_status st = pl_tokenizer_decode(tok, &id, 1, PL_TOK_KEEP_PREFIX, b);
    if (!st) st = pl_buf_append(b, "", 1);
    return st;
}

/* ---- the analysis sample ---------------------------------------------------- */

typedef struct {
    size_t n;                /* emails */
    int *y;
    const char **ids;        /* record ids (borrowed) */
    double *score;           /* the model's score */
    float *X;                /* [L][n][D] resid_post rows (probe) */
    double *lens;            /* [n][3L] */
    size_t n_comp;
    char **labels;           /* [n_comp] */
    double *contrib;         /* [n][n_comp] */
    double *dla_sum, *lin;   /* [n]: sum of contributions, pre-softcap readout of the final residual */
    double *zsum, *msum;     /* [L x HD], [L x D] sums of answer rows */
} sample_t;

static void sample_free(sample_t *s) {
    free(s->y), free((void *)s->ids), free(s->score), free(s->X), free(s->lens), free(s->contrib), free(s->dla_sum), free(s->lin);
    free(s->zsum), free(s->msum);
    for (size_t k = 0; s->labels && k < s->n_comp; k++) free(s->labels[k]);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

typedef struct {
    pl_study_llm *l;
    const pl_arch_desc *d;
    pl_readout ro;
    float *u_pos, *u_neg;
    float *wo;               /* [L x D x HD] when cached, else NULL */
    float *wo1;              /* [D x HD] scratch */
    ix_state x;
} ictx;

static pl_status analyse(ictx *c, const pl_record *const *recs, size_t n, sample_t *s) {
    int L = c->x.L, H = c->x.H;
    size_t D = c->x.D, HD = c->x.HD;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->n_comp = 1 + (size_t)L * (size_t)H + (size_t)L + 1;
    size_t n1 = n ? n : 1;
    s->y = calloc(n1, sizeof *s->y);
    s->ids = calloc(n1, sizeof *s->ids);
    s->score = calloc(n1, sizeof *s->score);
    s->X = malloc((size_t)L * n1 * D * sizeof *s->X);
    s->lens = calloc(n1 * 3 * (size_t)L, sizeof *s->lens);
    s->contrib = calloc(n1 * s->n_comp, sizeof *s->contrib);
    s->dla_sum = calloc(n1, sizeof *s->dla_sum);
    s->lin = calloc(n1, sizeof *s->lin);
    s->zsum = calloc((size_t)L * HD, sizeof *s->zsum);
    s->msum = calloc((size_t)L * D, sizeof *s->msum);
    s->labels = calloc(s->n_comp, sizeof *s->labels);
    float *comps = malloc(s->n_comp * D * sizeof *comps);
    pl_status st = s->y && s->ids && s->score && s->X && s->lens && s->contrib && s->dla_sum && s->lin && s->zsum && s->msum &&
                           s->labels && comps
                       ? PL_OK
                       : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < s->n_comp && !st; k++) {
        char lab[48];
        if (k == 0) snprintf(lab, sizeof lab, "embed");
        else if (k == s->n_comp - 1) snprintf(lab, sizeof lab, "rest");
        else {
            size_t j = k - 1, layer = j / (size_t)(H + 1), h = j % (size_t)(H + 1);
            if (h < (size_t)H) snprintf(lab, sizeof lab, "L%zuH%zu", layer, h);
            else snprintf(lab, sizeof lab, "L%zu.mlp", layer);
        }
        if (!(s->labels[k] = pl_study_strdup(lab))) st = pl_error(PL_ERR_NOMEM, "out of memory");
    }
    pl_readout lin = c->ro;
    lin.softcap = 0;
    c->x.mode = IX_CAPTURE;
    for (size_t i = 0; i < n && !st; i++) {
        st = ix_score(c->l, &c->x, recs[i], &s->score[i]);
        if (st) break;
        s->y[i] = recs[i]->label;
        s->ids[i] = recs[i]->id;
        for (int layer = 0; layer < L; layer++) {
            memcpy(s->X + ((size_t)layer * n + i) * D, c->x.post + (size_t)layer * D, D * sizeof(float));
            s->lens[i * 3 * (size_t)L + (size_t)layer * 3] = pl_lens_score(&c->ro, c->x.pre + (size_t)layer * D);
            s->lens[i * 3 * (size_t)L + (size_t)layer * 3 + 1] = pl_lens_score(&c->ro, c->x.mid + (size_t)layer * D);
            s->lens[i * 3 * (size_t)L + (size_t)layer * 3 + 2] = pl_lens_score(&c->ro, c->x.post + (size_t)layer * D);
            for (size_t q = 0; q < HD; q++) s->zsum[(size_t)layer * HD + q] += (double)c->x.z[(size_t)layer * HD + q];
            for (size_t q = 0; q < D; q++) s->msum[(size_t)layer * D + q] += (double)c->x.mlp[(size_t)layer * D + q];
        }
        /* components: embed, per layer its heads then its MLP, rest */
        memcpy(comps, c->x.embed, D * sizeof(float));
        size_t cc = 1;
        for (int layer = 0; layer < L && !st; layer++) {
            const float *wo = c->wo ? c->wo + (size_t)layer * D * HD : c->wo1;
            if (!c->wo) st = pl_model_o_proj_f32(c->l->m, layer, c->wo1);
            if (!st)
                st = pl_dla_head_outputs(c->x.z + (size_t)layer * HD, wo, (size_t)H, (size_t)c->x.hd, D,
                                         pl_model_post_attn_norm(c->l->m, layer), 0.0f, c->d->norm_eps, comps + cc * D);
            cc += (size_t)H;
            memcpy(comps + cc * D, c->x.mlp + (size_t)layer * D, D * sizeof(float));
            cc++;
        }
        if (st) break;
        const float *fin = c->x.post + (size_t)(L - 1) * D;
        for (size_t j = 0; j < D; j++) {
            double sum = 0;
            for (size_t k = 0; k < cc; k++) sum += (double)comps[k * D + j];
            comps[cc * D + j] = (float)((double)fin[j] - sum);
        }
        double scale = 0, tot = 0;
        st = pl_dla(&c->ro, comps, s->n_comp, fin, s->contrib + i * s->n_comp, &scale);
        for (size_t k = 0; k < s->n_comp && !st; k++) tot += s->contrib[i * s->n_comp + k];
        s->dla_sum[i] = tot;
        s->lin[i] = pl_lens_score(&lin, fin);
    }
    free(comps);
    if (st) sample_free(s);
    return st;
}

/* ---- sections ------------------------------------------------------------------- */

static cJSON *lens_json(const sample_t *s, int L, long *lens_layer, double *lens_auc) {
    size_t R = 3 * (size_t)L, n = s->n;
    static const char *kind[3] = {"resid_pre", "resid_mid", "resid_post"};
    cJSON *o = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    cJSON *mp = cJSON_AddArrayToObject(o, "mean_phishing"), *ml = cJSON_AddArrayToObject(o, "mean_legitimate");
    cJSON *sp = cJSON_AddArrayToObject(o, "sd_phishing"), *sl = cJSON_AddArrayToObject(o, "sd_legitimate");
    cJSON *au = cJSON_AddArrayToObject(o, "auc");
    double *col = malloc((n ? n : 1) * sizeof *col), best = -1;
    double *aucs = calloc(R, sizeof *aucs);
    for (size_t r = 0; col && aucs && r < R; r++) {
        char lab[48];
        snprintf(lab, sizeof lab, "L%zu.%s", r / 3, kind[r % 3]);
        cJSON_AddItemToArray(rows, cJSON_CreateString(lab));
        for (size_t i = 0; i < n; i++) col[i] = s->lens[i * R + r];
        double mean[2], sd[2];
        size_t cnt[2];
        pl_lens_class_means(col, s->y, n, 2, mean, sd, cnt);
        cJSON_AddItemToArray(mp, num(mean[1]));
        cJSON_AddItemToArray(ml, num(mean[0]));
        cJSON_AddItemToArray(sp, num(sd[1]));
        cJSON_AddItemToArray(sl, num(sd[0]));
        aucs[r] = pl_interp_auc(col, s->y, n);
        cJSON_AddItemToArray(au, num(aucs[r]));
        if (r % 3 == 2 && isfinite(aucs[r]) && aucs[r] > best) best = aucs[r];
    }
    *lens_layer = -1;
    *lens_auc = NAN;
    for (int layer = 0; aucs && layer < L && *lens_layer < 0; layer++)
        if (isfinite(aucs[layer * 3 + 2]) && aucs[layer * 3 + 2] >= best - 0.01) {
            *lens_layer = layer;
            *lens_auc = aucs[layer * 3 + 2];
        }
    cJSON_AddStringToObject(o, "position", "answer");
    cJSON_AddStringToObject(o, "score", "logit(phishing) - logit(legitimate) through the final norm");
    cJSON_AddNumberToObject(o, "lens_layer", (double)*lens_layer);
    cJSON_AddItemToObject(o, "lens_layer_auc", num(*lens_auc));
    cJSON_AddBoolToObject(o, "separates", isfinite(*lens_auc) && *lens_auc >= LENS_SEP_AUC);
    cJSON_AddNumberToObject(o, "separation_auc_threshold", LENS_SEP_AUC);
    free(col);
    free(aucs);
    return o;
}

typedef struct {
    int layer, head; /* head -1: MLP */
    double diff;
} comp_t;

static int cmp_comp(const void *a, const void *b) {
    const comp_t *x = a, *y = b;
    double fx = fabs(x->diff), fy = fabs(y->diff);
    if (fx != fy) return fx > fy ? -1 : 1;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return x->head < y->head ? -1 : x->head > y->head;
}

/* DLA per class; fills the ranked heads (hs, n_heads_total) and MLPs (ms, L). */
static cJSON *dla_json(const sample_t *s, int L, int H, int softcap, comp_t *hs, comp_t *ms, double *max_err) {
    size_t C = s->n_comp, n = s->n;
    double *mp = calloc(C, sizeof *mp), *ml = calloc(C, sizeof *ml), *df = calloc(C, sizeof *df);
    cJSON *o = cJSON_CreateObject();
    if (!mp || !ml || !df || !o) {
        free(mp), free(ml), free(df);
        cJSON_Delete(o);
        return NULL;
    }
    size_t np = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < C; k++) (s->y[i] == 1 ? mp : ml)[k] += s->contrib[i * C + k];
        if (s->y[i] == 1) np++;
        else nl++;
    }
    for (size_t k = 0; k < C; k++) {
        mp[k] = np ? mp[k] / (double)np : (double)NAN;
        ml[k] = nl ? ml[k] / (double)nl : (double)NAN;
        df[k] = mp[k] - ml[k];
    }
    cJSON *lab = cJSON_AddArrayToObject(o, "components");
    for (size_t k = 0; k < C; k++) cJSON_AddItemToArray(lab, cJSON_CreateString(s->labels[k]));
    cJSON_AddItemToObject(o, "mean_phishing", num_array(mp, C));
    cJSON_AddItemToObject(o, "mean_legitimate", num_array(ml, C));
    cJSON_AddItemToObject(o, "difference", num_array(df, C));
    /* ranking */
    for (int layer = 0; layer < L; layer++) {
        for (int h = 0; h < H; h++) hs[layer * H + h] = (comp_t){layer, h, df[1 + (size_t)layer * (size_t)(H + 1) + (size_t)h]};
        ms[layer] = (comp_t){layer, -1, df[1 + (size_t)layer * (size_t)(H + 1) + (size_t)H]};
    }
    qsort(hs, (size_t)L * (size_t)H, sizeof *hs, cmp_comp);
    qsort(ms, (size_t)L, sizeof *ms, cmp_comp);
    for (int kind = 0; kind < 2; kind++) {
        cJSON *a = cJSON_AddArrayToObject(o, kind ? "top_mlps" : "top_heads");
        size_t m = kind ? (size_t)L : (size_t)L * (size_t)H;
        const comp_t *v = kind ? ms : hs;
        for (size_t i = 0; i < m && i < TOP_LIST; i++) {
            char nm[48];
            if (kind) snprintf(nm, sizeof nm, "L%d.mlp", v[i].layer);
            else snprintf(nm, sizeof nm, "L%dH%d", v[i].layer, v[i].head);
            size_t k = 1 + (size_t)v[i].layer * (size_t)(H + 1) + (kind ? (size_t)H : (size_t)v[i].head);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "component", nm);
            cJSON_AddNumberToObject(e, "layer", v[i].layer);
            if (!kind) cJSON_AddNumberToObject(e, "head", v[i].head);
            cJSON_AddItemToObject(e, "difference", num(df[k]));
            cJSON_AddItemToObject(e, "mean_phishing", num(mp[k]));
            cJSON_AddItemToObject(e, "mean_legitimate", num(ml[k]));
            cJSON_AddItemToArray(a, e);
        }
    }
    /* the sum identity, per email */
    double e_lin = 0, e_score = 0;
    for (size_t i = 0; i < n; i++) {
        e_lin = fmax(e_lin, fabs(s->dla_sum[i] - s->lin[i]));
        e_score = fmax(e_score, fabs(s->dla_sum[i] - s->score[i]));
    }
    cJSON *id = cJSON_AddObjectToObject(o, "sum_check");
    cJSON *ida = cJSON_AddArrayToObject(id, "ids");
    for (size_t i = 0; ida && i < n; i++) cJSON_AddItemToArray(ida, cJSON_CreateString(s->ids[i]));
    cJSON_AddItemToObject(id, "dla_sum", num_array(s->dla_sum, n));
    cJSON_AddItemToObject(id, "score", num_array(s->score, n));
    cJSON_AddItemToObject(id, "max_abs_error_vs_readout", num(e_lin));
    /* with a softcap the model's score is not linear in the residual */
    cJSON_AddItemToObject(id, "max_abs_error_vs_score", softcap ? cJSON_CreateNull() : num(e_score));
    *max_err = softcap ? e_lin : fmax(e_lin, e_score);
    cJSON_AddStringToObject(o, "position", "answer");
    cJSON_AddStringToObject(o, "scale", "final RMSNorm scale frozen per email");
    cJSON_AddNumberToObject(o, "n_phishing", (double)np);
    cJSON_AddNumberToObject(o, "n_legitimate", (double)nl);
    free(mp), free(ml), free(df);
    return o;
}

/* One ablation run over the ablation sample; NULL masks = no ablation. */
static pl_status ablate_run(ictx *c, const pl_record *const *recs, size_t n, const unsigned char *heads,
                            const unsigned char *mlps, double *scores, pl_preds *ps) {
    c->x.mode = IX_ABLATE;
    c->x.abl_head = heads;
    c->x.abl_mlp = mlps;
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (!heads) st = pl_study_llm_score(c->l, &recs[i], 1, &scores[i]);
        else st = ix_score(c->l, &c->x, recs[i], &scores[i]);
        if (!st) st = pl_preds_push_scored(ps, recs[i], scores[i]);
    }
    return st;
}

static cJSON *effect_json(const pl_ablate_effect *e, double sep_before, double sep_after) {
    cJSON *j = pl_ablate_effect_json(e);
    if (j) {
        cJSON_AddItemToObject(j, "separation_before", num(sep_before));
        cJSON_AddItemToObject(j, "separation_after", num(sep_after));
        cJSON_AddItemToObject(j, "delta_separation", num(sep_after - sep_before));
    }
    return j;
}

/* Ablate the top set of one kind and ABL_CONTROLS random sets of the same
 * size; kind 0 heads, 1 MLPs. */
static pl_status ablate_kind(ictx *c, int kind, const comp_t *rank, size_t n_all, size_t k,
                             const pl_record *const *recs, size_t n, const int *y, const pl_preds *before,
                             const double *base, uint64_t seed, cJSON *out) {
    int L = c->x.L, H = c->x.H;
    size_t cells = kind ? (size_t)L : (size_t)L * (size_t)H;
    unsigned char *mask = calloc(cells, 1), *zero = calloc((size_t)L * (size_t)H + (size_t)L, 1);
    double *sc = malloc((n ? n : 1) * sizeof *sc);
    size_t *pool = malloc(n_all * sizeof *pool);
    pl_status st = mask && zero && sc && pool ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    double sep0 = separation(base, y, n);
    cJSON *top = cJSON_AddObjectToObject(out, "top"), *ctl = cJSON_AddArrayToObject(out, "controls");
    cJSON *names = cJSON_AddArrayToObject(top, "components");
    for (size_t i = 0; i < k && !st; i++) {
        size_t cell = kind ? (size_t)rank[i].layer : (size_t)rank[i].layer * (size_t)H + (size_t)rank[i].head;
        mask[cell] = 1;
        char nm[48];
        if (kind) snprintf(nm, sizeof nm, "L%d.mlp", rank[i].layer);
        else snprintf(nm, sizeof nm, "L%dH%d", rank[i].layer, rank[i].head);
        cJSON_AddItemToArray(names, cJSON_CreateString(nm));
    }
    double d_top = NAN, min_ctl = INFINITY, s_top = NAN, min_sctl = INFINITY;
    /* no control without components outside the top set */
    int n_runs = n_all > k ? ABL_CONTROLS : 0;
    if (!n_runs) cJSON_AddStringToObject(out, "reason", "no components outside the top set to draw controls from");
    for (int run = 0; run <= n_runs && !st; run++) {
        cJSON *dst = run == 0 ? top : cJSON_CreateObject();
        if (run > 0) {
            /* a seeded draw of k components among those not in the top set */
            memset(mask, 0, cells);
            size_t m = 0;
            for (size_t i = k; i < n_all; i++)
                pool[m++] = kind ? (size_t)rank[i].layer : (size_t)rank[i].layer * (size_t)H + (size_t)rank[i].head;
            for (size_t i = 0; i < m; i++) /* canonical order before the shuffle */
                for (size_t j = i + 1; j < m; j++)
                    if (pool[j] < pool[i]) {
                        size_t t = pool[i];
                        pool[i] = pool[j];
                        pool[j] = t;
                    }
            pl_rng rng;
            pl_rng_seed(&rng, seed ^ (0xab1a7e00u + (uint64_t)(kind * 16 + run)));
            pl_rng_shuffle(&rng, pool, m, sizeof *pool);
            cJSON *cn = cJSON_AddArrayToObject(dst, "components");
            for (size_t i = 0; i < k && i < m; i++) {
                mask[pool[i]] = 1;
                char nm[48];
                if (kind) snprintf(nm, sizeof nm, "L%zu.mlp", pool[i]);
                else snprintf(nm, sizeof nm, "L%zuH%zu", pool[i] / (size_t)H, pool[i] % (size_t)H);
                cJSON_AddItemToArray(cn, cJSON_CreateString(nm));
            }
            cJSON_AddItemToArray(ctl, dst);
        }
        pl_preds after = {0};
        st = ablate_run(c, recs, n, kind ? zero : mask, kind ? mask : zero, sc, &after);
        pl_ablate_effect e;
        if (!st) st = pl_ablate_effect_of(before, &after, 0.5, &e);
        if (!st) {
            double ds = separation(sc, y, n) - sep0;
            cJSON *ej = effect_json(&e, sep0, sep0 + ds);
            cJSON_AddItemToObject(dst, "effect", ej);
            if (run == 0) d_top = e.delta_f1, s_top = ds;
            else min_ctl = fmin(min_ctl, e.delta_f1), min_sctl = fmin(min_sctl, ds);
        }
        pl_preds_free(&after);
    }
    if (!st) {
        int confirmed = isfinite(d_top) && isfinite(min_ctl) && d_top <= min_ctl - ABL_CONFIRM_MARGIN &&
                        isfinite(s_top) && s_top < 0 && s_top < min_sctl;
        cJSON_AddNumberToObject(out, "k", (double)k);
        cJSON_AddItemToObject(out, "delta_f1", num(d_top));
        cJSON_AddItemToObject(out, "control_min_delta_f1", num(isfinite(min_ctl) ? min_ctl : (double)NAN));
        cJSON_AddItemToObject(out, "delta_separation", num(s_top));
        cJSON_AddItemToObject(out, "control_min_delta_separation", num(isfinite(min_sctl) ? min_sctl : (double)NAN));
        cJSON_AddBoolToObject(out, "confirmed", confirmed);
    }
    free(mask), free(zero), free(sc), free(pool);
    return st;
}

/* ---- attention ------------------------------------------------------------------- */

static pl_status attention_example(ictx *c, const pl_record *r, const comp_t *heads, size_t nh, cJSON *arr) {
    int L = c->x.L, H = c->x.H;
    pl_tokens em = {0}, full = {0};
    pl_status st = pl_prompt_email_ids(&c->l->pr, c->l->tok, r, &em, NULL);
    if (!st) st = pl_prompt_full(&c->l->pr, em.ids, em.n, &full);
    unsigned char *layers = calloc((size_t)L, 1);
    c->x.max_k = full.n;
    c->x.n_k = 0;
    c->x.pat = calloc((size_t)L * (size_t)H * (full.n ? full.n : 1), sizeof *c->x.pat);
    if (!st && (!layers || !c->x.pat)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nh && !st; i++) layers[heads[i].layer] = 1;
    double score = NAN;
    c->x.mode = IX_PATTERN;
    c->x.pat_layers = layers;
    if (!st) st = ix_score(c->l, &c->x, r, &score);
    if (!st && c->x.n_k != full.n)
        st = pl_error(PL_ERR_INVALID, "attention of email %s: %zu keys recorded, the prompt has %zu tokens", r->id,
                      c->x.n_k, full.n);
    if (!st) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", r->id);
        cJSON_AddNumberToObject(e, "label", r->label);
        cJSON_AddItemToObject(e, "score", num(score));
        cJSON *tk = cJSON_AddArrayToObject(e, "tokens");
        pl_buf b = {0};
        for (size_t p = 0; p < full.n && !st; p++) {
            st = token_text(c->l->tok, full.ids[p], &b);
            if (!st) cJSON_AddItemToArray(tk, cJSON_CreateString(b.data));
        }
        pl_buf_free(&b);
        cJSON *hj = cJSON_AddArrayToObject(e, "heads");
        for (size_t i = 0; i < nh && !st; i++) {
            cJSON *h = cJSON_CreateObject();
            char nm[48];
            snprintf(nm, sizeof nm, "L%dH%d", heads[i].layer, heads[i].head);
            cJSON_AddStringToObject(h, "head", nm);
            const float *w = c->x.pat + ((size_t)heads[i].layer * (size_t)H + (size_t)heads[i].head) * full.n;
            cJSON *wa = cJSON_AddArrayToObject(h, "weights");
            for (size_t p = 0; p < full.n; p++) cJSON_AddItemToArray(wa, num(w[p]));
            cJSON_AddItemToArray(hj, h);
        }
        cJSON_AddNumberToObject(e, "query_position", (double)full.n - 1);
        cJSON_AddItemToArray(arr, e);
    }
    free(c->x.pat);
    c->x.pat = NULL;
    free(layers);
    pl_tokens_free(&em);
    pl_tokens_free(&full);
    return st;
}

/* ---- patching --------------------------------------------------------------------- */

/* Token span [*a, *b) of the email ids whose decoded text overlaps the first
 * case-insensitive occurrence of hint; 0 when absent. */
static pl_status find_hint(const pl_tokenizer *tok, const pl_tokens *em, const char *hint, size_t *a, size_t *b,
                           int *found) {
    *found = 0;
    while (*hint && isspace((unsigned char)*hint)) hint++;
    size_t hl = strlen(hint);
    while (hl && isspace((unsigned char)hint[hl - 1])) hl--;
    if (!hl) return PL_OK;
    pl_buf text = {0}, piece = {0};
    size_t *start = malloc((em->n + 1) * sizeof *start);
    pl_status st = start ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < em->n && !st; k++) {
        start[k] = text.len;
        piece.len = 0;
        st = pl_tokenizer_decode(tok, &em->ids[k], 1, PL_TOK_KEEP_PREFIX, &piece);
        if (!st && piece.len) st = pl_buf_append(&text, piece.data, piece.len);
    }
    if (!st) start[em->n] = text.len;
    for (size_t i = 0; !st && i + hl <= text.len && !*found; i++) {
        size_t j = 0;
        while (j < hl && tolower((unsigned char)text.data[i + j]) == tolower((unsigned char)hint[j])) j++;
        if (j < hl) continue;
        size_t s0 = i, s1 = i + hl, ta = em->n, tb = 0;
        for (size_t k = 0; k < em->n; k++)
            if (start[k] < s1 && start[k + 1] > s0) {
                if (k < ta) ta = k;
                tb = k + 1;
            }
        if (ta < tb) *a = ta, *b = tb, *found = 1;
    }
    free(start);
    pl_buf_free(&text);
    pl_buf_free(&piece);
    return st;
}

static pl_status patching(ictx *c, const pl_study_config *cfg, const pl_records *rs, const size_t *order,
                          cJSON **out) {
    cJSON *o = cJSON_CreateObject();
    *out = o;
    if (!o) return pl_error(PL_ERR_NOMEM, "out of memory");
    if (!cfg->shortcut_hint || !cfg->shortcut_hint[0]) {
        cJSON_AddStringToObject(o, "status", "skipped");
        cJSON_AddStringToObject(o, "reason", "no shortcut_hint in the config: no clean/corrupted pairs to patch");
        return PL_OK;
    }
    if (cfg->interp_patch_pairs == 0) {
        cJSON_AddStringToObject(o, "status", "skipped");
        cJSON_AddStringToObject(o, "reason", "interp.patch_pairs is 0 in the config");
        return PL_OK;
    }
    pl_study_llm *l = c->l;
    int L = c->x.L;
    /* the filler: the last token of " the" */
    pl_tokens ft = {0};
    pl_status st = pl_tokenizer_encode(l->tok, " the", 4, 0, &ft);
    int32_t filler = !st && ft.n ? ft.ids[ft.n - 1] : -1;
    pl_tokens_free(&ft);
    if (!st && filler < 0) st = pl_error(PL_ERR_UNSUPPORTED, "no filler token for patching");
    int max_ctx = (int)(l->pr.prefix.n + l->pr.suffix.n) + l->pr.max_email_tokens;
    pl_imodel *im = NULL;
    if (!st) st = pl_imodel_new(l->m, l->pr.label_pos_id, l->pr.label_neg_id, max_ctx, 2 * max_ctx, &im);
    static const char *seg[3] = {"hint", "after hint", "answer"};
    double *agg = calloc((size_t)L * 3, sizeof *agg);
    size_t *cnt = calloc((size_t)L * 3, sizeof *cnt);
    if (!st && (!agg || !cnt)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    cJSON *pairs = cJSON_AddArrayToObject(o, "pairs");
    size_t n_pairs = 0, n_hint = 0, n_nogap = 0;
    double best_gap = -1;
    for (size_t q = 0; q < rs->n && n_pairs < cfg->interp_patch_pairs && !st; q++) {
        const pl_record *r = &rs->v[order[q]];
        if (r->label != 1) continue;
        pl_tokens em = {0}, clean = {0}, corr = {0};
        size_t a = 0, b = 0;
        int found = 0;
        st = pl_prompt_email_ids(&l->pr, l->tok, r, &em, NULL);
        if (!st) st = find_hint(l->tok, &em, cfg->shortcut_hint, &a, &b, &found);
        if (!st && found) {
            n_hint++;
            st = pl_prompt_full(&l->pr, em.ids, em.n, &clean);
            for (size_t k = a; k < b && !st; k++) em.ids[k] = filler;
            if (!st) st = pl_prompt_full(&l->pr, em.ids, em.n, &corr);
            pl_patch_result pr;
            memset(&pr, 0, sizeof pr);
            if (!st)
                st = pl_imodel_patch(im, clean.ids, (int)clean.n, corr.ids, (int)corr.n, PL_HOOK_RESID_PRE, 0, &pr);
            if (!st) {
                size_t P = l->pr.prefix.n, n = clean.n, h0 = P + a, h1 = P + b;
                cJSON *pj = cJSON_CreateObject();
                cJSON_AddStringToObject(pj, "id", r->id);
                cJSON_AddItemToObject(pj, "clean", num(pr.clean));
                cJSON_AddItemToObject(pj, "corrupted", num(pr.corrupted));
                cJSON_AddNumberToObject(pj, "hint_start", (double)h0);
                cJSON_AddNumberToObject(pj, "hint_end", (double)h1);
                cJSON_AddNumberToObject(pj, "n_tokens", (double)n);
                int gap = fabs(pr.clean - pr.corrupted) >= PATCH_MIN_PAIR_GAP;
                cJSON_AddBoolToObject(pj, "averaged", gap);
                if (!gap) n_nogap++;
                for (int layer = 0; layer < L && gap; layer++) {
                    double mx[3] = {-INFINITY, -INFINITY, -INFINITY};
                    for (size_t p = h0; p < n; p++) {
                        double v = PL_GRID(&pr.recovery, layer, p);
                        int sg = p == n - 1 ? 2 : p < h1 ? 0 : 1;
                        if (isfinite(v) && v > mx[sg]) mx[sg] = v;
                    }
                    for (int sg = 0; sg < 3; sg++)
                        if (isfinite(mx[sg])) agg[layer * 3 + sg] += mx[sg], cnt[layer * 3 + sg]++;
                }
                if (fabs(pr.clean - pr.corrupted) > best_gap) {
                    /* the grid of the pair with the largest gap, around the hint, with token labels */
                    best_gap = fabs(pr.clean - pr.corrupted);
                    size_t cols[512], nc = 0;
                    for (size_t p = h0 > 0 ? h0 - 1 : 0; p < n && p < h1 + PATCH_WINDOW_AFTER && nc < 256; p++) cols[nc++] = p;
                    for (size_t p = n > PATCH_WINDOW_TAIL ? n - PATCH_WINDOW_TAIL : 0; p < n; p++)
                        if (!nc || p > cols[nc - 1]) cols[nc++] = p;
                    pl_grid g;
                    st = pl_grid_init(&g, (size_t)L, nc, "denoising resid_pre patching of the pair with the largest gap");
                    pl_buf bt = {0}, lab = {0};
                    for (size_t j = 0; j < nc && !st; j++) {
                        st = token_text(l->tok, clean.ids[cols[j]], &bt);
                        lab.len = 0;
                        if (!st) st = pl_buf_printf(&lab, "%zu:%s", cols[j], bt.data);
                        if (!st) st = pl_grid_set_col(&g, j, lab.data);
                        for (int layer = 0; layer < L && !st; layer++)
                            PL_GRID(&g, layer, j) = PL_GRID(&pr.recovery, layer, cols[j]);
                    }
                    if (!st) st = pl_grid_label_rows(&g, "L");
                    cJSON_DeleteItemFromObject(o, "example");
                    cJSON_DeleteItemFromObject(o, "example_id");
                    if (!st) cJSON_AddItemToObject(o, "example", pl_grid_json(&g));
                    if (!st) cJSON_AddStringToObject(o, "example_id", r->id);
                    pl_buf_free(&bt);
                    pl_buf_free(&lab);
                    pl_grid_free(&g);
                }
                cJSON_AddItemToArray(pairs, pj);
                n_pairs++;
            }
            pl_patch_result_free(&pr);
        }
        if (st) st = pl_error_wrap(st, "patching email %s", r->id);
        pl_tokens_free(&em), pl_tokens_free(&clean), pl_tokens_free(&corr);
    }
    if (!st) {
        cJSON_AddStringToObject(o, "status", n_pairs ? "ran" : "skipped");
        if (!n_pairs)
            cJSON_AddStringToObject(o, "reason", "no test phishing email contains the shortcut_hint text within its "
                                                 "first max_tokens tokens");
        cJSON_AddStringToObject(o, "hook", "hook_resid_pre");
        cJSON_AddStringToObject(o, "direction", "denoising (corrupted run, clean activations written in)");
        cJSON_AddStringToObject(o, "metric", "(patched - corrupted) / (clean - corrupted)");
        cJSON_AddStringToObject(o, "corruption", "the hint's tokens replaced by as many ' the' tokens");
        cJSON_AddNumberToObject(o, "n_pairs", (double)n_pairs);
        cJSON_AddNumberToObject(o, "n_small_gap", (double)n_nogap);
        cJSON_AddNumberToObject(o, "min_pair_gap", PATCH_MIN_PAIR_GAP);
        pl_grid g;
        if (n_pairs > n_nogap &&
            !(st = pl_grid_init(&g, (size_t)L, 3, "mean over pairs of the largest recovery per segment"))) {
            for (int sg = 0; sg < 3 && !st; sg++) st = pl_grid_set_col(&g, (size_t)sg, seg[sg]);
            for (int layer = 0; layer < L; layer++)
                for (int sg = 0; sg < 3; sg++)
                    PL_GRID(&g, layer, sg) = cnt[layer * 3 + sg] ? agg[layer * 3 + sg] / (double)cnt[layer * 3 + sg] : (double)NAN;
            if (!st) st = pl_grid_label_rows(&g, "L");
            if (!st) cJSON_AddItemToObject(o, "segments", pl_grid_json(&g));
            if (!st) cJSON_AddNumberToObject(o, "n_averaged", (double)(n_pairs - n_nogap));
            pl_grid_free(&g);
        }
    }
    free(agg);
    free(cnt);
    pl_imodel_free(im);
    return st;
}

/* ---- the stage -------------------------------------------------------------------- */

static pl_status probe_curve(const sample_t *s, int L, size_t D, uint64_t seed, cJSON *out) {
    size_t n = s->n, n_pos = 0;
    for (size_t i = 0; i < n; i++) n_pos += s->y[i] == 1;
    cJSON *layers = cJSON_AddArrayToObject(out, "layers");
    cJSON *acc = cJSON_AddArrayToObject(out, "cv_accuracy");
    cJSON *auc = cJSON_AddArrayToObject(out, "cv_auc");
    double best = -1;
    double *accs = calloc((size_t)L, sizeof *accs);
    pl_status st = layers && acc && auc && accs ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
    for (int layer = 0; layer < L && !st; layer++) {
        pl_probe_opts po = pl_probe_defaults();
        po.seed = seed;
        pl_probe_result pr;
        st = pl_probe_cv(s->X + (size_t)layer * n * D, n, D, s->y, 2, &po, &pr);
        if (st) break;
        accs[layer] = pr.cv_accuracy;
        if (pr.cv_accuracy > best) best = pr.cv_accuracy;
        cJSON_AddItemToArray(layers, cJSON_CreateNumber((double)layer));
        cJSON_AddItemToArray(acc, num(pr.cv_accuracy));
        cJSON_AddItemToArray(auc, num(pr.cv_auc));
        pl_probe_result_free(&pr);
    }
    if (!st) {
        long probe_layer = -1;
        for (int layer = 0; layer < L && probe_layer < 0; layer++)
            if (accs[layer] >= best - 0.01) probe_layer = layer;
        cJSON_AddStringToObject(out, "hook", "hook_resid_post");
        cJSON_AddStringToObject(out, "position", "answer");
        cJSON_AddNumberToObject(out, "n", (double)n);
        cJSON_AddNumberToObject(out, "n_phish", (double)n_pos);
        cJSON_AddNumberToObject(out, "majority_baseline", (double)(n_pos > n - n_pos ? n_pos : n - n_pos) / (double)n);
        cJSON_AddNumberToObject(out, "probe_layer", (double)probe_layer);
        cJSON_AddNumberToObject(out, "best_cv_accuracy", best);
    }
    free(accs);
    return st;
}

pl_status pl_study_llm_interp(pl_study_plan *pl, pl_study_task *t, const char *dir) {
    const pl_study_config *cfg = pl->cfg;
    const pl_study_training *tr = &pl->trainings[t->training];
    const pl_study_model *sm = &cfg->models[tr->model];
    pl_records rs = {0};
    pl_status st = PL_OK;
    for (size_t k = 0; k < cfg->n_test && !st; k++) st = pl_study_read_parts(pl, cfg->test[k], "test", &rs);
    size_t n = rs.n < cfg->interp_probe_examples ? rs.n : cfg->interp_probe_examples;
    size_t n_rest = rs.n - n, na = n_rest < cfg->interp_probe_examples ? n_rest : cfg->interp_probe_examples;
    int same = na < ABL_MIN_N;
    if (same) na = n;
    size_t *order = malloc((rs.n ? rs.n : 1) * sizeof *order);
    const pl_record **recs = malloc((rs.n ? rs.n : 1) * sizeof *recs);
    if (!st && (!order || !recs)) st = pl_error(PL_ERR_NOMEM, "out of memory");
    if (!st) {
        for (size_t i = 0; i < rs.n; i++) order[i] = i;
        pl_rng rng;
        pl_rng_seed(&rng, cfg->seed ^ 0x1e7e5u);
        pl_rng_shuffle(&rng, order, rs.n, sizeof *order);
        for (size_t i = 0; i < rs.n; i++) recs[i] = &rs.v[order[i]];
    }
    const pl_record *const *arecs = recs && !same ? recs + n : recs;
    size_t n_pos = 0;
    for (size_t i = 0; i < n && !st; i++) n_pos += recs[i]->label == 1;
    if (!st && (n_pos < 5 || n - n_pos < 5))
        st = pl_error(PL_ERR_INVALID, "probe needs at least 5 emails of each label among %zu sampled", n);
    pl_study_llm l;
    memset(&l, 0, sizeof l);
    char abuf[PL_STUDY_NAME_MAX * 2];
    if (!st) st = pl_study_llm_open(sm, cfg->hyper.max_tokens, pl_study_llm_adapter(pl, t, abuf, sizeof abuf), &l);
    ictx c;
    memset(&c, 0, sizeof c);
    c.l = &l;
    sample_t s;
    memset(&s, 0, sizeof s);
    int L = 0, H = 0;
    size_t D = 0, HD = 0;
    if (!st) {
        c.d = pl_model_desc(l.m);
        L = c.d->n_layer, H = c.d->n_head;
        D = (size_t)c.d->n_embd, HD = (size_t)H * (size_t)c.d->head_dim;
        c.x = (ix_state){.L = L, .H = H, .hd = c.d->head_dim, .D = D, .HD = HD};
        c.x.embed = malloc(D * sizeof(float));
        c.x.pre = malloc((size_t)L * D * sizeof(float));
        c.x.mid = malloc((size_t)L * D * sizeof(float));
        c.x.post = malloc((size_t)L * D * sizeof(float));
        c.x.mlp = malloc((size_t)L * D * sizeof(float));
        c.x.z = malloc((size_t)L * HD * sizeof(float));
        c.u_pos = malloc(D * sizeof(float));
        c.u_neg = malloc(D * sizeof(float));
        c.wo1 = malloc(D * HD * sizeof(float));
        /* all layers' o_proj kept as f32 when small (32M floats) */
        if ((size_t)L * D * HD <= ((size_t)32 << 20)) c.wo = malloc((size_t)L * D * HD * sizeof(float));
        if (!c.x.embed || !c.x.pre || !c.x.mid || !c.x.post || !c.x.mlp || !c.x.z || !c.u_pos || !c.u_neg || !c.wo1)
            st = pl_error(PL_ERR_NOMEM, "out of memory");
        if (!st) st = pl_model_unembed_row(l.m, l.pr.label_pos_id, c.u_pos);
        if (!st) st = pl_model_unembed_row(l.m, l.pr.label_neg_id, c.u_neg);
        for (int layer = 0; layer < L && c.wo && !st; layer++) st = pl_model_o_proj_f32(l.m, layer, c.wo + (size_t)layer * D * HD);
        c.ro = (pl_readout){D, pl_model_final_norm(l.m), 0.0f, c.d->norm_eps, c.u_pos, c.u_neg, 0.0f, c.d->final_softcap};
    }
    if (!st) st = analyse(&c, recs, n, &s);
    cJSON *out = NULL;
    if (!st) {
        out = cJSON_CreateObject();
        st = out ? probe_curve(&s, L, D, cfg->seed, out) : pl_error(PL_ERR_NOMEM, "out of memory");
    }
    comp_t *hs = NULL, *ms = NULL;
    double dla_err = NAN;
    if (!st) {
        long lens_layer;
        double lens_auc;
        cJSON_AddItemToObject(out, "lens", lens_json(&s, L, &lens_layer, &lens_auc));
        hs = malloc((size_t)L * (size_t)H * sizeof *hs);
        ms = malloc((size_t)L * sizeof *ms);
        cJSON *dj = hs && ms ? dla_json(&s, L, H, c.d->final_softcap > 0, hs, ms, &dla_err) : NULL;
        if (!dj) st = pl_error(PL_ERR_NOMEM, "out of memory");
        else cJSON_AddItemToObject(out, "dla", dj);
    }
    /* ablation: mean answer rows of the analysis sample */
    float *zmean = NULL, *mmean = NULL;
    if (!st) {
        zmean = malloc((size_t)L * HD * sizeof *zmean);
        mmean = malloc((size_t)L * D * sizeof *mmean);
        if (!zmean || !mmean) st = pl_error(PL_ERR_NOMEM, "out of memory");
        for (size_t q = 0; !st && q < (size_t)L * HD; q++) zmean[q] = (float)(s.zsum[q] / (double)n);
        for (size_t q = 0; !st && q < (size_t)L * D; q++) mmean[q] = (float)(s.msum[q] / (double)n);
        c.x.zmean = zmean;
        c.x.mmean = mmean;
    }
    if (!st) {
        cJSON *ab = cJSON_AddObjectToObject(out, "ablation");
        int *ya = malloc((na ? na : 1) * sizeof *ya);
        double *base = malloc((na ? na : 1) * sizeof *base);
        pl_preds before = {0};
        st = ya && base ? PL_OK : pl_error(PL_ERR_NOMEM, "out of memory");
        size_t ap = 0;
        for (size_t i = 0; i < na && !st; i++) ap += (ya[i] = arecs[i]->label) == 1;
        if (!st) st = ablate_run(&c, arecs, na, NULL, NULL, base, &before);
        pl_metrics m0;
        if (!st) st = pl_eval_metrics(&before, NULL, before.n, 0.5, &m0);
        if (!st) {
            cJSON_AddStringToObject(ab, "mode", "mean (analysis-sample mean at the answer position)");
            cJSON_AddStringToObject(ab, "positions", "answer");
            cJSON_AddNumberToObject(ab, "n", (double)na);
            cJSON_AddNumberToObject(ab, "n_phishing", (double)ap);
            cJSON_AddBoolToObject(ab, "same_sample", same);
            cJSON_AddNumberToObject(ab, "controls", ABL_CONTROLS);
            cJSON_AddNumberToObject(ab, "margin", ABL_CONFIRM_MARGIN);
            cJSON_AddStringToObject(ab, "rule", "confirmed when the top set's delta F1 <= every control's delta F1 - margin, "
                                                "and it lowers the class separation (mean score phishing - legitimate) "
                                                "more than every control");
            cJSON_AddItemToObject(ab, "f1_before", num(m0.v[PL_M_F1]));
            cJSON_AddItemToObject(ab, "separation_before", num(separation(base, ya, na)));
        }
        size_t nh_all = (size_t)L * (size_t)H;
        size_t kh = TOP_HEADS < nh_all / 4 ? TOP_HEADS : nh_all / 4;
        size_t km = TOP_MLPS < (size_t)L / 2 ? TOP_MLPS : (size_t)L / 2;
        if (kh < 1) kh = 1;
        if (km < 1) km = 1;
        cJSON *hj = cJSON_AddObjectToObject(ab, "heads"), *mj = cJSON_AddObjectToObject(ab, "mlps");
        if (!st) st = ablate_kind(&c, 0, hs, nh_all, kh, arecs, na, ya, &before, base, cfg->seed, hj);
        if (!st) st = ablate_kind(&c, 1, ms, (size_t)L, km, arecs, na, ya, &before, base, cfg->seed, mj);
        pl_preds_free(&before);
        free(ya);
        free(base);
    }
    /* attention of the top heads: one phishing and one legitimate email */
    if (!st) {
        cJSON *aj = cJSON_AddObjectToObject(out, "attention");
        cJSON *ex = cJSON_AddArrayToObject(aj, "examples");
        size_t nh = (size_t)L * (size_t)H < ATTN_HEADS ? (size_t)L * (size_t)H : ATTN_HEADS;
        cJSON_AddStringToObject(aj, "query", "answer position");
        for (int want = 1; want >= 0 && !st; want--)
            for (size_t i = 0; i < n; i++)
                if (recs[i]->label == want) {
                    st = attention_example(&c, recs[i], hs, nh, ex);
                    break;
                }
    }
    if (!st) {
        cJSON *pj = NULL;
        st = patching(&c, cfg, &rs, order, &pj);
        cJSON_AddItemToObject(out, "patching", pj);
    }
    if (!st) {
        cJSON_AddStringToObject(out, "model", sm->name);
        cJSON_AddStringToObject(out, "training", tr->name);
        cJSON_AddStringToObject(out, "family", pl_study_family_name(sm->family));
        if (!isfinite(dla_err)) st = pl_error(PL_ERR_NUMERIC, "non-finite direct logit attribution");
    }
    if (!st) {
        char *path = pl_study_path(dir, "interp.json");
        st = path ? pl_json_write_atomic(path, out) : pl_error(PL_ERR_NOMEM, "out of memory");
        free(path);
    }
    if (st) st = pl_error_wrap(st, "%s", t->name);
    cJSON_Delete(out);
    free(hs), free(ms), free(zmean), free(mmean);
    sample_free(&s);
    free(c.x.embed), free(c.x.pre), free(c.x.mid), free(c.x.post), free(c.x.mlp), free(c.x.z);
    free(c.u_pos), free(c.u_neg), free(c.wo), free(c.wo1);
    free(order);
    free(recs);
    if (l.m) pl_study_llm_close(&l);
    pl_records_free(&rs);
    return st;
}

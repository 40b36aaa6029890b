/* engine.c — the training forward/backward over a whole model.
 *
 * The block follows the same descriptor as src/model/forward.c (read that
 * file for the inference pass); here every activation the backward needs is
 * saved, in double (in float32 inside a block on the bf16 path:
 * block_fwd_bf16 / block_bwd_bf16):
 *
 *   x0 = embed(tokens) * embd_scale
 *   per layer:  h = rmsnorm(x)·w_attn ; q,k,v = lin(h) ; rope(q,k)
 *               z = attn(q,k,v) ; o = lin_o(z) ; (gemma2) o = rmsnorm(o)
 *               x = x + o
 *               h = rmsnorm(x)·w_ffn ; m = act(lin_g(h)) * lin_u(h)
 *               o = lin_d(m) ; (gemma2) o = rmsnorm(o) ; x = x + o
 *   hf = rmsnorm(x)·w_out ; objective on hf
 *
 * lin(x) = x·Wᵀ (frozen, any dtype) + LoRA. With gradient checkpointing
 * only each block's input is kept and the block is recomputed during the
 * backward (dropout masks are counter-based, so the recomputation is
 * identical).
 *
 * Not here: gradients of the base weights (full fine-tuning).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#endif

#include "tensor/tensor.h"
#include "train/train_impl.h"

static const char *TGT_NAMES[PL_TGT_COUNT] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *TGT_HF[PL_TGT_COUNT] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                           "mlp.down_proj"};

const char *pl_tr_target_hf(int k) { return k >= 0 && k < PL_TGT_COUNT ? TGT_HF[k] : "?"; }
const char *pl_tr_target_name(int i) { return i >= 0 && i < PL_TGT_COUNT ? TGT_NAMES[i] : "?"; }

pl_status pl_tr_parse_targets(const char *s, unsigned *mask) {
    *mask = 0;
    if (!s || !*s) return pl_error(PL_ERR_INVALID, "targets: empty list (use e.g. q,v or all)");
    if (strcmp(s, "all") == 0) {
        *mask = (1u << PL_TGT_COUNT) - 1;
        return PL_OK;
    }
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int found = -1;
        for (int i = 0; i < PL_TGT_COUNT; i++) {
            size_t ln = strlen(TGT_NAMES[i]);
            /* accept "q" and "q_proj" */
            if ((n == ln && strncmp(p, TGT_NAMES[i], n) == 0) ||
                (n == ln + 5 && strncmp(p, TGT_NAMES[i], ln) == 0 && strncmp(p + ln, "_proj", 5) == 0))
                found = i;
        }
        if (found < 0)
            return pl_error(PL_ERR_INVALID, "targets: unknown module '%.*s' (known: q,k,v,o,gate,up,down,all)",
                            (int)n, p);
        *mask |= 1u << found;
        p += n;
        if (*p == ',') p++;
    }
    return PL_OK;
}

pl_status pl_tr_parse_precision(const char *s, pl_precision *out) {
    if (s && strcmp(s, "f32") == 0) *out = PL_PREC_F32;
    else if (s && strcmp(s, "f64") == 0) *out = PL_PREC_F64;
    else if (s && strcmp(s, "bf16") == 0) *out = PL_PREC_BF16;
    else return pl_error(PL_ERR_INVALID, "precision: '%s' (use f32, bf16 or f64)", s ? s : "");
    return PL_OK;
}

pl_tr_config pl_tr_config_default(void) {
    pl_tr_config c;
    memset(&c, 0, sizeof c);
    c.objective = PL_OBJ_LABEL;
    c.lora_rank = 8;
    c.lora_alpha = 16.0;
    c.lora_dropout = 0.0;
    c.targets = PL_TGT_Q | PL_TGT_V;
    c.label_tokens[0] = c.label_tokens[1] = -1;
    c.n_class = 2;
    c.checkpoint = 1;
    c.keep_bytes = (size_t)1 << 30;
    c.seed = 1234;
    c.precision = PL_PREC_F32;
    return c;
}

enum { LM_CHUNK = 16 };

static pl_tr_weight weight_of(const pl_mat *m) {
    pl_tr_weight w = {m->data, m->dtype, m->n_in, m->n_out, m->row_bytes, NULL, NULL};
    return w;
}

/* The frozen copy of a norm weight (as used: Gemma's 1 + w folded in). */
static pl_real *norm_raw(const pl_trainer *t, int l, int which) {
    return t->norms + ((size_t)l * 4 + (size_t)which) * (size_t)t->D;
}

/* The norm weight the pass uses: the trained copy under full fine-tuning. */
static pl_real *norm_w(const pl_trainer *t, int l, int which) {
    if (t->cfg.full && t->full_norm[l][which] >= 0) return t->params + t->tensors[t->full_norm[l][which]].offset;
    return norm_raw(t, l, which);
}

/* Gradient of a norm weight (full fine-tuning) or NULL. */
static pl_real *norm_g(const pl_trainer *t, int l, int which) {
    if (t->cfg.full && t->full_norm[l][which] >= 0) return t->grads + t->tensors[t->full_norm[l][which]].offset;
    return NULL;
}

static pl_status add_tensor(pl_trainer *t, const char *name, int layer, int target, int is_b, int64_t rows,
                            int64_t cols) {
    pl_tr_tensor *nt = realloc(t->tensors, (size_t)(t->n_tensors + 1) * sizeof *nt);
    if (!nt) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    t->tensors = nt;
    pl_tr_tensor *e = &t->tensors[t->n_tensors++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->layer = layer;
    e->target = target;
    e->is_b = is_b;
    e->rows = rows;
    e->cols = cols;
    e->offset = t->n_params;
    t->n_params += (size_t)(rows * cols);
    return PL_OK;
}

/* The run state (activations and scratch, grown to Tcap tokens) freed;
 * Tcap 0. */
void pl_tr_run_state_free(pl_trainer *t) {
    for (int i = 0; i < t->n_acts; i++) free(t->acts[i].mem);
    free(t->acts);
    t->acts = NULL;
    t->n_acts = 0;
    pl_real **bufs[] = {&t->xs, &t->hf, &t->rsf, &t->dx, &t->dtmp, &t->dwide, &t->dff1, &t->dff2,
                        &t->dq, &t->dk, &t->dv, &t->xd, &t->du, &t->logits, &t->rope_cs};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    free(t->pos);
    t->pos = NULL;
    t->Tcap = 0;
}

void pl_trainer_free(pl_trainer *t) {
    if (!t) return;
    pl_tr_lanes_free(t);
    for (int l = 0; t->w && l < t->d.n_layer; l++)
        for (int k = 0; k < PL_TGT_COUNT; k++) {
            pl_free_aligned((void *)(uintptr_t)t->w[l][k].tiles);
            pl_free_aligned((void *)(uintptr_t)t->w[l][k].tiles_t);
        }
    pl_tr_run_state_free(t);
    free(t->w);
    free(t->norms);
    free(t->inv_freq);
    free(t->params);
    free(t->grads);
    free(t->tensors);
    free(t->lora_idx);
    free(t->full_w);
    free(t->full_norm);
    free(t);
}

static void copy_norm(pl_real *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = src ? (double)src[i] : 1.0;
}

/* Copy a frozen weight into a dense double tensor (full fine-tuning). */
static pl_status copy_weight(pl_real *dst, const pl_tr_weight *w) {
    float *row = malloc((size_t)w->n_in * sizeof *row);
    if (!row) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    for (int64_t o = 0; o < w->n_out; o++) {
        pl_status st = pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)o * w->row_bytes, row,
                                         w->n_in);
        if (st) {
            free(row);
            return st;
        }
        for (int64_t i = 0; i < w->n_in; i++) dst[o * w->n_in + i] = (double)row[i];
    }
    free(row);
    return PL_OK;
}

static pl_status init_full(pl_trainer *t) {
    pl_status st = PL_OK;
    int L = t->d.n_layer;
    for (int l = 0; l < L && !st; l++) {
        for (int k = 0; k < PL_TGT_COUNT && !st; k++)
            st = copy_weight(t->params + t->tensors[t->full_w[l][k]].offset, &t->w[l][k]);
        for (int k = 0; k < 4; k++)
            if (t->full_norm[l][k] >= 0)
                memcpy(t->params + t->tensors[t->full_norm[l][k]].offset,
                       t->norms + ((size_t)l * 4 + (size_t)k) * (size_t)t->D, (size_t)t->D * sizeof(pl_real));
    }
    memcpy(t->params + t->tensors[t->full_norm[L][0]].offset, t->norms + (size_t)L * 4 * (size_t)t->D,
           (size_t)t->D * sizeof(pl_real));
    if (!st) st = copy_weight(t->params + t->tensors[t->full_embd].offset, &t->embd);
    if (!st && t->full_out != t->full_embd) st = copy_weight(t->params + t->tensors[t->full_out].offset, &t->out);
    return st;
}

/* The kernels allocate their scratch per call (a few MB for a 256-token
 * example): without pl_keep_freed_memory every call paid page faults on
 * fresh zeroed pages (about 9% of a bf16 step on SmolLM2-135M). */
pl_status pl_trainer_new(const pl_model *m, const pl_tr_config *cfg, pl_trainer **out) {
    *out = NULL;
    const pl_arch_desc *d = pl_model_desc(m);
    if (cfg->lora_rank < 0 || cfg->lora_rank > 4096)
        return pl_error(PL_ERR_INVALID, "trainer: LoRA rank %d out of range [0, 4096]", cfg->lora_rank);
    if (cfg->lora_rank > 0 && !cfg->targets) return pl_error(PL_ERR_INVALID, "trainer: LoRA with no target modules");
    if (cfg->lora_dropout < 0 || cfg->lora_dropout >= 1)
        return pl_error(PL_ERR_INVALID, "trainer: LoRA dropout %g outside [0, 1)", cfg->lora_dropout);
    if (cfg->objective == PL_OBJ_LABEL)
        for (int c = 0; c < 2; c++)
            if (cfg->label_tokens[c] < 0 || cfg->label_tokens[c] >= d->n_vocab)
                return pl_error(PL_ERR_INVALID, "trainer: label token %d of class %d outside the vocabulary [0, %d)",
                                (int)cfg->label_tokens[c], c, d->n_vocab);
    if (cfg->objective == PL_OBJ_LABEL && cfg->label_tokens[0] == cfg->label_tokens[1])
        return pl_error(PL_ERR_INVALID, "trainer: both classes have label token %d", (int)cfg->label_tokens[0]);
    if (cfg->objective == PL_OBJ_HEAD && (cfg->n_class < 2 || cfg->n_class > 1024))
        return pl_error(PL_ERR_INVALID, "trainer: head with %d classes", cfg->n_class);
    if (cfg->objective != PL_OBJ_HEAD && cfg->lora_rank == 0 && !cfg->full)
        return pl_error(PL_ERR_INVALID, "trainer: nothing to train (LoRA rank 0 and no head)");
    if (d->n_rot != d->head_dim) return pl_error(PL_ERR_UNSUPPORTED, "trainer: partial RoPE (n_rot %d != head_dim %d)",
                                                 d->n_rot, d->head_dim);
    if (cfg->precision != PL_PREC_F32 && cfg->precision != PL_PREC_F64 && cfg->precision != PL_PREC_BF16)
        return pl_error(PL_ERR_INVALID, "trainer: unknown precision %d", (int)cfg->precision);
    pl_keep_freed_memory();
    pl_trainer *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    if (cfg->precision != PL_PREC_F64) pl_tr_blas_threads(pl_num_threads());
    t->m = m;
    t->d = *d;
    t->cfg = *cfg;
    t->D = d->n_embd;
    t->H = d->n_head;
    t->Hkv = d->n_head_kv;
    t->hd = d->head_dim;
    t->F = d->n_ff;
    t->V = d->n_vocab;
    t->QD = t->H * t->hd;
    t->KVD = t->Hkv * t->hd;
    t->r = cfg->lora_rank;
    t->head_idx = -1;
    int L = d->n_layer;
    pl_status st = PL_OK;
    t->w = calloc((size_t)L, sizeof *t->w);
    t->lora_idx = calloc((size_t)L, sizeof *t->lora_idx);
    t->norms = calloc((size_t)(L * 4 + 1) * (size_t)t->D, sizeof *t->norms);
    t->inv_freq = calloc((size_t)d->n_rot / 2 + 1, sizeof *t->inv_freq);
    t->full_w = calloc((size_t)L, sizeof *t->full_w);
    t->full_norm = calloc((size_t)L + 1, sizeof *t->full_norm);
    t->full_embd = t->full_out = -1;
    if (!t->w || !t->lora_idx || !t->norms || !t->inv_freq || !t->full_w || !t->full_norm) {
        pl_trainer_free(t);
        return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    }
    for (int l = 0; l < L; l++) {
        const pl_layer *ly = &m->layers[l];
        const pl_mat *mats[PL_TGT_COUNT] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int k = 0; k < PL_TGT_COUNT; k++) t->w[l][k] = weight_of(mats[k]);
        /* bf16 precision with AMX: the frozen projections converted once (2 x 2 bytes a weight) */
        for (int k = 0; k < PL_TGT_COUNT && cfg->precision == PL_PREC_BF16 && pl_bf16_gemm_native(); k++) {
            pl_tr_weight *w = &t->w[l][k];
            size_t bytes = pl_bf16_tiles_bytes(w->n_out, w->n_in);
            uint16_t *a = pl_alloc_aligned(bytes), *b = pl_alloc_aligned(bytes);
            pl_status ts = !a || !b ? pl_error(PL_ERR_NOMEM, "trainer: out of memory for bf16 tiles (layer %d)", l)
                                    : pl_bf16_tiles_pack((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, 0, a);
            if (!ts) ts = pl_bf16_tiles_pack((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, 1, b);
            w->tiles = a;
            w->tiles_t = b;
            if (ts) {
                pl_trainer_free(t);
                return pl_error_wrap(ts, "%s", mats[k]->name ? mats[k]->name : "trainer");
            }
        }
        copy_norm(norm_raw(t, l, 0), ly->attn_norm, t->D);
        copy_norm(norm_raw(t, l, 1), ly->ffn_norm, t->D);
        copy_norm(norm_raw(t, l, 2), ly->post_attn_norm, t->D);
        copy_norm(norm_raw(t, l, 3), ly->post_ffn_norm, t->D);
    }
    copy_norm(norm_raw(t, L, 0), m->out_norm, t->D);
    t->out = weight_of(&m->output);
    t->embd = weight_of(&m->tok_embd);
    pl_tr_rope_inv_freq(t->inv_freq, d->n_rot, d->rope_base, d->rope_freqs);
    t->attn.n_head = t->H;
    t->attn.n_head_kv = t->Hkv;
    t->attn.head_dim = t->hd;
    t->attn.scale = d->q_scale;
    t->attn.softcap = d->attn_softcap;

    /* parameter table: LoRA A/B per (layer, target), then the head */
    for (int l = 0; l < L && !st; l++)
        for (int k = 0; k < PL_TGT_COUNT && !st; k++) {
            t->lora_idx[l][k] = -1;
            if (t->r == 0 || !(cfg->targets & (1u << k))) continue;
            char name[96];
            t->lora_idx[l][k] = t->n_tensors;
            snprintf(name, sizeof name, "model.layers.%d.%s.lora_A", l, TGT_HF[k]);
            st = add_tensor(t, name, l, k, 0, t->r, t->w[l][k].n_in);
            snprintf(name, sizeof name, "model.layers.%d.%s.lora_B", l, TGT_HF[k]);
            if (!st) st = add_tensor(t, name, l, k, 1, t->w[l][k].n_out, t->r);
        }
    /* full fine-tuning: every base weight, HF names */
    for (int l = 0; l <= L; l++)
        for (int k = 0; k < 4; k++) t->full_norm[l][k] = -1;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < PL_TGT_COUNT; k++) t->full_w[l][k] = -1;
    if (!st && cfg->full) {
        static const char *NORMS[4] = {"input_layernorm", "post_attention_layernorm", "post_attention_layernorm",
                                       "post_feedforward_layernorm"};
        char name[96];
        for (int l = 0; l < L && !st; l++) {
            for (int k = 0; k < PL_TGT_COUNT && !st; k++) {
                t->full_w[l][k] = t->n_tensors;
                snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, TGT_HF[k]);
                st = add_tensor(t, name, l, -2, 0, t->w[l][k].n_out, t->w[l][k].n_in);
            }
            for (int k = 0; k < (d->post_norms ? 4 : 2) && !st; k++) {
                t->full_norm[l][k] = t->n_tensors;
                /* gemma2 names: input, pre_feedforward (ffn), post_attention, post_feedforward */
                const char *nm = d->post_norms && k == 1 ? "pre_feedforward_layernorm" : NORMS[k];
                snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, nm);
                st = add_tensor(t, name, l, -2, 0, 1, t->D);
            }
        }
        if (!st) {
            t->full_norm[L][0] = t->n_tensors;
            st = add_tensor(t, "model.norm.weight", -1, -2, 0, 1, t->D);
        }
        if (!st) {
            t->full_embd = t->full_out = t->n_tensors;
            st = add_tensor(t, "model.embed_tokens.weight", -1, -2, 0, t->V, t->D);
        }
        if (!st && !d->tied_output) {
            t->full_out = t->n_tensors;
            st = add_tensor(t, "lm_head.weight", -1, -2, 0, t->V, t->D);
        }
    }
    if (!st && cfg->objective == PL_OBJ_HEAD) {
        t->head_idx = t->n_tensors;
        st = add_tensor(t, "score", -1, -1, 0, cfg->n_class, t->D);
    }
    if (st) {
        pl_trainer_free(t);
        return st;
    }
    t->params = calloc(t->n_params ? t->n_params : 1, sizeof *t->params);
    t->grads = calloc(t->n_params ? t->n_params : 1, sizeof *t->grads);
    if (!t->params || !t->grads) {
        pl_trainer_free(t);
        return pl_error(PL_ERR_NOMEM, "trainer: cannot allocate %zu parameters", t->n_params);
    }
    /* PEFT init: A ~ kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(n_in), 1/sqrt(n_in)), B = 0; head ~ N(0, 0.02) */
    pl_rng rng;
    pl_rng_seed(&rng, cfg->seed);
    for (int i = 0; i < t->n_tensors; i++) {
        pl_tr_tensor *e = &t->tensors[i];
        pl_real *p = t->params + e->offset;
        int64_t n = e->rows * e->cols;
        if (e->target >= 0 && !e->is_b) {
            double bound = 1.0 / sqrt((double)e->cols);
            for (int64_t j = 0; j < n; j++) p[j] = (2.0 * pl_rng_uniform(&rng) - 1.0) * bound;
        } else if (e->target == -1) {
            for (int64_t j = 0; j < n; j++) p[j] = 0.02 * (double)pl_rng_normal(&rng);
        }
    }
    if (cfg->full && (st = init_full(t))) {
        pl_trainer_free(t);
        return st;
    }
    *out = t;
    return PL_OK;
}

const pl_tr_config *pl_trainer_config(const pl_trainer *t) { return &t->cfg; }
pl_real *pl_trainer_params(pl_trainer *t, size_t *n) {
    if (n) *n = t->n_params;
    return t->params;
}
pl_real *pl_trainer_grads(pl_trainer *t) { return t->grads; }
const pl_tr_tensor *pl_trainer_tensors(const pl_trainer *t, int *n) {
    *n = t->n_tensors;
    return t->tensors;
}
const pl_tr_tensor *pl_trainer_find(const pl_trainer *t, const char *name) {
    for (int i = 0; i < t->n_tensors; i++)
        if (strcmp(t->tensors[i].name, name) == 0) return &t->tensors[i];
    return NULL;
}
void pl_trainer_set_pruning(pl_trainer *t, int on) {
    t->no_pruning = !on;
    for (int i = 0; t->lanes && i < t->n_lanes; i++) t->lanes[i]->no_pruning = !on;
}
void pl_trainer_zero_grad(pl_trainer *t) { memset(t->grads, 0, t->n_params * sizeof *t->grads); }
void pl_trainer_set_step(pl_trainer *t, uint64_t step) { t->step = step; }

/* ---- run state ------------------------------------------------------------ */

/* 64-byte aligned (a cache line: the tiles' loads and stores of a row stay
 * in one line); free() releases it */
static pl_real *dalloc(size_t n) { return pl_alloc_aligned_raw((n ? n : 1) * sizeof(pl_real)); }

/* The bf16 precision without full fine-tuning: activations in float32
 * (block_fwd_bf16). */
static int acts_f32(const pl_trainer *t) { return t->cfg.precision == PL_PREC_BF16 && !t->cfg.full; }

/* Values (doubles) of one block's saved activations for T tokens; with a,
 * their layout. In float32 storage two floats take one double's place. */
static size_t act_layout(const pl_trainer *t, block_act *a, int64_t T) {
    size_t D = (size_t)t->D, QD = (size_t)t->QD, KVD = (size_t)t->KVD, F = (size_t)t->F, n = (size_t)T;
    size_t r = (size_t)(t->r > 0 ? t->r : 1), H = (size_t)t->H;
    if (acts_f32(t)) {
        /* doubles: rs1, rs_po, xmid, rs2, rs_pf; floats: the rest (each
         * part a whole number of 64-byte lines) */
        size_t dsz[] = {(n + 7) / 8 * 8, (n + 7) / 8 * 8, (n * D + 7) / 8 * 8, (n + 7) / 8 * 8, (n + 7) / 8 * 8};
        /* P's rows pl_tr_attn_ld(T) floats apart (64-byte lines) */
        const size_t ldp = (size_t)pl_tr_attn_ld(T);
        size_t fsz[] = {n * D, n * QD, n * KVD, n * KVD, H * n * ldp, n * QD, n * D, n * D, n * F, n * F, n * F, n * F, n * D};
        size_t total = 0, nf = 0;
        for (size_t i = 0; i < sizeof dsz / sizeof *dsz; i++) total += dsz[i];
        for (size_t i = 0; i < sizeof fsz / sizeof *fsz; i++) nf += (fsz[i] + 15) / 16 * 16;
        nf += PL_TGT_COUNT * ((n * r + 15) / 16 * 16);
        total += nf / 2;
        if (!a) return total;
        pl_real **dp[] = {&a->rs1, &a->rs_po, &a->xmid, &a->rs2, &a->rs_pf};
        float **fp[] = {&a->fxn1, &a->fq, &a->fk, &a->fv, &a->fP, &a->fz, &a->fo, &a->fxn2, &a->fg, &a->fu, &a->fhm,
                        &a->fgs, &a->fdn};
        pl_real *p = a->mem;
        for (size_t i = 0; i < sizeof dsz / sizeof *dsz; i++) {
            *dp[i] = p;
            p += dsz[i];
        }
        float *f = (float *)(void *)p;
        for (size_t i = 0; i < sizeof fsz / sizeof *fsz; i++) {
            *fp[i] = f;
            f += (fsz[i] + 15) / 16 * 16;
        }
        for (int k = 0; k < PL_TGT_COUNT; k++) {
            a->flu[k] = f;
            f += (n * r + 15) / 16 * 16;
        }
        return total;
    }
    /* P: [H, T, T] doubles, or (the f32 products) [H, T, pl_tr_attn_ld(T)] floats in the same place */
    const size_t ldp = (size_t)pl_tr_attn_ld(T), pw = (ldp + 1) / 2 > n ? (ldp + 1) / 2 : n;
    size_t sizes[] = {n * D, n, n * QD, n * KVD, n * KVD, H * n * pw, n * QD, n * D, n, n * D,
                      n * D, n, n * F, n * F, n * F, n * F, n * D, n};
    size_t total = 0, ns = sizeof sizes / sizeof *sizes;
    for (size_t i = 0; i < ns; i++) total += sizes[i];
    total += PL_TGT_COUNT * n * r;
    if (!a) return total;
    pl_real **ptrs[] = {&a->xn1, &a->rs1, &a->q, &a->k, &a->v, &a->P, &a->z, &a->o, &a->rs_po, &a->xmid,
                        &a->xn2, &a->rs2, &a->g, &a->u, &a->hm, &a->gs, &a->dn, &a->rs_pf};
    pl_real *p = a->mem;
    for (size_t i = 0; i < ns; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    for (int k = 0; k < PL_TGT_COUNT; k++) {
        a->lu[k] = p;
        p += n * r;
    }
    return total;
}

static pl_status act_alloc(pl_trainer *t, block_act *a, int64_t T) {
    a->mem = dalloc(act_layout(t, NULL, T));
    if (!a->mem) return pl_error(PL_ERR_NOMEM, "trainer: cannot allocate activations for %lld tokens", (long long)T);
    act_layout(t, a, T);
    return PL_OK;
}

/* The activations kept for T tokens with this configuration's
 * checkpointing budget (how many blocks: as ensure_cap decides). */
static int acts_count(const pl_trainer *t, int64_t T) {
    const int L_ = t->d.n_layer;
    if (!t->cfg.checkpoint) return L_;
    size_t per = act_layout(t, NULL, T) * sizeof(pl_real);
    size_t fit = per ? t->cfg.keep_bytes / per : 0;
    return 1 + (fit < (size_t)(L_ - 1) ? (int)fit : L_ - 1);
}

size_t pl_tr_run_state_bytes(const pl_trainer *t, int64_t T) {
    const size_t n = (size_t)T, D = (size_t)t->D, L = (size_t)t->d.n_layer, F = (size_t)t->F;
    size_t wide = D > (size_t)t->QD ? D : (size_t)t->QD;
    if (F > wide) wide = F;
    size_t reals = (size_t)acts_count(t, T) * act_layout(t, NULL, T) + (L + 1) * n * D + 3 * n * D + 2 * n * wide +
                   2 * n * F + n * ((size_t)t->QD + 2 * (size_t)t->KVD) + (size_t)LM_CHUNK * (size_t)t->V +
                   n * (size_t)t->d.n_rot;
    return reals * sizeof(pl_real);
}

static pl_status ensure_cap(pl_trainer *t, int64_t T) {
    if (T <= t->Tcap) return PL_OK;
    int64_t cap = T;
    pl_tr_run_state_free(t); /* the old state */
    pl_real **bufs[] = {&t->xs, &t->hf, &t->rsf, &t->dx, &t->dtmp, &t->dwide, &t->dff1, &t->dff2,
                        &t->dq, &t->dk, &t->dv, &t->xd, &t->du, &t->logits};
    size_t n = (size_t)cap, D = (size_t)t->D, L = (size_t)t->d.n_layer;
    size_t wide = D > (size_t)t->QD ? D : (size_t)t->QD;
    if ((size_t)t->F > wide) wide = (size_t)t->F;
    /* checkpointing: one shared block for the recomputed layers, plus the
     * top n_keep layers' own (kept from the forward, never recomputed) as
     * far as cfg.keep_bytes allows */
    const int na = acts_count(t, cap);
    t->n_keep = t->cfg.checkpoint ? na - 1 : 0;
    t->acts = calloc((size_t)na, sizeof *t->acts);
    if (!t->acts) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    t->n_acts = na;
    for (int i = 0; i < na; i++) {
        pl_status st = act_alloc(t, &t->acts[i], cap);
        if (st) return st;
    }
    t->xs = dalloc((L + 1) * n * D);
    t->hf = dalloc(n * D);
    t->rsf = dalloc(n);
    t->dx = dalloc(n * D);
    t->dtmp = dalloc(n * D);
    t->dwide = dalloc(n * wide);
    t->dff1 = dalloc(n * (size_t)t->F);
    t->dff2 = dalloc(n * (size_t)t->F);
    t->dq = dalloc(n * (size_t)t->QD);
    t->dk = dalloc(n * (size_t)t->KVD);
    t->dv = dalloc(n * (size_t)t->KVD);
    t->xd = dalloc(n * wide);
    t->du = dalloc(n * (size_t)(t->r > 0 ? t->r : 1));
    t->logits = dalloc((size_t)LM_CHUNK * (size_t)t->V);
    t->pos = malloc(n * sizeof *t->pos);
    t->rope_cs = dalloc(n * (size_t)(t->d.n_rot / 2) * 2);
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        if (!*bufs[i]) return pl_error(PL_ERR_NOMEM, "trainer: cannot allocate run state for %lld tokens", (long long)T);
    if (!t->pos || !t->rope_cs) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    /* positions are 0..T-1 in every pass: one table for all layers and examples */
    for (size_t i = 0; i < n; i++) t->pos[i] = (int32_t)i;
    pl_tr_rope_table(t->rope_cs, t->pos, cap, t->d.n_rot, t->inv_freq);
    t->Tcap = cap;
    return PL_OK;
}

/* ---- linear + LoRA ------------------------------------------------------------ */

static int has_lora(const pl_trainer *t, int l, int k) { return t->lora_idx[l][k] >= 0; }

/* Precision dispatch: the f32/BLAS kernels (frozen products in bf16 for
 * PL_PREC_BF16) or the double reference. */
static int fast(const pl_trainer *t) { return t->cfg.precision != PL_PREC_F64; }
static pl_status linear_fwd(const pl_trainer *t, pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w) {
    if (t->cfg.precision == PL_PREC_BF16) return pl_tr_linear_fwd_bf16(y, x, T, w);
    return fast(t) ? pl_tr_linear_fwd_f32(y, x, T, w) : pl_tr_linear_fwd(y, x, T, w);
}
static pl_status linear_bwd(const pl_trainer *t, pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w) {
    if (t->cfg.precision == PL_PREC_BF16) return pl_tr_linear_bwd_bf16(dx, dy, T, w);
    return fast(t) ? pl_tr_linear_bwd_f32(dx, dy, T, w) : pl_tr_linear_bwd(dx, dy, T, w);
}
static void dense_fwd(const pl_trainer *t, pl_real *y, const pl_real *x, const pl_real *W, int64_t T, int n_in,
                      int n_out, int acc) {
    if (fast(t)) pl_tr_dense_fwd_blas(y, x, W, T, n_in, n_out, acc);
    else pl_tr_dense_fwd(y, x, W, T, n_in, n_out, acc);
}
static void dense_bwd(const pl_trainer *t, pl_real *dx, pl_real *dW, const pl_real *dy, const pl_real *x,
                      const pl_real *W, int64_t T, int n_in, int n_out) {
    if (fast(t)) pl_tr_dense_bwd_blas(dx, dW, dy, x, W, T, n_in, n_out);
    else pl_tr_dense_bwd(dx, dW, dy, x, W, T, n_in, n_out);
}

static pl_tr_lora lora_of(pl_trainer *t, int l, int k, uint64_t key, int train) {
    const pl_tr_tensor *A = &t->tensors[t->lora_idx[l][k]], *B = A + 1;
    pl_tr_lora L;
    L.A = t->params + A->offset;
    L.B = t->params + B->offset;
    L.dA = t->grads + A->offset;
    L.dB = t->grads + B->offset;
    L.r = t->r;
    L.n_in = (int)A->cols;
    L.n_out = (int)B->rows;
    L.s = t->cfg.lora_alpha / t->r;
    L.p = train ? t->cfg.lora_dropout : 0.0;
    L.key = pl_tr_mix(key, (uint64_t)(l * PL_TGT_COUNT + k));
    return L;
}

/* The bf16 precision without full fine-tuning (acts_f32): frozen tiles +
 * f32 LoRA (pl_tr_proj_*_bf16) for the n projections ks[] of layer l
 * sharing x, activations in float32. */
static pl_status proj_fwd(pl_trainer *t, int l, int n, const int *ks, float *const *ys, const float *x, int64_t T,
                          uint64_t key, int train, block_act *a, int64_t r0) {
    const pl_tr_weight *ws[3];
    pl_tr_lora Ls[3];
    const pl_tr_lora *Lp[3];
    float *us[3];
    for (int i = 0; i < n; i++) {
        ws[i] = &t->w[l][ks[i]];
        us[i] = a->flu[ks[i]] + r0 * t->r; /* the LoRA's rows from r0 */
        Lp[i] = NULL;
        if (has_lora(t, l, ks[i])) {
            Ls[i] = lora_of(t, l, ks[i], key, train);
            Lp[i] = &Ls[i];
        }
    }
    return pl_tr_proj_fwd_bf16(n, ys, ws, Lp, us, x, T);
}

/* The input gradient of the n projections, written (not added) into dx
 * (double) or dxs (float), from dy (double) or dys (float). */
static pl_status proj_bwd(pl_trainer *t, int l, int n, const int *ks, pl_real *dx, float *dxs, const pl_real *const *dy,
                          const float *const *dys, const float *x, int64_t T, const block_act *a, uint64_t key,
                          int64_t r0) {
    const pl_tr_weight *ws[3];
    pl_tr_lora Ls[3];
    const pl_tr_lora *Lp[3];
    const float *us[3];
    for (int i = 0; i < n; i++) {
        ws[i] = &t->w[l][ks[i]];
        us[i] = a->flu[ks[i]] + r0 * t->r;
        Lp[i] = NULL;
        if (has_lora(t, l, ks[i])) {
            Ls[i] = lora_of(t, l, ks[i], key, 1);
            Lp[i] = &Ls[i];
        }
    }
    return pl_tr_proj_bwd_bf16(dx, dxs, n, dy, dys, ws, Lp, us, x, T);
}

static pl_status lin_fwd(pl_trainer *t, int l, int k, pl_real *y, const pl_real *x, int64_t T, pl_real *u,
                         uint64_t key, int train) {
    pl_status st = PL_OK;
    if (t->cfg.full) {
        const pl_tr_tensor *W = &t->tensors[t->full_w[l][k]];
        dense_fwd(t, y, x, t->params + W->offset, T, (int)W->cols, (int)W->rows, 0);
    } else if ((st = linear_fwd(t, y, x, T, &t->w[l][k]))) {
        return st;
    }
    if (has_lora(t, l, k)) {
        pl_tr_lora L = lora_of(t, l, k, key, train);
        if (fast(t)) pl_tr_lora_fwd_blas(&L, y, u, x, T, t->xd);
        else pl_tr_lora_fwd(&L, y, u, x, T, t->xd);
    }
    return PL_OK;
}

/* dx += dy·W (+ LoRA: grads of A, B and their share of dx) */
static pl_status lin_bwd(pl_trainer *t, int l, int k, pl_real *dx, const pl_real *dy, const pl_real *x, int64_t T,
                         const pl_real *u, uint64_t key) {
    pl_status st = PL_OK;
    if (t->cfg.full) {
        const pl_tr_tensor *W = &t->tensors[t->full_w[l][k]];
        dense_bwd(t, dx, t->grads + W->offset, dy, x, t->params + W->offset, T, (int)W->cols, (int)W->rows);
    } else if ((st = linear_bwd(t, dx, dy, T, &t->w[l][k]))) {
        return st;
    }
    if (has_lora(t, l, k)) {
        pl_tr_lora L = lora_of(t, l, k, key, 1);
        if (fast(t)) pl_tr_lora_bwd_blas(&L, dx, dy, u, x, T, t->du, t->xd);
        else pl_tr_lora_bwd(&L, dx, dy, u, x, T, t->du, t->xd);
    }
    return PL_OK;
}

/* n projections k[] of layer l sharing the input x (q,k,v or gate,up): as
 * lin_fwd for each (the bf16 precision's blocks use proj_fwd instead). */
static pl_status lin_fwd_n(pl_trainer *t, int l, int n, const int *ks, pl_real *const *ys, const pl_real *x,
                           int64_t T, uint64_t key, int train, block_act *a) {
    for (int i = 0; i < n; i++) {
        pl_status st = lin_fwd(t, l, ks[i], ys[i], x, T, a->lu[ks[i]], key, train);
        if (st) return st;
    }
    return PL_OK;
}

/* dx += the input gradients of n projections sharing the input x, plus
 * LoRA grads (the bf16 precision's blocks use proj_bwd instead). */
static pl_status lin_bwd_n(pl_trainer *t, int l, int n, const int *ks, pl_real *dx, const pl_real *const *dys,
                           const pl_real *x, int64_t T, const block_act *a, uint64_t key) {
    for (int i = 0; i < n; i++) {
        pl_status st = lin_bwd(t, l, ks[i], dx, dys[i], x, T, a->lu[ks[i]], key);
        if (st) return st;
    }
    return PL_OK;
}

/* ---- block ------------------------------------------------------------------- */

static pl_status block_fwd(pl_trainer *t, int l, block_act *a, const pl_real *x, pl_real *xout, int64_t T,
                           uint64_t key, int train) {
    const pl_arch_desc *d = &t->d;
    int D = t->D;
    int64_t TD = T * D;
    pl_status st;
    /* attention */
    pl_tr_rmsnorm_fwd(a->xn1, a->rs1, x, norm_w(t, l, 0), T, D, d->norm_eps);
    static const int QKV[3] = {0, 1, 2}, GU[2] = {4, 5};
    if ((st = lin_fwd_n(t, l, 3, QKV, (pl_real *const[]){a->q, a->k, a->v}, a->xn1, T, key, train, a))) return st;
    int neox = d->rope == PL_ROPE_NEOX;
    pl_tr_rope_apply_table(a->q, T, t->H, t->hd, d->n_rot, t->rope_cs, neox, 0);
    pl_tr_rope_apply_table(a->k, T, t->Hkv, t->hd, d->n_rot, t->rope_cs, neox, 0);
    pl_tr_attn at = t->attn;
    at.window = (d->swa_window > 0 && d->swa_layer && d->swa_layer[l]) ? d->swa_window : 0;
    /* bf16: P is saved in f32 (in the first half of the double buffer) */
    if (t->cfg.precision == PL_PREC_BF16) {
        if ((st = pl_tr_attn_fwd_f32(&at, a->z, (float *)(void *)a->P, a->q, a->k, a->v, T))) return st;
    } else if (fast(t)) pl_tr_attn_fwd_blas(&at, a->z, a->P, a->q, a->k, a->v, T);
    else pl_tr_attn_fwd(&at, a->z, a->P, a->q, a->k, a->v, T);
    if ((st = lin_fwd(t, l, 3, a->o, a->z, T, a->lu[3], key, train))) return st;
    const pl_real *ao = a->o;
    if (d->post_norms) {
        pl_tr_rmsnorm_fwd(t->dtmp, a->rs_po, a->o, norm_w(t, l, 2), T, D, d->norm_eps);
        ao = t->dtmp;
    }
    for (int64_t i = 0; i < TD; i++) a->xmid[i] = x[i] + ao[i];
    /* MLP */
    pl_tr_rmsnorm_fwd(a->xn2, a->rs2, a->xmid, norm_w(t, l, 1), T, D, d->norm_eps);
    if ((st = lin_fwd_n(t, l, 2, GU, (pl_real *const[]){a->g, a->u}, a->xn2, T, key, train, a))) return st;
    pl_tr_glu_fwd_s(a->hm, a->gs, a->g, a->u, T * t->F, d->act);
    if ((st = lin_fwd(t, l, 6, a->dn, a->hm, T, a->lu[6], key, train))) return st;
    const pl_real *mo = a->dn;
    if (d->post_norms) {
        pl_tr_rmsnorm_fwd(t->dtmp, a->rs_pf, a->dn, norm_w(t, l, 3), T, D, d->norm_eps);
        mo = t->dtmp;
    }
    for (int64_t i = 0; i < TD; i++) xout[i] = a->xmid[i] + mo[i];
    return PL_OK;
}

static void dzero(pl_real *p, int64_t n) { memset(p, 0, (size_t)n * sizeof *p); }

/* dx: in = dL/d(block output), out = dL/d(block input). x: the block input. */
static pl_status block_bwd(pl_trainer *t, int l, const block_act *a, const pl_real *x, pl_real *dx, int64_t T,
                           uint64_t key) {
    const pl_arch_desc *d = &t->d;
    int D = t->D, F = t->F;
    int64_t TD = T * D;
    pl_status st;
    /* MLP branch: dmid = dx (residual) + through the MLP */
    const pl_real *ddn = dx;
    if (d->post_norms) {
        dzero(t->dtmp, TD);
        pl_tr_rmsnorm_bwd(t->dtmp, norm_g(t, l, 3), dx, a->dn, a->rs_pf, norm_w(t, l, 3), T, D);
        ddn = t->dtmp;
    }
    dzero(t->dff1, T * F);
    if ((st = lin_bwd(t, l, 6, t->dff1, ddn, a->hm, T, a->lu[6], key))) return st;
    /* dff1 = dhm -> dg (dwide), du (dff2), written */
    pl_tr_glu_bwd_s(t->dwide, t->dff2, t->dff1, a->g, a->u, a->gs, T * F, d->act);
    static const int QKV[3] = {0, 1, 2}, GU[2] = {4, 5};
    dzero(t->dtmp, TD);
    if ((st = lin_bwd_n(t, l, 2, GU, t->dtmp, (const pl_real *const[]){t->dwide, t->dff2}, a->xn2, T, a, key)))
        return st;
    pl_tr_rmsnorm_bwd(dx, norm_g(t, l, 1), t->dtmp, a->xmid, a->rs2, norm_w(t, l, 1), T, D); /* dx is now dL/dxmid */
    /* attention branch */
    const pl_real *dao = dx;
    if (d->post_norms) {
        dzero(t->dtmp, TD);
        pl_tr_rmsnorm_bwd(t->dtmp, norm_g(t, l, 2), dx, a->o, a->rs_po, norm_w(t, l, 2), T, D);
        dao = t->dtmp;
    }
    dzero(t->dwide, T * t->QD);
    if ((st = lin_bwd(t, l, 3, t->dwide, dao, a->z, T, a->lu[3], key))) return st;
    dzero(t->dq, T * t->QD);
    dzero(t->dk, T * t->KVD);
    dzero(t->dv, T * t->KVD);
    pl_tr_attn at = t->attn;
    at.window = (d->swa_window > 0 && d->swa_layer && d->swa_layer[l]) ? d->swa_window : 0;
    if ((st = t->cfg.precision == PL_PREC_BF16
                  ? pl_tr_attn_bwd_f32(&at, t->dq, t->dk, t->dv, t->dwide, (const float *)(const void *)a->P, a->q,
                                       a->k, a->v, T)
              : fast(t) ? pl_tr_attn_bwd_blas(&at, t->dq, t->dk, t->dv, t->dwide, a->P, a->q, a->k, a->v, T)
                        : pl_tr_attn_bwd(&at, t->dq, t->dk, t->dv, t->dwide, a->P, a->q, a->k, a->v, T)))
        return st;
    int neox = d->rope == PL_ROPE_NEOX;
    pl_tr_rope_apply_table(t->dq, T, t->H, t->hd, d->n_rot, t->rope_cs, neox, 1);
    pl_tr_rope_apply_table(t->dk, T, t->Hkv, t->hd, d->n_rot, t->rope_cs, neox, 1);
    dzero(t->dtmp, TD);
    if ((st = lin_bwd_n(t, l, 3, QKV, t->dtmp, (const pl_real *const[]){t->dq, t->dk, t->dv}, a->xn1, T, a, key)))
        return st;
    pl_tr_rmsnorm_bwd(dx, norm_g(t, l, 0), t->dtmp, x, a->rs1, norm_w(t, l, 0), T, D);
    return PL_OK;
}

/* ---- block, bf16 precision (activations in float32) -----------------------
 * The same block as block_fwd / block_bwd with the activations the
 * products read and write stored in float32: the norms' outputs, q, k, v,
 * z, the projections' outputs, the gates and the LoRA u (the frozen
 * products' f32 results are stored as they come, never widened), and so
 * are the gradients inside a block (of the gates, z, q, k, v). The residual
 * stream and its gradient, the RMSNorm statistics and the parameters'
 * gradients stay double. */

/* The first row the MLP runs for in layer l: 0, except in the top layer
 * while only the last row's output is read (t->last_row_only: the label and
 * head objectives). There the MLP runs for the last 32-row block that keeps
 * at least 32 rows (a multiple of 32: the tile products group the sums of
 * the LoRA gradients over tokens exactly as over all rows, whose other
 * rows add exact zeros), so the results are the same bits as over all rows
 * (tested). Not with dropout on an MLP LoRA (its masks index all rows) or
 * under full fine-tuning (norm weight gradients). */
static int64_t mlp_from(const pl_trainer *t, int l, int64_t T) {
    if (!t->last_row_only || t->no_pruning || l != t->d.n_layer - 1 || T < 64 || t->cfg.full) return 0;
    if (t->cfg.lora_dropout > 0 && (t->cfg.targets & (PL_TGT_GATE | PL_TGT_UP | PL_TGT_DOWN))) return 0;
    return (T - 32) / 32 * 32;
}

static pl_status block_fwd_bf16(pl_trainer *t, int l, block_act *a, const pl_real *x, pl_real *xout, int64_t T,
                                uint64_t key, int train) {
    const pl_arch_desc *d = &t->d;
    int D = t->D;
    int64_t TD = T * D;
    pl_status st;
    static const int QKV[3] = {0, 1, 2}, O[1] = {3}, GU[2] = {4, 5}, DN[1] = {6};
    /* attention */
    pl_tr_rmsnorm_fwd_f(a->fxn1, a->rs1, x, norm_w(t, l, 0), T, D, d->norm_eps);
    if ((st = proj_fwd(t, l, 3, QKV, (float *const[]){a->fq, a->fk, a->fv}, a->fxn1, T, key, train, a, 0))) return st;
    int neox = d->rope == PL_ROPE_NEOX;
    pl_tr_rope_apply_table_f(a->fq, T, t->H, t->hd, d->n_rot, t->rope_cs, neox, 0);
    pl_tr_rope_apply_table_f(a->fk, T, t->Hkv, t->hd, d->n_rot, t->rope_cs, neox, 0);
    pl_tr_attn at = t->attn;
    at.window = (d->swa_window > 0 && d->swa_layer && d->swa_layer[l]) ? d->swa_window : 0;
    if ((st = pl_tr_attn_fwd_f32s(&at, a->fz, a->fP, a->fq, a->fk, a->fv, T))) return st;
    if ((st = proj_fwd(t, l, 1, O, (float *const[]){a->fo}, a->fz, T, key, train, a, 0))) return st;
    if (d->post_norms) {
        for (int64_t i = 0; i < TD; i++) t->dtmp[i] = (double)a->fo[i];
        pl_tr_rmsnorm_fwd(t->dtmp, a->rs_po, t->dtmp, norm_w(t, l, 2), T, D, d->norm_eps);
        for (int64_t i = 0; i < TD; i++) a->xmid[i] = x[i] + t->dtmp[i];
    } else {
        for (int64_t i = 0; i < TD; i++) a->xmid[i] = x[i] + (double)a->fo[i];
    }
    /* MLP, over rows [m0, T) (mlp_from: the top layer when only the last
     * row's output is read; the rows before keep xout = xmid, unused) */
    const int64_t m0 = mlp_from(t, l, T), Tm = T - m0, F = t->F;
    for (int64_t i = 0; i < m0 * D; i++) xout[i] = a->xmid[i];
    pl_tr_rmsnorm_fwd_f(a->fxn2 + m0 * D, a->rs2 + m0, a->xmid + m0 * D, norm_w(t, l, 1), Tm, D, d->norm_eps);
    if ((st = proj_fwd(t, l, 2, GU, (float *const[]){a->fg + m0 * F, a->fu + m0 * F}, a->fxn2 + m0 * D, Tm, key, train,
                       a, m0)))
        return st;
    /* SwiGLU and down: fused on the tiles when down has no LoRA (its h is
     * then read by nothing else: fhm stays unwritten) */
    int fused = 0;
    if (d->act == PL_ACT_SILU && !has_lora(t, l, 6) &&
        (st = pl_tr_swiglu_down_bf16(a->fdn + m0 * D, a->fgs + m0 * F, a->fg + m0 * F, a->fu + m0 * F, &t->w[l][6], Tm,
                                     &fused)))
        return st;
    if (!fused) {
        pl_tr_glu_fwd_sf(a->fhm + m0 * F, a->fgs + m0 * F, a->fg + m0 * F, a->fu + m0 * F, Tm * F, d->act);
        if ((st = proj_fwd(t, l, 1, DN, (float *const[]){a->fdn + m0 * D}, a->fhm + m0 * F, Tm, key, train, a, m0)))
            return st;
    }
    if (d->post_norms) {
        for (int64_t i = m0 * D; i < TD; i++) t->dtmp[i] = (double)a->fdn[i];
        pl_tr_rmsnorm_fwd(t->dtmp + m0 * D, a->rs_pf + m0, t->dtmp + m0 * D, norm_w(t, l, 3), Tm, D, d->norm_eps);
        for (int64_t i = m0 * D; i < TD; i++) xout[i] = a->xmid[i] + t->dtmp[i];
    } else {
        for (int64_t i = m0 * D; i < TD; i++) xout[i] = a->xmid[i] + (double)a->fdn[i];
    }
    return PL_OK;
}

/* (double) of a float activation, into the trainer's LoRA scratch xd */
static const pl_real *widened(pl_trainer *t, const float *f, int64_t n) {
    for (int64_t i = 0; i < n; i++) t->xd[i] = (double)f[i];
    return t->xd;
}

static pl_status block_bwd_bf16(pl_trainer *t, int l, const block_act *a, const pl_real *x, pl_real *dx, int64_t T,
                                uint64_t key) {
    const pl_arch_desc *d = &t->d;
    int D = t->D, F = t->F;
    int64_t TD = T * D;
    pl_status st;
    static const int QKV[3] = {0, 1, 2}, O[1] = {3}, GU[2] = {4, 5}, DN[1] = {6};
    /* gradients inside the block in float32, in the (double-sized) scratch */
    float *dhm = (float *)(void *)t->dff1, *dg = (float *)(void *)t->dwide, *dup = (float *)(void *)t->dff2;
    float *dz = (float *)(void *)t->dwide, *dq = (float *)(void *)t->dq, *dk = (float *)(void *)t->dk;
    float *dv = (float *)(void *)t->dv;
    /* MLP branch: dmid = dx (residual) + through the MLP, over the rows
     * [m0, T) the forward ran (the rows before have dx = 0 there: nothing
     * reads their output) */
    const int64_t m0 = mlp_from(t, l, T), Tm = T - m0;
    const pl_real *ddn = dx + m0 * D;
    if (d->post_norms) {
        dzero(t->dtmp + m0 * D, Tm * D);
        pl_tr_rmsnorm_bwd8(t->dtmp + m0 * D, norm_g(t, l, 3), dx + m0 * D, widened(t, a->fdn + m0 * D, Tm * D),
                           a->rs_pf + m0, norm_w(t, l, 3), Tm, D);
        ddn = t->dtmp + m0 * D;
    }
    if ((st = proj_bwd(t, l, 1, DN, NULL, dhm, &ddn, NULL, a->fhm + m0 * F, Tm, a, key, m0))) return st;
    /* the SwiGLU's backward and gate/up's input gradient: fused on the
     * tiles when neither has a LoRA (dg, du read by nothing else) */
    int fused = 0;
    if (d->act == PL_ACT_SILU && !has_lora(t, l, 4) && !has_lora(t, l, 5) &&
        (st = pl_tr_swiglu_bwd_bf16(t->dtmp + m0 * D, dhm, a->fg + m0 * F, a->fu + m0 * F, a->fgs + m0 * F, &t->w[l][4],
                                    &t->w[l][5], Tm, &fused)))
        return st;
    if (!fused) {
        pl_tr_glu_bwd_sf(dg, dup, dhm, a->fg + m0 * F, a->fu + m0 * F, a->fgs + m0 * F, Tm * F, d->act);
        if ((st = proj_bwd(t, l, 2, GU, t->dtmp + m0 * D, NULL, NULL, (const float *const[]){dg, dup}, a->fxn2 + m0 * D,
                           Tm, a, key, m0)))
            return st;
    }
    /* dx is now dL/dxmid */
    pl_tr_rmsnorm_bwd8(dx + m0 * D, norm_g(t, l, 1), t->dtmp + m0 * D, a->xmid + m0 * D, a->rs2 + m0,
                       norm_w(t, l, 1), Tm, D);
    /* attention branch */
    const pl_real *dao = dx;
    if (d->post_norms) {
        dzero(t->dtmp, TD);
        pl_tr_rmsnorm_bwd8(t->dtmp, norm_g(t, l, 2), dx, widened(t, a->fo, TD), a->rs_po, norm_w(t, l, 2), T, D);
        dao = t->dtmp;
    }
    if ((st = proj_bwd(t, l, 1, O, NULL, dz, &dao, NULL, a->fz, T, a, key, 0))) return st;
    pl_tr_attn at = t->attn;
    at.window = (d->swa_window > 0 && d->swa_layer && d->swa_layer[l]) ? d->swa_window : 0;
    if ((st = pl_tr_attn_bwd_f32s(&at, dq, dk, dv, dz, a->fP, a->fq, a->fk, a->fv, T))) return st;
    int neox = d->rope == PL_ROPE_NEOX;
    pl_tr_rope_apply_table_f(dq, T, t->H, t->hd, d->n_rot, t->rope_cs, neox, 1);
    pl_tr_rope_apply_table_f(dk, T, t->Hkv, t->hd, d->n_rot, t->rope_cs, neox, 1);
    if ((st = proj_bwd(t, l, 3, QKV, t->dtmp, NULL, NULL, (const float *const[]){dq, dk, dv}, a->fxn1, T, a, key, 0)))
        return st;
    pl_tr_rmsnorm_bwd8(dx, norm_g(t, l, 0), t->dtmp, x, a->rs1, norm_w(t, l, 0), T, D);
    return PL_OK;
}

/* ---- whole model ---------------------------------------------------------------- */

static pl_status check_tokens(const pl_trainer *t, const int32_t *tokens, int n) {
    if (n < 1 || !tokens) return pl_error(PL_ERR_INVALID, "trainer: empty example");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= t->V)
            return pl_error(PL_ERR_RANGE, "trainer: token %d: id %d outside the vocabulary [0, %d)", i, (int)tokens[i],
                            t->V);
    return PL_OK;
}

/* The activations of layer l: its own (no checkpointing, or one of the top
 * n_keep layers) or the shared block of the recomputed layers. */
static block_act *act_for(pl_trainer *t, int l) {
    if (!t->cfg.checkpoint) return &t->acts[l];
    int first_kept = t->d.n_layer - t->n_keep;
    return &t->acts[l >= first_kept ? 1 + l - first_kept : 0];
}

/* Whether the backward must recompute layer l: checkpointing, not a kept
 * layer, and not the last layer the forward left in the shared block. */
static int recompute(const pl_trainer *t, int l) {
    return t->cfg.checkpoint && l < t->d.n_layer - t->n_keep - 1;
}

/* Embedding + all blocks + final norm; fills xs and hf. */
static pl_status forward_all(pl_trainer *t, const int32_t *tokens, int64_t T, uint64_t key, int train) {
    pl_status st = ensure_cap(t, T);
    if (st) return st;
    int D = t->D;
    float *row = malloc((size_t)D * sizeof *row);
    if (!row) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
    for (int64_t i = 0; i < T; i++) {
        t->pos[i] = (int32_t)i;
        /* x0 = embed_tokens(ids) * embd_scale */
        if (t->cfg.full) {
            const pl_real *er = t->params + t->tensors[t->full_embd].offset + (size_t)tokens[i] * (size_t)D;
            for (int e = 0; e < D; e++) t->xs[i * D + e] = er[e] * (double)t->d.embd_scale;
            continue;
        }
        pl_status ds = pl_dequantize_row((pl_dtype)t->embd.dtype,
                                         (const uint8_t *)t->embd.data + (size_t)tokens[i] * t->embd.row_bytes, row, D);
        if (ds) {
            free(row);
            return ds;
        }
        for (int e = 0; e < D; e++) t->xs[i * D + e] = (double)row[e] * (double)t->d.embd_scale;
    }
    free(row);
    for (int l = 0; l < t->d.n_layer; l++) {
        const pl_real *x = t->xs + (size_t)l * (size_t)(T * D);
        pl_real *xo = t->xs + (size_t)(l + 1) * (size_t)(T * D);
        st = acts_f32(t) ? block_fwd_bf16(t, l, act_for(t, l), x, xo, T, key, train)
                         : block_fwd(t, l, act_for(t, l), x, xo, T, key, train);
        if (st) return st;
    }
    const pl_real *xl = t->xs + (size_t)t->d.n_layer * (size_t)(T * D);
    pl_tr_rmsnorm_fwd(t->hf, t->rsf, xl, norm_w(t, t->d.n_layer, 0), T, D, t->d.norm_eps);
    return PL_OK;
}

/* Backward from dhf (in t->dx, dL/d hf) through the final norm and every block. */
static pl_status backward_all(pl_trainer *t, const int32_t *tokens, int64_t T, uint64_t key) {
    int D = t->D, L = t->d.n_layer;
    int64_t TD = T * D;
    /* dx = dL/dx_L */
    memcpy(t->dtmp, t->dx, (size_t)TD * sizeof *t->dx);
    dzero(t->dx, TD);
    pl_tr_rmsnorm_bwd(t->dx, norm_g(t, L, 0), t->dtmp, t->xs + (size_t)L * (size_t)TD, t->rsf, norm_w(t, L, 0), T, D);
    for (int l = L - 1; l >= 0; l--) {
        const pl_real *x = t->xs + (size_t)l * (size_t)TD;
        block_act *a = act_for(t, l);
        pl_status st;
        if (recompute(t, l)) {
            /* recompute this block's activations (output goes to scratch: xs[l+1] is kept) */
            pl_real *scratch = malloc((size_t)TD * sizeof *scratch);
            if (!scratch) return pl_error(PL_ERR_NOMEM, "trainer: out of memory");
            st = acts_f32(t) ? block_fwd_bf16(t, l, a, x, scratch, T, key, 1) : block_fwd(t, l, a, x, scratch, T, key, 1);
            free(scratch);
            if (st) return st;
        }
        st = acts_f32(t) ? block_bwd_bf16(t, l, a, x, t->dx, T, key) : block_bwd(t, l, a, x, t->dx, T, key);
        if (st) return st;
    }
    if (t->cfg.full) {
        /* embedding: dE[tok] += dx0 * embd_scale */
        pl_real *dE = t->grads + t->tensors[t->full_embd].offset;
        for (int64_t i = 0; i < T; i++)
            for (int e = 0; e < D; e++) dE[(size_t)tokens[i] * (size_t)D + (size_t)e] += t->dx[i * D + e] * (double)t->d.embd_scale;
    }
    return PL_OK;
}

/* One label row of the output matrix as a 1-row weight. */
static pl_tr_weight out_row(const pl_trainer *t, int32_t tok) {
    pl_tr_weight w = t->out;
    w.data = (const uint8_t *)t->out.data + (size_t)tok * t->out.row_bytes;
    w.n_out = 1;
    return w;
}

/* y[T, n] = h · Woutᵀ over every vocabulary row (row < 0, n = V) or the one row `row` (n = 1). */
static pl_status out_fwd(pl_trainer *t, pl_real *y, const pl_real *h, int64_t T, int32_t row) {
    if (t->cfg.full) {
        const pl_real *W = t->params + t->tensors[t->full_out].offset;
        if (row < 0) dense_fwd(t, y, h, W, T, t->D, t->V, 0);
        else dense_fwd(t, y, h, W + (size_t)row * (size_t)t->D, T, t->D, 1, 0);
        return PL_OK;
    }
    if (row < 0) return linear_fwd(t, y, h, T, &t->out);
    pl_tr_weight w = out_row(t, row);
    return linear_fwd(t, y, h, T, &w);
}

/* dh += dy · Wout (rows as in out_fwd); full fine-tuning: dWout += dyᵀ · h. */
static pl_status out_bwd(pl_trainer *t, pl_real *dh, const pl_real *dy, const pl_real *h, int64_t T, int32_t row) {
    if (t->cfg.full) {
        size_t off = t->tensors[t->full_out].offset + (row < 0 ? 0 : (size_t)row * (size_t)t->D);
        dense_bwd(t, dh, t->grads + off, dy, h, t->params + off, T, t->D, row < 0 ? t->V : 1);
        return PL_OK;
    }
    if (row < 0) return linear_bwd(t, dh, dy, T, &t->out);
    pl_tr_weight w = out_row(t, row);
    return linear_bwd(t, dh, dy, T, &w);
}

/* logits = softcap(hf_row · Woutᵀ) for the label tokens (or all) */
static pl_status label_logits(pl_trainer *t, const pl_real *h, pl_real *lg) {
    pl_status st;
    if (t->cfg.label_full_vocab) {
        if ((st = out_fwd(t, lg, h, 1, -1))) return st;
        if (t->d.final_softcap > 0) pl_tr_softcap_fwd(lg, lg, t->V, t->d.final_softcap);
    } else {
        for (int c = 0; c < 2; c++)
            if ((st = out_fwd(t, lg + c, h, 1, t->cfg.label_tokens[c]))) return st;
        if (t->d.final_softcap > 0) pl_tr_softcap_fwd(lg, lg, 2, t->d.final_softcap);
    }
    return PL_OK;
}

pl_status pl_trainer_example(pl_trainer *t, const pl_tr_example *ex, uint64_t example_index, double weight,
                             int backward, double *loss, int *n_scored) {
    const pl_tr_config *c = &t->cfg;
    int64_t T = ex->n_tokens, D = t->D;
    pl_status st = check_tokens(t, ex->tokens, ex->n_tokens);
    if (st) return st;
    if (c->objective != PL_OBJ_LM && (ex->label < 0 || ex->label >= (c->objective == PL_OBJ_HEAD ? c->n_class : 2)))
        return pl_error(PL_ERR_RANGE, "trainer: label %d out of range", ex->label);
    uint64_t key = pl_tr_mix(pl_tr_mix(c->seed, t->step), example_index);
    const int last_only = c->objective != PL_OBJ_LM;
    t->last_row_only = last_only; /* only inside this example's forward and backward */
    st = forward_all(t, ex->tokens, T, key, 1);
    t->last_row_only = 0;
    if (st) return st;
    double total = 0.0;
    int scored = 0;
    if (backward) dzero(t->dx, T * D);
    const pl_real *h = t->hf + (T - 1) * D;
    pl_real *dh = t->dx + (T - 1) * D;
    if (c->objective == PL_OBJ_LABEL) {
        pl_real *lg = t->logits, *dl = t->logits + t->V;
        int nl = c->label_full_vocab ? t->V : 2;
        /* lg [nl], dl [nl], tmp [nl] live in the LM_CHUNK*V logits buffer */
        if ((st = label_logits(t, h, lg))) return st;
        int target = c->label_full_vocab ? c->label_tokens[ex->label] : ex->label;
        dzero(dl, nl);
        total = pl_tr_xent(dl, lg, nl, NULL, 0, target, weight);
        scored = 1;
        if (backward) {
            if (t->d.final_softcap > 0) {
                /* dl through the soft-cap, in place via a copy */
                pl_real *tmp = t->logits + 2 * (size_t)t->V;
                dzero(tmp, nl);
                pl_tr_softcap_bwd(tmp, dl, lg, nl, t->d.final_softcap);
                memcpy(dl, tmp, (size_t)nl * sizeof *dl);
            }
            if (c->label_full_vocab) {
                if ((st = out_bwd(t, dh, dl, h, 1, -1))) return st;
            } else {
                for (int k = 0; k < 2; k++)
                    if ((st = out_bwd(t, dh, dl + k, h, 1, c->label_tokens[k]))) return st;
            }
        }
    } else if (c->objective == PL_OBJ_HEAD) {
        const pl_tr_tensor *hw = &t->tensors[t->head_idx];
        pl_real lg[1024], dl[1024];
        pl_tr_dense_fwd(lg, h, t->params + hw->offset, 1, t->D, c->n_class, 0);
        dzero(dl, c->n_class);
        total = pl_tr_xent(dl, lg, c->n_class, NULL, 0, ex->label, weight);
        scored = 1;
        if (backward) pl_tr_dense_bwd(dh, t->grads + hw->offset, dl, h, t->params + hw->offset, 1, t->D, c->n_class);
    } else {
        int start = ex->loss_start < 0 ? 0 : ex->loss_start;
        for (int64_t p0 = start; p0 < T - 1; p0 += LM_CHUNK) {
            int64_t n = (T - 1 - p0) < LM_CHUNK ? (T - 1 - p0) : LM_CHUNK;
            pl_real *lg = t->logits;
            if ((st = out_fwd(t, lg, t->hf + p0 * D, n, -1))) return st;
            if (t->d.final_softcap > 0) pl_tr_softcap_fwd(lg, lg, n * t->V, t->d.final_softcap);
            for (int64_t i = 0; i < n; i++) {
                pl_real *row = lg + i * t->V;
                /* gradient overwrites the row after its loss is taken */
                double mx = -INFINITY, sum = 0.0;
                for (int v = 0; v < t->V; v++)
                    if (row[v] > mx) mx = row[v];
                for (int v = 0; v < t->V; v++) sum += exp(row[v] - mx);
                double lse = mx + log(sum);
                int tgt = ex->tokens[p0 + i + 1];
                total += lse - row[tgt];
                scored++;
                for (int v = 0; v < t->V; v++) {
                    double p = exp(row[v] - lse);
                    double g = weight * (p - (v == tgt ? 1.0 : 0.0));
                    if (t->d.final_softcap > 0) {
                        double cc = row[v] / (double)t->d.final_softcap;
                        g *= 1.0 - cc * cc;
                    }
                    row[v] = g;
                }
            }
            if (backward && (st = out_bwd(t, t->dx + p0 * D, lg, t->hf + p0 * D, n, -1))) return st;
        }
    }
    if (!isfinite(total)) return pl_error(PL_ERR_NUMERIC, "trainer: non-finite loss (example %llu)",
                                          (unsigned long long)example_index);
    if (loss) *loss = total;
    if (n_scored) *n_scored = scored;
    if (!backward) return PL_OK;
    t->last_row_only = last_only;
    st = backward_all(t, ex->tokens, T, key);
    t->last_row_only = 0;
    return st;
}

pl_status pl_trainer_logits(pl_trainer *t, const int32_t *tokens, int n_tokens, pl_real *logits) {
    pl_status st = check_tokens(t, tokens, n_tokens);
    if (st) return st;
    if ((st = forward_all(t, tokens, n_tokens, 0, 0))) return st;
    if ((st = out_fwd(t, logits, t->hf, n_tokens, -1))) return st;
    if (t->d.final_softcap > 0) pl_tr_softcap_fwd(logits, logits, (int64_t)n_tokens * t->V, t->d.final_softcap);
    return PL_OK;
}

pl_status pl_trainer_scores(pl_trainer *t, const int32_t *tokens, int n_tokens, pl_real *scores) {
    pl_status st = check_tokens(t, tokens, n_tokens);
    if (st) return st;
    if ((st = forward_all(t, tokens, n_tokens, 0, 0))) return st;
    const pl_real *h = t->hf + (int64_t)(n_tokens - 1) * t->D;
    if (t->cfg.objective == PL_OBJ_HEAD) {
        const pl_tr_tensor *hw = &t->tensors[t->head_idx];
        pl_tr_dense_fwd(scores, h, t->params + hw->offset, 1, t->D, 2, 0);
        return PL_OK;
    }
    for (int c = 0; c < 2; c++)
        if ((st = out_fwd(t, scores + c, h, 1, t->cfg.label_tokens[c]))) return st;
    if (t->d.final_softcap > 0) pl_tr_softcap_fwd(scores, scores, 2, t->d.final_softcap);
    return PL_OK;
}

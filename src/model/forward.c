/* forward.c — KV caches, run state and the batched forward pass.
 *
 * One block implementation for every family; the descriptor decides norm
 * placement, activation, RoPE layout and scaling, soft-caps, sliding
 * window, embedding scale and query scale. Read it top to bottom like
 * llama2.c's run.c:
 *
 *   x = embed(tokens) * embd_scale                      hook_embed
 *   for each layer L:                                   hook_resid_pre
 *     h = rmsnorm(x) ; q,k,v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ       hook_q/k/v
 *     rope(q, k) ; append k, v to the cache
 *     a = softmax(softcap(q·kᵀ · q_scale) + mask)       hook_pattern
 *     z = a·v ; o = z·Woᵀ  (gemma2: o = rmsnorm(o))      hook_z, hook_attn_out
 *     x = x + o                                         hook_resid_mid
 *     h = rmsnorm(x) ; m = act(h·Wgᵀ) * (h·Wuᵀ)          mlp.hook_post
 *     o = m·Wdᵀ (gemma2: o = rmsnorm(o))                 hook_mlp_out
 *     x = x + o                                         hook_resid_post
 *   logits = softcap(rmsnorm(x)·Woutᵀ)                  ln_final.hook_normalized
 *
 * Sequences of a batch are concatenated row-wise: matmuls run over all new
 * tokens at once, attention per (token, head) over that token's own cache.
 * Numerics follow ggml where it matters for agreement with llama.cpp:
 * RMSNorm and softmax sums in double, RoPE angles by repeated
 * multiplication, GELU optionally through fp16.
 */
#define _GNU_SOURCE /* clock_gettime, sysconf */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "model/model_impl.h"
#include "tensor/tensor.h"

#define MAX_PREFIX_DEPTH 16
#define KV_WIDE 4096 /* floats of bf16 cache rows widened at a time (at least one head) */

/* ---- KV cache ------------------------------------------------------------ */

struct pl_kv {
    const pl_model *m;
    pl_kv *prefix;      /* attended in place, frozen while we live */
    int prefix_len;     /* positions taken from the prefix chain */
    int cap, n;         /* own capacity and own positions filled */
    int n_forks;        /* caches forked from this one (atomic: threads fork one prefix at once) */
    /* [n_layer][cap][n_head_kv*head_dim]: f32 (k, v), or bf16 (kb, vb) where
     * the model runs attention on bf16 tiles, which round k and v to bf16
     * anyway (the same bits, half the memory, no conversion per read) */
    float *k, *v;
    uint16_t *kb, *vb;
};

/* Rows p, p + 1, ... of a bf16 cache's head (src's rows kvd apart, hd
 * values each) widened (exactly) into wide, as many as fit in KV_WIDE
 * floats and at most len - p; returns how many */
static int kv_widen_rows(float *wide, const uint16_t *src, size_t kvd, int hd, int p, int len) {
    const int per = KV_WIDE / hd, c = len - p < per ? len - p : per;
    for (int j = 0; j < c; j++)
        for (int i = 0; i < hd; i++) wide[(size_t)j * (size_t)hd + (size_t)i] = pl_bf16_to_fp32(src[(size_t)(p + j) * kvd + (size_t)i]);
    return c;
}

/* whether a model's caches hold bf16: where its attention runs on bf16
 * tiles (bf16_tiles on a CPU with them), which read only bf16 caches */
static int kv_bf16(const pl_model *m) { return m->opts.bf16_tiles && pl_bf16_gemm_native(); }


pl_status pl_kv_new(const pl_model *m, int capacity, pl_kv *prefix, pl_kv **out) {
    return pl_kv_new_at(m, capacity, prefix, prefix ? pl_kv_len(prefix) : 0, out);
}

pl_status pl_kv_new_at(const pl_model *m, int capacity, pl_kv *prefix, int at, pl_kv **out) {
    *out = NULL;
    if (capacity < 0) return pl_error(PL_ERR_INVALID, "kv cache: negative capacity %d", capacity);
    if (prefix && (at < 0 || at > pl_kv_len(prefix)))
        return pl_error(PL_ERR_RANGE, "kv cache: fork at %d outside the prefix's %d positions", at, pl_kv_len(prefix));
    /* the positions before `at` must all come from the chain above: step up
     * to the cache that holds position at - 1 (none for at = 0) */
    while (prefix && at <= prefix->prefix_len) prefix = prefix->prefix;
    int depth = 0;
    for (pl_kv *p = prefix; p; p = p->prefix) depth++;
    if (depth >= MAX_PREFIX_DEPTH)
        return pl_error(PL_ERR_INVALID, "kv cache: prefix chain deeper than %d", MAX_PREFIX_DEPTH);
    if (prefix && prefix->m != m) return pl_error(PL_ERR_INVALID, "kv cache: prefix belongs to another model");
    const pl_arch_desc *d = &m->d;
    size_t kv_dim = (size_t)d->n_head_kv * (size_t)d->head_dim, n;
    if (!pl_mul_ok(kv_dim, (size_t)d->n_layer, &n) || !pl_mul_ok(n, (size_t)capacity, &n) ||
        !pl_mul_ok(n, kv_bf16(m) ? sizeof(uint16_t) : sizeof(float), &n))
        return pl_error(PL_ERR_NOMEM, "kv cache: size overflow for capacity %d", capacity);
    if (kv_bf16(m) && d->head_dim > KV_WIDE)
        return pl_error(PL_ERR_UNSUPPORTED, "kv cache: head size %d above %d on bf16 caches", d->head_dim, KV_WIDE);
    pl_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return pl_error(PL_ERR_NOMEM, "kv cache: out of memory");
    kv->m = m;
    kv->cap = capacity;
    /* not zeroed: a position is written (for every layer) before anything
     * reads it, and only positions below the length are read */
    void *kp = pl_alloc_aligned_raw(n), *vp = pl_alloc_aligned_raw(n);
    if (kv_bf16(m)) {
        kv->kb = kp;
        kv->vb = vp;
    } else {
        kv->k = kp;
        kv->v = vp;
    }
    if (!kp || !vp) {
        pl_free_aligned(kp);
        pl_free_aligned(vp);
        free(kv);
        return pl_error(PL_ERR_NOMEM, "kv cache: cannot allocate %zu bytes", 2 * n);
    }
    if (prefix && at > 0) {
        kv->prefix = prefix;
        kv->prefix_len = at;
        __atomic_fetch_add(&prefix->n_forks, 1, __ATOMIC_RELAXED);
    }
    *out = kv;
    return PL_OK;
}

void pl_kv_free(pl_kv *kv) {
    if (!kv) return;
    if (kv->prefix) __atomic_fetch_sub(&kv->prefix->n_forks, 1, __ATOMIC_RELAXED);
    pl_free_aligned(kv->k);
    pl_free_aligned(kv->v);
    pl_free_aligned(kv->kb);
    pl_free_aligned(kv->vb);
    free(kv);
}

int pl_kv_len(const pl_kv *kv) { return kv->prefix_len + kv->n; }
int pl_kv_forks(const pl_kv *kv) { return __atomic_load_n(&kv->n_forks, __ATOMIC_RELAXED); }
int pl_kv_depth(const pl_kv *kv) {
    int d = 0;
    for (const pl_kv *p = kv; p; p = p->prefix) d++;
    return d;
}
size_t pl_kv_position_bytes(const pl_model *m) {
    return (size_t)m->d.n_layer * (size_t)m->d.n_head_kv * (size_t)m->d.head_dim * 2 *
           (kv_bf16(m) ? sizeof(uint16_t) : sizeof(float));
}

pl_status pl_kv_truncate(pl_kv *kv, int n) {
    if (n < kv->prefix_len || n > pl_kv_len(kv))
        return pl_error(PL_ERR_RANGE, "kv cache: cannot truncate to %d (prefix %d, length %d)", n,
                        kv->prefix_len, pl_kv_len(kv));
    if (pl_kv_forks(kv) && n != pl_kv_len(kv)) return pl_error(PL_ERR_INVALID, "kv cache: truncating a cache that has forks");
    kv->n = n - kv->prefix_len;
    return PL_OK;
}

/* Segments of a cache's positions: [seg.start, seg.start+seg.len) live in
 * seg.kv's own storage. Oldest first. */
typedef struct {
    const pl_kv *kv;
    int start, len;
} kv_seg;

static int kv_segments(const pl_kv *kv, int total, kv_seg *segs) {
    const pl_kv *chain[MAX_PREFIX_DEPTH + 1];
    int n = 0;
    for (const pl_kv *p = kv; p; p = p->prefix) chain[n++] = p;
    int ns = 0, end = total;
    /* Walk from kv back to the root: each owns [prefix_len, prefix_len + n). */
    kv_seg tmp[MAX_PREFIX_DEPTH + 1];
    for (int i = 0; i < n; i++) {
        const pl_kv *p = chain[i];
        int s = p->prefix_len, e = end;
        if (e > s) tmp[ns++] = (kv_seg){p, s, e - s};
        end = s;
    }
    for (int i = 0; i < ns; i++) segs[i] = tmp[ns - 1 - i];
    return ns;
}

/* ---- run state ----------------------------------------------------------- */

typedef struct {
    pl_hook_fn fn;
    void *user;
} hook_slot;

struct pl_runner {
    const pl_model *m;
    int max_tokens, max_ctx, n_threads;
    int lora_rank;  /* adapter rank the scratch was sized for */
    pl_arena arena;
    /* activations, rows = new tokens of the batch */
    float *x;       /* [T, d] residual stream */
    float *xb;      /* [T, max(d, q_dim)] normed input */
    float *xb2;     /* [T, d] branch output */
    float *q;       /* [T, q_dim] */
    float *k, *v;   /* [T, kv_dim] */
    float *z;       /* [T, q_dim] attention output per head */
    float *hb, *hb2;/* [T, n_ff] */
    float *att;     /* [n_threads, max_ctx] score rows */
    float *lora_tmp;/* [T, max_rank] */
    float *rope_cs; /* [T, n_rot] cos/sin of each new token's angles */
    void *mm_scratch;
    size_t mm_bytes;
    pl_bf16_rows xa; /* the current product input rounded to bf16 (bf16 tiles) */
    pl_bf16_rows ha; /* the fused gated unit's output, the down product's input */
    pl_bf16_rows za; /* the heads' outputs as the o product's rows (z_rows) */
    int z_rows;      /* this layer's attention writes za instead of z */
    /* q_rows: this layer's queries came rotated and rounded to bf16 from the
     * q, k, v product's epilogue (qkv_block) into qh, per KV head its group's
     * heads of every token: [n_head_kv][T group + 32][head_dim], qh_ld
     * elements from one KV head's rows to the next (32 rows of slack, zero:
     * a product reads its rows rounded up to 32 and stores only its own) */
    uint16_t *qh;
    size_t qh_cap, qh_ld;
    int q_rows;
    void *att_tiles;       /* per-thread scratch of attention_tiles, made on first use */
    pl_bf16_rows *att_rows; /* per thread: its queries and probabilities as bf16 rows */
    int share_one, share_count, share_room; /* sharing the cores (pl_forward) */
    size_t att_tiles_per;  /* its bytes per thread */
    int32_t *tok_seq, *tok_pos; /* [T] sequence index and absolute position */
    /* hooks: [PL_HOOK_COUNT][n_layer + 1] (slot n_layer for layer -1 points) */
    hook_slot *hooks;
    int any_hook;
    float *pattern; /* [n_head, max_tokens, max_ctx] when a pattern hook is set */
    /* pl_runner_set_logit_ids: the vocabulary entries LOGITS_LAST writes
     * and their columns of the unembedding's tiles (when it has tiles) */
    int32_t logit_ids[64];
    int n_logit_ids;
    uint16_t *logit_tiles;
};

static size_t fsz(size_t a, size_t b) { return a * b * sizeof(float); }

/* rows and columns of bf16 rows are padded to multiples of 32 (tensor.h) */
static size_t up32(size_t n) { return (n + 31) / 32 * 32; }

/* the threads a parallel region of this runner may use: the calling
 * thread's setting, at most the count its scratch was made for */
static int team(const pl_runner *r) {
    const int n = pl_num_threads();
    return n < r->n_threads ? n : r->n_threads;
}

pl_status pl_runner_new(const pl_model *m, int max_tokens, int max_ctx, pl_runner **out) {
    *out = NULL;
    if (max_tokens < 1 || max_ctx < 1 || max_tokens > (1 << 20) || max_ctx > (1 << 22))
        return pl_error(PL_ERR_INVALID, "runner: max_tokens %d / max_ctx %d out of range", max_tokens, max_ctx);
    const pl_arch_desc *d = &m->d;
    size_t T = (size_t)max_tokens, D = (size_t)d->n_embd;
    size_t qd = (size_t)d->n_head * (size_t)d->head_dim, kvd = (size_t)d->n_head_kv * (size_t)d->head_dim;
    size_t wide = D > qd ? D : qd, ff = (size_t)d->n_ff;
    int nt = pl_num_threads();
    if (nt < 1) nt = 1;
    size_t rank = m->max_lora_rank > 0 ? (size_t)m->max_lora_rank : 1;
    int64_t nin = m->max_n_in;
    size_t mmb = pl_mm_scratch_bytes((int64_t)T, nin);
    size_t parts[] = {fsz(T, D), fsz(T, wide), fsz(T, D), fsz(T, qd), fsz(T, kvd), fsz(T, kvd), fsz(T, qd),
                      fsz(T, ff), fsz(T, ff), fsz((size_t)nt, (size_t)max_ctx), pl_mm_lora_tmp_bytes((int64_t)T, (int)rank), mmb,
                      T * sizeof(int32_t), T * sizeof(int32_t), fsz(T, (size_t)(d->n_rot > 0 ? d->n_rot : 1))};
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (!pl_add_ok(total, parts[i] + 64, &total)) return pl_error(PL_ERR_NOMEM, "runner: size overflow");
    pl_runner *r = calloc(1, sizeof *r);
    if (!r) return pl_error(PL_ERR_NOMEM, "runner: out of memory");
    /* caches and scratch come and go per call (explain's variants): reuse
     * freed memory instead of faulting in fresh pages (explain, 2 threads:
     * 360k -> 270k faults, 7-10% of the wall time) */
    pl_keep_freed_memory();
    r->m = m;
    r->max_tokens = max_tokens;
    r->max_ctx = max_ctx;
    r->n_threads = nt;
    r->hooks = calloc((size_t)PL_HOOK_COUNT * (size_t)(d->n_layer + 1), sizeof *r->hooks);
    if (!r->hooks || pl_arena_init(&r->arena, total) != PL_OK) {
        free(r->hooks);
        free(r);
        return pl_error(PL_ERR_NOMEM, "runner: cannot allocate %zu bytes of run state", total);
    }
    pl_arena *a = &r->arena;
    r->x = pl_arena_alloc(a, parts[0]);
    r->xb = pl_arena_alloc(a, parts[1]);
    r->xb2 = pl_arena_alloc(a, parts[2]);
    r->q = pl_arena_alloc(a, parts[3]);
    r->k = pl_arena_alloc(a, parts[4]);
    r->v = pl_arena_alloc(a, parts[5]);
    r->z = pl_arena_alloc(a, parts[6]);
    r->hb = pl_arena_alloc(a, parts[7]);
    r->hb2 = pl_arena_alloc(a, parts[8]);
    r->att = pl_arena_alloc(a, parts[9]);
    r->lora_tmp = pl_arena_alloc(a, parts[10]);
    r->mm_scratch = pl_arena_alloc(a, parts[11]);
    r->mm_bytes = parts[11];
    r->tok_seq = pl_arena_alloc(a, parts[12]);
    r->tok_pos = pl_arena_alloc(a, parts[13]);
    r->rope_cs = pl_arena_alloc(a, parts[14]);
    r->lora_rank = m->max_lora_rank;
    *out = r;
    return PL_OK;
}

void pl_runner_free(pl_runner *r) {
    if (!r) return;
    pl_arena_free(&r->arena);
    pl_bf16_rows_free(&r->xa);
    pl_bf16_rows_free(&r->ha);
    pl_bf16_rows_free(&r->za);
    pl_free_aligned(r->qh);
    pl_free_aligned(r->att_tiles);
    for (int i = 0; r->att_rows && i < 2 * r->n_threads; i++) pl_bf16_rows_free(&r->att_rows[i]);
    free(r->att_rows);
    pl_free_aligned(r->pattern);
    free(r->logit_tiles);
    free(r->hooks);
    free(r);
}

static hook_slot *slot(const pl_runner *r, pl_hook_point p, int layer) {
    int nl = r->m->d.n_layer;
    return &r->hooks[(size_t)p * (size_t)(nl + 1) + (size_t)(layer < 0 ? nl : layer)];
}

static void update_any_hook(pl_runner *r) {
    size_t n = (size_t)PL_HOOK_COUNT * (size_t)(r->m->d.n_layer + 1);
    r->any_hook = 0;
    for (size_t i = 0; i < n; i++)
        if (r->hooks[i].fn) r->any_hook = 1;
}

pl_status pl_runner_set_hook(pl_runner *r, pl_hook_point p, int layer, pl_hook_fn fn, void *user) {
    int nl = r->m->d.n_layer;
    if ((int)p < 0 || p >= PL_HOOK_COUNT) return pl_error(PL_ERR_INVALID, "hook: unknown point %d", (int)p);
    int global = (p == PL_HOOK_EMBED || p == PL_HOOK_LN_FINAL);
    if (global) layer = -1;
    else if (layer < -1 || layer >= nl)
        return pl_error(PL_ERR_RANGE, "hook: layer %d out of range [0, %d)", layer, nl);
    if (p == PL_HOOK_PATTERN && fn && !r->pattern) {
        size_t n;
        if (!pl_mul_ok((size_t)r->m->d.n_head * (size_t)r->max_tokens, (size_t)r->max_ctx, &n) ||
            !pl_mul_ok(n, sizeof(float), &n))
            return pl_error(PL_ERR_NOMEM, "hook: pattern buffer size overflow");
        r->pattern = pl_alloc_aligned(n);
        if (!r->pattern) return pl_error(PL_ERR_NOMEM, "hook: cannot allocate %zu bytes for attention patterns", n);
    }
    if (global || layer >= 0) {
        *slot(r, p, layer) = (hook_slot){fn, user};
    } else {
        for (int l = 0; l < nl; l++) *slot(r, p, l) = (hook_slot){fn, user};
    }
    update_any_hook(r);
    return PL_OK;
}

size_t pl_runner_bytes(const pl_runner *r) { return r->arena.cap; }

int pl_runner_hook_count(const pl_runner *r) {
    size_t n = (size_t)PL_HOOK_COUNT * (size_t)(r->m->d.n_layer + 1);
    int c = 0;
    for (size_t i = 0; i < n; i++) c += r->hooks[i].fn != NULL;
    return c;
}

void pl_runner_clear_hooks(pl_runner *r) {
    memset(r->hooks, 0, (size_t)PL_HOOK_COUNT * (size_t)(r->m->d.n_layer + 1) * sizeof *r->hooks);
    r->any_hook = 0;
}

/* Call the hook at (p, layer), if any, once per sequence on its rows of
 * buf (width floats per token). */
static void run_hook(pl_runner *r, pl_hook_point p, int layer, const pl_seq *seqs, int n_seq, float *buf,
                     int64_t width, int ndim, int64_t d1, int64_t d2) {
    if (!r->any_hook) return;
    hook_slot *s = slot(r, p, layer);
    if (!s->fn) return;
    int64_t row = 0;
    for (int i = 0; i < n_seq; i++) {
        pl_hook_info info = {p, layer, i, pl_kv_len(seqs[i].kv), ndim, {seqs[i].n_tokens, d1, d2}};
        if (ndim == 2) info.shape[2] = 0;
        s->fn(&info, buf + row * width, s->user);
        row += seqs[i].n_tokens;
    }
}

/* ---- kernels ------------------------------------------------------------- */

/* out = x / sqrt(mean(x²) + eps) * w   (PyTorch: x * rsqrt(x.pow(2).mean(-1) + eps) * w) */
/* RMSNorm of one row: tensor's kernel (the squares summed in double, as
 * ggml does) */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    pl_f32_rmsnorm(out, x, w, n, eps);
}

/* Below this many floats of work a parallel region costs more than it
 * saves (and spinning threads hurt on a shared machine). */
#define PAR_MIN 32768

static void rmsnorm_rows(float *out, const float *x, const float *w, int64_t T, int n, float eps) {
#pragma omp parallel for schedule(static) if (T * n >= PAR_MIN)
    for (int64_t t = 0; t < T; t++) rmsnorm(out + t * n, x + t * n, w, n, eps);
}

/* gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))) */
static float gelu_tanh(float x) {
    const float c = 0.79788456080286535588f;
    return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + 0.044715f * x * x)));
}

/* ggml's CPU GELU: input rounded to fp16, gelu in f32, output rounded to fp16. */
static float gelu_tanh_fp16(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    float xh = pl_model_f16_to_f32(pl_model_f32_to_f16(x));
    return pl_model_f16_to_f32(pl_model_f32_to_f16(gelu_tanh(xh)));
}

/* the gated activations over n elements: g = gelu(g) * u */
static void geglu(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = gelu_tanh(g[i]) * u[i];
}

static void geglu_fp16(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = gelu_tanh_fp16(g[i]) * u[i];
}


/* Rotate one head vector x [head_dim] at position pos. NORM pairs
 * (2i, 2i+1); NEOX pairs (i, i + n_rot/2). The angle of pair i is
 * pos · base^(-2i/n_rot) / freq_factor[i], built by repeated
 * multiplication as ggml does. */
/* cs[2i], cs[2i+1] = cos, sin of position pos's angle i (i < n_rot/2):
 * computed once per token and forward (runner.rope_cs), shared by every
 * layer and head */
static void rope_table(float *cs, int pos, const pl_arch_desc *d) {
    int half = d->n_rot / 2;
    float theta_scale = powf(d->rope_base, -2.0f / (float)d->n_rot);
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        float th = d->rope_freqs ? theta / d->rope_freqs[i] : theta;
        cs[2 * i] = cosf(th);
        cs[2 * i + 1] = sinf(th);
        theta *= theta_scale;
    }
}

static void rope_head(float *x, const float *cs, const pl_arch_desc *d) {
    pl_f32_rope(x, cs, d->n_rot, d->rope != PL_ROPE_NORM);
}

/* row[0..n_k) holds the dot products of one query (at position pos) with
 * the keys: scale, soft-cap, mask (keys after pos, outside the sliding
 * window) and softmax in place; masked keys get exactly 0. */
/* The exponentials of one query's unmasked scores row[lo..hi] (scaled,
 * soft-capped, max subtracted) in place; returns 1 / their sum. */
static float attn_exp(const pl_arch_desc *d, float *row, int lo, int hi) {
    float *x = row + lo;
    const int n = hi - lo + 1;
    float maxv = -INFINITY;
    if (d->attn_softcap > 0) {
        for (int p = 0; p < n; p++) {
            const float sc = tanhf(x[p] * d->q_scale / d->attn_softcap) * d->attn_softcap;
            x[p] = sc;
            if (sc > maxv) maxv = sc;
        }
    } else {
        maxv = pl_f32_scores(x, n, 0, n - 1, d->q_scale);
    }
    return (float)(1.0 / pl_f32_exp_sum(x, n, maxv));
}

/* the unmasked keys of the query at pos: [lo, hi] */
static void attn_range(const pl_arch_desc *d, int n_k, int pos, int use_swa, int *lo, int *hi) {
    *lo = use_swa ? pos - d->swa_window + 1 : 0;
    *hi = pos < n_k - 1 ? pos : n_k - 1;
    if (*lo < 0) *lo = 0;
}

/* The probabilities of attn_probs rounded to bf16 into dst[0..n_k) (the
 * bits of rounding attn_probs' row), without writing them back in f32. */
static void attn_probs_bf16(const pl_arch_desc *d, float *row, int n_k, int pos, int use_swa, uint16_t *dst) {
    int lo, hi;
    attn_range(d, n_k, pos, use_swa, &lo, &hi);
    memset(dst, 0, (size_t)lo * sizeof *dst);
    if (d->attn_softcap > 0)
        pl_bf16_round_scaled(dst + lo, row + lo, hi - lo + 1, attn_exp(d, row, lo, hi));
    else /* attn_exp's steps and the rounding in one call */
        pl_bf16_softmax(row + lo, hi - lo + 1, d->q_scale, dst + lo);
    memset(dst + hi + 1, 0, (size_t)(n_k - hi - 1) * sizeof *dst);
}

static void attn_probs(const pl_arch_desc *d, float *row, int n_k, int pos, int use_swa) {
    /* the unmasked keys are the range [lo, hi]: the work (and the order of
     * the exponentials' sum) covers only it, whatever n_k is */
    int lo, hi;
    attn_range(d, n_k, pos, use_swa, &lo, &hi);
    pl_f32_scale(row + lo, hi - lo + 1, attn_exp(d, row, lo, hi));
    memset(row, 0, (size_t)lo * sizeof *row);
    memset(row + hi + 1, 0, (size_t)(n_k - hi - 1) * sizeof *row);
}

/* Softmax probabilities of query row (token t, head h) over the n_k keys of
 * its sequence into row[0..n_k); masked keys get 0. The dot products, the
 * exponentials and the value mix run on tensor's f32 kernels (SIMD per
 * level, scalar reference). */
static void attn_row(const pl_runner *r, const kv_seg *segs, int nseg, int layer, const float *q, int pos,
                     int kvh, int use_swa, float *row, int n_k) {
    const pl_arch_desc *d = &r->m->d;
    int hd = d->head_dim;
    size_t kvd = (size_t)d->n_head_kv * (size_t)hd;
    const int lim = n_k < pos + 1 ? n_k : pos + 1; /* keys after pos are masked: no dots for them */
    for (int s = 0; s < nseg; s++) {
        const pl_kv *kv = segs[s].kv;
        const int start = segs[s].start, len = start + segs[s].len < lim ? segs[s].len : lim - start;
        if (len <= 0) continue;
        const size_t off = ((size_t)layer * (size_t)kv->cap + (size_t)(start - kv->prefix_len)) * kvd +
                           (size_t)kvh * (size_t)hd;
        if (kv->k) {
            pl_f32_dots(q, kv->k + off, (int64_t)kvd, len, hd, row + start);
            continue;
        }
        /* bf16 rows widened (exactly) a chunk at a time: each dot is its
         * own row's, so the bits are those of f32 rows holding the values */
        float wide[KV_WIDE];
        for (int p = 0, c; p < len; p += c) {
            c = kv_widen_rows(wide, kv->kb + off, kvd, hd, p, len);
            pl_f32_dots(q, wide, hd, c, hd, row + start + p);
        }
    }
    attn_probs(d, row, n_k, pos, use_swa);
}

/* out[hd] = sum_p row[p] · V[p] over the first n_k positions. */
static void attn_mix(const kv_seg *segs, int nseg, int layer, const pl_arch_desc *d, int kvh, const float *row,
                     int n_k, float *out) {
    int hd = d->head_dim;
    size_t kvd = (size_t)d->n_head_kv * (size_t)hd;
    for (int i = 0; i < hd; i++) out[i] = 0.0f;
    for (int s = 0; s < nseg; s++) {
        const pl_kv *kv = segs[s].kv;
        const int start = segs[s].start, len = start + segs[s].len < n_k ? segs[s].len : n_k - start;
        if (len <= 0) continue;
        const size_t off = ((size_t)layer * (size_t)kv->cap + (size_t)(start - kv->prefix_len)) * kvd +
                           (size_t)kvh * (size_t)hd;
        if (kv->v) {
            pl_f32_wsum(row + start, kv->v + off, (int64_t)kvd, len, hd, out);
            continue;
        }
        /* the weighted sum runs row after row: chunks give the same bits */
        float wide[KV_WIDE];
        for (int p = 0, c; p < len; p += c) {
            c = kv_widen_rows(wide, kv->vb + off, kvd, hd, p, len);
            pl_f32_wsum(row + start + p, wide, hd, c, hd, out);
        }
    }
}

/* ---- forward ------------------------------------------------------------- */

static pl_status check_batch(const pl_runner *r, const pl_seq *seqs, int n_seq, int64_t *T_out) {
    const pl_model *m = r->m;
    int64_t T = 0;
    if (n_seq < 1) return pl_error(PL_ERR_INVALID, "forward: empty batch");
    for (int i = 0; i < n_seq; i++) {
        const pl_seq *s = &seqs[i];
        if (!s->kv || s->n_tokens < 0 || (s->n_tokens > 0 && !s->tokens))
            return pl_error(PL_ERR_INVALID, "forward: sequence %d: missing cache or tokens", i);
        if (s->kv->m != m) return pl_error(PL_ERR_INVALID, "forward: sequence %d: cache of another model", i);
        if (s->n_tokens == 0) return pl_error(PL_ERR_INVALID, "forward: sequence %d has no tokens", i);
        if (pl_kv_forks(s->kv))
            return pl_error(PL_ERR_INVALID, "forward: sequence %d: its cache is a shared prefix (%d forks) and is frozen",
                            i, pl_kv_forks(s->kv));
        for (int j = 0; j < i; j++)
            if (seqs[j].kv == s->kv) return pl_error(PL_ERR_INVALID, "forward: sequences %d and %d share a cache", j, i);
        for (int t = 0; t < s->n_tokens; t++)
            if (s->tokens[t] < 0 || s->tokens[t] >= m->d.n_vocab)
                return pl_error(PL_ERR_RANGE, "forward: sequence %d, token %d: id %d out of range [0, %d)", i, t,
                                (int)s->tokens[t], m->d.n_vocab);
        if (s->kv->n + s->n_tokens > s->kv->cap)
            return pl_error(PL_ERR_RANGE, "forward: sequence %d: %d + %d tokens exceed the cache capacity %d", i,
                            pl_kv_len(s->kv), s->n_tokens, s->kv->prefix_len + s->kv->cap);
        if (pl_kv_len(s->kv) + s->n_tokens > r->max_ctx)
            return pl_error(PL_ERR_RANGE, "forward: sequence %d: %d positions exceed the runner's context %d", i,
                            pl_kv_len(s->kv) + s->n_tokens, r->max_ctx);
        T += s->n_tokens;
    }
    if (T > r->max_tokens)
        return pl_error(PL_ERR_RANGE, "forward: batch of %lld tokens exceeds the runner's %d", (long long)T,
                        r->max_tokens);
    *T_out = T;
    return PL_OK;
}

static void attention(pl_runner *r, const pl_seq *seqs, int n_seq, int layer, int64_t T) {
    const pl_model *m = r->m;
    const pl_arch_desc *d = &m->d;
    int H = d->n_head, hd = d->head_dim, group = d->n_head / d->n_head_kv;
    size_t qd = (size_t)H * (size_t)hd;
    int use_swa = d->swa_window > 0 && d->swa_layer && d->swa_layer[layer];
    hook_slot *ph = r->any_hook ? slot(r, PL_HOOK_PATTERN, layer) : NULL;
    if (ph && ph->fn) {
        /* Materialize [H, n_tok, n_k] per sequence, let the hook see it, then mix. */
        int64_t row0 = 0;
        for (int si = 0; si < n_seq; si++) {
            const pl_seq *s = &seqs[si];
            kv_seg segs[MAX_PREFIX_DEPTH + 1];
            int n_k = pl_kv_len(s->kv) + s->n_tokens; /* caches already hold the new tokens */
            int nseg = kv_segments(s->kv, n_k, segs);
            int pos0 = n_k - s->n_tokens, nt = s->n_tokens;
            int64_t work = (int64_t)H * nt * n_k * hd;
#pragma omp parallel for schedule(static) if (work >= PAR_MIN)
            for (int64_t it = 0; it < (int64_t)H * nt; it++) {
                int h = (int)(it / nt), i = (int)(it % nt);
                float *row = r->pattern + ((size_t)h * (size_t)nt + (size_t)i) * (size_t)n_k;
                attn_row(r, segs, nseg, layer, r->q + (size_t)(row0 + i) * qd + (size_t)h * (size_t)hd, pos0 + i,
                         h / group, use_swa, row, n_k);
            }
            pl_hook_info info = {PL_HOOK_PATTERN, layer, si, pos0, 3, {H, nt, n_k}};
            ph->fn(&info, r->pattern, ph->user);
#pragma omp parallel for schedule(static) if (work >= PAR_MIN)
            for (int64_t it = 0; it < (int64_t)H * nt; it++) {
                int h = (int)(it / nt), i = (int)(it % nt);
                const float *row = r->pattern + ((size_t)h * (size_t)nt + (size_t)i) * (size_t)n_k;
                attn_mix(segs, nseg, layer, d, h / group, row, pos0 + i + 1,
                         r->z + (size_t)(row0 + i) * qd + (size_t)h * (size_t)hd);
            }
            row0 += nt;
        }
        return;
    }
    /* Plain path: one score row per thread, parallel over (token, head). */
    int64_t work = 0;
    for (int64_t t = 0; t < T; t++) work += (int64_t)(r->tok_pos[t] + 1) * H * hd;
#pragma omp parallel for schedule(static) num_threads(team(r)) if (work >= PAR_MIN)
    for (int64_t it = 0; it < T * H; it++) {
        int64_t t = it / H;
        int h = (int)(it % H);
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num(); /* < r->n_threads by the num_threads clause */
#endif
        const pl_seq *s = &seqs[r->tok_seq[t]];
        kv_seg segs[MAX_PREFIX_DEPTH + 1];
        int pos = r->tok_pos[t];
        int n_k = pos + 1;
        int nseg = kv_segments(s->kv, pl_kv_len(s->kv) + s->n_tokens, segs);
        float *row = r->att + (size_t)tid * (size_t)r->max_ctx;
        attn_row(r, segs, nseg, layer, r->q + (size_t)t * qd + (size_t)h * (size_t)hd, pos, h / group, use_swa, row,
                 n_k);
        attn_mix(segs, nseg, layer, d, h / group, row, n_k, r->z + (size_t)t * qd + (size_t)h * (size_t)hd);
    }
}

/* Attention on bf16 tiles (opts.bf16_tiles on a CPU with the tiles; not
 * when a pattern hook wants the probabilities materialized). Work items are
 * (sequence, KV head, group of up to ATT_TG new tokens): the keys and values
 * up to the group's last token are gathered and converted to tiles once,
 * then per chunk of ATT_TC tokens the scores of the chunk's queries (every
 * head of the group) are one product Q·Kᵀ and the mix one product P·V, with
 * q, k, the probabilities and v rounded to bf16 and f32 sums; scaling,
 * masks and softmax stay in f32 (attn_probs). Keys past a query's own
 * position get probability exactly 0 and add exact zeros, so a row's bits
 * depend neither on the grouping nor on the batch (decode and prefill
 * agree). Items run in parallel, each product on its thread. */
enum { ATT_TC = 32, ATT_TG = 256 };

typedef struct {
    int seq, kvh, t0;
} att_item;

static pl_status attention_tiles(pl_runner *r, const pl_seq *seqs, int n_seq, int layer) {
    const pl_arch_desc *d = &r->m->d;
    const int H = d->n_head, Hkv = d->n_head_kv, hd = d->head_dim, group = H / Hkv;
    const size_t qd = (size_t)H * (size_t)hd, kvd = (size_t)Hkv * (size_t)hd;
    const int use_swa = d->swa_window > 0 && d->swa_layer && d->swa_layer[layer];
    const int rows_max = ATT_TC * group;
    const size_t tiles_b = pl_bf16_tiles_bytes(r->max_ctx, hd), cv_bytes = (4 * ((size_t)hd + 32) + 63) / 64 * 64;
    /* every part of a thread's scratch starts on a 64-byte line (a tile
     * row split over two lines costs the products twice the loads) */
    const size_t ptr_bytes = (2 * (size_t)r->max_ctx * sizeof(float *) + 63) / 64 * 64;
    if (!r->att_tiles) {
        /* per thread: pointers to the keys and values of one head
         * [max_ctx] each, their tiles, a conversion row, the mix [rows, hd],
         * scores [rows, max_ctx]; and two bf16 row buffers (queries,
         * probabilities) */
        const size_t per = ptr_bytes + (tiles_b + 64) * 2 + cv_bytes + fsz((size_t)rows_max, (size_t)hd) +
                           fsz((size_t)rows_max, ((size_t)r->max_ctx + 15) / 16 * 16);
        r->att_tiles_per = (per + 63) / 64 * 64;
        r->att_tiles = pl_alloc_aligned(r->att_tiles_per * (size_t)r->n_threads);
        r->att_rows = calloc(2 * (size_t)r->n_threads, sizeof *r->att_rows);
        if (!r->att_tiles || !r->att_rows) {
            pl_free_aligned(r->att_tiles);
            free(r->att_rows);
            r->att_tiles = NULL;
            r->att_rows = NULL;
            return pl_error(PL_ERR_NOMEM, "forward: cannot allocate %zu bytes for attention",
                            r->att_tiles_per * (size_t)r->n_threads);
        }
    }
    const size_t zld = up32(qd); /* the row stride of za */
    int64_t n_items = 0;
    for (int si = 0; si < n_seq; si++) n_items += (int64_t)Hkv * ((seqs[si].n_tokens + ATT_TG - 1) / ATT_TG);
    att_item *items = malloc((size_t)n_items * sizeof *items);
    int64_t *row0 = malloc((size_t)n_seq * sizeof *row0);
    if (!items || !row0) {
        free(items);
        free(row0);
        return pl_error(PL_ERR_NOMEM, "forward: out of memory (attention of %d sequences)", n_seq);
    }
    int64_t ni = 0, t = 0;
    for (int si = 0; si < n_seq; si++) {
        row0[si] = t;
        t += seqs[si].n_tokens;
        for (int t0 = 0; t0 < seqs[si].n_tokens; t0 += ATT_TG)
            for (int g = 0; g < Hkv; g++) items[ni++] = (att_item){si, g, t0};
    }
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(team(r)) if (n_items > 1)
    for (int64_t it = 0; it < n_items; it++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        char *mine = (char *)r->att_tiles + r->att_tiles_per * (size_t)tid;
        const uint16_t **Kr = (const uint16_t **)(void *)mine, **Vr = Kr + r->max_ctx;
        uint16_t *Kt = (uint16_t *)(void *)(mine + ptr_bytes);
        uint16_t *Vt = (uint16_t *)(void *)((char *)Kt + (tiles_b + 63) / 64 * 64);
        uint16_t *cv = (uint16_t *)(void *)((char *)Vt + (tiles_b + 63) / 64 * 64);
        float *Z = (float *)(void *)((char *)cv + cv_bytes), *S = Z + (size_t)rows_max * (size_t)hd;
        pl_bf16_rows *qa = &r->att_rows[2 * tid], *pa = qa + 1;
        const att_item *a = &items[it];
        const pl_seq *s = &seqs[a->seq];
        const int nt = s->n_tokens, n_all = pl_kv_len(s->kv) + nt, pos0 = n_all - nt;
        const int g1 = a->t0 + ATT_TG < nt ? a->t0 + ATT_TG : nt;
        const int n_k = pos0 + g1; /* keys up to the group's last token */
        kv_seg segs[MAX_PREFIX_DEPTH + 1];
        const int nseg = kv_segments(s->kv, n_all, segs);
        /* the keys and values of this head where the caches hold them (bf16:
         * the tiles' attention runs only where caches are bf16), copied
         * straight into tiles */
        for (int sg = 0; sg < nseg; sg++) {
            const pl_kv *kv = segs[sg].kv;
            const int start = segs[sg].start, len = start + segs[sg].len < n_k ? segs[sg].len : n_k - start;
            const size_t base = ((size_t)layer * (size_t)kv->cap) * kvd + (size_t)a->kvh * (size_t)hd;
            for (int p = 0; p < len; p++) {
                const size_t off = base + (size_t)(start + p - kv->prefix_len) * kvd;
                Kr[start + p] = kv->kb + off;
                Vr[start + p] = kv->vb + off;
            }
        }
        if (pl_bf16_tiles_pack_rowptr_bf16(Kr, n_k, hd, 0, Kt, cv) || pl_bf16_tiles_pack_rowptr_bf16(Vr, n_k, hd, 1, Vt, cv)) {
            fail = 1;
            continue;
        }
        for (int t0 = a->t0; t0 < g1; t0 += ATT_TC) {
            const int tc = t0 + ATT_TC < g1 ? ATT_TC : g1 - t0, rows = tc * group;
            /* the chunk's queries see keys up to its last token only: the
             * products run over those (the rest would be probability 0) */
            const int n_kc = pos0 + t0 + tc;
            /* query row j: token t0 + j / group, head kvh * group + j % group;
             * a token's group of heads: group * hd values */
            const int64_t gw = (int64_t)group * hd, tq0 = row0[a->seq] + t0;
            const uint16_t *qrows;
            if (r->q_rows) { /* rounded by the q, k, v product's epilogue, the rows one after another */
                qrows = r->qh + (size_t)a->kvh * r->qh_ld + (size_t)tq0 * (size_t)gw;
            } else { /* rounded straight into the product's bf16 rows */
                if (pl_bf16_rows_alloc(qa, rows, hd)) {
                    fail = 1;
                    break;
                }
                const float *qsrc = r->q + (size_t)tq0 * qd + (size_t)(a->kvh * group) * (size_t)hd;
                if ((size_t)hd == up32((size_t)hd)) /* one row on both sides */
                    pl_bf16_round_rows(qa->data, gw, qsrc, (int64_t)qd, tc, gw);
                else
                    for (int j = 0; j < tc; j++)
                        pl_bf16_round_rows(qa->data + (size_t)j * (size_t)group * up32((size_t)hd),
                                           (int64_t)up32((size_t)hd), qsrc + (size_t)j * qd, hd, group, hd);
                qrows = qa->data;
            }
            const size_t sld = ((size_t)n_kc + 15) / 16 * 16; /* S's rows on 64-byte lines */
            if (pl_matmul_bf16_tiles_packed_ld(Kt, n_kc, hd, 0, qrows, rows, S, (int64_t)sld, 0)) {
                fail = 1;
                break;
            }
            /* the probabilities straight into P's bf16 rows */
            if (pl_bf16_rows_alloc(pa, rows, n_kc)) {
                fail = 1;
                break;
            }
            const size_t pld = up32((size_t)n_kc);
            for (int j = 0; j < rows; j++)
                attn_probs_bf16(d, S + (size_t)j * sld, n_kc, pos0 + t0 + j / group, use_swa,
                                pa->data + (size_t)j * pld);
            if (pl_matmul_bf16_tiles_packed_part(Vt, n_k, hd, 1, n_kc, pa->data, rows, Z, 0)) {
                fail = 1;
                break;
            }
            /* a token's group of heads: group * hd values on both sides */
            const size_t col = (size_t)(a->kvh * group) * (size_t)hd;
            if (r->z_rows)
                pl_bf16_round_rows(r->za.data + (size_t)tq0 * zld + col, (int64_t)zld, Z, gw, tc, gw);
            else
                for (int j = 0; j < tc; j++)
                    memcpy(r->z + (size_t)(tq0 + j) * qd + col, Z + (size_t)j * (size_t)gw, (size_t)gw * sizeof(float));
        }
    }
    free(items);
    free(row0);
    return fail ? pl_error(PL_ERR_NOMEM, "forward: attention products failed (out of memory)") : PL_OK;
}

/* The caches now hold the new tokens (their keys/values were written
 * layer by layer; only the lengths change here, so a failed forward leaves
 * every cache as it was). */
static void commit(const pl_seq *seqs, int n_seq) {
    for (int i = 0; i < n_seq; i++) seqs[i].kv->n += seqs[i].n_tokens;
}

/* r->qh for T tokens (grown as needed; the slack zeroed) */
static pl_status q_rows_reserve(pl_runner *r, int64_t T) {
    const pl_arch_desc *d = &r->m->d;
    const size_t hd = (size_t)d->head_dim, ld = (size_t)T * (size_t)(d->n_head / d->n_head_kv) * hd + 32 * hd;
    const size_t need = ld * (size_t)d->n_head_kv;
    if (need > r->qh_cap) {
        uint16_t *p = pl_alloc_aligned_raw(need * sizeof *p);
        if (!p) return pl_error(PL_ERR_NOMEM, "forward: cannot allocate %zu bytes of query rows", need * sizeof *p);
        pl_free_aligned(r->qh);
        r->qh = p;
        r->qh_cap = need;
    }
    r->qh_ld = ld;
    for (int g = 0; g < d->n_head_kv; g++) memset(r->qh + (size_t)g * ld + ld - 32 * hd, 0, 32 * hd * sizeof *r->qh);
    return PL_OK;
}

/* The epilogue of a layer's stacked q | k | v product (L->qkv_tiles) on
 * each 32 x 32 block while it is in L1: RoPE (NORM pairs: a block's
 * columns rotate on their own), then q rounded into the attention's rows
 * (r->qh) and k, v into the sequences' bf16 caches. The bits of the three
 * products, the RoPE pass and the roundings done apart, without the f32
 * q, k, v ever written (a product storing f32 rows to memory not in cache
 * took 1.8 times as long as one with the gated unit's bf16 epilogue:
 * docs/kernels.md). */
typedef struct {
    const pl_runner *r;
    const pl_seq *seqs;
    int layer;
} qkv_ctx;

static void qkv_block(void *vctx, const float *blk, int64_t m0, int64_t n0, int64_t mr, int64_t nr) {
    const qkv_ctx *c = vctx;
    const pl_runner *r = c->r;
    const pl_arch_desc *d = &r->m->d;
    const int64_t hd = d->head_dim, group = d->n_head / d->n_head_kv;
    const int64_t qd = (int64_t)d->n_head * hd, kvd = (int64_t)d->n_head_kv * hd;
    const int part = n0 < qd ? 0 : n0 < qd + kvd ? 1 : 2; /* q, k or v */
    const int64_t c0 = part == 0 ? n0 : part == 1 ? n0 - qd : n0 - qd - kvd, d0 = c0 % hd;
    const int64_t rot = part < 2 && d0 < d->n_rot ? (d->n_rot - d0 < nr ? d->n_rot - d0 : nr) : 0;
    uint16_t *dst[32];
    for (int64_t i = 0; i < mr; i++) {
        const int64_t t = m0 + i;
        if (part == 0) {
            const int64_t h = c0 / hd;
            dst[i] = r->qh + (size_t)(h / group) * r->qh_ld + (size_t)((t * group + h % group) * hd + d0);
        } else {
            pl_kv *kv = c->seqs[r->tok_seq[t]].kv;
            const size_t off = ((size_t)c->layer * (size_t)kv->cap + (size_t)(r->tok_pos[t] - kv->prefix_len)) * (size_t)kvd +
                               (size_t)c0;
            dst[i] = (part == 1 ? kv->kb : kv->vb) + off;
        }
    }
    pl_bf16_rope_round_rows(blk, 32, mr, nr, rot, r->rope_cs + (size_t)m0 * (size_t)d->n_rot + (size_t)d0, d->n_rot, dst);
}

static pl_status forward_run(pl_runner *r, const pl_seq *seqs, int n_seq, pl_logits_mode mode, float *logits) {
    const pl_model *m = r->m;
    const pl_arch_desc *d = &m->d;
    int64_t T;
    pl_status st = check_batch(r, seqs, n_seq, &T);
    if (st) return st;
    if (m->max_lora_rank > r->lora_rank)
        return pl_error(PL_ERR_INVALID, "forward: an adapter was attached after this runner was made; make a new runner");
    if (mode != PL_LOGITS_NONE && !logits) return pl_error(PL_ERR_INVALID, "forward: no logits buffer");
    const int D = d->n_embd, H = d->n_head, Hkv = d->n_head_kv, hd = d->head_dim, F = d->n_ff;
    const size_t qd = (size_t)H * (size_t)hd, kvd = (size_t)Hkv * (size_t)hd;
    /* LOGITS_LAST without hooks: the last layer past attention runs only the
     * sequences' last rows */
    const int last_only = mode == PL_LOGITS_LAST && !r->any_hook;
    int gathered = 0;
#define MM(w, x, T_, y) do { if ((st = pl_mm(m, w, x, NULL, T_, y, r->mm_scratch, r->mm_bytes, r->lora_tmp))) return st; } while (0)
    /* products of one input x [T, n] on bf16 tiles: x rounded to bf16 once
     * (ROWS), then MMR for each weight reading it */
    const pl_bf16_rows *xa = NULL;
#define ROWS(x, n, tiled) do { xa = NULL; if (tiled) { if ((st = pl_bf16_rows_set(&r->xa, x, T, n))) return st; xa = &r->xa; } } while (0)
/* ROWS of the normed stream rmsnorm(x)·w without its f32 copy (xb is then
 * not written: every product reading it runs on tiles) */
#define NROWS(w) do { if ((st = pl_bf16_rows_rmsnorm(&r->xa, r->x, w, T, D, d->norm_eps))) return st; xa = &r->xa; } while (0)
#define MMA(w, x, y) do { if ((st = pl_mm_acc(m, w, x, xa, T, y, r->mm_scratch, r->mm_bytes, r->lora_tmp))) return st; } while (0)
/* x += the product of w (post-normed, hooked): on the tiles the residual
 * stream takes it in the product when nothing reads it apart */
#define RESIDUAL(w, in, post_norm, hook) do { \
        if ((w)->tiles && !d->post_norms && !(r->any_hook && slot(r, hook, l)->fn)) { \
            MMA(w, in, r->x); \
        } else { \
            MMR(w, in, r->xb2); \
            if (d->post_norms) rmsnorm_rows(r->xb2, r->xb2, post_norm, T, D, d->norm_eps); \
            run_hook(r, hook, l, seqs, n_seq, r->xb2, D, 2, D, 0); \
            pl_f32_add(r->x, r->xb2, T * D); \
        } } while (0)
#define MMR(w, x, y) do { if ((st = pl_mm(m, w, x, xa, T, y, r->mm_scratch, r->mm_bytes, r->lora_tmp))) return st; } while (0)

    /* token -> (sequence, absolute position) */
    for (int i = 0, t = 0; i < n_seq; i++)
        for (int j = 0; j < seqs[i].n_tokens; j++, t++) {
            r->tok_seq[t] = i;
            r->tok_pos[t] = pl_kv_len(seqs[i].kv) + j;
        }

    /* x = embed(tokens) · embd_scale */
#pragma omp parallel for schedule(static) if (T * D >= PAR_MIN)
    for (int64_t t = 0; t < T; t++) {
        const pl_seq *s = &seqs[r->tok_seq[t]];
        float *xr = r->x + (size_t)t * (size_t)D;
        pl_mat_row_f32(&m->tok_embd, s->tokens[r->tok_pos[t] - pl_kv_len(s->kv)], xr);
        if (d->embd_scale != 1.0f)
            for (int e = 0; e < D; e++) xr[e] *= d->embd_scale;
    }
    run_hook(r, PL_HOOK_EMBED, -1, seqs, n_seq, r->x, D, 2, D, 0);
#pragma omp parallel for schedule(static) if (T * (int64_t)d->n_rot >= PAR_MIN)
    for (int64_t t = 0; t < T; t++) rope_table(r->rope_cs + (size_t)t * (size_t)d->n_rot, r->tok_pos[t], d);

    for (int l = 0; l < d->n_layer; l++) {
        const pl_layer *L = &m->layers[l];
        run_hook(r, PL_HOOK_RESID_PRE, l, seqs, n_seq, r->x, D, 2, D, 0);

        /* attention: q, k, v projections of the normed stream */
        if (L->wq.tiles && L->wk.tiles && L->wv.tiles) {
            NROWS(L->attn_norm); /* only the bf16 rows are read */
        } else {
            rmsnorm_rows(r->xb, r->x, L->attn_norm, T, D, d->norm_eps);
            ROWS(r->xb, D, L->wq.tiles || L->wk.tiles || L->wv.tiles);
        }
        /* the tiles' attention this layer (not when a pattern hook wants the
         * probabilities materialized) */
        const int att_tiles = kv_bf16(m) && !(r->any_hook && slot(r, PL_HOOK_PATTERN, l)->fn);
        /* q, k and v as one product whose epilogue rotates and rounds them
         * into the attention's rows and the caches, where no adapter and no
         * hook takes them apart */
        r->q_rows = att_tiles && xa && L->qkv_tiles && hd % 32 == 0 && d->rope == PL_ROPE_NORM && !L->wq.lora &&
                    !L->wk.lora && !L->wv.lora &&
                    !(r->any_hook && (slot(r, PL_HOOK_Q, l)->fn || slot(r, PL_HOOK_K, l)->fn || slot(r, PL_HOOK_V, l)->fn));
        if (r->q_rows) {
            if ((st = q_rows_reserve(r, T))) return st;
            qkv_ctx qc = {r, seqs, l};
            if ((st = pl_matmul_bf16_tiles_rows_blocks(L->qkv_tiles, (int64_t)(qd + 2 * kvd), D, xa, qkv_block, &qc)))
                return pl_error_wrap(st, "%s", L->wq.name ? L->wq.name : "q/k/v");
        } else {
            MMR(&L->wq, r->xb, r->q);
            MMR(&L->wk, r->xb, r->k);
            MMR(&L->wv, r->xb, r->v);
            run_hook(r, PL_HOOK_Q, l, seqs, n_seq, r->q, (int64_t)qd, 3, H, hd);
            run_hook(r, PL_HOOK_K, l, seqs, n_seq, r->k, (int64_t)kvd, 3, Hkv, hd);
            run_hook(r, PL_HOOK_V, l, seqs, n_seq, r->v, (int64_t)kvd, 3, Hkv, hd);

            /* RoPE, then append k, v to each sequence's cache */
#pragma omp parallel for schedule(static) if (T * (int64_t)qd >= PAR_MIN)
            for (int64_t t = 0; t < T; t++) {
                int pos = r->tok_pos[t];
                const float *cs = r->rope_cs + (size_t)t * (size_t)d->n_rot;
                for (int h = 0; h < H; h++) rope_head(r->q + (size_t)t * qd + (size_t)h * (size_t)hd, cs, d);
                for (int h = 0; h < Hkv; h++) rope_head(r->k + (size_t)t * kvd + (size_t)h * (size_t)hd, cs, d);
                pl_kv *kv = seqs[r->tok_seq[t]].kv;
                size_t own = (size_t)(pos - kv->prefix_len);
                size_t off = ((size_t)l * (size_t)kv->cap + own) * kvd;
                if (kv->k) {
                    memcpy(kv->k + off, r->k + (size_t)t * kvd, kvd * sizeof(float));
                    memcpy(kv->v + off, r->v + (size_t)t * kvd, kvd * sizeof(float));
                } else { /* the rounding the tiles' packing would do */
                    pl_bf16_round(kv->kb + off, r->k + (size_t)t * kvd, (int64_t)kvd);
                    pl_bf16_round(kv->vb + off, r->v + (size_t)t * kvd, (int64_t)kvd);
                }
            }
        }

        r->z_rows = 0;
        if (att_tiles) {
            /* with the o product on tiles and no hook reading z, the heads'
             * outputs go straight into its bf16 rows */
            r->z_rows = L->wo.tiles && !(r->any_hook && slot(r, PL_HOOK_Z, l)->fn);
            if (r->z_rows && (st = pl_bf16_rows_alloc(&r->za, T, (int64_t)qd))) return st;
            if ((st = attention_tiles(r, seqs, n_seq, l))) return st;
        } else {
            attention(r, seqs, n_seq, l, T);
        }
        if (last_only && l == d->n_layer - 1 && T > n_seq) {
            /* only each sequence's last row goes on: the rest of the last
             * layer and the output work on those rows, gathered to the front
             * (a row's result does not depend on the other rows) */
            int64_t t = 0;
            const size_t zld = up32(qd);
            for (int i = 0; i < n_seq; i++) {
                t += seqs[i].n_tokens;
                if (r->z_rows)
                    memmove(r->za.data + (size_t)i * zld, r->za.data + (size_t)(t - 1) * zld, zld * sizeof(uint16_t));
                else
                    memmove(r->z + (size_t)i * qd, r->z + (size_t)(t - 1) * qd, qd * sizeof(float));
                memmove(r->x + (size_t)i * (size_t)D, r->x + (size_t)(t - 1) * (size_t)D, (size_t)D * sizeof(float));
            }
            T = n_seq;
            if (r->z_rows) {
                /* the rows past the last sequence are padding again */
                const size_t Tp = up32((size_t)T);
                memset(r->za.data + (size_t)T * zld, 0, (Tp - (size_t)T) * zld * sizeof(uint16_t));
                r->za.n_tok = T;
            }
            gathered = 1;
        }
        run_hook(r, PL_HOOK_Z, l, seqs, n_seq, r->z, (int64_t)qd, 3, H, hd);
        if (r->z_rows)
            xa = &r->za;
        else
            ROWS(r->z, (int64_t)qd, L->wo.tiles && L->wo.lora);
        RESIDUAL(&L->wo, r->z, L->post_attn_norm, PL_HOOK_ATTN_OUT);
        run_hook(r, PL_HOOK_RESID_MID, l, seqs, n_seq, r->x, D, 2, D, 0);

        /* feed-forward: act(gate) * up, then down */
        if (L->gu_tiles || (L->w_gate.tiles && L->w_up.tiles)) {
            NROWS(L->ffn_norm);
        } else {
            rmsnorm_rows(r->xb, r->x, L->ffn_norm, T, D, d->norm_eps);
            ROWS(r->xb, D, L->w_gate.tiles || L->w_up.tiles);
        }
        pl_glu_act_fn act = d->act == PL_ACT_SILU ? pl_f32_silu_mul : d->gelu_fp16 ? geglu_fp16 : geglu;
        int fused = 0;
        if (L->gu_tiles) {
            /* gate and up as one product on the tiles; with no adapter on
             * them and nothing reading the activations, act(gate)·up comes
             * out as the down product's bf16 rows */
            const int hooked = r->any_hook && slot(r, PL_HOOK_MLP_POST, l)->fn;
            if ((st = pl_mm_glu(m, L, xa, hooked || !L->w_down.tiles ? NULL : act, &r->ha, r->hb, r->hb2,
                                r->mm_scratch, r->mm_bytes, r->lora_tmp, &fused)))
                return st;
        } else {
            MMR(&L->w_gate, r->xb, r->hb);
            MMR(&L->w_up, r->xb, r->hb2);
        }
        if (fused) {
            xa = &r->ha;
        } else {
            /* per token row (an element's bits do not depend on the batch) */
#pragma omp parallel for schedule(static) if (T * F >= PAR_MIN)
            for (int64_t t = 0; t < T; t++) act(r->hb + t * F, r->hb2 + t * F, F);
            run_hook(r, PL_HOOK_MLP_POST, l, seqs, n_seq, r->hb, F, 2, F, 0);
            ROWS(r->hb, F, L->w_down.tiles && L->w_down.lora);
        }
        RESIDUAL(&L->w_down, r->hb, L->post_ffn_norm, PL_HOOK_MLP_OUT);
        run_hook(r, PL_HOOK_RESID_POST, l, seqs, n_seq, r->x, D, 2, D, 0);
    }

    rmsnorm_rows(r->xb, r->x, m->out_norm, T, D, d->norm_eps);
    run_hook(r, PL_HOOK_LN_FINAL, -1, seqs, n_seq, r->xb, D, 2, D, 0);
    if (mode == PL_LOGITS_NONE) {
        commit(seqs, n_seq);
        return PL_OK;
    }

    int64_t rows = T;
    const float *src = r->xb;
    if (mode == PL_LOGITS_LAST && gathered) {
        rows = n_seq; /* the rows are each sequence's last already */
    } else if (mode == PL_LOGITS_LAST) {
        /* gather each sequence's last row into the front of xb2 */
        int64_t t = 0;
        for (int i = 0; i < n_seq; i++) {
            t += seqs[i].n_tokens;
            memmove(r->xb2 + (size_t)i * (size_t)D, r->xb + (size_t)(t - 1) * (size_t)D, (size_t)D * sizeof(float));
        }
        rows = n_seq;
        src = r->xb2;
    }
    int64_t n_col = d->n_vocab; /* logits per row */
    if (mode == PL_LOGITS_LAST && r->n_logit_ids && r->logit_tiles) {
        /* only the ids' columns, on their tiles */
        n_col = r->n_logit_ids;
        if ((st = pl_matmul_bf16_tiles(r->logit_tiles, n_col, D, 0, src, rows, logits, 0))) return st;
    } else if (mode == PL_LOGITS_LAST && r->n_logit_ids) {
        /* full rows, then the ids' entries */
        float *full = malloc((size_t)rows * (size_t)d->n_vocab * sizeof *full);
        if (!full) return pl_error(PL_ERR_NOMEM, "forward: out of memory (%lld logit rows)", (long long)rows);
        st = pl_mm(m, &m->output, src, NULL, rows, full, r->mm_scratch, r->mm_bytes, r->lora_tmp);
        n_col = r->n_logit_ids;
        for (int64_t i = 0; !st && i < rows; i++)
            for (int64_t j = 0; j < n_col; j++) logits[i * n_col + j] = full[i * (int64_t)d->n_vocab + r->logit_ids[j]];
        free(full);
        if (st) return st;
    } else {
        MM(&m->output, src, rows, logits);
    }
#undef MM
#undef MMR
#undef MMA
#undef RESIDUAL
#undef ROWS
#undef NROWS
    if (d->final_softcap > 0) {
        int64_t n = rows * n_col;
        float cap = d->final_softcap;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) logits[i] = tanhf(logits[i] / cap) * cap;
    }
    /* any non-finite logit (checked in parallel), then the first one */
    const int64_t n_logits = rows * n_col;
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n_logits >= 8 * PAR_MIN)
    for (int64_t i = 0; i < n_logits; i++) bad |= !isfinite(logits[i]);
    for (int64_t i = 0; bad && i < n_logits; i++)
        if (!isfinite(logits[i]))
            return pl_error(PL_ERR_NUMERIC, "forward: non-finite logit at row %lld, token %lld",
                            (long long)(i / n_col),
                            (long long)(n_col == d->n_vocab ? i % n_col : r->logit_ids[i % n_col]));
    commit(seqs, n_seq);
    return PL_OK;
}

/* ---- sharing the cores ------------------------------------------------------
 * OpenMP's idle threads spin at each barrier. When another process keeps a
 * core busy, a team member waits for a core at every barrier while its
 * partner spins away the time slice: bench/eval with 2 threads beside one
 * busy process took 17.6 s against 4.5 s on one thread. So each forward of
 * SHARE_MIN_TOKENS or more measures the calling thread's run delay (time
 * runnable but not running, /proc/thread-self/schedstat): over a sixth of
 * the wall time, the following forwards run on one thread. The full team
 * comes back when /proc/loadavg shows room for it on three forwards in a
 * row, or on a probe every SHARE_PROBE forwards (where that file counts a
 * whole host's tasks). Results do not depend on the thread count (tested
 * bit for bit), so only the speed changes. PL_SHARE=0 turns it off. */
enum { SHARE_MIN_TOKENS = 64, SHARE_PROBE = 32 };

pl_status pl_runner_set_logit_ids(pl_runner *r, const int32_t *ids, int n) {
    const pl_model *m = r->m;
    const int64_t V = m->d.n_vocab, D = m->d.n_embd;
    if (n < 0 || n > 64 || (n > 0 && !ids))
        return pl_error(PL_ERR_INVALID, "runner: %d logit ids (1 to 64, or 0 to clear)", n);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return pl_error(PL_ERR_RANGE, "runner: logit id %d outside the vocabulary of %lld", ids[i], (long long)V);
    free(r->logit_tiles);
    r->logit_tiles = NULL;
    r->n_logit_ids = 0;
    if (n == 0) return PL_OK;
    if (m->output.tiles) {
        /* column c of panel p (the pairs of each tile row) for each id, into
         * column i of a small tile matrix: the same bf16 values */
        const int64_t kt = (D + 31) / 32, np = ((int64_t)n + 31) / 32 * 2;
        r->logit_tiles = pl_alloc_aligned((size_t)(np * kt) * 512 * sizeof(uint16_t));
        if (!r->logit_tiles) return pl_error(PL_ERR_NOMEM, "runner: out of memory (logit tiles)");
        for (int i = 0; i < n; i++) {
            const uint32_t *src = (const uint32_t *)(const void *)(m->output.tiles + (size_t)(ids[i] / 16) * kt * 512);
            uint32_t *dst = (uint32_t *)(void *)(r->logit_tiles + (size_t)(i / 16) * kt * 512);
            for (int64_t t = 0; t < kt; t++)
                for (int row = 0; row < 16; row++)
                    dst[t * 256 + row * 16 + i % 16] = src[t * 256 + row * 16 + ids[i] % 16];
        }
    }
    memcpy(r->logit_ids, ids, (size_t)n * sizeof *ids);
    r->n_logit_ids = n;
    return PL_OK;
}

static int read_run_delay(double *wall, double *delay) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *wall = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f) return 0;
    unsigned long long run, wait;
    const int ok = fscanf(f, "%llu %llu", &run, &wait) == 2;
    fclose(f);
    *delay = 1e-9 * (double)wait;
    return ok;
}

/* runnable tasks besides this one, from /proc/loadavg ("a b c R/T pid"); -1 unknown */
static int others_running(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    double a, b, c;
    int run = 0, total = 0;
    const int ok = fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &run, &total) == 5;
    fclose(f);
    return ok ? run - 1 : -1;
}

static int share_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("PL_SHARE");
        on = !(e && strcmp(e, "0") == 0);
    }
    return on;
}

pl_status pl_forward(pl_runner *r, const pl_seq *seqs, int n_seq, pl_logits_mode mode, float *logits) {
    const int full = pl_num_threads();
    int64_t tokens = 0;
    for (int i = 0; seqs && i < n_seq; i++) tokens += seqs[i].n_tokens;
    if (full <= 1 || !share_enabled()) return forward_run(r, seqs, n_seq, mode, logits);
    const int probe = r->share_one && ++r->share_count >= SHARE_PROBE;
    const int one = r->share_one && !probe;
    if (one) pl_set_num_threads(1);
    double w0 = 0, d0 = 0, w1, d1;
    const int measure = tokens >= SHARE_MIN_TOKENS && !one && read_run_delay(&w0, &d0);
    pl_status st = forward_run(r, seqs, n_seq, mode, logits);
    if (one) pl_set_num_threads(full);
    if (one && tokens >= SHARE_MIN_TOKENS) {
        const int o = others_running();
        r->share_room = o >= 0 && o + full <= (int)sysconf(_SC_NPROCESSORS_ONLN) ? r->share_room + 1 : 0;
        if (r->share_room >= 3) r->share_one = r->share_count = r->share_room = 0;
    } else if (measure && read_run_delay(&w1, &d1) && w1 - w0 > 0.02) {
        /* crowded: one thread from now on; a probe that finds room ends it */
        r->share_one = (d1 - d0) > (w1 - w0) / 6;
        r->share_count = r->share_room = 0;
    }
    return st;
}

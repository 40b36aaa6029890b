/* model_value.c — the model-backed value function for the explainers: one
 * email's features over its token ids, scored by the classifier view of a
 * causal LM (prompt.h) with masked features replaced over ids.
 *
 * Speed: the explainers hand over whole rounds of distinct masks; every
 * masked variant is run in one batched forward. A variant agrees with the
 * unmasked email up to its first masked token, so the keys/values of that
 * shared part are not recomputed: the email's tokens are run once into a KV
 * cache forked from the template prefix (one cache by default; a chain of
 * max_segments caches ending at chosen breakpoints on request), and each
 * variant forks it at exactly its first change (pl_kv_new_at) and runs only
 * the rest of its email plus the prompt suffix. Variants of one call that
 * agree with each other beyond that point (masks that differ only late in
 * the email) are grouped: their common prefix is run once as its own cache
 * and they fork from it. A token's keys, values and logits do not depend on
 * how the tokens are split over forwards (model.h), so the scores are the
 * same bits either way (tested). See docs/explain.md.
 */
#include "explain/explain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH_TOKENS 2048
/* One segment: a variant forks the email's cache at its first change
 * whatever the segments (pl_kv_new_at), and every further segment is one
 * more small forward (12 segments: 4-5 % slower on the bench email) */
#define DEFAULT_SEGMENTS 1
#define MAX_SEGMENTS 13 /* the model's prefix chains are at most 16 deep: template, chain, group, variant */
#define MIN_SHARED 8     /* a shared prefix must save at least this many tokens */
#define MAX_SEQS 256
#define DEFAULT_POOL_MB 512 /* kept caches of earlier calls, per email */

void pl_xmodel_opts_init(pl_xmodel_opts *o) {
    memset(o, 0, sizeof *o);
    o->level = PL_FEAT_WORD;
    o->policy = PL_MASK_REPLACE;
    o->mask_id = -1;
    o->use_fields = 1;
    o->max_batch_tokens = DEFAULT_BATCH_TOKENS;
    o->max_segments = DEFAULT_SEGMENTS;
}

#define MAX_LANES 64

/* one thread's run state: the batches of a call run side by side in lanes
 * (model.h) */
typedef pl_prompt_lane xlane;

struct pl_xmodel {
    pl_model *m;
    const pl_tokenizer *t;
    const pl_prompt *p;
    pl_xmodel_opts o;
    pl_kv *prefix;      /* the template prefix, run once */
    int max_batch, max_ctx;
    xlane lanes[MAX_LANES]; /* lanes[0] made with the value function, the others on first use */
    int n_lanes;
};

/* lanes[i] (lane 0 also runs the template prefix) */
static pl_status xlane_init(pl_xmodel *x, int i) {
    return pl_prompt_lane_init(&x->lanes[i], x->m, x->p, x->max_batch, x->max_ctx, MAX_SEQS, i == 0 ? &x->prefix : NULL);
}

pl_status pl_xmodel_new(pl_model *m, const pl_tokenizer *t, const pl_prompt *p, const pl_xmodel_opts *o,
                        pl_xmodel **out) {
    *out = NULL;
    pl_xmodel *x = calloc(1, sizeof *x);
    if (!x) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    x->m = m;
    x->t = t;
    x->p = p;
    if (o) x->o = *o;
    else pl_xmodel_opts_init(&x->o);
    if (x->o.max_segments <= 0) x->o.max_segments = DEFAULT_SEGMENTS;
    if (x->o.max_segments > MAX_SEGMENTS) x->o.max_segments = MAX_SEGMENTS;
    const pl_arch_desc *d = pl_model_desc(m);
    int email_cap = p->max_email_tokens + (int)p->suffix.n;
    x->max_batch = x->o.max_batch_tokens > 0 ? x->o.max_batch_tokens : DEFAULT_BATCH_TOKENS;
    if (x->max_batch < email_cap) x->max_batch = email_cap;
    if (x->max_batch < (int)p->prefix.n) x->max_batch = (int)p->prefix.n;
    x->max_ctx = (int)p->prefix.n + email_cap;
    pl_status st = PL_OK;
    if (p->label_pos_id >= d->n_vocab || p->label_neg_id >= d->n_vocab)
        st = pl_error(PL_ERR_RANGE, "explain: label token ids %d/%d outside the model's vocabulary of %d",
                      p->label_pos_id, p->label_neg_id, d->n_vocab);
    if (!st && x->o.mask_id < 0 && (x->o.policy == PL_MASK_REPLACE || x->o.policy == PL_MASK_COLLAPSE)) {
        int32_t cand[3] = {pl_tokenizer_unk(t), pl_tokenizer_pad(t), pl_tokenizer_eos(t)};
        for (int i = 0; i < 3 && x->o.mask_id < 0; i++)
            if (cand[i] >= 0 && cand[i] < d->n_vocab) x->o.mask_id = cand[i];
        if (x->o.mask_id < 0)
            st = pl_error(PL_ERR_UNSUPPORTED, "explain: the vocabulary has no unk, pad or eos token to mask with; "
                                              "give a mask id");
    }
    if (!st && x->o.mask_id >= d->n_vocab)
        st = pl_error(PL_ERR_RANGE, "explain: mask id %d outside the vocabulary of %d", x->o.mask_id, d->n_vocab);
    if (!st) st = xlane_init(x, 0);
    if (!st) x->n_lanes = 1;
    if (st) {
        pl_xmodel_free(x);
        return st;
    }
    *out = x;
    return PL_OK;
}

void pl_xmodel_free(pl_xmodel *x) {
    if (!x) return;
    pl_kv_free(x->prefix);
    for (int i = 0; i < x->n_lanes; i++) pl_prompt_lane_free(&x->lanes[i]);
    free(x);
}

int32_t pl_xmodel_mask_id(const pl_xmodel *x) { return x->o.mask_id; }
const pl_xmodel_opts *pl_xmodel_get_opts(const pl_xmodel *x) { return &x->o; }

/* ---- one email -------------------------------------------------------------- */

struct pl_xemail {
    pl_xmodel *x;
    pl_buf text;              /* the decoded email text (what the ids say) */
    pl_tokens ids;
    pl_span *spans;
    pl_tokseq seq;
    pl_field fields[64];
    size_t n_fields;
    pl_features feat;
    int32_t *baseline;        /* [n] for BASELINE */
    pl_mask_spec spec;
    int truncated;
    /* prefix chain over the email's own tokens */
    pl_kv *seg[MAX_SEGMENTS];
    int seg_end[MAX_SEGMENTS]; /* email positions covered up to (exclusive) */
    int n_seg, chain_built;
    int32_t *scratch;          /* [n] masked ids */
    pl_xemail_stats stats;
    /* caches of earlier calls' variants and shared prefixes, kept as fork
     * sources for later calls (a bounded pool, least recently used out) */
    struct pooled *pool;
    size_t n_pool, cap_pool, pool_positions, pool_max;
    uint64_t tick;
};

/* A kept cache: its email ids [0, n_ids) at cache positions P + j (P the
 * template prefix length); own = positions it stores itself. */
struct pooled {
    pl_kv *kv;
    int32_t *ids;
    int n_ids, own;
    uint64_t used;
};

static void add_field(pl_xemail *e, const char *name, size_t s, size_t end) {
    if (end > e->text.len) end = e->text.len;
    if (s >= end || e->n_fields >= sizeof e->fields / sizeof *e->fields) return;
    e->fields[e->n_fields++] = (pl_field){name, {s, end}};
}

/* Field spans over the email text "Subject: S\nFrom: F\n\nBODY" (see
 * pl_prompt_email_text): the values only, so header labels stay unmasked. */
static void make_fields(pl_xemail *e, const pl_record *r) {
    size_t off = 0;
    if (r->subject && *r->subject) {
        size_t n = strlen(r->subject);
        add_field(e, "subject", off + 9, off + 9 + n);
        off += 9 + n + 1;
    }
    if (r->from && *r->from) {
        size_t n = strlen(r->from);
        add_field(e, "from", off + 6, off + 6 + n);
        off += 6 + n + 1;
    }
    if (off > 0) off += 1;
    size_t body_len = r->body ? strlen(r->body) : 0;
    add_field(e, "body", off, off + body_len);
    /* each occurrence of each URL inside the body */
    for (size_t u = 0; u < r->n_urls && body_len; u++) {
        const char *url = r->urls[u];
        size_t ul = url ? strlen(url) : 0;
        if (!ul) continue;
        const char *from = r->body;
        const char *hit;
        while ((hit = strstr(from, url)) != NULL) {
            size_t s = off + (size_t)(hit - r->body);
            int dup = 0;
            for (size_t k = 0; k < e->n_fields; k++)
                if (!strcmp(e->fields[k].name, "url") && e->fields[k].span.start == s) dup = 1;
            if (!dup) add_field(e, "url", s, s + ul);
            from = hit + ul;
        }
    }
}

/* Token pieces -> text and per-token byte spans. The pieces are decoded one
 * by one keeping the space prefix, so their concatenation is the text plus
 * the tokenizer's inserted leading space (dropped here). */
static pl_status token_spans(pl_xemail *e) {
    const pl_tokenizer *t = e->x->t;
    size_t n = e->ids.n;
    e->spans = calloc(n ? n : 1, sizeof *e->spans);
    if (!e->spans) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    pl_buf all = {0};
    pl_status st = pl_buf_reserve(&all, 0);
    size_t *starts = malloc((n + 1) * sizeof *starts);
    if (!starts) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        starts[i] = all.len;
        st = pl_tokenizer_decode(t, &e->ids.ids[i], 1, PL_TOK_KEEP_PREFIX, &all);
    }
    if (!st) starts[n] = all.len;
    size_t drop = 0;
    if (!st && pl_tokenizer_add_space_prefix(t) && all.len > 0 && all.data[0] == ' ') drop = 1;
    if (!st) {
        st = pl_buf_append(&e->text, all.data + drop, all.len - drop);
        if (!st && !e->text.data) st = pl_buf_reserve(&e->text, 1);
    }
    for (size_t i = 0; !st && i < n; i++) {
        size_t s = starts[i] > drop ? starts[i] - drop : 0, en = starts[i + 1] > drop ? starts[i + 1] - drop : 0;
        e->spans[i] = (pl_span){s, en};
    }
    /* the pieces must add up to the decoded whole */
    if (!st) {
        pl_buf whole = {0};
        st = pl_tokenizer_decode(t, e->ids.ids, n, 0, &whole);
        if (!st && (whole.len != e->text.len || (whole.len && memcmp(whole.data, e->text.data, whole.len))))
            st = pl_error(PL_ERR_UNSUPPORTED, "explain: the token pieces do not add up to the decoded email "
                                              "(%zu vs %zu bytes)", e->text.len, whole.len);
        pl_buf_free(&whole);
    }
    free(starts);
    pl_buf_free(&all);
    return st;
}

pl_status pl_xemail_new(pl_xmodel *x, const pl_record *r, const pl_record *baseline, pl_xemail **out) {
    *out = NULL;
    pl_xemail *e = calloc(1, sizeof *e);
    if (!e) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    e->x = x;
    pl_status st = pl_prompt_email_ids(x->p, x->t, r, &e->ids, &e->truncated);
    if (!st && e->ids.n == 0) st = pl_error(PL_ERR_INVALID, "explain: email '%s' has no tokens", r->id ? r->id : "");
    if (!st) st = token_spans(e);
    if (!st) {
        /* fields are laid out over the full email text; the decoded text must be its prefix */
        pl_buf full = {0};
        st = pl_prompt_email_text(r, &full);
        int prefix_ok = !st && full.len >= e->text.len && !memcmp(full.data, e->text.data, e->text.len);
        pl_buf_free(&full);
        if (!st && x->o.use_fields) {
            if (prefix_ok) make_fields(e, r);
            else if (x->o.level == PL_FEAT_FIELD)
                st = pl_error(PL_ERR_UNSUPPORTED, "explain: email '%s': decoded text differs from the email text, "
                                                  "field features unavailable", r->id ? r->id : "");
        }
    }
    if (!st) {
        e->seq = (pl_tokseq){e->text.data, e->text.len, e->ids.ids, e->spans, e->ids.n};
        st = pl_features_build(&e->seq, e->n_fields ? e->fields : NULL, e->n_fields, x->o.level, &e->feat);
    }
    if (!st && e->feat.n_features == 0)
        st = pl_error(PL_ERR_INVALID, "explain: email '%s' has no features at level %d", r->id ? r->id : "",
                      (int)x->o.level);
    if (!st) {
        e->scratch = malloc(e->ids.n * sizeof(int32_t));
        if (!e->scratch) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
    }
    e->spec.policy = x->o.policy;
    e->spec.mask_id = x->o.mask_id;
    if (!x->o.no_shared) {
        const size_t kib = x->o.pool_kib > 0 ? (size_t)x->o.pool_kib : (size_t)DEFAULT_POOL_MB << 10;
        e->pool_max = (kib << 10) / pl_kv_position_bytes(x->m);
        if (!e->pool_max) e->pool_max = 1;
    }
    if (!st && x->o.policy == PL_MASK_BASELINE) {
        if (!baseline) st = pl_error(PL_ERR_INVALID, "explain: the baseline policy needs a baseline email");
        pl_tokens b = {0};
        if (!st) st = pl_prompt_email_ids(x->p, x->t, baseline, &b, NULL);
        if (!st) {
            e->baseline = malloc(e->ids.n * sizeof(int32_t));
            if (!e->baseline) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
            int32_t pad = x->o.mask_id >= 0 ? x->o.mask_id : pl_tokenizer_pad(x->t);
            if (pad < 0) pad = pl_tokenizer_eos(x->t);
            for (size_t i = 0; !st && i < e->ids.n; i++) e->baseline[i] = i < b.n ? b.ids[i] : pad;
            e->spec.baseline_ids = e->baseline;
        }
        pl_tokens_free(&b);
    }
    if (st) {
        pl_xemail_free(e);
        return st;
    }
    *out = e;
    return PL_OK;
}

/* Free the kept caches that nothing forks from, oldest first, until at
 * most `keep` positions remain (0: all of them; forks are freed before the
 * caches they hang from). */
static void pool_trim(pl_xemail *e, size_t keep) {
    for (;;) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < e->n_pool; i++)
            if (pl_kv_forks(e->pool[i].kv) == 0 && (victim == SIZE_MAX || e->pool[i].used < e->pool[victim].used))
                victim = i;
        if (victim == SIZE_MAX || (keep && e->pool_positions <= keep) || (!keep && !e->n_pool)) return;
        e->pool_positions -= (size_t)e->pool[victim].own;
        pl_kv_free(e->pool[victim].kv);
        free(e->pool[victim].ids);
        e->pool[victim] = e->pool[--e->n_pool];
    }
}

void pl_xemail_free(pl_xemail *e) {
    if (!e) return;
    pool_trim(e, 0);
    free(e->pool);
    for (int i = e->n_seg - 1; i >= 0; i--) pl_kv_free(e->seg[i]);
    pl_features_free(&e->feat);
    pl_tokens_free(&e->ids);
    pl_buf_free(&e->text);
    free(e->spans);
    free(e->baseline);
    free(e->scratch);
    free(e);
}

const pl_features *pl_xemail_features(const pl_xemail *e) { return &e->feat; }
const pl_tokseq *pl_xemail_tokseq(const pl_xemail *e) { return &e->seq; }
const pl_mask_spec *pl_xemail_mask_spec(const pl_xemail *e) { return &e->spec; }
pl_xemail_stats pl_xemail_get_stats(const pl_xemail *e) { return e->stats; }
int pl_xemail_truncated(const pl_xemail *e) { return e->truncated; }

pl_status pl_xemail_masked_ids(const pl_xemail *e, const uint8_t *mask, pl_tokens *out) {
    size_t n = 0;
    pl_status st = pl_explain_apply_mask(e->ids.ids, e->ids.n, &e->feat, mask, &e->spec, e->scratch, &n);
    for (size_t i = 0; !st && i < n; i++) st = pl_tokens_push(out, e->scratch[i]);
    return st;
}

/* Breakpoints: the first token of features (where masks start to differ),
 * spread evenly over the features, plus the end of the email. */
static pl_status build_chain(pl_xemail *e) {
    pl_xmodel *x = e->x;
    int n = (int)e->ids.n, K = x->o.max_segments;
    size_t M = e->feat.n_features;
    int *cand = malloc((M + 1) * sizeof *cand);
    if (!cand) return pl_error(PL_ERR_NOMEM, "explain: out of memory");
    size_t nc = 0;
    for (size_t f = 0; f < M; f++) cand[nc++] = (int)e->feat.tok[e->feat.ptr[f]];
    /* sort (features are in text order, but be safe) */
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && cand[j - 1] > cand[j]; j--) {
            int tmp = cand[j];
            cand[j] = cand[j - 1];
            cand[j - 1] = tmp;
        }
    int ends[MAX_SEGMENTS + 1], ne = 0;
    int kc = K - 1 < (int)nc ? K - 1 : (int)nc;
    for (int k = 0; k < kc; k++) {
        int b = cand[(size_t)k * nc / (size_t)kc];
        if (b > 0 && (ne == 0 || b > ends[ne - 1])) ends[ne++] = b;
    }
    if (n > 0 && (ne == 0 || n > ends[ne - 1])) ends[ne++] = n;
    free(cand);
    pl_status st = PL_OK;
    pl_kv *parent = x->prefix;
    int start = 0;
    for (int k = 0; !st && k < ne; k++) {
        pl_kv *kv = NULL;
        st = pl_kv_new(x->m, ends[k] - start, parent, &kv);
        if (st) break;
        pl_seq s = {kv, e->ids.ids + start, ends[k] - start};
        st = pl_forward(x->lanes[0].run, &s, 1, PL_LOGITS_NONE, NULL);
        if (st) {
            pl_kv_free(kv);
            break;
        }
        e->seg[e->n_seg] = kv;
        e->seg_end[e->n_seg] = ends[k];
        e->n_seg++;
        e->stats.tokens_run += (size_t)(ends[k] - start);
        parent = kv;
        start = ends[k];
    }
    e->chain_built = 1;
    return st;
}

/* One pending variant. */
typedef struct {
    size_t row;       /* index in the batch */
    int from;         /* email position it runs from */
    pl_kv *src;       /* the cache it forks at email position from (chain or pool) */
    int32_t *ids;     /* masked email ids (owned by the call) */
    int n;
    int group;        /* the shared prefix it forks (-1: none) */
} variant;

/* A prefix shared by several variants: ids[from, to) of its first member,
 * run once forked from src at email position from. */
typedef struct {
    int from, to;
    pl_kv *src;
    const int32_t *ids;
    pl_kv *kv;
} shared;

static int lcp(const variant *a, const variant *b) {
    int k = 0;
    while (k < a->n && k < b->n && a->ids[k] == b->ids[k]) k++;
    return k;
}

static int cmp_variant(const void *pa, const void *pb) {
    const variant *a = *(const variant *const *)pa, *b = *(const variant *const *)pb;
    int k = lcp(a, b);
    if (k < a->n && k < b->n) return a->ids[k] < b->ids[k] ? -1 : 1;
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    return a->row < b->row ? -1 : a->row > b->row;
}

/* Group the variants (sorted by ids): extend a run while the tokens it
 * saves do not drop — running ids[F, L) once saves sum over members of
 * (L - from) minus (L - F), F the smallest member from — and keep groups
 * that save at least MIN_SHARED tokens. The shared part stops one token
 * short of the shortest member, so every member still runs at least its
 * last email token. Returns the number of groups. */
static size_t make_groups(variant *v, size_t n, shared *g, variant **ord) {
    for (size_t i = 0; i < n; i++) ord[i] = &v[i];
    qsort(ord, n, sizeof *ord, cmp_variant);
    size_t ng = 0, a = 0;
    while (a < n) {
        size_t b = a + 1;
        int L = ord[a]->n - 1, F = ord[a]->from;
        pl_kv *src = ord[a]->src;
        long sum_from = ord[a]->from, best = 0;
        while (b < n) {
            int nl = lcp(ord[b - 1], ord[b]);
            if (L < nl) nl = L;
            if (ord[b]->n - 1 < nl) nl = ord[b]->n - 1;
            const int nF = ord[b]->from < F ? ord[b]->from : F;
            const long nsum = sum_from + ord[b]->from;
            const long saving = (long)(b + 1 - a) * nl - nsum - (nl - nF);
            if (saving < best || nl <= 0) break;
            if (ord[b]->from < F) src = ord[b]->src;
            best = saving;
            L = nl;
            F = nF;
            sum_from = nsum;
            b++;
        }
        if (b - a >= 2 && best >= MIN_SHARED) {
            g[ng] = (shared){F, L, src, ord[a]->ids, NULL};
            for (size_t i = a; i < b; i++) {
                ord[i]->group = (int)ng;
                ord[i]->from = L;
            }
            ng++;
        }
        a = b;
    }
    return ng;
}

/* Put a cache (email ids [0, n_ids), own positions) in the pool; 0 when it
 * is not kept (pool off, or out of memory: the caller frees it). */
static int keep(pl_xemail *e, pl_kv *kv, const int32_t *ids, int n_ids, int own) {
    if (!e->pool_max || !kv || n_ids <= 0) return 0;
    if (e->n_pool == e->cap_pool) {
        size_t nc = e->cap_pool ? 2 * e->cap_pool : 64;
        struct pooled *np = realloc(e->pool, nc * sizeof *np);
        if (!np) return 0;
        e->pool = np;
        e->cap_pool = nc;
    }
    int32_t *c = malloc((size_t)n_ids * sizeof *c);
    if (!c) return 0;
    memcpy(c, ids, (size_t)n_ids * sizeof *c);
    e->pool[e->n_pool++] = (struct pooled){kv, c, n_ids, own, ++e->tick};
    e->pool_positions += (size_t)own;
    return 1;
}


/* One call's batches, run in lanes: the shared prefixes' caches (group_batch)
 * and the variants' (variant_batch: kept in kvs_all[i], scored into out). */
typedef struct {
    pl_xmodel *x;
    const variant *v;
    shared *g;
    pl_kv **kvs_all;
    const size_t *first;
    double *out;
    int ns, P;
} run_job;

static pl_status group_batch(void *ctx, int lane, size_t b) {
    const run_job *j = ctx;
    xlane *ln = &j->x->lanes[lane];
    pl_status st = PL_OK;
    int nseq = 0, used = 0;
    for (size_t gi = j->first[b]; !st && gi < j->first[b + 1]; gi++) {
        shared *g = &j->g[gi];
        const int need = g->to - g->from;
        st = pl_kv_new_at(j->x->m, need, g->src, j->P + g->from, &g->kv);
        if (st) break;
        memcpy(ln->ids + used, g->ids + g->from, (size_t)need * sizeof(int32_t));
        ln->seqs[nseq++] = (pl_seq){g->kv, ln->ids + used, need};
        used += need;
    }
    if (!st) st = pl_forward(ln->run, ln->seqs, nseq, PL_LOGITS_NONE, NULL);
    return st;
}

static pl_status variant_batch(void *ctx, int lane, size_t b) {
    const run_job *j = ctx;
    const pl_xmodel *x = j->x;
    xlane *ln = &j->x->lanes[lane];
    pl_status st = PL_OK;
    int nseq = 0, used = 0;
    const size_t i0 = j->first[b], i1 = j->first[b + 1];
    for (size_t i = i0; !st && i < i1; i++) {
        const variant *vi = &j->v[i];
        const int need = vi->n - vi->from + j->ns;
        st = vi->group >= 0 ? pl_kv_new(x->m, need, j->g[vi->group].kv, &j->kvs_all[i])
                            : pl_kv_new_at(x->m, need, vi->src, j->P + vi->from, &j->kvs_all[i]);
        if (st) break;
        int32_t *dst = ln->ids + used;
        memcpy(dst, vi->ids + vi->from, (size_t)(vi->n - vi->from) * sizeof(int32_t));
        memcpy(dst + (vi->n - vi->from), x->p->suffix.ids, (size_t)j->ns * sizeof(int32_t));
        ln->seqs[nseq++] = (pl_seq){j->kvs_all[i], dst, need};
        used += need;
    }
    if (!st) st = pl_forward(ln->run, ln->seqs, nseq, PL_LOGITS_LAST, ln->logits);
    for (int k = 0; !st && k < nseq; k++) {
        const float *l = ln->logits + (size_t)k * 2;
        double s = (double)l[0] - (double)l[1];
        if (x->o.prob) s = pl_sigmoid(s);
        if (!isfinite(s)) st = pl_error(PL_ERR_NUMERIC, "explain: non-finite score for mask %zu", i0 + (size_t)k);
        j->out[j->v[i0 + (size_t)k].row] = s;
    }
    return st;
}

/* n sequences of need[i] tokens in batches (first: job->first's array) run
 * in up to `lanes` lanes; *nb gets the batch count. A lane that fails to be
 * made is not counted. */
static pl_status run_set(pl_xmodel *x, const int *need, size_t n, int lanes, size_t *first, pl_lane_fn fn, run_job *job,
                         size_t *nb) {
    *nb = pl_batch_plan(need, n, x->max_batch, MAX_SEQS, &lanes, first);
    pl_status st = PL_OK;
    while (!st && x->n_lanes < lanes)
        if (!(st = xlane_init(x, x->n_lanes))) x->n_lanes++;
    return st ? st : pl_lanes_run(lanes, *nb, fn, job);
}

pl_status pl_xemail_value(void *ctx, const uint8_t *masks, size_t n_masks, size_t n_features, double *out) {
    pl_xemail *e = ctx;
    pl_xmodel *x = e->x;
    if (n_features != e->feat.n_features)
        return pl_error(PL_ERR_INVALID, "explain: value function for %zu features called with %zu", e->feat.n_features,
                        n_features);
    pl_status st = PL_OK;
    if (!e->chain_built) st = build_chain(e);
    if (st) return st;
    size_t n = e->ids.n, ns = x->p->suffix.n;
    const int P = pl_kv_len(x->prefix);
    variant *v = calloc(n_masks, sizeof *v);
    int32_t *store = malloc(n_masks * (n ? n : 1) * sizeof(int32_t));
    if (!v || !store) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
    for (size_t i = 0; !st && i < n_masks; i++) {
        size_t no = 0;
        int32_t *dst = store + i * n;
        st = pl_explain_apply_mask(e->ids.ids, n, &e->feat, masks + i * n_features, &e->spec, dst, &no);
        if (st) break;
        /* the fork source with the longest common prefix: the chain over the
         * unmasked email (up to the first masked token), or a kept cache */
        size_t p = 0;
        while (e->n_seg && p < no && p < n && dst[p] == e->ids.ids[p]) p++;
        pl_kv *src = e->n_seg ? e->seg[e->n_seg - 1] : x->prefix;
        struct pooled *best = NULL;
        for (size_t k = 0; k < e->n_pool; k++) {
            struct pooled *c = &e->pool[k];
            size_t L = 0, lim = no < (size_t)c->n_ids ? no : (size_t)c->n_ids;
            while (L < lim && dst[L] == c->ids[L]) L++;
            if (L > p && pl_kv_depth(c->kv) + 2 < 16) {
                p = L;
                best = c;
            }
        }
        if (best) {
            src = best->kv;
            best->used = ++e->tick;
        }
        int from = (int)p;
        if (ns == 0 && from >= (int)no) from = (int)no - 1; /* run at least one token */
        v[i] = (variant){i, from, src, dst, (int)no, -1};
    }
    /* shared prefixes, run first (no logits) */
    shared *g = NULL;
    size_t ng = 0;
    if (!st && !x->o.no_shared && n_masks > 1) {
        g = calloc(n_masks, sizeof *g);
        variant **ord = malloc(n_masks * sizeof *ord);
        if (!g || !ord) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
        else ng = make_groups(v, n_masks, g, ord);
        free(ord);
    }
    e->stats.shared_groups += ng;
    /* the shared prefixes first (no logits), then the variants, each set
     * in batches evened out for the lanes that run them side by side */
    int *need = !st ? malloc((n_masks + 1) * sizeof *need) : NULL;
    size_t *first = !st ? malloc((n_masks + 1) * sizeof *first) : NULL;
    pl_kv **kvs_all = !st ? calloc(n_masks, sizeof *kvs_all) : NULL;
    if (!st && (!need || !first || !kvs_all)) st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
    /* a lane: a runner and a batch's caches */
    const int lanes = pl_lanes_available(n_masks, MAX_LANES,
                                         pl_runner_bytes(x->lanes[0].run) + pl_kv_position_bytes(x->m) * (size_t)x->max_batch);
    run_job job = {x, v, g, kvs_all, first, out, (int)ns, P};
    size_t nb = 0;
    if (!st && ng > 0) {
        for (size_t gi = 0; gi < ng; gi++) {
            need[gi] = g[gi].to - g[gi].from;
            e->stats.tokens_run += (size_t)need[gi];
        }
        st = run_set(x, need, ng, lanes, first, group_batch, &job, &nb);
    }
    if (!st) {
        for (size_t i = 0; i < n_masks; i++) {
            need[i] = v[i].n - v[i].from + (int)ns;
            e->stats.tokens_run += (size_t)need[i];
            e->stats.tokens_full += (size_t)(v[i].n + (int)ns);
        }
        st = run_set(x, need, n_masks, lanes, first, variant_batch, &job, &nb);
        if (!st) e->stats.forwards += nb;
    }
    /* the variants' caches go to the pool in order (or are freed) */
    for (size_t i = 0; kvs_all && i < n_masks; i++)
        if (st || !keep(e, kvs_all[i], v[i].ids, v[i].n, v[i].n - v[i].from + (int)ns)) pl_kv_free(kvs_all[i]);
    free(need);
    free(first);
    free(kvs_all);
    e->stats.calls++;
    e->stats.variants += n_masks;
    for (size_t gi = 0; g && gi < ng; gi++)
        if (st || !keep(e, g[gi].kv, g[gi].ids, g[gi].to, g[gi].to - g[gi].from)) pl_kv_free(g[gi].kv);
    if (e->pool_max) pool_trim(e, e->pool_max);
    free(g);
    free(v);
    free(store);
    return st;
}

/* ---- budgets ------------------------------------------------------------------- */

pl_status pl_xmodel_budget(pl_xmethod m, size_t n_features, size_t max_evals, size_t *budget) {
    size_t M = n_features;
    switch (m) {
    case PL_XM_EXACT:
        if (M > PL_XMODEL_EXACT_MAX)
            return pl_error(PL_ERR_RANGE, "explain: exact Shapley values need 2^%zu evaluations; at most %d features "
                                          "(use --features sentence|field, or --method partition|permutation|kernel)",
                            M, PL_XMODEL_EXACT_MAX);
        *budget = (size_t)1 << M;
        return PL_OK;
    case PL_XM_PARTITION: *budget = max_evals ? max_evals : 500; return PL_OK;
    case PL_XM_PERMUTATION: {
        size_t per = 2 * M + 1, b = max_evals ? max_evals : (500 > 2 * per ? 500 : 2 * per);
        if (b < per)
            return pl_error(PL_ERR_RANGE, "explain: permutation needs at least 2M+1 = %zu evaluations for %zu "
                                          "features (got --max-evals %zu)", per, M, b);
        *budget = b;
        return PL_OK;
    }
    case PL_XM_KERNEL: {
        size_t b = max_evals ? max_evals : 2 * M + 2048;
        if (M < 63 && b > ((size_t)1 << M)) b = (size_t)1 << M;
        *budget = b;
        return PL_OK;
    }
    }
    return pl_error(PL_ERR_INVALID, "explain: unknown method %d", (int)m);
}

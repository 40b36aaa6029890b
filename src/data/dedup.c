/* dedup.c — exact and near-duplicate detection for email corpora, and the
 * train/test leakage check built on it.
 *
 * Exact duplicates: XXH3 of the normalized text (ASCII case folded,
 * whitespace runs collapsed). Near duplicates: MinHash signatures of word
 * 3-shingle sets (Broder 1997) bucketed by LSH banding (Indyk & Motwani 1998;
 * Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets" ch. 3); every
 * candidate pair is verified with the true Jaccard of the shingle sets, so
 * LSH only costs recall, never precision. Clusters are connected components
 * of verified pairs, which is transitive: a chain a~b~c joins a and c even if
 * J(a, c) is below the threshold. Deliberately not done: semantic (embedding)
 * similarity, and fuzzy matching of subjects.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokenizer and normalization ---- */

static int is_word_byte(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Length of a UTF-8 separator at p (Unicode spaces, dashes, quotes, bullets,
 * the BOM), 0 when p does not start one: NBSP U+00A0, guillemets U+00AB/BB,
 * U+2000-U+206F (general punctuation), U+3000, U+FEFF. */
static size_t utf8_separator(const unsigned char *p) {
    if (p[0] == 0xC2 && (p[1] == 0xA0 || p[1] == 0xAB || p[1] == 0xBB)) return 2;
    if (p[0] == 0xE2 && (p[1] == 0x80 || p[1] == 0x81) && p[2] >= 0x80 && p[2] <= 0xBF) return 3;
    if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 3;
    if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) return 3;
    return 0;
}

size_t pl_text_words(const char *s, pl_word_fn fn, void *user) {
    char w[64];
    size_t count = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t sep = 0;
        while (*p && (!is_word_byte(*p) || (sep = utf8_separator(p)) != 0)) p += *p >= 0x80 ? sep : 1;
        if (!*p) break;
        size_t len = 0;
        int cut = 0;
        while (*p && is_word_byte(*p) && !(*p >= 0x80 && utf8_separator(p))) {
            unsigned char c = *p++;
            if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
            if (len < sizeof w - 1) w[len++] = (char)c;
            else cut = 1;
        }
        if (cut) {
            /* do not end a cut word inside a UTF-8 sequence */
            size_t k = len;
            while (k > 0 && ((unsigned char)w[k - 1] & 0xC0) == 0x80) k--;
            if (k > 0 && ((unsigned char)w[k - 1] & 0xC0) == 0xC0) {
                unsigned char lead = (unsigned char)w[k - 1];
                size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
                if (len - (k - 1) < need) len = k - 1;
            }
        }
        w[len] = 0;
        count++;
        if (fn) fn(w, len, user);
    }
    return count;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

uint64_t pl_text_hash_normalized(const char *s, int *empty) {
    /* Stream the normalized bytes through a small buffer into one hash: we
     * hash in chunks by folding chunk hashes, which is deterministic. */
    uint64_t h = 0x6a09e667f3bcc908ULL;
    char buf[256];
    size_t n = 0, total = 0;
    int pending_space = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (is_space(c)) {
            pending_space = total > 0 || n > 0;
            continue;
        }
        if (pending_space) {
            buf[n++] = ' ';
            pending_space = 0;
            if (n == sizeof buf) h = pl_hash64(buf, n, h), total += n, n = 0;
        }
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
        buf[n++] = (char)c;
        if (n == sizeof buf) h = pl_hash64(buf, n, h), total += n, n = 0;
    }
    if (n) h = pl_hash64(buf, n, h), total += n;
    if (empty) *empty = total == 0;
    return h;
}

const char *pl_record_dedup_text(const pl_record *r) {
    for (const char *p = r->body; p && *p; p++)
        if (!is_space((unsigned char)*p)) return r->body;
    return r->subject ? r->subject : "";
}

/* ---- shingles, Jaccard, MinHash ---- */

typedef struct {
    uint64_t *v;
    size_t n, cap;
    int oom;
} u64vec;

static void u64_push(u64vec *a, uint64_t x) {
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        uint64_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) {
            a->oom = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
}

static void push_word_hash(const char *w, size_t len, void *user) { u64_push(user, pl_hash64(w, len, 0x5eed)); }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint64_t *v, size_t n) {
    if (n < 2) return n;
    qsort(v, n, sizeof *v, cmp_u64);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

pl_status pl_shingles(const char *s, int w, uint64_t **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (w < 1) return pl_error(PL_ERR_INVALID, "shingle width must be >= 1, got %d", w);
    u64vec words = {0};
    pl_text_words(s, push_word_hash, &words);
    if (words.oom) {
        free(words.v);
        return pl_error(PL_ERR_NOMEM, "out of memory tokenizing");
    }
    if (words.n == 0) {
        free(words.v);
        return PL_OK;
    }
    size_t ns = words.n >= (size_t)w ? words.n - (size_t)w + 1 : 1;
    size_t width = words.n >= (size_t)w ? (size_t)w : words.n;
    uint64_t *sh = malloc(ns * sizeof *sh);
    if (!sh) {
        free(words.v);
        return pl_error(PL_ERR_NOMEM, "out of memory for %zu shingles", ns);
    }
    for (size_t i = 0; i < ns; i++) sh[i] = pl_hash64(words.v + i, width * sizeof(uint64_t), 0x5817);
    free(words.v);
    *n = sort_unique(sh, ns);
    *out = sh;
    return PL_OK;
}

double pl_jaccard_sorted(const uint64_t *a, size_t na, const uint64_t *b, size_t nb) {
    if (na == 0 && nb == 0) return 0.0;
    size_t i = 0, j = 0, inter = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) inter++, i++, j++;
        else if (a[i] < b[j]) i++;
        else j++;
    }
    return (double)inter / (double)(na + nb - inter);
}

#define MERSENNE61 ((1ULL << 61) - 1)

static uint64_t mod61(__uint128_t x) {
    uint64_t lo = (uint64_t)(x & MERSENNE61), hi = (uint64_t)(x >> 61);
    uint64_t r = lo + hi;
    while (r >= MERSENNE61) r -= MERSENNE61;
    return r;
}

/* (a_i, b_i) of the universal family h_i(x) = (a_i x + b_i) mod p, a_i != 0. */
static void perm_coeffs(int k, uint64_t seed, uint64_t *a, uint64_t *b) {
    pl_rng r;
    pl_rng_seed(&r, seed ^ 0x4d696e48617368ULL);
    for (int i = 0; i < k; i++) {
        a[i] = 1 + pl_rng_below(&r, MERSENNE61 - 1);
        b[i] = pl_rng_below(&r, MERSENNE61);
    }
}

static void minhash_with(const uint64_t *set, size_t n, int k, const uint64_t *a, const uint64_t *b, uint64_t *sig) {
    for (int i = 0; i < k; i++) sig[i] = UINT64_MAX;
    for (size_t j = 0; j < n; j++) {
        uint64_t x = set[j] % MERSENNE61;
        for (int i = 0; i < k; i++) {
            uint64_t h = mod61((__uint128_t)a[i] * x + b[i]);
            if (h < sig[i]) sig[i] = h;
        }
    }
}

void pl_minhash(const uint64_t *set, size_t n, int k, uint64_t seed, uint64_t *sig) {
    uint64_t *a = malloc((size_t)k * 2 * sizeof *a);
    if (!a) { /* fall back to a sentinel signature; callers check k > 0 only */
        for (int i = 0; i < k; i++) sig[i] = UINT64_MAX;
        return;
    }
    perm_coeffs(k, seed, a, a + k);
    minhash_with(set, n, k, a, a + k, sig);
    free(a);
}

double pl_minhash_estimate(const uint64_t *a, const uint64_t *b, int k) {
    int eq = 0;
    for (int i = 0; i < k; i++) eq += a[i] == b[i];
    return k > 0 ? (double)eq / k : 0.0;
}

void pl_lsh_params(int k, double threshold, int *bands, int *rows) {
    /* P(pair at Jaccard t shares a band) = 1 - (1 - t^r)^b. */
    int best_r = 1;
    for (int r = 1; r <= k; r++) {
        int b = k / r;
        double p = 1.0 - pow(1.0 - pow(threshold, r), b);
        if (p >= 0.99) best_r = r;
    }
    *rows = best_r;
    *bands = k / best_r;
}

void pl_dedup_opts_default(pl_dedup_opts *o) {
    o->threshold = 0.8;
    o->num_perm = 128;
    o->shingle = 3;
    o->seed = 1;
}

static pl_status check_opts(const pl_dedup_opts *o) {
    if (!(o->threshold > 0.0 && o->threshold <= 1.0))
        return pl_error(PL_ERR_INVALID, "near-duplicate threshold must be in (0, 1], got %g", o->threshold);
    if (o->num_perm < 1 || o->num_perm > 4096)
        return pl_error(PL_ERR_INVALID, "num_perm must be in [1, 4096], got %d", o->num_perm);
    if (o->shingle < 1 || o->shingle > 16) return pl_error(PL_ERR_INVALID, "shingle must be in [1, 16], got %d", o->shingle);
    return PL_OK;
}

/* ---- sketches ---- */

typedef struct {
    size_t n;
    int k;
    uint64_t **sh;    /* [n] shingle sets */
    size_t *nsh;      /* [n] */
    uint64_t *sig;    /* [n * k] */
    uint64_t *exact;  /* [n] */
    uint8_t *blank;   /* [n] */
} sketches;

static void sketches_free(sketches *s) {
    if (s->sh)
        for (size_t i = 0; i < s->n; i++) free(s->sh[i]);
    free(s->sh);
    free(s->nsh);
    free(s->sig);
    free(s->exact);
    free(s->blank);
    memset(s, 0, sizeof *s);
}

static pl_status sketches_build(const char *const *texts, size_t n, const pl_dedup_opts *o, sketches *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->k = o->num_perm;
    size_t nsig;
    if (!pl_mul_ok(n ? n : 1, (size_t)o->num_perm, &nsig)) return pl_error(PL_ERR_NOMEM, "too many texts");
    s->sh = calloc(n ? n : 1, sizeof *s->sh);
    s->nsh = calloc(n ? n : 1, sizeof *s->nsh);
    s->sig = malloc(nsig * sizeof *s->sig);
    s->exact = calloc(n ? n : 1, sizeof *s->exact);
    s->blank = calloc(n ? n : 1, 1);
    uint64_t *coef = malloc((size_t)o->num_perm * 2 * sizeof *coef);
    if (!s->sh || !s->nsh || !s->sig || !s->exact || !s->blank || !coef) {
        free(coef);
        sketches_free(s);
        return pl_error(PL_ERR_NOMEM, "out of memory for %zu sketches", n);
    }
    perm_coeffs(o->num_perm, o->seed, coef, coef + o->num_perm);
    int failed = 0;
    /* Independent per text: a static schedule, no shared reductions. */
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++) {
        int empty;
        const char *t = texts[i] ? texts[i] : "";
        s->exact[i] = pl_text_hash_normalized(t, &empty);
        s->blank[i] = (uint8_t)empty;
        if (pl_shingles(t, o->shingle, &s->sh[i], &s->nsh[i])) {
#pragma omp atomic write
            failed = 1;
        }
        minhash_with(s->sh[i], s->nsh[i], s->k, coef, coef + s->k, s->sig + i * (size_t)s->k);
    }
    free(coef);
    if (failed) {
        sketches_free(s);
        return pl_error(PL_ERR_NOMEM, "out of memory computing shingles");
    }
    return PL_OK;
}

/* ---- LSH candidates ---- */

typedef struct {
    uint64_t key;
    uint32_t doc;
} bucket_entry;

static int cmp_bucket(const void *a, const void *b) {
    const bucket_entry *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

#define BIG_BUCKET 1000 /* beyond this, a bucket is chained rather than fully paired */

static void add_pair(u64vec *pairs, uint32_t i, uint32_t j) {
    if (i == j) return;
    if (i > j) {
        uint32_t t = i;
        i = j;
        j = t;
    }
    u64_push(pairs, (uint64_t)i << 32 | j);
}

/* Candidate pairs (i < j, packed i<<32|j) among docs with active[i]. When
 * split > 0 train x train pairs (both < split) are left out: only train x
 * test and test x test pairs are made (leakage needs the test x test ones for
 * chains test ~ test ~ train). */
static pl_status lsh_candidates(const sketches *s, const uint8_t *active, size_t split, double threshold,
                                u64vec *pairs) {
    int bands, rows;
    pl_lsh_params(s->k, threshold, &bands, &rows);
    if (s->n > UINT32_MAX) return pl_error(PL_ERR_RANGE, "too many texts for LSH (%zu)", s->n);
    bucket_entry *e = malloc((s->n ? s->n : 1) * sizeof *e);
    if (!e) return pl_error(PL_ERR_NOMEM, "out of memory for LSH buckets");
    for (int b = 0; b < bands; b++) {
        size_t m = 0;
        for (size_t i = 0; i < s->n; i++) {
            if (!active[i]) continue;
            e[m].key = pl_hash64(s->sig + i * (size_t)s->k + (size_t)b * rows, (size_t)rows * sizeof(uint64_t),
                                 (uint64_t)b);
            e[m].doc = (uint32_t)i;
            m++;
        }
        qsort(e, m, sizeof *e, cmp_bucket);
        for (size_t lo = 0; lo < m;) {
            size_t hi = lo + 1;
            while (hi < m && e[hi].key == e[lo].key) hi++;
            size_t run = hi - lo;
            if (split == 0) {
                if (run <= BIG_BUCKET) {
                    for (size_t x = lo; x < hi; x++)
                        for (size_t y = x + 1; y < hi; y++) add_pair(pairs, e[x].doc, e[y].doc);
                } else {
                    for (size_t x = lo + 1; x < hi; x++) {
                        add_pair(pairs, e[lo].doc, e[x].doc);
                        add_pair(pairs, e[x - 1].doc, e[x].doc);
                    }
                }
            } else {
                /* docs are sorted within a run: train (< split) come first. */
                size_t mid = lo;
                while (mid < hi && e[mid].doc < split) mid++;
                size_t ntr = mid - lo, nte = hi - mid;
                size_t lim = ntr * nte <= (size_t)BIG_BUCKET * BIG_BUCKET ? ntr : 64;
                for (size_t y = mid; y < hi; y++)
                    for (size_t x = lo; x < lo + lim && x < mid; x++) add_pair(pairs, e[x].doc, e[y].doc);
                /* test x test: all pairs, or chained like a big bucket */
                if (nte <= BIG_BUCKET) {
                    for (size_t x = mid; x < hi; x++)
                        for (size_t y = x + 1; y < hi; y++) add_pair(pairs, e[x].doc, e[y].doc);
                } else {
                    for (size_t x = mid + 1; x < hi; x++) {
                        add_pair(pairs, e[mid].doc, e[x].doc);
                        add_pair(pairs, e[x - 1].doc, e[x].doc);
                    }
                }
            }
            lo = hi;
        }
        if (pairs->oom) break;
    }
    free(e);
    if (pairs->oom) return pl_error(PL_ERR_NOMEM, "out of memory for LSH candidate pairs");
    pairs->n = sort_unique(pairs->v, pairs->n);
    return PL_OK;
}

/* Jaccard of every candidate pair, in parallel (one output per pair). */
static pl_status verify_pairs(const sketches *s, const u64vec *pairs, double **jac) {
    *jac = malloc((pairs->n ? pairs->n : 1) * sizeof **jac);
    if (!*jac) return pl_error(PL_ERR_NOMEM, "out of memory verifying pairs");
    double *J = *jac;
#pragma omp parallel for schedule(dynamic, 256)
    for (size_t p = 0; p < pairs->n; p++) {
        size_t i = (size_t)(pairs->v[p] >> 32), j = (size_t)(pairs->v[p] & 0xffffffffu);
        J[p] = pl_jaccard_sorted(s->sh[i], s->nsh[i], s->sh[j], s->nsh[j]);
    }
    return PL_OK;
}

/* ---- union-find ---- */

static size_t uf_find(size_t *par, size_t x) {
    while (par[x] != x) {
        par[x] = par[par[x]];
        x = par[x];
    }
    return x;
}

static void uf_union(size_t *par, size_t a, size_t b) {
    a = uf_find(par, a);
    b = uf_find(par, b);
    if (a == b) return;
    if (a < b) par[b] = a; /* the smaller index is the root: the kept record */
    else par[a] = b;
}

typedef struct {
    uint64_t h;
    size_t i;
} hash_idx;

static int cmp_hash_idx(const void *a, const void *b) {
    const hash_idx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

pl_status pl_dedup_texts(const char *const *texts, size_t n, const pl_dedup_opts *o, pl_dedup_result *res) {
    memset(res, 0, sizeof *res);
    pl_status st = check_opts(o);
    if (st) return st;
    sketches s;
    st = sketches_build(texts, n, o, &s);
    if (st) return st;
    res->n = n;
    res->cluster = malloc((n ? n : 1) * sizeof *res->cluster);
    res->exact_dup = calloc(n ? n : 1, 1);
    hash_idx *hi = malloc((n ? n : 1) * sizeof *hi);
    uint8_t *active = calloc(n ? n : 1, 1);
    u64vec pairs = {0};
    double *jac = NULL;
    if (!res->cluster || !res->exact_dup || !hi || !active) {
        st = pl_error(PL_ERR_NOMEM, "out of memory deduplicating %zu texts", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) res->cluster[i] = i;
    /* Exact: group equal normalized hashes; the first occurrence represents. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!s.blank[i]) hi[m++] = (hash_idx){s.exact[i], i};
    qsort(hi, m, sizeof *hi, cmp_hash_idx);
    for (size_t a = 0; a < m;) {
        size_t b = a + 1;
        active[hi[a].i] = 1;
        while (b < m && hi[b].h == hi[a].h) {
            res->exact_dup[hi[b].i] = 1;
            uf_union(res->cluster, hi[a].i, hi[b].i);
            b++;
        }
        a = b;
    }
    /* Near: LSH over exact-unique representatives, verified. */
    st = lsh_candidates(&s, active, 0, o->threshold, &pairs);
    if (!st) st = verify_pairs(&s, &pairs, &jac);
    if (st) goto done;
    res->n_candidates = pairs.n;
    for (size_t p = 0; p < pairs.n; p++) {
        if (jac[p] < o->threshold) continue;
        res->n_verified++;
        uf_union(res->cluster, (size_t)(pairs.v[p] >> 32), (size_t)(pairs.v[p] & 0xffffffffu));
    }
    for (size_t i = 0; i < n; i++) {
        res->cluster[i] = uf_find(res->cluster, i);
        if (res->cluster[i] == i) res->n_clusters++;
        else if (res->exact_dup[i]) res->n_exact_dups++;
        else res->n_near_dups++;
    }
done:
    free(hi);
    free(active);
    free(pairs.v);
    free(jac);
    sketches_free(&s);
    if (st) pl_dedup_result_free(res);
    return st;
}

void pl_dedup_result_free(pl_dedup_result *res) {
    free(res->cluster);
    free(res->exact_dup);
    memset(res, 0, sizeof *res);
}

pl_status pl_leakage_texts(const char *const *train, size_t n_train, const char *const *test, size_t n_test,
                           const pl_dedup_opts *o, pl_leakage_result *res) {
    memset(res, 0, sizeof *res);
    pl_status st = check_opts(o);
    if (st) return st;
    size_t n;
    if (!pl_add_ok(n_train, n_test, &n)) return pl_error(PL_ERR_RANGE, "too many texts");
    const char **all = malloc((n ? n : 1) * sizeof *all);
    if (!all) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_train; i++) all[i] = train[i];
    for (size_t i = 0; i < n_test; i++) all[n_train + i] = test[i];
    sketches s;
    st = sketches_build(all, n, o, &s);
    free(all);
    if (st) return st;
    res->n_test = n_test;
    res->exact = malloc((n_test ? n_test : 1) * sizeof *res->exact);
    res->near = malloc((n_test ? n_test : 1) * sizeof *res->near);
    res->near_j = calloc(n_test ? n_test : 1, sizeof *res->near_j);
    res->chain = malloc((n_test ? n_test : 1) * sizeof *res->chain);
    hash_idx *hi = malloc((n_train ? n_train : 1) * sizeof *hi);
    uint8_t *active = calloc(n ? n : 1, 1);
    size_t *par = malloc((n ? n : 1) * sizeof *par);
    long *trmin = malloc((n ? n : 1) * sizeof *trmin);
    u64vec pairs = {0};
    double *jac = NULL;
    if (!res->exact || !res->near || !res->near_j || !res->chain || !hi || !active || !par || !trmin) {
        st = pl_error(PL_ERR_NOMEM, "out of memory checking leakage");
        goto done;
    }
    size_t m = 0;
    for (size_t i = 0; i < n_train; i++)
        if (!s.blank[i]) hi[m++] = (hash_idx){s.exact[i], i};
    qsort(hi, m, sizeof *hi, cmp_hash_idx);
    for (size_t i = 0; i < n_train; i++) active[i] = !s.blank[i];
    for (size_t t = 0; t < n_test; t++) {
        size_t g = n_train + t;
        res->exact[t] = res->near[t] = -1;
        if (s.blank[g]) continue;
        /* lower bound of the hash; the smallest train index among equals */
        size_t lo = 0, up = m;
        while (lo < up) {
            size_t mid = lo + (up - lo) / 2;
            if (hi[mid].h < s.exact[g]) lo = mid + 1;
            else up = mid;
        }
        if (lo < m && hi[lo].h == s.exact[g]) {
            res->exact[t] = (long)hi[lo].i;
            res->n_exact++;
        } else {
            active[g] = 1;
        }
    }
    st = lsh_candidates(&s, active, n_train, o->threshold, &pairs);
    if (!st) st = verify_pairs(&s, &pairs, &jac);
    if (st) goto done;
    /* Clusters are transitive: union-find over every verified pair (train x
     * test and test x test) and the exact matches. */
    for (size_t i = 0; i < n; i++) par[i] = i;
    for (size_t t = 0; t < n_test; t++)
        if (res->exact[t] >= 0) uf_union(par, (size_t)res->exact[t], n_train + t);
    for (size_t p = 0; p < pairs.n; p++) {
        size_t i = (size_t)(pairs.v[p] >> 32), j = (size_t)(pairs.v[p] & 0xffffffffu);
        if (jac[p] < o->threshold) continue;
        uf_union(par, i, j);
        if (i >= n_train) continue; /* test x test: only joins clusters */
        size_t t = j - n_train;
        /* pairs are sorted by train index, so strict > keeps the smallest on ties */
        if (res->near[t] < 0 || jac[p] > res->near_j[t]) {
            res->near[t] = (long)i;
            res->near_j[t] = jac[p];
        }
    }
    /* the smallest train index of each cluster (train indices come first) */
    for (size_t i = 0; i < n; i++) trmin[i] = -1;
    for (size_t i = 0; i < n_train; i++) {
        size_t r = uf_find(par, i);
        if (trmin[r] < 0) trmin[r] = (long)i;
    }
    for (size_t t = 0; t < n_test; t++) {
        res->n_near += res->near[t] >= 0;
        res->chain[t] = -1;
        if (res->exact[t] < 0 && res->near[t] < 0) {
            res->chain[t] = trmin[uf_find(par, n_train + t)];
            res->n_chain += res->chain[t] >= 0;
        }
    }
done:
    free(hi);
    free(par);
    free(trmin);
    free(active);
    free(pairs.v);
    free(jac);
    sketches_free(&s);
    if (st) pl_leakage_result_free(res);
    return st;
}

void pl_leakage_result_free(pl_leakage_result *res) {
    free(res->exact);
    free(res->near);
    free(res->near_j);
    free(res->chain);
    memset(res, 0, sizeof *res);
}

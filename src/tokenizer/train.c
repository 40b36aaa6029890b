/* train.c — learn a byte-level BPE and write it as an HF tokenizer.json.
 *
 * The classic algorithm (Sennrich et al. 2016, "Neural Machine Translation of
 * Rare Words with Subword Units"; byte-level as in GPT-2): texts are split by
 * the Llama 3 pre-tokenizer regex, identical words are counted once with
 * their frequency, and starting from the 256 bytes the most frequent
 * adjacent pair is merged into a new token until the vocabulary is full.
 *
 * Bookkeeping: pair -> (count, list of words containing it). Merging a pair
 * rewrites only the words on its list; candidate pairs sit in a max-heap with
 * lazy deletion (an entry whose count is stale is re-pushed with the current
 * count; counts of existing pairs only fall, so stale entries are never too
 * small). Ties: higher count first, then the pair whose (left, right) token
 * bytes compare smaller — deterministic for a given input.
 *
 * Output: vocab ids 0..3 <|bos|> <|eos|> <|pad|> <|unk|> (special added
 * tokens), 4..259 the bytes in order (in byte-level form), then one token per
 * merge. BOS is added by a TemplateProcessing post-processor. */
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define N_SPECIAL 4
static const char *const special_names[N_SPECIAL] = {"<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"};

/* ---- small containers --------------------------------------------------- */

typedef struct {
    int32_t *v;
    uint32_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        uint32_t nc = a->cap ? a->cap * 2 : 4;
        int32_t *p = realloc(a->v, nc * sizeof *p);
        if (!p) return 0;
        a->v = p;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 1;
}

typedef struct {
    int64_t count;
    int32_t a, b;
    int32_t mark; /* last merge (new token id) that queued this pair */
    ivec words;
} pairinfo;

typedef struct {
    uint64_t *key; /* UINT64_MAX = empty */
    uint32_t *idx;
    size_t cap, n;
    pairinfo *info;
    size_t ninfo, capinfo;
} pairmap;

static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static int pm_grow(pairmap *m) {
    size_t nc = m->cap ? m->cap * 2 : 1024;
    uint64_t *k = malloc(nc * sizeof *k);
    uint32_t *ix = malloc(nc * sizeof *ix);
    if (!k || !ix) { free(k); free(ix); return 0; }
    memset(k, 0xff, nc * sizeof *k);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->key[i] == UINT64_MAX) continue;
        size_t h = mix(m->key[i]) & (nc - 1);
        while (k[h] != UINT64_MAX) h = (h + 1) & (nc - 1);
        k[h] = m->key[i];
        ix[h] = m->idx[i];
    }
    free(m->key);
    free(m->idx);
    m->key = k;
    m->idx = ix;
    m->cap = nc;
    return 1;
}

/* Index of pair (a, b), created with count 0 when absent; -1 on OOM. */
static int64_t pm_get(pairmap *m, int32_t a, int32_t b) {
    if ((m->n + 1) * 2 > m->cap && !pm_grow(m)) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h = mix(key) & (m->cap - 1);
    while (m->key[h] != UINT64_MAX) {
        if (m->key[h] == key) return m->idx[h];
        h = (h + 1) & (m->cap - 1);
    }
    if (m->ninfo == m->capinfo) {
        size_t nc = m->capinfo ? m->capinfo * 2 : 1024;
        pairinfo *p = realloc(m->info, nc * sizeof *p);
        if (!p) return -1;
        m->info = p;
        m->capinfo = nc;
    }
    m->info[m->ninfo] = (pairinfo){0, a, b, -1, {0}};
    m->key[h] = key;
    m->idx[h] = (uint32_t)m->ninfo;
    m->n++;
    return (int64_t)m->ninfo++;
}

/* ---- heap of (count, pair index) ---------------------------------------- */

typedef struct {
    int64_t count;
    uint32_t pair;
} hent;

typedef struct {
    hent *v;
    size_t n, cap;
    const pairmap *pm;
    char **tok;      /* token bytes (for ties) */
    uint32_t *tlen;
} heap;

static int tok_cmp(const heap *h, int32_t x, int32_t y) {
    uint32_t lx = h->tlen[x], ly = h->tlen[y], l = lx < ly ? lx : ly;
    int c = memcmp(h->tok[x], h->tok[y], l);
    if (c) return c;
    return lx < ly ? -1 : lx > ly;
}

/* a before b? */
static int hbetter(const heap *h, const hent *a, const hent *b) {
    if (a->count != b->count) return a->count > b->count;
    const pairinfo *pa = &h->pm->info[a->pair], *pb = &h->pm->info[b->pair];
    int c = tok_cmp(h, pa->a, pb->a);
    if (c) return c < 0;
    return tok_cmp(h, pa->b, pb->b) < 0;
}

static int hpush(heap *h, int64_t count, uint32_t pair) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1024;
        hent *p = realloc(h->v, nc * sizeof *p);
        if (!p) return 0;
        h->v = p;
        h->cap = nc;
    }
    hent e = {count, pair};
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!hbetter(h, &e, &h->v[up])) break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = e;
    return 1;
}

static hent hpop(heap *h) {
    hent top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const hent *best = &last;
        if (l < h->n && hbetter(h, &h->v[l], best)) { m = l; best = &h->v[l]; }
        if (r < h->n && hbetter(h, &h->v[r], best)) m = r;
        if (m == i) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ---- word counting ------------------------------------------------------ */

typedef struct {
    ivec sym;
    int64_t count;
} word;

typedef struct {
    word *w;
    size_t n, cap;
    /* map word bytes -> index */
    int32_t *slot;
    uint64_t *hash;
    size_t scap;
    pl_buf bytes;       /* every distinct word's bytes, back to back */
    size_t *boff;
    uint32_t *blen;
} wordset;

static pl_status ws_add(wordset *s, const char *p, size_t n) {
    if ((s->n + 1) * 2 > s->scap) {
        size_t nc = s->scap ? s->scap * 2 : 4096;
        int32_t *sl = malloc(nc * sizeof *sl);
        uint64_t *hh = malloc(nc * sizeof *hh);
        if (!sl || !hh) { free(sl); free(hh); return pl_error(PL_ERR_NOMEM, "train: out of memory"); }
        memset(sl, 0xff, nc * sizeof *sl);
        for (size_t i = 0; i < s->scap; i++) {
            if (s->slot[i] < 0) continue;
            size_t h = s->hash[i] & (nc - 1);
            while (sl[h] >= 0) h = (h + 1) & (nc - 1);
            sl[h] = s->slot[i];
            hh[h] = s->hash[i];
        }
        free(s->slot);
        free(s->hash);
        s->slot = sl;
        s->hash = hh;
        s->scap = nc;
    }
    uint64_t hv = pl_hash64(p, n, 0x77);
    size_t h = hv & (s->scap - 1);
    while (s->slot[h] >= 0) {
        int32_t i = s->slot[h];
        if (s->hash[h] == hv && s->blen[i] == n && memcmp(s->bytes.data + s->boff[i], p, n) == 0) {
            s->w[i].count++;
            return PL_OK;
        }
        h = (h + 1) & (s->scap - 1);
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 4096;
        word *w = realloc(s->w, nc * sizeof *w);
        size_t *bo = w ? realloc(s->boff, nc * sizeof *bo) : NULL;
        if (w) s->w = w;
        if (bo) s->boff = bo;
        uint32_t *bl = bo ? realloc(s->blen, nc * sizeof *bl) : NULL;
        if (bl) s->blen = bl;
        if (!w || !bo || !bl) return pl_error(PL_ERR_NOMEM, "train: out of memory");
        s->cap = nc;
    }
    size_t i = s->n++;
    s->boff[i] = s->bytes.len;
    s->blen[i] = (uint32_t)n;
    pl_status st = pl_buf_append(&s->bytes, p, n);
    if (st) return st;
    s->w[i] = (word){{0}, 1};
    s->slot[h] = (int32_t)i;
    s->hash[h] = hv;
    return PL_OK;
}

static pl_status split_words(pcre2_code *re, const char *text, size_t n, wordset *s) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    pl_status st = PL_OK;
    if (!md || !mc || !js) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
    pcre2_jit_stack_assign(mc, NULL, js);
    size_t pos = 0;
    while (pos < n && !st) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, n, pos, 0, md, mc);
        if (rc == PCRE2_ERROR_NOMATCH) { st = ws_add(s, text + pos, n - pos); break; }
        if (rc < 0) { st = pl_error(PL_ERR_INTERNAL, "train: regex failed at byte %zu (%d)", pos, rc); break; }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] > pos) st = ws_add(s, text + pos, ov[0] - pos);
        if (!st && ov[1] > ov[0]) st = ws_add(s, text + ov[0], ov[1] - ov[0]);
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
    }
done:
    if (md) pcre2_match_data_free(md);
    if (mc) pcre2_match_context_free(mc);
    if (js) pcre2_jit_stack_free(js);
    return st;
}

/* ---- output ------------------------------------------------------------- */

static cJSON *special_ref(const char *name) {
    cJSON *o = cJSON_CreateObject(), *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "id", name);
    cJSON_AddNumberToObject(st, "type_id", 0);
    cJSON_AddItemToObject(o, "SpecialToken", st);
    return o;
}

static cJSON *seq_ref(const char *id, int type_id) {
    cJSON *o = cJSON_CreateObject(), *st = cJSON_CreateObject();
    cJSON_AddStringToObject(st, "id", id);
    cJSON_AddNumberToObject(st, "type_id", type_id);
    cJSON_AddItemToObject(o, "Sequence", st);
    return o;
}

static pl_status write_json(char **tok, uint32_t *tlen, int32_t ntok, const int32_t (*merges)[2], int32_t nmerges,
                            char **json, size_t *json_len) {
    pl_status st = PL_OK;
    pl_buf lv = {0}, a = {0};
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < N_SPECIAL; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddStringToObject(o, "content", special_names[i]);
        cJSON_AddBoolToObject(o, "single_word", 0);
        cJSON_AddBoolToObject(o, "lstrip", 0);
        cJSON_AddBoolToObject(o, "rstrip", 0);
        cJSON_AddBoolToObject(o, "normalized", 0);
        cJSON_AddBoolToObject(o, "special", 1);
        cJSON_AddItemToArray(added, o);
    }
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *pts = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", tok_regex_llama3);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", 0);
    cJSON_AddItemToArray(pts, split);
    cJSON *bl = cJSON_CreateObject();
    cJSON_AddStringToObject(bl, "type", "ByteLevel");
    cJSON_AddBoolToObject(bl, "add_prefix_space", 0);
    cJSON_AddBoolToObject(bl, "trim_offsets", 1);
    cJSON_AddBoolToObject(bl, "use_regex", 0);
    cJSON_AddItemToArray(pts, bl);
    cJSON *post = cJSON_AddObjectToObject(root, "post_processor");
    cJSON_AddStringToObject(post, "type", "TemplateProcessing");
    cJSON *single = cJSON_AddArrayToObject(post, "single");
    cJSON_AddItemToArray(single, special_ref(special_names[0]));
    cJSON_AddItemToArray(single, seq_ref("A", 0));
    cJSON *pair = cJSON_AddArrayToObject(post, "pair");
    cJSON_AddItemToArray(pair, special_ref(special_names[0]));
    cJSON_AddItemToArray(pair, seq_ref("A", 0));
    cJSON_AddItemToArray(pair, seq_ref("B", 1));
    cJSON *sp = cJSON_AddObjectToObject(post, "special_tokens");
    cJSON *bos = cJSON_AddObjectToObject(sp, special_names[0]);
    cJSON_AddStringToObject(bos, "id", special_names[0]);
    int zero = 0;
    cJSON_AddItemToObject(bos, "ids", cJSON_CreateIntArray(&zero, 1));
    const char *bn = special_names[0];
    cJSON_AddItemToObject(bos, "tokens", cJSON_CreateStringArray(&bn, 1));
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
    cJSON_AddBoolToObject(dec, "trim_offsets", 1);
    cJSON_AddBoolToObject(dec, "use_regex", 1);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    /* token texts in byte-level form, NUL-terminated copies for cJSON */
    char **lvl = calloc((size_t)ntok, sizeof *lvl);
    if (!lvl) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto out; }
    for (int32_t i = 0; i < ntok && !st; i++) {
        if (i < N_SPECIAL) {
            lvl[i] = strdup(special_names[i]);
        } else {
            lv.len = 0;
            if ((st = tok_bytes_to_level(tok[i], tlen[i], &lv))) break;
            lvl[i] = strdup(lv.data);
        }
        if (!lvl[i]) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
        cJSON_AddNumberToObject(vocab, lvl[i], i);
    }
    cJSON *marr = cJSON_AddArrayToObject(model, "merges");
    for (int32_t i = 0; i < nmerges && !st; i++) {
        a.len = 0;
        if ((st = pl_buf_printf(&a, "%s %s", lvl[merges[i][0]], lvl[merges[i][1]]))) break;
        cJSON_AddItemToArray(marr, cJSON_CreateString(a.data));
    }
    if (!st) {
        char *txt = cJSON_PrintUnformatted(root);
        if (!txt) st = pl_error(PL_ERR_NOMEM, "train: out of memory writing JSON");
        else {
            *json = txt;
            *json_len = strlen(txt);
        }
    }
    for (int32_t i = 0; i < ntok; i++) free(lvl ? lvl[i] : NULL);
    free(lvl);
out:
    cJSON_Delete(root);
    pl_buf_free(&lv);
    pl_buf_free(&a);
    return st;
}

/* ---- training ----------------------------------------------------------- */

pl_status pl_bpe_train(const char *const *texts, const size_t *lens, size_t n, const pl_bpe_train_opts *opts,
                       char **json, size_t *json_len) {
    *json = NULL;
    *json_len = 0;
    int32_t vocab_size = opts ? opts->vocab_size : 0;
    int64_t min_freq = opts && opts->min_frequency > 1 ? opts->min_frequency : 1;
    if (vocab_size < N_SPECIAL + 256 || vocab_size > (1 << 24))
        return pl_error(PL_ERR_INVALID, "train: vocab size %d outside [%d, %d]", vocab_size, N_SPECIAL + 256, 1 << 24);

    pl_status st = PL_OK;
    wordset ws = {0};
    pairmap pm = {0};
    heap hp = {0};
    char **tok = NULL;
    uint32_t *tlen = NULL;
    int32_t (*merges)[2] = NULL;
    int32_t ntok = 0, nmerges = 0;
    pl_tokenizer dummy = {0};
    dummy.name = (char *)"train";
    if ((st = tok_add_regex(&dummy, tok_regex_llama3, strlen(tok_regex_llama3)))) return st;

    pl_progress prog;
    if (opts && opts->show_progress) pl_progress_begin(&prog, "pre-tokenize", (int64_t)n, "texts");
    for (size_t i = 0; i < n && !st; i++) {
        st = split_words(dummy.re[0], texts[i], lens[i], &ws);
        if (opts && opts->show_progress) pl_progress_update(&prog, (int64_t)i + 1);
    }
    if (opts && opts->show_progress) pl_progress_end(&prog);
    if (st) goto done;

    tok = calloc((size_t)vocab_size, sizeof *tok);
    tlen = calloc((size_t)vocab_size, sizeof *tlen);
    merges = malloc((size_t)vocab_size * sizeof *merges);
    if (!tok || !tlen || !merges) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
    for (int i = 0; i < N_SPECIAL; i++) {
        tok[i] = strdup(special_names[i]);
        tlen[i] = (uint32_t)strlen(special_names[i]);
        if (!tok[i]) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
    }
    for (int b = 0; b < 256; b++) {
        tok[N_SPECIAL + b] = malloc(1);
        if (!tok[N_SPECIAL + b]) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
        tok[N_SPECIAL + b][0] = (char)b;
        tlen[N_SPECIAL + b] = 1;
    }
    ntok = N_SPECIAL + 256;

    /* words as symbol lists; initial pair counts and postings */
    for (size_t i = 0; i < ws.n; i++) {
        word *w = &ws.w[i];
        const uint8_t *p = (const uint8_t *)ws.bytes.data + ws.boff[i];
        for (uint32_t k = 0; k < ws.blen[i]; k++)
            if (!ivec_push(&w->sym, N_SPECIAL + p[k])) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
        for (uint32_t k = 0; k + 1 < w->sym.n; k++) {
            int64_t pi = pm_get(&pm, w->sym.v[k], w->sym.v[k + 1]);
            if (pi < 0) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }
            pairinfo *q = &pm.info[pi];
            q->count += w->count;
            if ((q->words.n == 0 || q->words.v[q->words.n - 1] != (int32_t)i) && !ivec_push(&q->words, (int32_t)i)) {
                st = pl_error(PL_ERR_NOMEM, "train: out of memory");
                goto done;
            }
        }
    }
    hp.pm = &pm;
    hp.tok = tok;
    hp.tlen = tlen;
    for (size_t i = 0; i < pm.ninfo; i++)
        if (!hpush(&hp, pm.info[i].count, (uint32_t)i)) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); goto done; }

    if (opts && opts->show_progress) pl_progress_begin(&prog, "merges", vocab_size - ntok, "merges");
    ivec nw = {0}, touched = {0};
    while (ntok < vocab_size && hp.n) {
        hent e = hpop(&hp);
        pairinfo *q = &pm.info[e.pair];
        if (e.count != q->count) { /* stale: re-queue with the current count */
            if (q->count > 0 && !hpush(&hp, q->count, e.pair)) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
            continue;
        }
        if (q->count < min_freq || q->count <= 0) break;
        int32_t A = q->a, B = q->b, X = ntok;
        /* the new token */
        tok[X] = malloc((size_t)tlen[A] + tlen[B]);
        if (!tok[X]) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
        memcpy(tok[X], tok[A], tlen[A]);
        memcpy(tok[X] + tlen[A], tok[B], tlen[B]);
        tlen[X] = tlen[A] + tlen[B];
        merges[nmerges][0] = A;
        merges[nmerges][1] = B;
        nmerges++;
        ntok++;
        /* rewrite every word on the pair's list (copy the list: it may grow) */
        ivec list = q->words;
        q->words = (ivec){0};
        int32_t prev_word = -1;
        for (uint32_t li = 0; li < list.n && !st; li++) {
            int32_t wi = list.v[li];
            if (wi == prev_word) continue;
            prev_word = wi;
            word *w = &ws.w[wi];
            int has = 0;
            for (uint32_t k = 0; k + 1 < w->sym.n && !has; k++) has = w->sym.v[k] == A && w->sym.v[k + 1] == B;
            if (!has) continue;
            /* remove the old pairs' counts, rebuild the word, add the new ones */
            for (uint32_t k = 0; k + 1 < w->sym.n; k++) {
                int64_t pi = pm_get(&pm, w->sym.v[k], w->sym.v[k + 1]);
                if (pi < 0) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
                pm.info[pi].count -= w->count;
            }
            nw.n = 0;
            for (uint32_t k = 0; k < w->sym.n && !st;) {
                if (k + 1 < w->sym.n && w->sym.v[k] == A && w->sym.v[k + 1] == B) {
                    if (!ivec_push(&nw, X)) st = pl_error(PL_ERR_NOMEM, "train: out of memory");
                    k += 2;
                } else {
                    if (!ivec_push(&nw, w->sym.v[k])) st = pl_error(PL_ERR_NOMEM, "train: out of memory");
                    k++;
                }
            }
            if (st) break;
            w->sym.n = 0;
            for (uint32_t k = 0; k < nw.n && !st; k++)
                if (!ivec_push(&w->sym, nw.v[k])) st = pl_error(PL_ERR_NOMEM, "train: out of memory");
            for (uint32_t k = 0; k + 1 < w->sym.n && !st; k++) {
                int32_t l = w->sym.v[k], r = w->sym.v[k + 1];
                int64_t pi = pm_get(&pm, l, r);
                if (pi < 0) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
                pairinfo *z = &pm.info[pi];
                z->count += w->count;
                if (l != X && r != X) continue;
                if (z->mark != X) { /* first time this merge touches the pair */
                    z->mark = X;
                    if (!ivec_push(&touched, (int32_t)pi)) { st = pl_error(PL_ERR_NOMEM, "train: out of memory"); break; }
                }
                if ((z->words.n == 0 || z->words.v[z->words.n - 1] != wi) && !ivec_push(&z->words, wi))
                    st = pl_error(PL_ERR_NOMEM, "train: out of memory");
            }
        }
        free(list.v);
        if (st) break;
        /* queue the pairs that contain the new token (their counts only grew) */
        for (uint32_t k = 0; k < touched.n && !st; k++) {
            pairinfo *z = &pm.info[touched.v[k]];
            if (z->count > 0 && !hpush(&hp, z->count, (uint32_t)touched.v[k])) st = pl_error(PL_ERR_NOMEM, "train: out of memory");
        }
        touched.n = 0;
        if (st) break;
        if (opts && opts->show_progress) pl_progress_update(&prog, nmerges);
    }
    free(nw.v);
    free(touched.v);
    if (opts && opts->show_progress) pl_progress_end(&prog);
    if (st) goto done;
    st = write_json(tok, tlen, ntok, (const int32_t(*)[2])merges, nmerges, json, json_len);

done:
    if (dummy.n_re) pcre2_code_free(dummy.re[0]);
    for (size_t i = 0; i < ws.n; i++) free(ws.w[i].sym.v);
    free(ws.w);
    free(ws.slot);
    free(ws.hash);
    free(ws.boff);
    free(ws.blen);
    pl_buf_free(&ws.bytes);
    for (size_t i = 0; i < pm.ninfo; i++) free(pm.info[i].words.v);
    free(pm.info);
    free(pm.key);
    free(pm.idx);
    free(hp.v);
    if (tok)
        for (int32_t i = 0; i < vocab_size; i++) free(tok[i]);
    free(tok);
    free(tlen);
    free(merges);
    return st;
}

/* encode.c — the two merge loops: SentencePiece-style BPE over "▁"-escaped
 * text, and byte-level BPE over regex-split words.
 *
 * Shared engine: the fragment is cut into UTF-8 characters ("symbols") kept
 * in a doubly linked list; every adjacent pair that could merge goes into a
 * binary heap keyed by its priority, ties broken by the leftmost position.
 *   - score mode (llama.cpp llm_tokenizer_spm): a pair can merge when the
 *     concatenated text is a token; highest token score first.
 *   - rank mode (HF tokenizers BPE, llama.cpp llm_tokenizer_bpe): a pair can
 *     merge when (left id, right id) is in the merge list; lowest rank first.
 * Popping a pair whose sides have changed since it was pushed is skipped
 * (their lengths no longer add up). Each merge pushes at most two new pairs,
 * so a fragment of n characters costs O(n log n).
 * Symbols left without a token become byte tokens (<0xNN> or the byte-level
 * character) or, failing that, UNK (unk_emit), or are dropped when there is
 * none (HF BPE without unk_token; llama.cpp's byte-level BPE, whose vocabs
 * may lack some of the 256 byte characters: SmolLM2 lacks 21).
 * The byte-level pre-tokenizer is a list of regexes applied one after the
 * other to the pieces the previous one made (bl_split). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t off;   /* into the working string */
    uint32_t n;   /* bytes; 0 once merged into the left neighbour */
    int32_t id;   /* token of this text, -1 when none */
    int32_t prev, next;
} symbol;

typedef struct {
    double key;   /* lower first */
    int32_t left, right;
    uint32_t size;
    int32_t id;   /* result token */
} pair;

typedef struct {
    symbol *sym;
    size_t nsym, capsym;
    pair *heap;
    size_t nheap, capheap;
} work;

static int pair_less(const pair *a, const pair *b) {
    if (a->key != b->key) return a->key < b->key;
    return a->left < b->left;
}

static pl_status heap_push(work *w, pair p) {
    if (w->nheap == w->capheap) {
        size_t nc = w->capheap ? w->capheap * 2 : 256;
        pair *h = realloc(w->heap, nc * sizeof *h);
        if (!h) return pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
        w->heap = h;
        w->capheap = nc;
    }
    size_t i = w->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &w->heap[up])) break;
        w->heap[i] = w->heap[up];
        i = up;
    }
    w->heap[i] = p;
    return PL_OK;
}

static pair heap_pop(work *w) {
    pair top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const pair *best = &last;
        if (l < n && pair_less(&w->heap[l], best)) { m = l; best = &w->heap[l]; }
        if (r < n && pair_less(&w->heap[r], best)) { m = r; }
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n) w->heap[i] = last;
    return top;
}

static size_t utf8_len(uint8_t c) {
    /* by the high nibble, as llama.cpp's unicode_len_utf8 */
    static const uint8_t lut[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lut[c >> 4];
}

/* Length of the character at s[0..n): the lead byte's length when that many
 * continuation bytes follow, else 1. On valid UTF-8 this is llama.cpp's
 * split; on invalid input it keeps a stray lead byte from swallowing the
 * next character (a "▁" included), so decoding gives the bytes back. */
static size_t char_len(const char *s, size_t n) {
    size_t k = utf8_len((uint8_t)s[0]);
    if (k > n) return 1;
    for (size_t j = 1; j < k; j++)
        if (((uint8_t)s[j] & 0xC0) != 0x80) return 1;
    return k;
}

/* Look for a merge of symbols l and r and push it. */
static pl_status try_pair(const pl_tokenizer *t, work *w, const char *s, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return PL_OK;
    symbol *a = &w->sym[l], *b = &w->sym[r];
    pair p = {0, l, r, a->n + b->n, -1};
    if (t->merge_by_score) {
        int32_t id = pl_tokenizer_find(t, s + a->off, (size_t)a->n + b->n);
        if (id < 0) return PL_OK;
        p.id = id;
        p.key = -(double)t->score[id];
    } else {
        if (a->id < 0 || b->id < 0 || !t->mcap) return PL_OK;
        uint64_t key = (uint64_t)(uint32_t)a->id << 32 | (uint32_t)b->id;
        size_t mask = t->mcap - 1;
        uint64_t k = key;
        k ^= k >> 33;
        k *= 0xff51afd7ed558ccdULL;
        k ^= k >> 33;
        size_t h = (size_t)k & mask;
        for (;;) {
            if (t->mkey[h] == UINT64_MAX) return PL_OK;
            if (t->mkey[h] == key) break;
            h = (h + 1) & mask;
        }
        p.id = t->mres[h];
        p.key = (double)t->mrank[h];
    }
    return heap_push(w, p);
}

static pl_status add_symbols(const pl_tokenizer *t, work *w, const char *s, size_t n, int byte_fallback_first) {
    w->nsym = 0;
    w->nheap = 0;
    if (w->capsym < n) {
        symbol *p = realloc(w->sym, n * sizeof *p);
        if (!p) return pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
        w->sym = p;
        w->capsym = n;
    }
    for (size_t off = 0; off < n;) {
        size_t k = char_len(s + off, n - off);
        int32_t id = pl_tokenizer_find(t, s + off, k);
        if (id < 0 && byte_fallback_first) {
            /* HF byte_fallback: an unknown character becomes its bytes before merging */
            int all = 1;
            for (size_t j = 0; j < k; j++) all &= t->byte_tok[(uint8_t)s[off + j]] >= 0;
            if (all) {
                for (size_t j = 0; j < k; j++) {
                    symbol *y = &w->sym[w->nsym];
                    *y = (symbol){off + j, 1, t->byte_tok[(uint8_t)s[off + j]], (int32_t)w->nsym - 1, (int32_t)w->nsym + 1};
                    w->nsym++;
                }
                off += k;
                continue;
            }
        }
        symbol *y = &w->sym[w->nsym];
        *y = (symbol){off, (uint32_t)k, id, (int32_t)w->nsym - 1, (int32_t)w->nsym + 1};
        w->nsym++;
        off += k;
    }
    if (w->nsym) w->sym[w->nsym - 1].next = -1;
    pl_status st;
    for (size_t i = 1; i < w->nsym; i++)
        if ((st = try_pair(t, w, s, (int32_t)i - 1, (int32_t)i))) return st;
    return PL_OK;
}

static pl_status merge_all(const pl_tokenizer *t, work *w, const char *s) {
    pl_status st;
    while (w->nheap) {
        pair p = heap_pop(w);
        symbol *a = &w->sym[p.left], *b = &w->sym[p.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != p.size) continue; /* stale */
        a->n += b->n;
        a->id = p.id;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0) w->sym[b->next].prev = p.left;
        if ((st = try_pair(t, w, s, a->prev, p.left))) return st;
        if ((st = try_pair(t, w, s, p.left, a->next))) return st;
    }
    return PL_OK;
}

static pl_status emit(const pl_tokenizer *t, work *w, const char *s, pl_tokens *out) {
    pl_status st;
    int last_unk = 0;
    for (int32_t i = w->nsym ? 0 : -1; i >= 0; i = w->sym[i].next) {
        symbol *y = &w->sym[i];
        if (y->id >= 0) {
            if ((st = pl_tokens_push(out, y->id))) return st;
            last_unk = 0;
            continue;
        }
        for (uint32_t j = 0; j < y->n; j++) {
            int32_t b = t->byte_tok[(uint8_t)s[y->off + j]];
            if (t->kind == PL_TOK_BYTE_BPE) b = -1; /* the symbol is a mapped character, not a byte */
            if (t->kind == PL_TOK_SPM && !t->merge_by_score && !t->byte_fallback) b = -1;
            if (b >= 0) {
                if ((st = pl_tokens_push(out, b))) return st;
                last_unk = 0;
            } else if (t->unk_emit >= 0) {
                if (t->fuse_unk && last_unk) continue;
                if ((st = pl_tokens_push(out, t->unk_emit))) return st;
                last_unk = 1;
                /* HF BPE: one UNK per character without a token */
                if (t->kind == PL_TOK_BYTE_BPE || !t->merge_by_score) break;
            } /* else dropped, as HF BPE without unk_token and llama.cpp's byte-level BPE do */
        }
    }
    return PL_OK;
}

static pl_status encode_spm(const pl_tokenizer *t, const char *text, size_t n, int add_prefix, pl_tokens *out) {
    /* escape: optional "▁" prefix, every ' ' -> "▁" */
    size_t cap = 3 * n + 4;
    char *s = malloc(cap);
    if (!s) return pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
    size_t m = 0;
    if (add_prefix) { memcpy(s, "\xe2\x96\x81", 3); m = 3; }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') { memcpy(s + m, "\xe2\x96\x81", 3); m += 3; }
        else s[m++] = text[i];
    }
    work w = {0};
    pl_status st = add_symbols(t, &w, s, m, !t->merge_by_score && t->byte_fallback);
    if (!st) st = merge_all(t, &w, s);
    if (!st) st = emit(t, &w, s, out);
    free(w.sym);
    free(w.heap);
    free(s);
    return st;
}

static pl_status encode_word(const pl_tokenizer *t, work *w, const char *s, size_t n, pl_tokens *out) {
    if (t->ignore_merges) {
        int32_t id = pl_tokenizer_find(t, s, n);
        if (id >= 0) return pl_tokens_push(out, id);
    }
    pl_status st = add_symbols(t, w, s, n, 0);
    if (!st) st = merge_all(t, w, s);
    if (!st) st = emit(t, w, s, out);
    return st;
}

/* State of one byte-level encode: the merge work area, the byte-level form
 * of the current word, and one match block per pre-tokenizer step. */
typedef struct {
    const pl_tokenizer *t;
    work w;
    pl_buf word;
    pcre2_match_data *md[TOK_MAX_RE];
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    const char *base;  /* the fragment's start, for error offsets */
    pl_tokens *out;
} bl_ctx;

static pl_status bl_word(bl_ctx *c, const char *s, size_t n) {
    c->word.len = 0;
    pl_status st = tok_bytes_to_level(s, n, &c->word);
    if (!st) st = encode_word(c->t, &c->w, c->word.data, c->word.len, c->out);
    return st;
}

/* Split s[0..n) with regex `step` and hand every piece (each match, and the
 * text between matches: HF Split "Isolated", llama.cpp's offsets) to the
 * next step; after the last step a piece is a word. The regex sees only
 * s[0..n), so a lookahead at its end sees the end of the subject, as in
 * both references. */
static pl_status bl_split(bl_ctx *c, int step, const char *s, size_t n) {
    const pl_tokenizer *t = c->t;
    if (n == 0) return PL_OK;
    if (step == t->n_re) return bl_word(c, s, n);
    pl_status st;
    size_t pos = 0;
    while (pos < n) {
        int rc = pcre2_match(t->re[step], (PCRE2_SPTR)s, n, pos, 0, c->md[step], c->mc);
        size_t ms = n, me = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md[step]);
            ms = ov[0];
            me = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return pl_error(PL_ERR_INTERNAL, "%s: pre-tokenizer regex %d failed at byte %zu: %s", t->name, step + 1,
                            (size_t)(s - c->base) + pos, (char *)msg);
        }
        if (ms > pos && (st = bl_split(c, step + 1, s + pos, ms - pos))) return st;
        if (rc < 0) break;
        if (me > ms) {
            if ((st = bl_split(c, step + 1, s + ms, me - ms))) return st;
            pos = me;
        } else {
            /* empty match: step over one character */
            size_t k = utf8_len((uint8_t)s[ms]);
            if (k > n - ms) k = n - ms;
            if ((st = bl_split(c, step + 1, s + ms, k))) return st;
            pos = ms + k;
        }
    }
    return PL_OK;
}

static pl_status encode_bytelevel(const pl_tokenizer *t, const char *text, size_t n, pl_tokens *out) {
    pl_status st = PL_OK;
    bl_ctx c = {0};
    c.t = t;
    c.base = text;
    c.out = out;
    c.mc = pcre2_match_context_create(NULL);
    c.js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    int ok = c.mc && c.js;
    for (int i = 0; i < t->n_re && ok; i++) ok = (c.md[i] = pcre2_match_data_create_from_pattern(t->re[i], NULL)) != NULL;
    if (!ok) {
        st = pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
    } else {
        pcre2_jit_stack_assign(c.mc, NULL, c.js);
        st = bl_split(&c, 0, text, n);
    }
    for (int i = 0; i < t->n_re; i++)
        if (c.md[i]) pcre2_match_data_free(c.md[i]);
    if (c.mc) pcre2_match_context_free(c.mc);
    if (c.js) pcre2_jit_stack_free(c.js);
    free(c.w.sym);
    free(c.w.heap);
    pl_buf_free(&c.word);
    return st;
}

pl_status tok_encode_fragment(const pl_tokenizer *t, const char *s, size_t n, int add_prefix, pl_tokens *out) {
    if (n == 0) return PL_OK;
    if (t->kind == PL_TOK_SPM) return encode_spm(t, s, n, add_prefix, out);
    return encode_bytelevel(t, s, n, out);
}

/* vocab.c — the token table (texts, types, scores, text->id map, merge-rank
 * map), special-token partitioning, encode/decode entry points and loading
 * dispatch. The merge algorithms live in encode.c, the file formats in hf.c
 * and gguf_vocab.c.
 *
 * Partitioning follows llama.cpp's tokenizer_st_partition: special tokens are
 * tried longest first; each one splits every remaining text fragment at all
 * of its occurrences (left to right). */
#include "tokenizer/tok_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- id lists ----------------------------------------------------------- */

pl_status pl_tokens_push(pl_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        int32_t *p = realloc(t->ids, nc * sizeof *p);
        if (!p) return pl_error(PL_ERR_NOMEM, "tokens: out of memory (%zu ids)", nc);
        t->ids = p;
        t->cap = nc;
    }
    t->ids[t->n++] = id;
    return PL_OK;
}

void pl_tokens_free(pl_tokens *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

/* ---- byte-level mapping (GPT-2 bytes_to_unicode) ------------------------ */

/* Printable bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF map to themselves; the
 * other 68 bytes map, in order, to 256, 257, ... */
static int self_mapped(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

static uint32_t byte_cp[256];
static int cp_byte[324];
static char byte_enc[256][2];
static uint8_t byte_enc_len[256];
static pthread_once_t maps_once = PTHREAD_ONCE_INIT;

static size_t put_utf8(char *o, uint32_t cp);

static void init_maps(void) {
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) cp_byte[i] = -1;
    for (uint32_t b = 0; b < 256; b++) {
        byte_cp[b] = self_mapped(b) ? b : next++;
        cp_byte[byte_cp[b]] = (int)b;
        byte_enc_len[b] = (uint8_t)put_utf8(byte_enc[b], byte_cp[b]);
    }
}

uint32_t tok_byte_to_cp(uint8_t b) {
    pthread_once(&maps_once, init_maps);
    return byte_cp[b];
}

int tok_cp_to_byte(uint32_t cp) {
    pthread_once(&maps_once, init_maps);
    return cp < 324 ? cp_byte[cp] : -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

pl_status tok_bytes_to_level(const char *s, size_t n, pl_buf *b) {
    pthread_once(&maps_once, init_maps);
    pl_status st = pl_buf_reserve(b, 2 * n + 1);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        memcpy(b->data + b->len, byte_enc[c], byte_enc_len[c]);
        b->len += byte_enc_len[c];
    }
    b->data[b->len] = 0;
    return PL_OK;
}

/* ---- regexes ------------------------------------------------------------ */

const char *const tok_regex_llama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char *const tok_regex_gpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const char *const tok_regex_digit = "\\p{N}";
const char *const tok_regex_digits = "\\p{N}+";

pl_status tok_add_regex(pl_tokenizer *t, const char *pattern, size_t len) {
    if (t->n_re >= TOK_MAX_RE)
        return pl_error(PL_ERR_UNSUPPORTED, "%s: pre-tokenizer: more than %d regex steps", t->name, TOK_MAX_RE);
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                   &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return pl_error(PL_ERR_FORMAT, "%s: pre-tokenizer regex: %s at offset %zu", t->name, (char *)msg,
                        (size_t)eoff);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    t->re[t->n_re++] = re;
    return PL_OK;
}

/* ---- construction ------------------------------------------------------- */

pl_status tok_new(const char *name, int32_t n_vocab, int with_scores, pl_tokenizer **out) {
    *out = NULL;
    if (n_vocab <= 0) return pl_error(PL_ERR_FORMAT, "%s: empty vocabulary", name);
    pl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return pl_error(PL_ERR_NOMEM, "tokenizer: out of memory");
    t->name = strdup(name ? name : "<tokenizer>");
    t->n_vocab = n_vocab;
    t->off = calloc((size_t)n_vocab, sizeof *t->off);
    t->len = calloc((size_t)n_vocab, sizeof *t->len);
    t->type = calloc((size_t)n_vocab, 1);
    if (with_scores) t->score = calloc((size_t)n_vocab, sizeof *t->score);
    /* len == UINT32_MAX marks a token whose text is not set yet */
    if (!t->name || !t->off || !t->len || !t->type || (with_scores && !t->score)) {
        pl_tokenizer_free(t);
        return pl_error(PL_ERR_NOMEM, "tokenizer: out of memory (%d tokens)", n_vocab);
    }
    for (int32_t i = 0; i < n_vocab; i++) {
        t->len[i] = UINT32_MAX;
        t->type[i] = PL_TOKT_NORMAL;
    }
    t->bos = t->eos = t->unk = t->pad = t->unk_emit = -1;
    *out = t;
    return PL_OK;
}

/* The pool starts with two size_t words: bytes used and capacity. */
pl_status tok_set_text(pl_tokenizer *t, int32_t id, const char *s, size_t len) {
    if (id < 0 || id >= t->n_vocab) return pl_error(PL_ERR_RANGE, "%s: token id %d out of range", t->name, id);
    if (len >= UINT32_MAX) return pl_error(PL_ERR_FORMAT, "%s: token %d: text too long", t->name, id);
    size_t used = t->pool ? ((size_t *)(void *)t->pool)[0] : sizeof(size_t) * 2;
    size_t cap = t->pool ? ((size_t *)(void *)t->pool)[1] : 0;
    size_t need;
    if (!pl_add_ok(used, len + 1, &need)) return pl_error(PL_ERR_NOMEM, "%s: vocabulary too large", t->name);
    if (need > cap) {
        size_t nc = cap ? cap : 1 << 20;
        while (nc < need) nc *= 2;
        char *p = realloc(t->pool, nc);
        if (!p) return pl_error(PL_ERR_NOMEM, "%s: out of memory for token texts", t->name);
        t->pool = p;
        cap = nc;
    }
    memcpy(t->pool + used, s, len);
    t->pool[used + len] = 0;
    t->off[id] = used;
    t->len[id] = (uint32_t)len;
    ((size_t *)(void *)t->pool)[0] = used + len + 1;
    ((size_t *)(void *)t->pool)[1] = cap;
    return PL_OK;
}

static inline const char *tok_str(const pl_tokenizer *t, int32_t id) { return t->pool + t->off[id]; }

int32_t pl_tokenizer_find(const pl_tokenizer *t, const char *s, size_t len) {
    if (!t->hcap) return -1;
    size_t mask = t->hcap - 1;
    size_t h = (size_t)pl_hash64(s, len, 0x746f6b) & mask;
    for (;;) {
        int32_t id = t->hslot[h];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(tok_str(t, id), s, len) == 0) return id;
        h = (h + 1) & mask;
    }
}

/* Sort specials longest first, then by id (a stable, deterministic order).
 * qsort has no context argument; loading is not expected to run concurrently
 * with another load, but the context is thread-local to be safe. */
static _Thread_local const pl_tokenizer *sort_ctx;
static int cmp_special_q(const void *a, const void *b) {
    const pl_tokenizer *t = sort_ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->len[x] != t->len[y]) return t->len[x] > t->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

pl_status tok_finish(pl_tokenizer *t) {
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->len[i] == UINT32_MAX)
            return pl_error(PL_ERR_FORMAT, "%s: token id %d has no text (ids must be 0..%d without gaps)", t->name,
                            i, t->n_vocab - 1);
    size_t cap = 16;
    while (cap < (size_t)t->n_vocab * 2) cap *= 2;
    t->hslot = malloc(cap * sizeof *t->hslot);
    if (!t->hslot) return pl_error(PL_ERR_NOMEM, "%s: out of memory", t->name);
    memset(t->hslot, 0xff, cap * sizeof *t->hslot);
    t->hcap = cap;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t h = (size_t)pl_hash64(tok_str(t, i), t->len[i], 0x746f6b) & (cap - 1);
        for (;;) {
            int32_t id = t->hslot[h];
            if (id < 0) { t->hslot[h] = i; break; }
            if (t->len[id] == t->len[i] && memcmp(tok_str(t, id), tok_str(t, i), t->len[i]) == 0) {
                t->hslot[h] = i; /* a later duplicate wins, as in llama.cpp */
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n;
        if (t->kind == PL_TOK_SPM) {
            n = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
        } else {
            n = put_utf8(buf, tok_byte_to_cp((uint8_t)b));
        }
        t->byte_tok[b] = pl_tokenizer_find(t, buf, n);
        if (t->kind == PL_TOK_SPM && t->byte_tok[b] >= 0 && t->type[t->byte_tok[b]] != PL_TOKT_BYTE &&
            t->type[t->byte_tok[b]] == PL_TOKT_NORMAL)
            t->type[t->byte_tok[b]] = PL_TOKT_BYTE;
    }
    return tok_specials(t);
}

pl_status tok_specials(pl_tokenizer *t) {
    /* specials: everything that can be matched in text */
    free(t->special);
    size_t ns = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int ty = t->type[i];
        if ((ty == PL_TOKT_CONTROL || ty == PL_TOKT_USER_DEFINED || ty == PL_TOKT_UNKNOWN) && t->len[i] > 0) ns++;
    }
    t->special = malloc((ns ? ns : 1) * sizeof *t->special);
    if (!t->special) return pl_error(PL_ERR_NOMEM, "%s: out of memory", t->name);
    ns = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int ty = t->type[i];
        if ((ty == PL_TOKT_CONTROL || ty == PL_TOKT_USER_DEFINED || ty == PL_TOKT_UNKNOWN) && t->len[i] > 0)
            t->special[ns++] = i;
    }
    t->n_special = ns;
    sort_ctx = t;
    qsort(t->special, ns, sizeof *t->special, cmp_special_q);
    return PL_OK;
}

/* merge map: open addressing on (left << 32 | right) */
static inline size_t mhash(uint64_t k, size_t mask) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

pl_status tok_merges_reserve(pl_tokenizer *t, size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 16) cap *= 2;
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    t->mkey = malloc(cap * sizeof *t->mkey);
    t->mrank = malloc(cap * sizeof *t->mrank);
    t->mres = malloc(cap * sizeof *t->mres);
    if (!t->mkey || !t->mrank || !t->mres) return pl_error(PL_ERR_NOMEM, "%s: out of memory for merges", t->name);
    memset(t->mkey, 0xff, cap * sizeof *t->mkey);
    t->mcap = cap;
    t->n_merges = 0;
    return PL_OK;
}

pl_status tok_add_merge(pl_tokenizer *t, int32_t left, int32_t right, int32_t rank, int *added) {
    *added = 0;
    if ((size_t)(t->n_merges + 1) * 2 > t->mcap)
        return pl_error(PL_ERR_INTERNAL, "%s: merge table not reserved", t->name);
    size_t ll = t->len[left], lr = t->len[right];
    char stack[256];
    char *buf = ll + lr <= sizeof stack ? stack : malloc(ll + lr);
    if (!buf) return pl_error(PL_ERR_NOMEM, "%s: out of memory", t->name);
    memcpy(buf, tok_str(t, left), ll);
    memcpy(buf + ll, tok_str(t, right), lr);
    int32_t res = pl_tokenizer_find(t, buf, ll + lr);
    if (buf != stack) free(buf);
    if (res < 0) return PL_OK;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t mask = t->mcap - 1, h = mhash(key, mask);
    while (t->mkey[h] != UINT64_MAX) {
        if (t->mkey[h] == key) return PL_OK; /* the first (lowest) rank wins */
        h = (h + 1) & mask;
    }
    t->mkey[h] = key;
    t->mrank[h] = rank;
    t->mres[h] = res;
    t->n_merges++;
    *added = 1;
    return PL_OK;
}

void pl_tokenizer_free(pl_tokenizer *t) {
    if (!t) return;
    free(t->name);
    free(t->pool);
    free(t->off);
    free(t->len);
    free(t->score);
    free(t->type);
    free(t->hslot);
    free(t->mkey);
    free(t->mrank);
    free(t->mres);
    free(t->special);
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    free(t);
}

/* ---- properties --------------------------------------------------------- */

pl_tok_kind pl_tokenizer_kind(const pl_tokenizer *t) { return t->kind; }
int32_t pl_tokenizer_n_vocab(const pl_tokenizer *t) { return t->n_vocab; }
int32_t pl_tokenizer_bos(const pl_tokenizer *t) { return t->bos; }
int32_t pl_tokenizer_eos(const pl_tokenizer *t) { return t->eos; }
int32_t pl_tokenizer_unk(const pl_tokenizer *t) { return t->unk; }
int32_t pl_tokenizer_pad(const pl_tokenizer *t) { return t->pad; }
int pl_tokenizer_add_bos(const pl_tokenizer *t) { return t->add_bos; }
int pl_tokenizer_add_eos(const pl_tokenizer *t) { return t->add_eos; }
int pl_tokenizer_add_space_prefix(const pl_tokenizer *t) { return t->prefix_mode != TOK_PREFIX_NONE; }

const char *pl_tokenizer_token_text(const pl_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->len[id];
    return tok_str(t, id);
}

pl_token_type pl_tokenizer_token_type(const pl_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return PL_TOKT_UNDEFINED;
    return (pl_token_type)t->type[id];
}

/* ---- encode ------------------------------------------------------------- */

typedef struct {
    int32_t id; /* -1: text */
    size_t off, len;
} fragment;

typedef struct {
    fragment *v;
    size_t n, cap;
} frag_list;

static int frag_push(frag_list *l, int32_t id, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        fragment *p = realloc(l->v, nc * sizeof *p);
        if (!p) return 0;
        l->v = p;
        l->cap = nc;
    }
    l->v[l->n++] = (fragment){id, off, len};
    return 1;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0 || nn > hn) return NULL;
    const char *end = h + hn - nn + 1;
    for (const char *p = h; p < end;) {
        p = memchr(p, nd[0], (size_t)(end - p));
        if (!p) return NULL;
        if (memcmp(p, nd, nn) == 0) return p;
        p++;
    }
    return NULL;
}

static pl_status partition(const pl_tokenizer *t, const char *text, size_t len, int parse_special, frag_list *out) {
    frag_list a = {0}, b = {0};
    if (!frag_push(&a, -1, 0, len)) return pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
    for (size_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        int ty = t->type[id];
        if (!parse_special && ty != PL_TOKT_USER_DEFINED) continue;
        const char *s = tok_str(t, id);
        size_t sl = t->len[id];
        b.n = 0;
        int found = 0;
        for (size_t f = 0; f < a.n; f++) {
            fragment fr = a.v[f];
            if (fr.id >= 0 || fr.len < sl) {
                if (!frag_push(&b, fr.id, fr.off, fr.len)) goto oom;
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            const char *hit;
            while ((hit = find_bytes(text + pos, end - pos, s, sl))) {
                size_t at = (size_t)(hit - text);
                if (at > pos && !frag_push(&b, -1, pos, at - pos)) goto oom;
                if (!frag_push(&b, id, at, sl)) goto oom;
                pos = at + sl;
                found = 1;
            }
            if (pos < end && !frag_push(&b, -1, pos, end - pos)) goto oom;
        }
        if (found) {
            frag_list tmp = a;
            a = b;
            b = tmp;
        }
    }
    free(b.v);
    *out = a;
    return PL_OK;
oom:
    free(a.v);
    free(b.v);
    return pl_error(PL_ERR_NOMEM, "tokenize: out of memory");
}

pl_status pl_tokenizer_encode(const pl_tokenizer *t, const char *text, size_t len, unsigned flags,
                              pl_tokens *out) {
    pl_status st;
    int add_special = (flags & PL_TOK_ADD_SPECIAL) != 0;
    if (add_special && t->add_bos && t->bos >= 0 && (st = pl_tokens_push(out, t->bos))) return st;
    if (len > 0) {
        frag_list fl = {0};
        if ((st = partition(t, text, len, (flags & PL_TOK_PARSE_SPECIAL) != 0, &fl))) return st;
        int prev_special = 1;
        for (size_t i = 0; i < fl.n && !st; i++) {
            fragment *f = &fl.v[i];
            if (f->id >= 0) {
                st = pl_tokens_push(out, f->id);
                prev_special = 1;
            } else {
                int prefix = (t->prefix_mode == TOK_PREFIX_EVERY && prev_special) ||
                             (t->prefix_mode == TOK_PREFIX_FIRST && f->off == 0);
                st = tok_encode_fragment(t, text + f->off, f->len, prefix, out);
                prev_special = 0;
            }
        }
        free(fl.v);
        if (st) return st;
    }
    if (add_special && t->add_eos && t->eos >= 0 && (st = pl_tokens_push(out, t->eos))) return st;
    return PL_OK;
}

/* ---- decode ------------------------------------------------------------- */

static pl_status append_unescaped(pl_buf *out, const char *s, size_t n) {
    /* SPM: "▁" (E2 96 81) -> ' ' */
    pl_status st = pl_buf_reserve(out, n + 1);
    if (st) return st;
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            out->data[out->len++] = ' ';
            i += 2;
        } else {
            out->data[out->len++] = s[i];
        }
    }
    out->data[out->len] = 0;
    return PL_OK;
}

static pl_status append_bytelevel(pl_buf *out, const char *s, size_t n) {
    pl_status st = pl_buf_reserve(out, n + 1);
    if (st) return st;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        uint32_t cp;
        size_t k;
        if (c < 0x80) { cp = c; k = 1; }
        else if ((c & 0xE0) == 0xC0 && i + 1 < n) { cp = (uint32_t)(c & 0x1F) << 6 | ((uint8_t)s[i + 1] & 0x3F); k = 2; }
        else { cp = 0xFFFFFFFF; k = 1; }
        int b = cp != 0xFFFFFFFF ? tok_cp_to_byte(cp) : -1;
        if (b >= 0) {
            out->data[out->len++] = (char)b;
        } else { /* not a byte-level character: copy the whole UTF-8 sequence */
            size_t m = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (m > n - i) m = n - i;
            memcpy(out->data + out->len, s + i, m);
            out->len += m;
            k = m;
        }
        i += k;
    }
    out->data[out->len] = 0;
    return PL_OK;
}

pl_status pl_tokenizer_decode(const pl_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                              pl_buf *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return pl_error(PL_ERR_RANGE, "decode: token %zu: id %d outside the vocabulary [0, %d)", i, ids[i],
                            t->n_vocab);
    size_t start = out->len;
    int strip = t->kind == PL_TOK_SPM && t->prefix_mode != TOK_PREFIX_NONE && !(flags & PL_TOK_KEEP_PREFIX);
    pl_status st = PL_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int32_t id = ids[i];
        int ty = t->type[id];
        const char *s = tok_str(t, id);
        size_t l = t->len[id];
        size_t before = out->len;
        if (ty == PL_TOKT_CONTROL || ty == PL_TOKT_UNKNOWN || ty == PL_TOKT_UNUSED) {
            if (flags & PL_TOK_RENDER_SPECIAL) st = pl_buf_append(out, s, l);
        } else if (t->kind == PL_TOK_SPM) {
            int byte = -1;
            if (ty == PL_TOKT_BYTE && l == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>') {
                char hx[3] = {s[3], s[4], 0};
                char *end;
                long v = strtol(hx, &end, 16);
                if (*end == 0) byte = (int)v;
            }
            if (byte >= 0) {
                char c = (char)byte;
                st = pl_buf_append(out, &c, 1);
            } else {
                st = append_unescaped(out, s, l);
            }
        } else {
            st = append_bytelevel(out, s, l);
        }
        if (strip && out->len > before) {
            if (before == start && out->data[start] == ' ') {
                memmove(out->data + start, out->data + start + 1, out->len - start - 1);
                out->len--;
                out->data[out->len] = 0;
            }
            strip = 0;
        }
    }
    if (!st && out->data == NULL && (st = pl_buf_reserve(out, 1)) == PL_OK) out->data[out->len] = 0;
    return st;
}

/* ---- loading dispatch --------------------------------------------------- */

pl_status pl_tokenizer_load(const char *path, pl_tokenizer **out) {
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return pl_error(PL_ERR_IO, "%s: cannot open tokenizer (no such file or directory)", path);
    if (S_ISDIR(sb.st_mode)) return pl_tokenizer_load_hf(path, out);
    FILE *fp = fopen(path, "rb");
    if (!fp) return pl_error(PL_ERR_IO, "%s: cannot open", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) return pl_tokenizer_load_gguf(path, out);
    return pl_tokenizer_load_hf(path, out);
}

/* test_tokenizer.c — tokenizers against the references in ../shared:
 *   - llama.cpp's test-tokenizer-0 vectors (vectors/tokenizer: X.gguf.inp /
 *     X.gguf.out, and special/), run against the GGUF vocabs;
 *   - HF semantics (vectors/tokenizers/reference_strings.json, made with
 *     transformers.js) against the tokenizer.json files;
 * plus round trips (decode(encode(s)) == s), bad input, chat templates, the
 * BPE trainer, and a long-input timing guard against quadratic behaviour.
 * SmolLM2 (pre-tokenizer "smollm"): its GGUF vocabulary (models/, `make
 * models`; skipped without it) against HF tokenizers and llama.cpp ids for
 * the reference strings plus edge cases (tests/data/tokenizer/smollm2.*.json,
 * tools/ref/smollm2_tokenizer.py), and the same pipeline around a small
 * committed vocabulary (tests/data/tokenizer/variants/) against HF. */
#include "harness.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>

#include "io/io.h"

static const char *shared;

/* Split an .inp file on "\n__ggml_vocab_test__\n" (the last one ends the file). */
static size_t split_inp(char *data, size_t len, char ***out, size_t **lens) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t n = 0, cap = 64;
    char **v = malloc(cap * sizeof *v);
    size_t *l = malloc(cap * sizeof *l);
    char *p = data, *end = data + len;
    while (p < end) {
        char *hit = NULL;
        for (char *q = p; q + sizeof sep - 1 <= end; q++)
            if (memcmp(q, sep, sizeof sep - 1) == 0) { hit = q; break; }
        if (!hit) break;
        if (n == cap) { cap *= 2; v = realloc(v, cap * sizeof *v); l = realloc(l, cap * sizeof *l); }
        v[n] = p;
        l[n] = (size_t)(hit - p);
        n++;
        p = hit + sizeof sep - 1;
    }
    *out = v;
    *lens = l;
    return n;
}

/* Run every case of an .inp/.out pair; returns matches, *total = cases. */
static int run_pair(const pl_tokenizer *tok, const char *what, const char *inp, const char *outp, unsigned flags,
                    int *total) {
    char *in = NULL, *out = NULL;
    size_t inl, outl;
    *total = 0;
    if (pl_read_file(inp, &in, &inl) || pl_read_file(outp, &out, &outl)) {
        CHECK(0, "%s: cannot read inputs: %.300s", what, pl_errmsg());
        free(in);
        return 0;
    }
    char **cases;
    size_t *clen;
    size_t n = split_inp(in, inl, &cases, &clen);
    int ok = 0, shown = 0;
    char *line = out;
    for (size_t i = 0; i < n; i++) {
        char *nl = line ? strchr(line, '\n') : NULL;
        if (nl) *nl = 0;
        pl_tokens want = {0}, got = {0};
        for (char *p = line; p && *p;) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            pl_tokens_push(&want, (int32_t)v);
            p = e;
        }
        pl_status st = pl_tokenizer_encode(tok, cases[i], clen[i], flags, &got);
        int same = st == PL_OK && got.n == want.n && (got.n == 0 || !memcmp(got.ids, want.ids, got.n * sizeof *got.ids));
        if (same) ok++;
        else if (shown++ < 3) {
            printf("  %s case %zu: '%.*s'\n    want:", what, i, (int)(clen[i] > 60 ? 60 : clen[i]), cases[i]);
            for (size_t k = 0; k < want.n && k < 24; k++) printf(" %d", want.ids[k]);
            printf("\n    got: ");
            for (size_t k = 0; k < got.n && k < 24; k++) printf(" %d", got.ids[k]);
            printf("\n");
        }
        pl_tokens_free(&want);
        pl_tokens_free(&got);
        line = nl ? nl + 1 : NULL;
    }
    *total = (int)n;
    printf("  %-44s %d/%d\n", what, ok, (int)n);
    CHECK(n > 0 && ok == (int)n, "%s: %d of %zu cases match", what, ok, n);
    free(cases);
    free(clen);
    free(in);
    free(out);
    return ok;
}

static pl_tokenizer *load(const char *rel) {
    char p[4096];
    pl_tokenizer *t = NULL;
    pl_status st = pl_tokenizer_load(t_path(p, sizeof p, shared, rel), &t);
    CHECK(st == PL_OK, "load %s: %s", rel, pl_errmsg());
    return t;
}

static void vec(const pl_tokenizer *t, const char *what, const char *inp_rel, const char *out_rel, unsigned flags) {
    char a[4096], b[4096];
    int total;
    if (!t) return;
    run_pair(t, what, t_path(a, sizeof a, shared, inp_rel), t_path(b, sizeof b, shared, out_rel), flags, &total);
}

/* Round trip: decode(encode(s)) == s for every case of an .inp file. */
static void roundtrip(const pl_tokenizer *t, const char *what, const char *inp_rel) {
    char p[4096];
    char *in;
    size_t inl;
    if (!t) return;
    if (pl_read_file(t_path(p, sizeof p, shared, inp_rel), &in, &inl)) { CHECK(0, "%s", pl_errmsg()); return; }
    char **cases;
    size_t *clen;
    size_t n = split_inp(in, inl, &cases, &clen), ok = 0;
    for (size_t i = 0; i < n; i++) {
        pl_tokens ids = {0};
        pl_buf back = {0};
        pl_status st = pl_tokenizer_encode(t, cases[i], clen[i], 0, &ids);
        if (!st) st = pl_tokenizer_decode(t, ids.ids, ids.n, 0, &back);
        if (!st && back.len == clen[i] && (clen[i] == 0 || !memcmp(back.data, cases[i], clen[i]))) ok++;
        else printf("  %s round trip case %zu: '%.*s' -> '%.*s'\n", what, i, (int)clen[i], cases[i], (int)back.len,
                    back.data ? back.data : "");
        pl_tokens_free(&ids);
        pl_buf_free(&back);
    }
    printf("  %-44s %zu/%zu\n", what, ok, n);
    CHECK(ok == n, "%s: %zu of %zu round trips exact", what, ok, n);
    free(cases);
    free(clen);
    free(in);
}

/* HF reference strings: "ids" = add_special_tokens false, "ids_with_special"
 * = true; HF always recognizes added tokens in the text (parse_special). */
static void hf_refs(const pl_tokenizer *t, const cJSON *arr, const char *what) {
    if (!t) return;
    int n = 0, ok = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        for (int ws = 0; ws < 2; ws++) {
            const cJSON *want = cJSON_GetObjectItem(e, ws ? "ids_with_special" : "ids");
            pl_tokens got = {0};
            pl_status st = pl_tokenizer_encode(t, text, strlen(text), PL_TOK_PARSE_SPECIAL | (ws ? PL_TOK_ADD_SPECIAL : 0), &got);
            int same = st == PL_OK && (size_t)cJSON_GetArraySize(want) == got.n;
            for (size_t k = 0; same && k < got.n; k++) same = cJSON_GetArrayItem(want, (int)k)->valueint == got.ids[k];
            n++;
            if (same) ok++;
            else {
                printf("  %s '%s' (%s): want", what, text, ws ? "with special" : "plain");
                const cJSON *w;
                cJSON_ArrayForEach(w, want) printf(" %d", w->valueint);
                printf("\n    got ");
                for (size_t k = 0; k < got.n; k++) printf(" %d", got.ids[k]);
                printf("\n");
            }
            pl_tokens_free(&got);
        }
    }
    printf("  %-44s %d/%d\n", what, ok, n);
    CHECK(n > 0 && ok == n, "%s: %d of %d match", what, ok, n);
}

static void test_hf(void) {
    char p[4096];
    char *js;
    size_t jl;
    if (pl_read_file(t_path(p, sizeof p, shared, "vectors/tokenizers/reference_strings.json"), &js, &jl)) {
        CHECK(0, "%s", pl_errmsg());
        return;
    }
    cJSON *ref = cJSON_Parse(js);
    free(js);
    const char *names[] = {"llama3.1", "mistral", "gemma2"};
    /* the same strings through the GGUF vocabs (llama.cpp semantics): the two
     * references agree on every case once special tokens are parsed */
    const char *ggufs[] = {"llama3.1-bpe", "mistral-v1-spm", "gemma2-spm"};
    for (int i = 0; i < 3; i++) {
        char rel[256], what[128];
        snprintf(rel, sizeof rel, "vectors/tokenizer/ggml-vocab-%s.gguf", ggufs[i]);
        pl_tokenizer *t = load(rel);
        snprintf(what, sizeof what, "GGUF %s vs HF %s strings", ggufs[i], names[i]);
        hf_refs(t, cJSON_GetObjectItem(ref, names[i]), what);
        pl_tokenizer_free(t);
    }
    for (int i = 0; i < 3; i++) {
        char rel[256], what[128];
        snprintf(rel, sizeof rel, "vectors/tokenizers/%s", names[i]);
        pl_tokenizer *t = load(rel);
        snprintf(what, sizeof what, "HF %s reference_strings", names[i]);
        hf_refs(t, cJSON_GetObjectItem(ref, names[i]), what);
        /* llama.cpp's vectors through the HF files (same vocabularies) */
        if (i == 0) {
            vec(t, "HF llama3.1 json vs llama-bpe .out", "vectors/tokenizer/ggml-vocab-llama-bpe.gguf.inp",
                "vectors/tokenizer/ggml-vocab-llama-bpe.gguf.out", 0);
            roundtrip(t, "HF llama3.1 json round trip", "vectors/tokenizer/ggml-vocab-llama-bpe.gguf.inp");
        } else if (i == 1) {
            vec(t, "HF mistral json vs mistral-v1-spm .out", "vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf.inp",
                "vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf.out", 0);
            roundtrip(t, "HF mistral json round trip", "vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf.inp");
        } else {
            vec(t, "HF gemma2 json vs gemma2-spm .out", "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf.inp",
                "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf.out", 0);
            roundtrip(t, "HF gemma2 json round trip", "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf.inp");
        }
        pl_tokenizer_free(t);
    }
    cJSON_Delete(ref);
}

/* llama.cpp's test-tokenizer-0 vectors against the GGUF vocabs. */
static void test_gguf(void) {
    static const struct { const char *gguf, *vec, *what; unsigned flags; } cases[] = {
        {"llama-spm", "ggml-vocab-llama-spm.gguf", "llama-spm", 0},
        {"llama3.1-bpe", "ggml-vocab-llama3.1-bpe.gguf", "llama3.1-bpe", 0},
        {"llama3.1-bpe", "ggml-vocab-llama-bpe.gguf", "llama-bpe vectors on llama3.1 vocab", 0},
        {"mistral-v1-spm", "ggml-vocab-mistral-v1-spm.gguf", "mistral-v1-spm", 0},
        {"mistral-v3-spm", "ggml-vocab-mistral-v3-spm.gguf", "mistral-v3-spm", 0},
        {"gemma2-spm", "ggml-vocab-gemma2-spm.gguf", "gemma2-spm", 0},
        {"llama-spm", "ggml-vocab-tinyllama.gguf", "tinyllama on llama-spm (parse_special)", PL_TOK_PARSE_SPECIAL},
        {"llama3.1-bpe", "special/llama3.1-special", "special/llama3.1", PL_TOK_PARSE_SPECIAL},
        {"mistral-v3-spm", "special/mistral-v3-special", "special/mistral-v3", PL_TOK_PARSE_SPECIAL},
        {"mistral-v1-spm", "special/mistral-v1-special", "special/mistral-v1", PL_TOK_PARSE_SPECIAL},
        {"llama-spm", "special/llama-spm-special", "special/llama-spm", PL_TOK_PARSE_SPECIAL},
        {"gemma2-spm", "special/gemma2-special", "special/gemma2", PL_TOK_PARSE_SPECIAL},
    };
    const char *loaded_name = NULL;
    pl_tokenizer *t = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (!loaded_name || strcmp(loaded_name, cases[i].gguf)) {
            pl_tokenizer_free(t);
            char rel[256];
            snprintf(rel, sizeof rel, "vectors/tokenizer/ggml-vocab-%s.gguf", cases[i].gguf);
            t = load(rel);
            loaded_name = cases[i].gguf;
        }
        char inp[256], out[256];
        const char *ext = strncmp(cases[i].vec, "special/", 8) ? ".inp" : ".inp";
        snprintf(inp, sizeof inp, "vectors/tokenizer/%s%s", cases[i].vec, ext);
        snprintf(out, sizeof out, "vectors/tokenizer/%s.out", cases[i].vec);
        vec(t, cases[i].what, inp, out, cases[i].flags);
        if (cases[i].flags == 0) {
            char what[128];
            snprintf(what, sizeof what, "%s round trip", cases[i].what);
            roundtrip(t, what, inp);
        }
    }
    pl_tokenizer_free(t);
}

/* Line idx (0-based) of a .out file as ids. */
static int out_line(const char *rel, int idx, pl_tokens *ids) {
    char p[4096];
    char *d;
    size_t l;
    if (pl_read_file(t_path(p, sizeof p, shared, rel), &d, &l)) return 0;
    char *line = d;
    for (int i = 0; i < idx && line; i++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    int ok = line != NULL;
    for (char *q = line; q && *q && *q != '\n';) {
        char *e;
        long v = strtol(q, &e, 10);
        if (e == q) break;
        pl_tokens_push(ids, (int32_t)v);
        q = e;
    }
    free(d);
    return ok;
}

static void check_ids(const char *what, const pl_tokens *got, const pl_tokens *want) {
    int same = got->n == want->n && (got->n == 0 || !memcmp(got->ids, want->ids, got->n * sizeof *got->ids));
    if (!same) {
        printf("  %s: want", what);
        for (size_t k = 0; k < want->n; k++) printf(" %d", want->ids[k]);
        printf("\n    got ");
        for (size_t k = 0; k < got->n; k++) printf(" %d", got->ids[k]);
        printf("\n");
    }
    CHECK(same && want->n > 0, "%s: chat prompt ids differ from the reference", what);
}

/* Chat templates against the rendered-template cases of special/ (llama.cpp,
 * parse_special on): the prompt built from ids must equal the reference
 * tokenization of the rendered string. */
static void test_chat(void) {
    static const struct {
        const char *tok, *out;
        int line;
        pl_chat_family fam;
        const char *system, *user;
    } cases[] = {
        {"vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", "vectors/tokenizer/special/llama3.1-special.out", 0,
         PL_CHAT_LLAMA3, "You are a helpful assistant.", "What is 2+2?"},
        {"vectors/tokenizers/llama3.1", "vectors/tokenizer/special/llama3.1-special.out", 0, PL_CHAT_AUTO,
         "You are a helpful assistant.", "What is 2+2?"},
        {"vectors/tokenizer/ggml-vocab-gemma2-spm.gguf", "vectors/tokenizer/special/gemma2-special.out", 0,
         PL_CHAT_GEMMA, NULL, "What is 2+2?"},
        {"vectors/tokenizers/gemma2", "vectors/tokenizer/special/gemma2-special.out", 0, PL_CHAT_AUTO, NULL,
         "What is 2+2?"},
        {"vectors/tokenizer/ggml-vocab-mistral-v3-spm.gguf", "vectors/tokenizer/special/mistral-v3-special.out", 6,
         PL_CHAT_AUTO, "You are helpful.", "Hi"},
        {"vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf", "vectors/tokenizer/special/mistral-v1-special.out", 0,
         PL_CHAT_MISTRAL, "", "hi"},
        {"vectors/tokenizers/mistral", "vectors/tokenizer/special/mistral-v1-special.out", 0, PL_CHAT_AUTO, NULL, "hi"},
        {"vectors/tokenizer/ggml-vocab-llama-spm.gguf", "vectors/tokenizer/special/llama-spm-special.out", 0,
         PL_CHAT_MISTRAL, NULL, "hi"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_tokenizer *t = load(cases[i].tok);
        if (!t) continue;
        pl_tokens want = {0}, got = {0};
        CHECK(out_line(cases[i].out, cases[i].line, &want), "%s: line %d missing", cases[i].out, cases[i].line);
        CHECK_OK(pl_chat_build(t, cases[i].fam, cases[i].system, cases[i].user, NULL, &got));
        char what[256];
        snprintf(what, sizeof what, "chat %s (%s)", cases[i].tok, pl_chat_family_name(pl_chat_detect(t)));
        check_ids(what, &got, &want);
        /* the user text can not inject control tokens */
        if (i == 0) {
            pl_tokens inj = {0};
            CHECK_OK(pl_chat_build(t, PL_CHAT_LLAMA3, NULL, "<|eot_id|>", "Label:", &inj));
            int32_t eot = pl_tokenizer_find(t, "<|eot_id|>", 10);
            size_t neot = 0;
            for (size_t k = 0; k < inj.n; k++) neot += inj.ids[k] == eot;
            CHECK(neot == 1, "user text '<|eot_id|>' became %zu control tokens (want only the template's 1)", neot);
            pl_tokens_free(&inj);
        }
        pl_tokens_free(&want);
        pl_tokens_free(&got);
        pl_tokenizer_free(t);
    }
}

/* ---- tiny hand-made vocabularies (no shared data needed) ------------------ */

/* GGUF v3 builder for metadata-only files. */
typedef struct { pl_buf b; uint64_t nkv; } gb;
static void gb_u32(gb *g, uint32_t v) { pl_buf_append(&g->b, &v, 4); }
static void gb_u64(gb *g, uint64_t v) { pl_buf_append(&g->b, &v, 8); }
static void gb_str(gb *g, const char *s) { gb_u64(g, strlen(s)); pl_buf_append(&g->b, s, strlen(s)); }
static void gb_key(gb *g, const char *k, uint32_t type) { gb_str(g, k); gb_u32(g, type); g->nkv++; }
static void gb_kv_str(gb *g, const char *k, const char *v) { gb_key(g, k, PL_GGUF_STRING); gb_str(g, v); }
static void gb_kv_u32(gb *g, const char *k, uint32_t v) { gb_key(g, k, PL_GGUF_U32); gb_u32(g, v); }
static void gb_kv_bool(gb *g, const char *k, int v) { gb_key(g, k, PL_GGUF_BOOL); uint8_t x = (uint8_t)v; pl_buf_append(&g->b, &x, 1); }
static void gb_kv_strs(gb *g, const char *k, const char *const *v, size_t n) {
    gb_key(g, k, PL_GGUF_ARRAY); gb_u32(g, PL_GGUF_STRING); gb_u64(g, n);
    for (size_t i = 0; i < n; i++) gb_str(g, v[i]);
}
static void gb_kv_f32s(gb *g, const char *k, const float *v, size_t n) {
    gb_key(g, k, PL_GGUF_ARRAY); gb_u32(g, PL_GGUF_F32); gb_u64(g, n); pl_buf_append(&g->b, v, 4 * n);
}
static void gb_kv_i32s(gb *g, const char *k, const int32_t *v, size_t n) {
    gb_key(g, k, PL_GGUF_ARRAY); gb_u32(g, PL_GGUF_I32); gb_u64(g, n); pl_buf_append(&g->b, v, 4 * n);
}
/* header + kvs; the caller frees *out */
static pl_buf gb_finish(gb *g) {
    pl_buf f = {0};
    pl_buf_append(&f, "GGUF", 4);
    uint32_t ver = 3; uint64_t nt = 0;
    pl_buf_append(&f, &ver, 4); pl_buf_append(&f, &nt, 8); pl_buf_append(&f, &g->nkv, 8);
    pl_buf_append(&f, g->b.data, g->b.len);
    pl_buf_free(&g->b);
    return f;
}

static pl_status gguf_tok(const pl_buf *f, pl_tokenizer **t) {
    pl_gguf *g;
    pl_status st = pl_gguf_open_mem(f->data, f->len, "tiny.gguf", &g);
    if (st) return st;
    st = pl_tokenizer_from_gguf(g, t);
    pl_gguf_close(g);
    return st;
}

/* A 10-token SPM vocab; expected ids worked out by hand from the algorithm:
 * highest-score pair first, then byte fallback. */
static const char *const tiny_tokens[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab",
                                          "\xe2\x96\x81" "ab", "<0x63>", "\xe2\x96\x81" "a"};
static const float tiny_scores[] = {0, 0, 0, -1, -2, -3, -5, -4, 0, -6};
static const int32_t tiny_types[] = {2, 3, 3, 1, 1, 1, 1, 1, 6, 1};

static void test_tiny_spm(void) {
    gb g = {0};
    gb_kv_str(&g, "tokenizer.ggml.model", "llama");
    gb_kv_strs(&g, "tokenizer.ggml.tokens", tiny_tokens, 10);
    gb_kv_f32s(&g, "tokenizer.ggml.scores", tiny_scores, 10);
    gb_kv_i32s(&g, "tokenizer.ggml.token_type", tiny_types, 10);
    gb_kv_u32(&g, "tokenizer.ggml.bos_token_id", 1);
    pl_buf f = gb_finish(&g);
    pl_tokenizer *t = NULL;
    CHECK_OK(gguf_tok(&f, &t));
    if (t) {
        /* "ab" -> "▁ab": pairs ▁a (score -6) and ab (-5): ab first, then ▁+ab = ▁ab (7) */
        pl_tokens ids = {0};
        CHECK_OK(pl_tokenizer_encode(t, "ab", 2, PL_TOK_ADD_SPECIAL, &ids));
        CHECK(ids.n == 2 && ids.ids[0] == 1 && ids.ids[1] == 7, "tiny 'ab': got %zu ids [%d %d]", ids.n,
              ids.n > 0 ? ids.ids[0] : -1, ids.n > 1 ? ids.ids[1] : -1);
        /* "ac": ▁a (9) wins over nothing else; "c" falls back to <0x63> (8) */
        ids.n = 0;
        CHECK_OK(pl_tokenizer_encode(t, "ac", 2, 0, &ids));
        CHECK(ids.n == 2 && ids.ids[0] == 9 && ids.ids[1] == 8, "tiny 'ac': got %zu ids", ids.n);
        /* "d" has neither a token nor a byte token: UNK (0) after the ▁ (3) */
        ids.n = 0;
        CHECK_OK(pl_tokenizer_encode(t, "d", 1, 0, &ids));
        CHECK(ids.n == 2 && ids.ids[0] == 3 && ids.ids[1] == 0, "tiny 'd': got %zu ids", ids.n);
        /* decode: byte token -> byte, leading prefix space dropped */
        int32_t d[] = {9, 8, 7};
        pl_buf out = {0};
        CHECK_OK(pl_tokenizer_decode(t, d, 3, 0, &out));
        CHECK(out.data && !strcmp(out.data, "ac ab"), "tiny decode: '%s'", out.data ? out.data : "");
        int32_t bad[] = {3, 10};
        CHECK(pl_tokenizer_decode(t, bad, 2, 0, &out) == PL_ERR_RANGE, "decode of id 10 in a 10-token vocab must fail");
        CHECK(strstr(pl_errmsg(), "10") != NULL, "range error names the id: %s", pl_errmsg());
        int32_t neg[] = {-1};
        CHECK(pl_tokenizer_decode(t, neg, 1, 0, &out) == PL_ERR_RANGE, "decode of id -1 must fail");
        pl_buf_free(&out);
        pl_tokens_free(&ids);
        pl_tokenizer_free(t);
    }
    pl_buf_free(&f);
}

/* Malformed vocabularies: a clear error naming file and field. */
static void expect_err(pl_status st, pl_status want, const char *needle1, const char *needle2, const char *what) {
    CHECK(st == want, "%s: status %s, want %s (%s)", what, pl_status_str(st), pl_status_str(want), pl_errmsg());
    CHECK(strstr(pl_errmsg(), needle1) && (!needle2 || strstr(pl_errmsg(), needle2)),
          "%s: message '%s' should name '%s' and '%s'", what, pl_errmsg(), needle1, needle2 ? needle2 : "");
}

static void test_bad_input(void) {
    pl_tokenizer *t = NULL;
    /* GGUF */
    {
        gb g = {0};
        gb_kv_str(&g, "tokenizer.ggml.model", "llama");
        pl_buf f = gb_finish(&g);
        expect_err(gguf_tok(&f, &t), PL_ERR_FORMAT, "tiny.gguf", "tokenizer.ggml.tokens", "gguf without tokens");
        pl_buf_free(&f);
    }
    {
        gb g = {0};
        gb_kv_str(&g, "tokenizer.ggml.model", "llama");
        gb_kv_strs(&g, "tokenizer.ggml.tokens", tiny_tokens, 10);
        gb_kv_f32s(&g, "tokenizer.ggml.scores", tiny_scores, 9);
        pl_buf f = gb_finish(&g);
        expect_err(gguf_tok(&f, &t), PL_ERR_FORMAT, "tiny.gguf", "tokenizer.ggml.scores", "gguf short scores");
        pl_buf_free(&f);
    }
    {
        gb g = {0};
        gb_kv_str(&g, "tokenizer.ggml.model", "llama");
        gb_kv_strs(&g, "tokenizer.ggml.tokens", tiny_tokens, 10);
        gb_kv_u32(&g, "tokenizer.ggml.bos_token_id", 10);
        pl_buf f = gb_finish(&g);
        expect_err(gguf_tok(&f, &t), PL_ERR_FORMAT, "tiny.gguf", "tokenizer.ggml.bos_token_id", "gguf bos out of range");
        pl_buf_free(&f);
    }
    {
        gb g = {0};
        gb_kv_str(&g, "tokenizer.ggml.model", "gpt2");
        gb_kv_str(&g, "tokenizer.ggml.pre", "llama-bpe");
        gb_kv_strs(&g, "tokenizer.ggml.tokens", tiny_tokens, 10);
        pl_buf f = gb_finish(&g);
        expect_err(gguf_tok(&f, &t), PL_ERR_FORMAT, "tiny.gguf", "tokenizer.ggml.merges", "gpt2 gguf without merges");
        pl_buf_free(&f);
    }
    {
        gb g = {0};
        gb_kv_str(&g, "tokenizer.ggml.model", "bert");
        gb_kv_strs(&g, "tokenizer.ggml.tokens", tiny_tokens, 10);
        gb_kv_bool(&g, "tokenizer.ggml.add_bos_token", 1);
        pl_buf f = gb_finish(&g);
        expect_err(gguf_tok(&f, &t), PL_ERR_UNSUPPORTED, "tiny.gguf", "tokenizer.ggml.model", "unsupported model");
        pl_buf_free(&f);
    }
    /* tokenizer.json */
    static const struct { const char *json; pl_status st; const char *field; } bad[] = {
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []", PL_ERR_FORMAT, "offset"},
        {"{\"model\": {\"type\": \"BPE\", \"merges\": []}}", PL_ERR_FORMAT, "model.vocab"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", PL_ERR_UNSUPPORTED, "model.type"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}, \"normalizer\": "
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}}", PL_ERR_FORMAT, "id 1"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}, \"normalizer\": "
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xe2\x96\x81\"}}", PL_ERR_FORMAT, "model.merges[0]"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}", PL_ERR_FORMAT, "model.vocab"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}",
         PL_ERR_UNSUPPORTED, "normalizer"},
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Sequence\", "
         "\"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}, "
         "{\"type\": \"ByteLevel\"}]}}", PL_ERR_FORMAT, "regex"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char what[64];
        snprintf(what, sizeof what, "bad tokenizer.json #%zu", i);
        expect_err(pl_tokenizer_load_hf_mem(bad[i].json, strlen(bad[i].json), NULL, 0, "bad.json", &t), bad[i].st,
                   "bad.json", bad[i].field, what);
        CHECK(t == NULL, "%s: no tokenizer on failure", what);
    }
    expect_err(pl_tokenizer_load("/nonexistent/tokenizer.json", &t), PL_ERR_IO, "/nonexistent/tokenizer.json", NULL,
               "missing file");
}

/* A 100 KB email must not take quadratic time: every family encodes one in
 * well under a second (the bound is loose for sanitizer builds). */
static void test_long(void) {
    static const char *paths[] = {"vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", "vectors/tokenizer/ggml-vocab-mistral-v3-spm.gguf",
                                  "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf"};
    const double LIMIT_S = 5.0; /* seconds, sanitizer builds included; a quadratic loop takes minutes */
    pl_buf text = {0};
    while (text.len < 100000)
        pl_buf_printf(&text, "Dear customer,\r\n\tyour account #%zu was SUSPENDED!!! Verify at http://x.example/v?id=%zu "
                             "— café résumé 日本語 😀   \n\n", text.len, text.len * 7);
    pl_buf same = {0};
    for (int i = 0; i < 100000; i++) pl_buf_append(&same, "a", 1); /* one long word: one merge chain */
    for (size_t i = 0; i < 3; i++) {
        pl_tokenizer *t = load(paths[i]);
        if (!t) continue;
        pl_tokens ids = {0};
        double t0 = pl_time_now();
        CHECK_OK(pl_tokenizer_encode(t, text.data, text.len, PL_TOK_ADD_SPECIAL, &ids));
        CHECK_OK(pl_tokenizer_encode(t, same.data, same.len, 0, &ids));
        double dt = pl_time_now() - t0;
        printf("  %-44s %.3f s for 200 KB (%zu ids)\n", paths[i] + 18, dt, ids.n);
        CHECK(dt < LIMIT_S, "%s: 200 KB took %.2f s", paths[i], dt);
        pl_buf back = {0};
        pl_tokens one = {0};
        CHECK_OK(pl_tokenizer_encode(t, text.data, text.len, 0, &one));
        CHECK_OK(pl_tokenizer_decode(t, one.ids, one.n, 0, &back));
        CHECK(back.len == text.len && !memcmp(back.data, text.data, text.len), "%s: long round trip differs", paths[i]);
        pl_buf_free(&back);
        pl_tokens_free(&one);
        pl_tokens_free(&ids);
        pl_tokenizer_free(t);
    }
    pl_buf_free(&text);
    pl_buf_free(&same);
}

/* ---- BPE training --------------------------------------------------------- */

static pl_tokenizer *train(const char *const *texts, const size_t *lens, size_t n, int32_t vocab, int32_t minf,
                           char **json_out) {
    pl_bpe_train_opts o = {vocab, minf, 0};
    char *json = NULL;
    size_t jl = 0;
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_bpe_train(texts, lens, n, &o, &json, &jl));
    if (json) CHECK_OK(pl_tokenizer_load_hf_mem(json, jl, NULL, 0, "trained.json", &t));
    if (json_out) *json_out = json;
    else free(json);
    return t;
}

static void test_train(void) {
    /* Hand-worked: words "ab" x1, " ab" x2, " abc" x1 (Llama 3 regex). Pair
     * counts: (a,b) 4, (Ġ,a) 3, (b,c) 1 -> merge a+b; then (Ġ,ab) 3 -> Ġab;
     * then (Ġab,c) 1 -> Ġabc. With min_frequency 2 the last one is not made. */
    const char *txt[] = {"ab ab ab abc"};
    size_t len[] = {strlen(txt[0])};
    char *json = NULL;
    pl_tokenizer *t = train(txt, len, 1, 263, 1, &json);
    if (t) {
        CHECK(pl_tokenizer_n_vocab(t) == 263, "tiny training: %d tokens, want 263", pl_tokenizer_n_vocab(t));
        static const char *want[] = {"ab", "\xc4\xa0" "ab", "\xc4\xa0" "abc"};
        for (int i = 0; i < 3; i++) {
            size_t l;
            const char *s = pl_tokenizer_token_text(t, 260 + i, &l);
            CHECK(s && l == strlen(want[i]) && !memcmp(s, want[i], l), "merge %d: token '%.*s', want '%s'", i,
                  (int)(s ? l : 0), s ? s : "", want[i]);
        }
        cJSON *j = cJSON_Parse(json);
        cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges");
        CHECK(cJSON_GetArraySize(m) == 3 && !strcmp(cJSON_GetArrayItem(m, 1)->valuestring, "\xc4\xa0 ab"),
              "merges list in the JSON");
        cJSON_Delete(j);
        pl_tokens ids = {0};
        CHECK_OK(pl_tokenizer_encode(t, "ab abc", 6, PL_TOK_ADD_SPECIAL, &ids));
        CHECK(ids.n == 3 && ids.ids[0] == 0 && ids.ids[1] == 260 && ids.ids[2] == 262, "encode 'ab abc' with the trained vocab");
        pl_tokens_free(&ids);
        pl_tokenizer_free(t);
    }
    free(json);
    t = train(txt, len, 1, 263, 2, NULL);
    CHECK(t && pl_tokenizer_n_vocab(t) == 262, "min_frequency 2 stops after 2 merges (%d tokens)", t ? pl_tokenizer_n_vocab(t) : 0);
    pl_tokenizer_free(t);

    /* The committed trained file, read by HF tokenizers (tools/ref/tokenizer_hf_check.py) */
    pl_tokenizer *tr = NULL;
    CHECK_OK(pl_tokenizer_load("tests/data/tokenizer/trained-420.json", &tr));
    char *js = NULL;
    size_t jl;
    CHECK_OK(pl_read_file("tests/data/tokenizer/trained-420.hf.json", &js, &jl));
    cJSON *ref = js ? cJSON_Parse(js) : NULL;
    free(js);
    int n = 0, ok = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        if (!tr) break;
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        for (int ws = 0; ws < 2; ws++) {
            const cJSON *want = cJSON_GetObjectItem(c, ws ? "ids_with_special" : "ids");
            pl_tokens got = {0};
            pl_tokenizer_encode(tr, text, strlen(text), PL_TOK_PARSE_SPECIAL | (ws ? PL_TOK_ADD_SPECIAL : 0), &got);
            int same = (size_t)cJSON_GetArraySize(want) == got.n;
            for (size_t k = 0; same && k < got.n; k++) same = cJSON_GetArrayItem(want, (int)k)->valueint == got.ids[k];
            n++;
            ok += same;
            if (!ws) {
                pl_buf back = {0};
                pl_tokenizer_decode(tr, got.ids, got.n, PL_TOK_RENDER_SPECIAL, &back);
                const char *hd = cJSON_GetObjectItem(c, "decoded")->valuestring;
                n++;
                ok += back.len == strlen(hd) && !memcmp(back.data ? back.data : "", hd, back.len);
                pl_buf_free(&back);
            }
            pl_tokens_free(&got);
        }
    }
    printf("  %-44s %d/%d\n", "trained-420.json vs HF tokenizers", ok, n);
    CHECK(n > 0 && ok == n, "trained tokenizer vs HF: %d of %d", ok, n);
    cJSON_Delete(ref);

    /* Training on the corpus again: full vocab, deterministic, lossless */
    char *corpus;
    size_t cl;
    CHECK_OK(pl_read_file("tests/data/tokenizer/corpus.txt", &corpus, &cl));
    if (corpus && tr) {
        const char *ct[] = {corpus};
        char *j1 = NULL, *j2 = NULL;
        pl_tokenizer *a = train(ct, &cl, 1, 420, 2, &j1), *b = train(ct, &cl, 1, 420, 2, &j2);
        CHECK(a && pl_tokenizer_n_vocab(a) == 420, "corpus training gives 420 tokens");
        CHECK(j1 && j2 && !strcmp(j1, j2), "training twice gives the same file");
        pl_tokens ids = {0};
        pl_buf back = {0};
        if (a) {
            CHECK_OK(pl_tokenizer_encode(a, corpus, cl, 0, &ids));
            CHECK_OK(pl_tokenizer_decode(a, ids.ids, ids.n, 0, &back));
            CHECK(back.len == cl && !memcmp(back.data, corpus, cl), "trained tokenizer round trip of the corpus");
            CHECK(ids.n * 5 < cl * 3, "trained tokenizer compresses its corpus below 0.6 ids per byte (%zu ids for %zu bytes)", ids.n, cl);
        }
        pl_tokens_free(&ids);
        pl_buf_free(&back);
        free(j1);
        free(j2);
        pl_tokenizer_free(a);
        pl_tokenizer_free(b);
    }
    free(corpus);
    pl_tokenizer_free(tr);
}

/* Random inputs (ASCII, multi-byte UTF-8, arbitrary bytes including invalid
 * UTF-8 and NULs): encoding never fails and decoding gives the bytes back. */
static void test_random(void) {
    static const char *paths[] = {"vectors/tokenizer/ggml-vocab-llama3.1-bpe.gguf", "vectors/tokenizer/ggml-vocab-mistral-v1-spm.gguf",
                                  "vectors/tokenizer/ggml-vocab-gemma2-spm.gguf", "vectors/tokenizers/mistral"};
    static const char *pieces[] = {" ", "  ", "\n", "\r\n", "\t", "a", "Z", "7", "'s", "!", "\xc3\xa9", "\xe6\x97\xa5",
                                   "\xf0\x9f\x98\x80", "\xc2\xa0", "http://", "<", ">", "ab", "The", "123"};
    pl_rng rng;
    pl_rng_seed(&rng, 20240607);
    for (size_t f = 0; f < sizeof paths / sizeof *paths; f++) {
        pl_tokenizer *t = load(paths[f]);
        if (!t) continue;
        int ok = 0, n = 200;
        for (int i = 0; i < n; i++) {
            pl_buf s = {0};
            int len = (int)pl_rng_below(&rng, 40);
            for (int k = 0; k < len; k++) {
                if (pl_rng_below(&rng, 4) == 0) {
                    char c = (char)pl_rng_below(&rng, 256);
                    pl_buf_append(&s, &c, 1);
                } else {
                    const char *p = pieces[pl_rng_below(&rng, sizeof pieces / sizeof *pieces)];
                    pl_buf_append(&s, p, strlen(p));
                }
            }
            pl_tokens ids = {0};
            pl_buf back = {0};
            pl_status st = pl_tokenizer_encode(t, s.data ? s.data : "", s.len, 0, &ids);
            if (!st) st = pl_tokenizer_decode(t, ids.ids, ids.n, 0, &back);
            /* a literal "▁" (E2 96 81) in the input legitimately decodes to a space in SPM vocabs */
            int exact = !st && back.len == s.len && (s.len == 0 || !memcmp(back.data, s.data, s.len));
            if (exact) ok++;
            else if (i - ok < 3) printf("  random case %d (%zu bytes) not exact: %s\n", i, s.len, st ? pl_errmsg() : "");
            pl_tokens_free(&ids);
            pl_buf_free(&back);
            pl_buf_free(&s);
        }
        printf("  %-44s %d/%d\n", paths[f] + 8, ok, n);
        CHECK(ok == n, "%s: %d of %d random strings round-trip", paths[f], ok, n);
        pl_tokenizer_free(t);
    }
}

/* ---- SmolLM2 (GGUF pre-tokenizer "smollm") ------------------------------- */

#define SMOLLM2_GGUF "models/SmolLM2-135M-Instruct.Q4_1.gguf"

/* ids[] of a JSON array into a pl_tokens. */
static void json_ids(const cJSON *arr, pl_tokens *out) {
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) pl_tokens_push(out, (int32_t)e->valueint);
}

static void print_ids(const char *label, const int32_t *ids, size_t n) {
    printf("    %s", label);
    for (size_t k = 0; k < n; k++) printf(" %d", ids[k]);
    printf("\n");
}

/* Every case of a reference file: encode(text, enc_flags) must equal the ids
 * under key, and decode(those ids, dec_flags) must equal the string under
 * dec_key. Prints and checks the two counts. */
static void smollm2_refs(const pl_tokenizer *t, const cJSON *cases, const char *key, unsigned enc_flags,
                         const char *dec_key, unsigned dec_flags, const char *what) {
    int n = 0, ok = 0, dn = 0, dok = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *jt = cJSON_GetObjectItem(c, "text"), *jw = cJSON_GetObjectItem(c, key);
        const cJSON *jd = cJSON_GetObjectItem(c, dec_key);
        if (!cJSON_IsString(jt) || !cJSON_IsArray(jw) || !cJSON_IsString(jd)) {
            CHECK(0, "%s: case %d lacks text / %s / %s", what, n, key, dec_key);
            return;
        }
        const char *text = jt->valuestring;
        pl_tokens want = {0}, got = {0};
        json_ids(jw, &want);
        pl_status st = pl_tokenizer_encode(t, text, strlen(text), enc_flags, &got);
        int same = st == PL_OK && got.n == want.n && (got.n == 0 || !memcmp(got.ids, want.ids, got.n * sizeof *got.ids));
        n++;
        if (same) ok++;
        else {
            printf("  %s: '%s'\n", what, text);
            print_ids("want", want.ids, want.n);
            print_ids("got ", got.ids, got.n);
        }
        pl_buf back = {0};
        st = pl_tokenizer_decode(t, want.ids, want.n, dec_flags, &back);
        size_t dl = strlen(jd->valuestring);
        dn++;
        if (st == PL_OK && back.len == dl && (dl == 0 || !memcmp(back.data, jd->valuestring, dl))) dok++;
        else printf("  %s decode: '%s' -> '%.*s', want '%s'\n", what, text, (int)back.len, back.data ? back.data : "",
                    jd->valuestring);
        pl_buf_free(&back);
        pl_tokens_free(&want);
        pl_tokens_free(&got);
    }
    printf("  %-44s %d/%d encode, %d/%d decode\n", what, ok, n, dok, dn);
    CHECK(n > 0 && ok == n, "%s: %d of %d encodings match", what, ok, n);
    CHECK(dn > 0 && dok == dn, "%s: %d of %d decodings match", what, dok, dn);
}

static cJSON *read_json(const char *path) {
    char *js = NULL;
    size_t jl;
    if (pl_read_file(path, &js, &jl)) {
        CHECK(0, "%s", pl_errmsg());
        return NULL;
    }
    cJSON *j = cJSON_Parse(js);
    free(js);
    CHECK(j != NULL, "%s: not JSON", path);
    return j;
}

static void test_smollm2(void) {
    struct stat sb;
    if (stat(SMOLLM2_GGUF, &sb) != 0) {
        SKIP("%s absent (`make models` fetches it): SmolLM2 GGUF vocabulary checks not run", SMOLLM2_GGUF);
        return;
    }
    pl_tokenizer *t = NULL;
    CHECK_OK(pl_tokenizer_load(SMOLLM2_GGUF, &t));
    if (!t) return;
    /* what the GGUF declares: gpt2 model, 49152 tokens, BOS 1 / EOS 2 / UNK 0, no BOS added */
    CHECK(pl_tokenizer_kind(t) == PL_TOK_BYTE_BPE && pl_tokenizer_n_vocab(t) == 49152, "SmolLM2: byte-level, 49152 tokens");
    CHECK(pl_tokenizer_bos(t) == 1 && pl_tokenizer_eos(t) == 2 && pl_tokenizer_unk(t) == 0 && !pl_tokenizer_add_bos(t),
          "SmolLM2: bos %d eos %d unk %d add_bos %d", pl_tokenizer_bos(t), pl_tokenizer_eos(t), pl_tokenizer_unk(t),
          pl_tokenizer_add_bos(t));
    cJSON *hf = read_json("tests/data/tokenizer/smollm2.hf.json");
    cJSON *ll = read_json("tests/data/tokenizer/smollm2.llama.json");
    if (hf) {
        const cJSON *cases = cJSON_GetObjectItem(hf, "cases");
        /* HF's encode() always splits added tokens out of the text: parse_special */
        smollm2_refs(t, cases, "ids", PL_TOK_PARSE_SPECIAL, "decoded", PL_TOK_RENDER_SPECIAL, "SmolLM2 GGUF vs HF");
        smollm2_refs(t, cases, "ids_with_special", PL_TOK_PARSE_SPECIAL | PL_TOK_ADD_SPECIAL, "decoded",
                     PL_TOK_RENDER_SPECIAL, "SmolLM2 GGUF vs HF (add_special)");
    }
    if (ll) {
        const cJSON *cases = cJSON_GetObjectItem(ll, "cases");
        smollm2_refs(t, cases, "ids", PL_TOK_ADD_SPECIAL, "decoded", 0, "SmolLM2 GGUF vs llama.cpp");
        smollm2_refs(t, cases, "ids_parse_special", PL_TOK_ADD_SPECIAL | PL_TOK_PARSE_SPECIAL, "decoded_special",
                     PL_TOK_RENDER_SPECIAL, "SmolLM2 GGUF vs llama.cpp (special)");
    }
    cJSON_Delete(hf);
    cJSON_Delete(ll);
    pl_tokenizer_free(t);
}

/* The HF loader's byte-level steps without models/: trained-420's vocabulary
 * under SmolLM2's Digits + ByteLevel pipeline and its neighbours, against HF
 * tokenizers (tools/ref/smollm2_tokenizer.py variants). */
static void test_hf_variants(void) {
    cJSON *ref = read_json("tests/data/tokenizer/variants/variants.hf.json");
    if (!ref) return;
    static const char *const names[] = {"digits", "digitruns", "noregex", "nobyte", "nobyte-unk"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char path[256], what[128];
        snprintf(path, sizeof path, "tests/data/tokenizer/variants/%s.json", names[i]);
        snprintf(what, sizeof what, "HF variant %s", names[i]);
        pl_tokenizer *t = NULL;
        CHECK_OK(pl_tokenizer_load(path, &t));
        const cJSON *cases = cJSON_GetObjectItem(ref, names[i]);
        CHECK(cJSON_IsArray(cases), "variants.hf.json: no cases for %s", names[i]);
        if (t && cases) smollm2_refs(t, cases, "ids", PL_TOK_PARSE_SPECIAL, "decoded", PL_TOK_RENDER_SPECIAL, what);
        pl_tokenizer_free(t);
    }
    cJSON_Delete(ref);
}

int main(void) {
    T_BEGIN();
    test_tiny_spm();
    test_bad_input();
    test_train();
    test_smollm2();
    test_hf_variants();
    shared = pl_test_shared();
    if (shared) {
        test_long();
        test_random();
        test_gguf();
        test_chat();
        test_hf();
    }
    return T_END();
}

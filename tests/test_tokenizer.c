/* test_tokenizer.c — tokenizers against the references in ../shared:
 *   - llama.cpp's test-tokenizer-0 vectors (vectors/tokenizer: X.gguf.inp /
 *     X.gguf.out, and special/), run against the GGUF vocabs;
 *   - HF semantics (vectors/tokenizers/reference_strings.json, made with
 *     transformers.js) against the tokenizer.json files;
 * plus round trips (decode(encode(s)) == s), bad input, chat templates, the
 * BPE trainer, and a long-input timing guard against quadratic behaviour. */
#include "harness.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>

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

int main(void) {
    T_BEGIN();
    shared = pl_test_shared();
    if (shared) {
        test_gguf();
        test_hf();
    }
    return T_END();
}

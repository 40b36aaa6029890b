/* gguf_vocab.c — load a tokenizer from a GGUF's tokenizer.ggml.* keys, with
 * llama.cpp's meaning (llama-vocab.cpp, load()):
 *   model "llama" -> SPM merged by piece score; add_space_prefix defaults to
 *                    true (key tokenizer.ggml.add_space_prefix overrides);
 *                    BOS 1 / EOS 2 / UNK 0 unless the keys say otherwise
 *   model "gpt2"  -> byte-level BPE merged by rank (tokenizer.ggml.merges);
 *                    tokenizer.ggml.pre picks the regexes: llama-bpe /
 *                    llama3 / llama-v3 / falcon3 (Llama 3, ignore_merges),
 *                    gpt-2, or smollm (SmolLM / SmolLM2: every \p{N}
 *                    character split off first, then GPT-2's regex on each
 *                    piece, llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM); a
 *                    piece with no token is dropped, as llama.cpp does
 *   tokens (required), scores and token_type (optional, one per token),
 *   bos/eos/unknown/padding_token_id, add_bos_token, add_eos_token.
 * Every array length and id is checked; errors name the file and the key. */
#include "io/io.h"
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

/* Optional token id key: absent -> keep *v; present -> must be a valid id. */
static pl_status opt_id(const pl_gguf *g, const char *key, int32_t n_vocab, int32_t *v) {
    int64_t x;
    pl_status st = pl_gguf_get_i64(g, key, &x);
    if (st == PL_ERR_NOT_FOUND) { pl_error_clear(); return PL_OK; }
    if (st) return st;
    if (x == -1 || x == UINT32_MAX) { *v = -1; return PL_OK; } /* "none", as some converters write it */
    if (x < 0 || x >= n_vocab)
        return pl_error(PL_ERR_FORMAT, "%s: key %s: token id %lld outside the vocabulary [0, %d)", pl_gguf_name(g), key,
                        (long long)x, n_vocab);
    *v = (int32_t)x;
    return PL_OK;
}

static pl_status opt_bool(const pl_gguf *g, const char *key, int *v) {
    pl_status st = pl_gguf_get_bool(g, key, v);
    if (st == PL_ERR_NOT_FOUND) { pl_error_clear(); return PL_OK; }
    return st;
}

pl_status pl_tokenizer_from_gguf(const pl_gguf *g, pl_tokenizer **out) {
    *out = NULL;
    const char *name = pl_gguf_name(g);
    char model[64] = "", pre[64] = "default";
    pl_status st = pl_gguf_get_str_copy(g, "tokenizer.ggml.model", model, sizeof model);
    if (st == PL_ERR_NOT_FOUND) return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.model: missing (no vocabulary in this GGUF)", name);
    if (st) return st;
    st = pl_gguf_get_str_copy(g, "tokenizer.ggml.pre", pre, sizeof pre);
    if (st && st != PL_ERR_NOT_FOUND) return st;
    pl_error_clear();
    pl_tok_kind kind;
    const char *regex[2] = {NULL, NULL};
    int ignore_merges = 0;
    if (!strcmp(model, "llama")) {
        kind = PL_TOK_SPM;
    } else if (!strcmp(model, "gpt2")) {
        kind = PL_TOK_BYTE_BPE;
        if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") || !strcmp(pre, "falcon3")) {
            regex[0] = tok_regex_llama3;
            ignore_merges = 1;
        } else if (!strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2")) {
            regex[0] = tok_regex_gpt2;
        } else if (!strcmp(pre, "smollm")) {
            regex[0] = tok_regex_digit;
            regex[1] = tok_regex_gpt2;
        } else {
            return pl_error(PL_ERR_UNSUPPORTED, "%s: key tokenizer.ggml.pre: pre-tokenizer '%s' is not supported "
                            "(llama-bpe, llama3, gpt-2, smollm are)", name, pre);
        }
    } else {
        return pl_error(PL_ERR_UNSUPPORTED, "%s: key tokenizer.ggml.model: '%s' is not supported (llama, gpt2 are)",
                        name, model);
    }

    pl_gguf_value toks, scores, types, merges;
    if ((st = pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks))) {
        if (st == PL_ERR_NOT_FOUND) return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.tokens: missing", name);
        return st;
    }
    if (toks.arr_type != PL_GGUF_STRING)
        return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.tokens: array of %s, expected strings", name,
                        pl_gguf_type_name(toks.arr_type));
    if (toks.count == 0 || toks.count > INT32_MAX)
        return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.tokens: %llu tokens", name, (unsigned long long)toks.count);
    int32_t n = (int32_t)toks.count;
    int has_scores = pl_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == PL_OK;
    int has_types = pl_gguf_get_arr(g, "tokenizer.ggml.token_type", &types) == PL_OK;
    pl_error_clear();
    if (has_scores && scores.count != toks.count)
        return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.scores: %llu values for %d tokens", name,
                        (unsigned long long)scores.count, n);
    if (has_types && types.count != toks.count)
        return pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.token_type: %llu values for %d tokens", name,
                        (unsigned long long)types.count, n);

    pl_tokenizer *t;
    if ((st = tok_new(name, n, kind == PL_TOK_SPM, &t))) return st;
    t->kind = kind;
    t->merge_by_score = kind == PL_TOK_SPM;
    t->ignore_merges = ignore_merges;
    t->byte_fallback = 1;
    int32_t *ty = NULL;
    for (int32_t i = 0; i < n; i++) {
        const char *s;
        size_t l;
        if ((st = pl_gguf_arr_str(&toks, (uint64_t)i, &s, &l))) goto fail;
        if ((st = tok_set_text(t, i, s, l))) goto fail;
    }
    if (has_scores && (st = pl_gguf_arr_to_f32(&scores, t->score, (size_t)n))) {
        st = pl_error_wrap(st, "%s: key tokenizer.ggml.scores", name);
        goto fail;
    }
    if (has_types) {
        ty = malloc((size_t)n * sizeof *ty);
        if (!ty) { st = pl_error(PL_ERR_NOMEM, "%s: out of memory", name); goto fail; }
        if ((st = pl_gguf_arr_to_i32(&types, ty, (size_t)n))) {
            st = pl_error_wrap(st, "%s: key tokenizer.ggml.token_type", name);
            goto fail;
        }
        for (int32_t i = 0; i < n; i++) {
            if (ty[i] < PL_TOKT_NORMAL || ty[i] > PL_TOKT_BYTE) {
                st = pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.token_type[%d]: unknown type %d", name, i, ty[i]);
                goto fail;
            }
            t->type[i] = (uint8_t)ty[i];
        }
    }
    if ((st = tok_finish(t))) goto fail;

    if (kind == PL_TOK_BYTE_BPE) {
        if ((st = pl_gguf_get_arr(g, "tokenizer.ggml.merges", &merges))) {
            if (st == PL_ERR_NOT_FOUND) st = pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.merges: missing (needed by gpt2 vocabularies)", name);
            goto fail;
        }
        if (merges.arr_type != PL_GGUF_STRING) {
            st = pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.merges: expected an array of strings", name);
            goto fail;
        }
        if ((st = tok_merges_reserve(t, (size_t)merges.count))) goto fail;
        for (uint64_t i = 0; i < merges.count; i++) {
            const char *s;
            size_t l;
            if ((st = pl_gguf_arr_str(&merges, i, &s, &l))) goto fail;
            /* "left right": split on the first space after the first byte */
            const char *sp = l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
            int32_t a = sp ? pl_tokenizer_find(t, s, (size_t)(sp - s)) : -1;
            int32_t b = sp ? pl_tokenizer_find(t, sp + 1, (size_t)(s + l - sp - 1)) : -1;
            if (a < 0 || b < 0) {
                st = pl_error(PL_ERR_FORMAT, "%s: key tokenizer.ggml.merges[%llu]: '%.*s' is not two tokens of the vocabulary",
                              name, (unsigned long long)i, (int)(l > 60 ? 60 : l), s);
                goto fail;
            }
            int added;
            if ((st = tok_add_merge(t, a, b, (int32_t)i, &added))) goto fail;
        }
        for (int i = 0; i < 2 && regex[i]; i++)
            if ((st = tok_add_regex(t, regex[i], strlen(regex[i])))) goto fail;
        t->prefix_mode = TOK_PREFIX_NONE;
        t->bos = t->eos = 11; /* llama.cpp's gpt2 defaults, before the keys */
        if (t->n_vocab <= 11) t->bos = t->eos = -1;
        t->add_bos = 0;
    } else {
        int asp = 1;
        if ((st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &asp))) goto fail;
        t->prefix_mode = asp ? TOK_PREFIX_EVERY : TOK_PREFIX_NONE;
        t->bos = n > 1 ? 1 : -1;
        t->eos = n > 2 ? 2 : -1;
        t->unk = 0;
        t->add_bos = 1;
    }
    if ((st = opt_id(g, "tokenizer.ggml.bos_token_id", n, &t->bos)) ||
        (st = opt_id(g, "tokenizer.ggml.eos_token_id", n, &t->eos)) ||
        (st = opt_id(g, "tokenizer.ggml.unknown_token_id", n, &t->unk)) ||
        (st = opt_id(g, "tokenizer.ggml.padding_token_id", n, &t->pad)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos)))
        goto fail;
    /* llama.cpp writes UNK only from its SPM merge loop; its byte-level BPE
     * drops a character that has no token (tokenizer.ggml.unknown_token_id
     * notwithstanding) */
    t->unk_emit = kind == PL_TOK_SPM ? t->unk : -1;
    free(ty);
    *out = t;
    return PL_OK;
fail:
    free(ty);
    pl_tokenizer_free(t);
    return st;
}

pl_status pl_tokenizer_load_gguf(const char *path, pl_tokenizer **out) {
    *out = NULL;
    pl_gguf *g;
    pl_status st = pl_gguf_open(path, &g);
    if (st) return st;
    st = pl_tokenizer_from_gguf(g, out);
    pl_gguf_close(g);
    return st;
}

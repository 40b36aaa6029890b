/* tok_internal.h — the tokenizer's private representation, shared by the
 * loaders (hf.c, gguf_vocab.c), the algorithms (encode.c) and the rest of the
 * module. Not part of the public API. */
#ifndef PL_TOK_INTERNAL_H
#define PL_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/tokenizer.h"

/* How a "▁" prefix is put in front of text fragments (SPM only). */
enum {
    TOK_PREFIX_NONE = 0,
    TOK_PREFIX_EVERY = 1, /* every fragment (llama.cpp add_space_prefix; HF Prepend normalizer) */
    TOK_PREFIX_FIRST = 2  /* the first fragment of the input only (HF Metaspace prepend_scheme=first) */
};

#define TOK_MAX_RE 4

struct pl_tokenizer {
    char *name;               /* file name for messages */
    pl_tok_kind kind;
    int merge_by_score;       /* 1: SPM score merges (llama.cpp); 0: merges by rank */
    int32_t n_vocab;
    /* token i's text is pool[off[i] .. off[i]+len[i]) */
    char *pool;
    size_t *off;
    uint32_t *len;
    float *score;             /* NULL when unused */
    uint8_t *type;            /* pl_token_type */
    /* text -> id (open addressing, -1 empty) */
    int32_t *hslot;
    size_t hcap;
    /* (left id, right id) -> rank and result id */
    uint64_t *mkey;
    int32_t *mrank, *mres;
    size_t mcap;
    int64_t n_merges;
    int32_t bos, eos, unk, pad;
    int32_t unk_emit;         /* written for a piece with no token; -1 drops it (HF BPE without
                                 model.unk_token; llama.cpp's byte-level BPE always) */
    int add_bos, add_eos;
    int prefix_mode;          /* TOK_PREFIX_* */
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_tok[256];    /* SPM: id of <0xNN>; byte BPE: id of the mapped char; -1 none */
    int32_t *special;         /* tokens matched in text, longest first */
    size_t n_special;
    /* byte-level pre-tokenizer: regexes applied in order, each one splitting
     * every piece the previous one produced (matches and the text between
     * them are both pieces), like llama.cpp's regex_exprs list and HF's
     * Sequence of Split / Digits / ByteLevel(use_regex). None: the whole
     * fragment is one word. */
    pcre2_code *re[TOK_MAX_RE];
    int n_re;
};

/* Token table construction (loaders). */
pl_status tok_new(const char *name, int32_t n_vocab, int with_scores, pl_tokenizer **out);
/* Set token id's text; called once per id before tok_finish. */
pl_status tok_set_text(pl_tokenizer *t, int32_t id, const char *s, size_t len);
/* After every text is set: build the text map (a later id wins on duplicate
 * texts), the byte-token table and the special list. */
pl_status tok_finish(pl_tokenizer *t);
/* Rebuild the list of tokens matched in text (after types changed). */
pl_status tok_specials(pl_tokenizer *t);
/* Register merge (left, right) with rank; result = the token left+right.
 * Returns 0 (skipped) when the result is not in the vocab. */
pl_status tok_add_merge(pl_tokenizer *t, int32_t left, int32_t right, int32_t rank, int *added);
pl_status tok_merges_reserve(pl_tokenizer *t, size_t n);
/* Compile a pre-tokenizer regex (UTF + UCP + JIT) and append it to the
 * pre-tokenizer's list; PL_ERR_UNSUPPORTED past TOK_MAX_RE. */
pl_status tok_add_regex(pl_tokenizer *t, const char *pattern, size_t len);

/* Llama 3's pre-tokenizer regex (case-insensitive contractions spelled out). */
extern const char *const tok_regex_llama3;
/* GPT-2's. */
extern const char *const tok_regex_gpt2;
/* Every numeric character on its own (HF Digits(individual_digits=true),
 * llama.cpp's first "smollm" regex) / numeric runs (Digits without it). */
extern const char *const tok_regex_digit;
extern const char *const tok_regex_digits;

/* GPT-2 bytes_to_unicode: byte -> code point, code point (< 324) -> byte or -1. */
uint32_t tok_byte_to_cp(uint8_t b);
int tok_cp_to_byte(uint32_t cp);
/* Write the byte-level form of s[0..n) into b. */
pl_status tok_bytes_to_level(const char *s, size_t n, pl_buf *b);

/* Encode one text fragment (no specials inside) and append its ids. */
pl_status tok_encode_fragment(const pl_tokenizer *t, const char *s, size_t n, int add_prefix, pl_tokens *out);

#endif

/* tokenizer.h — text <-> token ids for the model families phishlens targets.
 *
 * Two algorithms, each in the flavour its reference implements:
 *   - SentencePiece-style BPE ("SPM"): spaces become U+2581 "▁", an optional
 *     "▁" prefix on every text fragment (add_space_prefix; Llama 2 / Mistral),
 *     none for Gemma; characters without a token fall back to <0xNN> byte
 *     tokens. Loaded from a GGUF vocab it merges by piece score exactly like
 *     llama.cpp's llm_tokenizer_spm; loaded from an HF tokenizer.json it merges
 *     by merge rank like HF tokenizers' BPE model (byte_fallback, fuse_unk).
 *   - Byte-level BPE (Llama 3, SmolLM2): a regex pre-tokenizer (PCRE2, UTF +
 *     UCP, JIT; a list of regexes applied one after the other, as SmolLM2's
 *     digits-then-GPT-2 split needs) cuts the text into words, each byte maps
 *     to a printable code point (GPT-2 bytes_to_unicode), and words are
 *     merged by rank (lowest first); with ignore_merges a word that is itself
 *     a token is emitted whole.
 * Both merge loops keep the symbols of a fragment in a linked list and the
 * candidate pairs in a binary heap: O(n log n) in the fragment length.
 *
 * Special tokens: CONTROL and UNKNOWN tokens are recognized in the text only
 * with PL_TOK_PARSE_SPECIAL; USER_DEFINED tokens always are (llama.cpp's
 * rule; HF's added tokens behave the same when parse_special is on, which is
 * what HF's encode() does). Longer special tokens are matched first.
 *
 * Not done on purpose: Unicode normalization (none of the target tokenizers
 * use one), WordPiece/Unigram models, BPE dropout.
 */
#ifndef PL_TOKENIZER_H
#define PL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct pl_tokenizer pl_tokenizer;

/* Token types, numbered as GGUF's tokenizer.ggml.token_type stores them. */
typedef enum {
    PL_TOKT_UNDEFINED = 0,
    PL_TOKT_NORMAL = 1,
    PL_TOKT_UNKNOWN = 2,
    PL_TOKT_CONTROL = 3,
    PL_TOKT_USER_DEFINED = 4,
    PL_TOKT_UNUSED = 5,
    PL_TOKT_BYTE = 6
} pl_token_type;

typedef enum {
    PL_TOK_SPM = 1,       /* ▁ + byte fallback (Llama 2, Mistral, Gemma) */
    PL_TOK_BYTE_BPE = 2   /* byte-level BPE with regex pre-tokenizer (Llama 3) */
} pl_tok_kind;

/* Encode flags. */
enum {
    PL_TOK_ADD_SPECIAL = 1u,   /* add BOS (and EOS) as the model asks */
    PL_TOK_PARSE_SPECIAL = 2u  /* recognize CONTROL/UNKNOWN token texts in the input */
};
/* Decode flags. */
enum {
    PL_TOK_RENDER_SPECIAL = 1u, /* write CONTROL/UNKNOWN tokens as their text (else nothing) */
    PL_TOK_KEEP_PREFIX = 2u     /* keep the leading space that add_space_prefix inserted */
};

/* A growable id list. Zero-initialize; pl_tokens_free releases. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} pl_tokens;
pl_status pl_tokens_push(pl_tokens *t, int32_t id);
void pl_tokens_free(pl_tokens *t);

/* ---- loading ------------------------------------------------------------ */

/* Load from path: a .gguf file (recognized by its magic), an HF tokenizer.json,
 * or a directory holding tokenizer.json (and optionally tokenizer_config.json).
 * Errors name the file and the field (PL_ERR_FORMAT), PL_ERR_IO, PL_ERR_NOT_FOUND
 * or PL_ERR_UNSUPPORTED (a valid file of a kind not handled). */
pl_status pl_tokenizer_load(const char *path, pl_tokenizer **out);

/* HF tokenizer.json (file or directory). tokenizer_config.json next to it, if
 * present, supplies add_bos_token / add_eos_token. */
pl_status pl_tokenizer_load_hf(const char *path, pl_tokenizer **out);

/* HF from memory: json is tokenizer.json's text, config (may be NULL) the
 * tokenizer_config.json text; name is used in messages. */
pl_status pl_tokenizer_load_hf_mem(const char *json, size_t len, const char *config, size_t config_len,
                                   const char *name, pl_tokenizer **out);

/* GGUF vocab (tokenizer.ggml.* keys; tensors are ignored). */
pl_status pl_tokenizer_load_gguf(const char *path, pl_tokenizer **out);
/* The same from an open GGUF (the model loader's); g may be closed after. */
struct pl_gguf;
pl_status pl_tokenizer_from_gguf(const struct pl_gguf *g, pl_tokenizer **out);

void pl_tokenizer_free(pl_tokenizer *t);

/* ---- properties --------------------------------------------------------- */

pl_tok_kind pl_tokenizer_kind(const pl_tokenizer *t);
int32_t pl_tokenizer_n_vocab(const pl_tokenizer *t);
int32_t pl_tokenizer_bos(const pl_tokenizer *t);   /* -1 when none */
int32_t pl_tokenizer_eos(const pl_tokenizer *t);   /* -1 when none */
int32_t pl_tokenizer_unk(const pl_tokenizer *t);   /* -1 when none */
int32_t pl_tokenizer_pad(const pl_tokenizer *t);   /* -1 when none */
int pl_tokenizer_add_bos(const pl_tokenizer *t);
int pl_tokenizer_add_eos(const pl_tokenizer *t);
int pl_tokenizer_add_space_prefix(const pl_tokenizer *t);
/* Token text as stored in the vocab (▁ / byte-level form), not NUL-terminated.
 * NULL when id is out of range. */
const char *pl_tokenizer_token_text(const pl_tokenizer *t, int32_t id, size_t *len);
pl_token_type pl_tokenizer_token_type(const pl_tokenizer *t, int32_t id);
/* Id of the token whose stored text is exactly s[0..len), or -1. */
int32_t pl_tokenizer_find(const pl_tokenizer *t, const char *s, size_t len);

/* ---- encode / decode ---------------------------------------------------- */

/* Append the ids of text[0..len) to out. Any bytes are accepted (invalid UTF-8
 * falls back to byte tokens, or to UNK where the vocab has no byte tokens). */
pl_status pl_tokenizer_encode(const pl_tokenizer *t, const char *text, size_t len, unsigned flags,
                              pl_tokens *out);

/* Append the text of ids[0..n) to out. PL_ERR_RANGE when an id is outside
 * [0, n_vocab). Byte tokens are reassembled into the original bytes, ▁ becomes
 * a space, byte-level characters become their bytes. Unless
 * PL_TOK_KEEP_PREFIX, one leading space is dropped when the tokenizer adds a
 * space prefix (so decode(encode(s)) == s). */
pl_status pl_tokenizer_decode(const pl_tokenizer *t, const int32_t *ids, size_t n, unsigned flags,
                              pl_buf *out);

/* ---- chat / instruct templates ----------------------------------------- */

typedef enum {
    PL_CHAT_AUTO = 0,     /* guess from the vocab's special tokens */
    PL_CHAT_LLAMA3 = 1,   /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    PL_CHAT_MISTRAL = 2,  /* <s>[INST] ... [/INST] */
    PL_CHAT_GEMMA = 3     /* <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n */
} pl_chat_family;

/* Which family the vocab looks like (LLAMA3 when <|start_header_id|> exists,
 * GEMMA when <start_of_turn> exists, else MISTRAL). */
pl_chat_family pl_chat_detect(const pl_tokenizer *t);
const char *pl_chat_family_name(pl_chat_family f);

/* Build the ids of a one-turn prompt: BOS, optional system text, the user
 * text, the opening of the assistant turn and then assistant_prefix (may be
 * NULL or ""). Special tokens come from the vocab by id (never parsed out of
 * the user's text, so an email cannot inject them); text parts are encoded
 * like the reference encodes the rendered template with parse_special on.
 *   Llama 3.1: <|begin_of_text|>[<|start_header_id|>system<|end_header_id|>\n\n
 *              SYSTEM<|eot_id|>]<|start_header_id|>user<|end_header_id|>\n\n
 *              USER<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nPREFIX
 *   Mistral:   <s>[INST] [SYSTEM\n\n]USER [/INST]PREFIX   ([INST] as a control
 *              token when the vocab has it, else as text)
 *   Gemma:     <bos><start_of_turn>user\n[SYSTEM\n\n]USER<end_of_turn>\n
 *              <start_of_turn>model\nPREFIX
 * Appends to out. PL_ERR_UNSUPPORTED when the vocab lacks a needed token. */
pl_status pl_chat_build(const pl_tokenizer *t, pl_chat_family family, const char *system, const char *user,
                        const char *assistant_prefix, pl_tokens *out);

/* ---- training ----------------------------------------------------------- */

typedef struct {
    int32_t vocab_size;      /* total, including 256 byte tokens and the specials */
    int32_t min_frequency;   /* pairs seen fewer times are not merged (>= 1) */
    int show_progress;
} pl_bpe_train_opts;

/* Learn a byte-level BPE from texts[0..n) (pre-tokenized with the Llama 3
 * regex) and return its HF tokenizer.json text in *json (malloc'd, NUL-
 * terminated). Vocab: 4 specials <|bos|>=0 <|eos|>=1 <|pad|>=2 <|unk|>=3,
 * then the 256 byte characters, then merges in order. Ties between equally
 * frequent pairs go to the pair whose token texts compare smaller
 * (deterministic). */
pl_status pl_bpe_train(const char *const *texts, const size_t *lens, size_t n, const pl_bpe_train_opts *opts,
                       char **json, size_t *json_len);

#endif

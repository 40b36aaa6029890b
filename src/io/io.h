/* io.h — model file formats: GGUF (read + write), safetensors, HF config.json,
 * and the model metadata every other module builds on.
 *
 * GGUF follows the specification in ggml's docs/gguf.md (versions 2 and 3,
 * little-endian only). A file is mapped read-only and validated completely
 * before pl_gguf_open returns: magic, version, counts against the file size,
 * every string length, every metadata value (nested arrays included),
 * general.alignment (a power of two), every tensor info (known ggml type, at
 * most 4 dims, no zero/negative dims, ne[0] a multiple of the block size,
 * element/byte counts free of overflow), duplicate keys and tensor names,
 * and tensor data ranges (aligned, inside the file, non-overlapping). After
 * that, every accessor below is safe on hostile input. A bad file gives
 * PL_ERR_FORMAT with a message "<file>: offset <n>: <what>".
 *
 * Not supported on purpose: GGUF v1 (obsolete since 2023), big-endian files
 * (reported as such), writing in place.
 *
 * Ownership: views (pl_gguf_value, pl_gguf_tensor, string pointers) point into
 * the mapping or into the pl_gguf object and stay valid until pl_gguf_close.
 * Strings inside the file are NOT NUL-terminated (pointer + length); keys and
 * tensor names are (copies kept by the reader).
 */
#ifndef PL_IO_H
#define PL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- ggml tensor types ------------------------------------------------- */

/* ggml's type ids as stored in GGUF tensor infos (tensor/'s pl_dtype uses the
 * same values). Ids 4, 5, 31-33 and 36-38 were removed from ggml and are
 * rejected. */
enum {
    PL_GGML_F32 = 0, PL_GGML_F16 = 1, PL_GGML_Q4_0 = 2, PL_GGML_Q4_1 = 3,
    PL_GGML_Q5_0 = 6, PL_GGML_Q5_1 = 7, PL_GGML_Q8_0 = 8, PL_GGML_Q8_1 = 9,
    PL_GGML_Q2_K = 10, PL_GGML_Q3_K = 11, PL_GGML_Q4_K = 12, PL_GGML_Q5_K = 13,
    PL_GGML_Q6_K = 14, PL_GGML_Q8_K = 15, PL_GGML_IQ2_XXS = 16, PL_GGML_IQ2_XS = 17,
    PL_GGML_IQ3_XXS = 18, PL_GGML_IQ1_S = 19, PL_GGML_IQ4_NL = 20, PL_GGML_IQ3_S = 21,
    PL_GGML_IQ2_S = 22, PL_GGML_IQ4_XS = 23, PL_GGML_I8 = 24, PL_GGML_I16 = 25,
    PL_GGML_I32 = 26, PL_GGML_I64 = 27, PL_GGML_F64 = 28, PL_GGML_IQ1_M = 29,
    PL_GGML_BF16 = 30, PL_GGML_TQ1_0 = 34, PL_GGML_TQ2_0 = 35, PL_GGML_MXFP4 = 39,
    PL_GGML_TYPE_COUNT = 40
};

typedef struct {
    const char *name;   /* "f32", "q4_0", ... as ggml names them */
    int64_t blck;       /* elements per block (1 for plain types) */
    size_t type_size;   /* bytes per block */
} pl_ggml_type_info;

/* Traits of a ggml type id, or NULL for an unknown/removed id. */
const pl_ggml_type_info *pl_ggml_type(uint32_t type);
/* Bytes of n elements of a type; PL_ERR_FORMAT when the type is unknown, n is
 * negative or not a multiple of the block size, or the size overflows. The
 * message names neither file nor tensor: callers wrap it. */
pl_status pl_ggml_nbytes(uint32_t type, int64_t n, size_t *out);

/* ---- GGUF reading ------------------------------------------------------ */

/* Metadata value types (GGUF spec numbering). */
typedef enum {
    PL_GGUF_U8 = 0, PL_GGUF_I8 = 1, PL_GGUF_U16 = 2, PL_GGUF_I16 = 3,
    PL_GGUF_U32 = 4, PL_GGUF_I32 = 5, PL_GGUF_F32 = 6, PL_GGUF_BOOL = 7,
    PL_GGUF_STRING = 8, PL_GGUF_ARRAY = 9, PL_GGUF_U64 = 10, PL_GGUF_I64 = 11,
    PL_GGUF_F64 = 12, PL_GGUF_TYPE_COUNT = 13
} pl_gguf_type;

/* "u8", "i32", "string", "array", ... ("?" for an unknown id). */
const char *pl_gguf_type_name(uint32_t type);

/* A typed view of one metadata value (or of one array element).
 * Scalars are decoded into every field that holds them exactly:
 *   unsigned ints and bool: u (and i when it fits in int64_t), f = (double)value
 *   signed ints:            i (and u when >= 0), f = (double)value
 *   f32/f64:                f (u, i stay 0)
 * is_int says the value is an integer type (bool excluded).
 * Strings: str/len point into the file (not NUL-terminated, may hold any bytes).
 * Arrays: arr_type and count; read elements with pl_gguf_arr_get and friends. */
typedef struct {
    pl_gguf_type type;
    int is_int;
    uint64_t u;
    int64_t i;
    double f;
    const char *str;
    uint64_t len;
    pl_gguf_type arr_type;
    uint64_t count;
    /* internal: raw encoding of the array elements and an optional offset
     * index for variable-size elements (strings, arrays) */
    const uint8_t *raw;
    uint64_t raw_len;
    const uint64_t *index;
} pl_gguf_value;

/* One tensor. ne[0] is the innermost (contiguous) dimension; unused dims = 1. */
typedef struct {
    const char *name;     /* NUL-terminated */
    uint32_t n_dims;      /* 1..4 */
    int64_t ne[4];
    uint32_t type;        /* ggml type id (PL_GGML_*) */
    uint64_t offset;      /* relative to the start of the data section */
    int64_t n_elements;
    uint64_t nbytes;
    const void *data;     /* points into the mapping, read-only */
    uint64_t info_offset; /* file offset of its tensor info (for messages) */
} pl_gguf_tensor;

typedef struct pl_gguf pl_gguf;

/* Map and validate path. On success *out owns the mapping; on failure *out is
 * NULL and the status is PL_ERR_IO (cannot open/map) or PL_ERR_FORMAT. */
pl_status pl_gguf_open(const char *path, pl_gguf **out);

/* The same over a memory buffer that the caller keeps alive (and unchanged)
 * until pl_gguf_close; name is used in messages ("<memory>" when NULL). */
pl_status pl_gguf_open_mem(const void *data, size_t size, const char *name, pl_gguf **out);

/* Unmap and free; NULL is fine. */
void pl_gguf_close(pl_gguf *g);

const char *pl_gguf_name(const pl_gguf *g);        /* path or buffer name */
uint32_t pl_gguf_version(const pl_gguf *g);        /* 2 or 3 */
uint64_t pl_gguf_alignment(const pl_gguf *g);      /* general.alignment or 32 */
uint64_t pl_gguf_data_offset(const pl_gguf *g);    /* file offset of the data section */
uint64_t pl_gguf_file_size(const pl_gguf *g);
const uint8_t *pl_gguf_bytes(const pl_gguf *g);   /* the whole file */

/* Keys, in file order. */
int64_t pl_gguf_n_kv(const pl_gguf *g);
const char *pl_gguf_key(const pl_gguf *g, int64_t i);   /* NULL when i is out of range */
pl_status pl_gguf_kv(const pl_gguf *g, int64_t i, pl_gguf_value *out); /* PL_ERR_RANGE */

/* Look a key up; PL_ERR_NOT_FOUND (message names key and file) when absent. */
pl_status pl_gguf_find(const pl_gguf *g, const char *key, pl_gguf_value *out);
int pl_gguf_has(const pl_gguf *g, const char *key);

/* Typed getters. *v is written only on PL_OK, so preset it to the default and
 * ignore PL_ERR_NOT_FOUND for optional keys. A present key of the wrong type,
 * or an integer that does not fit, gives PL_ERR_FORMAT naming key and file.
 * Integer getters accept any integer type (and bool); float getters accept
 * f32, f64 and integers; pl_gguf_get_bool accepts bool and integers 0/1. */
pl_status pl_gguf_get_u32(const pl_gguf *g, const char *key, uint32_t *v);
pl_status pl_gguf_get_i32(const pl_gguf *g, const char *key, int32_t *v);
pl_status pl_gguf_get_u64(const pl_gguf *g, const char *key, uint64_t *v);
pl_status pl_gguf_get_i64(const pl_gguf *g, const char *key, int64_t *v);
pl_status pl_gguf_get_f32(const pl_gguf *g, const char *key, float *v);
pl_status pl_gguf_get_f64(const pl_gguf *g, const char *key, double *v);
pl_status pl_gguf_get_bool(const pl_gguf *g, const char *key, int *v);
/* String value (pointer into the file, not NUL-terminated). */
pl_status pl_gguf_get_str(const pl_gguf *g, const char *key, const char **s, size_t *len);
/* String value copied into buf with a NUL; PL_ERR_RANGE when it does not fit
 * (cap includes the NUL), PL_ERR_FORMAT when it contains a NUL byte. */
pl_status pl_gguf_get_str_copy(const pl_gguf *g, const char *key, char *buf, size_t cap);
/* Array value; PL_ERR_FORMAT when the key holds something else. */
pl_status pl_gguf_get_arr(const pl_gguf *g, const char *key, pl_gguf_value *out);

/* Element i of an array view (any element type, nested arrays included);
 * PL_ERR_RANGE when i >= count. Strings and arrays are O(1) for top-level
 * arrays (indexed at open) and O(i) inside nested arrays. */
pl_status pl_gguf_arr_get(const pl_gguf_value *arr, uint64_t i, pl_gguf_value *out);
/* String element i (O(1) for top-level string arrays). PL_ERR_RANGE/FORMAT. */
pl_status pl_gguf_arr_str(const pl_gguf_value *arr, uint64_t i, const char **s, size_t *len);
/* Copy a numeric array into dst[0..count) converting to float / int32 / int64.
 * PL_ERR_FORMAT when the element type is not numeric (or, for the integer
 * versions, not an integer or a value does not fit); n must equal count
 * (PL_ERR_RANGE otherwise). */
pl_status pl_gguf_arr_to_f32(const pl_gguf_value *arr, float *dst, size_t n);
pl_status pl_gguf_arr_to_i32(const pl_gguf_value *arr, int32_t *dst, size_t n);
pl_status pl_gguf_arr_to_i64(const pl_gguf_value *arr, int64_t *dst, size_t n);

/* Tensors, in file order. */
int64_t pl_gguf_n_tensors(const pl_gguf *g);
const pl_gguf_tensor *pl_gguf_tensor_at(const pl_gguf *g, int64_t i); /* NULL if out of range */
/* NULL when absent (no error is recorded: absence is often expected). */
const pl_gguf_tensor *pl_gguf_find_tensor(const pl_gguf *g, const char *name);

/* Write a value as text (for `model info` and debugging): numbers, quoted
 * strings (escaped, cut after max_str bytes), arrays as "[type x count]" when
 * longer than max_elems, else element by element. */
pl_status pl_gguf_value_format(const pl_gguf_value *v, pl_buf *out, size_t max_elems, size_t max_str);

/* ---- GGUF writing ------------------------------------------------------ */

/* Build a GGUF in memory (metadata + tensor list), then write it atomically.
 * Keys and tensors are written in the order they were added; tensor data is
 * laid out in that order, each tensor padded to the alignment (32, or the
 * value of a "general.alignment" u32 key when one was added). The writer
 * copies keys, names and metadata; tensor data is NOT copied: the pointer
 * passed to pl_gguf_writer_add_tensor must stay valid until the write.
 * Duplicate keys or tensor names, bad dims or sizes give PL_ERR_INVALID. */
typedef struct pl_gguf_writer pl_gguf_writer;

pl_status pl_gguf_writer_new(pl_gguf_writer **out);
void pl_gguf_writer_free(pl_gguf_writer *w);
/* File version to write: 3 (default) or 2 (same layout, for compatibility tests). */
pl_status pl_gguf_writer_set_version(pl_gguf_writer *w, uint32_t version);

pl_status pl_gguf_writer_add_u8(pl_gguf_writer *w, const char *key, uint8_t v);
pl_status pl_gguf_writer_add_i8(pl_gguf_writer *w, const char *key, int8_t v);
pl_status pl_gguf_writer_add_u16(pl_gguf_writer *w, const char *key, uint16_t v);
pl_status pl_gguf_writer_add_i16(pl_gguf_writer *w, const char *key, int16_t v);
pl_status pl_gguf_writer_add_u32(pl_gguf_writer *w, const char *key, uint32_t v);
pl_status pl_gguf_writer_add_i32(pl_gguf_writer *w, const char *key, int32_t v);
pl_status pl_gguf_writer_add_u64(pl_gguf_writer *w, const char *key, uint64_t v);
pl_status pl_gguf_writer_add_i64(pl_gguf_writer *w, const char *key, int64_t v);
pl_status pl_gguf_writer_add_f32(pl_gguf_writer *w, const char *key, float v);
pl_status pl_gguf_writer_add_f64(pl_gguf_writer *w, const char *key, double v);
pl_status pl_gguf_writer_add_bool(pl_gguf_writer *w, const char *key, int v);
pl_status pl_gguf_writer_add_str(pl_gguf_writer *w, const char *key, const char *s);
pl_status pl_gguf_writer_add_strn(pl_gguf_writer *w, const char *key, const char *s, size_t len);
/* Array of a fixed-size element type (not string/array); data holds n
 * elements in host (little-endian) layout: uint8_t, int32_t, float, ... and
 * uint8_t 0/1 for bool. */
pl_status pl_gguf_writer_add_arr(pl_gguf_writer *w, const char *key, pl_gguf_type elem, const void *data, size_t n);
/* Array of strings; lens may be NULL (then strlen is used). */
pl_status pl_gguf_writer_add_arr_str(pl_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, size_t n);
/* Copy any value (e.g. from a reader: nested arrays included). */
pl_status pl_gguf_writer_add_value(pl_gguf_writer *w, const char *key, const pl_gguf_value *v);

/* Nested arrays from scratch: an "encoded array" is the GGUF array payload
 * (u32 element type, u64 count, elements). Build inner ones with
 * pl_gguf_enc_arr / pl_gguf_enc_arr_str, wrap them with pl_gguf_enc_arr_nested,
 * add the result with pl_gguf_writer_add_enc_arr (which validates it). */
pl_status pl_gguf_enc_arr(pl_buf *out, pl_gguf_type elem, const void *data, size_t n);
pl_status pl_gguf_enc_arr_str(pl_buf *out, const char *const *strs, const size_t *lens, size_t n);
pl_status pl_gguf_enc_arr_nested(pl_buf *out, const pl_buf *inner, size_t n);
pl_status pl_gguf_writer_add_enc_arr(pl_gguf_writer *w, const char *key, const pl_buf *enc);

/* A tensor: ggml type id, 1..4 dims (ne[0] innermost), nbytes must equal the
 * size those dims take in that type. */
pl_status pl_gguf_writer_add_tensor(pl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data, size_t nbytes);

/* The whole file into out (appended), or atomically to path (no partial file
 * is ever visible at path). */
pl_status pl_gguf_writer_to_buf(const pl_gguf_writer *w, pl_buf *out);
pl_status pl_gguf_writer_write(const pl_gguf_writer *w, const char *path);

/* ---- safetensors ------------------------------------------------------- */

/* safetensors (huggingface/safetensors, docs "format"): u64 header length N,
 * N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]},
 * "__metadata__": {str: str}}, then the data (offsets relative to 8 + N).
 * Every file is mapped read-only and validated: header length vs file size,
 * JSON syntax, known dtype, shape (non-negative, at most 8 dims, element and
 * byte counts free of overflow), end - begin == bytes the shape needs, range
 * inside the file, no two tensors overlapping, no duplicate names.
 *
 * pl_st_open accepts a .safetensors file, a sharded index
 * ("model.safetensors.index.json": {"weight_map": {tensor: shard file}}), or
 * a directory holding model.safetensors, model.safetensors.index.json or
 * adapter_model.safetensors (looked for in that order). With an index, every
 * shard it names is opened and every weight_map entry must exist in its shard;
 * tensors are listed shard by shard in header order. */
typedef struct {
    const char *name;      /* NUL-terminated */
    char dtype[12];        /* "F32", "BF16", "I64", ... as in the file */
    uint32_t n_dims;       /* 0..8 (0: a scalar) */
    int64_t shape[8];      /* outermost first, as in the file (row-major) */
    int64_t n_elements;
    uint64_t nbytes;
    const void *data;      /* into the mapping, read-only */
    int ggml_type;         /* matching PL_GGML_* for F32/F16/BF16/F64/I8/I16/I32/I64, else -1 */
    const char *file;      /* the shard it lives in */
} pl_st_tensor;

typedef struct pl_safetensors pl_safetensors;

pl_status pl_st_open(const char *path, pl_safetensors **out);
/* One safetensors file in memory (kept alive by the caller until close). */
pl_status pl_st_open_mem(const void *data, size_t size, const char *name, pl_safetensors **out);
void pl_st_close(pl_safetensors *st);
int64_t pl_st_n_tensors(const pl_safetensors *st);
const pl_st_tensor *pl_st_tensor_at(const pl_safetensors *st, int64_t i);
const pl_st_tensor *pl_st_find(const pl_safetensors *st, const char *name); /* NULL when absent */
/* "__metadata__" value of the first file (NULL when absent). */
const char *pl_st_metadata(const pl_safetensors *st, const char *key);
int pl_st_n_files(const pl_safetensors *st);
/* Bytes per element of a safetensors dtype name, 0 when unknown. */
size_t pl_st_dtype_size(const char *dtype);

/* ---- model metadata ---------------------------------------------------- */

/* What a model file says about its architecture, tokenizer and tensors, from
 * GGUF metadata (llama.cpp's key names, "<arch>.<key>") or an HF directory
 * (config.json, tokenizer.json, *.safetensors). The model module builds its
 * architecture descriptor from this; docs/models.md lists every source key.
 * Unknown integers are -1, absent optional floats 0 (see each field). */
typedef enum { PL_ARCH_UNKNOWN = 0, PL_ARCH_LLAMA, PL_ARCH_MISTRAL, PL_ARCH_GEMMA2 } pl_arch;
typedef enum {
    PL_ROPE_SCALING_NONE = 0,
    PL_ROPE_SCALING_LINEAR,  /* positions divided by factor */
    PL_ROPE_SCALING_LLAMA3,  /* Llama 3.1 per-frequency smoothing (factor, low/high freq factor, original ctx) */
    PL_ROPE_SCALING_YARN,
    PL_ROPE_SCALING_OTHER
} pl_rope_scaling;
typedef enum {
    PL_META_TOK_NONE = 0,         /* no tokenizer found */
    PL_META_TOK_SPM,              /* SentencePiece-style BPE with byte fallback (GGUF "llama"; HF BPE + byte_fallback) */
    PL_META_TOK_BPE,              /* byte-level BPE (GGUF "gpt2"; HF BPE with a ByteLevel pre-tokenizer) */
    PL_META_TOK_OTHER
} pl_meta_tok_kind;

#define PL_META_MAX_DTYPES 16
typedef struct {
    char name[12];           /* "f32", "q4_0", ... (GGUF) or "F32", "BF16", ... (safetensors) */
    int64_t count;           /* tensors */
    uint64_t bytes;
} pl_meta_dtype;

typedef struct {
    char source[8];          /* "gguf" or "hf" */
    char arch_name[32];      /* general.architecture or config.json model_type, verbatim */
    pl_arch arch;            /* family; GGUF arch "llama" stays LLAMA (Mistral GGUFs use it too) */
    int mistral_hint;        /* GGUF: general.name/basename mentions "mistral" (a hint, not an arch) */
    char name[128];          /* general.name / _name_or_path, "" when absent */
    int is_adapter;          /* GGUF general.type == "adapter" */
    char adapter_type[16];   /* adapter.type ("lora") */
    double lora_alpha;       /* adapter.lora.alpha, 0 when absent */
    int vocab_only;          /* no tensors at all */

    /* shape */
    int64_t n_layers;        /* block_count / num_hidden_layers */
    int64_t d_model;         /* embedding_length / hidden_size */
    int64_t n_heads;         /* attention.head_count / num_attention_heads */
    int64_t n_kv_heads;      /* attention.head_count_kv / num_key_value_heads; defaults to n_heads */
    int64_t head_dim;        /* attention.key_length / head_dim; defaults to d_model / n_heads */
    int64_t head_dim_v;      /* attention.value_length; defaults to head_dim */
    int64_t d_ff;            /* feed_forward_length / intermediate_size */
    int64_t n_ctx;           /* context_length / max_position_embeddings */
    int64_t vocab_size;      /* <arch>.vocab_size / vocab_size, else token count, else embedding rows */
    double norm_eps;         /* attention.layer_norm_rms_epsilon / rms_norm_eps; 1e-5 (llama) 1e-6 (gemma2) when absent */

    /* attention */
    double query_pre_attn_scalar; /* scores use q * query_pre_attn_scalar^-1/2: head_dim, except gemma2 GGUF with
                                     46 layers (27B: d_model / n_heads) and HF query_pre_attn_scalar */
    int64_t sliding_window;  /* 0 = none */
    int swa_every;           /* layers with the sliding window: 2 = even layers only (gemma2), 1 = all; 0 if none */
    double attn_softcap;     /* attn_logit_softcapping, 0 = none */
    double final_softcap;    /* final_logit_softcapping, 0 = none */

    /* RoPE */
    int64_t rope_dim;        /* rope.dimension_count; defaults to head_dim */
    double rope_base;        /* rope.freq_base / rope_theta; 10000 when absent */
    int rope_base_given;     /* 1 when the file states it */
    int rope_neox;           /* 1 = rotate halves (gemma2 in llama.cpp), 0 = adjacent pairs (llama GGUF) */
    pl_rope_scaling rope_scaling;
    double rope_factor;      /* rope.scaling.factor / rope_scaling.factor; 0 when none */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 (HF only; GGUF bakes them into rope_freqs) */
    int64_t rope_orig_ctx;   /* rope.scaling.original_context_length / original_max_position_embeddings; -1 */
    int has_rope_freqs;      /* GGUF tensor rope_freqs.weight (llama3 factors per frequency) */

    /* output */
    int tied_output;         /* GGUF: no output.weight; HF: tie_word_embeddings (gemma2 default true) */

    /* tokenizer */
    pl_meta_tok_kind tok_kind;
    char tok_model[32];      /* tokenizer.ggml.model / tokenizer.json model.type */
    char tok_pre[32];        /* tokenizer.ggml.pre, "" when absent */
    int64_t n_tokens;        /* tokens in the vocabulary (GGUF tokens array; tokenizer.json vocab + added) */
    int64_t n_merges;        /* BPE merges, -1 when none */
    int64_t bos_id, eos_id;  /* -1 when absent */

    /* tensors */
    int64_t n_tensors;
    uint64_t tensor_bytes;
    int64_t n_params;        /* total elements */
    int n_dtypes;
    pl_meta_dtype dtypes[PL_META_MAX_DTYPES];
} pl_model_meta;

/* Fill m from an open GGUF. PL_ERR_FORMAT when a required key (architecture,
 * block_count, embedding_length, head_count — not required for vocab-only
 * files) is missing or of the wrong type, or values are inconsistent
 * (d_model not divisible by n_heads without key_length, n_heads not a
 * multiple of n_kv_heads, ...). */
pl_status pl_model_meta_from_gguf(const pl_gguf *g, pl_model_meta *m);
/* Fill m from an HF model directory (config.json required; tokenizer.json
 * and safetensors used when present). */
pl_status pl_model_meta_from_hf(const char *dir, pl_model_meta *m);
/* Either: a directory is read as HF, a file as GGUF. */
pl_status pl_model_meta_load(const char *path, pl_model_meta *m);
/* Names: "llama", "mistral", "gemma2", "unknown"; "none", "linear", "llama3", ...;
 * "spm", "bpe", "other", "none". */
const char *pl_arch_name(pl_arch a);
const char *pl_rope_scaling_name(pl_rope_scaling s);
const char *pl_meta_tok_kind_name(pl_meta_tok_kind k);
/* Human-readable summary (what `phishlens model info` prints) and JSON. */
pl_status pl_model_meta_format(const pl_model_meta *m, pl_buf *out);
pl_status pl_model_meta_json(const pl_model_meta *m, pl_buf *out);

#endif

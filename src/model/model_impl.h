/* model_impl.h — private layout of pl_model, shared by the files of src/model/.
 * Not a public header: other modules use model.h only. */
#ifndef PL_MODEL_IMPL_H
#define PL_MODEL_IMPL_H

#include "model/model.h"
#include "tensor/tensor.h"

/* A weight matrix W [n_out × n_in] in its stored dtype (ggml type id),
 * row-major, rows of row_bytes bytes; data points into a mapped file. */
typedef struct pl_lora_pair pl_lora_pair;
typedef struct {
    const void *data;
    int dtype;
    int64_t n_in, n_out;
    size_t row_bytes;
    const char *name;       /* llama.cpp tensor name, for messages */
    pl_lora_pair *lora;     /* adapters on this matrix (linked list) */
    void *packed;           /* owned copy in tensor's packed layout (mm.c), or NULL;
                             * data stays valid (the mapping), its pages released */
    uint16_t *tiles;        /* owned bf16 tiles (opts.bf16_tiles), or NULL; used for every product
                             * (q, k, v: inside their layer's qkv_tiles, not owned) */
} pl_mat;

/* y += s · B (A x): A [r × n_in], B [n_out × r]. */
struct pl_lora_pair {
    pl_mat a, b;
    float s;
    float *fa, *fb;         /* owned f32 copies that a.data / b.data point to */
    pl_lora_pair *next;
};

typedef struct {
    float *attn_norm;       /* [d] */
    float *ffn_norm;        /* [d] (gemma2: pre-feedforward norm) */
    float *post_attn_norm;  /* [d] gemma2 only */
    float *post_ffn_norm;   /* [d] gemma2 only */
    pl_mat wq, wk, wv, wo;  /* [n_head*hd × d], [n_kv*hd × d] ×2, [d × n_head*hd] */
    pl_mat w_gate, w_up;    /* [n_ff × d] */
    pl_mat w_down;          /* [d × n_ff] */
    uint16_t *gu_tiles;     /* with bf16 tiles: gate and up as one (pl_bf16_glu_tiles_pack;
                             * their own tiles are then NULL), or NULL */
    uint16_t *qkv_tiles;    /* with bf16 tiles: q, k and v's tiles one after another (each
                             * matrix's tiles point into it), which are the tiles of the three
                             * stacked into one [n_q + 2 n_kv × d] (n_q, n_kv multiples of
                             * 32): one product for the three; or NULL */
} pl_layer;

typedef struct pl_src pl_src; /* a loaded file (GGUF or safetensors) */

struct pl_model {
    pl_arch_desc d;
    pl_model_opts opts;
    char *path;
    pl_mat tok_embd;        /* [n_vocab × d] */
    pl_mat output;          /* [n_vocab × d] (== tok_embd when tied) */
    float *out_norm;        /* [d] */
    pl_layer *layers;       /* [n_layer] */
    float *rope_freqs;      /* [n_rot/2] or NULL */
    uint8_t *swa_layer;     /* [n_layer] */
    int hf_layout;          /* 1: HF rows (q/k in rotate-half order) */
    char **names;           /* owned tensor names (HF loads) */
    int n_names;
    int max_lora_rank;      /* largest adapter rank attached (0 = none) */
    int64_t max_n_in;       /* widest matmul input, for scratch sizing */
    /* files kept open (weights point into them) and adapter bookkeeping */
    void **files;
    void (**file_close)(void *);
    int n_files;
    pl_lora_pair **loras;   /* all pairs, for freeing */
    int n_loras;
};

/* ---- matmul (mm.c) ------------------------------------------------------ */

/* Scratch bytes mm_rows needs for T rows of width n_in. */
size_t pl_mm_scratch_bytes(int64_t T, int64_t n_in);
/* Bytes of the lora_tmp the products below take for T rows and adapters of
 * rank up to max_rank: T × max_rank floats, then room for those rows in
 * bf16 (the deltas' second product on tiles). */
size_t pl_mm_lora_tmp_bytes(int64_t T, int max_rank);
/* y[T × n_out] = x[T × n_in] · Wᵀ (+ adapters), using scratch (64-byte
 * aligned, scratch_bytes long) and lora_tmp (pl_mm_lora_tmp_bytes). xa, when
 * not NULL, is x already rounded to bf16 (pl_bf16_rows_set): the bf16 tile
 * products read it instead of rounding x again (the same bits). */
pl_status pl_mm(const pl_model *m, const pl_mat *w, const float *x, const pl_bf16_rows *xa, int64_t T, float *y,
                void *scratch, size_t scratch_bytes, float *lora_tmp);
/* y[T × n_out] += x·Wᵀ (+ adapters), summed into y's values on W's bf16
 * tiles (the residual stream taking a product's output without a separate
 * add); PL_ERR_INVALID where W has no tiles. */
pl_status pl_mm_acc(const pl_model *m, const pl_mat *w, const float *x, const pl_bf16_rows *xa, int64_t T, float *y,
                    void *scratch, size_t scratch_bytes, float *lora_tmp);
/* The gated unit's two products of layer L on bf16 tiles (L->gu_tiles), xa
 * the normed stream's rows: with act and no adapter on gate or up, h gets
 * the bf16 rows of act(gate)·up (*fused = 1); else g and u [T × n_ff] get
 * the two products with their adapters (*fused = 0) and act is the
 * caller's. */
pl_status pl_mm_glu(const pl_model *m, const pl_layer *L, const pl_bf16_rows *xa, pl_glu_act_fn act,
                    pl_bf16_rows *h, float *g, float *u, void *scratch, size_t scratch_bytes, float *lora_tmp,
                    int *fused);
/* Repack the quantized layer matrices and the output matrix into tensor's packed layout when
 * opts.pack_weights and opts.quant_act are set and the active SIMD level
 * has a native packed kernel (no-op otherwise). Called once at load. */
pl_status pl_mm_pack_model(pl_model *m);
/* Free the packed copies. */
void pl_mm_unpack_model(pl_model *m);
/* Row `row` of W as f32 (for embedding lookup). */
void pl_mat_row_f32(const pl_mat *w, int64_t row, float *out);
/* Whether the dtype is one we can multiply. */
int pl_mm_dtype_ok(int dtype);
const char *pl_mm_dtype_name(int dtype);
/* Bytes of one row of n elements of dtype (0 when unsupported or not a
 * multiple of the block size). */
size_t pl_mm_row_bytes(int dtype, int64_t n);

/* fp16 helpers (round to nearest even). */
uint16_t pl_model_f32_to_f16(float f);
float pl_model_f16_to_f32(uint16_t h);

#endif

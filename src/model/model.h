/* model.h — decoder-only transformers (Llama 3.x, Mistral, Gemma 2) for
 * inference: architecture descriptor, weights, KV cache, batched forward,
 * hook points and LoRA adapters applied at inference time.
 *
 * One block implementation reads a descriptor (pl_arch_desc); the three
 * families differ only in their descriptors. Weights stay where the loader
 * put them (mmap'd GGUF or safetensors) in their stored dtype; matmuls go
 * through the tensor module. Only small vectors (norm weights, RoPE
 * frequency factors) are copied to f32.
 *
 * Semantics follow llama.cpp for GGUF files (the reference vectors in
 * ../shared/vectors were made with it) and HF transformers for HF
 * directories (modeling_llama.py, modeling_mistral.py, modeling_gemma2.py).
 * See docs/engine.md.
 *
 * Threads: a pl_model is read-only after loading (adapters are attached
 * before any forward) and may be shared by several runners. A pl_runner and
 * the pl_kv caches it writes belong to one thread at a time; inside a
 * forward, work is split over rows/heads with OpenMP static schedules.
 *
 * Deliberately not here: training (train/), sampling beyond greedy /
 * temperature (cli generate), tokenization (tokenizer/).
 */
#ifndef PL_MODEL_H
#define PL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "io/io.h" /* pl_arch, pl_model_meta */

/* ---- architecture descriptor ------------------------------------------ */

typedef enum { PL_ACT_SILU = 0, PL_ACT_GELU_TANH } pl_act;
/* NORM: rotate adjacent pairs (x[2i], x[2i+1]) — llama.cpp's layout for
 * GGUF llama (the converter permutes q/k rows into it).
 * NEOX: rotate halves (x[i], x[i+d/2]) — HF layout, and gemma2 in GGUF. */
typedef enum { PL_ROPE_NORM = 0, PL_ROPE_NEOX } pl_rope_style;

typedef struct {
    pl_arch arch;           /* io's family: LLAMA, MISTRAL (HF only) or GEMMA2 */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int n_ctx_train;        /* context length the model was trained for */
    int n_rot;              /* rotated dims per head (== head_dim here) */
    float rope_base;        /* theta */
    float norm_eps;         /* RMSNorm epsilon */
    int post_norms;         /* 1: gemma2 pre+post norms around attn and ffn */
    pl_act act;             /* act(gate(x)) * up(x) */
    pl_rope_style rope;
    /* llama3 RoPE scaling: inverse frequency i is divided by rope_freqs[i]
     * (n_rot/2 entries), or NULL for no scaling. Owned by the model. */
    const float *rope_freqs;
    float attn_softcap;     /* 0 = off, else scores = tanh(s/cap)*cap */
    float final_softcap;    /* 0 = off, else logits = tanh(l/cap)*cap */
    int swa_window;         /* 0 = no sliding window */
    const uint8_t *swa_layer; /* [n_layer]: 1 where the window applies */
    float embd_scale;       /* embeddings are multiplied by this (1 or sqrt(d)) */
    int tied_output;        /* 1: the output matrix is token_embd */
    float q_scale;          /* attention scores scale (1/sqrt(head_dim), ...) */
    int gelu_fp16;          /* 1: GELU rounded through fp16 like ggml's CPU table */
    int bos_id, eos_id;     /* -1 when unknown */
} pl_arch_desc;

typedef struct pl_model pl_model;

typedef struct {
    /* Quantized weights (q8_0, q4_0, ...) multiply activations quantized to
     * q8_0, as llama.cpp's CPU backend does (1), or exact f32 (0). */
    int quant_act;
    /* GELU through an fp16 table like ggml (1, default for GGUF gemma2) or
     * exact (0); -1 means "the default for the file kind". */
    int gelu_fp16;
    /* Repack quantized matrices once at load into the layout the matmul
     * kernels stream (tensor.h, packed weights; q4_0/q4_1/q8_0 on AVX-512), the
     * mapped pages released (1), or multiply them in place (0). Same
     * numerics either way up to float summation order. */
    int pack_weights;
    /* Convert the quantized layer matrices and the unembedding once at load
     * to bf16 tiles and run every product with them on the CPU's AMX tiles
     * (tensor.h, bf16 matrix products): activations rounded to bf16 instead
     * of quantized to q8, f32 sums, 2 bytes a weight in memory. Batched
     * prefill (scoring, SHAP variants) runs several times faster; results
     * differ from llama.cpp's by about the activation rounding, and stay
     * independent of batching. Ignored where the CPU has no AMX tiles and
     * when quant_act is 0. */
    int bf16_tiles;
} pl_model_opts;

/* Defaults: quant_act = 1, gelu_fp16 = -1, pack_weights = 1, bf16_tiles = 0. */
pl_model_opts pl_model_opts_default(void);

/* Load a model from a GGUF file or an HF directory (config.json +
 * *.safetensors). Weights stay mapped. Errors: PL_ERR_IO, PL_ERR_FORMAT,
 * PL_ERR_UNSUPPORTED (architecture, dtype), PL_ERR_NOT_FOUND (missing
 * tensor), all naming the file and the tensor or key. opts may be NULL. */
pl_status pl_model_load(const char *path, const pl_model_opts *opts, pl_model **out);
void pl_model_free(pl_model *m);
const pl_arch_desc *pl_model_desc(const pl_model *m);
/* The path it was loaded from (never NULL). */
const char *pl_model_path(const pl_model *m);

/* Attach a LoRA adapter: a llama.cpp adapter GGUF (general.type =
 * adapter, adapter.type = lora) or a PEFT directory (adapter_config.json +
 * adapter_model.safetensors). For every adapted weight W:
 * y = W x + s · B (A x) with s = scale · alpha / r (GGUF with alpha 0:
 * s = scale, as llama.cpp does; PEFT use_rslora: alpha / sqrt(r)).
 * Several adapters may be attached; they add up. A and B are copied to f32
 * (they are small) and the file is closed. q/k rows of B are reordered when
 * the adapter's layout (GGUF: adjacent pairs, PEFT: rotate-half) differs
 * from the model's. Attach adapters before making runners. Errors:
 * PL_ERR_FORMAT, PL_ERR_UNSUPPORTED, PL_ERR_NOT_FOUND (adapted tensor absent
 * from the model) and PL_ERR_INVALID (shape mismatch: an adapter for
 * another base model). On error nothing is attached. */
pl_status pl_model_add_lora(pl_model *m, const char *path, float scale);
/* Parse "FILE[:SCALE]" (scale 1 by default) and attach. */
pl_status pl_model_add_lora_spec(pl_model *m, const char *spec);

/* ---- KV cache ------------------------------------------------------------ */

/* A KV cache holds the keys and values (f32) of one sequence. A cache may
 * be forked from a prefix cache: it then attends to the prefix's first
 * prefix_len positions in place (no copy) and stores only its own
 * positions. While a cache has forks it is frozen (appending to it is an
 * error); it must outlive them. Threads may fork and free forks of one
 * prefix at the same time (the count of forks is atomic) and run forwards
 * on their own forks, each with its own runner. */
typedef struct pl_kv pl_kv;

/* New empty cache for up to capacity own positions (prefix excluded).
 * prefix may be NULL. */
pl_status pl_kv_new(const pl_model *m, int capacity, pl_kv *prefix, pl_kv **out);
/* The same, forked from the first `at` positions of prefix only (0 <= at
 * <= pl_kv_len(prefix); at 0 gives a cache without prefix): a later
 * position of prefix is not seen. The fork hangs from the cache in the
 * chain that holds position at - 1, which it freezes. */
pl_status pl_kv_new_at(const pl_model *m, int capacity, pl_kv *prefix, int at, pl_kv **out);
void pl_kv_free(pl_kv *kv);
/* Number of positions seen (prefix included). */
int pl_kv_len(const pl_kv *kv);
/* Caches forked from this one (it is frozen while > 0). */
int pl_kv_forks(const pl_kv *kv);
/* Caches in its prefix chain, itself included (forks are refused at 16). */
int pl_kv_depth(const pl_kv *kv);
/* Bytes one position takes in a cache of model m (keys and values, f32). */
size_t pl_kv_position_bytes(const pl_model *m);
/* Forget own positions from n on (n >= prefix length). */
pl_status pl_kv_truncate(pl_kv *kv, int n);

/* ---- hooks --------------------------------------------------------------- */

typedef enum {
    PL_HOOK_EMBED = 0,      /* hook_embed           [n_tok, d] (after embd scale) */
    PL_HOOK_RESID_PRE,      /* blocks.L.hook_resid_pre  [n_tok, d] */
    PL_HOOK_Q,              /* blocks.L.attn.hook_q [n_tok, n_head, head_dim] before RoPE */
    PL_HOOK_K,              /* blocks.L.attn.hook_k [n_tok, n_head_kv, head_dim] before RoPE */
    PL_HOOK_V,              /* blocks.L.attn.hook_v [n_tok, n_head_kv, head_dim] */
    PL_HOOK_PATTERN,        /* blocks.L.attn.hook_pattern [n_head, n_tok, n_k] softmax probs */
    PL_HOOK_Z,              /* blocks.L.attn.hook_z [n_tok, n_head, head_dim] */
    PL_HOOK_ATTN_OUT,       /* blocks.L.hook_attn_out [n_tok, d] (after post-norm for gemma2) */
    PL_HOOK_RESID_MID,      /* blocks.L.hook_resid_mid [n_tok, d] */
    PL_HOOK_MLP_POST,       /* blocks.L.mlp.hook_post [n_tok, n_ff] act(gate)*up */
    PL_HOOK_MLP_OUT,        /* blocks.L.hook_mlp_out [n_tok, d] */
    PL_HOOK_RESID_POST,     /* blocks.L.hook_resid_post [n_tok, d] */
    PL_HOOK_LN_FINAL,       /* ln_final.hook_normalized [n_tok, d] */
    PL_HOOK_COUNT
} pl_hook_point;

/* The TransformerLens-style name of a point at a layer ("blocks.3.attn.hook_q"),
 * written into buf. Returns buf. */
const char *pl_hook_name(pl_hook_point p, int layer, char *buf, size_t n);
/* Parse a name back; returns PL_ERR_INVALID for an unknown name. */
pl_status pl_hook_parse(const char *name, pl_hook_point *p, int *layer);

typedef struct {
    pl_hook_point point;
    int layer;              /* -1 for hook_embed and ln_final */
    int seq;                /* index of the sequence in the batch */
    int pos0;               /* position of the sequence's first new token */
    int ndim;
    int64_t shape[3];       /* row-major; data is contiguous */
} pl_hook_info;

/* Called with the activation of one sequence; it may read it or overwrite
 * it in place. Runs on the calling thread, outside parallel regions. */
typedef void (*pl_hook_fn)(const pl_hook_info *info, float *data, void *user);

/* ---- runner (run state) -------------------------------------------------- */

typedef struct pl_runner pl_runner;

/* Run state for batches of up to max_tokens new tokens in total, attending
 * to up to max_ctx positions per sequence. All scratch comes from one
 * arena allocated here; forwards do not allocate. */
pl_status pl_runner_new(const pl_model *m, int max_tokens, int max_ctx, pl_runner **out);
void pl_runner_free(pl_runner *r);

/* Register fn for one point (all layers when layer == -1). fn == NULL
 * removes it. A pattern hook allocates its buffer here. */
pl_status pl_runner_set_hook(pl_runner *r, pl_hook_point p, int layer, pl_hook_fn fn, void *user);
void pl_runner_clear_hooks(pl_runner *r);
/* The registered hooks, one per (point, layer) slot that has a function. */
int pl_runner_hook_count(const pl_runner *r);

/* With ids set (1 <= n <= 64), PL_LOGITS_LAST writes only those vocabulary
 * entries: logits [n_seq, n], the same values as those columns of the full
 * rows (a classifier reads two label logits; on bf16 tiles only their
 * columns of the unembedding are computed). n = 0 goes back to full rows. */
pl_status pl_runner_set_logit_ids(pl_runner *r, const int32_t *ids, int n);

/* One sequence's part of a batch: its cache and its new tokens. */
typedef struct {
    pl_kv *kv;
    const int32_t *tokens;
    int n_tokens;
} pl_seq;

typedef enum {
    PL_LOGITS_NONE = 0,  /* fill the caches only */
    PL_LOGITS_LAST,      /* logits [n_seq, n_vocab] of each sequence's last token */
    PL_LOGITS_ALL        /* logits [sum n_tokens, n_vocab], sequences in order */
} pl_logits_mode;

/* Run the new tokens of n_seq sequences (different lengths allowed) in one
 * batch: append their keys/values to their caches and write logits.
 * Errors: PL_ERR_RANGE (token id, context or batch overflow), PL_ERR_INVALID
 * (a frozen cache, the same cache twice, a cache of another model),
 * PL_ERR_NUMERIC (a non-finite logit). On error no cache changes length. */
pl_status pl_forward(pl_runner *r, const pl_seq *seqs, int n_seq, pl_logits_mode mode, float *logits);

/* ---- batches and lanes (batch.c) ------------------------------------------ */

/* Pack n sequences (need[i] > 0 new tokens each, in order) into batches of
 * at most max_tokens tokens (a longer sequence goes alone) and max_seqs
 * sequences (<= 0: no limit). first[b] gets batch b's first index and
 * first[count] = n (first holds n + 1 entries); returns the count. *lanes
 * holds the lanes available (pl_lanes_available) and gets those to use:
 * lanes only where the tokens fill two batches or more, at most one per
 * such batch. With lanes the batches are evened out for running side by
 * side: their number is rounded up to a multiple of the lanes and batch j
 * ends near j·total/number of the running total (each sequence goes to the
 * batch its midpoint falls in), so batches differ by less than two
 * sequences and no lane is left alone with a short last batch. With one lane it is
 * the greedy packing up to max_tokens. */
size_t pl_batch_plan(const int *need, size_t n, int max_tokens, int max_seqs, int *lanes, size_t *first);

/* Lanes: batches run side by side, one runner per thread, each forward on
 * its thread alone (its products and attention stay on the calling thread
 * inside a parallel region). A row's bits depend neither on its batch nor
 * on the thread count, so lanes change only the time. The lanes a caller
 * may use now for n batches: the thread count (pl_num_threads), 1 inside a
 * parallel region, at most n and max, and as many as pl_lanes_fit allows
 * when each lane holds per_lane bytes. */
int pl_lanes_available(size_t n, int max, size_t per_lane);

/* At most lanes, as many as fit when each lane beyond the first holds
 * per_lane bytes (its runner, caches, activations) in a quarter of the
 * machine's physical memory; at least 1. */
int pl_lanes_fit(int lanes, size_t per_lane);
/* The bytes of a runner's scratch (its arena; allocated by pl_runner_new). */
size_t pl_runner_bytes(const pl_runner *r);

/* Run fn(ctx, lane, b) for every batch b in [0, n_batch), handed out in
 * order to n_lanes threads (lane = the thread's index, 0 .. n_lanes - 1;
 * with one lane: in order on the calling thread, stopping at the first
 * failure). After a failure, batches not yet started are skipped; the
 * failure of the lowest batch is returned with its message. */
typedef pl_status (*pl_lane_fn)(void *ctx, int lane, size_t batch);
pl_status pl_lanes_run(int n_lanes, size_t n_batch, pl_lane_fn fn, void *ctx);

/* ---- model init (init.c) -------------------------------------------------- */

/* A small random model written as a self-contained GGUF (weights + the
 * vocabulary of a tokenizer), for fine-tuning from scratch and for tests.
 * See docs/models.md, section "model init", for the init scheme and the
 * family defaults. Fields set to -1 (or 0 for name) take the family default
 * from pl_model_init_defaults. */
typedef struct {
    pl_arch arch;            /* PL_ARCH_LLAMA, PL_ARCH_MISTRAL (GGUF arch llama) or PL_ARCH_GEMMA2 */
    const char *tokenizer;   /* tokenizer.json / directory (byte-level BPE) or a .gguf (any vocab it holds) */
    int n_layer, d_model, n_head, n_kv_head, head_dim, n_ff, n_ctx;
    double rope_base;
    int window;              /* gemma2 sliding window (every even layer); 0 = none */
    double attn_softcap, final_softcap; /* gemma2 only; 0 = off */
    int tied;                /* 1: no output.weight (the embedding is reused) */
    int llama3_rope;         /* llama: write Llama 3.1 rope_freqs.weight (factor 8, low 1, high 4, orig 8192) */
    int dtype;               /* PL_GGML_F32, PL_GGML_F16 or PL_GGML_BF16 for the matrices */
    uint64_t seed;
    const char *name;        /* general.name; NULL = a family default */
} pl_model_init_opts;

/* Options with every field "unset" (-1) and arch as given. */
pl_model_init_opts pl_model_init_defaults(pl_arch arch);
/* Fill the unset fields with the family defaults and validate everything
 * (PL_ERR_INVALID with a message naming the option). */
pl_status pl_model_init_resolve(pl_model_init_opts *o);
/* Build the GGUF file in memory (appended to out) / write it atomically.
 * The options are resolved first. The vocabulary is checked after embedding:
 * the GGUF must tokenize like the source (PL_ERR_UNSUPPORTED otherwise). */
pl_status pl_model_init_to_buf(const pl_model_init_opts *o, pl_buf *out);
pl_status pl_model_init_write(const pl_model_init_opts *o, const char *path);
/* ---- weight access for interpretability (access.c) ----------------------- */

/* Final RMSNorm weight [n_embd] as applied (HF gemma's 1 + w included). */
const float *pl_model_final_norm(const pl_model *m);
/* Gemma 2 post-attention norm weight [n_embd] as applied; NULL for other
 * families or a bad layer. */
const float *pl_model_post_attn_norm(const pl_model *m, int layer);
/* Row tok of the output (unembedding) matrix as f32 [n_embd]. */
pl_status pl_model_unembed_row(const pl_model *m, int32_t tok, float *out);
/* o_proj of a layer as f32 [n_embd x n_head*head_dim] row-major, attached
 * LoRA adapters added in (W + s B A). */
pl_status pl_model_o_proj_f32(const pl_model *m, int layer, float *out);

#endif

/* train.h — fine-tuning: LoRA (and a linear head) on a frozen base model,
 * backward kernels, objectives, AdamW with warmup + cosine/linear decay,
 * gradient clipping, adapter export.
 *
 * Precision. Training state (activations, LoRA/head parameters, gradients,
 * optimizer moments) is double (pl_real). The frozen base weights stay in
 * their stored dtype and are never expanded wholesale. cfg.precision picks
 * how products are computed: PL_PREC_F32 (default) runs the frozen-weight
 * products in float32 (sgemm over row chunks dequantized on the fly) and the trainable ones through dgemm; PL_PREC_F64 is
 * the double reference (scalar loops, rows dequantized one by one), used by
 * the finite-difference and PyTorch checks. The f32 path is tested against
 * it (docs/training.md).
 *
 * Kernels follow llm.c's style: each states the PyTorch one-liner it
 * implements; every backward is checked against central differences in
 * tests/test_train.c. The whole-model pass follows the same architecture
 * descriptor as src/model (pl_arch_desc) and is tested against pl_forward.
 *
 * Determinism: the summation order of every reduction is fixed by the data
 * layout, never by the thread count; dropout masks come from a counter-based
 * hash of (seed, step, layer, target, token, index), so a recomputed block
 * (gradient checkpointing) sees the same mask.
 *
 * Full fine-tuning (cfg.full) copies every base weight to double: meant
 * for small models. Deliberately not here (yet): data-parallel (MPI) training.
 */
#ifndef PL_TRAIN_H
#define PL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "model/model.h"

typedef double pl_real;

/* ---- kernels (ops.c) ----------------------------------------------------
 * Row-major; T rows (tokens). Backward functions ACCUMULATE (+=) into the
 * gradients of inputs and parameters, like PyTorch's .grad. */

/* y = x * rsqrt(mean(x^2) + eps) * w ; rstd[t] saved for the backward.
 * w is the weight as used (Gemma's 1 + w already folded in). y may equal x. */
void pl_tr_rmsnorm_fwd(pl_real *y, pl_real *rstd, const pl_real *x, const pl_real *w, int64_t T, int n, double eps);
/* dx += d/dx, dw += d/dw (dw may be NULL). x is the forward input. */
void pl_tr_rmsnorm_bwd(pl_real *dx, pl_real *dw, const pl_real *dy, const pl_real *x, const pl_real *rstd,
                       const pl_real *w, int64_t T, int n);

/* RoPE on x [T, n_head, hd] in place at positions pos[T]. inv_freq [n_rot/2]
 * is the angle per position of pair i (base^(-2i/n_rot) / factor_i).
 * neox = 0: pairs (2i, 2i+1); 1: pairs (i, i + n_rot/2). The backward is
 * the inverse rotation applied to the gradient (in place). */
void pl_tr_rope_fwd(pl_real *x, int64_t T, int n_head, int hd, int n_rot, const int32_t *pos,
                    const pl_real *inv_freq, int neox);
void pl_tr_rope_bwd(pl_real *dx, int64_t T, int n_head, int hd, int n_rot, const int32_t *pos,
                    const pl_real *inv_freq, int neox);
/* The same rotations from a table: cs [T, n_rot/2, 2] holds cos, sin of
 * pos[t]·inv_freq[i] (pl_tr_rope_table); inverse = 1 is the backward. */
void pl_tr_rope_table(pl_real *cs, const int32_t *pos, int64_t T, int n_rot, const pl_real *inv_freq);
void pl_tr_rope_apply_table(pl_real *x, int64_t T, int n_head, int hd, int n_rot, const pl_real *cs, int neox,
                            int inverse);
/* inv_freq[i] = base^(-2i/n_rot) / (factors ? factors[i] : 1). */
void pl_tr_rope_inv_freq(pl_real *inv_freq, int n_rot, double base, const float *factors);

/* y = softmax(x) over rows of n;  dx += y * (dy - sum(dy * y)). */
void pl_tr_softmax_fwd(pl_real *y, const pl_real *x, int64_t T, int n);
void pl_tr_softmax_bwd(pl_real *dx, const pl_real *dy, const pl_real *y, int64_t T, int n);

/* Causal self-attention of one sequence with grouped KV heads:
 *   S = softcap(q·kᵀ · scale) (+ -inf where j > i or i - j >= window)
 *   P = softmax(S) ; z = P·v
 * q [T, H*hd], k/v [T, Hkv*hd], z [T, H*hd], P [H, T, T] (saved).
 * softcap 0 = off; window 0 = none. */
typedef struct {
    int n_head, n_head_kv, head_dim;
    double scale, softcap;
    int window;
} pl_tr_attn;
void pl_tr_attn_fwd(const pl_tr_attn *a, pl_real *z, pl_real *P, const pl_real *q, const pl_real *k,
                    const pl_real *v, int64_t T);
pl_status pl_tr_attn_bwd(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                         const pl_real *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T);

/* y[i] = exp(x[i]) (y may equal x): AVX-512 polynomial where the CPU runs
 * it (within a few ulp of libm's exp; inputs outside [-700, 700] and NaN
 * go to libm), else libm's exp. */
void pl_tr_exp_arr(pl_real *y, const pl_real *x, int64_t n);
/* y[i] = bf16((float)x[i]) (nearest even both times; NaN stays NaN). On
 * the AVX-512 path f32 subnormals become signed zeros, as in the AMX
 * products' own conversion (pl_matmul_bf16 and friends). */
void pl_tr_to_bf16(uint16_t *y, const pl_real *x, int64_t n);
/* The same into yb, and yf[i] = (float)x[i] from the same read of x. */
void pl_tr_to_bf16_f32(uint16_t *yb, float *yf, const pl_real *x, int64_t n);
/* y[i] = bf16(x[i]) from floats: the bits of pl_tr_to_bf16 on (double)x. */
void pl_tr_f32_to_bf16(uint16_t *y, const float *x, int64_t n);
/* y[i] = (float)(x[i]·s) ; y[i] += (double)x[i]  (AVX-512 where the CPU
 * runs it; the same bits as the scalar loops) */
void pl_tr_scale_f32(float *y, const pl_real *x, double s, int64_t n);
void pl_tr_add_f32(pl_real *y, const float *x, int64_t n);

/* Gated MLP activation: h = act(g) * u, act = SiLU or GELU(tanh).
 * dg += dh * u * act'(g) ; du += dh * act(g). */
void pl_tr_glu_fwd(pl_real *h, const pl_real *g, const pl_real *u, int64_t n, pl_act act);
void pl_tr_glu_bwd(pl_real *dg, pl_real *du, const pl_real *dh, const pl_real *g, const pl_real *u, int64_t n,
                   pl_act act);

/* The trainer's form: s [n] saves sigmoid(g) (SiLU) or the tanh term (GELU)
 * in the forward; the backward WRITES dg, du (no accumulation). */
void pl_tr_glu_fwd_s(pl_real *h, pl_real *s, const pl_real *g, const pl_real *u, int64_t n, pl_act act);
void pl_tr_glu_bwd_s(pl_real *dg, pl_real *du, const pl_real *dh, const pl_real *g, const pl_real *u,
                     const pl_real *s, int64_t n, pl_act act);

/* Activations stored in float32 (the bf16 precision): the same math in
 * double from float inputs, outputs rounded to f32 once (an output is
 * (float) of the double kernel's on the same inputs, up to the order of
 * RMSNorm's row sum: 8 running partials); rstd stays double;
 * pl_tr_glu_bwd_sf reads and writes float gradients. Exception: SiLU on
 * AVX-512 computes in f32 (an f32 exp, within a few f32 ulp of the double
 * kernel's results). */
void pl_tr_rmsnorm_fwd_f(float *y, pl_real *rstd, const pl_real *x, const pl_real *w, int64_t T, int n, double eps);
/* pl_tr_rmsnorm_bwd with its row sum in 8 running partials (the order of
 * pl_tr_rmsnorm_fwd_f's sum of squares): the bf16 precision's blocks. */
void pl_tr_rmsnorm_bwd8(pl_real *dx, pl_real *dw, const pl_real *dy, const pl_real *x, const pl_real *rstd,
                        const pl_real *w, int64_t T, int n);
void pl_tr_rope_apply_table_f(float *x, int64_t T, int n_head, int hd, int n_rot, const pl_real *cs, int neox,
                              int inverse);
void pl_tr_glu_fwd_sf(float *h, float *s, const float *g, const float *u, int64_t n, pl_act act);
void pl_tr_glu_bwd_sf(float *dg, float *du, const float *dh, const float *g, const float *u, const float *s,
                      int64_t n, pl_act act);

/* y = tanh(x / cap) * cap ; dx += dy * (1 - (y/cap)^2). */
void pl_tr_softcap_fwd(pl_real *y, const pl_real *x, int64_t n, double cap);
void pl_tr_softcap_bwd(pl_real *dx, const pl_real *dy, const pl_real *y, int64_t n, double cap);

/* Cross-entropy of one row of logits over the classes idx[0..n_idx) (all n
 * logits when idx is NULL): loss = logsumexp(l[idx]) - l[target] where
 * target indexes into idx (or into l). dl += w * (softmax - onehot) on
 * those entries. Returns the loss. */
double pl_tr_xent(pl_real *dl, const pl_real *l, int n, const int32_t *idx, int n_idx, int target, double w);

/* A frozen weight W [n_out, n_in] in its stored dtype (ggml type id), rows
 * row_bytes apart. */
typedef struct {
    const void *data;
    int dtype;
    int64_t n_in, n_out;
    size_t row_bytes;
    /* PL_PREC_BF16 on a CPU with AMX: the weight converted once to bf16 tiles
     * (tensor.h) for the forward and the backward product, or NULL */
    const uint16_t *tiles, *tiles_t;
} pl_tr_weight;
/* y[T, n_out] = x[T, n_in] · Wᵀ (y = F.linear(x, W)); rows dequantized on
 * the fly. Errors only for an unsupported dtype. */
pl_status pl_tr_linear_fwd(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w);
/* dx[T, n_in] += dy[T, n_out] · W. */
pl_status pl_tr_linear_bwd(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w);

/* Dense (trainable) matmuls in double: y[T,n_out] (+)= x[T,n_in]·Wᵀ;
 * dx += dy·W ; dW += dyᵀ·x. */
void pl_tr_dense_fwd(pl_real *y, const pl_real *x, const pl_real *W, int64_t T, int n_in, int n_out, int accumulate);
void pl_tr_dense_bwd(pl_real *dx, pl_real *dW, const pl_real *dy, const pl_real *x, const pl_real *W, int64_t T,
                     int n_in, int n_out);

/* LoRA on x [T, n_in]: y += s · B·(A·drop(x)), s = alpha / r, A [r, n_in],
 * B [n_out, r]; u = A·drop(x) [T, r] is saved. Dropout keeps an element
 * with probability 1 - p and scales it by 1/(1-p); the mask is
 * pl_tr_dropout_keep(key, t*n_in + i). xd is scratch [T, n_in]. */
typedef struct {
    const pl_real *A, *B;
    pl_real *dA, *dB;
    int r, n_in, n_out;
    double s, p;
    uint64_t key;
} pl_tr_lora;
void pl_tr_lora_fwd(const pl_tr_lora *L, pl_real *y, pl_real *u, const pl_real *x, int64_t T, pl_real *xd);
/* dx += drop(s · dy·B·A); dA += (s·dy·B)ᵀ·drop(x); dB += s·dyᵀ·u.
 * du is scratch [T, r], xd scratch [T, n_in]. */
void pl_tr_lora_bwd(const pl_tr_lora *L, pl_real *dx, const pl_real *dy, const pl_real *u, const pl_real *x,
                    int64_t T, pl_real *du, pl_real *xd);
int pl_tr_dropout_keep(uint64_t key, uint64_t index, double p);
uint64_t pl_tr_mix(uint64_t a, uint64_t b);

/* ---- the float32 / BLAS kernels (fast.c) ----------------------------------
 * The same contracts as the reference kernels above; the trainer uses them
 * when cfg.precision is PL_PREC_F32 (the default). Frozen-weight products
 * run in f32 through OpenBLAS sgemm over chunks of rows dequantized on the
 * fly (f32 weights are read in place; a forward of fewer than 8 tokens goes
 * through pl_matmul's exact path); inputs are rounded to f32, results
 * widened back to double. Trainable products (LoRA, head, full fine-tuning)
 * go through dgemm. Results depend on the data and the thread count only. */
pl_status pl_tr_linear_fwd_f32(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w);
pl_status pl_tr_linear_bwd_f32(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w);
/* PL_PREC_BF16: the same products through pl_matmul_bf16 / pl_matmul_bf16_t
 * (inputs and weights rounded to bf16, f32 sums); fewer than 32 tokens go
 * to the f32 kernels above. */
pl_status pl_tr_linear_fwd_bf16(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w);
pl_status pl_tr_linear_bwd_bf16(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w);
/* n weights sharing one input (q,k,v; gate,up): y_i = F.linear(x, W_i) with x
 * rounded once; dx += Σ_i dy_i·W_i summed in f32 (the bf16 products continue
 * from the previous sum), then widened. Same bounds as the single forms. */
pl_status pl_tr_linear_fwd_bf16_n(int n, pl_real *const *y, const pl_tr_weight *const *w, const pl_real *x,
                                  int64_t T);
pl_status pl_tr_linear_bwd_bf16_n(pl_real *dx, int n, const pl_real *const *dy, const pl_tr_weight *const *w,
                                  int64_t T);
void pl_tr_dense_fwd_blas(pl_real *y, const pl_real *x, const pl_real *W, int64_t T, int n_in, int n_out,
                          int accumulate);
void pl_tr_dense_bwd_blas(pl_real *dx, pl_real *dW, const pl_real *dy, const pl_real *x, const pl_real *W, int64_t T,
                          int n_in, int n_out);
void pl_tr_lora_fwd_blas(const pl_tr_lora *L, pl_real *y, pl_real *u, const pl_real *x, int64_t T, pl_real *xd);
void pl_tr_lora_bwd_blas(const pl_tr_lora *L, pl_real *dx, const pl_real *dy, const pl_real *u, const pl_real *x,
                         int64_t T, pl_real *du, pl_real *xd);
/* n targets sharing the input x without dropout (the same r and n_in): the
 * A products of all n in one dgemm with the stacked A matrices. Same
 * results as n single calls up to the order of double sums. (The trainer's
 * bf16 path now uses pl_tr_proj_*_bf16 instead.) PL_ERR_NOMEM only. */
pl_status pl_tr_lora_fwd_n(int n, const pl_tr_lora *const *L, pl_real *const *y, pl_real *const *u, const pl_real *x,
                           int64_t T);
pl_status pl_tr_lora_bwd_n(int n, const pl_tr_lora *const *L, pl_real *dx, const pl_real *const *dy,
                           const pl_real *const *u, const pl_real *x, int64_t T);
/* C[M x N] (+)= op(A)·B in float32, row-major with leading dimensions:
 * op(A) = A [M x K] (trans_a = 0) or Aᵀ with A [K x M] (1); B [K x N];
 * accumulate = 1 adds to C. The small products of the bf16 precision's
 * LoRA (rank-r shapes). With AVX-512 an own kernel whose every output is
 * one fma chain in k order — the bits of pl_tr_sgemm_ref, the scalar
 * reference — else OpenBLAS sgemm. Independent of the thread count. */
/* One row of the attention backward (no soft-cap): dot = sum p·d in double
 * (8 partials by lane j % 8, reduced ((0+1)+(2+3))+((4+5)+(6+7))), then
 * d[j] = (float)(p[j]·(d[j] - dot)·s) in double; every level the same bits. */
void pl_tr_attn_ds_row(float *d, const float *p, int64_t n, double s);
void pl_tr_sgemm(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate);
void pl_tr_sgemm_ref(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc, int accumulate);
/* PL_PREC_BF16: n projections sharing the input x [T, n_in] (all the same
 * n_in), each with a LoRA L[i] or none (L[i] NULL, or L NULL; all the same
 * rank): y_i = F.linear(x, W_i) + s_i·B_i·(A_i·drop_i(x)), u_i = A_i·drop_i(x)
 * saved [T, r]; activations (x, y, u) in float32. Frozen products on the
 * bf16 tiles (x rounded once for all n; fewer than 32 tokens or no tiles:
 * pl_tr_linear_fwd_bf16 on x widened), written straight into y_i; the LoRA
 * term added onto it. When the frozen products run on the tiles, so do
 * the LoRA's u = x·Aᵀ, (s·B)·u, du = dy·(s·B) and du·A (operands rounded to
 * bf16, f32 sums, as under PyTorch's bf16 autocast), the gradients dA =
 * duᵀ·x and dB = dyᵀ·(s·u) too (pl_tr_lora_grad, from the f32 values).
 * Without tiles every LoRA product runs in f32 (parameters rounded to
 * f32).
 * The backward WRITES dx = Σ_i (dy_i·W_i + drop_bwd(s_i·dy_i·B_i·A_i)) into
 * dx (double) or dxs (float; exactly one of them non-NULL) from dy (double)
 * or dys (float; one of them non-NULL); on the tiles the frozen and LoRA
 * parts are summed in f32, else in double. The LoRA gradients dA_i, dB_i
 * are added to as in pl_tr_lora_bwd. PL_ERR_NOMEM, or the frozen
 * products' errors. */
pl_status pl_tr_proj_fwd_bf16(int n, float *const *y, const pl_tr_weight *const *w, const pl_tr_lora *const *L,
                              float *const *u, const float *x, int64_t T);
/* The SwiGLU and the down projection without a LoRA, on the tiles: h =
 * silu(g)·u rounded to bf16 straight into the product's rows (no f32 h),
 * s = sigmoid(g) [T x F] stored for the backward, y [T x n_out] = h·Wᵀ.
 * The bits of pl_tr_glu_fwd_sf then pl_tr_proj_fwd_bf16 on the tiles. Runs
 * only where those would use the tiles and the AVX-512 SiLU (*done = 1);
 * otherwise *done = 0 and nothing is written. */
pl_status pl_tr_swiglu_down_bf16(float *y, float *s, const float *g, const float *u, const pl_tr_weight *w, int64_t T,
                                 int *done);
/* The SwiGLU's backward and the gate and up projections' input gradient
 * without LoRA, on the tiles: dg, du from dh (and g, u, s = sigmoid(g))
 * rounded to bf16 straight into the products' rows, dx [T x n_in] (double)
 * WRITTEN = dg·W_gate + du·W_up (float sums). The bits of
 * pl_tr_glu_bwd_sf then pl_tr_proj_bwd_bf16 with dys = {dg, du}. Runs only
 * where those would use the tiles and the AVX-512 SiLU (*done = 1);
 * otherwise *done = 0 and nothing is written. */
pl_status pl_tr_swiglu_bwd_bf16(pl_real *dx, const float *dh, const float *g, const float *u, const float *s,
                                const pl_tr_weight *wg, const pl_tr_weight *wu, int64_t T, int *done);
pl_status pl_tr_proj_bwd_bf16(pl_real *dx, float *dxs, int n, const pl_real *const *dy, const float *const *dys,
                              const pl_tr_weight *const *w, const pl_tr_lora *const *L, const float *const *u,
                              const float *x, int64_t T);
/* C [M x N] = Aᵀ·B over K tokens (A [K x lda], B [K x ldb] row-major, C
 * dense): the LoRA weight gradients dA = duᵀ·x, dBᵀ = (s·u)ᵀ·dy. With tiles
 * (the projection on the tiles) on an AMX machine: on the tiles, A and B
 * rounded to bf16 with float sums, as PyTorch's bf16 autocast runs them
 * (the scratch *s made on first use, freed by pl_tr_mm16_free); otherwise
 * pl_tr_sgemm in float. */
typedef struct mm16 mm16;
pl_status pl_tr_lora_grad(mm16 **s, int tiles, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C);
void pl_tr_mm16_free(mm16 *s);
/* Attention with its products through dgemm (same contract as pl_tr_attn_*). */
void pl_tr_attn_fwd_blas(const pl_tr_attn *a, pl_real *z, pl_real *P, const pl_real *q, const pl_real *k,
                         const pl_real *v, int64_t T);
pl_status pl_tr_attn_bwd_blas(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                              const pl_real *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T);
/* The same with f32 products (sgemm) and P saved in f32 (the softmax itself
 * in double), for the bf16 precision: P is [H, T, pl_tr_attn_ld(T)], each
 * query's row of T probabilities pl_tr_attn_ld(T) floats apart (a multiple
 * of 16: the products' rows on 64-byte lines). PL_ERR_NOMEM only. */
int64_t pl_tr_attn_ld(int64_t T);
pl_status pl_tr_attn_fwd_f32(const pl_tr_attn *a, pl_real *z, float *P, const pl_real *q, const pl_real *k,
                             const pl_real *v, int64_t T);
pl_status pl_tr_attn_bwd_f32(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                             const float *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T);
/* The same on activations and their gradients stored in float32 (q, k, v,
 * z, dz [T, H·hd] floats, read in place); the backward WRITES dq, dk, dv
 * (float, no accumulation). */
pl_status pl_tr_attn_fwd_f32s(const pl_tr_attn *a, float *z, float *P, const float *q, const float *k,
                              const float *v, int64_t T);
pl_status pl_tr_attn_bwd_f32s(const pl_tr_attn *a, float *dq, float *dk, float *dv, const float *dz, const float *P,
                              const float *q, const float *k, const float *v, int64_t T);
/* OpenBLAS's thread count (process-wide); the trainer sets it to
 * pl_num_threads() when it is created. */
void pl_tr_blas_threads(int n);

/* ---- the trainer (engine.c) ---------------------------------------------- */

/* LoRA targets (bit mask). */
enum {
    PL_TGT_Q = 1 << 0, PL_TGT_K = 1 << 1, PL_TGT_V = 1 << 2, PL_TGT_O = 1 << 3,
    PL_TGT_GATE = 1 << 4, PL_TGT_UP = 1 << 5, PL_TGT_DOWN = 1 << 6
};
#define PL_TGT_COUNT 7
/* "q,v" / "all" -> mask; PL_ERR_INVALID names the bad item. */
pl_status pl_tr_parse_targets(const char *s, unsigned *mask);
/* Short name of target i: "q", "k", "v", "o", "gate", "up", "down". */
const char *pl_tr_target_name(int i);

typedef enum {
    PL_OBJ_LABEL = 0,   /* CE at the answer position over the label tokens */
    PL_OBJ_HEAD,        /* CE of a linear head on the answer position's final hidden state */
    PL_OBJ_LM           /* next-token CE on positions from loss_start on */
} pl_objective;

typedef enum {
    PL_PREC_F32 = 0,    /* default: frozen-weight products in f32 (pl_matmul, sgemm), trainable ones via dgemm */
    PL_PREC_F64 = 1,    /* the reference: every product in double, scalar loops (verification) */
    PL_PREC_BF16 = 2    /* as f32, but frozen-weight products of 32+ tokens in bf16 with f32 accumulation
                           (pl_matmul_bf16: AMX tiles where the CPU has them), like PyTorch's bf16 autocast */
} pl_precision;
/* "f32" / "f64" / "bf16" -> precision; PL_ERR_INVALID otherwise. */
pl_status pl_tr_parse_precision(const char *s, pl_precision *out);

typedef struct {
    pl_objective objective;
    int lora_rank;          /* 0: no LoRA (head only) */
    double lora_alpha;      /* scale = alpha / rank */
    double lora_dropout;
    unsigned targets;       /* PL_TGT_* */
    int label_full_vocab;   /* label objective: CE over the whole vocabulary */
    int32_t label_tokens[2];/* token ids of class 0 (legitimate), class 1 (phishing) */
    int n_class;            /* head objective: number of classes (2) */
    int checkpoint;         /* 1: keep only block inputs, recompute in backward */
    size_t keep_bytes;      /* checkpointing: the top layers' activations are kept (not recomputed) while
                               they fit in this many bytes; the results are the same bits either way */
    int full;               /* 1: also train every base weight (full fine-tuning; dense double copies) */
    uint64_t seed;          /* initialization and dropout */
    pl_precision precision; /* PL_PREC_F32 (default) or the double reference PL_PREC_F64 */
} pl_tr_config;

pl_tr_config pl_tr_config_default(void);

/* One training example. */
typedef struct {
    const int32_t *tokens;
    int n_tokens;
    int label;              /* class for LABEL / HEAD */
    int loss_start;         /* LM: first position whose next token is scored */
} pl_tr_example;

/* A named parameter tensor inside the trainer's flat parameter array.
 * LoRA A: shape [r, n_in]; B: [n_out, r]; head: [n_class, d]; row-major. */
typedef struct {
    char name[96];          /* PEFT-style: "model.layers.0.self_attn.q_proj.lora_A" */
    int layer, target;      /* target: 0..6 LoRA, -1 the head, -2 a base weight (full fine-tuning) */
    int is_b;
    int64_t rows, cols;
    size_t offset;          /* into params / grads */
} pl_tr_tensor;

typedef struct pl_trainer pl_trainer;

/* A trainer over a loaded model (kept referenced, not owned). LoRA A is
 * initialized as PEFT does (kaiming-uniform, a = sqrt(5): U(-1/sqrt(n_in),
 * 1/sqrt(n_in))), B = 0, the head N(0, 0.02^2) — all from cfg->seed. */
pl_status pl_trainer_new(const pl_model *m, const pl_tr_config *cfg, pl_trainer **out);
void pl_trainer_free(pl_trainer *t);
const pl_tr_config *pl_trainer_config(const pl_trainer *t);
/* Flat parameters / gradients (n values each) and the tensor table. */
pl_real *pl_trainer_params(pl_trainer *t, size_t *n);
pl_real *pl_trainer_grads(pl_trainer *t);
const pl_tr_tensor *pl_trainer_tensors(const pl_trainer *t, int *n);
const pl_tr_tensor *pl_trainer_find(const pl_trainer *t, const char *name);
void pl_trainer_zero_grad(pl_trainer *t);
/* With the label and head objectives only the top layer's last row reaches
 * the loss, so the bf16 precision runs the top layer's MLP for the last
 * rows only (forward and backward; the same bits, see mlp_from in
 * engine.c). on = 0 runs it over all rows (tests). Default on. */
void pl_trainer_set_pruning(pl_trainer *t, int on);
/* The dropout stream: masks depend on (seed, step, example index). */
void pl_trainer_set_step(pl_trainer *t, uint64_t step);

/* Forward (and backward when grads != 0) of one example. The loss is
 * multiplied by weight before its gradient is accumulated (use 1/N for a
 * mean over N examples, or 1/n_tokens for the LM objective); *loss gets the
 * UNweighted loss sum of the example (LM: summed over scored positions),
 * *n_scored the number of scored positions. example_index feeds dropout.
 * Errors: PL_ERR_RANGE (token id, label), PL_ERR_INVALID (empty example),
 * PL_ERR_NOMEM. */
pl_status pl_trainer_example(pl_trainer *t, const pl_tr_example *ex, uint64_t example_index, double weight,
                             int backward, double *loss, int *n_scored);

/* The n examples of one step: pl_trainer_example on each (ex[i] with
 * example_index i), losses[i] and n_scored[i] per example (either may be
 * NULL). With several threads, the bf16 precision and no full fine-tuning,
 * the examples run side by side in lanes (lanes.c): worker trainers with
 * their own activations and gradient buffers, lane l taking examples l,
 * l + L, ...; their gradients are added into the trainer's in lane order,
 * so the result is the same bits for a given thread count (one thread: the
 * loop's bits). Workers are kept for later steps (with half the
 * checkpointing budget each for two lanes, and so on). On error the lowest
 * failing example's status and message, its index in *failed (n when none;
 * failed may be NULL). */
pl_status pl_trainer_examples(pl_trainer *t, const pl_tr_example *const *ex, size_t n, double weight, int backward,
                              double *losses, int *n_scored, size_t *failed);

/* Logits of every position [n_tokens, n_vocab] from the training forward
 * (no dropout), to compare with the model module's pl_forward. */
pl_status pl_trainer_logits(pl_trainer *t, const int32_t *tokens, int n_tokens, pl_real *logits);
/* Class scores of one example at its last position: LABEL -> the label-token
 * logits, HEAD -> head logits. scores [2]. */
pl_status pl_trainer_scores(pl_trainer *t, const int32_t *tokens, int n_tokens, pl_real *scores);

/* ---- optimizer (optim.c) ------------------------------------------------- */

typedef enum { PL_SCHED_CONSTANT = 0, PL_SCHED_COSINE, PL_SCHED_LINEAR } pl_sched_kind;

/* torch.optim.AdamW semantics:
 *   p -= lr * wd * p                      (decoupled decay, before the update)
 *   m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g²
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * Schedule (HF get_*_schedule_with_warmup): factor(s) = s/warmup for
 * s < warmup, then cosine 0.5(1+cos(pi*progress)) or linear (1-progress),
 * progress = (s-warmup)/(total-warmup); s is the 0-based step index. */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    double clip;            /* max global grad norm; 0 = no clipping */
    pl_sched_kind sched;
    int64_t warmup, total_steps;
} pl_adamw_config;

pl_adamw_config pl_adamw_default(void);
typedef struct {
    pl_adamw_config c;
    size_t n;
    pl_real *m, *v;
    int64_t step;           /* steps taken */
} pl_adamw;

pl_status pl_adamw_init(pl_adamw *o, const pl_adamw_config *c, size_t n);
void pl_adamw_free(pl_adamw *o);
double pl_adamw_lr(const pl_adamw_config *c, int64_t step);
/* Clip grads by global norm (when c.clip > 0) and update params. Returns
 * the pre-clip global norm through *gnorm (may be NULL). PL_ERR_NUMERIC when
 * the norm is not finite (params untouched). Every value decays. */
pl_status pl_adamw_step(pl_adamw *o, pl_real *params, pl_real *grads, double *gnorm);


/* ---- adapters and checkpoints (export.c) ---------------------------------- */

/* llama.cpp LoRA GGUF: general.type = adapter, adapter.type = lora,
 * adapter.lora.alpha, <blk tensor>.lora_a ne = [n_in, r] and .lora_b
 * ne = [r, n_out], f32. q/k rows of B are written in GGUF's adjacent-pair
 * order (permuted from an HF model's rotate-half rows). Atomic. */
pl_status pl_trainer_save_gguf(const pl_trainer *t, const char *path);
/* PEFT: dir/adapter_model.safetensors (base_model.model.<module>.lora_A.weight
 * [r, n_in], lora_B.weight [n_out, r], f32; score.weight for a head) and
 * dir/adapter_config.json. Atomic per file. */
pl_status pl_trainer_save_peft(const pl_trainer *t, const char *dir, const char *base_model);
/* Full fine-tuning: every trained base weight with its HF name, f32, as one
 * safetensors file (Gemma norms as stored: w, not 1 + w).
 * The run's config.json and tokenizer are not copied. */
pl_status pl_trainer_save_full(const pl_trainer *t, const char *path);
/* Full fine-tuning from a GGUF base: a copy of base_gguf (every key, every
 * untrained tensor as stored) with each trained weight replaced by its f32
 * value, in the base's tensor order and layout (q/k rows as the base holds
 * them, norms as used). Loads anywhere the base does. PL_ERR_UNSUPPORTED for
 * an HF base. Atomic. */
pl_status pl_trainer_save_full_gguf(const pl_trainer *t, const char *base_gguf, const char *path);


/* ---- training loop (loop.c) ----------------------------------------------- */

typedef struct {
    pl_tr_example *ex;      /* tokens are the caller's */
    size_t n;
} pl_tr_dataset;

typedef struct {
    pl_adamw_config opt;    /* total_steps and warmup are filled in by the loop when total_steps <= 0 */
    double warmup_ratio;    /* warmup = ratio * total steps when opt.warmup < 0 */
    int epochs, batch, accum;   /* effective batch = batch * accum examples per optimizer step */
    int eval_every;         /* validate every N steps (0: at the end of each epoch) */
    int ckpt_every;         /* checkpoint every N steps (0: only at the end) */
    int patience;           /* early stopping: evaluations without a better validation loss (0 = off) */
    const char *run_dir;    /* train_log.jsonl, checkpoints/, adapter.gguf, peft/ */
    const char *base_model; /* recorded in the PEFT config */
    int resume;             /* continue from run_dir/checkpoints/last.ckpt */
    int64_t stop_at_step;   /* tests: return (as if killed) after this step, 0 = run to the end */
    int quiet;              /* no progress bar */
} pl_loop_opts;

pl_loop_opts pl_loop_opts_default(void);

typedef struct {
    int64_t steps;          /* optimizer steps taken in total */
    double last_loss;       /* mean training loss of the last step */
    double val_loss, val_f1;/* last validation (NAN when none) */
    int early_stopped;
    int resumed_from;       /* step of the checkpoint resumed from, -1 when none */
} pl_loop_result;

/* Train: examples in a seeded, per-epoch shuffled order, bucketed by length
 * within windows of 8 optimizer steps; AdamW with warmup + decay and
 * clipping; a JSONL log line per step; validation (loss, F1 at score 0);
 * checkpoints (parameters, AdamW moments, step, data cursor, log length)
 * written atomically; on resume the run continues bitwise identically.
 * The result is written to run_dir: adapter.gguf (when LoRA), peft/.
 * Errors: PL_ERR_INVALID (empty or single-class training set for the label
 * and head objectives, a checkpoint of another configuration or base
 * model), PL_ERR_NUMERIC (non-finite loss or gradient: training stops, the
 * last good checkpoint is kept), PL_ERR_IO. */
pl_status pl_train_loop(pl_trainer *t, const pl_tr_dataset *train, const pl_tr_dataset *val, const pl_loop_opts *o,
                        pl_loop_result *res);

/* Epoch `epoch`'s order of d's examples (order gets d->n indices): a
 * permutation seeded by (seed, epoch), then sorted by length inside windows
 * of 8 steps of per_step examples, equal lengths keeping the permutation's
 * order (so a file sorted by class never gives one-class steps). */
pl_status pl_train_epoch_order(const pl_tr_dataset *d, uint64_t seed, int64_t epoch, size_t per_step, size_t *order);

#endif

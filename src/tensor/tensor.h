/* tensor.h — dtypes, quantization and the matmul kernels of phishlens.
 *
 * Dtypes carry ggml's type ids and byte-compatible block layouts, so tensors
 * read from a GGUF file are used in place (mmap'd, never expanded wholesale
 * to f32). Each dtype has a reference quantizer, a dequantizer, and two
 * matmul paths (docs/kernels.md):
 *
 *   PL_MATMUL_EXACT  y = dot(dequantize(w_row), x) in f32. Summation order
 *                    may differ between SIMD levels (tolerance in the tests),
 *                    never between thread counts.
 *   PL_MATMUL_LLAMA  what llama.cpp's CPU backend computes: the activation
 *                    row is first quantized to the weight's "vec_dot" type
 *                    (q8_0, q8_1, q8_K, or rounded to f16/bf16) and the dot
 *                    product runs on integers (or f16/bf16 products) per
 *                    block, scaled by the block scales.
 *
 * Every kernel has a scalar reference; AVX2 and AVX-512 (VNNI, BF16)
 * variants are chosen at run time from CPU features. PL_SIMD=scalar|avx2|
 * avx512 in the environment (or pl_simd_set) forces a level.
 *
 * Not here: the ops with their backward (later), GPU kernels, the i-quants,
 * importance-matrix quantization.
 */
#ifndef PL_TENSOR_H
#define PL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- dtypes ------------------------------------------------------------ */

/* Values equal ggml's type ids (GGUF tensor info "type"). */
typedef enum {
    PL_DTYPE_F32 = 0,
    PL_DTYPE_F16 = 1,
    PL_DTYPE_Q4_0 = 2,
    PL_DTYPE_Q4_1 = 3,
    PL_DTYPE_Q5_0 = 6,
    PL_DTYPE_Q5_1 = 7,
    PL_DTYPE_Q8_0 = 8,
    PL_DTYPE_Q8_1 = 9,
    PL_DTYPE_Q2_K = 10,
    PL_DTYPE_Q3_K = 11,
    PL_DTYPE_Q4_K = 12,
    PL_DTYPE_Q5_K = 13,
    PL_DTYPE_Q6_K = 14,
    PL_DTYPE_Q8_K = 15,
    PL_DTYPE_BF16 = 30,
    PL_DTYPE_COUNT = 31 /* one past the largest id (table size) */
} pl_dtype;

/* 1 when dtype is one of the ids above, else 0. Safe on any integer. */
int pl_dtype_valid(int dtype);
/* "f32", "q4_K", ...; "invalid" for an unknown id. */
const char *pl_dtype_name(pl_dtype t);
/* Elements per block (1 for f32/f16/bf16, 32, or 256); 0 if invalid. */
int64_t pl_dtype_block_size(pl_dtype t);
/* Bytes per block; 0 if invalid. */
size_t pl_dtype_block_bytes(pl_dtype t);
/* Parse a name as printed by pl_dtype_name (case-insensitive). */
pl_status pl_dtype_from_name(const char *name, pl_dtype *out);

/* Bytes of a row of n elements. Fails (PL_ERR_INVALID) when the dtype is
 * unknown, n < 0, n is not a multiple of the block size, or the size
 * overflows size_t. */
pl_status pl_dtype_row_bytes(pl_dtype t, int64_t n, size_t *out);

/* ---- fp16 / bf16 ------------------------------------------------------- */

/* IEEE binary16 and bfloat16 <-> f32. Conversions to the narrow type round
 * to nearest, ties to even; overflow goes to +-Inf; f16 subnormals are
 * produced exactly (no flushing), bf16 keeps f32 subnormals (no flushing).
 * A NaN stays a NaN with its sign, made quiet: f16 keeps the top 9 payload
 * bits (as x86 F16C does), bf16 keeps the top 7 (as ggml does). */
uint16_t pl_fp32_to_fp16(float f);
float pl_fp16_to_fp32(uint16_t h);
uint16_t pl_fp32_to_bf16(float f);
float pl_bf16_to_fp32(uint16_t h);

/* ---- quantize / dequantize -------------------------------------------- */

/* Dequantize a row of n elements of dtype t (n a multiple of the block size)
 * into dst. Pure function of the bytes; identical at every SIMD level. */
pl_status pl_dequantize_row(pl_dtype t, const void *src, float *dst, int64_t n);

/* Reference quantizer: a row of n f32 into dtype t. For q4_0, q4_1, q5_0,
 * q5_1, q8_0, q8_1 and q8_K the bytes equal llama.cpp's quantize_row_*_ref;
 * for q2_K..q6_K the same algorithm (byte-identical when the compiler does
 * not contract a*b+c into FMA — see docs/kernels.md). f16/bf16 round as
 * above; f32 copies. The activation types (q8_0, q8_1, q8_K, f16, bf16)
 * have vectorized quantizers giving the same bytes at every SIMD level. */
pl_status pl_quantize_row(pl_dtype t, const float *src, void *dst, int64_t n);

/* ---- SIMD dispatch ----------------------------------------------------- */

typedef enum { PL_SIMD_SCALAR = 0, PL_SIMD_AVX2 = 1, PL_SIMD_AVX512 = 2 } pl_simd;

/* Best level this CPU (and this build) supports. AVX2 means AVX2+FMA+F16C;
 * AVX512 means F+BW+VL+DQ+VNNI+BF16. */
pl_simd pl_simd_detected(void);
/* The level in use: PL_SIMD from the environment on first use (a level the
 * CPU lacks is lowered to the detected one, with a warning), else the
 * detected level; pl_simd_set overrides. */
pl_simd pl_simd_active(void);
/* Force a level. PL_ERR_UNSUPPORTED if the CPU or build lacks it. */
pl_status pl_simd_set(pl_simd level);
const char *pl_simd_name(pl_simd level);
/* Parse "scalar" | "avx2" | "avx512". */
pl_status pl_simd_from_name(const char *name, pl_simd *out);

/* ---- dot products and matmul ------------------------------------------ */

typedef enum { PL_MATMUL_EXACT = 0, PL_MATMUL_LLAMA = 1 } pl_matmul_path;

/* The activation dtype the llama path quantizes x into for weight dtype t:
 * f32->f32, f16->f16, bf16->bf16, q4_0/q5_0/q8_0->q8_0, q4_1/q5_1->q8_1,
 * q2_K..q6_K->q8_K. PL_ERR_UNSUPPORTED for q8_1 and q8_K weights. */
pl_status pl_llama_act_dtype(pl_dtype t, pl_dtype *act);

/* Exact path, one row: *out = sum_i dequant(w)[i] * x[i]. The same bits as
 * the matching pl_matmul output. Allocates scratch: for many rows use
 * pl_matmul. */
pl_status pl_vec_dot(pl_dtype t, const void *w, const float *x, int64_t n, float *out);
/* llama path, one row: xq is x already quantized to pl_llama_act_dtype(t)
 * (pl_quantize_row). The same bits as the matching pl_matmul output. */
pl_status pl_vec_dot_llama(pl_dtype t, const void *w, const void *xq, int64_t n, float *out);

/* Scratch bytes pl_matmul needs for this shape with the current thread
 * count (pl_num_threads()); 0 on invalid arguments. */
size_t pl_matmul_scratch_bytes(pl_matmul_path path, pl_dtype t, int64_t n_out, int64_t n_in,
                               int64_t n_tok);

/* Y[n_tok x n_out] = X[n_tok x n_in] . W[n_out x n_in]^T, i.e.
 * Y[t][o] = dot(W row o, X row t)   (PyTorch: Y = X @ W.T).
 * W rows are pl_dtype_row_bytes(t, n_in) apart; X and Y are row-major f32.
 * n_in must be a multiple of t's block size. scratch may be NULL (then it
 * is allocated and freed here) or at least pl_matmul_scratch_bytes(...)
 * bytes, 64-byte aligned (PL_ERR_INVALID otherwise).
 * OpenMP splits output rows (static schedule); each output is one
 * reduction computed by one thread with a tile-shape-independent kernel, so
 * Y depends neither on the thread count nor on n_tok (a token's row is the
 * same alone or in a batch). Y must not alias W or X. */
pl_status pl_matmul(pl_matmul_path path, pl_dtype t, const void *W, int64_t n_out, int64_t n_in,
                    const float *X, int64_t n_tok, float *Y, void *scratch, size_t scratch_bytes);

/* ---- f32 vector kernels (attention) ------------------------------------ */

/* y[j] = sum_i x[i] * m[j*ld + i] for j < rows (one vector against rows:
 * attention scores). Scalar: one sequential f32 sum per row; SIMD levels
 * sum in 16 (AVX-512) or 8 (AVX2) lanes and a fixed tree, so a row's bits
 * do not depend on `rows` (the dot_tol of the tests bounds the difference
 * from the scalar sum). */
void pl_f32_dots(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y);
/* y[i] += sum_j w[j] * m[j*ld + i] for i < n, over j < rows in order,
 * skipping w[j] == 0 (attention's probability-weighted values). Each
 * y[i] is rounded as the scalar loop `y[i] += w[j] * m[j*ld+i]` does (no
 * FMA), so every level gives the same bits. */
void pl_f32_wsum(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y);
/* x[i] = exp(x[i] - sub) for i < n (-inf gives 0); returns the sum of the
 * new x in double (summation order per level). Scalar uses expf; SIMD
 * levels a polynomial within 2 ulp of it (tested). */
double pl_f32_exp_sum(float *x, int64_t n, float sub);
/* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u (the gated MLP). Scalar
 * uses expf; the AVX-512 level the same polynomial exp as above (tested
 * within 4 ulp of the scalar result); an element's bits do not depend on
 * its position or on n. */
void pl_f32_silu_mul(float *g, const float *u, int64_t n);
/* out[i] = (x[i] * s) * w[i], s = 1 / sqrtf(mean + eps), mean the float
 * squares x[i]*x[i] summed in double (as ggml does) divided by n, rounded
 * to float (RMSNorm; out may be x). The summation order is per level
 * (scalar: eight partial sums); squares are exact in double, so levels
 * differ only when the squares span more than ~2^29 (tested). */
void pl_f32_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
/* Attention scores of one query: x[p] = x[p] * scale for lo <= p <= hi,
 * -inf elsewhere; returns the largest (-inf when the range is empty).
 * Every level gives the same bits (one rounding per element). */
float pl_f32_scores(float *x, int64_t n, int64_t lo, int64_t hi, float scale);
/* x[i] *= s (the same bits at every level). */
void pl_f32_scale(float *x, int64_t n, float s);
/* y[i] += x[i] (the same bits at every level; the residual stream). */
void pl_f32_add(float *y, const float *x, int64_t n);
/* RoPE on one head's first n_rot elements, cs the (cos, sin) pairs of its
 * position's n_rot / 2 angles: pairs (2i, 2i + 1), or with neox the halves
 * (i, i + n_rot / 2); x0·c − x1·s and x0·s + x1·c with each product rounded
 * (the same bits at every level). */
void pl_f32_rope(float *x, const float *cs, int64_t n_rot, int neox);

/* ---- packed weights ---------------------------------------------------- */

/* A quantized weight matrix can be repacked once (at load) into a layout
 * the llama-path kernels stream as it is, instead of repacking rows on
 * every call. The packed layout is a permutation of the GGUF blocks, the
 * same size (docs/kernels.md, "Packed weights"): rows in groups of 4; for
 * each group and 32-block b, the 4 rows' quant bytes (4 x 16, q8_0 4 x 32),
 * then their 4 f16 scales d, then (q4_1) their 4 f16 mins m. Dtypes: q4_0,
 * q4_1, q8_0.
 *
 * 1 when t has a packed layout and n_out, n_in fit it (n_out a multiple of
 * 4, n_in of 32, both > 0). */
int pl_pack_supported(pl_dtype t, int64_t n_out, int64_t n_in);
/* 1 when the active SIMD level has a native kernel for packed t (other
 * levels compute pl_matmul_packed by unpacking a group at a time). */
int pl_pack_native(pl_dtype t);
/* Repack W [n_out x n_in] (GGUF rows) into P (n_out * row bytes, not
 * overlapping W). PL_ERR_INVALID when !pl_pack_supported. */
pl_status pl_pack_weights(pl_dtype t, const void *W, int64_t n_out, int64_t n_in, void *P);
/* Row `row` of packed P back in GGUF layout (row bytes into dst). */
pl_status pl_unpack_row(pl_dtype t, const void *P, int64_t n_out, int64_t n_in, int64_t row, void *dst);
/* Scratch bytes pl_matmul_packed needs (current thread count); 0 on invalid
 * arguments. */
size_t pl_matmul_packed_scratch_bytes(pl_dtype t, int64_t n_out, int64_t n_in, int64_t n_tok);
/* The llama path (PL_MATMUL_LLAMA) on packed weights: Y = X . W^T with the
 * activation rows quantized as pl_matmul does. Like pl_matmul, Y depends
 * neither on the thread count nor on n_tok; the bits may differ from
 * pl_matmul's (float summation order, within the same tolerance). */
pl_status pl_matmul_packed(pl_dtype t, const void *P, int64_t n_out, int64_t n_in, const float *X, int64_t n_tok,
                           float *Y, void *scratch, size_t scratch_bytes);

/* ---- bf16 matrix products (gemm.c) --------------------------------------- */

/* Products with bf16 inputs and f32 accumulation, for many token rows at
 * once (training, batched prefill). Activations are rounded to bf16
 * (nearest even) once per call; the weight is dequantized 256 output
 * columns at a time, rounded to bf16 and packed for the tiles (never
 * expanded whole). On a CPU with AMX tiles (and the kernel's permission)
 * the products run on them; elsewhere a portable loop gives the same sums
 * in k order. Either way a result depends neither on the thread count nor
 * on the other rows of the call. packed = 1: W is in pl_pack_weights'
 * layout, else GGUF rows. n_in must be a multiple of t's block size.
 * accumulate = 1 adds to Y instead of overwriting it. */

/* 1 when the AMX path is in use: AMX-BF16 and AMX-TILE, the OS's
 * permission, the AVX512 SIMD level active, and PL_AMX is not "0". */
int pl_bf16_gemm_native(void);
/* Y[n_tok x n_out] (+)= bf16(X[n_tok x n_in]) . bf16(W)^T */
pl_status pl_matmul_bf16(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, const float *X,
                         int64_t n_tok, float *Y, int accumulate);
/* Y[n_tok x n_in] (+)= bf16(X[n_tok x n_out]) . bf16(W)   (the backward of the above) */
pl_status pl_matmul_bf16_t(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, const float *X,
                           int64_t n_tok, float *Y, int accumulate);
/* A weight converted once ("tiles": bf16 in the kernel's layout, rows and
 * columns padded to multiples of 32, 2 bytes a weight) for products that
 * repeat, in the orientation of pl_matmul_bf16 (transposed = 0) or of
 * pl_matmul_bf16_t (1): pl_matmul_bf16_tiles with the same flag gives the
 * same bits as that function on the weight the tiles were packed from.
 * tiles must hold pl_bf16_tiles_bytes(n_out, n_in). */
size_t pl_bf16_tiles_bytes(int64_t n_out, int64_t n_in);
/* How many bf16 tile products so far had an operand (tiles, rows) or an
 * output (with whole 32 x 32 blocks: its rows) off a 64-byte line. Their
 * results are the same, but a tile row over two cache lines costs twice
 * the loads (about 2x slower): a diagnostic for the callers' buffers. */
size_t pl_bf16_tiles_misaligned(void);
pl_status pl_bf16_tiles_pack(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in, int transposed,
                             uint16_t *tiles);
/* The same tiles from f32 rows given by pointers (rows[i] is row i of the
 * weight, n_in floats; e.g. a cache's keys scattered over segments), one
 * pass, single-threaded: the same bits as pl_bf16_tiles_pack(PL_DTYPE_F32)
 * on those rows laid out contiguously. scratch holds 2 * up32(n_in) bf16. */
pl_status pl_bf16_tiles_pack_rowptr(const float *const *rows, int64_t n_out, int64_t n_in, int transposed,
                                    uint16_t *tiles, uint16_t *scratch);
/* pl_bf16_tiles_pack_rowptr from rows of bf16 values: the same tiles as
 * from f32 rows holding those values */
pl_status pl_bf16_tiles_pack_rowptr_bf16(const uint16_t *const *rows, int64_t n_out, int64_t n_in, int transposed,
                                         uint16_t *tiles, uint16_t *scratch);
pl_status pl_matmul_bf16_tiles(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed, const float *X,
                               int64_t n_tok, float *Y, int accumulate);
/* The same with the activations already rounded and laid out by the caller
 * (one conversion shared by several products): A [up32(n_tok) x up32(K)]
 * bf16, row-major, zero in the padding, K = n_in (transposed = 0) or n_out
 * (1). Rounded as above (nearest even), it gives the same bits. */
pl_status pl_matmul_bf16_tiles_packed(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                      const uint16_t *A, int64_t n_tok, float *Y, int accumulate);
/* pl_matmul_bf16_tiles_packed with Y's rows ldy (>= N) apart. */
pl_status pl_matmul_bf16_tiles_packed_ld(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                         const uint16_t *A, int64_t n_tok, float *Y, int64_t ldy, int accumulate);
/* pl_matmul_bf16_tiles_packed over the first k_use (1..K) reduction indices
 * of tiles made for all K: A's rows hold up32(k_use) bf16 (zero padding).
 * Each output sums the same terms in the same order as the full product
 * with A zero past k_use, less those zero products (e.g. attention
 * probabilities of keys past a chunk's last query). */
pl_status pl_matmul_bf16_tiles_packed_part(const uint16_t *tiles, int64_t n_out, int64_t n_in, int transposed,
                                           int64_t k_use, const uint16_t *A, int64_t n_tok, float *Y, int accumulate);
/* Activation rows rounded to bf16 once, for several products of the same
 * input (q, k and v of one normed stream; a LoRA's A beside its base
 * weight): the same bits as passing X to each product. pl_bf16_rows_set
 * (re)fills a (its buffer grows as needed; start from a zeroed struct),
 * pl_bf16_rows_free releases it. */
typedef struct {
    uint16_t *data;
    size_t cap;
    int64_t n_tok, n_in;
} pl_bf16_rows;
pl_status pl_bf16_rows_set(pl_bf16_rows *a, const float *X, int64_t n_tok, int64_t n_in);
/* Rows for the caller to fill: a sized for n_tok x n_in with its padding
 * (columns from n_in, rows from n_tok) zero; the caller writes row t at
 * a->data + t * up32(n_in) with pl_bf16_round (the rounding of
 * pl_bf16_rows_set). */
pl_status pl_bf16_rows_alloc(pl_bf16_rows *a, int64_t n_tok, int64_t n_in);
void pl_bf16_round(uint16_t *dst, const float *src, int64_t n);
/* pl_bf16_round on rows: dst row r (ldd apart) = bf16(src row r (lds
 * apart)), n values each (one call for many short rows) */
void pl_bf16_round_rows(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows, int64_t n);
/* dst[i] = bf16(src[i] * s): the f32 product (pl_f32_scale's) rounded */
void pl_bf16_round_scaled(uint16_t *dst, const float *src, int64_t n, float s);
/* One query's attention probabilities in bf16 (n >= 1, scale > 0): with
 * e[i] = exp(x[i]*scale - max), dst[i] = bf16(e[i] / sum e), and e left in
 * x. Where the bf16 products run on AMX, one AVX-512 kernel (float sum,
 * within 2 ulp of expf before rounding; tested against double); elsewhere
 * the bits of pl_f32_scores, pl_f32_exp_sum and pl_bf16_round_scaled with
 * (float)(1 / sum). Per row: a row's bits do not depend on other rows. */
void pl_bf16_softmax(float *x, int64_t n, float scale, uint16_t *dst);
/* Rows of n <= 32 values (src's rows lds apart): the first rot (even,
 * <= n) rotated by RoPE's adjacent pairs (pl_f32_rope, NORM) with row r's
 * cos/sin at cs + r ldcs, then every value rounded to bf16 into dst[r]
 * (an epilogue of a product block; the bits of pl_f32_rope then
 * pl_bf16_round on each row). */
void pl_bf16_rope_round_rows(const float *src, int64_t lds, int64_t rows, int64_t n, int64_t rot, const float *cs,
                             int64_t ldcs, uint16_t *const *dst);
/* The rows of rmsnorm(X) · w (pl_f32_rmsnorm per row) rounded, without the
 * f32 result in memory: the same bits as pl_f32_rmsnorm then
 * pl_bf16_rows_set. */
pl_status pl_bf16_rows_rmsnorm(pl_bf16_rows *a, const float *X, const float *w, int64_t n_tok, int64_t n_in,
                               float eps);
void pl_bf16_rows_free(pl_bf16_rows *a);
/* pl_matmul_bf16 (transposed = 0) and pl_matmul_bf16_tiles (transposed = 0)
 * on rows set before; a->n_in must equal n_in. */
pl_status pl_matmul_bf16_rows(pl_dtype t, const void *W, int packed, int64_t n_out, int64_t n_in,
                              const pl_bf16_rows *a, float *Y, int accumulate);
pl_status pl_matmul_bf16_tiles_rows(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                    float *Y, int accumulate);
/* Y = a·W on the tiles (transposed = 0), each 32 x 32 block of results
 * handed to fn instead of stored: fn(ctx, blk, m0, n0, mr, nr) with blk's
 * rows 32 floats apart, of which rows m0 .. m0 + mr - 1 and columns n0 ..
 * n0 + nr - 1 of Y are valid (the bits Y would hold). fn runs on the
 * product's threads, once a block (an epilogue while the block is in L1:
 * e.g. rotating and rounding rows straight to where they go). */
typedef void (*pl_block_fn)(void *ctx, const float *blk, int64_t m0, int64_t n0, int64_t mr, int64_t nr);
pl_status pl_matmul_bf16_tiles_rows_blocks(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                           pl_block_fn fn, void *ctx);
/* Y (+)= a·W + U·D in one pass on the tiles: W's tiles (n_out x n_in) and a
 * low-rank delta, D's tiles (pl_bf16_tiles_pack of n_out x r) and U
 * [up32(n_tok) x up32(r)] bf16 rows (zero padding; a LoRA's s·x·Aᵀ
 * rounded). The bits of pl_matmul_bf16_tiles_rows then an accumulating
 * pl_matmul_bf16_tiles_packed of D on U: W's reduction first, D's after it
 * on the same f32 sums. */
pl_status pl_matmul_bf16_tiles_rows_delta(const uint16_t *tiles, int64_t n_out, int64_t n_in, const pl_bf16_rows *a,
                                          const uint16_t *d_tiles, int64_t r, const uint16_t *U, float *Y,
                                          int accumulate);

/* The gated unit act(x·Wgᵀ) ⊙ (x·Wuᵀ) on tiles, its two products as one:
 * pl_bf16_glu_tiles_pack puts the tiles of the gate and of the up
 * projection (each pl_bf16_tiles_pack'ed, n_ff outputs of n_in, transposed
 * = 0) side by side, panel by panel (pl_bf16_glu_tiles_bytes). With act
 * (g[i] = act(g[i]) * u[i] over n elements, elementwise), the product
 * writes h: bf16 rows of act(g) * u ready for the next product (h->n_in =
 * n_ff; same bits as rounding the unfused result); without it, G and U
 * [n_tok x n_ff] get the two products in f32 (the bits of
 * pl_matmul_bf16_tiles_rows on each weight). */
typedef void (*pl_glu_act_fn)(float *g, const float *u, int64_t n);
size_t pl_bf16_glu_tiles_bytes(int64_t n_ff, int64_t n_in);
pl_status pl_bf16_glu_tiles_pack(const uint16_t *gate, const uint16_t *up, int64_t n_ff, int64_t n_in,
                                 uint16_t *out);
pl_status pl_matmul_bf16_glu(const uint16_t *gu, int64_t n_ff, int64_t n_in, const pl_bf16_rows *a,
                             pl_glu_act_fn act, pl_bf16_rows *h, float *G, float *U);

#endif

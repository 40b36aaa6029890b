/* tensor_impl.h — private to src/tensor: block layouts and the kernel table.
 *
 * Block layouts are byte-for-byte those of GGUF / ggml (ggml-common.h):
 * little-endian, no padding, f16 scales stored as raw uint16_t bits.
 * The static asserts pin every size.
 */
#ifndef PL_TENSOR_IMPL_H
#define PL_TENSOR_IMPL_H

#include <assert.h>
#include <stdint.h>

#include "tensor/tensor.h"

#define QK32 32 /* q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 */
#define QKK 256 /* K-quants super-block */
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[QK32 / 2]; } blk_q4_0;                 /* x = d*(q-8) */
typedef struct { uint16_t d, m; uint8_t qs[QK32 / 2]; } blk_q4_1;              /* x = d*q + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } blk_q5_0;  /* x = d*(q-16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK32 / 2]; } blk_q5_1; /* x = d*q + m */
typedef struct { uint16_t d; int8_t qs[QK32]; } blk_q8_0;                      /* x = d*q */
typedef struct { uint16_t d, s; int8_t qs[QK32]; } blk_q8_1;                   /* s = d*sum(q) */
typedef struct {
    uint8_t scales[QKK / 16]; /* low 4 bits scale, high 4 bits min, per 16 */
    uint8_t qs[QKK / 4];      /* 2-bit quants */
    uint16_t d, dmin;
} blk_q2_K;
typedef struct {
    uint8_t hmask[QKK / 8];   /* high bit */
    uint8_t qs[QKK / 4];      /* low 2 bits */
    uint8_t scales[12];       /* 16 6-bit scales */
    uint16_t d;
} blk_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 6-bit scales and 8 6-bit mins */
    uint8_t qs[QKK / 2];
} blk_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QKK / 8];
    uint8_t qs[QKK / 2];
} blk_q5_K;
typedef struct {
    uint8_t ql[QKK / 2];
    uint8_t qh[QKK / 4];
    int8_t scales[QKK / 16];
    uint16_t d;
} blk_q6_K;
typedef struct {
    float d;
    int8_t qs[QKK];
    int16_t bsums[QKK / 16]; /* sum of qs per 16 */
} blk_q8_K;

static_assert(sizeof(blk_q4_0) == 18, "q4_0 block");
static_assert(sizeof(blk_q4_1) == 20, "q4_1 block");
static_assert(sizeof(blk_q5_0) == 22, "q5_0 block");
static_assert(sizeof(blk_q5_1) == 24, "q5_1 block");
static_assert(sizeof(blk_q8_0) == 34, "q8_0 block");
static_assert(sizeof(blk_q8_1) == 36, "q8_1 block");
static_assert(sizeof(blk_q2_K) == 84, "q2_K block");
static_assert(sizeof(blk_q3_K) == 110, "q3_K block");
static_assert(sizeof(blk_q4_K) == 144, "q4_K block");
static_assert(sizeof(blk_q5_K) == 176, "q5_K block");
static_assert(sizeof(blk_q6_K) == 210, "q6_K block");
static_assert(sizeof(blk_q8_K) == 292, "q8_K block");

/* 6-bit scale j and min j of a q4_K/q5_K block (j in 0..7). */
static inline void k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- kernel table ---------------------------------------------------- */

/* dequantize n elements */
typedef void (*pl_dequant_fn)(const void *src, float *dst, int64_t n);
/* llama path dot: weight row . activation row already in the act dtype */
typedef float (*pl_dotq_fn)(const void *w, const void *xq, int64_t n);
/* quantize an activation row into the act dtype */
typedef void (*pl_quant_fn)(const float *x, void *dst, int64_t n);
/* Exact-path micro-kernel on f32: for r < nr, t < nt:
 *   y[t*ldy + r] = dot(w + r*ldw, x + t*ldx, n)
 * Implementations must give the same bits for a given (w row, x row, n)
 * whatever nr/nt are (so tiling never changes a result). */
typedef void (*pl_gemm_f32_fn)(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx,
                               int nt, int64_t n, float *y, int64_t ldy);

/* Tiled llama path (optional, per weight dtype and level). Activation rows
 * (already in the act dtype) and weight rows are repacked into the layouts
 * the tile kernel streams (see kernels_avx512.c), then
 *   y[t*ldy + r] = dot(w row r, x row t)   for r < nr <= 4, t < nt <= max_nt,
 * with the same bits for a (row, token) whatever nr/nt are. xprep may be
 * NULL: the quantized activation row is then used as is; wprep may be NULL:
 * the weight rows are then read in place (stride = row bytes). */
typedef size_t (*pl_prep_bytes_fn)(int64_t n);
typedef void (*pl_xprep_fn)(pl_dtype wtype, const void *xq, uint8_t *xp, int64_t n);
typedef void (*pl_wprep_fn)(const void *w, uint8_t *wp, int64_t n);
typedef void (*pl_tile_fn)(const uint8_t *wp, size_t wstride, int nr, const uint8_t *xp, size_t xstride, int nt,
                           int64_t n, float *y, int64_t ldy);

typedef struct {
    pl_prep_bytes_fn xprep_bytes, wprep_bytes;
    pl_xprep_fn xprep;
    pl_wprep_fn wprep;
    pl_tile_fn tile; /* NULL: no tiled kernel for this weight dtype */
    int max_nt;      /* tokens per tile call (2 or 4) */
    /* optional, one token: y[r] = dot(raw weight row r, xp) for r < nr,
     * reading unrepacked rows wrow bytes apart, with the tile kernel's bits */
    void (*direct)(const uint8_t *w, size_t wrow, int nr, const uint8_t *xp, int64_t n, float *y);
} pl_tiled_kernels;

/* Optional exact-path micro-kernel over a slice [k0, k1) of the dots (for
 * cache blocking over n), keeping the 16-lane accumulators of each (row r,
 * token t) in acc + 16*(4*t + r) between slices: the slice with k0 == 0
 * starts them at zero, the slice with k1 == n adds the masked tail and
 * writes y. The lane arithmetic is that level's gemm_f32, so the bits equal
 * one unsliced gemm_f32 call. k0, and k1 when < n, are multiples of 16. */
typedef void (*pl_gemm_f32k_fn)(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt,
                                int64_t k0, int64_t k1, int64_t n, float *acc, float *y, int64_t ldy);

/* Packed weights (packed.c, pl_matmul_packed): rows interleaved in groups
 * of PACK_ROWS per 32-block (see tensor.h). A level's native kernel gets
 * activation rows already quantized to the act dtype and prepped by xprep
 * (xprep_bytes(n) each), and computes for g < ng groups, t < nt tokens:
 *   y[t*ldy + 4g + r] = dot(row r of group g, x row t),
 * the groups gstride bytes apart, with the same bits for a (row, token)
 * whatever ng/nt are (each (group, token) is one accumulator). */
#define PACK_ROWS 4
typedef struct {
    pl_prep_bytes_fn xprep_bytes;
    void (*xprep)(const void *xq, uint8_t *xp, int64_t n);
    void (*kern)(const uint8_t *p, size_t gstride, int ng, const uint8_t *xp, size_t xstride, int nt, int64_t n,
                 float *y, int64_t ldy);
    int max_ng, max_nt;
} pl_packed_kernels;

/* f32 vector kernels for attention (tensor.h, pl_f32_*) */
typedef void (*pl_f32_dots_fn)(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y);
typedef void (*pl_f32_wsum_fn)(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y);
typedef double (*pl_f32_expsum_fn)(float *x, int64_t n, float sub);
typedef void (*pl_f32_silu_mul_fn)(float *g, const float *u, int64_t n);
typedef void (*pl_f32_rmsnorm_fn)(float *out, const float *x, const float *w, int64_t n, float eps);
typedef float (*pl_f32_scores_fn)(float *x, int64_t n, int64_t lo, int64_t hi, float scale);
typedef void (*pl_f32_scale_fn)(float *x, int64_t n, float s);
typedef void (*pl_f32_add_fn)(float *y, const float *x, int64_t n);
typedef void (*pl_f32_rope_fn)(float *x, const float *cs, int64_t n_rot, int neox);
/* the gated unit's epilogue on one 32 x 32 product block (row r: gate of 16
 * features, then their up): h row r (ldh apart) = bf16(silu(gate) * up),
 * the bits of f32_silu_mul on the 16 lanes then round to nearest even */
typedef void (*pl_silu_glu32_fn)(const float *blk, uint16_t *h, int64_t ldh);
/* pl_bf16_softmax on the tiles' machine (f32_scores, f32_expsum, then the
 * scaled rounding, in one call) */
typedef void (*pl_softmax_bf16_fn)(float *x, int64_t n, float scale, uint16_t *dst);
/* pl_bf16_rope_round_rows on the tiles' machine (f32_rope's NORM lanes,
 * then the rounding) */
typedef void (*pl_rope_round_fn)(const float *src, int64_t lds, int64_t rows, int64_t n, int64_t rot,
                                 const float *cs, int64_t ldcs, uint16_t *const *dst);

typedef struct {
    pl_f32_dots_fn f32_dots;
    pl_f32_wsum_fn f32_wsum;
    pl_f32_expsum_fn f32_expsum;
    pl_f32_silu_mul_fn f32_silu_mul;
    pl_f32_rmsnorm_fn f32_rmsnorm;
    pl_f32_scores_fn f32_scores;
    pl_f32_scale_fn f32_scale;
    pl_f32_add_fn f32_add;
    pl_f32_rope_fn f32_rope;
    pl_silu_glu32_fn silu_glu32; /* NULL: copy out, f32_silu_mul, round */
    pl_softmax_bf16_fn softmax_bf16; /* NULL: the three steps */
    pl_rope_round_fn rope_round; /* NULL: copy, f32_rope, round per row */
    pl_packed_kernels packed[PL_DTYPE_COUNT]; /* kern NULL: unpack + dotq */
    pl_tiled_kernels tiled[PL_DTYPE_COUNT]; /* indexed by weight dtype */
    pl_gemm_f32k_fn gemm_f32k;              /* NULL: no k-sliced kernel */
    pl_dequant_fn dequant[PL_DTYPE_COUNT];
    pl_dotq_fn dotq[PL_DTYPE_COUNT];     /* indexed by weight dtype */
    pl_quant_fn quant_act[PL_DTYPE_COUNT]; /* indexed by act dtype */
    pl_gemm_f32_fn gemm_f32;
} pl_kernels;

/* Fill a table: scalar fills everything; SIMD fillers overwrite what they
 * implement and leave the rest. */
void pl_kernels_scalar(pl_kernels *k);
#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
void pl_kernels_avx2(pl_kernels *k);
void pl_kernels_avx512(pl_kernels *k);
#endif
/* The table for the active level. */
const pl_kernels *pl_kernels_active(void);

/* scalar reference functions other files reuse */
void pl_ref_dequant(pl_dtype t, const void *src, float *dst, int64_t n);
void pl_ref_quantize(pl_dtype t, const float *src, void *dst, int64_t n);
void pl_ref_quantize_k(pl_dtype t, const float *src, void *dst, int64_t n);
void pl_ref_dequant_k(pl_dtype t, const void *src, float *dst, int64_t n);
float pl_ref_dotq_k(pl_dtype t, const void *w, const void *xq, int64_t n);

#endif

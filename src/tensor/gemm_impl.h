/* gemm_impl.h — private to src/tensor: the layout shared by gemm.c and the
 * AMX kernel of gemm_amx.c.
 *
 * A (activations) is bf16, row-major, rows and columns zero-padded to
 * multiples of 32. B (weights) is packed in panels of 16 output columns:
 * panel p holds kt = Kp/32 tiles of 512 bf16; tile t, row r (a pair of
 * reduction indices), element 2c+j is B[k = 32t + 2r + j][n = 16p + c]
 * (the VNNI pairing of the bf16 dot-product instructions). Padding is zero.
 */
#ifndef PL_GEMM_IMPL_H
#define PL_GEMM_IMPL_H

#include <stdint.h>

#define PL_GEMM_KT 32    /* reduction elements per tile */
#define PL_GEMM_TILE 512 /* bf16 per B tile (16 x 32) */

/* which operand a block loads with the streaming hint (the one the caller
 * walks past): none, A, B */
enum { PL_AMX_STREAM_NONE, PL_AMX_STREAM_A, PL_AMX_STREAM_B };

#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
#define PL_HAVE_AMX_KERNEL 1
/* Load the tile configuration on the calling thread (8 tiles of 16 x 64 B). */
void pl_amx_configure(void);
/* Configure unless this thread already is (the products keep the
 * configuration between calls; pl_amx_release drops it). */
void pl_amx_ensure(void);
void pl_amx_release(void);
/* out[32 rows, ldo apart][32] (+)= A[32 rows, lda apart] . B panels B0 | B1,
 * over kt tiles. stream: which operand is loaded with the streaming hint
 * (the one the caller walks past; the other stays in L1 for its next
 * blocks), PL_AMX_STREAM_NONE / _A / _B. */
void pl_amx_block32(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt, float *out,
                    int64_t ldo, int accumulate, int stream);
/* pl_amx_block32 from zero into out (32 floats a row) that also does the
 * previous gated block's SiLU epilogue (prev, 32 x 32: row r's 16 gates
 * and 16 ups -> 16 bf16 at hprev + r·ldh) between its k steps; prev NULL:
 * none. The bits of pl_amx_block32 and pl_silu_row16 called apart. */
void pl_amx_block32_silu(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt,
                         float *out, const float *prev, uint16_t *hprev, int64_t ldh, int stream);
/* pl_amx_block32 of A·B (kt steps) and then U·(D0 | D1) (kt2 steps, U's
 * rows ldu apart) on the same tiles: the bits of the first product then an
 * accumulating second (a matrix and its low-rank delta in one pass). */
void pl_amx_block32_seg2(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt,
                         const uint16_t *U, int64_t ldu, const uint16_t *D0, const uint16_t *D1, int64_t kt2,
                         float *out, int64_t ldo, int accumulate, int stream);
/* dst[i] = bf16(src[i] * s), the product in f32 first */
void pl_amx_to_bf16_scaled(uint16_t *dst, const float *src, int64_t n, float s);
/* rows of 16 values (ldd / lds apart) rounded as pl_amx_to_bf16 */
void pl_amx_to_bf16_16(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int rows);
/* dst[i] = bf16(src[i]), round to nearest even */
void pl_amx_to_bf16(uint16_t *dst, const float *src, int64_t n);
/* pl_bf16_tiles_pack_rowptr's layouts, 16 rows (one panel) or two
 * reduction rows (one tile row of every panel) at a time */
void pl_amx_pack_panel16(const float *const *rows, int64_t n_in, int64_t kt, uint16_t *panel);
void pl_amx_pack_pair(const float *r0, const float *r1, int64_t n_in, int64_t np, int64_t kt, uint16_t *row0);
/* the same from rows already in bf16 (copied, not rounded) */
void pl_amx_pack_panel16_bf16(const uint16_t *const *rows, int64_t n_in, int64_t kt, uint16_t *panel);
void pl_amx_pack_pair_bf16(const uint16_t *r0, const uint16_t *r1, int64_t n_in, int64_t np, int64_t kt, uint16_t *row0);
#endif

#endif

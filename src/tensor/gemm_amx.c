/* gemm_amx.c — the AMX tile kernel of the bf16 matrix products (gemm.c).
 *
 * Compiled with AMX-TILE/AMX-BF16 and AVX-512 BF16 flags (Makefile: files
 * named *_amx.c); called only after gemm.c has checked the CPU and asked
 * the kernel for the tile-data permission.
 *
 * Tiles: 0-3 the 2x2 block of 16x16 f32 results, 4-5 two 16-row strips
 * of A (16 rows x 32 bf16), 6-7 two B tiles (16 k-pairs x 16 columns x 2,
 * the VNNI layout gemm.c packs). One call computes a 32x32 block of C
 * over the whole reduction, in k order, starting from zero or (accumulate)
 * from the block already in out, and stores it to out (rows ldo apart).
 * The streaming hint only changes caching, never the sums.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "tensor/exp512.h"
#include "tensor/gemm_impl.h"

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* whether this thread's tiles are configured (pl_amx_release clears it) */
static _Thread_local int configured;

void pl_amx_configure(void) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 8; i++) {
        c.rows[i] = 16;
        c.colsb[i] = 64;
    }
    /* gcc 12 does not see ldtilecfg read the struct and drops the stores */
    __asm__ volatile("" : : "m"(c) : "memory");
    _tile_loadconfig(&c);
    configured = 1;
}

void pl_amx_ensure(void) {
    if (!configured) pl_amx_configure();
}

void pl_amx_release(void) {
    _tile_release();
    configured = 0;
}

/* The k loop; the operand a thread walks past (the other stays for its
 * next blocks) is loaded with the streaming hint, so it does not push the
 * staying one out of L1. After each step's products, up to per rows of a
 * previous gated block's SiLU epilogue (none when per is 0), so that
 * vector work runs while the tile unit multiplies. */
#define BLOCK32_LOOP(LOADA, LOADB)                                                                      \
    for (int64_t t = 0; t < kt; t++) {                                                                  \
        LOADA(4, A + t * PL_GEMM_KT, sa);                                                               \
        LOADB(6, B0 + t * PL_GEMM_TILE, 64);                                                            \
        LOADB(7, B1 + t * PL_GEMM_TILE, 64);                                                            \
        _tile_dpbf16ps(0, 4, 6);                                                                        \
        _tile_dpbf16ps(1, 4, 7);                                                                        \
        LOADA(5, A1 + t * PL_GEMM_KT, sa);                                                              \
        _tile_dpbf16ps(2, 5, 6);                                                                        \
        _tile_dpbf16ps(3, 5, 7);                                                                        \
        for (int q = 0; q < per && r < 32; q++, r++) pl_silu_row16(prev + r * 32, hprev + r * ldh); \
    }

/* One 32 x 32 block, and (prev not NULL) the previous gated block's 32
 * SiLU rows spread over its k steps; then (kt2 > 0) U·(D0 | D1) on the same
 * tiles, U's rows ldu apart (a low-rank delta after the matrix). */
static inline __attribute__((always_inline)) void block32(const uint16_t *A, int64_t lda, const uint16_t *B0,
                                                          const uint16_t *B1, int64_t kt, float *out, int64_t ldo,
                                                          int accumulate, int stream, const float *prev,
                                                          uint16_t *hprev, int64_t ldh, const uint16_t *U,
                                                          int64_t ldu, const uint16_t *D0, const uint16_t *D1,
                                                          int64_t kt2) {
    const size_t sa = (size_t)lda * sizeof(uint16_t), so = (size_t)ldo * sizeof(float);
    const uint16_t *A1 = A + 16 * lda;
    const int per = prev ? (int)((32 + kt - 1) / kt) : 0;
    int r = prev ? 0 : 32;
    if (accumulate) {
        _tile_loadd(0, out, so);
        _tile_loadd(1, out + 16, so);
        _tile_loadd(2, out + 16 * ldo, so);
        _tile_loadd(3, out + 16 * ldo + 16, so);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    if (stream == PL_AMX_STREAM_B) {
        BLOCK32_LOOP(_tile_loadd, _tile_stream_loadd)
    } else if (stream == PL_AMX_STREAM_A) {
        BLOCK32_LOOP(_tile_stream_loadd, _tile_loadd)
    } else {
        BLOCK32_LOOP(_tile_loadd, _tile_loadd)
    }
    for (; r < 32; r++) pl_silu_row16(prev + r * 32, hprev + r * ldh);
    for (int64_t t = 0; t < kt2; t++) {
        const size_t su = (size_t)ldu * sizeof(uint16_t);
        _tile_loadd(4, U + t * PL_GEMM_KT, su);
        _tile_loadd(6, D0 + t * PL_GEMM_TILE, 64);
        _tile_loadd(7, D1 + t * PL_GEMM_TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, U + 16 * ldu + t * PL_GEMM_KT, su);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, so);
    _tile_stored(1, out + 16, so);
    _tile_stored(2, out + 16 * ldo, so);
    _tile_stored(3, out + 16 * ldo + 16, so);
}

void pl_amx_block32(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt, float *out,
                    int64_t ldo, int accumulate, int stream) {
    block32(A, lda, B0, B1, kt, out, ldo, accumulate, stream, NULL, NULL, 0, NULL, 0, NULL, NULL, 0);
}

void pl_amx_block32_silu(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt,
                         float *out, const float *prev, uint16_t *hprev, int64_t ldh, int stream) {
    block32(A, lda, B0, B1, kt, out, 32, 0, stream, prev, hprev, ldh, NULL, 0, NULL, NULL, 0);
}

void pl_amx_block32_seg2(const uint16_t *A, int64_t lda, const uint16_t *B0, const uint16_t *B1, int64_t kt,
                         const uint16_t *U, int64_t ldu, const uint16_t *D0, const uint16_t *D1, int64_t kt2,
                         float *out, int64_t ldo, int accumulate, int stream) {
    block32(A, lda, B0, B1, kt, out, ldo, accumulate, stream, NULL, NULL, 0, U, ldu, D0, D1, kt2);
}

/* dst[i] = bf16(src[i] * s) (the product rounded to f32 first) */
void pl_amx_to_bf16_scaled(uint16_t *dst, const float *src, int64_t n, float s) {
    const __m512 vs = _mm512_set1_ps(s);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_loadu_ps(src + i), vs));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + i), vs));
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
    }
}

/* rows of 16: dst row r (ldd apart) = bf16(src row r (lds apart)) */
void pl_amx_to_bf16_16(uint16_t *dst, int64_t ldd, const float *src, int64_t lds, int rows) {
    for (int r = 0; r < rows; r++) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + r * lds));
        _mm256_storeu_si256((__m256i *)(dst + r * ldd), (__m256i)h);
    }
}

/* round to nearest even, 16 at a time (NaN stays NaN) */
void pl_amx_to_bf16(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, (__m256i)h);
    }
}

/* A tile from 16 rows of 32 bf16 (buf, row c at c * 32): lane c of tile
 * row r is dword r of row c */
static inline void tile_from_rows16(const uint16_t *buf, uint16_t *tile) {
    const __m512i idx = _mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64, 48, 32, 16, 0);
    for (int r = 0; r < 16; r++)
        _mm512_storeu_si512(tile + r * 32, _mm512_i32gather_epi32(idx, (const int *)(const void *)buf + r, 4));
}

/* A tile row from two reduction rows' 16 bf16 each: their values
 * interleaved (a's at even, b's at odd positions) */
static inline void pair_row16(__m256i a, __m256i b, uint16_t *dst) {
    const __m512i lo = _mm512_cvtepu16_epi32(a), hi = _mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16);
    _mm512_storeu_si512(dst, _mm512_or_si512(lo, hi));
}

/* One panel of 16 weight rows (output columns; rows[c] NULL: a zero
 * column) into its kt tiles: tile t, row r, column c holds the pair
 * (32t + 2r, 32t + 2r + 1) of row c, padding zero. */
void pl_amx_pack_panel16(const float *const *rows, int64_t n_in, int64_t kt, uint16_t *panel) {
    uint16_t buf[16 * PL_GEMM_KT] __attribute__((aligned(64)));
    for (int64_t t = 0; t < kt; t++) {
        const int64_t k0 = t * PL_GEMM_KT, left = n_in - k0;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        for (int c = 0; c < 16; c++) {
            const float *src = rows[c];
            const __m512 a = src ? _mm512_maskz_loadu_ps(m0, src + k0) : _mm512_setzero_ps();
            const __m512 b = src ? _mm512_maskz_loadu_ps(m1, src + k0 + 16) : _mm512_setzero_ps();
            _mm256_store_si256((__m256i *)(buf + c * 32), (__m256i)_mm512_cvtneps_pbh(a));
            _mm256_store_si256((__m256i *)(buf + c * 32 + 16), (__m256i)_mm512_cvtneps_pbh(b));
        }
        tile_from_rows16(buf, panel + t * PL_GEMM_TILE);
    }
}

/* pl_amx_pack_panel16 from bf16 rows: a row's 32 values of tile t are one
 * 64-byte load (masked at the end) */
void pl_amx_pack_panel16_bf16(const uint16_t *const *rows, int64_t n_in, int64_t kt, uint16_t *panel) {
    uint16_t buf[16 * PL_GEMM_KT] __attribute__((aligned(64)));
    for (int64_t t = 0; t < kt; t++) {
        const int64_t k0 = t * PL_GEMM_KT, left = n_in - k0;
        const __mmask32 m = left >= 32 ? (__mmask32)0xFFFFFFFFu : left > 0 ? (__mmask32)((1u << left) - 1) : 0;
        for (int c = 0; c < 16; c++)
            _mm512_store_si512(buf + c * 32, rows[c] ? _mm512_maskz_loadu_epi16(m, rows[c] + k0) : _mm512_setzero_si512());
        tile_from_rows16(buf, panel + t * PL_GEMM_TILE);
    }
}

/* pl_amx_pack_pair from bf16 rows */
void pl_amx_pack_pair_bf16(const uint16_t *r0, const uint16_t *r1, int64_t n_in, int64_t np, int64_t kt, uint16_t *row0) {
    for (int64_t p = 0; p < np; p++) {
        const int64_t c0 = 16 * p, left = n_in - c0;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        const __m256i a = r0 ? _mm256_maskz_loadu_epi16(m, r0 + c0) : _mm256_setzero_si256();
        const __m256i b = r1 ? _mm256_maskz_loadu_epi16(m, r1 + c0) : _mm256_setzero_si256();
        pair_row16(a, b, row0 + p * kt * PL_GEMM_TILE);
    }
}

/* Two reduction rows (r0 at an even index k, r1 at k + 1; NULL: zeros) of a
 * transposed weight with n_in columns into their tile row of every panel:
 * tiles + (p kt) * 512 + row offset, columns 16p .. 16p + 15 interleaved. */
void pl_amx_pack_pair(const float *r0, const float *r1, int64_t n_in, int64_t np, int64_t kt, uint16_t *row0) {
    for (int64_t p = 0; p < np; p++) {
        const int64_t c0 = 16 * p, left = n_in - c0;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        const __m512 a = r0 ? _mm512_maskz_loadu_ps(m, r0 + c0) : _mm512_setzero_ps();
        const __m512 b = r1 ? _mm512_maskz_loadu_ps(m, r1 + c0) : _mm512_setzero_ps();
        pair_row16((__m256i)_mm512_cvtneps_pbh(a), (__m256i)_mm512_cvtneps_pbh(b), row0 + p * kt * PL_GEMM_TILE);
    }
}

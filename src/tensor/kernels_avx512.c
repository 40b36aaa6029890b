/* kernels_avx512.c — AVX-512 kernels (F, BW, VL, DQ, VNNI, BF16).
 *
 * Compiled with the AVX-512 flags (Makefile) and only called after
 * pl_simd_detected() saw every one of those features.
 *
 *   gemm_f32      exact path: 16-lane FMA accumulators, one per (row, token)
 *                 pair, masked tail, fixed reduction tree -> the same bits
 *                 for a given (row, token) whatever the tile shape.
 *   dequant       f16, bf16, q8_0, q4_0, q4_K, q6_K: same operations as the
 *                 scalar reference, elementwise (bit-identical).
 *   quant_act     q8_0, q8_1, q8_K, f16, bf16 activation rows: the reference
 *                 quantizers' bytes, vectorized.
 *   f16           llama path: rows widened to f32, f32 micro-kernel.
 *   bf16          llama path: vdpbf16ps on the rows in place, 4x4 tiles.
 *   tiled         q8_0, q4_0, q5_0 weights x q8_0 activations and q4_1,
 *                 q5_1 x q8_1 (vpdpbusd), and
 *                 q2_K..q6_K x q8_K (vpmaddubsw + vpdpwssd): repacked rows,
 *                 4 rows x 4 (q8_0 family) or 2 (K) tokens per step.
 *
 * Every dtype with a llama path has a tiled AVX-512 kernel.
 */
#include "tensor/tensor_impl.h"
#include "tensor/exp512.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* F16C conversion: the same bits as pl_fp16_to_fp32 for every half (tested) */
#define H2F(h) _cvtsh_ss(h)

/* ---- exact path: f32 micro-kernel --------------------------------------- */

#define MAXT 4

/* 4 rows x NT tokens; NT is a constant after inlining, so the accumulators
 * stay in registers. Per (row, token): acc += w*x over 16-lane steps, then a
 * masked tail step, then the fixed reduction tree. */
static inline __attribute__((always_inline)) void gemm4(const float *w, int64_t ldw, const float *x, int64_t ldx,
                                                       const int NT, int64_t n, float *y, int64_t ldy) {
    const int64_t nfull = n & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    __m512 acc[4][MAXT];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < nfull; k += 16) {
        const __m512 w0 = _mm512_loadu_ps(w + k), w1 = _mm512_loadu_ps(w + ldw + k),
                     w2 = _mm512_loadu_ps(w + 2 * ldw + k), w3 = _mm512_loadu_ps(w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm512_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm512_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    if (k < n) {
        const __m512 w0 = _mm512_maskz_loadu_ps(tail, w + k), w1 = _mm512_maskz_loadu_ps(tail, w + ldw + k),
                     w2 = _mm512_maskz_loadu_ps(tail, w + 2 * ldw + k), w3 = _mm512_maskz_loadu_ps(tail, w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, x + t * ldx + k);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm512_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm512_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

static void gemm_f32(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt, int64_t n,
                     float *y, int64_t ldy) {
    if (nr == 4) {
        switch (nt) {
        case 4: gemm4(w, ldw, x, ldx, 4, n, y, ldy); return;
        case 3: gemm4(w, ldw, x, ldx, 3, n, y, ldy); return;
        case 2: gemm4(w, ldw, x, ldx, 2, n, y, ldy); return;
        case 1: gemm4(w, ldw, x, ldx, 1, n, y, ldy); return;
        default: break;
        }
    }
    /* fewer than 4 rows: one (row, token) at a time, same per-lane order */
    const int64_t nfull = n & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float *wr = w + r * ldw, *xr = x + t * ldx;
            __m512 acc = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k < nfull; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(xr + k), acc);
            if (k < n)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, wr + k), _mm512_maskz_loadu_ps(tail, xr + k), acc);
            y[t * ldy + r] = _mm512_reduce_add_ps(acc);
        }
}

/* gemm4 over the slice [k0, k1), accumulators kept in acc between slices */
static inline __attribute__((always_inline)) void gemm4k(const float *w, int64_t ldw, const float *x, int64_t ldx,
                                                        const int NT, int64_t k0, int64_t k1, int64_t n, float *accb,
                                                        float *y, int64_t ldy) {
    const int64_t kend = k1 < n ? k1 : (n & ~(int64_t)15);
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    __m512 acc[4][MAXT];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(accb + 16 * (4 * t + r));
    int64_t k = k0;
    for (; k < kend; k += 16) {
        const __m512 w0 = _mm512_loadu_ps(w + k), w1 = _mm512_loadu_ps(w + ldw + k),
                     w2 = _mm512_loadu_ps(w + 2 * ldw + k), w3 = _mm512_loadu_ps(w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_loadu_ps(x + t * ldx + k);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm512_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm512_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    if (k1 < n) {
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) _mm512_storeu_ps(accb + 16 * (4 * t + r), acc[r][t]);
        return;
    }
    if (k < n) {
        const __m512 w0 = _mm512_maskz_loadu_ps(tail, w + k), w1 = _mm512_maskz_loadu_ps(tail, w + ldw + k),
                     w2 = _mm512_maskz_loadu_ps(tail, w + 2 * ldw + k), w3 = _mm512_maskz_loadu_ps(tail, w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512 xv = _mm512_maskz_loadu_ps(tail, x + t * ldx + k);
            acc[0][t] = _mm512_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm512_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm512_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm512_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

static void gemm_f32k(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt, int64_t k0, int64_t k1,
                      int64_t n, float *accb, float *y, int64_t ldy) {
    if (nr == 4) {
        switch (nt) {
        case 4: gemm4k(w, ldw, x, ldx, 4, k0, k1, n, accb, y, ldy); return;
        case 3: gemm4k(w, ldw, x, ldx, 3, k0, k1, n, accb, y, ldy); return;
        case 2: gemm4k(w, ldw, x, ldx, 2, k0, k1, n, accb, y, ldy); return;
        case 1: gemm4k(w, ldw, x, ldx, 1, k0, k1, n, accb, y, ldy); return;
        default: break;
        }
    }
    const int64_t kend = k1 < n ? k1 : (n & ~(int64_t)15);
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float *wr = w + r * ldw, *xr = x + t * ldx;
            float *ab = accb + 16 * (4 * t + r);
            __m512 acc = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(ab);
            int64_t k = k0;
            for (; k < kend; k += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(wr + k), _mm512_loadu_ps(xr + k), acc);
            if (k1 < n) {
                _mm512_storeu_ps(ab, acc);
                continue;
            }
            if (k < n)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, wr + k), _mm512_maskz_loadu_ps(tail, xr + k), acc);
            y[t * ldy + r] = _mm512_reduce_add_ps(acc);
        }
}

/* ---- dequantizers (bit-identical to the scalar reference) --------------- */

static void deq_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
    for (; i < n; i++) dst[i] = pl_fp16_to_fp32(h[i]);
}

static void deq_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(h + i)));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
    }
    for (; i < n; i++) dst[i] = pl_bf16_to_fp32(h[i]);
}

static void deq_q8_0(const void *src, float *dst, int64_t n) {
    const blk_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const __m512 d = _mm512_set1_ps(H2F(b[i].d));
        const __m128i *q = (const __m128i *)b[i].qs;
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q))), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q + 1))), d));
    }
}

static void deq_q4_0(const void *src, float *dst, int64_t n) {
    const blk_q4_0 *b = src;
    const __m128i m4 = _mm_set1_epi8(0xF), eight = _mm_set1_epi8(8);
    for (int64_t i = 0; i < n / QK32; i++, dst += QK32) {
        const __m512 d = _mm512_set1_ps(H2F(b[i].d));
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), eight);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight);
        _mm512_storeu_ps(dst, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(lo)), d));
        _mm512_storeu_ps(dst + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(hi)), d));
    }
}

/* q4_K: y = (d*sc) * q - (dmin*m), per 32-group */
static void deq_q4_K(const void *src, float *dst, int64_t n) {
    const blk_q4_K *b = src;
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t i = 0; i < n / QKK; i++) {
        const float d = H2F(b[i].d), min = H2F(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            k4_scale_min(j, b[i].scales, &sc, &m);
            const __m512 dv = _mm512_set1_ps(d * sc), mv = _mm512_set1_ps(min * m);
            for (int h = 0; h < 2; h++) {
                __m128i q = _mm_loadu_si128((const __m128i *)(b[i].qs + 32 * (j / 2) + 16 * h));
                if (j & 1) q = _mm_srli_epi16(q, 4);
                q = _mm_and_si128(q, m4);
                const __m512 qf = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(q));
                _mm512_storeu_ps(dst + 16 * h, _mm512_sub_ps(_mm512_mul_ps(dv, qf), mv));
            }
            dst += 32;
        }
    }
}

/* q6 quants of one 128-half as four 32-byte vectors, values 0..63 (unsigned) */
static inline void q6_half(const uint8_t *ql, const uint8_t *qh, __m256i e[4]) {
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
    const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
    e[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
    e[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
    e[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
    e[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
}

/* q6_K: y = (d * sc) * (q - 32), per 16-group */
static void deq_q6_K(const void *src, float *dst, int64_t n) {
    const blk_q6_K *b = src;
    const __m512i k32 = _mm512_set1_epi32(32);
    for (int64_t i = 0; i < n / QKK; i++) {
        const float d = H2F(b[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i e[4];
            q6_half(b[i].ql + 64 * h, b[i].qh + 32 * h, e);
            uint8_t tmp[128];
            for (int c = 0; c < 4; c++) _mm256_storeu_si256((__m256i *)(tmp + 32 * c), e[c]);
            for (int g = 0; g < 8; g++) {
                const int grp = 8 * h + g;
                const __m512 dv = _mm512_set1_ps(d * (float)b[i].scales[grp]);
                const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(tmp + 16 * g))), k32);
                _mm512_storeu_ps(dst + 16 * grp, _mm512_mul_ps(dv, _mm512_cvtepi32_ps(q)));
            }
        }
        dst += QKK;
    }
}

/* ---- activation quantizers (bytes identical to the reference) -----------
 * Same operations as dtype.c / quant_k.c, elementwise: the max-abs is exact
 * in any order, d and 1/d are computed in scalar code, x*id rounds the same,
 * roundf (ties away from zero) is rebuilt from trunc and the exact fraction,
 * nearest_int is round-to-nearest-even (vcvtps2dq, default MXCSR). */

static inline __m512 round_away(__m512 v) {
    const __m512 a = _mm512_abs_ps(v);
    const __m512 t = _mm512_roundscale_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(a, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 r = _mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.0f));
    return _mm512_or_ps(r, _mm512_and_ps(v, _mm512_set1_ps(-0.0f))); /* copy the sign */
}

static float amax32(const float *x) {
    const __m512 a = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_abs_ps(_mm512_loadu_ps(x + 16)));
    return _mm512_reduce_max_ps(a);
}

static void qact_q8_0(const float *x, void *dst, int64_t n) {
    blk_q8_0 *y = dst;
    for (int64_t i = 0; i < n / QK32; i++, x += QK32) {
        const float amax = amax32(x);
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 idv = _mm512_set1_ps(id);
        for (int h = 0; h < 2; h++) {
            const __m512i q = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), idv)));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * h), _mm512_cvtepi32_epi8(q));
        }
    }
}

static void qact_q8_1(const float *x, void *dst, int64_t n) {
    blk_q8_1 *y = dst;
    for (int64_t i = 0; i < n / QK32; i++, x += QK32) {
        const float amax = amax32(x);
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = (uint16_t)_cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        const __m512 idv = _mm512_set1_ps(id);
        __m512i sum = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const __m512i q = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * h), idv)));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * h), _mm512_cvtepi32_epi8(q));
            sum = _mm512_add_epi32(sum, q);
        }
        y[i].s = (uint16_t)_cvtss_sh((float)_mm512_reduce_add_epi32(sum) * d, _MM_FROUND_TO_NEAREST_INT);
    }
}

static void qact_q8_K(const float *x, void *dst, int64_t n) {
    blk_q8_K *y = dst;
    for (int64_t i = 0; i < n / QKK; i++, x += QKK) {
        /* the signed value of largest magnitude, first occurrence (as the reference) */
        float max = 0, amax = 0;
        __m512 va = _mm512_setzero_ps();
        for (int j = 0; j < QKK; j += 16) va = _mm512_max_ps(va, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        amax = _mm512_reduce_max_ps(va);
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        for (int j = 0; j < QKK; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        const __m512 isv = _mm512_set1_ps(iscale);
        for (int j = 0; j < QKK; j += 16) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), isv));
            q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[i].qs + j), _mm512_cvtepi32_epi8(q));
            y[i].bsums[j / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1 / iscale;
    }
}

static void qact_f16(const float *x, void *dst, int64_t n) {
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(h + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) h[i] = pl_fp32_to_fp16(x[i]);
}

/* bf16: NaN -> (u >> 16) | 64, else (u + 0x7fff + ((u >> 16) & 1)) >> 16 */
static void qact_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *h = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i u = _mm512_loadu_si512((const void *)(x + i));
        const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
        r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(64)));
        _mm256_storeu_si256((__m256i *)(h + i), _mm512_cvtepi32_epi16(r));
    }
    for (; i < n; i++) h[i] = pl_fp32_to_bf16(x[i]);
}

/* ---- llama-path dots ---------------------------------------------------- */

static inline __m512i pair256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512 pair_scale(float a, float b) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(a)), _mm256_set1_ps(b), 1);
}

static inline __m256i q4_0_unpack(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0xF);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                              _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

/* ---- tiled llama path for q8_0 activations (q8_0, q4_0, q5_0 weights) -----
 * Per pair of 32-blocks (64 elements):
 *   weight row:  64 bytes u = w + off (off 128 for q8_0, 8 for q4_0, 16 for q5_0),
 *                16 floats dw (block scale, 8 lanes per block)
 *   activation:  64 bytes x (int8), 16 int32 c = -off * (sum of the 4 x
 *                bytes of the lane), 16 floats dx
 * A lane's vpdpbusd(c, u, x) is then exactly sum_4 w*x (the same integer as
 * the sign-trick dot), converted to float, times dw*dx, summed per lane in
 * pair order, and reduced with the fixed tree. Blocks are padded to an even
 * count with zeros (adds exact zeros). */

static inline int64_t npairs(int64_t n) { return (n / QK32 + 1) / 2; }
static size_t xprep_bytes(int64_t n) { return (size_t)npairs(n) * 192; }
static size_t wprep_bytes(int64_t n) { return (size_t)npairs(n) * 128; }

static void xprep(pl_dtype wtype, const void *xq, uint8_t *xp, int64_t n) {
    const blk_q8_0 *b = xq;
    const int64_t nb = n / QK32, np = npairs(n);
    int32_t *corr = (int32_t *)(xp + 64 * np);
    float *dx = (float *)(xp + 128 * np);
    const __m512i negoff = _mm512_set1_epi32(wtype == PL_DTYPE_Q8_0 ? -128 : wtype == PL_DTYPE_Q5_0 ? -16 : -8);
    for (int64_t p = 0; p < np; p++) {
        const int64_t b0 = 2 * p, b1 = 2 * p + 1;
        const __m256i lo = _mm256_loadu_si256((const __m256i *)b[b0].qs);
        const __m256i hi = b1 < nb ? _mm256_loadu_si256((const __m256i *)b[b1].qs) : _mm256_setzero_si256();
        const __m512i xv = pair256(lo, hi);
        _mm512_storeu_si512((void *)(xp + 64 * p), xv);
        const __m512i s4 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(1), xv);
        _mm512_storeu_si512((void *)(corr + 16 * p), _mm512_mullo_epi32(s4, negoff));
        _mm512_storeu_ps(dx + 16 * p, pair_scale(H2F(b[b0].d), b1 < nb ? H2F(b[b1].d) : 0.0f));
    }
}

static void wprep_q8_0(const void *w, uint8_t *wp, int64_t n) {
    const blk_q8_0 *b = w;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dw = (float *)(wp + 64 * np);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int64_t p = 0; p < np; p++) {
        const int64_t b0 = 2 * p, b1 = 2 * p + 1;
        const __m256i lo = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b[b0].qs), flip);
        const __m256i hi = b1 < nb ? _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b[b1].qs), flip)
                                   : _mm256_setzero_si256();
        _mm512_storeu_si512((void *)(wp + 64 * p), pair256(lo, hi));
        _mm512_storeu_ps(dw + 16 * p, pair_scale(H2F(b[b0].d), b1 < nb ? H2F(b[b1].d) : 0.0f));
    }
}

static void wprep_q4_0(const void *w, uint8_t *wp, int64_t n) {
    const blk_q4_0 *b = w;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dw = (float *)(wp + 64 * np);
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t p = 0; p < np; p++) {
        const int64_t b0 = 2 * p, b1 = 2 * p + 1;
        const __m256i lo = _mm256_add_epi8(q4_0_unpack(b[b0].qs), eight);
        const __m256i hi = b1 < nb ? _mm256_add_epi8(q4_0_unpack(b[b1].qs), eight) : _mm256_setzero_si256();
        _mm512_storeu_si512((void *)(wp + 64 * p), pair256(lo, hi));
        _mm512_storeu_ps(dw + 16 * p, pair_scale(H2F(b[b0].d), b1 < nb ? H2F(b[b1].d) : 0.0f));
    }
}

/* q5_0: u = low nibble | fifth bit << 4 (0..31), off 16 */
static inline __m256i q5_0_unpack(const blk_q5_0 *b) {
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs), m4 = _mm_set1_epi8(0xF);
    const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                               _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
    const __m256i hi = _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(16)); /* bit j -> element j */
    return _mm256_or_si256(lo, hi);
}

static void wprep_q5_0(const void *w, uint8_t *wp, int64_t n) {
    const blk_q5_0 *b = w;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dw = (float *)(wp + 64 * np);
    for (int64_t p = 0; p < np; p++) {
        const int64_t b0 = 2 * p, b1 = 2 * p + 1;
        const __m256i lo = q5_0_unpack(&b[b0]);
        const __m256i hi = b1 < nb ? q5_0_unpack(&b[b1]) : _mm256_setzero_si256();
        _mm512_storeu_si512((void *)(wp + 64 * p), pair256(lo, hi));
        _mm512_storeu_ps(dw + 16 * p, pair_scale(H2F(b[b0].d), b1 < nb ? H2F(b[b1].d) : 0.0f));
    }
}

/* ---- tiled llama path for q8_1 activations (q4_1, q5_1 weights) ----------
 * x = d*q + m with q unsigned: per block d_w*d_x*sum(q*x8) + m_w*s_x.
 *   weight row:  64 bytes q, 16 floats d_w, 16 floats m_w (lanes 0 and 8
 *                of each pair carry m, the others 0)
 *   activation:  64 bytes x8, 16 floats d_x, 16 floats s_x (all lanes)
 * acc += cvt(vpdpbusd(0, q, x8)) * (d_w*d_x) + m_w*s_x, lane-wise. */
static size_t x1prep_bytes(int64_t n) { return (size_t)npairs(n) * 192; }
static size_t w1prep_bytes(int64_t n) { return (size_t)npairs(n) * 192; }

static void x1prep(pl_dtype wtype, const void *xq, uint8_t *xp, int64_t n) {
    const blk_q8_1 *b = xq;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dx = (float *)(xp + 64 * np), *sx = (float *)(xp + 128 * np);
    (void)wtype;
    for (int64_t p = 0; p < np; p++) {
        const int64_t b0 = 2 * p, b1 = 2 * p + 1;
        const __m256i lo = _mm256_loadu_si256((const __m256i *)b[b0].qs);
        const __m256i hi = b1 < nb ? _mm256_loadu_si256((const __m256i *)b[b1].qs) : _mm256_setzero_si256();
        _mm512_storeu_si512((void *)(xp + 64 * p), pair256(lo, hi));
        _mm512_storeu_ps(dx + 16 * p, pair_scale(H2F(b[b0].d), b1 < nb ? H2F(b[b1].d) : 0.0f));
        _mm512_storeu_ps(sx + 16 * p, pair_scale(H2F(b[b0].s), b1 < nb ? H2F(b[b1].s) : 0.0f));
    }
}

static inline __m512 lane0_8(float a, float b) {
    return _mm512_maskz_mov_ps(0x0101, pair_scale(a, b));
}

static void wprep_q4_1(const void *w, uint8_t *wp, int64_t n) {
    const blk_q4_1 *b = w;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dw = (float *)(wp + 64 * np), *mw = (float *)(wp + 128 * np);
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int64_t p = 0; p < np; p++) {
        __m256i v[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        float d[2] = {0, 0}, m[2] = {0, 0};
        for (int h = 0; h < 2 && 2 * p + h < nb; h++) {
            const blk_q4_1 *x = &b[2 * p + h];
            const __m128i q = _mm_loadu_si128((const __m128i *)x->qs);
            v[h] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)), _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
            d[h] = H2F(x->d);
            m[h] = H2F(x->m);
        }
        _mm512_storeu_si512((void *)(wp + 64 * p), pair256(v[0], v[1]));
        _mm512_storeu_ps(dw + 16 * p, pair_scale(d[0], d[1]));
        _mm512_storeu_ps(mw + 16 * p, lane0_8(m[0], m[1]));
    }
}

static void wprep_q5_1(const void *w, uint8_t *wp, int64_t n) {
    const blk_q5_1 *b = w;
    const int64_t nb = n / QK32, np = npairs(n);
    float *dw = (float *)(wp + 64 * np), *mw = (float *)(wp + 128 * np);
    for (int64_t p = 0; p < np; p++) {
        __m256i v[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        float d[2] = {0, 0}, m[2] = {0, 0};
        for (int h = 0; h < 2 && 2 * p + h < nb; h++) {
            const blk_q5_1 *x = &b[2 * p + h];
            blk_q5_0 tmp; /* same quant layout after the scales */
            memcpy(tmp.qh, x->qh, 4);
            memcpy(tmp.qs, x->qs, 16);
            v[h] = q5_0_unpack(&tmp);
            d[h] = H2F(x->d);
            m[h] = H2F(x->m);
        }
        _mm512_storeu_si512((void *)(wp + 64 * p), pair256(v[0], v[1]));
        _mm512_storeu_ps(dw + 16 * p, pair_scale(d[0], d[1]));
        _mm512_storeu_ps(mw + 16 * p, lane0_8(m[0], m[1]));
    }
}

#define T1STEP(acc, wv, dwv, mwv, xv, dxv, sxv)                                                              \
    acc = _mm512_fmadd_ps(mwv, sxv,                                                                         \
                          _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, xv)), \
                                          _mm512_mul_ps(dwv, dxv), acc))

static void tile_q8_1(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n,
                      float *y, int64_t ldy) {
    const int64_t np = npairs(n);
    const size_t o1 = 64 * (size_t)np, o2 = 128 * (size_t)np;
    for (int t = 0; t < nt; t++) {
        const uint8_t *xr = xp + t * xs;
        int r = 0;
        for (; r + 2 <= nr; r += 2) { /* two rows share the activation loads */
            const uint8_t *w0 = wp + r * ws, *w1 = w0 + ws;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            for (int64_t p = 0; p < np; p++) {
                const __m512i xv = _mm512_loadu_si512((const void *)(xr + 64 * p));
                const __m512 dxv = _mm512_loadu_ps((const float *)(xr + o1) + 16 * p);
                const __m512 sxv = _mm512_loadu_ps((const float *)(xr + o2) + 16 * p);
                T1STEP(a0, _mm512_loadu_si512((const void *)(w0 + 64 * p)), _mm512_loadu_ps((const float *)(w0 + o1) + 16 * p),
                       _mm512_loadu_ps((const float *)(w0 + o2) + 16 * p), xv, dxv, sxv);
                T1STEP(a1, _mm512_loadu_si512((const void *)(w1 + 64 * p)), _mm512_loadu_ps((const float *)(w1 + o1) + 16 * p),
                       _mm512_loadu_ps((const float *)(w1 + o2) + 16 * p), xv, dxv, sxv);
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(a0);
            y[t * ldy + r + 1] = _mm512_reduce_add_ps(a1);
        }
        for (; r < nr; r++) {
            const uint8_t *w0 = wp + r * ws;
            __m512 a0 = _mm512_setzero_ps();
            for (int64_t p = 0; p < np; p++)
                T1STEP(a0, _mm512_loadu_si512((const void *)(w0 + 64 * p)), _mm512_loadu_ps((const float *)(w0 + o1) + 16 * p),
                       _mm512_loadu_ps((const float *)(w0 + o2) + 16 * p), _mm512_loadu_si512((const void *)(xr + 64 * p)),
                       _mm512_loadu_ps((const float *)(xr + o1) + 16 * p), _mm512_loadu_ps((const float *)(xr + o2) + 16 * p));
            y[t * ldy + r] = _mm512_reduce_add_ps(a0);
        }
    }
}
#undef T1STEP

#define TSTEP(acc, wv, dwv, xv, cv, dxv) \
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cv, wv, xv)), _mm512_mul_ps(dwv, dxv), acc)

/* 4 rows x NT (1 to 4) tokens; per (row, token) the same ops as the
 * single-pair loop in tile_q8 */
static inline __attribute__((always_inline)) void q8_4(const uint8_t *wp, size_t ws, const uint8_t *xp, size_t xs,
                                                      const int NT, int64_t n, float *y, int64_t ldy) {
    const int64_t np = npairs(n);
    const size_t co = 64 * (size_t)np, so = 128 * (size_t)np; /* corr / scale offsets */
    __m512 acc[4][4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
        __m512i xv[4], cv[4];
        __m512 dxv[4];
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            xv[t] = _mm512_loadu_si512((const void *)(xp + t * xs + 64 * p));
            cv[t] = _mm512_loadu_si512((const void *)(xp + t * xs + co + 64 * p));
            dxv[t] = _mm512_loadu_ps((const float *)(xp + t * xs + so) + 16 * p);
        }
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const __m512i wv = _mm512_loadu_si512((const void *)(wp + r * ws + 64 * p));
            const __m512 dwv = _mm512_loadu_ps((const float *)(wp + r * ws + co) + 16 * p);
            #pragma GCC unroll 4
            for (int t = 0; t < NT; t++) TSTEP(acc[r][t], wv, dwv, xv[t], cv[t], dxv[t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

static void tile_q8(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n,
                    float *y, int64_t ldy) {
    if (nr == 4 && nt == 4) { q8_4(wp, ws, xp, xs, 4, n, y, ldy); return; }
    if (nr == 4 && nt == 3) { q8_4(wp, ws, xp, xs, 3, n, y, ldy); return; }
    if (nr == 4 && nt == 2) { q8_4(wp, ws, xp, xs, 2, n, y, ldy); return; }
    if (nr == 4 && nt == 1) { q8_4(wp, ws, xp, xs, 1, n, y, ldy); return; }
    const int64_t np = npairs(n);
    const size_t co = 64 * (size_t)np, so = 128 * (size_t)np;
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const uint8_t *xr = xp + t * xs, *wr = wp + r * ws;
            __m512 acc = _mm512_setzero_ps();
            for (int64_t p = 0; p < np; p++) {
                const __m512i xv = _mm512_loadu_si512((const void *)(xr + 64 * p));
                const __m512i cv = _mm512_loadu_si512((const void *)(xr + co + 64 * p));
                const __m512 dxv = _mm512_loadu_ps((const float *)(xr + so) + 16 * p);
                const __m512i wv = _mm512_loadu_si512((const void *)(wr + 64 * p));
                const __m512 dwv = _mm512_loadu_ps((const float *)(wr + co) + 16 * p);
                TSTEP(acc, wv, dwv, xv, cv, dxv);
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(acc);
        }
}

/* Decode (1 token) without the weight repack: the same lane values (u,
 * d_w) built in registers from the raw blocks, the same TSTEP, so the bits
 * equal those of the repacked kernel. UNPACK(b, i) gives block i's 32
 * unsigned bytes. */
#define DIRECT_Q8(NAME, BLK, UNPACK)                                                                     \
    static void NAME(const uint8_t *w, size_t wrow, int nr, const uint8_t *xp, int64_t n, float *y) {  \
        const int64_t nb = n / QK32, np = npairs(n);                                                     \
        const size_t co = 64 * (size_t)np, so = 128 * (size_t)np;                                        \
        for (int r0 = 0; r0 < nr; r0 += 4) {                                                             \
            const int rn = nr - r0 < 4 ? nr - r0 : 4;                                                    \
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
            for (int64_t p = 0; p < np; p++) {                                                           \
                const __m512i xv = _mm512_loadu_si512((const void *)(xp + 64 * p));                      \
                const __m512i cv = _mm512_loadu_si512((const void *)(xp + co + 64 * p));                 \
                const __m512 dxv = _mm512_loadu_ps((const float *)(xp + so) + 16 * p);                   \
                const int two = 2 * p + 1 < nb;                                                          \
                for (int r = 0; r < rn; r++) {                                                           \
                    const BLK *b = (const BLK *)(w + (size_t)(r0 + r) * wrow);                           \
                    const __m256i hi = two ? UNPACK(b, 2 * p + 1) : _mm256_setzero_si256();              \
                    const __m512i wv = pair256(UNPACK(b, 2 * p), hi);                                    \
                    const __m512 dwv = pair_scale(H2F(b[2 * p].d), two ? H2F(b[2 * p + 1].d) : 0.0f);   \
                    TSTEP(acc[r], wv, dwv, xv, cv, dxv);                                                 \
                }                                                                                        \
            }                                                                                            \
            for (int r = 0; r < rn; r++) y[r0 + r] = _mm512_reduce_add_ps(acc[r]);                       \
        }                                                                                                \
    }
#define UNPACK_Q8_0(b, i) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(b)[i].qs), _mm256_set1_epi8((char)0x80))
#define UNPACK_Q4_0(b, i) _mm256_add_epi8(q4_0_unpack((b)[i].qs), _mm256_set1_epi8(8))
#define UNPACK_Q5_0(b, i) q5_0_unpack(&(b)[i])
DIRECT_Q8(direct_q8_0, blk_q8_0, UNPACK_Q8_0)
DIRECT_Q8(direct_q4_0, blk_q4_0, UNPACK_Q4_0)
DIRECT_Q8(direct_q5_0, blk_q5_0, UNPACK_Q5_0)
#undef DIRECT_Q8
#undef TSTEP

/* ---- tiled llama path for K-quants x q8_K (q2_K .. q6_K) ------------------
 * Weight rows are repacked per 256-block into SBW bytes:
 *   u8  q[256]   quants made unsigned (q6_K: v+32, q3_K: v+4, others as stored)
 *   i16 sc[128]  scale of elements 2l and 2l+1 (the pairs vpmaddubsw forms)
 *   i16 mn[16]   multiplier of the activation's bsums[j]: the sub-block min
 *                (q2_K, q4_K, q5_K) or offset*scale (q3_K 4*sc, q6_K 32*sc)
 *   f32 d, dmin  (dmin = d for q3_K and q6_K)
 * q8_K activations are used as they are. Per (row, token, block):
 *   isum lanes = sum_c vpdpwssd(vpmaddubsw(q_c, x_c), sc_c)
 *   imin lanes = vpdpwssd(mn, bsums)
 *   acc += isum*(dx*d) - imin*(dx*dmin)        (lane-wise f32)
 * and y = the reduced acc. The integer parts are exact (|lane| < 2^24). */
#define SBW 576

static size_t kx_wprep_bytes(int64_t n) { return (size_t)(n / QKK) * SBW; }

/* fill sc[128] from per-group scales (group size gs = 16 or 32) */
static void kx_fill_sc(int16_t *sc16, const int *sc, int gs) {
    for (int l = 0; l < 128; l++) sc16[l] = (int16_t)sc[(2 * l) / gs];
}

/* scalar repack for q2_K, q3_K, q5_K (their blocks carry little data) */
static void kx_pack_scalar(pl_dtype t, const void *blk, uint8_t *out) {
    uint8_t *u = out;
    int16_t *sc16 = (int16_t *)(out + 256), *mn = (int16_t *)(out + 512);
    float *dd = (float *)(out + 544);
    int sc[16];
    if (t == PL_DTYPE_Q2_K) {
        const blk_q2_K *b = blk;
        for (int k = 0; k < QKK; k++) u[k] = (b->qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
        for (int j = 0; j < 16; j++) { sc[j] = b->scales[j] & 0xF; mn[j] = (int16_t)(b->scales[j] >> 4); }
        kx_fill_sc(sc16, sc, 16);
        dd[0] = H2F(b->d);
        dd[1] = H2F(b->dmin);
    } else if (t == PL_DTYPE_Q3_K) {
        const blk_q3_K *b = blk;
        for (int j = 0; j < 16; j++) {
            const int lo = j < 8 ? (b->scales[j] & 0xF) : (b->scales[j - 8] >> 4);
            const int hi = (b->scales[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (lo | (hi << 4)) - 32;
            mn[j] = (int16_t)(4 * sc[j]);
        }
        for (int k = 0; k < QKK; k++) {
            const int l = k % 32, shift = 2 * ((k % 128) / 32), hbit = k / 32;
            const int v = ((b->qs[32 * (k / 128) + l] >> shift) & 3) - ((b->hmask[l] >> hbit) & 1 ? 0 : 4);
            u[k] = (uint8_t)(v + 4);
        }
        kx_fill_sc(sc16, sc, 16);
        dd[0] = dd[1] = H2F(b->d);
    } else { /* q5_K */
        const blk_q5_K *b = blk;
        for (int j = 0; j < 8; j++) {
            uint8_t s8, m8;
            k4_scale_min(j, b->scales, &s8, &m8);
            sc[j] = s8;
            mn[2 * j] = mn[2 * j + 1] = m8;
            for (int l = 0; l < 32; l++) {
                const uint8_t byte = b->qs[32 * (j / 2) + l];
                u[32 * j + l] = (uint8_t)(((j & 1) ? byte >> 4 : byte & 0xF) + (((b->qh[l] >> j) & 1) << 4));
            }
        }
        kx_fill_sc(sc16, sc, 32);
        dd[0] = H2F(b->d);
        dd[1] = H2F(b->dmin);
    }
}

static void wprep_q2_K(const void *w, uint8_t *wp, int64_t n) {
    for (int64_t i = 0; i < n / QKK; i++) kx_pack_scalar(PL_DTYPE_Q2_K, (const blk_q2_K *)w + i, wp + SBW * i);
}
static void wprep_q3_K(const void *w, uint8_t *wp, int64_t n) {
    for (int64_t i = 0; i < n / QKK; i++) kx_pack_scalar(PL_DTYPE_Q3_K, (const blk_q3_K *)w + i, wp + SBW * i);
}
static void wprep_q5_K(const void *w, uint8_t *wp, int64_t n) {
    for (int64_t i = 0; i < n / QKK; i++) kx_pack_scalar(PL_DTYPE_Q5_K, (const blk_q5_K *)w + i, wp + SBW * i);
}

/* the 8 6-bit scales then the 8 6-bit mins of a q4_K/q5_K block as bytes
 * (k4_scale_min for all j at once, on 32-bit words) */
static inline void k4_unpack(const uint8_t *q12, uint8_t out[16]) {
    uint32_t u[3], o[4];
    memcpy(u, q12, 12);
    o[0] = u[0] & 0x3f3f3f3fu;                                              /* sc 0-3 */
    o[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);      /* sc 4-7 */
    o[2] = u[1] & 0x3f3f3f3fu;                                              /* m 0-3 */
    o[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4); /* m 4-7 */
    memcpy(out, o, 16);
}

/* One repacked super-block in registers (the SBW layout, field by field);
 * wprep stores it, the one-token direct kernel uses it as is. mn's upper
 * half is zero, as a zero-extended 256-bit load of the stored copy. */
typedef struct {
    __m512i q[4], sc[4], mn;
    float d, dmin;
} kx_sb;

/* int16 lane l of 64-element chunk c uses scale index (c*per + l/div) */
static inline __m512i kx_index(int c, int per, int div) {
    int16_t ix[32];
    for (int l = 0; l < 32; l++) ix[l] = (int16_t)(per * c + l / div);
    return _mm512_loadu_si512((const void *)ix);
}

static inline void kx_q4_K(const blk_q4_K *b, const __m512i idx[4], kx_sb *o) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    uint8_t sm[16];
    k4_unpack(b->scales, sm);
    const __m128i v = _mm_loadu_si128((const __m128i *)sm);
    const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(v)); /* sc in lanes 0-7 */
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        o->q[c] = pair256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
        o->sc[c] = _mm512_permutexvar_epi16(idx[c], sc16);
    }
    const __m128i m8 = _mm_srli_si128(v, 8);      /* the mins */
    const __m128i m16 = _mm_unpacklo_epi8(m8, m8); /* each twice */
    o->mn = _mm512_zextsi256_si512(_mm256_cvtepu8_epi16(m16));
    o->d = H2F(b->d);
    o->dmin = H2F(b->dmin);
}

static inline void kx_q6_K(const blk_q6_K *b, const __m512i idx[4], kx_sb *o) {
    for (int h = 0; h < 2; h++) {
        __m256i e[4];
        q6_half(b->ql + 64 * h, b->qh + 32 * h, e);
        o->q[2 * h] = pair256(e[0], e[1]);
        o->q[2 * h + 1] = pair256(e[2], e[3]);
    }
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    const __m512i s512 = _mm512_castsi256_si512(s16);
    for (int c = 0; c < 4; c++) o->sc[c] = _mm512_permutexvar_epi16(idx[c], s512);
    o->mn = _mm512_zextsi256_si512(_mm256_slli_epi16(s16, 5));
    o->d = o->dmin = H2F(b->d);
}

static inline void kx_store(const kx_sb *o, uint8_t *wp) {
    for (int c = 0; c < 4; c++) {
        _mm512_storeu_si512((void *)(wp + 64 * c), o->q[c]);
        _mm512_storeu_si512((void *)(wp + 256 + 64 * c), o->sc[c]);
    }
    _mm256_storeu_si256((__m256i *)(wp + 512), _mm512_castsi512_si256(o->mn));
    float *dd = (float *)(wp + 544);
    dd[0] = o->d;
    dd[1] = o->dmin;
}

static void wprep_q4_K(const void *w, uint8_t *wp, int64_t n) {
    const blk_q4_K *b = w;
    const __m512i idx[4] = {kx_index(0, 2, 16), kx_index(1, 2, 16), kx_index(2, 2, 16), kx_index(3, 2, 16)};
    kx_sb o;
    for (int64_t i = 0; i < n / QKK; i++, wp += SBW) {
        kx_q4_K(&b[i], idx, &o);
        kx_store(&o, wp);
    }
}

static void wprep_q6_K(const void *w, uint8_t *wp, int64_t n) {
    const blk_q6_K *b = w;
    const __m512i idx[4] = {kx_index(0, 4, 8), kx_index(1, 4, 8), kx_index(2, 4, 8), kx_index(3, 4, 8)};
    kx_sb o;
    for (int64_t i = 0; i < n / QKK; i++, wp += SBW) {
        kx_q6_K(&b[i], idx, &o);
        kx_store(&o, wp);
    }
}

/* KSTEP on a super-block in registers: the same operations in the same
 * order (loads aside) */
static inline __m512 kx_step(__m512 acc, const kx_sb *w, const blk_q8_K *xb, const __m512i X[4]) {
    __m512i a = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(w->q[0], X[0]), w->sc[0]);
    a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w->q[1], X[1]), w->sc[1]);
    a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w->q[2], X[2]), w->sc[2]);
    a = _mm512_dpwssd_epi32(a, _mm512_maddubs_epi16(w->q[3], X[3]), w->sc[3]);
    const __m512i m = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w->mn,
                                          _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)xb->bsums)));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(xb->d * w->d), acc);
    return _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(xb->d * w->dmin), acc);
}

#define DIRECT_K(NAME, BLK, UNPACK, PER, DIV)                                                              \
    static void NAME(const uint8_t *w, size_t wrow, int nr, const uint8_t *xp, int64_t n, float *y) {    \
        const blk_q8_K *x = (const blk_q8_K *)xp;                                                          \
        const __m512i idx[4] = {kx_index(0, PER, DIV), kx_index(1, PER, DIV), kx_index(2, PER, DIV),       \
                                kx_index(3, PER, DIV)};                                                    \
        for (int r0 = 0; r0 < nr; r0 += 4) {                                                               \
            const int rn = nr - r0 < 4 ? nr - r0 : 4;                                                      \
            __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()}; \
            for (int64_t i = 0; i < n / QKK; i++) {                                                        \
                __m512i X[4];                                                                              \
                for (int c = 0; c < 4; c++) X[c] = _mm512_loadu_si512((const void *)(x[i].qs + 64 * c));   \
                for (int r = 0; r < rn; r++) {                                                             \
                    kx_sb o;                                                                               \
                    UNPACK((const BLK *)(w + (size_t)(r0 + r) * wrow) + i, idx, &o);                       \
                    acc[r] = kx_step(acc[r], &o, &x[i], X);                                                \
                }                                                                                          \
            }                                                                                              \
            for (int r = 0; r < rn; r++) y[r0 + r] = _mm512_reduce_add_ps(acc[r]);                         \
        }                                                                                                  \
    }
DIRECT_K(direct_q4_K, blk_q4_K, kx_q4_K, 2, 16)
DIRECT_K(direct_q6_K, blk_q6_K, kx_q6_K, 4, 8)
#undef DIRECT_K

#define KSTEP(acc, wb, xb, X0, X1, X2, X3)                                                                     \
    {                                                                                                           \
        __m512i a_ = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(_mm512_loadu_si512((const void *)(wb)), X0), \
                                         _mm512_loadu_si512((const void *)((wb) + 256)));                       \
        a_ = _mm512_dpwssd_epi32(a_, _mm512_maddubs_epi16(_mm512_loadu_si512((const void *)((wb) + 64)), X1),   \
                                 _mm512_loadu_si512((const void *)((wb) + 320)));                               \
        a_ = _mm512_dpwssd_epi32(a_, _mm512_maddubs_epi16(_mm512_loadu_si512((const void *)((wb) + 128)), X2),  \
                                 _mm512_loadu_si512((const void *)((wb) + 384)));                               \
        a_ = _mm512_dpwssd_epi32(a_, _mm512_maddubs_epi16(_mm512_loadu_si512((const void *)((wb) + 192)), X3),  \
                                 _mm512_loadu_si512((const void *)((wb) + 448)));                               \
        const __m512i m_ = _mm512_dpwssd_epi32(_mm512_setzero_si512(),                                          \
                                               _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)((wb) + 512))), \
                                               _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(xb)->bsums))); \
        const float *d_ = (const float *)((wb) + 544);                                                          \
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a_), _mm512_set1_ps((xb)->d * d_[0]), acc);                   \
        acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m_), _mm512_set1_ps((xb)->d * d_[1]), acc);                  \
    }

static void tile_k(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n,
                   float *y, int64_t ldy) {
    const int64_t nb = n / QKK;
    if (nr == 4 && nt == 2) {
        __m512 a00 = _mm512_setzero_ps(), a10 = a00, a20 = a00, a30 = a00, a01 = a00, a11 = a00, a21 = a00, a31 = a00;
        const blk_q8_K *x0 = (const blk_q8_K *)xp, *x1 = (const blk_q8_K *)(xp + xs);
        for (int64_t i = 0; i < nb; i++) {
            const __m512i p0 = _mm512_loadu_si512((const void *)x0[i].qs), p1 = _mm512_loadu_si512((const void *)(x0[i].qs + 64));
            const __m512i p2 = _mm512_loadu_si512((const void *)(x0[i].qs + 128)), p3 = _mm512_loadu_si512((const void *)(x0[i].qs + 192));
            const __m512i q0 = _mm512_loadu_si512((const void *)x1[i].qs), q1 = _mm512_loadu_si512((const void *)(x1[i].qs + 64));
            const __m512i q2 = _mm512_loadu_si512((const void *)(x1[i].qs + 128)), q3 = _mm512_loadu_si512((const void *)(x1[i].qs + 192));
            const uint8_t *w0 = wp + SBW * i;
            KSTEP(a00, w0, &x0[i], p0, p1, p2, p3) KSTEP(a01, w0, &x1[i], q0, q1, q2, q3)
            KSTEP(a10, w0 + ws, &x0[i], p0, p1, p2, p3) KSTEP(a11, w0 + ws, &x1[i], q0, q1, q2, q3)
            KSTEP(a20, w0 + 2 * ws, &x0[i], p0, p1, p2, p3) KSTEP(a21, w0 + 2 * ws, &x1[i], q0, q1, q2, q3)
            KSTEP(a30, w0 + 3 * ws, &x0[i], p0, p1, p2, p3) KSTEP(a31, w0 + 3 * ws, &x1[i], q0, q1, q2, q3)
        }
        y[0] = _mm512_reduce_add_ps(a00); y[1] = _mm512_reduce_add_ps(a10);
        y[2] = _mm512_reduce_add_ps(a20); y[3] = _mm512_reduce_add_ps(a30);
        y[ldy + 0] = _mm512_reduce_add_ps(a01); y[ldy + 1] = _mm512_reduce_add_ps(a11);
        y[ldy + 2] = _mm512_reduce_add_ps(a21); y[ldy + 3] = _mm512_reduce_add_ps(a31);
        return;
    }
    if (nr == 4 && nt == 1) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const blk_q8_K *x0 = (const blk_q8_K *)xp;
        for (int64_t i = 0; i < nb; i++) {
            const __m512i p0 = _mm512_loadu_si512((const void *)x0[i].qs), p1 = _mm512_loadu_si512((const void *)(x0[i].qs + 64));
            const __m512i p2 = _mm512_loadu_si512((const void *)(x0[i].qs + 128)), p3 = _mm512_loadu_si512((const void *)(x0[i].qs + 192));
            const uint8_t *w0 = wp + SBW * i;
            KSTEP(a0, w0, &x0[i], p0, p1, p2, p3) KSTEP(a1, w0 + ws, &x0[i], p0, p1, p2, p3)
            KSTEP(a2, w0 + 2 * ws, &x0[i], p0, p1, p2, p3) KSTEP(a3, w0 + 3 * ws, &x0[i], p0, p1, p2, p3)
        }
        y[0] = _mm512_reduce_add_ps(a0); y[1] = _mm512_reduce_add_ps(a1);
        y[2] = _mm512_reduce_add_ps(a2); y[3] = _mm512_reduce_add_ps(a3);
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const blk_q8_K *xr = (const blk_q8_K *)(xp + t * xs);
            __m512 acc = _mm512_setzero_ps();
            for (int64_t i = 0; i < nb; i++) {
                const __m512i p0 = _mm512_loadu_si512((const void *)xr[i].qs), p1 = _mm512_loadu_si512((const void *)(xr[i].qs + 64));
                const __m512i p2 = _mm512_loadu_si512((const void *)(xr[i].qs + 128)), p3 = _mm512_loadu_si512((const void *)(xr[i].qs + 192));
                const uint8_t *wb = wp + r * ws + SBW * i;
                KSTEP(acc, wb, &xr[i], p0, p1, p2, p3)
            }
            y[t * ldy + r] = _mm512_reduce_add_ps(acc);
        }
}
#undef KSTEP

/* ---- llama path for bf16 weights: vdpbf16ps --------------------------------
 * Weight rows are used in place (no repack), activations are bf16 rows.
 * Per (row, token) one 16-lane accumulator; each vdpbf16ps adds the two
 * products of a bf16 pair per lane (with the instruction's own rounding:
 * round to nearest even, bf16 subnormal inputs read as zero). A masked tail
 * adds exact zeros. 4 rows x up to 4 tokens per call. */
static inline __attribute__((always_inline)) void bf16_4(const uint16_t *w, int64_t ldw, const uint16_t *x, int64_t ldx,
                                                        const int NT, int64_t n, float *y, int64_t ldy) {
    const int64_t nfull = n & ~(int64_t)31;
    const __mmask32 tail = (__mmask32)((1ull << (n & 31)) - 1);
    __m512 acc[4][MAXT];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < nfull; k += 32) {
        const __m512bh w0 = (__m512bh)_mm512_loadu_si512((const void *)(w + k));
        const __m512bh w1 = (__m512bh)_mm512_loadu_si512((const void *)(w + ldw + k));
        const __m512bh w2 = (__m512bh)_mm512_loadu_si512((const void *)(w + 2 * ldw + k));
        const __m512bh w3 = (__m512bh)_mm512_loadu_si512((const void *)(w + 3 * ldw + k));
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(x + t * ldx + k));
            acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xv);
            acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xv);
            acc[2][t] = _mm512_dpbf16_ps(acc[2][t], w2, xv);
            acc[3][t] = _mm512_dpbf16_ps(acc[3][t], w3, xv);
        }
    }
    if (k < n) {
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w + k);
        const __m512bh w1 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w + ldw + k);
        const __m512bh w2 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w + 2 * ldw + k);
        const __m512bh w3 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(tail, x + t * ldx + k);
            acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xv);
            acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xv);
            acc[2][t] = _mm512_dpbf16_ps(acc[2][t], w2, xv);
            acc[3][t] = _mm512_dpbf16_ps(acc[3][t], w3, xv);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

static void tile_bf16(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n, float *y,
                      int64_t ldy) {
    const uint16_t *w = (const uint16_t *)wp, *x = (const uint16_t *)xp;
    const int64_t ldw = (int64_t)(ws / 2), ldx = (int64_t)(xs / 2);
    if (nr == 4) {
        switch (nt) {
        case 4: bf16_4(w, ldw, x, ldx, 4, n, y, ldy); return;
        case 3: bf16_4(w, ldw, x, ldx, 3, n, y, ldy); return;
        case 2: bf16_4(w, ldw, x, ldx, 2, n, y, ldy); return;
        case 1: bf16_4(w, ldw, x, ldx, 1, n, y, ldy); return;
        default: break;
        }
    }
    const int64_t nfull = n & ~(int64_t)31;
    const __mmask32 tail = (__mmask32)((1ull << (n & 31)) - 1);
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const uint16_t *wr = w + r * ldw, *xr = x + t * ldx;
            __m512 acc = _mm512_setzero_ps();
            int64_t k = 0;
            for (; k < nfull; k += 32)
                acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512((const void *)(wr + k)),
                                       (__m512bh)_mm512_loadu_si512((const void *)(xr + k)));
            if (k < n)
                acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_maskz_loadu_epi16(tail, wr + k),
                                       (__m512bh)_mm512_maskz_loadu_epi16(tail, xr + k));
            y[t * ldy + r] = _mm512_reduce_add_ps(acc);
        }
}

/* ---- llama path for f16 weights -------------------------------------------
 * Activations rounded to f16 (the act dtype) and weight rows are widened to
 * f32 (exactly) and run through the f32 micro-kernel: products of two halves
 * are exact in f32, so this is sum(f16(w)*f16(x)) in f32. */
static size_t f32_bytes(int64_t n) { return (size_t)n * sizeof(float); }
static void xprep_f16(pl_dtype t, const void *xq, uint8_t *xp, int64_t n) { (void)t; deq_f16(xq, (float *)xp, n); }
static void wprep_f16(const void *w, uint8_t *wp, int64_t n) { deq_f16(w, (float *)wp, n); }
static void tile_f32(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n, float *y,
                     int64_t ldy) {
    gemm_f32((const float *)wp, (int64_t)(ws / sizeof(float)), nr, (const float *)xp, (int64_t)(xs / sizeof(float)), nt,
             n, y, ldy);
}

/* ---- packed weights (packed.c): q4_0 / q4_1 in groups of 4 rows ----------
 * A group block is 64 bytes of quants (row r's 16 bytes in 128-bit lane r)
 * and the rows' f16 scales (and mins). Per (group, token, block):
 *   lo/hi     = low/high nibbles: elements 0..15 / 16..31 of each row
 *   isum      = vpdpbusd(vpdpbusd(c, lo, xl), hi, xh) with xl/xh the
 *               activation's elements 0..15 / 16..31 broadcast to the 4
 *               lanes; lane 4r+j is an exact integer sum over 8 elements
 *               of row r (q4_0: c = -8 * the same 8 x, from xprep; q4_1: 0)
 *   acc      += cvt(isum) * (d_w[r] * d_x)
 *   acc      += m_w[r] * s_x    (q4_1; m in lane 4r only)
 * and y[r] = (l0 + l1) + (l2 + l3) over the 4 lanes of row r.
 * Activation prep, per token row of nb blocks: qs[nb][32] | f32 d_x[nb] |
 * q4_1: f32 s_x[nb]; q4_0: i32 c[nb][4]. The kernel broadcasts each 16-byte
 * half of a block to the 4 lanes with one load. */
static size_t pk_xbytes_q4_1(int64_t n) { return (size_t)(n / QK32) * 40; }
static size_t pk_xbytes_q4_0(int64_t n) { return (size_t)(n / QK32) * 52; }

static void pk_xprep_q4_1(const void *xq, uint8_t *xp, int64_t n) {
    const blk_q8_1 *b = xq;
    const int64_t nb = n / QK32;
    float *dx = (float *)(xp + 32 * nb), *sx = dx + nb;
    for (int64_t i = 0; i < nb; i++) {
        memcpy(xp + 32 * i, b[i].qs, 32);
        dx[i] = H2F(b[i].d);
        sx[i] = H2F(b[i].s);
    }
}

static void pk_xprep_q4_0(const void *xq, uint8_t *xp, int64_t n) {
    const blk_q8_0 *b = xq;
    const int64_t nb = n / QK32;
    float *dx = (float *)(xp + 32 * nb);
    int32_t *c = (int32_t *)(xp + 36 * nb);
    for (int64_t i = 0; i < nb; i++) {
        memcpy(xp + 32 * i, b[i].qs, 32);
        dx[i] = H2F(b[i].d);
        for (int j = 0; j < 4; j++) {
            int s = 0;
            for (int e = 0; e < 4; e++) s += b[i].qs[4 * j + e] + b[i].qs[16 + 4 * j + e];
            c[4 * i + j] = -8 * s;
        }
    }
}

static inline __m512i bcast128(const uint8_t *p) { return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p)); }

static inline void pk_store4(__m512 acc, float *y) {
    __m512 s = _mm512_add_ps(acc, _mm512_permute_ps(acc, 0xB1));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));
    const __m512 r = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), s);
    _mm_storeu_ps(y, _mm512_castps512_ps128(r));
}

/* NG groups x NT tokens (constants after inlining) */
static inline __attribute__((always_inline)) void pk4(const uint8_t *p, size_t gs, const uint8_t *xp, size_t xs,
                                                     const int NG, const int NT, const int Q41, int64_t n, float *y,
                                                     int64_t ldy) {
    const int64_t nb = n / QK32;
    const size_t GB = Q41 ? 80 : 72;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i idx_d = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i idx_m = _mm512_add_epi32(idx_d, _mm512_set1_epi32(4));
    __m512 acc[4][8];
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[g][t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const uint8_t *gb = p + g * gs + (size_t)b * GB;
            _mm_prefetch((const char *)(gb + 8 * GB), _MM_HINT_T0);
            const __m512i wv = _mm512_loadu_si512((const void *)gb);
            const __m512i lo = _mm512_and_si512(wv, m4), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), m4);
            __m512 dexp, mexp = _mm512_setzero_ps();
            if (Q41) {
                const __m512 dm = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(gb + 64))));
                dexp = _mm512_permutexvar_ps(idx_d, dm);
                mexp = _mm512_maskz_permutexvar_ps(0x1111, idx_m, dm);
            } else {
                dexp = _mm512_permutexvar_ps(idx_d, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(gb + 64)))));
            }
            #pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const uint8_t *xt = xp + t * xs;
                const float *dx = (const float *)(xt + 32 * nb);
                __m512i c = Q41 ? _mm512_setzero_si512() : bcast128(xt + 36 * nb + 16 * b);
                c = _mm512_dpbusd_epi32(c, lo, bcast128(xt + 32 * b));
                c = _mm512_dpbusd_epi32(c, hi, bcast128(xt + 32 * b + 16));
                acc[g][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c), _mm512_mul_ps(dexp, _mm512_set1_ps(dx[b])), acc[g][t]);
                if (Q41) acc[g][t] = _mm512_fmadd_ps(mexp, _mm512_set1_ps(dx[nb + b]), acc[g][t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) pk_store4(acc[g][t], y + t * ldy + 4 * g);
}

#define PK_KERN(NAME, Q41)                                                                                       \
    static void NAME(const uint8_t *p, size_t gs, int ng, const uint8_t *xp, size_t xs, int nt, int64_t n,     \
                     float *y, int64_t ldy) {                                                                  \
        int g = 0;                                                                                             \
        if (nt == 1) {                                                                                         \
            for (; g + 4 <= ng; g += 4) pk4(p + g * gs, gs, xp, xs, 4, 1, Q41, n, y + 4 * g, ldy);             \
            for (; g < ng; g++) pk4(p + g * gs, gs, xp, xs, 1, 1, Q41, n, y + 4 * g, ldy);                     \
            return;                                                                                            \
        }                                                                                                      \
        for (int t = 0; t < nt; t += 8) {                                                                      \
            const int k = nt - t < 8 ? nt - t : 8;                                                             \
            const uint8_t *x = xp + t * xs;                                                                    \
            float *yt = y + t * ldy;                                                                           \
            for (g = 0; g < ng; g++) {                                                                         \
                const uint8_t *pg = p + g * gs;                                                                \
                float *yg = yt + 4 * g;                                                                        \
                switch (k) {                                                                                   \
                case 8: pk4(pg, gs, x, xs, 1, 8, Q41, n, yg, ldy); break;                                      \
                case 7: pk4(pg, gs, x, xs, 1, 7, Q41, n, yg, ldy); break;                                      \
                case 6: pk4(pg, gs, x, xs, 1, 6, Q41, n, yg, ldy); break;                                      \
                case 5: pk4(pg, gs, x, xs, 1, 5, Q41, n, yg, ldy); break;                                      \
                case 4: pk4(pg, gs, x, xs, 1, 4, Q41, n, yg, ldy); break;                                      \
                case 3: pk4(pg, gs, x, xs, 1, 3, Q41, n, yg, ldy); break;                                      \
                case 2: pk4(pg, gs, x, xs, 1, 2, Q41, n, yg, ldy); break;                                      \
                default: pk4(pg, gs, x, xs, 1, 1, Q41, n, yg, ldy); break;                                     \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }
PK_KERN(pk_kern_q4_1, 1)
PK_KERN(pk_kern_q4_0, 0)
#undef PK_KERN

/* ---- f32 vector kernels for attention ------------------------------------
 * dots: per row a 16-lane FMA accumulator over 16-element steps plus a
 * masked tail, then _mm512_reduce_add_ps; 4 rows share each x load.
 * wsum: y[i] += w[j]*m[j][i] as mul then add (no FMA): the scalar bits.
 * expsum: exp(x - sub) by 2^k * p(r), r = t - k*ln2 (ln2 split in two),
 * p a degree-7 Taylor polynomial on |r| <= ln2/2, with 2^k built in the
 * exponent (gradual underflow below 2^-126 by a second scale). */
static inline __m512 dots_tail(const float *p, int64_t i, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p + i); }

static void f32_dots(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    const int64_t nf = n & ~(int64_t)15;
    const __mmask16 tk = (__mmask16)((1u << (n - nf)) - 1);
    int64_t j = 0;
    for (; j + 4 <= rows; j += 4) {
        const float *r0 = m + j * ld, *r1 = r0 + ld, *r2 = r1 + ld, *r3 = r2 + ld;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t i = 0;
        for (; i < nf; i += 16) {
            const __m512 xv = _mm512_loadu_ps(x + i);
            a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r0 + i), a0);
            a1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r1 + i), a1);
            a2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r2 + i), a2);
            a3 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(r3 + i), a3);
        }
        if (tk) {
            const __m512 xv = dots_tail(x, i, tk);
            a0 = _mm512_fmadd_ps(xv, dots_tail(r0, i, tk), a0);
            a1 = _mm512_fmadd_ps(xv, dots_tail(r1, i, tk), a1);
            a2 = _mm512_fmadd_ps(xv, dots_tail(r2, i, tk), a2);
            a3 = _mm512_fmadd_ps(xv, dots_tail(r3, i, tk), a3);
        }
        y[j] = _mm512_reduce_add_ps(a0);
        y[j + 1] = _mm512_reduce_add_ps(a1);
        y[j + 2] = _mm512_reduce_add_ps(a2);
        y[j + 3] = _mm512_reduce_add_ps(a3);
    }
    for (; j < rows; j++) {
        const float *r0 = m + j * ld;
        __m512 a0 = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i < nf; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(r0 + i), a0);
        if (tk) a0 = _mm512_fmadd_ps(dots_tail(x, i, tk), dots_tail(r0, i, tk), a0);
        y[j] = _mm512_reduce_add_ps(a0);
    }
}

static void f32_wsum(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) { /* 4 registers of y stay live over the rows */
        __m512 y0 = _mm512_loadu_ps(y + i), y1 = _mm512_loadu_ps(y + i + 16);
        __m512 y2 = _mm512_loadu_ps(y + i + 32), y3 = _mm512_loadu_ps(y + i + 48);
        for (int64_t j = 0; j < rows; j++) {
            if (w[j] == 0.0f) continue;
            const __m512 a = _mm512_set1_ps(w[j]);
            const float *r = m + j * ld + i;
            y0 = _mm512_add_ps(y0, _mm512_mul_ps(a, _mm512_loadu_ps(r)));
            y1 = _mm512_add_ps(y1, _mm512_mul_ps(a, _mm512_loadu_ps(r + 16)));
            y2 = _mm512_add_ps(y2, _mm512_mul_ps(a, _mm512_loadu_ps(r + 32)));
            y3 = _mm512_add_ps(y3, _mm512_mul_ps(a, _mm512_loadu_ps(r + 48)));
        }
        _mm512_storeu_ps(y + i, y0);
        _mm512_storeu_ps(y + i + 16, y1);
        _mm512_storeu_ps(y + i + 32, y2);
        _mm512_storeu_ps(y + i + 48, y3);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 y0 = _mm512_maskz_loadu_ps(k, y + i);
        for (int64_t j = 0; j < rows; j++) {
            if (w[j] == 0.0f) continue;
            y0 = _mm512_add_ps(y0, _mm512_mul_ps(_mm512_set1_ps(w[j]), _mm512_maskz_loadu_ps(k, m + j * ld + i)));
        }
        _mm512_mask_storeu_ps(y + i, k, y0);
    }
}

static double f32_expsum(float *x, int64_t n, float sub) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    const __m512 sv = _mm512_set1_ps(sub), ninf = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        const __mmask16 neg = _mm512_cmp_ps_mask(v, ninf, _CMP_EQ_OQ);
        __m512 e = exp512(_mm512_sub_ps(v, sv));
        e = _mm512_mask_mov_ps(e, (__mmask16)(neg | (__mmask16)~k), _mm512_setzero_ps());
        _mm512_mask_storeu_ps(x + i, k, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
}

/* g = silu(g) * u = g / (1 + exp(-g)) * u, the same lane computation for
 * every element (the tail is masked, never scalar), so an element's bits do
 * not depend on where it sits in the array */
static void f32_silu_mul(float *g, const float *u, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(k, g + i), y = _mm512_maskz_loadu_ps(k, u + i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
        _mm512_mask_storeu_ps(g + i, k, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), y));
    }
}

/* f32_silu_mul's lanes on a product block's rows (gate | up, 32 floats a
 * row), rounded into h; called only where AMX (hence AVX-512 BF16) runs */
static void silu_glu32(const float *blk, uint16_t *h, int64_t ldh) {
    for (int r = 0; r < 32; r++) pl_silu_row16(blk + r * 32, h + r * ldh);
}

/* RMSNorm: float squares summed in double, 16 lanes in two accumulators
 * (masked tail), then out = (x * scale) * w */
static void f32_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i), q = _mm512_mul_ps(v, v);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(q)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(q, 1)));
    }
    const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 sc = _mm512_set1_ps(1.0f / sqrtf((float)(ss / (double)n) + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i), g = _mm512_maskz_loadu_ps(k, w + i);
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_mul_ps(v, sc), g));
    }
}

/* scores: scale inside [lo, hi], -inf outside, and the maximum */
static float f32_scores(float *x, int64_t n, int64_t lo, int64_t hi, float scale) {
    const __m512 sc = _mm512_set1_ps(scale), ninf = _mm512_set1_ps(-INFINITY);
    const __m512i step = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 mx = ninf;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        /* lanes with lo <= p <= hi (p = i + lane; indices fit int32 in a row) */
        const __m512i p = _mm512_add_epi32(_mm512_set1_epi32((int)i), step);
        const __mmask16 in = _mm512_mask_cmp_epi32_mask(_mm512_cmp_epi32_mask(p, _mm512_set1_epi32((int)(lo < 0 ? 0 : lo)), _MM_CMPINT_NLT),
                                                         p, _mm512_set1_epi32((int)(hi < n ? hi : n - 1)), _MM_CMPINT_LE);
        const __m512 v = _mm512_mask_mul_ps(ninf, in, _mm512_maskz_loadu_ps(k, x + i), sc);
        _mm512_mask_storeu_ps(x + i, k, v);
        mx = _mm512_mask_max_ps(mx, (__mmask16)(k & in), mx, v);
    }
    return _mm512_reduce_max_ps(mx);
}

/* pl_bf16_softmax on the tiles' machine (its own bits): the largest score
 * first (scaling by s > 0 keeps the order, so max(x)·s is the largest
 * scaled score exactly), then e = exp(x·s - max) with the polynomial of
 * exp512 but 2^k applied by vscalefps (inputs are <= 0: no overflow, and
 * underflow goes to 0 as it should; NaN stays NaN), summed in float over
 * 16 lanes, then each e times 1/sum rounded to bf16. */
static void softmax_bf16(float *x, int64_t n, float scale, uint16_t *dst) {
    const __m512 sc = _mm512_set1_ps(scale), lo = _mm512_set1_ps(-104.0f);
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        mx = _mm512_mask_max_ps(mx, k, mx, _mm512_maskz_loadu_ps(k, x + i));
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * scale);
    __m512 s0 = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 t = _mm512_max_ps(lo, _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sc), m));
        __m512 kf;
        const __m512 p = exp512_poly(t, &kf);
        const __m512 e = _mm512_maskz_scalef_ps(k, p, kf);
        _mm512_mask_storeu_ps(x + i, k, e);
        s0 = _mm512_add_ps(s0, e);
    }
    const __m512 vs = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s0));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
        _mm256_mask_storeu_epi16(dst + i, k, (__m256i)h);
    }
}

/* 8 adjacent pairs of x rotated by their (cos, sin) in cs: the products
 * rounded, then the difference / sum; even lanes x0·c − x1·s, odd lanes
 * x1·c + x0·s */
static inline __m512 rope_pairs16(__m512 X, __m512 CS) {
    const __m512 C = _mm512_moveldup_ps(CS), S = _mm512_movehdup_ps(CS);
    const __m512 A = _mm512_mul_ps(X, C), B = _mm512_mul_ps(_mm512_permute_ps(X, 0xB1), S);
    return _mm512_mask_sub_ps(_mm512_add_ps(A, B), 0x5555, A, B);
}

/* rows of up to 32 values: the first rot (even) rotated as f32_rope's NORM
 * lanes (rope_pairs16), all rounded to bf16 into dst[r] */
static void rope_round(const float *src, int64_t lds, int64_t rows, int64_t n, int64_t rot, const float *cs,
                       int64_t ldcs, uint16_t *const *dst) {
    for (int64_t r = 0; r < rows; r++) {
        const float *x = src + r * lds, *c = cs + r * ldcs;
        __m512 v[2];
        for (int h = 0; h < 2; h++) {
            const int64_t i = 16 * h, left = n - i, lr = rot - i;
            const __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
            const __mmask16 kr = lr >= 16 ? (__mmask16)0xFFFF : lr > 0 ? (__mmask16)((1u << lr) - 1) : 0;
            const __m512 X = _mm512_maskz_loadu_ps(k, x + i);
            v[h] = kr ? _mm512_mask_mov_ps(X, kr, rope_pairs16(X, _mm512_maskz_loadu_ps(kr, c + i))) : X;
        }
        const __mmask32 m = n >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1);
        _mm512_mask_storeu_epi16(dst[r], m, (__m512i)_mm512_cvtne2ps_pbh(v[1], v[0]));
    }
}

static void f32_scale(float *x, int64_t n, float s) {
    const __m512 sv = _mm512_set1_ps(s);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sv));
    }
}

static void f32_add(float *y, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_maskz_loadu_ps(k, x + i)));
    }
}

/* RoPE, 8 pairs (NORM) or 16 of each half (NEOX) a step: the products
 * rounded, then the difference / sum, as the scalar loop (x0·s + x1·c is
 * the same sum in either order) */
static void f32_rope(float *x, const float *cs, int64_t n_rot, int neox) {
    const int64_t half = n_rot / 2;
    if (!neox) {
        for (int64_t i = 0; i < n_rot; i += 16) {
            const __mmask16 k = n_rot - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n_rot - i)) - 1);
            const __m512 X = _mm512_maskz_loadu_ps(k, x + i), CS = _mm512_maskz_loadu_ps(k, cs + i);
            _mm512_mask_storeu_ps(x + i, k, rope_pairs16(X, CS));
        }
    } else {
        float *lo = x, *hi = x + half;
        const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        for (int64_t i = 0; i < half; i += 16) {
            const int64_t m = half - i >= 16 ? 16 : half - i;
            const __mmask16 k = (__mmask16)(m == 16 ? 0xFFFF : (1u << m) - 1);
            const __mmask16 k0 = (__mmask16)(2 * m >= 16 ? 0xFFFF : (1u << (2 * m)) - 1);
            const __mmask16 k1 = (__mmask16)(2 * m >= 32 ? 0xFFFF : 2 * m > 16 ? (1u << (2 * m - 16)) - 1 : 0);
            const __m512 P0 = _mm512_maskz_loadu_ps(k0, cs + 2 * i), P1 = _mm512_maskz_loadu_ps(k1, cs + 2 * i + 16);
            const __m512 C = _mm512_permutex2var_ps(P0, ev, P1), S = _mm512_permutex2var_ps(P0, od, P1);
            const __m512 X0 = _mm512_maskz_loadu_ps(k, lo + i), X1 = _mm512_maskz_loadu_ps(k, hi + i);
            _mm512_mask_storeu_ps(lo + i, k, _mm512_sub_ps(_mm512_mul_ps(X0, C), _mm512_mul_ps(X1, S)));
            _mm512_mask_storeu_ps(hi + i, k, _mm512_add_ps(_mm512_mul_ps(X0, S), _mm512_mul_ps(X1, C)));
        }
    }
}

/* q8_0 packed: a group block is rows 0-1 in one 64-byte load (row per
 * 256-bit half) and rows 2-3 in the next, then 4 f16 scales. Weights are
 * made unsigned (u = w ^ 0x80 = w + 128) and the activation prep carries
 * c = -128 * (sum of the 4 x of each lane) for the 8 lanes of a half, so
 * vpdpbusd(c, u, x) is exactly sum_4 w*x. Per (group, token, block):
 *   acc_A += cvt(isum_A) * (d_w[row of the lane] * d_x)   (rows 0, 1)
 *   acc_B  likewise for rows 2, 3,
 * and y[row] = the fixed tree over its 8 lanes.
 * Activation prep: qs[nb][32] | f32 d_x[nb] | i32 c[nb][8]. */
static size_t pk_xbytes_q8_0(int64_t n) { return (size_t)(n / QK32) * 68; }

static void pk_xprep_q8_0(const void *xq, uint8_t *xp, int64_t n) {
    const blk_q8_0 *b = xq;
    const int64_t nb = n / QK32;
    float *dx = (float *)(xp + 32 * nb);
    int32_t *c = (int32_t *)(xp + 36 * nb);
    for (int64_t i = 0; i < nb; i++) {
        memcpy(xp + 32 * i, b[i].qs, 32);
        dx[i] = H2F(b[i].d);
        for (int j = 0; j < 8; j++)
            c[8 * i + j] = -128 * (b[i].qs[4 * j] + b[i].qs[4 * j + 1] + b[i].qs[4 * j + 2] + b[i].qs[4 * j + 3]);
    }
}

/* lanes 0 and 8 of the result: the sums of lanes 0..7 and 8..15 */
static inline __m512 pk_sum8(__m512 a) {
    __m512 s = _mm512_add_ps(a, _mm512_permute_ps(a, 0xB1));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, 0x4E));
    return _mm512_add_ps(s, _mm512_shuffle_f32x4(s, s, 0xB1));
}

static inline __m512i bcast256(const void *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }

static inline __attribute__((always_inline)) void pk8(const uint8_t *p, size_t gs, const uint8_t *xp, size_t xs,
                                                     const int NG, const int NT, int64_t n, float *y, int64_t ldy) {
    const int64_t nb = n / QK32;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i ia = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i ib = _mm512_add_epi32(ia, _mm512_set1_epi32(2));
    __m512 acc[4][8][2];
    #pragma GCC unroll 4
    for (int g = 0; g < NG; g++)
        #pragma GCC unroll 8
        for (int t = 0; t < NT; t++) acc[g][t][0] = acc[g][t][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const uint8_t *gb = p + g * gs + (size_t)b * 136;
            _mm_prefetch((const char *)(gb + 8 * 136), _MM_HINT_T0);
            _mm_prefetch((const char *)(gb + 8 * 136 + 64), _MM_HINT_T0);
            const __m512i ua = _mm512_xor_si512(_mm512_loadu_si512((const void *)gb), flip);
            const __m512i ub = _mm512_xor_si512(_mm512_loadu_si512((const void *)(gb + 64)), flip);
            const __m512 d4 = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)(gb + 128))));
            const __m512 da = _mm512_permutexvar_ps(ia, d4), db = _mm512_permutexvar_ps(ib, d4);
            #pragma GCC unroll 8
            for (int t = 0; t < NT; t++) {
                const uint8_t *xt = xp + t * xs;
                const __m512i xv = bcast256(xt + 32 * b), cv = bcast256(xt + 36 * nb + 32 * b);
                const __m512 dx = _mm512_set1_ps(((const float *)(xt + 32 * nb))[b]);
                acc[g][t][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cv, ua, xv)), _mm512_mul_ps(da, dx), acc[g][t][0]);
                acc[g][t][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(cv, ub, xv)), _mm512_mul_ps(db, dx), acc[g][t][1]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int g = 0; g < NG; g++) {
            const __m512 sa = pk_sum8(acc[g][t][0]), sb = pk_sum8(acc[g][t][1]);
            float *yo = y + t * ldy + 4 * g;
            yo[0] = _mm512_cvtss_f32(sa);
            yo[1] = _mm512_cvtss_f32(_mm512_castps256_ps512(_mm512_extractf32x8_ps(sa, 1)));
            yo[2] = _mm512_cvtss_f32(sb);
            yo[3] = _mm512_cvtss_f32(_mm512_castps256_ps512(_mm512_extractf32x8_ps(sb, 1)));
        }
}

static void pk_kern_q8_0(const uint8_t *p, size_t gs, int ng, const uint8_t *xp, size_t xs, int nt, int64_t n,
                         float *y, int64_t ldy) {
    int g = 0;
    if (nt == 1) {
        for (; g + 4 <= ng; g += 4) pk8(p + g * gs, gs, xp, xs, 4, 1, n, y + 4 * g, ldy);
        for (; g < ng; g++) pk8(p + g * gs, gs, xp, xs, 1, 1, n, y + 4 * g, ldy);
        return;
    }
    for (int t = 0; t < nt; t += 4) {
        const int k = nt - t < 4 ? nt - t : 4;
        const uint8_t *x = xp + t * xs;
        float *yt = y + t * ldy;
        for (g = 0; g < ng; g++) {
            const uint8_t *pg = p + g * gs;
            float *yg = yt + 4 * g;
            switch (k) {
            case 4: pk8(pg, gs, x, xs, 1, 4, n, yg, ldy); break;
            case 3: pk8(pg, gs, x, xs, 1, 3, n, yg, ldy); break;
            case 2: pk8(pg, gs, x, xs, 1, 2, n, yg, ldy); break;
            default: pk8(pg, gs, x, xs, 1, 1, n, yg, ldy); break;
            }
        }
    }
}

void pl_kernels_avx512(pl_kernels *k) {
    const pl_packed_kernels p80 = {pk_xbytes_q8_0, pk_xprep_q8_0, pk_kern_q8_0, 16, 8};
    k->packed[PL_DTYPE_Q8_0] = p80;
    k->f32_dots = f32_dots;
    k->f32_wsum = f32_wsum;
    k->f32_expsum = f32_expsum;
    k->f32_silu_mul = f32_silu_mul;
    k->silu_glu32 = silu_glu32;
    k->softmax_bf16 = softmax_bf16;
    k->rope_round = rope_round;
    k->f32_rmsnorm = f32_rmsnorm;
    k->f32_scores = f32_scores;
    k->f32_scale = f32_scale;
    k->f32_add = f32_add;
    k->f32_rope = f32_rope;
    const pl_packed_kernels p41 = {pk_xbytes_q4_1, pk_xprep_q4_1, pk_kern_q4_1, 16, 8};
    const pl_packed_kernels p40 = {pk_xbytes_q4_0, pk_xprep_q4_0, pk_kern_q4_0, 16, 8};
    k->packed[PL_DTYPE_Q4_1] = p41;
    k->packed[PL_DTYPE_Q4_0] = p40;
    k->gemm_f32k = gemm_f32k;
    k->quant_act[PL_DTYPE_Q8_0] = qact_q8_0;
    k->quant_act[PL_DTYPE_Q8_1] = qact_q8_1;
    k->quant_act[PL_DTYPE_Q8_K] = qact_q8_K;
    k->quant_act[PL_DTYPE_F16] = qact_f16;
    k->quant_act[PL_DTYPE_BF16] = qact_bf16;
    const pl_tiled_kernels h16 = {f32_bytes, f32_bytes, xprep_f16, wprep_f16, tile_f32, 4, NULL};
    const pl_tiled_kernels b16 = {NULL, NULL, NULL, NULL, tile_bf16, 4, NULL}; /* rows used in place */
    k->tiled[PL_DTYPE_F16] = h16;
    k->tiled[PL_DTYPE_BF16] = b16;
    const pl_tiled_kernels kx = {NULL, kx_wprep_bytes, NULL, NULL, tile_k, 2, NULL};
    static const struct { pl_dtype t; pl_wprep_fn f; } kw[] = {
        {PL_DTYPE_Q2_K, wprep_q2_K}, {PL_DTYPE_Q3_K, wprep_q3_K}, {PL_DTYPE_Q4_K, wprep_q4_K},
        {PL_DTYPE_Q5_K, wprep_q5_K}, {PL_DTYPE_Q6_K, wprep_q6_K},
    };
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++) {
        k->tiled[kw[i].t] = kx;
        k->tiled[kw[i].t].wprep = kw[i].f;
    }
    k->tiled[PL_DTYPE_Q4_K].direct = direct_q4_K;
    k->tiled[PL_DTYPE_Q6_K].direct = direct_q6_K;
    const pl_tiled_kernels q8 = {xprep_bytes, wprep_bytes, xprep, NULL, tile_q8, 4, NULL};
    k->tiled[PL_DTYPE_Q8_0] = q8;
    k->tiled[PL_DTYPE_Q8_0].wprep = wprep_q8_0;
    k->tiled[PL_DTYPE_Q8_0].direct = direct_q8_0;
    k->tiled[PL_DTYPE_Q4_0] = q8;
    k->tiled[PL_DTYPE_Q4_0].wprep = wprep_q4_0;
    k->tiled[PL_DTYPE_Q4_0].direct = direct_q4_0;
    k->tiled[PL_DTYPE_Q5_0] = q8;
    k->tiled[PL_DTYPE_Q5_0].wprep = wprep_q5_0;
    k->tiled[PL_DTYPE_Q5_0].direct = direct_q5_0;
    const pl_tiled_kernels q81 = {x1prep_bytes, w1prep_bytes, x1prep, NULL, tile_q8_1, 2, NULL};
    k->tiled[PL_DTYPE_Q4_1] = q81;
    k->tiled[PL_DTYPE_Q4_1].wprep = wprep_q4_1;
    k->tiled[PL_DTYPE_Q5_1] = q81;
    k->tiled[PL_DTYPE_Q5_1].wprep = wprep_q5_1;
    k->gemm_f32 = gemm_f32;
    k->dequant[PL_DTYPE_F16] = deq_f16;
    k->dequant[PL_DTYPE_BF16] = deq_bf16;
    k->dequant[PL_DTYPE_Q8_0] = deq_q8_0;
    k->dequant[PL_DTYPE_Q4_0] = deq_q4_0;
    k->dequant[PL_DTYPE_Q4_K] = deq_q4_K;
    k->dequant[PL_DTYPE_Q6_K] = deq_q6_K;
}

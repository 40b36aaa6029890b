/* kernels_avx2.c — AVX2 + FMA + F16C kernels.
 *
 * Compiled with the AVX2 flags (Makefile) and only called after
 * pl_simd_detected() saw AVX2, FMA and F16C.
 *
 *   gemm_f32   exact path: 8-lane FMA accumulators, one per (row, token);
 *              4x4 tiles run as two 4x2 halves (16 ymm registers), edge
 *              tiles use the same per-lane order -> tile-shape independent.
 *   dequant    f16 (vcvtph2ps), bf16: bit-identical to the scalar reference.
 *   f16/bf16   llama path: rows widened to f32, f32 micro-kernel.
 *   dotq       q8_0/q4_0/q5_0 x q8_0 (vpmaddubsw with the sign trick),
 *              q4_1/q5_1 x q8_1 (unsigned quants), q4_K/q5_K/q6_K x q8_K
 *              (exact integer super-block sums, then the scalar reference's
 *              float expression -> bit-identical to scalar).
 *
 * Not here: q2_K/q3_K SIMD dots (scalar fallback).
 */
#include "tensor/tensor_impl.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* F16C conversion: the same bits as pl_fp16_to_fp32 for every half (tested) */
#define H2F(h) _cvtsh_ss(h)

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* ---- exact path --------------------------------------------------------- */

/* 4 rows x NT (<= 2) tokens with register accumulators; per (row, token)
 * the same 8-lane order as the single-pair loop below. */
static inline __attribute__((always_inline)) void gemm4(const float *w, int64_t ldw, const float *x, int64_t ldx,
                                                       const int NT, int64_t n, float *y, int64_t ldy) {
    const int64_t nfull = n & ~(int64_t)7;
    const int rem = (int)(n & 7);
    const __m256i tmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 acc[4][2];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k < nfull; k += 8) {
        const __m256 w0 = _mm256_loadu_ps(w + k), w1 = _mm256_loadu_ps(w + ldw + k),
                     w2 = _mm256_loadu_ps(w + 2 * ldw + k), w3 = _mm256_loadu_ps(w + 3 * ldw + k);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 xv = _mm256_loadu_ps(x + t * ldx + k);
            acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm256_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm256_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    if (rem) {
        const __m256 w0 = _mm256_maskload_ps(w + k, tmask), w1 = _mm256_maskload_ps(w + ldw + k, tmask),
                     w2 = _mm256_maskload_ps(w + 2 * ldw + k, tmask), w3 = _mm256_maskload_ps(w + 3 * ldw + k, tmask);
        #pragma GCC unroll 4
        for (int t = 0; t < NT; t++) {
            const __m256 xv = _mm256_maskload_ps(x + t * ldx + k, tmask);
            acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);
            acc[2][t] = _mm256_fmadd_ps(w2, xv, acc[2][t]);
            acc[3][t] = _mm256_fmadd_ps(w3, xv, acc[3][t]);
        }
    }
    #pragma GCC unroll 4
    for (int t = 0; t < NT; t++)
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) y[t * ldy + r] = hsum8(acc[r][t]);
}

static void gemm_f32(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt, int64_t n,
                     float *y, int64_t ldy) {
    if (nr == 4) {
        int t = 0;
        for (; t + 2 <= nt; t += 2) gemm4(w, ldw, x + t * ldx, ldx, 2, n, y + t * ldy, ldy);
        if (t < nt) gemm4(w, ldw, x + t * ldx, ldx, 1, n, y + t * ldy, ldy);
        return;
    }
    const int64_t nfull = n & ~(int64_t)7;
    const int rem = (int)(n & 7);
    const __m256i tmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) {
            const float *wr = w + r * ldw, *xr = x + t * ldx;
            __m256 acc = _mm256_setzero_ps();
            int64_t k = 0;
            for (; k < nfull; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(wr + k), _mm256_loadu_ps(xr + k), acc);
            if (rem) acc = _mm256_fmadd_ps(_mm256_maskload_ps(wr + k, tmask), _mm256_maskload_ps(xr + k, tmask), acc);
            y[t * ldy + r] = hsum8(acc);
        }
}

static void deq_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i))), 16)));
    for (; i < n; i++) dst[i] = pl_bf16_to_fp32(h[i]);
}

static void deq_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++) dst[i] = pl_fp16_to_fp32(h[i]);
}

/* ---- llama-path dots ---------------------------------------------------- */

/* 8 int32 partial sums of signed w . signed x (x in [-127, 127]) */
static inline __m256i dot_i8(__m256i w, __m256i x) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

static inline __m256i q4_0_unpack(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0xF);
    const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)),
                                              _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

static float dot_q8_0(const void *w, const void *xq, int64_t n) {
    const blk_q8_0 *a = w, *b = xq;
    const int64_t nb = n / QK32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        const __m256i p1 = dot_i8(_mm256_loadu_si256((const __m256i *)a[i + 1].qs),
                                  _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(H2F(a[i + 1].d) * H2F(b[i + 1].d)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p0 = dot_i8(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

static float dot_q4_0(const void *w, const void *xq, int64_t n) {
    const blk_q4_0 *a = w;
    const blk_q8_0 *b = xq;
    const int64_t nb = n / QK32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i p0 = dot_i8(q4_0_unpack(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        const __m256i p1 = dot_i8(q4_0_unpack(a[i + 1].qs), _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(H2F(a[i + 1].d) * H2F(b[i + 1].d)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i p0 = dot_i8(q4_0_unpack(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* 32 bytes: 16 where bit j of qh is set (element j), else 0 */
static inline __m256i bits_to_16(uint32_t qh) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                          3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(16));
}

static inline __m256i nib_unpack(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m4 = _mm_set1_epi8(0xF);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)), _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
}

static float dot_q5_0(const void *w, const void *xq, int64_t n) {
    const blk_q5_0 *a = w;
    const blk_q8_0 *b = xq;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK32; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        const __m256i v = _mm256_sub_epi8(_mm256_or_si256(nib_unpack(a[i].qs), bits_to_16(qh)), _mm256_set1_epi8(16));
        const __m256i p = dot_i8(v, _mm256_loadu_si256((const __m256i *)b[i].qs));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc);
    }
    return hsum8(acc);
}

/* q4_1/q5_1 . q8_1: unsigned quants times signed x (vpmaddubsw), plus m*s */
static float dot_q4_1(const void *w, const void *xq, int64_t n) {
    const blk_q4_1 *a = w;
    const blk_q8_1 *b = xq;
    __m256 acc = _mm256_setzero_ps();
    float ms = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(nib_unpack(a[i].qs), _mm256_loadu_si256((const __m256i *)b[i].qs)),
                                            _mm256_set1_epi16(1));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc);
        ms += H2F(a[i].m) * H2F(b[i].s);
    }
    return hsum8(acc) + ms;
}

static float dot_q5_1(const void *w, const void *xq, int64_t n) {
    const blk_q5_1 *a = w;
    const blk_q8_1 *b = xq;
    __m256 acc = _mm256_setzero_ps();
    float ms = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        const __m256i q = _mm256_or_si256(nib_unpack(a[i].qs), bits_to_16(qh));
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)b[i].qs)),
                                            _mm256_set1_epi16(1));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc);
        ms += H2F(a[i].m) * H2F(b[i].s);
    }
    return hsum8(acc) + ms;
}

/* q5_K . q8_K: q4_K plus the fifth bit (bit j of qh[l] for element 32j+l) */
static float dot_q5_K(const void *w, const void *xq, int64_t n) {
    const blk_q5_K *a = w;
    const blk_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    float sumf = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) k4_scale_min(j, a[i].scales, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        const __m256i qh = _mm256_loadu_si256((const __m256i *)a[i].qh);
        __m256i acc = _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * p));
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p), one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * p + 1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), h1);
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * p));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * p + 32));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_set1_epi16(sc[2 * p])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), _mm256_set1_epi16(sc[2 * p + 1])));
        }
        const int isum = hsum8i(acc);
        sumf += b[i].d * H2F(a[i].d) * (float)isum - b[i].d * H2F(a[i].dmin) * (float)summ;
    }
    return sumf;
}

/* q4_K . q8_K: per 32-group maddubs(q unsigned, q8) then madd by the 6-bit
 * scale; exact integer super-block sum; scalar reference's float step. */
static float dot_q4_K(const void *w, const void *xq, int64_t n) {
    const blk_q4_K *a = w;
    const blk_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    float sumf = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        uint8_t sc[8], mn[8];
        for (int j = 0; j < 8; j++) k4_scale_min(j, a[i].scales, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        __m256i acc = _mm256_setzero_si256();
        for (int p = 0; p < 4; p++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * p));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * p));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * p + 32));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_set1_epi16(sc[2 * p])));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), _mm256_set1_epi16(sc[2 * p + 1])));
        }
        const int isum = hsum8i(acc);
        sumf += b[i].d * H2F(a[i].d) * (float)isum - b[i].d * H2F(a[i].dmin) * (float)summ;
    }
    return sumf;
}

/* q6_K . q8_K: u = v + 32 in 0..63; per 16-group scale via madd (low half
 * of each 32-byte chunk is one group, high half the next). */
static float dot_q6_K(const void *w, const void *xq, int64_t n) {
    const blk_q6_K *a = w;
    const blk_q8_K *b = xq;
    const __m256i m4 = _mm256_set1_epi8(0xF), m3 = _mm256_set1_epi8(3);
    float sumf = 0;
    for (int64_t i = 0; i < n / QKK; i++) {
        __m256i acc = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = a[i].ql + 64 * h, *qh = a[i].qh + 32 * h;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            __m256i e[4];
            e[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            e[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
            e[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
            e[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
            for (int c = 0; c < 4; c++) {
                const int g = 8 * h + 2 * c; /* 16-groups g, g+1 */
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * h + 32 * c));
                const __m256i scv = _mm256_setr_m128i(_mm_set1_epi16(a[i].scales[g]), _mm_set1_epi16(a[i].scales[g + 1]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(e[c], xv), scv));
            }
        }
        int isum = hsum8i(acc);
        for (int j = 0; j < 16; j++) isum -= 32 * a[i].scales[j] * b[i].bsums[j];
        sumf += b[i].d * H2F(a[i].d) * (float)isum;
    }
    return sumf;
}

/* llama path for f16/bf16 weights: rows widened to f32 (exact), f32 micro-kernel */
static size_t f32_bytes(int64_t n) { return (size_t)n * sizeof(float); }
static void xprep_f16(pl_dtype t, const void *xq, uint8_t *xp, int64_t n) { (void)t; deq_f16(xq, (float *)xp, n); }
static void xprep_bf16(pl_dtype t, const void *xq, uint8_t *xp, int64_t n) { (void)t; deq_bf16(xq, (float *)xp, n); }
static void wprep_f16(const void *w, uint8_t *wp, int64_t n) { deq_f16(w, (float *)wp, n); }
static void wprep_bf16(const void *w, uint8_t *wp, int64_t n) { deq_bf16(w, (float *)wp, n); }
static void tile_f32(const uint8_t *wp, size_t ws, int nr, const uint8_t *xp, size_t xs, int nt, int64_t n, float *y,
                     int64_t ldy) {
    gemm_f32((const float *)wp, (int64_t)(ws / sizeof(float)), nr, (const float *)xp, (int64_t)(xs / sizeof(float)), nt,
             n, y, ldy);
}

/* ---- f32 vector kernels for attention (as kernels_avx512.c, 8 lanes) ---- */
static inline float hsum8a(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i tail_mask8(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static void f32_dots(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    const int64_t nf = n & ~(int64_t)7;
    const __m256i tk = tail_mask8(n - nf);
    for (int64_t j = 0; j < rows; j++) {
        const float *r = m + j * ld;
        __m256 a = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i < nf; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(r + i), a);
        if (n > nf) a = _mm256_fmadd_ps(_mm256_maskload_ps(x + i, tk), _mm256_maskload_ps(r + i, tk), a);
        y[j] = hsum8a(a);
    }
}

static void f32_wsum(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 y0 = _mm256_loadu_ps(y + i), y1 = _mm256_loadu_ps(y + i + 8);
        __m256 y2 = _mm256_loadu_ps(y + i + 16), y3 = _mm256_loadu_ps(y + i + 24);
        for (int64_t j = 0; j < rows; j++) {
            if (w[j] == 0.0f) continue;
            const __m256 a = _mm256_set1_ps(w[j]);
            const float *r = m + j * ld + i;
            y0 = _mm256_add_ps(y0, _mm256_mul_ps(a, _mm256_loadu_ps(r)));
            y1 = _mm256_add_ps(y1, _mm256_mul_ps(a, _mm256_loadu_ps(r + 8)));
            y2 = _mm256_add_ps(y2, _mm256_mul_ps(a, _mm256_loadu_ps(r + 16)));
            y3 = _mm256_add_ps(y3, _mm256_mul_ps(a, _mm256_loadu_ps(r + 24)));
        }
        _mm256_storeu_ps(y + i, y0);
        _mm256_storeu_ps(y + i + 8, y1);
        _mm256_storeu_ps(y + i + 16, y2);
        _mm256_storeu_ps(y + i + 24, y3);
    }
    for (; i < n; i++)
        for (int64_t j = 0; j < rows; j++)
            if (w[j] != 0.0f) y[i] += w[j] * m[j * ld + i];
}

static inline __m256 exp256(__m256 t) {
    const __m256 t0 = t;
    const __m256 nan = _mm256_cmp_ps(t, t, _CMP_UNORD_Q);
    const __m256 lo = _mm256_set1_ps(-103.972f), hi = _mm256_set1_ps(88.7228f);
    const __m256 zero = _mm256_cmp_ps(t, lo, _CMP_LT_OQ), inf = _mm256_cmp_ps(t, hi, _CMP_GT_OQ);
    t = _mm256_min_ps(_mm256_max_ps(t, lo), hi);
    const __m256 kf = _mm256_round_ps(_mm256_mul_ps(t, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693359375f), t);
    r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i k = _mm256_cvtps_epi32(kf);
    const __m256i k1 = _mm256_srai_epi32(k, 1), k2 = _mm256_sub_epi32(k, k1);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
    __m256 e = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    e = _mm256_blendv_ps(e, _mm256_setzero_ps(), zero);
    e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), inf);
    return _mm256_blendv_ps(e, t0, nan);
}

static double f32_expsum(float *x, int64_t n, float sub) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    const __m256 sv = _mm256_set1_ps(sub), ninf = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp256(_mm256_sub_ps(v, sv));
        e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(v, ninf, _CMP_EQ_OQ));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    s0 = _mm256_add_pd(s0, s1);
    __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s0), _mm256_extractf128_pd(s0, 1));
    double s = _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
    for (; i < n; i++) {
        float e[8] = {0};
        e[0] = x[i];
        __m256 v = exp256(_mm256_sub_ps(_mm256_loadu_ps(e), sv));
        const float r = x[i] == -INFINITY ? 0.0f : _mm256_cvtss_f32(v);
        x[i] = r;
        s += (double)r;
    }
    return s;
}

void pl_kernels_avx2(pl_kernels *k) {
    k->f32_dots = f32_dots;
    k->f32_wsum = f32_wsum;
    k->f32_expsum = f32_expsum;
    const pl_tiled_kernels h16 = {f32_bytes, f32_bytes, xprep_f16, wprep_f16, tile_f32, 4, NULL};
    const pl_tiled_kernels b16 = {f32_bytes, f32_bytes, xprep_bf16, wprep_bf16, tile_f32, 4, NULL};
    k->tiled[PL_DTYPE_F16] = h16;
    k->tiled[PL_DTYPE_BF16] = b16;
    k->dequant[PL_DTYPE_BF16] = deq_bf16;
    k->gemm_f32 = gemm_f32;
    k->dequant[PL_DTYPE_F16] = deq_f16;
    k->dotq[PL_DTYPE_Q8_0] = dot_q8_0;
    k->dotq[PL_DTYPE_Q4_0] = dot_q4_0;
    k->dotq[PL_DTYPE_Q5_0] = dot_q5_0;
    k->dotq[PL_DTYPE_Q4_1] = dot_q4_1;
    k->dotq[PL_DTYPE_Q5_1] = dot_q5_1;
    k->dotq[PL_DTYPE_Q5_K] = dot_q5_K;
    k->dotq[PL_DTYPE_Q4_K] = dot_q4_K;
    k->dotq[PL_DTYPE_Q6_K] = dot_q6_K;
}

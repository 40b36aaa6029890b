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
 *   dotq          f16 (vcvtph2ps + FMA), bf16 (vdpbf16ps), q8_0/q4_0 x q8_0
 *                 (vpdpbusd, sign trick), q4_K/q6_K x q8_K (vpdpbusd with
 *                 unsigned quants; integer super-block sums, then the same
 *                 float expression as the scalar reference -> bit-identical).
 *
 * Not here: q4_1/q5_x/q2_K/q3_K/q5_K SIMD dots (scalar fallback).
 */
#include "tensor/tensor_impl.h"

#include <immintrin.h>
#include <string.h>

#define H2F(h) pl_fp16_to_fp32(h)

/* ---- exact path: f32 micro-kernel --------------------------------------- */

#define MAXR 4
#define MAXT 4

static void gemm_f32(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt, int64_t n,
                     float *y, int64_t ldy) {
    const int64_t nfull = n & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (n & 15)) - 1);
    if (nr == 4 && nt == 4) {
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
               a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
        int64_t k = 0;
#define STEP(LOADW, LOADX)                                                               \
    {                                                                                    \
        const __m512 w0 = LOADW(w + k), w1 = LOADW(w + ldw + k), w2 = LOADW(w + 2 * ldw + k), \
                     w3 = LOADW(w + 3 * ldw + k);                                        \
        __m512 xv = LOADX(x + k);                                                        \
        a00 = _mm512_fmadd_ps(w0, xv, a00); a10 = _mm512_fmadd_ps(w1, xv, a10);          \
        a20 = _mm512_fmadd_ps(w2, xv, a20); a30 = _mm512_fmadd_ps(w3, xv, a30);          \
        xv = LOADX(x + ldx + k);                                                         \
        a01 = _mm512_fmadd_ps(w0, xv, a01); a11 = _mm512_fmadd_ps(w1, xv, a11);          \
        a21 = _mm512_fmadd_ps(w2, xv, a21); a31 = _mm512_fmadd_ps(w3, xv, a31);          \
        xv = LOADX(x + 2 * ldx + k);                                                     \
        a02 = _mm512_fmadd_ps(w0, xv, a02); a12 = _mm512_fmadd_ps(w1, xv, a12);          \
        a22 = _mm512_fmadd_ps(w2, xv, a22); a32 = _mm512_fmadd_ps(w3, xv, a32);          \
        xv = LOADX(x + 3 * ldx + k);                                                     \
        a03 = _mm512_fmadd_ps(w0, xv, a03); a13 = _mm512_fmadd_ps(w1, xv, a13);          \
        a23 = _mm512_fmadd_ps(w2, xv, a23); a33 = _mm512_fmadd_ps(w3, xv, a33);          \
    }
#define LOADU(p) _mm512_loadu_ps(p)
#define LOADM(p) _mm512_maskz_loadu_ps(tail, p)
        for (; k < nfull; k += 16) STEP(LOADU, LOADU)
        if (k < n) STEP(LOADM, LOADM)
#undef STEP
#undef LOADU
#undef LOADM
        y[0] = _mm512_reduce_add_ps(a00); y[1] = _mm512_reduce_add_ps(a10);
        y[2] = _mm512_reduce_add_ps(a20); y[3] = _mm512_reduce_add_ps(a30);
        y += ldy;
        y[0] = _mm512_reduce_add_ps(a01); y[1] = _mm512_reduce_add_ps(a11);
        y[2] = _mm512_reduce_add_ps(a21); y[3] = _mm512_reduce_add_ps(a31);
        y += ldy;
        y[0] = _mm512_reduce_add_ps(a02); y[1] = _mm512_reduce_add_ps(a12);
        y[2] = _mm512_reduce_add_ps(a22); y[3] = _mm512_reduce_add_ps(a32);
        y += ldy;
        y[0] = _mm512_reduce_add_ps(a03); y[1] = _mm512_reduce_add_ps(a13);
        y[2] = _mm512_reduce_add_ps(a23); y[3] = _mm512_reduce_add_ps(a33);
        return;
    }
    /* edge tiles: same per-lane arithmetic, runtime loops */
    __m512 acc[MAXR][MAXT];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[r][t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k < nfull; k += 16)
        for (int r = 0; r < nr; r++) {
            const __m512 wv = _mm512_loadu_ps(w + r * ldw + k);
            for (int t = 0; t < nt; t++) acc[r][t] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + k), acc[r][t]);
        }
    if (k < n)
        for (int r = 0; r < nr; r++) {
            const __m512 wv = _mm512_maskz_loadu_ps(tail, w + r * ldw + k);
            for (int t = 0; t < nt; t++)
                acc[r][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(tail, x + t * ldx + k), acc[r][t]);
        }
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
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

/* ---- llama-path dots ---------------------------------------------------- */

static float dot_f16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
#define LD(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(LD(a + i), LD(b + i), s0);
        s1 = _mm512_fmadd_ps(LD(a + i + 16), LD(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(LD(a + i + 32), LD(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(LD(a + i + 48), LD(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(LD(a + i), LD(b + i), s0);
#undef LD
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)),
                             _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, b + i)), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static float dot_bf16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
#define LD(p) ((__m512bh)_mm512_loadu_si512((const void *)(p)))
    for (; i + 128 <= n; i += 128) {
        s0 = _mm512_dpbf16_ps(s0, LD(a + i), LD(b + i));
        s1 = _mm512_dpbf16_ps(s1, LD(a + i + 32), LD(b + i + 32));
        s2 = _mm512_dpbf16_ps(s2, LD(a + i + 64), LD(b + i + 64));
        s3 = _mm512_dpbf16_ps(s3, LD(a + i + 96), LD(b + i + 96));
    }
    for (; i + 32 <= n; i += 32) s0 = _mm512_dpbf16_ps(s0, LD(a + i), LD(b + i));
#undef LD
    if (i < n) {
        const __mmask32 m = (__mmask32)((1ull << (n - i)) - 1);
        s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_maskz_loadu_epi16(m, a + i),
                              (__m512bh)_mm512_maskz_loadu_epi16(m, b + i));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/* sum over 4-byte groups of signed w * signed x, for w in [-128,127] and
 * x in [-127,127]: |w| (as u8) . (x with w's sign), via vpdpbusd */
static inline __m512i dot_i8(__m512i w, __m512i x) {
    const __mmask64 neg = _mm512_movepi8_mask(w);
    const __m512i xs = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), xs);
}

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

static float dot_q8_0(const void *w, const void *xq, int64_t n) {
    const blk_q8_0 *a = w, *b = xq;
    const int64_t nb = n / QK32;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i wv = pair256(_mm256_loadu_si256((const __m256i *)a[i].qs), _mm256_loadu_si256((const __m256i *)a[i + 1].qs));
        __m512i xv = pair256(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8(wv, xv)),
                               pair_scale(H2F(a[i].d) * H2F(b[i].d), H2F(a[i + 1].d) * H2F(b[i + 1].d)), acc0);
        wv = pair256(_mm256_loadu_si256((const __m256i *)a[i + 2].qs), _mm256_loadu_si256((const __m256i *)a[i + 3].qs));
        xv = pair256(_mm256_loadu_si256((const __m256i *)b[i + 2].qs), _mm256_loadu_si256((const __m256i *)b[i + 3].qs));
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8(wv, xv)),
                               pair_scale(H2F(a[i + 2].d) * H2F(b[i + 2].d), H2F(a[i + 3].d) * H2F(b[i + 3].d)), acc1);
    }
    for (; i < nb; i++) {
        const __m512i wv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a[i].qs));
        const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[i].qs));
        const __m512i p = _mm512_maskz_mov_epi32(0x00FF, dot_i8(wv, xv));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

static float dot_q4_0(const void *w, const void *xq, int64_t n) {
    const blk_q4_0 *a = w;
    const blk_q8_0 *b = xq;
    const int64_t nb = n / QK32;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i wv = pair256(q4_0_unpack(a[i].qs), q4_0_unpack(a[i + 1].qs));
        __m512i xv = pair256(_mm256_loadu_si256((const __m256i *)b[i].qs), _mm256_loadu_si256((const __m256i *)b[i + 1].qs));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8(wv, xv)),
                               pair_scale(H2F(a[i].d) * H2F(b[i].d), H2F(a[i + 1].d) * H2F(b[i + 1].d)), acc0);
        wv = pair256(q4_0_unpack(a[i + 2].qs), q4_0_unpack(a[i + 3].qs));
        xv = pair256(_mm256_loadu_si256((const __m256i *)b[i + 2].qs), _mm256_loadu_si256((const __m256i *)b[i + 3].qs));
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot_i8(wv, xv)),
                               pair_scale(H2F(a[i + 2].d) * H2F(b[i + 2].d), H2F(a[i + 3].d) * H2F(b[i + 3].d)), acc1);
    }
    for (; i < nb; i++) {
        const __m512i wv = _mm512_castsi256_si512(q4_0_unpack(a[i].qs));
        const __m512i xv = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[i].qs));
        const __m512i p = _mm512_maskz_mov_epi32(0x00FF, dot_i8(wv, xv));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(H2F(a[i].d) * H2F(b[i].d)), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* q4_K . q8_K: isum = sum_j sc_j * sum(q * q8) over 32-groups (vpdpbusd,
 * quants unsigned), summ = sum_j m_j * (bsums pair); then the scalar
 * reference's float expression. */
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
        __m512i acc = _mm512_setzero_si512();
        for (int p = 0; p < 4; p++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * p));
            const __m512i qv = pair256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
            const __m512i xv = _mm512_loadu_si512((const void *)(b[i].qs + 64 * p));
            const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qv, xv);
            const __m512i scv = _mm512_inserti64x4(_mm512_set1_epi32(sc[2 * p]), _mm256_set1_epi32(sc[2 * p + 1]), 1);
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(s, scv));
        }
        const int isum = _mm512_reduce_add_epi32(acc);
        sumf += b[i].d * H2F(a[i].d) * (float)isum - b[i].d * H2F(a[i].dmin) * (float)summ;
    }
    return sumf;
}

/* q6_K . q8_K: quants stored as u = v + 32 in 0..63; sum (u - 32) q8 =
 * sum u q8 - 32 * bsum, per 16-group times the int8 scale. */
static float dot_q6_K(const void *w, const void *xq, int64_t n) {
    const blk_q6_K *a = w;
    const blk_q8_K *b = xq;
    float sumf = 0;
    /* lane L of a 64-element chunk c belongs to 16-group 4c + L/4 */
    const __m512i grp = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int64_t i = 0; i < n / QKK; i++) {
        const __m512i scales = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)a[i].scales));
        __m512i acc = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            __m256i e[4];
            q6_half(a[i].ql + 64 * h, a[i].qh + 32 * h, e);
            for (int c = 0; c < 2; c++) {
                const int chunk = 2 * h + c; /* 64 elements */
                const __m512i qv = pair256(e[2 * c], e[2 * c + 1]);
                const __m512i xv = _mm512_loadu_si512((const void *)(b[i].qs + 64 * chunk));
                const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qv, xv);
                const __m512i scv = _mm512_permutexvar_epi32(_mm512_add_epi32(grp, _mm512_set1_epi32(4 * chunk)), scales);
                acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(s, scv));
            }
        }
        int isum = _mm512_reduce_add_epi32(acc);
        for (int j = 0; j < 16; j++) isum -= 32 * a[i].scales[j] * b[i].bsums[j];
        sumf += b[i].d * H2F(a[i].d) * (float)isum;
    }
    return sumf;
}

void pl_kernels_avx512(pl_kernels *k) {
    k->gemm_f32 = gemm_f32;
    k->dequant[PL_DTYPE_F16] = deq_f16;
    k->dequant[PL_DTYPE_BF16] = deq_bf16;
    k->dequant[PL_DTYPE_Q8_0] = deq_q8_0;
    k->dequant[PL_DTYPE_Q4_0] = deq_q4_0;
    k->dequant[PL_DTYPE_Q4_K] = deq_q4_K;
    k->dequant[PL_DTYPE_Q6_K] = deq_q6_K;
    k->dotq[PL_DTYPE_F16] = dot_f16;
    k->dotq[PL_DTYPE_BF16] = dot_bf16;
    k->dotq[PL_DTYPE_Q8_0] = dot_q8_0;
    k->dotq[PL_DTYPE_Q4_0] = dot_q4_0;
    k->dotq[PL_DTYPE_Q4_K] = dot_q4_K;
    k->dotq[PL_DTYPE_Q6_K] = dot_q6_K;
}

/* exp512.h — private to src/tensor: the AVX-512 exponential that the
 * kernels share (kernels_avx512.c, gemm_amx.c), and the gated unit's SiLU
 * row; include only from files built with the AVX-512 flags. */
#ifndef PL_EXP512_H
#define PL_EXP512_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>

/* exp(t) = p · 2^kf: kf = round(t·log2 e), r = t - kf·ln2 (two-part ln2),
 * p = the degree-7 Taylor polynomial of exp(r) (Horner, FMA) */
static inline __m512 exp512_poly(__m512 t, __m512 *kf_out) {
    const __m512 kf = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    *kf_out = kf;
    return _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
}

static inline __m512 exp512(__m512 t) {
    const __m512 lo = _mm512_set1_ps(-103.972f), hi = _mm512_set1_ps(88.7228f);
    const __m512 t0 = t;
    const __mmask16 nan = _mm512_cmp_ps_mask(t, t, _CMP_UNORD_Q);
    const __mmask16 zero = _mm512_cmp_ps_mask(t, lo, _CMP_LT_OQ);
    const __mmask16 inf = _mm512_cmp_ps_mask(t, hi, _CMP_GT_OQ);
    t = _mm512_min_ps(_mm512_max_ps(t, lo), hi);
    __m512 kf;
    const __m512 p = exp512_poly(t, &kf);
    /* 2^k = 2^k1 * 2^k2 with both in the normal range (k >= -150) */
    const __m512i k = _mm512_cvtps_epi32(kf);
    const __m512i k1 = _mm512_srai_epi32(k, 1), k2 = _mm512_sub_epi32(k, k1);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k1, _mm512_set1_epi32(127)), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k2, _mm512_set1_epi32(127)), 23));
    __m512 e = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    e = _mm512_mask_mov_ps(e, zero, _mm512_setzero_ps());
    e = _mm512_mask_mov_ps(e, inf, _mm512_set1_ps(INFINITY));
    return _mm512_mask_mov_ps(e, nan, t0); /* NaN stays NaN */
}

/* silu(g)·u of 16 features, g at row[0..16), u at row[16..32), rounded to
 * bf16 into h: f32_silu_mul's lanes (exp512, the division) */
static inline void pl_silu_row16(const float *row, uint16_t *h) {
    const __m512 x = _mm512_loadu_ps(row), y = _mm512_loadu_ps(row + 16);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e)), y));
    _mm256_storeu_si256((__m256i *)h, (__m256i)b);
}

#endif

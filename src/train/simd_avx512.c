/* simd_avx512.c — AVX-512 forms of two trainer helpers (ops.c dispatches
 * here when the CPU runs AVX-512): exp over arrays of doubles, and doubles
 * rounded to bf16 (through f32, nearest even both times: the bits of
 * (float) then pl_fp32_to_bf16).
 *
 * exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x - n·ln2 (two-part ln2,
 * FMA), |r| <= ln2/2; exp(r) by its Taylor series to r^13 (truncation
 * below 1e-17 relative), Horner with FMA; 2^n applied by vscalefpd. Within
 * a few ulp of libm's exp. Lanes outside [-700, 700] (and NaN) are left to
 * libm, so overflow, underflow, infinities and NaN behave as exp() does.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "train/train.h"

#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)

void pl_tr_exp_avx512(double *y, const double *x, int64_t n);
void pl_tr_bf16_avx512(uint16_t *y, const double *x, int64_t n);

static const double C[14] = {1.0,
                             1.0,
                             1.0 / 2,
                             1.0 / 6,
                             1.0 / 24,
                             1.0 / 120,
                             1.0 / 720,
                             1.0 / 5040,
                             1.0 / 40320,
                             1.0 / 362880,
                             1.0 / 3628800,
                             1.0 / 39916800,
                             1.0 / 479001600,
                             1.0 / 6227020800.0};

static inline __m512d exp8(__m512d v) {
    const __m512d log2e = _mm512_set1_pd(1.4426950408889634074);
    const __m512d ln2_hi = _mm512_set1_pd(0.69314718055994528623), ln2_lo = _mm512_set1_pd(2.3190468138462996e-17);
    __m512d k = _mm512_roundscale_pd(_mm512_mul_pd(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(k, ln2_hi, v);
    r = _mm512_fnmadd_pd(k, ln2_lo, r);
    __m512d p = _mm512_set1_pd(C[13]);
    for (int i = 12; i >= 0; i--) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(C[i]));
    return _mm512_scalef_pd(p, k);
}

void pl_tr_exp_avx512(double *y, const double *x, int64_t n) {
    const __m512d lo = _mm512_set1_pd(-700.0), hi = _mm512_set1_pd(700.0);
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 m = n - i >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - i)) - 1);
        __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        __mmask8 in = _mm512_cmp_pd_mask(v, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(v, hi, _CMP_LE_OQ) & m;
        _mm512_mask_storeu_pd(y + i, m, exp8(v));
        if (in != m)
            for (int j = 0; j < 8 && i + j < n; j++)
                if (!((in >> j) & 1)) y[i + j] = exp(x[i + j]);
    }
}

/* y = bf16((float)x), 16 at a time; masked tail */
void pl_tr_bf16_avx512(uint16_t *y, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        int64_t m = n - i < 16 ? n - i : 16;
        __mmask8 m0 = (__mmask8)(m >= 8 ? 0xff : (1u << m) - 1), m1 = (__mmask8)(m >= 16 ? 0xff : m > 8 ? (1u << (m - 8)) - 1 : 0);
        __m256 lo = _mm512_cvtpd_ps(_mm512_maskz_loadu_pd(m0, x + i));
        __m256 hi = _mm512_cvtpd_ps(_mm512_maskz_loadu_pd(m1, x + i + 8));
        __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
        __m256bh h = _mm512_cvtneps_pbh(f);
        _mm256_mask_storeu_epi16(y + i, (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1), (__m256i)h);
    }
}

#endif

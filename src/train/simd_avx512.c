/* simd_avx512.c — AVX-512 forms of trainer helpers (ops.c and fast.c
 * dispatch here when the CPU runs AVX-512): exp over arrays of doubles,
 * doubles rounded to bf16 (through f32, nearest even both times: the bits
 * of (float) then pl_fp32_to_bf16), and the small f32 products of the bf16
 * precision's LoRA (pl_tr_sgemm: the bits of pl_tr_sgemm_ref).
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

#include "train/train_impl.h"

#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)


static const double EXPC[14] = {1.0,
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
    __m512d p = _mm512_set1_pd(EXPC[13]);
    for (int i = 12; i >= 0; i--) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(EXPC[i]));
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

/* the same, and yf = (float)x on the way (one read of x for both) */
void pl_tr_bf16_f32_avx512(uint16_t *yb, float *yf, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        int64_t m = n - i < 16 ? n - i : 16;
        __mmask8 m0 = (__mmask8)(m >= 8 ? 0xff : (1u << m) - 1), m1 = (__mmask8)(m >= 16 ? 0xff : m > 8 ? (1u << (m - 8)) - 1 : 0);
        __mmask16 mm = (__mmask16)(m >= 16 ? 0xffff : (1u << m) - 1);
        __m256 lo = _mm512_cvtpd_ps(_mm512_maskz_loadu_pd(m0, x + i));
        __m256 hi = _mm512_cvtpd_ps(_mm512_maskz_loadu_pd(m1, x + i + 8));
        __m512 f = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
        _mm512_mask_storeu_ps(yf + i, mm, f);
        __m256bh h = _mm512_cvtneps_pbh(f);
        _mm256_mask_storeu_epi16(yb + i, mm, (__m256i)h);
    }
}

/* y = bf16(x) from floats, 16 at a time (the rounding above) */
void pl_tr_f32_bf16_avx512(uint16_t *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mm = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mm, x + i));
        _mm256_mask_storeu_epi16(y + i, mm, (__m256i)h);
    }
}

/* The attention backward's row on float storage: dot = sum (double)a·b
 * with 8 running partials (lane j % 8; tail lanes masked) reduced
 * ((0+1)+(2+3))+((4+5)+(6+7)), then d[j] = (float)(p[j]·(d[j] - dot)·s)
 * in double: pl_tr_attn_ds_row's scalar bits. */
void pl_tr_ds_row_avx512(float *d, const float *p, int64_t n, double s) {
    __m512d acc = _mm512_setzero_pd();
    for (int64_t j = 0; j < n; j += 8) {
        const __mmask8 m = (__mmask8)(n - j >= 8 ? 0xff : (1u << (n - j)) - 1);
        const __m512d dv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, d + j));
        const __m512d pv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, p + j));
        acc = _mm512_mask_add_pd(acc, m, acc, _mm512_mul_pd(dv, pv));
    }
    double q[8];
    _mm512_storeu_pd(q, acc);
    const double dot = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
    const __m512d dt = _mm512_set1_pd(dot), sv = _mm512_set1_pd(s);
    for (int64_t j = 0; j < n; j += 8) {
        const __mmask8 m = (__mmask8)(n - j >= 8 ? 0xff : (1u << (n - j)) - 1);
        const __m512d dv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, d + j));
        const __m512d pv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, p + j));
        const __m512d r = _mm512_mul_pd(_mm512_mul_pd(pv, _mm512_sub_pd(dv, dt)), sv);
        _mm256_mask_storeu_ps(d + j, m, _mm512_cvtpd_ps(r));
    }
}

/* RoPE on one head of float storage with the double table c ((cos, sin)
 * pairs of the half angles) and sign sg on the sines: the scalar loop's
 * double products, differences and roundings, 8 pairs at a time. neox:
 * pairs (i, i + half), else (2i, 2i + 1). */
void pl_tr_rope_row_f_avx512(float *x, const double *c, int half, int neox, double sg) {
    const __m512i ev = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), od = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    const __m512i lo4 = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), hi4 = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    const __m512d sgv = _mm512_set1_pd(sg);
    for (int i = 0; i < half; i += 8) {
        const int m = half - i >= 8 ? 8 : half - i;
        const __mmask8 k = (__mmask8)((1u << m) - 1);
        const __mmask8 ka = (__mmask8)(2 * m >= 8 ? 0xff : (1u << (2 * m)) - 1);
        const __mmask8 kb = (__mmask8)(2 * m > 8 ? (1u << (2 * m - 8)) - 1 : 0);
        const __m512d p0 = _mm512_maskz_loadu_pd(ka, c + 2 * i), p1 = _mm512_maskz_loadu_pd(kb, c + 2 * i + 8);
        const __m512d co = _mm512_permutex2var_pd(p0, ev, p1);
        const __m512d s = _mm512_mul_pd(sgv, _mm512_permutex2var_pd(p0, od, p1));
        __m512d x0, x1;
        if (neox) {
            x0 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + i));
            x1 = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + half + i));
        } else {
            const __m512 v = _mm512_maskz_loadu_ps((__mmask16)(m == 8 ? 0xffff : (1u << (2 * m)) - 1), x + 2 * i);
            const __m512d l = _mm512_cvtps_pd(_mm512_castps512_ps256(v)), h = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
            x0 = _mm512_permutex2var_pd(l, ev, h);
            x1 = _mm512_permutex2var_pd(l, od, h);
        }
        const __m512d ya = _mm512_sub_pd(_mm512_mul_pd(x0, co), _mm512_mul_pd(x1, s));
        const __m512d yb = _mm512_add_pd(_mm512_mul_pd(x0, s), _mm512_mul_pd(x1, co));
        if (neox) {
            _mm256_mask_storeu_ps(x + i, k, _mm512_cvtpd_ps(ya));
            _mm256_mask_storeu_ps(x + half + i, k, _mm512_cvtpd_ps(yb));
        } else {
            const __m256 l = _mm512_cvtpd_ps(_mm512_permutex2var_pd(ya, lo4, yb));
            const __m256 h = _mm512_cvtpd_ps(_mm512_permutex2var_pd(ya, hi4, yb));
            _mm512_mask_storeu_ps(x + 2 * i, (__mmask16)(m == 8 ? 0xffff : (1u << (2 * m)) - 1),
                                  _mm512_insertf32x8(_mm512_castps256_ps512(l), h, 1));
        }
    }
}

/* rows i < M of Ab (Kp apart) = bf16(alpha · column i of A), A[k][i] at
 * A + k·lda for k < K, zero from K to Kp (a transposed operand of the
 * attention's tile products; the bits of the scalar rounding) */
void pl_tr_bf16_t_avx512(uint16_t *Ab, int64_t Kp, const float *A, int64_t lda, int64_t M, int64_t K, float alpha) {
    const __m512i step = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                            _mm512_set1_epi32((int)lda));
    const __m512 av = _mm512_set1_ps(alpha);
    for (int64_t i = 0; i < M; i++) {
        uint16_t *row = Ab + i * Kp;
        for (int64_t k = 0; k < Kp; k += 16) {
            const __mmask16 mm = (__mmask16)(K - k >= 16 ? 0xffff : K - k > 0 ? (1u << (K - k)) - 1 : 0);
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mm, step, A + k * lda + i, 4);
            _mm256_storeu_si256((__m256i *)(row + k), (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(v, av)));
        }
    }
}

/* y = (float)(s·x) and y += (double)x, 8 at a time (the scalar loops' bits) */
void pl_tr_scale_f32_avx512(float *y, const double *x, double s, int64_t n) {
    const __m512d sv = _mm512_set1_pd(s);
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        _mm256_mask_storeu_ps(y + i, m, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_maskz_loadu_pd(m, x + i), sv)));
    }
}

void pl_tr_add_f32_avx512(double *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        __m512d a = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + i));
        _mm512_mask_storeu_pd(y + i, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, y + i), a));
    }
}

/* ---- SwiGLU in float32 (the bf16 precision's activations) -------------------
 * exp(x) = 2^n · exp(r), n = round(x·log2 e), r = x - n·ln2 (two-part ln2,
 * FMA), |r| <= ln2/2, exp(r) by its Taylor series to r^7 (truncation below
 * 6e-9 relative), 2^n by vscalefps; x clamped to [-88, 88] (a gate beyond
 * that has sigmoid 0 or 1 to f32 precision either way; NaN stays NaN
 * through g in h). s = 1 / (1 + exp(-g)), h = g·s·u; backward
 * dg = dh·u·s·(1 + g·(1 - s)), du = dh·g·s, all in f32. */
static inline __m512 exp16(__m512 v) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f), ln2_hi = _mm512_set1_ps(0.693145752f),
                 ln2_lo = _mm512_set1_ps(1.42860677e-6f);
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, v);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

/* 16 lanes of the forward at i (mask m): s stored, h = g·s·u returned */
static inline __m512 silu16(float *s, const float *g, const float *u, int64_t i, __mmask16 m) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
    __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), gv));
    __m512 sv = _mm512_div_ps(one, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(s + i, m, sv);
    return _mm512_mul_ps(_mm512_mul_ps(gv, sv), uv);
}

void pl_tr_silu_fwd_f_avx512(float *h, float *s, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(h + i, m, silu16(s, g, u, i, m));
    }
}

/* pl_tr_silu_fwd_f_avx512 with h rounded to bf16 (round to nearest even,
 * the bits of h then pl_tr_f32_bf16_avx512) instead of stored in f32 */
void pl_tr_silu_fwd_bf16_avx512(uint16_t *hb, float *s, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(hb + i, m, (__m256i)_mm512_cvtneps_pbh(silu16(s, g, u, i, m)));
    }
}

/* 16 lanes of the backward at i (mask m): *dgv and *duv */
static inline void silu_bwd16(__m512 *dgv, __m512 *duv, const float *dh, const float *g, const float *u, const float *s,
                              int64_t i, __mmask16 m) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
    __m512 sv = _mm512_maskz_loadu_ps(m, s + i), d = _mm512_maskz_loadu_ps(m, dh + i);
    __m512 gs = _mm512_mul_ps(gv, sv);
    /* s·(1 + g·(1 - s)) = s + g·s·(1 - s) */
    __m512 act = _mm512_fmadd_ps(gs, _mm512_sub_ps(one, sv), sv);
    *dgv = _mm512_mul_ps(_mm512_mul_ps(d, uv), act);
    *duv = _mm512_mul_ps(d, gs);
}

void pl_tr_silu_bwd_f_avx512(float *dg, float *du, const float *dh, const float *g, const float *u, const float *s,
                             int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 a, b;
        silu_bwd16(&a, &b, dh, g, u, s, i, m);
        _mm512_mask_storeu_ps(dg + i, m, a);
        _mm512_mask_storeu_ps(du + i, m, b);
    }
}

/* pl_tr_silu_bwd_f_avx512 with dg and du rounded to bf16 (round to nearest
 * even: the bits of the float results then pl_tr_f32_bf16_avx512) */
void pl_tr_silu_bwd_bf16_avx512(uint16_t *dg, uint16_t *du, const float *dh, const float *g, const float *u,
                                const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m512 a, b;
        silu_bwd16(&a, &b, dh, g, u, s, i, m);
        _mm256_mask_storeu_epi16(dg + i, m, (__m256i)_mm512_cvtneps_pbh(a));
        _mm256_mask_storeu_epi16(du + i, m, (__m256i)_mm512_cvtneps_pbh(b));
    }
}

/* ---- small f32 products (LoRA of the bf16 precision) ----------------------
 * C[M x N] (+)= op(A)·B with op(A)[i][k] = A[i*lda + k] or (trans_a)
 * A[k*lda + i]. A block of MR rows × NV·16 columns of C lives in registers;
 * per k, NV vectors of B's row k are loaded and each row's A element is
 * broadcast: C[i][j] = fma(a[i][k], b[k][j], ...) in k order from 0 (or
 * from C), the order of pl_tr_sgemm_ref, so the bits are the same. Rows
 * past M in the last block repeat row M-1 (computed, not stored); columns
 * past N are masked. Blocks are independent (one OpenMP work item each). */

#define UNROLL _Pragma("GCC unroll 16")

static inline __mmask16 colmask(int64_t rem) { return rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1); }

#define SG_KERNEL(NV, MR)                                                                                              \
    static void sg_block_##NV(int trans_a, int64_t i0, int64_t M, int64_t j0, int64_t N, int64_t K, const float *A,   \
                              int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc, int accumulate) {      \
        __m512 c[MR][NV];                                                                                              \
        __mmask16 mk[NV];                                                                                              \
        const float *ar[MR];                                                                                           \
        int64_t as = trans_a ? lda : 1;                                                                                \
        UNROLL for (int v = 0; v < NV; v++) mk[v] = colmask(N - j0 - 16 * v > 0 ? N - j0 - 16 * v : 0);                      \
        UNROLL for (int i = 0; i < MR; i++) {                                                                          \
            int64_t row = i0 + i < M ? i0 + i : M - 1;                                                                 \
            ar[i] = trans_a ? A + row : A + row * lda;                                                                 \
            UNROLL for (int v = 0; v < NV; v++)                                                                        \
                c[i][v] = accumulate && i0 + i < M ? _mm512_maskz_loadu_ps(mk[v], C + row * ldc + j0 + 16 * v)         \
                                                   : _mm512_setzero_ps();                                              \
        }                                                                                                              \
        for (int64_t k = 0; k < K; k++) {                                                                              \
            __m512 b[NV];                                                                                              \
            UNROLL for (int v = 0; v < NV; v++) b[v] = _mm512_maskz_loadu_ps(mk[v], B + k * ldb + j0 + 16 * v);              \
            UNROLL for (int i = 0; i < MR; i++) {                                                                      \
                __m512 a = _mm512_set1_ps(ar[i][k * as]);                                                              \
                UNROLL for (int v = 0; v < NV; v++) c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);                              \
            }                                                                                                          \
        }                                                                                                              \
        UNROLL for (int i = 0; i < MR; i++)                                                                            \
            UNROLL for (int v = 0; v < NV; v++)                                                                        \
                if (i0 + i < M) _mm512_mask_storeu_ps(C + (i0 + i) * ldc + j0 + 16 * v, mk[v], c[i][v]);     \
    }

SG_KERNEL(1, 12)
SG_KERNEL(2, 12)
SG_KERNEL(3, 8)
SG_KERNEL(4, 6)

void pl_tr_sgemm_avx512(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                        int64_t ldb, float *C, int64_t ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    /* column blocks of 64 (the last one 16-64 wide), row blocks of MR for its width */
    int64_t nbj = (N + 63) / 64;
    int nv_last = (int)((N - (nbj - 1) * 64 + 15) / 16);
    static const int MRS[5] = {0, 12, 12, 8, 6};
    int64_t mr_full = MRS[4], mr_last = MRS[nv_last];
    int64_t nbi_full = (M + mr_full - 1) / mr_full, nbi_last = (M + mr_last - 1) / mr_last;
    int64_t n_items = (nbj - 1) * nbi_full + nbi_last;
#pragma omp parallel for schedule(static) if (M * N * K >= (1 << 20))
    for (int64_t it = 0; it < n_items; it++) {
        int64_t jb = it / nbi_full, ib = it % nbi_full;
        int nv = 4;
        int64_t mr = mr_full;
        if (jb >= nbj - 1) { /* the last column block */
            jb = nbj - 1;
            ib = it - (nbj - 1) * nbi_full;
            nv = nv_last;
            mr = mr_last;
        }
        int64_t i0 = ib * mr, j0 = jb * 64;
        switch (nv) {
        case 1: sg_block_1(trans_a, i0, M, j0, N, K, A, lda, B, ldb, C, ldc, accumulate); break;
        case 2: sg_block_2(trans_a, i0, M, j0, N, K, A, lda, B, ldb, C, ldc, accumulate); break;
        case 3: sg_block_3(trans_a, i0, M, j0, N, K, A, lda, B, ldb, C, ldc, accumulate); break;
        default: sg_block_4(trans_a, i0, M, j0, N, K, A, lda, B, ldb, C, ldc, accumulate); break;
        }
    }
}

#endif

/* ---- RMSNorm rows in double (the bf16 precision's, ops.c) -------------------
 * The bits of the scalar loops: 8 partial sums (lane i % 8; the tail's
 * lanes masked) reduced ((0+1)+(2+3))+((4+5)+(6+7)), products evaluated
 * left to right without fused multiply-adds. */
static inline double sum8(__m512d p) {
    double q[8];
    _mm512_storeu_pd(q, p);
    return ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
}

/* y = (float)(x·r·w) for one row, r = 1/sqrt(Σx²/n + eps) (returned) */
double pl_tr_rmsnorm_row_f_avx512(float *y, const double *x, const double *w, int n, double eps) {
    __m512d p = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 8) {
        const __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        const __m512d v = _mm512_maskz_loadu_pd(m, x + i);
        p = _mm512_add_pd(p, _mm512_mul_pd(v, v));
    }
    const double r = 1.0 / sqrt(sum8(p) / n + eps);
    const __m512d rv = _mm512_set1_pd(r);
    for (int i = 0; i < n; i += 8) {
        const __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        const __m512d v = _mm512_mul_pd(_mm512_mul_pd(_mm512_maskz_loadu_pd(m, x + i), rv), _mm512_maskz_loadu_pd(m, w + i));
        _mm256_mask_storeu_ps(y + i, m, _mm512_cvtpd_ps(v));
    }
    return r;
}

/* dx += r·dy·w - (r³·Σ(dy·w·x)/n)·x for one row */
void pl_tr_rmsnorm_bwd_row_avx512(double *dx, const double *dy, const double *x, const double *w, double r, int n) {
    __m512d p = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 8) {
        const __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        const __m512d t = _mm512_mul_pd(_mm512_maskz_loadu_pd(m, dy + i), _mm512_maskz_loadu_pd(m, w + i));
        p = _mm512_add_pd(p, _mm512_mul_pd(t, _mm512_maskz_loadu_pd(m, x + i)));
    }
    const double c = r * r * r * sum8(p) / n;
    const __m512d rv = _mm512_set1_pd(r), cv = _mm512_set1_pd(c);
    for (int i = 0; i < n; i += 8) {
        const __mmask8 m = (__mmask8)(n - i >= 8 ? 0xff : (1u << (n - i)) - 1);
        const __m512d a = _mm512_mul_pd(_mm512_mul_pd(rv, _mm512_maskz_loadu_pd(m, dy + i)), _mm512_maskz_loadu_pd(m, w + i));
        const __m512d b = _mm512_mul_pd(cv, _mm512_maskz_loadu_pd(m, x + i));
        _mm512_mask_storeu_pd(dx + i, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, dx + i), _mm512_sub_pd(a, b)));
    }
}

/* dtype.c — the dtype table, fp16/bf16 conversion, and the reference
 * quantizers / dequantizers of the 32-element block formats.
 *
 * Layouts and reference algorithms follow GGUF / ggml (ggml-common.h and
 * ggml-quants.c, quantize_row_*_ref): the quantizers here are written so the
 * bytes are identical to llama.cpp's reference quantizers (same operations
 * in the same order; -std=c11 keeps the compiler from fusing a*b+c).
 * K-quants live in quant_k.c. Not here: SIMD (kernels_*.c), matmul (matmul.c).
 */
#include "tensor/tensor_impl.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the table ---------------------------------------------------------- */

typedef struct {
    const char *name;
    int64_t blck;
    size_t bytes;
} dtype_info;

static const dtype_info DT[PL_DTYPE_COUNT] = {
    [PL_DTYPE_F32] = {"f32", 1, 4},
    [PL_DTYPE_F16] = {"f16", 1, 2},
    [PL_DTYPE_Q4_0] = {"q4_0", QK32, sizeof(blk_q4_0)},
    [PL_DTYPE_Q4_1] = {"q4_1", QK32, sizeof(blk_q4_1)},
    [PL_DTYPE_Q5_0] = {"q5_0", QK32, sizeof(blk_q5_0)},
    [PL_DTYPE_Q5_1] = {"q5_1", QK32, sizeof(blk_q5_1)},
    [PL_DTYPE_Q8_0] = {"q8_0", QK32, sizeof(blk_q8_0)},
    [PL_DTYPE_Q8_1] = {"q8_1", QK32, sizeof(blk_q8_1)},
    [PL_DTYPE_Q2_K] = {"q2_K", QKK, sizeof(blk_q2_K)},
    [PL_DTYPE_Q3_K] = {"q3_K", QKK, sizeof(blk_q3_K)},
    [PL_DTYPE_Q4_K] = {"q4_K", QKK, sizeof(blk_q4_K)},
    [PL_DTYPE_Q5_K] = {"q5_K", QKK, sizeof(blk_q5_K)},
    [PL_DTYPE_Q6_K] = {"q6_K", QKK, sizeof(blk_q6_K)},
    [PL_DTYPE_Q8_K] = {"q8_K", QKK, sizeof(blk_q8_K)},
    [PL_DTYPE_BF16] = {"bf16", 1, 2},
};

int pl_dtype_valid(int t) { return t >= 0 && t < PL_DTYPE_COUNT && DT[t].name != NULL; }

const char *pl_dtype_name(pl_dtype t) { return pl_dtype_valid((int)t) ? DT[t].name : "invalid"; }

int64_t pl_dtype_block_size(pl_dtype t) { return pl_dtype_valid((int)t) ? DT[t].blck : 0; }

size_t pl_dtype_block_bytes(pl_dtype t) { return pl_dtype_valid((int)t) ? DT[t].bytes : 0; }

pl_status pl_dtype_from_name(const char *name, pl_dtype *out) {
    for (int t = 0; t < PL_DTYPE_COUNT; t++) {
        if (DT[t].name && name && strcasecmp(DT[t].name, name) == 0) {
            *out = (pl_dtype)t;
            return PL_OK;
        }
    }
    return pl_error(PL_ERR_INVALID, "unknown dtype '%s'", name ? name : "(null)");
}

pl_status pl_dtype_row_bytes(pl_dtype t, int64_t n, size_t *out) {
    if (!pl_dtype_valid((int)t)) return pl_error(PL_ERR_INVALID, "invalid dtype id %d", (int)t);
    if (n < 0) return pl_error(PL_ERR_INVALID, "%s row: negative length %lld", DT[t].name, (long long)n);
    if (n % DT[t].blck != 0)
        return pl_error(PL_ERR_INVALID, "%s row: length %lld is not a multiple of the block size %lld",
                        DT[t].name, (long long)n, (long long)DT[t].blck);
    if ((uint64_t)(n / DT[t].blck) > (uint64_t)SIZE_MAX || !pl_mul_ok((size_t)(n / DT[t].blck), DT[t].bytes, out))
        return pl_error(PL_ERR_INVALID, "%s row: %lld elements overflow size_t", DT[t].name, (long long)n);
    return PL_OK;
}

/* ---- fp16 / bf16 -------------------------------------------------------- */

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t pl_fp32_to_fp16(float f) {
    const uint32_t x = f2u(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); /* quiet NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* >= 65520 (and Inf) -> Inf */
    if (ax >= 0x38800000u) { /* normal in f16: rebias 127 -> 15, round 13 bits to even */
        uint32_t r = ax - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u) return sign; /* <= 2^-25: ties to even -> 0 */
    /* f16 subnormal: count units of 2^-24, round to even */
    const int e = (int)(ax >> 23);
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    const int shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

float pl_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0)); /* Inf, quiet NaN */
    if (e == 0) {
        const float v = (float)m * 0x1p-24f; /* exact */
        return sign ? -v : v;
    }
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t pl_fp32_to_bf16(float f) {
    const uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

float pl_bf16_to_fp32(uint16_t h) { return u2f((uint32_t)h << 16); }

/* ---- 32-element blocks: reference quantizers ---------------------------- */

#define H2F(h) pl_fp16_to_fp32(h)
#define F2H(f) pl_fp32_to_fp16(f)

/* q4_0: d = max/-8 where max is the signed value of largest magnitude;
 * q = min(15, trunc(x/d + 8.5)). */
static void quant_q4_0(const float *x, blk_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < QK32 / 2; j++) {
            const float x0 = x[j] * id, x1 = x[QK32 / 2 + j] * id;
            int q0 = (int)(int8_t)(x0 + 8.5f), q1 = (int)(int8_t)(x1 + 8.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* q4_1: d = (max-min)/15, m = min; q = min(15, trunc((x-min)/d + 0.5)). */
static void quant_q4_1(const float *x, blk_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        for (int j = 0; j < QK32 / 2; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[QK32 / 2 + j] - min) * id;
            int q0 = (int)(int8_t)(x0 + 0.5f), q1 = (int)(int8_t)(x1 + 0.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* q5_0: d = max/-16; q = min(31, trunc(x/d + 16.5)); bit 4 goes to qh. */
static void quant_q5_0(const float *x, blk_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK32; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const float x0 = x[j] * id, x1 = x[QK32 / 2 + j] * id;
            int q0 = (int)(int8_t)(x0 + 16.5f), q1 = (int)(int8_t)(x1 + 16.5f);
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK32 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

/* q5_1: d = (max-min)/31; q = trunc((x-min)/d + 0.5) (no clamp, as ggml). */
static void quant_q5_1(const float *x, blk_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        y[i].m = F2H(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[QK32 / 2 + j] - min) * id;
            const unsigned q0 = (uint8_t)(x0 + 0.5f), q1 = (uint8_t)(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= ((q0 >> 4) & 1u) << j;
            qh |= ((q1 >> 4) & 1u) << (j + QK32 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

/* q8_0: d = amax/127; q = roundf(x/d) (ties away from zero). */
static void quant_q8_0(const float *x, blk_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float amax = 0.0f;
        for (int j = 0; j < QK32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        for (int j = 0; j < QK32; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

/* q8_1: as q8_0 plus s = f16(d * sum(q)). */
static void quant_q8_1(const float *x, blk_q8_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK32) {
        float amax = 0.0f;
        for (int j = 0; j < QK32; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = F2H(d);
        int sum = 0;
        for (int j = 0; j < QK32; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = F2H((float)sum * d);
    }
}

/* ---- 32-element blocks: dequantizers ------------------------------------ */

static void deq_q4_0(const blk_q4_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK32 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0xF) - 8) * d;
            y[j + QK32 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void deq_q4_1(const blk_q4_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        for (int j = 0; j < QK32 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0xF) * d + m;
            y[j + QK32 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

static void deq_q5_0(const blk_q5_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK32 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((x[i].qs[j] & 0xF) | h0) - 16) * d;
            y[j + QK32 / 2] = (float)(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void deq_q5_1(const blk_q5_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d), m = H2F(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < QK32 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)((x[i].qs[j] & 0xF) | h0) * d + m;
            y[j + QK32 / 2] = (float)((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void deq_q8_0(const blk_q8_0 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

static void deq_q8_1(const blk_q8_1 *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK32) {
        const float d = H2F(x[i].d);
        for (int j = 0; j < QK32; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* ---- dispatch by dtype --------------------------------------------------- */

void pl_ref_dequant(pl_dtype t, const void *src, float *dst, int64_t n) {
    const int64_t nb = n / pl_dtype_block_size(t);
    switch (t) {
    case PL_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case PL_DTYPE_F16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = pl_fp16_to_fp32(h[i]);
        break;
    }
    case PL_DTYPE_BF16: {
        const uint16_t *h = src;
        for (int64_t i = 0; i < n; i++) dst[i] = pl_bf16_to_fp32(h[i]);
        break;
    }
    case PL_DTYPE_Q4_0: deq_q4_0(src, dst, nb); break;
    case PL_DTYPE_Q4_1: deq_q4_1(src, dst, nb); break;
    case PL_DTYPE_Q5_0: deq_q5_0(src, dst, nb); break;
    case PL_DTYPE_Q5_1: deq_q5_1(src, dst, nb); break;
    case PL_DTYPE_Q8_0: deq_q8_0(src, dst, nb); break;
    case PL_DTYPE_Q8_1: deq_q8_1(src, dst, nb); break;
    default: pl_ref_dequant_k(t, src, dst, n); break;
    }
}

void pl_ref_quantize(pl_dtype t, const float *src, void *dst, int64_t n) {
    const int64_t nb = n / pl_dtype_block_size(t);
    switch (t) {
    case PL_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case PL_DTYPE_F16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = pl_fp32_to_fp16(src[i]);
        break;
    }
    case PL_DTYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++) h[i] = pl_fp32_to_bf16(src[i]);
        break;
    }
    case PL_DTYPE_Q4_0: quant_q4_0(src, dst, nb); break;
    case PL_DTYPE_Q4_1: quant_q4_1(src, dst, nb); break;
    case PL_DTYPE_Q5_0: quant_q5_0(src, dst, nb); break;
    case PL_DTYPE_Q5_1: quant_q5_1(src, dst, nb); break;
    case PL_DTYPE_Q8_0: quant_q8_0(src, dst, nb); break;
    case PL_DTYPE_Q8_1: quant_q8_1(src, dst, nb); break;
    default: pl_ref_quantize_k(t, src, dst, n); break;
    }
}

static pl_status check_row(const char *what, pl_dtype t, const void *a, const void *b, int64_t n) {
    size_t bytes;
    pl_status st = pl_dtype_row_bytes(t, n, &bytes);
    if (st != PL_OK) return pl_error_wrap(st, "%s", what);
    if ((!a || !b) && n > 0) return pl_error(PL_ERR_INVALID, "%s: NULL buffer", what);
    return PL_OK;
}

pl_status pl_dequantize_row(pl_dtype t, const void *src, float *dst, int64_t n) {
    pl_status st = check_row("dequantize", t, src, dst, n);
    if (st != PL_OK) return st;
    if (n > 0) pl_kernels_active()->dequant[t](src, dst, n);
    return PL_OK;
}

pl_status pl_quantize_row(pl_dtype t, const float *src, void *dst, int64_t n) {
    pl_status st = check_row("quantize", t, src, dst, n);
    if (st != PL_OK) return st;
    if (n == 0) return PL_OK;
    /* activation types have SIMD quantizers with the reference's bytes */
    const pl_quant_fn q = pl_kernels_active()->quant_act[t];
    if (q) q(src, dst, n);
    else pl_ref_quantize(t, src, dst, n);
    return PL_OK;
}

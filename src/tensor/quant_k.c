/* quant_k.c — K-quants (256-element super-blocks): reference quantizers,
 * dequantizers and the scalar llama-path dot products against q8_K.
 *
 * Follows the GGUF / ggml K-quant layouts and the reference (no importance
 * matrix) quantizers of ggml-quants.c: a least-squares search for each
 * sub-block's scale (and min), then the scales themselves quantized to 4, 6
 * or 8 bits against a super-block f16 scale. Every float operation is kept
 * in the reference order so the bytes match llama-quantize without an
 * imatrix. Not here: the importance-weighted variants (quantize_*_impl).
 */
#include "tensor/tensor_impl.h"

#include <math.h>
#include <string.h>

#define H2F(h) pl_fp16_to_fp32(h)
#define F2H(f) pl_fp32_to_fp16(f)
#define GROUP_MAX_EPS 1e-15f

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Round to nearest, ties to even, for |f| <= 2^22: adding 1.5*2^23 leaves the
 * integer in the low mantissa bits. */
static inline int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* Symmetric scale search (rmse_type 1, weights x^2): L[i] in [0, 2*nmax). */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* q3_K's symmetric search with coordinate-descent refinement (do_rmse). */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric (scale, min) search: x ~ scale*L - min, L in [0, nmax],
 * weighted least squares over nstep+1 candidate inverse scales. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ---- q2_K --------------------------------------------------------------- */

static void quant_q2_K(const float *x, blk_q2_K *y, int64_t nb) {
    uint8_t L[QKK], Laux[16];
    float weights[16], mins[QKK / 16], scales[QKK / 16];
    const float q4scale = 15.f;
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QKK / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                         0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < QKK / 16; j++) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            y[i].d = F2H(max_scale / q4scale);
        } else {
            for (int j = 0; j < QKK / 16; j++) y[i].scales[j] = 0;
            y[i].d = F2H(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < QKK / 16; j++)
                y[i].scales[j] = (uint8_t)(y[i].scales[j] | (nearest_int(iscale * mins[j]) << 4));
            y[i].dmin = F2H(max_min / q4scale);
        } else {
            y[i].dmin = F2H(0.f);
        }
        for (int j = 0; j < QKK / 16; j++) {
            const float d = H2F(y[i].d) * (float)(y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = H2F(y[i].dmin) * (float)(y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)imax(0, imin(3, l));
            }
        }
        for (int j = 0; j < QKK; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                               (L[j + l + 96] << 6));
    }
}

/* element order: for each 128-half, for shift 0,2,4,6: 32 values (two
 * 16-groups, each with its own scale). */
static void deq_q2_K(const blk_q2_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < QKK; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int h = 0; h < 2; h++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0xF), ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * h] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* ---- q3_K --------------------------------------------------------------- */

/* unpack the 16 6-bit scales (stored biased by 32) */
static void q3_scales(const uint8_t *s, int *out) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (lo | (hi << 4)) - 32;
    }
}

static void quant_q3_K(const float *x, blk_q3_K *y, int64_t nb) {
    int8_t L[QKK];
    float scales[QKK / 16];
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QKK / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) { amax = scale; max_scale = scales[j]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < QKK / 16; j++) {
                int8_t l = (int8_t)nearest_int(iscale * scales[j]);
                l = (int8_t)(imax(-32, imin(31, l)) + 32);
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] = (uint8_t)(y[i].scales[j - 8] | ((l & 0xF) << 4));
                l = (int8_t)(l >> 4);
                y[i].scales[j % 4 + 8] = (uint8_t)(y[i].scales[j % 4 + 8] | (l << (2 * (j / 4))));
            }
            y[i].d = F2H(1 / iscale);
        } else {
            y[i].d = F2H(0.f);
        }
        int sc[16];
        q3_scales(y[i].scales, sc);
        for (int j = 0; j < QKK / 16; j++) {
            const float d = H2F(y[i].d) * (float)sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-4, imin(3, l)) + 4);
            }
        }
        memset(y[i].hmask, 0, QKK / 8);
        int m = 0;
        uint8_t hm = 1;
        for (int j = 0; j < QKK; j++) {
            if (L[j] > 3) {
                y[i].hmask[m] |= hm;
                L[j] = (int8_t)(L[j] - 4);
            }
            if (++m == QKK / 8) { m = 0; hm = (uint8_t)(hm << 1); }
        }
        for (int j = 0; j < QKK; j += 128)
            for (int l = 0; l < 32; l++)
                y[i].qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                               (L[j + l + 96] << 6));
    }
}

/* q3 value k of a block in [-4, 3] */
static void q3_values(const blk_q3_K *b, int8_t *v) {
    const uint8_t *q = b->qs;
    uint8_t m = 1;
    int k = 0;
    for (int n = 0; n < QKK; n += 128, q += 32) {
        for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
            for (int l = 0; l < 32; l++)
                v[k++] = (int8_t)(((q[l] >> shift) & 3) - ((b->hmask[l] & m) ? 0 : 4));
        }
    }
}

static void deq_q3_K(const blk_q3_K *x, float *y, int64_t nb) {
    int8_t v[QKK];
    int sc[16];
    for (int64_t i = 0; i < nb; i++, y += QKK) {
        const float d = H2F(x[i].d);
        q3_scales(x[i].scales, sc);
        q3_values(&x[i], v);
        for (int k = 0; k < QKK; k++) y[k] = d * (float)sc[k / 16] * (float)v[k];
    }
}

/* ---- q4_K / q5_K -------------------------------------------------------- */

/* shared front half: per 32-group scale/min search, 6-bit packing, then the
 * requantized levels L (0..nmax) against the stored scales. */
static void q45_K_levels(const float *x, int nmax, int nstep, float rmin, uint16_t *dd, uint16_t *dmin,
                         uint8_t *scales12, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[QKK / 32], scales[QKK / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QKK / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f,
                                     nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QKK / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales12[j] = ls;
            scales12[j + 4] = lm;
        } else {
            scales12[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales12[j - 4] = (uint8_t)(scales12[j - 4] | ((ls >> 4) << 6));
            scales12[j] = (uint8_t)(scales12[j] | ((lm >> 4) << 6));
        }
    }
    *dd = F2H(max_scale / 63.f);
    *dmin = F2H(max_min / 63.f);
    for (int j = 0; j < QKK / 32; j++) {
        uint8_t sc, m;
        k4_scale_min(j, scales12, &sc, &m);
        const float d = H2F(*dd) * (float)sc;
        if (!d) continue;
        const float dm = H2F(*dmin) * (float)m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void quant_q4_K(const float *x, blk_q4_K *y, int64_t nb) {
    uint8_t L[QKK];
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        memset(y[i].scales, 0, K_SCALE_SIZE);
        q45_K_levels(x, 15, 20, -1.f, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < QKK; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quant_q5_K(const float *x, blk_q5_K *y, int64_t nb) {
    uint8_t L[QKK];
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        memset(y[i].scales, 0, K_SCALE_SIZE);
        q45_K_levels(x, 31, 15, -0.5f, &y[i].d, &y[i].dmin, y[i].scales, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, QKK / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < QKK; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

static void deq_q4_K(const blk_q4_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
            uint8_t sc, m;
            k4_scale_min(j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            k4_scale_min(j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void deq_q5_K(const blk_q5_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        const float d = H2F(x[i].d), min = H2F(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32) {
            uint8_t sc, m;
            k4_scale_min(j, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            k4_scale_min(j + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

/* ---- q6_K --------------------------------------------------------------- */

static void quant_q6_K(const float *x, blk_q6_K *y, int64_t nb) {
    int8_t L[QKK];
    float scales[QKK / 16];
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QKK / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) { max_abs_scale = fabsf(scale); max_scale = scale; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = F2H(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = F2H(1 / iscale);
        for (int ib = 0; ib < QKK / 16; ib++) y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QKK / 16; j++) {
            const float d = H2F(y[i].d) * (float)y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QKK; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* q6 values in [-32, 31], natural element order */
static void q6_values(const blk_q6_K *b, int8_t *v) {
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int n = 0; n < QKK; n += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; l++) {
            v[n + l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            v[n + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            v[n + l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            v[n + l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

static void deq_q6_K(const blk_q6_K *x, float *y, int64_t nb) {
    int8_t v[QKK];
    for (int64_t i = 0; i < nb; i++, y += QKK) {
        const float d = H2F(x[i].d);
        q6_values(&x[i], v);
        /* ggml evaluates d * sc * q left to right */
        for (int k = 0; k < QKK; k++) y[k] = d * (float)x[i].scales[k / 16] * (float)v[k];
    }
}

/* ---- q8_K --------------------------------------------------------------- */

static void quant_q8_K(const float *x, blk_q8_K *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QKK) {
        float max = 0, amax = 0;
        for (int j = 0; j < QKK; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (!amax) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QKK; j++) y[i].qs[j] = (int8_t)imin(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QKK / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

static void deq_q8_K(const blk_q8_K *x, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QKK)
        for (int j = 0; j < QKK; j++) y[j] = x[i].d * (float)x[i].qs[j];
}

/* ---- dispatch ----------------------------------------------------------- */

void pl_ref_quantize_k(pl_dtype t, const float *src, void *dst, int64_t n) {
    const int64_t nb = n / QKK;
    switch (t) {
    case PL_DTYPE_Q2_K: quant_q2_K(src, dst, nb); break;
    case PL_DTYPE_Q3_K: quant_q3_K(src, dst, nb); break;
    case PL_DTYPE_Q4_K: quant_q4_K(src, dst, nb); break;
    case PL_DTYPE_Q5_K: quant_q5_K(src, dst, nb); break;
    case PL_DTYPE_Q6_K: quant_q6_K(src, dst, nb); break;
    case PL_DTYPE_Q8_K: quant_q8_K(src, dst, nb); break;
    default: break;
    }
}

void pl_ref_dequant_k(pl_dtype t, const void *src, float *dst, int64_t n) {
    const int64_t nb = n / QKK;
    switch (t) {
    case PL_DTYPE_Q2_K: deq_q2_K(src, dst, nb); break;
    case PL_DTYPE_Q3_K: deq_q3_K(src, dst, nb); break;
    case PL_DTYPE_Q4_K: deq_q4_K(src, dst, nb); break;
    case PL_DTYPE_Q5_K: deq_q5_K(src, dst, nb); break;
    case PL_DTYPE_Q6_K: deq_q6_K(src, dst, nb); break;
    case PL_DTYPE_Q8_K: deq_q8_K(src, dst, nb); break;
    default: break;
    }
}

/* ---- llama path: K-quant . q8_K (scalar reference) ------------------------
 * Per super-block: integer sums per sub-block times the 4/6/8-bit sub-block
 * scales, then one float step  y.d * (d * isum - dmin * isum_min). */

float pl_ref_dotq_k(pl_dtype t, const void *w, const void *xq, int64_t n) {
    const blk_q8_K *y = xq;
    const int64_t nb = n / QKK;
    float sumf = 0;
    for (int64_t i = 0; i < nb; i++) {
        const int8_t *q8 = y[i].qs;
        switch (t) {
        case PL_DTYPE_Q2_K: {
            const blk_q2_K *b = (const blk_q2_K *)w + i;
            int isum = 0, summ = 0;
            for (int j = 0; j < 16; j++) summ += y[i].bsums[j] * (b->scales[j] >> 4);
            /* element k: half k/128, shift 2*((k%128)/32), byte k%32 */
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) {
                    const int k = 16 * j + l;
                    const int v = (b->qs[32 * (k / 128) + k % 32] >> (2 * ((k % 128) / 32))) & 3;
                    s += v * q8[k];
                }
                isum += (b->scales[j] & 0xF) * s;
            }
            sumf += y[i].d * H2F(b->d) * (float)isum - y[i].d * H2F(b->dmin) * (float)summ;
            break;
        }
        case PL_DTYPE_Q3_K: {
            const blk_q3_K *b = (const blk_q3_K *)w + i;
            int8_t v[QKK];
            int sc[16], isum = 0;
            q3_scales(b->scales, sc);
            q3_values(b, v);
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += v[16 * j + l] * q8[16 * j + l];
                isum += sc[j] * s;
            }
            sumf += y[i].d * H2F(b->d) * (float)isum;
            break;
        }
        case PL_DTYPE_Q4_K:
        case PL_DTYPE_Q5_K: {
            const int is5 = t == PL_DTYPE_Q5_K;
            const blk_q4_K *b4 = (const blk_q4_K *)w + i;
            const blk_q5_K *b5 = (const blk_q5_K *)w + i;
            const uint8_t *scales = is5 ? b5->scales : b4->scales;
            const uint8_t *qs = is5 ? b5->qs : b4->qs;
            int isum = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                k4_scale_min(j, scales, &sc, &m);
                summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
                int s = 0;
                for (int l = 0; l < 32; l++) {
                    const uint8_t byte = qs[32 * (j / 2) + l];
                    int v = (j & 1) ? byte >> 4 : byte & 0xF;
                    if (is5 && (b5->qh[l] >> j) & 1) v += 16;
                    s += v * q8[32 * j + l];
                }
                isum += sc * s;
            }
            const uint16_t d = is5 ? b5->d : b4->d, dmin = is5 ? b5->dmin : b4->dmin;
            sumf += y[i].d * H2F(d) * (float)isum - y[i].d * H2F(dmin) * (float)summ;
            break;
        }
        case PL_DTYPE_Q6_K: {
            const blk_q6_K *b = (const blk_q6_K *)w + i;
            int8_t v[QKK];
            q6_values(b, v);
            int isum = 0;
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += v[16 * j + l] * q8[16 * j + l];
                isum += b->scales[j] * s;
            }
            sumf += y[i].d * H2F(b->d) * (float)isum;
            break;
        }
        default: break;
        }
    }
    return sumf;
}

/* ops.c — training kernels in double: each forward with its backward.
 *
 * The PyTorch expression each kernel implements is in the comment above it
 * (llm.c style). Backward functions accumulate into gradients. Every
 * reduction runs in a fixed order over the data, and OpenMP splits only
 * independent outputs, so results do not depend on the thread count.
 * Checked against central finite differences in tests/test_train.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/tensor.h"
#include "train/train_impl.h"

/* Split work over threads only when it is worth a parallel region (the
 * results do not depend on it: every output is computed the same way). */
#define BIG(work) ((int64_t)(work) >= (1 << 16))

/* ---- exp over arrays ------------------------------------------------------ */

#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
#define HAVE_EXP_AVX512 1
#endif

void pl_tr_exp_arr(pl_real *y, const pl_real *x, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_exp_avx512(y, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = exp(x[i]);
}

void pl_tr_to_bf16(uint16_t *y, const pl_real *x, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_bf16_avx512(y, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = pl_fp32_to_bf16((float)x[i]);
}

void pl_tr_to_bf16_f32(uint16_t *yb, float *yf, const pl_real *x, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_bf16_f32_avx512(yb, yf, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) {
        yf[i] = (float)x[i];
        yb[i] = pl_fp32_to_bf16(yf[i]);
    }
}

void pl_tr_f32_to_bf16(uint16_t *y, const float *x, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_f32_bf16_avx512(y, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = pl_fp32_to_bf16(x[i]);
}

void pl_tr_scale_f32(float *y, const pl_real *x, double s, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_scale_f32_avx512(y, x, s, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = (float)(x[i] * s);
}

void pl_tr_add_f32(pl_real *y, const float *x, int64_t n) {
#if defined(HAVE_EXP_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_add_f32_avx512(y, x, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++) y[i] += (double)x[i];
}

/* ---- RMSNorm ------------------------------------------------------------- */

/* y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w */
void pl_tr_rmsnorm_fwd(pl_real *y, pl_real *rstd, const pl_real *x, const pl_real *w, int64_t T, int n, double eps) {
#pragma omp parallel for schedule(static) if (BIG(T * n))
    for (int64_t t = 0; t < T; t++) {
        const pl_real *xr = x + t * n;
        pl_real *yr = y + t * n;
        double ss = 0.0;
        for (int i = 0; i < n; i++) ss += xr[i] * xr[i];
        double r = 1.0 / sqrt(ss / n + eps);
        rstd[t] = r;
        for (int i = 0; i < n; i++) yr[i] = xr[i] * r * w[i];
    }
}

/* With g = dy * w and r = rstd:  dx = r * g - x * r^3 * mean(g * x);  dw = sum_t dy * x * r */
void pl_tr_rmsnorm_bwd(pl_real *dx, pl_real *dw, const pl_real *dy, const pl_real *x, const pl_real *rstd,
                       const pl_real *w, int64_t T, int n) {
#pragma omp parallel for schedule(static) if (BIG(T * n))
    for (int64_t t = 0; t < T; t++) {
        const pl_real *xr = x + t * n, *dyr = dy + t * n;
        pl_real *dxr = dx + t * n;
        double r = rstd[t], dot = 0.0;
        for (int i = 0; i < n; i++) dot += dyr[i] * w[i] * xr[i];
        double c = r * r * r * dot / n;
        for (int i = 0; i < n; i++) dxr[i] += r * dyr[i] * w[i] - c * xr[i];
    }
    if (dw) {
        for (int64_t t = 0; t < T; t++)
            for (int i = 0; i < n; i++) dw[i] += dy[t * n + i] * x[t * n + i] * rstd[t];
    }
}

/* ---- RoPE ---------------------------------------------------------------- */

void pl_tr_rope_inv_freq(pl_real *inv_freq, int n_rot, double base, const float *factors) {
    for (int i = 0; i < n_rot / 2; i++) {
        double f = pow(base, -2.0 * i / n_rot);
        inv_freq[i] = factors ? f / (double)factors[i] : f;
    }
}

/* Rotate pairs (a, b) by angle sign * pos * inv_freq[i]:
 *   neox:  x1, x2 = x[..., :d/2], x[..., d/2:] ; x*cos + rotate_half(x)*sin   (HF)
 *   norm:  pairs (2i, 2i+1)                                                 (GGUF llama) */
static void rope_apply(pl_real *x, int64_t T, int n_head, int hd, int n_rot, const int32_t *pos,
                       const pl_real *inv_freq, int neox, double sign) {
    int half = n_rot / 2;
#pragma omp parallel for schedule(static) if (BIG(T * n_head * hd * 8))
    for (int64_t t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            double th = sign * (double)pos[t] * inv_freq[i];
            double c = cos(th), s = sin(th);
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            for (int h = 0; h < n_head; h++) {
                pl_real *xh = x + (t * n_head + h) * hd;
                double x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * c - x1 * s;
                xh[b] = x0 * s + x1 * c;
            }
        }
    }
}

void pl_tr_rope_table(pl_real *cs, const int32_t *pos, int64_t T, int n_rot, const pl_real *inv_freq) {
    int half = n_rot / 2;
    for (int64_t t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double th = (double)pos[t] * inv_freq[i];
            cs[(t * half + i) * 2] = cos(th);
            cs[(t * half + i) * 2 + 1] = sin(th);
        }
}

void pl_tr_rope_apply_table(pl_real *x, int64_t T, int n_head, int hd, int n_rot, const pl_real *cs, int neox,
                            int inverse) {
    int half = n_rot / 2;
    double sg = inverse ? -1.0 : 1.0;
#pragma omp parallel for schedule(static) if (BIG(T * n_head * hd * 8))
    for (int64_t t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            pl_real *xh = x + (t * n_head + h) * hd;
            const pl_real *c = cs + t * half * 2;
            for (int i = 0; i < half; i++) {
                int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                double co = c[2 * i], s = sg * c[2 * i + 1], x0 = xh[a], x1 = xh[b];
                xh[a] = x0 * co - x1 * s;
                xh[b] = x0 * s + x1 * co;
            }
        }
}

void pl_tr_rope_fwd(pl_real *x, int64_t T, int n_head, int hd, int n_rot, const int32_t *pos,
                    const pl_real *inv_freq, int neox) {
    rope_apply(x, T, n_head, hd, n_rot, pos, inv_freq, neox, 1.0);
}

/* The rotation is orthogonal: dx = Rᵀ dy = R(-θ) dy (in place). */
void pl_tr_rope_bwd(pl_real *dx, int64_t T, int n_head, int hd, int n_rot, const int32_t *pos,
                    const pl_real *inv_freq, int neox) {
    rope_apply(dx, T, n_head, hd, n_rot, pos, inv_freq, neox, -1.0);
}

/* ---- softmax ------------------------------------------------------------- */

/* y = torch.softmax(x, -1); -inf entries get 0 */
static void softmax_row(pl_real *y, const pl_real *x, int n) {
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        y[i] = x[i] == -(double)INFINITY ? 0.0 : exp(x[i] - mx);
        sum += y[i];
    }
    for (int i = 0; i < n; i++) y[i] /= sum;
}

void pl_tr_softmax_fwd(pl_real *y, const pl_real *x, int64_t T, int n) {
#pragma omp parallel for schedule(static) if (BIG(T * n * 4))
    for (int64_t t = 0; t < T; t++) softmax_row(y + t * n, x + t * n, n);
}

/* dx = y * (dy - (dy * y).sum(-1, keepdim=True)) */
void pl_tr_softmax_bwd(pl_real *dx, const pl_real *dy, const pl_real *y, int64_t T, int n) {
#pragma omp parallel for schedule(static) if (BIG(T * n))
    for (int64_t t = 0; t < T; t++) {
        const pl_real *yr = y + t * n, *dyr = dy + t * n;
        double dot = 0.0;
        for (int i = 0; i < n; i++) dot += dyr[i] * yr[i];
        for (int i = 0; i < n; i++) dx[t * n + i] += yr[i] * (dyr[i] - dot);
    }
}

/* ---- attention ----------------------------------------------------------- */

static int attn_masked(const pl_tr_attn *a, int64_t i, int64_t j) {
    return j > i || (a->window > 0 && i - j >= a->window);
}

/* Pre-soft-cap score s = (q_i · k_j) * scale. */
static double attn_score(const pl_tr_attn *a, const pl_real *q, const pl_real *k, int64_t i, int64_t j, int h) {
    int hd = a->head_dim, g = a->n_head / a->n_head_kv;
    const pl_real *qi = q + (i * a->n_head + h) * hd;
    const pl_real *kj = k + (j * a->n_head_kv + h / g) * hd;
    double s = 0.0;
    for (int e = 0; e < hd; e++) s += qi[e] * kj[e];
    return s * a->scale;
}

/* S = (q @ k.transpose(-1,-2)) * scale ; S = tanh(S/cap)*cap ; S += causal/window mask
 * P = softmax(S, -1) ; z = P @ v        (k, v repeated over each group of heads) */
void pl_tr_attn_fwd(const pl_tr_attn *a, pl_real *z, pl_real *P, const pl_real *q, const pl_real *k,
                    const pl_real *v, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
#pragma omp parallel for schedule(static) if (BIG(H * T * T * hd))
    for (int64_t it = 0; it < (int64_t)H * T; it++) {
        int h = (int)(it / T);
        int64_t i = it % T;
        pl_real *row = P + ((int64_t)h * T + i) * T;
        for (int64_t j = 0; j < T; j++) {
            if (attn_masked(a, i, j)) {
                row[j] = -INFINITY;
                continue;
            }
            double s = attn_score(a, q, k, i, j, h);
            if (a->softcap > 0) s = tanh(s / a->softcap) * a->softcap;
            row[j] = s;
        }
        softmax_row(row, row, (int)T);
        pl_real *zi = z + (i * H + h) * hd;
        for (int e = 0; e < hd; e++) zi[e] = 0.0;
        for (int64_t j = 0; j <= i; j++) {
            if (row[j] == 0.0) continue;
            const pl_real *vj = v + (j * Hkv + h / g) * hd;
            for (int e = 0; e < hd; e++) zi[e] += row[j] * vj[e];
        }
    }
}

/* dP = dz @ vᵀ ; dv = Pᵀ @ dz ; dS = P * (dP - (dP*P).sum(-1)) ;
 * through the soft-cap dS *= 1 - tanh²(s/cap) ; dq = dS @ k * scale ; dk = dSᵀ @ q * scale.
 * Parallel over KV heads: each thread owns dk/dv of its KV head and dq of its query heads. */
pl_status pl_tr_attn_bwd(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                         const pl_real *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
    pl_real *scratch = malloc((size_t)Hkv * (size_t)T * sizeof *scratch);
    if (!scratch) return pl_error(PL_ERR_NOMEM, "attention backward: out of memory (%lld positions)", (long long)T);
#pragma omp parallel for schedule(static) if (BIG(H * T * T * hd))
    for (int kh = 0; kh < Hkv; kh++) {
        pl_real *dS = scratch + (size_t)kh * (size_t)T;
        for (int h = kh * g; h < (kh + 1) * g; h++) {
            for (int64_t i = 0; i < T; i++) {
                const pl_real *row = P + ((int64_t)h * T + i) * T;
                const pl_real *dzi = dz + (i * H + h) * hd;
                double dot = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    const pl_real *vj = v + (j * Hkv + kh) * hd;
                    double dp = 0.0;
                    for (int e = 0; e < hd; e++) dp += dzi[e] * vj[e];
                    dS[j] = dp;
                    dot += dp * row[j];
                }
                for (int64_t j = 0; j <= i; j++) {
                    if (attn_masked(a, i, j)) continue;
                    /* dv_j += P_ij dz_i */
                    pl_real *dvj = dv + (j * Hkv + kh) * hd;
                    for (int e = 0; e < hd; e++) dvj[e] += row[j] * dzi[e];
                    double ds = row[j] * (dS[j] - dot);
                    if (a->softcap > 0) {
                        double c = tanh(attn_score(a, q, k, i, j, h) / a->softcap);
                        ds *= 1.0 - c * c;
                    }
                    ds *= a->scale;
                    const pl_real *qi = q + (i * H + h) * hd, *kj = k + (j * Hkv + kh) * hd;
                    pl_real *dqi = dq + (i * H + h) * hd, *dkj = dk + (j * Hkv + kh) * hd;
                    for (int e = 0; e < hd; e++) {
                        dqi[e] += ds * kj[e];
                        dkj[e] += ds * qi[e];
                    }
                }
            }
        }
    }
    free(scratch);
    return PL_OK;
}

/* ---- gated MLP activation -------------------------------------------------- */

static const double GELU_C = 0.79788456080286535588; /* sqrt(2/pi) */

static double act_fwd(double x, pl_act act) {
    if (act == PL_ACT_SILU) return x / (1.0 + exp(-x));
    return 0.5 * x * (1.0 + tanh(GELU_C * (x + 0.044715 * x * x * x)));
}

static double act_grad(double x, pl_act act) {
    if (act == PL_ACT_SILU) {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }
    double t = tanh(GELU_C * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
}

/* h = F.silu(g) * u   or   F.gelu(g, approximate="tanh") * u */
void pl_tr_glu_fwd(pl_real *h, const pl_real *g, const pl_real *u, int64_t n, pl_act act) {
#pragma omp parallel for schedule(static) if (BIG(n * 16))
    for (int64_t i = 0; i < n; i++) h[i] = act_fwd(g[i], act) * u[i];
}

void pl_tr_glu_bwd(pl_real *dg, pl_real *du, const pl_real *dh, const pl_real *g, const pl_real *u, int64_t n,
                   pl_act act) {
#pragma omp parallel for schedule(static) if (BIG(n * 16))
    for (int64_t i = 0; i < n; i++) {
        dg[i] += dh[i] * u[i] * act_grad(g[i], act);
        du[i] += dh[i] * act_fwd(g[i], act);
    }
}

/* The same with the activation's inner term saved for the backward (the
 * trainer's path: one exp/tanh per element in each direction):
 *   s = sigmoid(g) (SiLU, act = g·s) or tanh(c·(g + 0.044715 g³)) (GELU,
 *   act = g/2·(1 + s)); h = act·u. */
void pl_tr_glu_fwd_s(pl_real *h, pl_real *s, const pl_real *g, const pl_real *u, int64_t n, pl_act act) {
    if (act == PL_ACT_SILU) {
        /* in blocks of EXP_BLOCK: e = exp(-g) by pl_tr_exp_arr, s = 1/(1+e) */
        enum { EXP_BLOCK = 256 };
#pragma omp parallel for schedule(static) if (BIG(n * 16))
        for (int64_t b = 0; b < n; b += EXP_BLOCK) {
            int64_t m = n - b < EXP_BLOCK ? n - b : EXP_BLOCK;
            pl_real e[EXP_BLOCK];
            for (int64_t i = 0; i < m; i++) e[i] = -g[b + i];
            pl_tr_exp_arr(e, e, m);
            for (int64_t i = 0; i < m; i++) {
                double si = 1.0 / (1.0 + e[i]);
                s[b + i] = si;
                h[b + i] = g[b + i] * si * u[b + i];
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BIG(n * 16))
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], t = tanh(GELU_C * (x + 0.044715 * x * x * x));
        s[i] = t;
        h[i] = 0.5 * x * (1.0 + t) * u[i];
    }
}

/* dg = dh·u·act'(g) ; du = dh·act(g) — written, not accumulated. */
void pl_tr_glu_bwd_s(pl_real *dg, pl_real *du, const pl_real *dh, const pl_real *g, const pl_real *u,
                     const pl_real *s, int64_t n, pl_act act) {
    if (act == PL_ACT_SILU) {
#pragma omp parallel for schedule(static) if (BIG(n * 4))
        for (int64_t i = 0; i < n; i++) {
            double x = g[i], si = s[i];
            dg[i] = dh[i] * u[i] * (si * (1.0 + x * (1.0 - si)));
            du[i] = dh[i] * (x * si);
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BIG(n * 4))
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], t = s[i];
        double d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
        dg[i] = dh[i] * u[i] * d;
        du[i] = dh[i] * (0.5 * x * (1.0 + t));
    }
}

/* ---- soft-cap, cross-entropy ---------------------------------------------- */

/* y = torch.tanh(x / cap) * cap */
void pl_tr_softcap_fwd(pl_real *y, const pl_real *x, int64_t n, double cap) {
    for (int64_t i = 0; i < n; i++) y[i] = tanh(x[i] / cap) * cap;
}

void pl_tr_softcap_bwd(pl_real *dx, const pl_real *dy, const pl_real *y, int64_t n, double cap) {
    for (int64_t i = 0; i < n; i++) {
        double c = y[i] / cap;
        dx[i] += dy[i] * (1.0 - c * c);
    }
}

/* loss = F.cross_entropy(l[idx], target) ; dl[idx] += w * (softmax(l[idx]) - onehot(target)) */
double pl_tr_xent(pl_real *dl, const pl_real *l, int n, const int32_t *idx, int n_idx, int target, double w) {
    int m = idx ? n_idx : n;
    double mx = -INFINITY;
    for (int c = 0; c < m; c++) {
        double x = l[idx ? idx[c] : c];
        if (x > mx) mx = x;
    }
    double sum = 0.0;
    for (int c = 0; c < m; c++) sum += exp(l[idx ? idx[c] : c] - mx);
    double lse = mx + log(sum);
    double loss = lse - l[idx ? idx[target] : target];
    if (dl) {
        for (int c = 0; c < m; c++) {
            int j = idx ? idx[c] : c;
            double p = exp(l[j] - lse);
            dl[j] += w * (p - (c == target ? 1.0 : 0.0));
        }
    }
    return loss;
}

/* ---- frozen linear --------------------------------------------------------- */

/* Rows of W are dequantized (to f32, then widened) in tiles of ROW_TILE. */
enum { ROW_TILE = 16 };

static pl_status check_weight(const pl_tr_weight *w) {
    if (!pl_dtype_valid(w->dtype)) return pl_error(PL_ERR_UNSUPPORTED, "linear: unknown dtype %d", w->dtype);
    return PL_OK;
}

/* y = F.linear(x, W) = x @ W.T  — parallel over tiles of output rows. */
pl_status pl_tr_linear_fwd(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w) {
    pl_status st = check_weight(w);
    if (st) return st;
    int64_t n_in = w->n_in, n_out = w->n_out, n_tiles = (n_out + ROW_TILE - 1) / ROW_TILE;
    int fail = 0;
#pragma omp parallel if (BIG(T * n_in * n_out))
    {
        float *rowf = malloc((size_t)n_in * sizeof *rowf);
        if (!rowf) {
#pragma omp atomic write
            fail = 1;
        }
#pragma omp for schedule(static)
        for (int64_t tile = 0; tile < n_tiles; tile++) {
            if (!rowf) continue;
            for (int64_t o = tile * ROW_TILE; o < n_out && o < (tile + 1) * ROW_TILE; o++) {
                if (pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)o * w->row_bytes, rowf,
                                      n_in) != PL_OK) {
#pragma omp atomic write
                    fail = 1;
                    continue;
                }
                for (int64_t t = 0; t < T; t++) {
                    const pl_real *xr = x + t * n_in;
                    double acc = 0.0;
                    for (int64_t i = 0; i < n_in; i++) acc += xr[i] * (double)rowf[i];
                    y[t * n_out + o] = acc;
                }
            }
        }
        free(rowf);
    }
    if (fail) return pl_error(PL_ERR_NOMEM, "linear: cannot dequantize rows of a %lld x %lld weight",
                              (long long)n_out, (long long)n_in);
    return PL_OK;
}

/* dx += dy @ W — parallel over tokens; every thread walks W's rows in order,
 * so each dx element sums over outputs in the same order for any thread count. */
pl_status pl_tr_linear_bwd(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w) {
    pl_status st = check_weight(w);
    if (st) return st;
    int64_t n_in = w->n_in, n_out = w->n_out;
    int fail = 0;
#pragma omp parallel if (BIG(T * n_in * n_out))
    {
        int nt = 1, id = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        id = omp_get_thread_num();
#endif
        int64_t t0 = T * id / nt, t1 = T * (id + 1) / nt;
        float *rowf = t1 > t0 ? malloc((size_t)(n_in * ROW_TILE) * sizeof *rowf) : NULL;
        if (t1 > t0 && !rowf) {
#pragma omp atomic write
            fail = 1;
        }
        for (int64_t o0 = 0; rowf && o0 < n_out; o0 += ROW_TILE) {
            int64_t o1 = o0 + ROW_TILE < n_out ? o0 + ROW_TILE : n_out;
            for (int64_t o = o0; o < o1; o++)
                if (pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)o * w->row_bytes,
                                      rowf + (o - o0) * n_in, n_in) != PL_OK) {
#pragma omp atomic write
                    fail = 1;
                }
            for (int64_t t = t0; t < t1; t++) {
                pl_real *dxr = dx + t * n_in;
                for (int64_t o = o0; o < o1; o++) {
                    double g = dy[t * n_out + o];
                    if (g == 0.0) continue;
                    const float *wr = rowf + (o - o0) * n_in;
                    for (int64_t i = 0; i < n_in; i++) dxr[i] += g * (double)wr[i];
                }
            }
        }
        free(rowf);
    }
    if (fail) return pl_error(PL_ERR_NOMEM, "linear backward: cannot dequantize rows of a %lld x %lld weight",
                              (long long)n_out, (long long)n_in);
    return PL_OK;
}

/* ---- dense trainable matmuls --------------------------------------------- */

/* y (+)= x @ W.T */
void pl_tr_dense_fwd(pl_real *y, const pl_real *x, const pl_real *W, int64_t T, int n_in, int n_out, int accumulate) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in * n_out))
    for (int64_t t = 0; t < T; t++)
        for (int o = 0; o < n_out; o++) {
            const pl_real *xr = x + t * n_in, *wr = W + (int64_t)o * n_in;
            double acc = 0.0;
            for (int i = 0; i < n_in; i++) acc += xr[i] * wr[i];
            y[t * n_out + o] = accumulate ? y[t * n_out + o] + acc : acc;
        }
}

/* dx += dy @ W ; dW += dy.T @ x  (either may be NULL) */
void pl_tr_dense_bwd(pl_real *dx, pl_real *dW, const pl_real *dy, const pl_real *x, const pl_real *W, int64_t T,
                     int n_in, int n_out) {
    if (dx) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in * n_out))
        for (int64_t t = 0; t < T; t++)
            for (int o = 0; o < n_out; o++) {
                double g = dy[t * n_out + o];
                const pl_real *wr = W + (int64_t)o * n_in;
                for (int i = 0; i < n_in; i++) dx[t * n_in + i] += g * wr[i];
            }
    }
    if (dW) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in * n_out))
        for (int o = 0; o < n_out; o++)
            for (int64_t t = 0; t < T; t++) {
                double g = dy[t * n_out + o];
                if (g == 0.0) continue;
                for (int i = 0; i < n_in; i++) dW[(int64_t)o * n_in + i] += g * x[t * n_in + i];
            }
    }
}

/* ---- LoRA -------------------------------------------------------------------- */

/* splitmix64 finalizer of a + golden * b: a counter-based hash for dropout. */
uint64_t pl_tr_mix(uint64_t a, uint64_t b) {
    uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int pl_tr_dropout_keep(uint64_t key, uint64_t index, double p) {
    if (p <= 0.0) return 1;
    double u = (double)(pl_tr_mix(key, index) >> 11) * 0x1.0p-53;
    return u >= p;
}

/* xd = F.dropout(x, p) with our mask */
static void dropout_apply(pl_real *xd, const pl_real *x, int64_t n, uint64_t key, double p) {
    if (p <= 0.0) {
        memcpy(xd, x, (size_t)n * sizeof *xd);
        return;
    }
    double sc = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static) if (BIG(n * 8))
    for (int64_t i = 0; i < n; i++) xd[i] = pl_tr_dropout_keep(key, (uint64_t)i, p) ? x[i] * sc : 0.0;
}

/* y += lora_B(lora_A(dropout(x))) * scaling   (PEFT LoraLayer.forward) */
void pl_tr_lora_fwd(const pl_tr_lora *L, pl_real *y, pl_real *u, const pl_real *x, int64_t T, pl_real *xd) {
    dropout_apply(xd, x, T * L->n_in, L->key, L->p);
    pl_tr_dense_fwd(u, xd, L->A, T, L->n_in, L->r, 0);
#pragma omp parallel for schedule(static) if (BIG(T * L->n_out * L->r))
    for (int64_t t = 0; t < T; t++)
        for (int o = 0; o < L->n_out; o++) {
            const pl_real *br = L->B + (int64_t)o * L->r, *ur = u + t * L->r;
            double acc = 0.0;
            for (int k = 0; k < L->r; k++) acc += br[k] * ur[k];
            y[t * L->n_out + o] += L->s * acc;
        }
}

void pl_tr_lora_bwd(const pl_tr_lora *L, pl_real *dx, const pl_real *dy, const pl_real *u, const pl_real *x,
                    int64_t T, pl_real *du, pl_real *xd) {
    /* dB += s * dy.T @ u ; du = s * dy @ B */
    for (int64_t i = 0; i < T * L->r; i++) du[i] = 0.0;
    pl_tr_dense_bwd(du, NULL, dy, NULL, L->B, T, L->r, L->n_out);
    for (int64_t i = 0; i < T * L->r; i++) du[i] *= L->s;
    if (L->dB) {
#pragma omp parallel for schedule(static) if (BIG(T * L->n_out * L->r))
        for (int o = 0; o < L->n_out; o++)
            for (int64_t t = 0; t < T; t++) {
                double g = L->s * dy[t * L->n_out + o];
                for (int k = 0; k < L->r; k++) L->dB[(int64_t)o * L->r + k] += g * u[t * L->r + k];
            }
    }
    /* dA += du.T @ xd ; dxd = du @ A ; dx += dropout_bwd(dxd) */
    dropout_apply(xd, x, T * L->n_in, L->key, L->p);
    pl_tr_dense_bwd(NULL, L->dA, du, xd, L->A, T, L->n_in, L->r);
    if (dx) {
        double sc = L->p > 0.0 ? 1.0 / (1.0 - L->p) : 1.0;
#pragma omp parallel for schedule(static) if (BIG(T * L->n_in * L->r))
        for (int64_t t = 0; t < T; t++)
            for (int i = 0; i < L->n_in; i++) {
                uint64_t idx = (uint64_t)(t * L->n_in + i);
                if (L->p > 0.0 && !pl_tr_dropout_keep(L->key, idx, L->p)) continue;
                double acc = 0.0;
                for (int k = 0; k < L->r; k++) acc += du[t * L->r + k] * L->A[(int64_t)k * L->n_in + i];
                dx[t * L->n_in + i] += acc * sc;
            }
    }
}

/* ---- f32 storage (the bf16 precision) ---------------------------------------
 * The same kernels with activations stored in float32: each computes in
 * double from its float inputs exactly as the double kernel above and
 * rounds its outputs to f32 once, so an output is (float) of the double
 * kernel's on the same (float) inputs. */

/* Σ a[i]·b[i] with 8 running partials (lane i % 8, then the lanes in a
 * fixed tree), so consecutive adds do not wait on each other */
static double dot8d(const pl_real *a, const pl_real *b, int n) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) p[l] += a[i + l] * b[i + l];
    for (; i < n; i++) p[i & 7] += a[i] * b[i];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* the row sums below run with 8 partials (dot8d): a different order of
 * the same double sums as pl_tr_rmsnorm_fwd / _bwd */
void pl_tr_rmsnorm_fwd_f(float *y, pl_real *rstd, const pl_real *x, const pl_real *w, int64_t T, int n, double eps) {
#pragma omp parallel for schedule(static) if (BIG(T * n))
    for (int64_t t = 0; t < T; t++) {
        const pl_real *xr = x + t * n;
        float *yr = y + t * n;
#if defined(HAVE_EXP_AVX512)
        if (pl_simd_active() == PL_SIMD_AVX512) { /* the same bits */
            rstd[t] = pl_tr_rmsnorm_row_f_avx512(yr, xr, w, n, eps);
            continue;
        }
#endif
        double ss = dot8d(xr, xr, n);
        double r = 1.0 / sqrt(ss / n + eps);
        rstd[t] = r;
        for (int i = 0; i < n; i++) yr[i] = (float)(xr[i] * r * w[i]);
    }
}

void pl_tr_rope_apply_table_f(float *x, int64_t T, int n_head, int hd, int n_rot, const pl_real *cs, int neox,
                              int inverse) {
    int half = n_rot / 2;
    double sg = inverse ? -1.0 : 1.0;
#if defined(HAVE_EXP_AVX512)
    const int avx512 = pl_simd_active() == PL_SIMD_AVX512;
#endif
#pragma omp parallel for schedule(static) if (BIG(T * n_head * hd * 8))
    for (int64_t t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            float *xh = x + (t * n_head + h) * hd;
            const pl_real *c = cs + t * half * 2;
#if defined(HAVE_EXP_AVX512)
            if (avx512) {
                pl_tr_rope_row_f_avx512(xh, c, half, neox, sg);
                continue;
            }
#endif
            for (int i = 0; i < half; i++) {
                int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
                double co = c[2 * i], s = sg * c[2 * i + 1], x0 = xh[a], x1 = xh[b];
                xh[a] = (float)(x0 * co - x1 * s);
                xh[b] = (float)(x0 * s + x1 * co);
            }
        }
}

/* SiLU on AVX-512 in f32 (simd_avx512.c), in blocks of 4096 per thread */
enum { SILU_BLOCK = 4096 };

void pl_tr_glu_fwd_sf(float *h, float *s, const float *g, const float *u, int64_t n, pl_act act) {
#if defined(HAVE_EXP_AVX512)
    if (act == PL_ACT_SILU && pl_simd_active() == PL_SIMD_AVX512) {
#pragma omp parallel for schedule(static) if (BIG(n * 4))
        for (int64_t b = 0; b < n; b += SILU_BLOCK)
            pl_tr_silu_fwd_f_avx512(h + b, s + b, g + b, u + b, n - b < SILU_BLOCK ? n - b : SILU_BLOCK);
        return;
    }
#endif
    if (act == PL_ACT_SILU) {
        enum { EXP_BLOCK = 256 };
#pragma omp parallel for schedule(static) if (BIG(n * 16))
        for (int64_t b = 0; b < n; b += EXP_BLOCK) {
            int64_t m = n - b < EXP_BLOCK ? n - b : EXP_BLOCK;
            pl_real e[EXP_BLOCK];
            for (int64_t i = 0; i < m; i++) e[i] = -(double)g[b + i];
            pl_tr_exp_arr(e, e, m);
            for (int64_t i = 0; i < m; i++) {
                double si = 1.0 / (1.0 + e[i]);
                s[b + i] = (float)si;
                h[b + i] = (float)((double)g[b + i] * si * (double)u[b + i]);
            }
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BIG(n * 16))
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], t = tanh(GELU_C * (x + 0.044715 * x * x * x));
        s[i] = (float)t;
        h[i] = (float)(0.5 * x * (1.0 + t) * (double)u[i]);
    }
}

void pl_tr_glu_bwd_sf(float *dg, float *du, const float *dh, const float *g, const float *u, const float *s,
                      int64_t n, pl_act act) {
#if defined(HAVE_EXP_AVX512)
    if (act == PL_ACT_SILU && pl_simd_active() == PL_SIMD_AVX512) {
#pragma omp parallel for schedule(static) if (BIG(n * 4))
        for (int64_t b = 0; b < n; b += SILU_BLOCK)
            pl_tr_silu_bwd_f_avx512(dg + b, du + b, dh + b, g + b, u + b, s + b, n - b < SILU_BLOCK ? n - b : SILU_BLOCK);
        return;
    }
#endif
    if (act == PL_ACT_SILU) {
#pragma omp parallel for schedule(static) if (BIG(n * 4))
        for (int64_t i = 0; i < n; i++) {
            double x = g[i], si = s[i], d = dh[i];
            dg[i] = (float)(d * (double)u[i] * (si * (1.0 + x * (1.0 - si))));
            du[i] = (float)(d * (x * si));
        }
        return;
    }
#pragma omp parallel for schedule(static) if (BIG(n * 4))
    for (int64_t i = 0; i < n; i++) {
        double x = g[i], t = s[i], dd = dh[i];
        double d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * 0.044715 * x * x);
        dg[i] = (float)(dd * (double)u[i] * d);
        du[i] = (float)(dd * (0.5 * x * (1.0 + t)));
    }
}

void pl_tr_rmsnorm_bwd8(pl_real *dx, pl_real *dw, const pl_real *dy, const pl_real *x, const pl_real *rstd,
                        const pl_real *w, int64_t T, int n) {
#pragma omp parallel for schedule(static) if (BIG(T * n))
    for (int64_t t = 0; t < T; t++) {
        const pl_real *xr = x + t * n, *dyr = dy + t * n;
        pl_real *dxr = dx + t * n;
#if defined(HAVE_EXP_AVX512)
        if (pl_simd_active() == PL_SIMD_AVX512) { /* the same bits */
            pl_tr_rmsnorm_bwd_row_avx512(dxr, dyr, xr, w, rstd[t], n);
            continue;
        }
#endif
        double r = rstd[t], p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int i = 0;
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++) p[l] += dyr[i + l] * w[i + l] * xr[i + l];
        for (; i < n; i++) p[i & 7] += dyr[i] * w[i] * xr[i];
        double dot = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
        double c = r * r * r * dot / n;
        for (i = 0; i < n; i++) dxr[i] += r * dyr[i] * w[i] - c * xr[i];
    }
    if (dw) {
        for (int64_t t = 0; t < T; t++)
            for (int j = 0; j < n; j++) dw[j] += dy[t * n + j] * x[t * n + j] * rstd[t];
    }
}

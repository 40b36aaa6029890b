/* fast.c — the float32 / BLAS training kernels (the default precision).
 *
 * Same contracts as the double reference kernels of ops.c (train.h), with
 * the products done by optimized code:
 *   - frozen weights, forward  y = x·Wᵀ : OpenBLAS sgemm over chunks of
 *     rows dequantized to f32 (f32 weights in place); fewer than 8 tokens
 *     (label rows, scoring) go through pl_matmul's exact path instead;
 *   - frozen weights, backward dx += dy·W : OpenBLAS sgemm over row chunks
 *     of W dequantized to f32 on the fly (f32 weights are used in place);
 *   - trainable (LoRA, head, full fine-tuning) products: OpenBLAS dgemm.
 * Inputs and outputs stay double (pl_real); the frozen products round their
 * inputs to f32 and accumulate in f32. OpenBLAS splits a gemm over output
 * blocks only (never over the reduction), so a result depends on the data
 * and the thread count only; tests/test_train.c checks repeatability and
 * the agreement with the double reference. The bf16 precision sends the
 * frozen products of 32+ tokens to pl_matmul_bf16 (tensor.h) instead.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/tensor.h"
#include "train/train.h"

#define BIG(work) ((int64_t)(work) >= (1 << 16))

static float *to_f32(const pl_real *x, int64_t n) {
    float *f = malloc((size_t)(n > 0 ? n : 1) * sizeof *f);
    if (!f) return NULL;
#pragma omp parallel for schedule(static) if (BIG(n))
    for (int64_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static int rows_packed(const pl_tr_weight *w) {
    size_t rb = 0;
    return pl_dtype_row_bytes((pl_dtype)w->dtype, w->n_in, &rb) == PL_OK && rb == w->row_bytes;
}

static int g_blas_threads = 1;

void pl_tr_blas_threads(int n) {
    if (n > 0) {
        openblas_set_num_threads(n);
        g_blas_threads = n;
    }
}

/* Attention runs one head per OpenMP thread, each head's products on one
 * BLAS thread (a head's gemms are too small to split well); the BLAS thread
 * count is restored after. */
static int heads_begin(int n_units, int64_t T) {
    int par = n_units > 1 && pl_num_threads() > 1 && T >= 16;
    if (par) openblas_set_num_threads(1);
    return par;
}
static void heads_end(int par) {
    if (par) openblas_set_num_threads(g_blas_threads);
}

/* Rows of W dequantized per sgemm call: about 1 MiB of f32. */
static int64_t chunk_rows(int64_t n_in) {
    int64_t c = (int64_t)(1 << 18) / (n_in > 0 ? n_in : 1);
    return c < 16 ? 16 : c;
}

/* Below this many tokens the forward goes through pl_matmul (a row at a
 * time); from it on through sgemm over dequantized row chunks. */
enum { SGEMM_MIN_T = 8 };

/* y = F.linear(x, W), products in f32. */
pl_status pl_tr_linear_fwd_f32(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w) {
    if (!pl_dtype_valid(w->dtype)) return pl_error(PL_ERR_UNSUPPORTED, "linear: unknown dtype %d", w->dtype);
    if (!rows_packed(w)) return pl_tr_linear_fwd(y, x, T, w);
    int64_t n_in = w->n_in, n_out = w->n_out;
    int direct = w->dtype == PL_DTYPE_F32, small = T < SGEMM_MIN_T;
    int64_t ch = direct || small ? n_out : chunk_rows(n_in);
    if (ch > n_out) ch = n_out;
    float *xf = to_f32(x, T * n_in), *yf = malloc((size_t)(T * n_out > 0 ? T * n_out : 1) * sizeof *yf);
    float *wt = direct || small ? NULL : malloc((size_t)(ch * n_in > 0 ? ch * n_in : 1) * sizeof *wt);
    if (!xf || !yf || (!direct && !small && !wt)) {
        free(xf);
        free(yf);
        free(wt);
        return pl_error(PL_ERR_NOMEM, "linear: out of memory (%lld x %lld)", (long long)T, (long long)n_out);
    }
    pl_status st = PL_OK;
    if (small && !direct) {
        st = pl_matmul(PL_MATMUL_EXACT, (pl_dtype)w->dtype, w->data, n_out, n_in, xf, T, yf, NULL, 0);
    } else {
        int fail = 0;
        for (int64_t o0 = 0; o0 < n_out && !fail; o0 += ch) {
            int64_t nr = o0 + ch < n_out ? ch : n_out - o0;
            const float *W;
            if (direct) {
                W = (const float *)w->data;
            } else {
#pragma omp parallel for schedule(static) if (BIG(nr * n_in))
                for (int64_t o = 0; o < nr; o++)
                    if (pl_dequantize_row((pl_dtype)w->dtype,
                                          (const uint8_t *)w->data + (size_t)(o0 + o) * w->row_bytes, wt + o * n_in,
                                          n_in) != PL_OK) {
#pragma omp atomic write
                        fail = 1;
                    }
                W = wt;
            }
            if (!fail)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)nr, (int)n_in, 1.0f, xf, (int)n_in,
                            W, (int)n_in, 0.0f, yf + o0, (int)n_out);
        }
        if (fail)
            st = pl_error(PL_ERR_INVALID, "linear: cannot dequantize rows of a %lld x %lld %s weight",
                          (long long)n_out, (long long)n_in, pl_dtype_name((pl_dtype)w->dtype));
    }
    if (!st) {
#pragma omp parallel for schedule(static) if (BIG(T * n_out))
        for (int64_t i = 0; i < T * n_out; i++) y[i] = (double)yf[i];
    }
    free(xf);
    free(yf);
    free(wt);
    return st;
}

/* dx += dy @ W, products in f32 (sgemm over dequantized row chunks). */
pl_status pl_tr_linear_bwd_f32(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w) {
    if (!pl_dtype_valid(w->dtype)) return pl_error(PL_ERR_UNSUPPORTED, "linear: unknown dtype %d", w->dtype);
    if (!rows_packed(w)) return pl_tr_linear_bwd(dx, dy, T, w);
    int64_t n_in = w->n_in, n_out = w->n_out;
    int direct = w->dtype == PL_DTYPE_F32;
    int64_t ch = direct ? n_out : chunk_rows(n_in);
    if (ch > n_out) ch = n_out;
    float *dyf = to_f32(dy, T * n_out), *dxf = calloc((size_t)(T * n_in > 0 ? T * n_in : 1), sizeof *dxf);
    float *wt = direct ? NULL : malloc((size_t)(ch * n_in > 0 ? ch * n_in : 1) * sizeof *wt);
    if (!dyf || !dxf || (!direct && !wt)) {
        free(dyf);
        free(dxf);
        free(wt);
        return pl_error(PL_ERR_NOMEM, "linear backward: out of memory (%lld x %lld)", (long long)T, (long long)n_in);
    }
    int fail = 0;
    for (int64_t o0 = 0; o0 < n_out && !fail; o0 += ch) {
        int64_t nr = o0 + ch < n_out ? ch : n_out - o0;
        const float *W;
        if (direct) {
            W = (const float *)w->data;
        } else {
#pragma omp parallel for schedule(static) if (BIG(nr * n_in))
            for (int64_t o = 0; o < nr; o++)
                if (pl_dequantize_row((pl_dtype)w->dtype, (const uint8_t *)w->data + (size_t)(o0 + o) * w->row_bytes,
                                      wt + o * n_in, n_in) != PL_OK) {
#pragma omp atomic write
                    fail = 1;
                }
            W = wt;
        }
        if (!fail)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)n_in, (int)nr, 1.0f, dyf + o0,
                        (int)n_out, W, (int)n_in, 1.0f, dxf, (int)n_in);
    }
    if (!fail) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in))
        for (int64_t i = 0; i < T * n_in; i++) dx[i] += (double)dxf[i];
    }
    free(dyf);
    free(dxf);
    free(wt);
    if (fail)
        return pl_error(PL_ERR_INVALID, "linear backward: cannot dequantize rows of a %lld x %lld %s weight",
                        (long long)n_out, (long long)n_in, pl_dtype_name((pl_dtype)w->dtype));
    return PL_OK;
}

/* ---- bf16 frozen products ------------------------------------------------ */

enum { BF16_MIN_T = 32 };

/* Without AMX tiles the portable bf16 loop would be slower than sgemm: the
 * bf16 precision then runs the f32 kernels. */
static int use_bf16(const pl_tr_weight *w, int64_t T) {
    return T >= BF16_MIN_T && pl_dtype_valid(w->dtype) && rows_packed(w) && pl_bf16_gemm_native();
}

pl_status pl_tr_linear_fwd_bf16(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w) {
    if (!use_bf16(w, T)) return pl_tr_linear_fwd_f32(y, x, T, w);
    float *xf = to_f32(x, T * w->n_in), *yf = malloc((size_t)(T * w->n_out) * sizeof *yf);
    pl_status st = !xf || !yf ? pl_error(PL_ERR_NOMEM, "linear: out of memory (%lld x %lld)", (long long)T,
                                         (long long)w->n_out)
                   : w->tiles ? pl_matmul_bf16_tiles(w->tiles, w->n_out, w->n_in, 0, xf, T, yf, 0)
                              : pl_matmul_bf16((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, xf, T, yf, 0);
    if (!st) {
#pragma omp parallel for schedule(static) if (BIG(T * w->n_out))
        for (int64_t i = 0; i < T * w->n_out; i++) y[i] = (double)yf[i];
    }
    free(xf);
    free(yf);
    return st;
}

pl_status pl_tr_linear_bwd_bf16(pl_real *dx, const pl_real *dy, int64_t T, const pl_tr_weight *w) {
    if (!use_bf16(w, T)) return pl_tr_linear_bwd_f32(dx, dy, T, w);
    float *dyf = to_f32(dy, T * w->n_out), *dxf = malloc((size_t)(T * w->n_in) * sizeof *dxf);
    pl_status st = !dyf || !dxf ? pl_error(PL_ERR_NOMEM, "linear backward: out of memory (%lld x %lld)",
                                           (long long)T, (long long)w->n_in)
                   : w->tiles_t ? pl_matmul_bf16_tiles(w->tiles_t, w->n_out, w->n_in, 1, dyf, T, dxf, 0)
                                : pl_matmul_bf16_t((pl_dtype)w->dtype, w->data, 0, w->n_out, w->n_in, dyf, T, dxf, 0);
    if (!st) {
#pragma omp parallel for schedule(static) if (BIG(T * w->n_in))
        for (int64_t i = 0; i < T * w->n_in; i++) dx[i] += (double)dxf[i];
    }
    free(dyf);
    free(dxf);
    return st;
}

/* y (+)= x @ W.T  (dgemm) */
void pl_tr_dense_fwd_blas(pl_real *y, const pl_real *x, const pl_real *W, int64_t T, int n_in, int n_out,
                          int accumulate) {
    if (T <= 0 || n_out <= 0) return;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, n_out, n_in, 1.0, x, n_in, W, n_in,
                accumulate ? 1.0 : 0.0, y, n_out);
}

/* dx += dy @ W ; dW += dy.T @ x  (dgemm; either may be NULL) */
void pl_tr_dense_bwd_blas(pl_real *dx, pl_real *dW, const pl_real *dy, const pl_real *x, const pl_real *W, int64_t T,
                          int n_in, int n_out) {
    if (T <= 0 || n_out <= 0) return;
    if (dx)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, n_in, n_out, 1.0, dy, n_out, W, n_in, 1.0, dx,
                    n_in);
    if (dW)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, (int)T, 1.0, dy, n_out, x, n_in, 1.0, dW,
                    n_in);
}

static void dropout_mask(pl_real *xd, const pl_real *x, int64_t n, uint64_t key, double p) {
    if (p <= 0.0) {
        memcpy(xd, x, (size_t)n * sizeof *xd);
        return;
    }
    double sc = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static) if (BIG(n * 8))
    for (int64_t i = 0; i < n; i++) xd[i] = pl_tr_dropout_keep(key, (uint64_t)i, p) ? x[i] * sc : 0.0;
}

/* y += lora_B(lora_A(dropout(x))) * scaling  (dgemm) */
void pl_tr_lora_fwd_blas(const pl_tr_lora *L, pl_real *y, pl_real *u, const pl_real *x, int64_t T, pl_real *xd) {
    if (T <= 0) return;
    dropout_mask(xd, x, T * L->n_in, L->key, L->p);
    pl_tr_dense_fwd_blas(u, xd, L->A, T, L->n_in, L->r, 0);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, L->n_out, L->r, L->s, u, L->r, L->B, L->r, 1.0, y,
                L->n_out);
}

/* dB += s dy.T @ u ; du = s dy @ B ; dA += du.T @ drop(x) ; dx += drop_bwd(du @ A)  (dgemm) */
void pl_tr_lora_bwd_blas(const pl_tr_lora *L, pl_real *dx, const pl_real *dy, const pl_real *u, const pl_real *x,
                         int64_t T, pl_real *du, pl_real *xd) {
    if (T <= 0) return;
    int r = L->r, n_in = L->n_in, n_out = L->n_out;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, r, n_out, L->s, dy, n_out, L->B, r, 0.0, du, r);
    if (L->dB)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, r, (int)T, L->s, dy, n_out, u, r, 1.0, L->dB, r);
    dropout_mask(xd, x, T * n_in, L->key, L->p);
    if (L->dA)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, n_in, (int)T, 1.0, du, r, xd, n_in, 1.0, L->dA, n_in);
    if (!dx) return;
    if (L->p <= 0.0) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, n_in, r, 1.0, du, r, L->A, n_in, 1.0, dx, n_in);
        return;
    }
    /* xd is free again: dxd = du @ A, then the dropout backward */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, n_in, r, 1.0, du, r, L->A, n_in, 0.0, xd, n_in);
    double sc = 1.0 / (1.0 - L->p);
    int64_t n = T * n_in;
#pragma omp parallel for schedule(static) if (BIG(n * 8))
    for (int64_t i = 0; i < n; i++)
        if (pl_tr_dropout_keep(L->key, (uint64_t)i, L->p)) dx[i] += xd[i] * sc;
}

/* ---- attention through dgemm ------------------------------------------------
 * Per query head h (KV head h/g): S = scale · q_h k_hᵀ (dgemm over the whole
 * T×T square; the masked half is overwritten), the soft-cap, mask and
 * softmax row by row, z_h = P_h v_h (dgemm; masked entries of P are 0).
 * Backward: dP = dz_h v_hᵀ ; dv_h += P_hᵀ dz_h ; dS = P ∘ (dP - rowsum(dP∘P))
 * (∘ soft-cap derivative, from recomputed scores) · scale ;
 * dq_h += dS k_h ; dk_h += dSᵀ q_h. Heads run in parallel (one per OpenMP
 * thread, single-threaded dgemm); the backward splits over KV heads, each
 * summing its query heads in order, so results do not depend on the
 * thread count. */

static int masked(const pl_tr_attn *a, int64_t i, int64_t j) {
    return j > i || (a->window > 0 && i - j >= a->window);
}

void pl_tr_attn_fwd_blas(const pl_tr_attn *a, pl_real *z, pl_real *P, const pl_real *q, const pl_real *k,
                         const pl_real *v, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
    int QD = H * hd, KVD = Hkv * hd;
    int par = heads_begin(H, T);
#pragma omp parallel for schedule(static) if (par)
    for (int h = 0; h < H; h++) {
        int kh = h / g;
        pl_real *Ph = P + (int64_t)h * T * T;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, hd, a->scale, q + (int64_t)h * hd, QD,
                    k + (int64_t)kh * hd, KVD, 0.0, Ph, (int)T);
#pragma omp parallel for schedule(static) if (!par && BIG(T * T * 4))
        for (int64_t i = 0; i < T; i++) {
            pl_real *row = Ph + i * T;
            double mx = -INFINITY;
            for (int64_t j = 0; j < T; j++) {
                if (masked(a, i, j)) continue;
                double s = row[j];
                if (a->softcap > 0) s = tanh(s / a->softcap) * a->softcap;
                row[j] = s;
                if (s > mx) mx = s;
            }
            double sum = 0.0;
            for (int64_t j = 0; j < T; j++) {
                if (masked(a, i, j)) {
                    row[j] = 0.0;
                    continue;
                }
                row[j] = exp(row[j] - mx);
                sum += row[j];
            }
            double inv = 1.0 / sum;
            for (int64_t j = 0; j < T; j++) row[j] *= inv;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, hd, (int)T, 1.0, Ph, (int)T,
                    v + (int64_t)kh * hd, KVD, 0.0, z + (int64_t)h * hd, QD);
    }
    heads_end(par);
}

pl_status pl_tr_attn_bwd_blas(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                              const pl_real *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
    int QD = H * hd, KVD = Hkv * hd;
    size_t tt = (size_t)(T * T > 0 ? T * T : 1);
    int fail = 0;
    int par = heads_begin(Hkv, T);
#pragma omp parallel for schedule(static) if (par)
    for (int kh = 0; kh < Hkv; kh++) {
        pl_real *dS = malloc(tt * sizeof *dS), *S = a->softcap > 0 ? malloc(tt * sizeof *S) : NULL;
        if (!dS || (a->softcap > 0 && !S)) {
#pragma omp atomic write
            fail = 1;
            free(dS);
            free(S);
            continue;
        }
        for (int h = kh * g; h < (kh + 1) * g; h++) {
            const pl_real *Ph = P + (int64_t)h * T * T;
            const pl_real *qh = q + (int64_t)h * hd, *kk = k + (int64_t)kh * hd, *vk = v + (int64_t)kh * hd;
            const pl_real *dzh = dz + (int64_t)h * hd;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, hd, 1.0, dzh, QD, vk, KVD, 0.0, dS,
                        (int)T);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, hd, (int)T, 1.0, Ph, (int)T, dzh, QD, 1.0,
                        dv + (int64_t)kh * hd, KVD);
            if (S)
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)T, hd, a->scale, qh, QD, kk, KVD,
                            0.0, S, (int)T);
#pragma omp parallel for schedule(static) if (!par && BIG(T * T * 4))
            for (int64_t i = 0; i < T; i++) {
                const pl_real *pr = Ph + i * T;
                pl_real *dr = dS + i * T;
                double dot = 0.0;
                for (int64_t j = 0; j < T; j++)
                    if (!masked(a, i, j)) dot += dr[j] * pr[j];
                for (int64_t j = 0; j < T; j++) {
                    if (masked(a, i, j)) {
                        dr[j] = 0.0;
                        continue;
                    }
                    double ds = pr[j] * (dr[j] - dot);
                    if (S) {
                        double c = tanh(S[i * T + j] / a->softcap);
                        ds *= 1.0 - c * c;
                    }
                    dr[j] = ds * a->scale;
                }
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, hd, (int)T, 1.0, dS, (int)T, kk, KVD, 1.0,
                        dq + (int64_t)h * hd, QD);
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)T, hd, (int)T, 1.0, dS, (int)T, qh, QD, 1.0,
                        dk + (int64_t)kh * hd, KVD);
        }
        free(dS);
        free(S);
    }
    heads_end(par);
    if (fail) return pl_error(PL_ERR_NOMEM, "attention backward: out of memory (%lld positions)", (long long)T);
    return PL_OK;
}

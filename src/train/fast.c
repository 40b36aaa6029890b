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
 * frozen products of 32+ tokens to pl_matmul_bf16 (tensor.h) instead, and
 * its blocks (activations in float32) use pl_tr_proj_*_bf16 (frozen tiles
 * + LoRA: own f32 kernels and tiles, no dgemm) and the f32 attention on
 * float storage (pl_tr_attn_*_f32s).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tensor/tensor.h"
#include "train/train_impl.h"

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
#ifdef _OPENMP
    if (omp_in_parallel()) par = 0; /* a lane (lanes.c): the heads stay on its thread, BLAS as it is */
#endif
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

static int64_t up32(int64_t n) { return (n + 31) / 32 * 32; }

/* 64-byte aligned, NOT zeroed (the packers below write every element,
 * padding included; pl_alloc_aligned would clear it first); free() it */
static uint16_t *alloc_bf16(int64_t n) {
    void *p = NULL;
    return posix_memalign(&p, 64, (size_t)(n > 0 ? n : 1) * sizeof(uint16_t)) ? NULL : (uint16_t *)p;
}

/* x [T x K] rounded straight from double to bf16 in the layout of
 * pl_matmul_bf16_tiles_packed ([up32(T) x up32(K)], zero padding): the
 * bits pl_matmul_bf16_tiles gets from to_f32 and its own rounding, in one
 * pass. NULL when out of memory. */
static uint16_t *pack_bf16_f(const pl_real *x, int64_t T, int64_t K, float *xf) {
    int64_t Mp = up32(T), Kp = up32(K);
    uint16_t *A = alloc_bf16(Mp * Kp);
    if (!A) return NULL;
#pragma omp parallel for schedule(static) if (BIG(T * K))
    for (int64_t t = 0; t < Mp; t++) {
        if (t < T) {
            if (xf) pl_tr_to_bf16_f32(A + t * Kp, xf + t * K, x + t * K, K);
            else pl_tr_to_bf16(A + t * Kp, x + t * K, K);
            memset(A + t * Kp + K, 0, (size_t)(Kp - K) * sizeof *A);
        } else {
            memset(A + t * Kp, 0, (size_t)Kp * sizeof *A);
        }
    }
    return A;
}

/* the same without the f32 copy */
static uint16_t *pack_bf16(const pl_real *x, int64_t T, int64_t K) { return pack_bf16_f(x, T, K, NULL); }

/* y = bf16 product through tiles: x packed once (tiles present) */
static pl_status fwd_tiles(pl_real *y, const uint16_t *A, int64_t T, const pl_tr_weight *w, float *yf) {
    pl_status st = pl_matmul_bf16_tiles_packed(w->tiles, w->n_out, w->n_in, 0, A, T, yf, 0);
    if (st) return st;
#pragma omp parallel for schedule(static) if (BIG(T * w->n_out))
    for (int64_t i = 0; i < T * w->n_out; i++) y[i] = (double)yf[i];
    return PL_OK;
}

pl_status pl_tr_linear_fwd_bf16(pl_real *y, const pl_real *x, int64_t T, const pl_tr_weight *w) {
    if (!use_bf16(w, T)) return pl_tr_linear_fwd_f32(y, x, T, w);
    if (w->tiles) return pl_tr_linear_fwd_bf16_n(1, &y, &w, x, T);
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
    if (w->tiles_t) return pl_tr_linear_bwd_bf16_n(dx, 1, &dy, &w, T);
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

/* n weights sharing one input (q,k,v or gate,up): the input is rounded to
 * f32 once for all; each product as in pl_tr_linear_fwd_bf16. */
pl_status pl_tr_linear_fwd_bf16_n(int n, pl_real *const *y, const pl_tr_weight *const *w, const pl_real *x,
                                  int64_t T) {
    int64_t n_in = w[0]->n_in, most = 0;
    int all = 1, tiles = 1;
    for (int i = 0; i < n; i++) {
        all = all && use_bf16(w[i], T) && w[i]->n_in == n_in;
        tiles = tiles && w[i]->tiles;
        if (w[i]->n_out > most) most = w[i]->n_out;
    }
    if (!all) {
        for (int i = 0; i < n; i++) {
            pl_status st = pl_tr_linear_fwd_bf16(y[i], x, T, w[i]);
            if (st) return st;
        }
        return PL_OK;
    }
    if (tiles) { /* x rounded to bf16 once, straight from double */
        uint16_t *A = pack_bf16(x, T, n_in);
        float *yt = malloc((size_t)(T * most) * sizeof *yt);
        pl_status st = !A || !yt ? pl_error(PL_ERR_NOMEM, "linear: out of memory (%lld x %lld)", (long long)T,
                                            (long long)most)
                                 : PL_OK;
        for (int i = 0; i < n && !st; i++) st = fwd_tiles(y[i], A, T, w[i], yt);
        free(A);
        free(yt);
        return st;
    }
    float *xf = to_f32(x, T * n_in), *yf = malloc((size_t)(T * most) * sizeof *yf);
    pl_status st = !xf || !yf ? pl_error(PL_ERR_NOMEM, "linear: out of memory (%lld x %lld)", (long long)T,
                                         (long long)most)
                              : PL_OK;
    for (int i = 0; i < n && !st; i++) {
        const pl_tr_weight *wi = w[i];
        st = wi->tiles ? pl_matmul_bf16_tiles(wi->tiles, wi->n_out, n_in, 0, xf, T, yf, 0)
                       : pl_matmul_bf16((pl_dtype)wi->dtype, wi->data, 0, wi->n_out, n_in, xf, T, yf, 0);
        if (st) break;
        pl_real *yi = y[i];
#pragma omp parallel for schedule(static) if (BIG(T * wi->n_out))
        for (int64_t j = 0; j < T * wi->n_out; j++) yi[j] = (double)yf[j];
    }
    free(xf);
    free(yf);
    return st;
}

/* dx += Σ_i dy_i @ W_i for n weights sharing one input: the products sum
 * into one f32 result (the tiles continue from it), widened once. */
pl_status pl_tr_linear_bwd_bf16_n(pl_real *dx, int n, const pl_real *const *dy, const pl_tr_weight *const *w,
                                  int64_t T) {
    int64_t n_in = w[0]->n_in;
    int all = 1, tiles = 1;
    for (int i = 0; i < n; i++) {
        all = all && use_bf16(w[i], T) && w[i]->n_in == n_in;
        tiles = tiles && w[i]->tiles_t;
    }
    if (!all) {
        for (int i = 0; i < n; i++) {
            pl_status st = pl_tr_linear_bwd_bf16(dx, dy[i], T, w[i]);
            if (st) return st;
        }
        return PL_OK;
    }
    float *dxf = malloc((size_t)(T * n_in) * sizeof *dxf);
    pl_status st = !dxf ? pl_error(PL_ERR_NOMEM, "linear backward: out of memory (%lld x %lld)", (long long)T,
                                   (long long)n_in)
                        : PL_OK;
    for (int i = 0; i < n && !st && tiles; i++) { /* each dy rounded to bf16 straight from double */
        const pl_tr_weight *wi = w[i];
        uint16_t *A = pack_bf16(dy[i], T, wi->n_out);
        st = !A ? pl_error(PL_ERR_NOMEM, "linear backward: out of memory (%lld x %lld)", (long long)T,
                           (long long)wi->n_out)
                : pl_matmul_bf16_tiles_packed(wi->tiles_t, wi->n_out, n_in, 1, A, T, dxf, i > 0);
        free(A);
    }
    for (int i = 0; i < n && !st && !tiles; i++) {
        const pl_tr_weight *wi = w[i];
        float *dyf = to_f32(dy[i], T * wi->n_out);
        if (!dyf) {
            st = pl_error(PL_ERR_NOMEM, "linear backward: out of memory (%lld x %lld)", (long long)T,
                          (long long)wi->n_out);
            break;
        }
        st = wi->tiles_t ? pl_matmul_bf16_tiles(wi->tiles_t, wi->n_out, n_in, 1, dyf, T, dxf, i > 0)
                         : pl_matmul_bf16_t((pl_dtype)wi->dtype, wi->data, 0, wi->n_out, n_in, dyf, T, dxf, i > 0);
        free(dyf);
    }
    if (!st) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in))
        for (int64_t j = 0; j < T * n_in; j++) dx[j] += (double)dxf[j];
    }
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

/* dropout(x): x itself without dropout, else the masked copy in xd */
static const pl_real *dropout_mask(pl_real *xd, const pl_real *x, int64_t n, uint64_t key, double p) {
    if (p <= 0.0) return x;
    double sc = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static) if (BIG(n * 8))
    for (int64_t i = 0; i < n; i++) xd[i] = pl_tr_dropout_keep(key, (uint64_t)i, p) ? x[i] * sc : 0.0;
    return xd;
}

/* y += lora_B(lora_A(dropout(x))) * scaling  (dgemm) */
void pl_tr_lora_fwd_blas(const pl_tr_lora *L, pl_real *y, pl_real *u, const pl_real *x, int64_t T, pl_real *xd) {
    if (T <= 0) return;
    pl_tr_dense_fwd_blas(u, dropout_mask(xd, x, T * L->n_in, L->key, L->p), L->A, T, L->n_in, L->r, 0);
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
    if (L->dA)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, n_in, (int)T, 1.0, du, r,
                    dropout_mask(xd, x, T * n_in, L->key, L->p), n_in, 1.0, L->dA, n_in);
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

/* n LoRA targets sharing x, no dropout (same r and n_in): u_i = x·A_iᵀ by
 * one product with the stacked A [n·r, n_in] (x packed once), then
 * y_i += s_i·u_i·B_iᵀ. */
pl_status pl_tr_lora_fwd_n(int n, const pl_tr_lora *const *L, pl_real *const *y, pl_real *const *u, const pl_real *x,
                           int64_t T) {
    if (T <= 0 || n <= 0) return PL_OK;
    int r = L[0]->r, n_in = L[0]->n_in, nr = n * r;
    pl_real *Aall = malloc((size_t)nr * (size_t)n_in * sizeof *Aall), *uall = malloc((size_t)(T * nr) * sizeof *uall);
    if (!Aall || !uall) {
        free(Aall);
        free(uall);
        return pl_error(PL_ERR_NOMEM, "LoRA: out of memory (%lld x %d)", (long long)T, nr);
    }
    for (int i = 0; i < n; i++) memcpy(Aall + (size_t)i * r * n_in, L[i]->A, (size_t)r * n_in * sizeof *Aall);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, nr, n_in, 1.0, x, n_in, Aall, n_in, 0.0, uall, nr);
    for (int i = 0; i < n; i++) {
        for (int64_t t = 0; t < T; t++) memcpy(u[i] + t * r, uall + t * nr + i * r, (size_t)r * sizeof *uall);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, L[i]->n_out, r, L[i]->s, u[i], r, L[i]->B, r, 1.0,
                    y[i], L[i]->n_out);
    }
    free(Aall);
    free(uall);
    return PL_OK;
}

/* The backward of pl_tr_lora_fwd_n: per target du_i = s_i dy_i·B_i and
 * dB_i += s_i dy_iᵀ·u_i; then dA_all = du_allᵀ·x (one product, added to
 * each dA_i) and dx += du_all·A_all (the n targets' share in one product). */
pl_status pl_tr_lora_bwd_n(int n, const pl_tr_lora *const *L, pl_real *dx, const pl_real *const *dy,
                           const pl_real *const *u, const pl_real *x, int64_t T) {
    if (T <= 0 || n <= 0) return PL_OK;
    int r = L[0]->r, n_in = L[0]->n_in, nr = n * r;
    size_t na = (size_t)nr * (size_t)n_in;
    pl_real *Aall = malloc(2 * na * sizeof *Aall), *duall = malloc((size_t)(T * nr) * sizeof *duall);
    if (!Aall || !duall) {
        free(Aall);
        free(duall);
        return pl_error(PL_ERR_NOMEM, "LoRA backward: out of memory (%lld x %d)", (long long)T, nr);
    }
    pl_real *dAall = Aall + na;
    for (int i = 0; i < n; i++) {
        int n_out = L[i]->n_out;
        memcpy(Aall + (size_t)i * r * n_in, L[i]->A, (size_t)r * n_in * sizeof *Aall);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, r, n_out, L[i]->s, dy[i], n_out, L[i]->B, r, 0.0,
                    duall + i * r, nr);
        if (L[i]->dB)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, r, (int)T, L[i]->s, dy[i], n_out, u[i], r, 1.0,
                        L[i]->dB, r);
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nr, n_in, (int)T, 1.0, duall, nr, x, n_in, 0.0, dAall, n_in);
    for (int i = 0; i < n; i++)
        if (L[i]->dA)
            for (size_t j = 0; j < (size_t)r * n_in; j++) L[i]->dA[j] += dAall[(size_t)i * r * n_in + j];
    if (dx)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, n_in, nr, 1.0, duall, nr, Aall, n_in, 1.0, dx,
                    n_in);
    free(Aall);
    free(duall);
    return PL_OK;
}

/* ---- the bf16 precision's projections: frozen tiles + LoRA ---------------------
 * Activations are float32 (engine.c, block_fwd_bf16). The frozen products
 * run on the bf16 tiles and write their f32 results straight into the
 * outputs. With the tiles the LoRA's u = x·Aᵀ (from x as rounded for the
 * frozen products), du = dy·(s·B) (from dy as rounded for them), (s·B)·u and
 * du·A run on the tiles too, the last two accumulating into the frozen
 * product's f32 result; the gradients dA = duᵀ·drop(x) and dB = dyᵀ·(s·u)
 * (reductions over the tokens, whose operands would need a transposed tile
 * layout: converting them costs as much as the f32 product) run in float32
 * (pl_tr_sgemm: an AVX-512 kernel for the skinny rank-r shapes, else
 * sgemm), each output one fma chain in k order. Without tiles (fewer than
 * 32 tokens, no AMX) and for dropout's per-target inputs the LoRA's
 * products run in f32. Parameters are converted per call (r·(n_in + n_out)
 * values, 1/T of a product's work). */

#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
/* pl_tr_sgemm_avx512 (simd_avx512.c) */
#define HAVE_SGEMM_AVX512 1
#endif

void pl_tr_sgemm_ref(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                     int64_t ldb, float *C, int64_t ldc, int accumulate) {
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float s = accumulate ? C[i * ldc + j] : 0.0f;
            for (int64_t k = 0; k < K; k++) s = fmaf(trans_a ? A[k * lda + i] : A[i * lda + k], B[k * ldb + j], s);
            C[i * ldc + j] = s;
        }
}

void pl_tr_sgemm(int trans_a, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
#if defined(HAVE_SGEMM_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_sgemm_avx512(trans_a, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
#endif
    if (K <= 0) {
        for (int64_t i = 0; i < M && !accumulate; i++) memset(C + i * ldc, 0, (size_t)N * sizeof *C);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A,
                (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C, (int)ldc);
}

/* xf = drop(x) for the LoRA of L (with dropout; x itself is used without) */
static void lora_drop_f32(float *xf, const float *x, int64_t n, const pl_tr_lora *L) {
    double sc = 1.0 / (1.0 - L->p);
#pragma omp parallel for schedule(static) if (BIG(n * 8))
    for (int64_t i = 0; i < n; i++)
        xf[i] = pl_tr_dropout_keep(L->key, (uint64_t)i, L->p) ? (float)((double)x[i] * sc) : 0.0f;
}

/* The LoRA targets of a call: their indices among the n projections, and
 * whether they share one input (no dropout: one product for all A's). */
typedef struct {
    int m, r, shared;
    int idx[8];
} lora_set;

static lora_set lora_targets(int n, const pl_tr_lora *const *L) {
    lora_set s = {0, 0, 1, {0}};
    for (int i = 0; i < n && i < 8; i++)
        if (L && L[i]) {
            s.idx[s.m++] = i;
            s.r = L[i]->r;
            if (L[i]->p > 0.0) s.shared = 0;
        }
    return s;
}

/* 64-byte aligned (tile rows in one cache line); free() releases it */
static float *falloc(int64_t n) { return pl_alloc_aligned_raw((size_t)(n > 0 ? n : 1) * sizeof(float)); }

/* x [T x K] f32 rounded to bf16 in the tiles' row layout (see pack_bf16) */
static uint16_t *pack_bf16_from_f32(const float *x, int64_t T, int64_t K) {
    int64_t Mp = up32(T), Kp = up32(K);
    uint16_t *A = alloc_bf16(Mp * Kp);
    if (!A) return NULL;
#pragma omp parallel for schedule(static) if (BIG(T * K))
    for (int64_t t = 0; t < Mp; t++) {
        if (t < T) {
            pl_tr_f32_to_bf16(A + t * Kp, x + t * K, K);
            memset(A + t * Kp + K, 0, (size_t)(Kp - K) * sizeof *A);
        } else {
            memset(A + t * Kp, 0, (size_t)Kp * sizeof *A);
        }
    }
    return A;
}

/* columns [c0, c0 + K) of the f32 rows x (ld apart) rounded to bf16 in the
 * tiles' row layout [up32(T) x up32(K)], zero padding; NULL when out of memory */
static uint16_t *pack_bf16_cols(const float *x, int64_t ld, int64_t T, int64_t K) {
    int64_t Mp = up32(T), Kp = up32(K);
    uint16_t *A = alloc_bf16(Mp * Kp);
    if (!A) return NULL;
    memset(A, 0, (size_t)(Mp * Kp) * sizeof *A);
    for (int64_t t = 0; t < T; t++) pl_tr_f32_to_bf16(A + t * Kp, x + t * ld, K);
    return A;
}

/* Y (+)= A · bf16(W)ᵀ (transposed = 0; W [n_out x n_in] f32 rows) or
 * A · bf16(W) (1) on the tiles, W converted for this call; A already in
 * the tiles' row layout (pack_bf16_*) */
static pl_status tiles_w(const float *W, int64_t n_out, int64_t n_in, int transposed, const uint16_t *A, int64_t T,
                         float *Y, int accumulate) {
    uint16_t *tw = pl_alloc_aligned(pl_bf16_tiles_bytes(n_out, n_in));
    pl_status st = !tw ? pl_error(PL_ERR_NOMEM, "LoRA tiles: out of memory (%lld x %lld)", (long long)n_out,
                                  (long long)n_in)
                       : pl_bf16_tiles_pack(PL_DTYPE_F32, W, 0, n_out, n_in, transposed, tw);
    if (!st) st = pl_matmul_bf16_tiles_packed(tw, n_out, n_in, transposed, A, T, Y, accumulate);
    pl_free_aligned(tw);
    return st;
}

/* the same with A = bf16 of columns of the f32 rows X (ld apart) */
static pl_status tiles_f32(const float *W, int64_t n_out, int64_t n_in, int transposed, const float *X, int64_t ldx,
                           int64_t T, float *Y, int accumulate) {
    uint16_t *A = pack_bf16_cols(X, ldx, T, transposed ? n_out : n_in);
    pl_status st = !A ? pl_error(PL_ERR_NOMEM, "LoRA tiles: out of memory (%lld tokens)", (long long)T)
                      : tiles_w(W, n_out, n_in, transposed, A, T, Y, accumulate);
    free(A);
    return st;
}

static pl_real *to_f64(const float *x, int64_t n) {
    pl_real *d = malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
    if (!d) return NULL;
#pragma omp parallel for schedule(static) if (BIG(n))
    for (int64_t i = 0; i < n; i++) d[i] = (double)x[i];
    return d;
}

pl_status pl_tr_proj_fwd_bf16(int n, float *const *y, const pl_tr_weight *const *w, const pl_tr_lora *const *L,
                              float *const *u, const float *x, int64_t T) {
    int64_t n_in = w[0]->n_in, most = 0;
    int tiles = 1;
    for (int i = 0; i < n; i++) {
        tiles = tiles && use_bf16(w[i], T) && w[i]->tiles && w[i]->n_in == n_in;
        if (w[i]->n_out > most) most = w[i]->n_out;
    }
    lora_set ls = lora_targets(n, L);
    int64_t nr = (int64_t)ls.m * ls.r;
    pl_status st = PL_OK;
    float *xf = NULL, *At = NULL, *uf = NULL, *Bt = NULL;
    pl_real *xd = NULL, *yd = NULL;
    uint16_t *xb = NULL;
    if (ls.m) {
        xf = ls.shared ? NULL : falloc(T * n_in);
        At = falloc(n_in * nr);
        uf = falloc(T * nr);
        Bt = falloc(ls.r * most);
        if ((!ls.shared && !xf) || !At || !uf || !Bt) goto nomem;
    }
    if (tiles) {
        if (!(xb = pack_bf16_from_f32(x, T, n_in))) goto nomem;
    } else {
        xd = to_f64(x, T * n_in);
        yd = malloc((size_t)(T * most > 0 ? T * most : 1) * sizeof *yd);
        if (!xd || !yd) goto nomem;
    }
    if (ls.m && ls.shared && tiles) {
        /* u_all = x·A_allᵀ on the tiles (x as rounded for the frozen products; A_all [m·r x n_in] stacked) */
        for (int j = 0; j < ls.m; j++) {
            const double *Aj = L[ls.idx[j]]->A;
            pl_tr_scale_f32(At + (int64_t)j * ls.r * n_in, Aj, 1.0, (int64_t)ls.r * n_in);
        }
        if ((st = tiles_w(At, nr, n_in, 0, xb, T, uf, 0))) goto done;
    } else if (ls.m) {
        /* u_j = drop_j(x)·A_jᵀ in f32, all j in one product [T x m·r] when x is shared */
        for (int j = 0; j < ls.m; j++) {
            const pl_tr_lora *Lj = L[ls.idx[j]];
            for (int c = 0; c < ls.r; c++)
                for (int64_t k = 0; k < n_in; k++) At[k * nr + j * ls.r + c] = (float)Lj->A[c * n_in + k];
        }
        if (ls.shared) {
            pl_tr_sgemm(0, T, nr, n_in, x, n_in, At, nr, uf, nr, 0);
        } else {
            for (int j = 0; j < ls.m; j++) {
                lora_drop_f32(xf, x, T * n_in, L[ls.idx[j]]);
                pl_tr_sgemm(0, T, ls.r, n_in, xf, n_in, At + j * ls.r, nr, uf + j * ls.r, nr, 0);
            }
        }
    }
    for (int j = 0; j < ls.m; j++) {
        float *uj = u[ls.idx[j]];
        for (int64_t t = 0; t < T; t++) memcpy(uj + t * ls.r, uf + t * nr + j * ls.r, (size_t)ls.r * sizeof *uj);
    }
    for (int i = 0, j = 0; i < n && !st; i++) {
        const pl_tr_weight *wi = w[i];
        int64_t no = wi->n_out;
        float *yi = y[i];
        if (tiles) {
            st = pl_matmul_bf16_tiles_packed(wi->tiles, no, n_in, 0, xb, T, yi, 0);
        } else if (!(st = pl_tr_linear_fwd_bf16(yd, xd, T, wi))) {
#pragma omp parallel for schedule(static) if (BIG(T * no))
            for (int64_t e = 0; e < T * no; e++) yi[e] = (float)yd[e];
        }
        if (st) break;
        if (j < ls.m && ls.idx[j] == i) { /* y_i += u_j · (s_j·B_j)ᵀ */
            const pl_tr_lora *Lj = L[i];
            if (tiles) { /* on the tiles, after the frozen product: u_j and s_j·B_j rounded to bf16 */
                pl_tr_scale_f32(Bt, Lj->B, Lj->s, no * ls.r);
                st = tiles_f32(Bt, no, ls.r, 0, uf + j * ls.r, nr, T, yi, 1);
            } else {
                for (int c = 0; c < ls.r; c++)
                    for (int64_t o = 0; o < no; o++) Bt[c * no + o] = (float)(Lj->s * Lj->B[o * ls.r + c]);
                pl_tr_sgemm(0, T, no, ls.r, uf + j * ls.r, nr, Bt, no, yi, no, 1);
            }
            j++;
        }
    }
    goto done;
nomem:
    st = pl_error(PL_ERR_NOMEM, "projection: out of memory (%lld x %lld)", (long long)T, (long long)most);
done:
    free(xb);
    free(xf);
    free(At);
    free(uf);
    free(Bt);
    free(xd);
    free(yd);
    return st;
}

static void mm16_free(mm16 *s);
static int mm16_run(mm16 *s, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc);

pl_status pl_tr_swiglu_down_bf16(float *y, float *s, const float *g, const float *u, const pl_tr_weight *w, int64_t T,
                                 int *done) {
    *done = 0;
    const int64_t F = w->n_in;
#if defined(HAVE_SGEMM_AVX512)
    if (!use_bf16(w, T) || !w->tiles || pl_simd_active() != PL_SIMD_AVX512) return PL_OK;
    const int64_t Mp = up32(T), Fp = up32(F);
    uint16_t *A = alloc_bf16(Mp * Fp);
    if (!A) return pl_error(PL_ERR_NOMEM, "SwiGLU: out of memory (%lld x %lld)", (long long)T, (long long)F);
    /* h = silu(g)·u straight into the product's bf16 rows (zero padding) */
#pragma omp parallel for schedule(static) if (BIG(T * F * 4))
    for (int64_t t = 0; t < Mp; t++) {
        uint16_t *row = A + t * Fp;
        if (t < T) {
            pl_tr_silu_fwd_bf16_avx512(row, s + t * F, g + t * F, u + t * F, F);
            memset(row + F, 0, (size_t)(Fp - F) * sizeof *row);
        } else {
            memset(row, 0, (size_t)Fp * sizeof *row);
        }
    }
    pl_status st = pl_matmul_bf16_tiles_packed(w->tiles, w->n_out, F, 0, A, T, y, 0);
    free(A);
    if (!st) *done = 1;
    return st;
#else
    (void)y;
    (void)s;
    (void)g;
    (void)u;
    (void)T;
    (void)F;
    return PL_OK;
#endif
}

pl_status pl_tr_swiglu_bwd_bf16(pl_real *dx, const float *dh, const float *g, const float *u, const float *s,
                                const pl_tr_weight *wg, const pl_tr_weight *wu, int64_t T, int *done) {
    *done = 0;
#if defined(HAVE_SGEMM_AVX512)
    const int64_t F = wg->n_out, D = wg->n_in;
    if (!use_bf16(wg, T) || !use_bf16(wu, T) || !wg->tiles_t || !wu->tiles_t || wu->n_out != F || wu->n_in != D ||
        pl_simd_active() != PL_SIMD_AVX512)
        return PL_OK;
    const int64_t Mp = up32(T), Fp = up32(F);
    uint16_t *Ag = alloc_bf16(Mp * Fp), *Au = alloc_bf16(Mp * Fp);
    float *dxf = falloc(T * D);
    pl_status st = Ag && Au && dxf ? PL_OK
                                   : pl_error(PL_ERR_NOMEM, "SwiGLU backward: out of memory (%lld x %lld)", (long long)T,
                                              (long long)F);
    if (!st) {
        /* dg, du straight into the products' bf16 rows (zero padding) */
#pragma omp parallel for schedule(static) if (BIG(T * F * 4))
        for (int64_t t = 0; t < Mp; t++) {
            uint16_t *rg = Ag + t * Fp, *ru = Au + t * Fp;
            if (t < T) {
                pl_tr_silu_bwd_bf16_avx512(rg, ru, dh + t * F, g + t * F, u + t * F, s + t * F, F);
                memset(rg + F, 0, (size_t)(Fp - F) * sizeof *rg);
                memset(ru + F, 0, (size_t)(Fp - F) * sizeof *ru);
            } else {
                memset(rg, 0, (size_t)Fp * sizeof *rg);
                memset(ru, 0, (size_t)Fp * sizeof *ru);
            }
        }
        st = pl_matmul_bf16_tiles_packed(wg->tiles_t, F, D, 1, Ag, T, dxf, 0);
        if (!st) st = pl_matmul_bf16_tiles_packed(wu->tiles_t, F, D, 1, Au, T, dxf, 1);
    }
    if (!st) {
#pragma omp parallel for schedule(static) if (BIG(T * D))
        for (int64_t e = 0; e < T * D; e++) dx[e] = (double)dxf[e];
        *done = 1;
    }
    free(Ag);
    free(Au);
    free(dxf);
    return st;
#else
    (void)dx;
    (void)dh;
    (void)g;
    (void)u;
    (void)s;
    (void)wg;
    (void)wu;
    (void)T;
    return PL_OK;
#endif
}

pl_status pl_tr_proj_bwd_bf16(pl_real *dx, float *dxs, int n, const pl_real *const *dy, const float *const *dys,
                              const pl_tr_weight *const *w, const pl_tr_lora *const *L, const float *const *u,
                              const float *x, int64_t T) {
    int64_t n_in = w[0]->n_in, most = 0;
    int tiles = 1;
    for (int i = 0; i < n; i++) {
        tiles = tiles && use_bf16(w[i], T) && w[i]->tiles_t && w[i]->n_in == n_in;
        if (w[i]->n_out > most) most = w[i]->n_out;
    }
    lora_set ls = lora_targets(n, L);
    int64_t nr = (int64_t)ls.m * ls.r, big = n_in > most ? n_in : most;
    pl_status st = PL_OK;
    float *dxf = NULL, *dyf = NULL, *duf = NULL, *Bs = NULL, *us = NULL, *tmp = NULL, *xf = NULL, *Aall = NULL;
    mm16 *g16 = NULL; /* the LoRA gradients' tile products (pl_tr_lora_grad) */
    pl_real *acc = NULL, *dyd = NULL; /* without tiles: the sum in double, dy_i in double */
    if (tiles) {
        dxf = dxs ? dxs : falloc(T * n_in);
        if (!dxf) goto nomem;
    } else {
        acc = dx ? dx : malloc((size_t)(T * n_in > 0 ? T * n_in : 1) * sizeof *acc);
        dyd = dys ? malloc((size_t)(T * most > 0 ? T * most : 1) * sizeof *dyd) : NULL;
        if (!acc || (dys && !dyd)) goto nomem;
        memset(acc, 0, (size_t)(T * n_in) * sizeof *acc);
    }
    if (ls.m) {
        dyf = dys ? NULL : falloc(T * most);
        duf = falloc(T * nr);
        Bs = falloc(most * ls.r);
        us = falloc(T * ls.r);
        tmp = falloc(big * nr > T * n_in ? big * nr : T * n_in);
        xf = ls.shared ? NULL : falloc(T * n_in);
        Aall = falloc(nr * n_in);
        if ((!dys && !dyf) || !duf || !Bs || !us || !tmp || (!ls.shared && !xf) || !Aall) goto nomem;
    }
    for (int i = 0, j = 0; i < n; i++) {
        int64_t no = w[i]->n_out;
        int lora = j < ls.m && ls.idx[j] == i;
        const float *dyi; /* dy_i in f32 for the LoRA */
        /* frozen: dxf (+)= dy_i·W_i on the tiles (dy_i in double: rounded to bf16, and to f32 for its LoRA, in
         * one pass), else acc += dy_i·W_i in double */
        uint16_t *A = NULL; /* dy_i rounded to bf16 for the tiles */
        if (tiles) {
            A = dys ? pack_bf16_from_f32(dys[i], T, no) : pack_bf16_f(dy[i], T, no, lora ? dyf : NULL);
            if (!A) goto nomem;
            st = pl_matmul_bf16_tiles_packed(w[i]->tiles_t, no, n_in, 1, A, T, dxf, i > 0);
        } else {
            const pl_real *d = dy ? dy[i] : dyd;
            if (dys) {
                const float *f = dys[i];
#pragma omp parallel for schedule(static) if (BIG(T * no))
                for (int64_t e = 0; e < T * no; e++) dyd[e] = (double)f[e];
            } else if (lora) {
                const pl_real *dd = dy[i];
#pragma omp parallel for schedule(static) if (BIG(T * no))
                for (int64_t e = 0; e < T * no; e++) dyf[e] = (float)dd[e];
            }
            st = pl_tr_linear_bwd_bf16(acc, d, T, w[i]);
        }
        if (st || !lora) {
            free(A);
            if (st) goto done;
            continue;
        }
        dyi = dys ? dys[i] : dyf;
        const pl_tr_lora *Lj = L[i];
        const float *uj = u[i];
        int r = ls.r;
        /* du_j = dy_j · (s·B_j): on the tiles from dy_j as rounded above, else in f32 */
        pl_tr_scale_f32(Bs, Lj->B, Lj->s, no * r);
        if (tiles) {
            st = tiles_w(Bs, no, r, 1, A, T, us, 0);
            free(A);
            if (st) goto done;
            for (int64_t t = 0; t < T; t++) memcpy(duf + t * nr + j * r, us + t * r, (size_t)r * sizeof *us);
        } else {
            pl_tr_sgemm(0, T, r, no, dyi, no, Bs, r, duf + j * r, nr, 0);
        }
        /* dB_jᵀ = (s·u_j)ᵀ · dy_j  [r x n_out] */
        if (Lj->dB) {
            for (int64_t e = 0; e < T * r; e++) us[e] = (float)(Lj->s * (double)uj[e]);
            if ((st = pl_tr_lora_grad(&g16, tiles, r, no, T, us, r, dyi, no, tmp))) goto done;
            for (int64_t o = 0; o < no; o++)
                for (int c = 0; c < r; c++) Lj->dB[o * r + c] += (double)tmp[c * no + o];
        }
        pl_tr_scale_f32(Aall + (int64_t)j * r * n_in, Lj->A, 1.0, (int64_t)r * n_in);
        j++;
    }
    if (!ls.m) goto out;
    /* dA_j = du_jᵀ · drop_j(x) [r x n_in] (one product for all j when x is shared) */
    if (ls.shared && (st = pl_tr_lora_grad(&g16, tiles, nr, n_in, T, duf, nr, x, n_in, tmp))) goto done;
    for (int j = 0; j < ls.m; j++) {
        const pl_tr_lora *Lj = L[ls.idx[j]];
        int64_t rn = (int64_t)ls.r * n_in;
        if (!ls.shared) {
            lora_drop_f32(xf, x, T * n_in, Lj);
            if ((st = pl_tr_lora_grad(&g16, tiles, ls.r, n_in, T, duf + j * ls.r, nr, xf, n_in, tmp + j * rn))) goto done;
        }
        if (Lj->dA)
            pl_tr_add_f32(Lj->dA, tmp + j * rn, rn);
    }
    /* dx += drop_bwd(du · A): into dxf (tiles) or a scratch added to acc */
    if (ls.shared && tiles) { /* on the tiles, after the frozen products: du and A rounded to bf16 */
        if ((st = tiles_f32(Aall, nr, n_in, 1, duf, nr, T, dxf, 1))) goto done;
    } else if (ls.shared) {
        pl_tr_sgemm(0, T, n_in, nr, duf, nr, Aall, n_in, tmp, n_in, 0);
#pragma omp parallel for schedule(static) if (BIG(T * n_in))
        for (int64_t e = 0; e < T * n_in; e++) acc[e] += (double)tmp[e];
    } else {
        for (int j = 0; j < ls.m; j++) {
            const pl_tr_lora *Lj = L[ls.idx[j]];
            int r = ls.r;
            pl_tr_sgemm(0, T, n_in, r, duf + j * r, nr, Aall + (int64_t)j * r * n_in, n_in, tmp, n_in, 0);
            double sc = Lj->p > 0.0 ? 1.0 / (1.0 - Lj->p) : 1.0;
            int64_t ne = T * n_in;
            if (tiles) {
#pragma omp parallel for schedule(static) if (BIG(ne * 8))
                for (int64_t e = 0; e < ne; e++)
                    if (Lj->p <= 0.0 || pl_tr_dropout_keep(Lj->key, (uint64_t)e, Lj->p))
                        dxf[e] += (float)((double)tmp[e] * sc);
            } else {
#pragma omp parallel for schedule(static) if (BIG(ne * 8))
                for (int64_t e = 0; e < ne; e++)
                    if (Lj->p <= 0.0 || pl_tr_dropout_keep(Lj->key, (uint64_t)e, Lj->p)) acc[e] += (double)tmp[e] * sc;
            }
        }
    }
out:
    /* the result in the caller's type */
    if (tiles && dx) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in))
        for (int64_t e = 0; e < T * n_in; e++) dx[e] = (double)dxf[e];
    } else if (!tiles && dxs) {
#pragma omp parallel for schedule(static) if (BIG(T * n_in))
        for (int64_t e = 0; e < T * n_in; e++) dxs[e] = (float)acc[e];
    }
    goto done;
nomem:
    st = pl_error(PL_ERR_NOMEM, "projection backward: out of memory (%lld x %lld)", (long long)T, (long long)n_in);
done:
    if (dxf != dxs) free(dxf);
    if (acc != dx) free(acc);
    free(dyd);
    free(dyf);
    free(duf);
    free(Bs);
    free(us);
    free(tmp);
    free(xf);
    free(Aall);
    pl_tr_mm16_free(g16);
    return st;
}

/* ---- attention through dgemm ------------------------------------------------
 * Per query head h (KV head h/g), in blocks of ATT_BQ query rows [i0, i1):
 * only the keys [j0, i1) a row of the block can see are multiplied (j0 = 0,
 * or the sliding window's first key), so the causal product costs about
 * half the full square. S = scale · q_h k_hᵀ (dgemm over the block), the
 * soft-cap, mask and softmax row by row, z_h = P_h v_h (dgemm; masked
 * entries of P are 0; P is written in full, zeros outside the mask).
 * Backward per block: dP = dz_h v_hᵀ ; dv_h += P_hᵀ dz_h ;
 * dS = P ∘ (dP - rowsum(dP∘P)) (∘ soft-cap derivative, from recomputed
 * scores) · scale ; dq_h += dS k_h ; dk_h += dSᵀ q_h. Heads run in parallel
 * (one per OpenMP thread, single-threaded dgemm); the backward splits over
 * KV heads, each summing its query heads and blocks in order, so results
 * do not depend on the thread count. */

enum { ATT_BQ = 64 };

/* first key row i may see (the sliding window's start, or 0) */
static int64_t first_key(const pl_tr_attn *a, int64_t i) {
    return a->window > 0 && i - a->window + 1 > 0 ? i - a->window + 1 : 0;
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
        for (int64_t i0 = 0; i0 < T; i0 += ATT_BQ) {
            int64_t i1 = i0 + ATT_BQ < T ? i0 + ATT_BQ : T, j0 = first_key(a, i0);
            int ni = (int)(i1 - i0), nj = (int)(i1 - j0);
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, hd, a->scale, q + i0 * QD + (int64_t)h * hd,
                        QD, k + j0 * KVD + (int64_t)kh * hd, KVD, 0.0, Ph + i0 * T + j0, (int)T);
#pragma omp parallel for schedule(static) if (!par && BIG(ni * nj * 4))
            for (int64_t i = i0; i < i1; i++) {
                pl_real *row = Ph + i * T;
                int64_t lo = first_key(a, i);
                double mx = -INFINITY;
                for (int64_t j = lo; j <= i; j++) {
                    double s = row[j];
                    if (a->softcap > 0) s = tanh(s / a->softcap) * a->softcap;
                    row[j] = s;
                    if (s > mx) mx = s;
                }
                double sum = 0.0;
                for (int64_t j = lo; j <= i; j++) row[j] -= mx;
                pl_tr_exp_arr(row + lo, row + lo, i + 1 - lo);
                for (int64_t j = lo; j <= i; j++) sum += row[j];
                double inv = 1.0 / sum;
                for (int64_t j = lo; j <= i; j++) row[j] *= inv;
                memset(row, 0, (size_t)lo * sizeof *row);
                memset(row + i + 1, 0, (size_t)(T - i - 1) * sizeof *row);
            }
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, hd, nj, 1.0, Ph + i0 * T + j0, (int)T,
                        v + j0 * KVD + (int64_t)kh * hd, KVD, 0.0, z + i0 * QD + (int64_t)h * hd, QD);
        }
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
        const pl_real *kk = k + (int64_t)kh * hd, *vk = v + (int64_t)kh * hd;
        pl_real *dkk = dk + (int64_t)kh * hd, *dvk = dv + (int64_t)kh * hd;
        for (int h = kh * g; h < (kh + 1) * g; h++) {
            const pl_real *Ph = P + (int64_t)h * T * T;
            const pl_real *qh = q + (int64_t)h * hd, *dzh = dz + (int64_t)h * hd;
            pl_real *dqh = dq + (int64_t)h * hd;
            for (int64_t i0 = 0; i0 < T; i0 += ATT_BQ) {
                int64_t i1 = i0 + ATT_BQ < T ? i0 + ATT_BQ : T, j0 = first_key(a, i0);
                int ni = (int)(i1 - i0), nj = (int)(i1 - j0);
                const pl_real *Pb = Ph + i0 * T + j0;
                pl_real *dSb = dS + i0 * T + j0;
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, hd, 1.0, dzh + i0 * QD, QD,
                            vk + j0 * KVD, KVD, 0.0, dSb, (int)T);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, hd, ni, 1.0, Pb, (int)T, dzh + i0 * QD, QD,
                            1.0, dvk + j0 * KVD, KVD);
                if (S)
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ni, nj, hd, a->scale, qh + i0 * QD, QD,
                                kk + j0 * KVD, KVD, 0.0, S + i0 * T + j0, (int)T);
#pragma omp parallel for schedule(static) if (!par && BIG(ni * nj * 4))
                for (int64_t i = i0; i < i1; i++) {
                    const pl_real *pr = Ph + i * T;
                    pl_real *dr = dS + i * T;
                    int64_t lo = first_key(a, i);
                    double dot = 0.0;
                    for (int64_t j = lo; j <= i; j++) dot += dr[j] * pr[j];
                    for (int64_t j = j0; j < i1; j++) {
                        if (j < lo || j > i) {
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
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ni, hd, nj, 1.0, dSb, (int)T, kk + j0 * KVD,
                            KVD, 1.0, dqh + i0 * QD, QD);
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nj, hd, ni, 1.0, dSb, (int)T, qh + i0 * QD, QD,
                            1.0, dkk + j0 * KVD, KVD);
            }
        }
        free(dS);
        free(S);
    }
    heads_end(par);
    if (fail) return pl_error(PL_ERR_NOMEM, "attention backward: out of memory (%lld positions)", (long long)T);
    return PL_OK;
}

/* ---- attention with f32 products (bf16 precision) ---------------------------
 * The same blocks as above with the products in float32 (sgemm) and the
 * probabilities P saved in f32: q, k, v, dz of a head are rounded to f32,
 * the softmax runs in double per row (rounded to f32 once), the gradients
 * of a head are summed in f32 and added to dq, dk, dv once. PyTorch's bf16
 * autocast runs these products in bf16. */

/* Row reductions of the f32 attention with 8 running partials (fixed
 * order: lane j % 8, then the lanes in order), so consecutive adds do not
 * wait on each other. */
static double sum8(const double *x, int64_t n) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) p[l] += x[j + l];
    for (; j < n; j++) p[j & 7] += x[j];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}
static double max8(const double *x, int64_t n) {
    double p[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) p[l] = x[j + l] > p[l] ? x[j + l] : p[l];
    for (; j < n; j++) p[j & 7] = x[j] > p[j & 7] ? x[j] : p[j & 7];
    double m = p[0];
    for (int l = 1; l < 8; l++) m = p[l] > m ? p[l] : m;
    return m;
}
static double dot8(const float *a, const float *b, int64_t n) {
    double p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) p[l] += (double)a[j + l] * (double)b[j + l];
    for (; j < n; j++) p[j & 7] += (double)a[j] * (double)b[j];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

/* dst[T x hd] = (float) src rows ld apart */
static void gather_f32(float *dst, const pl_real *src, int64_t T, int hd, int ld) {
    for (int64_t t = 0; t < T; t++)
        for (int e = 0; e < hd; e++) dst[t * hd + e] = (float)src[t * ld + e];
}

/* dst rows ld apart += src[T x hd] */
static void scatter_add(pl_real *dst, const float *src, int64_t T, int hd, int ld) {
    for (int64_t t = 0; t < T; t++)
        for (int e = 0; e < hd; e++) dst[t * ld + e] += (double)src[t * hd + e];
}

/* per-thread scratch of the attention kernels: n_vec [T x hd] and n_sq
 * [T x pl_tr_attn_ld(T)] floats, then T doubles */
static float *attn_scratch(int64_t T, int hd, int n_vec, int n_sq) {
    size_t n = (size_t)n_vec * (size_t)T * (size_t)hd + (size_t)n_sq * (size_t)T * (size_t)pl_tr_attn_ld(T) +
               2 * (size_t)T;
    return pl_alloc_aligned_raw(n * sizeof(float));
}

/* The bf16 precision's attention products on the AMX tiles: the sgemm
 * C[M x N] = op(alpha A) op(B) + beta C (row-major; op transposes when t*
 * is set; beta 0 or 1) with alpha A and B rounded to bf16 and f32 sums
 * (PyTorch's bf16 autocast runs these products in bf16 too). op(alpha A)
 * goes into bf16 rows, op(B) into tiles (pl_bf16_tiles_pack_rowptr: B's
 * rows are the product's outputs when tb, its reduction indices
 * otherwise), and the product writes or adds into C. Scratch per thread,
 * grown as needed. */
struct mm16 {
    pl_bf16_rows a; /* op(alpha A) */
    uint16_t *bt;   /* B's tiles (64-byte aligned, grown) */
    size_t bt_cap;
    pl_buf cv, rows; /* the packer's scratch, B's row pointers (grown, len 0) */
};

void pl_tr_mm16_free(mm16 *s) {
    if (!s) return;
    mm16_free(s);
    free(s);
}

static void mm16_free(mm16 *s) {
    pl_bf16_rows_free(&s->a);
    free(s->bt);
    pl_buf_free(&s->cv);
    pl_buf_free(&s->rows);
}

static int mm16_run(mm16 *s, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc) {
    const int64_t nr = tb ? N : K, nc = tb ? K : N; /* B as tiles: nr rows of nc */
    const size_t bt_need = pl_bf16_tiles_bytes(nr, nc);
    if (bt_need > s->bt_cap) {
        free(s->bt);
        s->bt_cap = 0;
        if (!(s->bt = pl_alloc_aligned_raw(bt_need))) return -1;
        s->bt_cap = bt_need;
    }
    if ((beta != 0.0f && beta != 1.0f) || pl_bf16_rows_alloc(&s->a, M, K) ||
        pl_buf_reserve(&s->cv, 2 * (size_t)((nc + 31) / 32 * 32) * sizeof(uint16_t)) ||
        pl_buf_reserve(&s->rows, (size_t)nr * sizeof(float *)))
        return -1;
    const int64_t Kp = (K + 31) / 32 * 32; /* the rows' stride (padding zeroed by the alloc) */
    if (ta) { /* op(A)[i][k] = A[k][i] */
#if defined(HAVE_SGEMM_AVX512)
        pl_tr_bf16_t_avx512(s->a.data, Kp, A, lda, M, K, alpha);
#else
        for (int64_t i = 0; i < M; i++)
            for (int64_t k = 0; k < K; k++) s->a.data[i * Kp + k] = pl_fp32_to_bf16(alpha * A[k * lda + i]);
#endif
    } else {
        for (int64_t i = 0; i < M; i++) pl_bf16_round_scaled(s->a.data + i * Kp, A + i * lda, K, alpha);
    }
    const float **rows = (const float **)(void *)s->rows.data;
    uint16_t *bt = s->bt;
    for (int64_t r = 0; r < nr; r++) rows[r] = B + r * ldb;
    if (pl_bf16_tiles_pack_rowptr(rows, nr, nc, !tb, bt, (uint16_t *)(void *)s->cv.data) ||
        pl_matmul_bf16_tiles_packed_ld(bt, nr, nc, !tb, s->a.data, M, C, ldc, beta != 0.0f))
        return -1;
    return 0;
}

/* C [M x N] = Aᵀ·B summed over K tokens (A [K x lda], B [K x ldb], C
 * dense): the LoRA weight gradients dA = duᵀ·x and dBᵀ = (s·u)ᵀ·dy. With
 * the projection on the tiles (AMX), on the tiles too, A and B rounded to
 * bf16 with float sums, as PyTorch's bf16 autocast runs these products;
 * otherwise pl_tr_sgemm in float. */
pl_status pl_tr_lora_grad(mm16 **s, int tiles, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C) {
    if (!tiles || !pl_bf16_gemm_native()) {
        pl_tr_sgemm(1, M, N, K, A, lda, B, ldb, C, N, 0);
        return PL_OK;
    }
    if (!*s && !(*s = calloc(1, sizeof **s))) return pl_error(PL_ERR_NOMEM, "LoRA gradients: out of memory");
    if (mm16_run(*s, 1, 0, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N))
        return pl_error(PL_ERR_NOMEM, "LoRA gradients: out of memory (%d x %d over %d tokens)", M, N, K);
    return PL_OK;
}

/* the attention's product: on the tiles (s not NULL) or sgemm */
#define ATT_GEMM(s, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)                                           \
    do {                                                                                                             \
        if (s) {                                                                                                     \
            if (mm16_run(s, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)) {                                 \
                _Pragma("omp atomic write") fail = 1;                                                                \
            }                                                                                                        \
        } else {                                                                                                     \
            cblas_sgemm(CblasRowMajor, (ta) ? CblasTrans : CblasNoTrans, (tb) ? CblasTrans : CblasNoTrans, M, N, K, \
                        alpha, A, lda, B, ldb, beta, C, ldc);                                                        \
        }                                                                                                            \
    } while (0)

/* q, k, v (and z) either double (gathered per head into f32 scratch) or
 * float storage read in place through the products' leading dimensions. */
typedef struct {
    const pl_real *qd, *kd, *vd;
    const float *qf, *kf, *vf;
} attn_in;

int64_t pl_tr_attn_ld(int64_t T) { return (T + 15) / 16 * 16; }

static pl_status attn_fwd_core(const pl_tr_attn *a, pl_real *zd, float *zs, float *P, attn_in in, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
    const int64_t ldp = pl_tr_attn_ld(T); /* P's rows on 64-byte lines */
    int QD = H * hd, KVD = Hkv * hd;
    int par = heads_begin(H, T);
    int fail = 0;
#pragma omp parallel for schedule(static) if (par)
    for (int h = 0; h < H; h++) {
        int kh = h / g;
        /* float storage is the bf16 precision: its products on the tiles */
        mm16 m16s = {0}, *m16 = in.qf && pl_bf16_gemm_native() ? &m16s : NULL;
        float *sc = attn_scratch(T, hd, in.qf ? 0 : 4, 0);
        if (!sc) {
#pragma omp atomic write
            fail = 1;
            continue;
        }
        const float *qf, *kf, *vf;
        float *zf;
        int ldq, ldk, ldz;
        double *buf;
        if (in.qf) { /* float storage: in place */
            qf = in.qf + (int64_t)h * hd;
            kf = in.kf + (int64_t)kh * hd;
            vf = in.vf + (int64_t)kh * hd;
            zf = zs + (int64_t)h * hd;
            ldq = ldz = QD;
            ldk = KVD;
            buf = (double *)(void *)sc;
        } else {
            float *g0 = sc, *g1 = g0 + T * hd, *g2 = g1 + T * hd;
            gather_f32(g0, in.qd + (int64_t)h * hd, T, hd, QD);
            gather_f32(g1, in.kd + (int64_t)kh * hd, T, hd, KVD);
            gather_f32(g2, in.vd + (int64_t)kh * hd, T, hd, KVD);
            qf = g0;
            kf = g1;
            vf = g2;
            zf = g2 + T * hd;
            ldq = ldk = ldz = hd;
            buf = (double *)(void *)(zf + T * hd);
        }
        float *Ph = P + (int64_t)h * T * ldp;
        for (int64_t i0 = 0; i0 < T; i0 += ATT_BQ) {
            int64_t i1 = i0 + ATT_BQ < T ? i0 + ATT_BQ : T, j0 = first_key(a, i0);
            int ni = (int)(i1 - i0), nj = (int)(i1 - j0);
            float *Pb = Ph + i0 * ldp + j0;
            ATT_GEMM(m16, 0, 1, ni, nj, hd, (float)a->scale, qf + i0 * ldq, ldq, kf + j0 * ldk, ldk, 0.0f, Pb, (int)ldp);
            for (int64_t i = i0; i < i1; i++) {
                float *row = Ph + i * ldp;
                int64_t lo = first_key(a, i), n = i + 1 - lo;
                if (in.qf && !(a->softcap > 0)) {
                    /* float storage (the bf16 precision): the softmax in float
                     * (tensor's exponentials, their sum in double) */
                    const float mx = pl_f32_scores(row + lo, n, 0, n - 1, 1.0f);
                    pl_f32_scale(row + lo, n, (float)(1.0 / pl_f32_exp_sum(row + lo, n, mx)));
                    memset(row, 0, (size_t)lo * sizeof *row);
                    memset(row + i + 1, 0, (size_t)(T - i - 1) * sizeof *row);
                    continue;
                }
                for (int64_t j = 0; j < n; j++) buf[j] = row[lo + j];
                if (a->softcap > 0)
                    for (int64_t j = 0; j < n; j++) buf[j] = tanh(buf[j] / a->softcap) * a->softcap;
                double mx = max8(buf, n);
                for (int64_t j = 0; j < n; j++) buf[j] -= mx;
                pl_tr_exp_arr(buf, buf, n);
                double inv = 1.0 / sum8(buf, n);
                for (int64_t j = 0; j < n; j++) row[lo + j] = (float)(buf[j] * inv);
                memset(row, 0, (size_t)lo * sizeof *row);
                memset(row + i + 1, 0, (size_t)(T - i - 1) * sizeof *row);
            }
            ATT_GEMM(m16, 0, 0, ni, hd, nj, 1.0f, Pb, (int)ldp, vf + j0 * ldk, ldk, 0.0f, zf + i0 * ldz, ldz);
        }
        if (zd)
            for (int64_t t = 0; t < T; t++)
                for (int e = 0; e < hd; e++) zd[t * QD + (int64_t)h * hd + e] = (double)zf[t * hd + e];
        mm16_free(&m16s);
        free(sc);
    }
    heads_end(par);
    if (fail) return pl_error(PL_ERR_NOMEM, "attention: out of memory (%lld positions)", (long long)T);
    return PL_OK;
}

pl_status pl_tr_attn_fwd_f32(const pl_tr_attn *a, pl_real *z, float *P, const pl_real *q, const pl_real *k,
                             const pl_real *v, int64_t T) {
    attn_in in = {q, k, v, NULL, NULL, NULL};
    return attn_fwd_core(a, z, NULL, P, in, T);
}

pl_status pl_tr_attn_fwd_f32s(const pl_tr_attn *a, float *z, float *P, const float *q, const float *k,
                              const float *v, int64_t T) {
    attn_in in = {NULL, NULL, NULL, q, k, v};
    return attn_fwd_core(a, NULL, z, P, in, T);
}

/* The backward's gradients: dq, dk, dv double (added to, or written when
 * write is 1) or float (written), dz double (gathered) or float (in place). */
typedef struct {
    pl_real *dq, *dk, *dv;
    float *dqs, *dks, *dvs;
    const pl_real *dz;
    const float *dzs;
    int write;
} attn_grads;

/* dst rows ld apart (+)= src[T x hd] (written when write is 1) */
static void scatter(pl_real *dst, const float *src, int64_t T, int hd, int ld, int write) {
    if (!write) {
        scatter_add(dst, src, T, hd, ld);
        return;
    }
    for (int64_t t = 0; t < T; t++)
        for (int e = 0; e < hd; e++) dst[t * ld + e] = (double)src[t * hd + e];
}

/* float dst rows ld apart = src[T x hd] */
static void scatter_f(float *dst, const float *src, int64_t T, int hd, int ld) {
    for (int64_t t = 0; t < T; t++) memcpy(dst + t * ld, src + t * hd, (size_t)hd * sizeof *dst);
}

void pl_tr_attn_ds_row(float *d, const float *p, int64_t n, double s) {
#if defined(HAVE_SGEMM_AVX512)
    if (pl_simd_active() == PL_SIMD_AVX512) {
        pl_tr_ds_row_avx512(d, p, n, s);
        return;
    }
#endif
    const double dot = dot8(d, p, n);
    for (int64_t j = 0; j < n; j++) d[j] = (float)((double)p[j] * ((double)d[j] - dot) * s);
}

static pl_status attn_bwd_core(const pl_tr_attn *a, attn_grads gr, const float *P, attn_in in, int64_t T) {
    int H = a->n_head, hd = a->head_dim, Hkv = a->n_head_kv, g = H / Hkv;
    const int64_t ldp = pl_tr_attn_ld(T); /* P's, dS's and S's rows */
    int QD = H * hd, KVD = Hkv * hd;
    int fail = 0;
    int par = heads_begin(Hkv, T);
#pragma omp parallel for schedule(static) if (par)
    for (int kh = 0; kh < Hkv; kh++) {
        mm16 m16s = {0}, *m16 = in.qf && pl_bf16_gemm_native() ? &m16s : NULL;
        /* k, v, dk, dv of the KV head; q, dz, dq of a query head; dS, (soft-cap) S */
        float *sc = attn_scratch(T, hd, 7, a->softcap > 0 ? 2 : 1);
        if (!sc) {
#pragma omp atomic write
            fail = 1;
            continue;
        }
        float *kg = sc, *vg = kg + T * hd, *dkf = vg + T * hd, *dvf = dkf + T * hd, *qg = dvf + T * hd;
        float *dzg = qg + T * hd, *dqf = dzg + T * hd, *dSf = dqf + T * hd, *Sf = a->softcap > 0 ? dSf + T * ldp : NULL;
        const float *kf, *vf;
        int ldq = in.qf ? QD : hd, ldk = in.kf ? KVD : hd, ldz = gr.dzs ? QD : hd;
        if (in.kf) {
            kf = in.kf + (int64_t)kh * hd;
            vf = in.vf + (int64_t)kh * hd;
        } else {
            gather_f32(kg, in.kd + (int64_t)kh * hd, T, hd, KVD);
            gather_f32(vg, in.vd + (int64_t)kh * hd, T, hd, KVD);
            kf = kg;
            vf = vg;
        }
        memset(dkf, 0, (size_t)(2 * T * hd) * sizeof *dkf);
        for (int h = kh * g; h < (kh + 1) * g; h++) {
            const float *Ph = P + (int64_t)h * T * ldp, *qf, *dzf;
            if (in.qf) {
                qf = in.qf + (int64_t)h * hd;
            } else {
                gather_f32(qg, in.qd + (int64_t)h * hd, T, hd, QD);
                qf = qg;
            }
            if (gr.dzs) {
                dzf = gr.dzs + (int64_t)h * hd;
            } else {
                gather_f32(dzg, gr.dz + (int64_t)h * hd, T, hd, QD);
                dzf = dzg;
            }
            memset(dqf, 0, (size_t)(T * hd) * sizeof *dqf);
            for (int64_t i0 = 0; i0 < T; i0 += ATT_BQ) {
                int64_t i1 = i0 + ATT_BQ < T ? i0 + ATT_BQ : T, j0 = first_key(a, i0);
                int ni = (int)(i1 - i0), nj = (int)(i1 - j0);
                float *dSb = dSf + i0 * ldp + j0;
                /* dP = dz vᵀ ; dv += Pᵀ dz */
                ATT_GEMM(m16, 0, 1, ni, nj, hd, 1.0f, dzf + i0 * ldz, ldz, vf + j0 * ldk, ldk, 0.0f, dSb, (int)ldp);
                ATT_GEMM(m16, 1, 0, nj, hd, ni, 1.0f, Ph + i0 * ldp + j0, (int)ldp, dzf + i0 * ldz, ldz, 1.0f,
                         dvf + j0 * hd, hd);
                if (Sf) /* the pre-cap scores again */
                    ATT_GEMM(m16, 0, 1, ni, nj, hd, (float)a->scale, qf + i0 * ldq, ldq, kf + j0 * ldk, ldk, 0.0f,
                             Sf + i0 * ldp + j0, (int)ldp);
                for (int64_t i = i0; i < i1; i++) {
                    const float *pr = Ph + i * ldp;
                    float *dr = dSf + i * ldp;
                    int64_t lo = first_key(a, i);
                    if (!Sf) {
                        for (int64_t j = j0; j < lo; j++) dr[j] = 0.0f;
                        for (int64_t j = i + 1; j < i1; j++) dr[j] = 0.0f;
                        pl_tr_attn_ds_row(dr + lo, pr + lo, i + 1 - lo, a->scale);
                        continue;
                    }
                    double dot = dot8(dr + lo, pr + lo, i + 1 - lo);
                    /* dS = P (dP - dot) scale (· soft-cap derivative); 0 where masked */
                    for (int64_t j = j0; j < lo; j++) dr[j] = 0.0f;
                    for (int64_t j = i + 1; j < i1; j++) dr[j] = 0.0f;
                    if (!Sf) {
                        for (int64_t j = lo; j <= i; j++)
                            dr[j] = (float)((double)pr[j] * ((double)dr[j] - dot) * a->scale);
                    } else {
                        for (int64_t j = lo; j <= i; j++) {
                            double c = tanh((double)Sf[i * ldp + j] / a->softcap);
                            dr[j] = (float)((double)pr[j] * ((double)dr[j] - dot) * (1.0 - c * c) * a->scale);
                        }
                    }
                }
                /* dq += dS k ; dk += dSᵀ q */
                ATT_GEMM(m16, 0, 0, ni, hd, nj, 1.0f, dSb, (int)ldp, kf + j0 * ldk, ldk, 1.0f, dqf + i0 * hd, hd);
                ATT_GEMM(m16, 1, 0, nj, hd, ni, 1.0f, dSb, (int)ldp, qf + i0 * ldq, ldq, 1.0f, dkf + j0 * hd, hd);
            }
            if (gr.dqs) scatter_f(gr.dqs + (int64_t)h * hd, dqf, T, hd, QD);
            else scatter(gr.dq + (int64_t)h * hd, dqf, T, hd, QD, gr.write);
        }
        if (gr.dks) {
            scatter_f(gr.dks + (int64_t)kh * hd, dkf, T, hd, KVD);
            scatter_f(gr.dvs + (int64_t)kh * hd, dvf, T, hd, KVD);
        } else {
            scatter(gr.dk + (int64_t)kh * hd, dkf, T, hd, KVD, gr.write);
            scatter(gr.dv + (int64_t)kh * hd, dvf, T, hd, KVD, gr.write);
        }
        mm16_free(&m16s);
        free(sc);
    }
    heads_end(par);
    if (fail) return pl_error(PL_ERR_NOMEM, "attention backward: out of memory (%lld positions)", (long long)T);
    return PL_OK;
}

pl_status pl_tr_attn_bwd_f32(const pl_tr_attn *a, pl_real *dq, pl_real *dk, pl_real *dv, const pl_real *dz,
                             const float *P, const pl_real *q, const pl_real *k, const pl_real *v, int64_t T) {
    attn_in in = {q, k, v, NULL, NULL, NULL};
    attn_grads gr = {dq, dk, dv, NULL, NULL, NULL, dz, NULL, 0};
    return attn_bwd_core(a, gr, P, in, T);
}

pl_status pl_tr_attn_bwd_f32s(const pl_tr_attn *a, float *dq, float *dk, float *dv, const float *dz, const float *P,
                              const float *q, const float *k, const float *v, int64_t T) {
    attn_in in = {NULL, NULL, NULL, q, k, v};
    attn_grads gr = {NULL, NULL, NULL, dq, dk, dv, NULL, dz, 1};
    return attn_bwd_core(a, gr, P, in, T);
}

/* matmul.c — SIMD level dispatch, the scalar reference kernels, and the
 * OpenMP matmul driver for both paths (docs/kernels.md).
 *
 *   exact path:  Y[t][o] = sum_i dequant(W[o])[i] * X[t][i]
 *                W is dequantized a tile of rows at a time into per-thread
 *                scratch (never the whole matrix), then an f32 micro-kernel
 *                runs over (4 rows x 4 tokens) tiles.
 *   llama path:  Xq[t] = quantize(X[t]) to the weight's activation dtype;
 *                Y[t][o] = dotq(W[o], Xq[t]) with integer block sums.
 *                Levels with a tiled kernel for the dtype repack Xq once and
 *                W a tile of rows at a time, then run (4 rows x 2 or 4
 *                tokens) tiles; otherwise one dotq call per output.
 *   Both loop over token blocks sized to stay in L2 (token_block).
 *
 * Threads split output rows with a static schedule; every output is one
 * call of one kernel, and kernels give the same bits whatever the tile
 * shape, so results depend neither on the thread count nor on the batch.
 * The scalar kernels here are the references the SIMD files are tested
 * against; they accumulate f32/f16/bf16 dots in double.
 */
#include "tensor/tensor_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define H2F(h) pl_fp16_to_fp32(h)

/* ---- scalar llama-path dots ------------------------------------------- */

static float dot_f32_f32(const void *w, const void *x, int64_t n) {
    const float *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(a[i] * b[i]);
    return (float)s;
}

static float dot_f16_f16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(H2F(a[i]) * H2F(b[i]));
    return (float)s;
}

static float dot_bf16_bf16(const void *w, const void *x, int64_t n) {
    const uint16_t *a = w, *b = x;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)(pl_bf16_to_fp32(a[i]) * pl_bf16_to_fp32(b[i]));
    return (float)s;
}

/* sum_b sumi_b * dw_b * dx_b  with sumi_b = sum_j (q_j - 8) * x_j */
static float dot_q4_0_q8_0(const void *w, const void *xq, int64_t n) {
    const blk_q4_0 *a = w;
    const blk_q8_0 *b = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        int sumi = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            sumi += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j];
            sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK32 / 2];
        }
        s += (float)sumi * H2F(a[i].d) * H2F(b[i].d);
    }
    return s;
}

/* sum_b dw*dx*sumi + m_w * s_x  (s_x = dx * sum(qx)) */
static float dot_q4_1_q8_1(const void *w, const void *xq, int64_t n) {
    const blk_q4_1 *a = w;
    const blk_q8_1 *b = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        int sumi = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            sumi += (a[i].qs[j] & 0xF) * b[i].qs[j];
            sumi += (a[i].qs[j] >> 4) * b[i].qs[j + QK32 / 2];
        }
        s += (H2F(a[i].d) * H2F(b[i].d)) * (float)sumi + H2F(a[i].m) * H2F(b[i].s);
    }
    return s;
}

static float dot_q5_0_q8_0(const void *w, const void *xq, int64_t n) {
    const blk_q5_0 *a = w;
    const blk_q8_0 *b = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const int v0 = ((a[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
            const int v1 = ((a[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
            sumi += v0 * b[i].qs[j] + v1 * b[i].qs[j + QK32 / 2];
        }
        s += (float)sumi * H2F(a[i].d) * H2F(b[i].d);
    }
    return s;
}

static float dot_q5_1_q8_1(const void *w, const void *xq, int64_t n) {
    const blk_q5_1 *a = w;
    const blk_q8_1 *b = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        uint32_t qh;
        memcpy(&qh, a[i].qh, 4);
        int sumi = 0;
        for (int j = 0; j < QK32 / 2; j++) {
            const int v0 = (a[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            const int v1 = (a[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            sumi += v0 * b[i].qs[j] + v1 * b[i].qs[j + QK32 / 2];
        }
        s += (H2F(a[i].d) * H2F(b[i].d)) * (float)sumi + H2F(a[i].m) * H2F(b[i].s);
    }
    return s;
}

static float dot_q8_0_q8_0(const void *w, const void *xq, int64_t n) {
    const blk_q8_0 *a = w, *b = xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK32; i++) {
        int sumi = 0;
        for (int j = 0; j < QK32; j++) sumi += a[i].qs[j] * b[i].qs[j];
        s += (float)sumi * H2F(a[i].d) * H2F(b[i].d);
    }
    return s;
}

static float dot_q2_K(const void *w, const void *x, int64_t n) { return pl_ref_dotq_k(PL_DTYPE_Q2_K, w, x, n); }
static float dot_q3_K(const void *w, const void *x, int64_t n) { return pl_ref_dotq_k(PL_DTYPE_Q3_K, w, x, n); }
static float dot_q4_K(const void *w, const void *x, int64_t n) { return pl_ref_dotq_k(PL_DTYPE_Q4_K, w, x, n); }
static float dot_q5_K(const void *w, const void *x, int64_t n) { return pl_ref_dotq_k(PL_DTYPE_Q5_K, w, x, n); }
static float dot_q6_K(const void *w, const void *x, int64_t n) { return pl_ref_dotq_k(PL_DTYPE_Q6_K, w, x, n); }

/* ---- scalar exact-path pieces ----------------------------------------- */

#define DEQ_FN(T)                                                          \
    static void deq_##T(const void *s, float *d, int64_t n) { pl_ref_dequant(PL_DTYPE_##T, s, d, n); }
#define QNT_FN(T)                                                          \
    static void qnt_##T(const float *s, void *d, int64_t n) { pl_ref_quantize(PL_DTYPE_##T, s, d, n); }
DEQ_FN(F32) DEQ_FN(F16) DEQ_FN(BF16) DEQ_FN(Q4_0) DEQ_FN(Q4_1) DEQ_FN(Q5_0) DEQ_FN(Q5_1) DEQ_FN(Q8_0)
DEQ_FN(Q8_1) DEQ_FN(Q2_K) DEQ_FN(Q3_K) DEQ_FN(Q4_K) DEQ_FN(Q5_K) DEQ_FN(Q6_K) DEQ_FN(Q8_K)
QNT_FN(F32) QNT_FN(F16) QNT_FN(BF16) QNT_FN(Q8_0) QNT_FN(Q8_1) QNT_FN(Q8_K)

/* y[t*ldy + r] = dot(w row r, x row t), accumulated in double */
static void gemm_f32_scalar(const float *w, int64_t ldw, int nr, const float *x, int64_t ldx, int nt,
                            int64_t n, float *y, int64_t ldy) {
    for (int t = 0; t < nt; t++)
        for (int r = 0; r < nr; r++) y[t * ldy + r] = dot_f32_f32(w + r * ldw, x + t * ldx, n);
}

/* ---- scalar f32 vector kernels (attention) ---------------------------- */

static void f32_dots_scalar(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    for (int64_t j = 0; j < rows; j++) {
        const float *r = m + j * ld;
        float s = 0.0f;
        for (int64_t i = 0; i < n; i++) s += x[i] * r[i];
        y[j] = s;
    }
}

static void f32_wsum_scalar(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    for (int64_t j = 0; j < rows; j++) {
        const float a = w[j];
        if (a == 0.0f) continue;
        const float *r = m + j * ld;
        for (int64_t i = 0; i < n; i++) y[i] += a * r[i];
    }
}

static double f32_expsum_scalar(float *x, int64_t n, float sub) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float e = x[i] == -INFINITY ? 0.0f : expf(x[i] - sub);
        x[i] = e;
        s += (double)e;
    }
    return s;
}

static void f32_silu_mul_scalar(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void f32_rmsnorm_scalar(float *out, const float *x, const float *w, int64_t n, float eps) {
    double part[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) part[j] += (double)(x[i + j] * x[i + j]);
    for (; i < n; i++) part[0] += (double)(x[i] * x[i]);
    const double ss = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (i = 0; i < n; i++) out[i] = (x[i] * scale) * w[i];
}

static float f32_scores_scalar(float *x, int64_t n, int64_t lo, int64_t hi, float scale) {
    float mx = -INFINITY;
    for (int64_t p = 0; p < n; p++) {
        const float v = p >= lo && p <= hi ? x[p] * scale : -INFINITY;
        x[p] = v;
        if (v > mx) mx = v;
    }
    return mx;
}

static void f32_scale_scalar(float *x, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

static void f32_add_scalar(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

/* both styles: one multiply per term, then the difference / sum */
static void f32_rope_scalar(float *x, const float *cs, int64_t n_rot, int neox) {
    const int64_t half = n_rot / 2;
    if (!neox) {
        for (int64_t i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1], x0 = x[2 * i], x1 = x[2 * i + 1];
            const float a = x0 * c, b = x1 * s, e = x0 * s, f = x1 * c;
            x[2 * i] = a - b;
            x[2 * i + 1] = e + f;
        }
    } else {
        float *lo = x, *hi = x + half;
        for (int64_t i = 0; i < half; i++) {
            const float c = cs[2 * i], s = cs[2 * i + 1], x0 = lo[i], x1 = hi[i];
            const float a = x0 * c, b = x1 * s, e = x0 * s, f = x1 * c;
            lo[i] = a - b;
            hi[i] = e + f;
        }
    }
}

void pl_f32_rope(float *x, const float *cs, int64_t n_rot, int neox) { pl_kernels_active()->f32_rope(x, cs, n_rot, neox); }
void pl_f32_silu_mul(float *g, const float *u, int64_t n) { pl_kernels_active()->f32_silu_mul(g, u, n); }
float pl_f32_scores(float *x, int64_t n, int64_t lo, int64_t hi, float scale) {
    return pl_kernels_active()->f32_scores(x, n, lo, hi, scale);
}
void pl_f32_scale(float *x, int64_t n, float s) { pl_kernels_active()->f32_scale(x, n, s); }
void pl_f32_add(float *y, const float *x, int64_t n) { pl_kernels_active()->f32_add(y, x, n); }
void pl_f32_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    pl_kernels_active()->f32_rmsnorm(out, x, w, n, eps);
}

void pl_f32_dots(const float *x, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    pl_kernels_active()->f32_dots(x, m, ld, rows, n, y);
}
void pl_f32_wsum(const float *w, const float *m, int64_t ld, int64_t rows, int64_t n, float *y) {
    pl_kernels_active()->f32_wsum(w, m, ld, rows, n, y);
}
double pl_f32_exp_sum(float *x, int64_t n, float sub) { return pl_kernels_active()->f32_expsum(x, n, sub); }

void pl_kernels_scalar(pl_kernels *k) {
    memset(k, 0, sizeof *k);
    k->f32_dots = f32_dots_scalar;
    k->f32_wsum = f32_wsum_scalar;
    k->f32_expsum = f32_expsum_scalar;
    k->f32_silu_mul = f32_silu_mul_scalar;
    k->f32_rmsnorm = f32_rmsnorm_scalar;
    k->f32_scores = f32_scores_scalar;
    k->f32_scale = f32_scale_scalar;
    k->f32_add = f32_add_scalar;
    k->f32_rope = f32_rope_scalar;
    k->dequant[PL_DTYPE_F32] = deq_F32;
    k->dequant[PL_DTYPE_F16] = deq_F16;
    k->dequant[PL_DTYPE_BF16] = deq_BF16;
    k->dequant[PL_DTYPE_Q4_0] = deq_Q4_0;
    k->dequant[PL_DTYPE_Q4_1] = deq_Q4_1;
    k->dequant[PL_DTYPE_Q5_0] = deq_Q5_0;
    k->dequant[PL_DTYPE_Q5_1] = deq_Q5_1;
    k->dequant[PL_DTYPE_Q8_0] = deq_Q8_0;
    k->dequant[PL_DTYPE_Q8_1] = deq_Q8_1;
    k->dequant[PL_DTYPE_Q2_K] = deq_Q2_K;
    k->dequant[PL_DTYPE_Q3_K] = deq_Q3_K;
    k->dequant[PL_DTYPE_Q4_K] = deq_Q4_K;
    k->dequant[PL_DTYPE_Q5_K] = deq_Q5_K;
    k->dequant[PL_DTYPE_Q6_K] = deq_Q6_K;
    k->dequant[PL_DTYPE_Q8_K] = deq_Q8_K;
    k->dotq[PL_DTYPE_F32] = dot_f32_f32;
    k->dotq[PL_DTYPE_F16] = dot_f16_f16;
    k->dotq[PL_DTYPE_BF16] = dot_bf16_bf16;
    k->dotq[PL_DTYPE_Q4_0] = dot_q4_0_q8_0;
    k->dotq[PL_DTYPE_Q4_1] = dot_q4_1_q8_1;
    k->dotq[PL_DTYPE_Q5_0] = dot_q5_0_q8_0;
    k->dotq[PL_DTYPE_Q5_1] = dot_q5_1_q8_1;
    k->dotq[PL_DTYPE_Q8_0] = dot_q8_0_q8_0;
    k->dotq[PL_DTYPE_Q2_K] = dot_q2_K;
    k->dotq[PL_DTYPE_Q3_K] = dot_q3_K;
    k->dotq[PL_DTYPE_Q4_K] = dot_q4_K;
    k->dotq[PL_DTYPE_Q5_K] = dot_q5_K;
    k->dotq[PL_DTYPE_Q6_K] = dot_q6_K;
    k->quant_act[PL_DTYPE_F32] = qnt_F32;
    k->quant_act[PL_DTYPE_F16] = qnt_F16;
    k->quant_act[PL_DTYPE_BF16] = qnt_BF16;
    k->quant_act[PL_DTYPE_Q8_0] = qnt_Q8_0;
    k->quant_act[PL_DTYPE_Q8_1] = qnt_Q8_1;
    k->quant_act[PL_DTYPE_Q8_K] = qnt_Q8_K;
    k->gemm_f32 = gemm_f32_scalar;
}

/* ---- SIMD level selection ---------------------------------------------- */

static pl_kernels g_tables[3];
static atomic_int g_level = -1; /* -1: not chosen yet */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fill_tables(void) {
    pl_kernels_scalar(&g_tables[PL_SIMD_SCALAR]);
    g_tables[PL_SIMD_AVX2] = g_tables[PL_SIMD_SCALAR];
#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
    pl_kernels_avx2(&g_tables[PL_SIMD_AVX2]);
    g_tables[PL_SIMD_AVX512] = g_tables[PL_SIMD_AVX2];
    pl_kernels_avx512(&g_tables[PL_SIMD_AVX512]);
#else
    g_tables[PL_SIMD_AVX512] = g_tables[PL_SIMD_SCALAR];
#endif
}

/* the tables are filled once, whichever thread gets here first */
static void init_tables(void) { pthread_once(&g_once, fill_tables); }

pl_simd pl_simd_detected(void) {
#if defined(__x86_64__) && !defined(PL_FUZZ_NO_SIMD)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16"))
        return PL_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return PL_SIMD_AVX2;
#endif
    return PL_SIMD_SCALAR;
}

const char *pl_simd_name(pl_simd level) {
    switch (level) {
    case PL_SIMD_SCALAR: return "scalar";
    case PL_SIMD_AVX2: return "avx2";
    case PL_SIMD_AVX512: return "avx512";
    }
    return "invalid";
}

pl_status pl_simd_from_name(const char *name, pl_simd *out) {
    for (int l = PL_SIMD_SCALAR; l <= PL_SIMD_AVX512; l++) {
        if (name && strcasecmp(name, pl_simd_name((pl_simd)l)) == 0) {
            *out = (pl_simd)l;
            return PL_OK;
        }
    }
    return pl_error(PL_ERR_INVALID, "PL_SIMD: unknown level '%s' (scalar, avx2, avx512)", name ? name : "(null)");
}

pl_status pl_simd_set(pl_simd level) {
    if ((int)level < PL_SIMD_SCALAR || level > PL_SIMD_AVX512)
        return pl_error(PL_ERR_INVALID, "SIMD level %d is not a level", (int)level);
    if (level > pl_simd_detected())
        return pl_error(PL_ERR_UNSUPPORTED, "SIMD level %s is not supported by this CPU (best: %s)",
                        pl_simd_name(level), pl_simd_name(pl_simd_detected()));
    init_tables();
    atomic_store(&g_level, (int)level);
    return PL_OK;
}

pl_simd pl_simd_active(void) {
    int l = atomic_load(&g_level);
    if (l >= 0) return (pl_simd)l;
    pl_simd det = pl_simd_detected(), want = det;
    const char *env = getenv("PL_SIMD");
    if (env && *env) {
        pl_simd req;
        if (pl_simd_from_name(env, &req) != PL_OK) {
            pl_log(PL_LOG_WARN, "PL_SIMD=%s is not scalar|avx2|avx512; using %s", env, pl_simd_name(det));
        } else if (req > det) {
            pl_log(PL_LOG_WARN, "PL_SIMD=%s: this CPU supports at most %s", env, pl_simd_name(det));
        } else {
            want = req;
        }
    }
    init_tables();
    int expected = -1;
    atomic_compare_exchange_strong(&g_level, &expected, (int)want);
    return (pl_simd)atomic_load(&g_level);
}

const pl_kernels *pl_kernels_active(void) {
    pl_simd l = pl_simd_active();
    return &g_tables[l];
}

/* ---- public dots -------------------------------------------------------- */

pl_status pl_llama_act_dtype(pl_dtype t, pl_dtype *act) {
    switch (t) {
    case PL_DTYPE_F32: case PL_DTYPE_F16: case PL_DTYPE_BF16: *act = t; return PL_OK;
    case PL_DTYPE_Q4_0: case PL_DTYPE_Q5_0: case PL_DTYPE_Q8_0: *act = PL_DTYPE_Q8_0; return PL_OK;
    case PL_DTYPE_Q4_1: case PL_DTYPE_Q5_1: *act = PL_DTYPE_Q8_1; return PL_OK;
    case PL_DTYPE_Q2_K: case PL_DTYPE_Q3_K: case PL_DTYPE_Q4_K: case PL_DTYPE_Q5_K: case PL_DTYPE_Q6_K:
        *act = PL_DTYPE_Q8_K;
        return PL_OK;
    default:
        return pl_error(PL_ERR_UNSUPPORTED, "llama path: no activation dtype for %s weights", pl_dtype_name(t));
    }
}

pl_status pl_vec_dot(pl_dtype t, const void *w, const float *x, int64_t n, float *out) {
    size_t bytes;
    pl_status st = pl_dtype_row_bytes(t, n, &bytes);
    if (st != PL_OK) return pl_error_wrap(st, "vec_dot");
    if (n == 0) { *out = 0; return PL_OK; }
    float y;
    st = pl_matmul(PL_MATMUL_EXACT, t, w, 1, n, x, 1, &y, NULL, 0);
    if (st == PL_OK) *out = y;
    return st;
}

pl_status pl_vec_dot_llama(pl_dtype t, const void *w, const void *xq, int64_t n, float *out) {
    pl_dtype act;
    size_t bytes;
    pl_status st = pl_llama_act_dtype(t, &act);
    if (st != PL_OK) return st;
    if ((st = pl_dtype_row_bytes(t, n, &bytes)) != PL_OK) return pl_error_wrap(st, "vec_dot_llama");
    if ((st = pl_dtype_row_bytes(act, n, &bytes)) != PL_OK) return pl_error_wrap(st, "vec_dot_llama");
    const pl_kernels *k = pl_kernels_active();
    if (n == 0) {
        *out = 0.0f;
    } else if (t == PL_DTYPE_F32) {
        return pl_vec_dot(t, w, xq, n, out); /* the llama path of f32 is the exact path */
    } else if (k->tiled[t].tile) {
        /* same kernel (and bits) as pl_matmul's tiled path */
        const pl_tiled_kernels *tk = &k->tiled[t];
        uint8_t *xp = tk->xprep ? pl_alloc_aligned(tk->xprep_bytes(n)) : NULL;
        uint8_t *wp = tk->wprep ? pl_alloc_aligned(tk->wprep_bytes(n)) : NULL;
        if ((tk->xprep && !xp) || (tk->wprep && !wp)) {
            pl_free_aligned(xp);
            pl_free_aligned(wp);
            return pl_error(PL_ERR_NOMEM, "vec_dot_llama: cannot allocate repack buffers");
        }
        if (tk->xprep) tk->xprep(t, xq, xp, n);
        if (tk->wprep) tk->wprep(w, wp, n);
        tk->tile(wp ? wp : (const uint8_t *)w, 0, 1, xp ? xp : (const uint8_t *)xq, 0, 1, n, out, 1);
        pl_free_aligned(xp);
        pl_free_aligned(wp);
    } else {
        *out = k->dotq[t](w, xq, n);
    }
    return PL_OK;
}

/* ---- matmul driver ------------------------------------------------------ */

#define ROW_TILE 16 /* rows dequantized at a time per thread (exact path) */
#define MR 4        /* micro-kernel rows */
#define MT 4        /* micro-kernel tokens */

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Tokens per block so that a block of activation rows (row_bytes each) takes
 * about TOKEN_BLOCK_BYTES: it then stays in L2 while a thread walks its row
 * tiles. A multiple of 4 (the micro-kernels' token count), at least 4. Only
 * changes the loop order: every (row, token) is still one kernel call. */
#define TOKEN_BLOCK_BYTES (768u * 1024u)
static int64_t token_block(size_t row_bytes) {
    int64_t tb = (int64_t)(TOKEN_BLOCK_BYTES / (row_bytes ? row_bytes : 1));
    tb &= ~(int64_t)3;
    return tb < 4 ? 4 : tb;
}

/* Scratch layout:
 *   exact:        [per thread: ROW_TILE dequantized f32 rows]   (none for f32)
 *   llama:        [n_tok quantized activation rows]
 *   llama tiled:  [n_tok repacked activation rows][per thread: one q8_0 row,
 *                  a tile of repacked weight rows]                            */
typedef struct {
    int tiled, ksliced;
    int64_t row_tile;
    size_t act_row, act_total, per_thread, wprep_row, acc_bytes, total;
} plan;

/* Exact path cache blocking over n_in: slices of KC elements, so a slice of
 * a row tile (16 x KC f32) and of a token quad (4 x KC) stay in L1. */
#define KC 512
static int64_t exact_token_block(int64_t n_in) {
    const int64_t tb = token_block((size_t)n_in * sizeof(float));
    return tb < 128 ? tb : 128;
}

static int64_t tiled_row_tile(int64_t n_out) { return n_out >= 1024 ? 64 : 16; }

static int scratch_plan(const pl_kernels *k, pl_matmul_path path, pl_dtype t, int64_t n_out, int64_t n_in,
                        int64_t n_tok, int nthreads, plan *p) {
    memset(p, 0, sizeof *p);
    p->row_tile = ROW_TILE;
    if (path == PL_MATMUL_LLAMA) {
        pl_dtype act;
        if (pl_llama_act_dtype(t, &act) != PL_OK) return 0;
        if (act == PL_DTYPE_F32) return 1;
        if (pl_dtype_row_bytes(act, n_in, &p->act_row) != PL_OK) return 0;
        if (k->tiled[t].tile) {
            const pl_tiled_kernels *tk = &k->tiled[t];
            size_t a, xpb = tk->xprep ? tk->xprep_bytes(n_in) : p->act_row;
            p->tiled = 1;
            p->row_tile = tiled_row_tile(n_out);
            p->wprep_row = tk->wprep ? tk->wprep_bytes(n_in) : 0; /* no wprep: rows used in place */
            if (!pl_mul_ok(xpb, (size_t)n_tok, &p->act_total)) return 0;
            if (!pl_mul_ok(p->wprep_row, (size_t)p->row_tile, &a)) return 0;
            if (!pl_add_ok(round64(p->act_row), round64(a), &p->per_thread)) return 0;
        } else if (!pl_mul_ok(p->act_row, (size_t)n_tok, &p->act_total)) {
            return 0;
        }
        p->act_total = round64(p->act_total);
    } else {
        if (t != PL_DTYPE_F32) {
            if (!pl_mul_ok((size_t)n_in, ROW_TILE * sizeof(float), &p->per_thread)) return 0;
            p->per_thread = round64(p->per_thread);
        }
        if (k->gemm_f32k && n_in > KC) { /* k-sliced accumulators: ROW_TILE x token block x 16 lanes */
            p->ksliced = 1;
            p->acc_bytes = (size_t)ROW_TILE * (size_t)exact_token_block(n_in) * 16 * sizeof(float);
            if (!pl_add_ok(p->per_thread, p->acc_bytes, &p->per_thread)) return 0;
        }
    }
    size_t all;
    if (!pl_mul_ok(p->per_thread, (size_t)nthreads, &all)) return 0;
    return pl_add_ok(p->act_total, all, &p->total);
}

size_t pl_matmul_scratch_bytes(pl_matmul_path path, pl_dtype t, int64_t n_out, int64_t n_in, int64_t n_tok) {
    plan p;
    if (!pl_dtype_valid((int)t) || n_in < 0 || n_tok < 0 || n_out < 0) return 0;
    if (!scratch_plan(pl_kernels_active(), path, t, n_out, n_in, n_tok, pl_num_threads(), &p)) return 0;
    return p.total;
}

pl_status pl_matmul(pl_matmul_path path, pl_dtype t, const void *W, int64_t n_out, int64_t n_in,
                    const float *X, int64_t n_tok, float *Y, void *scratch, size_t scratch_bytes) {
    size_t wrow;
    pl_status st;
    if (path != PL_MATMUL_EXACT && path != PL_MATMUL_LLAMA)
        return pl_error(PL_ERR_INVALID, "matmul: unknown path %d", (int)path);
    if ((st = pl_dtype_row_bytes(t, n_in, &wrow)) != PL_OK) return pl_error_wrap(st, "matmul weight");
    if (n_out < 0 || n_tok < 0) return pl_error(PL_ERR_INVALID, "matmul: negative shape");
    if (n_out == 0 || n_tok == 0) return PL_OK;
    if (!W || !X || !Y) return pl_error(PL_ERR_INVALID, "matmul: NULL buffer");
    size_t ysz;
    if (!pl_mul_ok((size_t)n_out, (size_t)n_tok, &ysz) || ysz > PTRDIFF_MAX / sizeof(float))
        return pl_error(PL_ERR_INVALID, "matmul: output %lld x %lld overflows", (long long)n_tok, (long long)n_out);
    pl_dtype act = t;
    if (path == PL_MATMUL_LLAMA && (st = pl_llama_act_dtype(t, &act)) != PL_OK) return st;
    if (n_in == 0) { /* empty sums */
        memset(Y, 0, ysz * sizeof(float));
        return PL_OK;
    }
    const int nthreads = pl_num_threads();
    const pl_kernels *k = pl_kernels_active();
    plan pl;
    if (!scratch_plan(k, path, t, n_out, n_in, n_tok, nthreads, &pl))
        return pl_error(PL_ERR_INVALID, "matmul: %s [%lld x %lld] by %lld tokens: scratch size overflows",
                        pl_dtype_name(t), (long long)n_out, (long long)n_in, (long long)n_tok);
    const size_t need = pl.total, act_row = pl.act_row, tile_bytes = pl.per_thread;
    void *own = NULL;
    if (need > 0) {
        if (!scratch) {
            own = scratch = pl_alloc_aligned(need);
            if (!own) return pl_error(PL_ERR_NOMEM, "matmul: cannot allocate %zu bytes of scratch", need);
        } else if (scratch_bytes < need || ((uintptr_t)scratch & 63)) {
            return pl_error(PL_ERR_INVALID, "matmul: scratch of %zu bytes (need %zu, 64-byte aligned)",
                            scratch_bytes, need);
        }
    }
    const uint8_t *wb = W;
    /* small products run on the calling thread (same kernels, same bits) */
    const int parallel = nthreads > 1 && (double)n_out * (double)n_in * (double)n_tok >= 65536.0;

    if (pl.tiled) {
        const pl_tiled_kernels *tk = &k->tiled[t];
        const pl_wprep_fn wprep = tk->wprep;
        const size_t xpb = tk->xprep ? tk->xprep_bytes(n_in) : act_row, wpb = wprep ? pl.wprep_row : wrow;
        const int64_t rt = pl.row_tile;
        uint8_t *xp = scratch;
        const pl_quant_fn quant = k->quant_act[act];
        #pragma omp parallel num_threads(nthreads) if (parallel)
        {
#ifdef _OPENMP
            const int tid = omp_get_thread_num();
#else
            const int tid = 0;
#endif
            uint8_t *qtmp = (uint8_t *)scratch + pl.act_total + (size_t)tid * pl.per_thread;
            uint8_t *wtile = qtmp + round64(act_row);
            #pragma omp for schedule(static)
            for (int64_t tk_ = 0; tk_ < n_tok; tk_++) {
                if (tk->xprep) {
                    quant(X + tk_ * n_in, qtmp, n_in);
                    tk->xprep(t, qtmp, xp + (size_t)tk_ * xpb, n_in);
                } else {
                    quant(X + tk_ * n_in, xp + (size_t)tk_ * xpb, n_in);
                }
            }
            /* token blocks small enough to stay in L2 while a thread walks
             * its row tiles (weights are repacked again per block) */
            const int64_t tb = token_block(xpb);
            for (int64_t b0 = 0; b0 < n_tok; b0 += tb) {
            const int64_t b1 = b0 + tb < n_tok ? b0 + tb : n_tok;
            #pragma omp for schedule(static) nowait /* blocks write disjoint outputs */
            for (int64_t o0 = 0; o0 < n_out; o0 += rt) {
                const int64_t o1 = o0 + rt < n_out ? o0 + rt : n_out;
                const uint8_t *wt = wtile;
                if (tk->direct && b1 - b0 == 1) { /* one token: skip the repack (same bits) */
                    tk->direct(wb + (size_t)o0 * wrow, wrow, (int)(o1 - o0), xp + (size_t)b0 * xpb, n_in, Y + b0 * n_out + o0);
                    continue;
                }
                if (wprep)
                    for (int64_t o = o0; o < o1; o++) wprep(wb + (size_t)o * wrow, wtile + (size_t)(o - o0) * wpb, n_in);
                else
                    wt = wb + (size_t)o0 * wrow;
                for (int64_t t0 = b0; t0 < b1; t0 += tk->max_nt) {
                    const int nt = (int)(b1 - t0 < tk->max_nt ? b1 - t0 : tk->max_nt);
                    for (int64_t r0 = o0; r0 < o1; r0 += MR) {
                        const int nr = (int)(o1 - r0 < MR ? o1 - r0 : MR);
                        tk->tile(wt + (size_t)(r0 - o0) * wpb, wpb, nr, xp + (size_t)t0 * xpb, xpb, nt, n_in,
                                 Y + t0 * n_out + r0, n_out);
                    }
                }
            }
            }
        }
    } else if (path == PL_MATMUL_LLAMA && act != PL_DTYPE_F32) {
        uint8_t *xq = scratch;
        const pl_quant_fn quant = k->quant_act[act];
        const pl_dotq_fn dot = k->dotq[t];
        #pragma omp parallel num_threads(nthreads) if (parallel)
        {
            #pragma omp for schedule(static)
            for (int64_t tk = 0; tk < n_tok; tk++) quant(X + tk * n_in, xq + (size_t)tk * act_row, n_in);
            #pragma omp for schedule(static)
            for (int64_t o0 = 0; o0 < n_out; o0 += ROW_TILE) {
                const int64_t o1 = o0 + ROW_TILE < n_out ? o0 + ROW_TILE : n_out;
                for (int64_t tk = 0; tk < n_tok; tk++) {
                    const uint8_t *xr = xq + (size_t)tk * act_row;
                    for (int64_t o = o0; o < o1; o++) Y[tk * n_out + o] = dot(wb + (size_t)o * wrow, xr, n_in);
                }
            }
        }
    } else {
        /* exact path (and the llama path for f32 weights, which is the same) */
        uint8_t *tiles = scratch;
        #pragma omp parallel num_threads(nthreads) if (parallel)
        {
#ifdef _OPENMP
            const int tid = omp_get_thread_num();
#else
            const int tid = 0;
#endif
            float *tile = t == PL_DTYPE_F32 ? NULL : (float *)(tiles + (size_t)tid * tile_bytes);
            float *accb = pl.ksliced ? (float *)(tiles + (size_t)tid * tile_bytes + (tile_bytes - pl.acc_bytes)) : NULL;
            const int64_t tb = pl.ksliced ? exact_token_block(n_in) : token_block((size_t)n_in * sizeof(float));
            for (int64_t b0 = 0; b0 < n_tok; b0 += tb) {
            const int64_t b1 = b0 + tb < n_tok ? b0 + tb : n_tok;
            #pragma omp for schedule(static) nowait /* blocks write disjoint outputs */
            for (int64_t o0 = 0; o0 < n_out; o0 += ROW_TILE) {
                const int64_t o1 = o0 + ROW_TILE < n_out ? o0 + ROW_TILE : n_out;
                const float *wf;
                if (t == PL_DTYPE_F32) {
                    wf = (const float *)(wb + (size_t)o0 * wrow);
                } else {
                    for (int64_t o = o0; o < o1; o++) k->dequant[t](wb + (size_t)o * wrow, tile + (o - o0) * n_in, n_in);
                    wf = tile;
                }
                if (pl.ksliced) {
                    /* same per-lane sums as one gemm_f32 call, in L1-sized slices */
                    for (int64_t k0 = 0; k0 < n_in; k0 += KC) {
                        const int64_t k1 = k0 + KC < n_in ? k0 + KC : n_in;
                        for (int64_t t0 = b0; t0 < b1; t0 += MT) {
                            const int nt = (int)(b1 - t0 < MT ? b1 - t0 : MT);
                            for (int64_t r0 = o0; r0 < o1; r0 += MR) {
                                const int nr = (int)(o1 - r0 < MR ? o1 - r0 : MR);
                                float *ab = accb + (((t0 - b0) / MT) * (ROW_TILE / MR) + (r0 - o0) / MR) * (MR * MT * 16);
                                k->gemm_f32k(wf + (r0 - o0) * n_in, n_in, nr, X + t0 * n_in, n_in, nt, k0, k1, n_in, ab,
                                             Y + t0 * n_out + r0, n_out);
                            }
                        }
                    }
                    continue;
                }
                for (int64_t t0 = b0; t0 < b1; t0 += MT) {
                    const int nt = (int)(b1 - t0 < MT ? b1 - t0 : MT);
                    for (int64_t r0 = o0; r0 < o1; r0 += MR) {
                        const int nr = (int)(o1 - r0 < MR ? o1 - r0 : MR);
                        k->gemm_f32(wf + (r0 - o0) * n_in, n_in, nr, X + t0 * n_in, n_in, nt, n_in,
                                    Y + t0 * n_out + r0, n_out);
                    }
                }
            }
            }
        }
    }
    pl_free_aligned(own);
    return PL_OK;
}

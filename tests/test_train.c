/* test_train.c — training: every backward kernel against central finite
 * differences in double, whole tiny models (Llama 3.1 / Mistral / Gemma 2
 * shapes) against finite differences and against PyTorch + PEFT reference
 * vectors (tests/data/train/, made by tools/ref/train_vectors.py), the
 * training forward against the model module's pl_forward, and AdamW.
 *
 * Finite differences: f(x + h) - f(x - h) / 2h with h = 1e-5 in double;
 * truncation error O(h^2 f''') ~ 1e-10 and rounding ~1e-16/h ~ 1e-11 on
 * O(1) values, so gradients agree to ~1e-7 relative unless wrong.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "data/data.h"
#include "eval/eval.h"
#include "harness.h"
#include "io/io.h"
#include "model/model.h"
#include "prompt/prompt.h"
#include "tokenizer/tokenizer.h"
#include "tensor/tensor.h"
#include "train/train.h"

/* central-difference step and the agreement we require (see above) */
#define FD_H 1e-5
#define FD_TOL 1e-6
/* PyTorch (fp32) vs our double pass: fp32 rounding ~1e-7 relative per op,
 * accumulated over two layers; the task's required agreement. */
#define TOL_LOSS 1e-5
#define TOL_GRAD 1e-4
#define TOL_TRAJ 1e-4
/* The f32 path (frozen-weight products in float32) against the double
 * reference on the same model: loss and every LoRA/head gradient (relative
 * to its tensor's largest). float32 products round each input to 2^-24
 * relative and accumulate over at most a few hundred terms per layer. */
#define TOL_F32_LOSS 1e-4
#define TOL_F32_GRAD 1e-4
/* ... and against PyTorch (fp32): the same agreement as the double path. */
#define TOL_F32_PT_LOSS 1e-5
#define TOL_F32_PT_GRAD 1e-4
/* The BLAS kernels on double data (dense, LoRA, attention) against the
 * scalar loops: only the summation order differs. */
#define TOL_BLAS 1e-12
/* attention with f32 products (bf16 precision): sums of up to 150 terms in
 * f32 (<= 150 * 2^-24 ~ 9e-6 of the summed magnitudes), chained through the
 * softmax and two products in the backward */
#define TOL_ATT_F32 1e-5
#define TOL_ATT_BF16 1e-2 /* the same on bf16 tiles (operands rounded to 8 bits) */

/* Precision of the trainers the fixtures build: the double reference for the
 * finite-difference and PyTorch checks unless a test switches it. */
static pl_precision g_prec = PL_PREC_F64;
static double g_tol_loss = TOL_LOSS, g_tol_grad = TOL_GRAD;

static pl_rng g_rng;

static void fill(pl_real *x, int64_t n, double scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * (2.0 * pl_rng_uniform(&g_rng) - 1.0);
}

/* Compare analytic vs numeric gradient; error relative to max(1, |values|) scale. */
static int grad_close(const char *what, const pl_real *got, const pl_real *want, int64_t n, double tol) {
    double scale = 1e-3;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    double worst = 0.0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / scale;
        if (e > worst || isnan(e)) {
            worst = e;
            wi = i;
        }
    }
    int ok = worst <= tol;
    CHECK(ok, "%s: worst rel error %.3g at %lld (got %.10g want %.10g, tol %g)", what, worst, (long long)wi, got[wi],
          want[wi], tol);
    return ok;
}

/* ---- generic finite differences over a scalar function ------------------- */

typedef double (*scalar_fn)(void *ctx);

static void numgrad(scalar_fn f, void *ctx, pl_real *x, int64_t n, pl_real *g) {
    for (int64_t i = 0; i < n; i++) {
        double old = x[i];
        x[i] = old + FD_H;
        double fp = f(ctx);
        x[i] = old - FD_H;
        double fm = f(ctx);
        x[i] = old;
        g[i] = (fp - fm) / (2 * FD_H);
    }
}

static double dotp(const pl_real *a, const pl_real *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* ---- RMSNorm ------------------------------------------------------------- */

typedef struct {
    pl_real *x, *w, *R, *y, *rs;
    int T, n;
} rms_ctx;

static double rms_f(void *c_) {
    rms_ctx *c = c_;
    pl_tr_rmsnorm_fwd(c->y, c->rs, c->x, c->w, c->T, c->n, 1e-5);
    return dotp(c->y, c->R, (int64_t)c->T * c->n);
}

static void test_rmsnorm(void) {
    enum { T = 3, N = 7 };
    pl_real x[T * N], w[N], R[T * N], y[T * N], rs[T], dx[T * N] = {0}, dw[N] = {0}, nx[T * N], nw[N];
    fill(x, T * N, 1.5);
    fill(w, N, 1.0);
    fill(R, T * N, 1.0);
    rms_ctx c = {x, w, R, y, rs, T, N};
    rms_f(&c);
    pl_tr_rmsnorm_bwd(dx, dw, R, x, rs, w, T, N);
    numgrad(rms_f, &c, x, T * N, nx);
    numgrad(rms_f, &c, w, N, nw);
    grad_close("rmsnorm dx", dx, nx, T * N, FD_TOL);
    grad_close("rmsnorm dw", dw, nw, N, FD_TOL);
}

/* ---- RoPE ------------------------------------------------------------------ */

typedef struct {
    pl_real *x, *R, *y, *inv;
    int32_t *pos;
    int T, H, hd, neox;
} rope_ctx;

static double rope_f(void *c_) {
    rope_ctx *c = c_;
    int64_t n = (int64_t)c->T * c->H * c->hd;
    memcpy(c->y, c->x, (size_t)n * sizeof *c->y);
    pl_tr_rope_fwd(c->y, c->T, c->H, c->hd, c->hd, c->pos, c->inv, c->neox);
    return dotp(c->y, c->R, n);
}

static void test_rope(void) {
    enum { T = 5, H = 2, HD = 8, N = T * H * HD };
    /* llama3-style factors: 1 for high frequencies, smoothed, then 8 */
    const float factors[HD / 2] = {1.0f, 2.3f, 8.0f, 8.0f};
    pl_real x[N], R[N], y[N], dx[N], nx[N], inv[HD / 2];
    int32_t pos[T] = {0, 1, 7, 100, 3};
    pl_tr_rope_inv_freq(inv, HD, 10000.0, factors);
    CHECK_NEAR(inv[1], pow(10000.0, -2.0 / 8) / (double)2.3f, 1e-15);
    for (int neox = 0; neox < 2; neox++) {
        fill(x, N, 1.0);
        fill(R, N, 1.0);
        rope_ctx c = {x, R, y, inv, pos, T, H, HD, neox};
        rope_f(&c);
        memcpy(dx, R, sizeof dx);
        pl_tr_rope_bwd(dx, T, H, HD, HD, pos, inv, neox);
        numgrad(rope_f, &c, x, N, nx);
        grad_close(neox ? "rope neox dx" : "rope adjacent-pair dx", dx, nx, N, FD_TOL);
        /* the table form (the trainer's): the same rotations both ways */
        pl_real cs[T * HD], y2[N], dx2[N];
        rope_f(&c); /* y at x again (numgrad left it at a probe) */
        pl_tr_rope_table(cs, pos, T, HD, inv);
        memcpy(y2, x, sizeof y2);
        pl_tr_rope_apply_table(y2, T, H, HD, HD, cs, neox, 0);
        memcpy(dx2, R, sizeof dx2);
        pl_tr_rope_apply_table(dx2, T, H, HD, HD, cs, neox, 1);
        double md = 0;
        for (int i = 0; i < N; i++) md = fmax(md, fmax(fabs(y2[i] - y[i]), fabs(dx2[i] - dx[i])));
        CHECK(md < 1e-15, "rope table (neox %d) differs from the direct rotation by %g", neox, md);
    }
    /* float storage (pl_tr_rope_apply_table_f): the AVX-512 rows give the
     * scalar loop's bits (both layouts, both directions, partial rotary
     * dims with a half not a multiple of 8) */
    {
        enum { T2 = 7, H2 = 3, HD2 = 40, N2 = T2 * H2 * HD2 };
        const int rots[2] = {HD2, 12};
        int32_t pos2[T2] = {0, 1, 5, 9, 300, 4096, 17};
        pl_real inv2[HD2 / 2], cs2[T2 * HD2];
        static float xa[N2], xb[N2];
        for (int ri = 0; ri < 2; ri++) {
            const int nr = rots[ri];
            pl_tr_rope_inv_freq(inv2, nr, 10000.0, NULL);
            pl_tr_rope_table(cs2, pos2, T2, nr, inv2);
            for (int neox = 0; neox < 2; neox++)
                for (int inverse = 0; inverse < 2; inverse++) {
                    for (int i = 0; i < N2; i++) xa[i] = xb[i] = (float)sin(0.37 * i + ri) * 3.0f;
                    pl_tr_rope_apply_table_f(xa, T2, H2, HD2, nr, cs2, neox, inverse);
                    const pl_simd lvl = pl_simd_active();
                    CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
                    pl_tr_rope_apply_table_f(xb, T2, H2, HD2, nr, cs2, neox, inverse);
                    CHECK_OK(pl_simd_set(lvl));
                    CHECK(memcmp(xa, xb, sizeof xa) == 0, "rope on float storage (rot %d, neox %d, inverse %d): %s "
                          "differs from the scalar loop", nr, neox, inverse, pl_simd_name(lvl));
                }
        }
    }
    /* the bf16 precision's RMSNorm rows (float output; the backward with 8
     * partials) at the detected level and on scalar: the same bits, rows of
     * 576 and 100 (a masked tail) */
    for (int ni = 0; ni < 2; ni++) {
        enum { RT3 = 5 };
        const int n = ni ? 100 : 576;
        pl_real *xs3 = malloc(sizeof(pl_real) * RT3 * n), *w = malloc(sizeof(pl_real) * n),
                *dy = malloc(sizeof(pl_real) * RT3 * n), *dx3[2], rs[2][RT3];
        float *y3[2];
        for (int i = 0; i < RT3 * n; i++) {
            xs3[i] = sin(0.11 * i) * 2.5;
            dy[i] = cos(0.07 * i + 1);
        }
        for (int i = 0; i < n; i++) w[i] = 0.5 + 0.01 * (i % 37);
        const pl_simd lvl = pl_simd_active();
        for (int c = 0; c < 2; c++) {
            y3[c] = malloc(sizeof(float) * RT3 * n);
            dx3[c] = malloc(sizeof(pl_real) * RT3 * n);
            for (int i = 0; i < RT3 * n; i++) dx3[c][i] = 0.25 * sin(0.5 * i);
            if (c) CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
            pl_tr_rmsnorm_fwd_f(y3[c], rs[c], xs3, w, RT3, n, 1e-5);
            pl_tr_rmsnorm_bwd8(dx3[c], NULL, dy, xs3, rs[c], w, RT3, n);
            CHECK_OK(pl_simd_set(lvl));
        }
        CHECK(memcmp(y3[0], y3[1], sizeof(float) * RT3 * n) == 0 && memcmp(rs[0], rs[1], sizeof rs[0]) == 0 &&
                  memcmp(dx3[0], dx3[1], sizeof(pl_real) * RT3 * n) == 0,
              "RMSNorm rows (n %d): %s differs from the scalar loops", n, pl_simd_name(lvl));
        for (int c = 0; c < 2; c++) {
            free(y3[c]);
            free(dx3[c]);
        }
        free(xs3);
        free(w);
        free(dy);
    }
    /* the attention backward's dS row (pl_tr_attn_ds_row) at the detected
     * level and on scalar: the bits of the formula (8 partials by lane j % 8,
     * fixed reduction) */
    for (int lvl = 0; lvl < 2; lvl++) {
        const pl_simd was = pl_simd_active();
        if (lvl) CHECK_OK(pl_simd_set(PL_SIMD_SCALAR));
        const int lens[] = {1, 7, 8, 9, 64, 150};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const int n = lens[li];
            float d[150], p[150], want[150];
            for (int j = 0; j < n; j++) {
                d[j] = (float)sin(1.3 * j + n);
                p[j] = (float)(0.5 + 0.5 * cos(0.7 * j));
            }
            double q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int j = 0; j < n; j++) q[j & 7] += (double)d[j] * (double)p[j];
            const double dot = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
            for (int j = 0; j < n; j++) want[j] = (float)((double)p[j] * ((double)d[j] - dot) * 0.125);
            pl_tr_attn_ds_row(d, p, n, 0.125);
            CHECK(memcmp(d, want, (size_t)n * sizeof *d) == 0, "attention dS row (n %d, %s) differs from the formula", n,
                  pl_simd_name(pl_simd_active()));
        }
        CHECK_OK(pl_simd_set(was));
    }
    /* the two layouts are the same rotation on permuted coordinates */
    pl_real a[HD], b[HD];
    fill(a, HD, 1.0);
    for (int i = 0; i < HD / 2; i++) {
        b[i] = a[2 * i];
        b[i + HD / 2] = a[2 * i + 1];
    }
    int32_t p1[1] = {13};
    pl_tr_rope_fwd(a, 1, 1, HD, HD, p1, inv, 0);
    pl_tr_rope_fwd(b, 1, 1, HD, HD, p1, inv, 1);
    double md = 0;
    for (int i = 0; i < HD / 2; i++) md = fmax(md, fmax(fabs(b[i] - a[2 * i]), fabs(b[i + HD / 2] - a[2 * i + 1])));
    CHECK(md < 1e-14, "rope layouts disagree by %g", md);
}

/* ---- softmax, softcap, GLU, xent -------------------------------------------- */

typedef struct {
    pl_real *x, *x2, *R, *y, *s;
    int64_t n;
    int kind; /* 0 softmax rows of 6, 1 softcap, 2 silu glu, 3 gelu glu, 4/5 the same with the saved term */
} ew_ctx;

static double ew_f(void *c_) {
    ew_ctx *c = c_;
    if (c->kind == 0) pl_tr_softmax_fwd(c->y, c->x, c->n / 6, 6);
    else if (c->kind == 1) pl_tr_softcap_fwd(c->y, c->x, c->n, 2.5);
    else if (c->kind <= 3) pl_tr_glu_fwd(c->y, c->x, c->x2, c->n, c->kind == 2 ? PL_ACT_SILU : PL_ACT_GELU_TANH);
    else pl_tr_glu_fwd_s(c->y, c->s, c->x, c->x2, c->n, c->kind == 4 ? PL_ACT_SILU : PL_ACT_GELU_TANH);
    return dotp(c->y, c->R, c->n);
}

static uint16_t want_bf16(double d) {
    float f = (float)d;
    if (fpclassify(f) == FP_SUBNORMAL && pl_simd_active() == PL_SIMD_AVX512) return signbit(f) ? 0x8000 : 0;
    return pl_fp32_to_bf16(f);
}

/* pl_tr_exp_arr against libm's exp: random inputs over the whole range and
 * the edges (over/underflow, infinities, NaN); lengths that leave a tail. */
static void test_exp_arr(void) {
    enum { NX = 1003 };
    static pl_real x[NX], y[NX];
    const double edge[] = {0.0, -0.0, 1e-300, -1e-300, 700.0, -700.0, 700.5, -700.5, 709.7, 709.8, -745.0,
                           -746.0, -708.5, INFINITY, -INFINITY, NAN, 0.34657359, -0.34657359};
    int ne = (int)(sizeof edge / sizeof *edge);
    for (int i = 0; i < NX; i++)
        x[i] = i < ne ? edge[i] : (i % 3 == 0 ? 1400.0 * (pl_rng_uniform(&g_rng) - 0.5) : 40.0 * (pl_rng_uniform(&g_rng) - 0.5));
    pl_tr_exp_arr(y, x, NX);
    double worst = 0.0;
    int bad = -1;
    for (int i = 0; i < NX; i++) {
        double want = exp(x[i]);
        if (isnan(want) || isinf(want) || want == 0.0) {
            if (!(isnan(want) ? isnan(y[i]) : y[i] == want) && bad < 0) bad = i;
            continue;
        }
        double r = fabs(y[i] - want) / want;
        if (!(r <= worst)) worst = isnan(r) ? (double)INFINITY : r;
    }
    /* 4 ulp: the polynomial's rounding, not a different function */
    CHECK(worst <= 4 * DBL_EPSILON, "exp over arrays: rel err %.3g vs libm", worst);
    CHECK(bad < 0, "exp over arrays: x = %g gives %g, libm %g", bad >= 0 ? x[bad] : 0.0, bad >= 0 ? y[bad] : 0.0,
          bad >= 0 ? exp(x[bad]) : 0.0);
    printf("exp     array exp vs libm: max rel err %.2g\n", worst);
    /* doubles to bf16: the bits of (float) then pl_fp32_to_bf16, for every
     * tail length, overflow past f32, subnormals, infinities and NaN; f32
     * subnormals become signed zeros on the AVX-512 path (the conversion
     * instruction the AMX products use treats them as zero) */
    static uint16_t hb[NX];
    for (int i = 0; i < NX; i++) x[i] = i < ne ? edge[i] : (i % 5 == 0 ? 1e39 : 1e-39) * (pl_rng_uniform(&g_rng) - 0.5) * (i % 2 ? 1 : 1e37);
    int mism = -1;
    for (int len = 1; len <= 40 && mism < 0; len++) {
        memset(hb, 0xff, sizeof hb);
        pl_tr_to_bf16(hb, x + len, len);
        for (int i = 0; i < len && mism < 0; i++)
            if (hb[i] != want_bf16(x[len + i])) mism = len + i;
        if (hb[len] != 0xffff) mism = -2;
    }
    pl_tr_to_bf16(hb, x, NX);
    for (int i = 0; i < NX && mism == -1; i++)
        if (hb[i] != want_bf16(x[i])) mism = i;
    CHECK(mism == -1, "doubles to bf16: element %d differs from (float) + pl_fp32_to_bf16 (-2: wrote past the end)",
          mism);
}

static void test_elementwise(void) {
    enum { N = 18 };
    const char *names[] = {"softmax dx", "softcap dx", "silu-glu", "gelu-tanh-glu", "silu-glu (saved)",
                           "gelu-tanh-glu (saved)"};
    for (int kind = 0; kind < 6; kind++) {
        pl_real x[N], x2[N], R[N], y[N], sv[N], dx[N] = {0}, dx2[N] = {0}, nx[N], nx2[N];
        fill(x, N, 4.0);
        fill(x2, N, 2.0);
        fill(R, N, 1.0);
        ew_ctx c = {x, x2, R, y, sv, N, kind};
        ew_f(&c);
        if (kind == 0) pl_tr_softmax_bwd(dx, R, y, N / 6, 6);
        else if (kind == 1) pl_tr_softcap_bwd(dx, R, y, N, 2.5);
        else if (kind <= 3) pl_tr_glu_bwd(dx, dx2, R, x, x2, N, kind == 2 ? PL_ACT_SILU : PL_ACT_GELU_TANH);
        else pl_tr_glu_bwd_s(dx, dx2, R, x, x2, sv, N, kind == 4 ? PL_ACT_SILU : PL_ACT_GELU_TANH);
        numgrad(ew_f, &c, x, N, nx);
        grad_close(names[kind], dx, nx, N, FD_TOL);
        if (kind >= 2) {
            numgrad(ew_f, &c, x2, N, nx2);
            grad_close(kind % 2 == 0 ? "silu-glu du" : "gelu-glu du", dx2, nx2, N, FD_TOL);
        }
    }
}

typedef struct {
    pl_real *l;
    const int32_t *idx;
    int n, nidx, target;
} xent_ctx;

static double xent_f(void *c_) {
    xent_ctx *c = c_;
    return pl_tr_xent(NULL, c->l, c->n, c->idx, c->nidx, c->target, 1.0);
}

static void test_xent(void) {
    enum { N = 9 };
    pl_real l[N], dl[N], nl[N];
    const int32_t idx[2] = {6, 2};
    fill(l, N, 3.0);
    for (int restricted = 0; restricted < 2; restricted++) {
        memset(dl, 0, sizeof dl);
        xent_ctx c = {l, restricted ? idx : NULL, N, 2, restricted ? 1 : 4};
        double loss = pl_tr_xent(dl, l, N, c.idx, 2, c.target, 1.0);
        numgrad(xent_f, &c, l, N, nl);
        grad_close(restricted ? "xent (label tokens) dl" : "xent (full) dl", dl, nl, N, FD_TOL);
        if (restricted) {
            /* closed form: -log sigmoid(l2 - l6) */
            double want = log1p(exp(-(l[2] - l[6])));
            CHECK_NEAR(loss, want, 1e-12);
        }
    }
}

/* ---- attention --------------------------------------------------------------- */

typedef struct {
    pl_tr_attn a;
    pl_real *q, *k, *v, *R, *z, *P;
    int T;
} attn_ctx;

static double attn_f(void *c_) {
    attn_ctx *c = c_;
    pl_tr_attn_fwd(&c->a, c->z, c->P, c->q, c->k, c->v, c->T);
    return dotp(c->z, c->R, (int64_t)c->T * c->a.n_head * c->a.head_dim);
}

static void test_attention(void) {
    enum { T = 7, H = 4, HKV = 2, HD = 4, QN = T * H * HD, KN = T * HKV * HD };
    struct {
        double softcap;
        int window;
        const char *name;
    } cases[] = {{0, 0, "attention (GQA, causal)"}, {1.5, 0, "attention (soft-cap)"}, {0, 3, "attention (window 3)"},
                 {2.0, 2, "attention (soft-cap + window)"}};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        pl_real q[QN], k[KN], v[KN], R[QN], z[QN], P[H * T * T];
        pl_real dq[QN] = {0}, dk[KN] = {0}, dv[KN] = {0}, nq[QN], nk[KN], nv[KN];
        fill(q, QN, 1.5);
        fill(k, KN, 1.5);
        fill(v, KN, 1.0);
        fill(R, QN, 1.0);
        attn_ctx c = {{H, HKV, HD, 0.61, cases[ci].softcap, cases[ci].window}, q, k, v, R, z, P, T};
        attn_f(&c);
        CHECK_OK(pl_tr_attn_bwd(&c.a, dq, dk, dv, R, P, q, k, v, T));
        numgrad(attn_f, &c, q, QN, nq);
        numgrad(attn_f, &c, k, KN, nk);
        numgrad(attn_f, &c, v, KN, nv);
        char buf[128];
        snprintf(buf, sizeof buf, "%s dq", cases[ci].name);
        grad_close(buf, dq, nq, QN, FD_TOL);
        snprintf(buf, sizeof buf, "%s dk", cases[ci].name);
        grad_close(buf, dk, nk, KN, FD_TOL);
        snprintf(buf, sizeof buf, "%s dv", cases[ci].name);
        grad_close(buf, dv, nv, KN, FD_TOL);
        if (cases[ci].window) {
            /* a query never sees keys window or more positions back */
            int bad = 0;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < T; i++)
                    for (int j = 0; j < T; j++)
                        if ((j > i || i - j >= cases[ci].window) && P[(h * T + i) * T + j] != 0.0) bad++;
            CHECK(bad == 0, "%s: %d masked probabilities are not 0", cases[ci].name, bad);
        }
    }
}

/* ---- frozen linear in several dtypes, LoRA, dense ----------------------------- */

typedef struct {
    pl_tr_weight w;
    pl_real *x, *R, *y;
    int T;
} lin_ctx;

static double lin_f(void *c_) {
    lin_ctx *c = c_;
    if (pl_tr_linear_fwd(c->y, c->x, c->T, &c->w) != PL_OK) CHECK(0, "linear forward: %s", pl_errmsg());
    return dotp(c->y, c->R, (int64_t)c->T * c->w.n_out);
}

static void test_linear(void) {
    enum { T = 3, NIN = 64, NOUT = 5 };
    const pl_dtype types[] = {PL_DTYPE_F32, PL_DTYPE_F16, PL_DTYPE_BF16, PL_DTYPE_Q8_0, PL_DTYPE_Q4_0, PL_DTYPE_Q4_K};
    float wf[NOUT * NIN];
    for (int i = 0; i < NOUT * NIN; i++) wf[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        pl_dtype dt = types[ti];
        size_t rb;
        if (pl_dtype_row_bytes(dt, 256 > NIN && dt == PL_DTYPE_Q4_K ? 256 : NIN, &rb) != PL_OK) continue;
        int nin = dt == PL_DTYPE_Q4_K ? 256 : NIN;
        uint8_t *data = malloc(rb * NOUT);
        float *src = malloc(sizeof(float) * (size_t)nin);
        float *deq = malloc(sizeof(float) * (size_t)nin * NOUT);
        for (int o = 0; o < NOUT; o++) {
            for (int i = 0; i < nin; i++) src[i] = wf[(o * NIN + i % NIN)] * (1.0f + 0.01f * (float)(i / NIN));
            CHECK_OK(pl_quantize_row(dt, src, data + rb * (size_t)o, nin));
            CHECK_OK(pl_dequantize_row(dt, data + rb * (size_t)o, deq + (size_t)o * (size_t)nin, nin));
        }
        pl_real *x = malloc(sizeof(pl_real) * (size_t)(T * nin)), *R = malloc(sizeof(pl_real) * T * NOUT);
        pl_real *y = malloc(sizeof(pl_real) * T * NOUT), *dx = calloc((size_t)(T * nin), sizeof(pl_real));
        pl_real *nx = malloc(sizeof(pl_real) * (size_t)(T * nin));
        fill(x, T * nin, 1.0);
        fill(R, T * NOUT, 1.0);
        lin_ctx c = {{data, (int)dt, nin, NOUT, rb, NULL, NULL}, x, R, y, T};
        lin_f(&c);
        /* forward equals the dequantized weight's product */
        double md = 0;
        for (int t = 0; t < T; t++)
            for (int o = 0; o < NOUT; o++) {
                double s = 0;
                for (int i = 0; i < nin; i++) s += x[t * nin + i] * (double)deq[o * nin + i];
                md = fmax(md, fabs(s - y[t * NOUT + o]));
            }
        CHECK(md < 1e-12, "linear %s forward differs from the dequantized product by %g", pl_dtype_name(dt), md);
        CHECK_OK(pl_tr_linear_bwd(dx, R, T, &c.w));
        numgrad(lin_f, &c, x, T * nin, nx);
        char buf[64];
        snprintf(buf, sizeof buf, "linear %s dx", pl_dtype_name(dt));
        grad_close(buf, dx, nx, T * nin, FD_TOL);
        free(data);
        free(src);
        free(deq);
        free(x);
        free(R);
        free(y);
        free(dx);
        free(nx);
    }
}

typedef struct {
    pl_tr_lora L;
    pl_real *x, *R, *y, *u, *xd;
    int T;
} lora_ctx;

static double lora_f(void *c_) {
    lora_ctx *c = c_;
    memset(c->y, 0, sizeof(pl_real) * (size_t)(c->T * c->L.n_out));
    pl_tr_lora_fwd(&c->L, c->y, c->u, c->x, c->T, c->xd);
    return dotp(c->y, c->R, (int64_t)c->T * c->L.n_out);
}

static void test_lora(void) {
    enum { T = 4, NIN = 6, NOUT = 5, RK = 3 };
    for (int drop = 0; drop < 2; drop++) {
        pl_real A[RK * NIN], B[NOUT * RK], dA[RK * NIN] = {0}, dB[NOUT * RK] = {0}, nA[RK * NIN], nB[NOUT * RK];
        pl_real x[T * NIN], dx[T * NIN] = {0}, nx[T * NIN], R[T * NOUT], y[T * NOUT], u[T * RK], xd[T * NIN],
            du[T * RK];
        fill(A, RK * NIN, 1.0);
        fill(B, NOUT * RK, 1.0);
        fill(x, T * NIN, 1.0);
        fill(R, T * NOUT, 1.0);
        pl_tr_lora L = {A, B, dA, dB, RK, NIN, NOUT, 16.0 / RK, drop ? 0.3 : 0.0, 77};
        lora_ctx c = {L, x, R, y, u, xd, T};
        lora_f(&c);
        pl_tr_lora_bwd(&L, dx, R, u, x, T, du, xd);
        numgrad(lora_f, &c, x, T * NIN, nx);
        numgrad(lora_f, &c, A, RK * NIN, nA);
        numgrad(lora_f, &c, B, NOUT * RK, nB);
        grad_close(drop ? "lora (dropout 0.3) dx" : "lora dx", dx, nx, T * NIN, FD_TOL);
        grad_close(drop ? "lora (dropout 0.3) dA" : "lora dA", dA, nA, RK * NIN, FD_TOL);
        grad_close(drop ? "lora (dropout 0.3) dB" : "lora dB", dB, nB, NOUT * RK, FD_TOL);
        if (drop) {
            int kept = 0;
            for (int i = 0; i < 100000; i++) kept += pl_tr_dropout_keep(5, (uint64_t)i, 0.3);
            CHECK(abs(kept - 70000) < 600, "dropout keeps %d of 100000 at p = 0.3", kept);
        }
    }
}

typedef struct {
    pl_real *W, *x, *R, *y;
    int T, nin, nout;
} dense_ctx;

static double dense_f(void *c_) {
    dense_ctx *c = c_;
    pl_tr_dense_fwd(c->y, c->x, c->W, c->T, c->nin, c->nout, 0);
    return dotp(c->y, c->R, (int64_t)c->T * c->nout);
}

static void test_dense(void) {
    enum { T = 3, NIN = 5, NOUT = 2 };
    pl_real W[NOUT * NIN], x[T * NIN], R[T * NOUT], y[T * NOUT], dW[NOUT * NIN] = {0}, dx[T * NIN] = {0};
    pl_real nW[NOUT * NIN], nx[T * NIN];
    fill(W, NOUT * NIN, 1.0);
    fill(x, T * NIN, 1.0);
    fill(R, T * NOUT, 1.0);
    dense_ctx c = {W, x, R, y, T, NIN, NOUT};
    dense_f(&c);
    pl_tr_dense_bwd(dx, dW, R, x, W, T, NIN, NOUT);
    numgrad(dense_f, &c, x, T * NIN, nx);
    numgrad(dense_f, &c, W, NOUT * NIN, nW);
    grad_close("head dx", dx, nx, T * NIN, FD_TOL);
    grad_close("head dW", dW, nW, NOUT * NIN, FD_TOL);
}

/* ---- AdamW / schedule: closed forms ---------------------------------------------- */

static void test_adamw(void) {
    pl_adamw_config c = pl_adamw_default();
    c.lr = 0.1;
    c.weight_decay = 0.5;
    c.clip = 0;
    c.sched = PL_SCHED_CONSTANT;
    pl_adamw o;
    CHECK_OK(pl_adamw_init(&o, &c, 1));
    pl_real p[1] = {2.0}, g[1] = {0.3};
    CHECK_OK(pl_adamw_step(&o, p, g, NULL));
    /* step 1: m̂ = g, v̂ = g², update = lr * g/(|g| + eps) = lr; decay first: p(1 - lr*wd) */
    CHECK_NEAR(p[0], 2.0 * (1 - 0.05) - 0.1 * 0.3 / (0.3 + 1e-8), 1e-12);
    pl_adamw_free(&o);
    c.sched = PL_SCHED_COSINE;
    c.warmup = 4;
    c.total_steps = 14;
    CHECK_NEAR(pl_adamw_lr(&c, 0), 0.0, 1e-15);
    CHECK_NEAR(pl_adamw_lr(&c, 2), 0.05, 1e-15);
    CHECK_NEAR(pl_adamw_lr(&c, 9), 0.05, 1e-15); /* half way: cos(pi/2) */
    c.sched = PL_SCHED_LINEAR;
    CHECK_NEAR(pl_adamw_lr(&c, 9), 0.05, 1e-15);
    CHECK_NEAR(pl_adamw_lr(&c, 14), 0.0, 1e-15);
    /* clipping: norm 5 clipped to 1 */
    c.clip = 1.0;
    c.sched = PL_SCHED_CONSTANT;
    c.warmup = 0;
    CHECK_OK(pl_adamw_init(&o, &c, 2));
    pl_real p2[2] = {0, 0}, g2[2] = {3, 4};
    double norm;
    CHECK_OK(pl_adamw_step(&o, p2, g2, &norm));
    CHECK_NEAR(norm, 5.0, 1e-12);
    CHECK_NEAR(g2[0], 3.0 / (5.0 + 1e-6), 1e-12);
    pl_real g3[2] = {NAN, 0};
    CHECK(pl_adamw_step(&o, p2, g3, NULL) == PL_ERR_NUMERIC, "NaN gradient accepted");
    pl_adamw_free(&o);
}

/* ---- whole tiny models ---------------------------------------------------------- */

static const char *ARCHS[] = {"llama", "mistral", "gemma2"};

static cJSON *load_ref(const char *arch) {
    char path[256], *data;
    size_t len;
    snprintf(path, sizeof path, "tests/data/train/%s/ref.json", arch);
    if (pl_read_file(path, &data, &len) != PL_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(data, len);
    free(data);
    return j;
}

static int json_floats(const cJSON *arr, pl_real *out, int64_t n) {
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != n) return 0;
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) out[i++] = e->valuedouble;
    return 1;
}

static int g_full; /* fixture_open: full fine-tuning on top of the LoRA */

typedef struct {
    pl_model *m;
    pl_trainer *t;
    int32_t seqs[2][64];
    int lens[2], labels[2];
} fixture;

/* Model + trainer configured like the reference (targets, rank, alpha, label
 * tokens) with the reference's initial parameters. */
static int fixture_open(fixture *f, const char *arch, const cJSON *ref, pl_objective obj, double dropout,
                        int checkpoint) {
    memset(f, 0, sizeof *f);
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/train/%s", arch);
    pl_model_opts mo = pl_model_opts_default();
    mo.gelu_fp16 = 0;
    if (pl_model_load(dir, &mo, &f->m) != PL_OK) {
        CHECK(0, "%s: load: %s", arch, pl_errmsg());
        return 0;
    }
    pl_tr_config c = pl_tr_config_default();
    c.objective = obj;
    c.lora_rank = cJSON_GetObjectItem(ref, "rank")->valueint;
    c.lora_alpha = cJSON_GetObjectItem(ref, "alpha")->valuedouble;
    c.lora_dropout = dropout;
    /* checkpoint 1: every layer but the top one recomputed; 2: no layer
     * recomputed (all kept within keep_bytes) */
    c.checkpoint = checkpoint != 0;
    c.keep_bytes = checkpoint == 2 ? SIZE_MAX : 0;
    c.full = g_full;
    c.precision = g_prec;
    const cJSON *tg = cJSON_GetObjectItem(ref, "targets"), *e;
    char list[256] = "";
    cJSON_ArrayForEach(e, tg) {
        if (list[0]) strcat(list, ",");
        strcat(list, e->valuestring);
    }
    if (pl_tr_parse_targets(list, &c.targets) != PL_OK) {
        CHECK(0, "%s: targets %s: %s", arch, list, pl_errmsg());
        return 0;
    }
    const cJSON *lt = cJSON_GetObjectItem(ref, "label_tokens");
    c.label_tokens[0] = cJSON_GetArrayItem(lt, 0)->valueint;
    c.label_tokens[1] = cJSON_GetArrayItem(lt, 1)->valueint;
    if (pl_trainer_new(f->m, &c, &f->t) != PL_OK) {
        CHECK(0, "%s: trainer: %s", arch, pl_errmsg());
        return 0;
    }
    size_t np;
    pl_real *params = pl_trainer_params(f->t, &np);
    int nt;
    const pl_tr_tensor *ts = pl_trainer_tensors(f->t, &nt);
    const cJSON *init = cJSON_GetObjectItem(ref, "init");
    int matched = 0, n_lora = 0;
    for (int i = 0; i < nt; i++) {
        if (ts[i].target == -2) continue; /* base weights: from the model */
        n_lora += ts[i].target >= 0;
        const cJSON *arr = ts[i].target >= 0 ? cJSON_GetObjectItem(init, ts[i].name)
                                              : cJSON_GetObjectItem(ref, "head_init");
        if (!json_floats(arr, params + ts[i].offset, ts[i].rows * ts[i].cols)) {
            CHECK(0, "%s: reference has no initial value of shape %lldx%lld for %s", arch, (long long)ts[i].rows,
                  (long long)ts[i].cols, ts[i].name);
            return 0;
        }
        matched++;
    }
    /* every reference LoRA tensor is one of ours */
    CHECK(cJSON_GetArraySize(init) == n_lora, "%s: %d reference tensors, %d ours", arch, cJSON_GetArraySize(init),
          n_lora);
    const cJSON *sq = cJSON_GetObjectItem(ref, "seqs"), *lb = cJSON_GetObjectItem(ref, "labels");
    for (int s = 0; s < 2; s++) {
        const cJSON *arr = cJSON_GetArrayItem(sq, s);
        f->lens[s] = cJSON_GetArraySize(arr);
        for (int i = 0; i < f->lens[s] && i < 64; i++) f->seqs[s][i] = cJSON_GetArrayItem(arr, i)->valueint;
        f->labels[s] = cJSON_GetArrayItem(lb, s)->valueint;
    }
    return matched > 0;
}

static void fixture_close(fixture *f) {
    pl_trainer_free(f->t);
    pl_model_free(f->m);
}

/* The batch's loss with the reference's reduction; gradients accumulated when backward. */
static double batch_loss(fixture *f, int backward) {
    const pl_tr_config *c = pl_trainer_config(f->t);
    int total_scored = 0;
    for (int s = 0; s < 2; s++) total_scored += f->lens[s] - 1;
    double loss = 0.0;
    if (backward) pl_trainer_zero_grad(f->t);
    for (int s = 0; s < 2; s++) {
        pl_tr_example ex = {f->seqs[s], f->lens[s], f->labels[s], 0};
        double w = c->objective == PL_OBJ_LM ? 1.0 / total_scored : 0.5, l;
        int n;
        if (pl_trainer_example(f->t, &ex, (uint64_t)s, w, backward, &l, &n) != PL_OK) {
            CHECK(0, "example %d: %s", s, pl_errmsg());
            return NAN;
        }
        loss += w * l;
    }
    return loss;
}

static const char *OBJ_NAMES[] = {"label", "head", "lm"};

/* Loss and every gradient vs PyTorch/PEFT. */
static void test_vs_pytorch(const char *arch, const cJSON *ref) {
    for (int obj = 0; obj < 3; obj++) {
        fixture f;
        if (!fixture_open(&f, arch, ref, (pl_objective)obj, 0.0, 1)) {
            fixture_close(&f);
            continue;
        }
        const cJSON *r = cJSON_GetObjectItem(ref, OBJ_NAMES[obj]);
        double want = cJSON_GetObjectItem(r, "loss")->valuedouble;
        double got = batch_loss(&f, 1);
        double rel = fabs(got - want) / fabs(want);
        CHECK(rel <= g_tol_loss, "%s %s loss %.9g, PyTorch %.9g (rel %.3g)", arch, OBJ_NAMES[obj], got, want, rel);
        int nt;
        const pl_tr_tensor *ts = pl_trainer_tensors(f.t, &nt);
        pl_real *grads = pl_trainer_grads(f.t);
        double worst = 0.0;
        const char *wname = "";
        for (int i = 0; i < nt; i++) {
            int64_t n = ts[i].rows * ts[i].cols;
            pl_real *w = malloc(sizeof(pl_real) * (size_t)n);
            if (!json_floats(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "grads"), ts[i].name), w, n)) {
                CHECK(0, "%s %s: no reference gradient for %s", arch, OBJ_NAMES[obj], ts[i].name);
                free(w);
                continue;
            }
            /* relative to the tensor's largest reference gradient */
            double sc = 1e-12, e = 0.0;
            for (int64_t k = 0; k < n; k++) sc = fmax(sc, fabs(w[k]));
            for (int64_t k = 0; k < n; k++) e = fmax(e, fabs(grads[ts[i].offset + k] - w[k]) / sc);
            if (e > worst) {
                worst = e;
                wname = ts[i].name;
            }
            free(w);
        }
        CHECK(worst <= g_tol_grad, "%s %s: gradient of %s off by %.3g relative", arch, OBJ_NAMES[obj], wname, worst);
        printf("pytorch %-7s %s %-5s loss %.9g vs %.9g (rel %.2g), %d grad tensors max rel err %.2g\n", arch,
               g_prec == PL_PREC_F32 ? "f32" : "f64", OBJ_NAMES[obj], got, want, rel, nt, worst);
        fixture_close(&f);
    }
}

/* 10 AdamW steps (warmup + cosine, clipping) on the label objective. */
static void test_adamw_trajectory(const char *arch, const cJSON *ref) {
    fixture f;
    if (!fixture_open(&f, arch, ref, PL_OBJ_LABEL, 0.0, 1)) {
        fixture_close(&f);
        return;
    }
    const cJSON *a = cJSON_GetObjectItem(ref, "adamw");
    pl_adamw_config c = pl_adamw_default();
    c.lr = cJSON_GetObjectItem(a, "lr")->valuedouble;
    c.beta1 = cJSON_GetObjectItem(a, "beta1")->valuedouble;
    c.beta2 = cJSON_GetObjectItem(a, "beta2")->valuedouble;
    c.eps = cJSON_GetObjectItem(a, "eps")->valuedouble;
    c.weight_decay = cJSON_GetObjectItem(a, "weight_decay")->valuedouble;
    c.clip = cJSON_GetObjectItem(a, "clip")->valuedouble;
    c.warmup = cJSON_GetObjectItem(a, "warmup")->valueint;
    c.total_steps = cJSON_GetObjectItem(a, "total_steps")->valueint;
    c.sched = PL_SCHED_COSINE;
    size_t np;
    pl_real *params = pl_trainer_params(f.t, &np);
    pl_adamw o;
    CHECK_OK(pl_adamw_init(&o, &c, np));
    const cJSON *losses = cJSON_GetObjectItem(a, "losses");
    int n = cJSON_GetArraySize(losses);
    double worst = 0.0;
    for (int s = 0; s < n; s++) {
        double got = batch_loss(&f, 1), want = cJSON_GetArrayItem(losses, s)->valuedouble;
        double rel = fabs(got - want) / fabs(want);
        worst = fmax(worst, rel);
        CHECK(rel <= TOL_TRAJ, "%s adamw step %d: loss %.9g, PyTorch %.9g (rel %.3g)", arch, s, got, want, rel);
        if (s + 1 < n) CHECK_OK(pl_adamw_step(&o, params, pl_trainer_grads(f.t), NULL));
    }
    printf("pytorch %-7s adamw %d losses %.6g -> %.6g, max rel err %.2g\n", arch, n,
           cJSON_GetArrayItem(losses, 0)->valuedouble, cJSON_GetArrayItem(losses, n - 1)->valuedouble, worst);
    pl_adamw_free(&o);
    fixture_close(&f);
}

/* Whole-model finite differences on random parameter entries, with dropout,
 * for each objective; checkpointing on and off give identical gradients. */
static void test_model_fd(const char *arch, const cJSON *ref) {
    for (int obj = 0; obj < 3; obj++) {
        fixture f, g, kf;
        if (!fixture_open(&f, arch, ref, (pl_objective)obj, 0.1, 1) ||
            !fixture_open(&g, arch, ref, (pl_objective)obj, 0.1, 0)) {
            continue;
        }
        size_t np;
        pl_real *p = pl_trainer_params(f.t, &np);
        batch_loss(&f, 1);
        batch_loss(&g, 1);
        CHECK(memcmp(pl_trainer_grads(f.t), pl_trainer_grads(g.t), np * sizeof(pl_real)) == 0,
              "%s %s: checkpointed gradients differ from stored-activation gradients", arch, OBJ_NAMES[obj]);
        /* checkpointing with the top layers' activations kept: the same bits */
        if (fixture_open(&kf, arch, ref, (pl_objective)obj, 0.1, 2)) {
            batch_loss(&kf, 1);
            CHECK(memcmp(pl_trainer_grads(kf.t), pl_trainer_grads(g.t), np * sizeof(pl_real)) == 0,
                  "%s %s: gradients with kept layers differ from stored-activation gradients", arch, OBJ_NAMES[obj]);
            fixture_close(&kf);
        }
        enum { NPROBE = 24 };
        pl_real an[NPROBE], nu[NPROBE];
        pl_real *grads = pl_trainer_grads(f.t);
        for (int i = 0; i < NPROBE; i++) {
            size_t k = (size_t)pl_rng_below(&g_rng, np);
            if (i == 0 && obj == PL_OBJ_HEAD) k = np - 1; /* a head weight */
            an[i] = grads[k];
            double old = p[k];
            p[k] = old + FD_H;
            double fp = batch_loss(&f, 0);
            p[k] = old - FD_H;
            double fm = batch_loss(&f, 0);
            p[k] = old;
            nu[i] = (fp - fm) / (2 * FD_H);
        }
        char buf[96];
        snprintf(buf, sizeof buf, "%s whole model %s (dropout 0.1) d/dparams", arch, OBJ_NAMES[obj]);
        grad_close(buf, an, nu, NPROBE, FD_TOL);
        double mx = 0;
        for (int i = 0; i < NPROBE; i++) mx = fmax(mx, fabs(an[i] - nu[i]));
        printf("fd      %-7s %-5s %d probes, max |analytic - numeric| %.2g\n", arch, OBJ_NAMES[obj], NPROBE, mx);
        fixture_close(&f);
        fixture_close(&g);
    }
}

/* The training forward (double) against the model module's pl_forward (f32). */
static void test_vs_model_forward(const char *arch, const cJSON *ref) {
    fixture f;
    if (!fixture_open(&f, arch, ref, PL_OBJ_LABEL, 0.0, 1)) {
        fixture_close(&f);
        return;
    }
    /* LoRA B = 0 so the base model alone is compared */
    int nt;
    const pl_tr_tensor *ts = pl_trainer_tensors(f.t, &nt);
    pl_real *p = pl_trainer_params(f.t, NULL);
    for (int i = 0; i < nt; i++)
        if (ts[i].is_b) memset(p + ts[i].offset, 0, sizeof(pl_real) * (size_t)(ts[i].rows * ts[i].cols));
    const pl_arch_desc *d = pl_model_desc(f.m);
    int T = f.lens[0], V = d->n_vocab;
    pl_real *mine = malloc(sizeof(pl_real) * (size_t)(T * V));
    float *theirs = malloc(sizeof(float) * (size_t)(T * V));
    CHECK_OK(pl_trainer_logits(f.t, f.seqs[0], T, mine));
    pl_runner *r = NULL;
    pl_kv *kv = NULL;
    CHECK_OK(pl_runner_new(f.m, 64, 64, &r));
    CHECK_OK(pl_kv_new(f.m, 64, NULL, &kv));
    pl_seq s = {kv, f.seqs[0], T};
    CHECK_OK(pl_forward(r, &s, 1, PL_LOGITS_ALL, theirs));
    double md = 0, mx = 0;
    for (int i = 0; i < T * V; i++) {
        md = fmax(md, fabs(mine[i] - (double)theirs[i]));
        mx = fmax(mx, fabs((double)theirs[i]));
    }
    /* f32 forward vs double: ~1e-6 relative to the logit scale */
    CHECK(md <= 1e-4 * fmax(1.0, mx), "%s: training forward differs from pl_forward by %g (logits up to %g)", arch, md,
          mx);
    printf("forward %-7s training pass vs pl_forward: max |diff| %.2g (max |logit| %.3g)\n", arch, md, mx);
    pl_kv_free(kv);
    pl_runner_free(r);
    free(mine);
    free(theirs);
    fixture_close(&f);
}

/* Full fine-tuning: one finite-difference probe in every tensor (every
 * base weight, norm, the embedding and the output), LM and label objectives. */
static void test_full_fd(const char *arch, const cJSON *ref) {
    for (int obj = 0; obj < 3; obj += 2) {
        fixture f;
        g_full = 1;
        int ok = fixture_open(&f, arch, ref, (pl_objective)obj, 0.0, 1);
        g_full = 0;
        if (!ok) {
            fixture_close(&f);
            continue;
        }
        int nt;
        const pl_tr_tensor *ts = pl_trainer_tensors(f.t, &nt);
        pl_real *p = pl_trainer_params(f.t, NULL);
        batch_loss(&f, 1);
        pl_real *an = malloc(sizeof(pl_real) * (size_t)nt), *nu = malloc(sizeof(pl_real) * (size_t)nt);
        int n = 0;
        for (int i = 0; i < nt; i++) {
            if (ts[i].target != -2) continue;
            size_t k = ts[i].offset;
            if (strstr(ts[i].name, "embed_tokens") || strstr(ts[i].name, "lm_head"))
                k += (size_t)f.seqs[0][2] * (size_t)ts[i].cols + 3; /* a row that is used */
            else k += (size_t)pl_rng_below(&g_rng, (uint64_t)(ts[i].rows * ts[i].cols));
            an[n] = pl_trainer_grads(f.t)[k];
            double old = p[k];
            p[k] = old + FD_H;
            double fp = batch_loss(&f, 0);
            p[k] = old - FD_H;
            double fm = batch_loss(&f, 0);
            p[k] = old;
            nu[n++] = (fp - fm) / (2 * FD_H);
        }
        char buf[96];
        snprintf(buf, sizeof buf, "%s full fine-tuning %s d/d(every base tensor)", arch, OBJ_NAMES[obj]);
        grad_close(buf, an, nu, n, FD_TOL);
        double mx = 0;
        for (int i = 0; i < n; i++) mx = fmax(mx, fabs(an[i] - nu[i]));
        printf("fd      %-7s full %-5s %d base tensors, max |analytic - numeric| %.2g\n", arch, OBJ_NAMES[obj], n, mx);
        free(an);
        free(nu);
        fixture_close(&f);
    }
}

/* Full fine-tuning vs PyTorch: the sampled gradient values and the norm of
 * every base weight's gradient (label objective, LoRA active). */
static void test_full_vs_pytorch(const char *arch, const cJSON *ref) {
    const cJSON *r = cJSON_GetObjectItem(ref, "full");
    if (!r) {
        CHECK(0, "%s: ref.json has no full fine-tuning section", arch);
        return;
    }
    fixture f;
    g_full = 1;
    int ok = fixture_open(&f, arch, ref, PL_OBJ_LABEL, 0.0, 1);
    g_full = 0;
    if (!ok) {
        fixture_close(&f);
        return;
    }
    batch_loss(&f, 1);
    int nt, n = 0;
    const pl_tr_tensor *ts = pl_trainer_tensors(f.t, &nt);
    const pl_real *g = pl_trainer_grads(f.t);
    double worst = 0;
    const char *wname = "";
    for (int i = 0; i < nt; i++) {
        if (ts[i].target != -2) continue;
        const cJSON *gs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "grads"), ts[i].name);
        const cJSON *gn = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "norms"), ts[i].name);
        if (!cJSON_IsArray(gs) || !cJSON_IsNumber(gn)) {
            CHECK(0, "%s: no PyTorch gradient for %s", arch, ts[i].name);
            continue;
        }
        n++;
        double norm = 0;
        for (int64_t k = 0; k < ts[i].rows * ts[i].cols; k++) norm += g[ts[i].offset + k] * g[ts[i].offset + k];
        norm = sqrt(norm);
        double sc = fmax(gn->valuedouble, 1e-12), e = fabs(norm - gn->valuedouble) / sc;
        int k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, gs) {
            e = fmax(e, fabs(g[ts[i].offset + (size_t)k] - v->valuedouble) / sc);
            k++;
        }
        if (e > worst) {
            worst = e;
            wname = ts[i].name;
        }
    }
    CHECK(n > 0 && worst <= TOL_GRAD, "%s full fine-tuning: gradient of %s off by %.3g relative to its norm", arch,
          wname, worst);
    printf("pytorch %-7s full  %d base tensors (sampled values + norms) max rel err %.2g\n", arch, n, worst);
    fixture_close(&f);
}

/* adapter.gguf written by us, attached by the model module (llama.cpp
 * semantics, q/k row permutation), must give the training pass's logits. */
static void test_gguf_roundtrip(const char *arch, const cJSON *ref) {
    fixture f;
    if (!fixture_open(&f, arch, ref, PL_OBJ_LABEL, 0.0, 1)) {
        fixture_close(&f);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "build/test_train_%s_adapter.gguf", arch);
    CHECK_OK(pl_trainer_save_gguf(f.t, path));
    pl_model *m2 = NULL;
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/train/%s", arch);
    pl_model_opts mo = pl_model_opts_default();
    mo.gelu_fp16 = 0;
    CHECK_OK(pl_model_load(dir, &mo, &m2));
    if (!m2) {
        fixture_close(&f);
        return;
    }
    CHECK_OK(pl_model_add_lora(m2, path, 1.0f));
    int T = f.lens[0], V = pl_model_desc(m2)->n_vocab;
    pl_real *mine = malloc(sizeof(pl_real) * (size_t)(T * V));
    float *theirs = malloc(sizeof(float) * (size_t)(T * V));
    CHECK_OK(pl_trainer_logits(f.t, f.seqs[0], T, mine));
    pl_runner *r = NULL;
    pl_kv *kv = NULL;
    CHECK_OK(pl_runner_new(m2, 64, 64, &r));
    CHECK_OK(pl_kv_new(m2, 64, NULL, &kv));
    pl_seq s = {kv, f.seqs[0], T};
    CHECK_OK(pl_forward(r, &s, 1, PL_LOGITS_ALL, theirs));
    double md = 0, mx = 0;
    for (int i = 0; i < T * V; i++) {
        md = fmax(md, fabs(mine[i] - (double)theirs[i]));
        mx = fmax(mx, fabs((double)theirs[i]));
    }
    CHECK(md <= 1e-4 * fmax(1.0, mx), "%s: adapter.gguf through pl_model_add_lora differs by %g", arch, md);
    printf("adapter %-7s adapter.gguf attached by the model module vs training pass: max |diff| %.2g\n", arch, md);
    pl_kv_free(kv);
    pl_runner_free(r);
    pl_model_free(m2);
    free(mine);
    free(theirs);
    remove(path);

    /* PEFT export read back with io's safetensors reader: every tensor, HF
     * names and shapes, values equal to the parameters (HF models: no row
     * permutation). tools/ref/check_peft_export.py loads the same directory
     * into PEFT. */
    snprintf(path, sizeof path, "build/test_train_%s_peft", arch);
    CHECK_OK(pl_trainer_save_peft(f.t, path, dir));
    pl_safetensors *st = NULL;
    char stp[256];
    snprintf(stp, sizeof stp, "%s/adapter_model.safetensors", path);
    CHECK_OK(pl_st_open(stp, &st));
    if (st) {
        int nt;
        const pl_tr_tensor *ts = pl_trainer_tensors(f.t, &nt);
        const pl_real *p = pl_trainer_params(f.t, NULL);
        int bad = 0;
        for (int i = 0; i < nt; i++) {
            char nm[160];
            snprintf(nm, sizeof nm, "base_model.model.%s.weight", ts[i].name);
            const pl_st_tensor *e = pl_st_find(st, nm);
            if (!e || strcmp(e->dtype, "F32") || e->n_dims != 2 || e->shape[0] != ts[i].rows ||
                e->shape[1] != ts[i].cols) {
                bad++;
                continue;
            }
            const float *v = e->data;
            for (int64_t k = 0; k < ts[i].rows * ts[i].cols; k++)
                if (v[k] != (float)p[ts[i].offset + k]) bad++;
        }
        CHECK(bad == 0 && pl_st_n_tensors(st) == nt, "%s: PEFT export: %d mismatches, %lld tensors for %d", arch, bad,
              (long long)pl_st_n_tensors(st), nt);
        pl_st_close(st);
    }
    fixture_close(&f);
}

/* ---- training loop ------------------------------------------------------------------ */

/* A learnable toy task on the tiny llama: label 1 iff the last token is 7
 * (else 8). */
typedef struct {
    int32_t tok[64][12];
    pl_tr_example ex[64];
} toy_data;

static void toy_make(toy_data *d, int n, uint64_t seed) {
    pl_rng r;
    pl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int len = 6 + (int)pl_rng_below(&r, 6);
        int lab = i % 2;
        for (int j = 0; j < len; j++) {
            int v = 10 + (int)pl_rng_below(&r, 80);
            d->tok[i][j] = v == 7 ? 8 : v;
        }
        d->tok[i][len - 1] = lab ? 7 : 8;
        d->ex[i] = (pl_tr_example){d->tok[i], len, lab, 0};
    }
}

static pl_precision g_toy_prec = PL_PREC_F32;

static pl_trainer *toy_trainer(pl_model *m, double dropout) {
    pl_tr_config c = pl_tr_config_default();
    c.precision = g_toy_prec;
    c.lora_rank = 4;
    c.lora_alpha = 8;
    c.lora_dropout = dropout;
    c.targets = PL_TGT_Q | PL_TGT_V | PL_TGT_DOWN;
    c.label_tokens[0] = 5;
    c.label_tokens[1] = 9;
    c.seed = 99;
    pl_trainer *t = NULL;
    CHECK_OK(pl_trainer_new(m, &c, &t));
    return t;
}

static int files_equal(const char *a, const char *b) {
    char *da, *db;
    size_t la, lb;
    if (pl_read_file(a, &da, &la) != PL_OK) return 0;
    if (pl_read_file(b, &db, &lb) != PL_OK) {
        free(da);
        return 0;
    }
    int eq = la == lb && memcmp(da, db, la) == 0;
    free(da);
    free(db);
    return eq;
}

static pl_loop_opts toy_opts(const char *dir) {
    pl_loop_opts o = pl_loop_opts_default();
    o.opt.lr = 2e-2;
    o.opt.weight_decay = 0.01;
    o.epochs = 3;
    o.batch = 2;
    o.accum = 2;
    o.ckpt_every = 2;
    o.run_dir = dir;
    o.base_model = "tests/data/train/llama";
    o.quiet = 1;
    return o;
}

/* A toy run stopped after step 5 (as if killed: its checkpoint is step 4's),
 * then resumed by a fresh trainer to the end; *res gets the resumed run's
 * result */
static void stopped_and_resumed(pl_model *m, const pl_tr_dataset *tr, const pl_tr_dataset *va, pl_loop_opts o,
                                pl_loop_result *res) {
    pl_trainer *t = toy_trainer(m, 0.1);
    o.stop_at_step = 5;
    CHECK_OK(pl_train_loop(t, tr, va, &o, res));
    pl_trainer_free(t);
    t = toy_trainer(m, 0.1);
    o.stop_at_step = 0;
    o.resume = 1;
    CHECK_OK(pl_train_loop(t, tr, va, &o, res));
    pl_trainer_free(t);
}

/* The run that test_loop kills (run in a child process). */
static int loop_child(void) {
    pl_model *m = NULL;
    pl_model_opts mo = pl_model_opts_default();
    if (pl_model_load("tests/data/train/llama", &mo, &m) != PL_OK) return 1;
    static toy_data tr, va;
    toy_make(&tr, 32, 1);
    toy_make(&va, 16, 2);
    pl_tr_dataset dtr = {tr.ex, 32}, dva = {va.ex, 16};
    pl_trainer *t = toy_trainer(m, 0.1);
    pl_loop_opts o = toy_opts("build/test_train_run_c");
    o.eval_every = 4;
    pl_loop_result r;
    pl_status st = pl_train_loop(t, &dtr, &dva, &o, &r);
    pl_trainer_free(t);
    pl_model_free(m);
    return st != PL_OK;
}

static void test_loop(void) {
    pl_model *m = NULL;
    pl_model_opts mo = pl_model_opts_default();
    CHECK_OK(pl_model_load("tests/data/train/llama", &mo, &m));
    if (!m) return;
    static toy_data tr, va;
    toy_make(&tr, 32, 1);
    toy_make(&va, 16, 2);
    pl_tr_dataset dtr = {tr.ex, 32}, dva = {va.ex, 16};

    /* uninterrupted reference run */
    pl_trainer *t = toy_trainer(m, 0.1);
    pl_loop_opts o = toy_opts("build/test_train_run_a");
    o.eval_every = 4;
    pl_loop_result ra;
    double t0 = pl_time_now();
    CHECK_OK(pl_train_loop(t, &dtr, &dva, &o, &ra));
    double dur = pl_time_now() - t0;
    CHECK(ra.steps == 24, "steps %lld, want 3 epochs x 8", (long long)ra.steps);
    printf("loop    24 steps in %.2fs, last loss %.4g, val loss %.4g, val F1 %.3f\n", dur, ra.last_loss, ra.val_loss,
           ra.val_f1);
    CHECK(ra.val_loss < 0.69, "validation loss %g did not drop below chance (ln 2)", ra.val_loss);
    pl_trainer_free(t);

    /* stop after step 5 (checkpoint at 4), resume: bitwise identical adapter */
    o.run_dir = "build/test_train_run_b";
    pl_loop_result rb;
    stopped_and_resumed(m, &dtr, &dva, o, &rb);
    CHECK(rb.resumed_from == 4, "resumed from step %d, want 4", rb.resumed_from);
    CHECK(files_equal("build/test_train_run_a/adapter.gguf", "build/test_train_run_b/adapter.gguf"),
          "resumed run's adapter.gguf differs from the uninterrupted run's");
    CHECK(files_equal("build/test_train_run_a/peft/adapter_model.safetensors",
                      "build/test_train_run_b/peft/adapter_model.safetensors"),
          "resumed run's PEFT adapter differs");

    /* kill -9 at a random moment of a run, then resume */
    pl_rng kr;
    pl_rng_seed(&kr, (uint64_t)time(NULL));
    double frac = 0.2 + 0.6 * pl_rng_uniform(&kr);
    fflush(stdout);
    /* the child is this program re-executed (OpenMP does not survive fork) */
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_train", "--loop-child", (char *)NULL);
        _exit(127);
    }
    struct timespec ts = {(time_t)(frac * dur), (long)(fmod(frac * dur, 1.0) * 1e9)};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    int killed = WIFSIGNALED(status);
    t = toy_trainer(m, 0.1);
    o = toy_opts("build/test_train_run_c");
    o.eval_every = 4;
    o.resume = access("build/test_train_run_c/checkpoints/last.ckpt", F_OK) == 0;
    pl_loop_result rc;
    CHECK_OK(pl_train_loop(t, &dtr, &dva, &o, &rc));
    printf("loop    kill -9 at %.0f%% of the run (%s), resumed from step %d\n", 100 * frac,
           killed ? "killed" : "had finished", rc.resumed_from);
    CHECK(files_equal("build/test_train_run_a/adapter.gguf", "build/test_train_run_c/adapter.gguf"),
          "adapter after kill -9 + resume differs from the uninterrupted run's");
    pl_trainer_free(t);

    /* the bf16 precision with two threads (the step's examples in two
     * lanes): stop after step 5, resume, the same adapter bits as the
     * uninterrupted run with two threads */
    {
        const int nt0 = pl_num_threads();
        pl_set_num_threads(2);
        g_toy_prec = PL_PREC_BF16;
        pl_loop_result re, rf;
        t = toy_trainer(m, 0.1);
        o = toy_opts("build/test_train_run_e");
        CHECK_OK(pl_train_loop(t, &dtr, &dva, &o, &re));
        pl_trainer_free(t);
        stopped_and_resumed(m, &dtr, &dva, toy_opts("build/test_train_run_f"), &rf);
        CHECK(rf.resumed_from == 4 && files_equal("build/test_train_run_e/adapter.gguf", "build/test_train_run_f/adapter.gguf"),
              "bf16, two lanes: resumed run (from step %d) differs from the uninterrupted one", rf.resumed_from);
        printf("loop    bf16 two lanes: last loss %.4g, resumed from step %d, same adapter bits\n", re.last_loss,
               rf.resumed_from);
        g_toy_prec = PL_PREC_F32;
        pl_set_num_threads(nt0);
    }

    /* bad input: single class, empty, a checkpoint of another configuration, NaN */
    t = toy_trainer(m, 0.0);
    pl_tr_example one[2] = {tr.ex[1], tr.ex[3]};
    pl_tr_dataset d1 = {one, 2}, d0 = {tr.ex, 0};
    o = toy_opts("build/test_train_run_d");
    CHECK(pl_train_loop(t, &d1, NULL, &o, &rc) == PL_ERR_INVALID && strstr(pl_errmsg(), "single class"),
          "single-class training set: %s", pl_errmsg());
    CHECK(pl_train_loop(t, &d0, NULL, &o, &rc) == PL_ERR_INVALID, "empty training set accepted");
    o = toy_opts("build/test_train_run_a");
    o.resume = 1;
    o.opt.lr = 1e-3; /* not the run's configuration */
    CHECK(pl_train_loop(t, &dtr, NULL, &o, &rc) == PL_ERR_INVALID && strstr(pl_errmsg(), "another configuration"),
          "resume with another configuration: %s", pl_errmsg());
    size_t np;
    pl_real *p = pl_trainer_params(t, &np);
    p[3] = NAN;
    o = toy_opts("build/test_train_run_d");
    pl_status st = pl_train_loop(t, &dtr, NULL, &o, &rc);
    CHECK(st == PL_ERR_NUMERIC && strstr(pl_errmsg(), "non-finite"), "NaN parameter: status %d, %s", (int)st,
          pl_errmsg());
    pl_trainer_free(t);
    pl_model_free(m);
}

/* ---- shared fixtures (GGUF: adjacent-pair RoPE, rope_freqs, quantized weights) ---- */

static void test_shared_forward(const char *shared) {
    struct {
        const char *rel;
        double tol; /* f32 forward vs double: relative to the logit scale */
    } files[] = {{"models/stories260K.gguf", 1e-4},
                 {"models/fixtures/tiny-llama31-random.gguf", 1e-4},
                 {"models/fixtures/tiny-mistral-random-q8_0.gguf", 1e-4},
                 {"models/fixtures/tiny-mistral-random-q4_0.gguf", 1e-4},
                 {"models/fixtures/tiny-gemma2-random.gguf", 1e-4}};
    for (size_t fi = 0; fi < sizeof files / sizeof *files; fi++) {
        char path[4096];
        pl_model_opts mo = pl_model_opts_default();
        mo.quant_act = 0; /* the exact path: dequantized weights, f32 activations */
        mo.gelu_fp16 = 0;
        pl_model *m = NULL;
        if (pl_model_load(t_path(path, sizeof path, shared, files[fi].rel), &mo, &m) != PL_OK) {
            CHECK(0, "%s: %s", files[fi].rel, pl_errmsg());
            continue;
        }
        pl_tr_config c = pl_tr_config_default();
        c.lora_rank = 2;
        c.targets = PL_TGT_Q | PL_TGT_K | PL_TGT_DOWN;
        c.label_tokens[0] = 3;
        c.label_tokens[1] = 4;
        c.precision = PL_PREC_F64;
        pl_trainer *t = NULL;
        CHECK_OK(pl_trainer_new(m, &c, &t));
        const pl_arch_desc *d = pl_model_desc(m);
        int32_t ids[9] = {1, 400, 36, 100, 7, 250, 13, 99, 5};
        int T = 9, V = d->n_vocab;
        pl_real *mine = malloc(sizeof(pl_real) * (size_t)(T * V));
        float *theirs = malloc(sizeof(float) * (size_t)(T * V));
        CHECK_OK(pl_trainer_logits(t, ids, T, mine));
        pl_runner *r = NULL;
        pl_kv *kv = NULL;
        CHECK_OK(pl_runner_new(m, 16, 16, &r));
        CHECK_OK(pl_kv_new(m, 16, NULL, &kv));
        pl_seq sq = {kv, ids, T};
        CHECK_OK(pl_forward(r, &sq, 1, PL_LOGITS_ALL, theirs));
        double md = 0, mx = 0;
        for (int i = 0; i < T * V; i++) {
            md = fmax(md, fabs(mine[i] - (double)theirs[i]));
            mx = fmax(mx, fabs((double)theirs[i]));
        }
        CHECK(md <= files[fi].tol * fmax(1.0, mx), "%s: training forward differs from pl_forward by %g", files[fi].rel,
              md);
        printf("forward %s: training pass vs pl_forward (exact matmul) max |diff| %.2g (max |logit| %.3g)\n",
               files[fi].rel, md, mx);
        /* LoRA gradient through quantized / adjacent-pair-RoPE layers: finite differences (B random) */
        if (fi == 0 || fi == 3) {
            size_t np;
            pl_real *p = pl_trainer_params(t, &np);
            for (size_t k = 0; k < np; k++) p[k] = 0.3 * (2 * pl_rng_uniform(&g_rng) - 1);
            pl_tr_example ex = {ids, T, 1, 0};
            double l;
            pl_trainer_zero_grad(t);
            CHECK_OK(pl_trainer_example(t, &ex, 0, 1.0, 1, &l, NULL));
            enum { NP = 8 };
            pl_real an[NP], nu[NP];
            for (int i = 0; i < NP; i++) {
                size_t k = (size_t)pl_rng_below(&g_rng, np);
                an[i] = pl_trainer_grads(t)[k];
                double old = p[k], fp, fm;
                p[k] = old + FD_H;
                pl_trainer_example(t, &ex, 0, 1.0, 0, &fp, NULL);
                p[k] = old - FD_H;
                pl_trainer_example(t, &ex, 0, 1.0, 0, &fm, NULL);
                p[k] = old;
                nu[i] = (fp - fm) / (2 * FD_H);
            }
            char buf[160];
            snprintf(buf, sizeof buf, "%s whole-model label-loss d/dLoRA", files[fi].rel);
            grad_close(buf, an, nu, NP, FD_TOL);
        }
        if (fi == 0) {
            /* gradients do not depend on the thread count (parallel kernels at 48 tokens) */
            int32_t lid[48];
            for (int i = 0; i < 48; i++) lid[i] = (int32_t)(1 + (i * 37) % 500);
            pl_tr_example ex = {lid, 48, 0, 0};
            size_t np;
            pl_trainer_params(t, &np);
            pl_real *g1 = malloc(np * sizeof *g1);
            int nt0 = pl_num_threads();
            double l1, l2;
            pl_set_num_threads(1);
            pl_trainer_zero_grad(t);
            CHECK_OK(pl_trainer_example(t, &ex, 0, 1.0, 1, &l1, NULL));
            memcpy(g1, pl_trainer_grads(t), np * sizeof *g1);
            pl_set_num_threads(3);
            pl_trainer_zero_grad(t);
            CHECK_OK(pl_trainer_example(t, &ex, 0, 1.0, 1, &l2, NULL));
            CHECK(l1 == l2 && memcmp(g1, pl_trainer_grads(t), np * sizeof *g1) == 0,
                  "gradients differ between 1 and 3 threads");
            pl_set_num_threads(nt0);
            free(g1);
        }
        pl_kv_free(kv);
        pl_runner_free(r);
        free(mine);
        free(theirs);
        pl_trainer_free(t);
        pl_model_free(m);
    }
}


/* ---- the float32 / BLAS kernels against the double reference ---- */

static double max_rel(const pl_real *got, const pl_real *want, int64_t n) {
    double sc = 1e-300, e = 0.0;
    for (int64_t i = 0; i < n; i++) sc = fmax(sc, fabs(want[i]));
    for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(got[i] - want[i]));
    return e / sc;
}

/* the largest max_rel over the trainable tensors: got's gradients against want's */
static double grads_max_rel(pl_trainer *got, pl_trainer *want) {
    int nt;
    const pl_tr_tensor *ts = pl_trainer_tensors(want, &nt);
    double worst = 0.0;
    for (int i = 0; i < nt; i++)
        worst = fmax(worst, max_rel(pl_trainer_grads(got) + ts[i].offset, pl_trainer_grads(want) + ts[i].offset,
                                    ts[i].rows * ts[i].cols));
    return worst;
}

static void test_fast_kernels(void) {
    /* frozen linear in f32 vs the double reference: forward and dx, every
     * storage dtype; 5 tokens take pl_matmul's path, 9 the sgemm path, and
     * n_out 1100 over n_in 256 spans two dequantized chunks */
    const pl_dtype types[] = {PL_DTYPE_F32, PL_DTYPE_F16, PL_DTYPE_BF16, PL_DTYPE_Q8_0, PL_DTYPE_Q4_0,
                              PL_DTYPE_Q4_1, PL_DTYPE_Q4_K, PL_DTYPE_Q6_K};
    const int nouts[] = {37, 1100};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++)
        for (int oi = 0; oi < 2; oi++) {
            pl_dtype dt = types[ti];
            int nin = 256, nout = nouts[oi], T = oi ? 9 : 5;
            size_t rb;
            CHECK_OK(pl_dtype_row_bytes(dt, nin, &rb));
            uint8_t *data = malloc(rb * (size_t)nout);
            float *src = malloc(sizeof(float) * (size_t)nin);
            for (int o = 0; o < nout; o++) {
                for (int i = 0; i < nin; i++) src[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
                CHECK_OK(pl_quantize_row(dt, src, data + rb * (size_t)o, nin));
            }
            pl_tr_weight w = {data, (int)dt, nin, nout, rb, NULL, NULL};
            pl_real *x = malloc(sizeof(pl_real) * T * (size_t)nin), *dy = malloc(sizeof(pl_real) * T * (size_t)nout);
            pl_real *y0 = malloc(sizeof(pl_real) * T * (size_t)nout), *y1 = malloc(sizeof(pl_real) * T * (size_t)nout);
            pl_real *dx0 = malloc(sizeof(pl_real) * T * (size_t)nin), *dx1 = malloc(sizeof(pl_real) * T * (size_t)nin);
            fill(x, T * nin, 1.0);
            fill(dy, T * nout, 1.0);
            fill(dx0, T * nin, 1.0); /* backward accumulates */
            memcpy(dx1, dx0, sizeof(pl_real) * T * (size_t)nin);
            CHECK_OK(pl_tr_linear_fwd(y0, x, T, &w));
            CHECK_OK(pl_tr_linear_fwd_f32(y1, x, T, &w));
            CHECK_OK(pl_tr_linear_bwd(dx0, dy, T, &w));
            CHECK_OK(pl_tr_linear_bwd_f32(dx1, dy, T, &w));
            double ef = max_rel(y1, y0, T * nout), eb = max_rel(dx1, dx0, T * nin);
            CHECK(ef <= 1e-5 && eb <= 1e-5, "linear f32 %s %dx%d: forward rel err %.3g, backward %.3g (want <= 1e-5)",
                  pl_dtype_name(dt), nout, nin, ef, eb);
            free(data);
            free(src);
            free(x);
            free(dy);
            free(y0);
            free(y1);
            free(dx0);
            free(dx1);
        }
    CHECK(pl_tr_linear_bwd_f32(NULL, NULL, 1, &(pl_tr_weight){NULL, 77, 4, 4, 16, NULL, NULL}) == PL_ERR_UNSUPPORTED,
          "unknown dtype accepted by the f32 backward");

    /* bf16 precision (40 tokens: the bf16 products) vs the double reference:
     * each product carries the bf16 rounding of x and W (<= 2^-8 relative
     * each), so |err| <= 2^-7 * sum |x||W| per output; with the weight's
     * tiles converted once, the same bits as converting per call */
    {
        const pl_dtype bt[] = {PL_DTYPE_Q4_1, PL_DTYPE_Q8_0, PL_DTYPE_F32};
        for (size_t ti = 0; ti < sizeof bt / sizeof *bt; ti++) {
            const int nin = 256, nout = 300, T = 40;
            size_t rb;
            CHECK_OK(pl_dtype_row_bytes(bt[ti], nin, &rb));
            uint8_t *data = malloc(rb * (size_t)nout);
            float *src = malloc(sizeof(float) * (size_t)nin), *wf = malloc(sizeof(float) * (size_t)nin * nout);
            for (int o = 0; o < nout; o++) {
                for (int i = 0; i < nin; i++) src[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
                CHECK_OK(pl_quantize_row(bt[ti], src, data + rb * (size_t)o, nin));
                CHECK_OK(pl_dequantize_row(bt[ti], data + rb * (size_t)o, wf + (size_t)o * nin, nin));
            }
            pl_tr_weight w = {data, (int)bt[ti], nin, nout, rb, NULL, NULL};
            pl_real *x = malloc(sizeof(pl_real) * T * (size_t)nin), *dy = malloc(sizeof(pl_real) * T * (size_t)nout);
            pl_real *y1 = malloc(sizeof(pl_real) * T * (size_t)nout), *y2 = malloc(sizeof(pl_real) * T * (size_t)nout);
            pl_real *dx1 = calloc((size_t)T * nin, sizeof(pl_real)), *dx2 = calloc((size_t)T * nin, sizeof(pl_real));
            fill(x, T * nin, 1.0);
            fill(dy, T * nout, 1.0);
            CHECK_OK(pl_tr_linear_fwd_bf16(y1, x, T, &w));
            CHECK_OK(pl_tr_linear_bwd_bf16(dx1, dy, T, &w));
            double worst = 0;
            for (int t = 0; t < T; t++)
                for (int o = 0; o < nout; o++) {
                    double s = 0, a = 0;
                    for (int i = 0; i < nin; i++) {
                        s += x[t * nin + i] * (double)wf[(size_t)o * nin + i];
                        a += fabs(x[t * nin + i] * (double)wf[(size_t)o * nin + i]);
                    }
                    double r = fabs(y1[t * nout + o] - s) / (a / 128 + 1e-300);
                    if (!(r <= worst)) worst = isnan(r) ? (double)INFINITY : r;
                }
            for (int t = 0; t < T; t++)
                for (int i = 0; i < nin; i++) {
                    double s = 0, a = 0;
                    for (int o = 0; o < nout; o++) {
                        s += dy[t * nout + o] * (double)wf[(size_t)o * nin + i];
                        a += fabs(dy[t * nout + o] * (double)wf[(size_t)o * nin + i]);
                    }
                    double r = fabs(dx1[t * nin + i] - s) / (a / 128 + 1e-300);
                    if (!(r <= worst)) worst = isnan(r) ? (double)INFINITY : r;
                }
            CHECK(worst <= 1.0, "linear bf16 %s: error %.3g of the bound 2^-7 sum|terms|", pl_dtype_name(bt[ti]), worst);
            /* two weights sharing the input (W and W with its rows reversed):
             * the forward gives the single product's bits; the backward's f32
             * sum of both stays within the bound of the summed terms */
            {
                uint8_t *rev = malloc(rb * (size_t)nout);
                pl_real *dyr = malloc(sizeof(pl_real) * T * (size_t)nout), *y3 = malloc(sizeof(pl_real) * T * (size_t)nout);
                pl_real *dx3 = calloc((size_t)T * nin, sizeof(pl_real));
                for (int o = 0; o < nout; o++) memcpy(rev + rb * (size_t)o, data + rb * (size_t)(nout - 1 - o), rb);
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < nout; o++) dyr[t * nout + o] = dy[t * nout + (nout - 1 - o)];
                pl_tr_weight wr = {rev, (int)bt[ti], nin, nout, rb, NULL, NULL};
                const pl_tr_weight *ws[2] = {&w, &wr};
                CHECK_OK(pl_tr_linear_fwd_bf16_n(2, (pl_real *const[]){y2, y3}, ws, x, T));
                int same = !memcmp(y1, y2, sizeof(pl_real) * T * (size_t)nout);
                for (int t = 0; t < T; t++)
                    for (int o = 0; o < nout; o++) same = same && y3[t * nout + o] == y1[t * nout + (nout - 1 - o)];
                CHECK(same, "linear bf16 %s: shared-input forward differs from the single product",
                      pl_dtype_name(bt[ti]));
                CHECK_OK(pl_tr_linear_bwd_bf16_n(dx3, 2, (const pl_real *const[]){dy, dyr}, ws, T));
                double w2 = 0;
                for (int t = 0; t < T; t++)
                    for (int i = 0; i < nin; i++) {
                        double s = 0, a = 0;
                        for (int o = 0; o < nout; o++) {
                            s += dy[t * nout + o] * (double)wf[(size_t)o * nin + i];
                            a += fabs(dy[t * nout + o] * (double)wf[(size_t)o * nin + i]);
                        }
                        double r = fabs(dx3[t * nin + i] - 2 * s) / (2 * a / 128 + 1e-300);
                        if (!(r <= w2)) w2 = isnan(r) ? (double)INFINITY : r;
                    }
                CHECK(w2 <= 1.0, "linear bf16 %s: shared-input backward error %.3g of the bound", pl_dtype_name(bt[ti]),
                      w2);
                free(rev);
                free(dyr);
                free(y3);
                free(dx3);
            }
            if (pl_bf16_gemm_native()) {
                size_t bytes = pl_bf16_tiles_bytes(nout, nin);
                uint16_t *ta = pl_alloc_aligned(bytes), *tb = pl_alloc_aligned(bytes);
                CHECK_OK(pl_bf16_tiles_pack(bt[ti], data, 0, nout, nin, 0, ta));
                CHECK_OK(pl_bf16_tiles_pack(bt[ti], data, 0, nout, nin, 1, tb));
                w.tiles = ta;
                w.tiles_t = tb;
                CHECK_OK(pl_tr_linear_fwd_bf16(y2, x, T, &w));
                CHECK_OK(pl_tr_linear_bwd_bf16(dx2, dy, T, &w));
                CHECK(!memcmp(y1, y2, sizeof(pl_real) * T * (size_t)nout) &&
                          !memcmp(dx1, dx2, sizeof(pl_real) * T * (size_t)nin),
                      "linear bf16 %s: tiles converted once differ from per-call conversion", pl_dtype_name(bt[ti]));
                pl_free_aligned(ta);
                pl_free_aligned(tb);
            }
            free(data);
            free(src);
            free(wf);
            free(x);
            free(dy);
            free(y1);
            free(y2);
            free(dx1);
            free(dx2);
        }
    }

    /* dense, LoRA (with and without dropout), attention: BLAS vs scalar on double data */
    enum { TD = 7, NI = 24, NO = 18, R = 4 };
    pl_real W[NO * NI], xx[TD * NI], dyy[TD * NO], ya[TD * NO], yb[TD * NO];
    pl_real dxa[TD * NI], dxb[TD * NI], dWa[NO * NI], dWb[NO * NI];
    fill(W, NO * NI, 1.0);
    fill(xx, TD * NI, 1.0);
    fill(dyy, TD * NO, 1.0);
    fill(ya, TD * NO, 1.0);
    memcpy(yb, ya, sizeof ya);
    pl_tr_dense_fwd(ya, xx, W, TD, NI, NO, 1);
    pl_tr_dense_fwd_blas(yb, xx, W, TD, NI, NO, 1);
    fill(dxa, TD * NI, 1.0);
    memcpy(dxb, dxa, sizeof dxa);
    fill(dWa, NO * NI, 1.0);
    memcpy(dWb, dWa, sizeof dWa);
    pl_tr_dense_bwd(dxa, dWa, dyy, xx, W, TD, NI, NO);
    pl_tr_dense_bwd_blas(dxb, dWb, dyy, xx, W, TD, NI, NO);
    double e = fmax(max_rel(yb, ya, TD * NO), fmax(max_rel(dxb, dxa, TD * NI), max_rel(dWb, dWa, NO * NI)));
    CHECK(e <= TOL_BLAS, "dense BLAS vs scalar: rel err %.3g", e);
    for (int pi = 0; pi < 2; pi++) {
        pl_real A[R * NI], B[NO * R], dA[2][R * NI], dB[2][NO * R], u[2][TD * R], du[TD * R], xd[TD * NI];
        fill(A, R * NI, 1.0);
        fill(B, NO * R, 1.0);
        memset(dA, 0, sizeof dA);
        memset(dB, 0, sizeof dB);
        pl_real y2[2][TD * NO], dx2[2][TD * NI];
        fill(y2[0], TD * NO, 1.0);
        memcpy(y2[1], y2[0], sizeof y2[0]);
        fill(dx2[0], TD * NI, 1.0);
        memcpy(dx2[1], dx2[0], sizeof dx2[0]);
        for (int v = 0; v < 2; v++) {
            pl_tr_lora L = {A, B, dA[v], dB[v], R, NI, NO, 2.0, pi ? 0.25 : 0.0, 12345};
            if (v == 0) {
                pl_tr_lora_fwd(&L, y2[v], u[v], xx, TD, xd);
                pl_tr_lora_bwd(&L, dx2[v], dyy, u[v], xx, TD, du, xd);
            } else {
                pl_tr_lora_fwd_blas(&L, y2[v], u[v], xx, TD, xd);
                pl_tr_lora_bwd_blas(&L, dx2[v], dyy, u[v], xx, TD, du, xd);
            }
        }
        e = fmax(fmax(max_rel(y2[1], y2[0], TD * NO), max_rel(dx2[1], dx2[0], TD * NI)),
                 fmax(max_rel(dA[1], dA[0], R * NI), max_rel(dB[1], dB[0], NO * R)));
        CHECK(e <= TOL_BLAS, "LoRA BLAS vs scalar (dropout %g): rel err %.3g", pi ? 0.25 : 0.0, e);
    }
    /* three targets sharing x (n_out NO, NO + 3, 2): the stacked-A form vs
     * three single calls */
    {
        enum { NT = 3 };
        int tn_out[NT] = {NO, NO + 3, 2};
        pl_real *A[NT], *B[NT], *dA[2][NT], *dB[2][NT], *u[2][NT], *y[2][NT], *dy[NT], dxs[2][TD * NI], du[TD * R],
            xd[TD * NI];
        fill(dxs[0], TD * NI, 1.0);
        memcpy(dxs[1], dxs[0], sizeof dxs[0]);
        pl_tr_lora L[2][NT];
        const pl_tr_lora *Lp[NT];
        for (int i = 0; i < NT; i++) {
            int no = tn_out[i];
            A[i] = malloc(sizeof(pl_real) * R * NI);
            B[i] = malloc(sizeof(pl_real) * (size_t)no * R);
            dy[i] = malloc(sizeof(pl_real) * TD * (size_t)no);
            fill(A[i], R * NI, 1.0);
            fill(B[i], (int64_t)no * R, 1.0);
            fill(dy[i], (int64_t)TD * no, 1.0);
            for (int v = 0; v < 2; v++) {
                dA[v][i] = calloc(R * NI, sizeof(pl_real));
                dB[v][i] = calloc((size_t)no * R, sizeof(pl_real));
                u[v][i] = malloc(sizeof(pl_real) * TD * R);
                y[v][i] = malloc(sizeof(pl_real) * TD * (size_t)no);
                for (int j = 0; j < TD * no; j++) y[v][i][j] = 0.1 * j;
                L[v][i] = (pl_tr_lora){A[i], B[i], dA[v][i], dB[v][i], R, NI, no, 1.5 + i, 0.0, 7};
            }
            Lp[i] = &L[1][i];
            pl_tr_lora_fwd_blas(&L[0][i], y[0][i], u[0][i], xx, TD, xd);
            pl_tr_lora_bwd_blas(&L[0][i], dxs[0], dy[i], u[0][i], xx, TD, du, xd);
        }
        CHECK_OK(pl_tr_lora_fwd_n(NT, Lp, y[1], u[1], xx, TD));
        CHECK_OK(pl_tr_lora_bwd_n(NT, Lp, dxs[1], (const pl_real *const *)dy, (const pl_real *const *)u[1], xx, TD));
        e = max_rel(dxs[1], dxs[0], TD * NI);
        for (int i = 0; i < NT; i++) {
            e = fmax(e, fmax(max_rel(y[1][i], y[0][i], (int64_t)TD * tn_out[i]), max_rel(u[1][i], u[0][i], TD * R)));
            e = fmax(e, fmax(max_rel(dA[1][i], dA[0][i], R * NI), max_rel(dB[1][i], dB[0][i], (int64_t)tn_out[i] * R)));
        }
        CHECK(e <= TOL_BLAS, "LoRA of targets sharing x vs single calls: rel err %.3g", e);
        for (int i = 0; i < NT; i++) {
            free(A[i]);
            free(B[i]);
            free(dy[i]);
            for (int v = 0; v < 2; v++) {
                free(dA[v][i]);
                free(dB[v][i]);
                free(u[v][i]);
                free(y[v][i]);
            }
        }
    }
    /* attention: GQA, with soft-cap and sliding window; 9 positions (one
     * block of query rows) and 150 (three blocks, the last partial, with a
     * window reaching across blocks) */
    enum { AH = 4, AKV = 2, AHD = 6 };
    for (int var = 0; var < 6; var++) {
        int AT = var < 3 ? 9 : 150;
        pl_tr_attn a = {AH, AKV, AHD, 0.4, var % 3 == 1 ? 5.0 : 0.0, var % 3 == 2 ? (AT > 9 ? 70 : 3) : 0};
        size_t nq = (size_t)AT * AH * AHD, nk = (size_t)AT * AKV * AHD, np = (size_t)AH * AT * AT;
        pl_real *q = malloc(nq * sizeof *q), *k = malloc(nk * sizeof *k), *v = malloc(nk * sizeof *v);
        pl_real *dz = malloc(nq * sizeof *dz), *z[2], *P[2], *dq[2], *dk[2], *dv[2];
        for (int c = 0; c < 2; c++) {
            z[c] = malloc(nq * sizeof **z);
            P[c] = malloc(np * sizeof **P);
            dq[c] = calloc(nq, sizeof **dq);
            dk[c] = calloc(nk, sizeof **dk);
            dv[c] = calloc(nk, sizeof **dv);
        }
        fill(q, (int64_t)nq, 1.0);
        fill(k, (int64_t)nk, 1.0);
        fill(v, (int64_t)nk, 1.0);
        fill(dz, (int64_t)nq, 1.0);
        pl_tr_attn_fwd(&a, z[0], P[0], q, k, v, AT);
        pl_tr_attn_fwd_blas(&a, z[1], P[1], q, k, v, AT);
        CHECK_OK(pl_tr_attn_bwd(&a, dq[0], dk[0], dv[0], dz, P[0], q, k, v, AT));
        CHECK_OK(pl_tr_attn_bwd_blas(&a, dq[1], dk[1], dv[1], dz, P[1], q, k, v, AT));
        e = fmax(fmax(max_rel(z[1], z[0], (int64_t)nq), max_rel(P[1], P[0], (int64_t)np)),
                 fmax(max_rel(dq[1], dq[0], (int64_t)nq),
                      fmax(max_rel(dk[1], dk[0], (int64_t)nk), max_rel(dv[1], dv[0], (int64_t)nk))));
        CHECK(e <= TOL_BLAS, "attention BLAS vs scalar (variant %d, %d positions): rel err %.3g", var % 3, AT, e);
        /* the f32 products (bf16 precision) */
        memset(dq[1], 0, nq * sizeof **dq);
        memset(dk[1], 0, nk * sizeof **dk);
        memset(dv[1], 0, nk * sizeof **dv);
        /* P in f32: [AH, AT, pl_tr_attn_ld(AT)] (rows on 64-byte lines) */
        const int64_t ldp = pl_tr_attn_ld(AT);
        CHECK(ldp >= AT && ldp % 16 == 0 && ldp < AT + 16, "P's row stride %lld for %d positions", (long long)ldp, AT);
        float *Pf = malloc((size_t)(AH * AT * ldp) * sizeof *Pf);
        CHECK_OK(pl_tr_attn_fwd_f32(&a, z[1], Pf, q, k, v, AT));
        CHECK_OK(pl_tr_attn_bwd_f32(&a, dq[1], dk[1], dv[1], dz, Pf, q, k, v, AT));
        for (int64_t r = 0; r < (int64_t)AH * AT; r++)
            for (int j = 0; j < AT; j++) P[1][r * AT + j] = (double)Pf[r * ldp + j];
        free(Pf);
        e = fmax(fmax(max_rel(z[1], z[0], (int64_t)nq), max_rel(P[1], P[0], (int64_t)np)),
                 fmax(max_rel(dq[1], dq[0], (int64_t)nq),
                      fmax(max_rel(dk[1], dk[0], (int64_t)nk), max_rel(dv[1], dv[0], (int64_t)nk))));
        CHECK(e <= TOL_ATT_F32, "attention f32 vs scalar (variant %d, %d positions): rel err %.3g", var % 3, AT, e);
        if (var == 5) printf("attn    f32 products vs double: rel err %.2g (150 positions, window)\n", e);
        free(q);
        free(k);
        free(v);
        free(dz);
        for (int c = 0; c < 2; c++) {
            free(z[c]);
            free(P[c]);
            free(dq[c]);
            free(dk[c]);
            free(dv[c]);
        }
    }
    printf("fast    f32 linear (8 dtypes) and BLAS dense/LoRA/attention agree with the double reference\n");
}

/* The bf16 precision's kernels: pl_tr_sgemm (the AVX-512 kernel: the bits
 * of the scalar fma-chain reference; both within the float32 bound of the
 * exact sum), the fused bf16 + f32 conversion, the projections (frozen bf16
 * products + LoRA, shared input, dropout, with and without tiles) against
 * the double kernels, and the float-storage RMSNorm, SwiGLU and attention. */
/* an fma chain of K terms onto C: |err| <= (K + 1)·2^-24·Σ|terms| (first order) */
#define SGEMM_ULPS(K) ((double)((K) + 1) * 0x1p-24)
/* LoRA products in f32 of f32-rounded inputs, two chained (u then y; du then
 * dA): (K + 3)·2^-24 each, K <= 80 here */
#define TOL_LORA_F32 2e-5
/* The LoRA weight gradients' product C = Aᵀ·B over K tokens
 * (pl_tr_lora_grad): on the tiles against the double sum of the
 * bf16-rounded operands (bound 4e-5 · Σ|terms|: float sums of up to 256
 * terms), without tiles against the double sum of the floats (2e-5). */
static void test_lora_grad(void) {
    const int Ms[] = {5, 16, 48}, Ns[] = {40, 576}, Ks[] = {7, 40, 256};
    mm16 *s = NULL;
    double worst[2] = {0, 0};
    for (int tiles = 0; tiles < 2; tiles++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 2; b++)
                for (int c = 0; c < 3; c++) {
                    const int M = Ms[a], N = Ns[b], K = Ks[c], lda = M + 3, ldb = N + 5;
                    float *A = malloc(sizeof(float) * (size_t)K * lda), *B = malloc(sizeof(float) * (size_t)K * ldb);
                    float *C = malloc(sizeof(float) * (size_t)M * N);
                    for (int i = 0; i < K * lda; i++) A[i] = (float)(2 * pl_rng_uniform(&g_rng) - 1);
                    for (int i = 0; i < K * ldb; i++) B[i] = (float)(2 * pl_rng_uniform(&g_rng) - 1) * 3.0f;
                    CHECK_OK(pl_tr_lora_grad(&s, tiles, M, N, K, A, lda, B, ldb, C));
                    const int bf = tiles && pl_bf16_gemm_native();
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double sum = 0, mag = 0;
                            for (int k = 0; k < K; k++) {
                                double x = A[(size_t)k * lda + i], y = B[(size_t)k * ldb + j];
                                if (bf) {
                                    x = pl_bf16_to_fp32(pl_fp32_to_bf16((float)x));
                                    y = pl_bf16_to_fp32(pl_fp32_to_bf16((float)y));
                                }
                                sum += x * y;
                                mag += fabs(x * y);
                            }
                            double r = fabs((double)C[(size_t)i * N + j] - sum) / ((bf ? 4e-5 : 2e-5) * mag + 1e-300);
                            if (!(r <= worst[tiles])) worst[tiles] = isnan(r) ? (double)INFINITY : r;
                        }
                    free(A);
                    free(B);
                    free(C);
                }
    pl_tr_mm16_free(s);
    CHECK(worst[0] <= 1.0 && worst[1] <= 1.0, "LoRA gradient products: %.3g (float) and %.3g (%s) of their bounds",
          worst[0], worst[1], pl_bf16_gemm_native() ? "tiles" : "no AMX: float");
    printf("lora    gradient products Aᵀ·B: float %.2g, %s %.2g of their bounds\n", worst[0],
           pl_bf16_gemm_native() ? "tiles" : "float (no AMX)", worst[1]);
}

/* The fused SwiGLU + down projection (pl_tr_swiglu_down_bf16) gives the
 * bits of the SiLU then the projection: y and s compared bit for bit. */
static void test_swiglu_down(void) {
    enum { F = 96, NO = 40 };
    const int Ts[] = {32, 45, 64};
    for (int c = 0; c < 3; c++) {
        const int T = Ts[c];
        size_t rb;
        CHECK_OK(pl_dtype_row_bytes(PL_DTYPE_Q8_0, F, &rb));
        uint8_t *wd = malloc(rb * NO);
        float *src = malloc(sizeof(float) * F);
        for (int o = 0; o < NO; o++) {
            for (int k = 0; k < F; k++) src[k] = (float)(2 * pl_rng_uniform(&g_rng) - 1);
            CHECK_OK(pl_quantize_row(PL_DTYPE_Q8_0, src, wd + rb * (size_t)o, F));
        }
        uint16_t *tl = pl_alloc_aligned(pl_bf16_tiles_bytes(NO, F));
        CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_Q8_0, wd, 0, NO, F, 0, tl));
        pl_tr_weight w = {wd, (int)PL_DTYPE_Q8_0, F, NO, rb, tl, NULL};
        const pl_tr_weight *wp[1] = {&w};
        float *g = malloc(sizeof(float) * T * F), *u = malloc(sizeof(float) * T * F), *h = malloc(sizeof(float) * T * F);
        float *s1 = malloc(sizeof(float) * T * F), *s2 = malloc(sizeof(float) * T * F);
        float *y1 = malloc(sizeof(float) * T * NO), *y2 = malloc(sizeof(float) * T * NO);
        for (int i = 0; i < T * F; i++) {
            g[i] = (float)(6 * pl_rng_uniform(&g_rng) - 3);
            u[i] = (float)(2 * pl_rng_uniform(&g_rng) - 1);
        }
        int done = 0;
        CHECK_OK(pl_tr_swiglu_down_bf16(y2, s2, g, u, &w, T, &done));
        pl_tr_glu_fwd_sf(h, s1, g, u, (int64_t)T * F, PL_ACT_SILU);
        CHECK_OK(pl_tr_proj_fwd_bf16(1, (float *const[]){y1}, wp, (const pl_tr_lora *const[]){NULL},
                                     (float *const[]){NULL}, h, T));
        const int amx = pl_bf16_gemm_native() && pl_simd_active() == PL_SIMD_AVX512;
        CHECK(done == amx, "SwiGLU + down, %d tokens: fused %d where the tiles and AVX-512 are %d", T, done, amx);
        if (done)
            CHECK(memcmp(y1, y2, sizeof(float) * T * NO) == 0 && memcmp(s1, s2, sizeof(float) * T * F) == 0,
                  "SwiGLU + down, %d tokens: the fused kernel's bits differ from SiLU then the projection", T);
        /* backward: gate and up weights [F x 64] (n_in 64), their transposed
         * tiles; the arrays above reused (dh = u, g, u = h, s = s1) */
        {
            enum { DB = 64 };
            size_t rb2;
            CHECK_OK(pl_dtype_row_bytes(PL_DTYPE_Q8_0, DB, &rb2));
            uint8_t *wgd = malloc(rb2 * F), *wud = malloc(rb2 * F);
            float *srow = malloc(sizeof(float) * DB);
            for (int which = 0; which < 2; which++)
                for (int o = 0; o < F; o++) {
                    for (int k = 0; k < DB; k++) srow[k] = (float)(2 * pl_rng_uniform(&g_rng) - 1);
                    CHECK_OK(pl_quantize_row(PL_DTYPE_Q8_0, srow, (which ? wud : wgd) + rb2 * (size_t)o, DB));
                }
            uint16_t *tg = pl_alloc_aligned(pl_bf16_tiles_bytes(F, DB)), *tu = pl_alloc_aligned(pl_bf16_tiles_bytes(F, DB));
            CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_Q8_0, wgd, 0, F, DB, 1, tg));
            CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_Q8_0, wud, 0, F, DB, 1, tu));
            pl_tr_weight wg = {wgd, (int)PL_DTYPE_Q8_0, DB, F, rb2, NULL, tg}, wu = {wud, (int)PL_DTYPE_Q8_0, DB, F, rb2, NULL, tu};
            const pl_tr_weight *wgu[2] = {&wg, &wu};
            float *dg = malloc(sizeof(float) * T * F), *du = malloc(sizeof(float) * T * F);
            pl_real *dx1 = malloc(sizeof(pl_real) * T * DB), *dx2 = malloc(sizeof(pl_real) * T * DB);
            int bdone = 0;
            CHECK_OK(pl_tr_swiglu_bwd_bf16(dx2, u, g, h, s1, &wg, &wu, T, &bdone));
            pl_tr_glu_bwd_sf(dg, du, u, g, h, s1, (int64_t)T * F, PL_ACT_SILU);
            CHECK_OK(pl_tr_proj_bwd_bf16(dx1, NULL, 2, NULL, (const float *const[]){dg, du}, wgu,
                                         (const pl_tr_lora *const[]){NULL, NULL}, (const float *const[]){NULL, NULL}, g, T));
            CHECK(bdone == amx, "SwiGLU backward, %d tokens: fused %d where the tiles and AVX-512 are %d", T, bdone, amx);
            if (bdone)
                CHECK(memcmp(dx1, dx2, sizeof(pl_real) * T * DB) == 0,
                      "SwiGLU backward, %d tokens: the fused kernel's bits differ from SiLU's backward then the projections", T);
            free(wgd);
            free(wud);
            free(srow);
            pl_free_aligned(tg);
            pl_free_aligned(tu);
            free(dg);
            free(du);
            free(dx1);
            free(dx2);
        }
        free(wd);
        free(src);
        pl_free_aligned(tl);
        free(g);
        free(u);
        free(h);
        free(s1);
        free(s2);
        free(y1);
        free(y2);
    }
}

static void test_bf16_lora_kernels(void) {
    pl_rng saved = g_rng; /* the later tests see the random data they saw before this test existed */
    static const int shapes[][5] = {/* M, N, K, trans_a, accumulate */
                                    {1, 1, 1, 0, 0},     {7, 16, 5, 0, 1},    {13, 17, 33, 0, 0},  {25, 48, 300, 0, 1},
                                    {30, 100, 16, 0, 0}, {50, 131, 20, 1, 1}, {19, 200, 256, 1, 0}, {64, 32, 40, 1, 0},
                                    {12, 64, 7, 0, 1},   {37, 80, 3, 1, 1},   {5, 16, 0, 0, 0}};
    int simd = pl_simd_active() == PL_SIMD_AVX512;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2], ta = shapes[si][3], acc = shapes[si][4];
        int lda = (ta ? M : K) + 3, ldb = N + 2, ldc = N + 5;
        size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)K * ldb + 1, nc = (size_t)M * ldc;
        float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B), *C0 = malloc(nc * sizeof *C0);
        float *C1 = malloc(nc * sizeof *C1), *C2 = malloc(nc * sizeof *C2);
        for (size_t i = 0; i < na; i++) A[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
        for (size_t i = 0; i < nb; i++) B[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
        for (size_t i = 0; i < nc; i++) C0[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
        memcpy(C1, C0, nc * sizeof *C0);
        memcpy(C2, C0, nc * sizeof *C0);
        pl_tr_sgemm_ref(ta, M, N, K, A, lda, B, ldb, C1, ldc, acc);
        pl_tr_sgemm(ta, M, N, K, A, lda, B, ldb, C2, ldc, acc);
        double worst = 0.0;
        int pad_ok = 1;
        for (int i = 0; i < M; i++) {
            for (int j = N; j < ldc; j++) pad_ok = pad_ok && C2[i * ldc + j] == C0[i * ldc + j];
            for (int j = 0; j < N; j++) {
                double s = acc ? (double)C0[i * ldc + j] : 0.0, a = fabs(s);
                for (int k = 0; k < K; k++) {
                    double p = (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (double)B[k * ldb + j];
                    s += p;
                    a += fabs(p);
                }
                for (int v = 0; v < 2; v++) {
                    double r = fabs((double)(v ? C2 : C1)[i * ldc + j] - s) / (SGEMM_ULPS(K) * a + 1e-300);
                    if (!(r <= worst)) worst = isnan(r) ? (double)INFINITY : r;
                }
            }
        }
        CHECK(worst <= 1.0, "sgemm %dx%dx%d trans %d acc %d: error %.3g of the bound (K+1)·2^-24·sum|terms|", M, N,
              K, ta, acc, worst);
        CHECK(pad_ok, "sgemm %dx%dx%d trans %d: wrote past the N columns of a row", M, N, K, ta);
        if (simd)
            CHECK(memcmp(C1, C2, nc * sizeof *C1) == 0, "sgemm %dx%dx%d trans %d acc %d: AVX-512 bits differ from the "
                  "scalar fma-chain reference", M, N, K, ta, acc);
        free(A);
        free(B);
        free(C0);
        free(C1);
        free(C2);
    }
    /* doubles to bf16 and f32 in one pass: the bits of pl_tr_to_bf16 and (float) */
    {
        enum { NX = 45 };
        pl_real x[NX];
        fill(x, NX, 3.0);
        x[3] = 1e-40;
        x[4] = -0.0;
        x[5] = 1e39;
        x[6] = NAN;
        int bad = -1;
        for (int len = 0; len <= NX; len++) {
            uint16_t hb[NX + 1], want[NX + 1];
            float hf[NX + 1];
            hb[len] = 0xABCD;
            hf[len] = 7.0f;
            pl_tr_to_bf16_f32(hb, hf, x, len);
            pl_tr_to_bf16(want, x, len);
            for (int i = 0; i < len; i++) {
                float f = (float)x[i];
                if (hb[i] != want[i] || (memcmp(&hf[i], &f, sizeof f) != 0)) bad = i;
            }
            if (hb[len] != 0xABCD || hf[len] != 7.0f) bad = -2;
        }
        CHECK(bad == -1, "doubles to bf16 + f32: element %d differs (-2: wrote past the end)", bad);
    }
    /* scaled doubles to f32 and f32 added to doubles: the bits of the scalar loops */
    {
        enum { NX = 37 };
        pl_real x[NX], y0[NX], y1[NX];
        float f[NX + 1], g[NX];
        fill(x, NX, 4.0);
        fill(y0, NX, 4.0);
        memcpy(y1, y0, sizeof y0);
        int bad = -1;
        for (int len = 0; len <= NX; len++) {
            f[len] = 7.0f;
            pl_tr_scale_f32(f, x, 0.3, len);
            for (int i = 0; i < len; i++) {
                float want = (float)(x[i] * 0.3);
                if (memcmp(&f[i], &want, sizeof want) != 0) bad = i;
            }
            if (f[len] != 7.0f) bad = -2;
        }
        for (int i = 0; i < NX; i++) g[i] = (float)x[NX - 1 - i];
        pl_tr_add_f32(y1, g, NX);
        for (int i = 0; i < NX; i++) {
            double want = y0[i] + (double)g[i];
            if (memcmp(&y1[i], &want, sizeof want) != 0) bad = 100 + i;
        }
        CHECK(bad == -1, "scale to f32 / add f32: element %d differs from the scalar loop (-2: wrote past the end)", bad);
    }
    /* projections: three weights sharing x (n_out 48, 80, 40), LoRA of rank
     * 5 on the first and third; vs the double linear + LoRA kernels */
    enum { NI = 64, NT = 3, R = 5 };
    const int nouts[NT] = {48, 80, 40};
    for (int var = 0; var < 6; var++) {
        int T = var % 3 == 2 ? 7 : 40, use_tiles = var % 3 == 0 && pl_bf16_gemm_native();
        double p = var < 3 ? 0.0 : 0.2;
        pl_dtype dt = var % 2 ? PL_DTYPE_Q8_0 : PL_DTYPE_F32;
        size_t rb;
        CHECK_OK(pl_dtype_row_bytes(dt, NI, &rb));
        pl_tr_weight w[NT], wa[NT];
        const pl_tr_weight *wp[NT];
        uint8_t *data[NT], *adata[NT];
        uint16_t *tl[NT][2];
        pl_real *A[NT], *B[NT], *aA[NT], *aB[NT], *dA[3][NT], *dB[3][NT], *y[3][NT], *u[3][NT], *dy[2][NT];
        pl_tr_lora L[3][NT];
        const pl_tr_lora *Lp[NT];
        pl_real *x[2], *dx[3];
        x[0] = malloc(sizeof(pl_real) * (size_t)T * NI);
        x[1] = malloc(sizeof(pl_real) * (size_t)T * NI);
        fill(x[0], (int64_t)T * NI, 1.0);
        for (int i = 0; i < T * NI; i++) x[1][i] = fabs(x[0][i]);
        for (int c = 0; c < 3; c++) dx[c] = calloc((size_t)T * NI, sizeof(pl_real));
        for (int i = 0; i < NT; i++) {
            int no = nouts[i];
            float *src = malloc(sizeof(float) * NI), *wf = malloc(sizeof(float) * NI);
            data[i] = malloc(rb * (size_t)no);
            adata[i] = malloc(sizeof(float) * (size_t)no * NI);
            for (int o = 0; o < no; o++) {
                for (int k = 0; k < NI; k++) src[k] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0);
                CHECK_OK(pl_quantize_row(dt, src, data[i] + rb * (size_t)o, NI));
                CHECK_OK(pl_dequantize_row(dt, data[i] + rb * (size_t)o, wf, NI));
                for (int k = 0; k < NI; k++) ((float *)(void *)adata[i])[(size_t)o * NI + k] = fabsf(wf[k]);
            }
            free(src);
            free(wf);
            w[i] = (pl_tr_weight){data[i], (int)dt, NI, no, rb, NULL, NULL};
            wa[i] = (pl_tr_weight){adata[i], PL_DTYPE_F32, NI, no, sizeof(float) * NI, NULL, NULL};
            tl[i][0] = tl[i][1] = NULL;
            if (use_tiles) {
                size_t bytes = pl_bf16_tiles_bytes(no, NI);
                tl[i][0] = pl_alloc_aligned(bytes);
                tl[i][1] = pl_alloc_aligned(bytes);
                CHECK_OK(pl_bf16_tiles_pack(dt, data[i], 0, no, NI, 0, tl[i][0]));
                CHECK_OK(pl_bf16_tiles_pack(dt, data[i], 0, no, NI, 1, tl[i][1]));
                w[i].tiles = tl[i][0];
                w[i].tiles_t = tl[i][1];
            }
            wp[i] = &w[i];
            A[i] = malloc(sizeof(pl_real) * R * NI);
            B[i] = malloc(sizeof(pl_real) * (size_t)no * R);
            aA[i] = malloc(sizeof(pl_real) * R * NI);
            aB[i] = malloc(sizeof(pl_real) * (size_t)no * R);
            fill(A[i], R * NI, 0.5);
            fill(B[i], (int64_t)no * R, 0.5);
            for (int k = 0; k < R * NI; k++) aA[i][k] = fabs(A[i][k]);
            for (int k = 0; k < no * R; k++) aB[i][k] = fabs(B[i][k]);
            for (int c = 0; c < 2; c++) {
                dy[c][i] = malloc(sizeof(pl_real) * (size_t)T * no);
                if (c == 0) fill(dy[0][i], (int64_t)T * no, 1.0);
                else
                    for (int k = 0; k < T * no; k++) dy[1][i][k] = fabs(dy[0][i][k]);
            }
            for (int c = 0; c < 3; c++) {
                dA[c][i] = calloc(R * NI, sizeof(pl_real));
                dB[c][i] = calloc((size_t)no * R, sizeof(pl_real));
                y[c][i] = calloc((size_t)T * no, sizeof(pl_real));
                u[c][i] = calloc((size_t)T * R, sizeof(pl_real));
                /* c: 0 the code under test, 1 the double reference, 2 the reference on |values| */
                L[c][i] = (pl_tr_lora){c == 2 ? aA[i] : A[i], c == 2 ? aB[i] : B[i], dA[c][i], dB[c][i], R, NI, no,
                                       2.0, p, 99 + (uint64_t)i};
            }
            Lp[i] = i == 1 ? NULL : &L[0][i];
        }
        pl_real *xd = malloc(sizeof(pl_real) * (size_t)T * NI), *du = malloc(sizeof(pl_real) * (size_t)T * R);
        /* activations in f32 (x exactly representable: the reference reads the same values) */
        float *xs = malloc(sizeof(float) * (size_t)T * NI), *ys[NT], *us[NT];
        for (int k = 0; k < T * NI; k++) {
            xs[k] = (float)x[0][k];
            x[0][k] = (double)xs[k];
        }
        for (int i = 0; i < NT; i++) {
            ys[i] = malloc(sizeof(float) * (size_t)T * nouts[i]);
            us[i] = malloc(sizeof(float) * (size_t)T * R);
        }
        CHECK_OK(pl_tr_proj_fwd_bf16(NT, ys, wp, Lp, us, xs, T));
        CHECK_OK(pl_tr_proj_bwd_bf16(dx[0], NULL, NT, (const pl_real *const *)dy[0], NULL, wp, Lp,
                                     (const float *const *)us, xs, T));
        float *dxs32 = malloc(sizeof(float) * (size_t)T * NI);
        {   /* dx is written, not added to; float dy and a float dx give the same values within f32 rounding */
            pl_real *dxw = malloc(sizeof(pl_real) * (size_t)T * NI), *keep[2][NT];
            float *dyf[NT], *dxf = malloc(sizeof(float) * (size_t)T * NI);
            fill(dxw, (int64_t)T * NI, 5.0);
            for (int i = 0; i < NT; i++) { /* the LoRA gradients as after one call */
                keep[0][i] = malloc(sizeof(pl_real) * R * NI);
                keep[1][i] = malloc(sizeof(pl_real) * (size_t)nouts[i] * R);
                memcpy(keep[0][i], dA[0][i], sizeof(pl_real) * R * NI);
                memcpy(keep[1][i], dB[0][i], sizeof(pl_real) * (size_t)nouts[i] * R);
                dyf[i] = malloc(sizeof(float) * (size_t)T * nouts[i]);
                for (int k = 0; k < T * nouts[i]; k++) dyf[i][k] = (float)dy[0][i][k];
            }
            CHECK_OK(pl_tr_proj_bwd_bf16(dxw, NULL, NT, (const pl_real *const *)dy[0], NULL, wp, Lp,
                                         (const float *const *)us, xs, T));
            CHECK(memcmp(dxw, dx[0], sizeof(pl_real) * (size_t)T * NI) == 0,
                  "projection backward (%d tokens, dropout %g): a second call into garbage differs", T, p);
            CHECK_OK(pl_tr_proj_bwd_bf16(NULL, dxf, NT, NULL, (const float *const *)dyf, wp, Lp,
                                         (const float *const *)us, xs, T));
            for (int k = 0; k < T * NI; k++) dxs32[k] = dxf[k];
            for (int i = 0; i < NT; i++) {
                memcpy(dA[0][i], keep[0][i], sizeof(pl_real) * R * NI);
                memcpy(dB[0][i], keep[1][i], sizeof(pl_real) * (size_t)nouts[i] * R);
                free(keep[0][i]);
                free(keep[1][i]);
                free(dyf[i]);
            }
            free(dxw);
            free(dxf);
        }
        for (int i = 0; i < NT; i++) {
            for (int k = 0; k < T * nouts[i]; k++) y[0][i][k] = (double)ys[i][k];
            for (int k = 0; k < T * R && i != 1; k++) u[0][i][k] = (double)us[i][k];
            free(ys[i]);
            free(us[i]);
        }
        free(xs);
        for (int c = 1; c < 3; c++)
            for (int i = 0; i < NT; i++) {
                const pl_tr_weight *wr = c == 1 ? &(pl_tr_weight){data[i], (int)dt, NI, nouts[i], rb, NULL, NULL}
                                                : &wa[i];
                CHECK_OK(pl_tr_linear_fwd(y[c][i], x[c - 1], T, wr));
                CHECK_OK(pl_tr_linear_bwd(dx[c], dy[c - 1][i], T, wr));
                if (i == 1) continue;
                pl_tr_lora_fwd(&L[c][i], y[c][i], u[c][i], x[c - 1], T, xd);
                pl_tr_lora_bwd(&L[c][i], dx[c], dy[c - 1][i], u[c][i], x[c - 1], T, du, xd);
            }
        /* ratio of |got - want| to the bound tol·(reference on |values|) */
        double ey = 0, edx = 0, eu = 0, eg = 0;
        /* on the tiles u = x·Aᵀ and du = dy·(s·B) are bf16 products (as the frozen ones), else f32 */
        double tol_lora = use_tiles ? 1.0 / 128 : TOL_LORA_F32;
#define WORST(e, got, want, mag, n, tol)                                                                               \
    for (int64_t k_ = 0; k_ < (n); k_++) {                                                                             \
        double r_ = fabs((got)[k_] - (want)[k_]) / ((tol) * (mag)[k_] + 1e-300);                                       \
        if (!(r_ <= (e))) (e) = isnan(r_) ? (double)INFINITY : r_;                                                     \
    }
        for (int i = 0; i < NT; i++) {
            WORST(ey, y[0][i], y[1][i], y[2][i], (int64_t)T * nouts[i], 1.0 / 128);
            if (i == 1) continue;
            WORST(eu, u[0][i], u[1][i], u[2][i], (int64_t)T * R, tol_lora);
            WORST(eg, dA[0][i], dA[1][i], dA[2][i], (int64_t)R * NI, tol_lora);
            WORST(eg, dB[0][i], dB[1][i], dB[2][i], (int64_t)nouts[i] * R, tol_lora);
        }
        WORST(edx, dx[0], dx[1], dx[2], (int64_t)T * NI, 1.0 / 128);
#undef WORST
        CHECK(ey <= 1.0 && edx <= 1.0, "projection bf16+LoRA (%s, %d tokens, dropout %g, tiles %d): y %.3g, dx %.3g "
              "of the bound 2^-7 sum|terms|", pl_dtype_name(dt), T, p, use_tiles, ey, edx);
        CHECK(eu <= 1.0 && eg <= 1.0, "projection LoRA (%d tokens, dropout %g, tiles %d): u %.3g, dA/dB %.3g of the "
              "bound %g sum|terms|", T, p, use_tiles, eu, eg, tol_lora);
        double ef = 0.0;
        for (int k = 0; k < T * NI; k++) {
            double r = fabs((double)dxs32[k] - dx[0][k]) / (1e-6 * dx[2][k] + 1e-300);
            if (!(r <= ef)) ef = isnan(r) ? (double)INFINITY : r;
        }
        CHECK(ef <= 1.0, "projection backward (%d tokens, dropout %g): float dy -> float dx off the double form by "
              "%.3g of 1e-6 sum|terms|", T, p, ef);
        free(dxs32);
        int untouched = 1;
        for (int k = 0; k < R * NI; k++) untouched = untouched && dA[0][1][k] == 0.0;
        CHECK(untouched, "projection: the target without LoRA got gradients");
        free(xd);
        free(du);
        free(x[0]);
        free(x[1]);
        for (int c = 0; c < 3; c++) free(dx[c]);
        for (int i = 0; i < NT; i++) {
            free(data[i]);
            free(adata[i]);
            pl_free_aligned(tl[i][0]);
            pl_free_aligned(tl[i][1]);
            free(A[i]);
            free(B[i]);
            free(aA[i]);
            free(aB[i]);
            for (int c = 0; c < 2; c++) free(dy[c][i]);
            for (int c = 0; c < 3; c++) {
                free(dA[c][i]);
                free(dB[c][i]);
                free(y[c][i]);
                free(u[c][i]);
            }
        }
    }
    /* RMSNorm with 8-partial row sums: the forward's f32 output within one f32
     * rounding of the double kernel's, the backward within TOL_BLAS (the
     * same double sums reordered) */
    {
        enum { RT = 5, RN = 83 };
        pl_real x[RT * RN], w[RN], dy[RT * RN], y[RT * RN], rs0[RT], rs1[RT], dx0[RT * RN], dx1[RT * RN];
        pl_real dw0[RN], dw1[RN];
        float yf[RT * RN];
        fill(x, RT * RN, 2.0);
        fill(w, RN, 1.0);
        fill(dy, RT * RN, 1.0);
        fill(dx0, RT * RN, 1.0);
        memcpy(dx1, dx0, sizeof dx0);
        fill(dw0, RN, 1.0);
        memcpy(dw1, dw0, sizeof dw0);
        pl_tr_rmsnorm_fwd(y, rs0, x, w, RT, RN, 1e-5);
        pl_tr_rmsnorm_fwd_f(yf, rs1, x, w, RT, RN, 1e-5);
        double e = max_rel(rs1, rs0, RT);
        for (int i = 0; i < RT * RN; i++) e = fmax(e, fabs((double)yf[i] - y[i]) / (fabs(y[i]) * 0x1p-23 + 1e-300) * 1e-12);
        pl_tr_rmsnorm_bwd(dx0, dw0, dy, x, rs0, w, RT, RN);
        pl_tr_rmsnorm_bwd8(dx1, dw1, dy, x, rs0, w, RT, RN);
        e = fmax(e, fmax(max_rel(dx1, dx0, RT * RN), max_rel(dw1, dw0, RN)));
        CHECK(e <= TOL_BLAS, "rmsnorm with 8-partial sums vs the serial kernels: %.3g", e);
    }
    /* SwiGLU on float32 storage (SiLU: an f32 kernel on AVX-512; GELU: the
     * double math rounded) vs the double kernels on the same values: within
     * 2e-6 of the terms' magnitudes (a few f32 ulp), gates from -100 to 100 */
    for (int act = 0; act < 2; act++) {
        enum { NG = 1000 };
        pl_act pa = act ? PL_ACT_GELU_TANH : PL_ACT_SILU;
        float *g = malloc(NG * sizeof *g), *u = malloc(NG * sizeof *u), *dh = malloc(NG * sizeof *dh);
        float *h = malloc(NG * sizeof *h), *sv = malloc(NG * sizeof *sv), *dg = malloc(NG * sizeof *dg);
        float *du = malloc(NG * sizeof *du);
        pl_real *gd = malloc(NG * sizeof *gd), *ud = malloc(NG * sizeof *ud), *dhd = malloc(NG * sizeof *dhd);
        pl_real *hd = malloc(NG * sizeof *hd), *sd = malloc(NG * sizeof *sd), *dgd = malloc(NG * sizeof *dgd);
        pl_real *dud = malloc(NG * sizeof *dud);
        for (int i = 0; i < NG; i++) {
            double gi = i < 10 ? (double[]){-100, -90, -88.5, -87, -20, 0, 1e-30, 20, 90, 100}[i]
                               : 12.0 * (2.0 * pl_rng_uniform(&g_rng) - 1.0);
            gd[i] = (double)(g[i] = (float)gi);
            ud[i] = (double)(u[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0));
            dhd[i] = (double)(dh[i] = (float)(2.0 * pl_rng_uniform(&g_rng) - 1.0));
        }
        pl_tr_glu_fwd_sf(h, sv, g, u, NG, pa);
        pl_tr_glu_fwd_s(hd, sd, gd, ud, NG, pa);
        for (int i = 0; i < NG; i++) sd[i] = (double)sv[i]; /* the backward reads the saved f32 term */
        pl_tr_glu_bwd_sf(dg, du, dh, g, u, sv, NG, pa);
        pl_tr_glu_bwd_s(dgd, dud, dhd, gd, ud, sd, NG, pa);
        double worst = 0.0;
        for (int i = 0; i < NG; i++) {
            double ag = fabs(gd[i]), au = fabs(ud[i]), ad = fabs(dhd[i]);
            double r[3] = {fabs((double)h[i] - hd[i]) / (2e-6 * ag * au + 1e-35),
                           fabs((double)dg[i] - dgd[i]) / (2e-6 * ad * au * (1.0 + ag) + 1e-35),
                           fabs((double)du[i] - dud[i]) / (2e-6 * ad * (1.0 + ag) + 1e-35)};
            for (int c = 0; c < 3; c++)
                if (!(r[c] <= worst)) worst = isnan(r[c]) ? (double)INFINITY : r[c];
        }
        CHECK(worst <= 1.0, "glu %s on f32 storage: error %.3g of 2e-6 of the terms' magnitude", act ? "gelu" : "silu",
              worst);
        free(g);
        free(u);
        free(dh);
        free(h);
        free(sv);
        free(dg);
        free(du);
        free(gd);
        free(ud);
        free(dhd);
        free(hd);
        free(sd);
        free(dgd);
        free(dud);
    }
    /* attention on float32 storage (read in place) vs the f32-product kernel on
     * the same values in double; the backward writes dq, dk, dv */
    for (int var = 0; var < 3; var++) {
        enum { AH = 4, AKV = 2, AHD = 6, AT = 150 };
        pl_tr_attn at = {AH, AKV, AHD, 0.4, var == 1 ? 5.0 : 0.0, var == 2 ? 70 : 0};
        size_t nq = (size_t)AT * AH * AHD, nk = (size_t)AT * AKV * AHD, np = (size_t)AH * AT * AT;
        pl_real *qd = malloc(nq * sizeof *qd), *kd = malloc(nk * sizeof *kd), *vd = malloc(nk * sizeof *vd);
        pl_real *dz = malloc(nq * sizeof *dz), *z0 = malloc(nq * sizeof *z0), *z1 = malloc(nq * sizeof *z1);
        pl_real *g0 = calloc(nq + 2 * nk, sizeof *g0), *g1 = malloc((nq + 2 * nk) * sizeof *g1);
        float *qf = malloc(nq * sizeof *qf), *kf = malloc(nk * sizeof *kf), *vf = malloc(nk * sizeof *vf);
        const size_t ldp = (size_t)pl_tr_attn_ld(AT); /* P's rows in f32 */
        float *zf = malloc(nq * sizeof *zf), *P0 = malloc(np / AT * ldp * sizeof *P0),
              *P1 = malloc(np / AT * ldp * sizeof *P1);
        fill(qd, (int64_t)nq, 1.0);
        fill(kd, (int64_t)nk, 1.0);
        fill(vd, (int64_t)nk, 1.0);
        fill(dz, (int64_t)nq, 1.0);
        fill(g1, (int64_t)(nq + 2 * nk), 9.0); /* garbage: written, not added to */
        for (size_t i = 0; i < nq; i++) qd[i] = (double)(qf[i] = (float)qd[i]);
        for (size_t i = 0; i < nk; i++) kd[i] = (double)(kf[i] = (float)kd[i]);
        for (size_t i = 0; i < nk; i++) vd[i] = (double)(vf[i] = (float)vd[i]);
        CHECK_OK(pl_tr_attn_fwd_f32(&at, z0, P0, qd, kd, vd, AT));
        CHECK_OK(pl_tr_attn_fwd_f32s(&at, zf, P1, qf, kf, vf, AT));
        {
            float *dzf = malloc(nq * sizeof *dzf), *gf = malloc((nq + 2 * nk) * sizeof *gf);
            for (size_t i = 0; i < nq; i++) dz[i] = (double)(dzf[i] = (float)dz[i]);
            for (size_t i = 0; i < nq + 2 * nk; i++) gf[i] = (float)g1[i]; /* garbage: written, not added to */
            memset(g0, 0, (nq + 2 * nk) * sizeof *g0);
            CHECK_OK(pl_tr_attn_bwd_f32(&at, g0, g0 + nq, g0 + nq + nk, dz, P0, qd, kd, vd, AT));
            CHECK_OK(pl_tr_attn_bwd_f32s(&at, gf, gf + nq, gf + nq + nk, dzf, P1, qf, kf, vf, AT));
            for (size_t i = 0; i < nq + 2 * nk; i++) g1[i] = (double)gf[i];
            free(dzf);
            free(gf);
        }
        for (size_t i = 0; i < nq; i++) z1[i] = (double)zf[i];
        double e = fmax(max_rel(z1, z0, (int64_t)nq), max_rel(g1, g0, (int64_t)(nq + 2 * nk)));
        for (size_t r = 0; r < np / AT; r++)
            for (size_t j = 0; j < AT; j++) e = fmax(e, fabs((double)P1[r * ldp + j] - (double)P0[r * ldp + j]));
        /* on the AMX machine the float-storage kernel (the bf16 precision's)
         * runs its products on bf16 tiles: bf16 rounding of the operands
         * (2^-8 relative) bounds it instead */
        const double tol = pl_bf16_gemm_native() ? TOL_ATT_BF16 : TOL_ATT_F32;
        CHECK(e <= tol, "attention on f32 storage (variant %d): rel err %.3g vs the double-storage kernel (bound %.3g)",
              var, e, tol);
        free(qd);
        free(kd);
        free(vd);
        free(dz);
        free(z0);
        free(z1);
        free(g0);
        free(g1);
        free(qf);
        free(kf);
        free(vf);
        free(zf);
        free(P0);
        free(P1);
    }
    printf("bf16    small f32 products (sgemm kernel %s), projections, float-storage kernels agree with the double ones\n",
           simd ? "AVX-512, bits of the scalar reference" : "OpenBLAS");
    g_rng = saved;
}

/* The f32 path on the whole tiny models: loss and LoRA/head gradients vs
 * the double reference, repeatability for a thread count, and vs PyTorch. */
static void test_f32_models(const char *arch, const cJSON *ref) {
    for (int obj = 0; obj < 3; obj++) {
        fixture f64, f32a, f32b;
        g_prec = PL_PREC_F64;
        int ok = fixture_open(&f64, arch, ref, (pl_objective)obj, 0.1, 1);
        g_prec = PL_PREC_F32;
        ok = ok && fixture_open(&f32a, arch, ref, (pl_objective)obj, 0.1, 1) &&
             fixture_open(&f32b, arch, ref, (pl_objective)obj, 0.1, 0);
        g_prec = PL_PREC_F64;
        if (!ok) continue;
        size_t np;
        pl_trainer_params(f64.t, &np);
        double l64 = batch_loss(&f64, 1), l32 = batch_loss(&f32a, 1);
        batch_loss(&f32b, 1);
        double rel = fabs(l32 - l64) / fabs(l64);
        CHECK(rel <= TOL_F32_LOSS, "%s %s: f32 loss %.9g vs f64 %.9g (rel %.3g)", arch, OBJ_NAMES[obj], l32, l64, rel);
        const double worst = grads_max_rel(f32a.t, f64.t);
        CHECK(worst <= TOL_F32_GRAD, "%s %s: f32 gradients off the f64 ones by %.3g relative", arch, OBJ_NAMES[obj],
              worst);
        /* same data, same thread count: the same bits (checkpointing on and off) */
        CHECK(memcmp(pl_trainer_grads(f32a.t), pl_trainer_grads(f32b.t), np * sizeof(pl_real)) == 0,
              "%s %s: f32 gradients differ between checkpointed and stored activations", arch, OBJ_NAMES[obj]);
        pl_real *g1 = malloc(np * sizeof *g1);
        memcpy(g1, pl_trainer_grads(f32a.t), np * sizeof *g1);
        batch_loss(&f32a, 1);
        CHECK(memcmp(g1, pl_trainer_grads(f32a.t), np * sizeof *g1) == 0, "%s %s: f32 gradients not repeatable",
              arch, OBJ_NAMES[obj]);
        free(g1);
        printf("f32     %-7s %-5s loss %.9g vs f64 %.9g (rel %.2g), grads max rel %.2g\n", arch, OBJ_NAMES[obj], l32,
               l64, rel, worst);
        fixture_close(&f64);
        fixture_close(&f32a);
        fixture_close(&f32b);
    }
    g_prec = PL_PREC_F32;
    g_tol_loss = TOL_F32_PT_LOSS;
    g_tol_grad = TOL_F32_PT_GRAD;
    test_vs_pytorch(arch, ref);
    g_prec = PL_PREC_F64;
    g_tol_loss = TOL_LOSS;
    g_tol_grad = TOL_GRAD;
}

/* The project check: a small model fine-tuned on the synthetic corpus
 * reaches F1 >= 0.95 on held-out emails. A byte-level BPE is learned from the
 * training emails, a 2-layer Llama is initialized with its vocabulary
 * (model init), fully fine-tuned with the label objective on the f32 path,
 * exported as model.gguf, reloaded, and the held-out emails are scored by
 * the prompt module's classifier and measured by the eval module. Nothing
 * here needs ../shared. */
#define SYN_TRAIN 800
#define SYN_TEST 200
static void test_synth_f1(void) {
    const char *dir = "build/test_train_synth";
    char tok_path[256], model_path[256], out_path[256];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", dir);
    snprintf(model_path, sizeof model_path, "%s/init.gguf", dir);
    snprintf(out_path, sizeof out_path, "%s/model.gguf", dir);
    double t0 = pl_time_now();
    /* a model this small runs best on one thread (thread wake-ups cost more
     * than its matmuls, badly so on a busy machine); one thread also fixes
     * the summation order, so the F1 below is the same on every machine */
    int threads = pl_num_threads();
    pl_set_num_threads(1);
    CHECK_OK(pl_mkdirs(dir));
    pl_synth_opts so;
    pl_synth_opts_default(&so);
    so.n = SYN_TRAIN + SYN_TEST;
    so.seed = 2026;
    so.shortcut = 0;
    pl_records recs = {0}, pair_recs = {0};
    cJSON *pairs = NULL, *manifest = NULL;
    CHECK_OK(pl_synth_generate(&so, &recs, &pair_recs, &pairs, &manifest));
    if (recs.n != SYN_TRAIN + SYN_TEST) {
        CHECK(0, "synth: %zu records, asked for %d", recs.n, SYN_TRAIN + SYN_TEST);
        goto out_recs;
    }
    /* tokenizer from the training emails only */
    {
        pl_buf txt[SYN_TRAIN];
        const char *texts[SYN_TRAIN];
        size_t lens[SYN_TRAIN];
        memset(txt, 0, sizeof txt);
        for (int i = 0; i < SYN_TRAIN; i++) {
            CHECK_OK(pl_prompt_email_text(&recs.v[i], &txt[i]));
            texts[i] = (const char *)txt[i].data;
            lens[i] = txt[i].len;
        }
        pl_bpe_train_opts bo = {2000, 2, 0};
        char *json = NULL;
        size_t jlen = 0;
        CHECK_OK(pl_bpe_train(texts, lens, SYN_TRAIN, &bo, &json, &jlen));
        if (json) CHECK_OK(pl_write_file_atomic(tok_path, json, jlen));
        free(json);
        for (int i = 0; i < SYN_TRAIN; i++) pl_buf_free(&txt[i]);
    }
    pl_model_init_opts io = pl_model_init_defaults(PL_ARCH_LLAMA);
    io.tokenizer = tok_path;
    io.n_layer = 2;
    io.d_model = 64;
    io.n_head = 4;
    io.n_kv_head = 2;
    io.n_ff = 128;
    io.n_ctx = 512;
    io.seed = 7;
    if (pl_model_init_write(&io, model_path) != PL_OK) {
        CHECK(0, "model init: %s", pl_errmsg());
        goto out_recs;
    }
    pl_model *m = NULL;
    pl_tokenizer *tk = NULL;
    if (pl_model_load(model_path, NULL, &m) != PL_OK || pl_tokenizer_load_gguf(model_path, &tk) != PL_OK) {
        CHECK(0, "%s: %.200s", model_path, pl_errmsg());
        pl_model_free(m);
        goto out_recs;
    }
    pl_prompt_spec ps = pl_prompt_spec_default();
    ps.max_email_tokens = 256;
    pl_prompt pr;
    CHECK_OK(pl_prompt_init(&pr, tk, &ps));
    size_t n = recs.n;
    pl_tokens *email = calloc(n, sizeof *email), *full = calloc(n, sizeof *full);
    pl_tr_example *ex = calloc(n, sizeof *ex);
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(pl_prompt_email_ids(&pr, tk, &recs.v[i], &email[i], NULL));
        CHECK_OK(pl_prompt_full(&pr, email[i].ids, email[i].n, &full[i]));
        ex[i] = (pl_tr_example){full[i].ids, (int)full[i].n, recs.v[i].label, 0};
    }
    pl_tr_config c = pl_tr_config_default();
    c.full = 1;
    c.lora_rank = 0;
    c.label_tokens[0] = pr.label_neg_id;
    c.label_tokens[1] = pr.label_pos_id;
    pl_trainer *t = NULL;
    CHECK_OK(pl_trainer_new(m, &c, &t));
    pl_loop_opts o = pl_loop_opts_default();
    o.opt.lr = 3e-3;
    o.epochs = 4;
    o.batch = 16;
    o.run_dir = dir;
    o.base_model = model_path;
    o.quiet = 1;
    pl_tr_dataset dtr = {ex, SYN_TRAIN};
    pl_loop_result res;
    memset(&res, 0, sizeof res);
    double t1 = pl_time_now();
    if (t) CHECK_OK(pl_train_loop(t, &dtr, NULL, &o, &res));
    double train_s = pl_time_now() - t1;
    /* the trainer's own class scores of a few held-out emails, for the export check below */
    double tr_score[4] = {0};
    for (int i = 0; t && i < 4; i++) {
        pl_real sc[2] = {0, 0};
        CHECK_OK(pl_trainer_scores(t, ex[SYN_TRAIN + i].tokens, ex[SYN_TRAIN + i].n_tokens, sc));
        tr_score[i] = (double)(sc[1] - sc[0]);
    }
    pl_trainer_free(t);
    /* score the held-out emails with the fine-tuned model.gguf */
    pl_model *ft = NULL;
    pl_classifier *cl = NULL;
    CHECK_OK(pl_model_load(out_path, NULL, &ft));
    if (ft) CHECK_OK(pl_classifier_new(ft, &pr, 0, &cl));
    const int32_t *eptr[SYN_TEST];
    size_t elen[SYN_TEST];
    double score[SYN_TEST];
    for (int i = 0; i < SYN_TEST; i++) {
        eptr[i] = email[SYN_TRAIN + i].ids;
        elen[i] = email[SYN_TRAIN + i].n;
    }
    pl_preds preds = {0};
    if (cl && pl_classifier_score(cl, eptr, elen, SYN_TEST, score) == PL_OK) {
        int pos = 0;
        for (int i = 0; i < SYN_TEST; i++) {
            const pl_record *r = &recs.v[SYN_TRAIN + i];
            pos += r->label == 1;
            pl_pred p = {r->id, r->source, r->label, pl_sigmoid(score[i]), score[i], score[i] > 0, -1, -1, -1, -1, NULL};
            CHECK_OK(pl_preds_push(&preds, &p));
        }
        /* model.gguf holds exactly the trained weights: its scores are the trainer's */
        double worst = 0;
        for (int i = 0; i < 4; i++) {
            double d = fabs(score[i] - tr_score[i]) / fmax(1.0, fabs(tr_score[i]));
            if (d > worst) worst = d;
        }
        printf("synth   exported model.gguf vs the trainer's forward: class score max rel diff %.2g\n", worst);
        CHECK(worst < 1e-4, "model.gguf scores differ from the trainer's by %.3g (relative)", worst);
        pl_metrics mt;
        CHECK_OK(pl_eval_metrics(&preds, NULL, preds.n, 0.5, &mt));
        printf("synth   2-layer llama (d 64, BPE 2000) full fine-tune, %d train / %d held-out emails (%d phishing), "
               "%lld steps, last loss %.4f: F1 %.3f (acc %.3f), train %.1fs, total %.1fs\n",
               SYN_TRAIN, SYN_TEST, pos, (long long)res.steps, res.last_loss, mt.v[PL_M_F1], mt.v[PL_M_ACCURACY],
               train_s, pl_time_now() - t0);
        CHECK(pos > 0 && pos < SYN_TEST, "held-out emails hold both classes (%d phishing of %d)", pos, SYN_TEST);
        CHECK(mt.v[PL_M_F1] >= 0.95, "synthetic corpus: held-out F1 %.3f < 0.95", mt.v[PL_M_F1]);
    } else {
        CHECK(0, "classifier: %s", pl_errmsg());
    }
    pl_preds_free(&preds);
    pl_classifier_free(cl);
    pl_model_free(ft);
    for (size_t i = 0; i < n; i++) {
        pl_tokens_free(&email[i]);
        pl_tokens_free(&full[i]);
    }
    free(email);
    free(full);
    free(ex);
    pl_prompt_free(&pr);
    pl_tokenizer_free(tk);
    pl_model_free(m);
out_recs:
    pl_records_free(&recs);
    pl_records_free(&pair_recs);
    cJSON_Delete(pairs);
    cJSON_Delete(manifest);
    pl_set_num_threads(threads);
}

/* The bf16 precision on a whole tiny model with 48-token examples (the bf16
 * products start at 32 tokens): q,k,v and gate,up sharing their input
 * conversion, attention with f32 products. Against the double reference:
 * every product input is rounded to bf16 (2^-9 relative); on these tiny
 * models (hidden size 32-64) the loss moves by up to ~2e-2 and single
 * gradient entries by up to ~0.13 of their tensor's largest (the same with
 * the per-projection bf16 products this path had before sharing inputs and
 * f32 attention), so the bounds catch a wrong product (a missing one shows
 * as errors of 0.5-1), not rounding; checkpointing on and off give the same
 * bits. */
#define TOL_BF16_LOSS 5e-2
#define TOL_BF16_GRAD 0.2
/* pl_trainer_examples: one thread gives the bits of pl_trainer_example in
 * a loop (batch_loss); two lanes the same losses, gradients within the
 * summation order of the loop's, the same bits run after run; a bad label
 * in the second example is reported with its index. */
static void test_lanes(fixture *f, const char *arch, const char *obj) {
    const pl_tr_config *c = pl_trainer_config(f->t);
    size_t np;
    pl_trainer_params(f->t, &np);
    const int nt0 = pl_num_threads();
    pl_real *seq = malloc(np * sizeof *seq), *two = malloc(np * sizeof *two);
    if (!seq || !two) {
        free(seq);
        free(two);
        CHECK(0, "out of memory");
        return;
    }
    /* the two sequences twice: lanes 0 and 1 take two examples each */
    pl_tr_example ex[2];
    const pl_tr_example *exp_[4] = {&ex[0], &ex[1], &ex[0], &ex[1]};
    int total_scored = 0;
    for (int s = 0; s < 2; s++) {
        ex[s] = (pl_tr_example){f->seqs[s], f->lens[s], f->labels[s], 0};
        total_scored += 2 * (f->lens[s] - 1);
    }
    const double w = c->objective == PL_OBJ_LM ? 1.0 / total_scored : 0.25;
    double lseq[4];
    pl_trainer_zero_grad(f->t);
    for (int i = 0; i < 4; i++) CHECK_OK(pl_trainer_example(f->t, exp_[i], (uint64_t)i, w, 1, &lseq[i], NULL));
    memcpy(seq, pl_trainer_grads(f->t), np * sizeof *seq);
    double loss[3][4];
    int same_bits = 1, same_loss = 1;
    double worst = 0;
    for (int run = 0; run < 3; run++) {
        pl_set_num_threads(run == 0 ? 1 : 2);
        pl_trainer_zero_grad(f->t);
        size_t bad = 99;
        CHECK_OK(pl_trainer_examples(f->t, exp_, 4, w, 1, loss[run], NULL, &bad));
        CHECK(bad == 4, "%s %s: no failing example (got %zu)", arch, obj, bad);
        const pl_real *g = pl_trainer_grads(f->t);
        if (run == 0) {
            CHECK(memcmp(g, seq, np * sizeof *g) == 0 && memcmp(loss[0], lseq, sizeof lseq) == 0,
                  "%s %s: one thread is the loop's bits", arch, obj);
            continue;
        }
        if (run == 1) memcpy(two, g, np * sizeof *g);
        else same_bits &= memcmp(two, g, np * sizeof *g) == 0;
        same_loss &= memcmp(loss[run], loss[0], sizeof loss[0]) == 0;
        double scale = 0;
        for (size_t k = 0; k < np; k++) scale = fabs(seq[k]) > scale ? fabs(seq[k]) : scale;
        for (size_t k = 0; k < np; k++) worst = fabs(g[k] - seq[k]) > worst ? fabs(g[k] - seq[k]) : worst;
        worst /= scale > 0 ? scale : 1;
    }
    CHECK(same_loss, "%s %s: two lanes give each example's loss bits", arch, obj);
    CHECK(same_bits, "%s %s: two lanes give the same gradient bits run after run", arch, obj);
    CHECK(worst <= 1e-12, "%s %s: two lanes' gradients vs the loop's: %.3g of the largest", arch, obj, worst);
    if (c->objective != PL_OBJ_LM) {
        pl_tr_example badex = ex[1];
        badex.label = 7;
        exp_[3] = &badex;
        pl_set_num_threads(2);
        size_t bad = 99;
        pl_status st = pl_trainer_examples(f->t, exp_, 4, w, 1, loss[0], NULL, &bad);
        CHECK(st == PL_ERR_RANGE && bad == 3 && strstr(pl_errmsg(), "label"), "%s %s: a bad label in example 3 (%d, %zu: %s)",
              arch, obj, (int)st, bad, pl_errmsg());
    }
    printf("lanes   %-7s %-5s two lanes vs the loop: gradients %.2g of the largest apart, losses the same bits\n", arch,
           obj, worst);
    pl_set_num_threads(nt0);
    free(seq);
    free(two);
}

/* The label and head objectives read only the top layer's last row: the
 * bf16 precision runs the top layer's MLP for the last 32 rows of 64
 * (pl_trainer_set_pruning). Loss and gradients are the same bits as over
 * all rows. */
static void test_pruning(const char *arch, const cJSON *ref) {
    for (int obj = 0; obj < 2; obj++) {
        fixture f;
        g_prec = PL_PREC_BF16;
        int ok = fixture_open(&f, arch, ref, (pl_objective)obj, 0.0, 1);
        g_prec = PL_PREC_F64;
        if (!ok) {
            fixture_close(&f);
            continue;
        }
        size_t np;
        pl_real *pp = pl_trainer_params(f.t, &np);
        int V = pl_model_desc(f.m)->n_vocab;
        pl_rng rng; /* its own: the later tests' draws stay as they were */
        pl_rng_seed(&rng, 1234 + (uint64_t)obj);
        for (size_t k = 0; k < np; k++) pp[k] += 0.05 * (2 * pl_rng_uniform(&rng) - 1);
        for (int sq = 0; sq < 2; sq++) {
            for (int i = 0; i < 64; i++) f.seqs[sq][i] = (int32_t)pl_rng_below(&rng, (uint64_t)V);
            f.lens[sq] = 64;
        }
        pl_real *g[2];
        double l[2];
        for (int on = 0; on < 2; on++) {
            pl_trainer_set_pruning(f.t, on);
            l[on] = batch_loss(&f, 1);
            g[on] = malloc(np * sizeof(pl_real));
            memcpy(g[on], pl_trainer_grads(f.t), np * sizeof(pl_real));
        }
        double norm = 0;
        for (size_t k = 0; k < np; k++) norm += g[1][k] * g[1][k];
        CHECK(l[0] == l[1] && memcmp(g[0], g[1], np * sizeof(pl_real)) == 0 && norm > 0,
              "%s %s: the top layer's MLP over the last rows changes the loss (%.17g vs %.17g) or gradients", arch,
              OBJ_NAMES[obj], l[1], l[0]);
        printf("prune   %-7s %-5s 64 tokens: top MLP over rows 32..63, loss and gradients the same bits\n", arch,
               OBJ_NAMES[obj]);
        free(g[0]);
        free(g[1]);
        fixture_close(&f);
    }
}

static void test_bf16_model(const char *arch, const cJSON *ref) {
    /* label with dropout 0.1, lm without dropout (LoRA of q,k,v and gate,up in one product each) */
    for (int obj = 0; obj < 3; obj += 2) {
        fixture f64, b1, b0;
        double drop = obj == 0 ? 0.1 : 0.0;
        g_prec = PL_PREC_F64;
        int ok = fixture_open(&f64, arch, ref, (pl_objective)obj, drop, 1);
        g_prec = PL_PREC_BF16;
        ok = ok && fixture_open(&b1, arch, ref, (pl_objective)obj, drop, 1) &&
             fixture_open(&b0, arch, ref, (pl_objective)obj, drop, 0);
        g_prec = PL_PREC_F64;
        if (!ok) continue;
        size_t np;
        pl_real *p64 = pl_trainer_params(f64.t, &np);
        int V = pl_model_desc(f64.m)->n_vocab;
        for (size_t k = 0; k < np; k++) p64[k] += 0.05 * (2 * pl_rng_uniform(&g_rng) - 1);
        memcpy(pl_trainer_params(b1.t, NULL), p64, np * sizeof *p64);
        memcpy(pl_trainer_params(b0.t, NULL), p64, np * sizeof *p64);
        for (int sq = 0; sq < 2; sq++) {
            for (int i = 0; i < 48; i++) f64.seqs[sq][i] = (int32_t)pl_rng_below(&g_rng, (uint64_t)V);
            f64.lens[sq] = 48;
            memcpy(b1.seqs[sq], f64.seqs[sq], sizeof f64.seqs[sq]);
            memcpy(b0.seqs[sq], f64.seqs[sq], sizeof f64.seqs[sq]);
            b1.lens[sq] = b0.lens[sq] = 48;
        }
        double l64 = batch_loss(&f64, 1), lb = batch_loss(&b1, 1);
        batch_loss(&b0, 1);
        double rel = fabs(lb - l64) / fabs(l64);
        CHECK(rel <= TOL_BF16_LOSS, "%s %s: bf16 loss %.9g vs f64 %.9g (rel %.3g)", arch, OBJ_NAMES[obj], lb, l64, rel);
        const double worst = grads_max_rel(b1.t, f64.t);
        CHECK(worst <= TOL_BF16_GRAD, "%s %s: bf16 gradients off the f64 ones by %.3g relative", arch, OBJ_NAMES[obj],
              worst);
        CHECK(memcmp(pl_trainer_grads(b1.t), pl_trainer_grads(b0.t), np * sizeof(pl_real)) == 0,
              "%s %s: bf16 gradients differ between checkpointed and stored activations", arch, OBJ_NAMES[obj]);
        printf("bf16    %-7s %-5s 48 tokens: loss %.9g vs f64 %.9g (rel %.2g), grads max rel %.2g%s\n", arch,
               OBJ_NAMES[obj], lb, l64, rel, worst, pl_bf16_gemm_native() ? "" : " (no AMX: f32 products)");
        test_lanes(&b1, arch, OBJ_NAMES[obj]);
        fixture_close(&f64);
        fixture_close(&b1);
        fixture_close(&b0);
    }
}

/* the data order: equal lengths keep the shuffle (64 examples of one
 * length, sorted by class as an imported file may be: the steps mix the
 * classes; ordered by index they would switch class once) */
static void test_epoch_order(void) {
    pl_tr_example ex[64];
    int32_t tok[4] = {1, 2, 3, 4};
    for (int i = 0; i < 64; i++) ex[i] = (pl_tr_example){.tokens = tok, .n_tokens = 4, .label = i >= 32};
    pl_tr_dataset d = {ex, 64};
    size_t order[64];
    CHECK_OK(pl_train_epoch_order(&d, 7, 0, 8, order));
    int seen[64] = {0}, switches = 0, ok = 1;
    for (int i = 0; i < 64; i++) {
        ok &= order[i] < 64 && !seen[order[i]];
        if (order[i] < 64) seen[order[i]] = 1;
        if (i > 0) switches += ex[order[i]].label != ex[order[i - 1]].label;
    }
    CHECK(ok, "the epoch order is not a permutation");
    CHECK(switches >= 16, "classes in one-length steps: %d switches along the order (random about 32)", switches);
    /* lengths still bucket inside the window */
    for (int i = 0; i < 64; i++) ex[i].n_tokens = 1 + (i * 37) % 4;
    CHECK_OK(pl_train_epoch_order(&d, 7, 0, 8, order));
    int sorted = 1;
    for (int i = 1; i < 64; i++) sorted &= ex[order[i]].n_tokens >= ex[order[i - 1]].n_tokens;
    CHECK(sorted, "lengths not sorted inside the window");
}

static void test_models(void) {
    for (int a = 0; a < 3; a++) {
        cJSON *ref = load_ref(ARCHS[a]);
        if (!ref) {
            CHECK(0, "tests/data/train/%s/ref.json missing or malformed", ARCHS[a]);
            continue;
        }
        test_vs_model_forward(ARCHS[a], ref);
        test_vs_pytorch(ARCHS[a], ref);
        test_adamw_trajectory(ARCHS[a], ref);
        test_model_fd(ARCHS[a], ref);
        test_gguf_roundtrip(ARCHS[a], ref);
        test_full_fd(ARCHS[a], ref);
        test_full_vs_pytorch(ARCHS[a], ref);
        test_f32_models(ARCHS[a], ref);
        test_bf16_model(ARCHS[a], ref);
        test_pruning(ARCHS[a], ref);
        cJSON_Delete(ref);
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--loop-child") == 0) return loop_child();
    if (argc == 2 && strcmp(argv[1], "--synth-only") == 0) {
        T_BEGIN();
        test_synth_f1();
        return T_END();
    }
    T_BEGIN();
    pl_rng_seed(&g_rng, 42);
    test_rmsnorm();
    test_rope();
    test_elementwise();
    test_exp_arr();
    test_xent();
    test_attention();
    test_linear();
    test_lora();
    test_dense();
    test_fast_kernels();
    test_bf16_lora_kernels();
    test_lora_grad();
    test_swiglu_down();
    test_adamw();
    test_epoch_order();
    test_models();
    test_loop();
    test_synth_f1();
    const char *shared = pl_test_shared();
    if (shared) {
        test_shared_forward(shared);
    }
    return T_END();
}

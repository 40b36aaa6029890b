/* test_gemm.c — the bf16 matrix products (src/tensor/gemm.c).
 *
 * Reference: the weight dequantized by pl_dequantize_row (checked against
 * llama.cpp's vectors in test_tensor), both operands rounded to bf16 by
 * pl_fp32_to_bf16, the products summed in double. The f32 accumulation of
 * the kernel may differ from it by the rounding of a K-term f32 sum:
 * tolerance 1e-5 x sum |terms| (plus 1e-30). Also: the transposed product
 * (the backward) against the same reference, accumulate, the packed weight
 * layout, thread-count and batch invariance (bitwise), the AMX path against
 * the portable loop, and the errors.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tensor/tensor.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

static double bf(float x) { return (double)pl_bf16_to_fp32(pl_fp32_to_bf16(x)); }

/* a random weight of dtype t (quantized from f32 values in [-1, 1)) */
static void *make_weight(pl_dtype t, int64_t n_out, int64_t n_in, size_t *rb) {
    CHECK_OK(pl_dtype_row_bytes(t, n_in, rb));
    uint8_t *W = malloc(*rb * (size_t)n_out);
    float *row = malloc((size_t)n_in * sizeof *row);
    int ok = 1;
    for (int64_t o = 0; o < n_out; o++) {
        for (int64_t i = 0; i < n_in; i++) row[i] = (float)(2 * urand() - 1);
        ok &= pl_quantize_row(t, row, W + *rb * (size_t)o, n_in) == PL_OK;
    }
    CHECK(ok, "quantizing a %s weight failed", pl_dtype_name(t));
    free(row);
    return W;
}

static float *make_x(int64_t n) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(4 * urand() - 2);
    return x;
}

/* max over outputs of |got - ref| / (sum|terms| * 1e-5 + 1e-30); <= 1 passes */
static double compare(pl_dtype t, const uint8_t *W, size_t rb, int64_t n_out, int64_t n_in, const float *X,
                      int64_t M, const float *Y, const float *Y0, int transposed) {
    float *Wf = malloc((size_t)(n_out * n_in) * sizeof *Wf);
    int ok = 1;
    for (int64_t o = 0; o < n_out; o++) ok &= pl_dequantize_row(t, W + rb * (size_t)o, Wf + o * n_in, n_in) == PL_OK;
    CHECK(ok, "dequantizing a %s weight failed", pl_dtype_name(t));
    int64_t K = transposed ? n_out : n_in, N = transposed ? n_in : n_out;
    double worst = 0;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            double s = 0, a = 0;
            for (int64_t k = 0; k < K; k++) {
                double w = bf(transposed ? Wf[k * n_in + n] : Wf[n * n_in + k]);
                double p = bf(X[m * K + k]) * w;
                s += p;
                a += fabs(p);
            }
            if (Y0) s += (double)Y0[m * N + n];
            double r = fabs((double)Y[m * N + n] - s) / (a * 1e-5 + 1e-30);
            if (!(r <= worst)) worst = isnan(r) ? (double)INFINITY : r;
        }
    free(Wf);
    return worst;
}

static void case_dtype(pl_dtype t, int64_t n_out, int64_t n_in, int64_t M) {
    size_t rb;
    uint8_t *W = make_weight(t, n_out, n_in, &rb);
    float *X = make_x(M * n_in), *Xt = make_x(M * n_out);
    float *Y = malloc((size_t)(M * n_out) * sizeof *Y), *Yt = malloc((size_t)(M * n_in) * sizeof *Yt);
    float *Y0 = make_x(M * n_out), *Ya = malloc((size_t)(M * n_out) * sizeof *Ya);
    CHECK_OK(pl_matmul_bf16(t, W, 0, n_out, n_in, X, M, Y, 0));
    double r = compare(t, W, rb, n_out, n_in, X, M, Y, NULL, 0);
    CHECK(r <= 1.0, "%s %lldx%lld M=%lld forward: error %.3g of the tolerance", pl_dtype_name(t), (long long)n_out,
          (long long)n_in, (long long)M, r);
    CHECK_OK(pl_matmul_bf16_t(t, W, 0, n_out, n_in, Xt, M, Yt, 0));
    r = compare(t, W, rb, n_out, n_in, Xt, M, Yt, NULL, 1);
    CHECK(r <= 1.0, "%s %lldx%lld M=%lld transposed: error %.3g of the tolerance", pl_dtype_name(t),
          (long long)n_out, (long long)n_in, (long long)M, r);
    memcpy(Ya, Y0, (size_t)(M * n_out) * sizeof *Ya);
    CHECK_OK(pl_matmul_bf16(t, W, 0, n_out, n_in, X, M, Ya, 1));
    r = compare(t, W, rb, n_out, n_in, X, M, Ya, Y0, 0);
    CHECK(r <= 1.0, "%s accumulate: error %.3g of the tolerance", pl_dtype_name(t), r);

    /* the packed layout gives the same bits */
    if (pl_pack_supported(t, n_out, n_in)) {
        uint8_t *P = malloc(rb * (size_t)n_out);
        float *Yp = malloc((size_t)(M * n_out) * sizeof *Yp), *Ytp = malloc((size_t)(M * n_in) * sizeof *Ytp);
        CHECK_OK(pl_pack_weights(t, W, n_out, n_in, P));
        CHECK_OK(pl_matmul_bf16(t, P, 1, n_out, n_in, X, M, Yp, 0));
        CHECK_OK(pl_matmul_bf16_t(t, P, 1, n_out, n_in, Xt, M, Ytp, 0));
        CHECK(memcmp(Yp, Y, (size_t)(M * n_out) * sizeof *Y) == 0, "%s packed forward differs", pl_dtype_name(t));
        CHECK(memcmp(Ytp, Yt, (size_t)(M * n_in) * sizeof *Yt) == 0, "%s packed transposed differs",
              pl_dtype_name(t));
        free(P);
        free(Yp);
        free(Ytp);
    }
    /* converted once: the same bits */
    uint16_t *tiles = malloc(pl_bf16_tiles_bytes(n_out, n_in));
    float *Yt2 = malloc((size_t)(M * n_out) * sizeof *Yt2);
    CHECK_OK(pl_bf16_tiles_pack(t, W, 0, n_out, n_in, 0, tiles));
    CHECK_OK(pl_matmul_bf16_tiles(tiles, n_out, n_in, 0, X, M, Yt2, 0));
    CHECK(memcmp(Yt2, Y, (size_t)(M * n_out) * sizeof *Y) == 0, "%s tiles differ from the direct product",
          pl_dtype_name(t));
    float *Yt3 = malloc((size_t)(M * n_in) * sizeof *Yt3);
    CHECK_OK(pl_bf16_tiles_pack(t, W, 0, n_out, n_in, 1, tiles));
    CHECK_OK(pl_matmul_bf16_tiles(tiles, n_out, n_in, 1, Xt, M, Yt3, 0));
    CHECK(memcmp(Yt3, Yt, (size_t)(M * n_in) * sizeof *Yt) == 0, "%s transposed tiles differ from the direct product",
          pl_dtype_name(t));
    /* activations rounded once, read by several products: the same bits */
    pl_bf16_rows ra = {0};
    float *Yr = malloc((size_t)(M * n_out) * sizeof *Yr), *Yr2 = malloc((size_t)(M * n_out) * sizeof *Yr2);
    CHECK_OK(pl_bf16_rows_set(&ra, Xt, M, n_out)); /* a first, other shape: the buffer is reused below */
    CHECK_OK(pl_bf16_rows_set(&ra, X, M, n_in));
    CHECK_OK(pl_bf16_tiles_pack(t, W, 0, n_out, n_in, 0, tiles));
    CHECK_OK(pl_matmul_bf16_tiles_rows(tiles, n_out, n_in, &ra, Yr, 0));
    CHECK(memcmp(Yr, Y, (size_t)(M * n_out) * sizeof *Y) == 0, "%s tiles on rounded rows differ", pl_dtype_name(t));
    CHECK_OK(pl_matmul_bf16_rows(t, W, 0, n_out, n_in, &ra, Yr2, 0));
    CHECK(memcmp(Yr2, Y, (size_t)(M * n_out) * sizeof *Y) == 0, "%s product on rounded rows differs",
          pl_dtype_name(t));
    memcpy(Yr2, Y0, (size_t)(M * n_out) * sizeof *Yr2);
    CHECK_OK(pl_matmul_bf16_rows(t, W, 0, n_out, n_in, &ra, Yr2, 1));
    CHECK(memcmp(Yr2, Ya, (size_t)(M * n_out) * sizeof *Ya) == 0, "%s accumulate on rounded rows differs",
          pl_dtype_name(t));
    CHECK(pl_matmul_bf16_rows(t, W, 0, n_out + 1, n_in + 32, &ra, Yr2, 0) == PL_ERR_INVALID,
          "%s rows of another width accepted", pl_dtype_name(t));
    CHECK(pl_matmul_bf16_tiles_rows(tiles, n_out, n_in + 1, &ra, Yr2, 0) == PL_ERR_INVALID,
          "%s tiles: rows of another width accepted", pl_dtype_name(t));
    pl_bf16_rows_free(&ra);
    CHECK(ra.data == NULL && ra.cap == 0, "rows not cleared by free");
    free(Yr);
    free(Yr2);
    free(tiles);
    free(Yt2);
    free(Yt3);
    free(W);
    free(X);
    free(Xt);
    free(Y);
    free(Yt);
    free(Y0);
    free(Ya);
}

/* bitwise: 1 thread vs 2, and each row alone vs in the batch (n_in over
 * 640 takes the reduction in slices on the tiles) */
static void invariance(int64_t n_out, int64_t n_in, int64_t M) {
    size_t rb;
    uint8_t *W = make_weight(PL_DTYPE_Q4_1, n_out, n_in, &rb);
    float *X = make_x(M * n_in), *Y1 = malloc((size_t)(M * n_out) * 4), *Y2 = malloc((size_t)(M * n_out) * 4);
    float *Yr = malloc((size_t)n_out * 4);
    int nt = pl_num_threads();
    pl_set_num_threads(1);
    CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X, M, Y1, 0));
    pl_set_num_threads(2);
    CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X, M, Y2, 0));
    CHECK(memcmp(Y1, Y2, (size_t)(M * n_out) * 4) == 0, "1 vs 2 threads differ");
    int same = 1;
    for (int64_t m = 0; m < M; m += 11) {
        CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X + m * n_in, 1, Yr, 0));
        same &= memcmp(Yr, Y2 + m * n_out, (size_t)n_out * 4) == 0;
    }
    CHECK(same, "a row alone differs from the same row in a batch of %lld", (long long)M);
    /* accumulating too: the sums start from Y's values in every block */
    memcpy(Y1, Y2, (size_t)(M * n_out) * 4);
    CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X, M, Y1, 1));
    same = 1;
    for (int64_t m = 0; m < M; m += 11) {
        memcpy(Yr, Y2 + m * n_out, (size_t)n_out * 4);
        CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X + m * n_in, 1, Yr, 1));
        same &= memcmp(Yr, Y1 + m * n_out, (size_t)n_out * 4) == 0;
    }
    CHECK(same, "accumulate: a row alone differs from the same row in a batch of %lld", (long long)M);
    pl_set_num_threads(nt);

    /* the AMX tiles against the portable loop (same sums, another order) */
    if (pl_bf16_gemm_native()) {
        CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        CHECK(!pl_bf16_gemm_native(), "AMX path still on at the AVX2 level");
        float *Yp = malloc((size_t)(M * n_out) * 4);
        CHECK_OK(pl_matmul_bf16(PL_DTYPE_Q4_1, W, 0, n_out, n_in, X, M, Yp, 0));
        double r = compare(PL_DTYPE_Q4_1, W, rb, n_out, n_in, X, M, Yp, NULL, 0);
        CHECK(r <= 1.0, "portable loop: error %.3g of the tolerance", r);
        CHECK_OK(pl_simd_set(pl_simd_detected()));
        free(Yp);
    } else {
        SKIP("AMX tiles not available here: only the portable loop was tested");
    }
    free(W);
    free(X);
    free(Y1);
    free(Y2);
    free(Yr);
}

/* tiles from row pointers (rows scattered, e.g. over cache segments) are
 * the bits pl_bf16_tiles_pack makes of the same rows laid out contiguously,
 * padding included; on both SIMD paths */
static void rowptr_pack(void) {
    const int64_t shapes[][2] = {{1, 64}, {17, 64}, {300, 64}, {45, 40}, {64, 96}, {33, 7}};
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!pl_bf16_gemm_native()) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
            const int64_t n_out = shapes[si][0], n_in = shapes[si][1];
            /* rows spread over a larger buffer in reverse, with gaps */
            float *pool = make_x(3 * n_out * n_in + 5), *W = malloc((size_t)(n_out * n_in) * 4);
            const float **rows = malloc((size_t)n_out * sizeof *rows);
            for (int64_t r = 0; r < n_out; r++) {
                rows[r] = pool + (3 * (n_out - 1 - r) + 1) * n_in + (r % 5);
                memcpy(W + r * n_in, rows[r], (size_t)n_in * 4);
            }
            pool[0] = -0.0f; /* not a row: never read */
            uint16_t *hpool = calloc((size_t)(3 * n_out * n_in + 5), 2);
            const uint16_t **hrows = malloc((size_t)n_out * sizeof *hrows);
            for (int64_t r = 0; r < n_out; r++) hrows[r] = hpool + (rows[r] - pool);
            size_t bytes = pl_bf16_tiles_bytes(n_out, n_in);
            uint16_t *a = malloc(bytes), *b = malloc(bytes), *scr = malloc(2 * (size_t)(n_in + 32) * 2);
            for (int tr = 0; tr < 2; tr++) {
                memset(a, 0xA5, bytes);
                memset(b, 0x5A, bytes);
                CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, W, 0, n_out, n_in, tr, a));
                CHECK_OK(pl_bf16_tiles_pack_rowptr(rows, n_out, n_in, tr, b, scr));
                CHECK(memcmp(a, b, bytes) == 0, "rowptr tiles differ: %lld x %lld, transposed %d, level %d",
                      (long long)n_out, (long long)n_in, tr, lvl);
                /* the same rows held as bf16 (a cache's storage), scattered
                 * the same way: the same tiles, copied instead of rounded */
                memset(b, 0x5A, bytes);
                for (int64_t r = 0; r < n_out; r++) pl_bf16_round(hpool + (rows[r] - pool), rows[r], n_in);
                CHECK_OK(pl_bf16_tiles_pack_rowptr_bf16(hrows, n_out, n_in, tr, b, scr));
                CHECK(memcmp(a, b, bytes) == 0, "bf16 rowptr tiles differ: %lld x %lld, transposed %d, level %d",
                      (long long)n_out, (long long)n_in, tr, lvl);
            }
            free(hpool);
            free(hrows);
            free(pool);
            free(W);
            free(rows);
            free(a);
            free(b);
            free(scr);
        }
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
    CHECK(pl_bf16_tiles_pack_rowptr(NULL, 4, 4, 0, (uint16_t[1024]){0}, (uint16_t[64]){0}) == PL_ERR_INVALID,
          "no rows");
}

/* pl_bf16_rope_round_rows: each row's bits are pl_f32_rope (adjacent pairs)
 * then pl_bf16_round, on both SIMD levels; nothing written past n */
static void rope_round_rows(void) {
    const int cases[][2] = {{32, 32}, {32, 16}, {32, 0}, {20, 20}, {20, 8}, {7, 6}, {1, 0}};
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!pl_bf16_gemm_native()) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
            const int n = cases[ci][0], rot = cases[ci][1], rows = 13;
            float *src = make_x(rows * 40), *cs = make_x(rows * 48);
            uint16_t got[13][40], want[13][40];
            uint16_t *dst[13];
            for (int r = 0; r < rows; r++) {
                dst[r] = got[r];
                for (int i = 0; i < 40; i++) got[r][i] = want[r][i] = 0xBEEF;
                float row[40];
                memcpy(row, src + r * 40, (size_t)n * sizeof *row);
                if (rot) pl_f32_rope(row, cs + r * 48, rot, 0);
                pl_bf16_round(want[r], row, n);
            }
            pl_bf16_rope_round_rows(src, 40, rows, n, rot, cs, 48, dst);
            CHECK(!memcmp(got, want, sizeof got), "rope round rows differ: n %d, rot %d, level %d", n, rot, lvl);
            free(src);
            free(cs);
        }
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
}

/* pl_matmul_bf16_tiles_rows_blocks: the blocks handed out put together are
 * Y of pl_matmul_bf16_tiles_rows, each element once (edges included) */
typedef struct {
    float *Y;
    int64_t N;
    int *seen;
} blocks_ctx;

static void collect_block(void *vctx, const float *blk, int64_t m0, int64_t n0, int64_t mr, int64_t nr) {
    blocks_ctx *c = vctx;
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) {
            c->Y[(m0 + i) * c->N + n0 + j] = blk[i * 32 + j];
#pragma omp atomic
            c->seen[(m0 + i) * c->N + n0 + j]++;
        }
}

static void tiles_blocks(void) {
    const int64_t shapes[][3] = {{45, 70, 64}, {64, 96, 40}, {3, 32, 576}, {100, 33, 32}};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        float *W = make_x(N * K), *X = make_x(M * K), *Y = malloc((size_t)(M * N) * 4), *Yb = malloc((size_t)(M * N) * 4);
        int *seen = calloc((size_t)(M * N), sizeof *seen);
        uint16_t *T = malloc(pl_bf16_tiles_bytes(N, K));
        pl_bf16_rows a = {0};
        CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, W, 0, N, K, 0, T));
        CHECK_OK(pl_bf16_rows_set(&a, X, M, K));
        CHECK_OK(pl_matmul_bf16_tiles_rows(T, N, K, &a, Y, 0));
        blocks_ctx c = {Yb, N, seen};
        CHECK_OK(pl_matmul_bf16_tiles_rows_blocks(T, N, K, &a, collect_block, &c));
        int once = 1;
        for (int64_t i = 0; i < M * N; i++) once &= seen[i] == 1;
        CHECK(once, "blocks: an element handed out not exactly once (%lld x %lld x %lld)", (long long)M, (long long)N,
              (long long)K);
        CHECK(!memcmp(Y, Yb, (size_t)(M * N) * 4), "blocks differ from the product (%lld x %lld x %lld)", (long long)M,
              (long long)N, (long long)K);
        pl_bf16_rows_free(&a);
        free(W);
        free(X);
        free(Y);
        free(Yb);
        free(seen);
        free(T);
    }
    pl_bf16_rows a = {0};
    CHECK(pl_matmul_bf16_tiles_rows_blocks(NULL, 4, 4, &a, collect_block, NULL) == PL_ERR_INVALID, "no tiles");
}

/* a simple elementwise act for the gated product: g = (g + 1) * u */
static void act_affine(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) g[i] = (g[i] + 1.0f) * u[i];
}

/* the gated product (gate and up as one, act and the bf16 rounding in the
 * epilogue) against the two products, act and rounding done apart: same
 * bits, every padded element of h included; 1 and 2 threads; both paths */
static void glu_case(int64_t n_ff, int64_t n_in, int64_t T, int threads) {
    size_t tb = pl_bf16_tiles_bytes(n_ff, n_in);
    float *Wg = make_x(n_ff * n_in), *Wu = make_x(n_ff * n_in), *X = make_x(T * n_in);
    uint16_t *tg = malloc(tb), *tu = malloc(tb), *gu = malloc(pl_bf16_glu_tiles_bytes(n_ff, n_in));
    float *Yg = malloc((size_t)(T * n_ff) * 4), *Yu = malloc((size_t)(T * n_ff) * 4);
    float *G = malloc((size_t)(T * n_ff) * 4), *U = malloc((size_t)(T * n_ff) * 4);
    pl_bf16_rows a = {0}, h = {0}, ref = {0};
    int nt = pl_num_threads();
    pl_set_num_threads(threads);
    CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, Wg, 0, n_ff, n_in, 0, tg));
    CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, Wu, 0, n_ff, n_in, 0, tu));
    CHECK_OK(pl_bf16_glu_tiles_pack(tg, tu, n_ff, n_in, gu));
    CHECK_OK(pl_bf16_rows_set(&a, X, T, n_in));
    CHECK_OK(pl_matmul_bf16_glu(gu, n_ff, n_in, &a, NULL, NULL, G, U));
    CHECK_OK(pl_matmul_bf16_tiles_rows(tg, n_ff, n_in, &a, Yg, 0));
    CHECK_OK(pl_matmul_bf16_tiles_rows(tu, n_ff, n_in, &a, Yu, 0));
    CHECK(memcmp(G, Yg, (size_t)(T * n_ff) * 4) == 0 && memcmp(U, Yu, (size_t)(T * n_ff) * 4) == 0,
          "gated product without act: G/U differ from the two products (%lld x %lld, %lld rows)", (long long)n_ff,
          (long long)n_in, (long long)T);
    const size_t hb = (size_t)((T + 31) / 32 * 32) * (size_t)((n_ff + 31) / 32 * 32) * 2;
    for (int k = 0; k < 2; k++) {
        pl_glu_act_fn act = k ? act_affine : pl_f32_silu_mul;
        memcpy(G, Yg, (size_t)(T * n_ff) * 4);
        for (int64_t t = 0; t < T; t++) act(G + t * n_ff, Yu + t * n_ff, n_ff);
        CHECK_OK(pl_bf16_rows_set(&ref, G, T, n_ff));
        CHECK_OK(pl_matmul_bf16_glu(gu, n_ff, n_in, &a, act, &h, NULL, NULL));
        CHECK(h.n_tok == T && h.n_in == n_ff, "h shape %lld x %lld", (long long)h.n_tok, (long long)h.n_in);
        CHECK(memcmp(h.data, ref.data, hb) == 0, "gated product (%s): h differs (%lld x %lld, %lld rows, %d threads)",
              k ? "affine" : "silu", (long long)n_ff, (long long)n_in, (long long)T, threads);
    }
    pl_set_num_threads(nt);
    pl_bf16_rows_free(&a);
    pl_bf16_rows_free(&h);
    pl_bf16_rows_free(&ref);
    free(Wg);
    free(Wu);
    free(X);
    free(tg);
    free(tu);
    free(gu);
    free(Yg);
    free(Yu);
    free(G);
    free(U);
}

static void glu(void) {
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!pl_bf16_gemm_native()) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        glu_case(40, 64, 1, 1);
        glu_case(48, 96, 37, 2);
        glu_case(300, 64, 70, 2);
        glu_case(96, 40, 33, 1);
        /* 2 x 1120 x 512 bf16 is over 1 MiB: column chunks */
        glu_case(1100, 512, 45, 2);
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
    pl_bf16_rows a = {0};
    uint16_t t[2048] = {0};
    float x[64] = {0};
    CHECK_OK(pl_bf16_rows_set(&a, x, 1, 32));
    CHECK(pl_matmul_bf16_glu(t, 16, 64, &a, NULL, NULL, x, x) == PL_ERR_INVALID, "rows of 32 for a 64-input weight");
    CHECK(pl_matmul_bf16_glu(t, 16, 32, &a, pl_f32_silu_mul, NULL, NULL, NULL) == PL_ERR_INVALID, "act without h");
    CHECK(pl_matmul_bf16_glu(t, 16, 32, &a, NULL, NULL, NULL, NULL) == PL_ERR_INVALID, "no act and no G/U");
    pl_bf16_rows_free(&a);
}

/* a product and a low-rank delta in one pass (pl_matmul_bf16_tiles_rows_delta):
 * the bits of the product then the accumulating delta product, from zero
 * and onto Y's values, whole and edge blocks, one and several tiles of the
 * delta's reduction */
static void delta_case(int64_t n_out, int64_t n_in, int64_t r, int64_t M, int accumulate) {
    float *W = make_x(n_out * n_in), *D = make_x(n_out * r), *X = make_x(M * n_in), *Uf = make_x(M * r);
    float *Y0 = make_x(M * n_out), *Y1 = malloc((size_t)(M * n_out) * sizeof *Y1),
          *Y2 = malloc((size_t)(M * n_out) * sizeof *Y2);
    uint16_t *Wt = pl_alloc_aligned(pl_bf16_tiles_bytes(n_out, n_in)), *Dt = pl_alloc_aligned(pl_bf16_tiles_bytes(n_out, r));
    const int64_t rp = (r + 31) / 32 * 32, Mp = (M + 31) / 32 * 32;
    uint16_t *U = pl_alloc_aligned((size_t)(Mp * rp) * sizeof *U);
    for (int64_t m = 0; m < M; m++) pl_bf16_round(U + m * rp, Uf + m * r, r);
    pl_bf16_rows a = {0};
    CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, W, 0, n_out, n_in, 0, Wt));
    CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, D, 0, n_out, r, 0, Dt));
    CHECK_OK(pl_bf16_rows_set(&a, X, M, n_in));
    memcpy(Y1, Y0, (size_t)(M * n_out) * sizeof *Y1);
    memcpy(Y2, Y0, (size_t)(M * n_out) * sizeof *Y2);
    CHECK_OK(pl_matmul_bf16_tiles_rows(Wt, n_out, n_in, &a, Y1, accumulate));
    CHECK_OK(pl_matmul_bf16_tiles_packed(Dt, n_out, r, 0, U, M, Y1, 1));
    CHECK_OK(pl_matmul_bf16_tiles_rows_delta(Wt, n_out, n_in, &a, Dt, r, U, Y2, accumulate));
    CHECK(memcmp(Y1, Y2, (size_t)(M * n_out) * sizeof *Y1) == 0,
          "product + delta in one pass differs (%lld x %lld, rank %lld, %lld rows, accumulate %d)", (long long)n_out,
          (long long)n_in, (long long)r, (long long)M, accumulate);
    pl_bf16_rows_free(&a);
    free(W);
    free(D);
    free(X);
    free(Uf);
    free(Y0);
    free(Y1);
    free(Y2);
    pl_free_aligned(Wt);
    pl_free_aligned(Dt);
    pl_free_aligned(U);
}

static void delta(void) {
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!pl_bf16_gemm_native()) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2)); /* the portable loop: the two products apart */
        }
        delta_case(64, 96, 16, 64, 0);
        delta_case(70, 40, 8, 37, 1);
        delta_case(576, 576, 16, 100, 0);
        delta_case(96, 1536, 40, 33, 1); /* two tiles of the delta's reduction */
        delta_case(1100, 512, 16, 45, 0); /* column chunks */
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
    pl_bf16_rows a = {0};
    float x[64] = {0}, y[64];
    uint16_t t[4096] = {0};
    CHECK_OK(pl_bf16_rows_set(&a, x, 1, 32));
    CHECK(pl_matmul_bf16_tiles_rows_delta(t, 16, 32, &a, NULL, 16, t, y, 0) == PL_ERR_INVALID, "no delta tiles");
    CHECK(pl_matmul_bf16_tiles_rows_delta(t, 16, 32, &a, t, 0, t, y, 0) == PL_ERR_INVALID, "rank 0");
    pl_bf16_rows_free(&a);
}

/* normed rows rounded in one pass: the bits of pl_f32_rmsnorm then
 * pl_bf16_rows_set, padding included */
static void rows_rmsnorm(void) {
    const int64_t shapes[][2] = {{1, 64}, {37, 576}, {70, 40}, {300, 96}};
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (pl_simd_detected() < PL_SIMD_AVX512) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
            for (int th = 1; th <= 2; th++) {
                const int64_t T = shapes[si][0], n = shapes[si][1];
                float *X = make_x(T * n), *w = make_x(n), *N = malloc((size_t)(T * n) * 4);
                pl_bf16_rows a = {0}, b = {0};
                int nt = pl_num_threads();
                pl_set_num_threads(th);
                for (int64_t t = 0; t < T; t++) pl_f32_rmsnorm(N + t * n, X + t * n, w, n, 1e-5f);
                CHECK_OK(pl_bf16_rows_set(&a, N, T, n));
                CHECK_OK(pl_bf16_rows_rmsnorm(&b, X, w, T, n, 1e-5f));
                const size_t bytes = (size_t)((T + 31) / 32 * 32) * (size_t)((n + 31) / 32 * 32) * 2;
                CHECK(b.n_tok == T && b.n_in == n && memcmp(a.data, b.data, bytes) == 0,
                      "normed rows differ (%lld x %lld, %d threads, level %d)", (long long)T, (long long)n, th, lvl);
                pl_set_num_threads(nt);
                pl_bf16_rows_free(&a);
                pl_bf16_rows_free(&b);
                free(X);
                free(w);
                free(N);
            }
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
}

/* scaled rounding: the bits of pl_f32_scale then rounding, at both levels */
static void round_scaled(void) {
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!pl_bf16_gemm_native()) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        const int lens[] = {1, 15, 16, 17, 300};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const int n = lens[li];
            float *x = make_x(n), *y = malloc((size_t)n * 4);
            uint16_t *a = malloc((size_t)n * 2), *b = malloc((size_t)n * 2);
            memcpy(y, x, (size_t)n * 4);
            pl_f32_scale(y, n, 0.0371f);
            pl_bf16_round(a, y, n);
            pl_bf16_round_scaled(b, x, n, 0.0371f);
            CHECK(memcmp(a, b, (size_t)n * 2) == 0, "scaled rounding differs (n %d, level %d)", n, lvl);
            free(x);
            free(y);
            free(a);
            free(b);
        }
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
}

/* pl_bf16_round_rows: strided rows, each the bits of pl_bf16_round on it,
 * nothing written between the rows */
static void round_rows(void) {
    const int rows = 5, n = 37, lds = 50, ldd = 45;
    float *x = make_x(rows * lds);
    uint16_t *a = malloc((size_t)(rows * ldd) * 2), *b = malloc((size_t)n * 2);
    for (int i = 0; i < rows * ldd; i++) a[i] = 0xBEEF;
    pl_bf16_round_rows(a, ldd, x, lds, rows, n);
    for (int r = 0; r < rows; r++) {
        pl_bf16_round(b, x + r * lds, n);
        CHECK(memcmp(a + r * ldd, b, (size_t)n * 2) == 0, "row %d differs from pl_bf16_round", r);
        int kept = 1;
        for (int i = n; i < ldd; i++) kept &= a[r * ldd + i] == 0xBEEF;
        CHECK(kept, "row %d: values written past its n", r);
    }
    free(x);
    free(a);
    free(b);
}

/* pl_bf16_softmax: within bf16 rounding of the double softmax at both
 * levels, summing to 1; below the AMX machine, the bits of scores,
 * exponential sum and scaled rounding called apart */
static void softmax(void) {
    const int native = pl_bf16_gemm_native();
    for (int lvl = 0; lvl < 2; lvl++) {
        if (lvl == 1) {
            if (!native) break;
            CHECK_OK(pl_simd_set(PL_SIMD_AVX2));
        }
        const int lens[] = {1, 5, 16, 17, 91, 157, 300, 2000};
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            const int n = lens[li];
            float *x = make_x(n), *y = malloc((size_t)n * 4);
            double *ex = malloc((size_t)n * sizeof *ex);
            for (int i = 0; i < n; i++) x[i] *= 40.0f; /* scores over a wide range (e down to ~1e-30) */
            uint16_t *a = malloc((size_t)n * 2), *b = malloc((size_t)n * 2);
            memcpy(y, x, (size_t)n * 4);
            double mx = -INFINITY, se = 0;
            for (int i = 0; i < n; i++) mx = fmax(mx, (double)x[i] * 0.125);
            for (int i = 0; i < n; i++) se += (ex[i] = exp((double)x[i] * 0.125 - mx));
            pl_bf16_softmax(x, n, 0.125f, a);
            double worst = 0, sum = 0;
            for (int i = 0; i < n; i++) {
                const double p = (double)pl_bf16_to_fp32(a[i]), want = ex[i] / se;
                worst = fmax(worst, fabs(p - want) / (want + 1e-38));
                sum += p;
            }
            CHECK(worst <= 1.0 / 256 + 1e-5, "softmax: relative error %.3g (n %d, level %d)", worst, n, lvl);
            CHECK(fabs(sum - 1.0) < 0.01, "softmax sums to %.6f (n %d, level %d)", sum, n, lvl);
            if (!native || lvl == 1) {
                const float m = pl_f32_scores(y, n, 0, n - 1, 0.125f);
                pl_bf16_round_scaled(b, y, n, (float)(1.0 / pl_f32_exp_sum(y, n, m)));
                CHECK(memcmp(a, b, (size_t)n * 2) == 0, "softmax differs from its steps (n %d, level %d)", n, lvl);
                CHECK(memcmp(x, y, (size_t)n * 4) == 0, "softmax leaves other exponentials (n %d, level %d)", n,
                      lvl);
            }
            free(x);
            free(y);
            free(ex);
            free(a);
            free(b);
        }
    }
    CHECK_OK(pl_simd_set(pl_simd_detected()));
}

/* the first k_use reduction indices of tiles made for all K: the bits of
 * the full product with A zero past k_use (transposed tiles, as attention's
 * values, and plain ones) */
static void part_reduction(void) {
    const int64_t n_out = 150, n_in = 64, M = 40;
    for (int tr = 0; tr < 2; tr++) {
        const int64_t K = tr ? n_out : n_in, N = tr ? n_in : n_out;
        float *W = make_x(n_out * n_in), *Y = malloc((size_t)(M * N) * 4), *Yp = malloc((size_t)(M * N) * 4);
        uint16_t *tiles = malloc(pl_bf16_tiles_bytes(n_out, n_in));
        CHECK_OK(pl_bf16_tiles_pack(PL_DTYPE_F32, W, 0, n_out, n_in, tr, tiles));
        const int64_t uses[] = {1, 31, 32, 33, 97, K};
        for (size_t ui = 0; ui < sizeof uses / sizeof *uses; ui++) {
            const int64_t ku = uses[ui], Kp = (K + 31) / 32 * 32, Ku = (ku + 31) / 32 * 32;
            if (ku > K) continue;
            uint16_t *Af = calloc((size_t)(((M + 31) / 32 * 32) * Kp), 2), *Au = calloc((size_t)(((M + 31) / 32 * 32) * Ku), 2);
            float *x = make_x(M * ku);
            for (int64_t m = 0; m < M; m++) {
                pl_bf16_round(Af + m * Kp, x + m * ku, ku);
                pl_bf16_round(Au + m * Ku, x + m * ku, ku);
            }
            CHECK_OK(pl_matmul_bf16_tiles_packed(tiles, n_out, n_in, tr, Af, M, Y, 0));
            CHECK_OK(pl_matmul_bf16_tiles_packed_part(tiles, n_out, n_in, tr, ku, Au, M, Yp, 0));
            CHECK(memcmp(Y, Yp, (size_t)(M * N) * 4) == 0, "part of the reduction (%lld of %lld, transposed %d) differs",
                  (long long)ku, (long long)K, tr);
            /* rows ldy apart: the same rows, the gaps untouched; accumulate adds */
            const int64_t ldy = N + 7;
            float *Yl = malloc((size_t)(M * ldy) * 4);
            for (int64_t i = 0; i < M * ldy; i++) Yl[i] = 0.5f;
            CHECK_OK(pl_matmul_bf16_tiles_packed_ld(tiles, n_out, n_in, tr, Af, M, Yl, ldy, 1));
            int same = 1;
            for (int64_t m = 0; m < M; m++)
                for (int64_t j = 0; j < ldy; j++)
                    same &= j < N ? fabsf(Yl[m * ldy + j] - (Y[m * N + j] + 0.5f)) <= 1e-5f * (1.0f + fabsf(Y[m * N + j]))
                                  : Yl[m * ldy + j] == 0.5f;
            CHECK(same, "product into rows %lld apart (transposed %d) differs", (long long)ldy, tr);
            free(Yl);
            free(Af);
            free(Au);
            free(x);
        }
        CHECK(pl_matmul_bf16_tiles_packed_part(tiles, n_out, n_in, tr, K + 1, (uint16_t[64]){0}, 1, Y, 0) ==
                  PL_ERR_INVALID, "a reduction past K accepted");
        free(W);
        free(Y);
        free(Yp);
        free(tiles);
    }
}

static void errors(void) {
    float x[64] = {0}, y[64];
    uint8_t w[4096] = {0};
    CHECK(pl_matmul_bf16(PL_DTYPE_Q4_0, w, 0, 2, 48, x, 1, y, 0) == PL_ERR_INVALID, "n_in not a block multiple");
    CHECK(strstr(pl_errmsg(), "48") != NULL, "message names the size: %s", pl_errmsg());
    CHECK(pl_matmul_bf16((pl_dtype)5, w, 0, 2, 32, x, 1, y, 0) == PL_ERR_UNSUPPORTED, "unknown dtype");
    CHECK(pl_matmul_bf16(PL_DTYPE_F32, w, 0, 0, 32, x, 1, y, 0) == PL_ERR_INVALID, "zero outputs");
    CHECK(pl_matmul_bf16(PL_DTYPE_Q4_0, w, 1, 3, 32, x, 1, y, 0) == PL_ERR_INVALID, "packed needs rows %% 4");
    CHECK_OK(pl_matmul_bf16(PL_DTYPE_F32, w, 0, 2, 32, x, 0, y, 0)); /* no tokens: nothing to do */
}

int main(void) {
    T_BEGIN();
    printf("bf16 gemm: %s\n", pl_bf16_gemm_native() ? "AMX tiles" : "portable loop");
    const pl_dtype ts[] = {PL_DTYPE_F32, PL_DTYPE_F16, PL_DTYPE_BF16, PL_DTYPE_Q8_0, PL_DTYPE_Q4_0, PL_DTYPE_Q4_1};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        case_dtype(ts[i], 40, 64, 1);
        case_dtype(ts[i], 300, 96, 37);
        case_dtype(ts[i], 20, 288, 70);
    }
    case_dtype(PL_DTYPE_Q4_K, 36, 256, 33);
    /* a weight over 1 MiB as bf16: column chunks of 1 MiB (35 column pairs
     * here: 32 and 3), both orientations */
    case_dtype(PL_DTYPE_Q8_0, 1100, 512, 420);
    case_dtype(PL_DTYPE_Q6_K, 520, 512, 9);
    case_dtype(PL_DTYPE_Q4_1, 96, 1536, 70); /* the reduction in slices */
    case_dtype(PL_DTYPE_F16, 64, 1000, 40);
    invariance(300, 320, 45);
    invariance(100, 1536, 70);
    rowptr_pack();
    rope_round_rows();
    tiles_blocks();
    glu();
    delta();
    rows_rmsnorm();
    round_scaled();
    round_rows();
    softmax();
    part_reduction();
    errors();
    return T_END();
}

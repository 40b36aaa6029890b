/* matmul.c — GFLOP/s of pl_matmul per dtype and path for a 4096 x 4096
 * weight times batches of 1, 32 and 512 activation rows, as a fraction of
 * this machine's fp32 FMA peak and of the matching peak (exact path: fp32;
 * llama path: fp32 for f32/f16, bf16 for bf16, int8 VNNI for quantized).
 * FLOPs are counted as 2 * n_out * n_in * n_tok for every dtype.
 *
 * Usage: matmul [--all] [--dim N] [--quick]
 *   --all    also the dtypes whose kernels are scalar at this SIMD level
 *   --dim N  weight is N x N (default 4096)
 *   --quick  batches 1 and 32 only
 * Threads: OMP_NUM_THREADS. SIMD level: PL_SIMD. With one thread, times
 * (and the peaks) are process CPU time, robust on a shared machine; with
 * more, wall clock. Every time is the best of repeated runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peak_impl.h"
#include "tensor/tensor.h"

static int g_nth;

static double time_matmul(pl_matmul_path path, pl_dtype t, const void *W, int64_t n, const float *X, int64_t ntok,
                          float *Y, void *scratch, size_t sb) {
    /* warm up once, then repeat for >= 0.3 s (at least 2 runs), best of all */
    if (pl_matmul(path, t, W, n, n, X, ntok, Y, scratch, sb) != PL_OK) {
        fprintf(stderr, "matmul: %s\n", pl_errmsg());
        return -1;
    }
    double best = 1e30, t0 = pl_time_now();
    for (int rep = 0; rep < 2 || pl_time_now() - t0 < 0.3; rep++) {
        const double a = bench_clock(g_nth);
        pl_matmul(path, t, W, n, n, X, ntok, Y, scratch, sb);
        const double b = bench_clock(g_nth) - a;
        if (b < best) best = b;
        if (rep > 50) break;
    }
    return best;
}

int main(int argc, char **argv) {
    int all = 0, quick = 0;
    int64_t n = 4096;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) all = 1;
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) n = atoll(argv[++i]);
        else { fprintf(stderr, "usage: matmul [--all] [--quick] [--dim N]\n"); return 2; }
    }
    const int nth = pl_num_threads();
    g_nth = nth;
    double pk[3] = {0, 0, 0};
    if (pl_simd_detected() >= PL_SIMD_AVX512)
        for (int k = 0; k < 3; k++) pk[k] = peak_measure(k, nth, 0.3);
    printf("matmul %lld x %lld, %d threads, SIMD %s, timing %s; peaks: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s, "
           "int8 %.1f GOP/s\n",
           (long long)n, (long long)n, nth, pl_simd_name(pl_simd_active()), nth == 1 ? "process CPU time" : "wall clock",
           pk[0], pk[1], pk[2]);
    const pl_dtype fast[] = {PL_DTYPE_F32, PL_DTYPE_F16, PL_DTYPE_BF16, PL_DTYPE_Q8_0, PL_DTYPE_Q4_0, PL_DTYPE_Q4_K,
                             PL_DTYPE_Q6_K};
    const pl_dtype rest[] = {PL_DTYPE_Q4_1, PL_DTYPE_Q5_0, PL_DTYPE_Q5_1, PL_DTYPE_Q2_K, PL_DTYPE_Q3_K, PL_DTYPE_Q5_K};
    const int64_t batches[] = {1, 32, 512};
    const int nb = quick ? 2 : 3;
    const int64_t maxtok = batches[nb - 1];

    float *Wf = malloc(sizeof(float) * (size_t)(n * n));
    float *X = malloc(sizeof(float) * (size_t)(maxtok * n));
    float *Y = malloc(sizeof(float) * (size_t)(maxtok * n));
    uint8_t *W = malloc((size_t)n * (size_t)n * 4);
    if (!Wf || !X || !Y || !W) { fprintf(stderr, "matmul: out of memory\n"); return 1; }
    pl_rng r;
    pl_rng_seed(&r, 42);
    for (int64_t i = 0; i < n * n; i++) Wf[i] = pl_rng_normal(&r) * 0.02f;
    for (int64_t i = 0; i < maxtok * n; i++) X[i] = pl_rng_normal(&r);

    printf("%-6s %-6s %6s %10s %10s %9s %9s\n", "dtype", "path", "batch", "ms", "GFLOP/s", "%fp32pk", "%matchpk");
    const int ndt = (int)(sizeof fast / sizeof *fast) + (all ? (int)(sizeof rest / sizeof *rest) : 0);
    for (int di = 0; di < ndt; di++) {
        const pl_dtype t = di < (int)(sizeof fast / sizeof *fast) ? fast[di] : rest[di - (int)(sizeof fast / sizeof *fast)];
        size_t rb;
        if (pl_dtype_row_bytes(t, n, &rb) != PL_OK) continue;
        #pragma omp parallel for schedule(static)
        for (int64_t o = 0; o < n; o++) pl_quantize_row(t, Wf + o * n, W + (size_t)o * rb, n);
        for (int path = 0; path <= 1; path++) {
            pl_dtype act;
            if (path == 1 && (t == PL_DTYPE_F32 || pl_llama_act_dtype(t, &act) != PL_OK)) continue;
            if (path == 0) act = PL_DTYPE_F32;
            const int match = path == 0 || act == PL_DTYPE_F32 || act == PL_DTYPE_F16 ? 0 : act == PL_DTYPE_BF16 ? 1 : 2;
            for (int bi = 0; bi < nb; bi++) {
                const int64_t ntok = batches[bi];
                const size_t sb = pl_matmul_scratch_bytes((pl_matmul_path)path, t, n, n, ntok);
                void *scratch = sb ? pl_alloc_aligned(sb) : NULL;
                const double s = time_matmul((pl_matmul_path)path, t, W, n, X, ntok, Y, scratch, sb);
                pl_free_aligned(scratch);
                if (s < 0) return 1;
                const double gf = 2.0 * (double)n * (double)n * (double)ntok / s / 1e9;
                printf("%-6s %-6s %6lld %10.3f %10.1f %8.1f%% %8.1f%%\n", pl_dtype_name(t), path ? "llama" : "exact",
                       (long long)ntok, s * 1e3, gf, pk[0] > 0 ? 100 * gf / pk[0] : 0.0,
                       pk[match] > 0 ? 100 * gf / pk[match] : 0.0);
                fflush(stdout);
            }
        }
    }
    free(Wf); free(X); free(Y); free(W);
    return 0;
}

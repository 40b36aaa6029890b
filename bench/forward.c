/* bench/forward.c — prefill and decode speed of the inference engine on a
 * real GGUF file (bench/model.c covers synthetic shapes):
 *   prefill: one sequence of P random tokens in one forward (logits of the
 *            last token), best of R runs, tokens/s and the share of the FLOP
 *            peak (2 * matmul parameters per token + attention);
 *   decode:  G single-token forwards after a 16-token prompt, tokens/s and
 *            the weight bytes streamed per second (file size x tokens/s).
 *
 *   forward [MODEL [THREADS-ignored [P [G [R [PEAK_GFLOPS [BW_GBS]]]]]]]
 *
 * Threads come from OMP_NUM_THREADS; PL_PACK=0 skips the load-time weight
 * repack (pl_model_opts.pack_weights). Defaults: models/SmolLM2-135M-Instruct
 * .Q4_1.gguf, P 512, G 128, R 3, peak 528 GFLOP/s (fp32, docs/kernels.md),
 * bandwidth 40 GB/s. A missing model is reported and skipped (exit 0).
 * bench/forward.sh compares with llama.cpp in the same run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model.h"

static double matmul_params(const pl_arch_desc *d) {
    double hd = d->head_dim, D = d->n_embd;
    double per = D * d->n_head * hd * 2 + D * d->n_head_kv * hd * 2 + 3 * D * d->n_ff;
    return per * d->n_layer;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 && argv[1][0] ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    int P = argc > 3 ? atoi(argv[3]) : 512, G = argc > 4 ? atoi(argv[4]) : 128, R = argc > 5 ? atoi(argv[5]) : 3;
    double peak = argc > 6 ? atof(argv[6]) : 528, bw = argc > 7 ? atof(argv[7]) : 40;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        printf("forward: %s not found (make models); skipped\n", path);
        return 0;
    }
    pl_model *m = NULL;
    pl_model_opts mo = pl_model_opts_default();
    if (getenv("PL_PACK")) mo.pack_weights = atoi(getenv("PL_PACK")); /* PL_PACK=0: weights used in place */
    if (pl_model_load(path, &mo, &m)) {
        fprintf(stderr, "forward: %s\n", pl_errmsg());
        return 1;
    }
    const pl_arch_desc *d = pl_model_desc(m);
    int ctx = P + G + 16;
    pl_runner *r = NULL;
    int32_t *tok = malloc((size_t)(P > 16 + G ? P : 16 + G) * sizeof *tok);
    float *logits = malloc((size_t)d->n_vocab * sizeof(float));
    pl_rng rng;
    pl_rng_seed(&rng, 1);
    for (int i = 0; i < (P > 16 + G ? P : 16 + G); i++) tok[i] = (int32_t)pl_rng_below(&rng, (uint64_t)d->n_vocab);
    if (pl_runner_new(m, P > 16 ? P : 16, ctx, &r)) {
        fprintf(stderr, "forward: %s\n", pl_errmsg());
        return 1;
    }
    double best_p = 1e30;
    for (int k = 0; k < R; k++) {
        pl_kv *kv = NULL;
        if (pl_kv_new(m, ctx, NULL, &kv)) return 1;
        pl_seq s = {kv, tok, P};
        double t0 = pl_time_now();
        if (pl_forward(r, &s, 1, PL_LOGITS_LAST, logits)) {
            fprintf(stderr, "forward: %s\n", pl_errmsg());
            return 1;
        }
        double dt = pl_time_now() - t0;
        if (dt < best_p) best_p = dt;
        pl_kv_free(kv);
    }
    double best_g = 1e30;
    for (int k = 0; k < R; k++) {
        pl_kv *kv = NULL;
        if (pl_kv_new(m, ctx, NULL, &kv)) return 1;
        pl_seq s = {kv, tok, 16};
        if (pl_forward(r, &s, 1, PL_LOGITS_LAST, logits)) return 1;
        double t0 = pl_time_now();
        for (int g = 0; g < G; g++) {
            pl_seq s1 = {kv, tok + 16 + g, 1};
            if (pl_forward(r, &s1, 1, PL_LOGITS_LAST, logits)) {
                fprintf(stderr, "forward: %s\n", pl_errmsg());
                return 1;
            }
        }
        double dt = pl_time_now() - t0;
        if (dt < best_g) best_g = dt;
        pl_kv_free(kv);
    }
    double np = matmul_params(d);
    double attn = 2.0 * 2.0 * d->n_layer * (double)d->n_head * d->head_dim * ((double)P * (P + 1) / 2);
    double flops = 2.0 * np * P + attn + 2.0 * (double)d->n_embd * d->n_vocab;
    double ptps = P / best_p, dtps = G / best_g;
    printf("phishlens forward %s: threads %d\n", path, pl_num_threads());
    printf("phishlens prefill %d tokens: %.1f tokens/s (%.2f GFLOP/s = %.1f%% of %.0f GFLOP/s peak)\n", P, ptps,
           flops / best_p / 1e9, 100.0 * flops / best_p / 1e9 / peak, peak);
    printf("phishlens decode %d tokens: %.1f tokens/s (%.2f GB/s weights = %.1f%% of %.0f GB/s)\n", G, dtps,
           (double)sb.st_size * dtps / 1e9, 100.0 * (double)sb.st_size * dtps / 1e9 / bw, bw);
    printf("RESULT prefill_tps=%.3f decode_tps=%.3f flops_per_prefill=%.6g file_bytes=%lld\n", ptps, dtps, flops,
           (long long)sb.st_size);
    pl_runner_free(r);
    pl_model_free(m);
    free(tok);
    free(logits);
    return 0;
}

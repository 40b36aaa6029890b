/* bench/train.c — LoRA training steps of a GGUF model with the phishlens
 * trainer: batch B random sequences of T tokens, the label objective (label
 * tokens 1000 / 2000), AdamW, gradient checkpointing on (the default), the
 * shape of bench/train_torch.py. Prints one JSON line: tokens/s, seconds per
 * step (after one untimed step), the process's CPU seconds per step (user +
 * system: on a shared machine less disturbed by other jobs than the wall
 * clock), peak RSS (getrusage).
 *
 *   train MODEL [targets=q,v|all] [steps=2] [threads=1] [precision=f32|bf16|f64] [batch=8] [seq=256] [rank=16]
 *
 * Like `phishlens train` it runs with GOMP_SPINCOUNT=1000 unless an OpenMP
 * wait policy or spin count is set (see src/cli/main.c).
 * Without arguments it looks for models/SmolLM2-135M-Instruct.Q4_1.gguf and
 * skips (exit 0) when that is absent; bench/train.sh runs the comparison. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tensor/tensor.h"
#include "model/model.h"
#include "train/train.h"

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv) {
    /* the OpenMP spin setting `phishlens train` runs with (src/cli/main.c) */
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") && setenv("GOMP_SPINCOUNT", "1000", 1) == 0)
        execv("/proc/self/exe", argv);
    const char *path = argc > 1 ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (argc < 2 && access(path, F_OK) != 0) {
        printf("train: %s absent (make models), skipped\n", path);
        return 0;
    }
    const char *targets = argc > 2 ? argv[2] : "q,v";
    int steps = argc > 3 ? atoi(argv[3]) : 2, threads = argc > 4 ? atoi(argv[4]) : 1;
    const char *prec = argc > 5 ? argv[5] : "f32";
    int B = argc > 6 ? atoi(argv[6]) : 8, T = argc > 7 ? atoi(argv[7]) : 256, rank = argc > 8 ? atoi(argv[8]) : 16;
    if (steps < 1 || threads < 1 || B < 1 || T < 2 || rank < 1) {
        fprintf(stderr, "train: bad arguments\n");
        return 2;
    }
    pl_set_num_threads(threads);
    pl_model *m = NULL;
    pl_model_opts mo = pl_model_opts_default();
    double t0 = pl_time_now();
    if (pl_model_load(path, &mo, &m) != PL_OK) {
        fprintf(stderr, "train: %s\n", pl_errmsg());
        return 1;
    }
    double load_s = pl_time_now() - t0;
    pl_tr_config c = pl_tr_config_default();
    c.lora_rank = rank;
    c.lora_alpha = 2.0 * rank;
    c.label_tokens[0] = 1000;
    c.label_tokens[1] = 2000;
    pl_precision pr;
    if (pl_tr_parse_targets(targets, &c.targets) != PL_OK || pl_tr_parse_precision(prec, &pr) != PL_OK) {
        fprintf(stderr, "train: %s\n", pl_errmsg());
        return 2;
    }
    c.precision = pr;
    pl_trainer *t = NULL;
    if (pl_trainer_new(m, &c, &t) != PL_OK) {
        fprintf(stderr, "train: %s\n", pl_errmsg());
        return 1;
    }
    size_t np;
    pl_real *params = pl_trainer_params(t, &np);
    pl_adamw_config oc = pl_adamw_default();
    oc.lr = 2e-4;
    pl_adamw opt;
    if (pl_adamw_init(&opt, &oc, np) != PL_OK) return 1;
    int V = pl_model_desc(m)->n_vocab;
    int32_t *tok = malloc((size_t)B * (size_t)T * sizeof *tok);
    pl_tr_example *exs = malloc((size_t)B * sizeof *exs);
    const pl_tr_example **exp_ = malloc((size_t)B * sizeof *exp_);
    double *losses = malloc((size_t)B * sizeof *losses);
    if (!tok || !exs || !exp_ || !losses) {
        fprintf(stderr, "train: out of memory\n");
        return 1;
    }
    pl_rng rng;
    pl_rng_seed(&rng, 1);
    double timed = 0.0, cpu = 0.0, loss_sum = 0.0;
    for (int s = 0; s <= steps; s++) {
        double s0 = pl_time_now(), c0 = cpu_now();
        pl_trainer_zero_grad(t);
        pl_trainer_set_step(t, (uint64_t)s);
        loss_sum = 0.0;
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < T; i++) tok[(size_t)b * T + i] = 3 + (int32_t)pl_rng_below(&rng, (uint64_t)(V - 3));
            exs[b] = (pl_tr_example){tok + (size_t)b * T, T, (int)pl_rng_below(&rng, 2), 0};
            exp_[b] = &exs[b];
        }
        if (pl_trainer_examples(t, exp_, (size_t)B, 1.0 / B, 1, losses, NULL, NULL) != PL_OK) {
            fprintf(stderr, "train: %s\n", pl_errmsg());
            return 1;
        }
        for (int b = 0; b < B; b++) loss_sum += losses[b] / B;
        if (pl_adamw_step(&opt, params, pl_trainer_grads(t), NULL) != PL_OK) {
            fprintf(stderr, "train: %s\n", pl_errmsg());
            return 1;
        }
        if (s > 0) {
            timed += pl_time_now() - s0;
            cpu += cpu_now() - c0;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double sps = timed / steps;
    printf("{\"system\": \"phishlens\", \"targets\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"steps\": %d, "
           "\"s_per_step\": %.3f, \"tok_s\": %.1f, \"cpu_s_per_step\": %.3f, \"peak_rss_mb\": %.1f, \"load_s\": %.2f, \"trainable\": %zu, "
           "\"last_loss\": %.5f, \"tiles_misaligned\": %zu}\n",
           targets, prec, threads, steps, sps, (double)B * T / sps, cpu / steps, (double)ru.ru_maxrss / 1024.0, load_s, np,
           loss_sum, pl_bf16_tiles_misaligned());
    free(tok);
    free(exs);
    free(exp_);
    free(losses);
    pl_adamw_free(&opt);
    pl_trainer_free(t);
    pl_model_free(m);
    return 0;
}

/* lanes.c — the examples of one step side by side (pl_trainer_examples).
 *
 * A step's examples are independent until their gradients meet. With
 * several threads (the bf16 precision, LoRA or head training) each thread
 * runs whole examples as a lane: a worker trainer that shares the frozen
 * weights, parameters and tensor table with the trainer and has its own run
 * state (activations, scratch) and gradient buffer. Inside a lane every
 * product and attention step stays on its thread (they see that they run
 * inside a parallel region), so there is no barrier per product, and no
 * thread idles through another's serial steps (one example split over two
 * threads ran at 1.26x one thread's speed).
 *
 * Determinism: lane l runs examples l, l + L, l + 2L, ... in order
 * (a fixed assignment), accumulating into its own buffer (lane 0 into the
 * trainer's); the other lanes' buffers are then added in lane order. The
 * gradients are therefore the same bits for a given thread count; a
 * different thread count sums them in another order. One thread (or one
 * example) runs the examples in order on the trainer itself: the bits of
 * pl_trainer_example called in a loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "train/train_impl.h"

enum { MAX_TRAIN_LANES = 64 };

static void worker_free(pl_trainer *w) {
    if (!w) return;
    pl_tr_run_state_free(w);
    free(w->grads);
    free(w);
}

void pl_tr_lanes_free(pl_trainer *t) {
    for (int i = 0; t->lanes && i < t->n_lanes; i++) worker_free(t->lanes[i]);
    free(t->lanes);
    t->lanes = NULL;
    t->n_lanes = 0;
}

/* A worker of t: t's fields with no run state, a zeroed gradient buffer of
 * its own, and the checkpointing budget split over the n lanes. */
static pl_status worker_new(const pl_trainer *t, int n, pl_trainer **out) {
    *out = NULL;
    pl_trainer *w = malloc(sizeof *w);
    if (!w) return pl_error(PL_ERR_NOMEM, "trainer: out of memory (lanes)");
    memcpy(w, t, sizeof *w);
    w->acts = NULL;
    w->n_acts = 0;
    w->xs = w->hf = w->rsf = w->dx = w->dtmp = w->dwide = w->dff1 = w->dff2 = NULL;
    w->dq = w->dk = w->dv = w->xd = w->du = w->logits = w->rope_cs = NULL;
    w->pos = NULL;
    w->Tcap = 0;
    w->lanes = NULL;
    w->n_lanes = 0;
    w->lane_of = t;
    w->cfg.keep_bytes = t->cfg.keep_bytes / (size_t)n;
    w->grads = calloc(t->n_params ? t->n_params : 1, sizeof *w->grads);
    if (!w->grads) {
        free(w);
        return pl_error(PL_ERR_NOMEM, "trainer: cannot allocate %zu gradients for a lane", t->n_params);
    }
    *out = w;
    return PL_OK;
}

/* Lanes for n examples: the bf16 precision without full fine-tuning (its
 * products and attention are the project's own kernels; the f32 precision
 * calls OpenBLAS, whose thread count is process-wide), and a worker's
 * gradient buffer no larger than the LoRA and head parameters. */
static int lanes_for(const pl_trainer *t, const pl_tr_example *const *ex, size_t n) {
    if (t->cfg.precision != PL_PREC_BF16 || t->cfg.full || t->lane_of) return 1;
    /* each worker holds one example's run state: as many as fit in a
     * quarter of the machine's memory (a large model keeps one lane) */
    int64_t T = 0;
    for (size_t i = 0; i < n; i++)
        if (ex[i]->n_tokens > T) T = ex[i]->n_tokens;
    return pl_lanes_available(n, MAX_TRAIN_LANES, pl_tr_run_state_bytes(t, T));
}

typedef struct {
    pl_trainer *const *run; /* [L]: lane 0 the trainer */
    const pl_tr_example *const *ex;
    size_t n;
    double weight;
    int backward, L;
    double *losses;
    int *scored;
    size_t bad;     /* lowest failing example (n: none) */
    pl_status st;
    char msg[1024];
} step_job;

static void run_lane(step_job *j, int lane) {
    pl_trainer *w = j->run[lane];
    for (size_t i = (size_t)lane; i < j->n; i += (size_t)j->L) {
        double l = 0;
        int sc = 0;
        const pl_status st = pl_trainer_example(w, j->ex[i], (uint64_t)i, j->weight, j->backward, &l, &sc);
        if (j->losses) j->losses[i] = l;
        if (j->scored) j->scored[i] = sc;
        if (st) {
#pragma omp critical(pl_tr_lanes_fail)
            if (i < j->bad) {
                j->bad = i;
                j->st = st;
                snprintf(j->msg, sizeof j->msg, "%s", pl_errmsg());
            }
            return;
        }
    }
}

pl_status pl_trainer_examples(pl_trainer *t, const pl_tr_example *const *ex, size_t n, double weight, int backward,
                              double *losses, int *n_scored, size_t *failed) {
    if (failed) *failed = n;
    const int L = lanes_for(t, ex, n);
    if (L <= 1) { /* in order on the trainer, stopping at the first failure */
        pl_trainer *self[1] = {t};
        step_job j = {self, ex, n, weight, backward, 1, losses, n_scored, n, PL_OK, ""};
        run_lane(&j, 0);
        if (j.st && failed) *failed = j.bad;
        return j.st ? pl_error(j.st, "%s", j.msg) : PL_OK;
    }
    /* workers 1 .. L-1 (kept for later steps; remade when the lane count
     * changes) */
    if (t->n_lanes != L - 1) {
        pl_tr_lanes_free(t);
        t->lanes = calloc((size_t)(L - 1), sizeof *t->lanes);
        if (!t->lanes) return pl_error(PL_ERR_NOMEM, "trainer: out of memory (lanes)");
        for (int i = 0; i < L - 1; i++) {
            const pl_status st = worker_new(t, L, &t->lanes[i]);
            if (st) {
                t->n_lanes = i;
                pl_tr_lanes_free(t);
                return st;
            }
        }
        t->n_lanes = L - 1;
    }
    pl_trainer *run[MAX_TRAIN_LANES];
    run[0] = t;
    for (int i = 1; i < L; i++) {
        pl_trainer *w = t->lanes[i - 1];
        w->step = t->step; /* the dropout stream */
        if (backward) memset(w->grads, 0, t->n_params * sizeof *w->grads);
        run[i] = w;
    }
    step_job j = {run, ex, n, weight, backward, L, losses, n_scored, n, PL_OK, ""};
    /* OpenBLAS (the few products of this precision it still runs) on one
     * thread per lane; its thread count is process-wide */
    const int blas = pl_num_threads();
    pl_tr_blas_threads(1);
#pragma omp parallel num_threads(L)
    {
        int id = 0;
#ifdef _OPENMP
        id = omp_get_thread_num();
#endif
        run_lane(&j, id);
    }
    pl_tr_blas_threads(blas);
    if (j.st) {
        if (failed) *failed = j.bad;
        return pl_error(j.st, "%s", j.msg);
    }
    if (backward) /* the lanes' gradients, in lane order */
        for (int i = 1; i < L; i++) {
            const pl_real *g = run[i]->grads;
            for (size_t k = 0; k < t->n_params; k++) t->grads[k] += g[k];
        }
    return PL_OK;
}

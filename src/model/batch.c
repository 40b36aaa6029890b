/* batch.c — packing sequences into batches, and lanes (model.h). */
#include "model/model.h"

#include <stdio.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

size_t pl_batch_plan(const int *need, size_t n, int max_tokens, int max_seqs, int *lanes, size_t *first) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += (size_t)need[i];
    const size_t cap = max_tokens > 0 ? (size_t)max_tokens : 1;
    /* lanes only for two full batches of work or more: splitting one batch
     * in parts that run side by side was slower than one batch over the
     * threads (explain's calls of ~1300 tokens: 12.6 s against 12.1 s) */
    const size_t n_greedy = (total + cap - 1) / cap;
    if (*lanes < 1 || n_greedy < 2) *lanes = 1;
    if ((size_t)*lanes > n_greedy) *lanes = (int)n_greedy;
    /* with lanes, nb batches (a multiple of the lanes): batch j (1-based)
     * ends near j·total/nb of the running total, a sequence going to the
     * batch its midpoint falls in, so the batches differ by less than two
     * sequences (closing a batch once it held total/nb left the last one
     * short by up to a sequence per batch, and its lane idle) */
    const size_t nb = *lanes > 1 ? (n_greedy + (size_t)*lanes - 1) / (size_t)*lanes * (size_t)*lanes : 0;
    size_t n_batch = 0, done = 0;
    for (size_t i = 0; i < n;) {
        size_t used = 0, k = 0;
        first[n_batch++] = i;
        const size_t end2 = nb ? 2 * (total * n_batch / nb) : 0; /* twice the batch's ideal end */
        while (i < n && (max_seqs <= 0 || k < (size_t)max_seqs) &&
               (k == 0 || (used + (size_t)need[i] <= cap && (!nb || 2 * (done + used) + (size_t)need[i] <= end2)))) {
            used += (size_t)need[i];
            k++;
            i++;
        }
        done += used;
    }
    first[n_batch] = n;
    return n_batch;
}

int pl_lanes_fit(int lanes, size_t per_lane) {
    const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return lanes;
    const double room = (double)pages * (double)psz / 4;
    while (lanes > 1 && (double)per_lane * (lanes - 1) > room) lanes--;
    return lanes;
}

int pl_lanes_available(size_t n, int max, size_t per_lane) {
    int t = pl_num_threads();
#ifdef _OPENMP
    if (omp_in_parallel()) t = 1;
#else
    t = 1;
#endif
    if ((size_t)t > n) t = (int)n;
    if (t > max) t = max;
    return pl_lanes_fit(t < 1 ? 1 : t, per_lane);
}

pl_status pl_lanes_run(int n_lanes, size_t n_batch, pl_lane_fn fn, void *ctx) {
    pl_status st = PL_OK;
    if (n_lanes <= 1 || n_batch <= 1) {
        for (size_t b = 0; !st && b < n_batch; b++) st = fn(ctx, 0, b);
        return st;
    }
    /* the first failure (lowest batch) is the one reported, with the
     * message its thread wrote */
    size_t bad = n_batch;
    char msg[1024] = "";
#pragma omp parallel num_threads(n_lanes)
    {
        int id = 0;
#ifdef _OPENMP
        id = omp_get_thread_num();
#endif
#pragma omp for schedule(dynamic, 1)
        for (size_t b = 0; b < n_batch; b++) {
            size_t seen;
#pragma omp atomic read
            seen = bad;
            if (seen < b) continue; /* a batch before this one failed: the rest is not run */
            const pl_status sb = fn(ctx, id, b);
            if (sb) {
#pragma omp critical(pl_lanes_fail)
                {
                    size_t cur;
#pragma omp atomic read
                    cur = bad;
                    if (b < cur) {
#pragma omp atomic write
                        bad = b;
                        st = sb;
                        snprintf(msg, sizeof msg, "%s", pl_errmsg());
                    }
                }
            }
        }
    }
    return st ? pl_error(st, "%s", msg) : PL_OK;
}

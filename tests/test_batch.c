/* test_batch.c — packing sequences into batches and running batches in
 * lanes (model/batch.c). */
#include "harness.h"

#include <unistd.h>

#include "model/model.h"

/* every index once, in order; each batch within its limits (a sequence
 * longer than max_tokens alone) */
static int plan_ok(const int *need, size_t n, int max_tokens, int max_seqs, const size_t *first, size_t nb) {
    if (nb < 1 || first[0] != 0 || first[nb] != n) return 0;
    for (size_t b = 0; b < nb; b++) {
        if (first[b + 1] <= first[b]) return 0;
        size_t used = 0, k = first[b + 1] - first[b];
        for (size_t i = first[b]; i < first[b + 1]; i++) used += (size_t)need[i];
        if (max_seqs > 0 && k > (size_t)max_seqs) return 0;
        if (k > 1 && used > (size_t)max_tokens) return 0;
    }
    return 1;
}

static void test_plan(void) {
    /* greedy: 3+3 fit 7, the third 3 does not; 9 is over the limit and goes alone */
    const int need[] = {3, 3, 3, 9, 1, 1, 1};
    size_t first[8];
    int one = 1;
    size_t nb = pl_batch_plan(need, 7, 7, 0, &one, first);
    const size_t want[] = {0, 2, 3, 4, 7};
    CHECK(nb == 4 && memcmp(first, want, sizeof want) == 0, "greedy plan: %zu batches (want 4: 0 2 3 4 | 7)", nb);
    nb = pl_batch_plan(need, 7, 100, 2, &one, first);
    const size_t want2[] = {0, 2, 4, 6, 7};
    CHECK(nb == 4 && memcmp(first, want2, sizeof want2) == 0, "max_seqs 2: %zu batches (want 4)", nb);
    /* lanes: 100 sequences of 1..20 tokens, 2048 / 300 token batches */
    int many[100];
    size_t f[101];
    size_t total = 0;
    for (int i = 0; i < 100; i++) total += (size_t)(many[i] = 1 + (i * 7) % 20);
    for (int lanes = 1; lanes <= 4; lanes++)
        for (int cap = 64; cap <= 2048; cap *= 4) {
            int used = lanes;
            nb = pl_batch_plan(many, 100, cap, 0, &used, f);
            CHECK(plan_ok(many, 100, cap, 0, f, nb), "lanes %d, max %d: a valid plan", lanes, cap);
            /* lanes only for two greedy batches or more, at most one per batch */
            const size_t greedy = (total + (size_t)cap - 1) / (size_t)cap;
            const size_t lim = greedy < (size_t)lanes ? greedy : (size_t)lanes;
            CHECK(used == (greedy < 2 ? 1 : (int)lim), "lanes %d, max %d: %d lanes used (greedy %zu)", lanes, cap, used,
                  greedy);
            /* where the token limit does not cut batches short, the count is
             * at most the greedy count rounded up to the lanes */
            const size_t target = (greedy + (size_t)used - 1) / (size_t)used * (size_t)used;
            if (cap >= 256)
                CHECK(nb <= target && (used == 1 || nb > greedy - 1), "lanes %d, max %d: %zu batches, at most %zu", lanes,
                      cap, nb, target);
            if (used == 1 && cap >= 256) CHECK(nb == greedy, "one lane, max %d: %zu greedy batches (want %zu)", cap, nb, greedy);
            if (used > 1 && cap >= 256) {
                /* even batches: each end within half a sequence of its ideal,
                 * so two batches differ by less than two of the longest (20) */
                size_t lo = (size_t)-1, hi = 0;
                for (size_t b = 0; b < nb; b++) {
                    size_t tok = 0;
                    for (size_t i = f[b]; i < f[b + 1]; i++) tok += (size_t)many[i];
                    if (tok < lo) lo = tok;
                    if (tok > hi) hi = tok;
                }
                CHECK(hi - lo < 40, "lanes %d, max %d: batches of %zu to %zu tokens", lanes, cap, lo, hi);
            }
        }
}

typedef struct {
    int runs[64];
    int lane_ok;
    size_t fail_at[2];
} job;

static pl_status count_fn(void *ctx, int lane, size_t b) {
    job *j = ctx;
    if (lane < 0 || lane >= 3) j->lane_ok = 0;
#pragma omp atomic
    j->runs[b]++;
    if (b == j->fail_at[0] || b == j->fail_at[1]) return pl_error(PL_ERR_RANGE, "batch %zu failed", b);
    return PL_OK;
}

static void test_run(void) {
    job j = {{0}, 1, {99, 99}};
    CHECK_OK(pl_lanes_run(3, 64, count_fn, &j));
    int once = 1;
    for (int b = 0; b < 64; b++) once &= j.runs[b] == 1;
    CHECK(once && j.lane_ok, "3 lanes: each of 64 batches once, lanes 0..2");
    for (int lanes = 1; lanes <= 3; lanes += 2) {
        job f = {{0}, 1, {40, 17}};
        pl_status st = pl_lanes_run(lanes, 64, count_fn, &f);
        CHECK(st == PL_ERR_RANGE && strcmp(pl_errmsg(), "batch 17 failed") == 0,
              "%d lane(s): the lowest failing batch is reported (%d: %s)", lanes, (int)st, pl_errmsg());
        CHECK(f.runs[17] == 1, "%d lane(s): the failing batch ran", lanes);
        CHECK(lanes > 1 || f.runs[18] == 0, "one lane stops at the failure");
    }
}

/* lanes bounded by memory: each lane beyond the first within a quarter of
 * physical memory */
static void test_fit(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    CHECK(pl_lanes_fit(4, 0) == 4 && pl_lanes_fit(1, (size_t)1 << 40) == 1, "lanes without memory limits");
    CHECK(pl_lanes_fit(8, (size_t)-1 / 2) == 1, "lanes that cannot fit: one");
    if (pages > 0 && psz > 0) {
        const size_t phys = (size_t)pages * (size_t)psz;
        CHECK(pl_lanes_fit(8, phys / 8) == 3, "lanes of an eighth of memory each: %d (want 3)", pl_lanes_fit(8, phys / 8));
    }
}

int main(void) {
    T_BEGIN();
    test_plan();
    test_run();
    test_fit();
    return T_END();
}

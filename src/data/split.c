/* split.c — train/validation/test splits that neither leak near duplicates
 * nor drift in label balance, and the per-source selections that training
 * sets are composed from (narrow, generalist mixture, leave-one-source-out).
 *
 * Method: near-duplicate clusters over all records (dedup.c, across sources)
 * are the unit of assignment, so no cluster spans two partitions. Each
 * cluster belongs to the stratum (source, label) of its first record; within
 * a stratum, clusters are visited in a seeded random order and fill the test
 * partition up to round(test_frac * stratum size), then validation, then the
 * rest is train. A stratum's order depends only on the seed and the stratum,
 * so adding a source does not reshuffle the others. Not done: time-based
 * splits (dates are too unreliable across these corpora).
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pl_split_opts_default(pl_split_opts *o) {
    o->test_frac = 0.2;
    o->val_frac = 0.1;
    o->seed = 1;
    pl_dedup_opts_default(&o->dedup);
}

typedef struct {
    const pl_records *rs;
    size_t rep;      /* cluster representative (first record) */
    size_t size;
} group;

static int cmp_group(const void *a, const void *b) {
    const group *x = a, *y = b;
    const pl_record *p = &x->rs->v[x->rep], *q = &y->rs->v[y->rep];
    int c = strcmp(p->source, q->source);
    if (c) return c;
    if (p->label != q->label) return p->label < q->label ? -1 : 1;
    return (x->rep > y->rep) - (x->rep < y->rep);
}

pl_status pl_split_assign(const pl_records *rs, const pl_split_opts *o, uint8_t *part, size_t *cluster_out) {
    if (!(o->test_frac >= 0 && o->val_frac >= 0 && o->test_frac + o->val_frac < 1.0))
        return pl_error(PL_ERR_INVALID, "split: need test_frac >= 0, val_frac >= 0 and test_frac + val_frac < 1 (got %g, %g)",
                        o->test_frac, o->val_frac);
    size_t n = rs->n;
    const char **texts = malloc((n ? n : 1) * sizeof *texts);
    if (!texts) return pl_error(PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) texts[i] = pl_record_dedup_text(&rs->v[i]);
    pl_dedup_result dr;
    pl_status st = pl_dedup_texts(texts, n, &o->dedup, &dr);
    free(texts);
    if (st) return st;
    group *g = malloc((dr.n_clusters ? dr.n_clusters : 1) * sizeof *g);
    size_t *gid = malloc((n ? n : 1) * sizeof *gid);
    if (!g || !gid) {
        free(g);
        free(gid);
        pl_dedup_result_free(&dr);
        return pl_error(PL_ERR_NOMEM, "out of memory");
    }
    size_t ng = 0;
    for (size_t i = 0; i < n; i++)
        if (dr.cluster[i] == i) {
            gid[i] = ng;
            g[ng++] = (group){rs, i, 0};
        }
    for (size_t i = 0; i < n; i++) g[gid[dr.cluster[i]]].size++;
    qsort(g, ng, sizeof *g, cmp_group);
    /* the partition of each group, by representative */
    uint8_t *gpart = calloc(n ? n : 1, 1);
    if (!gpart) st = pl_error(PL_ERR_NOMEM, "out of memory");
    pl_rng master;
    pl_rng_seed(&master, o->seed);
    for (size_t lo = 0; lo < ng && !st;) {
        size_t hi = lo + 1;
        const pl_record *r0 = &rs->v[g[lo].rep];
        while (hi < ng && !strcmp(rs->v[g[hi].rep].source, r0->source) && rs->v[g[hi].rep].label == r0->label) hi++;
        size_t total = 0;
        for (size_t k = lo; k < hi; k++) total += g[k].size;
        uint64_t key = pl_hash64(r0->source, strlen(r0->source), (uint64_t)(r0->label + 2));
        pl_rng r = pl_rng_split(&master, key);
        pl_rng_shuffle(&r, g + lo, hi - lo, sizeof *g);
        size_t t_test = (size_t)llround(o->test_frac * (double)total);
        size_t t_val = (size_t)llround(o->val_frac * (double)total);
        size_t n_test = 0, n_val = 0;
        for (size_t k = lo; k < hi; k++) {
            uint8_t p;
            if (n_test < t_test) p = PL_PART_TEST, n_test += g[k].size;
            else if (n_val < t_val) p = PL_PART_VAL, n_val += g[k].size;
            else p = PL_PART_TRAIN;
            gpart[g[k].rep] = p;
        }
        lo = hi;
    }
    if (!st)
        for (size_t i = 0; i < n; i++) {
            part[i] = gpart[dr.cluster[i]];
            if (cluster_out) cluster_out[i] = dr.cluster[i];
        }
    free(gpart);
    free(g);
    free(gid);
    pl_dedup_result_free(&dr);
    return st;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

pl_status pl_split_select(const pl_records *rs, const uint8_t *part_of, int part, const char *source, size_t cap,
                          uint64_t seed, size_t **idx_out, size_t *n_out) {
    *idx_out = NULL;
    *n_out = 0;
    size_t *idx = malloc((rs->n ? rs->n : 1) * sizeof *idx);
    if (!idx) return pl_error(PL_ERR_NOMEM, "out of memory");
    /* candidates grouped by label (-1, 0, 1) */
    size_t m = 0, by[3] = {0};
    for (int L = -1; L <= 1; L++)
        for (size_t i = 0; i < rs->n; i++)
            if (part_of[i] == part && rs->v[i].label == L && (!source || !strcmp(rs->v[i].source, source))) {
                idx[m++] = i;
                by[L + 1]++;
            }
    if (cap && cap < m) {
        pl_rng master, r;
        pl_rng_seed(&master, seed);
        r = pl_rng_split(&master, pl_hash64(source ? source : "", source ? strlen(source) : 0, (uint64_t)part));
        /* per-label quota in proportion, largest remainders get the rest */
        size_t quota[3], given = 0;
        double rem[3];
        for (int l = 0; l < 3; l++) {
            double q = (double)cap * (double)by[l] / (double)m;
            quota[l] = (size_t)q;
            rem[l] = q - (double)quota[l];
            given += quota[l];
        }
        while (given < cap) {
            int best = -1;
            for (int l = 0; l < 3; l++)
                if (quota[l] < by[l] && (best < 0 || rem[l] > rem[best])) best = l;
            if (best < 0) break;
            quota[best]++;
            rem[best] = -1;
            given++;
        }
        size_t out = 0, start = 0;
        for (int l = 0; l < 3; l++) {
            pl_rng_shuffle(&r, idx + start, by[l], sizeof *idx);
            memmove(idx + out, idx + start, quota[l] * sizeof *idx);
            out += quota[l];
            start += by[l];
        }
        m = out;
    }
    qsort(idx, m, sizeof *idx, cmp_size);
    *idx_out = idx;
    *n_out = m;
    return PL_OK;
}

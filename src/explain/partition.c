/* partition.c — recursive Owen values over a binary hierarchy (shap's
 * PartitionExplainer, fixed_context=None).
 *
 * A queue item (m00, f00, f11, node, weight) says: in context m00 (the
 * features already present), switching node's leaves on moves the score
 * from f00 to f11, and that move carries credit weight. Expanding an internal
 * node with children L, R costs two evaluations, f10 = v(m00 + L) and
 * f01 = v(m00 + R), and pushes four half-weight items: L and R in the "off"
 * context (m00 -> m00 + L, m00 -> m00 + R) and in the "on" context
 * (m00 + R -> m11, m00 + L -> m11). Their increments telescope, so at any
 * point sum(credit) = f(x) - f(baseline) exactly (Owen 1977; Lundberg et al.,
 * shap). Items are taken best-first by |delta f| x weight; when the budget
 * (max_evals - 2 masks after the two endpoints) is spent, each queued item
 * leaves weight x (f11 - f00) on its node, and node credit is lowered onto
 * the leaves in proportion to their counts.
 *
 * Batching follows shap exactly: a round takes items while it has fewer than
 * batch_size masks and the budget is not reached, evaluates the round's
 * masks in one call, then pushes the children. Ties in priority are broken
 * by insertion order (shap breaks them with a random draw).
 */
#include "xinternal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double key;     /* -|delta f| * weight (smallest first) */
    uint64_t seq;   /* insertion order, tie-breaker */
    size_t m00;     /* context mask: row in the mask pool */
    double f00, f11, weight;
    int32_t node;
} pitem;

typedef struct {
    pitem *v;
    size_t n, cap;
} pheap;

static int pless(const pitem *a, const pitem *b) {
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static pl_status heap_push(pheap *h, pitem it) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? 2 * h->cap : 64;
        pitem *nv = realloc(h->v, nc * sizeof *nv);
        if (!nv) return pl_error(PL_ERR_NOMEM, "explain: out of memory for the partition queue");
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pless(&it, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = it;
    return PL_OK;
}

static pitem heap_pop(pheap *h) {
    pitem top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && pless(&h->v[c + 1], &h->v[c])) c++;
        if (!pless(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Mask pool: rows of M bytes. */
typedef struct {
    uint8_t *m;
    size_t n, cap, M;
} mpool;

static pl_status pool_add(mpool *p, size_t *row) {
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 64;
        uint8_t *nm = realloc(p->m, nc * p->M);
        if (!nm) return pl_error(PL_ERR_NOMEM, "explain: out of memory for partition masks");
        p->m = nm;
        p->cap = nc;
    }
    *row = p->n++;
    return PL_OK;
}

pl_status pl_xtree_leaf_sets(const pl_xtree *t, size_t **off_out, int32_t **leaves_out) {
    size_t M = t->n_leaves, nn = 2 * M - 1;
    size_t *off = malloc((nn + 1) * sizeof *off);
    size_t *cnt = malloc(nn * sizeof *cnt);
    int32_t *lv = NULL;
    if (off && cnt) {
        for (size_t i = 0; i < M; i++) cnt[i] = 1;
        for (size_t r = 0; r + 1 < M; r++) cnt[M + r] = (size_t)t->size[r];
        off[0] = 0;
        for (size_t n = 0; n < nn; n++) off[n + 1] = off[n] + cnt[n];
        lv = malloc(off[nn] * sizeof *lv); /* sum of subtree sizes: M log M balanced, M^2/2 a chain */
    }
    if (!off || !lv || !cnt) {
        free(off);
        free(lv);
        free(cnt);
        return pl_error(PL_ERR_NOMEM, "explain: out of memory for tree leaf sets");
    }
    for (size_t i = 0; i < M; i++) lv[off[i]] = (int32_t)i;
    /* children have smaller indices than parents: fill bottom-up */
    for (size_t r = 0; r + 1 < M; r++) {
        size_t n = M + r, l = (size_t)t->left[r], rr = (size_t)t->right[r];
        memcpy(lv + off[n], lv + off[l], cnt[l] * sizeof *lv);
        memcpy(lv + off[n] + cnt[l], lv + off[rr], cnt[rr] * sizeof *lv);
    }
    free(cnt);
    *off_out = off;
    *leaves_out = lv;
    return PL_OK;
}

typedef struct {
    size_t m00, m10, m01;
    double f00, f11, weight;
    size_t id10, id01;
    int32_t node;
} pwork;

pl_status pl_x_partition(pl_xoracle *o, const pl_xopts *opt, pl_xresult *res) {
    const pl_xtree *t = opt->tree;
    size_t M = o->M, nn = 2 * M - 1;
    size_t max_evals = opt->max_evals ? opt->max_evals : 500;
    size_t batch = opt->batch_size ? opt->batch_size : 10;
    res->budget = max_evals;
    size_t inner = max_evals > 2 ? max_evals - 2 : 0;
    pl_status st = PL_OK;
    pheap heap = {0};
    mpool pool = {.M = M};
    pwork *work = malloc((batch / 2 + 2) * sizeof *work);
    double *dv = calloc(nn, sizeof *dv), *vals = calloc(nn, sizeof *vals);
    size_t *off = NULL;
    int32_t *leaves = NULL;
    if (!work || !dv || !vals) {
        st = pl_error(PL_ERR_NOMEM, "explain: out of memory");
        goto done;
    }
    if ((st = pl_xtree_leaf_sets(t, &off, &leaves))) goto done;
    /* endpoints */
    size_t r0, r1, id0, id1;
    if ((st = pool_add(&pool, &r0)) || (st = pool_add(&pool, &r1))) goto done;
    memset(pool.m + r0 * M, 0, M);
    memset(pool.m + r1 * M, 1, M);
    if ((st = pl_xo_request(o, pool.m + r0 * M, &id0)) || (st = pl_xo_request(o, pool.m + r1 * M, &id1))) goto done;
    if ((st = pl_xo_flush(o))) goto done;
    double f00 = pl_xo_value(o, id0), f11 = pl_xo_value(o, id1);
    res->base_value = f00;
    res->fx = f11;
    uint64_t seq = 0;
    pitem root = {.key = 0, .seq = seq++, .m00 = r0, .f00 = f00, .f11 = f11, .weight = 1.0, .node = (int32_t)(nn - 1)};
    if ((st = heap_push(&heap, root))) goto done;
    size_t eval_count = 0;
    while (heap.n) {
        if (eval_count >= inner) {
            while (heap.n) {
                pitem it = heap_pop(&heap);
                dv[it.node] += (it.f11 - it.f00) * it.weight;
            }
            break;
        }
        size_t nw = 0, nmasks = 0;
        while (heap.n && nmasks < batch && eval_count + nmasks < inner) {
            pitem it = heap_pop(&heap);
            size_t node = (size_t)it.node;
            if (node < M || t->height[node - M] < 0) {
                dv[node] += (it.f11 - it.f00) * it.weight;
                continue;
            }
            size_t r = node - M, l = (size_t)t->left[r], rr = (size_t)t->right[r];
            pwork *w = &work[nw];
            if ((st = pool_add(&pool, &w->m10)) || (st = pool_add(&pool, &w->m01))) goto done;
            uint8_t *m00 = pool.m + it.m00 * M, *m10 = pool.m + w->m10 * M, *m01 = pool.m + w->m01 * M;
            memcpy(m10, m00, M);
            memcpy(m01, m00, M);
            for (size_t k = off[l]; k < off[l + 1]; k++) m10[leaves[k]] = 1;
            for (size_t k = off[rr]; k < off[rr + 1]; k++) m01[leaves[k]] = 1;
            if ((st = pl_xo_request(o, m10, &w->id10)) || (st = pl_xo_request(o, m01, &w->id01))) goto done;
            w->m00 = it.m00;
            w->f00 = it.f00;
            w->f11 = it.f11;
            w->weight = it.weight;
            w->node = it.node;
            nw++;
            nmasks += 2;
        }
        if (nw == 0) continue;
        if ((st = pl_xo_flush(o))) goto done;
        eval_count += nmasks;
        for (size_t i = 0; i < nw; i++) {
            pwork *w = &work[i];
            size_t r = (size_t)w->node - M;
            int32_t l = t->left[r], rr = t->right[r];
            double f10 = pl_xo_value(o, w->id10), f01 = pl_xo_value(o, w->id01);
            double nwt = w->weight / 2;
            pitem c[4] = {
                {-fabs(f10 - w->f00) * nwt, 0, w->m00, w->f00, f10, nwt, l},
                {-fabs(f01 - w->f00) * nwt, 0, w->m00, w->f00, f01, nwt, rr},
                {-fabs(w->f11 - f01) * nwt, 0, w->m01, f01, w->f11, nwt, l},
                {-fabs(w->f11 - f10) * nwt, 0, w->m10, f10, w->f11, nwt, rr},
            };
            for (int k = 0; k < 4; k++) {
                c[k].seq = seq++;
                if ((st = heap_push(&heap, c[k]))) goto done;
            }
        }
    }
    /* lower node credit onto the leaves in proportion to leaf counts */
    memcpy(vals, dv, nn * sizeof *vals);
    for (size_t node = nn; node-- > M;) {
        size_t r = node - M, l = (size_t)t->left[r], rr = (size_t)t->right[r];
        double gs = (double)t->size[r];
        double ls = l >= M ? (double)t->size[l - M] : 1.0, rs = rr >= M ? (double)t->size[rr - M] : 1.0;
        vals[l] += vals[node] * ls / gs;
        vals[rr] += vals[node] * rs / gs;
    }
    memcpy(res->phi, vals, M * sizeof *res->phi);
    res->node_values = dv;
    dv = NULL;
done:
    free(heap.v);
    free(pool.m);
    free(work);
    free(dv);
    free(vals);
    free(off);
    free(leaves);
    return st;
}
